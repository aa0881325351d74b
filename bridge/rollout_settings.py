"""The PARADISE_ROLLOUT_* settings, a part of ``BridgeSettings`` kept here so bridge/settings.py stays short.

What the gate does with each threshold is in bridge/rollouts/gate.py and docs/rollouts.md.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


def parse_waves(value: str | list[int]) -> list[int]:
    """"10,25,50,100" (or a list) as rising percentages of the service's instances that ends at 100."""
    try:
        waves = [int(str(part).strip()) for part in (value.split(",") if isinstance(value, str) else value)]
    except ValueError:
        raise ValueError(f"waves must be comma-separated whole percentages, got {value!r}") from None
    if not waves or waves[-1] != 100 or any(not 0 < w <= 100 for w in waves) or waves != sorted(set(waves)):
        raise ValueError(f"waves must rise strictly within 1-100 and end at 100 (e.g. 10,25,50,100), got {value!r}")
    return waves


class RolloutSettings(BaseModel):
    """Defaults of `rollout start` and the gate's thresholds."""

    rollout_waves: str = Field("10,25,50,100", description="Rollouts: default waves, cumulative percentages of "
                               "a service's instances, ending at 100.")  # fmt: skip
    rollout_soak: float = Field(60.0, ge=0, le=86400, description="Rollouts: default seconds a wave's instances "
                                "serve before the gate judges them.")  # fmt: skip
    rollout_max_error_rate: float = Field(0.05, ge=0, le=1, description="Rollouts: a wave fails when its share of "
                                          "failed calls exceeds the other instances' by more than this.")  # fmt: skip
    rollout_max_latency_ratio: float = Field(2.0, ge=1, description="Rollouts: a wave fails when its p95 call "
                                             "latency exceeds this many times the others' (and 100 ms).")  # fmt: skip
    rollout_max_restarts: int = Field(0, ge=0, description="Rollouts: restarts a wave's instances may have during "
                                      "the soak (a crash or a failed health check counts).")  # fmt: skip
    rollout_min_calls: int = Field(5, ge=1, description="Rollouts: calls a group needs in the soak window before "
                                   "its error rate and latency are judged.")  # fmt: skip

    @field_validator("rollout_waves")
    @classmethod
    def _waves(cls, value: str) -> str:
        parse_waves(value)
        return value
