"""PID 1 of a process-runtime sandbox: limits, the bounded log, and the only way in (a Unix socket).

The sandbox has its own network namespace: nothing inside can see or bind a host port, and nothing outside
can reach a port inside. The bridge reaches the instance through ``--socket`` (a Unix socket in the
instance's own run directory, which only the bridge and this sandbox can see), relayed here to the server's
``127.0.0.1:--port`` inside. A sibling instance of the same client (quality -> its Serena) is reached the same
way the other round: ``--peer PORT=SOCKET`` listens on ``127.0.0.1:PORT`` inside and relays to the sibling's
socket, mounted read-only.

The socket is created only once the server listens, and goes away with it: until then a connection is
refused, so the bridge knows the request was never sent. This process is not dumpable: the tenant, which
runs as the same uid, cannot open ``/proc/1/fd/1`` (the log) to write around the cap, nor ptrace it. It
reaps every orphan (PID 1's duty) and exits with the command's status; the kernel then ends the rest of
the namespace. Standard library only: it runs with whatever Python the instance runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys

PR_SET_DUMPABLE = 4
LOG_CAP = 8 * 2**20  # bytes of output kept per launch; past it the log starts over with a note
CHUNK = 1 << 16
_HIGH_WATER = 1 << 20
READY = b"+"  # as bridge/runtime/address.py READY (the instance side imports nothing from the bridge)
# As bridge/proxy/upstream.py NOT_DELIVERED_HEADER: the request never reached the server.
NOT_DELIVERED = (b"HTTP/1.1 503 Service Unavailable\r\nX-Paradise-Not-Delivered: 1\r\n"
                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")  # fmt: skip
GRACE = 0.5
SUN_PATH_MAX = 100  # as bridge/runtime/address.py
EXITED = "exited"  # written beside the socket once the command has exited (bridge/runtime/process.py)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sandbox_init")
    parser.add_argument("--socket", required=True, help="the Unix socket the bridge connects to")
    parser.add_argument("--port", type=int, required=True, help="the server's TCP port inside the sandbox")
    parser.add_argument("--peer", action="append", default=[], help="PORT=SOCKET of a sibling instance")
    parser.add_argument("--nproc", type=int, default=0, help="RLIMIT_NPROC (0: unchanged)")
    parser.add_argument("--memory", type=int, default=0, help="RLIMIT_DATA in bytes per process (0: unchanged)")
    parser.add_argument("--nice", type=int, default=0, help="CPU priority below the bridge's (0: unchanged)")
    parser.add_argument("--log-cap", type=int, default=LOG_CAP)
    parser.add_argument("--launch", default="", help="this launch's id, written with its exit code")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command")
    return args


def set_limits(nproc: int, memory: int, nice: int = 0) -> None:
    """Hard and soft limits, which the tenant cannot raise again (no capabilities); a niceness it cannot
    lower again either, so a tenant that spins every core still leaves the bridge its share."""
    if nice:
        os.nice(nice)
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if memory:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))


def not_dumpable() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


class Pipe(asyncio.Protocol):
    """One direction of a relayed connection: what arrives here is written to ``peer`` (flow-controlled)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Pipe | None = None
        self.pending: list[bytes] = []
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=_HIGH_WATER)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
            return
        if isinstance(peer, BridgeSide):
            peer.awaiting = False  # the server answered: what the bridge sent so far reached it
        peer.transport.write(data)

    def eof_received(self) -> bool:
        if isinstance(self.peer, BridgeSide):
            return False  # the server's end is done: the bridge's side decides how to close (peer_gone)
        if self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.peer_gone()

    def peer_gone(self) -> None:
        """The other side is closed: so is this one."""
        if self.transport is not None:
            self.transport.close()

    # The peer's writes back up: stop reading here until they drain.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def link(self, other: Pipe) -> None:
        self.peer, other.peer = other, self
        for side in (self, other):
            for data in side.pending:
                side.peer.transport.write(data)  # type: ignore[union-attr]
            side.pending.clear()


class BridgeSide(Pipe):
    """The bridge's end of a relayed connection, which keeps "never sent" provable.

    Bytes from the bridge are passed on one loop turn later, so a server death that arrived in the same turn is
    seen first. Bytes that arrive once the server's end is closed (the server died, or closed an idle
    connection) never reached it: they are answered NOT_DELIVERED, which the bridge's upstream client reads as
    "not sent" and may send again. After the server's end closed while the connection was idle (its last
    answer complete, or a stream), the bridge's end stays open GRACE seconds, so a request already on its way
    gets that answer instead of a bare close; while a request was in flight it closes at once."""

    far_gone = False
    awaiting = False  # bytes went to the server since its last answer: a request it may be running

    def __init__(self) -> None:
        super().__init__()
        self.outbox: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self.outbox.append(data)

    def _flush(self) -> None:
        data, self.outbox = b"".join(self.outbox), []
        if self.far_gone:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(NOT_DELIVERED)
                self.transport.close()
        elif data:
            self.awaiting = True
            super().data_received(data)

    def eof_received(self) -> bool:
        return False  # the bridge closed its end: close both

    def peer_gone(self) -> None:
        self.far_gone = True
        if self.transport is None or self.outbox:
            return  # bytes are on their way: _flush answers them NOT_DELIVERED
        if self.awaiting:
            self.transport.close()  # it died under a request: the bridge must see that at once (may have run)
        else:
            asyncio.get_running_loop().call_later(GRACE, self.transport.close)


