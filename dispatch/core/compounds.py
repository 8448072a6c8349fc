"""Residential compounds: their polygons, their property company and team, and which
compound an incident is in.

Pure: no Redis, no web. A :class:`Compound` is one GeoJSON feature (a polygon or
multipolygon, holes allowed) with its company, its security team (the token subjects of
``property`` accounts) and its contact. A :class:`CompoundIndex` answers
:meth:`CompoundIndex.locate`: the compound whose area covers a point (the boundary counts as
inside, a hole does not), else the compound with a gate within ``gate_distance_m``.

Which incidents a property team may ever see is decided here too (:func:`property_may_see`):
only the call types on :data:`PROPERTY_CALL_TYPES`; the types a compound's guards must never
learn of (domestic violence, sexual offences, minors, criminal investigation) are not on it
and never can be (:data:`NEVER_PROPERTY`).

Errors: :class:`CompoundError` (a ``ValueError``) names the feature that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from shapely import STRtree
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.geometry import box as box_of
from shapely.geometry.base import BaseGeometry

from dispatch.models import ID_PATTERN, CallType, Incident, IncidentStatus

# The incident types a compound's team may be offered (the "compound list").
PROPERTY_CALL_TYPES: frozenset[CallType] = frozenset(
    {
        CallType.THEFT,
        CallType.FIGHT,
        CallType.FIRE,
        CallType.NOISE,
        CallType.DISPUTE,
        CallType.LABOUR_DISPUTE,
        CallType.FALL_FROM_HEIGHT,
    }
)
# Never shown to a property account, whatever a compound asks: the names a call type for
# these would have (none exists yet; a test keeps them off the list if one is added).
NEVER_PROPERTY: frozenset[str] = frozenset(
    {"domestic_violence", "sexual_offence", "minor", "minors", "criminal_investigation"}
)
DEFAULT_GATE_DISTANCE_M = 30.0
_EARTH_RADIUS_M = 6_371_008.8


class CompoundError(ValueError):
    """A compound (or a file of them) is not valid; the message names the feature."""


class Gate(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str | None = Field(None, max_length=120)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Compound(BaseModel):
    """One compound: its area (a GeoJSON Polygon or MultiPolygon, lon/lat), company, team."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    company: str | None = Field(None, max_length=200, description="the property company")
    contact: str | None = Field(None, max_length=200, description="the team's duty contact")
    members: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="token subjects of the compound's property accounts (real-name)",
    )
    gates: list[Gate] = Field(default_factory=list, max_length=100)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")

    @field_validator("geometry")
    @classmethod
    def _polygonal(cls, value: dict[str, Any]) -> dict[str, Any]:
        polygon_of(value)
        return value

    def area(self) -> Polygon | MultiPolygon:
        return polygon_of(self.geometry)


def polygon_of(geometry: Mapping[str, Any]) -> Polygon | MultiPolygon:
    """A GeoJSON geometry as a valid shapely (multi)polygon.

    Raises:
        CompoundError: not a Polygon/MultiPolygon, malformed, or not a valid area.
    """
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise CompoundError(f"geometry must be a Polygon or MultiPolygon, not {kind!r}")
    try:
        geom: BaseGeometry = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CompoundError(f"geometry is malformed: {exc}") from exc
    if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
        raise CompoundError("geometry is empty")
    if not geom.is_valid:
        raise CompoundError("geometry is not a valid area (self-intersecting or a bad hole)")
    return geom


