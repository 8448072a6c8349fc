"""The live drill's units: each one's terminal and crew, driving what the service planned.

Pure and step-able (no sockets, no clock of its own): the live drill feeds :class:`UnitSim` the
service's ``assignment.created`` and ``route.planned`` events and sends what its :meth:`step`
returns each field second (fixes, status changes). A unit turns out, drives the scene route
(:class:`VehicleSim`, re-started on a re-route), stays on scene, drives the transport leg the
service planned (an ambulance whose patient goes to hospital), hands over, and is available
again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Literal

from dispatch.core.assign import LegKind
from dispatch.models import Agency, Unit, UnitStatus, UnitType
from routing import Route

from ..clock import lognormal_s, substream
from ..config import DrillConfig
from ..signals import SignalView
from ..vehicles import PositionReport, SignalPassed, StatusChange, VehicleSim

QUEUE_BACK_M = 8.0
"""Where a vehicle queued at a signal reports itself: this far behind the stop line.

The vehicle model stops exactly at the signal node; a fix there projects onto the route at
the signal itself, which the service reads as "passed" and cancels the request the vehicle is
waiting on (the controller then drops the priority green it needs)."""


@dataclass
class LegLog:
    """One drive as it happened: the route(s) driven, when, and the signals met."""

    unit_id: str
    agency: Agency
    unit_type: UnitType
    incident_id: str
    kind: LegKind
    route: Route
    dispatched_s: float
    depart_s: float
    vehicles: list[VehicleSim] = field(default_factory=list)
    arrived_s: float | None = None
    reroutes: int = 0

    @property
    def passed(self) -> list[SignalPassed]:
        return [p for v in self.vehicles for p in v.passed]

    @property
    def vehicle(self) -> VehicleSim:
        return self.vehicles[-1]


UnitOutput = PositionReport | UnitStatus
Phase = Literal["idle", "assigned", "driving", "on_scene", "at_hospital"]


class UnitSim:
    """One unit's terminal and crew (see the module docstring).

    Args:
        unit: the unit as defined at set-up.
        seed: drill seed (turnout and time on scene are drawn per incident and unit).
        config: the batch model's medians (turnout, on scene, hand-over).
        crew_time_scale: multiplies the crew's times: turnout, time on scene and hand-over (a
            short demo or test); driving and the signals stay in real time.
        signal_nodes: OSM ids of all signals (the vehicle strips the router's signal delay).
        signal_delay_s: the router profile's expected delay per signal.
        parked_fix_s: fix interval while waiting to leave (the service re-times from it).
        takes_patient: whether the crew takes the patient of an incident to hospital (the
            patient model of :mod:`simulators.patients`, as the batch drill's crews decide);
            default: always.
    """

    def __init__(
        self,
        unit: Unit,
        *,
        seed: int,
        config: DrillConfig,
        crew_time_scale: float,
        signal_nodes: Collection[int],
        signal_delay_s: float,
        parked_fix_s: float = 5.0,
        takes_patient: Callable[[str], bool] | None = None,
    ) -> None:
        self.unit = unit
        self.takes_patient = takes_patient or (lambda _incident_id: True)
        self.seed = seed
        self.cfg = config
        self.crew_time_scale = crew_time_scale
        self.signal_nodes = signal_nodes
        self.signal_delay_s = signal_delay_s
        self.parked_fix_s = parked_fix_s
        self.phase: Phase = "idle"
        self.incident_id: str | None = None
        self.dispatched_s = 0.0
        self.routes: dict[LegKind, Route] = {}
        self.leg: LegLog | None = None
        self.legs: list[LegLog] = []
        self.until_s = 0.0
        self._last_parked_fix = -math.inf

    @property
    def busy(self) -> bool:
        return self.phase != "idle"

    def _draw(self, what: str, median_s: float, sigma: float) -> float:
        rng = substream(self.seed, what, self.incident_id, self.unit.id)
        return lognormal_s(rng, median_s * self.crew_time_scale, sigma)

    # -- what the terminal hears ----------------------------------------------------------------

    def assigned(self, incident_id: str, now_s: float) -> None:
        """``assignment.created`` for this unit."""
        if self.phase != "idle":
            return
        self.phase = "assigned"
        self.incident_id = incident_id
        self.dispatched_s = now_s
        self.routes = {}

    def route_planned(self, incident_id: str, leg: LegKind, route: Route, now_s: float) -> None:
        """``route.planned``: the first scene route starts the turnout; a later one re-routes."""
        if self.phase == "idle":
            self.assigned(incident_id, now_s)
        if incident_id != self.incident_id:
            return
        self.routes[leg] = route
        current = self.leg
        if leg is LegKind.SCENE and self.phase == "assigned" and current is None:
            turnout = self._draw("turnout", self.cfg.turnout_median_s[self.unit.agency], 0.3)
            self._start(
                LegKind.SCENE,
                route,
                dispatched_s=self.dispatched_s,
                depart_s=math.ceil(now_s + turnout),
            )
        elif (
            current is not None
            and current.kind is leg
            and self.phase == "driving"
            and current.vehicle.started
            and not current.vehicle.done
        ):
            # A re-route: the terminal drives the new route from where it is, now.
            current.reroutes += 1
            current.vehicles.append(self._vehicle(route, float(math.ceil(now_s)), current.kind))

    def _vehicle(self, route: Route, depart_s: float, kind: LegKind) -> VehicleSim:
        return VehicleSim(
            unit_id=self.unit.id,
            route=route,
            depart_s=depart_s,
            kind=kind,
            signal_delay_s=self.signal_delay_s,
            signal_nodes=self.signal_nodes,
            bluelight=self.cfg.bluelight,
        )

    def _start(self, kind: LegKind, route: Route, *, dispatched_s: float, depart_s: float) -> None:
        assert self.incident_id is not None
        leg = LegLog(
            unit_id=self.unit.id,
            agency=self.unit.agency,
            unit_type=self.unit.type,
            incident_id=self.incident_id,
            kind=kind,
            route=route,
            dispatched_s=dispatched_s,
            depart_s=depart_s,
        )
        leg.vehicles.append(self._vehicle(route, depart_s, kind))
        self.leg = leg
        self.legs.append(leg)
        self.phase = "driving"

    # -- one second of the field ------------------------------------------------------------------

    def step(self, now_s: float, lookup: Callable[[int, float], SignalView]) -> list[UnitOutput]:
        """The second ``[now_s, now_s + 1)``: what the terminal sends (fixes, status changes)."""
        out: list[UnitOutput] = []
        if self.phase == "driving":
            assert self.leg is not None
            leg = self.leg
            vehicle = leg.vehicle
            if not vehicle.started and now_s + 1.0 <= vehicle.depart_s:
                if now_s - self._last_parked_fix >= self.parked_fix_s:
                    self._last_parked_fix = now_s
                    lat, lon = vehicle.position()
                    out.append(PositionReport(self.unit.id, now_s + 1.0, lat, lon, 0.0, 0.0))
                return out
            first_segment = len(leg.vehicles) == 1
            for item in vehicle.step(now_s, lookup):
                if isinstance(item, PositionReport):
                    out.append(self._queued_fix(vehicle, item))
                elif isinstance(item, StatusChange):
                    departing = item.status in (UnitStatus.EN_ROUTE, UnitStatus.TRANSPORTING)
                    if departing and not first_segment:
                        continue  # a re-route does not leave again
                    out.append(item.status)
                    if not departing:
                        leg.arrived_s = item.at_s
                        out.extend(self._arrived(item.at_s))
            if not vehicle.done and vehicle.started and now_s - leg.depart_s > self.cfg.max_drive_s:
                # Stuck (a route the model cannot finish): call it arrived so the drill moves on.
                vehicle.done, vehicle.arrived_s = True, now_s
                leg.arrived_s = now_s
                out.append(
                    UnitStatus.ON_SCENE if leg.kind is LegKind.SCENE else UnitStatus.AT_HOSPITAL
                )
                out.extend(self._arrived(now_s))
        elif self.phase in ("on_scene", "at_hospital") and now_s >= self.until_s:
            out.extend(self._clear(now_s))
        return out

    @staticmethod
    def _queued_fix(vehicle: VehicleSim, fix: PositionReport) -> PositionReport:
        """A fix of a vehicle queued at a signal: behind the stop line, not on it."""
        if vehicle.waiting_at is None:
            return fix
        lat, lon = vehicle._locate(max(vehicle._poly_distance() - QUEUE_BACK_M, 0.0))
        return replace(fix, lat=lat, lon=lon)

    def _arrived(self, at_s: float) -> list[UnitOutput]:
        assert self.leg is not None
        if self.leg.kind is LegKind.SCENE:
            self.phase = "on_scene"
            self.until_s = at_s + self._draw(
                "on-scene", self.cfg.on_scene_median_s[self.unit.agency], 0.4
            )
        else:
            self.phase = "at_hospital"
            self.until_s = at_s + self._draw("handover", self.cfg.handover_median_s, 0.3)
        return []

    def _clear(self, now_s: float) -> list[UnitOutput]:
        transport = self.routes.get(LegKind.TRANSPORT)
        if (
            self.phase == "on_scene"
            and self.unit.type is UnitType.AMBULANCE
            and transport is not None
            and self.incident_id is not None
            and self.takes_patient(self.incident_id)
        ):
            depart = float(math.ceil(now_s))
            self._start(LegKind.TRANSPORT, transport, dispatched_s=now_s, depart_s=depart)
            return []
        self.phase = "idle"
        self.leg = None
        self.incident_id = None
        self.routes = {}
        return [UnitStatus.AVAILABLE]
