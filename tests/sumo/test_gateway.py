"""The SUMO gateway against the real service: green-wave requests over ``/ws`` to SUMO's lights.

The service (uvicorn on a thread, the test Redis) follows SUMO's clock (:class:`SumoClock`);
requests are planned from a real route of the cut map and submitted through the service's own
``GreenWave`` (the green-wave step), so they reach the gateway as a controller receives them in
the field.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from dispatch.api import create_app
from dispatch.flow.fleet import Fleet
from dispatch.flow.greenwave import GreenWave
from dispatch.infra.store import Store
from dispatch.settings import Settings
from routing import Route, Router
from routing.arbiter import SignalStatus
from routing.greenwave import (
    Requester,
    VehicleRole,
    cancel_requests,
    plan_green_wave,
)
from simulators.sumo._traci import TraciLights
from simulators.sumo.gateway import SimTime, SumoClock, SumoGateway, gateway_token
from simulators.sumo.network import SumoNetwork
from tests.utils import MS, TEST_SECRET, ServerThread

EPOCH = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
REQUESTER = Requester(
    agency="120", unit_id="AMB-1", role=VehicleRole.AMBULANCE, incident_priority=1
)


@pytest.fixture
def clock() -> SumoClock:
    """The service's clock: SUMO's time from EPOCH (overrides the suite's FakeClock)."""
    return SumoClock(EPOCH)


@pytest.fixture
def server(settings: Settings, redis: Redis, clock: SumoClock) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings, clock=clock)) as srv:
        yield srv


def a_route(router: Router, net: SumoNetwork, *, signals: int) -> Route:
    """A route of the cut map crossing at least ``signals`` mapped lights (turn-level)."""
    g = router.graph
    best: Route | None = None
    for a in range(0, g.node_count, 7):
        for b in range(3, g.node_count, 11):
            route = router.route_nodes(a, b)
            turns = 0
            for sig in route.signals:
                m = net.signals[sig.node_id].movement_for(
                    sig.inbound_bearing_deg, sig.outbound_bearing_deg
                )
                turns += m is not None and m.scope == "turn"
            if turns >= signals and (best is None or route.duration_s < best.duration_s):
                best = route
    assert best is not None
    return best


async def until(gw: SumoGateway, pred: Callable[[], bool], within_s: float = 5.0) -> None:
    """Let the gateway take what arrives (without advancing SUMO) until ``pred`` holds."""
    deadline = time.monotonic() + within_s * 1000 * MS
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        gw.step()
        await gw.flush()
        await asyncio.sleep(0.01)


async def eventually(
    desk: GreenWave, iid: int, rid: str, status: SignalStatus, within_s: float = 5.0
) -> None:
    """Wait until the service's snapshot of ``iid`` holds ``rid`` with ``status``."""
    deadline = time.monotonic() + within_s * 1000 * MS
    while True:
        state = await desk.state(iid)
        found = next((d.status for d in state.decisions if d.request.request_id == rid), None)
        if found is status:
            return
        assert time.monotonic() < deadline, f"{rid} is {found}, not {status}"
        await asyncio.sleep(0.02)


async def run(conn: Any, gw: SumoGateway, clock: SumoClock, steps: int,
              every: Callable[[float], None] | None = None) -> None:  # fmt: skip
    for _ in range(steps):
        conn.simulationStep()
        now = float(conn.simulation.getTime())
        clock.set(now)
        gw.step()
        await gw.flush()
        if every is not None:
            every(now)
        await asyncio.sleep(0)


