"""The pivot-post plan (支点) as the service stores and serves it: bands and posts, and which
posts stand at a time.

``pivots`` (the planner) writes this model (``yishao pivots plan --out``); the service reads it
(``PUT /api/pivots/plan``) without importing the planner, which is why it lives in the core.
Pure: no I/O. Bands are a calendar month, weekday or weekend, and an hour band of local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from itertools import pairwise

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatch.models import Unit

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


def band_of(t: datetime, tz: timezone, bands: HourBands) -> tuple[str, DayKind, int]:
    """``(month key, day kind, hour band)`` of an aware time, read in the plan's local time."""
    local = t.astimezone(tz)
    kind = DayKind.WEEKEND if local.weekday() >= 5 else DayKind.WEEKDAY
    return month_key(local.year, local.month), kind, bands.of_hour(local.hour)


PLAN_VERSION = 1


class Change(StrEnum):
    """A post against the previous plan of the same band."""

    NEW = "new"
    KEPT = "kept"
    MOVED = "moved"
    RETIRED = "retired"


class PlanParams(BaseModel):
    """How a plan is made (every field has a default a district can start from)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cover_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="a post covers what it reaches by "
        "road (emergency profile) within this many seconds",
    )
    min_posts: int = Field(13, ge=0, le=500)
    max_posts: int = Field(26, ge=1, le=500)
    target_share: float = Field(
        0.9,
        gt=0,
        le=1,
        description="share of the expected calls in Gi* hot cells that the posts must cover",
    )
    hot_weight: float = Field(
        4.0,
        ge=0,
        le=1000,
        description="sites are chosen with a call in a Gi* hot cell "
        "counting 1 + hot_weight times: trouble spots first, then the most calls",
    )
    resolution: int = Field(9, ge=5, le=12, description="H3 resolution of cells")
    alpha: float = Field(0.05, gt=0, lt=1, description="Gi* level, Benjamini-Hochberg FDR")
    hour_bands: tuple[int, ...] = Field((0, 6, 12, 18), description="band start hours")
    closeness: float = Field(
        0.3,
        ge=0,
        le=1,
        description="bonus for a post near its calls: a call at the post counts "
        "1 + closeness, one at cover_s counts 1",
    )
    utc_offset: str = Field("+08:00", description="local time of bands")
    keep_m: float = Field(200.0, ge=0, description="a post this close to last plan's is kept")
    move_m: float = Field(2000.0, ge=0, description="farther than keep_m but within this: moved")

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        parse_offset(value)
        return value

    @field_validator("hour_bands")
    @classmethod
    def _bands(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        HourBands(tuple(value))
        return value

    @model_validator(mode="after")
    def _bounds(self) -> PlanParams:
        if self.min_posts > self.max_posts:
            raise ValueError(f"min_posts {self.min_posts} exceeds max_posts {self.max_posts}")
        return self

    @property
    def bands(self) -> HourBands:
        return HourBands(tuple(self.hour_bands))


class TypeShare(BaseModel):
    model_config = ConfigDict(frozen=True)

    call_type: str
    share: float = Field(description="share of the post's expected calls")


class Post(BaseModel):
    """One pivot post for one band of one month."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="month:day_kind:hours:node")
    month: str
    day_kind: DayKind
    start_hour: int
    end_hour: int
    hours: str = Field(description="local hours, e.g. 18:00-24:00")
    node_id: int = Field(description="OSM id of the road node the post stands at")
    lat: float
    lon: float
    cell: str = Field(description="H3 cell of the post")
    rank: int = Field(description="1 = added first (largest marginal gain)")
    expected_calls: float = Field(
        description="expected calls in the band this month that this post is the nearest cover for"
    )
    expected_calls_low: float = Field(description="95 % interval, low end")
    expected_calls_high: float
    hot_calls: float = Field(description="of those, in Gi* hot cells")
    marginal_calls: float = Field(
        description="expected calls this post brings within cover_s beyond the posts ranked "
        "before it"
    )
    call_types: list[TypeShare]
    max_gi_z: float = Field(description="largest Gi* z among the cells it serves")
    change: Change
    reason: str
    previous_id: str | None = None
    moved_m: float | None = None


class RetiredPost(BaseModel):
    """A post of the previous plan that this band no longer has."""

    model_config = ConfigDict(frozen=True)

    previous_id: str
    node_id: int
    lat: float
    lon: float
    expected_calls_now: float = Field(description="what it would cover under this month's demand")
    expected_calls_before: float
    reason: str


class HotCell(BaseModel):
    model_config = ConfigDict(frozen=True)

    cell: str
    expected_calls: float
    low: float
    high: float
    z: float
    p: float


class BandPlan(BaseModel):
    """Posts for one month, day kind and hour band, with the numbers behind them."""

    month: str
    day_kind: DayKind
    start_hour: int
    end_hour: int
    hours: str
    band_hours: float = Field(description="hours of this band in the month")
    expected_calls: float = Field(description="all expected calls of the band this month")
    expected_calls_low: float
    expected_calls_high: float
    hot_cells: list[HotCell]
    hot_expected_calls: float
    gi_p_cut: float = Field(description="Benjamini-Hochberg p cut-off applied to Gi*")
    covered_calls: float = Field(description="expected calls within cover_s of a post")
    covered_share: float
    covered_hot_share: float
    target_met: bool
    marginal_gains: list[float] = Field(
        description="greedy: calls gained by the k-th post, up to max_posts"
    )
    posts: list[Post]
    retired: list[RetiredPost] = Field(default_factory=list)

    @property
    def post_count(self) -> int:
        return len(self.posts)


