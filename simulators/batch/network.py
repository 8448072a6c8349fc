"""The batch drill's signal network: the arbiter per intersection, controllers executing it.

What the service and the 122 gateway do together in a live drill, in-process: every green-wave
message is decided by :class:`routing.arbiter.Arbiter` over that intersection's state (as the
service's green-wave step does); a changed decision goes on to the intersection's
:class:`SignalController` as a grant or a cancel (as the gateway does); the controllers'
``served`` / ``rejected`` reports are counted. Controllers are made when first touched, in the
state their plan gives that second, and are advanced lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from routing.arbiter import (
    Arbiter,
    ArbiterConfig,
    IntersectionState,
    SignalDecision,
    SignalStatus,
    movements_conflict,
)
from routing.greenwave import SignalRequest

from ..clock import SimClock
from ..signals import (
    HOURLY_FLOW,
    PriorityCancel,
    PriorityGrant,
    SignalController,
    SignalTiming,
    SignalView,
    axis_for,
)

Outcome = Callable[[str, bool], None]
"""``outcome(request_id, granted)``: a request was granted (True) or refused (False)."""


class SignalNetwork:
    """Every signal of the map, its arbiter state and its controller.

    Args:
        timings: OSM node id -> fixed-time plan.
        clock: the drill's simulated clock (the arbiter decides on datetimes).
        outcome: told of every grant and refusal, by the arbiter or a controller, when it
            happens (the engine books it to the leg being driven).
    """

    def __init__(self, timings: dict[int, SignalTiming], clock: SimClock, outcome: Outcome) -> None:
        self.timings = timings
        self.clock = clock
        self.outcome = outcome
        self.arbiter = Arbiter(ArbiterConfig(clearance_s=5.0))
        self.intersections: dict[int, IntersectionState] = {}
        self.controllers: dict[int, SignalController] = {}
        self.served_grants: list[PriorityGrant] = []
        self.served = 0
        self.grant_conflicts = 0
        self._last_grant: dict[tuple[int, str], PriorityGrant] = {}
        self._served_at: dict[tuple[int, str], int] = {}  # index into served_grants
        self._flow_memo: dict[float, float] = {}

    def flow_factor(self, t: float) -> float:
        """Share of peak traffic at drill second ``t`` (the scenario's local hour)."""
        # Memoised: controllers ask for every second they step (always whole seconds, so the
        # memo holds at most one entry per simulated second of the drill).
        factor = self._flow_memo.get(t)
        if factor is None:
            factor = self._flow_memo[t] = HOURLY_FLOW[int(self.clock.hour_of_day(t)) % 24]
        return factor

    def controller(self, iid: int, now_s: float) -> SignalController:
        ctrl = self.controllers.get(iid)
        if ctrl is None:
            ctrl = SignalController(self.timings[iid], now_s=now_s, flow_factor=self.flow_factor)
            self.controllers[iid] = ctrl
        return ctrl

    def lookup(self, iid: int, at_s: float) -> SignalView:
        """The signal as shown during second ``floor(at_s)`` (a vehicle's ``SignalLookup``)."""
        ctrl = self.controller(iid, at_s)
        ctrl.advance(at_s)
        self._take_reports(ctrl)
        return ctrl.view()

    def submit(self, messages: Sequence[SignalRequest], now_s: float) -> None:
        """Messages through the arbiter; changed decisions on to the controllers."""
        now_at = self.clock.at(now_s)
        for req in messages:
            iid = req.intersection_id
            if iid not in self.timings:
                continue
            state = self.intersections.get(iid) or IntersectionState(intersection_id=iid)
            new = self.arbiter.decide(state, req, now=now_at)
            self.intersections[iid] = new
            self._forward(state, new, now_s)

    def finish(self, end_s: float) -> None:
        """End of the drill: every controller run to ``end_s``, its last reports taken."""
        for ctrl in self.controllers.values():
            ctrl.advance(end_s)
            ctrl.finish()
            self._take_reports(ctrl)

    def _take_reports(self, ctrl: SignalController) -> None:
        for rep in ctrl.data_to_send():
            if rep.status == "rejected":
                self.outcome(rep.request_id, False)
            if rep.status != "served":
                continue
            key = (rep.intersection_id, rep.request_id)
            grant = self._last_grant.get(key)
            self.served += 1
            if grant is not None:
                self._served_at[key] = len(self.served_grants)
                self.served_grants.append(grant)

    def _cut(self, key: tuple[int, str], at_s: float) -> None:
        """A grant withdrawn at ``at_s`` held the light only until then: its record says so
        (the window granted stays on the arbiter's decision; the record is what the light did)."""
        grant = self._last_grant.get(key)
        if grant is None or grant.green_to_s <= at_s:
            return
        cut = grant.model_copy(update={"green_to_s": max(at_s, grant.green_from_s)})
        self._last_grant[key] = cut
        index = self._served_at.get(key)
        if index is not None:
            self.served_grants[index] = cut

    def _forward(self, old: IntersectionState, new: IntersectionState, now_s: float) -> None:
        before = {d.request.request_id: d for d in old.decisions}
        granted: list[SignalDecision] = []
        for d in new.decisions:
            prev = before.get(d.request.request_id)
            rid = d.request.request_id
            iid = new.intersection_id
            was = prev is not None and prev.status is SignalStatus.GRANTED
            if d.status is SignalStatus.GRANTED and d.granted_from and d.granted_to:
                granted.append(d)
                if (
                    was
                    and prev is not None
                    and prev.granted_from == d.granted_from
                    and prev.granted_to == d.granted_to
                ):
                    continue
                grant = PriorityGrant(
                    request_id=rid,
                    intersection_id=iid,
                    axis=axis_for(d.request.inbound.label),
                    inbound=d.request.inbound.label,
                    outbound=d.request.outbound.label,
                    green_from_s=self.clock.seconds(d.granted_from),
                    green_to_s=self.clock.seconds(d.granted_to),
                    eta_s=self.clock.seconds(d.request.eta) + d.shift_s,
                    importance=d.request.importance,
                )
                self._last_grant[(iid, rid)] = grant
                self.outcome(rid, True)
                ctrl = self.controller(iid, now_s)
                ctrl.receive(grant, now_s)
                self._take_reports(ctrl)
            elif was and d.status in (SignalStatus.CANCELLED, SignalStatus.REJECTED):
                if d.status is SignalStatus.REJECTED:
                    self.outcome(rid, False)
                self._cut((iid, rid), now_s)
                ctrl = self.controller(iid, now_s)
                ctrl.receive(PriorityCancel(request_id=rid, intersection_id=iid), now_s)
                self._take_reports(ctrl)
            elif d.status is SignalStatus.REJECTED and prev is None:
                self.outcome(rid, False)
        # Independent check of the arbiter's promise: no two conflicting greens overlap.
        for i, a in enumerate(granted):
            for b in granted[i + 1 :]:
                assert a.granted_from and a.granted_to and b.granted_from and b.granted_to
                if (
                    movements_conflict(a.request, b.request)
                    and a.granted_from < b.granted_to
                    and b.granted_from < a.granted_to
                ):
                    self.grant_conflicts += 1
