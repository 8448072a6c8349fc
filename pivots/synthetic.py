"""A seeded, synthetic district history on any road graph (every record marked synthetic).

Modelled on the seed's Fuyang: a background of calls all over the map, all-year trouble spots
that are busy at their own hours (rush-hour junctions, a night-life street, shopping centres, a
station), and seasonal hotspots:

- a river valley full of campers in summer (June to August, shoulders in May and September):
  traffic accidents, disputes, drownings and other rescues, busiest on weekends;
- a night market on summer and autumn evenings (June to November, 18:00 to 02:00): fights,
  noise, traffic accidents and consumer disputes;
- an industrial park at year end (December and January, some in November): labour disputes
  in working hours;
- a temple fair in spring (March and April weekends) and a new-year shopping street in
  January and February.

Rates are per day at the peak of a site's season; hours follow a 24-value profile. Sites are
placed at seeded graph nodes kept apart, or given by the caller (e.g. planted in a test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt

from dispatch.models import CallType
from routing import RoadGraph
from routing.graph import haversine_m

from .bands import month_index, month_of_index
from .history import HistoryRecord, Outcome

SYNTHETIC_LABEL = "SYNTHETIC history (generated, not real incidents)"
CST = timezone(timedelta(hours=8))
_T = CallType

# Relative call volume by local hour (0..23) for the background: quiet small hours, busy evenings.
BACKGROUND_HOURLY: tuple[float, ...] = (
    0.55,
    0.45,
    0.35,
    0.3,
    0.3,
    0.35,
    0.55,
    0.8,
    1.0,
    1.05,
    1.05,
    1.1,
    1.1,
    1.05,
    1.05,
    1.1,
    1.2,
    1.3,
    1.4,
    1.45,
    1.4,
    1.3,
    1.05,
    0.8,
)
RUSH: tuple[float, ...] = tuple(
    1.0 if h in (7, 8, 17, 18) else 0.4 if h in (6, 9, 16, 19) else 0.05 for h in range(24)
)
NIGHT: tuple[float, ...] = tuple(
    1.0 if h in (21, 22, 23, 0, 1) else 0.6 if h in (19, 20, 2) else 0.02 for h in range(24)
)
DAYTIME: tuple[float, ...] = tuple(
    1.0 if 9 <= h <= 20 else 0.1 if 7 <= h <= 22 else 0.0 for h in range(24)
)
WORKING: tuple[float, ...] = tuple(1.0 if 8 <= h <= 17 else 0.05 for h in range(24))
CAMPING: tuple[float, ...] = tuple(
    1.0 if 10 <= h <= 21 else 0.3 if h in (8, 9, 22, 23) else 0.05 for h in range(24)
)
MARKET: tuple[float, ...] = tuple(
    1.0 if h in (20, 21, 22, 23) else 0.6 if h in (18, 19, 0, 1) else 0.0 for h in range(24)
)
ALL_YEAR: Mapping[int, float] = {m: 1.0 for m in range(1, 13)}

BACKGROUND_MIX: Mapping[CallType, float] = {
    _T.TRAFFIC_ACCIDENT: 0.3,
    _T.DISPUTE: 0.15,
    _T.THEFT: 0.14,
    _T.CRITICAL_PATIENT: 0.15,
    _T.FIGHT: 0.05,
    _T.NOISE: 0.07,
    _T.FIRE: 0.04,
    _T.FALL_FROM_HEIGHT: 0.02,
    _T.OTHER: 0.08,
}
# How incidents of each type tend to end (resolved on the spot, later, referred, no action).
_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.RESOLVED_ON_SCENE,
    Outcome.RESOLVED_LATER,
    Outcome.REFERRED,
    Outcome.NO_ACTION,
)
_OUTCOME_WEIGHTS: Mapping[CallType, tuple[float, float, float, float]] = {
    _T.DISPUTE: (0.55, 0.25, 0.15, 0.05),
    _T.LABOUR_DISPUTE: (0.35, 0.35, 0.25, 0.05),
    _T.FIGHT: (0.5, 0.3, 0.15, 0.05),
    _T.NOISE: (0.7, 0.05, 0.05, 0.2),
}
_DEFAULT_OUTCOME = (0.4, 0.3, 0.25, 0.05)


@dataclass(frozen=True, slots=True)
class Site:
    """A trouble spot: where, when, how busy and with what.

    Attributes:
        name: shown in the record's ``area``.
        kind: e.g. ``night_market`` (free text, for reports).
        lat, lon: centre.
        radius_m: calls fall within about this distance (Gaussian, sigma = radius / 2).
        calls_per_day: mean calls per day at full season, weekday rate.
        months: season weight per calendar month (absent months: no calls).
        hourly: relative rate per local hour.
        weekend_factor: rate multiplier on Saturdays and Sundays.
        mix: call-type shares.
    """

    name: str
    kind: str
    lat: float
    lon: float
    radius_m: float
    calls_per_day: float
    months: Mapping[int, float]
    hourly: tuple[float, ...]
    weekend_factor: float
    mix: Mapping[CallType, float]


@dataclass(frozen=True, slots=True)
class District:
    """Everything the generator draws from: a background and the sites."""

    sites: tuple[Site, ...]
    background_per_day: float = 80.0
    background_hourly: tuple[float, ...] = BACKGROUND_HOURLY
    background_mix: Mapping[CallType, float] = field(default_factory=lambda: BACKGROUND_MIX)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)


_CAMP_MONTHS: Mapping[int, float] = {5: 0.3, 6: 1.0, 7: 1.0, 8: 1.0, 9: 0.3}
_MARKET_MONTHS: Mapping[int, float] = {6: 1.0, 7: 1.0, 8: 1.0, 9: 1.0, 10: 1.0, 11: 0.8}
_JUNCTION_MIX: Mapping[CallType, float] = {
    _T.TRAFFIC_ACCIDENT: 0.8,
    _T.DISPUTE: 0.15,
    _T.CRITICAL_PATIENT: 0.05,
}
_NIGHT_MIX: Mapping[CallType, float] = {
    _T.FIGHT: 0.4,
    _T.NOISE: 0.3,
    _T.DISPUTE: 0.2,
    _T.THEFT: 0.1,
}
_SHOP_MIX: Mapping[CallType, float] = {_T.THEFT: 0.5, _T.DISPUTE: 0.3, _T.CRITICAL_PATIENT: 0.2}
_STATION_MIX: Mapping[CallType, float] = {
    _T.THEFT: 0.4,
    _T.DISPUTE: 0.3,
    _T.FIGHT: 0.1,
    _T.CRITICAL_PATIENT: 0.2,
}
_CAMP_MIX: Mapping[CallType, float] = {
    _T.TRAFFIC_ACCIDENT: 0.35,
    _T.DISPUTE: 0.3,
    _T.DROWNING: 0.15,
    _T.FALL_FROM_HEIGHT: 0.08,
    _T.OTHER: 0.12,
}
_MARKET_MIX: Mapping[CallType, float] = {
    _T.FIGHT: 0.3,
    _T.NOISE: 0.2,
    _T.TRAFFIC_ACCIDENT: 0.15,
    _T.DISPUTE: 0.35,
}
_PARK_MIX: Mapping[CallType, float] = {_T.LABOUR_DISPUTE: 0.7, _T.DISPUTE: 0.2, _T.FIGHT: 0.1}
_FAIR_MIX: Mapping[CallType, float] = {
    _T.THEFT: 0.35,
    _T.DISPUTE: 0.3,
    _T.CRITICAL_PATIENT: 0.15,
    _T.TRAFFIC_ACCIDENT: 0.2,
}
_NEW_YEAR_MIX: Mapping[CallType, float] = {
    _T.THEFT: 0.45,
    _T.DISPUTE: 0.35,
    _T.FIGHT: 0.1,
    _T.TRAFFIC_ACCIDENT: 0.1,
}

# (name, kind, how many, calls/day each, radius m, months, hourly, weekend factor, mix)
_TEMPLATE: tuple[
    tuple[
        str,
        str,
        int,
        float,
        float,
        Mapping[int, float],
        tuple[float, ...],
        float,
        Mapping[CallType, float],
    ],
    ...,
] = (
    ("junction", "junction", 6, 3.0, 250.0, ALL_YEAR, RUSH, 0.5, _JUNCTION_MIX),
    ("bar street", "nightlife", 3, 4.0, 250.0, ALL_YEAR, NIGHT, 1.6, _NIGHT_MIX),
    ("mall", "shopping", 3, 3.0, 300.0, ALL_YEAR, DAYTIME, 1.5, _SHOP_MIX),
    ("station", "station", 2, 5.0, 300.0, ALL_YEAR, BACKGROUND_HOURLY, 1.2, _STATION_MIX),
    ("river valley camp", "river_valley", 12, 2.5, 250.0, _CAMP_MONTHS, CAMPING, 2.2, _CAMP_MIX),
    ("night market", "night_market", 3, 10.0, 250.0, _MARKET_MONTHS, MARKET, 1.5, _MARKET_MIX),
    (
        "industrial park",
        "industrial_park",
        2,
        6.0,
        450.0,
        {11: 0.3, 12: 1.0, 1: 1.0},
        WORKING,
        0.4,
        _PARK_MIX,
    ),
    ("temple fair", "fair", 2, 6.0, 300.0, {3: 1.0, 4: 1.0}, DAYTIME, 3.0, _FAIR_MIX),
    ("new-year street", "fair", 2, 6.0, 300.0, {1: 1.0, 2: 1.0}, DAYTIME, 1.5, _NEW_YEAR_MIX),
)


def _inner(graph: RoadGraph) -> npt.NDArray[np.int64]:
    """Nodes off the map's outer tenth (so a site's calls do not fall off the map)."""
    lat, lon = graph.node_lat, graph.node_lon
    lo_lat, hi_lat = np.quantile(lat, [0.1, 0.9])
    lo_lon, hi_lon = np.quantile(lon, [0.1, 0.9])
    inner = np.flatnonzero((lat >= lo_lat) & (lat <= hi_lat) & (lon >= lo_lon) & (lon <= hi_lon))
    return inner if inner.size >= 2 else np.arange(graph.node_count)


def _pick_along(graph: RoadGraph, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` nodes strung along a straight "river" across the inner map, evenly spaced
    (the river valley: campers all along it)."""
    lat, lon = graph.node_lat, graph.node_lon
    pool = _inner(graph)
    best: tuple[float, int, int] = (-1.0, 0, 0)
    for _ in range(64):  # a long chord: the farthest-apart of a few random pairs
        a, b = (int(x) for x in rng.choice(pool, size=2, replace=False))
        d = float(haversine_m(lat[a], lon[a], lat[b], lon[b]))
        if d > best[0]:
            best = (d, a, b)
    _, a, b = best
    out: list[int] = []
    for f in np.linspace(0.05, 0.95, count):
        la = lat[a] + f * (lat[b] - lat[a])
        lo = lon[a] + f * (lon[b] - lon[a])
        out.append(int(np.argmin(haversine_m(la, lo, lat, lon))))
    return out


