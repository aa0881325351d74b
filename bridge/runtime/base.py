"""The runtime contract: how the bridge starts, stops, polls and finds instances, whatever runs them.

Modelled on JupyterHub's Spawner. Rules every backend keeps:

* ``start(spec)`` launches one instance for (client, service) listening on ``spec.host:spec.port`` (host
  side) and returns its *backend state*: a small JSON-able dict (a pid and start time, a container id...)
  that the manager persists. It returns once the instance is launched, not once it is ready; readiness is
  the manager's business (it speaks MCP, runtimes do not).
* The backend state is all a runtime may rely on to find the instance again after a bridge restart. A
  runtime keeps no other memory that matters.
* ``poll(state)`` says whether that exact instance still runs. It must never mistake another thing for it
  (a recycled pid, a container of the same name created by someone else).
* ``stop(state)`` ends the instance and releases what the runtime made for it. It is idempotent: stopping
  something already gone is a success.
* ``discover()`` lists every instance this runtime manages, from the runtime's own source of truth (labels
  on containers, state files of processes), so start-up can reconcile stored intent with reality.
* Runtimes never import aiohttp or sqlmodel; blocking calls are kept off the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (SO_REUSEADDR, as servers use, so TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def instance_name(client_id: str, service: str) -> str:
    """The one name of an instance's objects (containers, services) and, on an engine, its DNS name."""
    return f"paradise-{client_id}-{service}"


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a runtime needs to start one instance."""

    client_id: str
    service: str
    port: int  # host port, leased by the bridge
    workspace: Path
    instance_dir: Path  # per-instance private directory on the host (home, logs, state)
    command: list[str] | None = None  # process runtime
    image: str | None = None  # container runtimes
    container_port: int = 8000
    env: dict[str, str] = field(default_factory=dict)
    memory_bytes: int | None = None
    cpus: float | None = None
    host: str = "127.0.0.1"
    # Sibling instances of the same client this one talks to (service -> leased port): quality -> serena.
    peers: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return instance_name(self.client_id, self.service)


@dataclass(frozen=True)
class PollResult:
    running: bool
    exit_code: int | None = None
    oom_killed: bool = False
    detail: str | None = None


@dataclass(frozen=True)
class Discovered:
    """An instance found in the runtime itself (not in the database)."""

    client_id: str
    service: str
    port: int
    state: dict[str, Any]


class RuntimeOperationError(Exception):
    """A runtime could not do what was asked; the message says what and why, for a person."""


class PortTaken(RuntimeOperationError):
    """The leased host port turned out to be in use by something else."""


class Runtime(abc.ABC):
    name: str = "abstract"
    # True when instances run on this host's own files (so host-side requirements must be installed).
    installs_on_host: bool = False

    @abc.abstractmethod
    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        """Launch the instance; return the backend state to persist."""

    @abc.abstractmethod
    async def stop(self, state: dict[str, Any], *, grace: float = 5.0) -> None:
        """Stop and clean up; idempotent."""

    @abc.abstractmethod
    async def poll(self, state: dict[str, Any]) -> PollResult:
        """Is this exact instance still running?"""

    @abc.abstractmethod
    async def discover(self) -> list[Discovered]:
        """Every managed instance the runtime knows of, running or not."""

    @abc.abstractmethod
    async def logs(self, state: dict[str, Any], *, lines: int = 50) -> list[str]:
        """The last lines of the instance's output."""

    async def remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        """Stop, then forget everything made for this instance (volumes, state files); idempotent."""
        await self.stop(state)

    async def close(self) -> None:
        """Release the runtime's own resources (clients, watchers). Instances keep running."""

    def peer_address(self, client_id: str, service: str, host_port: int, container_port: int) -> tuple[str, int]:
        """Where a sibling instance of the same client reaches this instance: (host, port).

        Instances of this host share its loopback (the process runtime), so the leased host port; container
        runtimes override it (the instance's name on the client's own network)."""
        return "127.0.0.1", host_port

    # Freezing (PAUSE_AFTER): a runtime that can stop an instance's CPU while keeping its memory says so.
    can_pause: bool = False

    async def pause(self, state: dict[str, Any]) -> None:
        """Freeze the instance: same process, memory kept, no CPU. Only called when ``can_pause``."""
        raise RuntimeOperationError(f"the {self.name} runtime cannot pause instances")

    async def unpause(self, state: dict[str, Any]) -> None:
        """Thaw a frozen instance; idempotent."""
        raise RuntimeOperationError(f"the {self.name} runtime cannot pause instances")


class ThreadedRuntime(Runtime):
    """A runtime over a synchronous SDK (docker): each call runs in a worker thread, off the event loop.

    Subclasses implement the blocking ``_start``, ``_stop``, ``_poll``, ``_discover``, ``_logs`` and
    ``_remove`` and hold their SDK client in ``self.client``.
    """

    client: Any

    async def start(self, spec: InstanceSpec) -> dict[str, Any]:
        return await asyncio.to_thread(self._start, spec)

    async def stop(self, state: dict[str, Any], *, grace: float = 5.0) -> None:
        await asyncio.to_thread(self._stop, state, grace)

    async def poll(self, state: dict[str, Any]) -> PollResult:
        return await asyncio.to_thread(self._poll, state)

    async def discover(self) -> list[Discovered]:
        return await asyncio.to_thread(self._discover)

    async def logs(self, state: dict[str, Any], *, lines: int = 50) -> list[str]:
        return await asyncio.to_thread(self._logs, state, lines)

    async def remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self._remove, client_id, service, state)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)

    @abc.abstractmethod
    def _start(self, spec: InstanceSpec) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _stop(self, state: dict[str, Any], grace: float) -> None: ...

    @abc.abstractmethod
    def _poll(self, state: dict[str, Any]) -> PollResult: ...

    @abc.abstractmethod
    def _discover(self) -> list[Discovered]: ...

    @abc.abstractmethod
    def _logs(self, state: dict[str, Any], lines: int) -> list[str]: ...

    @abc.abstractmethod
    def _remove(self, client_id: str, service: str, state: dict[str, Any]) -> None: ...
