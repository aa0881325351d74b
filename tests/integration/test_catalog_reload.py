"""A running bridge follows DATA_DIR/catalog.toml (bridge/catalog_watch.py), as ``devops-paradise catalog add|rm``
write it, without a restart; a bridge started after a ``catalog rm`` retires what the catalog lost.

The services are the fixture MCP server (tests/fixtures/mcp_server.py) as hand-written entries of the data dir's
catalog (what ``catalog add`` writes for a package, minus the install), so no registry is involved; the removal
is the real ``devops-paradise catalog rm`` against a real bridge process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import PYTHON, ROOT, BridgeProcess, instance_pid, serving

FIXTURE = (f'command = ["{PYTHON}", "-m", "tests.fixtures.mcp_server", "--port", "{{port}}"]\n'
           f'env = {{ PYTHONPATH = "{ROOT}" }}')


def write_catalog(data_dir: Path, names: list[str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / ".catalog.toml.test"
    tmp.write_text("".join(f"[services.{name}]\n{FIXTURE}\n\n" for name in names))
    os.replace(tmp, data_dir / "catalog.toml")  # whole, as the CLI writes it


def catalog_cli(bridge: BridgeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARADISE_DATA_DIR": str(bridge.data_dir), "PYTHONPATH": str(ROOT),
           "PARADISE_URL": bridge.url, "PARADISE_ADMIN_TOKEN": bridge.admin_token}
    env.pop("PARADISE_CATALOG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "catalog", *args], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def events(bridge: BridgeProcess, kind: str, **match: str) -> list[dict]:
    found = bridge.api("GET", "/events", params={"limit": 1000}).json()
    return [e for e in found if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]


def wait_for(what, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.2)


def instance_of(bridge: BridgeProcess, client: str, service: str) -> psutil.Process:
    return psutil.Process(instance_pid(bridge, client, service))


def mcp_post(bridge: BridgeProcess, client: dict, service: str) -> httpx.Response:
    return httpx.post(bridge.mcp_url(client["client_id"], service),
                      json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                      headers={"Authorization": f"Bearer {client['token']}",
                               "Accept": "application/json, text/event-stream"}, timeout=10)


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[BridgeProcess]:
    proc = BridgeProcess(tmp_path / "data", env={"PARADISE_WORKSPACE_ROOTS": str(tmp_path)})
    proc.env.pop("PARADISE_CATALOG", None)
    write_catalog(proc.data_dir, ["alpha"])
    (tmp_path / "ws-a").mkdir()
    (tmp_path / "ws-b").mkdir()
    with serving(proc):
        yield proc


def test_add_and_rm_are_followed_without_a_restart(bridge: BridgeProcess, tmp_path: Path) -> None:
    alice = bridge.register("alice", tmp_path / "ws-a", ["alpha"], wait=30)
    assert bridge.wait_state("alice", "alpha", {"running", "failed"})["state"] == "running"
    write_catalog(bridge.data_dir, ["alpha", "beta"])  # as `catalog add beta` leaves it
    wait_for(lambda: events(bridge, "catalog.reloaded"))  # seen before any registration asks
    assert "added beta" in events(bridge, "catalog.reloaded")[0]["message"]
    bridge.register("bob", tmp_path / "ws-b", ["beta"], wait=30)

    refused = catalog_cli(bridge, "rm", "alpha")
    assert refused.returncode == 1 and "alice still run alpha" in refused.stderr.replace("clients ", ""), \
        refused.stderr
    server = instance_of(bridge, "alice", "alpha")
    removed = catalog_cli(bridge, "rm", "alpha", "--force")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "the bridge stopped the instances of alice" in removed.stdout, removed.stdout
    server.wait(10)  # the instance's process is gone (raises if it still runs)
    assert bridge.api("GET", "/clients/alice").json()["instances"] == []
    answer = mcp_post(bridge, alice, "alpha")
    assert answer.status_code == 404, answer.text
    message = answer.json()["error"]["message"]
    assert "has no service 'alpha'" in message and "removed from the bridge's catalog" in message, message
    assert events(bridge, "instance.retired", client_id="alice", service="alpha")
    assert bridge.state("bob", "beta")["state"] == "running"  # another service is left alone
    again = bridge.api("POST", "/clients", json={"client_id": "carol", "workspace": str(tmp_path / "ws-a"),
                                                 "services": ["alpha"]})
    assert again.status_code == 422 and "unknown service(s): alpha" in again.text, again.text


def test_an_invalid_catalog_keeps_the_one_in_use(bridge: BridgeProcess, tmp_path: Path) -> None:
    (bridge.data_dir / "catalog.toml").write_text("[services.alpha\n")
    wait_for(lambda: events(bridge, "catalog.invalid"))
    bridge.register("alice", tmp_path / "ws-a", ["alpha"], wait=30)
    assert bridge.wait_state("alice", "alpha", {"running", "failed"})["state"] == "running"


def test_a_bridge_started_after_rm_retires_what_the_catalog_lost(bridge: BridgeProcess, tmp_path: Path) -> None:
    bridge.register("alice", tmp_path / "ws-a", ["alpha"], wait=30)
    assert bridge.wait_state("alice", "alpha", {"running", "failed"})["state"] == "running"
    server = instance_of(bridge, "alice", "alpha")
    bridge.kill(signal.SIGTERM)  # SIGTERM: the instance keeps running for the next bridge to adopt
    assert server.is_running()
    write_catalog(bridge.data_dir, [])  # `catalog rm alpha` while no bridge runs
    bridge.start()
    server.wait(20)
    assert bridge.api("GET", "/clients/alice").json()["instances"] == []
    assert events(bridge, "instance.retired", client_id="alice", service="alpha")
