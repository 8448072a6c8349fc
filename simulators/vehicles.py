"""An emergency vehicle driving one leg of its assignment, as a pure step-able object.

:class:`VehicleSim` drives a :class:`routing.Route` edge by edge at the speeds the router's
profile gives (the profile's expected signal delay is taken out: the signal model decides what
each signal costs). At every signal on the route it looks at the signal (a :class:`SignalView`
from a lookup the caller provides: in a batch drill the controller itself, in live mode the last
SPaT message) and:

* passes without stopping when its axis is green and no queue stands at the stop line;
* otherwise stops behind the queue: it leaves once its axis has been green for the start-up
  lost time (only if it arrived on red) plus one saturation headway per vehicle ahead of it,
  and pays the time lost braking and accelerating.

Each :meth:`VehicleSim.step` covers one second and returns what the terminal would send: a
position (1 Hz), status changes, and one :class:`SignalPassed` per signal crossed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from dispatch.core.assign import LegKind
from dispatch.models import UnitStatus
from routing import Route
from routing.graph import haversine_m
from routing.greenwave import approach_label

from .signals import Axis, SignalView, axis_for

SignalLookup = Callable[[int, float], SignalView]
"""``lookup(intersection_id, at_s)``: the signal as shown during second ``floor(at_s)``."""

# The statuses a leg's crew reports as it drives off and as it arrives.
_STATUS = {
    LegKind.SCENE: (UnitStatus.EN_ROUTE, UnitStatus.ON_SCENE),
    LegKind.TRANSPORT: (UnitStatus.TRANSPORTING, UnitStatus.AT_HOSPITAL),
}


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A 1 Hz fix, as a terminal sends it."""

    unit_id: str
    at_s: float
    lat: float
    lon: float
    speed_kph: float
    heading_deg: float


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The unit's status changed (departed, arrived)."""

    unit_id: str
    at_s: float
    status: UnitStatus


@dataclass(frozen=True, slots=True)
class SignalPassed:
    """The vehicle crossed a signal's stop line.

    Attributes:
        wait_s: time from reaching the stop line to leaving it (0 when it did not stop).
        lost_s: ``wait_s`` plus the time lost braking and accelerating.
    """

    unit_id: str
    intersection_id: int
    pass_index: int
    axis: Axis
    arrived_s: float
    departed_s: float
    wait_s: float
    lost_s: float
    stopped: bool
    green_on_arrival: bool


VehicleOutput = PositionReport | StatusChange | SignalPassed


@dataclass(frozen=True, slots=True)
class Bluelight:
    """How an emergency vehicle with lights and siren crosses a red signal.

    Chinese law lets it pass a red with care (Road Traffic Safety Law art. 53: other traffic
    yields to it), as SUMO's emergency vehicles do in the SUMO drill's baseline: it slows to
    ``crawl_kph``, looks for ``yield_s``, and crosses, threading past a standing queue at
    ``queue_pass_s`` per vehicle. ``None`` in its place: it waits for green like any car.
    """

    crawl_kph: float = 20.0
    yield_s: float = 2.0
    queue_pass_s: float = 1.0


@dataclass(slots=True)
class _StopLine:
    edge: int  # the edge leaving the signal (its tail is the signal node)
    node_id: int
    axis: Axis
    index: int


@dataclass(slots=True)
class _Wait:
    line: _StopLine
    arrived_s: float
    needed_s: float
    green_s: float
    red_on_arrival: bool


