"""Start, readiness, single-flight, failures, wake, restart and delete — in-process over fake runtimes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.errors import NotFound, Unavailable
from bridge.lifecycle.routes import Route
from bridge.models import InstanceState
from bridge.runtime.base import Runtime
from tests.unit.lifecycle.conftest import Lifecycle, MakeLifecycle, until
from tests.unit.lifecycle.fakes import BadRuntime, ExitingRuntime, NeverReadyRuntime, SlowRuntime


async def test_register_starts_the_instance_and_persists_it(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    assert route.state == InstanceState.RUNNING and route.ready.is_set()
    assert life.runtime.starts == ["alice/echo"]
    assert "initialize" in life.runtime.live("alice", "echo").requests  # readiness spoke MCP to it
    row = await life.stored("alice")
    assert row.state == "running" and row.backend_state == route.backend_state and row.started_at is not None
    assert any("ready on 127.0.0.1:" in m for m in life.events("instance.ready"))


async def test_every_launch_gets_a_fresh_instance_key_that_no_view_shows(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    first = life.route("alice").instance_key
    assert first and life.runtime.live("alice", "echo").spec.env["PARADISE_INSTANCE_KEY"] == first
    await life.manager.restart("alice")
    await until(lambda: life.route("alice").state == InstanceState.RUNNING)
    assert life.route("alice").instance_key not in (None, first)  # and the probes used the new one
    shown = life.manager.view("alice").model_dump_json() + "".join(m for m in life.events("instance.ready"))
    assert first not in shown and life.route("alice").instance_key not in shown


async def test_view_comes_from_memory_and_matches_the_route(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    view = life.manager.view("alice")
    assert [(i.service, i.state, i.port) for i in view.instances] == [("echo", "running", life.route("alice").port)]
    assert view.instances[0].url.endswith("/c/alice/echo/mcp")


async def test_requests_during_a_slow_start_are_held_until_ready(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(SlowRuntime(delay=0.3))
    await life.register("alice", wait=0)
    assert life.route("alice").state == InstanceState.STARTING and not life.route("alice").ready.is_set()
    route = await life.manager.wait_ready("alice", "echo")
    assert route.state == InstanceState.RUNNING


async def test_concurrent_wakes_start_the_instance_once(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(SlowRuntime(delay=0.2))
    await life.register("alice")
    await life.instances.idle(life.route("alice"), "test")
    results = await asyncio.gather(*(life.manager.wait_ready("alice", "echo") for _ in range(10)))
    assert all(r.state == InstanceState.RUNNING for r in results)
    assert life.runtime.starts == ["alice/echo", "alice/echo"]  # registration, then exactly one wake
    assert len(life.events("instance.wake")) == 1


async def failed_start(make_lifecycle: MakeLifecycle, runtime: Runtime, **settings: Any) -> tuple[Lifecycle, Route]:
    """alice registered on ``runtime``, whose start cannot succeed: her echo route, which must be failed."""
    life = await make_lifecycle(runtime, **settings)
    await life.register("alice")
    route = life.route("alice")
    assert route.state == InstanceState.FAILED
    return life, route


async def test_a_start_that_raises_leaves_the_instance_failed_with_the_reason(make_lifecycle: MakeLifecycle) -> None:
    life, route = await failed_start(make_lifecycle, BadRuntime())
    assert "does not exist" in route.last_error
    with pytest.raises(Unavailable, match="has failed: image for echo does not exist"):
        await life.manager.wait_ready("alice", "echo")
    assert (await life.stored("alice")).last_error == route.last_error


async def test_an_instance_that_never_answers_fails_after_ready_timeout(make_lifecycle: MakeLifecycle) -> None:
    life, route = await failed_start(make_lifecycle, NeverReadyRuntime(), ready_timeout=0.5)
    assert route.last_error.startswith("not ready within")
    assert life.runtime.live("alice", "echo") is None  # what was launched was stopped again


async def test_an_instance_that_exits_before_ready_fails_with_its_code(make_lifecycle: MakeLifecycle) -> None:
    _, route = await failed_start(make_lifecycle, ExitingRuntime())
    assert "exited with code 3 before it was ready" in route.last_error
    assert route.last_log and route.last_log[-1].endswith("exited 3")  # the instance's last words are kept


async def test_a_taken_port_moves_the_lease_and_starts_on_the_next(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    first = life.settings.port_pool.start
    life.runtime.take_port_once.add(first)
    await life.register("alice")
    route = life.route("alice")
    assert route.state == InstanceState.RUNNING and route.port != first
    assert any(f"port {first} was taken" in m for m in life.events("port.moved"))
    assert (await life.stored("alice")).port == route.port


async def test_idle_stops_the_instance_keeps_the_port_and_a_request_wakes_it(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    port = life.route("alice").port
    await life.instances.idle(life.route("alice"), "test")
    assert life.route("alice").state == InstanceState.IDLE and life.runtime.live("alice", "echo") is None
    route = await life.manager.wait_ready("alice", "echo")
    assert route.state == InstanceState.RUNNING and route.port == port
    assert (await life.stored("alice")).state == "running"


async def test_explicit_restart_runs_a_new_instance(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    before = life.route("alice").backend_state
    view = await life.manager.restart("alice")
    assert view.instances[0].state in ("restarting", "running")
    await until(lambda: life.route("alice").state == InstanceState.RUNNING)
    assert life.route("alice").state == InstanceState.RUNNING
    assert life.route("alice").backend_state != before
    assert life.events("instance.restart") == ["restart requested"]


async def test_delete_during_a_start_cancels_it_and_leaves_nothing(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(SlowRuntime(delay=0.3))
    await life.register("alice", wait=0)
    route = life.route("alice")
    waiter = asyncio.create_task(life.manager.wait_ready("alice", "echo"))
    await asyncio.sleep(0.05)
    assert await life.manager.delete("alice") is True
    assert route.state == InstanceState.STOPPED
    with pytest.raises(NotFound):
        life.route("alice")
    assert life.runtime.removed == ["alice/echo"]
    await until(lambda: not life.runtime.instances)
    assert not life.runtime.instances  # the launch under way was stopped once it returned
    waiter.cancel()
    assert await life.stored("alice") is None
    assert await life.manager.delete("alice") is False  # idempotent


async def test_unknown_service_is_404_and_no_start_is_made(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    with pytest.raises(NotFound):
        await life.manager.wait_ready("alice", "nope")
    assert life.runtime.starts == ["alice/echo"]


async def test_bridge_reload_takes_the_database_word(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.register("bob")
    await life.table.writer.flush()
    again = await make_lifecycle(data_dir=life.settings.data_dir, port_range=life.settings.port_range)
    await again.manager.load()
    assert again.manager.client_ids() == ["alice", "bob"]
    assert again.route("bob").state == InstanceState.RUNNING and again.route("bob").port == life.route("bob").port
