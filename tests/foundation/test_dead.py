"""Dead letters stay small whatever producers send: fields cut with size and hash kept, the
dead stream trimmed to its byte budget. The cut as a table; the stream against a real Redis."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.core.dead import DeadLimits, shrink
from dispatch.infra.store import Store
from tests.conftest import FakeClock
from tests.foundation.test_intake import add, drain, make_intake

LIMITS = DeadLimits(field_max_bytes=16, entry_max_bytes=40, max_fields=4)


def test_small_fields_are_kept_whole() -> None:
    kept, cuts = shrink({"a": "x" * 16, "b": "短"}, LIMITS)
    assert kept == {"a": "x" * 16, "b": "短"} and cuts == {}


def test_a_long_field_is_cut_on_a_character_with_size_and_hash() -> None:
    value = "火" * 10  # 30 bytes; 16 bytes hold five whole characters
    kept, cuts = shrink({"d": value}, LIMITS)
    assert kept["d"] == "火" * 5
    assert cuts["d"].bytes == 30 and cuts["d"].kept_bytes == 15
    assert cuts["d"].sha256 == hashlib.sha256(value.encode()).hexdigest()


def test_the_entry_budget_and_field_count_bound_the_whole() -> None:
    fields = {f"f{n}": "y" * 20 for n in range(10)}
    kept, cuts = shrink(fields, LIMITS)
    assert list(kept) == ["f0", "f1", "f2", "f3"]
    assert sum(len(v) for v in kept.values()) <= 40
    assert kept["f3"] == ""  # the budget ran out
    assert cuts["…"].bytes == 6 * 20


async def test_a_megabyte_call_is_dead_lettered_small(
    store: Store, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    intake = make_intake(store, clock)
    await intake.ensure_group()
    huge = "x" * 1_000_000
    await add(redis, keys, {"call_id": "C1", "centre": "122", "description": huge})
    await drain(intake)
    (letter,) = await store.list_dead()
    assert len(letter.fields["description"]) == 1024
    cut = letter.truncated["description"]
    assert cut.bytes == 1_000_000 and cut.sha256 == hashlib.sha256(huge.encode()).hexdigest()
    raw = await redis.xrange(keys.calls_dead)
    assert sum(len(k) + len(v) for k, v in raw[0][1].items()) < 10_000


async def test_the_dead_stream_is_trimmed_to_its_byte_budget(redis: Redis, keys: Keys) -> None:
    limits = DeadLimits(entry_max_bytes=8192, max_bytes=8192 * 1000)
    store = Store(redis, keys, dead=limits)
    assert limits.maxlen == 1000
    now = datetime.now(UTC)
    for n in range(1500):
        await store.dead_letter(
            source_id=f"{n}-0", fields={"n": str(n)}, reason="test", deliveries=1, now=now
        )
    length = await redis.xlen(keys.calls_dead)
    assert 1000 <= length < 1200  # approximate trimming works a node of entries at a time
