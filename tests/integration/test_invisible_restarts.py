"""A client holding an MCP session sees nothing when its instance dies, sleeps or wakes: the whole bridge
in-process (tests/inprocess/), real SDK server instances, the official SDK client as a session-era client
(``mode="legacy"``: initialize handshake and Mcp-Session-Id, as Claude Code is). A real SIGSTOP pause and the
bridge process itself killed: test_invisible_restarts_process.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.mcp.protocol import SESSION_ID_HEADER, initialize_request
from tests.helpers import BridgeClient, mcp_client
from tests.inprocess import InProcessBridge
from tests.integration.test_health import running_bridge

pytestmark = pytest.mark.inprocess


def crash_instance(bridge: InProcessBridge, client_id: str, service: str) -> None:
    """kill -9 of the instance's server, returning once it is gone: the next call comes after the crash.
    (A call racing its exit may reach its socket and is rightly not sent again, since the bridge cannot know
    the server never read it: bridge/proxy/resend.py.)"""
    bridge.crash(client_id, service)


async def whoami(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    return result.structured_content


@contextlib.asynccontextmanager
async def echo_session(bridge: BridgeClient, client_id: str, workspace: Path) -> AsyncIterator[tuple[Any, dict]]:
    """``client_id`` registered with the echo service; a session-era SDK client and its first whoami."""
    token = bridge.register(client_id, workspace, ["echo"])["token"]
    async with mcp_client(bridge.mcp_url(client_id, "echo"), token, mode="legacy") as client:
        yield client, await whoami(client)


async def test_kill_9_between_two_calls_is_not_seen_by_the_session(tmp_path, workspace) -> None:
    with running_bridge(tmp_path, PARADISE_PROBE_INTERVAL="30") as bridge:  # no probe will notice on its own
        async with echo_session(bridge, "alice", workspace) as (client, before):
            crash_instance(bridge, "alice", "echo")
            for _ in range(5):  # each call on the same session: held, healed, replayed — never 404 or 502
                after = await whoami(client)
            assert after["boot"] != before["boot"] and after["client"] == "alice"
            assert (await client.call_tool("echo", {"text": "still here"})).content[0].text == "still here"
        events = [e["kind"] for e in bridge.api("GET", "/events", params={"client_id": "alice"}).json()]
        assert "instance.died" in events and "instance.ready" in events


async def test_a_crash_found_by_the_monitor_is_not_seen_either(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        async with echo_session(bridge, "bob", workspace) as (client, before):
            crash_instance(bridge, "bob", "echo")
            assert bridge.wait_state("bob", "echo", {"restarting", "starting"}, timeout=10)["state"] != "failed"
            bridge.wait_state("bob", "echo", {"running"}, timeout=30)
            assert (await whoami(client))["boot"] != before["boot"]


async def test_idle_stop_and_wake_keep_the_session(tmp_path, workspace) -> None:
    # A session without an open GET stream (an open stream keeps an instance awake on purpose).
    with running_bridge(tmp_path, PARADISE_IDLE_TIMEOUT="1") as bridge:
        token = bridge.register("carol", workspace, ["echo"])["token"]
        url, session = open_session(bridge.mcp_url("carol", "echo"), token)
        before = call_whoami(url, session)
        assert bridge.wait_state("carol", "echo", {"idle"}, timeout=20)["state"] == "idle"
        after = call_whoami(url, session)  # woken, initialize replayed: the same session id works
        assert after["boot"] != before["boot"] and after["client"] == "carol"
        assert bridge.state("carol", "echo")["state"] == "running"


def rpc(url: str, headers: dict[str, str], message: dict) -> tuple[httpx.Response, dict | None]:
    """One JSON-RPC message by hand; the answer from a JSON body or the SSE event that carries the id."""
    resp = httpx.post(url, json=message, headers=headers, timeout=30)
    if resp.status_code != 200:
        return resp, None
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        for line in resp.text.splitlines():
            if line.startswith("data:") and '"id"' in line:
                return resp, json.loads(line[5:])
        return resp, None
    return resp, resp.json()


def open_session(url: str, token: str) -> tuple[str, dict[str, str]]:
    """initialize + initialized by hand, as a 2025-06-18 client; the headers of the session."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    resp, _ = rpc(url, headers, initialize_request("t", version="2025-06-18"))
    assert resp.status_code == 200, resp.text
    session = {**headers, SESSION_ID_HEADER: resp.headers[SESSION_ID_HEADER], "MCP-Protocol-Version": "2025-06-18"}
    assert rpc(url, session, {"jsonrpc": "2.0", "method": "notifications/initialized"})[0].status_code == 202
    return url, session


def call_whoami(url: str, session: dict[str, str]) -> dict[str, str]:
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    resp, answer = rpc(url, session, call)
    assert resp.status_code == 200 and answer is not None, resp.text
    return answer["result"]["structuredContent"]


async def test_the_client_sees_the_bridge_session_id_never_the_instance_one(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        token = bridge.register("erin", workspace, ["echo"])["token"]
        url = bridge.mcp_url("erin", "echo")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
        resp, _ = rpc(url, headers, initialize_request("t", version="2025-06-18"))
        assert resp.status_code == 200, resp.text
        ours = resp.headers[SESSION_ID_HEADER]
        session = {**headers, SESSION_ID_HEADER: ours, "MCP-Protocol-Version": "2025-06-18"}
        assert rpc(url, session, {"jsonrpc": "2.0", "method": "notifications/initialized"})[0].status_code == 202
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "headers", "arguments": {}}}
        resp, answer = rpc(url, session, call)
        seen = answer["result"]["structuredContent"]
        assert seen["mcp-session-id"] and seen["mcp-session-id"] != ours  # the instance knows only its own id
        assert "authorization" not in seen and seen["host"].startswith("127.0.0.1:")
        assert httpx.delete(url, headers=session, timeout=30).status_code in (200, 204)
        ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
        assert rpc(url, session, ping)[0].status_code == 404  # ended on both sides
