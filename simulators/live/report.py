"""The live drill's report: what happened on the wire, paired with the same drives without priority.

Every drive a live unit made is driven again offline (:func:`simulators.baseline.drive_without`)
on its first route, leaving at the same second, through fresh controllers of the same fixed-time
plans (same seed) that receive no grants: the baseline of ``mean_arrival_s_without``.
Definitions follow :mod:`simulators.report` (shared with the batch report), so the same page
renders both.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dispatch.core.assign import LegKind
from dispatch.models import CallType, Centre
from routing import Router

from ..baseline import drive_without
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
from ..scenarios import Scenario
from ..signals import FlowFactor, SignalTiming
from ..vehicles import Bluelight, VehicleSim
from .field import RequestNote, SignalField
from .units import LegLog


class LiveDrillReport(DrillReport):
    """A :class:`DrillReport` of a live run (``mode`` says so; everything else is shared)."""

    mode: Literal["batch", "live"] = "live"


@dataclass
class IncidentLog:
    """What the console saw of one incident of the drill."""

    incident_id: str
    source: str
    first_call_at: datetime
    first_call_s: float
    incident: dict[str, Any] = field(default_factory=dict)
    calls: int = 0
    whistle_id: str | None = None
    whistle_s: float | None = None
    greenwave_s: float | None = None
    alerts: int = 0
    whistle: dict[str, Any] | None = None
    missing: set[str] = field(default_factory=set)


def _leg_notes(
    leg: LegLog, notes: Sequence[RequestNote]
) -> tuple[set[str], set[str], float | None]:
    """Requests of this unit heard while this leg was the unit's job."""
    end = (leg.arrived_s if leg.arrived_s is not None else math.inf) + 1.0
    granted: set[str] = set()
    rejected: set[str] = set()
    first: float | None = None
    for n in notes:
        if n.unit_id != leg.unit_id or not leg.dispatched_s - 1.0 <= n.at_s <= end:
            continue
        if first is None:
            first = n.at_s
        if n.kind == "granted":
            granted.add(n.request_id)
        elif n.kind == "rejected":
            rejected.add(n.request_id)
    return granted, rejected, first


def _leg_record(leg: LegLog, base: VehicleSim, notes: Sequence[RequestNote]) -> LegRecord:
    assert leg.arrived_s is not None
    base_arrived = base.arrived_s if base.arrived_s is not None else leg.depart_s
    granted, rejected, first = _leg_notes(leg, notes)
    passed = leg.passed
    return LegRecord(
        unit_id=leg.unit_id,
        agency=leg.agency,
        unit_type=leg.unit_type,
        leg=leg.kind,
        dispatched_s=round(leg.dispatched_s, 3),
        depart_s=round(leg.depart_s, 3),
        distance_m=round(leg.route.distance_m, 1),
        signals=len(leg.route.signals),
        planned_s=round(leg.route.duration_s, 3),
        drive_s_with=round(leg.arrived_s - leg.depart_s, 3),
        drive_s_without=round(base_arrived - leg.depart_s, 3),
        dispatch_to_arrival_s=round(leg.arrived_s - leg.dispatched_s, 3),
        stops_with=sum(1 for p in passed if p.stopped),
        stops_without=sum(1 for p in base.passed if p.stopped),
        signal_lost_s_with=round(sum(p.lost_s for p in passed), 3),
        signal_lost_s_without=round(sum(p.lost_s for p in base.passed), 3),
        greenwave=first is not None,
        greenwave_after_s=None if first is None else round(first - leg.depart_s, 3),
        requests_granted=len(granted),
        requests_rejected=len(rejected),
    )


def _acks(log: IncidentLog) -> list[AckRecord]:
    whistle = log.whistle or {}
    sounded = whistle.get("sounded_at")
    out: list[AckRecord] = []
    for s in whistle.get("summons", []):
        delay: float | None = None
        if s.get("acked_at") and sounded:
            delay = round(
                (
                    datetime.fromisoformat(str(s["acked_at"]))
                    - datetime.fromisoformat(str(sounded))
                ).total_seconds(),
                3,
            )
        out.append(
            AckRecord(
                agency=s["agency"],
                coordinator=s["coordinator"],
                tier=str(s.get("tier", "")),
                status=str(s.get("status", "")),
                whistle_to_ack_s=delay,
            )
        )
    return out


def _signal_records(
    router: Router,
    field_: SignalField,
    legs: Sequence[LegLog],
    baseline: Sequence[VehicleSim],
) -> tuple[list[SignalRecord], float, float]:
    """Per-signal waits with and without, and the cross-street delay priority added.

    The same definitions as the batch report (``simulators.report``): per perturbation episode
    of a served signal, the queue integral of each cross approach with priority minus under the
    plan, over the approaches' fixed-time uniform delay for the cycles it spans.
    """
    g = router.graph
    lost_with: dict[int, list[float]] = {}
    lost_without: dict[int, float] = {}
    for k, leg in enumerate(legs):
        for p in leg.passed:
            lost_with.setdefault(p.intersection_id, []).append(p.lost_s)
        for p in baseline[k].passed:
            lost_without[p.intersection_id] = lost_without.get(p.intersection_id, 0.0) + p.lost_s
    served: dict[int, int] = {}
    for gr in field_.served_grants:
        served[gr.intersection_id] = served.get(gr.intersection_id, 0) + 1
    rejected: dict[int, set[str]] = {}
    for n in field_.notes:
        if n.kind == "rejected":
            rejected.setdefault(n.intersection_id, set()).add(n.request_id)
    return signal_records(
        g,
        field_.timings,
        field_.controllers,
        lost_with,
        lost_without,
        served,
        {iid: len(ids) for iid, ids in rejected.items()},
    )


