"""Tables (sqlmodel) and the API's request/response schemas."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # always used with fullmatch: "$" lets "\n" through
# The same rule as a JSON Schema / pydantic pattern: both search unanchored and their "$" is the end of the
# text only (no newline before it), so "^...$" is exactly the fullmatch above; a trailing "\n" fails both.
CLIENT_ID_PATTERN = "^" + CLIENT_ID.pattern + "$"
CLIENT_ID_RULE = f"client_id must match {CLIENT_ID_PATTERN} (lower-case letters, digits, '-'; 1-40 chars)"
# A workspace is absolute (or under ~/, which the bridge expands) and has no NUL, which no path can hold;
# "~name" is refused: for an unknown user, expanding it fails rather than answering.
WORKSPACE_PATTERN = "^(?:/|~/)[^\\x00]*$"
WORKSPACE_MAX = 4096  # PATH_MAX on Linux
# Profiles reach the quality instance's command line and environment: a plain name only.
PROFILE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# The field's pattern and, for its error message, the rule in words.
_FIELD_RULES = {
    "workspace": (WORKSPACE_PATTERN, "be an absolute path (or ~/...) without NUL"),
    "profile": (PROFILE_PATTERN, f"match {PROFILE_PATTERN} (a plain name such as quick)"),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class InstanceState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    PAUSED = "paused"
    IDLE = "idle"
    FAILED = "failed"
    STOPPED = "stopped"


# The lifecycle's rules over these states; RouteTable.transition (bridge/lifecycle/routes.py) applies them.
# A request may go through to these (an unhealthy instance may still answer: let requests try).
READY = frozenset({InstanceState.RUNNING, InstanceState.UNHEALTHY})
# Instances that run or are meant to run soon: what capacity counts and reconcile re-adopts.
ACTIVE = frozenset({InstanceState.STARTING, InstanceState.RUNNING, InstanceState.UNHEALTHY, InstanceState.RESTARTING})


def _to(*states: str) -> frozenset[InstanceState]:
    return frozenset(InstanceState(state) for state in states)


# Every allowed change; a state may always be set again (to update its step or fields).
ALLOWED: dict[InstanceState, frozenset[InstanceState]] = {
    InstanceState.STARTING: _to("running", "restarting", "failed", "stopped"),
    InstanceState.RESTARTING: _to("starting", "running", "failed", "stopped"),
    InstanceState.RUNNING: _to("unhealthy", "restarting", "paused", "idle", "failed", "stopped"),
    InstanceState.UNHEALTHY: _to("running", "restarting", "idle", "failed", "stopped"),
    InstanceState.PAUSED: _to("running", "restarting", "idle", "failed", "stopped"),
    InstanceState.IDLE: _to("starting", "restarting", "failed", "stopped"),
    InstanceState.FAILED: _to("starting", "restarting", "stopped"),
    InstanceState.STOPPED: _to("starting", "restarting"),
}


class Client(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    workspace: str
    profile: str = "comprehensive"
    token_hash: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    # The workspace's device, inode and owner at registration ({"dev", "ino", "uid"}), checked before every
    # start so a swapped directory is never mounted; JSON, since an inode may not fit a signed 64-bit column.
    workspace_identity: dict[str, int] | None = Field(default=None, sa_column=Column(JSON))
    # Serena's languages as the client asked for them (canonical names); None: detected at each start.
    languages: list[str] | None = Field(default=None, sa_column=Column(JSON))


class Instance(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("client_id", "service"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(foreign_key="client.id", index=True)
    service: str
    port: int
    state: str = InstanceState.STARTING
    # What the runtime needs to find the instance again after a bridge restart (pid, container id, ...).
    backend_state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    restarts: int = 0
    last_error: str | None = None
    # The last lines the instance printed before it failed, kept for GET /clients/{id} and the CLI.
    last_log: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    # What works only partly (e.g. no language server for the workspace's language), in words for a person.
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    last_probe_at: datetime | None = None
    last_probe_ms: float | None = None
    started_at: datetime | None = None
    step: str | None = None
    # The secret of the current launch, sent upstream as X-Paradise-Instance-Key; never in a view or an event.
    instance_key: str | None = None
    # The catalog version it is pinned to (a rollout moved it; None: the service's current one, docs/rollouts.md)
    # and what its launch ran (image tag and id, or a digest of the command), bridge/catalog/versions.py.
    version: str | None = None
    version_id: str | None = None


class PortLease(SQLModel, table=True):
    port: int = Field(primary_key=True)
    client_id: str = Field(index=True)
    service: str
    leased_at: datetime = Field(default_factory=utcnow)


class Meta(SQLModel, table=True):
    """Facts about this installation, shared by every bridge on the database (e.g. its id)."""

    key: str = Field(primary_key=True)
    value: str


class Lease(SQLModel, table=True):
    """A named lease with expiry: among bridges sharing one database, the holder does the lease's job."""

    name: str = Field(primary_key=True)
    holder: str
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class McpSessionRow(SQLModel, table=True):
    """A client's MCP session as the bridge issued it, mapped to the instance's own session of the moment.

    ``init`` is the client's initialize request, replayed against a new instance behind the same session;
    ``incarnation`` names the instance launch the upstream session belongs to (its start time).
    """

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(index=True, max_length=40)
    service: str = Field(max_length=64)
    upstream_id: str
    init: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    incarnation: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Rollout(SQLModel, table=True):
    """A service's move from one catalog version to another in waves (bridge/rollouts/); one active per service.

    ``wave`` is the index in ``waves`` being moved or soaked; ``gates`` what each judged wave showed."""

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True, max_length=64)
    from_version: str
    to_version: str
    waves: list[int] = Field(default_factory=list, sa_column=Column(JSON))
    soak: float = 60.0
    state: str = "running"
    wave: int = 0
    reason: str | None = None
    gates: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow, index=True)
    level: str = "info"
    kind: str
    client_id: str | None = Field(default=None, index=True)
    service: str | None = None
    message: str


