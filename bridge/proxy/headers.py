"""The proxy's header policy: one pure function per rule, each saying why, each with its own unit test.

A request crosses two hops: the client's to the bridge, and the bridge's own to an instance it started on
127.0.0.1. What belongs to the first hop (its connection, its credential, its framing, the session id the
bridge issued) never reaches the instance; what the second needs (the instance's address, its key, where its
peers listen, the instance's session id) only the bridge sets. The answer crosses back the same way.

The functions take headers and return new ones (a ``dict`` stays a ``dict``, a multidict comes back as a
``CIMultiDict``); none reads a route, a request or the clock, so tests/unit/proxy/test_headers.py checks
each rule on plain dicts. ``McpProxy`` calls ``for_instance`` (once per request), ``to_instance`` and
``map_session_in`` (per attempt), ``for_client`` and ``for_stream``; the first and ``for_client`` apply the
drop rules of ``REQUEST_RULES`` / ``ANSWER_RULES`` in one pass each, proven equal to applying them in turn.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeVar

from multidict import CIMultiDict

from bridge.lifecycle.peers import HEADER_PREFIX as PEER_HEADER_PREFIX
from bridge.mcp.protocol import INSTANCE_KEY_HEADER, SESSION_ID_HEADER

Headers = TypeVar("Headers", dict[str, str], CIMultiDict[str])


class Drop(NamedTuple):
    """The header names a rule drops (lower case), and the name prefixes."""

    names: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def __or__(self, other: Drop) -> Drop:  # type: ignore[override]
        return Drop(self.names | other.names, self.prefixes + other.prefixes)

    def drops(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.names or lowered.startswith(self.prefixes)


def _without(headers: Headers, drop: Drop) -> Headers:
    kept = [(k, v) for k, v in headers.items() if not drop.drops(k)]
    return dict(kept) if isinstance(headers, dict) else CIMultiDict(kept)


HOP_BY_HOP = Drop(frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
     "trailer", "trailers", "transfer-encoding", "upgrade"}
))
CREDENTIALS = Drop(frozenset({"authorization", "cookie"}))
REWRITTEN = Drop(frozenset({"host", "content-length", "accept-encoding"}))
ORIGIN = Drop(frozenset({"origin"}))
EXPECT = Drop(frozenset({"expect"}))
BRIDGE_HEADERS = Drop(frozenset({INSTANCE_KEY_HEADER.lower()}), (PEER_HEADER_PREFIX.lower(),))
SESSION_ID = Drop(frozenset({SESSION_ID_HEADER.lower()}))
ANSWER_FRAMING = Drop(frozenset({"content-length", "content-encoding"}))
ANSWER_STAMPS = Drop(frozenset({"server", "date"}))
SET_COOKIE = Drop(frozenset({"set-cookie"}))


# ---- the client's request, before it goes to any instance (once per request) ------------------------


def strip_hop_by_hop(headers: Headers) -> Headers:
    """Connection-scoped headers (RFC 9110 7.6.1) describe one hop; the bridge's hop to the instance is its own
    keep-alive connection, framed by the bridge. Both ways."""
    return _without(headers, HOP_BY_HOP)


def strip_credentials(headers: Headers) -> Headers:
    """The client's bearer token is the bridge's credential, not the instance's: passed on, tenant code inside
    the instance could read and replay it (the MCP specification forbids token passthrough). Cookies are the
    bridge origin's (the dashboard's session among them), never the instance's."""
    return _without(headers, CREDENTIALS)


def strip_rewritten(headers: Headers) -> Headers:
    """Host, Content-Length and Accept-Encoding describe the client's hop; the bridge sets its own for the
    instance (``address_instance``; upstream.py frames the body it writes)."""
    return _without(headers, REWRITTEN)


def strip_origin(headers: Headers) -> Headers:
    """Origin is checked at the edge (edge.py); the instance is reached by the bridge, not by the page, and its
    own DNS-rebinding check would refuse a browser's origin the bridge accepted."""
    return _without(headers, ORIGIN)


def strip_expect(headers: Headers) -> Headers:
    """aiohttp has answered the client's ``Expect: 100-continue`` and read the body; it goes upstream whole,
    and an instance's interim 100 would be taken for its answer."""
    return _without(headers, EXPECT)


def strip_bridge_headers(headers: Headers) -> Headers:
    """The instance key and the ``X-Paradise-Peer-*`` headers are the bridge's word to an instance: a client's
    own would pose as the bridge or point the instance at a peer of the client's choosing."""
    return _without(headers, BRIDGE_HEADERS)


def strip_session_id(headers: Headers) -> Headers:
    """Session ids are per hop: the client holds the bridge's, the instance its own (``map_session_in`` and
    ``map_session_out`` translate; sessions.py keeps the map). Both ways."""
    return _without(headers, SESSION_ID)


