"""Drill scenarios: what happens, where and when; a file format and the built-in Fuyang set.

A scenario is TOML (or the same structure in JSON)::

    name = "taxi-rollover"
    description = "..."
    start = 2025-11-28T17:00:00+08:00   # local time matters: call rates and traffic follow it
    duration_h = 3

    [[place]]                  # named places, resolved on the loaded map (simulators.places)
    name = "depot"
    kind = "point"             # random | point | near | water | industrial | residential | market
    lat = 31.23
    lon = 121.47

    [[event]]                  # scripted emergencies: each instance is one emergency
    name = "rollover"
    place = "random"           # a [[place]] name, or a kind resolved afresh for every instance
    count = 8                  # instances, at uniform times in [from_h, to_h) after start
    from_h = 0.0
    to_h = 3.0
    [[event.calls]]            # the calls it causes (after_s from the emergency, offset_m away)
    centre = "122"
    call_type = "traffic_accident_entrapment"
    severity = 4
    [[event.calls]]
    centre = "120"
    call_type = "critical_patient"
    after_s = 45
    offset_m = 60

    [[stream]]                 # background Poisson calls
    name = "background"
    calls_per_hour = 12        # mean rate; shaped by the hour-of-day profile `hourly`
    place = "market"           # optional: cluster within radius_m of a place (else anywhere)
    radius_m = 300
    mix = { fight = 0.4, noise = 0.3, dispute = 0.3 }

Per call type the first centre, the severity distribution and how often a second centre gets
its own call about the same emergency (joint reporting) default to :data:`TYPE_PROFILES`;
police matters (fights, disputes, thefts, noise) come in through 122, the police command
centre of the joint intake.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dispatch.models import CallType, Centre

from .catalogue import BUILTIN_TOML, builtin_names
from .coordinators import CoordinatorBehaviour
from .errors import ScenarioError
from .places import PlaceKind, PlaceSpec

__all__ = [
    "BUILTIN_TOML",
    "TYPE_PROFILES",
    "CallSpec",
    "EventSpec",
    "Scenario",
    "ScenarioError",
    "StreamSpec",
    "TypeProfile",
    "builtin_names",
    "load_scenario",
    "parse_scenario",
]


class TypeProfile(BaseModel):
    """Defaults for one call type."""

    model_config = ConfigDict(frozen=True)

    centre: Centre
    severity_weights: tuple[float, float, float, float, float]
    joint_share: float = Field(ge=0, le=1)
    joint: tuple[tuple[Centre, CallType], ...] = ()


_C, _T = Centre, CallType
TYPE_PROFILES: Mapping[CallType, TypeProfile] = {
    # A crash: the driver calls 122; a passer-by calls 120 about the injured.
    _T.TRAFFIC_ACCIDENT: TypeProfile(
        centre=_C.TRAFFIC, severity_weights=(0.35, 0.3, 0.2, 0.1, 0.05), joint_share=0.15,
        joint=((_C.EMS, _T.CRITICAL_PATIENT),),
    ),
    # Someone trapped: 122 and 120 nearly always both hear of it, 119 often.
    _T.TRAFFIC_ACCIDENT_ENTRAPMENT: TypeProfile(
        centre=_C.TRAFFIC, severity_weights=(0.0, 0.0, 0.4, 0.4, 0.2), joint_share=0.7,
        joint=((_C.EMS, _T.CRITICAL_PATIENT), (_C.FIRE, _T.TRAFFIC_ACCIDENT_ENTRAPMENT)),
    ),
    _T.DROWNING: TypeProfile(
        centre=_C.EMS, severity_weights=(0.0, 0.0, 0.3, 0.4, 0.3), joint_share=0.3,
        joint=((_C.FIRE, _T.DROWNING),),
    ),
    _T.FALL_FROM_HEIGHT: TypeProfile(
        centre=_C.EMS, severity_weights=(0.0, 0.1, 0.4, 0.3, 0.2), joint_share=0.25,
        joint=((_C.FIRE, _T.FALL_FROM_HEIGHT),),
    ),
    _T.CRITICAL_PATIENT: TypeProfile(
        centre=_C.EMS, severity_weights=(0.0, 0.1, 0.4, 0.35, 0.15), joint_share=0.0,
    ),
    _T.FIRE: TypeProfile(
        centre=_C.FIRE, severity_weights=(0.2, 0.3, 0.25, 0.15, 0.1), joint_share=0.35,
        joint=((_C.EMS, _T.CRITICAL_PATIENT),),
    ),
    _T.NATURAL_DISASTER: TypeProfile(
        centre=_C.FIRE, severity_weights=(0.1, 0.3, 0.3, 0.2, 0.1), joint_share=0.3,
        joint=((_C.EMS, _T.CRITICAL_PATIENT),),
    ),
    # A stabbing at a fight reaches 120 as a critical patient.
    _T.FIGHT: TypeProfile(
        centre=_C.TRAFFIC, severity_weights=(0.2, 0.35, 0.25, 0.15, 0.05), joint_share=0.08,
        joint=((_C.EMS, _T.CRITICAL_PATIENT),),
    ),
    _T.DISPUTE: TypeProfile(centre=_C.TRAFFIC, severity_weights=(0.5, 0.3, 0.15, 0.05, 0.0),
                            joint_share=0.0),
    _T.LABOUR_DISPUTE: TypeProfile(centre=_C.TRAFFIC,
                                   severity_weights=(0.3, 0.3, 0.2, 0.15, 0.05), joint_share=0.0),
    _T.THEFT: TypeProfile(centre=_C.TRAFFIC, severity_weights=(0.5, 0.3, 0.2, 0.0, 0.0),
                          joint_share=0.0),
    _T.NOISE: TypeProfile(centre=_C.TRAFFIC, severity_weights=(0.7, 0.3, 0.0, 0.0, 0.0),
                          joint_share=0.0),
    _T.OTHER: TypeProfile(centre=_C.TRAFFIC, severity_weights=(0.4, 0.3, 0.2, 0.1, 0.0),
                          joint_share=0.0),
}  # fmt: skip

# Relative call volume by local hour (0..23): quiet small hours, busy evenings.
HOURLY_CALLS: tuple[float, ...] = (
    0.55, 0.45, 0.35, 0.3, 0.3, 0.35, 0.55, 0.8, 1.0, 1.05, 1.05, 1.1,
    1.1, 1.05, 1.05, 1.1, 1.2, 1.3, 1.4, 1.45, 1.4, 1.3, 1.05, 0.8,
)  # fmt: skip


class CallSpec(BaseModel):
    """One call an event causes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    centre: Centre
    call_type: CallType
    severity: int | None = Field(default=None, ge=1, le=5)
    after_s: float = Field(default=0.0, ge=0, description="seconds after the emergency starts")
    offset_m: float = Field(default=30.0, ge=0, description="caller's location error")
    description: str | None = None