# ---- API schemas -------------------------------------------------------------------------------------


def _services_schema(schema: dict[str, Any]) -> None:
    """JSON Schema of ``services``: pydantic has no keyword for "no repeats", so it is added here."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option["uniqueItems"] = True


def _languages_schema(schema: dict[str, Any]) -> None:
    """JSON Schema of ``languages``: each item one of the names (and aliases) Serena's set-up knows."""
    from instances.serena.languages import known_names

    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option["items"] = {"type": "string", "enum": known_names()}


class ClientCreate(BaseModel):
    """What POST /clients takes. The constraints are pydantic's, so the OpenAPI document shows them as enforced."""

    # Unknown fields are refused: a misspelt "service" must not silently register the default services.
    model_config = ConfigDict(extra="forbid")

    client_id: str = PydField(
        pattern=CLIENT_ID_PATTERN,
        description="Lower-case letters, digits and '-', starting with a letter or digit; 1-40 characters.",
        examples=["my-project"],
    )
    workspace: str = PydField(
        min_length=1,
        max_length=WORKSPACE_MAX,
        pattern=WORKSPACE_PATTERN,
        description=(
            "Absolute path (or ~/...) of an existing directory under PARADISE_WORKSPACE_ROOTS; system and "
            "shared directories are refused (422)."
        ),
        examples=["/home/me/projects/my-project"],
    )
    profile: str | None = PydField(
        None,
        pattern=PROFILE_PATTERN,
        description="Quality profile (e.g. quick, python, comprehensive); default comprehensive.",
    )
    services: list[str] | None = PydField(
        None,
        min_length=1,
        description="Services to run (non-empty, no repeats); default the built-in serena and quality.",
        json_schema_extra=_services_schema,
    )
    languages: list[str] | None = PydField(
        None,
        min_length=1,
        max_length=32,
        description="Languages Serena serves (python, typescript, javascript, go, cpp, bash, php, rust, ...); "
        "default detected from the workspace's manifests and files at each start.",
        json_schema_extra=_languages_schema,
    )

    @field_validator("client_id", mode="before")
    @classmethod
    def _valid_id(cls, value: Any) -> Any:
        # Before the pattern check only to give the friendlier message; fullmatch, since "$" lets "\n" through.
        if isinstance(value, str) and not CLIENT_ID.fullmatch(value):
            raise ValueError(CLIENT_ID_RULE)
        return value

    @field_validator("workspace", "profile", mode="before")
    @classmethod
    def _says_what_is_wanted(cls, value: Any, info: ValidationInfo) -> Any:
        # Before the pattern check only to name the rule in words and show the value given.
        pattern, wanted = _FIELD_RULES[info.field_name]
        if isinstance(value, str) and not re.fullmatch(pattern[1:-1], value):
            raise ValueError(f"{info.field_name} must {wanted}, got {value!r}")
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str] | None) -> list[str] | None:
        from instances.serena.languages import known_names, normalize  # standard library only

        if value is None:
            return None
        unknown = [name for name in value if name not in known_names()]  # exactly as the schema's enum says
        if unknown:
            raise ValueError(f"unknown language {unknown[0]!r}; known: {', '.join(known_names())}")
        return normalize(value)

    @field_validator("services", mode="before")
    @classmethod
    def _no_repeats(cls, value: Any) -> Any:
        # Before min_length (and pydantic's own message) so that both rules say the same thing.
        if isinstance(value, list) and (not value or len(set(map(repr, value))) != len(value)):
            raise ValueError("services must be a non-empty list without repeats")
        return value


class InstanceView(BaseModel):
    service: str
    state: str
    port: int
    url: str
    restarts: int
    step: str | None = None
    last_error: str | None = None
    last_log: list[str] = PydField(default_factory=list)
    notes: list[str] = PydField(default_factory=list)
    last_probe_at: datetime | None = None
    last_probe_ms: float | None = None
    started_at: datetime | None = None
    version: str = PydField("default", description="The catalog version it runs (docs/rollouts.md).")
    version_id: str | None = PydField(None, description="What its launch ran: image tag and id, or cmd-<digest>.")


class ClientView(BaseModel):
    client_id: str
    workspace: str
    profile: str
    created_at: datetime
    instances: list[InstanceView]
    languages: list[str] | None = PydField(
        None, description="Serena's languages: as registered, else as detected at its last start (null before it)."
    )


class McpServerEntry(BaseModel):
    type: str
    url: str
    headers: dict[str, str]


class McpConfig(BaseModel):
    """The ``.mcp.json`` block for Claude Code; the token is left as ``${DEVOPS_PARADISE_TOKEN}``."""

    mcpServers: dict[str, McpServerEntry]  # the spelling Claude Code reads


class ClientCreated(ClientView):
    token: str = PydField(description="The client's token; shown only once.")
    mcp_config: McpConfig


class TokenRotated(BaseModel):
    client_id: str
    token: str
    mcp_config: McpConfig


class PortView(BaseModel):
    port: int
    client_id: str
    service: str
    leased_at: datetime


class EventView(BaseModel):
    id: int
    ts: datetime
    level: str
    kind: str
    client_id: str | None
    service: str | None
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorView(BaseModel):
    error: ErrorBody
