"""Who may ask the MCP route: the Host and Origin a request names, and the bearer token it carries.

Apart from the proxy because it is policy, not forwarding: the MCP specification's DNS-rebinding defence
(a foreign Host or Origin refused; the bridge's own origins, and those PARADISE_ALLOWED_ORIGINS adds,
accepted), the client-token check, and the OAuth paths this bridge answers 404 on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from bridge.clients import ClientManager
from bridge.errors import Forbidden, MisdirectedRequest, NotFound, Unauthorized
from bridge.lifecycle.routes import Route

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def check_host_and_origin(
    request: web.Request, host_allowed: Callable[[str], bool], origin_allowed: Callable[[str], bool]
) -> None:
    """A foreign Host (421) or a foreign Origin (403) is refused; the bridge's own origins are not foreign."""
    host = request.headers.get("Host", "")
    if not host_allowed(host):
        raise MisdirectedRequest(f"this bridge does not answer for Host {host!r} (PARADISE_ALLOWED_HOSTS)")
    origin = request.headers.get("Origin")
    if origin is not None and not (own_origin(request, origin) or origin_allowed(origin)):
        raise Forbidden(f"Origin {origin!r} is not allowed (PARADISE_ALLOWED_ORIGINS)")


def own_origin(request: web.Request, origin: str) -> bool:
    """``origin`` is the bridge's own: its scheme, a loopback name or the address the request came in on,
    and the port it came in on. A DNS-rebinding page can never have such an origin (its origin is the
    attacker's host name), and a page served from there is the bridge's own."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return False
    address, port = str(sockname[0]), int(sockname[1])
    names = {*_LOOPBACK_NAMES, f"[{address}]" if ":" in address else address}
    scheme = request.scheme
    ports = {f":{port}", ""} if port == _DEFAULT_PORTS.get(scheme) else {f":{port}"}
    return origin.strip().rstrip("/").lower() in {f"{scheme}://{name}{p}" for name in names for p in ports}


def authorize(manager: ClientManager, request: web.Request, client_id: str, service: str) -> Route:
    """The route the bearer token may use: 401 without a valid token, 404 for an unknown client or service,
    403 for another client's."""
    match = _BEARER.match(request.headers.get("Authorization", ""))
    owner = manager.authenticate(match.group(1)) if match else None
    if owner is None:
        raise Unauthorized(
            "missing or invalid client token", headers={"WWW-Authenticate": 'Bearer realm="devops-paradise"'}
        )
    if not manager.exists(client_id):
        raise NotFound(f"no client {client_id!r}")
    if owner != client_id:
        raise Forbidden(f"this token belongs to another client, not {client_id!r}")
    return manager.route(client_id, service)  # 404 for an unknown service


async def not_found(_request: web.Request) -> web.Response:
    """OAuth discovery and registration paths: this bridge uses bearer tokens, not OAuth."""
    raise NotFound("this bridge does not offer OAuth; use the client token as a bearer token")


def add_oauth_404s(app: web.Application) -> None:
    for path in ("/.well-known/{rest:.*}", "/register", "/authorize", "/token"):
        app.router.add_route("*", path, not_found)