class HistorySummary(BaseModel):
    records: int
    outside_map: int = Field(description="records farther than 500 m from every road node")
    first: str | None = Field(description="first month of the history")
    last: str | None
    synthetic: int = Field(description="records marked synthetic")
    label: str | None = Field(None, description="shown wherever the plan is: e.g. SYNTHETIC")


class Plan(BaseModel):
    """Pivot posts month by month; :func:`active_posts` answers what stands at a time."""

    version: int = PLAN_VERSION
    created_at: datetime
    graph: str = Field(description="graph source, as the router's meta says")
    params: PlanParams
    history: HistorySummary
    months: list[str]
    bands: list[BandPlan]

    def band(self, month: str, day_kind: DayKind, hour: int) -> BandPlan | None:
        """The band plan holding ``hour`` of ``day_kind`` in ``month`` (None if not planned)."""
        for b in self.bands:
            if b.month == month and b.day_kind == day_kind and b.start_hour <= hour < b.end_hour:
                return b
        return None

    def posts_by_month(self) -> dict[str, int]:
        """Posts at each month's busiest band (the one with most expected calls)."""
        out: dict[str, int] = {}
        for m in self.months:
            bands = [b for b in self.bands if b.month == m]
            if bands:
                out[m] = max(bands, key=lambda b: b.expected_calls).post_count
        return out


def active_band(plan: Plan, at: datetime) -> BandPlan | None:
    """The band plan in force at an aware time (None when the plan does not cover it)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must carry a UTC offset")
    tz = parse_offset(plan.params.utc_offset)
    month, kind, hb = band_of(at, tz, plan.params.bands)
    parse_month(month)
    start, _ = plan.params.bands.bounds(hb)
    return plan.band(month, kind, start)


def band_ends_at(plan: Plan, at: datetime) -> datetime:
    """When the hour band holding ``at`` ends (local time of the plan, as an aware time):
    the moment the posts standing at ``at`` stop standing, unless the next band keeps them."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must carry a UTC offset")
    tz = parse_offset(plan.params.utc_offset)
    local = at.astimezone(tz)
    bands = plan.params.bands
    _, end = bands.bounds(bands.of_hour(local.hour))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(hours=end)


def plan_post_ids(plan: Plan) -> frozenset[str]:
    """Every post id of every band of ``plan`` (a posting at a post not here was retired)."""
    return frozenset(p.id for b in plan.bands for p in b.posts)


def active_posts(plan: Plan, at: datetime) -> list[Post]:
    """Posts standing at an aware time: the posts of its month, day kind and hour band."""
    band = active_band(plan, at)
    return list(band.posts) if band else []


class PlanRecord(BaseModel):
    """One plan put in force: when, by whom, and what it holds (``GET /api/pivots/history``)."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="1 for the first plan stored, rising by one")
    stored_at: datetime = Field(description="in force from this time until the next record's")
    stored_by: str
    created_at: datetime = Field(description="when the planner made it")
    graph: str
    months: list[str]
    bands: int
    posts: int = Field(description="posts over every band and month")
    label: str | None = Field(None, description="e.g. SYNTHETIC: shown wherever the plan is")

    @classmethod
    def of(cls, plan: Plan, *, seq: int, stored_at: datetime, stored_by: str) -> PlanRecord:
        return cls(
            seq=seq,
            stored_at=stored_at,
            stored_by=stored_by,
            created_at=plan.created_at,
            graph=plan.graph,
            months=list(plan.months),
            bands=len(plan.bands),
            posts=sum(b.post_count for b in plan.bands),
            label=plan.history.label,
        )


class Posting(BaseModel):
    """A unit posted at a pivot post: its station for ranking while the post stands."""

    model_config = ConfigDict(frozen=True)

    unit_id: str
    post_id: str
    lat: float
    lon: float
    posted_at: datetime
    posted_by: str


def post_index(posts: list[Post]) -> dict[str, Post]:
    return {p.id: p for p in posts}


def standing_postings(postings: list[Posting], standing: list[Post]) -> dict[str, Posting]:
    """The postings whose post stands now, by unit id (a posting outlives its band only on
    paper: once the band ends, the unit ranks from its home station again)."""
    ids = {p.id for p in standing}
    return {p.unit_id: p for p in postings if p.post_id in ids}


def at_post(unit: Unit, posting: Posting) -> Unit:
    """``unit`` with the post as its station: the stale-position rule then ranks it from the
    post (a fresh fix still wins, since a posted unit may be on its way there)."""
    return unit.model_copy(
        update={
            "station": f"pivot post {posting.post_id}",
            "station_lat": posting.lat,
            "station_lon": posting.lon,
        }
    )
