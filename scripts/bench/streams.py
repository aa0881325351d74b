"""Many open streams: STREAMS GET streams held open through the bridge for HOLD s; its cost and clean-up.

    python -m scripts.bench.streams [--streams 2000] [--stream-kind legacy,streamable] [--hold 10] [--keep]

The proxy lets a client hold at most MAX_STREAMS_PER_CLIENT (64) open streams (more get 429), so the
streams are spread over ceil(STREAMS / 64) clients, ``streams-0``, ``streams-1``, ..., each registered with
its own instance: STREAMS streams on one client would measure the cap, not the bridge holding them.

``legacy``: GET /sse, one stream each, its first ``endpoint`` event counted; ``streamable``: initialize +
one GET per session, its 200 SSE answer counted. The bridge's RSS before, with and after them, and that
they close cleanly; connections to instances and instance RSS are summed over all the clients' instances.
See scripts/bench/common.py for the set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import httpx
import psutil

from bridge.mcp.client import McpSession, sse_events
from bridge.mcp.protocol import ACCEPT_STREAM
from bridge.proxy.proxy import MAX_STREAMS_PER_CLIENT
from scripts.bench import common
from tests.helpers import BridgeProcess, instance_pid

NAME = "streams"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--stream-kind", default="legacy,streamable", help="legacy (GET /sse), streamable, or both")
    parser.add_argument("--hold", type=float, default=10, help="seconds the streams are held open")


def service_of(kind: str) -> str:
    """The fixture catalog's service a stream kind is opened on."""
    return "legacy" if kind == "legacy" else "echo"


class Streams:
    """Streams of one kind, opened over the clients of ``tokens`` (client -> token)."""

    def __init__(self, bridge: BridgeProcess, http: aiohttp.ClientSession, tokens: dict[str, str], kind: str) -> None:
        self.bridge, self.http, self.tokens, self.kind = bridge, http, tokens, kind
        self.clients = list(tokens)
        self.open: list[aiohttp.ClientResponse] = []
        self.sessions: list[McpSession] = []
        self.errors: Counter[str] = Counter()

    @property
    def service(self) -> str:
        return service_of(self.kind)

    async def open_one(self, client: str) -> None:
        try:
            async with asyncio.timeout(60):
                resp = await (self._legacy(client) if self.kind == "legacy" else self._streamable(client))
            self.open.append(resp)
        except (aiohttp.ClientError, TimeoutError, common.ExchangeFailed) as exc:
            self.errors[f"{exc.__class__.__name__}: {str(exc)[:80]}"] += 1

    async def _legacy(self, client: str) -> aiohttp.ClientResponse:
        url = f"{self.bridge.url}/c/{client}/legacy/sse"
        headers = {"Authorization": f"Bearer {self.tokens[client]}", "Accept": ACCEPT_STREAM}
        resp = await self.http.get(url, headers=headers)
        async for event in sse_events(resp):  # the first event: the endpoint, rewritten to the bridge's path
            if event.get("event") == "endpoint":
                if not event.get("data", "").startswith(f"/c/{client}/legacy/messages"):
                    resp.close()
                    raise common.ExchangeFailed(f"endpoint not rewritten: {event.get('data')}")
                return resp
        resp.close()
        raise common.ExchangeFailed(f"HTTP {resp.status}, no endpoint event")

    async def _streamable(self, client: str) -> aiohttp.ClientResponse:
        session = common.bridge_session(self.http, self.bridge.mcp_url(client, "echo"), self.tokens[client])
        with common.counted_failure():
            await session.open()
            self.sessions.append(session)
            return await session.stream()

    async def open_all(self, count: int, concurrency: int = 100) -> None:
        """``count`` streams at once, dealt round the clients: none gets more than ceil(count / clients)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(client: str) -> None:
            async with gate:
                await self.open_one(client)

        await asyncio.gather(*(one(self.clients[i % len(self.clients)]) for i in range(count)))

    async def close_all(self) -> None:
        self.close_streams()
        await self.end_sessions()

    def close_streams(self) -> None:
        for resp in self.open:
            resp.close()
        self.open.clear()

    async def end_sessions(self) -> None:
        """DELETE the MCP sessions (streamable) the streams were opened on."""
        gate = asyncio.Semaphore(50)

        async def delete(session: McpSession) -> None:
            async with gate:
                await session.close()

        await asyncio.gather(*(delete(s) for s in self.sessions))
        self.sessions.clear()


def connections(proc: psutil.Process, bridge_port: int, instance_ports: set[int]) -> tuple[int, int]:
    """The bridge's established TCP connections: from clients, and to the instances (all their ports)."""
    down = up = 0
    for conn in proc.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_ESTABLISHED or not conn.raddr:
            continue
        down += conn.laddr.port == bridge_port
        up += conn.raddr.port in instance_ports
    return down, up


