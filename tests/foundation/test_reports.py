"""Drill reports stored by a drill and read back by screens."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from tests.utils import TEST_SECRET, ServerThread


def token(role: Role) -> str:
    return mint(TEST_SECRET, role=role, agency=Agency.POLICE, sub="x", ttl_s=6 * 3600)


@pytest.fixture
def server(settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings, run_workers=False)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def test_report_round_trip(server: ServerThread) -> None:
    body = {
        "summary": {"responses": 3},
        "report": {"summary": {"responses": 3}, "responses": []},
        "html": "<html><body><h1>演练报告</h1></body></html>",
    }
    admin = {"Authorization": f"Bearer {token(Role.ADMIN)}"}
    observer = {"Authorization": f"Bearer {token(Role.OBSERVER)}"}
    assert (
        httpx.put(f"{server.url}/api/reports/d-1", json=body, headers=observer).status_code == 403
    )
    assert httpx.put(f"{server.url}/api/reports/d-1", json=body, headers=admin).status_code == 200
    assert [r["id"] for r in httpx.get(f"{server.url}/api/reports", headers=observer).json()] == [
        "d-1"
    ]
    assert (
        httpx.get(f"{server.url}/api/reports/d-1", headers=observer).json()["summary"]["responses"]
        == 3
    )
    page = httpx.get(f"{server.url}/reports/d-1", params={"token": token(Role.OBSERVER)})
    assert page.status_code == 200 and "演练报告" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert httpx.get(f"{server.url}/reports/d-1").status_code == 401
    assert (
        httpx.get(f"{server.url}/reports/nope", params={"token": token(Role.OBSERVER)}).status_code
        == 404
    )


@pytest.mark.parametrize("where", ["summary", "report", "html"])
def test_a_nul_character_is_a_422_naming_the_field(server: ServerThread, where: str) -> None:
    body: dict[str, object] = {"summary": {"a": 1}, "report": {"b": [1]}, "html": "<p>ok</p>"}
    body[where] = "x\x00y" if where == "html" else {"k\x00": ["v"]}
    admin = {"Authorization": f"Bearer {token(Role.ADMIN)}"}
    answer = httpx.put(f"{server.url}/api/reports/d-nul", json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    assert where in answer.text and "NUL" in answer.text
    assert httpx.get(f"{server.url}/api/reports/d-nul", headers=admin).status_code == 404
