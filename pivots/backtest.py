"""Back-testing: plan each month from the months before it, score it on the month itself.

Every held-out month (one with at least ``min_train_months`` of history before it) is planned
three ways, all from history strictly before the month:

- ``planner``: the seasonal planner as it runs in service (every band, Gi*, coverage target);
- ``static``: one set of posts for every hour of every day (all-year posts), fitted on all the
  history before the month with every band pooled, and given the planner's post-hours for that
  month (its hours-weighted mean post count), so both spend the same manpower;
- ``last_year``: the planner's method fed only the same calendar month one year before.

Scores, over every incident of the held-out months (incidents off the map count as misses):

- ``covered_share``: share of incidents within ``cover_s`` by road of a post standing at the
  incident's time;
- ``hit_rate``: share of incidents inside a post's hit area: the H3 cell of each standing post
  and its ring of neighbours (about 0.7 km^2 at resolution 9), i.e. where the post's officers
  are seen;
- ``pai``: the predictive accuracy index, hit rate over the hit area's share of the study area
  (the hours-weighted mean over the bands), so a plan cannot score by covering more ground.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from .bands import band_count, band_hours, month_key, month_of_index
from .frame import Frame
from .history import HistoryRecord
from .plan import PlanParams
from .planner import Planner

IntArray = npt.NDArray[np.int64]
DEFAULT_MIN_TRAIN_MONTHS = 12


class Score(BaseModel):
    """One strategy's score over the held-out months it was tested on."""

    hit_rate: float
    pai: float
    covered_share: float
    incidents: int
    covered: int
    hits: int
    area_share: float = Field(description="hours-weighted share of the study area hit")
    mean_posts: float = Field(description="hours-weighted mean of posts standing")
    months: int


class MonthScore(BaseModel):
    month: str
    incidents: int
    planner_posts_busiest_band: int
    planner_mean_posts: float
    static_posts: int
    planner_covered_share: float
    static_covered_share: float
    last_year_covered_share: float | None
    planner_hit_rate: float
    static_hit_rate: float
    last_year_hit_rate: float | None


class BacktestResult(BaseModel):
    """What ``yishao pivots backtest --json`` prints."""

    label: str | None = Field(description="e.g. SYNTHETIC history: shown wherever this is")
    graph: str
    params: PlanParams
    history_records: int
    history_first: str
    history_last: str
    months: list[str] = Field(description="held-out months tested")
    planner: Score
    static: Score
    last_year: Score | None
    planner_beats_static: bool = Field(description="higher covered share, hit rate and PAI")
    posts_by_month: dict[str, int] = Field(
        description="planner's posts in each held-out month at its busiest band"
    )
    by_month: list[MonthScore]


class _Tally:
    def __init__(self) -> None:
        self.n = 0
        self.covered = 0
        self.hits = 0
        self.area_hours = 0.0
        self.post_hours = 0.0
        self.hours = 0.0
        self.months = 0

    def score(self) -> Score:
        area = self.area_hours / self.hours if self.hours else 0.0
        hit = self.hits / self.n if self.n else 0.0
        return Score(
            hit_rate=round(hit, 4),
            pai=round(hit / area, 3) if area > 0 else 0.0,
            covered_share=round(self.covered / self.n, 4) if self.n else 0.0,
            incidents=self.n,
            covered=self.covered,
            hits=self.hits,
            area_share=round(area, 4),
            mean_posts=round(self.post_hours / self.hours, 2) if self.hours else 0.0,
            months=self.months,
        )


def _evaluate(
    planner: Planner,
    rows_by_band: Sequence[IntArray],
    test: Frame,
    hours: npt.NDArray[np.float64],
    outside: int,
    tally: _Tally,
) -> tuple[int, int, int]:
    """Score one month's posts (``rows_by_band[b]``: candidate rows standing in band b)."""
    grid, cov = planner.grid, planner.coverage
    covered = hits = 0
    for b, rows in enumerate(rows_by_band):
        in_band = test.band == b
        nodes = test.node[in_band]
        cells = test.cell[in_band]
        covered_mask = cov.covered_nodes(rows)
        hit_cells = np.zeros(grid.cell_count, dtype=np.bool_)
        if rows.size:
            hit_cells[grid.ring_cells(grid.node_cell[cov.sites[rows]].tolist())] = True
        covered += int(covered_mask[nodes].sum())
        hits += int(hit_cells[cells].sum())
        tally.area_hours += float(hours[b]) * float(hit_cells.mean())
        tally.post_hours += float(hours[b]) * rows.size
        tally.hours += float(hours[b])
    n = len(test) + outside
    tally.n += n
    tally.covered += covered
    tally.hits += hits
    tally.months += 1
    return n, covered, hits


