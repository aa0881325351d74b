"""The old HTTP+SSE transport (protocol 2024-11-05) through the bridge: ``GET /sse`` and
``POST /messages/?session_id=``, with the stream's ``endpoint`` event pointed at the bridge's own path."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from bridge.errors import NotFound

_LEGACY_TAIL = re.compile(r"^(sse|messages/?)$")


def upstream_path(tail: str, mcp_path: str) -> str:
    if tail == "mcp":
        return mcp_path
    if _LEGACY_TAIL.match(tail):  # old HTTP+SSE transport: /sse and /messages/?session_id=
        return "/" + tail
    raise NotFound(f"no such MCP path: {tail!r}")


async def rewrite_endpoint(chunks: AsyncIterator[bytes], prefix: str) -> AsyncIterator[bytes]:
    """Old HTTP+SSE servers announce their POST URL in a first ``endpoint`` event: point it at the bridge."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        end = buffer.find(b"\n\n") if b"\r\n\r\n" not in buffer else buffer.find(b"\r\n\r\n")
        if end < 0 and len(buffer) < 64 * 1024:
            continue
        head, rest = (buffer[:end], buffer[end:]) if end >= 0 else (buffer, b"")
        yield rewrite_event(head.decode("utf-8", "replace"), prefix).encode() + rest
        break
    else:
        if buffer:
            yield buffer
        return
    async for chunk in chunks:
        yield chunk


def rewrite_event(event: str, prefix: str) -> str:
    if "event: endpoint" not in event and "event:endpoint" not in event:
        return event
    lines = []
    for line in event.splitlines():
        if line.startswith("data:"):
            target = line[5:].strip()
            target = re.sub(r"^https?://[^/]+", "", target)
            line = f"data: {prefix}{target}"
        lines.append(line)
    return "\n".join(lines)
