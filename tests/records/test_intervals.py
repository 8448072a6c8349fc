"""NFPA 1225/1710 intervals, the audit chain and the figures, on hand-made timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch.core.chain import GENESIS, AuditRow, first_break, row_hash
from dispatch.core.intervals import LoggedEvent, fold_incident
from dispatch.core.kpis import KpiRow, grouped, percentile, trend

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def ev(s: float, type: str, **data: Any) -> LoggedEvent:
    return LoggedEvent(type=type, ts=at(s), actor="t", data=data)


def incident(**extra: Any) -> dict[str, Any]:
    call = {"call_id": "c1", "centre": "120", "call_type": "critical_patient",
            "received_at": at(-5).isoformat(), **extra}  # fmt: skip
    return {"id": "i1", "calls": [call], "call_types": ["critical_patient"],
            "lat": 31.23, "lon": 121.47, "agencies": ["ems", "fire"]}  # fmt: skip


def timeline(**extra: Any) -> list[LoggedEvent]:
    inc = incident(**extra)
    return [
        ev(0, "incident.created", incident=inc, call=inc["calls"][0]),
        ev(40, "assignment.created", unit_id="A1", agency="ems", unit_type="ambulance",
           hospital={"id": "H1"}),
        ev(70, "assignment.created", unit_id="F1", agency="fire", unit_type="fire_engine"),
        ev(95, "unit.status", unit_id="A1", status="en_route", previous="dispatched"),
        ev(100, "unit.status", unit_id="F1", status="en_route", previous="dispatched"),
        ev(200, "assignment.created", unit_id="A2", agency="ems", unit_type="ambulance"),
        ev(210, "unit.status", unit_id="A2", status="en_route", previous="dispatched"),
        ev(400, "unit.status", unit_id="A2", status="on_scene", previous="en_route"),
        ev(455, "unit.status", unit_id="A1", status="on_scene", previous="en_route"),
        ev(20, "whistle.sounded", whistle={}),
        ev(30, "whistle.ack", whistle_id="w", summons={"agency": "fire"}, after_s=10),
        ev(35, "whistle.closed", whistle_id="w"),
        ev(96, "greenwave.request", status="granted"),
        ev(900, "incident.closed", incident=inc, reason="done"),
    ]  # fmt: skip


def test_intervals_per_agency_and_overall() -> None:
    rec = fold_incident("i1", timeline())
    ems, fire = rec.by_agency["ems"], rec.by_agency["fire"]
    # First call at -5 s; the agency's FIRST assigned unit, first en route, first on scene.
    assert ems.call_processing_s == 45 and ems.turnout_s == 55
    assert ems.travel_s == 305  # first en route 95 -> first on scene 400 (another unit)
    assert ems.total_s == 405
    assert fire.call_processing_s == 75 and fire.turnout_s == 30
    assert fire.travel_s is None and fire.total_s is None  # never reported on scene
    assert rec.overall.call_processing_s == 45 and rec.overall.total_s == 405
    assert rec.units["A1"]["status_times"]["on_scene"] == at(455).isoformat()
    assert rec.hospitals == ["H1"] and rec.greenwave["granted"] == 1
    assert rec.whistle is not None and rec.whistle["escalations"] == 0
    assert rec.closed_at == at(900) and not rec.exercise
    assert rec.call_type == "critical_patient"


def test_exercise_calls_mark_the_record() -> None:
    assert fold_incident("i1", timeline(exercise=True)).exercise


def test_chain_catches_an_edit_a_deletion_and_a_swap() -> None:
    rows, prev = [], GENESIS
    for seq in range(1, 6):
        h = row_hash(prev, seq=seq, event_id=f"{seq}-0", type="t", incident_id=None,
                     actor="a", ts="x", data="{}")  # fmt: skip
        rows.append(AuditRow(seq, f"{seq}-0", "t", None, "a", "x", "{}", prev, h))
        prev = h
    assert first_break(rows) is None
    edited = [*rows[:2], AuditRow(**{**rows[2].__dict__, "data": '{"x":1}'}), *rows[3:]]
    assert (b := first_break(edited)) is not None and b.seq == 3
    deleted = rows[:2] + rows[3:]
    assert (b := first_break(deleted)) is not None and b.seq == 4
    swapped = [rows[1], rows[0], *rows[2:]]
    assert (b := first_break(swapped)) is not None and b.seq == 2


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, None), ([7.0], 0.9, 7.0), ([1, 2, 3, 4], 0.5, 2.5), (list(range(11)), 0.9, 9.0)],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def row(i: int, agency: str, total: float | None, hour: int = 12) -> KpiRow:
    return KpiRow(f"i{i}", agency, "fire", "31.22,121.46", T0.replace(hour=hour),
                  60.0, 60.0, None if total is None else total - 120, total)  # fmt: skip


def test_grouped_by_agency_and_hour() -> None:
    rows = [row(1, "ems", 300), row(2, "ems", 500), row(3, "fire", None, hour=3)]
    by_agency = grouped(rows, "agency")
    assert by_agency["ems"]["incidents"] == 2
    assert by_agency["ems"]["total_s"] == {"n": 2, "median": 400.0, "p90": 480.0}
    assert by_agency["fire"]["total_s"]["median"] is None
    assert set(grouped(rows, "hour")) == {"03", "12"}


def test_trend_shows_a_v_shaped_reversal_year_over_year() -> None:
    def month(y: int, m: int) -> datetime:
        return datetime(y, m, 10, tzinfo=UTC)

    data = [(month(2025, 1), 400.0)] * 10 + [(month(2025, 2), 400.0)] * 10
    data += [(month(2026, 1), 460.0)] * 11 + [(month(2026, 2), 320.0)] * 9
    out = {t["period"]: t for t in trend(data, "month")}
    assert out["2026-01-01"]["median_total_yoy_pct"] == 15.0  # worse first
    assert out["2026-02-01"]["median_total_yoy_pct"] == -20.0  # then better
    assert out["2026-01-01"]["incidents_yoy_pct"] == 10.0
    assert out["2025-01-01"]["median_total_yoy_pct"] is None
    weeks = trend(data, "week")
    assert weeks[0]["period"] == "2025-01-06"  # a Monday
