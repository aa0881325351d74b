"""The bridge's one MCP client: health probes, readiness, the ready tool, ``check`` and the benchmarks.

Two layers, on purpose:

* ``McpSession`` speaks Streamable HTTP by hand over the bridge's shared aiohttp session. It runs on the hot
  path (a readiness poll every 50-100 ms while an instance starts, a ``ping`` per instance per probe
  interval), where the SDK's session (its own httpx2 client, task group and version negotiation per
  connection) would cost many times more, and it reports HTTP statuses as ``McpStatusError``.
* ``check_server`` uses the official SDK's ``Client``: the ``check`` command must see the bridge exactly as
  Claude Code does (version negotiation, SSE answers, server requests), and it runs once per server.

Protocol revisions and header names live in ``bridge.mcp.protocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from bridge.mcp.protocol import (
    ACCEPT_BOTH,
    ACCEPT_STREAM,
    INITIALIZED_NOTIFICATION,
    INSTANCE_KEY_HEADER,
    PROBE_CLIENT_NAME,
    PROBE_PROTOCOL_VERSION,
    PROTOCOL_VERSION_HEADER,
    SESSION_ID_HEADER,
    initialize_request,
)

# Kept under this name for the modules that import it from here.
PROBE_PROTOCOL = PROBE_PROTOCOL_VERSION
# A server that lost our session answers 404 (the specification) or 400 (servers that check the id first).
SESSION_GONE = frozenset({400, 404})
DRAIN_SECONDS = 1.0  # how long the rest of an SSE answer is read before the connection is dropped
MAX_JSON_ANSWER = 4 * 2**20  # an SSE answer is bounded by aiohttp's line limit instead


class ProbeFailed(Exception):
    """The instance did not answer like an MCP server: refused, timed out, or answered with an HTTP error."""


class McpStatusError(ProbeFailed):
    """The instance answered an MCP request with an HTTP error status."""

    def __init__(self, status: int, message: str, *, request: str = "request") -> None:
        super().__init__(f"{request} answered HTTP {status}: {message}")
        self.status = status
        self.message = message


class McpToolError(Exception):
    """The instance answered, but the request failed; the message is the instance's own words."""


def instance_url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def instance_headers(port: int, key: str | None = None) -> dict[str, str]:
    """What every request to an instance carries: its own Host (the Python MCP SDK answers 421 to any Host but
    127.0.0.1:<port> / localhost:<port>) and the launch's instance key (built-in instances refuse without)."""
    headers = {"Host": f"127.0.0.1:{port}"}
    if key:
        headers[INSTANCE_KEY_HEADER] = key
    return headers


# ---- one JSON-RPC message over Streamable HTTP -------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    session_id: str | None
    message: dict[str, Any] | None  # None for a notification's 202


async def post_message(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], message: dict[str, Any]
) -> Answer:
    """POST one JSON-RPC message; the answer to it, from a JSON body or the SSE stream; raise McpStatusError."""
    sent = {**headers, "Content-Type": "application/json", "Accept": ACCEPT_BOTH}
    async with http.post(url, data=json.dumps(message), headers=sent) as resp:
        session_id = resp.headers.get(SESSION_ID_HEADER)
        if resp.status == 202:
            return Answer(202, session_id, None)
        method = str(message.get("method", "request"))
        if resp.status != 200:
            body = (await resp.content.read(200)).decode("utf-8", "replace")
            raise McpStatusError(resp.status, repr(body), request=method)
        if resp.content_type != "text/event-stream":
            answer = json.loads(await _read_bounded(resp, method))
            if not isinstance(answer, dict):
                raise ProbeFailed(f"{method} answered {type(answer).__name__}, not a JSON-RPC response")
            return Answer(200, session_id, answer)
        async for event in sse_events(resp):
            answer = json.loads(event["data"]) if event.get("data") else None
            # Skip progress notifications and the server's own requests: the answer carries our id.
            if isinstance(answer, dict) and answer.get("id") == message.get("id") and "method" not in answer:
                await _drain(resp)
                return Answer(200, session_id, answer)
    raise ProbeFailed("the stream ended without an answer")


