"""The in-memory truth about every instance, and the one place its state changes: ``RouteTable.transition``.

A ``Route`` is what the proxy needs to reach one instance plus what a view shows of it, kept in memory so
that a request never touches the database. The ``RouteTable`` owns every route and every client's
registration; whatever changes an instance's state (start, health, reconcile, idle, pause, wake, restart)
calls ``transition()``, which checks the change is allowed, sets the ready flag, records the event and
persists the row. Persistence is write-behind through one ordered worker thread (``StateWriter``), so the
event loop never waits for the database and writes land in the order they were made.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from bridge import store
from bridge.errors import NotFound
from bridge.events import EventLog
from bridge.models import ALLOWED, READY, Instance, InstanceState, utcnow
from bridge.runtime import address
from bridge.workspaces import WorkspaceIdentity

log = logging.getLogger(__name__)
Key = tuple[str, str]

# Row fields a route mirrors in memory (so views and the hot path never read the database).
# Fields whose change alters what a client's other routes are told of this one (lifecycle/peers.py).
_RELINK = frozenset({"state", "port", "instance_key"})
MIRRORED = ("port", "restarts", "step", "last_error", "last_log", "notes", "last_probe_at", "last_probe_ms",
            "started_at", "backend_state", "instance_key", "version", "version_id")


def _reach(route: Route) -> None:
    """Where the bridge reaches the route's instance: a sandbox's socket, when its launch recorded one
    (bridge/runtime/address.py); else its port on 127.0.0.1."""
    socket = (route.backend_state or {}).get("socket")
    if socket:
        address.register(route.port, socket)


class IllegalTransition(Exception):
    """A state change the lifecycle does not allow: a bug in the caller, never a user's error."""


@dataclass
class ClientInfo:
    workspace: str
    profile: str
    created_at: datetime = field(default_factory=utcnow)
    identity: WorkspaceIdentity | None = None  # the workspace as registered; checked before every start
    languages: list[str] | None = None  # Serena's languages as registered; None: detected at each start
    serving: list[str] | None = None  # the languages Serena served at its last start (registered or detected)


@dataclass
class Route:
    client_id: str
    service: str
    port: int
    path: str
    transport: str
    state: InstanceState
    backend_state: dict[str, Any]
    restarts: int = 0
    step: str | None = None
    last_error: str | None = None
    last_log: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_probe_at: datetime | None = None
    last_probe_ms: float | None = None
    started_at: datetime | None = None
    instance_key: str | None = None  # this launch's secret; the instance accepts only requests that carry it
    version: str | None = None  # the catalog version pinned by a rollout; None: the service's current one
    version_id: str | None = None  # what this launch runs (bridge/catalog/versions.py)
    # Extra upstream headers precomputed off the hot path (e.g. how to reach a sibling instance); usually empty.
    peer_headers: dict[str, str] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    last_activity: float = field(default_factory=time.monotonic)
    streams: int = 0  # SSE streams open through the proxy right now
    busy: int = 0  # requests in flight other than listening GET streams: a busy instance is never frozen
    freeze: asyncio.Lock = field(default_factory=asyncio.Lock)  # pause and thaw one at a time, in order
    stopping: asyncio.Future[None] | None = None  # an idle stop under way
    restart_times: collections.deque[float] = field(default_factory=collections.deque)

    @property
    def key(self) -> Key:
        return (self.client_id, self.service)

    @property
    def is_ready(self) -> bool:
        return self.state in READY

    @property
    def incarnation(self) -> str:
        """Names this launch of the instance: a new one (restart, crash, wake) has forgotten every session."""
        # Naive and to the microsecond: a database may hand back the time without its zone after a reload.
        return self.started_at.replace(tzinfo=None).isoformat(timespec="microseconds") if self.started_at else ""


