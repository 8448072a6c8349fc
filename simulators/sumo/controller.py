"""Green-wave priority at one SUMO traffic light: the decisions, with no TraCI in them.

A :class:`LightController` wraps one traffic light's own program (SUMO's ``tlLogic``). It is a
step-able protocol object (python-websockets style): feed it :class:`Grant` / :class:`Cancel`
with :meth:`LightController.receive`, tell it what the light shows with
:meth:`LightController.observe` (once per simulation step), and it returns the
:class:`SetPhaseDuration` commands to apply; its :class:`Report` messages come from
:meth:`LightController.data_to_send`. :mod:`simulators.sumo._traci` applies commands to SUMO.

Priority only ever changes *how long a green phase runs*; the program's order of phases is
never changed, so every change of green goes through the program's own yellow and all-red:

* **Green extension**: the phase that shows green to the vehicle's movement is held through the
  granted window, at most ``max_extension_s`` past its planned end.
* **Early green**: the greens before the vehicle's green are cut short, never below their
  minimum green (``min_green_s``, or ``pedestrian_green_s`` for a phase that shows green to a
  pedestrian crossing), so the vehicle's green comes in time. A phase is never skipped.
* **Clearances** (any phase with yellow, or with no green at all) are never shortened,
  lengthened or skipped: no command is ever given during one.

A grant that cannot be served that way is reported ``rejected`` at once, with the kind of its
reason (:class:`ReasonKind`): no phase gives green to its links; the earliest green reachable
through minimum greens and full clearances comes more than ``late_green_s`` after its ETA (a
green a few seconds late still lets the vehicle through and moves the queue ahead of it; it is
given as early as it is safe); or a conflicting grant of higher importance holds the light over
its window and it cannot start after that one's window and clearance by then either
(with ``queue_conflicts``, off by default, a grant of lower priority is *queued* behind, its
green starting later, rather than rejected, when it can). A grant whose window passed is
reported ``served`` when its movement was green at the ETA or for at least half the window,
else ``rejected``.

**A vehicle that stands** (its re-timed grants show it no nearer for ``stall_s``: stuck in
traffic or at an earlier light) is neither held green for nor given an early green; it blocks no
other grant and is not rejected for lateness (which would be said again at every fix) until it
moves again.

**Compensation.** Green a phase lost to an early cut, and the extra red an extension gave the
other greens, is owed to those phases and paid back once no grant is pending, at most
``compensation_share`` of a phase's own green per cycle, until the light runs its program again.
With ``pay_horizon_cycles`` a grant is pending for that only when its green may start within
that many cycles and its vehicle is not standing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GREEN_CHARS = frozenset("Gg")
CLEARANCE_CHARS = frozenset("yYu")
_EPS = 1e-6


class PhaseKind(StrEnum):
    """What a phase is for priority."""

    GREEN = "green"
    CLEARANCE = "clearance"


class ReasonKind(StrEnum):
    """Why a light rejected a grant (the values are the SUMO drill report's keys)."""

    NO_PHASE = "no phase serves the movement"
    WINDOW_OVER = "window over on arrival"
    CONFLICT = "conflicting grant of higher importance"
    BUMPED = "bumped by a grant of higher importance"
    NO_SAFE_GREEN = "no safe green by the ETA"
    EXTENSION_CAP = "extension cap reached"
    GREEN_MISSED = "green missed the ETA"


def phase_kind(state: str) -> PhaseKind:
    """A phase with any yellow, or with no green at all (all-red), is a clearance."""
    if any(c in CLEARANCE_CHARS for c in state) or not any(c in GREEN_CHARS for c in state):
        return PhaseKind.CLEARANCE
    return PhaseKind.GREEN


class ControllerConfig(BaseModel):
    """Bounds of priority at one light."""

    model_config = ConfigDict(frozen=True)

    min_green_s: float = Field(default=10.0, ge=0, description="least green of a phase cut short")
    pedestrian_green_s: float = Field(
        default=15.0,
        ge=0,
        description="least green of a phase showing green to a pedestrian crossing (walk + "
        "crossing clearance)",
    )
    max_extension_s: float = Field(
        default=30.0, ge=0, description="most a green is held past its planned end"
    )
    min_lead_s: float = Field(
        default=3.0, ge=0, description="green starts at least this long before the window"
    )
    max_lead_s: float = Field(
        default=15.0, ge=0, description="at most this long before, to clear the queue ahead"
    )
    headway_s: float = Field(default=2.0, gt=0, description="discharge headway per queued car")
    startup_lost_s: float = Field(default=2.0, ge=0)
    compensation_share: float = Field(
        default=1.0,
        ge=0,
        description="most a phase's green is lengthened per cycle, as a share (SUMO, central "
        "Shanghai: 0.5 left +12% network delay that 1.0 pays back; see the SUMO drill)",
    )
    max_debt_cycles: float = Field(
        default=2.0, ge=0, description="debt per phase is capped at this many of its greens"
    )
    pay_horizon_cycles: float = Field(
        default=math.inf,
        ge=0,
        description="compensation waits only for grants whose green may start within this many "
        "of the light's cycles, and not for a vehicle that stands; inf: for any grant held "
        "(a far or standing vehicle's grant then keeps the cross street owed for minutes)",
    )
    late_green_s: float = Field(
        default=5.0,
        ge=0,
        description="a green that can start no sooner than this long after the ETA (minimum "
        "greens and clearances first, or a conflicting grant's window) is still given, as "
        "early as it is safe, rather than rejected; 0: rejected",
    )
    # Off until a gain is shown: in SUMO (moderate, seed 11, 24 vehicles) on and off gave the
    # same travel, cross and network figures (-9.8% / +11.8% / +2.4%); only the rejections'
    # kinds moved (88 conflicts off, 66 on).
    queue_conflicts: bool = Field(
        default=False,
        description="a grant that conflicts with one of higher priority starts after that "
        "one's window and clearance when it still can by its ETA (+ late_green_s), rather than "
        "being rejected",
    )
    stall_s: float = Field(
        default=8.0,
        ge=0,
        description="a vehicle whose re-timed grants show it no nearer for this long (stuck in "
        "traffic, or at a light before this one) is stalled: no green is held or brought "
        "forward for it, it blocks no other grant and is not rejected for lateness, until its "
        "grants show it coming again (or stop coming: its ETA holds); 0: off",
    )
    served_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="served when green at the ETA or for this share of the window",
    )


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One phase of a program."""

    state: str
    duration_s: float
    min_s: float
    kind: PhaseKind

    def shows_green(self, link: int) -> bool:
        return 0 <= link < len(self.state) and self.state[link] in GREEN_CHARS


@dataclass(frozen=True, slots=True)
class Program:
    """A light's fixed-time program, as priority sees it."""

    tls_id: str
    phases: tuple[PhaseSpec, ...]

    @classmethod
    def from_phases(
        cls,
        tls_id: str,
        phases: Sequence[tuple[str, float, float]],
        *,
        config: ControllerConfig,
        pedestrian_links: Iterable[int] = (),
    ) -> Program:
        """Build from ``(state, duration_s, min_dur_s)`` per phase (SUMO's ``Phase``).

        A phase's minimum green is ``config.min_green_s`` (``pedestrian_green_s`` when it shows
        green to a pedestrian link), or the program's own ``minDur`` where it sets one below the
        duration (an actuated program); never more than the phase's duration.

        Raises:
            ValueError: no phase, or a phase of zero or negative duration.
        """
        if not phases:
            raise ValueError(f"traffic light {tls_id} has no phase")
        peds = frozenset(pedestrian_links)
        out: list[PhaseSpec] = []
        for state, duration, min_dur in phases:
            if duration <= 0:
                raise ValueError(f"traffic light {tls_id}: phase {state!r} lasts {duration} s")
            kind = phase_kind(state)
            if kind is PhaseKind.CLEARANCE:
                least = duration
            else:
                least = config.min_green_s
                if 0 < min_dur < duration:
                    least = max(least, min_dur)
                if any(0 <= p < len(state) and state[p] in GREEN_CHARS for p in peds):
                    least = max(least, config.pedestrian_green_s)
                least = min(least, duration)
            out.append(PhaseSpec(state, float(duration), float(least), kind))
        return cls(tls_id, tuple(out))

    @property
    def cycle_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def serving(self, links: Iterable[int]) -> frozenset[int]:
        """Green phases that show green to all of ``links`` (else to the most of them)."""
        wanted = sorted(set(links))
        if not wanted:
            return frozenset()
        score = [
            sum(p.shows_green(k) for k in wanted) if p.kind is PhaseKind.GREEN else 0
            for p in self.phases
        ]
        best = max(score)
        if best == 0:
            return frozenset()
        return frozenset(i for i, s in enumerate(score) if s == best)

    def next_index(self, index: int) -> int:
        return (index + 1) % len(self.phases)


