"""The dashboard's quality watch: report tickets (sign, verify, expiry) and one poll round against a real
HTTP server standing in for two quality instances (only the running one is asked, with its key and Host, and
asking never counts as activity)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.dashboard.quality import QualityWatch, Tickets
from bridge.lifecycle.routes import Route
from bridge.models import InstanceState


def test_a_ticket_opens_only_its_clients_report_until_it_expires() -> None:
    tickets = Tickets(ttl=60)
    now = 1_800_000_000.0
    ticket = tickets.issue("alice", now=now)
    assert tickets.verify("alice", ticket, now=now + 59)
    assert not tickets.verify("alice", ticket, now=now + 61)  # expired
    assert not tickets.verify("bob", ticket, now=now)  # another client's link
    expiry, _, signature = ticket.partition(".")
    assert not tickets.verify("alice", f"{int(expiry) + 3600}.{signature}", now=now)  # a longer life, forged
    assert not tickets.verify("alice", f"{expiry}.{'0' * len(signature)}", now=now)
    for bad in ("", ".", "abc.def", f"-{expiry}.{signature}", f"{'9' * 40}.{signature}"):
        assert not tickets.verify("alice", bad, now=now), bad
    assert not Tickets(ttl=60).verify("alice", ticket, now=now)  # another process's secret


class FakeManager:
    def __init__(self, routes: list[Route]) -> None:
        self._routes = routes

    def routes(self) -> list[Route]:
        return self._routes


def _route(client_id: str, port: int, state: InstanceState, key: str) -> Route:
    return Route(client_id=client_id, service="quality", port=port, path="/mcp", transport="streamable-http",
                 state=state, backend_state={}, instance_key=key)


async def test_only_running_instances_are_asked_and_changes_are_published() -> None:
    asked: list[dict[str, Any]] = []
    status = {"running": [{"tool": "run_tests", "progress": 0.5}], "last": None, "report_html": None}

    async def handler(request: web.Request) -> web.Response:
        asked.append({"host": request.headers.get("Host"), "key": request.headers.get("X-Paradise-Instance-Key")})
        return web.json_response(status)

    app = web.Application()
    app.router.add_get("/quality/status", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        running = _route("alice", server.port, InstanceState.RUNNING, "alice-key-0123456789")
        paused = _route("bob", server.port, InstanceState.PAUSED, "bob-key-0123456789")
        before = (running.last_activity, paused.last_activity)
        manager = FakeManager([running, paused])
        watch = QualityWatch()
        queue: asyncio.Queue[str] = asyncio.Queue()
        watch._queues.add(queue)
        async with aiohttp.ClientSession() as http:
            await watch.poll_once(manager, http)  # type: ignore[arg-type]
            await watch.poll_once(manager, http)  # type: ignore[arg-type]  # nothing changed: no message
            assert asked == [{"host": f"127.0.0.1:{server.port}", "key": "alice-key-0123456789"}] * 2
            assert queue.qsize() == 1 and queue.get_nowait() == "alice"
            assert watch.message("alice")["status"] == status and watch.message("alice")["report_url"] is None
            status["report_html"] = "report-1.html"
            await watch.poll_once(manager, http)  # type: ignore[arg-type]
            url = watch.message("alice")["report_url"]
            assert url.startswith("/dashboard/report/alice?ticket=")
            assert watch.tickets.verify("alice", url.split("ticket=", 1)[1])
            running.state = InstanceState.IDLE  # stopped: its job cannot be running any more
            await watch.poll_once(manager, http)  # type: ignore[arg-type]
            assert watch.statuses["alice"]["running"] == [] and len(asked) == 3
        assert (running.last_activity, paused.last_activity) == before
    finally:
        await server.close()