class StateWriter:
    """Database writes of instance rows, in order, on one worker thread; ``flush()`` waits for them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-writer")

    def update(self, client_id: str, service: str, fields: dict[str, Any]) -> None:
        self._pool.submit(self._write, client_id, service, fields)

    def submit(self, what: str, write: Callable[[Any], None]) -> None:
        """Any other write, ``write(db)`` in a session of its own, in the same order as the rest."""
        self._pool.submit(self._run, what, write)

    def _run(self, what: str, write: Callable[[Any], None]) -> None:
        try:
            with store.session(self.engine) as db:
                write(db)
        except Exception:
            log.exception("could not persist %s", what)

    def _write(self, client_id: str, service: str, fields: dict[str, Any]) -> None:
        try:
            with store.session(self.engine) as db:
                store.update_instance(db, client_id=client_id, service=service, **fields)
        except Exception:  # the memory is the truth meanwhile; the next write of this row carries it again
            log.exception("could not persist %s/%s: %s", client_id, service, sorted(fields))

    async def flush(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class RouteTable:
    """Every client and instance this bridge knows, and the one ``transition()`` of their states."""

    def __init__(self, engine: Engine, events: EventLog, describe: Callable[[str], tuple[str, str]]) -> None:
        self.engine = engine
        self.events = events
        self.writer = StateWriter(engine)
        self._describe = describe  # service -> (MCP path, transport), from the catalog
        self._routes: dict[Key, Route] = {}
        self._clients: dict[str, ClientInfo] = {}
        # Recomputes a client's routes' ``peer_headers`` (lifecycle/peers.py); None until the manager links it.
        self._link_peers: Callable[[list[Route]], None] | None = None
        # service -> why it is gone (bridge/catalog_watch.py): its routes' 404 says so instead of "no service"
        self.retired: dict[str, str] = {}

    # ---- reading -----------------------------------------------------------------------------------

    def get(self, client_id: str, service: str) -> Route | None:
        return self._routes.get((client_id, service))

    def require(self, client_id: str, service: str) -> Route:
        route = self._routes.get((client_id, service))
        if route is None:
            why = f": {self.retired[service]}" if service in self.retired else ""
            raise NotFound(f"client {client_id!r} has no service {service!r}{why}")
        return route

    def holds(self, route: Route) -> bool:
        """True while ``route`` is still the table's (not removed, not replaced)."""
        return self._routes.get(route.key) is route

    def routes(self, client_id: str | None = None) -> list[Route]:
        return [r for r in self._routes.values() if client_id is None or r.client_id == client_id]

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes.values()))

    def client(self, client_id: str) -> ClientInfo | None:
        return self._clients.get(client_id)

    def client_ids(self) -> list[str]:
        return sorted(self._clients)

    # ---- peers -------------------------------------------------------------------------------------

    def link_peers(self, link: Callable[[list[Route]], None]) -> None:
        """From now on keep every route's ``peer_headers`` current with ``link`` (called with one client's
        routes whenever one of them changes state, port or key)."""
        self._link_peers = link
        for client_id in {route.client_id for route in self._routes.values()}:
            self._relink(client_id)

    def _relink(self, client_id: str) -> None:
        if self._link_peers is not None:
            self._link_peers(self.routes(client_id))

    # ---- registration ------------------------------------------------------------------------------

    def add_client(self, client_id: str, info: ClientInfo) -> None:
        self._clients[client_id] = info

    def drop_client(self, client_id: str) -> list[Route]:
        """Forget the client and its routes (marked stopped, so nothing waits on them); returns the routes."""
        self._clients.pop(client_id, None)
        gone = self.routes(client_id)
        for route in gone:
            self.transition(route, InstanceState.STOPPED)  # whoever waits on it (a request, a start) sees it end
            self._routes.pop(route.key)
        return gone

    def drop_route(self, route: Route) -> bool:
        """Forget one route (its service left the catalog), marked stopped so nothing waits on it; False when
        the table no longer holds it."""
        if not self.holds(route):
            return False
        self.transition(route, InstanceState.STOPPED)
        self._routes.pop(route.key)
        self._relink(route.client_id)
        return True

    def add_route(self, row: Instance) -> Route:
        path, transport = self._describe(row.service)
        route = Route(
            client_id=row.client_id,
            service=row.service,
            port=row.port,
            path=path,
            transport=transport,
            state=InstanceState(row.state),
            backend_state=dict(row.backend_state or {}),
        )
        self._mirror(route, row)
        if route.state == InstanceState.RUNNING:  # an unhealthy one waits for its first probe after a reload
            route.ready.set()
        self._routes[route.key] = route
        self._relink(route.client_id)
        return route

    def _mirror(self, route: Route, row: Instance) -> None:
        for name in MIRRORED:
            value = getattr(row, name)
            setattr(route, name, list(value or []) if name in ("last_log", "notes") else value)
        route.backend_state = dict(row.backend_state or {})
        _reach(route)  # a follower proxies too: it learns a sandbox's socket from the row

    def load(self, clients: dict[str, ClientInfo], rows: list[Instance], *, keep: set[Key] = frozenset()) -> None:
        """Take the database's word (start-up, or a follower refreshing), except for routes in ``keep``."""
        self._clients = dict(clients)
        wanted = {(r.client_id, r.service): r for r in rows}
        for key in [k for k in self._routes if k not in wanted]:
            self._routes.pop(key)
        for key, row in wanted.items():
            route = self._routes.get(key)
            if route is None:
                self.add_route(row)
            elif key not in keep:
                self._mirror(route, row)
                route.state = InstanceState(row.state)
                self._set_ready(route)
        for client_id in {client for client, _ in wanted}:
            self._relink(client_id)  # a peer's new launch (port, key) seen in the database

    # ---- changing ----------------------------------------------------------------------------------

    def transition(
        self,
        route: Route,
        state: InstanceState,
        *,
        event: tuple[str, str] | None = None,
        level: str = "info",
        **fields: Any,
    ) -> None:
        """Move ``route`` to ``state``: check, set the ready flag, mirror and persist ``fields``, record ``event``.

        ``step`` is cleared unless given. Raises IllegalTransition for a change the lifecycle does not allow.
        """
        if state != route.state and state not in ALLOWED[route.state]:
            raise IllegalTransition(f"{route.client_id}/{route.service}: {route.state} -> {state}")
        route.state = state
        self._set_ready(route)
        fields.setdefault("step", None)
        self.update(route, state=state, **fields)
        if event is not None:
            self.record(route, *event, level=level)

    def update(self, route: Route, **fields: Any) -> None:
        """Mirror and persist fields of the route that are not its state (probe times, step, port...)."""
        for name, value in fields.items():
            if name in MIRRORED:
                setattr(route, name, value)
        if _RELINK.intersection(fields):  # whether, where and with which key a sibling reaches it changed
            self._relink(route.client_id)
        if "backend_state" in fields or "port" in fields:
            _reach(route)
        if self.holds(route):  # a removed route's row is gone; writing it would do nothing but noise
            self.writer.update(route.client_id, route.service, fields)

    def record(self, route: Route, kind: str, message: str, level: str = "info") -> None:
        self.events.record(kind, message, level=level, client_id=route.client_id, service=route.service)

    @staticmethod
    def _set_ready(route: Route) -> None:
        if route.state in READY:
            route.ready.set()
        else:
            route.ready.clear()
