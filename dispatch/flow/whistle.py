"""The whistle's adapter: rosters, the pure state machine, timers and the event log together.

Every transition (sound, ack, timeout, close) is one commit: the whistle record, the
incident's link to it, the timers the state machine asked for and one event per effect
(``whistle.summons`` to page a coordinator, ``whistle.alert`` for the sounding centre,
``greenwave.enabled`` when the 122 coordinator acks), so a crash never leaves a summons
without its deadline or an ack without its green wave.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from dispatch.auth import Principal
from dispatch.core import whistle as machine
from dispatch.errors import ConflictError, ForbiddenError, NotFoundError, StoreError
from dispatch.flow.assign import AssignmentRequest, Recommendations, Responder
from dispatch.flow.fleet import Fleet
from dispatch.infra.store import Store, Tx, VersionConflict
from dispatch.infra.timers import Timers
from dispatch.models import AGENCY_CENTRE, Incident, Role

log = logging.getLogger(__name__)

TIMER_KIND = "whistle.ack_deadline"


class IncidentSummary(BaseModel):
    """What a summoned coordinator sees first."""

    id: str
    call_types: list[str]
    centres: list[str]
    lat: float
    lon: float
    address: str | None
    severity: int | None
    priority: int
    agencies: list[str]


def summary(incident: Incident) -> IncidentSummary:
    return IncidentSummary(
        id=incident.id,
        call_types=[t.value for t in incident.call_types],
        centres=[c.value for c in incident.centres],
        lat=incident.lat,
        lon=incident.lon,
        address=incident.address,
        severity=incident.severity,
        priority=incident.priority,
        agencies=[a.value for a in incident.agencies],
    )


def whistle_id_for(incident_id: str) -> str:
    """One whistle per incident: its id follows from the incident's."""
    return f"W-{incident_id}"


