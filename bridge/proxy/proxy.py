"""The MCP reverse proxy: ``/c/{client_id}/{service}/mcp`` to that client's instance, streaming.

Transparent for every MCP transport revision: POST, GET (SSE) and DELETE pass; MCP headers pass both ways;
the client's Authorization, cookies and hop-by-hop headers never reach the instance; Host is rewritten to
the instance's own address (the Python SDK refuses others with 421) and the instance's key is added (each
rule a pure function in ``headers.py``). SSE is relayed chunk by chunk as it arrives, with no total timeout;
closing the client side closes the upstream.

A client never sees its instance die, sleep or wake: a request that cannot reach the instance is held
while the instance is checked at once and healed (bounded by START_TIMEOUT), and sessions of the
session-era protocol revisions are the bridge's own, replayed onto a new instance (``sessions.py``). A
request the instance died under is sent again only when that is safe (``resend.py``); otherwise the client
is told it may have run. Rotating a client's token or deleting it ends its open streams (``revoke``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from bridge.clients import ClientManager
from bridge.errors import NestedTooDeep, NotFound, TooManyStreams, Unavailable, UpstreamError
from bridge.jsonlimits import MAX_JSON_DEPTH, too_deep
from bridge.lifecycle.routes import Route
from bridge.mcp.client import ProbeFailed
from bridge.mcp.protocol import SESSION_ID_HEADER
from bridge.models import InstanceState
from bridge.observability.metrics import BridgeMetrics, RequestTrack
from bridge.proxy import edge, legacy_sse, resend
from bridge.proxy import headers as headers_
from bridge.proxy.edge import add_oauth_404s as add_oauth_404s  # app.py adds them through the proxy module
from bridge.proxy.sessions import Mapped, SessionMap, initialize_message
from bridge.proxy.upstream import Cut, Dropped, NotSent, RelayError, UpstreamPool, UpstreamResponse

MAX_ANSWER = 32 * 1024 * 1024  # a JSON answer larger than this is an instance gone wrong, not a reply
MAX_STREAMS_PER_CLIENT = 64
MAX_RESENDS = 2  # a safe request cut by its instance's death is sent again at most this often
MAX_DROPS = 4  # a safe request dropped by an instance that lives on is sent again at most this often
# The client's revocation count when its request came in: a rotation or deletion since then ends its stream.
REVOKED_AT = web.RequestKey("paradise_revoked", int)
# Reaching the instance failed before the request was sent: always safe to send again. (The aiohttp errors
# come from replaying a session's initialize, which goes through the bridge's MCP client.)
_NEVER_SENT = (NotSent, aiohttp.ClientConnectorError)
# The connection broke under the request: safe to send again only if the instance turns out to be dead.
_BROKEN = (Dropped, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class _MayHaveRun(Exception):
    """The request reached an instance that broke off before answering, and sending it again is not safe."""


class McpProxy:
    """Made with the app (its ``handle`` is the route's handler, with no lookup in between) and attached to
    the manager, the bridge's HTTP session and the session map once they exist (``attach``, in proxy_ctx).
    Requests go to instances through its own connection pool (``upstream.py``), closed with ``close``."""

    manager: ClientManager
    http: aiohttp.ClientSession
    sessions: SessionMap

    def __init__(
        self,
        *,
        host_allowed: Callable[[str], bool],
        origin_allowed: Callable[[str], bool],
        hold: float,
        metrics: BridgeMetrics | None = None,
        max_streams: int = MAX_STREAMS_PER_CLIENT,
    ) -> None:
        self.host_allowed = host_allowed  # PARADISE_ALLOWED_HOSTS (default: the bridge's loopback names)
        self.origin_allowed = origin_allowed  # PARADISE_ALLOWED_ORIGINS, beyond the bridge's own origins
        self.hold = hold  # PARADISE_START_TIMEOUT: how long a request waits for its instance to come back
        self.metrics = metrics or BridgeMetrics()
        self.max_streams = max_streams
        self._streams: Counter[str] = Counter()
        # Streams being relayed, by client, and how often its credentials changed: a rotated token or a deleted
        # client ends them at once (``revoke``), also one that was opening when the token changed.
        self._live: dict[str, set[UpstreamResponse]] = {}
        self._revoked: Counter[str] = Counter()
        self.hints = resend.ToolHints()  # which tools each instance's server says are safe to run twice
        self._ending: set[asyncio.Future[None]] = set()  # DELETEs of revoked sessions under way
        self.upstream = UpstreamPool()

    def attach(self, manager: ClientManager, http: aiohttp.ClientSession, sessions: SessionMap) -> None:
        self.manager = manager
        self.http = http
        self.sessions = sessions
        manager.on_revoke.append(self.revoke)

    def revoke(self, client_id: str) -> None:
        """The client's token was rotated or the client deleted: its open streams end now, its sessions too
        (the holder of the old token must not hear another event)."""
        self._revoked[client_id] += 1
        live = self._live.pop(client_id, set())
        for upstream in live:
            upstream.close()  # its relay sees the upstream end and ends the client's stream
        live.clear()  # (ended on purpose: not counted as aborted)
        ended = asyncio.ensure_future(self._end_sessions(self.sessions.drop_client(client_id)))
        self._ending.add(ended)
        ended.add_done_callback(self._ending.discard)
        self.hints.forget(client_id)

    async def _end_sessions(self, dropped: list[Mapped]) -> None:
        """The instance's side of revoked sessions ended too (DELETE), where the instance still runs: best
        effort, bounded; a deleted client's instances are going anyway."""
        for mapped in dropped:
            try:
                route = self.manager.route(mapped.client_id, mapped.service)
            except NotFound:
                continue
            if route.state != InstanceState.RUNNING or mapped.incarnation != route.incarnation:
                continue  # that instance never knew the session
            headers = headers_.map_session_in(self._upstream_headers({}, route), mapped.upstream_id)
            with contextlib.suppress(RelayError, TimeoutError):
                async with asyncio.timeout(5):
                    (await self.upstream.request("DELETE", route.port, route.path, headers, None)).release()

    def close(self) -> None:
        self.upstream.close()

    # ---- who may ask (edge.py) -----------------------------------------------------------------------

    def check_origin(self, request: web.Request) -> None:
        edge.check_host_and_origin(request, self.host_allowed, self.origin_allowed)

    def authorize(self, request: web.Request, client_id: str, service: str) -> Route:
        return edge.authorize(self.manager, request, client_id, service)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        client_id = request.match_info["client_id"]
        service = request.match_info["service"]
        self.check_origin(request)
        route = self.authorize(request, client_id, service)
        request[REVOKED_AT] = self._revoked[client_id]  # what ``_relay`` compares with
        with self.metrics.track(client_id, service, request.method) as track:
            if request.method == "GET":  # a listening stream may stay open while its instance is frozen
                return await self._listen(request, route, track)
            route.busy += 1
            try:
                return await self._forward(request, route, track)
            finally:
                route.busy -= 1

    async def _listen(self, request: web.Request, route: Route, track: RequestTrack) -> web.StreamResponse:
        """A GET (stream) request, counted against its client's cap from before the first await: streams
        opened all at once cannot all pass the check before any of them is counted."""
        client_id = route.client_id
        if self._streams[client_id] >= self.max_streams:
            raise TooManyStreams(f"{client_id} already holds {self.max_streams} open streams")
        self._streams[client_id] += 1
        try:
            return await self._forward(request, route, track)
        finally:
            self._streams[client_id] -= 1
            if not self._streams[client_id]:
                del self._streams[client_id]  # a deleted client leaves no counter behind

    # ---- forwarding --------------------------------------------------------------------------------

    async def _forward(self, request: web.Request, route: Route, track: RequestTrack) -> web.StreamResponse:
        tail = request.match_info["tail"]
        body = await request.read() if request.body_exists else None
        track.sent(len(body) if body else 0)
        if body and too_deep(body):  # what the instance (and the bridge's own parsing below) would recurse into
            raise NestedTooDeep(f"request body refused: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        forwarded = headers_.for_instance(request.headers)  # the header rules: headers.py
        session_id = request.headers.get(SESSION_ID_HEADER)
        init = initialize_message(body) if session_id is None and request.method == "POST" else None
        call = resend.classify(request.method, body, self.hints.safe_tools(route.key))
        opened: web.StreamResponse | None = None  # an SSE answer already begun to the client
        for attempt in range(MAX_RESENDS + 1):
            try:
                route, upstream, mapped = await self._send(request, route, tail, forwarded, body, session_id, call)
            except _MayHaveRun:
                return await self._may_have_run(request, opened, call, route)
            try:
                if opened is None:
                    seen = self.sessions.answer_id(route, upstream.headers.get(SESSION_ID_HEADER), upstream.status,
                                                   mapped, init, request.method)
                    headers = headers_.for_client(upstream.headers, seen)
                if opened is not None or _streamed(upstream):
                    opened = opened or await self._open_stream(request, upstream, track, headers)
                    if await self._relay(request, opened, upstream, tail, route, track, call):
                        return opened
                elif (answer := await self._read(upstream, route)) is not None:
                    self.hints.learn(route.key, call, answer)
                    track.answered(upstream.status, len(answer))
                    return web.Response(status=upstream.status, headers=headers, body=answer)
            finally:
                upstream.release()
                route.last_activity = time.monotonic()
            # The instance died under the answer: sent again to the healed instance only when that is safe.
            if not call.safe or attempt == MAX_RESENDS:
                return await self._may_have_run(request, opened, call, route)
            await self.manager.recover(route)
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    async def _read(self, upstream: UpstreamResponse, route: Route) -> bytes | None:
        """A JSON answer whole; None when the instance died in the middle of it."""
        if upstream.content_length is not None and upstream.content_length > MAX_ANSWER:
            raise UpstreamError(f"the instance's answer is larger than {MAX_ANSWER // 2**20} MiB")
        try:
            return await upstream.read()
        except Cut:
            return None

    async def _may_have_run(
        self, request: web.Request, opened: web.StreamResponse | None, call: resend.Call, route: Route
    ) -> web.StreamResponse:
        """A request that reached an instance which died before answering, and is not safe to send again: the
        client is told so, once (in the SSE answer already begun, or as the JSON-RPC answer)."""
        await self.manager.recover(route)  # judged and healed now, for the client's next request
        what = f"{route.service} of {route.client_id}"
        if not call.awaits_answer and opened is None:
            raise UpstreamError(f"{what} broke off during this request, which may have run; not sent again")
        error = resend.restarted_error(call, what)
        if opened is None:
            return web.json_response(error)
        await _end(opened, resend.sse_event(error) if call.awaits_answer else b"")
        return opened

    async def _send(
        self,
        request: web.Request,
        route: Route,
        tail: str,
        forwarded: dict[str, str],
        body: bytes | None,
        session_id: str | None,
        call: resend.Call,
    ) -> tuple[Route, UpstreamResponse, Mapped | None]:
        """Send the request to a live instance; hold it (bounded) while the instance is healed or woken."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hold
        refused: str | None = None
        broken = 0
        while True:
            if route.state != InstanceState.RUNNING:  # the hot path: a running instance needs no waiting at all
                route = await self.manager.wait_ready(route.client_id, route.service)
            mapped = self.sessions.get(session_id, route) if session_id else None
            headers = self._upstream_headers(forwarded, route)
            try:
                if mapped is not None:
                    await self.sessions.ensure_current(mapped, route, self.http, headers, refused=refused)
                    headers = headers_.map_session_in(headers, mapped.upstream_id)
                elif session_id is not None:
                    headers = headers_.map_session_in(headers, session_id)  # not one of ours: the instance judges it
                route.last_activity = time.monotonic()
                upstream = await self.upstream.request(
                    request.method, route.port, self._target(route, tail, request), headers, body
                )
            except (*_NEVER_SENT, *_BROKEN, ProbeFailed) as exc:
                if isinstance(exc, Dropped) and not call.safe:
                    raise _MayHaveRun from None  # it reached the instance, which may have acted on it
                down = await self.manager.recover(route)
                what = f"{route.service} of {route.client_id}"
                if isinstance(exc, _BROKEN) and not isinstance(exc, _NEVER_SENT) and not down:
                    # Mostly a pooled keep-alive connection the instance closed as the request went out (several
                    # may have closed at once): a safe request (the client's answer to a server's question is
                    # one) goes out again on the next, at once, a few times; then it is the instance's doing.
                    broken += 1
                    if broken > MAX_DROPS:
                        raise UpstreamError(f"{what} dropped the request: {exc.__class__.__name__}") from None
                    continue
                if loop.time() >= deadline:
                    raise Unavailable(f"{what} cannot be reached: {exc.__class__.__name__}") from None
                await asyncio.sleep(0.05)
                continue
            if mapped is not None and upstream.status == 404 and refused is None:
                refused = mapped.upstream_id  # the instance forgot the session: replay once, then send again
                upstream.release()
                continue
            return route, upstream, mapped

    @staticmethod
    def _upstream_headers(forwarded: dict[str, str], route: Route) -> dict[str, str]:
        return headers_.to_instance(forwarded, route.port, route.instance_key, route.peer_headers)

    @staticmethod
    def _target(route: Route, tail: str, request: web.Request) -> str:
        """The upstream request line's path, and the query exactly as the client sent it (the session_id of
        old SSE servers)."""
        path = legacy_sse.upstream_path(tail, route.path)
        query = request.rel_url.raw_query_string
        return f"{path}?{query}" if query else path

    @staticmethod
    async def _open_stream(
        request: web.Request, upstream: UpstreamResponse, track: RequestTrack, headers: CIMultiDict[str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=headers_.for_stream(headers))
        await response.prepare(request)
        track.stream_opened(upstream.status)
        return response

    async def _relay(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: UpstreamResponse,
        tail: str,
        route: Route,
        track: RequestTrack,
        call: resend.Call,
    ) -> bool:
        """The upstream answer relayed into the client's open stream, chunk by chunk, and the stream ended:
        True. False (the stream left open) when the instance died before the answer to ``call`` went by."""
        if not _streamed(upstream):  # a request sent again was answered with JSON: one event of the stream
            answer = await self._read(upstream, route)
            if answer is None:
                return False
            if upstream.status == 200 and answer.strip():
                await response.write(b"event: message\ndata: " + answer.strip() + b"\n\n")
            await _end(response)
            return True
        chunks = upstream.iter_any()
        if tail == "sse":
            chunks = legacy_sse.rewrite_endpoint(chunks, f"/c/{route.client_id}/{route.service}")
        watch = resend.AnswerWatch(call)
        route.streams += 1  # an open stream keeps the instance from idling
        live = self._live.setdefault(route.client_id, set())
        live.add(upstream)
        if self._revoked[route.client_id] != request[REVOKED_AT]:
            upstream.close()  # the credentials changed while this stream was opening
            live.discard(upstream)
        try:
            async for chunk in chunks:
                if watch.feed(chunk):  # learnt before the client has the answer (and can send the next call)
                    self.hints.learn(route.key, call, watch.messages)
                await response.write(chunk)
                track.chunk(len(chunk))
                route.last_activity = time.monotonic()
        except asyncio.CancelledError:
            upstream.close()  # the client went away (handler cancelled): close the upstream stream too
            raise
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            upstream.close()  # the client went away mid-write: close the upstream stream, quietly
            return True
        except Cut:
            upstream.close()  # the instance went away mid-stream (or the credentials changed: not in live)
            if upstream in live:
                track.aborted()
                if call.awaits_answer and not watch.answered:
                    return False
        finally:
            route.streams -= 1
            live.discard(upstream)
            if not live and self._live.get(route.client_id) is live:
                del self._live[route.client_id]  # a deleted client leaves no set behind
        await _end(response)
        return True


async def _end(response: web.StreamResponse, last: bytes = b"") -> None:
    """End a stream; a client that has gone already (it closes a stream once it has its answer) is no error."""
    with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
        await response.write_eof(last)


def _streamed(upstream: UpstreamResponse) -> bool:
    """An answer relayed as it comes: SSE, or of unannounced length."""
    content_type = upstream.headers.get("Content-Type", "")
    return upstream.content_length is None or content_type[:17].lower() == "text/event-stream"
