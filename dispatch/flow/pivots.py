"""Pivot posts in service: the plan in force, its history, and the police units posted at posts.

Each plan put is an object ``pivots:plan:{seq}`` listed in ``pivots:plans`` (scored by seq) with
its :class:`~dispatch.core.pivot_plan.PlanRecord` in ``pivots:records``; the newest is in force.
Postings are one hash, unit id -> :class:`~dispatch.core.pivot_plan.Posting`: small (a district
has 13 to 26 posts), read whole by the recommender.

A posting ends with its post: posting a unit schedules a timer (``pivots.posting_end``, the
same Redis timers the whistle's ack deadlines use) at the end of the post's hour band on the
service clock; when it fires, a posting whose post no longer stands is removed with a
``pivots.posting_expired`` event in one commit (reason ``hours_ended``, or ``post_retired``
when the plan in force no longer has the post). Putting a plan ends, in the plan's own commit,
the postings at posts it does not stand. Readers never see a posting whose post is not
standing, even if the timer poller is late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from dispatch.core.pivot_plan import (
    Plan,
    PlanRecord,
    Post,
    Posting,
    active_posts,
    band_ends_at,
    plan_post_ids,
    post_index,
    standing_postings,
)
from dispatch.errors import ConflictError, InvalidInputError, NotFoundError
from dispatch.events import EventType, PivotPlanStored, PivotPosting, PivotPostingExpired
from dispatch.flow.fleet import Fleet
from dispatch.infra.store import Store, Tx
from dispatch.infra.timers import Timers
from dispatch.models import Agency, Unit

# The agencies whose units stand at pivot posts (police posts: patrol and traffic police).
POSTING_AGENCIES = frozenset({Agency.POLICE, Agency.TRAFFIC})
TIMER_KIND = "pivots.posting_end"

log = logging.getLogger(__name__)

ExpiryReason = Literal["hours_ended", "post_retired"]


def posting_timer_id(unit_id: str) -> str:
    """One end-of-posting timer per unit (a unit stands at one post at a time)."""
    return f"pivots:posting:{unit_id}"


class PivotDesk:
    """Stores plans and postings through the store; answers what stands now."""

    def __init__(
        self, store: Store, fleet: Fleet, timers: Timers, *, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.timers = timers
        self.clock = clock
        self._cached: tuple[int, Plan] | None = None
        timers.on(TIMER_KIND, self._on_timer)

    async def put_plan(self, plan: Plan, *, actor: str) -> PlanRecord:
        """Put ``plan`` in force from now, ending (in the same commit) the postings at posts
        it does not stand now. Raises ConflictError when another put or a posting raced it."""
        keys = self.store.keys
        seq = await self.store.count(keys.pivot_plans) + 1
        record = PlanRecord.of(plan, seq=seq, stored_at=self.clock(), stored_by=actor)
        tx = self.store.tx()
        tx.expect_absent(keys.pivot_plan_record, str(seq))
        tx.put(keys.pivot_plan(seq), plan, 1)
        tx.hset(keys.pivot_plan_record, {str(seq): record.model_dump_json()})
        tx.zadd(keys.pivot_plans, str(seq), float(seq))
        tx.event(
            EventType.PIVOT_PLAN_STORED,
            PivotPlanStored(record=record),
            actor=actor,
            ts=record.stored_at,
        )
        await self._end_unstanding(tx, plan, actor=actor, now=record.stored_at)
        await self.store.commit(tx)
        return record

    async def plan(self) -> Plan | None:
        """The plan in force (None before the first put); cached until the next put."""
        newest = await self.store.newest(self.store.keys.pivot_plans, limit=1)
        if not newest:
            return None
        seq = int(newest[0])
        if self._cached is not None and self._cached[0] == seq:
            return self._cached[1]
        plan = await self.store.get(Plan, self.store.keys.pivot_plan(seq))
        if plan is not None:
            self._cached = (seq, plan)
        return plan

    async def history(self) -> list[PlanRecord]:
        """Every plan put in force, oldest first (each stood until the next one's stored_at)."""
        raw = await self.store.hash_all(self.store.keys.pivot_plan_record)
        return sorted((PlanRecord.model_validate_json(v) for v in raw.values()), key=_seq)

    async def standing(self, at: datetime | None = None) -> list[Post]:
        """The posts standing at ``at`` (default: the service clock) under the plan in force."""
        plan = await self.plan()
        return active_posts(plan, at or self.clock()) if plan else []

    async def _raw_postings(self) -> list[tuple[str, Posting]]:
        """Every stored posting with its stored JSON (for a guard), by unit id."""
        raw = await self.store.hash_all(self.store.keys.pivot_postings)
        pairs = [(v, Posting.model_validate_json(v)) for v in raw.values()]
        return sorted(pairs, key=lambda pair: pair[1].unit_id)

    async def postings(self, at: datetime | None = None) -> list[Posting]:
        """The postings whose post stands at ``at`` (default: the service clock), by unit id.

        A posting whose post has ended is never shown, even before its timer has removed it.
        """
        pairs = await self._raw_postings()
        if not pairs:
            return []
        standing = {p.id for p in await self.standing(at)}
        return [posting for _, posting in pairs if posting.post_id in standing]

    async def stations(self, at: datetime) -> dict[str, Posting]:
        """Units posted at a post standing at ``at``, by unit id: their station for ranking."""
        pairs = await self._raw_postings()
        if not pairs:
            return {}
        return standing_postings([p for _, p in pairs], await self.standing(at))

    async def post_unit(self, post_id: str, unit: Unit, *, actor: str) -> Posting:
        """Post ``unit`` at the standing post ``post_id`` (moving it from another post).

        Raises:
            NotFoundError: no such post standing now. InvalidInputError: not a police unit.
        """
        if unit.agency not in POSTING_AGENCIES:
            raise InvalidInputError(
                f"unit {unit.id} is {unit.agency.value}: only police units stand at pivot posts"
            )
        now = self.clock()
        post = post_index(await self.standing(now)).get(post_id)
        if post is None:
            raise NotFoundError(f"no pivot post {post_id} stands now")
        posting = Posting(
            unit_id=unit.id,
            post_id=post.id,
            lat=post.lat,
            lon=post.lon,
            posted_at=now,
            posted_by=actor,
        )
        plan = await self.plan()
        assert plan is not None  # a post stands, so a plan is in force
        tx = self.store.tx()
        tx.hset(self.store.keys.pivot_postings, {unit.id: posting.model_dump_json()})
        self.timers.schedule(
            tx, posting_timer_id(unit.id), band_ends_at(plan, now), TIMER_KIND, unit_id=unit.id
        )
        tx.event(EventType.PIVOT_UNIT_POSTED, PivotPosting(posting=posting), actor=actor, ts=now)
        await self.store.commit(tx)
        return posting

    async def release_unit(self, post_id: str, unit_id: str, *, actor: str) -> Posting:
        """Release ``unit_id`` from ``post_id``: it ranks from its home station again.

        Raises:
            ConflictError: the unit is not posted there.
        """
        keys = self.store.keys
        raw = (await self.store.hash_fields(keys.pivot_postings, [unit_id]))[0]
        posting = Posting.model_validate_json(raw) if raw else None
        if posting is None or posting.post_id != post_id:
            raise ConflictError(f"unit {unit_id} is not posted at {post_id}")
        now = self.clock()
        tx = self.store.tx()
        tx.expect_field(keys.pivot_postings, unit_id, raw or "")
        tx.hdel(keys.pivot_postings, unit_id)
        self.timers.done(tx, posting_timer_id(unit_id))
        tx.event(
            EventType.PIVOT_UNIT_RELEASED,
            PivotPosting(posting=posting, reason="released"),
            actor=actor,
            ts=now,
        )
        await self.store.commit(tx)
        return posting

    async def expire(self, *, actor: str = "timer") -> list[PivotPostingExpired]:
        """End every posting whose post no longer stands on the service clock, in one commit
        with an event each (the timer's handler does this; anyone may call it)."""

        async def attempt() -> list[PivotPostingExpired]:
            tx = self.store.tx()
            ended = await self._end_unstanding(tx, await self.plan(), actor=actor, now=self.clock())
            if ended:
                await self.store.commit(tx)
            return ended

        return await self.store.retry(attempt, what="pivot postings")

    async def _end_unstanding(
        self, tx: Tx, plan: Plan | None, *, actor: str, now: datetime
    ) -> list[PivotPostingExpired]:
        """Add to ``tx`` the end of every stored posting whose post does not stand at ``now``
        under ``plan``: ``hours_ended`` if the plan has the post, else ``post_retired``."""
        standing = {p.id for p in active_posts(plan, now)} if plan else set()
        ids = plan_post_ids(plan) if plan else frozenset()
        ended: list[PivotPostingExpired] = []
        for raw, posting in await self._raw_postings():
            if posting.post_id not in standing:
                reason: ExpiryReason = "hours_ended" if posting.post_id in ids else "post_retired"
                ended.append(self._end(tx, raw, posting, reason, actor=actor, now=now))
        return ended

    def _end(
        self,
        tx: Tx,
        raw: str,
        posting: Posting,
        reason: ExpiryReason,
        *,
        actor: str,
        now: datetime,
    ) -> PivotPostingExpired:
        """Add to ``tx`` the end of ``posting`` (still stored as ``raw``): removed, its timer
        done, and a ``pivots.posting_expired`` event."""
        keys = self.store.keys
        tx.expect_field(keys.pivot_postings, posting.unit_id, raw)
        tx.hdel(keys.pivot_postings, posting.unit_id)
        self.timers.done(tx, posting_timer_id(posting.unit_id))
        payload = PivotPostingExpired(posting=posting, reason=reason)
        tx.event(EventType.PIVOT_POSTING_EXPIRED, payload, actor=actor, ts=now)
        return payload

    async def _on_timer(self, timer_id: str, payload: dict[str, Any]) -> None:
        """A posting's band ended: expire it (and any other ended posting); a posting whose
        post still stands (a new plan keeps it into the next band) gets its timer moved."""
        unit_id = str(payload["unit_id"])
        for ended in await self.expire():
            log.info("pivot posting of %s ended: %s", ended.posting.unit_id, ended.reason)
        keys = self.store.keys
        raw = (await self.store.hash_fields(keys.pivot_postings, [unit_id]))[0]
        tx = self.store.tx()
        plan = await self.plan()
        if raw and plan is not None:
            tx.expect_field(keys.pivot_postings, unit_id, raw)
            self.timers.schedule(
                tx, timer_id, band_ends_at(plan, self.clock()), TIMER_KIND, unit_id=unit_id
            )
        else:
            self.timers.done(tx, timer_id)
        await self.store.commit(tx)


def _seq(record: PlanRecord) -> int:
    return record.seq
