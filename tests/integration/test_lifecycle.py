"""Instances outliving the bridge, healing, held requests and failure modes, on the process runtime."""

from __future__ import annotations

import os
import signal
import time

import httpx
import psutil
import pytest

from tests.helpers import BridgeProcess, instance_pid, mcp_client
from tests.integration.test_routing import ACCEPT, INIT


async def test_bridge_kill9_then_restart_adopts_and_old_session_answers(bridge: BridgeProcess, workspace) -> None:
    created = bridge.register("survivor", workspace, ["echo"])
    token = created["token"]
    pid_before = instance_pid(bridge, "survivor", "echo")
    async with mcp_client(bridge.mcp_url("survivor", "echo"), token) as client:
        first = (await client.call_tool("whoami", {})).structured_content
        bridge.kill(signal.SIGKILL)
        assert psutil.pid_exists(pid_before), "the instance must outlive a crashed bridge"
        bridge.start()
        # Same MCP session, no re-initialize: the adopted instance still knows it.
        again = (await client.call_tool("whoami", {})).structured_content
    # The same instance process (its own pid is 1 inside a sandbox's PID namespace: compare its boot id).
    assert (again["pid"], again["boot"]) == (first["pid"], first["boot"])
    assert instance_pid(bridge, "survivor", "echo") == pid_before
    state = bridge.state("survivor", "echo")
    assert state["state"] == "running"
    assert state["port"] == created["instances"][0]["port"]
    events = bridge.api("GET", "/events", params={"limit": 20}).json()
    reconcile = next(e for e in events if e["kind"] == "bridge.reconcile")
    assert "survivor/echo" in reconcile["message"] and "adopted 1" in reconcile["message"]
    assert bridge.api("DELETE", "/clients/survivor").status_code == 204


async def test_a_host_port_taken_while_the_bridge_was_down_does_not_touch_a_sandboxed_instance(
    bridge: BridgeProcess, workspace
) -> None:
    """A sandboxed instance listens in a network namespace of its own and is reached through its socket: a
    host program that grabs its port number meanwhile receives nothing, and the instance keeps its lease."""
    import socket

    created = bridge.register("mover", workspace, ["echo"])
    old_port = created["instances"][0]["port"]
    bridge.kill(signal.SIGKILL)
    os.killpg(instance_pid(bridge, "mover", "echo"), signal.SIGKILL)
    time.sleep(0.3)
    with socket.create_server(("127.0.0.1", old_port)) as squatter:  # another program grabs the port meanwhile
        squatter.settimeout(0.2)
        bridge.start()
        state = bridge.wait_state("mover", "echo", {"running", "failed"})
        assert state["state"] == "running" and state["port"] == old_port
        async with mcp_client(bridge.mcp_url("mover", "echo"), created["token"]) as client:
            assert (await client.call_tool("whoami", {})).structured_content["client"] == "mover"
        with pytest.raises(TimeoutError):
            squatter.accept()  # the bridge never connected to the host port
    leases = [lease["port"] for lease in bridge.api("GET", "/ports").json() if lease["client_id"] == "mover"]
    assert leases == [old_port]
    bridge.api("DELETE", "/clients/mover")


async def test_killed_instance_comes_back_on_its_port(bridge: BridgeProcess, workspace) -> None:
    created = bridge.register("phoenix", workspace, ["echo"])
    port = created["instances"][0]["port"]
    pid = instance_pid(bridge, "phoenix", "echo")
    async with mcp_client(bridge.mcp_url("phoenix", "echo"), created["token"]) as client:
        boot = (await client.call_tool("whoami", {})).structured_content["boot"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while instance_pid(bridge, "phoenix", "echo") == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    state = bridge.wait_state("phoenix", "echo", {"running"})
    assert state["state"] == "running" and state["port"] == port and state["restarts"] == 1
    async with mcp_client(bridge.mcp_url("phoenix", "echo"), created["token"]) as client:
        who = (await client.call_tool("whoami", {})).structured_content
    assert who["boot"] != boot  # a new instance process
    kinds = [e["kind"] for e in bridge.api("GET", "/events", params={"client_id": "phoenix"}).json()]
    assert "instance.died" in kinds
    bridge.api("DELETE", "/clients/phoenix")


def test_request_to_a_starting_instance_is_held_until_ready(bridge: BridgeProcess, workspace) -> None:
    created = bridge.register("patient", workspace, ["slow"], wait=0)
    assert created["instances"][0]["state"] in ("starting", "restarting")
    began = time.monotonic()
    resp = httpx.post(
        bridge.mcp_url("patient", "slow"),
        json=INIT,
        headers={"Authorization": f"Bearer {created['token']}", "Accept": ACCEPT},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert time.monotonic() - began > 1.0  # it really was held through the 3 s slow start
    bridge.api("DELETE", "/clients/patient")


def test_crashing_backend_fails_with_its_last_lines(bridge: BridgeProcess, workspace) -> None:
    created = bridge.register("crasher", workspace, ["crashy"])
    state = bridge.wait_state("crasher", "crashy", {"failed"})
    assert state["state"] == "failed"
    assert "exited with code 3" in state["last_error"]
    assert any("crashing on purpose" in line for line in state["last_log"])
    resp = httpx.post(
        bridge.mcp_url("crasher", "crashy"),
        json=INIT,
        headers={"Authorization": f"Bearer {created['token']}", "Accept": ACCEPT},
    )
    assert resp.status_code == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert "failed" in resp.json()["error"]["message"]
    bridge.api("DELETE", "/clients/crasher")


@pytest.fixture
def impatient_bridge(tmp_path) -> BridgeProcess:
    from tests.helpers import fixture_catalog

    catalog = fixture_catalog(tmp_path / "catalog.toml")
    proc = BridgeProcess(
        tmp_path / "data",
        env={"PARADISE_CATALOG": str(catalog), "PARADISE_START_TIMEOUT": "1.5", "PARADISE_READY_TIMEOUT": "4"},
        pool_size=2,
    ).start()
    yield proc
    for client in proc.api("GET", "/clients").json():
        proc.api("DELETE", f"/clients/{client['client_id']}")
    proc.kill(signal.SIGTERM)


def test_never_ready_backend_gives_503_with_retry_after(impatient_bridge: BridgeProcess, workspace) -> None:
    bridge = impatient_bridge
    created = bridge.register("stuck", workspace, ["hung"], wait=0)
    resp = httpx.post(
        bridge.mcp_url("stuck", "hung"),
        json=INIT,
        headers={"Authorization": f"Bearer {created['token']}", "Accept": ACCEPT},
        timeout=30,
    )
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json()["error"]["code"] == "unavailable"
    state = bridge.wait_state("stuck", "hung", {"failed"}, timeout=15)
    assert state["state"] == "failed" and "not ready within 4s" in state["last_error"]


def test_exhausted_pool_is_503_naming_the_range(impatient_bridge: BridgeProcess, workspace) -> None:
    bridge = impatient_bridge
    bridge.register("first", workspace, ["echo", "slow"], wait=0)
    body = {"client_id": "third", "workspace": str(workspace), "services": ["echo"]}
    resp = bridge.api("POST", "/clients", json=body)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    error = resp.json()["error"]
    assert error["code"] == "port_pool_exhausted"
    assert f"{bridge.pool.start}-{bridge.pool.stop - 1}" in error["message"]
    assert bridge.api("GET", "/clients/third").status_code == 404
    assert {lease["client_id"] for lease in bridge.api("GET", "/ports").json()} == {"first"}
