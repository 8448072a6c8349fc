"""The batch drill with and without pivot posts (issue 16): the same seed twice, the report's
``pivots`` section computed from the two runs."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from dispatch.core.pivot_plan import Plan
from routing import Router
from simulators import parse_scenario, render_html
from simulators.batch import run_batch, run_with_pivots
from simulators.batch.engine import Engine
from simulators.batch.pivots import police_response_s
from simulators.config import DrillConfig
from simulators.scenarios import Scenario
from tests.pivot_sample import plan_json

# Friday 19:00-21:00 +08:00: the weekday 18-24 band of November 2025.
EVENING = """
name = "pivot-evening"
start = 2025-11-28T19:00:00+08:00
duration_h = 2

[[place]]
name = "market"
kind = "random"

[[event]]
name = "brawls"
place = "random"
count = 6

[[event.calls]]
centre = "122"
call_type = "fight"
severity = 2

[[stream]]
name = "background"
calls_per_hour = 10
mix = { fight = 0.5, dispute = 0.3, critical_patient = 0.2 }
"""


def scenario() -> Scenario:
    return parse_scenario(tomllib.loads(EVENING))


def plan_at_call_sites(router: Router, spec: Scenario, seed: int, types: list[str]) -> Plan:
    """Posts at the road nodes of the drill's own police calls (where its incidents are)."""
    calls = Engine(router, spec, seed, DrillConfig(), None, None).calls
    lat = np.asarray(router.graph.node_lat)
    lon = np.asarray(router.graph.node_lon)
    sites: Counter[int] = Counter()
    for sc in calls:
        if sc.call.call_type.value in ("fight", "dispute"):
            sites[int(np.argmin(np.hypot(lat - sc.call.lat, lon - sc.call.lon)))] += 1
    nodes = [n for n, _ in sites.most_common(12)]
    doc: dict[str, Any] = plan_json(
        [(n, float(lat[n]), float(lon[n])) for n in nodes], month="2025-11", day_kind="weekday"
    )
    for post in doc["bands"][0]["posts"]:
        post["call_types"] = [{"call_type": t, "share": 1 / len(types)} for t in types]
    doc["graph"] = "synthetic city"
    return Plan.model_validate(doc)


def test_posts_at_the_incident_sites_bring_police_sooner(small_city: Router) -> None:
    spec = scenario()
    plan = plan_at_call_sites(small_city, spec, 4, ["fight", "dispute", "noise_complaint"])
    report = run_with_pivots(small_city, spec, 4, plan)
    without = run_batch(small_city, spec, 4)
    pv = report.pivots
    assert pv is not None
    assert pv.posts_standing_max == len(plan.bands[0].posts)
    assert pv.units_posted_max > 0
    assert pv.covered_types == ["dispute", "fight"]
    assert pv.unmapped_types == ["noise_complaint"]  # not a drill call type: said, not counted

    # The figures are the runs' own: recomputed here from the two reports.
    def covered(r: Any) -> bool:
        return bool({t.value for t in r.call_types} & {"fight", "dispute"})

    mine = [police_response_s(report, r) for r in report.responses if covered(r)]
    theirs = [police_response_s(without, r) for r in without.responses if covered(r)]
    mine_s = [x for x in mine if x is not None]
    theirs_s = [x for x in theirs if x is not None]
    assert pv.overall.with_posts.count == len(mine_s) == pv.covered > 5
    assert pv.overall.without_posts.count == len(theirs_s)
    assert pv.overall.with_posts.mean_s == round(float(np.mean(mine_s)), 3)
    assert pv.overall.without_posts.mean_s == round(float(np.mean(theirs_s)), 3)
    assert pv.overall.with_posts.median_s == round(float(np.median(mine_s)), 3)
    # Police standing where the calls come: faster on average, for the covered types.
    assert pv.overall.mean_delta_s is not None and pv.overall.mean_delta_s < 0
    assert pv.overall.paired > 0
    assert set(pv.by_type) == {"fight", "dispute"}
    n_fight = pv.by_type["fight"].with_posts.count
    assert 0 < n_fight <= pv.overall.with_posts.count
    # Existing summary keys stay; the run without posts is the plain batch drill.
    assert pv.summary_without["responses"] == without.summary.responses
    data = json.loads(report.model_dump_json())
    for key in ("responses", "whistles", "mean_arrival_s_with", "improved_share"):
        assert key in data["summary"]
    assert data["pivots"]["overall"]["with_posts"]["count"] == pv.covered
    page = render_html(report)
    assert "Pivot posts: with and without" in page and "noise_complaint" in page
    assert "Pivot posts" not in render_html(without)
    assert json.loads(without.model_dump_json())["pivots"] is None


def test_a_plan_covering_no_drill_type_reports_zero_covered(small_city: Router) -> None:
    spec = scenario()
    plan = plan_at_call_sites(small_city, spec, 4, ["theft"])
    pv = run_with_pivots(small_city, spec, 4, plan).pivots
    assert pv is not None
    assert pv.covered == 0 and pv.by_type == {}
    assert pv.overall.with_posts.count == pv.overall.without_posts.count == 0
    assert pv.overall.mean_delta_s is None


def test_drill_cli_with_pivots(small_city: Router, tmp_path: Path) -> None:
    from routing.graph import save
    from yishao.cli import app

    spec_file = tmp_path / "evening.toml"
    spec_file.write_text(EVENING, encoding="utf-8")
    graph = save(small_city.graph, tmp_path / "city.npz")
    plan = plan_at_call_sites(small_city, scenario(), 4, ["fight"])
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json(), encoding="utf-8")
    out = tmp_path / "r.html"
    argv = ["drill", "--batch", "--scenario", str(spec_file), "--graph", str(graph), "--seed",
            "4", "--pivots", str(plan_file), "--json", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pivots"]["covered_types"] == ["fight"]
    assert doc["pivots"]["covered"] > 0
    assert "Pivot posts: with and without" in out.read_text(encoding="utf-8")
