"""The whistle through Redis: rosters, summons, acks, escalation timers, auto whistle."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from dispatch.auth import Principal
from dispatch.core.rosters import RosterEntry, RotationRule
from dispatch.core.whistle import SummonsStatus
from dispatch.errors import ConflictError, ForbiddenError
from dispatch.flow.assign import AssignmentRequest
from dispatch.flow.fleet import FleetUnit
from dispatch.flow.reactor import Reactor
from dispatch.infra.store import Store
from dispatch.models import Agency, CallEvent, CallType, Centre, Role, UnitType
from routing import Router
from tests.conftest import FakeClock, Stack, make_stack

SCENE = (31.2304, 121.4737)
EMS_ROTATION = ["wang.120", "chen.120", "sun.120"]
EMS_TODAY = EMS_ROTATION[28 % 3]  # 28 days after the rule's start


def who(role: Role, agency: Agency, sub: str) -> Principal:
    return Principal(sub=sub, role=role, agency=agency, exp=0, iat=0)


async def roster(stack: Stack) -> None:
    day = date(2026, 11, 29)  # the fake clock's duty day (12:00 UTC is 20:00 in Shanghai)
    await stack.fleet.put_roster(
        [RosterEntry(date=day, agency=Agency.TRAFFIC, primary="li.122", backup="zhou.122")],
        [
            RotationRule(
                agency=Agency.EMS,
                names=["wang.120", "chen.120", "sun.120"],
                start=date(2026, 11, 1),
            ),
            RotationRule(
                agency=Agency.FIRE, names=["zhao.119", "qian.119"], start=date(2026, 11, 1)
            ),
        ],
        actor="test",
    )


async def drowning(stack: Stack, n: int = 1, call_type: str = "drowning") -> str:
    call = CallEvent(
        call_id=f"D{n}",
        centre=Centre.EMS,
        call_type=CallType(call_type),
        lat=SCENE[0],
        lon=SCENE[1],
        received_at=stack.clock.now,
    )
    return (await stack.joint.handle(call)).incident_id


async def summons_events(store: Store, incident_id: str) -> list[dict[str, object]]:
    return [
        e.data for e in await store.events_for_incident(incident_id) if e.type == "whistle.summons"
    ]


async def test_roster_rotates_daily_and_entries_win(stack: Stack) -> None:
    await roster(stack)
    day, duty = await stack.fleet.duty()
    assert day == date(2026, 11, 29)
    assert duty[Agency.TRAFFIC].primary == "li.122"
    assert duty[Agency.EMS].primary == EMS_TODAY
    _, tomorrow = await stack.fleet.duty(date(2026, 11, 30))
    assert tomorrow[Agency.EMS].primary == EMS_ROTATION[29 % 3]
    assert Agency.TRAFFIC not in tomorrow  # no entry, no rule: visible as missing


async def test_sound_summons_all_three_at_once(stack: Stack) -> None:
    await roster(stack)
    incident_id = await drowning(stack)
    whistle = await stack.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    assert {s.agency for s in whistle.summons} == {Agency.TRAFFIC, Agency.EMS, Agency.FIRE}
    assert {s.summoned_at for s in whistle.summons} == {stack.clock.now}
    events = await summons_events(stack.store, incident_id)
    assert len(events) == 3
    assert all(e["incident"]["id"] == incident_id for e in events)  # type: ignore[index]
    assert all(e["recommended"] is not None for e in events)  # units come with the summons
    incident = await stack.assignments.incident(incident_id)
    assert incident.whistle_id == whistle.id
    for s in whistle.summons:
        assert await stack.timers.due_at(f"whistle-ack:{s.id}") == pytest.approx(
            stack.clock.now.timestamp() + 30
        )


@pytest.mark.parametrize(
    ("role", "agency", "error"),
    [
        (Role.DISPATCHER, Agency.TRAFFIC, ForbiddenError),
        (Role.COORDINATOR, Agency.EMS, ForbiddenError),
        (Role.DISPATCHER, Agency.POLICE, ForbiddenError),
    ],
)
async def test_only_120_and_119_dispatchers_sound(
    stack: Stack, role: Role, agency: Agency, error: type[Exception]
) -> None:
    await roster(stack)
    incident_id = await drowning(stack)
    with pytest.raises(error):
        await stack.whistles.sound(incident_id, who(role, agency, "x"))


async def test_ineligible_needs_force_with_reason_and_never_twice(stack: Stack) -> None:
    await roster(stack)
    call = CallEvent(
        call_id="N1",
        centre=Centre.FIRE,
        call_type=CallType.NOISE,
        lat=SCENE[0],
        lon=SCENE[1],
        received_at=stack.clock.now,
    )
    incident_id = (await stack.joint.handle(call)).incident_id
    fire = who(Role.DISPATCHER, Agency.FIRE, "disp-119")
    with pytest.raises(ConflictError, match="not whistle-eligible"):
        await stack.whistles.sound(incident_id, fire)
    with pytest.raises(ConflictError, match="reason"):
        await stack.whistles.sound(incident_id, fire, forced=True)
    whistle = await stack.whistles.sound(
        incident_id, fire, forced=True, reason="gas smell reported"
    )
    assert whistle.forced
    with pytest.raises(ConflictError, match="already"):
        await stack.whistles.sound(incident_id, fire, forced=True, reason="again")


async def test_traffic_ack_turns_on_green_wave_for_every_unit(
    stack: Stack, shanghai_router: Router
) -> None:
    await roster(stack)
    lat, lon = (
        float(shanghai_router.graph.node_lat[500]),
        float(shanghai_router.graph.node_lon[500]),
    )
    await stack.fleet.put_unit(
        FleetUnit(id="A1", agency=Agency.EMS, type=UnitType.AMBULANCE, lat=lat, lon=lon), actor="t"
    )
    incident_id = await drowning(stack)
    await stack.assignments.assign(
        incident_id, AssignmentRequest(unit_ids=["A1"]), actor="disp-120"
    )
    whistle = await stack.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    stack.clock.advance(5)
    after_ems = await stack.whistles.ack(
        whistle.id,
        who(
            Role.COORDINATOR,
            Agency.EMS,
            "wang.120" if 28 % 3 == 0 else ["wang.120", "chen.120", "sun.120"][28 % 3],
        ),
    )
    assert after_ems.greenwave_enabled_at is None
    stack.clock.advance(3)
    after = await stack.whistles.ack(whistle.id, who(Role.COORDINATOR, Agency.TRAFFIC, "li.122"))
    assert after.greenwave_enabled_at == stack.clock.now
    [record] = await stack.records.of_incident(await stack.assignments.incident(incident_id))
    assert record.greenwave_active
    types = [e.type for e in await stack.store.events_for_incident(incident_id)]
    assert types.count("greenwave.enabled") == 1 and types.count("greenwave.activated") == 1
    assert types.count("whistle.ack") == 2
    # A repeated ack changes nothing and emits nothing.
    n = len(types)
    await stack.whistles.ack(whistle.id, who(Role.COORDINATOR, Agency.TRAFFIC, "li.122"))
    assert len(await stack.store.events_for_incident(incident_id)) == n
    with pytest.raises(ConflictError):
        await stack.whistles.ack(whistle.id, who(Role.COORDINATOR, Agency.TRAFFIC, "stranger"))


async def test_silent_primary_escalates_to_backup_once_across_instances(
    store: Store, clock: FakeClock, shanghai_router: Router
) -> None:
    # Two service instances, one Redis: each has its own timer poller.
    a = make_stack(store, clock, shanghai_router)
    b = make_stack(store, clock, shanghai_router)
    await roster(a)
    incident_id = await drowning(a)
    whistle = await a.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    clock.advance(10)
    await a.whistles.ack(whistle.id, who(Role.COORDINATOR, Agency.TRAFFIC, "li.122"))
    clock.advance(19.9)
    assert await a.timers.fire_due() + await b.timers.fire_due() == 0  # not yet due
    clock.advance(0.1)  # exactly 30 s after sounding
    fired = await asyncio.gather(a.timers.fire_due(), b.timers.fire_due())
    assert sum(fired) == 2  # ems and fire primaries; traffic acked: its timer was cancelled
    current = await a.whistles.get(whistle.id)
    by_agency = {(s.agency, s.tier.value): s for s in current.summons}
    assert by_agency[(Agency.EMS, "primary")].status is SummonsStatus.ESCALATED
    assert by_agency[(Agency.EMS, "backup")].status is SummonsStatus.PENDING
    assert by_agency[(Agency.TRAFFIC, "primary")].status is SummonsStatus.ACKED
    events = [e for e in await store.events_for_incident(incident_id)]
    backups = [
        e for e in events if e.type == "whistle.summons" and e.data["summons"]["tier"] == "backup"
    ]
    assert len(backups) == 2
    alerts = [e for e in events if e.type == "whistle.alert"]
    assert len(alerts) == 2 and all(e.data["centre"] == "120" for e in alerts)
    # Firing again (late, or another instance) changes nothing.
    assert await a.timers.fire_due() + await b.timers.fire_due() == 0
    assert len(await store.events_for_incident(incident_id)) == len(events)


async def test_restart_mid_whistle_loses_no_timer(
    store: Store, clock: FakeClock, shanghai_router: Router
) -> None:
    first = make_stack(store, clock, shanghai_router)
    await roster(first)
    incident_id = await drowning(first)
    whistle = await first.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    del first  # the instance is gone; only Redis remembers
    clock.advance(31)
    second = make_stack(store, clock, shanghai_router)
    assert await second.timers.fire_due() == 3
    current = await second.whistles.get(whistle.id)
    assert sum(1 for s in current.summons if s.tier.value == "backup") == 3


async def test_a_claimed_timer_whose_instance_died_is_fired_after_its_lease(
    store: Store, clock: FakeClock, shanghai_router: Router
) -> None:
    a = make_stack(store, clock, shanghai_router)
    await roster(a)
    incident_id = await drowning(a)
    await a.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    clock.advance(30)

    async def die(timer_id: str, payload: dict[str, object]) -> None:
        raise RuntimeError("instance crashed mid-handling")

    a.timers.on("whistle.ack_deadline", die)
    assert await a.timers.fire_due() == 0  # claimed, handler failed: nothing committed
    b = make_stack(store, clock, shanghai_router)
    assert await b.timers.fire_due() == 0  # still leased to a
    clock.advance(6)  # lease (5 s in tests) has run out
    assert await b.timers.fire_due() == 3


async def test_reactor_recommends_and_sounds_automatically(
    stack: Stack, shanghai_router: Router
) -> None:
    await roster(stack)
    lat, lon = (
        float(shanghai_router.graph.node_lat[900]),
        float(shanghai_router.graph.node_lon[900]),
    )
    await stack.fleet.put_unit(
        FleetUnit(id="E1", agency=Agency.FIRE, type=UnitType.FIRE_RESCUE, lat=lat, lon=lon),
        actor="t",
    )
    reactor = Reactor(
        stack.store,
        stack.recommender,
        stack.whistles,
        consumer="r1",
        clock=stack.clock,
        auto_whistle=True,
    )
    await reactor.ensure_group()
    incident_id = await drowning(stack)
    quiet = await drowning(
        stack, n=2, call_type="critical_patient"
    )  # same place: merges, no second whistle
    assert quiet == incident_id
    while await reactor.step(block_ms=10):
        pass
    types = [e.type for e in await stack.store.events_for_incident(incident_id)]
    assert types.count("incident.recommended") == 2
    assert types.count("whistle.sounded") == 1
    whistle = await stack.whistles.get(f"W-{incident_id}")
    assert whistle.sounded_by == "auto:120"


async def test_auto_assign_sends_the_top_unit_of_every_agency(
    store: Store, clock: FakeClock, shanghai_router: Router
) -> None:
    stack = make_stack(store, clock, shanghai_router)
    stack.whistles.auto_assign = True
    await roster(stack)
    for n, (uid, agency, utype) in enumerate(
        [
            ("A1", Agency.EMS, UnitType.AMBULANCE),
            ("A2", Agency.EMS, UnitType.AMBULANCE),
            ("F1", Agency.FIRE, UnitType.FIRE_RESCUE),
            ("T1", Agency.TRAFFIC, UnitType.TRAFFIC_POLICE_CAR),
        ]
    ):
        node = 300 + 700 * n
        lat, lon = (
            float(shanghai_router.graph.node_lat[node]),
            float(shanghai_router.graph.node_lon[node]),
        )
        await stack.fleet.put_unit(
            FleetUnit(id=uid, agency=agency, type=utype, lat=lat, lon=lon), actor="t"
        )
    incident_id = await drowning(stack)
    recs = await stack.recommender.recommend(incident_id)
    await stack.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    incident = await stack.assignments.incident(incident_id)
    assigned = {a.unit_id for a in incident.assignments}
    expected = {a.suggested[0] for a in recs.agencies if a.suggested}
    assert assigned == expected and len(assigned) >= 2
    assert all(a.assigned_by == "auto:disp-120" for a in incident.assignments)


async def test_closing_an_incident_closes_its_whistle_and_stops_merging(stack: Stack) -> None:
    await roster(stack)
    incident_id = await drowning(stack)
    whistle = await stack.whistles.sound(incident_id, who(Role.DISPATCHER, Agency.EMS, "disp-120"))
    closed = await stack.assignments.close_incident(incident_id, actor="disp-120", reason="rescued")
    assert closed.status.value == "closed"
    await stack.whistles.close(whistle.id, actor="disp-120")
    assert (await stack.whistles.get(whistle.id)).closed_at is not None
    assert await stack.whistles.open_whistles() == []
    stack.clock.advance(60)
    assert await stack.timers.fire_due() == 0  # every pending ack timer was cancelled
    with pytest.raises(ConflictError, match="already closed"):
        await stack.assignments.close_incident(incident_id, actor="x", reason="again")
    # A new call at the same spot is a new emergency.
    assert await drowning(stack, n=2) != incident_id
    types = [e.type for e in await stack.store.events_for_incident(incident_id)]
    assert "incident.closed" in types and "whistle.closed" in types
