"""Runtimes: where instances run. One module per backend behind ``base.Runtime``."""

from __future__ import annotations

import logging

from bridge.catalog import ServiceSpec
from bridge.runtime.base import Runtime
from bridge.runtime.process import ProcessRuntime
from bridge.settings import BridgeSettings, SettingsError

log = logging.getLogger(__name__)


def select_runtime(settings: BridgeSettings, catalog: dict[str, ServiceSpec]) -> Runtime:
    """PARADISE_RUNTIME: ``docker``, ``process``, or ``auto`` = Docker when an engine answers and the
    images exist, else local processes. Blocking (it asks the engine): call it in a worker thread."""
    if settings.runtime in ("docker", "auto"):
        from bridge.runtime.docker import DockerRuntime, docker_available

        images = sorted({spec.image for spec in catalog.values() if spec.image})
        usable, reason = docker_available(images)
        if usable:
            log.info("runtime: docker (PARADISE_RUNTIME=%s; %s)", settings.runtime, reason)
            return DockerRuntime()
        if settings.runtime == "docker":
            raise SettingsError(f"PARADISE_RUNTIME=docker but {reason}")
        log.info("runtime: process (PARADISE_RUNTIME=auto; %s)", reason)
    else:
        log.info("runtime: process (PARADISE_RUNTIME=process)")
    return ProcessRuntime(settings.instances_dir)
