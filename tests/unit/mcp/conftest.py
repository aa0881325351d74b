"""Real MCP servers of the official SDK (the fixture server's tools), served by uvicorn in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import uvicorn
from starlette.types import ASGIApp

from instances.keyguard import guard
from tests.fixtures.mcp_server import build_server


@dataclass
class ServedApp:
    port: int
    path: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(app: ASGIApp, path: str) -> ServedApp:
    """Serve ``app`` on a free loopback port until stop(); waits (bounded) until it listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"mcp-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the MCP server on port {port} did not start")
        time.sleep(0.02)
    return ServedApp(port, path, server, thread)


@pytest.fixture(scope="module")
def sdk_server() -> Iterator[Callable[..., ServedApp]]:
    """A factory of SDK servers: streamable (SSE or JSON answers, stateful or stateless) or the old HTTP+SSE,
    optionally behind the instance-key guard of the built-in instances."""
    started: list[ServedApp] = []

    def make(
        *, kind: str = "streamable", json_response: bool = False, stateless: bool = False, key: str | None = None
    ) -> ServedApp:
        mcp = build_server()
        if kind == "sse":
            app, path = mcp.sse_app(), "/sse"
        else:
            app, path = mcp.streamable_http_app(json_response=json_response, stateless_http=stateless), "/mcp"
        served = serve(guard(app, key) if key else app, path)  # with a key: as the built-in instances run
        started.append(served)
        return served

    yield make
    for served in started:
        served.stop()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a frozen server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


@dataclass
class Recorder:
    """The HTTP method of every request an aiohttp session made, in order."""

    methods: list[str] = field(default_factory=list)
    connections: int = 0  # TCP connections opened (a kept-alive one is reused instead)

    def count(self, method: str) -> int:
        return self.methods.count(method)


@pytest.fixture
async def http() -> AsyncIterator[tuple[aiohttp.ClientSession, Recorder]]:
    recorder = Recorder()
    trace = aiohttp.TraceConfig()

    async def on_start(_session: object, _ctx: object, params: aiohttp.TraceRequestStartParams) -> None:
        recorder.methods.append(params.method)

    async def on_connect(_session: object, _ctx: object, _params: object) -> None:
        recorder.connections += 1

    trace.on_request_start.append(on_start)
    trace.on_connection_create_end.append(on_connect)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session, recorder
