"""PAUSE_AFTER in-process: quiet instances are frozen (same process, sessions kept), the next request thaws
them, busy ones are never frozen, and IDLE_TIMEOUT still stops a frozen one later."""

from __future__ import annotations

import asyncio

from bridge.models import InstanceState
from tests.unit.lifecycle.conftest import MakeLifecycle
from tests.unit.lifecycle.fakes import FakeRuntime


async def test_a_quiet_instance_is_frozen_and_a_request_thaws_the_same_one(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(pause_after=0.05)
    await life.register("alice")
    route, instance = life.route("alice"), life.runtime.live("alice", "echo")
    await asyncio.sleep(0.1)
    await life.monitor.sweep()
    assert route.state == InstanceState.PAUSED and instance.frozen and not route.ready.is_set()
    thawed = await life.manager.wait_ready("alice", "echo")
    assert thawed.state == InstanceState.RUNNING and not instance.frozen
    assert life.runtime.live("alice", "echo") is instance and life.runtime.starts == ["alice/echo"]
    assert life.events("instance.paused") and life.events("instance.thawed")[0].startswith("thawed in")


async def test_a_busy_instance_is_never_frozen(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(pause_after=0.05)
    await life.register("alice")
    route = life.route("alice")
    route.busy = 1  # a tool call is under way
    await asyncio.sleep(0.1)
    await life.monitor.sweep()
    assert route.state == InstanceState.RUNNING and not life.runtime.live("alice", "echo").frozen


async def test_idle_timeout_stops_a_frozen_instance_and_the_next_request_wakes_it(
    make_lifecycle: MakeLifecycle,
) -> None:
    life = await make_lifecycle(pause_after=0.05, idle_timeout=0.3)
    await life.register("alice")
    route = life.route("alice")
    await asyncio.sleep(0.1)
    await life.monitor.sweep()
    assert route.state == InstanceState.PAUSED
    await asyncio.sleep(0.3)
    await life.monitor.sweep()
    assert route.state == InstanceState.IDLE and life.runtime.live("alice", "echo") is None
    assert (await life.manager.wait_ready("alice", "echo")).state == InstanceState.RUNNING


async def test_an_instance_that_cannot_be_thawed_is_started_afresh(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    assert await life.instances.pause(route, "test")
    await life.runtime.kill("alice", "echo")  # it died while frozen
    assert (await life.manager.wait_ready("alice", "echo")).state == InstanceState.RUNNING
    assert life.runtime.starts == ["alice/echo", "alice/echo"]
    assert life.events("instance.thaw_failed")


async def test_a_runtime_that_cannot_pause_leaves_the_instance_running(make_lifecycle: MakeLifecycle) -> None:
    class NoFreezer(FakeRuntime):
        can_pause = False

    life = await make_lifecycle(NoFreezer(), pause_after=0.05)
    await life.register("alice")
    await asyncio.sleep(0.1)
    await life.monitor.sweep()
    assert life.route("alice").state == InstanceState.RUNNING


async def test_eviction_for_room_takes_a_frozen_instance_first(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(max_instances=2, evict_lru=True)
    await life.register("alice")
    await life.register("bob")
    life.route("bob").last_activity = 0  # the least recently used, but running
    assert await life.instances.pause(life.route("alice"), "test")
    await life.register("carol")
    assert life.route("alice").state == InstanceState.IDLE and life.route("bob").state == InstanceState.RUNNING
