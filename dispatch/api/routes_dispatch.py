"""REST routes of the dispatch core: units, hospitals, rosters, recommendations, assignments,
the whistle and green-wave protection."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dispatch.api import views
from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.core import policy
from dispatch.core.assign import AssignmentRecord
from dispatch.core.policy import Action, Target
from dispatch.core.recommend import Recommendations
from dispatch.core.rosters import Duty, parse_roster_file
from dispatch.core.whistle import Whistle
from dispatch.errors import InvalidInputError, NotFoundError
from dispatch.flow.assign import AssignmentRequest
from dispatch.flow.fleet import FleetUnit, parse_hospitals
from dispatch.models import (
    WHISTLE_AGENCIES,
    Agency,
    Hospital,
    Incident,
    Principal,
    Role,
    Unit,
)

router = APIRouter(prefix="/api", route_class=EdgeRoute)

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"
IdPath = Annotated[str, Path(pattern=_ID, description="an id (letters, digits, . _ : -)")]

IncidentReader = Annotated[Principal, Depends(may(Action.READ_INCIDENT))]
UnitReader = Annotated[Principal, Depends(may(Action.READ_UNITS))]
WhistleReader = Annotated[Principal, Depends(may(Action.READ_WHISTLES))]
RosterReader = Annotated[Principal, Depends(may(Action.READ_ROSTER))]


# -- units and hospitals ----------------------------------------------------------------------
@router.get("/units", response_model=list[Unit], tags=["units"])
async def list_units(svc: Svc, who: UnitReader, agency: Agency | None = None) -> list[Unit]:
    """The units the caller may see (see the authorization model)."""
    units = await views.readable_units(svc, who)
    return [u for u in units if agency is None or u.agency is agency]


@router.put("/units/{unit_id}", response_model=Unit, tags=["units"])
async def put_unit(
    unit_id: IdPath,
    spec: FleetUnit,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.PUT_UNIT))],
) -> Unit:
    """Create or redefine a unit of the caller's own agency."""
    if spec.id != unit_id:
        raise InvalidInputError(f"id: the body's id does not match the path's {unit_id}")
    existing = await svc.store.get(Unit, svc.store.keys.unit(unit_id))
    units = (existing,) if existing is not None else ()
    authorize(who, Action.PUT_UNIT, Target(units=units, unit_agency=spec.agency))
    return await svc.fleet.put_unit(spec, actor=who.sub)


@router.get("/hospitals", response_model=list[Hospital], tags=["units"])
async def list_hospitals(svc: Svc, who: UnitReader) -> list[Hospital]:
    return await svc.fleet.hospitals()


@router.put("/hospitals", response_model=list[Hospital], tags=["units"])
async def put_hospitals(
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.PUT_HOSPITALS))],
    body: Annotated[list[dict[str, Any]], Body(max_length=1000)],
) -> list[Hospital]:
    """Add or replace hospitals (the 120 centre keeps the list)."""
    hospitals = parse_hospitals(body)
    await svc.fleet.put_hospitals(hospitals, actor=who.sub)
    return await svc.fleet.hospitals()


# -- rosters ------------------------------------------------------------------------------------
class DutyToday(BaseModel):
    day: date
    duty: list[Duty]
    missing: list[Agency] = Field(description="whistle agencies with no one on duty")


@router.get("/rosters/today", response_model=DutyToday, tags=["whistle"])
async def roster_today(svc: Svc, who: RosterReader) -> DutyToday:
    """Today's on-duty coordinators (the duty day changes at 08:00 Asia/Shanghai); a
    coordinator sees their own agency's."""
    day, duty = await svc.fleet.duty()
    agencies = [who.agency] if who.role is Role.COORDINATOR else list(WHISTLE_AGENCIES)
    return DutyToday(
        day=day,
        duty=[d for a, d in duty.items() if a in agencies],
        missing=[a for a in agencies if a in WHISTLE_AGENCIES and a not in duty],
    )


@router.put("/rosters", status_code=204, tags=["whistle"])
async def put_roster(
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.PUT_ROSTER))],
    body: Annotated[Any, Body()],
) -> None:
    """Load roster entries and rotation rules (the roster file format), of the caller's agency."""
    entries, rules = parse_roster_file(body)
    agencies = frozenset([e.agency for e in entries] + [r.agency for r in rules])
    authorize(who, Action.PUT_ROSTER, Target(roster_agencies=agencies))
    await svc.fleet.put_roster(entries, rules, actor=who.sub)


# -- incidents ------------------------------------------------------------------------------------
@router.get(
    "/incidents/{incident_id}/recommendations", response_model=Recommendations, tags=["incidents"]
)
async def recommendations(incident_id: IdPath, svc: Svc, who: IncidentReader) -> Recommendations:
    """Available units of each needed agency ranked by road travel time to the scene."""
    await views.incident_for(svc, who, incident_id, least_ok=False)
    return await svc.recommender.recommend(incident_id)


