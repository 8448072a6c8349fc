"""Helpers of the push tests: tokens, real websocket clients, events committed through the Store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from dispatch.auth import mint
from dispatch.infra.store import Store
from dispatch.models import Agency, Role
from tests.utils import MS, TEST_SECRET, ServerThread, wait_for

# Generous but bounded: every wait in these tests is a multiple of the suite's time unit.
T = 5_000 * MS


def tok(
    role: Role,
    agency: Agency = Agency.POLICE,
    sub: str = "someone",
    *,
    scope: Iterable[str] = (),
    ttl_s: int = 600,
    now: float | None = None,
) -> str:
    return mint(TEST_SECRET, role=role, agency=agency, sub=sub, ttl_s=ttl_s, scope=scope, now=now)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ws_url(server: ServerThread, token: str | None = None, last_id: str | None = None) -> str:
    params = []
    if token is not None:
        params.append(f"token={token}")
    if last_id is not None:
        params.append(f"last_id={last_id}")
    query = ("?" + "&".join(params)) if params else ""
    return f"ws://127.0.0.1:{server.port}/ws{query}"


async def open_ws(
    server: ServerThread, token: str | None = None, last_id: str | None = None, **kw: Any
) -> ClientConnection:
    return await connect(
        ws_url(server, token, last_id), compression=None, proxy=None, open_timeout=T, **kw
    )


async def recv(ws: ClientConnection, within_s: float = T) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout=within_s)
    msg: dict[str, Any] = orjson.loads(raw)
    return msg


async def until(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], within_s: float = T
) -> dict[str, Any]:
    """The first message ``pred`` accepts (others are skipped)."""
    deadline = time.monotonic() + within_s
    while True:
        msg = await recv(ws, max(0.001, deadline - time.monotonic()))
        if pred(msg):
            return msg


async def ready(ws: ClientConnection) -> dict[str, Any]:
    return await until(ws, lambda m: m["type"] == "ready")


async def replayed(ws: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages before ``ready`` (``resync`` and replayed events), and ``ready`` itself."""
    before: list[dict[str, Any]] = []
    while (msg := await recv(ws))["type"] != "ready":
        before.append(msg)
    return before, msg


async def drain(ws: ClientConnection, for_s: float) -> list[dict[str, Any]]:
    """Every message that arrives within ``for_s`` seconds."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + for_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(await recv(ws, left))
        except TimeoutError:
            break
    return out


def events(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event messages (those with a stream id), skipping control and heartbeat ones."""
    return [m for m in messages if m.get("id") and m["type"] not in {"ready", "heartbeat"}]


async def commit(store: Store, type: str, *, incident_id: str | None = None, **data: Any) -> str:
    """Commit one event through the real Store (one Lua commit), as the services do."""
    tx = store.tx()
    tx.raw_event(type, data, actor="test", ts=datetime.now(UTC), incident_id=incident_id)
    (event_id,) = await store.commit(tx)
    return event_id


def incident(incident_id: str, lat: float, lon: float, **extra: Any) -> dict[str, Any]:
    """The part of an incident record the filters read (``data.incident``)."""
    return {"id": incident_id, "lat": lat, "lon": lon, "agencies": ["ems", "fire"], **extra}


def drowning(call_id: str = "120-0001", centre: str = "120") -> dict[str, Any]:
    """A whistle-eligible call received now (calls about one emergency merge within minutes)."""
    return {
        "call_id": call_id,
        "centre": centre,
        "call_type": "drowning",
        "lat": 31.2304,
        "lon": 121.4737,
        "received_at": datetime.now(UTC).isoformat(),
        "severity": 5,
    }


ROSTER = {
    "rules": [
        {"agency": "traffic", "names": ["coord-traffic"], "start": "2020-01-01"},
        {"agency": "ems", "names": ["coord-ems"], "start": "2020-01-01"},
        {"agency": "fire", "names": ["coord-fire"], "start": "2020-01-01"},
    ]
}


async def whistle_incident(server: ServerThread, call_id: str = "120-0001") -> str:
    """A roster, an eligible incident from a real call (via intake), and its id."""
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        r = await http.put("/api/rosters", json=ROSTER, headers=bearer(tok(Role.ADMIN)))
        assert r.status_code == 204, r.text
        r = await http.post(
            "/api/calls",
            json=drowning(call_id),
            headers=bearer(tok(Role.DISPATCHER, Agency.EMS)),
        )
        assert r.status_code == 202, r.text
        key = f"120:{call_id}"

        async def created() -> str | None:
            got = await http.get("/api/incidents", headers=bearer(tok(Role.OBSERVER)))
            for inc in got.json():
                if key in [f"{c['centre']}:{c['call_id']}" for c in inc["calls"]]:
                    return str(inc["id"])
            return None

        found: str = await wait_for(created, timeout_s=5)
        return found


async def sound(server: ServerThread, incident_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        r = await http.post(
            f"/api/incidents/{incident_id}/whistle",
            headers=bearer(tok(Role.DISPATCHER, Agency.EMS, "disp-120")),
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body
