"""The standards at the edge: EIDO out and in, CAP alerts, their Atom feed.

- ``GET  /api/incidents/{id}/eido``   the incident as a NENA EIDO (dispatcher, observer)
- ``POST /api/eido``                  an EIDO from another centre, taken as calls (dispatcher)
- ``POST /api/incidents/{id}/cap``    issue / update / cancel a CAP 1.2 alert (dispatcher)
- ``GET  /api/incidents/{id}/cap``    the incident's alerts (dispatcher, coordinator, observer)
- ``GET  /cap/alerts/{alert_id}``     an alert's latest message, CAP XML (public)
- ``GET  /cap/alerts/{alert_id}/{n}`` its n-th message, CAP XML, never changes (public)
- ``GET  /cap/alerts.atom``           Atom feed of current alerts (public)

CAP alerts are public warnings, so their XML and feed need no token; everything under
``/api`` does. Admins may do everything. The role checks are the dependencies below.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dispatch.api import views
from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.auth import Principal
from dispatch.core.policy import Action, Target
from dispatch.errors import NotFoundError, StoreError
from dispatch.interop.alerts import AlertDesk
from dispatch.interop.cap import (
    ATOM_MEDIA_TYPE,
    CAP_MEDIA_TYPE,
    AlertSummary,
    CapRequest,
    atom_feed,
)
from dispatch.interop.eido import EidoCall, Origin, eido_calls, incident_to_eido
from dispatch.interop.eido_intake import EidoIntake, Outcome
from dispatch.interop.errors import InvalidEidoError, StandardsMissingError
from dispatch.interop.schemas import (
    CapSchema,
    EidoSchema,
    cap_schema,
    eido_schema,
    resolve_standards_dir,
)
from dispatch.models import AGENCY_CENTRE, Centre, Role
from dispatch.services import Services

router = APIRouter(tags=["standards"], route_class=EdgeRoute)

IncidentReader = Annotated[Principal, Depends(may(Action.READ_INCIDENT))]
EidoPoster = Annotated[Principal, Depends(may(Action.POST_EIDO))]
CapIssuer = Annotated[Principal, Depends(may(Action.ISSUE_CAP))]
# An EIDO is a whole incident; more than this is not one a centre sends.
MAX_EIDO_BYTES = 2_000_000
_ALERT_ID = PathParam(pattern=r"^[A-Za-z0-9._\-]{1,100}$")


def _standards(svc: Services) -> Path:
    return resolve_standards_dir(svc.settings.standards_dir)


def _origin(svc: Services) -> Origin:
    return Origin(domain=svc.settings.interop_domain)


def _eido(svc: Services) -> EidoSchema:
    try:
        return eido_schema(_standards(svc))
    except StandardsMissingError as exc:
        raise StoreError(f"EIDO is unavailable: {exc}") from exc


def _cap(svc: Services) -> CapSchema:
    try:
        return cap_schema(_standards(svc))
    except StandardsMissingError as exc:
        raise StoreError(f"CAP is unavailable: {exc}") from exc


def alert_desk(svc: Svc) -> AlertDesk:
    """The desk that issues alerts: it validates each against the XSD, so it needs it."""
    return AlertDesk(svc.store, clock=svc.clock, origin=_origin(svc), schema=_cap(svc))


def alert_reader(svc: Svc) -> AlertDesk:
    """A desk for reading stored alerts (their XML was validated when issued)."""
    return AlertDesk(svc.store, clock=svc.clock, origin=_origin(svc), schema=None)


Desk = Annotated[AlertDesk, Depends(alert_desk)]
Alerts = Annotated[AlertDesk, Depends(alert_reader)]


# -- EIDO ------------------------------------------------------------------------------------------
@router.get("/api/incidents/{incident_id}/eido", response_model=None)
async def export_eido(incident_id: str, svc: Svc, who: IncidentReader) -> JSONResponse:
    """The incident as a NENA EIDO document (JSON, validated by the tests against NENA's
    schema), as the caller may read it."""
    incident = await views.incident_for(svc, who, incident_id, least_ok=False)
    return JSONResponse(incident_to_eido(incident, origin=_origin(svc)))


class TakenCall(BaseModel):
    key: str
    call_key: str
    outcome: Outcome
    stream_id: str | None


class EidoAccepted(BaseModel):
    eido_id: str
    calls: list[TakenCall]


_EIDO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "A NENA EIDO document (see `yishao schema eido`).",
    }
}


@router.post(
    "/api/eido",
    status_code=202,
    response_model=EidoAccepted,
    openapi_extra=_EIDO_BODY,
    responses={200: {"model": EidoAccepted, "description": "every call was seen before"}},
)
async def post_eido(
    request: Request, svc: Svc, who: EidoPoster, centre: Centre | None = None
) -> Response:
    """Take an EIDO from another centre as calls on the intake stream (one per call component).

    The calls land at the dispatcher's own centre (an admin may name it with ``centre``,
    else it follows the EIDO's owning agency and incident type). The same EIDO posted again
    adds nothing: 200 with ``duplicate``; new calls answer 202. An invalid EIDO gets 422 naming
    the field.
    """
    authorize(who, Action.POST_EIDO, Target(centre=centre))
    if centre is None and who.role is not Role.ADMIN:
        centre = AGENCY_CENTRE[who.agency]
    body = await request.body()
    if len(body) > MAX_EIDO_BYTES:
        return _refused(413, "(root)", f"an EIDO may be at most {MAX_EIDO_BYTES} bytes")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _refused(422, "(root)", f"not JSON (line {getattr(exc, 'lineno', 1)})")
    if not isinstance(document, dict):
        return _refused(422, "(root)", "an EIDO is a JSON object")
    try:
        # Off the event loop: the first document to reach a NIEM component loads its YAML.
        calls = await asyncio.to_thread(_checked_calls, _eido(svc), document, centre)
    except InvalidEidoError as exc:
        return JSONResponse(
            {"detail": str(exc), "field": exc.field, "complaints": exc.complaints},
            status_code=422,
        )
    taken = await EidoIntake(svc.store, clock=svc.clock).take(calls)
    answer = EidoAccepted(
        eido_id=str(document.get("$id", "")),
        calls=[
            TakenCall(key=t.key, call_key=t.call_key, outcome=t.outcome, stream_id=t.stream_id)
            for t in taken
        ],
    )
    fresh = any(t.outcome is Outcome.QUEUED for t in taken)
    return JSONResponse(answer.model_dump(mode="json"), status_code=202 if fresh else 200)


def _checked_calls(
    schema: EidoSchema, document: dict[str, Any], centre: Centre | None
) -> list[EidoCall]:
    schema.validate(document)
    return eido_calls(document, centre=centre)


def _refused(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{field}: {reason}", "field": field, "complaints": [f"{field}: {reason}"]},
        status_code=status,
    )


# -- CAP -------------------------------------------------------------------------------------------
def _xml(body: bytes | str, media_type: str, **headers: str) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Response(data, media_type=f"{media_type}; charset=utf-8", headers=headers)


@router.post(
    "/api/incidents/{incident_id}/cap",
    status_code=201,
    response_class=Response,
    responses={201: {"content": {CAP_MEDIA_TYPE: {}}, "description": "the CAP 1.2 alert"}},
)
async def post_cap(
    incident_id: str,
    body: CapRequest,
    request: Request,
    svc: Svc,
    desk: Desk,
    who: CapIssuer,
) -> Response:
    """Issue (``Alert``), update or cancel a public CAP 1.2 alert about the incident.

    Answers 201 with the message itself (``application/cap+xml``); ``Location`` is its stable
    URL. ``status`` Exercise marks a drill. An Update or Cancel names ``alert_id`` unless the
    incident has only one active alert. The dispatcher's agency must be involved in it.
    """
    incident = await svc.store.get_incident(incident_id)
    if incident is None:
        raise NotFoundError(f"no incident {incident_id}")
    authorize(who, Action.ISSUE_CAP, Target(incident=incident))
    alert, stored = await desk.issue(incident_id, body, actor=who.sub)
    url = str(
        request.url_for("cap_message", alert_id=alert.alert_id, number=str(len(alert.messages)))
    )
    response = _xml(stored.xml, CAP_MEDIA_TYPE, Location=url)
    response.status_code = 201
    response.headers["X-Yishao-Alert-Id"] = alert.alert_id
    return response


@router.get("/api/incidents/{incident_id}/cap", response_model=list[AlertSummary])
async def incident_alerts(
    incident_id: str, request: Request, svc: Svc, desk: Alerts, who: IncidentReader
) -> list[AlertSummary]:
    """The incident's CAP alerts, oldest first."""
    await views.incident_for(svc, who, incident_id, least_ok=False)
    return [
        AlertSummary.of(a, url=str(request.url_for("cap_alert", alert_id=a.alert_id)))
        for a in await desk.alerts_of(incident_id)
    ]