class VehicleSim:
    """One unit driving one route (see module docstring).

    Args:
        unit_id: the unit.
        route: the route (from ``Router.route``).
        depart_s: simulated second it leaves.
        kind: ``scene`` (en_route -> on_scene) or ``transport`` (transporting -> at_hospital).
        signal_delay_s: the router profile's expected delay per signal, removed from edge times.
        signal_nodes: OSM ids of every signal node (to strip that delay at the origin too).
        accel_mps2: acceleration from a stop (a loaded engine or ambulance: about 1.2).
        decel_mps2: comfortable braking.
        emit_positions: whether :meth:`step` returns 1 Hz positions (a batch re-drive without
            green wave does not need them).
        bluelight: how it crosses a red (see :class:`Bluelight`); ``None``: it waits for green.
    """

    def __init__(
        self,
        *,
        unit_id: str,
        route: Route,
        depart_s: float,
        kind: LegKind = LegKind.SCENE,
        signal_delay_s: float = 0.0,
        signal_nodes: Collection[int] = (),
        accel_mps2: float = 1.2,
        decel_mps2: float = 2.5,
        emit_positions: bool = True,
        bluelight: Bluelight | None = None,
    ) -> None:
        if accel_mps2 <= 0 or decel_mps2 <= 0:
            raise ValueError("accel_mps2 and decel_mps2 must be positive")
        self.unit_id = unit_id
        self.route = route
        self.kind = LegKind(kind)
        self.depart_s = float(depart_s)
        self.accel_mps2 = accel_mps2
        self.decel_mps2 = decel_mps2
        self.emit_positions = emit_positions
        self.bluelight = bluelight
        self.t = self.depart_s
        self.started = False
        self.done = False
        self.arrived_s: float | None = None
        self.passed: list[SignalPassed] = []
        edges = route.edges
        self._length = [e.length_m for e in edges]
        self._route_time = [e.duration_s for e in edges]
        self._drive: list[float] = []
        for e in edges:
            # The stop lines model signals: take out the expected signal delay the router
            # charged to the edge leaving one (none on a first edge the route starts on).
            delay = min(signal_delay_s, e.delay_s) if e.u in signal_nodes else 0.0
            self._drive.append(max(e.duration_s - delay, 0.01))
        self._speed = [
            (dist / d if d > 0 else 1.0) for dist, d in zip(self._length, self._drive, strict=True)
        ]
        self._start_m = [0.0]
        self._start_route_s = [0.0]
        for length, dur in zip(self._length, self._route_time, strict=True):
            self._start_m.append(self._start_m[-1] + length)
            self._start_route_s.append(self._start_route_s[-1] + dur)
        self._lines = self._stop_lines(route)
        self._line_at = {line.edge: line for line in self._lines}
        self._edge = 0
        self._offset_m = 0.0
        self._wait: _Wait | None = None
        self._penalty_s = 0.0
        self._poly_m, self._poly_lat, self._poly_lon = self._polyline(route)

    # ------------------------------------------------------------------------------ public

    @property
    def progress_m(self) -> float:
        """Metres driven along the route."""
        if self._edge >= len(self._length):
            return self._start_m[-1]
        return self._start_m[self._edge] + self._offset_m

    @property
    def route_time_s(self) -> float:
        """Progress expressed in the route's own time (what a green-wave plan measures)."""
        if self._edge >= len(self._length):
            return self._start_route_s[-1]
        share = self._offset_m / self._length[self._edge] if self._length[self._edge] > 0 else 0.0
        return self._start_route_s[self._edge] + share * self._route_time[self._edge]

    @property
    def waiting_at(self) -> int | None:
        """The signal the vehicle is queued at, if any."""
        return self._wait.line.node_id if self._wait is not None else None

    def approach_axes(self) -> dict[int, Axis]:
        """The signal axis the vehicle enters each signal of its route by (first pass)."""
        out: dict[int, Axis] = {}
        for line in self._lines:
            out.setdefault(line.node_id, line.axis)
        return out

    def position(self) -> tuple[float, float]:
        """Current ``(lat, lon)``."""
        return self._locate(self._poly_distance())

    def step(self, now_s: float, lookup: SignalLookup) -> list[VehicleOutput]:
        """Drive the second ``[now_s, now_s + 1)``.

        Args:
            now_s: the second (the vehicle does nothing before its departure).
            lookup: signal views by intersection id and time.

        Returns:
            Status changes (departure, arrival), signals crossed, and the position at the end
            of the second (when ``emit_positions``).
        """
        out: list[VehicleOutput] = []
        if self.done or now_s + 1.0 <= self.depart_s:
            return out
        begin = max(now_s, self.depart_s)
        if not self.started:
            self.started = True
            out.append(StatusChange(self.unit_id, begin, _STATUS[self.kind][0]))
            # A route that starts at its destination (same node) arrives at once.
            if not self._length:
                return self._arrive(begin, out)
        budget = now_s + 1.0 - begin
        clock = begin
        while budget > 1e-9 and not self.done:
            if self._penalty_s > 0:
                use = min(budget, self._penalty_s)
                self._penalty_s -= use
                budget -= use
                clock += use
                continue
            if self._wait is not None:
                used = self._advance_wait(clock, budget, lookup, out)
                budget -= used
                clock += used
                continue
            speed = self._speed[self._edge]
            to_end = (self._length[self._edge] - self._offset_m) / speed
            if budget < to_end:
                self._offset_m += budget * speed
                budget = 0.0
                break
            budget -= to_end
            clock += to_end
            self._edge += 1
            self._offset_m = 0.0
            if self._edge >= len(self._length):
                self._arrive(clock, out)
                break
            line = self._line_at.get(self._edge)
            if line is not None:
                self._reach_line(line, clock, lookup, out)
                if self._wait is not None:
                    break  # the rest of this second is spent braking into the queue
        self.t = now_s + 1.0
        if self.emit_positions:
            lat, lon = self.position()
            moving = self._wait is None and not self.done
            speed_kph = self._speed[self._edge] * 3.6 if moving else 0.0
            out.append(PositionReport(self.unit_id, self.t, lat, lon, speed_kph, self._heading()))
        return out

    # ------------------------------------------------------------------------------ internals

    def _arrive(self, at_s: float, out: list[VehicleOutput]) -> list[VehicleOutput]:
        self.done = True
        self.arrived_s = at_s
        self._edge = len(self._length)
        out.append(StatusChange(self.unit_id, at_s, _STATUS[self.kind][1]))
        return out

    def _reach_line(
        self, line: _StopLine, at_s: float, lookup: SignalLookup, out: list[VehicleOutput]
    ) -> None:
        view = lookup(line.node_id, at_s)
        green = view.is_green(line.axis)
        ahead = math.floor(view.queue(line.axis))
        if green and ahead == 0:
            passed = SignalPassed(
                self.unit_id, line.node_id, line.index, line.axis, at_s, at_s, 0.0, 0.0,
                False, True,
            )  # fmt: skip
            self.passed.append(passed)
            out.append(passed)
            return
        if not green and self.bluelight is not None:
            self._cross_red(line, at_s, ahead, out)
            return
        needed = ahead * view.headway_s + (0.0 if green else view.startup_lost_s)
        self._wait = _Wait(line, at_s, needed, 0.0, not green)

    def _cross_red(
        self, line: _StopLine, at_s: float, ahead: int, out: list[VehicleOutput]
    ) -> None:
        """Cross a red under lights and siren (see :class:`Bluelight`)."""
        bl = self.bluelight
        assert bl is not None
        lost = self._slowing_lost_s(line, bl.crawl_kph / 3.6)
        waited = bl.yield_s + ahead * bl.queue_pass_s
        departed = at_s + waited
        self._penalty_s = waited + lost
        passed = SignalPassed(
            self.unit_id, line.node_id, line.index, line.axis, at_s, departed, waited,
            waited + lost, False, False,
        )  # fmt: skip
        self.passed.append(passed)
        out.append(passed)

    def _advance_wait(
        self, clock: float, budget: float, lookup: SignalLookup, out: list[VehicleOutput]
    ) -> float:
        """Wait at the stop line for at most ``budget`` seconds; returns the seconds used."""
        wait = self._wait
        assert wait is not None
        view = lookup(wait.line.node_id, clock)
        if not view.is_green(wait.line.axis):
            return budget
        need = wait.needed_s - wait.green_s
        if need > budget:
            wait.green_s += budget
            return budget
        departed = clock + need
        wait.green_s = wait.needed_s
        self._penalty_s = self._slowing_lost_s(wait.line, 0.0)
        waited = departed - wait.arrived_s
        passed = SignalPassed(
            self.unit_id, wait.line.node_id, wait.line.index, wait.line.axis, wait.arrived_s,
            departed, waited, waited + self._penalty_s, True, not wait.red_on_arrival,
        )  # fmt: skip
        self.passed.append(passed)
        out.append(passed)
        self._wait = None
        return need

    def _slowing_lost_s(self, line: _StopLine, floor_mps: float) -> float:
        """Time lost against cruising through ``line`` by slowing to ``floor_mps`` (0: a stop)
        and back up: a speed change dv from speed v at rate a costs dv/(2a) * dv/v."""
        v_in = self._speed[line.edge - 1] if line.edge > 0 else 0.0
        v_out = self._speed[line.edge]
        lost = 0.0
        for v, rate in ((v_in, self.decel_mps2), (v_out, self.accel_mps2)):
            if v > floor_mps:
                dv = v - floor_mps
                lost += dv / (2 * rate) * (dv / v)
        return lost

    def _stop_lines(self, route: Route) -> list[_StopLine]:
        lines: list[_StopLine] = []
        k = 1
        for index, sig in enumerate(route.signals):
            while k < len(route.edges) and not (
                route.edges[k].u == sig.node_id and abs(self._start_m[k] - sig.distance_m) < 1.0
            ):
                k += 1
            if k >= len(route.edges):
                break
            label = approach_label(sig.inbound_bearing_deg, inbound=True)
            lines.append(_StopLine(edge=k, node_id=sig.node_id, axis=axis_for(label), index=index))
            k += 1
        return lines

    @staticmethod
    def _polyline(route: Route) -> tuple[list[float], list[float], list[float]]:
        arr = np.asarray(route.coordinates, dtype=np.float64).reshape(-1, 2)
        lons, lats = arr[:, 0], arr[:, 1]
        steps = haversine_m(lats[:-1], lons[:-1], lats[1:], lons[1:])
        cum = np.concatenate([[0.0], np.cumsum(steps)])
        return [float(x) for x in cum], [float(x) for x in lats], [float(x) for x in lons]

    def _poly_distance(self) -> float:
        """Polyline metres at the current progress (edge lengths and polyline differ slightly)."""
        if not self._length:
            return 0.0
        k = min(self._edge, len(self._length) - 1)
        edges = self.route.edges
        lo = self._poly_m[edges[k].start_index]
        hi_index = edges[k + 1].start_index if k + 1 < len(edges) else len(self._poly_m) - 1
        hi = self._poly_m[hi_index]
        if self._edge >= len(self._length):
            return hi
        share = self._offset_m / self._length[k] if self._length[k] > 0 else 0.0
        return lo + share * (hi - lo)

    def _locate(self, dist: float) -> tuple[float, float]:
        cum = self._poly_m
        if len(cum) < 2:
            return self._poly_lat[0], self._poly_lon[0]
        i = min(max(bisect.bisect_right(cum, dist) - 1, 0), len(cum) - 2)
        seg = cum[i + 1] - cum[i]
        f = (dist - cum[i]) / seg if seg > 0 else 0.0
        f = min(max(f, 0.0), 1.0)
        lat = self._poly_lat[i] + f * (self._poly_lat[i + 1] - self._poly_lat[i])
        lon = self._poly_lon[i] + f * (self._poly_lon[i + 1] - self._poly_lon[i])
        return lat, lon

    def _heading(self) -> float:
        d = self._poly_distance()
        lat1, lon1 = self._locate(max(d - 5.0, 0.0))
        lat2, lon2 = self._locate(d + 5.0)
        if lat1 == lat2 and lon1 == lon2:
            return 0.0
        y = math.sin(math.radians(lon2 - lon1)) * math.cos(math.radians(lat2))
        x = math.cos(math.radians(lat1)) * math.sin(math.radians(lat2)) - math.sin(
            math.radians(lat1)
        ) * math.cos(math.radians(lat2)) * math.cos(math.radians(lon2 - lon1))
        return math.degrees(math.atan2(y, x)) % 360.0
