"""ClientManager: registration, deletion, tokens and views of clients; delegates instances to InstanceManager.

Together with ``lifecycle.InstanceManager`` it is the only code that combines store, ports and runtime.
Handlers in ``api`` and ``proxy`` call these methods and nothing below them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bridge import store
from bridge.errors import Conflict, Invalid, NotFound
from bridge.events import EventLog
from bridge.lifecycle.instances import ClientInfo, InstanceManager
from bridge.models import (
    Client,
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

DEFAULT_SERVICES = ("serena", "quality")
DEFAULT_PROFILE = "comprehensive"


def hash_token(token: str) -> str:
    """Client tokens are 256-bit random secrets, so one SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


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
        self.events = events
        self._token_index: dict[str, str] = {}  # token hash -> client id, so auth never touches the DB
        self._lock = asyncio.Lock()

    def load(self) -> None:
        self.instances.load()
        self._load_tokens()

    def refresh(self) -> None:
        """Follow changes other bridges made to the shared database (see leader.py)."""
        self.instances.refresh()
        self._load_tokens()

    def _load_tokens(self) -> None:
        with store.session(self.engine) as db:
            self._token_index = {c.token_hash: c.id for c in store.list_clients(db)}

    # ---- auth --------------------------------------------------------------------------------------

    def authenticate(self, token: str) -> str | None:
        """The id of the client owning this token, or None."""
        # Lookup by digest: the secret itself is never compared, so its timing reveals nothing useful.
        return self._token_index.get(hash_token(token))

    def exists(self, client_id: str) -> bool:
        return client_id in self.instances.clients

    # ---- registration ------------------------------------------------------------------------------

    def _validate(self, req: ClientCreate) -> tuple[Path, list[str]]:
        services = req.services or [s for s in DEFAULT_SERVICES if s in self.instances.catalog]
        unknown = [s for s in services if s not in self.instances.catalog]
        if unknown:
            known = ", ".join(sorted(self.instances.catalog))
            raise Invalid(f"unknown service(s): {', '.join(unknown)} (known: {known})", field="services")
        workspace = Path(req.workspace).expanduser()
        if not workspace.is_absolute():
            raise Invalid(f"workspace must be an absolute path, got {req.workspace!r}", field="workspace")
        if not workspace.exists():
            raise Invalid(f"workspace {workspace} does not exist", field="workspace")
        if not workspace.is_dir():
            raise Invalid(f"workspace {workspace} is not a directory", field="workspace")
        return workspace.resolve(), services

    async def register(self, req: ClientCreate, *, wait: float = 0) -> ClientCreated:
        workspace, services = self._validate(req)
        profile = req.profile or DEFAULT_PROFILE
        token = secrets.token_urlsafe(32)
        async with self._lock:
            if self.exists(req.client_id):
                raise Conflict(f"client {req.client_id!r} already exists", client_id=req.client_id)
            await self.instances.admit(services)
            leased = self._lease_all(req.client_id, services)
            try:
                with store.session(self.engine) as db:
                    store.add_client(
                        db,
                        client_id=req.client_id,
                        workspace=str(workspace),
                        profile=profile,
                        token_hash=hash_token(token),
                    )
                    rows = [
                        store.add_instance(db, client_id=req.client_id, service=s, port=p)
                        for s, p in leased.items()
                    ]
            except Exception:
                self.ports.release(client_id=req.client_id)
                raise
            self._token_index[hash_token(token)] = req.client_id
            self.instances.clients[req.client_id] = ClientInfo(str(workspace), profile)
            routes = [self.instances.add_route(row) for row in rows]
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

    def _lease_all(self, client_id: str, services: list[str]) -> dict[str, int]:
        leased: dict[str, int] = {}
        try:
            for service in services:
                leased[service] = self.ports.lease(client_id=client_id, service=service)
        except Exception:
            self.ports.release(client_id=client_id)
            raise
        return leased

    # ---- changes -----------------------------------------------------------------------------------

    async def delete(self, client_id: str) -> bool:
        """Stop and remove the client's instances, release its ports, forget it. False if it was unknown."""
        async with self._lock:
            routes = [r for r in self.instances.routes.values() if r.client_id == client_id]
            for route in routes:
                await self.instances.remove(route)
            released = self.ports.release(client_id=client_id)
            with store.session(self.engine) as db:
                known = store.get_client(db, client_id=client_id) is not None
                store.delete_client(db, client_id=client_id)
            self._token_index = {h: c for h, c in self._token_index.items() if c != client_id}
            self.instances.clients.pop(client_id, None)
        if known:
            ports = ", ".join(map(str, released)) or "none"
            self.events.record("client.deleted", f"deleted; released ports {ports}", client_id=client_id)
        return known

    async def restart(self, client_id: str) -> ClientView:
        self.require(client_id)
        for route in [r for r in self.instances.routes.values() if r.client_id == client_id]:
            await self.instances.restart(route)
        return self.view(client_id)

    def rotate_token(self, client_id: str) -> TokenRotated:
        self.require(client_id)
        token = secrets.token_urlsafe(32)
        with store.session(self.engine) as db:
            store.set_token_hash(db, client_id=client_id, token_hash=hash_token(token))
        self._token_index = {h: c for h, c in self._token_index.items() if c != client_id}
        self._token_index[hash_token(token)] = client_id
        self.events.record("client.token_rotated", "token rotated; the old one no longer works", client_id=client_id)
        return TokenRotated(client_id=client_id, token=token, mcp_config=self.mcp_config(client_id))

    # ---- views -------------------------------------------------------------------------------------

    def require(self, client_id: str) -> None:
        if not self.exists(client_id):
            raise NotFound(f"no client {client_id!r}", client_id=client_id)

    def _client_view(self, client: Client, rows: list[Any]) -> ClientView:
        base = self.settings.public_url
        return ClientView(
            client_id=client.id,
            workspace=client.workspace,
            profile=client.profile,
            created_at=client.created_at,
            instances=[
                InstanceView(
                    service=row.service,
                    state=self._live_state(client.id, row.service, row.state),
                    port=row.port,
                    url=f"{base}/c/{client.id}/{row.service}/mcp",
                    restarts=row.restarts,
                    step=row.step if row.state != InstanceState.RUNNING else None,
                    last_error=row.last_error,
                    last_log=row.last_log or [],
                    notes=row.notes or [],
                    last_probe_at=row.last_probe_at,
                    last_probe_ms=row.last_probe_ms,
                    started_at=row.started_at,
                )
                for row in rows
            ],
        )

    def _live_state(self, client_id: str, service: str, stored: str) -> str:
        route = self.instances.routes.get((client_id, service))
        return route.state if route else stored

    def view(self, client_id: str) -> ClientView:
        with store.session(self.engine) as db:
            client = store.get_client(db, client_id=client_id)
            if client is None:
                raise NotFound(f"no client {client_id!r}", client_id=client_id)
            return self._client_view(client, store.list_instances(db, client_id=client_id))

    def list(self) -> list[ClientView]:
        with store.session(self.engine) as db:
            rows = store.list_instances(db)
            return [
                self._client_view(c, [r for r in rows if r.client_id == c.id]) for c in store.list_clients(db)
            ]

    def mcp_config(self, client_id: str) -> dict[str, Any]:
        """The ``.mcp.json`` block for Claude Code; the token stays in an environment variable."""
        self.require(client_id)
        servers = {}
        for route in sorted(self.instances.routes.values(), key=lambda r: r.service):
            if route.client_id == client_id:
                servers[f"paradise-{route.service}"] = {
                    "type": "http",
                    "url": f"{self.settings.public_url}/c/{client_id}/{route.service}/mcp",
                    "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"},
                }
        return {"mcpServers": servers}

    def leases(self) -> list[PortView]:
        with store.session(self.engine) as db:
            return [PortView.model_validate(lease, from_attributes=True) for lease in store.list_leases(db)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.instances.close()
