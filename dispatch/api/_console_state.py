"""Routes of assigned units with the green-wave status of each signal, for the screens.

The event log carries every change (``route.planned``, ``greenwave.planned``,
``greenwave.request|update|cancel|status``), and the pages apply them live; this module builds
the same picture from the stored assignment records and intersection snapshots, for a page
that loads, reloads or resyncs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from dispatch.core.assign import AssignmentRecord, Leg
from dispatch.infra.store import Store
from dispatch.models import Agency, Hospital, Incident, UnitType
from routing.arbiter import IntersectionState

# What a signal of a planned route shows before any request was sent for it.
PLANNED = "planned"
PASSED = "passed"


class SignalView(BaseModel):
    intersection_id: int
    lat: float
    lon: float
    route_eta_s: float = Field(description="seconds from the leg's departure")
    status: str = Field(
        description="planned (no request sent yet), requested, processing, granted, rejected, "
        "served, cancelled, or passed"
    )
    granted_from: str | None = None
    granted_to: str | None = None


class LegView(BaseModel):
    kind: str = Field(description="'scene' or 'transport'")
    coordinates: list[tuple[float, float]] = Field(description="(lon, lat) pairs")
    duration_s: float
    distance_m: float
    signals: list[SignalView]


class RouteView(BaseModel):
    incident_id: str
    unit_id: str
    agency: Agency
    unit_type: UnitType
    assigned_at: str
    active_leg: str | None
    greenwave_active: bool
    hospital: Hospital | None
    legs: list[LegView]


def _leg_view(
    leg: Leg, unit_id: str, states: dict[int, IntersectionState], *, digits: int = 6
) -> LegView:
    where = {s.node_id: (s.lat, s.lon) for s in leg.route.signals}
    signals: list[SignalView] = []
    for planned in leg.greenwave.signals:
        lat, lon = where.get(planned.intersection_id, (None, None))
        if lat is None or lon is None:
            continue
        state = states.get(planned.intersection_id)
        decision = None
        if state is not None:
            decision = next(
                (d for d in state.decisions if d.request.requester.unit_id == unit_id), None
            )
        if decision is not None:
            status = decision.status.value
        else:
            status = PLANNED if planned.active else PASSED
        signals.append(
            SignalView(
                intersection_id=planned.intersection_id,
                lat=lat,
                lon=lon,
                route_eta_s=planned.route_eta_s,
                status=status,
                granted_from=decision.granted_from.isoformat()
                if decision and decision.granted_from
                else None,
                granted_to=decision.granted_to.isoformat()
                if decision and decision.granted_to
                else None,
            )
        )
    return LegView(
        kind=leg.kind,
        coordinates=[(round(x, digits), round(y, digits)) for x, y in leg.route.coordinates],
        duration_s=leg.route.duration_s,
        distance_m=leg.route.distance_m,
        signals=signals,
    )


def _legs(record: AssignmentRecord) -> list[Leg]:
    return [leg for leg in (record.scene, record.transport) if leg is not None]


async def route_views(store: Store, records: Sequence[AssignmentRecord]) -> list[RouteView]:
    """Each record's legs with the current decision at each of their signals."""
    nodes = sorted(
        {s.intersection_id for r in records for leg in _legs(r) for s in leg.greenwave.signals}
    )
    found = await store.get_many(IntersectionState, [store.keys.greenwave(str(n)) for n in nodes])
    states = {n: s for n, s in zip(nodes, found, strict=True) if s is not None}
    return [
        RouteView(
            incident_id=r.incident_id,
            unit_id=r.unit_id,
            agency=r.agency,
            unit_type=r.unit_type,
            assigned_at=r.assigned_at.isoformat(),
            active_leg=r.active_leg,
            greenwave_active=r.greenwave_active,
            hospital=r.hospital,
            legs=[_leg_view(leg, r.unit_id, states) for leg in _legs(r)],
        )
        for r in records
    ]


async def records_of(store: Store, incidents: Iterable[Incident]) -> list[AssignmentRecord]:
    """The live assignment records of these incidents' units (one round trip)."""
    pairs = [(i.id, a.unit_id) for i in incidents for a in i.assignments]
    found = await store.get_many(
        AssignmentRecord, [store.keys.assignment(unit_id) for _i, unit_id in pairs]
    )
    return [
        r
        for (incident_id, _u), r in zip(pairs, found, strict=True)
        if r is not None and r.incident_id == incident_id
    ]
