"""Redis state and the event log: the one place that reads and writes Yishao's keys.

Objects (incidents, units, whistles, ...) are hashes with two fields, ``v`` (version)
and ``json`` (the model). Every change goes through :meth:`Store.commit`: one Lua call
that checks guards (versions, absent fields), applies writes and appends the change's
events to the event log, all or nothing. All keys of a commit share the namespace's
hash tag, so the same script runs on a Redis Cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError, ResponseError

from dispatch.constants import (
    CALL_STREAM_MAXLEN,
    EVENT_STREAM_MAXLEN,
    POSITION_STREAM_MAXLEN,
    Keys,
)
from dispatch.core.dead import DeadLimits, shrink
from dispatch.errors import ConflictError, StoreError
from dispatch.events import EventType, Payload
from dispatch.models import CallEvent, DeadLetter, Event, Incident, IncidentStatus, Position

log = logging.getLogger(__name__)

# One Redis, or a Redis Cluster: every key a commit touches shares one hash tag.
AnyRedis = Redis | RedisCluster
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_COMMIT_LUA = """
local tx = cjson.decode(ARGV[1])
for i, g in ipairs(tx.guards) do
  local key = KEYS[g.k]
  if g.op == 'version' then
    local v = redis.call('HGET', key, 'v')
    if v == false then v = '0' end
    if v ~= g.expected then return {'conflict', tostring(i), v} end
  elseif g.op == 'absent' then
    local cur = redis.call('HGET', key, g.field)
    if cur ~= false then return {'exists', tostring(i), cur} end
  elseif g.op == 'equals' then
    local cur = redis.call('HGET', key, g.field)
    if cur == false then cur = '' end
    if cur ~= g.value then return {'conflict', tostring(i), cur} end
  end
end
for _, w in ipairs(tx.writes) do
  local key = KEYS[w.k]
  if w.op == 'put' then
    redis.call('HSET', key, 'v', w.version, 'json', w.json)
  elseif w.op == 'hset' then
    redis.call('HSET', key, unpack(w.args))
  elseif w.op == 'hdel' then
    redis.call('HDEL', key, unpack(w.args))
  elseif w.op == 'sadd' then
    redis.call('SADD', key, w.member)
  elseif w.op == 'srem' then
    redis.call('SREM', key, w.member)
  elseif w.op == 'zadd' then
    redis.call('ZADD', key, w.score, w.member)
  elseif w.op == 'zrem' then
    redis.call('ZREM', key, w.member)
  elseif w.op == 'geoadd' then
    redis.call('GEOADD', key, w.lon, w.lat, w.member)
  elseif w.op == 'hincrby' then
    redis.call('HINCRBY', key, w.field, w.by)
  elseif w.op == 'del' then
    redis.call('DEL', key)
  end
