"""Steps 2-3, joint intake and plan: one validated call becomes committed incident state.

The decisions are the core's: which open incident the call joins (:mod:`dispatch.core.merge`)
and what the incident needs after it (:meth:`PlanTable.for_call`). This adapter reads the
candidates in one round trip, commits the result guarded by the change counters of the grid
cells around the call (so two instances never open two incidents for one crash), and tries
again when another instance got there first. It also splits a wrongly merged call out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dispatch.constants import Keys
from dispatch.core import merge
from dispatch.core.buckets import buckets_within, time_bucket
from dispatch.core.geo import cell_of, cells_around
from dispatch.core.plans import PlanTable
from dispatch.errors import NotFoundError
from dispatch.events import (
    CallConflict,
    EventType,
    IncidentCreated,
    IncidentMerged,
    IncidentSplit,
)
from dispatch.flow.compounds import CompoundBook
from dispatch.flow.property import PropertyDesk
from dispatch.flow.referrals import ReferralDesk
from dispatch.infra.store import Store, Tx, VersionConflict
from dispatch.models import CallEvent, CallRecord, Incident

log = logging.getLogger(__name__)

# Guards fail only when another commit touched the same neighbourhood in between;
# a handful of retries is plenty even under a burst.
MAX_ATTEMPTS = 16


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What handling a call did: ``created``, ``merged``, ``duplicate`` (seen before, same
    content) or ``conflict`` (seen before with different content: recorded, not applied)."""

    kind: str
    incident_id: str
    event_ids: tuple[str, ...] = ()


def reindex(tx: Tx, keys: Keys, before: Incident | None, after: Incident) -> Tx:
    """Move an open incident to its place in the merge index (time bucket of its last call,
    then geo), as part of ``tx``; ``before`` is its indexed state (None: not indexed yet)."""
    bucket = time_bucket(after.last_call_at)
    if before is not None and time_bucket(before.last_call_at) != bucket:
        tx.zrem(keys.open_geo_bucket(time_bucket(before.last_call_at)), after.id)
    return tx.geoadd(keys.open_geo_bucket(bucket), after.id, lon=after.lon, lat=after.lat)


def unindex(tx: Tx, keys: Keys, incident: Incident) -> Tx:
    """Take a closing incident out of the merge index, as part of ``tx``."""
    tx.zrem(keys.open_geo, incident.id)  # state written before the time buckets
    return tx.zrem(keys.open_geo_bucket(time_bucket(incident.last_call_at)), incident.id)


