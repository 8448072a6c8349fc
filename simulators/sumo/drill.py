"""``yishao drill --engine sumo``: the green wave measured in SUMO, against the bluelight baseline.

What is decided, and by whom:

* **The responses** are the batch drill's (:func:`simulators.batch.run_batch`'s engine): the
  service's decision core picks units, hospitals and routes and says which legs are protected.
  The protected drives that leave inside the measured window are the emergency vehicles here.
* **The field** is SUMO's: background traffic from SUMO's ``randomTrips`` (routed by
  ``duarouter``) at a demand level, the OSM signals as SUMO's fixed-time lights, and every
  emergency vehicle a SUMO vehicle of vClass ``emergency`` that may pass a red light, slowly
  (``jmDriveRedSpeed``) and yielding to the foe traffic that has green, as Chinese law allows
  with care (see :func:`ev_types_file`: what SUMO's bluelight device grants, without the device,
  which crashes SUMO 1.28). That is the baseline, not a car that waits through every red.
* **The green wave** is the service's: the plan (:func:`routing.greenwave.plan_green_wave`),
  sent when the batch drill's service sent it (at the assignment, the crew's turnout before the
  vehicle leaves: ``SumoDrillConfig.plan_at_dispatch``; before, at SUMO's departure, which left
  the first lights of a route too little time for a safe early green), re-timed from the
  vehicle's SUMO position every ``replan_every_s`` as its terminal would report it
  (:func:`routing.greenwave.replan_from_position`, the messages worth sending by
  :func:`routing.greenwave.outgoing`), decided per intersection by the service's arbiter
  (:class:`routing.arbiter.Arbiter`) and executed at SUMO's lights by the signal gateway's core
  and light controllers (:class:`simulators.sumo.gateway.GatewayCore`,
  :class:`simulators.sumo.controller.LightController`: green extension and early green only,
  clearances and minimum/pedestrian greens never cut, compensation afterwards).

What is *not* in the loop is the service's I/O (Redis, the event log, websockets): the
gateway's socket is tested against the real service in ``tests/sumo/test_gateway.py``.

**Paired runs.** Every arm replays the same background vehicles (one route file per seed and
demand) and the same emergency vehicles at the same seconds, with SUMO's same seed; only the
strategy differs. The measures:

* emergency travel time (requested departure to arrival, from TraCI);
* cross traffic at the served intersections: vehicle-seconds halted on the lanes entering a
  served light other than the emergency vehicle's approach, over its *disturbed cycles* (from
  a command priority gave that light until it runs its own program again, owing no green, plus
  one cycle for the queue to clear; a grant merely held, for a window still to come, does not
  disturb it: :func:`disturbed`), in the priority arm and over the same seconds in the
  baseline;
* the whole network: background vehicles' ``timeLoss`` from SUMO's tripinfo (unfinished trips
  included).
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from routing import Route, Router
from routing.arbiter import Arbiter, ArbiterConfig, IntersectionState, SignalStatus
from routing.greenwave import (
    GreenWaveConfig,
    GreenWavePlan,
    PlanUpdate,
    Requester,
    SignalRequest,
    cancel_requests,
    outgoing,
    plan_green_wave,
    replan_from_position,
)

from ..config import DrillConfig
from ..scenarios import Scenario
from ._home import sumo_env, sumo_home
from ._traci import TraciLights, libsumo_run, sumo_argv
from .controller import ControllerConfig, LightController
from .gateway import GatewayCore, SimTime
from .network import SumoNetwork

Progress = Callable[[str], None]
StepProbe = Callable[[Any, float, TraciLights, GatewayCore], None]
EV_TYPE = "yishao_emergency"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # service time of SUMO second 0 (any fixed instant)


class Demand(StrEnum):
    """Background traffic: vehicles inserted per hour per km of drivable lane."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


VEH_PER_H_PER_LANE_KM: dict[Demand, float] = {
    Demand.LOW: 2.0,
    Demand.MODERATE: 3.0,
    Demand.HIGH: 5.0,
}


class Strategy(StrEnum):
    """How requests are served."""

    BLUELIGHT = "bluelight"  # no priority at all: the baseline
    LIVE = "live"  # short windows re-timed from live positions (the service's way)
    PLANNED = "planned"  # the departure plan only, never re-timed (long, wide holds)


