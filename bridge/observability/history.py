"""The last hour of every instance, for the dashboard's charts: memory, CPU, requests/s, p50/p99 latency.

Why here and in memory: the proxy already counts each instance's requests and latency buckets
(``BridgeMetrics.traffic``), and the runtime already records which processes (or container) an instance is;
a chart of the last hour needs only differences of those, taken at a steady pace. Nothing is written to the
database and nothing new is asked of an instance.

Bounded: one sample per ``INTERVAL`` seconds per instance, at most ``MAX_SAMPLES`` kept per instance (a
ring: an hour at 10 s), and an instance the route table no longer has is forgotten at the next sample. So
memory is O(instances x 360 samples), whatever the traffic.

Memory is the resident set of the instance's processes (leader, sandbox PID 1 and their descendants; a
container: its cgroup's ``memory.current``); CPU is the percentage of one core used over the interval,
including reaped children (a test run the quality instance waited for). Latency quantiles are estimated
from the proxy's buckets the way Prometheus' ``histogram_quantile`` does, from the calls (not GET streams)
answered within the interval.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bridge.observability.metrics import LATENCY_BUCKETS

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (client id, service)
INTERVAL = 10.0
WINDOW = 3600.0
MAX_SAMPLES = int(WINDOW // INTERVAL)
FIELDS = ("t", "memory", "cpu", "rps", "p50", "p99")  # one row of a sample, as the page receives it
SAME_START = 0.05  # psutil rounds start times (as process_tree does)
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")


@dataclass(frozen=True)
class Usage:
    """What one instance's processes use now: ``ident`` changes when the instance is another process."""

    ident: str
    memory: int  # bytes
    cpu_seconds: float  # since the instance started


@dataclass(frozen=True)
class Sample:
    t: float  # unix seconds
    memory: int | None
    cpu: float | None  # percent of one core
    rps: float | None
    p50: float | None  # milliseconds
    p99: float | None

    def row(self) -> list[Any]:
        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return [round(self.t, 1), self.memory, r(self.cpu, 1), r(self.rps, 2), r(self.p50, 1), r(self.p99, 1)]


@dataclass(frozen=True)
class _Read:
    """The counters of the previous sample, to take differences from."""

    t: float
    count: int
    buckets: list[int]
    usage: Usage | None


def quantile(buckets: list[int], q: float) -> float | None:
    """Seconds at quantile ``q`` of requests counted per bucket of ``LATENCY_BUCKETS`` (not cumulative), by
    linear interpolation inside the bucket; the open last bucket answers its lower bound. None: no request."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
        if n and seen + n >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - seen) / n
        seen += n
        lower = bound
    return lower


class History:
    """Per-instance rings of samples; ``record`` is called once per interval by ``run``."""

    def __init__(self, max_samples: int = MAX_SAMPLES, interval: float = INTERVAL) -> None:
        self.max_samples = max_samples
        self.interval = interval
        self.samples: dict[Key, collections.deque[Sample]] = {}
        self._last: dict[Key, _Read] = {}
        self._latest: dict[Key, Sample] = {}
        self._tick = asyncio.Event()

    def record(
        self,
        now: float,
        present: Iterable[Key],
        traffic: dict[Key, tuple[int, list[int]]],
        usage: dict[Key, Usage],
    ) -> dict[Key, Sample]:
        """One sample of each present instance; the others are forgotten. Returns the new samples."""
        zero = [0] * len(LATENCY_BUCKETS)
        latest: dict[Key, Sample] = {}
        for key in present:
            count, buckets = traffic.get(key, (0, zero))
            now_usage = usage.get(key)
            sample = self._sample(now, self._last.get(key), count, buckets, now_usage)
            ring = self.samples.get(key)
            if ring is None:
                ring = self.samples[key] = collections.deque(maxlen=self.max_samples)
            ring.append(sample)
            self._last[key] = _Read(now, count, list(buckets), now_usage)
            latest[key] = sample
        for gone in [k for k in self.samples if k not in latest]:
            del self.samples[gone]
            self._last.pop(gone, None)
        self._latest = latest
        self._tick.set()  # wake every socket waiting for this sample, then arm for the next one
        self._tick = asyncio.Event()
        return latest

    @staticmethod
    def _sample(now: float, prev: _Read | None, count: int, buckets: list[int], usage: Usage | None) -> Sample:
        memory = usage.memory if usage else None
        if prev is None or now <= prev.t:
            return Sample(now, memory, None, None, None, None)
        elapsed = now - prev.t
        rps = p50 = p99 = cpu = None
        delta = [a - b for a, b in zip(buckets, prev.buckets, strict=True)]
        if count >= prev.count and min(delta) >= 0:  # else the series was dropped and made again: no rate
            rps = (count - prev.count) / elapsed
            low, high = quantile(delta, 0.5), quantile(delta, 0.99)
            p50 = None if low is None else low * 1000
            p99 = None if high is None else high * 1000
        old = prev.usage
        if usage and old and usage.ident == old.ident and usage.cpu_seconds >= old.cpu_seconds:
            cpu = 100.0 * (usage.cpu_seconds - old.cpu_seconds) / elapsed
        return Sample(now, memory, cpu, rps, p50, p99)

    async def next_sample(self) -> dict[Key, Sample]:
        """Wait for the next ``record`` and return what it sampled."""
        await self._tick.wait()
        return self._latest

    def view(self) -> dict[str, Any]:
        """Every kept sample, as the page's first message carries it."""
        return {
            "interval": self.interval,
            "window": self.interval * self.max_samples,
            "fields": list(FIELDS),
            "instances": {f"{c}/{s}": [x.row() for x in ring] for (c, s), ring in self.samples.items()},
        }


