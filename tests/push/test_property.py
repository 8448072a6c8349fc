"""Property teams through the real service: compounds over REST, the join, need-to-know on
REST, the snapshot and the websocket, the team's status answers, access ending at close and
at release, and the audit of every property read."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from dispatch.api import create_app
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from tests.push._helpers import T, bearer, drain, events, open_ws, ready, tok, until
from tests.utils import MS, ServerThread, recently, wait_for

QUIET = 300 * MS
C1 = [[121.40, 31.20], [121.41, 31.20], [121.41, 31.21], [121.40, 31.21], [121.40, 31.20]]
SECRET_WORDS = "my neighbour Wang on 13912345678"


def police() -> dict[str, str]:
    return bearer(tok(Role.DISPATCHER, Agency.POLICE, "disp-110"))


def ems() -> dict[str, str]:
    return bearer(tok(Role.DISPATCHER, Agency.EMS, "disp-120"))


def guard(scope: list[str] | None = None) -> dict[str, str]:
    return bearer(tok(Role.PROPERTY, Agency.PROPERTY, "guard-1", scope=scope or ["C1"]))


def call(call_id: str, call_type: str, lat: float, lon: float) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "centre": "120",
        "call_type": call_type,
        "lat": lat,
        "lon": lon,
        "received_at": recently(),
        "description": SECRET_WORDS,
        "caller_phone": "13912345678",
    }


async def incident_of(http: httpx.AsyncClient, call_key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def landed() -> bool:
        r = await http.get("/api/incidents", headers=ems())
        for inc in r.json():
            if call_key in [f"{c['centre']}:{c['call_id']}" for c in inc["calls"]]:
                found.update(inc)
                return True
        return False

    await wait_for(landed, timeout_s=10)
    return found


async def put_c1(http: httpx.AsyncClient) -> None:
    feature = {
        "type": "Feature",
        "properties": {
            "name": "Lakeside Gardens",
            "company": "Vanke Property",
            "contact": "021-5555-0101",
            "members": ["guard-1", "guard-2"],
        },
        "geometry": {"type": "Polygon", "coordinates": [C1]},
    }
    r = await http.put("/api/compounds/C1", json=feature, headers=police())
    assert r.status_code == 200, r.text


async def test_compounds_over_rest(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        await put_c1(http)
        bad = await http.put(
            "/api/compounds/C2",
            json={"name": "x", "geometry": {"type": "Point", "coordinates": [121.4, 31.2]}},
            headers=police(),
        )
        assert bad.status_code == 422 and "geometry" in bad.text
        assert (await http.put("/api/compounds/C2", json={}, headers=ems())).status_code == 403
        listed = (await http.get("/api/compounds", headers=police())).json()
        assert [c["id"] for c in listed] == ["C1"] and listed[0]["members"] == [
            "guard-1",
            "guard-2",
        ]
        mine = (await http.get("/api/compounds", headers=guard())).json()
        assert [c["id"] for c in mine] == ["C1"] and mine[0]["members"] == []
        assert (await http.get("/api/compounds", headers=guard(["C9"]))).json() == []
        assert (await http.get("/api/compounds/C1", headers=guard(["C9"]))).status_code == 403
        assert (await http.get("/api/compounds/C9", headers=police())).status_code == 404


async def test_need_to_know_join_status_and_close(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        await put_c1(http)
        team = await open_ws(server, tok(Role.PROPERTY, Agency.PROPERTY, "guard-1", scope=["C1"]))
        await ready(team)
        for c in (
            call("T1", "theft", 31.202, 121.402),  # in C1, on the list
            call("P1", "critical_patient", 31.208, 121.408),  # in C1, not on the list
            call("T2", "theft", 31.30, 121.50),  # outside
        ):
            assert (await http.post("/api/calls", json=c, headers=ems())).status_code == 202
        theft = await incident_of(http, "120:T1")
        patient = await incident_of(http, "120:P1")
        outside = await incident_of(http, "120:T2")
        assert (theft["compound_id"], patient["compound_id"], outside["compound_id"]) == (
            "C1",
            "C1",
            None,
        )
        # Not joined yet: the team sees nothing.
        assert (await http.get("/api/incidents", headers=guard())).json() == []
        assert (await http.get(f"/api/incidents/{theft['id']}", headers=guard())).status_code == 403
        # The dispatcher is offered the team for the theft, not for the patient.
        offer = (await http.get(f"/api/incidents/{theft['id']}/property", headers=police())).json()
        assert (
            offer["offerable"] and offer["team_size"] == 2 and offer["company"] == "Vanke Property"
        )
        no = (await http.get(f"/api/incidents/{patient['id']}/property", headers=police())).json()
        assert not no["offerable"] and "compound list" in no["reason"]
        refused = await http.post(f"/api/incidents/{patient['id']}/property/join", headers=police())
        assert refused.status_code == 409
        # A 120 dispatcher does not join the police's property teams.
        path = f"/api/incidents/{theft['id']}/property/join"
        assert (await http.post(path, headers=ems())).status_code == 403
        joined = await http.post(path, json={"task": "watch the garage exits"}, headers=police())
        assert joined.status_code == 200, joined.text
        assert (await http.post(path, headers=police())).status_code == 409
        # The team's terminal is told, with the least data.
        pushed = await until(team, lambda m: m["type"] == "property.joined")
        wire = orjson.dumps(pushed).decode()
        assert "Wang" not in wire and "13912345678" not in wire and "139" not in wire
        assert pushed["data"]["incident"]["id"] == theft["id"]
        assert set(pushed["data"]["incident"]) <= {
            "id", "status", "call_types", "lat", "lon", "address", "priority", "created_at",
            "updated_at", "compound_id", "property_join",
        }  # fmt: skip
        assert pushed["data"]["incident"]["property_join"]["task"] == "watch the garage exits"
        # REST and the snapshot: only the joined incident, least data.
        seen = (await http.get("/api/incidents", headers=guard())).json()
        assert [i["id"] for i in seen] == [theft["id"]]
        assert seen[0]["calls"] == [] and seen[0]["timeline"] == []
        assert "Wang" not in orjson.dumps(seen).decode()
        snap = (await http.get("/api/snapshot", headers=guard())).json()
        assert [i["id"] for i in snap["incidents"]] == [theft["id"]] and snap["units"] == []
        one = await http.get(f"/api/incidents/{theft['id']}", headers=guard())
        assert one.status_code == 200 and one.json()["calls"] == []
        for beyond in ("events", "eido", "recommendations", "assignments"):
            r = await http.get(f"/api/incidents/{theft['id']}/{beyond}", headers=guard())
            assert r.status_code == 403, beyond
        assert (
            await http.get(f"/api/incidents/{patient['id']}", headers=guard())
        ).status_code == 403
        other = guard(["C2"])
        assert (await http.get(f"/api/incidents/{theft['id']}", headers=other)).status_code == 403
        # The team answers status only, in order.
        status = f"/api/incidents/{theft['id']}/property/status"
        skip = await http.post(status, json={"status": "on_scene"}, headers=guard())
        assert skip.status_code == 409 and "joined to on_scene" in skip.text
        assert (
            await http.post(status, json={"status": "accepted"}, headers=guard())
        ).status_code == 200
        assert (
            await http.post(status, json={"status": "on_scene"}, headers=guard())
        ).status_code == 200
        bad = await http.post(status, json={"status": "released"}, headers=guard())
        assert bad.status_code == 422 and "status" in bad.text
        no_outcome = await http.post(status, json={"status": "closed"}, headers=guard())
        assert no_outcome.status_code == 422 and "outcome" in no_outcome.text
        assert (
            await http.post(status, json={"status": "holding"}, headers=other)
        ).status_code == 403
        holding = await http.post(status, json={"status": "holding"}, headers=guard())
        assert holding.json()["property_join"]["first_contact_at"] is not None
        # Close the incident: the team learns of it once, then its access ends.
        close = await http.post(
            f"/api/incidents/{theft['id']}/close", json={"reason": "thieves held"}, headers=ems()
        )
        assert close.status_code == 200, close.text
        msgs = events(await drain(team, QUIET * 3))
        types = [m["type"] for m in msgs]
        assert types[-1] == "incident.closed", types
        assert all(m["incident_id"] == theft["id"] for m in msgs)
        assert all("Wang" not in orjson.dumps(m).decode() for m in msgs)
        assert (await http.get("/api/incidents", headers=guard())).json() == []
        assert (await http.get(f"/api/incidents/{theft['id']}", headers=guard())).status_code == 403
        late = await http.post(status, json={"status": "handed_over"}, headers=guard())
        assert late.status_code == 403
        # Every read and action of the property account is in the audit log.
        trail = (await http.get(f"/api/incidents/{theft['id']}/events", headers=ems())).json()
        audited = [e for e in trail if e["type"] == "property.access"]
        assert all(e["actor"] == "property:guard-1" for e in audited)
        whats = [e["data"]["what"] for e in audited]
        assert "read incident" in whats and any("property/status" in w for w in whats)
        assert any(not e["data"]["allowed"] for e in audited)
        await team.close()


async def test_release_ends_access(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        await put_c1(http)
        team = await open_ws(server, tok(Role.PROPERTY, Agency.PROPERTY, "guard-1", scope=["C1"]))
        await ready(team)
        assert (
            await http.post("/api/calls", json=call("N1", "noise", 31.203, 121.403), headers=ems())
        ).status_code == 202
        noise = await incident_of(http, "120:N1")
        await http.post(f"/api/incidents/{noise['id']}/property/join", headers=police())
        assert len((await http.get("/api/incidents", headers=guard())).json()) == 1
        # A terminal that connects after the join still learns its access ended.
        late = await open_ws(server, tok(Role.PROPERTY, Agency.PROPERTY, "guard-2", scope=["C1"]))
        await ready(late)
        released = await http.post(
            f"/api/incidents/{noise['id']}/property/release", headers=police()
        )
        assert released.status_code == 200
        msgs = events(await drain(team, QUIET * 2))
        assert [m["type"] for m in msgs] == ["property.joined", "property.released"]
        assert [m["type"] for m in events(await drain(late, QUIET))] == ["property.released"]
        await late.close()
        assert (await http.get("/api/incidents", headers=guard())).json() == []
        again = await http.post(f"/api/incidents/{noise['id']}/property/release", headers=police())
        assert again.status_code == 409
        await team.close()


async def test_a_plan_joins_the_team_automatically(settings: Settings, redis: Redis) -> None:
    auto = settings.model_copy(update={"property_auto_join": True})
    with ServerThread(create_app(auto)) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=T) as http:
            await put_c1(http)
            for c in (
                call("F1", "fight", 31.204, 121.404),
                call("P1", "critical_patient", 31.205, 121.401),
            ):
                assert (await http.post("/api/calls", json=c, headers=ems())).status_code == 202
            fight = await incident_of(http, "120:F1")
            await incident_of(http, "120:P1")

            async def joined() -> bool:
                seen = (await http.get("/api/incidents", headers=guard())).json()
                return [i["id"] for i in seen] == [fight["id"]]

            await wait_for(joined, timeout_s=10)
            offer = (
                await http.get(f"/api/incidents/{fight['id']}/property", headers=police())
            ).json()
            assert offer["automatic"] and offer["join"]["automatic"]
            assert offer["join"]["joined_by"] == "plan:property-auto-join"
