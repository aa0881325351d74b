"""How many CPUs a test run may use and how many are free right now.

Free CPUs are measured, not guessed from the load average: Linux counts tasks in uninterruptible
sleep in the load, and on this kind of VM an idle machine reads 1.0-1.3 on two CPUs, which would
make every run serial.  Two reads of /proc/stat a moment apart say how much of the CPUs' time was
idle in between."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

SAMPLE_S = 0.15
"""How long the idle sample lasts: long enough to span a few scheduler ticks, short next to a test
run that is only planned in parallel when it takes seconds."""
_PROC_STAT = Path("/proc/stat")
_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _quota() -> float | None:
    """The cgroup v2 CPU limit (a container started with --cpus), or None without one."""
    try:
        quota, period = _CPU_MAX.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(int(quota) / int(period), 0.0)
    except (ValueError, ZeroDivisionError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on (affinity), lowered to the container's CPU limit if it has one."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _quota()
    if quota is not None:
        count = min(count, max(1, int(quota + 0.5)))
    return count


def _times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from the first line of /proc/stat."""
    try:
        with _PROC_STAT.open(encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return idle, sum(values[:8])  # guest time is already counted in user time


async def idle_cpus(sample_s: float = SAMPLE_S) -> float | None:
    """CPUs' worth of idle time over a short sample (1.9 on an idle two-CPU machine), capped at
    available_cpus(); None where /proc/stat cannot be read."""
    before = _times()
    if before is None:
        return None
    await asyncio.sleep(sample_s)
    after = _times()
    if after is None or after[1] <= before[1]:
        return None
    share = (after[0] - before[0]) / (after[1] - before[1])
    return round(min(share * (os.cpu_count() or 1), available_cpus()), 2)
