"""Priority at real SUMO traffic lights (libsumo, the cut of central Shanghai)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from simulators.sumo._traci import TraciLights, UnsafeCommand, libsumo_run, sumo_argv
from simulators.sumo.controller import Cancel, Grant, PhaseKind, Program, SetPhaseDuration
from simulators.sumo.network import Movement, SumoNetwork


def pick(net: SumoNetwork, conn: Any) -> tuple[str, Movement]:
    """A mapped turn movement at a light with at least two greens (a real crossing)."""
    lights = TraciLights(conn)
    for sig in net.mapping.signals:
        for move in sig.movements:
            if move.scope != "turn" or move.tls_id is None:
                continue
            prog = lights.controller(move.tls_id).program
            greens = [p for p in prog.phases if p.kind is PhaseKind.GREEN]
            if len(greens) >= 2 and len(prog.serving(move.links)) == 1:
                return move.tls_id, move
    raise AssertionError("no crossing in the test map")


def record(
    conn: Any, tls: str, until_s: float, every: Callable[[float], object] | None = None
) -> dict[float, tuple[int, str]]:
    """Step to ``until_s``; the light's (phase, state) at each second."""
    out: dict[float, tuple[int, str]] = {}
    while conn.simulation.getTime() < until_s:
        conn.simulationStep()
        now = float(conn.simulation.getTime())
        if every is not None:
            every(now)
        out[now] = (
            int(conn.trafficlight.getPhase(tls)),
            conn.trafficlight.getRedYellowGreenState(tls),
        )
    return out


def green(state: str, links: list[int]) -> bool:
    return all(state[k] in "Gg" for k in links)


def assert_clearances_kept(seen: dict[float, tuple[int, str]], program: Program) -> None:
    """Phases in program order, every clearance run in full, no link from green to red directly."""
    times = sorted(seen)
    runs: list[tuple[int, float]] = []
    start = times[0]
    for a, b in itertools.pairwise(times):
        pa, sa = seen[a]
        pb, sb = seen[b]
        for k, (x, y) in enumerate(zip(sa, sb, strict=True)):
            assert not (x in "Gg" and y in "rs"), f"link {k} went green -> red at {b}"
        if pb != pa:
            assert pb == program.next_index(pa), f"phase {pa} -> {pb} at {b}"
            runs.append((pa, b - start))
            start = b
    for phase, length in runs[1:]:  # the first run began before the record
        spec = program.phases[phase]
        if spec.kind is PhaseKind.CLEARANCE:
            assert length == spec.duration_s
        else:
            assert length >= spec.min_s


def test_a_granted_request_turns_the_vehicles_approach_green(small_net: SumoNetwork) -> None:
    with libsumo_run(sumo_argv(small_net.net_file)) as conn:
        tls, move = pick(small_net, conn)
        baseline = record(conn, tls, 200)
    # A 10 s window the program would show red to this movement throughout.
    window = next(
        t
        for t in range(40, 160)
        if not any(green(baseline[t + d][1], move.links) for d in range(10))
    )
    with libsumo_run(sumo_argv(small_net.net_file)) as conn:
        lights = TraciLights(conn)
        conn.simulationStep()
        ctrl = lights.controller(tls)
        ctrl.receive(
            Grant(request_id="u1:1", intersection_id=1, links=tuple(move.links),
                  green_from_s=window, green_to_s=window + 10, eta_s=window + 2, importance=12),
            float(conn.simulation.getTime()),
        )  # fmt: skip
        seen = record(conn, tls, 200, every=lambda _t: lights.step())
        assert all(green(seen[float(window + d)][1], move.links) for d in range(10))
        assert_clearances_kept(seen, ctrl.program)
        assert [r.status for r in ctrl.data_to_send()] == ["served"]
        assert ctrl.out_of_order == 0


def test_a_cancelled_request_returns_the_light_to_its_program(small_net: SumoNetwork) -> None:
    with libsumo_run(sumo_argv(small_net.net_file)) as conn:
        tls, move = pick(small_net, conn)
        lights = TraciLights(conn)
        conn.simulationStep()
        ctrl = lights.controller(tls)
        target = min(ctrl.program.serving(move.links))
        # Wait for the movement's green, then hold it 25 s past its planned end.
        while int(conn.trafficlight.getPhase(tls)) != target:
            conn.simulationStep()
            lights.step()
        now = float(conn.simulation.getTime())
        planned_end = float(conn.trafficlight.getNextSwitch(tls))
        ctrl.receive(
            Grant(request_id="u1:1", intersection_id=1, links=tuple(move.links),
                  green_from_s=planned_end - 5, green_to_s=planned_end + 25,
                  eta_s=planned_end, importance=12),
            now,
        )  # fmt: skip
        record(conn, tls, planned_end + 8, every=lambda _t: lights.step())
        assert int(conn.trafficlight.getPhase(tls)) == target  # held past its planned end
        ctrl.receive(Cancel(request_id="u1:1"), float(conn.simulation.getTime()))
        lights.step()  # as the gateway does: messages of a step, then the lights
        cycle = ctrl.program.cycle_s
        seen = record(conn, tls, planned_end + 8 + 4 * cycle, every=lambda _t: lights.step())
        # The hold ends on the step after the cancel, through the program's clearance.
        assert seen[planned_end + 9][0] == ctrl.program.next_index(target)
        assert_clearances_kept(seen, ctrl.program)
        assert ctrl.idle  # compensation paid, the program's own timing again
        # The last full cycle runs every phase for exactly its programmed time.
        last = record(conn, tls, conn.simulation.getTime() + 2 * cycle)
        lengths = _run_lengths(last)
        assert lengths and all(length == ctrl.program.phases[p].duration_s for p, length in lengths)
        assert [r.status for r in ctrl.data_to_send()] == ["cancelled"]


def _run_lengths(seen: dict[float, tuple[int, str]]) -> list[tuple[int, float]]:
    times = sorted(seen)
    out: list[tuple[int, float]] = []
    start: float | None = None
    for a, b in itertools.pairwise(times):
        if seen[b][0] != seen[a][0]:
            if start is not None:
                out.append((seen[a][0], b - start))
            start = b
    return out


def test_the_adapter_refuses_to_touch_a_clearance(small_net: SumoNetwork) -> None:
    with libsumo_run(sumo_argv(small_net.net_file)) as conn:
        tls, _ = pick(small_net, conn)
        lights = TraciLights(conn)
        prog = lights.controller(tls).program
        clearance = next(i for i, p in enumerate(prog.phases) if p.kind is PhaseKind.CLEARANCE)
        with pytest.raises(UnsafeCommand):
            lights.apply(SetPhaseDuration(tls_id=tls, phase_index=clearance, remaining_s=0))
