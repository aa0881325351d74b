"""InstanceManager: starts, stops, pauses, wakes, restarts and removes instances.

It combines the runtime, the catalog and the port pool for one instance; every state change it makes goes
through ``RouteTable.transition``. Starts are single-flight per (client, service): however many requests
wake an instance at once, it starts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp

from bridge.catalog import ServiceSpec
from bridge.catalog.instance_spec import instance_spec
from bridge.catalog.versions import identify, versioned
from bridge.errors import NotFound, TooManyInstances, Unavailable
from bridge.lifecycle import capacity
from bridge.lifecycle.peers import PeerLinks
from bridge.lifecycle.requirements import Requirements, serena_languages_and_notes
from bridge.lifecycle.routes import Key, Route, RouteTable
from bridge.mcp.client import McpToolError, ProbeFailed, mcp_call_tool, probe
from bridge.mcp.verify import Impostor, verify_instance
from bridge.models import InstanceState, utcnow
from bridge.observability.metrics import BridgeMetrics, observe_startup
from bridge.ports import PortAllocator
from bridge.runtime.access import has_content
from bridge.runtime.base import InstanceSpec, PortTaken, Runtime
from bridge.settings import BridgeSettings
from bridge.workspaces import verify_workspace

log = logging.getLogger(__name__)
WAKEABLE = (InstanceState.IDLE, InstanceState.STOPPED)


class StartFailed(Exception):
    def __init__(self, message: str, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.tail = tail or []


class InstanceManager:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        table: RouteTable,
        runtime: Runtime,
        catalog: dict[str, ServiceSpec],
        http: aiohttp.ClientSession,
        ports: PortAllocator,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.runtime = runtime
        self.catalog = catalog
        self.http = http
        self.ports = ports
        self.metrics = metrics
        self.requirements = Requirements(settings)
        self._starts: dict[Key, asyncio.Task[bool]] = {}
        self.current_versions: dict[str, str] = {}  # service -> its version since its last rollout (rollouts/)
        table.link_peers(PeerLinks(catalog, runtime))  # siblings' addresses and keys follow every launch

    def starting(self) -> set[Key]:
        """Routes with a start under way in this bridge (a follower's refresh must not overwrite them)."""
        return {key for key, task in self._starts.items() if not task.done()}

    def spec_for(self, route: Route) -> InstanceSpec:
        client = self.table.client(route.client_id)
        if client is None:
            raise NotFound(f"client {route.client_id!r} was removed")
        service = self.service_of(route)
        spec = instance_spec(
            self.settings, service, route.client_id, route.port, client.workspace, client.profile,
            instance_key=route.instance_key, languages=client.languages, on_host=self.runtime.installs_on_host,
        )
        peers = {r.service: r.port for r in self.table.routes(route.client_id) if r.service in service.peers}
        return dataclasses.replace(spec, peers=peers) if peers else spec

    def service_of(self, route: Route) -> ServiceSpec:
        """The catalog entry as the version the route runs (pinned, else the service's current one)."""
        service = self.catalog[route.service]
        return versioned(service, route.version or self.current_versions.get(route.service))

    # ---- start -------------------------------------------------------------------------------------

    def start(self, route: Route, *, restarting: bool = False, final: bool = True) -> asyncio.Task[bool]:
        """Start the instance unless a start is already under way; either way, the task to await.

        The task's result says whether the instance became ready. With ``final`` a failure leaves the
        instance ``failed``; without it (a heal that will try again) it stays ``restarting``.
        """
        if not self.table.holds(route):
            raise NotFound(f"{route.service} of {route.client_id} was removed")
        task = self._starts.get(route.key)
        if task is None or task.done():
            # The state changes now, not when the task first runs, so capacity checks count this start.
            state = InstanceState.RESTARTING if restarting else InstanceState.STARTING
            self.table.transition(route, state, step="preparing")
            task = asyncio.create_task(self._start(route, final), name=f"start {route.key}")
            self._starts[route.key] = task
        return task

    async def _start(self, route: Route, final: bool) -> bool:
        began = time.monotonic()
        service = self.catalog[route.service]
        if route.stopping is not None and not route.stopping.done():
            await asyncio.shield(route.stopping)  # an idle stop still frees the port: let it finish
        try:
            notes = await self._prepare(route, service)
            self.set_step(route, "launching")
            # A fresh key for every launch: whatever learnt an old one (a log, a core dump) cannot use it.
            self.table.update(route, instance_key=secrets.token_urlsafe(32))
            backend_state = await self._launch(self.spec_for(route), route)
            ran = await identify(self.runtime, self.service_of(route), self.settings)
            step = "waiting for MCP initialize"
            self.table.update(route, backend_state=backend_state, started_at=utcnow(), step=step, version_id=ran)
            await self._await_ready(route)
            notes += await self._await_workload(route, service)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to start is the instance's state, never the bridge's crash
            await self._start_failed(route, exc, final)
            return False
        if not self.table.holds(route):
            return False
        route.last_activity = time.monotonic()
        elapsed = time.monotonic() - began
        self.table.transition(
            route, InstanceState.RUNNING, last_error=None, last_log=[], notes=notes,
            event=("instance.ready", f"ready on 127.0.0.1:{route.port} in {elapsed:.2f}s"),
        )
        observe_startup(self.metrics, route.service, elapsed)
        for note in notes:
            self.table.record(route, "instance.degraded", note, "warning")
        return True

    async def _prepare(self, route: Route, service: ServiceSpec) -> list[str]:
        """Host-side requirements (Serena's virtualenv) and the notes on what the workspace lacks."""
        client = self.table.client(route.client_id)
        notes: list[str] = []
        if client is not None:  # never mount a workspace swapped since registration (WorkspaceChanged fails it)
            await asyncio.to_thread(verify_workspace, client.workspace, client.identity, self.settings)
        if service.requires == "serena" and client is not None:
            image = not self.runtime.installs_on_host  # the image carries every language pack
            client.serving, notes = await asyncio.to_thread(
                serena_languages_and_notes, Path(client.workspace), self.settings, client.languages, image=image
            )
        if service.requires and self.runtime.installs_on_host:
            self.set_step(route, f"installing {service.requires}")
            progress = lambda line: self.table.record(route, "instance.progress", line)  # noqa: E731
            await self.requirements.ensure(service.requires, progress)
        return notes

    async def _start_failed(self, route: Route, exc: Exception, final: bool) -> None:
        tail = exc.tail if isinstance(exc, StartFailed) else await self.tail(route)
        await self.stop_quietly(route)
        if not self.table.holds(route):
            return
        if final:
            self.table.transition(
                route, InstanceState.FAILED, last_error=str(exc), last_log=tail,
                event=("instance.failed", f"start failed: {exc}"), level="error",
            )
        else:
            self.table.transition(
                route, InstanceState.RESTARTING, step="waiting to retry", last_error=str(exc), last_log=tail,
                event=("instance.start_failed", f"start failed, will retry: {exc}"), level="warning",
            )

    def set_step(self, route: Route, step: str) -> None:
        self.table.update(route, step=step)
        self.table.record(route, "instance.step", step)

    async def _await_workload(self, route: Route, service: ServiceSpec) -> list[str]:
        """The service's own readiness (e.g. Serena's language server); a failure degrades, not fails."""
        if service.ready_tool is None:
            return await self._check_sees_workspace(route, service)
        tool = service.ready_tool
        self.set_step(route, f"waiting for {tool.name} to answer")
        try:
            await mcp_call_tool(
                self.http, route.port, route.path, tool.name, tool.arguments, timeout=tool.timeout,
                key=route.instance_key,
            )
        except (ProbeFailed, McpToolError) as exc:
            return [f"{tool.name} does not work yet: {exc}"]
        return await self._check_sees_workspace(route, service)

    async def _check_sees_workspace(self, route: Route, service: ServiceSpec) -> list[str]:
        """A workspace with files that the instance lists as empty is unreadable to it: fail, never serve it."""
        check, client = service.ready_check, self.table.client(route.client_id)
        if check is None or client is None or not await asyncio.to_thread(has_content, client.workspace):
            return []
        try:
            answer = await mcp_call_tool(self.http, route.port, route.path, check.name, check.arguments,
                                         timeout=check.timeout, key=route.instance_key)
        except (ProbeFailed, McpToolError) as exc:
            return [f"{check.name} does not work yet: {exc}"]
        if check.shows_nothing(answer):
            raise StartFailed(
                f"the instance sees an empty workspace: {check.name} answered {answer.strip()[:200]!r} while "
                f"{client.workspace} holds files on the host; let the instance's uid read it (chmod o+rx, "
                "setfacl -m u:UID:rx) or run the bridge as the workspace's owner", await self.tail(route),
            )
        return []

    async def _launch(self, spec: InstanceSpec, route: Route) -> dict[str, Any]:
        for _ in range(3):
            try:
                return await self._launch_once(spec, route)
            except PortTaken as exc:
                spec = await self._move_port(route, str(exc))
        raise StartFailed(f"no usable port after 3 tries (last {route.port})")

    async def _move_port(self, route: Route, reason: str) -> InstanceSpec:
        """The leased port was taken behind our back: release it, lease the next one, remember the move."""
        old = route.port
        moved = await asyncio.to_thread(self.ports.move, client_id=route.client_id, service=route.service, old=old)
        self.table.update(route, port=moved)
        self.table.record(route, "port.moved", f"port {old} was taken ({reason}); moved to {route.port}", "warning")
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
                await self.verified(route)  # the key goes only to the launch that proves it holds it
                await probe(self.http, route.port, route.path, route.transport, timeout=5, key=route.instance_key)
                return
            except Impostor as exc:
                self.table.record(route, "instance.impostor", str(exc), "error")
                raise StartFailed(f"{exc}; nothing was sent to it", await self.tail(route)) from None
            except ProbeFailed as exc:
                last = str(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.1)  # refused connections are cheap: poll often, start-up time counts
        raise StartFailed(f"not ready within {self.settings.ready_timeout:.0f}s: {last}", await self.tail(route))

    async def verified(self, route: Route, timeout: float = 5) -> None:
        """A guarded service's launch proves it holds its key (bridge/mcp/verify.py); others pass."""
        service = self.catalog.get(route.service)
        if service is not None and service.instance_key and route.instance_key:
            await verify_instance(self.http, route.port, route.path, route.instance_key, timeout=timeout)

    async def tail(self, route: Route) -> list[str]:
        with contextlib.suppress(Exception):
            return await self.runtime.logs(route.backend_state, lines=50)
        return []

    async def stop_quietly(self, route: Route) -> None:
        with contextlib.suppress(Exception):
            await self.runtime.stop(route.backend_state, grace=self.settings.stop_grace)

    # ---- wake --------------------------------------------------------------------------------------

    async def wait_ready(self, client_id: str, service: str) -> Route:
        """The route once its instance serves; wakes a sleeping one; bounded by START_TIMEOUT."""
        route = self.table.require(client_id, service)
        if route.state == InstanceState.RUNNING:
            return route
        if route.state == InstanceState.FAILED:
            reason = route.last_error or "unknown error"
            raise Unavailable(f"{service} of {client_id} has failed: {reason}", retry_after=30, state=route.state)
        if route.state == InstanceState.PAUSED:
            await self.thaw(route)
            if route.state == InstanceState.RUNNING:
                return route
        if route.state in WAKEABLE and route.key not in self.starting():
            await self.admit([route.service], waking=route)
            self.start(route)
            self.table.record(route, "instance.wake", "woken by a request")
        try:
            await asyncio.wait_for(route.ready.wait(), timeout=self.settings.start_timeout)
        except TimeoutError:
            raise Unavailable(
                f"{service} of {client_id} is not ready yet (state {route.state})", retry_after=5, state=route.state
            ) from None
        return route

    async def admit(self, services: list[str], *, waking: Route | None = None) -> None:
        """Return when starting ``services`` fits the caps (evicting with EVICT_LRU); else 429."""
        while (reason := capacity.overflow(self.table, self.catalog, self.settings, services)) is not None:
            victim = capacity.eviction_candidate(self.table, waking) if self.settings.evict_lru else None
            if victim is None:
                raise TooManyInstances(f"capacity reached: {reason}", retry_after=capacity.RETRY_AFTER)
            await self.idle(victim, f"stopped to make room ({reason})")

    # ---- stop, restart, remove ---------------------------------------------------------------------

    async def cancel_start(self, route: Route) -> None:
        task = self._starts.pop(route.key, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def pause(self, route: Route, reason: str) -> bool:
        """Freeze a running, unbusy instance (PAUSE_AFTER): memory and sessions kept, no CPU; True if frozen."""
        if not self.runtime.can_pause:
            return False
        async with route.freeze:
            if route.state != InstanceState.RUNNING or route.busy or not self.table.holds(route):
                return False
            # Marked first: a request arriving now waits for the thaw instead of reaching a frozen process.
            self.table.transition(route, InstanceState.PAUSED, event=("instance.paused", reason))
            try:
                await self.runtime.pause(route.backend_state)
            except Exception as exc:
                event = ("instance.pause_failed", f"could not pause: {exc}")
                self.table.transition(route, InstanceState.RUNNING, event=event, level="warning")
                return False
        return True

    async def thaw(self, route: Route) -> None:
        """Thaw a frozen instance for a request; one that cannot be thawed is started afresh."""
        async with route.freeze:
            if route.state != InstanceState.PAUSED:
                return
            began = time.perf_counter()
            try:
                await self.runtime.unpause(route.backend_state)
            except Exception as exc:
                event = ("instance.thaw_failed", f"could not thaw: {exc}")
                self.table.transition(route, InstanceState.RESTARTING, event=event, level="warning")
                self.start(route, restarting=True)
                return
            route.last_activity = time.monotonic()
            elapsed = (time.perf_counter() - began) * 1000
            event = ("instance.thawed", f"thawed in {elapsed:.0f} ms")
            self.table.transition(route, InstanceState.RUNNING, event=event)

    async def idle(self, route: Route, reason: str) -> None:
        """Scale to zero: stop the instance but keep its port; the next request wakes it."""
        async with route.freeze:  # never between a thaw and the state it sets
            if route.state == InstanceState.PAUSED:  # a frozen process cannot take a graceful stop: thaw it for its end
                with contextlib.suppress(Exception):
                    await self.runtime.unpause(route.backend_state)
            # First, so the monitor does not take the stop for a crash.
            self.table.transition(route, InstanceState.IDLE, event=("instance.idle", reason))
        # A wake arriving while this stop runs waits for it (see _start), so the port is free again.
        route.stopping = asyncio.ensure_future(self.stop_quietly(route))
        await route.stopping

    async def restart(self, route: Route) -> None:
        # Marked first, so the health monitor does not take the stop below for a crash.
        self.table.transition(route, InstanceState.RESTARTING, step="stopping")
        await self.cancel_start(route)
        await self.stop_quietly(route)
        route.restart_times.clear()  # an explicit restart forgives the crash-loop budget
        self.table.record(route, "instance.restart", "restart requested")
        self.start(route, restarting=True)

    async def remove(self, route: Route) -> None:
        """Cancel any start and remove what the runtime made; the caller has taken the route out of the table."""
        await self.cancel_start(route)
        await self.runtime.remove(route.client_id, route.service, route.backend_state)

    async def close(self) -> None:
        """Bridge shutdown: stop waiting for starts; instances keep running for the next bridge to adopt."""
        for task in list(self._starts.values()):
            task.cancel()
        await asyncio.gather(*self._starts.values(), return_exceptions=True)
