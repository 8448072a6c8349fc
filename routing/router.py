"""The router: snap points to roads, answer route and one-to-many travel-time queries.

A :class:`Router` is built once per graph and shared (threads included): it holds only
read-only arrays, a KD-tree and the search engine.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree  # type: ignore[import-untyped,unused-ignore]

from . import graph as graph_mod
from .engine import CsrEngine
from .errors import OffGraphError
from .graph import FloatArray, IntArray, RoadGraph, haversine_m
from .profile import EMERGENCY, SpeedProfile

DEFAULT_MAX_SNAP_M = 500.0
# Road samples for snapping are at most this far apart, so a snap is off by at most half of it.
SNAP_SAMPLE_SPACING_M = 20.0
_EARTH_RADIUS_M = 6_371_008.8

LatLon = tuple[float, float]


def default_cache_dir() -> Path:
    """Folder for compiled graph caches: ``$YISHAO_CACHE_DIR``, else ``~/.cache/yishao/graphs``."""
    env = os.environ.get("YISHAO_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "yishao" / "graphs"


class Snap(BaseModel):
    """Where an asked point landed on the graph."""

    model_config = ConfigDict(frozen=True)

    asked_lat: float
    asked_lon: float
    node_id: int = Field(description="OSM id of the graph node the search starts or ends at")
    lat: float
    lon: float
    snap_distance_m: float = Field(description="distance from the asked point to the road")


class RouteEdge(BaseModel):
    """One edge of a route, in travel order."""

    model_config = ConfigDict(frozen=True)

    u: int = Field(description="OSM id of the edge's tail node")
    v: int = Field(description="OSM id of the edge's head node")
    length_m: float
    duration_s: float = Field(
        description="travel time under the router's profile, node delay included"
    )
    speed_kph: float
    highway: str
    name: str
    start_index: int = Field(description="index in Route.coordinates of this edge's first point")


class RouteSignal(BaseModel):
    """A signalised intersection the route passes through."""

    model_config = ConfigDict(frozen=True)

    node_id: int = Field(description="OSM id of the signal node")
    lat: float
    lon: float
    eta_s: float = Field(description="seconds from departure until arriving at the stop line")
    distance_m: float = Field(description="metres from the start of the route")
    inbound_bearing_deg: float = Field(description="compass direction of travel arriving")
    outbound_bearing_deg: float = Field(description="compass direction of travel leaving")


class Route(BaseModel):
    """A route between two snapped points.

    ``duration_s`` is the sum of the edges' ``duration_s``; signal ETAs increase strictly along
    the route and stay below ``duration_s``. The route starts and ends at graph nodes (the ones
    nearest along the road to the asked points); the partial edges to the exact points are not
    included.
    """

    model_config = ConfigDict(frozen=True)

    profile: str
    origin: Snap
    destination: Snap
    distance_m: float
    duration_s: float
    coordinates: list[tuple[float, float]] = Field(description="polyline as (lon, lat) pairs")
    edges: list[RouteEdge]
    signals: list[RouteSignal]


# Column order of the rows route_nodes builds (a misspelt or missing name fails validation).
_EDGE_FIELDS = ("u", "v", "length_m", "duration_s", "speed_kph", "highway", "name", "start_index")
_SIGNAL_FIELDS = (
    "node_id", "lat", "lon", "eta_s", "distance_m", "inbound_bearing_deg", "outbound_bearing_deg"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TravelTimes:
    """One point, many others, one search: :meth:`Router.travel_times_to` (many origins, one
    destination, e.g. units ranked for an incident) or :meth:`Router.travel_times_from` (one
    origin, many destinations, e.g. hospitals from a scene).

    Attributes:
        duration_s: ``float64[n]`` travel time for each of the many points (``inf``: that
            point is off the graph).
        distance_m: ``float64[n]`` length of that fastest path (``inf`` likewise).
        snap_distance_m: ``float64[n]`` how far each of the many points was from the road.
        destination: where the destination snapped (``travel_times_to``; ``None`` otherwise).
        origin: where the origin snapped (``travel_times_from``; ``None`` otherwise).
    """

    duration_s: FloatArray
    distance_m: FloatArray
    snap_distance_m: FloatArray
    destination: Snap | None = None
    origin: Snap | None = None


class Router:
    """Routes over one compiled graph under one speed profile.

    Args:
        graph: the compiled graph.
        profile: speeds and delays; :data:`routing.profile.EMERGENCY` by default.
        max_snap_m: points farther than this from any road raise :class:`OffGraphError`.
    """

    def __init__(
        self,
        graph: RoadGraph,
        *,
        profile: SpeedProfile = EMERGENCY,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
    ) -> None:
        self.graph = graph
        self.profile = profile
        self.max_snap_m = max_snap_m
        self.edge_speed_kph: FloatArray = profile.edge_speeds_kph(graph)
        self.edge_time_s: FloatArray = profile.edge_times_s(graph)
        max_speed_mps = float(np.max(graph.edge_length_m / self.edge_time_s))
        self._engine = CsrEngine(graph, self.edge_time_s, max_speed_mps=max_speed_mps * 1.0001)
        self._engine.calibrate()
        self._lat0 = float(np.mean(graph.node_lat))
        self._lon0 = float(np.mean(graph.node_lon))
        self._cos0 = math.cos(math.radians(self._lat0))
        self._build_snap_index()

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        profile: SpeedProfile = EMERGENCY,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
        cache_dir: Path | None = None,
    ) -> Router:
        """Load a router from a cached graph (``.npz``) or an OSM file (``.osm``, ``.osm.pbf``).

        An OSM file is built once and its compiled graph cached in ``cache_dir`` (default
        :func:`default_cache_dir`), keyed by the file's path, size and modification time.

        Args:
            path: the graph file.
            profile: speed profile for queries.
            max_snap_m: snapping limit.
            cache_dir: where OSM builds are cached.

        Returns:
            The router.

        Raises:
            GraphFormatError: a bad cache file.
            GraphBuildError: an OSM file that cannot be built.
        """
        source = Path(path)
        if source.suffix == graph_mod.CACHE_SUFFIX:
            return cls(graph_mod.load(source), profile=profile, max_snap_m=max_snap_m)
        from .build import build_graph_file  # building pulls in osmnx's heavier paths

        stat = source.stat() if source.exists() else None
        key = f"{source.resolve()}|{stat.st_size if stat else 0}|{stat.st_mtime_ns if stat else 0}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        cached = (cache_dir or default_cache_dir()) / f"{source.name}.{digest}.npz"
        if not cached.exists():
            build_graph_file(source, cached)
        return cls(graph_mod.load(cached), profile=profile, max_snap_m=max_snap_m)

    # ----------------------------------------------------------------------------- snapping

    def _project(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
        # Equirectangular around the graph's centre: under 0.1 % error across a city, and cheap.
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        x = np.radians(lon_a - self._lon0) * self._cos0 * _EARTH_RADIUS_M
        y = np.radians(lat_a - self._lat0) * _EARTH_RADIUS_M
        out: FloatArray = np.stack([x, y], axis=-1)
        return out

    def _build_snap_index(self) -> None:
        g = self.graph
        xy = self._project(g.geom_lat, g.geom_lon)
        counts = np.diff(g.geom_offsets)
        edge_of_vertex = np.repeat(np.arange(g.edge_count, dtype=np.int64), counts)
        # A segment joins vertex k and k+1 of the same edge.
        seg_start = np.flatnonzero(edge_of_vertex[:-1] == edge_of_vertex[1:])
        seg_vec = xy[seg_start + 1] - xy[seg_start]
        seg_len = np.hypot(seg_vec[:, 0], seg_vec[:, 1])
        pieces = np.maximum(np.ceil(seg_len / SNAP_SAMPLE_SPACING_M), 1).astype(np.int64)
        seg_of_sample = np.repeat(np.arange(seg_start.shape[0]), pieces)
        first_sample = np.cumsum(pieces) - pieces
        step = (np.arange(seg_of_sample.shape[0]) - first_sample[seg_of_sample]) / pieces[
            seg_of_sample
        ]
        samples = xy[seg_start[seg_of_sample]] + seg_vec[seg_of_sample] * step[:, None]
        # Along-edge position of each sample, as a fraction of the edge's polyline length.
        seg_edge = edge_of_vertex[seg_start]
        seg_cum = np.cumsum(seg_len) - seg_len
        edge_first_seg = np.full(g.edge_count, -1, dtype=np.int64)
        edge_first_seg[seg_edge[::-1]] = np.arange(seg_edge.shape[0])[::-1]
        edge_total = np.bincount(seg_edge, weights=seg_len, minlength=g.edge_count)
        along = seg_cum[seg_of_sample] - seg_cum[edge_first_seg[seg_edge[seg_of_sample]]]
        along += step * seg_len[seg_of_sample]
        sample_edge = seg_edge[seg_of_sample]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(edge_total[sample_edge] > 0, along / edge_total[sample_edge], 0.0)
        # Edge ends are samples too, so a point at a dead end snaps onto it.
        self._snap_tree = cKDTree(np.concatenate([samples, self._project(g.node_lat, g.node_lon)]))
        node_ids = np.arange(g.node_count, dtype=np.int64)
        self._snap_node: IntArray = np.concatenate(
            [np.where(fraction < 0.5, g.edge_u[sample_edge], g.edge_v[sample_edge]), node_ids]
        ).astype(np.int64)

    def _snap_many(self, points: Sequence[LatLon]) -> tuple[IntArray, FloatArray]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        dist, idx = self._snap_tree.query(self._project(pts[:, 0], pts[:, 1]))
        return self._snap_node[idx], np.asarray(dist, dtype=np.float64)

    def snap(self, point: LatLon) -> Snap:
        """Snap a ``(lat, lon)`` point to the graph node nearest along the nearest road.

        Raises:
            OffGraphError: the point is more than ``max_snap_m`` from any road.
        """
        return self._snap_point(point)[0]

    def _snap_point(self, point: LatLon) -> tuple[Snap, int]:
        """:meth:`snap`, plus the node's index."""
        nodes, dist = self._snap_many([point])
        lat, lon = float(point[0]), float(point[1])
        if not dist[0] <= self.max_snap_m:
            raise OffGraphError(lat, lon, float(dist[0]), self.max_snap_m)
        node = int(nodes[0])
        return self._snap_info(lat, lon, node, float(dist[0])), node

    def _snap_info(self, lat: float, lon: float, node: int, dist: float) -> Snap:
        g = self.graph
        return Snap(
            asked_lat=lat,
            asked_lon=lon,
            node_id=int(g.node_osmid[node]),
            lat=float(g.node_lat[node]),
            lon=float(g.node_lon[node]),
            snap_distance_m=dist,
        )

    def node_index(self, node_id: int) -> int:
        """Return the array index of the node with OSM id ``node_id`` (KeyError if absent)."""
        pos = np.flatnonzero(self.graph.node_osmid == node_id)
        if pos.size == 0:
            raise KeyError(node_id)
        return int(pos[0])

    # ----------------------------------------------------------------------------- queries

    def route(self, origin: LatLon, destination: LatLon) -> Route:
        """Fastest route between two ``(lat, lon)`` points under the router's profile.

        Args:
            origin: start point; snapped to the road network.
            destination: end point; snapped likewise.

        Returns:
            The route (empty edge list when both points snap to the same node).

        Raises:
            OffGraphError: either point is farther than ``max_snap_m`` from any road.
        """
        start, source = self._snap_point(origin)
        end, target = self._snap_point(destination)
        return self.route_nodes(source, target, origin=start, destination=end)

    def route_nodes(
        self,
        source: int,
        target: int,
        *,
        origin: Snap | None = None,
        destination: Snap | None = None,
    ) -> Route:
        """Fastest route between two node indices (used by :meth:`route` and by checks).

        Args:
            source: start node index.
            target: end node index.
            origin: snap record to report; defaults to the node itself.
            destination: likewise for the end.

        Returns:
            The route. The graph is strongly connected, so there always is one.
        """
        g = self.graph
        path = self._engine.shortest_path(source, target)
        if not math.isfinite(path.cost):  # only if a caller built a graph that is not connected
            raise ValueError(f"node {target} is unreachable from node {source}")
        origin = origin or self._snap_info(
            float(g.node_lat[source]), float(g.node_lon[source]), source, 0.0
        )
        destination = destination or self._snap_info(
            float(g.node_lat[target]), float(g.node_lon[target]), target, 0.0
        )
        edges_arr = np.asarray(path.edges, dtype=np.int64)
        # Polyline: each edge's geometry without its first point (the previous edge's last).
        lo, hi = g.geom_offsets[edges_arr], g.geom_offsets[edges_arr + 1]
        counts = hi - lo - 1
        starts = np.cumsum(counts) - counts  # each edge's first point, after the origin
        take = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(lo + 1 - starts, counts)
        lons = np.concatenate([[g.node_lon[source]], g.geom_lon[take]])
        lats = np.concatenate([[g.node_lat[source]], g.geom_lat[take]])
        times = self.edge_time_s[edges_arr]
        lengths = g.edge_length_m[edges_arr]
        arrive_s = np.cumsum(times) - times  # at each edge's tail
        arrive_m = np.cumsum(lengths) - lengths
        # Bearings of each edge's first and last segment, vectorised.
        first_b = _bearings(g.geom_lat[lo], g.geom_lon[lo], g.geom_lat[lo + 1], g.geom_lon[lo + 1])
        last_b = _bearings(
            g.geom_lat[hi - 2], g.geom_lon[hi - 2], g.geom_lat[hi - 1], g.geom_lon[hi - 1]
        )
        tails = g.edge_u[edges_arr]
        # Fields go column-wise through numpy's tolist() (plain ints, floats, strs) and the
        # nested models are built by one pydantic-core validation of the whole Route: about a
        # third of the cost of a model_construct per edge from numpy scalars, and validated.
        edge_rows = zip(
            g.node_osmid[tails].tolist(),
            g.node_osmid[g.edge_v[edges_arr]].tolist(),
            lengths.tolist(),
            times.tolist(),
            self.edge_speed_kph[edges_arr].tolist(),
            g.highway_names[g.edge_highway[edges_arr]].tolist(),
            g.edge_name[edges_arr].tolist(),
            starts.tolist(),
            strict=True,
        )
        crossed = np.flatnonzero(g.node_signal[tails])
        crossed = crossed[crossed > 0]  # the origin is not crossed, the vehicle starts there
        at = tails[crossed]
        signal_rows = zip(
            g.node_osmid[at].tolist(),
            g.node_lat[at].tolist(),
            g.node_lon[at].tolist(),
            arrive_s[crossed].tolist(),
            arrive_m[crossed].tolist(),
            last_b[crossed - 1].tolist(),
            first_b[crossed].tolist(),
            strict=True,
        )
        return Route.model_validate(
            {
                "profile": self.profile.name,
                "origin": origin,
                "destination": destination,
                "distance_m": float(lengths.sum()),
                "duration_s": float(times.sum()),
                "coordinates": list(zip(lons.tolist(), lats.tolist(), strict=True)),
                "edges": [dict(zip(_EDGE_FIELDS, row, strict=True)) for row in edge_rows],
                "signals": [dict(zip(_SIGNAL_FIELDS, row, strict=True)) for row in signal_rows],
            }
        )

    def travel_times_to(self, destination: LatLon, origins: Sequence[LatLon]) -> TravelTimes:
        """Travel time (and distance) from every origin to one destination, in one search.

        The search runs once from the destination over the reversed graph, bounded to settle
        just the origins' nodes, so 50 units cost about as much as one route.

        Args:
            destination: ``(lat, lon)`` of the incident.
            origins: ``(lat, lon)`` of each unit. An origin off the graph gets ``inf`` rather
                than an error, so one unit with a bad fix does not stop the ranking.

        Returns:
            Arrays in the order of ``origins``; ``destination`` set, ``origin`` ``None``.

        Raises:
            OffGraphError: the destination is off the graph.
        """
        end, target = self._snap_point(destination)
        duration, distance, snap_dist = self._one_to_many(target, origins, reverse=True)
        return TravelTimes(duration, distance, snap_dist, destination=end)

    def travel_times_from(self, origin: LatLon, destinations: Sequence[LatLon]) -> TravelTimes:
        """Travel time (and distance) from one origin to every destination, in one search.

        The mirror of :meth:`travel_times_to`: one forward search from the origin, bounded to
        settle just the destinations' nodes (e.g. choosing the hospital nearest in time to a
        scene).

        Args:
            origin: ``(lat, lon)`` of the start (e.g. the scene).
            destinations: ``(lat, lon)`` of each candidate. A destination off the graph gets
                ``inf`` rather than an error, so one bad record does not stop the choice.

        Returns:
            Arrays in the order of ``destinations``; ``origin`` set, ``destination`` ``None``.

        Raises:
            OffGraphError: the origin is off the graph.
        """
        start, source = self._snap_point(origin)
        duration, distance, snap_dist = self._one_to_many(source, destinations, reverse=False)
        return TravelTimes(duration, distance, snap_dist, origin=start)

    def _one_to_many(
        self, root: int, points: Sequence[LatLon], *, reverse: bool
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(duration, distance, snap distance)`` between node ``root`` and each point."""
        if len(points) == 0:
            empty = np.zeros(0, dtype=np.float64)
            return empty, empty.copy(), empty.copy()
        nodes, snap_dist = self._snap_many(points)
        on_graph = snap_dist <= self.max_snap_m
        wanted = nodes[on_graph]
        cost, pred = self._engine.search(root, wanted, reverse=reverse)
        duration = np.full(nodes.shape[0], np.inf)
        duration[on_graph] = cost[wanted]
        distance = np.full(nodes.shape[0], np.inf)
        distance[on_graph] = self._engine.path_sums(
            root, wanted, pred, self.graph.edge_length_m, reverse=reverse
        )
        return duration, distance, snap_dist


def _bearings(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Vectorised :func:`routing.graph.bearing_deg`."""
    rlat1, rlat2 = np.radians(lat1), np.radians(lat2)
    dlon = np.radians(lon2 - lon1)
    x = np.sin(dlon) * np.cos(rlat2)
    y = np.cos(rlat1) * np.sin(rlat2) - np.sin(rlat1) * np.cos(rlat2) * np.cos(dlon)
    out: FloatArray = np.degrees(np.arctan2(x, y)) % 360.0
    return out


def route_distance_check(route: Route) -> float:
    """Length of a route's polyline in metres (a cross-check for ``distance_m``)."""
    if len(route.coordinates) < 2:
        return 0.0
    arr = np.asarray(route.coordinates)
    return float(np.sum(haversine_m(arr[:-1, 1], arr[:-1, 0], arr[1:, 1], arr[1:, 0])))
