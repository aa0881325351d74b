"""Admin REST API (``/api/v1``). Handlers are thin: parse, call the manager, render.

The table ``ENDPOINTS`` is the single description of the API: routes are registered from it and the
OpenAPI document is generated from it, so the two cannot drift.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from bridge.api.middleware import admin_middleware, read_model
from bridge.errors import Invalid
from bridge.keys import MANAGER
from bridge.models import (
    ClientCreate,
    ClientCreated,
    ClientView,
    EventView,
    PortView,
    TokenRotated,
)

PREFIX = "/api/v1"


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
    query: dict[str, str] = field(default_factory=dict)
    media: str = "application/json"


def _dump(model: BaseModel | list[BaseModel], status: int = 200) -> web.Response:
    data = [m.model_dump(mode="json") for m in model] if isinstance(model, list) else model.model_dump(mode="json")
    return web.json_response(data, status=status)


def _float_query(request: web.Request, name: str, default: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise Invalid(f"query parameter {name!r} must be a number, got {raw!r}") from None
    if not 0 <= value <= high:
        raise Invalid(f"query parameter {name!r} must be between 0 and {high:g}")
    return value


async def create_client(request: web.Request) -> web.Response:
    body = await read_model(request, ClientCreate)
    wait = _float_query(request, "wait", 0, 600)
    created = await request.config_dict[MANAGER].register(body, wait=wait)
    return _dump(created, 201)


async def list_clients(request: web.Request) -> web.Response:
    return _dump(request.config_dict[MANAGER].list())


async def get_client(request: web.Request) -> web.Response:
    return _dump(request.config_dict[MANAGER].view(request.match_info["client_id"]))


async def delete_client(request: web.Request) -> web.Response:
    await request.config_dict[MANAGER].delete(request.match_info["client_id"])
    return web.Response(status=204)


async def restart_client(request: web.Request) -> web.Response:
    return _dump(await request.config_dict[MANAGER].restart(request.match_info["client_id"]))


async def rotate_token(request: web.Request) -> web.Response:
    return _dump(await request.config_dict[MANAGER].rotate_token(request.match_info["client_id"]))


async def mcp_config(request: web.Request) -> web.Response:
    return web.json_response(request.config_dict[MANAGER].mcp_config(request.match_info["client_id"]))


async def client_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the client's recent events, then new ones live as they happen."""
    manager = request.config_dict[MANAGER]
    client_id = request.match_info["client_id"]
    manager.require(client_id)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    async with manager.events.subscribe(client_id=client_id) as live:
        recent = await asyncio.to_thread(manager.events.recent, client_id=client_id, limit=20)
        for event in reversed(recent):
            await response.write(_sse(event))
        with contextlib.suppress(ConnectionResetError):
            async for event in live:
                await response.write(_sse(event))
    return response


def _sse(event: EventView) -> bytes:
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n".encode()


async def list_ports(request: web.Request) -> web.Response:
    return _dump(await request.config_dict[MANAGER].leases())


async def list_events(request: web.Request) -> web.Response:
    limit = int(_float_query(request, "limit", 100, 1000))
    client_id = request.query.get("client_id")
    return _dump(await asyncio.to_thread(request.config_dict[MANAGER].events.recent, client_id=client_id, limit=limit))


async def openapi(request: web.Request) -> web.Response:
    from bridge.api.openapi import build_openapi

    return web.json_response(build_openapi(ENDPOINTS, PREFIX))


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/clients", create_client, "Register a client, lease ports, start its instances",
             201, ClientCreate, ClientCreated, errors=(400, 401, 409, 413, 422, 503),
             query={"wait": "seconds to hold the answer until the instances are ready (0-600)"}),
    Endpoint("GET", "/clients", list_clients, "List clients with their instances", response=ClientView,
             many=True, errors=(401,)),
    Endpoint("GET", "/clients/{client_id}", get_client, "One client with each instance's state",
             response=ClientView, errors=(401, 404)),
    Endpoint("DELETE", "/clients/{client_id}", delete_client,
             "Stop and remove the client's instances, release its ports (idempotent)", 204, errors=(401,)),
    Endpoint("POST", "/clients/{client_id}/restart", restart_client, "Restart the client's instances",
             response=ClientView, errors=(401, 404)),
    Endpoint("POST", "/clients/{client_id}/token", rotate_token, "Rotate the client token",
             response=TokenRotated, errors=(401, 404)),
    Endpoint("GET", "/clients/{client_id}/mcp-config", mcp_config, "The .mcp.json block for Claude Code",
             errors=(401, 404)),
    Endpoint("GET", "/clients/{client_id}/events", client_events, "Live start-up and health events (SSE)",
             errors=(401, 404), media="text/event-stream"),
    Endpoint("GET", "/ports", list_ports, "Port leases", response=PortView, many=True, errors=(401,)),
    Endpoint("GET", "/events", list_events, "Recent events and alerts", response=EventView, many=True,
             errors=(401, 422), query={"client_id": "only this client's events", "limit": "at most this many (1000)"}),
    Endpoint("GET", "/openapi.json", openapi, "This document"),
)


def add_routes(app: web.Application, admin_token: str) -> None:
    """The API as a sub-application under PREFIX, with the admin-token check as its own middleware: the MCP
    routes of the main app never pass through it. Handlers read the app's keys through ``config_dict``."""
    api = web.Application(middlewares=[admin_middleware(admin_token, PREFIX, frozenset({PREFIX + "/openapi.json"}))])
    for endpoint in ENDPOINTS:
        api.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
    app.add_subapp(PREFIX, api)
