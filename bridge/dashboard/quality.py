"""Quality on the dashboard: each client's running quality job and last run, live, and its saved HTML report.

While at least one authenticated dashboard socket is open, ``QualityWatch`` asks every *running* quality
instance for ``GET /quality/status`` about once a second (a paused or idle one is never asked: that would
hang or wake it; the poll is not activity, so it never keeps an instance awake). A change goes to the open
sockets as ``{"type": "quality", "client": ..., "status": {...}, "report_url": ...}``.

A plain link cannot carry the admin token, so ``report_url`` holds a short-lived ticket: an HMAC of the
client id and an expiry under a secret of this process. ``GET /dashboard/report/{client_id}?ticket=...``
checks it and relays the instance's ``/quality/report.html`` under a ``sandbox`` CSP, so the report (which
shows tenant data) runs no script at the bridge's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from bridge.clients import ClientManager
from bridge.errors import Forbidden, NotFound, UpstreamError
from bridge.keys import HTTP, MANAGER
from bridge.lifecycle.routes import Route
from bridge.mcp.client import instance_headers, instance_url
from bridge.models import InstanceState

QUALITY = "quality"
POLL_EVERY = 1.0
POLL_TIMEOUT = 2.0
REPORT_TIMEOUT = 15.0
TICKET_TTL = 600  # seconds a report link works
TICKET_REFRESH = 240.0  # each socket gets fresh links this often, so a shown link has minutes left
MAX_STATUS_BYTES = 256 * 1024
MAX_REPORT_BYTES = 32 * 1024 * 1024
QUEUE_SIZE = 256
REPORT_HEADERS = {
    # sandbox: an opaque origin and no scripts; the report's own <style> is all it needs.
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Tickets:
    """Short-lived report tickets: ``<expiry>.<hex HMAC-SHA256 of client id and expiry>``."""

    def __init__(self, ttl: int = TICKET_TTL, secret: bytes | None = None) -> None:
        self.ttl = ttl
        self._secret = secret or secrets.token_bytes(32)  # per process: a restart voids every link

    def _sign(self, client_id: str, expiry: int) -> str:
        return hmac.new(self._secret, f"{client_id}\n{expiry}".encode(), hashlib.sha256).hexdigest()

    def issue(self, client_id: str, now: float | None = None) -> str:
        expiry = int(time.time() if now is None else now) + self.ttl
        return f"{expiry}.{self._sign(client_id, expiry)}"

    def verify(self, client_id: str, ticket: str, now: float | None = None) -> bool:
        expiry_text, _, signature = ticket.partition(".")
        if not expiry_text.isdigit() or len(expiry_text) > 12:
            return False
        expiry = int(expiry_text)
        if expiry < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(signature, self._sign(client_id, expiry))


async def _get(http: aiohttp.ClientSession, route: Route, path: str, timeout: float, limit: int) -> tuple[int, bytes]:
    """One GET to the instance itself (never through the proxy: no activity, no wake)."""
    headers = {**instance_headers(route.port, route.instance_key), "Accept-Encoding": "identity"}
    deadline = aiohttp.ClientTimeout(total=timeout)
    async with http.get(instance_url(route.port, path), headers=headers, timeout=deadline) as resp:
        body = await resp.content.read(limit + 1)
        if len(body) > limit:
            raise UpstreamError(f"the quality instance's answer to {path} is larger than {limit} bytes")
        return resp.status, body


class QualityWatch:
    """Polls the running quality instances for as long as a dashboard socket listens."""

    def __init__(self, tickets: Tickets | None = None) -> None:
        self.tickets = tickets or Tickets()
        self.statuses: dict[str, dict[str, Any]] = {}  # client id -> the last status seen
        self._queues: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None

    def message(self, client_id: str) -> dict[str, Any]:
        status = self.statuses.get(client_id)
        url = None
        if status and status.get("report_html"):
            url = f"/dashboard/report/{client_id}?ticket={self.tickets.issue(client_id)}"
        return {"type": "quality", "client": client_id, "status": status, "report_url": url}

    @contextlib.asynccontextmanager
    async def subscribe(self, app: web.Application) -> AsyncIterator[asyncio.Queue[str]]:
        """The ids of clients whose status changed, for one socket; the first socket starts the poller."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queues.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(app[MANAGER], app[HTTP]), name="dashboard quality")
        try:
            yield queue
        finally:
            self._queues.discard(queue)
            if not self._queues and self._task is not None:
                self._task.cancel()  # the last socket left: nobody looks, nobody asks
                self._task = None
                self.statuses.clear()  # a later watcher starts from what the instances say then

    def _publish(self, client_id: str) -> None:
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):  # a socket that stopped reading misses updates
                queue.put_nowait(client_id)

    async def _poll(self, manager: ClientManager, http: aiohttp.ClientSession) -> None:
        while True:
            await self.poll_once(manager, http)
            await asyncio.sleep(POLL_EVERY)

    async def poll_once(self, manager: ClientManager, http: aiohttp.ClientSession) -> None:
        routes = [r for r in manager.routes() if r.service == QUALITY]
        running = [r for r in routes if r.state == InstanceState.RUNNING]
        answers = await asyncio.gather(*(self._status_of(http, r) for r in running))
        for route, status in zip(running, answers, strict=True):
            if status is not None and status != self.statuses.get(route.client_id):
                self.statuses[route.client_id] = status
                self._publish(route.client_id)
        for route in routes:  # a stopped or crashed instance runs no job, whatever it said last
            status = self.statuses.get(route.client_id)
            if route.state != InstanceState.RUNNING and status and status.get("running"):
                self.statuses[route.client_id] = {**status, "running": []}
                self._publish(route.client_id)
        known = {r.client_id for r in routes}
        for gone in [c for c in self.statuses if c not in known]:
            del self.statuses[gone]

    async def _status_of(self, http: aiohttp.ClientSession, route: Route) -> dict[str, Any] | None:
        try:
            code, body = await _get(http, route, "/quality/status", POLL_TIMEOUT, MAX_STATUS_BYTES)
            data = json.loads(body) if code == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError, UpstreamError):
            return None  # not up yet, an older instance without the route, or busy: ask again next time
        return data if isinstance(data, dict) else None

    async def send_to(self, ws: web.WebSocketResponse, queue: asyncio.Queue[str]) -> None:
        """One socket's quality messages: what is known now, each change, fresh links every few minutes."""
        for client_id in list(self.statuses):
            await ws.send_json(self.message(client_id))
        while True:
            try:
                client_id = await asyncio.wait_for(queue.get(), TICKET_REFRESH)
            except TimeoutError:
                for known in list(self.statuses):
                    await ws.send_json(self.message(known))
                continue
            if client_id in self.statuses:
                await ws.send_json(self.message(client_id))

    async def report(self, request: web.Request) -> web.Response:
        """``GET /dashboard/report/{client_id}?ticket=...``: the latest saved HTML report of that client."""
        client_id = request.match_info["client_id"]
        if not self.tickets.verify(client_id, request.query.get("ticket", "")):
            raise Forbidden("this report link is invalid or has expired: open it again from the dashboard")
        manager: ClientManager = request.app[MANAGER]
        route = manager.route(client_id, QUALITY)  # 404 for an unknown client or one without quality
        if route.state != InstanceState.RUNNING:
            route = await manager.wait_ready(client_id, QUALITY)  # a click on a link is a user's request
        try:
            code, body = await _get(request.app[HTTP], route, "/quality/report.html", REPORT_TIMEOUT, MAX_REPORT_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(f"the quality instance of {client_id} did not answer: {exc!r}") from None
        if code == 404:
            raise NotFound(f"client {client_id!r} has no HTML report yet: run quality_report first")
        if code != 200:
            raise UpstreamError(f"the quality instance of {client_id} answered {code}")
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=REPORT_HEADERS)
