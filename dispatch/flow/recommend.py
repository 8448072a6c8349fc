"""Step 4, recommend: rank the units of every agency an incident needs, by road time.

The router gives every candidate's road time to the scene (one search on the reversed graph,
off the event loop); the core ranks them (:func:`dispatch.core.recommend.rank_units`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from dispatch.core.pivot_plan import at_post
from dispatch.core.recommend import Recommendations, Travel, origin_for, rank_units
from dispatch.errors import ConflictError, NoGraphError, NotFoundError
from dispatch.flow.fleet import Fleet
from dispatch.flow.pivots import PivotDesk
from dispatch.infra.store import Store
from dispatch.models import ASSIGNABLE_STATUSES, Incident, Unit
from routing import OffGraphError, Router

log = logging.getLogger(__name__)


class Recommender:
    """Ranks the available units of every agency an incident needs, by road time."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        router: Router | None,
        *,
        clock: Callable[[], datetime],
        stale_after_s: float,
        pivots: PivotDesk | None = None,
    ) -> None:
        self.store = store
        self.pivots = pivots
        self.fleet = fleet
        self.router = router
        self.clock = clock
        self.stale_after_s = stale_after_s

    async def recommend(self, incident_id: str) -> Recommendations:
        """Rank available units of every needed agency by road travel time to the scene.

        Raises:
            NotFoundError: no such incident. NoGraphError: no road graph is loaded.
            ConflictError: the scene is off the road graph.
        """
        incident = await self.store.get_incident(incident_id)
        if incident is None:
            raise NotFoundError(f"no incident {incident_id}")
        return await self.recommend_for(incident)

    async def recommend_for(self, incident: Incident) -> Recommendations:
        if self.router is None:
            raise NoGraphError("no road graph is loaded (set YISHAO_GRAPH); cannot rank units")
        router = self.router
        now = self.clock()
        agencies = {n.agency for n in incident.needs}
        units = [
            u
            for u in await self.fleet.units()
            if u.agency in agencies and u.status in ASSIGNABLE_STATUSES
        ]
        if self.pivots is not None:
            # A unit posted at a standing pivot post has the post for its station.
            posted = await self.pivots.stations(now)
            units = [at_post(u, posted[u.id]) if u.id in posted else u for u in units]
        origins: list[tuple[float, float]] = []
        placed: list[tuple[Unit, bool]] = []
        for unit in units:
            point, stale = origin_for(unit, now, self.stale_after_s)
            if point is not None:
                origins.append(point)
                placed.append((unit, stale))
        try:
            times = await asyncio.to_thread(
                router.travel_times_to, (incident.lat, incident.lon), origins
            )
        except OffGraphError as exc:
            raise ConflictError(f"incident {incident.id} is off the road graph: {exc}") from exc
        travel = {
            unit.id: Travel(
                eta_s=float(times.duration_s[i]),
                distance_m=float(times.distance_m[i]),
                from_station=stale,
            )
            for i, (unit, stale) in enumerate(placed)
        }
        ranked = rank_units(
            units=units,
            needs=incident.needs,
            travel=travel,
            now=now,
            stale_after_s=self.stale_after_s,
        )
        return Recommendations(incident_id=incident.id, computed_at=now, agencies=ranked)
