"""The proxy's HTTP/1.1 client to its instances: pooled keep-alive connections, answers parsed by llhttp.

Why not aiohttp's client (which the bridge uses everywhere else): the proxy's upstream is always an
instance on 127.0.0.1 that the bridge started, spoken to in plain HTTP/1.1 with headers the proxy has already
filtered, and per request aiohttp's client builds a request object, a header multidict, a URL, timers and a
payload stream it does not need here (bench_proxy, before/after: the bridge's CPU per request 882 -> 425 µs).
This client writes the request as one buffer and hands the bytes that come back to ``httptools``
(llhttp, the parser of Node.js and uvicorn); the body is kept as it arrives (JSON) or relayed chunk by
chunk (SSE), with flow control. What it does not do: TLS, redirects, proxies, cookies, decompression, request streaming.

Errors say how far the request got, which is what the proxy's retry rule needs:
``NotSent`` (no connection: the instance never saw it), ``Dropped`` (the connection broke before the
answer began), ``Cut`` (the answer broke off).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from collections.abc import AsyncIterator

import httptools
from multidict import CIMultiDict

from bridge.runtime import address

CONNECT_TIMEOUT = 10.0
NOT_DELIVERED_HEADER = "X-Paradise-Not-Delivered"
# An idle connection older than this is not reused: uvicorn (the MCP SDK's server) closes its idle
# connections after 5 s, and reusing one just as the server closes it would fail a request.
IDLE_SECONDS = 3.0
MAX_IDLE_PER_PORT = 64
_HIGH_WATER = 1 << 20  # a stream's reader this far behind: stop reading the socket until it catches up
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class RelayError(Exception):
    """Talking to an instance failed; the subclass says how far the request got."""


class NotSent(RelayError):
    """No connection to the instance: the request never reached it (safe to send again)."""


class Dropped(RelayError):
    """The connection closed before the answer began: the instance may or may not have read the request."""


class Cut(RelayError):
    """The answer broke off before its end (the instance went away mid-answer)."""


class UpstreamResponse:
    """One answer: status and headers as soon as they arrive; the body read whole or chunk by chunk.

    ``release()`` (always, in a ``finally``) gives a fully read, keep-alive connection back to the pool and
    closes any other."""

    __slots__ = ("_conn", "content_length", "headers", "status")

    def __init__(self, conn: _Connection, status: int, headers: CIMultiDict[str], length: int | None) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self.content_length = length

    async def read(self) -> bytes:
        conn = self._conn
        while not conn.complete:
            await conn.wait_body()
        return b"".join(conn.take())

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises ``Cut`` if the connection ends before the answer does."""
        conn = self._conn
        conn.streaming = True
        while True:
            chunks = conn.take()
            if chunks:
                yield b"".join(chunks)
            elif conn.complete:
                return
            else:
                await conn.wait_body()

    def release(self) -> None:
        self._conn.release()

    def close(self) -> None:
        self._conn.close()


