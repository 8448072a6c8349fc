"""Pivot-post planning benchmark: a year of synthetic history on the Shanghai extract.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python benchmarks/pivots.py [--seed 1] [--exact-bands 2] [--exact-limit-s 60]
                                           [--spopt]

Prints, all measured in this run:

- the set-up: graph load, synthetic history generation, the planner's coverage matrix (one
  bounded scipy Dijkstra per candidate site, chunked) against the public one-search-per-site
  API (``Router.travel_times_from`` on a sample of sites, extrapolated);
- planning a year (twelve months x eight bands) from a year of history, total and per band,
  with the time in Gi*, in the solver and in the rest;
- solution quality on a few bands: greedy alone, greedy + swaps (the planner) and the exact
  MCLP solved by HiGHS at the same number of posts (time-limited; its MIP gap is printed),
  plus a naive planner (the p sites with the most calls within reach, each judged alone,
  overlaps not discounted) for scale;
- optionally (``--spopt``, if PySAL spopt is installed) spopt's MCLP on one band;
- the back-test over the second year (twelve held-out months).

All history here is SYNTHETIC (generated), and labelled so in the output.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from _common import put_repo_root_first

put_repo_root_first()

from pivots.backtest import backtest  # noqa: E402
from pivots.bands import DayKind, band_id, month_index  # noqa: E402
from pivots.planner import Planner  # noqa: E402
from pivots.solver import CoverProblem, exact_cover  # noqa: E402
from pivots.synthetic import SYNTHETIC_LABEL, generate_history  # noqa: E402
from routing import Router  # noqa: E402
from routing.build import shared_osm_dir  # noqa: E402


def _clock() -> float:
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--graph", type=Path, default=None, help="default: Shanghai extract")
    parser.add_argument("--exact-bands", type=int, default=2, help="bands solved exactly")
    parser.add_argument("--exact-limit-s", type=float, default=60.0)
    parser.add_argument("--sample-sites", type=int, default=200)
    parser.add_argument("--spopt", action="store_true", help="also time spopt's MCLP")
    args = parser.parse_args()
    source = args.graph
    if source is None:
        folder = shared_osm_dir()
        if folder is None:
            raise SystemExit("no --graph and no shared OSM folder (../shared/data/osm)")
        source = folder / "shanghai_center.osm"
    print(f"# {SYNTHETIC_LABEL}, seed {args.seed}, graph {source}")

    t = _clock()
    router = Router.from_file(source)
    print(
        f"graph load            {_clock() - t:8.2f} s  ({router.graph.node_count:,} nodes, "
        f"{router.graph.edge_count:,} edges)"
    )
    t = _clock()
    records = generate_history(router.graph, seed=args.seed, months=24)
    print(f"history generated     {_clock() - t:8.2f} s  ({len(records):,} incidents, 24 months)")
    year_one = [r for r in records if r.occurred_at.year == records[0].occurred_at.year]

    t = _clock()
    planner = Planner(router)
    setup_s = _clock() - t
    cov = planner.coverage
    print(
        f"planner set-up        {setup_s:8.2f} s  ({cov.candidate_count:,} candidate sites, "
        f"{cov.time_s.nnz:,} site-node pairs within {cov.cover_s:.0f} s)"
    )
    # Baseline: one public one-to-many search per site (to every node), on a sample.
    g = router.graph
    everyone = list(zip(g.node_lat.tolist(), g.node_lon.tolist(), strict=True))
    rng = np.random.default_rng(0)
    sample = rng.choice(cov.sites, size=min(args.sample_sites, cov.candidate_count), replace=False)
    t = _clock()
    for node in sample.tolist():
        router.travel_times_from((float(g.node_lat[node]), float(g.node_lon[node])), everyone)
    per_site = (_clock() - t) / sample.shape[0]
    t = _clock()
    type(cov)(router, cov.sites, cover_s=cov.cover_s)
    matrix_s = _clock() - t
    naive_s = per_site * cov.candidate_count
    print(
        f"coverage matrix       {matrix_s:8.2f} s  vs travel_times_from per site "
        f"{per_site * 1000:.1f} ms x {cov.candidate_count:,} = {naive_s:.1f} s "
        f"({naive_s / matrix_s:.0f}x)"
    )

    # Plan a year, with a breakdown.
    gi_s = solve_s = 0.0
    run_gi, choose = planner.hotspots.run, planner.choose

    def timed_gi(values: np.ndarray) -> object:
        nonlocal gi_s
        t0 = _clock()
        out = run_gi(values)
        gi_s += _clock() - t0
        return out

    def timed_choose(*a: object, **k: object) -> object:
        nonlocal solve_s
        t0 = _clock()
        out = choose(*a, **k)  # type: ignore[arg-type]
        solve_s += _clock() - t0
        return out

    planner.hotspots.run = timed_gi  # type: ignore[method-assign,assignment]
    planner.choose = timed_choose  # type: ignore[method-assign,assignment]
    t, cpu = _clock(), time.process_time()
    plan = planner.plan(year_one)
    plan_s, plan_cpu = _clock() - t, time.process_time() - cpu
    planner.hotspots.run = run_gi  # type: ignore[method-assign]
    planner.choose = choose  # type: ignore[method-assign]
    bands = len(plan.bands)
    print(
        f"plan a year           {plan_s:8.2f} s  ({len(plan.months)} months x "
        f"{bands // len(plan.months)} bands = {bands} bands from {len(year_one):,} incidents; "
        f"{plan_s / bands * 1000:.0f} ms a band, CPU {plan_cpu:.2f} s: Gi* {gi_s:.2f} s, solver "
        f"{solve_s - gi_s:.2f} s, the rest {plan_s - solve_s:.2f} s)"
    )
    counts = [b.post_count for b in plan.bands]
    print(
        f"posts per band        min {min(counts)}  max {max(counts)}  "
        f"busiest band by month {plan.posts_by_month()}"
    )

    # Quality on a few bands: greedy, greedy + swaps, exact HiGHS, naive.
    frame = planner.frame(year_one)
    first = int(frame.month.min())
    y2 = records[-1].occurred_at.year
    picks = [
        (month_index(y2 - 1, 7), band_id(DayKind.WEEKDAY, 3, planner.bands)),
        (month_index(y2 - 1, 1), band_id(DayKind.WEEKDAY, 1, planner.bands)),
        (month_index(y2 - 1, 12), band_id(DayKind.WEEKEND, 2, planner.bands)),
    ]
    print(
        "band                  posts  greedy  +swaps   exact (gap, s)        naive   "
        "(expected calls within cover_s)"
    )
    for target, b in picks[: args.exact_bands]:
        demand = planner.demand(frame, target + 12, list(range(first, target + 12)))
        choice = planner.choose(demand, b)
        p = int(choice.rows.size)
        d = choice.demand
        problem = CoverProblem(cov.time_s, cov.cover_s, d, d, closeness=0.0)
        order, curve, hot = problem.greedy(p)
        greedy = problem.finish(order, curve, hot, swaps=False).covered
        swapped = problem.finish(order, curve, hot, swaps=True).covered
        t = _clock()
        _, exact, gap = exact_cover(cov.time_s, d, p, time_limit_s=args.exact_limit_s)
        exact_s = _clock() - t
        # Naive: the p sites with the most calls within reach, each judged alone.
        alone = (cov.time_s > 0).astype(np.float64) @ d
        naive_sites = np.argsort(-alone)[:p]
        naive = float(d[cov.covered_nodes(naive_sites)].sum())
        kind = "weekday" if b < len(planner.bands) else "weekend"
        hours = planner.bands.label(b % len(planner.bands))
        print(
            f"{target // 12}-{target % 12 + 1:02d} {kind} {hours}   {p:5d} {greedy:7.1f} "
            f"{swapped:7.1f} {exact:8.1f} ({gap:.3%}, {exact_s:.1f} s) {naive:8.1f}"
        )
    if args.spopt:
        _spopt(planner, frame, first, picks[0])

    t = _clock()
    result = backtest(planner, records, label=SYNTHETIC_LABEL)
    bt_s = _clock() - t
    print(f"back-test             {bt_s:8.2f} s  ({len(result.months)} held-out months)")
    for name, score in (
        ("planner", result.planner),
        ("static", result.static),
        ("last year", result.last_year),
    ):
        if score is not None:
            print(
                f"  {name:10s} covered {score.covered_share:.3f}  hit rate {score.hit_rate:.3f}"
                f"  PAI {score.pai:.2f}  mean posts {score.mean_posts:.1f}"
            )


def _spopt(planner: Planner, frame: object, first: int, pick: tuple[int, int]) -> None:
    try:
        import pulp  # type: ignore[import-untyped,unused-ignore]
        from spopt.locate import MCLP  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        print("spopt: not installed (pip install spopt pulp)")
        return
    target, b = pick
    demand = planner.demand(frame, target + 12, list(range(first, target + 12)))  # type: ignore[arg-type]
    choice = planner.choose(demand, b)
    d = choice.demand
    cols = np.flatnonzero(d > 0)
    cov = planner.coverage
    dense = cov.time_s[:, cols].toarray().T
    cost = np.where(dense > 0, dense, cov.cover_s * 10)
    t = _clock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MCLP.from_cost_matrix(
            cost, d[cols], service_radius=cov.cover_s, p_facilities=int(choice.rows.size)
        )
        built = _clock() - t
        model.solve(pulp.HiGHS(msg=False))
    print(f"spopt MCLP (one band) build {built:.1f} s, solve {_clock() - t - built:.1f} s")


if __name__ == "__main__":
    main()
