"""Alert webhook: warning and error events are POSTed as JSON to PARADISE_ALERT_WEBHOOK.

Delivery runs in its own task fed by the event log's live feed: retried with exponential back-off,
dropped after the last try (and logged), and never able to slow the bridge (a full feed drops events).
"""

from __future__ import annotations

import logging

import aiohttp
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

from bridge.events import EventLog
from bridge.models import EventView

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
