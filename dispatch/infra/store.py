"""Redis state and the event log: the one place that reads and writes Yishao's keys.

Objects (incidents, units, whistles, ...) are hashes with two fields, ``v`` (version)
and ``json`` (the model). Every change goes through :meth:`Store.commit`: one Lua call
that checks guards (versions, absent fields), applies writes and appends the change's
events to the event log, all or nothing. All keys of a commit share the namespace's
hash tag, so the same script runs on a Redis Cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError, ResponseError

from dispatch.constants import (
    CALL_STREAM_MAXLEN,
    CONSUMER_GROUP,
    DEAD_STREAM_MAXLEN,
    EVENT_STREAM_MAXLEN,
    Keys,
)
from dispatch.errors import ConflictError, StoreError
from dispatch.models import CallEvent, DeadLetter, Event, Incident, IncidentStatus

log = logging.getLogger(__name__)

# One Redis, or a Redis Cluster: every key a commit touches shares one hash tag.
AnyRedis = Redis | RedisCluster
M = TypeVar("M", bound=BaseModel)

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
  local id = redis.call('XADD', KEYS[tx.log], 'MAXLEN', '~', tx.maxlen, '*', unpack(e.f))
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
        type: str,
        *,
        actor: str,
        ts: datetime,
        incident_id: str | None = None,
        data: dict[str, Any] | BaseModel | None = None,
    ) -> Tx:
        """Append one event to the log as part of this commit."""
        if isinstance(data, BaseModel):
            payload = data.model_dump_json()
        else:
            payload = orjson.dumps(data or {}, default=_json_default).decode()
        fields = [
            "type", type,
            "incident_id", incident_id or "",
            "actor", actor,
            "ts", ts.astimezone(UTC).isoformat(),
            "data", payload,
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
            "maxlen": str(EVENT_STREAM_MAXLEN),
        }
        # cjson turns an empty Lua table into {}; ipairs over it is still empty.
        return list(self._key_list), orjson.dumps(body).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def event_from_entry(entry_id: bytes | str, raw: dict[bytes, bytes]) -> Event:
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
    """Async access to Yishao's state in one Redis namespace."""

    def __init__(self, redis: AnyRedis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._commit = redis.register_script(_COMMIT_LUA)

    def tx(self) -> Tx:
        return Tx(self.keys)

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
        status = _s(result[0])
        if status != "ok":
            index = int(_s(result[1])) - 1
            guard = tx.guards[index]
            raise VersionConflict(
                f"guard {guard['op']} on {keys[int(guard['k']) - 1]} failed",
                kind=status,
                current=_s(result[2]),
            )
        return [_s(r) for r in result[1:]]

    # -- generic objects ----------------------------------------------------------
    async def get(self, model: type[M], key: str) -> M | None:
        raw = await self.redis.hget(key, "json")
        return None if raw is None else model.model_validate_json(raw)

    async def get_many(self, model: type[M], keys: Sequence[str]) -> list[M | None]:
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "json")
            raws = await pipe.execute()
        return [None if r is None else model.model_validate_json(r) for r in raws]

    # -- incidents ----------------------------------------------------------------
    async def get_incident(self, incident_id: str) -> Incident | None:
        return await self.get(Incident, self.keys.incident(incident_id))

    async def incident_for_call(self, call_key: str) -> str | None:
        raw = await self.redis.hget(self.keys.call_index, call_key)
        return None if raw is None else _s(raw)

    async def new_incident_id(self, day: str) -> str:
        seq = await self.redis.incr(self.keys.incident_seq)
        return f"YS-{day}-{seq:06d}"

    async def merge_view(
        self, call_key: str, cells: Sequence[str], *, lat: float, lon: float, radius_m: float
    ) -> tuple[str | None, dict[str, str], list[Incident]]:
        """What joint intake needs to decide on one call, read in one round trip.

        Returns:
            The incident already holding this call (a duplicate) or None; the change
            counters of the cells around the call (the commit's guards); the open
            incidents within ``radius_m``, nearest first.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.call_index, call_key)
            pipe.hmget(self.keys.cell_versions, list(cells))
            pipe.geosearch(
                self.keys.open_geo, longitude=lon, latitude=lat, radius=radius_m, unit="m",
                sort="ASC",
            )  # fmt: skip
            try:
                seen, raw_versions, ids = await pipe.execute()
            except ResponseError as exc:
                raise StoreError(f"reading merge candidates failed: {exc}") from exc
        versions = {
            c: ("" if v is None else _s(v)) for c, v in zip(cells, raw_versions, strict=True)
        }
        found = await self.get_many(Incident, [self.keys.incident(_s(i)) for i in ids])
        candidates = [i for i in found if i is not None and i.status is not IncidentStatus.CLOSED]
        return (None if seen is None else _s(seen)), versions, candidates

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
            ids: Any = await self.redis.zrevrangebyscore(
                self.keys.incident_index, "+inf", low, start=offset, num=page
            )
            if not ids:
                break
            offset += len(ids)
            for inc in await self.get_many(Incident, [self.keys.incident(_s(i)) for i in ids]):
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

    # -- call intake --------------------------------------------------------------
    async def ensure_group(self) -> None:
        """Create the intake consumer group (and the stream) if they do not exist."""
        try:
            await self.redis.xgroup_create(self.keys.calls, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreError(f"cannot create consumer group: {exc}") from exc

    async def dead_letter(
        self,
        *,
        source_id: str,
        fields: dict[str, str],
        reason: str,
        deliveries: int,
        now: datetime,
    ) -> str:
        """Keep a failed entry, its reason and time on the dead-letter stream."""
        entry: dict[str, str] = {
            "source_id": source_id,
            "reason": reason,
            "failed_at": now.astimezone(UTC).isoformat(),
            "deliveries": str(deliveries),
            "fields": orjson.dumps(fields).decode(),
        }
        dead_id = await self.redis.xadd(
            self.keys.calls_dead,
            cast(dict[Any, Any], entry),
            maxlen=DEAD_STREAM_MAXLEN,
            approximate=True,
        )
        return _s(dead_id)

    async def add_call(self, call: CallEvent) -> str:
        """Add a call to the intake stream as a call-taking system would; returns its entry id."""
        fields: dict[Any, Any] = call.to_fields()
        try:
            entry_id = await self.redis.xadd(
                self.keys.calls, fields, maxlen=CALL_STREAM_MAXLEN, approximate=True
            )
        except RedisError as exc:
            raise StoreError(f"cannot reach the call stream: {exc}") from exc
        return _s(entry_id)

    async def list_dead(self, *, count: int = 100, before: str = "+") -> list[DeadLetter]:
        entries: Any = await self.redis.xrevrange(
            self.keys.calls_dead, max=before, min="-", count=count
        )
        out: list[DeadLetter] = []
        for entry_id, raw in entries:
            f = {_s(k): _s(v) for k, v in raw.items()}
            out.append(
                DeadLetter(
                    id=_s(entry_id),
                    source_id=f.get("source_id", ""),
                    reason=f.get("reason", ""),
                    failed_at=datetime.fromisoformat(f["failed_at"]),
                    deliveries=int(f.get("deliveries", "0")),
                    fields=orjson.loads(f.get("fields", "{}")),
                )
            )
        return out

    # -- event log ----------------------------------------------------------------
    async def events_after(self, last_id: str = "0", *, count: int = 1000) -> list[Event]:
        """Events strictly after ``last_id``, oldest first."""
        entries: Any = await self.redis.xrange(
            self.keys.events, min=f"({last_id}", max="+", count=count
        )
        return [event_from_entry(i, raw) for i, raw in entries]

    async def events_for_incident(self, incident_id: str) -> list[Event]:
        """The incident's audit trail, oldest first (entries trimmed from the log are skipped)."""
        ids = [
            _s(i) for i in await self.redis.lrange(self.keys.incident_events(incident_id), 0, -1)
        ]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in ids:
                pipe.xrange(self.keys.events, min=event_id, max=event_id, count=1)
            found = await pipe.execute()
        return [event_from_entry(e[0][0], e[0][1]) for e in found if e]


def _s(value: bytes | str | int) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
