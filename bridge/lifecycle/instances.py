"""InstanceManager: starts, watches, stops and re-adopts instances; the hot-path view of where they are.

It is the only code that combines the store, the runtime and the catalog for one instance. Starts are
single-flight per (client, service): however many requests wake an instance at once, it starts once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.engine import Engine

from bridge import store
from bridge.catalog import ServiceSpec
from bridge.catalog.instance_spec import instance_spec
from bridge.errors import NotFound, Unavailable
from bridge.events import EventLog
from bridge.lifecycle import capacity
from bridge.lifecycle.reconcile import reconcile
from bridge.lifecycle.requirements import Requirements, workspace_notes
from bridge.mcp.client import McpToolError, ProbeFailed, mcp_call_tool, probe
from bridge.models import Instance, utcnow
from bridge.models import InstanceState as S
from bridge.observability.metrics import BridgeMetrics, observe_startup
from bridge.ports import PortAllocator
from bridge.runtime.base import InstanceSpec, PortTaken, Runtime
from bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
Key = tuple[str, str]


class StartFailed(Exception):
    def __init__(self, message: str, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.tail = tail or []


@dataclass
class ClientInfo:
    workspace: str
    profile: str


@dataclass
class Route:
    """What the proxy needs to reach one instance, kept in memory so a request never touches the DB."""

    client_id: str
    service: str
    port: int
    path: str
    transport: str
    state: str
    backend_state: dict[str, Any]
    restarts: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    last_activity: float = field(default_factory=time.monotonic)
    streams: int = 0  # SSE streams open through the proxy right now
    stopping: asyncio.Future[None] | None = None  # an idle stop under way
    restart_times: collections.deque[float] = field(default_factory=collections.deque)

    @property
    def key(self) -> Key:
        return (self.client_id, self.service)


class InstanceManager:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        engine: Engine,
        runtime: Runtime,
        catalog: dict[str, ServiceSpec],
        events: EventLog,
        http: aiohttp.ClientSession,
        ports: PortAllocator,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.runtime = runtime
        self.catalog = catalog
        self.events = events
        self.http = http
        self.ports = ports
        self.metrics = metrics
        self.requirements = Requirements(settings)
        self.routes: dict[Key, Route] = {}
        self.clients: dict[str, ClientInfo] = {}
        self._starts: dict[Key, asyncio.Task[None]] = {}

    # ---- loading and views -------------------------------------------------------------------------

    def load(self) -> None:
        with store.session(self.engine) as db:
            for client in store.list_clients(db):
                self.clients[client.id] = ClientInfo(client.workspace, client.profile)
            for row in store.list_instances(db):
                self.add_route(row)

    def refresh(self) -> None:
        """A follower bridge (another one leads) takes the database's word for every instance it is not
        starting itself: new clients appear, deleted ones go, states and ports follow the leader's."""
        with store.session(self.engine) as db:
            clients = {c.id: ClientInfo(c.workspace, c.profile) for c in store.list_clients(db)}
            rows = {(r.client_id, r.service): r for r in store.list_instances(db)}
        self.clients.clear()
        self.clients.update(clients)
        for key in [k for k in self.routes if k not in rows]:
            self.routes.pop(key)
        for key, row in rows.items():
            route = self.routes.get(key)
            starting = key in self._starts and not self._starts[key].done()
            if route is None:
                self.add_route(row)
            elif not starting:
                route.port, route.restarts = row.port, row.restarts
                route.backend_state = dict(row.backend_state or {})
                route.state = row.state
                if row.state in (S.RUNNING, S.UNHEALTHY):
                    route.ready.set()
                else:
                    route.ready.clear()

    def add_route(self, row: Instance) -> Route:
        spec = self.catalog.get(row.service)
        route = Route(
            client_id=row.client_id,
            service=row.service,
            port=row.port,
            path=spec.path if spec else "/mcp",
            transport=spec.transport if spec else "streamable-http",
            state=row.state,
            backend_state=dict(row.backend_state or {}),
            restarts=row.restarts,
        )
        if route.state == S.RUNNING:
            route.ready.set()
        self.routes[route.key] = route
        return route

    def route(self, client_id: str, service: str) -> Route:
        route = self.routes.get((client_id, service))
        if route is None:
            raise NotFound(f"client {client_id!r} has no service {service!r}")
        return route

    def spec_for(self, route: Route) -> InstanceSpec:
        client = self.clients[route.client_id]
        return instance_spec(
            self.settings, self.catalog[route.service], route.client_id, route.port, client.workspace, client.profile
        )

    # ---- state -------------------------------------------------------------------------------------

    def set_state(self, route: Route, state: S, *, step: str | None = None, **fields: Any) -> None:
        route.state = state
        if state in (S.RUNNING, S.UNHEALTHY):  # an unhealthy instance may still answer: let requests try
            route.ready.set()
        else:
            route.ready.clear()
        with store.session(self.engine) as db:
            store.update_instance(
                db, client_id=route.client_id, service=route.service, state=state, step=step, **fields
            )

    def record(self, route: Route, kind: str, message: str, level: str = "info") -> None:
        self.events.record(kind, message, level=level, client_id=route.client_id, service=route.service)

    # ---- start -------------------------------------------------------------------------------------

    def start(self, route: Route, *, restarting: bool = False, final: bool = True) -> asyncio.Future[bool]:
        """Start the instance unless a start is already under way; either way, the task to await.

        The task's result says whether the instance became ready. With ``final`` a failure leaves the
        instance ``failed``; without it (a heal that will try again) it stays ``restarting``.
        """
        task = self._starts.get(route.key)
        if self.routes.get(route.key) is not route:
            raise NotFound(f"{route.service} of {route.client_id} was removed")
        if task is None or task.done():
            # The state changes now, not when the task first runs, so capacity checks count this start.
            self.set_state(route, S.RESTARTING if restarting else S.STARTING, step="preparing")
            task = asyncio.create_task(self._start(route, final), name=f"start {route.key}")
            self._starts[route.key] = task
        return task

    async def _start(self, route: Route, final: bool) -> bool:
        began = time.monotonic()
        service = self.catalog[route.service]
        if route.stopping is not None and not route.stopping.done():
            await asyncio.shield(route.stopping)
        try:
            notes = self._notes(route, service)
            if service.requires and self.runtime.installs_on_host:
                self.set_step(route, f"installing {service.requires}")
                await self.requirements.ensure(service.requires, lambda line: self._progress(route, line))
            self.set_step(route, "launching")
            spec = self.spec_for(route)
            route.backend_state = await self._launch(spec, route)
            with store.session(self.engine) as db:
                store.update_instance(
                    db,
                    client_id=route.client_id,
                    service=route.service,
                    backend_state=route.backend_state,
                    started_at=utcnow(),
                    step="waiting for MCP initialize",
                )
            await self._await_ready(route)
            notes += await self._await_workload(route, service)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to start is the instance's state, never the bridge's crash
            tail = exc.tail if isinstance(exc, StartFailed) else await self.tail(route)
            await self.stop_quietly(route)
            if final:
                self.set_state(route, S.FAILED, last_error=str(exc), last_log=tail)
                self.record(route, "instance.failed", f"start failed: {exc}", "error")
            else:
                self.set_state(route, S.RESTARTING, step="waiting to retry", last_error=str(exc), last_log=tail)
                self.record(route, "instance.start_failed", f"start failed, will retry: {exc}", "warning")
            return False
        route.last_activity = time.monotonic()
        self.set_state(route, S.RUNNING, last_error=None, last_log=[], notes=notes)
        elapsed = time.monotonic() - began
        observe_startup(self.metrics, route.service, elapsed)
        self.record(route, "instance.ready", f"ready on 127.0.0.1:{route.port} in {elapsed:.2f}s")
        for note in notes:
            self.record(route, "instance.degraded", note, "warning")
        return True

    def set_step(self, route: Route, step: str) -> None:
        with store.session(self.engine) as db:
            store.update_instance(db, client_id=route.client_id, service=route.service, step=step)
        self.record(route, "instance.step", step)

    def _progress(self, route: Route, line: str) -> None:
        self.record(route, "instance.progress", line)

    def _notes(self, route: Route, service: ServiceSpec) -> list[str]:
        if service.requires != "serena":
            return []
        return workspace_notes(Path(self.clients[route.client_id].workspace))

    async def _await_workload(self, route: Route, service: ServiceSpec) -> list[str]:
        """The service's own readiness (e.g. Serena's language server); a failure degrades, not fails."""
        if service.ready_tool is None:
            return []
        tool = service.ready_tool
        self.set_step(route, f"waiting for {tool.name} to answer")
        try:
            await mcp_call_tool(
                self.http, route.port, route.path, tool.name, tool.arguments, timeout=tool.timeout
            )
        except (ProbeFailed, McpToolError) as exc:
            return [f"{tool.name} does not work yet: {exc}"]
        return []

    async def _launch(self, spec: InstanceSpec, route: Route) -> dict[str, Any]:
        for _ in range(3):
            try:
                return await self._launch_once(spec, route)
            except PortTaken as exc:
                spec = self._move_port(route, str(exc))
        raise StartFailed(f"no usable port after 3 tries (last {route.port})")

    def _move_port(self, route: Route, reason: str) -> InstanceSpec:
        """The leased port was taken behind our back: release it, lease the next one, remember the move."""
        old = route.port
        self.ports.release(client_id=route.client_id, service=route.service)
        route.port = self.ports.lease(client_id=route.client_id, service=route.service)
        with store.session(self.engine) as db:
            store.update_instance(db, client_id=route.client_id, service=route.service, port=route.port)
        self.record(route, "port.moved", f"port {old} was taken ({reason}); moved to {route.port}", "warning")
        return self.spec_for(route)

    async def _launch_once(self, spec: InstanceSpec, route: Route) -> dict[str, Any]:
        # Shielded: a launch that is under way finishes, so a cancelled start (a delete) can still stop it.
        launch = asyncio.ensure_future(self.runtime.start(spec))
        try:
            return await asyncio.shield(launch)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                route.backend_state = await launch
            raise

    async def _await_ready(self, route: Route) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ready_timeout
        delay, last = 0.05, "no answer yet"
        while loop.time() < deadline:
            poll = await self.runtime.poll(route.backend_state)
            if not poll.running:
                detail = f"exited with code {poll.exit_code}" if poll.exit_code is not None else "exited"
                raise StartFailed(f"{detail} before it was ready", await self.tail(route))
            try:
                await probe(self.http, route.port, route.path, route.transport, timeout=5)
                return
            except ProbeFailed as exc:
                last = str(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.1)  # refused connections are cheap: poll often, start-up time counts
        raise StartFailed(f"not ready within {self.settings.ready_timeout:.0f}s: {last}", await self.tail(route))

    async def tail(self, route: Route) -> list[str]:
        with contextlib.suppress(Exception):
            return await self.runtime.logs(route.backend_state, lines=50)
        return []

    async def stop_quietly(self, route: Route) -> None:
        with contextlib.suppress(Exception):
            await self.runtime.stop(route.backend_state, grace=self.settings.stop_grace)

    async def wait_ready(self, client_id: str, service: str) -> Route:
        """The route once its instance serves; wakes a stopped one; bounded by START_TIMEOUT."""
        route = self.route(client_id, service)
        if route.state == S.RUNNING:
            return route
        if route.state == S.FAILED:
            raise Unavailable(
                f"{service} of {client_id} has failed: {self._last_error(route)}",
                retry_after=30,
                state=route.state,
            )
        if route.state in (S.IDLE, S.STOPPED):
            await self.admit([route.service], waking=route)
            self.start(route)
            self.record(route, "instance.wake", "woken by a request")
        try:
            await asyncio.wait_for(route.ready.wait(), timeout=self.settings.start_timeout)
        except TimeoutError:
            raise Unavailable(
                f"{service} of {client_id} is not ready yet (state {route.state})", retry_after=5, state=route.state
            ) from None
        return route

    def _last_error(self, route: Route) -> str:
        with store.session(self.engine) as db:
            row = store.get_instance(db, client_id=route.client_id, service=route.service)
        return (row.last_error if row else None) or "unknown error"

    # ---- stop, restart, remove ---------------------------------------------------------------------

    async def cancel_start(self, route: Route) -> None:
        task = self._starts.pop(route.key, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def admit(self, services: list[str], *, waking: Route | None = None) -> None:
        await capacity.admit(self, services, waking=waking)

    async def idle(self, route: Route, reason: str) -> None:
        """Scale to zero: stop the instance but keep its port; the next request wakes it."""
        self.set_state(route, S.IDLE, step=None)  # first, so the monitor does not take the stop for a crash
        self.record(route, "instance.idle", reason)
        # A wake arriving while this stop runs waits for it (see _start), so the port is free again.
        route.stopping = asyncio.ensure_future(self.stop_quietly(route))
        await route.stopping

    async def restart(self, route: Route) -> None:
        # Marked first, so the health monitor does not take the stop below for a crash.
        self.set_state(route, S.RESTARTING, step="stopping")
        await self.cancel_start(route)
        await self.stop_quietly(route)
        route.restart_times.clear()  # an explicit restart forgives the crash-loop budget
        self.record(route, "instance.restart", "restart requested")
        self.start(route, restarting=True)

    async def remove(self, route: Route) -> None:
        # Out of the table first: nothing (a request, the health monitor) can start it again meanwhile.
        self.routes.pop(route.key, None)
        route.state = S.STOPPED
        route.ready.clear()
        await self.cancel_start(route)
        await self.runtime.remove(route.client_id, route.service, route.backend_state)

    async def reconcile(self) -> dict[str, list[str]]:
        return await reconcile(self)

    async def close(self) -> None:
        """Bridge shutdown: stop waiting for starts; instances keep running for the next bridge to adopt."""
        for task in list(self._starts.values()):
            task.cancel()
        await asyncio.gather(*self._starts.values(), return_exceptions=True)
