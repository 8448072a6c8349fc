"""Recommending and assigning units: the router and the pure ranking, committed to Redis.

Each assignment gets a route to the scene and a green-wave plan (one signal request per
signal on the route). An ambulance also gets a destination hospital, chosen by road travel
time from the scene among accepting hospitals, and a second route and plan for the transport
leg. Green-wave requests go out to signal controllers only while the incident's protection is
on (the 122 coordinator's ack of the whistle, or a 122 dispatcher turning it on).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from dispatch.core.recommend import AgencyRecommendation, Travel, origin_for, rank_units
from dispatch.errors import ConflictError, NotFoundError, StoreError
from dispatch.flow.fleet import Fleet, stage_unit
from dispatch.infra.store import Store, Tx, VersionConflict
from dispatch.models import (
    ASSIGNABLE_STATUSES,
    Agency,
    Assignment,
    Hospital,
    Incident,
    IncidentStatus,
    Unit,
    UnitStatus,
    UnitType,
)
from routing import OffGraphError, Route, Router
from routing.greenwave import ROLE_BY_AGENCY, GreenWavePlan, Requester, plan_green_wave

log = logging.getLogger(__name__)

# Planning the transport leg before the crew reaches the patient needs a guess of the time on
# scene; the plan is re-timed from live positions once the ambulance is actually transporting.
ON_SCENE_ESTIMATE_S = 600.0


class Recommendations(BaseModel):
    incident_id: str
    computed_at: datetime
    agencies: list[AgencyRecommendation]

    def top(self, n: int) -> Recommendations:
        """The same, keeping each agency's ``n`` best candidates plus every suggested unit."""
        return self.model_copy(
            update={
                "agencies": [
                    a.model_copy(
                        update={
                            "candidates": [
                                c
                                for i, c in enumerate(a.candidates)
                                if i < n or c.unit_id in a.suggested
                            ]
                        }
                    )
                    for a in self.agencies
                ]
            }
        )


class Leg(BaseModel):
    """One drive of an assignment: its route and green-wave plan."""

    kind: str = Field(description="'scene' or 'transport'")
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
    active_leg: str | None = Field("scene", description="the leg being driven, None when parked")
    sent_eta: dict[str, float] = Field(
        default_factory=dict,
        description="intersection id -> ETA (epoch s) last sent to its controller",
    )
    version: int = 1

    def leg(self) -> Leg | None:
        """The leg being driven now."""
        if self.active_leg == "scene":
            return self.scene
        if self.active_leg == "transport":
            return self.transport
        return None


class AssignmentRequest(BaseModel):
    unit_ids: list[str] = Field(min_length=1, max_length=50)
    hospital_id: str | None = None


def requester_for(unit: Unit, incident: Incident) -> Requester:
    return Requester(
        agency=unit.agency.value,
        unit_id=unit.id,
        role=ROLE_BY_AGENCY[unit.agency.value],
        incident_priority=incident.priority,
    )


