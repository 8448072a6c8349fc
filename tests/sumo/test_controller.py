"""The pure light controller: tables, and random grants against a stand-in for SUMO's light.

``Light`` runs a program the way SUMO does (phases in order, ``setPhaseDuration`` moves the
current phase's end, 1 s steps), so these tests need no SUMO; the SUMO tests repeat the key
cases against the real simulator.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.sumo.controller import (
    Cancel,
    ControllerConfig,
    Grant,
    LightController,
    PhaseKind,
    Program,
    ReasonKind,
    SetPhaseDuration,
    phase_kind,
)

# A four-phase crossing: NS through (links 0,1), NS left (2), EW through (3,4), EW left (5),
# each green followed by 3 s yellow and 2 s all-red; cycle 120 s.
PHASES = [
    ("GGrrrr", 30.0, 30.0), ("yyrrrr", 3.0, 3.0), ("rrrrrr", 2.0, 2.0),
    ("rrGrrr", 15.0, 15.0), ("rryrrr", 3.0, 3.0), ("rrrrrr", 2.0, 2.0),
    ("rrrGGr", 40.0, 40.0), ("rrryyr", 3.0, 3.0), ("rrrrrr", 2.0, 2.0),
    ("rrrrrG", 15.0, 15.0), ("rrrrry", 3.0, 3.0), ("rrrrrr", 2.0, 2.0),
]  # fmt: skip
CFG = ControllerConfig()


def program(peds: tuple[int, ...] = ()) -> Program:
    return Program.from_phases("J1", PHASES, config=CFG, pedestrian_links=peds)


@dataclass
class Light:
    """SUMO's light in miniature: phase ``index`` from ``start`` until ``end``."""

    prog: Program
    t: float = 0.0
    index: int = 0
    start: float = 0.0
    end: float = 30.0
    runs: list[tuple[int, float]] = field(default_factory=list)  # (phase, length)

    def apply(self, cmd: SetPhaseDuration) -> None:
        assert cmd.phase_index == self.index
        assert self.prog.phases[self.index].kind is PhaseKind.GREEN, "clearance touched"
        self.end = self.t + cmd.remaining_s

    def step(self) -> None:
        self.t += 1.0
        while self.t > self.end + 1e-9:
            self.runs.append((self.index, self.end - self.start))
            self.index = (self.index + 1) % len(self.prog.phases)
            self.start = self.end
            self.end = self.start + self.prog.phases[self.index].duration_s

    def shows(self, links: tuple[int, ...]) -> bool:
        state = self.prog.phases[self.index].state
        return all(state[k] in "Gg" for k in links)


def drive(
    light: Light,
    ctrl: LightController,
    until_s: float,
    seen: list[tuple[float, bool]] | None = None,
    links: tuple[int, ...] = (),
) -> None:
    while light.t < until_s:
        for cmd in ctrl.observe(light.t, light.index, light.t - light.start):
            light.apply(cmd)
        if seen is not None:
            seen.append((light.t, light.shows(links)))
        light.step()


def new(start_s: float = 0.0) -> tuple[Light, LightController]:
    prog = program()
    light = Light(prog)
    ctrl = LightController(prog, config=CFG, now_s=0.0, phase_index=0, spent_s=0.0)
    drive(light, ctrl, start_s)
    return light, ctrl


def grant(rid: str, links: tuple[int, ...], lo: float, hi: float, eta: float | None = None,
          importance: int = 10) -> Grant:  # fmt: skip
    return Grant(request_id=rid, intersection_id=1, links=links, green_from_s=lo, green_to_s=hi,
                 eta_s=lo + 2 if eta is None else eta, importance=importance)  # fmt: skip


def test_phase_kinds_and_minimum_greens() -> None:
    assert phase_kind("GGrr") is PhaseKind.GREEN
    assert phase_kind("GGyy") is PhaseKind.CLEARANCE  # a yellow is a clearance even if some stay
    assert phase_kind("rrrr") is PhaseKind.CLEARANCE
    prog = program(peds=(3,))
    assert [p.kind for p in prog.phases[:3]] == [PhaseKind.GREEN, PhaseKind.CLEARANCE] * 1 + [
        PhaseKind.CLEARANCE
    ]
    assert prog.phases[0].min_s == CFG.min_green_s
    assert prog.phases[6].min_s == CFG.pedestrian_green_s  # shows green to crossing link 3
    assert prog.phases[1].min_s == 3.0  # a clearance runs in full
    assert prog.serving((3, 4)) == {6}
    assert prog.serving((2,)) == {3}
    assert prog.serving((0, 5)) == {0, 9}  # never together: the phases showing the most


