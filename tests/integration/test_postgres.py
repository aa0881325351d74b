"""The store on a real PostgreSQL server, and two bridges sharing it: one leads, the other takes over.

PostgreSQL comes from Debian's packages (.ci/run installs them); a throwaway cluster is made in a temp
dir and listens on 127.0.0.1 only. Outside CI, the tests skip when the server binaries are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bridge import store
from bridge.ports import PortAllocator
from tests.helpers import BridgeProcess, fixture_catalog, free_block, kill_leftovers, listener_pid, mcp_client

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    binaries = pg_bin()
    if binaries is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="paradise-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        base.chmod(0o755)
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_block(1)
    subprocess.run(
        as_postgres(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -h 127.0.0.1"
    subprocess.run(
        as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            as_postgres(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "paradise"),
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/paradise"
    finally:
        subprocess.run(
            as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_store_and_port_leases_on_postgres(postgres_url: str) -> None:
    engine = store.make_engine(postgres_url)
    first = free_block(20)
    allocator = PortAllocator(engine, range(first, first + 20))
    with ThreadPoolExecutor(max_workers=8) as pool:
        ports = list(pool.map(lambda i: allocator.lease(client_id=f"pg{i}", service="s"), range(20)))
    assert sorted(ports) == list(allocator.pool)  # no two share a port, under concurrency, on PostgreSQL
    with store.session(engine) as db:
        store.add_client(db, client_id="pg0", workspace="/w", profile="quick", token_hash="h0")
        store.add_instance(db, client_id="pg0", service="s", port=ports[0])
        store.update_instance(db, client_id="pg0", service="s", backend_state={"pid": 1}, last_log=["a", "b"])
    with store.session(engine) as db:
        row = store.get_instance(db, client_id="pg0", service="s")
        assert (row.backend_state, row.last_log) == ({"pid": 1}, ["a", "b"])
        store.delete_client(db, client_id="pg0")
    assert allocator.release(client_id="pg1") == [ports[1]]
    assert allocator.usage() == (18, 20)  # pg0 went with its client, pg1 was released
    engine.dispose()


def test_monitor_lease_is_exclusive_and_expires(postgres_url: str) -> None:
    engine = store.make_engine(postgres_url)
    with store.session(engine) as db:
        assert store.acquire_lease(db, name="t", holder="a", ttl=1.0)
    with store.session(engine) as db:
        assert not store.acquire_lease(db, name="t", holder="b", ttl=1.0)
        assert store.acquire_lease(db, name="t", holder="a", ttl=1.0)  # renewal
    time.sleep(1.2)
    with store.session(engine) as db:
        assert store.acquire_lease(db, name="t", holder="b", ttl=1.0)  # a's lease ran out
        assert store.lease_holder(db, name="t").holder == "b"
    engine.dispose()


@contextlib.contextmanager
def bridge_on(url: str, data: Path, catalog: Path, pool: str) -> Iterator[BridgeProcess]:
    proc = BridgeProcess(
        data,
        env={"PARADISE_DATABASE_URL": url, "PARADISE_CATALOG": str(catalog), "PARADISE_PORT_RANGE": pool},
    ).start()
    try:
        yield proc
    finally:
        proc.kill(signal.SIGTERM)


async def call_whoami(bridge: BridgeProcess, client_id: str, token: str, deadline: float) -> dict:
    """Bounded retries: a follower learns of new clients within a probe interval."""
    while True:
        try:
            async with mcp_client(bridge.mcp_url(client_id, "echo"), token) as client:
                return (await client.call_tool("whoami", {})).structured_content
        except Exception:
            if time.monotonic() > deadline:
                raise
            await _sleep(0.3)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_two_bridges_share_clients_and_the_follower_takes_over(postgres_url: str, tmp_path, workspace) -> None:
    catalog = fixture_catalog(tmp_path / "catalog.toml")
    first = free_block(10)
    pool = f"{first}-{first + 9}"
    with (
        bridge_on(postgres_url, tmp_path / "a", catalog, pool) as leader,
        bridge_on(postgres_url, tmp_path / "b", catalog, pool) as follower,
    ):
        try:
            created = leader.register("shared", workspace, ["echo"])
            token = created["token"]
            # The follower serves the client the leader registered (same database, same instance).
            via_b = await call_whoami(follower, "shared", token, time.monotonic() + 15)
            assert via_b["client"] == "shared"
            assert (
                follower.api("GET", "/clients/shared").json()["instances"][0]["port"] == created["instances"][0]["port"]
            )
            port = follower.state("shared", "echo")["port"]
            leader.kill(signal.SIGKILL)  # the monitor's holder dies...
            os.kill(listener_pid(port), signal.SIGKILL)  # ...and so does the instance: only the follower can heal it
            deadline = time.monotonic() + 30
            again = await call_whoami(follower, "shared", token, deadline)  # held until the takeover heals it
            while again["boot"] == via_b["boot"] and time.monotonic() < deadline:
                again = await call_whoami(follower, "shared", token, deadline)
            assert again["boot"] != via_b["boot"]  # a new instance, started by the bridge that took the lease over
            assert follower.state("shared", "echo")["state"] == "running"
            events = follower.api("GET", "/events", params={"limit": 100}).json()
            takeover = [
                e for e in events if e["kind"] == "bridge.reconcile" and "restarted 1: shared/echo" in e["message"]
            ]
            assert takeover, [e["message"] for e in events if e["kind"] == "bridge.reconcile"]
        finally:
            follower.api("DELETE", "/clients/shared")
            kill_leftovers(leader.data_dir)
            kill_leftovers(follower.data_dir)
