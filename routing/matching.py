"""Map matching of GPS fixes: a hidden-Markov matcher over the router's own turn graph.

Newson & Krumm (2009): the hidden states are the road positions near each fix (each snapped
segment, in each direction it may be driven); a position's emission probability falls with
its distance from the fix (Gaussian, ``sigma_m``) and, when the fix has a heading, with the
angle between heading and road; a transition's falls with the difference between the distance
driven along the roads (the turn graph, so one-ways and banned turns count) and the straight
distance between the fixes (exponential, ``beta_m``). Viterbi keeps the likeliest sequence, so a
fix that strays nearer a parallel road does not jump onto it unless the vehicle could have got
there.

:class:`Matcher` is the online form, one per vehicle, fed fix by fix (what a live ETA needs);
:meth:`Matcher.match` matches a whole trace and back-tracks for the best path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import _ch
from .graph import haversine_m
from .router import Router
from .snapping import HEADING_TOLERANCE_DEG, Projection

DEFAULT_SIGMA_M = 10.0
DEFAULT_BETA_M = 10.0
DEFAULT_RADIUS_M = 50.0
MAX_CANDIDATES = 8
# Driving back along the same edge by less than this is GPS jitter, not a manoeuvre.
BACKTRACK_TOLERANCE_M = 15.0
_HEADING_SIGMA_DEG = 45.0


@dataclass(frozen=True, slots=True)
class GpsFix:
    """One position report: where, and (if moving) the course over ground."""

    lat: float
    lon: float
    heading_deg: float | None = None


class MatchedPoint(BaseModel):
    """Where a fix was matched on the road network."""

    model_config = ConfigDict(frozen=True)

    asked_lat: float
    asked_lon: float
    lat: float = Field(description="the matched position on the road")
    lon: float
    distance_m: float = Field(description="from the fix to the matched position")
    edge_u: int = Field(description="OSM id of the matched edge's tail (direction of travel)")
    edge_v: int = Field(description="OSM id of the matched edge's head")
    fraction: float = Field(description="position along that edge, 0 at its tail")
    bearing_deg: float = Field(description="direction of travel on the road")
    route_distance_m: float | None = Field(
        default=None, description="metres driven along roads since the previous fix"
    )
    restarted: bool = Field(
        default=False, description="no road path joins this fix to the last: matching restarted"
    )


@dataclass(slots=True)
class _Candidate:
    proj: Projection
    emission: float


class Matcher:
    """An online map matcher for one vehicle (not thread-safe: one per vehicle).

    Args:
        router: the router whose graph and turn rules the vehicle drives on.
        sigma_m: GPS error scale (Newson-Krumm's sigma_z).
        beta_m: tolerance for road distance exceeding straight distance between fixes.
        radius_m: roads farther than this from a fix are not candidates.
    """

    def __init__(
        self,
        router: Router,
        *,
        sigma_m: float = DEFAULT_SIGMA_M,
        beta_m: float = DEFAULT_BETA_M,
        radius_m: float = DEFAULT_RADIUS_M,
    ) -> None:
        self.router = router
        self.sigma_m = sigma_m
        self.beta_m = beta_m
        self.radius_m = radius_m
        self._last: list[_Candidate] = []
        self._scores = np.zeros(0)
        self._last_fix: GpsFix | None = None
        self._turns = router.turns

    def _candidates(self, fix: GpsFix) -> list[_Candidate]:
        index = self.router._index
        p = index.project(fix.lat, fix.lon)
        segs, dist, t = index.candidates(p, extra_m=self.radius_m)
        out: list[_Candidate] = []
        for seg, d, tt in zip(segs.tolist(), dist.tolist(), t.tolist(), strict=True):
            if d > max(self.radius_m, float(dist[0])) or len(out) >= 2 * MAX_CANDIDATES:
                break
            base = int(index.seg_edge[seg])
            directions = [base] + ([int(index.twin[base])] if index.twin[base] >= 0 else [])
            for edge in directions:
                proj = index._projection(seg, tt, d, edge, heading_used=fix.heading_deg is not None)
                emission = -0.5 * (d / self.sigma_m) ** 2
                if fix.heading_deg is not None:
                    off = abs((proj.bearing_deg - fix.heading_deg + 180.0) % 360.0 - 180.0)
                    if off > 180.0 - HEADING_TOLERANCE_DEG:
                        continue  # driving the other way
                    emission += -0.5 * (off / _HEADING_SIGMA_DEG) ** 2
                out.append(_Candidate(proj, emission))
        out.sort(key=lambda c: -c.emission)
        return out[:MAX_CANDIDATES]

    def _road_distances(
        self, start: Projection, ends: list[Projection], bound_m: float
    ) -> list[float]:
        """Metres along the turn graph from ``start`` to each end (inf beyond ``bound_m``)."""
        g = self.router.graph
        length = g.edge_length_m
        out = [math.inf] * len(ends)
        need_search = False
        for k, end in enumerate(ends):
            if end.edge == start.edge:
                ahead = (end.fraction - start.fraction) * length[start.edge]
                if ahead >= -BACKTRACK_TOLERANCE_M:
                    out[k] = abs(ahead)
                    continue
            need_search = True
        if not need_search:
            return out
        t = self._turns
        rest = (1.0 - start.fraction) * length[start.edge]
        cost, _, _ = _ch.dijkstra(
            t.arc_offsets, t.arc_to, t.arc_length_m, t.arc_length_m,
            np.array([start.edge]), np.array([rest]), np.array([rest]),
            t.state_count, bound_m + float(length.max()), np.array([e.edge for e in ends]),
        )  # fmt: skip
        for k, end in enumerate(ends):
            if math.isfinite(out[k]):
                continue
            via = float(cost[end.edge]) - (1.0 - end.fraction) * length[end.edge]
            if math.isfinite(via) and via <= bound_m:
                out[k] = max(via, 0.0)
        return out

    def update(self, fix: GpsFix) -> MatchedPoint:
        """Match the next fix of this vehicle; returns where it most likely is now.

        Raises:
            OffGraphError: no road within ``radius_m`` (and ``max_snap_m``) of the fix.
        """
        point, _ = self._step(fix)
        return point

    def _step(self, fix: GpsFix) -> tuple[MatchedPoint, list[int]]:
        cands = self._candidates(fix)
        if not cands:
            # Off every road: the router's own error (with its distance) says why.
            self.router.snap((fix.lat, fix.lon))
            cands = self._candidates(GpsFix(fix.lat, fix.lon))
        emission = np.array([c.emission for c in cands])
        back = [-1] * len(cands)
        restarted = False
        driven: list[float | None] = [None] * len(cands)
        if self._last and self._last_fix is not None:
            straight = float(haversine_m(self._last_fix.lat, self._last_fix.lon, fix.lat, fix.lon))
            bound = 2.0 * straight + 4.0 * self.radius_m
            scores = np.full(len(cands), -np.inf)
            ends = [c.proj for c in cands]
            for i, prev in enumerate(self._last):
                if not np.isfinite(self._scores[i]):
                    continue
                road = self._road_distances(prev.proj, ends, bound)
                for j, r in enumerate(road):
                    if not math.isfinite(r):
                        continue
                    s = self._scores[i] - abs(r - straight) / self.beta_m + emission[j]
                    if s > scores[j]:
                        scores[j], back[j], driven[j] = s, i, r
            if not np.isfinite(scores).any():
                restarted = True
                scores = emission.copy()
        else:
            scores = emission.copy()
        # Keep scores from drifting to -inf over long traces.
        scores = scores - float(np.max(scores))
        best = int(np.argmax(scores))
        self._last, self._scores, self._last_fix = cands, scores, fix
        proj = cands[best].proj
        router = self.router
        g = router.graph
        lat, lon = router._index.unproject(proj.x_m, proj.y_m)
        point = MatchedPoint(
            asked_lat=fix.lat,
            asked_lon=fix.lon,
            lat=lat,
            lon=lon,
            distance_m=proj.distance_m,
            edge_u=int(g.node_osmid[g.edge_u[proj.edge]]),
            edge_v=int(g.node_osmid[g.edge_v[proj.edge]]),
            fraction=proj.fraction,
            bearing_deg=proj.bearing_deg,
            route_distance_m=driven[best],
            restarted=restarted,
        )
        self._points = [self._point_of(c, fix) for c in cands]
        self._driven = driven
        return point, back

    def _point_of(self, cand: _Candidate, fix: GpsFix) -> MatchedPoint:
        g = self.router.graph
        proj = cand.proj
        lat, lon = self.router._index.unproject(proj.x_m, proj.y_m)
        return MatchedPoint(
            asked_lat=fix.lat,
            asked_lon=fix.lon,
            lat=lat,
            lon=lon,
            distance_m=proj.distance_m,
            edge_u=int(g.node_osmid[g.edge_u[proj.edge]]),
            edge_v=int(g.node_osmid[g.edge_v[proj.edge]]),
            fraction=proj.fraction,
            bearing_deg=proj.bearing_deg,
        )

    def match(self, trace: Sequence[GpsFix]) -> list[MatchedPoint]:
        """Match a whole trace (Viterbi with back-tracking: later fixes can correct earlier
        ones). Resets the matcher first and leaves it positioned at the trace's last fix."""
        self._last, self._scores, self._last_fix = [], np.zeros(0), None
        layers: list[list[MatchedPoint]] = []
        backs: list[list[int]] = []
        drives: list[list[float | None]] = []
        restarts: list[bool] = []
        scores: list[np.ndarray] = []
        for fix in trace:
            point, back = self._step(fix)
            scores.append(self._scores)
            layers.append(self._points)
            backs.append(back)
            drives.append(self._driven)
            restarts.append(point.restarted)
        if not layers:
            return []
        out: list[MatchedPoint] = []
        j = int(np.argmax(self._scores))
        for k in range(len(layers) - 1, -1, -1):
            out.append(
                layers[k][j].model_copy(
                    update={"route_distance_m": drives[k][j], "restarted": restarts[k]}
                )
            )
            prev = backs[k][j]
            if prev < 0 and k > 0:
                # A restart: the part before it is matched on its own best.
                prev = int(np.argmax(scores[k - 1]))
            j = prev
        out.reverse()
        return out
