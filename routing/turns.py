"""The turn graph: road edges as states, permitted turns as arcs, each turn with its cost.

A *state* ``e`` means "has driven road edge ``e`` to its head node". An arc ``a -> b`` joins
two edges meeting at a node (``edge_v[a] == edge_u[b]``) when the turn is allowed, and costs
``turn_s(a, b) + edge_time_s[b]``: the turn, the node delay at ``b``'s tail, and driving ``b``.
Searching states instead of nodes (an edge-based graph, as OSRM and GraphHopper do) is what
lets a turn's cost depend on where the vehicle came from, and a restriction forbid one turn
without closing the junction.

Turn classes at junctions (3+ streets), by the angle between the inbound edge's last segment
and the outbound edge's first: within 30 degrees of straight ahead costs nothing, right turns
``right_turn_s``, left turns (across oncoming traffic: China drives on the right)
``left_turn_s``. Turning back onto the edge just driven (to its own tail, within 30 degrees of
reversing) is a U-turn, ``u_turn_s``, allowed wherever no restriction forbids it. Turns at nodes
that are not junctions (a road's bend, a mid-block signal) cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import numpy.typing as npt

from .graph import RESTRICTION_KINDS, FloatArray, Int32Array, IntArray, RoadGraph
from .profile import SpeedProfile

STRAIGHT_WITHIN_DEG = 30.0
U_TURN_WITHIN_DEG = 30.0


class TurnClass:
    """Codes of :attr:`TurnGraph.arc_class`."""

    STRAIGHT = 0
    RIGHT = 1
    LEFT = 2
    U_TURN = 3


@dataclass(frozen=True, slots=True, eq=False)
class TurnGraph:
    """Permitted turns as a CSR over states (one state per road edge).

    Attributes:
        state_count: number of states (= the road graph's edge count).
        arc_offsets: ``int64[S+1]``; the arcs leaving state ``a`` are
            ``arc_offsets[a]:arc_offsets[a+1]``, sorted by target state.
        arc_to: ``int32[A]`` target state of each arc.
        arc_weight_s: ``float64[A]`` turn cost plus the target edge's time.
        arc_turn_s: ``float64[A]`` the turn-cost part (restriction waiver included).
        arc_length_m: ``float64[A]`` the target edge's length.
        arc_class: ``int8[A]`` :class:`TurnClass` code.
        banned: number of turns a restriction removed.
        waived: number of restricted turns the profile allowed at a cost.
    """

    state_count: int
    arc_offsets: IntArray
    arc_to: Int32Array
    arc_weight_s: FloatArray
    arc_turn_s: FloatArray
    arc_length_m: FloatArray
    arc_class: npt.NDArray[np.int8]
    banned: int
    waived: int

    @property
    def arc_count(self) -> int:
        """Number of permitted turns."""
        return int(self.arc_to.shape[0])

    def arc_sources(self) -> Int32Array:
        """``int32[A]`` the source state of each arc."""
        out: Int32Array = np.repeat(
            np.arange(self.state_count, dtype=np.int32), np.diff(self.arc_offsets)
        )
        return out

    def find_arcs(self, sources: npt.ArrayLike, targets: npt.ArrayLike) -> IntArray:
        """Arc index of each turn ``sources[i] -> targets[i]``, -1 where it is not permitted."""
        src = np.ascontiguousarray(sources, dtype=np.int64)
        dst = np.ascontiguousarray(targets, dtype=np.int64)
        out: IntArray = _find_arcs(self.arc_offsets, self.arc_to, src, dst)
        return out


@numba.njit(cache=True, nogil=True)  # type: ignore[misc,unused-ignore]
def _find_arcs(offsets: Any, arc_to: Any, src: Any, dst: Any) -> Any:
    # A state has a handful of turns: scanning its slice beats bisecting the whole arc list
    # (a route's 500 lookups: 0.27 -> 0.01 ms on the 1M-node region, where the bisection's
    # reads miss the cache).
    out = np.full(src.shape[0], -1, dtype=np.int64)
    for i in range(src.shape[0]):
        for k in range(offsets[src[i]], offsets[src[i] + 1]):
            if arc_to[k] == dst[i]:
                out[i] = k
                break
    return out


def edge_end_bearings(graph: RoadGraph) -> tuple[FloatArray, FloatArray]:
    """Compass bearing of each edge's first segment and of its last segment, degrees."""
    lo = graph.geom_offsets[:-1]
    hi = graph.geom_offsets[1:]
    lat, lon = graph.geom_lat, graph.geom_lon
    first = _bearings(lat[lo], lon[lo], lat[lo + 1], lon[lo + 1])
    last = _bearings(lat[hi - 2], lon[hi - 2], lat[hi - 1], lon[hi - 1])
    return first, last


def _bearings(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    rlat1, rlat2 = np.radians(lat1), np.radians(lat2)
    dlon = np.radians(lon2 - lon1)
    x = np.sin(dlon) * np.cos(rlat2)
    y = np.cos(rlat1) * np.sin(rlat2) - np.sin(rlat1) * np.cos(rlat2) * np.cos(dlon)
    out: FloatArray = np.degrees(np.arctan2(x, y)) % 360.0
    return out


def build_turn_graph(graph: RoadGraph, profile: SpeedProfile, edge_time_s: FloatArray) -> TurnGraph:
    """Every permitted turn of ``graph`` with its cost under ``profile``.

    Args:
        graph: the compiled road graph (its ``turn_ban_*`` arrays are the restrictions).
        profile: turn costs and which restriction kinds it waives.
        edge_time_s: each edge's travel time (``profile.edge_times_s(graph)``).

    Returns:
        The turn graph.
    """
    e = graph.edge_count
    tail = graph.edge_u.astype(np.int64)
    head = graph.edge_v.astype(np.int64)
    order = np.argsort(tail, kind="stable")
    out_count = np.bincount(tail, minlength=graph.node_count)
    out_start = np.concatenate([[0], np.cumsum(out_count)])
    per_state = out_count[head]
    src = np.repeat(np.arange(e, dtype=np.int64), per_state)
    local = np.arange(src.shape[0], dtype=np.int64) - np.repeat(
        np.cumsum(per_state) - per_state, per_state
    )
    dst = order[out_start[head[src]] + local]

    first_b, last_b = edge_end_bearings(graph)
    # Signed turn angle, degrees: positive to the right (clockwise), +-180 reversing.
    angle = (first_b[dst] - last_b[src] + 540.0) % 360.0 - 180.0
    junction = graph.node_streets[head[src]] >= 3
    u_turn = (head[dst] == tail[src]) & (np.abs(angle) >= 180.0 - U_TURN_WITHIN_DEG)
    cls = np.full(src.shape[0], TurnClass.STRAIGHT, dtype=np.int8)
    cls[junction & (angle >= STRAIGHT_WITHIN_DEG)] = TurnClass.RIGHT
    cls[junction & (angle <= -STRAIGHT_WITHIN_DEG)] = TurnClass.LEFT
    cls[u_turn] = TurnClass.U_TURN
    turn = np.select(
        [cls == TurnClass.RIGHT, cls == TurnClass.LEFT, cls == TurnClass.U_TURN],
        [profile.right_turn_s, profile.left_turn_s, profile.u_turn_s],
        0.0,
    ).astype(np.float64)

    keep = np.ones(src.shape[0], dtype=np.bool_)
    banned = waived = 0
    if graph.turn_ban_from.shape[0]:
        keys = src * e + dst
        ban_keys = graph.turn_ban_from.astype(np.int64) * e + graph.turn_ban_to.astype(np.int64)
        waivable = np.isin(
            graph.turn_ban_kind,
            [RESTRICTION_KINDS.index(kind) for kind in profile.waived_restrictions],
        )
        hit_ban = np.isin(keys, ban_keys[~waivable])
        hit_waived = np.isin(keys, ban_keys[waivable]) & ~hit_ban
        keep &= ~hit_ban
        turn[hit_waived] += profile.waived_restriction_s
        banned, waived = int(hit_ban.sum()), int(hit_waived.sum())
    src, dst, turn, cls = src[keep], dst[keep], turn[keep], cls[keep]
    # Sorted by (source, target) so find_arcs can bisect each state's slice.
    order2 = np.lexsort((dst, src))
    src, dst, turn, cls = src[order2], dst[order2], turn[order2], cls[order2]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=e))]).astype(np.int64)
    return TurnGraph(
        state_count=e,
        arc_offsets=offsets,
        arc_to=dst.astype(np.int32),
        arc_weight_s=turn + edge_time_s[dst],
        arc_turn_s=turn,
        arc_length_m=graph.edge_length_m[dst].astype(np.float64),
        arc_class=cls,
        banned=banned,
        waived=waived,
    )
