"""The compiled road graph: plain numpy arrays built once from osmnx and cached as ``.npz``.

``build_from_nx`` turns a raw osmnx graph into a :class:`RoadGraph` (signals kept through
simplification, largest strongly connected part, speeds); ``save``/``load`` write and read the
cache, which loads in milliseconds where re-parsing OSM takes seconds.

Cache format (``numpy.savez``, no pickles, format version in ``meta``):
    node_osmid int64[N], node_lat/node_lon float64[N], node_signal bool[N], node_streets int16[N];
    edge_u/edge_v int32[E] (node indices), edge_length_m/edge_speed_kph float64[E],
    edge_highway int16[E] (index into ``highway_names``), edge_name str[E];
    geom_offsets int64[E+1] into geom_lon/geom_lat float64 (each edge's polyline, u to v);
    highway_names str[K]; turn_ban_from/turn_ban_to int32[R] (edge indices: entering by
    ``turn_ban_from[r]`` and leaving by ``turn_ban_to[r]`` is a turn OSM forbids),
    turn_ban_kind int8[R] (index into :data:`RESTRICTION_KINDS`, the relation that forbids it);
    meta: JSON string (version, source, counts, build time).

Version 2 added the turn bans; a version-1 cache is refused (and rebuilt by ``Router.from_file``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .errors import GraphBuildError, GraphFormatError

if TYPE_CHECKING:
    # networkx and osmnx are for building graphs; loading and serving need only numpy.
    import networkx as nx  # type: ignore[import-untyped,unused-ignore]

FORMAT_VERSION = 2
CACHE_SUFFIX = ".npz"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

# Typical urban speeds (km/h) in China for roads without a maxspeed tag; osmnx uses them only
# where maxspeed is missing (ox.add_edge_speeds' hwy_speeds).
DEFAULT_SPEEDS_KPH: Mapping[str, float] = {
    "motorway": 100.0, "motorway_link": 60.0, "trunk": 80.0, "trunk_link": 50.0,
    "primary": 60.0, "primary_link": 40.0, "secondary": 50.0, "secondary_link": 35.0,
    "tertiary": 40.0, "tertiary_link": 30.0, "unclassified": 30.0, "residential": 30.0,
    "living_street": 15.0, "road": 30.0, "busway": 40.0,
}  # fmt: skip
FALLBACK_SPEED_KPH = 30.0

# OSM ``restriction=*`` values we read, in the order of their ``turn_ban_kind`` code. An
# ``only_*`` relation is stored as bans on every other exit, under its own kind.
RESTRICTION_KINDS: tuple[str, ...] = (
    "no_left_turn", "no_right_turn", "no_straight_on", "no_u_turn", "no_entry", "no_exit",
    "only_left_turn", "only_right_turn", "only_straight_on", "only_u_turn",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OsmTurnRestriction:
    """One OSM turn-restriction relation (``type=restriction``) with a node as ``via``.

    Attributes:
        kind: the ``restriction`` value, one of :data:`RESTRICTION_KINDS`.
        from_ways: OSM ids of the ``from`` way (several when the file reader split the way).
        via_node: OSM id of the ``via`` node.
        to_ways: OSM ids of the ``to`` way, likewise.
        relation_id: the relation's OSM id (for messages).
    """

    kind: str
    from_ways: frozenset[int]
    via_node: int
    to_ways: frozenset[int]
    relation_id: int = 0


def _empty_int32() -> Int32Array:
    return np.zeros(0, dtype=np.int32)


def _empty_int8() -> npt.NDArray[np.int8]:
    return np.zeros(0, dtype=np.int8)


Progress = Callable[[str], None]


def _no_progress(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True, eq=False)
class RoadGraph:
    """A drive network as arrays: what the router queries and what the cache stores.

    Node ``i`` is row ``i`` of every ``node_*`` array; edge ``j`` runs from node ``edge_u[j]``
    to node ``edge_v[j]``. Parallel edges are kept (the engine picks the cheapest).
    Treat instances as immutable: arrays are shared between threads without locks.
    """

    node_osmid: IntArray
    node_lat: FloatArray
    node_lon: FloatArray
    node_signal: BoolArray
    node_streets: npt.NDArray[np.int16]
    edge_u: Int32Array
    edge_v: Int32Array
    edge_length_m: FloatArray
    edge_speed_kph: FloatArray
    edge_highway: npt.NDArray[np.int16]
    edge_name: npt.NDArray[np.str_]
    geom_offsets: IntArray
    geom_lon: FloatArray
    geom_lat: FloatArray
    highway_names: npt.NDArray[np.str_]
    meta: Mapping[str, Any]
    turn_ban_from: Int32Array = field(default_factory=_empty_int32)
    turn_ban_to: Int32Array = field(default_factory=_empty_int32)
    turn_ban_kind: npt.NDArray[np.int8] = field(default_factory=_empty_int8)

    @property
    def node_count(self) -> int:
        """Number of nodes."""
        return int(self.node_osmid.shape[0])

    @property
    def edge_count(self) -> int:
        """Number of directed edges (parallel edges counted)."""
        return int(self.edge_u.shape[0])

    @property
    def signal_count(self) -> int:
        """Number of nodes tagged ``highway=traffic_signals``."""
        return int(self.node_signal.sum())

    def edge_polyline(self, edge: int) -> tuple[FloatArray, FloatArray]:
        """Return ``(lons, lats)`` of edge ``edge``'s geometry, from its tail to its head."""
        lo, hi = int(self.geom_offsets[edge]), int(self.geom_offsets[edge + 1])
        return self.geom_lon[lo:hi], self.geom_lat[lo:hi]

    def to_networkx(self, weights: FloatArray) -> nx.MultiDiGraph:
        """Build a networkx graph with edge attribute ``weight`` = ``weights[j]``, for checks.

        Node keys are node indices (not OSM ids); edge keys are edge indices.
        """
        import networkx as nx

        graph = nx.MultiDiGraph()
        graph.add_nodes_from(range(self.node_count))
        graph.add_weighted_edges_from(
            (int(u), int(v), float(w))
            for u, v, w in zip(self.edge_u, self.edge_v, weights, strict=True)
        )
        return graph


