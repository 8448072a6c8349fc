"""The plan: posts per month and band, serialisable to JSON, and which posts stand at time t.

The model lives in :mod:`dispatch.core.pivot_plan` so the service can store and serve a plan
without importing the planner; this module is the planner's name for it.
"""

from __future__ import annotations

from dispatch.core.pivot_plan import (
    PLAN_VERSION,
    BandPlan,
    Change,
    HistorySummary,
    HotCell,
    Plan,
    PlanParams,
    Post,
    RetiredPost,
    TypeShare,
    active_band,
    active_posts,
)

__all__ = [
    "PLAN_VERSION",
    "BandPlan",
    "Change",
    "HistorySummary",
    "HotCell",
    "Plan",
    "PlanParams",
    "Post",
    "RetiredPost",
    "TypeShare",
    "active_band",
    "active_posts",
]