@router.get(
    "/cap/alerts.atom",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}},
)
async def cap_feed(request: Request, desk: Alerts) -> Response:
    """Atom feed of the current public alerts (active, and cancellations of the last hour)."""
    body = atom_feed(
        await desk.recent(),
        feed_url=str(request.url_for("cap_feed")),
        alert_url=lambda alert_id: str(request.url_for("cap_alert", alert_id=alert_id)),
        now=desk.clock(),
        title="一哨群应 公共预警 / Yishao public alerts",
        author=desk.sender_names[1],
    )
    return _xml(body, ATOM_MEDIA_TYPE, **{"Cache-Control": "max-age=30"})


@router.get(
    "/cap/alerts/{alert_id}",
    response_class=Response,
    responses={200: {"content": {CAP_MEDIA_TYPE: {}}}},
)
async def cap_alert(alert_id: Annotated[str, _ALERT_ID], desk: Alerts) -> Response:
    """The alert's latest message (the Cancel, once cancelled)."""
    alert = await desk.get(alert_id)
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}")
    return _xml(alert.latest.xml, CAP_MEDIA_TYPE, **{"Cache-Control": "max-age=30"})


@router.get(
    "/cap/alerts/{alert_id}/{number}",
    response_class=Response,
    responses={200: {"content": {CAP_MEDIA_TYPE: {}}}},
)
async def cap_message(
    alert_id: Annotated[str, _ALERT_ID],
    number: Annotated[int, PathParam(ge=1, le=10_000)],
    desk: Alerts,
) -> Response:
    """The alert's n-th message (1 is the Alert); it never changes."""
    alert = await desk.get(alert_id)
    if alert is None or number > len(alert.messages):
        raise NotFoundError(f"no message {number} of alert {alert_id}")
    return _xml(
        alert.messages[number - 1].xml,
        CAP_MEDIA_TYPE,
        **{"Cache-Control": "public, max-age=86400, immutable"},
    )
