"""Batch drills: a whole scenario on a simulated clock, through the service's own decision code.

:func:`run_batch` replays a scenario's calls through the dispatch pure core (joint-intake merge,
response plan, unit ranking, the whistle state machine) and routing (routes, green-wave plans and
re-plans, the per-intersection :class:`routing.arbiter.Arbiter`), with the simulated vehicles,
signal controllers and coordinators of this package standing in for the field. Then every drive
is repeated on the same route, leaving at the same second, through the same fixed-time signals,
without priority requests: the paired baseline of the report.

The engine is one event queue on simulated seconds. Vehicles move on a 1 s tick while any is
driving; controllers are advanced lazily (analytically while they follow their plan), so a day
of calls on 1,300 signals takes seconds.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dispatch.core import assign as core
from dispatch.core import whistle as wh
from dispatch.core.assign import AssignmentRecord, LegKind, UnitRoutes
from dispatch.core.merge import MergePolicy, apply_call, find_merge_target
from dispatch.core.plans import PlanTable
from dispatch.core.recommend import Travel, rank_units
from dispatch.core.rosters import duty_day, on_duty
from dispatch.core.whistle import sounding_centre
from dispatch.errors import ConflictError
from dispatch.models import (
    ASSIGNABLE_STATUSES,
    Agency,
    Hospital,
    Incident,
    IncidentStatus,
    Position,
    Unit,
    UnitNeed,
    UnitStatus,
    UnitType,
)
from routing import RoadGraph, Route, Router
from routing.arbiter import (
    Arbiter,
    ArbiterConfig,
    IntersectionState,
    SignalDecision,
    SignalStatus,
    movements_conflict,
)
from routing.greenwave import (
    GreenWaveConfig,
    PlanUpdate,
    SignalRequest,
    outgoing,
    plan_green_wave,
    replan_from_position,
)

from .calls import ScheduledCall, generate_calls
from .clock import SimClock, lognormal_s, substream
from .coordinators import CoordinatorSim
from .fleet import SimFleet, generate_fleet
from .patients import takes_patient
from .places import PlaceFinder
from .report import (
    AckRecord,
    DrillReport,
    GrantRecord,
    LegRecord,
    ResponseRecord,
    SignalRecord,
    mean_or_none,
    summarize,
)
from .scenarios import Scenario
from .signals import (
    HOURLY_FLOW,
    PriorityCancel,
    PriorityGrant,
    SignalController,
    SignalTiming,
    SignalView,
    axis_for,
    cross_delay,
    make_timings,
)
from .vehicles import SignalPassed, StatusChange, VehicleSim

Progress = Callable[[float, str], None]


class DrillConfig(BaseModel):
    """Tuning of a batch drill (defaults are the documented model)."""

    model_config = ConfigDict(frozen=True)

    call_processing_median_s: float = Field(
        default=45.0, gt=0, description="call answered to dispatch decision (NFPA 1225: <= 60 s)"
    )
    turnout_median_s: dict[Agency, float] = Field(
        default_factory=lambda: {
            Agency.POLICE: 30.0,
            Agency.TRAFFIC: 30.0,
            Agency.EMS: 60.0,
            Agency.FIRE: 80.0,
            Agency.PROPERTY: 60.0,
        },
        description="assignment to wheels rolling (NFPA 1710: 60 s EMS, 80 s fire)",
    )
    on_scene_median_s: dict[Agency, float] = Field(
        default_factory=lambda: {
            Agency.POLICE: 1200.0,
            Agency.TRAFFIC: 1500.0,
            Agency.EMS: 720.0,
            Agency.FIRE: 1800.0,
            Agency.PROPERTY: 900.0,
        }
    )
    handover_median_s: float = Field(default=720.0, gt=0)
    replan_every_s: float = Field(default=10.0, gt=0, description="green-wave re-plan at most")
    replan_drift_s: float = Field(default=3.0, gt=0, description="re-plan early on this drift")
    redispatch_after_s: float = Field(default=60.0, gt=0)
    redispatch_tries: int = Field(default=10, ge=0)
    max_drive_s: float = Field(default=4 * 3600.0, gt=0, description="a drive longer is cut off")
    drain_h: float = Field(default=6.0, ge=0, description="run on after the last call")
    greenwave: GreenWaveConfig = Field(default_factory=GreenWaveConfig)
    merge_distance_m: float = 300.0
    merge_window_s: float = 600.0


# ------------------------------------------------------------------------------- internals


@dataclass
class _Leg:
    """One drive as the field made it: a vehicle on the route of its assignment's leg."""

    leg_id: int
    unit_id: str
    incident_id: str
    kind: LegKind
    route: Route
    dispatched_s: float
    depart_s: float
    vehicle: VehicleSim
    gw_start_s: float | None = None
    last_replan_s: float = 0.0
    granted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)


