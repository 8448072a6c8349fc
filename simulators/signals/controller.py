"""A signal controller that honours priority safely, as a pure step-able object.

:class:`SignalController` is a pure, step-able protocol object (python-websockets style): feed it
:class:`PriorityGrant` / :class:`PriorityCancel` messages with :meth:`SignalController.receive`,
move it to a time with :meth:`SignalController.advance`, read the signal with
:meth:`SignalController.view` and collect its :class:`PriorityReport` messages with
:meth:`SignalController.data_to_send`. It runs on the 1 s grid and never:

* gives two axes green at once (one phase variable);
* shortens a clearance interval (a clearance, once started, always runs its full length);
* ends a green before the minimum green (hold only lengthens, an early cut stops at the minimum).

A granted request is honoured by *holding* (extending) the current green of its axis through the
window, or *advancing* the green (cutting the cross street's green at its minimum, then the
clearance). A request that cannot be served by its ETA without breaking those rules is reported
``rejected`` and changes nothing. After priority the controller returns to its plan within a few
cycles by shortening or lengthening greens (never below the minimum, at most 1.5 x nominal).

Priority is bounded the way field transit / emergency priority is (NTCIP 1211 "maximum
extension", "re-service" lock-out):

* **Maximum extension.** A green is never held more than ``max_extension_s`` (default 30 s)
  past its planned end (the end the plan gave it when it started), however many requests want
  it and however far their windows slide. A vehicle stopped elsewhere keeps re-timing its
  request, so without this bound one street could be held green for ever - and two vehicles
  held at each other's junctions would wait on each other. When the cap ends a green inside a
  granted window (or one the next green cannot reach by its ETA), that request is reported
  ``rejected`` ("max extension reached") and dropped; a fresh grant for it is judged anew.
* **Bounded early start.** A green starts early (advance) only by cutting the cross street's
  green, never below its minimum (or recovery) green and never into a clearance, and at most
  ``max_lead_s`` ahead of the window: the early start takes no more than the planned red
  remaining allows.
* **Recovery.** After a green that priority held past its planned end (or whose request was
  abandoned at the cap), the conflicting axis gets at least ``recovery_green_s`` (default: its
  minimum green) before priority may cut it again; ``earliest_green`` accounts for it, so a
  re-sent grant for the abandoned request is only accepted for a green after the recovery.

Queues are a fluid model per axis: arrivals at the approach's flow, discharge at the saturation
flow (one vehicle per ``headway_s``) while green. A shadow copy of the queues runs under the pure
fixed-time plan; the difference of the two queue integrals is the delay priority added (or saved)
on each approach, kept per perturbation :class:`DelayEpisode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from routing.greenwave import ApproachLabel

from .timing import AXES, Axis, SignalTiming, other_axis


class PriorityGrant(BaseModel):
    """Hold green for ``axis`` from ``green_from_s`` to ``green_to_s`` (a granted SRM window).

    Sending a grant again with the same ``request_id`` replaces it (a re-timed request).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["grant"] = "grant"
    request_id: str
    intersection_id: int
    axis: Axis
    inbound: ApproachLabel
    outbound: ApproachLabel
    green_from_s: float
    green_to_s: float
    eta_s: float = Field(description="expected arrival; the grant is refused if not green by then")
    importance: int = Field(ge=0, le=14)


class PriorityCancel(BaseModel):
    """Drop a grant (the vehicle passed, was re-routed, or the arbiter withdrew it)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["cancel"] = "cancel"
    request_id: str
    intersection_id: int


class PriorityReport(BaseModel):
    """What the controller did with a grant (its SSM to the service)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["priority_report"] = "priority_report"
    request_id: str
    intersection_id: int
    status: Literal["served", "rejected", "cancelled"]
    at_s: float
    green_s: int = Field(default=0, description="window seconds the axis was green")
    missed_s: int = Field(default=0, description="window seconds the axis was not green")
    reason: str = ""


class DelayEpisode(BaseModel):
    """One stretch during which priority moved the controller off its plan.

    ``actual_veh_s`` and ``baseline_veh_s`` integrate each axis' queue over the episode with
    and without priority (same arrivals); ``cycle_delay_veh_s`` is the axis' fixed-time uniform
    delay per cycle, the denominator of the cross-street delay share.
    """

    model_config = ConfigDict(frozen=True)

    intersection_id: int
    start_s: float
    end_s: float
    cycles: int
    prioritised: list[Axis]
    actual_veh_s: dict[Axis, float]
    baseline_veh_s: dict[Axis, float]
    cycle_delay_veh_s: dict[Axis, float]
    extra_red_s: dict[Axis, int]


