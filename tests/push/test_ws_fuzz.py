"""Hypothesis on websocket messages: any frame a client sends gets an answer, never a crash.

Generated messages (known types with random fields, unknown types, wrong JSON types, huge
and odd strings, non-JSON text, random binary frames) go to one open socket per role, JSON or
``wire=j2735``; after each, a ``ping`` must
still be answered (the socket lives) unless the policy closed it with 4403, and the server
never closes with 1011 (an internal error).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dispatch.interop.j2735 import codec
from dispatch.interop.schemas import resolve_standards_dir
from dispatch.models import Agency, Role
from tests.push._helpers import T, ready, tok, ws_url
from tests.utils import ServerThread

STANDARDS = resolve_standards_dir()
# J2735 sessions need the shared standards folder (the ASN.1 module is read in place).
WIRES = ["json", "j2735"] if (STANDARDS / "PROVENANCE.md").is_file() else ["json"]
TYPES = ["auth", "subscribe", "ack", "ping", "position", "status", "signal_status", "nope", ""]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.one_of(
    st.builds(
        lambda t, extra: {"type": t, **extra},
        st.sampled_from(TYPES),
        st.dictionaries(
            st.sampled_from(
                [
                    "lat",
                    "lon",
                    "status",
                    "whistle_id",
                    "intersection_id",
                    "request_id",
                    "agencies",
                    "incidents",
                    "bbox",
                    "ref",
                    "at",
                    "speed_kph",
                    "token",
                    "x",
                ]
            ),
            values,
            max_size=6,
        ),
    ),
    values,
)


async def alive(ws: ClientConnection) -> bool:
    """Whether the socket still answers a ping (skipping whatever else arrives)."""
    await ws.send('{"type":"ping","ref":"alive"}')
    while True:
        raw = await asyncio.wait_for(ws.recv(), T)
        msg = orjson.loads(raw) if isinstance(raw, str) else {}
        if msg.get("type") == "pong" and msg["data"].get("ref") == "alive":
            return True


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    batch=st.lists(
        st.one_of(messages, st.text(max_size=200), st.binary(max_size=200)), min_size=1, max_size=5
    ),
    wire=st.sampled_from(WIRES),
)
def test_any_message_is_answered_and_the_socket_lives(
    server: ServerThread, batch: list[Any], wire: str
) -> None:
    if wire == "j2735":
        codec(STANDARDS)  # compiled once per process, before any socket waits on it

    async def run() -> None:
        for role, agency, sub, scope in [
            (Role.DISPATCHER, Agency.EMS, "d", ()),
            (Role.TERMINAL, Agency.EMS, "A1", ()),
            (Role.SIGNAL, Agency.TRAFFIC, "gw", ("*",)),
            (Role.COORDINATOR, Agency.FIRE, "zhao.119", ()),
        ]:
            ws = await connect(
                ws_url(server, tok(role, agency, sub, scope=scope)) + f"&wire={wire}",
                compression=None,
                proxy=None,
                open_timeout=T,
            )
            await ready(ws)
            try:
                for item in batch:
                    # The stdlib writes integers past 64 bits; the server must refuse them.
                    await ws.send(item if isinstance(item, str | bytes) else json.dumps(item))
                assert await alive(ws)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                assert code in (4403, 4401), code  # a policy close, never 1011
            finally:
                await ws.close()

    asyncio.run(run())
