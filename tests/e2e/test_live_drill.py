"""A short live taxi-rollover drill against the real service, through its real sockets.

The scene is a busy signalised spot of the map; the drill's stations and hospital sit a minute
or so of driving away (the field runs in real time, so long drives would make a long test).
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from dispatch.auth import mint
from dispatch.core.rosters import RotationRule, duty_day
from dispatch.models import Agency, Hospital, Role, Unit, UnitType
from routing import Router
from routing.graph import haversine_m
from simulators import CoordinatorBehaviour, Scenario, SimFleet, parse_scenario
from simulators.fleet import Station
from simulators.live import LiveConfig, plan_live, run_live
from simulators.scenarios import BUILTIN_TOML
from tests.e2e.conftest import Service

pytestmark = pytest.mark.slow

SEED = 7
SILENT = "ems-coord-1"  # today's EMS primary: never acks, so the backup is summoned


def _scene(router: Router) -> tuple[float, float]:
    """The signal node with the most other signals within 500 m (a busy junction)."""
    g = router.graph
    idx = np.flatnonzero(g.node_signal)
    lat, lon = g.node_lat[idx], g.node_lon[idx]
    counts = [int((haversine_m(lat, lon, lat[k], lon[k]) < 500).sum()) for k in range(len(idx))]
    best = int(idx[int(np.argmax(counts))])
    return float(g.node_lat[best]), float(g.node_lon[best])


def _near(
    router: Router, scene: tuple[float, float], lo_s: float, hi_s: float, *, to_scene: bool
) -> list[tuple[float, float]]:
    """Nodes lo..hi seconds of driving from (or to) the scene whose route crosses 3+ signals."""
    g = router.graph
    points = list(zip(g.node_lat.tolist(), g.node_lon.tolist(), strict=True))
    times = (
        router.travel_times_to(scene, points)
        if to_scene
        else router.travel_times_from(scene, points)
    )
    found: list[tuple[float, float]] = []
    for i in np.flatnonzero((times.duration_s >= lo_s) & (times.duration_s <= hi_s)).tolist():
        p = points[i]
        route = router.route(p, scene) if to_scene else router.route(scene, p)
        if len(route.signals) >= 3 and all(
            float(haversine_m(p[0], p[1], q[0], q[1])) > 300 for q in found
        ):
            found.append(p)
        if len(found) == 4:
            break
    return found


def _fleet(router: Router, scene: tuple[float, float]) -> SimFleet:
    starts = _near(router, scene, 35, 75, to_scene=True)
    ends = _near(router, scene, 30, 75, to_scene=False)
    if len(starts) < 3 or not ends:
        pytest.skip("this map has no signalised spot with stations a minute away")
    plan = [
        (Agency.TRAFFIC, "TB", [UnitType.TRAFFIC_POLICE_CAR] * 2),
        (Agency.EMS, "EMS", [UnitType.AMBULANCE] * 2),
        (Agency.FIRE, "FS", [UnitType.FIRE_RESCUE, UnitType.FIRE_ENGINE]),
    ]
    stations: list[Station] = []
    units: list[Unit] = []
    for (agency, prefix, types), (lat, lon) in zip(plan, starts, strict=False):
        snap = router.snap((lat, lon))
        st = Station(f"{prefix}01", agency, router.node_index(snap.node_id), lat, lon)
        stations.append(st)
        for k, utype in enumerate(types, start=1):
            uid = f"{prefix}01-{utype.value}-{k}"
            units.append(
                Unit(
                    id=uid,
                    agency=agency,
                    type=utype,
                    callsign=uid,
                    station=st.id,
                    station_lat=lat,
                    station_lon=lon,
                )
            )
    hospital = Hospital(id="H01", name="Hospital 1", lat=ends[0][0], lon=ends[0][1])
    day = duty_day(datetime.now(UTC))
    roster = tuple(
        RotationRule(agency=a, names=[f"{a.value}-coord-{k}" for k in (1, 2, 3)], start=day)
        for a in (Agency.TRAFFIC, Agency.EMS, Agency.FIRE)
    )
    return SimFleet(tuple(stations), tuple(units), (hospital,), roster)


def _scenario(scene: tuple[float, float]) -> Scenario:
    """The built-in taxi rollover, once, at the scene, with quick coordinators."""
    data: dict[str, Any] = tomllib.loads(BUILTIN_TOML["taxi-rollover"])
    data["duration_h"] = 0.05
    data["place"] = [{"name": "junction", "kind": "point", "lat": scene[0], "lon": scene[1]}]
    data["event"][0].update(count=1, place="junction", to_h=0.01)
    # Callers stand at the junction: a caller's location error (up to 60 m in the built-in)
    # snaps the incident to another edge, up to ~20 s of driving from the scene the stations
    # were chosen for, and the drive would outlast the drain.
    for call in data["event"][0]["calls"]:
        call["offset_m"] = 0.0
    data["coordinators"] = CoordinatorBehaviour(
        ack_median_s=1.0, ack_sigma=0.3, min_ack_s=0.5, silent_share=0.0
    ).model_dump()
    return parse_scenario(data, source="e2e taxi-rollover")


def test_same_seed_same_calls_and_fleet(e2e_router: Router) -> None:
    scenario = parse_scenario(tomllib.loads(BUILTIN_TOML["taxi-rollover"]))
    day = datetime.now(UTC)
    fleet_a, calls_a = plan_live(e2e_router, scenario, SEED, day=day)
    fleet_b, calls_b = plan_live(e2e_router, scenario, SEED, day=day)
    assert fleet_a == fleet_b
    assert [c.call.model_dump() for c in calls_a] == [c.call.model_dump() for c in calls_b]
    _, calls_c = plan_live(e2e_router, scenario, SEED + 1, day=day)
    assert [c.call.model_dump() for c in calls_a] != [c.call.model_dump() for c in calls_c]


async def test_live_taxi_rollover(service: Service, e2e_router: Router) -> None:
    scene = _scene(e2e_router)
    fleet = _fleet(e2e_router, scene)
    scenario = _scenario(scene)
    steps: list[str] = []
    report = await run_live(
        url=service.url,
        secret=service.secret,
        router=e2e_router,
        scenario=scenario,
        seed=SEED,
        call_speedup=60.0,
        duration_s=30.0,
        progress=lambda _f, label: steps.append(label),
        config=LiveConfig(
            crew_time_scale=0.02,
            silent_coordinators=frozenset({SILENT}),
            # The two police cars cross the ambulances' and the engine's path at one junction
            # and wait there behind their (more important) priority green: ~2.5 min to arrive.
            # The drill ends as soon as every unit is back, so the bound costs only on failure.
            drain_s=200.0,
            whistle_wait_s=5.0,
        ),
        fleet=fleet,
    )
    s = report.summary
    assert report.mode == "live" and steps[-1] == "done"
    # Joint intake: the 122 and the 120 call are one incident.
    [response] = report.responses
    assert response.calls == 2 and {c.value for c in response.centres} == {"122", "120"}
    # The whistle: everyone acked or was escalated; the silent EMS primary's backup acked.
    assert response.whistle and response.call_to_whistle_s is not None
    by_name = {a.coordinator: a for a in response.acks}
    assert by_name[SILENT].status == "escalated" and by_name[SILENT].whistle_to_ack_s is None
    assert by_name["ems-coord-2"].tier == "backup" and by_name["ems-coord-2"].status == "acked"
    for name in ("traffic-coord-1", "fire-coord-1"):
        assert by_name[name].status == "acked"
    assert response.escalations >= 1 and s.escalations >= 1
    # Units drove and arrived, and the service heard it from their terminals.
    scene_legs = [leg for leg in response.legs if leg.leg == "scene"]
    assert scene_legs
    admin = {
        "Authorization": "Bearer "
        + mint(service.secret, role=Role.ADMIN, agency=Agency.POLICE, sub="t", ttl_s=600)
    }
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        events = (
            await http.get(f"/api/incidents/{response.incident_id}/events", headers=admin)
        ).json()
        kinds = [e["type"] for e in events]
        assert "whistle.alert" in kinds
        backups = [
            e for e in events
            if e["type"] == "whistle.summons" and e["data"]["summons"]["tier"] == "backup"
        ]  # fmt: skip
        assert [e["data"]["summons"]["coordinator"] for e in backups] == ["ems-coord-2"]
        on_scene = {
            e["data"]["unit_id"]
            for e in events
            if e["type"] == "unit.status" and e["data"]["status"] == "on_scene"
        }
        assert {leg.unit_id for leg in scene_legs} <= on_scene
        # Every unit the console assigned drove to the scene and arrived.
        assigned = {e["data"]["unit_id"] for e in events if e["type"] == "assignment.created"}
        assert len(assigned) == 5 and assigned == on_scene
        # Green wave: granted by the service, executed and served at the gateway, never two
        # conflicting greens at once.
        assert s.greenwave_responses == 1 and s.requests_granted > 0 and s.signals_served > 0
        assert report.grants and s.grant_conflicts == 0
        assert s.mean_arrival_s_with is not None and s.mean_arrival_s_without is not None
        # The report is stored and served.
        reader = mint(service.secret, role=Role.OBSERVER, agency=Agency.POLICE, sub="r", ttl_s=600)
        page = await http.get(f"/reports/{report.drill_id}", params={"token": reader})
        assert page.status_code == 200 and report.drill_id in page.text
        assert "live mode" in page.text
        stored = (await http.get(f"/api/reports/{report.drill_id}", headers=admin)).json()
        assert stored["mode"] == "live" and stored["summary"] == s.model_dump(mode="json")
