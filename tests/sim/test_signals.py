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


# ----------------------------------------------------------------- maximum extension, recovery


def _stuck(
    ctrl: SignalController, axis: Axis, until: int, *, rid: str = "stuck", since: int = 0
) -> tuple[list[Axis | None], list[tuple[int, str, str]]]:
    """A late vehicle stopped just upstream: its window opened at ``since + 5`` and the service
    keeps sliding its end (re-timed every second, the vehicle always 3 s away).

    Returns the display per second ``since..until-1`` and the reports ``(at, status, reason)``.
    """
    shown: list[Axis | None] = []
    reports: list[tuple[int, str, str]] = []
    for t in range(since, until):
        ctrl.receive(grant(rid, axis, since + 5, t + 20, eta=t + 3), t)
        shown.append(ctrl.view().green_axis)
        reports += [(int(r.at_s), r.status, r.reason) for r in ctrl.data_to_send()]
    return shown, reports


def _runs(shown: list[Axis | None]) -> list[tuple[Axis | None, int, int]]:
    """``(display, first second, length)`` of each run of one display."""
    runs: list[tuple[Axis | None, int, int]] = []
    for t, g in enumerate(shown):
        if runs and runs[-1][0] == g:
            runs[-1] = (g, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((g, t, 1))
    return runs


def test_sliding_request_is_capped_at_the_maximum_extension() -> None:
    # Plan (offset 7, cycle 90): NS green [7, 52), clearance [52, 57), EW green [57, 92), ...
    ctrl = SignalController(timing(), now_s=0)
    assert ctrl.max_extension_s == 30
    shown, reports = _stuck(ctrl, Axis.NS, 200, since=10)
    runs = [(g, start + 10, length) for g, start, length in _runs(shown)]
    # The NS green is held 30 s past its planned end (52) and no longer: it ends at 82.
    assert runs[0] == (Axis.NS, 10, 72)
    assert runs[1] == (None, 82, 5)
    # The request the cap left unserved is rejected (once, when the green ends).
    capped = [r for r in reports if r[1] == "rejected" and "max extension" in r[2]]
    assert capped and capped[0][0] == 82
    # The cross street then gets its minimum green before priority cuts it again.
    assert runs[2] == (Axis.EW, 87, 10)
    # ... and every later NS green (re-granted after the recovery) is capped again.
    for g, _, length in runs[3:-1]:
        if g is Axis.EW:
            assert length >= ctrl.timing.min_green_s
        if g is Axis.NS:
            assert length <= 1.5 * ctrl.timing.green_s(Axis.NS) + ctrl.max_extension_s


def test_recovery_green_is_configurable() -> None:
    ctrl = SignalController(timing(), now_s=0, recovery_green_s=20)
    shown, reports = _stuck(ctrl, Axis.NS, 300, since=10)
    runs = _runs(shown)
    assert any(r[1] == "rejected" and "max extension" in r[2] for r in reports)
    inner_ew = [length for g, _, length in runs[1:-1] if g is Axis.EW]
    assert inner_ew and min(inner_ew) >= 20


def test_mutual_wait_is_broken() -> None:
    # The drill's deadlock, at one junction: both axes hold a stopped vehicle's sliding
    # request. Neither street may be held for ever; both get green within two cycles.
    ctrl = SignalController(timing(), now_s=0)
    shown: list[Axis | None] = []
    for t in range(10, 400):
        ctrl.receive(grant("a", Axis.NS, t + 5, t + 20, eta=t + 6), t)
        ctrl.receive(grant("b", Axis.EW, t + 5, t + 20, eta=t + 6), t)
        shown.append(ctrl.view().green_axis)
    runs = _runs(shown)
    tm = ctrl.timing
    for g, _, length in runs[1:-1]:
        if g is not None:
            assert tm.min_green_s <= length <= 1.5 * tm.green_s(g) + ctrl.max_extension_s, runs
    assert {g for g, _, _ in runs} == {Axis.NS, Axis.EW, None}


@settings(max_examples=60, deadline=None)
@given(
    cycle=st.integers(60, 150),
    share=st.floats(0.3, 0.7),
    offset=st.integers(0, 149),
    axis=st.sampled_from(list(Axis)),
    since=st.integers(0, 150),
    max_ext=st.integers(0, 40),
    recovery=st.integers(0, 25),
    window=st.integers(1, 40),
    slide=st.integers(1, 3),
    anchored=st.booleans(),
)
def test_sliding_grants_never_hold_beyond_the_maximum(
    cycle: int,
    share: float,
    offset: int,
    axis: Axis,
    since: int,
    max_ext: int,
    recovery: int,
    window: int,
    slide: int,
    anchored: bool,
) -> None:
    effective = cycle - 10
    major = min(max(15, round(effective * share)), effective - 15)
    tm = timing(cycle, major, offset % cycle)
    ctrl = SignalController(tm, now_s=0, max_extension_s=max_ext, recovery_green_s=recovery)
    recovery_s = max(recovery, tm.min_green_s)
    shown: list[Axis | None] = []
    rejected_at: list[int] = []
    for t in range(0, 700):
        if t >= since and (t - since) % slide == 0:
            lead = 3 + (t % 5)
            start = since + lead if anchored else t + lead
            ctrl.receive(grant("v", axis, start, t + lead + window, eta=t + lead + 1), t)
        ctrl.advance(t)
        shown.append(ctrl.view().green_axis)
        rejected_at += [int(r.at_s) for r in ctrl.data_to_send() if "max extension" in r.reason]
    runs = _runs(shown)
    for i, (g, start, length) in enumerate(runs):
        inner = 0 < i < len(runs) - 1
        if g is None or not inner:
            continue
        # Never longer than its planned green (<= 1.5 x nominal, or the minimum) + the cap.
        planned = max(1.5 * tm.green_s(g), tm.min_green_s)
        assert length <= planned + max_ext, runs
        assert length >= tm.min_green_s, runs
        # A green ended by the cap is followed (after the clearance) by a recovery green.
        end = start + length
        if end in rejected_at and i + 2 < len(runs) - 1:
            assert runs[i + 1][0] is None and runs[i + 2][0] is other_axis(g), runs
            assert runs[i + 2][2] >= recovery_s, runs
