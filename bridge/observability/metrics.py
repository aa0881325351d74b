"""Prometheus metrics (``GET /metrics``): one registry per app, never the process-wide default one.

Traffic is counted by the proxy as it relays (``BridgeMetrics.track``); instance states, restarts, clients
and the port pool are read from the manager at scrape time by ``StateCollector``, so they need no hooks.
Start-up durations come from the lifecycle through ``observe_startup``.

Series are labelled only after a request has passed authentication, so the label values are always real
client and service names; a deleted client's series are dropped at the next scrape.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from bridge.errors import BridgeError
from bridge.models import InstanceState

log = logging.getLogger(__name__)
CLIENT_GONE = (asyncio.CancelledError, ConnectionResetError)
STATES = tuple(s.value for s in InstanceState)
METHODS = frozenset({"GET", "POST", "DELETE"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))
STARTUP_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, float("inf"))


class ManagerLike(Protocol):
    """What the scrape-time collector reads of the ClientManager facade."""

    ports: Any

    def routes(self) -> list[Any]: ...

    def client_ids(self) -> list[str]: ...


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        reg = self.registry
        per_request = ["client", "service", "method"]
        self.requests = Counter(
            "paradise_requests", "MCP requests relayed, by status class", [*per_request, "status"], registry=reg
        )
        self.errors = Counter(
            "paradise_request_errors",
            "MCP requests the bridge could not serve (5xx, 429, aborted streams)",
            [*per_request, "reason"],
            registry=reg,
        )
        reg.register(DurationCollector(self))  # paradise_request_duration_seconds, from each Series' buckets
        self.bytes = Counter(
            "paradise_relayed_bytes",
            "Body bytes relayed, by direction (request or response)",
            ["client", "service", "direction"],
            registry=reg,
        )
        self.streams = Gauge(
            "paradise_open_streams", "Streamed (SSE) responses being relayed now", ["client", "service"], registry=reg
        )
        self.startup = Histogram(
            "paradise_instance_startup_seconds",
            "Time from launching an instance to it answering MCP",
            ["service"],
            buckets=STARTUP_BUCKETS,
            registry=reg,
        )
        self._series: dict[tuple[str, str, str], Series] = {}
        self._state: StateCollector | None = None

    # ---- traffic (the proxy's hot path) ------------------------------------------------------------

    def track(self, client: str, service: str, method: str) -> RequestTrack:
        """A context manager for one authenticated request; the proxy reports status and bytes to it."""
        method = method if method in METHODS else "other"
        series = self._series.get((client, service, method))
        if series is None:
            series = self._series[(client, service, method)] = Series(self, client, service, method)
        return RequestTrack(series)

    def observe_startup(self, service: str, seconds: float) -> None:
        self.startup.labels(service).observe(seconds)

    def traffic(self) -> dict[tuple[str, str], tuple[int, list[int]]]:
        """Per (client, service): requests answered so far (every method) and the latency bucket counts of
        its calls (not GET: a GET's duration is an SSE stream's lifetime, not a latency). Both only grow
        while the series lives; the dashboard's history takes differences between two reads."""
        totals: dict[tuple[str, str], tuple[int, list[int]]] = {}
        for (client, service, method), series in self._series.items():
            count, buckets = totals.get((client, service), (0, [0] * len(LATENCY_BUCKETS)))
            count += sum(series.buckets)
            if method != "GET":
                buckets = [a + b for a, b in zip(buckets, series.buckets, strict=True)]
            totals[(client, service)] = (count, buckets)
        return totals

    def failures(self) -> dict[tuple[str, str], int]:
        """Per (client, service): requests that failed so far (5xx, 429, aborted streams); only grows."""
        totals: dict[tuple[str, str], int] = {}
        for (client, service, _method), series in self._series.items():
            totals[(client, service)] = totals.get((client, service), 0) + series.failed
        return totals

    # ---- scrape ------------------------------------------------------------------------------------

    def watch(self, manager: ManagerLike) -> None:
        """Report instance states, restarts, clients and the port pool of this manager at every scrape."""
        if self._state is not None:
            self.registry.unregister(self._state)
        self._state = StateCollector(manager)
        self.registry.register(self._state)

    def prune(self, live_clients: Any) -> None:
        """Forget the series of clients that no longer exist (so deleted clients do not linger)."""
        for key in [k for k in self._series if k[0] not in live_clients]:
            self._series.pop(key).remove()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The scrape body and its content type (Prometheus text, or OpenMetrics when the scraper asks)."""
        for series in self._series.values():
            series.flush()
        if self._state is not None:
            self.prune(set(self._state.manager.client_ids()))
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def observe_startup(metrics: BridgeMetrics | None, service: str, seconds: float) -> None:
    """Record how long an instance took to become ready; a no-op without metrics (tests, tools)."""
    if metrics is not None:
        metrics.observe_startup(service, seconds)


class Series:
    """The labelled children of one (client, service, method), resolved once and reused per request.

    Byte and request counts are summed in plain integers and handed to their Prometheus counters at
    scrape time (``flush``): a counter's ``inc`` takes a lock, and the proxy would pay four per request.
    """

    __slots__ = (
        "buckets",
        "by_status",
        "client",
        "counted",
        "failed",
        "method",
        "metrics",
        "reasons",
        "received",
        "request_bytes",
        "response_bytes",
        "seconds",
        "sent",
        "service",
        "streams",
    )

    def __init__(self, metrics: BridgeMetrics, client: str, service: str, method: str) -> None:
        self.metrics, self.client, self.service, self.method = metrics, client, service, method
        self.buckets = [0] * len(LATENCY_BUCKETS)  # requests by latency bucket, not cumulative; never reset
        self.seconds = 0.0
        self.request_bytes = metrics.bytes.labels(client, service, "request")
        self.response_bytes = metrics.bytes.labels(client, service, "response")
        self.streams = metrics.streams.labels(client, service)
        self.by_status: dict[str, Any] = {}
        self.reasons: set[str] = set()
        self.sent = self.received = 0  # body bytes since the last flush
        self.counted: dict[str, int] = {}  # requests by status class since the last flush
        self.failed = 0  # requests the bridge could not serve (see ``error``), never reset: rollout gates

    def count(self, status: str) -> None:
        self.counted[status] = self.counted.get(status, 0) + 1

    def observe(self, seconds: float) -> None:
        # A Histogram child would take a lock twice per request; the collector reads these at scrape.
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.seconds += seconds

    def flush(self) -> None:
        """Hand what was counted since the last scrape to the Prometheus counters."""
        for status, n in self.counted.items():
            child = self.by_status.get(status)
            if child is None:
                child = self.by_status[status] = self.metrics.requests.labels(
                    self.client, self.service, self.method, status
                )
            child.inc(n)
        self.counted.clear()
        if self.sent:
            self.request_bytes.inc(self.sent)
        if self.received:
            self.response_bytes.inc(self.received)
        self.sent = self.received = 0

    def error(self, reason: str) -> None:
        self.failed += 1
        self.reasons.add(reason)
        self.metrics.errors.labels(self.client, self.service, self.method, reason).inc()

    def remove(self) -> None:
        m, labels = self.metrics, (self.client, self.service, self.method)
        for status in self.by_status:
            _remove(m.requests, (*labels, status))
        for reason in self.reasons:
            _remove(m.errors, (*labels, reason))
        for direction in ("request", "response"):
            _remove(m.bytes, (self.client, self.service, direction))
        _remove(m.streams, (self.client, self.service))


class RequestTrack:
    """One request: ``with track:`` records status class, latency and errors when the handling ends."""

    __slots__ = ("began", "series", "status", "streaming")

    def __init__(self, series: Series) -> None:
        self.series = series
        self.began = time.perf_counter()
        self.status = 0
        self.streaming = False

    def __enter__(self) -> RequestTrack:
        return self

    def sent(self, nbytes: int) -> None:
        """The request body was forwarded upstream."""
        self.series.sent += nbytes

    def answered(self, status: int, nbytes: int) -> None:
        """A whole (non-streamed) answer was relayed."""
        self.status = status
        self.series.received += nbytes

    def stream_opened(self, status: int) -> None:
        self.status = status
        self.streaming = True
        self.series.streams.inc()

    def chunk(self, nbytes: int) -> None:
        self.series.received += nbytes

    def aborted(self) -> None:
        """The instance went away in the middle of a streamed answer."""
        self.series.error("upstream_aborted")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None) -> None:
        series = self.series
        if self.streaming:
            series.streams.dec()
        status = self.status
        if isinstance(exc, BridgeError):
            status = exc.status
            if status >= 500 or status == 429:
                series.error(exc.code)
        elif exc is not None and not status:
            if isinstance(exc, CLIENT_GONE):
                status = -1  # the client left before the answer began
            else:
                status = 500  # the error middleware answers 500; the traceback is in the log
                series.error("internal")
        elif status >= 500:
            series.error("upstream_5xx")
        series.count(_status_class(status))
        series.observe(time.perf_counter() - self.began)


def _status_class(status: int) -> str:
    if status < 0:
        return "closed"  # the client closed the connection before an answer began
    return f"{status // 100}xx" if status else "none"


def _remove(metric: Any, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):  # already gone (another method's series shared it)
        metric.remove(*labels)


class DurationCollector(Collector):
    """``paradise_request_duration_seconds``, a histogram per (client, service, method), built at scrape from
    the plain bucket counts the proxy keeps in each Series."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self.metrics = metrics
        self.bounds = [floatToGoString(b) for b in LATENCY_BUCKETS]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "paradise_request_duration_seconds",
            "Time from an authenticated request to the end of its answer (GET: the SSE stream's lifetime)",
            labels=["client", "service", "method"],
        )
        for series in list(self.metrics._series.values()):
            cumulative, buckets = 0, []
            for bound, n in zip(self.bounds, series.buckets, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            family.add_metric([series.client, series.service, series.method], buckets, series.seconds)
        yield family


class StateCollector(Collector):
    """Instance states, restarts, clients and the port pool, read from the manager at scrape time."""

    def __init__(self, manager: ManagerLike) -> None:
        self.manager = manager

    def collect(self) -> Iterator[Metric]:
        yield from self._instances()
        yield from self._ports()

    def _instances(self) -> Iterator[Metric]:
        routes = self.manager.routes()
        state = GaugeMetricFamily(
            "paradise_instance_state",
            "1 for the state each instance is in, 0 for the others",
            labels=["client", "service", "state"],
        )
        restarts = CounterMetricFamily(
            "paradise_instance_restarts",
            "Restarts of each instance by the health monitor",
            labels=["client", "service"],
        )
        idle = GaugeMetricFamily(
            "paradise_instance_idle_seconds",
            "Seconds since the instance last relayed MCP traffic",
            labels=["client", "service"],
        )
        totals = dict.fromkeys(STATES, 0)
        now = time.monotonic()
        for route in routes:
            current = str(route.state)
            totals[current] = totals.get(current, 0) + 1
            for name in totals:
                state.add_metric([route.client_id, route.service, name], 1.0 if name == current else 0.0)
            restarts.add_metric([route.client_id, route.service], route.restarts)
            idle.add_metric([route.client_id, route.service], max(0.0, now - route.last_activity))
        by_state = GaugeMetricFamily("paradise_instances", "Instances in each state", labels=["state"])
        for name, count in totals.items():
            by_state.add_metric([name], count)
        clients = GaugeMetricFamily("paradise_clients", "Registered clients")
        clients.add_metric([], len(self.manager.client_ids()))
        yield from (state, by_state, restarts, idle, clients)

    def _ports(self) -> Iterator[Metric]:
        try:
            leased, size = self.manager.ports.usage()
        except Exception:  # a scrape must not fail because the database hiccuped; the gauges are left out
            log.exception("metrics: could not read the port pool usage")
            return
        yield _gauge("paradise_port_pool_leased", "Ports of the pool leased to instances", leased)
        yield _gauge("paradise_port_pool_size", "Ports in the pool (PARADISE_PORT_RANGE)", size)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge
