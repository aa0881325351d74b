"""Instances in the bridge's own process: each launch is the real fixture MCP server (tests/fixtures/mcp_server.py,
the official SDK's Streamable HTTP or SSE app) served by uvicorn on the leased loopback port, in the event loop
the bridge runs in. The bridge's proxy, probes and session replay talk real HTTP and real MCP to it.

It is the lifecycle's ``FakeRuntime`` (tests/unit/lifecycle/fakes.py) with a real server inside, so the same
things a test does to an instance work: ``kill()`` ends it as a crash would (its port closes, its open
connections are cut, its poll says it exited). The fixture catalog's modes (``--mode`` in the service's
command) are kept: ``crash`` exits at once with code 3, ``never-ready`` accepts and never answers,
``slow-start`` listens after ``--delay`` seconds, ``legacy-sse`` serves the old HTTP+SSE transport,
``crash-after`` serves, then exits with code 4. A tool that freezes its server (``freeze``) or kills its own
process (the dying tools) does so to its launch only: the launch stops answering, or dies mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from typing import Any

import uvicorn

from bridge.runtime.base import InstanceSpec, PortTaken
from bridge.runtime.sandbox import instance_environment
from tests.fixtures.mcp_server import Host, build_server
from tests.unit.lifecycle.fakes import FakeInstance, FakeRuntime

EXIT_CODES = {"crash": 3, "crash-after": 4}  # as the fixture server's process exits
STOP_BOUND = 10.0  # a bound on a launch's shutdown, not a timing claim


def fixture_mode(spec: InstanceSpec) -> tuple[str, float]:
    """The fixture server's ``--mode`` and ``--delay`` from the service's command (defaults as its CLI's)."""
    args = list(spec.command or [])

    def value(flag: str, default: str) -> str:
        return args[args.index(flag) + 1] if flag in args[:-1] else default

    return value("--mode", "normal"), float(value("--delay", "3.0"))


def bind(port: int) -> socket.socket:
    """The leased port, bound now (a process listens before it answers); PortTaken when someone holds it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise PortTaken(f"port {port} is already allocated ({exc.strerror})") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Launch:
    """One launch of the fixture server: what the runtime ends on stop or crash (``cleanup``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, lines: list[str]) -> None:
        self.loop = loop
        self.lines = lines  # the launch's output, as the process runtime's log would keep it
        self.thawed = asyncio.Event()  # cleared: frozen (paused, or hung by the freeze tool)
        self.thawed.set()
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.held: list[asyncio.StreamWriter] = []  # never-ready: connections accepted and never answered
        self.listener: asyncio.Server | None = None

    def serve(self, app: Any, sock: socket.socket) -> None:
        async def gate(scope: dict, receive: Any, send: Any) -> None:
            await self.thawed.wait()  # a frozen process answers nothing
            await app(scope, receive, send)

        config = uvicorn.Config(gate, log_config=None, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.task = self.loop.create_task(self.server.serve(sockets=[sock]), name="in-process instance")

    async def hold(self, sock: socket.socket) -> None:
        async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.held.append(writer)

        self.listener = await asyncio.start_server(never_answer, sock=sock)

    def cut(self) -> None:
        """What a SIGKILL does at once: nothing listens any more, every open connection is cut."""
        if self.server is not None:
            self.server.should_exit = True
            for server in self.server.servers:
                server.close()
            for connection in list(self.server.server_state.connections):
                connection.transport.abort()
            for task in list(self.server.server_state.tasks):
                task.cancel()
        if self.listener is not None:
            self.listener.close()
        for writer in self.held:
            writer.transport.abort()
        self.thawed.set()

    async def cleanup(self) -> None:
        self.cut()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), STOP_BOUND)
            except TimeoutError:
                self.server.force_exit = True  # type: ignore[union-attr]
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


