"""The figures a command centre reports, over final incident records (pure functions).

Input rows are :class:`KpiRow` (one per incident and agency, from the records' tables);
outputs are plain dicts ready for JSON or CSV.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal

from dispatch.core.intervals import INTERVALS

GroupBy = Literal["agency", "type", "area", "hour"]
GROUPS: tuple[GroupBy, ...] = ("agency", "type", "area", "hour")
Period = Literal["week", "month"]
# The district's zone unless YISHAO_TIMEZONE says another (Fuyang's): the one place the live
# code takes it from (the settings' default, db.upgrade's, the duty day's, the console's
# strip). Migration 0004 keeps a literal of its own: a migration is frozen as it was written.
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class KpiRow:
    """One agency's part in one incident."""

    incident_id: str
    agency: str
    call_type: str | None
    area: str | None
    first_call_at: datetime
    call_processing_s: float | None
    turnout_s: float | None
    travel_s: float | None
    total_s: float | None


@dataclass(frozen=True)
class WhistleRow:
    incident_id: str
    first_call_at: datetime
    sounded_at: datetime
    all_acked_at: datetime | None
    escalations: int


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    value = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return round(value, 3)


def interval_figures(rows: Iterable[KpiRow]) -> dict[str, dict[str, float | int | None]]:
    """Count, median and 90th percentile of every interval over ``rows``."""
    found: dict[str, list[float]] = {name: [] for name in INTERVALS}
    for row in rows:
        for name in INTERVALS:
            value = getattr(row, name)
            if value is not None:
                found[name].append(value)
    return {
        name: {"n": len(v), "median": percentile(v, 0.5), "p90": percentile(v, 0.9)}
        for name, v in found.items()
    }


def _key(group_by: GroupBy, zone: tzinfo) -> Callable[[KpiRow], str]:
    if group_by == "agency":
        return lambda r: r.agency
    if group_by == "type":
        return lambda r: r.call_type or "unknown"
    if group_by == "area":
        return lambda r: r.area or "unknown"
    return lambda r: f"{r.first_call_at.astimezone(zone).hour:02d}"


def grouped(
    rows: Iterable[KpiRow], group_by: GroupBy, zone: tzinfo = UTC
) -> dict[str, dict[str, Any]]:
    """Interval figures per group (agency, call type, area cell or hour of the first call in
    ``zone``, the district's clock)."""
    key = _key(group_by, zone)
    groups: dict[str, list[KpiRow]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return {
        k: {"incidents": len({r.incident_id for r in g}), **interval_figures(g)}
        for k, g in sorted(groups.items())
    }


def whistle_figures(rows: Iterable[WhistleRow]) -> dict[str, Any]:
    """How many whistles, call-to-whistle and whistle-to-all-acked (median, p90), escalations."""
    rows = list(rows)
    to_whistle = [(r.sounded_at - r.first_call_at).total_seconds() for r in rows]
    to_acked = [
        (r.all_acked_at - r.sounded_at).total_seconds() for r in rows if r.all_acked_at is not None
    ]
    return {
        "count": len(rows),
        "call_to_whistle_s": {
            "median": percentile(to_whistle, 0.5),
            "p90": percentile(to_whistle, 0.9),
        },
        "whistle_to_all_acked_s": {
            "median": percentile(to_acked, 0.5),
            "p90": percentile(to_acked, 0.9),
        },
        "all_acked": len(to_acked),
        "escalations": sum(r.escalations for r in rows),
    }


def greenwave_figures(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Responses with a green wave, and signal requests granted and rejected, summed."""
    out = {"responses": 0, "requests": 0, "granted": 0, "rejected": 0}
    for c in counts:
        if c.get("planned", 0) or c.get("requests", 0):
            out["responses"] += 1
        for name in ("requests", "granted", "rejected"):
            out[name] += int(c.get(name, 0))
    return out


def period_start(day: date, period: Period) -> date:
    """The Monday of ``day``'s ISO week, or the first of its month."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _year_before(start: date, period: Period) -> date:
    if period == "month":
        return start.replace(year=start.year - 1)
    iso = start.isocalendar()
    try:
        return date.fromisocalendar(iso.year - 1, iso.week, 1)
    except ValueError:  # week 53 in a year that has none
        return date.fromisocalendar(iso.year - 1, 52, 1)


def trend(
    incidents: Iterable[tuple[datetime, float | None]], period: Period, zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Incidents and median total response per week or month, with the change against the
    same period a year before (None when that period has no data).

    Args:
        incidents: (first call time, total interval in seconds or None) per incident.
        zone: the district's clock: weeks and months begin at its midnight.
    """
    counts: dict[date, int] = defaultdict(int)
    totals: dict[date, list[float]] = defaultdict(list)
    for at, total_s in incidents:
        start = period_start(at.astimezone(zone).date(), period)
        counts[start] += 1
        if total_s is not None:
            totals[start].append(total_s)
    return year_over_year(
        {start: (counts[start], percentile(totals[start], 0.5)) for start in counts}, period
    )


def year_over_year(
    periods: dict[date, tuple[int, float | None]], period: Period
) -> list[dict[str, Any]]:
    """Periods (start: incidents, median total) in order, each with its change against the
    same period a year before (None when that period has no data)."""
    out: list[dict[str, Any]] = []
    for start in sorted(periods):
        n, median = periods[start]
        prior_n, prior_median = periods.get(_year_before(start, period), (None, None))
        out.append(
            {
                "period": start.isoformat(),
                "incidents": n,
                "median_total_s": median,
                "incidents_yoy_pct": _pct(n, prior_n),
                "median_total_yoy_pct": _pct(median, prior_median),
            }
        )
    return out


def _pct(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return round(100.0 * (now - before) / before, 1)
