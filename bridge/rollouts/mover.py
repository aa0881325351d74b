"""Moving one instance to a version the way a client never notices: the invisible-restart path.

The route is marked ``restarting`` first (from then on new requests are held, not sent), the old launch
stops gracefully (the calls it is answering finish within PARADISE_STOP_GRACE), the route is pinned to the
version and started again; sessions are replayed on the new launch by the proxy as after any restart. A
start that fails leaves the route ``restarting`` (``final=False``): the requests held for it wait for the
rollback, instead of failing at once as they would on a ``failed`` instance.
"""

from __future__ import annotations

import asyncio
import contextlib

from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.routes import Route
from bridge.models import InstanceState

TICK = 0.05
QUIET = 5.0  # seconds to wait for a moment without calls in flight


async def move(instances: InstanceManager, route: Route, version: str, *, final: bool = False) -> bool:
    """Run ``route`` on ``version``; True once it serves there. Never raises for the instance's failure."""
    table = instances.table
    if not table.holds(route):
        return False
    async with route.freeze:  # never between a thaw and the state it sets; a frozen process cannot stop gracefully
        if route.state == InstanceState.PAUSED:
            with contextlib.suppress(Exception):
                await instances.runtime.unpause(route.backend_state)
        table.transition(route, InstanceState.RESTARTING, step=f"moving to version {version}")
    await instances.cancel_start(route)
    await instances.stop_quietly(route)
    if not table.holds(route):
        return False
    table.update(route, version=version)
    table.record(route, "instance.version", f"moving to version {version}")
    try:
        return await instances.start(route, restarting=True, final=final)
    except Exception:  # removed meanwhile (NotFound): nothing to move
        return False


async def quiet(route: Route) -> None:
    """Wait (bounded) for a moment with no call in flight on the route (listening GET streams do not count):
    calls held while it moved are answered by then, so their wait is not taken for the new version's latency.
    Only for a serving route: a held call counts as in flight until its instance serves."""
    for _ in range(int(QUIET / TICK)):  # a counter changed by the proxy on every request: polled, bounded
        if not route.busy:
            return
        await asyncio.sleep(TICK)
