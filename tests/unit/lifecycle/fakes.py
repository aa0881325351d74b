"""In-process runtimes that drive the lifecycle without processes or containers (after JupyterHub's
``MockSpawner`` family): each "instance" is a tiny MCP responder served by aiohttp on its leased loopback
port, so the lifecycle's real probes, pings and tool calls talk real HTTP to it.

* ``FakeRuntime``       starts at once and answers MCP; ``kill()`` makes one die like a crash.
* ``SlowRuntime``       takes ``delay`` seconds to launch.
* ``BadRuntime``        every start raises (an image that does not exist, a command that is not there).
* ``NeverReadyRuntime`` launches, but initialize is always answered 503.
* ``ExitingRuntime``    launches, then the instance exits at once with code 3.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.mcp.protocol import INSTANCE_KEY_ENV, INSTANCE_KEY_HEADER
from bridge.runtime.base import Discovered, InstanceSpec, PollResult, PortTaken, Runtime, RuntimeOperationError

_ids = itertools.count(1)


@dataclass
class FakeInstance:
    ident: int
    spec: InstanceSpec
    runner: web.AppRunner | None = None
    exit_code: int | None = None
    frozen: bool = False
    requests: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.exit_code is None


class FakeRuntime(Runtime):
    name = "fake"
    ready_status = 200
    can_pause = True

    def __init__(self) -> None:
        self.instances: dict[int, FakeInstance] = {}
        self.starts: list[str] = []  # "client/service" per launch
        self.stops = 0
        self.removed: list[str] = []
        self.take_port_once: set[int] = set()  # ports that answer "taken" on their first launch
        self.fail_poll_for: set[str] = set()  # "client/service" whose poll raises

    # ---- the contract ------------------------------------------------------------------------------

    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        if spec.port in self.take_port_once:
            self.take_port_once.discard(spec.port)
            raise PortTaken(f"port {spec.port} is already allocated")
        self.starts.append(f"{spec.client_id}/{spec.service}")
        instance = FakeInstance(next(_ids), spec)
        instance.runner = await self._serve(instance)
        self.instances[instance.ident] = instance
        await self._after_launch(instance)
        return {"fake_id": instance.ident}

    async def stop(self, state: dict[str, Any], *, grace: float = 5.0) -> None:
        instance = self.instances.get(state.get("fake_id", -1))
        if instance is None:
            return
        self.stops += 1
        await self._halt(instance, exit_code=0)
        self.instances.pop(instance.ident, None)

    async def poll(self, state: dict[str, Any]) -> PollResult:
        instance = self.instances.get(state.get("fake_id", -1))
        if instance is not None and f"{instance.spec.client_id}/{instance.spec.service}" in self.fail_poll_for:
            raise RuntimeOperationError("the engine did not answer")
        if instance is None:
            return PollResult(running=False)
        return PollResult(running=instance.running, exit_code=instance.exit_code)

    async def discover(self) -> list[Discovered]:
        return [
            Discovered(i.spec.client_id, i.spec.service, i.spec.port, {"fake_id": i.ident})
            for i in self.instances.values()
            if i.running
        ]

    async def logs(self, state: dict[str, Any], *, lines: int = 50) -> list[str]:
        instance = self.instances.get(state.get("fake_id", -1))
        return [f"fake instance {instance.ident} exited {instance.exit_code}"] if instance else []

    async def remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        await self.stop(state)
        self.removed.append(f"{client_id}/{service}")

    async def close(self) -> None:
        for instance in list(self.instances.values()):
            await self._halt(instance, exit_code=0)
        self.instances.clear()

    async def pause(self, state: dict[str, Any]) -> None:
        self.instances[state["fake_id"]].frozen = True

    async def unpause(self, state: dict[str, Any]) -> None:
        instance = self.instances.get(state.get("fake_id", -1))
        if instance is None or not instance.running:
            raise RuntimeOperationError("no such container")
        instance.frozen = False

    # ---- what tests do to instances ----------------------------------------------------------------

    def live(self, client_id: str, service: str) -> FakeInstance | None:
        for instance in self.instances.values():
            if (instance.spec.client_id, instance.spec.service) == (client_id, service) and instance.running:
                return instance
        return None

    async def kill(self, client_id: str, service: str, exit_code: int = 137) -> None:
        """The instance dies as a crash would: its port closes, its poll says it exited."""
        instance = self.live(client_id, service)
        assert instance is not None, f"no live instance of {client_id}/{service}"
        await self._halt(instance, exit_code=exit_code)

    # ---- the fake MCP server -----------------------------------------------------------------------

    async def _after_launch(self, instance: FakeInstance) -> None:
        """Subclasses change what happens once launched."""

    async def _halt(self, instance: FakeInstance, *, exit_code: int) -> None:
        if instance.exit_code is None:
            instance.exit_code = exit_code
        if instance.runner is not None:
            runner, instance.runner = instance.runner, None
            await runner.cleanup()

    async def _serve(self, instance: FakeInstance) -> web.AppRunner:
        async def mcp(request: web.Request) -> web.StreamResponse:
            if request.headers.get(INSTANCE_KEY_HEADER) != instance.spec.env.get(INSTANCE_KEY_ENV):
                return web.Response(status=401, text="no or wrong instance key")  # as the built-ins answer
            if instance.frozen:  # a frozen process answers nothing; the fake says so loudly instead
                return web.Response(status=599, text="frozen")
            if request.method == "DELETE":
                return web.Response(status=200)
            message = json.loads(await request.read())
            instance.requests.append(message.get("method", ""))
            if "id" not in message:
                return web.Response(status=202)
            if message["method"] == "initialize" and self.ready_status != 200:
                return web.Response(status=self.ready_status, text="not ready")
            result: dict[str, Any] = {}
            if message["method"] == "initialize":
                version = message["params"]["protocolVersion"]
                info = {"name": "fake", "version": "1"}
                result = {"protocolVersion": version, "capabilities": {}, "serverInfo": info}
            elif message["method"] == "tools/call":
                result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
            body = {"jsonrpc": "2.0", "id": message["id"], "result": result}
            return web.json_response(body, headers={"Mcp-Session-Id": f"s{instance.ident}"})

        app = web.Application()
        app.router.add_route("*", instance.spec.env.get("FAKE_PATH", "/mcp"), mcp)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", instance.spec.port, reuse_address=True).start()
        return runner


class SlowRuntime(FakeRuntime):
    def __init__(self, delay: float = 0.3) -> None:
        super().__init__()
        self.delay = delay

    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        return await super().start(spec)


class BadRuntime(FakeRuntime):
    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        self.starts.append(f"{spec.client_id}/{spec.service}")
        raise RuntimeOperationError(f"image for {spec.service} does not exist")


class NeverReadyRuntime(FakeRuntime):
    ready_status = 503


class ExitingRuntime(FakeRuntime):
    async def _after_launch(self, instance: FakeInstance) -> None:
        await self._halt(instance, exit_code=3)
