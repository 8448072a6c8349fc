"""Pivot posts in service: the plan in force, its history, and the police units posted at posts.

Each plan put is an object ``pivots:plan:{seq}`` listed in ``pivots:plans`` (scored by seq) with
its :class:`~dispatch.core.pivot_plan.PlanRecord` in ``pivots:records``; the newest is in force.
Postings are one hash, unit id -> :class:`~dispatch.core.pivot_plan.Posting`: small (a district
has 13 to 26 posts), read whole by the recommender.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dispatch.core.pivot_plan import (
    Plan,
    PlanRecord,
    Post,
    Posting,
    active_posts,
    post_index,
    standing_postings,
)
from dispatch.errors import ConflictError, InvalidInputError, NotFoundError
from dispatch.events import EventType, PivotPlanStored, PivotPosting
from dispatch.flow.fleet import Fleet
from dispatch.infra.store import Store
from dispatch.models import Agency, Unit

# The agencies whose units stand at pivot posts (police posts: patrol and traffic police).
POSTING_AGENCIES = frozenset({Agency.POLICE, Agency.TRAFFIC})


class PivotDesk:
    """Stores plans and postings through the store; answers what stands now."""

    def __init__(self, store: Store, fleet: Fleet, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self._cached: tuple[int, Plan] | None = None

    async def put_plan(self, plan: Plan, *, actor: str) -> PlanRecord:
        """Put ``plan`` in force from now. Raises ConflictError when another put raced it."""
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

    async def postings(self) -> list[Posting]:
        raw = await self.store.hash_all(self.store.keys.pivot_postings)
        return sorted(
            (Posting.model_validate_json(v) for v in raw.values()), key=lambda p: p.unit_id
        )

    async def stations(self, at: datetime) -> dict[str, Posting]:
        """Units posted at a post standing at ``at``, by unit id: their station for ranking."""
        postings = await self.postings()
        if not postings:
            return {}
        return standing_postings(postings, await self.standing(at))

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
        tx = self.store.tx()
        tx.hset(self.store.keys.pivot_postings, {unit.id: posting.model_dump_json()})
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
        tx.event(
            EventType.PIVOT_UNIT_RELEASED,
            PivotPosting(posting=posting, reason="released"),
            actor=actor,
            ts=now,
        )
        await self.store.commit(tx)
        return posting


def _seq(record: PlanRecord) -> int:
    return record.seq
