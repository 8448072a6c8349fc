"""Batch drills: a whole scenario on a simulated clock, deciding as the service decides.

:func:`run_batch` replays a scenario's calls through the service's decision core, the same
functions the live service calls: joint-intake merge and the merged plan, unit ranking, the
whistle state machine, assignment (legs, the hospital, green-wave plans), unit status and
close (:mod:`dispatch.core`), and the green-wave plans, re-plans, the messages worth sending
and the per-intersection arbiter (:mod:`routing`). The field around them is simulated:
vehicles, signal controllers, coordinators, crews and their patients. Then every drive is
repeated on the same route, leaving at the same second, through the same fixed-time signals,
without priority requests: the paired baseline of the report.

What the batch drill does *not* run is the service's I/O: Redis, the event log, websockets.
For those, run the same scenario live against the service (:mod:`simulators.live`).

* :mod:`.engine`: the event queue, the dispatch state and the crews;
* :mod:`.network`: the arbiter and the signal controllers executing its grants;
* :mod:`.report`: the report of a run.
"""

from __future__ import annotations

from dispatch.core.pivot_plan import Plan
from dispatch.core.rosters import duty_day
from routing import Router

from ..baseline import drive_without
from ..clock import SimClock
from ..config import DrillConfig
from ..fleet import SimFleet, generate_fleet
from ..report import DrillReport
from ..scenarios import Scenario
from .engine import Engine, Progress
from .pivots import compare
from .report import build_report

__all__ = ["Progress", "run_batch", "run_with_pivots"]


def run_batch(
    router: Router,
    scenario: Scenario,
    seed: int,
    *,
    config: DrillConfig | None = None,
    fleet: SimFleet | None = None,
    progress: Progress | None = None,
    pivots: Plan | None = None,
) -> DrillReport:
    """Run a scenario on a simulated clock and report it (see the module docstring).

    Args:
        router: the map (emergency profile, as the service routes).
        scenario: what happens (``simulators.scenarios.load_scenario``).
        seed: every random draw derives from it; the same seed gives the same report.
        config: model tuning.
        fleet: units, hospitals and roster; generated from the map (seeded) when omitted.
        progress: called with ``(fraction of calls processed, label)``.
        pivots: a pivot-post plan: police units stand at its posts (:func:`run_with_pivots`
            runs the pair and compares).

    Returns:
        The report.

    Raises:
        ScenarioError: a scenario place cannot be resolved on this map.
    """
    cfg = config or DrillConfig()
    engine = _run_engine(router, scenario, seed, cfg, fleet, progress, pivots)
    return _report(router, cfg, engine, progress)


def run_with_pivots(
    router: Router,
    scenario: Scenario,
    seed: int,
    plan: Plan,
    *,
    config: DrillConfig | None = None,
    fleet: SimFleet | None = None,
    progress: Progress | None = None,
) -> DrillReport:
    """The drill with police units at the plan's standing posts, and again (same seed, same
    fleet) without posts: the report of the run with posts, with ``pivots`` comparing the two
    (:mod:`.pivots`)."""
    cfg = config or DrillConfig()
    day = duty_day(SimClock(scenario.start).at(0.0))
    units = fleet or generate_fleet(router, seed=seed, day=day)
    without = _report(
        router, cfg, _run_engine(router, scenario, seed, cfg, units, None, None), None
    )
    engine = _run_engine(router, scenario, seed, cfg, units, progress, plan)
    report = _report(router, cfg, engine, progress)
    figures = compare(
        plan,
        report,
        without,
        posts_standing_max=engine.posts_standing_max,
        units_posted_max=engine.units_posted_max,
    )
    return report.model_copy(update={"pivots": figures})


def _run_engine(
    router: Router,
    scenario: Scenario,
    seed: int,
    cfg: DrillConfig,
    fleet: SimFleet | None,
    progress: Progress | None,
    pivots: Plan | None,
) -> Engine:
    engine = Engine(router, scenario, seed, cfg, fleet, progress, pivots)
    engine.run()
    return engine


def _report(
    router: Router, cfg: DrillConfig, engine: Engine, progress: Progress | None
) -> DrillReport:
    if progress is not None:
        progress(1.0, "re-driving without green wave")
    baseline = {
        d.drive_id: drive_without(
            unit_id=d.unit_id,
            route=d.route,
            depart_s=d.depart_s,
            kind=d.kind,
            timings=engine.network.timings,
            flow_factor=engine.network.flow_factor,
            signal_nodes=engine.signal_nodes,
            signal_delay_s=router.profile.signal_delay_s,
            max_drive_s=cfg.max_drive_s,
            bluelight=cfg.bluelight,
        )
        for d in engine.drives
    }
    return build_report(engine, baseline)