class SumoDrillConfig(BaseModel):
    """Tuning of one SUMO drill."""

    model_config = ConfigDict(frozen=True)

    demand: Demand = Demand.MODERATE
    window_s: float = Field(default=1800.0, gt=0, description="scenario seconds replayed")
    warmup_s: float = Field(default=300.0, ge=0, description="background traffic fills first")
    tail_s: float = Field(default=600.0, ge=0, description="after the window, for arrivals")
    max_vehicles: int = Field(default=24, ge=1, description="emergency drives at most")
    replan_every_s: float = Field(default=2.0, gt=0)
    red_speed_ms: float = Field(
        default=5.56, gt=0, description="most an emergency vehicle drives through a red (20 km/h)"
    )
    speed_factor: float = Field(default=1.2, gt=0, description="emergency vehicles' speed factor")
    plan_at_dispatch: bool = Field(
        default=True,
        description="send the plan when the service did (at the assignment, the crew's turnout "
        "before departure) rather than when SUMO's vehicle departs",
    )
    release_at_stop_line: bool = Field(
        default=False,
        description="a light's hold for a vehicle ends the step it crosses the light's stop "
        "line (the gateway's detector: GatewayCore.passed), not at the service's cancel",
    )
    controller: ControllerConfig = ControllerConfig()
    greenwave: GreenWaveConfig = GreenWaveConfig()


@dataclass(frozen=True, slots=True)
class EmergencyTrip:
    """One protected drive of the batch drill, as SUMO drives it."""

    vehicle_id: str
    unit_id: str
    requester: Requester
    route: Route
    edges: tuple[str, ...]
    depart_s: float  # SUMO seconds
    plan_s: float | None = None  # when the service sent its plan (SUMO s); None: at departure


@dataclass(slots=True)
class _Ev:
    trip: EmergencyTrip
    plan: GreenWavePlan | None = None
    sent_eta: dict[str, float] = field(default_factory=dict)
    request_ids: set[str] = field(default_factory=set)  # every request sent for it
    next_tls: str = ""  # the light whose stop line is ahead of it (SUMO), "" none
    departed_s: float | None = None
    arrived_s: float | None = None
    last_replan_s: float = -math.inf


class TripResult(BaseModel):
    vehicle_id: str
    unit_id: str
    signals: int
    route_s: float = Field(description="the router's planned emergency duration")
    travel_s: float | None = Field(description="requested departure to arrival; None: never")


class ArmResult(BaseModel):
    """One SUMO run."""

    strategy: Strategy
    trips: list[TripResult]
    background_vehicles: int
    background_time_loss_s: float
    teleports: int
    requests_sent: int = 0
    grants: int = 0
    served: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    lights_touched: int = 0
    disturbed: dict[str, list[tuple[float, float]]] = Field(default_factory=dict)
    cross_lanes: dict[str, list[str]] = Field(default_factory=dict)
    cross_halt_veh_s: dict[str, float] = Field(default_factory=dict)
    wall_s: float = 0.0


class StrategyFigures(BaseModel):
    """One strategy against the baseline of the same seed."""

    strategy: Strategy
    seed: int
    vehicles: int
    mean_travel_s_with: float | None
    mean_travel_s_without: float | None
    travel_change_pct: float | None
    improved_share: float | None
    time_saved_per_signal_s: float | None
    cross_delay_added_pct: float | None = Field(description="all served lights together")
    cross_delay_added_pct_mean: float | None = Field(description="per light, averaged")
    cross_delay_added_pct_worst: float | None
    network_delay_added_pct: float | None
    requests_sent: int
    served: int
    rejected: int
    rejected_by_reason: dict[str, int] = Field(
        default_factory=dict, description="rejections by the controllers' reason, in kinds"
    )
    lights_touched: int
    teleports: int
    teleports_without: int


class SumoSummary(BaseModel):
    """The drill report's summary keys, for the first strategy over every seed."""

    responses: int
    whistles: int
    mean_arrival_s_with: float | None
    mean_arrival_s_without: float | None
    improved_share: float | None
    cross_delay_added_pct: float | None
    escalations: int
    network_delay_added_pct: float | None


class SumoDrillReport(BaseModel):
    engine: str = "sumo"
    scenario: str
    demand: Demand
    seeds: list[int]
    window: dict[str, float]
    sumo_version: str
    network: dict[str, Any]
    summary: SumoSummary
    by_seed: list[StrategyFigures]
    spread: dict[str, dict[str, float | None]]
    notes: list[str]


# ------------------------------------------------------------------------------ the demand