@dataclass
class _Resp:
    incident_id: str
    source: str
    first_call_s: float
    whistle_id: str | None = None
    whistle_s: float | None = None
    greenwave_s: float | None = None
    legs: list[_Leg] = field(default_factory=list)
    assigned: dict[tuple[Agency, UnitType], int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    tries: int = 0
    dispatch_pending: bool = False


_PRIORITY = {"call": 0, "dispatch": 1, "ack": 2, "timer": 3, "clear": 4, "home": 5, "tick": 9}
# The drill's dispatchers, as the assignment records name them.
_ACTOR = "drill-dispatcher"


class _Engine:
    def __init__(
        self,
        router: Router,
        scenario: Scenario,
        seed: int,
        config: DrillConfig,
        fleet: SimFleet | None,
        progress: Progress | None,
    ) -> None:
        self.router = router
        self.scenario = scenario
        self.seed = seed
        self.cfg = config
        self.progress = progress
        self.clock = SimClock(scenario.start)
        self._flow_memo: dict[float, float] = {}
        g = router.graph
        self.signal_nodes = frozenset(int(x) for x in g.node_osmid[g.node_signal].tolist())
        self.timings: dict[int, SignalTiming] = make_timings(g, seed=seed)
        self.controllers: dict[int, SignalController] = {}
        self.arbiter = Arbiter(ArbiterConfig(clearance_s=5.0))
        self.intersections: dict[int, IntersectionState] = {}
        self.plans = PlanTable.load()
        self.policy = MergePolicy(
            distance_m=config.merge_distance_m, window_s=config.merge_window_s
        )
        day = duty_day(self.clock.at(0.0))
        self.fleet = fleet or generate_fleet(router, seed=seed, day=day)
        self.units: dict[str, Unit] = {u.id: u for u in self.fleet.units}
        self.unit_epoch: dict[str, int] = dict.fromkeys(self.units, 0)
        # The dispatch state, as the service keeps it: one record per unit on an assignment.
        self.records: dict[str, AssignmentRecord] = {}
        self.coordinators: dict[str, CoordinatorSim] = {}
        self.whistles: dict[str, wh.Whistle] = {}
        self.incidents: dict[str, Incident] = {}
        self.resp: dict[str, _Resp] = {}
        self.legs: list[_Leg] = []
        self.active: dict[str, _Leg] = {}
        self.pending: dict[str, _Leg] = {}
        self.last_grant: dict[tuple[int, str], PriorityGrant] = {}
        self.grants: list[GrantRecord] = []
        self.served = 0
        self.grant_conflicts = 0
        self.heap: list[tuple[float, int, int, str, Any]] = []
        self.seq = 0
        self.tick_scheduled = False
        self._hospitals: dict[tuple[float, float], tuple[Hospital, Route] | None] = {}
        finder = PlaceFinder(router)
        self.calls: list[ScheduledCall] = generate_calls(scenario, finder, self.clock, seed=seed)
        self.end_s = scenario.duration_h * 3600.0

    # ----------------------------------------------------------------------------- queue

    def push(self, at_s: float, kind: str, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at_s, _PRIORITY[kind], self.seq, kind, payload))

    def run(self) -> None:
        for sc in self.calls:
            self.push(sc.at_s, "call", sc)
        limit = self.end_s + self.cfg.drain_h * 3600.0
        total = max(len(self.calls), 1)
        done = 0
        while self.heap:
            at, _, _, kind, payload = heapq.heappop(self.heap)
            if at > limit:
                break
            if kind == "call":
                self.on_call(at, payload)
                done += 1
                if self.progress is not None:
                    self.progress(done / total, f"{done}/{total} calls")
            elif kind == "dispatch":
                self.on_dispatch(at, payload)
            elif kind == "ack":
                self.on_ack(at, payload)
            elif kind == "timer":
                self.on_timer(at, payload)
            elif kind == "clear":
                self.on_clear(at, payload)
            elif kind == "home":
                self.on_home(at, payload)
            elif kind == "tick":
                self.on_tick(at)
        for ctrl in self.controllers.values():
            ctrl.advance(limit)
            ctrl.finish()
            self.take_reports(ctrl)

    def ensure_tick(self, at_s: float) -> None:
        if not self.tick_scheduled:
            self.tick_scheduled = True
            self.push(float(math.ceil(at_s)), "tick")

    # ----------------------------------------------------------------------------- signals

    def controller(self, iid: int, now_s: float) -> SignalController:
        ctrl = self.controllers.get(iid)
        if ctrl is None:
            ctrl = SignalController(self.timings[iid], now_s=now_s, flow_factor=self.flow_factor)
            self.controllers[iid] = ctrl
        return ctrl

    def flow_factor(self, t: float) -> float:
        # Memoised: controllers ask for every second they step (always whole seconds, so the
        # memo holds at most one entry per simulated second of the drill).
        factor = self._flow_memo.get(t)
        if factor is None:
            factor = self._flow_memo[t] = HOURLY_FLOW[int(self.clock.hour_of_day(t)) % 24]
        return factor

    def lookup(self, iid: int, at_s: float) -> SignalView:
        ctrl = self.controller(iid, at_s)
        ctrl.advance(at_s)
        self.take_reports(ctrl)
        return ctrl.view()

    def take_reports(self, ctrl: SignalController) -> None:
        for rep in ctrl.data_to_send():
            if rep.status == "rejected":
                self.note_status(rep.request_id, granted=False)
            if rep.status != "served":
                continue
            grant = self.last_grant.get((rep.intersection_id, rep.request_id))
            self.served += 1
            if grant is not None:
                self.grants.append(grant.record())

    def submit(self, messages: Sequence[SignalRequest], now_s: float) -> None:
        """Messages through the arbiter; changed decisions on to the controllers."""
        now_at = self.clock.at(now_s)
        for req in messages:
            iid = req.intersection_id
            if iid not in self.timings:
                continue
            state = self.intersections.get(iid) or IntersectionState(intersection_id=iid)
            new = self.arbiter.decide(state, req, now=now_at)
            self.intersections[iid] = new
            self.forward(state, new, now_s)

    def forward(self, old: IntersectionState, new: IntersectionState, now_s: float) -> None:
        before = {d.request.request_id: d for d in old.decisions}
        granted: list[SignalDecision] = []
        for d in new.decisions:
            prev = before.get(d.request.request_id)
            rid = d.request.request_id
            iid = new.intersection_id
            was = prev is not None and prev.status is SignalStatus.GRANTED
            if d.status is SignalStatus.GRANTED and d.granted_from and d.granted_to:
                granted.append(d)
                if (
                    was
                    and prev is not None
                    and prev.granted_from == d.granted_from
                    and prev.granted_to == d.granted_to
                ):
                    continue
                grant = PriorityGrant(
                    request_id=rid,
                    intersection_id=iid,
                    axis=axis_for(d.request.inbound.label),
                    inbound=d.request.inbound.label,
                    outbound=d.request.outbound.label,
                    green_from_s=self.clock.seconds(d.granted_from),
                    green_to_s=self.clock.seconds(d.granted_to),
                    eta_s=self.clock.seconds(d.request.eta) + d.shift_s,
                    importance=d.request.importance,
                )
                self.last_grant[(iid, rid)] = grant
                self.note_status(rid, granted=True)
                ctrl = self.controller(iid, now_s)
                ctrl.receive(grant, now_s)
                self.take_reports(ctrl)
            elif was and d.status in (SignalStatus.CANCELLED, SignalStatus.REJECTED):
                if d.status is SignalStatus.REJECTED:
                    self.note_status(rid, granted=False)
                ctrl = self.controller(iid, now_s)
                ctrl.receive(PriorityCancel(request_id=rid, intersection_id=iid), now_s)
                self.take_reports(ctrl)
            elif d.status is SignalStatus.REJECTED and prev is None:
                self.note_status(rid, granted=False)
        # Independent check of the arbiter's promise: no two conflicting greens overlap.
        for i, a in enumerate(granted):
            for b in granted[i + 1 :]:
                assert a.granted_from and a.granted_to and b.granted_from and b.granted_to
                if (
                    movements_conflict(a.request, b.request)
                    and a.granted_from < b.granted_to
                    and b.granted_from < a.granted_to
                ):
                    self.grant_conflicts += 1

    def note_status(self, request_id: str, *, granted: bool) -> None:
        unit_id = request_id.split(":")[1]
        leg = self.active.get(unit_id) or self.pending.get(unit_id)
        if leg is None:
            return
        (leg.granted if granted else leg.rejected).add(request_id)

    # ----------------------------------------------------------------------------- calls

    # ----------------------------------------------------------------------------- calls

    def on_call(self, now: float, sc: ScheduledCall) -> None:
        call = sc.call
        open_incidents = [
            i for i in self.incidents.values() if i.status is not IncidentStatus.CLOSED
        ]
        target = find_merge_target(call, open_incidents, policy=self.policy)
        at = self.clock.at(now)
        if target is None:
            iid = f"I{len(self.incidents) + 1:05d}"
            plan = self.plans.for_call(call)
            inc = apply_call(None, call, incident_id=iid, plan=plan, now=at, stream_id=None)
            self.resp[iid] = _Resp(incident_id=iid, source=sc.source, first_call_s=now)
        else:
            cur = self.incidents[target.incident_id]
            inc = apply_call(
                cur, call, incident_id=cur.id, plan=self.plans.for_call(call, cur), now=at,
                stream_id=None, note=target.reason,
            )  # fmt: skip
        self.incidents[inc.id] = inc
        self.schedule_dispatch(inc.id, now)

    def schedule_dispatch(self, incident_id: str, now: float) -> None:
        r = self.resp[incident_id]
        if r.dispatch_pending:
            return
        r.dispatch_pending = True
        rng = substream(self.seed, "processing", incident_id, r.tries, len(r.legs))
        self.push(
            now + lognormal_s(rng, self.cfg.call_processing_median_s, 0.4), "dispatch", incident_id
        )

    def unmet(self, inc: Incident, r: _Resp) -> list[UnitNeed]:
        out: list[UnitNeed] = []
        for need in inc.needs:
            short = need.count - r.assigned.get((need.agency, need.unit_type), 0)
            if short > 0:
                out.append(UnitNeed(agency=need.agency, unit_type=need.unit_type, count=short))
        return out

    def on_dispatch(self, now: float, incident_id: str) -> None:
        inc = self.incidents[incident_id]
        r = self.resp[incident_id]
        r.dispatch_pending = False
        if inc.status is IncidentStatus.CLOSED:
            return
        if inc.whistle_eligible and inc.whistle_id is None:
            self.sound(now, inc, r)
            inc = self.incidents[incident_id]
        needs = self.unmet(inc, r)
        if not needs:
            return
        at = self.clock.at(now)
        agencies = {n.agency for n in needs}
        pool = [
            u
            for u in self.units.values()
            if u.agency in agencies and u.status in ASSIGNABLE_STATUSES
        ]
        origins = [self.unit_point(u) for u in pool]
        times = self.router.travel_times_to((inc.lat, inc.lon), origins) if pool else None
        travel = {
            u.id: Travel(
                eta_s=float(times.duration_s[i]),
                distance_m=float(times.distance_m[i]),
                from_station=False,
            )
            for i, u in enumerate(pool)
            if times is not None
        }
        ranked = rank_units(units=pool, needs=needs, travel=travel, now=at, stale_after_s=1e12)
        short = False
        for rec in ranked:
            by_id = {c.unit_id: c for c in rec.candidates}
            for uid in rec.suggested:
                cand = by_id[uid]
                need_type = cand.substitute_for or cand.unit_type
                key = (rec.agency, need_type)
                r.assigned[key] = r.assigned.get(key, 0) + 1
                self.assign(now, incident_id, r, self.units[uid])
            for miss in rec.missing:
                short = True
                r.missing.add(miss.unit_type.value)
        if short and r.tries < self.cfg.redispatch_tries:
            r.tries += 1
            self.push(now + self.cfg.redispatch_after_s, "dispatch", incident_id)
            r.dispatch_pending = True
        elif not short:
            r.missing.clear()

    def unit_point(self, unit: Unit) -> tuple[float, float]:
        if unit.position is not None:
            return unit.position.lat, unit.position.lon
        assert unit.station_lat is not None and unit.station_lon is not None
        return unit.station_lat, unit.station_lon

    def fix(self, unit_id: str, lat: float, lon: float, at_s: float) -> None:
        """The unit's terminal reports where it is (the only field fact dispatch keeps)."""
        unit = self.units[unit_id]
        pos = Position(lat=lat, lon=lon, at=self.clock.at(at_s))
        self.units[unit_id] = unit.model_copy(update={"position": pos})

    def hospital_for(self, inc: Incident) -> tuple[Hospital, Route] | None:
        """The hospital of an ambulance's transport leg and the route there, as the service.

        Every accepting hospital by road from the scene (:func:`choose_hospital`); memoised per
        scene, since every ambulance of an incident gets the same answer.
        """
        scene = (inc.lat, inc.lon)
        if scene in self._hospitals:
            return self._hospitals[scene]
        accepting = [h for h in self.fleet.hospitals if h.accepting]
        found: tuple[Hospital, Route] | None = None
        if accepting:
            times = self.router.travel_times_from(scene, [(h.lat, h.lon) for h in accepting])
            best = core.choose_hospital(accepting, [float(t) for t in times.duration_s])
            if best is not None:
                hospital = accepting[best]
                found = hospital, self.router.route(scene, (hospital.lat, hospital.lon))
        self._hospitals[scene] = found
        return found

    def assign(self, now: float, incident_id: str, r: _Resp, unit: Unit) -> None:
        inc = self.incidents[incident_id]
        route = self.router.route(self.unit_point(unit), (inc.lat, inc.lon))
        found = UnitRoutes(unit=unit, scene=route)
        if core.plans_transport(unit):
            choice = self.hospital_for(inc)
            if choice is not None:
                hospital, transport = choice
                found = UnitRoutes(unit=unit, scene=route, hospital=hospital, transport=transport)
        rng = substream(self.seed, "turnout", inc.id, unit.id)
        turnout = lognormal_s(rng, self.cfg.turnout_median_s[unit.agency], 0.3)
        depart = float(math.ceil(now + turnout))
        assigned = core.assign(
            inc,
            [found],
            actor=_ACTOR,
            now=self.clock.at(now),
            protected=r.greenwave_s is not None,
            departure=self.clock.at(depart),
            config=self.cfg.greenwave,
        )
        [moved], [record] = assigned.units, assigned.records
        self.incidents[inc.id] = assigned.incident
        self.units[unit.id] = moved
        self.records[unit.id] = record
        self.unit_epoch[unit.id] += 1
        leg = self.new_leg(record, LegKind.SCENE, now, depart)
        r.legs.append(leg)
        if record.greenwave_active:
            self.activate(record, now)

    def new_leg(self, record: AssignmentRecord, kind: LegKind, now: float, depart: float) -> _Leg:
        """The crew drives the route the assignment planned for this leg."""
        planned = record.scene if kind is LegKind.SCENE else record.transport
        assert planned is not None
        vehicle = VehicleSim(
            unit_id=record.unit_id,
            route=planned.route,
            depart_s=depart,
            kind=kind.value,
            signal_delay_s=self.router.profile.signal_delay_s,
            signal_nodes=self.signal_nodes,
            emit_positions=False,  # on_tick reads status changes and signals passed only
        )
        leg = _Leg(
            len(self.legs), record.unit_id, record.incident_id, kind, planned.route, now, depart,
            vehicle,
        )  # fmt: skip
        self.legs.append(leg)
        self.pending[record.unit_id] = leg
        self.ensure_tick(min(depart, now + 1.0))
        return leg

    def incident_records(self, incident_id: str) -> list[AssignmentRecord]:
        """The records of the units still assigned to an incident, in assignment order."""
        return [rec for rec in self.records.values() if rec.incident_id == incident_id]

    # ----------------------------------------------------------------------------- whistle

    def sound(self, now: float, inc: Incident, r: _Resp) -> None:
        centre = sounding_centre(inc)
        if centre is None:
            return  # neither 120 nor 119 dispatches it: nobody sounds (as the service)
        at = self.clock.at(now)
        rules = list(self.fleet.roster)
        duty = on_duty(duty_day(at), [], rules)
        wid = wh.whistle_id_for(inc.id)
        whistle, effects = wh.sound(
            whistle_id=wid,
            incident=inc,
            sounded_by=f"{centre.value}-dispatcher",
            centre=centre,
            duty=duty,
            now=at,
            ack_timeout_s=self.scenario.ack_timeout_s,
        )
        self.whistles[wid] = whistle
        self.incidents[inc.id] = inc.model_copy(update={"whistle_id": wid})
        r.whistle_id, r.whistle_s = wid, now
        self.apply_effects(now, whistle, effects)

    def coordinator(self, name: str) -> CoordinatorSim:
        c = self.coordinators.get(name)
        if c is None:
            c = CoordinatorSim(name, self.scenario.coordinators, seed=self.seed)
            self.coordinators[name] = c
        return c

    def apply_effects(self, now: float, whistle: wh.Whistle, effects: Sequence[wh.Effect]) -> None:
        for eff in effects:
            if isinstance(eff, wh.Summon):
                c = self.coordinator(eff.summons.coordinator)
                c.summon(whistle_id=eff.whistle_id, summons_id=eff.summons.id, now_s=now)
                due = c.next_due_s()
                if due is not None:
                    self.push(due, "ack", c.name)
            elif isinstance(eff, wh.ScheduleTimer):
                self.push(self.clock.seconds(eff.due), "timer", (eff.whistle_id, eff.summons_id))
            elif isinstance(eff, wh.StandDown):
                self.coordinator(eff.summons.coordinator).stand_down(eff.summons.id)
            elif isinstance(eff, wh.EnableGreenWave):
                r = self.resp[eff.incident_id]
                if r.greenwave_s is None:
                    r.greenwave_s = now
                    for on in core.protect(self.incident_records(eff.incident_id)):
                        self.records[on.unit_id] = on
                        self.activate(on, now)
            # CancelTimer: on_timeout ignores settled summons; AlertCentre: kept on the whistle.
        self.whistles[whistle.id] = whistle

    def on_ack(self, now: float, name: str) -> None:
        c = self.coordinator(name)
        for due in c.step(now):
            whistle = self.whistles.get(due.whistle_id)
            if whistle is None:
                continue
            try:
                new, effects = wh.ack(whistle, coordinator=name, now=self.clock.at(due.at_s))
            except ConflictError:
                continue  # closed meanwhile: the late ack is moot
            self.apply_effects(now, new, effects)
        nxt = c.next_due_s()
        if nxt is not None:
            self.push(nxt, "ack", name)

    def on_timer(self, now: float, payload: tuple[str, str]) -> None:
        wid, sid = payload
        whistle = self.whistles[wid]
        new, effects = wh.on_timeout(whistle, summons_id=sid, now=self.clock.at(now))
        self.apply_effects(now, new, effects)

    # ----------------------------------------------------------------------------- green wave

    def driving(self, unit_id: str) -> _Leg | None:
        return self.active.get(unit_id) or self.pending.get(unit_id)

    def send(self, record: AssignmentRecord, update: PlanUpdate, now_s: float) -> None:
        """Keep a re-planned leg on its record and send what is worth sending.

        The service's step (``dispatch.flow.greenwave.GreenWave.send``): the messages worth a
        controller's hearing are :func:`routing.greenwave.outgoing`'s, with the same re-timing
        threshold (``GreenWaveConfig.retime_s``).
        """
        leg = record.leg()
        if leg is None:
            return
        messages, sent = (
            outgoing(update.requests, record.sent_eta, retime_s=self.cfg.greenwave.retime_s)
            if record.greenwave_active
            else ([], record.sent_eta)
        )
        new_leg = leg.model_copy(update={"route": update.plan.route, "greenwave": update.plan})
        self.records[record.unit_id] = record.model_copy(
            update={leg.kind.value: new_leg, "sent_eta": sent, "version": record.version + 1}
        )
        drive = self.driving(record.unit_id)
        if drive is not None:
            drive.last_replan_s = now_s
            if messages and drive.gw_start_s is None:
                drive.gw_start_s = now_s
        self.submit(messages, now_s)

    def activate(self, record: AssignmentRecord, now_s: float) -> None:
        """Send the first requests of a protected record (``GreenWave.activate``).

        A unit on its way is re-planned from where it is; one still at its start gets the plan
        from its departure.
        """
        leg = record.leg()
        drive = self.driving(record.unit_id)
        if not record.greenwave_active or record.sent_eta or leg is None or drive is None:
            return
        if drive.vehicle.started:
            update = replan_from_position(
                leg.greenwave,
                position=drive.vehicle.position(),
                now=self.clock.at(now_s),
                config=self.cfg.greenwave,
            )
        else:
            update = plan_green_wave(
                leg.route,
                departure=leg.greenwave.departure,
                requester=leg.greenwave.requester,
                config=self.cfg.greenwave,
            )
        self.send(record, update, now_s)

    def replan(self, record: AssignmentRecord, leg: _Leg, now: float) -> None:
        planned = record.leg()
        assert planned is not None
        update = replan_from_position(
            planned.greenwave,
            position=leg.vehicle.position(),
            now=self.clock.at(now),
            config=self.cfg.greenwave,
        )
        self.send(record, update, now)

    # ----------------------------------------------------------------------------- the crews

    def report_status(self, unit_id: str, status: UnitStatus, at_s: float) -> None:
        """A crew's status report, applied as the service does (:func:`core.on_status`)."""
        record = self.records.get(unit_id)
        incident = self.incidents.get(record.incident_id) if record is not None else None
        change = core.on_status(
            self.units[unit_id],
            record,
            incident,
            status,
            now=self.clock.at(at_s),
            config=self.cfg.greenwave,
        )
        self.units[unit_id] = change.unit
        if change.record is None:
            self.records.pop(unit_id, None)
        else:
            self.records[unit_id] = change.record
        if change.incident is not None:
            self.incidents[change.incident.id] = change.incident
        self.submit(change.cancels, at_s)
        if change.activate and change.record is not None:
            self.activate(change.record, at_s)

    def on_tick(self, now: float) -> None:
        self.tick_scheduled = False
        for uid in sorted(self.pending):
            leg = self.pending[uid]
            if leg.depart_s < now + 1.0:
                del self.pending[uid]
                self.active[uid] = leg
        for uid in sorted(self.active):
            leg = self.active[uid]
            outs = leg.vehicle.step(now, self.lookup)
            passed = False
            for out in outs:
                if isinstance(out, StatusChange):
                    if out.status in (UnitStatus.EN_ROUTE, UnitStatus.TRANSPORTING):
                        self.report_status(uid, out.status, out.at_s)
                    else:
                        self.finish_leg(leg, out.at_s)
                elif isinstance(out, SignalPassed):
                    passed = True
            if leg.vehicle.done:
                continue
            if now - leg.depart_s > self.cfg.max_drive_s:
                leg.vehicle.done = True
                leg.vehicle.arrived_s = now
                self.finish_leg(leg, now)
                continue
            record = self.records.get(uid)
            planned = record.leg() if record is not None else None
            if record is not None and planned is not None and leg.gw_start_s is not None:
                elapsed = now + 1.0 - leg.last_replan_s
                drift = abs(planned.greenwave.progress_s + elapsed - leg.vehicle.route_time_s)
                if passed or elapsed >= self.cfg.replan_every_s or drift >= self.cfg.replan_drift_s:
                    self.replan(record, leg, now + 1.0)
        if self.active or self.pending:
            self.tick_scheduled = True
            self.push(now + 1.0, "tick")

    def finish_leg(self, leg: _Leg, at: float) -> None:
        """The vehicle arrived (or was cut off): the crew reports it and stays a while."""
        self.active.pop(leg.unit_id, None)
        arrived = UnitStatus.ON_SCENE if leg.kind is LegKind.SCENE else UnitStatus.AT_HOSPITAL
        self.report_status(leg.unit_id, arrived, at)
        self.fix(leg.unit_id, leg.route.destination.lat, leg.route.destination.lon, at)
        if leg.kind is LegKind.SCENE:
            unit = self.units[leg.unit_id]
            rng = substream(self.seed, "on-scene", leg.incident_id, leg.unit_id)
            stay = lognormal_s(rng, self.cfg.on_scene_median_s[unit.agency], 0.4)
            self.push(at + stay, "clear", leg)
            self.maybe_close_whistle(leg.incident_id, at)
        else:
            rng = substream(self.seed, "handover", leg.incident_id, leg.unit_id)
            self.push(at + lognormal_s(rng, self.cfg.handover_median_s, 0.3), "clear", leg)

    def maybe_close_whistle(self, incident_id: str, at: float) -> None:
        r = self.resp[incident_id]
        if r.whistle_id is None:
            return
        if any(leg.kind is LegKind.SCENE and not leg.vehicle.done for leg in r.legs):
            return
        whistle = self.whistles[r.whistle_id]
        new, effects = wh.close(whistle, now=self.clock.at(at))
        self.apply_effects(at, new, effects)

    def on_clear(self, now: float, leg: _Leg) -> None:
        """The crew is done here: it takes its patient to hospital, or is available again."""
        inc = self.incidents[leg.incident_id]
        r = self.resp[leg.incident_id]
        record = self.records.get(leg.unit_id)
        if (
            leg.kind is LegKind.SCENE
            and record is not None
            and record.transport is not None
            and takes_patient(inc)
        ):
            # The transport leg the assignment planned; the crew reports ``transporting`` as
            # it drives off (the vehicle's departure), which re-times that leg's green wave.
            r.legs.append(self.new_leg(record, LegKind.TRANSPORT, now, float(math.ceil(now))))
            return
        self.report_status(leg.unit_id, UnitStatus.AVAILABLE, now)
        if not self.incident_records(inc.id) and not r.dispatch_pending:
            self.close(inc.id, now)
        unit = self.units[leg.unit_id]
        epoch = self.unit_epoch[unit.id]
        home = (unit.station_lat or 0.0, unit.station_lon or 0.0)
        back = self.router.travel_times_to(home, [self.unit_point(unit)])
        self.push(now + float(back.duration_s[0]) * 1.3, "home", (unit.id, epoch))

    def close(self, incident_id: str, now: float) -> None:
        """The last unit cleared: close the incident as the service does (:func:`core.close`)."""
        records = self.incident_records(incident_id)
        closed = core.close(
            self.incidents[incident_id],
            records,
            [self.units[rec.unit_id] for rec in records],
            now=self.clock.at(now),
            config=self.cfg.greenwave,
        )
        self.incidents[incident_id] = closed.incident
        for unit in closed.units:
            self.units[unit.id] = unit
        for rec in closed.records:
            self.records.pop(rec.unit_id, None)
        self.submit(closed.cancels, now)

    def on_home(self, now: float, payload: tuple[str, int]) -> None:
        uid, epoch = payload
        unit = self.units[uid]
        if self.unit_epoch[uid] != epoch or unit.status is not UnitStatus.AVAILABLE:
            return  # reassigned on the way back
        assert unit.station_lat is not None and unit.station_lon is not None
        self.fix(uid, unit.station_lat, unit.station_lon, now)


