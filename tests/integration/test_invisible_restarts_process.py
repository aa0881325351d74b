"""What only real processes show about invisible restarts: a paused instance is frozen for real (SIGSTOP, no
CPU) and thawed as the same process and session; the session survives the bridge process itself killed -9
(the instance adopted by the next bridge). Real bridge process, real SDK server instances, the official SDK
client as a session-era client. Instance deaths, sleep and wake in-process: test_invisible_restarts.py."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

from tests.helpers import BridgeProcess, listener_pid
from tests.helpers import running_process_bridge as running_bridge
from tests.integration.test_invisible_restarts import echo_session, whoami


def crash_instance(bridge: BridgeProcess, client_id: str, service: str) -> None:
    """kill -9 of the instance's server, returning once it is gone: the next call comes after the crash."""
    server = psutil.Process(listener_pid(bridge.state(client_id, service)["port"]))
    os.kill(server.pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        server.wait(timeout=10)


async def test_pause_and_thaw_keep_the_same_process_and_session(tmp_path, workspace) -> None:
    with running_bridge(tmp_path, PARADISE_PAUSE_AFTER="1") as bridge:
        async with echo_session(bridge, "fay", workspace) as (client, before):
            assert bridge.wait_state("fay", "echo", {"paused"}, timeout=20)["state"] == "paused"
            server = psutil.Process(listener_pid(bridge.state("fay", "echo")["port"]))
            assert server.status() == psutil.STATUS_STOPPED  # frozen for real: SIGSTOP, no CPU
            assert (await whoami(client))["boot"] == before["boot"]  # thawed: the same process
            assert server.status() != psutil.STATUS_STOPPED
        kinds = [e["kind"] for e in bridge.api("GET", "/events", params={"client_id": "fay"}).json()]
        assert "instance.paused" in kinds and "instance.thawed" in kinds


async def test_the_session_survives_a_bridge_kill_9(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        async with echo_session(bridge, "dave", workspace) as (client, before):
            bridge.kill(signal.SIGKILL)
            bridge.start()
            assert (await whoami(client))["boot"] == before["boot"]  # adopted: the same instance, same session
            crash_instance(bridge, "dave", "echo")
            assert (await whoami(client))["boot"] != before["boot"]  # the mapping survived the bridge too
