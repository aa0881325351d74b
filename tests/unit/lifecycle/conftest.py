"""A whole lifecycle in-process: store (SQLite file), event log, route table, port pool, InstanceManager and
the ClientManager facade, over a fake runtime chosen by the test (``make_lifecycle(runtime, **settings)``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge import store
from bridge.catalog import ServiceSpec
from bridge.catalog.services import describe_service
from bridge.clients import ClientManager
from bridge.events import EventLog
from bridge.lifecycle.health import HealthMonitor
from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.leader import Leadership
from bridge.lifecycle.routes import Route, RouteTable
from bridge.models import ClientCreate
from bridge.ports import PortAllocator
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
        engine = store.make_engine(settings.db_url)
        events = EventLog(engine)
        table = RouteTable(engine, events, describe=lambda name: describe_service(CATALOG, name))
        http = aiohttp.ClientSession()
        runtime = runtime or FakeRuntime()
        ports = PortAllocator(engine, settings.port_pool)
        instances = InstanceManager(
            settings=settings, table=table, runtime=runtime, catalog=CATALOG, http=http, ports=ports
        )
        manager = ClientManager(settings=settings, engine=engine, ports=ports, instances=instances, events=events)
        leadership = Leadership(engine, ttl=5, holder="test")
        monitor = HealthMonitor(instances, leadership, follow=manager.refresh)
        life = Lifecycle(settings, runtime, manager, instances, table, monitor, workspace)
        made.append((life, http))
        return life

    yield make
    for life, http in made:
        await life.monitor.close()
        await life.manager.close()
        await life.runtime.close()
        await http.close()
