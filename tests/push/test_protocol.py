"""The socket protocol: authentication, close codes, bad messages, and the snapshot."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from dispatch.core.audience import stream_key
from dispatch.infra.store import Store
from dispatch.models import Agency, Role
from tests.push._helpers import (
    T,
    bearer,
    commit,
    open_ws,
    ready,
    recv,
    sound,
    tok,
    until,
    whistle_incident,
)
from tests.push.conftest import ServerFactory
from tests.utils import ServerThread


async def _close_code(ws: Any) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await recv(ws)
    assert closed.value.rcvd is not None
    code: int = closed.value.rcvd.code
    return code


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        tok(Role.DISPATCHER, now=time.time() - 3600, ttl_s=60),  # expired
        tok(Role.DISPATCHER).replace(".", ".x", 1),  # tampered
    ],
)
async def test_bad_or_expired_token_is_closed_4401(server: ServerThread, token: str) -> None:
    ws = await open_ws(server, token)
    assert await _close_code(ws) == 4401


async def test_token_as_first_message_and_errors_before_it(
    server: ServerThread, store: Store
) -> None:
    ws = await open_ws(server)
    await ws.send("hello?")
    err = await recv(ws)
    assert err["type"] == "error" and err["data"]["code"] == "auth_required"
    first = await commit(store, "incident.updated", incident_id="I1", n=1)
    second = await commit(store, "incident.updated", incident_id="I1", n=2)
    await ws.send(
        orjson.dumps({"type": "auth", "token": tok(Role.OBSERVER), "last_id": first}).decode()
    )
    got = [await recv(ws), await recv(ws)]  # ready, and the missed event (before or after)
    assert sorted(m["type"] for m in got) == ["incident.updated", "ready"]
    assert [m["id"] for m in got if m["type"] != "ready"] == [second]
    await ws.close()
    bad = await open_ws(server)
    await bad.send('{"type": "auth", "token": "nope"}')
    assert await _close_code(bad) == 4401


async def test_no_auth_in_time_is_closed_4401(servers: ServerFactory) -> None:
    server = servers(auth_timeout_s=0.2)
    ws = await open_ws(server)
    assert await _close_code(ws) == 4401


async def test_token_expiring_while_connected_is_closed_4401(servers: ServerFactory) -> None:
    server = servers(heartbeat_s=0.05, block_ms=20)
    # Three seconds: ``iat`` is whole seconds, so a one-second token can lapse before the
    # ``ready`` frame reaches a loaded machine's client.
    ws = await open_ws(server, tok(Role.OBSERVER, ttl_s=3))
    await ready(ws)
    assert await _close_code(ws) == 4401


async def test_heartbeat_carries_the_resume_position(servers: ServerFactory, store: Store) -> None:
    server = servers(heartbeat_s=0.05, block_ms=20)
    ws = await open_ws(server, tok(Role.TERMINAL, sub="AMB-9"))
    await ready(ws)
    unseen = await commit(store, "incident.updated", incident_id="I1", n=1)
    beat = await until(ws, lambda m: m["type"] == "heartbeat" and m["id"] == unseen)
    assert beat["data"]["instance"]
    await ws.close()


def test_plain_http_to_the_socket_is_refused(server: ServerThread) -> None:
    r = httpx.get(f"{server.url}/ws")
    assert r.status_code in {400, 404, 426}


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Objects that look like messages: a real type with wrong or random fields.
MESSAGE_LIKE = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "ack", "auth", "ping", "teleport", "", "SUBSCRIBE"])},
    optional={
        "agencies": JSON,
        "bbox": JSON,
        "incidents": JSON,
        "whistle_id": JSON,
        "ref": JSON,
        "extra": JSON,
    },
)
GARBAGE = st.text(max_size=200) | JSON.map(json.dumps) | MESSAGE_LIKE.map(json.dumps)
REPLIES = {"error", "pong", "subscribed", "ack.ok"}


def _restricted(text: str) -> bool:
    """A message type a coordinator may not send (terminal and controller messages)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("type") in {"position", "status", "signal_status"}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(messages=st.lists(GARBAGE, min_size=1, max_size=15))
def test_malformed_messages_get_error_replies_and_the_socket_lives(
    server: ServerThread, messages: list[str]
) -> None:
    async def session() -> None:
        # Besides the restricted types skipped above, a coordinator may send every type.
        ws = await open_ws(server, tok(Role.COORDINATOR, Agency.EMS, "coord-x"))
        await ready(ws)
        for text in messages:
            if _restricted(text):
                continue  # a role violation closes with 4403 (tested elsewhere), not an error
            await ws.send(text)
            reply = await until(ws, lambda m: m["type"] != "heartbeat")
            assert reply["type"] in REPLIES, (text, reply)
            assert reply["id"] is None
        await ws.send('{"type": "ping", "ref": "last"}')
        pong = await until(ws, lambda m: m["type"] == "pong")
        assert pong["data"]["ref"] == "last"
        await ws.send(b"\x00binary")
        assert (await recv(ws))["data"]["code"] == "bad_message"
        await ws.close()

    asyncio.run(session())


async def test_snapshot_by_role(server: ServerThread) -> None:
    incident_id = await whistle_incident(server)
    whistle = await sound(server, incident_id)
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:

        async def snap(token: str) -> httpx.Response:
            return await http.get("/api/snapshot", headers=bearer(token))

        r = await snap(tok(Role.DISPATCHER, Agency.EMS))
        assert r.status_code == 200
        body = r.json()
        assert [i["id"] for i in body["incidents"]] == [incident_id]
        assert [w["id"] for w in body["whistles"]] == [whistle["id"]]
        # The id is read before the state: the whistle's events are at or before it.
        trail = await http.get(
            f"/api/incidents/{incident_id}/events", headers=bearer(tok(Role.OBSERVER))
        )
        assert stream_key(trail.json()[-1]["id"]) <= stream_key(body["event_id"])
        mine = (await snap(tok(Role.COORDINATOR, Agency.FIRE, "coord-fire"))).json()
        assert [w["id"] for w in mine["whistles"]] == [whistle["id"]]
        assert [i["id"] for i in mine["incidents"]] == [incident_id]
        other = (await snap(tok(Role.COORDINATOR, Agency.FIRE, "coord-other"))).json()
        assert other["incidents"] == [] and other["whistles"] == []
        term = (await snap(tok(Role.TERMINAL, Agency.EMS, "AMB-404"))).json()
        assert term["units"] == [] and term["incidents"] == [] and term["whistles"] == []
        assert (await snap(tok(Role.PROPERTY, Agency.PROPERTY, scope=["C1"]))).json()[
            "incidents"
        ] == []
        assert (await snap(tok(Role.SIGNAL, Agency.TRAFFIC, scope=["1"]))).status_code == 403
        assert (await http.get("/api/snapshot")).status_code == 401
