"""Canary rollouts on the Docker runtime (issue 27.4; the process runtime's cases: tests/integration/
test_rollouts.py): the built-in quality service gets two declared versions in the user's catalog. ``q2`` is the
same image with its own environment: both clients' containers are replaced by ones that carry it, with their
MCP sessions intact and ``version_id`` naming the image and its id. ``missing`` names an image that was never
built: its first wave never becomes ready, the rollout rolls back, and the clients keep answering on ``q2``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.docker.conftest import docker_bridge, owned_workspace
from tests.helpers import BridgeProcess, mcp_client

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CLIENTS = ("dk-roll-a", "dk-roll-b")  # moved in this order: dk-roll-a is the first wave
CATALOG = """[services.quality]
version = "q1"
[services.quality.versions.q2]
env = { ROLLOUT_MARK = "q2" }
[services.quality.versions.missing]
image = "devops-paradise/never-built:0"
"""


def instance(bridge: BridgeProcess, client: str) -> dict[str, Any]:
    return bridge.api("GET", f"/clients/{client}").json()["instances"][0]


def marks(engine: Any, client: str) -> list[str]:
    env = engine.containers.get(f"paradise-{client}-quality").attrs["Config"]["Env"]
    return [item for item in env if item.startswith("ROLLOUT_MARK=")]


async def roll(bridge: BridgeProcess, to: str, timeout: float = 400) -> dict[str, Any]:
    """Start a rollout of quality to ``to`` in two waves and wait until it has finished (rollback included)."""
    resp = bridge.api("POST", "/rollouts", json={"service": "quality", "to": to, "waves": [50, 100], "soak": 1})
    assert resp.status_code == 201, resp.text
    for _ in range(int(timeout / 0.5)):
        current = bridge.api("GET", "/rollouts/quality").json()
        if current["state"] in ("done", "rolled_back", "aborted") and not current["active"]:
            return current
        await asyncio.sleep(0.5)
    raise AssertionError(f"the rollout to {to} did not finish within {timeout}s")


async def test_rollouts_on_docker_move_containers_and_roll_back_a_version_that_never_starts(
    engine: Any, images: dict[str, str], work: Path
) -> None:
    (work / "catalog.toml").write_text(CATALOG)
    with docker_bridge(engine, work, set(CLIENTS), PARADISE_CATALOG=str(work / "catalog.toml")) as bridge:
        tokens = {c: bridge.register(c, owned_workspace(work / c, "Ledger"), ["quality"], wait=180)["token"]
                  for c in CLIENTS}  # fmt: skip
        before = {c: instance(bridge, c) for c in CLIENTS}
        assert {i["version"] for i in before.values()} == {"q1"}
        assert all(i["version_id"].startswith(images["quality"] + "@") for i in before.values()), before
        assert all(marks(engine, c) == [] for c in CLIENTS)
        async with (
            mcp_client(bridge.mcp_url(CLIENTS[0], "quality"), tokens[CLIENTS[0]], mode="legacy") as first,
            mcp_client(bridge.mcp_url(CLIENTS[1], "quality"), tokens[CLIENTS[1]], mode="legacy") as second,
        ):
            sessions = (first, second)
            for session in sessions:
                assert not (await session.call_tool("list_profiles", {})).is_error
            done = await roll(bridge, "q2")
            assert done["state"] == "done" and done["moved"] == 2, json.dumps(done)
            for client, session in zip(CLIENTS, sessions, strict=True):  # the same sessions, new containers
                assert instance(bridge, client)["version"] == "q2"
                assert marks(engine, client) == ["ROLLOUT_MARK=q2"]
                assert not (await session.call_tool("list_profiles", {})).is_error
            back = await roll(bridge, "missing")
            assert back["state"] == "rolled_back", json.dumps(back)
            assert "missing" not in {instance(bridge, c)["version"] for c in CLIENTS}
            for client, session in zip(CLIENTS, sessions, strict=True):
                assert instance(bridge, client)["state"] == "running"
                assert marks(engine, client) == ["ROLLOUT_MARK=q2"]  # the moved one was put back on q2
                assert not (await session.call_tool("list_profiles", {})).is_error
