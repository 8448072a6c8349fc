"""Steps 6-7, assign and route: units sent to an incident, each with routes and green waves.

The decisions are :mod:`dispatch.core.assign`'s (what an assignment holds, the hospital,
release on close); this adapter asks the router for the routes (off the event loop), commits
the incident, the units and their records together, and hands protected records to the
green-wave step (:class:`dispatch.flow.greenwave.GreenWave`). Green-wave requests go out only
while the incident's protection is on: the 122 coordinator's ack of the whistle, or a 122
dispatcher turning it on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from dispatch.core import assign as core
from dispatch.core.assign import AssignmentRecord, Closed, UnitRoutes
from dispatch.core.recommend import origin_for
from dispatch.errors import ConflictError, NoGraphError, NotFoundError
from dispatch.events import (
    AssignmentCreated,
    AssignmentReleased,
    EventType,
    GreenWaveActivated,
    GreenWaveEnabled,
    GreenWavePlanned,
    IncidentClosed,
    IncidentCloseRequested,
    RoutePlanned,
)
from dispatch.flow.fleet import Fleet, stage_unit
from dispatch.flow.greenwave import GreenWave
from dispatch.flow.merge import unindex
from dispatch.infra.store import Store, Tx
from dispatch.models import Agency, Hospital, Incident, Unit
from routing import OffGraphError, Route, Router

log = logging.getLogger(__name__)


class AssignmentRequest(BaseModel):
    unit_ids: list[str] = Field(min_length=1, max_length=50)
    hospital_id: str | None = None


class AssignmentRecords:
    """Each unit's current assignment record, with a per-instance cache checked by version.

    A terminal sends a fix a second and a record carries whole routes: checking the version
    (one HGET) instead of parsing the record each time keeps fixes cheap.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, AssignmentRecord] = {}

    async def get(self, unit_id: str) -> AssignmentRecord | None:
        key = self.store.keys.assignment(unit_id)
        version = await self.store.version(key)
        if version == 0:
            self._cache.pop(unit_id, None)
            return None
        cached = self._cache.get(unit_id)
        if cached is not None and cached.version == version:
            return cached
        record = await self.store.get(AssignmentRecord, key)
        if record is not None:
            self._cache[unit_id] = record
        return record

    async def driving(self, unit_ids: Sequence[str]) -> set[str]:
        """Which of these units hold an assignment record (one round trip for all)."""
        found = await self.store.existing([self.store.keys.assignment(u) for u in unit_ids])
        return {u for u, there in zip(unit_ids, found, strict=True) if there}

    def forget(self, unit_id: str) -> None:
        """Drop a cached record after this instance changed it."""
        self._cache.pop(unit_id, None)

    async def of_incident(self, incident: Incident) -> list[AssignmentRecord]:
        keys = self.store.keys
        found = await self.store.get_many(
            AssignmentRecord, [keys.assignment(a.unit_id) for a in incident.assignments]
        )
        return [r for r in found if r is not None and r.incident_id == incident.id]


