"""The planner: planted sites get posts, bounds hold, posts follow the season, plans serialise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from dispatch.models import CallType
from pivots.bands import months_between
from pivots.history import HistoryRecord
from pivots.plan import Change, Plan, PlanParams, active_band, active_posts
from pivots.planner import Planner
from pivots.synthetic import ALL_YEAR, District, Site, generate_history
from routing import Router
from routing.graph import haversine_m

from .conftest import MARKET_AT, node_at

CST = timezone(timedelta(hours=8))
FLAT = tuple([1.0] * 24)


def _near(posts: list, lat: float, lon: float, within_m: float) -> bool:  # type: ignore[type-arg]
    return any(float(haversine_m(p.lat, p.lon, lat, lon)) <= within_m for p in posts)


@pytest.fixture(scope="module")
def planted(town: Router) -> tuple[list[tuple[float, float]], list[HistoryRecord]]:
    """Three all-year sites, equally busy, over a light background: one year."""
    spots = [node_at(town, 10, 12), node_at(town, 38, 15), node_at(town, 25, 40)]
    sites = tuple(
        Site(
            f"site {k}",
            "planted",
            lat,
            lon,
            100.0,
            6.0,
            ALL_YEAR,
            FLAT,
            1.0,
            {CallType.FIGHT: 0.5, CallType.DISPUTE: 0.5},
        )
        for k, (lat, lon) in enumerate(spots)
    )
    district = District(sites=sites, background_per_day=6.0)
    records = generate_history(
        town.graph, seed=3, start=date(2025, 1, 1), months=12, district=district
    )
    return spots, records


def test_posts_on_planted_sites_within_bounds(
    town: Router, planted: tuple[list[tuple[float, float]], list[HistoryRecord]]
) -> None:
    spots, records = planted
    params = PlanParams(cover_s=40.0, min_posts=2, max_posts=5)
    plan = Planner(town, params).plan(records, ["2026-01"])
    assert len(plan.bands) == 8
    for band in plan.bands:
        assert 2 <= band.post_count <= 5
        assert band.target_met
        for lat, lon in spots:
            assert _near(band.posts, lat, lon, 200.0), (band.hours, band.day_kind)
        # The three busiest posts are the planted ones, in order of marginal gain.
        top = sorted(band.posts, key=lambda p: p.rank)[:3]
        assert all(_near(top, lat, lon, 200.0) for lat, lon in spots)
        gains = [p.marginal_calls for p in sorted(band.posts, key=lambda p: p.rank)]
        assert min(gains) >= 0
        assert sum(gains) == pytest.approx(band.covered_calls, rel=1e-3, abs=0.01)
        assert band.marginal_gains[0] >= band.marginal_gains[-1]


def test_bounds_clamp_the_count(
    town: Router, planted: tuple[list[tuple[float, float]], list[HistoryRecord]]
) -> None:
    _, records = planted
    # Two posts cannot cover 80 % of three equally hot sites: capped, and said so.
    capped = Planner(town, PlanParams(cover_s=40.0, min_posts=1, max_posts=2))
    band = capped.plan(records, ["2026-01"]).bands[1]
    assert band.post_count == 2 and not band.target_met
    assert band.covered_hot_share < 0.8
    # A minimum above what the target needs is honoured.
    floor = Planner(town, PlanParams(cover_s=40.0, min_posts=7, max_posts=9))
    band = floor.plan(records, ["2026-01"]).bands[1]
    assert band.post_count == 7 and band.target_met


def test_post_count_moves_with_the_season(
    planner: Planner, town: Router, history: list[HistoryRecord]
) -> None:
    year_one = [r for r in history if r.occurred_at.year == 2025]
    first_half = [r for r in year_one if r.occurred_at.month <= 6]
    default = planner.plan(first_half)
    assert default.months == months_between("2025-07", "2026-06")  # the twelve after history
    plan = planner.plan(year_one, months_between("2026-01", "2027-02"))
    market = node_at(town, *MARKET_AT)

    def evening(month: str) -> list:  # type: ignore[type-arg]
        band = plan.band(month, plan.bands[0].day_kind.WEEKDAY, 20)
        assert band is not None
        return band.posts

    for summer in ("2026-07", "2026-08"):
        for winter in ("2026-01", "2026-02"):
            assert len(evening(summer)) > len(evening(winter)), (summer, winter)
    assert _near(evening("2026-07"), *market, 200.0)
    assert not _near(evening("2026-02"), *market, 600.0)
    by_month = plan.posts_by_month()
    assert by_month["2026-07"] > by_month["2026-02"]
    # The market post is new when the season opens and retired when it has passed.
    months = plan.months
    opened = [m for m in months if _near(evening(m), *market, 200.0)]
    first = opened[0]
    post = next(p for p in evening(first) if _near([p], *market, 200.0))
    assert post.change is Change.NEW and "fight" in post.reason
    closed = months[months.index(opened[-1]) + 1]
    band = plan.band(closed, plan.bands[0].day_kind.WEEKDAY, 20)
    assert band is not None
    gone = [r for r in band.retired if _near([r], *market, 200.0)]
    assert gone and "season passed" in gone[0].reason
    for b in plan.bands:
        assert b.post_count >= planner.params.min_posts
        assert b.post_count <= planner.params.max_posts
        assert all(p.change in (Change.NEW, Change.KEPT, Change.MOVED) for p in b.posts)


def test_active_posts_and_json_round_trip(planner: Planner, history: list[HistoryRecord]) -> None:
    plan = planner.plan(
        history[:4000], ["2025-03", "2025-04"], now=datetime(2025, 3, 1, tzinfo=CST)
    )
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan
    # Saturday 21:30 local, in any offset, is the weekend 18-24 band of April.
    at = datetime(2025, 4, 5, 13, 30, tzinfo=UTC)
    band = active_band(plan, at)
    assert band is not None
    assert (band.month, band.day_kind.value, band.start_hour) == ("2025-04", "weekend", 18)
    assert active_posts(plan, at) == band.posts
    assert active_posts(plan, datetime(2025, 6, 1, 12, tzinfo=CST)) == []
    with pytest.raises(ValueError, match="UTC offset"):
        active_posts(plan, datetime(2025, 4, 5, 21, 30))


def test_post_fields_add_up(planner: Planner, history: list[HistoryRecord]) -> None:
    plan = planner.plan([r for r in history if r.occurred_at.year == 2025], ["2026-07"])
    for band in plan.bands:
        served = sum(p.expected_calls for p in band.posts)
        assert served == pytest.approx(band.covered_calls, rel=0.02, abs=0.05)
        assert band.covered_share <= 1.0
        assert band.expected_calls_low <= band.expected_calls <= band.expected_calls_high
        for p in band.posts:
            assert p.expected_calls_low <= p.expected_calls <= p.expected_calls_high
            assert p.hours == band.hours and p.month == "2026-07"
            assert abs(sum(t.share for t in p.call_types) - 1.0) < 0.35
        for h in band.hot_cells:
            assert h.p <= band.gi_p_cut and h.z > 0


def test_plan_refuses_history_off_the_map(planner: Planner) -> None:
    far = HistoryRecord(
        id="x",
        call_type=CallType.FIGHT,
        lat=10.0,
        lon=10.0,
        occurred_at=datetime(2025, 1, 1, tzinfo=CST),
        outcome="unknown",
    )
    with pytest.raises(ValueError, match="lies on the map"):
        planner.plan([far])
    assert np.isfinite(planner.coverage.time_s.data).all()


def test_changes_against_the_plan_in_force(planner: Planner, history: list[HistoryRecord]) -> None:
    year_one = [r for r in history if r.occurred_at.year == 2025]
    june = planner.plan(year_one, ["2026-06"])
    july = planner.plan(year_one, ["2026-07"], previous=june)
    for band in july.bands:
        before = june.band("2026-06", band.day_kind, band.start_hour)
        assert before is not None
        old_ids = {p.id for p in before.posts}
        for p in band.posts:
            if p.change is Change.NEW:
                assert p.previous_id is None and p.reason.startswith("new:")
            else:
                assert p.previous_id in old_ids and p.moved_m is not None
                assert p.moved_m <= (
                    planner.params.keep_m if p.change is Change.KEPT else planner.params.move_m
                )
        matched = {p.previous_id for p in band.posts if p.previous_id}
        assert matched | {r.previous_id for r in band.retired} == old_ids
    assert any(p.change is Change.KEPT for b in july.bands for p in b.posts)
    fresh = planner.plan(year_one, ["2026-07"])
    assert all(p.reason.startswith("first plan") for b in fresh.bands for p in b.posts)
