"""Each role sees exactly what it should, through the real server and a real websocket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from dispatch.infra.store import Store
from dispatch.models import Agency, Role
from tests.push._helpers import (
    T,
    bearer,
    commit,
    drain,
    drowning,
    events,
    incident,
    open_ws,
    ready,
    recv,
    sound,
    tok,
    until,
    whistle_incident,
)
from tests.utils import MS, ServerThread

QUIET = 300 * MS  # how long "nothing else arrives" is watched


async def test_dispatcher_sees_everything_and_bbox_narrows(
    server: ServerThread, store: Store
) -> None:
    console = await open_ws(server, tok(Role.DISPATCHER, Agency.EMS))
    narrow = await open_ws(server, tok(Role.DISPATCHER, Agency.FIRE))
    await ready(console)
    await ready(narrow)
    # Around People's Square only.
    await narrow.send('{"type": "subscribe", "bbox": [121.40, 31.20, 121.50, 31.26], "ref": "s1"}')
    sub = await until(narrow, lambda m: m["type"] == "subscribed")
    assert sub["data"]["ref"] == "s1" and sub["id"] is None
    inside = await commit(
        store, "incident.created", incident_id="I-in", incident=incident("I-in", 31.23, 121.47)
    )
    outside = await commit(
        store, "incident.created", incident_id="I-out", incident=incident("I-out", 30.0, 120.0)
    )
    # No place of its own: the hub's incident cache places these.
    a_in = await commit(store, "assignment.created", incident_id="I-in", unit_id="U1")
    a_out = await commit(store, "assignment.created", incident_id="I-out", unit_id="U2")
    roster = await commit(store, "roster.updated", entries=[], rules=[])
    seen = events(await drain(console, QUIET * 2))
    assert [m["id"] for m in seen] == [inside, outside, a_in, a_out, roster]
    first = seen[0]
    assert set(first) == {"type", "id", "ts", "incident_id", "actor", "data"}
    assert first["type"] == "incident.created" and first["data"]["incident"]["id"] == "I-in"
    # Placeless events (the roster) pass a bbox; the outside incident's do not.
    assert [m["id"] for m in events(await drain(narrow, QUIET))] == [inside, a_in, roster]
    await console.close()
    await narrow.close()


async def test_coordinator_gets_own_summons_then_that_incident_and_acks(
    server: ServerThread,
) -> None:
    ems = await open_ws(server, tok(Role.COORDINATOR, Agency.EMS, "coord-ems"))
    stranger = await open_ws(server, tok(Role.COORDINATOR, Agency.EMS, "coord-nobody"))
    await ready(ems)
    await ready(stranger)
    incident_id = await whistle_incident(server)
    whistle = await sound(server, incident_id)
    summons = await until(ems, lambda m: m["type"] == "whistle.summons")
    assert summons["incident_id"] == incident_id
    assert summons["data"]["summons"]["coordinator"] == "coord-ems"
    assert summons["data"]["summons"]["agency"] == "ems"
    # Later events of that incident reach the summoned coordinator: a 119 call merges in.
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        r = await http.post(
            "/api/calls",
            json=drowning("119-0001", "119"),
            headers=bearer(tok(Role.DISPATCHER, Agency.FIRE)),
        )
        assert r.status_code == 202
    merged = await until(ems, lambda m: m["type"] == "incident.merged")
    assert merged["incident_id"] == incident_id
    # Ack over the socket.
    await ems.send(f'{{"type": "ack", "whistle_id": "{whistle["id"]}", "ref": "a1"}}')
    # The reply and the committed event travel separately: either may come first.
    got: dict[str, dict[str, Any]] = {}
    while not {"ack.ok", "whistle.ack"} <= set(got):
        msg = await until(ems, lambda m: m["type"] in {"ack.ok", "whistle.ack", "error"})
        got[msg["type"]] = msg
    ok, acked = got["ack.ok"], got["whistle.ack"]
    assert ok["data"]["ref"] == "a1" and ok["data"]["summons"][0]["status"] == "acked"
    assert acked["data"]["summons"]["coordinator"] == "coord-ems"
    # The coordinator nobody summoned saw nothing, and their ack is refused with a reason.
    assert events(await drain(stranger, QUIET)) == []
    await stranger.send(f'{{"type": "ack", "whistle_id": "{whistle["id"]}"}}')
    refused = await until(stranger, lambda m: m["type"] in {"ack.ok", "error"})
    assert refused["type"] == "error" and refused["data"]["code"] in {"forbidden", "conflict"}
    await ems.close()
    await stranger.close()


async def test_coordinator_reconnecting_keeps_their_incident(server: ServerThread) -> None:
    incident_id = await whistle_incident(server)
    await sound(server, incident_id)
    # Connected only after the summons: the open whistle tells the hub they were summoned.
    fire = await open_ws(server, tok(Role.COORDINATOR, Agency.FIRE, "coord-fire"))
    await ready(fire)
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        await http.post(
            "/api/calls",
            json=drowning("119-0002", "119"),
            headers=bearer(tok(Role.DISPATCHER, Agency.FIRE)),
        )
    merged = await until(fire, lambda m: m["type"] == "incident.merged")
    assert merged["incident_id"] == incident_id
    await fire.close()


async def test_terminal_sees_its_unit_and_its_incident_only(
    server: ServerThread, store: Store
) -> None:
    term = await open_ws(server, tok(Role.TERMINAL, Agency.EMS, "AMB-1"))
    await ready(term)
    await commit(store, "incident.created", incident_id="I1", incident=incident("I1", 31.2, 121.4))
    await commit(store, "incident.created", incident_id="I2", incident=incident("I2", 31.3, 121.5))
    want = [
        await commit(store, "assignment.created", incident_id="I1", unit_id="AMB-1"),
        await commit(store, "route.planned", incident_id="I1", unit_id="AMB-1", leg="scene"),
        await commit(store, "greenwave.planned", incident_id="I1", unit_id="AMB-1"),
    ]
    await commit(store, "greenwave.planned", incident_id="I1", unit_id="AMB-2")
    await commit(store, "whistle.summons", incident_id="I1", summons={"coordinator": "x"})
    want.append(
        await commit(
            store, "incident.merged", incident_id="I1", incident=incident("I1", 31.2, 121.4)
        )
    )
    await commit(store, "incident.merged", incident_id="I2", incident=incident("I2", 31.3, 121.5))
    assert [m["id"] for m in events(await drain(term, QUIET))] == want
    await term.close()


async def test_signal_sees_its_intersections_and_cannot_widen(
    server: ServerThread, store: Store
) -> None:
    sig = await open_ws(server, tok(Role.SIGNAL, Agency.TRAFFIC, "tsc-7", scope=["101", "102"]))
    await ready(sig)
    await commit(store, "incident.created", incident_id="I1", incident=incident("I1", 31.2, 121.4))
    mine = await commit(store, "greenwave.request", incident_id="I1", intersection_id=101)
    await commit(store, "greenwave.request", incident_id="I1", intersection_id=999)
    await commit(store, "greenwave.planned", incident_id="I1", unit_id="AMB-1")
    cancel = await commit(store, "greenwave.cancel", intersection_id="102")
    assert [m["id"] for m in events(await drain(sig, QUIET))] == [mine, cancel]
    # Narrowing within scope is fine ...
    await sig.send('{"type": "subscribe", "intersections": ["102"]}')
    assert (await until(sig, lambda m: m["type"] == "subscribed"))["data"] == {
        "intersections": ["102"]
    }
    # ... asking beyond it ends the session with 4403.
    await sig.send('{"type": "subscribe", "intersections": ["102", "555"]}')
    with pytest.raises(ConnectionClosed) as closed:
        await drain(sig, T)
        await recv(sig)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_property_sees_incidents_in_its_compounds(server: ServerThread, store: Store) -> None:
    team = await open_ws(server, tok(Role.PROPERTY, Agency.PROPERTY, "pm-1", scope=["C1"]))
    await ready(team)
    joined = {"status": "joined"}
    theft = {"status": "open", "call_types": ["theft"], "property_join": joined}
    created = await commit(
        store,
        "incident.created",
        incident_id="I1",
        incident=incident("I1", 31.2, 121.4, compound_id="C1", **theft),
    )
    # Another compound's; one of a type off the compound list; one not joined; one of none.
    await commit(
        store,
        "incident.created",
        incident_id="I2",
        incident=incident("I2", 31.2, 121.4, compound_id="C2", **theft),
    )
    patient = {**theft, "call_types": ["critical_patient"]}
    await commit(
        store,
        "incident.created",
        incident_id="I4",
        incident=incident("I4", 31.2, 121.4, compound_id="C1", **patient),
    )
    await commit(
        store,
        "incident.created",
        incident_id="I5",
        incident=incident("I5", 31.2, 121.4, compound_id="C1", status="open", call_types=["theft"]),
    )
    await commit(store, "incident.created", incident_id="I3", incident=incident("I3", 31, 121))
    # Units are not the team's to know.
    await commit(store, "assignment.created", incident_id="I1", unit_id="SEC-1")
    await commit(store, "roster.updated", entries=[], rules=[])
    assert [m["id"] for m in events(await drain(team, QUIET))] == [created]
    await team.close()


@pytest.mark.parametrize("role", [Role.OBSERVER, Role.DISPATCHER, Role.SIGNAL])
async def test_roles_that_cannot_ack_are_closed_4403(server: ServerThread, role: Role) -> None:
    ws = await open_ws(server, tok(role, Agency.EMS))
    await ready(ws)
    await ws.send('{"type": "ack", "whistle_id": "W-1"}')
    with pytest.raises(ConnectionClosed) as closed:
        await drain(ws, T)
        await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_observer_and_admin_see_everything(server: ServerThread, store: Store) -> None:
    clients = [
        await open_ws(server, tok(Role.OBSERVER)),
        await open_ws(server, tok(Role.ADMIN)),
    ]
    for ws in clients:
        await ready(ws)
    ids = [
        await commit(store, "incident.created", incident_id="I1", incident=incident("I1", 1, 1)),
        await commit(store, "greenwave.request", incident_id="I1", intersection_id=5),
        await commit(store, "whistle.summons", incident_id="I1", summons={"coordinator": "c"}),
        await commit(store, "hospitals.updated", hospitals=[]),
    ]
    got = await asyncio.gather(*(drain(ws, QUIET) for ws in clients))
    for messages in got:
        assert [m["id"] for m in events(messages)] == ids
    for ws in clients:
        await ws.close()
