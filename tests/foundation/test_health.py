"""Liveness, readiness, the lag alarm and backpressure against a real Redis and server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis as sync_redis
from redis.asyncio import Redis

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.constants import CONSUMER_GROUP, Keys
from dispatch.core.backlog import AlarmChange, BacklogLimits
from dispatch.events import EventType
from dispatch.flow.watch import IntakeWatch
from dispatch.infra.store import Store
from dispatch.models import Agency, Role
from dispatch.services import build
from dispatch.settings import Settings
from tests.conftest import FakeClock
from tests.utils import TEST_SECRET, ServerThread, free_port, recently


def _headers() -> dict[str, str]:
    tok = mint(TEST_SECRET, role=Role.DISPATCHER, agency=Agency.TRAFFIC, sub="d", ttl_s=6 * 3600)
    return {"Authorization": f"Bearer {tok}"}


def _call(n: int) -> dict[str, object]:
    return {
        "call_id": f"122-{n:04d}",
        "centre": "122",
        "call_type": "traffic_accident_entrapment",
        "lat": 30.0495 + n * 0.01,
        "lon": 119.9601,
        "received_at": recently(),
        "severity": 3,
    }


async def test_the_alarm_is_raised_once_and_cleared_with_hysteresis(
    store: Store, clock: FakeClock
) -> None:
    limits = BacklogLimits(alarm=3, hard=10)
    watches = [IntakeWatch(store, limits=limits, clock=clock, instance=f"i{n}") for n in range(2)]
    calls = store.keys.calls
    for n in range(4):
        await store.redis.xadd(calls, {"n": str(n)})
    # No group yet: the whole stream is owed.
    assert (await watches[0].read()).size == 4
    await store.redis.xgroup_create(calls, CONSUMER_GROUP, id="0")
    assert await watches[0].sample() is AlarmChange.RAISE
    # The second instance sees it raised already: one alarm, one event.
    assert await watches[1].sample() is AlarmChange.KEEP
    assert await watches[0].sample() is AlarmChange.KEEP
    # Three owed: under the alarm, not under 80 % of it (2.4): still raised.
    await store.redis.xreadgroup(CONSUMER_GROUP, "c", {calls: ">"}, count=1)
    first = await store.redis.xpending_range(calls, CONSUMER_GROUP, min="-", max="+", count=1)
    await store.redis.xack(calls, CONSUMER_GROUP, first[0]["message_id"])
    assert await watches[1].sample() is AlarmChange.KEEP
    await store.redis.xgroup_setid(calls, CONSUMER_GROUP, id="$")
    assert await watches[1].sample() is AlarmChange.CLEAR
    assert await watches[0].sample() is AlarmChange.KEEP
    types = [e.type for e in await store.events_after("0")]
    assert types == [EventType.INTAKE_LAG_ALARM.value, EventType.INTAKE_LAG_CLEARED.value]
    raised = (await store.events_after("0"))[0]
    assert raised.data["backlog"] == 4 and raised.data["threshold"] == 3


@pytest.fixture
def overload_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"intake_lag_alarm": 2, "intake_backlog_max": 3, "intake_watch_s": 0.001}
    )


@pytest.fixture
def quiet_server(overload_settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(overload_settings, run_workers=False)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def test_live_and_ready_answer_without_a_token(quiet_server: ServerThread) -> None:
    live = httpx.get(f"{quiet_server.url}/api/health/live")
    assert live.status_code == 200 and live.json()["status"] == "alive"
    ready = httpx.get(f"{quiet_server.url}/api/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] is True and body["reasons"] == []
    assert body["checks"] == {"redis": True, "graph": True, "intake": True}


def test_backlog_makes_unready_then_refuses_calls_and_loses_none(
    quiet_server: ServerThread, overload_settings: Settings, redis_url: str
) -> None:
    url = quiet_server.url
    accepted = []
    for n in range(3):
        r = httpx.post(f"{url}/api/calls", json=_call(n), headers=_headers())
        assert r.status_code == 202, r.text
        accepted.append(r.json()["call_key"])
    ready = httpx.get(f"{url}/api/health/ready")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["intake backlog 3 over 2"]
    health = httpx.get(f"{url}/api/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert httpx.get(f"{url}/api/health/live").status_code == 200
    refused = httpx.post(f"{url}/api/calls", json=_call(9), headers=_headers())
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert "backlog" in refused.json()["detail"]

    # Everything accepted is still queued, and intake turns it into incidents.
    async def drain() -> None:
        client = Redis.from_url(redis_url)
        store = Store(client, Keys())
        svc = build(
            overload_settings, store, router=None, clock=lambda: datetime.now(UTC), instance="d"
        )
        await svc.intake.ensure_group()
        while await svc.intake.step(block_ms=10):
            pass
        for key in accepted:
            assert await store.incident_for_call(key) is not None
        await client.aclose()

    asyncio.run(drain())
    assert httpx.get(f"{url}/api/health/ready").status_code == 200
    again = httpx.post(f"{url}/api/calls", json=_call(9), headers=_headers())
    assert again.status_code == 202


def test_ready_and_health_fail_while_redis_is_gone(settings: Settings) -> None:
    gone = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with ServerThread(create_app(gone, run_workers=False)) as srv:
        assert httpx.get(f"{srv.url}/api/health/live").status_code == 200
        ready = httpx.get(f"{srv.url}/api/health/ready")
        health = httpx.get(f"{srv.url}/api/health")
    assert ready.status_code == 503 and "redis unreachable" in ready.json()["reasons"]
    assert health.status_code == 503 and health.json()["redis"] is False


def test_a_production_instance_without_a_graph_is_not_ready(settings: Settings) -> None:
    prod = settings.model_copy(update={"env": "prod"})
    with ServerThread(create_app(prod, run_workers=False)) as srv:
        ready = httpx.get(f"{srv.url}/api/health/ready")
    assert ready.status_code == 503 and ready.json()["reasons"] == ["no road graph loaded"]
