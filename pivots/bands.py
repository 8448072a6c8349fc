"""Planning bands: a calendar month, weekday or weekend, and an hour band of local time.

A post stands for one band: e.g. July, weekend, 18:00-24:00. Hour bands are given by their start
hours (default four six-hour shifts: 00, 06, 12, 18). Weekends are Saturday and Sunday; public
holidays are not modelled (a district that needs them can fold them into ``weekend`` upstream).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# The band vocabulary is the core's (the service reads plans without the planner).
from dispatch.core.pivot_plan import (
    DAY_KINDS,
    DEFAULT_HOUR_BANDS,
    DayKind,
    HourBands,
    band_of,
    month_key,
    parse_month,
    parse_offset,
)

__all__ = [
    "DAY_KINDS",
    "DEFAULT_HOUR_BANDS",
    "DayKind",
    "HourBands",
    "band_count",
    "band_hours",
    "band_id",
    "band_of",
    "band_parts",
    "hours_label",
    "month_index",
    "month_key",
    "month_of_index",
    "months_between",
    "parse_month",
    "parse_offset",
    "season_of",
    "sequence_of_months",
]


def month_index(year: int, month: int) -> int:
    """Months since year 0: consecutive months differ by one."""
    return year * 12 + month - 1


def month_of_index(index: int) -> tuple[int, int]:
    return index // 12, index % 12 + 1


def band_count(bands: HourBands) -> int:
    """Bands per month: day kinds x hour bands."""
    return len(DAY_KINDS) * len(bands)


def band_id(day_kind: DayKind, hour_band: int, bands: HourBands) -> int:
    return DAY_KINDS.index(day_kind) * len(bands) + hour_band


def band_parts(band: int, bands: HourBands) -> tuple[DayKind, int]:
    return DAY_KINDS[band // len(bands)], band % len(bands)


def band_hours(year: int, month: int, bands: HourBands) -> npt.NDArray[np.float64]:
    """Hours of each band (``band_id`` order) in a calendar month: the exposure of a rate."""
    days = calendar.monthrange(year, month)[1]
    weekend_days = sum(1 for d in range(1, days + 1) if calendar.weekday(year, month, d) >= 5)
    per_kind = {DayKind.WEEKDAY: days - weekend_days, DayKind.WEEKEND: weekend_days}
    out = np.zeros(band_count(bands), dtype=np.float64)
    for kind in DAY_KINDS:
        for k in range(len(bands)):
            a, b = bands.bounds(k)
            out[band_id(kind, k, bands)] = per_kind[kind] * (b - a)
    return out


def months_between(first: str, last: str) -> list[str]:
    """Every month key from ``first`` to ``last`` inclusive."""
    a, b = month_index(*parse_month(first)), month_index(*parse_month(last))
    if b < a:
        raise ValueError(f"month range {first}..{last} runs backwards")
    return [month_key(*month_of_index(i)) for i in range(a, b + 1)]


def season_of(month: int) -> str:
    """Meteorological season of a calendar month (northern hemisphere)."""
    return ("winter", "spring", "summer", "autumn")[(month % 12) // 3]


def hours_label(start: int, end: int) -> str:
    return f"{start:02d}:00-{end:02d}:00" if end < 24 else f"{start:02d}:00-24:00"


def sequence_of_months(months: Sequence[str]) -> list[int]:
    return [month_index(*parse_month(m)) for m in months]
