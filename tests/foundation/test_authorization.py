"""The authorization model, walked: every route and websocket message, every role x agency.

A real server and Redis hold one world: a crash that 122 took first (the lead agency) and 120
joined, so traffic, EMS and fire work it; the whistle summoned one coordinator of each; an
ambulance is assigned to it; one unit of every agency. Every principal (8 roles x 5
agencies, each with the subject and scope that make its object checks meaningful) asks
every route and sends every websocket message; the answer must be 403 (or 4403) exactly when
``dispatch.core.policy`` says no. A route missing from the table fails the test: a new route
must say what it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
import redis as sync_redis
from fastapi.routing import APIRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dispatch.api import create_app
from dispatch.api.deps import May
from dispatch.auth import mint
from dispatch.core import policy
from dispatch.core.policy import Action, Target
from dispatch.core.rosters import RosterEntry
from dispatch.flow.fleet import FleetUnit, stage_unit
from dispatch.infra.store import Store
from dispatch.models import (
    Agency,
    CallEvent,
    CallType,
    Centre,
    Incident,
    Principal,
    Role,
    Unit,
    UnitStatus,
    UnitType,
)
from dispatch.settings import Settings
from tests.conftest import FakeClock, make_stack
from tests.utils import TEST_SECRET, ServerThread, recently

SCENE = (30.0495, 119.9601)
COORDINATORS = {Agency.TRAFFIC: "li.122", Agency.EMS: "wang.120", Agency.FIRE: "zhao.119"}
UNITS = {
    Agency.TRAFFIC: ("T1", UnitType.TRAFFIC_POLICE_CAR),
    Agency.EMS: ("A1", UnitType.AMBULANCE),
    Agency.FIRE: ("F1", UnitType.FIRE_RESCUE),
    Agency.POLICE: ("P1", UnitType.PATROL_CAR),
    Agency.PROPERTY: ("S1", UnitType.PROPERTY_SECURITY),
}


def principal(role: Role, agency: Agency) -> Principal:
    """Each role's principal with the subject and scope its object checks look at."""
    sub = {
        Role.COORDINATOR: COORDINATORS.get(agency, f"coord-{agency.value}"),
        Role.TERMINAL: UNITS.get(agency, ("S1", None))[0],
    }.get(role, f"{role.value}-{agency.value}")
    scope = {Role.SIGNAL: ["*"], Role.PROPERTY: ["C1"], Role.MEDIATOR: ["town-mediation"]}.get(
        role, []
    )
    return Principal(sub=sub, role=role, agency=agency, scope=scope, exp=0, iat=0, jti="x")


PRINCIPALS = [principal(r, a) for r in Role for a in Agency]


def bearer(who: Principal) -> dict[str, str]:
    token = mint(
        TEST_SECRET, role=who.role, agency=who.agency, sub=who.sub, ttl_s=900, scope=who.scope
    )
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    incident: Incident
    whistle_id: str
    units: dict[str, Unit]


async def build_world(store: Store) -> World:
    stack = make_stack(store, FakeClock(), None)
    await stack.fleet.put_roster(
        [
            RosterEntry(date=date(2026, 11, 29), agency=a, primary=name, backup=f"{name}-b")
            for a, name in COORDINATORS.items()
        ],
        [],
        actor="test",
    )
    for agency, (uid, utype) in UNITS.items():
        await stack.fleet.put_unit(
            FleetUnit(id=uid, agency=agency, type=utype, lat=SCENE[0], lon=SCENE[1]), actor="t"
        )
    first = CallEvent(
        call_id="X1",
        centre=Centre.TRAFFIC,
        call_type=CallType.TRAFFIC_ACCIDENT_ENTRAPMENT,
        lat=SCENE[0],
        lon=SCENE[1],
        received_at=stack.clock.now,
        description="a taxi on its side",
    )
    incident_id = (await stack.joint.handle(first)).incident_id
    second = first.model_copy(update={"call_id": "Y1", "centre": Centre.EMS})
    await stack.joint.handle(second)
    ems = Principal(sub="disp-120", role=Role.DISPATCHER, agency=Agency.EMS, exp=0, iat=0)
    whistle = await stack.whistles.sound(incident_id, ems)
    # The ambulance serves the incident (as an assignment would leave it).
    ambulance = await stack.fleet.get_unit("A1")
    tx = store.tx()
    moved = ambulance.model_copy(
        update={
            "status": UnitStatus.DISPATCHED,
            "incident_id": incident_id,
            "version": ambulance.version + 1,
        }
    )
    stage_unit(tx, store.keys, moved)
    await store.commit(tx)
    incident = await store.get_incident(incident_id)
    assert incident is not None
    units = {u.id: u for u in await stack.fleet.units()}
    return World(incident=incident, whistle_id=whistle.id, units=units)


