"""What the Docker and Swarm runtimes share: one engine, one way of naming, labelling and finding instances.

Labels are the source of truth on an engine: every container, service, network and volume made for an
instance carries ``devops-paradise.managed=true`` plus client, service and port labels (and the
installation's id, so two bridges on one engine never adopt or remove each other's objects), and
``discover()`` reads only those. Both runtimes give an instance the same environment block, the same
resource defaults and the same per-client network policy (``egress``); the subclass says how objects are
made (containers or services).
"""

from __future__ import annotations

import abc
import collections
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from bridge.runtime.base import (
    Discovered,
    InstanceSpec,
    PollResult,
    PortTaken,
    RuntimeOperationError,
    ThreadedRuntime,
    instance_name,
)
from bridge.runtime.egress import Egress, proxy_environment

log = logging.getLogger(__name__)
LABEL = "devops-paradise"
MANAGED_LABEL = f"{LABEL}.managed"
INSTALLATION_LABEL = f"{LABEL}.installation"
EGRESS_LABEL = f"{LABEL}.egress"
INSTANCE_UID = 10001  # the ``paradise`` user of our images
PIDS_LIMIT = 512
WORKSPACE_MOUNT = "/workspace"
STATE_MOUNT = "/state"
TMP_MOUNT = "/tmp"  # noqa: S108 - inside the instance, a private tmpfs
DEFAULT_HOME = "/home/paradise"
TMPFS_OPTIONS = "rw,nosuid,nodev,mode=1777,size=512m"
# How engines word "that host port is taken" (docker run, swarm create/update).
PORT_ERRORS = ("port is already allocated", "address already in use", "bind for", "already in use")


def network_name(client_id: str) -> str:
    return f"paradise-{client_id}"


def volume_name(client_id: str, service: str) -> str:
    return f"paradise-{client_id}-{service}-state"


def labels_for(client_id: str, service: str | None = None, port: int | None = None) -> dict[str, str]:
    labels = {MANAGED_LABEL: "true", f"{LABEL}.client": client_id}
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


def instance_env(spec: InstanceSpec, egress: Egress = "none") -> dict[str, str]:
    """The environment of a containerised instance: its catalog env and its own PARADISE_* block, nothing
    of the bridge (the Docker daemon never sees the bridge's environment)."""
    env = {
        **spec.env,
        "PARADISE_CLIENT": spec.client_id,
        "PARADISE_SERVICE": spec.service,
        "PARADISE_WORKSPACE": WORKSPACE_MOUNT,
        # The MCP SDK checks the Host header; the bridge sends 127.0.0.1:<host port>.
        "PARADISE_PUBLIC_PORT": str(spec.port),
    }
    if egress == "registries":  # the host's proxy: the only way out of a no-NAT network
        env |= proxy_environment()
    return env


def is_port_error(exc: APIError) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in PORT_ERRORS)


def start_error(exc: APIError, spec: InstanceSpec, engine: str) -> RuntimeOperationError:
    """The engine's refusal to start an instance, as PortTaken (the bridge moves the port) or a plain error."""
    if is_port_error(exc):
        return PortTaken(f"host port {spec.port} is taken ({engine}): {exc.explanation or exc}")
    return RuntimeOperationError(f"{engine} could not start {spec.name}: {exc.explanation or exc}")


def gone_or_done(action: Callable[[], object], *, tolerate: tuple[int, ...] = (404, 409)) -> bool:
    """Run a removal or stop; already gone (404) or already stopping/removing (409) count as done.
    Returns False only for a tolerated refusal, so a caller that waits can try again."""
    try:
        action()
    except NotFound:
        return True
    except APIError as exc:
        if exc.status_code in tolerate:
            return exc.status_code == 404
        raise
    return True


@dataclass(frozen=True)
class EngineProbe:
    """What one look at the local engine found (for the runtime selection table)."""

    answers: bool
    detail: str
    missing_images: list[str] = field(default_factory=list)
    swarm_usable: bool = False
    swarm_detail: str = "no Docker engine answers"


def probe_engine(images: Iterable[str] = (), *, timeout: float = 5) -> EngineProbe:
    """Ask the local engine (DOCKER_HOST) once: does it answer, which images are missing, is it a Swarm manager."""
    try:
        client = docker.from_env(timeout=timeout)
        info = client.info()
    except DockerException as exc:
        reason = f"no Docker engine answers ({exc.__class__.__name__})"
        return EngineProbe(answers=False, detail=reason, swarm_detail=reason)
    try:
        missing = [image for image in images if not has_image(client, image)]
    finally:
        client.close()
    swarm_usable, swarm_detail = _swarm_verdict(info.get("Swarm") or {})
    version = info.get("ServerVersion") or "?"
    return EngineProbe(True, f"engine {version} answers", missing, swarm_usable, swarm_detail)


def _swarm_verdict(swarm: dict[str, Any]) -> tuple[bool, str]:
    if swarm.get("LocalNodeState") != "active":
        return False, "this engine is not in a swarm (run: docker swarm init)"
    if not swarm.get("ControlAvailable"):
        return False, "this engine is a swarm worker; run the bridge on a manager node"
    nodes, managers = swarm.get("Nodes"), swarm.get("Managers")
    return True, f"swarm manager {swarm.get('NodeID')} ({nodes} nodes, {managers} managers)"


