"""The bridge's admin API for the CLI's unit tests, fast: its real routes, admin-token check, body validation
and JSON error rendering (bridge/api) on a loopback port, over an in-memory stand-in for the client manager
that answers with the bridge's own models and raises the bridge's own errors, and records what it was asked.
The AdminClient under test is synchronous, so the app runs on its own event loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from bridge.api.middleware import error_middleware
from bridge.api.routes import add_routes
from bridge.errors import BridgeError, Conflict, NotFound
from bridge.keys import MANAGER, SETTINGS
from bridge.models import ClientCreate, ClientCreated, ClientView, InstanceView, McpConfig, TokenRotated, utcnow

TOKEN = "admin-token-for-the-cli-tests"
SERVICES = ("serena", "quality")


class Clients:
    """What the admin routes call on the manager. ``states``: for each later ``view``, the state every instance
    shows (then it stays at the last one); ``refuse``: the error the next registration raises."""

    def __init__(self) -> None:
        self.views: dict[str, ClientView] = {}
        self.asked: list[str] = []
        self.states: list[str] = []
        self.refuse: BridgeError | None = None
        self.tokens = 0

    def add(self, client_id: str, workspace: Path | str, profile: str = "quick", state: str = "running") -> ClientView:
        instances = [InstanceView(service=s, state=state, port=9000 + n, url=f"http://127.0.0.1:{9000 + n}/mcp",
                                  restarts=0, last_error="exit status 1" if state == "failed" else None)
                     for n, s in enumerate(SERVICES)]
        self.views[client_id] = ClientView(client_id=client_id, workspace=str(workspace), profile=profile,
                                           created_at=utcnow(), instances=instances)
        return self.views[client_id]

    def require(self, client_id: str) -> ClientView:
        if client_id not in self.views:
            raise NotFound(f"no client {client_id!r}", client_id=client_id)
        return self.views[client_id]

    def _token(self, client_id: str) -> str:
        self.tokens += 1
        return f"client-token-{client_id}-{self.tokens}"

    async def register(self, body: ClientCreate, wait: float = 0) -> ClientCreated:
        self.asked.append(f"register {body.client_id} wait={wait:g}")
        if self.refuse is not None:
            raise self.refuse
        if body.client_id in self.views:
            raise Conflict(f"client {body.client_id!r} already exists")
        view = self.add(body.client_id, body.workspace, body.profile or "comprehensive", state="starting")
        return ClientCreated(**view.model_dump(), token=self._token(body.client_id),
                             mcp_config=McpConfig.model_validate(self.mcp_config(body.client_id)))

    def list(self) -> list[ClientView]:
        self.asked.append("list")
        return list(self.views.values())

    def view(self, client_id: str) -> ClientView:
        self.asked.append(f"view {client_id}")
        view = self.require(client_id)
        if self.states:
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            failed = "exit status 1" if state == "failed" else None
            view.instances = [i.model_copy(update={"state": state, "last_error": failed}) for i in view.instances]
        return view

    async def delete(self, client_id: str) -> None:
        self.asked.append(f"delete {client_id}")
        self.views.pop(client_id, None)

    async def restart(self, client_id: str) -> ClientView:
        self.asked.append(f"restart {client_id}")
        view = self.require(client_id)
        view.instances = [i.model_copy(update={"state": "starting", "restarts": i.restarts + 1})
                          for i in view.instances]
        return view

    async def rotate_token(self, client_id: str) -> TokenRotated:
        self.asked.append(f"token {client_id}")
        self.require(client_id)
        return TokenRotated(client_id=client_id, token=self._token(client_id),
                            mcp_config=McpConfig.model_validate(self.mcp_config(client_id)))

    def mcp_config(self, client_id: str) -> dict[str, Any]:
        self.require(client_id)
        return {"mcpServers": {f"paradise-{s}": {"type": "http", "url": f"http://127.0.0.1:1/c/{client_id}/{s}/mcp",
                                                 "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"}}
                               for s in SERVICES}}


@contextmanager
def admin_api(clients: Clients, data_dir: Path) -> Iterator[str]:
    """The admin API over ``clients`` on 127.0.0.1, on its own loop in a thread; yields its base URL."""
    app = web.Application(middlewares=[error_middleware])
    app[MANAGER] = clients  # type: ignore[misc]
    app[SETTINGS] = SimpleNamespace(data_dir=data_dir)  # type: ignore[misc]  # the free-space check reads it
    add_routes(app, TOKEN)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, name="admin-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()
