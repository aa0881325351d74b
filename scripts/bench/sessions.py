"""Invisible restarts: the next answer on an open MCP session after its instance is killed, and after it
was frozen by PAUSE_AFTER.

    python -m scripts.bench.sessions [--repeat 5] [--keep]

One session-era client session (initialize with 2025-06-18, Mcp-Session-Id) stays open the whole time.
"kill": SIGKILL of the instance's server process, then at once a ``tools/call`` on the same session: the
bridge holds it, heals the instance, replays the initialize and answers (PROBE_INTERVAL=30, so no probe finds
the death first). "paused": PAUSE_AFTER=1, wait for ``paused``, then a ``tools/call`` on the same session:
thawed, same process. See scripts/bench/common.py for the set-up.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from typing import Any

import aiohttp
import httpx

from scripts.bench import common
from tests.helpers import BridgeProcess, listener_pid

NAME = "sessions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own: --repeat is shared with death."""


async def timed_call(session: Any) -> float:
    began = time.perf_counter()
    with common.counted_failure():
        text = await session.call_tool("echo", {"text": "ok"})
    if text != "ok":
        raise common.ExchangeFailed(f"unexpected answer {text[:100]!r}")
    return time.perf_counter() - began


async def kills(
    bench: common.Bench, bridge: BridgeProcess, api: httpx.AsyncClient, http: aiohttp.ClientSession
) -> list[float]:
    n = bench.args.repeat
    token = await common.register(api, "victim", bench.workspace, "echo")
    session = common.bridge_session(http, bridge.mcp_url("victim", "echo"), token)
    await session.open()
    times = []
    for _ in range(n):
        await timed_call(session)  # warm
        port = (await api.get("/clients/victim")).json()["instances"][0]["port"]
        os.kill(listener_pid(port), signal.SIGKILL)
        times.append(await timed_call(session))
        await common.wait_state(api, "victim", "echo", {"running"}, timeout=30)
    await session.close()
    return times


async def thaws(
    bench: common.Bench, bridge: BridgeProcess, api: httpx.AsyncClient, http: aiohttp.ClientSession
) -> dict:
    n = bench.args.repeat
    token = await common.register(api, "frozen", bench.workspace, "echo")
    session = common.bridge_session(http, bridge.mcp_url("frozen", "echo"), token)
    await session.open()
    cold, warm = [], []
    for _ in range(n):
        await common.wait_state(api, "frozen", "echo", {"paused"}, timeout=30)
        cold.append(await timed_call(session))
        warm.append(await timed_call(session))
    await session.close()
    return {"thaw": cold, "warm": warm}


async def run(bench: common.Bench) -> None:
    n = bench.args.repeat
    with bench.bridge("sessions-kill", {"PARADISE_PROBE_INTERVAL": "30"}) as bridge:
        async with common.admin(bridge) as api, common.mcp_http(timeout=60) as http:
            killed = await kills(bench, bridge, api, http)
    with bench.bridge("sessions-pause", {"PARADISE_PROBE_INTERVAL": "0.5", "PARADISE_PAUSE_AFTER": "1"}) as bridge:
        async with common.admin(bridge) as api, common.mcp_http(timeout=60) as http:
            paused = await thaws(bench, bridge, api, http)
    print(f"\ninvisible restarts: one open session (protocol 2025-06-18), n={n} each")
    print(f"{'':<62}{'p50 s':>8}{'max s':>8}")
    rows = (
        ("kill -9 -> next tools/call on the same session answered", killed),
        ("paused (PAUSE_AFTER=1) -> next tools/call answered (thaw)", paused["thaw"]),
        ("warm tools/call, for comparison", paused["warm"]),
    )
    for label, values in rows:
        print(f"{label:<62}{statistics.median(values):>8.3f}{max(values):>8.3f}")
    common.FIGURES["sessions"] = {
        "n": n,
        "kill_next_answer_s": {"p50": statistics.median(killed), "max": max(killed), "all": killed},
        "wake_from_paused_s": {"p50": statistics.median(paused["thaw"]), "max": max(paused["thaw"]),
                               "all": paused["thaw"]},
        "warm_call_s": statistics.median(paused["warm"]),
    }


if __name__ == "__main__":
    common.main([sys.modules[__name__]], title="bench.sessions", description=__doc__.splitlines()[0])
