"""Compounds: point-in-polygon at edges and holes, gates, the file format, need-to-know types,
and the property team's transitions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch.core import property as team
from dispatch.core.compounds import (
    NEVER_PROPERTY,
    PROPERTY_CALL_TYPES,
    CompoundError,
    CompoundIndex,
    least_view,
    parse_feature_collection,
    property_may_see,
)
from dispatch.errors import ConflictError
from dispatch.models import (
    CallRecord,
    CallType,
    Centre,
    Incident,
    IncidentStatus,
    PropertyStatus,
)

T0 = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
# A square 0.01 deg on a side with a square hole in the middle (the lake), lon/lat.
OUTER = [[121.40, 31.20], [121.41, 31.20], [121.41, 31.21], [121.40, 31.21], [121.40, 31.20]]
HOLE = [
    [121.404, 31.204], [121.406, 31.204], [121.406, 31.206], [121.404, 31.206], [121.404, 31.204]
]  # fmt: skip


def feature(cid: str, rings: list[Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": cid, "name": f"compound {cid}", **props},
        "geometry": {"type": "Polygon", "coordinates": rings},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


@pytest.fixture
def index() -> CompoundIndex:
    far = [[[121.50, 31.30], [121.51, 31.30], [121.51, 31.31], [121.50, 31.30]]]
    return CompoundIndex.of(
        parse_feature_collection(
            collection(
                feature("C1", [OUTER, HOLE], members=["guard-1"]),
                feature("C2", far, gates=[{"lat": 31.32, "lon": 121.52, "name": "north"}]),
            )
        ),
        gate_distance_m=30,
    )


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (31.202, 121.402, "C1"),  # inside
        (31.20, 121.405, "C1"),  # on the outer edge: inside
        (31.20, 121.40, "C1"),  # on a corner
        (31.205, 121.405, None),  # in the hole
        (31.204, 121.405, "C1"),  # on the hole's edge: the compound's boundary, inside
        (31.199, 121.405, None),  # 110 m south
        (31.32, 121.52, "C2"),  # at the gate
        (31.3202, 121.52, "C2"),  # 22 m from the gate
        (31.3205, 121.52, None),  # 55 m from the gate
    ],
)
def test_locate(index: CompoundIndex, lat: float, lon: float, expected: str | None) -> None:
    assert index.locate(lat, lon) == expected


def test_an_empty_index_locates_nothing() -> None:
    assert CompoundIndex.of([]).locate(31.2, 121.4) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a GeoJSON FeatureCollection"),
        ({"type": "FeatureCollection"}, "no features list"),
        (collection({"type": "Feature", "geometry": None}), "feature 0: no properties"),
        (
            collection(feature("C1", [OUTER]), {"type": "Feature", "properties": {"id": "C2"}}),
            "feature 1 (id 'C2'): properties.name is missing",
        ),
        (
            collection(
                {**feature("C7", [OUTER]), "geometry": {"type": "Point", "coordinates": [1, 2]}}
            ),
            "feature 0 (id 'C7'): geometry",
        ),
        (
            collection(feature("C8", [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]])),
            "feature 0 (id 'C8'): geometry: Value error, geometry is not a valid area",
        ),
        (collection(feature("C1", [OUTER]), feature("C1", [OUTER])), "appears twice"),
        (collection(feature("bad id!", [OUTER])), "feature 0 (id 'bad id!'): id"),
    ],
)
def test_a_bad_file_names_the_feature(data: Any, message: str) -> None:
    with pytest.raises(CompoundError) as err:
        parse_feature_collection(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_multipolygons_load() -> None:
    data = collection(
        {
            "type": "Feature",
            "properties": {"id": "M1", "name": "two blocks", "company": "Vanke", "contact": "110"},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [OUTER],
                    [[[121.5, 31.3], [121.51, 31.3], [121.51, 31.31], [121.5, 31.3]]],
                ],
            },
        }
    )
    [m] = parse_feature_collection(data)
    assert m.company == "Vanke" and CompoundIndex.of([m]).locate(31.202, 121.402) == "M1"


def test_the_compound_list_never_holds_the_excluded_types() -> None:
    assert not {t.value for t in PROPERTY_CALL_TYPES} & NEVER_PROPERTY
    assert not {t.value for t in CallType} & NEVER_PROPERTY - {t.value for t in CallType}
    assert property_may_see([CallType.THEFT])
    assert property_may_see([CallType.DISPUTE, CallType.NOISE])
    # One type off the list hides the whole incident.
    assert not property_may_see([CallType.THEFT, CallType.CRITICAL_PATIENT])
    assert not property_may_see([CallType.OTHER])
    assert not property_may_see([])


def incident(**update: Any) -> Incident:
    call = CallRecord(
        call_id="c1",
        centre=Centre.FIRE,
        call_type=CallType.THEFT,
        lat=31.202,
        lon=121.402,
        received_at=T0,
        description="the thief is my neighbour Wang",
        caller_phone_masked="139******78",
    )
    base = Incident(
        id="I1",
        version=1,
        calls=[call],
        call_types=[CallType.THEFT],
        lat=31.202,
        lon=121.402,
        created_at=T0,
        updated_at=T0,
        last_call_at=T0,
        compound_id="C1",
    )
    return base.model_copy(update=update)


def test_least_view_has_no_caller() -> None:
    view = least_view(incident())
    assert view.calls == [] and view.timeline == [] and view.assignments == []
    assert (view.lat, view.lon, view.call_types, view.created_at) == (
        31.202, 121.402, [CallType.THEFT], T0
    )  # fmt: skip
    assert "Wang" not in view.model_dump_json() and "139" not in view.model_dump_json()


def test_the_team_lifecycle(index: CompoundIndex) -> None:
    c1 = index.compounds["C1"]
    inc = incident()
    assert team.offer(inc, c1).offerable
    assert not team.offer(
        inc.model_copy(update={"call_types": [CallType.CRITICAL_PATIENT]}), c1
    ).offerable
    assert not team.offer(inc, index.compounds["C2"].model_copy(update={"members": []})).offerable
    joined = team.join(inc, c1, now=T0, actor="disp-110", task="hold the garage exits")
    assert team.team_active(joined) and joined.version == 2
    with pytest.raises(ConflictError, match="already joined"):
        team.join(joined, c1, now=T0, actor="disp-110")
    with pytest.raises(ConflictError, match="from joined to on_scene"):
        team.answer(joined, PropertyStatus.ON_SCENE, now=T0)
    with pytest.raises(ValueError, match=r"^status"):
        team.answer(joined, PropertyStatus.RELEASED, now=T0)
    step = team.answer(joined, PropertyStatus.ACCEPTED, now=T0 + timedelta(seconds=20))
    step = team.answer(step, PropertyStatus.ON_SCENE, now=T0 + timedelta(seconds=90))
    step = team.answer(step, PropertyStatus.HOLDING, now=T0 + timedelta(seconds=100))
    step = team.answer(step, PropertyStatus.HANDED_OVER, now=T0 + timedelta(seconds=300))
    with pytest.raises(ValueError, match=r"^outcome"):
        team.answer(step, PropertyStatus.CLOSED, now=T0)
    done = team.answer(
        step, PropertyStatus.CLOSED, now=T0 + timedelta(seconds=400), outcome="held two"
    )
    assert done.property_join is not None and done.property_join.outcome == "held two"
    assert not team.team_active(done)
    with pytest.raises(ConflictError):
        team.answer(done, PropertyStatus.CLOSED, now=T0, outcome="again")
    figures = team.counts([done, inc])
    assert figures.joined == 1 and figures.first_contact_s == (90.0,)
    assert figures.resolved_without_police == 1


def test_release_and_close_end_access(index: CompoundIndex) -> None:
    joined = team.join(incident(), index.compounds["C1"], now=T0, actor="d")
    released = team.release(joined, now=T0)
    assert not team.team_active(released)
    with pytest.raises(ConflictError):
        team.release(released, now=T0)
    closed = joined.model_copy(update={"status": IncidentStatus.CLOSED})
    assert not team.team_active(closed)
    with pytest.raises(ConflictError, match="closed"):
        team.join(incident(status=IncidentStatus.CLOSED), index.compounds["C1"], now=T0, actor="d")
