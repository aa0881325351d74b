"""Where the bridge reaches an instance: ``127.0.0.1:<port>``, or the Unix socket its runtime registered.

A process-runtime instance lives in its own network namespace, so its port exists only inside the sandbox;
the bridge reaches it through ``instance.sock`` in the instance's run directory instead (instances/
sandbox_init.py relays it). Everything in the bridge that talks to instances still names them by their
leased port (probes, the proxy, session replay, the dashboard); this registry turns that port into the
socket, in one place. The runtime registers a socket when it starts or finds an instance and forgets it when
the instance stops. A port with no socket is a published TCP port (Docker, Swarm, an unsandboxed process).
"""

from __future__ import annotations

_SOCKETS: dict[int, str] = {}


def register(port: int, path: str | None) -> None:
    if path:
        _SOCKETS[port] = path
    else:
        _SOCKETS.pop(port, None)


def forget(port: int, path: str | None = None) -> None:
    """Forget ``port``'s socket (only if it is still ``path``, when given: a new launch may own it now)."""
    if path is None or _SOCKETS.get(port) == path:
        _SOCKETS.pop(port, None)


def unix_socket(port: int) -> str | None:
    return _SOCKETS.get(port)
