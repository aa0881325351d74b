"""Start-up reconcile in-process: adopt what still runs and answers, restart what does not, remove orphans,
honour idle, and never let one instance's failure stop the rest."""

from __future__ import annotations

from bridge.lifecycle.reconcile import reconcile
from bridge.models import InstanceState
from bridge.runtime.base import Discovered
from tests.unit.lifecycle.conftest import MakeLifecycle, until
from tests.unit.lifecycle.fakes import FakeRuntime


async def restarted_bridge(make_lifecycle: MakeLifecycle, runtime: FakeRuntime, settings) -> object:  # type: ignore[no-untyped-def]
    again = await make_lifecycle(runtime, data_dir=settings.data_dir, port_range=settings.port_range)
    await again.manager.load()
    return again


async def test_a_running_answering_instance_is_adopted_not_restarted(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.table.writer.flush()
    again = await restarted_bridge(make_lifecycle, life.runtime, life.settings)
    report = await reconcile(again.instances)
    assert report["adopted"] == ["alice/echo"] and report["restarted"] == []
    assert life.runtime.starts == ["alice/echo"]
    assert again.route("alice").state == InstanceState.RUNNING


async def test_a_dead_instance_is_restarted_on_its_port(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    port = life.route("alice").port
    await life.table.writer.flush()
    await life.runtime.kill("alice", "echo")
    again = await restarted_bridge(make_lifecycle, life.runtime, life.settings)
    report = await reconcile(again.instances)
    assert report["restarted"] == ["alice/echo"]
    await until(lambda: again.route("alice").state == InstanceState.RUNNING)
    assert again.route("alice").state == InstanceState.RUNNING and again.route("alice").port == port


async def test_orphans_are_removed_and_idle_ones_stay_stopped(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.register("bob")
    await life.instances.idle(life.route("bob"), "test")
    await life.table.writer.flush()
    orphan = Discovered("ghost", "echo", 1, {"fake_id": -7})
    real_discover = life.runtime.discover

    async def discover() -> list[Discovered]:
        return [*(await real_discover()), orphan]

    life.runtime.discover = discover  # type: ignore[method-assign]
    again = await restarted_bridge(make_lifecycle, life.runtime, life.settings)
    report = await reconcile(again.instances)
    assert report["orphans_removed"] == ["ghost/echo"] and "ghost/echo" in life.runtime.removed
    assert report["left"] == ["bob/echo (idle)"]
    assert again.route("bob").state == InstanceState.IDLE


async def test_one_failing_instance_does_not_stop_the_others(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.register("bob")
    await life.table.writer.flush()
    life.runtime.fail_poll_for.add("alice/echo")
    again = await restarted_bridge(make_lifecycle, life.runtime, life.settings)
    report = await reconcile(again.instances)
    assert report["adopted"] == ["bob/echo"]
    assert report["errors"] and report["errors"][0].startswith("alice/echo: RuntimeOperationError")
    assert any("errors 1" in m for m in again.events("bridge.reconcile"))


async def test_a_runtime_that_cannot_discover_still_reconciles_from_stored_state(
    make_lifecycle: MakeLifecycle,
) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.table.writer.flush()

    async def broken() -> list[Discovered]:
        raise OSError("engine socket gone")

    life.runtime.discover = broken  # type: ignore[method-assign]
    again = await restarted_bridge(make_lifecycle, life.runtime, life.settings)
    report = await reconcile(again.instances)
    assert report["adopted"] == ["alice/echo"]
    assert report["errors"] == ["discover: OSError: engine socket gone"]
