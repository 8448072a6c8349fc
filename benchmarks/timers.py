"""Timer re-fire benchmark: how long a dead instance's claimed timers wait before another
instance fires them.

Instance A claims ``--timers`` due timers and dies (it never handles them, its heartbeat
stops); instance B polls every ``--poll-ms`` as the service does. For each lease in
``--leases`` (default the 5 s heartbeat lease and the old 30 s one) it prints the delay from
A's claim to B's handling: p50 and max. Wall clock, real Redis, its own DB (flushed).

    .venv/bin/python benchmarks/timers.py                  # about 40 s
    .venv/bin/python benchmarks/timers.py --leases 5       # about 6 s
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from _common import check_redis_url, run_async
from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.infra.store import Store
from dispatch.infra.timers import Timers

DEFAULT_URL = "redis://127.0.0.1:6379/14"


def wall() -> datetime:
    return datetime.now(UTC)


async def one(r: Redis, lease_s: float, args: argparse.Namespace) -> dict[str, Any]:
    await r.flushdb()
    store = Store(r, Keys())
    beat = min(1.0, lease_s / 5)
    a = Timers(store, clock=wall, lease_s=lease_s, heartbeat_s=beat)
    b = Timers(store, clock=wall, lease_s=lease_s, heartbeat_s=beat)
    handled: dict[str, float] = {}
    everything = asyncio.Event()

    async def handle(timer_id: str, payload: dict[str, Any]) -> None:
        await store.commit(b.done(store.tx(), timer_id))
        handled[timer_id] = time.monotonic()
        if len(handled) == args.timers:
            everything.set()

    b.on("bench", handle)
    tx = store.tx()
    for n in range(args.timers):
        a.schedule(tx, f"T{n}", wall(), "bench")
    await store.commit(tx)
    claimed = await a.claim_due()  # ... and A dies here
    died = time.monotonic()
    assert len(claimed) == args.timers
    stop = asyncio.Event()
    poller = asyncio.create_task(b.run(stop, poll_s=args.poll_ms / 1000))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everything.wait(), timeout=lease_s + 10)
    stop.set()
    await poller
    delays = sorted(t - died for t in handled.values())
    return {
        "lease_s": lease_s,
        "timers": args.timers,
        "refired": len(delays),
        "p50_s": round(statistics.median(delays), 2) if delays else None,
        "max_s": round(delays[-1], 2) if delays else None,
    }


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    check_redis_url(args.redis_url)
    r = Redis.from_url(args.redis_url)
    try:
        return [await one(r, lease, args) for lease in args.leases]
    finally:
        await r.flushdb()
        await r.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--redis-url", default=DEFAULT_URL)
    p.add_argument(
        "--leases", type=lambda s: [float(x) for x in s.split(",") if x], default=[5.0, 30.0]
    )
    p.add_argument("--timers", type=int, default=50)
    p.add_argument("--poll-ms", type=int, default=250, help="the survivor's poll (service: 250)")
    args = p.parse_args(argv)
    rows = run_async(amain(args))
    print(
        f"re-fire delay of {args.timers} timers claimed by an instance that died, "
        f"poll {args.poll_ms} ms"
    )
    print(f"{'lease s':>8} {'re-fired':>9} {'p50 s':>7} {'max s':>7}")
    for row in rows:
        print(f"{row['lease_s']:>8.1f} {row['refired']:>9} {row['p50_s']:>7} {row['max_s']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
