"""Bridge settings: environment variables with the ``PARADISE_`` prefix (and a ``.env`` file).

Built by the app factory or the CLI, never at import time, so tests can build as many as they like.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.rollout_settings import RolloutSettings

_RANGE = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
# Shorter (or empty) admin tokens are guessable or a configuration mistake; either way, they are refused.
MIN_ADMIN_TOKEN = 16
_HOST_VALUE = re.compile(r"[^\s/,@]+")
_ORIGIN_VALUE = re.compile(r"https?://[^\s/,@]+")
log = logging.getLogger(__name__)


def bridge_user_home() -> Path:
    """The home directory of the user running the bridge (from the user database, not from $HOME)."""
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        return Path.home()


def default_workspace_roots() -> list[str]:
    """The bridge user's home from the user database, and ``$HOME`` too when it names another directory the
    same user owns (a container or CI job whose passwd entry and environment disagree)."""
    roots = [str(bridge_user_home())]
    env_home = os.environ.get("HOME", "")
    if os.path.isabs(env_home) and os.path.realpath(env_home) != os.path.realpath(roots[0]):
        try:
            if os.stat(env_home).st_uid == os.getuid():
                roots.append(env_home)
        except OSError:
            pass
    return roots


def _comma_set(value: str | None) -> frozenset[str]:
    """A comma list as lower-case entries without surrounding blanks or a trailing slash."""
    return frozenset(part.strip().rstrip("/").lower() for part in (value or "").split(",") if part.strip())


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


def _checked_memory(value: str | None) -> str | None:
    parse_memory(value)
    return value


# A Docker-style memory size kept as written, refused early when it is not one (settings and catalog alike).
MemorySize = Annotated[str | None, AfterValidator(_checked_memory)]


class BridgeSettings(BaseSettings, RolloutSettings):
    """Every knob (PARADISE_ROLLOUT_*: bridge/rollout_settings.py); the field name upper-cased with ``PARADISE_``."""

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
    pause_after: float = Field(
        0, ge=0, description="Seconds without MCP traffic before an instance is frozen (memory kept, no CPU; "
        "thawed by the next request in milliseconds); 0 = never. IDLE_TIMEOUT still stops it later.",
    )
    probe_interval: float = Field(5.0, gt=0, description="Seconds between health probes of an instance.")
    restart_limit: int = Field(5, ge=1, description="Restarts allowed within RESTART_WINDOW before an instance fails.")
    restart_window: float = Field(300.0, gt=0, description="Seconds of the crash-loop budget window.")
    max_instances: int = Field(0, ge=0, description="Cap on running instances; 0 = no cap.")
    max_memory: MemorySize = Field(None, description="Cap on the summed memory limits of running instances (e.g. 16g).")
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
    serena_language_servers: Path | None = Field(
        None, description="TOML of language = \"/path/to/server\" for language servers the packs do not ship."
    )
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
        description="Where an instance may connect: none (nothing beyond the host; a sandbox only its loopback), "
        "registries (+ the host's HTTP(S)_PROXY and CA settings) or all (NAT; a sandbox's via slirp4netns).",
    )
    sandbox_uids: str = Field("200000-265535", description="Process runtime with a root bridge: host uids its "
                              "sandboxes run as, one per client, inclusive (the first is the group every sandbox "
                              "shares, for reaching the Python and the data dir); never root.")  # fmt: skip
    instance_memory: MemorySize = Field("2g", description="Process runtime: memory a sandboxed process may "
                                        "allocate (RLIMIT_DATA); catalog memory wins.")  # fmt: skip
    instance_pids: int = Field(512, ge=16, description="Process runtime: processes an instance's sandbox may run "
                               "at once (RLIMIT_NPROC).")  # fmt: skip
    instance_disk: MemorySize = Field("512m", description="Process runtime: size of an instance's home (a tmpfs, "
                                      "not on the data dir's disk).")  # fmt: skip
    workspace_roots: str | None = Field(
        None,
        description=f"Directories a client's workspace must lie under, separated by '{os.pathsep}'; default the "
        "home directory of the user running the bridge (and $HOME where it differs). Directories in "
        "DATA_DIR/workspace-roots (added by setup or `devops-paradise roots add`) count too. / and system "
        "directories are refused whatever this says.",
    )
    shared_workspaces: bool = Field(
        False,
        description="Let a client's workspace be, lie inside or contain another client's (their instances can then "
        "change each other's files); without it such a registration is refused (409).",
    )
    allowed_hosts: str | None = Field(
        None,
        description="Comma list of Host values (host:port) the MCP routes accept; default the bridge's loopback "
        "names with its port (127.0.0.1, localhost, [::1]) and HOST when it is a single address. * accepts any.",
    )
    allowed_origins: str | None = Field(
        None,
        description="Comma list of browser origins (scheme://host:port) that may call the MCP routes besides the "
        "bridge's own (its scheme, loopback names or the address a request came in on, and its port), which always "
        "pass; any other Origin is refused (Claude Code sends none). * accepts any.",
    )
    metrics_public: bool = Field(False, description="Serve /metrics without the admin token (Bearer) when true.")
    events_keep: int = Field(
        10000, ge=100, description="Rows the events table keeps; older events are pruned as new ones arrive."
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

    @field_validator("sandbox_uids")
    @classmethod
    def _check_sandbox_uids(cls, value: str) -> str:
        if not ((m := re.fullmatch(r"(\d+)-(\d+)", value)) and 0 < int(m[1]) < int(m[2])):
            raise ValueError(f"SANDBOX_UIDS must be FIRST-LAST with 0 < FIRST < LAST (unprivileged ids), not {value!r}")
        return value

    @field_validator("admin_token")
    @classmethod
    def _check_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if len(token) < MIN_ADMIN_TOKEN:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN} characters, got {len(token)} (an empty or short token "
                "would open the admin API); unset it to have one generated"
            )
        return SecretStr(token)

    @field_validator("workspace_roots")
    @classmethod
    def _check_roots(cls, value: str | None) -> str | None:
        if value is None:
            return None
        roots = [part.strip() for part in value.split(os.pathsep) if part.strip()]
        if not roots:
            raise ValueError("must name at least one directory (unset it for the default, your home directory)")
        for root in roots:
            path = Path(root).expanduser()
            if not path.is_absolute():
                raise ValueError(f"{root!r} is not an absolute path")
            if path.resolve() == Path(path.anchor):
                raise ValueError(f"{root!r} cannot be a workspace root: it would allow every directory")
        return os.pathsep.join(roots)

    @field_validator("allowed_hosts", "allowed_origins")
    @classmethod
    def _check_lists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        pattern = _ORIGIN_VALUE if info.field_name == "allowed_origins" else _HOST_VALUE
        example = "http://localhost:3000" if info.field_name == "allowed_origins" else "bridge.example:8100"
        for entry in _comma_set(value):
            if entry != "*" and not pattern.fullmatch(entry):
                raise ValueError(f"{entry!r} is not a valid entry (e.g. {example}, or *)")
        return value

    @field_validator("data_dir", "catalog", "serena_venv", "serena_language_servers")
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
    def workspace_root_paths(self) -> tuple[Path, ...]:
        """The configured workspace roots with symlinks resolved (workspaces are compared after resolving, too);
        bridge/workspaces.py adds the data dir's roots file to them."""
        raw = self.workspace_roots.split(os.pathsep) if self.workspace_roots else default_workspace_roots()
        return tuple(Path(root.strip()).expanduser().resolve() for root in raw if root.strip())

    @functools.cached_property
    def allowed_host_set(self) -> frozenset[str]:
        """Host header values the MCP routes accept (lower case); ``*`` in it accepts any."""
        if self.allowed_hosts is not None:
            return _comma_set(self.allowed_hosts)
        names = ["127.0.0.1", "localhost", "[::1]"]
        if self.host not in ("0.0.0.0", "::", ""):  # a single address: the URL the bridge hands out names it
            names.append(f"[{self.host}]" if ":" in self.host else self.host)
        hosts = {f"{name}:{self.port}" for name in names}
        if self.port == 80:  # clients leave the default port out of Host
            hosts.update(names)
        return frozenset(host.lower() for host in hosts)

    @functools.cached_property
    def allowed_origin_set(self) -> frozenset[str]:
        """Origin header values the MCP routes accept (lower case, no trailing slash); empty by default."""
        return _comma_set(self.allowed_origins)

    def host_allowed(self, host: str) -> bool:
        return "*" in self.allowed_host_set or host.strip().lower() in self.allowed_host_set

    def origin_allowed(self, origin: str) -> bool:
        return "*" in self.allowed_origin_set or origin.strip().rstrip("/").lower() in self.allowed_origin_set

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
            f"PARADISE_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
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
    """The admin token from the settings, else from DATA_DIR/admin-token, generated (0600) if missing.

    An empty or short file (a crash while it was written by an older version, or a hand edit) would open
    the admin API to an empty bearer token: it is replaced by a new token. A symlink there is refused.
    """
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.data_dir / "admin-token"
    for _ in range(3):
        current = _read_token_file(path)
        if current is not None and len(current) >= MIN_ADMIN_TOKEN:
            return current
        token = secrets.token_urlsafe(32)
        if _install_token_file(path, token, replace=current is not None):
            if current is not None:
                log.warning("%s held an empty or short token; replaced it by a new one", path)
            return token
    raise SettingsError(f"{path} keeps changing while the bridge starts; is another bridge using this data dir?")


def _read_token_file(path: Path) -> str | None:
    """The file's token (stripped), or None when there is no file. Never follows a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            raise SettingsError(f"{path} is a symlink; refusing to use it (remove it to get a new token)") from None
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd) as handle:
        return handle.read().strip()


def _install_token_file(path: Path, token: str, *, replace: bool) -> bool:
    """Write the token atomically: a fresh 0600 temp file (O_EXCL, no symlink followed), then one rename.

    A new file is linked into place, which fails if another bridge made one meanwhile (False: read that
    one); a bad file is replaced by ``os.replace``, which swaps the name and never writes through a link.
    """
    tmp = path.with_name(f".admin-token.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