def test_early_green_cuts_the_cross_street_no_more_than_needed() -> None:
    light, ctrl = new(start_s=2)
    # EW through (phase 6) normally starts at 30+5+15+5 = 55; the vehicle comes at 40.
    ctrl.receive(grant("r1", (3, 4), 40, 50), 2)
    seen: list[tuple[float, bool]] = []
    drive(light, ctrl, 80, seen, (3, 4))
    assert all(on for t, on in seen if 40 <= t < 50)
    assert all(not on for t, on in seen if t < 34)  # no earlier than the window needs (lead)
    lengths = dict(light.runs[:4])
    # Green from 37 (3 s lead): 18 s less before it, taken from the green running now (the
    # next ones run as planned, so the cut is decided once); the NS left turn keeps its 15 s.
    assert lengths[0] == 12.0 and lengths[3] == 15.0
    assert lengths[0] >= CFG.min_green_s
    assert [p for p, _ in light.runs[:6]] == [0, 1, 2, 3, 4, 5]  # no phase skipped
    assert [r.status for r in ctrl.data_to_send()] == ["served"]


def test_extension_holds_the_green_through_the_window_within_the_cap() -> None:
    light, ctrl = new(start_s=5)
    ctrl.receive(grant("r1", (0, 1), 25, 45), 5)  # NS green planned to end at 30
    drive(light, ctrl, 60)
    assert light.runs[0] == (0, 45.0)
    assert [r.status for r in ctrl.data_to_send()] == ["served"]


def test_extension_stops_at_the_cap_and_rejects_what_it_cannot_serve() -> None:
    light, ctrl = new(start_s=5)
    ctrl.receive(grant("r1", (0, 1), 25, 90, eta=70), 5)
    drive(light, ctrl, 100)
    assert light.runs[0] == (0, 30.0 + CFG.max_extension_s)
    (rep,) = ctrl.data_to_send()
    assert rep.status == "rejected" and "max extension" in rep.reason
    assert rep.kind is ReasonKind.EXTENSION_CAP


def test_a_grant_that_needs_a_cut_below_minimum_green_is_rejected() -> None:
    light, ctrl = new(start_s=1)
    # EW through at +8 s: NS min green (10) + clearance + NS left min + clearance = 30 s.
    ctrl.receive(grant("r1", (3, 4), 8, 20, eta=9), 1)
    (rep,) = ctrl.data_to_send()
    assert rep.status == "rejected" and "earliest safe green" in rep.reason
    assert rep.kind is ReasonKind.NO_SAFE_GREEN
    drive(light, ctrl, 121)
    assert [length for _, length in light.runs[:12]] == [p[1] for p in PHASES]  # untouched


def test_no_command_is_ever_given_in_a_clearance() -> None:
    light, ctrl = new(start_s=31)  # in the yellow after NS
    ctrl.receive(grant("r1", (3, 4), 45, 55), 31)
    assert ctrl.observe(31, 1, 0.0) == []
    drive(light, ctrl, 60)  # Light.apply asserts no clearance is touched


def test_cancel_returns_the_light_to_its_program_after_compensation() -> None:
    light, ctrl = new(start_s=5)
    ctrl.receive(grant("r1", (0, 1), 25, 55), 5)
    drive(light, ctrl, 40)
    ctrl.receive(Cancel(request_id="r1"), 40)
    drive(light, ctrl, 40 + 4 * 120)
    assert light.runs[0] == (0, 40.0)  # the hold ended when cancelled
    # The 10 s extension was owed to the other greens and paid back; then the program again.
    assert max(ctrl.debt) < 1.0 and ctrl.idle  # whole seconds are paid; fractions forgotten
    tail = light.runs[-12:]
    assert sorted((p, length) for p, length in tail) == sorted(
        (i, p[1]) for i, p in enumerate(PHASES)
    )
    paid = sum(length - PHASES[p][1] for p, length in light.runs[1:] if length > PHASES[p][1])
    assert 8.0 <= paid <= 10.0