@dataclass(frozen=True)
class Case:
    """One route as the matrix asks it: what to send, and the action and object it is."""

    method: str
    path: str
    action: Action | None  # None: any valid token
    target: Callable[[World, Principal], Target | None] = lambda w, p: None
    body: Callable[[World, Principal], Any] | None = None
    query: str = ""


def _incident(w: World, p: Principal) -> Target:
    return Target(incident=w.incident, summoned=frozenset(COORDINATORS.values()), units=_own(w, p))


def _own(w: World, p: Principal) -> tuple[Unit, ...]:
    return (w.units[p.sub],) if p.sub in w.units else ()


def _agency_unit(p: Principal) -> str:
    return UNITS.get(p.agency, ("A1", None))[0]


CASES: list[Case] = [
    Case("GET", "/api/me", None),
    Case("GET", "/api/map", Action.READ_MAP),
    Case("GET", "/api/map/places", Action.READ_MAP),
    Case("GET", "/api/console/routes", Action.READ_INCIDENT),
    Case("GET", "/api/console/assignment", Action.READ_UNITS),
    Case("GET", "/api/console/today", Action.READ_KPIS),
    Case("GET", "/api/kpis", Action.READ_KPIS),
    Case("GET", "/api/kpis.csv", Action.READ_KPIS),
    Case("GET", "/api/console/duty", Action.READ_ROSTER),
    Case(
        "POST",
        "/api/calls",
        Action.POST_CALL,
        lambda w, p: Target(centre=Centre.EMS),
        lambda w, p: {
            "call_id": f"M-{p.role.value}-{p.agency.value}",
            "centre": "120",
            "call_type": "critical_patient",
            "lat": SCENE[0] + 0.05,
            "lon": SCENE[1],
            "received_at": recently(),
        },
    ),
    Case("GET", "/api/incidents", Action.READ_INCIDENT),
    Case("GET", "/api/incidents/{incident_id}", Action.READ_INCIDENT, _incident),
    Case("GET", "/api/incidents/{incident_id}/events", Action.READ_INCIDENT, _incident),
    Case("GET", "/api/incidents/{incident_id}/eido", Action.READ_INCIDENT, _incident),
    Case("GET", "/api/incidents/{incident_id}/cap", Action.READ_INCIDENT, _incident),
    Case("GET", "/api/incidents/{incident_id}/recommendations", Action.READ_INCIDENT, _incident),
    Case("GET", "/api/incidents/{incident_id}/assignments", Action.READ_INCIDENT, _incident),
    Case("GET", "/api/calls/dead", Action.READ_DEAD),
    Case("GET", "/api/units", Action.READ_UNITS),
    Case(
        "PUT",
        "/api/units/{unit_id}",
        Action.PUT_UNIT,
        lambda w, p: Target(units=(w.units["F1"],), unit_agency=Agency.FIRE),
        lambda w, p: {
            "id": "F1",
            "agency": "fire",
            "type": "fire_rescue",
            "lat": 30.05,
            "lon": 119.96,
        },
    ),
    Case("GET", "/api/hospitals", Action.READ_UNITS),
    Case(
        "PUT",
        "/api/hospitals",
        Action.PUT_HOSPITALS,
        body=lambda w, p: [{"id": "H1", "name": "No. 1", "lat": 30.05, "lon": 119.96}],
    ),
    Case("GET", "/api/rosters/today", Action.READ_ROSTER),
    Case(
        "PUT",
        "/api/rosters",
        Action.PUT_ROSTER,
        lambda w, p: Target(roster_agencies=frozenset({Agency.FIRE})),
        lambda w, p: [
            {"date": "2026-12-24", "agency": "fire", "primary": "zhao.119", "backup": "qian.119"}
        ],
    ),
    Case(
        "POST",
        "/api/incidents/{incident_id}/assignments",
        Action.ASSIGN,
        lambda w, p: Target(incident=w.incident, units=(w.units["F1"],)),
        lambda w, p: {"unit_ids": ["F1"]},
    ),
    Case(
        "POST",
        "/api/incidents/{incident_id}/split",
        Action.SPLIT,
        lambda w, p: Target(incident=w.incident),
        lambda w, p: {"call_key": "999:none"},
    ),
    Case(
        "POST",
        "/api/incidents/{incident_id}/close",
        Action.CLOSE,
        lambda w, p: Target(incident=w.incident),
        lambda w, p: {"reason": "matrix"},
    ),
    Case("POST", "/api/incidents/{incident_id}/whistle", Action.SOUND_WHISTLE),
    Case("POST", "/api/incidents/{incident_id}/greenwave", Action.ENABLE_GREENWAVE),
    Case(
        "POST",
        "/api/incidents/{incident_id}/cap",
        Action.ISSUE_CAP,
        lambda w, p: Target(incident=w.incident),
        lambda w, p: {"msg_type": "Alert", "headline": "road closed", "status": "Exercise"},
    ),
    Case("GET", "/api/whistles", Action.READ_WHISTLES),
    Case("GET", "/api/whistles/{whistle_id}", Action.READ_WHISTLES),
    Case(
        "POST",
        "/api/whistles/{whistle_id}/ack",
        Action.ACK_WHISTLE,
        lambda w, p: Target(summons=tuple((name, a) for a, name in COORDINATORS.items())),
    ),
    Case("GET", "/api/snapshot", Action.READ_SNAPSHOT),
    Case(
        "PUT",
        "/api/reports/{drill_id}",
        Action.PUT_REPORT,
        body=lambda w, p: {"summary": {}, "report": {}, "html": "<p>drill</p>"},
    ),
    Case("GET", "/api/reports", Action.READ_REPORTS),
    Case("GET", "/api/reports/{drill_id}", Action.READ_REPORTS),
    Case(
        "POST",
        "/api/eido",
        Action.POST_EIDO,
        lambda w, p: Target(centre=None),
        lambda w, p: {"not": "an eido"},
    ),
    # Compounds and property teams (issue 15). The world's incident is in no compound, so a
    # property token is refused its object checks.
    Case("GET", "/api/compounds", Action.READ_COMPOUNDS),
    Case("GET", "/api/compounds/{compound_id}", Action.READ_COMPOUNDS),
    Case(
        "PUT",
        "/api/compounds/{compound_id}",
        Action.PUT_COMPOUND,
        body=lambda w, p: {"name": "x", "geometry": {"type": "Point", "coordinates": [0, 0]}},
    ),
    Case("GET", "/api/incidents/{incident_id}/property", Action.JOIN_PROPERTY),
    Case("POST", "/api/incidents/{incident_id}/property/join", Action.JOIN_PROPERTY),
    Case("POST", "/api/incidents/{incident_id}/property/release", Action.JOIN_PROPERTY),
    Case(
        "POST",
        "/api/incidents/{incident_id}/property/status",
        Action.PROPERTY_STATUS,
        lambda w, p: Target(incident=w.incident),
        lambda w, p: {"status": "accepted"},
    ),
    # Referrals (issue 15): the world's incident is no dispute (409 for those allowed).
    Case(
        "POST",
        "/api/incidents/{incident_id}/referrals",
        Action.REFER,
        lambda w, p: Target(incident=w.incident, units=_own(w, p)),
        lambda w, p: {"body": "town-mediation", "consent": True},
    ),
    Case("GET", "/api/referrals", Action.READ_REFERRALS),
    Case("GET", "/api/referrals/{referral_id}", Action.READ_REFERRALS),
    Case(
        "POST",
        "/api/referrals/{referral_id}/status",
        Action.UPDATE_REFERRAL,
        body=lambda w, p: {"status": "accepted"},
    ),
    # Pivot posts (issue 16): no plan in this world, so a post stands nowhere (404 for those
    # allowed); F1 is a fire unit, so only 119 (refused: not a posting agency) or admin pass.
    Case("GET", "/api/pivots/plan", Action.READ_PIVOTS),
    Case("GET", "/api/pivots/now", Action.READ_PIVOTS),
    Case("GET", "/api/pivots/history", Action.READ_PIVOTS),
    Case("GET", "/api/pivots/postings", Action.READ_PIVOTS),
    Case("PUT", "/api/pivots/plan", Action.PUT_PIVOT_PLAN, body=lambda w, p: {"not": "a plan"}),
    Case(
        "POST",
        "/api/pivots/posts/{post_id}/units/{unit_id}",
        Action.POST_PIVOT_UNIT,
        lambda w, p: Target(units=(w.units["F1"],)),
    ),
    Case(
        "DELETE",
        "/api/pivots/posts/{post_id}/units/{unit_id}",
        Action.POST_PIVOT_UNIT,
        lambda w, p: Target(units=(w.units["F1"],)),
    ),
    Case(
        "POST",
        "/api/tokens/revoke",
        Action.REVOKE_TOKENS,
        body=lambda w, p: {"sub": "nobody-at-all"},
    ),
]


