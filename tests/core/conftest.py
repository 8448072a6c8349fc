"""Shared fixtures for the pure-core tests: one plan table, one fixed instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatch.core.plans import PlanTable

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture(scope="session")
def plans() -> PlanTable:
    return PlanTable.load()


@pytest.fixture
def t0() -> datetime:
    """20:15 Shanghai time on 29 November 2026: the drills' reference instant."""
    return datetime(2026, 11, 29, 20, 15, tzinfo=SHANGHAI)
