"""Speed profiles: how long each edge takes for a kind of vehicle.

An emergency vehicle is faster than traffic (it may exceed the limit, use the opposite lane) and
loses less time at signals and junctions; normal traffic is the baseline. A node delay is paid
on the edge that *leaves* the node, so a signal's arrival time (the ETA we ask green for) does not
include its own delay. Real turn penalties would need an edge-expanded graph; the junction
delay is the cheap stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import FloatArray, RoadGraph

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
        junction_delay_s: time lost crossing an unsignalised junction (3+ streets): turns, yields.
    """

    name: str
    speed_factor: float
    max_speed_kph: float
    min_speed_kph: float
    signal_delay_s: float
    junction_delay_s: float

    def __post_init__(self) -> None:
        if self.speed_factor <= 0 or self.max_speed_kph <= 0 or self.min_speed_kph <= 0:
            raise ValueError("speed_factor, max_speed_kph and min_speed_kph must be positive")
        if self.min_speed_kph > self.max_speed_kph:
            raise ValueError("min_speed_kph must not exceed max_speed_kph")
        if self.signal_delay_s < 0 or self.junction_delay_s < 0:
            raise ValueError("delays must be non-negative")

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
        drive = graph.edge_length_m / (self.edge_speeds_kph(graph) / 3.6)
        tail = graph.edge_u
        delay = np.where(
            graph.node_signal[tail],
            self.signal_delay_s,
            np.where(graph.node_streets[tail] >= 3, self.junction_delay_s, 0.0),
        )
        times: FloatArray = np.maximum(drive + delay, MIN_EDGE_TIME_S)
        return times


EMERGENCY = SpeedProfile(
    name="emergency",
    speed_factor=1.3,
    max_speed_kph=90.0,
    min_speed_kph=15.0,
    signal_delay_s=4.0,
    junction_delay_s=1.0,
)
"""Emergency vehicle under lights and siren (the default for routing)."""

NORMAL = SpeedProfile(
    name="normal",
    speed_factor=1.0,
    max_speed_kph=120.0,
    min_speed_kph=5.0,
    signal_delay_s=20.0,
    junction_delay_s=3.0,
)
"""Ordinary traffic: posted speeds, an average red wait at signals."""
