"""EIDO calls onto the intake stream exactly once, on a real Redis: races, crashes, failures."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from dispatch.errors import StoreError
from dispatch.infra.store import Store
from dispatch.interop.eido import EidoCall, Origin, eido_calls, incident_to_eido
from dispatch.interop.eido_intake import EidoIntake, Outcome
from tests.conftest import FakeClock
from tests.interop.conftest import joint_incident


def _calls() -> list[EidoCall]:
    return eido_calls(incident_to_eido(joint_incident(), origin=Origin("xuanwu.yishao.local")))


async def test_two_posts_at_once_add_each_call_once(store: Store, clock: FakeClock) -> None:
    intake = EidoIntake(store, clock=clock)
    first, second = await asyncio.gather(intake.take(_calls()), intake.take(_calls()))
    outcomes = sorted(t.outcome for t in [*first, *second])
    assert outcomes.count(Outcome.QUEUED) == 2  # two calls in the EIDO, each queued once
    assert await store.redis.xlen(store.keys.calls) == 2
    again = await intake.take(_calls())
    assert [t.outcome for t in again] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert {t.stream_id for t in again} == {t.stream_id for t in [*first, *second] if t.stream_id}


async def test_a_dead_claim_is_taken_over_after_the_timeout(store: Store, clock: FakeClock) -> None:
    [call, _] = _calls()
    index = store.keys.eido_received
    dead = f"claim:{clock().timestamp()!r}:deadbeef"
    await store.redis.hset(index, call.key, dead)  # a process died between claim and add
    intake = EidoIntake(store, clock=clock, claim_timeout_s=30)
    [fresh] = await intake.take([call])
    assert fresh.outcome is Outcome.PENDING and await store.redis.xlen(store.keys.calls) == 0
    clock.advance(31)
    [taken] = await intake.take([call])
    assert taken.outcome is Outcome.QUEUED
    assert (await store.redis.hget(index, call.key)).decode() == taken.stream_id
    assert await store.redis.xlen(store.keys.calls) == 1


async def test_redis_failure_leaves_nothing_half_done(store: Store, clock: FakeClock) -> None:
    [call, _] = _calls()
    broken = Store(Redis.from_url("redis://127.0.0.1:1/0"), store.keys)
    with pytest.raises(StoreError):
        await EidoIntake(broken, clock=clock).take([call])
    await broken.redis.aclose()
    # Nothing was claimed, so posting again (Redis back) takes the call.
    [taken] = await EidoIntake(store, clock=clock).take([call])
    assert taken.outcome is Outcome.QUEUED


async def test_a_failed_add_releases_the_claim(store: Store, clock: FakeClock) -> None:
    [call, _] = _calls()
    # The call stream made unwritable for real: XADD on a string key fails with WRONGTYPE.
    await store.redis.set(store.keys.calls, "not a stream")
    with pytest.raises(StoreError):
        await EidoIntake(store, clock=clock).take([call])
    assert await store.redis.hget(store.keys.eido_received, call.key) is None
    await store.redis.delete(store.keys.calls)
    [taken] = await EidoIntake(store, clock=clock).take([call])
    assert taken.outcome is Outcome.QUEUED and await store.redis.xlen(store.keys.calls) == 1
