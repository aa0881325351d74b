"""BridgeMetrics and its scrape-time collector, on a stand-in manager (no bridge, no sockets)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bridge.errors import Unavailable, UpstreamError
from bridge.observability.metrics import STATES, BridgeMetrics, observe_startup


@dataclass
class FakeRoute:
    client_id: str
    service: str
    state: str
    restarts: int = 0
    last_activity: float = field(default_factory=time.monotonic)


class FakePorts:
    def __init__(self, leased: int, size: int) -> None:
        self.leased, self.size = leased, size

    def usage(self) -> tuple[int, int]:
        return self.leased, self.size


class FakeManager:
    """The two reads the collector makes of the ClientManager facade, over a plain dict of routes."""

    def __init__(self, routes: dict[tuple[str, str], FakeRoute], ports: FakePorts) -> None:
        self.table = routes
        self.ports = ports

    def routes(self) -> list[FakeRoute]:
        return list(self.table.values())

    def client_ids(self) -> list[str]:
        return sorted({r.client_id for r in self.table.values()})


def fake_manager(*routes: FakeRoute, leased: int = 0, size: int = 10) -> FakeManager:
    return FakeManager({(r.client_id, r.service): r for r in routes}, FakePorts(leased, size))


def samples(metrics: BridgeMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by (sample name, labels), parsed back from the text format."""
    out = {}
    for family in text_string_to_metric_families(metrics.render()[0].decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(data: dict, name: str, **labels: str) -> float | None:
    return data.get((name, frozenset(labels.items())))


def relay(metrics: BridgeMetrics, client: str, service: str, *, status: int = 200, sent: int = 10, got: int = 20):
    with metrics.track(client, service, "POST") as track:
        track.sent(sent)
        track.answered(status, got)


def test_requests_bytes_and_latency_per_client_and_service() -> None:
    metrics = BridgeMetrics()
    metrics.watch(fake_manager(FakeRoute("alice", "echo", "running"), FakeRoute("bob", "echo", "running")))
    for _ in range(3):
        relay(metrics, "alice", "echo")
    relay(metrics, "bob", "echo", status=404)
    data = samples(metrics)
    assert value(data, "paradise_requests_total", client="alice", service="echo", method="POST", status="2xx") == 3
    assert value(data, "paradise_requests_total", client="bob", service="echo", method="POST", status="4xx") == 1
    assert value(data, "paradise_relayed_bytes_total", client="alice", service="echo", direction="request") == 30
    assert value(data, "paradise_relayed_bytes_total", client="alice", service="echo", direction="response") == 60
    count = value(data, "paradise_request_duration_seconds_count", client="alice", service="echo", method="POST")
    assert count == 3
    alice = {"client": "alice", "service": "echo", "method": "POST"}
    assert value(data, "paradise_request_duration_seconds_bucket", **alice, le="+Inf") == 3
    assert 0 < value(data, "paradise_request_duration_seconds_sum", **alice) < 5


def test_latency_buckets_are_cumulative_with_prometheus_bounds() -> None:
    """A bucket counts every request at most its bound (le), like a Prometheus Histogram."""
    metrics = BridgeMetrics()
    series = metrics.track("alice", "echo", "POST").series
    for seconds in (0.004, 0.005, 0.02, 0.3, 400.0):
        series.observe(seconds)
    data = samples(metrics)
    alice = {"client": "alice", "service": "echo", "method": "POST"}
    cumulative = {le: value(data, "paradise_request_duration_seconds_bucket", **alice, le=le)
                  for le in ("0.005", "0.01", "0.025", "0.25", "0.5", "300.0", "+Inf")}
    assert cumulative == {"0.005": 2, "0.01": 2, "0.025": 3, "0.25": 3, "0.5": 4, "300.0": 4, "+Inf": 5}
    assert value(data, "paradise_request_duration_seconds_sum", **alice) == pytest.approx(400.329)
    assert value(data, "paradise_request_errors_total", client="bob", service="echo", method="POST",
                 reason="upstream_5xx") is None


def test_errors_are_counted_by_reason() -> None:
    metrics = BridgeMetrics()
    for exc in (Unavailable("not ready"), UpstreamError("refused")):
        with pytest.raises(type(exc)), metrics.track("alice", "echo", "POST"):
            raise exc
    relay(metrics, "alice", "echo", status=500)
    with pytest.raises(RuntimeError), metrics.track("alice", "echo", "POST"):
        raise RuntimeError("bug")
    with pytest.raises(asyncio.CancelledError), metrics.track("alice", "echo", "POST"):
        raise asyncio.CancelledError
    data = samples(metrics)
    labels = {"client": "alice", "service": "echo", "method": "POST"}
    for reason in ("unavailable", "upstream_error", "upstream_5xx", "internal"):
        assert value(data, "paradise_request_errors_total", **labels, reason=reason) == 1, reason
    assert value(data, "paradise_requests_total", **labels, status="5xx") == 4
    assert value(data, "paradise_requests_total", **labels, status="closed") == 1


def test_open_streams_gauge_and_streamed_bytes() -> None:
    metrics = BridgeMetrics()
    labels = {"client": "alice", "service": "echo"}
    with metrics.track("alice", "echo", "GET") as track:
        track.stream_opened(200)
        track.chunk(5)
        track.chunk(7)
        assert value(samples(metrics), "paradise_open_streams", **labels) == 1
    data = samples(metrics)
    assert value(data, "paradise_open_streams", **labels) == 0
    assert value(data, "paradise_relayed_bytes_total", **labels, direction="response") == 12
    assert value(data, "paradise_requests_total", **labels, method="GET", status="2xx") == 1


def test_unusual_methods_share_one_label() -> None:
    metrics = BridgeMetrics()
    with metrics.track("alice", "echo", "PROPFIND") as track:
        track.answered(405, 0)
    assert value(samples(metrics), "paradise_requests_total", client="alice", service="echo", method="other",
                 status="4xx") == 1


def test_instance_states_restarts_clients_and_ports_at_scrape_time() -> None:
    running = FakeRoute("alice", "echo", "running", restarts=2)
    starting = FakeRoute("bob", "slow", "starting")
    manager = fake_manager(running, starting, leased=2, size=30)
    metrics = BridgeMetrics()
    metrics.watch(manager)
    data = samples(metrics)
    for state in STATES:
        expected = 1.0 if state == "running" else 0.0
        assert value(data, "paradise_instance_state", client="alice", service="echo", state=state) == expected
    assert value(data, "paradise_instances", state="running") == 1
    assert value(data, "paradise_instances", state="starting") == 1
    assert value(data, "paradise_instances", state="failed") == 0
    assert value(data, "paradise_instance_restarts_total", client="alice", service="echo") == 2
    assert value(data, "paradise_clients") == 2
    assert value(data, "paradise_port_pool_leased") == 2
    assert value(data, "paradise_port_pool_size") == 30
    starting.state = "running"  # no hook: the next scrape reads the new state
    assert value(samples(metrics), "paradise_instance_state", client="bob", service="slow", state="running") == 1


def test_deleted_clients_series_are_dropped() -> None:
    manager = fake_manager(FakeRoute("alice", "echo", "running"), FakeRoute("bob", "echo", "running"))
    metrics = BridgeMetrics()
    metrics.watch(manager)
    relay(metrics, "alice", "echo")
    relay(metrics, "bob", "echo", status=502)
    del manager.table[("bob", "echo")]
    text = metrics.render()[0].decode()
    assert 'client="alice"' in text
    assert 'client="bob"' not in text


def test_startup_histogram() -> None:
    metrics = BridgeMetrics()
    observe_startup(metrics, "slow", 3.2)
    metrics.observe_startup("slow", 0.4)
    observe_startup(None, "slow", 1.0)  # no metrics: a no-op
    data = samples(metrics)
    assert value(data, "paradise_instance_startup_seconds_count", service="slow") == 2
    assert value(data, "paradise_instance_startup_seconds_bucket", service="slow", le="0.5") == 1
    assert value(data, "paradise_instance_startup_seconds_bucket", service="slow", le="5.0") == 2


def test_registries_are_per_instance_not_global() -> None:
    first, second = BridgeMetrics(), BridgeMetrics()  # would raise "Duplicated timeseries" if shared
    relay(first, "alice", "echo")
    assert "paradise_requests" not in {m.name for m in REGISTRY.collect()}
    assert value(samples(second), "paradise_requests_total", client="alice", service="echo", method="POST",
                 status="2xx") is None


def test_a_failing_port_query_does_not_fail_the_scrape() -> None:
    manager = fake_manager(FakeRoute("alice", "echo", "running"))

    def broken() -> tuple[int, int]:
        raise RuntimeError("database is locked")

    manager.ports.usage = broken
    metrics = BridgeMetrics()
    metrics.watch(manager)
    data = samples(metrics)
    assert value(data, "paradise_instance_state", client="alice", service="echo", state="running") == 1
    assert value(data, "paradise_port_pool_size") is None


def test_tracking_is_cheap() -> None:
    """The proxy's per-request cost: generous bound (tens of microseconds) so a slow CI machine passes."""
    metrics = BridgeMetrics()
    n = 20_000
    began = time.perf_counter()
    for _ in range(n):
        with metrics.track("alice", "echo", "POST") as track:
            track.sent(100)
            track.answered(200, 300)
    per_request = (time.perf_counter() - began) / n
    assert per_request < 50e-6, f"{per_request * 1e6:.1f} us per request"


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    metrics = BridgeMetrics()
    relay(metrics, "alice", "echo")
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    assert metrics.render()[1].startswith("text/plain; version=0.0.4")
