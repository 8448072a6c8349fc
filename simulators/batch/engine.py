"""The batch engine: one event queue on simulated seconds, deciding with the service's core.

Calls, dispatch decisions, coordinators' acks, whistle timers, crews clearing and vehicles'
seconds are events on one queue. Every decision the service makes is made by the same
function of :mod:`dispatch.core` the service calls (merge, the merged plan, ranking, the
whistle, assignment, unit status, close) and :mod:`routing.greenwave` (plans, re-plans, the
messages worth sending); the engine keeps the state the service would store (incidents, units,
one :class:`AssignmentRecord` per busy unit, whistles) and stands in for the field: vehicles,
crews (turnout, time on scene, whether the patient goes to hospital), coordinators and the
signal network (:class:`SignalNetwork`).

Vehicles move on a 1 s tick while any is driving; controllers are advanced lazily (analytically
while they follow their plan), so a day of calls on 1,300 signals takes seconds.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatch.core import assign as core
from dispatch.core import whistle as wh
from dispatch.core.assign import AssignmentRecord, LegKind, UnitRoutes
from dispatch.core.merge import MergePolicy, apply_call, find_merge_target
from dispatch.core.pivot_plan import Plan, Post, active_posts, band_ends_at
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
from routing import Route, Router
from routing.greenwave import (
    PlanUpdate,
    Requester,
    outgoing,
    plan_green_wave,
    replan_from_position,
)

from ..calls import ScheduledCall, generate_calls
from ..clock import SimClock, lognormal_s, substream
from ..config import DrillConfig
from ..coordinators import CoordinatorSim
from ..fleet import SimFleet, generate_fleet
from ..patients import takes_patient
from ..places import PlaceFinder
from ..scenarios import Scenario
from ..signals import make_timings
from ..vehicles import SignalPassed, StatusChange, VehicleSim
from .network import SignalNetwork

Progress = Callable[[float, str], None]


@dataclass
class Drive:
    """One drive as the field made it: a vehicle on the route of its assignment's leg."""

    drive_id: int
    unit_id: str
    incident_id: str
    kind: LegKind
    route: Route
    dispatched_s: float
    depart_s: float
    vehicle: VehicleSim
    gw_start_s: float | None = None
    requester: Requester | None = None  # who asked for the green wave (when it had one)
    last_replan_s: float = 0.0
    granted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)


