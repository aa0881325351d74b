"""The application under test for run_e2e, run_api_tests and run_performance: `start_command` is
split with shlex and started without a shell in its own process group (the workspace is its working
directory), `wait_url` is polled until it answers, and at the end the whole group is killed.  URLs must
point at this machine (loopback): the tools test the workspace's own app, never a remote host."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shlex
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..core.errors import QualityError
from ..core.js_packages import node_env
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace

_POLL_S = 0.25
_KILL_GRACE_S = 3.0
_LOG_TAIL = 1500
_APP_READY_LIMIT_S = 120.0  # the app gets this long to answer, however long the tool may run


def loopback_url(url: str, what: str) -> str:
    """`url` if it is http(s) on a loopback address or localhost; a bad_argument error otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise QualityError("bad_argument", f"{what} must be an http:// or https:// URL, got {url!r}")
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    if not local:
        raise QualityError("bad_argument", f"{what} must point at this machine (127.0.0.1, localhost, [::1]): {url!r}")
    return url


def split_command(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise QualityError("bad_argument", f"start_command cannot be parsed: {exc}") from exc
    if not argv:
        raise QualityError("bad_argument", "start_command is empty")
    return argv


async def url_answers(url: str, timeout: float = 2.0) -> bool:
    """True when the URL gives any HTTP answer below 500 (the app is up and serving)."""
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout, verify=False) as client:  # noqa: S501 - local app  # nosec B501
            response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _tail(log: Path) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-_LOG_TAIL:].strip()
    except OSError:
        return ""


@contextlib.asynccontextmanager
async def app_under_test(
    ws: Workspace, start_command: str | None, wait_url: str | None, timeout: float
) -> AsyncIterator[dict[str, Any]]:
    """Start the app (when asked), wait until `wait_url` answers, yield facts about it, stop it."""
    if wait_url:
        loopback_url(wait_url, "wait_url")
    info: dict[str, Any] = {"start_command": None, "wait_url": wait_url, "ready_after_s": None}
    if not start_command:
        if wait_url:
            await _wait(wait_url, timeout, None, None)
        yield info
        return
    argv = split_command(start_command)
    info["start_command"] = argv
    with tempfile.TemporaryDirectory(prefix="paradise-app-") as tmpdir:
        log = Path(tmpdir) / "app.log"
        env = node_env()
        env["PATH"] = os.pathsep.join([str(ws.root / "node_modules" / ".bin"), env["PATH"]])
        with log.open("wb") as out:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=str(ws.root),
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise QualityError("app_failed", f"start_command {argv[0]!r} could not start: {exc}") from exc
        started = time.monotonic()
        try:
            if wait_url:
                await _wait(wait_url, timeout, proc, log)
            info["ready_after_s"] = round(time.monotonic() - started, 3)
            info["pid"] = proc.pid
            yield info
        finally:
            await _stop(proc)
            info["log_tail"] = _tail(log)[-500:]


async def _wait(url: str, timeout: float, proc: asyncio.subprocess.Process | None, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.returncode is not None:
            raise QualityError(
                "app_failed", f"start_command exited with {proc.returncode} before {url} answered: {_tail(log)}"
            )
        if await url_answers(url, timeout=min(2.0, max(deadline - time.monotonic(), 0.1))):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            if proc is not None:
                await asyncio.wait_for(proc.wait(), _POLL_S)
            else:
                await asyncio.sleep(_POLL_S)
    detail = f"; its output: {_tail(log)}" if log else ""
    raise QualityError("app_not_ready", f"{url} did not answer within {timeout:g}s{detail}")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """TERM the app's process group, KILL it after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _kill(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), _KILL_GRACE_S)
            _kill(proc.pid, signal.SIGKILL)  # children that ignored TERM after the leader left
            return
        except TimeoutError:
            continue


@dataclass(frozen=True)
class AppRun:
    """What run_e2e, run_api_tests and run_performance are given besides their own target: the
    workspace and profile, the app to bring up (`start_command`, `wait_url`), the call's time limit
    (None: the profile's for the tool) and its progress."""

    ws: Workspace
    profile: Profile
    start_command: str | None = None
    wait_url: str | None = None
    timeout: float | None = None
    progress: Progress | None = None

    def tool(self, kind: str) -> ToolRun:
        return ToolRun(self.profile, self.timeout or self.profile.timeout(kind), self.progress)

    @contextlib.asynccontextmanager
    async def app(
        self, tool: ToolRun, result: dict[str, Any], running: str, default_wait_url: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """app_under_test for this run (its facts in result["app"]); the progress step names what runs,
        and `default_wait_url` is polled when the call gave no wait_url."""
        if self.progress:
            await self.progress.step(0, "starting the app under test" if self.start_command else f"running {running}")
        limit = min(tool.timeout, _APP_READY_LIMIT_S)
        async with app_under_test(self.ws, self.start_command, self.wait_url or default_wait_url, limit) as app:
            result["app"] = app
            yield app
