"""``/api/kpis`` and ``/api/kpis.csv`` over the real service with its archive running: a
posted call is archived, its close makes a record, drills stay apart from real incidents."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.core.intervals import LoggedEvent, fold_incident
from dispatch.models import Agency, Role
from dispatch.records.archive import write_record
from dispatch.settings import Settings
from tests.utils import TEST_SECRET, ServerThread, recently, wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def token(role: Role, agency: Agency) -> dict[str, str]:
    jwt = mint(TEST_SECRET, role=role, agency=agency, sub="t", ttl_s=21_600)
    return {"Authorization": f"Bearer {jwt}"}


DISPATCHER = token(Role.DISPATCHER, Agency.FIRE)


@pytest.fixture
def server(settings: Settings, redis_url: str, database_url: str) -> Iterator[ServerThread]:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).flushdb()
    with_db = settings.model_copy(update={"database_url": database_url, "archive_trim_s": 0.1})
    with ServerThread(create_app(with_db)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def _record(
    n: int, *, exercise: bool, turnout_s: float, day: int = 0
) -> tuple[str, list[LoggedEvent]]:
    start = T0 + timedelta(days=day, minutes=n)
    call = {"call_id": f"c{n}", "centre": "119", "call_type": "fire",
            "received_at": start.isoformat(), "exercise": exercise}  # fmt: skip
    inc = {"calls": [call], "call_types": ["fire"], "lat": 31.2, "lon": 121.4, "agencies": ["fire"]}

    def at(s: float) -> datetime:
        return start + timedelta(seconds=s)

    return f"i{n}", [
        LoggedEvent("incident.created", at(0), "t", {"incident": inc, "call": call}),
        LoggedEvent("assignment.created", at(60), "t", {"unit_id": "F", "agency": "fire"}),
        LoggedEvent("unit.status", at(60 + turnout_s), "t", {"unit_id": "F", "status": "en_route"}),
        LoggedEvent("unit.status", at(400), "t", {"unit_id": "F", "status": "on_scene"}),
        LoggedEvent("whistle.sounded", at(10), "t", {}),
        LoggedEvent("whistle.closed", at(40), "t", {}),
        LoggedEvent("incident.closed", at(900), "t", {"incident": inc}),
    ]


async def _seed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for n, turnout in enumerate([50, 70, 90, 110]):
            incident_id, events = _record(n, exercise=False, turnout_s=turnout)
            await write_record(conn, fold_incident(incident_id, events), close_event_id="x")
        incident_id, events = _record(9, exercise=True, turnout_s=500)
        await write_record(conn, fold_incident(incident_id, events), close_event_id="x")


async def test_kpis_real_only_by_default_and_as_csv(
    server: ServerThread, pool: asyncpg.Pool
) -> None:
    await _seed(pool)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.get("/api/kpis", headers=DISPATCHER)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["incidents"] == 4 and body["whistles"]["count"] == 4
        fire = body["agencies"]["fire"]
        assert fire["turnout_s"] == {"n": 4, "median": 80.0, "p90": 104.0}
        assert fire["call_processing_s"]["median"] == 60.0
        assert fire["total_s"]["p90"] == 400.0
        assert body["whistles"]["call_to_whistle_s"]["median"] == 10.0
        assert body["trend"]["month"][0]["incidents"] == 4
        # The programme figures are there, empty for these timelines (no green wave, no team).
        assert body["greenwave"]["time_saved"]["responses"] == 0
        assert body["property"]["incidents"] == 0 and body["referrals"]["count"] == 0
        assert body["repeat_calls"] == {"calls": 0, "incidents": 0, "incident_rate_pct": 0.0,
                                        "call_rate_pct": 0.0}  # fmt: skip

        drills = (await http.get("/api/kpis?exercise=true", headers=DISPATCHER)).json()
        assert drills["incidents"] == 1
        assert drills["agencies"]["fire"]["turnout_s"]["median"] == 500.0

        r = await http.get(
            "/api/kpis.csv",
            params={"group_by": "hour", "from": "2026-03-01T00:00:00+00:00"},
            headers=DISPATCHER,
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        turnout = next(x for x in rows if x["interval"] == "turnout_s")
        # 09:00 UTC is 17:00 in the service's zone (YISHAO_TIMEZONE, Asia/Shanghai).
        assert turnout["group"] == "17" and turnout["median_s"] == "80.0"
        saved = next(x for x in rows if x["interval"] == "time_saved_s")
        assert saved["group"] == "greenwave" and saved["n"] == "0" and saved["value"] == "0.0"
        assert {x["group"] for x in rows} >= {"property", "referrals", "repeat_calls"}

        empty = (await http.get("/api/kpis?agency=ems", headers=DISPATCHER)).json()
        assert empty["incidents"] == 0 and empty["agencies"] == {}

        bad = await http.get("/api/kpis?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
                             headers=DISPATCHER)  # fmt: skip
        assert bad.status_code == 422 and "to" in bad.text
        bad = await http.get("/api/kpis?group_by=colour", headers=DISPATCHER)
        assert bad.status_code == 422 and "group_by" in bad.text
        crew = await http.get("/api/kpis", headers=token(Role.TERMINAL, Agency.FIRE))
        assert crew.status_code == 403


async def test_the_running_service_archives_a_posted_drill_call(
    server: ServerThread, pool: asyncpg.Pool
) -> None:
    call = {"call_id": "d-1", "centre": "119", "call_type": "fire", "lat": 30.0495,
            "lon": 119.9601, "received_at": recently(), "exercise": True}  # fmt: skip
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.post("/api/calls", json=call, headers=DISPATCHER)
        assert r.status_code == 202, r.text

        async def archived() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM audit_events WHERE type = 'incident.created'"
            )
            return bool(n)

        await wait_for(archived, timeout_s=10)
        data = await pool.fetchval("SELECT data FROM audit_events WHERE type = 'incident.created'")
        assert '"exercise":true' in data

        (incident,) = (await http.get("/api/incidents", headers=DISPATCHER)).json()
        r = await http.post(
            f"/api/incidents/{incident['id']}/close", json={"reason": "drill over"},
            headers=DISPATCHER,
        )  # fmt: skip
        assert r.status_code == 200, r.text

        async def recorded() -> asyncpg.Record | None:
            return await pool.fetchrow("SELECT * FROM incident_records")

        record = await wait_for(recorded, timeout_s=10)
        assert record["incident_id"] == incident["id"] and record["exercise"] is True
        real = (await http.get("/api/kpis", headers=DISPATCHER)).json()
        assert real["incidents"] == 0
        drills = (await http.get("/api/kpis?exercise=true", headers=DISPATCHER)).json()
        assert drills["incidents"] == 1

        async def caught_up() -> bool:
            health = (await http.get("/api/health")).json()
            return bool(health["archive_lag"] == 0)

        await wait_for(caught_up, timeout_s=10)


async def test_the_sql_figures_are_the_core_definitions(pool: asyncpg.Pool) -> None:
    from dispatch.core.kpis import grouped, interval_figures, trend
    from dispatch.records.kpis import KpiQuery, figures, kpi_rows

    async with pool.acquire() as conn:
        for n, turnout in enumerate([50, 70, 90, 110, 33, 71]):
            incident_id, events = _record(n, exercise=False, turnout_s=turnout, day=n * 9)
            await write_record(conn, fold_incident(incident_id, events), close_event_id="x")
    for group_by in ("agency", "type", "area", "hour"):
        q = KpiQuery(group_by=group_by)  # type: ignore[arg-type]
        rows = await kpi_rows(pool, q)
        out = await figures(pool, q)
        assert out["groups"] == grouped(rows, group_by)  # type: ignore[arg-type]
        assert out["intervals"] == interval_figures(rows)
    dated = [(r.first_call_at, r.total_s) for r in rows]
    assert out["trend"]["week"] == trend(dated, "week")
    assert out["trend"]["month"] == trend(dated, "month")


async def test_the_report_page_renders_tables_and_plots(
    server: ServerThread, pool: asyncpg.Pool
) -> None:
    await _seed(pool)
    jwt = mint(TEST_SECRET, role=Role.OBSERVER, agency=Agency.POLICE, sub="t", ttl_s=21_600)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.get("/kpis", params={"token": jwt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert "content-security-policy" in r.headers
        assert "4 real incidents" in r.text and r.text.count("<svg") == 2
        assert (await http.get("/kpis")).status_code == 401
        crew = mint(TEST_SECRET, role=Role.TERMINAL, agency=Agency.FIRE, sub="u", ttl_s=21_600)
        assert (await http.get("/kpis", params={"token": crew})).status_code == 403


async def test_drill_reports_are_kept_in_the_record(
    server: ServerThread, pool: asyncpg.Pool
) -> None:
    admin = token(Role.ADMIN, Agency.POLICE)
    body = {"summary": {"calls": 3}, "report": {"arrival_s": 412}, "html": "<p>drill</p>"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.put("/api/reports/drill-7", json=body, headers=admin)
        assert r.status_code == 200, r.text
        assert (await http.get("/api/reports/drill-7", headers=admin)).json() == body["report"]
    row = await pool.fetchrow("SELECT * FROM drill_reports")
    assert row is not None and row["drill_id"] == "drill-7" and row["html"] == "<p>drill</p>"
    assert '"arrival_s": 412' in row["report"]


async def test_hours_weeks_and_months_are_the_districts(pool: asyncpg.Pool) -> None:
    """A call at 23:30 UTC on 31 May is 07:30 on 1 June in Fuyang: the figures count it in
    hour 07, in June and in the week of 1 June when the district's zone is Asia/Shanghai,
    and the SQL agrees with the core's definitions in every zone: UTC (0002's columns), the
    zone the database was migrated in (0004's) and another one (computed per row)."""
    from zoneinfo import ZoneInfo

    from dispatch.core.kpis import grouped, trend
    from dispatch.records.kpis import KpiQuery, figures, kpi_rows

    async with pool.acquire() as conn:
        for n in range(4):
            incident_id, events = _record(n, exercise=False, turnout_s=40 + n, day=n * 9)
            await write_record(conn, fold_incident(incident_id, events), close_event_id="x")
        late = datetime(2026, 5, 31, 23, 30, tzinfo=UTC)
        await conn.execute(
            "UPDATE incident_records SET first_call_at = $1 WHERE incident_id = 'i0'", late
        )
        await conn.execute(
            "UPDATE incident_agency_intervals SET first_call_at = $1 WHERE incident_id = 'i0'",
            late,
        )
    from dispatch.records.kpis import stored_timezone

    assert await stored_timezone(pool) == "Asia/Shanghai"  # tests/conftest.py's upgrade
    for zone in ("UTC", "Asia/Shanghai", "America/New_York"):
        q = KpiQuery(group_by="hour", timezone=zone)
        out = await figures(pool, q)
        rows = await kpi_rows(pool, q)
        assert out["timezone"] == zone
        assert out["groups"] == grouped(rows, "hour", ZoneInfo(zone))
        dated = [(r.first_call_at, r.total_s) for r in rows]
        assert out["trend"]["month"] == trend(dated, "month", ZoneInfo(zone))
        assert out["trend"]["week"] == trend(dated, "week", ZoneInfo(zone))
    utc = await figures(pool, KpiQuery(group_by="hour"))
    local = await figures(pool, KpiQuery(group_by="hour", timezone="Asia/Shanghai"))
    assert "23" in utc["groups"] and "07" in local["groups"] and "23" not in local["groups"]
    assert "2026-05-01" in {m["period"] for m in utc["trend"]["month"]}
    assert "2026-06-01" in {m["period"] for m in local["trend"]["month"]}
    assert "2026-05-25" in {w["period"] for w in utc["trend"]["week"]}
    assert "2026-06-01" in {w["period"] for w in local["trend"]["week"]}
    new_york = await figures(pool, KpiQuery(group_by="hour", timezone="America/New_York"))
    assert "19" in new_york["groups"]  # 23:30 UTC is 19:30 EDT


async def test_the_stored_zone_is_read_once_a_pool(pool: asyncpg.Pool, database_url: str) -> None:
    """figures() reads ``record_settings`` once per pool, not once per query; a pool of its own
    (another database, or this one migrated again) reads it afresh."""
    from dispatch.records import db
    from dispatch.records.kpis import KpiQuery, cached_timezone, figures

    await figures(pool, KpiQuery(group_by="hour", timezone="Asia/Shanghai"))
    update = "UPDATE record_settings SET value = $1 WHERE key = 'timezone'"
    try:
        await pool.execute(update, "America/New_York")
        assert await cached_timezone(pool) == "Asia/Shanghai"  # as the first figures read it
        fresh = await db.open_pool(database_url)
        try:
            assert await cached_timezone(fresh) == "America/New_York"
        finally:
            await fresh.close()
    finally:
        await pool.execute(update, "Asia/Shanghai")
