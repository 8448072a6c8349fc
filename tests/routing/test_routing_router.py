"""Router queries: optimal, valid routes; one-to-many; snapping; signals; threads."""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import pytest

from routing import NORMAL, OffGraphError, Route, Router
from routing.graph import haversine_m
from routing.router import route_distance_check
from routing.synthetic import synthetic_city


def _pairs(router: Router, count: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(a), int(b)) for a, b in rng.integers(0, router.graph.node_count, size=(count, 2))]


def _check_valid(router: Router, route: Route) -> None:
    g = router.graph
    for prev, nxt in zip(route.edges, route.edges[1:], strict=False):
        assert prev.v == nxt.u, "edges must be contiguous"
    if route.edges:
        assert route.edges[0].u == route.origin.node_id
        assert route.edges[-1].v == route.destination.node_id
    assert math.isclose(
        route.duration_s, sum(e.duration_s for e in route.edges), rel_tol=1e-9, abs_tol=1e-9
    )
    assert math.isclose(
        route.distance_m, sum(e.length_m for e in route.edges), rel_tol=1e-9, abs_tol=1e-9
    )
    # Each edge's polyline begins where the coordinates say it does.
    for edge in route.edges:
        lon, lat = route.coordinates[edge.start_index]
        node = router.node_index(edge.u)
        assert (lon, lat) == (float(g.node_lon[node]), float(g.node_lat[node]))
    etas = [s.eta_s for s in route.signals]
    assert all(a < b for a, b in itertools.pairwise(etas)), "signal ETAs strictly increase"
    assert all(0 < eta < route.duration_s for eta in etas)
    for sig in route.signals:
        assert g.node_signal[router.node_index(sig.node_id)]
        assert 0 <= sig.inbound_bearing_deg < 360 and 0 <= sig.outbound_bearing_deg < 360


def test_routes_equal_networkx_dijkstra(shanghai: Router, shanghai_nx: nx.MultiDiGraph) -> None:
    for source, target in _pairs(shanghai, 200, seed=7):
        route = shanghai.route_nodes(source, target)
        expected = nx.dijkstra_path_length(shanghai_nx, source, target, weight="weight")
        assert route.duration_s == pytest.approx(expected, rel=1e-9, abs=1e-9)
        _check_valid(shanghai, route)


def test_normal_profile_is_exact_and_slower(shanghai_cache: object, shanghai: Router) -> None:
    normal = Router(shanghai.graph, profile=NORMAL)
    graph = normal.graph.to_networkx(normal.edge_time_s)
    for source, target in _pairs(normal, 20, seed=11):
        fast = shanghai.route_nodes(source, target)
        slow = normal.route_nodes(source, target)
        assert slow.duration_s == pytest.approx(
            nx.dijkstra_path_length(graph, source, target), rel=1e-9
        )
        assert slow.duration_s >= fast.duration_s


def test_synthetic_city_routes_are_optimal(small_city: Router) -> None:
    graph = small_city.graph.to_networkx(small_city.edge_time_s)
    for source, target in _pairs(small_city, 100, seed=5):
        route = small_city.route_nodes(source, target)
        assert route.duration_s == pytest.approx(
            nx.dijkstra_path_length(graph, source, target), rel=1e-9
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
            # The node is at most half the longest edge away from the asked point.
            assert haversine_m(snap.lat, snap.lon, *asked) < 60.0 + g.edge_length_m.max() / 2
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
    shanghai: Router, shanghai_nx: nx.MultiDiGraph
) -> None:
    g = shanghai.graph
    rng = np.random.default_rng(4)
    nodes = rng.integers(0, g.node_count, 51)
    dest = (float(g.node_lat[nodes[0]]), float(g.node_lon[nodes[0]]))
    origins = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in nodes[1:]]
    result = shanghai.travel_times_to(dest, [*origins, (10.0, 10.0)])
    target = shanghai.node_index(result.destination.node_id)
    for i, origin in enumerate(origins):
        source = shanghai.node_index(shanghai.snap(origin).node_id)
        route = shanghai.route_nodes(source, target)
        assert result.duration_s[i] == pytest.approx(
            nx.dijkstra_path_length(shanghai_nx, source, target), rel=1e-9, abs=1e-9
        )
        # Exact travel-time ties do not occur on real lengths, so the fastest path is unique.
        assert result.distance_m[i] == pytest.approx(route.distance_m, rel=1e-6, abs=1e-6)
    assert math.isinf(result.duration_s[-1]) and math.isinf(result.distance_m[-1])
    with pytest.raises(OffGraphError):
        shanghai.travel_times_to((0.0, 0.0), origins)
    assert shanghai.travel_times_to(dest, []).duration_s.shape == (0,)


