"""Drill reports in the record: records of exercises, kept beside (never among) incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from dispatch.records.db import guarded


async def put_report(
    pool: asyncpg.Pool,
    drill_id: str,
    *,
    info: dict[str, Any],
    report: dict[str, Any],
    html: str,
    stored_at: datetime,
) -> None:
    """Keep a drill's report (a report of the same id is replaced, as in Redis)."""
    await guarded(
        "store drill report",
        pool.execute(
            "INSERT INTO drill_reports (drill_id, stored_at, info, report, html)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (drill_id) DO UPDATE SET"
            " stored_at = EXCLUDED.stored_at, info = EXCLUDED.info, report = EXCLUDED.report,"
            " html = EXCLUDED.html",
            drill_id,
            stored_at,
            orjson.dumps(info).decode(),
            orjson.dumps(report).decode(),
            html,
        ),
    )