def test_the_more_important_of_two_conflicting_grants_wins() -> None:
    _, ctrl = new(start_s=1)
    ctrl.receive(grant("low", (3, 4), 60, 70, importance=5), 1)
    ctrl.receive(grant("high", (0, 1), 62, 72, importance=12), 1)
    reps = ctrl.data_to_send()
    assert [(r.request_id, r.status) for r in reps] == [("low", "rejected")]
    assert reps[0].kind is ReasonKind.BUMPED  # it could not start after "high" in its window
    assert set(ctrl.held) == {"high"}
    ctrl.receive(grant("lower", (3, 4), 65, 75, importance=3), 1)
    (rep,) = ctrl.data_to_send()
    assert (rep.request_id, rep.status, rep.kind) == ("lower", "rejected", ReasonKind.CONFLICT)


def test_a_green_a_little_after_the_eta_is_given_as_early_as_safe() -> None:
    light, ctrl = new(start_s=1)
    # EW through: earliest safe green at 30 s (NS min 10, clearance, NS left min 10, clearance);
    # the vehicle is due at 27 s, its window runs to 40 s: within late_green_s, so served late.
    assert CFG.late_green_s >= 3
    ctrl.receive(grant("r1", (3, 4), 24, 40, eta=27), 1)
    assert ctrl.data_to_send() == [] and set(ctrl.held) == {"r1"}
    seen: list[tuple[float, bool]] = []
    drive(light, ctrl, 60, seen, (3, 4))
    # As early as the minimum greens and full clearances allow (the stand-in shows a phase
    # from the step after its start).
    assert min(t for t, on in seen if on) <= 31
    assert [length for _, length in light.runs[:6]] == [10.0, 3.0, 2.0, 10.0, 3.0, 2.0]
    assert [r.status for r in ctrl.data_to_send()] == ["served"]  # green half the window
    # Without the allowance it is rejected at once, as before.
    _, strict = new(start_s=1)
    strict.cfg = CFG.model_copy(update={"late_green_s": 0.0})
    strict.receive(grant("r1", (3, 4), 24, 40, eta=27), 1)
    assert [r.kind for r in strict.data_to_send()] == [ReasonKind.NO_SAFE_GREEN]


