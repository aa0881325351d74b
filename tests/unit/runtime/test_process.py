"""ProcessRuntime against real processes (unsandboxed; tests/security covers the sandbox): groups, identity,
stop of a whole family also after its leader died, discovery, environment, the one-client rule."""

from __future__ import annotations

import json
import os
import sys

import psutil
import pytest

from bridge.runtime.base import InstanceSpec
from bridge.runtime.process import ProcessRuntime
from tests.helpers import free_block

# A parent that spawns a grandchild (like Serena spawning a language server), both sleeping.
FAMILY = (
    "import os, subprocess, sys, time, json;"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    "print(json.dumps({'child': child.pid, 'home': os.environ['HOME'],"
    " 'client': os.environ['PARADISE_CLIENT'], 'admin': os.environ.get('PARADISE_ADMIN_TOKEN')}), flush=True);"
    "time.sleep(600)"
)


def spec(tmp_path, command: list[str], client: str = "alice") -> InstanceSpec:
    return InstanceSpec(
        client_id=client,
        service="svc",
        port=free_block(1),
        workspace=tmp_path,
        instance_dir=tmp_path / "instances" / client / "svc",
        command=command,
    )


async def wait_for_line(runtime: ProcessRuntime, state: dict) -> dict:
    import asyncio

    for _ in range(100):
        lines = [line for line in await runtime.logs(state) if line.startswith("{")]
        if lines:
            return json.loads(lines[-1])
        await asyncio.sleep(0.05)
    raise AssertionError("no output")


