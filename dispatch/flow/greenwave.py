"""Green-wave requests at intersections: the arbiter's snapshots in Redis, and the messages.

Every request, update or cancel for an intersection is decided by :class:`routing.arbiter.
Arbiter` over that intersection's snapshot, stored at ``{yishao}:greenwave:<node>`` with a
version for compare-and-set. Each commit carries one event per message
(``greenwave.request`` / ``greenwave.update`` / ``greenwave.cancel``) with the decision, and a
``greenwave.status`` event for every other request whose decision changed (a higher-priority
vehicle shifting or bumping a lower one). Signal controllers (role ``signal``, scoped to their
intersections) receive these; their own reports (``served``, ``rejected``) come back through
:meth:`SignalDesk.report` and go out the same way, to consoles and the requesting terminal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from dispatch.errors import ConflictError, NotFoundError, StoreError
from dispatch.infra.store import Store, Tx, VersionConflict
from routing.arbiter import Arbiter, IntersectionState, SignalDecision, SignalStatus
from routing.greenwave import SignalRequest

MAX_ATTEMPTS = 16


class SignalReport(BaseModel):
    """A controller's word on one request: it served it, or it could not do so safely."""

    type: str = "signal_status"
    intersection_id: int
    request_id: str = Field(min_length=1, max_length=200)
    status: SignalStatus
    reason: str = Field("", max_length=500)


def decision_data(decision: SignalDecision, *, incident_id: str | None) -> dict[str, Any]:
    """The payload every green-wave event carries: enough for a controller and a screen."""
    request = decision.request
    return {
        "intersection_id": request.intersection_id,
        "request_id": request.request_id,
        "unit_id": request.requester.unit_id,
        "incident_id": incident_id,
        "request": request,
        "status": decision.status,
        "granted_from": decision.granted_from,
        "granted_to": decision.granted_to,
        "shift_s": decision.shift_s,
        "reason": decision.reason,
    }


def _changed(before: SignalDecision | None, after: SignalDecision) -> bool:
    if before is None:
        return True
    return (before.status, before.granted_from, before.granted_to) != (
        after.status,
        after.granted_from,
        after.granted_to,
    )


class SignalDesk:
    """Submits green-wave messages to the per-intersection arbiter and publishes decisions."""

    def __init__(
        self, store: Store, *, clock: Callable[[], datetime], arbiter: Arbiter | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.arbiter = arbiter or Arbiter()

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
        for _ in range(MAX_ATTEMPTS):
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
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            return [decided[r.request_id] for r in requests]
        raise StoreError("intersections kept changing; green-wave messages not sent")

    async def report(self, report: SignalReport, *, actor: str) -> SignalDecision:
        """A controller's ``served`` or ``rejected`` for a request it holds.

        Raises:
            NotFoundError: the intersection holds no such request.
            ConflictError: a status a controller cannot report (only served / rejected).
        """
        if report.status not in (SignalStatus.SERVED, SignalStatus.REJECTED):
            raise ConflictError("a controller reports 'served' or 'rejected'")
        for _ in range(MAX_ATTEMPTS):
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
            try:
                await self.store.commit(tx)
            except VersionConflict:
                continue
            return final
        raise StoreError(f"intersection {report.intersection_id} kept changing")

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
                f"greenwave.{message.request_type.value}",
                actor=actor,
                ts=now,
                incident_id=incident_id,
                data=decision_data(decision, incident_id=incident_id),
            )
        for request_id, decision in new.items():
            if request_id in asked or not _changed(old.get(request_id), decision):
                continue
            tx.event(
                "greenwave.status",
                actor=actor,
                ts=now,
                incident_id=None,
                data=decision_data(decision, incident_id=None),
            )
