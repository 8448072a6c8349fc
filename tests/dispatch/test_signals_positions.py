"""Green-wave requests at intersections, live positions and terminal status, on real Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch.flow.assign import AssignmentRequest
from dispatch.flow.fleet import FleetUnit
from dispatch.flow.greenwave import SignalReport
from dispatch.models import Agency, CallEvent, CallType, Centre, Position, UnitStatus, UnitType
from routing import Route, Router
from routing.arbiter import SignalStatus
from routing.greenwave import (
    Approach,
    ApproachLabel,
    Requester,
    RequestType,
    SignalRequest,
    VehicleRole,
)
from tests.conftest import Stack

SCENE = (31.2304, 121.4737)


async def protected_unit(
    stack: Stack,
    router: Router,
    *,
    unit_id: str = "AMB-1",
    node: int = 1500,
    utype: UnitType = UnitType.AMBULANCE,
    agency: Agency = Agency.EMS,
    call_id: str = "C1",
) -> tuple[str, Route]:
    lat, lon = float(router.graph.node_lat[node]), float(router.graph.node_lon[node])
    await stack.fleet.put_unit(
        FleetUnit(id=unit_id, agency=agency, type=utype, lat=lat, lon=lon), actor="t"
    )
    call = CallEvent(
        call_id=call_id,
        centre=Centre.EMS,
        call_type=CallType.CRITICAL_PATIENT,
        lat=SCENE[0],
        lon=SCENE[1],
        received_at=stack.clock.now,
    )
    incident_id = (await stack.joint.handle(call)).incident_id
    await stack.assignments.enable_greenwave(incident_id, actor="disp-122")
    [record] = await stack.assignments.assign(
        incident_id, AssignmentRequest(unit_ids=[unit_id]), actor="x"
    )
    return incident_id, record.scene.route


async def gw_events(stack: Stack, incident_id: str, kind: str) -> list[dict[str, object]]:
    return [e.data for e in await stack.store.events_for_incident(incident_id) if e.type == kind]


async def test_protected_assignment_requests_every_signal_and_gets_grants(
    stack: Stack, shanghai_router: Router
) -> None:
    incident_id, route = await protected_unit(stack, shanghai_router)
    assert len(route.signals) >= 3, "pick a longer route for this test"
    requests = await gw_events(stack, incident_id, "greenwave.request")
    assert [r["intersection_id"] for r in requests] == list(
        dict.fromkeys(s.node_id for s in route.signals)
    )
    assert all(r["status"] == "granted" for r in requests)
    # The arbiter's snapshot of each intersection is in Redis.
    state = await stack.greenwave.state(route.signals[0].node_id)
    assert [d.status for d in state.decisions] == [SignalStatus.GRANTED]


async def test_positions_cancel_passed_signals_and_retime_ahead_sparingly(
    stack: Stack, shanghai_router: Router
) -> None:
    incident_id, route = await protected_unit(stack, shanghai_router)
    first, second = route.signals[0], route.signals[1]
    # At the second signal, having passed the first.
    at = stack.clock.now + timedelta(seconds=first.eta_s + 1)
    stack.clock.now = at
    fix = await stack.tracking.handle("AMB-1", Position(lat=second.lat, lon=second.lon, at=at))
    assert fix.eta_s is not None and fix.eta_s < route.duration_s
    cancels = await gw_events(stack, incident_id, "greenwave.cancel")
    assert first.node_id in [c["intersection_id"] for c in cancels]
    # A second fix a second later, at the same place: nothing ahead moved by >2 s, nothing sent.
    stack.clock.advance(1)
    before = len(await stack.store.events_for_incident(incident_id))
    fix2 = await stack.tracking.handle(
        "AMB-1", Position(lat=second.lat, lon=second.lon, at=stack.clock.now)
    )
    assert fix2.sent <= 1
    assert len(await stack.store.events_for_incident(incident_id)) - before <= 1


async def test_off_route_fix_reroutes(stack: Stack, shanghai_router: Router) -> None:
    incident_id, _route = await protected_unit(stack, shanghai_router)
    far = int(shanghai_router.graph.node_count // 3)
    lat, lon = (
        float(shanghai_router.graph.node_lat[far]),
        float(shanghai_router.graph.node_lon[far]),
    )
    fix = await stack.tracking.handle("AMB-1", Position(lat=lat, lon=lon, at=stack.clock.now))
    assert fix.rerouted
    planned = [e for e in await gw_events(stack, incident_id, "route.planned") if "reason" in e]
    assert planned and "off route" in str(planned[0]["reason"])


def request(
    unit: str,
    node: int,
    inbound: ApproachLabel,
    outbound: ApproachLabel,
    importance_role: VehicleRole,
    priority: int,
    start_s: float,
    stack: Stack,
) -> SignalRequest:
    eta = stack.clock.now + timedelta(seconds=start_s)
    return SignalRequest(
        request_id=f"x:{unit}:{node}",
        sequence=0,
        intersection_id=node,
        request_type=RequestType.REQUEST,
        inbound=Approach(bearing_deg=0, label=inbound),
        outbound=Approach(bearing_deg=0, label=outbound),
        eta=eta,
        arrive_from=eta - timedelta(seconds=3),
        arrive_to=eta + timedelta(seconds=5),
        hold_s=6,
        requester=Requester(
            agency="x", unit_id=unit, role=importance_role, incident_priority=priority
        ),
        importance=14
        - 2 * (priority - 1)
        - (0 if importance_role is VehicleRole.POLICE else -1)
        - 1,
        sent_at=stack.clock.now,
    )


async def test_conflicting_requests_at_one_intersection_are_never_both_granted(
    stack: Stack,
) -> None:
    node = 424242
    low = request(
        "police-1", node, ApproachLabel.S, ApproachLabel.N, VehicleRole.POLICE, 3, 30, stack
    )
    high = request(
        "amb-1", node, ApproachLabel.W, ApproachLabel.E, VehicleRole.AMBULANCE, 1, 31, stack
    )
    [d_low] = await stack.greenwave.submit([low], incident_id="I-a", actor="t")
    assert d_low.status is SignalStatus.GRANTED
    [d_high] = await stack.greenwave.submit([high], incident_id="I-b", actor="t")
    assert d_high.status is SignalStatus.GRANTED
    state = await stack.greenwave.state(node)
    by_id = {d.request.request_id: d for d in state.decisions}
    bumped = by_id[low.request_id]
    if bumped.status is SignalStatus.GRANTED:  # shifted after the ambulance plus clearance
        assert bumped.granted_from is not None and d_high.granted_to is not None
        assert bumped.granted_from >= d_high.granted_to
    else:
        assert bumped.status is SignalStatus.REJECTED
    # The police car's terminal and the consoles were told.
    events = [e for e in await stack.store.events_after("0") if e.type == "greenwave.status"]
    assert [e.data["request_id"] for e in events] == [low.request_id]


async def test_controller_reports_flow_back(stack: Stack, shanghai_router: Router) -> None:
    incident_id, route = await protected_unit(stack, shanghai_router)
    node = route.signals[0].node_id
    [req] = [
        r
        for r in await gw_events(stack, incident_id, "greenwave.request")
        if r["intersection_id"] == node
    ]
    final = await stack.greenwave.report(
        SignalReport(
            intersection_id=node, request_id=str(req["request_id"]), status=SignalStatus.SERVED
        ),
        actor="ctrl-1",
    )
    assert final.status is SignalStatus.SERVED
    statuses = [e for e in await stack.store.events_after("0") if e.type == "greenwave.status"]
    assert statuses[-1].data["status"] == "served" and statuses[-1].data["unit_id"] == "AMB-1"
    with pytest.raises(Exception, match="holds no request"):
        await stack.greenwave.report(
            SignalReport(intersection_id=node, request_id="nope", status=SignalStatus.SERVED),
            actor="c",
        )


async def test_a_controllers_rejection_is_final(stack: Stack) -> None:
    """A controller that could not serve a request safely is never overruled by a re-solve
    (another request arriving at the intersection used to re-grant it silently)."""
    node = 515151
    first = request(
        "amb-2", node, ApproachLabel.W, ApproachLabel.E, VehicleRole.AMBULANCE, 1, 30, stack
    )
    [granted] = await stack.greenwave.submit([first], incident_id="I-c", actor="t")
    assert granted.status is SignalStatus.GRANTED
    rejected = await stack.greenwave.report(
        SignalReport(
            intersection_id=node,
            request_id=first.request_id,
            status=SignalStatus.REJECTED,
            reason="pedestrian phase running",
        ),
        actor="ctrl-2",
    )
    assert rejected.status is SignalStatus.REJECTED
    other = request(
        "police-2", node, ApproachLabel.N, ApproachLabel.S, VehicleRole.POLICE, 3, 90, stack
    )
    await stack.greenwave.submit([other], incident_id="I-d", actor="t")
    state = await stack.greenwave.state(node)
    kept = next(d for d in state.decisions if d.request.request_id == first.request_id)
    assert kept.status is SignalStatus.REJECTED and kept.reason == "pedestrian phase running"


async def test_status_on_scene_cancels_and_transport_leg_takes_over(
    stack: Stack, shanghai_router: Router
) -> None:
    from dispatch.models import Hospital

    far = int(shanghai_router.graph.node_count // 2)
    await stack.fleet.put_hospitals(
        [
            Hospital(
                id="H1",
                name="Ruijin",
                lat=float(shanghai_router.graph.node_lat[far]),
                lon=float(shanghai_router.graph.node_lon[far]),
            )
        ],
        actor="t",
    )
    incident_id, route = await protected_unit(stack, shanghai_router)
    await stack.tracking.set_status("AMB-1", UnitStatus.EN_ROUTE, actor="unit:AMB-1")
    stack.clock.advance(route.duration_s)
    await stack.tracking.set_status("AMB-1", UnitStatus.ON_SCENE, actor="unit:AMB-1")
    incident = await stack.assignments.incident(incident_id)
    assert incident.status.value == "on_scene"
    cancels = await gw_events(stack, incident_id, "greenwave.cancel")
    assert {c["intersection_id"] for c in cancels} == {s.node_id for s in route.signals}
    stack.clock.advance(300)
    await stack.tracking.set_status("AMB-1", UnitStatus.TRANSPORTING, actor="unit:AMB-1")
    record = await stack.records.get("AMB-1")
    assert record is not None and record.active_leg == "transport" and record.transport is not None
    assert record.transport.greenwave.departure == stack.clock.now
    transport_nodes = {s.node_id for s in record.transport.route.signals}
    requested_after = [
        r
        for r in await gw_events(stack, incident_id, "greenwave.request")
        if r["intersection_id"] in transport_nodes
    ]
    assert len(requested_after) >= len(transport_nodes)
    await stack.tracking.set_status("AMB-1", UnitStatus.AVAILABLE, actor="unit:AMB-1")
    unit = await stack.fleet.get_unit("AMB-1")
    assert unit.status is UnitStatus.AVAILABLE and unit.incident_id is None
    assert await stack.records.get("AMB-1") is None
