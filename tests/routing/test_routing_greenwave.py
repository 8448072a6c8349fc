"""Green-wave plans: requests per signal, re-timing from live fixes, re-routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing import Route, Router
from routing.greenwave import (
    ApproachLabel,
    Requester,
    RequestType,
    VehicleRole,
    approach_label,
    importance_for,
    plan_green_wave,
    replan_for_new_route,
    replan_from_position,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
FIRE = Requester(agency="119", unit_id="E12", role=VehicleRole.FIRE, incident_priority=1)


@pytest.fixture(scope="module")
def long_route(shanghai: Router) -> Route:
    route = shanghai.route((31.23, 121.47), (31.20, 121.51))
    assert len(route.signals) >= 10
    return route


def _point_at(route: Route, eta_s: float) -> tuple[float, float]:
    """The route vertex reached at about ``eta_s`` (for a fake GPS fix)."""
    for edge in route.edges:
        if edge.duration_s and eta_s <= 0:
            break
        eta_s -= edge.duration_s
        if eta_s <= 0:
            lon, lat = route.coordinates[edge.start_index]
            return lat, lon
    lon, lat = route.coordinates[-1]
    return lat, lon


@pytest.mark.parametrize(
    ("bearing", "inbound", "label"),
    [
        (0, True, "S"),
        (0, False, "N"),
        (90, True, "W"),
        (180, False, "S"),
        (269, True, "E"),
        (359, False, "N"),
        (44, False, "N"),
        (46, False, "E"),
    ],
)
def test_approach_labels(bearing: float, inbound: bool, label: str) -> None:
    assert approach_label(bearing, inbound=inbound) is ApproachLabel(label)


def test_importance_orders_by_priority_then_role() -> None:
    assert importance_for(VehicleRole.FIRE, 1) > importance_for(VehicleRole.POLICE, 1)
    assert importance_for(VehicleRole.POLICE, 1) > importance_for(VehicleRole.AMBULANCE, 3)
    assert all(0 <= importance_for(r, p) <= 14 for r in VehicleRole for p in range(1, 6))


def test_plan_has_one_request_per_signal(long_route: Route) -> None:
    update = plan_green_wave(long_route, departure=T0, requester=FIRE)
    ids = {s.node_id for s in long_route.signals}
    assert [r.intersection_id for r in update.requests] == [
        s.intersection_id for s in update.plan.signals
    ]
    assert {r.intersection_id for r in update.requests} == ids
    assert all(r.request_type is RequestType.REQUEST for r in update.requests)
    assert len({r.request_id for r in update.requests}) == len(update.requests)
    widths = [(r.arrive_to - r.arrive_from).total_seconds() for r in update.requests]
    assert widths == sorted(widths) and widths[-1] > widths[0], "windows widen with distance"
    for req, sig in zip(update.requests, update.plan.signals, strict=True):
        assert req.arrive_from <= req.eta <= req.arrive_to
        assert req.eta == T0 + timedelta(seconds=sig.route_eta_s)
        assert req.importance == importance_for(VehicleRole.FIRE, 1)


def test_replan_updates_ahead_and_cancels_behind(long_route: Route) -> None:
    first = plan_green_wave(long_route, departure=T0, requester=FIRE)
    midway = long_route.signals[len(long_route.signals) // 2].eta_s + 1.0
    fix = _point_at(long_route, midway)
    late = 30.0  # the vehicle is 30 s behind schedule
    now = T0 + timedelta(seconds=midway + late)
    update = replan_from_position(first.plan, position=fix, now=now)
    assert update.off_route_m < 5.0
    progress = update.plan.progress_s
    kinds = {r.intersection_id: r.request_type for r in update.requests}
    for sig in first.plan.signals:
        expected = RequestType.CANCEL if sig.route_eta_s <= progress else RequestType.UPDATE
        assert kinds[sig.intersection_id] is expected
    for req in update.requests:
        if req.request_type is RequestType.UPDATE:
            planned = next(
                s for s in first.plan.signals if s.intersection_id == req.intersection_id
            )
            # Re-timed from the fix: ETA = now + route time still to go.
            assert req.eta == now + timedelta(seconds=planned.route_eta_s - progress)
            assert req.sequence == 1
    # A second fix further on cancels nothing twice and keeps updating what is left.
    fix2 = _point_at(long_route, long_route.duration_s - 5)
    again = replan_from_position(update.plan, position=fix2, now=now + timedelta(seconds=200))
    cancelled_before = {
        r.intersection_id for r in update.requests if r.request_type is RequestType.CANCEL
    }
    assert cancelled_before.isdisjoint(r.intersection_id for r in again.requests)


def test_fix_far_from_route_sends_no_updates(long_route: Route) -> None:
    first = plan_green_wave(long_route, departure=T0, requester=FIRE)
    update = replan_from_position(
        first.plan, position=(31.30, 121.40), now=T0 + timedelta(seconds=60)
    )
    assert update.off_route_m > 1000
    assert update.requests == []


def test_new_route_cancels_dropped_updates_kept_requests_new(
    shanghai: Router, long_route: Route
) -> None:
    first = plan_green_wave(long_route, departure=T0, requester=FIRE)
    other = shanghai.route((31.23, 121.47), (31.25, 121.52))
    update = replan_for_new_route(first.plan, other, now=T0 + timedelta(seconds=10))
    old_ids = {s.node_id for s in long_route.signals}
    new_ids = {s.node_id for s in other.signals}
    by_kind: dict[RequestType, set[int]] = {k: set() for k in RequestType}
    for req in update.requests:
        by_kind[req.request_type].add(req.intersection_id)
    assert by_kind[RequestType.CANCEL] == old_ids - new_ids
    assert by_kind[RequestType.UPDATE] == old_ids & new_ids
    assert by_kind[RequestType.REQUEST] == new_ids - old_ids
    assert old_ids - new_ids and new_ids - old_ids, "the test routes must differ"


def test_route_geometry_is_cached_per_route_object(long_route: Route) -> None:
    import gc

    from routing import greenwave as gw

    fix = _point_at(long_route, 120.0)
    first = gw.locate_on_route(long_route, fix, min_progress_s=30.0)
    geometry = gw._route_geometry(long_route)
    assert gw._route_geometry(long_route) is geometry  # built once, reused by every re-plan
    assert not geometry.time_at.flags.writeable
    # Same answer as from a fresh profile of an equal but distinct Route object.
    twin = Route.model_validate(long_route.model_dump())
    assert gw.locate_on_route(twin, fix, min_progress_s=30.0) == first
    assert gw._route_geometry(twin) is not geometry
    key = id(twin)
    assert key in gw._GEOMETRY
    del twin
    gc.collect()
    assert key not in gw._GEOMETRY  # the entry goes with its route


def test_replan_reuses_the_route_geometry(long_route: Route) -> None:
    from routing import greenwave as gw

    plan = plan_green_wave(long_route, departure=T0, requester=FIRE).plan
    a = replan_from_position(
        plan, position=_point_at(long_route, 60.0), now=T0 + timedelta(seconds=60)
    )
    geometry = gw._route_geometry(a.plan.route)
    b = replan_from_position(
        a.plan, position=_point_at(long_route, 90.0), now=T0 + timedelta(seconds=90)
    )
    assert b.plan.route is long_route and gw._route_geometry(b.plan.route) is geometry
    assert b.plan.progress_s >= a.plan.progress_s


def test_updates_go_out_when_the_drift_matters_to_the_window(long_route: Route) -> None:
    """A drift of 4 s re-times the near signals (narrow windows) but not the far ones, whose
    window is wide enough to hold it; 30 s re-times them all; with ``retime_share`` 0 every
    signal hears of any drift over ``retime_s``."""
    from routing.greenwave import GreenWaveConfig, outgoing

    config = GreenWaveConfig(retime_share=0.25)
    first = plan_green_wave(long_route, departure=T0, requester=FIRE)
    sent, held = outgoing(first.requests, {}, retime_s=2.0, retime_share=config.retime_share)
    assert [m.request_type for m in sent] == [RequestType.REQUEST] * len(first.requests)
    widths = {
        m.intersection_id: (m.arrive_to - m.arrive_from).total_seconds() for m in first.requests
    }
    fix = _point_at(long_route, 1.0)

    def drift(late_s: float, share: float) -> set[int]:
        now = T0 + timedelta(seconds=1.0 + late_s)
        update = replan_from_position(first.plan, position=fix, now=now, config=config)
        out, _ = outgoing(update.requests, held, retime_s=2.0, retime_share=share)
        return {m.intersection_id for m in out if m.request_type is RequestType.UPDATE}

    ahead = {m.intersection_id for m in first.requests} - set(drift(10_000.0, 0.0))
    assert not ahead, "every signal ahead is re-timed by a huge drift"
    four = drift(4.0, config.retime_share)
    narrow = {i for i, w in widths.items() if 0.25 * w < 3.5}
    wide = {i for i, w in widths.items() if 0.25 * w > 4.5}
    assert narrow and wide, "the route should have near and far signals"
    assert narrow <= four and four.isdisjoint(wide)
    assert drift(4.0, 0.0) >= narrow | wide
    assert drift(30.0, config.retime_share) >= narrow | wide
