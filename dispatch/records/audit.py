"""The audit chain's checks and its retention: ``yishao audit verify`` and ``audit prune``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.core.chain import GENESIS, AuditRow, ChainBreak, first_break
from dispatch.records.db import PG_ERRORS, Conn, RecordsError, guarded


@dataclass(frozen=True)
class Verdict:
    rows: int
    first_seq: int | None
    broken: ChainBreak | None


async def verify(conn: Conn, *, page: int = 10_000) -> Verdict:
    """Walk the whole chain in ``seq`` order; the first row that breaks it, if any.

    A pruned table starts at its oldest row, whose recorded ``prev_hash`` is taken as given.
    """
    count = 0
    first: int | None = None
    prev: str | None = None
    after = 0
    try:
        while True:
            found = await conn.fetch(
                "SELECT seq, event_id, type, incident_id, actor, ts, data, prev_hash, hash"
                " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                after,
                page,
            )
            if not found:
                break
            rows = [AuditRow(**dict(r)) for r in found]
            if first is None:
                first = rows[0].seq
                prev = GENESIS if first == 1 else rows[0].prev_hash
            assert prev is not None
            broken = first_break(rows, prev_hash=prev)
            count += len(rows)
            if broken is not None:
                return Verdict(count, first, broken)
            prev, after = rows[-1].hash, rows[-1].seq
    except PG_ERRORS as exc:
        raise RecordsError(f"verify: {exc}") from exc
    return Verdict(count, first, None)


async def prune(conn: Conn, *, retention_days: int, now: datetime) -> int:
    """Delete audit rows archived more than ``retention_days`` ago (oldest first, so the
    chain stays whole from its new first row). Returns how many went."""
    cutoff = now - timedelta(days=retention_days)
    async with conn.transaction():
        await guarded("prune", conn.execute("SET LOCAL yishao.prune = 'on'"))
        status = await guarded(
            "prune",
            conn.execute(
                "DELETE FROM audit_events WHERE at < $1 AND seq < COALESCE("
                "(SELECT min(seq) FROM audit_events WHERE at >= $1), 9223372036854775807)",
                cutoff,
            ),
        )
    return int(status.split()[-1])
