"""Vehicle positions and status from terminals: ETAs, green-wave re-timing, re-routing.

A fix is recorded (latest per unit in a hash, and on a capped positions stream every
instance reads for the live map). For a unit driving a leg with green-wave protection, the
fix is projected onto the route: signals passed are cancelled, signals ahead whose ETA moved
by more than ``retime_s`` are updated (a controller does not need a message a second), and a
vehicle farther than the plan's ``max_off_route_m`` from its route is re-routed from where it
is, cancelling what the new route no longer passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from dispatch.errors import ConflictError, StoreError
from dispatch.flow.assign import AssignmentRecord, Leg, Responder
from dispatch.flow.fleet import Fleet, stage_unit
from dispatch.flow.greenwave import SignalDesk
from dispatch.infra.store import Store, Tx, VersionConflict
from dispatch.models import IncidentStatus, Position, Unit, UnitStatus
from routing import OffGraphError
from routing.greenwave import (
    GreenWaveConfig,
    PlanUpdate,
    RequestType,
    SignalRequest,
    cancel_requests,
    plan_green_wave,
    replan_for_new_route,
    replan_from_position,
)

log = logging.getLogger(__name__)

POSITION_STREAM_MAXLEN = 200_000

# Which statuses a terminal may report, and what each means for the assignment.
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


class Fix(BaseModel):
    """What a position did: where the unit is on its leg and what was sent."""

    unit_id: str
    eta_s: float | None = None
    progress_s: float | None = None
    off_route_m: float | None = None
    rerouted: bool = False
    sent: int = 0


class PositionDesk:
    """Handles ``position`` and ``status`` messages of vehicle terminals."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        responder: Responder,
        desk: SignalDesk,
        *,
        clock: Callable[[], datetime],
        retime_s: float = 2.0,
        config: GreenWaveConfig | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.responder = responder
        self.desk = desk
        self.clock = clock
        self.retime_s = retime_s
        self.config = config or GreenWaveConfig()
        self._queue: list[tuple[str, Position, asyncio.Future[Fix]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, unit_id: str, pos: Position, *, eta_s: float | None = None) -> None:
        """Record one fix (latest position and the live-map stream)."""
        await self._record_many([(unit_id, pos, eta_s)])

    async def _record_many(self, fixes: Sequence[tuple[str, Position, float | None]]) -> None:
        keys = self.store.keys
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for unit_id, pos, eta_s in fixes:
                body = pos.model_dump_json()
                fields: dict[Any, Any] = {"unit_id": unit_id, "position": body}
                if eta_s is not None:
                    fields["eta_s"] = f"{eta_s:.1f}"
                pipe.hset(keys.positions, unit_id, body)
                pipe.xadd(
                    keys.position_stream, fields, maxlen=POSITION_STREAM_MAXLEN, approximate=True
                )
            await pipe.execute()

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
        driving = await self.responder.driving([u for u, _ in batch])
        idle = [(u, p, None) for u, p in batch if u not in driving]
        if idle:
            await self._record_many(idle)
        results: list[Fix] = []
        for unit_id, pos in batch:
            if unit_id in driving:
                results.append(await self._handle_driving(unit_id, pos))
            else:
                results.append(Fix(unit_id=unit_id))
        return results

    async def _handle_driving(self, unit_id: str, pos: Position) -> Fix:
        record = await self.responder.assignment_of(unit_id)
        leg = record.leg() if record is not None else None
        if record is None or leg is None:
            await self.record(unit_id, pos)
            return Fix(unit_id=unit_id)
        now = pos.at
        update = replan_from_position(
            leg.greenwave, position=(pos.lat, pos.lon), now=now, config=self.config
        )
        rerouted = False
        if update.off_route_m > self.config.max_off_route_m:
            rerouted_update = await self._reroute(leg, pos)
            if rerouted_update is not None:
                update, rerouted = rerouted_update, True
        route = update.plan.route
        eta_s = max(route.duration_s - update.plan.progress_s, 0.0)
        await self.record(unit_id, pos, eta_s=eta_s)
        sent = await self._commit(record, update, now=now, rerouted=rerouted)
        return Fix(
            unit_id=unit_id,
            eta_s=eta_s,
            progress_s=update.plan.progress_s,
            off_route_m=update.off_route_m,
            rerouted=rerouted,
            sent=sent,
        )

    async def _reroute(self, leg: Leg, pos: Position) -> PlanUpdate | None:
        router = self.responder.router
        if router is None:
            return None
        destination = (leg.route.destination.asked_lat, leg.route.destination.asked_lon)
        try:
            route = await asyncio.to_thread(router.route, (pos.lat, pos.lon), destination)
        except OffGraphError:
            return None
        return replan_for_new_route(leg.greenwave, route, now=pos.at, config=self.config)

    def _outgoing(
        self, record: AssignmentRecord, update: PlanUpdate
    ) -> tuple[list[SignalRequest], dict[str, float]]:
        """Pick the messages worth sending and the new last-sent ETAs."""
        sent = dict(record.sent_eta)
        out: list[SignalRequest] = []
        for message in update.requests:
            key = str(message.intersection_id)
            eta = message.eta.timestamp()
            if message.request_type is RequestType.CANCEL:
                if key in sent:
                    out.append(message)
                    del sent[key]
                continue
            if key not in sent:
                out.append(message.model_copy(update={"request_type": RequestType.REQUEST}))
            elif abs(sent[key] - eta) > self.retime_s:
                out.append(message)
            else:
                continue
            sent[key] = eta
        return out, sent

    async def _commit(
        self, record: AssignmentRecord, update: PlanUpdate, *, now: datetime, rerouted: bool
    ) -> int:
        keys = self.store.keys
        messages, sent = (
            self._outgoing(record, update) if record.greenwave_active else ([], record.sent_eta)
        )
        leg_name = record.active_leg or "scene"
        leg = record.leg()
        assert leg is not None
        new_leg = leg.model_copy(update={"route": update.plan.route, "greenwave": update.plan})
        changed = record.model_copy(
            update={leg_name: new_leg, "sent_eta": sent, "version": record.version + 1}
        )
        tx = self.store.tx()
        tx.expect_version(keys.assignment(record.unit_id), record.version)
        tx.put(keys.assignment(record.unit_id), changed, changed.version)
        if rerouted:
            tx.event(
                "route.planned",
                actor=f"unit:{record.unit_id}",
                ts=now,
                incident_id=record.incident_id,
                data={
                    "unit_id": record.unit_id,
                    "leg": leg_name,
                    "route": update.plan.route,
                    "reason": f"off route by {update.off_route_m:.0f} m",
                },
            )
        try:
            await self.store.commit(tx)
        except VersionConflict:
            # Another fix of this unit won; the next fix re-times from the fresh record.
            return 0
        self.responder.forget(record.unit_id)
        if messages:
            await self.desk.submit(
                messages, incident_id=record.incident_id, actor=f"unit:{record.unit_id}"
            )
        return len(messages)

    async def activate(self, record: AssignmentRecord, now: datetime) -> int:
        """Send the first requests of a record whose protection was just turned on."""
        leg = record.leg()
        if leg is None:
            return 0
        position = await self.fleet.position(record.unit_id)
        if position is not None and position.at >= leg.greenwave.departure:
            update = replan_from_position(
                leg.greenwave, position=(position.lat, position.lon), now=now, config=self.config
            )
        else:
            update = plan_green_wave(
                leg.route,
                departure=leg.greenwave.departure,
                requester=leg.greenwave.requester,
                config=self.config,
            )
        fresh = await self.responder.assignment_of(record.unit_id)
        if fresh is None:
            return 0
        return await self._commit(fresh, update, now=now, rerouted=False)

    async def set_status(self, unit_id: str, status: UnitStatus, *, actor: str) -> Unit:
        """A terminal reports a status change; the assignment follows it.

        Raises:
            NotFoundError: no such unit.
            ConflictError: a status a terminal may not set.
        """
        if status not in TERMINAL_STATUSES:
            raise ConflictError(f"a terminal cannot set status {status.value}")
        keys = self.store.keys
        for _ in range(8):
            unit = await self.fleet.get_unit(unit_id)
            record = await self.responder.assignment_of(unit_id)
            now = self.clock()
            moved = unit.model_copy(update={"status": status, "version": unit.version + 1})
            cancels: list[SignalRequest] = []
            tx = self.store.tx()
            tx.expect_version(keys.unit(unit_id), unit.version)
            if record is not None:
                new_leg = record.active_leg
                if status in (UnitStatus.ON_SCENE, UnitStatus.AT_HOSPITAL):
                    new_leg = None
                elif status is UnitStatus.TRANSPORTING and record.transport is not None:
                    new_leg = "transport"
                elif status in (
                    UnitStatus.AVAILABLE,
                    UnitStatus.RETURNING,
                    UnitStatus.OUT_OF_SERVICE,
                ):
                    new_leg = None
                cancels = self._cancels(record) if new_leg != record.active_leg else []
                changed = record.model_copy(
                    update={
                        "active_leg": new_leg,
                        "sent_eta": {} if cancels else record.sent_eta,
                        "version": record.version + 1,
                    }
                )
                if status is UnitStatus.TRANSPORTING and record.transport is not None:
                    # The transport leg starts now, not at the estimate made at assignment.
                    replanned = plan_green_wave(
                        record.transport.route,
                        departure=now,
                        requester=record.transport.greenwave.requester,
                        config=self.config,
                    ).plan
                    changed.transport = record.transport.model_copy(update={"greenwave": replanned})
                tx.expect_version(keys.assignment(unit_id), record.version)
                if status in (UnitStatus.AVAILABLE, UnitStatus.OUT_OF_SERVICE):
                    tx.delete(keys.assignment(unit_id))
                    moved.incident_id = None
                else:
                    tx.put(keys.assignment(unit_id), changed, changed.version)
                await self._incident_progress(tx, record.incident_id, unit_id, status, now=now)
            elif status in (UnitStatus.AVAILABLE, UnitStatus.OUT_OF_SERVICE):
                moved.incident_id = None
            stage_unit(tx, keys, moved)
            tx.event(
                "unit.status",
                actor=actor,
                ts=now,
                incident_id=record.incident_id if record else None,
                data={"unit_id": unit_id, "status": status, "previous": unit.status},
            )
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            self.responder.forget(unit_id)
            if cancels and record is not None:
                await self.desk.submit(cancels, incident_id=record.incident_id, actor=actor)
            if status is UnitStatus.TRANSPORTING:
                fresh = await self.responder.assignment_of(unit_id)
                if fresh is not None and fresh.greenwave_active:
                    await self.activate(fresh, now)
            return moved
        raise StoreError(f"unit {unit_id} kept changing; try again")

    def _cancels(self, record: AssignmentRecord) -> list[SignalRequest]:
        """Cancels for every intersection this unit still holds a request at."""
        leg = record.leg()
        if leg is None or not record.sent_eta:
            return []
        held = {int(k) for k in record.sent_eta}
        return cancel_requests(leg.greenwave, now=self.clock(), only=held, config=self.config)

    async def _incident_progress(
        self, tx: Tx, incident_id: str, unit_id: str, status: UnitStatus, *, now: datetime
    ) -> None:
        """The first unit on scene moves the incident to ``on_scene``."""
        if status is not UnitStatus.ON_SCENE:
            return
        incident = await self.store.get_incident(incident_id)
        if incident is None or incident.status is not IncidentStatus.DISPATCHED:
            return
        keys = self.store.keys
        on = incident.model_copy(
            update={
                "status": IncidentStatus.ON_SCENE,
                "updated_at": now,
                "version": incident.version + 1,
            }
        )
        tx.expect_version(keys.incident(incident.id), incident.version)
        tx.put(keys.incident(incident.id), on, on.version)
        tx.event(
            "incident.updated",
            actor=f"unit:{unit_id}",
            ts=now,
            incident_id=incident.id,
            data={"incident": on, "change": "on_scene"},
        )


def position_entry(fields: dict[bytes, bytes]) -> tuple[str, Position, float | None]:
    """Decode a positions-stream entry: unit id, fix, ETA (if driving a leg)."""
    unit_id = fields[b"unit_id"].decode()
    pos = Position.model_validate(orjson.loads(fields[b"position"]))
    eta = float(fields[b"eta_s"]) if b"eta_s" in fields else None
    return unit_id, pos, eta
