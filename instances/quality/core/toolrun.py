"""The bounds one tool call puts on every command it runs: the call's time limit, the profile's cap on
captured output, and progress heartbeats while the command runs (when the MCP client asked for them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .profiles import Profile
from .progress import Progress
from .runner import RunResult, run_command


@dataclass(frozen=True)
class ToolRun:
    profile: Profile
    timeout: float
    progress: Progress | None = None

    async def run(
        self, argv: Sequence[str], label: str | None, cwd: Path, env: Mapping[str, str] | None = None
    ) -> RunResult:
        """`argv` in `cwd`, with heartbeats named `label` (None: a short helper run, no heartbeats)."""
        beat = self.progress.heartbeat(label, self.timeout) if self.progress and label else None
        return await run_command(
            argv, cwd=cwd, timeout=self.timeout, max_output=self.profile.max_output_bytes, env=env, heartbeat=beat
        )
