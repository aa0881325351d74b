"""The gate after each wave: the wave's instances against the rest of the service over the soak window.

Facts come from what already exists: each instance's state and restart count (the lifecycle) and the proxy's
per-instance request metrics (calls, failed calls, latency buckets; bridge/observability/metrics.py), read
before and after the soak, so only the real traffic of the window counts. The wave fails when

* one of its instances stops serving (readiness: neither running nor unhealthy), or restarts more than
  PARADISE_ROLLOUT_MAX_RESTARTS times;
* with at least PARADISE_ROLLOUT_MIN_CALLS calls, its share of failed calls exceeds the rest's (0 without
  traffic) by more than PARADISE_ROLLOUT_MAX_ERROR_RATE;
* with MIN_CALLS calls in both groups, its p95 latency exceeds PARADISE_ROLLOUT_MAX_LATENCY_RATIO times the
  rest's and 100 ms (latencies are bucketed, so small ones are not compared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.lifecycle.routes import Key, Route
from bridge.models import READY
from bridge.observability.metrics import LATENCY_BUCKETS, BridgeMetrics
from bridge.settings import BridgeSettings

LATENCY_FLOOR = 0.1  # seconds: p95s under this are never compared


@dataclass
class Sample:
    """One instance's counters at one moment (they only grow)."""

    calls: int = 0
    failed: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    restarts: int = 0


def snapshot(routes: list[Route], metrics: BridgeMetrics) -> dict[Key, Sample]:
    traffic, failures = metrics.traffic(), metrics.failures()
    samples = {}
    for route in routes:
        _count, buckets = traffic.get(route.key, (0, [0] * len(LATENCY_BUCKETS)))
        samples[route.key] = Sample(sum(buckets), failures.get(route.key, 0), list(buckets), route.restarts)
    return samples


@dataclass
class Group:
    """What a group of instances showed in the window."""

    calls: int = 0
    failed: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))

    @property
    def error_rate(self) -> float:
        return self.failed / self.calls if self.calls else 0.0

    @property
    def p95(self) -> float | None:
        """The upper bound of the bucket holding the 95th percentile call (None without calls)."""
        total, seen = sum(self.buckets), 0
        for bound, count in zip(LATENCY_BUCKETS, self.buckets, strict=True):
            seen += count
            if total and seen >= 0.95 * total:
                return bound
        return None

    def figures(self) -> dict[str, Any]:
        p95 = self.p95
        return {"calls": self.calls, "failed": self.failed, "error_rate": round(self.error_rate, 4),
                "p95_ms": None if p95 is None else (round(p95 * 1000) if p95 != float("inf") else "inf")}


def window(before: dict[Key, Sample], after: dict[Key, Sample], keys: list[Key]) -> Group:
    group = Group()
    for key in keys:
        old, new = before.get(key, Sample()), after.get(key, Sample())
        group.calls += max(0, new.calls - old.calls)
        group.failed += max(0, new.failed - old.failed)
        group.buckets = [g + max(0, n - o) for g, n, o in zip(group.buckets, new.buckets, old.buckets, strict=True)]
    return group


def judge(
    settings: BridgeSettings, wave: list[Route], rest: list[Route], before: dict[Key, Sample], after: dict[Key, Sample],
    *, whole: bool = True,
) -> tuple[str | None, dict[str, Any]]:
    """(None, figures) when the wave passes; (the reason in words, figures) when it fails. During the soak
    (``whole`` false) a failure ends it early; latency is judged on the whole window only, as a few calls'
    p95 says little."""
    ours, theirs = window(before, after, [r.key for r in wave]), window(before, after, [r.key for r in rest])
    figures = {"wave_traffic": ours.figures(), "rest_traffic": theirs.figures()}
    return _reason(settings, wave, before, after, ours, theirs, whole), figures


def _reason(
    settings: BridgeSettings, wave: list[Route], before: dict[Key, Sample], after: dict[Key, Sample],
    ours: Group, theirs: Group, whole: bool,
) -> str | None:
    for route in wave:
        if route.state not in READY:
            why = f": {route.last_error}" if route.last_error else ""
            return f"{route.client_id}/{route.service} is {route.state}, not serving{why}"
        restarts = after[route.key].restarts - before.get(route.key, Sample()).restarts
        if restarts > settings.rollout_max_restarts:
            return f"{route.client_id}/{route.service} restarted {restarts} times during the soak"
    enough = settings.rollout_min_calls
    if ours.calls >= enough and ours.error_rate > theirs.error_rate + settings.rollout_max_error_rate:
        return (f"error rate {ours.error_rate:.1%} ({ours.failed}/{ours.calls} calls) against "
                f"{theirs.error_rate:.1%} on the other instances")
    p95, base = ours.p95, theirs.p95
    if whole and ours.calls >= enough and theirs.calls >= enough and p95 is not None and base is not None:
        limit = max(base * settings.rollout_max_latency_ratio, LATENCY_FLOOR)
        if p95 > limit:
            return f"p95 latency {p95 * 1000:.0f} ms against {base * 1000:.0f} ms on the other instances"
    return None
