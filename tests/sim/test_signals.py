"""Signal controller: fixed-time plan, safe priority (holds, early starts), served / rejected."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.greenwave import ApproachLabel
from simulators.signals import (
    Axis,
    PriorityCancel,
    PriorityGrant,
    SignalController,
    SignalTiming,
    other_axis,
)

LABEL = {Axis.NS: ApproachLabel.S, Axis.EW: ApproachLabel.W}
OUT = {Axis.NS: ApproachLabel.N, Axis.EW: ApproachLabel.E}


def timing(cycle: int = 90, major: int = 45, offset: int = 7) -> SignalTiming:
    minor = cycle - 10 - major
    return SignalTiming(
        intersection_id=1,
        major_axis=Axis.NS,
        cycle_s=cycle,
        major_green_s=major,
        minor_green_s=minor,
        offset_s=offset,
        major_flow_vps=0.7 * 0.5 * major / cycle,
        minor_flow_vps=0.6 * 0.5 * minor / cycle,
    )


def grant(
    rid: str, axis: Axis, start: float, end: float, eta: float | None = None
) -> PriorityGrant:
    return PriorityGrant(
        request_id=rid,
        intersection_id=1,
        axis=axis,
        inbound=LABEL[axis],
        outbound=OUT[axis],
        green_from_s=start,
        green_to_s=end,
        eta_s=start + 2 if eta is None else eta,
        importance=12,
    )


def test_fixed_time_follows_the_plan() -> None:
    tm = timing()
    ctrl = SignalController(tm, now_s=1000)
    for t in range(1000, 1400):
        ctrl.advance(t)
        axis, clear, _, _ = tm.plan_at(t)
        view = ctrl.view()
        assert view.green_axis == (None if clear else axis)
    # Queues match the analytic steady state after a jump.
    ctrl.advance(5000)
    for axis in Axis:
        assert math.isclose(ctrl.view().queue(axis), tm.queue_at(axis, 5000, tm.flow_vps(axis)))


def test_hold_extends_green_and_reports_served() -> None:
    tm = timing()
    # Plan: NS green [7, 52), clearance, EW green [57, 92)... (offset 7).
    ctrl = SignalController(tm, now_s=0)
    ctrl.receive(grant("a", Axis.NS, 45, 70), 10)
    for t in range(10, 75):
        ctrl.advance(t)
        if 45 <= t < 70:
            assert ctrl.view().is_green(Axis.NS), t
    ctrl.advance(80)
    reports = ctrl.data_to_send()
    assert [(r.request_id, r.status, r.missed_s) for r in reports] == [("a", "served", 0)]


def test_early_start_respects_minimum_green_and_clearance() -> None:
    tm = timing()
    ctrl = SignalController(tm, now_s=0)
    # EW wanted at 20 while NS (green since 7) has min green to 17, clearance to 22: too late.
    ctrl.receive(grant("late", Axis.EW, 20, 40, eta=20), 8)
    assert [r.status for r in ctrl.data_to_send()] == ["rejected"]
    # EW wanted at 35: NS is cut at its minimum, cleared, EW green before the window.
    ctrl.receive(grant("ok", Axis.EW, 35, 50), 8)
    for t in range(8, 50):
        ctrl.advance(t)
        if t >= 35:
            assert ctrl.view().is_green(Axis.EW), t
    assert ctrl.data_to_send() == []


def test_cancel_releases_the_hold() -> None:
    tm = timing()
    ctrl = SignalController(tm, now_s=0)
    ctrl.receive(grant("a", Axis.NS, 45, 90), 10)
    ctrl.advance(50)
    ctrl.receive(PriorityCancel(request_id="a", intersection_id=1), 50)
    assert [r.status for r in ctrl.data_to_send()] == ["served"]
    ctrl.advance(60)
    assert not ctrl.view().is_green(Axis.NS)


@st.composite
def requests(draw: st.DrawFn) -> list[tuple[int, str, Axis | None, float, float]]:
    out: list[tuple[int, str, Axis | None, float, float]] = []
    for k in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, 500))
        rid = f"r{draw(st.integers(0, 5))}"
        if draw(st.booleans()) and k:
            out.append((at, rid, None, 0.0, 0.0))  # cancel
            continue
        axis = draw(st.sampled_from(list(Axis)))
        start = at + draw(st.floats(-10, 200))
        out.append((at, rid, axis, start, start + draw(st.floats(1, 70))))
    return sorted(out, key=lambda r: r[0])


@settings(max_examples=60, deadline=None)
@given(
    cycle=st.integers(60, 150),
    share=st.floats(0.3, 0.7),
    offset=st.integers(0, 149),
    msgs=requests(),
)
def test_never_cuts_clearance_or_minimum_green(
    cycle: int, share: float, offset: int, msgs: list[tuple[int, str, Axis | None, float, float]]
) -> None:
    effective = cycle - 10
    major = min(max(15, round(effective * share)), effective - 15)
    tm = timing(cycle, major, offset % cycle)
    ctrl = SignalController(tm, now_s=0)
    shown: list[Axis | None] = []
    pending = list(msgs)
    for t in range(0, 800):
        while pending and pending[0][0] <= t:
            _, rid, axis, start, end = pending.pop(0)
            if axis is None:
                ctrl.receive(PriorityCancel(request_id=rid, intersection_id=1), t)
            else:
                ctrl.receive(grant(rid, axis, start, end), t)
        ctrl.advance(t)
        shown.append(ctrl.view().green_axis)
    # Runs of one display: green runs last >= min green (except the first and last, which the
    # window truncates); a change of green axis always has a full clearance between.
    runs: list[tuple[Axis | None, int]] = []
    for g in shown:
        if runs and runs[-1][0] == g:
            runs[-1] = (g, runs[-1][1] + 1)
        else:
            runs.append((g, 1))
    for i, (g, length) in enumerate(runs):
        inner = 0 < i < len(runs) - 1
        if g is not None and inner:
            assert length >= tm.min_green_s, runs
        if g is None and inner:
            assert length == tm.clearance_s, runs
            assert runs[i + 1][0] == other_axis(runs[i - 1][0] or Axis.NS), runs
        if i and g is not None and runs[i - 1][0] is not None:
            raise AssertionError(f"green switched without clearance: {runs}")


@settings(max_examples=40, deadline=None)
@given(
    cycle=st.integers(min_value=40, max_value=150),
    share=st.floats(min_value=0.3, max_value=0.7),
    offset=st.integers(min_value=0, max_value=149),
)
def test_controller_phase_table_matches_the_plan(cycle: int, share: float, offset: int) -> None:
    # The controller's precomputed phase bounds (its per-second hot path) say what plan_at says.
    major = max(10, min(cycle - 20, round((cycle - 10) * share)))
    tm = timing(cycle=cycle, major=major, offset=offset % cycle)
    ctrl = SignalController(tm, now_s=0)
    for t in range(-cycle, 3 * cycle):
        assert ctrl._plan_at(t) == tm.plan_at(t)
