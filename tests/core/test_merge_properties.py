"""Joint intake as properties: any stream of calls, replayed through the core as intake does.

Hypothesis generates calls from the three centres around one spot (types, places within a
kilometre, times within an hour, repeats of one centre's id) and feeds them in time order to
``find_merge_target`` and ``apply_call`` over the open incidents, exactly as
:class:`dispatch.flow.merge.JointIntake` does. Whatever the stream, the outcome must keep
joint intake's promises.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.core.geo import EARTH_RADIUS_M, haversine_m
from dispatch.core.merge import MergePolicy, apply_call, compatible, find_merge_target
from dispatch.core.plans import PlanTable
from dispatch.models import CallEvent, CallType, Centre, Incident

PLANS = PlanTable.load()
POLICY = MergePolicy(distance_m=300, window_s=600)
LAT, LON = 30.0495, 119.9600
T0 = datetime(2026, 11, 29, 20, 15, tzinfo=timezone(timedelta(hours=8)))


@st.composite
def calls(draw: st.DrawFn) -> list[CallEvent]:
    count = draw(st.integers(min_value=1, max_value=25))
    out: list[CallEvent] = []
    for n in range(count):
        # A small id space per centre: the same centre reporting the same call again.
        centre = draw(st.sampled_from(list(Centre)))
        call_id = f"C{draw(st.integers(min_value=0, max_value=count))}"
        north_m = draw(st.floats(min_value=-1000, max_value=1000))
        east_m = draw(st.floats(min_value=-1000, max_value=1000))
        lat = LAT + math.degrees(north_m / EARTH_RADIUS_M)
        lon = LON + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(LAT))))
        out.append(
            CallEvent(
                call_id=call_id,
                centre=centre,
                call_type=draw(st.sampled_from(list(CallType))),
                lat=lat,
                lon=lon,
                received_at=T0 + timedelta(seconds=draw(st.integers(0, 3600)) + n * 0.001),
                severity=draw(st.none() | st.integers(min_value=1, max_value=5)),
            )
        )
    return sorted(out, key=lambda c: c.received_at)


def replay(stream: list[CallEvent]) -> tuple[dict[str, Incident], list[tuple[CallEvent, str]]]:
    """Intake's loop without Redis: duplicates skipped, each call merged or opening one."""
    incidents: dict[str, Incident] = {}
    seen: dict[str, str] = {}
    placed: list[tuple[CallEvent, str]] = []
    for call in stream:
        if call.key in seen:
            continue
        decision = find_merge_target(call, list(incidents.values()), policy=POLICY)
        target = incidents[decision.incident_id] if decision else None
        incident_id = target.id if target else f"I{len(incidents) + 1}"
        incidents[incident_id] = apply_call(
            target,
            call,
            incident_id=incident_id,
            plan=PLANS.for_call(call, target),
            now=call.received_at,
            stream_id=None,
        )
        seen[call.key] = incident_id
        placed.append((call, incident_id))
    return incidents, placed


@settings(max_examples=200, deadline=None)
@given(calls())
def test_every_call_is_on_exactly_one_incident_once(stream: list[CallEvent]) -> None:
    incidents, placed = replay(stream)
    keys = [k for inc in incidents.values() for k in inc.call_ids]
    assert len(keys) == len(set(keys)) == len({c.key for c in stream})
    for call, incident_id in placed:
        assert call.key in incidents[incident_id].call_ids


@settings(max_examples=200, deadline=None)
@given(calls())
def test_a_merged_call_is_near_recent_and_compatible(stream: list[CallEvent]) -> None:
    incidents, placed = replay(stream)
    for call, incident_id in placed:
        incident = incidents[incident_id]
        if incident.calls[0].key == call.key:
            continue  # it opened the incident
        # Within the radius of the incident's place (the first call's: it never moves).
        first = incident.calls[0]
        assert (incident.lat, incident.lon) == (first.lat, first.lon)
        assert haversine_m(call.lat, call.lon, incident.lat, incident.lon) <= 300 + 1e-3
        earlier = [c for c in incident.calls if c.received_at <= call.received_at]
        assert any(abs((call.received_at - c.received_at).total_seconds()) <= 600 for c in earlier)
        others = [c.call_type for c in earlier if c.key != call.key]
        assert compatible(call.call_type, others)


@settings(max_examples=200, deadline=None)
@given(calls())
def test_the_plan_covers_every_call_type_at_the_worst_severity(stream: list[CallEvent]) -> None:
    incidents, _ = replay(stream)
    for incident in incidents.values():
        types = {c.call_type for c in incident.calls}
        assert set(incident.call_types) == types
        assert set(incident.centres) == {c.centre for c in incident.calls}
        severities = [c.severity for c in incident.calls if c.severity is not None]
        assert incident.severity == (max(severities) if severities else None)
        plan = PLANS.plan_for(types, incident.severity)
        assert incident.needs == list(plan.needs) and incident.priority == plan.priority
        assert incident.version == len(incident.calls)


@settings(max_examples=200, deadline=None)
@given(calls())
def test_the_nearest_qualifying_incident_wins(stream: list[CallEvent]) -> None:
    incidents: dict[str, Incident] = {}
    for call in stream:
        if any(call.key in inc.call_ids for inc in incidents.values()):
            continue
        decision = find_merge_target(call, list(incidents.values()), policy=POLICY)
        qualifying = [
            inc
            for inc in incidents.values()
            if compatible(call.call_type, inc.call_types)
            and abs((call.received_at - inc.last_call_at).total_seconds()) <= 600
            and call.received_at >= inc.created_at - timedelta(seconds=600)
            and haversine_m(call.lat, call.lon, inc.lat, inc.lon) <= 300 + 1e-3
        ]
        if not qualifying:
            assert decision is None
        else:
            assert decision is not None
            best = min(haversine_m(call.lat, call.lon, i.lat, i.lon) for i in qualifying)
            assert decision.distance_m == best
        target = incidents[decision.incident_id] if decision else None
        incident_id = target.id if target else f"I{len(incidents) + 1}"
        incidents[incident_id] = apply_call(
            target,
            call,
            incident_id=incident_id,
            plan=PLANS.for_call(call, target),
            now=call.received_at,
            stream_id=None,
        )