@pytest.fixture
def server(settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def _path(case: Case, w: World) -> str:
    return case.path.format(
        incident_id=w.incident.id,
        unit_id="F1",
        whistle_id=w.whistle_id,
        drill_id="matrix-1",
        compound_id="C1",
        referral_id="R-none",
        post_id="none",
    )


def _expected(case: Case, w: World, who: Principal) -> bool:
    if case.action is None:
        return True
    target = case.target(w, who)
    if target is None:
        return policy.admits(who, case.action).allowed
    decision = policy.decide(who, case.action, target)
    return decision.allowed or decision.may_request


def api_routes(app: Any) -> Iterator[Any]:
    """Every HTTP route of the app (FastAPI keeps included routers as route contexts)."""
    for r in app.routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "effective_candidates"):
            yield from r.effective_candidates()


def test_every_api_route_is_in_the_matrix(server: ServerThread) -> None:
    routes = [r for r in api_routes(server.app) if r.path.startswith("/api")]
    declared = {
        (m, r.path) for r in routes for m in r.methods if not r.path.startswith("/api/health")
    }
    assert len(declared) >= 30
    covered = {(c.method, c.path) for c in CASES}
    assert declared - covered == set(), "routes without a row in the authorization matrix"
    # And each route's declared action is the one the matrix expects.
    actions = {
        (m, r.path): next(
            (d.call.action for d in r.dependant.dependencies if isinstance(d.call, May)), None
        )
        for r in routes
        for m in r.methods
    }
    for case in CASES:
        assert actions[(case.method, case.path)] == case.action, case.path


