"""The record: the audit chain, final incident records, per-agency intervals, drill reports.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_events (
            seq bigint PRIMARY KEY,
            event_id text NOT NULL UNIQUE,
            type text NOT NULL,
            incident_id text,
            actor text NOT NULL,
            ts text NOT NULL,
            at timestamptz NOT NULL,
            data text NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL,
            archived_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX audit_events_incident ON audit_events (incident_id, seq)")
    op.execute("CREATE INDEX audit_events_at ON audit_events (at)")
    # Append-only: the service never updates or deletes an audit row. Pruning past the
    # retention (yishao audit prune) sets yishao.prune for its own transaction.
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND current_setting('yishao.prune', true) = 'on' THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
        """
    )
    op.execute(
        """
        CREATE TABLE incident_records (
            incident_id text PRIMARY KEY,
            exercise boolean NOT NULL,
            first_call_at timestamptz,
            closed_at timestamptz,
            call_type text,
            area text,
            agencies text[] NOT NULL,
            call_processing_s double precision,
            turnout_s double precision,
            travel_s double precision,
            total_s double precision,
            whistle_sounded_at timestamptz,
            whistle_all_acked_at timestamptz,
            whistle_escalations integer,
            greenwave jsonb NOT NULL,
            record jsonb NOT NULL,
            close_event_id text NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX incident_records_first_call ON incident_records (first_call_at)")
    op.execute(
        """
        CREATE TABLE incident_agency_intervals (
            incident_id text NOT NULL REFERENCES incident_records ON DELETE CASCADE,
            agency text NOT NULL,
            exercise boolean NOT NULL,
            call_type text,
            area text,
            first_call_at timestamptz NOT NULL,
            call_processing_s double precision,
            turnout_s double precision,
            travel_s double precision,
            total_s double precision,
            PRIMARY KEY (incident_id, agency)
        )
        """
    )
    op.execute(
        "CREATE INDEX incident_agency_intervals_first_call"
        " ON incident_agency_intervals (first_call_at)"
    )
    op.execute(
        """
        CREATE TABLE drill_reports (
            drill_id text PRIMARY KEY,
            stored_at timestamptz NOT NULL,
            info jsonb NOT NULL,
            report jsonb NOT NULL,
            html text NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE drill_reports")
    op.execute("DROP TABLE incident_agency_intervals")
    op.execute("DROP TABLE incident_records")
    op.execute("DROP TABLE audit_events")
    op.execute("DROP FUNCTION audit_events_append_only")