def backtest(
    planner: Planner,
    records: Sequence[HistoryRecord],
    *,
    min_train_months: int = DEFAULT_MIN_TRAIN_MONTHS,
    label: str | None = None,
) -> BacktestResult:
    """Rolling back-test over every month with ``min_train_months`` of history before it.

    Raises:
        ValueError: the history is too short to hold out a single month.
    """
    frame = planner.frame(records)
    if len(frame) == 0:
        raise ValueError("no incident of the history lies on the map")
    first, last = int(frame.month.min()), int(frame.month.max())
    tests = [m for m in range(first + min_train_months, last + 1)]
    if not tests:
        raise ValueError(
            f"history {month_key(*month_of_index(first))}..{month_key(*month_of_index(last))} "
            f"is too short: a back-test needs {min_train_months} months before the first "
            "held-out month"
        )
    nb = band_count(planner.bands)
    tallies = {"planner": _Tally(), "static": _Tally(), "last_year": _Tally()}
    by_month: list[MonthScore] = []
    posts_by_month: dict[str, int] = {}
    for target in tests:
        key = month_key(*month_of_index(target))
        history = list(range(first, target))
        hours = band_hours(*month_of_index(target), planner.bands)
        test = frame.select(frame.month == target)
        outside = frame.outside_by_month.get(target, 0)
        demand = planner.demand(frame, target, history)
        choices = [planner.choose(demand, b) for b in range(nb)]
        planner_rows = [c.rows for c in choices]
        busiest = max(range(nb), key=lambda b: float(choices[b].demand.sum()))
        posts_by_month[key] = int(planner_rows[busiest].size)
        mean_posts = float(sum(hours[b] * planner_rows[b].size for b in range(nb)) / hours.sum())
        n, p_cov, p_hit = _evaluate(planner, planner_rows, test, hours, outside, tallies["planner"])
        static_p = max(1, round(mean_posts))
        pooled = planner.demand(frame, target, history, seasonal=False, pool_bands=True)
        static_rows = planner.choose(pooled, 0, posts=static_p).rows
        _, s_cov, s_hit = _evaluate(
            planner, [static_rows] * nb, test, hours, outside, tallies["static"]
        )
        ly_cov = ly_hit = None
        if target - 12 >= first:
            last_year = planner.demand(frame, target, [target - 12], seasonal=False)
            ly_rows = [planner.choose(last_year, b).rows for b in range(nb)]
            _, ly_c, ly_h = _evaluate(planner, ly_rows, test, hours, outside, tallies["last_year"])
            ly_cov, ly_hit = round(ly_c / n, 4) if n else 0.0, round(ly_h / n, 4) if n else 0.0
        by_month.append(
            MonthScore(
                month=key,
                incidents=n,
                planner_posts_busiest_band=posts_by_month[key],
                planner_mean_posts=round(mean_posts, 2),
                static_posts=static_p,
                planner_covered_share=round(p_cov / n, 4) if n else 0.0,
                static_covered_share=round(s_cov / n, 4) if n else 0.0,
                last_year_covered_share=ly_cov,
                planner_hit_rate=round(p_hit / n, 4) if n else 0.0,
                static_hit_rate=round(s_hit / n, 4) if n else 0.0,
                last_year_hit_rate=ly_hit,
            )
        )
    planner_score = tallies["planner"].score()
    static_score = tallies["static"].score()
    ly = tallies["last_year"]
    return BacktestResult(
        label=label,
        graph=str(planner.router.graph.meta.get("source", "")),
        params=planner.params,
        history_records=len(records),
        history_first=month_key(*month_of_index(first)),
        history_last=month_key(*month_of_index(last)),
        months=[month_key(*month_of_index(t)) for t in tests],
        planner=planner_score,
        static=static_score,
        last_year=ly.score() if ly.months else None,
        planner_beats_static=(
            planner_score.covered_share > static_score.covered_share
            and planner_score.hit_rate > static_score.hit_rate
            and planner_score.pai > static_score.pai
        ),
        posts_by_month=posts_by_month,
        by_month=by_month,
    )