async def _read_bounded(resp: aiohttp.ClientResponse, method: str) -> bytes:
    """The whole body, at most MAX_JSON_ANSWER bytes: the instance is not ours to trust."""
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_JSON_ANSWER:
            raise ProbeFailed(f"{method} answered more than {MAX_JSON_ANSWER} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read the stream to its end (the server closes it after the answer): the connection is then reused,
    and the server (or the bridge in between) never writes to a connection we dropped. Bounded, because a
    server may keep the stream open; then it is closed instead."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in resp.content:
                pass


async def sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """The events of an SSE body as ``{"event": ..., "data": ...}``; multi-line data joined as the spec says."""
    event: dict[str, str] = {}
    async for raw in resp.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if event:
                yield event
            event = {}
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            event["data"] = f"{event['data']}\n{value}" if "data" in event else value
        elif field in ("event", "id"):
            event[field] = value
    if event:
        yield event


# ---- a session -------------------------------------------------------------------------------------------


class McpSession:
    """One MCP session over Streamable HTTP: initialize, requests, notifications, a GET stream, DELETE."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        client_name: str = PROBE_CLIENT_NAME,
    ) -> None:
        self.http, self.url, self.client_name = http, url, client_name
        self.base_headers = dict(headers or {})
        self.session_id: str | None = None
        self.initialized = False
        self._next_id = 1

    @property
    def headers(self) -> dict[str, str]:
        """What every request of this session carries: the caller's headers, the session id, the version."""
        headers = dict(self.base_headers)
        if self.initialized:
            headers[PROTOCOL_VERSION_HEADER] = PROBE_PROTOCOL_VERSION
        if self.session_id:
            headers[SESSION_ID_HEADER] = self.session_id
        return headers

    async def initialize(self) -> dict[str, Any]:
        """The initialize request alone (its answer is what a held request waits for); its result."""
        self.session_id, self.initialized = None, False
        answer = await post_message(self.http, self.url, self.headers, initialize_request(self.client_name))
        result = _result(answer, "initialize")
        self.session_id, self.initialized = answer.session_id, True
        return result

    async def open(self) -> dict[str, Any]:
        """initialize + notifications/initialized: a session ready for requests; the initialize result."""
        result = await self.initialize()
        await self.notify(INITIALIZED_NOTIFICATION["method"])
        return result

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A request on this session; its result. McpToolError when the server answers with an error."""
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        return _result(await post_message(self.http, self.url, self.headers, message), method)

    async def notify(self, method: str) -> None:
        await post_message(self.http, self.url, self.headers, {"jsonrpc": "2.0", "method": method})

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """The tool's text; McpToolError when the call or the tool fails."""
        result = await self.request("tools/call", {"name": name, "arguments": arguments})
        text = " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
        if result.get("isError"):
            raise McpToolError(text or "the tool reported an error")
        return text

    async def stream(self) -> aiohttp.ClientResponse:
        """The session's GET stream (server-to-client messages), open; the caller closes it."""
        resp = await self.http.get(self.url, headers={**self.headers, "Accept": ACCEPT_STREAM})
        if resp.status != 200 or resp.content_type != "text/event-stream":
            resp.close()
            raise McpStatusError(resp.status, resp.content_type, request="GET stream")
        return resp

    async def close(self, *, timeout: float = 5.0) -> None:
        """DELETE the session, so that no probe or benchmark leaves one behind; errors do not matter here."""
        if not self.session_id:
            return
        session_id, self.session_id, self.initialized = self.session_id, None, False
        headers = {**self.base_headers, SESSION_ID_HEADER: session_id}
        try:
            async with asyncio.timeout(timeout), self.http.delete(self.url, headers=headers):
                pass
        except (aiohttp.ClientError, TimeoutError):
            pass


def _result(answer: Answer, method: str) -> dict[str, Any]:
    message = answer.message or {}
    if "error" in message:
        error = message["error"]
        raise McpToolError(str(error.get("message", error) if isinstance(error, dict) else error))
    if not isinstance(message.get("result"), dict):
        raise ProbeFailed(f"{method} got no result: {str(message)[:200]!r}")
    return message["result"]


def _failure(what: str, exc: BaseException) -> ProbeFailed:
    return ProbeFailed(f"{what}: {exc.__class__.__name__}: {exc}")


# ---- what the lifecycle calls ------------------------------------------------------------------------------


async def mcp_initialize(
    http: aiohttp.ClientSession, port: int, path: str, *, timeout: float = 5.0, key: str | None = None
) -> float:
    """An MCP initialize against 127.0.0.1:port/path (session closed again); seconds it took; ProbeFailed."""
    session = McpSession(http, instance_url(port, path), instance_headers(port, key))
    began = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            answer = await post_message(http, session.url, session.headers, initialize_request())
            session.session_id = answer.session_id
            _result(answer, "initialize")
    except (aiohttp.ClientError, TimeoutError, ValueError, McpToolError) as exc:
        raise _failure("initialize failed", exc) from None
    finally:
        await session.close()
    return time.perf_counter() - began


async def sse_endpoint(
    http: aiohttp.ClientSession, port: int, path: str, *, timeout: float = 5.0, key: str | None = None
) -> float:
    """Old HTTP+SSE servers: GET the stream and wait for its ``endpoint`` event; raise ProbeFailed."""
    began = time.perf_counter()
    headers = {**instance_headers(port, key), "Accept": ACCEPT_STREAM}
    try:
        async with asyncio.timeout(timeout), http.get(instance_url(port, path), headers=headers) as resp:
            if resp.status != 200:
                raise McpStatusError(resp.status, "the SSE stream was refused", request="GET")
            async for event in sse_events(resp):
                if event.get("event") == "endpoint":
                    return time.perf_counter() - began
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _failure("SSE stream failed", exc) from None
    raise ProbeFailed("SSE stream ended without an endpoint event")


async def probe(
    http: aiohttp.ClientSession, port: int, path: str, transport: str, *, timeout: float = 5.0, key: str | None = None
) -> float:
    """Probe an instance the way its transport speaks; seconds it took; raise ProbeFailed."""
    if transport == "sse":
        return await sse_endpoint(http, port, path, timeout=timeout, key=key)
    return await mcp_initialize(http, port, path, timeout=timeout, key=key)


async def mcp_call_tool(
    http: aiohttp.ClientSession,
    port: int,
    path: str,
    name: str,
    arguments: dict[str, Any],
    *,
    timeout: float,
    key: str | None = None,
) -> str:
    """A whole MCP exchange (initialize, initialized, tools/call, DELETE); returns the tool's text."""
    session = McpSession(http, instance_url(port, path), instance_headers(port, key))
    try:
        async with asyncio.timeout(timeout):
            await session.open()
            return await session.call_tool(name, arguments)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise _failure(f"{name} did not answer", exc) from None
    finally:
        await session.close()


class McpPinger:
    """Health probes over one MCP session of the monitor's own: ``ping`` it, re-initialize when it is gone."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.session: McpSession | None = None

    async def ping(self, port: int, path: str, transport: str, *, timeout: float, key: str | None = None) -> float:
        """Seconds the ping took; raises ProbeFailed."""
        if transport == "sse":
            return await sse_endpoint(self.http, port, path, timeout=timeout, key=key)
        url, headers = instance_url(port, path), instance_headers(port, key)
        if self.session is None or (self.session.url, self.session.base_headers) != (url, headers):
            self.session = McpSession(self.http, url, headers)  # first probe, or a new launch (port, key)
        began = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await self._ping(self.session)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _failure("ping failed", exc) from None
        except McpToolError as exc:
            raise ProbeFailed(f"ping refused: {exc}") from None
        return time.perf_counter() - began

    @staticmethod
    async def _ping(session: McpSession) -> None:
        fresh = not session.initialized
        if fresh:
            await session.open()
        try:
            await session.request("ping")
        except McpStatusError as exc:
            if fresh or exc.status not in SESSION_GONE:
                raise
            await session.open()  # the instance forgot us (it restarted): once more on a new session
            await session.request("ping")


# ---- check: through the bridge, as Claude Code would (the SDK) --------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    server: str  # "name version" as the server introduced itself
    tools: int
    seconds: float


async def check_server(url: str, headers: dict[str, str], *, timeout: float) -> CheckResult:
    """MCP initialize + tools/list with the SDK's own client; SDK and transport errors propagate."""
    import httpx2  # the SDK's HTTP client; imported here so that the probe path never loads the SDK
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    started = time.monotonic()
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=timeout)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = (await asyncio.wait_for(client.list_tools(), timeout)).tools
        info = client.server_info
    who = f"{info.name} {info.version}".strip() if info else "server"
    return CheckResult(who, len(tools), time.monotonic() - started)
