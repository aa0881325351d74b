"""The health monitor in-process: death and healing, crash loops, unhealthy and recovery, idling, and a
monitor that survives whatever one cycle throws."""

from __future__ import annotations

import asyncio

from bridge.models import InstanceState
from tests.unit.lifecycle.conftest import MakeLifecycle, until
from tests.unit.lifecycle.fakes import FakeRuntime


async def test_a_dead_instance_is_healed_on_its_port(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    port = route.port
    await life.runtime.kill("alice", "echo")
    await life.monitor.check(route)
    assert route.state == InstanceState.RESTARTING and not route.ready.is_set()
    await until(lambda: route.state == InstanceState.RUNNING)
    assert route.state == InstanceState.RUNNING and route.port == port and route.restarts == 1
    assert life.events("instance.died") == ["instance exited with code 137"]
    assert (await life.stored("alice")).restarts == 1


async def test_a_crash_loop_spends_the_budget_and_ends_failed(make_lifecycle: MakeLifecycle) -> None:
    class CrashesOnRestart(FakeRuntime):
        async def _after_launch(self, instance):  # type: ignore[no-untyped-def]
            if len(self.starts) > 1:  # every restart dies again at once
                await self._halt(instance, exit_code=1)

    life = await make_lifecycle(CrashesOnRestart(), restart_limit=2)
    await life.register("alice")
    route = life.route("alice")
    await life.runtime.kill("alice", "echo", exit_code=1)
    await life.monitor.check(route)
    await until(lambda: route.state == InstanceState.FAILED, timeout=10)
    assert route.state == InstanceState.FAILED
    assert route.last_error.startswith("crash loop: exited with code 1")
    assert len(route.restart_times) == 2 and life.runtime.starts == ["alice/echo"] * 3
    assert any("giving up" in m for m in life.events("instance.failed"))


async def test_one_failed_probe_is_unhealthy_and_a_good_one_recovers(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    life.monitor._probe_failed(route, "timed out")
    assert route.state == InstanceState.UNHEALTHY and route.ready.is_set()  # requests may still try
    await life.monitor.check(route)
    assert route.state == InstanceState.RUNNING and route.last_error is None and route.last_probe_ms is not None
    assert life.events("instance.recovered")


async def test_consecutive_failed_probes_restart_the_instance(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    instance = life.runtime.live("alice", "echo")
    await instance.runner.cleanup()  # still "running" to the runtime, but its port no longer answers
    instance.runner = None
    await life.monitor.check(route)
    assert route.state == InstanceState.UNHEALTHY
    await life.monitor.check(route)
    await until(lambda: route.state == InstanceState.RUNNING and route.restarts == 1)
    assert route.restarts == 1
    assert any("2 failed probes" in m for m in life.events("instance.unresponsive"))


async def test_idle_timeout_puts_a_quiet_instance_to_sleep_but_not_one_with_a_stream(
    make_lifecycle: MakeLifecycle,
) -> None:
    life = await make_lifecycle(idle_timeout=0.1)
    await life.register("alice")
    await life.register("bob")
    life.route("bob").streams = 1
    await asyncio.sleep(0.15)
    await life.monitor.sweep()
    assert life.route("alice").state == InstanceState.IDLE
    assert life.route("bob").state == InstanceState.RUNNING
    assert life.runtime.live("alice", "echo") is None


async def test_paused_instances_are_not_probed(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    life.table.transition(route, InstanceState.PAUSED)
    await life.runtime.kill("alice", "echo")
    await life.monitor.sweep()
    assert route.state == InstanceState.PAUSED and life.events("instance.died") == []


async def test_the_monitor_survives_a_failing_cycle(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    cycles: list[str] = []
    real_cycle = life.monitor.cycle

    async def flaky(reconciled: bool) -> bool:
        cycles.append("cycle")
        if len(cycles) == 1:
            raise OSError("database is away")
        return await real_cycle(reconciled)

    life.monitor.cycle = flaky  # type: ignore[method-assign]
    runner = asyncio.create_task(life.monitor.run())
    await until(lambda: len(cycles) >= 3)
    runner.cancel()
    assert len(cycles) >= 3  # the loop went on after the first cycle raised
    assert life.route("alice").last_probe_at is not None  # and later cycles probed


async def test_a_sweep_logs_a_probe_that_raises_and_checks_the_others(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.register("bob")
    life.runtime.fail_poll_for.add("alice/echo")
    await life.monitor.sweep()
    assert life.route("alice").state == InstanceState.RUNNING  # an engine error is not a death
    assert life.route("bob").last_probe_at is not None
