"""DockerRuntime: one container per (client, service), through the Docker SDK.

Labels are the source of truth: every container, network and volume made here carries
``devops-paradise.managed=true`` plus client, service and port labels, and ``discover()`` reads only those.
Each client gets its own network, so one client's containers cannot reach another's. The container port
is published on 127.0.0.1 only. The Docker SDK is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from bridge.runtime.base import Discovered, InstanceSpec, PollResult, PortTaken, RuntimeError_, ThreadedRuntime

log = logging.getLogger(__name__)
LABEL = "devops-paradise"
MANAGED = {f"{LABEL}.managed": "true"}
INSTANCE_UID = 10001  # the ``paradise`` user of our images
PIDS_LIMIT = 512
_PORT_ERRORS = ("port is already allocated", "address already in use", "bind for")


def network_name(client_id: str) -> str:
    return f"paradise-{client_id}"


def volume_name(client_id: str, service: str) -> str:
    return f"paradise-{client_id}-{service}-state"


def labels_for(client_id: str, service: str | None = None, port: int | None = None) -> dict[str, str]:
    labels = {**MANAGED, f"{LABEL}.client": client_id}
    if service is not None:
        labels[f"{LABEL}.service"] = service
    if port is not None:
        labels[f"{LABEL}.port"] = str(port)
    return labels


def workspace_user(workspace: os.PathLike[str]) -> str:
    """Run as the workspace's owner, so files the tools write belong to the user; never as root."""
    try:
        stat = os.stat(workspace)
    except OSError:
        return f"{INSTANCE_UID}:{INSTANCE_UID}"
    if stat.st_uid == 0:
        return f"{INSTANCE_UID}:{INSTANCE_UID}"
    return f"{stat.st_uid}:{stat.st_gid}"


