"""From a catalog entry and a client to the concrete InstanceSpec a runtime starts.

A package entry runs the program its install recorded (bridge/catalog/packages.py), with the package
directory on the command line so the sandbox mounts it whole; a stdio server runs behind the stdio adapter.
On the Docker runtime a package runs in its own image (images/package/Dockerfile, ``Package.image_tag``), whose
entrypoint is the adapter; the arguments reach it in ``PARADISE_PACKAGE_ARGS``, filled for the container.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bridge.catalog import CatalogError, ServiceSpec
from bridge.catalog.packages import installed_program, packages_dir
from bridge.catalog.program_roots import roots_env
from bridge.mcp.protocol import INSTANCE_KEY_ENV
from bridge.runtime.base import InstanceSpec
from bridge.settings import BridgeSettings


def operator_server_dirs(servers_file: Path | None) -> str:
    """The directories of the operator's language servers, joined with os.pathsep ("" for none or a bad file)."""
    from instances.serena.languages import LanguageError, load_operator_servers

    try:
        servers = load_operator_servers(servers_file)
    except LanguageError:
        return ""  # the instance refuses the file itself and says why
    return os.pathsep.join(dict.fromkeys(str(path.parent) for path in servers.values()))


def instance_spec(
    settings: BridgeSettings,
    service: ServiceSpec,
    client_id: str,
    port: int,
    workspace: str,
    profile: str,
    *,
    instance_key: str | None = None,
    languages: list[str] | None = None,
    on_host: bool = True,
) -> InstanceSpec:
    """Everything a runtime needs to start ``service`` for one client: the catalog entry made concrete.
    ``on_host``: the runtime runs a command on this machine (a package must then be installed here)."""
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
        # Serena's languages (empty: the instance detects them) and the operator's servers, which the sandbox
        # mounts read-only because their directories are named here (instances/serena/languages.py)
        "languages": ",".join(languages or []),
        "language_servers": str(settings.serena_language_servers or ""),
        "language_server_dirs": operator_server_dirs(settings.serena_language_servers),
    }
    # The key reaches the instance in its environment only (never its argv, which any local user can read).
    key_env = {INSTANCE_KEY_ENV: instance_key} if instance_key else {}
    command = process_command(settings, service, values) if on_host else None
    # The packages of the programs a command names, which the sandbox then mounts whole (program_roots.py).
    roots = roots_env(command, Path(workspace), settings.data_dir) if command else {}
    return InstanceSpec(
        client_id=client_id,
        service=service.name,
        port=port,
        workspace=Path(workspace),
        instance_dir=instance_dir,
        command=command,
        image=service.image or (service.registry_package.image_tag if service.registry_package else None),
        container_port=service.container_port,
        # Where the instance may connect (its checks that need a registry say up front when they cannot).
        env={**service.render_env(values), "PARADISE_PROFILE": profile, **container_args(service, values),
             "PARADISE_INSTANCE_EGRESS": settings.instance_egress, **roots, **key_env},
        memory_bytes=service.memory_bytes,
        cpus=service.cpus,
    )


def container_args(service: ServiceSpec, values: dict[str, str]) -> dict[str, str]:
    """A package's arguments for its image's adapter (``PARADISE_PACKAGE_ARGS``), placeholders as a container
    sees them: the workspace at /workspace, the server on 0.0.0.0:container_port, its state in /state."""
    if service.registry_package is None or service.image:
        return {}
    inside = {**values, "workspace": "/workspace", "host": "0.0.0.0", "port": str(service.container_port),
              "instance_dir": "/state", "data_dir": "/state"}
    return {"PARADISE_PACKAGE_ARGS": json.dumps(service.render_args(inside))}


def process_command(settings: BridgeSettings, service: ServiceSpec, values: dict[str, str]) -> list[str] | None:
    """The command line of the process runtime: the catalog's command, or the installed package's program,
    plus ``args``; a stdio server behind the adapter, which serves the instance's address."""
    package = service.registry_package
    mount: list[str] = []
    if package is not None:
        program = installed_program(package, packages_dir(settings.data_dir))
        if program is None:
            raise CatalogError(f"service {service.name!r}: {package.ref} is not installed; run `devops-paradise "
                               f"catalog add {service.name} {package.ref}` on the bridge's machine")
        mount = ["--package", str(package.directory(packages_dir(settings.data_dir)))]
    elif service.command:
        program = service.render_command(values)
    else:
        return None
    command = [*program, *service.render_args(values)]
    if service.transport != "stdio":
        return command
    return [sys.executable, "-m", "instances.stdio_adapter", "--host", values["host"], "--port", values["port"],
            "--path", service.path, "--cwd", values["workspace"], *mount, "--", *command]