end
local out = {'ok'}
for _, e in ipairs(tx.events) do
  local id
  if tx.maxlen == '0' then
    id = redis.call('XADD', KEYS[tx.log], '*', unpack(e.f))
  else
    id = redis.call('XADD', KEYS[tx.log], 'MAXLEN', '~', tx.maxlen, '*', unpack(e.f))
  end
  if e.ix > 0 then redis.call('RPUSH', KEYS[e.ix], id) end
  out[#out + 1] = id
end
return out
"""


class VersionConflict(ConflictError):
    """A guard of a commit failed: somebody else changed the state first. Re-read and retry."""

    def __init__(self, message: str, *, kind: str, current: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.current = current


def _epoch(ts: datetime) -> str:
    return repr(ts.timestamp())


@dataclass
class Tx:
    """A transaction under construction: guards, writes and events for one commit."""

    keys: Keys
    _key_list: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    guards: list[dict[str, str | int]] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # The event log's length cap (0: none, the archiver trims it; see dispatch.records).
    maxlen: int = EVENT_STREAM_MAXLEN

    def _k(self, key: str) -> int:
        if key not in self._index:
            self._key_list.append(key)
            self._index[key] = len(self._key_list)
        return self._index[key]

    def expect_version(self, key: str, version: int) -> Tx:
        """Fail the commit unless the object at ``key`` has ``version`` (0: absent)."""
        self.guards.append({"op": "version", "k": self._k(key), "expected": str(version)})
        return self

    def expect_absent(self, key: str, hash_field: str) -> Tx:
        self.guards.append({"op": "absent", "k": self._k(key), "field": hash_field})
        return self

    def expect_field(self, key: str, hash_field: str, value: str) -> Tx:
        """Fail unless ``HGET key field`` equals ``value`` ('' matches a missing field)."""
        self.guards.append({"op": "equals", "k": self._k(key), "field": hash_field, "value": value})
        return self

    def put(self, key: str, model: BaseModel, version: int) -> Tx:
        self.writes.append(
            {
                "op": "put",
                "k": self._k(key),
                "version": str(version),
                "json": model.model_dump_json(),
            }
        )
        return self

    def hset(self, key: str, mapping: dict[str, str]) -> Tx:
        args: list[str] = []
        for k, v in mapping.items():
            args += [k, v]
        self.writes.append({"op": "hset", "k": self._k(key), "args": args})
        return self

    def hdel(self, key: str, *fields: str) -> Tx:
        self.writes.append({"op": "hdel", "k": self._k(key), "args": list(fields)})
        return self

    def hincrby(self, key: str, hash_field: str, by: int = 1) -> Tx:
        self.writes.append({"op": "hincrby", "k": self._k(key), "field": hash_field, "by": str(by)})
        return self

    def sadd(self, key: str, member: str) -> Tx:
        self.writes.append({"op": "sadd", "k": self._k(key), "member": member})
        return self

    def srem(self, key: str, member: str) -> Tx:
        self.writes.append({"op": "srem", "k": self._k(key), "member": member})
        return self

    def zadd(self, key: str, member: str, score: float) -> Tx:
        self.writes.append(
            {"op": "zadd", "k": self._k(key), "member": member, "score": repr(score)}
        )
        return self

    def zrem(self, key: str, member: str) -> Tx:
        self.writes.append({"op": "zrem", "k": self._k(key), "member": member})
        return self

    def geoadd(self, key: str, member: str, *, lon: float, lat: float) -> Tx:
        self.writes.append(
            {
                "op": "geoadd",
                "k": self._k(key),
                "member": member,
                "lon": repr(lon),
                "lat": repr(lat),
            }
        )
        return self

    def delete(self, key: str) -> Tx:
        self.writes.append({"op": "del", "k": self._k(key)})
        return self

    def event(
        self,
        type: EventType,
        payload: Payload,
        *,
        actor: str,
        ts: datetime,
        incident_id: str | None = None,
    ) -> Tx:
        """Append one event (its type's payload model) to the log as part of this commit."""
        return self._append(type.value, payload.to_json(), actor, ts, incident_id)

    def raw_event(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        actor: str,
        ts: datetime,
        incident_id: str | None = None,
    ) -> Tx:
        """Append an event of any type and data: for tests and tools, never the service."""
        body = orjson.dumps(dict(data), default=_json_default).decode()
        return self._append(type, body, actor, ts, incident_id)

    def _append(
        self, type: str, body: str, actor: str, ts: datetime, incident_id: str | None
    ) -> Tx:
        fields = [
            "type", type,
            "incident_id", incident_id or "",
            "actor", actor,
            "ts", ts.astimezone(UTC).isoformat(),
            "data", body,
        ]  # fmt: skip
        # Each incident keeps the ids of its events, so its audit trail is one LRANGE
        # plus the entries, not a scan of the whole log.
        index = self._k(self.keys.incident_events(incident_id)) if incident_id else 0
        self.events.append({"f": fields, "ix": index})
        return self

    def payload(self) -> tuple[list[str], str]:
        log_index = self._k(self.keys.events)
        body = {
            "guards": self.guards,
            "writes": self.writes,
            "events": self.events,
            "log": log_index,
            "maxlen": str(self.maxlen),
        }
        # cjson turns an empty Lua table into {}; ipairs over it is still empty.
        return list(self._key_list), orjson.dumps(body).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def text(value: bytes | str | int) -> str:
    """A Redis reply as text (the client returns bytes; ids and counters may come as int)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def event_from_entry(entry_id: bytes | str, raw: Mapping[bytes, bytes]) -> Event:
    """Rebuild an :class:`Event` from an event-log entry."""
    f = {k.decode(): v.decode() for k, v in raw.items()}
    return Event(
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        type=f.get("type", ""),
        incident_id=f.get("incident_id") or None,
        actor=f.get("actor", ""),
        ts=datetime.fromisoformat(f["ts"]) if "ts" in f else datetime.now(UTC),
        data=orjson.loads(f.get("data", "{}")),
    )


class Store:
    """Async access to Yishao's state in one Redis namespace.

    Every method that talks to Redis wraps its errors as :class:`StoreError` (503 at the
    edge), so adapters above never handle a Redis exception themselves.
    """

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        *,
        dead: DeadLimits | None = None,
        event_maxlen: int = EVENT_STREAM_MAXLEN,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.dead = dead or DeadLimits()
        # 0 when an archiver owns trimming the event log (only below what it archived).
        self.event_maxlen = event_maxlen
        self._commit = redis.register_script(_COMMIT_LUA)

    def tx(self) -> Tx:
        return Tx(self.keys, maxlen=self.event_maxlen)

    async def commit(self, tx: Tx) -> list[str]:
        """Apply ``tx`` atomically.

        Returns:
            The stream ids of the events appended, in order.

        Raises:
            VersionConflict: a guard failed; nothing was written.
            StoreError: Redis failed.
        """
        keys, body = tx.payload()
        try:
            result = await self._commit(keys=keys, args=[body])
        except RedisError as exc:
            raise StoreError(f"commit failed: {exc}") from exc
        status = text(result[0])
        if status != "ok":
            index = int(text(result[1])) - 1
            guard = tx.guards[index]
            raise VersionConflict(
                f"guard {guard['op']} on {keys[int(guard['k']) - 1]} failed",
                kind=status,
                current=text(result[2]),
            )
        return [text(r) for r in result[1:]]

    async def retry(
        self, attempt: Callable[[], Awaitable[T]], *, what: str, attempts: int = 8
    ) -> T:
        """Run ``attempt`` (read, decide, commit) again while its commit's guards fail.

        Every read-decide-commit step of the service is optimistic: it re-reads and decides
        again when another instance committed in between. ``attempt`` raises
        :class:`VersionConflict` (from :meth:`commit`) to ask for another round.

        Raises:
            StoreError: the state kept changing for ``attempts`` rounds.
        """
        for _ in range(attempts):
            try:
                return await attempt()
            except VersionConflict:
                continue
        raise StoreError(f"{what} kept changing; try again")

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except RedisError as exc:
            raise StoreError(f"{what}: {exc}") from exc

    async def ping(self) -> bool:
        """Whether Redis answers (never raises)."""
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    # -- generic objects ----------------------------------------------------------
    async def get(self, model: type[M], key: str) -> M | None:
        raw = await self._call("read", self.redis.hget(key, "json"))
        return None if raw is None else model.model_validate_json(raw)

    async def get_many(self, model: type[M], keys: Sequence[str]) -> list[M | None]:
        return [
            None if r is None else model.model_validate_json(r) for r in await self.raw_many(keys)
        ]

    async def raw_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The stored JSON of several objects, one round trip (for readers that skip pydantic)."""
        if not keys:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, "json")
                raws: list[bytes | None] = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"read: {exc}") from exc
        return raws

    async def get_versioned(self, model: type[M], key: str) -> tuple[M | None, int]:
        """An object and its version (0 when absent), read together."""
        v, raw = await self._call("read", self.redis.hmget(key, ["v", "json"]))
        return (None if raw is None else model.model_validate_json(raw)), int(v or 0)

    async def version(self, key: str) -> int:
        """The version of the object at ``key`` (0 when absent): a cheap freshness check."""
        raw = await self._call("read", self.redis.hget(key, "v"))
        return 0 if raw is None else int(raw)

    async def existing(self, keys: Sequence[str]) -> list[bool]:
        """Which of these objects exist, one round trip."""
        if not keys:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.exists(key)
                found = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"read: {exc}") from exc
        return [bool(n) for n in found]

    async def members(self, key: str) -> list[str]:
        """The members of a set, sorted."""
        return sorted(text(m) for m in await self._call("read", self.redis.smembers(key)))

    async def is_member(self, key: str, member: str) -> bool:
        return bool(await self._call("read", self.redis.sismember(key, member)))

    async def ranked(self, key: str) -> list[str]:
        """The members of a sorted set, lowest score first."""
        found: Any = await self._call("read", self.redis.zrange(key, 0, -1))
        return [text(m) for m in found]

    async def count(self, key: str) -> int:
        """How many members a sorted set has."""
        return int(await self._call("read", self.redis.zcard(key)))

    async def newest(self, key: str, *, limit: int) -> list[str]:
        """The ``limit`` highest-scored members of a sorted set, highest first."""
        found: Any = await self._call("read", self.redis.zrevrange(key, 0, limit - 1))
        return [text(m) for m in found]

    # -- incidents ----------------------------------------------------------------
    async def get_incident(self, incident_id: str) -> Incident | None:
        return await self.get(Incident, self.keys.incident(incident_id))

    async def open_incidents(self) -> list[Incident]:
        """Every incident not yet closed, oldest last call first."""
        ids = await self.ranked(self.keys.open_incidents)
        return [i for i in await self.get_many(Incident, [self.keys.incident(i) for i in ids]) if i]

    async def incident_for_call(self, call_key: str) -> str | None:
        raw = await self._call("read", self.redis.hget(self.keys.call_index, call_key))
        return None if raw is None else text(raw)

    async def new_incident_id(self, day: str) -> str:
        seq = await self._call("allocate", self.redis.incr(self.keys.incident_seq))
        return f"YS-{day}-{seq:06d}"

    async def merge_view(
        self,
        call_key: str,
        cells: Sequence[str],
        *,
        lat: float,
        lon: float,
        radius_m: float,
        buckets: Sequence[int],
    ) -> tuple[str | None, dict[str, str], list[Incident]]:
        """What joint intake needs to decide on one call, read in one round trip.

        Args:
            buckets: the time buckets of the open-incident index to search
                (:func:`dispatch.core.buckets.buckets_within` of the call's time).

        Returns:
            The incident already holding this call (a duplicate) or None; the change
            counters of the cells around the call (the commit's guards); the open
            incidents of those buckets within ``radius_m``.
        """
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(self.keys.call_index, call_key)
                pipe.hmget(self.keys.cell_versions, list(cells))
                for bucket in buckets:
                    pipe.geosearch(
                        self.keys.open_geo_bucket(bucket), longitude=lon, latitude=lat,
                        radius=radius_m, unit="m",
                    )  # fmt: skip
                seen, raw_versions, *found_ids = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"reading merge candidates failed: {exc}") from exc
        versions = {
            c: ("" if v is None else text(v)) for c, v in zip(cells, raw_versions, strict=True)
        }
        ids = sorted({text(i) for group in found_ids for i in group})
        found = await self.get_many(Incident, [self.keys.incident(i) for i in ids])
        candidates = [i for i in found if i is not None and i.status is not IncidentStatus.CLOSED]
        return (None if seen is None else text(seen)), versions, candidates

    async def list_incidents(
        self,
        *,
        status: IncidentStatus | None = None,
        agency: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Incident]:
        """Newest first, filtered; ``since`` bounds the creation time."""
        low = "-inf" if since is None else _epoch(since)
        out: list[Incident] = []
        offset = 0
        page = max(limit, 100)
        while len(out) < limit:
            ids: Any = await self._call(
                "read",
                self.redis.zrevrangebyscore(
                    self.keys.incident_index, "+inf", low, start=offset, num=page
                ),
            )
            if not ids:
                break
            offset += len(ids)
            for inc in await self.get_many(Incident, [self.keys.incident(text(i)) for i in ids]):
                if inc is None:
                    continue
                if status is not None and inc.status is not status:
                    continue
                if agency is not None and agency not in inc.agencies:
                    continue
                out.append(inc)
                if len(out) >= limit:
                    break
        return out

    # -- units, positions, hospitals, rosters ---------------------------------------
    async def fleet_version(self) -> str:
        """The fleet's change counter ('' before the first unit write)."""
        raw = await self._call("read", self.redis.hget(self.keys.fleet_version, "v"))
        return "" if raw is None else text(raw)

    async def position(self, unit_id: str) -> Position | None:
        raw = await self._call("read", self.redis.hget(self.keys.positions, unit_id))
        return None if raw is None else Position.model_validate_json(raw)

    async def positions(self, unit_ids: Sequence[str]) -> list[Position | None]:
        if not unit_ids:
            return []
        raws = await self._call("read", self.redis.hmget(self.keys.positions, list(unit_ids)))
        return [None if r is None else Position.model_validate_json(r) for r in raws]

    async def record_positions(self, fixes: Sequence[tuple[str, Position, float | None]]) -> None:
        """Keep each unit's latest fix and append every fix to the live-map stream."""
        keys = self.keys
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for unit_id, pos, eta_s in fixes:
                    body = pos.model_dump_json()
                    fields: dict[Any, Any] = {"unit_id": unit_id, "position": body}
                    if eta_s is not None:
                        fields["eta_s"] = f"{eta_s:.1f}"
                    pipe.hset(keys.positions, unit_id, body)
                    pipe.xadd(
                        keys.position_stream,
                        fields,
                        maxlen=POSITION_STREAM_MAXLEN,
                        approximate=True,
                    )
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"recording positions: {exc}") from exc

    async def read_positions(
        self, after: str, *, count: int, block_ms: int
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Fixes on the live-map stream after ``after`` ('$': from now), waiting up to block_ms."""
        resp: Any = await self._call(
            "read positions",
            self.redis.xread({self.keys.position_stream: after}, count=count, block=block_ms),
        )
        return [(text(i), raw) for _stream, entries in resp or [] for i, raw in entries]

    async def roster(
        self, day: date, agencies: Sequence[str]
    ) -> tuple[list[bytes | str], list[bytes | str]]:
        """The stored roster entries of ``day`` for these agencies, and every rotation rule."""
        keys = self.keys
        wanted = [f"{day.isoformat()}:{a}" for a in agencies]
        entries = await self._call("read roster", self.redis.hmget(keys.roster_entries, wanted))
        rules = await self._call("read roster", self.redis.hgetall(keys.roster_rules))
        return [e for e in entries if e is not None], list(rules.values())

    # -- call intake --------------------------------------------------------------
    async def add_call(self, call: CallEvent) -> str:
        """Add a call to the intake stream as a call-taking system would; returns its entry id."""
        fields: dict[Any, Any] = call.to_fields()
        entry_id = await self._call(
            "cannot reach the call stream",
            self.redis.xadd(self.keys.calls, fields, maxlen=CALL_STREAM_MAXLEN, approximate=True),
        )
        return text(entry_id)

    async def dead_letter(
        self,
        *,
        source_id: str,
        fields: dict[str, str],
        reason: str,
        deliveries: int,
        now: datetime,
    ) -> str:
        """Keep a failed entry, its reason and time on the dead-letter stream.

        Oversized fields are cut (:func:`dispatch.core.dead.shrink`: size and SHA-256 kept)
        and the stream is trimmed to about ``self.dead.maxlen`` entries, so it stays within
        its byte budget whatever producers send.
        """
        kept, cuts = shrink(fields, self.dead)
        entry: dict[str, str] = {
            "source_id": source_id[:64],
            "reason": reason[:1000],
            "failed_at": now.astimezone(UTC).isoformat(),
            "deliveries": str(deliveries),
            "fields": orjson.dumps(kept).decode(),
        }
        if cuts:
            entry["truncated"] = orjson.dumps({k: c.model_dump() for k, c in cuts.items()}).decode()
        dead_id = await self._call(
            "dead letter",
            self.redis.xadd(
                self.keys.calls_dead,
                cast(dict[Any, Any], entry),
                maxlen=self.dead.maxlen,
                approximate=True,
            ),
        )
        return text(dead_id)

    async def list_dead(self, *, count: int = 100, before: str = "+") -> list[DeadLetter]:
        entries: Any = await self._call(
            "read dead letters",
            self.redis.xrevrange(self.keys.calls_dead, max=before, min="-", count=count),
        )
        out: list[DeadLetter] = []
        for entry_id, raw in entries:
            f = {text(k): text(v) for k, v in raw.items()}
            out.append(
                DeadLetter(
                    id=text(entry_id),
                    source_id=f.get("source_id", ""),
                    reason=f.get("reason", ""),
                    failed_at=datetime.fromisoformat(f["failed_at"]),
                    deliveries=int(f.get("deliveries", "0")),
                    fields=orjson.loads(f.get("fields", "{}")),
                    truncated=orjson.loads(f.get("truncated", "{}")),
                )
            )
        return out

    async def remember_failure(self, entry_id: str, reason: str) -> None:
        """Note why processing a call entry failed (the dead letter's reason if it never works)."""
        await self._call("note", self.redis.hset(self.keys.intake_errors, entry_id, reason))

    async def failure_of(self, entry_id: str) -> str | None:
        raw = await self._call("read", self.redis.hget(self.keys.intake_errors, entry_id))
        return None if raw is None else text(raw)

    async def forget_failures(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self._call("note", self.redis.hdel(self.keys.intake_errors, *entry_ids))

    async def group_backlog(self, stream: str, group: str) -> tuple[int | None, int | None]:
        """A consumer group's pending entries and lag (None, None when it does not exist yet)."""
        try:
            groups: Any = await self.redis.xinfo_groups(stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None, None
            raise StoreError(f"read groups: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"read groups: {exc}") from exc
        for g in groups:
            if text(g.get("name", "")) == group:
                raw_lag = g.get("lag")
                return int(g.get("pending") or 0), None if raw_lag is None else int(raw_lag)
        return None, None

    async def stream_length(self, stream: str) -> int:
        """How many entries a stream holds (0 when it does not exist)."""
        return int(await self._call("read stream", self.redis.xlen(stream)))

    # -- event log ----------------------------------------------------------------
    async def events_after(self, last_id: str = "0", *, count: int = 1000) -> list[Event]:
        """Events strictly after ``last_id``, oldest first."""
        entries = await self.event_entries(f"({last_id}", "+", count=count)
        return [event_from_entry(i, raw) for i, raw in entries]

    async def event_entries(
        self, low: str, high: str, *, count: int
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Raw event-log entries in ``[low, high]`` (``(`` before an id excludes it)."""
        entries: Any = await self._call(
            "read events", self.redis.xrange(self.keys.events, min=low, max=high, count=count)
        )
        return [(text(i), raw) for i, raw in entries]

    async def read_events(
        self, after: str, *, count: int, block_ms: int
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Events after ``after``, waiting up to ``block_ms`` for the first (XREAD)."""
        resp: Any = await self._call(
            "read events",
            self.redis.xread({self.keys.events: after}, count=count, block=block_ms),
        )
        return [(text(i), raw) for i, raw in (resp[0][1] if resp else [])]

    async def event_log_info(self) -> dict[str, Any] | None:
        """XINFO STREAM of the event log (None before the first event)."""
        try:
            info: Any = await self.redis.xinfo_stream(self.keys.events)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise StoreError(f"read event log: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"read event log: {exc}") from exc
        return dict(info)

    async def last_event_id(self) -> str:
        """The id of the newest event ever added to the log (``0-0`` before the first)."""
        info = await self.event_log_info()
        return "0-0" if info is None else text(info["last-generated-id"])

    async def events_for_incident(self, incident_id: str) -> list[Event]:
        """The incident's audit trail, oldest first (entries trimmed from the log are skipped)."""
        ids = [
            text(i)
            for i in await self._call(
                "read", self.redis.lrange(self.keys.incident_events(incident_id), 0, -1)
            )
        ]
        if not ids:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for event_id in ids:
                    pipe.xrange(self.keys.events, min=event_id, max=event_id, count=1)
                found = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"read events: {exc}") from exc
        return [event_from_entry(e[0][0], e[0][1]) for e in found if e]

    # -- access -----------------------------------------------------------------
    async def hash_all(self, key: str) -> dict[str, str]:
        """Every field of a small hash (e.g. the pivot postings), one round trip."""
        raw: Any = await self._call("read", self.redis.hgetall(key))
        return {text(k): text(v) for k, v in raw.items()}

    async def hash_fields(self, key: str, fields: Sequence[str]) -> list[str | None]:
        """Several fields of one hash, one round trip (None where absent)."""
        raws = await self._call("read", self.redis.hmget(key, list(fields)))
        return [None if r is None else text(r) for r in raws]

    async def count_failure(self, key: str, *, window_s: int) -> int:
        """Count one more failure in a window that starts with the first (INCR + EXPIRE NX)."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
                count, _ = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"count failure: {exc}") from exc
        return int(count)

    async def hold(self, key: str, *, seconds: int) -> None:
        """Set a flag that expires by itself."""
        await self._call("flag", self.redis.set(key, "1", ex=seconds))

    async def held_for(self, key: str) -> int:
        """Seconds a self-expiring flag still holds (0: not set)."""
        ttl = await self._call("read", self.redis.ttl(key))
        return max(int(ttl), 0)

    # -- drill reports ------------------------------------------------------------
    async def put_report(
        self, drill_id: str, *, info: str, report: str, html: str, stored_at: datetime
    ) -> None:
        """Store a drill report's index entry, JSON and HTML (replacing one of the same id)."""
        keys = self.keys
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(
                    keys.report(drill_id), mapping={"info": info, "json": report, "html": html}
                )
                pipe.zadd(keys.report_index, {drill_id: stored_at.timestamp()})
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"store report: {exc}") from exc

    async def report_field(self, drill_id: str, name: str) -> str | None:
        """One part of a stored report: ``info``, ``json`` or ``html``."""
        raw = await self._call("read report", self.redis.hget(self.keys.report(drill_id), name))
        return None if raw is None else text(raw)

    async def report_infos(self, *, limit: int = 100) -> list[str]:
        """The index entries of the newest reports, newest first (one round trip)."""
        keys = self.keys
        ids: Any = await self._call(
            "read reports", self.redis.zrevrange(keys.report_index, 0, limit - 1)
        )
        if not ids:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for raw_id in ids:
                    pipe.hget(keys.report(text(raw_id)), "info")
                found = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"read reports: {exc}") from exc
        return [text(r) for r in found if r is not None]

    # -- archive (dispatch.records) -------------------------------------------------
    async def group_floor(self, stream: str, group: str) -> str | None:
        """The lowest id ``group`` has not yet acknowledged on ``stream``: its oldest pending
        entry, or the id just after its last delivered one (None before the group exists).
        Everything below it has been handled, so it may be trimmed."""
        try:
            groups: Any = await self.redis.xinfo_groups(stream)
            mine = [g for g in groups if text(g.get("name", "")) == group]
            if not mine:
                return None
            summary: Any = await self.redis.xpending(stream, group)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise StoreError(f"read group floor: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"read group floor: {exc}") from exc
        if int(summary.get("pending") or 0) > 0 and summary.get("min") is not None:
            return text(summary["min"])
        ms, _, seq = text(mine[0].get("last-delivered-id", "0-0")).partition("-")
        return f"{ms}-{int(seq or 0) + 1}"

    async def trim_events_below(self, min_id: str) -> int:
        """XTRIM MINID the event log: entries below ``min_id`` go. Returns how many went."""
        return int(
            await self._call(
                "trim events",
                self.redis.xtrim(self.keys.events, minid=min_id, approximate=False),
            )
        )
