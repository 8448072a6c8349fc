"""One consumer of a Redis Streams consumer group: the loop every stream reader of Yishao runs.

Call intake (group ``dispatch`` on the calls stream) and the reactor (group ``reactor`` on
the event log) are both this loop with a different handler, as arq's one ``Worker`` serves
every job: read a batch with ``XREADGROUP``, hand it to the handler, acknowledge what it
says is done. An entry is acknowledged only after its handler committed what it produced,
so a crash between read and ack loses nothing: the entry stays pending and a consumer of the
group (this one after a restart, or another instance) takes it over with ``XAUTOCLAIM`` once
it has been idle for ``reclaim_idle_ms``. An entry delivered more than ``max_deliveries``
times goes to the ``poison`` callback (intake dead-letters it) instead of its handler.

Redis outages are waited out, never fatal; a group that Redis lost (a restart without
persistence, a failover to an empty replica) is created again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from dispatch.errors import StoreError, YishaoError
from dispatch.infra.store import AnyRedis, text

log = logging.getLogger(__name__)

Entry = tuple[str, dict[bytes, bytes]]
# Handles a batch; returns the ids that may be acknowledged (the others stay pending).
Handler = Callable[[Sequence[Entry]], Awaitable[Sequence[str]]]
# Takes an entry delivered too often (its delivery count given); it is acknowledged after.
Poison = Callable[[Entry, int], Awaitable[None]]


@dataclass
class ConsumerStats:
    read: int = 0
    acked: int = 0
    reclaimed: int = 0
    poisoned: int = 0


class StreamConsumer:
    """Reads ``stream`` as ``consumer`` of ``group`` and feeds its handler.

    Args:
        redis: the client.
        stream, group, consumer: where to read and who reads.
        handle: the batch handler (see :data:`Handler`).
        start_id: where a newly created group starts (``"0"``: the whole stream; ``"$"``:
            from now on).
        batch, block_ms: entries per read and how long a read waits.
        reclaim_idle_ms: entries pending this long with another consumer are taken over.
        max_deliveries: beyond this many deliveries an entry goes to ``poison`` (None: never).
        poison: what to do with such an entry (required with ``max_deliveries``).
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        stream: str,
        group: str,
        consumer: str,
        handle: Handler,
        start_id: str = "0",
        batch: int = 100,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 30_000,
        max_deliveries: int | None = None,
        poison: Poison | None = None,
    ) -> None:
        if max_deliveries is not None and poison is None:
            raise ValueError("max_deliveries needs a poison callback")
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.handle = handle
        self.start_id = start_id
        self.batch = batch
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_deliveries = max_deliveries
        self.poison = poison
        self.stats = ConsumerStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        await self._until_done(self.ensure_group, stop)
        # Our own entries left pending by an earlier life of this consumer name come first.
        await self._until_done(self.drain_own_pending, stop)
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        while not stop.is_set():
            try:
                if loop.time() >= next_reclaim:
                    await self.reclaim()
                    next_reclaim = loop.time() + max(self.reclaim_idle_ms / 2000, 0.05)
                await self.step()
            except (RedisError, YishaoError) as exc:
                log.warning("%s/%s %s: %s; retrying", self.stream, self.group, self.consumer, exc)
                if "NOGROUP" in str(exc):
                    with contextlib.suppress(RedisError, YishaoError):
                        await self.ensure_group()
                    continue
                await _pause(stop, 1.0)

    async def ensure_group(self) -> None:
        """Create the group (and the stream) unless they exist."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreError(f"cannot create consumer group {self.group}: {exc}") from exc

    async def step(self, block_ms: int | None = None) -> int:
        """Read one batch of new entries and handle it. Returns how many were read."""
        resp: Any = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.batch,
            block=self.block_ms if block_ms is None else block_ms,
        )
        entries = _entries(resp[0][1] if resp else [])
        if entries:
            await self._handle(entries)
        return len(entries)

    async def drain_own_pending(self) -> None:
        """Handle what this consumer name had read but not acknowledged (a restart)."""
        while True:
            resp: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=self.batch
            )
            entries = _entries(resp[0][1] if resp else [])
            if not entries:
                return
            await self._handle(entries)
            if len(entries) < self.batch:
                return

    async def reclaim(self) -> int:
        """Take over entries idle over ``reclaim_idle_ms`` (a dead consumer's); handle them."""
        total = 0
        cursor = "0-0"
        while True:
            resp: Any = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.reclaim_idle_ms,
                start_id=cursor,
                count=self.batch,
            )
            cursor = text(resp[0])
            claimed = _entries([e for e in resp[1] if e is not None and e[1] is not None])
            deleted = resp[2] if len(resp) > 2 else []
            if deleted:
                # Trimmed from the stream while pending: nothing left to handle.
                await self.redis.xack(self.stream, self.group, *deleted)
            if claimed:
                self.stats.reclaimed += len(claimed)
                total += len(claimed)
                await self._handle(await self._screen(claimed))
            if cursor == "0-0":
                return total

    async def _screen(self, claimed: list[Entry]) -> list[Entry]:
        """Pass on the entries still worth handling; send the over-delivered to ``poison``."""
        if self.max_deliveries is None or self.poison is None:
            return claimed
        deliveries = await self._deliveries([e[0] for e in claimed])
        fresh: list[Entry] = []
        for entry in claimed:
            count = deliveries.get(entry[0], 1)
            if count > self.max_deliveries:
                await self.poison(entry, count)
                await self.ack([entry[0]])
                self.stats.poisoned += 1
            else:
                fresh.append(entry)
        return fresh

    async def _deliveries(self, ids: Sequence[str]) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
            found = await pipe.execute()
        out: dict[str, int] = {}
        for rows in found:
            for row in rows:
                out[text(row["message_id"])] = int(row["times_delivered"])
        return out

    async def _handle(self, entries: Sequence[Entry]) -> None:
        self.stats.read += len(entries)
        done = await self.handle(entries)
        await self.ack(done)

    async def ack(self, ids: Sequence[str]) -> None:
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)
            self.stats.acked += len(ids)

    async def _until_done(self, fn: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await fn()
                return
            except (RedisError, YishaoError) as exc:
                log.warning("%s/%s %s: %s; retrying", self.stream, self.group, self.consumer, exc)
                await _pause(stop, 1.0)


def _entries(raw: Sequence[tuple[bytes | str, dict[bytes, bytes]]]) -> list[Entry]:
    return [(text(i), fields) for i, fields in raw]


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