class _Connection(asyncio.Protocol):
    """One TCP connection to an instance, reused for one request after another (never two at once)."""

    def __init__(self, pool: UpstreamPool, port: int) -> None:
        self.pool, self.port = pool, port
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.spoiled = False  # the instance answered more than it was asked: never reused
        self.idle_since = 0.0
        self._reset(head=False)

    def _reset(self, *, head: bool) -> None:
        self.head = head  # a HEAD answer has headers only: the parser cannot know, so it ends there
        self.headers: list[tuple[str, str]] = []
        self.until_eof = False
        self.complete = False
        self.keep_alive = False
        self.started = False
        self.response: asyncio.Future[UpstreamResponse] | None = None
        self.body: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.streaming = False  # relayed chunk by chunk: read no further ahead than _HIGH_WATER
        self.body_waiter: asyncio.Future[None] | None = None
        self.failure: RelayError | None = None

    # ---- one request -------------------------------------------------------------------------------

    async def send(self, data: bytes, *, head: bool) -> UpstreamResponse:
        self._reset(head=head)
        self.response = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        try:
            return await self.response
        except BaseException:
            self.close()  # cancelled or failed mid-answer: this connection's state is unknown now
            raise

    async def wait_body(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        self.body_waiter = asyncio.get_running_loop().create_future()
        try:
            await self.body_waiter
        finally:
            self.body_waiter = None
        if self.failure is not None and not self.complete:
            raise self.failure

    def take(self) -> list[bytes]:
        chunks = list(self.body)
        self.body.clear()
        self.buffered = 0
        return chunks

    def release(self) -> None:
        if self.complete and self.keep_alive and not (self.head or self.closed or self.spoiled):
            self.pool.give_back(self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # ---- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small answers go out at once

    def data_received(self, data: bytes) -> None:
        if self.response is None or self.complete:
            self.close()  # bytes nobody asked for: the instance is out of step with us
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Cut(f"the instance's answer is not HTTP: {exc}") if self.started else
                       Dropped(f"the instance's answer is not HTTP: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.until_eof and self.started and not self.complete:
            self.on_message_complete()  # an answer without length or chunks ends where the connection does
            return
        why = exc.__class__.__name__ if exc else "closed by the instance"
        self._fail(Cut(f"the answer broke off: {why}") if self.started else Dropped(f"connection lost: {why}"))

    # ---- httptools callbacks -----------------------------------------------------------------------

    # Once the answer is complete, whatever else the same read holds is a second answer nobody asked for:
    # its callbacks are ignored and the connection is spoiled (never reused).

    def on_message_begin(self) -> None:
        if self.complete:
            self.spoiled = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self.headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.started = True
        headers = CIMultiDict(self.headers)
        raw_length = headers.get("Content-Length")
        length = int(raw_length) if raw_length is not None and raw_length.isdigit() else None
        self.until_eof = length is None and "chunked" not in headers.get("Transfer-Encoding", "").lower()
        if self.head:
            self.until_eof, self.complete = False, True
        if self.response is not None and not self.response.done():
            self.response.set_result(UpstreamResponse(self, self.parser.get_status_code(), headers, length))

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.streaming and self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.complete:
            return
        self.keep_alive = self.parser.should_keep_alive()  # asked here: llhttp forgets once the message ends
        self.complete = True
        self._wake()

    def _wake(self) -> None:
        if self.body_waiter is not None and not self.body_waiter.done():
            self.body_waiter.set_result(None)

    def _fail(self, error: RelayError) -> None:
        if self.complete:
            return
        self.failure = error
        if self.response is not None and not self.response.done():
            self.response.set_exception(error)
        self._wake()


class UpstreamPool:
    """Keep-alive connections to instances on 127.0.0.1, by port; one request per connection at a time."""

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT, idle_seconds: float = IDLE_SECONDS) -> None:
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self._idle: dict[int, list[_Connection]] = {}

    async def request(
        self, method: str, port: int, target: str, headers: dict[str, str], body: bytes | None
    ) -> UpstreamResponse:
        """Send one request (``target``: path and query as they go on the request line)."""
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None:
            lines.append(f"Content-Length: {len(body)}\r\n")
        elif method not in _NO_BODY_METHODS:
            lines.append("Content-Length: 0\r\n")
        lines.append("\r\n")
        # Header values arrived as UTF-8 decoded with surrogateescape (aiohttp): the same bytes go out.
        data = "".join(lines).encode("utf-8", "surrogateescape")
        conn = self._reuse(port) or await self._connect(port)
        response = await conn.send(data + body if body else data, head=method == "HEAD")
        if response.status == 503 and NOT_DELIVERED_HEADER in response.headers:
            response.release()  # a sandbox's relay says the server never got it (instances/sandbox_init.py)
            raise NotSent(f"the instance on port {port} was gone before the request reached it")
        return response

    def _reuse(self, port: int) -> _Connection | None:
        idle = self._idle.get(port)
        oldest = time.monotonic() - self.idle_seconds
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since >= oldest:
                return conn
            conn.close()
        return None

    async def _connect(self, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        path = address.unix_socket(port)
        try:
            async with asyncio.timeout(self.connect_timeout):
                if path:  # a sandboxed instance: its own network namespace, reached through its socket
                    sock = await address.dial(path)
                    _, conn = await loop.create_unix_connection(lambda: _Connection(self, port), sock=sock)
                else:
                    _, conn = await loop.create_connection(lambda: _Connection(self, port), "127.0.0.1", port)
        except (OSError, TimeoutError) as exc:
            where = path or f"127.0.0.1:{port}"
            raise NotSent(f"cannot connect to {where}: {exc.__class__.__name__}") from None
        return conn

    def give_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.port, [])
        if len(idle) >= MAX_IDLE_PER_PORT:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        idle = self._idle.get(conn.port)
        if idle and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