# ---------------------------------------------------------------------------------- messages


class Grant(BaseModel):
    """Give green to ``links`` from ``green_from_s`` to ``green_to_s`` (SUMO seconds).

    Sending a grant again with the same ``request_id`` replaces it (a re-timed request).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["grant"] = "grant"
    request_id: str
    intersection_id: int
    links: tuple[int, ...]
    green_from_s: float
    green_to_s: float
    eta_s: float
    importance: int = Field(default=0, ge=0, le=14)


class Cancel(BaseModel):
    """Drop a grant (the vehicle passed, was re-routed, or the service withdrew it)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["cancel"] = "cancel"
    request_id: str


class Report(BaseModel):
    """What the light did with a grant (its answer to the service)."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    intersection_id: int
    tls_id: str
    status: Literal["served", "rejected", "cancelled"]
    at_s: float
    green_s: float = Field(default=0.0, description="window seconds the movement was green")
    window_s: float = 0.0
    reason: str = ""
    kind: ReasonKind | None = Field(
        default=None, description="why it was rejected, in kinds (None: not rejected)"
    )


class SetPhaseDuration(BaseModel):
    """Let the current phase ``phase_index`` of ``tls_id`` end ``remaining_s`` from now."""

    model_config = ConfigDict(frozen=True)

    tls_id: str
    phase_index: int
    remaining_s: float = Field(ge=0)


@dataclass(slots=True)
class _Held:
    grant: Grant  # as placed: its green may start later than asked (after a conflicting one)
    targets: frozenset[int]
    order: int
    asked: Grant
    best_left_s: float = math.inf  # the least time to the ETA a grant of it has shown
    best_at_s: float = 0.0  # when
    last_rx_s: float = 0.0  # when its last grant came
    green_s: float = 0.0
    eta_seen: bool = False
    green_at_eta: bool = False
    capped: bool = False

    def seen(self, grant: Grant, now_s: float) -> None:
        """A grant of it came at ``now_s``: is the vehicle nearer than before?"""
        left = grant.eta_s - now_s
        if left < self.best_left_s - 1.0:
            self.best_left_s, self.best_at_s = left, now_s
        self.last_rx_s = now_s

    def stalled(self, now_s: float, stall_s: float) -> bool:
        """Grants kept coming for ``stall_s`` without the vehicle getting nearer."""
        return (
            stall_s > 0
            and self.last_rx_s - self.best_at_s >= stall_s
            and now_s - self.last_rx_s < stall_s
        )

    @property
    def rank(self) -> tuple[int, int]:
        """Priority at the light: higher importance, then the earlier received."""
        return (self.grant.importance, -self.order)


@dataclass(slots=True)
class _Run:
    """The current phase's run."""

    index: int
    start_s: float
    planned_s: float  # its planned length: the program's, plus any compensation paid
    end_s: float | None = None  # the end last commanded (None: the program's own)
    held_for: set[str] = field(default_factory=set)  # every request this run was held for
    hold_targets: set[int] = field(default_factory=set)
    cut: bool = False


