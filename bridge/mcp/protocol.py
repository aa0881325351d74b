"""MCP protocol facts the bridge relies on: revisions, header names, the messages of a handshake.

Standard library only: the Swarm health check imports this inside the instance images, where the bridge
package is installed without its dependencies (see instances/healthcheck.py).
"""

from __future__ import annotations

from typing import Any, Final

# Every released revision the bridge knows, oldest first (the mcp SDK's list; tests/unit/mcp checks it).
KNOWN_PROTOCOL_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
# The revisions of the Streamable HTTP transport with an initialize handshake and Mcp-Session-Id.
SESSION_PROTOCOL_VERSIONS: Final = ("2025-03-26", "2025-06-18", "2025-11-25")
# (2024-11-05 is the old HTTP+SSE transport: GET /sse, then POST /messages/?session_id=...; legacy_sse.py.)
# The revision the bridge's own probes and benchmarks offer. Every server of the handshake era accepts it
# (or counter-offers its own, which the probe takes as well); a newer one would lock out older servers.
PROBE_PROTOCOL_VERSION: Final = "2025-06-18"

# Header names as the specification spells them (HTTP compares them case-insensitively). The others
# (Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Param-*) need no name here: the proxy passes every header but
# the ones it drops (bridge/proxy/proxy.py), so they travel both ways as they are.
SESSION_ID_HEADER: Final = "Mcp-Session-Id"
PROTOCOL_VERSION_HEADER: Final = "MCP-Protocol-Version"
# The bridge's own: the secret of one instance launch, on every request the bridge sends it.
INSTANCE_KEY_HEADER: Final = "X-Paradise-Instance-Key"
INSTANCE_KEY_ENV: Final = "PARADISE_INSTANCE_KEY"
# A Streamable HTTP client must accept both a JSON answer and an SSE stream.
ACCEPT_BOTH: Final = "application/json, text/event-stream"
ACCEPT_STREAM: Final = "text/event-stream"

PROBE_CLIENT_NAME: Final = "devops-paradise-probe"


def initialize_request(
    client_name: str = PROBE_CLIENT_NAME, *, request_id: int = 1, version: str = PROBE_PROTOCOL_VERSION
) -> dict[str, Any]:
    """The JSON-RPC ``initialize`` request a client opens a session with."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": client_name, "version": "1"},
        },
    }


INITIALIZED_NOTIFICATION: Final = {"jsonrpc": "2.0", "method": "notifications/initialized"}
