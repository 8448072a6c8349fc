"""Joint intake (联合接警): decide which open incident a call belongs to, and apply it.

A crash is reported to 122 by a driver and to 120 by a passer-by; both calls must land on one
incident so that one set of units goes and every centre sees the same picture. The decision is
pure: candidates come in as snapshots, the clock as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from dispatch.core.geo import haversine_m
from dispatch.core.plans import PlanTable, ResponsePlan
from dispatch.errors import ConflictError, NotFoundError
from dispatch.models import (
    CallEvent,
    CallRecord,
    CallType,
    Centre,
    Incident,
    IncidentStatus,
    TimelineEntry,
)

# The limit is inclusive; a millimetre of slack keeps a point placed exactly on it (a drill,
# a test) from falling out through floating-point rounding in the haversine.
_DISTANCE_SLACK_M = 1e-3

_T = TypeVar("_T", CallType, Centre)

_C = CallType
# Pairs of call types that can describe one emergency from different callers' points of view.
# Each line says why; the relation is made symmetric and reflexive below, and OTHER pairs with
# everything because a caller who could not say what happened may be describing any of them.
_COMPATIBLE_PAIRS: tuple[tuple[CallType, CallType], ...] = (
    # A crash: the driver calls 122, a bystander reports the injured to 120 or a trapped
    # person / burning car to 119.
    (_C.TRAFFIC_ACCIDENT, _C.TRAFFIC_ACCIDENT_ENTRAPMENT),
    (_C.TRAFFIC_ACCIDENT, _C.CRITICAL_PATIENT),
    (_C.TRAFFIC_ACCIDENT, _C.FIRE),
    (_C.TRAFFIC_ACCIDENT_ENTRAPMENT, _C.CRITICAL_PATIENT),
    (_C.TRAFFIC_ACCIDENT_ENTRAPMENT, _C.FIRE),
    # A fire or disaster with casualties, and the casualties reported to 120 on their own.
    (_C.FIRE, _C.CRITICAL_PATIENT),
    (_C.FIRE, _C.NATURAL_DISASTER),
    (_C.FIRE, _C.FALL_FROM_HEIGHT),  # people jumping from a burning building
    (_C.NATURAL_DISASTER, _C.CRITICAL_PATIENT),
    (_C.NATURAL_DISASTER, _C.DROWNING),  # flood
    (_C.NATURAL_DISASTER, _C.FALL_FROM_HEIGHT),  # collapse
    (_C.NATURAL_DISASTER, _C.TRAFFIC_ACCIDENT),  # landslide onto a road
    (_C.NATURAL_DISASTER, _C.TRAFFIC_ACCIDENT_ENTRAPMENT),
    # The victim as 120 hears it: unconscious, not breathing.
    (_C.DROWNING, _C.CRITICAL_PATIENT),
    (_C.FALL_FROM_HEIGHT, _C.CRITICAL_PATIENT),
    (_C.FIGHT, _C.CRITICAL_PATIENT),  # a stabbing reported to 120 as a critical patient
    # Public order: one quarrel reported as a dispute, a fight, or noise by different neighbours.
    (_C.FIGHT, _C.DISPUTE),
    (_C.FIGHT, _C.NOISE),
    (_C.FIGHT, _C.LABOUR_DISPUTE),
    (_C.DISPUTE, _C.NOISE),
    (_C.DISPUTE, _C.LABOUR_DISPUTE),
    (_C.NOISE, _C.LABOUR_DISPUTE),
    # THEFT pairs with nothing but itself: two thefts 200 m apart are usually two thefts.
)


def _build_compatibility() -> dict[CallType, frozenset[CallType]]:
    table: dict[CallType, set[CallType]] = {ct: {ct, _C.OTHER} for ct in CallType}
    table[_C.OTHER] = set(CallType)
    for a, b in _COMPATIBLE_PAIRS:
        table[a].add(b)
        table[b].add(a)
    return {ct: frozenset(others) for ct, others in table.items()}


COMPATIBLE: Mapping[CallType, frozenset[CallType]] = _build_compatibility()
"""For each call type, the call types that may be the same emergency (symmetric, reflexive)."""


def compatible(call_type: CallType, incident_types: Iterable[CallType]) -> bool:
    """Whether a call of ``call_type`` may join an incident already holding ``incident_types``.

    The call must be compatible with every type already there, not just one: otherwise a
    chain (fight -> critical_patient -> traffic_accident) would glue unrelated events together.
    """
    allowed = COMPATIBLE[call_type]
    return all(t in allowed for t in incident_types)


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """How close in space and time two calls must be to be one emergency (both inclusive)."""

    distance_m: float = 300.0
    window_s: float = 600.0

    def __post_init__(self) -> None:
        if not (self.distance_m > 0 and self.window_s > 0):
            raise ValueError("distance_m and window_s must be positive")


@dataclass(frozen=True, slots=True)
class MergeDecision:
    """The incident a call joins, how far from it, and a sentence for the dispatcher's screen."""

    incident_id: str
    distance_m: float
    gap_s: float
    reason: str