@dataclass(frozen=True, slots=True)
class SignalView:
    """What a vehicle at the stop line sees (the SPaT of one intersection at one second)."""

    intersection_id: int
    at_s: float
    green_axis: Axis | None
    queue_ns: float
    queue_ew: float
    headway_s: float
    startup_lost_s: float

    def is_green(self, axis: Axis) -> bool:
        """Whether ``axis`` shows green (not amber, not red)."""
        return self.green_axis is axis

    def queue(self, axis: Axis) -> float:
        """Vehicles queued on ``axis`` (fluid, so fractional)."""
        return self.queue_ns if axis is Axis.NS else self.queue_ew


@dataclass(slots=True)
class _Held:
    grant: PriorityGrant
    accepted: bool
    green_s: int = 0
    missed_s: int = 0


@dataclass(slots=True)
class _Episode:
    start: int
    prioritised: set[Axis] = field(default_factory=set)
    actual: dict[Axis, float] = field(default_factory=lambda: {Axis.NS: 0.0, Axis.EW: 0.0})
    baseline: dict[Axis, float] = field(default_factory=lambda: {Axis.NS: 0.0, Axis.EW: 0.0})
    extra_red: dict[Axis, int] = field(default_factory=lambda: {Axis.NS: 0, Axis.EW: 0})


FlowFactor = Callable[[float], float]


def _flat(_: float) -> float:
    return 1.0


