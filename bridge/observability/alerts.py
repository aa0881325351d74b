"""Alert webhook: warning and error events are POSTed as JSON to PARADISE_ALERT_WEBHOOK.

Delivery runs in its own task fed by the event log's live feed: retried with exponential back-off,
dropped after the last try (and logged), and never able to slow the bridge (a full feed drops events).

The storage alarm raises ``storage.full`` (an error event, so an alert) once when the data dir's disk fills
or a write fails for want of space, and ``storage.recovered`` once it has room again. When the database
itself cannot store the event, the event log still logs it and sends it live (to this sender too).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
from aiohttp import web
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

from bridge.events import EventLog
from bridge.models import EventView
from bridge.storage import disk_problem

log = logging.getLogger(__name__)
ALERT_LEVELS = frozenset({"warning", "error"})
ATTEMPTS = 5


class DeliveryFailed(Exception):
    pass


class AlertSender:
    def __init__(self, url: str, http: aiohttp.ClientSession, events: EventLog, *, backoff: float = 0.5) -> None:
        self.url = url
        self.http = http
        self.events = events
        self.backoff = backoff
        self.delivered = 0
        self.dropped = 0

    async def run(self) -> None:
        async with self.events.subscribe() as live:
            async for event in live:
                if event.level in ALERT_LEVELS:
                    await self.deliver(event)

    async def deliver(self, event: EventView) -> bool:
        body = {"source": "devops-paradise", "event": event.model_dump(mode="json")}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=self.backoff, max=30),
            retry=retry_if_exception_type((aiohttp.ClientError, TimeoutError, DeliveryFailed)),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._post(body)
        except RetryError as exc:
            self.dropped += 1
            log.warning("alert %s not delivered after %d tries: %s", event.kind, ATTEMPTS, exc.last_attempt.exception())
            return False
        self.delivered += 1
        return True

    async def _post(self, body: dict) -> None:
        async with self.http.post(self.url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status >= 300:
                raise DeliveryFailed(f"webhook answered HTTP {resp.status}")


class StorageAlarm:
    """``storage.full`` once per episode of a full data-dir disk, ``storage.recovered`` when it is over."""

    def __init__(self, events: EventLog, data_dir: Path, *, interval: float = 5.0) -> None:
        self.events = events
        self.data_dir = data_dir
        self.interval = interval
        self.full: str | None = None  # what is full, while it is

    def failed(self, problem: str) -> None:
        """A write failed (or was refused) for want of space: raise the alarm unless it is raised already."""
        if self.full is None:
            self.full = problem
            self.events.record(
                "storage.full",
                f"{problem}. Registrations, token rotations and restarts answer 507 until space is freed; running "
                "instances keep serving",
                level="error",
            )

    def check(self) -> None:
        """Compare the data dir's disk with the alarm's state (blocking: one statvfs; events on a change only)."""
        problem = disk_problem(self.data_dir)
        if problem is not None:
            self.failed(problem)
        elif self.full is not None:
            self.full = None
            self.events.record("storage.recovered", f"the data dir {self.data_dir} has room again", level="info")

    async def run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # the watch outlives any one failed check
                log.exception("storage alarm: this check failed; trying again in %gs", self.interval)
            await asyncio.sleep(self.interval)


STORAGE_ALARM = web.AppKey("storage_alarm", StorageAlarm)
