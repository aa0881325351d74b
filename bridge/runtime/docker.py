"""DockerRuntime: one container per (client, service), through the Docker SDK.

Names, labels, environment and the per-client network policy come from ``engine.EngineRuntime``. Each
client gets its own network, so one client's containers cannot reach another's. The container port is
published on 127.0.0.1 only. Secure by default: all capabilities dropped, no-new-privileges, pid, memory and
CPU limits, a read-only root filesystem (tmpfs for /tmp and $HOME, the state volume at /state). The Docker
SDK is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import LogConfig

from bridge.runtime.access import unreadable_workspace, user_of
from bridge.runtime.base import InstanceSpec, PollResult, RuntimeOperationError
from bridge.runtime.engine import (
    EGRESS_LABEL,
    INSTANCE_UID,
    LABEL,
    PIDS_LIMIT,
    STATE_MOUNT,
    TMP_MOUNT,
    TMPFS_OPTIONS,
    WORKSPACE_MOUNT,
    EngineRuntime,
    gone_or_done,
    image_home,
    labels_for,
    network_name,
    probe_engine,
    start_error,
    volume_name,
    workspace_user,
)
from instances.serena.mounts import operator_mounts

__all__ = ["INSTANCE_UID", "LABEL", "DockerRuntime", "docker_available", "labels_for", "network_name", "volume_name"]
log = logging.getLogger(__name__)
SWARM_TASK_LABEL = "com.docker.swarm.service.id"


# The engine's json-file log, bounded like the process runtime's (two files of 8 MiB at the most).
LOG_CONFIG = LogConfig(type=LogConfig.types.JSON, config={"max-size": "8m", "max-file": "2"})


class DockerRuntime(EngineRuntime):
    name = "docker"
    object_kind = "container"

    # ---- blocking implementation -------------------------------------------------------------------

    def _start(self, spec: InstanceSpec) -> dict[str, Any]:
        if not spec.image:
            raise RuntimeOperationError(f"service {spec.service!r} has no image for the docker runtime")
        user = workspace_user(spec.workspace)
        if refusal := unreadable_workspace(spec.workspace, user_of(user), parents=False):
            raise RuntimeOperationError(refusal)  # else it starts and serves an empty workspace as if all were well
        with self._client_locks[spec.client_id]:
            network = self._ensure_network(spec.client_id)
            volume = self._ensure_volume(spec.client_id, spec.service)
        self._remove_container(spec.name)  # a stale container of the same name (e.g. exited) is replaced
        cpus = self.cpus_for(spec)
        try:
            home = image_home(self.client.images.get(spec.image).attrs)
            container = self.client.containers.run(
                spec.image,
                name=spec.name,
                detach=True,
                labels=self.owned_labels(spec.client_id, spec.service, spec.port),
                ports={f"{spec.container_port}/tcp": ("127.0.0.1", spec.port)},
                volumes={
                    str(spec.workspace): {"bind": WORKSPACE_MOUNT, "mode": "rw"},
                    volume: {"bind": STATE_MOUNT, "mode": "rw"},
                    **operator_mounts(spec.env),  # the operator's language servers (Serena), read-only
                },
                environment=self.env_for(spec),
                network=network,
                user=user,
                mem_limit=spec.memory_bytes,
                nano_cpus=int(cpus * 1e9) if cpus else None,
                pids_limit=PIDS_LIMIT,
                security_opt=["no-new-privileges:true"],
                cap_drop=["ALL"],
                log_config=LOG_CONFIG,
                read_only=True,  # what an instance writes goes to its workspace, /state, $HOME or /tmp
                tmpfs={TMP_MOUNT: TMPFS_OPTIONS, home: TMPFS_OPTIONS},
                init=True,  # reap the language servers' children
            )
        except ImageNotFound:
            raise RuntimeOperationError(f"image {spec.image} is not built; run: devops-paradise images build") from None
        except APIError as exc:
            self._remove_container(spec.name)
            raise start_error(exc, spec, "docker") from None
        log.info("started container %s (%s) on 127.0.0.1:%d", spec.name, container.short_id, spec.port)
        return {"container_id": container.id, "name": spec.name}

    def _poll_object(self, container_id: str, /) -> PollResult:
        info = self.client.containers.get(container_id).attrs.get("State", {})
        if info.get("Running") and not info.get("Restarting"):
            return PollResult(running=True)
        return PollResult(
            running=False,
            exit_code=info.get("ExitCode"),
            oom_killed=bool(info.get("OOMKilled")),
            detail=info.get("Error") or info.get("Status"),
        )

    def _stop(self, state: dict[str, Any], grace: float) -> None:
        container_id = state.get("container_id")
        if not container_id:
            return
        with contextlib.suppress(NotFound):
            container = self.client.containers.get(container_id)
            if container.status == "paused":  # a frozen container cannot take its SIGTERM: thaw it first
                gone_or_done(container.unpause, tolerate=(404, 409))
            gone_or_done(lambda: container.stop(timeout=max(1, int(grace))), tolerate=(304, 404, 409))

    # Docker's cgroup freezer: the same processes, memory kept, no CPU; unpause takes ~40 ms here.
    can_pause = True

    async def pause(self, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self._freeze, state, True)

    async def unpause(self, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self._freeze, state, False)

    def _freeze(self, state: dict[str, Any], frozen: bool) -> None:
        try:
            container = self.client.containers.get(state.get("container_id") or "")
            (container.pause if frozen else container.unpause)()
        except NotFound:
            raise RuntimeOperationError("the container is gone") from None
        except APIError as exc:
            container.reload()
            if exc.status_code != 409 or container.status != ("paused" if frozen else "running"):
                verb = "pause" if frozen else "unpause"
                raise RuntimeOperationError(f"docker {verb} failed: {exc.explanation}") from None

    def _remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        self._stop(state, 2)
        if state.get("container_id"):
            self._remove_container(state["container_id"])
        self._remove_container(f"paradise-{client_id}-{service}")
        with contextlib.suppress(NotFound):
            self.client.volumes.get(volume_name(client_id, service)).remove(force=True)

        def still_used() -> bool:
            return bool(self.client.containers.list(all=True, filters={"label": self.selector(client_id)}))

        self.remove_network_if_unused(client_id, still_used, lambda removed: removed())

    def _managed_objects(self) -> Iterable[tuple[str, dict[str, str], dict[str, Any]]]:
        for container in self.client.containers.list(all=True, filters={"label": self.selector()}):
            if SWARM_TASK_LABEL in container.labels:
                continue  # a Swarm task: the swarm runtime's, never a container of ours
            yield container.name, container.labels, {"container_id": container.id, "name": container.name}

    def _logs(self, state: dict[str, Any], lines: int) -> list[str]:
        with contextlib.suppress(NotFound, APIError, KeyError):
            raw = self.client.containers.get(state["container_id"]).logs(tail=lines)
            return raw.decode("utf-8", "replace").splitlines()
        return []

    # ---- helpers -----------------------------------------------------------------------------------

    def _ensure_network(self, client_id: str) -> str:
        if self._existing_network(client_id) is None:
            self.client.networks.create(
                network_name(client_id),
                driver="bridge",
                options=self.network_options(),
                labels={**self.owned_labels(client_id), EGRESS_LABEL: self.egress},
            )
        return network_name(client_id)

    def _ensure_volume(self, client_id: str, service: str) -> str:
        name = volume_name(client_id, service)
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, labels=self.owned_labels(client_id, service))
        return name

    def _remove_container(self, name_or_id: str) -> None:
        with contextlib.suppress(NotFound):
            container = self.client.containers.get(name_or_id)
            gone_or_done(lambda: container.remove(force=True))


def docker_available(images: list[str]) -> tuple[bool, str]:
    """(usable, reason): an engine answers and every image exists locally."""
    probe = probe_engine(images)
    if not probe.answers:
        return False, probe.detail
    if probe.missing_images:
        return False, f"images not built: {', '.join(probe.missing_images)} (run: devops-paradise images build)"
    return True, "Docker engine answers and the images exist"
