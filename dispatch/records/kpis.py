"""The figures' queries: rows out of PostgreSQL, figures by :mod:`dispatch.core.kpis`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dispatch.core.intervals import INTERVALS
from dispatch.core.kpis import GroupBy, KpiRow, Period, percentile, year_over_year
from dispatch.core.referrals import DISPUTE_TYPES, DisputeTopic, ReferralStatus
from dispatch.records.db import guarded


@dataclass(frozen=True)
class KpiQuery:
    """What to count: first calls in ``[start, end)``, optionally one agency or call type."""

    start: datetime | None = None
    end: datetime | None = None
    agency: str | None = None
    call_type: str | None = None
    area: str | None = None
    exercise: bool = False
    group_by: GroupBy | None = None
    # What "overdue" counts against (a referral open past its due time): the clock's now.
    now: datetime | None = None
    # The district's clock (an IANA zone): hours of the day, weeks and months are its own.
    timezone: str = "UTC"

    def where(self, *, agency_column: bool) -> tuple[str, list[Any]]:
        clauses: list[str] = ["exercise = $1"]
        args: list[Any] = [self.exercise]
        for column, value in (
            ("first_call_at >= ", self.start),
            ("first_call_at < ", self.end),
            ("call_type = ", self.call_type),
            ("area = ", self.area),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column}${len(args)}")
        if self.agency is not None:
            args.append(self.agency)
            clauses.append(
                f"agency = ${len(args)}" if agency_column else f"${len(args)} = ANY(agencies)"
            )
        return " AND ".join(clauses), args


async def kpi_rows(pool: asyncpg.Pool, q: KpiQuery) -> list[KpiRow]:
    """The per-agency rows themselves (what :mod:`dispatch.core.kpis` defines figures on)."""
    where, args = q.where(agency_column=True)
    sql = (
        "SELECT incident_id, agency, call_type, area, first_call_at, call_processing_s,"
        f" turnout_s, travel_s, total_s FROM incident_agency_intervals WHERE {where}"
    )
    found = await guarded("kpi rows", pool.fetch(sql, *args))
    return [KpiRow(**dict(r)) for r in found]


# The figures of dispatch.core.kpis, computed where the rows are: percentile_cont is the
# same linear interpolation as core's percentile (tests hold the two to the same answers).
# Keys sort as bytes (COLLATE "C", as Python sorts str) and the hour is a stored smallint
# (migration 0002): sorting text under the database collation, and computing the hour per
# row, were most of a year's query grouped by hour. The hour, week and month are stored in UTC
# (0002) and in the zone the database was migrated in (0004, ``record_settings``); a query in
# any other zone (KpiQuery.timezone) computes them per row (``_local``).
_GROUP_SQL: dict[str, str] = {
    "agency": 'agency COLLATE "C"',
    "type": "COALESCE(call_type, 'unknown') COLLATE \"C\"",
    "area": "COALESCE(area, 'unknown') COLLATE \"C\"",
    "hour": "first_call_hour",
}
# Likewise stored (migration 0002): the week and month of the first call, and the
# greenwave jsonb's counts as integers (parsing the jsonb per row was a third of the head).
_PERIOD_SQL: dict[str, str] = {"week": "first_call_week", "month": "first_call_month"}
_GREENWAVE_SQL: dict[str, str] = {
    n: f"greenwave_{n}" for n in ("planned", "requests", "granted", "rejected")
}


# Sorting a year's rows for the percentiles wants more than the default 4 MB of work_mem.
WORK_MEM = "64MB"


def _pair(expr: str) -> str:
    """Median and p90 of ``expr`` with one sort."""
    return f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {expr})"


def _interval_columns() -> str:
    return ", ".join(f"count({n}) AS {n}_n, {_pair(n)} AS {n}_q" for n in INTERVALS)


def _q(value: list[float | None] | None) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    return _round(value[0]), _round(value[1])


def _figures_of(r: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {"incidents": int(r["incidents"])}
    for name in INTERVALS:
        median, p90 = _q(r[f"{name}_q"])
        out[name] = {"n": int(r[f"{name}_n"]), "median": median, "p90": p90}
    return out


async def _fetch(pool: asyncpg.Pool, what: str, sql: str, args: list[Any]) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            return list(await conn.fetch(sql, *args))

    return await guarded(what, run())


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


async def _overall(pool: asyncpg.Pool, q: KpiQuery) -> dict[str, Any]:
    """The intervals of each incident's first unit, whatever its agency (one agency asked
    for: that agency's first unit)."""
    if q.agency is not None:
        return await _grouped(pool, q, None)
    where, args = q.where(agency_column=False)
    sql = f"SELECT 0 AS incidents, {_interval_columns()} FROM incident_records WHERE {where}"
    found = await _fetch(pool, "kpi intervals", sql, args)
    return {k: v for k, v in _figures_of(found[0]).items() if k != "incidents"}


