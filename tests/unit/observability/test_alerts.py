"""The alert webhook against a real local HTTP receiver that fails at first, then accepts."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.events import EventLog
from bridge.observability.alerts import AlertSender
from bridge.store import make_engine


async def test_alerts_are_retried_until_delivered_and_info_is_not_sent(tmp_path) -> None:
    received: list[dict] = []
    failures = {"left": 2}

    async def hook(request: web.Request) -> web.Response:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    events = EventLog(make_engine(f"sqlite:///{tmp_path / 'e.db'}"))
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        sender = AlertSender(str(server.make_url("/hook")), http, events, backoff=0.01)
        task = asyncio.create_task(sender.run())
        await asyncio.sleep(0.05)  # subscribed
        events.record("client.registered", "fine", client_id="a")
        events.record("instance.failed", "start failed: boom", level="error", client_id="a", service="s")
        for _ in range(200):
            if received and sender.delivered:  # the hook has the alert before the sender hears its answer
                break
            await asyncio.sleep(0.02)
        task.cancel()
    assert len(received) == 1 and received[0]["source"] == "devops-paradise"
    event = received[0]["event"]
    assert (event["kind"], event["level"], event["client_id"], event["service"]) == (
        "instance.failed",
        "error",
        "a",
        "s",
    )
    assert sender.delivered == 1 and failures["left"] == 0


async def test_an_unreachable_webhook_gives_up_without_raising(tmp_path) -> None:
    events = EventLog(make_engine(f"sqlite:///{tmp_path / 'e.db'}"))
    view = events.record("instance.died", "gone", level="warning")
    async with aiohttp.ClientSession() as http:
        sender = AlertSender("http://127.0.0.1:9/nothing-listens", http, events, backoff=0.001)
        assert await sender.deliver(view) is False
    assert sender.dropped == 1