class WhistleService:
    """Sounds whistles, takes acks, escalates on missed deadlines."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        responder: Responder,
        timers: Timers,
        *,
        clock: Callable[[], datetime],
        ack_timeout_s: float,
        auto_assign: bool = False,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.responder = responder
        self.timers = timers
        self.clock = clock
        self.ack_timeout_s = ack_timeout_s
        self.auto_assign = auto_assign
        timers.on(TIMER_KIND, self._on_timer)

    async def get(self, whistle_id: str) -> machine.Whistle:
        found = await self.store.get(machine.Whistle, self.store.keys.whistle(whistle_id))
        if found is None:
            raise NotFoundError(f"no whistle {whistle_id}")
        return found

    async def open_whistles(self) -> list[machine.Whistle]:
        ids: Any = await self.store.redis.zrange(self.store.keys.open_whistles, 0, -1)
        keys = [self.store.keys.whistle(i.decode() if isinstance(i, bytes) else i) for i in ids]
        return [w for w in await self.store.get_many(machine.Whistle, keys) if w is not None]

    async def sound(
        self,
        incident_id: str,
        who: Principal,
        *,
        forced: bool = False,
        reason: str | None = None,
        recommended: Recommendations | None = None,
    ) -> machine.Whistle:
        """Sound the whistle for an incident on behalf of a 120 or 119 dispatcher.

        Raises:
            ForbiddenError: not a dispatcher of the 120 or 119 centre.
            ConflictError: not eligible (and not forced with a reason), closed, already sounded.
        """
        if who.role not in (Role.DISPATCHER, Role.ADMIN):
            raise ForbiddenError("only a 120 or 119 dispatcher sounds the whistle")
        centre = AGENCY_CENTRE.get(who.agency)
        if centre is None:
            raise ForbiddenError(f"a {who.agency.value} dispatcher has no call centre")
        keys = self.store.keys
        for _ in range(8):
            incident = await self.responder.incident(incident_id)
            _day, duty = await self.fleet.duty()
            now = self.clock()
            whistle, effects = machine.sound(
                whistle_id=whistle_id_for(incident.id),
                incident=incident,
                sounded_by=who.sub,
                centre=centre,
                duty=duty,
                now=now,
                ack_timeout_s=self.ack_timeout_s,
                forced=forced,
                reason=reason,
            )
            if recommended is None or recommended.incident_id != incident.id:
                recommended = await self._recommendations(incident)
            tx = self.store.tx()
            tx.expect_version(keys.incident(incident.id), incident.version)
            tx.expect_version(keys.whistle(whistle.id), 0)
            linked = incident.model_copy(
                update={
                    "whistle_id": whistle.id,
                    "updated_at": now,
                    "version": incident.version + 1,
                }
            )
            tx.put(keys.incident(incident.id), linked, linked.version)
            tx.put(keys.whistle(whistle.id), whistle, 1)
            tx.zadd(keys.open_whistles, whistle.id, now.timestamp())
            tx.event(
                "whistle.sounded",
                actor=who.sub,
                ts=now,
                incident_id=incident.id,
                data={"whistle": whistle, "incident": summary(incident), "centre": centre},
            )
            await self._apply(
                tx, whistle, effects, linked, actor=who.sub, now=now, extra=recommended
            )
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            log.info("whistle %s sounded by %s (%s)", whistle.id, who.sub, centre.value)
            if self.auto_assign and recommended is not None:
                await self._assign_top_units(incident.id, recommended, actor=who.sub)
            return whistle
        raise StoreError(f"incident {incident_id} kept changing; try again")

    async def ack(self, whistle_id: str, who: Principal) -> machine.Whistle:
        """A coordinator acknowledges their summons. Raises ForbiddenError if not a coordinator."""
        if who.role not in (Role.COORDINATOR, Role.ADMIN):
            raise ForbiddenError("only a summoned coordinator acks a whistle")
        return await self._transition(
            whistle_id,
            lambda w, now: machine.ack(w, coordinator=who.sub, now=now),
            actor=who.sub,
        )

    async def close(self, whistle_id: str, *, actor: str) -> machine.Whistle:
        return await self._transition(
            whistle_id, lambda w, now: machine.close(w, now=now), actor=actor
        )

    async def _on_timer(self, timer_id: str, payload: dict[str, Any]) -> None:
        whistle_id = str(payload["whistle_id"])
        summons_id = str(payload["summons_id"])
        await self._transition(
            whistle_id,
            lambda w, now: machine.on_timeout(w, summons_id=summons_id, now=now),
            actor="timer",
            fired=timer_id,
        )

    async def _transition(
        self,
        whistle_id: str,
        step: Callable[[machine.Whistle, datetime], tuple[machine.Whistle, list[machine.Effect]]],
        *,
        actor: str,
        fired: str | None = None,
    ) -> machine.Whistle:
        keys = self.store.keys
        for _ in range(8):
            current = await self.get(whistle_id)
            incident = await self.responder.incident(current.incident_id)
            now = self.clock()
            new, effects = step(current, now)
            tx = self.store.tx()
            if fired is not None:
                self.timers.done(tx, fired)
            if new == current and not effects:
                if fired is None:
                    return current
                await self.store.commit(tx)  # a stale or late timer: drop it
                return current
            version = await self._version(whistle_id)
            tx.expect_version(keys.whistle(whistle_id), version)
            tx.put(keys.whistle(whistle_id), new, version + 1)
            if new.closed_at is not None:
                tx.zrem(keys.open_whistles, whistle_id)
                if current.closed_at is None:
                    tx.event(
                        "whistle.closed",
                        actor=actor,
                        ts=now,
                        incident_id=incident.id,
                        data={"whistle_id": whistle_id},
                    )
            await self._apply(tx, new, effects, incident, actor=actor, now=now, before=current)
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            if any(isinstance(e, machine.EnableGreenWave) for e in effects):
                await self.responder.activate_all(incident.id, now=now)
            return new
        raise StoreError(f"whistle {whistle_id} kept changing; try again")

    async def _assign_top_units(
        self, incident_id: str, recommended: Recommendations, *, actor: str
    ) -> None:
        """Send the top suggested unit of every agency at once (the auto-assign setting).

        A unit taken by another incident in the meantime is skipped, not fatal: the
        dispatcher sees the gap in the recommendations and fills it.
        """
        for agency in recommended.agencies:
            if not agency.suggested:
                continue
            request = AssignmentRequest(unit_ids=[agency.suggested[0]])
            try:
                await self.responder.assign(incident_id, request, actor=f"auto:{actor}")
            except (ConflictError, NotFoundError) as exc:
                log.warning("whistle auto-assign for %s: %s", incident_id, exc)

    async def _version(self, whistle_id: str) -> int:
        raw = await self.store.redis.hget(self.store.keys.whistle(whistle_id), "v")
        return 0 if raw is None else int(raw)

    async def _recommendations(self, incident: Incident) -> Recommendations | None:
        if self.responder.router is None:
            return None
        try:
            return await self.responder.recommend_for(incident)
        except ConflictError as exc:
            log.warning("whistle for %s: no recommendations: %s", incident.id, exc)
            return None

    async def _apply(
        self,
        tx: Tx,
        whistle: machine.Whistle,
        effects: Sequence[machine.Effect],
        incident: Incident,
        *,
        actor: str,
        now: datetime,
        extra: Recommendations | None = None,
        before: machine.Whistle | None = None,
    ) -> None:
        """Turn the state machine's effects into timers and events inside ``tx``."""
        for effect in effects:
            if isinstance(effect, machine.Summon):
                tx.event(
                    "whistle.summons",
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                    data={
                        "whistle_id": whistle.id,
                        "summons": effect.summons,
                        "incident": summary(incident),
                        "recommended": extra.top(5) if extra is not None else None,
                    },
                )
            elif isinstance(effect, machine.ScheduleTimer):
                self.timers.schedule(
                    tx,
                    effect.timer_id,
                    effect.due,
                    TIMER_KIND,
                    whistle_id=effect.whistle_id,
                    summons_id=effect.summons_id,
                )
            elif isinstance(effect, machine.CancelTimer):
                self.timers.done(tx, effect.timer_id)
            elif isinstance(effect, machine.AlertCentre):
                tx.event(
                    "whistle.alert",
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                    data={"whistle_id": whistle.id, "centre": effect.centre, "text": effect.text},
                )
            elif isinstance(effect, machine.StandDown):
                tx.event(
                    "whistle.stand_down",
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                    data={"whistle_id": whistle.id, "summons": effect.summons},
                )
            elif isinstance(effect, machine.EnableGreenWave):
                records = await self.responder.add_enable_greenwave(
                    tx, incident, actor=actor, now=now
                )
                tx.event(
                    "greenwave.enabled",
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                    data={"whistle_id": whistle.id, "units": [r.unit_id for r in records]},
                )
        was_acked = {s.id for s in before.summons if s.acked_at is not None} if before else set()
        for s in whistle.summons:
            if s.acked_at is None or s.id in was_acked:
                continue
            tx.event(
                "whistle.ack",
                actor=actor,
                ts=now,
                incident_id=incident.id,
                data={
                    "whistle_id": whistle.id,
                    "summons": s,
                    "after_s": (now - s.summoned_at) / timedelta(seconds=1),
                },
            )
