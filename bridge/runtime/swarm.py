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

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.utils import version_gte

from bridge.runtime.access import unreadable_workspace, user_of
from bridge.runtime.base import InstanceSpec, PollResult, PortTaken, RuntimeOperationError, port_is_free
from bridge.runtime.engine import (
    EGRESS_LABEL,
    LABEL,
    EngineRuntime,
    image_home,
    network_name,
    probe_engine,
    start_error,
    volume_name,
    workspace_user,
)
from bridge.runtime.swarm_spec import PublishMode, build_service, health_check, routing_mesh_available

log = logging.getLogger(__name__)
WORKSPACE_NODE_LABEL = f"{LABEL}.workspaces"
SERVICE_LABEL = "com.docker.swarm.service.id"
# Task states in which the task is, or is about to be, running (Swarm's own order, up to "running").
LIVE = {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}


def _stamp(value: str | None) -> tuple[str, int]:
    """A Swarm RFC 3339 time (nanoseconds, trailing zeros trimmed) as something that sorts correctly."""
    whole, _, fraction = (value or "").rstrip("Z").partition(".")
    return whole, int((fraction + "000000000")[:9] or 0)


class SwarmRuntime(EngineRuntime):
    name = "swarm"
    object_kind = "service"

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        publish_mode: PublishMode | None = None,
        workspace_constraints: list[str] | None = None,
        stop_grace: float = 5.0,
        settle_timeout: float = 30.0,
        installation: str | None = None,
        default_cpus: float | None = None,
    ) -> None:
        """publish_mode None: ingress where this kernel has IPVS, else host. workspace_constraints None:
        nodes labelled devops-paradise.workspaces=true if any, else the bridge's own node. installation: as
        for the Docker runtime, another installation's services are neither adopted nor removed."""
        # Overlay networks have no NAT switch: a Swarm instance's egress is the engine's (docs/swarm.md).
        super().__init__(client, installation=installation, default_cpus=default_cpus, egress="all")
        self.publish_mode: PublishMode = publish_mode or ("ingress" if routing_mesh_available() else "host")
        self.workspace_constraints = workspace_constraints
        self.stop_grace = stop_grace
        self.settle_timeout = settle_timeout
        self._node_id: str | None = None
        log.info("swarm runtime: ports published in %s mode", self.publish_mode)

    # ---- blocking implementation -------------------------------------------------------------------

    def service_spec(self, spec: InstanceSpec, *, force_update: int = 0) -> dict[str, Any]:
        if not spec.image:
            raise RuntimeOperationError(f"service {spec.service!r} has no image for the swarm runtime")
        image, ours, home = self._image(spec.image)
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
            cpus=self.cpus_for(spec),
            env=self.env_for(spec),
            home=home,
        )

    def _start(self, spec: InstanceSpec) -> dict[str, Any]:
        # Checked here, where the workspace is a path of this host (the bridge's node holds workspaces).
        if refusal := unreadable_workspace(spec.workspace, user_of(workspace_user(spec.workspace)), parents=False):
            raise RuntimeOperationError(refusal)
        existing = self._find(spec.name)
        if existing and not self.is_mine(existing["Spec"].get("Labels"), spec.client_id, spec.service):
            raise RuntimeOperationError(f"a swarm service named {spec.name} exists and is not this installation's")
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
            raise start_error(exc, spec, "swarm") from None
        _wait(lambda: bool(self._live_tasks(service_id)), 10)  # launched = Swarm has made its task
        log.info("swarm service %s (%s) on port %d (%s)", spec.name, service_id[:12], spec.port, self.publish_mode)
        return {"service_id": service_id, "name": spec.name}

    def _poll_object(self, service_id: str, /) -> PollResult:
        service = self.client.api.inspect_service(service_id)
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
        if found and self.is_mine(found["Spec"].get("Labels"), client_id, service):
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

        def still_used() -> bool:
            return bool(self.client.api.services(filters={"label": self.selector(client_id)}))

        self.remove_network_if_unused(client_id, still_used, lambda done: _wait(done, deadline - time.monotonic()))

    def _managed_objects(self) -> Iterable[tuple[str, dict[str, str], dict[str, Any]]]:
        for service in self.client.api.services(filters={"label": self.selector()}):
            name = service["Spec"]["Name"]
            yield name, service["Spec"].get("Labels") or {}, {"service_id": service["ID"], "name": name}

    def _logs(self, state: dict[str, Any], lines: int) -> list[str]:
        with contextlib.suppress(NotFound, APIError, KeyError):
            chunks = self.client.services.get(state["service_id"]).logs(stdout=True, stderr=True, tail=lines)
            return b"".join(chunks).decode("utf-8", "replace").splitlines()[-lines:]
        return []

    # ---- helpers -----------------------------------------------------------------------------------

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

    def _image(self, image: str) -> tuple[str, bool, str]:
        """(reference for the spec, is it one of our images, its $HOME). A local-only build (no registry digest)
        is referenced by its id, so no node tries a registry for it; anything else by name, for the nodes to pull."""
        try:
            attrs = self.client.images.get(image).attrs
        except ImageNotFound:
            return image, False, image_home(None)
        ours = f"{LABEL}.image" in ((attrs.get("Config") or {}).get("Labels") or {})
        return (image if attrs.get("RepoDigests") else attrs["Id"]), ours, image_home(attrs)

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
        existing = self._existing_network(client_id)
        if existing is not None:
            return existing.id
        labels = {**self.owned_labels(client_id), EGRESS_LABEL: self.egress}
        return self.client.networks.create(
            network_name(client_id), driver="overlay", attachable=True, scope="swarm", labels=labels
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
    probe = probe_engine()
    return probe.swarm_usable, probe.swarm_detail
