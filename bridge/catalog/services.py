"""Service catalog: what a client's instances are and how to start them.

Built-ins (``builtin_services.toml``) plus an optional user TOML file (``PARADISE_CATALOG``) whose entries
override built-ins field by field or add new services.
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from bridge.settings import MemorySize, parse_memory

PLACEHOLDERS = frozenset(
    {"port", "host", "workspace", "client", "data_dir", "profile", "instance_dir", "python", "serena_venv"}
)


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
    # "streamable-http" (current MCP), or "sse" for old HTTP+SSE servers (GET path, POST /messages/).
    transport: Literal["streamable-http", "sse"] = "streamable-http"
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

    @field_validator("command")
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


def load_catalog(extra: Path | None = None) -> dict[str, ServiceSpec]:
    """Built-ins merged with the user's file; raises CatalogError with the file and field on bad input."""
    builtin = resources.files("bridge.catalog").joinpath("builtin_services.toml").read_text()
    merged = _read_toml(builtin, "built-in catalog")
    if extra is not None:
        try:
            text = extra.read_text()
        except OSError as exc:
            raise CatalogError(f"PARADISE_CATALOG {extra}: {exc.strerror}") from None
        for name, fields in _read_toml(text, str(extra)).items():
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


def describe_service(catalog: dict[str, ServiceSpec], name: str) -> tuple[str, str]:
    """(MCP path, transport) of a service; the defaults for one the catalog no longer has."""
    spec = catalog.get(name)
    return (spec.path, spec.transport) if spec else ("/mcp", "streamable-http")
