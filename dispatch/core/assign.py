"""Assignment and what follows it: legs, unit status, hospital, release, close (pure).

A unit assigned to an incident gets an :class:`AssignmentRecord`: the route to the scene and
its green-wave plan, and for an ambulance the destination hospital with a second route and
plan for the transport leg. The record follows the crew's status reports; this table is the
whole rule (:func:`on_status`)::

    status the crew reports   leg driven afterwards       record    incident
    en_route                  unchanged (scene)            kept      -
    on_scene                  none (parked at the scene)   kept      dispatched -> on_scene
    transporting              transport (re-timed now)     kept      -
    at_hospital               none                         kept      -
    returning                 none                         kept      -
    available, out_of_service none                         dropped   -

Whenever the leg being driven changes, the signals the unit still holds a request at are
cancelled. Closing an incident (:func:`close`) releases every unit still assigned to it:
a unit that has not moved is available again, one that has is returning to station.

Like :mod:`dispatch.core.whistle`, every function takes snapshots and the clock and returns
the new state; the adapter (:mod:`dispatch.flow.assign`, :mod:`dispatch.flow.track`) only
reads, commits and sends. The batch drill calls the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from dispatch.errors import ConflictError
from dispatch.models import (
    ASSIGNABLE_STATUSES,
    Agency,
    Assignment,
    Hospital,
    Incident,
    IncidentStatus,
    TimelineEntry,
    Unit,
    UnitStatus,
    UnitType,
)
from routing import Route
from routing.greenwave import (
    ROLE_BY_AGENCY,
    GreenWaveConfig,
    GreenWavePlan,
    Requester,
    SignalRequest,
    cancel_requests,
    plan_green_wave,
)

# Planning the transport leg before the crew reaches the patient needs a guess of the time on
# scene; the plan is re-timed from the clock once the ambulance is actually transporting.
ON_SCENE_ESTIMATE_S = 600.0

# Which statuses a crew may report from its terminal.
TERMINAL_STATUSES = frozenset(
    {
        UnitStatus.EN_ROUTE,
        UnitStatus.ON_SCENE,
        UnitStatus.TRANSPORTING,
        UnitStatus.AT_HOSPITAL,
        UnitStatus.RETURNING,
        UnitStatus.AVAILABLE,
        UnitStatus.OUT_OF_SERVICE,
    }
)
# After these the unit is free and its record goes.
_FREE = frozenset({UnitStatus.AVAILABLE, UnitStatus.OUT_OF_SERVICE})
# After these the unit drives no leg (parked at the scene or the hospital, or going home).
_PARKED = frozenset({UnitStatus.ON_SCENE, UnitStatus.AT_HOSPITAL, UnitStatus.RETURNING})


class LegKind(StrEnum):
    SCENE = "scene"
    TRANSPORT = "transport"


class Leg(BaseModel):
    """One drive of an assignment: its route and green-wave plan."""

    kind: LegKind
    route: Route
    greenwave: GreenWavePlan


class AssignmentRecord(BaseModel):
    """What a unit is doing for an incident: stored per unit while the assignment lasts."""

    incident_id: str
    unit_id: str
    agency: Agency
    unit_type: UnitType
    assigned_at: datetime
    assigned_by: str
    scene: Leg
    hospital: Hospital | None = None
    transport: Leg | None = None
    greenwave_active: bool = False
    active_leg: LegKind | None = Field(LegKind.SCENE, description="the leg driven, None: parked")
    sent_eta: dict[str, float] = Field(
        default_factory=dict,
        description="intersection id -> ETA (epoch s) last sent to its controller",
    )
    version: int = 1

    def leg(self) -> Leg | None:
        """The leg being driven now."""
        if self.active_leg is LegKind.SCENE:
            return self.scene
        if self.active_leg is LegKind.TRANSPORT:
            return self.transport
        return None


def requester_for(unit: Unit, incident: Incident) -> Requester:
    """Who asks the signals for priority: the unit, its J2735 role, the incident's priority."""
    return Requester(
        agency=unit.agency.value,
        unit_id=unit.id,
        role=ROLE_BY_AGENCY[unit.agency.value],
        incident_priority=incident.priority,
    )


