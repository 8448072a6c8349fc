"""Routing benchmark: Router vs networkx on the Shanghai extract and a synthetic 50k-node city.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python benchmarks/routing.py [--pairs 200] [--seed 0]

Prints per-query median / p99 (ms) for ``route``, ``travel_times_to`` (50 units) and
``travel_times_from`` (50 destinations) against networkx on the same weights and the same
pairs, the speed-up, build / load times, and the memory taken by the loaded 50k graph. Every
Router answer is checked against networkx.
"""

from __future__ import annotations

import argparse
import gc
import math
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
from _common import rss_bytes

from routing import Router, build_graph_file
from routing.build import shared_osm_dir
from routing.graph import save
from routing.synthetic import synthetic_city

UNITS = 50


def _timed(fn: Callable[[], object], runs: int) -> tuple[np.ndarray, list[object]]:
    out: list[object] = []
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        out.append(fn())
        times[i] = time.perf_counter() - start
    return times * 1000.0, out


def _stats(ms: np.ndarray) -> str:
    return f"median {np.median(ms):8.2f}  p99 {np.percentile(ms, 99):8.2f}"


def _nx_one_to_many(
    graph: Any, sources: np.ndarray, targets: np.ndarray, runs: int
) -> Callable[[], list[float]]:
    """A query per call, the next of ``runs``: networkx's Dijkstra from ``sources[i]`` over
    ``graph`` (reversed for times *to* the source), its costs to the nodes ``targets[i]``."""
    it = iter(range(runs))

    def one() -> list[float]:
        i = next(it)
        dist = nx.single_source_dijkstra_path_length(graph, int(sources[i]), weight="weight")
        return [dist[int(u)] for u in targets[i]]

    return one


def _assert_all_close(results: Sequence[Any], expected: Sequence[list[float]]) -> None:
    """Every Router answer's ``duration_s`` equals networkx's costs (the first runs)."""
    for res, costs in zip(results, expected, strict=False):
        assert np.allclose(res.duration_s, costs, rtol=1e-9, atol=1e-9)


def bench(name: str, router: Router, pairs: int, seed: int, nx_runs: int) -> None:
    g = router.graph
    print(
        f"\n== {name}: {g.node_count:,} nodes, {g.edge_count:,} edges, {g.signal_count:,} signals"
    )
    rng = np.random.default_rng(seed)
    od = rng.integers(0, g.node_count, size=(pairs, 2))
    points = [
        ((float(g.node_lat[a]), float(g.node_lon[a])), (float(g.node_lat[b]), float(g.node_lon[b])))
        for a, b in od
    ]
    t0 = time.perf_counter()
    graph = g.to_networkx(router.edge_time_s)  # osmnx-style MultiDiGraph, same weights
    reverse = graph.reverse(copy=False)
    print(f"networkx graph built in {time.perf_counter() - t0:.2f} s (not counted below)")

    it = iter(points)
    ours, routes = _timed(lambda: router.route(*next(it)), pairs)
    it_nodes = iter(od[:nx_runs])

    def nx_route() -> float:
        a, b = next(it_nodes)
        path = nx.shortest_path(graph, int(a), int(b), weight="weight")
        return float(nx.path_weight(graph, path, "weight")) if len(path) > 1 else 0.0

    theirs, nx_costs = _timed(nx_route, nx_runs)
    for route, cost in zip(routes, nx_costs, strict=False):
        assert math.isclose(route.duration_s, cost, rel_tol=1e-9, abs_tol=1e-9), (
            route.duration_s,
            cost,
        )  # type: ignore[attr-defined]
    print(
        f"route           yishao   {_stats(ours)}  ms ({pairs} pairs, snapping and Route included)"
    )
    print(f"route           networkx {_stats(theirs)}  ms ({nx_runs} of the same pairs)")
    print(
        f"route           speed-up median x{np.median(theirs) / np.median(ours):.1f}, "
        f"p99 x{np.percentile(theirs, 99) / np.percentile(ours, 99):.1f}"
    )

    incidents = rng.integers(0, g.node_count, size=pairs)
    units = rng.integers(0, g.node_count, size=(pairs, UNITS))
    latlon = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in incidents]
    unit_pts = [[(float(g.node_lat[u]), float(g.node_lon[u])) for u in row] for row in units]
    it_q = iter(range(pairs))
    ours_tt, results = _timed(
        lambda: router.travel_times_to(latlon[(i := next(it_q))], unit_pts[i]), pairs
    )
    theirs_tt, nx_tts = _timed(_nx_one_to_many(reverse, incidents, units, nx_runs), nx_runs)
    _assert_all_close(results, nx_tts)
    print(f"travel_times_to yishao   {_stats(ours_tt)}  ms ({UNITS} units, distances included)")
    print(f"travel_times_to networkx {_stats(theirs_tt)}  ms (one reverse Dijkstra per incident)")
    print(f"travel_times_to speed-up median x{np.median(theirs_tt) / np.median(ours_tt):.1f}")

    # The mirror: one forward search from the scene to 50 destinations (same points).
    it_f = iter(range(pairs))
    ours_tf, results_f = _timed(
        lambda: router.travel_times_from(latlon[(i := next(it_f))], unit_pts[i]), pairs
    )
    theirs_tf, nx_tfs = _timed(_nx_one_to_many(graph, incidents, units, nx_runs), nx_runs)
    _assert_all_close(results_f, nx_tfs)
    print(
        f"travel_times_from yishao   {_stats(ours_tf)}  ms ({UNITS} destinations, with distances)"
    )
    print(f"travel_times_from networkx {_stats(theirs_tf)}  ms (one Dijkstra per origin)")
    print(f"travel_times_from speed-up median x{np.median(theirs_tf) / np.median(ours_tf):.1f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200, help="queries per measurement")
    parser.add_argument("--nx-pairs", type=int, default=100, help="networkx queries (it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--side", type=int, default=224, help="synthetic grid side (224 -> 50,176 nodes)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="yishao-bench-") as tmp:
        folder = shared_osm_dir()
        shanghai = folder / "shanghai_center.osm" if folder else None
        if shanghai is not None and shanghai.is_file():
            t0 = time.perf_counter()
            cache = build_graph_file(shanghai, Path(tmp) / "shanghai.npz")
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            router = Router.from_file(cache)
            print(
                f"Shanghai: build from OSM {build_s:.2f} s, load from cache "
                f"{(time.perf_counter() - t0) * 1000:.0f} ms ({cache.stat().st_size / 1e6:.1f} MB)"
            )
            bench("Shanghai centre", router, args.pairs, args.seed, args.nx_pairs)
        else:
            print("Shanghai extract absent (../shared/data/osm): skipped")

        t0 = time.perf_counter()
        city = synthetic_city(args.side, seed=args.seed)
        path = save(city, Path(tmp) / "city.npz")
        build_s = time.perf_counter() - t0
        del city
        gc.collect()
        rss0 = rss_bytes()
        tracemalloc.start()
        t0 = time.perf_counter()
        router = Router.from_file(path)
        load_s = time.perf_counter() - t0
        traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = rss_bytes() - rss0
        print(
            f"\nSynthetic city: generate+save {build_s:.2f} s, "
            f"load (incl. KD-tree, CSR, calibration) "
            f"{load_s * 1000:.0f} ms, file {path.stat().st_size / 1e6:.1f} MB; loaded router "
            f"memory: tracemalloc {traced / 1e6:.1f} MB, RSS delta {rss / 1e6:.1f} MB"
        )
        bench("Synthetic city", router, args.pairs, args.seed, args.nx_pairs)


if __name__ == "__main__":
    main()
