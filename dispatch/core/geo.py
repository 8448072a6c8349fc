"""Small geodesy helpers for the dispatch core (no road graph: that is ``routing``)."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG_LAT = 111_320.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _row_width_deg(row: int, size_m: float) -> float:
    lat_deg = size_m / _M_PER_DEG_LAT
    # Use the poleward edge of the row, where a degree of longitude is shortest,
    # so every cell is at least size_m wide on the ground.
    edge = max(abs(row * lat_deg), abs((row + 1) * lat_deg))
    cos = max(math.cos(math.radians(min(edge, 89.0))), 1e-6)
    return size_m / (_M_PER_DEG_LAT * cos)


def cell_of(lat: float, lon: float, size_m: float) -> str:
    """The grid cell (at least ``size_m`` on a side) that holds a point, as ``row:col``."""
    row = math.floor(lat / (size_m / _M_PER_DEG_LAT))
    col = math.floor(lon / _row_width_deg(row, size_m))
    return f"{row}:{col}"


def cells_around(lat: float, lon: float, size_m: float) -> list[str]:
    """Every cell that can hold a point within ``size_m`` of (lat, lon): nine cells.

    Because cells are at least ``size_m`` wide, such a point lies in the row above,
    the same row or the row below, and in the cell under ``lon`` or a neighbour.
    """
    row = math.floor(lat / (size_m / _M_PER_DEG_LAT))
    out: list[str] = []
    for r in (row - 1, row, row + 1):
        col = math.floor(lon / _row_width_deg(r, size_m))
        out.extend(f"{r}:{c}" for c in (col - 1, col, col + 1))
    return out
