"""Road routing for Yishao: compiled OSM graphs, fast fastest-path queries, green-wave planning.

Knows nothing of ``dispatch``. Entry points: :class:`Router` (``Router.from_file``),
:mod:`routing.greenwave` (signal requests from a route), :mod:`routing.arbiter` (one
intersection's decisions) and :mod:`routing.cli` (``yishao graph`` / ``yishao route``).
"""

from __future__ import annotations

from .build import (
    build_graph,
    build_graph_file,
    build_graph_place,
    helsinki_pbf_path,
    sample_graph_path,
)
from .errors import (
    GraphBuildError,
    GraphDownloadError,
    GraphFormatError,
    OffGraphError,
    RoutingError,
)
from .graph import RoadGraph
from .profile import EMERGENCY, NORMAL, SpeedProfile
from .router import Route, RouteEdge, Router, RouteSignal, Snap, TravelTimes, default_cache_dir

__all__ = [
    "EMERGENCY",
    "NORMAL",
    "GraphBuildError",
    "GraphDownloadError",
    "GraphFormatError",
    "OffGraphError",
    "RoadGraph",
    "Route",
    "RouteEdge",
    "RouteSignal",
    "Router",
    "RoutingError",
    "Snap",
    "SpeedProfile",
    "TravelTimes",
    "build_graph",
    "build_graph_file",
    "build_graph_place",
    "default_cache_dir",
    "helsinki_pbf_path",
    "sample_graph_path",
]
