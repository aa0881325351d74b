"""Peer headers: how an instance reaches a sibling instance of the same client (quality asks Serena).

A service that declares ``peers`` in the catalog gets, on every request the proxy sends it, where each peer
listens and the peer's current instance key:

    X-Paradise-Peer-Names: serena
    X-Paradise-Peer-Serena-Url: http://127.0.0.1:8200/mcp      (process runtime: the host's loopback)
    X-Paradise-Peer-Serena-Key: <Serena's instance key of this launch>

``X-Paradise-Peer-Names`` is always there (it marks a request that came through the proxy, so the instance
can tell "no peer now" from a health probe that carries no peer headers); a peer's Url and Key only while
that peer is ready. The headers are computed here, off the hot path, whenever a route of the client changes
(``RouteTable`` calls ``PeerLinks`` after every transition, port or key change and reload); the proxy only
copies ``route.peer_headers``, and drops any ``X-Paradise-Peer-*`` header a client sends. A peer's key never
goes into an environment, an argv, a log or an event: only into these request headers, in memory.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.catalog import ServiceSpec
from bridge.lifecycle.routes import Route
from bridge.runtime.base import Runtime

HEADER_PREFIX = "X-Paradise-Peer-"
NAMES_HEADER = f"{HEADER_PREFIX}Names"


def header_stem(peer: str) -> str:
    """``serena`` -> ``X-Paradise-Peer-Serena`` (header names are case-insensitive; this is for the eye)."""
    return HEADER_PREFIX + "-".join(part.capitalize() for part in peer.split("-"))


class PeerLinks:
    """Computes ``peer_headers`` of a client's routes from the catalog and the runtime's addressing."""

    def __init__(self, catalog: Mapping[str, ServiceSpec], runtime: Runtime) -> None:
        self.catalog = catalog  # read on every call: a reloaded catalog is seen at once
        self.runtime = runtime

    def __call__(self, routes: list[Route]) -> None:
        """Set ``peer_headers`` on each of ``routes`` (one client's) from the others' current state."""
        by_service = {route.service: route for route in routes}
        for route in routes:
            spec = self.catalog.get(route.service)
            wanted = spec.peers if spec else []
            headers = self.headers(wanted, by_service) if wanted else {}
            if headers != route.peer_headers:
                route.peer_headers = headers  # a new dict, swapped whole: a request in flight sees old or new

    def headers(self, peers: list[str], by_service: Mapping[str, Route]) -> dict[str, str]:
        headers = {NAMES_HEADER: ",".join(peers)}
        for name in peers:
            peer = by_service.get(name)
            if peer is None or not peer.is_ready or not peer.instance_key:
                continue  # not running now (starting, idle, paused, failed) or not this client's: no address
            spec = self.catalog.get(name)
            container_port = spec.container_port if spec else peer.port
            host, port = self.runtime.peer_address(peer.client_id, peer.service, peer.port, container_port)
            stem = header_stem(name)
            headers[f"{stem}-Url"] = f"http://{host}:{port}{peer.path}"
            headers[f"{stem}-Key"] = peer.instance_key
        return headers
