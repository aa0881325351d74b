"""Wake from idle: the first MCP exchange through the bridge after IDLE_TIMEOUT put the instance to ``idle``.

    python -m scripts.bench.wake [--repeat 5] [--keep]

IDLE_TIMEOUT=2; once the API says ``idle`` and the old process is gone, the time of the first MCP exchange
through the bridge (the bridge holds it while the instance starts), against a warm exchange; then again
with the request sent as soon as the API says ``idle`` (while the stop may be under way). See
scripts/bench/common.py for the set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import httpx
import psutil

from scripts.bench import common
from tests.helpers import BridgeProcess, instance_pid

NAME = "wake"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own: --repeat is shared with death."""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def one_wake(
    bridge: BridgeProcess, api: httpx.AsyncClient, http: aiohttp.ClientSession, token: str, clean: bool
) -> dict[str, Any]:
    """Wait for ``idle``; with ``clean`` also for the old process to be gone; then time the first exchange."""
    pid = instance_pid(bridge, "sleepy", "echo")
    await common.wait_state(api, "sleepy", "echo", {"idle"}, timeout=30)
    idle_at, stop_lag = time.perf_counter(), float("nan")
    while clean and time.perf_counter() - idle_at < 15:
        if gone(pid):
            stop_lag = time.perf_counter() - idle_at
            break
        await asyncio.sleep(0.01)
    still_stopping = not gone(pid)
    url = bridge.mcp_url("sleepy", "echo")
    began = time.perf_counter()
    first = await common.mcp_exchange(http, url, token)
    whole = time.perf_counter() - began
    began = time.perf_counter()
    await common.mcp_exchange(http, url, token)
    return {
        "first_s": first,
        "exchange_s": whole,
        "warm_s": time.perf_counter() - began,
        "stop_lag_s": stop_lag,
        "old_still_stopping": still_stopping,
    }


async def run(bench: common.Bench) -> None:
    n = bench.args.repeat
    env = {"PARADISE_PROBE_INTERVAL": "1", "PARADISE_IDLE_TIMEOUT": "2"}
    with bench.bridge("wake", env) as bridge:
        async with common.admin(bridge) as api, common.mcp_http(timeout=60) as http:
            token = await common.register(api, "sleepy", bench.workspace, "echo")
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
    common.FIGURES["wake"] = {
        "n": n,
        "idle_timeout_s": 2,
        "after_stop": clean,
        "at_idle": eager,
        "p50_s": statistics.median(exchange),
        "max_s": max(exchange),
        "events": {k: kinds[k] for k in ("instance.wake", "port.moved", "instance.failed")},
    }


if __name__ == "__main__":
    common.main([sys.modules[__name__]], title="bench.wake", description=__doc__.splitlines()[0])
