"""Step 5, the whistle: rosters, the pure state machine, timers and the event log together.

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

from dispatch.auth import Principal
from dispatch.core import whistle as machine
from dispatch.core.recommend import Recommendations
from dispatch.errors import ConflictError, ForbiddenError, NotFoundError
from dispatch.events import (
    EventType,
    GreenWaveEnabled,
    WhistleAck,
    WhistleAlert,
    WhistleClosed,
    WhistleSounded,
    WhistleStandDown,
    WhistleSummons,
)
from dispatch.flow.assign import AssignmentRequest, Assignments
from dispatch.flow.fleet import Fleet
from dispatch.flow.recommend import Recommender
from dispatch.infra.store import Store, Tx
from dispatch.infra.timers import Timers
from dispatch.models import AGENCY_CENTRE, Centre, Incident, Role

log = logging.getLogger(__name__)

TIMER_KIND = "whistle.ack_deadline"


class WhistleDesk:
    """Sounds whistles, takes acks, escalates on missed deadlines."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        assignments: Assignments,
        recommender: Recommender,
        timers: Timers,
        *,
        clock: Callable[[], datetime],
        ack_timeout_s: float,
        auto_assign: bool = False,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.assignments = assignments
        self.recommender = recommender
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
        keys = self.store.keys
        ids = await self.store.ranked(keys.open_whistles)
        return [
            w
            for w in await self.store.get_many(machine.Whistle, [keys.whistle(i) for i in ids])
            if w is not None
        ]

    async def _incident(self, incident_id: str) -> Incident:
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        return incident

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

        async def attempt() -> tuple[machine.Whistle, Recommendations | None]:
            incident = await self._incident(incident_id)
            centre = self._centre(who, incident)
            _day, duty = await self.fleet.duty()
            now = self.clock()
            whistle, effects = machine.sound(
                whistle_id=machine.whistle_id_for(incident.id),
                incident=incident,
                sounded_by=who.sub,
                centre=centre,
                duty=duty,
                now=now,
                ack_timeout_s=self.ack_timeout_s,
                forced=forced,
                reason=reason,
            )
            recs = recommended
            if recs is None or recs.incident_id != incident.id:
                recs = await self._recommendations(incident)
            keys = self.store.keys
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
                EventType.WHISTLE_SOUNDED,
                WhistleSounded(whistle=whistle, incident=incident.summary(), centre=centre),
                actor=who.sub,
                ts=now,
                incident_id=incident.id,
            )
            await self._apply(tx, whistle, effects, linked, actor=who.sub, now=now, extra=recs)
            await self.store.commit(tx)
            return whistle, recs

        whistle, recs = await self.store.retry(attempt, what=f"incident {incident_id}")
        log.info("whistle %s sounded by %s (%s)", whistle.id, who.sub, whistle.sounding_centre)
        if self.auto_assign and recs is not None:
            await self._assign_top_units(incident_id, recs, actor=who.sub)
        return whistle

    @staticmethod
    def _centre(who: Principal, incident: Incident) -> Centre:
        """In whose name the whistle sounds: the dispatcher's centre; for an admin acting for
        the service, the incident's sounding centre (when the admin's own is not 120 or 119).

        Raises:
            ForbiddenError: a dispatcher without a call centre, or no centre can sound it.
        """
        own = AGENCY_CENTRE.get(who.agency)
        if who.role is Role.ADMIN and own not in machine.SOUNDING_CENTRES:
            own = machine.sounding_centre(incident)
        if own is None:
            raise ForbiddenError(f"a {who.agency.value} dispatcher has no call centre")
        return own

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

        async def attempt() -> tuple[machine.Whistle, Incident, bool]:
            current, version = await self.store.get_versioned(
                machine.Whistle, keys.whistle(whistle_id)
            )
            if current is None:
                raise NotFoundError(f"no whistle {whistle_id}")
            incident = await self._incident(current.incident_id)
            now = self.clock()
            new, effects = step(current, now)
            tx = self.store.tx()
            if fired is not None:
                self.timers.done(tx, fired)
            if new == current and not effects:
                if fired is not None:
                    await self.store.commit(tx)  # a stale or late timer: drop it
                return current, incident, False
            tx.expect_version(keys.whistle(whistle_id), version)
            tx.put(keys.whistle(whistle_id), new, version + 1)
            if new.closed_at is not None:
                tx.zrem(keys.open_whistles, whistle_id)
                if current.closed_at is None:
                    tx.event(
                        EventType.WHISTLE_CLOSED,
                        WhistleClosed(whistle_id=whistle_id),
                        actor=actor,
                        ts=now,
                        incident_id=incident.id,
                    )
            await self._apply(tx, new, effects, incident, actor=actor, now=now, before=current)
            await self.store.commit(tx)
            protect = any(isinstance(e, machine.EnableGreenWave) for e in effects)
            return new, incident, protect

        new, incident, protect = await self.store.retry(attempt, what=f"whistle {whistle_id}")
        if protect:
            await self.assignments.activate(incident.id, now=self.clock())
        return new

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
                await self.assignments.assign(incident_id, request, actor=f"auto:{actor}")
            except (ConflictError, NotFoundError) as exc:
                log.warning("whistle auto-assign for %s: %s", incident_id, exc)

    async def _recommendations(self, incident: Incident) -> Recommendations | None:
        if self.recommender.router is None:
            return None
        try:
            return await self.recommender.recommend_for(incident)
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
                    EventType.WHISTLE_SUMMONS,
                    WhistleSummons(
                        whistle_id=whistle.id,
                        summons=effect.summons,
                        incident=incident.summary(),
                        recommended=extra.top(5) if extra is not None else None,
                    ),
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
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
                    EventType.WHISTLE_ALERT,
                    WhistleAlert(whistle_id=whistle.id, centre=effect.centre, text=effect.text),
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                )
            elif isinstance(effect, machine.StandDown):
                tx.event(
                    EventType.WHISTLE_STAND_DOWN,
                    WhistleStandDown(whistle_id=whistle.id, summons=effect.summons),
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                )
            elif isinstance(effect, machine.EnableGreenWave):
                records = await self.assignments.stage_protection(
                    tx, incident, actor=actor, now=now
                )
                tx.event(
                    EventType.GREENWAVE_ENABLED,
                    GreenWaveEnabled(whistle_id=whistle.id, units=[r.unit_id for r in records]),
                    actor=actor,
                    ts=now,
                    incident_id=incident.id,
                )
        was_acked = {s.id for s in before.summons if s.acked_at is not None} if before else set()
        for s in whistle.summons:
            if s.acked_at is None or s.id in was_acked:
                continue
            tx.event(
                EventType.WHISTLE_ACK,
                WhistleAck(
                    whistle_id=whistle.id,
                    summons=s,
                    after_s=(now - s.summoned_at) / timedelta(seconds=1),
                ),
                actor=actor,
                ts=now,
                incident_id=incident.id,
            )
