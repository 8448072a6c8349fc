"""Drill reports: the drill uploads its JSON and HTML; screens read them back.

The service does not import the simulators (they talk to it only through its interfaces):
the drill renders its own page and stores it here, so ``/reports/{drill_id}`` works on any
instance and survives restarts.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator

from dispatch.api.deps import Svc, authorize, client_address, may
from dispatch.api.edge import EdgeRoute
from dispatch.core.policy import Action, Target
from dispatch.errors import NotFoundError
from dispatch.models import Principal

router = APIRouter(route_class=EdgeRoute)
MAX_HTML = 8 * 1024 * 1024
_ID = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"

Reader = Annotated[Principal, Depends(may(Action.READ_REPORTS))]
Writer = Annotated[Principal, Depends(may(Action.PUT_REPORT))]


class ReportUpload(BaseModel):
    summary: dict[str, Any]
    report: dict[str, Any]
    html: str = Field(max_length=MAX_HTML)

    @field_validator("summary", "report", "html")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL's text and jsonb cannot hold U+0000: refused here, named, not a 503 there.
        if _has_nul(value):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class ReportInfo(BaseModel):
    id: str
    stored_at: datetime
    stored_by: str
    summary: dict[str, Any]


@router.put("/api/reports/{drill_id}", response_model=ReportInfo, tags=["drills"])
async def put_report(drill_id: str, body: ReportUpload, svc: Svc, who: Writer) -> ReportInfo:
    """Store a drill's report (admin tokens; the drill mints one)."""
    _check(drill_id)
    info = ReportInfo(id=drill_id, stored_at=svc.clock(), stored_by=who.sub, summary=body.summary)
    if svc.record is not None:
        # The record of the exercise first: a report that PostgreSQL refused is not stored.
        await svc.record.put_report(
            drill_id,
            info=info.model_dump(mode="json"),
            report=body.report,
            html=body.html,
            stored_at=info.stored_at,
        )
    await svc.store.put_report(
        drill_id,
        info=info.model_dump_json(),
        report=orjson.dumps(body.report).decode(),
        html=body.html,
        stored_at=info.stored_at,
    )
    return info


@router.get("/api/reports", response_model=list[ReportInfo], tags=["drills"])
async def list_reports(svc: Svc, who: Reader) -> list[ReportInfo]:
    """The newest drill reports, newest first."""
    return [ReportInfo.model_validate_json(raw) for raw in await svc.store.report_infos()]


@router.get("/api/reports/{drill_id}", tags=["drills"])
async def get_report(drill_id: str, svc: Svc, who: Reader) -> Any:
    """A drill report as JSON."""
    _check(drill_id)
    raw = await svc.store.report_field(drill_id, "json")
    if raw is None:
        raise NotFoundError(f"no report {drill_id}")
    return orjson.loads(raw)


@router.get("/reports/{drill_id}", response_class=HTMLResponse, tags=["drills"])
async def report_page(
    drill_id: str,
    request: Request,
    svc: Svc,
    token: Annotated[str, Query(max_length=8192, description="a bearer token")] = "",
) -> HTMLResponse:
    """The drill's HTML page; a browser passes its token as ``?token=`` (scrubbed from the
    access log), or an ``Authorization`` header."""
    bearer = request.headers.get("authorization", "")
    given = bearer[7:] if bearer.lower().startswith("bearer ") else token
    who = await svc.access.authenticate(given, client=client_address(request))
    authorize(who, Action.READ_REPORTS, Target())
    _check(drill_id)
    raw = await svc.store.report_field(drill_id, "html")
    if raw is None:
        raise NotFoundError(f"no report {drill_id}")
    return HTMLResponse(raw)


def _check(drill_id: str) -> None:
    if not re.match(_ID, drill_id):
        raise NotFoundError(f"no report {drill_id[:64]!r}")
