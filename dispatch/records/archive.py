"""The archiver: consumer group ``archive`` on the event log, writing every event to the
append-only, hash-chained ``audit_events`` table and each closed incident's final record.

Idempotent by event id: a batch redelivered after a crash (read, written, not yet acked)
inserts nothing twice, and the chain advances only over rows actually inserted. Writers on
several instances take one advisory lock per batch, so the chain has one order. The Redis
event log is trimmed by :meth:`Archiver.trim` only below the oldest entry not yet archived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from dispatch.constants import Keys
from dispatch.core.chain import GENESIS, row_hash
from dispatch.core.intervals import IncidentRecord, LoggedEvent, fold_incident
from dispatch.core.referrals import FINAL as _FINAL
from dispatch.errors import StoreError, YishaoError
from dispatch.infra.consumer import Entry, StreamConsumer
from dispatch.infra.store import Store
from dispatch.records.db import CHAIN_LOCK, PG_ERRORS, Conn, RecordsError

log = logging.getLogger(__name__)

ARCHIVE_GROUP = "archive"
FINAL_REFERRAL = frozenset(s.value for s in _FINAL)


@dataclass
class ArchiveStats:
    inserted: int = 0
    duplicates: int = 0
    records: int = 0
    trimmed: int = 0


def _fields(entry: Entry) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in entry[1].items()}


class Archiver:
    """Archives the event log of ``store`` into the pool's database.

    Args:
        store: the Redis store (the archiver reads and trims through it).
        pool: the asyncpg pool.
        consumer: this instance's consumer name in group ``archive``.
        clock: for the Redis keep window.
        keep_s: events less than this older than the newest stay in Redis even once archived
            (screens replay and incidents' trails read them there); older ones go once archived.
        batch, block_ms, reclaim_idle_ms: the consumer loop's tuning.
    """

    def __init__(
        self,
        store: Store,
        pool: asyncpg.Pool,
        *,
        consumer: str,
        clock: Callable[[], datetime],
        keep_s: float = 86_400.0,
        batch: int = 500,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 30_000,
        trim_every_s: float = 10.0,
    ) -> None:
        self.store = store
        self.pool = pool
        self.clock = clock
        self.keep_s = keep_s
        self.trim_every_s = trim_every_s
        self.stats = ArchiveStats()
        self.consumer = StreamConsumer(
            store.redis,
            stream=store.keys.events,
            group=ARCHIVE_GROUP,
            consumer=consumer,
            handle=self.handle,
            start_id="0",
            batch=batch,
            block_ms=block_ms,
            reclaim_idle_ms=reclaim_idle_ms,
        )

    @property
    def keys(self) -> Keys:
        return self.store.keys

    async def run(self, stop: asyncio.Event) -> None:
        """Archive until ``stop``; trim the Redis log every ``trim_every_s``."""
        trimmer = asyncio.create_task(self._trim_loop(stop))
        try:
            await self.consumer.run(stop)
        finally:
            await trimmer

    async def _trim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.trim()
            except YishaoError as exc:
                log.warning("archive trim: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.trim_every_s)

    async def handle(self, entries: Sequence[Entry]) -> Sequence[str]:
        """Write a batch in one transaction; all its ids may be acked once it committed.

        Raises:
            RecordsError: PostgreSQL failed; nothing of the batch is acked (it stays pending
                and is taken over again once idle).
        """
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._write(conn, entries)
        except PG_ERRORS as exc:
            raise RecordsError(f"archive batch: {exc}") from exc
        return [entry_id for entry_id, _ in entries]

    async def _write(self, conn: Conn, entries: Sequence[Entry]) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
        ids = [entry_id for entry_id, _ in entries]
        seen = {
            r["event_id"]
            for r in await conn.fetch(
                "SELECT event_id FROM audit_events WHERE event_id = ANY($1::text[])", ids
            )
        }
        last = await conn.fetchrow("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        seq, prev = (0, GENESIS) if last is None else (int(last["seq"]), str(last["hash"]))
        rows: list[tuple[Any, ...]] = []
        # Closes and referral events, in log order, once the batch's rows are in.
        after: list[tuple[str, str, dict[str, str]]] = []
        for entry in entries:
            entry_id = entry[0]
            if entry_id in seen:
                self.stats.duplicates += 1
                continue
            seen.add(entry_id)
            f = _fields(entry)
            seq += 1
            incident_id = f.get("incident_id") or None
            ts, data = f.get("ts", ""), f.get("data", "{}")
            digest = row_hash(
                prev,
                seq=seq,
                event_id=entry_id,
                type=f.get("type", ""),
                incident_id=incident_id,
                actor=f.get("actor", ""),
                ts=ts,
                data=data,
            )
            at = datetime.fromisoformat(ts) if ts else self.clock()
            rows.append(
                (seq, entry_id, f.get("type", ""), incident_id, f.get("actor", ""), ts, at,
                 data, prev, digest)
            )  # fmt: skip
            prev = digest
            if f.get("type") == "incident.closed" and incident_id:
                after.append(("close", entry_id, f))
            elif f.get("type", "").startswith("referral."):
                after.append(("referral", entry_id, f))
        if rows:
            await conn.copy_records_to_table(
                "audit_events",
                records=rows,
                columns=[
                    "seq", "event_id", "type", "incident_id", "actor", "ts", "at", "data",
                    "prev_hash", "hash",
                ],
            )  # fmt: skip
            self.stats.inserted += len(rows)
        for what, event_id, f in after:
            if what == "close":
                await self._record(conn, f["incident_id"], event_id)
            else:
                try:
                    await write_referral(conn, f)
                except (KeyError, TypeError, ValueError) as exc:
                    # A malformed payload must not wedge the archive: its audit row is in.
                    log.warning("archive: referral event %s not recorded: %r", event_id, exc)

    async def _record(self, conn: Conn, incident_id: str, event_id: str) -> None:
        found = await conn.fetch(
            "SELECT type, at, actor, data FROM audit_events WHERE incident_id = $1 ORDER BY seq",
            incident_id,
        )
        await write_folded(conn, incident_id, found, close_event_id=event_id)
        self.stats.records += 1

    async def trim(self) -> int:
        """Trim the Redis log below the oldest entry not archived and not within ``keep_s``.

        Returns:
            How many entries went.
        """
        floor = await self.store.group_floor(self.keys.events, ARCHIVE_GROUP)
        if floor is None:
            return 0
        # The keep window counts back from the newest entry: stream ids are Redis's clock.
        newest_ms = int((await self.store.last_event_id()).partition("-")[0])
        keep_ms = newest_ms - int(self.keep_s * 1000)
        floor_ms = int(floor.partition("-")[0])
        # The lower of the two: never past the archive, never into the keep window.
        minid = floor if floor_ms <= keep_ms else f"{max(keep_ms, 0)}-0"
        trimmed = await self.store.trim_events_below(minid)
        self.stats.trimmed += trimmed
        return trimmed

    async def lag(self) -> int | None:
        """Entries not yet archived: the group's pending plus its lag (None before it exists)."""
        try:
            pending, lag = await self.store.group_backlog(self.keys.events, ARCHIVE_GROUP)
        except StoreError:
            return None
        if pending is None:
            return None
        return pending + (lag or 0)


async def write_folded(
    conn: Conn, incident_id: str, rows: Sequence[Any], *, close_event_id: str
) -> None:
    """Fold an incident's audit rows (``type``, ``at``, ``actor``, ``data``, in chain order)
    into its final record and write it."""
    events = [
        LoggedEvent(type=r["type"], ts=r["at"], actor=r["actor"], data=orjson.loads(r["data"]))
        for r in rows
    ]
    await write_record(conn, fold_incident(incident_id, events), close_event_id=close_event_id)


async def write_record(conn: Conn, record: IncidentRecord, *, close_event_id: str) -> None:
    """Upsert an incident's final record and its per-agency intervals (a reopened incident
    closed again replaces its record)."""
    w = record.whistle or {}
    team = record.property_team or {}
    overall = record.overall
    await conn.execute(
        """
        INSERT INTO incident_records (incident_id, exercise, first_call_at, closed_at, call_type,
            area, agencies, call_processing_s, turnout_s, travel_s, total_s, whistle_sounded_at,
            whistle_all_acked_at, whistle_escalations, greenwave, record, close_event_id,
            greenwave_saved_s, call_count, in_compound, property_joined_at, property_automatic,
            property_status, property_join_to_answer_s, property_join_to_contact_s,
            repeat_calls)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,
            $22,$23,$24,$25,
            (SELECT count(*) FROM repeat_calls WHERE landed_incident_id = $1))
        ON CONFLICT (incident_id) DO UPDATE SET exercise = EXCLUDED.exercise,
            first_call_at = EXCLUDED.first_call_at, closed_at = EXCLUDED.closed_at,
            call_type = EXCLUDED.call_type, area = EXCLUDED.area, agencies = EXCLUDED.agencies,
            call_processing_s = EXCLUDED.call_processing_s, turnout_s = EXCLUDED.turnout_s,
            travel_s = EXCLUDED.travel_s, total_s = EXCLUDED.total_s,
            whistle_sounded_at = EXCLUDED.whistle_sounded_at,
            whistle_all_acked_at = EXCLUDED.whistle_all_acked_at,
            whistle_escalations = EXCLUDED.whistle_escalations, greenwave = EXCLUDED.greenwave,
            record = EXCLUDED.record, close_event_id = EXCLUDED.close_event_id,
            greenwave_saved_s = EXCLUDED.greenwave_saved_s, call_count = EXCLUDED.call_count,
            in_compound = EXCLUDED.in_compound, property_joined_at = EXCLUDED.property_joined_at,
            property_automatic = EXCLUDED.property_automatic,
            property_status = EXCLUDED.property_status,
            property_join_to_answer_s = EXCLUDED.property_join_to_answer_s,
            property_join_to_contact_s = EXCLUDED.property_join_to_contact_s,
            repeat_calls = EXCLUDED.repeat_calls
        """,
        record.incident_id,
        record.exercise,
        record.first_call_at,
        record.closed_at,
        record.call_type,
        record.area,
        record.agencies,
        overall.call_processing_s,
        overall.turnout_s,
        overall.travel_s,
        overall.total_s,
        _ts(w.get("sounded_at")),
        _ts(w.get("all_acked_at")),
        w.get("escalations"),
        orjson.dumps(record.greenwave).decode(),
        orjson.dumps(record.as_json()).decode(),
        close_event_id,
        record.greenwave_saved_s,
        record.call_count,
        record.compound_id is not None,
        _ts(team.get("joined_at")),
        team.get("automatic"),
        team.get("status"),
        record.property_gap("join_to_answer_s"),
        record.property_gap("join_to_contact_s"),
    )
    await conn.execute(
        "DELETE FROM incident_agency_intervals WHERE incident_id = $1", record.incident_id
    )
    if record.first_call_at is None:
        return
    await conn.executemany(
        """
        INSERT INTO incident_agency_intervals (incident_id, agency, exercise, call_type, area,
            first_call_at, call_processing_s, turnout_s, travel_s, total_s)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
        """,
        [
            (
                record.incident_id, agency, record.exercise, record.call_type, record.area,
                record.first_call_at, i.call_processing_s, i.turnout_s, i.travel_s, i.total_s,
            )
            for agency, i in record.by_agency.items()
        ],
    )  # fmt: skip


def _ts(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if isinstance(raw, str) and raw else None


async def _is_exercise(conn: Conn, incident_id: str) -> bool:
    """Whether the incident is a drill's, by the calls of its creating event."""
    data = await conn.fetchval(
        "SELECT data FROM audit_events WHERE incident_id = $1 AND type = 'incident.created'"
        " ORDER BY seq LIMIT 1",
        incident_id,
    )
    if data is None:
        return False
    incident = orjson.loads(data).get("incident") or {}
    return any(bool(c.get("exercise")) for c in incident.get("calls") or [])


async def write_referral(conn: Conn, f: dict[str, str]) -> None:
    """Keep a referral's latest state from a ``referral.*`` event (the newest version wins),
    and link a repeat call to the incident it landed on."""
    data = orjson.loads(f.get("data", "{}"))
    r = data.get("referral")
    if not isinstance(r, dict) or not r.get("id"):
        return
    steps = r.get("steps") or []
    final = [s for s in steps if s.get("status") in FINAL_REFERRAL]
    await conn.execute(
        """
        INSERT INTO referral_records (referral_id, incident_id, exercise, version, body, topic,
            call_types, status, referred_at, due_at, closed_at, repeat_calls, referral)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
        ON CONFLICT (referral_id) DO UPDATE SET version = EXCLUDED.version,
            status = EXCLUDED.status, due_at = EXCLUDED.due_at, closed_at = EXCLUDED.closed_at,
            repeat_calls = EXCLUDED.repeat_calls, referral = EXCLUDED.referral,
            topic = EXCLUDED.topic, body = EXCLUDED.body
        WHERE referral_records.version < EXCLUDED.version
        """,
        str(r["id"]),
        str(r["incident_id"]),
        await _is_exercise(conn, str(r["incident_id"])),
        int(r.get("version") or 1),
        str(r.get("body") or ""),
        str(r.get("topic") or "other"),
        [str(t) for t in r.get("call_types") or []],
        str(r.get("status") or "referred"),
        datetime.fromisoformat(r["referred_at"]),
        datetime.fromisoformat(r["due_at"]),
        _ts(final[-1].get("at")) if final else None,
        len(r.get("repeat_calls") or []),
        orjson.dumps(r).decode(),
    )
    if f.get("type") != "referral.repeat_call" or not data.get("call_key"):
        return
    landed = str(data.get("incident_id") or "")
    inserted = await conn.fetchval(
        """
        INSERT INTO repeat_calls (call_key, referral_id, referred_incident_id,
            landed_incident_id, linked_at)
        VALUES ($1,$2,$3,$4,$5) ON CONFLICT (call_key) DO NOTHING RETURNING 1
        """,
        str(data["call_key"]),
        str(r["id"]),
        str(r["incident_id"]),
        landed,
        _ts(f.get("ts")) or datetime.fromisoformat(r["referred_at"]),
    )
    if inserted:
        # The landing incident's record, if already written, counts it too.
        await conn.execute(
            "UPDATE incident_records SET repeat_calls = (SELECT count(*) FROM repeat_calls"
            " WHERE landed_incident_id = $1) WHERE incident_id = $1",
            landed,
        )
