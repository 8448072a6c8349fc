"""REST routes of compounds and their property teams (issue 15).

``/api/compounds`` lists, reads and puts compounds (a property account: its own); an
incident's ``/property`` route offers the compound's team to the dispatcher, ``/property/join``
and ``/property/release`` are the police dispatcher's, ``/property/status`` the joined team's
answer. Every read and action of a property account is audited (``property.access``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, Field

from dispatch.api import views
from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.core import policy
from dispatch.core.compounds import Compound, CompoundError
from dispatch.core.policy import Action, Target
from dispatch.errors import ForbiddenError, InvalidInputError, NotFoundError
from dispatch.models import Incident, Principal, PropertyStatus, Role

router = APIRouter(prefix="/api", route_class=EdgeRoute)

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"
IdPath = Annotated[str, Path(pattern=_ID, description="an id (letters, digits, . _ : -)")]

CompoundReader = Annotated[Principal, Depends(may(Action.READ_COMPOUNDS))]
CompoundWriter = Annotated[Principal, Depends(may(Action.PUT_COMPOUND))]
Joiner = Annotated[Principal, Depends(may(Action.JOIN_PROPERTY))]
Team = Annotated[Principal, Depends(may(Action.PROPERTY_STATUS))]


class CompoundView(BaseModel):
    """A compound as listed: a property account sees its own without the member list."""

    id: str
    name: str
    company: str | None
    contact: str | None
    members: list[str]
    gates: list[dict[str, Any]]
    geometry: dict[str, Any]

    @classmethod
    def of(cls, c: Compound, who: Principal) -> CompoundView:
        return cls(
            id=c.id,
            name=c.name,
            company=c.company,
            contact=c.contact,
            members=[] if who.role is Role.PROPERTY else list(c.members),
            gates=[g.model_dump() for g in c.gates],
            geometry=c.geometry,
        )


def _mine(who: Principal, compound_id: str) -> bool:
    return who.role is not Role.PROPERTY or compound_id in who.scope


@router.get("/compounds", response_model=list[CompoundView], tags=["compounds"])
async def list_compounds(svc: Svc, who: CompoundReader) -> list[CompoundView]:
    """Every compound (a property account: those of its token scope)."""
    found = [c for c in await svc.compounds.all() if _mine(who, c.id)]
    await svc.property_desk.audit(who, "GET /api/compounds", count=len(found))
    return [CompoundView.of(c, who) for c in found]


@router.get("/compounds/{compound_id}", response_model=CompoundView, tags=["compounds"])
async def get_compound(compound_id: IdPath, svc: Svc, who: CompoundReader) -> CompoundView:
    allowed = _mine(who, compound_id)
    await svc.property_desk.audit(who, f"GET /api/compounds/{compound_id}", allowed=allowed)
    if not allowed:
        raise ForbiddenError(f"compound {compound_id} is not in your scope")
    compound = await svc.compounds.get(compound_id)
    if compound is None:
        raise NotFoundError(f"no compound {compound_id}")
    return CompoundView.of(compound, who)


@router.put("/compounds/{compound_id}", response_model=CompoundView, tags=["compounds"])
async def put_compound(
    compound_id: IdPath,
    svc: Svc,
    who: CompoundWriter,
    body: Annotated[dict[str, Any], Body(description="a GeoJSON Feature, or a compound")],
) -> CompoundView:
    """Create or replace one compound: a GeoJSON Feature (``properties`` with ``name``, ...)
    or the compound's fields with ``geometry``. The path names the id."""
    fields = dict(body.get("properties") or {}) if body.get("type") == "Feature" else dict(body)
    if body.get("type") == "Feature":
        fields["geometry"] = body.get("geometry")
    fields["id"] = compound_id
    try:
        compound = Compound.model_validate(fields)
    except (CompoundError, ValueError) as exc:
        raise InvalidInputError(f"compound {compound_id}: {_reason(exc)}") from exc
    await svc.compounds.put([compound], actor=who.sub, source="put")
    return CompoundView.of(compound, who)


def _reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return f"{where}: {first.get('msg', '')}"
    return str(exc)


class PropertyOffer(BaseModel):
    """The compound's team as offered to the dispatcher for an incident."""

    incident_id: str
    compound_id: str | None
    compound_name: str | None
    company: str | None
    contact: str | None
    team_size: int
    offerable: bool
    reason: str
    automatic: bool = Field(description="the plan joins the team without a dispatcher")
    join: dict[str, Any] | None = Field(description="the team's part, once joined")


@router.get("/incidents/{incident_id}/property", response_model=PropertyOffer, tags=["property"])
async def property_offer(incident_id: IdPath, svc: Svc, who: Joiner) -> PropertyOffer:
    """Whether the incident's compound team can be offered, and its part if joined."""
    incident, compound, decided = await svc.property_desk.offer(incident_id)
    join = incident.property_join
    return PropertyOffer(
        incident_id=incident.id,
        compound_id=incident.compound_id,
        compound_name=compound.name if compound else None,
        company=compound.company if compound else None,
        contact=compound.contact if compound else None,
        team_size=len(compound.members) if compound else 0,
        offerable=decided.offerable,
        reason=decided.reason,
        automatic=svc.settings.property_auto_join,
        join=join.model_dump(mode="json") if join else None,
    )


class JoinRequest(BaseModel):
    task: str | None = Field(None, max_length=500, description="what the team is asked to do")


@router.post("/incidents/{incident_id}/property/join", response_model=Incident, tags=["property"])
async def property_join(
    incident_id: IdPath, svc: Svc, who: Joiner, body: JoinRequest | None = None
) -> Incident:
    """Join the compound's security team to the incident (409 when it cannot be offered);
    the team's terminal is pushed ``property.joined`` with the least view."""
    return await svc.property_desk.join(
        incident_id, actor=who.sub, task=body.task if body else None
    )


@router.post(
    "/incidents/{incident_id}/property/release", response_model=Incident, tags=["property"]
)
async def property_release(incident_id: IdPath, svc: Svc, who: Joiner) -> Incident:
    """Release the team: its access to the incident ends (409 when not joined)."""
    return await svc.property_desk.release(incident_id, actor=who.sub)


class StatusAnswer(BaseModel):
    status: PropertyStatus = Field(description="accepted, on_scene, holding, handed_over or closed")
    outcome: str | None = Field(None, max_length=500, description="required with closed")


@router.post("/incidents/{incident_id}/property/status", response_model=Incident, tags=["property"])
async def property_status(
    incident_id: IdPath, answer: StatusAnswer, svc: Svc, who: Team
) -> Incident:
    """The joined team's status answer (its token scope names the compound). 409 for a
    transition not allowed; 422 naming the field for a status it does not answer or a close
    without outcome."""
    what = f"POST /api/incidents/{incident_id}/property/status {answer.status.value}"
    incident = await svc.store.get_incident(incident_id)
    if incident is None:
        await svc.property_desk.audit(who, what, incident_id=incident_id, allowed=False)
        raise NotFoundError(f"no incident {incident_id}")
    target = Target(incident=incident, compound_id=views.compound_of(incident))
    decision = policy.decide(who, Action.PROPERTY_STATUS, target)
    await svc.property_desk.audit(who, what, incident_id=incident_id, allowed=decision.allowed)
    authorize(who, Action.PROPERTY_STATUS, target)
    try:
        updated = await svc.property_desk.answer(
            incident_id, answer.status, actor=f"property:{who.sub}", outcome=answer.outcome
        )
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    return policy.redact(who, updated)