async def test_every_route_answers_every_principal_as_the_model_says(
    server: ServerThread, store: Store
) -> None:
    world = await build_world(store)
    wrong: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for case in CASES:
            for who in PRINCIPALS:
                body = case.body(world, who) if case.body else None
                r = await http.request(
                    case.method,
                    _path(case, world) + case.query,
                    json=body,
                    headers=bearer(who),
                )
                allowed = _expected(case, world, who)
                # 503: no road graph in this world (routing is not what is tested here).
                failed = r.status_code >= 500 and r.status_code != 503
                if (r.status_code == 403) == allowed or failed:
                    wrong.append(
                        f"{case.method} {case.path} as {who.role.value}/{who.agency.value} "
                        f"({who.sub}): {r.status_code} {r.text[:120]}, model says "
                        f"{'allow' if allowed else 'deny'}"
                    )
    assert not wrong, "\n".join(wrong[:40])


WS_MESSAGES: list[tuple[str, Action | None, Callable[[World, Principal], dict[str, Any]]]] = [
    ("ping", None, lambda w, p: {"type": "ping"}),
    ("subscribe", None, lambda w, p: {"type": "subscribe", "agencies": ["ems"]}),
    ("ack", Action.ACK_WHISTLE, lambda w, p: {"type": "ack", "whistle_id": w.whistle_id}),
    (
        "position",
        Action.TERMINAL_POSITION,
        lambda w, p: {"type": "position", "lat": SCENE[0], "lon": SCENE[1]},
    ),
    ("status", Action.TERMINAL_STATUS, lambda w, p: {"type": "status", "status": "en_route"}),
    (
        "signal_status",
        Action.SIGNAL_STATUS,
        lambda w, p: {
            "type": "signal_status",
            "intersection_id": 42,
            "request_id": "ems:A1:42",
            "status": "served",
        },
    ),
]


