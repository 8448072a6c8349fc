"""``yishao pivots``: backtest JSON, plan, show, demand, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivots.cli import app
from routing import Router
from routing import graph as graph_mod
from yishao.cli import app as yishao

runner = CliRunner()
SMALL = ["--cover-s", "40", "--min-posts", "1", "--max-posts", "6"]


@pytest.fixture(scope="module")
def graph_file(town: Router, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return graph_mod.save(town.graph, tmp_path_factory.mktemp("g") / "town.npz")


def test_backtest_json(graph_file: Path) -> None:
    result = runner.invoke(
        yishao,
        [
            "pivots",
            "backtest",
            "--graph",
            str(graph_file),
            "--synthetic-history",
            "--seed",
            "1",
            "--history-months",
            "14",
            "--json",
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["months"] == ["2026-01", "2026-02"]
    for name in ("planner", "static"):
        assert {"hit_rate", "pai", "covered_share"} <= set(doc[name])
    assert set(doc["posts_by_month"]) == {"2026-01", "2026-02"}
    assert "SYNTHETIC" in doc["label"]


def test_plan_show_and_demand(graph_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app,
        [
            "plan",
            "--graph",
            str(graph_file),
            "--synthetic-history",
            "--seed",
            "2",
            "--history-months",
            "6",
            "--months",
            "2025-07..2025-08",
            "--out",
            str(out),
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert plan["months"] == ["2025-07", "2025-08"] and len(plan["bands"]) == 16
    assert "SYNTHETIC" in plan["history"]["label"]
    shown = runner.invoke(app, ["show", str(out), "--at", "2025-08-02T21:00:00+08:00", "--json"])
    assert shown.exit_code == 0, shown.output
    bands = json.loads(shown.stdout)
    assert [(b["month"], b["day_kind"], b["hours"]) for b in bands] == [
        ("2025-08", "weekend", "18:00-24:00")
    ]
    table = runner.invoke(app, ["show", str(out), "--month", "2025-07"])
    assert table.exit_code == 0 and "2025-07 weekday 00:00-06:00" in table.stdout
    missing = runner.invoke(app, ["show", str(out), "--month", "2025-01"])
    assert missing.exit_code == 2 and "not in the plan" in missing.output
    csv_out = tmp_path / "demand.csv"
    counted = runner.invoke(
        app,
        [
            "demand",
            "--graph",
            str(graph_file),
            "--synthetic-history",
            "--history-months",
            "1",
            "--out",
            str(csv_out),
        ],
    )
    assert counted.exit_code == 0, counted.output
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("# SYNTHETIC")
    assert lines[1] == "cell,month,day_kind,hours,call_type,count,low,high"
    assert len(lines) > 50


def test_bad_input_is_a_clear_error(graph_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "h.csv"
    bad.write_text(
        "id,call_type,lat,lon,occurred_at,outcome\n"
        "1,fight,30.06,119.96,2025-07-19T21:15:00,resolved_on_scene\n"
    )
    result = runner.invoke(app, ["plan", "--graph", str(graph_file), "--history", str(bad)])
    assert result.exit_code == 2
    assert "row 2 (id 1), field 'occurred_at'" in result.output
    none = runner.invoke(app, ["plan", "--graph", str(graph_file)])
    assert none.exit_code == 2 and "exactly one of" in none.output
    params = runner.invoke(
        app,
        [
            "backtest",
            "--graph",
            str(graph_file),
            "--synthetic-history",
            "--min-posts",
            "9",
            "--max-posts",
            "3",
        ],
    )
    assert params.exit_code == 2 and "min_posts 9 exceeds max_posts 3" in params.output
    nograph = runner.invoke(
        app, ["plan", "--graph", str(tmp_path / "no.npz"), "--synthetic-history"]
    )
    assert nograph.exit_code == 2 and "does not exist" in nograph.output
