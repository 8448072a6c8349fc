"""Speed profiles: how long each edge takes for a kind of vehicle.

An emergency vehicle is faster than traffic (it may exceed the limit, use the opposite lane) and
loses less time at signals and junctions; normal traffic is the baseline. A node delay is paid
on the edge that *leaves* the node, so a signal's arrival time (the ETA we ask green for) does not
include its own delay.

Turns (see :mod:`routing.turns`): at a junction a left turn (across oncoming traffic: China
drives on the right) costs more than a right turn, going straight costs nothing, and a U-turn
costs most. Turn costs are paid on the leaving edge too, like node delays. Turn restrictions from
OSM are honoured unless the profile waives their kind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .graph import RESTRICTION_KINDS, FloatArray, RoadGraph

# Strictly positive edge times keep ETAs strictly increasing along a route and keep scipy from
# reading an explicit zero as "no edge".
MIN_EDGE_TIME_S = 0.01


@dataclass(frozen=True, slots=True)
class SpeedProfile:
    """Parameters turning edge lengths and speeds into travel times.

    Attributes:
        name: label kept in results.
        speed_factor: multiplies each edge's posted / default speed.
        max_speed_kph: cap after the factor (safety: no 130 km/h through a city).
        min_speed_kph: floor, for tiny default speeds on living streets.
        signal_delay_s: expected time lost crossing a signalised node.
        junction_delay_s: time lost crossing an unsignalised junction (3+ streets): yields.
        left_turn_s: extra time for a left turn at a junction (crossing oncoming traffic).
        right_turn_s: extra time for a right turn at a junction.
        u_turn_s: extra time for turning back onto the road just driven (at any node, or at
            the start of a route when the vehicle's heading says it faces the other way).
        waived_restrictions: OSM restriction kinds (``"no_left_turn"``, ``"only_straight_on"``,
            ...) this profile may break; the rest are never taken.
        waived_restriction_s: extra time for breaking a waived restriction (slowing, checking
            that cross traffic has stopped).
    """

    name: str
    speed_factor: float
    max_speed_kph: float
    min_speed_kph: float
    signal_delay_s: float
    junction_delay_s: float
    left_turn_s: float = 0.0
    right_turn_s: float = 0.0
    u_turn_s: float = 0.0
    waived_restrictions: frozenset[str] = field(default_factory=frozenset)
    waived_restriction_s: float = 15.0

    def __post_init__(self) -> None:
        if self.speed_factor <= 0 or self.max_speed_kph <= 0 or self.min_speed_kph <= 0:
            raise ValueError("speed_factor, max_speed_kph and min_speed_kph must be positive")
        if self.min_speed_kph > self.max_speed_kph:
            raise ValueError("min_speed_kph must not exceed max_speed_kph")
        if self.signal_delay_s < 0 or self.junction_delay_s < 0:
            raise ValueError("delays must be non-negative")
        if min(self.left_turn_s, self.right_turn_s, self.u_turn_s, self.waived_restriction_s) < 0:
            raise ValueError("turn costs must be non-negative")
        unknown = set(self.waived_restrictions) - set(RESTRICTION_KINDS)
        if unknown:
            raise ValueError(f"unknown restriction kinds: {sorted(unknown)}")

    def cache_key(self) -> str:
        """A short digest of every parameter that changes travel times (names the CH cache)."""
        text = repr(
            (
                self.speed_factor, self.max_speed_kph, self.min_speed_kph, self.signal_delay_s,
                self.junction_delay_s, self.left_turn_s, self.right_turn_s, self.u_turn_s,
                sorted(self.waived_restrictions), self.waived_restriction_s,
            )
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def edge_drive_s(self, graph: RoadGraph) -> FloatArray:
        """Return each edge's driving time in seconds, without node delays."""
        drive: FloatArray = graph.edge_length_m / (self.edge_speeds_kph(graph) / 3.6)
        return drive

    def edge_delay_s(self, graph: RoadGraph) -> FloatArray:
        """Return the delay paid at each edge's tail node (signal or junction), seconds."""
        tail = graph.edge_u
        delay: FloatArray = np.where(
            graph.node_signal[tail],
            self.signal_delay_s,
            np.where(graph.node_streets[tail] >= 3, self.junction_delay_s, 0.0),
        )
        return delay

    def edge_speeds_kph(self, graph: RoadGraph) -> FloatArray:
        """Return the speed (km/h) this profile drives on each edge of ``graph``."""
        speeds: FloatArray = np.clip(
            graph.edge_speed_kph * self.speed_factor, self.min_speed_kph, self.max_speed_kph
        )
        return speeds

    def edge_times_s(self, graph: RoadGraph) -> FloatArray:
        """Return each edge's travel time in seconds, node delays included.

        Args:
            graph: the compiled graph.

        Returns:
            ``float64[E]``, every value at least :data:`MIN_EDGE_TIME_S`.
        """
        times: FloatArray = np.maximum(
            self.edge_drive_s(graph) + self.edge_delay_s(graph), MIN_EDGE_TIME_S
        )
        return times


EMERGENCY = SpeedProfile(
    name="emergency",
    speed_factor=1.3,
    max_speed_kph=90.0,
    min_speed_kph=15.0,
    signal_delay_s=4.0,
    junction_delay_s=1.0,
    left_turn_s=3.0,
    right_turn_s=1.0,
    u_turn_s=10.0,
)
"""Emergency vehicle under lights and siren (the default for routing).

It honours every OSM turn restriction by default although the law lets it break them (Road
Traffic Safety Law art. 53): OSM does not say whether a ``no_left_turn`` is a painted sign or a
kerbed median, and a crew sent into a turn it cannot make loses far more than the turn saves. A
deployment that knows its signs are only signs waives kinds with
``dataclasses.replace(EMERGENCY, waived_restrictions=frozenset({"no_u_turn", "no_left_turn"}))``.
"""

NORMAL = SpeedProfile(
    name="normal",
    speed_factor=1.0,
    max_speed_kph=120.0,
    min_speed_kph=5.0,
    signal_delay_s=20.0,
    junction_delay_s=3.0,
    left_turn_s=8.0,
    right_turn_s=2.0,
    u_turn_s=20.0,
)
"""Ordinary traffic: posted speeds, an average red wait at signals."""
