"""A full data-dir disk: 507 with a clear message, never 500; running instances keep serving; doctor and an
alert say so; once space is freed everything works again.

Real parts: the data dir of a real bridge is a tmpfs of 8 MiB, filled to the last byte by a file, as a tenant
writing into it (or a runaway log) would. Mounting needs root (CI runs as root); otherwise the module skips.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bridge import store
from bridge.errors import InsufficientStorage
from bridge.events import EventLog
from bridge.host.doctor import data_dir_lines, data_dir_report
from bridge.settings import load_settings
from bridge.storage import disk_problem
from tests.helpers import BridgeProcess, fixture_catalog, instance_pid, mcp_client, serving

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs as the data dir needs root (CI is root)")


class Disk:
    """A tmpfs that a file fills to the last byte, and empties again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        """Write until ENOSPC; again if the bridge freed a few pages meanwhile (bounded)."""
        for _ in range(10):
            with open(self.filler, "ab", buffering=0) as out:  # unbuffered: nothing left over for close to write
                for _ in range(4096):  # 8 MiB / 64 KiB is 128 writes; bounded all the same
                    try:
                        out.write(b"\0" * 65536)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        break
            if os.statvfs(self.root).f_bavail == 0:
                return
        assert disk_problem(self.root) is not None  # below the bridge's threshold, which is what counts

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Disk]:
    root = tmp_path_factory.mktemp("full-disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(root)],
                          capture_output=True, text=True)
    if done.returncode != 0:  # root, yet no mount (a container without CAP_SYS_ADMIN): a failure in CI
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield Disk(root)
    finally:
        if subprocess.run(["umount", str(root)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(root)], capture_output=True)


class Webhook(ThreadingHTTPServer):
    """The operator's alert receiver, on loopback."""

    def __init__(self) -> None:
        self.alerts: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Receive)


