"""The batch drill decides as the service does: hospitals, statuses and closes are the core's."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import replace
from datetime import date

from dispatch.core.assign import LegKind, choose_hospital
from dispatch.models import IncidentStatus, UnitStatus, UnitType
from routing import Router
from simulators import DrillConfig, generate_fleet, parse_scenario
from simulators.batch.engine import Engine
from simulators.patients import takes_patient
from simulators.scenarios import Scenario
from tests.sim.test_drill import ROLLOVER


def _scenario() -> Scenario:
    return parse_scenario(tomllib.loads(ROLLOVER))


def _run(router: Router, scenario: Scenario, seed: int) -> Engine:
    fleet = generate_fleet(router, seed=seed, day=date(2025, 11, 28))
    engine = Engine(router, scenario, seed, DrillConfig(), fleet, None)
    engine.run()
    return engine


def test_transports_go_to_the_fastest_accepting_hospital_by_road(small_city: Router) -> None:
    scenario = _scenario()
    plain = generate_fleet(small_city, seed=4, day=date(2025, 11, 28), hospitals=4)
    # The first hospital stops taking patients: no ambulance may bring one there.
    closed = plain.hospitals[0].model_copy(update={"accepting": False})
    fleet = replace(plain, hospitals=(closed, *plain.hospitals[1:]))
    engine = Engine(small_city, scenario, 4, DrillConfig(), fleet, None)
    engine.run()
    transports = [d for d in engine.drives if d.kind is LegKind.TRANSPORT]
    assert transports, "the mini scenario has critical patients"
    accepting = [h for h in fleet.hospitals if h.accepting]
    for drive in transports:
        incident = engine.incidents[drive.incident_id]
        assert takes_patient(incident)
        times = small_city.travel_times_from(
            (incident.lat, incident.lon), [(h.lat, h.lon) for h in accepting]
        )
        best = choose_hospital(accepting, [float(t) for t in times.duration_s])
        assert best is not None
        expected = small_city.route(
            (incident.lat, incident.lon), (accepting[best].lat, accepting[best].lon)
        )
        assert drive.route.destination == expected.destination
        assert (drive.route.destination.asked_lat, drive.route.destination.asked_lon) != (
            closed.lat,
            closed.lon,
        )


def test_statuses_and_closes_are_the_cores(small_city: Router) -> None:
    engine = _run(small_city, _scenario(), 6)
    # Drained: every unit is free, no record is left, every served incident is closed.
    assert not engine.records
    assert all(u.status is UnitStatus.AVAILABLE and u.incident_id is None
               for u in engine.units.values())  # fmt: skip
    served = {d.incident_id for d in engine.drives}
    assert served
    for incident_id in served:
        incident = engine.incidents[incident_id]
        assert incident.status is IncidentStatus.CLOSED
        # Assigned through core.assign: the incident lists each unit it sent, with its ETA.
        sent = {d.unit_id for d in engine.drives if d.incident_id == incident_id}
        assert {a.unit_id for a in incident.assignments} == sent
        for a in incident.assignments:
            if a.unit_type is UnitType.AMBULANCE:
                assert a.hospital_id is not None  # every ambulance is given a destination
            else:
                assert a.hospital_id is None


def test_importing_the_cli_loads_no_engine() -> None:
    # ``yishao --help`` imports simulators.cli: the engines, routing, numpy and rich wait for
    # the command to run.
    code = (
        "import sys, simulators.cli; "
        "print(sorted(m for m in ('numpy', 'routing', 'pydantic', 'rich', 'simulators.batch', "
        "'simulators.live', 'simulators.scenarios') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
