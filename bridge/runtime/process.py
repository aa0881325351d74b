"""ProcessRuntime: instances as local processes, each in a bubblewrap sandbox (sandbox.py).

Each instance runs in its own session and process group (a crash or kill -9 of the bridge does not take it
down; a restarted bridge re-adopts it), with an environment built from an allow-list and its own HOME
under its instance directory; its output goes to a log file the instance itself cannot see. ``runtime.json``
in that directory is this backend's "label": the source of truth ``discover()`` reads. A pid alone is never
trusted: the process start time must match too, so a recycled pid is not mistaken for an instance.

Where bubblewrap cannot run, instances run unsandboxed, as the bridge's user: then this runtime serves one
client only, unless ``PARADISE_ALLOW_UNSANDBOXED=true`` says that is wanted (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bridge.runtime import address, egress
from bridge.runtime.access import Who
from bridge.runtime.base import (
    Discovered,
    InstanceSpec,
    PollResult,
    PortTaken,
    Runtime,
    RuntimeOperationError,
    port_is_free,
)
from bridge.runtime.grants import SandboxUids, grant_passage, grant_workspace, own_run_dir
from bridge.runtime.process_tree import LAUNCH_MARKER, family, identity, pid_namespace, same_process, signal_all
from bridge.runtime.sandbox import Launch, Sandbox, instance_environment, peer_run_dir

__all__ = ["LOG_FILE", "STATE_FILE", "ProcessRuntime", "rotate_log", "same_process"]
log = logging.getLogger(__name__)
STATE_FILE = "runtime.json"
EXITED = "exited"  # instances/sandbox_init.py writes it in the run directory once the server has exited
LOG_FILE = "instance.log"
LOG_KEEP_BYTES = 8 * 2**20  # a log past this at a launch becomes instance.log.1 (one kept): bounded on disk


def rotate_log(path: Path, keep: int = LOG_KEEP_BYTES) -> None:
    """Before a launch: a log grown past ``keep`` bytes replaces the one old log, so logs stay bounded."""
    try:
        if path.stat().st_size > keep:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
LABEL_KEYS = ("client_id", "service", "port")


@dataclass(frozen=True)
class Limits:
    """Per-instance bounds on the process runtime (rlimits: what every kernel and user can set)."""

    memory: int | None = None  # RLIMIT_DATA per process; the catalog's memory wins
    pids: int | None = None  # RLIMIT_NPROC: processes of the sandbox's uid
    disk: int | None = None  # the home tmpfs


class ProcessRuntime(Runtime):
    name = "process"
    installs_on_host = True

    def __init__(
        self,
        root: Path,
        *,
        sandbox: Sandbox | None = None,
        allow_unsandboxed: bool = False,
        uids: SandboxUids | None = None,
        limits: Limits = Limits(),
        egress: egress.Egress = "none",
    ) -> None:
        self.root = root
        self.sandbox = sandbox
        self.allow_unsandboxed = allow_unsandboxed
        # With a root bridge, sandboxes run as unprivileged host uids (one per client), never as root.
        self.uids = uids if sandbox is not None and os.geteuid() == 0 else None
        self.limits = limits
        self.egress = egress if sandbox is not None else "none"  # unsandboxed: the host's network anyway
        # Our own children, kept so their exit codes can be read; asyncio reaps them (no zombies).
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._nats: dict[int, asyncio.subprocess.Process] = {}  # an instance's pid -> its slirp4netns

    @property
    def sandboxed(self) -> bool:
        return self.sandbox is not None

    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        if not spec.command:
            raise ValueError(f"service {spec.service!r} has no command for the process runtime")
        if self.sandbox is None and not port_is_free(spec.port):  # a sandbox has a network of its own
            raise PortTaken(f"127.0.0.1:{spec.port} is in use by another program")
        self._refuse_second_unsandboxed_client(spec.client_id)
        home = spec.instance_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = instance_environment(spec, home)
        launch = nat = None
        if self.sandbox is not None:
            # Its network namespace has its own loopback and, under egress all, slirp4netns's NAT (egress.py).
            env["PARADISE_INSTANCE_EGRESS"] = self.egress
            env |= egress.environment(self.egress)
            launch = await asyncio.to_thread(self._prepare, spec, home, egress.ca_paths(env))
            command = [*_as_user(launch.who), *self.sandbox.command(spec, launch)]
            nat = egress.Nat() if self.egress == "all" else None
        else:
            env[LAUNCH_MARKER] = secrets.token_hex(16)  # proves the family at stop (process_tree.py)
            command = spec.command
        log_path = spec.instance_dir / LOG_FILE
        rotate_log(log_path)
        who = launch.who if launch else None
        with log_path.open("ab") as out:
            out.write(f"---- starting {' '.join(spec.command)}{'' if self.sandbox else ' (unsandboxed)'}\n".encode())
            out.flush()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,  # to bwrap itself: never in an argv others can read
                    cwd="/" if who else home,
                    start_new_session=True,  # its own session and group: a bridge crash does not reach it
                    pass_fds=nat.sandbox_fds if nat else (),
                )
            finally:
                if nat is not None:
                    nat.sandbox_started()
        self._children[proc.pid] = proc
        state: dict[str, Any] = {
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "log": str(log_path),
            "dir": str(spec.instance_dir),
        }
        if launch is not None:
            state["socket"] = str(launch.socket)
            state["launch"] = launch.id
            if who is not None:
                state["uid"] = who.uid
            sandboxed = await _sandbox_init(proc.pid)
            if sandboxed is not None:
                state["sandbox"] = {**identity(sandboxed), "pidns": pid_namespace(sandboxed.pid)}
            if nat is not None:
                await self._attach_nat(nat, sandboxed, state, log_path)
            address.register(spec.port, state["socket"])
        else:
            state["marker"] = env[LAUNCH_MARKER]
        label = {"client_id": spec.client_id, "service": spec.service, "port": spec.port, **state}
        (spec.instance_dir / STATE_FILE).write_text(json.dumps(label))
        log.info("started %s (pid %d%s) on 127.0.0.1:%d", spec.name, proc.pid, _how(state), spec.port)
        return state

    def _prepare(self, spec: InstanceSpec, home: Path, readable: list[Path]) -> Launch:
        """The launch's run directory, credentials and limits; with a root bridge, what its uid may reach."""
        run_dir = spec.instance_dir / "run"
        who = self.uids.who(spec.client_id) if self.uids else None
        pids = self.limits.pids
        if who is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            for service in spec.peers:
                peer_run_dir(run_dir, service).mkdir(parents=True, exist_ok=True)
            # The sandbox runs as the bridge's own uid, whose other processes count against RLIMIT_NPROC too.
            pids = pids and pids + _processes_of(os.getuid())
        else:
            own_run_dir(run_dir, who)
            for service in spec.peers:
                own_run_dir(peer_run_dir(run_dir, service), who)
            grant_workspace(spec.workspace.resolve(), who)
        for stale in ("instance.sock", EXITED):  # a dead launch's: the new one makes its own
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run_dir / stale)
        resolv = egress.write_resolv_conf(run_dir / "resolv.conf") if self.egress == "all" else None
        launch = Launch(home=home, run_dir=run_dir, who=who, memory=spec.memory_bytes or self.limits.memory,
                        nproc=pids, disk=self.limits.disk, resolv=resolv, readable=tuple(readable))  # fmt: skip
        if who is not None:
            for kind, path in self.sandbox.mounts(spec, launch):  # type: ignore[union-attr]
                if kind in ("bind", "ro-bind"):
                    grant_passage(path, who)
        return launch

    async def _attach_nat(
        self, nat: egress.Nat, sandboxed: psutil.Process | None, state: dict[str, Any], log_path: Path
    ) -> None:
        """Egress all: slirp4netns into the sandbox's network namespace; a sandbox it cannot reach is stopped
        (an instance told it has egress must have it)."""
        try:
            if sandboxed is None:
                raise OSError("the sandbox did not start")
            slirp = await nat.attach(sandboxed.pid, log_path)
        except OSError as exc:
            nat.abandon()
            await self.stop(state, grace=1)
            raise RuntimeOperationError(f"PARADISE_INSTANCE_EGRESS=all: {exc}") from None
        state["nat"] = identity(psutil.Process(slirp.pid))
        self._nats[state["pid"]] = slirp

    def _refuse_second_unsandboxed_client(self, client_id: str) -> None:
        """Unsandboxed instances can read each other's workspaces: then there is room for one tenant only."""
        if self.sandbox is not None or self.allow_unsandboxed:
            return
        others = sorted({p.parent.parent.name for p in self.root.glob(f"*/*/{STATE_FILE}")} - {client_id})
        if others:
            raise RuntimeOperationError(
                f"the process runtime runs without a sandbox here (bubblewrap cannot run) and already serves "
                f"client {others[0]!r}; one client only. Install bubblewrap, use the docker runtime, or set "
                "PARADISE_ALLOW_UNSANDBOXED=true to accept clients that can read each other's files"
            )

    async def poll(self, state: dict[str, Any]) -> PollResult:
        pid = state.get("pid")
        if not pid:
            return PollResult(running=False, detail="never started")
        if same_process(pid, state.get("create_time", 0.0)) is not None:
            if (code := _server_exit(state)) is not None:
                return PollResult(running=False, exit_code=code)
            return PollResult(running=True)
        child = self._children.get(pid)
        exit_code = None
        if child is not None:
            with contextlib.suppress(TimeoutError):
                exit_code = await asyncio.wait_for(child.wait(), timeout=1)
        return PollResult(running=False, exit_code=exit_code)

    async def stop(self, state: dict[str, Any], *, grace: float = 5.0) -> None:
        """End the whole family: the leader if it lives, the sandbox (its PID 1 takes the namespace with it)
        and whatever is left in the recorded process group, also when the leader died long ago."""
        pid = state.get("pid")
        members = await asyncio.to_thread(family, state)
        _forget_socket(state)
        if members:
            signal_all(members, signal.SIGTERM)
            signal_all(members, signal.SIGCONT)  # a frozen (paused) family receives its SIGTERM only once thawed
            if not await self._wait_gone(pid, members, grace):
                log.warning("pid %s did not stop within %.1fs; killing its family", pid, grace)
                signal_all([m for m in members if m.is_running()], signal.SIGKILL)
                await self._wait_gone(pid, members, 5)
        await self._end_nat(state)
        self._forget(pid)

    async def _end_nat(self, state: dict[str, Any]) -> None:
        """slirp4netns ends by itself with the sandbox (egress.py); one that did not is ended here."""
        slirp = self._nats.pop(state.get("pid"), None)
        if slirp is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slirp.wait(), timeout=5)
        nat = state.get("nat") or {}
        if (leftover := same_process(nat.get("pid"), nat.get("create_time", 0.0))) is not None:
            log.warning("slirp4netns %s outlived its sandbox; ending it", leftover.pid)
            signal_all([leftover], signal.SIGKILL)

    # Freezing: SIGSTOP to the whole family (sandbox and language servers included), SIGCONT to thaw.
    can_pause = True

    async def pause(self, state: dict[str, Any]) -> None:
        await self._signal_family(state, signal.SIGSTOP)

    async def unpause(self, state: dict[str, Any]) -> None:
        await self._signal_family(state, signal.SIGCONT)

    async def _signal_family(self, state: dict[str, Any], sig: signal.Signals) -> None:
        if same_process(state.get("pid"), state.get("create_time", 0.0)) is None:
            raise RuntimeOperationError("the instance's process is gone")
        signal_all(await asyncio.to_thread(family, state), sig)

    async def _wait_gone(self, pid: int | None, members: list[psutil.Process], timeout: float) -> bool:
        """Wait for the family to exit. Our own child is awaited through asyncio, which reaps it and keeps
        its exit code; psutil would reap it behind asyncio's back (a bogus 255 and a warning)."""
        child = self._children.get(pid) if pid else None
        others = [m for m in members if child is None or m.pid != child.pid]
        _, alive = await asyncio.to_thread(psutil.wait_procs, others, timeout=timeout)
        if child is not None:
            try:
                await asyncio.wait_for(asyncio.shield(child.wait()), timeout=max(timeout, 0.1))
            except TimeoutError:
                return False
        return not alive

    async def remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        await self.stop(state)
        await asyncio.to_thread(shutil.rmtree, self.root / client_id / service, True)
        with contextlib.suppress(OSError):
            (self.root / client_id).rmdir()  # only once the client's last instance is gone
            if self.uids is not None:
                self.uids.release(client_id)

    async def discover(self) -> list[Discovered]:
        found: list[Discovered] = []
        for label_file in sorted(self.root.glob(f"*/*/{STATE_FILE}")):
            try:
                label = json.loads(label_file.read_text())
                state = {k: v for k, v in label.items() if k not in LABEL_KEYS}
                found.append(Discovered(label["client_id"], label["service"], int(label["port"]), state))
                if state.get("socket") and same_process(state.get("pid"), state.get("create_time")):
                    address.register(int(label["port"]), state["socket"])  # re-adopted after a bridge restart
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable %s: %s", label_file, exc)
        return found

    async def logs(self, state: dict[str, Any], *, lines: int = 50) -> list[str]:
        path = state.get("log")
        if not path:
            return []
        return await asyncio.to_thread(_tail, Path(path), lines)

    async def close(self) -> None:
        self._children.clear()  # the instances keep running; a restarted bridge adopts them

    def _forget(self, pid: int | None) -> None:
        if pid is not None:
            self._children.pop(pid, None)


