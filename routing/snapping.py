"""Snapping points onto road segments (OSRM's phantom nodes), with an optional heading.

A :class:`SegmentIndex` holds every polyline segment of the graph once (a two-way road's two
directed edges share their geometry, so one of them stands for both), a KD-tree over points
sampled along the segments at most :data:`SAMPLE_SPACING_M` apart, and answers "nearest
segment" exactly: the tree proposes candidates, an exact projection onto each decides, and a
wider ball search runs whenever a closer segment could still hide behind the samples.

With a heading (a moving vehicle's course over ground), only directions of travel within
:data:`HEADING_TOLERANCE_DEG` of it are candidates, so a fix on a dual carriageway lands on the
vehicle's own side even when GPS puts it nearer the other one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree  # type: ignore[import-untyped,unused-ignore]

from .graph import FloatArray, IntArray, RoadGraph

SAMPLE_SPACING_M = 25.0
# Candidates the tree proposes per point before the exactness check.
_K = 12
HEADING_TOLERANCE_DEG = 60.0
# How much farther than the nearest road a road in the vehicle's direction may be and still win.
HEADING_SEARCH_M = 60.0
_EARTH_RADIUS_M = 6_371_008.8
_TIE_DECIMALS = 6  # distances equal to the micrometre are ties


@dataclass(frozen=True, slots=True)
class Projection:
    """A point projected onto a directed edge.

    Attributes:
        edge: the edge the point lies on, in the direction of travel when a heading chose it.
        twin: the reverse edge over the same geometry (-1 for a one-way road).
        fraction: position along ``edge`` as a share of its length, 0 at its tail.
        distance_m: from the asked point to the projection.
        x_m, y_m: the projection in the index's local metres.
        bearing_deg: compass direction of ``edge`` at the projection.
        heading_used: True when a heading chose the direction (the twin is then only reachable
            by turning round).
    """

    edge: int
    twin: int
    fraction: float
    distance_m: float
    x_m: float
    y_m: float
    bearing_deg: float
    heading_used: bool


class SegmentIndex:
    """Nearest-segment queries over one graph (read-only after construction, thread-safe).

    Args:
        graph: the compiled graph.
    """

    def __init__(self, graph: RoadGraph) -> None:
        self.graph = graph
        self.lat0 = float(np.mean(graph.node_lat))
        self.lon0 = float(np.mean(graph.node_lon))
        self.cos0 = math.cos(math.radians(self.lat0))
        self.twin: IntArray = find_twins(graph)
        g = graph
        xy = self.project(g.geom_lat, g.geom_lon)
        counts = np.diff(g.geom_offsets)
        vertex_edge = np.repeat(np.arange(g.edge_count, dtype=np.int64), counts)
        seg = np.flatnonzero(vertex_edge[:-1] == vertex_edge[1:])  # segment k joins k and k+1
        seg_edge = vertex_edge[seg]
        vec = xy[seg + 1] - xy[seg]
        seg_len = np.hypot(vec[:, 0], vec[:, 1])
        self.edge_polyline_m: FloatArray = np.bincount(  # type: ignore[assignment]
            seg_edge, weights=seg_len, minlength=g.edge_count
        )
        # Metres along its edge at which each segment starts.
        cum = np.cumsum(seg_len) - seg_len
        first = np.full(g.edge_count, 0, dtype=np.int64)
        first[seg_edge[::-1]] = np.arange(seg_edge.shape[0])[::-1]
        self.seg_along0: FloatArray = cum - cum[first[seg_edge]]
        self.edge_first_seg: IntArray = first
        self.seg_edge: IntArray = seg_edge
        self.seg_a: FloatArray = xy[seg]
        self.seg_vec: FloatArray = vec
        self.seg_len2: FloatArray = np.maximum(seg_len**2, 1e-12)
        # One of each twin pair is indexed; a query reports it and its twin.
        indexed = (self.twin < 0) | (np.arange(g.edge_count) < self.twin)
        use = np.flatnonzero(indexed[seg_edge])
        pieces = np.maximum(np.ceil(seg_len[use] / SAMPLE_SPACING_M), 1).astype(np.int64)
        sample_seg = np.repeat(use, pieces)
        start = np.cumsum(pieces) - pieces
        step = (np.arange(sample_seg.shape[0]) - np.repeat(start, pieces)) / np.repeat(
            pieces, pieces
        )
        samples = self.seg_a[sample_seg] + self.seg_vec[sample_seg] * step[:, None]
        # The end of each indexed edge's last segment (a dead end's tip) is a sample too.
        last = np.flatnonzero(np.diff(np.concatenate([seg_edge[use], [-1]])) != 0)
        tips = self.seg_a[use[last]] + self.seg_vec[use[last]]
        self._sample_seg: IntArray = np.concatenate([sample_seg, use[last]])
        self._tree = cKDTree(
            np.concatenate([samples, tips]), balanced_tree=False, compact_nodes=False
        )
        # Bearing of each segment, degrees (x east, y north).
        self.seg_bearing: FloatArray = np.degrees(np.arctan2(vec[:, 0], vec[:, 1])) % 360.0

    @property
    def sample_count(self) -> int:
        """Points in the KD-tree."""
        return int(self._sample_seg.shape[0])

    def project(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
        """``(lat, lon)`` to local metres (equirectangular about the graph's centre)."""
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        x = np.radians(lon_a - self.lon0) * self.cos0 * _EARTH_RADIUS_M
        y = np.radians(lat_a - self.lat0) * _EARTH_RADIUS_M
        out: FloatArray = np.stack([x, y], axis=-1)
        return out

    def unproject(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Local metres back to ``(lat, lon)``."""
        lat = self.lat0 + math.degrees(y_m / _EARTH_RADIUS_M)
        lon = self.lon0 + math.degrees(x_m / (_EARTH_RADIUS_M * self.cos0))
        return lat, lon

    def _exact(self, p: FloatArray, segs: IntArray) -> tuple[FloatArray, FloatArray]:
        """Distance from ``p`` to each segment in ``segs`` and the clamped parameter ``t``."""
        a = self.seg_a[segs]
        ab = self.seg_vec[segs]
        t = np.clip(((p - a) * ab).sum(axis=1) / self.seg_len2[segs], 0.0, 1.0)
        foot = a + ab * t[:, None]
        dist: FloatArray = np.hypot(foot[:, 0] - p[0], foot[:, 1] - p[1])
        return dist, t

    def candidates(
        self, p: FloatArray, *, extra_m: float = 0.0
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        """Every indexed segment within ``extra_m`` of the nearest one to point ``p``.

        Returns:
            ``(segments, distances, t)`` sorted by distance (at least the nearest segment).
        """
        k = min(_K, self.sample_count)
        dist_s, idx = self._tree.query(p, k=k)
        segs = np.unique(self._sample_seg[np.atleast_1d(idx)])
        dist, t = self._exact(p, segs)
        best = float(dist.min())
        # A segment nearer than best + extra has a sample within that plus half a spacing.
        reach = best + extra_m + SAMPLE_SPACING_M / 2
        if float(np.max(np.atleast_1d(dist_s))) <= reach and k < self.sample_count:
            ball = self._tree.query_ball_point(p, r=reach)
            segs = np.unique(self._sample_seg[np.asarray(ball, dtype=np.int64)])
            dist, t = self._exact(p, segs)
            best = float(dist.min())
        keep = dist <= best + extra_m + 10.0**-_TIE_DECIMALS
        # Ties (a point on a node touches every edge there) go to the lowest segment id, as in
        # snap_many, so that route and travel_times start a point on the same edge.
        order = np.lexsort((segs[keep], np.round(dist[keep], _TIE_DECIMALS)))
        return segs[keep][order], dist[keep][order], t[keep][order]

    def snap(self, lat: float, lon: float, *, heading_deg: float | None = None) -> Projection:
        """Project a point onto the nearest segment (in the heading's direction, if given)."""
        if heading_deg is None:  # the vectorised path: the same answer in half the time
            return self.snap_many([lat], [lon])[0]
        p = self.project(lat, lon)
        segs, dist, t = self.candidates(p, extra_m=HEADING_SEARCH_M)
        for seg, d, tt in zip(segs.tolist(), dist.tolist(), t.tolist(), strict=True):
            edge = int(self.seg_edge[seg])
            along = _angle_diff(float(self.seg_bearing[seg]), heading_deg)
            if along <= HEADING_TOLERANCE_DEG:
                return self._projection(seg, tt, d, edge, heading_used=True)
            twin = int(self.twin[edge])
            if twin >= 0 and 180.0 - along <= HEADING_TOLERANCE_DEG:
                return self._projection(seg, tt, d, twin, heading_used=True)
        # No road within reach runs the vehicle's way: the nearest one, heading not honoured.
        seg0 = int(segs[0])
        return self._projection(
            seg0, float(t[0]), float(dist[0]), int(self.seg_edge[seg0]), heading_used=False
        )

    def _projection(
        self, seg: int, t: float, dist: float, edge: int, *, heading_used: bool
    ) -> Projection:
        base = int(self.seg_edge[seg])
        total = float(self.edge_polyline_m[base])
        along = float(self.seg_along0[seg]) + t * math.sqrt(float(self.seg_len2[seg]))
        fraction = min(max(along / total, 0.0), 1.0) if total > 0 else 0.0
        foot = self.seg_a[seg] + self.seg_vec[seg] * t
        bearing = float(self.seg_bearing[seg])
        if edge != base:  # the twin runs the geometry backwards
            fraction = 1.0 - fraction
            bearing = (bearing + 180.0) % 360.0
        return Projection(
            edge=edge,
            twin=int(self.twin[edge]),
            fraction=fraction,
            distance_m=dist,
            x_m=float(foot[0]),
            y_m=float(foot[1]),
            bearing_deg=bearing,
            heading_used=heading_used,
        )

    def snap_many(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> list[Projection]:
        """:meth:`snap` without heading for many points, the tree queried once for all."""
        pts = self.project(lat, lon).reshape(-1, 2)
        seg, t, dist = self._nearest_many(pts)
        return [
            self._projection(s, tt, d, int(self.seg_edge[s]), heading_used=False)
            for s, tt, d in zip(seg.tolist(), t.tolist(), dist.tolist(), strict=True)
        ]

    def snap_many_arrays(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
        """:meth:`snap_many` as arrays: ``(edge, twin, fraction, distance_m)`` per point.

        The same projections, without a Python object per point (a ranking snaps 50 units).
        """
        pts = self.project(lat, lon).reshape(-1, 2)
        seg, t, dist = self._nearest_many(pts)
        edge = self.seg_edge[seg]
        total = self.edge_polyline_m[edge]
        along = self.seg_along0[seg] + t * np.sqrt(self.seg_len2[seg])
        safe = np.where(total > 0, total, 1.0)
        fraction: FloatArray = np.where(total > 0, np.clip(along / safe, 0.0, 1.0), 0.0)
        return edge, self.twin[edge], fraction, dist

    def _nearest_many(self, pts: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
        """Nearest segment, its parameter and distance for each point (ties as in snap)."""
        if pts.shape[0] == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
        k = min(_K, self.sample_count)
        dist_s, idx = self._tree.query(pts, k=k)
        idx = np.asarray(idx).reshape(pts.shape[0], -1)
        dist_s = np.asarray(dist_s).reshape(pts.shape[0], -1)
        segs = self._sample_seg[idx]
        a = self.seg_a[segs]
        ab = self.seg_vec[segs]
        rel = pts[:, None, :] - a
        t = np.clip((rel * ab).sum(axis=2) / self.seg_len2[segs], 0.0, 1.0)
        foot = a + ab * t[:, :, None]
        dist = np.hypot(foot[:, :, 0] - pts[:, None, 0], foot[:, :, 1] - pts[:, None, 1])
        rounded = np.round(dist, _TIE_DECIMALS)
        tied = rounded == rounded.min(axis=1, keepdims=True)
        best = np.argmin(np.where(tied, segs, np.iinfo(np.int64).max), axis=1)
        rows = np.arange(pts.shape[0])
        out_seg: IntArray = segs[rows, best].astype(np.int64)
        out_t: FloatArray = t[rows, best]
        out_d: FloatArray = dist[rows, best]
        if k < self.sample_count:
            # A sample as far as the best segment's distance (plus half a spacing) leaves room
            # for a nearer segment the k samples missed: check those points exactly.
            for i in np.flatnonzero(dist_s.max(axis=1) <= out_d + SAMPLE_SPACING_M / 2).tolist():
                cs, cd, ct = self.candidates(pts[i])
                out_seg[i], out_t[i], out_d[i] = int(cs[0]), float(ct[0]), float(cd[0])
        return out_seg, out_t, out_d

    def cut(self, edge: int, start: float, end: float) -> tuple[FloatArray, FloatArray]:
        """``(lons, lats)`` of the part of ``edge`` between two fractions, ends included."""
        g = self.graph
        lo, hi = int(g.geom_offsets[edge]), int(g.geom_offsets[edge + 1])
        lons, lats = g.geom_lon[lo:hi], g.geom_lat[lo:hi]
        first = int(self.edge_first_seg[edge])
        total = float(self.edge_polyline_m[edge])
        along = np.concatenate([self.seg_along0[first : first + hi - lo - 1], [total]])
        da, db = start * total, end * total
        inner = (along > da) & (along < db)
        out_lon = np.concatenate(
            [[np.interp(da, along, lons)], lons[inner], [np.interp(db, along, lons)]]
        )
        out_lat = np.concatenate(
            [[np.interp(da, along, lats)], lats[inner], [np.interp(db, along, lats)]]
        )
        return out_lon, out_lat

    def nearest_distance_m(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
        """Distance from each point to the nearest road sample (cheap; within half a spacing)."""
        dist, _ = self._tree.query(self.project(lat, lon))
        out: FloatArray = np.asarray(dist, dtype=np.float64)
        return out


def _angle_diff(a: float, b: float) -> float:
    """Absolute difference of two compass angles, degrees in [0, 180]."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def find_twins(graph: RoadGraph) -> IntArray:
    """For each edge, the edge running the same geometry the other way (-1 if none)."""
    e = graph.edge_count
    twin = np.full(e, -1, dtype=np.int64)
    u = graph.edge_u.astype(np.int64)
    v = graph.edge_v.astype(np.int64)
    lo, hi = graph.geom_offsets[:-1], graph.geom_offsets[1:]
    # Key by the unordered pair; parallel roads between two nodes differ in their geometry.
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((u > v, b, a))
    sa, sb = a[order], b[order]
    same = (sa[1:] == sa[:-1]) & (sb[1:] == sb[:-1])
    k = np.flatnonzero(same)
    e1, e2 = order[k], order[k + 1]
    n1, n2 = hi[e1] - lo[e1], hi[e2] - lo[e2]
    # Same ends the other way, same vertex count, and e1's second vertex is e2's second last.
    ok = (u[e1] == v[e2]) & (v[e1] == u[e2]) & (n1 == n2)
    ok &= graph.geom_lon[lo[e1] + 1] == graph.geom_lon[hi[e2] - 2]
    ok &= graph.geom_lat[lo[e1] + 1] == graph.geom_lat[hi[e2] - 2]
    e1, e2 = e1[ok], e2[ok]
    twin[e1] = e2
    twin[e2] = e1
    # Three parallel copies can pair one edge twice: keep only mutual pairs.
    bad = (twin >= 0) & (twin[np.maximum(twin, 0)] != np.arange(e))
    twin[bad] = -1
    return twin
