"""Driving one rollout: wave after wave, each moved, soaked and judged; a failed gate or an abort moves every
moved instance back, the same invisible way.

Every decision is written to the database before it is acted on (the instance's pinned version before its
launch, the rollout's state before its rollback), so a bridge that dies at any point leaves a record the next
leader finishes: a running rollout resumes its wave (moves are idempotent: an instance already on the target
is not moved again, and the wave soaks anew), a rolled-back or aborted one that still holds its service
completes its rollback.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from bridge import store
from bridge.catalog.versions import base_name
from bridge.clients import ClientManager
from bridge.lifecycle.routes import Route
from bridge.models import InstanceState, Rollout
from bridge.observability.metrics import BridgeMetrics
from bridge.rollouts import gate
from bridge.rollouts.mover import move, quiet
from bridge.rollouts.schema import ABORTED, DONE, ROLLED_BACK, RUNNING
from bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
PARALLEL = 4  # instances moved at once (each start costs CPU)
ATTEMPTS = 2  # starts of one instance on a version before it counts as not ready there
CHECK = 0.25  # seconds between looks at a soaking wave
STOPPED = None  # a wave cut short by a pause or an abort
DORMANT = (InstanceState.IDLE, InstanceState.STOPPED, InstanceState.FAILED)


@dataclass
class Context:
    manager: ClientManager
    engine: Engine
    settings: BridgeSettings
    metrics: BridgeMetrics


class Driver:
    def __init__(self, ctx: Context, rollout: Rollout) -> None:
        self.ctx, self.rollout = ctx, rollout
        self.instances = ctx.manager.instances
        self.service = rollout.service
        self._pinned: set[tuple[str, str]] = set()  # instances this pass pinned without starting them

    # ---- reading -----------------------------------------------------------------------------------

    def version_of(self, route: Route) -> str:
        """The version the route runs or is moving to (pinned, else the service's current one)."""
        if route.version:
            return route.version
        current = self.instances.current_versions.get(self.service)
        return current or base_name(self.instances.catalog[self.service])

    def routes(self) -> list[Route]:
        return sorted((r for r in self.instances.table if r.service == self.service), key=lambda r: r.client_id)

    async def _write(self, expect: frozenset[str] | None = None, **fields: Any) -> bool:
        def write() -> bool:
            with store.session(self.ctx.engine) as db:
                return store.update_rollout(db, rollout_id=self.rollout.id, expect=expect, **fields)

        return await asyncio.to_thread(write)

    async def _state(self) -> str:
        def read() -> str:
            with store.session(self.ctx.engine) as db:
                row = store.get_rollout(db, rollout_id=self.rollout.id)
                return row.state if row else ABORTED

        return await asyncio.to_thread(read)

    def _record(self, kind: str, message: str, level: str = "info") -> None:
        self.ctx.manager.events.record(kind, message, level=level, service=self.service)

    # ---- driving -----------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if self.rollout.state == RUNNING:
                await self._waves()
            elif self.rollout.state in (ROLLED_BACK, ABORTED):
                await self._roll_back()
        except asyncio.CancelledError:
            raise
        except Exception:  # the runner starts it again at its next tick; the record says where it was
            log.exception("rollout of %s: this pass failed", self.service)

    async def _waves(self) -> None:
        rollout = self.rollout
        while rollout.wave < len(rollout.waves):
            verdict = await self._wave(rollout.wave)
            if verdict is STOPPED:
                return
            reason, judged = verdict
            rollout.gates = [*(g for g in rollout.gates if g.get("wave") != judged["wave"]), judged]
            if reason is not None:
                await self._fail(f"wave {rollout.wave + 1} ({rollout.waves[rollout.wave]}%): {reason}")
                return
            rollout.wave += 1
            await self._write(wave=rollout.wave, gates=rollout.gates)
            self._record("rollout.wave", f"wave {rollout.wave}/{len(rollout.waves)} to {rollout.to_version} passed "
                         f"its gate ({judged['moved']}/{judged['instances']} instances moved)")  # fmt: skip
        await self._done()

    async def _wave(self, index: int) -> tuple[str | None, dict[str, Any]] | None:
        rollout, began = self.rollout, time.monotonic()
        routes = self.routes()
        want = math.ceil(rollout.waves[index] * len(routes) / 100)
        moved = [r for r in routes if self.version_of(r) == rollout.to_version]
        # Serving instances first: a wave of sleeping ones would show the gate nothing.
        todo = sorted((r for r in routes if self.version_of(r) != rollout.to_version), key=self._serving_first)
        todo = todo[: max(0, want - len(moved))]
        started = [r for r in todo if not self._pin_only(r, rollout.to_version)]
        results = await self._move_all(started, rollout.to_version)
        failed = [r for r, ok in zip(started, results, strict=True) if not ok and self.instances.table.holds(r)]
        judged_now = [r for r in self.routes() if not self._unjudged(r)]
        wave = [r for r in judged_now if self.version_of(r) == rollout.to_version]
        rest = [r for r in judged_now if r not in wave]
        now_on = [r for r in self.routes() if self.version_of(r) == rollout.to_version]
        judged: dict[str, Any] = {"wave": index + 1, "percent": rollout.waves[index], "moved": len(now_on),
                                  "instances": len(self.routes()), "judged": len(wave)}  # fmt: skip
        if failed:
            names = ", ".join(f"{r.client_id} ({r.last_error or r.state})" for r in failed)
            return f"not ready on {rollout.to_version}: {names}", {**judged, "ok": False}
        await self._settled(wave)
        await asyncio.gather(*(quiet(r) for r in wave))
        before = gate.snapshot(wave + rest, self.ctx.metrics)
        ticks = max(1, math.ceil(rollout.soak / CHECK))
        for tick in range(1, ticks + 1):
            await asyncio.sleep(CHECK if rollout.soak else 0)
            if await self._state() != RUNNING:
                return STOPPED
            now = gate.snapshot(wave + rest, self.ctx.metrics)
            reason, figures = gate.judge(self.ctx.settings, wave, rest, before, now, whole=tick == ticks)
            if reason is not None:
                break
        seconds = round(time.monotonic() - began, 2)
        return reason, {**judged, "ok": reason is None, "reason": reason, "seconds": seconds, **figures}

    @staticmethod
    def _serving_first(route: Route) -> tuple[bool, str]:
        return route.state in DORMANT, route.client_id

    def _pin_only(self, route: Route, version: str, *, failed_too: bool = True) -> bool:
        """A sleeping instance (idle, stopped; failed before it was moved) is pinned, not started: it starts
        on the version when it is next woken. True when it was; it is then not judged in this pass."""
        asleep = (InstanceState.IDLE, InstanceState.STOPPED) + ((InstanceState.FAILED,) if failed_too else ())
        if route.state not in asleep:
            return False
        self.instances.table.update(route, version=version)
        self.instances.table.record(route, "instance.version", f"pinned to {version} (starts on it when woken)")
        self._pinned.add(route.key)
        return True

    def _unjudged(self, route: Route) -> bool:
        """Asleep on purpose, or failed before this pass pinned it: no traffic, nothing to judge."""
        return route.state in (InstanceState.IDLE, InstanceState.STOPPED) or (
            route.state == InstanceState.FAILED and route.key in self._pinned
        )

    async def _settled(self, wave: list[Route]) -> None:
        """Wait (bounded) for starts under way on the wave, e.g. a new leader's reconcile after a crash."""
        for _ in range(int(self.ctx.settings.ready_timeout / CHECK)):
            if not any(r.state in (InstanceState.STARTING, InstanceState.RESTARTING) for r in wave):
                return
            await asyncio.sleep(CHECK)

    async def _move_all(self, routes: list[Route], version: str, *, final: bool = False) -> list[bool]:
        limit = asyncio.Semaphore(PARALLEL)

        async def one(route: Route) -> bool:
            async with limit:
                for attempt in range(1, ATTEMPTS + 1):  # a start that fails once may be the machine, not the version
                    if await move(self.instances, route, version, final=final and attempt == ATTEMPTS):
                        return True
                    if attempt < ATTEMPTS and self.instances.table.holds(route):
                        self.ctx.manager.table.record(route, "instance.version_retry",
                                                      f"not ready on {version} ({route.last_error}); once more",
                                                      "warning")  # fmt: skip
                return False

        return list(await asyncio.gather(*(one(r) for r in routes)))

    # ---- endings -----------------------------------------------------------------------------------

    async def _fail(self, reason: str) -> None:
        rollout = self.rollout
        if not await self._write(expect=frozenset({RUNNING}), state=ROLLED_BACK, reason=reason, gates=rollout.gates):
            return  # paused or aborted meanwhile: the runner acts on that
        rollout.state, rollout.reason = ROLLED_BACK, reason
        self._record("rollout.gate_failed", f"rollout to {rollout.to_version} failed its gate: {reason}", "warning")
        await self._roll_back()

    async def _roll_back(self) -> None:
        rollout = self.rollout
        back = [r for r in self.routes() if self.version_of(r) != rollout.from_version]
        started = [r for r in back if not self._pin_only(r, rollout.from_version, failed_too=False)]
        results = await self._move_all(started, rollout.from_version, final=True)
        stuck = [r.client_id for r, ok in zip(started, results, strict=True) if not ok]
        note = f"; could not start again on {rollout.from_version}: {', '.join(stuck)}" if stuck else ""

        def write() -> None:
            with store.session(self.ctx.engine) as db:
                if note:
                    store.update_rollout(db, rollout_id=rollout.id, reason=(rollout.reason or "") + note)
                store.release_rollout(db, service=self.service)

        await asyncio.to_thread(write)
        level = "error" if stuck else "warning"
        kind = "rollout.aborted" if rollout.state == ABORTED else "rollout.rolled_back"
        self._record(kind, f"{len(back)} instance(s) back on {rollout.from_version}{note}", level)

    async def _done(self) -> None:
        rollout = self.rollout

        def write() -> bool:
            with store.session(self.ctx.engine) as db:
                if not store.update_rollout(db, rollout_id=rollout.id, expect=frozenset({RUNNING}), state=DONE):
                    return False
                store.set_current_version(db, service=self.service, version=rollout.to_version)
                store.release_rollout(db, service=self.service)
                return True

        if await asyncio.to_thread(write):
            self.instances.current_versions[self.service] = rollout.to_version
            self._record("rollout.done", f"every instance runs {rollout.to_version}")
