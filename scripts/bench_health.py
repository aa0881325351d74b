"""Health and scale figures: healing after a kill, waking from idle, 200 clients, 2,000 open SSE streams.

    python scripts/bench_health.py [--only death,wake,scale,streams] [--repeat 5]
                                   [--clients 200 --running 50] [--streams 2000] [--keep]

Each part runs its own real bridge (``python -m bridge serve``, process runtime, loopback ports of its
own) whose services are the fixture MCP server of the tests (the official MCP SDK, ``echo`` and the old
HTTP+SSE ``legacy``). Every request goes to 127.0.0.1; every loop is bounded.

* death: SIGKILL of an instance's process group, then an MCP exchange (initialize, tools/call ``echo``)
  through the bridge every 50 ms until one succeeds; PROBE_INTERVAL=1; one client per repetition, so the
  crash-loop back-off (which deliberately slows a second crash of the same instance) does not count.
* wake: IDLE_TIMEOUT=2; once the API says ``idle`` and the old process is gone, the time of the first MCP
  exchange through the bridge (the bridge holds it while the instance starts), against a warm exchange;
  then again with the request sent as soon as the API says ``idle`` (while the stop may be under way).
* scale: CLIENTS clients register (``echo``) in concurrent batches with MAX_INSTANCES=RUNNING and EVICT_LRU,
  so the least recently used running instance is put to ``idle`` for each new one: RUNNING stay running,
  the rest idle, never more than RUNNING alive. Then the bridge's RSS and CPU (of one core) over SAMPLE s,
  quiet (health probes only) and with one MCP ``ping`` per second to each running client; the running
  instances' total RSS; admin API latencies with that many clients.
* streams: STREAMS GET streams held open through the bridge for HOLD s (``legacy``: GET /sse, one stream
  each, its first ``endpoint`` event counted; ``streamable``: initialize + one GET per session, its 200
  SSE answer counted), the bridge's RSS before, with and after them, and that they close cleanly.

Bridge and pool ports are taken below the kernel's ephemeral port range, so that none of the thousands
of outgoing connections made here can grab a pool port before an instance binds it. The open-file limit
is raised to its hard limit (the bridge, a child, inherits it). Takes about 6 minutes on 2 CPUs.

Prints the machine, the settings of each bridge, a table per part, the warnings and errors of the bridge
logs, and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import BridgeProcess, fixture_catalog, instance_pid, port_free  # noqa: E402

PROTOCOL = "2025-06-18"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench-health", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "ok"}}}
MCP_ACCEPT = "application/json, text/event-stream"
MIB = 2**20
FIGURES: dict[str, Any] = {}


# ---- bridges -----------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="paradise-bench-health-"))
        self.catalog = fixture_catalog(self.work / "catalog.toml")
        self.workspace = self.work / "ws"
        self.workspace.mkdir()

    @contextlib.contextmanager
    def bridge(self, name: str, env: dict[str, str], pool_size: int = 30) -> Iterator[BridgeProcess]:
        env = {"PARADISE_CATALOG": str(self.catalog), "PARADISE_LOG_LEVEL": "WARNING", **env}
        bridge = BridgeProcess(self.work / name, env=env, pool_size=pool_size)
        first = quiet_block(pool_size + 1)  # helpers' free_block may land in the ephemeral range
        bridge.port, bridge.pool = first, range(first + 1, first + 1 + pool_size)
        bridge.env |= {"PARADISE_PORT": str(first), "PARADISE_PORT_RANGE": f"{first + 1}-{first + pool_size}"}
        shown = {k: v for k, v in bridge.env.items() if k.startswith("PARADISE_") and k not in HIDDEN}
        print(f"\n== {name}: bridge settings " + " ".join(f"{k[9:]}={v}" for k, v in sorted(shown.items())))
        try:
            bridge.start(timeout=30)
            yield bridge
        finally:
            stop_bridge(bridge)
            report_log(name, bridge)


def quiet_block(size: int) -> int:
    """A first port of ``size`` free ports below the kernel's ephemeral range.

    Ports in that range are handed out to outgoing connections (thousands here); one landing on a pool
    port between the bridge's check and the instance's bind fails that instance's start.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        first = random.randrange(10000, max(10001, low - size - 1))
        if all(port_free(p) for p in range(first, first + size + 1)):
            return first
    raise RuntimeError("no free block of ports below the ephemeral range on 127.0.0.1")