def lane_km(conn: Any) -> float:
    """Drivable lane length of the loaded network, in km (internal lanes excluded)."""
    total = 0.0
    for lane in conn.lane.getIDList():
        if str(lane).startswith(":"):
            continue
        if "passenger" in conn.lane.getAllowed(lane) or not conn.lane.getAllowed(lane):
            total += float(conn.lane.getLength(lane))
    return total / 1000.0


def background_routes(
    net: SumoNetwork, out: Path, *, demand: Demand, seed: int, end_s: float, lane_km_total: float
) -> Path:
    """SUMO's randomTrips + duarouter: the background vehicles of one seed and demand (cached)."""
    out.mkdir(parents=True, exist_ok=True)
    per_h = VEH_PER_H_PER_LANE_KM[demand] * lane_km_total
    period = 3600.0 / max(per_h, 1.0)
    routes = out / f"bg-{demand.value}-{per_h:.0f}h-s0-{seed}-{int(end_s)}.rou.xml"
    if routes.is_file():
        return routes
    script = sumo_home() / "tools" / "randomTrips.py"
    trips = out / f"bg-{demand.value}-{seed}.trips.xml"
    cmd = [
        sys.executable,
        str(script),
        "-n",
        str(net.net_file),
        "-o",
        str(trips),
        "-r",
        str(routes),
        "--seed",
        str(seed),
        "-b",
        "0",
        "-e",
        f"{end_s:.0f}",
        "--period",
        f"{period:.4f}",
        "--fringe-factor",
        "5",
        "--min-distance",
        "300",
        "--vehicle-class",
        "passenger",
        # Background cars without dawdling: SUMO's random dawdle would otherwise turn any
        # change of one light into another realisation of the whole network (noise, not the
        # green wave's cost).
        "--trip-attributes",
        'sigma="0"',
        "--prefix",
        "bg",
        "--validate",
    ]
    done = subprocess.run(cmd, env=sumo_env(), capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not routes.is_file():
        raise RuntimeError(f"randomTrips failed: {done.stderr.strip()[-800:]}")
    return routes


def ev_types_file(out: Path, cfg: SumoDrillConfig) -> Path:
    """The emergency vehicles' vType: vClass emergency, allowed to pass red with care.

    SUMO's ``bluelight`` device would say the same, but SUMO 1.28 crashes with it (SIGSEGV in
    ``simulationStep``, reproducible on central Shanghai at moderate demand, with or without its
    rescue lane); its right of way is given instead by the junction model's own parameters:
    any red may be passed (``jmDriveAfterRedTime``) at no more than ``jmDriveRedSpeed``, and
    the vehicle still yields to the traffic that has green. No rescue lane is formed.
    """
    path = out / "emergency.rou.xml"
    path.write_text(
        "<routes>\n"
        f'  <vType id="{EV_TYPE}" vClass="emergency" guiShape="emergency" '
        f'speedFactor="{cfg.speed_factor}" speedDev="0" jmDriveRedSpeed="{cfg.red_speed_ms}" '
        'jmDriveAfterRedTime="3600"/>\n'
        "</routes>\n",
        encoding="utf-8",
    )
    return path


# ---------------------------------------------------------------------------- the trips


def protected_trips(
    router: Router,
    net: SumoNetwork,
    scenario: Scenario,
    seed: int,
    cfg: SumoDrillConfig,
    drill: DrillConfig | None = None,
) -> tuple[list[EmergencyTrip], dict[str, float], dict[str, int]]:
    """The batch drill's protected drives in its busiest window, as SUMO trips (``drill``:
    the batch model's tuning, its defaults if None).

    Returns:
        The trips (SUMO seconds), the window (scenario seconds), and what the batch drill said
        (``responses``, ``whistles``, ``escalations``, ``skipped`` drives SUMO cannot drive).
    """
    from ..batch.engine import Engine

    engine = Engine(router, scenario, seed, drill or DrillConfig(), None, None)
    engine.run()
    drives = sorted(
        (d for d in engine.drives if d.gw_start_s is not None and d.requester is not None),
        key=lambda d: d.depart_s,
    )
    starts = [d.depart_s for d in drives]
    best, best_n = 0.0, -1
    for i, t0 in enumerate(starts):
        n = sum(1 for t in starts[i:] if t < t0 + cfg.window_s)
        if n > best_n:
            best, best_n = t0, n
    offset = best - cfg.warmup_s  # scenario second of SUMO second 0
    trips: list[EmergencyTrip] = []
    skipped = 0
    for d in drives:
        if not best <= d.depart_s < best + cfg.window_s or len(trips) >= cfg.max_vehicles:
            continue
        assert d.requester is not None
        try:
            edges = net.route_edges(d.route)
        except KeyError:
            skipped += 1
            continue
        if not edges:
            skipped += 1
            continue
        trips.append(
            EmergencyTrip(
                vehicle_id=f"ev{d.drive_id}",
                unit_id=d.unit_id,
                requester=d.requester,
                route=d.route,
                edges=tuple(edges),
                depart_s=round(d.depart_s - offset),
                plan_s=(
                    round(min(d.gw_start_s, d.depart_s) - offset)
                    if d.gw_start_s is not None
                    else None
                ),
            )
        )
    whistles = len(engine.whistles)
    escalations = sum(
        1
        for w in engine.whistles.values()
        for a in getattr(w, "acks", {}).values()
        if getattr(a, "escalated", False)
    )
    said = {
        "responses": len(engine.resp),
        "whistles": whistles,
        "escalations": escalations,
        "skipped": skipped,
        "protected_drives": len(drives),
    }
    window = {"from_s": best, "to_s": best + cfg.window_s, "sumo_offset_s": offset}
    return trips, window, said


# ------------------------------------------------------------------------------ one arm


class _Desk:
    """The service's green-wave step in-process: arbiter per intersection -> gateway core."""

    def __init__(self, core: GatewayCore, time: SimTime) -> None:
        self.core = core
        self.time = time
        self.arbiter = Arbiter(ArbiterConfig(clearance_s=5.0))
        self.states: dict[int, IntersectionState] = {}
        self.sent = 0

    def submit(self, messages: Sequence[SignalRequest], now_s: float) -> None:
        now = self.time.at(now_s)
        for req in messages:
            iid = req.intersection_id
            before = self.states.get(iid) or IntersectionState(intersection_id=iid)
            after = self.arbiter.decide(before, req, now=now)
            self.states[iid] = after
            self.sent += 1
            old = {d.request.request_id: d for d in before.decisions}
            for d in after.decisions:
                prev = old.get(d.request.request_id)
                if prev is not None and (prev.status, prev.granted_from, prev.granted_to) == (
                    d.status,
                    d.granted_from,
                    d.granted_to,
                ):
                    continue
                if d.request.request_id != req.request_id and d.status not in (
                    SignalStatus.GRANTED,
                    SignalStatus.CANCELLED,
                    SignalStatus.REJECTED,
                ):
                    continue
                self.core.on_event(
                    {
                        "type": "greenwave.status",
                        "data": {
                            "request": d.request.model_dump(mode="json"),
                            "status": d.status.value,
                            "granted_from": d.granted_from.isoformat() if d.granted_from else None,
                            "granted_to": d.granted_to.isoformat() if d.granted_to else None,
                            "shift_s": d.shift_s,
                        },
                    },
                    now_s,
                )


def disturbed(ctrl: LightController) -> bool:
    """Priority has the light off its program: a phase's end commanded, or green owed.

    A grant merely held (its window still to come, or one the program's own green serves) does
    not disturb the light: the cross traffic's cost is measured while the light runs off its
    program (and one cycle after), not for as long as a far or standing vehicle's grant waits.
    """
    return not ctrl.on_program


def _tripinfo_loss(path: Path) -> tuple[int, float]:
    """Background vehicles and their summed timeLoss (finished and unfinished trips)."""
    count, loss = 0, 0.0
    for _, el in ET.iterparse(path):
        if el.tag == "tripinfo":
            if not str(el.get("id", "")).startswith("ev"):
                count += 1
                loss += float(el.get("timeLoss", "0"))
            el.clear()
    return count, loss


def run_arm(
    net: SumoNetwork,
    trips: Sequence[EmergencyTrip],
    background: Path,
    ev_types: Path,
    strategy: Strategy,
    cfg: SumoDrillConfig,
    *,
    seed: int,
    end_s: float,
    work: Path,
    measure: ArmResult | None = None,
    on_step: StepProbe | None = None,
) -> ArmResult:
    """One SUMO run of the trips under ``strategy``.

    Args:
        measure: a priority arm of the same seed whose disturbed cycles and cross lanes this
            run measures too (the baseline's side of the cross-traffic figure).
        on_step: called after every step's own work with ``(conn, now_s, lights, core)``, to
            watch the run (a diagnosis; it must not command SUMO).
    """
    import time as _time

    started = _time.perf_counter()
    tripinfo = work / f"tripinfo-{strategy.value}-{seed}.xml"
    argv = sumo_argv(
        net.net_file,
        routes=(ev_types, background),
        seed=seed,
        extra=[
            "--tripinfo-output",
            str(tripinfo),
            "--tripinfo-output.write-unfinished",
            "true",
            "--time-to-teleport",
            "300",
            "--end",
            f"{end_s:.0f}",
        ],
    )
    time = SimTime(EPOCH)
    evs = {t.vehicle_id: _Ev(t) for t in trips}
    result = ArmResult(
        strategy=strategy, trips=[], background_vehicles=0, background_time_loss_s=0.0, teleports=0
    )
    watch_lanes: dict[str, list[str]] = dict(measure.cross_lanes) if measure else {}
    watch_spans: dict[str, list[tuple[float, float]]] = dict(measure.disturbed) if measure else {}
    halted: dict[str, float] = defaultdict(float)
    # Priority arm: every lane entering a touched light is sampled from its first grant on;
    # which of them are cross lanes is known when its grants are.
    sampled: dict[str, dict[str, list[tuple[float, int]]]] = {}
    approach: dict[str, set[str]] = defaultdict(set)  # light -> edges the vehicles came in on
    open_span: dict[str, float] = {}
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with libsumo_run(argv) as conn:
        for k, t in enumerate(trips):
            conn.route.add(f"evr{k}", list(t.edges))
            conn.vehicle.add(
                t.vehicle_id, f"evr{k}", typeID=EV_TYPE, depart=f"{t.depart_s:.0f}",
                departLane="best", departSpeed="max",
            )  # fmt: skip
        lights = TraciLights(conn, cfg.controller)
        core = GatewayCore(net.signals, time, lights.controller)
        desk = _Desk(core, time)
        commanded: set[str] = set()
        teleports = 0

        def send(ev: _Ev, update: PlanUpdate, now: float) -> None:
            """Keep a plan (new or replanned) and send the lights what changed."""
            ev.plan = update.plan
            messages, ev.sent_eta = outgoing(
                update.requests,
                ev.sent_eta,
                retime_s=cfg.greenwave.retime_s,
                retime_share=cfg.greenwave.retime_share,
            )
            ev.request_ids.update(m.request_id for m in messages)
            desk.submit(messages, now)
            ev.last_replan_s = now

        def send_plan(ev: _Ev, depart_s: float, now: float) -> None:
            plan = plan_green_wave(
                ev.trip.route,
                departure=time.at(depart_s),
                requester=ev.trip.requester,
                config=cfg.greenwave,
            )
            send(ev, plan, now)

        early = sorted(
            (
                ev
                for ev in evs.values()
                if ev.trip.plan_s is not None and ev.trip.plan_s < ev.trip.depart_s
            ),
            key=lambda ev: -(ev.trip.plan_s or 0.0),
        )
        if strategy is Strategy.BLUELIGHT or not cfg.plan_at_dispatch:
            early = []
        while True:
            conn.simulationStep()
            now = float(conn.simulation.getTime())
            teleports += int(conn.simulation.getStartingTeleportNumber())
            while early and early[-1].trip.plan_s is not None and early[-1].trip.plan_s <= now:
                # The service planned at the assignment, for the departure after turnout.
                pre = early.pop()
                if pre.plan is None and pre.departed_s is None:
                    send_plan(pre, pre.trip.depart_s, now)
            for vid in conn.simulation.getDepartedIDList():
                ev = evs.get(vid)
                if ev is None:
                    continue
                ev.departed_s = now
                if strategy is Strategy.BLUELIGHT:
                    continue
                if ev.plan is None:
                    send_plan(ev, now, now)
                elif strategy is Strategy.LIVE:
                    ev.last_replan_s = -math.inf  # re-timed from where SUMO put it, at once
            for vid in conn.simulation.getArrivedIDList():
                ev = evs.get(vid)
                if ev is None:
                    continue
                ev.arrived_s = now
                if ev.plan is not None:
                    desk.submit(
                        cancel_requests(ev.plan, now=time.at(now), config=cfg.greenwave), now
                    )
                    ev.plan = None
            if strategy is Strategy.LIVE:
                for vid, ev in evs.items():
                    if ev.plan is None or now - ev.last_replan_s < cfg.replan_every_s:
                        continue
                    if ev.arrived_s is not None or ev.departed_s is None:
                        continue
                    x, y = conn.vehicle.getPosition(vid)
                    lon, lat = conn.simulation.convertGeo(x, y)
                    update = replan_from_position(
                        ev.plan, position=(lat, lon), now=time.at(now), config=cfg.greenwave
                    )
                    send(ev, update, now)
            if cfg.release_at_stop_line and strategy is not Strategy.BLUELIGHT:
                for vid, ev in evs.items():
                    if ev.departed_s is None or ev.arrived_s is not None:
                        continue
                    ahead = conn.vehicle.getNextTLS(vid)
                    first = str(ahead[0][0]) if ahead else ""
                    if ev.next_tls and first != ev.next_tls:
                        core.passed(ev.next_tls, sorted(ev.request_ids), now)
                    ev.next_tls = first
            if lights.controllers:
                for cmd in lights.step():
                    commanded.add(cmd.tls_id)
                core.collect(lights.controllers.values())
                for held in core.held.values():
                    controlled = conn.trafficlight.getControlledLinks(held.tls_id)
                    for i in held.grant.links:
                        if 0 <= i < len(controlled):
                            approach[held.tls_id].update(
                                str(lk[0]).rsplit("_", 1)[0] for lk in controlled[i]
                            )
                for tls_id, ctrl in lights.controllers.items():
                    if tls_id not in sampled:
                        sampled[tls_id] = {
                            lane: []
                            for lane in dict.fromkeys(conn.trafficlight.getControlledLanes(tls_id))
                            if not str(lane).startswith(":")
                        }
                    for lane, series in sampled[tls_id].items():
                        n = int(conn.lane.getLastStepHaltingNumber(lane))
                        if n:
                            series.append((now, n))
                    busy = tls_id in commanded and disturbed(ctrl)
                    if busy and tls_id not in open_span:
                        open_span[tls_id] = now
                    elif not busy and tls_id in open_span:
                        cycle = ctrl.program.cycle_s
                        spans[tls_id].append((open_span.pop(tls_id), now + cycle))
            if watch_lanes:
                for tls_id, lanes in watch_lanes.items():
                    if not any(lo <= now < hi for lo, hi in watch_spans.get(tls_id, ())):
                        continue
                    halted[tls_id] += sum(
                        int(conn.lane.getLastStepHaltingNumber(lane)) for lane in lanes
                    )
            if on_step is not None:
                on_step(conn, now, lights, core)
            done = all(ev.arrived_s is not None for ev in evs.values())
            if now >= end_s or (
                done
                and all(c.idle for c in lights.controllers.values())
                and now >= end_s - cfg.tail_s
            ):
                break
        for tls_id, start in open_span.items():
            spans[tls_id].append((start, float(conn.simulation.getTime())))
        # A grant the vehicle used and then cancelled (it passed) was served too.
        result.served = sum(
            1
            for r in core.reports
            if r.status == "served" or (r.status == "cancelled" and r.green_s > 0)
        )
        result.rejected = sum(1 for r in core.reports if r.status == "rejected")
        result.rejected_by_reason = dict(
            Counter(
                r.kind.value if r.kind is not None else "other"
                for r in core.reports
                if r.status == "rejected"
            )
        )
        result.grants = core.granted
        result.requests_sent = desk.sent
        result.lights_touched = len(commanded)
    result.teleports = teleports
    for ev in evs.values():
        t = ev.trip
        result.trips.append(
            TripResult(
                vehicle_id=t.vehicle_id,
                unit_id=t.unit_id,
                signals=len(t.route.signals),
                route_s=round(t.route.duration_s, 1),
                travel_s=None if ev.arrived_s is None else round(ev.arrived_s - t.depart_s, 1),
            )
        )
    result.background_vehicles, loss = _tripinfo_loss(tripinfo)
    result.background_time_loss_s = round(loss, 1)
    if measure is None and strategy is not Strategy.BLUELIGHT:
        for tls_id in commanded:
            # Every lane of the vehicle's approach edge is its own side, not cross traffic.
            mine = approach.get(tls_id, set())
            lanes = sorted(x for x in sampled.get(tls_id, {}) if x.rsplit("_", 1)[0] not in mine)
            result.cross_lanes[tls_id] = lanes
            result.disturbed[tls_id] = spans.get(tls_id, [])
            total = 0.0
            for lane in lanes:
                for at, n in sampled[tls_id][lane]:
                    if any(lo <= at < hi for lo, hi in result.disturbed[tls_id]):
                        total += n
            result.cross_halt_veh_s[tls_id] = total
    else:
        result.cross_halt_veh_s = dict(halted)
    result.wall_s = round(_time.perf_counter() - started, 2)
    return result


# ---------------------------------------------------------------------------- the figures


def _pct(new: float, old: float) -> float | None:
    return None if old <= 0 else round(100.0 * (new - old) / old, 2)


def compare(strategy: Strategy, seed: int, arm: ArmResult, base: ArmResult) -> StrategyFigures:
    """One priority arm against the baseline arm of the same seed."""
    with_s = {t.vehicle_id: t for t in arm.trips}
    pairs = [
        (with_s[t.vehicle_id], t)
        for t in base.trips
        if t.travel_s is not None and with_s[t.vehicle_id].travel_s is not None
    ]
    w = [a.travel_s for a, _ in pairs if a.travel_s is not None]
    b = [z.travel_s for _, z in pairs if z.travel_s is not None]
    signals = sum(a.signals for a, _ in pairs)
    per_light = [
        p
        for tls, veh_s in arm.cross_halt_veh_s.items()
        if (p := _pct(veh_s, base.cross_halt_veh_s.get(tls, 0.0))) is not None
    ]
    total_with = sum(arm.cross_halt_veh_s.values())
    total_without = sum(base.cross_halt_veh_s.values())
    return StrategyFigures(
        strategy=strategy,
        seed=seed,
        vehicles=len(pairs),
        mean_travel_s_with=round(statistics.fmean(w), 1) if w else None,
        mean_travel_s_without=round(statistics.fmean(b), 1) if b else None,
        travel_change_pct=_pct(sum(w), sum(b)) if w else None,
        improved_share=(
            round(sum(1 for x, y in zip(w, b, strict=True) if x < y - 0.5) / len(w), 3)
            if w
            else None
        ),
        time_saved_per_signal_s=round((sum(b) - sum(w)) / signals, 2) if signals else None,
        cross_delay_added_pct=_pct(total_with, total_without),
        cross_delay_added_pct_mean=round(statistics.fmean(per_light), 2) if per_light else None,
        cross_delay_added_pct_worst=round(max(per_light), 2) if per_light else None,
        network_delay_added_pct=_pct(arm.background_time_loss_s, base.background_time_loss_s),
        requests_sent=arm.requests_sent,
        served=arm.served,
        rejected=arm.rejected,
        rejected_by_reason=arm.rejected_by_reason,
        lights_touched=arm.lights_touched,
        teleports=arm.teleports,
        teleports_without=base.teleports,
    )


def _spread(values: Sequence[float | None]) -> dict[str, float | None]:
    got = [v for v in values if v is not None]
    if not got:
        return {"mean": None, "min": None, "max": None, "stdev": None}
    return {
        "mean": round(statistics.fmean(got), 2),
        "min": round(min(got), 2),
        "max": round(max(got), 2),
        "stdev": round(statistics.stdev(got), 2) if len(got) > 1 else 0.0,
    }


def run_sumo_drill(
    router: Router,
    net: SumoNetwork,
    scenario: Scenario,
    *,
    seeds: Sequence[int],
    strategies: Sequence[Strategy] = (Strategy.LIVE,),
    config: SumoDrillConfig | None = None,
    work: Path,
    progress: Progress | None = None,
) -> SumoDrillReport:
    """Paired SUMO runs per seed: the bluelight baseline and each priority strategy."""
    from ._home import sumo_version

    cfg = config or SumoDrillConfig()
    say = progress or (lambda _: None)
    work.mkdir(parents=True, exist_ok=True)
    ev_types = ev_types_file(work, cfg)
    end_s = cfg.warmup_s + cfg.window_s + cfg.tail_s
    with libsumo_run(sumo_argv(net.net_file)) as conn:
        km = lane_km(conn)
    figures: list[StrategyFigures] = []
    said_all: list[dict[str, int]] = []
    window: dict[str, float] = {}
    for seed in seeds:
        say(f"seed {seed}: batch drill (the service's decisions)")
        trips, window, said = protected_trips(router, net, scenario, seed, cfg)
        said_all.append(said)
        say(f"seed {seed}: background traffic ({cfg.demand.value})")
        bg = background_routes(
            net, work, demand=cfg.demand, seed=seed, end_s=end_s, lane_km_total=km
        )
        for strategy in strategies:
            say(f"seed {seed}: {strategy.value} ({len(trips)} emergency vehicles)")
            arm = run_arm(
                net, trips, bg, ev_types, strategy, cfg, seed=seed, end_s=end_s, work=work
            )
            say(f"seed {seed}: bluelight baseline")
            base = run_arm(
                net, trips, bg, ev_types, Strategy.BLUELIGHT, cfg, seed=seed, end_s=end_s,
                work=work, measure=arm,
            )  # fmt: skip
            figures.append(compare(strategy, seed, arm, base))
    first = [f for f in figures if f.strategy is strategies[0]]
    with_all = [f.mean_travel_s_with for f in first if f.mean_travel_s_with is not None]
    without_all = [f.mean_travel_s_without for f in first if f.mean_travel_s_without is not None]
    summary = SumoSummary(
        responses=sum(s["responses"] for s in said_all),
        whistles=sum(s["whistles"] for s in said_all),
        mean_arrival_s_with=round(statistics.fmean(with_all), 1) if with_all else None,
        mean_arrival_s_without=round(statistics.fmean(without_all), 1) if without_all else None,
        improved_share=_spread([f.improved_share for f in first])["mean"],
        cross_delay_added_pct=_spread([f.cross_delay_added_pct for f in first])["mean"],
        escalations=sum(s["escalations"] for s in said_all),
        network_delay_added_pct=_spread([f.network_delay_added_pct for f in first])["mean"],
    )
    spread = {
        f"{s.value}.{key}": _spread([getattr(f, key) for f in figures if f.strategy is s])
        for s in strategies
        for key in (
            "travel_change_pct",
            "cross_delay_added_pct",
            "cross_delay_added_pct_worst",
            "network_delay_added_pct",
            "time_saved_per_signal_s",
        )
    }
    s = net.summary
    return SumoDrillReport(
        scenario=scenario.name,
        demand=cfg.demand,
        seeds=list(seeds),
        window={**window, "window_s": cfg.window_s, "warmup_s": cfg.warmup_s},
        sumo_version=sumo_version(),
        network={
            "lane_km": round(km, 1),
            "veh_per_h": round(VEH_PER_H_PER_LANE_KM[cfg.demand] * km),
            "sumo_tls": s.sumo_tls,
            "signals_mapped": s.signals_mapped,
            "router_signals": s.router_signals,
            "skipped_drives": sum(x["skipped"] for x in said_all),
        },
        summary=summary,
        by_seed=figures,
        spread=spread,
        notes=[
            "baseline: the same emergency vehicles, allowed to pass red at <= "
            f"{cfg.red_speed_ms} m/s yielding to foes (SUMO's junction model; its bluelight "
            "device crashes SUMO 1.28), no priority",
            "cross delay: vehicle-seconds halted on the other lanes entering each light priority "
            "commanded, over its disturbed cycles (+1 cycle), both arms over the same seconds",
            "network delay: background vehicles' summed timeLoss from SUMO's tripinfo",
            "emergency vehicles: the batch drill's protected drives in its busiest window, the "
            "routes the service's core planned",
        ],
    )


def render_sumo_html(report: SumoDrillReport) -> str:
    """The report as one HTML page (no scripts)."""
    from html import escape

    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape('' if v is None else str(v))}</td>"
            for v in (
                f.strategy.value,
                f.seed,
                f.vehicles,
                f.mean_travel_s_with,
                f.mean_travel_s_without,
                f.travel_change_pct,
                f.improved_share,
                f.time_saved_per_signal_s,
                f.cross_delay_added_pct,
                f.cross_delay_added_pct_mean,
                f.cross_delay_added_pct_worst,
                f.network_delay_added_pct,
                f.served,
                f.rejected,
            )
        )
        + "</tr>"
        for f in report.by_seed
    )
    heads = "".join(
        f"<th>{h}</th>"
        for h in (
            "strategy", "seed", "vehicles", "mean travel with (s)", "without (s)", "change %",
            "improved", "saved per signal (s)", "cross delay +%", "per light mean +%",
            "worst light +%", "network delay +%", "served", "rejected",
        )
    )  # fmt: skip
    summary = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
        for k, v in report.summary.model_dump().items()
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return (
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        f"<title>SUMO drill: {escape(report.scenario)}</title>"
        "<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>"
        f"<h1>Green wave in SUMO: {escape(report.scenario)}, {report.demand.value} demand</h1>"
        f"<p>SUMO {escape(report.sumo_version)}; seeds {report.seeds}; network "
        f"{escape(str(report.network))}</p>"
        f"<h2>Summary</h2><table>{summary}</table>"
        f"<h2>By seed and strategy</h2><table><tr>{heads}</tr>{rows}</table>"
        f"<h2>How it was measured</h2><ul>{notes}</ul></html>"
    )


def default_work_dir(net: SumoNetwork) -> Path:
    return net.folder / "drill"
