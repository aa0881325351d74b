"""ClientManager: the one facade that the admin API, the proxy, the dashboard and the metrics call.

Registration, deletion, tokens and views of clients here; instances are delegated to the lifecycle
(``InstanceManager``), whose every state change goes through ``RouteTable.transition``. Views and the hot
path read only memory; registration, deletion and token changes write the database from a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bridge import store
from bridge.catalog.services import refresh_catalog
from bridge.catalog.versions import DEFAULT, runs
from bridge.errors import Conflict, Invalid, NotFound
from bridge.events import EventLog
from bridge.lifecycle.health import HealthMonitor
from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.routes import ClientInfo, Route, RouteTable
from bridge.models import (
    READY,
    ClientCreate,
    ClientCreated,
    ClientView,
    InstanceState,
    InstanceView,
    PortView,
    TokenRotated,
)
from bridge.ports import PortAllocator
from bridge.settings import BridgeSettings
from bridge.workspaces import WorkspaceIdentity, refuse_overlap, resolve_workspace

DEFAULT_SERVICES = ("serena", "quality")
DEFAULT_PROFILE = "comprehensive"


def hash_token(token: str) -> str:
    """Client tokens are 256-bit random secrets, so one SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_state(engine: Engine) -> tuple[dict[str, ClientInfo], list[Any], dict[str, str]]:
    """Clients, instance rows and the token index as the database has them (blocking)."""
    with store.session(engine) as db:
        clients = store.list_clients(db)
        infos = {
            c.id: ClientInfo(
                c.workspace, c.profile, c.created_at, WorkspaceIdentity.from_json(c.workspace_identity), c.languages
            )
            for c in clients
        }
        tokens = {c.token_hash: c.id for c in clients}
        return infos, store.list_instances(db), tokens