def _local(
    q: KpiQuery, args: list[Any], stored: str | None, columns: tuple[str, str], expr: str
) -> str:
    """The stored column in the query's zone (``columns``: UTC's, migration 0002; the zone
    of ``record_settings``', ``stored``, migration 0004), or else ``expr`` over
    ``first_call_at`` per row (``{at}`` stands for the local timestamp; the zone travels as a
    parameter)."""
    if q.timezone == "UTC":
        return columns[0]
    if q.timezone == stored:
        return columns[1]
    args.append(q.timezone)
    return expr.format(at=f"(first_call_at AT TIME ZONE ${len(args)})")


async def _grouped(
    pool: asyncpg.Pool, q: KpiQuery, key: str | None, stored: str | None = None
) -> dict[str, Any]:
    where, args = q.where(agency_column=True)
    column = None if key is None else _GROUP_SQL[key]
    if key == "hour":
        hours = ("first_call_hour", "local_hour")
        column = _local(q, args, stored, hours, "EXTRACT(hour FROM {at})::smallint")
    group = "" if column is None else f"{column} AS g,"
    tail = "" if key is None else " GROUP BY g ORDER BY g"
    # One row per incident and agency: within an agency, rows are incidents.
    distinct = 'count(DISTINCT incident_id COLLATE "C")'
    incidents = {None: "0", "agency": "count(*)"}.get(key, distinct)
    sql = (
        f"SELECT {group} {incidents} AS incidents, {_interval_columns()}"
        f" FROM incident_agency_intervals WHERE {where}{tail}"
    )
    found = await _fetch(pool, "kpi intervals", sql, args)
    if key is None:
        return {k: v for k, v in _figures_of(found[0]).items() if k != "incidents"}
    return {_label(r["g"]): _figures_of(r) for r in found}


def _label(g: object) -> str:
    return f"{g:02d}" if isinstance(g, int) else str(g)


async def _trend(
    pool: asyncpg.Pool, q: KpiQuery, period: Period, stored: str | None
) -> list[dict[str, Any]]:
    where, args = q.where(agency_column=False)
    columns = (_PERIOD_SQL[period], f"local_{period}")
    start = _local(q, args, stored, columns, f"date_trunc('{period}', {{at}})::date")
    sql = (
        f"SELECT {start} AS start,"
        " count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY total_s) AS median"
        f" FROM incident_records WHERE {where} AND first_call_at IS NOT NULL GROUP BY start"
    )
    found = await _fetch(pool, "kpi trend", sql, args)
    return year_over_year({r["start"]: (int(r["n"]), _round(r["median"])) for r in found}, period)


async def stored_timezone(pool: asyncpg.Pool) -> str | None:
    """The zone migration 0004 stored local hours, weeks and months in (read now)."""

    async def read() -> str | None:
        found = await pool.fetchval("SELECT value FROM record_settings WHERE key = 'timezone'")
        return None if found is None else str(found)

    return await guarded("kpi time zone", read())


# The stored zone, read once per pool: it changes only by migrating (0004, db.upgrade's
# timezone), which a service does not do under its running pool. Keyed on the pool itself,
# not on its URL: a scratch database migrated anew under the same name, in another zone, comes
# with a pool of its own and is read afresh. (asyncpg's pools take no weak references: closed
# ones are let go at the next pool's read.)
_STORED: dict[asyncpg.Pool, str | None] = {}


