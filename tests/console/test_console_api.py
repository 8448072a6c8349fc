"""What the pages read beyond the core API, through a real server and Redis: ``/api/me`` (its
capabilities checked against what the service actually refuses), ``/api/map``, places, duty,
today's figures, and the pages themselves (built or not)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.core.rosters import duty_day
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from routing import Router, build_graph_file, sample_graph_path
from tests.utils import TEST_SECRET, ServerThread, wait_for

pytestmark = pytest.mark.slow


def bearer(
    role: str, agency: str, sub: str = "someone", scope: list[str] | None = None
) -> dict[str, str]:
    t = mint(
        TEST_SECRET,
        role=Role(role),
        agency=Agency(agency),
        sub=sub,
        ttl_s=6 * 3600,
        scope=scope or [],
    )
    return {"Authorization": f"Bearer {t}"}


def admin() -> dict[str, str]:
    return bearer("admin", "police", "admin")


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        source = sample_graph_path()
    except FileNotFoundError as exc:
        pytest.skip(f"no real OSM map: {exc}")
    return build_graph_file(source, tmp_path_factory.mktemp("console-graph") / "map.npz")


def _serve(settings: Settings, redis_url: str) -> Iterator[ServerThread]:
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).flushdb()
    with ServerThread(create_app(settings)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def server(settings: Settings, redis_url: str, graph_file: Path) -> Iterator[ServerThread]:
    yield from _serve(settings.model_copy(update={"graph": graph_file}), redis_url)


def _call(centre: str, call_id: str, call_type: str, lat: float, lon: float) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "centre": centre,
        "call_type": call_type,
        "lat": lat,
        "lon": lon,
        "received_at": datetime.now(UTC).isoformat(),
    }


PRINCIPALS = [
    ("dispatcher", "ems"),
    ("dispatcher", "fire"),
    ("dispatcher", "traffic"),
    ("dispatcher", "police"),
    ("observer", "police"),
    ("coordinator", "traffic"),
    ("terminal", "ems"),
    ("property", "property"),
    ("admin", "police"),
    ("admin", "ems"),
]


async def test_me_offers_exactly_what_the_service_allows(
    server: ServerThread, graph_file: Path
) -> None:
    """For every kind of principal, ``can.whistle`` / ``can.greenwave`` / ``can.post_calls``
    are true exactly where the real endpoints do not answer 403."""
    router = Router.from_file(graph_file)
    lat, lon = float(router.graph.node_lat[0]), float(router.graph.node_lon[0])
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.post(
            "/api/calls",
            headers=bearer("dispatcher", "ems"),
            json=_call("120", "me-1", "drowning", lat, lon),
        )
        assert r.status_code == 202

        async def incident_id() -> str | None:
            found = (await http.get("/api/incidents", headers=admin())).json()
            return found[0]["id"] if found else None

        iid = await wait_for(incident_id)
        for n, (role, agency) in enumerate(PRINCIPALS):
            who = bearer(role, agency, f"{role}-{agency}", ["c-1"] if role == "property" else [])
            me = (await http.get("/api/me", headers=who)).json()
            assert (me["role"], me["agency"]) == (role, agency)
            can = me["can"]
            whistle = await http.post(f"/api/incidents/{iid}/whistle", headers=who, json={})
            assert (whistle.status_code != 403) is can["whistle"], (role, agency, whistle.text)
            wave = await http.post(f"/api/incidents/{iid}/greenwave", headers=who)
            assert (wave.status_code != 403) is can["greenwave"], (role, agency, wave.text)
            centre = {"ems": "120", "fire": "119", "traffic": "122"}.get(agency, "120")
            posted = await http.post(
                "/api/calls", headers=who, json=_call(centre, f"me-{n}-x", "noise", lat, lon)
            )
            assert (posted.status_code != 403) is can["post_calls"], (role, agency, posted.text)
            assert me["page"] == {"coordinator": "/coordinator", "terminal": "/terminal"}.get(
                role, "/terminal" if role == "property" else "/"
            )
        prop = (
            await http.get("/api/me", headers=bearer("property", "property", "p", ["c-1"]))
        ).json()
        assert prop["can"]["compounds"] == ["c-1"]
        assert (await http.get("/api/me")).status_code == 401


async def test_map_is_simplified_by_zoom_and_cut_to_the_box(server: ServerThread) -> None:
    who = bearer("observer", "police")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get("/api/map")).status_code == 401
        far = await http.get("/api/map?zoom=11", headers=who)
        near = await http.get("/api/map?zoom=16", headers=who)
        assert far.status_code == near.status_code == 200
        assert far.headers["content-type"].startswith("application/geo+json")
        far_json, near_json = far.json(), near.json()
        assert far_json["type"] == "FeatureCollection"
        w, s, e, n = near_json["bounds"]
        assert w < e and s < n
        # Fewer, simpler lines from afar: minor roads dropped, geometry thinned.
        points = lambda fc: sum(len(f["geometry"]["coordinates"]) for f in fc["features"])  # noqa: E731
        assert len(far_json["features"]) <= len(near_json["features"])
        assert points(far_json) < points(near_json)
        assert {f["properties"]["r"] for f in far_json["features"]} <= {0, 1, 2}
        cut = (
            await http.get(
                f"/api/map?zoom=16&bbox={w},{s},{(w + e) / 2},{(s + n) / 2}", headers=who
            )
        ).json()
        assert 0 < len(cut["features"]) < len(near_json["features"])
        for bad in ("1,2,3", "a,b,c,d", "10,0,5,1", "0,50,1,40", "nan,0,1,1"):
            r = await http.get(f"/api/map?bbox={bad}", headers=who)
            assert r.status_code == 422 and "bbox" in r.text, bad
        r = await http.get("/api/map?zoom=99", headers=who)
        assert r.status_code == 422 and "zoom" in r.text
    # Compressed for a client that asks (a city's roads are a megabyte of JSON).
    with httpx.stream(
        "GET", f"{server.url}/api/map?zoom=16", headers={**who, "Accept-Encoding": "gzip"}
    ) as raw:
        assert raw.headers.get("content-encoding") == "gzip"
        body = b"".join(raw.iter_raw())
    assert gzip.decompress(body).startswith(b'{"type":"FeatureCollection"')


async def test_places_duty_and_todays_figures(server: ServerThread, graph_file: Path) -> None:
    router = Router.from_file(graph_file)
    lat, lon = float(router.graph.node_lat[10]), float(router.graph.node_lon[10])
    day = duty_day(datetime.now(UTC))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for uid, agency, utype in (("A-1", "ems", "ambulance"), ("A-2", "ems", "ambulance")):
            r = await http.put(
                f"/api/units/{uid}",
                headers=admin(),
                json={
                    "id": uid,
                    "agency": agency,
                    "type": utype,
                    "lat": lat,
                    "lon": lon,
                    "station": "S1",
                },
            )
            assert r.status_code == 200, r.text
        r = await http.put(
            "/api/hospitals",
            headers=admin(),
            json=[{"id": "H1", "name": "Ruijin", "lat": lat, "lon": lon}],
        )
        assert r.status_code == 200
        rules = [{"agency": "ems", "names": ["e1", "e2", "e3"], "start": day.isoformat()}]
        assert (
            await http.put("/api/rosters", headers=admin(), json={"rules": rules})
        ).status_code == 204

        places = (
            await http.get("/api/map/places", headers=bearer("terminal", "ems", "A-1"))
        ).json()
        assert [h["id"] for h in places["hospitals"]] == ["H1"]
        assert places["stations"] == [
            {"name": "S1", "agency": "ems", "lat": lat, "lon": lon, "units": ["A-1", "A-2"]}
        ]
        signal = bearer("signal", "traffic", "gw", ["*"])
        assert (await http.get("/api/map/places", headers=signal)).status_code == 403

        duty = (
            await http.get("/api/console/duty", headers=bearer("coordinator", "ems", "e2"))
        ).json()
        assert [d["day"] for d in duty] == [day.isoformat(), (day + timedelta(days=1)).isoformat()]
        today_ems = next(x for x in duty[0]["duty"] if x["agency"] == "ems")
        tomorrow_ems = next(x for x in duty[1]["duty"] if x["agency"] == "ems")
        assert (today_ems["primary"], today_ems["backup"]) == ("e1", "e2")
        assert (tomorrow_ems["primary"], tomorrow_ems["backup"]) == ("e2", "e3")
        # A coordinator sees their own agency's duty; a dispatcher every whistle agency's.
        assert {d["agency"] for d in duty[0]["duty"]} == {"ems"} and duty[0]["missing"] == []
        joint = (await http.get("/api/console/duty", headers=bearer("dispatcher", "ems"))).json()
        assert set(joint[0]["missing"]) == {"traffic", "fire"}
        assert (await http.get("/api/console/duty?days=0", headers=admin())).status_code == 422

        before = (await http.get("/api/console/today", headers=admin())).json()
        assert before["incidents"] == 0 and before["whistles"] == 0
        r = await http.post(
            "/api/calls",
            headers=bearer("dispatcher", "ems"),
            json=_call("120", "f-1", "critical_patient", lat, lon),
        )
        assert r.status_code == 202

        async def one_incident() -> dict[str, Any] | None:
            f = (await http.get("/api/console/today", headers=admin())).json()
            return f if f["incidents"] == 1 else None

        figures = await wait_for(one_incident)
        assert figures["open_incidents"] == 1
        assert (
            await http.get("/api/console/today", headers=bearer("terminal", "ems", "A-1"))
        ).status_code == 403


def test_pages_say_how_to_build_them(
    settings: Settings, redis_url: str, graph_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-build"
    empty.mkdir()
    for srv in _serve(
        settings.model_copy(update={"web_dir": empty, "graph": graph_file}), redis_url
    ):
        for page in ("/", "/terminal", "/coordinator"):
            r = httpx.get(f"{srv.url}{page}")
            assert r.status_code == 503
            assert "make web" in r.text and "text/html" in r.headers["content-type"]
        assert httpx.get(f"{srv.url}/assets/index.js").status_code == 404


def test_built_pages_and_assets_are_served(
    settings: Settings, redis_url: str, graph_file: Path, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>console</title>")
    (dist / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("nope")
    for srv in _serve(
        settings.model_copy(update={"web_dir": dist, "graph": graph_file}), redis_url
    ):
        r = httpx.get(f"{srv.url}/")
        assert r.status_code == 200 and "console" in r.text
        assert r.headers["cache-control"] == "no-cache"
        js = httpx.get(f"{srv.url}/assets/app-1234.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert "immutable" in js.headers["cache-control"]
        for sneaky in (
            "/assets/../secret.txt",
            "/assets/%2e%2e/secret.txt",
            "/assets/..%2fsecret.txt",
        ):
            assert httpx.get(f"{srv.url}{sneaky}").status_code == 404, sneaky
        assert httpx.get(f"{srv.url}/terminal").status_code == 503
