"""The proxy's header rules (bridge/proxy/headers.py), each on its own: plain dicts and multidicts in and out."""

from __future__ import annotations

import functools

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from bridge.proxy import headers as h

KEEP = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
        "Mcp-Protocol-Version": "2025-06-18", "User-Agent": "claude-code", "Last-Event-ID": "7"}


def test_hop_by_hop_headers_never_cross_either_way() -> None:
    hop = {"Connection": "keep-alive, Upgrade", "keep-alive": "timeout=5", "TE": "trailers", "Upgrade": "h2c",
           "Transfer-Encoding": "chunked", "Trailer": "X", "Proxy-Authorization": "Basic c2VjcmV0",
           "Proxy-Connection": "close"}
    assert h.strip_hop_by_hop({**hop, **KEEP}) == KEEP
    answer = CIMultiDict([("Transfer-Encoding", "chunked"), ("Link", "<a>"), ("Link", "<b>"), ("Upgrade", "x")])
    stripped = h.strip_hop_by_hop(answer)
    assert isinstance(stripped, CIMultiDict) and stripped.getall("Link") == ["<a>", "<b>"] and len(stripped) == 2


def test_the_clients_token_and_cookies_never_reach_an_instance() -> None:
    client = {"Authorization": "Bearer the-clients-token", "COOKIE": "dashboard=admin-session", **KEEP}
    assert h.strip_credentials(client) == KEEP
    assert h.strip_credentials({"X-Authorization-Note": "x"}) == {"X-Authorization-Note": "x"}  # names, not words


def test_host_length_and_encoding_of_the_clients_hop_are_dropped() -> None:
    client = {"Host": "bridge.example:8000", "Content-Length": "12", "accept-encoding": "gzip, br", **KEEP}
    assert h.strip_rewritten(client) == KEEP


def test_origin_stays_at_the_edge() -> None:
    assert h.strip_origin({"Origin": "http://localhost:8000", **KEEP}) == KEEP


def test_expect_is_not_sent_on() -> None:
    assert h.strip_expect({"Expect": "100-continue", **KEEP}) == KEEP


def test_a_client_cannot_send_the_bridges_own_headers() -> None:
    forged = {"X-Paradise-Instance-Key": "guess", "x-paradise-peer-serena-url": "http://evil.example/mcp",
              "X-PARADISE-PEER-NAMES": "serena", "X-Paradise-Peer-Serena-Key": "k"}
    assert h.strip_bridge_headers({**forged, **KEEP}) == KEEP
    assert h.strip_bridge_headers({"X-Paradise-Other": "1"}) == {"X-Paradise-Other": "1"}


def test_session_ids_are_per_hop() -> None:
    assert h.strip_session_id({"mcp-session-id": "bridge-issued", **KEEP}) == KEEP
    assert not h.strip_session_id(CIMultiDict({"Mcp-Session-Id": "instance-issued"}))


@pytest.mark.parametrize("table", [h.REQUEST_RULES, h.ANSWER_RULES], ids=["request", "answer"])
def test_each_rule_drops_what_its_table_entry_names(table: dict) -> None:  # type: ignore[type-arg]
    """for_instance and for_client drop the tables' names in one pass: a table must say what each rule does."""
    every = {name.title(): "x" for d in table.values() for name in d.names}
    every |= {f"{p.upper()}Anything": "x" for d in table.values() for p in d.prefixes}
    for rule, drop in table.items():
        others = {k: v for k, v in every.items() if not drop.drops(k)}
        assert rule({**every, **KEEP}) == {**others, **KEEP}, rule.__name__


ALL_REQUEST_NAMES = {
    "Connection": "keep-alive", "Authorization": "Bearer t", "Cookie": "c=1", "Host": "h", "Content-Length": "9",
    "Accept-Encoding": "gzip", "Origin": "http://localhost", "Expect": "100-continue",
    "X-Paradise-Instance-Key": "k", "X-Paradise-Peer-Names": "serena", "Mcp-Session-Id": "s", "TE": "trailers",
}


def test_for_instance_is_every_request_rule_in_turn() -> None:
    client = {**ALL_REQUEST_NAMES, **KEEP}
    in_turn = functools.reduce(lambda headers, rule: rule(headers), h.REQUEST_RULES, client)
    assert h.for_instance(client) == in_turn == KEEP
    repeated = CIMultiDictProxy(CIMultiDict([("Accept", "a"), ("Authorization", "Bearer t"), ("Accept", "b")]))
    assert h.for_instance(repeated) == {"Accept": "b"}  # one value per name, the last (as before the rules moved)


