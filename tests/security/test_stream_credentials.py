"""Credentials end sessions (issue 22.5): rotating a client's token, or deleting the client, ends its open
streams at once — the holder of the old token hears no further event — and its MCP sessions with them.
The whole bridge in-process (tests/inprocess/), real SDK server instances (Streamable HTTP and the old HTTP+SSE
transport)."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest

from bridge.mcp.protocol import PROBE_PROTOCOL_VERSION, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER, initialize_request
from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess
ACCEPT = "application/json, text/event-stream"
ENDS_WITHIN = 15.0  # a bound for the wait, not a timing claim: the stream ends when the rotation returns


async def open_session(http: httpx.AsyncClient, url: str, token: str) -> dict[str, str]:
    """initialize + initialized by hand; the headers of the session."""
    auth = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    init = await http.post(url, json=initialize_request("t"), headers=auth)
    assert init.status_code == 200, init.text
    session = {**auth, SESSION_ID_HEADER: init.headers[SESSION_ID_HEADER],
               PROTOCOL_VERSION_HEADER: PROBE_PROTOCOL_VERSION}
    note = await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    assert note.status_code == 202
    return session


async def tool(http: httpx.AsyncClient, url: str, headers: dict[str, str], name: str) -> dict:
    """A tool's structured result, from a JSON answer or the SSE event that carries it."""
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": name, "arguments": {}}}
    resp = await http.post(url, json=call, headers=headers)
    assert resp.status_code == 200, resp.text
    lines = [line[5:] for line in resp.text.splitlines() if line.startswith("data:") and '"result"' in line]
    return json.loads(lines[0] if lines else resp.text)["result"]["structuredContent"]


async def open_stream(http: httpx.AsyncClient, url: str, headers: dict[str, str], *, first_line: bool) -> asyncio.Task:
    """A GET stream, open (its status read; for the old transport also its first event); a task that
    reads it to its end."""
    response = await http.send(http.build_request("GET", url, headers=headers), stream=True)
    assert response.status_code == 200, response.status_code
    lines = response.aiter_lines()
    if first_line:
        assert (await anext(lines)).startswith("event: endpoint")

    async def drain() -> None:
        with contextlib.suppress(httpx.TransportError):
            async for _ in lines:
                pass
        await response.aclose()

    return asyncio.create_task(drain())


async def test_rotating_the_token_ends_open_streams_and_sessions(bridge: InProcessBridge, workspace) -> None:
    token = bridge.register("rita", workspace, ["echo", "legacy"])["token"]
    url = bridge.mcp_url("rita", "echo")
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url, token)
        upstream_id = (await tool(http, url, session, "headers"))["mcp-session-id"]  # the instance's own id
        streamable = await open_stream(http, url, {**session, "Accept": "text/event-stream"}, first_line=False)
        legacy_url = f"{bridge.url}/c/rita/legacy/sse"
        legacy = await open_stream(http, legacy_url, {"Authorization": f"Bearer {token}"}, first_line=True)
        assert not streamable.done() and not legacy.done()

        rotated = await asyncio.to_thread(bridge.api, "POST", "/clients/rita/token")
        assert rotated.status_code == 200, rotated.text
        # Both streams end: without the rotation hook they stay open and this wait times out.
        await asyncio.wait_for(asyncio.gather(streamable, legacy), ENDS_WITHIN)

        new = {"Authorization": f"Bearer {rotated.json()['token']}", "Accept": ACCEPT}
        ping = {"jsonrpc": "2.0", "id": 9, "method": "ping"}
        assert (await http.post(url, json=ping, headers=session)).status_code == 401  # the old token
        # The session ended with the credential: the new token cannot carry it on (the client starts anew).
        same_session = {**session, **new}
        assert (await http.post(url, json=ping, headers=same_session)).status_code == 404
        fresh = await open_session(http, url, rotated.json()["token"])
        for _ in range(100):  # the instance is told to end it too (in the background): bounded wait
            if upstream_id not in (await tool(http, url, fresh, "open_sessions"))["sessions"]:
                break
            await asyncio.sleep(0.05)
        assert upstream_id not in (await tool(http, url, fresh, "open_sessions"))["sessions"]
        stream = await open_stream(http, url, {**fresh, "Accept": "text/event-stream"}, first_line=False)
        assert not stream.done()  # the new token streams as before
        stream.cancel()


async def test_deleting_the_client_ends_its_open_streams(bridge: InProcessBridge, workspace) -> None:
    token = bridge.register("dora", workspace, ["echo"])["token"]
    url = bridge.mcp_url("dora", "echo")
    async with httpx.AsyncClient(timeout=30) as http:
        session = await open_session(http, url, token)
        stream = await open_stream(http, url, {**session, "Accept": "text/event-stream"}, first_line=False)
        deleted = await asyncio.to_thread(bridge.api, "DELETE", "/clients/dora")
        assert deleted.status_code == 204
        await asyncio.wait_for(stream, ENDS_WITHIN)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert (await http.post(url, json=ping, headers=session)).status_code == 401
