"""Drill simulators: calls, vehicles, signal controllers and coordinators for Yishao drills.

Batch mode (:func:`run_batch`) replays a scenario on a simulated clock through the service's own
decision code and reports it (:class:`DrillReport`, :func:`render_html`). The field models are
pure step-able objects a live client can wrap around websockets:

* :class:`VehicleSim` (``step(now_s, lookup)`` -> positions, status changes, signals passed),
* :class:`SignalController` (``receive(grant | cancel, now_s)``, ``advance``, ``view``,
  ``data_to_send`` -> served / rejected reports),
* :class:`CoordinatorSim` (``summon``, ``stand_down``, ``step(now_s)`` -> acks due).

Module map: ``clock`` (simulated time, seeded streams), ``places`` (named places on any map),
``scenarios`` (file format, built-ins), ``calls`` (call generation), ``fleet`` (stations, units,
hospitals, roster), ``signals``, ``vehicles``, ``coordinators``, ``drill`` (the batch engine),
``report`` (report models), ``html`` (the HTML page), ``cli`` (``yishao drill``).
"""

from __future__ import annotations

from .calls import ScheduledCall, generate_calls
from .clock import SimClock, substream
from .coordinators import AckDue, CoordinatorBehaviour, CoordinatorSim
from .drill import DrillConfig, run_batch
from .fleet import SimFleet, fleet_json, generate_fleet, hospitals_json
from .html import render_html
from .places import MapFeatures, Place, PlaceFinder, PlaceSpec
from .report import DrillReport, DrillSummary, LegRecord, ResponseRecord, SignalRecord
from .scenarios import Scenario, ScenarioError, builtin_names, load_scenario, parse_scenario
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

__all__ = [
    "AckDue",
    "Axis",
    "CoordinatorBehaviour",
    "CoordinatorSim",
    "DrillConfig",
    "DrillReport",
    "DrillSummary",
    "LegRecord",
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