HIDDEN = {"PARADISE_ADMIN_TOKEN", "PARADISE_DATA_DIR", "PARADISE_CATALOG", "PARADISE_PORT"}


def stop_bridge(bridge: BridgeProcess) -> None:
    """SIGTERM the bridge (instances outlive it by design), then end every instance it started."""
    with contextlib.suppress(Exception):
        bridge.kill(signal.SIGTERM)
    if bridge.proc and bridge.proc.poll() is None:
        bridge.kill(signal.SIGKILL)
    for label in bridge.data_dir.glob("instances/*/*/runtime.json"):
        with contextlib.suppress(Exception):
            state = json.loads(label.read_text())
            proc = psutil.Process(state["pid"])
            if abs(proc.create_time() - state["create_time"]) < 0.05:
                os.killpg(proc.pid, signal.SIGKILL)


def report_log(name: str, bridge: BridgeProcess) -> None:
    """Warnings, errors and tracebacks of the bridge log, grouped with numbers masked."""
    if not bridge.log.exists():
        return
    groups: Counter[str] = Counter()
    tracebacks = 0
    for line in bridge.log.read_text(errors="replace").splitlines():
        tracebacks += line.startswith("Traceback")
        match = re.match(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$", line)
        if match:
            text = re.sub(r"\d+(\.\d+)?", "N", match.group(3))
            text = re.sub(r"\[[a-z0-9-]+/", "[<client>/", text)
            groups[f"{match.group(1)} {match.group(2)}: {text[:110]}"] += 1
    FIGURES.setdefault("log", {})[name] = {"tracebacks": tracebacks, "groups": dict(groups)}
    print(f"-- {name}: bridge log: {sum(groups.values())} warning/error lines, {tracebacks} tracebacks")
    for text, count in groups.most_common(8):
        print(f"   {count:>5} x {text}")


def rss(pid: int, tree: bool = False) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)] if tree else [proc]
        return sum(p.memory_info().rss for p in procs)
    except psutil.Error:
        return 0


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def admin(bridge: BridgeProcess, timeout: float = 120) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {bridge.admin_token}"}
    return httpx.AsyncClient(base_url=bridge.url + "/api/v1", headers=headers, timeout=timeout)


