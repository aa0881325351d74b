"""Admin REST API (``/api/v1``). Handlers are thin: parse, call the manager, render.

The table ``ENDPOINTS`` is the single description of the API: routes are registered from it and the
OpenAPI document is generated from it, so the two cannot drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bridge.api.middleware import admin_middleware, read_model
from bridge.errors import Invalid, NotFound
from bridge.keys import MANAGER, SETTINGS
from bridge.models import (
    CLIENT_ID,
    CLIENT_ID_PATTERN,
    CLIENT_ID_RULE,
    ClientCreate,
    ClientCreated,
    ClientView,
    EventView,
    McpConfig,
    PortView,
    TokenRotated,
)
from bridge.rollouts.runner import RUNNER
from bridge.rollouts.schema import RolloutCreate, RolloutView
from bridge.storage import require_space

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Query:
    """A query parameter: its JSON Schema (what the OpenAPI document says) and the parser that enforces it.

    Both come from the same bounds, so the document and the server cannot disagree about what is valid."""

    name: str
    description: str
    kind: str  # "number", "integer" or "client_id"
    low: float = 0
    high: float = 0
    default: float | None = None

    def schema(self) -> dict[str, Any]:
        if self.kind == "client_id":
            return {"type": "string", "pattern": CLIENT_ID_PATTERN}
        bounds = {"type": self.kind, "minimum": self._shown(self.low), "maximum": self._shown(self.high)}
        return bounds | ({"default": self._shown(self.default)} if self.default is not None else {})

    def _shown(self, value: float) -> float | int:
        return int(value) if self.kind == "integer" else value

    def parse(self, request: web.Request) -> Any:
        raw = request.query.get(self.name)
        if raw is None:
            return self.default
        if self.kind == "client_id":
            if not CLIENT_ID.fullmatch(raw):
                raise Invalid(f"query parameter {self.name!r}: {CLIENT_ID_RULE}")
            return raw
        # A strict JSON number, not Python's float(): that one also takes " 5", "1_0", "nan" and "inf".
        spelling = _INTEGER if self.kind == "integer" else _NUMBER
        if not spelling.fullmatch(raw):
            what = "an integer" if self.kind == "integer" else "a number"
            raise Invalid(f"query parameter {self.name!r} must be {what}, got {raw!r}")
        value = float(raw)
        if not self.low <= value <= self.high:
            raise Invalid(f"query parameter {self.name!r} must be between {self.low:g} and {self.high:g}, got {raw!r}")
        return int(value) if self.kind == "integer" else value


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
WAIT = Query("wait", "Seconds to hold the answer until the instances are ready (0 = answer at once)", "number",
             0, 600, default=0)
LIMIT = Query("limit", "At most this many events, newest first", "integer", 1, 1000, default=100)
EVENTS_OF = Query("client_id", "Only this client's events", "client_id")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    status: int = 200
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    many: bool = False
    errors: tuple[int, ...] = ()
    query: tuple[Query, ...] = ()
    media: str = "application/json"


def _dump(model: BaseModel | list[BaseModel], status: int = 200) -> web.Response:
    data = [m.model_dump(mode="json") for m in model] if isinstance(model, list) else model.model_dump(mode="json")
    return web.json_response(data, status=status)


def _client_id(request: web.Request) -> str:
    """The path's client id; 404 unless it is one a client could have (the document's pattern): no such client
    can exist, so the answer is the same as for an unknown one, with the rule in the message."""
    client_id = request.match_info["client_id"]
    if not CLIENT_ID.fullmatch(client_id):
        raise NotFound(f"no client {client_id!r}: {CLIENT_ID_RULE}", client_id=client_id)
    return client_id


async def _require_space(request: web.Request) -> None:
    """507 before a change that writes or stops something, when the data dir's disk is full: refused up front,
    nothing is half-done and running instances keep serving (a restart would stop one it cannot start again)."""
    await asyncio.to_thread(require_space, request.config_dict[SETTINGS].data_dir)


async def create_client(request: web.Request) -> web.Response:
    body = await read_model(request, ClientCreate)
    wait = WAIT.parse(request)
    await _require_space(request)
    created = await request.config_dict[MANAGER].register(body, wait=wait)
    return _dump(created, 201)


async def list_clients(request: web.Request) -> web.Response:
    return _dump(request.config_dict[MANAGER].list())


async def get_client(request: web.Request) -> web.Response:
    return _dump(request.config_dict[MANAGER].view(_client_id(request)))


async def delete_client(request: web.Request) -> web.Response:
    client_id = _client_id(request)
    await _require_space(request)  # a delete the database cannot record would come back at the next start
    await request.config_dict[MANAGER].delete(client_id)
    return web.Response(status=204)


async def restart_client(request: web.Request) -> web.Response:
    client_id = _client_id(request)
    await _require_space(request)
    return _dump(await request.config_dict[MANAGER].restart(client_id))


async def restart_instance(request: web.Request) -> web.Response:
    manager = request.config_dict[MANAGER]
    route = manager.route(_client_id(request), request.match_info["service"])  # 404 for an unknown one
    await _require_space(request)
    await manager.instances.restart(route)
    return _dump(manager.view(route.client_id))


async def rotate_token(request: web.Request) -> web.Response:
    client_id = _client_id(request)
    await _require_space(request)
    return _dump(await request.config_dict[MANAGER].rotate_token(client_id))


async def mcp_config(request: web.Request) -> web.Response:
    return web.json_response(request.config_dict[MANAGER].mcp_config(_client_id(request)))


async def client_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the client's recent events, then new ones live as they happen."""
    manager = request.config_dict[MANAGER]
    client_id = _client_id(request)
    manager.require(client_id)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    # A reader may leave at any point, during the recent events too: that ends the stream, it is no error.
    with contextlib.suppress(ConnectionResetError):
        async with manager.events.subscribe(client_id=client_id) as live:
            recent = await asyncio.to_thread(manager.events.recent, client_id=client_id, limit=20)
            for event in reversed(recent):
                await response.write(_sse(event))
            async for event in live:
                await response.write(_sse(event))
    return response


