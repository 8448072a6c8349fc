"""Fan-out across instances, resume without gap or duplicate, resync, and slow-client cuts."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from dispatch.core.audience import stream_key
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
    replayed,
    tok,
    until,
)
from tests.push.conftest import ServerFactory
from tests.utils import MS, wait_for


async def test_event_committed_through_one_instance_reaches_clients_of_another(
    servers: ServerFactory,
) -> None:
    a = servers()  # runs intake: the call becomes an incident here
    b = servers(run_workers=False)  # only serves websockets
    on_a = await open_ws(a, tok(Role.DISPATCHER, Agency.EMS))
    on_b = await open_ws(b, tok(Role.OBSERVER))
    await ready(on_a)
    await ready(on_b)
    async with httpx.AsyncClient(base_url=a.url, timeout=T) as http:
        r = await http.post(
            "/api/calls", json=drowning(), headers=bearer(tok(Role.DISPATCHER, Agency.EMS))
        )
        assert r.status_code == 202
    got_a = await until(on_a, lambda m: m["type"] == "incident.created")
    got_b = await until(on_b, lambda m: m["type"] == "incident.created")
    assert got_a == got_b  # the same envelope, the same stream id
    assert got_b["data"]["call"]["call_id"] == "120-0001"
    await on_a.close()
    await on_b.close()


async def test_resume_replays_missed_events_in_order_without_gap_or_duplicate(
    servers: ServerFactory, store: Store, redis: Redis
) -> None:
    server = servers()
    ws = await open_ws(server, tok(Role.DISPATCHER, Agency.FIRE))
    await ready(ws)
    before = [await commit(store, "incident.updated", incident_id=f"I{n}", n=n) for n in range(3)]
    seen = events(await drain(ws, 300 * MS))
    assert [m["id"] for m in seen] == before, [(m["type"], m["data"]) for m in seen]
    last_id = seen[-1]["id"]
    await ws.close()
    # Missed while away.
    for n in range(3, 40):
        await commit(store, "incident.updated", incident_id=f"I{n}", n=n)

    # And more committed while the client reconnects and replays (the hand-over to live).
    async def keep_committing() -> None:
        for n in range(40, 140):
            await commit(store, "incident.updated", incident_id=f"I{n}", n=n)
            if n % 10 == 0:
                await asyncio.sleep(0.002)

    writer = asyncio.create_task(keep_committing())
    again = await open_ws(server, tok(Role.DISPATCHER, Agency.FIRE), last_id=last_id)
    before_ready, hello = await replayed(again)
    assert hello["data"]["resync"] is False and hello["data"]["replayed"] > 0
    await writer
    got = events(before_ready)
    while len(got) < 137:
        got.extend(events([await recv(again)]))
    got.extend(events(await drain(again, 300 * MS)))
    expected = [i.decode() for i, _ in await redis.xrange(store.keys.events, min=f"({last_id}")]
    assert [m["id"] for m in got] == expected
    assert [m["data"]["n"] for m in got] == list(range(3, 140))
    await again.close()


async def test_resume_older_than_the_log_gets_resync_then_live(
    server: Any, store: Store, redis: Redis
) -> None:
    ws = await open_ws(server, tok(Role.DISPATCHER, Agency.FIRE))
    await ready(ws)
    first = await commit(store, "incident.updated", incident_id="I0", n=0)
    await until(ws, lambda m: m.get("id") == first)
    await ws.close()
    for n in range(1, 20):
        await commit(store, "incident.updated", incident_id=f"I{n}", n=n)
    await redis.xtrim(store.keys.events, maxlen=5, approximate=False)  # the retention window
    again = await open_ws(server, tok(Role.DISPATCHER, Agency.FIRE), last_id=first)
    resync = await recv(again)
    assert resync["type"] == "resync" and resync["id"] is None
    hello = await recv(again)
    assert hello["type"] == "ready" and hello["data"]["resync"] is True
    # The snapshot tells the client where to resume from; then it continues live.
    async with httpx.AsyncClient(base_url=server.url, timeout=T) as http:
        snap = await http.get("/api/snapshot", headers=bearer(tok(Role.DISPATCHER, Agency.FIRE)))
    assert snap.status_code == 200
    # Consistent with at least what the socket has covered (the reader may be a step behind).
    assert stream_key(snap.json()["event_id"]) >= stream_key(hello["id"])
    live = await commit(store, "incident.updated", incident_id="I99", n=99)
    # Live from the ready id on: what the snapshot already shows may come again, nothing is lost.
    after = [i.decode() for i, _ in await redis.xrange(store.keys.events, min=f"({hello['id']}")]
    assert after[-1] == live
    assert [m["id"] for m in events(await drain(again, 300 * MS))] == after
    await again.close()
    # A malformed or unknown last_id is a resync too, never an error or a guess.
    for bad in ["not-an-id", "99999999999999-0"]:
        odd = await open_ws(server, tok(Role.OBSERVER), last_id=bad)
        assert (await recv(odd))["type"] == "resync"
        await odd.close()


def _stubborn_socket(port: int) -> socket.socket:
    """A client socket with a tiny receive buffer, so a reader that stops reading backs up fast."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_slow_client_is_cut_with_4408_while_others_keep_up(
    servers: ServerFactory, store: Store
) -> None:
    server = servers(queue_size=64, close_timeout_s=30)
    hub = server.app.state.services.hub
    fast = await open_ws(server, tok(Role.DISPATCHER, Agency.EMS))
    slow = await open_ws(
        server, tok(Role.DISPATCHER, Agency.EMS), sock=_stubborn_socket(server.port), max_queue=1
    )
    await ready(fast)
    await ready(slow)
    pad = "x" * 16_000
    received: list[str] = []

    async def read_fast() -> None:
        while True:
            msg = await recv(fast)
            if msg["type"] == "incident.updated":
                received.append(msg["id"])

    reader = asyncio.create_task(read_fast())
    committed: list[str] = []
    # The slow socket never reads: push until the hub gives up on it (bounded).
    for _ in range(2_000):
        committed.append(
            await commit(store, "incident.updated", incident_id="I1", sent=time.time(), pad=pad)
        )
        if hub.stats.cut.get("slow"):
            break
        if len(committed) % 5 == 0:
            await asyncio.sleep(0.005)
    assert hub.stats.cut.get("slow") == 1, hub.stats
    for _ in range(20):
        committed.append(
            await commit(store, "incident.updated", incident_id="I1", sent=time.time(), pad=pad)
        )
    await wait_for(lambda: len(received) >= len(committed), timeout_s=10)
    reader.cancel()
    # Every event, in order: the fast client was not held up (how fast it stays with stalled
    # clients beside it is measured in benchmarks/fanout.py --stalled).
    assert received == committed
    assert len(hub.clients) == 1  # the slow one is gone; its queue is freed
    # Once it reads again, the slow client finds the close frame behind what was in flight.
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await recv(slow, T)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    await fast.close()


async def test_replay_uses_filters_and_incident_cache(server: Any, store: Store) -> None:
    term = await open_ws(server, tok(Role.TERMINAL, Agency.EMS, "AMB-1"))
    await ready(term)
    created = await commit(
        store, "incident.created", incident_id="I1", incident=incident("I1", 31.2, 121.4)
    )
    await term.close()
    want = [
        await commit(store, "assignment.created", incident_id="I1", unit_id="AMB-1"),
        await commit(store, "incident.merged", incident_id="I1", incident=incident("I1", 31, 121)),
    ]
    await commit(store, "assignment.created", incident_id="I1", unit_id="AMB-2")
    again = await open_ws(server, tok(Role.TERMINAL, Agency.EMS, "AMB-1"), last_id=created)
    before_ready, hello = await replayed(again)
    assert hello["data"]["replayed"] == 2
    assert [m["id"] for m in events(before_ready)] == want
    assert events(await drain(again, 300 * MS)) == []
    await again.close()
