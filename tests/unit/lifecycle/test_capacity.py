"""Admission: caps refuse with 429, or make room by putting the least recently used instance to sleep."""

from __future__ import annotations

import pytest

from bridge.errors import TooManyInstances
from bridge.lifecycle import capacity
from bridge.lifecycle.routes import Route
from bridge.models import InstanceState
from bridge.settings import BridgeSettings
from tests.unit.lifecycle.conftest import CATALOG, MakeLifecycle


def route(client: str, state: InstanceState, activity: float, streams: int = 0) -> Route:
    made = Route(client, "echo", 1, "/mcp", "streamable-http", state, {})
    made.last_activity, made.streams = activity, streams
    return made


def test_overflow_counts_active_and_paused_instances_against_max_instances() -> None:
    settings = BridgeSettings(max_instances=2)
    states = (InstanceState.RUNNING, InstanceState.PAUSED, InstanceState.IDLE, InstanceState.FAILED)
    routes = [route(name, state, port) for port, (name, state) in enumerate(zip("abcd", states, strict=True), 1)]
    assert capacity.overflow(routes, CATALOG, settings, ["echo"]) == (
        "2 of PARADISE_MAX_INSTANCES=2 instances are active; 1 more asked"
    )
    assert capacity.overflow(routes[2:], CATALOG, settings, ["echo", "echo"]) is None


def test_overflow_sums_catalog_memory_against_max_memory() -> None:
    settings = BridgeSettings(max_memory="250m")
    routes = [route("a", InstanceState.RUNNING, 1), route("b", InstanceState.STARTING, 2)]
    assert capacity.overflow(
        routes, CATALOG, settings, ["echo"]
    ) == "200 MiB of PARADISE_MAX_MEMORY=250 MiB is allotted; 100 MiB more asked"
    assert capacity.overflow(routes[:1], CATALOG, settings, ["echo"]) is None


def test_eviction_prefers_paused_then_least_recently_used_and_spares_streams() -> None:
    old_running, paused = route("a", InstanceState.RUNNING, 1), route("b", InstanceState.PAUSED, 5)
    streaming = route("c", InstanceState.RUNNING, 0, streams=1)
    assert capacity.eviction_candidate([old_running, paused, streaming]) is paused
    assert capacity.eviction_candidate([old_running, route("d", InstanceState.RUNNING, 2), streaming]) is old_running
    assert capacity.eviction_candidate([streaming]) is None
    assert capacity.eviction_candidate([old_running], spare=old_running) is None


async def test_registration_over_the_cap_is_refused_with_429(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(max_instances=1)
    await life.register("alice")
    with pytest.raises(TooManyInstances) as refused:
        await life.register("bob")
    assert refused.value.status == 429 and refused.value.headers.get("Retry-After") == "30"
    assert life.manager.client_ids() == ["alice"]  # nothing half-registered
    assert life.runtime.starts == ["alice/echo"]


async def test_with_evict_lru_a_wake_puts_the_least_recently_used_to_sleep(make_lifecycle: MakeLifecycle) -> None:
    life = await make_lifecycle(max_instances=2, evict_lru=True)
    await life.register("alice")
    await life.register("bob")
    await life.instances.idle(life.route("bob"), "test")
    await life.register("carol")
    life.route("alice").last_activity = 0  # the oldest
    route = await life.manager.wait_ready("bob", "echo")
    assert route.state == InstanceState.RUNNING
    assert life.route("alice").state == InstanceState.IDLE and life.route("carol").state == InstanceState.RUNNING
    assert any("stopped to make room" in m for m in life.events("instance.idle"))
