"""Unit recommendation: rank each needed agency's available units by road travel time.

The router computes travel times (one search from the incident on the reversed graph); this
module only decides where each unit should be routed from (:func:`origin_for`) and how the
results rank and fill the plan's needs (:func:`rank_units`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from dispatch.models import ASSIGNABLE_STATUSES, Agency, Unit, UnitNeed, UnitType

# Stand-ins used only when no unit of the needed type is available, and only within the
# agency. A Fuyang water tender (fire_engine) carries cutting and spreading tools, so it can
# start an extrication while a rescue truck comes; the reverse is not true (a rescue truck
# carries almost no water), and nothing stands in for a ladder, an ambulance or a mediator.
SUBSTITUTES: Mapping[UnitType, tuple[UnitType, ...]] = {
    UnitType.FIRE_RESCUE: (UnitType.FIRE_ENGINE,),
}


class Travel(BaseModel):
    """The router's answer for one unit: ``eta_s`` is ``inf`` when no road path exists."""

    model_config = ConfigDict(frozen=True)

    eta_s: float = Field(ge=0)
    distance_m: float = Field(ge=0)
    from_station: bool


class Candidate(BaseModel):
    """One unit as the dispatcher sees it in the recommendation list.

    ``eta_s`` and ``distance_m`` are ``inf`` (``null`` in JSON) when the unit cannot reach the
    scene by road or the router gave no answer; ``reachable`` says so explicitly.
    """

    model_config = ConfigDict(frozen=True)

    unit_id: str
    unit_type: UnitType
    agency: Agency
    eta_s: float
    distance_m: float
    reachable: bool
    stale: bool
    from_station: bool
    position_age_s: float | None
    substitute_for: UnitType | None = None
    reason: str

    @field_serializer("eta_s", "distance_m", when_used="json")
    def _finite_or_null(self, value: float) -> float | None:
        # JSON has no infinity (Starlette's encoder refuses it): unreachable travels as null.
        return value if math.isfinite(value) else None


class AgencyRecommendation(BaseModel):
    """What one agency is asked to send and which units to send.

    ``suggested`` fills each need with the fastest reachable units of the exact type, then
    stand-ins from :data:`SUBSTITUTES`; ``missing`` is what could not be filled.
    """

    model_config = ConfigDict(frozen=True)

    agency: Agency
    needs: list[UnitNeed]
    candidates: list[Candidate]
    suggested: list[str]
    missing: list[UnitNeed]


class Recommendations(BaseModel):
    """Every needed agency's ranked units for one incident, as of ``computed_at``."""

    incident_id: str
    computed_at: datetime
    agencies: list[AgencyRecommendation]

    def top(self, n: int) -> Recommendations:
        """The same, keeping each agency's ``n`` best candidates plus every suggested unit."""
        return self.model_copy(
            update={
                "agencies": [
                    a.model_copy(
                        update={
                            "candidates": [
                                c
                                for i, c in enumerate(a.candidates)
                                if i < n or c.unit_id in a.suggested
                            ]
                        }
                    )
                    for a in self.agencies
                ]
            }
        )


def position_age_s(unit: Unit, now: datetime) -> float | None:
    """Seconds since the unit's last position fix (never negative), ``None`` without a fix."""
    if unit.position is None:
        return None
    # A terminal clock slightly ahead of ours must not make a fix look older or negative.
    return max(0.0, (now - unit.position.at).total_seconds())


def origin_for(
    unit: Unit, now: datetime, stale_after_s: float
) -> tuple[tuple[float, float] | None, bool]:
    """Where the router should start this unit's route, and whether its position is stale.

    Args:
        unit: the unit.
        now: the clock.
        stale_after_s: a fix older than this (strictly) is stale.

    Returns:
        ``((lat, lon), stale)``: the last fix when fresh; else the home station; else the stale
        fix (better than nothing); ``(None, True)`` when the unit has neither.
    """
    age = position_age_s(unit, now)
    if unit.position is not None and age is not None and age <= stale_after_s:
        return (unit.position.lat, unit.position.lon), False
    if unit.station_lat is not None and unit.station_lon is not None:
        return (unit.station_lat, unit.station_lon), True
    if unit.position is not None:
        return (unit.position.lat, unit.position.lon), True
    return None, True


