"""REST routes under ``/api``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from dispatch.api import views
from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.constants import CONSUMER_GROUP
from dispatch.core import policy
from dispatch.core.backlog import Backlog, readiness, refuse_calls
from dispatch.core.policy import Action, Target
from dispatch.errors import OverloadedError, StoreError
from dispatch.flow.watch import ALARM
from dispatch.models import (
    AGENCY_CENTRE,
    Agency,
    CallEvent,
    DeadLetter,
    Event,
    HealthReport,
    Incident,
    IncidentStatus,
    Liveness,
    Principal,
    Role,
    mask_phone,
    mask_pii,
)
from dispatch.services import Services

router = APIRouter(prefix="/api", route_class=EdgeRoute)

Reader = Annotated[Principal, Depends(may(Action.READ_INCIDENT))]
Caller = Annotated[Principal, Depends(may(Action.POST_CALL))]
DeadReader = Annotated[Principal, Depends(may(Action.READ_DEAD))]


class CallAccepted(BaseModel):
    stream_id: str
    call_key: str


async def _health(svc: Services) -> HealthReport:
    base = {"instance": svc.instance, "consumer_group": CONSUMER_GROUP, "graph": svc.graph_name}
    redis_ok = await svc.store.ping()
    backlog: Backlog | None = None
    detail: str | None = None
    alarm = False
    if redis_ok:
        try:
            backlog = await svc.watch.read()
            alarm = bool((await svc.store.hash_fields(svc.store.keys.alarms, [ALARM]))[0])
        except StoreError as exc:
            redis_ok, detail = False, type(exc).__name__
    state = readiness(
        redis_ok=redis_ok,
        graph_ok=svc.graph_ok,
        backlog=backlog,
        limits=svc.settings.backlog_limits(),
    )
    archive_lag = await svc.record.archiver.lag() if svc.record is not None and redis_ok else None
    return HealthReport(
        status="ok" if state.ready else "degraded",
        redis=redis_ok,
        pending=None if backlog is None else backlog.pending,
        lag=None if backlog is None else backlog.lag,
        detail=detail or ("; ".join(state.reasons) or None),
        ready=state.ready,
        checks=dict(state.checks),
        reasons=list(state.reasons),
        lag_alarm=alarm,
        archive_lag=archive_lag,
        **base,
    )


@router.get("/health", response_model=HealthReport, tags=["service"])
async def health(svc: Svc, response: Response) -> HealthReport:
    """Every check (Redis, road graph, intake backlog); 503 unless all pass. No auth."""
    report = await _health(svc)
    if not report.ready:
        response.status_code = 503
    return report


@router.get("/health/live", response_model=Liveness, tags=["service"])
async def live(svc: Svc) -> Liveness:
    """Liveness: the process serves requests (restart it if this fails). No auth, no I/O."""
    return Liveness(instance=svc.instance)


@router.get("/health/ready", response_model=HealthReport, tags=["service"])
async def ready(svc: Svc, response: Response) -> HealthReport:
    """Readiness: 503 with ``reasons`` when Redis is unreachable, the road graph is missing
    (production), or the intake backlog is past ``YISHAO_INTAKE_LAG_ALARM``. No auth."""
    report = await _health(svc)
    if not report.ready:
        response.status_code = 503
    return report


@router.post("/calls", status_code=202, response_model=CallAccepted, tags=["calls"])
async def post_call(call: CallEvent, svc: Svc, who: Caller) -> CallAccepted:
    """Land a call on the intake stream, as the centre's call-taking system would.

    A dispatcher may post only for their own centre (traffic 122, ems 120, fire 119).
    503 with ``Retry-After`` when the intake backlog is past ``YISHAO_INTAKE_BACKLOG_MAX``.
    """
    authorize(who, Action.POST_CALL, Target(centre=call.centre))
    svc.limits.check(call, svc.clock())
    backlog = await svc.watch.current()
    if refuse_calls(backlog, svc.settings.backlog_limits()):
        # Refused before it is queued: a 503 never hides a call that was accepted.
        raise OverloadedError(
            f"intake backlog {backlog.size} at its limit; retry later",
            retry_after_s=svc.settings.intake_retry_after_s,
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
    """The incident's audit trail: every change, oldest first (not a property account's)."""
    await views.incident_for(svc, who, incident_id, least_ok=False)
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
        # Numbers typed into free text are masked too, as on every incident screen.
        for name in ("description", "address"):
            if name in letter.fields:
                letter.fields[name] = mask_pii(letter.fields[name]) or ""
    return mine
