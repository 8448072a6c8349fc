"""Reactions to committed events: recommendations for new incidents, the automatic whistle.

The reactor is a consumer group (``reactor``) on the event log, as intake is on the calls
(:class:`~dispatch.infra.consumer.StreamConsumer`): every instance takes a share, an event is
acknowledged after the reaction is committed, and a dead instance's share is reclaimed.
Reactions are idempotent (a whistle is never sounded twice), so redelivery is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from dispatch.auth import Principal
from dispatch.constants import REACTOR_GROUP
from dispatch.core.whistle import sounding_centre
from dispatch.errors import ConflictError, NotFoundError, UnavailableError
from dispatch.events import EventType, IncidentRecommended
from dispatch.flow.recommend import Recommender
from dispatch.flow.whistle import WhistleDesk
from dispatch.infra.consumer import Entry, StreamConsumer
from dispatch.infra.store import Store, event_from_entry
from dispatch.models import CENTRE_AGENCY, Role

log = logging.getLogger(__name__)

TRIGGERS = frozenset({EventType.INCIDENT_CREATED.value, EventType.INCIDENT_MERGED.value})
# Events carry the best few candidates per agency; the full ranking is one REST call away.
EVENT_CANDIDATES = 5


class Reactor:
    """Consumer of the event log: recommends units for new incidents, sounds automatic whistles."""

    def __init__(
        self,
        store: Store,
        recommender: Recommender,
        whistles: WhistleDesk,
        *,
        consumer: str,
        clock: Callable[[], datetime],
        auto_whistle: bool = False,
        reclaim_idle_ms: int = 30_000,
    ) -> None:
        self.store = store
        self.recommender = recommender
        self.whistles = whistles
        self.clock = clock
        self.auto_whistle = auto_whistle
        self.reacted = 0
        # "$": a new deployment reacts to what happens from now on, not to history.
        self.consumer = StreamConsumer(
            store.redis,
            stream=store.keys.events,
            group=REACTOR_GROUP,
            consumer=consumer,
            handle=self._handle_batch,
            start_id="$",
            batch=200,
            block_ms=500,
            reclaim_idle_ms=reclaim_idle_ms,
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.consumer.run(stop)

    async def step(self, *, block_ms: int = 500) -> int:
        """Read a batch of events, react to the ones that call for it, ack them together."""
        return await self.consumer.step(block_ms)

    async def reclaim(self) -> int:
        return await self.consumer.reclaim()

    async def ensure_group(self) -> None:
        await self.consumer.ensure_group()

    async def _handle_batch(self, entries: Sequence[Entry]) -> list[str]:
        return [entry_id for entry_id, raw in entries if await self._handle(entry_id, raw)]

    async def _handle(self, entry_id: str, raw: dict[bytes, bytes]) -> bool:
        """React to one event; True when it may be acknowledged."""
        if raw.get(b"type", b"").decode() not in TRIGGERS:
            return True
        event = event_from_entry(entry_id, raw)
        if not event.incident_id:
            return True
        try:
            await self.react(event.incident_id)
        except (ConflictError, NotFoundError, UnavailableError) as exc:
            # Not retryable by waiting (off-graph scene, no graph, gone): say so, move on.
            log.warning("reactor: incident %s: %s", event.incident_id, exc)
        except Exception:
            # Anything else may pass (Redis blip): leave it pending, reclaimed later.
            log.exception("reactor: event %s failed; left pending", event.id)
            return False
        return True

    async def react(self, incident_id: str) -> None:
        """Recommend units for the incident; sound the whistle if set to and it qualifies."""
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        recs = None
        if self.recommender.router is not None:
            recs = await self.recommender.recommend_for(incident)
            tx = self.store.tx()
            tx.event(
                EventType.INCIDENT_RECOMMENDED,
                IncidentRecommended(
                    version=incident.version, recommendations=recs.top(EVENT_CANDIDATES)
                ),
                actor="reactor",
                ts=self.clock(),
                incident_id=incident.id,
            )
            await self.store.commit(tx)
        centre = sounding_centre(incident)
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
