"""The router's OSM extract as a SUMO network, and the map between the two.

:func:`build_network` filters the extract to the roads the router drives (every tag kept),
runs ``netconvert`` on it and maps, in both directions that a drill needs:

* every router signal node (``RoadGraph.node_osmid`` where ``node_signal``; the service's
  ``intersection_id``) to the SUMO traffic light that controls it, with, for every movement
  through the node (router edge in, router edge out, their bearings and
  :class:`routing.greenwave.ApproachLabel` exactly as :mod:`routing.greenwave` computes them),
  the traffic-light link indices a green for that movement must show;
* every router edge (OSM node ``u`` to OSM node ``v``) to the SUMO edges that drive it, so a
  :class:`routing.Route` the service planned can be driven in SUMO
  (:meth:`SumoNetwork.route_edges`).

OSM's own signals are the only lights (never ``--tls.guess``). Signals often sit on each
approach a few metres before the junction, and a dual carriageway crossing is four OSM nodes;
``--tls.guess-signals --tls.join --junctions.join`` make one light per physical intersection
(what cross traffic really meets), so several router signal nodes share one SUMO light. A
movement whose turn is decided only past the signal node (the node is upstream of the
junction) is mapped to the approach's through links (``scope = "approach"``).

The build is cached in its output folder (``manifest.json`` keyed by the source file, options
and SUMO version): files ``drive.osm``, ``net.net.xml``, ``joined.xml``, ``mapping.json``.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree  # type: ignore[import-untyped,unused-ignore]

from routing import RoadGraph, Route, Router
from routing.greenwave import ApproachLabel, approach_label

from ._home import sumo_binary, sumo_env, sumo_version
from ._osm_filter import write_drivable_osm

FORMAT_VERSION = 1

# The traffic-engineering default for importing OSM (SUMO's osmWebWizard), less what would
# invent or drop signals: no --tls.guess (lights where OSM has none), no --tls.discard-simple
# (it drops mid-block signals the router requests priority at). Yellow 3 s and all-red 2 s are
# the usual Chinese clearance (GB 14886); SUMO's default has no all-red and a speed-based yellow.
JOINED_OPTIONS: tuple[str, ...] = (
    "--geometry.remove",
    "--ramps.guess",
    "--junctions.join",
    "--tls.guess-signals",
    "--tls.join",
    "--tls.default-type",
    "static",
    "--tls.yellow.time",
    "3",
    "--tls.allred.time",
    "2",
    "--output.original-names",
    "--output.street-names",
)
# Every OSM signal node its own light, nothing joined: a 1:1 map, but a dual carriageway
# crossing becomes four uncoordinated lights (for comparison, not for drills).
PLAIN_OPTIONS: tuple[str, ...] = (
    "--geometry.remove",
    "--ramps.guess",
    "--tls.default-type",
    "static",
    "--tls.yellow.time",
    "3",
    "--tls.allred.time",
    "2",
    "--output.original-names",
    "--output.street-names",
)


class Variant(StrEnum):
    """Named netconvert option sets."""

    JOINED = "joined"
    PLAIN = "plain"


VARIANT_OPTIONS: Mapping[Variant, tuple[str, ...]] = {
    Variant.JOINED: JOINED_OPTIONS,
    Variant.PLAIN: PLAIN_OPTIONS,
}

SIGNAL_REACH_M = 50.0
"""How far from a router signal node its SUMO light may sit (guess-signals moves a light up to
25 m to the junction; a joined junction's centre may be 20 m further)."""
ANCHOR_REACH_M = 20.0
_SAMPLE_M = 5.0
_MAX_HEADING_DIFF_DEG = 45.0


class BuildError(RuntimeError):
    """netconvert failed, or its output cannot be read."""


class MapStatus(StrEnum):
    """How well a router signal node maps onto SUMO."""

    MAPPED = "mapped"
    PARTIAL = "partial"
    UNMAPPED = "unmapped"


class Movement(BaseModel):
    """One way through a router signal node, and the SUMO links that must be green for it."""

    model_config = ConfigDict(frozen=True)

    in_bearing_deg: float = Field(description="router: direction of travel arriving")
    out_bearing_deg: float = Field(description="router: direction of travel leaving")
    inbound: ApproachLabel
    outbound: ApproachLabel
    from_osmid: int = Field(description="router edge in: its tail node")
    to_osmid: int = Field(description="router edge out: its head node")
    tls_id: str | None = None
    links: list[int] = Field(default_factory=list, description="traffic-light link indices")
    scope: Literal["turn", "approach", "inside", "none"] = Field(
        "none",
        description="turn: the connection of this very movement; approach: the through links "
        "of the approach (the turn is made past the signal node, at a junction the router edge "
        "leads to); inside: the movement starts inside a joined junction, whose light the "
        "vehicle met on entering it (nothing more to show green)",
    )
    reason: str = ""

    @property
    def mapped(self) -> bool:
        """Whether the gateway knows what to do for this movement."""
        return bool(self.links) or (self.scope == "inside" and self.tls_id is not None)


class SignalMap(BaseModel):
    """One router signal node (the service's intersection id) and its SUMO light."""

    model_config = ConfigDict(frozen=True)

    intersection_id: int = Field(description="OSM node id")
    lat: float
    lon: float
    status: MapStatus
    tls_id: str | None = None
    junction_id: str | None = Field(None, description="SUMO junction the node became, if any")
    movements: list[Movement] = Field(default_factory=list)
    reason: str = ""

    def movement_for(
        self, in_bearing_deg: float, out_bearing_deg: float, *, max_diff_deg: float = 30.0
    ) -> Movement | None:
        """The movement a request's bearings name, if it is mapped.

        The router computes bearings as the mapping does, so the movement of a request made
        over the same graph matches to the hundredth of a degree; ``max_diff_deg`` (summed over
        both legs) allows a request from a slightly different graph. None: no movement that
        close, or that movement has no SUMO light.
        """
        best: tuple[float, Movement] | None = None
        for m in self.movements:
            cost = _angle(m.in_bearing_deg, in_bearing_deg) + _angle(
                m.out_bearing_deg, out_bearing_deg
            )
            if best is None or cost < best[0]:
                best = (cost, m)
        if best is None or best[0] > max_diff_deg or not best[1].mapped:
            return None
        return best[1]


class EdgeChoice(BaseModel):
    """The SUMO edges of one router edge (several when parallel router edges join u and v)."""

    model_config = ConfigDict(frozen=True)

    length_m: float
    sumo_edges: list[str] | None = Field(
        description="[] inside a joined junction; None when it could not be mapped"
    )


class MappingSummary(BaseModel):
    """The figures of a build."""

    model_config = ConfigDict(frozen=True)

    variant: str
    router_nodes: int
    router_edges: int
    router_signals: int
    sumo_edges: int
    sumo_junctions: int
    sumo_tls: int
    signals_mapped: int
    signals_partial: int
    signals_unmapped: int
    unmapped_reasons: dict[str, int]
    tls_serving_router_signals: int
    tls_without_router_signal: int
    edges_mapped: int
    edges_inside_junction: int
    edges_unmapped: int
    netconvert_s: float
    mapping_s: float


class NetworkMapping(BaseModel):
    """What ``mapping.json`` holds."""

    format_version: int = FORMAT_VERSION
    source: str
    sumo_version: str
    netconvert_options: list[str]
    built_at: datetime
    summary: MappingSummary
    signals: list[SignalMap]
    tls_without_router_signal: list[str]
    edges: dict[str, list[EdgeChoice]] = Field(description="'u>v' (OSM ids) -> choices")


def _angle(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # The router's formula (routing.router._bearings), so labels and bearings match requests.
    rlat1, rlat2 = math.radians(lat1), math.radians(lat2)
    dlon = math.radians(lon2 - lon1)
    x = math.sin(dlon) * math.cos(rlat2)
    y = math.cos(rlat1) * math.sin(rlat2) - math.sin(rlat1) * math.cos(rlat2) * math.cos(dlon)
    return math.degrees(math.atan2(x, y)) % 360.0


def edge_key(u: int, v: int) -> str:
    """Key of a router edge in :attr:`NetworkMapping.edges`."""
    return f"{u}>{v}"


# ------------------------------------------------------------------------------------ netconvert


def run_netconvert(
    osm: Path, net: Path, joined: Path, options: Sequence[str], *, timeout_s: float = 900.0
) -> float:
    """Run netconvert; returns its wall time in seconds.

    Raises:
        BuildError: it failed (its last output lines are in the message).
    """
    argv = [
        str(sumo_binary("netconvert")),
        "--osm-files",
        str(osm),
        "--output-file",
        str(net),
        "--junctions.join-output",
        str(joined),
        "--no-warnings",
        "--log",
        str(net.with_suffix(".log")),
        *options,
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv, env=sumo_env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"netconvert took longer than {timeout_s:.0f} s") from exc
    if done.returncode != 0 or not net.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise BuildError(f"netconvert failed ({done.returncode}): {tail}")
    return time.perf_counter() - started


def _joined_sets(path: Path) -> list[list[int]]:
    if not path.is_file():
        return []
    out: list[list[int]] = []
    for el in ElementTree.parse(path).getroot().iter("join"):
        ids = [int(t) for t in (el.get("nodes") or "").split() if t.lstrip("-").isdigit()]
        if ids:
            out.append(ids)
    return out


# --------------------------------------------------------------------------------------- mapping


@dataclass(frozen=True, slots=True)
class _Anchor:
    edges: tuple[Any, ...]  # sumolib Edge objects the search may start or end on
    junction: Any | None


class _Mapper:
    """Maps one RoadGraph onto one sumolib network (see the module docstring)."""

    def __init__(self, graph: RoadGraph, net: Any, joined: list[list[int]]) -> None:
        self.g = graph
        self.net = net
        self.junction_of: dict[int, Any] = {}
        tokens: dict[int, Any] = {}
        for node in net.getNodes():
            nid = str(node.getID())
            if nid.lstrip("-").isdigit():
                self.junction_of[int(nid)] = node
            elif nid.startswith("cluster_"):
                # The id lists (some of) the joined OSM nodes; joined.xml lists all of them.
                for tok in nid.split("_")[1:]:
                    if tok.lstrip("-").isdigit():
                        tokens[int(tok)] = node
        for members in joined:
            cluster = next((tokens[m] for m in members if m in tokens), None)
            if cluster is not None:
                for m in members:
                    self.junction_of.setdefault(m, cluster)
        self.drivable = [e for e in net.getEdges() if e.allows("passenger")]
        self.tls_of_junction: dict[str, str] = {}
        for tls in net.getTrafficLights():
            for in_lane, _out_lane, _link in tls.getConnections():
                junction = in_lane.getEdge().getToNode().getID()
                self.tls_of_junction.setdefault(str(junction), str(tls.getID()))
        self._index_edges()
        self._xy = self._project(graph.node_lon, graph.node_lat)
        self.choices: dict[str, list[EdgeChoice]] = {}
        self.edge_paths: list[list[Any] | None] = []

    # -- geometry ----------------------------------------------------------------------------

    def _project(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        # The network's own projection (UTM) and offset, on all points at once.
        x, y = self.net.getGeoProj()(np.asarray(lon), np.asarray(lat))
        dx, dy = self.net.getLocationOffset()
        return np.stack([np.asarray(x) + dx, np.asarray(y) + dy], axis=-1)

    def _index_edges(self) -> None:
        # Points every few metres along each drivable edge's shape, with the heading there.
        pts: list[np.ndarray] = []
        owner: list[np.ndarray] = []
        heading: list[np.ndarray] = []
        for k, edge in enumerate(self.drivable):
            shape = np.asarray(edge.getShape(), dtype=np.float64)[:, :2]
            d = np.diff(shape, axis=0)
            seg = np.hypot(d[:, 0], d[:, 1])
            keep = seg > 0
            if not keep.any():
                continue
            a, d, seg = shape[:-1][keep], d[keep], seg[keep]
            n = np.maximum(1, np.ceil(seg / _SAMPLE_M)).astype(np.int64)
            f = np.concatenate([np.arange(m + 1) / m for m in n.tolist()])
            rep = np.repeat(np.arange(len(n)), n + 1)
            pts.append(a[rep] + d[rep] * f[:, None])
            heading.append((np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0)[rep])
            owner.append(np.full(len(rep), k, dtype=np.int64))
        self._tree = cKDTree(np.concatenate(pts))
        self._owner = np.concatenate(owner)
        self._heading = np.concatenate(heading)

    def _edge_at(self, xy: np.ndarray, heading_deg: float) -> Any | None:
        """The drivable SUMO edge passing nearest to ``xy`` in the direction ``heading_deg``."""
        hits = self._tree.query_ball_point(xy, ANCHOR_REACH_M)
        best: tuple[float, Any] | None = None
        for h in hits:
            if _angle(float(self._heading[h]), heading_deg) > _MAX_HEADING_DIFF_DEG:
                continue
            d = float(np.hypot(*(self._tree.data[h] - xy)))
            if best is None or d < best[0]:
                best = (d, self.drivable[int(self._owner[h])])
        return best[1] if best is not None else None

    # -- edges -------------------------------------------------------------------------------

    def _segment_bearings(self, e: int) -> tuple[float, float]:
        g = self.g
        lo, hi = int(g.geom_offsets[e]), int(g.geom_offsets[e + 1])
        first = _bearing(g.geom_lat[lo], g.geom_lon[lo], g.geom_lat[lo + 1], g.geom_lon[lo + 1])
        last = _bearing(
            g.geom_lat[hi - 2], g.geom_lon[hi - 2], g.geom_lat[hi - 1], g.geom_lon[hi - 1]
        )
        return first, last

    def _anchor(self, node: int, heading: float, *, start: bool) -> _Anchor | None:
        osmid = int(self.g.node_osmid[node])
        junction = self.junction_of.get(osmid)
        if junction is not None:
            edges = junction.getOutgoing() if start else junction.getIncoming()
            return _Anchor(tuple(e for e in edges if e.allows("passenger")), junction)
        edge = self._edge_at(self._xy[node], heading)
        return _Anchor((edge,), None) if edge is not None else None

    def _path(self, e: int) -> list[Any] | None:
        g = self.g
        u, v = int(g.edge_u[e]), int(g.edge_v[e])
        length = float(g.edge_length_m[e])
        first, last = self._segment_bearings(e)
        a = self._anchor(u, first, start=True)
        b = self._anchor(v, last, start=False)
        if a is None or b is None:
            return None
        if a.junction is not None and a.junction is b.junction:
            return []  # both ends inside one joined junction
        if a.junction is None and b.junction is None and a.edges[0] is b.edges[0]:
            return [a.edges[0]]
        goal = set(b.edges)
        # SUMO's lengths stop at junction borders (a joined junction eats tens of metres), so
        # only a detour is refused: a path much longer than the router edge is another road.
        bound = 1.3 * length + 50.0
        heap: list[tuple[float, int, Any, tuple[Any, ...]]] = []
        tie = 0
        # Cost counts whole SUMO edges, except an anchor edge (an end of the router edge lies
        # somewhere along it): only the edges wholly between u and v are measured.
        for s in a.edges:
            heapq.heappush(heap, (float(s.getLength()) if a.junction else 0.0, tie, s, (s,)))
            tie += 1
        seen: set[str] = set()
        while heap:
            cost, _, edge, path = heapq.heappop(heap)
            if edge in goal:
                last = float(edge.getLength()) if b.junction is None else 0.0
                if cost - last <= bound:
                    return list(path)
                continue
            eid = edge.getID()
            if eid in seen or cost > bound:
                continue
            seen.add(eid)
            for nxt in edge.getOutgoing():
                if nxt.allows("passenger") and nxt.getID() not in seen:
                    heapq.heappush(heap, (cost + float(nxt.getLength()), tie, nxt, (*path, nxt)))
                    tie += 1
        return None

    def map_edges(self) -> None:
        g = self.g
        for e in range(g.edge_count):
            path = self._path(e)
            self.edge_paths.append(path)
            key = edge_key(int(g.node_osmid[g.edge_u[e]]), int(g.node_osmid[g.edge_v[e]]))
            self.choices.setdefault(key, []).append(
                EdgeChoice(
                    length_m=round(float(g.edge_length_m[e]), 2),
                    sumo_edges=None if path is None else [x.getID() for x in path],
                )
            )

    # -- signals -----------------------------------------------------------------------------

    def _near(self, junction: Any, xy: np.ndarray) -> bool:
        x, y = junction.getCoord()[:2]
        return math.hypot(x - xy[0], y - xy[1]) <= SIGNAL_REACH_M

    def _movement(self, node: int, e_in: int, e_out: int) -> Movement:
        g = self.g
        _, in_b = self._segment_bearings(e_in)
        out_b, _ = self._segment_bearings(e_out)
        base: dict[str, Any] = {
            "in_bearing_deg": round(in_b, 3),
            "out_bearing_deg": round(out_b, 3),
            "inbound": approach_label(in_b, inbound=True),
            "outbound": approach_label(out_b, inbound=False),
            "from_osmid": int(g.node_osmid[g.edge_u[e_in]]),
            "to_osmid": int(g.node_osmid[g.edge_v[e_out]]),
        }
        p_in, p_out = self.edge_paths[e_in], self.edge_paths[e_out]
        if p_in is None or p_out is None:
            return Movement(**base, reason="a router edge of this movement has no SUMO edges")
        seq: list[Any] = []
        for edge in [*p_in, *p_out]:
            if not seq or seq[-1] is not edge:
                seq.append(edge)
        xy = self._xy[node]
        own = self.junction_of.get(int(g.node_osmid[node]))
        own_light = self.tls_of_junction.get(str(own.getID())) if own is not None else None
        own_tls = own_light is not None
        if not p_in and own_light is not None:
            return Movement(**base, tls_id=own_light, scope="inside")
        # The controlled connection of this very movement: at the node's own light, or at
        # the light the node's signal was moved to (within reach, along the movement).
        for here, there in itertools.pairwise(seq):
            junction = here.getToNode()
            if (own_tls and junction is not own) or not self._near(junction, xy):
                continue
            conns = [c for c in here.getConnections(there) if c.getTLSID()]
            if conns:
                return Movement(
                    **base,
                    tls_id=str(conns[0].getTLSID()),
                    links=sorted({int(c.getTLLinkIndex()) for c in conns}),
                    scope="turn",
                )
        # The turn is made past the signal node: the approach's through links at the light
        # the movement leads into.
        last = seq[-1] if seq else None
        if last is not None and self._near(last.getToNode(), xy):
            out = [c for conns in last.getOutgoing().values() for c in conns if c.getTLSID()]
            through = [c for c in out if c.getDirection() == "s"] or out
            if through:
                return Movement(
                    **base,
                    tls_id=str(through[0].getTLSID()),
                    links=sorted({int(c.getTLLinkIndex()) for c in through}),
                    scope="approach",
                )
        if own is not None and not own_tls:
            why = f"SUMO junction {own.getID()} is {own.getType()}, not a traffic light"
        else:
            why = f"no SUMO traffic light within {SIGNAL_REACH_M:.0f} m along this movement"
        return Movement(**base, reason=why)

    def map_signals(self) -> list[SignalMap]:
        g = self.g
        ins: dict[int, list[int]] = {}
        outs: dict[int, list[int]] = {}
        for e in range(g.edge_count):
            ins.setdefault(int(g.edge_v[e]), []).append(e)
            outs.setdefault(int(g.edge_u[e]), []).append(e)
        out: list[SignalMap] = []
        for node in np.flatnonzero(g.node_signal).tolist():
            osmid = int(g.node_osmid[node])
            own = self.junction_of.get(osmid)
            moves = [
                self._movement(node, a, b)
                for a in ins.get(node, [])
                for b in outs.get(node, [])
                if g.edge_u[a] != g.edge_v[b]  # U-turns: no request ever asks for one
            ]
            done = [m for m in moves if m.mapped]
            if moves and len(done) == len(moves):
                status, reason = MapStatus.MAPPED, ""
            elif done:
                missing = Counter(m.reason for m in moves if not m.mapped).most_common(1)[0][0]
                status, reason = MapStatus.PARTIAL, missing
            else:
                status = MapStatus.UNMAPPED
                reason = (
                    Counter(m.reason for m in moves).most_common(1)[0][0]
                    if moves
                    else "no movement through the node (only U-turns)"
                )
            tls = Counter(m.tls_id for m in done).most_common(1)[0][0] if done else None
            out.append(
                SignalMap(
                    intersection_id=osmid,
                    lat=round(float(g.node_lat[node]), 7),
                    lon=round(float(g.node_lon[node]), 7),
                    status=status,
                    tls_id=tls,
                    junction_id=str(own.getID()) if own is not None else None,
                    movements=moves,
                    reason=reason,
                )
            )
        return out


def _reason_class(reason: str) -> str:
    # Group reasons that differ only by a junction id, for the summary.
    if reason.startswith("SUMO junction "):
        return "SUMO junction is not a traffic light"
    return reason


def map_network(
    graph: RoadGraph,
    net_file: Path,
    joined_file: Path,
    *,
    variant: str,
    netconvert_s: float,
) -> tuple[MappingSummary, list[SignalMap], list[str], dict[str, list[EdgeChoice]]]:
    """Map a router graph onto a built SUMO network (see the module docstring)."""
    import sumolib  # type: ignore[import-untyped,unused-ignore]

    started = time.perf_counter()
    try:
        net = sumolib.net.readNet(str(net_file), withInternal=False, withFoes=False)
    except Exception as exc:  # sumolib raises plain exceptions of the XML parser
        raise BuildError(f"cannot read {net_file}: {exc}") from exc
    mapper = _Mapper(graph, net, _joined_sets(joined_file))
    mapper.map_edges()
    signals = mapper.map_signals()
    all_tls = {str(t.getID()) for t in net.getTrafficLights()}
    served = {m.tls_id for s in signals for m in s.movements if m.tls_id}
    orphans = sorted(all_tls - served)
    flat = [c for cs in mapper.choices.values() for c in cs]
    summary = MappingSummary(
        variant=variant,
        router_nodes=graph.node_count,
        router_edges=graph.edge_count,
        router_signals=graph.signal_count,
        sumo_edges=len(mapper.drivable),
        sumo_junctions=len(net.getNodes()),
        sumo_tls=len(all_tls),
        signals_mapped=sum(s.status is MapStatus.MAPPED for s in signals),
        signals_partial=sum(s.status is MapStatus.PARTIAL for s in signals),
        signals_unmapped=sum(s.status is MapStatus.UNMAPPED for s in signals),
        unmapped_reasons=dict(
            Counter(
                _reason_class(s.reason) for s in signals if s.status is MapStatus.UNMAPPED
            ).most_common()
        ),
        tls_serving_router_signals=len(served & all_tls),
        tls_without_router_signal=len(orphans),
        edges_mapped=sum(bool(c.sumo_edges) for c in flat),
        edges_inside_junction=sum(c.sumo_edges == [] for c in flat),
        edges_unmapped=sum(c.sumo_edges is None for c in flat),
        netconvert_s=round(netconvert_s, 3),
        mapping_s=round(time.perf_counter() - started, 3),
    )
    return summary, signals, orphans, mapper.choices


# ----------------------------------------------------------------------------------- the network


class SumoNetwork:
    """A built network: its files and the mapping (load with :func:`build_network`)."""

    def __init__(self, folder: Path, mapping: NetworkMapping) -> None:
        self.folder = folder
        self.mapping = mapping
        self.signals: dict[int, SignalMap] = {s.intersection_id: s for s in mapping.signals}

    @property
    def net_file(self) -> Path:
        """The SUMO network (``-n`` of sumo)."""
        return self.folder / "net.net.xml"

    @property
    def summary(self) -> MappingSummary:
        return self.mapping.summary

    def signal(self, intersection_id: int) -> SignalMap | None:
        """The map of one router signal node (None: not a signal of the router graph)."""
        return self.signals.get(intersection_id)

    def tls_of(self, intersection_ids: Iterable[int]) -> dict[int, str]:
        """intersection id -> SUMO tls id, for the mapped ones."""
        out: dict[int, str] = {}
        for iid in intersection_ids:
            s = self.signals.get(iid)
            if s is not None and s.tls_id is not None:
                out[iid] = s.tls_id
        return out

    def route_edges(self, route: Route) -> list[str]:
        """The SUMO edges that drive a router route, in order.

        Raises:
            KeyError: a router edge of the route has no SUMO counterpart.
        """
        out: list[str] = []
        for edge in route.edges:
            choices = self.mapping.edges.get(edge_key(edge.u, edge.v))
            if not choices:
                raise KeyError(f"router edge {edge.u}->{edge.v} is not in the mapping")
            choice = min(choices, key=lambda c: abs(c.length_m - edge.length_m))
            if choice.sumo_edges is None:
                raise KeyError(f"router edge {edge.u}->{edge.v} has no SUMO edges")
            for sid in choice.sumo_edges:
                if not out or out[-1] != sid:
                    out.append(sid)
        return out


def _cache_key(osm: Path, options: Sequence[str], graph: RoadGraph) -> str:
    stat = osm.stat()
    # The mapping is of one router graph: its nodes, signals and edges fingerprint it.
    shape = hashlib.sha256()
    for arr in (graph.node_osmid, graph.node_signal, graph.edge_u, graph.edge_v):
        shape.update(np.ascontiguousarray(arr).tobytes())
    text = "|".join(
        [
            str(FORMAT_VERSION),
            str(osm.resolve()),
            str(stat.st_size),
            str(stat.st_mtime_ns),
            sumo_version(),
            shape.hexdigest(),
            *options,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def build_network(
    osm: Path,
    out: Path,
    *,
    variant: Variant = Variant.JOINED,
    graph: RoadGraph | None = None,
    force: bool = False,
    progress: Progress = _quiet,
) -> SumoNetwork:
    """Build (or load from ``out``) the SUMO network of an OSM extract and its mapping.

    Args:
        osm: the extract the router uses (``.osm`` or ``.osm.pbf``).
        out: folder for the files; a build with the same inputs there is reused.
        variant: netconvert option set (:data:`JOINED_OPTIONS` by default).
        graph: the router's graph of ``osm``; built (and cached in ``out/graphs``) if absent.
        force: rebuild even when the cache matches.
        progress: called with a label before each step.

    Raises:
        FileNotFoundError: ``osm`` does not exist.
        BuildError: netconvert failed.
        routing.GraphBuildError: the extract has no drivable road.
    """
    if not osm.is_file():
        raise FileNotFoundError(f"no such OSM file: {osm}")
    options = VARIANT_OPTIONS[variant]
    out.mkdir(parents=True, exist_ok=True)
    if graph is None:
        progress("loading the router graph")
        graph = Router.from_file(osm, cache_dir=out / "graphs").graph
    key = _cache_key(osm, options, graph)
    manifest = out / "manifest.json"
    mapping_file = out / "mapping.json"
    if not force and manifest.is_file() and mapping_file.is_file():
        try:
            if json.loads(manifest.read_text()).get("key") == key:
                mapping = NetworkMapping.model_validate_json(mapping_file.read_bytes())
                return SumoNetwork(out, mapping)
        except (ValueError, OSError):
            pass  # a broken cache is rebuilt
    progress("keeping the drivable roads")
    drive = out / "drive.osm"
    write_drivable_osm(osm, drive)
    progress("netconvert")
    net_file, joined_file = out / "net.net.xml", out / "joined.xml"
    joined_file.unlink(missing_ok=True)
    netconvert_s = run_netconvert(drive, net_file, joined_file, options)
    progress("mapping signals and edges")
    summary, signals, orphans, edges = map_network(
        graph, net_file, joined_file, variant=variant.value, netconvert_s=netconvert_s
    )
    mapping = NetworkMapping(
        source=str(osm.resolve()),
        sumo_version=sumo_version(),
        netconvert_options=list(options),
        built_at=datetime.now(UTC),
        summary=summary,
        signals=signals,
        tls_without_router_signal=orphans,
        edges=edges,
    )
    mapping_file.write_text(mapping.model_dump_json())
    manifest.write_text(json.dumps({"key": key, "source": str(osm.resolve())}))
    return SumoNetwork(out, mapping)
