"""``/metrics`` names every client, so it needs the admin token unless PARADISE_METRICS_PUBLIC=true (the whole bridge
in-process, tests/inprocess/)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.inprocess import InProcessBridge, serving_inprocess

pytestmark = pytest.mark.inprocess


def scrape(bridge: InProcessBridge, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(bridge.url + "/metrics", headers=headers or {}, timeout=10)


@pytest.fixture(scope="module")
def tenant(bridge: InProcessBridge, workspace: Path) -> dict:
    return bridge.register("metrics-tenant", workspace, ["echo"])


def test_without_a_token_it_is_401_and_names_no_client(bridge: InProcessBridge, tenant: dict) -> None:
    resp = scrape(bridge)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert "metrics-tenant" not in resp.text and "paradise_" not in resp.text


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token-of-some-length", "Basic {admin}", "{admin}", "Bearer {admin}x", "Bearer {tenant}"],
)
def test_a_wrong_or_tenant_token_is_401(bridge: InProcessBridge, tenant: dict, header: str) -> None:
    value = header.format(admin=bridge.admin_token, tenant=tenant["token"])
    assert scrape(bridge, {"Authorization": value}).status_code == 401


def test_with_the_admin_token_it_is_prometheus_text(bridge: InProcessBridge, tenant: dict) -> None:
    resp = scrape(bridge, {"Authorization": f"Bearer {bridge.admin_token}"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'client="metrics-tenant"' in resp.text


def test_the_dashboard_and_healthz_stay_open(bridge: InProcessBridge) -> None:
    assert httpx.get(bridge.url + "/healthz", timeout=10).status_code == 200
    assert httpx.get(bridge.url + "/dashboard", timeout=10).status_code == 200  # a page without data


def test_metrics_public_serves_without_a_token(tmp_path: Path) -> None:
    with serving_inprocess(InProcessBridge(tmp_path / "data", env={"PARADISE_METRICS_PUBLIC": "true"})) as proc:
        resp = scrape(proc)
        assert resp.status_code == 200 and "paradise_port_pool_size" in resp.text
