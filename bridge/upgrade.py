"""A bridge restart that drops nothing (issue 27.3): the running bridge hands its listening socket to a new one.

``devops-paradise serve --upgrade`` (or SIGUSR2 to a running bridge, which starts that command itself) starts a
bridge that asks the running one, over ``DATA_DIR/handover.sock`` (same uid only), for its listening sockets:
the very sockets, passed with SCM_RIGHTS. Connections waiting in their accept queue are then accepted by the new
bridge; none is reset, as it would be by closing one of two SO_REUSEPORT listeners (each has its own queue).

1. The new bridge loads everything (clients, instances, sessions) before it asks; meanwhile it only follows
   the monitor lease holder (``Leadership.deferred``), so two bridges never heal the same instance.
2. It serves on the received sockets and says so; the old bridge stops accepting at once.
3. The old bridge answers every further request on its open connections with ``Connection: close`` (the
   client's next request opens a connection, to the new bridge), ends its open GET streams cleanly (the client
   opens them again, on the new bridge), waits for its in-flight requests (at most ``DRAIN`` seconds),
   releases the monitor lease and exits.
4. The new bridge sees the hand-over connection close (the old process is gone), reloads the sessions the old
   one opened meanwhile, and leads: it reconciles and adopts the instances as any restarted bridge does.
   A request for a session it does not know yet waits for that (a session opened on the old bridge after the
   new one loaded them); every other request is served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bridge.keys import MANAGER, PROXY
from bridge.mcp.protocol import SESSION_ID_HEADER
from bridge.settings import BridgeSettings, SettingsError

log = logging.getLogger(__name__)
HANDOVER_SOCKET = "handover.sock"  # in the data dir, mode 0600
DRAIN = 30.0  # seconds the old bridge waits for its in-flight requests
IDLE_GRACE = 1.0  # then this long without a new request on its connections before it closes them
GONE_TIMEOUT = DRAIN + 30.0  # the new bridge's wait for the old one to exit
TAKING_OVER = web.AppKey("taking_over", bool)  # set before start-up: the lease waits for the old bridge
_PREPARED = "paradise_prepared"  # the request's response once prepared (a GET stream to end cleanly)


class Traffic:
    """This bridge's in-flight requests and open MCP GET streams; once ``retiring``, no connection is kept."""

    def __init__(self) -> None:
        self.requests: dict[asyncio.Task, web.Request] = {}  # in flight, streams apart
        self.last_request = time.monotonic()
        self.streams: dict[asyncio.Task, web.Request] = {}
        self.retiring = False
        self.adopted = asyncio.Event()  # cleared while a bridge taking over waits for the old one to exit
        self.adopted.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
        self.last_request = time.monotonic()
        if not self.adopted.is_set() and _unknown_session(request):
            # A session the old bridge opened after this one loaded them: known once it has exited (bounded).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GONE_TIMEOUT):
                    await self.adopted.wait()
        if request.method == "GET" and request.path.startswith("/c/"):
            return await self._stream(request, handler)
        task = asyncio.current_task()
        assert task is not None
        self.requests[task] = request
        try:
            return await handler(request)
        finally:
            self.requests.pop(task, None)
            self.last_request = time.monotonic()

    async def _stream(self, request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
        task = asyncio.current_task()
        assert task is not None
        self.streams[task] = request
        try:
            return await handler(request)
        except asyncio.CancelledError:
            response = request.get(_PREPARED)
            if not self.retiring or response is None:
                raise
            task.uncancel()  # ended by ``end_streams``: the stream ends as any stream does
            with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
                await response.write_eof()
            return response
        finally:
            self.streams.pop(task, None)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        request[_PREPARED] = response
        if self.retiring:  # "Connection: close": the client's next request finds the new bridge
            response.force_close()
            response.headers["Connection"] = "close"  # (the headers were made before this hook, written after)

    def end_streams(self) -> None:
        """Each open GET stream ends (once begun: one still opening is ended by a later call)."""
        for task, request in list(self.streams.items()):
            response = request.get(_PREPARED)
            if response is not None and response.prepared and not task.cancelling():
                task.cancel()

    async def drain(self, runner: web.AppRunner) -> None:
        """Until the clients have left this bridge's connections, bounded: DRAIN for in-flight requests, then
        IDLE_GRACE without a new request (an idle keep-alive connection is closed by the runner's cleanup)."""
        self.retiring = True
        self.end_streams()
        deadline = time.monotonic() + DRAIN
        while runner.server is not None and runner.server.connections and time.monotonic() < deadline:
            if not self.requests and not self.streams and time.monotonic() - self.last_request > IDLE_GRACE:
                break
            await asyncio.sleep(0.05)
            self.end_streams()  # also one opened meanwhile on a connection this bridge still had
        if self.requests:
            log.warning("hand-over: %d requests still running after %gs; they are cut: %s", len(self.requests), DRAIN,
                        ", ".join(f"{r.method} {r.path}" for r in self.requests.values()))
            for task in self.requests:
                task.cancel()


def _unknown_session(request: web.Request) -> bool:
    """An MCP request with a session id this bridge does not hold (yet) for its client and service."""
    session_id = request.headers.get(SESSION_ID_HEADER)
    if session_id is None or "client_id" not in request.match_info:
        return False
    try:
        route = request.app[MANAGER].route(request.match_info["client_id"], request.match_info["service"])
    except Exception:  # an unknown client or service: the proxy answers it as always
        return False
    return request.app[PROXY].sessions.get(session_id, route) is None


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of ``host`` (as asyncio's create_server binds them)."""
    sockets = []
    infos = {(i[0], i[4]) for i in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)}
    try:
        for family, address in sorted(infos, key=str):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(1024)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sockets


def connect(path: Path) -> socket.socket | None:
    """A connection to the running bridge's hand-over socket; None (with a warning) when none answers."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(10)
        conn.connect(str(path))
    except OSError as exc:
        conn.close()
        log.warning("serve --upgrade: no running bridge answers on %s (%s); starting as a new one", path, exc)
        return None
    return conn


def take_over(conn: socket.socket) -> tuple[list[socket.socket], int]:
    """The running bridge's listening sockets and its pid."""
    try:
        conn.sendall(b"take\n")
        message, fds, _, _ = socket.recv_fds(conn, 64, 16)
    except OSError as exc:
        raise SettingsError(f"the running bridge did not hand its sockets over: {exc}") from None
    if not fds:
        raise SettingsError(f"the running bridge refused the hand-over: {message.decode(errors='replace')}")
    return [socket.socket(fileno=fd) for fd in fds], int(message.split()[1])


async def serve(app: web.Application, settings: BridgeSettings, *, upgrade: bool) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, or until a new bridge takes the listening sockets over."""
    path = settings.data_dir / HANDOVER_SOCKET
    traffic = Traffic()
    app.middlewares.append(traffic.middleware)  # innermost: it sees the proxy's own stream end
    app.on_response_prepare.append(traffic.on_prepare)
    old = await asyncio.to_thread(connect, path) if upgrade else None
    app[TAKING_OVER] = old is not None
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True,
                           shutdown_timeout=DRAIN)
    successor: socket.socket | None = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()  # start-up: the state is loaded before a single connection is accepted
        if old is not None:
            sockets, pid = await asyncio.to_thread(take_over, old)
        else:
            sockets = bind(settings.host, settings.port)
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        if old is not None:
            traffic.adopted.clear()
            try:
                await _adopt(app, old, pid, stop)
            finally:
                traffic.adopted.set()
        successor = await _serve_until_stop(runner, traffic, path, sockets, stop)
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if successor is not None:
            successor.close()  # the successor's signal that this bridge is done (its process exit says it too)
        if old is not None:
            old.close()


async def _adopt(app: web.Application, conn: socket.socket, pid: int, stop: asyncio.Event) -> None:
    """Serving on the old bridge's sockets: tell it, wait for it to exit, then take its place."""
    loop = asyncio.get_running_loop()
    conn.setblocking(False)
    await loop.sock_sendall(conn, b"serving\n")
    log.info("hand-over: serving on the sockets of bridge %d; waiting for it to finish its requests", pid)
    stopped = asyncio.ensure_future(stop.wait())
    gone = asyncio.ensure_future(_eof(conn))  # EOF: the old bridge is done (or its process gone)
    await asyncio.wait([stopped, gone], timeout=GONE_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    gone.cancel()
    with contextlib.suppress(Exception):
        await app[PROXY].sessions.load()  # sessions the old bridge opened after this one loaded them
    app[MANAGER].monitor.leadership.deferred = False  # the next cycle takes the lease, reconciles and leads
    log.info("hand-over: bridge %d is gone; this bridge (pid %d) takes its place", pid, os.getpid())


async def _eof(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while await asyncio.get_running_loop().sock_recv(conn, 64):
            pass


async def _serve_until_stop(
    runner: web.AppRunner, traffic: Traffic, path: Path, sockets: list[socket.socket], stop: asyncio.Event
) -> socket.socket | None:
    """Until SIGTERM/SIGINT (a plain stop: None), or a successor that took our sockets (a drain, then its
    connection, to close once this bridge is done)."""
    loop = asyncio.get_running_loop()
    handed: asyncio.Future[socket.socket] = loop.create_future()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        server, inode = _handover_server(path)
    except OSError as exc:  # e.g. a data dir path too long for a Unix socket: serving matters more
        log.warning("no hand-over socket at %s (%s): serve --upgrade cannot take over from this bridge", path, exc)
        await stopped
        return None
    loop.add_signal_handler(signal.SIGUSR2, _start_successor)
    accepting = asyncio.create_task(_accept_successor(server, sockets, handed), name="hand-over")
    try:
        await asyncio.wait([stopped, handed], return_when=asyncio.FIRST_COMPLETED)
        if not handed.done():
            return None
        for site in list(runner.sites):
            await site.stop()  # the sockets stay open in the new bridge: its queue, its accepts
        log.info("hand-over: a new bridge serves; this one finishes its requests and exits")
        await traffic.drain(runner)
        return handed.result()
    finally:
        stopped.cancel()
        accepting.cancel()
        server.close()
        _unlink_if(path, inode)
        loop.remove_signal_handler(signal.SIGUSR2)


def _unlink_if(path: Path, inode: int) -> None:
    """Remove the hand-over socket if it is still ours (a successor binds its own there)."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)


def _handover_server(path: Path) -> tuple[socket.socket, int]:
    path.unlink(missing_ok=True)  # the old bridge's, now gone, or one a crash left behind
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old_mask)
    server.listen(2)
    server.setblocking(False)
    return server, path.stat().st_ino


async def _accept_successor(server: socket.socket, sockets: list[socket.socket], handed: asyncio.Future) -> None:
    """Each connection from our own uid that asks gets the listening sockets; the first that then says it
    serves on them is the successor (one that goes away before saying so changes nothing)."""
    loop = asyncio.get_running_loop()
    while not handed.done():
        conn, _ = await loop.sock_accept(server)
        try:
            pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            async with asyncio.timeout(GONE_TIMEOUT):  # the successor's start-up comes before it asks
                asked = await loop.sock_recv(conn, 64)
                if uid != os.getuid() or asked != b"take\n":
                    conn.close()
                    continue
                socket.send_fds(conn, [f"bridge {os.getpid()}\n".encode()], [s.fileno() for s in sockets])
                said = await loop.sock_recv(conn, 64)
        except (OSError, TimeoutError) as exc:
            log.warning("hand-over: a successor went away before serving (%s)", exc)
            conn.close()
            continue
        if said != b"serving\n":
            conn.close()
            continue
        log.info("hand-over: bridge %d took the listening sockets", pid)
        handed.set_result(conn)


def _start_successor() -> None:
    """SIGUSR2: this very command again, with ``--upgrade`` (same environment and options)."""
    argv = [a for a in sys.argv[1:] if a != "--upgrade"]
    log.info("SIGUSR2: starting a new bridge to take this one's place")
    subprocess.Popen([sys.executable, "-m", "bridge", *argv, "--upgrade"], start_new_session=True)
