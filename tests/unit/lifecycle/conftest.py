"""A whole lifecycle in-process: store (SQLite file), event log, route table, port pool, InstanceManager and
the ClientManager facade, built by the app factory's ``build_manager`` over a fake runtime chosen by the test
(``make_lifecycle(runtime, **settings)``); the health monitor is the test's to drive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge import store
from bridge.app import build_manager
from bridge.catalog import ServiceSpec
from bridge.clients import ClientManager
from bridge.events import EventLog
from bridge.keys import CATALOG as CATALOG_KEY
from bridge.keys import ENGINE, EVENTS, HTTP, METRICS, RUNTIME, SETTINGS
from bridge.lifecycle.health import HealthMonitor
from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.leader import Leadership
from bridge.lifecycle.routes import Route, RouteTable
from bridge.models import ClientCreate
from bridge.observability.metrics import BridgeMetrics
from bridge.settings import BridgeSettings
from tests.helpers import free_block
from tests.unit.lifecycle.fakes import FakeRuntime

CATALOG = {
    "echo": ServiceSpec(name="echo", command=["fake"], memory="100m"),
    "other": ServiceSpec(name="other", command=["fake"], memory="100m"),
}


@dataclass
class Lifecycle:
    settings: BridgeSettings
    runtime: FakeRuntime
    manager: ClientManager
    instances: InstanceManager
    table: RouteTable
    monitor: HealthMonitor
    workspace: Path

    async def register(self, client_id: str, services: list[str] | None = None, *, wait: float = 5) -> None:
        req = ClientCreate(client_id=client_id, workspace=str(self.workspace), services=services or ["echo"])
        await self.manager.register(req, wait=wait)

    def route(self, client_id: str, service: str = "echo") -> Route:
        return self.table.require(client_id, service)

    def events(self, kind: str) -> list[str]:
        return [e.message for e in self.manager.events.recent(limit=500) if e.kind == kind]

    async def stored(self, client_id: str, service: str = "echo") -> Any:
        await self.table.writer.flush()
        with store.session(self.manager.engine) as db:
            return store.get_instance(db, client_id=client_id, service=service)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) until ``check()`` holds; the assertion that follows says what did not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check() and loop.time() < deadline:
        await asyncio.sleep(0.01)


MakeLifecycle = Callable[..., Awaitable[Lifecycle]]


@pytest.fixture
async def make_lifecycle(tmp_path: Path) -> AsyncIterator[MakeLifecycle]:
    made: list[tuple[Lifecycle, aiohttp.ClientSession]] = []

    async def make(runtime: FakeRuntime | None = None, **overrides: Any) -> Lifecycle:
        first = free_block(10)
        options: dict[str, Any] = {
            "data_dir": tmp_path / f"data{len(made)}",
            "port_range": f"{first}-{first + 9}",
            "probe_interval": 0.05,
            "probe_timeout": 0.5,
            "probe_failures": 2,
            "restart_backoff": 0,
            "ready_timeout": 1.5,
            "start_timeout": 3,
            "stop_grace": 0,
            **overrides,
        }
        settings = BridgeSettings(**options)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        workspace = tmp_path / "workspace"
        workspace.mkdir(exist_ok=True)
        # The app's own resources, put together by the app factory's build_manager (bridge/app.py).
        app = web.Application()
        app[SETTINGS], app[CATALOG_KEY], app[RUNTIME] = settings, CATALOG, runtime or FakeRuntime()
        app[ENGINE] = engine = store.make_engine(settings.db_url)
        app[EVENTS] = EventLog(engine, keep=settings.events_keep)
        app[HTTP] = http = aiohttp.ClientSession()
        app[METRICS] = BridgeMetrics()
        manager = build_manager(app)
        leadership = Leadership(engine, ttl=5, holder="test")
        monitor = HealthMonitor(manager.instances, leadership, follow=manager.refresh)
        life = Lifecycle(settings, app[RUNTIME], manager, manager.instances, manager.table, monitor, workspace)
        made.append((life, http))
        return life

    yield make
    for life, http in made:
        await life.monitor.close()
        await life.manager.close()
        await life.runtime.close()
        await http.close()