class _Receive(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.alerts.append(json.loads(body)["event"])  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def bridge(disk: Disk, webhook: Webhook, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    base = tmp_path_factory.mktemp("full-disk-bridge")
    env = {"PARADISE_CATALOG": str(fixture_catalog(base / "catalog.toml")),
           "PARADISE_ALERT_WEBHOOK": f"http://127.0.0.1:{webhook.server_port}/alerts"}
    proc = BridgeProcess(disk.root / "data", env=env)
    proc.log = base / "bridge.log"  # off the full disk, so the test can read what the bridge said
    with serving(proc):
        (base / "victim").mkdir()
        proc.register("victim", base / "victim", ["echo"], wait=30)
        yield proc


@pytest.fixture
def full(disk: Disk, bridge: BridgeProcess) -> Iterator[Disk]:
    disk.fill()
    try:
        yield disk
    finally:
        disk.free()


def assert_507(resp) -> str:
    assert resp.status_code == 507, resp.text
    error = resp.json()["error"]
    assert error["code"] == "insufficient_storage" and "full" in error["message"]
    assert "nothing was changed" in error["message"]
    return error["message"]


def fresh_token(bridge: BridgeProcess, full: Disk) -> str:
    """A token of the victim's that the test knows: rotated with room on the disk, which is then full again."""
    full.free()
    resp = bridge.api("POST", "/clients/victim/token")
    assert resp.status_code == 200, resp.text
    full.fill()
    return resp.json()["token"]


async def echo(bridge: BridgeProcess, token: str) -> str:
    async with mcp_client(bridge.mcp_url("victim", "echo"), token, read_timeout=30) as client:
        result = await client.call_tool("echo", {"text": "still here"})
    return result.content[0].text


def test_registration_on_a_full_disk_is_a_507(bridge: BridgeProcess, full: Disk, tmp_path: Path) -> None:
    resp = bridge.api("POST", "/clients", json={"client_id": "newcomer", "workspace": str(tmp_path),
                                                "services": ["echo"]})
    assert str(bridge.data_dir) in assert_507(resp)
    assert bridge.api("GET", "/clients/newcomer").status_code == 404
    assert all(lease["client_id"] != "newcomer" for lease in bridge.api("GET", "/ports").json())


async def test_rotation_on_a_full_disk_is_a_507_and_the_old_token_still_works(bridge: BridgeProcess,
                                                                               full: Disk) -> None:
    token = fresh_token(bridge, full)
    assert_507(bridge.api("POST", "/clients/victim/token"))
    assert await echo(bridge, token) == "still here"
    full.free()
    rotated = bridge.api("POST", "/clients/victim/token")
    assert rotated.status_code == 200 and await echo(bridge, rotated.json()["token"]) == "still here"


async def test_restart_on_a_full_disk_is_a_507_and_the_instance_keeps_serving(bridge: BridgeProcess,
                                                                              full: Disk) -> None:
    token = fresh_token(bridge, full)
    pid = instance_pid(bridge, "victim", "echo")
    assert_507(bridge.api("POST", "/clients/victim/restart"))
    if _has_instance_restart(bridge):  # the per-instance restart (the dashboard's button), where this build has it
        assert_507(bridge.api("POST", "/clients/victim/instances/echo/restart"))
    assert bridge.state("victim", "echo")["state"] == "running"
    assert instance_pid(bridge, "victim", "echo") == pid  # never stopped
    assert await echo(bridge, token) == "still here"


def _has_instance_restart(bridge: BridgeProcess) -> bool:
    paths = bridge.api("GET", "/openapi.json").json()["paths"]
    return "/api/v1/clients/{client_id}/instances/{service}/restart" in paths


def test_delete_on_a_full_disk_is_a_507_and_the_client_stays_whole(bridge: BridgeProcess, full: Disk) -> None:
    """A delete the database cannot record would drop the client from memory only: back at the next start."""
    pid = instance_pid(bridge, "victim", "echo")
    assert_507(bridge.api("DELETE", "/clients/victim"))
    assert bridge.state("victim", "echo")["state"] == "running"
    assert instance_pid(bridge, "victim", "echo") == pid


def test_doctor_and_an_alert_say_the_disk_is_full(bridge: BridgeProcess, full: Disk, webhook: Webhook) -> None:
    report = data_dir_report(load_settings(data_dir=bridge.data_dir))
    assert "is full" in report["disk"]
    assert any(line.startswith("--  disk") and "is full" in line for line in data_dir_lines(report))
    assert_507(bridge.api("POST", "/clients/victim/restart"))  # raises the alarm now, if its watch has not yet
    alerts = _wait_for(lambda: [a for a in webhook.alerts if a["kind"] == "storage.full"])
    assert alerts and alerts[0]["level"] == "error" and "full" in alerts[0]["message"]
    assert "storage.full" in bridge.log.read_text()


def test_the_bridge_keeps_leading_and_probing_on_a_full_disk(bridge: BridgeProcess, full: Disk) -> None:
    """The monitor lease cannot be written on a full database, but no other bridge can take it either: losing it
    would stop every probe and heal (a follower only reads)."""
    seen = [bridge.state("victim", "echo")["last_probe_at"]]
    for _ in range(2):  # two more probes, each after a renewal that failed for want of space
        newer = _wait_for(lambda: (bridge.state("victim", "echo")["last_probe_at"] or "") > (seen[-1] or ""))
        assert newer, f"no probe after {seen[-1]}: the bridge stopped leading on a full disk"
        seen.append(bridge.state("victim", "echo")["last_probe_at"])
    assert "lost lease" not in bridge.log.read_text()


def test_a_bridge_restarted_on_a_full_disk_serves_and_answers_507(bridge: BridgeProcess, full: Disk,
                                                                   tmp_path: Path) -> None:
    bridge.kill(signal.SIGTERM)
    bridge.start()
    assert bridge.api("GET", "/clients/victim").status_code == 200
    resp = bridge.api("POST", "/clients", json={"client_id": "late", "workspace": str(tmp_path), "services": ["echo"]})
    assert_507(resp)
    assert_507(bridge.api("POST", "/clients/victim/token"))


def test_after_freeing_space_everything_works_again(bridge: BridgeProcess, full: Disk, tmp_path: Path) -> None:
    assert_507(bridge.api("POST", "/clients/victim/restart"))
    full.free()
    assert data_dir_report(load_settings(data_dir=bridge.data_dir))["disk"] is None
    assert bridge.api("POST", "/clients/victim/token").status_code == 200
    assert bridge.api("POST", "/clients/victim/restart").status_code == 200
    assert bridge.wait_state("victim", "echo", {"running"})["state"] == "running"
    bridge.register("afterwards", tmp_path, ["echo"], wait=30)
    assert bridge.api("DELETE", "/clients/afterwards").status_code == 204
    recovered = _wait_for(lambda: [e for e in bridge.api("GET", "/events").json() if e["kind"] == "storage.recovered"])
    assert recovered, "no storage.recovered event"


def test_a_database_write_on_a_full_disk_raises_507_not_the_drivers_error(disk: Disk) -> None:
    """The write path behind the up-front check: SQLite's "database or disk is full" becomes the 507 error."""
    engine = store.make_engine(f"sqlite:///{disk.root / 'direct.db'}")
    try:
        disk.fill()
        with pytest.raises(InsufficientStorage), store.session(engine) as db:
            for _ in range(64):
                store.add_event(db, kind="filler", message="x" * 4096)
        disk.free()
        with store.session(engine) as db:
            store.add_event(db, kind="after", message="room again")
    finally:
        disk.free()
        engine.dispose()
        with contextlib.suppress(OSError):
            for leftover in disk.root.glob("direct.db*"):
                leftover.unlink()


async def test_an_event_that_cannot_be_stored_is_still_logged_and_sent_live(disk: Disk) -> None:
    """The storage.full alert must get out although the database that would keep it is full."""
    engine = store.make_engine(f"sqlite:///{disk.root / 'events.db'}")
    events = EventLog(engine)
    try:
        async with events.subscribe() as live:
            disk.fill()
            recorded = []
            for _ in range(64):  # until the database's own spare pages are used up too
                recorded.append(events.record("storage.full", "x" * 4096, level="error"))
                if recorded[-1].id == 0:
                    break
            unstored = recorded[-1]
            assert unstored.id == 0 and unstored.kind == "storage.full" and unstored.level == "error"
            assert [await anext(live) for _ in recorded] == recorded  # every one live, the unstored one too
    finally:
        disk.free()
        events.close()
        engine.dispose()
        for leftover in disk.root.glob("events.db*"):
            leftover.unlink()


def _wait_for(probe, attempts: int = 100):
    """``probe()`` once it is truthy (bounded: 100 tries, 0.1 s apart), else its last value."""
    import time

    for _ in range(attempts):
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    return probe()
