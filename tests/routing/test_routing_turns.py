"""Segment snapping, headings, turn restrictions and costs, the hierarchy against Dijkstra."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse import csgraph  # type: ignore[import-untyped,unused-ignore]

from routing import EMERGENCY, NORMAL, RoadGraph, Router
from routing.graph import FORMAT_VERSION, RESTRICTION_KINDS, save
from routing.router import hierarchy_path
from routing.synthetic import synthetic_city, tiled_region
from routing.turns import TurnClass

from .conftest import phantom_cost, turn_nx

NO_TURN_COSTS = dataclasses.replace(
    EMERGENCY, name="no-turn-costs", left_turn_s=0.0, right_turn_s=0.0, u_turn_s=0.0
)


def _jittered(graph: RoadGraph, rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    nodes = rng.integers(0, graph.node_count, count)
    jitter = rng.uniform(-4e-4, 4e-4, (count, 2))
    return [
        (float(graph.node_lat[n] + j[0]), float(graph.node_lon[n] + j[1]))
        for n, j in zip(nodes, jitter, strict=True)
    ]


def _inserted(router: Router, points: list[tuple[float, float]]) -> nx.MultiDiGraph:
    """The road graph as networkx with each point's projection inserted as a node
    ``("p", i)``: the snapped edge (and its twin) split in two at the projection."""
    g = router.graph
    drive, delay = router.edge_drive_s, router.edge_time_s - router.edge_drive_s
    graph = nx.MultiDiGraph()
    split: dict[int, list[tuple[float, object]]] = {}
    for i, point in enumerate(points):
        proj = router._index.snap(*point)
        split.setdefault(proj.edge, []).append((proj.fraction, ("p", i)))
        if proj.twin >= 0:
            split.setdefault(proj.twin, []).append((1.0 - proj.fraction, ("p", i)))
    for e in range(g.edge_count):
        u, v = int(g.edge_u[e]), int(g.edge_v[e])
        cuts = sorted(split.get(e, []), key=lambda c: c[0])
        at, node, spent = 0.0, object(), 0.0
        node = u
        for fraction, point in cuts:
            # The first piece pays the tail's delay; later pieces only their share of driving.
            weight = (fraction - at) * drive[e] + (delay[e] if at == 0.0 else 0.0)
            graph.add_edge(node, point, weight=weight)
            node, at, spent = point, fraction, spent + weight
        graph.add_edge(node, v, weight=router.edge_time_s[e] - spent)
    return graph


def test_partial_edge_routes_equal_networkx_with_points_inserted() -> None:
    # Without turn costs the turn graph must agree with a node graph where the projected
    # points are nodes: the partial edges' times are exactly their shares.
    router = Router(synthetic_city(30, seed=4), profile=NO_TURN_COSTS)
    rng = np.random.default_rng(21)
    points = _jittered(router.graph, rng, 60)
    graph = _inserted(router, points)
    for k in range(0, 60, 2):
        origin, destination = points[k], points[k + 1]
        expected = nx.dijkstra_path_length(graph, ("p", k), ("p", k + 1), weight="weight")
        route = router.route(origin, destination)
        assert route.duration_s == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert router.travel_times_to(destination, [origin]).duration_s[0] == pytest.approx(
            expected, rel=1e-9, abs=1e-9
        )
        assert router.travel_times_from(origin, [destination]).duration_s[0] == pytest.approx(
            expected, rel=1e-9, abs=1e-9
        )
        assert route.edges[0].from_fraction > 0.0 or route.edges[0].to_fraction < 1.0


def test_partial_edge_routes_equal_networkx_with_turn_costs(small_city: Router) -> None:
    turns = turn_nx(small_city)
    rng = np.random.default_rng(5)
    points = _jittered(small_city.graph, rng, 80)
    for origin, destination in zip(points[::2], points[1::2], strict=True):
        expected_s, expected_m = phantom_cost(turns, small_city, origin, destination)
        route = small_city.route(origin, destination)
        assert route.duration_s == pytest.approx(expected_s, rel=1e-9, abs=1e-9)
        assert route.distance_m == pytest.approx(expected_m, rel=1e-6, abs=1e-6)
        assert math.isclose(
            route.duration_s, sum(e.duration_s for e in route.edges), rel_tol=1e-9, abs_tol=1e-9
        )


def test_hierarchy_equals_plain_dijkstra_on_500_pairs(shanghai: Router) -> None:
    plain = Router(shanghai.graph, use_hierarchy=False)
    rng = np.random.default_rng(33)
    points = _jittered(shanghai.graph, rng, 1000)
    for origin, destination in zip(points[::2], points[1::2], strict=True):
        fast = shanghai.route(origin, destination)
        slow = plain.route(origin, destination)
        assert fast.duration_s == pytest.approx(slow.duration_s, rel=1e-9, abs=1e-9)
    incident, units = points[0], points[1:51]
    for method in ("travel_times_to", "travel_times_from"):
        fast_tt = getattr(shanghai, method)(incident, units)
        slow_tt = getattr(plain, method)(incident, units)
        assert np.allclose(fast_tt.duration_s, slow_tt.duration_s, rtol=1e-9, atol=1e-9)


def test_route_starts_at_the_projection_not_at_a_node(shanghai: Router) -> None:
    g = shanghai.graph
    longest = int(np.argmax(g.edge_length_m))
    lons, lats = g.edge_polyline(longest)
    mid = len(lons) // 2
    # A point 15 m off the middle of the longest edge, routed to a far node.
    origin = (float(lats[mid]) + 0.000135, float(lons[mid]))
    route = shanghai.route(origin, (float(g.node_lat[0]), float(g.node_lon[0])))
    first = route.edges[0]
    assert 0.0 < first.from_fraction < 1.0 or 0.0 < first.to_fraction < 1.0
    assert route.origin.snap_distance_m < 20.0
    assert route.coordinates[0] == (route.origin.lon, route.origin.lat)


def _dual_carriageway() -> RoadGraph:
    """Two one-way carriageways 16 m apart running north-south for 400 m (northbound on the
    east side: China drives on the right), joined at both ends."""
    lat0, lon0 = 30.0, 120.0
    m_lat = 1 / 111_320.0
    m_lon = 1 / (111_320.0 * math.cos(math.radians(lat0)))
    # 0: SE, 1: NE, 2: NW, 3: SW
    lat = np.array([lat0, lat0 + 400 * m_lat, lat0 + 400 * m_lat, lat0])
    lon = np.array([lon0 + 16 * m_lon, lon0 + 16 * m_lon, lon0, lon0])
    u = np.array([0, 1, 2, 3], dtype=np.int32)
    v = np.array([1, 2, 3, 0], dtype=np.int32)
    length = np.array([400.0, 16.0, 400.0, 16.0])
    return RoadGraph(
        node_osmid=np.arange(1, 5, dtype=np.int64),
        node_lat=lat,
        node_lon=lon,
        node_signal=np.zeros(4, dtype=np.bool_),
        node_streets=np.array([2, 2, 2, 2], dtype=np.int16),
        edge_u=u,
        edge_v=v,
        edge_length_m=length,
        edge_speed_kph=np.full(4, 50.0),
        edge_highway=np.zeros(4, dtype=np.int16),
        edge_name=np.array(["Northbound", "Link", "Southbound", "Link"]),
        geom_offsets=np.arange(0, 9, 2, dtype=np.int64),
        geom_lon=np.stack([lon[u], lon[v]], axis=1).ravel(),
        geom_lat=np.stack([lat[u], lat[v]], axis=1).ravel(),
        highway_names=np.array(["primary"]),
        meta={"format_version": FORMAT_VERSION, "source": "dual carriageway"},
    )


def test_heading_aware_snap_on_a_dual_carriageway() -> None:
    router = Router(_dual_carriageway())
    m_lon = 1 / (111_320.0 * math.cos(math.radians(30.0)))
    # 5 m east of the southbound carriageway, 11 m west of the northbound one.
    fix = (30.0 + 150 / 111_320.0, 120.0 + 5 * m_lon)
    assert router.snap(fix).edge_u == 3  # nearest: southbound (OSM ids 3 -> 4)
    north = router.snap(fix, heading_deg=5.0)
    assert (north.edge_u, north.edge_v) == (1, 2) and north.heading_deg == 5.0
    assert north.bearing_deg == pytest.approx(0.0, abs=1e-6)
    south = router.snap(fix, heading_deg=185.0)
    assert (south.edge_u, south.edge_v) == (3, 4)
    # A vehicle driving north keeps north: its route starts on the northbound carriageway.
    ahead = (30.0 + 390 / 111_320.0, 120.0 + 16 * m_lon)
    route = router.route(fix, ahead, origin_heading_deg=0.0)
    assert route.edges[0].name == "Northbound" and len(route.edges) == 1
    assert route.distance_m == pytest.approx(240.0, abs=1.0)
    # Without the heading the nearer carriageway wins, and the route has to loop round.
    loop = router.route(fix, ahead)
    assert loop.edges[0].name == "Southbound" and loop.distance_m > 400.0


def _ban(graph: RoadGraph, pairs: list[tuple[int, int]], kind: str) -> RoadGraph:
    return dataclasses.replace(
        graph,
        turn_ban_from=np.array([a for a, _ in pairs], dtype=np.int32),
        turn_ban_to=np.array([b for _, b in pairs], dtype=np.int32),
        turn_ban_kind=np.full(len(pairs), RESTRICTION_KINDS.index(kind), dtype=np.int8),
    )


def _takes(route: object, graph: RoadGraph, a: int, b: int) -> bool:
    ids = graph.node_osmid
    want = (int(ids[graph.edge_u[a]]), int(ids[graph.edge_v[a]]), int(ids[graph.edge_v[b]]))
    edges = route.edges  # type: ignore[attr-defined]
    return any((p.u, p.v, n.v) == want for p, n in itertools.pairwise(edges))


def _midpoint(graph: RoadGraph, edge: int) -> tuple[float, float]:
    lons, lats = graph.edge_polyline(edge)
    return float((lats[0] + lats[-1]) / 2), float((lons[0] + lons[-1]) / 2)


def test_a_restricted_turn_is_never_taken() -> None:
    city = synthetic_city(24, seed=2)
    free = Router(city)
    rng = np.random.default_rng(3)
    # Ban the turn each of a few free routes takes at its second junction, then route again.
    bans: list[tuple[int, int]] = []
    queries = []
    g = city
    while len(bans) < 12:
        a, b = rng.integers(0, g.node_count, 2)
        route = free.route_nodes(int(a), int(b))
        if len(route.edges) < 4:
            continue
        tail, mid, head = route.edges[1].u, route.edges[1].v, route.edges[2].v
        first = int(np.flatnonzero((g.edge_u == tail - 1) & (g.edge_v == mid - 1))[0])
        second = int(np.flatnonzero((g.edge_u == mid - 1) & (g.edge_v == head - 1))[0])
        bans.append((first, second))
        queries.append((int(a), int(b), first, second))
    banned = Router(_ban(city, bans, "no_left_turn"))
    assert banned.turns.banned == len(set(bans))
    for a, b, first, second in queries:
        assert _takes(free.route_nodes(a, b), g, first, second)
        detour = banned.route_nodes(a, b)
        for x, y in bans:
            assert not _takes(detour, g, x, y)
        assert detour.duration_s > free.route_nodes(a, b).duration_s
        # From the middle of the edge before the turn to the middle of the one after it.
        point_route = banned.route(_midpoint(g, first), _midpoint(g, second))
        assert not _takes(point_route, g, first, second)
    # A profile that waives the kind may take the turn again, at its cost.
    waiver = dataclasses.replace(EMERGENCY, waived_restrictions=frozenset({"no_left_turn"}))
    waived = Router(_ban(city, bans, "no_left_turn"), profile=waiver)
    assert waived.turns.waived == len(set(bans)) and waived.turns.banned == 0
    a, b, first, second = queries[0]
    assert waived.route_nodes(a, b).duration_s <= (
        free.route_nodes(a, b).duration_s + waiver.waived_restriction_s + 1e-9
    )


def test_real_restrictions_are_read_and_honoured(nanjing_osm: Path, tmp_path: Path) -> None:
    router = Router.from_file(nanjing_osm, cache_dir=tmp_path)
    g = router.graph
    assert g.meta["restriction_relations"] >= 4 and g.turn_ban_from.shape[0] >= 4
    for a, b in zip(g.turn_ban_from.tolist(), g.turn_ban_to.tolist(), strict=True):
        assert g.edge_v[a] == g.edge_u[b]
        assert router.turns.find_arcs([a], [b])[0] == -1
        route = router.route(_midpoint(g, a), _midpoint(g, b))
        assert not _takes(route, g, a, b)
    rng = np.random.default_rng(1)
    for source, target in rng.integers(0, g.node_count, (200, 2)).tolist():
        route = router.route_nodes(source, target)
        for a, b in zip(g.turn_ban_from.tolist(), g.turn_ban_to.tolist(), strict=True):
            assert not _takes(route, g, a, b)


def test_left_turns_cost_more_than_right_turns() -> None:
    city = synthetic_city(16, seed=1)
    for profile in (EMERGENCY, NORMAL):
        router = Router(city, profile=profile)
        t = router.turns
        src = t.arc_sources()
        # Arriving northbound at an arterial crossing (node row 8, col 8 = index 136).
        node = 8 * 16 + 8
        south = node - 16
        inbound = int(np.flatnonzero((city.edge_u == south) & (city.edge_v == node))[0])
        costs = {}
        for arc in np.flatnonzero(src == inbound).tolist():
            head = int(city.edge_v[t.arc_to[arc]])
            costs[head - node] = (float(t.arc_turn_s[arc]), int(t.arc_class[arc]))
        assert costs[16] == (0.0, TurnClass.STRAIGHT)  # on north
        assert costs[1] == (profile.right_turn_s, TurnClass.RIGHT)  # east
        assert costs[-1] == (profile.left_turn_s, TurnClass.LEFT)  # west
        assert costs[-16] == (profile.u_turn_s, TurnClass.U_TURN)  # back south
        assert profile.u_turn_s > profile.left_turn_s > profile.right_turn_s


def test_hierarchy_is_cached_beside_the_graph(tmp_path: Path) -> None:
    path = save(synthetic_city(12, seed=5), tmp_path / "city.npz")
    first = Router.from_file(path)
    sidecar = hierarchy_path(path, EMERGENCY)
    assert sidecar.is_file() and sidecar.suffix == ".ch"
    stamp = sidecar.stat().st_mtime_ns
    time.sleep(0.01)
    again = Router.from_file(path)
    assert sidecar.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    a = first.route((30.0505, 119.9505), (30.058, 119.958))
    assert again.route((30.0505, 119.9505), (30.058, 119.958)) == a
    # Another profile has its own file; a foreign file is rebuilt over.
    Router.from_file(path, profile=NORMAL)
    assert hierarchy_path(path, NORMAL).is_file()
    hierarchy_path(path, NORMAL).replace(sidecar)
    assert Router.from_file(path).route((30.0505, 119.9505), (30.058, 119.958)) == a


def test_a_region_of_tiles_is_one_connected_network_routed_exactly(shanghai: Router) -> None:
    # The benchmark's million-node region, at 2 x 2: copies of the real extract joined by trunk
    # roads, restrictions copied, every node reachable, the hierarchy exact across tiles.
    tile = shanghai.graph
    region = tiled_region(tile, 2, links_per_side=4)
    assert region.node_count == 4 * tile.node_count
    assert region.turn_ban_from.shape[0] == 4 * tile.turn_ban_from.shape[0]
    assert len(set(region.node_osmid.tolist())) == region.node_count
    trunk = list(region.highway_names).index("trunk")
    links = np.flatnonzero(region.edge_highway == trunk)
    assert links.shape[0] == 2 * 4 * 4  # 4 neighbouring pairs, 4 two-way roads each
    tile_of = np.repeat(np.arange(4), tile.node_count)
    assert np.all(tile_of[region.edge_u[links]] != tile_of[region.edge_v[links]])
    matrix = sp.csr_matrix(
        (np.ones(region.edge_count), (region.edge_u, region.edge_v)), shape=(region.node_count,) * 2
    )
    assert csgraph.connected_components(matrix, connection="strong")[0] == 1
    fast = Router(region)
    plain = Router(region, use_hierarchy=False)
    rng = np.random.default_rng(5)
    points = _jittered(region, rng, 80)
    for origin, destination in zip(points[::2], points[1::2], strict=True):
        want = plain.route(origin, destination).duration_s
        assert fast.route(origin, destination).duration_s == pytest.approx(want, rel=1e-9)
    # Opposite corners: the route must leave its tile on trunk roads.
    far = fast.route_nodes(0, region.node_count - 1)
    assert {e.highway for e in far.edges} >= {"trunk"}
