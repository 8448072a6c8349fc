"""The router: snap points onto road segments, answer route and one-to-many travel-time queries.

A :class:`Router` is built once per graph and shared (threads included): it holds only
read-only arrays, the segment index (:mod:`routing.snapping`), the turn graph
(:mod:`routing.turns`) and its contraction hierarchy (:mod:`routing.hierarchy`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from . import graph as graph_mod
from .errors import GraphFormatError, NoRouteError, OffGraphError
from .graph import FloatArray, IntArray, RoadGraph, haversine_m
from .hierarchy import ContractionHierarchy, PlainSearch, fingerprint
from .profile import EMERGENCY, SpeedProfile
from .snapping import Projection, SegmentIndex
from .turns import TurnGraph, build_turn_graph, edge_end_bearings

if TYPE_CHECKING:
    from .matching import GpsFix, MatchedPoint, Matcher

DEFAULT_MAX_SNAP_M = 500.0
# A partial edge shorter than this (a point exactly on a node) is left out of a route.
_NO_LENGTH_M = 1e-3

LatLon = tuple[float, float]


def default_cache_dir() -> Path:
    """Folder for compiled graph caches: ``$YISHAO_CACHE_DIR``, else ``~/.cache/yishao/graphs``."""
    env = os.environ.get("YISHAO_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "yishao" / "graphs"


class Snap(BaseModel):
    """Where an asked point landed on the graph: its projection onto the nearest road segment.

    ``lat``/``lon`` are the projection (a route starts or ends exactly there); ``node_id`` is the
    nearer end of that segment's edge, for callers that need a graph node.
    """

    model_config = ConfigDict(frozen=True)

    asked_lat: float
    asked_lon: float
    node_id: int = Field(description="OSM id of the snapped edge's end nearer along the road")
    lat: float
    lon: float
    snap_distance_m: float = Field(description="distance from the asked point to the road")
    edge_u: int | None = Field(default=None, description="OSM id of the snapped edge's tail")
    edge_v: int | None = Field(default=None, description="OSM id of the snapped edge's head")
    fraction: float = Field(default=0.0, description="position along that edge, 0 at its tail")
    bearing_deg: float | None = Field(
        default=None, description="compass direction of the snapped edge at the projection"
    )
    two_way: bool = Field(default=False, description="the road may be driven either way")
    heading_deg: float | None = Field(
        default=None, description="the heading the snap honoured (None: any direction)"
    )


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
    turn_s: float = Field(
        default=0.0, description="part of duration_s spent turning into this edge at its tail"
    )
    from_fraction: float = Field(
        default=0.0, description="where on the edge the route enters it (0: at its tail)"
    )
    to_fraction: float = Field(
        default=1.0, description="where on the edge the route leaves it (1: at its head)"
    )
    delay_s: float = Field(
        default=0.0,
        description="part of duration_s charged for crossing the tail node (signal or junction); "
        "0 on a first edge the route starts part-way along or from a snapped point",
    )


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

    ``duration_s`` is the sum of the edges' ``duration_s`` (turns and node delays included);
    signal ETAs increase strictly along the route and stay below ``duration_s``. The route starts
    and ends at the asked points' projections onto the road: its first and last edges may be
    partial (``from_fraction`` / ``to_fraction``), their length and time counted pro rata.
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
_EDGE_FIELDS = (
    "u", "v", "length_m", "duration_s", "speed_kph", "highway", "name", "start_index", "turn_s",
    "from_fraction", "to_fraction", "delay_s",
)  # fmt: skip
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


@dataclass(frozen=True, slots=True)
class _Seeds:
    """States a search starts from (or ends at) with their cost / length at that end."""

    states: IntArray
    cost: FloatArray
    length: FloatArray
    # Parallel to ``states``: the fraction of the state's edge where the route begins (origin
    # seeds) or ends (destination seeds); -1 for a seed standing at a node.
    fraction: FloatArray


def _clash(seeds: _Seeds, other_states: set[int]) -> npt.NDArray[np.bool_]:
    """Seeds on a state the other end also seeds, placed on an edge (``fraction >= 0``).

    A set lookup: ``np.isin`` costs tens of microseconds on these one- or two-state arrays,
    and a ranking makes one call per unit.
    """
    return np.array(
        [
            s in other_states and f >= 0.0
            for s, f in zip(seeds.states.tolist(), seeds.fraction.tolist(), strict=True)
        ],
        dtype=np.bool_,
    )


def _seeds(
    states: list[int], cost: list[float], length: list[float], fraction: list[float]
) -> _Seeds:
    return _Seeds(
        np.asarray(states, dtype=np.int64),
        np.asarray(cost, dtype=np.float64),
        np.asarray(length, dtype=np.float64),
        np.asarray(fraction, dtype=np.float64),
    )


class Router:
    """Routes over one compiled graph under one speed profile, turns and restrictions included.

    Args:
        graph: the compiled graph.
        profile: speeds, delays and turn costs; :data:`routing.profile.EMERGENCY` by default.
        max_snap_m: points farther than this from any road raise :class:`OffGraphError`.
        hierarchy_cache: a file to load the contraction hierarchy from, or to save it to once
            built (``from_file`` puts it beside the graph); ``None`` builds it in memory.
        use_hierarchy: ``False`` answers every query with plain Dijkstra over the turn graph
            (the reference the hierarchy must match; slow on big graphs).
    """

    def __init__(
        self,
        graph: RoadGraph,
        *,
        profile: SpeedProfile = EMERGENCY,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
        hierarchy_cache: Path | None = None,
        use_hierarchy: bool = True,
    ) -> None:
        self.graph = graph
        self.profile = profile
        self.max_snap_m = max_snap_m
        self.edge_speed_kph: FloatArray = profile.edge_speeds_kph(graph)
        self.edge_time_s: FloatArray = profile.edge_times_s(graph)
        self.edge_drive_s: FloatArray = profile.edge_drive_s(graph)
        self.turns: TurnGraph = build_turn_graph(graph, profile, self.edge_time_s)
        self._index = SegmentIndex(graph)
        self._first_bearing, self._last_bearing = edge_end_bearings(graph)
        # In-arcs of each state (predecessors), for seeds that must arrive from elsewhere.
        src = self.turns.arc_sources().astype(np.int64)
        order = np.argsort(self.turns.arc_to, kind="stable")
        self._pred_off: IntArray = np.concatenate(
            [[0], np.cumsum(np.bincount(self.turns.arc_to, minlength=self.turns.state_count))]
        ).astype(np.int64)
        self._pred_state: IntArray = src[order]
        self._pred_arc: IntArray = order.astype(np.int64)
        self._out_off: IntArray = np.concatenate(
            [[0], np.cumsum(np.bincount(graph.edge_u, minlength=graph.node_count))]
        ).astype(np.int64)
        self._out_edges: IntArray = np.argsort(graph.edge_u, kind="stable").astype(np.int64)
        self._in_off: IntArray = np.concatenate(
            [[0], np.cumsum(np.bincount(graph.edge_v, minlength=graph.node_count))]
        ).astype(np.int64)
        self._in_edges: IntArray = np.argsort(graph.edge_v, kind="stable").astype(np.int64)
        self.hierarchy: ContractionHierarchy | None = None
        self._plain: PlainSearch | None = None
        if use_hierarchy:
            self.hierarchy = self._load_or_build(hierarchy_cache)
        else:
            self._plain = PlainSearch(self.turns)

    def _load_or_build(self, cache: Path | None) -> ContractionHierarchy:
        expected = fingerprint(self.turns)
        if cache is not None and cache.exists():
            try:
                return ContractionHierarchy.load(cache, expect_fingerprint=expected)
            except GraphFormatError:
                pass  # stale or foreign: rebuilt and overwritten below
        built = ContractionHierarchy.build(self.turns)
        if cache is not None:
            built.save(cache)
        return built

    @property
    def _engine(self) -> ContractionHierarchy | PlainSearch:
        engine = self.hierarchy if self.hierarchy is not None else self._plain
        assert engine is not None
        return engine

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
        :func:`default_cache_dir`), keyed by the file's path, size, modification time and the
        cache format. The contraction hierarchy for ``profile`` is cached beside the graph
        (``<graph>.<profile digest>.ch``, an ``.npz`` archive by content) and rebuilt when the
        graph or the profile changes.

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
            return cls(
                graph_mod.load(source),
                profile=profile,
                max_snap_m=max_snap_m,
                hierarchy_cache=hierarchy_path(source, profile),
            )
        from .build import build_graph_file  # building pulls in osmnx's heavier paths

        stat = source.stat() if source.exists() else None
        key = (
            f"{source.resolve()}|{stat.st_size if stat else 0}|{stat.st_mtime_ns if stat else 0}"
            f"|v{graph_mod.FORMAT_VERSION}"
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        cached = (cache_dir or default_cache_dir()) / f"{source.name}.{digest}.npz"
        if not cached.exists():
            build_graph_file(source, cached)
        return cls(
            graph_mod.load(cached),
            profile=profile,
            max_snap_m=max_snap_m,
            hierarchy_cache=hierarchy_path(cached, profile),
        )

    # ----------------------------------------------------------------------------- snapping

    def snap(self, point: LatLon, *, heading_deg: float | None = None) -> Snap:
        """Snap a ``(lat, lon)`` point onto the nearest road segment.

        Args:
            point: the point.
            heading_deg: a moving vehicle's course (compass degrees): only roads driven within
                60 degrees of it are considered (within 60 m of the nearest road), so a fix on
                a dual carriageway lands on the vehicle's own side. ``None``: any road.

        Raises:
            OffGraphError: the point is more than ``max_snap_m`` from any road.
        """
        return self._snap_point(point, heading_deg)[0]

    def _snap_point(
        self, point: LatLon, heading_deg: float | None = None
    ) -> tuple[Snap, Projection]:
        lat, lon = float(point[0]), float(point[1])
        proj = self._index.snap(lat, lon, heading_deg=heading_deg)
        return self._snap_info(lat, lon, proj, heading_deg), proj

    def _snap_points(self, points: Sequence[LatLon]) -> list[tuple[Snap, Projection]]:
        """:meth:`_snap_point` without heading for several points, the index queried once."""
        lats = [float(p[0]) for p in points]
        lons = [float(p[1]) for p in points]
        return [
            (self._snap_info(lat, lon, proj, None), proj)
            for lat, lon, proj in zip(lats, lons, self._index.snap_many(lats, lons), strict=True)
        ]

    def _snap_info(
        self, lat: float, lon: float, proj: Projection, heading_deg: float | None
    ) -> Snap:
        """The :class:`Snap` of a projection of ``(lat, lon)``.

        Raises:
            OffGraphError: the projection is farther than ``max_snap_m``.
        """
        if not proj.distance_m <= self.max_snap_m:
            raise OffGraphError(lat, lon, proj.distance_m, self.max_snap_m)
        g = self.graph
        e = proj.edge
        near = int(g.edge_u[e]) if proj.fraction < 0.5 else int(g.edge_v[e])
        foot_lat, foot_lon = self._index.unproject(proj.x_m, proj.y_m)
        return Snap(
            asked_lat=lat,
            asked_lon=lon,
            node_id=int(g.node_osmid[near]),
            lat=foot_lat,
            lon=foot_lon,
            snap_distance_m=proj.distance_m,
            edge_u=int(g.node_osmid[g.edge_u[e]]),
            edge_v=int(g.node_osmid[g.edge_v[e]]),
            fraction=proj.fraction,
            bearing_deg=proj.bearing_deg,
            two_way=proj.twin >= 0,
            heading_deg=heading_deg if proj.heading_used else None,
        )

    def _node_snap(self, node: int) -> Snap:
        g = self.graph
        lat, lon = float(g.node_lat[node]), float(g.node_lon[node])
        return Snap(
            asked_lat=lat,
            asked_lon=lon,
            node_id=int(g.node_osmid[node]),
            lat=lat,
            lon=lon,
            snap_distance_m=0.0,
        )

    def matcher(self) -> Matcher:
        """A fresh online map matcher for one vehicle (see :class:`routing.matching.Matcher`)."""
        from .matching import Matcher

        return Matcher(self)

    def match(self, trace: Sequence[GpsFix]) -> list[MatchedPoint]:
        """Map-match a GPS trace (hidden-Markov, Viterbi): one matched point per fix.

        Raises:
            OffGraphError: a fix is farther than ``max_snap_m`` from any road.
        """
        return self.matcher().match(trace)

    def node_index(self, node_id: int) -> int:
        """Return the array index of the node with OSM id ``node_id`` (KeyError if absent)."""
        pos = np.flatnonzero(self.graph.node_osmid == node_id)
        if pos.size == 0:
            raise KeyError(node_id)
        return int(pos[0])

    # ----------------------------------------------------------------------------- seeds

    def _origin_seeds(self, proj: Projection) -> _Seeds:
        """Start part-way along an edge: the rest of it (and of its twin, the other way)."""
        e, f = proj.edge, proj.fraction
        drive, length = self.edge_drive_s, self.graph.edge_length_m
        states, cost, lens, frac = [e], [(1.0 - f) * drive[e]], [(1.0 - f) * length[e]], [f]
        if proj.twin >= 0:
            t = proj.twin
            # Facing along e (heading known), going the other way means turning round first.
            extra = self.profile.u_turn_s if proj.heading_used else 0.0
            states.append(t)
            cost.append(f * drive[t] + extra)
            lens.append(f * length[t])
            frac.append(1.0 - f)
        return _seeds(states, cost, lens, frac)

    def _destination_seeds(self, proj: Projection) -> _Seeds:
        """End part-way along an edge: arriving there skips the part of the edge beyond it."""
        e, h = proj.edge, proj.fraction
        drive, length = self.edge_drive_s, self.graph.edge_length_m
        states, cost, lens, frac = [e], [-(1.0 - h) * drive[e]], [-(1.0 - h) * length[e]], [h]
        if proj.twin >= 0:
            t = proj.twin
            states.append(t)
            cost.append(-h * drive[t])
            lens.append(-h * length[t])
            frac.append(1.0 - h)
        return _seeds(states, cost, lens, frac)

    def _node_origin_seeds(self, node: int) -> _Seeds:
        edges = self._out_edges[self._out_off[node] : self._out_off[node + 1]]
        return _Seeds(
            edges,
            self.edge_time_s[edges],
            self.graph.edge_length_m[edges],
            np.full(edges.shape, -1.0),
        )

    def _node_destination_seeds(self, node: int) -> _Seeds:
        edges = self._in_edges[self._in_off[node] : self._in_off[node + 1]]
        zero = np.zeros(edges.shape[0])
        return _Seeds(edges, zero, zero.copy(), np.full(edges.shape, -1.0))

    def _successors(
        self, seeds: _Seeds, clash: npt.NDArray[np.bool_]
    ) -> tuple[_Seeds, dict[int, int]]:
        """Replace the clashing origin seeds by their successors (see :meth:`_direct`)."""
        keep = ~clash
        states = [seeds.states[keep]]
        cost = [seeds.cost[keep]]
        length = [seeds.length[keep]]
        frac = [seeds.fraction[keep]]
        via: dict[int, int] = {}
        best: dict[int, float] = {}
        t = self.turns
        for i in np.flatnonzero(clash).tolist():
            s = int(seeds.states[i])
            lo, hi = int(t.arc_offsets[s]), int(t.arc_offsets[s + 1])
            nxt = t.arc_to[lo:hi].astype(np.int64)
            c = seeds.cost[i] + t.arc_weight_s[lo:hi]
            states.append(nxt)
            cost.append(c)
            length.append(seeds.length[i] + t.arc_length_m[lo:hi])
            frac.append(np.full(nxt.shape, -1.0))
            for x, cx in zip(nxt.tolist(), c.tolist(), strict=True):
                if cx < best.get(x, math.inf):
                    best[x], via[x] = cx, i
        return (
            _Seeds(
                np.concatenate(states),
                np.concatenate(cost),
                np.concatenate(length),
                np.concatenate(frac),
            ),
            via,
        )

    def _predecessors(self, seeds: _Seeds, clash: npt.NDArray[np.bool_]) -> _Seeds:
        """Replace the clashing destination seeds by arrivals from their predecessors."""
        keep = ~clash
        states = [seeds.states[keep]]
        cost = [seeds.cost[keep]]
        length = [seeds.length[keep]]
        t = self.turns
        for i in np.flatnonzero(clash).tolist():
            s = int(seeds.states[i])
            lo, hi = int(self._pred_off[s]), int(self._pred_off[s + 1])
            arcs = self._pred_arc[lo:hi]
            states.append(self._pred_state[lo:hi])
            cost.append(seeds.cost[i] + t.arc_weight_s[arcs])
            length.append(seeds.length[i] + t.arc_length_m[arcs])
        n = sum(len(x) for x in states)
        return _Seeds(
            np.concatenate(states), np.concatenate(cost), np.concatenate(length), np.full(n, -1.0)
        )

    def _direct(self, origin: _Seeds, destination: _Seeds) -> tuple[float, float, int, int]:
        """Best way from an origin seed to a destination seed on the same state, driving on.

        A search label cannot tell "further along this edge" from "behind on this edge", so a
        state in both seed sets is handled here, and its origin seed replaced by successors.

        Returns:
            ``(cost, length, origin seed index, destination seed index)``; cost inf if none.
        """
        best = (math.inf, math.inf, -1, -1)
        o_states, d_states = origin.states.tolist(), destination.states.tolist()
        if set(o_states).isdisjoint(d_states):  # the usual case: nothing to compare
            return best
        for i, s in enumerate(o_states):
            for j, t in enumerate(d_states):
                fo, fd = float(origin.fraction[i]), float(destination.fraction[j])
                if s != t or fo < 0 or fd < 0 or fd < fo:
                    continue
                cost = float(origin.cost[i] + destination.cost[j])
                if cost < best[0]:
                    best = (cost, float(origin.length[i] + destination.length[j]), i, j)
        return best

    # ----------------------------------------------------------------------------- queries

    def route(
        self,
        origin: LatLon,
        destination: LatLon,
        *,
        origin_heading_deg: float | None = None,
    ) -> Route:
        """Fastest route between two ``(lat, lon)`` points under the router's profile.

        The route starts at the origin's projection onto the nearest road and ends at the
        destination's, partial edges counted; turn costs and restrictions apply.

        Args:
            origin: start point; snapped onto the road network.
            destination: end point; snapped likewise.
            origin_heading_deg: the vehicle's course at the origin, when it is moving: it then
                starts in that direction on its own carriageway (turning round costs a U-turn).

        Returns:
            The route (no edges when both points project onto the same spot).

        Raises:
            OffGraphError: either point is farther than ``max_snap_m`` from any road.
            NoRouteError: no permitted way between them (only with unusual restrictions).
        """
        if origin_heading_deg is None:  # both points in one query of the index
            (start, p_origin), (end, p_dest) = self._snap_points((origin, destination))
        else:
            start, p_origin = self._snap_point(origin, origin_heading_deg)
            end, p_dest = self._snap_point(destination)
        o_seeds = self._origin_seeds(p_origin)
        d_seeds = self._destination_seeds(p_dest)
        return self._route_seeds(o_seeds, d_seeds, start, end, start_at_node=False)

    def route_nodes(
        self,
        source: int,
        target: int,
        *,
        origin: Snap | None = None,
        destination: Snap | None = None,
    ) -> Route:
        """Fastest route between two node indices (used by checks and node-placed callers).

        The route leaves ``source`` by any edge (its node delay paid, no turn cost) and arrives
        at ``target`` by any edge.

        Args:
            source: start node index.
            target: end node index.
            origin: snap record to report; defaults to the node itself.
            destination: likewise for the end.

        Returns:
            The route (no edges when ``source == target``).

        Raises:
            NoRouteError: ``target`` cannot be reached (a graph a caller built unconnected).
        """
        start = origin or self._node_snap(source)
        end = destination or self._node_snap(target)
        if source == target:
            return self._assemble(np.zeros(0, dtype=np.int64), 0.0, 1.0, 0.0, start, end, True)
        return self._route_seeds(
            self._node_origin_seeds(source), self._node_destination_seeds(target), start, end,
            start_at_node=True,
        )  # fmt: skip

    def _route_seeds(
        self, o_seeds: _Seeds, d_seeds: _Seeds, start: Snap, end: Snap, *, start_at_node: bool
    ) -> Route:
        direct = self._direct(o_seeds, d_seeds)
        clash = _clash(o_seeds, set(d_seeds.states.tolist()))
        search, via = self._successors(o_seeds, clash) if clash.any() else (o_seeds, {})
        answer = self._engine.route(
            search.states, search.cost, search.length, d_seeds.states, d_seeds.cost, d_seeds.length
        )
        if direct[0] <= answer.cost:
            i, j = direct[2], direct[3]
            state = int(o_seeds.states[i])
            extra = (
                float(o_seeds.cost[i])
                - (1.0 - float(o_seeds.fraction[i])) * self.edge_drive_s[state]
            )
            return self._assemble(
                np.array([state]), float(o_seeds.fraction[i]), float(d_seeds.fraction[j]), extra,
                start, end, False,
            )  # fmt: skip
        if not math.isfinite(answer.cost):
            raise NoRouteError("no permitted route between the two points")
        states = answer.states
        first = int(states[0])
        if first in via:  # the search left a clashing seed: put its state back in front
            seed_i = via[first]
            states = np.concatenate([[int(o_seeds.states[seed_i])], states])
        else:
            seed_i = int(np.flatnonzero(search.states == first)[0]) if not start_at_node else -1
            if seed_i >= 0:
                # Several seeds may share a state; take the cheapest of them.
                same = np.flatnonzero(search.states == first)
                seed_i = int(same[np.argmin(search.cost[same])])
        last = int(states[-1])
        same_d = np.flatnonzero(d_seeds.states == last)
        dest_i = int(same_d[np.argmin(d_seeds.cost[same_d])])
        to_frac = 1.0 if start_at_node else float(d_seeds.fraction[dest_i])
        if start_at_node:
            return self._assemble(states, 0.0, 1.0, 0.0, start, end, True)
        seeds_src = o_seeds if first in via else search
        from_frac = float(seeds_src.fraction[seed_i])
        s0 = int(states[0])
        extra = float(seeds_src.cost[seed_i]) - (1.0 - from_frac) * self.edge_drive_s[s0]
        return self._assemble(states, from_frac, to_frac, extra, start, end, False)

    def _assemble(
        self,
        states: IntArray,
        from_frac: float,
        to_frac: float,
        start_extra_s: float,
        origin: Snap,
        destination: Snap,
        start_at_node: bool,
    ) -> Route:
        """Build the :class:`Route` of a state sequence (road edges in order)."""
        g = self.graph
        n = int(states.shape[0])
        if (
            n == 1
            and not start_at_node
            and (to_frac - from_frac) * g.edge_length_m[states[0]] < _NO_LENGTH_M
        ):
            states = states[:0]  # both points project onto the same spot
            n = 0
        if n == 0:
            return Route.model_validate(
                {
                    "profile": self.profile.name, "origin": origin, "destination": destination,
                    "distance_m": 0.0, "duration_s": 0.0,
                    "coordinates": [(origin.lon, origin.lat)], "edges": [], "signals": [],
                }
            )  # fmt: skip
        fa = np.zeros(n)
        fb = np.ones(n)
        fa[0] = from_frac
        fb[-1] = to_frac
        drive = self.edge_drive_s[states]
        turn = np.zeros(n)
        if n > 1:
            arcs = self.turns.find_arcs(states[:-1], states[1:])
            turn[1:] = self.turns.arc_turn_s[arcs]
        delay = self.edge_time_s[states] - drive
        times = turn + delay + fb * drive
        if not start_at_node:
            # The first edge starts part-way: no node delay, only the part still to drive.
            times[0] = (fb[0] - fa[0]) * drive[0] + start_extra_s
            turn[0] = start_extra_s
            delay[0] = 0.0
        lengths = (fb - fa) * g.edge_length_m[states]
        if not start_at_node and n > 1:
            # A point on a node gives a partial edge of no length at that end: fold its time
            # into the neighbouring edge (vehicles divide by edge lengths).
            first_keep = 1 if lengths[0] < _NO_LENGTH_M else 0
            last_keep = n - 1 if n - first_keep > 1 and lengths[-1] < _NO_LENGTH_M else n
            if first_keep:
                times[1] += times[0]
                turn[1] += times[0]
            if last_keep < n:
                times[-2] += times[-1]
            keep = slice(first_keep, last_keep)
            states, fa, fb, drive = states[keep], fa[keep], fb[keep], drive[keep]
            turn, times, lengths, delay = turn[keep], times[keep], lengths[keep], delay[keep]
            n = int(states.shape[0])
        # Polyline: the first edge's (cut) geometry, then each edge's without its first point.
        # Whole edges are gathered in one vectorised take; only the two ends may be cut.
        lo, hi = g.geom_offsets[states], g.geom_offsets[states + 1]
        counts = hi - lo - 1  # points each edge adds after its first
        take = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(
            lo + 1 - (np.cumsum(counts) - counts), counts
        )
        mid_lon = g.geom_lon[take]
        mid_lat = g.geom_lat[take]
        lon_parts: list[FloatArray] = [g.geom_lon[lo[:1]]]
        lat_parts: list[FloatArray] = [g.geom_lat[lo[:1]]]
        cut_first = fa[0] > 0.0 or fb[0] < 1.0
        cut_last = n > 1 and fb[-1] < 1.0
        offsets = np.concatenate([[0], np.cumsum(counts)])
        sizes = counts.copy()
        if cut_first:
            lons0, lats0 = self._index.cut(int(states[0]), float(fa[0]), float(fb[0]))
            lon_parts = [lons0]
            lat_parts = [lats0]
            sizes[0] = lons0.shape[0] - 1
            first_end = int(offsets[1])
        else:
            first_end = 0
        last_start = int(offsets[-2]) if cut_last else int(offsets[-1])
        lon_parts.append(mid_lon[first_end:last_start])
        lat_parts.append(mid_lat[first_end:last_start])
        if cut_last:
            lons1, lats1 = self._index.cut(int(states[-1]), 0.0, float(fb[-1]))
            lon_parts.append(lons1[1:])
            lat_parts.append(lats1[1:])
            sizes[-1] = lons1.shape[0] - 1
        # Edge i starts at the point where edge i-1 ended (index = points before it).
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        all_lon = np.concatenate(lon_parts)
        all_lat = np.concatenate(lat_parts)
        if not start_at_node:  # begin exactly at the snapped point (the cut's float rounding aside)
            all_lon[0], all_lat[0] = origin.lon, origin.lat
            all_lon[-1], all_lat[-1] = destination.lon, destination.lat
        arrive_s = np.cumsum(times) - times
        arrive_m = np.cumsum(lengths) - lengths
        tails = g.edge_u[states]
        edge_rows = zip(
            g.node_osmid[tails].tolist(),
            g.node_osmid[g.edge_v[states]].tolist(),
            lengths.tolist(),
            times.tolist(),
            self.edge_speed_kph[states].tolist(),
            g.highway_names[g.edge_highway[states]].tolist(),
            g.edge_name[states].tolist(),
            starts.tolist(),
            turn.tolist(),
            fa.tolist(),
            fb.tolist(),
            delay.tolist(),
            strict=True,
        )
        crossed = np.flatnonzero(g.node_signal[tails])
        crossed = crossed[crossed > 0]  # the first edge's tail is behind the start
        at = tails[crossed]
        signal_rows = zip(
            g.node_osmid[at].tolist(),
            g.node_lat[at].tolist(),
            g.node_lon[at].tolist(),
            arrive_s[crossed].tolist(),
            arrive_m[crossed].tolist(),
            self._last_bearing[states[crossed - 1]].tolist(),
            self._first_bearing[states[crossed]].tolist(),
            strict=True,
        )
        return Route.model_validate(
            {
                "profile": self.profile.name,
                "origin": origin,
                "destination": destination,
                "distance_m": float(lengths.sum()),
                "duration_s": float(times.sum()),
                "coordinates": list(zip(all_lon.tolist(), all_lat.tolist(), strict=True)),
                "edges": [dict(zip(_EDGE_FIELDS, row, strict=True)) for row in edge_rows],
                "signals": [dict(zip(_SIGNAL_FIELDS, row, strict=True)) for row in signal_rows],
            }
        )

    def travel_times_to(self, destination: LatLon, origins: Sequence[LatLon]) -> TravelTimes:
        """Travel time (and distance) from every origin to one destination, in one search.

        With a hierarchy: one upward search from the destination, then one sweep over the
        union of the origins' upward search spaces (RPHAST, see
        :meth:`ContractionHierarchy.one_to_many`), so 50 units cost a few routes' worth.
        Origins and the destination are snapped onto road segments, partial edges counted.

        Args:
            destination: ``(lat, lon)`` of the incident.
            origins: ``(lat, lon)`` of each unit. An origin off the graph gets ``inf`` rather
                than an error, so one unit with a bad fix does not stop the ranking.

        Returns:
            Arrays in the order of ``origins``; ``destination`` set, ``origin`` ``None``.

        Raises:
            OffGraphError: the destination is off the graph.
        """
        end, proj = self._snap_point(destination)
        root = self._destination_seeds(proj)
        duration, distance, snap_dist = self._one_to_many(root, origins, root_is_target=True)
        return TravelTimes(duration, distance, snap_dist, destination=end)

    def travel_times_from(self, origin: LatLon, destinations: Sequence[LatLon]) -> TravelTimes:
        """Travel time (and distance) from one origin to every destination, in one search.

        The mirror of :meth:`travel_times_to` (e.g. choosing the hospital nearest in time to a
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
        start, proj = self._snap_point(origin)
        root = self._origin_seeds(proj)
        duration, distance, snap_dist = self._one_to_many(root, destinations, root_is_target=False)
        return TravelTimes(duration, distance, snap_dist, origin=start)

    def _one_to_many(
        self, root: _Seeds, points: Sequence[LatLon], *, root_is_target: bool
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(duration, distance, snap distance)`` between the root seeds and each point."""
        count = len(points)
        duration = np.full(count, np.inf)
        distance = np.full(count, np.inf)
        if count == 0:
            return duration, distance, np.zeros(0)
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        edge, twin, frac, snap_dist = self._index.snap_many_arrays(pts[:, 0], pts[:, 1])
        on_graph = snap_dist <= self.max_snap_m
        # Points on an edge the root also seeds need the careful path (driving on along the
        # same edge, see _direct); the others' seeds are built for all of them at once.
        shared = np.isin(edge, root.states) | ((twin >= 0) & np.isin(twin, root.states))
        fast = np.flatnonzero(on_graph & ~shared)
        e, f, t = edge[fast], frac[fast], twin[fast]
        has = t >= 0
        tw = t[has]
        drive, road_m = self.edge_drive_s, self.graph.edge_length_m
        if root_is_target:  # units' origin seeds: the rest of their edge, or of its twin
            ahead, behind = 1.0 - f, f[has]
        else:  # destinations' seeds: arriving skips the part of the edge beyond the point
            ahead, behind = -(1.0 - f), -f[has]
        states: list[IntArray] = [e, tw]
        costs: list[FloatArray] = [ahead * drive[e], behind * drive[tw]]
        lengths: list[FloatArray] = [ahead * road_m[e], behind * road_m[tw]]
        groups: list[IntArray] = [fast, fast[has]]
        root_states = set(root.states.tolist())
        for i in np.flatnonzero(on_graph & shared).tolist():
            proj = self._index.snap_many(pts[i : i + 1, 0], pts[i : i + 1, 1])[0]
            seeds = self._origin_seeds(proj) if root_is_target else self._destination_seeds(proj)
            pair = (seeds, root) if root_is_target else (root, seeds)
            direct = self._direct(*pair)
            if math.isfinite(direct[0]):
                duration[i], distance[i] = direct[0], direct[1]
            clash = _clash(seeds, root_states)
            if clash.any():
                seeds = (
                    self._successors(seeds, clash)[0]
                    if root_is_target
                    else self._predecessors(seeds, clash)
                )
            states.append(seeds.states)
            costs.append(seeds.cost)
            lengths.append(seeds.length)
            groups.append(np.full(seeds.states.shape[0], i, dtype=np.int64))
        group = np.concatenate(groups)
        if group.shape[0]:
            order = np.argsort(group, kind="stable")  # the engine takes seeds grouped
            cost, length = self._engine.one_to_many(
                root.states, root.cost, root.length,
                np.concatenate(states)[order], np.concatenate(costs)[order],
                np.concatenate(lengths)[order], group[order], count,
                root_is_target=root_is_target,
            )  # fmt: skip
            better = cost < duration
            duration[better] = cost[better]
            distance[better] = length[better]
        return duration, distance, snap_dist


def hierarchy_path(graph_file: Path, profile: SpeedProfile) -> Path:
    """Where ``Router.from_file`` keeps the hierarchy of ``graph_file`` under ``profile``."""
    stem = graph_file.name.removesuffix(graph_mod.CACHE_SUFFIX)
    return graph_file.with_name(f"{stem}.{profile.cache_key()}.ch")


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