# ------------------------------------------------------------------------------- baseline


def _drive_without(leg: _Leg, timings: dict[int, SignalTiming], engine: _Engine) -> VehicleSim:
    """The same leg again: same route and departure, fixed-time signals, no requests."""
    vehicle = VehicleSim(
        unit_id=leg.unit_id,
        route=leg.route,
        depart_s=leg.depart_s,
        kind=leg.kind.value,
        signal_delay_s=engine.router.profile.signal_delay_s,
        signal_nodes=engine.signal_nodes,
        emit_positions=False,
    )
    controllers: dict[int, SignalController] = {}

    def lookup(iid: int, at_s: float) -> SignalView:
        ctrl = controllers.get(iid)
        if ctrl is None:
            ctrl = SignalController(timings[iid], now_s=at_s, flow_factor=engine.flow_factor)
            controllers[iid] = ctrl
        ctrl.advance(at_s)
        return ctrl.view()

    t = math.floor(leg.depart_s)
    stop = leg.depart_s + engine.cfg.max_drive_s
    while not vehicle.done and t <= stop:
        vehicle.step(float(t), lookup)
        t += 1
    if not vehicle.done:
        vehicle.done, vehicle.arrived_s = True, float(t)
    return vehicle


# ------------------------------------------------------------------------------- public