def plans_transport(unit: Unit) -> bool:
    """Whether a unit's assignment carries a destination hospital and a transport leg.

    Every ambulance does: whether the patient is taken is the crew's call on scene, but the
    dispatcher and the hospital want the destination (and the green wave to it) from the start.
    """
    return unit.type is UnitType.AMBULANCE


def choose_hospital(
    hospitals: Sequence[Hospital], duration_s: Sequence[float], *, named: str | None = None
) -> int | None:
    """The index of the hospital an ambulance takes its patient to: the fastest by road.

    Args:
        hospitals: the hospitals known.
        duration_s: road time from the scene to each, in the same order (``inf``: no path).
        named: a hospital the dispatcher chose; only it is considered, accepting or not.

    Returns:
        The index of the fastest reachable candidate (accepting ones, or the named one), or
        None when there is none. Ties go to the first.
    """
    best: int | None = None
    for i, (hospital, t) in enumerate(zip(hospitals, duration_s, strict=True)):
        eligible = hospital.id == named if named is not None else hospital.accepting
        if not eligible or not math.isfinite(t):
            continue
        if best is None or t < duration_s[best]:
            best = i
    return best


def check_assignable(incident: Incident, units: Sequence[Unit]) -> None:
    """Refuse an assignment the state does not allow.

    Raises:
        ConflictError: the incident is closed, a unit is listed twice, or a unit cannot take
            an assignment now (already assigned, out of service).
    """
    if incident.status is IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is closed")
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        raise ConflictError("a unit is listed twice")
    for unit in units:
        if unit.status not in ASSIGNABLE_STATUSES:
            where = f" to {unit.incident_id}" if unit.incident_id else ""
            raise ConflictError(
                f"unit {unit.id} is {unit.status.value}{where}; it cannot be assigned"
            )


@dataclass(frozen=True, slots=True)
class UnitRoutes:
    """The routes the router found for one unit: to the scene, and on to the hospital."""

    unit: Unit
    scene: Route
    hospital: Hospital | None = None
    transport: Route | None = None


@dataclass(frozen=True, slots=True)
class Assigned:
    """The outcome of :func:`assign`: the incident, the units and their new records."""

    incident: Incident
    units: list[Unit]
    records: list[AssignmentRecord]


def assign(
    incident: Incident,
    routes: Sequence[UnitRoutes],
    *,
    actor: str,
    now: datetime,
    protected: bool,
    departure: datetime | None = None,
    config: GreenWaveConfig | None = None,
) -> Assigned:
    """Assign units to an incident, each with its legs and green-wave plans.

    Args:
        incident: the incident snapshot.
        routes: per unit, the routes found (``check_assignable`` first).
        actor: who assigns (token subject), kept on the records.
        now: the clock.
        protected: the incident's green-wave protection is on: the plans go out at once.
        departure: when the units leave (default ``now``; a drill passes the turnout).
        config: green-wave window tuning.

    Returns:
        The incident (``dispatched`` if it was ``open``; version + 1), the units
        (``dispatched`` to it; version + 1) and one record per unit.

    Raises:
        ConflictError: as :func:`check_assignable`.
    """
    check_assignable(incident, [r.unit for r in routes])
    leave = departure or now
    records: list[AssignmentRecord] = []
    units: list[Unit] = []
    assignments = list(incident.assignments)
    for found in routes:
        unit = found.unit
        requester = requester_for(unit, incident)
        scene = Leg(
            kind=LegKind.SCENE,
            route=found.scene,
            greenwave=plan_green_wave(
                found.scene, departure=leave, requester=requester, config=config
            ).plan,
        )
        transport: Leg | None = None
        if found.transport is not None:
            start = leave + timedelta(seconds=found.scene.duration_s + ON_SCENE_ESTIMATE_S)
            transport = Leg(
                kind=LegKind.TRANSPORT,
                route=found.transport,
                greenwave=plan_green_wave(
                    found.transport, departure=start, requester=requester, config=config
                ).plan,
            )
        records.append(
            AssignmentRecord(
                incident_id=incident.id,
                unit_id=unit.id,
                agency=unit.agency,
                unit_type=unit.type,
                assigned_at=now,
                assigned_by=actor,
                scene=scene,
                hospital=found.hospital if transport is not None else None,
                transport=transport,
                greenwave_active=protected,
            )
        )
        units.append(
            unit.model_copy(
                update={
                    "status": UnitStatus.DISPATCHED,
                    "incident_id": incident.id,
                    "version": unit.version + 1,
                }
            )
        )
        assignments.append(
            Assignment(
                unit_id=unit.id,
                agency=unit.agency,
                unit_type=unit.type,
                assigned_at=now,
                assigned_by=actor,
                eta_s=found.scene.duration_s,
                distance_m=found.scene.distance_m,
                hospital_id=found.hospital.id if transport and found.hospital else None,
            )
        )
    updated = incident.model_copy(
        update={
            "assignments": assignments,
            "status": IncidentStatus.DISPATCHED
            if incident.status is IncidentStatus.OPEN
            else incident.status,
            "updated_at": now,
            "version": incident.version + 1,
        }
    )
    return Assigned(incident=updated, units=units, records=records)


