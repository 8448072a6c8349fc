"""Recommendations and assignments over the real Shanghai graph and a real Redis."""

from __future__ import annotations

import asyncio
import math

import pytest

from dispatch.core.assign import AssignmentRecord
from dispatch.errors import ConflictError
from dispatch.flow.assign import AssignmentRequest
from dispatch.flow.fleet import FleetUnit
from dispatch.models import Agency, CallEvent, CallType, Centre, Hospital, UnitStatus, UnitType
from routing import Router
from tests.conftest import FakeClock, Stack

SCENE = (31.2304, 121.4737)  # People's Square


def node(router: Router, i: int) -> tuple[float, float]:
    return float(router.graph.node_lat[i]), float(router.graph.node_lon[i])


async def open_incident(
    stack: Stack, call_type: str = "traffic_accident_entrapment", *, centre: str = "120", n: int = 1
) -> str:
    call = CallEvent(
        call_id=f"T{n}",
        centre=Centre(centre),
        call_type=CallType(call_type),
        lat=SCENE[0],
        lon=SCENE[1],
        received_at=stack.clock.now,
        severity=4,
    )
    out = await stack.joint.handle(call)
    return out.incident_id


async def load_fleet(stack: Stack, router: Router) -> list[FleetUnit]:
    specs = []
    kinds = [
        (Agency.TRAFFIC, UnitType.TRAFFIC_POLICE_CAR),
        (Agency.EMS, UnitType.AMBULANCE),
        (Agency.FIRE, UnitType.FIRE_RESCUE),
        (Agency.FIRE, UnitType.FIRE_ENGINE),
        (Agency.POLICE, UnitType.PATROL_CAR),
    ]
    for k, (agency, utype) in enumerate(kinds):
        for j in range(3):
            lat, lon = node(router, 97 * (k * 3 + j) + 11)
            specs.append(
                FleetUnit(
                    id=f"{utype.value}-{j}",
                    agency=agency,
                    type=utype,
                    lat=lat,
                    lon=lon,
                    station=f"S{k}",
                )
            )
    for spec in specs:
        await stack.fleet.put_unit(spec, actor="test")
    return specs


async def test_recommendations_rank_by_road_time(stack: Stack, shanghai_router: Router) -> None:
    await load_fleet(stack, shanghai_router)
    incident_id = await open_incident(stack)
    recs = await stack.recommender.recommend(incident_id)
    agencies = {r.agency for r in recs.agencies}
    assert agencies >= {Agency.TRAFFIC, Agency.EMS, Agency.FIRE}
    units = {u.id: u for u in await stack.fleet.units()}
    for rec in recs.agencies:
        etas = [c.eta_s for c in rec.candidates]
        assert etas == sorted(etas)
        for c in rec.candidates:
            # Each ETA is the road travel time a single route query gives (one search did them all).
            pos = units[c.unit_id].position
            assert pos is not None
            route = shanghai_router.route((pos.lat, pos.lon), SCENE)
            assert c.eta_s == pytest.approx(route.duration_s, rel=1e-6, abs=1e-6)
            assert not c.stale
        assert rec.suggested, rec
    ems = next(r for r in recs.agencies if r.agency is Agency.EMS)
    assert ems.suggested[0] == ems.candidates[0].unit_id


async def test_stale_unit_is_ranked_from_its_station_and_flagged(
    stack: Stack, shanghai_router: Router
) -> None:
    await load_fleet(stack, shanghai_router)
    stack.clock.advance(3600)  # every fix is now an hour old
    incident_id = await open_incident(stack)
    recs = await stack.recommender.recommend(incident_id)
    assert all(c.stale and c.from_station for r in recs.agencies for c in r.candidates)


async def test_assign_routes_plans_and_blocks_double_assignment(
    stack: Stack, shanghai_router: Router
) -> None:
    await load_fleet(stack, shanghai_router)
    incident_id = await open_incident(stack)
    records = await stack.assignments.assign(
        incident_id,
        AssignmentRequest(unit_ids=["traffic_police_car-0", "fire_rescue-1"]),
        actor="disp-120",
    )
    assert [r.unit_id for r in records] == ["traffic_police_car-0", "fire_rescue-1"]
    for r in records:
        route = r.scene.route
        assert route.distance_m > 0 and math.isfinite(route.duration_s)
        assert len(r.scene.greenwave.signals) == len(route.signals)
        assert not r.greenwave_active  # protection needs the 122 coordinator's ack
        unit = await stack.fleet.get_unit(r.unit_id)
        assert unit.status is UnitStatus.DISPATCHED and unit.incident_id == incident_id
    incident = await stack.assignments.incident(incident_id)
    assert incident.status.value == "dispatched"
    assert {a.unit_id for a in incident.assignments} == {"traffic_police_car-0", "fire_rescue-1"}
    types = [e.type for e in await stack.store.events_for_incident(incident_id)]
    assert types.count("assignment.created") == 2
    assert types.count("route.planned") == 2 and types.count("greenwave.planned") == 2
    with pytest.raises(ConflictError, match="dispatched"):
        await stack.assignments.assign(
            incident_id, AssignmentRequest(unit_ids=["fire_rescue-1"]), actor="x"
        )
    # The refused attempt changed nothing.
    assert len((await stack.assignments.incident(incident_id)).assignments) == 2


