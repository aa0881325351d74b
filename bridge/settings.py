"""Bridge settings: environment variables with the ``PARADISE_`` prefix (and a ``.env`` file).

Built by the app factory or the CLI, never at import time, so tests can build as many as they like.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_RANGE = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_memory(value: str | int | None) -> int | None:
    """Docker-style sizes ("512m", "1g", "1.5GiB", bytes as a number) to bytes."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    match = _MEMORY.match(value)
    if not match:
        raise ValueError(f"not a memory size: {value!r} (use e.g. 512m or 2g)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


class BridgeSettings(BaseSettings):
    """Every knob of the bridge. The field name upper-cased with ``PARADISE_`` is its variable."""

    model_config = SettingsConfigDict(env_prefix="PARADISE_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the bridge listens on.")
    port: int = Field(8100, ge=1, le=65535, description="Port the bridge listens on.")
    data_dir: Path = Field(
        Path("~/.devops-paradise"), description="State: database, admin token, instance homes and logs."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default a SQLite file in DATA_DIR. PostgreSQL URLs work too."
    )
    runtime: Literal["auto", "docker", "process", "swarm"] = Field(
        "auto",
        description="Where instances run: docker, local processes, swarm (services on a Docker Swarm manager), "
        "or auto (docker when usable).",
    )
    port_range: str = Field("8200-8299", description="Host ports leased to instances, inclusive.")
    admin_token: SecretStr | None = Field(
        None, description="Admin API token; generated into DATA_DIR/admin-token (0600) when unset."
    )
    catalog: Path | None = Field(None, description="Extra services TOML merged over the built-ins.")
    idle_timeout: float = Field(
        0, ge=0, description="Seconds without MCP traffic before an instance is stopped; 0 = never."
    )
    probe_interval: float = Field(5.0, gt=0, description="Seconds between health probes of an instance.")
    restart_limit: int = Field(
        5, ge=1, description="Restarts allowed within RESTART_WINDOW before an instance is failed."
    )
    restart_window: float = Field(300.0, gt=0, description="Seconds of the crash-loop budget window.")
    max_instances: int = Field(0, ge=0, description="Cap on running instances; 0 = no cap.")
    max_memory: str | None = Field(None, description="Cap on the summed memory limits of running instances (e.g. 16g).")
    evict_lru: bool = Field(
        False, description="At a cap, stop the least recently used instance (no open streams) instead of a 429."
    )
    probe_timeout: float = Field(5.0, gt=0, description="Seconds an MCP health probe may take.")
    probe_failures: int = Field(3, ge=1, description="Consecutive failed probes before an instance is restarted.")
    restart_backoff: float = Field(0.5, ge=0, description="First delay between restart attempts; doubles, max 30 s.")
    alert_webhook: str | None = Field(None, description="URL that receives warning and error events as JSON POSTs.")
    start_timeout: float = Field(30.0, gt=0, description="Seconds a request is held while its instance starts.")
    ready_timeout: float = Field(
        120.0, gt=0, description="Seconds an instance may take to become ready before it counts as failed."
    )
    stop_grace: float = Field(5.0, ge=0, description="Seconds between SIGTERM and SIGKILL when stopping an instance.")
    max_body: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes.")
    serena_venv: Path | None = Field(None, description="Virtualenv holding Serena; default DATA_DIR/serena-venv.")
    serena_version: str | None = Field(None, description="Serena version to install; default the pinned one.")
    log_level: str = Field("INFO", description="Logging level of the bridge.")
    allow_unsandboxed: bool = Field(
        False,
        description="Process runtime without bubblewrap: serve more than one client although instances can then "
        "read each other's files (and the bridge's). Without it an unsandboxed bridge serves one client only.",
    )
    instance_cpus: float = Field(
        1.0, ge=0, description="CPU limit of a container instance when its catalog entry sets none; 0 = no limit."
    )
    instance_egress: Literal["none", "registries", "all"] = Field(
        "none",
        description="Where a container instance may connect: none (no NAT: nothing beyond the host answers), "
        "registries (as none, plus the host's HTTP(S)_PROXY for package registries) or all (the engine's NAT).",
    )

    @field_validator("port_range")
    @classmethod
    def _check_range(cls, value: str) -> str:
        match = _RANGE.match(value)
        if not match:
            raise ValueError(f"PORT_RANGE must look like 8200-8299, got {value!r}")
        low, high = int(match.group(1)), int(match.group(2))
        if not (1024 <= low <= high <= 65535):
            raise ValueError(f"PORT_RANGE {value!r} must be within 1024-65535 with low <= high")
        return f"{low}-{high}"

    @field_validator("max_memory")
    @classmethod
    def _check_memory(cls, value: str | None) -> str | None:
        parse_memory(value)
        return value

    @field_validator("data_dir", "catalog", "serena_venv")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value is not None else None

    @model_validator(mode="after")
    def _bridge_port_outside_pool(self) -> BridgeSettings:
        if self.port in self.port_pool:
            raise ValueError(f"PORT {self.port} lies inside PORT_RANGE {self.port_range}")
        return self

    @property
    def port_pool(self) -> range:
        low, high = (int(part) for part in self.port_range.split("-"))
        return range(low, high + 1)

    @property
    def max_memory_bytes(self) -> int | None:
        return parse_memory(self.max_memory)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'paradise.db'}"

    @property
    def instances_dir(self) -> Path:
        return self.data_dir / "instances"

    @property
    def serena_venv_path(self) -> Path:
        return self.serena_venv or self.data_dir / "serena-venv"

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


class SettingsError(RuntimeError):
    """Start-up cannot go on; the message is one line meant for a person."""


def load_settings(**overrides: object) -> BridgeSettings:
    """Build settings, turning validation errors into one readable line."""
    try:
        return BridgeSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"PARADISE_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def prepare_data_dir(settings: BridgeSettings) -> None:
    """Create DATA_DIR (0700) and check that it is writable; fail with one clear line otherwise."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.instances_dir.mkdir(exist_ok=True)
        probe = settings.data_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SettingsError(f"PARADISE_DATA_DIR {settings.data_dir} is not writable: {exc.strerror}") from None


def ensure_admin_token(settings: BridgeSettings) -> str:
    """The admin token from the settings, else from DATA_DIR/admin-token, generated (0600) if missing."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