class SignalController:
    """One intersection's controller: fixed-time plan plus safe priority (see module docstring).

    Args:
        timing: the plan.
        now_s: simulated second to start at (the state is the plan's at that second).
        flow_factor: share of peak flow at a simulated second (time of day), in [0, 1].
        max_lead_s: how far ahead of a granted window the green may start, to flush the queue
            standing in front of the priority vehicle.
        min_lead_s: the green starts at least this much before the window (ETAs from a route
            estimate err early as often as late; a detector would see the vehicle coming).
        max_extension_s: the most a green may be held past its planned end, for all requests
            together (field controllers: 10-30 s for transit, up to ~30 s for pre-emption-free
            emergency priority); requests the cap leaves unserved are reported ``rejected``.
        recovery_green_s: the least green the conflicting axis gets after a priority-extended
            (or abandoned) green before priority may cut it again; ``None``: the plan's minimum
            green (never less than that).
    """

    def __init__(
        self,
        timing: SignalTiming,
        *,
        now_s: float,
        flow_factor: FlowFactor = _flat,
        max_lead_s: float = 20.0,
        min_lead_s: float = 3.0,
        max_extension_s: int = 30,
        recovery_green_s: int | None = None,
    ) -> None:
        if max_extension_s < 0:
            raise ValueError("max_extension_s must be >= 0")
        self.timing = timing
        self.flow_factor = flow_factor
        self.max_lead_s = max_lead_s
        self.min_lead_s = min_lead_s
        self.max_extension_s = int(max_extension_s)
        self.recovery_green_s = max(timing.min_green_s, recovery_green_s or 0)
        # Minimum green of the current green, and of the next one (the recovery green after a
        # priority-extended or abandoned green); grants the current green's cap cannot serve.
        self._cur_min = timing.min_green_s
        self._next_min = timing.min_green_s
        self._over_cap: list[str] = []
        self.t = math.floor(now_s)
        self._held: dict[str, _Held] = {}
        self._outbox: list[PriorityReport] = []
        self._episode: _Episode | None = None
        self.episodes: list[DelayEpisode] = []
        self.axis: Axis = timing.major_axis
        self.clear = False
        self.start = self.t
        self.nominal_end = self.t
        self.end = self.t
        self.queue: dict[Axis, float] = {}
        self.shadow: dict[Axis, float] = {}
        # Constants of the plan, precomputed for the per-second step (same values as the
        # timing's own methods give: plan_at's phase bounds, flow_vps, the discharge rate).
        minor = other_axis(timing.major_axis)
        gm, clr = timing.major_green_s, timing.clearance_s
        self._phases: tuple[tuple[Axis, bool, int, int], ...] = (
            (timing.major_axis, False, 0, gm),
            (timing.major_axis, True, gm, gm + clr),
            (minor, False, gm + clr, gm + clr + timing.minor_green_s),
            (minor, True, gm + clr + timing.minor_green_s, timing.cycle_s),
        )
        self._peak_flow = {a: timing.flow_vps(a) for a in AXES}
        self._discharge = 1.0 / timing.headway_s
        self._sync(self.t)

    # ------------------------------------------------------------------------------ public

    def receive(self, message: PriorityGrant | PriorityCancel, now_s: float) -> None:
        """Apply a grant or cancel at ``now_s`` (the controller first advances to it).

        Raises:
            ValueError: the message is for another intersection.
        """
        if message.intersection_id != self.timing.intersection_id:
            raise ValueError(
                f"message for {message.intersection_id} sent to {self.timing.intersection_id}"
            )
        self.advance(now_s)
        self._apply(message)
        # A hold or an early cut takes effect in the current second, not the next.
        self._transition()

    def _apply(self, message: PriorityGrant | PriorityCancel) -> None:
        if isinstance(message, PriorityCancel):
            held = self._held.pop(message.request_id, None)
            if held is not None and held.accepted:
                # A vehicle through on the early (queue-flush) green is served too.
                served = held.green_s > 0 or self._green(held.grant.axis)
                self._report(
                    held,
                    "served" if served else "cancelled",
                    "vehicle through" if served else "cancelled before the window",
                )
            return
        previous = self._held.get(message.request_id)
        if message.green_to_s <= self.t:
            self._held.pop(message.request_id, None)
            if previous is None or not previous.accepted:
                self._report(_Held(message, False), "rejected", "window already over")
            return
        if previous is not None and previous.accepted:
            # A re-timed request keeps its place: dropping a grant mid-service would switch the
            # green away in front of the vehicle, the one thing priority must never do.
            previous.grant = message
            return
        earliest = self.earliest_green(message.axis)
        # The arbiter has already lined the window up after any conflicting grant; judge
        # against that window, allowing the controller's whole-second stepping.
        if earliest <= math.ceil(max(message.eta_s, message.green_from_s)):
            self._held[message.request_id] = _Held(message, True)
            return
        self._held[message.request_id] = _Held(message, False)
        if previous is None:
            self._report(
                self._held[message.request_id],
                "rejected",
                f"earliest safe green at +{earliest - self.t:.0f} s, after the ETA "
                f"(+{message.eta_s - self.t:.0f} s)",
            )

    def advance(self, now_s: float) -> None:
        """Run the controller up to second ``floor(now_s)`` (no-op for the past)."""
        target = math.floor(now_s)
        while self.t < target:
            jump_to = self._jump_limit(target)
            if jump_to > self.t:
                self._sync(jump_to)
            else:
                self._step()

    def view(self) -> SignalView:
        """The signal as shown during the current second."""
        return SignalView(
            intersection_id=self.timing.intersection_id,
            at_s=float(self.t),
            green_axis=None if self.clear else self.axis,
            queue_ns=self.queue[Axis.NS],
            queue_ew=self.queue[Axis.EW],
            headway_s=self.timing.headway_s,
            startup_lost_s=self.timing.startup_lost_s,
        )

    def data_to_send(self) -> list[PriorityReport]:
        """Reports produced since the last call (and forget them)."""
        out, self._outbox = self._outbox, []
        return out

    def earliest_green(self, axis: Axis) -> float:
        """Earliest second ``axis`` can be green without cutting a clearance or a minimum green."""
        tm = self.timing
        if not self.clear and self.axis is axis:
            return float(self.t)
        if self.clear and self.axis is not axis:
            earliest = float(self.end)
        elif not self.clear:
            earliest = float(max(self.t, self.start + self._cur_min) + tm.clearance_s)
        else:
            earliest = float(self.end + self._next_min + tm.clearance_s)
        for held in self._held.values():
            g = held.grant
            if held.accepted and g.axis is not axis and g.green_to_s > self.t:
                earliest = max(earliest, math.ceil(g.green_to_s) + tm.clearance_s)
        return earliest

    def finish(self) -> None:
        """Close an open perturbation episode (call once at the end of a drill)."""
        if self._episode is not None:
            self._close_episode()

    # ------------------------------------------------------------------------------ internals

    def _flow(self, axis: Axis, t: float) -> float:
        return self._peak_flow[axis] * self.flow_factor(t)

    def _plan_at(self, t: int) -> tuple[Axis, bool, int, int]:
        """:meth:`SignalTiming.plan_at` with the phase bounds precomputed."""
        tm = self.timing
        base = tm.offset_s + math.floor((t - tm.offset_s) / tm.cycle_s) * tm.cycle_s
        tau = t - base
        for axis, clear, lo, hi in self._phases:
            if tau < hi:
                return axis, clear, base + lo, base + hi
        last = self._phases[-1]
        return last[0], True, base + last[2], base + tm.cycle_s  # float edge

    def _sync(self, t: int) -> None:
        """Put the controller in its plan's state at ``t`` with steady-state queues."""
        tm = self.timing
        self.t = t
        self.axis, self.clear, self.start, self.nominal_end = self._plan_at(t)
        self.end = self.nominal_end
        self._cur_min = self._next_min = tm.min_green_s
        self._over_cap = []
        for axis in AXES:
            self.queue[axis] = self.shadow[axis] = tm.queue_at(axis, t, self._flow(axis, t))

    def _jump_limit(self, target: int) -> int:
        """How far the controller may jump analytically (``self.t`` when it must step)."""
        if self._episode is not None:
            return self.t
        if not self._held:
            return target if target > self.t + 1 else self.t
        horizon = 2 * self.timing.cycle_s + self.max_lead_s
        limit = target
        for held in self._held.values():
            if held.accepted:
                limit = min(limit, math.floor(held.grant.green_from_s - horizon))
        return limit if limit > self.t + 1 else self.t

    def _lead(self, held: _Held) -> float:
        # The queue standing now (plus a second of arrivals) must be gone when the vehicle
        # reaches the stop line, so the green starts that many headways ahead of the window.
        g = held.grant
        queued = self.queue[g.axis] + (0.0 if self._green(g.axis) else self._flow(g.axis, self.t))
        flush = self.timing.startup_lost_s + queued * self.timing.headway_s
        return min(self.max_lead_s, max(self.min_lead_s, flush))

    def _green(self, axis: Axis) -> bool:
        return not self.clear and self.axis is axis

    def _target_start(self, held: _Held) -> float:
        """When the green for a grant should start: ahead of the window, after rival windows."""
        g = held.grant
        start = g.green_from_s - self._lead(held)
        for other in self._held.values():
            o = other.grant
            if other.accepted and o.axis is not g.axis and o.green_to_s <= g.green_from_s:
                start = max(start, o.green_to_s + self.timing.clearance_s)
        return start

    def _sync_end(self, axis: Axis, start: int) -> int:
        """End of a green starting at ``start``: back onto the plan as soon as allowed."""
        tm = self.timing
        least = self._cur_min  # the minimum green, or the recovery green after priority
        planned = tm.next_green_end(axis, start + least)
        if planned <= start + max(least, 1.5 * tm.green_s(axis)):
            return planned
        return start + least  # running behind the plan: catch up with short greens

    def _effective_end(self) -> int:
        """End of the current green after holds (own axis) and early cuts (cross axis).

        Also notes (``_over_cap``) the grants whose hold the maximum extension cuts short.
        """
        if self._over_cap:
            self._over_cap = []
        live = [
            (rid, h) for rid, h in self._held.items() if h.accepted and h.grant.green_to_s > self.t
        ]
        if not live:
            return self.nominal_end  # nothing to hold for or cut for
        tm = self.timing
        end = self.nominal_end
        cap = self.nominal_end + self.max_extension_s
        cross = other_axis(self.axis)
        for rid, held in live:
            g = held.grant
            if g.axis is self.axis:
                # Hold when the cross street could not get a full minimum green in between,
                # but never past the maximum extension.
                gap_end = end + 2 * tm.clearance_s + self.recovery_green_s
                if self._target_start(held) <= gap_end:
                    want = math.ceil(g.green_to_s)
                    if want > cap:
                        self._over_cap.append(rid)
                    end = max(end, min(want, cap))
        # An early cut for the cross street never undoes a hold (the arbiter put the rival
        # windows a clearance apart) and never goes below the minimum green.
        floor_end = max(end, self.start + self._cur_min, self.t)
        if end == self.nominal_end:
            floor_end = max(self.start + self._cur_min, self.t)
        for _, held in live:
            g = held.grant
            if g.axis is cross:
                cut = math.floor(self._target_start(held) - tm.clearance_s)
                if cut < end:
                    end = max(cut, floor_end)
        return end

    def _transition(self) -> None:
        tm = self.timing
        if not self.clear:
            self.end = self._effective_end()
            if self.t >= self.end:
                abandoned = self._abandon_over_cap() if self._over_cap else False
                extended = abandoned or self.end > self.nominal_end
                self._next_min = self.recovery_green_s if extended else tm.min_green_s
                self.clear, self.start, self.end = True, self.t, self.t + tm.clearance_s
        elif self.t >= self.end:
            self.axis = other_axis(self.axis)
            self.clear, self.start = False, self.t
            self._cur_min, self._next_min = self._next_min, tm.min_green_s
            self.nominal_end = self._sync_end(self.axis, self.t)
            self.end = self._effective_end()

    def _abandon_over_cap(self) -> bool:
        """The green ends at its maximum extension: reject the grants it leaves unserved.

        A grant survives only if the next green of its axis (after this clearance, the cross
        street's recovery green and its clearance) still comes by its ETA.
        """
        tm = self.timing
        next_green = self.t + 2 * tm.clearance_s + self.recovery_green_s
        abandoned = False
        for rid in self._over_cap:
            held = self._held.get(rid)
            if held is None or not held.accepted or held.grant.green_to_s <= self.t:
                continue
            if next_green <= held.grant.eta_s:
                continue
            del self._held[rid]
            abandoned = True
            self._report(
                held,
                "rejected",
                f"max extension reached: green held {self.max_extension_s} s past its planned "
                f"end, window still open to +{held.grant.green_to_s - self.t:.0f} s",
            )
        self._over_cap = []
        return abandoned

    def _step(self) -> None:
        """Advance one second: phase, grants, queues, episode."""
        # The state describes second t: account for it, then move to t + 1 and switch phases.
        # (The hot loop of a drill: the arithmetic is exactly the plain one, in the same order,
        # with the plan's constants precomputed and the flow factor asked once per second.)
        t = self.t
        clear, current = self.clear, self.axis
        held_all = self._held
        for held in held_all.values():
            g = held.grant
            if held.accepted and g.green_from_s <= t < g.green_to_s:
                if not clear and current is g.axis:
                    held.green_s += 1
                else:
                    held.missed_s += 1
        plan_axis, plan_clear, _, plan_end = self._plan_at(t)
        discharge = self._discharge
        factor = self.flow_factor(t)
        queue, shadow, peak = self.queue, self.shadow, self._peak_flow
        for axis in AXES:
            q = peak[axis] * factor
            x = queue[axis] + q - (discharge if not clear and current is axis else 0.0)
            queue[axis] = x if x > 0.0 else 0.0  # max(0.0, x)
            y = shadow[axis] + q - (discharge if not plan_clear and plan_axis is axis else 0.0)
            shadow[axis] = y if y > 0.0 else 0.0
        in_sync = (
            plan_axis is current
            and plan_clear == clear
            and plan_end == self.end
            and abs(queue[Axis.NS] - shadow[Axis.NS]) < 1e-9
            and abs(queue[Axis.EW] - shadow[Axis.EW]) < 1e-9
        )
        ep = self._episode
        if not in_sync or ep is not None:
            prioritised = {h.grant.axis for h in held_all.values() if h.accepted}
            if not in_sync or prioritised:
                if ep is None:
                    ep = self._episode = _Episode(start=t)
                ep.prioritised |= prioritised
                for axis in AXES:
                    ep.actual[axis] += queue[axis]
                    ep.baseline[axis] += shadow[axis]
                    if not plan_clear and plan_axis is axis and (clear or current is not axis):
                        ep.extra_red[axis] += 1
            else:
                self._close_episode()
        self.t = t + 1
        if held_all:
            for rid in [r for r, h in held_all.items() if h.grant.green_to_s < self.t]:
                held = held_all.pop(rid)
                if held.accepted:
                    self._report(held, "served", "window over")
        self._transition()

    def _close_episode(self) -> None:
        ep = self._episode
        assert ep is not None
        tm = self.timing
        cycles = max(1, math.ceil((self.t - ep.start) / tm.cycle_s))
        self.episodes.append(
            DelayEpisode(
                intersection_id=tm.intersection_id,
                start_s=float(ep.start),
                end_s=float(self.t),
                cycles=cycles,
                prioritised=sorted(ep.prioritised),
                actual_veh_s=dict(ep.actual),
                baseline_veh_s=dict(ep.baseline),
                cycle_delay_veh_s={
                    a: tm.uniform_delay_per_cycle(a, self._flow(a, ep.start)) for a in Axis
                },
                extra_red_s=dict(ep.extra_red),
            )
        )
        self._episode = None

    def _report(
        self, held: _Held, status: Literal["served", "rejected", "cancelled"], reason: str
    ) -> None:
        self._outbox.append(
            PriorityReport(
                request_id=held.grant.request_id,
                intersection_id=self.timing.intersection_id,
                status=status,
                at_s=float(self.t),
                green_s=held.green_s,
                missed_s=held.missed_s,
                reason=reason,
            )
        )
