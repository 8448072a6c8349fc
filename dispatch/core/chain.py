"""The audit table's hash chain: each row's hash covers its content and the row before.

Editing, deleting or reordering an archived event changes every hash after it, so
``yishao audit verify`` finds the first row whose stored hash is not the one computed here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# The "previous hash" of the first row of a chain.
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRow:
    """One archived event as the chain sees it (``data`` is the event's JSON text)."""

    seq: int
    event_id: str
    type: str
    incident_id: str | None
    actor: str
    ts: str
    data: str
    prev_hash: str
    hash: str


def row_hash(
    prev_hash: str,
    *,
    seq: int,
    event_id: str,
    type: str,
    incident_id: str | None,
    actor: str,
    ts: str,
    data: str,
) -> str:
    """SHA-256 (hex) over the previous hash and this row's fields, unit-separated."""
    parts = [prev_hash, str(seq), event_id, type, incident_id or "", actor, ts, data]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def hash_of(row: AuditRow) -> str:
    """The hash ``row`` should carry, given the ``prev_hash`` it records."""
    return row_hash(
        row.prev_hash,
        seq=row.seq,
        event_id=row.event_id,
        type=row.type,
        incident_id=row.incident_id,
        actor=row.actor,
        ts=row.ts,
        data=row.data,
    )


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    event_id: str
    reason: str


def first_break(rows: Iterable[AuditRow], *, prev_hash: str = GENESIS) -> ChainBreak | None:
    """The first row (in ``seq`` order) that breaks the chain, or None when all hold.

    Args:
        rows: the rows in ascending ``seq``.
        prev_hash: the hash of the row before the first given (GENESIS from the start;
            a pruned table starts from its oldest row's ``prev_hash``).
    """
    expected_prev = prev_hash
    for row in rows:
        if row.prev_hash != expected_prev:
            return ChainBreak(row.seq, row.event_id, "previous hash does not match the row before")
        if hash_of(row) != row.hash:
            return ChainBreak(row.seq, row.event_id, "content does not match its hash")
        expected_prev = row.hash
    return None
