"""From history records to a plan: demand per band, Gi* hotspots, posts by maximal covering.

For each month planned and each band (day kind x hour band):

1. expected calls per road node from the history, weighed by a seasonal kernel
   (:mod:`pivots.demand`);
2. Gi* on the H3 cells of those expected calls, FDR-corrected (:mod:`pivots.hotspots`); the
   calls in hot cells are the ones the coverage target is about;
3. greedy maximal covering on road travel time (:mod:`pivots.solver`) up to ``max_posts``; the
   number of posts is the smallest at or above ``min_posts`` whose posts cover ``target_share``
   of the hot calls (``max_posts`` and ``target_met = False`` when even that falls short);
   then single swaps improve the chosen set;
4. each post against the same band of the previous month: kept, moved, new, or retired, and why.

Build a :class:`Planner` once per map and parameters (it computes the coverage of every
candidate site) and call :meth:`Planner.plan` with records; phase 2 feeds it the service's
closed incidents the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped,unused-ignore]

from routing import Router
from routing.graph import haversine_m

from .bands import (
    band_count,
    band_hours,
    band_id,
    band_parts,
    hours_label,
    month_index,
    month_key,
    month_of_index,
    parse_month,
    parse_offset,
)
from .coverage import Coverage
from .demand import Demand, SeasonalKernel, estimate, poisson_interval
from .frame import TYPES, Frame, build_frame
from .grid import Grid
from .history import HistoryRecord
from .hotspots import GiStar, HotspotTest
from .plan import (
    BandPlan,
    Change,
    HistorySummary,
    HotCell,
    Plan,
    PlanParams,
    Post,
    RetiredPost,
    TypeShare,
)
from .solver import CoverProblem, CoverResult

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Call types shown for a post: the largest, down to this share.
_TYPE_SHARE_SHOWN = 0.05


@dataclass(frozen=True, slots=True)
class BandChoice:
    """The solver's answer for one band (before it is dressed as a :class:`BandPlan`)."""

    band: int
    demand: FloatArray
    hot_nodes: FloatArray
    gi: GiStar
    problem: CoverProblem
    result: CoverResult
    target_met: bool

    @property
    def rows(self) -> IntArray:
        return self.result.chosen


