"""SUMO fixtures: a small real map (a cut of central Shanghai), its router and SUMO network.

Built once per session into tmp. libsumo runs one simulation per process, so every test that
simulates opens and closes its own run (:func:`sim`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import osmium
import pytest

pytest.importorskip("sumo", reason="the 'sumo' extra is not installed")

from routing import Router
from simulators.sumo._traci import libsumo_run, sumo_argv
from simulators.sumo.network import SumoNetwork, build_network

SHARED = Path(
    os.environ.get("YISHAO_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared")
).resolve()
SHANGHAI = SHARED / "data" / "osm" / "shanghai_center.osm"
# About 1.1 x 1.2 km around People's Square: 168 router nodes, 72 of them signals.
CUT_BBOX = (121.470, 31.225, 121.482, 31.235)  # w, s, e, n


def cut_osm(source: Path, target: Path, bbox: tuple[float, float, float, float]) -> Path:
    """The nodes of ``source`` inside ``bbox`` and the ways through them (cut at the box)."""
    w, s, e, n = bbox
    inside: dict[int, tuple[float, float, dict[str, str]]] = {}
    for node in osmium.FileProcessor(str(source), osmium.osm.NODE):
        if not isinstance(node, osmium.osm.Node):
            continue
        loc = node.location
        if loc.valid() and w <= loc.lon <= e and s <= loc.lat <= n:
            inside[node.id] = (loc.lon, loc.lat, {t.k: t.v for t in node.tags})
    with osmium.SimpleWriter(str(target)) as writer:
        for node_id in sorted(inside):
            lon, lat, tags = inside[node_id]
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), tags=tags))
        for way in osmium.FileProcessor(str(source), osmium.osm.WAY):
            if not isinstance(way, osmium.osm.Way):
                continue
            refs = [r.ref for r in way.nodes]
            if sum(r in inside for r in refs) >= 2:
                writer.add_way(
                    osmium.osm.mutable.Way(
                        id=way.id,
                        nodes=[r for r in refs if r in inside],
                        tags={t.k: t.v for t in way.tags},
                    )
                )
    return target


@pytest.fixture(scope="session")
def shanghai_osm() -> Path:
    if not SHANGHAI.is_file():
        pytest.skip(f"real OSM extract {SHANGHAI} is absent")
    return SHANGHAI


@pytest.fixture(scope="session")
def small_osm(shanghai_osm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cut_osm(shanghai_osm, tmp_path_factory.mktemp("osm") / "square.osm", CUT_BBOX)


@pytest.fixture(scope="session")
def small_router(small_osm: Path, tmp_path_factory: pytest.TempPathFactory) -> Router:
    return Router.from_file(small_osm, cache_dir=tmp_path_factory.mktemp("graphs"))


@pytest.fixture(scope="session")
def small_net(
    small_osm: Path, small_router: Router, tmp_path_factory: pytest.TempPathFactory
) -> SumoNetwork:
    return build_network(small_osm, tmp_path_factory.mktemp("sumo"), graph=small_router.graph)


@pytest.fixture
def sim(small_net: SumoNetwork) -> Iterator[Any]:
    """A SUMO run of the small network (libsumo), closed after the test."""
    with libsumo_run(sumo_argv(small_net.net_file)) as conn:
        yield conn
