"""Planning bands: a calendar month, weekday or weekend, and an hour band of local time.

A post stands for one band: e.g. July, weekend, 18:00-24:00. Hour bands are given by their start
hours (default four six-hour shifts: 00, 06, 12, 18). Weekends are Saturday and Sunday; public
holidays are not modelled (a district that needs them can fold them into ``weekend`` upstream).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from itertools import pairwise

import numpy as np
import numpy.typing as npt

DEFAULT_HOUR_BANDS: tuple[int, ...] = (0, 6, 12, 18)


class DayKind(StrEnum):
    WEEKDAY = "weekday"
    WEEKEND = "weekend"


DAY_KINDS: tuple[DayKind, ...] = (DayKind.WEEKDAY, DayKind.WEEKEND)


def parse_offset(text: str) -> timezone:
    """``+08:00`` -> a fixed-offset timezone (ValueError naming the text otherwise)."""
    try:
        sign = -1 if text.startswith("-") else 1
        hours, minutes = text.lstrip("+-").split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    except ValueError as exc:
        raise ValueError(f"bad UTC offset {text!r}, expected e.g. +08:00") from exc


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def parse_month(text: str) -> tuple[int, int]:
    """``2026-07`` -> ``(2026, 7)`` (ValueError naming the text otherwise)."""
    try:
        year_s, month_s = text.split("-")
        year, month = int(year_s), int(month_s)
    except ValueError as exc:
        raise ValueError(f"bad month {text!r}, expected YYYY-MM") from exc
    if not 1 <= month <= 12:
        raise ValueError(f"bad month {text!r}, expected YYYY-MM")
    return year, month


def month_index(year: int, month: int) -> int:
    """Months since year 0: consecutive months differ by one."""
    return year * 12 + month - 1


def month_of_index(index: int) -> tuple[int, int]:
    return index // 12, index % 12 + 1


@dataclass(frozen=True, slots=True)
class HourBands:
    """The day cut into bands by start hour; band ``k`` runs from ``starts[k]`` to the next."""

    starts: tuple[int, ...] = DEFAULT_HOUR_BANDS

    def __post_init__(self) -> None:
        s = self.starts
        if not s or s[0] != 0 or any(b <= a for a, b in pairwise(s)) or s[-1] > 23:
            raise ValueError(f"hour bands must start at 0 and rise within 0..23, got {list(s)}")

    def __len__(self) -> int:
        return len(self.starts)

    def bounds(self, k: int) -> tuple[int, int]:
        """``(start_hour, end_hour)`` of band ``k``; the last ends at 24."""
        end = self.starts[k + 1] if k + 1 < len(self.starts) else 24
        return self.starts[k], end

    def label(self, k: int) -> str:
        a, b = self.bounds(k)
        return f"{a:02d}-{b:02d}"

    def of_hours(self, hours: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Band index of each local hour 0..23."""
        out: npt.NDArray[np.int64] = (
            np.searchsorted(np.asarray(self.starts), hours, side="right") - 1
        ).astype(np.int64)
        return out

    def of_hour(self, hour: int) -> int:
        return int(self.of_hours(np.asarray([hour], dtype=np.int64))[0])


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


def band_of(t: datetime, tz: timezone, bands: HourBands) -> tuple[str, DayKind, int]:
    """``(month key, day kind, hour band)`` of an aware time, read in the plan's local time."""
    local = t.astimezone(tz)
    kind = DayKind.WEEKEND if local.weekday() >= 5 else DayKind.WEEKDAY
    return month_key(local.year, local.month), kind, bands.of_hour(local.hour)


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
