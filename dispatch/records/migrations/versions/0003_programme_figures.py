"""The programme figures (issue 14): green-wave time saved, the property team, referrals to
mediation and repeat calls.

``incident_records`` gains plain columns written with the final record (time saved, the
property team's join and answer times, calls and repeat calls); ``referral_records`` keeps each
referral's latest state (a referral outlives its incident: mediation takes days), written by
the archiver from every ``referral.*`` event, newest version wins; ``repeat_calls`` links each
repeat call (``referral.repeat_call``) to the incident it landed on. Records archived before
this revision keep their figures unknown (NULL / false), except ``call_count``, taken from the
stored record.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_RECORD_COLUMNS = {
    "greenwave_saved_s": "double precision",
    "call_count": "integer NOT NULL DEFAULT 0",
    "repeat_calls": "integer NOT NULL DEFAULT 0",
    "in_compound": "boolean NOT NULL DEFAULT false",
    "property_joined_at": "timestamptz",
    "property_automatic": "boolean",
    "property_status": "text",
    "property_join_to_answer_s": "double precision",
    "property_join_to_contact_s": "double precision",
}


def upgrade() -> None:
    adds = ", ".join(f"ADD COLUMN {name} {kind}" for name, kind in _RECORD_COLUMNS.items())
    op.execute(f"ALTER TABLE incident_records {adds}")
    op.execute(
        "UPDATE incident_records SET call_count = jsonb_array_length(record->'calls')"
        " WHERE jsonb_typeof(record->'calls') = 'array'"
    )
    op.execute(
        """
        CREATE TABLE referral_records (
            referral_id text PRIMARY KEY,
            incident_id text NOT NULL,
            exercise boolean NOT NULL,
            version integer NOT NULL,
            body text NOT NULL,
            topic text NOT NULL,
            call_types text[] NOT NULL,
            status text NOT NULL,
            referred_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            closed_at timestamptz,
            repeat_calls integer NOT NULL,
            referral jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX referral_records_referred ON referral_records (referred_at)")
    op.execute(
        """
        CREATE TABLE repeat_calls (
            call_key text PRIMARY KEY,
            referral_id text NOT NULL,
            referred_incident_id text NOT NULL,
            landed_incident_id text NOT NULL,
            linked_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX repeat_calls_landed ON repeat_calls (landed_incident_id)")


def downgrade() -> None:
    op.execute("DROP TABLE repeat_calls")
    op.execute("DROP TABLE referral_records")
    drops = ", ".join(f"DROP COLUMN {name}" for name in _RECORD_COLUMNS)
    op.execute(f"ALTER TABLE incident_records {drops}")
