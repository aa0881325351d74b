"""The live dashboard: a static page (``/dashboard``) and its WebSocket feed (``/dashboard/ws``).

The HTML, JS and CSS hold no data, so they are served without auth. All data goes over the WebSocket, and
only after the page has sent the admin token as the socket's first message::

    -> {"type": "auth", "token": "<admin token>"}
    <- {"type": "snapshot", "clients": [...], "ports": {...}, "events": [...], "history": {...}, "server_time": "..."}
    <- {"type": "event", "event": {...}}          each event as it is recorded
    <- {"type": "snapshot", ...}                  again shortly after events (state changes), and every 15 s
    <- {"type": "quality", "client": ..., "status": {...}, "report_url": ...}
                                                  a client's quality jobs and last run, on change (quality.py)
    <- {"type": "samples", "fields": [...], "instances": {"client/service": [t, memory, cpu, ...]}}
                                                  each instance's newest sample, every 10 s (history.py)

The first snapshot carries the last hour of every instance (``history``); each client in a snapshot carries
its recorded quality runs (``quality_runs``, runs.py). Actions (restart, rotate, delete) are not sent over
the socket: the page calls the admin API with the token, same-origin only (guard.py).

A wrong token, a malformed first message or none within 10 s closes the socket with code 4401 and a
reason the page shows. An upgrade a browser sent from a foreign origin is refused with 403 before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import weakref
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from bridge import eventloop
from bridge.clients import ClientManager
from bridge.errors import NotFound
from bridge.keys import ADMIN_TOKEN, MANAGER, METRICS
from bridge.models import EventView
from bridge.observability import history as charts
from bridge.observability.history import History

from .guard import refuse_foreign, same_origin_writes
from .quality import QualityWatch
from .runs import quality_runs

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "charts.js": "text/javascript",
    "actions.js": "text/javascript",
    "style.css": "text/css",
}
HISTORY = web.AppKey("dashboard history", History)
CLOSE_AUTH = 4401  # private-use close code: the page asks for the token again
AUTH_TIMEOUT = 10.0
REFRESH_DELAY = 0.25  # a burst of events (a start-up's steps) becomes one snapshot
REFRESH_EVERY = 15.0  # and a snapshot anyway, for what changes without an event
RECENT_EVENTS = 100
LOG_LINES = 10
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_routes(app: web.Application, admin_token: str) -> None:
    app[ADMIN_TOKEN] = admin_token
    watch = QualityWatch()  # one per app: its poller runs while any of the app's sockets is open
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def socket(request: web.Request) -> web.WebSocketResponse:
        return await feed(request, watch, sockets)

    async def close_sockets(_app: web.Application) -> None:
        # An open page would otherwise hold the bridge's shutdown for aiohttp's whole shutdown timeout.
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the bridge is shutting down")

    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(history_ctx)  # after the manager's: it samples the manager's instances
    # The same-origin wall for admin API writes (guard.py), inside the app's error middleware (JSON 403).
    app.middlewares.append(same_origin_writes)

    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/", redirect)
    app.router.add_get("/dashboard/static/{name}", asset)
    app.router.add_get("/dashboard/ws", socket)
    app.router.add_get("/dashboard/report/{client_id}", watch.report)


async def history_ctx(app: web.Application) -> AsyncIterator[None]:
    """The last hour of every instance, sampled whether or not a page is open (so a page opens onto it)."""
    app[HISTORY] = History()
    async with eventloop.background(charts.run(app[HISTORY], app[MANAGER], app[METRICS]), "dashboard history"):
        yield


async def redirect(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard")


@functools.cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _file(name: str) -> web.Response:
    return web.Response(body=_read(name), content_type=ASSETS[name], charset="utf-8", headers=HEADERS)


async def page(_request: web.Request) -> web.Response:
    return _file("index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS or name == "index.html":
        raise NotFound(f"no dashboard asset {name!r}")
    return _file(name)


# ---- the WebSocket feed ---------------------------------------------------------------------------------


async def feed(
    request: web.Request, watch: QualityWatch, sockets: weakref.WeakSet[web.WebSocketResponse]
) -> web.WebSocketResponse:
    refuse_foreign(request, "the dashboard feed")  # 403 before the upgrade: nothing to read, nothing to try
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await ws.prepare(request)
    sockets.add(ws)
    if not await authenticate(ws, request.app[ADMIN_TOKEN]):
        return ws
    manager = request.app[MANAGER]
    # Subscribed before the snapshot is taken, so no event falls between the two.
    async with manager.events.subscribe() as live, watch.subscribe(request.app) as quality:
        with contextlib.suppress(ConnectionError):  # the page left at once
            await ws.send_json(await snapshot(manager, with_events=True, history=request.app[HISTORY]))
            await _serve(ws, manager, live, watch.send_to(ws, quality), request.app[HISTORY])
    return ws


async def authenticate(ws: web.WebSocketResponse, expected: str) -> bool:
    """The first message must carry the admin token; nothing is sent before it is checked."""
    try:
        msg = await ws.receive(timeout=AUTH_TIMEOUT)
    except TimeoutError:
        await ws.close(code=CLOSE_AUTH, message=b"no admin token received within 10 s")
        return False
    token = _token_of(msg.data) if msg.type == WSMsgType.TEXT else None
    if token is None:
        await ws.close(code=CLOSE_AUTH, message=b'first message must be {"type": "auth", "token": "..."}')
        return False
    if not hmac.compare_digest(token.encode(), expected.encode()):
        await ws.close(code=CLOSE_AUTH, message=b"invalid admin token")
        return False
    return True


def _token_of(text: str) -> str | None:
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict) and data.get("type") == "auth" and isinstance(data.get("token"), str):
            return data["token"]
    return None


async def _serve(
    ws: web.WebSocketResponse,
    manager: ClientManager,
    live: AsyncIterator[EventView],
    quality: Coroutine[Any, Any, None],
    history: History,
) -> None:
    """Forward events, quality changes and refreshed snapshots until the page goes away (or a send fails)."""
    dirty = asyncio.Event()
    tasks = {
        asyncio.create_task(_drain(ws), name="dashboard reader"),
        asyncio.create_task(_forward(ws, live, dirty), name="dashboard events"),
        asyncio.create_task(_refresh(ws, manager, dirty), name="dashboard snapshots"),
        asyncio.create_task(quality, name="dashboard quality"),
        asyncio.create_task(_samples(ws, history), name="dashboard samples"),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                log.warning("dashboard feed ended: %r", result)
        await ws.close()


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _msg in ws:  # the page sends nothing after the token; this ends when it closes
        pass


async def _forward(ws: web.WebSocketResponse, live: AsyncIterator[EventView], dirty: asyncio.Event) -> None:
    async for event in live:
        await ws.send_json({"type": "event", "event": event.model_dump(mode="json")})
        dirty.set()  # every state change records an event: refresh the snapshot soon


async def _refresh(ws: web.WebSocketResponse, manager: ClientManager, dirty: asyncio.Event) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dirty.wait(), REFRESH_EVERY)
        await asyncio.sleep(REFRESH_DELAY)
        dirty.clear()
        await ws.send_json(await snapshot(manager))


async def _samples(ws: web.WebSocketResponse, history: History) -> None:
    while True:
        latest = await history.next_sample()
        rows = {f"{c}/{s}": sample.row() for (c, s), sample in latest.items()}
        await ws.send_json({"type": "samples", "fields": list(charts.FIELDS), "instances": rows})


async def snapshot(
    manager: ClientManager, *, with_events: bool = False, history: History | None = None
) -> dict[str, Any]:
    """Everything the page shows: clients with their instances and quality runs, the port pool, and (first
    snapshot) recent events and the last hour of every instance."""
    leased, size = await asyncio.to_thread(manager.ports.usage)
    clients = [_client(view.model_dump(mode="json")) for view in manager.list()]
    runs = await asyncio.to_thread(lambda: [quality_runs(c["workspace"]) for c in clients])
    for client, client_runs in zip(clients, runs, strict=True):
        client["quality_runs"] = client_runs
    data: dict[str, Any] = {
        "type": "snapshot",
        "server_time": datetime.now(UTC).isoformat(),
        "clients": clients,
        "ports": {
            "range": manager.ports.range_text,
            "size": size,
            "leased": leased,
            "leases": [lease.model_dump(mode="json") for lease in await manager.leases()],
        },
    }
    if with_events:
        recent = await asyncio.to_thread(manager.events.recent, limit=RECENT_EVENTS)
        data["events"] = [e.model_dump(mode="json") for e in recent]
    if history is not None:
        data["history"] = history.view()
    return data


def _client(view: dict[str, Any]) -> dict[str, Any]:
    for instance in view["instances"]:
        instance["last_log"] = instance.get("last_log", [])[-LOG_LINES:]
    return view
