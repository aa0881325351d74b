"""From a catalog entry and a client to the concrete InstanceSpec a runtime starts."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.catalog import ServiceSpec
from bridge.mcp.protocol import INSTANCE_KEY_ENV
from bridge.runtime.base import InstanceSpec
from bridge.settings import BridgeSettings


def instance_spec(
    settings: BridgeSettings,
    service: ServiceSpec,
    client_id: str,
    port: int,
    workspace: str,
    profile: str,
    *,
    instance_key: str | None = None,
) -> InstanceSpec:
    """Everything a runtime needs to start ``service`` for one client: the catalog entry made concrete."""
    instance_dir = settings.instances_dir / client_id / service.name
    values = {
        "port": str(port),
        "host": "127.0.0.1",
        "workspace": workspace,
        "client": client_id,
        "data_dir": str(settings.data_dir),
        "profile": profile,
        "instance_dir": str(instance_dir),
        "python": sys.executable,
        "serena_venv": str(settings.serena_venv_path),
    }
    # The key reaches the instance in its environment only (never its argv, which any local user can read).
    key_env = {INSTANCE_KEY_ENV: instance_key} if instance_key else {}
    return InstanceSpec(
        client_id=client_id,
        service=service.name,
        port=port,
        workspace=Path(workspace),
        instance_dir=instance_dir,
        command=service.render_command(values) if service.command else None,
        image=service.image,
        container_port=service.container_port,
        env={**service.render_env(values), "PARADISE_PROFILE": profile, **key_env},
        memory_bytes=service.memory_bytes,
        cpus=service.cpus,
    )
