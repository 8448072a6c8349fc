"""Records benchmark: the archiver's rate, and a year's KPI query, on this machine.

1. Archive: N events on the event log (committed by the store, 100 per commit), drained by
   the ``archive`` consumer group into a scratch PostgreSQL database; against a baseline in
   the same run: the same group loop with a handler that writes nothing (XREADGROUP + XACK).
2. KPIs: 100,000 closed incidents (two agencies each; migration 0003's green-wave, property
   and repeat-call columns filled for a share of them, 2,000 referrals) in the record tables, then
   ``figures()`` over the whole year, over one agency, and grouped by hour.

Run by hand (its own Redis DB, flushed before and after; a scratch database, dropped after)::

    .venv/bin/python benchmarks/records.py            # about a minute
    .venv/bin/python benchmarks/records.py --events 20000 --incidents 100000

Goals (issue 14): the archiver keeps up with at least 2,000 events/s; a year's KPI query
(100k incidents) answers in under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from _common import check_redis_url
from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.infra.consumer import Entry, StreamConsumer
from dispatch.infra.store import Store
from dispatch.records import db, kpis
from dispatch.records.archive import Archiver
from dispatch.records.kpis import KpiQuery, figures

REDIS_URL = os.environ.get("YISHAO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
PG_URL = os.environ.get("YISHAO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def fill(store: Store, n: int) -> None:
    payload = {"incident": {"id": "x", "calls": [], "note": "y" * 300}}
    for start in range(0, n, 100):
        tx = store.tx()
        for i in range(start, min(start + 100, n)):
            tx.raw_event("bench.event", payload, actor="bench", ts=T0, incident_id=f"i{i % 500}")
        await store.commit(tx)


async def drain(consumer: StreamConsumer, n: int) -> float:
    await consumer.ensure_group()
    started = time.perf_counter()
    done = 0
    while done < n:
        done += await consumer.step(block_ms=100)
    return time.perf_counter() - started


async def bench_archive(redis: Redis, pool: asyncpg.Pool, n: int) -> dict[str, float]:
    store = Store(redis, Keys(), event_maxlen=0)
    await redis.flushdb()
    await fill(store, n)

    async def nothing(entries: Sequence[Entry]) -> Sequence[str]:
        return [e[0] for e in entries]

    baseline = StreamConsumer(
        redis, stream=store.keys.events, group="baseline", consumer="b", handle=nothing, batch=500
    )
    base_s = await drain(baseline, n)
    archiver = Archiver(store, pool, consumer="bench", clock=lambda: datetime.now(UTC), batch=500)
    arch_s = await drain(archiver.consumer, n)
    assert await pool.fetchval("SELECT count(*) FROM audit_events") == n
    return {"events": n, "baseline_per_s": n / base_s, "archive_per_s": n / arch_s}


async def seed_incidents(pool: asyncpg.Pool, n: int) -> None:
    rng = random.Random(1)
    records, intervals = [], []
    types = ["fire", "traffic_accident", "critical_patient", "fall_from_height"]
    for i in range(n):
        at = T0 + timedelta(seconds=rng.uniform(0, 365 * 86_400))
        ctype, area = rng.choice(types), f"31.{rng.randint(10, 30)},121.{rng.randint(40, 60)}"
        cp, to, tr = rng.uniform(20, 120), rng.uniform(30, 120), rng.uniform(120, 900)
        whistle = at + timedelta(seconds=20) if i % 5 == 0 else None
        gw = orjson.dumps({"planned": i % 3, "requests": i % 4, "granted": i % 2}).decode()
        # Migration 0003's columns: a third saved time, one in twenty a property team.
        saved = rng.uniform(-30, 120) if i % 3 else None
        team = i % 20 == 0
        joined = at + timedelta(seconds=30) if team else None
        records.append(
            (f"i{i}", False, at, at + timedelta(hours=1), ctype, area, ["fire", "ems"], cp, to,
             tr, cp + to + tr, whistle, whistle and whistle + timedelta(seconds=40), 0, gw,
             "{}", "x", saved, 1 + i % 2, i % 10 == 0, joined, team and i % 40 == 0,
             "closed" if team else None, rng.uniform(10, 90) if team else None,
             rng.uniform(60, 400) if team else None, int(i % 50 == 0))
        )  # fmt: skip
        for agency, k in (("fire", 1.0), ("ems", 1.2)):
            intervals.append(
                (f"i{i}", agency, False, ctype, area, at, cp * k, to * k, tr * k,
                 (cp + to + tr) * k)
            )  # fmt: skip
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "incident_records",
            records=records,
            columns=[
                "incident_id", "exercise", "first_call_at", "closed_at", "call_type", "area",
                "agencies", "call_processing_s", "turnout_s", "travel_s", "total_s",
                "whistle_sounded_at", "whistle_all_acked_at", "whistle_escalations",
                "greenwave", "record", "close_event_id", "greenwave_saved_s", "call_count",
                "in_compound", "property_joined_at", "property_automatic", "property_status",
                "property_join_to_answer_s", "property_join_to_contact_s", "repeat_calls",
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "incident_agency_intervals",
            records=intervals,
            columns=[
                "incident_id", "agency", "exercise", "call_type", "area", "first_call_at",
                "call_processing_s", "turnout_s", "travel_s", "total_s",
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "referral_records",
            records=[
                (f"r{i}", f"i{i}", False, 1, "B1", "labour" if i % 3 else "property_management",
                 ["labour_dispute" if i % 3 else "dispute"], "resolved" if i % 2 else "referred",
                 at, at + timedelta(days=3), at + timedelta(days=2) if i % 2 else None, i % 4,
                 "{}")
                for i, at in ((k, T0 + timedelta(hours=k * 3)) for k in range(n // 50))
            ],
            columns=[
                "referral_id", "incident_id", "exercise", "version", "body", "topic",
                "call_types", "status", "referred_at", "due_at", "closed_at", "repeat_calls",
                "referral",
            ],
        )  # fmt: skip
        await conn.execute("ANALYZE")


# The SQL of before migration 0002 (hour, week and month computed per row, text keys sorted
# under the database collation, the greenwave jsonb parsed per row): the same run's baseline.
BEFORE_0002: dict[str, dict[str, str]] = {
    "_GROUP_SQL": {
        "agency": "agency",
        "type": "COALESCE(call_type, 'unknown')",
        "area": "COALESCE(area, 'unknown')",
        "hour": "to_char(first_call_at AT TIME ZONE 'UTC', 'HH24')",
    },
    "_PERIOD_SQL": {
        p: f"date_trunc('{p}', first_call_at AT TIME ZONE 'UTC')::date" for p in ("week", "month")
    },
    "_GREENWAVE_SQL": {
        n: f"(greenwave->>'{n}')::int" for n in ("planned", "requests", "granted", "rejected")
    },
}


async def timed(pool: asyncpg.Pool, q: KpiQuery, runs: int = 3) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(runs):
        started = time.perf_counter()
        out = await figures(pool, q)
        best = min(best, time.perf_counter() - started)
        count = int(out["incidents"])
    return best, count


async def timed_before(pool: asyncpg.Pool, q: KpiQuery) -> float:
    """``timed`` with the SQL of before migration 0002."""
    now = {name: dict(getattr(kpis, name)) for name in BEFORE_0002}
    try:
        for name, sql in BEFORE_0002.items():
            getattr(kpis, name).update(sql)
        return (await timed(pool, q))[0]
    finally:
        for name, sql in now.items():
            getattr(kpis, name).update(sql)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--incidents", type=int, default=100_000)
    args = parser.parse_args()
    check_redis_url(REDIS_URL)
    name = f"yishao_bench_{uuid.uuid4().hex[:6]}"
    url = PG_URL.rstrip("/") + f"/{name}"
    await db.ensure_database(url)
    await asyncio.to_thread(db.upgrade, url)
    redis = Redis.from_url(REDIS_URL)
    pool = await db.open_pool(url)
    try:
        a = await bench_archive(redis, pool, args.events)
        print(
            f"archive: {a['events']} events, {a['archive_per_s']:,.0f} events/s"
            f" (baseline XREADGROUP+XACK without PostgreSQL {a['baseline_per_s']:,.0f}/s,"
            f" ratio {a['archive_per_s'] / a['baseline_per_s']:.2f})"
        )
        started = time.perf_counter()
        await seed_incidents(pool, args.incidents)
        print(f"kpis: seeded {args.incidents} incidents in {time.perf_counter() - started:.1f} s")
        year = KpiQuery(start=T0, end=T0 + timedelta(days=366))
        for label, q in (
            ("a year, all agencies", year),
            ("a year, fire only", KpiQuery(start=T0, end=year.end, agency="fire")),
            ("a year, by hour", KpiQuery(start=T0, end=year.end, group_by="hour")),
            (
                "a year, by hour, Asia/Shanghai (the stored zone)",
                KpiQuery(start=T0, end=year.end, group_by="hour", timezone="Asia/Shanghai"),
            ),
            (
                "a year, by hour, Europe/Paris (per row)",
                KpiQuery(start=T0, end=year.end, group_by="hour", timezone="Europe/Paris"),
            ),
            ("a year, by area", KpiQuery(start=T0, end=year.end, group_by="area")),
            ("a year, by type", KpiQuery(start=T0, end=year.end, group_by="type")),
            ("one month", KpiQuery(start=T0, end=T0 + timedelta(days=31))),
        ):
            before = await timed_before(pool, q)
            best, count = await timed(pool, q)
            print(
                f"kpis: {label}: {count} incidents in {best * 1000:.0f} ms (best of 3;"
                f" SQL before 0002 {before * 1000:.0f} ms, ratio {best / before:.2f})"
            )
    finally:
        await pool.close()
        await redis.flushdb()
        await redis.aclose()
        conn = await asyncpg.connect(PG_URL.rstrip("/") + "/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
