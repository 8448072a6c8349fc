"""Routing benchmark: Router vs networkx vs the best library, Shanghai, a 50k grid, 1M nodes.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python benchmarks/routing.py [--pairs 200] [--seed 0] [--big-kind region|grid]
        [--big-across 15] [--big-side 1000] [--big-hierarchy] [--skip-big] [--skip-grid]

The million-node graph is by default a *region*: 15 x 15 copies of the Shanghai extract (real
street fabric, its signals and turn restrictions), 2 km apart, joined by eight two-way 80 km/h
trunk roads per neighbouring pair: 1,005,975 nodes, 2.2M turn states. ``--big-kind grid`` is a
perfect 1000 x 1000 street grid instead, the worst case for any hierarchy.

For each graph, on the same origin-destination points (random points up to ~40 m off the road,
so every query snaps onto a segment): our ``route`` and ``travel_times_to`` (50 units), median
and p99 in ms, against networkx (``shortest_path`` on a plain DiGraph) and the libraries that
install here (pandana's contraction hierarchies, igraph), with preprocessing time and memory.

The libraries answer a simpler question than ours: node to node, no turn costs, no turn
restrictions, no partial edges (they cannot take a turn graph's seeds). They are the speed
bar, not a correctness reference; ours is checked against our own plain Dijkstra over the turn
graph on a sample of the pairs, which must agree to 1e-9.

``--big-hierarchy`` builds the contraction hierarchy on the big grid too (the region always has
one; on a perfect grid the preprocessing is very slow); without it the big grid is measured
with plain Dijkstra over the turn graph. Also prints the time to load the Shanghai cache (the
measurement ``test_load_is_fast`` used to make in the test suite).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import math
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
from _common import rss_bytes

from routing import Router, build_graph_file
from routing.build import shared_osm_dir
from routing.graph import RoadGraph, load, save
from routing.synthetic import synthetic_city, tiled_region

UNITS = 50
CHECK_PAIRS = 20


def _timed(fn: Callable[[int], object], runs: int) -> tuple[np.ndarray, list[object]]:
    for i in range(min(3, runs)):  # warm-up: first calls pay for caches and compilation
        fn(i)
    out: list[object] = []
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        out.append(fn(i))
        times[i] = time.perf_counter() - start
    return times * 1000.0, out


def _stats(ms: np.ndarray) -> str:
    return f"median {np.median(ms):8.2f}  p99 {np.percentile(ms, 99):8.2f}"


def _points(
    g: RoadGraph, rng: np.random.Generator, count: int
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    nodes = rng.integers(0, g.node_count, count)
    jitter = rng.uniform(-3.5e-4, 3.5e-4, (count, 2))
    pts = [
        (float(g.node_lat[n] + j[0]), float(g.node_lon[n] + j[1]))
        for n, j in zip(nodes, jitter, strict=True)
    ]
    return nodes, pts


def _row(table: list[tuple[str, ...]], *cells: str) -> None:
    table.append(cells)
    print("  ".join(cells))


def bench(
    name: str,
    router: Router,
    pairs: int,
    seed: int,
    nx_runs: int,
    table: list[tuple[str, ...]],
    *,
    others: bool = True,
) -> None:
    g = router.graph
    t = router.turns
    print(
        f"\n== {name}: {g.node_count:,} nodes, {g.edge_count:,} edges, "
        f"{t.state_count:,} turn states, {t.arc_count:,} turns"
    )
    rng = np.random.default_rng(seed)
    o_nodes, origins = _points(g, rng, pairs)
    d_nodes, dests = _points(g, rng, pairs)
    units_nodes, units = _points(g, rng, pairs * UNITS)
    engine = "CH" if router.hierarchy is not None else "plain Dijkstra"

    edge_counts: list[int] = []

    def one_route(i: int) -> object:
        # Only the routes checked below are kept: thousands of live Route objects would make
        # the collector's passes (and so the p99) the benchmark's own artefact.
        route = router.route(origins[i], dests[i])
        edge_counts.append(len(route.edges))
        return route if i < CHECK_PAIRS else None

    ours, routes = _timed(one_route, pairs)
    ours_tt, tts = _timed(
        lambda i: router.travel_times_to(dests[i], units[i * UNITS : (i + 1) * UNITS]), pairs
    )
    _row(table, name, f"yishao route ({engine}, turns, phantoms)", _stats(ours))
    _row(table, name, f"yishao travel_times_to 50 ({engine})", _stats(ours_tt))
    edges = np.array(edge_counts[-pairs:])  # the warm-up calls first
    print(f"   routes: median {np.median(edges):.0f} edges, max {edges.max()}")
    ch = router.hierarchy
    if ch is not None:
        # The search alone (cost, unpacked states; no snapping, no Route object) between
        # random turn states: what grows with the graph. A Route's objects grow with its
        # length (a few microseconds an edge in pydantic).
        states = rng.integers(0, ch.state_count, (pairs, 2))
        zero = [0.0]
        engine_ms, _ = _timed(
            lambda i: ch.route([int(states[i, 0])], zero, zero, [int(states[i, 1])], zero, zero),
            pairs,
        )
        _row(table, name, "yishao route, the CH search alone", _stats(engine_ms))
    # A district's fleet: 50 units within about 5 km of the incident (a ranking's usual case;
    # the row above draws units anywhere on the graph).
    lat, lon = g.node_lat, g.node_lon
    local: list[list[tuple[float, float]]] = []
    for d in dests:
        near = np.flatnonzero((np.abs(lat - d[0]) < 0.045) & (np.abs(lon - d[1]) < 0.05))
        local.append([(float(lat[n]), float(lon[n])) for n in rng.choice(near, UNITS)])
    local_tt, _ = _timed(lambda i: router.travel_times_to(dests[i], local[i]), pairs)
    _row(table, name, f"yishao travel_times_to 50 within ~5 km ({engine})", _stats(local_tt))

    # Our answers against our own plain Dijkstra over the same turn graph (first pairs).
    if router.hierarchy is not None:
        plain = Router(g, profile=router.profile, use_hierarchy=False)
        for i in range(min(CHECK_PAIRS, pairs)):
            want = plain.route(origins[i], dests[i]).duration_s
            assert math.isclose(routes[i].duration_s, want, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[attr-defined]
            want_tt = plain.travel_times_to(dests[i], units[i * UNITS : (i + 1) * UNITS]).duration_s
            assert np.allclose(tts[i].duration_s, want_tt, rtol=1e-9, atol=1e-9)  # type: ignore[attr-defined]
        print(f"   checked: {min(CHECK_PAIRS, pairs)} routes and rankings equal plain Dijkstra")

    if not others:
        return
    weights = router.edge_time_s
    if g.node_count <= 200_000:
        t0 = time.perf_counter()
        digraph = nx.DiGraph()
        digraph.add_weighted_edges_from(
            zip(g.edge_u.tolist(), g.edge_v.tolist(), weights.tolist(), strict=True)
        )
        reverse = digraph.reverse(copy=False)
        print(f"   networkx DiGraph built in {time.perf_counter() - t0:.2f} s")
        runs = min(nx_runs, pairs)
        theirs, _ = _timed(
            lambda i: nx.shortest_path(digraph, int(o_nodes[i]), int(d_nodes[i]), weight="weight"),
            runs,
        )
        theirs_tt, _ = _timed(
            lambda i: [
                nx.single_source_dijkstra_path_length(reverse, int(d_nodes[i]), weight="weight")[
                    int(u)
                ]
                for u in units_nodes[i * UNITS : i * UNITS + 1]
            ],
            runs,
        )
        _row(table, name, "networkx shortest_path (node graph)", _stats(theirs))
        _row(table, name, "networkx reverse Dijkstra (50 units)", _stats(theirs_tt))
    else:
        print("   networkx skipped (too slow at this size)")

    if importlib.util.find_spec("igraph") is not None and g.node_count <= 200_000:
        import igraph  # type: ignore[import-untyped,import-not-found,unused-ignore]

        ig = igraph.Graph(
            n=g.node_count,
            edges=list(zip(g.edge_u.tolist(), g.edge_v.tolist(), strict=True)),
            directed=True,
        )
        ig.es["weight"] = weights.tolist()
        ig_ms, _ = _timed(
            lambda i: ig.get_shortest_paths(int(o_nodes[i]), int(d_nodes[i]), weights="weight"),
            pairs,
        )
        _row(table, name, "igraph get_shortest_paths (node graph)", _stats(ig_ms))

    if importlib.util.find_spec("networkit") is not None:
        import networkit as nk  # type: ignore[import-untyped,import-not-found,unused-ignore]

        t0 = time.perf_counter()
        nkg = nk.Graph(g.node_count, weighted=True, directed=True)
        nkg.addEdges((weights, (g.edge_u.astype(np.uint64), g.edge_v.astype(np.uint64))))
        nk_build = time.perf_counter() - t0

        def nk_route(i: int) -> float:
            search = nk.distance.BidirectionalDijkstra(nkg, int(o_nodes[i]), int(d_nodes[i]), True)
            search.run()
            return float(search.getDistance())

        nk_ms, _ = _timed(nk_route, min(pairs, 50))
        _row(
            table, name, f"networkit BidirectionalDijkstra (node graph; {nk_build:.1f} s)",
            _stats(nk_ms),
        )  # fmt: skip

    if importlib.util.find_spec("rustworkx") is not None and g.node_count <= 200_000:
        import rustworkx as rx  # type: ignore[import-untyped,import-not-found,unused-ignore]

        rxg = rx.PyDiGraph()
        rxg.add_nodes_from(range(g.node_count))
        rxg.add_edges_from(
            list(zip(g.edge_u.tolist(), g.edge_v.tolist(), weights.tolist(), strict=True))
        )
        rx_ms, _ = _timed(
            lambda i: rx.digraph_dijkstra_shortest_path_lengths(
                rxg, int(o_nodes[i]), edge_cost_fn=float, goal=int(d_nodes[i])
            ),
            min(pairs, 50),
        )
        _row(table, name, "rustworkx dijkstra to goal (node graph)", _stats(rx_ms))

    if importlib.util.find_spec("pandana") is not None:
        import pandana  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        net = pandana.Network(
            pd.Series(g.node_lon), pd.Series(g.node_lat),
            pd.Series(g.edge_u.astype(np.int64)), pd.Series(g.edge_v.astype(np.int64)),
            pd.DataFrame({"w": weights}), twoway=False,
        )  # fmt: skip
        build_s = time.perf_counter() - t0
        print(f"   pandana CH build {build_s:.1f} s, RSS +{(rss_bytes() - rss0) / 1e6:.0f} MB")
        pd_ms, _ = _timed(lambda i: net.shortest_path(int(o_nodes[i]), int(d_nodes[i])), pairs)
        pd_tt, _ = _timed(
            lambda i: net.shortest_path_lengths(
                units_nodes[i * UNITS : (i + 1) * UNITS].tolist(), [int(d_nodes[i])] * UNITS
            ),
            pairs,
        )
        _row(
            table,
            name,
            f"pandana CH shortest_path (node graph; build {build_s:.0f} s)",
            _stats(pd_ms),
        )
        _row(table, name, "pandana CH shortest_path_lengths 50", _stats(pd_tt))
        del net
        gc.collect()


def _router_with_stats(path: Path, label: str, *, use_hierarchy: bool = True) -> Router:
    gc.collect()
    rss0 = rss_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    router = Router.from_file(path) if use_hierarchy else Router(load(path), use_hierarchy=False)
    load_s = time.perf_counter() - t0
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # As the service does once it is up (dispatch.api.app): what is loaded stays out of the
    # collector's full passes, which otherwise stall a query for 50-100 ms now and then.
    gc.freeze()
    ch = router.hierarchy
    ch_info = (
        f"CH {ch.meta['shortcuts']:,} shortcuts, {ch.nbytes / 1e6:.0f} MB, "
        f"built in {ch.meta['build_s']:.1f} s (0 if loaded)"
        if ch is not None
        else "no CH"
    )
    print(
        f"{label}: router ready in {load_s:.1f} s ({ch_info}); memory: tracemalloc "
        f"{traced / 1e6:.0f} MB, RSS +{(rss_bytes() - rss0) / 1e6:.0f} MB"
    )
    return router


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200, help="queries per measurement")
    parser.add_argument("--nx-pairs", type=int, default=50, help="networkx queries (it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", type=int, default=224, help="grid side (224 -> 50,176 nodes)")
    parser.add_argument(
        "--big-kind",
        choices=("region", "grid"),
        default="region",
        help="the 1M graph: copies of the Shanghai extract joined by trunk roads, or a grid",
    )
    parser.add_argument(
        "--big-across", type=int, default=15, help="region copies per side (15 -> 1,005,975)"
    )
    parser.add_argument("--big-side", type=int, default=1000, help="big grid side (1,000,000)")
    parser.add_argument("--big-hierarchy", action="store_true", help="build the CH on the big grid")
    parser.add_argument("--big-pairs", type=int, default=20, help="queries on the big grid")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip networkx and the other libraries"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="keep the graphs and their hierarchies here, and reuse them on the next run "
        "(the build times printed are then those of the first run: see each cache's meta)",
    )
    args = parser.parse_args(argv)
    table: list[tuple[str, ...]] = []

    with contextlib.ExitStack() as stack:
        if args.cache_dir is not None:
            args.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = str(args.cache_dir)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="yishao-bench-"))
        folder = shared_osm_dir()
        shanghai = folder / "shanghai_center.osm" if folder else None
        shanghai_graph: RoadGraph | None = None
        if shanghai is not None and shanghai.is_file():
            t0 = time.perf_counter()
            cache = build_graph_file(shanghai, Path(tmp) / "shanghai.npz")
            print(f"Shanghai: build from OSM {time.perf_counter() - t0:.2f} s")
            router = _router_with_stats(cache, "Shanghai (first load: builds the CH)")
            t0 = time.perf_counter()
            Router.from_file(cache)
            print(
                f"Shanghai: load from cache, CH included {(time.perf_counter() - t0) * 1000:.0f} ms"
            )
            bench(
                "Shanghai centre", router, args.pairs, args.seed, args.nx_pairs, table,
                others=not args.ours_only,
            )  # fmt: skip
            shanghai_graph = router.graph
        else:
            print("Shanghai extract absent (../shared/data/osm): skipped")

        sizes: list[tuple[str, Callable[[], RoadGraph], bool, int]] = []
        if not args.skip_grid:
            sizes.append(
                ("Grid 50k", lambda: synthetic_city(args.side, seed=args.seed), True, args.pairs)
            )
        if not args.skip_big and args.big_kind == "region":
            if shanghai_graph is None:
                print("Region: needs the Shanghai extract: skipped")
            else:
                tile = shanghai_graph
                sizes.append(
                    (
                        f"Region {args.big_across}x{args.big_across} Shanghai",
                        lambda: tiled_region(tile, args.big_across, seed=args.seed),
                        True,
                        args.big_pairs,
                    )
                )
        elif not args.skip_big:
            sizes.append(
                (
                    f"Grid {args.big_side**2 // 1000}k",
                    lambda: synthetic_city(args.big_side, seed=args.seed),
                    args.big_hierarchy,
                    args.big_pairs,
                )
            )
        for label, make, use_ch, pairs in sizes:
            t0 = time.perf_counter()
            city = make()
            path = Path(tmp) / f"{label.split()[0].lower()}{city.node_count}.npz"
            if not path.exists():  # a kept one (--cache-dir) comes with its hierarchy
                save(city, path)
            print(f"\n{label}: generate+save {time.perf_counter() - t0:.1f} s")
            del city
            router = _router_with_stats(path, label, use_hierarchy=use_ch)
            bench(label, router, pairs, args.seed, args.nx_pairs, table, others=not args.ours_only)
            del router
            gc.collect()

    print("\n| graph | method | ms |\n|---|---|---|")
    for cells in table:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
