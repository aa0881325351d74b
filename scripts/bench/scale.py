"""Many clients: CLIENTS register with MAX_INSTANCES=RUNNING and EVICT_LRU; the bridge's cost with them.

    python -m scripts.bench.scale [--clients 200 --running 50] [--batch 10] [--sample 20] [--keep]

CLIENTS clients register (``echo``) in concurrent batches with MAX_INSTANCES=RUNNING and EVICT_LRU, so the
least recently used running instance is put to ``idle`` for each new one: RUNNING stay running, the rest
idle, never more than RUNNING alive. Then the bridge's RSS and CPU (of one core) over SAMPLE s, quiet
(health probes only) and with one MCP ``ping`` per second to each running client; the running instances'
total RSS; admin API latencies with that many clients. See scripts/bench/common.py for the set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter

import aiohttp
import httpx
import psutil

from bridge.mcp.client import McpSession
from scripts.bench import common
from tests.helpers import BridgeProcess, instance_pid

NAME = "scale"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--running", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10, help="concurrent registrations")
    parser.add_argument("--sample", type=float, default=20, help="seconds of CPU/RSS sampling")
    parser.add_argument("--scale-probe-interval", type=float, default=5)


async def register_all(
    api: httpx.AsyncClient, bench: common.Bench, names: list[str]
) -> tuple[dict[str, str], list[float]]:
    tokens: dict[str, str] = {}
    latencies: list[float] = []
    batch = bench.args.batch

    async def one(name: str) -> None:
        began = time.perf_counter()
        tokens[name] = await common.register(api, name, bench.workspace, "echo", wait=120)
        latencies.append(time.perf_counter() - began)

    for start in range(0, len(names), batch):
        await asyncio.gather(*(one(name) for name in names[start : start + batch]))
        if (start // batch) % 5 == 4:
            print(f"   registered {len(tokens)}/{len(names)}", flush=True)
    return tokens, latencies


async def api_latency(api: httpx.AsyncClient, path: str, times: int = 5) -> float:
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        resp = await api.get(path)
        resp.raise_for_status()
        spent.append(time.perf_counter() - began)
    return statistics.median(spent) * 1000


class Pinger:
    """One MCP session per running client, pinged through the bridge."""

    def __init__(self, bridge: BridgeProcess, http: aiohttp.ClientSession, tokens: dict[str, str]) -> None:
        self.bridge, self.http, self.tokens = bridge, http, tokens
        self.sessions: dict[str, McpSession] = {}
        self.errors: Counter[str] = Counter()
        self.sent = 0

    async def open(self, name: str) -> None:
        session = common.bridge_session(self.http, self.bridge.mcp_url(name, "echo"), self.tokens[name])
        await session.open()
        self.sessions[name] = session

    async def ping(self, session: McpSession) -> None:
        self.sent += 1
        try:
            with common.counted_failure():
                await session.request("ping")
        except common.ExchangeFailed as exc:
            self.errors[exc.what] += 1

    async def tick(self, _tick: int) -> None:
        await asyncio.gather(*(self.ping(session) for session in self.sessions.values()))

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for session in self.sessions.values()))


async def run(bench: common.Bench) -> None:
    args = bench.args
    env = {
        "PARADISE_PROBE_INTERVAL": str(args.scale_probe_interval),
        "PARADISE_MAX_INSTANCES": str(args.running),
        "PARADISE_EVICT_LRU": "true",
        "PARADISE_READY_TIMEOUT": "120",
        "PARADISE_START_TIMEOUT": "60",
    }
    names = [f"scale-{i:03d}" for i in range(args.clients)]
    with bench.bridge("scale", env, pool_size=args.clients + 10) as bridge:
        pid = bridge.proc.pid  # type: ignore[union-attr]
        baseline = common.rss(pid) / common.MIB
        async with common.admin(bridge, timeout=300) as api, common.mcp_http(timeout=60) as http:
            began = time.perf_counter()
            tokens, reg_latency = await register_all(api, bench, names)
            registration = time.perf_counter() - began
            await asyncio.sleep(5)  # let the last starts and evictions settle
            clients = (await api.get("/clients")).json()
            states = Counter(i["state"] for c in clients for i in c["instances"])
            running = [c["client_id"] for c in clients if c["instances"][0]["state"] == "running"]
            alive = (common.rss(instance_pid(bridge, name, "echo"), tree=True) for name in running)
            instances_rss = sum(alive) / common.MIB
            quiet = await common.sample_bridge(pid, args.sample)
            pinger = Pinger(bridge, http, tokens)
            await asyncio.gather(*(pinger.open(name) for name in running))
            busy = await common.sample_bridge(pid, args.sample, pinger.tick)
            await pinger.close()
            latency = {
                p: await api_latency(api, p)
                for p in ("/clients", f"/clients/{names[0]}", "/ports", "/events?limit=100")
            }
            bearer = {"Authorization": f"Bearer {bridge.admin_token}"}  # /metrics needs the admin token
            async with httpx.AsyncClient(base_url=bridge.url, headers=bearer, timeout=60) as scraper:
                latency["/metrics"] = await api_latency(scraper, "/metrics")
            fds = psutil.Process(pid).num_fds()
    print(
        f"\nscale: {args.clients} clients (echo), MAX_INSTANCES={args.running} with EVICT_LRU, "
        f"PROBE_INTERVAL={args.scale_probe_interval:g}; registered in batches of {args.batch}"
    )
    print(
        f"registration of {args.clients}: {registration:.1f} s total; per registration p50 "
        f"{statistics.median(reg_latency):.2f} s, max {max(reg_latency):.2f} s (wait=ready)"
    )
    print(f"instance states: {dict(states)}; bridge RSS before registering {baseline:.1f} MiB; open fds {fds}")
    print(f"{'bridge, over ' + str(args.sample) + ' s':<46}{'CPU % of a core':>16}{'RSS MiB':>9}{'peak':>8}")
    for label, fig in (("quiet (health probes only)", quiet), (f"{len(running)} clients pinged once a second", busy)):
        print(f"{label:<46}{fig['cpu_pct']:>16.1f}{fig['rss_mib']:>9.1f}{fig['rss_peak_mib']:>8.1f}")
    print(f"ping errors: {dict(pinger.errors) or 'none'} of {pinger.sent}")
    print(
        f"{len(running)} running echo instances: {instances_rss:.0f} MiB RSS total, "
        f"{instances_rss / max(len(running), 1):.0f} MiB each"
    )
    print(
        "admin API with "
        + f"{args.clients} clients, p50 of 5: "
        + ", ".join(f"GET {p} {ms:.0f} ms" for p, ms in latency.items())
    )
    common.FIGURES["scale"] = {
        "clients": args.clients,
        "running": len(running),
        "states": dict(states),
        "probe_interval_s": args.scale_probe_interval,
        "registration_s": registration,
        "register_p50_s": statistics.median(reg_latency),
        "register_max_s": max(reg_latency),
        "bridge_rss_before_mib": baseline,
        "quiet": quiet,
        "pinged": busy,
        "ping_errors": dict(pinger.errors),
        "instances_rss_mib": instances_rss,
        "api_ms": latency,
        "bridge_fds": fds,
    }


if __name__ == "__main__":
    common.main([sys.modules[__name__]], title="bench.scale", description=__doc__.splitlines()[0])