async def run(history: History, manager: Any, metrics: Any) -> None:
    """Sample every instance of ``manager`` each interval, for as long as the bridge runs."""
    while True:
        states = {route.key: dict(route.backend_state) for route in manager.routes()}
        try:
            usage = await asyncio.to_thread(measure_all, states)
        except Exception:  # the charts lose memory/CPU for a sample; the bridge goes on
            log.exception("dashboard history: could not measure the instances")
            usage = {}
        history.record(time.time(), states, metrics.traffic(), usage)
        await asyncio.sleep(history.interval)


# ---- measuring (blocking: runs in a worker thread) ------------------------------------------------------


def measure_all(states: dict[Key, dict[str, Any]], cgroup_root: Path = CGROUP_ROOT) -> dict[Key, Usage]:
    """Memory and CPU of each instance whose runtime state says where it runs (processes or a container)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    if any(state.get("pid") for state in states.values()):
        for proc in psutil.process_iter(["ppid"]):  # one scan of /proc for every instance
            children[proc.info["ppid"] or 0].append(proc.pid)
    found: dict[Key, Usage] = {}
    for key, state in states.items():
        usage = None
        if state.get("container_id"):
            usage = cgroup_usage(str(state["container_id"]), cgroup_root)
        elif state.get("pid"):
            usage = process_usage(state, children)
        if usage is not None:
            found[key] = usage
    return found


def _head(pid: Any, create_time: Any) -> psutil.Process | None:
    """The live process with that pid and start time (never a recycled pid)."""
    with contextlib.suppress(psutil.Error, TypeError, ValueError):
        proc = psutil.Process(int(pid))
        if abs(proc.create_time() - float(create_time or 0.0)) <= SAME_START:
            return proc
    return None


def process_usage(state: dict[str, Any], children: dict[int, list[int]]) -> Usage | None:
    """The leader, the sandbox's PID 1 and all their descendants: resident memory and CPU time summed."""
    sandbox = state.get("sandbox") or {}
    heads = [h for h in (_head(state.get("pid"), state.get("create_time")),
                         _head(sandbox.get("pid"), sandbox.get("create_time"))) if h is not None]
    if not heads:
        return None
    pids, todo = set(), [h.pid for h in heads]
    while todo and len(pids) < 10_000:  # bounded, even if /proc changed under the scan
        pid = todo.pop()
        if pid not in pids:
            pids.add(pid)
            todo.extend(children.get(pid, ()))
    memory, cpu = 0, 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            times = proc.cpu_times()
            memory += proc.memory_info().rss
            cpu += times.user + times.system + times.children_user + times.children_system
    return Usage(f"{heads[0].pid}:{heads[0].create_time()}", memory, cpu)


def cgroup_usage(container_id: str, root: Path = CGROUP_ROOT) -> Usage | None:
    """A container's cgroup (v2 under systemd or cgroupfs, or v1): memory in use and CPU time consumed."""
    if not CONTAINER_ID.fullmatch(container_id):
        return None
    with contextlib.suppress(OSError, ValueError):
        for base in (root / "system.slice" / f"docker-{container_id}.scope", root / "docker" / container_id):
            if (base / "memory.current").is_file():
                memory = int((base / "memory.current").read_text())
                stat = dict(line.split() for line in (base / "cpu.stat").read_text().splitlines() if line.strip())
                return Usage(container_id, memory, int(stat["usage_usec"]) / 1e6)
        v1_memory = root / "memory" / "docker" / container_id / "memory.usage_in_bytes"
        if v1_memory.is_file():
            cpu_ns = int((root / "cpuacct" / "docker" / container_id / "cpuacct.usage").read_text())
            return Usage(container_id, int(v1_memory.read_text()), cpu_ns / 1e9)
    return None