def _ws_expected(kind: str, action: Action | None, w: World, who: Principal) -> bool:
    if action is None:
        return True
    target = {
        Action.ACK_WHISTLE: Target(summons=tuple((n, a) for a, n in COORDINATORS.items())),
        Action.TERMINAL_POSITION: Target(units=_own(w, who)),
        Action.TERMINAL_STATUS: Target(units=_own(w, who)),
        Action.SIGNAL_STATUS: Target(intersection_id="42"),
    }[action]
    return policy.decide(who, action, target).allowed


async def _ws_answer(url: str, who: Principal, message: dict[str, Any]) -> str:
    """'forbidden' when the session ends 4403 or the reply is a forbidden error, else 'ok'."""
    token = bearer(who)["Authorization"][7:]
    async with connect(
        url, subprotocols=["yishao", f"yishao.token.{token}"], proxy=None, open_timeout=30
    ) as ws:
        while orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ready":
            pass
        await ws.send(orjson.dumps({**message, "ref": "m"}).decode())
        try:
            while True:
                reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                if reply.get("data", {}).get("ref") == "m":
                    code = reply["data"].get("code")
                    return "forbidden" if code == "forbidden" else "ok"
        except ConnectionClosed as closed:
            return "forbidden" if closed.rcvd and closed.rcvd.code == 4403 else "closed"


async def test_every_websocket_message_answers_as_the_model_says(
    server: ServerThread, store: Store
) -> None:
    world = await build_world(store)
    url = f"ws://127.0.0.1:{server.port}/ws"
    wrong: list[str] = []
    for kind, action, build in WS_MESSAGES:
        for who in PRINCIPALS:
            got = await _ws_answer(url, who, build(world, who))
            allowed = _ws_expected(kind, action, world, who)
            if (got == "forbidden") == allowed or got == "closed":
                wrong.append(
                    f"{kind} as {who.role.value}/{who.agency.value} ({who.sub}): {got}, "
                    f"model says {'allow' if allowed else 'deny'}"
                )
    assert not wrong, "\n".join(wrong[:40])


def _binary_ssm(intersection: int) -> bytes:
    """A UPER SignalStatusMessage (pycrate's encoder) about one request at ``intersection``."""
    from pycrate_asn1dir import ITS_IS

    ssm = ITS_IS.DSRC.SignalStatusMessage
    ssm.set_val(
        {
            "second": 0,
            "status": [
                {
                    "sequenceNumber": 0,
                    "id": {"id": intersection},
                    "sigStatus": [
                        {
                            "requester": {
                                "id": ("stationID", 7),
                                "request": 1,
                                "sequenceNumber": 0,
                            },
                            "inboundOn": ("approach", 1),
                            "status": "granted",
                        }
                    ],
                }
            ],
        }
    )
    return bytes(ssm.to_uper())


