"""Runtimes: where instances run. One module per backend behind ``base.Runtime``."""

from __future__ import annotations

import logging

from bridge.catalog import ServiceSpec
from bridge.runtime.base import Runtime
from bridge.runtime.process import ProcessRuntime
from bridge.settings import BridgeSettings, SettingsError

log = logging.getLogger(__name__)


def select_runtime(
    settings: BridgeSettings, catalog: dict[str, ServiceSpec], installation: str | None = None
) -> Runtime:
    """PARADISE_RUNTIME: ``docker``, ``process``, ``swarm``, or ``auto`` = Docker when an engine answers and the
    images exist, else local processes; ``swarm`` = services on the Swarm this engine manages. Blocking (it
    asks the engine): call it in a worker thread."""
    if settings.runtime == "swarm":
        from bridge.runtime.swarm import SwarmRuntime, swarm_available

        usable, reason = swarm_available()
        if not usable:
            raise SettingsError(f"PARADISE_RUNTIME=swarm but {reason}")
        log.info("runtime: swarm (%s)", reason)
        return SwarmRuntime(stop_grace=settings.stop_grace, installation=installation)
    if settings.runtime in ("docker", "auto"):
        from bridge.runtime.docker import DockerRuntime, docker_available

        images = sorted({spec.image for spec in catalog.values() if spec.image})
        usable, reason = docker_available(images)
        if usable:
            log.info("runtime: docker (PARADISE_RUNTIME=%s; %s)", settings.runtime, reason)
            return DockerRuntime(installation=installation)
        if settings.runtime == "docker":
            raise SettingsError(f"PARADISE_RUNTIME=docker but {reason}")
        log.info("runtime: process (PARADISE_RUNTIME=auto; %s)", reason)
    else:
        log.info("runtime: process (PARADISE_RUNTIME=process)")
    return ProcessRuntime(settings.instances_dir)
