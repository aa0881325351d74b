"""The one MCP client against real servers of the official SDK: probes, pings, tool calls, check, errors."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import mcp_types.version as sdk_versions
import pytest
from aiohttp import web

from bridge.mcp import protocol
from bridge.mcp.client import (
    McpPinger,
    McpSession,
    McpStatusError,
    McpToolError,
    ProbeFailed,
    check_server,
    instance_headers,
    instance_url,
    mcp_call_tool,
    post_message,
    probe,
)
from tests.unit.mcp.conftest import Recorder, closed_port

ROOT = Path(__file__).resolve().parents[3]
Http = tuple[aiohttp.ClientSession, Recorder]
KEY = "k" * 43  # as long as the bridge's own keys


def test_protocol_revisions_are_the_sdks() -> None:
    assert protocol.KNOWN_PROTOCOL_VERSIONS == sdk_versions.KNOWN_PROTOCOL_VERSIONS
    assert protocol.KNOWN_PROTOCOL_VERSIONS[-1] == "2026-07-28"
    assert set(protocol.SESSION_PROTOCOL_VERSIONS) <= set(sdk_versions.HANDSHAKE_PROTOCOL_VERSIONS)
    assert protocol.PROBE_PROTOCOL_VERSION in sdk_versions.HANDSHAKE_PROTOCOL_VERSIONS


# ---- probe (readiness, reconcile) ---------------------------------------------------------------------------


@pytest.mark.parametrize("json_response", [False, True], ids=["sse-answers", "json-answers"])
async def test_probe_initializes_and_closes_the_session(sdk_server, http: Http, json_response: bool) -> None:
    served = sdk_server(json_response=json_response)
    session, seen = http
    seconds = await probe(session, served.port, served.path, "streamable", timeout=5)
    assert 0 < seconds < 5
    assert seen.methods == ["POST", "DELETE"]  # initialize, then the session is closed again


async def test_probe_of_a_stateless_server_leaves_nothing_to_close(sdk_server, http: Http) -> None:
    served = sdk_server(stateless=True, json_response=True)
    session, seen = http
    await probe(session, served.port, served.path, "streamable", timeout=5)
    assert seen.methods == ["POST"]


async def test_probe_of_an_old_http_sse_server_waits_for_its_endpoint_event(sdk_server, http: Http) -> None:
    served = sdk_server(kind="sse")
    session, _ = http
    assert 0 < await probe(session, served.port, served.path, "sse", timeout=5) < 5
    assert await McpPinger(session).ping(served.port, served.path, "sse", timeout=5) > 0


async def test_http_errors_are_typed_with_their_status(sdk_server, http: Http) -> None:
    served = sdk_server()
    session, _ = http
    with pytest.raises(McpStatusError) as missing:
        await probe(session, served.port, "/not-mcp", "streamable", timeout=5)
    assert missing.value.status == 404 and str(missing.value).startswith("initialize answered HTTP 404")
    # The SDK refuses a Host that is not the server's own (DNS rebinding protection): 421.
    with pytest.raises(McpStatusError) as rebound:
        await post_message(
            session, instance_url(served.port, served.path), {"Host": "evil.example"}, protocol.initialize_request()
        )
    assert rebound.value.status == 421
    assert isinstance(rebound.value, ProbeFailed)  # callers that only know ProbeFailed still catch it
    with pytest.raises(McpStatusError) as old:
        await probe(session, served.port, served.path, "sse", timeout=5)  # GET without a session: refused
    assert old.value.status in (400, 405, 406)


async def test_refused_and_hung_instances_fail_within_the_timeout(http: Http, hung_port: int) -> None:
    session, _ = http
    with pytest.raises(ProbeFailed, match="initialize failed: ClientConnectorError") as exc:
        await probe(session, closed_port(), "/mcp", "streamable", timeout=5)
    assert not isinstance(exc.value, McpStatusError)
    with pytest.raises(ProbeFailed, match="TimeoutError"):
        await probe(session, hung_port, "/mcp", "streamable", timeout=0.3)
    with pytest.raises(ProbeFailed, match="TimeoutError"):
        await McpPinger(session).ping(hung_port, "/mcp", "streamable", timeout=0.3)


# ---- the health monitor's pinger -------------------------------------------------------------------------


async def test_pinger_keeps_one_session_and_reinitializes_when_the_server_forgot_it(sdk_server, http: Http) -> None:
    served = sdk_server()
    session, seen = http
    pinger = McpPinger(session)
    await pinger.ping(served.port, served.path, "streamable", timeout=5)
    assert seen.count("POST") == 3  # initialize, initialized, ping
    first = pinger.session.session_id
    await pinger.ping(served.port, served.path, "streamable", timeout=5)
    assert seen.count("POST") == 4 and pinger.session.session_id == first  # the same session, one ping
    # The server ends the session (as after its restart): the next ping gets 404 and starts a new one.
    headers = {**instance_headers(served.port), protocol.SESSION_ID_HEADER: first}
    async with session.delete(instance_url(served.port, served.path), headers=headers) as gone:
        assert gone.status == 200
    await pinger.ping(served.port, served.path, "streamable", timeout=5)
    assert seen.count("POST") == 4 + 1 + 3  # the refused ping, then initialize, initialized, ping
    assert pinger.session.session_id not in (None, first)


async def test_pinger_follows_an_instance_that_moved_port(sdk_server, http: Http) -> None:
    old, new = sdk_server(), sdk_server(json_response=True)
    session, _ = http
    pinger = McpPinger(session)
    await pinger.ping(old.port, old.path, "streamable", timeout=5)
    await pinger.ping(new.port, new.path, "streamable", timeout=5)
    assert pinger.session.url == instance_url(new.port, new.path)


# ---- a whole exchange: the ready tool, the benchmarks ------------------------------------------------------


async def test_call_tool_returns_the_text_and_closes_the_session(sdk_server, http: Http) -> None:
    served = sdk_server()
    session, seen = http
    text = await mcp_call_tool(session, served.port, served.path, "echo", {"text": "hello"}, timeout=10)
    assert text == "hello"
    assert seen.methods == ["POST", "POST", "POST", "DELETE"]


async def test_tool_failures_are_the_servers_own_words(sdk_server, http: Http) -> None:
    served = sdk_server()
    session, _ = http
    with pytest.raises(McpToolError, match="nope"):
        await mcp_call_tool(session, served.port, served.path, "nope", {}, timeout=10)
    with pytest.raises(McpToolError, match="text"):  # a required argument is missing
        await mcp_call_tool(session, served.port, served.path, "echo", {}, timeout=10)


async def test_an_sse_answer_is_found_after_the_progress_notifications(sdk_server, http: Http) -> None:
    served = sdk_server()
    session, _ = http
    mcp = McpSession(session, instance_url(served.port, served.path), instance_headers(served.port))
    await mcp.open()
    try:
        params = {"name": "count", "arguments": {"steps": 3, "delay": 0.01}, "_meta": {"progressToken": "p"}}
        result = await mcp.request("tools/call", params)
        assert result["structuredContent"]["steps"] == 3
        stream = await mcp.stream()  # the session's GET stream opens too
        stream.close()
    finally:
        await mcp.close()
    assert mcp.session_id is None


# ---- check: the SDK's own client -----------------------------------------------------------------------------


async def test_check_server_lists_the_tools_with_the_sdk_client(sdk_server) -> None:
    served = sdk_server()
    result = await check_server(instance_url(served.port, served.path), {}, timeout=10)
    from tests.fixtures.mcp_server import build_server

    tools = len(await build_server().list_tools())
    assert result.server.startswith("paradise-test") and result.tools == tools


# ---- the container health check: standard library only --------------------------------------------------


def test_container_healthcheck_needs_nothing_but_the_standard_library(sdk_server, tmp_path: Path) -> None:
    served = sdk_server()
    for name in ("__init__.py", "mcp/__init__.py", "mcp/protocol.py", "mcp/healthcheck.py"):
        (tmp_path / "bridge" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "bridge" / name, tmp_path / "bridge" / name)

    def check(*args: str, key: str | None = None) -> int:
        # -S: no site-packages, so an import of aiohttp, mcp or anything installed would fail here.
        command = [sys.executable, "-S", "-m", "bridge.mcp.healthcheck", *args]
        env = {"PATH": os.environ.get("PATH", ""), **({protocol.INSTANCE_KEY_ENV: key} if key else {})}
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=30).returncode

    assert check("--port", str(served.port), "--path", served.path) == 0
    assert check("--port", str(served.port), "--path", "/elsewhere") == 1
    assert check("--port", str(closed_port())) == 1
    assert check("--port", str(served.port), "--path", "@evil.example/mcp") == 2  # refused by the parser
    # A built-in instance answers only with its launch's key, which the check finds in the container's env.
    keyed = sdk_server(key=KEY)
    assert check("--port", str(keyed.port), key=KEY) == 0
    assert check("--port", str(keyed.port)) == 1
    assert check("--port", str(keyed.port), key="x" * len(KEY)) == 1



async def test_sse_answers_are_read_to_the_end_so_the_connection_is_kept(sdk_server, http: Http) -> None:
    served = sdk_server()  # answers on an SSE stream that it closes after the answer
    session, seen = http
    for _ in range(3):
        await probe(session, served.port, served.path, "streamable", timeout=5)
    assert seen.connections == 1  # six requests (initialize, DELETE) x 3 on one kept-alive connection


# ---- instances that misbehave (an instance is not the bridge's to trust) --------------------------------


@pytest.fixture
async def odd_server():
    """A real HTTP server whose /mcp answers the way ``mode`` says a broken or hostile instance would."""
    async def answer(request: web.Request) -> web.StreamResponse:
        mode = request.query.get("mode", "")
        if mode == "batch":
            return web.json_response([{"jsonrpc": "2.0", "id": 1, "result": {}}])
        if mode == "huge":
            return web.Response(body=b" " * (5 * 2**20), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if mode == "open-after-answer":  # the answer, then the stream stays open (servers SHOULD close it)
            await resp.write(b'data: {"jsonrpc": "2.0", "id": 1, "result": {}}\n\n')
        await asyncio.sleep(5)  # "silent": the stream opens and no answer comes (before the test gives up)
        return resp

    app = web.Application()
    app.router.add_post("/mcp", answer)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_answers_of_a_misbehaving_instance_fail_cleanly(odd_server: int, http: Http) -> None:
    session, _ = http
    with pytest.raises(ProbeFailed, match="not a JSON-RPC response"):
        await probe(session, odd_server, "/mcp?mode=batch", "streamable", timeout=5)
    with pytest.raises(ProbeFailed, match="more than"):
        await probe(session, odd_server, "/mcp?mode=huge", "streamable", timeout=5)
    with pytest.raises(ProbeFailed, match="TimeoutError"):
        await probe(session, odd_server, "/mcp?mode=silent", "streamable", timeout=0.5)
    # An answer whose stream stays open still counts; the rest of the stream is waited for a bounded while.
    seconds = await probe(session, odd_server, "/mcp?mode=open-after-answer", "streamable", timeout=5)
    assert seconds < 3


async def test_a_guarded_instance_answers_only_with_its_launch_key(sdk_server, http: Http) -> None:
    served = sdk_server(key=KEY)
    session, _ = http
    assert await probe(session, served.port, served.path, "streamable", timeout=5, key=KEY) > 0
    assert await McpPinger(session).ping(served.port, served.path, "streamable", timeout=5, key=KEY) > 0
    for key, status in ((None, 401), ("w" * len(KEY), 403)):
        with pytest.raises(McpStatusError) as refused:
            await probe(session, served.port, served.path, "streamable", timeout=5, key=key)
        assert refused.value.status == status
