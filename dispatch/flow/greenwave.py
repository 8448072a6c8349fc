"""Step 8, green wave: signal requests from protected units, decided per intersection, sent.

A protected unit's plan (:mod:`routing.greenwave`) becomes messages worth sending
(:func:`routing.greenwave.outgoing`: a controller hears of a re-timing only when it
matters); every request, update or cancel for an intersection is decided by
:class:`routing.arbiter.Arbiter` over that intersection's snapshot, stored at
``{yishao}:greenwave:<node>`` with a version for compare-and-set. Each commit carries one
event per message (``greenwave.request`` / ``.update`` / ``.cancel``) with the decision, and a
``greenwave.status`` event for every other request whose decision changed (a higher-priority
vehicle shifting or bumping a lower one). Signal controllers (role ``signal``, scoped to their
intersections) receive these; their own reports (``served``, ``rejected``) come back through
:meth:`GreenWave.report` and go out the same way, to consoles and the requesting terminal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from dispatch.core.assign import AssignmentRecord
from dispatch.errors import ConflictError, NotFoundError
from dispatch.events import EventType, RoutePlanned, SignalDecisionEvent
from dispatch.flow.fleet import Fleet
from dispatch.infra.store import Store, Tx, VersionConflict
from routing.arbiter import Arbiter, IntersectionState, SignalDecision, SignalStatus
from routing.greenwave import (
    GreenWaveConfig,
    PlanUpdate,
    RequestType,
    SignalRequest,
    outgoing,
    plan_green_wave,
    replan_from_position,
)

MAX_ATTEMPTS = 16

_MESSAGE_EVENTS = {
    RequestType.REQUEST: EventType.GREENWAVE_REQUEST,
    RequestType.UPDATE: EventType.GREENWAVE_UPDATE,
    RequestType.CANCEL: EventType.GREENWAVE_CANCEL,
}


class SignalReport(BaseModel):
    """A controller's word on one request: it served it, or it could not do so safely."""

    type: str = "signal_status"
    intersection_id: int
    request_id: str = Field(min_length=1, max_length=200)
    status: SignalStatus
    reason: str = Field("", max_length=500)


def _changed(before: SignalDecision | None, after: SignalDecision) -> bool:
    if before is None:
        return True
    return (before.status, before.granted_from, before.granted_to) != (
        after.status,
        after.granted_from,
        after.granted_to,
    )