def protect(records: Sequence[AssignmentRecord]) -> list[AssignmentRecord]:
    """Turn green-wave protection on: the records that were off, now on (version + 1)."""
    return [
        r.model_copy(update={"greenwave_active": True, "version": r.version + 1})
        for r in records
        if not r.greenwave_active
    ]


def held_cancels(
    record: AssignmentRecord, *, now: datetime, config: GreenWaveConfig | None = None
) -> list[SignalRequest]:
    """Cancels for every intersection the unit still holds a request at, on its current leg."""
    leg = record.leg()
    if leg is None or not record.sent_eta:
        return []
    held = {int(k) for k in record.sent_eta}
    return cancel_requests(leg.greenwave, now=now, only=held, config=config)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The outcome of :func:`on_status`.

    ``record`` is the new record (None when there was none or it is dropped: ``dropped``
    says which); ``incident_id`` is the incident the unit served; ``incident`` is set only
    when the incident changed; ``cancels`` are the requests to withdraw; ``activate`` asks
    the adapter to send the new leg's requests.
    """

    unit: Unit
    record: AssignmentRecord | None
    incident_id: str | None = None
    dropped: bool = False
    incident: Incident | None = None
    cancels: list[SignalRequest] = field(default_factory=list)
    activate: bool = False


def on_status(
    unit: Unit,
    record: AssignmentRecord | None,
    incident: Incident | None,
    status: UnitStatus,
    *,
    now: datetime,
    config: GreenWaveConfig | None = None,
) -> StatusChange:
    """Apply a status a crew reported (the table in the module docstring).

    Args:
        unit: the unit snapshot.
        record: its assignment record, if it has one.
        incident: the record's incident (for the first-on-scene rule), if known.
        status: what the crew reported.
        now: the clock.
        config: green-wave window tuning (for cancels and the transport re-plan).

    Raises:
        ConflictError: a status a terminal may not set.
    """
    if status not in TERMINAL_STATUSES:
        raise ConflictError(f"a terminal cannot set status {status.value}")
    moved = unit.model_copy(update={"status": status, "version": unit.version + 1})
    if record is None:
        if status in _FREE:
            moved.incident_id = None
        return StatusChange(unit=moved, record=None)
    new_leg = record.active_leg
    if status in _PARKED or status in _FREE:
        new_leg = None
    elif status is UnitStatus.TRANSPORTING and record.transport is not None:
        new_leg = LegKind.TRANSPORT
    cancels = held_cancels(record, now=now, config=config) if new_leg != record.active_leg else []
    changed = record.model_copy(
        update={
            "active_leg": new_leg,
            "sent_eta": {} if cancels else record.sent_eta,
            "version": record.version + 1,
        }
    )
    starts_transport = status is UnitStatus.TRANSPORTING and record.transport is not None
    if starts_transport and record.transport is not None:
        # The transport leg starts now, not at the estimate made at assignment.
        replanned = plan_green_wave(
            record.transport.route,
            departure=now,
            requester=record.transport.greenwave.requester,
            config=config,
        ).plan
        changed.transport = record.transport.model_copy(update={"greenwave": replanned})
    dropped = status in _FREE
    if dropped:
        moved.incident_id = None
    return StatusChange(
        unit=moved,
        record=None if dropped else changed,
        incident_id=record.incident_id,
        dropped=dropped,
        incident=progress(incident, status, now=now) if incident is not None else None,
        cancels=cancels,
        activate=starts_transport and record.greenwave_active and not dropped,
    )


def progress(incident: Incident, status: UnitStatus, *, now: datetime) -> Incident | None:
    """The first unit on scene moves a dispatched incident to ``on_scene``; else None."""
    if status is not UnitStatus.ON_SCENE or incident.status is not IncidentStatus.DISPATCHED:
        return None
    return incident.model_copy(
        update={
            "status": IncidentStatus.ON_SCENE,
            "updated_at": now,
            "version": incident.version + 1,
        }
    )


@dataclass(frozen=True, slots=True)
class Closed:
    """The outcome of :func:`close`: the incident, released units, dropped records, cancels."""

    incident: Incident
    units: list[Unit]
    records: list[AssignmentRecord]
    cancels: list[SignalRequest]


def close(
    incident: Incident,
    records: Sequence[AssignmentRecord],
    units: Sequence[Unit],
    *,
    now: datetime,
    config: GreenWaveConfig | None = None,
) -> Closed:
    """Close an incident and release every unit still assigned to it.

    A unit still ``dispatched`` (it has not moved) is ``available`` at once; one that has
    moved is ``returning`` to station (it can take a new job on the way). Their records go,
    and every signal request they hold is cancelled.

    Args:
        incident: the incident snapshot.
        records: the assignment records of its units (others are ignored).
        units: those units' snapshots (units serving another incident are left alone).
        now: the clock.

    Raises:
        ConflictError: the incident is already closed.
    """
    if incident.status is IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is already closed")
    closed = incident.model_copy(
        update={"status": IncidentStatus.CLOSED, "updated_at": now, "version": incident.version + 1}
    )
    mine = [r for r in records if r.incident_id == incident.id]
    held = {r.unit_id for r in mine}
    released = [
        u.model_copy(
            update={
                "status": UnitStatus.AVAILABLE
                if u.status is UnitStatus.DISPATCHED
                else UnitStatus.RETURNING,
                "incident_id": None,
                "version": u.version + 1,
            }
        )
        for u in units
        if u.id in held and u.incident_id == incident.id
    ]
    cancels = [c for r in mine for c in held_cancels(r, now=now, config=config)]
    return Closed(incident=closed, units=released, records=mine, cancels=cancels)


def request_close(
    incident: Incident, agency: Agency, *, actor: str, reason: str, now: datetime
) -> Incident | None:
    """An involved agency asks the lead agency to close: the request kept on the incident.

    Returns:
        The incident with the request (version + 1), or None when this agency already asked.

    Raises:
        ConflictError: the incident is closed.
    """
    if incident.status is IncidentStatus.CLOSED:
        raise ConflictError(f"incident {incident.id} is already closed")
    if agency in incident.close_requests:
        return None
    entry = TimelineEntry(
        at=now, type="incident.close_requested", actor=actor, text=f"{agency.value}: {reason}"
    )
    return incident.model_copy(
        update={
            "close_requests": [*incident.close_requests, agency],
            "timeline": [*incident.timeline, entry],
            "updated_at": now,
            "version": incident.version + 1,
        }
    )
