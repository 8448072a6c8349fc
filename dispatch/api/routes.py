"""REST routes under ``/api``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from dispatch.api import views
from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.constants import CONSUMER_GROUP
from dispatch.core import policy
from dispatch.core.policy import Action, Target
from dispatch.errors import StoreError
from dispatch.models import (
    AGENCY_CENTRE,
    Agency,
    CallEvent,
    DeadLetter,
    Event,
    HealthReport,
    Incident,
    IncidentStatus,
    Principal,
    Role,
    mask_phone,
)

router = APIRouter(prefix="/api", route_class=EdgeRoute)

Reader = Annotated[Principal, Depends(may(Action.READ_INCIDENT))]
Caller = Annotated[Principal, Depends(may(Action.POST_CALL))]
DeadReader = Annotated[Principal, Depends(may(Action.READ_DEAD))]


class CallAccepted(BaseModel):
    stream_id: str
    call_key: str


@router.get("/health", response_model=HealthReport, tags=["service"])
async def health(svc: Svc) -> HealthReport:
    """Liveness and readiness: Redis reachability and the intake group's backlog. No auth."""
    base = {"instance": svc.instance, "consumer_group": CONSUMER_GROUP, "graph": svc.graph_name}
    if not await svc.store.ping():
        return HealthReport(status="degraded", redis=False, detail="redis unreachable", **base)
    try:
        pending, lag = await svc.store.group_backlog(svc.store.keys.calls, CONSUMER_GROUP)
    except StoreError as exc:
        return HealthReport(status="degraded", redis=False, detail=type(exc).__name__, **base)
    archive_lag = await svc.record.archiver.lag() if svc.record is not None else None
    return HealthReport(
        status="ok", redis=True, pending=pending, lag=lag, archive_lag=archive_lag, **base
    )


@router.post("/calls", status_code=202, response_model=CallAccepted, tags=["calls"])
async def post_call(call: CallEvent, svc: Svc, who: Caller) -> CallAccepted:
    """Land a call on the intake stream, as the centre's call-taking system would.

    A dispatcher may post only for their own centre (traffic 122, ems 120, fire 119).
    """
    authorize(who, Action.POST_CALL, Target(centre=call.centre))
    svc.limits.check(call, svc.clock())
    stream_id = await svc.store.add_call(call)
    return CallAccepted(stream_id=stream_id, call_key=call.key)


@router.get("/incidents", response_model=list[Incident], tags=["incidents"])
async def list_incidents(
    svc: Svc,
    who: Reader,
    status: IncidentStatus | None = None,
    agency: Agency | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Incident]:
    """Incidents the caller may read, newest first; ``since`` bounds creation time."""
    found = await svc.store.list_incidents(
        status=status, agency=agency.value if agency else None, since=since, limit=limit
    )
    return await views.readable(svc, who, found)


@router.get("/incidents/{incident_id}", response_model=Incident, tags=["incidents"])
async def get_incident(incident_id: str, svc: Svc, who: Reader) -> Incident:
    return await views.incident_for(svc, who, incident_id)


@router.get("/incidents/{incident_id}/events", response_model=list[Event], tags=["incidents"])
async def incident_events(incident_id: str, svc: Svc, who: Reader) -> list[Event]:
    """The incident's audit trail: every change, oldest first."""
    await views.incident_for(svc, who, incident_id)
    events = await svc.store.events_for_incident(incident_id)
    if who.role is Role.OBSERVER:
        return [e.model_copy(update={"data": policy.redact_event_data(e.data)}) for e in events]
    return events


@router.get("/calls/dead", response_model=list[DeadLetter], tags=["calls"])
async def dead_calls(
    svc: Svc,
    who: DeadReader,
    count: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[str, Query(pattern=r"^(\+|[0-9]{1,19}(-[0-9]{1,19})?)$")] = "+",
) -> list[DeadLetter]:
    """Dead-lettered call entries, newest first, with the reason each was refused.

    A dispatcher sees the entries that name their own centre (``centre`` field); an admin
    sees all. The caller's phone is masked for everyone but an admin.
    """
    letters = await svc.store.list_dead(count=count, before=before)
    if who.role is Role.ADMIN:
        return letters
    centre = AGENCY_CENTRE.get(who.agency)
    mine = [d for d in letters if centre is not None and d.fields.get("centre") == centre.value]
    for letter in mine:
        if "caller_phone" in letter.fields:
            letter.fields["caller_phone"] = mask_phone(letter.fields["caller_phone"]) or ""
    return mine
