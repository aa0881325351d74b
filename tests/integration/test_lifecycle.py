"""Instances outliving the bridge and healing, on the process runtime (a real bridge process killed and started
again, real instance processes). Held requests and failure modes: test_failure_modes.py, in-process."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.helpers import BridgeProcess, instance_pid, mcp_client


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
