"""EventLog: every state change is stored (for GET /events) and fanned out live to subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.engine import Engine

from bridge import store
from bridge.models import Event, EventView

log = logging.getLogger("bridge.events")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._subscribers: set[asyncio.Queue[EventView]] = set()

    def record(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        client_id: str | None = None,
        service: str | None = None,
    ) -> EventView:
        with store.session(self.engine) as db:
            row = store.add_event(
                db, kind=kind, message=message, level=level, client_id=client_id, service=service
            )
            view = to_view(row)
        where = f"{client_id}/{service}" if service else (client_id or "-")
        log.log(_LEVELS.get(level, logging.INFO), "[%s] %s: %s", where, kind, message)
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(view)  # a slow subscriber loses events rather than slowing the bridge
        return view

    def recent(self, *, client_id: str | None = None, limit: int = 100) -> list[EventView]:
        with store.session(self.engine) as db:
            return [to_view(row) for row in store.list_events(db, client_id=client_id, limit=limit)]

    @contextlib.asynccontextmanager
    async def subscribe(self, *, client_id: str | None = None) -> AsyncIterator[AsyncIterator[EventView]]:
        queue: asyncio.Queue[EventView] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)

        async def feed() -> AsyncIterator[EventView]:
            while True:
                view = await queue.get()
                if client_id is None or view.client_id == client_id:
                    yield view

        try:
            yield feed()
        finally:
            self._subscribers.discard(queue)


def to_view(row: Event) -> EventView:
    return EventView.model_validate(row, from_attributes=True)
