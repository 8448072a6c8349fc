"""History import: good files load, bad rows are refused by row and field, nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pivots.history import HistoryImportError, dump_history, load_history

HEADER = "id,call_type,lat,lon,occurred_at,outcome,area,synthetic\n"
GOOD = "a1,fight,30.06,119.96,2025-07-19T21:15:00+08:00,resolved_on_scene,market,false\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_csv_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "h.csv",
        HEADER + GOOD + "a2,noise,30.06,119.96,2025-07-19T22:00:00+08:00,no_action,,true\n",
    )
    records, report = load_history(path)
    assert [r.id for r in records] == ["a1", "a2"]
    assert records[1].area is None and records[1].synthetic
    assert records[0].occurred_at.utcoffset() is not None
    assert (report.rows, report.accepted, report.refused, report.synthetic) == (2, 2, 0, 1)


def test_bad_rows_named_by_row_and_field(tmp_path: Path) -> None:
    text = (
        HEADER
        + GOOD
        + (
            "a2,brawl,30.06,119.96,2025-07-19T21:15:00+08:00,resolved_on_scene,,false\n"
            "a3,fight,95.0,119.96,2025-07-19T21:15:00+08:00,resolved_on_scene,,false\n"
            "a4,fight,30.06,119.96,2025-07-19T21:15:00,resolved_on_scene,,false\n"
            "a1,fight,30.06,119.96,2025-07-19T21:15:00+08:00,resolved_on_scene,,false\n"
            "a6,fight,30.06,119.96,2025-07-19T21:15:00+08:00,,,false\n"
        )
    )
    path = write(tmp_path, "h.csv", text)
    with pytest.raises(HistoryImportError) as caught:
        load_history(path)
    report = caught.value.report
    assert report is not None
    assert (report.rows, report.accepted, report.refused) == (6, 1, 5)
    by_row = {e.row: e for e in report.errors}
    assert by_row[3].field == "call_type" and "'brawl' is not one of" in by_row[3].message
    assert by_row[4].field == "lat"
    assert by_row[5].field == "occurred_at" and "UTC offset" in by_row[5].message
    assert by_row[6].field == "id" and "duplicate" in by_row[6].message
    assert by_row[7].field == "outcome"
    assert "row 3 (id a2), field 'call_type'" in str(caught.value)
    # keep_good keeps the good row and still reports every refused one.
    records, kept = load_history(path, keep_good=True)
    assert [r.id for r in records] == ["a1"]
    assert kept.refused == 5 and kept.kept_good_rows


def test_bad_header_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", "id,call_type,lat,when,outcome,colour\n")
    with pytest.raises(
        HistoryImportError,
        match=r"missing column\(s\) lon, occurred_at; "
        r"unknown column\(s\) when, colour",
    ):
        load_history(path)
    with pytest.raises(HistoryImportError, match="empty file"):
        load_history(write(tmp_path, "e.csv", ""))


def test_json_rows_and_errors(tmp_path: Path) -> None:
    good = {
        "id": "j1",
        "call_type": "dispute",
        "lat": 30.0,
        "lon": 120.0,
        "occurred_at": "2025-12-20T10:00:00+08:00",
        "outcome": "referred",
    }
    path = write(
        tmp_path,
        "h.json",
        json.dumps(
            {
                "records": [
                    good,
                    {**good, "id": "j2", "lon": "east"},
                    7,
                    {**good, "id": "j4", "colour": "red"},
                ]
            }
        ),
    )
    records, report = load_history(path, keep_good=True)
    assert [r.id for r in records] == ["j1"]
    assert {(e.row, e.field) for e in report.errors} == {(2, "lon"), (3, "(row)"), (4, "colour")}
    with pytest.raises(HistoryImportError, match="not JSON"):
        load_history(write(tmp_path, "b.json", "{"))
    with pytest.raises(HistoryImportError, match="expected a list"):
        load_history(write(tmp_path, "o.json", '{"rows": []}'))
    with pytest.raises(HistoryImportError, match="unknown format"):
        load_history(write(tmp_path, "h.xlsx", ""))


def test_round_trip(tmp_path: Path, history: list) -> None:  # type: ignore[type-arg]
    sample = history[:50]
    for name in ("out.csv", "out.json"):
        back, report = load_history(dump_history(sample, tmp_path / name))
        assert back == sample and report.synthetic == 50
