"""The container health check of the bridge's own images: one MCP initialize, the session closed again.

    python -m bridge.mcp.healthcheck --port 8000 [--path /mcp] [--timeout 4]

Exit 0 when the server answers the initialize with a result, 1 otherwise (Docker's HEALTHCHECK contract).
A health check runs with the container's environment, so it sends the launch's instance key
(``PARADISE_INSTANCE_KEY``) the way the bridge does; built-in instances refuse requests without it.
It runs inside the instance images, where the bridge package is installed without its dependencies
(images/serena: ``pip install --no-deps``), so unlike bridge.mcp.client it uses the standard library only;
the protocol facts it shares with the client come from bridge.mcp.protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.request

from bridge.mcp.protocol import (
    ACCEPT_BOTH,
    INSTANCE_KEY_ENV,
    INSTANCE_KEY_HEADER,
    SESSION_ID_HEADER,
    initialize_request,
)

MAX_ANSWER = 65536


def initialize_ok(port: int, path: str, timeout: float, key: str | None = None) -> bool:
    """Whether 127.0.0.1:port/path answers an MCP initialize with a result (JSON or SSE)."""
    if not path.startswith("/"):  # "@host/..." would turn 127.0.0.1:port into a user name
        raise ValueError(f"the MCP path must start with '/', not {path!r}")
    url = f"http://127.0.0.1:{port}{path}"  # always plain HTTP on loopback, hence the S310 waiver below
    body = json.dumps(initialize_request("container-healthcheck")).encode()
    keyed = {INSTANCE_KEY_HEADER: key} if key else {}
    head = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH, **keyed}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, head), timeout=timeout) as resp:
            answer, session = resp.read(MAX_ANSWER), resp.headers.get(SESSION_ID_HEADER)
    except (OSError, ValueError):  # refused, timed out, HTTP error status (URLError/HTTPError are OSErrors)
        return False
    if session:  # do not leave a session behind for every check
        close = urllib.request.Request(url, headers={SESSION_ID_HEADER: session, **keyed}, method="DELETE")
        with contextlib.suppress(OSError, ValueError):
            urllib.request.urlopen(close, timeout=timeout).close()  # noqa: S310
    return b'"result"' in answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/mcp")
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        parser.error(f"--path must start with '/', not {args.path!r}")
    return 0 if initialize_ok(args.port, args.path, args.timeout, os.environ.get(INSTANCE_KEY_ENV)) else 1


if __name__ == "__main__":
    sys.exit(main())
