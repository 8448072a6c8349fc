"""The drill report: its models, the summary and per-signal records (batch and live alike).

Definitions the summary uses:

* **arrival** of a unit: its drive on the scene leg, from leaving (after turnout) to on scene;
  a response's arrival is the mean over its units. ``mean_arrival_s_with`` / ``_without`` average
  that over the *green-wave responses* (whistle sounded and the 122 coordinator's ack switched the
  green wave on), each driven twice: with the green wave, and again on the same route, departing
  at the same second, through the same fixed-time signals, with no priority requests.
* **improved**: a response whose arrival with the green wave is shorter by at least 0.5 s.
* **cross delay**: for each perturbation of a served signal (from the first second its phases or
  queues leave the fixed-time plan until both are back), the queue integral of each cross
  approach (an axis no priority was granted for) with priority minus the same integral under the
  plan with the same arrivals: extra red seconds times the flow, queued vehicles discharging at
  the saturation headway. ``cross_delay_added_pct`` is that sum over the cross approaches' fixed-
  time uniform delay ``q r^2 / (2 (1 - q/s))`` per cycle times the whole cycles the perturbation
  spans: the share of delay priority added to those approaches over those cycles.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core.assign import LegKind
from dispatch.models import Agency, CallType, Centre, UnitType
from routing import RoadGraph

from .signals import PriorityGrant, SignalController, SignalTiming, cross_delay


class AckRecord(BaseModel):
    """One summons of a whistle and its answer."""

    model_config = ConfigDict(frozen=True)

    agency: Agency
    coordinator: str
    tier: str
    status: str
    whistle_to_ack_s: float | None = Field(description="None: never acked")


class LegRecord(BaseModel):
    """One unit's drive (to the scene, or transporting to hospital), with and without."""

    model_config = ConfigDict(frozen=True)

    unit_id: str
    agency: Agency
    unit_type: UnitType
    leg: LegKind
    dispatched_s: float = Field(description="sim second of assignment (scene) or leaving scene")
    depart_s: float
    distance_m: float
    signals: int
    planned_s: float = Field(description="the router's navigation time for the route")
    drive_s_with: float
    drive_s_without: float
    dispatch_to_arrival_s: float = Field(description="assignment to arrival, with green wave")
    stops_with: int
    stops_without: int
    signal_lost_s_with: float
    signal_lost_s_without: float
    greenwave: bool = Field(description="priority requests were sent for this leg")
    greenwave_after_s: float | None = Field(
        description="seconds after departure the requests started (negative: before leaving)"
    )
    requests_granted: int
    requests_rejected: int


class ResponseRecord(BaseModel):
    """One incident: its calls, whistle, units and arrivals."""

    model_config = ConfigDict(frozen=True)

    incident_id: str
    source: str
    call_types: list[CallType]
    centres: list[Centre]
    calls: int
    priority: int
    first_call_at: datetime
    whistle: bool
    call_to_whistle_s: float | None
    acks: list[AckRecord]
    escalations: int
    greenwave_enabled_after_s: float | None = Field(description="whistle to green wave on")
    legs: list[LegRecord]
    missing: list[str] = Field(description="needed unit types no unit could be found for")
    arrival_s_with: float | None
    arrival_s_without: float | None
    improved: bool | None


class SignalRecord(BaseModel):
    """One signal crossed by drill vehicles: waits with and without, and what priority cost."""

    model_config = ConfigDict(frozen=True)

    intersection_id: int
    lat: float
    lon: float
    cycle_s: int
    passes: int
    lost_s_with: float
    lost_s_without: float
    saved_s: float
    served: int
    rejected: int
    cross_delay_added_veh_s: float
    cross_baseline_veh_s: float
    extra_red_s_cross: int


