"""A rolling restart of two bridges on one PostgreSQL loses no call (issue 27.3): each bridge in turn is
upgraded in place (``serve --upgrade``: the new process takes the listening socket, the old one drains)
while clients of both protocol eras call through both bridges without pause, one of them in long streamed
calls. Between the two upgrades, and after, both bridges serve the same clients and instances.

Real bridges, a throwaway PostgreSQL cluster on 127.0.0.1 (tests/integration/test_postgres.py), real SDK
servers as instances, the official SDK as clients. About 40 s on a quiet 2-core machine.
"""

from __future__ import annotations

import asyncio
import time

from tests.helpers import fixture_catalog, free_block, kill_leftovers
from tests.integration.test_bridge_upgrade import Load, upgrade, wait_exit
from tests.integration.test_postgres import bridge_on, call_whoami, postgres_url  # noqa: F401 - the fixture

# client -> (bridge it calls: 0 or 1, protocol era, long streamed calls)
CLIENTS = {"ann": (0, "legacy", False), "ben": (1, "auto", False), "cid": (1, "legacy", True)}
CALLS = 8  # calls each client makes before an upgrade, between the two, and after the last


async def test_a_rolling_restart_of_two_bridges_loses_no_call(postgres_url: str, tmp_path, workspace) -> None:  # noqa: F811
    catalog = fixture_catalog(tmp_path / "catalog.toml")
    first = free_block(10)
    pool = f"{first}-{first + 9}"
    with (
        bridge_on(postgres_url, tmp_path / "a", catalog, pool) as one,
        bridge_on(postgres_url, tmp_path / "b", catalog, pool) as two,
    ):
        bridges = (one, two)
        try:
            tokens = {c: one.register(c, workspace, ["echo"])["token"] for c in CLIENTS}
            for client_id, (which, _, _) in CLIENTS.items():  # the follower learns of them within a probe
                await call_whoami(bridges[which], client_id, tokens[client_id], time.monotonic() + 20)
            load = Load()
            tasks = [
                asyncio.create_task(load.calls(bridges[which], c, tokens[c], mode, long))
                for c, (which, mode, long) in CLIENTS.items()
            ]
            try:
                await load.until(dict.fromkeys(CLIENTS, CALLS))
                for bridge in bridges:  # one at a time: the other keeps serving its clients meanwhile
                    old = bridge.proc
                    assert old is not None
                    bridge.proc = upgrade(bridge)
                    assert await wait_exit(old) == 0, bridge.log.read_text()[-3000:]
                    await load.until(dict.fromkeys(CLIENTS, CALLS), timeout=60)
            finally:
                load.stop.set()
                await asyncio.gather(*tasks)
            assert load.failed == [], load.failed
            assert all(sent >= 3 * CALLS for sent in load.sent.values()), load.sent
            for bridge in bridges:
                assert bridge.proc is not None and bridge.proc.poll() is None
                assert "hand-over: a new bridge serves" in bridge.log.read_text()
            # The same instances before and after: adopted, never restarted by the rolling restart.
            assert all(len(boots) == 1 for c, boots in load.boots.items() if not CLIENTS[c][2]), load.boots
        finally:
            for client_id in CLIENTS:
                one.api("DELETE", f"/clients/{client_id}")
            for bridge in bridges:
                kill_leftovers(bridge.data_dir)