def rank_units(
    *,
    units: Sequence[Unit],
    needs: Sequence[UnitNeed],
    travel: Mapping[str, Travel],
    now: datetime,
    stale_after_s: float,
) -> list[AgencyRecommendation]:
    """Rank the available units of every needed agency and suggest enough of them.

    Args:
        units: the fleet snapshot (any agency, any status; non-assignable ones are dropped).
        needs: the incident's needs (from its response plan).
        travel: unit id -> router result; a unit missing here counts as unreachable.
        now: the clock, for position ages.
        stale_after_s: position age above which a unit is flagged stale.

    Returns:
        One recommendation per needed agency, in the order agencies first appear in ``needs``.
        Candidates are the agency's assignable units of a needed type (plus stand-ins used),
        sorted by ETA, then distance, then id, unreachable ones last. Unreachable units are
        listed but never suggested.

    Raises:
        ValueError: ``needs`` names the same agency and unit type twice.
    """
    pairs = [(n.agency, n.unit_type) for n in needs]
    if len(set(pairs)) != len(pairs):
        raise ValueError("needs list the same agency and unit type twice")
    by_agency: dict[Agency, list[UnitNeed]] = {}
    for need in needs:
        by_agency.setdefault(need.agency, []).append(need)
    available = sorted(
        (u for u in units if u.status in ASSIGNABLE_STATUSES),
        key=lambda u: u.id,
    )
    return [
        _recommend_agency(agency, agency_needs, available, travel, now, stale_after_s)
        for agency, agency_needs in by_agency.items()
    ]


def _recommend_agency(
    agency: Agency,
    needs: list[UnitNeed],
    available: list[Unit],
    travel: Mapping[str, Travel],
    now: datetime,
    stale_after_s: float,
) -> AgencyRecommendation:
    own = [u for u in available if u.agency == agency]
    needed_types = {n.unit_type for n in needs}
    exact = _sorted(
        [_candidate(u, travel, now, stale_after_s, None) for u in own if u.type in needed_types]
    )
    suggested: list[str] = []
    shortfall: dict[UnitType, int] = {}
    for need in needs:
        picks = [c for c in exact if c.unit_type == need.unit_type and c.reachable][: need.count]
        suggested.extend(c.unit_id for c in picks)
        if len(picks) < need.count:
            shortfall[need.unit_type] = need.count - len(picks)
    # Stand-ins come second so that a fire_engine is never borrowed for a fire_rescue need
    # while the plan also needs it as a fire_engine.
    used_subs: list[Candidate] = []
    missing: list[UnitNeed] = []
    for need in needs:
        short = shortfall.get(need.unit_type, 0)
        for sub_type in SUBSTITUTES.get(need.unit_type, ()):
            if short == 0:
                break
            pool = _sorted(
                [
                    _candidate(u, travel, now, stale_after_s, need.unit_type)
                    for u in own
                    if u.type == sub_type and u.id not in suggested
                ]
            )
            for cand in pool:
                if short == 0:
                    break
                if cand.reachable:
                    used_subs.append(cand)
                    suggested.append(cand.unit_id)
                    short -= 1
        if short:
            missing.append(UnitNeed(agency=agency, unit_type=need.unit_type, count=short))
    # A stand-in already listed as an exact candidate is shown once, as the stand-in it is used as.
    sub_ids = {c.unit_id for c in used_subs}
    candidates = _sorted([c for c in exact if c.unit_id not in sub_ids] + used_subs)
    return AgencyRecommendation(
        agency=agency,
        needs=list(needs),
        candidates=candidates,
        suggested=suggested,
        missing=missing,
    )


def _sorted(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (not c.reachable, c.eta_s, c.distance_m, c.unit_id))


def _candidate(
    unit: Unit,
    travel: Mapping[str, Travel],
    now: datetime,
    stale_after_s: float,
    substitute_for: UnitType | None,
) -> Candidate:
    age = position_age_s(unit, now)
    _, stale = origin_for(unit, now, stale_after_s)
    result = travel.get(unit.id)
    if result is None:
        eta_s, distance_m, from_station = math.inf, math.inf, False
    else:
        eta_s, distance_m, from_station = result.eta_s, result.distance_m, result.from_station
    reachable = math.isfinite(eta_s)
    name = unit.callsign or unit.id
    where = "from station" if from_station else "from last position"
    if age is None:
        freshness = "no position fix"
    else:
        freshness = f"fix {age:.0f} s old" + (" (stale)" if stale else "")
    if result is None:
        head = f"{unit.type.value} {name}: no travel time from the router"
    elif not reachable:
        head = f"{unit.type.value} {name}: no road path {where}"
    else:
        head = (
            f"{unit.type.value} {name}: ETA {eta_s / 60:.1f} min, "
            f"{distance_m / 1000:.1f} km {where}"
        )
    parts = [head, freshness]
    if substitute_for is not None:
        parts.append(f"standing in for {substitute_for.value} (none available)")
    return Candidate(
        unit_id=unit.id,
        unit_type=unit.type,
        agency=unit.agency,
        eta_s=eta_s,
        distance_m=distance_m,
        reachable=reachable,
        stale=stale,
        from_station=from_station,
        position_age_s=age,
        substitute_for=substitute_for,
        reason="; ".join(parts),
    )
