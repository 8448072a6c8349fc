"""Plan table: the packaged table loads, rows combine, bad files are refused clearly."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from dispatch.core.plans import PlanError, PlanTable
from dispatch.models import Agency, CallType, UnitNeed, UnitType

A, U, C = Agency, UnitType, CallType
WHISTLE_TYPES = {
    C.DROWNING,
    C.FALL_FROM_HEIGHT,
    C.CRITICAL_PATIENT,
    C.FIRE,
    C.NATURAL_DISASTER,
    C.TRAFFIC_ACCIDENT_ENTRAPMENT,
}


@pytest.fixture(scope="module")
def table() -> PlanTable:
    return PlanTable.load()


def default_doc() -> dict[str, Any]:
    text = resources.files("dispatch.core").joinpath("plans.toml").read_text("utf-8")
    return tomllib.loads(text)


def needs(plan_needs: tuple[UnitNeed, ...]) -> dict[tuple[Agency, UnitType], int]:
    return {(n.agency, n.unit_type): n.count for n in plan_needs}


@pytest.mark.parametrize("call_type", list(CallType))
def test_every_type_has_a_plan_and_whistle_only_where_listed(
    table: PlanTable, call_type: CallType
) -> None:
    for severity in (None, 1, 2, 3, 4, 5):
        plan = table.plan_for([call_type], severity)
        assert plan.needs, call_type
        assert plan.whistle == (call_type in WHISTLE_TYPES)
        assert list(plan.agencies) == sorted(set(plan.agencies))
        assert set(plan.agencies) == {n.agency for n in plan.needs}


@pytest.mark.parametrize(
    ("call_types", "severity", "expected", "whistle", "priority"),
    [
        (
            [C.TRAFFIC_ACCIDENT_ENTRAPMENT],
            None,
            {
                (A.TRAFFIC, U.TRAFFIC_POLICE_CAR): 1,
                (A.EMS, U.AMBULANCE): 1,
                (A.FIRE, U.FIRE_RESCUE): 1,
            },
            True,
            1,
        ),
        (
            [C.FIRE],
            3,
            {
                (A.FIRE, U.FIRE_ENGINE): 1,
                (A.EMS, U.AMBULANCE): 1,
                (A.TRAFFIC, U.TRAFFIC_POLICE_CAR): 1,
            },
            True,
            1,
        ),
        (
            [C.FIRE],
            4,
            {
                (A.FIRE, U.FIRE_ENGINE): 2,
                (A.FIRE, U.LADDER): 1,
                (A.EMS, U.AMBULANCE): 1,
                (A.TRAFFIC, U.TRAFFIC_POLICE_CAR): 1,
            },
            True,
            1,
        ),
        ([C.LABOUR_DISPUTE], 2, {(A.POLICE, U.PATROL_CAR): 1}, False, 4),
        (
            [C.LABOUR_DISPUTE],
            3,
            {(A.POLICE, U.PATROL_CAR): 1, (A.POLICE, U.MEDIATOR): 1},
            False,
            3,
        ),
        ([C.FIGHT], None, {(A.POLICE, U.PATROL_CAR): 1}, False, 3),
        ([C.THEFT], 5, {(A.POLICE, U.PATROL_CAR): 1}, False, 4),
        ([C.NOISE], None, {(A.POLICE, U.PATROL_CAR): 1}, False, 5),
        ([C.OTHER], None, {(A.POLICE, U.PATROL_CAR): 1}, False, 4),
        (
            [C.CRITICAL_PATIENT],
            None,
            {(A.EMS, U.AMBULANCE): 1, (A.TRAFFIC, U.TRAFFIC_POLICE_CAR): 1},
            True,
            1,
        ),
        # Combination: union of needs, max count, whistle if any, min priority number.
        (
            [C.TRAFFIC_ACCIDENT, C.FIRE, C.TRAFFIC_ACCIDENT],
            4,
            {
                (A.FIRE, U.FIRE_ENGINE): 2,
                (A.FIRE, U.LADDER): 1,
                (A.EMS, U.AMBULANCE): 1,
                (A.TRAFFIC, U.TRAFFIC_POLICE_CAR): 1,
            },
            True,
            1,
        ),
        (
            [C.NOISE, C.FIGHT],
            None,
            {(A.POLICE, U.PATROL_CAR): 1},
            False,
            3,
        ),
        (
            [C.FIGHT, C.CRITICAL_PATIENT],
            4,
            {
                (A.POLICE, U.PATROL_CAR): 2,
                (A.EMS, U.AMBULANCE): 1,
                (A.TRAFFIC, U.TRAFFIC_POLICE_CAR): 1,
            },
            True,
            1,
        ),
    ],
)
def test_plan_for(
    table: PlanTable,
    call_types: list[CallType],
    severity: int | None,
    expected: dict[tuple[Agency, UnitType], int],
    whistle: bool,
    priority: int,
) -> None:
    plan = table.plan_for(call_types, severity)
    assert needs(plan.needs) == expected
    assert plan.whistle is whistle
    assert plan.priority == priority
    assert plan.call_types == tuple(sorted(set(call_types)))
    assert plan.agencies == tuple(sorted({a for a, _ in expected}))


def test_plan_is_order_independent(table: PlanTable) -> None:
    a = table.plan_for([C.FIRE, C.DROWNING, C.FIGHT], 5)
    b = table.plan_for([C.FIGHT, C.FIRE, C.DROWNING, C.FIRE], 5)
    assert a == b


@pytest.mark.parametrize("severity", [0, 6, -1])
def test_plan_for_rejects_bad_severity(table: PlanTable, severity: int) -> None:
    with pytest.raises(ValueError, match="severity"):
        table.plan_for([C.FIRE], severity)


def test_plan_for_needs_a_type(table: PlanTable) -> None:
    with pytest.raises(ValueError, match="at least one"):
        table.plan_for([], 3)


def test_override_file_loads(tmp_path: Path) -> None:
    text = resources.files("dispatch.core").joinpath("plans.toml").read_text("utf-8")
    text = text.replace(
        'call_type = "noise"\n# Least urgent: one car when one is free.\npriority = 5',
        'call_type = "noise"\npriority = 4',
    )
    path = tmp_path / "plans.toml"
    path.write_text(text, "utf-8")
    table = PlanTable.load(path)
    assert table.source == str(path)
    assert table.plan_for([C.NOISE], None).priority == 4


def _mutated(mutate: Any) -> dict[str, Any]:
    doc = default_doc()
    mutate(doc["plan"])
    return doc


def _row_index(rows: list[dict[str, Any]], call_type: str) -> int:
    return next(i for i, r in enumerate(rows) if r["call_type"] == call_type)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: rows[0].update(call_type="meteor"), r"row 1 \(meteor\).*call_type"),
        (
            lambda rows: rows[0]["needs"][0].update(unit_type="tank"),
            r"row 1 \(traffic_accident\).*unit_type",
        ),
        (
            lambda rows: rows[0]["needs"][0].update(agency="army"),
            r"row 1 \(traffic_accident\).*agency",
        ),
        (
            lambda rows: rows[0]["needs"][0].update(agency="fire"),
            r"row 1 .*traffic_police_car belongs to agency traffic, not fire",
        ),
        (lambda rows: rows[0]["needs"][0].update(cnt=2), r"row 1 .*cnt"),
        (lambda rows: rows[0].update(colour="red"), r"row 1 .*colour"),
        (lambda rows: rows[0].update(priority=0), r"row 1 .*priority"),
        (lambda rows: rows[0].update(min_severity=6), r"row 1 .*min_severity"),
        (lambda rows: rows[0].pop("whistle"), r"row 1 .*base row must set priority and whistle"),
        (lambda rows: rows.append(dict(rows[0])), r"duplicate row"),
        (
            lambda rows: rows.pop(_row_index(rows, "theft")),
            r"no base row .*'theft'",
        ),
        (lambda rows: rows[0]["needs"].append(dict(rows[0]["needs"][0])), "listed twice"),
        (lambda rows: rows.__setitem__(0, "fire"), "row 1 is not a table"),
    ],
)
def test_bad_rows_are_refused_naming_file_and_row(mutate: Any, message: str) -> None:
    with pytest.raises(PlanError, match=message) as info:
        PlanTable.from_dict(_mutated(mutate), source="override.toml")
    assert str(info.value).startswith("override.toml: ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("plan = [", "not valid TOML"),
        ("[[rows]]\ncall_type = 'fire'\n", "unknown top-level key"),
        ("", "no \\[\\[plan\\]\\] rows"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, "utf-8")
    with pytest.raises(PlanError, match=message) as info:
        PlanTable.load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read"):
        PlanTable.load(tmp_path / "nope.toml")
