"""The road graph of the loaded router as GeoJSON for the map, simplified by zoom.

A screen needs the roads, not the routing graph: the two directions of a street are one line,
at city scale only the main roads matter and a line needs no more points than pixels. Each zoom
band is built once (dropping minor classes, Douglas-Peucker with a tolerance of about a pixel)
and then cut to the requested bounding box on every request with a few array comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import shapely

from routing.graph import RoadGraph

# Road classes drawn, from the most to the least important (rank 0 is drawn widest).
_RANK: dict[str, int] = {
    "motorway": 0,
    "trunk": 0,
    "motorway_link": 1,
    "trunk_link": 1,
    "primary": 1,
    "primary_link": 2,
    "secondary": 2,
    "secondary_link": 3,
    "tertiary": 3,
    "tertiary_link": 4,
}
_MINOR_RANK = 5
# A zoom band: the least important rank drawn and the simplification tolerance in metres.
_BANDS: tuple[tuple[int, int, float], ...] = (
    # (up to zoom, max rank, tolerance_m)
    (11, 2, 40.0),
    (12, 3, 20.0),
    (13, 4, 8.0),
    (14, _MINOR_RANK, 4.0),
    (15, _MINOR_RANK, 2.0),
    (99, _MINOR_RANK, 0.0),
)
_M_PER_DEG = 111_320.0


@dataclass(frozen=True, slots=True)
class _Band:
    features: list[bytes]  # each line as one serialised GeoJSON Feature
    west: npt.NDArray[np.float64]
    south: npt.NDArray[np.float64]
    east: npt.NDArray[np.float64]
    north: npt.NDArray[np.float64]


def band_index(zoom: float) -> int:
    """Which zoom band a map zoom level falls in (clients may cache per band)."""
    for i, (upto, _rank, _tol) in enumerate(_BANDS):
        if zoom <= upto:
            return i
    return len(_BANDS) - 1


class RoadLayer:
    """Roads of one graph, by zoom band; built lazily, then read-only (safe across requests)."""

    def __init__(self, graph: RoadGraph) -> None:
        self.graph = graph
        self._bands: dict[int, _Band] = {}
        self._segments = self._undirected()
        lats, lons = graph.node_lat, graph.node_lon
        self.bounds = (
            float(lons.min()),
            float(lats.min()),
            float(lons.max()),
            float(lats.max()),
        )

    def _undirected(self) -> npt.NDArray[np.int64]:
        """One edge per street and direction pair: the other direction adds nothing on screen."""
        g = self.graph
        lo = np.minimum(g.edge_u, g.edge_v).astype(np.int64)
        hi = np.maximum(g.edge_u, g.edge_v).astype(np.int64)
        length_dm = np.round(g.edge_length_m * 10).astype(np.int64)
        keys = np.stack([lo, hi, length_dm], axis=1)
        _unique, first = np.unique(keys, axis=0, return_index=True)
        return np.sort(first)

    def _band(self, index: int) -> _Band:
        built = self._bands.get(index)
        if built is not None:
            return built
        g = self.graph
        _upto, max_rank, tolerance_m = _BANDS[index]
        names = [str(n) for n in g.highway_names]
        class_rank = np.array([_RANK.get(n, _MINOR_RANK) for n in names], dtype=np.int8)
        edges = self._segments
        ranks = class_rank[g.edge_highway[edges]]
        keep = edges[ranks <= max_rank]
        lines: list[npt.NDArray[np.float64]] = []
        for e in keep.tolist():
            lo, hi = int(g.geom_offsets[e]), int(g.geom_offsets[e + 1])
            lines.append(np.stack([g.geom_lon[lo:hi], g.geom_lat[lo:hi]], axis=1))
        if tolerance_m > 0 and lines:
            lines = _simplify(lines, tolerance_m)
        kept = [(i, line) for i, line in enumerate(lines) if len(line) >= 2]
        coords = [line for _i, line in kept]
        idx = np.array([i for i, _line in kept], dtype=np.int64)
        edge_ids = keep[idx] if len(idx) else keep[:0]
        ranks = class_rank[g.edge_highway[edge_ids]]
        digits = 6 if index == len(_BANDS) - 1 else 5
        features = []
        for rank, e, line in zip(ranks.tolist(), edge_ids.tolist(), coords, strict=True):
            props: dict[str, Any] = {"r": rank}
            name = str(g.edge_name[e])
            if name:
                props["n"] = name
            features.append(
                orjson.dumps(
                    {
                        "type": "Feature",
                        "properties": props,
                        "geometry": {
                            "type": "LineString",
                            "coordinates": np.round(line, digits).tolist(),
                        },
                    }
                )
            )
        band = _Band(
            features=features,
            west=np.array([c[:, 0].min() for c in coords]),
            south=np.array([c[:, 1].min() for c in coords]),
            east=np.array([c[:, 0].max() for c in coords]),
            north=np.array([c[:, 1].max() for c in coords]),
        )
        self._bands[index] = band
        return band

    def geojson(self, zoom: float, bbox: tuple[float, float, float, float] | None) -> bytes:
        """A GeoJSON FeatureCollection of the roads drawn at ``zoom`` that cross ``bbox``.

        Each feature's properties are ``r`` (rank: 0 motorway/trunk ... 5 minor) and ``n``
        (street name, omitted when unknown). The collection also carries ``bounds`` (the whole
        graph, ``[west, south, east, north]``) and ``band`` (the zoom band it was cut from).
        """
        index = band_index(zoom)
        band = self._band(index)
        if bbox is None:
            chosen = np.arange(len(band.features))
        else:
            w, s, e, n = bbox
            chosen = np.flatnonzero(
                (band.east >= w) & (band.west <= e) & (band.north >= s) & (band.south <= n)
            )
        head = orjson.dumps({"type": "FeatureCollection", "bounds": self.bounds, "band": index})
        return b"".join(
            [
                head[:-1],
                b',"features":[',
                b",".join(band.features[i] for i in chosen.tolist()),
                b"]}",
            ]
        )


def _simplify(
    lines: list[npt.NDArray[np.float64]], tolerance_m: float
) -> list[npt.NDArray[np.float64]]:
    """Douglas-Peucker on every line at once (shapely, vectorised)."""
    counts = np.array([len(line) for line in lines])
    geoms = shapely.linestrings(
        np.concatenate(lines), indices=np.repeat(np.arange(len(lines)), counts)
    )
    # Degrees of longitude shrink with latitude; one tolerance in degrees of latitude is close
    # enough for a picture (the error is a fraction of a pixel).
    simple = shapely.simplify(geoms, tolerance_m / _M_PER_DEG, preserve_topology=False)
    coords, owner = shapely.get_coordinates(simple, return_index=True)
    cuts = np.flatnonzero(np.diff(owner)) + 1
    parts = np.split(coords, cuts)
    owners = owner[np.concatenate([[0], cuts])] if len(owner) else owner
    out: list[npt.NDArray[np.float64]] = [np.empty((0, 2))] * len(lines)
    for i, part in zip(owners.tolist(), parts, strict=True):
        out[i] = part
    return out


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``"w,s,e,n"`` -> a tuple, or None for no text.

    Raises:
        ValueError: not four finite numbers with west <= east and south <= north.
    """
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError("bbox must be four numbers: west,south,east,north")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError as exc:
        raise ValueError("bbox must be four numbers: west,south,east,north") from exc
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise ValueError("bbox values must be finite")
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError("bbox must be west,south,east,north with west<=east and south<=north")
    return w, s, e, n