async def test_a_binary_ssm_answers_as_the_model_says(server: ServerThread, store: Store) -> None:
    """The J2735 form of ``signal_status`` (a binary frame on ``?wire=j2735``) is the same
    action on the same target: intersection 42 (IntersectionID 42 in the derived numbering)."""
    from dispatch.interop.j2735 import codec
    from dispatch.interop.schemas import resolve_standards_dir

    codec(resolve_standards_dir())  # the server (this process) shares the compiled module
    world = await build_world(store)
    url = f"ws://127.0.0.1:{server.port}/ws?wire=j2735"
    wrong: list[str] = []
    for who in PRINCIPALS:
        token = bearer(who)["Authorization"][7:]
        async with connect(
            url, subprotocols=["yishao", f"yishao.token.{token}"], proxy=None, open_timeout=30
        ) as ws:
            while orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ready":
                pass
            await ws.send(_binary_ssm(42))
            got = "closed"
            try:
                while True:
                    raw = await asyncio.wait_for(ws.recv(), 10)
                    reply = orjson.loads(raw) if isinstance(raw, str) else {}
                    if reply.get("type") in ("ssm.ok", "error"):
                        got = "forbidden" if reply["data"].get("code") == "forbidden" else "ok"
                        break
            except ConnectionClosed as closed:
                got = "forbidden" if closed.rcvd and closed.rcvd.code == 4403 else "closed"
        allowed = _ws_expected("ssm", Action.SIGNAL_STATUS, world, who)
        if (got == "forbidden") == allowed or got == "closed":
            wrong.append(f"binary SSM as {who.role.value}/{who.agency.value}: {got}")
    assert not wrong, "\n".join(wrong[:40])


def test_the_readme_table_is_the_model() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for action, who, condition in policy.describe():
        assert f"| `{action}` | {who} | {condition} |" in readme, action


async def test_a_terminal_cannot_speak_for_another_agencys_unit(
    server: ServerThread, store: Store
) -> None:
    await build_world(store)
    url = f"ws://127.0.0.1:{server.port}/ws"
    impostor = Principal(
        sub="A1", role=Role.TERMINAL, agency=Agency.FIRE, exp=0, iat=0, jti="x"
    )  # the ambulance's id with a fire token
    for message in ({"type": "status", "status": "available"}, {"type": "position", "lat": 30.05,
                    "lon": 119.96}):  # fmt: skip
        assert await _ws_answer(url, impostor, message) == "forbidden"
    unit = await store.get(Unit, store.keys.unit("A1"))
    assert unit is not None and unit.status is UnitStatus.DISPATCHED  # unchanged


async def test_need_to_know_narrows_every_list(server: ServerThread, store: Store) -> None:
    world = await build_world(store)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def ids(who: Principal, path: str) -> list[str]:
            r = await http.get(path, headers=bearer(who))
            assert r.status_code == 200, r.text
            body = r.json()
            items = body["incidents"] if isinstance(body, dict) else body
            return [i["id"] for i in items]

        summoned = principal(Role.COORDINATOR, Agency.EMS)
        stranger = Principal(
            sub="nobody.120", role=Role.COORDINATOR, agency=Agency.EMS, exp=0, iat=0, jti="x"
        )
        crew = principal(Role.TERMINAL, Agency.EMS)  # A1, assigned
        idle = principal(Role.TERMINAL, Agency.FIRE)  # F1, not assigned
        team = principal(Role.PROPERTY, Agency.PROPERTY)
        for path in ("/api/incidents", "/api/snapshot"):
            assert await ids(summoned, path) == [world.incident.id]
            assert await ids(stranger, path) == []
            assert await ids(crew, path) == [world.incident.id]
            assert await ids(idle, path) == []
            assert await ids(team, path) == []
        # A coordinator sees the units of the incidents they are summoned to, a crew its own.
        units = (await http.get("/api/units", headers=bearer(summoned))).json()
        assert [u["id"] for u in units] == ["A1"]
        assert (await http.get("/api/units", headers=bearer(stranger))).json() == []
        own = (await http.get("/api/units", headers=bearer(idle))).json()
        assert [u["id"] for u in own] == ["F1"]
        # Observers read the incident without the callers' words.
        observer = principal(Role.OBSERVER, Agency.POLICE)
        seen = await http.get(f"/api/incidents/{world.incident.id}", headers=bearer(observer))
        assert all(c["description"] is None for c in seen.json()["calls"])
        dispatcher = principal(Role.DISPATCHER, Agency.TRAFFIC)
        full = await http.get(f"/api/incidents/{world.incident.id}", headers=bearer(dispatcher))
        assert full.json()["calls"][0]["description"] == "a taxi on its side"
