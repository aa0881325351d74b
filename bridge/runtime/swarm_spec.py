"""The Swarm service spec of one instance, and its MCP health check (see swarm.py for the runtime)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Literal

from docker import types as dt

from bridge.runtime.base import InstanceSpec
from bridge.runtime.engine import (
    DEFAULT_HOME,
    INSTALLATION_LABEL,
    PIDS_LIMIT,
    STATE_MOUNT,
    TMP_MOUNT,
    TMPFS_OPTIONS,
    WORKSPACE_MOUNT,
    instance_env,
    labels_for,
    volume_name,
    workspace_user,
)

PublishMode = Literal["ingress", "host"]
SECOND = 1_000_000_000  # Swarm durations are nanoseconds


def health_check(container_port: int, path: str = "/mcp", python: str = "/opt/venv/bin/python") -> dt.Healthcheck:
    """An MCP initialize inside the container (bridge.mcp.healthcheck: our images carry the bridge package)."""
    probe = ["-m", "bridge.mcp.healthcheck", "--port", str(container_port), "--path", path, "--timeout", "4"]
    return dt.Healthcheck(
        test=["CMD", python, *probe],
        interval=10 * SECOND,
        timeout=6 * SECOND,
        retries=3,
        start_period=120 * SECOND,  # Serena's language server may take a while; failures then do not count
    )


def routing_mesh_available() -> bool:
    """Whether this host's kernel has IPVS, which Swarm's ingress routing mesh (and service VIPs) need."""
    if Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists():
        return True
    modules = Path("/lib/modules") / os.uname().release
    for index in ("modules.builtin", "modules.dep"):
        with contextlib.suppress(OSError):
            if "/ip_vs.ko" in (modules / index).read_text():
                return True
    return False


def build_service(
    spec: InstanceSpec,
    *,
    image: str,
    network: str,
    constraints: list[str],
    publish_mode: PublishMode = "ingress",
    healthcheck: dt.Healthcheck | None = None,
    stop_grace: float = 5.0,
    reserve: float = 0.25,
    no_new_privileges: bool = False,
    force_update: int = 0,
    installation: str | None = None,
    cpus: float | None = None,
    env: dict[str, str] | None = None,
    home: str = DEFAULT_HOME,
) -> dict[str, Any]:
    """The keyword arguments of ``APIClient.create_service``/``update_service`` for one instance. ``cpus`` and
    ``env`` default to the catalog's limit and the engine runtimes' environment block (engine.py)."""
    extra = {INSTALLATION_LABEL: installation} if installation else {}  # as the Docker runtime
    labels = {**labels_for(spec.client_id, spec.service, spec.port), **extra}
    own = {**labels_for(spec.client_id, spec.service), **extra}
    cpus = cpus if cpus is not None else spec.cpus
    state = dt.Mount(STATE_MOUNT, volume_name(spec.client_id, spec.service), labels=own)
    # A read-only root as in the Docker runtime: what an instance writes goes to its workspace, /state,
    # $HOME or /tmp (tmpfs, any uid may write: the task runs as the workspace's owner).
    scratch = [_tmpfs(path) for path in (TMP_MOUNT, home)]
    container = dt.ContainerSpec(
        image,
        env=env if env is not None else instance_env(spec),
        user=workspace_user(spec.workspace),
        labels=labels,
        mounts=[dt.Mount(WORKSPACE_MOUNT, str(spec.workspace), type="bind"), state, *scratch],
        healthcheck=healthcheck,
        init=True,
        cap_drop=["ALL"],
        stop_grace_period=int(stop_grace * SECOND),
        read_only=True,
    )
    if no_new_privileges:  # ContainerSpec.Privileges.NoNewPrivileges exists from API 1.46 (Docker 27) on
        container["Privileges"] = {"NoNewPrivileges": True}
    resources = dt.Resources(
        mem_limit=spec.memory_bytes,
        mem_reservation=int(spec.memory_bytes * reserve) if spec.memory_bytes else None,
        cpu_limit=int(cpus * SECOND) if cpus else None,
        cpu_reservation=int(cpus * reserve * SECOND) if cpus else None,
    )
    resources.setdefault("Limits", {})["Pids"] = PIDS_LIMIT  # API 1.41; the SDK has no argument for it
    port = {"Protocol": "tcp", "PublishedPort": spec.port, "TargetPort": spec.container_port}
    return {
        "name": spec.name,
        "labels": labels,
        "mode": dt.ServiceMode("replicated", replicas=1),
        "task_template": dt.TaskTemplate(
            container,
            resources=resources,
            restart_policy=dt.RestartPolicy(condition="none"),  # the bridge's monitor heals (docs/swarm.md)
            placement=dt.Placement(constraints=constraints),
            networks=[network],
            force_update=force_update,
        ),
        # dnsrr needs no IPVS; the routing mesh needs a VIP.
        "endpoint_spec": dt.EndpointSpec(
            mode="vip" if publish_mode == "ingress" else "dnsrr", ports=[{**port, "PublishMode": publish_mode}]
        ),
        "update_config": dt.UpdateConfig(parallelism=1, order="stop-first", failure_action="continue"),
    }


def _tmpfs(target: str) -> dt.Mount:
    size = int(TMPFS_OPTIONS.rsplit("size=", 1)[1].rstrip("m")) * 1024 * 1024
    return dt.Mount(target, None, type="tmpfs", tmpfs_size=size, tmpfs_mode=0o1777)
