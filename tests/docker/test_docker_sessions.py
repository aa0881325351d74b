"""Invisible restarts on a real Docker engine: a session-era MCP client (the official SDK, ``mode="legacy"``)
keeps its session across a container kill (quality and Serena) and across pause/thaw (same container)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker.conftest import docker_bridge, owned_workspace
from tests.helpers import BridgeProcess, mcp_client

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CLIENTS = {"ds-kill", "ds-pause", "ds-serena"}


@pytest.fixture(scope="module")
def bridge(engine: Any, images: dict[str, str], work: Path) -> Iterator[BridgeProcess]:
    with docker_bridge(engine, work, CLIENTS, PARADISE_PROBE_INTERVAL="0.5", PARADISE_PAUSE_AFTER="2") as proc:
        yield proc


def container(engine: Any, client_id: str, service: str) -> Any:
    return engine.containers.get(f"paradise-{client_id}-{service}")


async def test_a_killed_quality_container_does_not_break_the_session(bridge: BridgeProcess, engine, work) -> None:
    created = bridge.register("ds-kill", owned_workspace(work / "kill", "Phoenix"), ["quality"], wait=120)
    async with mcp_client(bridge.mcp_url("ds-kill", "quality"), created["token"], mode="legacy") as client:
        assert not (await client.call_tool("list_profiles", {})).is_error
        first = container(engine, "ds-kill", "quality").id
        container(engine, "ds-kill", "quality").kill()
        again = await client.call_tool("list_profiles", {})  # held, healed, initialize replayed
        assert not again.is_error, again
        assert container(engine, "ds-kill", "quality").id != first


async def test_pause_then_thaw_keeps_the_same_container_and_session(bridge: BridgeProcess, engine, work) -> None:
    created = bridge.register("ds-pause", owned_workspace(work / "pause", "Sleeper"), ["quality"], wait=120)
    async with mcp_client(bridge.mcp_url("ds-pause", "quality"), created["token"], mode="legacy") as client:
        assert not (await client.call_tool("list_profiles", {})).is_error
        first = container(engine, "ds-pause", "quality").id
        assert bridge.wait_state("ds-pause", "quality", {"paused"}, timeout=30)["state"] == "paused"
        assert container(engine, "ds-pause", "quality").status == "paused"
        assert not (await client.call_tool("list_profiles", {})).is_error
        assert container(engine, "ds-pause", "quality").id == first
        assert container(engine, "ds-pause", "quality").status == "running"
    kinds = [e["kind"] for e in bridge.api("GET", "/events", params={"client_id": "ds-pause"}).json()]
    assert "instance.paused" in kinds and "instance.thawed" in kinds


async def test_serenas_session_survives_a_container_kill(bridge: BridgeProcess, engine, work) -> None:
    created = bridge.register("ds-serena", owned_workspace(work / "serena", "Circle"), ["serena"], wait=180)
    async with mcp_client(bridge.mcp_url("ds-serena", "serena"), created["token"], mode="legacy") as client:
        found = await client.call_tool("find_symbol", {"name_path_pattern": "Circle"})
        assert not found.is_error and "Circle" in found.content[0].text
        container(engine, "ds-serena", "serena").kill()
        deadline = time.monotonic() + 120
        again = await client.call_tool("find_symbol", {"name_path_pattern": "Circle"})
        assert time.monotonic() < deadline
        assert not again.is_error and "Circle" in again.content[0].text, again