class McpRuntime(FakeRuntime):
    """FakeRuntime whose instances are real MCP servers in this process (see the module's docstring)."""

    name = "inprocess"
    installs_on_host = True  # as the process runtime: the service's command (its --mode) is given to start()

    def __init__(self) -> None:
        super().__init__()
        self.output: dict[int, list[str]] = {}  # each launch's lines, kept after it exits

    async def _serve(self, instance: FakeInstance) -> Any:
        spec = instance.spec
        mode, delay = fixture_mode(spec)
        loop = asyncio.get_running_loop()
        launch = Launch(loop, [f"fixture server mode={mode} port={spec.port}"])
        self.output[instance.ident] = launch.lines
        if mode == "crash":
            launch.lines.append("crashing on purpose")
            return launch
        if mode == "slow-start":
            launch.task = loop.create_task(self._start_late(instance, launch, delay), name="slow instance")
            return launch
        sock = bind(spec.port)
        if mode == "never-ready":
            await launch.hold(sock)
            return launch
        launch.serve(self._app(instance, launch, mode), sock)
        if mode == "crash-after":
            loop.call_later(delay, self._crash_after, instance, launch)
        return launch

    async def _after_launch(self, instance: FakeInstance) -> None:
        if fixture_mode(instance.spec)[0] == "crash":
            await self._halt(instance, exit_code=EXIT_CODES["crash"])

    async def _start_late(self, instance: FakeInstance, launch: Launch, delay: float) -> None:
        await asyncio.sleep(delay)
        if instance.running:
            launch.serve(self._app(instance, launch, "normal"), bind(instance.spec.port))

    def _crash_after(self, instance: FakeInstance, launch: Launch) -> None:
        if instance.running and instance.runner is launch:
            launch.lines.append("crashing after serving")
            self._crash(instance, EXIT_CODES["crash-after"])

    def _crash(self, instance: FakeInstance, exit_code: int) -> None:
        """The instance dies now (its connections cut at once); its shutdown finishes in the background."""
        if instance.exit_code is None:
            instance.exit_code = exit_code
        launch, instance.runner = instance.runner, None
        if launch is not None:
            launch.cut()
            asyncio.get_running_loop().create_task(launch.cleanup(), name="in-process instance exit")

    def _app(self, instance: FakeInstance, launch: Launch, mode: str) -> Any:
        loop = launch.loop

        def die() -> None:  # called from the tool's worker thread: the launch dies before it can answer
            done = asyncio.run_coroutine_threadsafe(self._die(instance), loop)
            done.result(timeout=STOP_BOUND)
            raise RuntimeError("this instance died under the call")

        async def freeze(seconds: float) -> None:
            launch.thawed.clear()
            await asyncio.sleep(seconds)
            launch.thawed.set()

        # The environment the process runtime gives an instance (an allow-list, never the bridge's own).
        env = instance_environment(instance.spec, instance.spec.instance_dir / "home")
        host = Host(env=env, boot=uuid.uuid4().hex, pid=instance.ident, die=die, freeze=freeze)
        server = build_server(host)
        if mode == "legacy-sse":
            return server.sse_app(host="127.0.0.1")
        return server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")

    async def _die(self, instance: FakeInstance) -> None:
        self._crash(instance, exit_code=9)

    async def logs(self, state: dict[str, Any], *, lines: int = 50) -> list[str]:
        instance = self.instances.get(state.get("fake_id", -1))
        if instance is None:
            return []
        return self.output.get(instance.ident, [])[-lines:]

    # Pausing (PAUSE_AFTER) freezes the launch as SIGSTOP would: connections accepted, nothing answered.

    async def pause(self, state: dict[str, Any]) -> None:
        await super().pause(state)
        launch = self.instances[state["fake_id"]].runner
        if launch is not None:
            launch.thawed.clear()

    async def unpause(self, state: dict[str, Any]) -> None:
        await super().unpause(state)
        launch = self.instances[state["fake_id"]].runner
        if launch is not None:
            launch.thawed.set()
