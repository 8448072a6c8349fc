"""Unit ranking: order by ETA, stale and unreachable flags, availability, stand-ins."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest

from dispatch.core.recommend import Travel, origin_for, rank_units
from dispatch.models import Agency, Position, Unit, UnitNeed, UnitStatus, UnitType

A, U = Agency, UnitType
STALE_S = 300.0
STATION = (30.05, 119.95)
POS = (30.06, 119.97)


def unit(
    unit_id: str,
    unit_type: UnitType = U.AMBULANCE,
    agency: Agency = A.EMS,
    *,
    status: UnitStatus = UnitStatus.AVAILABLE,
    fix_age_s: float | None = 10,
    now: datetime,
    station: bool = True,
) -> Unit:
    position = None
    if fix_age_s is not None:
        position = Position(lat=POS[0], lon=POS[1], at=now - timedelta(seconds=fix_age_s))
    return Unit(
        id=unit_id,
        agency=agency,
        type=unit_type,
        status=status,
        position=position,
        station_lat=STATION[0] if station else None,
        station_lon=STATION[1] if station else None,
    )


def tr(eta_s: float, distance_m: float | None = None, from_station: bool = False) -> Travel:
    return Travel(
        eta_s=eta_s,
        distance_m=eta_s * 10 if distance_m is None else distance_m,
        from_station=from_station,
    )


@pytest.mark.parametrize(
    ("fix_age_s", "station", "origin", "stale"),
    [
        (0, True, POS, False),
        (300, True, POS, False),  # exactly the limit is still fresh
        (300.5, True, STATION, True),
        (3600, True, STATION, True),
        (None, True, STATION, True),
        (3600, False, POS, True),  # stale fix beats nothing
        (None, False, None, True),
        (-20, True, POS, False),  # a terminal clock ahead of ours
    ],
)
def test_origin_for(
    t0: datetime,
    fix_age_s: float | None,
    station: bool,
    origin: tuple[float, float] | None,
    stale: bool,
) -> None:
    u = unit("A1", fix_age_s=fix_age_s, station=station, now=t0)
    assert origin_for(u, t0, STALE_S) == (origin, stale)


def test_rank_order_ties_and_unreachable_last(t0: datetime) -> None:
    units = [
        unit("A-c", now=t0),
        unit("A-a", now=t0),
        unit("A-b", now=t0),
        unit("A-far", now=t0),
        unit("A-cut", now=t0),
        unit("A-unknown", now=t0),
    ]
    travel = {
        "A-c": tr(120, 900),
        "A-a": tr(120, 900),  # tie with A-c on eta and distance: id decides
        "A-b": tr(120, 800),  # same eta, shorter: first
        "A-far": tr(600),
        "A-cut": tr(math.inf, math.inf),
    }
    (rec,) = rank_units(
        units=units,
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=2)],
        travel=travel,
        now=t0,
        stale_after_s=STALE_S,
    )
    assert [c.unit_id for c in rec.candidates] == [
        "A-b",
        "A-a",
        "A-c",
        "A-far",
        "A-cut",
        "A-unknown",
    ]
    assert [c.reachable for c in rec.candidates] == [True] * 4 + [False] * 2
    assert rec.suggested == ["A-b", "A-a"]
    assert rec.missing == []
    assert "no road path" in rec.candidates[4].reason
    assert "no travel time" in rec.candidates[5].reason


@pytest.mark.parametrize(
    ("status", "listed"),
    [
        (UnitStatus.AVAILABLE, True),
        (UnitStatus.RETURNING, True),
        (UnitStatus.DISPATCHED, False),
        (UnitStatus.EN_ROUTE, False),
        (UnitStatus.ON_SCENE, False),
        (UnitStatus.TRANSPORTING, False),
        (UnitStatus.AT_HOSPITAL, False),
        (UnitStatus.OUT_OF_SERVICE, False),
    ],
)
def test_only_assignable_units(t0: datetime, status: UnitStatus, listed: bool) -> None:
    units = [unit("A1", status=status, now=t0), unit("A2", now=t0)]
    (rec,) = rank_units(
        units=units,
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=2)],
        travel={"A1": tr(10), "A2": tr(20)},
        now=t0,
        stale_after_s=STALE_S,
    )
    assert ("A1" in [c.unit_id for c in rec.candidates]) is listed
    assert ("A1" in rec.suggested) is listed
    assert len(rec.missing) == (0 if listed else 1)


def test_other_agencies_and_types_are_left_out(t0: datetime) -> None:
    units = [
        unit("P1", U.PATROL_CAR, A.POLICE, now=t0),
        unit("F1", U.FIRE_ENGINE, A.FIRE, now=t0),
        unit("A1", now=t0),
    ]
    recs = rank_units(
        units=units,
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)],
        travel={u.id: tr(60) for u in units},
        now=t0,
        stale_after_s=STALE_S,
    )
    assert [r.agency for r in recs] == [A.EMS]
    assert [c.unit_id for c in recs[0].candidates] == ["A1"]


def test_stale_flag_and_age(t0: datetime) -> None:
    units = [unit("A-fresh", fix_age_s=30, now=t0), unit("A-old", fix_age_s=900, now=t0)]
    units.append(unit("A-none", fix_age_s=None, now=t0))
    (rec,) = rank_units(
        units=units,
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)],
        travel={
            "A-fresh": tr(300),
            "A-old": tr(100, from_station=True),
            "A-none": tr(200, from_station=True),
        },
        now=t0,
        stale_after_s=STALE_S,
    )
    by_id = {c.unit_id: c for c in rec.candidates}
    assert by_id["A-fresh"].stale is False and by_id["A-fresh"].position_age_s == 30
    assert by_id["A-old"].stale is True and by_id["A-old"].position_age_s == 900
    assert by_id["A-old"].from_station is True
    assert "(stale)" in by_id["A-old"].reason and "from station" in by_id["A-old"].reason
    assert by_id["A-none"].stale is True and by_id["A-none"].position_age_s is None
    assert rec.suggested == ["A-old"]  # stale units still rank by their ETA


def test_several_agencies_and_needs(t0: datetime) -> None:
    units = [
        unit("F-e1", U.FIRE_ENGINE, A.FIRE, now=t0),
        unit("F-e2", U.FIRE_ENGINE, A.FIRE, now=t0),
        unit("F-l1", U.LADDER, A.FIRE, now=t0),
        unit("T-1", U.TRAFFIC_POLICE_CAR, A.TRAFFIC, now=t0),
        unit("A-1", now=t0),
    ]
    needs = [
        UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1),
        UnitNeed(agency=A.FIRE, unit_type=U.FIRE_ENGINE, count=2),
        UnitNeed(agency=A.FIRE, unit_type=U.LADDER, count=1),
        UnitNeed(agency=A.TRAFFIC, unit_type=U.TRAFFIC_POLICE_CAR, count=1),
    ]
    travel = {"F-e1": tr(400), "F-e2": tr(200), "F-l1": tr(100), "T-1": tr(50), "A-1": tr(70)}
    recs = rank_units(units=units, needs=needs, travel=travel, now=t0, stale_after_s=STALE_S)
    assert [r.agency for r in recs] == [A.EMS, A.FIRE, A.TRAFFIC]
    fire = recs[1]
    assert [c.unit_id for c in fire.candidates] == ["F-l1", "F-e2", "F-e1"]
    assert fire.suggested == ["F-e2", "F-e1", "F-l1"]  # in the order of the needs
    assert fire.missing == []


@pytest.mark.parametrize(
    ("rescue_available", "engines", "engine_need", "suggested", "missing"),
    [
        # A rescue truck is available: no stand-in.
        (True, 2, 0, ["R-1"], []),
        # No rescue truck: the nearest engine stands in.
        (False, 2, 0, ["E-near"], []),
        # Engines are needed as engines too: both go as engines, none left to stand in.
        (
            False,
            2,
            2,
            [
                "E-near",
                "E-far",
            ],
            [(U.FIRE_RESCUE, 1)],
        ),
        # Three engines, two needed as engines: the third stands in.
        (False, 3, 2, ["E-near", "E-far", "E-third"], []),
        # Nothing at all.
        (False, 0, 0, [], [(U.FIRE_RESCUE, 1)]),
    ],
)
def test_substitution(
    t0: datetime,
    rescue_available: bool,
    engines: int,
    engine_need: int,
    suggested: list[str],
    missing: list[tuple[UnitType, int]],
) -> None:
    units = [
        unit(
            "R-1",
            U.FIRE_RESCUE,
            A.FIRE,
            status=UnitStatus.AVAILABLE if rescue_available else UnitStatus.ON_SCENE,
            now=t0,
        )
    ]
    names = ["E-near", "E-far", "E-third"][:engines]
    units += [unit(n, U.FIRE_ENGINE, A.FIRE, now=t0) for n in names]
    travel = {"R-1": tr(500), "E-near": tr(100), "E-far": tr(200), "E-third": tr(300)}
    needs = [UnitNeed(agency=A.FIRE, unit_type=U.FIRE_RESCUE, count=1)]
    if engine_need:
        needs.append(UnitNeed(agency=A.FIRE, unit_type=U.FIRE_ENGINE, count=engine_need))
    (rec,) = rank_units(units=units, needs=needs, travel=travel, now=t0, stale_after_s=STALE_S)
    assert rec.suggested == suggested
    assert [(m.unit_type, m.count) for m in rec.missing] == missing
    subs = [c for c in rec.candidates if c.substitute_for is not None]
    stand_ins = set(suggested) - {"R-1"} - set(names[:engine_need])
    assert {c.unit_id for c in subs} == stand_ins
    for c in subs:
        assert c.substitute_for == U.FIRE_RESCUE and "standing in for fire_rescue" in c.reason
    assert len({c.unit_id for c in rec.candidates}) == len(rec.candidates)


def test_unreachable_is_never_suggested_and_no_substitute_for_ambulance(t0: datetime) -> None:
    units = [unit("A-cut", now=t0), unit("E-1", U.FIRE_ENGINE, A.FIRE, now=t0)]
    recs = rank_units(
        units=units,
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)],
        travel={"A-cut": tr(math.inf, math.inf), "E-1": tr(10)},
        now=t0,
        stale_after_s=STALE_S,
    )
    assert recs[0].suggested == []
    assert [c.unit_id for c in recs[0].candidates] == ["A-cut"]
    assert recs[0].missing == [UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)]


def test_duplicate_needs_are_refused(t0: datetime) -> None:
    need = UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)
    with pytest.raises(ValueError, match="twice"):
        rank_units(units=[], needs=[need, need], travel={}, now=t0, stale_after_s=STALE_S)


def test_unreachable_serialises_as_null(t0: datetime) -> None:
    (rec,) = rank_units(
        units=[unit("A-cut", now=t0)],
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)],
        travel={},
        now=t0,
        stale_after_s=STALE_S,
    )
    data = rec.model_dump(mode="json")
    assert data["candidates"][0]["eta_s"] is None
    assert data["candidates"][0]["reachable"] is False


def test_unreachable_is_valid_json(t0: datetime) -> None:
    (rec,) = rank_units(
        units=[unit("A-cut", now=t0)],
        needs=[UnitNeed(agency=A.EMS, unit_type=U.AMBULANCE, count=1)],
        travel={},
        now=t0,
        stale_after_s=STALE_S,
    )
    data = json.loads(rec.model_dump_json())  # strict JSON, no Infinity
    assert data["candidates"][0]["distance_m"] is None
    assert math.isinf(rec.candidates[0].eta_s)  # Python callers still see inf