def find_merge_target(
    call: CallEvent, candidates: Sequence[Incident], *, policy: MergePolicy
) -> MergeDecision | None:
    """Pick the incident a new call should join, if any.

    A candidate qualifies when it is not closed, does not already hold a call with this call's
    key, lies within ``policy.distance_m`` of the call (from the incident's location), its last
    call is within ``policy.window_s`` of this call either way, the call is not older than the
    incident's creation minus the window, and the call type is compatible with every call type
    of the incident. Calls from the same centre may merge (two 120 callers about one fall).

    Args:
        call: the validated call.
        candidates: incident snapshots near the call (the store's open set; closed ones and
            far-away ones are filtered here anyway).
        policy: distance and time limits.

    Returns:
        The closest qualifying incident (ties: smaller time gap, then id), or ``None`` for a
        new incident. The caller checks the call-id index first: a call already on an incident
        is a redelivery, and this function only guarantees it never lands on that incident twice.
    """
    best: tuple[float, float, str, Incident] | None = None
    for incident in candidates:
        if incident.status == IncidentStatus.CLOSED or call.key in incident.call_ids:
            continue
        if not compatible(call.call_type, incident.call_types):
            continue
        gap_s = abs((call.received_at - incident.last_call_at).total_seconds())
        if gap_s > policy.window_s:
            continue
        if call.received_at < incident.created_at - timedelta(seconds=policy.window_s):
            continue
        distance_m = haversine_m(call.lat, call.lon, incident.lat, incident.lon)
        if distance_m > policy.distance_m + _DISTANCE_SLACK_M:
            continue
        key = (distance_m, gap_s, incident.id, incident)
        if best is None or key[:3] < best[:3]:
            best = key
    if best is None:
        return None
    distance_m, gap_s, _, incident = best
    types = ", ".join(t.value for t in incident.call_types)
    centres = ", ".join(c.value for c in incident.centres)
    reason = (
        f"{call.centre.value} call {call.call_type.value} {distance_m:.0f} m and {gap_s:.0f} s "
        f"from incident {incident.id} ({types}; {centres})"
    )
    return MergeDecision(incident_id=incident.id, distance_m=distance_m, gap_s=gap_s, reason=reason)


def apply_call(
    incident: Incident | None,
    call: CallEvent,
    *,
    incident_id: str,
    plan: ResponsePlan,
    now: datetime,
    stream_id: str | None,
    note: str | None = None,
) -> Incident:
    """Open a new incident for a call, or add the call to an existing one.

    The incident keeps the first call's location: units are already routed there, and letting
    later (often vaguer, "somewhere near the bridge") calls move it would re-route them and let
    an incident drift call by call out of its own merge radius. The address is filled from a
    later call only when the incident had none.

    Args:
        incident: the incident to join, or ``None`` to open one.
        call: the call.
        incident_id: the new incident's id; when joining, must equal ``incident.id``.
        plan: the plan for the incident's call types after this call (``plans.plan_for``).
        now: the clock.
        stream_id: the call's entry id on the calls stream, kept for audit.
        note: text for the timeline entry (e.g. the merge decision's reason).

    Returns:
        The new incident snapshot (version + 1).

    Raises:
        ConflictError: the incident is closed or already holds this call.
        ValueError: ``incident_id`` differs from ``incident.id``, or the plan is not for the
            incident's call types.
    """
    record = CallRecord.from_call(call, stream_id=stream_id)
    actor = f"centre:{call.centre.value}"
    if incident is None:
        _check_plan(plan, [call.call_type])
        return Incident(
            id=incident_id,
            version=1,
            calls=[record],
            call_types=[call.call_type],
            lat=call.lat,
            lon=call.lon,
            address=call.address,
            severity=call.severity,
            centres=[call.centre],
            agencies=list(plan.agencies),
            needs=list(plan.needs),
            whistle_eligible=plan.whistle,
            priority=plan.priority,
            created_at=now,
            updated_at=now,
            last_call_at=call.received_at,
            timeline=[
                TimelineEntry(
                    at=now,
                    type="incident.created",
                    actor=actor,
                    text=note or f"{call.centre.value} call {call.key} ({call.call_type.value})",
                )
            ],
        )
    if incident_id != incident.id:
        raise ValueError(f"incident_id {incident_id!r} does not match incident {incident.id!r}")
    if incident.status == IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is closed")
    if call.key in incident.call_ids:
        raise ConflictError(f"call {call.key} is already on incident {incident.id}")
    call_types = _unique([*incident.call_types, call.call_type])
    _check_plan(plan, call_types)
    entry = TimelineEntry(
        at=now,
        type="incident.call_added",
        actor=actor,
        text=note or f"{call.centre.value} call {call.key} ({call.call_type.value}) added",
    )
    return incident.model_copy(
        update={
            "version": incident.version + 1,
            "calls": [*incident.calls, record],
            "call_types": call_types,
            "centres": _unique([*incident.centres, call.centre]),
            "address": incident.address if incident.address is not None else call.address,
            "severity": _max_severity([incident.severity, call.severity]),
            "agencies": list(plan.agencies),
            "needs": list(plan.needs),
            "whistle_eligible": plan.whistle,
            "priority": plan.priority,
            "last_call_at": max(incident.last_call_at, call.received_at),
            "updated_at": now,
            "timeline": [*incident.timeline, entry],
        }
    )