def test_a_conflicting_grant_of_lower_priority_queues_behind_the_higher_one() -> None:
    light, ctrl = new(start_s=1)
    ctrl.cfg = CFG.model_copy(update={"queue_conflicts": True})
    # "high" wants the NS left turn 40-46; "low" wants EW through 42-70, due at 50: it starts
    # after high's window and the left turn's clearance (46 + 5 = 51 s), within late_green_s
    # of its ETA, instead of being rejected.
    ctrl.receive(grant("high", (2,), 40, 46, eta=42, importance=12), 1)
    ctrl.receive(grant("low", (3, 4), 42, 70, eta=50, importance=5), 1)
    assert ctrl.data_to_send() == [] and set(ctrl.held) == {"high", "low"}
    assert ctrl.held["low"].grant.green_from_s == 51.0
    left: list[tuple[float, bool]] = []
    ew: list[tuple[float, bool]] = []
    while light.t < 100:
        for cmd in ctrl.observe(light.t, light.index, light.t - light.start):
            light.apply(cmd)
        left.append((light.t, light.shows((2,))))
        ew.append((light.t, light.shows((3, 4))))
        light.step()
    assert all(on for t, on in left if 40 <= t < 46)
    assert all(on for t, on in ew if 52 <= t < 70)
    assert not any(a and b for (_, a), (_, b) in zip(left, ew, strict=True))
    assert [p for p, _ in light.runs[:7]] == [0, 1, 2, 3, 4, 5, 6]  # nothing skipped
    assert sorted((r.request_id, r.status) for r in ctrl.data_to_send()) == [
        ("high", "served"),
        ("low", "served"),
    ]
    # Not queued by default: rejected at once, as before.
    _, strict = new(start_s=1)
    assert not CFG.queue_conflicts
    strict.receive(grant("high", (2,), 40, 46, eta=42, importance=12), 1)
    strict.receive(grant("low", (3, 4), 42, 70, eta=50, importance=5), 1)
    assert [r.kind for r in strict.data_to_send()] == [ReasonKind.CONFLICT]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 400),  # when sent
            st.sampled_from([(0, 1), (2,), (3, 4), (5,)]),
            st.integers(0, 90),  # window start after sending
            st.integers(3, 40),  # window length
            st.booleans(),  # cancelled half-way
        ),
        max_size=6,
    )
)
def test_invariants_under_random_grants(
    grants: list[tuple[int, tuple[int, ...], int, int, bool]],
) -> None:
    light, ctrl = new()
    events: dict[int, list[Grant | Cancel]] = {}
    for n, (at, links, lead, length, cancel) in enumerate(grants):
        g = grant(f"r{n}", links, at + lead, at + lead + length, importance=n % 14)
        events.setdefault(at, []).append(g)
        if cancel:
            events.setdefault(at + lead + length // 2, []).append(Cancel(request_id=f"r{n}"))
    while light.t < 900:
        for msg in events.get(int(light.t), []):
            ctrl.receive(msg, light.t)
        for cmd in ctrl.observe(light.t, light.index, light.t - light.start):
            light.apply(cmd)
        light.step()
    order = [p for p, _ in light.runs]
    assert all(b == (a + 1) % len(PHASES) for a, b in itertools.pairwise(order))
    for phase, run_s in light.runs:
        spec = ctrl.program.phases[phase]
        if spec.kind is PhaseKind.CLEARANCE:
            assert run_s == spec.duration_s  # never cut, never stretched
        else:
            assert run_s >= spec.min_s - 1e-9  # never below the minimum green
            extra_allowed = CFG.max_extension_s + CFG.compensation_share * spec.duration_s
            assert run_s <= spec.duration_s + extra_allowed + 1e-9
    assert ctrl.out_of_order == 0


def test_no_green_is_held_for_a_vehicle_that_stands() -> None:
    def standing(stall_s: float) -> tuple[Light, list[ReasonKind | None]]:
        light, ctrl = new(start_s=20)
        ctrl.cfg = CFG.model_copy(update={"stall_s": stall_s})
        kinds: list[ReasonKind | None] = []
        while light.t < 90:
            t = light.t
            if t % 2 == 0:  # the vehicle stands 10 s of driving from the light: every fix says so
                ctrl.receive(grant("r1", (0, 1), t + 8, t + 20, eta=t + 10), t)
            for cmd in ctrl.observe(t, light.index, t - light.start):
                light.apply(cmd)
            kinds += [r.kind for r in ctrl.data_to_send()]
            light.step()
        return light, kinds

    light, kinds = standing(0.0)  # off: NS held to the cap for nothing, then rejected each fix
    assert light.runs[0] == (0, 30.0 + CFG.max_extension_s)
    assert kinds[0] is ReasonKind.EXTENSION_CAP and len(kinds) > 5
    assert set(kinds[1:]) == {ReasonKind.NO_SAFE_GREEN}
    light, kinds = standing(8.0)  # on: the program resumes once it stands 8 s; nothing sent
    assert light.runs[0] == (0, 30.0)
    assert kinds == []


def test_compensation_waits_only_for_grants_due_within_the_horizon() -> None:
    def owed_after(horizon: float) -> tuple[float, list[tuple[int, float]]]:
        light, ctrl = new(start_s=5)
        ctrl.cfg = CFG.model_copy(update={"pay_horizon_cycles": horizon})
        ctrl.receive(grant("r1", (0, 1), 25, 40), 5)  # NS held 10 s past its end at 30
        ctrl.receive(grant("r2", (3, 4), 600, 610), 5)  # another vehicle, minutes away
        drive(light, ctrl, 300)
        return max(ctrl.debt), light.runs

    owed, runs = owed_after(math.inf)  # any grant held defers the pay-back
    assert runs[0] == (0, 40.0) and owed >= 5.0  # EW through is owed 10 * 40 / 70 s
    assert all(length == PHASES[p][1] for p, length in runs[1:])
    owed, runs = owed_after(1.0)  # r2 is more than a cycle away: the 10 s are paid back now
    assert runs[0] == (0, 40.0) and owed < 1.0  # whole seconds are paid; fractions forgotten
    paid = sum(length - PHASES[p][1] for p, length in runs[1:] if length > PHASES[p][1])
    assert 8.0 <= paid <= 10.0
    assert all(length >= PHASES[p][1] for p, length in runs[1:])  # nothing cut to pay it
