"""Service catalog: what a client's instances are and how to start them.

Built-ins (``builtin_services.toml``), then the packages ``devops-paradise catalog add`` put in
``DATA_DIR/catalog.toml``, then an optional user TOML file (``PARADISE_CATALOG``): each layer overrides the ones
before field by field or adds new services. A service names a ``command`` or a registry ``package``
(bridge/catalog/packages.py); a ``transport = "stdio"`` one runs behind instances/stdio_adapter.py.
"""

from __future__ import annotations

import json
import logging
import re
import string
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from bridge.catalog.packages import Package, PackageError
from bridge.settings import MemorySize, parse_memory

DATA_CATALOG = "catalog.toml"  # DATA_DIR/catalog.toml: the entries `devops-paradise catalog add` wrote
PLACEHOLDERS = frozenset(
    {"port", "host", "workspace", "client", "data_dir", "profile", "instance_dir", "python", "serena_venv",
     "languages", "language_servers", "language_server_dirs"}
)


log = logging.getLogger(__name__)

# A peer's name becomes part of an HTTP header name (X-Paradise-Peer-<Name>-Url), so it is a plain token.
_PEER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class CatalogError(ValueError):
    """The catalog file is unreadable or describes a service badly."""


class ReadyTool(BaseModel):
    """A cheap tool call that proves the instance can do its real work (e.g. its language server is up)."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(90.0, gt=0)


class ReadyCheck(ReadyTool):
    """A tool call on the workspace that must show something when the workspace, seen from the host, holds
    files: an instance that cannot read its workspace otherwise answers every query with nothing."""

    timeout: float = Field(30.0, gt=0)
    expect_nonempty: bool = True

    def shows_nothing(self, answer: str) -> bool:
        """The answer lists nothing: blank, an error message, or JSON with no non-empty list or text in it."""
        if not self.expect_nonempty:
            return False
        text = answer.strip()
        try:
            return not _holds_something(json.loads(text))
        except ValueError:
            return not text or text.lower().startswith("error")


def _holds_something(value: Any) -> bool:
    if isinstance(value, dict):
        return "error" not in value and any(_holds_something(v) for v in value.values())
    if isinstance(value, list):
        return bool(value)
    return value not in (None, "", False)


class ServiceSpec(BaseModel):
    name: str
    command: list[str] | None = None
    image: str | None = None
    container_port: int = Field(8000, ge=1, le=65535)
    path: str = "/mcp"
    # "streamable-http" (current MCP), "sse" for old HTTP+SSE servers (GET path, POST /messages/), or "stdio"
    # for a server that speaks over its stdin/stdout: it runs behind the stdio adapter, which serves /mcp.
    transport: Literal["streamable-http", "sse", "stdio"] = "streamable-http"
    # A registry package to run instead of a command: "npm:NAME@VERSION" or "pypi:NAME==VERSION", exact.
    package: str | None = None
    # Arguments after the package's program (or a stdio command), placeholders allowed.
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    memory: MemorySize = None
    cpus: float | None = None
    # Something that must be installed on the host before a process instance can start ("serena").
    requires: Literal["serena"] | None = None
    # Called after MCP initialize succeeds; until it answers the instance stays "starting".
    ready_tool: ReadyTool | None = None
    # Called after the ready tool when the workspace has entries on the host; showing nothing fails the start.
    ready_check: ReadyCheck | None = None
    # The service checks X-Paradise-Instance-Key (PARADISE_INSTANCE_KEY from its environment) and refuses
    # requests without it: then nothing but the bridge can drive it through its port.
    instance_key: bool = False
    # Sibling services of the same client this one may call directly (quality asks Serena): the bridge sends
    # it where each one listens and its current instance key, as X-Paradise-Peer-* headers, while it is up.
    peers: list[str] = Field(default_factory=list)
    # Rollouts (docs/rollouts.md): the name of this entry's own version, and other versions as overrides of
    # image / command / args / env / package, which `devops-paradise rollout start` moves clients between.
    version: str | None = None
    versions: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("versions")
    @classmethod
    def _version_overrides(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from bridge.catalog.versions import check_versions

        return check_versions(value)

    @field_validator("peers")
    @classmethod
    def _peer_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _PEER_NAME.match(name):
                raise ValueError(f"peer {name!r} is not a service name of lower-case letters, digits, '-' and '_'")
        return list(dict.fromkeys(value))

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value.rstrip("/") or "/"

    @field_validator("package")
    @classmethod
    def _pinned_package(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Package.parse(value)
            except PackageError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _package_runs_on_stdio(self) -> ServiceSpec:
        if self.package is not None:
            if self.command:
                raise ValueError("name a package or a command, not both")
            if self.transport == "sse":
                raise ValueError("a package runs over stdio (or streamable-http with a {port} in its args)")
        if self.transport == "stdio":
            self.instance_key = True  # the adapter always checks it
        return self

    @property
    def registry_package(self) -> Package | None:
        return Package.parse(self.package) if self.package else None

    @property
    def http_transport(self) -> str:
        """How the bridge talks to the instance: a stdio server is reached through its adapter's /mcp."""
        return "streamable-http" if self.transport == "stdio" else self.transport

    @field_validator("command", "args")
    @classmethod
    def _known_placeholders(cls, value: list[str] | None) -> list[str] | None:
        for part in value or []:
            for _, field, _, _ in string.Formatter().parse(part):
                if field is not None and field not in PLACEHOLDERS:
                    raise ValueError(f"unknown placeholder {{{field}}} in {part!r}")
        return value

    @property
    def memory_bytes(self) -> int | None:
        return parse_memory(self.memory)

    def render_command(self, values: dict[str, str]) -> list[str]:
        if not self.command:
            raise CatalogError(f"service {self.name!r} has no command for the process runtime")
        return [part.format_map(values) for part in self.command]

    def render_args(self, values: dict[str, str]) -> list[str]:
        return [part.format_map(values) for part in self.args]

    def render_env(self, values: dict[str, str]) -> dict[str, str]:
        return {key: str(val).format_map(values) for key, val in self.env.items()}