def split_call(
    incident: Incident,
    call_key: str,
    *,
    new_incident_id: str,
    plans: PlanTable,
    now: datetime,
    actor: str,
) -> tuple[Incident, Incident]:
    """Move a wrongly merged call out of an incident into a new incident of its own.

    Both incidents are re-planned from the calls they keep. Assignments and the whistle stay
    with the original incident: the units there are already on their way to it. If the call
    removed was the first, the original incident's location moves to its new first call.

    Args:
        incident: the incident holding the call.
        call_key: ``centre:call_id`` of the call to split out.
        new_incident_id: id for the new incident.
        plans: the plan table.
        now: the clock.
        actor: who split it (token subject), for both timelines.

    Returns:
        ``(original, new)``: the original without the call (version + 1) and the new incident
        (version 1).

    Raises:
        NotFoundError: the call is not on the incident.
        ConflictError: the call is the incident's only call, or the incident is closed.
    """
    if incident.status == IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is closed")
    moved = [c for c in incident.calls if c.key == call_key]
    if not moved:
        raise NotFoundError(f"call {call_key} is not on incident {incident.id}")
    kept = [c for c in incident.calls if c.key != call_key]
    if not kept:
        raise ConflictError(f"call {call_key} is the only call of incident {incident.id}")
    record = moved[0]
    kept_types = _unique([c.call_type for c in kept])
    kept_severity = _max_severity([c.severity for c in kept])
    kept_plan = plans.plan_for(kept_types, kept_severity)
    first = kept[0]
    original = incident.model_copy(
        update={
            "version": incident.version + 1,
            "calls": kept,
            "call_types": kept_types,
            "centres": _unique([c.centre for c in kept]),
            "lat": first.lat,
            "lon": first.lon,
            "address": _first_address(kept),
            "severity": kept_severity,
            "agencies": list(kept_plan.agencies),
            "needs": list(kept_plan.needs),
            "whistle_eligible": kept_plan.whistle,
            "priority": kept_plan.priority,
            "last_call_at": max(c.received_at for c in kept),
            "updated_at": now,
            "timeline": [
                *incident.timeline,
                TimelineEntry(
                    at=now,
                    type="incident.split",
                    actor=actor,
                    text=f"call {call_key} split out to incident {new_incident_id}",
                ),
            ],
        }
    )
    new_plan = plans.plan_for([record.call_type], record.severity)
    new = Incident(
        id=new_incident_id,
        version=1,
        calls=[record],
        call_types=[record.call_type],
        lat=record.lat,
        lon=record.lon,
        address=record.address,
        severity=record.severity,
        centres=[record.centre],
        agencies=list(new_plan.agencies),
        needs=list(new_plan.needs),
        whistle_eligible=new_plan.whistle,
        priority=new_plan.priority,
        created_at=now,
        updated_at=now,
        last_call_at=record.received_at,
        timeline=[
            TimelineEntry(
                at=now,
                type="incident.split",
                actor=actor,
                text=f"call {call_key} split out of incident {incident.id}",
            )
        ],
    )
    return original, new


def _check_plan(plan: ResponsePlan, call_types: Sequence[CallType]) -> None:
    # A plan computed for a stale set of call types would silently under-send units.
    if set(plan.call_types) != set(call_types):
        got = sorted(t.value for t in plan.call_types)
        want = sorted(t.value for t in call_types)
        raise ValueError(f"plan is for call types {got}, incident has {want}")


def _unique(items: Iterable[_T]) -> list[_T]:
    """Order of first appearance, without repeats (the order calls came in)."""
    return list(dict.fromkeys(items))


def _max_severity(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _first_address(calls: Sequence[CallRecord]) -> str | None:
    return next((c.address for c in calls if c.address is not None), None)


def differing_fields(kept: CallRecord, again: CallRecord) -> list[str]:
    """The fields in which a call seen again differs from the one committed (its stream id
    aside): empty for a plain redelivery."""
    a = kept.model_dump(exclude={"stream_id"})
    b = again.model_dump(exclude={"stream_id"})
    return sorted(name for name in a if a[name] != b.get(name))