def run_batch(
    router: Router,
    scenario: Scenario,
    seed: int,
    *,
    config: DrillConfig | None = None,
    fleet: SimFleet | None = None,
    progress: Progress | None = None,
) -> DrillReport:
    """Run a scenario on a simulated clock and report it (see the module docstring).

    Args:
        router: the map (emergency profile, as the service routes).
        scenario: what happens (``simulators.scenarios.load_scenario``).
        seed: every random draw derives from it; the same seed gives the same report.
        config: model tuning.
        fleet: units, hospitals and roster; generated from the map (seeded) when omitted.
        progress: called with ``(fraction of calls processed, label)``.

    Returns:
        The report.

    Raises:
        ValueError: a scenario place cannot be resolved on this map.
    """
    cfg = config or DrillConfig()
    engine = _Engine(router, scenario, seed, cfg, fleet, progress)
    engine.run()
    if progress is not None:
        progress(1.0, "re-driving without green wave")
    baseline = {leg.leg_id: _drive_without(leg, engine.timings, engine) for leg in engine.legs}
    return _report(engine, baseline)


def _leg_record(engine: _Engine, leg: _Leg, base: VehicleSim) -> LegRecord:
    unit = engine.units[leg.unit_id]
    v = leg.vehicle
    arrived = v.arrived_s if v.arrived_s is not None else leg.depart_s
    base_arrived = base.arrived_s if base.arrived_s is not None else leg.depart_s
    return LegRecord(
        unit_id=leg.unit_id,
        agency=unit.agency,
        unit_type=unit.type,
        leg=leg.kind,
        dispatched_s=round(leg.dispatched_s, 3),
        depart_s=round(leg.depart_s, 3),
        distance_m=round(leg.route.distance_m, 1),
        signals=len(leg.route.signals),
        planned_s=round(leg.route.duration_s, 3),
        drive_s_with=round(arrived - leg.depart_s, 3),
        drive_s_without=round(base_arrived - leg.depart_s, 3),
        dispatch_to_arrival_s=round(arrived - leg.dispatched_s, 3),
        stops_with=sum(1 for p in v.passed if p.stopped),
        stops_without=sum(1 for p in base.passed if p.stopped),
        signal_lost_s_with=round(sum(p.lost_s for p in v.passed), 3),
        signal_lost_s_without=round(sum(p.lost_s for p in base.passed), 3),
        greenwave=leg.gw_start_s is not None,
        greenwave_after_s=None
        if leg.gw_start_s is None
        else round(leg.gw_start_s - leg.depart_s, 3),
        requests_granted=len(leg.granted),
        requests_rejected=len(leg.rejected),
    )