class LightController:
    """Priority at one traffic light (see the module docstring).

    Args:
        program: the light's program.
        config: bounds.
        now_s: simulation time at creation.
        phase_index: the phase shown now.
        spent_s: how long it has been shown.
    """

    def __init__(
        self,
        program: Program,
        *,
        config: ControllerConfig | None = None,
        now_s: float,
        phase_index: int,
        spent_s: float = 0.0,
    ) -> None:
        self.program = program
        self.cfg = config or ControllerConfig()
        self._check_index(phase_index)
        nominal = program.phases[phase_index].duration_s
        self.run = _Run(phase_index, now_s - spent_s, nominal)
        self.now_s = now_s
        self.debt = [0.0] * len(program.phases)
        self.held: dict[str, _Held] = {}
        self.out_of_order = 0  # transitions not in program order (someone else moved the light)
        self._outbox: list[Report] = []
        self._order = 0

    # -- inputs ------------------------------------------------------------------------------

    def receive(self, message: Grant | Cancel, now_s: float) -> None:
        """Take a grant or a cancel at simulation time ``now_s``.

        A grant sent again under the same request id replaces the one held (rejected, the old
        one is dropped too: the service's newer word stands).
        """
        if isinstance(message, Cancel):
            held = self.held.pop(message.request_id, None)
            if held is not None:
                self._report(held, "cancelled", now_s, "cancelled by the service")
            return
        grant = message
        tls = self.program.tls_id
        targets = self.program.serving(grant.links)
        previous = self.held.pop(grant.request_id, None)
        if not targets:
            self._reject_new(grant, now_s, f"no phase of {tls} gives green to links "
                             f"{list(grant.links)}", ReasonKind.NO_PHASE)  # fmt: skip
            return
        if grant.green_to_s <= now_s:
            self._reject_new(grant, now_s, "window already over", ReasonKind.WINDOW_OVER)
            return
        order = previous.order if previous is not None else self._order
        rank = (grant.importance, -order)
        stall_s = self.cfg.stall_s
        stalled = False
        if previous is not None:
            previous.seen(grant, now_s)
            stalled = previous.stalled(now_s, stall_s)
        winners = [
            h
            for h in self.held.values()
            if not h.targets & targets and h.rank >= rank and not h.stalled(now_s, stall_s)
        ]
        start, blocker = self._place(grant, targets, winners)
        if start is None:
            who = (
                f"{blocker.grant.request_id} (importance {blocker.grant.importance})"
                if blocker is not None
                else "grants of higher priority"
            )
            self._reject_new(grant, now_s, f"conflicts at {tls} with {who}", ReasonKind.CONFLICT)
            return
        serving_now = self.run.index in targets and self._is_green(self.run.index)
        if not serving_now:
            earliest = self.earliest_green(targets, now_s)
            if not stalled and (
                earliest > grant.eta_s + self.cfg.late_green_s + _EPS
                or earliest >= grant.green_to_s - _EPS
            ):
                self._reject_new(
                    grant,
                    now_s,
                    f"earliest safe green at {tls} is {earliest - now_s:.0f} s away, after the "
                    f"ETA ({grant.eta_s - now_s:.0f} s)",
                    ReasonKind.NO_SAFE_GREEN,
                )
                return
        placed = grant if start <= grant.green_from_s else grant.model_copy(
            update={"green_from_s": start}
        )  # fmt: skip
        if previous is not None:
            previous.grant, previous.asked, previous.targets = placed, grant, targets
            previous.capped = False
            mine = previous
        else:
            mine = _Held(placed, targets, order, asked=grant)
            mine.seen(grant, now_s)
            self._order += 1
        self.held[grant.request_id] = mine
        # Grants of lower priority that this one now overlaps start after it, or are bumped.
        for rid, other in sorted(self.held.items(), key=lambda kv: kv[1].rank, reverse=True):
            if rid == grant.request_id or other.targets & targets or other.rank >= rank:
                continue
            if other.stalled(now_s, stall_s):
                continue  # its window is the vehicle's guess while it stands: it waits
            above = [h for h in self.held.values() if not h.targets & other.targets
                     and h.rank > other.rank and not h.stalled(now_s, stall_s)]  # fmt: skip
            at, _ = self._place(other.asked, other.targets, above)
            if at is not None:
                other.grant = other.asked.model_copy(
                    update={"green_from_s": max(at, other.asked.green_from_s)}
                )
                continue
            del self.held[rid]
            self._report(
                other,
                "rejected",
                now_s,
                f"bumped at {tls} by {grant.request_id} (importance {grant.importance})",
                ReasonKind.BUMPED,
            )

    def _place(
        self, grant: Grant, targets: frozenset[int], above: Sequence[_Held]
    ) -> tuple[float | None, _Held | None]:
        """Where ``grant``'s green can start clear of the windows of ``above`` (conflicting
        grants of higher priority): as asked, or after them and their clearance when
        ``queue_conflicts`` allows and the vehicle need not wait past ``late_green_s`` after
        its ETA. Returns ``(start, None)``, or ``(None, the blocking grant)``."""
        start = grant.green_from_s
        for _ in range(len(above) + 1):
            hit: _Held | None = None
            for other in sorted(above, key=lambda h: h.grant.green_from_s):
                gap = self._clearance_after(other.targets)
                if start < other.grant.green_to_s + gap and (
                    other.grant.green_from_s < grant.green_to_s + gap
                ):
                    hit = other
                    break
            if hit is None:
                return start, None
            if not self.cfg.queue_conflicts:
                return None, hit
            start = hit.grant.green_to_s + self._clearance_after(hit.targets)
            if start > grant.eta_s + self.cfg.late_green_s + _EPS or (
                start >= grant.green_to_s - _EPS
            ):
                return None, hit
        return None, None  # not reached: each pass moves the start past one more window

    def observe(
        self,
        now_s: float,
        phase_index: int,
        spent_s: float,
        *,
        queues: Mapping[str, float] | None = None,
    ) -> list[SetPhaseDuration]:
        """The light shows ``phase_index`` since ``spent_s`` at ``now_s``: decide its end.

        Args:
            now_s: simulation time.
            phase_index: the phase shown.
            spent_s: how long it has been shown.
            queues: request id -> vehicles queued on its approach (for the lead); absent: none.

        Returns:
            The commands to apply now (at most one, only during a green phase).
        """
        self._check_index(phase_index)
        dt = max(0.0, now_s - self.now_s)
        start = now_s - spent_s
        if phase_index != self.run.index or abs(start - self.run.start_s) > 0.5:
            # Only a light watched every step can tell a jump from phases it did not see.
            watched = dt <= self.program.phases[self.run.index].duration_s
            self._close_run(start)
            self._open_run(phase_index, start, now_s, watched=watched)
        self.now_s = now_s
        self._account(now_s, dt)
        return self._decide(now_s, queues or {})

    def data_to_send(self) -> list[Report]:
        """Reports produced since the last call (``cancelled`` ones are for the log only)."""
        out, self._outbox = self._outbox, []
        return out

    # -- what the program allows ---------------------------------------------------------------

    def earliest_green(self, targets: frozenset[int], now_s: float) -> float:
        """Earliest time a phase of ``targets`` can show, through minimum greens and clearances."""
        run = self.run
        phases = self.program.phases
        if run.index in targets and self._is_green(run.index):
            return now_s
        current = phases[run.index]
        if current.kind is PhaseKind.CLEARANCE:
            t = run.start_s + (run.end_s - run.start_s if run.end_s else run.planned_s)
        else:
            t = max(now_s, run.start_s + current.min_s)
        k = self.program.next_index(run.index)
        for _ in range(len(phases)):
            if k in targets:
                return max(t, now_s)
            p = phases[k]
            t += p.duration_s if p.kind is PhaseKind.CLEARANCE else p.min_s
            k = self.program.next_index(k)
        return math.inf

    def _time_to_target(self, index: int, targets: frozenset[int], *, minimal: bool) -> float:
        """From the end of phase ``index`` to the start of the next phase of ``targets``."""
        phases = self.program.phases
        total = 0.0
        k = self.program.next_index(index)
        for _ in range(len(phases)):
            if k in targets:
                return total
            p = phases[k]
            total += p.min_s if minimal and p.kind is PhaseKind.GREEN else p.duration_s
            k = self.program.next_index(k)
        return math.inf

    def _clearance_after(self, targets: frozenset[int]) -> float:
        """The clearance that follows a green of ``targets`` (yellow + all-red of the program)."""
        phases = self.program.phases
        k = min(targets)
        total = 0.0
        k = self.program.next_index(k)
        for _ in range(len(phases)):
            if phases[k].kind is PhaseKind.GREEN:
                break
            total += phases[k].duration_s
            k = self.program.next_index(k)
        return total

    def _is_green(self, index: int) -> bool:
        return self.program.phases[index].kind is PhaseKind.GREEN

    def _lead(self, held: _Held, queues: Mapping[str, float]) -> float:
        cfg = self.cfg
        queued = float(queues.get(held.grant.request_id, 0.0))
        flush = cfg.startup_lost_s + queued * cfg.headway_s
        return min(cfg.max_lead_s, max(cfg.min_lead_s, flush))

    # -- runs, accounting, decisions -----------------------------------------------------------

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.program.phases):
            raise ValueError(f"{self.program.tls_id} has no phase {index}")

    def _close_run(self, end_s: float) -> None:
        run = self.run
        phases = self.program.phases
        spec = phases[run.index]
        actual = end_s - run.start_s
        if spec.kind is PhaseKind.GREEN:
            cap = spec.duration_s * self.cfg.max_debt_cycles
            if run.cut and actual < run.planned_s - 0.5:
                self.debt[run.index] = min(cap, self.debt[run.index] + run.planned_s - actual)
            extra = actual - max(run.planned_s, spec.duration_s)
            if run.held_for and extra > 0.5:
                # The other greens waited that much longer: owed to them, by their share.
                served = run.hold_targets | {run.index}
                others = [
                    k for k, p in enumerate(phases) if p.kind is PhaseKind.GREEN and k not in served
                ]
                total = sum(phases[k].duration_s for k in others)
                for k in others:
                    share = extra * phases[k].duration_s / total if total > 0 else 0.0
                    self.debt[k] = min(phases[k].duration_s * self.cfg.max_debt_cycles,
                                       self.debt[k] + share)  # fmt: skip
            # A hold the cap ended while its window is still open, and whose movement cannot
            # get green again by its ETA, is given up.
            for rid in sorted(run.held_for):
                held = self.held.get(rid)
                if held is None or not held.capped or held.grant.green_to_s <= end_s:
                    continue
                del self.held[rid]
                self._report(
                    held,
                    "rejected",
                    end_s,
                    f"max extension reached: green held {self.cfg.max_extension_s:.0f} s past "
                    f"its planned end, window open {held.grant.green_to_s - end_s:.0f} s more",
                    ReasonKind.EXTENSION_CAP,
                )

    def _open_run(self, index: int, start_s: float, now_s: float, *, watched: bool) -> None:
        if watched and index != self.program.next_index(self.run.index):
            self.out_of_order += 1
        spec = self.program.phases[index]
        planned = spec.duration_s
        pending = any(self._defers_pay(h, now_s) for h in self.held.values())
        if spec.kind is PhaseKind.GREEN and not pending and self.debt[index] > 0.0:
            pay = min(self.debt[index], self.cfg.compensation_share * spec.duration_s)
            pay = float(math.floor(pay))  # whole seconds: SUMO runs on whole steps here
            if pay > 0:
                planned += pay
                self.debt[index] -= pay
        self.run = _Run(index, start_s, planned)

    def _defers_pay(self, held: _Held, now_s: float) -> bool:
        """Compensation waits for this grant (its green may be needed before a paid phase ends)."""
        g = held.grant
        if g.green_to_s <= now_s:
            return False
        horizon = self.cfg.pay_horizon_cycles
        if math.isinf(horizon):
            return True
        if held.stalled(now_s, self.cfg.stall_s):
            return False
        return g.green_from_s - self.cfg.max_lead_s <= now_s + horizon * self.program.cycle_s

    def _account(self, now_s: float, dt: float) -> None:
        index = self.run.index
        green = self._is_green(index)
        for rid in list(self.held):
            held = self.held[rid]
            g = held.grant
            on = green and index in held.targets
            if dt > 0 and on:
                lo, hi = max(g.green_from_s, now_s - dt), min(g.green_to_s, now_s)
                if hi > lo:
                    held.green_s += hi - lo
            if not held.eta_seen and now_s >= g.eta_s:
                held.eta_seen = True
                held.green_at_eta = on
            if now_s >= g.green_to_s:
                del self.held[rid]
                window = g.green_to_s - g.green_from_s
                enough = held.green_s >= self.cfg.served_share * window - _EPS
                if held.green_at_eta or enough:
                    self._report(held, "served", now_s, "window over")
                else:
                    self._report(
                        held,
                        "rejected",
                        now_s,
                        f"movement green {held.green_s:.0f} s of its {window:.0f} s window, "
                        "not at the ETA",
                        ReasonKind.GREEN_MISSED,
                    )

    def _decide(self, now_s: float, queues: Mapping[str, float]) -> list[SetPhaseDuration]:
        run = self.run
        spec = self.program.phases[run.index]
        if spec.kind is not PhaseKind.GREEN:
            return []  # clearances are never touched
        planned_end = run.start_s + run.planned_s
        cap_end = run.start_s + max(run.planned_s, spec.duration_s) + self.cfg.max_extension_s
        floor_end = run.start_s + min(spec.min_s, run.planned_s)
        hold_end: float | None = None
        cut_end: float | None = None
        keep_end = floor_end  # no cut ends a green some window is using
        for rid, held in self.held.items():
            g = held.grant
            if g.green_to_s <= now_s:
                continue
            if held.stalled(now_s, self.cfg.stall_s):
                # Not for a vehicle that stands. Measured in SUMO (moderate, seed 11): still
                # bringing its green forward when vehicles queue on its approach gave the same
                # vehicle time (-9.9%) for more cross delay (+16.4% against +11.8%).
                continue
            want = g.green_from_s - self._lead(held, queues)
            if run.index in held.targets:
                if want < planned_end:
                    keep_end = max(keep_end, min(g.green_to_s, planned_end))
                if g.green_to_s <= planned_end:
                    continue  # the planned green covers the window
                # Hold unless the movement's next green, after minimum greens, still comes in
                # time for the window.
                back = planned_end + self._time_to_target(run.index, held.targets, minimal=True)
                if want >= planned_end and back <= want:
                    continue
                end = min(g.green_to_s, cap_end)
                held.capped = g.green_to_s > cap_end + _EPS
                run.held_for.add(rid)
                run.hold_targets |= held.targets
                hold_end = end if hold_end is None else max(hold_end, end)
            else:
                between = self._time_to_target(run.index, held.targets, minimal=False)
                if planned_end + between <= want:
                    continue  # its green comes in time without help
                end = max(want - between, floor_end)
                cut_end = end if cut_end is None else min(cut_end, end)
        if hold_end is not None:
            desired = max(planned_end, hold_end)
        elif cut_end is not None and max(cut_end, keep_end) < planned_end:
            desired = max(cut_end, keep_end)
            run.cut = True
        else:
            desired = planned_end
        desired = max(desired, now_s)
        current = run.end_s if run.end_s is not None else run.start_s + spec.duration_s
        if abs(desired - current) < 0.5:
            return []
        run.end_s = desired
        return [
            SetPhaseDuration(
                tls_id=self.program.tls_id,
                phase_index=run.index,
                remaining_s=round(desired - now_s, 3),
            )
        ]

    def _reject_new(self, grant: Grant, now_s: float, reason: str, kind: ReasonKind) -> None:
        self._outbox.append(
            Report(
                request_id=grant.request_id,
                intersection_id=grant.intersection_id,
                tls_id=self.program.tls_id,
                status="rejected",
                at_s=now_s,
                window_s=max(0.0, grant.green_to_s - grant.green_from_s),
                reason=reason,
                kind=kind,
            )
        )

    def _report(
        self,
        held: _Held,
        status: Literal["served", "rejected", "cancelled"],
        at_s: float,
        reason: str,
        kind: ReasonKind | None = None,
    ) -> None:
        g = held.grant
        self._outbox.append(
            Report(
                request_id=g.request_id,
                intersection_id=g.intersection_id,
                tls_id=self.program.tls_id,
                status=status,
                at_s=at_s,
                green_s=round(held.green_s, 3),
                window_s=round(g.green_to_s - g.green_from_s, 3),
                reason=reason,
                kind=kind,
            )
        )

    @property
    def on_program(self) -> bool:
        """The light runs its program's own timing and owes no green (grants may be held, for
        windows its program serves or that are still to come)."""
        return (
            not any(d >= 1.0 for d in self.debt)
            and self.run.end_s is None
            and abs(self.run.planned_s - self.program.phases[self.run.index].duration_s) < _EPS
        )

    @property
    def idle(self) -> bool:
        """Nothing held, nothing owed, the program's own timing: no need to observe it."""
        return not self.held and self.on_program
