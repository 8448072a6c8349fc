"""Drill simulators: calls, vehicles, signal controllers, coordinators and crews for Yishao drills.

Batch mode (:func:`run_batch`) replays a scenario on a simulated clock through the service's
own decision core and reports it (:class:`DrillReport`, :func:`render_html`); live mode
(:func:`simulators.live.run_live`) plays it in real time against a running service through its
REST and websocket interfaces. The field models are pure step-able objects either mode drives:

* :class:`VehicleSim` (``step(now_s, lookup)`` -> positions, status changes, signals passed),
* :class:`SignalController` (``receive(grant | cancel, now_s)``, ``advance``, ``view``,
  ``data_to_send`` -> served / rejected reports),
* :class:`CoordinatorSim` (``summon``, ``stand_down``, ``step(now_s)`` -> acks due).

Module map::

    errors        DrillError > ScenarioError, LiveError
    catalogue     the built-in scenarios as TOML text (no imports: cheap for --help)
    scenarios     the scenario file format: validation and loading
    places        named places (random, point, near, water, market, ...) on any map
    calls         the calls of a scenario, seeded
    fleet         stations, units, hospitals and the coordinators' roster, seeded
    clock         simulated time and seeded random streams
    config        DrillConfig: crew times, re-planning, merging
    patients      whether an ambulance crew takes its patient to hospital
    coordinators  people answering whistle summons after a human delay (or never)
    vehicles      VehicleSim: one vehicle driving one route through the signals
    signals/      timing (fixed-time plans), controller (priority), traffic (cross delay)
    baseline      a drive repeated without priority: the report's "without"
    report        report models, the summary and per-signal records (batch and live)
    html          the report as one self-contained HTML page
    batch/        engine (event queue, dispatch state, crews), network (arbiter and
                  controllers), report (a run's report); run_batch
    live/         drill (one live run), console (dispatchers), coordinators, field (the
                  gateway's controllers), units (terminals and crews), net (websockets,
                  tokens), report, config; run_live
    cli           ``yishao drill``

The names below are imported on first use, so ``import simulators.cli`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch import run_batch
    from .calls import ScheduledCall, generate_calls
    from .clock import SimClock, substream
    from .config import DrillConfig
    from .coordinators import AckDue, CoordinatorBehaviour, CoordinatorSim
    from .errors import DrillError, LiveError, ScenarioError
    from .fleet import SimFleet, fleet_json, generate_fleet, hospitals_json
    from .html import render_html
    from .places import MapFeatures, Place, PlaceFinder, PlaceSpec
    from .report import DrillReport, DrillSummary, LegRecord, ResponseRecord, SignalRecord
    from .scenarios import Scenario, builtin_names, load_scenario, parse_scenario
    from .signals import (
        Axis,
        PriorityCancel,
        PriorityGrant,
        PriorityReport,
        SignalController,
        SignalTiming,
        SignalView,
        make_timings,
    )
    from .vehicles import PositionReport, SignalPassed, StatusChange, VehicleSim

_WHERE = {
    "run_batch": "batch",
    "ScheduledCall": "calls",
    "generate_calls": "calls",
    "SimClock": "clock",
    "substream": "clock",
    "DrillConfig": "config",
    "AckDue": "coordinators",
    "CoordinatorBehaviour": "coordinators",
    "CoordinatorSim": "coordinators",
    "DrillError": "errors",
    "LiveError": "errors",
    "ScenarioError": "errors",
    "SimFleet": "fleet",
    "fleet_json": "fleet",
    "generate_fleet": "fleet",
    "hospitals_json": "fleet",
    "render_html": "html",
    "MapFeatures": "places",
    "Place": "places",
    "PlaceFinder": "places",
    "PlaceSpec": "places",
    "DrillReport": "report",
    "DrillSummary": "report",
    "LegRecord": "report",
    "ResponseRecord": "report",
    "SignalRecord": "report",
    "Scenario": "scenarios",
    "builtin_names": "scenarios",
    "load_scenario": "scenarios",
    "parse_scenario": "scenarios",
    "Axis": "signals",
    "PriorityCancel": "signals",
    "PriorityGrant": "signals",
    "PriorityReport": "signals",
    "SignalController": "signals",
    "SignalTiming": "signals",
    "SignalView": "signals",
    "make_timings": "signals",
    "PositionReport": "vehicles",
    "SignalPassed": "vehicles",
    "StatusChange": "vehicles",
    "VehicleSim": "vehicles",
}

__all__ = [
    "AckDue",
    "Axis",
    "CoordinatorBehaviour",
    "CoordinatorSim",
    "DrillConfig",
    "DrillError",
    "DrillReport",
    "DrillSummary",
    "LegRecord",
    "LiveError",
    "MapFeatures",
    "Place",
    "PlaceFinder",
    "PlaceSpec",
    "PositionReport",
    "PriorityCancel",
    "PriorityGrant",
    "PriorityReport",
    "ResponseRecord",
    "Scenario",
    "ScenarioError",
    "ScheduledCall",
    "SignalController",
    "SignalPassed",
    "SignalRecord",
    "SignalTiming",
    "SignalView",
    "SimClock",
    "SimFleet",
    "StatusChange",
    "VehicleSim",
    "builtin_names",
    "fleet_json",
    "generate_calls",
    "generate_fleet",
    "hospitals_json",
    "load_scenario",
    "make_timings",
    "parse_scenario",
    "render_html",
    "run_batch",
    "substream",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'simulators' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
