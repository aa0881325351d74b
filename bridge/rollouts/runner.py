"""RolloutRunner: the leader's task that drives every active rollout, and what the API asks of rollouts.

Like the health monitor (bridge/lifecycle/health.py) only the bridge holding the monitor lease acts: each
tick it reads the active rollouts from the database and gives every running, rolled-back or aborted one
without a driver here a ``Driver`` (bridge/rollouts/driver.py). A bridge that starts (or takes the lease
over) therefore resumes or finishes what the last leader left. Every bridge, leader or not, reads the
services' current versions each tick, so an instance it starts runs the version a finished rollout chose.
The API's writes (start, pause, resume, abort) go to the database from whichever bridge took them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from bridge import store
from bridge.catalog.services import refresh_catalog
from bridge.catalog.versions import base_name, known
from bridge.errors import Conflict, NotFound
from bridge.eventloop import background
from bridge.keys import ENGINE, MANAGER, METRICS, SETTINGS
from bridge.models import Rollout
from bridge.rollout_settings import parse_waves
from bridge.rollouts.driver import Context, Driver
from bridge.rollouts.schema import ABORTED, ACTIVE, PAUSED, RUNNING, RolloutCreate, RolloutView

log = logging.getLogger(__name__)
TICK = 1.0  # seconds between looks at the database (a start, resume or abort on this bridge wakes it at once)
# What each control does: the states it acts from, the state it sets, the event it records.
CONTROLS = {
    "pause": (frozenset({RUNNING}), PAUSED, "rollout.paused"),
    "resume": (frozenset({PAUSED}), RUNNING, "rollout.resumed"),
    "abort": (ACTIVE, ABORTED, "rollout.aborted"),
}


class RolloutRunner:
    def __init__(self, ctx: Context, leading: Callable[[], bool]) -> None:
        self.ctx = ctx
        self.leading = leading
        self._drivers: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("rollouts: this tick failed; trying again in %gs", TICK)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)
            self._wake.clear()

    async def tick(self) -> None:
        rollouts, versions = await asyncio.to_thread(self._read)
        current = self.ctx.manager.instances.current_versions
        current.clear()
        current.update(versions)
        if not self.leading():
            return
        for rollout in rollouts:
            if rollout.state == PAUSED or rollout.id in self._drivers:
                continue
            task = asyncio.create_task(Driver(self.ctx, rollout).run(), name=f"rollout {rollout.service}")
            self._drivers[rollout.id] = task
            task.add_done_callback(lambda _, key=rollout.id: self._drivers.pop(key, None))

    def _read(self) -> tuple[list[Rollout], dict[str, str]]:
        with store.session(self.ctx.engine) as db:
            return store.active_rollouts(db), store.current_versions(db)

    async def close(self) -> None:
        for task in self._drivers.values():
            task.cancel()
        await asyncio.gather(*self._drivers.values(), return_exceptions=True)

    # ---- what the API asks -------------------------------------------------------------------------

    async def start(self, body: RolloutCreate) -> RolloutView:
        settings, instances = self.ctx.settings, self.ctx.manager.instances
        await asyncio.to_thread(refresh_catalog, instances.catalog, settings.catalog, settings.data_dir)
        spec = instances.catalog.get(body.service)
        if spec is None:  # 404: the request is well formed, the catalog has no such thing
            raise NotFound(f"no service {body.service!r} in the catalog", service=body.service)
        if body.to not in known(spec):
            raise NotFound(f"{body.service} has no version {body.to!r}; known: {', '.join(known(spec))}",
                           service=body.service)  # fmt: skip
        current = instances.current_versions.get(body.service) or base_name(spec)
        pinned = {r.version or current for r in instances.table if r.service == body.service}
        if pinned <= {body.to} and current == body.to:
            raise Conflict(f"{body.service} already runs {body.to}", service=body.service)
        waves = body.waves or parse_waves(settings.rollout_waves)
        soak = settings.rollout_soak if body.soak is None else body.soak
        row = Rollout(service=body.service, from_version=current, to_version=body.to, waves=waves, soak=soak)
        if not await asyncio.to_thread(self._insert, row):
            raise Conflict(f"a rollout of {body.service} is already under way", service=body.service)
        self.ctx.manager.events.record(
            "rollout.started", f"rollout {current} -> {body.to} in waves {waves} (soak {soak:g}s)", service=body.service
        )
        self._wake.set()
        return self.view(row)

    def _insert(self, row: Rollout) -> bool:
        with store.session(self.ctx.engine) as db:
            return store.add_rollout(db, row) is not None

    async def control(self, service: str, action: str) -> RolloutView:
        """pause, resume or abort the service's active rollout; 404 without one ever, 409 from a wrong state."""
        allowed, state, kind = CONTROLS[action]
        row = await self.latest(service)
        fields = {"state": state} | ({"reason": "aborted by the operator"} if state == ABORTED else {})

        def write() -> bool:
            with store.session(self.ctx.engine) as db:
                active = row.id in {r.id for r in store.active_rollouts(db)}
                return active and store.update_rollout(db, rollout_id=row.id, expect=allowed, **fields)

        if not await asyncio.to_thread(write):
            raise Conflict(f"cannot {action} the rollout of {service}: it is {row.state}", service=service)
        self.ctx.manager.events.record(kind, f"rollout to {row.to_version}: {action}", service=service)
        self._wake.set()
        return await self.get(service)

    async def latest(self, service: str) -> Rollout:
        def read() -> Rollout | None:
            with store.session(self.ctx.engine) as db:
                return store.latest_rollout(db, service=service)

        row = await asyncio.to_thread(read)
        if row is None:
            raise NotFound(f"no rollout of {service!r}", service=service)
        return row

    async def get(self, service: str) -> RolloutView:
        views = await self._views(lambda db: [store.latest_rollout(db, service=service)])
        if not views:
            raise NotFound(f"no rollout of {service!r}", service=service)
        return views[0]

    async def list(self) -> list[RolloutView]:
        return await self._views(lambda db: store.list_rollouts(db))

    async def _views(self, rows: Callable[[store.Session], list[Rollout | None]]) -> list[RolloutView]:
        def read() -> tuple[list[Rollout | None], set[int | None]]:
            with store.session(self.ctx.engine) as db:
                return rows(db), {r.id for r in store.active_rollouts(db)}

        found, active = await asyncio.to_thread(read)
        return [self.view(row, row.id in active) for row in found if row is not None]

    def view(self, row: Rollout, active: bool = True) -> RolloutView:
        instances = self.ctx.manager.instances
        routes = [r for r in instances.table if r.service == row.service]
        current = instances.current_versions.get(row.service) or row.from_version
        moved = sum(1 for r in routes if (r.version or current) == row.to_version)
        return RolloutView.model_validate(
            {**row.model_dump(), "id": row.id, "instances": len(routes), "moved": moved, "active": active}
        )


RUNNER = web.AppKey("rollouts", RolloutRunner)


async def rollouts_ctx(app: web.Application) -> AsyncIterator[None]:
    """The runner of this bridge (after the manager's context: it needs its leadership)."""
    manager = app[MANAGER]
    ctx = Context(manager=manager, engine=app[ENGINE], settings=app[SETTINGS], metrics=app[METRICS])
    monitor = manager.monitor
    runner = RolloutRunner(ctx, leading=lambda: monitor is not None and monitor.leadership.leading)
    app[RUNNER] = runner
    async with background(runner.run(), "rollouts"):
        yield
    await runner.close()
