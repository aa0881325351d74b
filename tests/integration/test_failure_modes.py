"""Held requests and failure modes (a slow start, a crash at launch, a server never ready, an exhausted port
pool), against real MCP servers and the whole bridge in-process (tests/inprocess/)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import fixture_catalog
from tests.inprocess import InProcessBridge, serving_inprocess
from tests.integration.test_routing import ACCEPT, INIT

pytestmark = pytest.mark.inprocess


def test_request_to_a_starting_instance_is_held_until_ready(bridge: InProcessBridge, workspace) -> None:
    created = bridge.register("patient", workspace, ["slow"], wait=0)
    assert created["instances"][0]["state"] in ("starting", "restarting")
    began = time.monotonic()
    resp = httpx.post(
        bridge.mcp_url("patient", "slow"),
        json=INIT,
        headers={"Authorization": f"Bearer {created['token']}", "Accept": ACCEPT},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert time.monotonic() - began > 1.0  # it really was held through the 3 s slow start
    bridge.api("DELETE", "/clients/patient")


def test_crashing_backend_fails_with_its_last_lines(bridge: InProcessBridge, workspace) -> None:
    created = bridge.register("crasher", workspace, ["crashy"])
    state = bridge.wait_state("crasher", "crashy", {"failed"})
    assert state["state"] == "failed"
    assert "exited with code 3" in state["last_error"]
    assert any("crashing on purpose" in line for line in state["last_log"])
    resp = httpx.post(
        bridge.mcp_url("crasher", "crashy"),
        json=INIT,
        headers={"Authorization": f"Bearer {created['token']}", "Accept": ACCEPT},
    )
    assert resp.status_code == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert "failed" in resp.json()["error"]["message"]
    bridge.api("DELETE", "/clients/crasher")


@pytest.fixture
def impatient_bridge(tmp_path) -> Iterator[InProcessBridge]:
    catalog = fixture_catalog(tmp_path / "catalog.toml")
    proc = InProcessBridge(
        tmp_path / "data",
        env={"PARADISE_CATALOG": str(catalog), "PARADISE_START_TIMEOUT": "1.5", "PARADISE_READY_TIMEOUT": "4"},
        pool_size=2,
    )
    with serving_inprocess(proc):
        yield proc


def test_never_ready_backend_gives_503_with_retry_after(impatient_bridge: InProcessBridge, workspace) -> None:
    bridge = impatient_bridge
    created = bridge.register("stuck", workspace, ["hung"], wait=0)
    resp = httpx.post(
        bridge.mcp_url("stuck", "hung"),
        json=INIT,
        headers={"Authorization": f"Bearer {created['token']}", "Accept": ACCEPT},
        timeout=30,
    )
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json()["error"]["code"] == "unavailable"
    state = bridge.wait_state("stuck", "hung", {"failed"}, timeout=15)
    assert state["state"] == "failed" and "not ready within 4s" in state["last_error"]


def test_exhausted_pool_is_503_naming_the_range(impatient_bridge: InProcessBridge, workspace) -> None:
    bridge = impatient_bridge
    bridge.register("first", workspace, ["echo", "slow"], wait=0)
    body = {"client_id": "third", "workspace": str(workspace), "services": ["echo"]}
    resp = bridge.api("POST", "/clients", json=body)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    error = resp.json()["error"]
    assert error["code"] == "port_pool_exhausted"
    assert f"{bridge.pool.start}-{bridge.pool.stop - 1}" in error["message"]
    assert bridge.api("GET", "/clients/third").status_code == 404
    assert {lease["client_id"] for lease in bridge.api("GET", "/ports").json()} == {"first"}
