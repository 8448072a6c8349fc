"""Graph building: signals through simplification, PBF input, filtering, the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmnx as ox
import pytest

from routing import GraphBuildError, GraphFormatError, Router, sample_graph_path
from routing import graph as graph_mod
from routing._osm import is_drivable, read_osm_file


def _signals(graph: object) -> int:
    return sum(1 for _, d in graph.nodes(data=True) if d.get("highway") == "traffic_signals")  # type: ignore[attr-defined]


def test_signals_survive_simplification(shanghai_osm: Path) -> None:
    raw = read_osm_file(shanghai_osm)
    kept = ox.simplify_graph(raw, node_attrs_include=["highway"])
    plain = ox.simplify_graph(raw)
    assert _signals(raw) >= 1384
    assert _signals(kept) == _signals(raw)
    assert _signals(plain) < _signals(kept)


def test_shanghai_graph_shape(shanghai: Router) -> None:
    g = shanghai.graph
    # Largest strongly connected part of ~4,480 nodes (PROVENANCE: 4,481 with osmnx alone).
    assert 4300 <= g.node_count <= 4700
    assert g.signal_count > 1250
    assert np.all(g.edge_length_m > 0) and np.all(g.edge_speed_kph > 0)
    # Every edge's polyline starts at its tail node and ends at its head node.
    first, last = g.geom_offsets[:-1], g.geom_offsets[1:] - 1
    assert np.allclose(g.geom_lat[first], g.node_lat[g.edge_u])
    assert np.allclose(g.geom_lon[last], g.node_lon[g.edge_v])


def test_helsinki_pbf_builds_with_signals(helsinki_cache: Path) -> None:
    router = Router.from_file(helsinki_cache)
    assert router.graph.node_count > 500
    assert router.graph.signal_count > 50
    route = router.route(
        (float(router.graph.node_lat[0]), float(router.graph.node_lon[0])),
        (float(router.graph.node_lat[-1]), float(router.graph.node_lon[-1])),
    )
    assert route.duration_s > 0


def test_nanjing_keeps_only_drivable_roads(nanjing_osm: Path) -> None:
    raw = read_osm_file(nanjing_osm)
    classes = {str(d.get("highway")) for _, _, d in raw.edges(data=True)}
    assert classes.isdisjoint({"footway", "steps", "pedestrian", "service", "None"})
    assert "primary" in classes


@pytest.mark.parametrize(
    ("tags", "drivable"),
    [
        ({"highway": "primary"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "footway"}, False),
        ({"highway": "residential", "access": "private"}, False),
        ({"highway": "tertiary", "motor_vehicle": "no"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_drivable_filter(tags: dict[str, str], drivable: bool) -> None:
    assert is_drivable(tags) is drivable


def test_cache_round_trip_gives_identical_answers(
    shanghai: Router, shanghai_cache: Path, tmp_path: Path
) -> None:
    copy = graph_mod.save(graph_mod.load(shanghai_cache), tmp_path / "again")
    assert copy.suffix == ".npz"
    again = Router.from_file(copy)
    for name in (
        "node_osmid",
        "node_lat",
        "edge_u",
        "edge_v",
        "edge_length_m",
        "geom_lon",
        "edge_name",
    ):
        assert np.array_equal(getattr(again.graph, name), getattr(shanghai.graph, name))
    a = shanghai.route((31.23, 121.47), (31.20, 121.50))
    b = again.route((31.23, 121.47), (31.20, 121.50))
    assert a == b


def test_bad_cache_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(GraphFormatError):
        Router.from_file(bad)
    with pytest.raises(GraphFormatError):
        Router.from_file(tmp_path / "missing.npz")


def test_osm_file_is_built_and_cached(nanjing_osm: Path, tmp_path: Path) -> None:
    router = Router.from_file(nanjing_osm, cache_dir=tmp_path)
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    assert Router.from_file(cached[0]).graph.node_count == router.graph.node_count


def test_unreadable_osm_raises(tmp_path: Path) -> None:
    empty = tmp_path / "empty.osm"
    empty.write_text('<?xml version="1.0"?><osm version="0.6"></osm>')
    with pytest.raises(GraphBuildError):
        Router.from_file(empty, cache_dir=tmp_path)


def test_sample_graph_path_exists() -> None:
    path = sample_graph_path()
    assert path.is_file()
    assert path.name in {"shanghai_center.osm", "Helsinki.osm.pbf"}
