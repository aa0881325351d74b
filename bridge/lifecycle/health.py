"""HealthMonitor: probes every instance, heals what can be healed, says why when it cannot, frees the idle.

Each sweep (every PROBE_INTERVAL, each probe jittered so instances are not probed in lock-step):

* the runtime says whether the instance still runs; a dead one is restarted on its port;
* an MCP ``ping`` on the monitor's own session says whether it answers; one failure makes it
  ``unhealthy`` (requests still pass), PROBE_FAILURES in a row restart it;
* restarts back off exponentially (tenacity) and are budgeted: RESTART_LIMIT restarts within
  RESTART_WINDOW and the instance is ``failed``, keeping its exit code, OOM flag and last log lines;
* with IDLE_TIMEOUT, an instance without MCP traffic (and without open streams) that long goes ``idle``.

A failure inside one cycle (a database away, a runtime error) is logged and the next cycle goes on, as
JupyterHub's hub keeps polling its spawners whatever one of them does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_attempt, wait_exponential

from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.leader import Leadership
from bridge.lifecycle.reconcile import reconcile
from bridge.lifecycle.routes import Key, Route
from bridge.mcp.client import McpPinger, ProbeFailed
from bridge.mcp.verify import Impostor
from bridge.models import READY, InstanceState, utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0
WATCHED = READY  # paused instances are frozen on purpose: not probed


class HealthMonitor:
    def __init__(
        self, instances: InstanceManager, leadership: Leadership, follow: Callable[[], Awaitable[None]]
    ) -> None:
        self.instances = instances
        self.table = instances.table
        self.settings = instances.settings
        self.leadership = leadership
        self.follow = follow  # a follower bridge reloads the leader's database with it
        self._pingers: dict[Key, McpPinger] = {}
        self._failures: dict[Key, int] = {}
        self._heals: dict[Key, asyncio.Task[None]] = {}
        self._checks: dict[Key, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Sweep while this bridge holds the monitor lease; follow the leader's database otherwise."""
        reconciled = self.leadership.leading
        while True:
            await asyncio.sleep(self.settings.probe_interval)
            try:
                reconciled = await self.cycle(reconciled)
            except Exception:
                log.exception("health monitor: this cycle failed; trying again in %gs", self.settings.probe_interval)

    async def cycle(self, reconciled: bool) -> bool:
        """One round; returns whether this bridge has reconciled since it (last) took the lease."""
        if not await asyncio.to_thread(self.leadership.renew):
            await self.follow()
            return False
        if not reconciled:  # just took over from a bridge that died: see what runs first
            await self.follow()
            await reconcile(self.instances)
        await self.sweep()
        return True

    async def sweep(self) -> None:
        routes = [r for r in self.table if r.state in WATCHED and r.key not in self._heals]
        results = await asyncio.gather(*(self._jittered(r) for r in routes), return_exceptions=True)
        for route, result in zip(routes, results, strict=True):
            if isinstance(result, Exception):
                log.error("health check of %s/%s failed: %r", route.client_id, route.service, result)
        await self._idle_sweep()

    async def close(self) -> None:
        for task in self._heals.values():
            task.cancel()
        await asyncio.gather(*self._heals.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.leadership.release)

    # ---- probing -----------------------------------------------------------------------------------

    async def _jittered(self, route: Route) -> None:
        await asyncio.sleep(random.uniform(0, self.settings.probe_interval * 0.25))
        await self.check(route)

    async def check_now(self, route: Route) -> bool:
        """A request could not reach the instance: judge it now, not at the next sweep (one check at a time).

        True when it does not serve (dead and being healed, or not ready): the request waits for it.
        """
        if not self.leadership.leading:
            return route.state not in READY  # only the lease holder heals; a follower's request waits for it
        if route.state in WATCHED and route.key not in self._heals:
            task = self._checks.get(route.key)
            if task is None:
                task = asyncio.create_task(self.check(route), name=f"check {route.key}")
                self._checks[route.key] = task
                task.add_done_callback(lambda _: self._checks.pop(route.key, None))
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        return route.state not in READY

    def _watched(self, route: Route) -> bool:
        """Still ours to judge: not removed, restarted, paused or stopped by someone else meanwhile."""
        return self.table.holds(route) and route.state in WATCHED

    async def check(self, route: Route) -> None:
        poll = await self.instances.runtime.poll(route.backend_state)
        if not self._watched(route):
            return
        if not poll.running:
            code = f" with code {poll.exit_code}" if poll.exit_code is not None else ""
            reason = f"exited{code}" + (" (killed: out of memory)" if poll.oom_killed else "")
            self.table.record(route, "instance.died", f"instance {reason}", "warning")
            self.heal(route, reason)
            return
        pinger = self._pingers.setdefault(route.key, McpPinger(self.instances.http))
        try:
            await self.instances.verified(route, timeout=self.settings.probe_timeout)
            seconds = await pinger.ping(
                route.port, route.path, route.transport, timeout=self.settings.probe_timeout, key=route.instance_key
            )
        except Impostor as exc:  # something else answers there: no key, no traffic; heal at once
            self.table.record(route, "instance.impostor", str(exc), "error")
            self.heal(route, "an impostor answered on its address")
            return
        except ProbeFailed as exc:
            self._probe_failed(route, str(exc))
            return
        self._probe_ok(route, seconds)

    def _probe_ok(self, route: Route, seconds: float) -> None:
        self._failures.pop(route.key, None)
        if not self._watched(route):
            return
        fields = {"last_probe_at": utcnow(), "last_probe_ms": round(seconds * 1000, 2)}
        if route.state == InstanceState.UNHEALTHY:
            message = f"answers again ({seconds * 1000:.0f} ms)"
            event = ("instance.recovered", message)
            self.table.transition(route, InstanceState.RUNNING, last_error=None, event=event, **fields)
        else:
            self.table.update(route, **fields)

    def _probe_failed(self, route: Route, reason: str) -> None:
        if not self._watched(route):
            return
        failures = self._failures[route.key] = self._failures.get(route.key, 0) + 1
        if route.state == InstanceState.RUNNING:
            message = f"health probe failed: {reason}"
            event = ("instance.unhealthy", message)
            self.table.transition(route, InstanceState.UNHEALTHY, last_error=message, event=event, level="warning")
        if failures >= self.settings.probe_failures:
            message = f"{failures} failed probes in a row; restarting"
            self.table.record(route, "instance.unresponsive", message, "warning")
            self.heal(route, f"unresponsive ({failures} failed probes: {reason})")

    # ---- healing -----------------------------------------------------------------------------------

    def heal(self, route: Route, reason: str) -> None:
        """Restart in the background (one heal per instance at a time)."""
        if route.key in self._heals or not self._watched(route):
            return
        # At once, not in the task: from now on requests are held for the new instance, not sent to the dead one.
        self.table.transition(route, InstanceState.RESTARTING, step="restarting")
        self._failures.pop(route.key, None)
        self._pingers.pop(route.key, None)
        task = asyncio.create_task(self._heal(route, reason), name=f"heal {route.key}")
        self._heals[route.key] = task
        task.add_done_callback(lambda _: self._heals.pop(route.key, None))

    def _budget_left(self, route: Route) -> int:
        now = time.monotonic()
        while route.restart_times and now - route.restart_times[0] > self.settings.restart_window:
            route.restart_times.popleft()
        return self.settings.restart_limit - len(route.restart_times)

    async def _heal(self, route: Route, reason: str) -> None:
        instances = self.instances
        tail = await instances.tail(route)
        if not self.table.holds(route) or route.state != InstanceState.RESTARTING:
            return  # removed, or restarted by someone else meanwhile
        self.table.update(route, last_log=tail)
        await instances.stop_quietly(route)
        left = self._budget_left(route)
        recent = self.settings.restart_limit - left
        if recent and left > 0:  # crashes close together wait longer each time
            await asyncio.sleep(min(MAX_BACKOFF, self.settings.restart_backoff * 2 ** (recent - 1)))
        ok = False
        with contextlib.suppress(RetryError):
            async for attempt in self._retrying(left):
                with attempt:
                    ok = await self._restart_once(route)
                if not attempt.retry_state.outcome.failed:
                    attempt.retry_state.set_result(ok)
        if not ok and self.table.holds(route) and route.state == InstanceState.RESTARTING:
            await self._give_up(route, reason, tail)

    def _retrying(self, attempts: int) -> AsyncRetrying:
        backoff = self.settings.restart_backoff
        return AsyncRetrying(
            stop=stop_after_attempt(max(attempts, 1)),
            wait=wait_exponential(multiplier=backoff, min=backoff, max=MAX_BACKOFF),
            retry=retry_if_result(lambda ok: not ok),
        )

    async def _restart_once(self, route: Route) -> bool:
        if self._budget_left(route) <= 0 or not self.table.holds(route) or route.state != InstanceState.RESTARTING:
            return False
        route.restart_times.append(time.monotonic())
        self.table.update(route, restarts=route.restarts + 1)
        return await self.instances.start(route, restarting=True, final=False)

    async def _give_up(self, route: Route, reason: str, tail: list[str]) -> None:
        window = self.settings.restart_window
        last = (await self.instances.tail(route)) or tail
        message = f"{len(route.restart_times)} restarts within {window:.0f}s; giving up ({reason})"
        self.table.transition(
            route, InstanceState.FAILED, last_error=f"crash loop: {reason}", last_log=last,
            event=("instance.failed", message), level="error",
        )

    # ---- scale to zero -----------------------------------------------------------------------------

    async def _idle_sweep(self) -> None:
        """PAUSE_AFTER freezes quiet instances; IDLE_TIMEOUT stops quiet ones (paused ones too) to free memory."""
        pause_after, timeout = self.settings.pause_after, self.settings.idle_timeout
        if not (pause_after or timeout):
            return
        now = time.monotonic()
        for route in self.table:
            quiet = now - route.last_activity
            if route.key in self._heals:
                continue
            resting = route.state in (InstanceState.RUNNING, InstanceState.PAUSED) and route.streams == 0
            if timeout and resting and quiet > timeout:
                await self.instances.idle(route, f"no MCP traffic for {quiet:.0f}s (PARADISE_IDLE_TIMEOUT={timeout:g})")
            elif pause_after and route.state == InstanceState.RUNNING and route.busy == 0 and quiet > pause_after:
                # An open listening stream does not keep it awake: it is quiet, and resumes on thaw.
                why = f"no MCP traffic for {quiet:.0f}s (PARADISE_PAUSE_AFTER={pause_after:g})"
                await self.instances.pause(route, why)
