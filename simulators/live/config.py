"""The live drill's tuning: the crews' model, the field's bounds, the console's patience."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..config import DrillConfig


class LiveConfig(BaseModel):
    """Tuning of a live drill (defaults: the batch model in real time)."""

    model_config = ConfigDict(frozen=True)

    model: DrillConfig = Field(
        default_factory=DrillConfig, description="turnout, on-scene and hand-over medians"
    )
    crew_time_scale: float = Field(
        default=1.0,
        gt=0,
        description="bends the crews' clock: multiplies turnout, time on scene and hand-over "
        "(driving, signals and coordinators stay in real time)",
    )
    silent_coordinators: frozenset[str] = Field(
        default=frozenset(), description="coordinators who never ack (besides the silent share)"
    )
    drain_s: float = Field(
        default=1800.0, ge=0, description="after the last call, wait at most this for the field"
    )
    settle_s: float = Field(
        default=3.0, ge=0, description="after the last call, wait at least this for its events"
    )
    whistle_wait_s: float = Field(
        default=20.0,
        ge=0,
        description="a whistle incident only 122 heard of: 120/119 sound it after this",
    )
    redispatch_after_s: float = Field(default=30.0, gt=0)
    redispatch_tries: int = Field(default=5, ge=0)
    parked_fix_s: float = Field(default=5.0, gt=0, description="fix interval while waiting")
    max_extension_s: int = Field(
        default=30,
        ge=0,
        description="signal controllers: the most a green is held past its planned end",
    )
    token_ttl_s: int = Field(default=24 * 3600, ge=60)
    connect_timeout_s: float = Field(default=30.0, gt=0)
    http_timeout_s: float = Field(default=30.0, gt=0)
