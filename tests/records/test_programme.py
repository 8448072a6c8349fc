"""Green-wave time saved, property-team, referral and repeat-call figures on hand-made
timelines: folded into the final record, archived through a real Redis into a real
PostgreSQL, and counted by ``figures()`` (JSON), the CSV rows and the report page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from dispatch.api._kpis_page import render
from dispatch.core.intervals import LoggedEvent, fold_incident
from dispatch.core.referrals import DisputeTopic, Referral, ReferralStatus, ReferralStep
from dispatch.events import ReferralChanged, ReferralRepeatCall
from dispatch.infra.store import Store
from dispatch.models import CallType, PropertyJoin
from dispatch.records.archive import Archiver
from dispatch.records.kpis import KpiQuery, csv_rows, figures
from tests.conftest import FakeClock

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _incident(n: int, *, call_type: str = "fire", compound: str | None = None,
              exercise: bool = False) -> dict[str, Any]:  # fmt: skip
    call = {"call_id": f"c{n}", "centre": "119", "call_type": call_type,
            "received_at": at(n * 1000).isoformat(), "exercise": exercise}  # fmt: skip
    return {"id": f"i{n}", "calls": [call], "call_types": [call_type], "lat": 31.2,
            "lon": 121.4, "agencies": ["fire"], "compound_id": compound}  # fmt: skip


def _unit(
    n: int, unit: str, *, planned_s: float, en_route: float, on_scene: float, active: bool
) -> list[tuple[float, str, dict[str, Any]]]:
    """A unit assigned at +60 s with a planned scene route of ``planned_s``."""
    b = n * 1000
    return [
        (b + 60, "assignment.created", {"unit_id": unit, "agency": "fire"}),
        (b + 60, "route.planned", {"unit_id": unit, "leg": "scene",
                                   "route": {"duration_s": planned_s}}),
        (b + 60, "greenwave.planned", {"unit_id": unit, "leg": "scene", "active": active}),
        (b + 60, "route.planned", {"unit_id": unit, "leg": "transport",
                                   "route": {"duration_s": 999.0}}),
        (b + 60, "greenwave.planned", {"unit_id": unit, "leg": "transport", "active": False}),
        # A re-route later does not change the planned no-priority ETA.
        (b + 100, "route.planned", {"unit_id": unit, "leg": "scene", "reason": "off route",
                                    "route": {"duration_s": 50.0}}),
        (b + en_route, "unit.status", {"unit_id": unit, "status": "en_route"}),
        (b + on_scene, "unit.status", {"unit_id": unit, "status": "on_scene"}),
    ]  # fmt: skip


def _join(n: int, joined: float, automatic: bool = False) -> PropertyJoin:
    return PropertyJoin(compound_id="C1", joined_at=at(n * 1000 + joined), joined_by="d",
                        automatic=automatic, updated_at=at(n * 1000 + joined))  # fmt: skip


def _referral(n: int, *, status: ReferralStatus, closed: float | None, topic: DisputeTopic,
              call_type: CallType, repeats: list[str] | None = None,
              version: int = 1) -> Referral:  # fmt: skip
    b = n * 1000
    steps = [ReferralStep(status=ReferralStatus.REFERRED, at=at(b + 300), by="d")]
    if closed is not None:
        steps.append(ReferralStep(status=status, at=at(b + closed), by="m"))
    return Referral(
        id=f"i{n}-R1", version=version, incident_id=f"i{n}", body="B1", topic=topic,
        consent=True, referred_by="d", referred_at=at(b + 300), due_at=at(b + 300 + 86_400),
        status=status, steps=steps, lat=31.2, lon=121.4, call_types=[call_type],
        repeat_calls=repeats or [],
    )  # fmt: skip


def _timelines() -> dict[str, list[tuple[float, str, dict[str, Any]]]]:
    """Five incidents:

    - i1: protected F1 (planned 300 s, travel 240 s: 60 s saved) and protected F2 later
      (planned 200, travel 250: -50 s); the incident's saving is F1's, first on scene.
    - i2: protected F3, planned 500 s, travel 380 s (120 s saved); property team joined by a
      dispatcher at +30 s, accepted at +90 s, on scene at +150 s, closed with an outcome.
    - i3: unprotected unit (no saving); in compound C1, team joined automatically at +10 s,
      never answered, released; a labour dispute referred, resolved after 2 days.
    - i4: a dispute referred (property management), still open and overdue at "now"; a
      repeat call lands on i5.
    - i5: a dispute, the repeat call's incident (two calls).
    """
    i1, i2 = _incident(1), _incident(2, compound="C1")
    i3 = _incident(3, call_type="labour_dispute", compound="C1")
    i4, i5 = _incident(4, call_type="dispute"), _incident(5, call_type="dispute")
    i5 = {**i5, "calls": [*i5["calls"], {**i5["calls"][0], "call_id": "c5b"}]}
    j2, j3 = _join(2, 30), _join(3, 10, automatic=True)
    r3 = _referral(3, status=ReferralStatus.RESOLVED, closed=300 + 2 * 86_400, version=4,
                   topic=DisputeTopic.LABOUR, call_type=CallType.LABOUR_DISPUTE)  # fmt: skip
    r3_old = r3.model_copy(update={"version": 2, "status": ReferralStatus.ACCEPTED})
    r4 = _referral(4, status=ReferralStatus.REFERRED, closed=None,
                   topic=DisputeTopic.PROPERTY_MANAGEMENT, call_type=CallType.DISPUTE)  # fmt: skip
    r4_linked = r4.model_copy(update={"version": 2, "repeat_calls": ["119:c5"]})
    out: dict[str, list[tuple[float, str, dict[str, Any]]]] = {}
    for n, inc in enumerate((i1, i2, i3, i4, i5), start=1):
        out[inc["id"]] = [(n * 1000, "incident.created", {"incident": inc,
                                                         "call": inc["calls"][0]})]  # fmt: skip
    out["i1"] += _unit(1, "F1", planned_s=300, en_route=90, on_scene=330, active=True)
    out["i1"] += _unit(1, "F2", planned_s=200, en_route=100, on_scene=350, active=True)
    out["i2"] += _unit(2, "F3", planned_s=500, en_route=70, on_scene=450, active=True)
    out["i2"] += [
        (2030, "property.joined", {"incident": i2, "join": j2.model_dump(mode="json")}),
        (2090, "property.status", {"incident": i2, "status": "accepted"}),
        (2150, "property.status", {"incident": i2, "status": "on_scene"}),
        (2200, "property.status", {"incident": i2, "status": "closed", "outcome": "ok"}),
    ]
    out["i3"] += _unit(3, "F4", planned_s=300, en_route=80, on_scene=300, active=False)
    out["i3"] += [
        (3010, "property.joined", {"incident": i3, "join": j3.model_dump(mode="json")}),
        (3400, "property.released", {"incident": i3, "join": j3.model_dump(mode="json")}),
        (3300, "referral.created",
         ReferralChanged(referral=r3.model_copy(update={"version": 1})).model_dump(mode="json")),
        (3300 + 2 * 86_400, "referral.updated",
         ReferralChanged(referral=r3).model_dump(mode="json")),
        # Redelivered older state: the newest version stays.
        (3300 + 2 * 86_400 + 1, "referral.updated",
         ReferralChanged(referral=r3_old).model_dump(mode="json")),
    ]  # fmt: skip
    out["i4"] += [
        (4300, "referral.created", ReferralChanged(referral=r4).model_dump(mode="json")),
        (5000, "referral.repeat_call",
         ReferralRepeatCall(referral=r4_linked, call_key="119:c5", incident_id="i5")
         .model_dump(mode="json")),
    ]  # fmt: skip
    for n, inc in enumerate((i1, i2, i3, i4, i5), start=1):
        out[inc["id"]].append((n * 1000 + 900, "incident.closed", {"incident": inc}))
    return out


def _events(timeline: list[tuple[float, str, dict[str, Any]]]) -> list[LoggedEvent]:
    return [LoggedEvent(kind, at(s), "t", data) for s, kind, data in sorted(timeline,
            key=lambda e: e[0])]  # fmt: skip


def test_fold_time_saved_and_the_property_team() -> None:
    tl = _timelines()
    i1 = fold_incident("i1", _events(tl["i1"]))
    assert i1.greenwave_saved_s == 60.0  # F1's 300 planned - 240 travel, first on scene
    assert {u["unit_id"]: u["saved_s"] for u in i1.greenwave_units} == {"F1": 60.0, "F2": -50.0}
    assert i1.greenwave["planned"] == 2  # the two active scene plans, not the transport legs
    assert i1.property_team is None and i1.compound_id is None
    i2 = fold_incident("i2", _events(tl["i2"]))
    assert i2.greenwave_saved_s == 120.0
    assert i2.property_team is not None and i2.property_team["status"] == "closed"
    assert i2.property_gap("join_to_answer_s") == 60.0
    assert i2.property_gap("join_to_contact_s") == 120.0
    i3 = fold_incident("i3", _events(tl["i3"]))
    assert i3.greenwave_saved_s is None and i3.greenwave["planned"] == 0
    assert i3.property_team is not None and i3.property_team["status"] == "released"
    assert i3.property_team["automatic"] and i3.property_gap("join_to_answer_s") is None
    assert i3.compound_id == "C1"


Logged = tuple[float, str, dict[str, Any], str]


def _merged() -> list[Logged]:
    """Every timeline's events, in time order, with their incident ids."""
    return sorted(
        ((s, kind, data, iid) for iid, tl in _timelines().items() for s, kind, data in tl),
        key=lambda e: e[0],
    )


