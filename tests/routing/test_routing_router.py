"""Router queries: optimal, valid routes; one-to-many; snapping; signals; threads."""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import pytest

from routing import NORMAL, NoRouteError, OffGraphError, Route, Router
from routing import hierarchy as hierarchy_mod
from routing.graph import haversine_m
from routing.router import route_distance_check
from routing.synthetic import synthetic_city

from .conftest import node_to_node_s, phantom_cost, turn_nx


def _pairs(router: Router, count: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(a), int(b)) for a, b in rng.integers(0, router.graph.node_count, size=(count, 2))]


def _check_valid(router: Router, route: Route) -> None:
    g = router.graph
    for prev, nxt in zip(route.edges, route.edges[1:], strict=False):
        assert prev.v == nxt.u, "edges must be contiguous"
    if route.edges and route.origin.edge_u is None:  # a node-to-node route
        assert route.edges[0].u == route.origin.node_id
        assert route.edges[-1].v == route.destination.node_id
    if route.edges and route.origin.edge_u is not None:
        # Starts and ends on the snapped segments, exactly at the projections.
        first, last = route.edges[0], route.edges[-1]
        for edge, snap, node in ((first, route.origin, first.u), (last, route.destination, last.v)):
            if {edge.u, edge.v} != {snap.edge_u, snap.edge_v}:
                # Only a point on a node may start (end) on the next (previous) edge.
                index = router.node_index(node)
                assert haversine_m(snap.lat, snap.lon, g.node_lat[index], g.node_lon[index]) < 0.01
        assert route.coordinates[0] == (route.origin.lon, route.origin.lat)
        assert route.coordinates[-1] == (route.destination.lon, route.destination.lat)
        for edge in route.edges[1:-1]:
            assert (edge.from_fraction, edge.to_fraction) == (0.0, 1.0)
    assert math.isclose(
        route.duration_s, sum(e.duration_s for e in route.edges), rel_tol=1e-9, abs_tol=1e-9
    )
    assert math.isclose(
        route.distance_m, sum(e.length_m for e in route.edges), rel_tol=1e-9, abs_tol=1e-9
    )
    # Each edge's polyline begins where the coordinates say it does (a partial first edge
    # begins at the origin's projection, checked above).
    for edge in route.edges:
        if edge.from_fraction > 0.0:
            continue
        lon, lat = route.coordinates[edge.start_index]
        node = router.node_index(edge.u)
        assert (lon, lat) == (float(g.node_lon[node]), float(g.node_lat[node]))
    etas = [s.eta_s for s in route.signals]
    assert all(a < b for a, b in itertools.pairwise(etas)), "signal ETAs strictly increase"
    assert all(0 < eta < route.duration_s for eta in etas)
    for sig in route.signals:
        assert g.node_signal[router.node_index(sig.node_id)]
        assert 0 <= sig.inbound_bearing_deg < 360 and 0 <= sig.outbound_bearing_deg < 360


def test_routes_equal_networkx_dijkstra(shanghai: Router, shanghai_nx: nx.DiGraph) -> None:
    for source, target in _pairs(shanghai, 200, seed=7):
        route = shanghai.route_nodes(source, target)
        expected = node_to_node_s(shanghai_nx, shanghai, source, target)
        assert route.duration_s == pytest.approx(expected, rel=1e-9, abs=1e-9)
        _check_valid(shanghai, route)


def test_normal_profile_is_exact_and_slower(shanghai_cache: object, shanghai: Router) -> None:
    normal = Router(shanghai.graph, profile=NORMAL)
    graph = turn_nx(normal)
    for source, target in _pairs(normal, 20, seed=11):
        fast = shanghai.route_nodes(source, target)
        slow = normal.route_nodes(source, target)
        assert slow.duration_s == pytest.approx(
            node_to_node_s(graph, normal, source, target), rel=1e-9
        )
        assert slow.duration_s >= fast.duration_s


def test_synthetic_city_routes_are_optimal(small_city: Router) -> None:
    graph = turn_nx(small_city)
    for source, target in _pairs(small_city, 100, seed=5):
        route = small_city.route_nodes(source, target)
        assert route.duration_s == pytest.approx(
            node_to_node_s(graph, small_city, source, target), rel=1e-9
        )
        _check_valid(small_city, route)


def test_route_snaps_points_near_the_road(shanghai: Router) -> None:
    rng = np.random.default_rng(2)
    g = shanghai.graph
    for _ in range(30):
        a, b = rng.integers(0, g.node_count, 2)
        # Points 0-40 m off a node: the snap (nearest road, then its nearer end) must be close.
        jitter = rng.uniform(-0.0003, 0.0003, 4)
        origin = (float(g.node_lat[a] + jitter[0]), float(g.node_lon[a] + jitter[1]))
        destination = (float(g.node_lat[b] + jitter[2]), float(g.node_lon[b] + jitter[3]))
        route = shanghai.route(origin, destination)
        _check_valid(shanghai, route)
        for snap, asked in ((route.origin, origin), (route.destination, destination)):
            assert snap.snap_distance_m <= 60.0
            # The route starts and ends at the projection itself, not at a node.
            assert haversine_m(snap.lat, snap.lon, *asked) == pytest.approx(
                snap.snap_distance_m, rel=0.01, abs=0.5
            )
        assert route_distance_check(route) == pytest.approx(route.distance_m, rel=0.05, abs=5.0)