def _sort_merged_attributes(graph: nx.MultiDiGraph) -> None:
    """Put the attribute lists that simplification merges into a fixed order.

    osmnx builds them from sets, so their order follows Python's hash seed: the same file
    built twice gave different road classes (and speeds) to some merged edges. Sorted
    lists make a build reproducible.
    """
    for _, _, data in graph.edges(data=True):
        for key, value in data.items():
            if isinstance(value, list) and key != "geometry":
                data[key] = sorted(value, key=str)


def _first_highway(value: object) -> str:
    # Simplification merges ways of several classes into a list; the first is representative.
    if isinstance(value, list):
        return str(value[0]) if value else "road"
    return str(value) if value is not None else "road"


def _first_name(value: object) -> str:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else str(value)


def build_from_nx(
    raw: nx.MultiDiGraph,
    *,
    source: str,
    speeds_kph: Mapping[str, float] | None = None,
    restrictions: Sequence[OsmTurnRestriction] = (),
    progress: Progress = _no_progress,
) -> RoadGraph:
    """Turn a raw (unsimplified) osmnx drive graph into a compiled :class:`RoadGraph`.

    Steps: simplify keeping ``highway`` node tags as a split criterion (so traffic signals in
    mid-road stay nodes), keep the largest strongly connected component (every node can reach
    every other, so any snapped pair has a route), impute speeds from ``maxspeed`` or
    ``speeds_kph`` per class, turn the restriction relations into banned edge pairs.

    Args:
        raw: output of ``_osm.read_osm_file`` or ``_osm.download_place``.
        source: where it came from (kept in the cache metadata).
        speeds_kph: per-highway-class default speeds; defaults to :data:`DEFAULT_SPEEDS_KPH`.
        restrictions: turn-restriction relations read with the file (``_osm.read_osm``).
        progress: called with a short label before each step (for a CLI spinner).

    Returns:
        The compiled graph.

    Raises:
        GraphBuildError: nothing drivable is left.
    """
    import osmnx as ox

    if raw.number_of_edges() == 0:
        raise GraphBuildError(f"{source}: the graph has no edges")
    # Resolved on the raw graph, where every edge is one piece of one way: simplification
    # merges ways into lists and loses which one touches the via node.
    turns = _raw_banned_turns(raw, restrictions)
    progress("simplifying (signals kept)")
    graph = ox.simplify_graph(raw, node_attrs_include=["highway"])
    progress("keeping the largest strongly connected part")
    graph = ox.truncate.largest_component(graph, strongly=True)
    if graph.number_of_edges() == 0:
        raise GraphBuildError(f"{source}: no strongly connected road network")
    _sort_merged_attributes(graph)
    progress("adding speeds")
    graph = ox.add_edge_speeds(
        graph, hwy_speeds=dict(speeds_kph or DEFAULT_SPEEDS_KPH), fallback=FALLBACK_SPEED_KPH
    )
    progress("compiling arrays")
    compiled = compile_graph(graph, source=source)
    return _with_turn_bans(compiled, turns, relations=len(restrictions))