class GreenWave:
    """Sends protected units' signal requests, arbitrated per intersection."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        *,
        clock: Callable[[], datetime],
        arbiter: Arbiter | None = None,
        config: GreenWaveConfig | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.arbiter = arbiter or Arbiter()
        self.config = config or GreenWaveConfig()

    # -- from plans to messages ------------------------------------------------------------
    async def send(
        self,
        record: AssignmentRecord,
        update: PlanUpdate,
        *,
        now: datetime,
        reason: str | None = None,
    ) -> int:
        """Keep a re-planned leg on its record and send what is worth sending.

        Args:
            record: the record as read (its version guards the commit).
            update: the leg's new plan and messages (a re-plan from a fix, a new route).
            now: the clock.
            reason: set when the leg has a new route (a ``route.planned`` event says why).

        Returns:
            How many messages went to the arbiter (0 when another fix of the unit won).
        """
        keys = self.store.keys
        leg = record.leg()
        if leg is None:
            return 0
        messages, sent = (
            outgoing(
                update.requests,
                record.sent_eta,
                retime_s=self.config.retime_s,
                retime_share=self.config.retime_share,
            )
            if record.greenwave_active
            else ([], record.sent_eta)
        )
        new_leg = leg.model_copy(update={"route": update.plan.route, "greenwave": update.plan})
        changed = record.model_copy(
            update={leg.kind.value: new_leg, "sent_eta": sent, "version": record.version + 1}
        )
        tx = self.store.tx()
        tx.expect_version(keys.assignment(record.unit_id), record.version)
        tx.put(keys.assignment(record.unit_id), changed, changed.version)
        if reason is not None:
            tx.event(
                EventType.ROUTE_PLANNED,
                RoutePlanned(
                    unit_id=record.unit_id, leg=leg.kind, route=update.plan.route, reason=reason
                ),
                actor=f"unit:{record.unit_id}",
                ts=now,
                incident_id=record.incident_id,
            )
        try:
            await self.store.commit(tx)
        except VersionConflict:
            # Another fix of this unit won; the next fix re-times from the fresh record.
            return 0
        if messages:
            await self.submit(
                messages, incident_id=record.incident_id, actor=f"unit:{record.unit_id}"
            )
        return len(messages)

    async def activate(self, records: Sequence[AssignmentRecord], *, now: datetime) -> int:
        """Send the first requests of protected records that have sent none yet.

        A unit already on its way is re-planned from its latest fix; one still at its start
        gets the plan from its departure.
        """
        sent = 0
        for record in records:
            if not record.greenwave_active or record.sent_eta:
                continue
            fresh = await self.store.get(
                AssignmentRecord, self.store.keys.assignment(record.unit_id)
            )
            leg = fresh.leg() if fresh is not None else None
            if fresh is None or leg is None or fresh.sent_eta:
                continue
            position = await self.fleet.position(fresh.unit_id)
            if position is not None and position.at >= leg.greenwave.departure:
                update = replan_from_position(
                    leg.greenwave,
                    position=(position.lat, position.lon),
                    now=now,
                    config=self.config,
                )
            else:
                update = plan_green_wave(
                    leg.route,
                    departure=leg.greenwave.departure,
                    requester=leg.greenwave.requester,
                    config=self.config,
                )
            sent += await self.send(fresh, update, now=now)
        return sent

    # -- the arbiter -------------------------------------------------------------------------
    async def state(self, intersection_id: int) -> IntersectionState:
        found = await self.store.get(
            IntersectionState, self.store.keys.greenwave(str(intersection_id))
        )
        return found or IntersectionState(intersection_id=intersection_id)

    async def submit(
        self, requests: Sequence[SignalRequest], *, incident_id: str | None, actor: str
    ) -> list[SignalDecision]:
        """Decide and publish messages (of any intersections) in one commit.

        Returns:
            The decision for each message, in order.
        """
        if not requests:
            return []
        by_node: dict[int, list[SignalRequest]] = defaultdict(list)
        for request in requests:
            by_node[request.intersection_id].append(request)

        async def attempt() -> list[SignalDecision]:
            now = self.clock()
            tx = self.store.tx()
            decided: dict[str, SignalDecision] = {}
            for node, messages in by_node.items():
                before = await self.state(node)
                after = before
                for message in messages:
                    after = self.arbiter.decide(after, message, now=now)
                self._stage(
                    tx, before, after, messages, incident_id=incident_id, actor=actor, now=now
                )
                decided.update({d.request.request_id: d for d in after.decisions})
            await self.store.commit(tx)
            return [decided[r.request_id] for r in requests]

        return await self.store.retry(
            attempt, what="intersections (green-wave messages not sent)", attempts=MAX_ATTEMPTS
        )

    async def report(self, report: SignalReport, *, actor: str) -> SignalDecision:
        """A controller's ``served`` or ``rejected`` for a request it holds.

        Raises:
            NotFoundError: the intersection holds no such request.
            ConflictError: a status a controller cannot report (only served / rejected).
        """
        if report.status not in (SignalStatus.SERVED, SignalStatus.REJECTED):
            raise ConflictError("a controller reports 'served' or 'rejected'")

        async def attempt() -> SignalDecision:
            now = self.clock()
            before = await self.state(report.intersection_id)
            current = next(
                (d for d in before.decisions if d.request.request_id == report.request_id), None
            )
            if current is None:
                raise NotFoundError(
                    f"intersection {report.intersection_id} holds no request {report.request_id}"
                )
            final = current.model_copy(
                update={
                    "status": report.status,
                    "reason": report.reason or current.reason,
                    "decided_at": now,
                    "final": True,
                }
            )
            # A rejection frees the window: re-solve so others may now be granted.
            staged = before.model_copy(
                update={
                    "decisions": [
                        final if d.request.request_id == report.request_id else d
                        for d in before.decisions
                    ]
                }
            )
            after = self.arbiter.resolve(staged, now=now)
            tx = self.store.tx()
            self._stage(tx, before, after, [], incident_id=None, actor=actor, now=now)
            await self.store.commit(tx)
            return final

        return await self.store.retry(
            attempt, what=f"intersection {report.intersection_id}", attempts=MAX_ATTEMPTS
        )

    def _stage(
        self,
        tx: Tx,
        before: IntersectionState,
        after: IntersectionState,
        messages: Sequence[SignalRequest],
        *,
        incident_id: str | None,
        actor: str,
        now: datetime,
    ) -> None:
        key = self.store.keys.greenwave(str(after.intersection_id))
        stored = after.model_copy(update={"version": before.version + 1})
        tx.expect_version(key, before.version)
        tx.put(key, stored, stored.version)
        old = {d.request.request_id: d for d in before.decisions}
        new = {d.request.request_id: d for d in after.decisions}
        asked = {m.request_id for m in messages}
        for message in messages:
            decision = new.get(message.request_id)
            if decision is None:
                continue
            tx.event(
                _MESSAGE_EVENTS[message.request_type],
                SignalDecisionEvent.of(decision, incident_id=incident_id),
                actor=actor,
                ts=now,
                incident_id=incident_id,
            )
        for request_id, decision in new.items():
            if request_id in asked or not _changed(old.get(request_id), decision):
                continue
            tx.event(
                EventType.GREENWAVE_STATUS,
                SignalDecisionEvent.of(decision, incident_id=None),
                actor=actor,
                ts=now,
            )
