"""Named places resolved on whatever map is loaded: graph nodes picked with a seeded generator.

A scenario names places by what they are ("near water", "an industrial area", "a residential
compound", a lat/lon, "near another place") rather than by node ids, so one scenario runs on
Shanghai, Helsinki or Fuyang. Land-use hints come from the OSM file the graph was built from
(when it is still there); a map without them falls back first to road classes, then to any
node, and the resolved place records which fallback it took.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from routing import OffGraphError, Router
from routing.graph import haversine_m

from .errors import ScenarioError

PlaceKind = Literal["random", "point", "near", "water", "industrial", "residential", "market"]

# Road classes standing in when the map has no land-use tags for a kind.
_ROAD_HINT: dict[str, tuple[str, ...]] = {
    "residential": ("residential", "living_street"),
    "market": ("tertiary", "residential", "unclassified"),
    "industrial": ("unclassified", "tertiary"),
}


class PlaceSpec(BaseModel):
    """How a scenario names a place.

    ``kind``: ``random`` (any node), ``point`` (``lat``/``lon``, snapped to the road),
    ``near`` (a node within ``within_m`` of place ``of``), or a land-use hint ``water``,
    ``industrial``, ``residential``, ``market``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: PlaceKind = "random"
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    of: str | None = None
    within_m: float = Field(default=500.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> PlaceSpec:
        if self.kind == "point" and (self.lat is None or self.lon is None):
            raise ValueError(f"place {self.name!r}: kind 'point' needs lat and lon")
        if self.kind == "near" and not self.of:
            raise ValueError(f"place {self.name!r}: kind 'near' needs 'of' (another place)")
        return self


class Place(BaseModel):
    """A resolved place: a graph node."""

    model_config = ConfigDict(frozen=True)

    name: str
    node_index: int
    node_id: int
    lat: float
    lon: float
    how: str = Field(description="how it was found, e.g. 'water (osm)' or 'random (fallback)'")


@dataclass
class MapFeatures:
    """Points of land-use features read from the OSM file (empty kinds when absent)."""

    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def from_osm(cls, path: Path) -> MapFeatures:
        """Read water, industrial, residential and market features from an OSM file.

        Returns empty features when the file is missing or unreadable: places then fall back
        (a drill must run on any map).
        """
        points: dict[str, list[tuple[float, float]]] = {}
        if not path.is_file():
            return cls(points)
        try:
            import osmium

            for obj in osmium.FileProcessor(str(path)).with_locations():
                if not isinstance(obj, osmium.osm.Way):
                    continue
                kind = _classify(obj.tags)
                if kind is None:
                    continue
                bucket = points.setdefault(kind, [])
                for nd in obj.nodes:
                    if nd.location.valid():
                        bucket.append((nd.location.lat, nd.location.lon))
        except (RuntimeError, OSError, ValueError):
            return cls({})
        return cls(points)


def _classify(tags: Any) -> str | None:
    get = tags.get  # osmium TagList: dict-like get
    if get("natural") == "water" or get("waterway") is not None:
        return "water"
    landuse = get("landuse")
    if landuse == "industrial" or get("man_made") == "works":
        return "industrial"
    if landuse == "residential":
        return "residential"
    if get("amenity") == "marketplace" or landuse in ("retail", "commercial"):
        return "market"
    return None


class PlaceFinder:
    """Resolves :class:`PlaceSpec` on one router's graph.

    Args:
        router: the map.
        features: land-use points (``MapFeatures.from_osm``); ``None`` reads them lazily from
            the graph's source file the first time a land-use place is asked for.
    """

    def __init__(self, router: Router, features: MapFeatures | None = None) -> None:
        self.router = router
        self._features = features
        g = router.graph
        names = [str(n) for n in g.highway_names]
        self._edge_class = np.array(names, dtype=object)[g.edge_highway]

    @property
    def features(self) -> MapFeatures:
        """Land-use points, read once."""
        if self._features is None:
            source = str(self.router.graph.meta.get("source", ""))
            self._features = MapFeatures.from_osm(Path(source)) if source else MapFeatures()
        return self._features

    def _node(self, index: int, name: str, how: str) -> Place:
        g = self.router.graph
        return Place(
            name=name,
            node_index=index,
            node_id=int(g.node_osmid[index]),
            lat=float(g.node_lat[index]),
            lon=float(g.node_lon[index]),
            how=how,
        )

    def random_node(self, rng: random.Random) -> int:
        """A uniformly chosen node index."""
        return rng.randrange(self.router.graph.node_count)

    def resolve(
        self, spec: PlaceSpec, rng: random.Random, resolved: dict[str, Place] | None = None
    ) -> Place:
        """Pick the node for a place.

        Args:
            spec: the place.
            rng: seeded generator (the pick is reproducible).
            resolved: places already resolved, for ``near``.

        Returns:
            The place.

        Raises:
            ScenarioError: ``near`` names a place not resolved yet, or a ``point`` is off the
                map (a ``ValueError`` too).
        """
        g = self.router.graph
        if spec.kind == "random":
            return self._node(self.random_node(rng), spec.name, "random")
        if spec.kind == "point":
            assert spec.lat is not None and spec.lon is not None
            try:
                snap = self.router.snap((spec.lat, spec.lon))
            except OffGraphError as exc:
                raise ScenarioError(f"place {spec.name!r}: {exc}") from exc
            return self._node(self.router.node_index(snap.node_id), spec.name, "point")
        if spec.kind == "near":
            anchor = (resolved or {}).get(spec.of or "")
            if anchor is None:
                raise ScenarioError(
                    f"place {spec.name!r}: place {spec.of!r} is not defined before it"
                )
            return self._node(
                self.node_within(anchor.lat, anchor.lon, spec.within_m, rng),
                spec.name,
                f"near {anchor.name}",
            )
        points = self.features.points.get(spec.kind, [])
        if points:
            lat, lon = points[rng.randrange(len(points))]
            nodes, dist = self._nearest_nodes(lat, lon)
            if dist[0] <= spec.within_m:
                return self._node(int(nodes[0]), spec.name, f"{spec.kind} (osm)")
        hint = _ROAD_HINT.get(spec.kind, ())
        if hint:
            edges = np.flatnonzero(np.isin(self._edge_class, hint))
            if edges.size:
                e = int(edges[rng.randrange(edges.size)])
                return self._node(int(g.edge_u[e]), spec.name, f"{spec.kind} (road class)")
        return self._node(self.random_node(rng), spec.name, f"random ({spec.kind} fallback)")

    def node_within(self, lat: float, lon: float, radius_m: float, rng: random.Random) -> int:
        """A random node within ``radius_m`` of a point (the nearest node if none is)."""
        g = self.router.graph
        dist = haversine_m(g.node_lat, g.node_lon, lat, lon)
        close = np.flatnonzero(dist <= radius_m)
        if close.size == 0:
            return int(np.argmin(dist))
        return int(close[rng.randrange(close.size)])

    def _nearest_nodes(self, lat: float, lon: float) -> tuple[Sequence[int], Sequence[float]]:
        g = self.router.graph
        dist = haversine_m(g.node_lat, g.node_lon, lat, lon)
        order = np.argsort(dist)[:1]
        return [int(i) for i in order], [float(dist[i]) for i in order]


def jitter(lat: float, lon: float, radius_m: float, rng: random.Random) -> tuple[float, float]:
    """A point uniformly within ``radius_m`` of ``(lat, lon)`` (a caller's vague location)."""
    r = radius_m * math.sqrt(rng.random())
    a = rng.uniform(0.0, 2.0 * math.pi)
    dlat = r * math.cos(a) / 111_320.0
    dlon = r * math.sin(a) / (111_320.0 * max(math.cos(math.radians(lat)), 1e-6))
    return lat + dlat, lon + dlon