async def _sandbox_init(bwrap_pid: int, timeout: float = 2.0) -> psutil.Process | None:
    """The sandbox's PID 1 as the host sees it: bwrap's one child, once it has made it (None if bwrap failed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            children = psutil.Process(bwrap_pid).children()
        except psutil.Error:
            return None
        if children:
            return children[0]
        await asyncio.sleep(0.01)
    return None


def _forget_socket(state: dict[str, Any]) -> None:
    """The stopped launch's socket no longer names its port (a later launch registers its own)."""
    label = Path(state["dir"]) / STATE_FILE if state.get("dir") else None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if label is not None and state.get("socket"):
            address.forget(int(json.loads(label.read_text())["port"]), state["socket"])


def _server_exit(state: dict[str, Any]) -> int | None:
    """The exit code the sandbox's PID 1 (instances/sandbox_init.py) wrote once its server exited, or None
    while it runs. The sandbox lingers a moment after that, to answer requests already on their way."""
    if not state.get("socket"):
        return None
    try:
        code, _, launch = (Path(state["socket"]).parent / EXITED).read_text().strip().partition(" ")
    except OSError:
        return None
    if launch != state.get("launch", ""):
        return None  # an earlier launch's word, not this one's
    try:
        return int(code)
    except ValueError:
        return -1


def _as_user(who: Who | None) -> list[str]:
    """The util-linux ``setpriv`` prefix that runs bwrap as ``who`` (nothing: as the bridge's own user)."""
    if who is None:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeOperationError(
            "a root bridge runs sandboxes as unprivileged uids with setpriv (util-linux); install it"
        )
    groups = ",".join(str(g) for g in sorted(who.groups))
    return [setpriv, f"--reuid={who.uid}", f"--regid={who.gid}", f"--groups={groups}", "--inh-caps=-all", "--"]


def _processes_of(uid: int) -> int:
    return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid)


def _how(state: dict[str, Any]) -> str:
    sandbox = state.get("sandbox")
    return f", sandbox pid {sandbox['pid']}" if sandbox else ""


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]
