"""Overload benchmark: intake throughput as open incidents pile up.

For each count of open incidents (default 0, 10k, 50k, 100k), in one run against one Redis:
FLUSHDB, seed that many open incidents straight into the service's keys (the incident hash,
the open set, the merge index by time bucket and place), their last calls spread over the
past ``--spread-h`` hours across a ~20 x 20 km district, then land ``--calls`` new calls at
random spots of the same district on the intake stream and time one in-process ``Intake``
(the service's own, uvloop) until every one is committed. Prints calls/s per count and the
ratio to the 0-open figure of the same run.

``--recent`` seeds every open incident inside the merge window instead: the worst case, where
every open incident is a genuine candidate and the time buckets cannot help (the geo search
still bounds the scan to the merge radius).

Run by hand (bounded, loopback only, its own Redis DB, flushed before and after)::

    .venv/bin/python benchmarks/overload.py                    # about 1-2 minutes
    .venv/bin/python benchmarks/overload.py --open 0,10000 --calls 1000
    .venv/bin/python benchmarks/overload.py --recent --open 0,10000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from _common import check_redis_url, run_async
from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.core.buckets import time_bucket
from dispatch.core.merge import MergePolicy
from dispatch.core.plans import PlanTable
from dispatch.flow.intake import Intake
from dispatch.flow.merge import JointIntake
from dispatch.infra.store import Store
from dispatch.models import CallEvent, CallType, Centre

DEFAULT_URL = "redis://127.0.0.1:6379/14"
CENTRE_LAT, CENTRE_LON = 30.05, 119.95
HALF_LAT, HALF_LON = 0.09, 0.104  # about 10 km either way
CALL_TYPES = (
    (Centre.TRAFFIC, CallType.TRAFFIC_ACCIDENT),
    (Centre.EMS, CallType.CRITICAL_PATIENT),
    (Centre.FIRE, CallType.FIRE),
)


def now() -> datetime:
    return datetime.now(UTC)


def spot(rng: random.Random) -> tuple[float, float]:
    return (
        CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT),
        CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON),
    )


async def template(store: Store, plans: PlanTable) -> dict[str, Any]:
    """One real incident, as joint intake commits it, to copy from."""
    joint = JointIntake(store, plans, policy=MergePolicy(), clock=now)
    call = CallEvent(
        call_id="template",
        centre=Centre.TRAFFIC,
        call_type=CallType.TRAFFIC_ACCIDENT,
        lat=CENTRE_LAT,
        lon=CENTRE_LON,
        received_at=now(),
    )
    outcome = await joint.handle(call)
    incident = await store.get_incident(outcome.incident_id)
    assert incident is not None
    await store.redis.flushdb()
    body: dict[str, Any] = orjson.loads(incident.model_dump_json())
    return body


async def seed(
    store: Store, body: dict[str, Any], n: int, *, spread_s: float, rng: random.Random
) -> None:
    keys = store.keys
    t0 = now()
    for start in range(0, n, 2000):
        async with store.redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 2000)):
                lat, lon = spot(rng)
                at = t0 - timedelta(seconds=rng.uniform(0, spread_s))
                inc_id = f"YS-SEED-{i:07d}"
                doc = dict(body, id=inc_id, lat=lat, lon=lon)
                doc["created_at"] = doc["last_call_at"] = at.isoformat()
                pipe.hset(keys.incident(inc_id), mapping={"v": "1", "json": orjson.dumps(doc)})
                pipe.zadd(keys.open_incidents, {inc_id: at.timestamp()})
                pipe.zadd(keys.incident_index, {inc_id: at.timestamp()})
                pipe.geoadd(keys.open_geo_bucket(time_bucket(at)), (lon, lat, inc_id))
            await pipe.execute()


async def measure(
    r: Redis, keys: Keys, plans: PlanTable, body: dict[str, Any], n_open: int, args: Any
) -> dict[str, Any]:
    await r.flushdb()
    rng = random.Random(n_open)
    store = Store(r, keys)
    spread = args.spread_h * 3600 if not args.recent else 590.0
    t_seed = time.perf_counter()
    await seed(store, body, n_open, spread_s=spread, rng=rng)
    seed_s = time.perf_counter() - t_seed
    joint = JointIntake(store, plans, policy=MergePolicy(), clock=now)
    intake = Intake(store, joint, consumer="bench", clock=now, batch=100, block_ms=1)
    await intake.ensure_group()
    calls_rng = random.Random(7)
    for start in range(0, args.calls, 1000):
        async with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(args.calls, start + 1000)):
                lat, lon = spot(calls_rng)
                centre, call_type = CALL_TYPES[i % len(CALL_TYPES)]
                call = CallEvent(
                    call_id=f"bench-{i:06d}",
                    centre=centre,
                    call_type=call_type,
                    lat=lat,
                    lon=lon,
                    received_at=now(),
                )
                pipe.xadd(keys.calls, call.to_fields())  # type: ignore[arg-type]
            await pipe.execute()
    t0 = time.perf_counter()
    while await intake.step(block_ms=1):
        pass
    dt = time.perf_counter() - t0
    stats = intake.stats
    done = stats.processed + stats.duplicates
    return {
        "open": n_open,
        "calls": done,
        "seconds": round(dt, 3),
        "calls_per_s": round(done / dt, 1),
        "seed_s": round(seed_s, 1),
        "dead": stats.dead,
        "failed": stats.failed,
    }


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    check_redis_url(args.redis_url)
    r = Redis.from_url(args.redis_url)
    keys = Keys()
    plans = PlanTable.load()
    try:
        await r.flushdb()
        body = await template(Store(r, keys), plans)
        rows = [await measure(r, keys, plans, body, n, args) for n in args.open]
    finally:
        await r.flushdb()
        await r.aclose()
    base = next((row["calls_per_s"] for row in rows if row["open"] == 0), None)
    for row in rows:
        row["ratio_vs_0"] = None if not base else round(row["calls_per_s"] / base, 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--redis-url", default=DEFAULT_URL)
    p.add_argument(
        "--open",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[0, 10_000, 50_000, 100_000],
        help="counts of open incidents, comma-separated (include 0 for the ratio)",
    )
    p.add_argument("--calls", type=int, default=3000, help="new calls timed per count")
    p.add_argument("--spread-h", type=float, default=8.0, help="age spread of open incidents")
    p.add_argument("--recent", action="store_true", help="every open incident in the window")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    args = p.parse_args(argv)
    rows = run_async(amain(args))
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    mode = "all within the merge window" if args.recent else f"spread over {args.spread_h:g} h"
    print(f"intake, one in-process consumer, {args.calls} calls per count; open incidents {mode}")
    print(f"{'open':>8} {'calls/s':>9} {'ratio vs 0':>11} {'seconds':>8} {'seeded in':>10}")
    for row in rows:
        ratio = "-" if row["ratio_vs_0"] is None else f"{row['ratio_vs_0']:.2f}"
        print(
            f"{row['open']:>8} {row['calls_per_s']:>9.1f} {ratio:>11} "
            f"{row['seconds']:>8.2f} {row['seed_s']:>9.1f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