def relay_to(connect, *, greet: bool = False) -> type[Pipe]:
    """A protocol class whose connections are relayed to whatever ``connect(factory)`` opens; with ``greet``
    each connection first gets READY once the far side is open (bridge/runtime/address.py ``dial``)."""

    class Accepted(BridgeSide if greet else Pipe):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            transport.pause_reading()  # type: ignore[attr-defined]
            self.opening = asyncio.ensure_future(self._open())

        async def _open(self) -> None:
            try:
                _, far = await connect(Pipe)
            except OSError:
                self.transport.close()  # type: ignore[union-attr]
                return
            if greet:  # the bridge sends nothing before this: a close without it means "never sent"
                self.transport.write(READY)  # type: ignore[union-attr]
            self.link(far)
            self.transport.resume_reading()  # type: ignore[union-attr]

    return Accepted


async def wait_listening(port: int, child: subprocess.Popen[bytes]) -> bool:
    """True once the server accepts on 127.0.0.1:port; False if it exits first."""
    while child.poll() is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return True
    return False


class Output(asyncio.Protocol):
    """The command's output to this process's stdout (the log), never more than ``cap`` bytes per launch."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.written = 0
        self.out = sys.stdout.fileno()
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.written + len(data) > self.cap:
            with contextlib.suppress(OSError):
                os.ftruncate(self.out, 0)
                os.write(self.out, b"---- log cap reached: earlier output dropped\n")
            self.written = 0
        with contextlib.suppress(OSError):
            os.write(self.out, data)
        self.written += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def short_path(path: str) -> str:
    """``path`` as a Unix socket can take it: a path of 100 bytes or more (a deep data dir) is named through
    an fd of its directory, kept open for this process's life (/proc/self/fd/N/name)."""
    if len(os.fsencode(path)) < SUN_PATH_MAX:
        return path
    directory = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{directory}/{os.path.basename(path)}"


async def dial_sibling(loop: asyncio.AbstractEventLoop, factory, path: str):
    """A sibling instance's socket, past its relay's READY byte."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, path)
        if await loop.sock_recv(sock, 1) != READY:
            raise ConnectionResetError(path)
    except BaseException:
        sock.close()
        raise
    return await loop.create_unix_connection(factory, sock=sock)


def mark_exited(socket_path: str, code: int | None, launch: str) -> None:
    """EXITED beside the socket: the runtime's poll reads it as this launch's death (not a later launch's),
    although PID 1 lingers for GRACE."""
    with contextlib.suppress(OSError), open(os.path.join(os.path.dirname(socket_path), EXITED), "w") as out:
        out.write(f"{code} {launch}\n")


def remove(path: str, inode: int | None = None) -> None:
    """Remove ``path`` (only if it is still the socket with ``inode``, when given: a newer launch's is not ours)."""
    with contextlib.suppress(FileNotFoundError):
        if inode is None or os.stat(path).st_ino == inode:
            os.unlink(path)


def spawn(command: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """The command, its output into a pipe that this process reads (returned)."""
    read_end, write_end = os.pipe()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end)
    os.close(write_end)
    return child, read_end


async def serve(args: argparse.Namespace, child: subprocess.Popen[bytes], read_end: int) -> int:
    loop = asyncio.get_running_loop()
    _, output = await loop.connect_read_pipe(lambda: Output(args.log_cap), os.fdopen(read_end, "rb", buffering=0))
    exited = loop.create_future()

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == child.pid and not exited.done():
                child.returncode = os.waitstatus_to_exitcode(status)
                exited.set_result(child.returncode)

    loop.add_signal_handler(signal.SIGCHLD, reap)
    stopping: list[int] = []

    def forward(sig: int) -> None:
        stopping.append(sig)  # stopped on purpose: no request is on its way, no need to linger
        if child.returncode is None:
            child.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, forward, sig)
    servers = []
    for peer in args.peer:
        port, _, path = peer.partition("=")
        with contextlib.suppress(OSError):
            path = short_path(path)
            protocol = relay_to(lambda factory, path=path: dial_sibling(loop, factory, path))
            servers.append(await loop.create_server(protocol, "127.0.0.1", int(port)))
    reap()
    made = None
    args.socket = short_path(args.socket)
    if await _first(wait_listening(args.port, child), exited):
        remove(args.socket)
        protocol = relay_to(lambda factory: loop.create_connection(factory, "127.0.0.1", args.port), greet=True)
        servers.append(await loop.create_unix_server(protocol, args.socket))
        os.chmod(args.socket, 0o600)
        made = os.stat(args.socket).st_ino
    try:
        code = await exited
    finally:
        if made is not None:
            remove(args.socket, made)
        for server in servers:
            server.close()
        mark_exited(args.socket, child.returncode, args.launch)
    if not stopping:
        await asyncio.sleep(GRACE)  # requests already on their way are answered NOT_DELIVERED, not cut
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(output.done), timeout=2)
    return code


async def _first(listening, exited: asyncio.Future[int]) -> bool:
    task = asyncio.ensure_future(listening)
    done, _ = await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    not_dumpable()
    set_limits(args.nproc, args.memory, args.nice)
    child, read_end = spawn(args.command)
    # The standard loop, not uvloop: PID 1 reaps every orphan on SIGCHLD, which uvloop keeps for itself.
    return asyncio.run(serve(args, child, read_end))


if __name__ == "__main__":
    sys.exit(main())
