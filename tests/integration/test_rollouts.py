"""Canary rollouts through a real bridge process, fixture MCP servers on the process runtime and the official
SDK client: a bad version stops at its first wave and is rolled back unseen, a good one reaches every client
with its session intact, and a bridge killed mid-rollout finishes it when it starts again.

The service ``canary`` is tests/fixtures/versioned_server.py; its versions differ by environment only:
``v2`` is good, ``broken`` exits at start (never ready), ``erring`` answers MCP but fails every tools/call.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from bridge import store
from bridge.models import Rollout
from tests.helpers import PYTHON, ROOT, BridgeProcess, mcp_client, serving
from tests.integration.test_postgres import postgres_url  # noqa: F401 (the fixture)

CLIENTS = ("c0", "c1", "c2")  # instances are moved in client order: c0 is the first wave's canary
FINAL = {"done", "rolled_back", "aborted"}


def canary_catalog(path: Path) -> Path:
    base = f'["{PYTHON}", "-m", "tests.fixtures.versioned_server", "--port", "{{port}}"]'
    path.write_text(
        "[services.canary]\n"
        f"command = {base}\n"
        f'env = {{ PYTHONPATH = "{ROOT}", FIXTURE_VERSION = "1" }}\n'
        'version = "v1"\n'
        '[services.canary.versions.v2]\nenv = { FIXTURE_VERSION = "2" }\n'
        '[services.canary.versions.broken]\nenv = { FIXTURE_VERSION = "broken", FIXTURE_FAULT = "exit" }\n'
        '[services.canary.versions.erring]\n'
        'env = { FIXTURE_VERSION = "erring", FIXTURE_FAULT = "call-errors" }\n'
    )
    return path


@contextlib.contextmanager
def canary_bridge(tmp_path: Path) -> Iterator[BridgeProcess]:
    env = {"PARADISE_CATALOG": str(canary_catalog(tmp_path / "catalog.toml")), "PARADISE_ROLLOUT_MIN_CALLS": "3"}
    with serving(BridgeProcess(tmp_path / "data", env=env)) as bridge:
        yield bridge


def register_all(bridge: BridgeProcess, workspace: Path) -> dict[str, str]:
    return {c: bridge.register(c, workspace, ["canary"], wait=30)["token"] for c in CLIENTS}


def versions(bridge: BridgeProcess) -> dict[str, tuple[str, str, str]]:
    """client -> (state, version, version_id) of its canary instance."""
    out = {}
    for client in bridge.api("GET", "/clients").json():
        inst = client["instances"][0]
        out[client["client_id"]] = (inst["state"], inst["version"], inst["version_id"])
    return out


def start(bridge: BridgeProcess, to: str, waves: list[int], soak: float) -> dict[str, Any]:
    resp = bridge.api("POST", "/rollouts", json={"service": "canary", "to": to, "waves": waves, "soak": soak})
    assert resp.status_code == 201, resp.text
    return resp.json()


def rollout(bridge: BridgeProcess) -> dict[str, Any]:
    resp = bridge.api("GET", "/rollouts/canary")
    assert resp.status_code == 200, resp.text
    return resp.json()


async def until_final(bridge: BridgeProcess, timeout: float = 90) -> dict[str, Any]:
    for _ in range(int(timeout / 0.25)):
        current = await asyncio.to_thread(rollout, bridge)
        if current["state"] in FINAL and not current["active"]:  # a rollback has finished too
            return current
        await asyncio.sleep(0.25)
    raise AssertionError(f"rollout not finished within {timeout}s: {current}")


class Callers:
    """One SDK session per client, each calling ``version`` in a loop until stopped; every error is kept."""

    def __init__(self, bridge: BridgeProcess, tokens: dict[str, str]) -> None:
        self.bridge, self.tokens = bridge, tokens
        self.errors: dict[str, list[str]] = {c: [] for c in tokens}
        self.seen: dict[str, list[str]] = {c: [] for c in tokens}
        self.sessions: dict[str, Any] = {}
        self._stop = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Callers]:
        async with contextlib.AsyncExitStack() as stack:
            for client, token in self.tokens.items():
                url = self.bridge.mcp_url(client, "canary")
                self.sessions[client] = await stack.enter_async_context(mcp_client(url, token, mode="legacy"))
            tasks = [asyncio.create_task(self._loop(c)) for c in self.tokens]
            try:
                yield self
            finally:
                self._stop.set()
                await asyncio.gather(*tasks)

    async def call(self, client: str) -> str:
        result = await self.sessions[client].call_tool("version", {})
        if result.is_error:
            raise RuntimeError(result.content[0].text if result.content else "error")
        return result.content[0].text

    async def _loop(self, client: str) -> None:
        for _ in range(100_000):  # bounded; stopped by the test long before
            if self._stop.is_set():
                return
            try:
                self.seen[client].append(await self.call(client))
            except Exception as exc:
                self.errors[client].append(f"{exc.__class__.__name__}: {exc}")
            await asyncio.sleep(0.05)


def moved_to(bridge: BridgeProcess, version: str) -> set[str]:
    """The clients whose instance was ever moved to ``version``."""
    events = bridge.api("GET", "/events", params={"limit": 1000}).json()
    return {e["client_id"] for e in events if e["kind"] == "instance.version" and e["message"].endswith(f" {version}")}


async def test_a_good_version_reaches_every_client_with_sessions_intact(tmp_path, workspace) -> None:
    with canary_bridge(tmp_path) as bridge:
        callers = Callers(bridge, register_all(bridge, workspace))
        before = versions(bridge)
        assert {v for _, v, _ in before.values()} == {"v1"} and all(i.startswith("cmd-") for _, _, i in before.values())
        async with callers.running():
            started = start(bridge, "v2", [33, 100], soak=1)
            assert started["from_version"] == "v1" and started["state"] == "running"
            again = bridge.api("POST", "/rollouts", json={"service": "canary", "to": "v2"})
            assert again.status_code == 409, again.text  # one rollout per service at a time
            final = await until_final(bridge)
            for client in CLIENTS:  # the same session, on the new version
                assert await callers.call(client) == "2", (final["state"], final["reason"])
        assert final["state"] == "done" and final["moved"] == final["instances"] == 3, final
        assert [g["ok"] for g in final["gates"]] == [True, True]
        assert callers.errors == {c: [] for c in CLIENTS}
        assert all(seen[-1] == "2" for seen in callers.seen.values())
        assert all(callers.seen[c][0] == "1" for c in CLIENTS[1:])  # c0 may move before its first call
        after = versions(bridge)
        assert {(s, v) for s, v, _ in after.values()} == {("running", "v2")}
        assert {i for _, _, i in after.values()}.isdisjoint({i for _, _, i in before.values()})
        assert bridge.api("POST", "/rollouts", json={"service": "canary", "to": "v2"}).status_code == 409
        # A client registered now starts on the service's current version.
        bridge.register("c9", workspace, ["canary"], wait=30)
        assert bridge.state("c9", "canary")["version"] == "v2"
        status = cli(bridge, "status", "canary")
        assert status.returncode == 0 and "v1 -> v2" in status.stdout and "done" in status.stdout, status


async def test_a_version_that_is_never_ready_stops_at_the_first_wave_unseen(tmp_path, workspace) -> None:
    with canary_bridge(tmp_path) as bridge:
        callers = Callers(bridge, register_all(bridge, workspace))
        async with callers.running():
            start(bridge, "broken", [33, 100], soak=1)
            final = await until_final(bridge)
            for client in CLIENTS:
                assert await callers.call(client) == "1"
        assert final["state"] == "rolled_back" and "not ready on broken" in final["reason"], final
        assert len(final["gates"]) == 1 and moved_to(bridge, "broken") == {"c0"}  # never beyond its first wave
        assert callers.errors == {c: [] for c in CLIENTS}  # c0's calls were held through the failure and back
        assert {(s, v) for s, v, _ in versions(bridge).values()} == {("running", "v1")}
        kinds = {e["kind"] for e in bridge.api("GET", "/events", params={"limit": 1000}).json()}
        assert {"rollout.started", "rollout.gate_failed", "rollout.rolled_back"} <= kinds


async def test_a_version_that_errs_on_real_calls_is_rolled_back_by_the_gate(tmp_path, workspace) -> None:
    with canary_bridge(tmp_path) as bridge:
        callers = Callers(bridge, register_all(bridge, workspace))
        async with callers.running():
            start(bridge, "erring", [33, 100], soak=30)  # the gate judges as soon as it has enough calls
            final = await until_final(bridge)
            for client in CLIENTS:
                assert await callers.call(client) == "1"
        assert final["state"] == "rolled_back" and "error rate" in final["reason"], final
        gate = final["gates"][0]
        assert gate["wave_traffic"]["failed"] >= 3 and gate["rest_traffic"]["failed"] == 0, gate
        assert moved_to(bridge, "erring") == {"c0"}
        # Only the canary's client saw the bad version's errors; the others saw nothing.
        assert callers.errors["c0"] and all(not callers.errors[c] for c in CLIENTS[1:]), callers.errors
        assert {(s, v) for s, v, _ in versions(bridge).values()} == {("running", "v1")}


async def test_a_bridge_killed_mid_rollout_finishes_it_on_start(tmp_path, workspace) -> None:
    with canary_bridge(tmp_path) as bridge:
        tokens = register_all(bridge, workspace)
        start(bridge, "v2", [33, 100], soak=3)
        for _ in range(200):  # until the first wave has moved and soaks
            if rollout(bridge)["moved"] >= 1:
                break
            time.sleep(0.1)
        bridge.kill(signal.SIGKILL)
        assert rollout_state_in_database(bridge) == "running"
        bridge.start()
        callers = Callers(bridge, tokens)
        async with callers.running():
            final = await until_final(bridge)
        assert final["state"] == "done", final
        assert {(s, v) for s, v, _ in versions(bridge).values()} == {("running", "v2")}
        assert callers.errors == {c: [] for c in CLIENTS}


def rollout_state_in_database(bridge: BridgeProcess) -> str:
    import sqlite3

    with contextlib.closing(sqlite3.connect(bridge.data_dir / "paradise.db")) as db:
        return db.execute("SELECT state FROM rollout ORDER BY id DESC LIMIT 1").fetchone()[0]


async def test_a_sleeping_instance_is_pinned_and_wakes_on_the_new_version(tmp_path, workspace) -> None:
    env = {"PARADISE_CATALOG": str(canary_catalog(tmp_path / "catalog.toml")), "PARADISE_IDLE_TIMEOUT": "1"}
    with serving(BridgeProcess(tmp_path / "data", env=env)) as bridge:
        tokens = {c: bridge.register(c, workspace, ["canary"], wait=30)["token"] for c in ("c0", "c1")}
        for client in tokens:
            assert bridge.wait_state(client, "canary", {"idle"}, timeout=30)["state"] == "idle"
        async with mcp_client(bridge.mcp_url("c1", "canary"), tokens["c1"], mode="legacy") as awake:
            assert (await awake.call_tool("version", {})).content[0].text == "1"  # c1 serves again, c0 sleeps
            start(bridge, "v2", [50, 100], soak=0)
            final = await until_final(bridge)
            assert (await awake.call_tool("version", {})).content[0].text == "2"
        assert final["state"] == "done", final
        # The first wave took the serving instance, though c0 comes first by name; c0 was pinned, not started.
        assert [g["judged"] for g in final["gates"]] == [1, 1] and moved_to(bridge, "v2") == {"c1"}
        assert bridge.state("c0", "canary")["state"] == "idle" and bridge.state("c0", "canary")["version"] == "v2"
        async with mcp_client(bridge.mcp_url("c0", "canary"), tokens["c0"], mode="legacy") as woken:
            assert (await woken.call_tool("version", {})).content[0].text == "2"


def cli(bridge: BridgeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "bridge", "rollout", *args], capture_output=True, text=True, timeout=30,
                          env={**bridge.env, "PARADISE_URL": bridge.url}, cwd=ROOT)  # fmt: skip


async def test_pause_resume_and_abort(tmp_path, workspace) -> None:
    with canary_bridge(tmp_path) as bridge:
        register_all(bridge, workspace)
        started = cli(bridge, "start", "canary", "--to", "v2", "--waves", "33,100", "--soak", "60")
        assert started.returncode == 0 and "v1 -> v2" in started.stdout, started
        for action, state in (("pause", "paused"), ("resume", "running")):
            resp = bridge.api("POST", f"/rollouts/canary/{action}")
            assert resp.status_code == 200 and resp.json()["state"] == state, resp.text
        aborted = cli(bridge, "abort", "canary")
        assert aborted.returncode == 0 and "aborted" in aborted.stdout, aborted
        assert bridge.api("POST", "/rollouts/canary/resume").status_code == 409
        final = await until_final(bridge)
        assert {(s, v) for s, v, _ in versions(bridge).values()} == {("running", "v1")}
        assert final["reason"] == "aborted by the operator"
        assert bridge.api("GET", "/rollouts/nothing").status_code == 404
        assert bridge.api("POST", "/rollouts", json={"service": "canary", "to": "v9"}).status_code == 404
        assert start(bridge, "v2", [100], soak=0)["state"] == "running"  # the service is free again


def test_the_rollout_records_on_postgresql(postgres_url: str) -> None:  # noqa: F811 (the fixture imported above)
    """The one-rollout lock, the state-guarded update and the current versions on PostgreSQL too (two
    bridges on one database: whichever takes a start or a pause writes it there)."""
    engine = store.make_engine(postgres_url)

    def add() -> Rollout | None:
        with store.session(engine) as db:
            return store.add_rollout(db, Rollout(service="canary", from_version="v1", to_version="v2", waves=[100]))

    first = add()
    assert first is not None and add() is None
    with store.session(engine) as db:
        assert not store.update_rollout(db, rollout_id=first.id, expect=frozenset({"paused"}), state="done")
        assert store.update_rollout(db, rollout_id=first.id, expect=frozenset({"running"}), state="done",
                                    gates=[{"wave": 1, "ok": True}])  # fmt: skip
        store.set_current_version(db, service="canary", version="v2")
        store.release_rollout(db, service="canary")
    with store.session(engine) as db:
        assert store.current_versions(db) == {"canary": "v2"} and store.active_rollouts(db) == []
        assert store.latest_rollout(db, service="canary").gates == [{"wave": 1, "ok": True}]
    assert add() is not None
    engine.dispose()
