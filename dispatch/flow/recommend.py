"""Reactions to committed events: recommendations for new incidents, the automatic whistle.

The reactor is a consumer group (``reactor``) on the event log, like intake is on the calls:
every instance takes a share, an event is acknowledged after the reaction is committed, and a
dead instance's share is reclaimed. Reactions are idempotent (a second recommendation for the
same incident version is skipped; a whistle is never sounded twice), so redelivery is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError, ResponseError

from dispatch.auth import Principal
from dispatch.core.whistle import SOUNDING_CENTRES
from dispatch.errors import ConflictError, StoreError, YishaoError
from dispatch.flow.assign import Responder
from dispatch.flow.whistle import WhistleService
from dispatch.infra.store import Store, event_from_entry
from dispatch.models import CENTRE_AGENCY, Centre, Incident, Role

log = logging.getLogger(__name__)

REACTOR_GROUP = "reactor"
TRIGGERS = frozenset({"incident.created", "incident.merged"})
# Events carry the best few candidates per agency; the full ranking is one REST call away.
EVENT_CANDIDATES = 5


class Reactor:
    """Consumes the event log and reacts to new and merged incidents."""

    def __init__(
        self,
        store: Store,
        responder: Responder,
        whistles: WhistleService,
        *,
        consumer: str,
        clock: Callable[[], datetime],
        auto_whistle: bool,
        reclaim_idle_ms: int = 30_000,
    ) -> None:
        self.store = store
        self.responder = responder
        self.whistles = whistles
        self.consumer = consumer
        self.clock = clock
        self.auto_whistle = auto_whistle
        self.reclaim_idle_ms = reclaim_idle_ms
        self.reacted = 0

    async def ensure_group(self) -> None:
        try:
            # "$": a new deployment reacts to what happens from now on, not to history.
            await self.store.redis.xgroup_create(
                self.store.keys.events, REACTOR_GROUP, id="$", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.ensure_group()
                break
            except (RedisError, YishaoError) as exc:
                log.warning("reactor: %s", exc)
                await _pause(stop, 1.0)
        while not stop.is_set():
            try:
                await self.reclaim()
                await self.step(block_ms=500)
            except (RedisError, YishaoError) as exc:
                log.warning("reactor: %s; retrying in 1 s", exc)
                if "NOGROUP" in str(exc):
                    with contextlib.suppress(RedisError, YishaoError):
                        await self.ensure_group()
                    continue
                await _pause(stop, 1.0)

    async def step(self, *, block_ms: int = 500) -> int:
        """Read a batch of events, react to the ones that call for it, ack them together."""
        resp: Any = await self.store.redis.xreadgroup(
            REACTOR_GROUP, self.consumer, {self.store.keys.events: ">"}, count=200, block=block_ms
        )
        entries = resp[0][1] if resp else []
        await self._handle_batch(entries)
        return len(entries)

    async def _handle_batch(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        done = [entry_id for entry_id, raw in entries if await self._handle(entry_id, raw)]
        if done:
            await self.store.redis.xack(self.store.keys.events, REACTOR_GROUP, *done)

    async def reclaim(self) -> None:
        resp: Any = await self.store.redis.xautoclaim(
            self.store.keys.events,
            REACTOR_GROUP,
            self.consumer,
            min_idle_time=self.reclaim_idle_ms,
            count=50,
        )
        await self._handle_batch([e for e in resp[1] if e and e[1] is not None])

    async def _handle(self, entry_id: bytes, raw: dict[bytes, bytes]) -> bool:
        """React to one event; True when it may be acknowledged."""
        if raw.get(b"type", b"").decode() not in TRIGGERS:
            return True
        event = event_from_entry(entry_id, raw)
        if event.type in TRIGGERS and event.incident_id:
            try:
                await self.react(event.incident_id, actor=event.actor)
            except (ConflictError, StoreError) as exc:
                # Not retryable by waiting (off-graph scene, no graph): say so, move on.
                log.warning("reactor: incident %s: %s", event.incident_id, exc)
            except Exception:
                # Anything else may pass (Redis blip): leave it pending, reclaimed later.
                log.exception("reactor: event %s failed; left pending", event.id)
                return False
        return True

    async def react(self, incident_id: str, *, actor: str) -> None:
        """Recommend units for the incident; sound the whistle if set to and it qualifies."""
        incident = await self.responder.incident(incident_id)
        recs = None
        if self.responder.router is not None:
            recs = await self.responder.recommend_for(incident)
            tx = self.store.tx()
            tx.event(
                "incident.recommended",
                actor="reactor",
                ts=self.clock(),
                incident_id=incident.id,
                data={"version": incident.version, "recommendations": recs.top(EVENT_CANDIDATES)},
            )
            await self.store.commit(tx)
        centre = _sounding_centre(incident)
        if (
            self.auto_whistle
            and incident.whistle_eligible
            and incident.whistle_id is None
            and centre
        ):
            who = Principal(
                sub=f"auto:{centre.value}",
                role=Role.DISPATCHER,
                agency=CENTRE_AGENCY[centre],
                exp=0,
                iat=0,
            )
            try:
                await self.whistles.sound(incident.id, who, recommended=recs)
            except ConflictError as exc:
                log.info("reactor: no automatic whistle for %s: %s", incident.id, exc)
        self.reacted += 1


def _sounding_centre(incident: Incident) -> Centre | None:
    """The centre that sounds an automatic whistle: 120 or 119, whichever took a call first."""
    for call in incident.calls:
        if call.centre in SOUNDING_CENTRES:
            return call.centre
    return None


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
