"""Road routing for Yishao: compiled OSM graphs, fast fastest-path queries, green-wave planning.

Knows nothing of ``dispatch``. Entry points: :class:`Router` (``Router.from_file``),
:mod:`routing.greenwave` (signal requests from a route), :mod:`routing.arbiter` (one
intersection's decisions) and :mod:`routing.cli` (``yishao graph`` / ``yishao route``).

Names are loaded on first use: ``import routing`` stays cheap for a command that only
prints its help, and building graphs (osmnx, geopandas) is never loaded by a service that
only serves a cached one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        NoRouteError,
        OffGraphError,
        RoutingError,
    )
    from .graph import RoadGraph
    from .matching import GpsFix, MatchedPoint, Matcher
    from .profile import EMERGENCY, NORMAL, SpeedProfile
    from .router import (
        Route,
        RouteEdge,
        Router,
        RouteSignal,
        Snap,
        TravelTimes,
        default_cache_dir,
    )

_WHERE = {
    "build_graph": "build",
    "build_graph_file": "build",
    "build_graph_place": "build",
    "helsinki_pbf_path": "build",
    "sample_graph_path": "build",
    "GraphBuildError": "errors",
    "GraphDownloadError": "errors",
    "GraphFormatError": "errors",
    "NoRouteError": "errors",
    "OffGraphError": "errors",
    "RoutingError": "errors",
    "RoadGraph": "graph",
    "GpsFix": "matching",
    "MatchedPoint": "matching",
    "Matcher": "matching",
    "EMERGENCY": "profile",
    "NORMAL": "profile",
    "SpeedProfile": "profile",
    "Route": "router",
    "RouteEdge": "router",
    "Router": "router",
    "RouteSignal": "router",
    "Snap": "router",
    "TravelTimes": "router",
    "default_cache_dir": "router",
}

__all__ = [
    "EMERGENCY",
    "NORMAL",
    "GpsFix",
    "GraphBuildError",
    "GraphDownloadError",
    "GraphFormatError",
    "MatchedPoint",
    "Matcher",
    "NoRouteError",
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'routing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
