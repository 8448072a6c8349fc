"""Terminals' positions and status: ETAs, green-wave re-timing, re-routing, the leg followed.

A fix is recorded (latest per unit, and on a capped stream every instance reads for the live
map). For a unit driving a leg, the fix is projected onto the route and the green wave is
re-planned from it (:func:`routing.greenwave.replan_from_position`): signals passed are
cancelled, signals ahead re-timed; a vehicle farther than ``max_off_route_m`` from its route
is re-routed from where it is. A status report follows :func:`dispatch.core.assign.on_status`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel

from dispatch.core import assign as core
from dispatch.core.assign import Leg
from dispatch.events import EventType, IncidentUpdated, UnitStatusChanged
from dispatch.flow.assign import AssignmentRecords
from dispatch.flow.fleet import Fleet, stage_unit
from dispatch.flow.greenwave import GreenWave
from dispatch.infra.store import Store
from dispatch.models import Position, Unit, UnitStatus
from routing import OffGraphError, Router
from routing.greenwave import PlanUpdate, replan_for_new_route, replan_from_position

log = logging.getLogger(__name__)


class Fix(BaseModel):
    """What a position did: where the unit is on its leg and what was sent."""

    unit_id: str
    eta_s: float | None = None
    progress_s: float | None = None
    off_route_m: float | None = None
    rerouted: bool = False
    sent: int = 0


class Tracking:
    """Handles ``position`` and ``status`` messages of vehicle terminals."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        records: AssignmentRecords,
        greenwave: GreenWave,
        router: Router | None,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.records = records
        self.greenwave = greenwave
        self.router = router
        self.clock = clock
        self._queue: list[tuple[str, Position, asyncio.Future[Fix]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, unit_id: str, pos: Position, *, eta_s: float | None = None) -> None:
        """Record one fix (latest position and the live-map stream)."""
        await self.store.record_positions([(unit_id, pos, eta_s)])

    async def handle(self, unit_id: str, pos: Position) -> Fix:
        """Take one fix: record it and re-time or re-route the unit's green wave.

        Fixes from all terminals of this instance are gathered for one event-loop turn and
        handled together: two thousand terminals at 1 Hz would otherwise be four thousand
        awaited Redis round trips a second and exhaust the connection pool.
        """
        future: asyncio.Future[Fix] = asyncio.get_running_loop().create_future()
        self._queue.append((unit_id, pos, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other fixes that arrived in this turn join the batch
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._handle_batch([(u, p) for u, p, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each waiting terminal gets the error
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), fix in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(fix)

    async def _handle_batch(self, batch: Sequence[tuple[str, Position]]) -> list[Fix]:
        driving = await self.records.driving([u for u, _ in batch])
        idle = [(u, p, None) for u, p in batch if u not in driving]
        if idle:
            await self.store.record_positions(idle)
        results: list[Fix] = []
        for unit_id, pos in batch:
            if unit_id in driving:
                results.append(await self._handle_driving(unit_id, pos))
            else:
                results.append(Fix(unit_id=unit_id))
        return results

    async def _handle_driving(self, unit_id: str, pos: Position) -> Fix:
        record = await self.records.get(unit_id)
        leg = record.leg() if record is not None else None
        if record is None or leg is None:
            await self.record(unit_id, pos)
            return Fix(unit_id=unit_id)
        config = self.greenwave.config
        update = replan_from_position(
            leg.greenwave, position=(pos.lat, pos.lon), now=pos.at, config=config
        )
        reason: str | None = None
        if update.off_route_m > config.max_off_route_m:
            rerouted = await self._reroute(leg, pos)
            if rerouted is not None:
                reason = f"off route by {update.off_route_m:.0f} m"
                update = rerouted
        route = update.plan.route
        eta_s = max(route.duration_s - update.plan.progress_s, 0.0)
        await self.record(unit_id, pos, eta_s=eta_s)
        sent = await self.greenwave.send(record, update, now=pos.at, reason=reason)
        return Fix(
            unit_id=unit_id,
            eta_s=eta_s,
            progress_s=update.plan.progress_s,
            off_route_m=update.off_route_m,
            rerouted=reason is not None,
            sent=sent,
        )

    async def _reroute(self, leg: Leg, pos: Position) -> PlanUpdate | None:
        if self.router is None:
            return None
        destination = (leg.route.destination.asked_lat, leg.route.destination.asked_lon)
        try:
            route = await asyncio.to_thread(self.router.route, (pos.lat, pos.lon), destination)
        except OffGraphError:
            return None
        return replan_for_new_route(leg.greenwave, route, now=pos.at, config=self.greenwave.config)

    async def set_status(self, unit_id: str, status: UnitStatus, *, actor: str) -> Unit:
        """A terminal reports a status change; the assignment follows it.

        Raises:
            NotFoundError: no such unit.
            ConflictError: a status a terminal may not set.
        """
        change = await self.store.retry(
            lambda: self._set_status(unit_id, status, actor), what=f"unit {unit_id}"
        )
        self.records.forget(unit_id)
        if change.cancels:
            await self.greenwave.submit(change.cancels, incident_id=change.incident_id, actor=actor)
        if change.activate and change.record is not None:
            await self.greenwave.activate([change.record], now=self.clock())
        return change.unit

    async def _set_status(self, unit_id: str, status: UnitStatus, actor: str) -> core.StatusChange:
        keys = self.store.keys
        unit = await self.fleet.get_unit(unit_id)
        record = await self.records.get(unit_id)
        incident = await self.store.get_incident(record.incident_id) if record else None
        now = self.clock()
        change = core.on_status(
            unit, record, incident, status, now=now, config=self.greenwave.config
        )
        tx = self.store.tx()
        tx.expect_version(keys.unit(unit_id), unit.version)
        if record is not None:
            tx.expect_version(keys.assignment(unit_id), record.version)
            if change.dropped:
                tx.delete(keys.assignment(unit_id))
            elif change.record is not None:
                tx.put(keys.assignment(unit_id), change.record, change.record.version)
        if change.incident is not None and incident is not None:
            tx.expect_version(keys.incident(incident.id), incident.version)
            tx.put(keys.incident(incident.id), change.incident, change.incident.version)
            tx.event(
                EventType.INCIDENT_UPDATED,
                IncidentUpdated(incident=change.incident, change=change.incident.status.value),
                actor=f"unit:{unit_id}",
                ts=now,
                incident_id=incident.id,
            )
        stage_unit(tx, keys, change.unit)
        tx.event(
            EventType.UNIT_STATUS,
            UnitStatusChanged(unit_id=unit_id, status=status, previous=unit.status),
            actor=actor,
            ts=now,
            incident_id=record.incident_id if record else None,
        )
        await self.store.commit(tx)
        return change
