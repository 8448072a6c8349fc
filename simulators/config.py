"""The drill model's tuning: human and crew times, re-planning, merging (batch and live).

The defaults are the documented model: call processing and turnout as NFPA 1225 / 1710 give
them, log-normal times on scene and at hospital hand-over, the service's green-wave tuning.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dispatch.models import Agency
from routing.greenwave import GreenWaveConfig

from .vehicles import Bluelight


class DrillConfig(BaseModel):
    """Tuning of a drill's model (defaults are the documented model).

    A live drill uses the crew times (turnout, on scene, hand-over) and ``max_drive_s``; the
    rest is the batch engine's (in a live drill the service itself re-plans, merges and
    redispatches).
    """

    model_config = ConfigDict(frozen=True)

    call_processing_median_s: float = Field(
        default=45.0, gt=0, description="call answered to dispatch decision (NFPA 1225: <= 60 s)"
    )
    turnout_median_s: dict[Agency, float] = Field(
        default_factory=lambda: {
            Agency.POLICE: 30.0,
            Agency.TRAFFIC: 30.0,
            Agency.EMS: 60.0,
            Agency.FIRE: 80.0,
            Agency.PROPERTY: 60.0,
        },
        description="assignment to wheels rolling (NFPA 1710: 60 s EMS, 80 s fire)",
    )
    on_scene_median_s: dict[Agency, float] = Field(
        default_factory=lambda: {
            Agency.POLICE: 1200.0,
            Agency.TRAFFIC: 1500.0,
            Agency.EMS: 720.0,
            Agency.FIRE: 1800.0,
            Agency.PROPERTY: 900.0,
        }
    )
    handover_median_s: float = Field(default=720.0, gt=0)
    replan_every_s: float = Field(default=10.0, gt=0, description="green-wave re-plan at most")
    replan_drift_s: float = Field(default=3.0, gt=0, description="re-plan early on this drift")
    redispatch_after_s: float = Field(default=60.0, gt=0)
    redispatch_tries: int = Field(default=10, ge=0)
    pivot_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="with pivot posts: at most this share of the police units is posted at once",
    )
    max_drive_s: float = Field(default=4 * 3600.0, gt=0, description="a drive longer is cut off")
    bluelight: Bluelight | None = Field(
        default=None,
        description="how emergency vehicles cross a red, with and without the green wave "
        "(None: they wait for green, as the drill always has; benchmarks/sumo_vs_model.py "
        "compares both with SUMO)",
    )
    drain_h: float = Field(default=6.0, ge=0, description="run on after the last call")
    greenwave: GreenWaveConfig = Field(
        default_factory=GreenWaveConfig, description="the service's windows, holds, re-timing"
    )
    merge_distance_m: float = 300.0
    merge_window_s: float = 600.0
