"""Joint intake: which incident a call joins, and what joining or splitting does to it."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from dispatch.core.geo import EARTH_RADIUS_M, haversine_m
from dispatch.core.merge import (
    COMPATIBLE,
    MergePolicy,
    apply_call,
    compatible,
    find_merge_target,
    split_call,
)
from dispatch.core.plans import PlanTable
from dispatch.errors import ConflictError, NotFoundError
from dispatch.models import CallEvent, CallType, Centre, Incident, IncidentStatus

C = CallType
LAT, LON = 30.0495, 119.9600  # Fuyang district centre
POLICY = MergePolicy(distance_m=300, window_s=600)


def north(metres: float) -> float:
    """Latitude ``metres`` north of LAT along the meridian (exact for the haversine)."""
    return LAT + math.degrees(metres / EARTH_RADIUS_M)


def call(
    call_id: str,
    at: datetime,
    *,
    centre: Centre = Centre.TRAFFIC,
    call_type: CallType = C.TRAFFIC_ACCIDENT,
    lat: float = LAT,
    lon: float = LON,
    severity: int | None = None,
    address: str | None = None,
) -> CallEvent:
    return CallEvent(
        call_id=call_id,
        centre=centre,
        call_type=call_type,
        lat=lat,
        lon=lon,
        received_at=at,
        severity=severity,
        address=address,
    )


def opened(plans: PlanTable, first: CallEvent, incident_id: str = "I-1") -> Incident:
    plan = plans.plan_for([first.call_type], first.severity)
    return apply_call(
        None, first, incident_id=incident_id, plan=plan, now=first.received_at, stream_id="1-0"
    )


def add(plans: PlanTable, incident: Incident, c: CallEvent) -> Incident:
    types = [*incident.call_types, c.call_type]
    sev = max([s for s in (incident.severity, c.severity) if s is not None], default=None)
    plan = plans.plan_for(types, sev)
    return apply_call(
        incident, c, incident_id=incident.id, plan=plan, now=c.received_at, stream_id=None
    )


def test_haversine_known_distance() -> None:
    # One degree of latitude on the mean sphere.
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195.08, abs=0.1)
    assert haversine_m(LAT, LON, LAT, LON) == 0
    assert haversine_m(LAT, LON, north(300), LON) == pytest.approx(300, abs=1e-6)


@pytest.mark.parametrize(
    ("metres", "seconds", "merges"),
    [
        (0, 0, True),
        (299, 40, True),
        (300, 40, True),
        (301, 40, False),
        (45, 599, True),
        (45, 600, True),
        (45, 601, False),
        (45, -600, True),  # a call logged slightly before the incident's last call
        (45, -601, False),
        (299, 600, True),
        (301, 601, False),
    ],
)
def test_distance_and_time_boundaries(
    plans: PlanTable, t0: datetime, metres: float, seconds: float, merges: bool
) -> None:
    incident = opened(plans, call("A1", t0))
    c = call(
        "B1",
        t0 + timedelta(seconds=seconds),
        centre=Centre.EMS,
        call_type=C.CRITICAL_PATIENT,
        lat=north(metres),
    )
    decision = find_merge_target(c, [incident], policy=POLICY)
    if merges:
        assert decision is not None
        assert decision.incident_id == "I-1"
        assert decision.distance_m == pytest.approx(metres, abs=1e-6)
        assert decision.gap_s == abs(seconds)
    else:
        assert decision is None


def test_gap_is_measured_from_last_call(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("A1", t0))
    incident = add(plans, incident, call("A2", t0 + timedelta(seconds=500)))
    late = call("A3", t0 + timedelta(seconds=1000))  # 1000 s after the first, 500 s after last
    decision = find_merge_target(late, [incident], policy=POLICY)
    assert decision is not None and decision.gap_s == 500


def test_call_long_before_creation_does_not_merge(plans: PlanTable, t0: datetime) -> None:
    # The incident was created at t0 + 700 s (the intake was slow) but its first call is
    # dated t0; a call dated t0 - 1 s is within 600 s of the last call but from before the
    # creation time minus the window.
    first = call("A1", t0)
    incident = apply_call(
        None,
        first,
        incident_id="I-1",
        plan=plans.plan_for([first.call_type], None),
        now=t0 + timedelta(seconds=700),
        stream_id=None,
    )
    assert (
        find_merge_target(call("A0", t0 - timedelta(seconds=1)), [incident], policy=POLICY) is None
    )
    assert find_merge_target(call("A2", t0 + timedelta(seconds=100)), [incident], policy=POLICY)


@pytest.mark.parametrize(
    ("existing", "incoming", "merges"),
    [
        (C.TRAFFIC_ACCIDENT, C.TRAFFIC_ACCIDENT_ENTRAPMENT, True),
        (C.TRAFFIC_ACCIDENT, C.CRITICAL_PATIENT, True),
        (C.TRAFFIC_ACCIDENT_ENTRAPMENT, C.FIRE, True),
        (C.FIRE, C.NATURAL_DISASTER, True),
        (C.FIRE, C.CRITICAL_PATIENT, True),
        (C.DROWNING, C.CRITICAL_PATIENT, True),
        (C.FIGHT, C.NOISE, True),
        (C.DISPUTE, C.LABOUR_DISPUTE, True),
        (C.THEFT, C.THEFT, True),
        (C.OTHER, C.THEFT, True),
        (C.THEFT, C.OTHER, True),
        (C.FIRE, C.OTHER, True),
        (C.THEFT, C.FIGHT, False),
        (C.THEFT, C.TRAFFIC_ACCIDENT, False),
        (C.NOISE, C.FIRE, False),
        (C.TRAFFIC_ACCIDENT, C.FIGHT, False),
        (C.LABOUR_DISPUTE, C.DROWNING, False),
        (C.DROWNING, C.THEFT, False),
    ],
)
def test_compatibility(
    plans: PlanTable, t0: datetime, existing: CallType, incoming: CallType, merges: bool
) -> None:
    incident = opened(plans, call("A1", t0, call_type=existing))
    c = call("B1", t0 + timedelta(seconds=30), centre=Centre.EMS, call_type=incoming)
    assert (find_merge_target(c, [incident], policy=POLICY) is not None) is merges


def test_compatibility_table_is_symmetric_and_reflexive() -> None:
    for a in CallType:
        assert a in COMPATIBLE[a]
        assert C.OTHER in COMPATIBLE[a]
        for b in COMPATIBLE[a]:
            assert a in COMPATIBLE[b], (a, b)
    assert COMPATIBLE[C.THEFT] == {C.THEFT, C.OTHER}


def test_call_must_fit_every_type_of_the_incident() -> None:
    # fight ~ critical_patient ~ traffic_accident, but fight is not traffic_accident.
    assert compatible(C.FIGHT, [C.CRITICAL_PATIENT])
    assert not compatible(C.FIGHT, [C.CRITICAL_PATIENT, C.TRAFFIC_ACCIDENT])


@pytest.mark.parametrize("status", list(IncidentStatus))
def test_closed_incidents_never_merge(
    plans: PlanTable, t0: datetime, status: IncidentStatus
) -> None:
    incident = opened(plans, call("A1", t0)).model_copy(update={"status": status})
    decision = find_merge_target(call("A2", t0), [incident], policy=POLICY)
    assert (decision is None) is (status == IncidentStatus.CLOSED)


def test_same_key_never_merges_twice(plans: PlanTable, t0: datetime) -> None:
    first = call("A1", t0)
    incident = opened(plans, first)
    assert find_merge_target(first, [incident], policy=POLICY) is None
    with pytest.raises(ConflictError, match="already on incident"):
        add(plans, incident, first)
    # Same call id from another centre is another call.
    other = call("A1", t0, centre=Centre.EMS, call_type=C.CRITICAL_PATIENT)
    assert find_merge_target(other, [incident], policy=POLICY) is not None


def test_same_centre_may_merge(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("E1", t0, centre=Centre.EMS, call_type=C.FALL_FROM_HEIGHT))
    second = call("E2", t0 + timedelta(seconds=60), centre=Centre.EMS, call_type=C.FALL_FROM_HEIGHT)
    decision = find_merge_target(second, [incident], policy=POLICY)
    assert decision is not None and decision.incident_id == incident.id


def test_best_candidate_is_closest_then_soonest(plans: PlanTable, t0: datetime) -> None:
    far = opened(plans, call("A1", t0, lat=north(200)), "I-far")
    near_late = opened(plans, call("A2", t0 - timedelta(seconds=300), lat=north(50)), "I-near-late")
    near_soon = opened(plans, call("A3", t0 - timedelta(seconds=10), lat=north(50)), "I-near-soon")
    c = call("B1", t0, centre=Centre.EMS, call_type=C.CRITICAL_PATIENT)
    for order in ([far, near_late, near_soon], [near_soon, near_late, far]):
        decision = find_merge_target(c, order, policy=POLICY)
        assert decision is not None and decision.incident_id == "I-near-soon"


def test_reason_is_readable(plans: PlanTable, t0: datetime) -> None:
    incident = opened(
        plans, call("E9", t0, centre=Centre.EMS, call_type=C.TRAFFIC_ACCIDENT_ENTRAPMENT)
    )
    c = call("T1", t0 + timedelta(seconds=40), lat=north(45))
    decision = find_merge_target(c, [incident], policy=POLICY)
    assert decision is not None
    assert decision.reason == (
        "122 call traffic_accident 45 m and 40 s from incident I-1 "
        "(traffic_accident_entrapment; 120)"
    )


def test_policy_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MergePolicy(distance_m=0)


def test_apply_call_creates(plans: PlanTable, t0: datetime) -> None:
    first = call("A1", t0, severity=2, address="Fuchun Rd 1")
    incident = apply_call(
        None,
        first,
        incident_id="I-1",
        plan=plans.plan_for([C.TRAFFIC_ACCIDENT], 2),
        now=t0 + timedelta(seconds=1),
        stream_id="5-0",
    )
    assert incident.version == 1
    assert incident.call_ids == ["122:A1"]
    assert incident.calls[0].stream_id == "5-0"
    assert (incident.lat, incident.lon, incident.address) == (LAT, LON, "Fuchun Rd 1")
    assert incident.created_at == incident.updated_at == t0 + timedelta(seconds=1)
    assert incident.last_call_at == t0
    assert incident.whistle_eligible is False and incident.priority == 3
    assert [e.type for e in incident.timeline] == ["incident.created"]


def test_apply_call_joins(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("A1", t0, severity=2))
    joined = add(
        plans,
        incident,
        call(
            "E1",
            t0 + timedelta(seconds=90),
            centre=Centre.EMS,
            call_type=C.TRAFFIC_ACCIDENT_ENTRAPMENT,
            lat=north(120),
            severity=4,
            address="near the bridge",
        ),
    )
    assert joined.version == 2
    assert joined.call_ids == ["122:A1", "120:E1"]
    assert joined.call_types == [C.TRAFFIC_ACCIDENT, C.TRAFFIC_ACCIDENT_ENTRAPMENT]
    assert joined.centres == [Centre.TRAFFIC, Centre.EMS]
    assert (joined.lat, joined.lon) == (LAT, LON)  # first call's location kept
    assert joined.address == "near the bridge"  # only because there was none
    assert joined.severity == 4
    assert joined.whistle_eligible is True and joined.priority == 1
    assert {a.value for a in joined.agencies} == {"traffic", "ems", "fire"}
    assert joined.last_call_at == t0 + timedelta(seconds=90)
    assert [e.type for e in joined.timeline] == ["incident.created", "incident.call_added"]
    # An out-of-order call does not move last_call_at back; severity None keeps the max.
    older = add(plans, joined, call("A0", t0 - timedelta(seconds=30), call_type=C.OTHER))
    assert older.last_call_at == t0 + timedelta(seconds=90)
    assert older.severity == 4 and older.version == 3


def test_apply_call_refuses(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("A1", t0))
    second = call("E1", t0, centre=Centre.EMS, call_type=C.CRITICAL_PATIENT)
    with pytest.raises(ValueError, match="plan is for"):
        apply_call(
            incident,
            second,
            incident_id="I-1",
            plan=plans.plan_for([C.TRAFFIC_ACCIDENT], None),
            now=t0,
            stream_id=None,
        )
    good = plans.plan_for([C.TRAFFIC_ACCIDENT, C.CRITICAL_PATIENT], None)
    with pytest.raises(ValueError, match="does not match"):
        apply_call(incident, second, incident_id="I-2", plan=good, now=t0, stream_id=None)
    closed = incident.model_copy(update={"status": IncidentStatus.CLOSED})
    with pytest.raises(ConflictError, match="closed"):
        apply_call(closed, second, incident_id="I-1", plan=good, now=t0, stream_id=None)


def test_split_call(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("A1", t0, severity=2))
    incident = add(
        plans,
        incident,
        call(
            "E1",
            t0 + timedelta(seconds=60),
            centre=Centre.EMS,
            call_type=C.CRITICAL_PATIENT,
            severity=5,
        ),
    )
    assert incident.whistle_eligible
    original, new = split_call(
        incident,
        "120:E1",
        new_incident_id="I-2",
        plans=plans,
        now=t0 + timedelta(seconds=120),
        actor="disp-1",
    )
    assert original.call_ids == ["122:A1"]
    assert original.call_types == [C.TRAFFIC_ACCIDENT]
    assert original.centres == [Centre.TRAFFIC]
    assert original.severity == 2
    assert original.whistle_eligible is False and original.priority == 3
    assert original.last_call_at == t0
    assert original.version == incident.version + 1
    assert original.timeline[-1].type == "incident.split"
    assert original.timeline[-1].actor == "disp-1"
    assert new.id == "I-2" and new.version == 1
    assert new.call_ids == ["120:E1"]
    assert new.whistle_eligible is True and new.priority == 1
    assert new.severity == 5
    assert new.created_at == t0 + timedelta(seconds=120)


def test_split_first_call_moves_location(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("A1", t0))
    incident = add(plans, incident, call("A2", t0, lat=north(100), address="Gate 2"))
    original, new = split_call(
        incident, "122:A1", new_incident_id="I-2", plans=plans, now=t0, actor="d"
    )
    assert original.lat == pytest.approx(north(100))
    assert original.address == "Gate 2"
    assert new.lat == LAT


def test_split_errors(plans: PlanTable, t0: datetime) -> None:
    incident = opened(plans, call("A1", t0))
    with pytest.raises(ConflictError, match="only call"):
        split_call(incident, "122:A1", new_incident_id="I-2", plans=plans, now=t0, actor="d")
    with pytest.raises(NotFoundError, match="not on incident"):
        split_call(incident, "120:A1", new_incident_id="I-2", plans=plans, now=t0, actor="d")
