"""Many open streams: STREAMS GET streams held open through the bridge for HOLD s; its cost and clean-up.

    python -m scripts.bench.streams [--streams 2000] [--stream-kind legacy,streamable] [--hold 10] [--keep]

``legacy``: GET /sse, one stream each, its first ``endpoint`` event counted; ``streamable``: initialize +
one GET per session, its 200 SSE answer counted. The bridge's RSS before, with and after them, and that
they close cleanly. See scripts/bench/common.py for the set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from scripts.bench import common
from tests.helpers import BridgeProcess, instance_pid

NAME = "streams"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--stream-kind", default="legacy,streamable", help="legacy (GET /sse), streamable, or both")
    parser.add_argument("--hold", type=float, default=10, help="seconds the streams are held open")


class Streams:
    def __init__(self, bridge: BridgeProcess, http: aiohttp.ClientSession, token: str, kind: str) -> None:
        self.bridge, self.http, self.token, self.kind = bridge, http, token, kind
        self.open: list[aiohttp.ClientResponse] = []
        self.sessions: list[McpSession] = []
        self.errors: Counter[str] = Counter()

    @property
    def service(self) -> str:
        return "legacy" if self.kind == "legacy" else "echo"

    async def open_one(self) -> None:
        try:
            async with asyncio.timeout(60):
                resp = await (self._legacy() if self.kind == "legacy" else self._streamable())
            self.open.append(resp)
        except (aiohttp.ClientError, TimeoutError, common.ExchangeFailed) as exc:
            self.errors[f"{exc.__class__.__name__}: {str(exc)[:80]}"] += 1

    async def _legacy(self) -> aiohttp.ClientResponse:
        url = f"{self.bridge.url}/c/streams/legacy/sse"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": ACCEPT_STREAM}
        resp = await self.http.get(url, headers=headers)
        async for event in sse_events(resp):  # the first event: the endpoint, rewritten to the bridge's path
            if event.get("event") == "endpoint":
                if not event.get("data", "").startswith("/c/streams/legacy/messages"):
                    resp.close()
                    raise common.ExchangeFailed(f"endpoint not rewritten: {event.get('data')}")
                return resp
        resp.close()
        raise common.ExchangeFailed(f"HTTP {resp.status}, no endpoint event")

    async def _streamable(self) -> aiohttp.ClientResponse:
        session = common.bridge_session(self.http, self.bridge.mcp_url("streams", "echo"), self.token)
        with common.counted_failure():
            await session.open()
            self.sessions.append(session)
            return await session.stream()

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
        gate = asyncio.Semaphore(50)

        async def delete(session: McpSession) -> None:
            async with gate:
                await session.close()

        await asyncio.gather(*(delete(s) for s in self.sessions))
        self.sessions.clear()


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
        text = (await http.get(bridge.url + "/metrics", headers={"Authorization": f"Bearer {bridge.admin_token}"})).text
    pattern = rf'^paradise_open_streams\{{[^}}]*client="streams"[^}}]*service="{service}"[^}}]*\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def measure(bench: common.Bench, bridge: BridgeProcess, streams: Streams) -> dict[str, Any]:
    """Open STREAMS, hold them, close them; then a second round. The figures of one kind."""
    args = bench.args
    proc = psutil.Process(bridge.proc.pid)  # type: ignore[union-attr]
    await streams.open_all(10)  # warm-up: code paths, pools
    await streams.close_all()
    await asyncio.sleep(2)
    before, fds_before = proc.memory_info().rss / common.MIB, proc.num_fds()
    instance = instance_pid(bridge, "streams", streams.service)
    runtime = bridge.data_dir / "instances/streams" / streams.service / "runtime.json"
    instance_port = json.loads(runtime.read_text())["port"]
    conns_before = connections(proc, bridge.port, instance_port)
    instance_before = common.rss(instance, tree=True) / common.MIB
    began = time.perf_counter()
    await streams.open_all(args.streams)
    opening = time.perf_counter() - began
    opened = len(streams.open)
    metric_open = await open_streams_metric(bridge, streams.service)
    held = await common.sample_bridge(proc.pid, args.hold)
    fds_with, instance_with = proc.num_fds(), common.rss(instance, tree=True) / common.MIB
    conns_with = connections(proc, bridge.port, instance_port)
    metric_held = await open_streams_metric(bridge, streams.service)
    closed_in, metric_after = await close_and_wait(bridge, streams)
    await asyncio.sleep(2)
    after, fds_after = proc.memory_info().rss / common.MIB, proc.num_fds()
    conns_after = connections(proc, bridge.port, instance_port)
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
        "instance_rss_mib": [instance_before, instance_with],
        "reopen_ok": still_serving,
        "second_round": {"opened": second, "rss_with_mib": second_with, "rss_after_mib": second_after},
    }


def report(kind: str, fig: dict[str, Any]) -> None:
    counted = "first endpoint events received" if kind == "legacy" else "200 text/event-stream answers received"
    held = f"held {fig['hold_s']:g} s, PROBE_INTERVAL=5"
    print(f"\nstreams ({kind}): {fig['asked']} GET streams through the bridge, {held}")
    print(
        f"opened {fig['opened']}/{fig['asked']} in {fig['open_s']:.1f} s ({counted}: {fig['opened']}); "
        f"errors: {fig['errors'] or 'none'}"
    )
    print(
        f"bridge open_streams metric: {fig['metric_open']:.0f} after opening, {fig['metric_held']:.0f} after the "
        f"hold, {fig['metric_after']:.0f} after closing (0 reached in {fig['closed_in_s']:.2f} s)"
    )
    print(f"{'bridge':<24}{'RSS MiB':>9}{'open fds':>10}{'conns from clients':>20}{'to instance':>13}")
    rows = zip(
        ("before", f"with {fig['opened']} open", "2 s after closing"),
        (fig["rss_before_mib"], fig["rss_with_mib"], fig["rss_after_mib"]),
        fig["fds"],
        fig["conns_from_clients"],
        fig["conns_to_instance"],
        strict=True,
    )
    for label, mem, fds, down, up in rows:
        print(f"{label:<24}{mem:>9.1f}{fds:>10}{down:>20}{up:>13}")
    instance_before, instance_with = fig["instance_rss_mib"]
    print(
        f"per stream: {fig['per_stream_kib']:.1f} KiB bridge RSS; bridge CPU during the hold "
        f"{fig['cpu_pct_hold']:.1f} % of a core; instance RSS {instance_before:.0f} -> {instance_with:.0f} MiB; "
        f"a new stream opens after closing: {fig['reopen_ok']}"
    )
    if kind == "streamable":
        print(
            "(after closing, the connections left are idle keep-alive ones from DELETEing the sessions: "
            "this script's pool and the bridge's upstream pool, which closes them after 30 s)"
        )
    second = fig["second_round"]
    print(
        f"second round ({second['opened']} opened, closed at once): bridge RSS {second['rss_with_mib']:.1f} MiB "
        f"with them, {second['rss_after_mib']:.1f} MiB after (first round left {fig['rss_after_mib']:.1f})"
    )


async def run_kind(bench: common.Bench, kind: str) -> None:
    with bench.bridge(f"streams-{kind}", {"PARADISE_PROBE_INTERVAL": "5"}, pool_size=5) as bridge:
        async with common.admin(bridge) as api:
            token = await common.register(api, "streams", bench.workspace, "legacy" if kind == "legacy" else "echo")
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            figures = await measure(bench, bridge, Streams(bridge, http, token, kind))
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