async def test_requests_from_the_service_are_served_at_sumo_lights(
    server: ServerThread, store: Store, clock: SumoClock, sim: Any,
    small_net: SumoNetwork, small_router: Router,
) -> None:  # fmt: skip
    route = a_route(small_router, small_net, signals=2)
    conn = sim
    conn.simulationStep()
    clock.set(float(conn.simulation.getTime()))
    lights = TraciLights(conn)
    gw = SumoGateway(
        f"ws://127.0.0.1:{server.port}/ws", gateway_token(TEST_SECRET), small_net, lights,
        time=SimTime(EPOCH),
    )  # fmt: skip
    await gw.start()
    try:
        # Requests go out at assignment; the unit leaves after its turnout (40 s here).
        depart_s = clock.seconds() + 40
        conn.route.add("amb", small_net.route_edges(route))
        conn.vehicle.add("AMB-1", "amb", depart=str(depart_s))
        desk = GreenWave(store, Fleet(store, clock=clock), clock=clock)
        plan = plan_green_wave(route, departure=SimTime(EPOCH).at(depart_s), requester=REQUESTER)
        decisions = await desk.submit(plan.requests, incident_id=None, actor="test")
        assert all(d.status is SignalStatus.GRANTED for d in decisions)
        await until(gw, lambda: gw.core.received >= len(plan.requests))
        # Watch each light's movement through its granted window.
        watch: dict[str, tuple[str, list[int], float, float]] = {}
        for d in decisions:
            sig = small_net.signals[d.request.intersection_id]
            move = sig.movement_for(d.request.inbound.bearing_deg, d.request.outbound.bearing_deg)
            if move is not None and move.scope == "turn" and move.tls_id is not None:
                assert d.granted_from is not None and d.granted_to is not None
                watch[d.request.request_id] = (
                    move.tls_id, move.links, SimTime(EPOCH).to_s(d.granted_from),
                    SimTime(EPOCH).to_s(d.granted_to),
                )  # fmt: skip
        assert len(watch) >= 2
        green_in_window: dict[str, list[bool]] = {rid: [] for rid in watch}

        def look(now: float) -> None:
            for rid, (tls, links, lo, hi) in watch.items():
                if lo <= now < hi:
                    state = conn.trafficlight.getRedYellowGreenState(tls)
                    green_in_window[rid].append(all(state[k] in "Gg" for k in links))

        horizon = int(max(hi for _, _, _, hi in watch.values()) - clock.seconds()) + 5
        await run(conn, gw, clock, horizon, every=look)
        for rid, seen in green_in_window.items():
            assert seen and all(seen), f"{rid}: not green through its window"
        served = {m["request_id"] for m in gw.sent if m["status"] == "served"}
        assert set(watch) <= served
        # The service took the gateway's word: those decisions are now 'served'.
        for d in decisions:
            if d.request.request_id in watch:
                await eventually(desk, d.request.intersection_id, d.request.request_id,
                                 SignalStatus.SERVED)  # fmt: skip
        assert all(c.out_of_order == 0 for c in lights.controllers.values())
    finally:
        await gw.close()


async def test_a_cancel_from_the_service_releases_the_light(
    server: ServerThread, store: Store, clock: SumoClock, sim: Any,
    small_net: SumoNetwork, small_router: Router,
) -> None:  # fmt: skip
    route = a_route(small_router, small_net, signals=1)
    conn = sim
    conn.simulationStep()
    clock.set(float(conn.simulation.getTime()))
    lights = TraciLights(conn)
    gw = SumoGateway(
        f"ws://127.0.0.1:{server.port}/ws", gateway_token(TEST_SECRET), small_net, lights,
        time=SimTime(EPOCH),
    )  # fmt: skip
    await gw.start()
    try:
        desk = GreenWave(store, Fleet(store, clock=clock), clock=clock)
        plan = plan_green_wave(route, departure=clock(), requester=REQUESTER)
        await desk.submit(plan.requests, incident_id=None, actor="test")
        await until(gw, lambda: bool(gw.core.held))
        rid, held = next(iter(gw.core.held.items()))
        ctrl = lights.controllers[held.tls_id]
        assert rid in ctrl.held
        await run(conn, gw, clock, 3)
        cancels = cancel_requests(plan.plan, now=clock())
        await desk.submit(cancels, incident_id=None, actor="test")
        await until(gw, lambda: not gw.core.held)
        assert not ctrl.held
        await run(conn, gw, clock, int(ctrl.program.cycle_s) * 3)
        assert ctrl.idle  # back on its program (compensation, if any, paid)
        assert not any(m["request_id"] == rid for m in gw.sent)  # a cancel owes no report
    finally:
        await gw.close()


async def test_an_intersection_without_a_sumo_light_is_rejected(
    server: ServerThread, store: Store, clock: SumoClock, sim: Any,
    small_net: SumoNetwork, small_router: Router,
) -> None:  # fmt: skip
    route = a_route(small_router, small_net, signals=1)
    conn = sim
    lights = TraciLights(conn)
    gw = SumoGateway(
        f"ws://127.0.0.1:{server.port}/ws", gateway_token(TEST_SECRET), small_net, lights,
        time=SimTime(EPOCH),
    )  # fmt: skip
    await gw.start()
    try:
        plan = plan_green_wave(route, departure=clock(), requester=REQUESTER)
        first = plan.requests[0]
        plain_node = next(
            int(n) for n in small_router.graph.node_osmid[~small_router.graph.node_signal]
        )
        stray = first.model_copy(
            update={"intersection_id": plain_node, "request_id": f"120:AMB-1:{plain_node}"}
        )
        desk = GreenWave(store, Fleet(store, clock=clock), clock=clock)
        await desk.submit([stray], incident_id=None, actor="test")
        await until(gw, lambda: bool(gw.sent))
        (msg,) = gw.sent
        assert msg["status"] == "rejected" and "no SUMO light" in msg["reason"]

        await until(gw, lambda: bool(gw.acks))
        assert gw.acks[0]["data"] == {"request_id": stray.request_id, "status": "rejected"}
        assert not gw.socket.errors
    finally:
        await gw.close()


