"""The simulated field of a live drill: signal controllers behind the 122 gateway, and units.

Pure and step-able like the batch models it wraps (no sockets, no clock of its own): the live
adapter (:mod:`simulators.live`) feeds it the service's messages with the field second they
arrived at and sends what it returns. Field seconds count from the drill's start on the wall
clock; the signal controllers, the vehicles and the service all live on that one real clock.

* :class:`SignalField`: one :class:`SignalController` per signal node (made when first touched,
  in the plan's state of that second), what the gateway heard (grants, cancels), the reports
  it owes the service, and an independent check that no two conflicting grants overlapped.
* :class:`UnitSim`: one unit's terminal: turnout, the drive (:class:`VehicleSim`, re-started on
  a re-route), time on scene, the transport leg, then available again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from dispatch.models import Agency, Unit, UnitStatus, UnitType
from routing import Route
from routing.arbiter import movements_conflict
from routing.greenwave import SignalRequest

from .clock import lognormal_s, substream
from .drill import DrillConfig
from .report import GrantRecord
from .signals import (
    Axis,
    PriorityCancel,
    PriorityGrant,
    PriorityReport,
    SignalController,
    SignalTiming,
    SignalView,
    axis_for,
)
from .vehicles import PositionReport, SignalPassed, StatusChange, VehicleSim

LegKind = Literal["scene", "transport"]
FlowFactor = Callable[[float], float]

QUEUE_BACK_M = 8.0
"""Where a vehicle queued at a signal reports itself: this far behind the stop line.