def _report(engine: _Engine, baseline: dict[int, VehicleSim]) -> DrillReport:
    clock = engine.clock
    responses: list[ResponseRecord] = []
    with_gw: list[tuple[float, float, float]] = []
    transports: list[tuple[float, float]] = []
    call_to_whistle: list[float] = []
    to_ack: list[float] = []
    escalations = 0
    missing_total = 0
    for iid in sorted(engine.incidents):
        inc = engine.incidents[iid]
        r = engine.resp[iid]
        legs = [_leg_record(engine, leg, baseline[leg.leg_id]) for leg in r.legs]
        scene = [rec for rec in legs if rec.leg == "scene"]
        arr_with = mean_or_none([rec.drive_s_with for rec in scene])
        arr_without = mean_or_none([rec.drive_s_without for rec in scene])
        acks: list[AckRecord] = []
        n_esc = 0
        if r.whistle_id is not None:
            whistle = engine.whistles[r.whistle_id]
            for s in whistle.summons:
                delay = (
                    round((s.acked_at - whistle.sounded_at).total_seconds(), 3)
                    if s.acked_at is not None
                    else None
                )
                acks.append(
                    AckRecord(
                        agency=s.agency,
                        coordinator=s.coordinator,
                        tier=s.tier.value,
                        status=s.status.value,
                        whistle_to_ack_s=delay,
                    )
                )
                if delay is not None:
                    to_ack.append(delay)
            n_esc = len(whistle.escalations)
            escalations += n_esc
            assert r.whistle_s is not None
            call_to_whistle.append(r.whistle_s - r.first_call_s)
        gw = r.greenwave_s is not None and any(rec.greenwave for rec in scene)
        improved = None
        if gw and arr_with is not None and arr_without is not None:
            improved = arr_with <= arr_without - 0.5
            planned = statistics.fmean(rec.planned_s for rec in scene)
            with_gw.append((arr_with, arr_without, planned))
            transports.extend(
                (rec.drive_s_with, rec.drive_s_without) for rec in legs if rec.leg == "transport"
            )
        missing_total += len(r.missing)
        responses.append(
            ResponseRecord(
                incident_id=iid,
                source=r.source,
                call_types=list(inc.call_types),
                centres=list(inc.centres),
                calls=len(inc.calls),
                priority=inc.priority,
                first_call_at=clock.at(r.first_call_s),
                whistle=r.whistle_id is not None,
                call_to_whistle_s=None
                if r.whistle_s is None
                else round(r.whistle_s - r.first_call_s, 3),
                acks=acks,
                escalations=n_esc,
                greenwave_enabled_after_s=None
                if r.greenwave_s is None or r.whistle_s is None
                else round(r.greenwave_s - r.whistle_s, 3),
                legs=legs,
                missing=sorted(r.missing),
                arrival_s_with=arr_with,
                arrival_s_without=arr_without,
                improved=improved,
            )
        )
    signals, cross_added, cross_base = _signal_records(engine, baseline)
    summary = summarize(
        calls=len(engine.calls),
        responses=responses,
        legs=len(engine.legs),
        with_gw=with_gw,
        transports=transports,
        call_to_whistle=call_to_whistle,
        to_ack=to_ack,
        escalations=escalations,
        granted=sum(len(leg.granted) for leg in engine.legs),
        rejected=sum(len(leg.rejected) for leg in engine.legs),
        served=engine.served,
        conflicts=engine.grant_conflicts,
        cross_added=cross_added,
        cross_base=cross_base,
        missing=missing_total,
    )
    g = engine.router.graph
    scenario = engine.scenario
    return DrillReport(
        drill_id=f"{scenario.name}-s{engine.seed}",
        scenario=scenario.name,
        description=scenario.description,
        seed=engine.seed,
        graph={
            "source": str(g.meta.get("source", "")).rsplit("/", 1)[-1],
            "nodes": g.node_count,
            "edges": g.edge_count,
            "signals": g.signal_count,
        },
        start=scenario.start,
        duration_h=scenario.duration_h,
        summary=summary,
        responses=responses,
        signals=signals,
        grants=sorted(
            engine.grants, key=lambda x: (x.intersection_id, x.green_from_s, x.request_id)
        ),
    )


