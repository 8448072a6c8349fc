"""The SUMO build of a real extract: signals mapped onto SUMO lights, routes drivable in SUMO."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from routing import Router
from simulators.sumo.cli import sumo_app
from simulators.sumo.network import MapStatus, SumoNetwork, build_network


def _links_ok(conn: Any, net: SumoNetwork) -> None:
    lights = set(conn.trafficlight.getIDList())
    for sig in net.mapping.signals:
        for move in sig.movements:
            if not move.links:
                continue
            assert move.tls_id in lights
            width = len(conn.trafficlight.getRedYellowGreenState(move.tls_id))
            assert all(0 <= k < width for k in move.links)


def test_most_signals_of_the_cut_map_onto_sumo_lights(small_net: SumoNetwork, sim: Any) -> None:
    s = small_net.summary
    # 65 router signals: 64 mapped, 1 partly (a movement over an edge SUMO lacks).
    assert s.router_signals == 65
    assert s.signals_mapped >= 0.95 * s.router_signals
    assert s.signals_unmapped == 0
    assert s.sumo_tls == len(sim.trafficlight.getIDList())
    _links_ok(sim, small_net)
    for sig in small_net.mapping.signals:
        if sig.status is not MapStatus.UNMAPPED:
            assert sig.tls_id is not None
            assert any(m.mapped for m in sig.movements)


def test_a_mapped_movement_is_found_from_a_requests_bearings(
    small_net: SumoNetwork, small_router: Router
) -> None:
    g = small_router.graph
    rng = random.Random(3)
    found = 0
    for _ in range(40):
        route = small_router.route_nodes(rng.randrange(g.node_count), rng.randrange(g.node_count))
        for sig in route.signals:
            mapped = small_net.signal(sig.node_id)
            assert mapped is not None
            move = mapped.movement_for(sig.inbound_bearing_deg, sig.outbound_bearing_deg)
            if move is None:
                continue
            found += 1
            # The route's own bearings are those the mapping recorded (one formula for both).
            assert abs(move.in_bearing_deg - sig.inbound_bearing_deg) < 1e-2
            assert abs(move.out_bearing_deg - sig.outbound_bearing_deg) < 1e-2
    assert found > 20


def test_routes_the_service_plans_drive_in_sumo(
    small_net: SumoNetwork, small_router: Router, sim: Any
) -> None:
    g = small_router.graph
    rng = random.Random(7)
    driven = 0
    for n in range(12):
        route = small_router.route_nodes(rng.randrange(g.node_count), rng.randrange(g.node_count))
        if route.distance_m < 300:
            continue
        try:
            edges = small_net.route_edges(route)
        except KeyError:
            continue  # over one of the few router edges SUMO lacks
        for a, b in itertools.pairwise(edges):
            assert b in {c for c in _outgoing(sim, a)}, f"{a} -> {b} not connected"
        sim.route.add(f"r{n}", edges)
        sim.vehicle.add(f"v{n}", f"r{n}", depart="now")
        driven += 1
    assert driven >= 5
    arrived: set[str] = set()
    for _ in range(900):
        sim.simulationStep()
        arrived.update(sim.simulation.getArrivedIDList())
        if sim.simulation.getMinExpectedNumber() == 0:
            break
    assert len(arrived) == driven  # every vehicle reached the end of its route
    assert sim.simulation.getStartingTeleportNumber() == 0


def _outgoing(conn: Any, edge: str) -> set[str]:
    lanes = [f"{edge}_{i}" for i in range(conn.edge.getLaneNumber(edge))]
    return {str(link[0]).rsplit("_", 1)[0] for lane in lanes for link in conn.lane.getLinks(lane)}


def test_the_build_is_cached_and_the_cli_reports_it(
    small_osm: Path, small_net: SumoNetwork
) -> None:
    again = build_network(small_osm, small_net.folder)
    assert again.mapping.built_at == small_net.mapping.built_at  # loaded, not rebuilt
    result = CliRunner().invoke(
        sumo_app, ["build", "--osm", str(small_osm), "--out", str(small_net.folder), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["summary"]["signals_mapped"] == small_net.summary.signals_mapped
    assert len(body["not_mapped"]) == (
        small_net.summary.signals_partial + small_net.summary.signals_unmapped
    )
    bad = CliRunner().invoke(
        sumo_app, ["build", "--osm", str(small_osm), "--out", "x", "--variant", "nope"]
    )
    assert bad.exit_code == 2 and "--variant" in bad.output


@pytest.mark.slow
def test_the_shanghai_extract_maps_almost_every_signal(
    shanghai_osm: Path, shanghai_router: Router, tmp_path: Path
) -> None:
    # shanghai_router: the suite's session build of the same extract (tests/conftest.py).
    net = build_network(shanghai_osm, tmp_path / "sumo", graph=shanghai_router.graph)
    s = net.summary
    # 1,317 router signals -> 882 SUMO lights: 1,300 mapped, 3 partly, 14 unmapped (signal
    # nodes at dead ends of the extract, where every way through is a U-turn).
    assert s.router_signals == 1317
    assert s.signals_mapped >= 1290
    assert set(s.unmapped_reasons) <= {"no movement through the node (only U-turns)"}
    assert s.edges_unmapped <= 0.005 * s.router_edges
