"""Every event the service writes is one of the declared types, with its declared payload.

A whole response runs through the real adapters and a real Redis (two calls merging, the
whistle, acks, an escalation, assignment with a hospital, the crew's statuses, signals,
close and release); then every entry of the event log is read back and validated against
``dispatch.events.PAYLOADS``.
"""

from __future__ import annotations

from dispatch.auth import Principal
from dispatch.events import PAYLOADS, EventType, parse_payload, payload_schemas
from dispatch.flow.assign import AssignmentRequest
from dispatch.flow.fleet import FleetUnit
from dispatch.models import (
    Agency,
    CallEvent,
    CallType,
    Centre,
    Hospital,
    Position,
    Role,
    UnitStatus,
    UnitType,
)
from routing import Router
from tests.conftest import Stack
from tests.dispatch.test_whistles import roster


def who(role: Role, agency: Agency, sub: str) -> Principal:
    return Principal(sub=sub, role=role, agency=agency, exp=0, iat=0)


async def test_a_whole_response_writes_only_declared_events(
    stack: Stack, shanghai_router: Router
) -> None:
    g = shanghai_router.graph
    scene = (float(g.node_lat[1200]), float(g.node_lon[1200]))
    await roster(stack)
    for n, (uid, agency, utype) in enumerate(
        [
            ("A1", Agency.EMS, UnitType.AMBULANCE),
            ("T1", Agency.TRAFFIC, UnitType.TRAFFIC_POLICE_CAR),
        ]
    ):
        node = 300 + 900 * n
        await stack.fleet.put_unit(
            FleetUnit(
                id=uid,
                agency=agency,
                type=utype,
                lat=float(g.node_lat[node]),
                lon=float(g.node_lon[node]),
            ),
            actor="t",
        )
    hospital = (float(g.node_lat[2500]), float(g.node_lon[2500]))
    await stack.fleet.put_hospitals(
        [Hospital(id="H1", name="No. 1", lat=hospital[0], lon=hospital[1])], actor="t"
    )
    first = CallEvent(
        call_id="X1",
        centre=Centre.TRAFFIC,
        call_type=CallType.TRAFFIC_ACCIDENT_ENTRAPMENT,
        lat=scene[0],
        lon=scene[1],
        received_at=stack.clock.now,
    )
    incident_id = (await stack.joint.handle(first)).incident_id
    second = first.model_copy(update={"call_id": "Y1", "centre": Centre.EMS, "severity": 4})
    assert (await stack.joint.handle(second)).incident_id == incident_id
    split_off = first.model_copy(update={"call_id": "Z1", "call_type": CallType.FIRE})
    assert (await stack.joint.handle(split_off)).incident_id == incident_id
    await stack.joint.split(incident_id, "122:Z1", actor="disp-122")
    whistle = await stack.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "d120"))
    await stack.whistles.ack(whistle.id, who(Role.COORDINATOR, Agency.TRAFFIC, "li.122"))
    stack.clock.advance(31)
    await stack.timers.fire_due()  # EMS and fire primaries escalate to their backups
    await stack.assignments.assign(
        incident_id, AssignmentRequest(unit_ids=["A1", "T1"]), actor="d120"
    )
    await stack.tracking.set_status("A1", UnitStatus.EN_ROUTE, actor="unit:A1")
    await stack.tracking.handle(
        "A1", Position(lat=scene[0], lon=scene[1], at=stack.clock.now, speed_kph=40)
    )
    await stack.tracking.set_status("A1", UnitStatus.ON_SCENE, actor="unit:A1")
    await stack.tracking.set_status("A1", UnitStatus.TRANSPORTING, actor="unit:A1")
    await stack.assignments.close_incident(incident_id, actor="d120", reason="done")
    await stack.whistles.close(whistle.id, actor="d120")

    seen: set[str] = set()
    for event in await stack.store.events_after("0", count=10_000):
        kind = EventType(event.type)  # an undeclared type raises here
        parse_payload(kind, event.data)
        seen.add(kind.value)
    expected = {
        "incident.created", "incident.merged", "incident.split", "incident.updated",
        "incident.closed", "whistle.sounded", "whistle.summons", "whistle.ack",
        "whistle.alert", "whistle.closed", "greenwave.enabled", "assignment.created",
        "assignment.released", "route.planned", "greenwave.planned", "greenwave.request",
        "greenwave.cancel", "unit.status", "unit.updated", "hospitals.updated", "roster.updated",
    }  # fmt: skip
    assert expected <= seen, expected - seen
    # The transporting ambulance was released by the close, the car that never moved too.
    units = {u.id: u for u in await stack.fleet.units()}
    assert units["A1"].status is UnitStatus.RETURNING and units["A1"].incident_id is None
    assert units["T1"].status is UnitStatus.AVAILABLE and units["T1"].incident_id is None
    assert await stack.records.get("A1") is None


def test_every_event_type_has_a_published_schema() -> None:
    schemas = payload_schemas()
    assert set(schemas) == {t.value for t in EventType} == {t.value for t in PAYLOADS}
    for schema in schemas.values():
        assert schema["type"] == "object" and schema["properties"]
