"""Fixtures shared by every layer: a real Redis, flushed per test, and settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.settings import Settings
from dispatch.store import Store
from tests.utils import TEST_SECRET

# Tests use their own database on the machine's Redis so they never touch a demo's data.
TEST_REDIS_URL = os.environ.get("YISHAO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
async def store(redis: Redis, keys: Keys) -> Store:
    return Store(redis, keys)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(
        env="test",
        secret=TEST_SECRET,
        redis_url=redis_url,
        reclaim_idle_ms=300,
        intake_block_ms=50,
        timer_poll_ms=20,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
