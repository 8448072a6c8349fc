"""The hour, week and month of each first call in the district's time zone, stored.

A command centre reports its own hours: a call at 23:30 UTC is 07:30 the next morning in
Fuyang, and its week and month begin at local midnight. 0002 stored them in UTC; computing the
local ones per row costs a year's query grouped by hour about a fifth more (benchmarks/
records.py). This revision stores them in the zone given to the upgrade (``YISHAO_TIMEZONE``,
by ``yishao db upgrade``) and writes that zone into ``record_settings``; a query in another zone
(the setting changed since) computes them per row, so the figures are right either way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


def _zone() -> str:
    config = op.get_context().config
    given = None if config is None else config.attributes.get("timezone")
    # Its own literal, not db.DEFAULT_TIMEZONE: a migration stays as it was written (frozen),
    # whatever the live default becomes.
    zone = str(given or "Asia/Shanghai")
    if not _ZONE_NAME.match(zone):
        raise ValueError(f"not an IANA time zone: {zone!r}")
    ZoneInfo(zone)  # raises for an unknown zone
    return zone


def upgrade() -> None:
    zone = _zone()
    local = f"first_call_at AT TIME ZONE '{zone}'"
    op.execute("CREATE TABLE record_settings (key text PRIMARY KEY, value text NOT NULL)")
    op.execute(f"INSERT INTO record_settings VALUES ('timezone', '{zone}')")
    op.execute(
        "ALTER TABLE incident_agency_intervals ADD COLUMN local_hour smallint"
        f" GENERATED ALWAYS AS (EXTRACT(hour FROM {local})::smallint) STORED"
    )
    op.execute(
        "ALTER TABLE incident_records"
        f" ADD COLUMN local_week date GENERATED ALWAYS AS (date_trunc('week', {local})::date)"
        " STORED,"
        f" ADD COLUMN local_month date GENERATED ALWAYS AS (date_trunc('month', {local})::date)"
        " STORED"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE incident_records DROP COLUMN local_week, DROP COLUMN local_month")
    op.execute("ALTER TABLE incident_agency_intervals DROP COLUMN local_hour")
    op.execute("DROP TABLE record_settings")