class Planner:
    """Plans posts on one map with one set of parameters.

    Args:
        router: the road graph and its travel times (the emergency profile, usually).
        params: planning parameters.
        kernel: seasonal weights of past months.
    """

    def __init__(
        self,
        router: Router,
        params: PlanParams | None = None,
        *,
        kernel: SeasonalKernel | None = None,
    ) -> None:
        self.router = router
        self.params = params or PlanParams()
        self.kernel = kernel or SeasonalKernel()
        self.bands = self.params.bands
        self.tz = parse_offset(self.params.utc_offset)
        self.grid = Grid(router.graph, resolution=self.params.resolution)
        self.coverage = Coverage(router, self.grid.site_node, cover_s=self.params.cover_s)
        self.hotspots = HotspotTest(self.grid, alpha=self.params.alpha)
        self._row_of_node = {int(n): i for i, n in enumerate(self.coverage.sites.tolist())}
        self._node_of_osmid = {int(o): i for i, o in enumerate(router.graph.node_osmid.tolist())}

    # ------------------------------------------------------------------------- the core

    def frame(self, records: Sequence[HistoryRecord]) -> Frame:
        """Records placed on this planner's map and bands."""
        return build_frame(records, self.grid, tz=self.tz, bands=self.bands)

    def demand(
        self,
        frame: Frame,
        target: int,
        history_months: Sequence[int],
        *,
        seasonal: bool = True,
        pool_bands: bool = False,
    ) -> Demand:
        return estimate(
            frame,
            self.grid,
            target=target,
            history_months=history_months,
            bands=self.bands,
            kernel=self.kernel if seasonal else None,
            pool_bands=pool_bands,
        )

    def choose(self, demand: Demand, band: int, *, posts: int | None = None) -> BandChoice:
        """Solve one band: Gi*, the number of posts (unless ``posts`` fixes it), the sites."""
        p = self.params
        d = demand.expected[band]
        cell_calls = np.bincount(self.grid.node_cell, weights=d, minlength=self.grid.cell_count)
        gi = self.hotspots.run(cell_calls)
        hot_nodes = np.where(gi.hot[self.grid.node_cell], d, 0.0)
        problem = CoverProblem(
            self.coverage.time_s,
            p.cover_s,
            d,
            hot_nodes,
            closeness=p.closeness,
            hot_weight=p.hot_weight if posts is None else 0.0,
        )
        hot_total = float(hot_nodes.sum())
        order, curve, curve_hot = problem.greedy(p.max_posts if posts is None else posts)
        if posts is not None:
            k = min(posts, len(order))
            met = True
        elif hot_total <= 0:
            k, met = min(p.min_posts, len(order)), True
        else:
            reached = np.flatnonzero(curve_hot >= p.target_share * hot_total * (1 - 1e-9))
            met = reached.size > 0
            k = int(reached[0]) + 1 if met else len(order)
            k = min(max(k, p.min_posts), len(order))
        result = problem.finish(order[:k], curve, curve_hot)
        return BandChoice(band, d, hot_nodes, gi, problem, result, met)

    # ------------------------------------------------------------------------- plans

    def plan(
        self,
        records: Sequence[HistoryRecord],
        months: Sequence[str] | None = None,
        *,
        previous: Plan | None = None,
        now: datetime | None = None,
        label: str | None = None,
    ) -> Plan:
        """Plan the given months (default: the twelve after the history's last month).

        Each month is planned from the history before it (all of it, seasonally weighted);
        its posts are compared with the month before in this plan, or for the first month
        with the last month of ``previous``.

        Args:
            records: the incident history.
            months: ``YYYY-MM`` keys to plan, in order.
            previous: the plan in force, for kept/moved/new/retired.
            now: the plan's creation time (default: the current UTC time).
            label: shown with the plan, e.g. the synthetic-history label.

        Raises:
            ValueError: no record falls on the map, or a bad month key.
        """
        frame = self.frame(records)
        if len(frame) == 0:
            raise ValueError(
                f"no incident of the {len(records)} records lies on the map "
                f"({frame.outside} are more than 500 m from every road node)"
            )
        first, last = int(frame.month.min()), int(frame.month.max())
        targets = (
            [month_index(*parse_month(m)) for m in months]
            if months
            else list(range(last + 1, last + 13))
        )
        bands_out: list[BandPlan] = []
        prev: dict[int, BandPlan] = {}
        if previous is not None and previous.months:
            last_prev = previous.months[-1]
            for b in previous.bands:
                if b.month == last_prev:
                    prev[band_id(b.day_kind, self.bands.of_hour(b.start_hour), self.bands)] = b
        for target in targets:
            history = [m for m in range(first, last + 1) if m < target]
            if not history:
                raise ValueError(
                    f"month {month_key(*month_of_index(target))} is not after any history "
                    f"month (history {month_key(*month_of_index(first))}.."
                    f"{month_key(*month_of_index(last))})"
                )
            demand = self.demand(frame, target, history)
            month_plans = [
                self._band_plan(target, self.choose(demand, b), demand, prev.get(b))
                for b in range(band_count(self.bands))
            ]
            bands_out.extend(month_plans)
            prev = dict(enumerate(month_plans))
        return Plan(
            created_at=now or datetime.now(UTC),
            graph=str(self.router.graph.meta.get("source", "")),
            params=self.params,
            history=HistorySummary(
                records=len(records),
                outside_map=frame.outside,
                first=month_key(*month_of_index(first)),
                last=month_key(*month_of_index(last)),
                synthetic=frame.synthetic,
                label=label,
            ),
            months=[month_key(*month_of_index(t)) for t in targets],
            bands=bands_out,
        )

    def _band_plan(
        self, target: int, choice: BandChoice, demand: Demand, previous: BandPlan | None
    ) -> BandPlan:
        g = self.router.graph
        grid = self.grid
        b = choice.band
        kind, hb = band_parts(b, self.bands)
        start, end = self.bands.bounds(hb)
        month = month_key(*month_of_index(target))
        hours = hours_label(start, end)
        d = choice.demand
        all_nodes = np.flatnonzero(d > 0)
        lo, hi = demand.interval(b, all_nodes)
        owner = choice.problem.assign(choice.result)
        cols = choice.problem.cols
        z = choice.gi.z
        drafts: list[dict[str, object]] = []
        for pos, row in enumerate(choice.rows.tolist()):
            node = int(self.coverage.sites[row])
            served = cols[owner == pos]
            calls = float(d[served].sum())
            c_lo, c_hi = demand.interval(b, served)
            by_type = demand.by_type[b][:, served].sum(axis=1)
            total = float(by_type.sum())
            shares = (
                sorted(
                    ((TYPES[t].value, float(v) / total) for t, v in enumerate(by_type) if v > 0),
                    key=lambda x: -x[1],
                )
                if total > 0
                else []
            )
            types = [
                TypeShare(call_type=t, share=round(s, 3))
                for t, s in shares
                if s >= _TYPE_SHARE_SHOWN
            ]
            drafts.append(
                {
                    "id": f"{month}:{kind.value}:{start:02d}-{end:02d}:{int(g.node_osmid[node])}",
                    "month": month,
                    "day_kind": kind,
                    "start_hour": start,
                    "end_hour": end,
                    "hours": hours,
                    "node_id": int(g.node_osmid[node]),
                    "lat": float(g.node_lat[node]),
                    "lon": float(g.node_lon[node]),
                    "cell": grid.cells[int(grid.node_cell[node])],
                    "rank": pos + 1,
                    "expected_calls": round(calls, 3),
                    "expected_calls_low": round(c_lo, 3),
                    "expected_calls_high": round(c_hi, 3),
                    "hot_calls": round(float(choice.hot_nodes[served].sum()), 3),
                    "marginal_calls": round(float(choice.result.gains[pos]), 3),
                    "call_types": types,
                    "max_gi_z": round(float(z[grid.node_cell[served]].max()), 2)
                    if served.size
                    else 0.0,
                }
            )
        posts, retired = self._changes(drafts, previous, d)
        hot_cells: list[HotCell] = []
        cell_calls = np.bincount(grid.node_cell, weights=d, minlength=grid.cell_count)
        for c in np.flatnonzero(choice.gi.hot).tolist():
            c_lo, c_hi = demand.interval(b, grid.cell_nodes(c))
            hot_cells.append(
                HotCell(
                    cell=grid.cells[c],
                    expected_calls=round(float(cell_calls[c]), 3),
                    low=round(c_lo, 3),
                    high=round(c_hi, 3),
                    z=round(float(z[c]), 2),
                    p=float(choice.gi.p[c]),
                )
            )
        hot_cells.sort(key=lambda h: -h.z)
        total_calls = float(d.sum())
        hot_total = float(choice.hot_nodes.sum())
        covered_mask = self.coverage.covered_nodes(choice.rows)
        curve = choice.result.curve
        gains = np.diff(np.concatenate([[0.0], curve])) if curve.size else np.zeros(0)
        y, m = month_of_index(target)
        return BandPlan(
            month=month,
            day_kind=kind,
            start_hour=start,
            end_hour=end,
            hours=hours,
            band_hours=float(band_hours(y, m, self.bands)[b]),
            expected_calls=round(total_calls, 3),
            expected_calls_low=round(lo, 3),
            expected_calls_high=round(hi, 3),
            hot_cells=hot_cells,
            hot_expected_calls=round(hot_total, 3),
            gi_p_cut=choice.gi.p_cut,
            covered_calls=round(float(d[covered_mask].sum()), 3),
            covered_share=round(float(d[covered_mask].sum()) / total_calls, 4)
            if total_calls > 0
            else 0.0,
            covered_hot_share=round(float(choice.hot_nodes[covered_mask].sum()) / hot_total, 4)
            if hot_total > 0
            else 1.0,
            target_met=choice.target_met,
            marginal_gains=[round(float(x), 3) for x in gains],
            posts=posts,
            retired=retired,
        )

    def _changes(
        self, drafts: list[dict[str, object]], previous: BandPlan | None, d: FloatArray
    ) -> tuple[list[Post], list[RetiredPost]]:
        """Match this band's posts with last month's: kept, moved, new, retired, and why."""
        p = self.params
        old = list(previous.posts) if previous else []
        pairs: dict[int, int] = {}
        dist = np.zeros((len(drafts), len(old)))
        if drafts and old:
            lat_n = np.asarray([float(x["lat"]) for x in drafts])  # type: ignore[arg-type]
            lon_n = np.asarray([float(x["lon"]) for x in drafts])  # type: ignore[arg-type]
            lat_o = np.asarray([o.lat for o in old])
            lon_o = np.asarray([o.lon for o in old])
            dist = np.asarray(haversine_m(lat_n[:, None], lon_n[:, None], lat_o[None], lon_o[None]))
            rows, cols = linear_sum_assignment(dist)
            pairs = {
                int(r): int(c) for r, c in zip(rows, cols, strict=True) if dist[r, c] <= p.move_m
            }
        posts: list[Post] = []
        for i, draft in enumerate(drafts):
            calls = float(draft["expected_calls"])  # type: ignore[arg-type]
            types = ", ".join(
                f"{t.call_type} {t.share:.0%}"
                for t in draft["call_types"][:3]  # type: ignore[index]
            )
            where = (
                f"{calls:.1f} expected calls ({float(draft['hot_calls']):.1f} in Gi* hot cells, "  # type: ignore[arg-type]
                f"z up to {draft['max_gi_z']}); {types or 'no calls'}"
            )
            if i in pairs:
                o = old[pairs[i]]
                moved = float(dist[i, pairs[i]])
                if moved <= p.keep_m:
                    change, reason = (
                        Change.KEPT,
                        (f"kept: {where}; last month {o.expected_calls:.1f}"),
                    )
                else:
                    change, reason = (
                        Change.MOVED,
                        (
                            f"moved {moved:.0f} m as demand shifted: {where}; "
                            f"last month {o.expected_calls:.1f} at the old site"
                        ),
                    )
                posts.append(
                    Post.model_validate(
                        {
                            **draft,
                            "change": change,
                            "reason": reason,
                            "previous_id": o.id,
                            "moved_m": round(moved, 1),
                        }
                    )
                )
            else:
                why = "first plan" if previous is None else "new"
                posts.append(
                    Post.model_validate(
                        {**draft, "change": Change.NEW, "reason": f"{why}: {where}"}
                    )
                )
        matched_old = set(pairs.values())
        retired: list[RetiredPost] = []
        for j, o in enumerate(old):
            if j in matched_old:
                continue
            node = self._node_of_osmid.get(o.node_id)
            row = self._row_of_node.get(node) if node is not None else None
            now = 0.0
            if row is not None:
                now = float(d[self.coverage.covered_nodes([row])].sum())
            if now < 0.5 * o.expected_calls:
                why = (
                    f"demand at the site fell from {o.expected_calls:.1f} to {now:.1f} "
                    "expected calls (the season passed)"
                )
            else:
                why = (
                    f"its calls ({now:.1f} expected within reach) are now served by posts "
                    "placed better for this month's demand"
                )
            retired.append(
                RetiredPost(
                    previous_id=o.id,
                    node_id=o.node_id,
                    lat=o.lat,
                    lon=o.lon,
                    expected_calls_now=round(now, 3),
                    expected_calls_before=o.expected_calls,
                    reason=f"retired: {why}",
                )
            )
        return posts, retired


def poisson_band(count: float) -> tuple[float, float]:
    """Garwood interval of one count (re-exported for callers that show a single number)."""
    lo, hi = poisson_interval(count)
    return float(lo), float(hi)