def test_snap_picks_the_nearest_road_not_the_nearest_node(shanghai: Router) -> None:
    g = shanghai.graph
    longest = int(np.argmax(g.edge_length_m))
    lons, lats = g.edge_polyline(longest)
    mid = len(lons) // 2
    snap = shanghai.snap((float(lats[mid]), float(lons[mid])))
    assert snap.snap_distance_m < 15.0


def test_off_graph_points_raise(shanghai: Router) -> None:
    with pytest.raises(OffGraphError) as info:
        shanghai.route((31.23, 121.47), (31.40, 121.47))  # ~13 km north of the extract
    assert info.value.distance_m > 500
    assert "outside the routing graph" in str(info.value)
    strict = Router(shanghai.graph, max_snap_m=1.0)
    with pytest.raises(OffGraphError):
        strict.snap((31.2300, 121.4705))


def test_travel_times_to_equals_per_origin_dijkstra(
    shanghai: Router, shanghai_nx: nx.DiGraph
) -> None:
    g = shanghai.graph
    rng = np.random.default_rng(4)
    nodes = rng.integers(0, g.node_count, 51)
    dest = (float(g.node_lat[nodes[0]]), float(g.node_lon[nodes[0]]))
    origins = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in nodes[1:]]
    result = shanghai.travel_times_to(dest, [*origins, (10.0, 10.0)])
    for i, origin in enumerate(origins):
        expected_s, _ = phantom_cost(shanghai_nx, shanghai, origin, dest)
        assert result.duration_s[i] == pytest.approx(expected_s, rel=1e-9, abs=1e-9)
        route = shanghai.route(origin, dest)
        assert route.duration_s == pytest.approx(expected_s, rel=1e-9, abs=1e-9)
        # Exact travel-time ties do not occur on real lengths, so the fastest path is unique.
        assert result.distance_m[i] == pytest.approx(route.distance_m, rel=1e-6, abs=1e-6)
    assert math.isinf(result.duration_s[-1]) and math.isinf(result.distance_m[-1])
    with pytest.raises(OffGraphError):
        shanghai.travel_times_to((0.0, 0.0), origins)
    assert shanghai.travel_times_to(dest, []).duration_s.shape == (0,)


def test_travel_times_from_equals_per_destination_dijkstra(
    shanghai: Router, shanghai_nx: nx.DiGraph
) -> None:
    g = shanghai.graph
    rng = np.random.default_rng(8)
    nodes = rng.integers(0, g.node_count, 51)
    scene = (float(g.node_lat[nodes[0]]), float(g.node_lon[nodes[0]]))
    hospitals = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in nodes[1:]]
    result = shanghai.travel_times_from(scene, [*hospitals, (10.0, 10.0), scene])
    assert result.origin is not None and result.destination is None
    for i, hospital in enumerate(hospitals):
        expected_s, _ = phantom_cost(shanghai_nx, shanghai, scene, hospital)
        assert result.duration_s[i] == pytest.approx(expected_s, rel=1e-9, abs=1e-9)
        route = shanghai.route(scene, hospital)
        assert result.distance_m[i] == pytest.approx(route.distance_m, rel=1e-6, abs=1e-6)
    assert math.isinf(result.duration_s[-2]) and math.isinf(result.distance_m[-2])
    assert result.snap_distance_m[-2] > shanghai.max_snap_m
    assert result.duration_s[-1] == 0.0 and result.distance_m[-1] == 0.0
    with pytest.raises(OffGraphError):
        shanghai.travel_times_from((0.0, 0.0), hospitals)
    empty = shanghai.travel_times_from(scene, [])
    assert empty.duration_s.shape == empty.distance_m.shape == (0,)


