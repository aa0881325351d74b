"""What the rollout endpoints take and answer (pydantic, so the OpenAPI document shows the rules enforced)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.catalog.versions import VERSION_NAME

# A rollout's states; ``ACTIVE`` ones hold the service (one rollout per service at a time).
RUNNING, PAUSED, DONE, ROLLED_BACK, ABORTED = "running", "paused", "done", "rolled_back", "aborted"
ACTIVE = frozenset({RUNNING, PAUSED})
SERVICE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # a catalog service's name as a rollout may name it


class RolloutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=SERVICE_PATTERN, description="The catalog service whose instances move.")
    to: str = Field(pattern="^" + VERSION_NAME.pattern + "$", description="A version the catalog declares for it.")
    waves: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(
        None, min_length=1, max_length=20,
        description="Cumulative percentages of the service's instances; taken in rising order without repeats, "
        "100 added when missing; default PARADISE_ROLLOUT_WAVES.",
    )
    soak: float | None = Field(None, ge=0, le=86400, description="Seconds each wave serves before its gate; "
                               "default PARADISE_ROLLOUT_SOAK.")  # fmt: skip

    @field_validator("waves")
    @classmethod
    def _rising(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else sorted({*value, 100})


class RolloutView(BaseModel):
    id: int
    service: str
    from_version: str
    to_version: str
    state: str = Field(description="running, paused, done, rolled_back or aborted.")
    waves: list[int]
    wave: int = Field(description="Index in waves of the wave being moved or soaked (len(waves) when done).")
    soak: float
    reason: str | None = Field(None, description="Why it was rolled back or aborted.")
    gates: list[dict[str, Any]] = Field(default_factory=list, description="What each judged wave showed.")
    instances: int = Field(0, description="The service's instances now.")
    moved: int = Field(0, description="Of those, how many run to_version now.")
    active: bool = Field(True, description="Holds its service: moving, soaking, paused, or still moving instances "
                         "back after a failed gate or an abort (then its state already says rolled_back or "
                         "aborted).")  # fmt: skip
    created_at: datetime
    updated_at: datetime
