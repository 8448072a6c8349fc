"""The open-incident index by time bucket and place: merges across a bucket edge, old open
incidents left unread, closes and splits kept in step. Against a real Redis."""

from __future__ import annotations

from datetime import timedelta

from dispatch.core.buckets import OPEN_BUCKET_S, buckets_within, time_bucket
from dispatch.core.geo import cells_around
from dispatch.core.merge import MergePolicy
from dispatch.flow.merge import JointIntake
from dispatch.infra.store import Store
from dispatch.models import CallEvent, CallType, Centre
from tests.conftest import FakeClock, make_stack
from tests.foundation.test_intake import PLANS


def call(n: int, clock: FakeClock, *, lat: float = 30.05, lon: float = 119.96) -> CallEvent:
    return CallEvent(
        call_id=f"B{n:04d}",
        centre=Centre.TRAFFIC,
        call_type=CallType.TRAFFIC_ACCIDENT,
        lat=lat,
        lon=lon,
        received_at=clock.now,
    )


def test_buckets_cover_the_window_either_side() -> None:
    clock = FakeClock()
    at = clock.now + timedelta(seconds=30)  # 12:00:30, just past a bucket edge
    got = buckets_within(at, 600)
    assert got == [time_bucket(at) - 1, time_bucket(at)]
    assert len(buckets_within(at, OPEN_BUCKET_S)) == 3


async def test_a_call_merges_across_a_bucket_edge_and_the_incident_moves(
    store: Store, clock: FakeClock
) -> None:
    joint = JointIntake(store, PLANS, policy=MergePolicy(), clock=clock)
    clock.advance(OPEN_BUCKET_S - 10)  # 12:19:50
    first = await joint.handle(call(1, clock))
    old_bucket = time_bucket(clock.now)
    clock.advance(20)  # 12:20:10: the next bucket
    second = await joint.handle(call(2, clock, lat=30.0502))
    assert second.kind == "merged" and second.incident_id == first.incident_id
    keys = store.keys
    assert await store.redis.zscore(keys.open_geo_bucket(old_bucket), first.incident_id) is None
    new_bucket = keys.open_geo_bucket(old_bucket + 1)
    assert await store.redis.zscore(new_bucket, first.incident_id) is not None


async def test_old_open_incidents_nearby_are_not_read(store: Store, clock: FakeClock) -> None:
    joint = JointIntake(store, PLANS, policy=MergePolicy(), clock=clock)
    old = await joint.handle(call(1, clock))
    clock.advance(2 * 3600)
    now = call(2, clock)
    cells = cells_around(now.lat, now.lon, 300)
    _, _, candidates = await store.merge_view(
        now.key, cells, lat=now.lat, lon=now.lon, radius_m=310,
        buckets=buckets_within(now.received_at, 600),
    )  # fmt: skip
    assert candidates == []
    fresh = await joint.handle(now)
    assert fresh.kind == "created" and fresh.incident_id != old.incident_id


async def test_split_and_close_keep_the_index_in_step(store: Store, clock: FakeClock) -> None:
    stack = make_stack(store, clock, None)
    clock.advance(900)  # 12:15
    first = await stack.joint.handle(call(1, clock))
    clock.advance(590)  # 12:24:50, the next bucket
    merged = await stack.joint.handle(call(2, clock, lat=30.0502))
    assert merged.incident_id == first.incident_id
    keys = store.keys
    later = keys.open_geo_bucket(time_bucket(clock.now))
    original, split = await stack.joint.split(first.incident_id, "122:B0002", actor="d")
    # The original's last call is the first one again: back in the earlier bucket.
    earlier = keys.open_geo_bucket(time_bucket(original.last_call_at))
    assert earlier != later
    assert await store.redis.zscore(earlier, original.id) is not None
    assert await store.redis.zscore(later, original.id) is None
    assert await store.redis.zscore(later, split.id) is not None
    await stack.assignments.close_incident(split.id, actor="d", reason="test")
    assert await store.redis.zscore(later, split.id) is None
