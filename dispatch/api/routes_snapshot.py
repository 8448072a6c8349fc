"""``GET /api/snapshot``: the state a push client loads before (or after a resync) going live.

The snapshot names the event-log id it is consistent with (``event_id``). That id is read
*before* the state, so every event up to it is reflected in the state, and events after it may
or may not be: a client that connects with ``last_id=event_id`` may see an event whose effect
the snapshot already shows (apply events idempotently, e.g. by the incident's ``version``), but
never misses one.

Scope by role: dispatcher, observer and admin get every open incident, every unit and every
open whistle; a coordinator gets the open whistles they are summoned to, those incidents, and
the units of those incidents; a terminal gets its own unit and the incident it is
assigned to; a property team gets the open incidents in its compounds; a signal controller
gets 403 (its state is the green-wave messages on the socket); observers get the callers'
words and numbers taken out. The rules are :mod:`dispatch.core.policy`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from dispatch.api import views
from dispatch.api.deps import Svc, may
from dispatch.api.edge import EdgeRoute
from dispatch.core import policy
from dispatch.core.policy import Action
from dispatch.core.whistle import Whistle
from dispatch.models import Incident, Principal, Unit

router = APIRouter(prefix="/api", route_class=EdgeRoute)


class Snapshot(BaseModel):
    event_id: str = Field(description="resume the websocket from here (last_id)")
    taken_at: datetime
    incidents: list[Incident] = Field(description="open incidents the caller may see")
    units: list[Unit]
    whistles: list[Whistle] = Field(description="open whistles the caller may see")


@router.get("/snapshot", response_model=Snapshot, tags=["push"])
async def snapshot(
    svc: Svc, who: Annotated[Principal, Depends(may(Action.READ_SNAPSHOT))]
) -> Snapshot:
    """Open incidents, units and open whistles the caller may see, with the event id they are
    consistent with (each narrowed as the authorization model says)."""
    event_id = await svc.store.last_event_id()  # before any state: see the module docstring
    taken_at = svc.clock()
    incidents = await views.readable(
        svc, who, await svc.store.open_incidents(), what="read snapshot"
    )
    units: list[Unit] = []
    whistles: list[Whistle] = []
    if policy.admits(who, Action.READ_UNITS).allowed:
        units = await views.readable_units(svc, who)
    if policy.admits(who, Action.READ_WHISTLES).allowed:
        whistles = await views.readable_whistles(svc, who)
    return Snapshot(
        event_id=event_id, taken_at=taken_at, incidents=incidents, units=units, whistles=whistles
    )
