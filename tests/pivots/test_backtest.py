"""Back-test scores on a hand-made case whose every number is known."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatch.models import CallType
from pivots.backtest import backtest
from pivots.history import HistoryRecord, Outcome
from pivots.plan import PlanParams
from pivots.planner import Planner
from routing import Router

from .conftest import node_at

CST = timezone(timedelta(hours=8))


def _rec(n: int, where: tuple[float, float], at: datetime) -> HistoryRecord:
    return HistoryRecord(
        id=f"r{n}",
        call_type=CallType.FIGHT,
        lat=where[0],
        lon=where[1],
        occurred_at=at,
        outcome=Outcome.RESOLVED_ON_SCENE,
    )


@pytest.fixture(scope="module")
def case(town: Router) -> tuple[Planner, list[HistoryRecord]]:
    """2025: 30 fights a month at A (20 on weekdays, 10 on weekends), one at a quiet corner.
    January 2026 (held out): 10 at A, 10 at B far from A, 5 far off the map."""
    a, quiet, b = node_at(town, 10, 10), node_at(town, 2, 45), node_at(town, 40, 40)
    records: list[HistoryRecord] = []
    n = 0
    for month in range(1, 13):
        for k in range(30):
            # 2025-01-06 is a Monday: days 6..10 weekdays, 11..12 the weekend.
            day = 6 + (k % 5) if k < 20 else 11 + (k % 2)
            records.append(_rec(n := n + 1, a, datetime(2025, month, day, 9 + k % 12, tzinfo=CST)))
        records.append(_rec(n := n + 1, quiet, datetime(2025, month, 15, 3, tzinfo=CST)))
    for k in range(10):
        records.append(_rec(n := n + 1, a, datetime(2026, 1, 5 + k % 5, 20, tzinfo=CST)))
        records.append(_rec(n := n + 1, b, datetime(2026, 1, 12 + k % 5, 20, tzinfo=CST)))
    for k in range(5):
        records.append(_rec(n := n + 1, (10.0, 10.0), datetime(2026, 1, 20, k, tzinfo=CST)))
    params = PlanParams(cover_s=40.0, min_posts=1, max_posts=1, hour_bands=(0,))
    return Planner(town, params), records


def test_known_case_scores(case: tuple[Planner, list[HistoryRecord]], town: Router) -> None:
    planner, records = case
    result = backtest(planner, records)
    assert result.months == ["2026-01"]
    assert result.posts_by_month == {"2026-01": 1}
    plan = planner.plan([r for r in records if r.occurred_at.year == 2025], ["2026-01"])
    post = plan.bands[0].posts[0]
    assert [b.posts[0].node_id for b in plan.bands] == [post.node_id, post.node_id]
    grid = planner.grid
    ring = grid.ring_cells([grid.cell_index(post.cell)])
    area = len(ring) / grid.cell_count
    for score in (result.planner, result.static, result.last_year):
        assert score is not None
        assert score.incidents == 25  # the five off the map count, as misses
        assert score.covered == 10 and score.hits == 10
        assert score.covered_share == 0.4 and score.hit_rate == 0.4
        assert score.area_share == pytest.approx(area, abs=1e-4)
        assert score.pai == pytest.approx(0.4 / area, rel=1e-3)
        assert score.mean_posts == 1.0 and score.months == 1
    assert not result.planner_beats_static  # equal, so not better
    month = result.by_month[0]
    assert (month.incidents, month.static_posts, month.planner_posts_busiest_band) == (25, 1, 1)


def test_too_short_history_refused(case: tuple[Planner, list[HistoryRecord]]) -> None:
    planner, records = case
    with pytest.raises(ValueError, match="too short"):
        backtest(planner, records, min_train_months=13)


def test_planner_beats_static_on_the_seasonal_district(
    planner: Planner, history: list[HistoryRecord]
) -> None:
    result = backtest(planner, history)
    assert len(result.months) == 12
    assert result.planner_beats_static
    assert result.planner.covered_share > result.static.covered_share
    assert result.planner.mean_posts == pytest.approx(result.static.mean_posts, abs=0.5)
    counts = result.posts_by_month
    assert max(counts[m] for m in ("2026-06", "2026-07", "2026-08")) > counts["2026-02"]
