"""Call intake against a real Redis: commit, idempotency, dead letters, crashes, two consumers."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from dispatch.constants import CONSUMER_GROUP, Keys
from dispatch.core.merge import MergePolicy
from dispatch.core.plans import PlanTable
from dispatch.flow.intake import Intake
from dispatch.flow.merge import JointIntake
from dispatch.infra.store import Store
from dispatch.models import CallEvent, CallType, Centre
from tests.conftest import FakeClock

PLANS = PlanTable.load()


def make_call(
    n: int,
    *,
    centre: str = "122",
    call_type: str = "traffic_accident",
    lat: float | None = None,
    lon: float | None = None,
    clock: FakeClock | None = None,
    phone: str | None = None,
) -> CallEvent:
    # Spread calls ~1.1 km apart so none merge unless a test wants them to.
    when = (clock or FakeClock()).now
    return CallEvent(
        call_id=f"C{n:05d}",
        centre=Centre(centre),
        call_type=CallType(call_type),
        lat=lat if lat is not None else 30.0 + (n % 100) * 0.01,
        lon=lon if lon is not None else 120.0 + (n // 100) * 0.01,
        received_at=when,
        caller_phone=phone,
    )


def make_intake(store: Store, clock: FakeClock, name: str = "c1", **kw: Any) -> Intake:
    handler = JointIntake(store, PLANS, policy=MergePolicy(), clock=clock)
    opts: dict[str, Any] = {
        "batch": 50,
        "block_ms": 10,
        "reclaim_idle_ms": 200,
        "max_deliveries": 3,
    }
    opts.update(kw)
    return Intake(store, handler, consumer=name, clock=clock, **opts)


async def add(redis: Redis, keys: Keys, fields: dict[str, str] | dict[bytes, bytes]) -> str:
    sid = await redis.xadd(keys.calls, fields)  # type: ignore[arg-type]
    return sid.decode()


async def drain(intake: Intake) -> None:
    while await intake.step(block_ms=1):
        pass


async def events(redis: Redis, keys: Keys) -> list[dict[bytes, bytes]]:
    return [raw for _, raw in await redis.xrange(keys.events)]


async def test_valid_call_becomes_incident_and_one_event(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    sid = await add(
        redis, keys, make_call(1, centre="120", call_type="critical_patient").to_fields()
    )
    await drain(intake)
    incident_id = await store.incident_for_call("120:C00001")
    assert incident_id is not None
    incident = await store.get_incident(incident_id)
    assert incident is not None
    assert incident.calls[0].stream_id == sid
    assert [c.value for c in incident.centres] == ["120"]
    assert "ems" in incident.agencies
    assert incident.version == 1
    evs = await events(redis, keys)
    assert [e[b"type"] for e in evs] == [b"incident.created"]
    assert evs[0][b"incident_id"].decode() == incident_id
    # Acknowledged: nothing pending.
    assert (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"] == 0
    assert [e.type for e in await store.events_for_incident(incident_id)] == ["incident.created"]


async def test_duplicate_call_changes_nothing(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    fields = make_call(7).to_fields()
    await add(redis, keys, fields)
    await drain(intake)
    before = await store.get_incident((await store.incident_for_call("122:C00007")) or "")
    for _ in range(3):
        await add(redis, keys, fields)
    await drain(intake)
    after = await store.get_incident(before.id if before else "")
    assert before == after
    assert len(await events(redis, keys)) == 1
    assert intake.stats.duplicates == 3
    assert (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"] == 0


async def test_reports_of_one_emergency_to_two_centres_merge(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    await add(
        redis,
        keys,
        make_call(
            1,
            centre="122",
            call_type="traffic_accident_entrapment",
            lat=30.05,
            lon=119.96,
            clock=clock,
        ).to_fields(),
    )
    await drain(intake)
    clock.advance(40)
    # A passer-by calls 120 from ~60 m away.
    await add(
        redis,
        keys,
        make_call(
            2, centre="120", call_type="critical_patient", lat=30.0505, lon=119.9603, clock=clock
        ).to_fields(),
    )
    await drain(intake)
    a = await store.incident_for_call("122:C00001")
    b = await store.incident_for_call("120:C00002")
    assert a is not None and a == b
    incident = await store.get_incident(a)
    assert incident is not None
    assert sorted(c.value for c in incident.centres) == ["120", "122"]
    assert incident.version == 2
    types = [e[b"type"] for e in await events(redis, keys)]
    assert types == [b"incident.created", b"incident.merged"]


async def test_malformed_call_is_dead_lettered_with_reason(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    bad = {**make_call(3, phone="13912345678").to_fields(), "lat": "north"}
    sid = await add(redis, keys, bad)
    good_sid = await add(redis, keys, make_call(4).to_fields())
    with caplog.at_level(logging.DEBUG):
        await drain(intake)
    dead = await store.list_dead()
    assert len(dead) == 1
    assert dead[0].source_id == sid
    assert dead[0].fields == bad  # the original is kept whole
    assert "lat" in dead[0].reason
    assert await store.incident_for_call("122:C00004") is not None
    assert (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"] == 0
    assert good_sid
    assert "13912345678" not in caplog.text


async def test_consumer_killed_between_read_and_ack_loses_nothing(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    await make_intake(store, clock, name="setup").ensure_group()
    for n in range(20):
        await add(redis, keys, make_call(n).to_fields())
    # Consumer "dead" reads everything and dies before processing or acking.
    got = await redis.xreadgroup(CONSUMER_GROUP, "dead", {keys.calls: ">"}, count=100)
    assert len(got[0][1]) == 20
    survivor = make_intake(store, clock, name="survivor", reclaim_idle_ms=100)
    assert (
        await survivor.reclaim() == 0
    )  # not idle long enough yet: never steal a live consumer's work
    await asyncio.sleep(0.15)
    assert await survivor.reclaim() == 20
    for n in range(20):
        assert await store.incident_for_call(f"122:C{n:05d}") is not None
    assert (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"] == 0
    assert len(await events(redis, keys)) == 20


async def test_crash_after_commit_before_ack_is_idempotent(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    await make_intake(store, clock, name="setup").ensure_group()
    call = make_call(5)
    await add(redis, keys, call.to_fields())
    await redis.xreadgroup(CONSUMER_GROUP, "dead", {keys.calls: ">"}, count=10)
    # The dead consumer committed the incident but never acked.
    handler = JointIntake(store, PLANS, policy=MergePolicy(), clock=clock)
    await handler.handle(call)
    survivor = make_intake(store, clock, name="survivor", reclaim_idle_ms=50)
    await asyncio.sleep(0.1)
    assert await survivor.reclaim() == 1
    assert len(await events(redis, keys)) == 1
    assert survivor.stats.duplicates == 1


class Boom(RuntimeError):
    pass


async def test_entry_failing_processing_is_dead_lettered_after_n_deliveries(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    intake = make_intake(store, clock, reclaim_idle_ms=20, max_deliveries=3)
    await intake.ensure_group()

    async def broken(call: CallEvent, *, stream_id: str | None = None) -> Any:
        raise Boom("geocoder exploded")

    monkeypatch.setattr(intake.joint, "handle", broken)
    sid = await add(redis, keys, make_call(9).to_fields())
    await drain(intake)  # delivery 1 fails
    for _ in range(10):
        await asyncio.sleep(0.03)
        await intake.reclaim()
        if await store.list_dead():
            break
    dead = await store.list_dead()
    assert len(dead) == 1
    assert dead[0].source_id == sid
    assert "processing failed 3 times" in dead[0].reason
    assert "geocoder exploded" in dead[0].reason
    assert (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"] == 0


async def test_two_consumers_share_the_stream_without_double_processing(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    await make_intake(store, clock, name="setup").ensure_group()
    a = make_intake(store, clock, name="a", batch=7)
    b = make_intake(store, clock, name="b", batch=7)
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(300):
            pipe.xadd(keys.calls, make_call(n).to_fields())  # type: ignore[arg-type]
        # Every tenth call is reported twice (the same centre id): idempotency across consumers.
        for n in range(0, 300, 10):
            pipe.xadd(keys.calls, make_call(n).to_fields())  # type: ignore[arg-type]
        await pipe.execute()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(a.run(stop)), asyncio.create_task(b.run(stop))]
    for _ in range(500):
        handled = sum(x.stats.processed + x.stats.duplicates for x in (a, b))
        pending = (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"]
        if handled == 330 and pending == 0:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*tasks)
    assert await redis.hlen(keys.call_index) == 300
    created = [e for e in await events(redis, keys) if e[b"type"] == b"incident.created"]
    assert len(created) == 300
    assert a.stats.processed > 0 and b.stats.processed > 0
    assert a.stats.processed + b.stats.processed == 300
    assert a.stats.duplicates + b.stats.duplicates == 30


async def test_concurrent_reports_of_one_emergency_make_one_incident(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    """Two instances racing on calls about one crash: the cell guards keep it one incident."""
    await make_intake(store, clock, name="setup").ensure_group()
    handlers = [JointIntake(store, PLANS, policy=MergePolicy(), clock=clock) for _ in range(2)]
    calls = [
        make_call(
            n,
            centre=("122", "120", "119")[n % 3],
            call_type="traffic_accident_entrapment",
            lat=30.05 + n * 0.00005,
            lon=119.96,
            clock=clock,
        )
        for n in range(12)
    ]
    await asyncio.gather(*(handlers[n % 2].handle(c) for n, c in enumerate(calls)))
    ids = {await store.incident_for_call(c.key) for c in calls}
    assert len(ids) == 1


@st.composite
def hostile_entry(draw: st.DrawFn) -> dict[bytes, bytes]:
    base = {
        k.encode(): v.encode() for k, v in make_call(draw(st.integers(0, 50))).to_fields().items()
    }
    action = draw(st.sampled_from(["drop", "garble", "inject", "binary", "huge", "keep"]))
    key = draw(st.sampled_from(sorted(base)))
    if action == "drop":
        del base[key]
    elif action == "garble":
        base[key] = draw(st.text(max_size=30)).encode("utf-8", "surrogatepass")
    elif action == "inject":
        base[draw(st.text(min_size=1, max_size=10)).encode("utf-8", "surrogatepass")] = b"x"
    elif action == "binary":
        base[key] = draw(st.binary(max_size=40))
    elif action == "huge":
        base[key] = b"9" * 20_000
    return base


@given(entries=st.lists(hostile_entry(), min_size=1, max_size=8))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_hostile_entries_never_crash_and_are_all_accounted_for(
    redis_url: str, entries: list[dict[bytes, bytes]]
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        keys = Keys()
        store = Store(redis, keys)
        intake = make_intake(store, FakeClock())
        await intake.ensure_group()
        for e in entries:
            await redis.xadd(keys.calls, e)  # type: ignore[arg-type]
        await drain(intake)
        assert (await redis.xpending(keys.calls, CONSUMER_GROUP))["pending"] == 0
        s = intake.stats
        assert s.processed + s.duplicates + s.dead == len(entries)
        assert len(await store.list_dead()) == s.dead
    finally:
        await redis.flushdb()
        await redis.aclose()


async def test_calls_after_window_open_a_new_incident(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    await add(redis, keys, make_call(1, lat=30.05, lon=119.96, clock=clock).to_fields())
    await drain(intake)
    clock.now += timedelta(minutes=11)
    await add(redis, keys, make_call(2, lat=30.05, lon=119.96, clock=clock).to_fields())
    await drain(intake)
    assert await store.incident_for_call("122:C00001") != await store.incident_for_call(
        "122:C00002"
    )