@pytest.mark.parametrize("first_cap", [4, 64, 1 << 14])
def test_one_to_many_is_exact_whatever_the_label_table_size(
    first_cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny first table makes every hierarchy query overflow and retry bigger; a big one
    # answers at once. The answers must not change, and must equal networkx's.
    monkeypatch.setattr(hierarchy_mod, "_FIRST_CAP", first_cap)
    router = Router(synthetic_city(30, seed=3))
    turns = turn_nx(router)
    g = router.graph
    rng = np.random.default_rng(12)
    for _ in range(3):
        root, *others = rng.integers(0, g.node_count, 11).tolist()
        jitter = rng.uniform(-3e-4, 3e-4, (11, 2))
        here = (float(g.node_lat[root] + jitter[0, 0]), float(g.node_lon[root] + jitter[0, 1]))
        there = [
            (float(g.node_lat[n] + jitter[i + 1, 0]), float(g.node_lon[n] + jitter[i + 1, 1]))
            for i, n in enumerate(others)
        ]
        to = router.travel_times_to(here, there)
        away = router.travel_times_from(here, there)
        for i, point in enumerate(there):
            into_s, into_m = phantom_cost(turns, router, point, here)
            out_s, out_m = phantom_cost(turns, router, here, point)
            assert to.duration_s[i] == pytest.approx(into_s, rel=1e-9, abs=1e-9)
            assert away.duration_s[i] == pytest.approx(out_s, rel=1e-9, abs=1e-9)
            # Equal-time ties are possible on the jittered grid only in theory; the check
            # would then flag a different (equally fast) path.
            assert to.distance_m[i] == pytest.approx(into_m, rel=1e-6, abs=1e-6)
            assert away.distance_m[i] == pytest.approx(out_m, rel=1e-6, abs=1e-6)
            assert router.route(point, here).duration_s == pytest.approx(into_s, rel=1e-9, abs=1e-9)
    # A table that overflowed once is not retried at its first size again.
    assert router.hierarchy is not None
    if first_cap == 4:
        assert router.hierarchy._cap > first_cap
    if first_cap == 1 << 14:
        assert router.hierarchy._cap == first_cap


def test_concurrent_queries_match_sequential(shanghai: Router) -> None:
    pairs = _pairs(shanghai, 40, seed=9)
    expected = [shanghai.route_nodes(s, t).duration_s for s, t in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: shanghai.route_nodes(*p).duration_s, pairs))
    assert got == expected


def test_concurrent_rankings_match_sequential(shanghai: Router) -> None:
    """One-to-many sweeps share a pool of scratch arrays over all states: rankings run from
    several threads at once give the sequential answers, and the pool holds no more scratch
    than ran at once."""
    g = shanghai.graph
    rng = np.random.default_rng(5)
    points = [
        (float(g.node_lat[n]), float(g.node_lon[n])) for n in rng.integers(0, g.node_count, 240)
    ]
    queries = [(points[i], points[40 + 10 * i : 50 + 10 * i]) for i in range(20)]
    expected = [shanghai.travel_times_to(d, units).duration_s.tolist() for d, units in queries]
    hierarchy = shanghai.hierarchy
    assert hierarchy is not None
    before = hierarchy._sweeps.qsize()  # sequential queries reuse one
    assert before >= 1
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: shanghai.travel_times_to(*q).duration_s.tolist(), queries))
    assert got == expected
    assert hierarchy._sweeps.qsize() <= max(before, 4)


def test_route_to_same_point_is_empty(shanghai: Router) -> None:
    g = shanghai.graph
    point = (float(g.node_lat[10]), float(g.node_lon[10]))
    route = shanghai.route(point, point)
    assert route.edges == [] and route.duration_s == 0.0 and route.signals == []


def test_route_json_round_trip(shanghai: Router) -> None:
    route = shanghai.route((31.23, 121.47), (31.21, 121.50))
    again = Route.model_validate_json(route.model_dump_json())
    assert again == route


def test_edges_say_which_node_delay_their_time_holds(shanghai: Router) -> None:
    """Each edge's time is its drive, its turn and the node delay it reports, nothing hidden.

    Drills take the expected signal delay out of an edge's time where they model the signal
    itself, so an edge must not claim a delay it was not charged (a route starting on the
    outgoing edge of a signal pays none there).
    """
    g = shanghai.graph
    signals = np.flatnonzero(g.node_signal)
    rng = np.random.default_rng(3)
    checked = 0
    starts_paying = 0
    for node in rng.choice(signals, size=40, replace=False).tolist():
        start = (float(g.node_lat[node]), float(g.node_lon[node]))
        far = int(rng.integers(g.node_lat.shape[0]))
        try:
            route = shanghai.route(start, (float(g.node_lat[far]), float(g.node_lon[far])))
        except NoRouteError:
            continue
        if len(route.edges) < 2:
            continue
        for k, edge in enumerate(route.edges):
            drive = edge.length_m / (edge.speed_kph / 3.6)
            parts = drive + edge.turn_s + edge.delay_s
            # The last edge may carry the time of a zero-length piece folded into it.
            if k < len(route.edges) - 1:
                assert edge.duration_s == pytest.approx(parts, abs=1e-6)
            else:
                assert edge.duration_s >= parts - 1e-6
        first = route.edges[0]
        assert first.delay_s in (0.0, pytest.approx(shanghai.profile.signal_delay_s))
        if first.from_fraction > 0.0:
            assert first.delay_s == 0.0
        starts_paying += first.delay_s > 0
        sig_ids = {s.node_id for s in route.signals}
        for edge in route.edges[1:]:
            if edge.u in sig_ids:
                assert edge.delay_s == pytest.approx(shanghai.profile.signal_delay_s)
        checked += 1
    assert checked >= 10 and starts_paying < checked
