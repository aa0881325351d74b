"""A canary rollout of many clients under load (issue 27.5): wall time per wave, the worst latency a client saw.

    python -m scripts.bench.rollout [--clients 20] [--waves 10,25,50,100] [--soak 5]

A real bridge (process runtime, the versioned fixture server of tests/integration/test_rollouts.py as
``canary``), one session-era SDK client per instance calling ``version`` without pause, and a rollout from v1
to v2. Prints, per wave, its wall time (move, settle and soak) and the slowest call any client saw while it ran;
then calls sent and failed in all. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from tests.helpers import BridgeProcess, mcp_client, serving
from tests.integration.test_rollouts import canary_catalog


async def caller(url: str, token: str, stop: asyncio.Event, calls: list[tuple[float, float, bool]]) -> None:
    """Calls until ``stop``; each call's (end time, seconds, ok)."""
    async with mcp_client(url, token, mode="legacy") as client:
        for _ in range(1_000_000):
            if stop.is_set():
                return
            began = time.monotonic()
            try:
                ok = not (await client.call_tool("version", {})).is_error
            except Exception:
                ok = False
            calls.append((time.monotonic(), time.monotonic() - began, ok))


def wait_running(bridge: BridgeProcess, clients: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(bridge.state(c, "canary")["state"] == "running" for c in clients):
            return
        time.sleep(0.5)
    raise RuntimeError("instances not running in time")


async def follow(bridge: BridgeProcess, timeout: float) -> tuple[dict, list[tuple[int, float]]]:
    """Poll the rollout until it ends; the final record and (wave index, time it began) marks."""
    marks, last = [(0, time.monotonic())], 0
    for _ in range(int(timeout / 0.2)):
        rollout = (await asyncio.to_thread(bridge.api, "GET", "/rollouts/canary")).json()
        if rollout["wave"] != last:
            last = rollout["wave"]
            marks.append((last, time.monotonic()))
        if not rollout["active"]:
            return rollout, marks
        await asyncio.sleep(0.2)
    raise RuntimeError("rollout did not end in time")


async def bench(clients: int, waves: list[int], soak: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        base, workspace = Path(tmp), Path(tmp) / "workspace"
        workspace.mkdir()
        env = {"PARADISE_CATALOG": str(canary_catalog(base / "catalog.toml")), "PARADISE_READY_TIMEOUT": "120",
               "PARADISE_START_TIMEOUT": "60"}  # fmt: skip
        with serving(BridgeProcess(base / "data", env=env, pool_size=clients + 10)) as bridge:
            names = [f"c{i:02d}" for i in range(clients)]
            tokens = {c: bridge.register(c, workspace, ["canary"], wait=0)["token"] for c in names}
            await asyncio.to_thread(wait_running, bridge, names)
            stop, calls = asyncio.Event(), []
            load = [asyncio.create_task(caller(bridge.mcp_url(c, "canary"), t, stop, calls)) for c, t in tokens.items()]
            await asyncio.sleep(2)
            began = time.monotonic()
            body = {"service": "canary", "to": "v2", "waves": waves, "soak": soak}
            assert bridge.api("POST", "/rollouts", json=body).status_code == 201
            final, marks = await follow(bridge, timeout=600)
            ended = time.monotonic()
            events = bridge.api("GET", "/events", params={"limit": 1000}).json()
            warnings = [f"{e['client_id']}: {e['kind']}: {e['message'][:300]}" for e in events if e["level"] != "info"]
            stop.set()
            await asyncio.gather(*load)
    bounds = [*(t for _, t in marks[1:]), ended]
    starts = [began, *bounds[:-1]]
    per_wave = []
    for gate, start, end in zip(final["gates"], starts, bounds, strict=False):
        during = [seconds for at, seconds, _ in calls if start <= at <= end]
        per_wave.append({"wave": gate["wave"], "percent": gate["percent"], "moved": gate["moved"],
                         "wall_s": gate.get("seconds"), "worst_call_s": round(max(during, default=0), 3),
                         "calls": len(during)})  # fmt: skip
    return {
        "clients": clients, "soak_s": soak, "state": final["state"], "reason": final["reason"],
        "total_s": round(ended - began, 1),
        "waves": per_wave, "sent": len(calls), "failed": sum(1 for *_, ok in calls if not ok),
        "worst_call_s": round(max((s for _, s, _ in calls), default=0), 3), "warnings": warnings[:8],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--waves", default="10,25,50,100")
    parser.add_argument("--soak", type=float, default=5)
    args = parser.parse_args()
    os.environ.setdefault("PARADISE_WORKSPACE_ROOTS", str(Path(tempfile.gettempdir()).resolve()))
    os.environ.setdefault("PARADISE_SHARED_WORKSPACES", "true")
    waves = [int(w) for w in args.waves.split(",")]
    print(json.dumps(asyncio.run(bench(args.clients, waves, args.soak)), indent=2))


if __name__ == "__main__":
    main()
