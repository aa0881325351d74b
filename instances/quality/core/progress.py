"""MCP progress notifications for long runs: steps of a tool plus heartbeats while a command runs.

The same values also go to an optional listener (the dashboard's job registry, jobs.py), which hears them
even when the client asked for no notifications."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from .runner import Heartbeat

ReportFn = Callable[[float, float | None, str | None], Awaitable[None]]
ListenFn = Callable[[float, float | None, str | None], None]


class Progress:
    """Reports `step + fraction` out of `total_steps`, never going backwards.

    A heartbeat is sent every couple of seconds while a command runs, so a client sees that a long
    test run is alive (elapsed time in the message); a failing notification never fails the tool."""

    def __init__(
        self, report: ReportFn | None = None, total_steps: int = 1, listener: ListenFn | None = None
    ) -> None:
        self._report = report
        self._listener = listener
        self.total = float(max(total_steps, 1))
        self._step = 0
        self._last = -1.0

    async def _send(self, value: float, message: str) -> None:
        value = min(max(value, self._last), self.total)
        if value < self._last or (self._report is None and self._listener is None):
            return
        self._last = value
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener(value, self.total, message)
        if self._report is not None:
            with contextlib.suppress(Exception):
                await self._report(value, self.total, message)

    async def step(self, index: int, message: str) -> None:
        self._step = index
        await self._send(float(index), message)

    def heartbeat(self, label: str, timeout: float) -> Heartbeat:
        async def beat(elapsed: float) -> None:
            fraction = min(elapsed / timeout, 0.95) if timeout > 0 else 0.0
            await self._send(self._step + fraction, f"{label}: {elapsed:.0f}s elapsed (limit {timeout:g}s)")

        return beat

    async def done(self, message: str = "done") -> None:
        if self._last < self.total:
            await self._send(self.total, message)