async def cached_timezone(pool: asyncpg.Pool) -> str | None:
    """:func:`stored_timezone` as ``pool`` first read it (a failed read is not kept)."""
    if pool not in _STORED:
        zone = await stored_timezone(pool)
        for closed in [p for p in _STORED if p.is_closing()]:
            del _STORED[closed]
        _STORED[pool] = zone
    return _STORED[pool]


async def figures(pool: asyncpg.Pool, q: KpiQuery) -> dict[str, Any]:
    """The JSON of ``GET /api/kpis``: incidents, per-agency intervals, whistles, green wave,
    a grouping when asked, and weekly and monthly trends with year-over-year change."""
    where, args = q.where(agency_column=False)
    to_whistle = "EXTRACT(EPOCH FROM whistle_sounded_at - first_call_at)"
    to_acked = "EXTRACT(EPOCH FROM whistle_all_acked_at - whistle_sounded_at)"
    gw = _GREENWAVE_SQL
    head_sql = (
        "SELECT count(*) AS incidents, count(whistle_sounded_at) AS whistles,"
        f" {_pair(to_whistle)} AS tw, {_pair(to_acked)} AS ta,"
        " count(whistle_all_acked_at) FILTER (WHERE whistle_sounded_at IS NOT NULL) AS acked,"
        " COALESCE(sum(whistle_escalations) FILTER (WHERE whistle_sounded_at IS NOT NULL), 0)"
        " AS escalations,"
        f" count(*) FILTER (WHERE {gw['planned']} > 0 OR {gw['requests']} > 0)"
        " AS gw_responses,"
        f" COALESCE(sum({gw['requests']}), 0) AS gw_requests,"
        f" COALESCE(sum({gw['granted']}), 0) AS gw_granted,"
        f" COALESCE(sum({gw['rejected']}), 0) AS gw_rejected,"
        f" {_PROGRAMME_SQL}"
        f" FROM incident_records WHERE {where}"
    )
    stored = await cached_timezone(pool)
    # Independent queries, each on a connection of its own (the pool has a few).
    (heads, overall, agencies, weeks, months, groups), referrals = await asyncio.gather(
        asyncio.gather(
            _fetch(pool, "kpi incidents", head_sql, args),
            _overall(pool, q),
            _grouped(pool, q, "agency"),
            _trend(pool, q, "week", stored),
            _trend(pool, q, "month", stored),
            _grouped(pool, q, q.group_by, stored)
            if q.group_by not in (None, "agency")
            else _none(),
        ),
        _referrals(pool, q),
    )
    head = heads[0]
    assert head is not None
    out: dict[str, Any] = {
        "exercise": q.exercise,
        "from": None if q.start is None else q.start.isoformat(),
        "to": None if q.end is None else q.end.isoformat(),
        "timezone": q.timezone,
        "incidents": int(head["incidents"]),
        "intervals": overall,
        "agencies": agencies,
        "whistles": {
            "count": int(head["whistles"]),
            "call_to_whistle_s": dict(zip(("median", "p90"), _q(head["tw"]), strict=True)),
            "whistle_to_all_acked_s": dict(zip(("median", "p90"), _q(head["ta"]), strict=True)),
            "all_acked": int(head["acked"]),
            "escalations": int(head["escalations"]),
        },
        "greenwave": {
            "responses": int(head["gw_responses"]),
            "requests": int(head["gw_requests"]),
            "granted": int(head["gw_granted"]),
            "rejected": int(head["gw_rejected"]),
            "time_saved": {
                "responses": int(head["gw_saved_n"]),
                **_median_p90(head["gw_saved_q"]),
                "total_s": _round(head["gw_saved_total"]) or 0.0,
            },
        },
        "property": _property_of(head),
        "referrals": referrals,
        "repeat_calls": _repeats_of(head),
        "trend": {"week": weeks, "month": months},
    }
    if q.group_by is not None:
        out["group_by"] = q.group_by
        out["groups"] = agencies if q.group_by == "agency" else groups
    return out


# Green wave, property team and repeat calls: columns of incident_records (migration 0003),
# counted in the head query's one scan. Each percentile sorts only its non-null rows.
def _pair_of(column: str) -> str:
    return f"{_pair(column)} FILTER (WHERE {column} IS NOT NULL)"