class JointIntake:
    """Commits calls as incidents: merges reports of one emergency, plans the response."""

    def __init__(
        self,
        store: Store,
        plans: PlanTable,
        *,
        policy: merge.MergePolicy,
        clock: Callable[[], datetime],
        compounds: CompoundBook | None = None,
        referrals: ReferralDesk | None = None,
        auto_join: PropertyDesk | None = None,
    ) -> None:
        self.store = store
        self.plans = plans
        self.policy = policy
        self.clock = clock
        self.compounds = compounds
        self.referrals = referrals
        self.auto_join = auto_join

    async def handle(self, call: CallEvent, *, stream_id: str | None = None) -> CallOutcome:
        """Commit ``call``; idempotent on ``(centre, call_id)``.

        Raises:
            StoreError: Redis failed or contention did not clear (the entry stays pending).
        """
        outcome = await self.store.retry(
            lambda: self._attempt(call, stream_id),
            what=f"call {call.key}: the neighbourhood",
            attempts=MAX_ATTEMPTS,
        )
        if outcome.kind == "duplicate":
            return await self._conflict(call, outcome, stream_id)
        log.info("call %s %s incident %s", call.key, outcome.kind, outcome.incident_id)
        if self.referrals is not None:
            # A dispute called in again after its referral: linked and counted.
            await self.referrals.link_call(call, outcome.incident_id)
        if self.auto_join is not None and outcome.kind == "created":
            # The plan says the compound's team joins without a dispatcher's approval.
            await self.auto_join.auto_join(outcome.incident_id)
        return outcome

    async def _conflict(
        self, call: CallEvent, outcome: CallOutcome, stream_id: str | None
    ) -> CallOutcome:
        """Record a ``call.conflict`` when a duplicate's content differs from the committed call."""
        incident = await self.store.get_incident(outcome.incident_id)
        kept = None if incident is None else next(
            (c for c in incident.calls if c.key == call.key), None
        )  # fmt: skip
        if kept is None or (stream_id is not None and kept.stream_id == stream_id):
            return outcome  # trimmed away, or this very entry delivered again
        again = CallRecord.from_call(call, stream_id)
        fields = merge.differing_fields(kept, again)
        if not fields:
            return outcome
        keys = self.store.keys
        mark = stream_id or f"{call.key}:{again.model_dump_json()}"
        tx = self.store.tx()
        tx.expect_absent(keys.call_conflicts, mark)
        tx.hset(keys.call_conflicts, {mark: call.key})
        tx.event(
            EventType.CALL_CONFLICT,
            CallConflict(
                call_key=call.key,
                kept_stream_id=kept.stream_id,
                stream_id=stream_id,
                fields=fields,
                rejected=again,
            ),
            actor=f"centre:{call.centre.value}",
            ts=self.clock(),
            incident_id=outcome.incident_id,
        )
        try:
            await self.store.commit(tx)
        except VersionConflict as exc:
            if exc.kind != "exists":
                raise
            return CallOutcome("conflict", outcome.incident_id)  # recorded on a delivery before
        log.warning(
            "call %s seen again with different %s: kept the first, recorded a conflict",
            call.key, ", ".join(fields),
        )  # fmt: skip
        return CallOutcome("conflict", outcome.incident_id)

    async def _attempt(self, call: CallEvent, stream_id: str | None) -> CallOutcome:
        keys = self.store.keys
        size_m = self.policy.distance_m
        cells = cells_around(call.lat, call.lon, size_m)
        # Redis's geo radius uses a slightly different earth radius: search a little
        # wider and let the pure core decide on the exact distance.
        seen, versions, candidates = await self.store.merge_view(
            call.key,
            cells,
            lat=call.lat,
            lon=call.lon,
            radius_m=size_m * 1.01 + 1.0,
            buckets=buckets_within(call.received_at, self.policy.window_s),
        )
        if seen is not None:
            return CallOutcome("duplicate", seen)
        decision = merge.find_merge_target(call, candidates, policy=self.policy)
        now = self.clock()
        target: Incident | None = None
        if decision is not None:
            target = next(c for c in candidates if c.id == decision.incident_id)
            incident_id = target.id
        else:
            incident_id = await self.store.new_incident_id(call.received_at.strftime("%Y%m%d"))
        updated = merge.apply_call(
            target,
            call,
            incident_id=incident_id,
            plan=self.plans.for_call(call, target),
            now=now,
            stream_id=stream_id,
            note=None if decision is None else decision.reason,
        )
        updated = await self._place(updated)
        record = CallRecord.from_call(call, stream_id)
        tx = self.store.tx()
        for cell in cells:
            tx.expect_field(keys.cell_versions, cell, versions[cell])
        tx.expect_absent(keys.call_index, call.key)
        tx.expect_version(keys.incident(incident_id), 0 if target is None else target.version)
        tx.put(keys.incident(incident_id), updated, updated.version)
        tx.hset(keys.call_index, {call.key: incident_id})
        tx.zadd(keys.open_incidents, incident_id, updated.last_call_at.timestamp())
        tx.hincrby(keys.cell_versions, cell_of(updated.lat, updated.lon, size_m))
        reindex(tx, keys, target, updated)
        actor = f"centre:{call.centre.value}"
        if decision is None:
            tx.zadd(keys.incident_index, incident_id, updated.created_at.timestamp())
            tx.event(
                EventType.INCIDENT_CREATED,
                IncidentCreated(incident=updated, call=record),
                actor=actor,
                ts=now,
                incident_id=incident_id,
            )
        else:
            tx.event(
                EventType.INCIDENT_MERGED,
                IncidentMerged(
                    incident=updated,
                    call=record,
                    reason=decision.reason,
                    distance_m=round(decision.distance_m, 1),
                    gap_s=round(decision.gap_s, 1),
                ),
                actor=actor,
                ts=now,
                incident_id=incident_id,
            )
        try:
            event_ids = await self.store.commit(tx)
        except VersionConflict as exc:
            if exc.kind == "exists":
                return CallOutcome("duplicate", exc.current)
            raise
        return CallOutcome("created" if target is None else "merged", incident_id, tuple(event_ids))

    async def _place(self, incident: Incident) -> Incident:
        # The compound is decided once, where the incident is when it is first placed.
        if self.compounds is None or incident.compound_id is not None:
            return incident
        compound_id = await self.compounds.locate(incident.lat, incident.lon)
        if compound_id is None:
            return incident
        return incident.model_copy(update={"compound_id": compound_id})

    async def split(
        self, incident_id: str, call_key: str, *, actor: str
    ) -> tuple[Incident, Incident]:
        """Move a wrongly merged call out into an incident of its own (a dispatcher's correction).

        Raises:
            NotFoundError: no such incident, or the call is not on it.
            ConflictError: the call is the incident's only one, or the incident is closed.
        """
        return await self.store.retry(
            lambda: self._split(incident_id, call_key, actor),
            what=f"incident {incident_id}",
            attempts=MAX_ATTEMPTS,
        )

    async def _split(
        self, incident_id: str, call_key: str, actor: str
    ) -> tuple[Incident, Incident]:
        keys = self.store.keys
        now = self.clock()
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        moved = next((c for c in incident.calls if c.key == call_key), None)
        day = (moved.received_at if moved else now).strftime("%Y%m%d")
        new_id = await self.store.new_incident_id(day)
        original, split = merge.split_call(
            incident, call_key, new_incident_id=new_id, plans=self.plans, now=now, actor=actor
        )
        split = await self._place(split.model_copy(update={"compound_id": None}))
        size_m = self.policy.distance_m
        tx = self.store.tx()
        tx.expect_version(keys.incident(incident.id), incident.version)
        tx.put(keys.incident(incident.id), original, original.version)
        tx.put(keys.incident(new_id), split, split.version)
        tx.hset(keys.call_index, {call_key: new_id})
        tx.zadd(keys.incident_index, new_id, split.created_at.timestamp())
        tx.zadd(keys.open_incidents, new_id, split.last_call_at.timestamp())
        reindex(tx, keys, None, split)
        # The original may have moved to its new first call, and its last call may be older.
        reindex(tx, keys, incident, original)
        for inc in (original, split):
            tx.hincrby(keys.cell_versions, cell_of(inc.lat, inc.lon, size_m))
        tx.event(
            EventType.INCIDENT_SPLIT,
            IncidentSplit(incident=original, call_key=call_key, new_incident_id=new_id),
            actor=actor,
            ts=now,
            incident_id=incident.id,
        )
        tx.event(
            EventType.INCIDENT_CREATED,
            IncidentCreated(incident=split, split_from=incident.id),
            actor=actor,
            ts=now,
            incident_id=new_id,
        )
        await self.store.commit(tx)
        return original, split