async def test_one_unit_raced_to_two_incidents_goes_to_one(
    stack: Stack, shanghai_router: Router
) -> None:
    await load_fleet(stack, shanghai_router)
    a = await open_incident(stack, n=1)
    stack.clock.advance(3)
    b_call = CallEvent(
        call_id="FAR",
        centre=Centre.FIRE,
        call_type=CallType.FIRE,
        lat=31.2205,
        lon=121.4457,
        received_at=stack.clock.now,
    )
    b = (await stack.joint.handle(b_call)).incident_id
    assert a != b
    results = await asyncio.gather(
        stack.assignments.assign(a, AssignmentRequest(unit_ids=["fire_engine-0"]), actor="x"),
        stack.assignments.assign(b, AssignmentRequest(unit_ids=["fire_engine-0"]), actor="y"),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, ConflictError)]
    assert len(ok) == 1 and len(refused) == 1, results
    unit = await stack.fleet.get_unit("fire_engine-0")
    holders = [
        i
        for i in (a, b)
        if any(
            x.unit_id == "fire_engine-0" for x in (await stack.assignments.incident(i)).assignments
        )
    ]
    assert holders == [unit.incident_id]


async def test_ambulance_gets_nearest_accepting_hospital_and_transport_leg(
    stack: Stack, shanghai_router: Router
) -> None:
    await load_fleet(stack, shanghai_router)
    near = node(shanghai_router, 2000)
    far = node(shanghai_router, 4000)
    closed = (SCENE[0] + 0.001, SCENE[1] + 0.001)
    await stack.fleet.put_hospitals(
        [
            Hospital(
                id="H-closed",
                name="Closest but diverting",
                lat=closed[0],
                lon=closed[1],
                accepting=False,
            ),
            Hospital(id="H-near", name="Near", lat=near[0], lon=near[1]),
            Hospital(id="H-far", name="Far", lat=far[0], lon=far[1]),
        ],
        actor="test",
    )
    incident_id = await open_incident(stack, "critical_patient")
    [record] = await stack.assignments.assign(
        incident_id, AssignmentRequest(unit_ids=["ambulance-0"]), actor="x"
    )
    assert record.hospital is not None and record.transport is not None
    times = shanghai_router.travel_times_from(SCENE, [near, far])
    expected = "H-near" if times.duration_s[0] <= times.duration_s[1] else "H-far"
    assert record.hospital.id == expected
    assert record.transport.route.destination.snap_distance_m < 500
    # The transport leg departs after the scene leg plus time on scene.
    assert record.transport.greenwave.departure > record.scene.greenwave.departure


async def test_enable_greenwave_activates_every_unit_now_and_later(
    stack: Stack, shanghai_router: Router
) -> None:
    await load_fleet(stack, shanghai_router)
    incident_id = await open_incident(stack)
    await stack.assignments.assign(
        incident_id, AssignmentRequest(unit_ids=["ambulance-1"]), actor="x"
    )
    assert await stack.assignments.enable_greenwave(incident_id, actor="disp-122") == 1
    [later] = await stack.assignments.assign(
        incident_id, AssignmentRequest(unit_ids=["fire_rescue-2"]), actor="x"
    )
    assert later.greenwave_active
    records = await stack.records.of_incident(await stack.assignments.incident(incident_id))
    assert all(isinstance(r, AssignmentRecord) and r.greenwave_active for r in records)


async def test_split_moves_a_wrongly_merged_call_out(stack: Stack, clock: FakeClock) -> None:
    first = await open_incident(stack, "traffic_accident", centre="122", n=1)
    clock.advance(30)
    second = CallEvent(
        call_id="T2",
        centre=Centre.EMS,
        call_type=CallType.CRITICAL_PATIENT,
        lat=SCENE[0] + 0.0005,
        lon=SCENE[1],
        received_at=clock.now,
    )
    assert (await stack.joint.handle(second)).incident_id == first
    original, new = await stack.joint.split(first, "120:T2", actor="disp-120")
    assert [c.key for c in original.calls] == ["122:T1"]
    assert [c.key for c in new.calls] == ["120:T2"]
    assert await stack.store.incident_for_call("120:T2") == new.id
    assert "ems" in new.agencies
    # The same call redelivered is still a duplicate, attached to its new incident.
    assert (await stack.joint.handle(second)).kind == "duplicate"