_PROGRAMME_SQL = ", ".join(
    (
        "count(greenwave_saved_s) AS gw_saved_n",
        f"{_pair_of('greenwave_saved_s')} AS gw_saved_q",
        "sum(greenwave_saved_s) AS gw_saved_total",
        "count(property_joined_at) AS pt_joined",
        "count(*) FILTER (WHERE in_compound) AS pt_in_compound",
        "count(*) FILTER (WHERE property_automatic) AS pt_automatic",
        "count(*) FILTER (WHERE property_status = 'closed') AS pt_closed",
        "count(*) FILTER (WHERE property_status = 'released') AS pt_released",
        "count(property_join_to_answer_s) AS pt_answer_n",
        f"{_pair_of('property_join_to_answer_s')} AS pt_answer_q",
        "count(property_join_to_contact_s) AS pt_contact_n",
        f"{_pair_of('property_join_to_contact_s')} AS pt_contact_q",
        "count(*) FILTER (WHERE repeat_calls > 0) AS rc_incidents",
        "COALESCE(sum(repeat_calls), 0) AS rc_calls",
        "COALESCE(sum(call_count), 0) AS rc_all_calls",
    )
)


def _median_p90(value: list[float | None] | None) -> dict[str, float | None]:
    median, p90 = _q(value)
    return {"median_s": median, "p90_s": p90}


def _share(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 2)


def _property_of(head: asyncpg.Record) -> dict[str, Any]:
    joined, incidents = int(head["pt_joined"]), int(head["incidents"])
    in_compound = int(head["pt_in_compound"])
    return {
        "incidents": joined,
        "share_pct": _share(joined, incidents),
        "in_compound": in_compound,
        "share_of_compound_pct": _share(joined, in_compound),
        "automatic": int(head["pt_automatic"]),
        "closed_by_team": int(head["pt_closed"]),
        "released": int(head["pt_released"]),
        "join_to_answer_s": {"n": int(head["pt_answer_n"]), **_median_p90(head["pt_answer_q"])},
        "join_to_arrival_s": {
            "n": int(head["pt_contact_n"]),
            **_median_p90(head["pt_contact_q"]),
        },
    }


def _repeats_of(head: asyncpg.Record) -> dict[str, Any]:
    incidents, calls = int(head["rc_incidents"]), int(head["rc_calls"])
    return {
        "calls": calls,
        "incidents": incidents,
        "incident_rate_pct": _share(incidents, int(head["incidents"])),
        "call_rate_pct": _share(calls, int(head["rc_all_calls"])),
    }


REFERRAL_STATUSES = tuple(s.value for s in ReferralStatus)
REFERRAL_TOPICS = tuple(t.value for t in DisputeTopic)
REFERRAL_CALL_TYPES = tuple(sorted(t.value for t in DISPUTE_TYPES))


async def _referrals(pool: asyncpg.Pool, q: KpiQuery) -> dict[str, Any]:
    """Referrals made in ``[from, to)`` (drills apart), from their latest state; ``type``
    keeps those of that call type, the other filters do not apply to referrals."""
    clauses: list[str] = ["exercise = $1"]
    args: list[Any] = [q.exercise]
    for column, value in (("referred_at >= ", q.start), ("referred_at < ", q.end)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column}${len(args)}")
    if q.call_type is not None:
        args.append(q.call_type)
        clauses.append(f"${len(args)} = ANY(call_types)")
    args.append(q.now or datetime.now(UTC))
    now = f"${len(args)}"
    closed = "EXTRACT(EPOCH FROM closed_at - referred_at)"
    sql = (
        "SELECT status, topic, call_types, count(*) AS n,"
        f" count(*) FILTER (WHERE closed_at IS NULL AND due_at < {now}) AS overdue,"
        " COALESCE(sum(repeat_calls), 0) AS repeats,"
        " count(*) FILTER (WHERE repeat_calls > 0) AS with_repeats,"
        f" array_agg({closed}) FILTER (WHERE closed_at IS NOT NULL) AS closed_s"
        f" FROM referral_records WHERE {' AND '.join(clauses)}"
        " GROUP BY status, topic, call_types"
    )
    found = await _fetch(pool, "kpi referrals", sql, args)
    by_status = dict.fromkeys(REFERRAL_STATUSES, 0)
    by_topic = dict.fromkeys(REFERRAL_TOPICS, 0)
    by_call_type = dict.fromkeys(REFERRAL_CALL_TYPES, 0)
    closed_s: list[float] = []
    total = overdue = repeats = with_repeats = 0
    for r in found:
        n = int(r["n"])
        total += n
        by_status[r["status"]] = by_status.get(r["status"], 0) + n
        by_topic[r["topic"]] = by_topic.get(r["topic"], 0) + n
        for t in r["call_types"]:
            by_call_type[t] = by_call_type.get(t, 0) + n
        overdue += int(r["overdue"])
        repeats += int(r["repeats"])
        with_repeats += int(r["with_repeats"])
        closed_s.extend(float(v) for v in r["closed_s"] or [])
    return {
        "count": total,
        "by_topic": by_topic,
        "by_call_type": by_call_type,
        "by_status": by_status,
        "open": total - by_status["resolved"] - by_status["failed"],
        "overdue": overdue,
        "time_to_close_s": {
            "n": len(closed_s),
            "median_s": percentile(closed_s, 0.5),
            "p90_s": percentile(closed_s, 0.9),
        },
        "repeat_calls": repeats,
        "with_repeat_calls": with_repeats,
        "with_repeat_calls_pct": _share(with_repeats, total),
    }


