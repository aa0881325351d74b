"""The events table stays bounded: every PRUNE_EVERY inserts, a worker thread keeps the newest EVENTS_KEEP."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import func, select

from bridge import store
from bridge.events import PRUNE_EVERY, EventLog
from bridge.models import Event


def count(engine) -> int:
    with store.session(engine) as db:
        return db.exec(select(func.count()).select_from(Event)).one()


def test_the_table_keeps_the_newest_events_only(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    events = EventLog(engine, keep=100)
    total = 5 * PRUNE_EVERY + 7
    for i in range(total):
        events.record("test.tick", f"tick {i}", client_id="alice")
    events.close()  # waits for the last prune
    # Pruned while recording (how far depends on how fast the worker thread ran on a busy machine).
    assert count(engine) < total - PRUNE_EVERY
    events.prune()
    kept = events.recent(limit=1000)
    assert len(kept) == 100 and kept[0].message == f"tick {total - 1}"  # the newest survive
    engine.dispose()


def test_an_oversized_table_left_by_an_older_version_is_pruned_by_the_first_event(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with store.session(engine) as db:
        for i in range(500):
            store.add_event(db, kind="old", message=f"old {i}")
    events = EventLog(engine, keep=100)
    events.record("new", "first of this run")
    events.close()
    assert count(engine) == 100
    engine.dispose()
