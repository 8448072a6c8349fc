"""CLI: graph build / info and route, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import typer
from typer.testing import CliRunner

from routing import _osm
from routing.cli import graph_app, route

app = typer.Typer()
app.add_typer(graph_app, name="graph")
app.command("route")(route)
runner = CliRunner()


def test_every_command_has_help() -> None:
    for args in (["graph", "build", "--help"], ["graph", "info", "--help"], ["route", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert "Usage" in result.output


def test_build_info_and_route_json(nanjing_osm: Path, tmp_path: Path) -> None:
    out = tmp_path / "nj"
    result = runner.invoke(app, ["graph", "build", "--osm", str(nanjing_osm), "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["graph", "info", str(out) + ".npz", "--json"])
    facts = json.loads(info.output)
    assert facts["nodes"] > 200 and facts["signals"] >= 1
    routed = runner.invoke(
        app,
        [
            "route",
            "--graph",
            str(out) + ".npz",
            "--from",
            "32.036,118.788",
            "--to",
            "32.05,118.80",
            "--json",
        ],
    )
    assert routed.exit_code == 0, routed.output
    body = json.loads(routed.output)
    assert set(body) >= {"distance_m", "duration_s", "coordinates", "edges", "signals"}
    assert body["duration_s"] > 0


def test_route_off_graph_fails_cleanly(shanghai_cache: Path) -> None:
    result = runner.invoke(
        app, ["route", "--graph", str(shanghai_cache), "--from", "31.23,121.47", "--to", "35,121"]
    )
    assert result.exit_code == 1
    assert "outside the routing graph" in result.output


def test_bad_point_is_a_usage_error(shanghai_cache: Path) -> None:
    result = runner.invoke(
        app, ["route", "--graph", str(shanghai_cache), "--from", "north", "--to", "1,2"]
    )
    assert result.exit_code == 2


def test_place_offline_says_it_needs_internet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*_: object, **__: object) -> None:
        raise requests.exceptions.ConnectionError("Failed to resolve 'nominatim.openstreetmap.org'")

    monkeypatch.setattr(_osm.ox, "graph_from_place", offline)
    result = runner.invoke(
        app,
        ["graph", "build", "--place", "Fuyang District, Hangzhou", "--out", str(tmp_path / "f")],
    )
    assert result.exit_code == 1
    assert "needs internet" in " ".join(result.output.split())


def test_build_needs_exactly_one_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["graph", "build", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
