"""ProcessRuntime: instances as local child processes, the embedded fallback where Docker is absent.

Each instance runs in its own session and process group (so a stop reaches the language servers it
spawns, and a crash or kill -9 of the bridge does not take it down), with its own HOME and log file under
its instance directory. ``runtime.json`` in that directory is this backend's "label": the source of truth
``discover()`` reads. A pid alone is never trusted: the process start time must match too, so a recycled
pid is not mistaken for an instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import psutil

from bridge.runtime.base import Discovered, InstanceSpec, PollResult, PortTaken, Runtime, port_is_free

log = logging.getLogger(__name__)
STATE_FILE = "runtime.json"
LOG_FILE = "instance.log"
# Bridge settings (the admin token among them) must never leak into an instance's environment.
_PRIVATE_ENV_PREFIXES = ("PARADISE_",)


def _instance_env(spec: InstanceSpec, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV_PREFIXES)}
    env.update(spec.env)
    env.update(
        HOME=str(home),
        PARADISE_CLIENT=spec.client_id,
        PARADISE_SERVICE=spec.service,
        PARADISE_WORKSPACE=str(spec.workspace),
        PYTHONUNBUFFERED="1",
    )
    return env


def _same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The live process with this pid and start time, or None (gone, zombie, or a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class ProcessRuntime(Runtime):
    name = "process"
    installs_on_host = True

    def __init__(self, root: Path) -> None:
        self.root = root
        # Our own children, kept so their exit codes can be read; asyncio reaps them (no zombies).
        self._children: dict[int, asyncio.subprocess.Process] = {}

    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        if not spec.command:
            raise ValueError(f"service {spec.service!r} has no command for the process runtime")
        if not port_is_free(spec.port):
            raise PortTaken(f"127.0.0.1:{spec.port} is in use by another program")
        home = spec.instance_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        log_path = spec.instance_dir / LOG_FILE
        with log_path.open("ab") as out:
            out.write(f"---- starting {' '.join(spec.command)}\n".encode())
            out.flush()
            proc = await asyncio.create_subprocess_exec(
                *spec.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=_instance_env(spec, home),
                cwd=spec.instance_dir,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        state = {
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "log": str(log_path),
            "dir": str(spec.instance_dir),
        }
        label = {"client_id": spec.client_id, "service": spec.service, "port": spec.port, **state}
        (spec.instance_dir / STATE_FILE).write_text(json.dumps(label))
        log.info("started %s (pid %d) on 127.0.0.1:%d", spec.name, proc.pid, spec.port)
        return state

    async def poll(self, state: dict[str, Any]) -> PollResult:
        pid = state.get("pid")
        if not pid:
            return PollResult(running=False, detail="never started")
        if _same_process(pid, state.get("create_time", 0.0)) is not None:
            return PollResult(running=True)
        child = self._children.get(pid)
        exit_code = None
        if child is not None:
            with contextlib.suppress(TimeoutError):
                exit_code = await asyncio.wait_for(child.wait(), timeout=1)
        return PollResult(running=False, exit_code=exit_code)

    async def stop(self, state: dict[str, Any], *, grace: float = 5.0) -> None:
        pid = state.get("pid")
        leader = _same_process(pid, state.get("create_time", 0.0)) if pid else None
        if leader is None:
            self._forget(pid)
            return
        members = [leader, *self._descendants(leader)]
        self._signal_group(leader.pid, members, signal.SIGTERM)
        if not await self._wait_gone(leader, members, grace):
            log.warning("pid %d did not stop within %.1fs; killing", leader.pid, grace)
            self._signal_group(leader.pid, [m for m in members if m.is_running()], signal.SIGKILL)
            await self._wait_gone(leader, members, 5)
        self._forget(pid)

    async def _wait_gone(self, leader: psutil.Process, members: list[psutil.Process], timeout: float) -> bool:
        """Wait for the family to exit. Our own child is awaited through asyncio, which reaps it and keeps
        its exit code; psutil would reap it behind asyncio's back (a bogus 255 and a warning)."""
        child = self._children.get(leader.pid)
        others = [m for m in members if m.pid != leader.pid] if child is not None else members
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

    async def discover(self) -> list[Discovered]:
        found: list[Discovered] = []
        for label_file in sorted(self.root.glob(f"*/*/{STATE_FILE}")):
            try:
                label = json.loads(label_file.read_text())
                found.append(
                    Discovered(
                        client_id=label["client_id"],
                        service=label["service"],
                        port=int(label["port"]),
                        state={k: label[k] for k in ("pid", "create_time", "log", "dir")},
                    )
                )
            except (OSError, ValueError, KeyError) as exc:
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

    @staticmethod
    def _descendants(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return proc.children(recursive=True)
        except psutil.Error:
            return []

    @staticmethod
    def _signal_group(pgid: int, members: list[psutil.Process], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        # Descendants that started their own session escape killpg; signal them one by one.
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.send_signal(sig)


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
