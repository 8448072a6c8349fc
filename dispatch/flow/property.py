"""The property team's steps on an incident: join (a dispatcher's approval or automatic),
the team's status answers, release, and the audit of every property account's read/action.

The decisions are :mod:`dispatch.core.property`'s; this adapter reads the incident and its
compound, commits the new snapshot guarded by the incident's version (retrying when another
change got there first) with the event the team's terminal is pushed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dispatch.core import property as team
from dispatch.core.compounds import Compound
from dispatch.errors import ConflictError, NotFoundError
from dispatch.events import (
    EventType,
    Payload,
    PropertyAccess,
    PropertyJoined,
    PropertyReleased,
    PropertyStatusChanged,
)
from dispatch.flow.compounds import CompoundBook
from dispatch.infra.store import Store
from dispatch.models import Incident, Principal, PropertyStatus, Role


class PropertyDesk:
    """Joins, answers and releases of compounds' security teams."""

    def __init__(
        self, store: Store, compounds: CompoundBook, *, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.compounds = compounds
        self.clock = clock

    async def incident_and_compound(self, incident_id: str) -> tuple[Incident, Compound | None]:
        """Raises NotFoundError: no such incident."""
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        compound = None
        if incident.compound_id is not None:
            compound = await self.compounds.get(incident.compound_id)
        return incident, compound

    async def offer(self, incident_id: str) -> tuple[Incident, Compound | None, team.Offer]:
        incident, compound = await self.incident_and_compound(incident_id)
        return incident, compound, team.offer(incident, compound)

    async def join(
        self, incident_id: str, *, actor: str, task: str | None = None, automatic: bool = False
    ) -> Incident:
        """Join the compound's team. Raises NotFoundError, ConflictError (409)."""

        async def attempt() -> Incident:
            incident, compound = await self.incident_and_compound(incident_id)
            now = self.clock()
            joined = team.join(
                incident, compound, now=now, actor=actor, task=task, automatic=automatic
            )
            assert joined.property_join is not None
            return await self._save(
                incident,
                joined,
                EventType.PROPERTY_JOINED,
                PropertyJoined(incident=joined, join=joined.property_join),
                actor=actor,
                now=now,
            )

        return await self.store.retry(attempt, what=f"incident {incident_id}")

    async def _save(
        self,
        before: Incident,
        after: Incident,
        kind: EventType,
        payload: Payload,
        *,
        actor: str,
        now: datetime,
    ) -> Incident:
        """Commit ``after`` over ``before`` (version-checked) with its event."""
        key = self.store.keys.incident(before.id)
        tx = self.store.tx()
        tx.expect_version(key, before.version)
        tx.put(key, after, after.version)
        tx.event(kind, payload, actor=actor, ts=now, incident_id=before.id)
        await self.store.commit(tx)
        return after

    async def auto_join(self, incident_id: str) -> Incident | None:
        """Join the team if it can be offered (a plan's automatic join); None when not."""
        _, _, decided = await self.offer(incident_id)
        if not decided.offerable:
            return None
        try:
            return await self.join(
                incident_id, actor="plan:property-auto-join", automatic=True, task=None
            )
        except ConflictError:
            return None  # joined meanwhile, or no longer offerable

    async def answer(
        self, incident_id: str, status: PropertyStatus, *, actor: str, outcome: str | None
    ) -> Incident:
        """The team's status answer. Raises NotFoundError, ConflictError, ValueError."""

        async def attempt() -> Incident:
            incident, _ = await self.incident_and_compound(incident_id)
            now = self.clock()
            updated = team.answer(incident, status, now=now, outcome=outcome)
            assert updated.property_join is not None
            return await self._save(
                incident,
                updated,
                EventType.PROPERTY_STATUS,
                PropertyStatusChanged(
                    incident=updated, join=updated.property_join, status=status, outcome=outcome
                ),
                actor=actor,
                now=now,
            )

        return await self.store.retry(attempt, what=f"incident {incident_id}")

    async def release(self, incident_id: str, *, actor: str) -> Incident:
        """Release the team (its access ends). Raises NotFoundError, ConflictError."""

        async def attempt() -> Incident:
            incident, _ = await self.incident_and_compound(incident_id)
            now = self.clock()
            updated = team.release(incident, now=now)
            assert updated.property_join is not None
            return await self._save(
                incident,
                updated,
                EventType.PROPERTY_RELEASED,
                PropertyReleased(incident=updated, join=updated.property_join),
                actor=actor,
                now=now,
            )

        return await self.store.retry(attempt, what=f"incident {incident_id}")

    async def audit(
        self,
        who: Principal,
        what: str,
        *,
        incident_id: str | None = None,
        allowed: bool = True,
        count: int | None = None,
    ) -> None:
        """Log a property account's read or action (no-op for other roles)."""
        if who.role is not Role.PROPERTY:
            return
        tx = self.store.tx()
        tx.event(
            EventType.PROPERTY_ACCESS,
            PropertyAccess(
                what=what, compounds=list(who.scope)[:100], allowed=allowed, count=count
            ),
            actor=f"property:{who.sub}",
            ts=self.clock(),
            incident_id=incident_id,
        )
        await self.store.commit(tx)
