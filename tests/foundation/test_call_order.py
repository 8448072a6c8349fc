"""Entries with one call id: handled in stream order, the first stands, a differing later
one recorded as ``call.conflict``; a plain redelivery records nothing. Real Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.events import EventType, parse_payload
from dispatch.infra.store import Store
from tests.conftest import FakeClock
from tests.foundation.test_intake import add, drain, make_call, make_intake


async def test_the_first_in_stream_order_stands_and_the_other_is_a_conflict(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock, batch=200)
    await intake.ensure_group()
    # Thirty calls, each sent twice in one batch with a different severity and spot.
    firsts = {}
    for n in range(30):
        first = make_call(n, clock=clock).model_copy(update={"severity": 2})
        later = first.model_copy(update={"severity": 5, "lat": first.lat + 0.0005})
        firsts[first.key] = await add(redis, keys, first.to_fields())
        await add(redis, keys, later.to_fields())
    await drain(intake)
    assert intake.stats.processed == 30 and intake.stats.conflicts == 30
    for key, stream_id in firsts.items():
        incident_id = await store.incident_for_call(key)
        assert incident_id is not None
        incident = await store.get_incident(incident_id)
        assert incident is not None
        (record,) = [c for c in incident.calls if c.key == key]
        assert record.severity == 2 and record.stream_id == stream_id
    conflicts = [e for e in await store.events_after("0", count=1000) if e.type == "call.conflict"]
    assert len(conflicts) == 30
    payload = parse_payload(EventType.CALL_CONFLICT, conflicts[0].data)
    assert payload.fields == ["lat", "severity"]  # type: ignore[attr-defined]
    assert conflicts[0].incident_id is not None


async def test_a_same_content_redelivery_and_a_replayed_conflict_record_nothing_new(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    call = make_call(1, clock=clock)
    await add(redis, keys, call.to_fields())
    await add(redis, keys, call.to_fields())  # the same call sent twice, same content
    differing = call.model_copy(update={"description": "another story"})
    await add(redis, keys, differing.to_fields())
    await drain(intake)
    assert intake.stats.duplicates == 1 and intake.stats.conflicts == 1
    # The conflicting entry handled again (a crash before its ack): still one event.
    (entry,) = [e for e in await redis.xrange(keys.calls) if e[1].get(b"description")]
    await intake.joint.handle(differing, stream_id=entry[0].decode())
    types = [e.type for e in await store.events_after("0")]
    assert types.count("call.conflict") == 1