async def wait_state(api: httpx.AsyncClient, client: str, service: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        body = (await api.get(f"/clients/{client}")).json()
        state = next(i["state"] for i in body["instances"] if i["service"] == service)
        if state in states:
            return state
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{client}/{service} still {state} after {timeout}s (wanted {states})")


async def register(api: httpx.AsyncClient, client: str, workspace: Path, service: str, wait: float = 60) -> str:
    body = {"client_id": client, "workspace": str(workspace), "services": [service]}
    resp = await api.post("/clients", params={"wait": wait}, json=body)
    if resp.status_code != 201:
        raise RuntimeError(f"register {client}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp.json()["token"]


def pct(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


# ---- a raw MCP exchange through the bridge --------------------------------------------------------------


class ExchangeFailed(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _message(resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code != 200:
        raise ExchangeFailed(f"HTTP {resp.status_code}")
    if "text/event-stream" not in resp.headers.get("content-type", ""):
        return resp.json()
    for line in resp.text.splitlines():
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if "id" in message:
                return message
    raise ExchangeFailed("no answer in the stream")


async def mcp_exchange(http: httpx.AsyncClient, url: str, token: str) -> float:
    """initialize, initialized, tools/call echo, DELETE; returns seconds to the initialize answer."""
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Accept": MCP_ACCEPT}
    try:
        init = await http.post(url, json=INIT, headers=headers)
        first = time.perf_counter() - began
        if "result" not in _message(init):
            raise ExchangeFailed("initialize failed")
        headers |= {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": PROTOCOL}
        await http.post(url, json=INITIALIZED, headers=headers)
        answer = _message(await http.post(url, json=CALL, headers=headers))
        await http.delete(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ExchangeFailed(exc.__class__.__name__) from None
    if answer.get("result", {}).get("content", [{}])[0].get("text") != "ok":
        raise ExchangeFailed(f"unexpected answer {str(answer)[:100]}")
    return first


# ---- 1. death to serving again ----------------------------------------------------------------------------


def event_times(bridge: BridgeProcess, client: str) -> dict[str, float]:
    """Epoch seconds of the last event of each kind for this client."""
    times: dict[str, float] = {}
    for event in reversed(bridge.api("GET", "/events", params={"client_id": client, "limit": 200}).json()):
        ts = datetime.fromisoformat(event["ts"])
        times[event["kind"]] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    return times


async def one_death(bridge: BridgeProcess, http: httpx.AsyncClient, client: str, token: str) -> dict[str, Any]:
    url = bridge.mcp_url(client, "echo")
    await mcp_exchange(http, url, token)  # serving before the kill
    await asyncio.sleep(random.uniform(0, 1.5))  # any phase of the probe cycle
    pid = instance_pid(bridge, client, "echo")
    killed_at, began = time.time(), time.perf_counter()
    os.killpg(pid, signal.SIGKILL)
    failures: Counter[str] = Counter()
    while time.perf_counter() - began < 60:
        try:
            await mcp_exchange(http, url, token)
            break
        except ExchangeFailed as exc:
            failures[exc.what] += 1
            await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"{client}: not serving 60 s after the kill; failures {dict(failures)}")
    serving = time.perf_counter() - began
    events = event_times(bridge, client)
    return {
        "serving_s": serving,
        "detected_s": events.get("instance.died", float("nan")) - killed_at,
        "ready_s": events.get("instance.ready", float("nan")) - killed_at,
        "failed_attempts": dict(failures),
        "new_pid": instance_pid(bridge, client, "echo") != pid,
    }


async def bench_death(bench: Bench) -> None:
    n = bench.args.repeat
    with bench.bridge("death", {"PARADISE_PROBE_INTERVAL": "1"}) as bridge:
        async with admin(bridge) as api, httpx.AsyncClient(timeout=30) as http:
            clients = [f"death-{i}" for i in range(n)]
            tokens = await asyncio.gather(*(register(api, c, bench.workspace, "echo") for c in clients))
            runs = [await one_death(bridge, http, c, t) for c, t in zip(clients, tokens, strict=True)]
    serving = [r["serving_s"] for r in runs]
    failures: Counter[str] = Counter()
    for r in runs:
        failures.update(r["failed_attempts"])
    print(f"\ndeath -> serving again through the bridge (SIGKILL of the process group), PROBE_INTERVAL=1, n={n}")
    print(f"{'':<34}{'p50 s':>8}{'max s':>8}")
    for label, key in (
        ("kill -> instance.died event", "detected_s"),
        ("kill -> instance.ready event", "ready_s"),
        ("kill -> MCP exchange succeeds", "serving_s"),
    ):
        p50, worst = pct([r[key] for r in runs])
        print(f"{label:<34}{p50:>8.2f}{worst:>8.2f}")
    print(
        f"goal <= 5 s: {'met' if max(serving) <= 5 else 'NOT met'}; new pid each time: "
        f"{all(r['new_pid'] for r in runs)}; failed attempts meanwhile (every 50 ms): {dict(failures) or 'none'}"
    )
    FIGURES["death"] = {
        "n": n,
        "probe_interval_s": 1,
        "runs": runs,
        "p50_s": statistics.median(serving),
        "max_s": max(serving),
    }


# ---- 2. wake from idle -----------------------------------------------------------------------------------


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def one_wake(bridge: BridgeProcess, api: httpx.AsyncClient, http: httpx.AsyncClient, token: str, clean: bool):
    """Wait for ``idle``; with ``clean`` also for the old process to be gone; then time the first exchange."""
    pid = instance_pid(bridge, "sleepy", "echo")
    await wait_state(api, "sleepy", "echo", {"idle"}, timeout=30)
    idle_at, stop_lag = time.perf_counter(), float("nan")
    while clean and time.perf_counter() - idle_at < 15:
        if gone(pid):
            stop_lag = time.perf_counter() - idle_at
            break
        await asyncio.sleep(0.01)
    still_stopping = not gone(pid)
    url = bridge.mcp_url("sleepy", "echo")
    began = time.perf_counter()
    first = await mcp_exchange(http, url, token)
    whole = time.perf_counter() - began
    began = time.perf_counter()
    await mcp_exchange(http, url, token)
    return {
        "first_s": first,
        "exchange_s": whole,
        "warm_s": time.perf_counter() - began,
        "stop_lag_s": stop_lag,
        "old_still_stopping": still_stopping,
    }


async def bench_wake(bench: Bench) -> None:
    n = bench.args.repeat
    env = {"PARADISE_PROBE_INTERVAL": "1", "PARADISE_IDLE_TIMEOUT": "2"}
    with bench.bridge("wake", env) as bridge:
        async with admin(bridge) as api, httpx.AsyncClient(timeout=60) as http:
            token = await register(api, "sleepy", bench.workspace, "echo")
            clean = [await one_wake(bridge, api, http, token, clean=True) for _ in range(n)]
            eager = [await one_wake(bridge, api, http, token, clean=False) for _ in range(n)]
            events = (await api.get("/events", params={"client_id": "sleepy", "limit": 1000})).json()
    kinds = Counter(e["kind"] for e in events)
    print(
        f"\nwake from idle: IDLE_TIMEOUT=2, PROBE_INTERVAL=1, n={n} each way; events: "
        f"{kinds['instance.wake']} instance.wake, {kinds['port.moved']} port.moved"
    )
    print(f"{'':<58}{'p50 s':>8}{'max s':>8}")
    rows = (
        ("API says idle -> old process gone (the stop)", [r["stop_lag_s"] for r in clean]),
        ("then: first request (initialize) answered, held", [r["first_s"] for r in clean]),
        ("then: whole MCP exchange (init+initialized+call+delete)", [r["exchange_s"] for r in clean]),
        ("request as soon as the API says idle: initialize answered", [r["first_s"] for r in eager]),
        ("warm MCP exchange, for comparison", [r["warm_s"] for r in clean + eager]),
    )
    for label, values in rows:
        print(f"{label:<58}{statistics.median(values):>8.3f}{max(values):>8.3f}")
    racing = sum(r["old_still_stopping"] for r in eager)
    print(f"requests sent while the old process was still stopping: {racing} of {n}")
    exchange = [r["exchange_s"] for r in clean]
    FIGURES["wake"] = {
        "n": n,
        "idle_timeout_s": 2,
        "after_stop": clean,
        "at_idle": eager,
        "p50_s": statistics.median(exchange),
        "max_s": max(exchange),
        "events": {k: kinds[k] for k in ("instance.wake", "port.moved", "instance.failed")},
    }


# ---- 3. many clients ----------------------------------------------------------------------------------


async def register_all(api: httpx.AsyncClient, bench: Bench, names: list[str]) -> tuple[dict[str, str], list[float]]:
    tokens: dict[str, str] = {}
    latencies: list[float] = []
    batch = bench.args.batch

    async def one(name: str) -> None:
        began = time.perf_counter()
        tokens[name] = await register(api, name, bench.workspace, "echo", wait=120)
        latencies.append(time.perf_counter() - began)

    for start in range(0, len(names), batch):
        await asyncio.gather(*(one(name) for name in names[start : start + batch]))
        if (start // batch) % 5 == 4:
            print(f"   registered {len(tokens)}/{len(names)}", flush=True)
    return tokens, latencies


async def sample_bridge(pid: int, seconds: float, load: Any = None) -> dict[str, float]:
    """CPU (% of one core) and RSS of the bridge over ``seconds``, while ``load(tick)`` runs once a second."""
    proc = psutil.Process(pid)
    cpu0, wall0, peak = cpu_seconds(proc), time.perf_counter(), 0
    for tick in range(int(seconds)):
        tick_began = time.perf_counter()
        if load is not None:
            await load(tick)
        peak = max(peak, proc.memory_info().rss)
        await asyncio.sleep(max(0.0, 1 - (time.perf_counter() - tick_began)))
    cpu = (cpu_seconds(proc) - cpu0) / (time.perf_counter() - wall0) * 100
    return {"cpu_pct": cpu, "rss_mib": proc.memory_info().rss / MIB, "rss_peak_mib": peak / MIB}


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

    def __init__(self, bridge: BridgeProcess, http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.bridge, self.http, self.tokens = bridge, http, tokens
        self.sessions: dict[str, dict[str, str]] = {}
        self.errors: Counter[str] = Counter()
        self.sent = 0

    async def open(self, name: str) -> None:
        url = self.bridge.mcp_url(name, "echo")
        headers = {"Authorization": f"Bearer {self.tokens[name]}", "Accept": MCP_ACCEPT}
        init = await self.http.post(url, json=INIT, headers=headers)
        _message(init)
        headers |= {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": PROTOCOL}
        await self.http.post(url, json=INITIALIZED, headers=headers)
        self.sessions[name] = headers

    async def ping(self, name: str) -> None:
        self.sent += 1
        try:
            _message(
                await self.http.post(
                    self.bridge.mcp_url(name, "echo"),
                    json={"jsonrpc": "2.0", "id": self.sent, "method": "ping"},
                    headers=self.sessions[name],
                )
            )
        except (ExchangeFailed, httpx.HTTPError) as exc:
            self.errors[str(exc) or exc.__class__.__name__] += 1

    async def tick(self, _tick: int) -> None:
        await asyncio.gather(*(self.ping(name) for name in self.sessions))

    async def close(self) -> None:
        await asyncio.gather(
            *(self.http.delete(self.bridge.mcp_url(n, "echo"), headers=h) for n, h in self.sessions.items()),
            return_exceptions=True,
        )


async def bench_scale(bench: Bench) -> None:
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
        baseline = rss(pid) / MIB
        async with admin(bridge, timeout=300) as api, httpx.AsyncClient(timeout=60) as http:
            began = time.perf_counter()
            tokens, reg_latency = await register_all(api, bench, names)
            registration = time.perf_counter() - began
            await asyncio.sleep(5)  # let the last starts and evictions settle
            clients = (await api.get("/clients")).json()
            states = Counter(i["state"] for c in clients for i in c["instances"])
            running = [c["client_id"] for c in clients if c["instances"][0]["state"] == "running"]
            instances_rss = sum(rss(instance_pid(bridge, name, "echo"), tree=True) for name in running) / MIB
            quiet = await sample_bridge(pid, args.sample)
            pinger = Pinger(bridge, http, tokens)
            await asyncio.gather(*(pinger.open(name) for name in running))
            busy = await sample_bridge(pid, args.sample, pinger.tick)
            await pinger.close()
            latency = {
                p: await api_latency(api, p)
                for p in ("/clients", f"/clients/{names[0]}", "/ports", "/events?limit=100")
            }
            async with httpx.AsyncClient(base_url=bridge.url, timeout=60) as plain:
                latency["/metrics"] = await api_latency(plain, "/metrics")
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
    FIGURES["scale"] = {
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


# ---- 4. many open streams -------------------------------------------------------------------------------


class Streams:
    def __init__(self, bridge: BridgeProcess, session: aiohttp.ClientSession, token: str, kind: str) -> None:
        self.bridge, self.session, self.kind = bridge, session, kind
        self.auth = {"Authorization": f"Bearer {token}"}
        self.open: list[aiohttp.ClientResponse] = []
        self.session_ids: list[str] = []
        self.errors: Counter[str] = Counter()

    @property
    def service(self) -> str:
        return "legacy" if self.kind == "legacy" else "echo"

    async def open_one(self) -> None:
        try:
            async with asyncio.timeout(60):
                resp = await (self._legacy() if self.kind == "legacy" else self._streamable())
            self.open.append(resp)
        except (aiohttp.ClientError, TimeoutError, ExchangeFailed) as exc:
            self.errors[f"{exc.__class__.__name__}: {str(exc)[:80]}"] += 1

    async def _legacy(self) -> aiohttp.ClientResponse:
        url = f"{self.bridge.url}/c/streams/legacy/sse"
        resp = await self.session.get(url, headers={**self.auth, "Accept": "text/event-stream"})
        event = None
        async for raw in resp.content:  # the first event: the endpoint, rewritten to the bridge's path
            line = raw.decode().strip()
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "endpoint":
                if not line[5:].strip().startswith("/c/streams/legacy/messages"):
                    raise ExchangeFailed(f"endpoint not rewritten: {line}")
                return resp
        resp.close()
        raise ExchangeFailed(f"HTTP {resp.status}, no endpoint event")

    async def _streamable(self) -> aiohttp.ClientResponse:
        url = self.bridge.mcp_url("streams", "echo")
        headers = {**self.auth, "Accept": MCP_ACCEPT}
        async with self.session.post(url, json=INIT, headers=headers) as init:
            await init.read()
            if init.status != 200:
                raise ExchangeFailed(f"initialize HTTP {init.status}")
            session_id = init.headers["Mcp-Session-Id"]
        headers |= {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": PROTOCOL}
        async with self.session.post(url, json=INITIALIZED, headers=headers) as note:
            await note.read()
        self.session_ids.append(session_id)
        resp = await self.session.get(url, headers={**headers, "Accept": "text/event-stream"})
        if resp.status != 200 or resp.content_type != "text/event-stream":
            resp.close()
            raise ExchangeFailed(f"GET HTTP {resp.status} {resp.content_type}")
        return resp

    async def open_all(self, count: int, concurrency: int = 100) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await self.open_one()

        await asyncio.gather(*(one() for _ in range(count)))

    async def close_all(self) -> None:
        self.close_streams()
        await self.end_sessions()

    def close_streams(self) -> None:
        for resp in self.open:
            resp.close()
        self.open.clear()

    async def end_sessions(self) -> None:
        """DELETE the MCP sessions (streamable) the streams were opened on."""
        url = self.bridge.mcp_url("streams", "echo")
        gate = asyncio.Semaphore(50)

        async def delete(session_id: str) -> None:
            async with gate, self.session.delete(url, headers={**self.auth, "Mcp-Session-Id": session_id}) as r:
                await r.read()

        await asyncio.gather(*(delete(s) for s in self.session_ids), return_exceptions=True)
        self.session_ids.clear()


def connections(proc: psutil.Process, bridge_port: int, instance_port: int) -> tuple[int, int]:
    """The bridge's established TCP connections: from clients, and to the instance."""
    down = up = 0
    for conn in proc.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_ESTABLISHED or not conn.raddr:
            continue
        down += conn.laddr.port == bridge_port
        up += conn.raddr.port == instance_port
    return down, up


async def close_and_wait(bridge: BridgeProcess, streams: Streams) -> tuple[float, float]:
    """Close every stream; seconds until the bridge's open-streams gauge is 0 (bounded: 15 s), and its value."""
    began = time.perf_counter()
    streams.close_streams()
    metric, seconds = float("nan"), float("nan")
    for _ in range(150):
        metric = await open_streams_metric(bridge, streams.service)
        if metric == 0:
            seconds = time.perf_counter() - began
            break
        await asyncio.sleep(0.1)
    await streams.end_sessions()
    return seconds, metric


async def open_streams_metric(bridge: BridgeProcess, service: str) -> float:
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(bridge.url + "/metrics")).text
    pattern = rf'^paradise_open_streams\{{[^}}]*client="streams"[^}}]*service="{service}"[^}}]*\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def bench_streams_kind(bench: Bench, kind: str) -> None:
    args = bench.args
    with bench.bridge(f"streams-{kind}", {"PARADISE_PROBE_INTERVAL": "5"}, pool_size=5) as bridge:
        proc = psutil.Process(bridge.proc.pid)  # type: ignore[union-attr]
        async with admin(bridge) as api:
            token = await register(api, "streams", bench.workspace, "legacy" if kind == "legacy" else "echo")
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            streams = Streams(bridge, session, token, kind)
            await streams.open_all(10)  # warm-up: code paths, pools
            await streams.close_all()
            await asyncio.sleep(2)
            before, fds_before = proc.memory_info().rss / MIB, proc.num_fds()
            instance = instance_pid(bridge, "streams", streams.service)
            instance_port = json.loads(
                (bridge.data_dir / "instances/streams" / streams.service / "runtime.json").read_text()
            )["port"]
            conns_before = connections(proc, bridge.port, instance_port)
            instance_before = rss(instance, tree=True) / MIB
            began = time.perf_counter()
            await streams.open_all(args.streams)
            opening = time.perf_counter() - began
            opened = len(streams.open)
            metric_open = await open_streams_metric(bridge, streams.service)
            held = await sample_bridge(proc.pid, args.hold)
            fds_with, instance_with = proc.num_fds(), rss(instance, tree=True) / MIB
            conns_with = connections(proc, bridge.port, instance_port)
            metric_held = await open_streams_metric(bridge, streams.service)
            closed_in, metric_after = await close_and_wait(bridge, streams)
            await asyncio.sleep(2)
            after, fds_after = proc.memory_info().rss / MIB, proc.num_fds()
            conns_after = connections(proc, bridge.port, instance_port)
            await streams.open_all(1)
            still_serving = len(streams.open) == 1
            await streams.close_all()
            # A second round, opened and closed at once: does the bridge reuse what the first one left?
            await streams.open_all(args.streams)
            second = len(streams.open)
            second_with = proc.memory_info().rss / MIB
            await close_and_wait(bridge, streams)
            await asyncio.sleep(2)
            second_after = proc.memory_info().rss / MIB
    per_stream = (held["rss_mib"] - before) * 1024 / max(opened, 1)
    counted = "first endpoint events received" if kind == "legacy" else "200 text/event-stream answers received"
    print(f"\nstreams ({kind}): {args.streams} GET streams through the bridge, held {args.hold:g} s, PROBE_INTERVAL=5")
    print(
        f"opened {opened}/{args.streams} in {opening:.1f} s ({counted}: {opened}); "
        f"errors: {dict(streams.errors) or 'none'}"
    )
    print(
        f"bridge open_streams metric: {metric_open:.0f} after opening, {metric_held:.0f} after the hold, "
        f"{metric_after:.0f} after closing (0 reached in {closed_in:.2f} s)"
    )
    print(f"{'bridge':<24}{'RSS MiB':>9}{'open fds':>10}{'conns from clients':>20}{'to instance':>13}")
    for label, mem, fds, (down, up) in (
        ("before", before, fds_before, conns_before),
        (f"with {opened} open", held["rss_mib"], fds_with, conns_with),
        ("2 s after closing", after, fds_after, conns_after),
    ):
        print(f"{label:<24}{mem:>9.1f}{fds:>10}{down:>20}{up:>13}")
    print(
        f"per stream: {per_stream:.1f} KiB bridge RSS; bridge CPU during the hold {held['cpu_pct']:.1f} % "
        f"of a core; instance RSS {instance_before:.0f} -> {instance_with:.0f} MiB; "
        f"a new stream opens after closing: {still_serving}"
    )
    if kind == "streamable":
        print(
            "(after closing, the connections left are idle keep-alive ones from DELETEing the sessions: "
            "this script's pool and the bridge's upstream pool, which closes them after 30 s)"
        )
    print(
        f"second round ({second} opened, closed at once): bridge RSS {second_with:.1f} MiB with them, "
        f"{second_after:.1f} MiB after (first round left {after:.1f})"
    )
    FIGURES[f"streams_{kind}"] = {
        "asked": args.streams,
        "opened": opened,
        "errors": dict(streams.errors),
        "open_s": opening,
        "hold_s": args.hold,
        "metric_open": metric_open,
        "metric_held": metric_held,
        "metric_after": metric_after,
        "closed_in_s": closed_in,
        "rss_before_mib": before,
        "rss_with_mib": held["rss_mib"],
        "rss_after_mib": after,
        "per_stream_kib": per_stream,
        "cpu_pct_hold": held["cpu_pct"],
        "fds": [fds_before, fds_with, fds_after],
        "conns_from_clients": [conns_before[0], conns_with[0], conns_after[0]],
        "conns_to_instance": [conns_before[1], conns_with[1], conns_after[1]],
        "instance_rss_mib": [instance_before, instance_with],
        "reopen_ok": still_serving,
        "second_round": {"opened": second, "rss_with_mib": second_with, "rss_after_mib": second_after},
    }


async def bench_streams(bench: Bench) -> None:
    for kind in bench.args.stream_kind.split(","):
        await bench_streams_kind(bench, kind)


# ---- main -----------------------------------------------------------------------------------------------


PARTS = {"death": bench_death, "wake": bench_wake, "scale": bench_scale, "streams": bench_streams}


def raise_open_files() -> int:
    """Open-file limit up to the hard limit; the bridge (a child) inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help="parts to run: death,wake,scale,streams")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of death and wake")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--running", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10, help="concurrent registrations")
    parser.add_argument("--sample", type=float, default=20, help="seconds of CPU/RSS sampling")
    parser.add_argument("--scale-probe-interval", type=float, default=5)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--stream-kind", default="legacy,streamable", help="legacy (GET /sse), streamable, or both")
    parser.add_argument("--hold", type=float, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    nofile = raise_open_files()
    needed = 3 * args.streams + 200
    if "streams" in parts and nofile < needed:
        print(f"note: open-file limit {nofile} < {needed}; streams reduced to {(nofile - 200) // 3}")
        args.streams = (nofile - 200) // 3
    memory = psutil.virtual_memory().total / 2**30
    print(
        f"bench_health: {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; open-file limit {nofile}; parts: {', '.join(parts)}"
    )
    FIGURES["machine"] = {"cpus": os.cpu_count(), "ram_gib": round(memory, 1), "nofile": nofile}
    bench = Bench(args)
    began = time.perf_counter()
    try:
        for part in parts:
            asyncio.run(PARTS[part](bench))
    finally:
        if args.keep:
            print(f"\nkept: {bench.work}")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    FIGURES["total_s"] = round(time.perf_counter() - began, 1)
    print(f"\nbench_health: done in {FIGURES['total_s']:.0f} s")
    print(json.dumps(clean(FIGURES), default=str))


def clean(value: Any) -> Any:
    """Rounded floats, None for NaN: a JSON line any parser reads."""
    if isinstance(value, float):
        return None if value != value else round(value, 4)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


if __name__ == "__main__":
    main()
