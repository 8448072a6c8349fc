"""Fixed-time signal plans: two phases per signal node, made from the map (seeded).

The plan (:class:`SignalTiming`) is two-phase: the major axis (north-south or east-west, from the
busiest road at the node), its clearance (amber + all-red), the minor axis, its clearance.
Approach legs map onto axes (:func:`axis_for`): N and S legs share the NS green, E and W the EW
green. That is the same leg labelling the arbiter uses (``routing.greenwave.approach_label`` from
the request's inbound bearing), so two movements the arbiter lets share a green always share one
here too. :func:`make_timings` gives every signal node of a graph its plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routing import RoadGraph
from routing.greenwave import ApproachLabel

from ..clock import substream


class Axis(StrEnum):
    """The two greens of a two-phase intersection."""

    NS = "NS"
    EW = "EW"


def axis_for(label: ApproachLabel) -> Axis:
    """The axis whose green serves a vehicle entering by leg ``label``."""
    return Axis.NS if label in (ApproachLabel.N, ApproachLabel.S) else Axis.EW


def other_axis(axis: Axis) -> Axis:
    """The crossing axis."""
    return Axis.EW if axis is Axis.NS else Axis.NS


# Iterating the enum class is slow; the controller's per-second step iterates this instead.
# Iterating the enum class is slow; the controller's per-second step iterates this instead.
AXES: tuple[Axis, Axis] = (Axis.NS, Axis.EW)


class SignalTiming(BaseModel):
    """One intersection's fixed-time plan and its traffic (all times whole seconds).

    The cycle, from ``offset_s``: major green, major clearance, minor green, minor clearance.
    Flows are peak-hour arrival rates per approach axis, set below capacity so that each green
    clears the queue of the red before it (an undersaturated signal has a steady-state queue).
    """

    model_config = ConfigDict(frozen=True)

    intersection_id: int
    major_axis: Axis
    cycle_s: int = Field(ge=20)
    major_green_s: int = Field(ge=1)
    minor_green_s: int = Field(ge=1)
    amber_s: int = Field(default=3, ge=0)
    all_red_s: int = Field(default=2, ge=0)
    offset_s: int = Field(ge=0)
    min_green_s: int = Field(default=10, ge=1)
    headway_s: float = Field(default=2.0, gt=0, description="saturation headway per vehicle")
    startup_lost_s: float = Field(default=2.0, ge=0, description="first vehicle's reaction")
    major_flow_vps: float = Field(ge=0, description="peak arrival flow on the major axis, veh/s")
    minor_flow_vps: float = Field(ge=0, description="peak arrival flow on the minor axis, veh/s")

    @property
    def clearance_s(self) -> int:
        """Amber plus all-red."""
        return self.amber_s + self.all_red_s

    def green_s(self, axis: Axis) -> int:
        """Nominal green of an axis."""
        return self.major_green_s if axis is self.major_axis else self.minor_green_s

    def flow_vps(self, axis: Axis) -> float:
        """Peak arrival flow of an axis (veh/s)."""
        return self.major_flow_vps if axis is self.major_axis else self.minor_flow_vps

    def _green_span(self, axis: Axis) -> tuple[int, int]:
        """Start and end of the axis' green within the cycle."""
        if axis is self.major_axis:
            return 0, self.major_green_s
        start = self.major_green_s + self.clearance_s
        return start, start + self.minor_green_s

    def plan_at(self, t: float) -> tuple[Axis, bool, int, int]:
        """The planned phase at ``t``: ``(axis, in_clearance, start_s, end_s)``.

        ``axis`` is the axis green (or, in a clearance, the axis just losing its green).
        """
        base = self.offset_s + math.floor((t - self.offset_s) / self.cycle_s) * self.cycle_s
        tau = t - base
        minor = other_axis(self.major_axis)
        gm, clr = self.major_green_s, self.clearance_s
        bounds = [
            (self.major_axis, False, 0, gm),
            (self.major_axis, True, gm, gm + clr),
            (minor, False, gm + clr, gm + clr + self.minor_green_s),
            (minor, True, gm + clr + self.minor_green_s, self.cycle_s),
        ]
        for axis, clear, lo, hi in bounds:
            if tau < hi:
                return axis, clear, base + lo, base + hi
        return bounds[-1][0], True, base + bounds[-1][2], base + self.cycle_s  # float edge

    def next_green_end(self, axis: Axis, not_before: float) -> int:
        """The earliest planned end of an ``axis`` green at or after ``not_before``."""
        _, end = self._green_span(axis)
        k = math.ceil((not_before - self.offset_s - end) / self.cycle_s)
        return self.offset_s + end + k * self.cycle_s

    def queue_at(self, axis: Axis, t: float, flow_vps: float) -> float:
        """Steady-state fixed-time queue (vehicles) of an axis at ``t`` (fluid model)."""
        start, end = self._green_span(axis)
        red = self.cycle_s - (end - start)
        since_red = (t - self.offset_s - end) % self.cycle_s
        if since_red < red:
            return flow_vps * since_red
        into_green = since_red - red
        discharge = 1.0 / self.headway_s
        return max(0.0, flow_vps * red - (discharge - flow_vps) * into_green)

    def uniform_delay_per_cycle(self, axis: Axis, flow_vps: float) -> float:
        """Fixed-time delay of an approach per cycle (veh*s): ``q r^2 / (2 (1 - q/s))``.

        The integral of the fluid queue over one cycle (Webster's uniform-delay term times
        the vehicles of a cycle).
        """
        start, end = self._green_span(axis)
        red = self.cycle_s - (end - start)
        ratio = flow_vps * self.headway_s
        if ratio >= 1.0:
            return math.inf
        return flow_vps * red * red / (2.0 * (1.0 - ratio))


