"""Due-time timers in Redis: they survive restarts and fire once across instances.

A timer is a member of the ``timers`` sorted set scored by its due time (epoch seconds) with
its payload in a hash. Scheduling is part of the commit that needs it (:meth:`Timers.schedule`
adds to a :class:`~dispatch.infra.store.Tx`), so a whistle and its deadline land together.

Firing: a poller on every instance claims due timers with one Lua call that moves each from
``timers`` to ``timers:inflight`` scored by a lease expiry, so exactly one instance gets it.
The handler's commit removes the timer for good (:meth:`Timers.done` in the same Tx). While
the instance works through what it claimed, a heartbeat renews the leases every
``heartbeat_s`` (``ZADD XX``: a timer handled or moved meanwhile is not brought back), so the
lease can be short (5 s): if the instance dies, its timers are claimed again by another within
about ``lease_s``, not after the longest a handler could take. Handlers are idempotent (a
whistle timeout for a settled summons does nothing), so a retry is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from redis.exceptions import RedisError

from dispatch.errors import YishaoError
from dispatch.infra.store import Store, Tx, text

log = logging.getLogger(__name__)

_CLAIM_LUA = """
local out = {}
for _, zset in ipairs({KEYS[1], KEYS[2]}) do
  local due = redis.call('ZRANGEBYSCORE', zset, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(due) do
    redis.call('ZREM', zset, id)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
  end
end
return out
"""

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]


class Timers:
    """Schedules timers inside commits and fires them through registered handlers by kind."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        lease_s: float = 5.0,
        heartbeat_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        if not 0 < heartbeat_s < lease_s:
            raise ValueError("the timer heartbeat must be shorter than the lease")
        self.store = store
        self.clock = clock
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.batch = batch
        self.handlers: dict[str, Handler] = {}
        self._claim = store.redis.register_script(_CLAIM_LUA)
        self.fired = 0
        self.renewals = 0

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(timer_id, payload)`` for timers whose payload has this ``kind``."""
        self.handlers[kind] = handler

    def schedule(self, tx: Tx, timer_id: str, due: datetime, kind: str, **payload: Any) -> Tx:
        """Add (or move) a timer as part of ``tx``."""
        keys = self.store.keys
        body = orjson.dumps({"kind": kind, **payload}, default=str).decode()
        tx.zrem(keys.timers_inflight, timer_id)
        tx.zadd(keys.timers, timer_id, due.timestamp())
        return tx.hset(keys.timer_payloads, {timer_id: body})

    def done(self, tx: Tx, timer_id: str) -> Tx:
        """Remove a timer for good as part of ``tx`` (fired and handled, or cancelled)."""
        keys = self.store.keys
        tx.zrem(keys.timers, timer_id)
        tx.zrem(keys.timers_inflight, timer_id)
        return tx.hdel(keys.timer_payloads, timer_id)

    async def due_at(self, timer_id: str) -> float | None:
        """The due time (epoch seconds) of a scheduled timer, or None."""
        score = await self.store.redis.zscore(self.store.keys.timers, timer_id)
        return None if score is None else float(score)

    async def claim_due(self) -> list[tuple[str, dict[str, Any]]]:
        """Claim the timers due now (and those whose lease ran out) for this instance."""
        keys = self.store.keys
        now = self.clock().timestamp()
        raw = await self._claim(
            keys=[keys.timers, keys.timers_inflight, keys.timer_payloads],
            args=[repr(now), repr(now + self.lease_s), self.batch],
        )
        out: list[tuple[str, dict[str, Any]]] = []
        for i in range(0, len(raw), 2):
            body = text(raw[i + 1])
            out.append((text(raw[i]), orjson.loads(body) if body else {}))
        return out

    async def renew(self, timer_ids: Sequence[str]) -> None:
        """Push the leases of timers still in flight ``lease_s`` ahead (others left alone)."""
        if not timer_ids:
            return
        until = self.clock().timestamp() + self.lease_s
        await self.store.redis.zadd(
            self.store.keys.timers_inflight, dict.fromkeys(timer_ids, until), xx=True
        )
        self.renewals += 1

    async def fire_due(self) -> int:
        """Claim and handle every timer due now. Returns how many were handled."""
        claimed = await self.claim_due()
        if not claimed:
            return 0
        waiting = {timer_id for timer_id, _ in claimed}
        beat = asyncio.create_task(self._heartbeat(waiting))
        try:
            return await self._handle_all(claimed, waiting)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, waiting: set[str]) -> None:
        while waiting:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.renew(sorted(waiting))
            except RedisError as exc:
                log.warning("timers: lease renewal failed: %s", exc)

    async def _handle_all(
        self, claimed: list[tuple[str, dict[str, Any]]], waiting: set[str]
    ) -> int:
        handled = 0
        for timer_id, payload in claimed:
            handler = self.handlers.get(str(payload.get("kind", "")))
            try:
                if handler is None:
                    log.error(
                        "timer %s has no handler for kind %r; dropped",
                        timer_id,
                        payload.get("kind"),
                    )
                    await self.store.commit(self.done(self.store.tx(), timer_id))
                    continue
                await handler(timer_id, payload)
                handled += 1
                self.fired += 1
            except Exception:
                log.exception("timer %s failed; it will be retried when its lease ends", timer_id)
            finally:
                waiting.discard(timer_id)
        return handled

    async def run(self, stop: asyncio.Event, *, poll_s: float = 0.25) -> None:
        """Poll for due timers until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.fire_due()
            except (RedisError, YishaoError) as exc:
                log.warning("timers: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
