"""SwarmRuntime: one Swarm service (one replica) per (client, service), through the Docker SDK services API.

Same names, labels, environment and security options as the Docker runtime (gaps: docs/swarm.md). Services,
their container specs, state volumes and the per-client overlay networks carry the ``devops-paradise.*``
labels and ``discover()`` reads only those, so a bridge on any manager node adopts what it finds.
Healing is the bridge's: restart policy ``none``, so Swarm never restarts a task itself (not even one its MCP
health check killed) and the bridge's monitor restarts it once, with back-off and a crash-loop budget.
Scale to zero is ``replicas=0``. Ports are published in ``ingress`` mode (the routing mesh; needs IPVS) or,
without IPVS or when asked, in ``host`` mode with tasks kept on the bridge's own node.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils import version_gte

from bridge.runtime.base import (
    Discovered,
    InstanceSpec,
    PollResult,
    PortTaken,
    RuntimeError_,
    ThreadedRuntime,
    port_is_free,
)
from bridge.runtime.docker import LABEL, labels_for, network_name, volume_name
from bridge.runtime.swarm_spec import PublishMode, build_service, health_check, routing_mesh_available

log = logging.getLogger(__name__)
WORKSPACE_NODE_LABEL = f"{LABEL}.workspaces"
SERVICE_LABEL = "com.docker.swarm.service.id"
# Task states in which the task is, or is about to be, running (Swarm's own order, up to "running").
LIVE = {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}
_PORT_ERRORS = ("already in use", "port is already allocated", "address already in use", "bind for")


def _stamp(value: str | None) -> tuple[str, int]:
    """A Swarm RFC 3339 time (nanoseconds, trailing zeros trimmed) as something that sorts correctly."""
    whole, _, fraction = (value or "").rstrip("Z").partition(".")
    return whole, int((fraction + "000000000")[:9] or 0)


class SwarmRuntime(ThreadedRuntime):
    name = "swarm"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        publish_mode: PublishMode | None = None,
        workspace_constraints: list[str] | None = None,
        stop_grace: float = 5.0,
        settle_timeout: float = 30.0,
        installation: str | None = None,
    ) -> None:
        """publish_mode None: ingress where this kernel has IPVS, else host. workspace_constraints None:
        nodes labelled devops-paradise.workspaces=true if any, else the bridge's own node. installation: as
        for the Docker runtime, another installation's services are neither adopted nor removed."""
        self.client = client or docker.from_env()
        self.publish_mode: PublishMode = publish_mode or ("ingress" if routing_mesh_available() else "host")
        self.workspace_constraints = workspace_constraints
        self.stop_grace = stop_grace
        self.settle_timeout = settle_timeout
        self.installation = installation
        self._own = {f"{LABEL}.installation": installation} if installation else {}
        self._client_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._node_id: str | None = None
        log.info("swarm runtime: ports published in %s mode", self.publish_mode)

    # ---- blocking implementation -------------------------------------------------------------------

    def service_spec(self, spec: InstanceSpec, *, force_update: int = 0) -> dict[str, Any]:
        if not spec.image:
            raise RuntimeError_(f"service {spec.service!r} has no image for the swarm runtime")
        image, ours = self._image(spec.image)
        with self._client_locks[spec.client_id]:
            network = self._ensure_network(spec.client_id)
        return build_service(
            spec,
            image=image,
            network=network,
            constraints=self._constraints(),
            publish_mode=self.publish_mode,
            healthcheck=health_check(spec.container_port) if ours else None,
            stop_grace=self.stop_grace,
            no_new_privileges=version_gte(self.client.api.api_version, "1.46"),
            force_update=force_update,
            installation=self.installation,
        )

    def _start(self, spec: InstanceSpec) -> dict[str, Any]:
        existing = self._find(spec.name)
        if existing and not self._mine(existing, spec.client_id, spec.service):
            raise RuntimeError_(f"a swarm service named {spec.name} exists and is not this installation's")
        if existing and self._live_tasks(existing["ID"]):
            published = [p.get("PublishedPort") for p in existing.get("Endpoint", {}).get("Ports") or []]
            if spec.port in published:  # idempotent: it runs (or is about to) on this port
                return {"service_id": existing["ID"], "name": spec.name}
            self._stop({"service_id": existing["ID"]})  # it moves to another port: stop, then update
            existing = self._find(spec.name)
        if existing:  # a stop under way (say, an idle stop a request overtook) must end first: port, volume
            self._settle(existing["ID"])
        if self.publish_mode == "host" and not port_is_free(spec.port):
            raise PortTaken(f"host port {spec.port} is taken on this node")
        try:
            if existing is None:
                service_id = self.client.api.create_service(**self.service_spec(spec))["ID"]
            else:  # scaled to zero or its task is dead: the full spec, one replica, a fresh task
                force = int(existing["Spec"]["TaskTemplate"].get("ForceUpdate", 0)) + 1
                kwargs = self.service_spec(spec, force_update=force)
                self.client.api.update_service(existing["ID"], existing["Version"]["Index"], **kwargs)
                service_id = existing["ID"]
        except APIError as exc:
            text = str(exc).lower()
            if any(marker in text for marker in _PORT_ERRORS):
                raise PortTaken(f"port {spec.port} is taken in the swarm: {exc.explanation}") from None
            raise RuntimeError_(f"swarm could not start {spec.name}: {exc.explanation or exc}") from None
        _wait(lambda: bool(self._live_tasks(service_id)), 10)  # launched = Swarm has made its task
        log.info("swarm service %s (%s) on port %d (%s)", spec.name, service_id[:12], spec.port, self.publish_mode)
        return {"service_id": service_id, "name": spec.name}

    def _poll(self, state: dict[str, Any]) -> PollResult:
        service_id = state.get("service_id")
        if not service_id:
            return PollResult(running=False, detail="never started")
        try:
            service = self.client.api.inspect_service(service_id)
        except NotFound:
            return PollResult(running=False, detail="service is gone")
        replicas = service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
        tasks = sorted(self.client.api.tasks(filters={"service": service_id}), key=lambda t: _stamp(t.get("CreatedAt")))
        live = [t for t in tasks if t.get("DesiredState") == "running" and t["Status"]["State"] in LIVE]
        if live:
            status = live[-1]["Status"]
            return PollResult(running=True, detail=f"task {status['State']}: {status.get('Err') or ''}".strip(": "))
        if not replicas:
            return PollResult(running=False, detail="scaled to zero")
        if not tasks:  # only between an update to one replica and Swarm creating its task
            return PollResult(running=True, detail="swarm is creating the task")
        status = tasks[-1]["Status"]
        container = status.get("ContainerStatus") or {}
        return PollResult(
            running=False,
            exit_code=container.get("ExitCode"),
            oom_killed=self._oom_killed(container.get("ContainerID")),
            detail=f"task {status['State']}: {status.get('Err') or status.get('Message') or ''}",
        )

    def _stop(self, state: dict[str, Any], grace: float = 0) -> None:
        # Swarm stops a task with the grace period of its spec (stop_grace), not a per-call one.
        service_id = state.get("service_id")
        if not service_id:
            return
        ending = {t["ID"] for t in self._live_tasks(service_id, desired_only=False)}
        for _ in range(3):  # a concurrent update makes the version stale: read it again
            try:
                service = self.client.services.get(service_id)
                if service.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas") != 0:
                    service.scale(0)
                break
            except NotFound:
                return
            except APIError as exc:
                if "update out of sequence" not in str(exc):
                    raise
        self._settle(service_id, ending)  # its task has ended, not a newer one: port and volume are free

    def _remove(self, client_id: str, service: str, state: dict[str, Any]) -> None:
        ids = {state["service_id"]} if state.get("service_id") else set()
        found = self._find(f"paradise-{client_id}-{service}")
        if found and self._mine(found, client_id, service):
            ids.add(found["ID"])
        for service_id in ids:
            with contextlib.suppress(NotFound):
                self.client.api.remove_service(service_id)
        deadline = time.monotonic() + self.stop_grace + self.settle_timeout
        for service_id in ids:  # containers go asynchronously; their volume is in use until then
            _wait(lambda sid=service_id: not self._containers(sid), deadline - time.monotonic())
        with contextlib.suppress(NotFound):  # this node's copy only: Swarm cannot remove it on other nodes
            volume = self.client.volumes.get(volume_name(client_id, service))
            _wait(lambda: _try(lambda: volume.remove(force=True)), deadline - time.monotonic())
        with self._client_locks[client_id]:
            if self.client.api.services(filters={"label": [*self._selector(), f"{LABEL}.client={client_id}"]}):
                return
            for network in self.client.networks.list(names=[network_name(client_id)]):
                if network.name == network_name(client_id):  # attachments linger briefly after the tasks
                    _wait(lambda n=network: _try(n.remove), deadline - time.monotonic())

    def _discover(self) -> list[Discovered]:
        found = []
        for service in self.client.api.services(filters={"label": self._selector()}):
            labels = service["Spec"].get("Labels") or {}
            try:
                found.append(
                    Discovered(
                        client_id=labels[f"{LABEL}.client"],
                        service=labels[f"{LABEL}.service"],
                        port=int(labels[f"{LABEL}.port"]),
                        state={"service_id": service["ID"], "name": service["Spec"]["Name"]},
                    )
                )
            except (KeyError, ValueError):
                log.warning("swarm service %s has incomplete devops-paradise labels; ignored", service["ID"])
        return found

    def _logs(self, state: dict[str, Any], lines: int) -> list[str]:
        with contextlib.suppress(NotFound, APIError, KeyError):
            chunks = self.client.services.get(state["service_id"]).logs(stdout=True, stderr=True, tail=lines)
            return b"".join(chunks).decode("utf-8", "replace").splitlines()[-lines:]
        return []

    # ---- helpers -----------------------------------------------------------------------------------

    def _selector(self) -> list[str]:
        return [f"{LABEL}.managed=true", *(f"{key}={value}" for key, value in self._own.items())]

    def _mine(self, service: dict[str, Any], client_id: str, name: str) -> bool:
        """Labelled for this client and service, and not another installation's (unlabelled ones predate it)."""
        labels = service["Spec"].get("Labels") or {}
        other = labels.get(f"{LABEL}.installation") not in (None, self.installation)
        return labels.get(f"{LABEL}.client") == client_id and labels.get(f"{LABEL}.service") == name and not other

    def _find(self, name: str) -> dict[str, Any] | None:
        matches = [s for s in self.client.api.services(filters={"name": name}) if s["Spec"]["Name"] == name]
        return matches[0] if matches else None

    def _containers(self, service_id: str) -> list[Any]:
        return self.client.containers.list(all=True, filters={"label": f"{SERVICE_LABEL}={service_id}"})

    def _live_tasks(self, service_id: str, *, desired_only: bool = True) -> list[dict[str, Any]]:
        """Tasks that run or are about to; with desired_only False also those still shutting down."""
        return [
            t
            for t in self.client.api.tasks(filters={"service": service_id})
            if t["Status"]["State"] in LIVE and (t.get("DesiredState") == "running" or not desired_only)
        ]

    def _settle(self, service_id: str, ending: set[str] | None = None) -> None:
        """Wait (bounded) until these tasks, or all of the service's, no longer run nor are about to."""

        def left() -> set[str]:
            live = {t["ID"] for t in self._live_tasks(service_id, desired_only=False)}
            return live if ending is None else live & ending

        _wait(lambda: not left(), self.stop_grace + self.settle_timeout)

    def _image(self, image: str) -> tuple[str, bool]:
        """(reference for the spec, is it one of our images). A local-only build (no registry digest) is
        referenced by its id, so no node tries a registry for it; anything else by name, for the nodes to pull."""
        try:
            attrs = self.client.images.get(image).attrs
        except ImageNotFound:
            return image, False
        ours = f"{LABEL}.image" in ((attrs.get("Config") or {}).get("Labels") or {})
        return (image if attrs.get("RepoDigests") else attrs["Id"]), ours

    def _constraints(self) -> list[str]:
        """Where a task may run: the bridge's node in host mode (it is reached on 127.0.0.1); else nodes that
        have the workspaces (explicit, or labelled devops-paradise.workspaces=true, or the bridge's node)."""
        own = f"node.id=={self._own_node()}"
        if self.publish_mode == "host":
            return [own]
        if self.workspace_constraints is not None:
            return list(self.workspace_constraints)
        labelled = [
            n for n in self.client.api.nodes() if (n["Spec"].get("Labels") or {}).get(WORKSPACE_NODE_LABEL) == "true"
        ]
        return [f"node.labels.{WORKSPACE_NODE_LABEL}==true"] if labelled else [own]

    def _own_node(self) -> str:
        if self._node_id is None:
            self._node_id = self.client.info()["Swarm"]["NodeID"]
        return self._node_id

    def _ensure_network(self, client_id: str) -> str:
        name = network_name(client_id)
        existing = [n for n in self.client.networks.list(names=[name]) if n.name == name]
        if existing:
            return existing[0].id
        return self.client.networks.create(
            name, driver="overlay", attachable=True, scope="swarm", labels={**labels_for(client_id), **self._own}
        ).id

    def _oom_killed(self, container_id: str | None) -> bool:
        with contextlib.suppress(NotFound, APIError, TypeError):
            return bool(self.client.containers.get(container_id).attrs["State"].get("OOMKilled"))
        return False  # the container ran on another node (or is gone): Swarm does not report OOM kills


def _try(action: Any) -> bool:
    """Run a removal; False when the engine refuses (still in use), True when done or already gone."""
    try:
        action()
    except NotFound:
        return True
    except APIError:
        return False
    return True


def _wait(done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + max(timeout, 0)
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def swarm_available() -> tuple[bool, str]:
    """(usable, reason): the local engine answers and is a Swarm manager."""
    try:
        client = docker.from_env(timeout=5)
        try:
            swarm = client.info().get("Swarm") or {}
        finally:
            client.close()
    except DockerException as exc:
        return False, f"no Docker engine answers ({exc.__class__.__name__})"
    if swarm.get("LocalNodeState") != "active":
        return False, "this engine is not in a swarm (run: docker swarm init)"
    if not swarm.get("ControlAvailable"):
        return False, "this engine is a swarm worker; run the bridge on a manager node"
    return True, f"swarm manager {swarm.get('NodeID')} ({swarm.get('Nodes')} nodes, {swarm.get('Managers')} managers)"
