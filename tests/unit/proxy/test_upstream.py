"""The proxy's HTTP/1.1 client against real loopback servers: aiohttp ones, an SDK server, and raw sockets
that misbehave in the ways an instance can (closing early, breaking off, answering without a length)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from bridge.mcp.protocol import ACCEPT_BOTH, PROBE_PROTOCOL_VERSION, SESSION_ID_HEADER
from bridge.proxy.upstream import Cut, Dropped, NotSent, UpstreamPool, UpstreamResponse
from tests.unit.mcp.conftest import closed_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def served(handler: Handler) -> AsyncIterator[tuple[int, list[tuple[str, int]]]]:
    """An aiohttp server on a free loopback port; yields the port and (method, client port) per request."""
    seen: list[tuple[str, int]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        seen.append((request.method, peer[1]))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def raw(answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> AsyncIterator[int]:
    """A TCP server that answers each connection by hand."""
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


class AnswerAndClose:
    """Each connection: read the request (head and ``body`` bytes), write ``answer`` as it stands, close."""

    def __init__(self, answer: bytes, body: int = 0) -> None:
        self.answer, self.body = answer, body
        self.connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await read_head(reader)
        await reader.readexactly(self.body)
        writer.write(self.answer)
        await writer.drain()
        writer.close()


async def send(pool: UpstreamPool, port: int, method: str = "POST", body: bytes | None = b"{}", **headers: str
               ) -> UpstreamResponse:
    return await pool.request(method, port, "/mcp", {"Host": f"127.0.0.1:{port}", **headers}, body)


async def test_json_answers_reuse_one_kept_alive_connection() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"got": json.loads(await request.read()), "key": request.headers.get("X-Key")})

    pool = UpstreamPool()
    async with served(echo) as (port, seen):
        for i in range(3):
            resp = await send(pool, port, body=json.dumps({"i": i}).encode(), **{"X-Key": "k"})
            try:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("application/json")
                assert resp.content_length == len(body := await resp.read())
                assert json.loads(body) == {"got": {"i": i}, "key": "k"}
            finally:
                resp.release()
        assert [method for method, _ in seen] == ["POST"] * 3
        assert len({client_port for _, client_port in seen}) == 1  # one connection for all three
    pool.close()


async def test_an_sdk_server_session_round_trip(sdk_server) -> None:  # type: ignore[no-untyped-def]
    served_app = sdk_server(json_response=True)
    pool = UpstreamPool()
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROBE_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json"}
    resp = await send(pool, served_app.port, body=json.dumps(init).encode(), **headers)
    try:
        assert resp.status == 200, await resp.read()
        assert json.loads(await resp.read())["result"]["serverInfo"]["name"]
        session = resp.headers[SESSION_ID_HEADER]
    finally:
        resp.release()
    resp = await send(pool, served_app.port, "DELETE", None, **{SESSION_ID_HEADER: session})
    try:
        assert resp.status == 200
    finally:
        resp.release()
    pool.close()


async def test_a_stream_is_relayed_chunk_by_chunk_as_it_comes() -> None:
    go_on = asyncio.Event()

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        await go_on.wait()  # the second event only after the client has had the first
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    pool = UpstreamPool()
    async with served(sse) as (port, _):
        resp = await send(pool, port, "GET", None)
        assert resp.content_length is None
        chunks = resp.iter_any()
        assert await asyncio.wait_for(anext(chunks), 5) == b"data: one\n\n"
        go_on.set()
        assert [c async for c in chunks] == [b"data: two\n\n"]
        resp.release()
    pool.close()


async def test_an_instance_dying_mid_stream_cuts_the_stream() -> None:
    # No last chunk: the answer broke off.
    dies = AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                          b"\r\nb\r\ndata: one\n\n\r\n")

    pool = UpstreamPool()
    async with raw(dies) as port:
        resp = await send(pool, port, "GET", None)
        got = []
        with pytest.raises(Cut):
            async for chunk in resp.iter_any():
                got.append(chunk)
        assert b"".join(got) == b"data: one\n\n"
        resp.release()
    pool.close()


async def test_a_json_answer_shorter_than_announced_is_cut() -> None:
    short = AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")

    async with raw(short) as port:
        resp = await send(UpstreamPool(), port)
        assert resp.content_length == 100
        with pytest.raises(Cut, match="broke off"):
            await resp.read()
        resp.release()


async def test_a_closed_port_is_not_sent() -> None:
    with pytest.raises(NotSent, match="cannot connect"):
        await send(UpstreamPool(), closed_port())


async def test_a_connection_closed_before_the_answer_is_dropped() -> None:
    hangs_up = AnswerAndClose(b"")

    async with raw(hangs_up) as port:
        with pytest.raises(Dropped):
            await send(UpstreamPool(), port)


async def twice_on_new_connections(server: AnswerAndClose, body: bytes, length: int | None, pause: float = 0) -> None:
    """Two requests in a row, each answered ``body`` (announced ``length``) on a connection of its own."""
    pool = UpstreamPool()
    async with raw(server) as port:
        for _ in range(2):
            resp = await send(pool, port)
            assert resp.content_length == length
            assert await resp.read() == body
            resp.release()
            await asyncio.sleep(pause)
    assert server.connections == 2
    pool.close()


async def test_an_answer_without_length_ends_with_the_connection_and_is_not_reused() -> None:
    old_style = AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                               b'{"a": 1}')
    await twice_on_new_connections(old_style, b'{"a": 1}', None)


async def test_an_answer_nobody_asked_for_spoils_the_connection() -> None:
    """Two answers to one request in the same read: the first is the answer, the connection is not reused
    (the second would otherwise be taken for the answer to the next request)."""
    twice = AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
                           b"\r\nsecond", body=2)
    await twice_on_new_connections(twice, b"first", 5)


async def test_a_connection_the_instance_closed_while_idle_is_not_reused() -> None:
    # Keep-alive, as far as the answer says, and then closed while idle, as uvicorn does after 5 s.
    one_answer_then_close = AnswerAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", body=2)
    await twice_on_new_connections(one_answer_then_close, b"ok", 2, pause=0.1)  # the pause: the close reaches us


async def test_idle_connections_past_their_age_are_not_reused() -> None:
    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    pool = UpstreamPool(idle_seconds=0.0)
    async with served(ok) as (port, seen):
        for _ in range(2):
            resp = await send(pool, port)
            assert await resp.read() == b"ok"
            resp.release()
            await asyncio.sleep(0.01)
        assert len({client_port for _, client_port in seen}) == 2
    pool.close()


async def test_header_bytes_and_query_arrive_as_sent_and_head_answers_end_at_the_headers() -> None:
    async def look(request: web.Request) -> web.Response:
        return web.json_response({"name": request.headers.get("X-Name"), "q": request.rel_url.raw_query_string,
                                  "length": request.content_length})

    pool = UpstreamPool()
    async with served(look) as (port, seen):
        resp = await pool.request("POST", port, "/mcp?session_id=a%20b", {"Host": "h", "X-Name": "Zoë"}, None)
        assert json.loads(await resp.read()) == {"name": "Zoë", "q": "session_id=a%20b", "length": 0}
        resp.release()
        resp = await send(pool, port, "HEAD", None)
        assert resp.status == 200 and resp.content_length
        assert await resp.read() == b""
        resp.release()
        resp = await send(pool, port)  # after a HEAD the connection is not reused: a fresh one answers
        assert resp.status == 200
        resp.release()
        assert seen[1][1] != seen[2][1]
    pool.close()


async def test_a_cancelled_request_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.read()  # until the client closes
        closed.set()
        writer.close()

    pool = UpstreamPool()
    async with raw(never_answers) as port:
        waiting = asyncio.create_task(send(pool, port, "GET", None))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(closed.wait(), 5)
    pool.close()


async def test_a_slow_stream_reader_pauses_the_socket_and_loses_nothing() -> None:
    block = b"x" * 65536
    blocks = 64  # 4 MiB, four times the high-water mark

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(blocks):
            await resp.write(block)
        await resp.write_eof()
        return resp

    pool = UpstreamPool()
    async with served(big) as (port, _):
        resp = await send(pool, port, "GET", None)
        received, paused = 0, False
        async for chunk in resp.iter_any():
            received += len(chunk)
            await asyncio.sleep(0.02)  # a slow client: the server gets ahead of us
            paused = paused or resp._conn.paused
        assert received == len(block) * blocks
        assert paused
        resp.release()
    pool.close()