def _read_toml(text: str, origin: str) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: not valid TOML: {exc}") from None
    services = data.get("services", {})
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise CatalogError(f"{origin}: expected [services.NAME] tables")
    return services


def load_catalog(extra: Path | None = None, data_dir: Path | None = None) -> dict[str, ServiceSpec]:
    """Built-ins, the data dir's packages, the user's file; CatalogError with the file and field on bad input."""
    builtin = resources.files("bridge.catalog").joinpath("builtin_services.toml").read_text()
    merged = _read_toml(builtin, "built-in catalog")
    layers = [(data_dir / DATA_CATALOG, False)] if data_dir is not None else []
    for path, required in [*layers, *([(extra, True)] if extra is not None else [])]:
        try:
            text = path.read_text()
        except FileNotFoundError:
            if required:
                raise CatalogError(f"PARADISE_CATALOG {path}: No such file or directory") from None
            continue
        except OSError as exc:
            raise CatalogError(f"{path}: {exc.strerror}") from None
        for name, fields in _read_toml(text, str(path)).items():
            merged[name] = {**merged.get(name, {}), **fields}
    catalog: dict[str, ServiceSpec] = {}
    for name, fields in merged.items():
        try:
            catalog[name] = ServiceSpec(name=name, **fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CatalogError(f"service {name!r}: {where}: {first['msg']}") from None
    return catalog


def refresh_catalog(catalog: dict[str, ServiceSpec], extra: Path | None, data_dir: Path) -> None:
    """Re-read the catalog into ``catalog`` in place (every holder of the dict sees it): a service added by
    ``catalog add`` is known to the next registration without a bridge restart. Entries are added or replaced,
    never dropped (instances may still run them); a catalog that became invalid keeps the one in use."""
    try:
        catalog.update(load_catalog(extra, data_dir))
    except CatalogError as exc:
        log.warning("catalog not reloaded: %s", exc)


def describe_service(catalog: dict[str, ServiceSpec], name: str) -> tuple[str, str]:
    """(MCP path, transport the bridge speaks) of a service; the defaults for one the catalog no longer has."""
    spec = catalog.get(name)
    return (spec.path, spec.http_transport) if spec else ("/mcp", "streamable-http")
