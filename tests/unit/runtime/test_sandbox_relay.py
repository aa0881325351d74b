"""The sandbox's socket relay (instances/sandbox_init.py) with the bridge's dialler (bridge/runtime/address.py),
over real sockets: READY only once the server took the connection; bytes that reach the relay after the server
closed are answered NOT_DELIVERED, which the proxy's upstream client reads as "never sent"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.proxy.upstream import NotSent, UpstreamPool
from bridge.runtime import address
from instances.sandbox_init import NOT_DELIVERED, relay_to

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


async def relay(path: Path, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    protocol = relay_to(lambda factory: loop.create_connection(factory, "127.0.0.1", port), greet=True)
    return await loop.create_unix_server(protocol, str(path))


async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that answers one request and closes."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER)
    await writer.drain()
    writer.close()


async def test_ready_comes_only_from_a_relay_whose_server_took_the_connection(tmp_path) -> None:
    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    up = await relay(tmp_path / "up.sock", port)
    sock = await address.dial(str(tmp_path / "up.sock"))  # past READY
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.read()).endswith(b"{}")
    writer.close()
    server.close()
    down = await relay(tmp_path / "down.sock", port)  # the server is gone: the relay cannot reach it
    with pytest.raises(OSError):
        await address.dial(str(tmp_path / "down.sock"))
    up.close()
    down.close()


async def test_a_request_after_the_server_closed_is_never_sent(tmp_path) -> None:
    """The server went away between two requests on one connection, and the second request was already on its
    way: the relay answers it NOT_DELIVERED (the upstream client's NotSent), and the server never saw it."""
    served, closed = [], asyncio.Event()

    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(ANSWER)
        await writer.drain()
        writer.close()  # the server side ends: an idle keep-alive connection closed, or the server died
        closed.set()

    server = await asyncio.start_server(answer_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relayed = await relay(tmp_path / "instance.sock", port)
    try:
        sock = await address.dial(str(tmp_path / "instance.sock"))
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert (await reader.readexactly(len(ANSWER))) == ANSWER
        await closed.wait()
        await asyncio.sleep(0.1)  # the relay has seen the server's end close; the bridge has not looked yet
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert await reader.read() == NOT_DELIVERED
        assert len(served) == 1  # the second request never reached the server
        writer.close()
    finally:
        relayed.close()
        server.close()


async def test_the_upstream_client_reads_not_delivered_as_never_sent(tmp_path) -> None:
    async def not_delivered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+")  # READY, as the relay says it
        await reader.readuntil(b"\r\n\r\n")
        writer.write(NOT_DELIVERED)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(not_delivered, str(tmp_path / "instance.sock"))
    address.register(65001, str(tmp_path / "instance.sock"))
    pool = UpstreamPool()
    try:
        with pytest.raises(NotSent):
            await pool.request("POST", 65001, "/mcp", {"Host": "x"}, b"{}")
    finally:
        address.forget(65001)
        pool.close()
        server.close()


def test_not_delivered_is_a_complete_http_answer() -> None:
    head, _, body = NOT_DELIVERED.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"X-Paradise-Not-Delivered: 1" in head and body == b""


async def test_a_socket_deeper_than_a_unix_path_allows_is_still_reached(tmp_path) -> None:
    """A deep data dir puts instance.sock past the 107 bytes a Unix socket's path may have: the relay binds
    and the bridge dials it through an fd of its directory."""
    from instances.sandbox_init import short_path

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "instance.sock")
    assert len(path) > 108

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    relayed = await relay(Path(short_path(path)), server.sockets[0].getsockname()[1])
    try:
        reader, writer = await asyncio.open_unix_connection(sock=await address.dial(path))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.read()).endswith(b"{}")
        writer.close()
    finally:
        relayed.close()
        server.close()