def _pick_apart(
    graph: RoadGraph,
    count: int,
    rng: np.random.Generator,
    *,
    min_apart_m: float,
    taken: Sequence[int] = (),
) -> list[int]:
    """``count`` inner nodes at least ``min_apart_m`` from each other and from ``taken``
    (the spacing shrinks until they fit)."""
    lat, lon = graph.node_lat, graph.node_lon
    pool = _inner(graph)
    apart = min_apart_m
    while True:
        order = rng.permutation(pool)
        chosen: list[int] = []
        for node in order.tolist():
            if all(
                haversine_m(lat[node], lon[node], lat[c], lon[c]) >= apart
                for c in [*taken, *chosen]
            ):
                chosen.append(node)
                if len(chosen) == count:
                    return chosen
        apart *= 0.8


def district_for_graph(
    graph: RoadGraph, *, seed: int, min_apart_m: float = 1_500.0, scale: float = 1.0
) -> District:
    """The built-in district's sites placed on ``graph`` (seeded), rates times ``scale``.

    The river valley's camps are strung along one line across the map; the other sites are
    kept apart from them and from each other. The background rate scales with the map (80
    calls a day for about 4,500 nodes)."""
    rng = np.random.default_rng([seed, 0x5151])
    camps = sum(t[2] for t in _TEMPLATE if t[1] == "river_valley")
    valley = _pick_along(graph, camps, rng)
    others = sum(t[2] for t in _TEMPLATE if t[1] != "river_valley")
    spread = iter(_pick_apart(graph, others, rng, min_apart_m=min_apart_m, taken=valley))
    along = iter(valley)
    sites: list[Site] = []
    for name, kind, count, rate, radius, months, hourly, weekend, mix in _TEMPLATE:
        for k in range(count):
            n = next(along) if kind == "river_valley" else next(spread)
            sites.append(
                Site(
                    f"{name} {k + 1}",
                    kind,
                    float(graph.node_lat[n]),
                    float(graph.node_lon[n]),
                    radius,
                    rate * scale,
                    months,
                    hourly,
                    weekend,
                    mix,
                )
            )
    background = 80.0 * scale * min(4.0, max(0.25, graph.node_count / 4_500))
    return District(sites=tuple(sites), background_per_day=background)


