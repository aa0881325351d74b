"""The one state machine: which changes are allowed, the ready flag, mirrored fields and persistence."""

from __future__ import annotations

import pytest

from bridge.lifecycle.routes import IllegalTransition
from bridge.models import ALLOWED, READY, InstanceState
from tests.unit.lifecycle.conftest import MakeLifecycle


async def test_illegal_transitions_are_refused(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    await life.instances.idle(route, "test")
    with pytest.raises(IllegalTransition, match="idle -> running"):
        life.table.transition(route, InstanceState.RUNNING)  # an idle instance must be started, not declared running
    assert route.state == InstanceState.IDLE


@pytest.mark.parametrize("state", sorted(ALLOWED[InstanceState.RUNNING]))
async def test_ready_flag_follows_every_state_a_running_instance_can_take(
    make_lifecycle: MakeLifecycle, state: InstanceState
) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    route = life.route("alice")
    life.table.transition(route, state, last_error="why")
    assert route.ready.is_set() is (state in READY)
    stored = await life.stored("alice")
    assert (stored.state, stored.last_error) == (state, "why")


async def test_every_state_is_reachable_and_can_be_left(make_lifecycle: MakeLifecycle) -> None:
    reachable = {target for targets in ALLOWED.values() for target in targets}
    assert reachable | {InstanceState.STARTING} == set(InstanceState)
    assert all(ALLOWED[state] for state in InstanceState)  # no state is a dead end (a failed one can be restarted)


async def test_follower_refresh_keeps_routes_it_is_starting(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle()
    await life.register("alice")
    await life.register("bob")
    for client in ("alice", "bob"):  # the database says unhealthy; memory runs ahead of it
        life.table.transition(life.route(client), InstanceState.UNHEALTHY)
        await life.table.writer.flush()
        life.route(client).state = InstanceState.RUNNING
    life.instances.starting = lambda: {("alice", "echo")}  # type: ignore[method-assign]
    await life.manager.refresh()
    assert life.route("alice").state == InstanceState.RUNNING  # a start of our own is not overwritten
    assert life.route("bob").state == InstanceState.UNHEALTHY  # everything else takes the database's word
    assert life.route("bob").ready.is_set()
