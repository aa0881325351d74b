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
        async with asyncio.timeout(timeout), http.get(
            url, headers={**instance_headers(port), "Accept": "text/event-stream"}
        ) as resp:
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
