"""Stored columns for the figures: the hour, week and month of the first call (UTC) and the
green-wave counts as integers.

EXPLAIN ANALYZE of a year's figures (100k incidents, 200k agency rows) showed most of the
time outside the percentiles going to per-row work: ``to_char(... 'HH24')`` and
``date_trunc`` on every row, sorting their text under the database collation, and parsing
the ``greenwave`` jsonb four times per row. Generated columns are computed once, at insert.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UTC = "first_call_at AT TIME ZONE 'UTC'"
_RECORD_COLUMNS = {
    "first_call_week": f"date GENERATED ALWAYS AS (date_trunc('week', {_UTC})::date) STORED",
    "first_call_month": f"date GENERATED ALWAYS AS (date_trunc('month', {_UTC})::date) STORED",
    **{
        f"greenwave_{n}": (
            f"integer GENERATED ALWAYS AS (COALESCE((greenwave->>'{n}')::int, 0)) STORED"
        )
        for n in ("planned", "requests", "granted", "rejected")
    },
}


def upgrade() -> None:
    op.execute(
        "ALTER TABLE incident_agency_intervals ADD COLUMN first_call_hour smallint"
        f" GENERATED ALWAYS AS (EXTRACT(hour FROM {_UTC})::smallint) STORED"
    )
    adds = ", ".join(f"ADD COLUMN {name} {kind}" for name, kind in _RECORD_COLUMNS.items())
    op.execute(f"ALTER TABLE incident_records {adds}")


def downgrade() -> None:
    drops = ", ".join(f"DROP COLUMN {name}" for name in _RECORD_COLUMNS)
    op.execute(f"ALTER TABLE incident_records {drops}")
    op.execute("ALTER TABLE incident_agency_intervals DROP COLUMN first_call_hour")