class Assignments:
    """Assigns units, turns on green-wave protection, closes incidents and releases units."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        records: AssignmentRecords,
        greenwave: GreenWave,
        router: Router | None,
        *,
        clock: Callable[[], datetime],
        stale_after_s: float,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.records = records
        self.greenwave = greenwave
        self.router = router
        self.clock = clock
        self.stale_after_s = stale_after_s

    def _router(self) -> Router:
        if self.router is None:
            raise NoGraphError("no road graph is loaded (set YISHAO_GRAPH); cannot route")
        return self.router

    async def incident(self, incident_id: str) -> Incident:
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        return incident

    # -- assigning ---------------------------------------------------------------------
    async def assign(
        self, incident_id: str, request: AssignmentRequest, *, actor: str
    ) -> list[AssignmentRecord]:
        """Assign units to an incident, each with its route(s) and green-wave plan(s).

        Raises:
            NotFoundError: no such incident, unit or hospital.
            ConflictError: the incident is closed, a unit is not available (already assigned,
                out of service), or a unit cannot be routed.
            NoGraphError: no road graph is loaded.
        """
        assigned = await self.store.retry(
            lambda: self._assign(incident_id, request, actor), what=f"incident {incident_id}"
        )
        log.info("incident %s: assigned %s", incident_id, ", ".join(request.unit_ids))
        if any(r.greenwave_active for r in assigned.records):
            await self.greenwave.activate(assigned.records, now=self.clock())
        return assigned.records

    async def _assign(
        self, incident_id: str, request: AssignmentRequest, actor: str
    ) -> core.Assigned:
        keys = self.store.keys
        incident = await self.incident(incident_id)
        units = [await self.fleet.get_unit(uid) for uid in request.unit_ids]
        core.check_assignable(incident, units)
        now = self.clock()
        routes = await asyncio.gather(
            *(self._routes(u, incident, now=now, hospital_id=request.hospital_id) for u in units)
        )
        protected = await self.protected(incident.id)
        assigned = core.assign(incident, routes, actor=actor, now=now, protected=protected)
        tx = self.store.tx()
        tx.expect_version(keys.incident(incident.id), incident.version)
        for before, unit, record in zip(units, assigned.units, assigned.records, strict=True):
            tx.expect_version(keys.unit(unit.id), before.version)
            stage_unit(tx, keys, unit)
            tx.put(keys.assignment(unit.id), record, record.version)
        tx.put(keys.incident(incident.id), assigned.incident, assigned.incident.version)
        for record in assigned.records:
            _assignment_events(tx, record, actor=actor, now=now)
        await self.store.commit(tx)
        return assigned

    async def _routes(
        self, unit: Unit, incident: Incident, *, now: datetime, hospital_id: str | None
    ) -> UnitRoutes:
        router = self._router()
        point, _stale = origin_for(unit, now, self.stale_after_s)
        if point is None:
            raise ConflictError(f"unit {unit.id} has no position and no station")
        try:
            route = await asyncio.to_thread(router.route, point, (incident.lat, incident.lon))
        except OffGraphError as exc:
            raise ConflictError(f"cannot route unit {unit.id}: {exc}") from exc
        if not core.plans_transport(unit):
            return UnitRoutes(unit=unit, scene=route)
        choice = await self._hospital(incident, hospital_id)
        if choice is None:
            return UnitRoutes(unit=unit, scene=route)
        hospital, transport = choice
        return UnitRoutes(unit=unit, scene=route, hospital=hospital, transport=transport)

    async def _hospital(
        self, incident: Incident, wanted: str | None
    ) -> tuple[Hospital, Route] | None:
        router = self._router()
        hospitals = await self.fleet.hospitals()
        if wanted is not None:
            hospitals = [h for h in hospitals if h.id == wanted]
            if not hospitals:
                raise NotFoundError(f"no hospital {wanted}")
        else:
            hospitals = [h for h in hospitals if h.accepting]
        if not hospitals:
            return None
        scene = (incident.lat, incident.lon)
        times = await asyncio.to_thread(
            router.travel_times_from, scene, [(h.lat, h.lon) for h in hospitals]
        )
        best = core.choose_hospital(hospitals, [float(t) for t in times.duration_s], named=wanted)
        if best is None:
            return None
        hospital = hospitals[best]
        route = await asyncio.to_thread(router.route, scene, (hospital.lat, hospital.lon))
        return hospital, route

    # -- green-wave protection -----------------------------------------------------------
    async def protected(self, incident_id: str) -> bool:
        return await self.store.is_member(self.store.keys.greenwave_incidents, incident_id)

    async def stage_protection(
        self, tx: Tx, incident: Incident, *, actor: str, now: datetime
    ) -> list[AssignmentRecord]:
        """Add to ``tx`` what turning on green-wave protection for an incident takes."""
        keys = self.store.keys
        tx.sadd(keys.greenwave_incidents, incident.id)
        records = await self.records.of_incident(incident)
        for before, on in zip(
            [r for r in records if not r.greenwave_active], core.protect(records), strict=True
        ):
            tx.expect_version(keys.assignment(on.unit_id), before.version)
            tx.put(keys.assignment(on.unit_id), on, on.version)
            tx.event(
                EventType.GREENWAVE_ACTIVATED,
                GreenWaveActivated(unit_id=on.unit_id, signals=on.scene.greenwave.signals),
                actor=actor,
                ts=now,
                incident_id=incident.id,
            )
        return records

    async def enable_greenwave(self, incident_id: str, *, actor: str) -> int:
        """Turn on green-wave protection for every unit of an incident (now and later ones)."""

        async def attempt() -> list[AssignmentRecord]:
            incident = await self.incident(incident_id)
            now = self.clock()
            tx = self.store.tx()
            tx.expect_version(self.store.keys.incident(incident.id), incident.version)
            records = await self.stage_protection(tx, incident, actor=actor, now=now)
            tx.event(
                EventType.GREENWAVE_ENABLED,
                GreenWaveEnabled(units=[r.unit_id for r in records]),
                actor=actor,
                ts=now,
                incident_id=incident.id,
            )
            await self.store.commit(tx)
            return records

        records = await self.store.retry(attempt, what=f"incident {incident_id}")
        await self.activate(incident_id, now=self.clock())
        return len(records)

    async def activate(self, incident_id: str, *, now: datetime) -> int:
        """Send the first signal requests of every protected unit of an incident."""
        incident = await self.incident(incident_id)
        return await self.greenwave.activate(await self.records.of_incident(incident), now=now)

    # -- closing ---------------------------------------------------------------------------
    async def request_close(
        self, incident_id: str, agency: Agency, *, actor: str, reason: str
    ) -> Incident:
        """An involved agency asks the lead agency to close the incident (idempotent)."""

        async def attempt() -> Incident:
            incident = await self.incident(incident_id)
            now = self.clock()
            asked = core.request_close(incident, agency, actor=actor, reason=reason, now=now)
            if asked is None:
                return incident
            keys = self.store.keys
            tx = self.store.tx()
            tx.expect_version(keys.incident(incident.id), incident.version)
            tx.put(keys.incident(incident.id), asked, asked.version)
            tx.event(
                EventType.INCIDENT_CLOSE_REQUESTED,
                IncidentCloseRequested(incident=asked, agency=agency, reason=reason),
                actor=actor,
                ts=now,
                incident_id=incident.id,
            )
            await self.store.commit(tx)
            return asked

        return await self.store.retry(attempt, what=f"incident {incident_id}")

    async def close_incident(self, incident_id: str, *, actor: str, reason: str) -> Incident:
        """Close an incident and release its units (their green-wave requests cancelled).

        Off the open lists: no call merges into it any more. The whistle, if any, is closed
        by the caller (its pending summons stood down).

        Raises:
            NotFoundError: no such incident. ConflictError: already closed.
        """
        closed = await self.store.retry(
            lambda: self._close(incident_id, actor, reason), what=f"incident {incident_id}"
        )
        for record in closed.records:
            self.records.forget(record.unit_id)
        if closed.cancels:
            await self.greenwave.submit(closed.cancels, incident_id=incident_id, actor=actor)
        return closed.incident

    async def _close(self, incident_id: str, actor: str, reason: str) -> Closed:
        keys = self.store.keys
        incident = await self.incident(incident_id)
        records = await self.records.of_incident(incident)
        units = [await self.fleet.get_unit(r.unit_id) for r in records]
        now = self.clock()
        closed = core.close(incident, records, units, now=now, config=self.greenwave.config)
        tx = self.store.tx()
        tx.expect_version(keys.incident(incident.id), incident.version)
        tx.put(keys.incident(incident.id), closed.incident, closed.incident.version)
        tx.zrem(keys.open_incidents, incident.id)
        unindex(tx, keys, incident)
        tx.srem(keys.greenwave_incidents, incident.id)
        by_id = {u.id: u for u in units}
        for record in closed.records:
            tx.expect_version(keys.assignment(record.unit_id), record.version)
            tx.delete(keys.assignment(record.unit_id))
        for unit in closed.units:
            tx.expect_version(keys.unit(unit.id), by_id[unit.id].version)
            stage_unit(tx, keys, unit)
            tx.event(
                EventType.ASSIGNMENT_RELEASED,
                AssignmentReleased(unit_id=unit.id, status=unit.status, reason="incident closed"),
                actor=actor,
                ts=now,
                incident_id=incident.id,
            )
        tx.event(
            EventType.INCIDENT_CLOSED,
            IncidentClosed(
                incident=closed.incident, reason=reason, released=[u.id for u in closed.units]
            ),
            actor=actor,
            ts=now,
            incident_id=incident.id,
        )
        await self.store.commit(tx)
        return closed


def _assignment_events(tx: Tx, record: AssignmentRecord, *, actor: str, now: datetime) -> None:
    incident_id = record.incident_id
    tx.event(
        EventType.ASSIGNMENT_CREATED,
        AssignmentCreated(
            unit_id=record.unit_id,
            agency=record.agency,
            unit_type=record.unit_type,
            eta_s=record.scene.route.duration_s,
            distance_m=record.scene.route.distance_m,
            hospital=record.hospital,
        ),
        actor=actor,
        ts=now,
        incident_id=incident_id,
    )
    for leg in (record.scene, record.transport):
        if leg is None:
            continue
        tx.event(
            EventType.ROUTE_PLANNED,
            RoutePlanned(unit_id=record.unit_id, leg=leg.kind, route=leg.route),
            actor=actor,
            ts=now,
            incident_id=incident_id,
        )
        tx.event(
            EventType.GREENWAVE_PLANNED,
            GreenWavePlanned(
                unit_id=record.unit_id,
                leg=leg.kind,
                active=record.greenwave_active and leg.kind is core.LegKind.SCENE,
                departure=leg.greenwave.departure,
                signals=leg.greenwave.signals,
                requester=leg.greenwave.requester,
            ),
            actor=actor,
            ts=now,
            incident_id=incident_id,
        )
