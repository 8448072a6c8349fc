"""A seeded synthetic city for benchmarks and tests: arterial grid with signals, local streets,
one-way pairs. Built straight into a :class:`RoadGraph`, no OSM involved."""

from __future__ import annotations

import time

import numpy as np

from .graph import FORMAT_VERSION, RoadGraph

_HIGHWAYS = np.array(["primary", "residential"], dtype=np.str_)


def synthetic_city(
    side: int = 224,
    *,
    block: int = 8,
    spacing_m: float = 100.0,
    seed: int = 0,
    lat0: float = 30.05,
    lon0: float = 119.95,
) -> RoadGraph:
    """Generate a ``side`` x ``side`` street grid (``side**2`` nodes; 224 gives 50,176).

    Every ``block``-th row and column is a two-way 60 km/h arterial; arterial crossings carry
    traffic signals. Other streets are 30 km/h locals; the rows halfway between arterials are
    one-way, alternating direction (one-way pairs). Lengths jitter by +-20 % and a few local
    links are missing, so routes are not all ties.

    Args:
        side: nodes per row and column.
        block: arterial spacing in nodes.
        spacing_m: nominal street spacing.
        seed: random seed (the same seed gives the same city).
        lat0: latitude of the south-west corner (default near Fuyang).
        lon0: longitude of the south-west corner.

    Returns:
        A strongly connected compiled graph.
    """
    rng = np.random.default_rng(seed)
    idx = np.arange(side * side, dtype=np.int64).reshape(side, side)
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    m_per_deg_lat = 111_320.0
    lat = lat0 + rows.ravel() * spacing_m / m_per_deg_lat
    lon = lon0 + cols.ravel() * spacing_m / (m_per_deg_lat * np.cos(np.radians(lat0)))

    us: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    arterial: list[np.ndarray] = []
    # Horizontal links (r, c) -> (r, c+1)
    a, b = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    r = rows[:, :-1].ravel()
    is_art = r % block == 0
    one_way = r % block == block // 2
    # Drop ~3 % of local two-way links (never arterials or one-way rows, to stay connected).
    dropped = (~is_art) & (~one_way) & (rng.random(a.shape[0]) < 0.03) & (r % block != 1)
    east = one_way & ((r // block) % 2 == 0)
    west = one_way & ~east
    two = ~one_way & ~dropped
    us += [a[two], b[two], a[east], b[west]]
    vs += [b[two], a[two], b[east], a[west]]
    arterial += [is_art[two], is_art[two], is_art[east], is_art[west]]
    # Vertical links (r, c) -> (r+1, c), all two-way.
    a, b = idx[:-1, :].ravel(), idx[1:, :].ravel()
    c = cols[:-1, :].ravel()
    is_art = c % block == 0
    us += [a, b]
    vs += [b, a]
    arterial += [is_art, is_art]

    u = np.concatenate(us)
    v = np.concatenate(vs)
    art = np.concatenate(arterial)
    length = np.asarray(spacing_m * rng.uniform(0.8, 1.2, u.shape[0]), dtype=np.float64)
    speed = np.where(art, 60.0, 30.0)
    signal = ((rows % block == 0) & (cols % block == 0)).ravel()
    streets = np.bincount(np.concatenate([u, v]), minlength=side * side) // 2
    geom_lon = np.stack([lon[u], lon[v]], axis=1).ravel()
    geom_lat = np.stack([lat[u], lat[v]], axis=1).ravel()
    names = np.where(art, "Arterial", "Local").astype(np.str_)
    meta = {
        "format_version": FORMAT_VERSION,
        "source": f"synthetic:side={side},block={block},seed={seed}",
        "built_at": time.time(),
        "nodes": side * side,
        "edges": int(u.shape[0]),
        "signals": int(signal.sum()),
    }
    return RoadGraph(
        node_osmid=np.arange(1, side * side + 1, dtype=np.int64),
        node_lat=lat.astype(np.float64),
        node_lon=lon.astype(np.float64),
        node_signal=signal,
        node_streets=streets.astype(np.int16),
        edge_u=u.astype(np.int32),
        edge_v=v.astype(np.int32),
        edge_length_m=length,
        edge_speed_kph=speed,
        edge_highway=np.where(art, 0, 1).astype(np.int16),
        edge_name=names,
        geom_offsets=np.arange(0, 2 * u.shape[0] + 1, 2, dtype=np.int64),
        geom_lon=geom_lon,
        geom_lat=geom_lat,
        highway_names=_HIGHWAYS,
        meta=meta,
    )
