"""A small pivot-post plan in the planner's JSON, for the service's and the console's tests."""

from __future__ import annotations

from typing import Any


def plan_json(
    posts: list[tuple[int, float, float]],
    *,
    month: str = "2026-11",
    day_kind: str = "weekend",
    start: int = 18,
    end: int = 24,
) -> dict[str, Any]:
    """A one-band plan (``month``, ``day_kind``, ``start``-``end`` local hours, +08:00) with
    posts at ``(node, lat, lon)``, as ``yishao pivots plan --out`` writes one."""
    hours = f"{start:02d}:00-{end:02d}:00"
    out_posts = [
        {
            "id": f"{month}:{day_kind}:{start:02d}-{end:02d}:{node}",
            "month": month,
            "day_kind": day_kind,
            "start_hour": start,
            "end_hour": end,
            "hours": hours,
            "node_id": node,
            "lat": lat,
            "lon": lon,
            "cell": "8931aa42c5bffff",
            "rank": k + 1,
            "expected_calls": 10.0,
            "expected_calls_low": 5.0,
            "expected_calls_high": 16.0,
            "hot_calls": 8.0,
            "marginal_calls": 10.0,
            "call_types": [
                {"call_type": "fight", "share": 0.7},
                {"call_type": "noise", "share": 0.3},
            ],
            "max_gi_z": 4.2,
            "change": "new",
            "reason": "first plan",
        }
        for k, (node, lat, lon) in enumerate(posts)
    ]
    band = {
        "month": month,
        "day_kind": day_kind,
        "start_hour": start,
        "end_hour": end,
        "hours": hours,
        "band_hours": 54.0,
        "expected_calls": 40.0,
        "expected_calls_low": 30.0,
        "expected_calls_high": 50.0,
        "hot_cells": [],
        "hot_expected_calls": 20.0,
        "gi_p_cut": 0.01,
        "covered_calls": 20.0,
        "covered_share": 0.5,
        "covered_hot_share": 0.9,
        "target_met": True,
        "marginal_gains": [10.0] * len(posts),
        "posts": out_posts,
    }
    return {
        "version": 1,
        "created_at": "2026-11-01T00:00:00+00:00",
        "graph": "shanghai_center.osm",
        "params": {"min_posts": 1, "max_posts": 26},
        "history": {
            "records": 100,
            "outside_map": 0,
            "first": "2025-11",
            "last": "2026-10",
            "synthetic": 100,
            "label": "SYNTHETIC",
        },
        "months": [month],
        "bands": [band],
    }