def instances(bridge: BridgeProcess, streams: Streams) -> tuple[list[int], set[int]]:
    """The pids and ports of the clients' instances."""
    labels = [bridge.data_dir / "instances" / client / streams.service / "runtime.json" for client in streams.clients]
    ports = {json.loads(label.read_text())["port"] for label in labels}
    return [instance_pid(bridge, client, streams.service) for client in streams.clients], ports


def instances_rss(pids: list[int]) -> float:
    return sum(common.rss(pid, tree=True) for pid in pids) / common.MIB


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
    """The bridge's open-streams gauge, summed over the streams-N clients."""
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(bridge.url + "/metrics", headers={"Authorization": f"Bearer {bridge.admin_token}"})).text
    pattern = rf'^paradise_open_streams\{{[^}}]*client="streams-\d+"[^}}]*service="{service}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


async def measure(bench: common.Bench, bridge: BridgeProcess, streams: Streams) -> dict[str, Any]:
    """Open STREAMS, hold them, close them; then a second round. The figures of one kind."""
    args = bench.args
    proc = psutil.Process(bridge.proc.pid)  # type: ignore[union-attr]
    await streams.open_all(max(10, len(streams.clients)))  # warm-up: code paths, every instance's pool
    await streams.close_all()
    await asyncio.sleep(2)
    before, fds_before = proc.memory_info().rss / common.MIB, proc.num_fds()
    pids, instance_ports = instances(bridge, streams)
    conns_before = connections(proc, bridge.port, instance_ports)
    instance_before = instances_rss(pids)
    began = time.perf_counter()
    await streams.open_all(args.streams)
    opening = time.perf_counter() - began
    opened = len(streams.open)
    metric_open = await open_streams_metric(bridge, streams.service)
    held = await common.sample_bridge(proc.pid, args.hold)
    fds_with, instance_with = proc.num_fds(), instances_rss(pids)
    conns_with = connections(proc, bridge.port, instance_ports)
    metric_held = await open_streams_metric(bridge, streams.service)
    closed_in, metric_after = await close_and_wait(bridge, streams)
    await asyncio.sleep(2)
    after, fds_after = proc.memory_info().rss / common.MIB, proc.num_fds()
    conns_after = connections(proc, bridge.port, instance_ports)
    await streams.open_all(1)
    still_serving = len(streams.open) == 1
    await streams.close_all()
    # A second round, opened and closed at once: does the bridge reuse what the first one left?
    await streams.open_all(args.streams)
    second = len(streams.open)
    second_with = proc.memory_info().rss / common.MIB
    await close_and_wait(bridge, streams)
    await asyncio.sleep(2)
    second_after = proc.memory_info().rss / common.MIB
    return {
        "asked": args.streams,
        "clients": len(streams.clients),
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
        "per_stream_kib": (held["rss_mib"] - before) * 1024 / max(opened, 1),
        "cpu_pct_hold": held["cpu_pct"],
        "fds": [fds_before, fds_with, fds_after],
        "conns_from_clients": [conns_before[0], conns_with[0], conns_after[0]],
        "conns_to_instance": [conns_before[1], conns_with[1], conns_after[1]],
        "instance_rss_mib": [instance_before, instance_with],  # summed over the clients' instances
        "reopen_ok": still_serving,
        "second_round": {"opened": second, "rss_with_mib": second_with, "rss_after_mib": second_after},
    }


