"""Pivot posts in service (issue 16): plans stored and served, police units posted at posts and
ranked from them, over the real Shanghai graph, a real Redis and the real server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
import redis as sync_redis

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.core.pivot_plan import Plan, active_posts
from dispatch.events import EventType
from dispatch.flow.fleet import FleetUnit
from dispatch.flow.pivots import posting_timer_id
from dispatch.infra.store import Store
from dispatch.models import Agency, CallEvent, CallType, Centre, Role, UnitType
from dispatch.settings import Settings
from routing import Router
from tests.conftest import FakeClock, Stack, make_stack
from tests.pivot_sample import plan_json
from tests.utils import TEST_SECRET, ServerThread

SCENE = (31.2304, 121.4737)  # People's Square
# FakeClock's default: Sunday 2026-11-29 12:00 UTC, 20:00 in +08:00: November, weekend, 18-24.
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def nodes_at(router: Router, metres: list[float]) -> list[tuple[int, float, float]]:
    """Road nodes about ``metres`` from the scene: ``(node index, lat, lon)``."""
    lat = np.asarray(router.graph.node_lat)
    lon = np.asarray(router.graph.node_lon)
    d = np.hypot((lat - SCENE[0]) * 111_000, (lon - SCENE[1]) * 111_000 * math.cos(0.545))
    out = []
    for m in metres:
        i = int(np.argmin(np.abs(d - m)))
        out.append((i, float(lat[i]), float(lon[i])))
    return out


async def fight(stack: Stack, n: int = 1) -> str:
    call = CallEvent(
        call_id=f"F{n}",
        centre=Centre("122"),
        call_type=CallType.FIGHT,
        lat=SCENE[0],
        lon=SCENE[1],
        received_at=stack.clock.now,
        severity=2,
    )
    return (await stack.joint.handle(call)).incident_id


async def test_a_posted_unit_ranks_from_its_post(stack: Stack, shanghai_router: Router) -> None:
    post, near, far = nodes_at(shanghai_router, [250, 1500, 4000])
    for unit_id, (_, lat, lon) in (("P-far", far), ("P-near", near)):
        await stack.fleet.put_unit(
            FleetUnit(id=unit_id, agency=Agency.POLICE, type=UnitType.PATROL_CAR, lat=lat, lon=lon),
            actor="test",
        )
    # The stations' fixes go stale: ranking starts from the stations (the stale-position rule).
    assert isinstance(stack.clock, FakeClock)
    stack.clock.advance(600)
    plan = Plan.model_validate(plan_json([post]))
    await stack.pivots.put_plan(plan, actor="test")
    (standing,) = active_posts(plan, stack.clock())

    def police(recs: Any) -> list[Any]:
        (rec,) = [r for r in recs.agencies if r.agency is Agency.POLICE]
        return list(rec.candidates)

    before = police(await stack.recommender.recommend(await fight(stack, 1)))
    assert [c.unit_id for c in before] == ["P-near", "P-far"]

    posting = await stack.pivots.post_unit(
        standing.id, await stack.fleet.get_unit("P-far"), actor="jiang.110"
    )
    assert (posting.lat, posting.lon) == (standing.lat, standing.lon)
    after = police(await stack.recommender.recommend(await fight(stack, 2)))
    assert [c.unit_id for c in after] == ["P-far", "P-near"]
    from_post = after[0]
    expected = shanghai_router.travel_times_to(SCENE, [(standing.lat, standing.lon)])
    assert from_post.eta_s == pytest.approx(float(expected.duration_s[0]))
    assert from_post.from_station and from_post.stale

    # Released: it ranks from its home station again.
    await stack.pivots.release_unit(standing.id, "P-far", actor="jiang.110")
    again = police(await stack.recommender.recommend(await fight(stack, 3)))
    assert [c.unit_id for c in again] == ["P-near", "P-far"]
    assert again[1].eta_s == pytest.approx(before[1].eta_s)

    types = [e.type for e in await stack.store.events_after("0", count=10_000)]
    assert EventType.PIVOT_PLAN_STORED in types
    assert types.count(EventType.PIVOT_UNIT_POSTED) == 1
    assert types.count(EventType.PIVOT_UNIT_RELEASED) == 1


async def test_a_posting_counts_only_while_its_post_stands(
    stack: Stack, shanghai_router: Router
) -> None:
    (post,) = nodes_at(shanghai_router, [250])
    plan = Plan.model_validate(plan_json([post]))
    await stack.pivots.put_plan(plan, actor="test")
    (standing,) = await stack.pivots.standing()
    _, lat, lon = nodes_at(shanghai_router, [3000])[0]
    await stack.fleet.put_unit(
        FleetUnit(id="P1", agency=Agency.POLICE, type=UnitType.PATROL_CAR, lat=lat, lon=lon),
        actor="test",
    )
    await stack.pivots.post_unit(standing.id, await stack.fleet.get_unit("P1"), actor="t")
    assert set(await stack.pivots.stations(stack.clock())) == {"P1"}
    # Monday morning: the weekend-evening band is over, the post no longer stands.
    assert isinstance(stack.clock, FakeClock)
    stack.clock.advance(14 * 3600)
    assert await stack.pivots.stations(stack.clock()) == {}


# -- REST ---------------------------------------------------------------------------------


@pytest.fixture
def server(settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings, clock=lambda: NOW, run_workers=False)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def bearer(role: Role, agency: Agency, sub: str) -> dict[str, str]:
    token = mint(TEST_SECRET, role=role, agency=agency, sub=sub, ttl_s=21_600)
    return {"Authorization": f"Bearer {token}"}


POLICE = bearer(Role.DISPATCHER, Agency.POLICE, "jiang.110")
TRAFFIC = bearer(Role.DISPATCHER, Agency.TRAFFIC, "li.122")
EMS = bearer(Role.DISPATCHER, Agency.EMS, "wang.120")
OBSERVER = bearer(Role.OBSERVER, Agency.POLICE, "obs")


async def test_plan_routes(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get("/api/pivots/plan", headers=POLICE)).status_code == 404
        now = (await http.get("/api/pivots/now", headers=OBSERVER)).json()
        assert now["plan"] is None and now["posts"] == []

        bad = plan_json([(1, 31.23, 121.47)])
        bad["bands"][0]["posts"][0]["lat"] = "north"
        r = await http.put("/api/pivots/plan", json=bad, headers=POLICE)
        assert r.status_code == 422
        assert "lat" in r.text and "posts" in r.text
        r = await http.put(
            "/api/pivots/plan",
            json={**bad, "params": {"min_posts": 9, "max_posts": 3}},
            headers=POLICE,
        )
        assert r.status_code == 422 and "max_posts" in r.text
        good = plan_json([(1, 31.2310, 121.4740), (2, 31.2250, 121.4800)])
        assert (await http.put("/api/pivots/plan", json=good, headers=EMS)).status_code == 403

        r = await http.put("/api/pivots/plan", json=good, headers=POLICE)
        assert r.status_code == 200, r.text
        assert r.json()["seq"] == 1 and r.json()["posts"] == 2
        assert r.json()["label"] == "SYNTHETIC"
        got = (await http.get("/api/pivots/plan", headers=OBSERVER)).json()
        assert Plan.model_validate(got) == Plan.model_validate(good)

        now = (await http.get("/api/pivots/now", headers=OBSERVER)).json()
        assert (now["month"], now["day_kind"], now["hours"]) == (
            "2026-11",
            "weekend",
            "18:00-24:00",
        )
        assert [p["node_id"] for p in now["posts"]] == [1, 2]
        assert now["label"] == "SYNTHETIC" and now["cover_s"] == 60.0

        # A December plan: in force from now, but nothing of it stands in November.
        r = await http.put("/api/pivots/plan", json=plan_json([], month="2026-12"), headers=POLICE)
        assert r.status_code == 200
        history = (await http.get("/api/pivots/history", headers=OBSERVER)).json()
        assert [h["seq"] for h in history] == [1, 2]
        assert [h["months"] for h in history] == [["2026-11"], ["2026-12"]]
        now = (await http.get("/api/pivots/now", headers=OBSERVER)).json()
        assert now["plan"]["seq"] == 2 and now["posts"] == []


async def test_posting_routes(server: ServerThread, store: Store) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        good = plan_json([(1, 31.2310, 121.4740)])
        assert (await http.put("/api/pivots/plan", json=good, headers=POLICE)).status_code == 200
        post_id = good["bands"][0]["posts"][0]["id"]
        for unit_id, agency, utype in (
            ("P1", "police", "patrol_car"),
            ("T1", "traffic", "traffic_police_car"),
        ):
            headers = POLICE if agency == "police" else TRAFFIC
            r = await http.put(
                f"/api/units/{unit_id}",
                json={"id": unit_id, "agency": agency, "type": utype, "lat": 31.22, "lon": 121.46},
                headers=headers,
            )
            assert r.status_code in (200, 201), r.text
        url = f"/api/pivots/posts/{post_id}/units"
        # Another agency's unit: refused, naming the rule.
        r = await http.post(f"{url}/P1", headers=TRAFFIC)
        assert r.status_code == 403 and "P1" in r.text
        assert (await http.post(f"{url}/P1", headers=EMS)).status_code == 403
        r = await http.post("/api/pivots/posts/2026-11:weekend:18-24:99/units/P1", headers=POLICE)
        assert r.status_code == 404
        r = await http.post(f"{url}/P1", headers=POLICE)
        assert r.status_code == 201, r.text
        assert r.json()["post_id"] == post_id
        assert (await http.post(f"{url}/T1", headers=TRAFFIC)).status_code == 201
        now = (await http.get("/api/pivots/now", headers=OBSERVER)).json()
        assert now["posts"][0]["units"] == ["P1", "T1"]

        timers = await store.redis.zrange(store.keys.timers, 0, -1)
        assert sorted(t.decode() for t in timers) == [
            posting_timer_id("P1"),
            posting_timer_id("T1"),
        ]
        assert (await http.delete(f"{url}/P1", headers=POLICE)).status_code == 200
        # Released: its end-of-posting timer goes with it.
        timers = await store.redis.zrange(store.keys.timers, 0, -1)
        assert [t.decode() for t in timers] == [posting_timer_id("T1")]
        assert (await http.delete(f"{url}/P1", headers=POLICE)).status_code == 409
        now = (await http.get("/api/pivots/now", headers=OBSERVER)).json()
        assert now["posts"][0]["units"] == ["T1"]


# -- postings end with their post ---------------------------------------------------------


@pytest.fixture
def driven(settings: Settings, redis_url: str, clock: FakeClock) -> Iterator[ServerThread]:
    """The real server on a clock the test moves (timers fired by hand, as another instance)."""
    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings, clock=clock, run_workers=False)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


async def _put_units(http: httpx.AsyncClient, *unit_ids: str) -> None:
    for unit_id in unit_ids:
        r = await http.put(
            f"/api/units/{unit_id}",
            json={
                "id": unit_id,
                "agency": "police",
                "type": "patrol_car",
                "lat": 31.22,
                "lon": 121.46,
            },
            headers=POLICE,
        )
        assert r.status_code in (200, 201), r.text


async def _expired(store: Store) -> list[dict[str, Any]]:
    return [
        e.data
        for e in await store.events_after("0", count=10_000)
        if e.type == EventType.PIVOT_POSTING_EXPIRED
    ]


async def test_a_posting_ends_when_its_hours_end(
    driven: ServerThread, store: Store, clock: FakeClock
) -> None:
    other = make_stack(store, clock, None)  # another instance: it fires the timers
    async with httpx.AsyncClient(base_url=driven.url, timeout=30) as http:
        good = plan_json([(1, 31.2310, 121.4740)])
        assert (await http.put("/api/pivots/plan", json=good, headers=POLICE)).status_code == 200
        post_id = good["bands"][0]["posts"][0]["id"]
        await _put_units(http, "P1")
        assert (
            await http.post(f"/api/pivots/posts/{post_id}/units/P1", headers=POLICE)
        ).status_code == 201
        got = (await http.get("/api/pivots/postings", headers=OBSERVER)).json()
        assert [p["unit_id"] for p in got] == ["P1"]
        # Sunday 20:00 +08:00: the 18-24 band ends at midnight local, 16:00 UTC.
        end = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
        assert await other.timers.due_at(posting_timer_id("P1")) == end.timestamp()

        clock.advance((end - clock.now).total_seconds() - 1)  # 23:59:59: still standing
        assert await other.timers.fire_due() == 0
        assert len((await http.get("/api/pivots/postings", headers=OBSERVER)).json()) == 1
        assert set(await other.pivots.stations(clock())) == {"P1"}

        clock.advance(1)
        # Ended: never shown, even before the timer has run ...
        assert (await http.get("/api/pivots/postings", headers=OBSERVER)).json() == []
        assert await store.hash_all(store.keys.pivot_postings) != {}
        assert await _expired(store) == []
        # ... and the timer removes it with its event, once.
        assert await other.timers.fire_due() == 1
        assert await store.hash_all(store.keys.pivot_postings) == {}
        (event,) = await _expired(store)
        assert event["reason"] == "hours_ended"
        assert event["posting"]["unit_id"] == "P1" and event["posting"]["post_id"] == post_id
        assert await other.timers.due_at(posting_timer_id("P1")) is None
        assert await other.timers.fire_due() == 0
        assert await other.pivots.stations(clock()) == {}
        # The unit is free to be released no more: it is not posted.
        r = await http.delete(f"/api/pivots/posts/{post_id}/units/P1", headers=POLICE)
        assert r.status_code == 409


async def test_a_new_plan_ends_the_postings_at_posts_it_drops(
    driven: ServerThread, store: Store, clock: FakeClock
) -> None:
    other = make_stack(store, clock, None)
    async with httpx.AsyncClient(base_url=driven.url, timeout=30) as http:
        first = plan_json([(1, 31.2310, 121.4740), (2, 31.2250, 121.4800)])
        assert (await http.put("/api/pivots/plan", json=first, headers=POLICE)).status_code == 200
        kept_id, dropped_id = (first["bands"][0]["posts"][i]["id"] for i in (1, 0))
        await _put_units(http, "P1", "P2")
        for post_id, unit_id in ((dropped_id, "P1"), (kept_id, "P2")):
            r = await http.post(f"/api/pivots/posts/{post_id}/units/{unit_id}", headers=POLICE)
            assert r.status_code == 201
        # The new plan keeps post 2, moves post 1 away (node 3): P1's posting ends with the put.
        second = plan_json([(2, 31.2250, 121.4800), (3, 31.2400, 121.4900)])
        assert (await http.put("/api/pivots/plan", json=second, headers=POLICE)).status_code == 200
        got = (await http.get("/api/pivots/postings", headers=OBSERVER)).json()
        assert [p["unit_id"] for p in got] == ["P2"]
        assert set(await store.hash_all(store.keys.pivot_postings)) == {"P2"}
        (event,) = await _expired(store)
        assert event["reason"] == "post_retired" and event["posting"]["unit_id"] == "P1"
        # One commit: the plan's event and the expiry are neighbours in the log.
        types = [e.type for e in await store.events_after("0", count=10_000)]
        at = types.index(EventType.PIVOT_POSTING_EXPIRED)
        assert types[at - 1] == EventType.PIVOT_PLAN_STORED  # then its expiries
        assert await other.timers.due_at(posting_timer_id("P1")) is None
        assert await other.timers.due_at(posting_timer_id("P2")) is not None
        now = (await http.get("/api/pivots/now", headers=OBSERVER)).json()
        assert [p["units"] for p in now["posts"]] == [["P2"], []]

        # A December plan: nothing stands in November, so P2's posting ends too (retired).
        r = await http.put("/api/pivots/plan", json=plan_json([], month="2026-12"), headers=POLICE)
        assert r.status_code == 200
        assert (await http.get("/api/pivots/postings", headers=OBSERVER)).json() == []
        assert [e["reason"] for e in await _expired(store)] == ["post_retired", "post_retired"]
        clock.advance(5 * 3600)
        assert await other.timers.fire_due() == 0  # no timer left behind
