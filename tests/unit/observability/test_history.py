"""The dashboard's per-instance history: bounded rings, rates from counter differences, quantiles from the
proxy's buckets, and memory/CPU of real processes and of a container's cgroup files."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bridge.observability.history import (
    FIELDS,
    History,
    Usage,
    cgroup_usage,
    measure_all,
    quantile,
)
from bridge.observability.metrics import LATENCY_BUCKETS, BridgeMetrics

A, B = ("alice", "echo"), ("bob", "echo")


def buckets(**at: int) -> list[int]:
    """Counts per bucket, by upper bound: buckets(b0_01=3) puts 3 requests in the 10 ms bucket."""
    counts = [0] * len(LATENCY_BUCKETS)
    for name, n in at.items():
        bound = float(name[1:].replace("_", "."))
        counts[LATENCY_BUCKETS.index(bound)] = n
    return counts


def test_a_ring_keeps_at_most_max_samples_and_the_newest_ones() -> None:
    history = History(max_samples=5)
    for i in range(12):
        history.record(1000.0 + 10 * i, [A], {}, {})
    ring = history.samples[A]
    assert len(ring) == 5
    assert [s.t for s in ring] == [1070.0, 1080.0, 1090.0, 1100.0, 1110.0]
    view = history.view()
    assert view["fields"] == list(FIELDS) and len(view["instances"]["alice/echo"]) == 5


def test_the_default_bound_is_one_hour_of_samples() -> None:
    history = History()
    assert history.max_samples * history.interval == 3600
    for i in range(history.max_samples + 50):
        history.record(float(i * history.interval), [A], {}, {})
    assert len(history.samples[A]) == history.max_samples


def test_an_instance_that_is_gone_is_forgotten_at_the_next_sample() -> None:
    history = History()
    history.record(0.0, [A, B], {}, {})
    history.record(10.0, [A], {}, {})
    assert set(history.samples) == {A}
    history.record(20.0, [A, B], {}, {})  # back (registered again): starts without a rate, not from old counts
    assert history.samples[B][-1].rps is None


def test_requests_per_second_and_latency_quantiles_from_counter_differences() -> None:
    history = History()
    history.record(100.0, [A], {A: (50, buckets(b0_01=50))}, {})
    # 20 more requests in 10 s: 18 in the 10-25 ms bucket, 2 in the 1-2.5 s bucket.
    latest = history.record(110.0, [A], {A: (70, buckets(b0_01=50, b0_025=18, b2_5=2))}, {})[A]
    assert latest.rps == pytest.approx(2.0)
    assert 10 < latest.p50 < 25  # interpolated inside the 10-25 ms bucket
    assert 1000 < latest.p99 <= 2500
    quiet = history.record(120.0, [A], {A: (70, buckets(b0_01=50, b0_025=18, b2_5=2))}, {})[A]
    assert quiet.rps == 0 and quiet.p50 is None and quiet.p99 is None


def test_a_counter_that_went_back_gives_no_rate_instead_of_a_negative_one() -> None:
    history = History()
    history.record(0.0, [A], {A: (100, buckets(b0_01=100))}, {})
    latest = history.record(10.0, [A], {A: (3, buckets(b0_01=3))}, {})[A]  # series pruned and made again
    assert latest.rps is None and latest.p50 is None


def test_cpu_is_a_share_of_one_core_and_a_new_process_restarts_it() -> None:
    history = History()
    history.record(0.0, [A], {}, {A: Usage("1:1.0", 10_000_000, 4.0)})
    latest = history.record(10.0, [A], {}, {A: Usage("1:1.0", 12_000_000, 6.5)})[A]
    assert latest.cpu == pytest.approx(25.0) and latest.memory == 12_000_000
    restarted = history.record(20.0, [A], {}, {A: Usage("2:9.0", 8_000_000, 0.3)})[A]
    assert restarted.cpu is None and restarted.memory == 8_000_000


def test_quantile_of_the_open_last_bucket_is_its_lower_bound() -> None:
    assert quantile([0] * len(LATENCY_BUCKETS), 0.5) is None
    counts = [0] * len(LATENCY_BUCKETS)
    counts[-1] = 4
    assert quantile(counts, 0.99) == LATENCY_BUCKETS[-2]


def test_traffic_sums_methods_and_keeps_get_streams_out_of_latency() -> None:
    metrics = BridgeMetrics()
    for method in ("POST", "POST", "GET", "DELETE"):
        with metrics.track("alice", "echo", method) as track:
            track.answered(200, 1)
    count, latency = metrics.traffic()[A]
    assert count == 4 and sum(latency) == 3


async def test_next_sample_wakes_a_waiter_with_the_new_samples() -> None:
    history = History()
    waiter = asyncio.create_task(history.next_sample())
    await asyncio.sleep(0)
    history.record(5.0, [A], {}, {})
    latest = await asyncio.wait_for(waiter, 5)
    assert set(latest) == {A}


def test_memory_and_cpu_of_a_real_process_family(tmp_path: Path) -> None:
    burn = "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'x = bytearray(40_000_000); " \
           "import time; time.sleep(60)']); sum(range(30_000_000)); print('ready', flush=True); c.wait()"
    leader = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert leader.stdout is not None and leader.stdout.readline().strip() == "ready"
        state = {"pid": leader.pid, "create_time": psutil.Process(leader.pid).create_time()}
        child = psutil.Process(leader.pid).children()[0]
        for _ in range(400):  # until the child has filled its buffer (bounded: 20 s)
            if child.memory_info().rss >= 40_000_000:
                break
            time.sleep(0.05)
        usage = measure_all({A: state, B: {"pid": leader.pid, "create_time": 1.0}})  # B: a recycled pid
        assert set(usage) == {A}
        assert usage[A].memory >= 40_000_000  # the child's buffer counts: the family, not the leader alone
        assert usage[A].cpu_seconds > 0.1
        assert usage[A].ident.startswith(f"{leader.pid}:")
    finally:
        for proc in [*psutil.Process(leader.pid).children(recursive=True), psutil.Process(leader.pid)]:
            proc.kill()
        leader.wait()


def test_a_container_is_read_from_its_cgroup_files(tmp_path: Path) -> None:
    cid = "ab" * 32
    scope = tmp_path / "system.slice" / f"docker-{cid}.scope"
    scope.mkdir(parents=True)
    (scope / "memory.current").write_text("52428800\n")
    (scope / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert cgroup_usage(cid, tmp_path) == Usage(cid, 52_428_800, 2.5)
    v1 = "cd" * 32
    (tmp_path / "memory" / "docker" / v1).mkdir(parents=True)
    (tmp_path / "memory" / "docker" / v1 / "memory.usage_in_bytes").write_text("1000\n")
    (tmp_path / "cpuacct" / "docker" / v1).mkdir(parents=True)
    (tmp_path / "cpuacct" / "docker" / v1 / "cpuacct.usage").write_text("3000000000\n")
    assert measure_all({A: {"container_id": v1}}, tmp_path) == {A: Usage(v1, 1000, 3.0)}
    assert cgroup_usage("../../etc", tmp_path) is None  # an id is hex, never a path
    assert cgroup_usage("ef" * 32, tmp_path) is None  # no such container: nothing measured