_CLASS_RANK: Mapping[str, int] = {
    "motorway": 7, "trunk": 6, "primary": 5, "secondary": 4, "tertiary": 3,
    "motorway_link": 3, "trunk_link": 3, "primary_link": 3, "secondary_link": 2,
    "tertiary_link": 2, "unclassified": 1, "residential": 1, "living_street": 0, "road": 1,
}  # fmt: skip


def _axis_of_bearing(bearing_deg: float) -> Axis:
    b = bearing_deg % 180.0
    return Axis.NS if b < 45.0 or b >= 135.0 else Axis.EW


def make_timings(graph: RoadGraph, *, seed: int) -> dict[int, SignalTiming]:
    """A seeded fixed-time plan for every signal node of a graph.

    Major axis: the direction of the highest-class road entering the node. Cycle 60-150 s
    (longer on bigger roads), major share of the green 50-70 %, minimum green 10 s, amber 3 s +
    all-red 2 s, random offsets (no corridor coordination: the no-green-wave baseline is what
    an emergency vehicle meets on uncoordinated signals). Flows give a degree of saturation of
    0.5-0.85 at the peak, so every approach clears its queue each cycle.

    Args:
        graph: the compiled graph.
        seed: drill seed (each node draws from its own stream: the plan of a node does not
            depend on which other nodes exist).

    Returns:
        OSM node id -> plan.
    """
    names = [str(n) for n in graph.highway_names]
    edge_rank = np.array([_CLASS_RANK.get(n, 1) for n in names], dtype=np.int64)[graph.edge_highway]
    # Bearing of each edge's last segment: the direction a vehicle enters its head node.
    hi = graph.geom_offsets[1:] - 1
    lat1, lon1 = np.radians(graph.geom_lat[hi - 1]), np.radians(graph.geom_lon[hi - 1])
    lat2, lon2 = np.radians(graph.geom_lat[hi]), np.radians(graph.geom_lon[hi])
    x = np.sin(lon2 - lon1) * np.cos(lat2)
    y = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    bearing = np.degrees(np.arctan2(x, y)) % 360.0
    signal_idx = np.flatnonzero(graph.node_signal)
    best: dict[int, tuple[int, float, float]] = {}
    for e in np.flatnonzero(graph.node_signal[graph.edge_v]).tolist():
        v = int(graph.edge_v[e])
        key = (int(edge_rank[e]), float(graph.edge_length_m[e]), float(bearing[e]))
        if v not in best or key[:2] > best[v][:2]:
            best[v] = key
    out: dict[int, SignalTiming] = {}
    for v in signal_idx.tolist():
        osmid = int(graph.node_osmid[v])
        rank, _, brg = best.get(v, (1, 0.0, 0.0))
        rng = substream(seed, "signal", osmid)
        lo = 60 + 12 * min(rank, 5)  # 60 s on small streets, up to 120 s on primary roads
        cycle = rng.randint(lo, min(150, lo + 30))
        clearance = 5
        effective = cycle - 2 * clearance
        share = rng.uniform(0.5, 0.7)
        major = max(15, round(effective * share))
        minor = effective - major
        if minor < 15:
            major, minor = effective - 15, 15
        headway = 2.0
        sat = 1.0 / headway
        x_major = rng.uniform(0.55, 0.85)
        x_minor = rng.uniform(0.5, 0.8)
        out[osmid] = SignalTiming(
            intersection_id=osmid,
            major_axis=_axis_of_bearing(brg),
            cycle_s=cycle,
            major_green_s=major,
            minor_green_s=minor,
            offset_s=rng.randrange(cycle),
            headway_s=headway,
            major_flow_vps=x_major * sat * major / cycle,
            minor_flow_vps=x_minor * sat * minor / cycle,
        )
    return out
