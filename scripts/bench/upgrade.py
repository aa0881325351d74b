"""Requests lost during a bridge upgrade under load (issue 27.3, goal 0): MCP calls from several SDK clients
without pause while ``serve --upgrade`` replaces the bridge, once or more.

    python -m scripts.bench.upgrade [--clients 6] [--seconds 12] [--upgrades 2]

A real bridge (process runtime, the fixture MCP server of the tests as ``echo``), clients of both protocol
eras (every other one session-era, ``mode="legacy"``, with its GET stream), each calling ``echo`` in a loop
for ``--seconds``; the upgrades are spread over that time. Prints calls sent and failed, the slowest call,
and each old bridge's time from the upgrade command to its exit. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from tests.helpers import fixture_bridge, mcp_client, serving
from tests.integration.test_bridge_upgrade import upgrade, wait_exit


async def calls(url: str, token: str, mode: str, until: float, tally: dict[str, list]) -> None:
    async with mcp_client(url, token, mode=mode) as client:
        n = 0
        while time.monotonic() < until:
            n += 1
            began = time.perf_counter()
            try:
                result = await client.call_tool("echo", {"text": str(n)})
                if result.is_error or result.content[0].text != str(n):
                    raise RuntimeError(f"wrong answer: {result}")
            except Exception as exc:  # counted, whatever it is
                tally["failed"].append(repr(exc))
            tally["latency"].append(time.perf_counter() - began)


async def bench(clients: int, seconds: float, upgrades: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        base, workspace = Path(tmp), Path(tmp) / "workspace"
        workspace.mkdir()
        with serving(fixture_bridge(base)) as bridge:
            tokens = [bridge.register(f"c{i}", workspace, ["echo"])["token"] for i in range(clients)]
            tally: dict[str, list] = {"failed": [], "latency": []}
            until = time.monotonic() + seconds
            load = [
                asyncio.create_task(calls(bridge.mcp_url(f"c{i}", "echo"), token, "legacy" if i % 2 else "auto",
                                          until, tally))
                for i, token in enumerate(tokens)
            ]
            exits = []
            for k in range(upgrades):
                await asyncio.sleep(max(0.0, until - seconds * (upgrades - k) / (upgrades + 1) - time.monotonic()))
                old, began = bridge.proc, time.monotonic()
                bridge.proc = upgrade(bridge)
                assert old is not None and await wait_exit(old) == 0, bridge.log.read_text()[-3000:]
                exits.append(round(time.monotonic() - began, 2))
            await asyncio.gather(*load)
    latency = sorted(tally["latency"])
    return {
        "clients": clients, "seconds": seconds, "upgrades": upgrades, "sent": len(latency),
        "failed": len(tally["failed"]), "errors": tally["failed"][:5],
        "slowest_call_s": round(latency[-1], 3) if latency else None,
        "p50_call_ms": round(1000 * latency[len(latency) // 2], 1) if latency else None,
        "old_bridge_exit_s": exits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--upgrades", type=int, default=2)
    args = parser.parse_args()
    # The clients share one workspace in the temp dir (the default root, the user's home, would refuse it).
    os.environ.setdefault("PARADISE_WORKSPACE_ROOTS", str(Path(tempfile.gettempdir()).resolve()))
    os.environ.setdefault("PARADISE_SHARED_WORKSPACES", "true")
    figures = asyncio.run(bench(args.clients, args.seconds, args.upgrades))
    print(f"calls sent {figures['sent']}, failed {figures['failed']} during {args.upgrades} upgrade(s) under "
          f"{args.clients} clients; slowest call {figures['slowest_call_s']} s (p50 {figures['p50_call_ms']} ms); "
          f"old bridge gone after {figures['old_bridge_exit_s']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
