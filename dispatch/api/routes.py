"""REST routes under ``/api``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from dispatch.api.deps import Svc, require
from dispatch.auth import Principal
from dispatch.constants import CONSUMER_GROUP
from dispatch.errors import ForbiddenError, NotFoundError, StoreError
from dispatch.models import (
    CENTRE_AGENCY,
    Agency,
    CallEvent,
    DeadLetter,
    Event,
    HealthReport,
    Incident,
    IncidentStatus,
    Role,
    mask_phone,
)

router = APIRouter(prefix="/api")

Reader = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.COORDINATOR, Role.OBSERVER))]
Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER))]


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
    return HealthReport(status="ok", redis=True, pending=pending, lag=lag, **base)


@router.post("/calls", status_code=202, response_model=CallAccepted, tags=["calls"])
async def post_call(call: CallEvent, svc: Svc, who: Dispatcher) -> CallAccepted:
    """Land a call on the intake stream, as the centre's call-taking system would.

    A dispatcher may post only for their own centre (traffic 122, ems 120, fire 119).
    """
    if who.role is not Role.ADMIN and CENTRE_AGENCY[call.centre] is not who.agency:
        raise ForbiddenError(
            f"a {who.agency.value} dispatcher cannot post calls for centre {call.centre.value}"
        )
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
    """Incidents, newest first; ``since`` bounds creation time (ISO 8601)."""
    return await svc.store.list_incidents(
        status=status, agency=agency.value if agency else None, since=since, limit=limit
    )


@router.get("/incidents/{incident_id}", response_model=Incident, tags=["incidents"])
async def get_incident(incident_id: str, svc: Svc, who: Reader) -> Incident:
    incident = await svc.store.get_incident(incident_id)
    if incident is None:
        raise NotFoundError(f"no incident {incident_id}")
    return incident


@router.get("/incidents/{incident_id}/events", response_model=list[Event], tags=["incidents"])
async def incident_events(incident_id: str, svc: Svc, who: Reader) -> list[Event]:
    """The incident's audit trail: every change, oldest first."""
    if await svc.store.get_incident(incident_id) is None:
        raise NotFoundError(f"no incident {incident_id}")
    return await svc.store.events_for_incident(incident_id)


@router.get("/calls/dead", response_model=list[DeadLetter], tags=["calls"])
async def dead_calls(
    svc: Svc,
    who: Dispatcher,
    count: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: str = "+",
) -> list[DeadLetter]:
    """Dead-lettered call entries, newest first, with the reason each was refused.

    The caller's phone is masked for everyone but an admin.
    """
    letters = await svc.store.list_dead(count=count, before=before)
    if who.role is not Role.ADMIN:
        for letter in letters:
            if "caller_phone" in letter.fields:
                letter.fields["caller_phone"] = mask_phone(letter.fields["caller_phone"]) or ""
    return letters