class GrantRecord(BaseModel):
    """A priority window a controller executed (the last grant before it was served)."""

    model_config = ConfigDict(frozen=True)

    intersection_id: int
    request_id: str
    inbound: str
    outbound: str
    green_from_s: float
    green_to_s: float
    importance: int

    @classmethod
    def of(cls, grant: PriorityGrant) -> GrantRecord:
        """A grant as the report lists it (once the controller served it)."""
        return cls(
            intersection_id=grant.intersection_id,
            request_id=grant.request_id,
            inbound=grant.inbound.value,
            outbound=grant.outbound.value,
            green_from_s=round(grant.green_from_s, 3),
            green_to_s=round(grant.green_to_s, 3),
            importance=grant.importance,
        )


class DrillSummary(BaseModel):
    """Headline numbers (see the module docstring for definitions)."""

    model_config = ConfigDict(frozen=True)

    calls: int
    responses: int
    whistles: int
    greenwave_responses: int
    escalations: int
    legs: int
    mean_arrival_s_with: float | None
    mean_arrival_s_without: float | None
    arrival_change_pct: float | None = Field(description="negative: faster with the green wave")
    improved_share: float | None
    mean_planned_s: float | None = Field(description="navigation time of the same scene legs")
    mean_transport_s_with: float | None
    mean_transport_s_without: float | None
    mean_call_to_whistle_s: float | None
    mean_whistle_to_ack_s: float | None
    requests_granted: int = Field(description="requests the arbiter granted (at least once)")
    requests_rejected: int = Field(
        description="requests refused at least once: by the arbiter (a conflicting higher "
        "priority) or by the controller (not safely green by the ETA)"
    )
    signals_served: int = Field(description="controller reports 'served' (vehicle got its green)")
    grant_conflicts: int = Field(description="conflicting overlapping grants seen (must be 0)")
    cross_delay_added_veh_s: float
    cross_delay_added_pct: float | None
    missing_units: int


def mean_or_none(values: Sequence[float]) -> float | None:
    """The mean rounded to the millisecond, or None for no values."""
    return round(statistics.fmean(values), 3) if values else None


def summarize(
    *,
    calls: int,
    responses: Sequence[ResponseRecord],
    legs: int,
    with_gw: Sequence[tuple[float, float, float]],
    transports: Sequence[tuple[float, float]],
    call_to_whistle: Sequence[float],
    to_ack: Sequence[float],
    escalations: int,
    granted: int,
    rejected: int,
    served: int,
    conflicts: int,
    cross_added: float,
    cross_base: float,
    missing: int,
) -> DrillSummary:
    """The headline numbers of a drill, batch or live, from what it recorded.

    Args:
        with_gw: per green-wave response, arrival with and without it and the planned time.
        transports: per transport leg, drive time with and without the green wave.
        The rest are counts and samples named as the summary's fields.
    """
    mean_with = mean_or_none([w for w, _, _ in with_gw])
    mean_without = mean_or_none([wo for _, wo, _ in with_gw])
    return DrillSummary(
        calls=calls,
        responses=len(responses),
        whistles=sum(1 for r in responses if r.whistle),
        greenwave_responses=len(with_gw),
        escalations=escalations,
        legs=legs,
        mean_arrival_s_with=mean_with,
        mean_arrival_s_without=mean_without,
        arrival_change_pct=round(100.0 * (mean_with - mean_without) / mean_without, 3)
        if mean_with is not None and mean_without
        else None,
        improved_share=round(sum(1 for w, wo, _ in with_gw if w <= wo - 0.5) / len(with_gw), 4)
        if with_gw
        else None,
        mean_planned_s=mean_or_none([p for _, _, p in with_gw]),
        mean_transport_s_with=mean_or_none([w for w, _ in transports]),
        mean_transport_s_without=mean_or_none([wo for _, wo in transports]),
        mean_call_to_whistle_s=mean_or_none(call_to_whistle),
        mean_whistle_to_ack_s=mean_or_none(to_ack),
        requests_granted=granted,
        requests_rejected=rejected,
        signals_served=served,
        grant_conflicts=conflicts,
        cross_delay_added_veh_s=round(cross_added, 3),
        cross_delay_added_pct=round(100.0 * cross_added / cross_base, 3)
        if cross_base > 0
        else None,
        missing_units=missing,
    )


class ArrivalFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int = Field(description="covered incidents with an arrival")
    median_s: float | None
    mean_s: float | None


class PivotTypeFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    with_posts: ArrivalFigures
    without_posts: ArrivalFigures
    paired: int = Field(description="incidents with the same first call in both runs")
    paired_mean_delta_s: float | None = Field(
        description="mean of (with posts - without) over the paired incidents; < 0: faster"
    )
    median_delta_s: float | None = Field(description="median with posts - median without")
    mean_delta_s: float | None = Field(description="mean with posts - mean without")


class PivotComparison(BaseModel):
    """``pivots`` of a drill report run with posts (``yishao drill --batch --pivots``)."""

    model_config = ConfigDict(frozen=True)

    plan_graph: str
    plan_label: str | None
    posts_standing_max: int = Field(description="most posts standing at once during the drill")
    units_posted_max: int = Field(description="most police units posted at once")
    covered_types: list[str] = Field(description="call types of the posts standing in the drill")
    unmapped_types: list[str] = Field(description="post types that are no drill call type")
    covered: int = Field(description="covered incidents in the run with posts")
    overall: PivotTypeFigures
    by_type: dict[str, PivotTypeFigures]
    summary_without: dict[str, float | int | None] = Field(
        description="the run without posts: responses, mean_arrival_s_with"
    )


class DrillReport(BaseModel):
    """Everything a drill produced; the same seed gives the same JSON."""

    model_config = ConfigDict(frozen=True)

    drill_id: str
    scenario: str
    description: str
    seed: int
    mode: Literal["batch", "live"] = "batch"
    graph: dict[str, str | int]
    start: datetime
    duration_h: float
    summary: DrillSummary
    responses: list[ResponseRecord]
    signals: list[SignalRecord]
    grants: list[GrantRecord]
    pivots: PivotComparison | None = Field(
        None, description="with --pivots: the same seed without posts, compared"
    )


def signal_records(
    graph: RoadGraph,
    timings: Mapping[int, SignalTiming],
    controllers: Mapping[int, SignalController],
    lost_with: Mapping[int, list[float]],
    lost_without: Mapping[int, float],
    served: Mapping[int, int],
    rejected: Mapping[int, int],
) -> tuple[list[SignalRecord], float, float]:
    """One record per signal a drive passed or a controller served (batch and live alike).

    Args:
        graph: the map, for each signal's place.
        timings, controllers: the drill's signal plans and the controllers that ran them.
        lost_with: per signal, the time each pass lost with the green wave.
        lost_without: per signal, the time lost by the same passes re-driven without it.
        served, rejected: per signal, how many priority requests were served / refused.

    Returns:
        The records, the cross-street delay added and its baseline (vehicle-seconds).
    """
    index = {int(o): i for i, o in enumerate(graph.node_osmid.tolist())}
    added_total = base_total = 0.0
    out: list[SignalRecord] = []
    for iid in sorted(set(lost_with) | set(lost_without) | set(served)):
        if iid not in index:
            continue
        added, base, extra_red = cross_delay(controllers.get(iid))
        added_total += added
        base_total += base
        i = index[iid]
        w = sum(lost_with.get(iid, []))
        wo = lost_without.get(iid, 0.0)
        out.append(
            SignalRecord(
                intersection_id=iid,
                lat=float(graph.node_lat[i]),
                lon=float(graph.node_lon[i]),
                cycle_s=timings[iid].cycle_s,
                passes=len(lost_with.get(iid, [])),
                lost_s_with=round(w, 3),
                lost_s_without=round(wo, 3),
                saved_s=round(wo - w, 3),
                served=served.get(iid, 0),
                rejected=rejected.get(iid, 0),
                cross_delay_added_veh_s=round(added, 3),
                cross_baseline_veh_s=round(base, 3),
                extra_red_s_cross=extra_red,
            )
        )
    return out, added_total, base_total
