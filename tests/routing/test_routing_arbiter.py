"""Arbiter: conflicting grants never overlap; higher priority never loses to lower."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.arbiter import (
    Arbiter,
    ArbiterConfig,
    IntersectionState,
    SignalDecision,
    SignalStatus,
    movements_conflict,
)
from routing.greenwave import (
    Approach,
    ApproachLabel,
    Requester,
    RequestType,
    SignalRequest,
    VehicleRole,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NODE = 42
_BEARING = {"N": 0.0, "E": 90.0, "S": 180.0, "W": 270.0}


def _request(
    unit: str,
    inbound: str,
    outbound: str,
    start_s: float,
    width_s: float = 10.0,
    importance: int = 10,
    kind: RequestType = RequestType.REQUEST,
    sequence: int = 0,
) -> SignalRequest:
    eta = T0 + timedelta(seconds=start_s + width_s / 2)
    return SignalRequest(
        request_id=f"x:{unit}:{NODE}",
        sequence=sequence,
        intersection_id=NODE,
        request_type=kind,
        inbound=Approach(bearing_deg=(_BEARING[inbound] + 180) % 360, label=ApproachLabel(inbound)),
        outbound=Approach(bearing_deg=_BEARING[outbound], label=ApproachLabel(outbound)),
        eta=eta,
        arrive_from=T0 + timedelta(seconds=start_s),
        arrive_to=T0 + timedelta(seconds=start_s + width_s),
        hold_s=4.0,
        requester=Requester(agency="x", unit_id=unit, role=VehicleRole.FIRE, incident_priority=1),
        importance=importance,
        sent_at=T0,
    )


def _by_unit(state: IntersectionState) -> dict[str, SignalDecision]:
    return {d.request.requester.unit_id: d for d in state.decisions}


def test_conflict_table() -> None:
    ns = _request("a", "S", "N", 0)  # from the south leg, straight on
    sn = _request("b", "N", "S", 0)  # opposing straight
    ew = _request("c", "E", "W", 0)  # crossing
    s_left = _request("d", "S", "W", 0)  # same inbound leg, turning
    n_left = _request("e", "N", "E", 0)  # opposing, turning across
    assert not movements_conflict(ns, sn)
    assert movements_conflict(ns, ew)
    assert not movements_conflict(ns, s_left)
    assert movements_conflict(ns, n_left)


def test_higher_priority_preempts_and_lower_shifts() -> None:
    arbiter = Arbiter(ArbiterConfig(max_shift_s=60, clearance_s=4))
    state = IntersectionState(intersection_id=NODE)
    state = arbiter.decide(state, _request("low", "S", "N", 10, importance=5), now=T0)
    assert _by_unit(state)["low"].status is SignalStatus.GRANTED
    state = arbiter.decide(state, _request("high", "E", "W", 12, importance=12), now=T0)
    high, low = _by_unit(state)["high"], _by_unit(state)["low"]
    assert high.status is SignalStatus.GRANTED and high.shift_s == 0
    assert low.status is SignalStatus.GRANTED and low.shift_s > 0
    assert low.granted_from is not None and high.granted_to is not None
    assert low.granted_from >= high.granted_to + timedelta(seconds=4)


def test_rejected_when_shift_too_large_and_regranted_after_cancel() -> None:
    arbiter = Arbiter(ArbiterConfig(max_shift_s=5))
    state = IntersectionState(intersection_id=NODE)
    state = arbiter.decide(state, _request("high", "E", "W", 0, importance=12), now=T0)
    state = arbiter.decide(state, _request("low", "N", "S", 0, importance=3), now=T0)
    assert _by_unit(state)["low"].status is SignalStatus.REJECTED
    assert "x:high" in _by_unit(state)["low"].reason
    state = arbiter.decide(
        state, _request("high", "E", "W", 0, kind=RequestType.CANCEL, sequence=1), now=T0
    )
    assert _by_unit(state)["high"].status is SignalStatus.CANCELLED
    assert _by_unit(state)["low"].status is SignalStatus.GRANTED


def test_same_approach_both_granted() -> None:
    arbiter = Arbiter()
    state = IntersectionState(intersection_id=NODE)
    state = arbiter.decide(state, _request("a", "S", "N", 0, importance=12), now=T0)
    state = arbiter.decide(state, _request("b", "S", "N", 2, importance=4), now=T0)
    assert {d.status for d in state.decisions} == {SignalStatus.GRANTED}
    assert all(d.shift_s == 0 for d in state.decisions)


def test_windows_expire_to_served_and_stale_updates_are_ignored() -> None:
    arbiter = Arbiter()
    state = arbiter.decide(
        IntersectionState(intersection_id=NODE), _request("a", "S", "N", 0, sequence=3), now=T0
    )
    stale = arbiter.decide(
        state, _request("a", "E", "W", 0, sequence=2, kind=RequestType.UPDATE), now=T0
    )
    assert stale.decisions == state.decisions
    later = arbiter.resolve(state, now=T0 + timedelta(seconds=60))
    assert _by_unit(later)["a"].status is SignalStatus.SERVED


_legs = st.sampled_from("NESW")
_req = st.tuples(
    _legs,
    _legs,
    st.floats(0, 120),
    st.floats(1, 30),
    st.integers(0, 14),
    st.sampled_from(list(RequestType)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_req, min_size=1, max_size=12), st.floats(0, 30), st.floats(0, 6))
def test_arbiter_properties(
    specs: list[tuple[str, str, float, float, int, RequestType]], max_shift: float, gap: float
) -> None:
    arbiter = Arbiter(ArbiterConfig(max_shift_s=max_shift, clearance_s=gap))
    state = IntersectionState(intersection_id=NODE)
    for i, (inbound, outbound, start, width, importance, kind) in enumerate(specs):
        unit = f"u{i % 5}"  # units repeat, so updates and cancels hit existing requests
        state = arbiter.decide(
            state,
            _request(unit, inbound, outbound, start, width, importance, kind, sequence=i),
            now=T0,
        )
    granted = [d for d in state.decisions if d.status is SignalStatus.GRANTED]
    for a in granted:
        assert a.granted_from is not None and a.granted_to is not None
        assert 0 <= a.shift_s <= max_shift + 1e-9
        for b in granted:
            if a is b or not movements_conflict(a.request, b.request):
                continue
            assert b.granted_from is not None and b.granted_to is not None
            clear = timedelta(seconds=gap) - timedelta(microseconds=2)
            assert a.granted_to + clear <= b.granted_from or b.granted_to + clear <= a.granted_from
    # Priority: a request shifted or rejected was blocked by one at least as important.
    for d in state.decisions:
        if d.status is SignalStatus.REJECTED or (
            d.status is SignalStatus.GRANTED and d.shift_s > 0
        ):
            assert any(
                g.request.importance >= d.request.importance
                and movements_conflict(g.request, d.request)
                for g in granted
                if g is not d
            )
    # A request is not rejected by a less important one alone.
    for d in state.decisions:
        if d.status is SignalStatus.REJECTED:
            blockers = [g for g in granted if movements_conflict(g.request, d.request)]
            assert max(g.request.importance for g in blockers) >= d.request.importance


@settings(max_examples=150, deadline=None)
@given(st.lists(_req, min_size=2, max_size=10), st.floats(0, 30))
def test_lower_priority_requests_never_change_a_higher_ones_decision(
    specs: list[tuple[str, str, float, float, int, RequestType]], max_shift: float
) -> None:
    arbiter = Arbiter(ArbiterConfig(max_shift_s=max_shift))
    state = IntersectionState(intersection_id=NODE)
    for i, (inbound, outbound, start, width, importance, _) in enumerate(specs):
        state = arbiter.decide(
            state,
            _request(f"u{i}", inbound, outbound, start, width, importance, sequence=i),
            now=T0,
        )
    for d in state.decisions:
        # Drop everything less important than d and solve again: d's answer must not move.
        alone = state.model_copy(
            update={
                "decisions": [
                    e for e in state.decisions if e.request.importance >= d.request.importance
                ]
            }
        )
        again = {e.request.request_id: e for e in arbiter.resolve(alone, now=T0).decisions}[
            d.request.request_id
        ]
        assert (again.status, again.granted_from, again.granted_to) == (
            d.status,
            d.granted_from,
            d.granted_to,
        )
