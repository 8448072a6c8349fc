"""REST routes of the dispatch core: units, hospitals, rosters, recommendations, assignments,
the whistle and green-wave protection."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from dispatch.api.deps import Svc, require
from dispatch.auth import Principal
from dispatch.core.assign import AssignmentRecord
from dispatch.core.recommend import Recommendations
from dispatch.core.rosters import Duty, parse_roster_file
from dispatch.core.whistle import Whistle
from dispatch.errors import ConflictError, ForbiddenError
from dispatch.flow.assign import AssignmentRequest
from dispatch.flow.fleet import FleetUnit, parse_hospitals
from dispatch.models import WHISTLE_AGENCIES, Agency, Hospital, Incident, Role, Unit

router = APIRouter(prefix="/api")

Reader = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.COORDINATOR, Role.OBSERVER))]
Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER))]
Coordinator = Annotated[Principal, Depends(require(Role.COORDINATOR))]
Admin = Annotated[Principal, Depends(require())]


# -- units and hospitals ----------------------------------------------------------------------
@router.get("/units", response_model=list[Unit], tags=["units"])
async def list_units(svc: Svc, who: Reader, agency: Agency | None = None) -> list[Unit]:
    return await svc.fleet.units(agency=agency)


@router.put("/units/{unit_id}", response_model=Unit, tags=["units"])
async def put_unit(unit_id: str, spec: FleetUnit, svc: Svc, who: Dispatcher) -> Unit:
    """Create or redefine a unit (a dispatcher of the unit's own agency, or an admin)."""
    if spec.id != unit_id:
        raise ConflictError(f"body id {spec.id} does not match the path's {unit_id}")
    if who.role is not Role.ADMIN and who.agency is not spec.agency:
        raise ForbiddenError(
            f"a {who.agency.value} dispatcher cannot define {spec.agency.value} units"
        )
    return await svc.fleet.put_unit(spec, actor=who.sub)


@router.get("/hospitals", response_model=list[Hospital], tags=["units"])
async def list_hospitals(svc: Svc, who: Reader) -> list[Hospital]:
    return await svc.fleet.hospitals()


@router.put("/hospitals", response_model=list[Hospital], tags=["units"])
async def put_hospitals(
    svc: Svc, who: Dispatcher, body: Annotated[list[dict[str, Any]], Body()]
) -> list[Hospital]:
    """Add or replace hospitals (an EMS dispatcher or an admin)."""
    if who.role is not Role.ADMIN and who.agency is not Agency.EMS:
        raise ForbiddenError("only the 120 centre keeps the hospital list")
    hospitals = parse_hospitals(body)
    await svc.fleet.put_hospitals(hospitals, actor=who.sub)
    return await svc.fleet.hospitals()


# -- rosters ------------------------------------------------------------------------------------
class DutyToday(BaseModel):
    day: date
    duty: list[Duty]
    missing: list[Agency] = Field(description="whistle agencies with no one on duty")


@router.get("/rosters/today", response_model=DutyToday, tags=["whistle"])
async def roster_today(svc: Svc, who: Reader) -> DutyToday:
    """Today's on-duty coordinators (the duty day changes at 08:00 Asia/Shanghai)."""
    day, duty = await svc.fleet.duty()
    return DutyToday(
        day=day,
        duty=list(duty.values()),
        missing=[a for a in WHISTLE_AGENCIES if a not in duty],
    )


@router.put("/rosters", status_code=204, tags=["whistle"])
async def put_roster(svc: Svc, who: Admin, body: Annotated[Any, Body()]) -> None:
    """Load roster entries and rotation rules (the roster file format)."""
    entries, rules = parse_roster_file(body)
    await svc.fleet.put_roster(entries, rules, actor=who.sub)


# -- incidents ------------------------------------------------------------------------------------
@router.get(
    "/incidents/{incident_id}/recommendations", response_model=Recommendations, tags=["incidents"]
)
async def recommendations(incident_id: str, svc: Svc, who: Reader) -> Recommendations:
    """Available units of each needed agency ranked by road travel time to the scene."""
    return await svc.recommender.recommend(incident_id)


@router.post(
    "/incidents/{incident_id}/assignments",
    response_model=list[AssignmentRecord],
    status_code=201,
    tags=["incidents"],
)
async def assign(
    incident_id: str, request: AssignmentRequest, svc: Svc, who: Dispatcher
) -> list[AssignmentRecord]:
    """Assign one or several units; each gets a route and a green-wave plan."""
    return await svc.assignments.assign(incident_id, request, actor=who.sub)


@router.get(
    "/incidents/{incident_id}/assignments",
    response_model=list[AssignmentRecord],
    tags=["incidents"],
)
async def assignments(incident_id: str, svc: Svc, who: Reader) -> list[AssignmentRecord]:
    return await svc.records.of_incident(await svc.assignments.incident(incident_id))


class SplitRequest(BaseModel):
    call_key: str = Field(description="centre:call_id of the call to move out")


class SplitResult(BaseModel):
    original: Incident
    new: Incident


@router.post("/incidents/{incident_id}/split", response_model=SplitResult, tags=["incidents"])
async def split(incident_id: str, body: SplitRequest, svc: Svc, who: Dispatcher) -> SplitResult:
    """Move a wrongly merged call out into an incident of its own."""
    original, new = await svc.joint.split(incident_id, body.call_key, actor=who.sub)
    return SplitResult(original=original, new=new)


class CloseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/incidents/{incident_id}/close", response_model=Incident, tags=["incidents"])
async def close_incident(
    incident_id: str, body: CloseRequest, svc: Svc, who: Dispatcher
) -> Incident:
    """Close an incident (its whistle too) and release its units; later calls open a new one."""
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
    incident_id: str, svc: Svc, who: Dispatcher, body: WhistleRequest | None = None
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
async def enable_greenwave(incident_id: str, svc: Svc, who: Dispatcher) -> GreenWaveEnabled:
    """Turn on green-wave protection for an incident's units (122 controls the signals)."""
    if who.role is not Role.ADMIN and who.agency is not Agency.TRAFFIC:
        raise ForbiddenError("only the 122 traffic centre turns on green-wave protection")
    count = await svc.assignments.enable_greenwave(incident_id, actor=who.sub)
    return GreenWaveEnabled(incident_id=incident_id, units=count)


# -- whistles ------------------------------------------------------------------------------------
@router.get("/whistles", response_model=list[Whistle], tags=["whistle"])
async def open_whistles(svc: Svc, who: Reader) -> list[Whistle]:
    return await svc.whistles.open_whistles()


@router.get("/whistles/{whistle_id}", response_model=Whistle, tags=["whistle"])
async def get_whistle(whistle_id: str, svc: Svc, who: Reader) -> Whistle:
    return await svc.whistles.get(whistle_id)


@router.post("/whistles/{whistle_id}/ack", response_model=Whistle, tags=["whistle"])
async def ack_whistle(whistle_id: str, svc: Svc, who: Coordinator) -> Whistle:
    """The summoned coordinator acknowledges (the token's subject must be the one summoned)."""
    return await svc.whistles.ack(whistle_id, who)