async def test_the_service_keeps_a_controllers_rejection(
    server: ServerThread, store: Store, clock: SumoClock, sim: Any,
    small_net: SumoNetwork, small_router: Router,
) -> None:  # fmt: skip
    route = a_route(small_router, small_net, signals=1)
    gw = SumoGateway(
        f"ws://127.0.0.1:{server.port}/ws", gateway_token(TEST_SECRET), small_net,
        TraciLights(sim), time=SimTime(EPOCH),
    )  # fmt: skip
    await gw.start()
    try:
        plan = plan_green_wave(route, departure=clock(), requester=REQUESTER)
        plain_node = next(
            int(n) for n in small_router.graph.node_osmid[~small_router.graph.node_signal]
        )
        stray = plan.requests[0].model_copy(
            update={"intersection_id": plain_node, "request_id": f"120:AMB-1:{plain_node}"}
        )
        desk = GreenWave(store, Fleet(store, clock=clock), clock=clock)
        await desk.submit([stray], incident_id=None, actor="test")
        await until(gw, lambda: bool(gw.acks))
        await eventually(desk, plain_node, stray.request_id, SignalStatus.REJECTED, within_s=1.0)
    finally:
        await gw.close()


def test_a_hold_ends_when_the_vehicle_crosses_the_stop_line() -> None:
    from datetime import timedelta

    from routing.greenwave import Approach, ApproachLabel, RequestType, SignalRequest
    from simulators.sumo.controller import ControllerConfig, LightController, Program
    from simulators.sumo.gateway import GatewayCore
    from simulators.sumo.network import MapStatus, Movement, SignalMap
    from tests.sumo.test_controller import PHASES

    cfg = ControllerConfig()
    ctrl = LightController(
        Program.from_phases("J1", PHASES, config=cfg), config=cfg, now_s=0.0, phase_index=0
    )
    move = Movement(in_bearing_deg=0.0, out_bearing_deg=0.0, inbound=ApproachLabel.S,
                    outbound=ApproachLabel.N, from_osmid=1, to_osmid=2, tls_id="J1",
                    links=[0, 1], scope="turn")  # fmt: skip
    sig = SignalMap(intersection_id=7, lat=0.0, lon=0.0, status=MapStatus.MAPPED, tls_id="J1",
                    movements=[move])  # fmt: skip
    time = SimTime(EPOCH)
    core = GatewayCore({7: sig}, time, lambda _tls: ctrl)

    def granted(at_s: float, eta_s: float) -> None:
        leg = Approach(bearing_deg=0.0, label=ApproachLabel.S)
        eta = time.at(eta_s)
        req = SignalRequest(request_id="AMB-1:7", sequence=int(at_s), intersection_id=7,
                            request_type=RequestType.UPDATE, inbound=leg,
                            outbound=leg.model_copy(update={"label": ApproachLabel.N}), eta=eta,
                            arrive_from=eta - timedelta(seconds=2),
                            arrive_to=eta + timedelta(seconds=3), hold_s=6.0, requester=REQUESTER,
                            importance=12, sent_at=time.at(at_s))  # fmt: skip
        core.on_event(
            {"type": "greenwave.status",
             "data": {"request": req.model_dump(mode="json"), "status": "granted",
                      "granted_from": (eta - timedelta(seconds=2)).isoformat(),
                      "granted_to": (eta + timedelta(seconds=9)).isoformat()}},
            at_s,
        )  # fmt: skip

    granted(20.0, 32.0)  # NS through, planned to end at 30: held to 41
    assert set(ctrl.held) == {"AMB-1:7"}
    assert core.passed("J2", ["AMB-1:7"], 31.0) == 0  # another light
    assert core.passed("J1", ["AMB-1:7"], 31.0) == 1  # crossed its stop line
    assert not ctrl.held and not core.held
    assert [r.status for r in ctrl.data_to_send()] == ["cancelled"]
    granted(32.0, 33.0)  # the vehicle's next fix, before it is past the signal node
    assert not ctrl.held  # not held again