The vehicle model stops exactly at the signal node; a fix there projects onto the route at
the signal itself, which the service reads as "passed" and cancels the request the vehicle is
waiting on (the controller then drops the priority green it needs)."""


@dataclass(frozen=True, slots=True)
class FieldClock:
    """Field seconds <-> datetimes. ``epoch`` is second 0 (the drill's start, timezone-aware)."""

    epoch: datetime

    def at(self, seconds: float) -> datetime:
        return self.epoch + timedelta(seconds=seconds)

    def seconds(self, when: datetime) -> float:
        return (when - self.epoch).total_seconds()


def parse_ts(text: str) -> datetime:
    """An ISO 8601 timestamp as the service sends it (``Z`` accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------- signals


@dataclass(frozen=True, slots=True)
class RequestNote:
    """Something the gateway learned about one request (for the per-leg accounting)."""

    at_s: float
    unit_id: str
    request_id: str
    intersection_id: int
    kind: Literal["requested", "granted", "rejected"]


@dataclass(frozen=True, slots=True)
class GrantConflict:
    """Two conflicting movements granted overlapping windows at one intersection (a bug)."""

    intersection_id: int
    first: str
    second: str
    at_s: float


@dataclass(slots=True)
class _Granted:
    request: SignalRequest
    green_from: datetime
    green_to: datetime


def _fallback_timing(intersection_id: int) -> SignalTiming:
    # Only for a signal the drill's graph does not know (the service runs another graph):
    # a plain 90 s plan keeps the vehicle driving instead of failing the drill.
    return SignalTiming(
        intersection_id=intersection_id,
        major_axis=Axis.NS,
        cycle_s=90,
        major_green_s=45,
        minor_green_s=35,
        offset_s=0,
        major_flow_vps=0.1,
        minor_flow_vps=0.08,
    )


class SignalField:
    """Every signal controller of the map and the 122 gateway's view of the green wave.

    The gateway passes grants and cancels through; the controllers bound priority themselves
    (maximum extension, recovery green: see :class:`SignalController`), so a stopped vehicle
    whose windows keep sliding cannot hold a street green for ever, and two vehicles held at
    each other's junctions do not wait on each other. A request a controller gives up on is
    reported ``rejected`` ("max extension reached"); a later grant for it is judged afresh.

    Args:
        timings: OSM node id -> fixed-time plan (``make_timings`` over the router's graph).
        clock: field clock (to read the service's datetimes).
        flow_factor: share of peak traffic at a field second.
        max_extension_s: the controllers' maximum priority extension past a planned green end.
    """

    def __init__(
        self,
        timings: Mapping[int, SignalTiming],
        clock: FieldClock,
        flow_factor: FlowFactor,
        *,
        max_extension_s: int = 30,
    ) -> None:
        self.max_extension_s = max_extension_s
        self.timings = dict(timings)
        self.clock = clock
        self.flow_factor = flow_factor
        self.controllers: dict[int, SignalController] = {}
        self.unknown: set[int] = set()
        self.notes: list[RequestNote] = []
        self.grants: list[GrantRecord] = []
        self.conflicts: list[GrantConflict] = []
        self.received_grants = 0
        self.served = 0
        self.rejected_by_controller = 0
        self._last_grant: dict[tuple[int, str], PriorityGrant] = {}
        self._held: dict[int, dict[str, _Granted]] = {}
        self._dirty: set[int] = set()
        self._batch_ts: str | None = None
        self._outbox: list[PriorityReport] = []

    # -- the world the vehicles see ----------------------------------------------------------

    def controller(self, iid: int, now_s: float) -> SignalController:
        ctrl = self.controllers.get(iid)
        if ctrl is None:
            timing = self.timings.get(iid)
            if timing is None:
                self.unknown.add(iid)
                timing = self.timings[iid] = _fallback_timing(iid)
            ctrl = SignalController(
                timing,
                now_s=now_s,
                flow_factor=self.flow_factor,
                max_extension_s=self.max_extension_s,
            )
            self.controllers[iid] = ctrl
        return ctrl

    def lookup(self, iid: int, at_s: float) -> SignalView:
        """The signal as shown during second ``floor(at_s)`` (a vehicle's ``SignalLookup``)."""
        ctrl = self.controller(iid, at_s)
        ctrl.advance(at_s)
        self._take(ctrl)
        return ctrl.view()

    # -- the gateway ---------------------------------------------------------------------------

    def on_event(self, kind: str, ts: str, data: Mapping[str, Any], now_s: float) -> None:
        """Take one ``greenwave.*`` event the gateway received at field second ``now_s``."""
        # The events of one commit share their ``ts``: check the grants only once a commit is
        # complete (a commit may grant one request and shift another in the next event).
        if ts != self._batch_ts:
            self.check_conflicts(now_s)
            self._batch_ts = ts
        try:
            request = SignalRequest.model_validate(data["request"])
            status = str(data["status"])
        except (KeyError, ValueError):
            return
        iid, rid = request.intersection_id, request.request_id
        unit_id = request.requester.unit_id
        if kind == "greenwave.request":
            self.notes.append(RequestNote(now_s, unit_id, rid, iid, "requested"))
        held = self._held.setdefault(iid, {})
        if status == "granted" and data.get("granted_from") and data.get("granted_to"):
            green_from = parse_ts(str(data["granted_from"]))
            green_to = parse_ts(str(data["granted_to"]))
            before = held.get(rid)
            held[rid] = _Granted(request, green_from, green_to)
            self._dirty.add(iid)
            if before is None or (before.green_from, before.green_to) != (green_from, green_to):
                self.notes.append(RequestNote(now_s, unit_id, rid, iid, "granted"))
                self.received_grants += 1
                shift = float(data.get("shift_s") or 0.0)
                grant = PriorityGrant(
                    request_id=rid,
                    intersection_id=iid,
                    axis=axis_for(request.inbound.label),
                    inbound=request.inbound.label,
                    outbound=request.outbound.label,
                    green_from_s=self.clock.seconds(green_from),
                    green_to_s=self.clock.seconds(green_to),
                    eta_s=self.clock.seconds(request.eta) + shift,
                    importance=request.importance,
                )
                self._last_grant[(iid, rid)] = grant
                ctrl = self.controller(iid, now_s)
                ctrl.receive(grant, now_s)
                self._take(ctrl)
            return
        if status == "rejected":
            self.notes.append(RequestNote(now_s, unit_id, rid, iid, "rejected"))
        if rid in held and status in ("cancelled", "rejected", "served"):
            del held[rid]
            if status != "served":
                ctrl = self.controller(iid, now_s)
                ctrl.receive(PriorityCancel(request_id=rid, intersection_id=iid), now_s)
                self._take(ctrl)

    def check_conflicts(self, now_s: float) -> None:
        """Record every pair of conflicting grants whose windows overlap (should never be)."""
        for iid in sorted(self._dirty):
            live = sorted(self._held.get(iid, {}).items())
            for i, (rid_a, a) in enumerate(live):
                for rid_b, b in live[i + 1 :]:
                    if (
                        movements_conflict(a.request, b.request)
                        and a.green_from < b.green_to
                        and b.green_from < a.green_to
                    ):
                        self.conflicts.append(GrantConflict(iid, rid_a, rid_b, now_s))
        self._dirty.clear()

    def poll(self, now_s: float) -> list[PriorityReport]:
        """Advance controllers holding grants to ``now_s``; the reports owed to the service."""
        for ctrl in self.controllers.values():
            ctrl.advance(now_s)
            self._take(ctrl)
        out, self._outbox = self._outbox, []
        return out

    def outbox(self) -> list[PriorityReport]:
        """Reports produced since the last call, without advancing any controller."""
        out, self._outbox = self._outbox, []
        return out

    def finish(self, now_s: float) -> list[PriorityReport]:
        """End of the drill: last reports, perturbation episodes closed."""
        out = self.poll(now_s)
        self.check_conflicts(now_s)
        for ctrl in self.controllers.values():
            ctrl.finish()
            for rep in ctrl.data_to_send():
                self._account(rep)
        return out

    def _take(self, ctrl: SignalController) -> None:
        for rep in ctrl.data_to_send():
            self._account(rep)
            if rep.status in ("served", "rejected"):
                self._outbox.append(rep)

    def _account(self, rep: PriorityReport) -> None:
        if rep.status == "rejected":
            self.rejected_by_controller += 1
            unit_id = rep.request_id.split(":")[1] if rep.request_id.count(":") >= 2 else ""
            self.notes.append(
                RequestNote(rep.at_s, unit_id, rep.request_id, rep.intersection_id, "rejected")
            )
        if rep.status != "served":
            return
        self.served += 1
        grant = self._last_grant.get((rep.intersection_id, rep.request_id))
        if grant is not None:
            self.grants.append(grant.record())


# ------------------------------------------------------------------------------------- units


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
        time_scale: multiplies turnout, time on scene and hand-over (a short demo or test).
        signal_nodes: OSM ids of all signals (the vehicle strips the router's signal delay).
        signal_delay_s: the router profile's expected delay per signal.
        parked_fix_s: fix interval while waiting to leave (the service re-times from it).
    """

    def __init__(
        self,
        unit: Unit,
        *,
        seed: int,
        config: DrillConfig,
        time_scale: float,
        signal_nodes: Collection[int],
        signal_delay_s: float,
        parked_fix_s: float = 5.0,
    ) -> None:
        self.unit = unit
        self.seed = seed
        self.cfg = config
        self.time_scale = time_scale
        self.signal_nodes = signal_nodes
        self.signal_delay_s = signal_delay_s
        self.parked_fix_s = parked_fix_s
        self.phase: Phase = "idle"
        self.incident_id: str | None = None
        self.dispatched_s = 0.0
        self.routes: dict[str, Route] = {}
        self.leg: LegLog | None = None
        self.legs: list[LegLog] = []
        self.until_s = 0.0
        self._last_parked_fix = -math.inf

    @property
    def busy(self) -> bool:
        return self.phase != "idle"

    def _draw(self, what: str, median_s: float, sigma: float) -> float:
        rng = substream(self.seed, what, self.incident_id, self.unit.id)
        return lognormal_s(rng, median_s * self.time_scale, sigma)

    # -- what the terminal hears ----------------------------------------------------------------

    def assigned(self, incident_id: str, now_s: float) -> None:
        """``assignment.created`` for this unit."""
        if self.phase != "idle":
            return
        self.phase = "assigned"
        self.incident_id = incident_id
        self.dispatched_s = now_s
        self.routes = {}

    def route_planned(self, incident_id: str, leg: str, route: Route, now_s: float) -> None:
        """``route.planned``: the first scene route starts the turnout; a later one re-routes."""
        if self.phase == "idle":
            self.assigned(incident_id, now_s)
        if incident_id != self.incident_id:
            return
        self.routes[leg] = route
        current = self.leg
        if leg == "scene" and self.phase == "assigned" and current is None:
            turnout = self._draw("turnout", self.cfg.turnout_median_s[self.unit.agency], 0.3)
            self._start(
                "scene", route, dispatched_s=self.dispatched_s, depart_s=math.ceil(now_s + turnout)
            )
        elif (
            current is not None
            and current.kind == leg
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
                out.append(UnitStatus.ON_SCENE if leg.kind == "scene" else UnitStatus.AT_HOSPITAL)
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
        if self.leg.kind == "scene":
            self.phase = "on_scene"
            self.until_s = at_s + self._draw(
                "on-scene", self.cfg.on_scene_median_s[self.unit.agency], 0.4
            )
        else:
            self.phase = "at_hospital"
            self.until_s = at_s + self._draw("handover", self.cfg.handover_median_s, 0.3)
        return []

    def _clear(self, now_s: float) -> list[UnitOutput]:
        transport = self.routes.get("transport")
        if (
            self.phase == "on_scene"
            and self.unit.type is UnitType.AMBULANCE
            and transport is not None
        ):
            depart = float(math.ceil(now_s))
            self._start("transport", transport, dispatched_s=now_s, depart_s=depart)
            return []
        self.phase = "idle"
        self.leg = None
        self.incident_id = None
        self.routes = {}
        return [UnitStatus.AVAILABLE]