# A banned turn on the raw graph: (via node, kind code, from-neighbour (lon, lat), to-neighbour
# (lon, lat)). Neighbours go by position because simplification renumbers nothing but keeps
# each edge's polyline, whose second and second-to-last points are the raw neighbours.
_RawTurn = tuple[int, int, tuple[float, float], tuple[float, float]]


def _raw_banned_turns(
    raw: nx.MultiDiGraph, restrictions: Sequence[OsmTurnRestriction]
) -> list[_RawTurn]:
    if not restrictions:
        return []
    vias = {r.via_node for r in restrictions}
    into: dict[int, list[tuple[int, int]]] = defaultdict(list)
    out_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for u, v, data in raw.edges(data=True):
        way = data.get("osmid")
        if not isinstance(way, int):
            continue
        if v in vias:
            into[v].append((u, way))
        if u in vias:
            out_of[u].append((v, way))
    nodes = raw.nodes
    out: list[_RawTurn] = []
    for r in restrictions:
        if r.kind not in RESTRICTION_KINDS:
            continue
        code = RESTRICTION_KINDS.index(r.kind)
        froms = {x for x, way in into[r.via_node] if way in r.from_ways}
        tos = {y for y, way in out_of[r.via_node] if way in r.to_ways}
        if r.kind.startswith("only_"):
            tos = {y for y, _ in out_of[r.via_node]} - tos
        for x in froms:
            for y in tos:
                out.append(
                    (
                        r.via_node,
                        code,
                        (float(nodes[x]["x"]), float(nodes[x]["y"])),
                        (float(nodes[y]["x"]), float(nodes[y]["y"])),
                    )
                )
    return out


