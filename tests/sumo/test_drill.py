"""The SUMO drill's paired runs on the cut of central Shanghai (libsumo, randomTrips traffic).

Short horizon, two emergency vehicles over routes crossing mapped lights: the priority arm
really commands SUMO's lights for them, the baseline does not, cross lanes never include the
vehicle's own approach, and the same seed gives the same figures.
"""

from __future__ import annotations

import pytest

from routing import Router
from routing.greenwave import Requester, VehicleRole
from simulators.sumo._traci import libsumo_run, sumo_argv
from simulators.sumo.drill import (
    ArmResult,
    Demand,
    EmergencyTrip,
    Strategy,
    SumoDrillConfig,
    background_routes,
    compare,
    disturbed,
    ev_types_file,
    lane_km,
    run_arm,
)
from simulators.sumo.network import SumoNetwork
from tests.sumo.test_controller import drive, grant, new
from tests.sumo.test_gateway import a_route

CFG = SumoDrillConfig(demand=Demand.HIGH, window_s=120, warmup_s=60, tail_s=240)
END_S = CFG.warmup_s + CFG.window_s + CFG.tail_s


@pytest.fixture(scope="module")
def arms(
    small_net: SumoNetwork, small_router: Router, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[EmergencyTrip], ArmResult, ArmResult, ArmResult]:
    work = tmp_path_factory.mktemp("drill")
    with libsumo_run(sumo_argv(small_net.net_file)) as conn:
        km = lane_km(conn)
    bg = background_routes(
        small_net, work, demand=CFG.demand, seed=3, end_s=END_S, lane_km_total=km
    )
    route = a_route(small_router, small_net, signals=2)
    trips = [
        EmergencyTrip(
            vehicle_id=f"ev{k}",
            unit_id=f"AMB-{k}",
            requester=Requester(
                agency="120", unit_id=f"AMB-{k}", role=VehicleRole.AMBULANCE, incident_priority=1
            ),
            route=route,
            edges=tuple(small_net.route_edges(route)),
            depart_s=CFG.warmup_s + 60 * k,
        )
        for k in range(2)
    ]
    types = ev_types_file(work, CFG)

    def arm(strategy: Strategy, measure: ArmResult | None = None) -> ArmResult:
        return run_arm(
            small_net, trips, bg, types, strategy, CFG, seed=3, end_s=END_S, work=work,
            measure=measure,
        )  # fmt: skip

    live = arm(Strategy.LIVE)
    again = arm(Strategy.LIVE)
    base = arm(Strategy.BLUELIGHT, measure=live)
    return trips, live, again, base


def test_the_priority_arm_commands_the_lights_on_the_route_and_the_baseline_does_not(
    arms: tuple[list[EmergencyTrip], ArmResult, ArmResult, ArmResult],
) -> None:
    _, live, _, base = arms
    assert live.background_vehicles > 10  # randomTrips traffic was driven
    assert live.grants > 0 and live.lights_touched >= 1 and live.requests_sent > 0
    assert base.grants == 0 and base.lights_touched == 0 and base.requests_sent == 0
    assert all(t.travel_s is not None for t in live.trips + base.trips)  # everyone arrived
    # Disturbed cycles were found and measured in both arms, on the same lights.
    assert live.disturbed and set(live.cross_halt_veh_s) == set(live.disturbed)
    assert set(base.cross_halt_veh_s) <= set(live.disturbed)
    for spans in live.disturbed.values():
        assert all(lo < hi for lo, hi in spans)


def test_cross_lanes_leave_out_the_emergency_vehicles_approach(
    arms: tuple[list[EmergencyTrip], ArmResult, ArmResult, ArmResult], small_net: SumoNetwork
) -> None:
    trips, live, _, _ = arms
    own = {f"{edge}_" for edge in trips[0].edges}
    for lanes in live.cross_lanes.values():
        assert lanes
        for lane in lanes:
            assert not any(lane.startswith(prefix) for prefix in own), lane


def test_the_same_seed_gives_the_same_figures(
    arms: tuple[list[EmergencyTrip], ArmResult, ArmResult, ArmResult],
) -> None:
    _, live, again, base = arms
    one, two = compare(Strategy.LIVE, 3, live, base), compare(Strategy.LIVE, 3, again, base)
    assert one == two
    assert one.vehicles == 2
    assert one.mean_travel_s_with is not None and one.mean_travel_s_without is not None


def test_a_light_holding_a_grant_for_later_is_not_disturbed_until_priority_moves_it() -> None:
    # The cross street's cost is measured while the light runs off its program: a grant held
    # for a window its program serves anyway (EW through, 55..95) leaves it undisturbed, however
    # long the grant waits; an extension disturbs it until the green it owes is paid back.
    light, ctrl = new(start_s=1)
    ctrl.receive(grant("r1", (3, 4), 70, 80), 1)
    for t in range(1, 80):  # until the window is over (reported served)
        drive(light, ctrl, t)
        assert not ctrl.idle and not disturbed(ctrl), t
    drive(light, ctrl, 90)
    assert [r.status for r in ctrl.data_to_send()] == ["served"]
    ctrl.receive(grant("r2", (3, 4), 90, 105), 90)  # past the green's planned end at 95
    drive(light, ctrl, 96)
    assert disturbed(ctrl)
    drive(light, ctrl, 96 + 3 * 120)
    assert not disturbed(ctrl) and ctrl.idle  # back on its program, the 10 s repaid