async def _none() -> dict[str, Any]:
    return {}


CSV_COLUMNS = ("group", "incidents", "interval", "n", "median_s", "p90_s", "value")


def csv_rows(fig: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per group (the grouping asked for, else by agency) and interval; then the
    programme figures, one row each: ``group`` names the section (greenwave, property,
    referrals, repeat_calls), ``interval`` the figure, ``n`` its count, ``median_s`` and
    ``p90_s`` its times, ``value`` a total or a share (%)."""
    groups: dict[str, Any] = fig.get("groups") or fig["agencies"]
    out: list[tuple[Any, ...]] = []
    for name, g in groups.items():
        for interval, v in g.items():
            if isinstance(v, dict):
                out.append((name, g["incidents"], interval, v["n"], v["median"], v["p90"], None))
    return out + programme_rows(fig)


def programme_rows(fig: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The green-wave, property, referral and repeat-call rows of :func:`csv_rows`."""
    n = fig["incidents"]
    gw, saved = fig["greenwave"], fig["greenwave"]["time_saved"]
    pt, rf, rc = fig["property"], fig["referrals"], fig["repeat_calls"]
    rows: list[tuple[Any, ...]] = [
        ("greenwave", n, "responses", gw["responses"], None, None, None),
        ("greenwave", n, "requests_granted", gw["granted"], None, None, gw["requests"]),
        ("greenwave", n, "time_saved_s", saved["responses"], saved["median_s"], saved["p90_s"],
         saved["total_s"]),
        ("property", n, "joined", pt["incidents"], None, None, pt["share_pct"]),
        ("property", n, "in_compound", pt["in_compound"], None, None, pt["share_of_compound_pct"]),
        ("property", n, "automatic", pt["automatic"], None, None, None),
        ("property", n, "closed_by_team", pt["closed_by_team"], None, None, None),
    ]  # fmt: skip
    for name in ("join_to_answer_s", "join_to_arrival_s"):
        v = pt[name]
        rows.append(("property", n, name, v["n"], v["median_s"], v["p90_s"], None))
    rows.append(("referrals", n, "count", rf["count"], None, None, None))
    for section in ("by_topic", "by_call_type", "by_status"):
        for key, count in rf[section].items():
            rows.append(("referrals", n, f"{section[3:]}:{key}", count, None, None, None))
    close = rf["time_to_close_s"]
    rows += [
        ("referrals", n, "overdue", rf["overdue"], None, None, None),
        ("referrals", n, "time_to_close_s", close["n"], close["median_s"], close["p90_s"], None),
        ("referrals", n, "with_repeat_calls", rf["with_repeat_calls"], None, None,
         rf["with_repeat_calls_pct"]),
        ("repeat_calls", n, "incidents", rc["incidents"], None, None, rc["incident_rate_pct"]),
        ("repeat_calls", n, "calls", rc["calls"], None, None, rc["call_rate_pct"]),
    ]  # fmt: skip
    return rows
