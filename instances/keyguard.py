"""The instance key: a built-in instance answers only the bridge that started it.

The bridge gives every launch a fresh random key in the instance's environment (``PARADISE_INSTANCE_KEY``)
and sends it on every upstream request as ``X-Paradise-Instance-Key``. An instance port is reachable by
any local process (and, through DNS rebinding, by a web page), so without this check anyone could drive a
tenant's Serena (which edits files) or quality server (which runs the tenant's code).

``InstanceKeyGuard`` is a pure ASGI middleware (standard library only, so the Serena launcher can use it
inside Serena's own virtualenv, whatever its Starlette version): an HTTP request without the header gets
401, with a wrong key 403, both as the bridge's JSON error shape; the key is compared in constant time.
Lifespan events pass through untouched, so the wrapped app still starts and stops its session manager.

A request that passes the check also updates ``PEERS``: the bridge tells an instance where its client's
sibling instances listen and with which key they answer (``X-Paradise-Peer-*`` headers, bridge/lifecycle/
peers.py; the proxy drops any a client sends). An instance serves exactly one client, so the latest values
the bridge sent are the right ones.

The names must match bridge/mcp/protocol.py and bridge/lifecycle/peers.py (the instance side imports nothing
from the bridge).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

INSTANCE_KEY_ENV = "PARADISE_INSTANCE_KEY"
INSTANCE_KEY_HEADER = "X-Paradise-Instance-Key"
# A shorter key is a mistake (the bridge's are 43 characters): refuse to start rather than guard weakly.
MIN_KEY_LENGTH = 16

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

_HEADER_NAME = INSTANCE_KEY_HEADER.lower().encode("latin-1")  # ASGI gives header names lower-cased, as bytes
_PEER_PREFIX = b"x-paradise-peer-"
# The bridge verifies a launch before it sends it the key or any request (bridge/mcp/verify.py).
_CHALLENGE_NAME = b"x-paradise-challenge"
_PROOF_NAME = b"x-paradise-proof"
_WEBSOCKET_POLICY_VIOLATION = 1008


class InstanceKeyError(ValueError):
    """``PARADISE_INSTANCE_KEY`` is set but unusable (empty or too short)."""


def take_instance_key(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Read the key from the environment and remove it there, so nothing this process starts (the tenant's
    tests, language servers) inherits it. ``None`` when unset: the server was started by hand."""
    environ = os.environ if environ is None else environ
    key = environ.pop(INSTANCE_KEY_ENV, None)
    if key is None:
        return None
    if len(key) < MIN_KEY_LENGTH:
        raise InstanceKeyError(f"{INSTANCE_KEY_ENV} is set but shorter than {MIN_KEY_LENGTH} characters")
    return key


class Peers:
    """The sibling instances the bridge last said this instance may call: {name: (url, key)}."""

    def __init__(self) -> None:
        self._current: dict[str, tuple[str, str]] = {}

    def capture(self, headers: Any) -> None:
        """Take the peers from one request's headers. Only a request that came through the proxy carries
        ``X-Paradise-Peer-Names`` (the bridge's health probes do not): others leave what is known alone."""
        values: dict[str, str] = {}
        for name, value in headers or ():
            if name.startswith(_PEER_PREFIX):
                values.setdefault(name[len(_PEER_PREFIX):].decode("latin-1"), value.decode("latin-1"))
        if "names" not in values:
            return
        current = {}
        for peer in filter(None, (p.strip().lower() for p in values["names"].split(","))):
            url, key = values.get(f"{peer}-url"), values.get(f"{peer}-key")
            if url and key:  # a peer the bridge names without an address is not running right now
                current[peer] = (url, key)
        self._current = current

    def get(self, name: str) -> tuple[str, str] | None:
        """(url, key) of the peer while the bridge says it is up, else None."""
        return self._current.get(name)

    def clear(self) -> None:
        self._current = {}

    def __repr__(self) -> str:  # never the keys
        return f"Peers({sorted(self._current)})"


PEERS = Peers()


def guard(app: ASGIApp, key: str | None, *, server_name: str = "instance") -> ASGIApp:
    """``app`` behind the key check; without a key, ``app`` itself, with a warning that anyone may call it."""
    if key is None:
        log.warning(
            "%s: %s is not set, so this server accepts requests from anyone who can reach its port "
            "(fine for a server started by hand on a trusted machine; the bridge always sets it)",
            server_name,
            INSTANCE_KEY_ENV,
        )
        return app
    return InstanceKeyGuard(app, key)


class InstanceKeyGuard:
    """ASGI middleware: HTTP and WebSocket connections must carry the instance key; lifespan passes."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise InstanceKeyError(f"the instance key must have at least {MIN_KEY_LENGTH} characters")
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):  # lifespan (start-up, shut-down): no request to check
            await self.app(scope, receive, send)
            return
        challenge = _header(scope, _CHALLENGE_NAME) if kind == "http" else None
        if challenge is not None:  # the bridge asks this launch to prove it holds its key, before sending it
            await _send_proof(send, proof(self._key, challenge))
            return
        status = self._refusal(scope)
        if status is None:
            PEERS.capture(scope.get("headers"))  # only from the bridge: the request carried this launch's key
            await self.app(scope, receive, send)
        elif kind == "http":
            await _send_error(send, status)
        else:  # never accept the handshake; 1008 is "policy violation"
            await send({"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION})

    def _refusal(self, scope: Scope) -> int | None:
        """None when the request carries the key exactly once; else the status that refuses it."""
        presented = [value for name, value in scope.get("headers") or () if name == _HEADER_NAME]
        if not presented:
            return 401
        # Two values are refused too, so no proxy in between can make us read a different one than it checked.
        if len(presented) != 1 or not hmac.compare_digest(presented[0], self._key):
            return 403
        return None


def proof(key: bytes, challenge: bytes) -> str:
    """What proves a launch's key without showing it: HMAC-SHA256 over the bridge's random challenge.
    Must match bridge/mcp/verify.py ``proof``."""
    return hmac.new(key, b"paradise-proof:" + challenge, "sha256").hexdigest()


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope.get("headers") or () if key == name), None)


async def _send_proof(send: Send, value: str) -> None:
    headers = [(_PROOF_NAME, value.encode("ascii")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


_REFUSED = f"this instance answers only the bridge that started it: the {INSTANCE_KEY_HEADER} header is"
_ERRORS = {
    401: ("instance_key_missing", f"{_REFUSED} missing"),
    403: ("instance_key_invalid", f"{_REFUSED} wrong"),
}


async def _send_error(send: Send, status: int) -> None:
    code, message = _ERRORS[status]
    body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
