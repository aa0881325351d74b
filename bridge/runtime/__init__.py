"""Runtimes: where instances run. One module per backend behind ``base.Runtime``."""

from __future__ import annotations

import logging

from bridge.runtime.base import Runtime
from bridge.runtime.process import ProcessRuntime
from bridge.settings import BridgeSettings, SettingsError

log = logging.getLogger(__name__)


def select_runtime(settings: BridgeSettings) -> Runtime:
    """The runtime PARADISE_RUNTIME asks for; ``auto`` falls back to local processes."""
    if settings.runtime == "docker":
        raise SettingsError("PARADISE_RUNTIME=docker: the Docker runtime is not available in this build")
    runtime = ProcessRuntime(settings.instances_dir)
    log.info("runtime: %s (PARADISE_RUNTIME=%s)", runtime.name, settings.runtime)
    return runtime