def parse_feature_collection(data: Any) -> list[Compound]:
    """The compounds of a GeoJSON FeatureCollection (``properties``: ``id``, ``name``, and
    optionally ``company``, ``contact``, ``members``, ``gates`` as ``[{lat, lon, name?}]``).

    Raises:
        CompoundError: not a FeatureCollection, or a feature is wrong (the message names it by
            index and id), or two features share an id.
    """
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise CompoundError("not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise CompoundError("FeatureCollection has no features list")
    out: list[Compound] = []
    seen: set[str] = set()
    for index, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        label = f"feature {index}"
        if isinstance(props, dict) and props.get("id") is not None:
            label += f" (id {props.get('id')!r})"
        if not isinstance(props, dict):
            raise CompoundError(f"{label}: no properties")
        for required in ("id", "name"):
            if not props.get(required):
                raise CompoundError(f"{label}: properties.{required} is missing")
        try:
            compound = Compound.model_validate({**props, "geometry": feature.get("geometry")})
        except ValueError as exc:
            raise CompoundError(f"{label}: {_first_error(exc)}") from exc
        if compound.id in seen:
            raise CompoundError(f"{label}: id {compound.id!r} appears twice")
        seen.add(compound.id)
        out.append(compound)
    return out


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "feature"
        return f"{where}: {first.get('msg', exc)}"
    return str(exc)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class CompoundIndex:
    """The compounds, indexed for :meth:`locate` (an STR-tree over their areas)."""

    compounds: Mapping[str, Compound]
    gate_distance_m: float = DEFAULT_GATE_DISTANCE_M
    _ids: tuple[str, ...] = ()
    _areas: tuple[Polygon | MultiPolygon, ...] = ()
    _tree: STRtree | None = None
    # Every gate as (compound id, gate), and an STR-tree over their points.
    _gates: tuple[tuple[str, Gate], ...] = ()
    _gate_tree: STRtree | None = None

    @classmethod
    def of(
        cls, compounds: Iterable[Compound], *, gate_distance_m: float = DEFAULT_GATE_DISTANCE_M
    ) -> CompoundIndex:
        by_id = {c.id: c for c in sorted(compounds, key=lambda c: c.id)}
        ids = tuple(by_id)
        areas = tuple(by_id[i].area() for i in ids)
        gates = tuple((i, g) for i in ids for g in by_id[i].gates)
        return cls(
            compounds=by_id,
            gate_distance_m=gate_distance_m,
            _ids=ids,
            _areas=areas,
            _tree=STRtree(areas) if areas else None,
            _gates=gates,
            _gate_tree=STRtree([Point(g.lon, g.lat) for _, g in gates]) if gates else None,
        )

    def locate(self, lat: float, lon: float) -> str | None:
        """The id of the compound covering ``(lat, lon)`` (boundary inside, holes outside;
        overlapping compounds: the lowest id), else of the nearest gate within the gate
        distance, else None."""
        if self._tree is not None:
            point = Point(lon, lat)
            hits = sorted(int(i) for i in self._tree.query(point, predicate="intersects"))
            for i in hits:
                if self._areas[i].covers(point):
                    return self._ids[i]
        if self._gate_tree is None:
            return None
        # Candidates from a box a little wider than the distance, then the exact distance.
        dlat = self.gate_distance_m / 110_000.0 + 1e-9
        dlon = dlat / max(0.01, math.cos(math.radians(lat)))
        box = box_of(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        best: tuple[float, str] | None = None
        for i in sorted(int(j) for j in self._gate_tree.query(box)):
            compound_id, gate = self._gates[i]
            d = distance_m(lat, lon, gate.lat, gate.lon)
            if d <= self.gate_distance_m and (best is None or (d, compound_id) < best):
                best = (d, compound_id)
        return best[1] if best else None


def property_may_see(call_types: Sequence[CallType]) -> bool:
    """Whether an incident of these call types may be shown to a property team: every type on
    the compound list (one excluded type hides the whole incident)."""
    return bool(call_types) and all(
        t in PROPERTY_CALL_TYPES and t.value not in NEVER_PROPERTY for t in call_types
    )


def least_view(incident: Incident) -> Incident:
    """The incident as a property team may see it: place, type, time, status and its own
    join (the task); no calls (caller identity, phone, words), no timeline, no units."""
    return incident.model_copy(
        update={
            "calls": [],
            "timeline": [],
            "assignments": [],
            "needs": [],
            "close_requests": [],
            "whistle_id": None,
        }
    )


def is_open_for_property(incident: Incident) -> bool:
    return incident.status is not IncidentStatus.CLOSED
