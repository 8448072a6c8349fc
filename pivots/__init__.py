"""Pivot points (支点): temporary posts placed where the incidents are, moved with the season.

Knows nothing of the dispatch service's adapters: it takes incident history
(:class:`pivots.history.HistoryRecord`), a road graph (:class:`routing.Router`) and
parameters, and returns a :class:`pivots.plan.Plan` (posts per month, day kind and hour band).

Entry points: :class:`pivots.planner.Planner` (``Planner(router).plan(records)``),
:func:`pivots.plan.active_posts` (the posts standing at a time), :func:`pivots.backtest.backtest`,
:func:`pivots.history.load_history` (CSV/JSON import), :func:`pivots.synthetic.generate_history`
(a seeded synthetic district) and :mod:`pivots.cli` (``yishao pivots plan|backtest|show``).
"""

from __future__ import annotations

from .history import HistoryImportError, HistoryRecord, ImportReport, Outcome, load_history
from .plan import Change, Plan, PlanParams, Post, active_posts

__all__ = [
    "Change",
    "HistoryImportError",
    "HistoryRecord",
    "ImportReport",
    "Outcome",
    "Plan",
    "PlanParams",
    "Post",
    "active_posts",
    "load_history",
]