def _with_turn_bans(graph: RoadGraph, turns: Sequence[_RawTurn], *, relations: int) -> RoadGraph:
    """Attach raw banned turns to the compiled graph's edges (see :data:`_RawTurn`)."""
    meta = dict(graph.meta, restriction_relations=relations, turn_bans=0)
    if not turns:
        return dataclasses.replace(graph, meta=meta)
    offsets = graph.geom_offsets
    osmid = graph.node_osmid

    def key(node: int, k: int) -> tuple[int, float, float]:
        return (
            int(osmid[node]),
            round(float(graph.geom_lon[k]), 7),
            round(float(graph.geom_lat[k]), 7),
        )

    entering: dict[tuple[int, float, float], list[int]] = defaultdict(list)
    leaving: dict[tuple[int, float, float], list[int]] = defaultdict(list)
    for edge in range(graph.edge_count):
        lo, hi = int(offsets[edge]), int(offsets[edge + 1])
        entering[key(int(graph.edge_v[edge]), hi - 2)].append(edge)
        leaving[key(int(graph.edge_u[edge]), lo + 1)].append(edge)
    bans: set[tuple[int, int, int]] = set()
    for via, code, (xlon, xlat), (ylon, ylat) in turns:
        for a in entering.get((via, round(xlon, 7), round(xlat, 7)), []):
            for b in leaving.get((via, round(ylon, 7), round(ylat, 7)), []):
                bans.add((a, b, code))
    rows = sorted(bans)
    meta["turn_bans"] = len(rows)
    return dataclasses.replace(
        graph,
        turn_ban_from=np.array([r[0] for r in rows], dtype=np.int32),
        turn_ban_to=np.array([r[1] for r in rows], dtype=np.int32),
        turn_ban_kind=np.array([r[2] for r in rows], dtype=np.int8),
        meta=meta,
    )


def compile_graph(graph: nx.MultiDiGraph, *, source: str) -> RoadGraph:
    """Pack an osmnx graph that already has ``speed_kph`` on its edges into arrays.

    Args:
        graph: simplified osmnx graph with ``x``/``y`` on nodes and ``length``/``speed_kph``
            on edges (``geometry`` optional).
        source: kept in the metadata.

    Returns:
        The compiled graph (no turn bans: :func:`build_from_nx` adds them).
    """
    osmids = list(graph.nodes)
    index = {osmid: i for i, osmid in enumerate(osmids)}
    data = graph.nodes
    node_lat = np.array([float(data[n]["y"]) for n in osmids], dtype=np.float64)
    node_lon = np.array([float(data[n]["x"]) for n in osmids], dtype=np.float64)
    node_signal = np.array(
        [data[n].get("highway") == "traffic_signals" for n in osmids], dtype=np.bool_
    )

    highway_index: dict[str, int] = {}
    edge_u: list[int] = []
    edge_v: list[int] = []
    lengths: list[float] = []
    speeds: list[float] = []
    classes: list[int] = []
    names: list[str] = []
    offsets: list[int] = [0]
    glon: list[float] = []
    glat: list[float] = []
    for u, v, attrs in graph.edges(data=True):
        edge_u.append(index[u])
        edge_v.append(index[v])
        lengths.append(float(attrs["length"]))
        speeds.append(float(attrs["speed_kph"]))
        hwy = _first_highway(attrs.get("highway"))
        classes.append(highway_index.setdefault(hwy, len(highway_index)))
        names.append(_first_name(attrs.get("name")))
        geometry = attrs.get("geometry")
        if geometry is not None:
            xs, ys = geometry.xy
            glon.extend(float(x) for x in xs)
            glat.extend(float(y) for y in ys)
        else:
            glon.extend((float(data[u]["x"]), float(data[v]["x"])))
            glat.extend((float(data[u]["y"]), float(data[v]["y"])))
        offsets.append(len(glon))

    node_streets = streets_per_node(len(osmids), np.array(edge_u), np.array(edge_v))
    meta = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "built_at": time.time(),
        "nodes": len(osmids),
        "edges": len(edge_u),
        "signals": int(node_signal.sum()),
    }
    return RoadGraph(
        node_osmid=np.array(osmids, dtype=np.int64),
        node_lat=node_lat,
        node_lon=node_lon,
        node_signal=node_signal,
        node_streets=node_streets,
        edge_u=np.array(edge_u, dtype=np.int32),
        edge_v=np.array(edge_v, dtype=np.int32),
        edge_length_m=np.array(lengths, dtype=np.float64),
        edge_speed_kph=np.array(speeds, dtype=np.float64),
        edge_highway=np.array(classes, dtype=np.int16),
        edge_name=np.array(names, dtype=np.str_),
        geom_offsets=np.array(offsets, dtype=np.int64),
        geom_lon=np.array(glon, dtype=np.float64),
        geom_lat=np.array(glat, dtype=np.float64),
        highway_names=np.array(list(highway_index), dtype=np.str_),
        meta=meta,
    )