def _sse(event: EventView) -> bytes:
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n".encode()


async def list_ports(request: web.Request) -> web.Response:
    return _dump(await request.config_dict[MANAGER].leases())


async def list_events(request: web.Request) -> web.Response:
    limit, client_id = LIMIT.parse(request), EVENTS_OF.parse(request)
    return _dump(await asyncio.to_thread(request.config_dict[MANAGER].events.recent, client_id=client_id, limit=limit))


async def start_rollout(request: web.Request) -> web.Response:
    body = await read_model(request, RolloutCreate)
    await _require_space(request)
    return _dump(await request.config_dict[RUNNER].start(body), 201)


async def list_rollouts(request: web.Request) -> web.Response:
    return _dump(await request.config_dict[RUNNER].list())


async def get_rollout(request: web.Request) -> web.Response:
    return _dump(await request.config_dict[RUNNER].get(request.match_info["service"]))


def _control(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        await _require_space(request)
        return _dump(await request.config_dict[RUNNER].control(request.match_info["service"], action))

    handler.__name__ = f"{action}_rollout"
    return handler


async def openapi(request: web.Request) -> web.Response:
    from bridge.api.openapi import build_openapi

    catalog = request.config_dict[MANAGER].instances.catalog
    return web.json_response(build_openapi(ENDPOINTS, PREFIX, services=catalog))


# Every admin call may answer 401; one naming a client 404, for an unknown id or one no client can have.
_NAMED = (401, 404)
# A change on a full data-dir disk is refused (507); on a database locked past the wait it may be retried (503).
_WRITES = (*_NAMED, 503, 507)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/clients", create_client, "Register a client, lease ports, start its instances",
             201, ClientCreate, ClientCreated, errors=(400, 401, 409, 413, 422, 429, 503, 507), query=(WAIT,)),
    Endpoint("GET", "/clients", list_clients, "List clients with their instances", response=ClientView,
             many=True, errors=(401,)),
    Endpoint("GET", "/clients/{client_id}", get_client, "One client with each instance's state",
             response=ClientView, errors=_NAMED),
    Endpoint("DELETE", "/clients/{client_id}", delete_client,
             "Stop and remove the client's instances, release its ports (idempotent)", 204, errors=_WRITES),
    Endpoint("POST", "/clients/{client_id}/restart", restart_client, "Restart the client's instances",
             response=ClientView, errors=_WRITES),
    Endpoint("POST", "/clients/{client_id}/instances/{service}/restart", restart_instance,
             "Restart one instance of the client (recorded as an instance.restart event)", response=ClientView,
             errors=_WRITES),
    Endpoint("POST", "/clients/{client_id}/token", rotate_token, "Rotate the client token",
             response=TokenRotated, errors=_WRITES),
    Endpoint("GET", "/clients/{client_id}/mcp-config", mcp_config, "The .mcp.json block for Claude Code",
             response=McpConfig, errors=_NAMED),
    Endpoint("GET", "/clients/{client_id}/events", client_events, "Live start-up and health events (SSE)",
             response=EventView, errors=_NAMED, media="text/event-stream"),
    Endpoint("GET", "/ports", list_ports, "Port leases", response=PortView, many=True, errors=(401,)),
    Endpoint("GET", "/events", list_events, "Recent events and alerts", response=EventView, many=True,
             errors=(401, 422), query=(EVENTS_OF, LIMIT)),
    Endpoint("POST", "/rollouts", start_rollout, "Start moving a service's instances to a catalog version in "
             "waves, each judged by a gate (docs/rollouts.md)", 201, RolloutCreate, RolloutView,
             errors=(400, 401, 404, 409, 413, 422, 503, 507)),
    Endpoint("GET", "/rollouts", list_rollouts, "Recent rollouts, newest first", response=RolloutView, many=True,
             errors=(401,)),
    Endpoint("GET", "/rollouts/{service}", get_rollout, "The service's latest rollout", response=RolloutView,
             errors=_NAMED),
    Endpoint("POST", "/rollouts/{service}/pause", _control("pause"), "Pause the service's running rollout "
             "(the wave under way finishes moving; no further wave starts)", response=RolloutView,
             errors=(*_WRITES, 409)),
    Endpoint("POST", "/rollouts/{service}/resume", _control("resume"), "Resume a paused rollout (its wave soaks "
             "again)", response=RolloutView, errors=(*_WRITES, 409)),
    Endpoint("POST", "/rollouts/{service}/abort", _control("abort"), "Abort the rollout: every moved instance "
             "goes back to the previous version, unseen by its clients", response=RolloutView,
             errors=(*_WRITES, 409)),
    Endpoint("GET", "/openapi.json", openapi, "This document"),
)


def add_routes(app: web.Application, admin_token: str) -> None:
    """The API as a sub-application under PREFIX, with the admin-token check as its own middleware: the MCP
    routes of the main app never pass through it. Handlers read the app's keys through ``config_dict``."""
    api = web.Application(middlewares=[admin_middleware(admin_token, PREFIX, frozenset({PREFIX + "/openapi.json"}))])
    for endpoint in ENDPOINTS:
        api.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
    app.add_subapp(PREFIX, api)
