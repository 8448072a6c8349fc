"""Referrals as stored: refer an incident, move a referral on, list them, link repeat calls.

The decisions are :mod:`dispatch.core.referrals`'; each referral is an object
``referral:{id}`` listed in ``referrals`` (scored by referral time), committed guarded by
its version with the event that records it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from dispatch.core import referrals as core
from dispatch.core.referrals import (
    DisputeTopic,
    MediationBody,
    Referral,
    ReferralStatus,
)
from dispatch.errors import NotFoundError
from dispatch.events import EventType, ReferralChanged, ReferralRepeatCall
from dispatch.infra.store import Store
from dispatch.models import CallEvent

# Repeat-call linking looks at this many newest referrals (72 h of a district's referrals).
RECENT_REFERRALS = 2_000


class ReferralDesk:
    """Referrals of disputes to mediation bodies."""

    def __init__(
        self,
        store: Store,
        bodies: Mapping[str, MediationBody],
        *,
        clock: Callable[[], datetime],
        due_after: timedelta,
        repeat_window: timedelta,
        repeat_radius_m: float,
    ) -> None:
        self.store = store
        self.bodies = dict(bodies)
        self.clock = clock
        self.due_after = due_after
        self.repeat_window = repeat_window
        self.repeat_radius_m = repeat_radius_m

    async def refer(
        self,
        incident_id: str,
        *,
        body: str,
        consent: bool | None,
        by: str,
        topic: DisputeTopic = DisputeTopic.OTHER,
        note: str | None = None,
    ) -> Referral:
        """Refer the incident. Raises NotFoundError, ReferralRefused (422), ConflictError."""
        keys = self.store.keys

        async def attempt() -> Referral:
            incident = await self.store.get_incident(incident_id)
            if incident is None:
                raise NotFoundError(f"no incident {incident_id}")
            n = 1
            while await self.store.version(keys.referral(f"{incident_id}-R{n}")):
                n += 1
            now = self.clock()
            referral = core.refer(
                incident,
                referral_id=f"{incident_id}-R{n}",
                body=body,
                consent=consent,
                bodies=self.bodies,
                now=now,
                by=by,
                due_after=self.due_after,
                topic=topic,
                note=note,
            )
            tx = self.store.tx()
            tx.expect_version(keys.referral(referral.id), 0)
            tx.put(keys.referral(referral.id), referral, referral.version)
            tx.zadd(keys.referral_index, referral.id, now.timestamp())
            tx.event(
                EventType.REFERRAL_CREATED,
                ReferralChanged(referral=referral),
                actor=by,
                ts=now,
                incident_id=incident_id,
            )
            await self.store.commit(tx)
            return referral

        return await self.store.retry(attempt, what=f"referrals of incident {incident_id}")

    async def get(self, referral_id: str) -> Referral:
        """Raises NotFoundError."""
        found = await self.store.get(Referral, self.store.keys.referral(referral_id))
        if found is None:
            raise NotFoundError(f"no referral {referral_id}")
        return found

    async def recent(self, *, limit: int = RECENT_REFERRALS) -> list[Referral]:
        """The newest referrals, newest first."""
        keys = self.store.keys
        ids = await self.store.newest(keys.referral_index, limit=limit)
        found = await self.store.get_many(Referral, [keys.referral(i) for i in ids])
        return [r for r in found if r is not None]

    async def advance(
        self, referral_id: str, status: ReferralStatus, *, by: str, note: str | None = None
    ) -> Referral:
        """Move the referral on. Raises NotFoundError, ConflictError (409)."""
        keys = self.store.keys

        async def attempt() -> Referral:
            current = await self.get(referral_id)
            now = self.clock()
            moved = core.advance(current, status, now=now, by=by, note=note)
            tx = self.store.tx()
            tx.expect_version(keys.referral(current.id), current.version)
            tx.put(keys.referral(current.id), moved, moved.version)
            tx.event(
                EventType.REFERRAL_UPDATED,
                ReferralChanged(referral=moved),
                actor=by,
                ts=now,
                incident_id=moved.incident_id,
            )
            await self.store.commit(tx)
            return moved

        return await self.store.retry(attempt, what=f"referral {referral_id}")

    async def link_call(self, call: CallEvent, incident_id: str) -> Referral | None:
        """Link a dispute call to the referral it repeats, if any (idempotent per call)."""
        if call.call_type not in core.DISPUTE_TYPES:
            return None
        keys = self.store.keys

        async def attempt() -> Referral | None:
            found = core.repeat_of(
                call.call_type,
                call.lat,
                call.lon,
                call.received_at,
                await self.recent(),
                window=self.repeat_window,
                radius_m=self.repeat_radius_m,
            )
            if found is None:
                return None
            linked = core.link_repeat(found, call.key)
            if linked is None:
                return found
            tx = self.store.tx()
            tx.expect_version(keys.referral(found.id), found.version)
            tx.put(keys.referral(found.id), linked, linked.version)
            tx.event(
                EventType.REFERRAL_REPEAT_CALL,
                ReferralRepeatCall(referral=linked, call_key=call.key, incident_id=incident_id),
                actor=f"centre:{call.centre.value}",
                ts=self.clock(),
                incident_id=found.incident_id,
            )
            await self.store.commit(tx)
            return linked

        return await self.store.retry(attempt, what=f"repeat call {call.key}")
