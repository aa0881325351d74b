"""Runtimes: where instances run. One module per backend behind ``base.Runtime``; the choice is selection.py's."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from bridge.runtime.base import Runtime
from bridge.runtime.egress import nat_usable
from bridge.runtime.grants import SandboxUids
from bridge.runtime.process import Limits, ProcessRuntime
from bridge.runtime.sandbox import Sandbox
from bridge.runtime.selection import RuntimeChoice, choose_runtime, gather_facts
from bridge.settings import BridgeSettings, SettingsError, parse_memory

log = logging.getLogger(__name__)


class HasImage(Protocol):
    """A catalog entry, as far as choosing a runtime goes (the runtime does not depend on the catalog)."""

    @property
    def image(self) -> str | None: ...


Catalog = Mapping[str, HasImage]


def catalog_images(catalog: Catalog) -> list[str]:
    return sorted({spec.image for spec in catalog.values() if spec.image})


def runtime_choice(settings: BridgeSettings, catalog: Catalog) -> RuntimeChoice:
    """What PARADISE_RUNTIME picks on this machine (blocking: it asks the engine, runs bwrap once)."""
    facts = gather_facts(settings.runtime, catalog_images(catalog), allow_unsandboxed=settings.allow_unsandboxed)
    return choose_runtime(settings.runtime, facts)


def select_runtime(
    settings: BridgeSettings, catalog: Catalog, installation: str | None = None
) -> Runtime:
    """PARADISE_RUNTIME: ``docker``, ``process``, ``swarm``, or ``auto`` = Docker when an engine answers and the
    images exist, else local processes (sandboxed by bubblewrap where it runs). Blocking: call it in a thread."""
    choice = runtime_choice(settings, catalog)
    if not choice.usable:
        raise SettingsError(f"PARADISE_RUNTIME={settings.runtime} but {choice.reason}")
    log.info("runtime: %s (PARADISE_RUNTIME=%s; %s)", choice.chosen, settings.runtime, choice.reason)
    if choice.warning:
        log.warning("!!! %s. Install bubblewrap (apt-get install bubblewrap) or use the docker runtime. !!!",
                    choice.warning)  # fmt: skip
    cpus = settings.instance_cpus or None
    if choice.chosen == "swarm":
        from bridge.runtime.swarm import SwarmRuntime

        return SwarmRuntime(stop_grace=settings.stop_grace, installation=installation, default_cpus=cpus)
    if choice.chosen == "docker":
        from bridge.runtime.docker import DockerRuntime

        return DockerRuntime(installation=installation, default_cpus=cpus, egress=settings.instance_egress)
    shared = (settings.serena_venv_path, settings.data_dir / "packages")  # registry packages: catalog add
    sandbox = Sandbox(settings.data_dir, shared=shared) if choice.sandboxed else None
    limits = Limits(memory=parse_memory(settings.instance_memory), pids=settings.instance_pids,
                    disk=parse_memory(settings.instance_disk))  # fmt: skip
    uids = SandboxUids.parse(settings.data_dir, settings.sandbox_uids)
    if sandbox is not None and settings.instance_egress == "all" and not (nat := nat_usable())[0]:
        raise SettingsError(f"PARADISE_INSTANCE_EGRESS=all on the process runtime, but {nat[1]}")
    return ProcessRuntime(settings.instances_dir, sandbox=sandbox, allow_unsandboxed=settings.allow_unsandboxed,
                          uids=uids, limits=limits, egress=settings.instance_egress)  # fmt: skip
