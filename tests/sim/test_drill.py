"""Batch drills: determinism, escalation, grant safety, green wave faster, files and CLI."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from routing import Router
from routing.arbiter import movements_conflict
from routing.graph import save
from routing.greenwave import (
    Approach,
    ApproachLabel,
    Requester,
    RequestType,
    SignalRequest,
    VehicleRole,
)
from simulators import (
    CoordinatorBehaviour,
    DrillReport,
    fleet_json,
    generate_fleet,
    load_scenario,
    parse_scenario,
    render_html,
    run_batch,
)
from simulators.scenarios import Scenario, ScenarioError

ROLLOVER = """
name = "mini-rollover"
start = 2025-11-28T17:00:00+08:00
duration_h = 1
[[place]]
name = "depot"
kind = "random"
[[place]]
name = "crash site"
kind = "near"
of = "depot"
within_m = 800
[[event]]
name = "rollover"
place = "crash site"
[[event.calls]]
centre = "122"
call_type = "traffic_accident_entrapment"
severity = 4
[[event.calls]]
centre = "120"
call_type = "critical_patient"
severity = 4
after_s = 40
offset_m = 50
[[event]]
name = "fall"
place = "random"
count = 3
[[event.calls]]
centre = "120"
call_type = "fall_from_height"
severity = 4
[[stream]]
name = "background"
calls_per_hour = 6
mix = { fight = 0.5, critical_patient = 0.5 }
"""


def mini(**overrides: object) -> Scenario:
    data = tomllib.loads(ROLLOVER)
    data.update(overrides)
    return parse_scenario(data)


def test_same_seed_same_report(small_city: Router) -> None:
    scenario = mini()
    a = run_batch(small_city, scenario, 7)
    b = run_batch(small_city, scenario, 7)
    assert a.model_dump_json() == b.model_dump_json()
    c = run_batch(small_city, scenario, 8)
    assert c.model_dump_json() != a.model_dump_json()
    s = a.summary
    assert s.responses >= 4 and s.whistles >= 4
    # The 122 and 120 calls about the rollover became one incident.
    rollover = [r for r in a.responses if r.source == "rollover"]
    assert len(rollover) == 1 and rollover[0].calls == 2
    assert {c.value for c in rollover[0].centres} == {"122", "120"}


def test_silent_coordinators_escalate(small_city: Router) -> None:
    silent = CoordinatorBehaviour(silent_share=1.0)
    report = run_batch(small_city, mini(coordinators=silent), 3)
    whistles = [r for r in report.responses if r.whistle]
    assert whistles
    for r in whistles:
        # Every primary escalated to a backup who stayed silent too: two alerts per agency.
        assert r.escalations == 6
        assert all(a.whistle_to_ack_s is None for a in r.acks)
        assert {a.tier for a in r.acks} == {"primary", "backup"}
        assert r.greenwave_enabled_after_s is None  # no 122 ack, no green wave
    assert report.summary.escalations == 6 * len(whistles)
    assert report.summary.greenwave_responses == 0


def _request(grant_inbound: str, grant_outbound: str) -> SignalRequest:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return SignalRequest(
        request_id="x",
        sequence=0,
        intersection_id=1,
        request_type=RequestType.REQUEST,
        inbound=Approach(bearing_deg=0.0, label=ApproachLabel(grant_inbound)),
        outbound=Approach(bearing_deg=0.0, label=ApproachLabel(grant_outbound)),
        eta=now,
        arrive_from=now,
        arrive_to=now,
        hold_s=0.0,
        requester=Requester(
            agency="ems", unit_id="u", role=VehicleRole.AMBULANCE, incident_priority=1
        ),
        importance=10,
        sent_at=now,
    )


def assert_no_grant_collisions(report: DrillReport) -> None:
    by_signal: dict[int, list[tuple[float, float, str, str, str]]] = {}
    for g in report.grants:
        by_signal.setdefault(g.intersection_id, []).append(
            (g.green_from_s, g.green_to_s, g.inbound, g.outbound, g.request_id)
        )
    for windows in by_signal.values():
        for i, (a0, a1, ain, aout, _) in enumerate(windows):
            for b0, b1, bin_, bout, _ in windows[i + 1 :]:
                overlap = a0 < b1 and b0 < a1
                if overlap:
                    assert not movements_conflict(_request(ain, aout), _request(bin_, bout))
    assert report.summary.grant_conflicts == 0


def test_no_conflicting_grants_in_a_busy_drill(small_city: Router) -> None:
    busy = mini(stream=[
        {"name": "busy", "calls_per_hour": 40, "mix": {"critical_patient": 0.6, "fire": 0.4}}
    ])  # fmt: skip
    report = run_batch(small_city, busy, 5)
    assert report.summary.requests_granted > 50
    assert_no_grant_collisions(report)


@pytest.mark.slow
def test_green_wave_faster_on_the_real_map(real_city: Router) -> None:
    report = run_batch(real_city, load_scenario("taxi-rollover"), 1)
    s = report.summary
    assert s.greenwave_responses >= 4
    assert s.mean_arrival_s_with is not None and s.mean_arrival_s_without is not None
    assert s.mean_arrival_s_with < 0.9 * s.mean_arrival_s_without
    assert s.improved_share is not None and s.improved_share >= 0.5
    assert_no_grant_collisions(report)
    page = render_html(report)
    assert page.startswith("<!doctype html>") and "<svg" in page and "http" not in page


def test_builtin_scenarios_load_and_bad_files_are_named(tmp_path: Path) -> None:
    for name in ("taxi-rollover", "drowning", "night-market", "labour-dispute",
                 "garage-theft", "mixed-day"):  # fmt: skip
        assert load_scenario(name).name == name
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "start": "2025-01-01T00:00:00", "duration_h": 1}))
    with pytest.raises(ScenarioError, match=r"bad\.json"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no scenario"):
        load_scenario("no-such-scenario")


def test_fleet_json_shape(small_city: Router) -> None:
    fleet = generate_fleet(small_city, seed=1, day=datetime(2025, 11, 28).date())
    rows = fleet_json(fleet)
    assert rows and {"id", "agency", "type", "lat", "lon", "station"} <= set(rows[0])
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["agency"] for r in rows} == {"police", "traffic", "ems", "fire"}


def test_cli_batch_json_and_live_error(small_city: Router, tmp_path: Path) -> None:
    import typer

    from simulators.cli import drill

    app = typer.Typer()
    app.command("drill")(drill)
    app.command("noop")(lambda: None)
    graph = save(small_city.graph, tmp_path / "city.npz")
    scenario = tmp_path / "mini.toml"
    scenario.write_text(ROLLOVER)
    out = tmp_path / "report.html"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["drill", "--scenario", str(scenario), "--graph", str(graph), "--seed", "2", "--batch",
         "--json", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("responses", "whistles", "mean_arrival_s_with", "mean_arrival_s_without",
                "improved_share", "cross_delay_added_pct", "escalations"):  # fmt: skip
        assert key in data["summary"]
    assert isinstance(data["responses"], list) and data["responses"]
    assert out.read_text().startswith("<!doctype html>")
    # Under lights and siren a red is crossed slowly instead of waited out: the drives without
    # the green wave get no slower, and the green wave's gain no larger.
    blue = runner.invoke(
        app,
        ["drill", "--scenario", str(scenario), "--graph", str(graph), "--seed", "2", "--batch",
         "--json", "--bluelight"],
    )  # fmt: skip
    assert blue.exit_code == 0, blue.output
    b, s = json.loads(blue.stdout)["summary"], data["summary"]
    assert b["mean_arrival_s_without"] < s["mean_arrival_s_without"]
    gain = 1 - s["mean_arrival_s_with"] / s["mean_arrival_s_without"]
    assert 1 - b["mean_arrival_s_with"] / b["mean_arrival_s_without"] < gain
    live = runner.invoke(app, ["drill", "--scenario", "mixed-day"])
    assert live.exit_code == 2
    assert "live mode needs --url of a running service" in live.output


def test_html_report_names_signals_and_labels_axes(small_city: Router) -> None:
    from simulators.html import signal_names

    report = run_batch(small_city, mini(), 7)
    ids = [s.intersection_id for s in report.signals]
    names = signal_names(small_city.graph, ids)
    page = render_html(report, signal_names=names)
    assert page == render_html(report, signal_names=names)  # same report, same bytes
    assert "http" not in page and "<script" not in page
    assert "responses</text>" in page and "arrival time, minutes" in page
    assert "Cost to cross traffic" in page and "q·r²/(2(1−q/s))" in page
    for name in list(names.values())[:3]:
        assert any(part in page for part in name.split(" × "))
    # Without names it still renders, by OSM id.
    assert "<svg" in render_html(report)
