"""The batch report: what an engine run recorded, each drive paired with its baseline.

Definitions are :mod:`simulators.report`'s (shared with the live report, so one page renders
both): per response its calls, whistle, acks and legs; per signal the time lost with and
without priority and what priority cost the cross streets; the summary over them.
"""

from __future__ import annotations

import statistics

from dispatch.core.assign import LegKind

from ..report import (
    AckRecord,
    DrillReport,
    GrantRecord,
    LegRecord,
    ResponseRecord,
    SignalRecord,
    mean_or_none,
    signal_records,
    summarize,
)
from ..vehicles import VehicleSim
from .engine import Drive, Engine


def _leg_record(engine: Engine, drive: Drive, base: VehicleSim) -> LegRecord:
    unit = engine.units[drive.unit_id]
    v = drive.vehicle
    arrived = v.arrived_s if v.arrived_s is not None else drive.depart_s
    base_arrived = base.arrived_s if base.arrived_s is not None else drive.depart_s
    return LegRecord(
        unit_id=drive.unit_id,
        agency=unit.agency,
        unit_type=unit.type,
        leg=drive.kind,
        dispatched_s=round(drive.dispatched_s, 3),
        depart_s=round(drive.depart_s, 3),
        distance_m=round(drive.route.distance_m, 1),
        signals=len(drive.route.signals),
        planned_s=round(drive.route.duration_s, 3),
        drive_s_with=round(arrived - drive.depart_s, 3),
        drive_s_without=round(base_arrived - drive.depart_s, 3),
        dispatch_to_arrival_s=round(arrived - drive.dispatched_s, 3),
        stops_with=sum(1 for p in v.passed if p.stopped),
        stops_without=sum(1 for p in base.passed if p.stopped),
        signal_lost_s_with=round(sum(p.lost_s for p in v.passed), 3),
        signal_lost_s_without=round(sum(p.lost_s for p in base.passed), 3),
        greenwave=drive.gw_start_s is not None,
        greenwave_after_s=None
        if drive.gw_start_s is None
        else round(drive.gw_start_s - drive.depart_s, 3),
        requests_granted=len(drive.granted),
        requests_rejected=len(drive.rejected),
    )


def build_report(engine: Engine, baseline: dict[int, VehicleSim]) -> DrillReport:
    """The report of a finished run; ``baseline``: drive id -> the same drive without priority."""
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
        legs = [_leg_record(engine, d, baseline[d.drive_id]) for d in r.drives]
        scene = [rec for rec in legs if rec.leg is LegKind.SCENE]
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
                (rec.drive_s_with, rec.drive_s_without)
                for rec in legs
                if rec.leg is LegKind.TRANSPORT
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
        legs=len(engine.drives),
        with_gw=with_gw,
        transports=transports,
        call_to_whistle=call_to_whistle,
        to_ack=to_ack,
        escalations=escalations,
        granted=sum(len(d.granted) for d in engine.drives),
        rejected=sum(len(d.rejected) for d in engine.drives),
        served=engine.network.served,
        conflicts=engine.network.grant_conflicts,
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
            (GrantRecord.of(g) for g in engine.network.served_grants),
            key=lambda x: (x.intersection_id, x.green_from_s, x.request_id),
        ),
    )


def _signal_records(
    engine: Engine, baseline: dict[int, VehicleSim]
) -> tuple[list[SignalRecord], float, float]:
    g = engine.router.graph
    lost_with: dict[int, list[float]] = {}
    lost_without: dict[int, float] = {}
    for d in engine.drives:
        for p in d.vehicle.passed:
            lost_with.setdefault(p.intersection_id, []).append(p.lost_s)
        for p in baseline[d.drive_id].passed:
            lost_without[p.intersection_id] = lost_without.get(p.intersection_id, 0.0) + p.lost_s
    served: dict[int, int] = {}
    for gr in engine.network.served_grants:
        served[gr.intersection_id] = served.get(gr.intersection_id, 0) + 1
    rejected: dict[int, int] = {}
    for d in engine.drives:
        for rid in d.rejected:
            iid = int(rid.rsplit(":", 1)[1])
            rejected[iid] = rejected.get(iid, 0) + 1
    net = engine.network
    return signal_records(
        g, net.timings, net.controllers, lost_with, lost_without, served, rejected
    )