def build_report(
    *,
    drill_id: str,
    router: Router,
    scenario: Scenario,
    seed: int,
    start: datetime,
    duration_h: float,
    calls: int,
    incidents: Sequence[IncidentLog],
    legs: Sequence[LegLog],
    field_: SignalField,
    timings: Mapping[int, SignalTiming],
    flow_factor: FlowFactor,
    signal_delay_s: float,
    max_drive_s: float,
    bluelight: Bluelight | None = None,
) -> LiveDrillReport:
    """The report of a live run (legs still driving when the drill ended are left out)."""
    done = [leg for leg in legs if leg.arrived_s is not None]
    nodes = frozenset(int(x) for x in router.graph.node_osmid[router.graph.node_signal].tolist())
    every = {**field_.timings, **timings}
    baseline = {
        k: drive_without(
            unit_id=leg.unit_id,
            route=leg.route,
            depart_s=leg.depart_s,
            kind=leg.kind,
            timings=every,
            flow_factor=flow_factor,
            signal_nodes=nodes,
            signal_delay_s=signal_delay_s,
            max_drive_s=max_drive_s,
            bluelight=bluelight,
        )
        for k, leg in enumerate(done)
    }
    records = {k: _leg_record(leg, baseline[k], field_.notes) for k, leg in enumerate(done)}
    by_incident: dict[str, list[LegRecord]] = {}
    for k, leg in enumerate(done):
        by_incident.setdefault(leg.incident_id, []).append(records[k])
    responses: list[ResponseRecord] = []
    with_gw: list[tuple[float, float, float]] = []
    transports: list[tuple[float, float]] = []
    call_to_whistle: list[float] = []
    to_ack: list[float] = []
    escalations = 0
    missing_total = 0
    for log in sorted(incidents, key=lambda x: x.incident_id):
        inc = log.incident
        leg_recs = sorted(
            by_incident.get(log.incident_id, []), key=lambda r: (r.dispatched_s, r.unit_id, r.leg)
        )
        scene = [r for r in leg_recs if r.leg is LegKind.SCENE]
        arr_with = mean_or_none([r.drive_s_with for r in scene])
        arr_without = mean_or_none([r.drive_s_without for r in scene])
        acks = _acks(log)
        to_ack.extend(a.whistle_to_ack_s for a in acks if a.whistle_to_ack_s is not None)
        escalations += log.alerts
        if log.whistle_s is not None:
            call_to_whistle.append(log.whistle_s - log.first_call_s)
        gw = log.greenwave_s is not None and any(r.greenwave for r in scene)
        improved: bool | None = None
        if gw and arr_with is not None and arr_without is not None:
            improved = arr_with <= arr_without - 0.5
            with_gw.append((arr_with, arr_without, statistics.fmean(r.planned_s for r in scene)))
            transports.extend(
                (r.drive_s_with, r.drive_s_without) for r in leg_recs if r.leg is LegKind.TRANSPORT
            )
        missing_total += len(log.missing)
        responses.append(
            ResponseRecord(
                incident_id=log.incident_id,
                source=log.source,
                call_types=[CallType(t) for t in inc.get("call_types", [])],
                centres=[Centre(c) for c in inc.get("centres", [])],
                calls=len(inc.get("calls", [])) or log.calls,
                priority=int(inc.get("priority", 3)),
                first_call_at=log.first_call_at,
                whistle=log.whistle_id is not None,
                call_to_whistle_s=None
                if log.whistle_s is None
                else round(log.whistle_s - log.first_call_s, 3),
                acks=acks,
                escalations=log.alerts,
                greenwave_enabled_after_s=None
                if log.greenwave_s is None or log.whistle_s is None
                else round(log.greenwave_s - log.whistle_s, 3),
                legs=leg_recs,
                missing=sorted(log.missing),
                arrival_s_with=arr_with,
                arrival_s_without=arr_without,
                improved=improved,
            )
        )
    ordered = [done[k] for k in sorted(baseline)]
    signals, cross_added, cross_base = _signal_records(
        router, field_, ordered, [baseline[k] for k in sorted(baseline)]
    )
    summary = summarize(
        calls=calls,
        responses=responses,
        legs=len(done),
        with_gw=with_gw,
        transports=transports,
        call_to_whistle=call_to_whistle,
        to_ack=to_ack,
        escalations=escalations,
        granted=sum(r.requests_granted for r in records.values()),
        rejected=sum(r.requests_rejected for r in records.values()),
        served=field_.served,
        conflicts=len(field_.conflicts),
        cross_added=cross_added,
        cross_base=cross_base,
        missing=missing_total,
    )
    g = router.graph
    return LiveDrillReport(
        drill_id=drill_id,
        scenario=scenario.name,
        description=scenario.description,
        seed=seed,
        graph={
            "source": str(g.meta.get("source", "")).rsplit("/", 1)[-1],
            "nodes": g.node_count,
            "edges": g.edge_count,
            "signals": g.signal_count,
        },
        start=start,
        duration_h=duration_h,
        summary=summary,
        responses=responses,
        signals=signals,
        grants=sorted(
            (GrantRecord.of(g) for g in field_.served_grants),
            key=lambda x: (x.intersection_id, x.green_from_s, x.request_id),
        ),
    )