class Responder:
    """Recommends and assigns units; plans their routes and green waves."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        router: Router | None,
        *,
        clock: Callable[[], datetime],
        stale_after_s: float,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.router = router
        self.clock = clock
        self.stale_after_s = stale_after_s
        self._cache: dict[str, AssignmentRecord] = {}
        # Set by the app to the position desk's ``activate``: sends a protected unit's first
        # signal requests. Without it (tests of this module alone) plans are only stored.
        self.activation: Callable[[AssignmentRecord, datetime], Awaitable[int]] | None = None

    def _router(self) -> Router:
        if self.router is None:
            raise StoreError("no road graph is loaded (set YISHAO_GRAPH); cannot route")
        return self.router

    async def incident(self, incident_id: str) -> Incident:
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        return incident

    async def recommend(self, incident_id: str) -> Recommendations:
        """Rank available units of every needed agency by road travel time to the scene."""
        incident = await self.incident(incident_id)
        return await self.recommend_for(incident)

    async def recommend_for(self, incident: Incident) -> Recommendations:
        router = self._router()
        now = self.clock()
        agencies = {n.agency for n in incident.needs}
        units = [
            u
            for u in await self.fleet.units()
            if u.agency in agencies and u.status in ASSIGNABLE_STATUSES
        ]
        origins: list[tuple[float, float]] = []
        placed: list[tuple[Unit, bool]] = []
        for unit in units:
            point, stale = origin_for(unit, now, self.stale_after_s)
            if point is not None:
                origins.append(point)
                placed.append((unit, stale))
        try:
            times = await asyncio.to_thread(
                router.travel_times_to, (incident.lat, incident.lon), origins
            )
        except OffGraphError as exc:
            raise ConflictError(f"incident {incident.id} is off the road graph: {exc}") from exc
        travel = {
            unit.id: Travel(
                eta_s=float(times.duration_s[i]),
                distance_m=float(times.distance_m[i]),
                from_station=stale,
            )
            for i, (unit, stale) in enumerate(placed)
        }
        ranked = rank_units(
            units=units,
            needs=incident.needs,
            travel=travel,
            now=now,
            stale_after_s=self.stale_after_s,
        )
        return Recommendations(incident_id=incident.id, computed_at=now, agencies=ranked)

    async def _choose_hospital(
        self, incident: Incident, wanted: str | None
    ) -> tuple[Hospital, Route] | None:
        router = self._router()
        hospitals = await self.fleet.hospitals()
        if wanted is not None:
            chosen = [h for h in hospitals if h.id == wanted]
            if not chosen:
                raise NotFoundError(f"no hospital {wanted}")
            hospitals = chosen
        else:
            hospitals = [h for h in hospitals if h.accepting]
        if not hospitals:
            return None
        scene = (incident.lat, incident.lon)
        times = await asyncio.to_thread(
            router.travel_times_from, scene, [(h.lat, h.lon) for h in hospitals]
        )
        best = min(range(len(hospitals)), key=lambda i: float(times.duration_s[i]))
        if not math.isfinite(float(times.duration_s[best])):
            return None
        hospital = hospitals[best]
        route = await asyncio.to_thread(router.route, scene, (hospital.lat, hospital.lon))
        return hospital, route

    async def _plan(
        self, unit: Unit, incident: Incident, *, now: datetime, hospital_id: str | None
    ) -> AssignmentRecord:
        router = self._router()
        point, _stale = origin_for(unit, now, self.stale_after_s)
        if point is None:
            raise ConflictError(f"unit {unit.id} has no position and no station")
        try:
            route = await asyncio.to_thread(router.route, point, (incident.lat, incident.lon))
        except OffGraphError as exc:
            raise ConflictError(f"cannot route unit {unit.id}: {exc}") from exc
        requester = requester_for(unit, incident)
        scene = Leg(
            kind="scene",
            route=route,
            greenwave=plan_green_wave(route, departure=now, requester=requester).plan,
        )
        record = AssignmentRecord(
            incident_id=incident.id,
            unit_id=unit.id,
            agency=unit.agency,
            unit_type=unit.type,
            assigned_at=now,
            assigned_by="",
            scene=scene,
        )
        if unit.type is UnitType.AMBULANCE:
            choice = await self._choose_hospital(incident, hospital_id)
            if choice is not None:
                hospital, transport = choice
                leave = now + timedelta(seconds=route.duration_s + ON_SCENE_ESTIMATE_S)
                record.hospital = hospital
                record.transport = Leg(
                    kind="transport",
                    route=transport,
                    greenwave=plan_green_wave(transport, departure=leave, requester=requester).plan,
                )
        return record

    async def assign(
        self, incident_id: str, request: AssignmentRequest, *, actor: str
    ) -> list[AssignmentRecord]:
        """Assign units to an incident, each with its route(s) and green-wave plan(s).

        Raises:
            NotFoundError: no such incident or unit.
            ConflictError: the incident is closed, a unit is not available (already assigned,
                out of service), or a unit cannot be routed.
        """
        if len(set(request.unit_ids)) != len(request.unit_ids):
            raise ConflictError("a unit is listed twice")
        keys = self.store.keys
        for _ in range(8):
            incident = await self.incident(incident_id)
            if incident.status is IncidentStatus.CLOSED:
                raise ConflictError(f"incident {incident_id} is closed")
            units = [await self.fleet.get_unit(uid) for uid in request.unit_ids]
            for unit in units:
                if unit.status not in ASSIGNABLE_STATUSES:
                    where = f" to {unit.incident_id}" if unit.incident_id else ""
                    raise ConflictError(
                        f"unit {unit.id} is {unit.status.value}{where}; it cannot be assigned"
                    )
            now = self.clock()
            records = await asyncio.gather(
                *(self._plan(u, incident, now=now, hospital_id=request.hospital_id) for u in units)
            )
            protected = await self.greenwave_enabled(incident)
            tx = self.store.tx()
            tx.expect_version(keys.incident(incident.id), incident.version)
            assignments = list(incident.assignments)
            for unit, record in zip(units, records, strict=True):
                record.assigned_by = actor
                record.greenwave_active = protected
                tx.expect_version(keys.unit(unit.id), unit.version)
                moved = unit.model_copy(
                    update={
                        "status": UnitStatus.DISPATCHED,
                        "incident_id": incident.id,
                        "version": unit.version + 1,
                    }
                )
                stage_unit(tx, keys, moved)
                tx.put(keys.assignment(unit.id), record, record.version)
                assignments.append(
                    Assignment(
                        unit_id=unit.id,
                        agency=unit.agency,
                        unit_type=unit.type,
                        assigned_at=now,
                        assigned_by=actor,
                        eta_s=record.scene.route.duration_s,
                        distance_m=record.scene.route.distance_m,
                        hospital_id=record.hospital.id if record.hospital else None,
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
            tx.put(keys.incident(incident.id), updated, updated.version)
            for record in records:
                self._assignment_events(tx, record, incident_id=incident.id, actor=actor, now=now)
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            log.info("incident %s: assigned %s", incident.id, ", ".join(request.unit_ids))
            if protected:
                await self.activate_all(incident.id, now=now)
            return list(records)
        raise StoreError(f"incident {incident_id} kept changing; try again")

    def _assignment_events(
        self, tx: Tx, record: AssignmentRecord, *, incident_id: str, actor: str, now: datetime
    ) -> None:
        tx.event(
            "assignment.created",
            actor=actor,
            ts=now,
            incident_id=incident_id,
            data={
                "unit_id": record.unit_id,
                "agency": record.agency,
                "unit_type": record.unit_type,
                "eta_s": record.scene.route.duration_s,
                "distance_m": record.scene.route.distance_m,
                "hospital": record.hospital,
            },
        )
        for leg in (record.scene, record.transport):
            if leg is None:
                continue
            tx.event(
                "route.planned",
                actor=actor,
                ts=now,
                incident_id=incident_id,
                data={"unit_id": record.unit_id, "leg": leg.kind, "route": leg.route},
            )
            tx.event(
                "greenwave.planned",
                actor=actor,
                ts=now,
                incident_id=incident_id,
                data={
                    "unit_id": record.unit_id,
                    "leg": leg.kind,
                    "active": record.greenwave_active and leg.kind == "scene",
                    "departure": leg.greenwave.departure,
                    "signals": leg.greenwave.signals,
                    "requester": leg.greenwave.requester,
                },
            )

    async def assignment_of(self, unit_id: str) -> AssignmentRecord | None:
        """The unit's current assignment record, from a per-instance cache checked by version.

        A terminal sends a fix a second and the record carries whole routes: checking the
        version (one HGET) instead of parsing the record each time keeps fixes cheap.
        """
        key = self.store.keys.assignment(unit_id)
        raw_version = await self.store.redis.hget(key, "v")
        if raw_version is None:
            self._cache.pop(unit_id, None)
            return None
        version = int(raw_version)
        cached = self._cache.get(unit_id)
        if cached is not None and cached.version == version:
            return cached
        record = await self.store.get(AssignmentRecord, key)
        if record is not None:
            self._cache[unit_id] = record
        return record

    async def driving(self, unit_ids: Sequence[str]) -> set[str]:
        """Which of these units hold an assignment record (one round trip for all)."""
        if not unit_ids:
            return set()
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for unit_id in unit_ids:
                pipe.exists(self.store.keys.assignment(unit_id))
            found = await pipe.execute()
        return {u for u, n in zip(unit_ids, found, strict=True) if n}

    def forget(self, unit_id: str) -> None:
        """Drop a cached record after this instance changed it."""
        self._cache.pop(unit_id, None)

    async def assignments(self, incident: Incident) -> list[AssignmentRecord]:
        keys = self.store.keys
        found = await self.store.get_many(
            AssignmentRecord, [keys.assignment(a.unit_id) for a in incident.assignments]
        )
        return [r for r in found if r is not None and r.incident_id == incident.id]

    async def greenwave_enabled(self, incident: Incident) -> bool:
        raw = await self.store.redis.sismember(self.store.keys.greenwave_incidents, incident.id)
        return bool(raw)

    async def add_enable_greenwave(
        self, tx: Tx, incident: Incident, *, actor: str, now: datetime
    ) -> list[AssignmentRecord]:
        """Add to ``tx`` what turning on green-wave protection for an incident takes."""
        keys = self.store.keys
        tx.sadd(keys.greenwave_incidents, incident.id)
        records = await self.assignments(incident)
        for record in records:
            if record.greenwave_active:
                continue
            tx.expect_version(keys.assignment(record.unit_id), record.version)
            on = record.model_copy(update={"greenwave_active": True, "version": record.version + 1})
            tx.put(keys.assignment(record.unit_id), on, on.version)
            tx.event(
                "greenwave.activated",
                actor=actor,
                ts=now,
                incident_id=incident.id,
                data={"unit_id": record.unit_id, "signals": record.scene.greenwave.signals},
            )
        return records

    async def enable_greenwave(self, incident_id: str, *, actor: str) -> int:
        """Turn on green-wave protection for every unit of an incident (now and later ones)."""
        for _ in range(8):
            incident = await self.incident(incident_id)
            now = self.clock()
            tx = self.store.tx()
            tx.expect_version(self.store.keys.incident(incident.id), incident.version)
            records = await self.add_enable_greenwave(tx, incident, actor=actor, now=now)
            tx.event(
                "greenwave.enabled",
                actor=actor,
                ts=now,
                incident_id=incident.id,
                data={"units": [r.unit_id for r in records]},
            )
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            await self.activate_all(incident.id, now=now)
            return len(records)
        raise StoreError(f"incident {incident_id} kept changing; try again")

    async def close_incident(self, incident_id: str, *, actor: str, reason: str) -> Incident:
        """Close an incident: off the open lists (no call merges into it any more).

        Units keep their assignment until their crews report available; the whistle, if
        any, is closed by the caller (its pending summons stood down).

        Raises:
            NotFoundError: no such incident. ConflictError: already closed.
        """
        keys = self.store.keys
        for _ in range(8):
            incident = await self.incident(incident_id)
            if incident.status is IncidentStatus.CLOSED:
                raise ConflictError(f"incident {incident_id} is already closed")
            now = self.clock()
            closed = incident.model_copy(
                update={
                    "status": IncidentStatus.CLOSED,
                    "updated_at": now,
                    "version": incident.version + 1,
                }
            )
            tx = self.store.tx()
            tx.expect_version(keys.incident(incident.id), incident.version)
            tx.put(keys.incident(incident.id), closed, closed.version)
            tx.zrem(keys.open_incidents, incident.id)
            tx.zrem(keys.open_geo, incident.id)
            tx.srem(keys.greenwave_incidents, incident.id)
            tx.event(
                "incident.closed",
                actor=actor,
                ts=now,
                incident_id=incident.id,
                data={"incident": closed, "reason": reason},
            )
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            return closed
        raise StoreError(f"incident {incident_id} kept changing; try again")

    async def activate_all(self, incident_id: str, *, now: datetime) -> int:
        """Send the first signal requests of every protected unit of an incident."""
        if self.activation is None:
            return 0
        incident = await self.incident(incident_id)
        sent = 0
        for record in await self.assignments(incident):
            if record.greenwave_active and not record.sent_eta:
                sent += await self.activation(record, now)
        return sent