async def test_start_poll_stop_reaches_the_whole_family(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", "secret")
    runtime = ProcessRuntime(tmp_path / "instances")
    state = await runtime.start(spec(tmp_path, [sys.executable, "-c", FAMILY]))
    info = await wait_for_line(runtime, state)
    assert info["client"] == "alice"
    assert info["home"] == str(tmp_path / "instances" / "alice" / "svc" / "home")
    assert info["admin"] is None  # bridge settings never leak into instances
    assert os.getpgid(state["pid"]) == state["pid"]  # its own process group
    assert (await runtime.poll(state)).running
    await runtime.stop(state, grace=2)
    assert not (await runtime.poll(state)).running
    assert not psutil.pid_exists(info["child"]) or psutil.Process(info["child"]).status() == "zombie"
    await runtime.stop(state)  # idempotent


async def test_sigterm_ignored_means_sigkill_after_grace(tmp_path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    )
    runtime = ProcessRuntime(tmp_path / "instances")
    state = await runtime.start(spec(tmp_path, [sys.executable, "-c", stubborn]))
    for _ in range(100):
        if "up" in await runtime.logs(state):
            break
        import asyncio

        await asyncio.sleep(0.05)
    await runtime.stop(state, grace=0.5)
    assert not (await runtime.poll(state)).running


async def test_exit_code_is_reported(tmp_path) -> None:
    runtime = ProcessRuntime(tmp_path / "instances")
    state = await runtime.start(spec(tmp_path, [sys.executable, "-c", "print('bye'); raise SystemExit(7)"]))
    import asyncio

    for _ in range(100):
        result = await runtime.poll(state)
        if not result.running:
            break
        await asyncio.sleep(0.05)
    assert result.exit_code == 7
    assert "bye" in await runtime.logs(state)


async def test_a_recycled_pid_is_not_mistaken_for_the_instance(tmp_path) -> None:
    runtime = ProcessRuntime(tmp_path / "instances")
    # Our own pid is alive, but its start time is not the recorded one.
    fake = {"pid": os.getpid(), "create_time": psutil.Process().create_time() - 1000}
    assert not (await runtime.poll(fake)).running
    await runtime.stop(fake)  # and stopping it must not kill us
    assert psutil.pid_exists(os.getpid())


async def test_discover_reads_labels_and_remove_forgets(tmp_path) -> None:
    runtime = ProcessRuntime(tmp_path / "instances")
    state = await runtime.start(spec(tmp_path, [sys.executable, "-c", "import time; time.sleep(600)"], "bob"))
    other = ProcessRuntime(tmp_path / "instances")  # a restarted bridge
    found = await other.discover()
    assert [(d.client_id, d.service, d.state["pid"]) for d in found] == [("bob", "svc", state["pid"])]
    assert (await other.poll(found[0].state)).running
    await other.remove("bob", "svc", found[0].state)
    assert await other.discover() == []
    assert not (tmp_path / "instances" / "bob").exists()


async def test_missing_command_is_refused(tmp_path) -> None:
    runtime = ProcessRuntime(tmp_path / "instances")
    with pytest.raises(ValueError, match="no command"):
        await runtime.start(spec(tmp_path, []))


# A server that starts a child in its own process group (which ignores SIGTERM), then crashes.
CRASH_LEAVING_A_CHILD = (
    "import json, signal, subprocess, sys, time;"
    "child = subprocess.Popen([sys.executable, '-c',"
    " 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']);"
    "print(json.dumps({'child': child.pid}), flush=True); time.sleep(0.5); raise SystemExit(5)"
)


async def test_a_crash_leaves_children_and_stop_kills_the_marked_family(tmp_path) -> None:
    import asyncio

    runtime = ProcessRuntime(tmp_path / "instances")
    state = await runtime.start(spec(tmp_path, [sys.executable, "-c", CRASH_LEAVING_A_CHILD]))
    child = (await wait_for_line(runtime, state))["child"]
    for _ in range(100):
        if not (result := await runtime.poll(state)).running:
            break
        await asyncio.sleep(0.05)
    assert result.exit_code == 5
    orphan = psutil.Process(child)
    assert orphan.is_running() and state["marker"]  # the leader is dead, its child is not
    await runtime.stop(state, grace=0.5)  # as heal and delete do: the leader is gone, its marked child is not
    assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE


async def test_stop_spares_a_process_of_the_same_group_that_does_not_carry_the_launch_marker(tmp_path) -> None:
    """Family is proven by the launch's marker, never inferred from a process group: a process that shares
    the recorded group (here its own new session, made by this test, never the runner's) but lacks the
    marker survives stop, also once the leader is gone."""
    import subprocess

    bystander = subprocess.Popen(  # its own session and group, led by itself
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        me = psutil.Process(bystander.pid)
        fake = {"pid": 999_999, "create_time": 1.0, "pgid": bystander.pid, "marker": "not-its-marker"}
        runtime = ProcessRuntime(tmp_path / "instances")
        await runtime.stop(fake, grace=0.1)
        assert me.is_running() and me.status() != psutil.STATUS_ZOMBIE
    finally:
        bystander.kill()
        bystander.wait()


async def test_unsandboxed_serves_one_client_unless_allowed(tmp_path) -> None:
    from bridge.runtime.base import RuntimeOperationError

    runtime = ProcessRuntime(tmp_path / "instances")
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    first = await runtime.start(spec(tmp_path, sleeper, "alice"))
    try:
        with pytest.raises(RuntimeOperationError, match=r"one client only.*PARADISE_ALLOW_UNSANDBOXED=true"):
            await runtime.start(spec(tmp_path, sleeper, "bob"))
        allowed = ProcessRuntime(tmp_path / "instances", allow_unsandboxed=True)
        second = await allowed.start(spec(tmp_path, sleeper, "bob"))
        await allowed.stop(second, grace=1)
    finally:
        await runtime.stop(first, grace=1)


def test_a_log_past_its_limit_is_rotated_at_launch_and_one_old_log_kept(tmp_path) -> None:
    from bridge.runtime.process import rotate_log

    log = tmp_path / "instance.log"
    rotate_log(log, keep=10)  # no log yet: nothing to do
    log.write_bytes(b"x" * 11)
    (tmp_path / "instance.log.1").write_bytes(b"older")
    rotate_log(log, keep=10)
    assert not log.exists() and (tmp_path / "instance.log.1").read_bytes() == b"x" * 11
    log.write_bytes(b"small")
    rotate_log(log, keep=10)
    assert log.read_bytes() == b"small"
