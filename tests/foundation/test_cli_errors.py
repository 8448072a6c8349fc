"""Every command that reads a file answers a missing or malformed one with one line and exit 2.

The cases are checked against the commands themselves: a new command taking a ``Path`` that is
read (not written) fails this module until it has a case here.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from routing import graph as graph_mod
from routing.synthetic import synthetic_city
from tests.utils import TEST_SECRET
from yishao.cli import app, main

# Parameters that name files a command writes, not reads.
WRITTEN = {"out"}

# (command, parameter) -> the arguments, with {f} for the file under test and {g} for a good
# graph (the other inputs are valid, so the error can only be about {f}).
CASES: dict[tuple[str, str], list[str]] = {
    ("call", "file"): ["call", "{f}"],
    ("route", "graph"): ["route", "--graph", "{f}", "--from", "31.23,121.47", "--to", "31.2,121.4"],
    ("drill", "graph"): ["drill", "--batch", "--graph", "{f}", "--scenario", "taxi-rollover"],
    ("drill", "pivots"): ["drill", "--batch", "--pivots", "{f}", "--scenario", "taxi-rollover"],
    ("drill", "osm"): ["drill", "--engine", "sumo", "--osm", "{f}", "--scenario", "taxi-rollover"],
    ("fleet load", "file"): ["fleet", "load", "{f}"],
    ("hospitals load", "file"): ["hospitals", "load", "{f}"],
    ("roster load", "file"): ["roster", "load", "{f}"],
    ("compounds load", "file"): ["compounds", "load", "{f}"],
    ("graph build", "osm"): ["graph", "build", "--osm", "{f}", "--out", "{tmp}/g.npz"],
    ("graph info", "graph_file"): ["graph", "info", "{f}"],
    ("sumo build", "osm"): ["sumo", "build", "--osm", "{f}", "--out", "{tmp}/net"],
    ("pivots plan", "graph"): ["pivots", "plan", "--graph", "{f}", "--synthetic-history"],
    ("pivots plan", "history"): ["pivots", "plan", "--graph", "{g}", "--history", "{f}"],
    ("pivots plan", "previous"): [
        "pivots", "plan", "--graph", "{g}", "--synthetic-history", "--previous", "{f}",
    ],
    ("pivots backtest", "graph"): ["pivots", "backtest", "--graph", "{f}", "--synthetic-history"],
    ("pivots backtest", "history"): ["pivots", "backtest", "--graph", "{g}", "--history", "{f}"],
    ("pivots show", "plan_file"): ["pivots", "show", "{f}"],
    ("pivots demand", "graph"): ["pivots", "demand", "--graph", "{f}", "--synthetic-history"],
    ("pivots demand", "history"): ["pivots", "demand", "--graph", "{g}", "--history", "{f}"],
}  # fmt: skip


def _leaves(
    t: typer.Typer, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, Callable[..., Any]]]:
    for c in t.registered_commands:
        assert c.callback is not None
        yield " ".join((*prefix, c.name or c.callback.__name__.replace("_", "-"))), c.callback
    for g in t.registered_groups:
        assert g.typer_instance is not None and g.name is not None
        yield from _leaves(g.typer_instance, (*prefix, g.name))


def _read_paths(callback: Callable[..., Any]) -> list[str]:
    out = []
    for name, hint in typing.get_type_hints(callback, include_extras=True).items():
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if Path in (typing.get_args(base) or (base,)) and name not in WRITTEN:
            out.append(name)
    return out


def test_every_command_reading_a_file_has_a_case() -> None:
    found = {(cmd, p) for cmd, cb in _leaves(app) for p in _read_paths(cb)}
    assert found == set(CASES)


@pytest.fixture(scope="module")
def good_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return graph_mod.save(synthetic_city(24, seed=1), tmp_path_factory.mktemp("g") / "city.npz")


MALFORMED = {
    ".json": '{"calls": [1, 2,',
    ".npz": "PK\x03\x04 this is not a zip archive",
    ".osm": "<osm><node id='1' lat='x'",
    ".csv": "\x00\x01\x02 not,a\nhistory",
}


def _suffix(cmd: str, param: str) -> str:
    if param in {"osm"}:
        return ".osm"
    if param in {"graph", "graph_file"}:
        return ".npz"
    if param == "history":
        return ".csv"
    return ".json"


@pytest.mark.parametrize("kind", ["missing", "malformed"])
@pytest.mark.parametrize(("cmd", "param"), sorted(CASES))
def test_bad_file_is_one_line_and_exit_2(
    cmd: str,
    param: str,
    kind: str,
    tmp_path: Path,
    good_graph: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("YISHAO_DEBUG", raising=False)
    monkeypatch.setenv("YISHAO_ENV", "test")
    monkeypatch.setenv("YISHAO_SECRET", TEST_SECRET)
    suffix = _suffix(cmd, param)
    bad = tmp_path / f"bad-input{suffix}"
    if kind == "malformed":
        bad.write_text(MALFORMED[suffix], encoding="utf-8")
    argv = [a.format(f=bad, g=good_graph, tmp=tmp_path) for a in CASES[(cmd, param)]]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code not in (0, None)
    err = capsys.readouterr().err
    # Progress lines may come first; the error is one line of its own, naming the file.
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, err
    assert errors[0].lstrip().startswith(("error:", "yishao: error:")), err
    assert "bad-input" in errors[0], err
    assert "Traceback" not in err and "│" not in err, err