class ClientManager:
    def __init__(
        self,
        *,
        settings: BridgeSettings,
        engine: Engine,
        ports: PortAllocator,
        instances: InstanceManager,
        events: EventLog,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.ports = ports
        self.instances = instances
        self.table: RouteTable = instances.table
        self.events = events
        self._token_index: dict[str, str] = {}  # token hash -> client id, so auth never touches the DB
        self._lock = asyncio.Lock()
        self.monitor: HealthMonitor | None = None  # set once the app has one (a follower's does not heal)
        self.on_delete: list[Callable[[str], None]] = []  # who else forgets a deleted client (its MCP sessions)
        self.on_revoke: list[Callable[[str], None]] = []  # token rotated or client deleted: end its streams now

    async def load(self) -> None:
        """Start-up, or a follower following the leader's database (see leader.py)."""
        clients, rows, tokens = await asyncio.to_thread(read_state, self.engine)
        self.table.load(clients, rows, keep=self.instances.starting())
        gone = {c for h, c in self._token_index.items() if tokens.get(h) != c}  # rotated or deleted elsewhere
        self._token_index = tokens
        for client_id in gone:
            for revoke in self.on_revoke:
                revoke(client_id)

    refresh = load

    # ---- auth and the hot path ---------------------------------------------------------------------

    def authenticate(self, token: str) -> str | None:
        """The id of the client owning this token, or None."""
        # Lookup by digest: the secret itself is never compared, so its timing reveals nothing useful.
        return self._token_index.get(hash_token(token))

    def exists(self, client_id: str) -> bool:
        return self.table.client(client_id) is not None

    def route(self, client_id: str, service: str) -> Route:
        """The route of one instance (404 for an unknown one); no database access."""
        return self.table.require(client_id, service)

    async def wait_ready(self, client_id: str, service: str) -> Route:
        return await self.instances.wait_ready(client_id, service)

    async def recover(self, route: Route) -> bool:
        """A request could not reach ``route``'s instance: check it now; True when it does not serve."""
        if self.monitor is None:
            return route.state not in READY
        return await self.monitor.check_now(route)

    def routes(self) -> list[Route]:
        return self.table.routes()

    def client_ids(self) -> list[str]:
        return self.table.client_ids()

    # ---- registration ------------------------------------------------------------------------------

    def _validate(self, req: ClientCreate) -> tuple[Path, WorkspaceIdentity, list[str]]:
        """The services, and the workspace resolved with its identity; 422 for anything not allowed (blocking)."""
        catalog = self.instances.catalog
        refresh_catalog(catalog, self.settings.catalog, self.settings.data_dir)  # what `catalog add` wrote since
        services = req.services or [s for s in DEFAULT_SERVICES if s in catalog]
        unknown = [s for s in services if s not in catalog]
        if unknown:
            known = ", ".join(sorted(catalog))
            raise Invalid(f"unknown service(s): {', '.join(unknown)} (known: {known})", field="services")
        workspace, identity = resolve_workspace(req.workspace, self.settings)
        return workspace, identity, services

    async def register(self, req: ClientCreate, *, wait: float = 0) -> ClientCreated:
        workspace, identity, services = await asyncio.to_thread(self._validate, req)
        profile = req.profile or DEFAULT_PROFILE
        token = secrets.token_urlsafe(32)
        async with self._lock:
            if self.exists(req.client_id):
                raise Conflict(f"client {req.client_id!r} already exists", client_id=req.client_id)
            if not self.settings.shared_workspaces:
                refuse_overlap(workspace, ((c, self.table.client(c).workspace) for c in self.table.client_ids()))
            await self.instances.admit(services)
            rows, created_at = await asyncio.to_thread(
                self._persist_client, req.client_id, str(workspace), identity, profile, hash_token(token), services,
                req.languages,
            )
            self._token_index[hash_token(token)] = req.client_id
            info = ClientInfo(str(workspace), profile, created_at, identity, req.languages)
            self.table.add_client(req.client_id, info)
            routes = [self.table.add_route(row) for row in rows]
        self.events.record(
            "client.registered",
            f"registered with workspace {workspace}, services {', '.join(services)}",
            client_id=req.client_id,
        )
        starts = [self.instances.start(route) for route in routes]
        if wait > 0:
            await asyncio.wait(starts, timeout=wait)
        view = self.view(req.client_id)
        return ClientCreated(**view.model_dump(), token=token, mcp_config=self.mcp_config(req.client_id))

    def _persist_client(
        self,
        client_id: str,
        workspace: str,
        identity: WorkspaceIdentity,
        profile: str,
        token_hash: str,
        services: list[str],
        languages: list[str] | None = None,
    ) -> tuple[list[Any], Any]:
        """Lease the ports and write the client with its instances, all or nothing (blocking)."""
        leased: dict[str, int] = {}
        try:
            for service in services:
                leased[service] = self.ports.lease(client_id=client_id, service=service)
            with store.session(self.engine) as db:
                client = store.add_client(
                    db, client_id=client_id, workspace=workspace, profile=profile, token_hash=token_hash,
                    workspace_identity=identity.as_json(), languages=languages,
                )
                rows = [store.add_instance(db, client_id=client_id, service=s, port=p) for s, p in leased.items()]
                return rows, client.created_at
        except Exception:
            self.ports.release(client_id=client_id)
            raise

    # ---- changes -----------------------------------------------------------------------------------

    async def delete(self, client_id: str) -> bool:
        """Stop and remove the client's instances, release its ports, forget it. False if it was unknown."""
        async with self._lock:
            # Out of the table first: nothing (a request, the health monitor) can start them again meanwhile.
            routes = self.table.drop_client(client_id)
            for revoke in self.on_revoke:
                revoke(client_id)
            for route in routes:
                await self.instances.remove(route)
            self._token_index = {h: c for h, c in self._token_index.items() if c != client_id}
            for forget in self.on_delete:
                forget(client_id)
            await self.table.writer.flush()  # no queued write of these rows may land after the delete
            released, known = await asyncio.to_thread(self._forget_client, client_id)
        if known:
            ports = ", ".join(map(str, released)) or "none"
            self.events.record("client.deleted", f"deleted; released ports {ports}", client_id=client_id)
        return known

    def _forget_client(self, client_id: str) -> tuple[list[int], bool]:
        released = self.ports.release(client_id=client_id)
        with store.session(self.engine) as db:
            known = store.get_client(db, client_id=client_id) is not None
            store.delete_client(db, client_id=client_id)
        return released, known

    async def restart(self, client_id: str) -> ClientView:
        self.require(client_id)
        for route in self.table.routes(client_id):
            await self.instances.restart(route)
        return self.view(client_id)

    async def rotate_token(self, client_id: str) -> TokenRotated:
        self.require(client_id)
        token = secrets.token_urlsafe(32)

        def write() -> None:
            with store.session(self.engine) as db:
                store.set_token_hash(db, client_id=client_id, token_hash=hash_token(token))

        await asyncio.to_thread(write)
        self._token_index = {h: c for h, c in self._token_index.items() if c != client_id}
        self._token_index[hash_token(token)] = client_id
        for revoke in self.on_revoke:
            revoke(client_id)
        self.events.record("client.token_rotated", "token rotated; the old one no longer works", client_id=client_id)
        return TokenRotated(client_id=client_id, token=token, mcp_config=self.mcp_config(client_id))

    # ---- views (memory only) -----------------------------------------------------------------------

    def require(self, client_id: str) -> ClientInfo:
        client = self.table.client(client_id)
        if client is None:
            raise NotFound(f"no client {client_id!r}", client_id=client_id)
        return client

    def _instance_view(self, route: Route) -> InstanceView:
        return InstanceView(
            service=route.service,
            state=route.state,
            port=route.port,
            url=f"{self.settings.public_url}/c/{route.client_id}/{route.service}/mcp",
            restarts=route.restarts,
            step=route.step if route.state != InstanceState.RUNNING else None,
            last_error=route.last_error,
            last_log=route.last_log,
            notes=route.notes,
            last_probe_at=route.last_probe_at,
            last_probe_ms=route.last_probe_ms,
            started_at=route.started_at,
            version=self._version(route),
            version_id=route.version_id,
        )

    def _version(self, route: Route) -> str:
        spec = self.instances.catalog.get(route.service)
        pinned = route.version or self.instances.current_versions.get(route.service)
        return runs(spec, pinned) if spec is not None else pinned or DEFAULT

    def view(self, client_id: str) -> ClientView:
        client = self.require(client_id)
        routes = sorted(self.table.routes(client_id), key=lambda r: r.service)
        return ClientView(
            client_id=client_id,
            workspace=client.workspace,
            profile=client.profile,
            languages=client.languages if client.languages is not None else client.serving,
            created_at=client.created_at,
            instances=[self._instance_view(r) for r in routes],
        )

    def list(self) -> list[ClientView]:
        return [self.view(client_id) for client_id in self.table.client_ids()]

    def mcp_config(self, client_id: str) -> dict[str, Any]:
        """The ``.mcp.json`` block for Claude Code; the token stays in an environment variable."""
        self.require(client_id)
        servers = {}
        for route in sorted(self.table.routes(client_id), key=lambda r: r.service):
            servers[f"paradise-{route.service}"] = {
                "type": "http",
                "url": f"{self.settings.public_url}/c/{client_id}/{route.service}/mcp",
                "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"},
            }
        return {"mcpServers": servers}

    async def leases(self) -> list[PortView]:
        def read() -> list[PortView]:
            with store.session(self.engine) as db:
                return [PortView.model_validate(lease, from_attributes=True) for lease in store.list_leases(db)]

        return await asyncio.to_thread(read)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.instances.close()
        await self.table.writer.flush()
        self.table.writer.close()
