"""The pages (console ``/``, crew terminal ``/terminal``, coordinator ``/coordinator``) and
what they read beyond the core API: ``/api/me``, ``/api/map``, places, routes, figures, duty.

The pages are static files built by ``make web`` into ``web/dist`` (``YISHAO_WEB_DIR``
elsewhere). Without a build, each page answers 503 with the command that builds it.

What a caller may do is decided here in one function, :func:`capabilities`, from the same role
and agency rules the service enforces; the pages show only what it allows and hold no copy of
the rules.
"""

from __future__ import annotations

import asyncio
import gzip
import mimetypes
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field

from dispatch.api import views
from dispatch.api._console_figures import FiguresDesk, TodayFigures
from dispatch.api._console_map import RoadLayer, parse_bbox
from dispatch.api._console_state import RouteView, records_of, route_views
from dispatch.api.deps import Svc, Who, may
from dispatch.api.edge import EdgeRoute
from dispatch.core import policy
from dispatch.core.audience import sees_everything
from dispatch.core.policy import Action
from dispatch.core.rosters import Duty, duty_day
from dispatch.errors import NoGraphError
from dispatch.models import AGENCY_CENTRE, WHISTLE_AGENCIES, Agency, Hospital, Principal, Role
from dispatch.settings import Settings

router = APIRouter(route_class=EdgeRoute)

Reader = Annotated[Principal, Depends(may(Action.READ_INCIDENT))]

_PAGES = {"/": "index.html", "/terminal": "terminal.html", "/coordinator": "coordinator.html"}
_SOURCE_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"


# -- what a principal may do ----------
class Capabilities(BaseModel):
    """What the caller's token allows, for the pages to offer only that."""

    see_all: bool = Field(description="every event and the live positions of every unit")
    read_incidents: bool = Field(description="incident lists, audit trails, recommendations")
    post_calls: bool
    assign: bool
    whistle: bool = Field(description="sound the whistle (120 and 119 dispatchers)")
    greenwave: bool = Field(description="turn on green-wave protection (122 dispatchers)")
    close: bool
    split: bool
    ack: bool = Field(description="ack a whistle summons (coordinators)")
    drive: bool = Field(description="send positions and status for the token's unit")
    compounds: list[str] = Field(description="compounds whose incidents a property team sees")
    edit_hospitals: bool
    edit_roster: bool
    actions: dict[str, bool] = Field(
        description="every action of the authorization model -> whether this token may ask"
    )


def capabilities(who: Principal) -> Capabilities:
    """A page's offers, read off the authorization model (:mod:`dispatch.core.policy`): what
    the token may ever ask for; the service still checks each object when it is asked."""
    may_do = policy.capabilities(who)
    return Capabilities(
        see_all=who.role is Role.ADMIN or sees_everything(who.role, who.agency),
        read_incidents=may_do[Action.READ_INCIDENT],
        post_calls=may_do[Action.POST_CALL],
        assign=may_do[Action.ASSIGN],
        whistle=may_do[Action.SOUND_WHISTLE],
        greenwave=may_do[Action.ENABLE_GREENWAVE],
        close=may_do[Action.CLOSE],
        split=may_do[Action.SPLIT],
        ack=may_do[Action.ACK_WHISTLE],
        drive=may_do[Action.TERMINAL_POSITION],
        compounds=list(who.scope) if who.role is Role.PROPERTY else [],
        edit_hospitals=may_do[Action.PUT_HOSPITALS],
        edit_roster=may_do[Action.PUT_ROSTER],
        actions=may_do,
    )


class MapSettings(BaseModel):
    tile_url: str | None = Field(description="raster tile template, if the centre has a server")
    tile_attribution: str | None
    graph: str | None = Field(description="the loaded road graph")
    bounds: tuple[float, float, float, float] | None = Field(description="[w, s, e, n]")


class Me(BaseModel):
    sub: str
    role: Role
    agency: Agency
    centre: str | None = Field(description="the agency's call centre (122/120/119), if any")
    scope: list[str]
    expires_at: int = Field(description="token expiry, epoch seconds")
    page: str = Field(description="the page made for this role")
    can: Capabilities
    map: MapSettings
    whistle_ack_timeout_s: float


def _page_for(role: Role) -> str:
    if role is Role.COORDINATOR:
        return "/coordinator"
    if role in (Role.TERMINAL, Role.PROPERTY):
        return "/terminal"
    return "/"