# Every rule a client's request passes, with what it drops: ``for_instance`` applies them all in one pass
# (seven passes cost the hot path ~13 µs a request); test_headers proves it equal to applying each in turn.
REQUEST_RULES: dict[Callable[[dict[str, str]], dict[str, str]], Drop] = {
    strip_hop_by_hop: HOP_BY_HOP, strip_credentials: CREDENTIALS, strip_rewritten: REWRITTEN,
    strip_origin: ORIGIN, strip_expect: EXPECT, strip_bridge_headers: BRIDGE_HEADERS, strip_session_id: SESSION_ID,
}
_REQUEST_DROP = functools.reduce(operator.or_, REQUEST_RULES.values())


def for_instance(client: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that may reach an instance: every request rule. A name sent twice keeps its last
    value (the upstream request carries one)."""
    names, prefixes = _REQUEST_DROP
    return {k: v for k, v in client.items() if (n := k.lower()) not in names and not n.startswith(prefixes)}


# ---- what the bridge adds for the instance a request is sent to (per attempt) -----------------------


def address_instance(headers: dict[str, str], port: int) -> dict[str, str]:
    """Host is the instance's own address (the Python SDK's DNS-rebinding check answers others 421), and the
    answer comes uncompressed: bytes are relayed as they come, with nothing to decompress."""
    return {**headers, "Host": f"127.0.0.1:{port}", "Accept-Encoding": "identity"}


def add_instance_key(headers: dict[str, str], key: str | None) -> dict[str, str]:
    """A guarded instance (instances/keyguard.py) answers only the bridge, which proves itself with the key of
    the instance's launch; an unguarded one gets none."""
    return {**headers, INSTANCE_KEY_HEADER: key} if key else headers


def add_peer_headers(headers: dict[str, str], peers: Mapping[str, str]) -> dict[str, str]:
    """Where the instance's siblings listen and their keys (lifecycle/peers.py), for the service that asks them."""
    return {**headers, **peers} if peers else headers


def map_session_in(headers: dict[str, str], upstream_id: str) -> dict[str, str]:
    """The session id the instance knows: the one mapped to the client's, or the client's own when the bridge
    did not issue it (the instance judges it)."""
    return {**headers, SESSION_ID_HEADER: upstream_id}


def to_instance(forwarded: dict[str, str], port: int, key: str | None, peers: Mapping[str, str]) -> dict[str, str]:
    """``forwarded`` (``for_instance``) addressed to the instance on ``port``, with its key and its peers."""
    return add_peer_headers(add_instance_key(address_instance(forwarded, port), key), peers)


# ---- the instance's answer, before it goes back to the client ---------------------------------------


def strip_answer_framing(headers: Headers) -> Headers:
    """The bridge frames the answer it writes to the client itself (aiohttp sets the length, or chunks a
    stream); the instance's length and encoding describe the other hop."""
    return _without(headers, ANSWER_FRAMING)


def strip_answer_stamps(headers: Headers) -> Headers:
    """Server and Date are the bridge's, stamped by aiohttp: the client talks to the bridge."""
    return _without(headers, ANSWER_STAMPS)


def strip_set_cookie(headers: Headers) -> Headers:
    """A cookie an instance sets would be the bridge origin's: one tenant's instance could plant cookies that
    the browser then sends to the dashboard and to every other client's route."""
    return _without(headers, SET_COOKIE)


def map_session_out(headers: CIMultiDict[str], session_id: str | None) -> CIMultiDict[str]:
    """The client sees the bridge's session id (none for sessionless traffic), never the instance's, which
    changes whenever the instance does."""
    answer = strip_session_id(headers)
    if session_id:
        answer[SESSION_ID_HEADER] = session_id
    return answer


# Every rule an instance's answer passes, with what it drops (one pass in ``for_client``, as for requests).
ANSWER_RULES: dict[Callable[[CIMultiDict[str]], CIMultiDict[str]], Drop] = {
    strip_hop_by_hop: HOP_BY_HOP, strip_answer_framing: ANSWER_FRAMING, strip_answer_stamps: ANSWER_STAMPS,
    strip_set_cookie: SET_COOKIE,
}
_ANSWER_DROP = functools.reduce(operator.or_, ANSWER_RULES.values())


def for_client(upstream: CIMultiDict[str], session_id: str | None) -> CIMultiDict[str]:
    """The instance's answer headers as the client gets them: every answer rule, then ``map_session_out``."""
    names, _ = _ANSWER_DROP
    return map_session_out(CIMultiDict([(k, v) for k, v in upstream.items() if k.lower() not in names]), session_id)


def for_stream(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """A relayed stream must not wait in a buffer: nginx in front of the bridge is told not to hold it, and
    caches not to keep it (unless the instance said otherwise)."""
    stream = CIMultiDict(headers)
    stream["X-Accel-Buffering"] = "no"
    stream.setdefault("Cache-Control", "no-cache")
    return stream
