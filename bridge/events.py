"""EventLog: every state change is stored (for GET /events) and fanned out live to subscribers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Unpack

from sqlalchemy.engine import Engine

from bridge import store
from bridge.errors import DatabaseBusy, InsufficientStorage
from bridge.models import Event, EventView, utcnow

log = logging.getLogger("bridge.events")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
PRUNE_EVERY = 100  # inserts between prunes: the table holds at most keep + PRUNE_EVERY rows


class EventLog:
    def __init__(self, engine: Engine, *, keep: int = 10000) -> None:
        self.engine = engine
        self.keep = keep
        self._subscribers: set[asyncio.Queue[EventView]] = set()
        # Pruning runs on a worker thread of its own, so a DELETE never holds up the event loop.
        self._pruner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-pruner")
        self._pending: concurrent.futures.Future[int] | None = None
        self._since_prune = PRUNE_EVERY  # the first event prunes what an earlier run left

    def record(self, kind: str, message: str, **fields: Unpack[store.EventFields]) -> EventView:
        """Store the event (level, client_id and service as store.add_event takes them), log it, fan it out."""
        try:
            with store.session(self.engine) as db:
                view = to_view(store.add_event(db, kind=kind, message=message, **fields))
        except (InsufficientStorage, DatabaseBusy) as exc:  # history can wait; the change it reports happened
            log.warning("event %s not stored (%s); logged and sent live only", kind, exc.message)
            view = EventView(id=0, ts=utcnow(), kind=kind, message=message, level=fields.get("level") or "info",
                             client_id=fields.get("client_id"), service=fields.get("service"))
        self._maybe_prune()
        where = f"{view.client_id}/{view.service}" if view.service else (view.client_id or "-")
        log.log(_LEVELS.get(view.level, logging.INFO), "[%s] %s: %s", where, kind, message)
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(view)  # a slow subscriber loses events rather than slowing the bridge
        return view

    def _maybe_prune(self) -> None:
        self._since_prune += 1
        if self._since_prune < PRUNE_EVERY or (self._pending is not None and not self._pending.done()):
            return
        self._since_prune = 0
        self._pending = self._pruner.submit(self.prune)

    def prune(self) -> int:
        """Keep the newest ``keep`` events (blocking); the number deleted. Never raises: events are history."""
        try:
            with store.session(self.engine) as db:
                return store.prune_events(db, keep=self.keep)
        except Exception:
            log.exception("could not prune the events table")
            return 0

    def close(self) -> None:
        self._pruner.shutdown(wait=True)

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
