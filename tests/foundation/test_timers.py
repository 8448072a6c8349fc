"""Timer leases renewed by a heartbeat, on the wall clock against a real Redis: a live
instance keeps what it claimed however long its handler takes; a dead one's timers fire on
another instance about a lease later."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dispatch.infra.store import Store
from dispatch.infra.timers import Timers
from tests.utils import MS, wait_for

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 1.0
BEAT_S = 0.2


def wall() -> datetime:
    return datetime.now(UTC)


def instance(
    store: Store, fired: list[tuple[str, str, float]], name: str, *, hold_s: float
) -> Timers:
    timers = Timers(store, clock=wall, lease_s=LEASE_S, heartbeat_s=BEAT_S)

    async def handle(timer_id: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(hold_s)
        await store.commit(timers.done(store.tx(), timer_id))
        fired.append((name, timer_id, time.monotonic()))

    timers.on("test", handle)
    return timers


async def schedule(store: Store, timers: Timers, timer_id: str) -> None:
    await store.commit(timers.schedule(store.tx(), timer_id, wall(), "test"))


async def test_a_live_instance_keeps_a_long_handler_s_timer(store: Store) -> None:
    fired: list[tuple[str, str, float]] = []
    slow = instance(store, fired, "a", hold_s=3 * LEASE_S)
    other = instance(store, fired, "b", hold_s=0)
    await schedule(store, slow, "T1")
    stop = asyncio.Event()
    work = asyncio.create_task(slow.fire_due())
    await asyncio.sleep(0.05)
    watcher = asyncio.create_task(other.run(stop, poll_s=0.05))
    assert await work == 1
    stop.set()
    await watcher
    assert [f[:2] for f in fired] == [("a", "T1")]  # never re-fired while a lived
    assert slow.renewals >= 10


async def test_a_dead_instance_s_timers_fire_elsewhere_within_about_a_lease(
    store: Store,
) -> None:
    fired: list[tuple[str, str, float]] = []
    doomed = instance(store, fired, "a", hold_s=60)
    survivor = instance(store, fired, "b", hold_s=0)
    for n in range(3):
        await schedule(store, doomed, f"T{n}")
    work = asyncio.create_task(doomed.fire_due())
    await asyncio.sleep(0.3)  # claimed, first handler running, heartbeat renewing
    assert await store.redis.zcard(store.keys.timers_inflight) == 3
    died = time.monotonic()
    work.cancel()  # the instance is gone: no handler, no heartbeat
    with contextlib.suppress(asyncio.CancelledError):
        await work
    stop = asyncio.Event()
    watcher = asyncio.create_task(survivor.run(stop, poll_s=0.05))
    await wait_for(lambda: len(fired) == 3, timeout_s=LEASE_S + 2)
    stop.set()
    await watcher
    assert sorted(f[1] for f in fired) == ["T0", "T1", "T2"]
    assert {f[0] for f in fired} == {"b"}
    delay = max(f[2] for f in fired) - died
    # The lease was last renewed at most a heartbeat before the death.
    assert delay <= LEASE_S + 0.5 * 1000 * MS, delay
    assert await store.redis.zcard(store.keys.timers_inflight) == 0


def test_the_heartbeat_must_be_shorter_than_the_lease(store: Store) -> None:
    with pytest.raises(ValueError):
        Timers(store, clock=wall, lease_s=1.0, heartbeat_s=1.0)


# An instance's timer poller in a process of its own, stuck in its handler (heartbeat alive).
_STUCK_INSTANCE = """
import asyncio, sys
from datetime import UTC, datetime
from redis.asyncio import Redis
from dispatch.constants import Keys
from dispatch.infra.store import Store
from dispatch.infra.timers import Timers

async def main() -> None:
    store = Store(Redis.from_url(sys.argv[1]), Keys())
    timers = Timers(store, clock=lambda: datetime.now(UTC), lease_s=1.0, heartbeat_s=0.2)

    async def stuck(timer_id, payload):
        print("handling", timer_id, flush=True)
        await asyncio.sleep(3600)

    timers.on("test", stuck)
    await timers.run(asyncio.Event(), poll_s=0.05)

asyncio.run(main())
"""


async def test_kill_9_of_the_instance_holding_timers_fires_them_elsewhere(
    store: Store, redis_url: str
) -> None:
    fired: list[tuple[str, str, float]] = []
    survivor = instance(store, fired, "b", hold_s=0)
    for n in range(3):
        await schedule(store, survivor, f"T{n}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STUCK_INSTANCE, redis_url,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=20_000 * MS)
        assert line.startswith(b"handling")
        stop = asyncio.Event()
        watcher = asyncio.create_task(survivor.run(stop, poll_s=0.05))
        # Three leases long: the stuck instance's heartbeat keeps its timers.
        await asyncio.sleep(3 * LEASE_S)
        assert fired == []
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        died = time.monotonic()
        await wait_for(lambda: len(fired) == 3, timeout_s=LEASE_S + 3)
        stop.set()
        await watcher
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert sorted(f[1] for f in fired) == ["T0", "T1", "T2"]
    assert max(f[2] for f in fired) - died <= LEASE_S + 0.5 * 1000 * MS
