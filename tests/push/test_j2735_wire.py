"""J2735 on the websocket (``?wire=j2735``): UPER SRMs out, UPER SSMs in, real server and Redis.

The SSMs the test controller sends are encoded by pycrate (an implementation that shares no
code with our asn1tools codec), and each SRM received is decoded by both.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pycrate_asn1dir import ITS_IS
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import GreenWave
from dispatch.infra.store import Store
from dispatch.interop.j2735 import DerivedIntersections, codec, decode_srm, wire_request_key
from dispatch.interop.schemas import resolve_standards_dir
from dispatch.models import Agency, Role
from dispatch.push.frames import decode_entry
from routing.arbiter import SignalStatus
from routing.greenwave import (
    Approach,
    ApproachLabel,
    Requester,
    RequestType,
    SignalRequest,
    VehicleRole,
)
from tests.push._helpers import T, tok
from tests.utils import ServerThread

NODE = 42  # the derived numbering: IntersectionID 42, no region
STANDARDS = resolve_standards_dir()
pytestmark = pytest.mark.skipif(
    not (STANDARDS / "PROVENANCE.md").is_file(), reason="shared standards folder absent"
)


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    # The server (in this process) compiles the module on the first J2735 session: done here,
    # so a loaded machine does not spend the first test's time on it.
    codec(STANDARDS)


def request(unit_id: str, *, inbound: ApproachLabel = ApproachLabel.S) -> SignalRequest:
    now = datetime.now(UTC)
    return SignalRequest(
        request_id=f"120:{unit_id}:{NODE}",
        sequence=3,
        intersection_id=NODE,
        request_type=RequestType.REQUEST,
        inbound=Approach(bearing_deg=0.0, label=inbound),
        outbound=Approach(bearing_deg=0.0, label=ApproachLabel.N),
        eta=now + timedelta(seconds=30),
        arrive_from=now + timedelta(seconds=25),
        arrive_to=now + timedelta(seconds=40),
        hold_s=5.0,
        requester=Requester(
            agency="120", unit_id=unit_id, role=VehicleRole.AMBULANCE, incident_priority=1
        ),
        importance=12,
        sent_at=now,
    )


async def open_signal(
    server: ServerThread, scope: list[str], wire: str | None = "j2735"
) -> ClientConnection:
    query = f"token={tok(Role.SIGNAL, Agency.TRAFFIC, 'gw', scope=scope)}"
    if wire is not None:
        query += f"&wire={wire}"
    ws = await connect(
        f"ws://127.0.0.1:{server.port}/ws?{query}", compression=None, proxy=None, open_timeout=T
    )
    while (await text(ws))["type"] != "ready":
        pass
    return ws


async def frame(ws: ClientConnection, within_s: float = T) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout=within_s)


async def text(ws: ClientConnection, within_s: float = T) -> dict[str, Any]:
    """The next text frame (binary frames skipped)."""
    deadline = time.monotonic() + within_s
    while True:
        got = await frame(ws, max(0.001, deadline - time.monotonic()))
        if isinstance(got, str):
            msg: dict[str, Any] = orjson.loads(got)
            return msg


async def reply(ws: ClientConnection, kinds: set[str]) -> dict[str, Any]:
    while (msg := await text(ws))["type"] not in kinds:
        pass
    return msg


def pycrate_ssm(statuses: list[tuple[SignalRequest, str]], *, intersection: int = NODE) -> bytes:
    ssm = ITS_IS.DSRC.SignalStatusMessage
    packages = []
    for r, status in statuses:
        station, number = wire_request_key(r)
        packages.append(
            {
                "requester": {
                    "id": ("stationID", station),
                    "request": number,
                    "sequenceNumber": r.sequence % 128,
                    "role": "ambulance",
                },
                "inboundOn": ("approach", 3),
                "status": status,
            }
        )
    ssm.set_val(
        {
            "second": 1234,
            "status": [{"sequenceNumber": 1, "id": {"id": intersection}, "sigStatus": packages}],
        }
    )
    return bytes(ssm.to_uper())


async def greenwave_events(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    entries = await store.event_entries("-", "+", count=1000)
    return [
        (d.type, d.id, dict(d.data))
        for d in (decode_entry(i, raw) for i, raw in entries)
        if d.type.startswith("greenwave.")
    ]


def wave(store: Store) -> GreenWave:
    clock = lambda: datetime.now(UTC)  # noqa: E731 - the server's clock too
    return GreenWave(store, Fleet(store, clock=clock), clock=clock)


async def test_a_j2735_controller_gets_srms_and_its_ssms_are_applied(
    server: ServerThread, store: Store
) -> None:
    gw = wave(store)
    ctrl = await open_signal(server, [str(NODE)])
    plain = await open_signal(server, [str(NODE)], wire=None)
    try:
        amb = request("AMB-07")
        [decision] = await gw.submit([amb], incident_id=None, actor="unit:AMB-07")
        assert decision.status is SignalStatus.GRANTED
        assert decision.granted_from and decision.granted_to
        event = await reply(ctrl, {"greenwave.request"})
        srm = await frame(ctrl)
        assert isinstance(srm, bytes), srm
        # Ours and pycrate read the same granted request: intersection, legs, window.
        [got] = decode_srm(
            srm,
            intersections=DerivedIntersections(),
            standards=STANDARDS,
            now=datetime.now(UTC),
        )
        assert got.intersection_id == NODE and got.request_id == amb.request_id
        assert (got.inbound.label, got.outbound.label) == (ApproachLabel.S, ApproachLabel.N)
        assert got.request_type is RequestType.REQUEST
        assert abs((got.arrive_from - decision.granted_from).total_seconds()) < 0.002
        assert abs((got.arrive_to - decision.granted_to).total_seconds()) < 0.002
        value = ITS_IS.DSRC.SignalRequestMessage
        value.from_uper(srm)
        [package] = value.get_val()["requests"]
        assert package["request"]["id"] == {"id": NODE}
        assert package["request"]["inBoundLane"] == ("approach", 3)  # S
        assert event["data"]["request_id"] == amb.request_id
        # A JSON client is unchanged: the event, and no binary frame.
        assert (await reply(plain, {"greenwave.request"}))["data"]["status"] == "granted"
        await plain.send('{"type":"ping","ref":"p"}')
        assert isinstance(await frame(plain), str)

        # The controller's SSM: granted (prioritization active) is recorded as served.
        await ctrl.send(pycrate_ssm([(amb, "granted")]))
        ok = await reply(ctrl, {"ssm.ok", "error"})
        assert ok["type"] == "ssm.ok", ok
        assert [a["status"] for a in ok["data"]["applied"]] == ["served"]
        served = [e for e in await greenwave_events(store) if e[0] == "greenwave.status"]
        assert served[-1][2]["status"] == "served"
        assert served[-1][2]["request_id"] == amb.request_id
        # The same SSM again (they repeat): acknowledged, nothing recorded twice.
        count = len(await greenwave_events(store))
        await ctrl.send(pycrate_ssm([(amb, "granted")]))
        again = await reply(ctrl, {"ssm.ok", "error"})
        assert again["data"]["applied"] == [] and "already served" in str(again["data"])
        assert len(await greenwave_events(store)) == count

        # Another vehicle, rejected by the controller (and a status Yishao does not apply).
        fire = request("E-12", inbound=ApproachLabel.W)
        await gw.submit([fire], incident_id=None, actor="unit:E-12")
        await reply(ctrl, {"greenwave.request"})
        await ctrl.send(pycrate_ssm([(fire, "maxPresence"), (amb, "processing")]))
        ok = await reply(ctrl, {"ssm.ok", "error"})
        assert [a["status"] for a in ok["data"]["applied"]] == ["rejected"]
        assert [i["wire_status"] for i in ok["data"]["ignored"]] == ["processing"]
        state = await gw.state(NODE)
        by_id = {d.request.request_id: d for d in state.decisions}
        assert by_id[fire.request_id].status is SignalStatus.REJECTED
        assert by_id[fire.request_id].reason == "SSM maxPresence"

        # A malformed frame: an error naming the problem, nothing changed, the socket lives.
        before = (await gw.state(NODE)).version
        count = len(await greenwave_events(store))
        for bad in (b"", b"\xff\x00garbage", pycrate_ssm([(amb, "granted")])[:3]):
            await ctrl.send(bad)
            err = await reply(ctrl, {"ssm.ok", "error"})
            assert err["type"] == "error" and err["data"]["code"] == "bad_ssm", err
            assert "SignalStatusMessage" in err["data"]["message"]
        assert (await gw.state(NODE)).version == before
        assert len(await greenwave_events(store)) == count
        await ctrl.send('{"type":"ping","ref":"alive"}')
        assert (await reply(ctrl, {"pong"}))["data"]["ref"] == "alive"

        # A JSON session's binary frame is refused with an error, not applied.
        await plain.send(pycrate_ssm([(amb, "granted")]))
        assert (await reply(plain, {"error"}))["data"]["code"] == "bad_message"
    finally:
        await ctrl.close()
        await plain.close()


async def test_an_ssm_beyond_the_scope_is_refused_and_changes_nothing(
    server: ServerThread, store: Store
) -> None:
    gw = wave(store)
    amb = request("AMB-07")
    await gw.submit([amb], incident_id=None, actor="unit:AMB-07")
    ctrl = await open_signal(server, ["43"])
    before = (await gw.state(NODE)).version
    try:
        await ctrl.send(pycrate_ssm([(amb, "rejected")]))
        with pytest.raises(ConnectionClosed):
            while True:
                await frame(ctrl)
        assert ctrl.close_code == 4403
    finally:
        await ctrl.close()
    state = await gw.state(NODE)
    assert state.version == before and state.decisions[0].status is SignalStatus.GRANTED


async def test_an_unknown_wire_is_refused(server: ServerThread) -> None:
    query = f"token={tok(Role.SIGNAL, Agency.TRAFFIC, 'gw', scope=['*'])}&wire=asn1"
    async with connect(
        f"ws://127.0.0.1:{server.port}/ws?{query}", proxy=None, open_timeout=T
    ) as ws:
        err = orjson.loads(await asyncio.wait_for(ws.recv(), T))
        assert err["data"]["code"] == "bad_wire"
        await asyncio.wait_for(ws.wait_closed(), T)
        assert ws.close_code == 4400


async def test_a_cancel_is_a_cancellation_and_an_unnumbered_node_an_error(
    server: ServerThread, store: Store
) -> None:
    gw = wave(store)
    far = 4_817_002_117  # beyond the derived numbering
    ctrl = await open_signal(server, [str(NODE), str(far)])
    try:
        amb = request("AMB-07")
        await gw.submit([amb], incident_id=None, actor="unit:AMB-07")
        await reply(ctrl, {"greenwave.request"})
        assert isinstance(await frame(ctrl), bytes)
        cancel = amb.model_copy(update={"request_type": RequestType.CANCEL, "sequence": 4})
        await gw.submit([cancel], incident_id=None, actor="unit:AMB-07")
        await reply(ctrl, {"greenwave.cancel"})
        srm = await frame(ctrl)
        assert isinstance(srm, bytes)
        [got] = decode_srm(
            srm, intersections=DerivedIntersections(), standards=STANDARDS, now=datetime.now(UTC)
        )
        assert got.request_type is RequestType.CANCEL and got.request_id == amb.request_id
        assert got.sequence == 4

        unnumbered = request("AMB-08").model_copy(
            update={"intersection_id": far, "request_id": f"120:AMB-08:{far}"}
        )
        await gw.submit([unnumbered], incident_id=None, actor="unit:AMB-08")
        event = await reply(ctrl, {"greenwave.request"})
        err = await frame(ctrl)
        assert isinstance(err, str), err
        body = orjson.loads(err)
        assert body["data"]["code"] == "j2735_unencodable"
        assert body["data"]["event_id"] == event["id"] and str(far) in body["data"]["message"]
    finally:
        await ctrl.close()