class EventSpec(BaseModel):
    """A scripted emergency, possibly repeated at fresh places and times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    place: str = Field(
        description="a [[place]] name, or a place kind resolved afresh for each instance"
    )
    count: int = Field(default=1, ge=1, le=10_000)
    from_h: float = Field(default=0.0, ge=0)
    to_h: float | None = Field(default=None, ge=0, description="default: scenario end")
    calls: list[CallSpec] = Field(min_length=1)


class StreamSpec(BaseModel):
    """Background Poisson calls, shaped by the hour of day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    calls_per_hour: float = Field(gt=0, description="mean rate over the day's profile")
    from_h: float = Field(default=0.0, ge=0)
    to_h: float | None = Field(default=None, ge=0)
    place: str | None = Field(default=None, description="cluster around a place, else anywhere")
    radius_m: float = Field(default=400.0, gt=0)
    mix: dict[CallType, float] = Field(min_length=1)
    hourly: tuple[float, ...] = Field(default=HOURLY_CALLS, min_length=24, max_length=24)
    centre: Centre | None = Field(default=None, description="override the per-type centre")
    joint: bool = Field(default=True, description="let second centres report joint emergencies")


class Scenario(BaseModel):
    """A whole drill's input (see the module docstring for the file format)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    description: str = ""
    start: datetime
    duration_h: float = Field(gt=0, le=24 * 14)
    places: list[PlaceSpec] = Field(default_factory=list, alias="place")
    events: list[EventSpec] = Field(default_factory=list, alias="event")
    streams: list[StreamSpec] = Field(default_factory=list, alias="stream")
    coordinators: CoordinatorBehaviour = Field(default_factory=CoordinatorBehaviour)
    ack_timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must carry a UTC offset (local time drives call rates)")
        if not self.events and not self.streams:
            raise ValueError("a scenario needs at least one [[event]] or [[stream]]")
        names = [p.name for p in self.places]
        if len(set(names)) != len(names):
            raise ValueError("place names must be unique")
        known = set(names)
        kinds = set(get_args(PlaceKind))
        for p in self.places:
            if p.kind == "near" and p.of not in known:
                raise ValueError(f"place {p.name!r} is near unknown place {p.of!r}")
        for e in self.events:
            if e.place not in known and e.place not in kinds - {"point", "near"}:
                raise ValueError(f"event {e.name!r}: unknown place {e.place!r}")
        for s in self.streams:
            if s.place is not None and s.place not in known:
                raise ValueError(f"stream {s.name!r}: unknown place {s.place!r}")
        return self


def parse_scenario(data: Mapping[str, Any], *, source: str = "<scenario>") -> Scenario:
    """Validate a parsed scenario document.

    Raises:
        ScenarioError: a bad field (the message names the source and the field path).
    """
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'scenario'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ScenarioError(f"{source}: {problems}") from exc


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file (``.toml`` or ``.json``).

    Raises:
        ScenarioError: unknown name, unreadable file, bad TOML/JSON, or an invalid scenario.
    """
    key = str(name_or_path)
    if key in BUILTIN_TOML:
        return parse_scenario(tomllib.loads(BUILTIN_TOML[key]), source=f"built-in {key}")
    path = Path(key)
    if not path.is_file():
        raise ScenarioError(
            f"no scenario {key!r}: not a built-in ({', '.join(builtin_names())}) and not a file"
        )
    try:
        text = path.read_text("utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a table / object")
    return parse_scenario(data, source=str(path))
