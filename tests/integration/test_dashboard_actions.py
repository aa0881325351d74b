"""The dashboard's actions through the whole bridge in-process (tests/inprocess/): one instance restarted by
the admin API, and the same-origin wall (guard.py) that refuses admin writes and the dashboard socket from a
foreign origin, even with the admin token, while the bridge's own origin and callers without an Origin (CLI,
curl) pass."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import httpx
import pytest

from tests.inprocess import InProcessBridge, inprocess_bridge, serving_inprocess

pytestmark = pytest.mark.inprocess
FOREIGN = "http://127.0.0.1:9"  # another port is another origin


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessBridge]:
    base = tmp_path_factory.mktemp("actions")
    with serving_inprocess(inprocess_bridge(base, PARADISE_ALLOWED_ORIGINS="http://tools.example:8080")) as proc:
        workspace = base / "ws"
        workspace.mkdir()
        proc.register("acts", workspace, ["echo"], wait=30)
        yield proc


def restart(bridge: InProcessBridge, **headers: str) -> httpx.Response:
    return bridge.api("POST", "/clients/acts/instances/echo/restart", headers=headers)


def restart_events(bridge: InProcessBridge) -> int:
    events = bridge.api("GET", "/events", params={"client_id": "acts", "limit": 1000}).json()
    return sum(1 for e in events if e["kind"] == "instance.restart")


def test_one_instance_restarts_and_the_restart_is_an_event(bridge: InProcessBridge) -> None:
    before = restart_events(bridge)
    resp = restart(bridge)
    assert resp.status_code == 200, resp.text
    assert resp.json()["client_id"] == "acts"
    assert restart_events(bridge) == before + 1
    assert bridge.wait_state("acts", "echo", {"running"})["state"] == "running"
    missing = bridge.api("POST", "/clients/acts/instances/nope/restart")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("origin", [FOREIGN, "null", "http://127.0.0.1.evil.example", "http://tools.example:9090"])
def test_a_foreign_origin_cannot_restart_even_with_the_admin_token(bridge: InProcessBridge, origin: str) -> None:
    before = restart_events(bridge)
    resp = restart(bridge, Origin=origin)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "forbidden"
    assert restart_events(bridge) == before  # refused before the handler: nothing ran
    for method, path in (("POST", "/clients/acts/token"), ("DELETE", "/clients/acts")):
        assert bridge.api(method, path, headers={"Origin": origin}).status_code == 403
    assert bridge.api("GET", "/clients/acts").status_code == 200  # the client is still there, token unchanged


def test_a_cross_site_fetch_without_origin_is_refused(bridge: InProcessBridge) -> None:
    assert restart(bridge, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403


def test_the_bridges_own_and_listed_origins_may_act(bridge: InProcessBridge) -> None:
    for origin in (bridge.url, f"http://localhost:{bridge.port}", "http://tools.example:8080"):
        host = origin.split("//")[1] if "localhost" in origin else f"127.0.0.1:{bridge.port}"
        assert restart(bridge, Origin=origin, Host=host).status_code == 200, origin
    # Same origin as the Host, but a Host the bridge does not answer to: a DNS-rebound name.
    rebound = restart(bridge, Origin=f"http://rebind.example:{bridge.port}", Host=f"rebind.example:{bridge.port}")
    assert rebound.status_code == 403


async def test_the_dashboard_socket_refuses_a_foreign_origin(bridge: InProcessBridge) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(bridge.url + "/dashboard/ws", headers={"Origin": FOREIGN})
        assert refused.value.status == 403
        async with http.ws_connect(bridge.url + "/dashboard/ws", headers={"Origin": bridge.url}) as ws:
            await ws.send_str(json.dumps({"type": "auth", "token": bridge.admin_token}))
            first = await ws.receive_json(timeout=10)
    assert first["type"] == "snapshot"
    assert "history" in first and first["clients"][0]["quality_runs"] == []
