"""Same-origin rule for what the dashboard can do: admin API writes and the dashboard socket.

The page keeps the admin token in ``sessionStorage`` and sends it as ``Authorization: Bearer`` (actions) or
as the socket's first message; it is never a cookie, so a foreign page cannot make the browser send it.
This is the second wall: a request a browser sends from a foreign page carries that page's ``Origin``, and
such a request is refused (403 JSON) before any handler runs, even with a valid token:

* ``POST``/``PUT``/``PATCH``/``DELETE`` under ``/api/`` (restart, rotate, delete, register);
* the upgrade to ``/dashboard/ws``, checked by its handler (a WebSocket is not held back by CORS;
  without this a foreign page that knew the token could read the feed).

Allowed: no ``Origin`` at all (the CLI, curl, scripts), the bridge's own origin (scheme and the ``Host``
the request came to, when that Host is one ``PARADISE_ALLOWED_HOSTS`` accepts: a DNS-rebound name is not
the bridge's), and origins the operator listed by name in ``PARADISE_ALLOWED_ORIGINS`` (its ``*`` opens
the MCP routes only, never the admin API).
``Sec-Fetch-Site: cross-site`` is refused as well when a browser sends it without an ``Origin``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.errors import Forbidden
from bridge.keys import SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GUARDED_PREFIX = "/api/"


def foreign_origin(request: web.Request) -> str | None:
    """The request's origin when a browser sent it from another site than the bridge's; else None."""
    origin = request.headers.get("Origin")
    if origin is None:
        return "cross-site" if request.headers.get("Sec-Fetch-Site") == "cross-site" else None
    settings = request.app.get(SETTINGS)
    wanted = origin.strip().rstrip("/").lower()
    own = f"{request.scheme}://{request.host}".lower()
    # Its own origin, at a Host the bridge answers to (a rebound foreign name is not the bridge's own).
    if wanted == own and (settings is None or settings.host_allowed(request.host)):
        return None
    if settings is not None and wanted in settings.allowed_origin_set:  # listed by name; "*" is for MCP only
        return None
    return origin


def refuse_foreign(request: web.Request, what: str) -> None:
    origin = foreign_origin(request)
    if origin is not None:
        raise Forbidden(f"{what} from origin {origin[:100]!r} is not allowed: only the bridge's own pages may")


@web.middleware
async def same_origin_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse admin API writes that a browser sent from a foreign origin (the socket checks for itself)."""
    if request.method in WRITES and request.path.startswith(GUARDED_PREFIX):
        refuse_foreign(request, f"{request.method} {request.path}")
    return await handler(request)
