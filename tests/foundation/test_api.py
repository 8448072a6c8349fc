"""The REST edge through a real uvicorn server: auth on every route, calls, incidents, health."""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import Iterator

import httpx
import pytest

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from tests.utils import TEST_SECRET, ServerThread, recently, wait_for


def token(role: Role, agency: Agency, sub: str = "someone") -> dict[str, str]:
    # Six hours: module-level tokens are minted at import, long before a slow run uses them.
    minted = mint(TEST_SECRET, role=role, agency=agency, sub=sub, ttl_s=21_600)
    return {"Authorization": f"Bearer {minted}"}


CALL = {
    "call_id": "122-0001",
    "centre": "122",
    "call_type": "traffic_accident_entrapment",
    "lat": 30.0495,
    "lon": 119.9601,
    "received_at": recently(),
    "caller_phone": "13912345678",
    "severity": 4,
}


@pytest.fixture
def server(settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def test_health_needs_no_token_and_reports_redis(server: ServerThread) -> None:
    r = httpx.get(f"{server.url}/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["redis"] is True and body["status"] == "ok"
    assert body["consumer_group"] == "dispatch"
    assert body["lag"] == 0


def test_every_api_route_but_health_needs_a_token(server: ServerThread) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    routes = [(p, m) for p, ops in spec["paths"].items() if p.startswith("/api") for m in ops]
    assert len(routes) >= 5
    for route_path, method in routes:
        if route_path.startswith("/api/health"):
            continue
        path = re.sub(r"\{[a-z_]+\}", "x-1", route_path)
        r = httpx.request(method, f"{server.url}{path}")
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers.get("www-authenticate") == "Bearer"
        bad = httpx.request(
            method, f"{server.url}{path}", headers={"Authorization": "Bearer nonsense"}
        )
        assert bad.status_code == 401, (method, path)


def test_post_call_lands_and_becomes_an_incident(server: ServerThread) -> None:
    r = httpx.post(
        f"{server.url}/api/calls", json=CALL, headers=token(Role.DISPATCHER, Agency.TRAFFIC)
    )
    assert r.status_code == 202, r.text
    assert r.json()["call_key"] == "122:122-0001"

    async def incident(role: Role = Role.DISPATCHER) -> list[dict[str, object]]:
        async with httpx.AsyncClient() as c:
            got = await c.get(f"{server.url}/api/incidents", headers=token(role, Agency.POLICE))
            return list(got.json())

    found = asyncio.run(wait_for(incident))
    assert found[0]["calls"][0]["caller_phone_masked"] == "139******78"
    assert "13912345678" not in str(found)
    # Observers see the incident without the caller's number, even masked.
    observed = asyncio.run(incident(Role.OBSERVER))
    assert observed[0]["id"] == found[0]["id"]
    assert observed[0]["calls"][0]["caller_phone_masked"] is None
    incident_id = found[0]["id"]
    one = httpx.get(
        f"{server.url}/api/incidents/{incident_id}", headers=token(Role.DISPATCHER, Agency.EMS)
    )
    assert one.status_code == 200 and one.json()["id"] == incident_id
    trail = httpx.get(
        f"{server.url}/api/incidents/{incident_id}/events",
        headers=token(Role.DISPATCHER, Agency.EMS),
    )
    assert [e["type"] for e in trail.json()] == ["incident.created"]
    assert (
        httpx.get(
            f"{server.url}/api/incidents/nope", headers=token(Role.DISPATCHER, Agency.EMS)
        ).status_code
        == 404
    )
    # Filters.
    ems = httpx.get(
        f"{server.url}/api/incidents",
        params={"agency": "ems"},
        headers=token(Role.OBSERVER, Agency.POLICE),
    )
    assert [i["id"] for i in ems.json()] == [incident_id]
    closed = httpx.get(
        f"{server.url}/api/incidents",
        params={"status": "closed"},
        headers=token(Role.OBSERVER, Agency.POLICE),
    )
    assert closed.json() == []
    later = httpx.get(
        f"{server.url}/api/incidents",
        params={"since": "2099-01-01T00:00:00Z"},
        headers=token(Role.OBSERVER, Agency.POLICE),
    )
    assert later.json() == []


@pytest.mark.parametrize(
    ("role", "agency", "status"),
    [
        (Role.OBSERVER, Agency.POLICE, 403),
        (Role.TERMINAL, Agency.TRAFFIC, 403),
        (Role.DISPATCHER, Agency.EMS, 403),  # a 120 dispatcher does not post 122's calls
        (Role.DISPATCHER, Agency.TRAFFIC, 202),
        (Role.ADMIN, Agency.POLICE, 202),
    ],
)
def test_post_call_roles(server: ServerThread, role: Role, agency: Agency, status: int) -> None:
    r = httpx.post(f"{server.url}/api/calls", json=CALL, headers=token(role, agency))
    assert r.status_code == status, r.text


def test_bad_call_gets_a_clear_error(server: ServerThread) -> None:
    r = httpx.post(
        f"{server.url}/api/calls",
        json={**CALL, "lat": 123, "centre": "110"},
        headers=token(Role.DISPATCHER, Agency.TRAFFIC),
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"lat", "centre"} <= fields
    assert "110" not in r.text and "123" not in r.text  # named, never echoed


def test_dead_letters_listed_with_phone_masked(server: ServerThread, redis_url: str) -> None:
    import redis as sync_redis

    from dispatch.constants import Keys

    fields = {k: str(v) for k, v in CALL.items()} | {
        "call_type": "alien_landing",
        "description": "call back on 139 1234 5678",
    }
    sync_redis.Redis.from_url(redis_url).xadd(Keys().calls, fields)  # type: ignore[arg-type]

    async def dead() -> list[dict[str, object]]:
        async with httpx.AsyncClient() as c:
            got = await c.get(
                f"{server.url}/api/calls/dead", headers=token(Role.DISPATCHER, Agency.TRAFFIC)
            )
            return list(got.json())

    letters = asyncio.run(wait_for(dead))
    assert "call_type" in str(letters[0]["reason"])
    assert letters[0]["fields"]["caller_phone"] == "139******78"  # type: ignore[index]
    assert letters[0]["fields"]["description"] == "call back on 139******78"  # type: ignore[index]
    admin = httpx.get(
        f"{server.url}/api/calls/dead", headers=token(Role.ADMIN, Agency.POLICE)
    ).json()
    assert admin[0]["fields"]["caller_phone"] == "13912345678"
    assert admin[0]["fields"]["description"] == "call back on 139 1234 5678"
    assert (
        httpx.get(
            f"{server.url}/api/calls/dead", headers=token(Role.OBSERVER, Agency.POLICE)
        ).status_code
        == 403
    )


def test_openapi_is_served(server: ServerThread) -> None:
    assert httpx.get(f"{server.url}/docs").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/calls" in spec["paths"]


def test_health_degraded_when_redis_is_gone(settings: Settings) -> None:
    from tests.utils import free_port

    app = create_app(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    with ServerThread(app) as srv:
        body = httpx.get(f"{srv.url}/api/health").json()
    assert body["status"] == "degraded" and body["redis"] is False


def test_what_the_service_loaded_is_kept_out_of_full_collections(settings: Settings) -> None:
    # A full pass of the collector over everything loaded stalled a route for 50-100 ms on a
    # million-node graph: the app freezes what it holds once up, and lets it go at shutdown.
    gc.unfreeze()
    with ServerThread(create_app(settings)) as srv:
        assert gc.get_freeze_count() > 10_000
        assert httpx.get(f"{srv.url}/api/health").status_code == 200
    assert gc.get_freeze_count() == 0