async def _archive(
    store: Store, pool: asyncpg.Pool, clock: FakeClock, events: list[Logged]
) -> Archiver:
    """Log ``events`` through the store, then drain them through a real archiver."""
    for s, kind, data, incident_id in events:
        # A referral's events are its referred incident's, as the desk writes them.
        tx = store.tx()
        tx.raw_event(kind, data, actor="t", ts=at(s), incident_id=incident_id)
        await store.commit(tx)
    archiver = Archiver(store, pool, consumer="a", clock=clock, keep_s=0, batch=4, block_ms=20)
    await archiver.consumer.ensure_group()
    while await archiver.consumer.step(block_ms=20):
        pass
    return archiver


async def test_archived_programme_figures(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    archiver = await _archive(store, pool, clock, _merged())
    assert archiver.stats.records == 5

    now = at(4300 + 86_400 + 60)  # i4's referral is a minute past due
    fig = await figures(pool, KpiQuery(now=now))
    assert fig["incidents"] == 5
    saved = fig["greenwave"]["time_saved"]
    assert saved == {"responses": 2, "median_s": 90.0, "p90_s": 114.0, "total_s": 180.0}
    assert fig["greenwave"]["responses"] == 2
    assert fig["property"] == {
        "incidents": 2, "share_pct": 40.0, "in_compound": 2, "share_of_compound_pct": 100.0,
        "automatic": 1, "closed_by_team": 1, "released": 1,
        "join_to_answer_s": {"n": 1, "median_s": 60.0, "p90_s": 60.0},
        "join_to_arrival_s": {"n": 1, "median_s": 120.0, "p90_s": 120.0},
    }  # fmt: skip
    rf = fig["referrals"]
    assert rf["count"] == 2 and rf["overdue"] == 1 and rf["open"] == 1
    assert rf["by_status"]["resolved"] == 1 and rf["by_status"]["referred"] == 1
    assert rf["by_status"]["accepted"] == 0  # the redelivered older version lost
    assert rf["by_topic"]["labour"] == 1 and rf["by_topic"]["property_management"] == 1
    assert rf["by_call_type"] == {"dispute": 1, "labour_dispute": 1}
    assert rf["time_to_close_s"] == {"n": 1, "median_s": 172_800.0, "p90_s": 172_800.0}
    assert rf["repeat_calls"] == 1 and rf["with_repeat_calls_pct"] == 50.0
    assert fig["repeat_calls"] == {
        "calls": 1, "incidents": 1, "incident_rate_pct": 20.0, "call_rate_pct": 16.67
    }  # fmt: skip
    # Before the due time nothing is overdue; the window and the call type filter.
    assert (await figures(pool, KpiQuery(now=at(5000))))["referrals"]["overdue"] == 0
    labour = await figures(pool, KpiQuery(now=now, call_type="labour_dispute"))
    assert labour["referrals"]["count"] == 1 and labour["incidents"] == 1
    late = await figures(pool, KpiQuery(now=now, start=at(4000)))
    assert late["referrals"]["count"] == 1 and late["greenwave"]["time_saved"]["responses"] == 0
    drills = await figures(pool, KpiQuery(now=now, exercise=True))
    assert drills["referrals"]["count"] == 0 and drills["property"]["incidents"] == 0

    rows = {(r[0], r[2]): r for r in csv_rows(fig)}
    assert rows[("greenwave", "time_saved_s")][3:] == (2, 90.0, 114.0, 180.0)
    assert rows[("referrals", "status:resolved")][3] == 1
    assert rows[("repeat_calls", "incidents")][3:] == (1, None, None, 20.0)
    html = render(fig, title="t")
    assert 'id="programme"' in html and "time saved" in html and "join to arrival" in html


async def test_a_drill_referral_stays_with_the_drills(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    inc = _incident(7, call_type="dispute", exercise=True)
    r = _referral(7, status=ReferralStatus.REFERRED, closed=None, topic=DisputeTopic.OTHER,
                  call_type=CallType.DISPUTE)  # fmt: skip
    for s, kind, data in (
        (7000, "incident.created", {"incident": inc, "call": inc["calls"][0]}),
        (7300, "referral.created", ReferralChanged(referral=r).model_dump(mode="json")),
    ):
        tx = store.tx()
        tx.raw_event(kind, data, actor="t", ts=at(s), incident_id="i7")
        await store.commit(tx)
    archiver = Archiver(store, pool, consumer="a", clock=clock, keep_s=0, block_ms=20)
    await archiver.consumer.ensure_group()
    while await archiver.consumer.step(block_ms=20):
        pass
    assert (await figures(pool, KpiQuery(now=at(8000))))["referrals"]["count"] == 0
    drills = await figures(pool, KpiQuery(now=at(8000), exercise=True))
    assert drills["referrals"]["count"] == 1 and drills["referrals"]["overdue"] == 0


async def test_a_malformed_referral_event_is_audited_not_recorded(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    for data in ({"referral": {"id": "x-R1"}}, {"referral": "nonsense"}, {}):
        tx = store.tx()
        tx.raw_event("referral.updated", data, actor="t", ts=at(0), incident_id="x")
        await store.commit(tx)
    archiver = Archiver(store, pool, consumer="a", clock=clock, keep_s=0, block_ms=20)
    await archiver.consumer.ensure_group()
    while await archiver.consumer.step(block_ms=20):
        pass
    assert await pool.fetchval("SELECT count(*) FROM audit_events") == 3
    assert await pool.fetchval("SELECT count(*) FROM referral_records") == 0
    assert await archiver.lag() == 0


async def test_rebuild_gives_records_archived_before_0003_their_figures(
    store: Store, pool: asyncpg.Pool, clock: FakeClock, database_url: str
) -> None:
    """Records archived before migration 0003 hold its figures unknown: ``yishao db rebuild``
    folds them again from the audit chain and the figures come back, exactly; an incident
    whose creating event is gone keeps its record; a second rebuild changes nothing."""
    from dispatch.records.rebuild import rebuild
    from tests.records.test_restarts import invoke

    # i8's creating event was pruned: only its close is in the chain.
    pruned = (8900.0, "incident.closed", {"incident": _incident(8)}, "i8")
    await _archive(store, pool, clock, [*_merged(), pruned])
    now = at(4300 + 86_400 + 60)
    archived = await figures(pool, KpiQuery(now=now))
    assert archived["property"]["incidents"] == 2 and archived["referrals"]["count"] == 2
    i8 = await pool.fetchval("SELECT record FROM incident_records WHERE incident_id = 'i8'")

    # What a record written before 0003 holds (the migration's defaults).
    await pool.execute(
        "UPDATE incident_records SET greenwave_saved_s = NULL, repeat_calls = 0,"
        " in_compound = false, property_joined_at = NULL, property_automatic = NULL,"
        " property_status = NULL, property_join_to_answer_s = NULL,"
        " property_join_to_contact_s = NULL"
    )
    await pool.execute("TRUNCATE referral_records, repeat_calls")
    before = await figures(pool, KpiQuery(now=now))
    assert before["greenwave"]["time_saved"]["responses"] == 0
    assert before["property"]["incidents"] == 0 and before["referrals"]["count"] == 0
    assert before["repeat_calls"]["calls"] == 0

    env = {"YISHAO_DATABASE_URL": database_url}
    result = await invoke(["db", "rebuild"], env=env)
    assert result.exit_code == 0, result.output
    assert "rebuilt 5 incident records (1 kept" in result.output
    assert "replayed 5 referral events (0 unreadable)" in result.output
    assert await figures(pool, KpiQuery(now=now)) == archived
    assert await pool.fetchval("SELECT record FROM incident_records WHERE incident_id = 'i8'") == i8

    async with pool.acquire() as conn:
        again = await rebuild(conn)
    assert (again.incidents, again.kept, again.referral_events) == (5, 1, 5)
    assert await figures(pool, KpiQuery(now=now)) == archived
    assert await pool.fetchval("SELECT count(*) FROM repeat_calls") == 1


async def test_rebuild_without_a_database_is_one_line() -> None:
    from tests.records.test_restarts import invoke

    env = {"YISHAO_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    result = await invoke(["db", "rebuild"], env=env)
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: cannot connect to")
    assert len(result.output.strip().splitlines()) == 1
