"""HealthMonitor: watches every running instance and heals what died, within a crash-loop budget.

Minimal for now (runtime poll); MCP-level probes, back-off and the full state machine build on this.
"""

from __future__ import annotations

import asyncio
import random
import time

from bridge import store
from bridge.lifecycle import InstanceManager, Route
from bridge.models import InstanceState as S


class HealthMonitor:
    def __init__(self, instances: InstanceManager) -> None:
        self.instances = instances
        self.settings = instances.settings

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.probe_interval * random.uniform(0.8, 1.2))
            running = [r for r in self.instances.routes.values() if r.state == S.RUNNING]
            await asyncio.gather(*(self.check(r) for r in running), return_exceptions=True)

    async def check(self, route: Route) -> None:
        poll = await self.instances.runtime.poll(route.backend_state)
        # Re-checked after the await: a delete or restart may have begun meanwhile; that is no crash.
        if poll.running or route.state != S.RUNNING or self.instances.routes.get(route.key) is not route:
            return
        tail = await self.instances.tail(route)
        code = f" with code {poll.exit_code}" if poll.exit_code is not None else ""
        oom = " (out of memory)" if poll.oom_killed else ""
        self.instances.record(route, "instance.died", f"instance exited{code}{oom}", "warning")
        await self.heal(route, f"exited{code}{oom}", tail)

    async def heal(self, route: Route, reason: str, tail: list[str]) -> None:
        """Restart on the same port, unless the crash-loop budget is spent: then ``failed``, with the last lines."""
        instances = self.instances
        now = time.monotonic()
        window = self.settings.restart_window
        while route.restart_times and now - route.restart_times[0] > window:
            route.restart_times.popleft()
        if len(route.restart_times) >= self.settings.restart_limit:
            await instances.stop_quietly(route)
            instances.set_state(route, S.FAILED, last_error=f"crash loop: {reason}", last_log=tail)
            message = f"{len(route.restart_times)} restarts within {window:.0f}s; giving up ({reason})"
            instances.record(route, "instance.failed", message, "error")
            return
        route.restart_times.append(now)
        route.restarts += 1
        with store.session(instances.engine) as db:
            store.update_instance(
                db, client_id=route.client_id, service=route.service, restarts=route.restarts, last_log=tail
            )
        await instances.stop_quietly(route)
        instances.start(route, restarting=True)
