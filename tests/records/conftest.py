"""A pool on the run's scratch PostgreSQL database (``database_url``, tests/conftest.py),
its tables emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from dispatch.records import db


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pg = await db.open_pool(database_url)
    async with pg.acquire() as conn:
        await conn.execute(
            "TRUNCATE audit_events, incident_agency_intervals, incident_records, drill_reports,"
            " referral_records, repeat_calls"
        )
    yield pg
    await pg.close()
