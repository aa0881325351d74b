"""What the rollout endpoints take and answer (pydantic, so the OpenAPI document shows the rules enforced)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.rollouts.settings import parse_waves
from bridge.rollouts.versions import VERSION_NAME

# A rollout's states; ``ACTIVE`` ones hold the service (one rollout per service at a time).
RUNNING, PAUSED, DONE, ROLLED_BACK, ABORTED = "running", "paused", "done", "rolled_back", "aborted"
ACTIVE = frozenset({RUNNING, PAUSED})


class RolloutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=64, description="The catalog service whose instances move.")
    to: str = Field(pattern="^" + VERSION_NAME.pattern + "$", description="A version the catalog declares for it.")
    waves: list[int] | None = Field(
        None, min_length=1, max_length=20,
        description="Cumulative percentages of the service's instances, rising, ending at 100; default "
        "PARADISE_ROLLOUT_WAVES.",
    )
    soak: float | None = Field(None, ge=0, le=86400, description="Seconds each wave serves before its gate; "
                               "default PARADISE_ROLLOUT_SOAK.")  # fmt: skip

    @field_validator("waves")
    @classmethod
    def _rising(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else parse_waves(value)


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