def _days(start: date, months: int) -> list[date]:
    first = month_index(start.year, start.month)
    y, m = month_of_index(first + months)
    end = date(y, m, 1)
    d = date(start.year, start.month, 1)
    out: list[date] = []
    while d < end:
        out.append(d)
        d += timedelta(days=1)
    return out


def _node_weights(
    graph: RoadGraph, lat: float, lon: float, radius_m: float
) -> npt.NDArray[np.float64]:
    d = haversine_m(lat, lon, graph.node_lat, graph.node_lon)
    sigma = max(radius_m / 2.0, 1.0)
    w = np.exp(-0.5 * (np.asarray(d) / sigma) ** 2)
    w[np.asarray(d) > 2.5 * sigma] = 0.0
    if w.sum() <= 0:
        w[int(np.argmin(d))] = 1.0
    out: npt.NDArray[np.float64] = w / w.sum()
    return out


def generate_history(
    graph: RoadGraph,
    *,
    seed: int,
    start: date = date(2025, 1, 1),
    months: int = 24,
    district: District | None = None,
    tz: timezone = CST,
    jitter_m: float = 30.0,
) -> list[HistoryRecord]:
    """Generate ``months`` months of synthetic incidents from the first of ``start``'s month.

    Args:
        graph: the road graph the district lies on.
        seed: the same seed (and graph and district) gives the same history.
        start: first month (its day is ignored).
        months: how many months.
        district: sites and background; default :func:`district_for_graph`.
        tz: local time of the records.
        jitter_m: callers' location error around the node the incident happened at.

    Returns:
        Records sorted by time, all ``synthetic=True``, ids ``SYN<seed>-<n>``.
    """
    rng = np.random.default_rng([seed, 0x7151])
    district = district or district_for_graph(graph, seed=seed)
    days = _days(start, months)
    day_month = np.asarray([d.month for d in days])
    day_weekend = np.asarray([d.weekday() >= 5 for d in days])
    bg_weights = np.full(graph.node_count, 1.0 / graph.node_count)
    sources: list[
        tuple[str, npt.NDArray[np.float64], npt.NDArray[np.float64], Mapping[CallType, float]]
    ] = []
    # Background: the day rate shaped by hour; a weekend is a little busier at night only.
    bg_hourly = np.asarray(district.background_hourly) / sum(district.background_hourly)
    bg_rate = district.background_per_day * np.outer(np.ones(len(days)), bg_hourly)
    sources.append(("background", bg_rate, bg_weights, district.background_mix))
    for s in district.sites:
        season = np.asarray([s.months.get(int(m), 0.0) for m in day_month])
        week = np.where(day_weekend, s.weekend_factor, 1.0)
        hourly = np.asarray(s.hourly) / max(sum(s.hourly), 1e-9)
        rate = s.calls_per_day * np.outer(season * week, hourly)
        sources.append((s.name, rate, _node_weights(graph, s.lat, s.lon, s.radius_m), s.mix))
    rows: list[tuple[float, int, str, CallType]] = []
    base = [datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() for d in days]
    base_arr = np.asarray(base)
    for name, rate, weights, mix in sources:
        counts = rng.poisson(rate)
        day_idx, hour = np.nonzero(counts)
        reps = counts[day_idx, hour]
        day_idx = np.repeat(day_idx, reps)
        hour = np.repeat(hour, reps)
        at = base_arr[day_idx] + hour * 3600.0 + rng.uniform(0, 3600.0, day_idx.shape[0])
        nodes = rng.choice(graph.node_count, size=at.shape[0], p=weights)
        types = list(mix)
        shares = np.asarray([mix[t] for t in types], dtype=np.float64)
        kinds = rng.choice(len(types), size=at.shape[0], p=shares / shares.sum())
        for t, n, k in zip(at.tolist(), nodes.tolist(), kinds.tolist(), strict=True):
            rows.append((t, n, name, types[k]))
    rows.sort(key=lambda r: (r[0], r[1]))
    lat0 = float(np.mean(graph.node_lat))
    m_per_deg_lon = 111_320.0 * math.cos(math.radians(lat0))
    dn = rng.normal(0.0, jitter_m, (len(rows), 2))
    outcome_draw = rng.random(len(rows))
    records: list[HistoryRecord] = []
    for i, ((t, n, name, call_type), (dy, dx), u) in enumerate(
        zip(rows, dn.tolist(), outcome_draw.tolist(), strict=True)
    ):
        weights4 = _OUTCOME_WEIGHTS.get(call_type, _DEFAULT_OUTCOME)
        acc = 0.0
        outcome = _OUTCOMES[-1]
        for o, wgt in zip(_OUTCOMES, weights4, strict=True):
            acc += wgt
            if u < acc:
                outcome = o
                break
        records.append(
            HistoryRecord(
                id=f"SYN{seed}-{i + 1:07d}",
                call_type=call_type,
                lat=float(graph.node_lat[n]) + dy / 111_320.0,
                lon=float(graph.node_lon[n]) + dx / m_per_deg_lon,
                occurred_at=datetime.fromtimestamp(t, tz),
                outcome=outcome,
                area=name,
                synthetic=True,
            )
        )
    return records


def site_names(district: District, kind: str) -> Sequence[str]:
    """Names of the district's sites of one kind (e.g. ``night_market``)."""
    return [s.name for s in district.sites if s.kind == kind]
