"""MCP-level probing of an instance: does it answer an ``initialize`` like a real client would see it?"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

PROBE_PROTOCOL = "2025-06-18"
_INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROBE_PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "devops-paradise-probe", "version": "1"},
        },
    }
)


class ProbeFailed(Exception):
    pass


def instance_headers(port: int) -> dict[str, str]:
    # The Python MCP SDK answers 421 to any Host but 127.0.0.1:<port> / localhost:<port>.
    return {"Host": f"127.0.0.1:{port}"}


async def mcp_initialize(http: aiohttp.ClientSession, port: int, path: str, *, timeout: float = 5.0) -> float:
    """POST an MCP initialize to 127.0.0.1:port/path; return the seconds it took, raise ProbeFailed."""
    url = f"http://127.0.0.1:{port}{path}"
    headers = {
        **instance_headers(port),
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    began = time.perf_counter()
    try:
        async with http.post(
            url, data=_INITIALIZE, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            body = await resp.text()
            session_id = resp.headers.get("Mcp-Session-Id")
            if resp.status != 200 or '"result"' not in body:
                raise ProbeFailed(f"initialize answered HTTP {resp.status}: {body[:200]!r}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProbeFailed(f"initialize failed: {exc.__class__.__name__}: {exc}") from None
    elapsed = time.perf_counter() - began
    if session_id:  # do not leave a session behind for every probe
        try:
            async with http.delete(
                url,
                headers={**instance_headers(port), "Mcp-Session-Id": session_id},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ):
                pass
        except (aiohttp.ClientError, TimeoutError):
            pass
    return elapsed


async def sse_endpoint(http: aiohttp.ClientSession, port: int, path: str, *, timeout: float = 5.0) -> float:
    """Old HTTP+SSE servers: GET the stream and wait for its ``endpoint`` event; raise ProbeFailed."""
    url = f"http://127.0.0.1:{port}{path}"
    began = time.perf_counter()
    try:
        async with (
            asyncio.timeout(timeout),
            http.get(url, headers={**instance_headers(port), "Accept": "text/event-stream"}) as resp,
        ):
            if resp.status != 200:
                raise ProbeFailed(f"SSE stream answered HTTP {resp.status}")
            async for line in resp.content:
                if line.startswith(b"event: endpoint") or line.startswith(b"event:endpoint"):
                    return time.perf_counter() - began
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProbeFailed(f"SSE stream failed: {exc.__class__.__name__}: {exc}") from None
    raise ProbeFailed("SSE stream ended without an endpoint event")


async def probe(http: aiohttp.ClientSession, port: int, path: str, transport: str, *, timeout: float = 5.0) -> float:
    """Probe an instance the way its transport speaks."""
    if transport == "sse":
        return await sse_endpoint(http, port, path, timeout=timeout)
    return await mcp_initialize(http, port, path, timeout=timeout)


class McpToolError(Exception):
    """The instance answered, but the tool call failed; the message is the instance's own words."""


async def mcp_call_tool(
    http: aiohttp.ClientSession, port: int, path: str, name: str, arguments: dict, *, timeout: float
) -> str:
    """A whole MCP exchange (initialize, initialized, tools/call, DELETE); returns the tool's text."""
    url = f"http://127.0.0.1:{port}{path}"
    base = {
        **instance_headers(port),
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    try:
        async with asyncio.timeout(timeout):
            init = await _rpc(http, url, base, _INITIALIZE)
            headers = {**base, "MCP-Protocol-Version": PROBE_PROTOCOL}
            if init.session_id:
                headers["Mcp-Session-Id"] = init.session_id
            try:
                note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
                await _rpc(http, url, headers, note)
                call = json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "tools/call",
                        "params": {"name": name, "arguments": arguments},
                    }
                )
                answer = await _rpc(http, url, headers, call)
            finally:
                if init.session_id:
                    async with http.delete(url, headers=headers):
                        pass
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProbeFailed(f"{name} did not answer: {exc.__class__.__name__}: {exc}") from None
    message = answer.message or {}
    if "error" in message:
        raise McpToolError(str(message["error"].get("message", message["error"])))
    result = message.get("result", {})
    text = " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
    if result.get("isError"):
        raise McpToolError(text or "the tool reported an error")
    return text


class _Answer:
    def __init__(self, session_id: str | None, message: dict | None) -> None:
        self.session_id = session_id
        self.message = message


async def _rpc(http: aiohttp.ClientSession, url: str, headers: dict[str, str], body: str) -> _Answer:
    async with http.post(url, data=body, headers=headers) as resp:
        if resp.status == 202:
            return _Answer(resp.headers.get("Mcp-Session-Id"), None)
        if resp.status != 200:
            raise ProbeFailed(f"HTTP {resp.status}: {(await resp.text())[:200]!r}")
        session_id = resp.headers.get("Mcp-Session-Id")
        if resp.content_type != "text/event-stream":
            return _Answer(session_id, await resp.json(content_type=None))
        async for raw in resp.content:  # the answer is the SSE event that carries an id (not a notification)
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if "id" in message:
                    return _Answer(session_id, message)
        raise ProbeFailed("the stream ended without an answer")


class McpPinger:
    """Health probes over one MCP session of the monitor's own: ``ping`` it, re-initialize when it is gone."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.session_id: str | None = None
        self._next_id = 1

    async def ping(self, port: int, path: str, transport: str, *, timeout: float) -> float:
        """Seconds the ping took; raises ProbeFailed."""
        if transport == "sse":
            return await sse_endpoint(self.http, port, path, timeout=timeout)
        began = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                if not await self._ping(port, path):
                    self.session_id = None  # the instance forgot us (it restarted): a new session
                    if not await self._ping(port, path):
                        raise ProbeFailed("ping refused on a fresh session")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProbeFailed(f"ping failed: {exc.__class__.__name__}: {exc}") from None
        return time.perf_counter() - began

    async def _ping(self, port: int, path: str) -> bool:
        url = f"http://127.0.0.1:{port}{path}"
        headers = {
            **instance_headers(port),
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self.session_id is None:
            init = await _rpc(self.http, url, headers, _INITIALIZE)
            self.session_id = init.session_id or ""
            headers["MCP-Protocol-Version"] = PROBE_PROTOCOL
            if self.session_id:
                headers["Mcp-Session-Id"] = self.session_id
            await _rpc(self.http, url, headers, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        else:
            headers["MCP-Protocol-Version"] = PROBE_PROTOCOL
            if self.session_id:
                headers["Mcp-Session-Id"] = self.session_id
        self._next_id += 1
        try:
            answer = await _rpc(
                self.http, url, headers, json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": "ping"})
            )
        except ProbeFailed as exc:
            if "HTTP 404" in str(exc) or "HTTP 400" in str(exc):
                return False
            raise
        return bool(answer.message and "result" in answer.message)
