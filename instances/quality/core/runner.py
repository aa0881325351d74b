"""Bounded subprocess runner: every tool run has a timeout and a cap on captured output.

The child runs in its own session (process group) so a timeout, or the MCP client cancelling the
call, kills the whole tree (pytest workers, node children), not just the direct child.  Output is
read concurrently from both pipes; bytes beyond the cap are drained and discarded so the child never
blocks on a full pipe, and the result says it was truncated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Heartbeat = Callable[[float], Awaitable[None]]
"""Called with the elapsed seconds every `heartbeat_interval` while a command runs."""

# Variables of an outer pytest/coverage run that would leak into the tools we start.
_SCRUBBED_PREFIXES = ("COV_CORE_", "PYTEST_", "COVERAGE_")
_KILL_GRACE_S = 2.0
_READ_CHUNK = 65536


@dataclass
class RunResult:
    """What one command did.  `returncode` is None when it never started or was killed."""

    argv: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    timed_out: bool = False
    truncated: bool = False
    missing: bool = False
    error: str | None = None

    @property
    def completed(self) -> bool:
        return self.returncode is not None and not self.timed_out

    def tail(self, lines: int = 20) -> str:
        """The last lines of stderr (or stdout when stderr is empty), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])

    def problem(self, timeout: float, label: str | None = None) -> str | None:
        """A one-line description of why the run gave no usable result, or None when it did."""
        name = label or (Path(self.argv[0]).name if self.argv else "command")
        if self.missing:
            return f"{name} is not installed ({self.error})"
        if self.error:
            return f"{name} could not start: {self.error}"
        if self.timed_out:
            return f"{name} timed out after {timeout:g}s and was killed"
        return None

    def failure(self, timeout: float, why: str | None = None, label: str | None = None) -> dict[str, str]:
        """A reply's `error` for this run when it gave no usable result: the timeout or failed start
        (problem()), else `why` (by default: the exit code and the last lines of output)."""
        name = label or (Path(self.argv[0]).name if self.argv else "command")
        return {
            "code": "timeout" if self.timed_out else "run_failed",
            "message": self.problem(timeout, label) or why or f"{name} exited with {self.returncode}: {self.tail(8)}",
        }


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment without an outer pytest/coverage run's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    env["NO_COLOR"] = "1"
    if extra:
        env.update(extra)
    return env


def find_executable(name: str, workspace: Path | None = None) -> str | None:
    """Locate a tool: the workspace's venv first (the project's pinned version), then the
    server's own environment (next to sys.executable), then PATH."""
    candidates: list[Path] = []
    if workspace is not None:
        candidates += [workspace / ".venv" / "bin" / name, workspace / "venv" / "bin" / name]
    candidates.append(Path(sys.executable).parent / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


async def _read_bounded(stream: asyncio.StreamReader | None, cap: int, sink: bytearray) -> bool:
    """Read a pipe to EOF keeping at most `cap` bytes; True when something was discarded."""
    truncated = False
    if stream is None:
        return False
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            return truncated
        room = cap - len(sink)
        if room > 0:
            sink.extend(chunk[:room])
        if len(chunk) > room:
            truncated = True


def _kill_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def _terminate(proc: asyncio.subprocess.Process, pending: asyncio.Future[object]) -> None:
    """SIGTERM the process group, then SIGKILL after a grace period; never waits unbounded.  A
    descendant that left the group and still holds the pipes is abandoned (the reads are cancelled)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _kill_group(proc, sig)
        done, _ = await asyncio.wait({pending}, timeout=_KILL_GRACE_S)
        if done:
            return
    pending.cancel()


async def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    max_output: int = 2_000_000,
    env: Mapping[str, str] | None = None,
    heartbeat: Heartbeat | None = None,
    heartbeat_interval: float = 2.0,
) -> RunResult:
    """Run `argv` (no shell) in `cwd`; kill it after `timeout` seconds; keep `max_output` bytes
    of each stream.  Never raises for the child's failures: they are described in the result."""
    args = [str(a) for a in argv]
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=str(cwd),
            env=dict(env) if env is not None else clean_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        return RunResult(args, None, missing=True, error=str(exc.strerror or exc))
    except OSError as exc:
        return RunResult(args, None, error=str(exc))

    out, err = bytearray(), bytearray()

    async def _collect() -> tuple[bool, bool]:
        flags = await asyncio.gather(
            _read_bounded(proc.stdout, max_output, out), _read_bounded(proc.stderr, max_output, err)
        )
        await proc.wait()
        return flags[0], flags[1]

    pending: asyncio.Future[tuple[bool, bool]] = asyncio.ensure_future(_collect())
    timed_out = False
    deadline = started + timeout
    try:
        while not pending.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            await asyncio.wait({pending}, timeout=min(remaining, heartbeat_interval))
            if heartbeat is not None and not pending.done():
                with contextlib.suppress(Exception):
                    await heartbeat(time.monotonic() - started)
    except BaseException:
        # Cancelled (client went away) or interrupted: kill at once, without awaiting, since a
        # level-triggered cancel scope would cancel any further await here too.
        _kill_group(proc, signal.SIGKILL)
        pending.cancel()
        raise
    truncated = False
    if timed_out:
        await _terminate(proc, pending)
    elif pending.exception() is None:
        truncated = any(pending.result())
    return RunResult(
        argv=args,
        returncode=None if timed_out else proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration_s=round(time.monotonic() - started, 3),
        timed_out=timed_out,
        truncated=truncated,
    )


def read_bounded_file(path: Path, cap: int = 50_000_000) -> str | None:
    """A tool's report file as text, or None when absent; refuses files over `cap` bytes."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size > cap:
        raise ValueError(f"{path.name} is {size} bytes, over the {cap}-byte limit")
    return path.read_text(encoding="utf-8", errors="replace")
