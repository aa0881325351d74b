"""Routing through the whole bridge in-process (tests/inprocess/) to real MCP servers (the official SDK's, in the
same process), with the official MCP SDK client."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bridge.mcp.protocol import (
    INSTANCE_KEY_HEADER,
    PROBE_PROTOCOL_VERSION,
    PROTOCOL_VERSION_HEADER,
    initialize_request,
)
from bridge.proxy.proxy import MAX_STREAMS_PER_CLIENT
from tests.helpers import mcp_client
from tests.inprocess import InProcessBridge, inprocess_bridge, serving_inprocess

ACCEPT = "application/json, text/event-stream"
INIT = initialize_request("t")
pytestmark = pytest.mark.inprocess


@pytest.fixture(scope="module")
def tenants(bridge: InProcessBridge, workspace) -> dict[str, dict]:
    """Three clients registered concurrently over the admin API."""

    async def register_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=bridge.url, headers={"Authorization": f"Bearer {bridge.admin_token}"}, timeout=60
        ) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/api/v1/clients",
                        params={"wait": 30},
                        json={"client_id": name, "workspace": str(workspace), "services": ["echo"]},
                    )
                    for name in ("alice", "bob", "carol")
                )
            )

    responses = asyncio.run(register_all())
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    return {r.json()["client_id"]: r.json() for r in responses}


def test_concurrent_registrations_get_distinct_ports(tenants, bridge: InProcessBridge) -> None:
    ports = [t["instances"][0]["port"] for t in tenants.values()]
    assert len(set(ports)) == 3
    assert all(p in bridge.pool for p in ports)
    assert all(t["instances"][0]["state"] == "running" for t in tenants.values())
    leases = bridge.api("GET", "/ports").json()
    assert sorted(lease["port"] for lease in leases) == sorted(ports)


async def test_each_client_reaches_only_its_own_instance(tenants, bridge: InProcessBridge) -> None:
    for name, created in tenants.items():
        async with mcp_client(bridge.mcp_url(name, "echo"), created["token"]) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"whoami", "echo", "count"} <= tools
            who = (await client.call_tool("whoami", {})).structured_content
            assert who["client"] == name
            assert who["service"] == "echo"
            assert who["leaked_admin_token"] == ""


async def test_tokens_are_not_interchangeable(tenants, bridge: InProcessBridge) -> None:
    url = bridge.mcp_url("alice", "echo")
    async with httpx.AsyncClient(timeout=10) as http:
        cases = {
            "none": (None, 401),
            "garbage": ("Bearer not-a-token", 401),
            "bob's": (f"Bearer {tenants['bob']['token']}", 403),
        }
        for label, (auth, status) in cases.items():
            headers = {"Accept": ACCEPT} | ({"Authorization": auth} if auth else {})
            resp = await http.post(url, json=INIT, headers=headers)
            assert resp.status_code == status, label
            assert resp.json()["error"]["code"] in ("unauthorized", "forbidden")
            assert "resource_metadata" not in resp.headers.get("WWW-Authenticate", "")
        own = {"Authorization": f"Bearer {tenants['alice']['token']}", "Accept": ACCEPT}
        unknown_client = await http.post(bridge.mcp_url("nobody", "echo"), json=INIT, headers=own)
        unknown_service = await http.post(bridge.mcp_url("alice", "nothing"), json=INIT, headers=own)
        assert unknown_client.status_code == unknown_service.status_code == 404
        assert unknown_service.json()["error"]["code"] == "not_found"
        for path in (
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resource/c/alice/echo/mcp",
            "/.well-known/openid-configuration",
            "/register",
            "/authorize",
            "/token",
        ):
            resp = await http.get(bridge.url + path)
            assert resp.status_code == 404, path
            assert resp.json()["error"]["code"] == "not_found"


async def test_progress_events_stream_while_the_tool_runs(tenants, bridge: InProcessBridge) -> None:
    arrivals: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrivals.append(time.time())

    async with mcp_client(bridge.mcp_url("alice", "echo"), tenants["alice"]["token"]) as client:
        result = await client.call_tool("count", {"steps": 4, "delay": 0.4}, progress_callback=on_progress)
    ended = result.structured_content["ended"]
    assert len(arrivals) == 4
    # Relayed as they happen: the first step reached us long before the tool finished (1.6 s of work).
    assert arrivals[0] < ended - 1.0
    assert arrivals == sorted(arrivals)


async def test_headers_pass_and_credentials_do_not(tenants, bridge: InProcessBridge) -> None:
    async with mcp_client(bridge.mcp_url("carol", "echo"), tenants["carol"]["token"]) as client:
        seen = (await client.call_tool("headers", {})).structured_content
    port = tenants["carol"]["instances"][0]["port"]
    assert "authorization" not in seen
    assert seen["host"] == f"127.0.0.1:{port}"
    assert "mcp-protocol-version" in seen or "mcp-session-id" in seen or "mcp-method" in seen


async def test_get_stream_and_delete_pass_through(tenants, bridge: InProcessBridge) -> None:
    url = bridge.mcp_url("bob", "echo")
    auth = {"Authorization": f"Bearer {tenants['bob']['token']}", "Accept": ACCEPT}
    async with httpx.AsyncClient(timeout=10) as http:
        init = await http.post(url, json=INIT, headers=auth)
        assert init.status_code == 200
        session = init.headers["Mcp-Session-Id"]
        ready = {**auth, "Mcp-Session-Id": session, PROTOCOL_VERSION_HEADER: PROBE_PROTOCOL_VERSION}
        note = await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=ready)
        assert note.status_code == 202
        async with http.stream("GET", url, headers={**ready, "Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["x-accel-buffering"] == "no"
        deleted = await http.delete(url, headers=ready)
        assert deleted.status_code in (200, 204)
        after = await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=ready)
        assert after.status_code == 404  # the instance ended the session, so DELETE reached it


async def test_legacy_sse_endpoint_is_rewritten(bridge: InProcessBridge, workspace) -> None:
    from mcp.client.sse import sse_client

    created = bridge.register("legacy-user", workspace, ["legacy"])
    assert created["instances"][0]["state"] == "running", created
    url = f"{bridge.url}/c/legacy-user/legacy/sse"
    headers = {"Authorization": f"Bearer {created['token']}"}
    async with httpx.AsyncClient(timeout=10) as http, http.stream("GET", url, headers=headers) as stream:
        first = ""
        async for line in stream.aiter_lines():
            first += line + "\n"
            if line.startswith("data:"):
                break
    assert "event: endpoint" in first
    assert "data: /c/legacy-user/legacy/messages/?session_id=" in first
    from mcp import Client

    async with Client(sse_client(url, headers=headers)) as client:
        who = (await client.call_tool("whoami", {})).structured_content
    assert who["client"] == "legacy-user"
    assert bridge.api("DELETE", "/clients/legacy-user").status_code == 204


async def test_header_bytes_reach_the_instance_as_the_client_sent_them(tenants, bridge: InProcessBridge) -> None:
    """The proxy writes upstream requests itself (bridge/proxy/upstream.py): a non-ASCII header value must arrive
    byte for byte, not re-encoded."""
    note = "Zoë ✓".encode()
    headers = {"Authorization": f"Bearer {tenants['carol']['token']}", "X-Note": note}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(bridge.mcp_url("carol", "echo"), http_client=http)) as client,
    ):
        seen = (await client.call_tool("headers", {})).structured_content
    assert seen["x-note"] == note.decode("latin-1")  # the instance's server reads header bytes as latin-1


def test_a_header_smuggled_behind_a_bare_cr_is_refused(tenants, bridge: InProcessBridge) -> None:
    """A second header hidden behind a lone CR (to forge the instance key, say) never reaches an instance:
    the request is refused whole with 400."""
    host = bridge.url.removeprefix("http://")
    request = (
        f"POST /c/carol/echo/mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tenants['carol']['token']}\r\n"
        f"X-Note: a\r{INSTANCE_KEY_HEADER}: forged\r\nContent-Type: application/json\r\nAccept: {ACCEPT}\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    ).encode()
    with socket.create_connection(("127.0.0.1", int(host.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(request)
        answer = sock.recv(65536)
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]  # aiohttp answers a malformed request in HTTP/1.0


async def test_streams_opened_at_once_stop_at_the_per_client_cap(bridge: InProcessBridge, workspace) -> None:
    """A tenant that opens many GET streams at the same moment (so that none is counted yet when the others
    are checked) still holds no more than MAX_STREAMS_PER_CLIENT; the rest get 429, and after closing them
    a new stream opens again."""
    token = bridge.register("streamer", workspace, ["echo"])["token"]
    url = bridge.mcp_url("streamer", "echo")
    auth = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    extra = 6
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=None)) as http:

        async def session() -> dict[str, str]:  # the SDK's server allows one GET stream per session
            init = await http.post(url, json=INIT, headers=auth)
            assert init.status_code == 200, init.text
            ready = {**auth, "Mcp-Session-Id": init.headers["Mcp-Session-Id"],
                     PROTOCOL_VERSION_HEADER: PROBE_PROTOCOL_VERSION}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post(url, json=note, headers=ready)).status_code == 202
            return {**ready, "Accept": "text/event-stream"}

        sessions = [await session() for _ in range(MAX_STREAMS_PER_CLIENT + extra)]
        # Every connection made first, then every request written in one go: the bridge reads them all
        # before any instance has answered one.
        host = bridge.url.removeprefix("http://")
        conns = [await asyncio.open_connection("127.0.0.1", bridge.port) for _ in sessions]
        try:
            for (_, writer), headers in zip(conns, sessions, strict=True):
                lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(f"GET /c/streamer/echo/mcp HTTP/1.1\r\nHost: {host}\r\n{lines}\r\n".encode())
            status = [int((await reader.readline()).split()[1]) for reader, _ in conns]
            assert status.count(200) == MAX_STREAMS_PER_CLIENT and status.count(429) == extra, sorted(status)
        finally:
            for _, writer in conns:
                writer.close()
        for _ in range(50):  # the bridge notices the closed connections
            again = await http.send(http.build_request("GET", url, headers=sessions[-1]), stream=True)
            await again.aclose()
            if again.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 200


async def test_the_bridge_own_origins_pass_foreign_ones_do_not(tmp_path, workspace) -> None:
    """A page served from the bridge's own address (its scheme, a loopback name, its port) may call the MCP
    route; any other origin is refused 403 unless PARADISE_ALLOWED_ORIGINS names it."""
    extra = "http://app.example:3000"
    with serving_inprocess(inprocess_bridge(tmp_path, PARADISE_ALLOWED_ORIGINS=extra)) as bridge:
        token = bridge.register("olga", workspace, ["echo"])["token"]
        port = bridge.port
        own = [f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}", extra]
        foreign = ["http://evil.example", f"http://evil.example:{port}", f"http://127.0.0.1:{port + 1}",
                   f"https://127.0.0.1:{port}", "null"]
        auth = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
        async with httpx.AsyncClient(timeout=30) as http:
            for origin in own + foreign:
                host = origin.removeprefix("http://") if origin in own[:3] else f"127.0.0.1:{port}"
                headers = {**auth, "Origin": origin, "Host": host}
                resp = await http.post(bridge.mcp_url("olga", "echo"), json=INIT, headers=headers)
                if origin in own:
                    assert resp.status_code == 200, (origin, resp.text)
                else:
                    assert resp.status_code == 403, origin
                    assert resp.json()["error"]["code"] == "forbidden"


def test_expect_100_continue_gets_the_final_answer(tenants, bridge: InProcessBridge) -> None:
    """``Expect: 100-continue`` on an MCP POST: the client gets one interim 100 (the bridge's own), then the
    instance's final answer — never the instance's interim 100 as if it were the answer."""
    host = bridge.url.removeprefix("http://")
    body = json.dumps(INIT).encode()
    head = (
        f"POST /c/alice/echo/mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tenants['alice']['token']}\r\n"
        f"Content-Type: application/json\r\nAccept: {ACCEPT}\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=30) as sock:
        sock.sendall(head)
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100"), interim[:200]
        sock.sendall(body)
        answer = interim.split(b"\r\n\r\n", 1)[1]
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split(b" ")[1] == b"200", answer[:300]
    message = rest.split(b"\r\n\r\n", 1)[1]
    assert b'"protocolVersion"' in message and b'"id":1' in message.replace(b" ", b""), message[:300]


async def test_json_nested_past_the_limit_is_a_400_before_any_instance_sees_it(
    tenants, bridge: InProcessBridge
) -> None:
    """``[`` x 100,000 (or a message nesting deeper than MAX_JSON_DEPTH) is refused with a JSON 400; the
    instance is never asked to parse it, and a message at the limit still passes."""
    from bridge.jsonlimits import MAX_JSON_DEPTH

    auth = {"Authorization": f"Bearer {tenants['alice']['token']}", "Accept": ACCEPT,
            "Content-Type": "application/json"}
    url = bridge.mcp_url("alice", "echo")
    nested = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    deep = json.dumps(nested).replace('"x"', "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    async with httpx.AsyncClient(timeout=30) as http:
        for body in (b"[" * 100_000, deep.encode()):
            resp = await http.post(url, content=body, headers=auth)
            assert resp.status_code == 400, resp.text[:200]
            assert resp.json()["error"]["code"] == "json_too_deep"
        fine = await http.post(url, json=INIT, headers=auth)
        assert fine.status_code == 200
