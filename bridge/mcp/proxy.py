"""The MCP reverse proxy: ``/c/{client_id}/{service}/mcp`` to that client's instance, streaming.

Transparent for every MCP transport revision: POST, GET (SSE) and DELETE pass; MCP headers pass both ways;
the client's Authorization and hop-by-hop headers never reach the instance; Host is rewritten to the
instance's own address (the Python SDK refuses others with 421). SSE is relayed chunk by chunk as it
arrives, with no total timeout, and closing the client side closes the upstream side.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from bridge.clients import ClientManager
from bridge.errors import Forbidden, NotFound, Unauthorized, UpstreamError
from bridge.lifecycle.routes import Route
from bridge.mcp.client import instance_headers
from bridge.observability.metrics import BridgeMetrics, RequestTrack

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: the client's credential, and what aiohttp or the rewrite sets itself.
_DROP_REQUEST = HOP_BY_HOP | {"authorization", "host", "content-length", "accept-encoding"}
_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "content-encoding", "server", "date"}
# No total timeout: SSE streams live as long as the client wants; a dead upstream is caught by sock_connect.
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
_LEGACY_TAIL = re.compile(r"^(sse|messages/?)$")
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def _upstream_path(tail: str, mcp_path: str) -> str:
    if tail == "mcp":
        return mcp_path
    if _LEGACY_TAIL.match(tail):  # old HTTP+SSE transport: /sse and /messages/?session_id=
        return "/" + tail
    raise NotFound(f"no such MCP path: {tail!r}")


class McpProxy:
    def __init__(
        self, manager: ClientManager, http: aiohttp.ClientSession, metrics: BridgeMetrics | None = None
    ) -> None:
        self.manager = manager
        self.http = http
        self.metrics = metrics or BridgeMetrics()

    def authorize(self, request: web.Request, client_id: str, service: str) -> None:
        match = _BEARER.match(request.headers.get("Authorization", ""))
        owner = self.manager.authenticate(match.group(1)) if match else None
        if owner is None:
            raise Unauthorized(
                "missing or invalid client token", headers={"WWW-Authenticate": 'Bearer realm="devops-paradise"'}
            )
        if not self.manager.exists(client_id):
            raise NotFound(f"no client {client_id!r}")
        if owner != client_id:
            raise Forbidden(f"this token belongs to another client, not {client_id!r}")
        self.manager.route(client_id, service)  # 404 for an unknown service

    async def handle(self, request: web.Request) -> web.StreamResponse:
        client_id = request.match_info["client_id"]
        service = request.match_info["service"]
        self.authorize(request, client_id, service)
        with self.metrics.track(client_id, service, request.method) as track:
            return await self._forward(request, client_id, service, track)

    async def _forward(
        self, request: web.Request, client_id: str, service: str, track: RequestTrack
    ) -> web.StreamResponse:
        tail = request.match_info["tail"]
        route = await self.manager.wait_ready(client_id, service)
        path = _upstream_path(tail, route.path)
        url = URL.build(
            scheme="http",
            host="127.0.0.1",
            port=route.port,
            path=path,
            query_string=request.rel_url.raw_query_string,
            encoded=True,  # relay the query exactly as the client sent it (session_id of old SSE servers)
        )
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST
        )
        headers.update(instance_headers(route.port))
        body = await request.read() if request.body_exists else None
        track.sent(len(body) if body else 0)
        route.last_activity = time.monotonic()
        try:
            upstream = await self.http.request(
                request.method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=UPSTREAM_TIMEOUT,
            )
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(f"{service} of {client_id} did not answer: {exc.__class__.__name__}") from None
        try:
            prefix = f"/c/{client_id}/{service}" if tail == "sse" else None
            return await self._relay(request, upstream, prefix, route, track)
        finally:
            upstream.release()
            route.last_activity = time.monotonic()

    async def _relay(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        legacy_prefix: str | None,
        route: Route,
        track: RequestTrack,
    ) -> web.StreamResponse:
        headers = CIMultiDict(
            (k, v) for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE
        )
        streaming = upstream.content_type == "text/event-stream" or upstream.content_length is None
        if not streaming:
            body = await upstream.read()
            track.answered(upstream.status, len(body))
            return web.Response(status=upstream.status, headers=headers, body=body)
        headers["X-Accel-Buffering"] = "no"
        headers.setdefault("Cache-Control", "no-cache")
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        track.stream_opened(upstream.status)
        chunks = upstream.content.iter_any()
        if legacy_prefix is not None:
            chunks = _rewrite_endpoint(chunks, legacy_prefix)
        route.streams += 1  # an open stream keeps the instance from idling
        try:
            async for chunk in chunks:
                await response.write(chunk)
                track.chunk(len(chunk))
                route.last_activity = time.monotonic()
        except asyncio.CancelledError:
            upstream.close()  # the client went away (handler cancelled): close the upstream stream too
            raise
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            upstream.close()  # the client went away mid-write: close the upstream stream, quietly
            return response
        except aiohttp.ClientPayloadError:
            track.aborted()
            upstream.close()  # the instance went away mid-stream; end ours cleanly
        finally:
            route.streams -= 1
        await response.write_eof()
        return response


async def _rewrite_endpoint(chunks: AsyncIterator[bytes], prefix: str) -> AsyncIterator[bytes]:
    """Old HTTP+SSE servers announce their POST URL in a first ``endpoint`` event: point it at the bridge."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        end = buffer.find(b"\n\n") if b"\r\n\r\n" not in buffer else buffer.find(b"\r\n\r\n")
        if end < 0 and len(buffer) < 64 * 1024:
            continue
        head, rest = (buffer[:end], buffer[end:]) if end >= 0 else (buffer, b"")
        yield _rewrite_event(head.decode("utf-8", "replace"), prefix).encode() + rest
        break
    else:
        if buffer:
            yield buffer
        return
    async for chunk in chunks:
        yield chunk


def _rewrite_event(event: str, prefix: str) -> str:
    if "event: endpoint" not in event and "event:endpoint" not in event:
        return event
    lines = []
    for line in event.splitlines():
        if line.startswith("data:"):
            target = line[5:].strip()
            target = re.sub(r"^https?://[^/]+", "", target)
            line = f"data: {prefix}{target}"
        lines.append(line)
    return "\n".join(lines)


async def not_found(_request: web.Request) -> web.Response:
    """OAuth discovery and registration paths: this bridge uses bearer tokens, not OAuth."""
    raise NotFound("this bridge does not offer OAuth; use the client token as a bearer token")


def add_oauth_404s(app: web.Application) -> None:
    for path in ("/.well-known/{rest:.*}", "/register", "/authorize", "/token"):
        app.router.add_route("*", path, not_found)
