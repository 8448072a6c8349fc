"""The figures a command centre reports: ``GET /api/kpis`` (JSON) and ``/api/kpis.csv``.

Read from the system of record (PostgreSQL); real incidents only unless ``exercise=true``
asks for the drills' instead. 503 when the service runs without ``YISHAO_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dispatch.api.deps import Svc, authorize, client_address, may
from dispatch.api.edge import EdgeRoute
from dispatch.core.kpis import GroupBy
from dispatch.core.policy import Action, Target
from dispatch.errors import InvalidInputError, UnavailableError
from dispatch.models import Agency, CallType, Principal
from dispatch.records.kpis import CSV_COLUMNS, KpiQuery, csv_rows
from dispatch.records.service import Records

router = APIRouter(prefix="/api", route_class=EdgeRoute)
page_router = APIRouter(route_class=EdgeRoute)
Reader = Annotated[Principal, Depends(may(Action.READ_KPIS))]


def _query(
    svc: Svc,
    start: Annotated[datetime | None, Query(alias="from", description="first calls from")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="first calls before")] = None,
    agency: Agency | None = None,
    type: CallType | None = None,
    area: Annotated[str | None, Query(pattern=r"^-?\d{1,3}\.\d{2},-?\d{1,3}\.\d{2}$")] = None,
    group_by: GroupBy | None = None,
    exercise: bool = False,
) -> KpiQuery:
    for name, value in (("from", start), ("to", end)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InvalidInputError(f"{name}: must carry a UTC offset")
    if start is not None and end is not None and end <= start:
        raise InvalidInputError("to: must be after from")
    return KpiQuery(
        start=start,
        end=end,
        agency=None if agency is None else agency.value,
        call_type=None if type is None else type.value,
        area=area,
        exercise=exercise,
        group_by=group_by,
        timezone=svc.settings.timezone,
    )


Q = Annotated[KpiQuery, Depends(_query)]


def _records(svc: Svc) -> Records:
    if svc.record is None:
        raise UnavailableError("no system of record here (YISHAO_DATABASE_URL is unset)")
    return svc.record


@router.get("/kpis", tags=["figures"])
async def kpis(svc: Svc, who: Reader, q: Q) -> dict[str, Any]:
    """Incidents, NFPA 1225/1710 intervals (median, p90 in seconds) overall and per agency,
    whistles, green wave, weekly and monthly trends with year-over-year change; ``group_by``
    adds the intervals by agency, call type, area cell or hour."""
    return await _records(svc).figures(q)


@router.get("/kpis.csv", tags=["figures"])
async def kpis_csv(svc: Svc, who: Reader, q: Q) -> Response:
    """The intervals of ``/api/kpis`` as CSV: one row per group (``group_by``, else agency)
    and interval."""
    fig = await _records(svc).figures(q)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(fig))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="kpis.csv"'},
    )


@page_router.get("/kpis", response_class=HTMLResponse, tags=["figures"])
async def kpis_page(
    request: Request,
    svc: Svc,
    q: Q,
    token: Annotated[str, Query(max_length=8192, description="a bearer token")] = "",
) -> HTMLResponse:
    """The report page (tables and plots of ``/api/kpis``); a browser passes its token as
    ``?token=`` (scrubbed from the access log) or an ``Authorization`` header."""
    from dispatch.api._kpis_page import render

    bearer = request.headers.get("authorization", "")
    given = bearer[7:] if bearer.lower().startswith("bearer ") else token
    who = await svc.access.authenticate(given, client=client_address(request))
    authorize(who, Action.READ_KPIS, Target())
    figs = await _records(svc).figures(q)
    html = await asyncio.to_thread(render, figs, title="Yishao: response figures")
    return HTMLResponse(html)
