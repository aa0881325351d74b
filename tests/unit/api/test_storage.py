"""A full disk or a locked database maps to 507 / 503 wherever it was raised, and never renders as a 500."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError

from bridge import store
from bridge.api.middleware import error_middleware
from bridge.errors import DatabaseBusy, InsufficientStorage
from bridge.storage import disk_problem, storage_error


def test_full_disk_errors_map_to_507_wherever_they_sit() -> None:
    wrapped = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    for exc in (OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EDQUOT, "Disk quota exceeded"),
                wrapped):
        assert isinstance(storage_error(exc), InsufficientStorage), exc
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("could not write runtime.json") from inner
    except RuntimeError as outer:
        assert isinstance(storage_error(outer), InsufficientStorage)


def test_a_locked_database_maps_to_503_with_retry_after() -> None:
    mapped = storage_error(OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked")))
    assert isinstance(mapped, DatabaseBusy) and mapped.status == 503 and "Retry-After" in mapped.headers


def test_other_errors_are_not_storage_errors() -> None:
    for exc in (OSError(errno.EACCES, "denied"), ValueError("x"), sqlite3.OperationalError("no such table: x")):
        assert storage_error(exc) is None


def test_disk_problem_of_a_roomy_disk_is_none(tmp_path: Path) -> None:
    assert disk_problem(tmp_path / "not-yet" / "made") is None
    assert "full" in (disk_problem(tmp_path, min_free=2**62) or "")


async def test_a_database_locked_by_another_writer_is_a_503_not_a_500(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", busy_timeout=0.2)
    holder = sqlite3.connect(tmp_path / "db.sqlite", timeout=0)  # a backup or a sqlite3 shell holding the lock
    holder.execute("BEGIN EXCLUSIVE")

    async def write(_request: web.Request) -> web.Response:
        with store.session(engine) as db:
            store.add_event(db, kind="x", message="y")
        return web.json_response({})

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/write", write)
    try:
        async with TestClient(TestServer(app)) as client:
            resp = await client.post("/write")
            assert resp.status == 503, await resp.text()
            assert resp.headers["Retry-After"] == "2"
            assert (await resp.json())["error"]["code"] == "database_busy"
            holder.rollback()
            assert (await client.post("/write")).status == 200  # the lock gone, the same call succeeds
    finally:
        holder.close()
        engine.dispose()
