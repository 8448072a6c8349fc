"""Errors raised by the routing package.

Hierarchy::

    RoutingError                 root: catch this to catch everything below
    ├── OffGraphError            a point is too far from any road of the graph
    ├── NoRouteError             no permitted way between two points (also a ValueError)
    ├── GraphBuildError          an OSM source could not be turned into a graph
    │   └── GraphDownloadError   a place name could not be fetched (needs internet)
    └── GraphFormatError         a cached graph file is missing, corrupt or of another version
"""

from __future__ import annotations


class RoutingError(Exception):
    """Root of every error this package raises on purpose."""


class OffGraphError(RoutingError):
    """A point lies farther from any road than the router accepts.

    Attributes:
        lat: latitude of the point asked for.
        lon: longitude of the point asked for.
        distance_m: distance to the nearest road sample, metres.
        max_snap_m: the limit that was exceeded, metres.
    """

    def __init__(self, lat: float, lon: float, distance_m: float, max_snap_m: float) -> None:
        self.lat = lat
        self.lon = lon
        self.distance_m = distance_m
        self.max_snap_m = max_snap_m
        super().__init__(
            f"point ({lat:.6f}, {lon:.6f}) is {distance_m:.0f} m from the nearest road "
            f"(limit {max_snap_m:.0f} m): outside the routing graph"
        )


class NoRouteError(RoutingError, ValueError):
    """No permitted route joins the two points (turn restrictions can cut a graph that is
    connected node by node; a ValueError for callers written before this class existed)."""


class GraphBuildError(RoutingError):
    """An OSM source could not be turned into a routing graph."""


class GraphDownloadError(GraphBuildError):
    """Downloading a place from OpenStreetMap failed (no internet, or the service refused)."""


class GraphFormatError(RoutingError):
    """A cached graph file is missing, unreadable, or written by an incompatible version."""