def streets_per_node(n: int, edge_u: npt.ArrayLike, edge_v: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Distinct roads meeting at each node (neighbours in either direction; 3+ is a junction).

    osmnx's ``street_count`` is not set on graphs read with ``graph_from_xml(simplify=False)``
    and simplified afterwards, which left every node at 0 (no junction delay, no turn cost).
    """
    u = np.asarray(edge_u, dtype=np.int64)
    v = np.asarray(edge_v, dtype=np.int64)
    a, b = np.minimum(u, v), np.maximum(u, v)
    keep = a != b
    pairs = np.unique(a[keep] * n + b[keep])
    count = np.bincount(pairs // n, minlength=n) + np.bincount(pairs % n, minlength=n)
    return count.astype(np.int16)


_ARRAY_FIELDS = (
    "node_osmid", "node_lat", "node_lon", "node_signal", "node_streets", "edge_u", "edge_v",
    "edge_length_m", "edge_speed_kph", "edge_highway", "edge_name", "geom_offsets", "geom_lon",
    "geom_lat", "highway_names", "turn_ban_from", "turn_ban_to", "turn_ban_kind",
)  # fmt: skip


def save(graph: RoadGraph, path: Path) -> Path:
    """Write ``graph`` to ``path`` as an uncompressed ``.npz`` (fast to load).

    Args:
        graph: the compiled graph.
        path: target file; ``.npz`` is appended when missing. Parent folders are created.

    Returns:
        The path written.
    """
    if path.suffix != CACHE_SUFFIX:
        path = path.with_name(path.name + CACHE_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {name: getattr(graph, name) for name in _ARRAY_FIELDS}
    arrays["meta"] = np.array(json.dumps(dict(graph.meta)))
    # Write beside the target and rename, so a reader never sees half a file.
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as handle:
        np.savez(handle, **arrays)
    tmp.replace(path)
    return path


def load(path: Path) -> RoadGraph:
    """Read a graph written by :func:`save`.

    Args:
        path: the ``.npz`` cache.

    Returns:
        The compiled graph.

    Raises:
        GraphFormatError: missing file, not a cache, or another format version.
    """
    try:
        # Open the file here: np.load leaves its own handle open when the content is not npz.
        with Path(path).open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise GraphFormatError(
                    f"{path}: cache format {meta.get('format_version')}, expected "
                    f"{FORMAT_VERSION}; rebuild it with `yishao graph build`"
                )
            arrays = {name: npz[name] for name in _ARRAY_FIELDS}
    except FileNotFoundError as exc:
        raise GraphFormatError(f"{path}: no such file") from exc
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        # numpy's own message (about pickles) would only mislead: say what the file should be.
        raise GraphFormatError(
            f"{path}: not a Yishao graph cache (an .npz written by `yishao graph build`)"
        ) from exc
    return RoadGraph(**arrays, meta=meta)


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in metres; works on floats and numpy arrays alike."""
    rlat1, rlat2 = np.radians(lat1), np.radians(lat2)
    dlat = rlat2 - rlat1
    dlon = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(rlat1) * np.cos(rlat2) * np.sin(dlon / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from point 1 to point 2, degrees in [0, 360) (0 = north)."""
    rlat1, rlat2 = math.radians(lat1), math.radians(lat2)
    dlon = math.radians(lon2 - lon1)
    x = math.sin(dlon) * math.cos(rlat2)
    y = math.cos(rlat1) * math.sin(rlat2) - math.sin(rlat1) * math.cos(rlat2) * math.cos(dlon)
    return math.degrees(math.atan2(x, y)) % 360.0
