from __future__ import annotations

import pytest

from bridge.errors import NotFound
from bridge.proxy.legacy_sse import rewrite_endpoint, rewrite_event, upstream_path


def testupstream_paths() -> None:
    assert upstream_path("mcp", "/mcp") == "/mcp"
    assert upstream_path("mcp", "/api/mcp") == "/api/mcp"
    assert upstream_path("sse", "/sse") == "/sse"
    assert upstream_path("messages/", "/sse") == "/messages/"
    for tail in ("", "admin", "../etc", "mcp/extra"):
        with pytest.raises(NotFound):
            upstream_path(tail, "/mcp")


def test_endpoint_event_is_pointed_at_the_bridge() -> None:
    event = "event: endpoint\ndata: /messages/?session_id=abc"
    assert rewrite_event(event, "/c/a/s") == "event: endpoint\ndata: /c/a/s/messages/?session_id=abc"
    absolute = "event: endpoint\ndata: http://127.0.0.1:8201/messages/?session_id=abc"
    assert rewrite_event(absolute, "/c/a/s").endswith("data: /c/a/s/messages/?session_id=abc")
    other = "event: message\ndata: /messages/"
    assert rewrite_event(other, "/c/a/s") == other


async def test_endpoint_rewrite_across_chunks() -> None:
    async def chunks():
        for part in (b"event: endp", b"oint\r\ndata: /messages/?session_id=1", b"\r\n\r\n", b"event: message\n"):
            yield part

    out = b"".join([c async for c in rewrite_endpoint(chunks(), "/c/x/y")])
    assert b"data: /c/x/y/messages/?session_id=1" in out
    assert out.endswith(b"event: message\n")