def _roads(request: Request, svc: Svc) -> RoadLayer | None:
    if svc.router is None:
        return None
    layer: RoadLayer | None = getattr(request.app.state, "console_roads", None)
    if layer is None or layer.graph is not svc.router.graph:
        layer = RoadLayer(svc.router.graph)
        request.app.state.console_roads = layer
    return layer


@router.get("/api/me", response_model=Me, tags=["console"])
async def me(request: Request, svc: Svc, who: Who) -> Me:
    """The token's principal, what it may do, and the map settings of this service."""
    roads = _roads(request, svc)
    centre = AGENCY_CENTRE.get(who.agency)
    return Me(
        sub=who.sub,
        role=who.role,
        agency=who.agency,
        centre=centre.value if centre else None,
        scope=list(who.scope),
        expires_at=who.exp,
        page=_page_for(who.role),
        can=capabilities(who),
        map=MapSettings(
            tile_url=svc.settings.tile_url,
            tile_attribution=svc.settings.tile_attribution,
            graph=svc.graph_name,
            bounds=roads.bounds if roads else None,
        ),
        whistle_ack_timeout_s=svc.settings.whistle_ack_timeout_s,
    )


# -- the map ----------
@router.get("/api/map", tags=["console"], response_class=Response)
async def road_map(
    request: Request,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.READ_MAP))],
    zoom: Annotated[float, Query(ge=0, le=22, description="map zoom level")] = 13,
    bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
) -> Response:
    """Roads of the loaded graph as GeoJSON, simplified for ``zoom`` and cut to ``bbox``.

    Minor roads appear from zoom 14; properties ``r`` (rank 0 motorway .. 5 minor) and ``n``
    (name). 503 when no road graph is loaded; 422 for a malformed bbox.
    """
    try:
        box = parse_bbox(bbox)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"bbox: {exc}") from exc
    roads = _roads(request, svc)
    if roads is None:
        raise NoGraphError("no road graph is loaded (YISHAO_GRAPH)")
    # Off the event loop: the first request of a zoom band builds it (a fraction of a second
    # on a city graph), and the push hub must not stall meanwhile.
    body = await asyncio.to_thread(roads.geojson, zoom, box)
    headers = {"Cache-Control": "private, max-age=300", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > 1024:
        body = await asyncio.to_thread(gzip.compress, body, 5)
        headers["Content-Encoding"] = "gzip"
    return Response(content=body, media_type="application/geo+json", headers=headers)


class Station(BaseModel):
    name: str
    agency: Agency
    lat: float
    lon: float
    units: list[str]


class Places(BaseModel):
    hospitals: list[Hospital]
    stations: list[Station]


@router.get("/api/map/places", response_model=Places, tags=["console"])
async def places(svc: Svc, who: Annotated[Principal, Depends(may(Action.READ_MAP))]) -> Places:
    """Hospitals and stations (from the fleet's home stations) for the map layers."""
    hospitals = await svc.fleet.hospitals()
    stations: dict[tuple[str, str], Station] = {}
    for unit in await svc.fleet.units():
        if unit.station_lat is None or unit.station_lon is None:
            continue
        name = unit.station or f"{unit.station_lat:.4f},{unit.station_lon:.4f}"
        key = (unit.agency.value, name)
        found = stations.get(key)
        if found is None:
            stations[key] = Station(
                name=name,
                agency=unit.agency,
                lat=unit.station_lat,
                lon=unit.station_lon,
                units=[unit.id],
            )
        else:
            found.units.append(unit.id)
    return Places(hospitals=hospitals, stations=list(stations.values()))


# -- routes and signals ----------
@router.get("/api/console/routes", response_model=list[RouteView], tags=["console"])
async def console_routes(
    svc: Svc, who: Reader, incident: Annotated[str | None, Query(max_length=64)] = None
) -> list[RouteView]:
    """Routes of the assigned units of the open incidents the caller may read (or of one
    incident), each signal with its green-wave status now."""
    if incident is not None:
        incidents = [await views.incident_for(svc, who, incident, least_ok=False)]
    else:
        incidents = await views.readable(svc, who, await svc.store.open_incidents())
        # Routes are units' data: not a property team's.
        incidents = [] if who.role is Role.PROPERTY else incidents
    return await route_views(svc.store, await records_of(svc.store, incidents))


class MyAssignment(BaseModel):
    unit_id: str
    route: RouteView | None = Field(description="None while the unit has no assignment")


@router.get("/api/console/assignment", response_model=MyAssignment, tags=["console"])
async def my_assignment(
    svc: Svc, who: Annotated[Principal, Depends(may(Action.READ_UNITS))]
) -> MyAssignment:
    """A terminal's own assignment (the token's unit): its legs and the green-wave status of
    their signals."""
    # Only a terminal's subject is a unit: other screens have no assignment of their own.
    record = await svc.records.get(who.sub) if who.role is Role.TERMINAL else None
    if record is None:
        return MyAssignment(unit_id=who.sub, route=None)
    views = await route_views(svc.store, [record])
    return MyAssignment(unit_id=who.sub, route=views[0])


# -- figures and duty ----------
@router.get("/api/console/today", response_model=TodayFigures, tags=["console"])
async def today(
    request: Request, svc: Svc, who: Annotated[Principal, Depends(may(Action.READ_KPIS))]
) -> TodayFigures:
    """Today's figures: incidents, whistles, mean arrival, green-wave signals and time saved."""
    desk: FiguresDesk | None = getattr(request.app.state, "console_figures", None)
    if desk is None:
        delay = svc.router.profile.signal_delay_s if svc.router is not None else 0.0
        desk = FiguresDesk(svc.store, clock=svc.clock, signal_delay_s=delay)
        request.app.state.console_figures = desk
    return await desk.today()


class DutyDay(BaseModel):
    day: str
    duty: list[Duty]
    missing: list[Agency]


@router.get("/api/console/duty", response_model=list[DutyDay], tags=["console"])
async def duty(
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.READ_ROSTER))],
    days: Annotated[int, Query(ge=1, le=14)] = 2,
) -> list[DutyDay]:
    """The roster from today's duty day on (default today and tomorrow; 08:00 shift change);
    a coordinator sees their own agency's."""
    first = duty_day(svc.clock())
    agencies = [who.agency] if who.role is Role.COORDINATOR else list(WHISTLE_AGENCIES)
    out: list[DutyDay] = []
    for offset in range(days):
        day, on = await svc.fleet.duty(first + timedelta(days=offset))
        out.append(
            DutyDay(
                day=day.isoformat(),
                duty=[d for a, d in on.items() if a in agencies],
                missing=[a for a in agencies if a in WHISTLE_AGENCIES and a not in on],
            )
        )
    return out


