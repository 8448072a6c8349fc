"""Shared fixtures for pivot tests: a small seeded city and a district planted on it."""

from __future__ import annotations

from datetime import date

import pytest

from dispatch.models import CallType
from pivots.history import HistoryRecord
from pivots.plan import PlanParams
from pivots.planner import Planner
from pivots.synthetic import (
    ALL_YEAR,
    CAMPING,
    MARKET,
    NIGHT,
    WORKING,
    District,
    Site,
    generate_history,
)
from routing import Router
from routing.synthetic import synthetic_city

# 50 x 50 nodes at 100 m: a 4.9 km square town (about 330 H3 cells, enough for Gi* to tell
# three clusters from the rest).
SIDE = 50


MARKET_AT = (8, 8)


def node_at(router: Router, row: int, col: int) -> tuple[float, float]:
    i = row * SIDE + col
    return float(router.graph.node_lat[i]), float(router.graph.node_lon[i])


@pytest.fixture(scope="session")
def town() -> Router:
    return Router(synthetic_city(SIDE, block=5, seed=3))


@pytest.fixture(scope="session")
def district(town: Router) -> District:
    """A night market (summer and autumn evenings), a riverside camp (summer days), an
    industrial park (year end), a bar street all year, over a light background."""
    market = node_at(town, *MARKET_AT)
    camp = node_at(town, 41, 41)
    park = node_at(town, 8, 41)
    bars = node_at(town, 41, 8)
    T = CallType
    return District(
        sites=(
            Site(
                "night market",
                "night_market",
                *market,
                120.0,
                10.0,
                {6: 1.0, 7: 1.0, 8: 1.0, 9: 1.0, 10: 1.0, 11: 1.0},
                MARKET,
                1.5,
                {T.FIGHT: 0.4, T.NOISE: 0.3, T.DISPUTE: 0.3},
            ),
            Site(
                "river camp",
                "river_valley",
                *camp,
                150.0,
                6.0,
                {6: 1.0, 7: 1.0, 8: 1.0},
                CAMPING,
                2.0,
                {T.TRAFFIC_ACCIDENT: 0.4, T.DROWNING: 0.3, T.DISPUTE: 0.3},
            ),
            Site(
                "industrial park",
                "industrial_park",
                *park,
                150.0,
                6.0,
                {12: 1.0, 1: 1.0},
                WORKING,
                0.3,
                {T.LABOUR_DISPUTE: 0.8, T.DISPUTE: 0.2},
            ),
            Site(
                "bar street",
                "nightlife",
                *bars,
                120.0,
                4.0,
                ALL_YEAR,
                NIGHT,
                1.5,
                {T.FIGHT: 0.5, T.NOISE: 0.5},
            ),
        ),
        background_per_day=8.0,
    )


@pytest.fixture(scope="session")
def history(town: Router, district: District) -> list[HistoryRecord]:
    """Two years (2025-2026) of the planted district."""
    return generate_history(
        town.graph, seed=7, start=date(2025, 1, 1), months=24, district=district
    )


@pytest.fixture(scope="session")
def params() -> PlanParams:
    # A small town: short reach, and few posts so that the count can move.
    return PlanParams(cover_s=40.0, min_posts=1, max_posts=10, target_share=0.8)


@pytest.fixture(scope="session")
def planner(town: Router, params: PlanParams) -> Planner:
    return Planner(town, params)
