"""The call-intake consumer: ``yishao:calls`` -> validated calls -> committed incidents.

Each service instance is one consumer of the ``dispatch`` group. An entry is acknowledged
only after the state it produced is committed (or it was dead-lettered), so a crash
between read and ack loses nothing: the entry stays pending and another consumer
reclaims it with XAUTOCLAIM once it has been idle for ``reclaim_idle_ms``. An entry that
fails validation is dead-lettered at once with the reason; one whose processing fails
``max_deliveries`` times is dead-lettered with its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from dispatch.codec import call_from_fields, decode_fields
from dispatch.constants import CONSUMER_GROUP
from dispatch.errors import InvalidCallError, YishaoError
from dispatch.flow.merge import CallHandler
from dispatch.infra.store import Store

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass
class IntakeStats:
    processed: int = 0
    duplicates: int = 0
    dead: int = 0
    failed: int = 0
    reclaimed: int = 0


class Intake:
    """One consumer of the intake group; run :meth:`run` as a task, or :meth:`step` in tests."""

    def __init__(
        self,
        store: Store,
        handler: CallHandler,
        *,
        consumer: str,
        clock: Callable[[], datetime],
        batch: int = 100,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        concurrency: int = 32,
    ) -> None:
        self.store = store
        self.handler = handler
        self.consumer = consumer
        self.clock = clock
        self.batch = batch
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_deliveries = max_deliveries
        self.stats = IntakeStats()
        self._slots = asyncio.Semaphore(concurrency)
        self._redis = store.redis
        self._keys = store.keys

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; Redis outages are waited out, never fatal."""
        await self._retrying(self.store.ensure_group, stop)
        # Our own entries left pending by an earlier life of this consumer name come first.
        await self._retrying(self._drain_own_pending, stop)
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        while not stop.is_set():
            try:
                if loop.time() >= next_reclaim:
                    await self.reclaim()
                    next_reclaim = loop.time() + max(self.reclaim_idle_ms / 2000, 0.05)
                await self.step()
            except (RedisError, YishaoError) as exc:
                log.warning("intake %s: %s; retrying in 1 s", self.consumer, exc)
                if "NOGROUP" in str(exc):
                    # Redis lost the group (restart without persistence, failover to an
                    # empty replica): make it again rather than fail forever.
                    with contextlib.suppress(RedisError, YishaoError):
                        await self.store.ensure_group()
                    continue
                await _sleep_or_stop(stop, 1.0)

    async def _retrying(self, fn: Callable[[], object], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
                return
            except (RedisError, YishaoError) as exc:
                log.warning("intake %s: %s; retrying in 1 s", self.consumer, exc)
                await _sleep_or_stop(stop, 1.0)

    async def _drain_own_pending(self) -> None:
        while True:
            resp: Any = await self._redis.xreadgroup(
                CONSUMER_GROUP, self.consumer, {self._keys.calls: "0"}, count=self.batch
            )
            entries = resp[0][1] if resp else []
            if not entries:
                return
            await self._process(entries)
            if len(entries) < self.batch:
                return

    async def step(self, block_ms: int | None = None) -> int:
        """Read one batch of new entries and process it. Returns how many were read."""
        resp: Any = await self._redis.xreadgroup(
            CONSUMER_GROUP,
            self.consumer,
            {self._keys.calls: ">"},
            count=self.batch,
            block=self.block_ms if block_ms is None else block_ms,
        )
        entries: list[Entry] = resp[0][1] if resp else []
        if entries:
            await self._process(entries)
        return len(entries)

    async def reclaim(self) -> int:
        """Take over entries idle over ``reclaim_idle_ms`` (a dead consumer's); process them."""
        total = 0
        cursor = "0-0"
        while True:
            resp: Any = await self._redis.xautoclaim(
                self._keys.calls,
                CONSUMER_GROUP,
                self.consumer,
                min_idle_time=self.reclaim_idle_ms,
                start_id=cursor,
                count=self.batch,
            )
            cursor = _s(resp[0])
            claimed: list[Entry] = [e for e in resp[1] if e is not None and e[1] is not None]
            deleted = resp[2] if len(resp) > 2 else []
            if deleted:
                # Trimmed from the stream while pending: nothing left to process.
                await self._redis.xack(self._keys.calls, CONSUMER_GROUP, *deleted)
            if claimed:
                self.stats.reclaimed += len(claimed)
                total += len(claimed)
                deliveries = await self._deliveries([e[0] for e in claimed])
                fresh: list[Entry] = []
                for entry in claimed:
                    count = deliveries.get(_s(entry[0]), 1)
                    if count > self.max_deliveries:
                        await self._dead_after_failures(entry, count)
                    else:
                        fresh.append(entry)
                if fresh:
                    await self._process(fresh)
            if cursor == "0-0":
                return total

    async def _deliveries(self, ids: Sequence[bytes]) -> dict[str, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xpending_range(
                    self._keys.calls, CONSUMER_GROUP, min=entry_id, max=entry_id, count=1
                )
            found = await pipe.execute()
        out: dict[str, int] = {}
        for rows in found:
            for row in rows:
                out[_s(row["message_id"])] = int(row["times_delivered"])
        return out

    async def _dead_after_failures(self, entry: Entry, count: int) -> None:
        entry_id = _s(entry[0])
        last = await self._redis.hget(self._keys.intake_errors, entry_id)
        reason = f"processing failed {count - 1} times" + (
            f"; last error: {_s(last)}" if last else ""
        )
        await self.store.dead_letter(
            source_id=entry_id,
            fields=decode_fields(entry[1]),
            reason=reason,
            deliveries=count - 1,
            now=self.clock(),
        )
        await self._ack([entry_id])
        self.stats.dead += 1
        log.error("call entry %s dead-lettered: %s", entry_id, reason)

    async def _process(self, entries: Sequence[Entry]) -> None:
        done = await asyncio.gather(*(self._one(e) for e in entries))
        acked = [entry_id for entry_id in done if entry_id is not None]
        if acked:
            await self._ack(acked)

    async def _ack(self, ids: Sequence[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(self._keys.calls, CONSUMER_GROUP, *ids)
            pipe.hdel(self._keys.intake_errors, *ids)
            await pipe.execute()

    async def _one(self, entry: Entry) -> str | None:
        """Process one entry; return its id when it may be acknowledged."""
        entry_id = _s(entry[0])
        async with self._slots:
            try:
                call = call_from_fields(entry[1])
            except InvalidCallError as exc:
                await self.store.dead_letter(
                    source_id=entry_id,
                    fields=decode_fields(entry[1]),
                    reason=exc.reason,
                    deliveries=1,
                    now=self.clock(),
                )
                self.stats.dead += 1
                log.warning("call entry %s dead-lettered: %s", entry_id, exc.reason)
                return entry_id
            try:
                outcome = await self.handler.handle(call, stream_id=entry_id)
            except Exception as exc:
                self.stats.failed += 1
                text = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("call entry %s (%s) failed; left pending", entry_id, call.key)
                with contextlib.suppress(RedisError):
                    await self._redis.hset(self._keys.intake_errors, entry_id, text)
                return None
            if outcome.kind == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.processed += 1
            return entry_id


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