def _signal_records(
    engine: _Engine, baseline: dict[int, VehicleSim]
) -> tuple[list[SignalRecord], float, float]:
    g = engine.router.graph
    lost_with: dict[int, list[float]] = {}
    lost_without: dict[int, float] = {}
    for leg in engine.legs:
        for p in leg.vehicle.passed:
            lost_with.setdefault(p.intersection_id, []).append(p.lost_s)
        for p in baseline[leg.leg_id].passed:
            lost_without[p.intersection_id] = lost_without.get(p.intersection_id, 0.0) + p.lost_s
    served: dict[int, int] = {}
    for gr in engine.grants:
        served[gr.intersection_id] = served.get(gr.intersection_id, 0) + 1
    rejected: dict[int, int] = {}
    for leg in engine.legs:
        for rid in leg.rejected:
            iid = int(rid.rsplit(":", 1)[1])
            rejected[iid] = rejected.get(iid, 0) + 1
    return signal_records(
        g, engine.timings, engine.controllers, lost_with, lost_without, served, rejected
    )


def signal_records(
    graph: RoadGraph,
    timings: Mapping[int, SignalTiming],
    controllers: Mapping[int, SignalController],
    lost_with: Mapping[int, list[float]],
    lost_without: Mapping[int, float],
    served: Mapping[int, int],
    rejected: Mapping[int, int],
) -> tuple[list[SignalRecord], float, float]:
    """One record per signal a drive passed or a controller served (batch and live alike).

    Args:
        graph: the map, for each signal's place.
        timings, controllers: the drill's signal plans and the controllers that ran them.
        lost_with: per signal, the time each pass lost with the green wave.
        lost_without: per signal, the time lost by the same passes re-driven without it.
        served, rejected: per signal, how many priority requests were served / refused.

    Returns:
        The records, the cross-street delay added and its baseline (vehicle-seconds).
    """
    index = {int(o): i for i, o in enumerate(graph.node_osmid.tolist())}
    added_total = base_total = 0.0
    out: list[SignalRecord] = []
    for iid in sorted(set(lost_with) | set(lost_without) | set(served)):
        if iid not in index:
            continue
        added, base, extra_red = cross_delay(controllers.get(iid))
        added_total += added
        base_total += base
        i = index[iid]
        w = sum(lost_with.get(iid, []))
        wo = lost_without.get(iid, 0.0)
        out.append(
            SignalRecord(
                intersection_id=iid,
                lat=float(graph.node_lat[i]),
                lon=float(graph.node_lon[i]),
                cycle_s=timings[iid].cycle_s,
                passes=len(lost_with.get(iid, [])),
                lost_s_with=round(w, 3),
                lost_s_without=round(wo, 3),
                saved_s=round(wo - w, 3),
                served=served.get(iid, 0),
                rejected=rejected.get(iid, 0),
                cross_delay_added_veh_s=round(added, 3),
                cross_baseline_veh_s=round(base, 3),
                extra_red_s_cross=extra_red,
            )
        )
    return out, added_total, base_total


def drill_times(report: DrillReport) -> dict[str, float | None]:
    """The headline numbers as a flat dict (for a one-line CLI print)."""
    s = report.summary
    return {
        "mean_arrival_s_with": s.mean_arrival_s_with,
        "mean_arrival_s_without": s.mean_arrival_s_without,
        "arrival_change_pct": s.arrival_change_pct,
        "improved_share": s.improved_share,
        "cross_delay_added_pct": s.cross_delay_added_pct,
    }
