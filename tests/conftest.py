"""Fixtures shared by every layer: a real Redis, flushed per test, a scratch PostgreSQL
database per run, and settings."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from dispatch.constants import Keys
from dispatch.infra.store import Store
from dispatch.records import db
from dispatch.services import Services, build
from dispatch.settings import Settings
from routing import Router
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


# -- a scratch PostgreSQL database per test run (the system of record, dispatch.records) -------
# The machine's PostgreSQL (trust auth); each run makes its own database there.
TEST_PG_URL = os.environ.get("YISHAO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/")


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _drop(url: str, name: str) -> None:
    conn = await asyncpg.connect(_with_db(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"yishao_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _with_db(TEST_PG_URL, name)
    try:
        asyncio.run(db.ensure_database(url))
    except db.RecordsError as exc:
        pytest.skip(f"no PostgreSQL at {TEST_PG_URL}: {exc}")
    db.upgrade(url)
    yield url
    asyncio.run(_drop(TEST_PG_URL, name))


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
        # The suites send many bad tokens from one address on purpose; the lockout has a
        # test of its own with a low threshold.
        auth_failures_max=100_000,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the dispatch stack over a real road graph ---------------------------------------------------
SHANGHAI_OSM = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "osm"
).resolve() / ("shanghai_center.osm")


@pytest.fixture(scope="session")
def shanghai_router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    """The central-Shanghai extract, built once per session (skips when ../shared is absent)."""
    if not SHANGHAI_OSM.is_file():
        pytest.skip(f"real OSM extract {SHANGHAI_OSM} is absent")
    return Router.from_file(SHANGHAI_OSM, cache_dir=tmp_path_factory.mktemp("graphs"))


# The dispatch stack as the app wires it, without HTTP (the same ``build``).
Stack = Services


def make_stack(
    store: Store, clock: FakeClock, router: Router | None, *, ack_timeout_s: float = 30
) -> Stack:
    settings = Settings(
        env="test",
        secret=TEST_SECRET,
        redis_url=TEST_REDIS_URL,
        whistle_ack_timeout_s=ack_timeout_s,
        stale_position_s=300,
    )
    return build(settings, store, router=router, clock=clock, instance="test", timer_lease_s=5)


@pytest.fixture
def stack(store: Store, clock: FakeClock, shanghai_router: Router) -> Stack:
    return make_stack(store, clock, shanghai_router)
