"""``GET /metrics`` of the whole bridge in-process (tests/inprocess/) changes as real MCP traffic flows through it."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.mcp.protocol import initialize_request
from tests.helpers import mcp_client
from tests.inprocess import InProcessBridge

INIT = initialize_request("t")
pytestmark = pytest.mark.inprocess
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def get_metrics(bridge: InProcessBridge) -> httpx.Response:
    """A scrape as Prometheus does it, with the admin token as its bearer credentials."""
    return httpx.get(bridge.url + "/metrics", headers={"Authorization": f"Bearer {bridge.admin_token}"}, timeout=10)


def scrape(bridge: InProcessBridge) -> Samples:
    resp = get_metrics(bridge)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def metered(bridge: InProcessBridge, workspace) -> dict:
    return bridge.register("metered", workspace, ["echo"])


async def test_requests_and_bytes_grow_with_mcp_traffic(bridge: InProcessBridge, metered: dict) -> None:
    labels = {"client": "metered", "service": "echo"}
    before = scrape(bridge)
    async with mcp_client(bridge.mcp_url("metered", "echo"), metered["token"]) as client:
        for i in range(3):
            result = await client.call_tool("echo", {"text": f"hello {i} " + "x" * 1000})
            assert not result.is_error
    after = scrape(bridge)
    posts = get(after, "paradise_requests_total", **labels, method="POST", status="2xx")
    # initialize, notifications/initialized, 3 tools/call (the SDK may add a tools/list to validate output)
    assert posts - get(before, "paradise_requests_total", **labels, method="POST", status="2xx") >= 5
    for direction, least in (("request", 3000), ("response", 3000)):
        grown = get(after, "paradise_relayed_bytes_total", **labels, direction=direction) - get(
            before, "paradise_relayed_bytes_total", **labels, direction=direction
        )
        assert grown >= least, (direction, grown)
    assert get(after, "paradise_request_duration_seconds_count", **labels, method="POST") == posts
    assert get(after, "paradise_open_streams", **labels) == 0  # every stream closed again


def test_open_streams_gauge_follows_an_sse_stream(bridge: InProcessBridge, metered: dict) -> None:
    headers = {"Authorization": f"Bearer {metered['token']}", "Accept": "application/json, text/event-stream"}
    url = bridge.mcp_url("metered", "echo")
    labels = {"client": "metered", "service": "echo"}
    with httpx.Client(headers=headers, timeout=30) as http:
        init = http.post(url, json=INIT)
        assert init.status_code == 200, init.text
        session = {"Mcp-Session-Id": init.headers["mcp-session-id"]}
        http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        with http.stream("GET", url, headers={**session, "Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            assert get(scrape(bridge), "paradise_open_streams", **labels) == 1
        http.delete(url, headers=session)
    deadline = time.monotonic() + 10
    while get(scrape(bridge), "paradise_open_streams", **labels) != 0:
        assert time.monotonic() < deadline, "the closed stream is still counted"
        time.sleep(0.1)
    assert get(scrape(bridge), "paradise_requests_total", **labels, method="GET", status="2xx") >= 1


def test_instance_state_and_port_pool(bridge: InProcessBridge, metered: dict) -> None:
    samples = scrape(bridge)
    assert get(samples, "paradise_instance_state", client="metered", service="echo", state="running") == 1
    assert get(samples, "paradise_instance_state", client="metered", service="echo", state="starting") == 0
    assert get(samples, "paradise_instances", state="running") >= 1
    assert get(samples, "paradise_instance_restarts_total", client="metered", service="echo") == 0
    leases = bridge.api("GET", "/ports").json()
    assert get(samples, "paradise_port_pool_leased") == len(leases)
    assert get(samples, "paradise_port_pool_size") == len(bridge.pool)
    assert get(samples, "paradise_clients") == len(bridge.api("GET", "/clients").json())


def test_unauthenticated_requests_create_no_series(bridge: InProcessBridge, metered: dict) -> None:
    for path in ("/c/nobody/echo/mcp", "/c/metered/echo/mcp"):
        resp = httpx.post(bridge.url + path, json={}, headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert resp.status_code == 401
    text = get_metrics(bridge).text
    assert 'client="nobody"' not in text


def test_errors_are_counted_for_a_failed_instance(bridge: InProcessBridge, workspace) -> None:
    created = bridge.register("metered-crashy", workspace, ["crashy"], wait=0)
    assert bridge.wait_state("metered-crashy", "crashy", {"failed"}, timeout=120)["state"] == "failed"
    url = bridge.mcp_url("metered-crashy", "crashy")
    resp = httpx.post(url, json={}, headers={"Authorization": f"Bearer {created['token']}"}, timeout=30)
    assert resp.status_code == 503
    samples = scrape(bridge)
    labels = {"client": "metered-crashy", "service": "crashy", "method": "POST"}
    assert get(samples, "paradise_request_errors_total", **labels, reason="unavailable") == 1
    assert get(samples, "paradise_requests_total", **labels, status="5xx") == 1
    assert get(samples, "paradise_instance_state", client="metered-crashy", service="crashy", state="failed") == 1


def test_deleted_client_disappears_from_metrics(bridge: InProcessBridge, workspace) -> None:
    created = bridge.register("metered-gone", workspace, ["echo"])
    resp = httpx.post(
        bridge.mcp_url("metered-gone", "echo"),
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {created['token']}", "Accept": "application/json, text/event-stream"},
        timeout=30,
    )
    assert resp.status_code < 500
    assert 'client="metered-gone"' in get_metrics(bridge).text
    assert bridge.api("DELETE", "/clients/metered-gone").status_code == 204
    assert 'client="metered-gone"' not in get_metrics(bridge).text
