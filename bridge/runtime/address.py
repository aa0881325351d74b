"""Where the bridge reaches an instance: ``127.0.0.1:<port>``, or the Unix socket its runtime registered.

A process-runtime instance lives in its own network namespace, so its port exists only inside the sandbox;
the bridge reaches it through ``instance.sock`` in the instance's run directory instead (instances/
sandbox_init.py relays it). Everything in the bridge that talks to instances still names them by their
leased port (probes, the proxy, session replay, the dashboard); this registry turns that port into the
socket, in one place. The runtime registers a socket when it starts or finds an instance and forgets it when
the instance stops. A port with no socket is a published TCP port (Docker, Swarm, an unsandboxed process).
``dial`` is how every caller connects: it waits for the relay's READY byte, so "not sent" stays provable.
"""

from __future__ import annotations

import asyncio
import os
import socket

SUN_PATH_MAX = 100  # a Unix socket's path may have 107 bytes; a longer one is reached through /proc/self/fd
READY = b"+"  # what the sandbox's relay writes once the server took the connection (instances/sandbox_init.py)
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


async def dial(path: str) -> socket.socket:
    """A connected socket to an instance through its Unix socket, once the relay says the server took it.

    The relay accepts first and reaches the server second, so without this a connection could open and then
    close unanswered when the server had just died: the bridge could not tell "never sent" from "may have run".
    Until READY arrives nothing has been written, so any failure here is OSError: the request was not sent."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    directory = None
    try:
        if len(os.fsencode(path)) >= SUN_PATH_MAX:  # a deep data dir: reach it through its directory's fd
            directory = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
            path = f"/proc/self/fd/{directory}/{os.path.basename(path)}"
        await loop.sock_connect(sock, path)
        if await loop.sock_recv(sock, 1) != READY:
            raise ConnectionResetError(f"{path}: the instance's relay could not reach its server")
    except BaseException:
        sock.close()
        raise
    finally:
        if directory is not None:
            os.close(directory)
    return sock
