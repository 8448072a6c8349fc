"""The TraCI side of the light controllers: read programs and phases, apply phase durations.

``conn`` is anything with TraCI's domains: the ``libsumo`` module (in-process, fastest; one
simulation per process) or a ``traci`` connection (a ``sumo`` subprocess over a socket).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._home import sumo_binary, sumo_home
from .controller import (
    ControllerConfig,
    LightController,
    PhaseKind,
    Program,
    SetPhaseDuration,
)


class UnsafeCommand(RuntimeError):
    """A command would change a clearance phase, or the light is no longer in that phase."""


def pedestrian_links(conn: Any, tls_id: str) -> set[int]:
    """Link indices whose incoming lane is a pedestrian crossing (internal ``:…_c…`` lanes)."""
    out: set[int] = set()
    for index, links in enumerate(conn.trafficlight.getControlledLinks(tls_id)):
        for in_lane, _out_lane, _via in links:
            if str(in_lane).startswith(":") and "_c" in str(in_lane):
                out.add(index)
    return out


def read_program(conn: Any, tls_id: str, config: ControllerConfig) -> Program:
    """The program the light runs now, as :class:`Program`."""
    current = conn.trafficlight.getProgram(tls_id)
    logics = conn.trafficlight.getAllProgramLogics(tls_id)
    logic = next((lg for lg in logics if lg.programID == current), logics[0])
    return Program.from_phases(
        tls_id,
        [(p.state, float(p.duration), float(p.minDur)) for p in logic.phases],
        config=config,
        pedestrian_links=pedestrian_links(conn, tls_id),
    )


class TraciLights:
    """Light controllers over one SUMO simulation.

    Args:
        conn: ``libsumo`` or a ``traci`` connection.
        config: bounds of priority for every light.
    """

    def __init__(self, conn: Any, config: ControllerConfig | None = None) -> None:
        self.conn = conn
        self.config = config or ControllerConfig()
        self.controllers: dict[str, LightController] = {}
        self._approach_lanes: dict[tuple[str, tuple[int, ...]], list[str]] = {}

    def now_s(self) -> float:
        return float(self.conn.simulation.getTime())

    def controller(self, tls_id: str) -> LightController:
        """The controller of a light, made on first use in the light's present state.

        Raises:
            KeyError: SUMO has no such traffic light.
        """
        ctrl = self.controllers.get(tls_id)
        if ctrl is None:
            if tls_id not in set(self.conn.trafficlight.getIDList()):
                raise KeyError(f"SUMO has no traffic light {tls_id}")
            ctrl = LightController(
                read_program(self.conn, tls_id, self.config),
                config=self.config,
                now_s=self.now_s(),
                phase_index=int(self.conn.trafficlight.getPhase(tls_id)),
                spent_s=float(self.conn.trafficlight.getSpentDuration(tls_id)),
            )
            self.controllers[tls_id] = ctrl
        return ctrl

    def queued(self, tls_id: str, links: Sequence[int]) -> float:
        """Vehicles halting on the incoming lanes of ``links`` (the queue ahead of a vehicle)."""
        key = (tls_id, tuple(links))
        lanes = self._approach_lanes.get(key)
        if lanes is None:
            controlled = self.conn.trafficlight.getControlledLinks(tls_id)
            lanes = sorted(
                {str(lk[0]) for i in links if 0 <= i < len(controlled) for lk in controlled[i]}
            )
            self._approach_lanes[key] = lanes
        return float(sum(self.conn.lane.getLastStepHaltingNumber(lane) for lane in lanes))

    def step(self, tls_ids: Iterable[str] | None = None) -> list[SetPhaseDuration]:
        """Observe every controlled light (or ``tls_ids``) and apply what they decide.

        Call once per simulation step, after ``simulationStep``.
        """
        now = self.now_s()
        done: list[SetPhaseDuration] = []
        ids = list(self.controllers) if tls_ids is None else list(tls_ids)
        tl = self.conn.trafficlight
        for tls_id in ids:
            ctrl = self.controllers[tls_id]
            queues = {rid: self.queued(tls_id, held.grant.links) for rid, held in ctrl.held.items()}
            commands = ctrl.observe(
                now, int(tl.getPhase(tls_id)), float(tl.getSpentDuration(tls_id)), queues=queues
            )
            for cmd in commands:
                self.apply(cmd)
                done.append(cmd)
        return done

    def apply(self, cmd: SetPhaseDuration) -> None:
        """Set the remaining duration of the current phase, after checking it is safe.

        Raises:
            UnsafeCommand: the phase is a clearance, or the light has left that phase.
        """
        ctrl = self.controllers.get(cmd.tls_id)
        if ctrl is not None and ctrl.program.phases[cmd.phase_index].kind is PhaseKind.CLEARANCE:
            raise UnsafeCommand(f"{cmd.tls_id}: phase {cmd.phase_index} is a clearance")
        shown = int(self.conn.trafficlight.getPhase(cmd.tls_id))
        if shown != cmd.phase_index:
            raise UnsafeCommand(f"{cmd.tls_id} shows phase {shown}, not {cmd.phase_index}")
        self.conn.trafficlight.setPhaseDuration(cmd.tls_id, cmd.remaining_s)


def sumo_argv(
    net_file: Path,
    *,
    routes: Sequence[Path] = (),
    step_length_s: float = 1.0,
    seed: int = 1,
    extra: Sequence[str] = (),
) -> list[str]:
    """Command line of a quiet, deterministic SUMO run (for ``libsumo.start`` / ``traci.start``)."""
    argv = [
        str(sumo_binary("sumo")),
        "--net-file",
        str(net_file),
        "--step-length",
        f"{step_length_s:g}",
        "--seed",
        str(seed),
        "--no-step-log",
        "true",
        "--no-warnings",
        "true",
        "--duration-log.disable",
        "true",
    ]
    if routes:
        argv += ["--route-files", ",".join(str(r) for r in routes)]
    return [*argv, *extra]


@contextmanager
def libsumo_run(argv: Sequence[str]) -> Iterator[Any]:
    """Start SUMO in-process with libsumo; yields the ``libsumo`` module; closes at exit."""
    sumo_home()
    import libsumo  # type: ignore[import-untyped,unused-ignore]

    libsumo.start(list(argv))
    try:
        yield libsumo
    finally:
        libsumo.close()
