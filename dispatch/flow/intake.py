"""Step 1, intake: ``yishao:calls`` -> validated calls -> joint intake, or the dead letters.

Each service instance is one consumer of the ``dispatch`` group (:class:`StreamConsumer`):
an entry is acknowledged only after the incident it produced is committed, or after it was
dead-lettered. An entry that fails validation is dead-lettered at once with the reason; one
whose processing fails ``max_deliveries`` times is dead-lettered with its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dispatch.codec import CallLimits, call_from_fields, decode_fields
from dispatch.constants import CONSUMER_GROUP
from dispatch.errors import InvalidCallError, StoreError
from dispatch.flow.merge import JointIntake
from dispatch.infra.consumer import Entry, StreamConsumer
from dispatch.infra.store import Store

log = logging.getLogger(__name__)


@dataclass
class IntakeStats:
    processed: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead: int = 0
    failed: int = 0
    reclaimed: int = 0


class Intake:
    """Turns call entries into incidents; run :meth:`run` as a task, or :meth:`step` in tests."""

    def __init__(
        self,
        store: Store,
        joint: JointIntake,
        *,
        consumer: str,
        clock: Callable[[], datetime],
        batch: int = 100,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        concurrency: int = 32,
        limits: CallLimits | None = None,
    ) -> None:
        self.store = store
        self.joint = joint
        self.clock = clock
        self.limits = limits or CallLimits()
        self._stats = IntakeStats()
        self._slots = asyncio.Semaphore(concurrency)
        self.consumer = StreamConsumer(
            store.redis,
            stream=store.keys.calls,
            group=CONSUMER_GROUP,
            consumer=consumer,
            handle=self._process,
            start_id="0",
            batch=batch,
            block_ms=block_ms,
            reclaim_idle_ms=reclaim_idle_ms,
            max_deliveries=max_deliveries,
            poison=self._dead_after_failures,
        )

    @property
    def stats(self) -> IntakeStats:
        self._stats.reclaimed = self.consumer.stats.reclaimed
        return self._stats

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; Redis outages are waited out, never fatal."""
        await self.consumer.run(stop)

    async def ensure_group(self) -> None:
        """Create the intake group (and the stream) unless they exist."""
        await self.consumer.ensure_group()

    async def step(self, block_ms: int | None = None) -> int:
        """Read one batch of new entries and process it. Returns how many were read."""
        return await self.consumer.step(block_ms)

    async def reclaim(self) -> int:
        """Take over entries idle over ``reclaim_idle_ms`` (a dead consumer's); process them."""
        return await self.consumer.reclaim()

    async def _dead_after_failures(self, entry: Entry, count: int) -> None:
        entry_id, fields = entry
        last = await self.store.failure_of(entry_id)
        reason = f"processing failed {count - 1} times" + (f"; last error: {last}" if last else "")
        await self.store.dead_letter(
            source_id=entry_id,
            fields=decode_fields(fields),
            reason=reason,
            deliveries=count - 1,
            now=self.clock(),
        )
        await self.store.forget_failures([entry_id])
        self._stats.dead += 1
        log.error("call entry %s dead-lettered: %s", entry_id, reason)

    async def _process(self, entries: Sequence[Entry]) -> list[str]:
        # Entries of one call id are handled one after another in stream order (the first
        # stands, a differing later one is a conflict); different calls run concurrently.
        groups: dict[tuple[bytes | None, bytes | None], list[Entry]] = {}
        for entry in entries:
            fields = entry[1]
            groups.setdefault((fields.get(b"centre"), fields.get(b"call_id")), []).append(entry)
        done = await asyncio.gather(*(self._in_order(g) for g in groups.values()))
        acked = [entry_id for group in done for entry_id in group]
        await self.store.forget_failures(acked)
        return acked

    async def _in_order(self, group: Sequence[Entry]) -> list[str]:
        """Handle one call id's entries in order; stop at a failure (the rest stay pending,
        to be retried after it, in order)."""
        acked: list[str] = []
        for entry in group:
            entry_id = await self._one(entry)
            if entry_id is None:
                break
            acked.append(entry_id)
        return acked

    async def _one(self, entry: Entry) -> str | None:
        """Process one entry; return its id when it may be acknowledged."""
        entry_id, fields = entry
        async with self._slots:
            try:
                call = call_from_fields(fields)
                self.limits.check(call, self.clock())
            except InvalidCallError as exc:
                await self.store.dead_letter(
                    source_id=entry_id,
                    fields=decode_fields(fields),
                    reason=exc.reason,
                    deliveries=1,
                    now=self.clock(),
                )
                self._stats.dead += 1
                log.warning("call entry %s dead-lettered: %s", entry_id, exc.reason)
                return entry_id
            try:
                outcome = await self.joint.handle(call, stream_id=entry_id)
            except Exception as exc:
                self._stats.failed += 1
                text = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("call entry %s (%s) failed; left pending", entry_id, call.key)
                with contextlib.suppress(StoreError):
                    await self.store.remember_failure(entry_id, text)
                return None
            if outcome.kind == "duplicate":
                self._stats.duplicates += 1
            elif outcome.kind == "conflict":
                self._stats.conflicts += 1
            else:
                self._stats.processed += 1
            return entry_id