@router.post(
    "/incidents/{incident_id}/assignments",
    response_model=list[AssignmentRecord],
    status_code=201,
    tags=["incidents"],
)
async def assign(
    incident_id: IdPath,
    request: AssignmentRequest,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.ASSIGN))],
) -> list[AssignmentRecord]:
    """Assign units of the caller's agency; each gets a route and a green-wave plan."""
    units = tuple([await svc.fleet.get_unit(uid) for uid in request.unit_ids])
    authorize(
        who,
        Action.ASSIGN,
        Target(incident=await svc.assignments.incident(incident_id), units=units),
    )
    return await svc.assignments.assign(incident_id, request, actor=who.sub)


@router.get(
    "/incidents/{incident_id}/assignments",
    response_model=list[AssignmentRecord],
    tags=["incidents"],
)
async def assignments(incident_id: IdPath, svc: Svc, who: IncidentReader) -> list[AssignmentRecord]:
    incident = await views.incident_for(svc, who, incident_id, least_ok=False)
    return await svc.records.of_incident(incident)


class SplitRequest(BaseModel):
    call_key: str = Field(max_length=100, description="centre:call_id of the call to move out")


class SplitResult(BaseModel):
    original: Incident
    new: Incident


@router.post("/incidents/{incident_id}/split", response_model=SplitResult, tags=["incidents"])
async def split(
    incident_id: IdPath,
    body: SplitRequest,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.SPLIT))],
) -> SplitResult:
    """Move a wrongly merged call out into an incident of its own (the lead agency)."""
    authorize(who, Action.SPLIT, Target(incident=await svc.assignments.incident(incident_id)))
    original, new = await svc.joint.split(incident_id, body.call_key, actor=who.sub)
    return SplitResult(original=original, new=new)


class CloseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post(
    "/incidents/{incident_id}/close",
    response_model=Incident,
    tags=["incidents"],
    responses={202: {"model": Incident, "description": "a close request for the lead agency"}},
)
async def close_incident(
    incident_id: IdPath,
    body: CloseRequest,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.CLOSE))],
) -> Any:
    """Close an incident (its whistle too) and release its units; later calls open a new one.

    The lead agency closes (the agency of the centre that took the first call); another
    involved agency's dispatcher records a close request instead (202), which the lead sees.
    """
    incident = await svc.assignments.incident(incident_id)
    decision = policy.decide(who, Action.CLOSE, Target(incident=incident))
    if not decision.allowed and decision.may_request:
        asked = await svc.assignments.request_close(
            incident_id, who.agency, actor=who.sub, reason=body.reason
        )
        return JSONResponse(asked.model_dump(mode="json"), status_code=202)
    authorize(who, Action.CLOSE, Target(incident=incident))
    closed = await svc.assignments.close_incident(incident_id, actor=who.sub, reason=body.reason)
    if closed.whistle_id is not None:
        await svc.whistles.close(closed.whistle_id, actor=who.sub)
    return closed


class WhistleRequest(BaseModel):
    force: bool = False
    reason: str | None = Field(None, max_length=500)


@router.post(
    "/incidents/{incident_id}/whistle", response_model=Whistle, status_code=201, tags=["whistle"]
)
async def sound_whistle(
    incident_id: IdPath,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.SOUND_WHISTLE))],
    body: WhistleRequest | None = None,
) -> Whistle:
    """Sound the whistle (一哨群应): a 120 or 119 dispatcher summons all three coordinators."""
    body = body or WhistleRequest()
    return await svc.whistles.sound(incident_id, who, forced=body.force, reason=body.reason)


class GreenWaveEnabled(BaseModel):
    incident_id: str
    units: int


@router.post(
    "/incidents/{incident_id}/greenwave", response_model=GreenWaveEnabled, tags=["whistle"]
)
async def enable_greenwave(
    incident_id: IdPath,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.ENABLE_GREENWAVE))],
) -> GreenWaveEnabled:
    """Turn on green-wave protection for an incident's units (122 controls the signals)."""
    count = await svc.assignments.enable_greenwave(incident_id, actor=who.sub)
    return GreenWaveEnabled(incident_id=incident_id, units=count)


# -- whistles ------------------------------------------------------------------------------------
@router.get("/whistles", response_model=list[Whistle], tags=["whistle"])
async def open_whistles(svc: Svc, who: WhistleReader) -> list[Whistle]:
    """Open whistles the caller may see (a coordinator: those summoning them)."""
    return await views.readable_whistles(svc, who)


@router.get("/whistles/{whistle_id}", response_model=Whistle, tags=["whistle"])
async def get_whistle(whistle_id: IdPath, svc: Svc, who: WhistleReader) -> Whistle:
    whistle = await svc.whistles.get(whistle_id)
    if who.role is Role.COORDINATOR and who.sub not in views.summons_of(whistle):
        raise NotFoundError(f"no whistle {whistle_id}")
    return whistle


@router.post("/whistles/{whistle_id}/ack", response_model=Whistle, tags=["whistle"])
async def ack_whistle(
    whistle_id: IdPath,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.ACK_WHISTLE))],
) -> Whistle:
    """The summoned coordinator acknowledges (the token's subject and agency are the summons')."""
    whistle = await svc.whistles.get(whistle_id)
    summons = tuple((s.coordinator, s.agency) for s in whistle.summons)
    authorize(who, Action.ACK_WHISTLE, Target(summons=summons))
    return await svc.whistles.ack(whistle_id, who)
