"""Health monitoring, self-healing, scale to zero and limits, against real MCP servers and the whole bridge
in-process (tests/inprocess/: a crash is the launch killed, a hang its server answering nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest

from bridge.mcp.protocol import initialize_request
from tests.helpers import fast_health_env, fixture_catalog, mcp_client
from tests.inprocess import InProcessBridge, serving_inprocess

pytestmark = pytest.mark.inprocess

@contextlib.contextmanager
def running_bridge(tmp_path, extra_catalog: str = "", **env: str) -> Iterator[InProcessBridge]:
    env = fast_health_env(tmp_path, extra_catalog, **env)
    with serving_inprocess(InProcessBridge(tmp_path / "data", env=env)) as app:
        yield app


def kinds(bridge: InProcessBridge, client_id: str) -> list[str]:
    events = bridge.api("GET", "/events", params={"client_id": client_id, "limit": 200}).json()
    return [e["kind"] for e in reversed(events)]


def wait_for_event(
    bridge: InProcessBridge, client_id: str, kind: str, count: int = 1, timeout: float = 30
) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = kinds(bridge, client_id)
        if seen.count(kind) >= count:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"no {count}x {kind} within {timeout}s: {kinds(bridge, client_id)}")


async def test_hung_instance_goes_unhealthy_then_is_restarted(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        created = bridge.register("frozen", workspace, ["echo"])
        pid = bridge.launch_id("frozen", "echo")
        async with mcp_client(bridge.mcp_url("frozen", "echo"), created["token"], read_timeout=2) as client:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.call_tool("freeze", {}), timeout=1)
        seen = wait_for_event(bridge, "frozen", "instance.unhealthy")
        seen = wait_for_event(bridge, "frozen", "instance.ready", count=2)
        assert seen.index("instance.unhealthy") < seen.index("instance.unresponsive")
        state = bridge.wait_state("frozen", "echo", {"running"})
        assert state["state"] == "running" and state["restarts"] == 1
        assert bridge.launch_id("frozen", "echo") != pid
        async with mcp_client(bridge.mcp_url("frozen", "echo"), created["token"]) as client:
            assert (await client.call_tool("echo", {"text": "back"})).content[0].text == "back"


def test_crash_loop_ends_failed_with_exit_code_and_last_lines(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        bridge.register("loopy", workspace, ["flaky"])
        state = bridge.wait_state("loopy", "flaky", {"failed"}, timeout=60)
        assert state["state"] == "failed"
        assert "crash loop" in state["last_error"] and "code 4" in state["last_error"]
        assert any("crashing after serving" in line for line in state["last_log"])
        assert state["restarts"] == 3  # RESTART_LIMIT
        assert kinds(bridge, "loopy").count("instance.died") >= 3
        # An explicit restart forgives the budget: the instance serves again (until its next crash).
        assert bridge.api("POST", "/clients/loopy/restart").status_code == 200
        wait_for_event(bridge, "loopy", "instance.restart")
        again = bridge.wait_state("loopy", "flaky", {"running"}, timeout=20)
        assert again["state"] == "running" and again["last_error"] is None


async def test_killed_instance_is_healed_and_events_tell(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        created = bridge.register("lazarus", workspace, ["echo"])
        bridge.crash("lazarus", "echo")
        seen = wait_for_event(bridge, "lazarus", "instance.ready", count=2)
        assert seen.index("instance.died") < len(seen) - 1 - seen[::-1].index("instance.ready")
        async with mcp_client(bridge.mcp_url("lazarus", "echo"), created["token"]) as client:
            assert (await client.call_tool("whoami", {})).structured_content["client"] == "lazarus"


async def test_idle_instance_sleeps_and_one_burst_wakes_it_once(tmp_path, workspace) -> None:
    with running_bridge(tmp_path, PARADISE_IDLE_TIMEOUT="1.5") as bridge:
        created = bridge.register("sleepy", workspace, ["echo"])
        port = created["instances"][0]["port"]
        state = bridge.wait_state("sleepy", "echo", {"idle"}, timeout=20)
        assert state["state"] == "idle" and state["port"] == port
        assert [lease["port"] for lease in bridge.api("GET", "/ports").json()] == [port]  # lease kept
        url = bridge.mcp_url("sleepy", "echo")
        headers = {"Authorization": f"Bearer {created['token']}", "Accept": "application/json, text/event-stream"}
        init = initialize_request("t")
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(*(http.post(url, json=init, headers=headers) for _ in range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        seen = kinds(bridge, "sleepy")
        assert seen.count("instance.idle") == 1
        after_idle = seen[seen.index("instance.idle") :]
        assert after_idle.count("instance.ready") == 1  # twenty requests, one start
        assert bridge.state("sleepy", "echo")["state"] == "running"


def test_caps_refuse_with_429_and_retry_after(tmp_path, workspace) -> None:
    with running_bridge(tmp_path, PARADISE_MAX_INSTANCES="1") as bridge:
        bridge.register("first", workspace, ["echo"])
        body = {"client_id": "second", "workspace": str(workspace), "services": ["echo"]}
        refused = bridge.api("POST", "/clients", json=body)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        error = refused.json()["error"]
        assert error["code"] == "capacity_exceeded" and "PARADISE_MAX_INSTANCES=1" in error["message"]
        assert bridge.api("GET", "/clients/second").status_code == 404
        assert {lease["client_id"] for lease in bridge.api("GET", "/ports").json()} == {"first"}


def test_memory_cap_with_lru_eviction_makes_room(tmp_path, workspace) -> None:
    big = fixture_catalog(tmp_path / "base.toml").read_text().split("[services.crashy]")[0]
    big = big.replace("[services.echo]", "[services.big]") + 'memory = "600m"\n'
    with running_bridge(tmp_path, big, PARADISE_MAX_MEMORY="1g", PARADISE_EVICT_LRU="true") as bridge:
        old = bridge.register("old", workspace, ["big"])
        new = bridge.register("new", workspace, ["big"])
        assert new["instances"][0]["state"] == "running"
        assert bridge.state("old", "big")["state"] == "idle"
        assert any(
            "make room" in e["message"] for e in bridge.api("GET", "/events", params={"client_id": "old"}).json()
        )
        # A request to the sleeping one wakes it, and the least recently used (now "new") makes room.
        resp = httpx.post(
            bridge.mcp_url("old", "big"),
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {old['token']}", "Accept": "application/json, text/event-stream"},
            timeout=30,
        )
        assert resp.status_code != 503 and resp.status_code != 429
        assert bridge.state("old", "big")["state"] == "running"
        assert bridge.state("new", "big")["state"] == "idle"


def test_alerts_reach_the_webhook(tmp_path, workspace) -> None:
    """A real HTTP receiver on loopback gets the failure alert; info events are not sent."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        with running_bridge(tmp_path, PARADISE_ALERT_WEBHOOK=url) as bridge:
            bridge.register("alarmed", workspace, ["crashy"])
            bridge.wait_state("alarmed", "crashy", {"failed"})
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        server.shutdown()
    kinds_sent = [r["event"]["kind"] for r in received]
    assert "instance.failed" in kinds_sent
    assert all(r["event"]["level"] in ("warning", "error") for r in received)
    assert all(r["event"]["client_id"] == "alarmed" for r in received)