class DockerRuntime(ThreadedRuntime):
    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None, *, installation: str | None = None) -> None:
        self.client = client or docker.from_env()
        # Which installation (database) the objects belong to: other bridges' containers on the same
        # engine are neither adopted nor removed as orphans.
        self.installation = installation
        self._own = {f"{LABEL}.installation": installation} if installation else {}
        # Docker allows two networks of one name; per-client locks keep concurrent starts from making two.
        self._client_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)

    # ---- blocking implementation -------------------------------------------------------------------

    def _start(self, spec: InstanceSpec) -> dict[str, Any]:
        if not spec.image:
            raise RuntimeError_(f"service {spec.service!r} has no image for the docker runtime")
        with self._client_locks[spec.client_id]:
            network = self._ensure_network(spec.client_id)
            volume = self._ensure_volume(spec.client_id, spec.service)
        self._remove_container(spec.name)  # a stale container of the same name (e.g. exited) is replaced
        env = {
            **spec.env,
            "PARADISE_CLIENT": spec.client_id,
            "PARADISE_SERVICE": spec.service,
            "PARADISE_WORKSPACE": "/workspace",
            # The MCP SDK checks the Host header; the bridge sends 127.0.0.1:<host port>.
            "PARADISE_PUBLIC_PORT": str(spec.port),
        }
        try:
            container = self.client.containers.run(
                spec.image,
                name=spec.name,
                detach=True,
                labels={**labels_for(spec.client_id, spec.service, spec.port), **self._own},
                ports={f"{spec.container_port}/tcp": ("127.0.0.1", spec.port)},
                volumes={
                    str(spec.workspace): {"bind": "/workspace", "mode": "rw"},
                    volume: {"bind": "/state", "mode": "rw"},
                },
                environment=env,
                network=network,
                user=workspace_user(spec.workspace),
                mem_limit=spec.memory_bytes,
                nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
                pids_limit=PIDS_LIMIT,
                security_opt=["no-new-privileges:true"],
                cap_drop=["ALL"],
                init=True,  # reap the language servers' children
            )
        except ImageNotFound:
            raise RuntimeError_(f"image {spec.image} is not built; run: devops-paradise images build") from None
        except APIError as exc:
            self._remove_container(spec.name)
            text = str(exc).lower()
            if any(marker in text for marker in _PORT_ERRORS):
                raise PortTaken(f"host port 127.0.0.1:{spec.port} is taken: {exc.explanation}") from None
            raise RuntimeError_(f"docker could not start {spec.name}: {exc.explanation or exc}") from None
        log.info("started container %s (%s) on 127.0.0.1:%d", spec.name, container.short_id, spec.port)
        return {"container_id": container.id, "name": spec.name}

    def _poll(self, state: dict[str, Any]) -> PollResult:
        container_id = state.get("container_id")
        if not container_id:
            return PollResult(running=False, detail="never started")
        try:
            container = self.client.containers.get(container_id)
        except NotFound:
            return PollResult(running=False, detail="container is gone")
        info = container.attrs.get("State", {})
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
            try:
                self.client.containers.get(container_id).stop(timeout=max(1, int(grace)))
            except APIError as exc:
                if exc.status_code not in (304, 404, 409):
                    raise

    def _remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        self._stop(state, 2)
        if state.get("container_id"):
            self._remove_container(state["container_id"])
        self._remove_container(f"paradise-{client_id}-{service}")
        with contextlib.suppress(NotFound):
            self.client.volumes.get(volume_name(client_id, service)).remove(force=True)
        with self._client_locks[client_id]:
            remaining = self.client.containers.list(
                all=True, filters={"label": [f"{LABEL}.managed=true", f"{LABEL}.client={client_id}"]}
            )
            if not remaining:
                for network in self.client.networks.list(names=[network_name(client_id)]):
                    if network.name != network_name(client_id):
                        continue
                    with contextlib.suppress(NotFound, APIError):
                        network.remove()

    def _discover(self) -> list[Discovered]:
        found = []
        wanted = [f"{LABEL}.managed=true", *(f"{k}={v}" for k, v in self._own.items())]
        for container in self.client.containers.list(all=True, filters={"label": wanted}):
            labels = container.labels
            if "com.docker.swarm.service.id" in labels:
                continue  # a Swarm task: the swarm runtime's, never a container of ours
            try:
                found.append(
                    Discovered(
                        client_id=labels[f"{LABEL}.client"],
                        service=labels[f"{LABEL}.service"],
                        port=int(labels[f"{LABEL}.port"]),
                        state={"container_id": container.id, "name": container.name},
                    )
                )
            except (KeyError, ValueError):
                log.warning("container %s has incomplete devops-paradise labels; ignored", container.name)
        return found

    def _logs(self, state: dict[str, Any], lines: int) -> list[str]:
        with contextlib.suppress(NotFound, APIError):
            raw = self.client.containers.get(state["container_id"]).logs(tail=lines)
            return raw.decode("utf-8", "replace").splitlines()
        return []

    # ---- helpers -----------------------------------------------------------------------------------

    def _ensure_network(self, client_id: str) -> str:
        name = network_name(client_id)
        if not [n for n in self.client.networks.list(names=[name]) if n.name == name]:
            self.client.networks.create(name, driver="bridge", labels={**labels_for(client_id), **self._own})
        return name

    def _ensure_volume(self, client_id: str, service: str) -> str:
        name = volume_name(client_id, service)
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, labels={**labels_for(client_id, service), **self._own})
        return name

    def _remove_container(self, name_or_id: str) -> None:
        with contextlib.suppress(NotFound):
            try:
                self.client.containers.get(name_or_id).remove(force=True)
            except APIError as exc:
                if exc.status_code not in (404, 409):
                    raise


def docker_available(images: list[str]) -> tuple[bool, str]:
    """(usable, reason): an engine answers and every image exists locally."""
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except DockerException as exc:
        return False, f"no Docker engine answers ({exc.__class__.__name__})"
    try:
        missing = [image for image in images if not _has_image(client, image)]
    finally:
        client.close()
    if missing:
        return False, f"images not built: {', '.join(missing)} (run: devops-paradise images build)"
    return True, "Docker engine answers and the images exist"


def _has_image(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    return True