@dataclass
class ResponseLog:
    """What the drill keeps of one incident's response besides the incident itself."""

    incident_id: str
    source: str
    first_call_s: float
    whistle_id: str | None = None
    whistle_s: float | None = None
    greenwave_s: float | None = None
    drives: list[Drive] = field(default_factory=list)
    # Units assigned per need (a substitute counts for the type it stands in for).
    assigned: dict[tuple[Agency, UnitType], int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    tries: int = 0
    dispatch_pending: bool = False


_PRIORITY = {
    "pivots": -1,
    "call": 0,
    "dispatch": 1,
    "ack": 2,
    "timer": 3,
    "clear": 4,
    "home": 5,
    "tick": 9,
}
# The drill's dispatchers, as the assignment records name them.
_ACTOR = "drill-dispatcher"


class Engine:
    """One batch run (see the module docstring): :meth:`run` plays the whole scenario."""

    def __init__(
        self,
        router: Router,
        scenario: Scenario,
        seed: int,
        config: DrillConfig,
        fleet: SimFleet | None,
        progress: Progress | None,
        pivots: Plan | None = None,
    ) -> None:
        self.router = router
        # Pivot posts: the plan, and the police unit standing at each post standing now.
        self.pivots = pivots
        self.posted: dict[str, Post] = {}
        self.posts_standing_max = 0
        self.units_posted_max = 0
        self.scenario = scenario
        self.seed = seed
        self.cfg = config
        self.progress = progress
        self.clock = SimClock(scenario.start)
        g = router.graph
        self.signal_nodes = frozenset(int(x) for x in g.node_osmid[g.node_signal].tolist())
        self.network = SignalNetwork(make_timings(g, seed=seed), self.clock, self.note_outcome)
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
        self.resp: dict[str, ResponseLog] = {}
        self.drives: list[Drive] = []
        self.active: dict[str, Drive] = {}
        self.pending: dict[str, Drive] = {}
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
        if self.pivots is not None:
            self.push(0.0, "pivots")
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
            elif kind == "pivots":
                self.on_pivots(at)
        self.network.finish(limit)

    def ensure_tick(self, at_s: float) -> None:
        if not self.tick_scheduled:
            self.tick_scheduled = True
            self.push(float(math.ceil(at_s)), "tick")

    def note_outcome(self, request_id: str, granted: bool) -> None:
        """Book a grant or refusal to the drive of the unit that asked."""
        unit_id = request_id.split(":")[1]
        drive = self.driving(unit_id)
        if drive is not None:
            (drive.granted if granted else drive.rejected).add(request_id)

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
            self.resp[iid] = ResponseLog(incident_id=iid, source=sc.source, first_call_s=now)
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
        rng = substream(self.seed, "processing", incident_id, r.tries, len(r.drives))
        self.push(
            now + lognormal_s(rng, self.cfg.call_processing_median_s, 0.4), "dispatch", incident_id
        )

    def unmet(self, inc: Incident, r: ResponseLog) -> list[UnitNeed]:
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
        """The unit's terminal reports where it is (its next route and ranking start there)."""
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

    def assign(self, now: float, incident_id: str, r: ResponseLog, unit: Unit) -> None:
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
        drive = self.new_drive(record, LegKind.SCENE, now, depart)
        r.drives.append(drive)
        if record.greenwave_active:
            self.activate(record, now)

    def new_drive(
        self, record: AssignmentRecord, kind: LegKind, now: float, depart: float
    ) -> Drive:
        """The crew drives the route the assignment planned for this leg."""
        planned = record.scene if kind is LegKind.SCENE else record.transport
        assert planned is not None
        vehicle = VehicleSim(
            unit_id=record.unit_id,
            route=planned.route,
            depart_s=depart,
            kind=kind,
            signal_delay_s=self.router.profile.signal_delay_s,
            signal_nodes=self.signal_nodes,
            emit_positions=False,  # on_tick reads status changes and signals passed only
            bluelight=self.cfg.bluelight,
        )
        drive = Drive(
            drive_id=len(self.drives),
            unit_id=record.unit_id,
            incident_id=record.incident_id,
            kind=kind,
            route=planned.route,
            dispatched_s=now,
            depart_s=depart,
            vehicle=vehicle,
        )
        self.drives.append(drive)
        self.pending[record.unit_id] = drive
        self.ensure_tick(min(depart, now + 1.0))
        return drive

    def incident_records(self, incident_id: str) -> list[AssignmentRecord]:
        """The records of the units still assigned to an incident, in assignment order."""
        return [rec for rec in self.records.values() if rec.incident_id == incident_id]

    # ----------------------------------------------------------------------------- whistle

    def sound(self, now: float, inc: Incident, r: ResponseLog) -> None:
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

    def driving(self, unit_id: str) -> Drive | None:
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
            outgoing(
                update.requests,
                record.sent_eta,
                retime_s=self.cfg.greenwave.retime_s,
                retime_share=self.cfg.greenwave.retime_share,
            )
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
                drive.requester = leg.greenwave.requester
        self.network.submit(messages, now_s)

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

    def replan(self, record: AssignmentRecord, drive: Drive, now: float) -> None:
        planned = record.leg()
        assert planned is not None
        update = replan_from_position(
            planned.greenwave,
            position=drive.vehicle.position(),
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
        self.network.submit(change.cancels, at_s)
        if change.activate and change.record is not None:
            self.activate(change.record, at_s)

    def on_tick(self, now: float) -> None:
        self.tick_scheduled = False
        for uid in sorted(self.pending):
            drive = self.pending[uid]
            if drive.depart_s < now + 1.0:
                del self.pending[uid]
                self.active[uid] = drive
        for uid in sorted(self.active):
            drive = self.active[uid]
            outs = drive.vehicle.step(now, self.network.lookup)
            passed = False
            for out in outs:
                if isinstance(out, StatusChange):
                    if out.status in (UnitStatus.EN_ROUTE, UnitStatus.TRANSPORTING):
                        self.report_status(uid, out.status, out.at_s)
                    else:
                        self.finish_drive(drive, out.at_s)
                elif isinstance(out, SignalPassed):
                    passed = True
            if drive.vehicle.done:
                continue
            if now - drive.depart_s > self.cfg.max_drive_s:
                drive.vehicle.done = True
                drive.vehicle.arrived_s = now
                self.finish_drive(drive, now)
                continue
            record = self.records.get(uid)
            planned = record.leg() if record is not None else None
            if record is not None and planned is not None and drive.gw_start_s is not None:
                elapsed = now + 1.0 - drive.last_replan_s
                drift = abs(planned.greenwave.progress_s + elapsed - drive.vehicle.route_time_s)
                if passed or elapsed >= self.cfg.replan_every_s or drift >= self.cfg.replan_drift_s:
                    self.replan(record, drive, now + 1.0)
        if self.active or self.pending:
            self.tick_scheduled = True
            self.push(now + 1.0, "tick")

    def finish_drive(self, drive: Drive, at: float) -> None:
        """The vehicle arrived (or was cut off): the crew reports it and stays a while."""
        self.active.pop(drive.unit_id, None)
        arrived = UnitStatus.ON_SCENE if drive.kind is LegKind.SCENE else UnitStatus.AT_HOSPITAL
        self.report_status(drive.unit_id, arrived, at)
        self.fix(drive.unit_id, drive.route.destination.lat, drive.route.destination.lon, at)
        if drive.kind is LegKind.SCENE:
            unit = self.units[drive.unit_id]
            rng = substream(self.seed, "on-scene", drive.incident_id, drive.unit_id)
            stay = lognormal_s(rng, self.cfg.on_scene_median_s[unit.agency], 0.4)
            self.push(at + stay, "clear", drive)
            self.maybe_close_whistle(drive.incident_id, at)
        else:
            rng = substream(self.seed, "handover", drive.incident_id, drive.unit_id)
            self.push(at + lognormal_s(rng, self.cfg.handover_median_s, 0.3), "clear", drive)

    def maybe_close_whistle(self, incident_id: str, at: float) -> None:
        r = self.resp[incident_id]
        if r.whistle_id is None:
            return
        if any(drive.kind is LegKind.SCENE and not drive.vehicle.done for drive in r.drives):
            return
        whistle = self.whistles[r.whistle_id]
        new, effects = wh.close(whistle, now=self.clock.at(at))
        self.apply_effects(at, new, effects)

    def on_clear(self, now: float, drive: Drive) -> None:
        """The crew is done here: it takes its patient to hospital, or is available again."""
        inc = self.incidents[drive.incident_id]
        r = self.resp[drive.incident_id]
        record = self.records.get(drive.unit_id)
        if (
            drive.kind is LegKind.SCENE
            and record is not None
            and record.transport is not None
            and takes_patient(inc)
        ):
            # The transport leg the assignment planned; the crew reports ``transporting`` as
            # it drives off (the vehicle's departure), which re-times that leg's green wave.
            r.drives.append(self.new_drive(record, LegKind.TRANSPORT, now, float(math.ceil(now))))
            return
        self.report_status(drive.unit_id, UnitStatus.AVAILABLE, now)
        if not self.incident_records(inc.id) and not r.dispatch_pending:
            self.close(inc.id, now)
        unit = self.units[drive.unit_id]
        epoch = self.unit_epoch[unit.id]
        home = self.base(unit)
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
        self.network.submit(closed.cancels, now)

    def on_home(self, now: float, payload: tuple[str, int]) -> None:
        uid, epoch = payload
        unit = self.units[uid]
        if self.unit_epoch[uid] != epoch or unit.status is not UnitStatus.AVAILABLE:
            return  # reassigned on the way back
        self.fix(uid, *self.base(unit), now)

    # ----------------------------------------------------------------------------- pivots

    def base(self, unit: Unit) -> tuple[float, float]:
        """Where a free unit returns to: its pivot post while posted there, else its station."""
        post = self.posted.get(unit.id)
        if post is not None:
            return post.lat, post.lon
        assert unit.station_lat is not None and unit.station_lon is not None
        return unit.station_lat, unit.station_lon

    def on_pivots(self, now: float) -> None:
        """A band of the plan begins: postings at posts that no longer stand end (the unit
        goes home), and every standing post without a unit gets the nearest free police unit
        (at most ``pivot_share`` of the police fleet is posted at once), as a dispatcher would
        post them in service. A posted unit stands at its post from now (the drive there is not
        simulated) and returns to it after a job while the post stands."""
        assert self.pivots is not None
        at = self.clock.at(now)
        standing = {p.id: p for p in active_posts(self.pivots, at)}
        for uid, post in list(self.posted.items()):
            if post.id not in standing:
                del self.posted[uid]
                unit = self.units[uid]
                if unit.status is UnitStatus.AVAILABLE:
                    self.fix(uid, *self.base(unit), now)
        police = [u for u in self.units.values() if u.agency is Agency.POLICE]
        cap = int(len(police) * self.cfg.pivot_share)
        manned = {p.id for p in self.posted.values()}
        for post in sorted(standing.values(), key=lambda p: p.rank):
            if len(self.posted) >= cap:
                break
            if post.id in manned:
                continue
            free = [
                u for u in police if u.id not in self.posted and u.status is UnitStatus.AVAILABLE
            ]
            if not free:
                break
            lat0 = math.cos(math.radians(post.lat))
            nearest = min(
                free,
                key=lambda u: math.hypot(
                    self.unit_point(u)[0] - post.lat, (self.unit_point(u)[1] - post.lon) * lat0
                ),
            )
            self.posted[nearest.id] = post
            self.fix(nearest.id, post.lat, post.lon, now)
        self.posts_standing_max = max(self.posts_standing_max, len(standing))
        self.units_posted_max = max(self.units_posted_max, len(self.posted))
        nxt = (band_ends_at(self.pivots, at) - self.clock.at(0.0)).total_seconds()
        if nxt <= self.end_s:
            self.push(nxt, "pivots")
