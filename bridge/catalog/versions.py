"""Versions of a service: named variants of one catalog entry, and what an instance's launch really ran.

A catalog entry may name its own version (``version = "1.4"``; "default" when it does not) and declare others
as overrides, ``[services.NAME.versions.V]`` with any of image, command, args, env (merged over the entry's)
and package. An instance runs the version pinned on its row (a rollout pins it) or else the service's current
version: the target of the last rollout that finished, kept in the database (Meta ``version:SERVICE``).

``version_id`` says what a launch ran, so two instances with the same id run the same thing: ``TAG@ID`` of the
image on Docker/Swarm; on the process runtime ``cmd-DIGEST``, a digest of the entry's command, args, env and
package before per-client values are filled in, plus the Serena version for a Serena entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.catalog import ServiceSpec
    from bridge.runtime.base import Runtime
    from bridge.settings import BridgeSettings

DEFAULT = "default"
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# What a version may change, and the JSON type each must have.
OVERRIDES: dict[str, type] = {"image": str, "command": list, "args": list, "env": dict, "package": str}


def check_versions(value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The catalog's ``versions`` table, refused with the version and field named when it is malformed."""
    for name, fields in value.items():
        if not VERSION_NAME.fullmatch(name):
            raise ValueError(f"version {name!r} must match {VERSION_NAME.pattern} (e.g. 1.4.2 or canary)")
        for key, field in fields.items():
            if key not in OVERRIDES:
                raise ValueError(f"version {name!r}: {key!r} cannot be overridden (only {', '.join(OVERRIDES)})")
            if not isinstance(field, OVERRIDES[key]):
                raise ValueError(f"version {name!r}: {key} must be a {OVERRIDES[key].__name__}")
    return value


def base_name(spec: ServiceSpec) -> str:
    return spec.version or DEFAULT


def known(spec: ServiceSpec) -> list[str]:
    """Every version of the entry: its own first, then the declared ones."""
    return list(dict.fromkeys([base_name(spec), *spec.versions]))


def runs(spec: ServiceSpec, name: str | None) -> str:
    """The name of the version ``versioned(spec, name)`` runs, without building it (views ask it often)."""
    return name if name is not None and name in spec.versions else base_name(spec)


def versioned(spec: ServiceSpec, name: str | None) -> ServiceSpec:
    """The entry as version ``name`` runs it (the entry itself for its own version or one it no longer has)."""
    if name is None or name == base_name(spec) or name not in spec.versions:
        return spec
    overrides = dict(spec.versions[name])
    if "env" in overrides:
        overrides["env"] = {**spec.env, **overrides["env"]}
    if "command" in overrides:  # a command replaces a package and the other way round
        overrides.setdefault("package", None)
    elif "package" in overrides:
        overrides.setdefault("command", None)
    return type(spec).model_validate({**spec.model_dump(), **overrides, "version": name})


async def identify(runtime: Runtime, spec: ServiceSpec, settings: BridgeSettings) -> str:
    """What a launch of ``spec`` runs on ``runtime`` (see the module's docstring); never raises."""
    if spec.image and runtime.name in ("docker", "swarm"):
        image_id = None
        client = getattr(runtime, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                image_id = (await asyncio.to_thread(client.images.get, spec.image)).id
        return f"{spec.image}@{image_id.removeprefix('sha256:')[:12]}" if image_id else spec.image
    recipe = {"command": spec.command, "args": spec.args, "env": spec.env, "package": spec.package,
              "serena": settings.serena_version if spec.requires == "serena" else None}
    return "cmd-" + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
