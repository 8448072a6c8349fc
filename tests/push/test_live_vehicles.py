"""Terminals, signal controllers and the live map through real sockets on the Shanghai graph."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dispatch.api import create_app
from dispatch.models import Agency, Role
from dispatch.settings import HubConfig, Settings
from routing import Router
from routing import graph as graph_mod
from tests.push._helpers import bearer, open_ws, ready, recv, tok, until
from tests.utils import ServerThread, recently, wait_for

SCENE = {"lat": 31.2304, "lon": 121.4737}
# Minted at import: it must outlive a long suite run (the browser tests come first).
ADMIN = bearer(tok(Role.ADMIN, Agency.POLICE, "admin", ttl_s=24 * 3600))


@pytest.fixture
def graph_file(shanghai_router: Router, tmp_path: Path) -> Path:
    return graph_mod.save(shanghai_router.graph, tmp_path / "shanghai.npz")


@pytest.fixture
def live(settings: Settings, redis: Redis, graph_file: Path) -> Iterator[ServerThread]:
    app = create_app(
        settings.model_copy(update={"graph": graph_file, "position_frame_s": 0.2}),
        hub_config=HubConfig.model_validate({"heartbeat_s": 60}),
    )
    with ServerThread(app) as srv:
        yield srv


def setup_incident(srv: ServerThread, router: Router) -> tuple[str, dict[str, Any]]:
    """One ambulance and one traffic car; a protected critical-patient incident; both assigned."""
    url = srv.url
    for unit_id, agency, utype, node in (
        ("AMB-1", "ems", "ambulance", 1500),
        ("TP-1", "traffic", "traffic_police_car", 2500),
    ):
        lat, lon = float(router.graph.node_lat[node]), float(router.graph.node_lon[node])
        body = {"id": unit_id, "agency": agency, "type": utype, "lat": lat, "lon": lon}
        assert httpx.put(f"{url}/api/units/{unit_id}", json=body, headers=ADMIN).status_code == 200
    call = {
        "call_id": "L1",
        "centre": "120",
        "call_type": "critical_patient",
        "received_at": recently(),
        **SCENE,
    }
    assert httpx.post(f"{url}/api/calls", json=call, headers=ADMIN).status_code == 202

    async def created() -> str | None:
        async with httpx.AsyncClient() as c:
            found = (await c.get(f"{url}/api/incidents", headers=ADMIN)).json()
            return str(found[0]["id"]) if found else None

    incident_id = str(asyncio.run(wait_for(created)))
    assert (
        httpx.post(f"{url}/api/incidents/{incident_id}/greenwave", headers=ADMIN).status_code == 200
    )
    done = httpx.post(
        f"{url}/api/incidents/{incident_id}/assignments",
        json={"unit_ids": ["AMB-1", "TP-1"]},
        headers=ADMIN,
    )
    assert done.status_code == 201, done.text
    amb = next(r for r in done.json() if r["unit_id"] == "AMB-1")
    return incident_id, amb


async def test_terminal_positions_reach_signals_and_screens(
    live: ServerThread, shanghai_router: Router
) -> None:
    _incident_id, amb = await asyncio.to_thread(setup_incident, live, shanghai_router)
    signals = amb["scene"]["route"]["signals"]
    assert len(signals) >= 2
    first, second = signals[0], signals[1]
    console = await open_ws(live, tok(Role.DISPATCHER, Agency.EMS, "console"))
    terminal = await open_ws(live, tok(Role.TERMINAL, Agency.EMS, "AMB-1"))
    ctrl = await open_ws(
        live, tok(Role.SIGNAL, Agency.TRAFFIC, "ctrl-1", scope=[str(first["node_id"])])
    )
    other_ctrl = await open_ws(live, tok(Role.SIGNAL, Agency.TRAFFIC, "ctrl-2", scope=["1"]))
    try:
        for ws in (console, terminal, ctrl, other_ctrl):
            await ready(ws)
        # A fix at the second signal: the first is passed (cancel), those ahead are kept.
        await terminal.send(
            f'{{"type":"position","lat":{second["lat"]},"lon":{second["lon"]},"speed_kph":42,"ref":"p1"}}'
        )
        ok = await until(terminal, lambda m: m["type"] == "position.ok")
        assert ok["data"]["ref"] == "p1" and ok["data"]["eta_s"] > 0
        cancel = await until(ctrl, lambda m: m["type"] == "greenwave.cancel")
        assert cancel["data"]["intersection_id"] == first["node_id"]
        assert cancel["data"]["unit_id"] == "AMB-1"
        # The screen gets a batched frame with the unit and its ETA, not one message per fix.
        frame = await until(console, lambda m: m["type"] == "positions")
        [unit] = [u for u in frame["data"]["units"] if u["unit_id"] == "AMB-1"]
        assert unit["eta_s"] == pytest.approx(ok["data"]["eta_s"], abs=0.2)
        # A controller only ever sees its own intersections.
        with pytest.raises(TimeoutError):
            await until(other_ctrl, lambda m: m["type"].startswith("greenwave"), within_s=0.5)
        # The terminal may report status; a signal controller may not.
        await terminal.send('{"type":"status","status":"en_route"}')
        assert (await until(terminal, lambda m: m["type"] == "status.ok"))["data"][
            "status"
        ] == "en_route"
        await ctrl.send('{"type":"status","status":"on_scene"}')
        closed = await asyncio.wait_for(ctrl.wait_closed(), timeout=5)
        assert closed is None and ctrl.close_code == 4403
    finally:
        for ws in (console, terminal, ctrl, other_ctrl):
            await ws.close()


async def test_controller_report_flows_to_the_terminal(
    live: ServerThread, shanghai_router: Router
) -> None:
    _incident_id, amb = await asyncio.to_thread(setup_incident, live, shanghai_router)
    node = amb["scene"]["route"]["signals"][1]["node_id"]
    terminal = await open_ws(live, tok(Role.TERMINAL, Agency.EMS, "AMB-1"))
    ctrl = await open_ws(
        live, tok(Role.SIGNAL, Agency.TRAFFIC, "ctrl-9", scope=[str(node)]), last_id="0"
    )
    try:
        await ready(terminal)
        # Replayed from the log: the request this controller missed while it was offline.
        request = await until(ctrl, lambda m: m["type"] == "greenwave.request")
        assert request["data"]["status"] == "granted"
        report = {
            "type": "signal_status",
            "intersection_id": node,
            "request_id": request["data"]["request_id"],
            "status": "served",
        }
        await ctrl.send(json.dumps(report))
        assert (await until(ctrl, lambda m: m["type"] == "signal_status.ok"))["data"][
            "status"
        ] == "served"
        status = await until(terminal, lambda m: m["type"] == "greenwave.status")
        assert status["data"]["status"] == "served" and status["data"]["intersection_id"] == node
        # Out of scope: closed with 4403.
        await ctrl.send(
            '{"type":"signal_status","intersection_id":1,"request_id":"x","status":"served"}'
        )
        await asyncio.wait_for(ctrl.wait_closed(), timeout=5)
        assert ctrl.close_code == 4403
    finally:
        await terminal.close()
        await ctrl.close()


async def test_unknown_unit_terminal_gets_an_error(live: ServerThread) -> None:
    ghost = await open_ws(live, tok(Role.TERMINAL, Agency.EMS, "GHOST"))
    try:
        await ready(ghost)
        await ghost.send('{"type":"position","lat":31.23,"lon":121.47}')
        err = await until(ghost, lambda m: m["type"] == "error")
        assert err["data"]["code"] == "not_found"
        await ghost.send('{"type":"position","lat":"north","lon":121.47}')
        assert (await recv(ghost))["type"] == "error"  # the socket lives on
    finally:
        await ghost.close()
