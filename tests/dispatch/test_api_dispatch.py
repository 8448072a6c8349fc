"""The dispatch core's REST edge on a real server with the Shanghai graph."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from routing import Router
from tests.utils import TEST_SECRET, ServerThread, recently, wait_for

SCENE = {"lat": 31.2304, "lon": 121.4737}


def auth(role: Role, agency: Agency, sub: str = "someone") -> dict[str, str]:
    # Six hours: module-level tokens are minted at import, long before a slow run uses them.
    minted = mint(TEST_SECRET, role=role, agency=agency, sub=sub, ttl_s=21_600)
    return {"Authorization": f"Bearer {minted}"}


ADMIN = auth(Role.ADMIN, Agency.POLICE, "admin")
EMS = auth(Role.DISPATCHER, Agency.EMS, "disp-120")
TRAFFIC = auth(Role.DISPATCHER, Agency.TRAFFIC, "disp-122")


@pytest.fixture
def server(
    settings: Settings,
    redis_url: str,
    shanghai_router: Router,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    cache = tmp_path_factory.mktemp("g") / "shanghai.npz"
    from routing import graph as graph_mod

    graph_mod.save(shanghai_router.graph, cache)
    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings.model_copy(update={"graph": cache}))) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def call(server: ServerThread, body: dict[str, Any], headers: dict[str, str]) -> str:
    r = httpx.post(f"{server.url}/api/calls", json=body, headers=headers)
    assert r.status_code == 202, r.text

    async def incident() -> str | None:
        async with httpx.AsyncClient() as c:
            found = (await c.get(f"{server.url}/api/incidents", headers=ADMIN)).json()
            ids = [
                i["id"] for i in found if any(x["call_id"] == body["call_id"] for x in i["calls"])
            ]
            return ids[0] if ids else None

    return str(asyncio.run(wait_for(incident)))


def test_dispatch_flow_over_rest(server: ServerThread, shanghai_router: Router) -> None:
    url = server.url
    lat, lon = (
        float(shanghai_router.graph.node_lat[700]),
        float(shanghai_router.graph.node_lon[700]),
    )
    unit = {
        "id": "AMB-7",
        "agency": "ems",
        "type": "ambulance",
        "lat": lat,
        "lon": lon,
        "station": "Huangpu",
    }
    assert httpx.put(f"{url}/api/units/AMB-7", json=unit, headers=TRAFFIC).status_code == 403
    assert httpx.put(f"{url}/api/units/AMB-7", json=unit, headers=EMS).status_code == 200
    car = {"id": "TP-1", "agency": "traffic", "type": "traffic_police_car", "lat": lat, "lon": lon}
    assert httpx.put(f"{url}/api/units/TP-1", json=car, headers=TRAFFIC).status_code == 200
    roster = {
        "rules": [
            {"agency": "traffic", "names": ["li.122", "zhou.122"], "start": "2026-01-01"},
            {"agency": "ems", "names": ["wang.120", "chen.120"], "start": "2026-01-01"},
            {"agency": "fire", "names": ["zhao.119", "qian.119"], "start": "2026-01-01"},
        ]
    }
    assert httpx.put(f"{url}/api/rosters", json=roster, headers=EMS).status_code == 403
    assert httpx.put(f"{url}/api/rosters", json=roster, headers=ADMIN).status_code == 204
    today = httpx.get(f"{url}/api/rosters/today", headers=EMS).json()
    assert {d["agency"] for d in today["duty"]} == {"traffic", "ems", "fire"} and today[
        "missing"
    ] == []
    on_duty = {d["agency"]: d["primary"] for d in today["duty"]}

    incident_id = call(
        server,
        {
            "call_id": "120-9",
            "centre": "120",
            "call_type": "drowning",
            "received_at": recently(200),
            **SCENE,
        },
        EMS,
    )
    recs = httpx.get(f"{url}/api/incidents/{incident_id}/recommendations", headers=EMS)
    assert recs.status_code == 200, recs.text
    ems = next(a for a in recs.json()["agencies"] if a["agency"] == "ems")
    assert ems["suggested"] == ["AMB-7"] and ems["candidates"][0]["eta_s"] > 0

    # The whistle: 122 may not sound it; 120 may; coordinators ack with their own token.
    assert (
        httpx.post(f"{url}/api/incidents/{incident_id}/whistle", headers=TRAFFIC).status_code == 403
    )
    sounded = httpx.post(f"{url}/api/incidents/{incident_id}/whistle", headers=EMS)
    assert sounded.status_code == 201, sounded.text
    whistle_id = sounded.json()["id"]
    assert httpx.post(f"{url}/api/incidents/{incident_id}/whistle", headers=EMS).status_code == 409
    assert httpx.post(f"{url}/api/whistles/{whistle_id}/ack", headers=EMS).status_code == 403
    coord = auth(Role.COORDINATOR, Agency.TRAFFIC, on_duty["traffic"])
    acked = httpx.post(f"{url}/api/whistles/{whistle_id}/ack", headers=coord)
    assert acked.status_code == 200 and acked.json()["greenwave_enabled_at"] is not None

    # Assignment after the 122 ack: protected from the start.
    done = httpx.post(
        f"{url}/api/incidents/{incident_id}/assignments", json={"unit_ids": ["AMB-7"]}, headers=EMS
    )
    assert done.status_code == 201, done.text
    assert done.json()[0]["greenwave_active"] is True
    again = httpx.post(
        f"{url}/api/incidents/{incident_id}/assignments", json={"unit_ids": ["AMB-7"]}, headers=EMS
    )
    assert again.status_code == 409 and "AMB-7" in again.json()["detail"]
    assert (
        httpx.post(
            f"{url}/api/incidents/nope/assignments", json={"unit_ids": ["TP-1"]}, headers=EMS
        ).status_code
        == 404
    )
    assert (
        httpx.post(
            f"{url}/api/incidents/{incident_id}/assignments",
            json={"unit_ids": ["NOPE"]},
            headers=EMS,
        ).status_code
        == 404
    )
    listed = httpx.get(f"{url}/api/incidents/{incident_id}/assignments", headers=EMS).json()
    assert [a["unit_id"] for a in listed] == ["AMB-7"]
    assert httpx.get(f"{url}/api/whistles", headers=EMS).json()[0]["id"] == whistle_id


def test_not_eligible_is_409_unless_forced(server: ServerThread) -> None:
    incident_id = call(
        server,
        {
            "call_id": "119-1",
            "centre": "119",
            "call_type": "noise",
            "received_at": recently(20),
            **SCENE,
        },
        auth(Role.DISPATCHER, Agency.FIRE),
    )
    fire = auth(Role.DISPATCHER, Agency.FIRE, "disp-119")
    r = httpx.post(f"{server.url}/api/incidents/{incident_id}/whistle", headers=fire)
    assert r.status_code == 409 and "eligible" in r.json()["detail"]
    forced = httpx.post(
        f"{server.url}/api/incidents/{incident_id}/whistle",
        headers=fire,
        json={"force": True, "reason": "explosion heard"},
    )
    assert forced.status_code == 201
    assert (
        httpx.post(f"{server.url}/api/incidents/{incident_id}/greenwave", headers=fire).status_code
        == 403
    )
    on = httpx.post(f"{server.url}/api/incidents/{incident_id}/greenwave", headers=TRAFFIC)
    assert on.status_code == 200 and on.json()["units"] == 0