# -- the pages ----------
def web_dir(settings: Settings) -> Path:
    """Where the built pages are: ``YISHAO_WEB_DIR`` or ``web/dist`` of the source tree."""
    return settings.web_dir if settings.web_dir is not None else _SOURCE_DIST


_NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>Yishao: pages not built</title>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em">
<h1>The Yishao pages are not built yet</h1>
<p>This service serves its console, crew terminal and coordinator pages from
<code>{where}</code>, which has no <code>{page}</code>.</p>
<p>Build them once (Node.js 20 and npm are needed), then reload this page:</p>
<pre style="background:#eee;padding:1em">make web
# or: cd web &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>Elsewhere, point <code>YISHAO_WEB_DIR</code> at a built <code>dist</code> folder.
The API works without the pages: <a href="/docs">/docs</a>.</p>
</body></html>
"""


def _page(name: str) -> Callable[..., Awaitable[Response]]:
    async def page(svc: Svc) -> Response:
        path = web_dir(svc.settings) / name
        if not path.is_file():
            return HTMLResponse(
                _NOT_BUILT.format(where=web_dir(svc.settings), page=name), status_code=503
            )
        # The page names hashed assets: it must be re-read after every build.
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})

    return page


for _route, _file in _PAGES.items():
    router.add_api_route(
        _route, _page(_file), methods=["GET"], include_in_schema=False, response_class=HTMLResponse
    )


@router.get("/assets/{path:path}", include_in_schema=False)
async def asset(path: str, svc: Svc) -> Response:
    """A built asset (hashed file names, so cached for good)."""
    root = (web_dir(svc.settings) / "assets").resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return Response(status_code=404)
    media_type, _enc = mimetypes.guess_type(target.name)
    return FileResponse(
        target,
        media_type=media_type or "application/octet-stream",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