def report(kind: str, fig: dict[str, Any]) -> None:
    counted = "first endpoint events received" if kind == "legacy" else "200 text/event-stream answers received"
    held = f"held {fig['hold_s']:g} s, PROBE_INTERVAL=5"
    spread = f"over {fig['clients']} clients (at most {MAX_STREAMS_PER_CLIENT} streams each)"
    print(f"\nstreams ({kind}): {fig['asked']} GET streams through the bridge {spread}, {held}")
    print(f"{fig['clients']} clients registered, one instance each, in {fig['register_s']:.1f} s")
    print(
        f"opened {fig['opened']}/{fig['asked']} in {fig['open_s']:.1f} s ({counted}: {fig['opened']}); "
        f"errors: {fig['errors'] or 'none'}"
    )
    print(
        f"bridge open_streams metric: {fig['metric_open']:.0f} after opening, {fig['metric_held']:.0f} after the "
        f"hold, {fig['metric_after']:.0f} after closing (0 reached in {fig['closed_in_s']:.2f} s)"
    )
    print(f"{'bridge':<24}{'RSS MiB':>9}{'open fds':>10}{'conns from clients':>20}{'to instances':>14}")
    rows = zip(
        ("before", f"with {fig['opened']} open", "2 s after closing"),
        (fig["rss_before_mib"], fig["rss_with_mib"], fig["rss_after_mib"]),
        fig["fds"],
        fig["conns_from_clients"],
        fig["conns_to_instance"],
        strict=True,
    )
    for label, mem, fds, down, up in rows:
        print(f"{label:<24}{mem:>9.1f}{fds:>10}{down:>20}{up:>14}")
    instance_before, instance_with = fig["instance_rss_mib"]
    print(
        f"per stream: {fig['per_stream_kib']:.1f} KiB bridge RSS; bridge CPU during the hold "
        f"{fig['cpu_pct_hold']:.1f} % of a core; "
        f"instance RSS (sum of {fig['clients']}) {instance_before:.0f} -> {instance_with:.0f} MiB; "
        f"a new stream opens after closing: {fig['reopen_ok']}"
    )
    if kind == "streamable":
        print(
            "(after closing, the connections left are idle keep-alive ones from DELETEing the sessions: this "
            "script's pool and the proxy's upstream pool, which reuses none idle over 3 s and drops one as soon "
            "as its instance closes it: uvicorn does after 5 s idle)"
        )
    second = fig["second_round"]
    print(
        f"second round ({second['opened']} opened, closed at once): bridge RSS {second['rss_with_mib']:.1f} MiB "
        f"with them, {second['rss_after_mib']:.1f} MiB after (first round left {fig['rss_after_mib']:.1f})"
    )


async def run_kind(bench: common.Bench, kind: str) -> None:
    names = [f"streams-{i}" for i in range(math.ceil(bench.args.streams / MAX_STREAMS_PER_CLIENT))]
    service = service_of(kind)
    # Dozens of instances start at once on few cores: a few at a time, each given minutes to be ready.
    env = {"PARADISE_PROBE_INTERVAL": "5", "PARADISE_READY_TIMEOUT": "240"}
    with bench.bridge(f"streams-{kind}", env, pool_size=len(names) + 5) as bridge:
        began = time.perf_counter()
        async with common.admin(bridge, timeout=300) as api:
            tokens = await common.register_many(api, names, bench.workspace, service, concurrency=4, wait=240)
        registration = time.perf_counter() - began
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            figures = await measure(bench, bridge, Streams(bridge, http, tokens, kind))
        figures["register_s"] = registration
    report(kind, figures)
    common.FIGURES[f"streams_{kind}"] = figures


async def run(bench: common.Bench) -> None:
    needed = 3 * bench.args.streams + 200  # a stream holds a client socket, a bridge socket and an upstream one
    if bench.nofile < needed:
        bench.args.streams = (bench.nofile - 200) // 3
        print(f"note: open-file limit {bench.nofile} < {needed}; streams reduced to {bench.args.streams}")
    for kind in bench.args.stream_kind.split(","):
        await run_kind(bench, kind)


if __name__ == "__main__":
    common.main([sys.modules[__name__]], title="bench.streams", description=__doc__.splitlines()[0])