def test_the_instance_is_addressed_by_its_own_port_and_answers_uncompressed() -> None:
    forwarded = dict(KEEP)
    addressed = h.address_instance(forwarded, 8201)
    assert addressed == {**KEEP, "Host": "127.0.0.1:8201", "Accept-Encoding": "identity"}
    assert forwarded == KEEP  # pure: the caller's headers are left as they were


def test_only_a_guarded_instance_gets_its_key() -> None:
    assert h.add_instance_key(KEEP, "launch-key") == {**KEEP, "X-Paradise-Instance-Key": "launch-key"}
    assert h.add_instance_key(KEEP, None) == KEEP
    assert h.add_instance_key(KEEP, "") == KEEP


def test_peer_headers_are_the_bridges() -> None:
    peers = {"X-Paradise-Peer-Names": "serena", "X-Paradise-Peer-Serena-Url": "http://127.0.0.1:8200/mcp"}
    assert h.add_peer_headers(KEEP, peers) == {**KEEP, **peers}
    assert h.add_peer_headers(KEEP, {}) == KEEP


def test_the_instance_gets_its_own_session_id() -> None:
    assert h.map_session_in(KEEP, "upstream-1") == {**KEEP, "Mcp-Session-Id": "upstream-1"}


def test_to_instance_is_the_additions_in_turn() -> None:
    forwarded = h.for_instance({**ALL_REQUEST_NAMES, **KEEP})
    sent = h.to_instance(forwarded, 8201, "launch-key", {"X-Paradise-Peer-Names": ""})
    assert sent == {**KEEP, "Host": "127.0.0.1:8201", "Accept-Encoding": "identity",
                    "X-Paradise-Instance-Key": "launch-key", "X-Paradise-Peer-Names": ""}
    assert list(sent)[: len(KEEP)] == list(KEEP)  # the client's order first, as the wire had it


def test_the_answer_is_framed_and_stamped_by_the_bridge() -> None:
    answer = CIMultiDict({"Content-Length": "55", "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert h.strip_answer_framing(answer) == CIMultiDict({"Content-Type": "application/json"})
    stamped = CIMultiDict({"Server": "uvicorn", "Date": "Sun, 06 Dec 2026 08:00:00 GMT", "X-Trace": "1"})
    assert h.strip_answer_stamps(stamped) == CIMultiDict({"X-Trace": "1"})


def test_an_instance_cannot_set_a_cookie_on_the_bridges_origin() -> None:
    answer = CIMultiDict([("Set-Cookie", "dashboard=planted; Path=/"), ("set-cookie", "b=2"), ("Vary", "Accept")])
    assert h.strip_set_cookie(answer) == CIMultiDict({"Vary": "Accept"})


@pytest.mark.parametrize("bridge_id", ["bridge-issued", None])
def test_the_client_sees_the_bridges_session_id_only(bridge_id: str | None) -> None:
    answer = h.map_session_out(CIMultiDict({"Mcp-Session-Id": "instance-issued", "Vary": "Accept"}), bridge_id)
    assert answer.getall("Mcp-Session-Id", []) == ([bridge_id] if bridge_id else [])


def test_for_client_is_every_answer_rule_then_the_session_map() -> None:
    upstream = CIMultiDict([("Date", "d"), ("Server", "uvicorn"), ("Content-Type", "text/event-stream"),
                            ("Content-Length", "5"), ("Connection", "close"), ("Set-Cookie", "x=1"),
                            ("mcp-session-id", "instance-issued"), ("Link", "<a>"), ("Link", "<b>")])
    in_turn = functools.reduce(lambda headers, rule: rule(headers), h.ANSWER_RULES, upstream)
    expected = h.map_session_out(in_turn, "bridge-issued")
    answer = h.for_client(upstream, "bridge-issued")
    assert isinstance(answer, CIMultiDict) and list(answer.items()) == list(expected.items())
    assert list(answer.items()) == [("Content-Type", "text/event-stream"), ("Link", "<a>"), ("Link", "<b>"),
                                    ("Mcp-Session-Id", "bridge-issued")]
    assert len(upstream) == 9  # pure


def test_a_stream_is_not_buffered_or_cached() -> None:
    answer = CIMultiDict({"Content-Type": "text/event-stream"})
    stream = h.for_stream(answer)
    assert stream["X-Accel-Buffering"] == "no" and stream["Cache-Control"] == "no-cache"
    assert "X-Accel-Buffering" not in answer  # pure
    assert h.for_stream(CIMultiDict({"Cache-Control": "private"}))["Cache-Control"] == "private"
