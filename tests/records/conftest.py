"""A scratch PostgreSQL database per test run (created at start, dropped at the end), its
tables emptied before each test, and a pool on it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from dispatch.records import db

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
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pg = await db.open_pool(database_url)
    async with pg.acquire() as conn:
        await conn.execute(
            "TRUNCATE audit_events, incident_agency_intervals, incident_records, drill_reports"
        )
    yield pg
    await pg.close()