def test_travel_times_from_equals_per_destination_dijkstra(
    shanghai: Router, shanghai_nx: nx.MultiDiGraph
) -> None:
    g = shanghai.graph
    rng = np.random.default_rng(8)
    nodes = rng.integers(0, g.node_count, 51)
    scene = (float(g.node_lat[nodes[0]]), float(g.node_lon[nodes[0]]))
    hospitals = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in nodes[1:]]
    result = shanghai.travel_times_from(scene, [*hospitals, (10.0, 10.0), scene])
    assert result.origin is not None and result.destination is None
    source = shanghai.node_index(result.origin.node_id)
    for i, hospital in enumerate(hospitals):
        target = shanghai.node_index(shanghai.snap(hospital).node_id)
        assert result.duration_s[i] == pytest.approx(
            nx.dijkstra_path_length(shanghai_nx, source, target), rel=1e-9, abs=1e-9
        )
        route = shanghai.route_nodes(source, target)
        assert result.distance_m[i] == pytest.approx(route.distance_m, rel=1e-6, abs=1e-6)
    assert math.isinf(result.duration_s[-2]) and math.isinf(result.distance_m[-2])
    assert result.snap_distance_m[-2] > shanghai.max_snap_m
    assert result.duration_s[-1] == 0.0 and result.distance_m[-1] == 0.0
    with pytest.raises(OffGraphError):
        shanghai.travel_times_from((0.0, 0.0), hospitals)
    empty = shanghai.travel_times_from(scene, [])
    assert empty.duration_s.shape == empty.distance_m.shape == (0,)


@pytest.mark.parametrize("slack", [0.05, 1.0, 50.0])
def test_one_to_many_is_exact_whatever_the_search_bound(slack: float) -> None:
    # A tiny slack makes every bounded search miss (doubling, then unbounded); a huge one
    # settles everything at once. The answers must not change.
    router = Router(synthetic_city(40, seed=3))
    router._engine.slack = slack
    graph = router.graph.to_networkx(router.edge_time_s)
    lengths = router.graph.to_networkx(router.graph.edge_length_m)
    g = router.graph
    rng = np.random.default_rng(12)
    for _ in range(4):
        root, *others = rng.integers(0, g.node_count, 21).tolist()
        here = (float(g.node_lat[root]), float(g.node_lon[root]))
        there = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in others]
        to = router.travel_times_to(here, there)
        away = router.travel_times_from(here, there)
        into = nx.single_source_dijkstra(graph.reverse(copy=False), root, weight="weight")[1]
        out = nx.single_source_dijkstra(graph, root, weight="weight")[1]
        for i, node in enumerate(others):
            for result, path in ((to, into[node][::-1]), (away, out[node])):
                expected = nx.path_weight(graph, path, "weight") if len(path) > 1 else 0.0
                assert result.duration_s[i] == pytest.approx(expected, rel=1e-9, abs=1e-9)
                length = nx.path_weight(lengths, path, "weight") if len(path) > 1 else 0.0
                # Equal-time ties are possible on the jittered grid only in theory; the check
                # would then flag a different (equally fast) path.
                assert result.distance_m[i] == pytest.approx(length, rel=1e-6, abs=1e-6)


def test_path_sums_leave_nodes_outside_the_tree_infinite(small_city: Router) -> None:
    engine = small_city._engine
    root = 0
    cost, pred = engine.search(root, [])  # nothing wanted: the first (small) bound stays
    far = int(np.argmax(np.where(np.isfinite(cost), -1.0, 1.0)))
    near = int(np.flatnonzero(np.isfinite(cost) & (cost > 0))[0])
    assert math.isinf(cost[far])
    sums = engine.path_sums(root, [far, near, root], pred, small_city.graph.edge_length_m)
    assert math.isinf(sums[0]) and sums[2] == 0.0
    expected = small_city.route_nodes(root, near).distance_m
    assert sums[1] == pytest.approx(expected, rel=1e-9)


def test_concurrent_queries_match_sequential(shanghai: Router) -> None:
    pairs = _pairs(shanghai, 40, seed=9)
    expected = [shanghai.route_nodes(s, t).duration_s for s, t in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: shanghai.route_nodes(*p).duration_s, pairs))
    assert got == expected


def test_route_to_same_point_is_empty(shanghai: Router) -> None:
    g = shanghai.graph
    point = (float(g.node_lat[10]), float(g.node_lon[10]))
    route = shanghai.route(point, point)
    assert route.edges == [] and route.duration_s == 0.0 and route.signals == []


def test_route_json_round_trip(shanghai: Router) -> None:
    route = shanghai.route((31.23, 121.47), (31.21, 121.50))
    again = Route.model_validate_json(route.model_dump_json())
    assert again == route
