"""Vehicle model: stops at red without a grant, passes with one; positions at 1 Hz."""

from __future__ import annotations

import pytest

from routing import Route, Router
from routing.greenwave import ApproachLabel
from simulators.signals import (
    Axis,
    PriorityGrant,
    SignalController,
    SignalTiming,
    SignalView,
    other_axis,
)
from simulators.vehicles import (
    Bluelight,
    PositionReport,
    SignalLookup,
    SignalPassed,
    StatusChange,
    VehicleOutput,
    VehicleSim,
)


def _route_with_signal(router: Router) -> Route:
    g = router.graph
    # Corner to corner across the synthetic grid crosses arterial signals.
    route = router.route_nodes(0, g.node_count - 1)
    assert route.signals, "the synthetic city should put signals on this route"
    return route


def _vehicle(router: Router, route: Route) -> VehicleSim:
    return VehicleSim(
        unit_id="A-1",
        route=route,
        depart_s=0.0,
        signal_delay_s=router.profile.signal_delay_s,
        signal_nodes=set(router.graph.node_osmid[router.graph.node_signal].tolist()),
    )


def _fixed(axis_green: Axis | None) -> SignalView:
    return SignalView(1, 0.0, axis_green, 0.0, 0.0, 2.0, 2.0)


def _drive(vehicle: VehicleSim, lookup: SignalLookup) -> list[VehicleOutput]:
    out: list[VehicleOutput] = []
    t = 0
    while not vehicle.done and t < 3600:
        out.extend(vehicle.step(float(t), lookup))
        t += 1
    return out


def _axes(router: Router, route: Route) -> dict[int, Axis]:
    return _vehicle(router, route).approach_axes()


def test_stops_at_red_without_grant(small_city: Router) -> None:
    route = _route_with_signal(small_city)
    axes = _axes(small_city, route)
    # Green for the vehicle's axis everywhere: it never stops.
    green = _vehicle(small_city, route)
    out = _drive(green, lambda iid, at: _fixed(axes[iid]))
    assert green.done and all(not p.stopped for p in green.passed)
    assert len(green.passed) == len(route.signals)
    positions = [o for o in out if isinstance(o, PositionReport)]
    assert green.arrived_s is not None
    assert len(positions) == int(green.arrived_s) + 1  # one fix a second
    statuses = [o.status.value for o in out if isinstance(o, StatusChange)]
    assert statuses == ["en_route", "on_scene"]
    # Red for its axis until 30 s after it reaches the first signal: it stops and waits.
    until = green.passed[0].arrived_s + 30.0
    red = _vehicle(small_city, route)
    out = _drive(red, lambda iid, at: _fixed(other_axis(axes[iid]) if at < until else axes[iid]))
    stopped = [o for o in out if isinstance(o, SignalPassed) and o.stopped]
    assert stopped and stopped[0].intersection_id == route.signals[0].node_id
    assert stopped[0].departed_s >= until + 2.0  # start-up lost time once green
    assert red.arrived_s is not None and red.arrived_s > green.arrived_s + 30.0


def test_bluelight_crosses_red_slowly_without_waiting_for_green(small_city: Router) -> None:
    """Under lights and siren a red costs the crawl, the look and the queue threaded past,
    not the wait for green; and the vehicle does not count as stopped."""
    route = _route_with_signal(small_city)
    axes = _axes(small_city, route)
    first = route.signals[0].node_id

    def red_first(iid: int, at: float) -> SignalView:  # red, four cars queued; green on
        if iid != first:
            return _fixed(axes[iid])
        return SignalView(1, at, other_axis(axes[iid]), 4.0, 4.0, 2.0, 2.0)

    waits = _vehicle(small_city, route)
    _drive(waits, red_first)  # red there for ever: the car-like vehicle never arrives
    assert not waits.done
    bl = Bluelight(crawl_kph=20.0, yield_s=2.0, queue_pass_s=1.0)
    crosses = VehicleSim(
        unit_id="A-1", route=route, depart_s=0.0,
        signal_delay_s=small_city.profile.signal_delay_s,
        signal_nodes=set(small_city.graph.node_osmid[small_city.graph.node_signal].tolist()),
        bluelight=bl,
    )  # fmt: skip
    _drive(crosses, red_first)
    free = _vehicle(small_city, route)
    _drive(free, lambda iid, at: _fixed(axes[iid]))
    assert crosses.done and free.done
    assert crosses.arrived_s is not None and free.arrived_s is not None
    at_red = crosses.passed[0]
    assert at_red.intersection_id == first and not at_red.stopped and not at_red.green_on_arrival
    assert at_red.wait_s == 2.0 + 4 * 1.0  # the look, and four queued cars threaded past
    assert at_red.lost_s > at_red.wait_s  # slowing to the crawl and back costs time too
    assert crosses.arrived_s - free.arrived_s == pytest.approx(at_red.lost_s, abs=1.0)
    assert all(p.wait_s == 0.0 for p in crosses.passed[1:])  # green everywhere else


def test_grant_turns_red_into_green(small_city: Router) -> None:
    route = _route_with_signal(small_city)
    axes = _axes(small_city, route)
    sig_id = route.signals[0].node_id
    free = _vehicle(small_city, route)
    _drive(free, lambda iid, at: _fixed(axes[iid]))
    eta = free.passed[0].arrived_s
    axis = axes[sig_id]
    # The first signal's plan shows the cross street green when the vehicle gets there.
    tm = SignalTiming(
        intersection_id=sig_id,
        major_axis=other_axis(axis),  # the cross street is green at the cycle start
        cycle_s=120,
        major_green_s=70,
        minor_green_s=40,
        offset_s=int(eta) - 20,  # cross street green from eta-20 to eta+50
        major_flow_vps=0.1,
        minor_flow_vps=0.05,
    )

    def run(with_grant: bool) -> VehicleSim:
        ctrl = SignalController(tm, now_s=0)
        if with_grant:
            ctrl.receive(
                PriorityGrant(
                    request_id="ems:A-1:x",
                    intersection_id=sig_id,
                    axis=axis,
                    inbound=ApproachLabel.S if axis is Axis.NS else ApproachLabel.W,
                    outbound=ApproachLabel.N if axis is Axis.NS else ApproachLabel.E,
                    green_from_s=eta - 3,
                    green_to_s=eta + 8,
                    eta_s=eta,
                    importance=13,
                ),
                0,
            )

        def lookup(iid: int, at_s: float) -> SignalView:
            if iid != sig_id:
                return _fixed(axes[iid])
            ctrl.advance(at_s)
            return ctrl.view()

        v = _vehicle(small_city, route)
        _drive(v, lookup)
        return v

    without = run(False)
    with_grant = run(True)
    assert without.passed[0].stopped
    assert not with_grant.passed[0].stopped
    assert with_grant.arrived_s is not None and without.arrived_s is not None
    assert with_grant.arrived_s < without.arrived_s
