"""Admission policy, pure: would starting more instances exceed the caps, and whom to put to sleep instead.

Caps: PARADISE_MAX_INSTANCES (instances starting or running) and PARADISE_MAX_MEMORY (their summed memory
limits from the catalog). With PARADISE_EVICT_LRU the least recently used instance without open streams is
put to sleep (paused ones first, then running ones; woken on their next request) instead of refusing. The
lifecycle (``InstanceManager.admit``) acts on these answers; nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bridge.catalog import ServiceSpec
from bridge.lifecycle.routes import Route
from bridge.models import ACTIVE, InstanceState
from bridge.settings import BridgeSettings

RETRY_AFTER = 30
# Paused instances hold memory but no CPU: the cheapest to let go of when room is needed.
EVICTABLE = (InstanceState.PAUSED, InstanceState.RUNNING)


def _memory(catalog: Mapping[str, ServiceSpec], services: Iterable[str]) -> int:
    return sum(catalog[s].memory_bytes or 0 for s in services if s in catalog)


def overflow(
    routes: Iterable[Route], catalog: Mapping[str, ServiceSpec], settings: BridgeSettings, services: list[str]
) -> str | None:
    """Why starting ``services`` would exceed a cap, in words; None when it fits."""
    active = [r for r in routes if r.state in ACTIVE or r.state == InstanceState.PAUSED]
    count, memory = len(active), _memory(catalog, (r.service for r in active))
    wanted_memory = _memory(catalog, services)
    if settings.max_instances and count + len(services) > settings.max_instances:
        cap = settings.max_instances
        return f"{count} of PARADISE_MAX_INSTANCES={cap} instances are active; {len(services)} more asked"
    limit = settings.max_memory_bytes
    if limit and memory + wanted_memory > limit:
        used, asked, cap = (round(v / 2**20) for v in (memory, wanted_memory, limit))
        return f"{used} MiB of PARADISE_MAX_MEMORY={cap} MiB is allotted; {asked} MiB more asked"
    return None


def eviction_candidate(routes: Iterable[Route], spare: Route | None = None) -> Route | None:
    """The instance to put to sleep to make room: paused before running, then least recently used."""
    candidates = [r for r in routes if r.state in EVICTABLE and r.streams == 0 and r is not spare]
    return min(candidates, key=lambda r: (EVICTABLE.index(r.state), r.last_activity), default=None)
