"""``GET /api/snapshot``: the state a push client loads before (or after a resync) going live.

The snapshot names the event-log id it is consistent with (``event_id``). That id is read
*before* the state, so every event up to it is reflected in the state, and events after it may
or may not be: a client that connects with ``last_id=event_id`` may see an event whose effect
the snapshot already shows (apply events idempotently, e.g. by the incident's ``version``), but
never misses one.

Scope by role: dispatcher, observer and admin get every open incident, every unit and every
open whistle; a coordinator gets the open whistles they are summoned to, those incidents, and
the units (as ``GET /api/units`` allows); a terminal gets its own unit and the incident it is
assigned to; a property team gets the open incidents in its compounds; a signal controller
gets 403 (its state is the green-wave messages on the socket).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dispatch.api.deps import Svc, Who
from dispatch.core.whistle import Whistle
from dispatch.errors import ForbiddenError
from dispatch.models import Incident, Role, Unit

router = APIRouter(prefix="/api")


class Snapshot(BaseModel):
    event_id: str = Field(description="resume the websocket from here (last_id)")
    taken_at: datetime
    incidents: list[Incident] = Field(description="open incidents the caller may see")
    units: list[Unit]
    whistles: list[Whistle] = Field(description="open whistles the caller may see")


@router.get("/snapshot", response_model=Snapshot, tags=["push"])
async def snapshot(svc: Svc, who: Who) -> Snapshot:
    """Open incidents, units and open whistles, with the event id they are consistent with."""
    if who.role is Role.SIGNAL:
        raise ForbiddenError("a signal controller has no snapshot; its messages come on /ws")
    event_id = await svc.store.last_event_id()  # before any state: see the module docstring
    taken_at = svc.clock()
    store, keys = svc.store, svc.store.keys
    if who.role is Role.TERMINAL:
        unit = await store.get(Unit, keys.unit(who.sub))
        incidents: list[Incident] = []
        if unit is not None and unit.incident_id:
            found = await store.get_incident(unit.incident_id)
            incidents = [found] if found is not None else []
        return Snapshot(
            event_id=event_id,
            taken_at=taken_at,
            incidents=incidents,
            units=[unit] if unit is not None else [],
            whistles=[],
        )
    incidents = await store.open_incidents()
    if who.role is Role.PROPERTY:
        scope = set(who.scope)
        inside = [i for i in incidents if _compound(i) in scope]
        return Snapshot(
            event_id=event_id, taken_at=taken_at, incidents=inside, units=[], whistles=[]
        )
    whistles = await svc.whistles.open_whistles()
    units = await svc.fleet.units()
    if who.role is Role.COORDINATOR:
        whistles = [w for w in whistles if any(s.coordinator == who.sub for s in w.summons)]
        summoned = {w.incident_id for w in whistles}
        incidents = [i for i in incidents if i.id in summoned]
    return Snapshot(
        event_id=event_id,
        taken_at=taken_at,
        incidents=incidents,
        units=units,
        whistles=whistles,
    )


def _compound(incident: Incident) -> str | None:
    # Incidents will carry ``compound_id`` (issue 5, part 2); until then nothing matches.
    value = getattr(incident, "compound_id", None)
    return value if isinstance(value, str) else None
