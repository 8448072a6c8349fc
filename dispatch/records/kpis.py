"""The figures' queries: rows out of PostgreSQL, figures by :mod:`dispatch.core.kpis`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from dispatch.core.kpis import (
    GroupBy,
    KpiRow,
    WhistleRow,
    greenwave_figures,
    grouped,
    interval_figures,
    trend,
    whistle_figures,
)
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
    where, args = q.where(agency_column=True)
    sql = (
        "SELECT incident_id, agency, call_type, area, first_call_at, call_processing_s,"
        f" turnout_s, travel_s, total_s FROM incident_agency_intervals WHERE {where}"
    )
    found = await guarded("kpi rows", pool.fetch(sql, *args))
    return [KpiRow(**dict(r)) for r in found]


async def figures(pool: asyncpg.Pool, q: KpiQuery) -> dict[str, Any]:
    """The JSON of ``GET /api/kpis``: incidents, per-agency intervals, whistles, green wave,
    a grouping when asked, and weekly and monthly trends with year-over-year change."""
    rows = await kpi_rows(pool, q)
    where, args = q.where(agency_column=False)
    incidents = await guarded(
        "kpi incidents",
        pool.fetch(
            "SELECT incident_id, first_call_at, total_s, whistle_sounded_at, whistle_all_acked_at,"
            f" whistle_escalations, greenwave FROM incident_records WHERE {where}",
            *args,
        ),
    )
    whistles = [
        WhistleRow(
            incident_id=r["incident_id"],
            first_call_at=r["first_call_at"],
            sounded_at=r["whistle_sounded_at"],
            all_acked_at=r["whistle_all_acked_at"],
            escalations=int(r["whistle_escalations"] or 0),
        )
        for r in incidents
        if r["whistle_sounded_at"] is not None and r["first_call_at"] is not None
    ]
    dated = [(r["first_call_at"], r["total_s"]) for r in incidents if r["first_call_at"]]
    out: dict[str, Any] = {
        "exercise": q.exercise,
        "from": None if q.start is None else q.start.isoformat(),
        "to": None if q.end is None else q.end.isoformat(),
        "incidents": len(incidents),
        "intervals": interval_figures(rows),
        "agencies": grouped(rows, "agency"),
        "whistles": whistle_figures(whistles),
        "greenwave": greenwave_figures(orjson.loads(r["greenwave"]) for r in incidents),
        "trend": {"week": trend(dated, "week"), "month": trend(dated, "month")},
    }
    if q.group_by is not None:
        out["group_by"] = q.group_by
        out["groups"] = grouped(rows, q.group_by)
    return out


CSV_COLUMNS = ("group", "incidents", "interval", "n", "median_s", "p90_s")


def csv_rows(fig: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per group and interval (the grouping asked for, else by agency)."""
    groups: dict[str, Any] = fig.get("groups") or fig["agencies"]
    out: list[tuple[Any, ...]] = []
    for name, g in groups.items():
        for interval, v in g.items():
            if isinstance(v, dict):
                out.append((name, g["incidents"], interval, v["n"], v["median"], v["p90"]))
    return out
