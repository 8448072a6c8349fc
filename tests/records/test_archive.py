"""The archiver against a real Redis and a real PostgreSQL: every event once, in one chain,
the final record on close, and the Redis log trimmed only below what was archived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from dispatch.infra.store import Store
from dispatch.records.archive import ARCHIVE_GROUP, Archiver
from dispatch.records.audit import verify
from tests.conftest import FakeClock

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def _log(store: Store, n: int, *, incident_id: str | None = "inc-1", start: int = 0) -> None:
    for i in range(start, start + n):
        tx = store.tx()
        tx.raw_event("test.event", {"n": i}, actor="test", ts=T0, incident_id=incident_id)
        await store.commit(tx)


def _archiver(store: Store, pool: asyncpg.Pool, clock: FakeClock, name: str = "a1") -> Archiver:
    return Archiver(
        store, pool, consumer=name, clock=clock, keep_s=0, batch=7, block_ms=20,
        reclaim_idle_ms=200,
    )  # fmt: skip


async def _drain(archiver: Archiver) -> None:
    await archiver.consumer.ensure_group()
    while await archiver.consumer.step(block_ms=20):
        pass


async def _count(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events"
    )
    assert row is not None
    return int(row["n"]), int(row["d"])


async def test_every_event_once_and_chained(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await _log(store, 30)
    archiver = _archiver(store, pool, clock)
    await _drain(archiver)
    assert await _count(pool) == (30, 30)
    async with pool.acquire() as conn:
        verdict = await verify(conn)
    assert verdict.broken is None and verdict.rows == 30
    assert await archiver.lag() == 0


async def test_redelivered_batch_inserts_nothing_twice(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await _log(store, 10)
    entries = await store.event_entries("-", "+", count=100)
    archiver = _archiver(store, pool, clock)
    await archiver.handle(entries)
    await archiver.handle(entries[3:])  # read, written, crashed before the ack
    assert await _count(pool) == (10, 10)
    assert archiver.stats.duplicates == 7
    async with pool.acquire() as conn:
        assert (await verify(conn)).broken is None


async def test_restart_of_the_service_loses_and_doubles_nothing(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await _log(store, 20)
    first = _archiver(store, pool, clock)
    await first.consumer.ensure_group()
    # One batch read and written, the process dies before acknowledging it.
    resp = await store.redis.xreadgroup(ARCHIVE_GROUP, "a1", {store.keys.events: ">"}, count=7)
    await first.handle([(e[0].decode(), e[1]) for e in resp[0][1]])
    await _log(store, 5, start=20)
    # The same consumer name starts again: its pending entries come first, then the rest.
    again = _archiver(store, pool, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    for _ in range(200):
        if (await _count(pool))[0] == 25 and await again.lag() == 0:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert await _count(pool) == (25, 25)
    numbers = sorted(
        int(r["n"]) for r in await pool.fetch("SELECT (data::jsonb->>'n') AS n FROM audit_events")
    )
    assert numbers == list(range(25))


async def test_trim_never_passes_the_archive(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await _log(store, 20)
    archiver = _archiver(store, pool, clock)
    await archiver.consumer.ensure_group()
    await archiver.consumer.step(block_ms=20)  # 7 archived and acked
    resp = await store.redis.xreadgroup(ARCHIVE_GROUP, "a1", {store.keys.events: ">"}, count=7)
    assert resp  # 7 more read, not yet archived (pending)
    assert await archiver.trim() == 7
    left = await store.event_entries("-", "+", count=100)
    assert len(left) == 13
    archived = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM audit_events")}
    assert not archived & {i for i, _ in left[7:]}  # the unarchived are all still in Redis
    await _drain(archiver)
    await archiver.consumer.reclaim()
    await asyncio.sleep(0.25)
    await archiver.consumer.reclaim()
    assert await _count(pool) == (20, 20)
    assert await archiver.trim() == 13
    assert await store.event_entries("-", "+", count=100) == []


async def test_trim_keeps_the_recent_window(
    store: Store, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await _log(store, 5)
    archiver = Archiver(store, pool, consumer="a1", clock=clock, keep_s=600)
    await _drain(archiver)
    assert await archiver.trim() == 0  # archived, but within the keep window
    assert await Archiver(store, pool, consumer="a1", clock=clock, keep_s=0).trim() == 5


async def test_an_edited_row_is_caught(store: Store, pool: asyncpg.Pool, clock: FakeClock) -> None:
    await _log(store, 12)
    await _drain(_archiver(store, pool, clock))
    async with pool.acquire() as conn:
        # The service cannot update (append-only trigger); somebody with the table's owner can.
        try:
            await conn.execute("UPDATE audit_events SET actor = 'x' WHERE seq = 5")
        except asyncpg.RaiseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError("update allowed")
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        await conn.execute("UPDATE audit_events SET data = '{\"n\": 99}' WHERE seq = 5")
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        verdict = await verify(conn)
    assert verdict.broken is not None and verdict.broken.seq == 5
