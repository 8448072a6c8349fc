"""Hostile input and credentials at the edge, through a real server and Redis.

Bodies over the limit, NaN and Infinity, lone surrogates, integers past 64 bits, deep nesting,
strict types, calls from elsewhere or elsewhen; tokens revoked while their socket is open,
too long a life, repeated failures locking an address out, a foreign browser origin; the
access log never holding a token; the security headers of HTML pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis as sync_redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dispatch.api import create_app
from dispatch.api.edge import AccessLogScrubber, scrub
from dispatch.auth import mint
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from tests.utils import TEST_SECRET, ServerThread, recently

CALL: dict[str, Any] = {
    "call_id": "E-1",
    "centre": "120",
    "call_type": "critical_patient",
    "lat": 30.0495,
    "lon": 119.9601,
}


def token(role: Role = Role.DISPATCHER, agency: Agency = Agency.EMS, **kw: Any) -> str:
    return mint(
        TEST_SECRET,
        role=role,
        agency=agency,
        sub=kw.pop("sub", "disp-120"),
        ttl_s=kw.pop("ttl_s", 600),
        **kw,
    )


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def server(settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    sync_redis.Redis.from_url(redis_url).flushdb()
    area = "119.8,29.9,120.1,30.2"  # around Fuyang's centre
    tuned = settings.model_copy(
        update={"service_area": area, "auth_failures_max": 5, "auth_lockout_s": 60}
    )
    with ServerThread(create_app(tuned)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def post_raw(server: ServerThread, body: bytes, tok: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json", **auth(tok or token())}
    # A generous timeout: a loaded CI machine takes seconds over 40,000 keys.
    return httpx.post(f"{server.url}/api/calls", content=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("nan", b'{"lat": NaN}'),
        ("infinity", b'{"lat": Infinity}'),
        ("lone surrogate", b'{"description": "\\ud800"}'),
        ("big integer", b'{"severity": 123456789012345678901234567890}'),
        ("deep", b'{"a":' * 40 + b"1" + b"}" * 40),
        ("not json", b"{call"),
    ],
)
def test_unparsable_or_hostile_json_is_a_named_422(
    server: ServerThread, name: str, body: bytes
) -> None:
    r = post_raw(server, body)
    assert r.status_code == 422, (name, r.status_code, r.text)
    assert "detail" in r.json()


def test_a_body_over_the_limit_is_413_unread(server: ServerThread) -> None:
    huge = b'{"call_id": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = post_raw(server, huge)
    assert r.status_code == 413 and "body" in r.json()["detail"]
    # The service kept answering the whole time.
    assert httpx.get(f"{server.url}/api/health").status_code == 200


def test_many_keys_are_refused_briefly_and_without_echo(server: ServerThread) -> None:
    # A body of 40,000 unknown keys (under the size limit): one short answer, nothing echoed.
    body = orjson.dumps({**CALL, "received_at": recently(), **{f"k{i}": i for i in range(40_000)}})
    r = post_raw(server, body)
    assert r.status_code == 422
    assert len(r.content) < 10_000 and "k39999" not in r.text
    assert "and 39" in r.json()["detail"]  # "(and N more)"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lat": True}, "lat"),
        ({"lat": "30.05"}, "lat"),
        ({"severity": 3.5}, "severity"),
        ({"lat": 89.9}, "lat"),  # beyond any map (and the service area)
        ({"lat": 31.2304, "lon": 121.4737}, "lat/lon"),  # Shanghai: outside the area
        ({"received_at": "0001-01-01T00:00:00+08:00"}, "received_at"),
        ({"received_at": "9999-12-31T00:00:00+08:00"}, "received_at"),
        ({"call_id": "x" * 200}, "call_id"),
        ({"description": "x" * 5000}, "description"),
    ],
)
def test_calls_must_be_well_typed_here_and_now(
    server: ServerThread, change: dict[str, Any], field: str
) -> None:
    body = {**CALL, "received_at": recently(), **change}
    r = httpx.post(f"{server.url}/api/calls", json=body, headers=auth(token()))
    assert r.status_code == 422, r.text
    assert field in r.text
    value = str(next(iter(change.values())))
    if len(value) > 20:
        assert value not in r.text  # named, not echoed


def test_a_good_call_still_lands(server: ServerThread) -> None:
    r = httpx.post(
        f"{server.url}/api/calls", json={**CALL, "received_at": recently()}, headers=auth(token())
    )
    assert r.status_code == 202, r.text


def test_oversized_strings_and_lists_elsewhere_are_refused(server: ServerThread) -> None:
    admin = auth(token(Role.ADMIN, Agency.POLICE, sub="admin"))
    unit = {"id": "A9", "agency": "ems", "type": "ambulance", "lat": 30.05, "lon": 119.96}
    r = httpx.put(
        f"{server.url}/api/units/A9", json={**unit, "callsign": "x" * 5000}, headers=admin
    )
    assert r.status_code == 422 and "callsign" in r.text
    hospitals = [{"id": f"H{i}", "name": "h", "lat": 30.05, "lon": 119.96} for i in range(1001)]
    assert (
        httpx.put(f"{server.url}/api/hospitals", json=hospitals, headers=admin).status_code == 422
    )
    long_name = [{"id": "H1", "name": "x" * 5000, "lat": 30.05, "lon": 119.96}]
    assert (
        httpx.put(f"{server.url}/api/hospitals", json=long_name, headers=admin).status_code == 422
    )
    bad_id = httpx.put(f"{server.url}/api/units/{'x' * 300}", json=unit, headers=admin)
    assert bad_id.status_code == 422
    empty_before = httpx.get(f"{server.url}/api/calls/dead?before=", headers=admin)
    assert empty_before.status_code == 422


def test_a_token_claiming_too_long_a_life_is_refused(server: ServerThread) -> None:
    century = token(ttl_s=100 * 365 * 86400)
    assert httpx.get(f"{server.url}/api/me", headers=auth(century)).status_code == 401
    assert httpx.get(f"{server.url}/api/me", headers=auth(token())).status_code == 200


def test_me_says_what_the_token_may_do(server: ServerThread) -> None:
    me = httpx.get(f"{server.url}/api/me", headers=auth(token())).json()
    assert me["role"] == "dispatcher" and me["agency"] == "ems"
    assert me["can"]["whistle"] is True and me["can"]["greenwave"] is False
    assert me["can"]["actions"]["whistle.sound"] is True
    traffic = auth(token(agency=Agency.TRAFFIC, sub="disp-122"))
    can = httpx.get(f"{server.url}/api/me", headers=traffic).json()["can"]
    assert can["whistle"] is False and can["greenwave"] is True


async def test_revocation_ends_rest_and_open_sockets(server: ServerThread) -> None:
    victim = token(Role.OBSERVER, Agency.POLICE, sub="leaked-screen")
    admin = auth(token(Role.ADMIN, Agency.POLICE, sub="admin"))
    url = f"ws://127.0.0.1:{server.port}/ws"
    async with connect(url, subprotocols=["yishao", f"yishao.token.{victim}"], proxy=None) as ws:
        assert ws.subprotocol == "yishao"
        while orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ready":
            pass
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post("/api/tokens/revoke", json={"sub": "leaked-screen"}, headers=admin)
            assert r.status_code == 200, r.text
            assert (await http.get("/api/me", headers=auth(victim))).status_code == 401
            refused = await http.post(
                "/api/tokens/revoke", json={"sub": "a", "role": "observer"}, headers=admin
            )
            assert refused.status_code == 422
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # A token minted for the subject after the revocation works again.
    await asyncio.sleep(1.1)
    fresh = token(Role.OBSERVER, Agency.POLICE, sub="leaked-screen")
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/api/me", headers=auth(fresh))).status_code == 200


def test_repeated_failures_lock_an_address_out_and_are_audited(server: ServerThread) -> None:
    for _ in range(5):
        assert httpx.get(f"{server.url}/api/me", headers=auth("forged")).status_code == 401
    locked = httpx.get(f"{server.url}/api/me", headers=auth(token()))
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    admin = auth(token(Role.ADMIN, Agency.POLICE, sub="admin"))
    assert httpx.get(f"{server.url}/api/me", headers=admin).status_code == 429  # the address


async def test_a_foreign_browser_origin_cannot_open_the_socket(server: ServerThread) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws?token={token()}"
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(url, origin="https://evil.example", proxy=None) as ws:  # type: ignore[arg-type]
            await asyncio.wait_for(ws.recv(), 10)
    own = f"http://127.0.0.1:{server.port}"
    async with connect(url, origin=own, proxy=None) as ws:  # type: ignore[arg-type]
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] in {"ready", "resync"}


def test_the_access_log_never_holds_a_token(caplog: pytest.LogCaptureFixture) -> None:
    secret = token()
    assert scrub(f"GET /ws?token={secret}&last_id=1-0 HTTP/1.1") == (
        "GET /ws?token=***&last_id=1-0 HTTP/1.1"
    )
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/reports/x?token={secret}", "1.1", 200), None,
    )  # fmt: skip
    AccessLogScrubber().filter(record)
    assert secret not in record.getMessage()


def test_html_pages_carry_a_content_security_policy(server: ServerThread) -> None:
    admin = auth(token(Role.ADMIN, Agency.POLICE, sub="admin"))
    page = "<html><body><script>alert(1)</script></body></html>"
    r = httpx.put(
        f"{server.url}/api/reports/csp-1",
        json={"summary": {}, "report": {}, "html": page},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    shown = httpx.get(f"{server.url}/reports/csp-1", headers=auth(token(Role.OBSERVER)))
    assert shown.status_code == 200
    policy = shown.headers["content-security-policy"]
    assert "sandbox" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert shown.headers["x-content-type-options"] == "nosniff"
