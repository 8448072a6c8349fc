"""Re-derive the record tables from the audit chain.

The audit chain is the record's source: every event the service logged, in one order. The
tables beside it (``incident_records`` with ``incident_agency_intervals``, ``referral_records``,
``repeat_calls``) are folds of it written by the archiver as events arrive. When a migration
adds figures (0003 added the green-wave time saved, the property team's times and repeat
calls), records archived before it hold those figures unknown; :func:`rebuild` folds them again
from the chain with today's code, so a district's earlier year counts like the rest.

An incident is refolded from its events up to its last close (as the archiver saw it then);
one whose creating event is no longer in the chain (pruned past the retention) keeps the
record it has: a fold of what is left would be less than what was archived. Referral events
are replayed in chain order (the newest version wins, repeat calls link once), so a rebuild is
idempotent and running it twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dispatch.records.archive import write_folded, write_referral
from dispatch.records.db import CHAIN_LOCK, PG_ERRORS, Conn, RecordsError

log = logging.getLogger(__name__)


@dataclass
class RebuildStats:
    """What a rebuild did.

    Attributes:
        incidents: final records written again from the chain.
        kept: records left as they were (their creating event was pruned).
        referral_events: ``referral.*`` events replayed.
        skipped: referral events that could not be read (audited, never recorded).
    """

    incidents: int = 0
    kept: int = 0
    referral_events: int = 0
    skipped: int = 0


async def rebuild(conn: Conn, *, page: int = 2_000) -> RebuildStats:
    """Rebuild the record tables from ``audit_events`` in one transaction.

    The chain's advisory lock is held throughout, so an archiver writing meanwhile waits (its
    events stay pending in Redis) and nothing it writes is overwritten by an older fold.

    Raises:
        RecordsError: PostgreSQL failed; the transaction is rolled back and the tables are as
            they were.
    """
    stats = RebuildStats()
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
            await _referrals(conn, stats, page)
            await _incidents(conn, stats, page)
    except PG_ERRORS as exc:
        raise RecordsError(f"rebuild: {exc}") from exc
    return stats


async def _referrals(conn: Conn, stats: RebuildStats, page: int) -> None:
    cursor = conn.cursor(
        "SELECT event_id, type, ts, data FROM audit_events WHERE type LIKE 'referral.%'"
        " ORDER BY seq",
        prefetch=page,
    )
    async for row in cursor:
        stats.referral_events += 1
        try:
            await write_referral(conn, {"type": row["type"], "ts": row["ts"], "data": row["data"]})
        except (KeyError, TypeError, ValueError) as exc:
            stats.skipped += 1
            log.warning("rebuild: referral event %s not recorded: %r", row["event_id"], exc)


async def _incidents(conn: Conn, stats: RebuildStats, page: int) -> None:
    """One pass over the chain by incident, folding each closed incident once."""
    cursor = conn.cursor(
        "SELECT incident_id, event_id, type, at, actor, data FROM audit_events"
        " WHERE incident_id IS NOT NULL AND incident_id IN"
        " (SELECT incident_id FROM audit_events WHERE type = 'incident.closed')"
        " ORDER BY incident_id, seq",
        prefetch=page,
    )
    current: str | None = None
    rows: list[Any] = []
    async for row in cursor:
        if row["incident_id"] != current:
            if current is not None:
                await _fold(conn, current, rows, stats)
            current, rows = row["incident_id"], []
        rows.append(row)
    if current is not None:
        await _fold(conn, current, rows, stats)


async def _fold(conn: Conn, incident_id: str, rows: list[Any], stats: RebuildStats) -> None:
    last_close = max(i for i, r in enumerate(rows) if r["type"] == "incident.closed")
    upto = rows[: last_close + 1]
    if not any(r["type"] == "incident.created" for r in upto):
        stats.kept += 1
        return
    await write_folded(conn, incident_id, upto, close_event_id=str(upto[-1]["event_id"]))
    stats.incidents += 1
