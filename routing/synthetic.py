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


def tiled_region(
    tile: RoadGraph,
    across: int,
    *,
    links_per_side: int = 8,
    gap_m: float = 2_000.0,
    link_kph: float = 80.0,
    seed: int = 0,
) -> RoadGraph:
    """A region of ``across`` x ``across`` copies of a real city graph joined by trunk roads.

    A uniform street grid is the worst case for any hierarchy (no road is faster than its
    neighbours); a province is towns of real street fabric joined by a few fast roads. This
    lays copies of ``tile`` (say the Shanghai extract, 4,471 nodes: 15 x 15 copies give about
    a million) on a square, ``gap_m`` apart, and joins each neighbouring pair by
    ``links_per_side`` two-way trunk roads between the nodes nearest the facing borders (an
    even spread along the border). Turn restrictions, signals and geometry are copied.

    Args:
        tile: the graph copied (its nodes must span some area).
        across: copies per row and column.
        links_per_side: trunk roads between two neighbouring copies.
        gap_m: distance between neighbouring copies' bounding boxes.
        link_kph: the trunk roads' speed.
        seed: jitters the trunk roads' length by up to 10 % (reproducible).

    Returns:
        A strongly connected graph if ``tile`` is.
    """
    rng = np.random.default_rng(seed)
    m_per_deg_lat = 111_320.0
    lat_min, lat_max = float(tile.node_lat.min()), float(tile.node_lat.max())
    lon_min, lon_max = float(tile.node_lon.min()), float(tile.node_lon.max())
    m_per_deg_lon = m_per_deg_lat * np.cos(np.radians((lat_min + lat_max) / 2))
    step_lat = lat_max - lat_min + gap_m / m_per_deg_lat
    step_lon = lon_max - lon_min + gap_m / m_per_deg_lon
    n, e = tile.node_count, tile.edge_count
    copies = across * across
    osm_step = int(tile.node_osmid.max()) + 1
    k = np.arange(copies, dtype=np.int64)
    row, col = k // across, k % across
    lat = (tile.node_lat[None, :] + (row * step_lat)[:, None]).ravel()
    lon = (tile.node_lon[None, :] + (col * step_lon)[:, None]).ravel()
    streets = np.tile(tile.node_streets.astype(np.int64), copies)

    # Trunk roads: to the east and to the north neighbour, between border nodes.
    def border(side: str) -> np.ndarray:
        key = {
            "east": -tile.node_lon,
            "west": tile.node_lon,
            "north": -tile.node_lat,
            "south": tile.node_lat,
        }[side]
        along = tile.node_lat if side in ("east", "west") else tile.node_lon
        lo, hi = float(along.min()), float(along.max())
        picks = []
        for i in range(links_per_side):
            # The outermost node of each strip along the border.
            a = lo + (hi - lo) * i / links_per_side
            b = lo + (hi - lo) * (i + 1) / links_per_side
            strip = np.flatnonzero((along >= a) & (along <= b) & (tile.node_streets >= 1))
            if strip.size:
                picks.append(int(strip[np.argmin(key[strip])]))
        return np.asarray(picks, dtype=np.int64)

    east, west, north, south = border("east"), border("west"), border("north"), border("south")
    lu: list[np.ndarray] = []
    lv: list[np.ndarray] = []
    for a_side, b_side, d_row, d_col in ((east, west, 0, 1), (north, south, 1, 0)):
        m = min(a_side.size, b_side.size)
        ok = (row + d_row < across) & (col + d_col < across)
        src_tile = k[ok]
        dst_tile = src_tile + d_row * across + d_col
        a_nodes = (src_tile[:, None] * n + a_side[None, :m]).ravel()
        b_nodes = (dst_tile[:, None] * n + b_side[None, :m]).ravel()
        lu += [a_nodes, b_nodes]
        lv += [b_nodes, a_nodes]
    link_u = np.concatenate(lu)
    link_v = np.concatenate(lv)
    np.add.at(streets, link_u, 1)
    dy = (lat[link_v] - lat[link_u]) * m_per_deg_lat
    dx = (lon[link_v] - lon[link_u]) * m_per_deg_lon
    half = link_u.shape[0] // 2
    jitter = np.tile(rng.uniform(1.0, 1.1, half), 2)
    link_len = np.hypot(dx, dy) * jitter

    tile_nodes = np.repeat(k * n, e)
    u = np.concatenate([np.tile(tile.edge_u.astype(np.int64), copies) + tile_nodes, link_u])
    v = np.concatenate([np.tile(tile.edge_v.astype(np.int64), copies) + tile_nodes, link_v])
    counts = np.diff(tile.geom_offsets)
    g_lat = (tile.geom_lat[None, :] + (row * step_lat)[:, None]).ravel()
    g_lon = (tile.geom_lon[None, :] + (col * step_lon)[:, None]).ravel()
    geom_counts = np.concatenate([np.tile(counts, copies), np.full(link_u.shape[0], 2)])
    geom_lat = np.concatenate([g_lat, np.stack([lat[link_u], lat[link_v]], axis=1).ravel()])
    geom_lon = np.concatenate([g_lon, np.stack([lon[link_u], lon[link_v]], axis=1).ravel()])
    names = list(tile.highway_names.tolist())
    trunk = names.index("trunk") if "trunk" in names else len(names)
    if trunk == len(names):
        names.append("trunk")
    nl = link_u.shape[0]
    meta = {
        "format_version": FORMAT_VERSION,
        "source": f"tiled:{tile.meta.get('source', '?')},across={across},links={links_per_side}",
        "built_at": time.time(),
        "nodes": n * copies,
        "edges": int(u.shape[0]),
        "signals": int(tile.node_signal.sum()) * copies,
    }
    return RoadGraph(
        node_osmid=(np.tile(tile.node_osmid, copies) + np.repeat(k * osm_step, n)).astype(np.int64),
        node_lat=lat.astype(np.float64),
        node_lon=lon.astype(np.float64),
        node_signal=np.tile(tile.node_signal, copies),
        node_streets=streets.astype(np.int16),
        edge_u=u.astype(np.int32),
        edge_v=v.astype(np.int32),
        edge_length_m=np.concatenate([np.tile(tile.edge_length_m, copies), link_len]),
        edge_speed_kph=np.concatenate(
            [np.tile(tile.edge_speed_kph, copies), np.full(nl, link_kph)]
        ),
        edge_highway=np.concatenate(
            [np.tile(tile.edge_highway, copies), np.full(nl, trunk)]
        ).astype(np.int16),
        edge_name=np.concatenate(
            [np.tile(tile.edge_name, copies), np.full(nl, "Trunk road")]
        ).astype(np.str_),
        geom_offsets=np.concatenate([[0], np.cumsum(geom_counts)]).astype(np.int64),
        geom_lon=geom_lon.astype(np.float64),
        geom_lat=geom_lat.astype(np.float64),
        highway_names=np.asarray(names, dtype=np.str_),
        turn_ban_from=(
            np.tile(tile.turn_ban_from.astype(np.int64), copies)
            + np.repeat(k * e, tile.turn_ban_from.shape[0])
        ).astype(np.int32),
        turn_ban_to=(
            np.tile(tile.turn_ban_to.astype(np.int64), copies)
            + np.repeat(k * e, tile.turn_ban_to.shape[0])
        ).astype(np.int32),
        turn_ban_kind=np.tile(tile.turn_ban_kind, copies),
        meta=meta,
    )
