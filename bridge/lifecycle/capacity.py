"""Admission: a registration or a wake that would exceed the caps is refused (429) or makes room (LRU).

Caps: PARADISE_MAX_INSTANCES (instances starting or running) and PARADISE_MAX_MEMORY (their summed memory
limits from the catalog). With PARADISE_EVICT_LRU the least recently used running instance without open
streams is put to sleep (``idle``, woken on its next request) instead of refusing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.errors import TooManyInstances
from bridge.models import InstanceState as S

if TYPE_CHECKING:
    from bridge.lifecycle.instances import InstanceManager, Route

ACTIVE = (S.STARTING, S.RUNNING, S.UNHEALTHY, S.RESTARTING)
RETRY_AFTER = 30


def _usage(instances: InstanceManager) -> tuple[int, int]:
    active = [r for r in instances.routes.values() if r.state in ACTIVE]
    memory = sum(instances.catalog[r.service].memory_bytes or 0 for r in active if r.service in instances.catalog)
    return len(active), memory


def _overflow(instances: InstanceManager, services: list[str]) -> str | None:
    settings = instances.settings
    count, memory = _usage(instances)
    wanted_memory = sum(instances.catalog[s].memory_bytes or 0 for s in services)
    if settings.max_instances and count + len(services) > settings.max_instances:
        cap = settings.max_instances
        return f"{count} of PARADISE_MAX_INSTANCES={cap} instances are active; {len(services)} more asked"
    limit = settings.max_memory_bytes
    if limit and memory + wanted_memory > limit:
        used, asked, cap = (round(v / 2**20) for v in (memory, wanted_memory, limit))
        return f"{used} MiB of PARADISE_MAX_MEMORY={cap} MiB is allotted; {asked} MiB more asked"
    return None


def _least_recently_used(instances: InstanceManager, spare: Route | None) -> Route | None:
    candidates = [
        r for r in instances.routes.values() if r.state == S.RUNNING and r.streams == 0 and r is not spare
    ]
    return min(candidates, key=lambda r: r.last_activity, default=None)


async def admit(instances: InstanceManager, services: list[str], *, waking: Route | None = None) -> None:
    """Return when starting ``services`` fits the caps; raise TooManyInstances (429) otherwise."""
    while (reason := _overflow(instances, services)) is not None:
        victim = _least_recently_used(instances, waking) if instances.settings.evict_lru else None
        if victim is None:
            raise TooManyInstances(f"capacity reached: {reason}", retry_after=RETRY_AFTER)
        await instances.idle(victim, f"stopped to make room ({reason})")