def image_home(attrs: dict[str, Any] | None) -> str:
    """An image's $HOME (from its inspect attrs), which gets a tmpfs under the read-only root."""
    env = ((attrs or {}).get("Config") or {}).get("Env") or []
    homes = [item.split("=", 1)[1] for item in env if item.startswith("HOME=")]
    home = homes[-1] if homes else DEFAULT_HOME
    return home if home not in ("", "/") else DEFAULT_HOME


def has_image(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    return True


class EngineRuntime(ThreadedRuntime):
    """A runtime on a Docker engine. Subclasses make the objects; this class names, labels and finds them."""

    object_kind: str  # what one instance is on the engine, "container" or "service"; its id is state[f"{kind}_id"]

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        installation: str | None = None,
        default_cpus: float | None = None,
        egress: Egress = "none",
    ) -> None:
        self.client = client or docker.from_env()
        self.installation = installation
        self.default_cpus = default_cpus or None
        self.egress: Egress = egress
        self._own = {INSTALLATION_LABEL: installation} if installation else {}
        # Engines allow two networks of one name; per-client locks keep concurrent starts from making two.
        self._client_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)

    # ---- names and labels ---------------------------------------------------------------------------

    def owned_labels(self, client_id: str, service: str | None = None, port: int | None = None) -> dict[str, str]:
        return {**labels_for(client_id, service, port), **self._own}

    def selector(self, client_id: str | None = None) -> list[str]:
        """Label filters for this installation's objects (of one client, when given)."""
        wanted = [f"{MANAGED_LABEL}=true", *(f"{key}={value}" for key, value in self._own.items())]
        return wanted + ([f"{LABEL}.client={client_id}"] if client_id else [])

    def is_mine(self, labels: dict[str, str] | None, client_id: str, service: str) -> bool:
        """Labelled for this client and service, and not another installation's (unlabelled ones predate it)."""
        labels = labels or {}
        other = labels.get(INSTALLATION_LABEL) not in (None, self.installation)
        return labels.get(f"{LABEL}.client") == client_id and labels.get(f"{LABEL}.service") == service and not other

    def cpus_for(self, spec: InstanceSpec) -> float | None:
        """The catalog's limit, else the bridge's default (PARADISE_INSTANCE_CPUS; 0 = none)."""
        return spec.cpus or self.default_cpus

    def env_for(self, spec: InstanceSpec) -> dict[str, str]:
        return instance_env(spec, self.egress)

    def peer_address(self, client_id: str, service: str, host_port: int, container_port: int) -> tuple[str, int]:
        # A container's 127.0.0.1 is its own: siblings meet on the client's network, where the engine's DNS
        # answers the instance's name (a container's, or a Swarm service's virtual IP) on its container port.
        return instance_name(client_id, service), container_port

    # ---- polling ------------------------------------------------------------------------------------

    def _poll(self, state: dict[str, Any]) -> PollResult:
        object_id = state.get(f"{self.object_kind}_id")
        if not object_id:
            return PollResult(running=False, detail="never started")
        try:
            return self._poll_object(object_id)
        except NotFound:
            return PollResult(running=False, detail=f"{self.object_kind} is gone")

    @abc.abstractmethod
    def _poll_object(self, object_id: str, /) -> PollResult:
        """How the instance's engine object is doing; NotFound from the engine means it is gone."""

    # ---- discovery ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def _managed_objects(self) -> Iterable[tuple[str, dict[str, str], dict[str, Any]]]:
        """(display name, labels, backend state) of every object this installation labelled as an instance."""

    def _discover(self) -> list[Discovered]:
        found = []
        for name, labels, state in self._managed_objects():
            try:
                client_id, service = labels[f"{LABEL}.client"], labels[f"{LABEL}.service"]
                found.append(Discovered(client_id, service, int(labels[f"{LABEL}.port"]), state))
            except (KeyError, ValueError):
                log.warning("%s %s has incomplete devops-paradise labels; ignored", self.name, name)
        return found

    # ---- per-client network -------------------------------------------------------------------------

    def network_options(self) -> dict[str, Any]:
        """Driver options of a client's network. ``none`` and ``registries`` switch off NAT: the engine can
        still publish the instance port on 127.0.0.1 (an ``internal`` network cannot), but nothing from the
        network gets an answer from the LAN or the internet. ``all`` is the engine's normal NAT'd bridge."""
        if self.egress == "all":
            return {}
        return {"com.docker.network.bridge.enable_ip_masquerade": "false"}

    def _existing_network(self, client_id: str) -> Any | None:
        name = network_name(client_id)
        matches = [n for n in self.client.networks.list(names=[name]) if n.name == name]
        if not matches:
            return None
        network = matches[0]
        made_for = (network.attrs.get("Labels") or {}).get(EGRESS_LABEL, "all")
        if made_for != self.egress and _removed(network.remove):  # an unused network of another policy
            log.info("network %s was made for egress %s; re-made for %s", name, made_for, self.egress)
            return None
        return network

    def remove_network_if_unused(
        self, client_id: str, still_used: Callable[[], bool], wait: Callable[[Callable[[], bool]], bool]
    ) -> None:
        """Remove the client's network once nothing of the client is left (attachments linger briefly)."""
        with self._client_locks[client_id]:
            if still_used():
                return
            for network in self.client.networks.list(names=[network_name(client_id)]):
                if network.name == network_name(client_id):
                    wait(lambda n=network: _removed(n.remove))


def _removed(action: Callable[[], object]) -> bool:
    """True once removed or already gone; False while the engine refuses (still in use)."""
    with contextlib.suppress(APIError):
        return gone_or_done(action)
    return False
