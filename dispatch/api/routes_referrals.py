"""REST routes of dispute referrals to mediation bodies (issue 15).

``POST /api/incidents/{id}/referrals`` refers a dispute (a police dispatcher or an officer on
scene, with the parties' consent); ``/api/referrals`` lists and reads them (a mediator: its
bodies'), with ``overdue`` flagged; ``POST /api/referrals/{id}/status`` is the mediation
body's update through its own scoped token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from dispatch.api import views
from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.core import referrals as core
from dispatch.core.policy import Action, Target
from dispatch.core.referrals import DisputeTopic, Referral, ReferralRefused, ReferralStatus
from dispatch.errors import InvalidInputError, NotFoundError
from dispatch.models import Principal, Role

router = APIRouter(prefix="/api", route_class=EdgeRoute)

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"
IdPath = Annotated[str, Path(pattern=_ID, description="an id (letters, digits, . _ : -)")]

Referrer = Annotated[Principal, Depends(may(Action.REFER))]
Reader = Annotated[Principal, Depends(may(Action.READ_REFERRALS))]
Mediator = Annotated[Principal, Depends(may(Action.UPDATE_REFERRAL))]


class ReferralRequest(BaseModel):
    body: str = Field(max_length=64, description="the mediation body's id")
    consent: bool | None = Field(None, description="the parties' consent: must be true")
    topic: DisputeTopic = DisputeTopic.OTHER
    note: str | None = Field(None, max_length=500)


class ReferralView(Referral):
    overdue: bool = Field(description="still open after its due time")
    body_name: str | None = None


class StatusUpdate(BaseModel):
    status: ReferralStatus = Field(description="accepted, in_mediation, resolved or failed")
    note: str | None = Field(None, max_length=500, description="e.g. the agreement reached")


def _view(svc: Svc, r: Referral, now: datetime) -> ReferralView:
    body = svc.referrals.bodies.get(r.body)
    return ReferralView(
        **r.model_dump(), overdue=core.is_overdue(r, now), body_name=body.name if body else None
    )


@router.post(
    "/incidents/{incident_id}/referrals",
    status_code=201,
    response_model=ReferralView,
    tags=["referrals"],
)
async def refer(
    incident_id: IdPath, request: ReferralRequest, svc: Svc, who: Referrer
) -> ReferralView:
    """Refer a dispute-type incident to a mediation body: 422 naming ``consent`` without the
    parties' consent or ``body`` for an unknown body; 409 for a non-dispute or closed one."""
    incident = await svc.store.get_incident(incident_id)
    if incident is None:
        raise NotFoundError(f"no incident {incident_id}")
    units = await views.own_unit(svc, who)
    authorize(who, Action.REFER, Target(incident=incident, units=units))
    try:
        referral = await svc.referrals.refer(
            incident_id,
            body=request.body,
            consent=request.consent,
            by=who.sub,
            topic=request.topic,
            note=request.note,
        )
    except ReferralRefused as exc:
        raise InvalidInputError(str(exc)) from exc
    return _view(svc, referral, svc.clock())


@router.get("/referrals", response_model=list[ReferralView], tags=["referrals"])
async def list_referrals(
    svc: Svc,
    who: Reader,
    status: ReferralStatus | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[ReferralView]:
    """Referrals, newest first (a mediator: its bodies'); ``overdue=true`` for the late ones."""
    now = svc.clock()
    out: list[ReferralView] = []
    for r in await svc.referrals.recent(limit=limit):
        if who.role is Role.MEDIATOR and r.body not in who.scope:
            continue
        if status is not None and r.status is not status:
            continue
        view = _view(svc, r, now)
        if overdue is not None and view.overdue is not overdue:
            continue
        out.append(view)
    return out


@router.get("/referrals/{referral_id}", response_model=ReferralView, tags=["referrals"])
async def get_referral(referral_id: IdPath, svc: Svc, who: Reader) -> ReferralView:
    referral = await svc.referrals.get(referral_id)
    authorize(who, Action.READ_REFERRALS, Target(mediation_body=referral.body))
    return _view(svc, referral, svc.clock())


@router.post("/referrals/{referral_id}/status", response_model=ReferralView, tags=["referrals"])
async def update_referral(
    referral_id: IdPath, update: StatusUpdate, svc: Svc, who: Mediator
) -> ReferralView:
    """The mediation body moves its referral on: referred -> accepted -> in_mediation ->
    resolved | failed (failed from any open state); any other step is refused with 409."""
    referral = await svc.referrals.get(referral_id)
    authorize(who, Action.UPDATE_REFERRAL, Target(mediation_body=referral.body))
    moved = await svc.referrals.advance(
        referral_id, update.status, by=f"mediator:{who.sub}", note=update.note
    )
    return _view(svc, moved, svc.clock())
