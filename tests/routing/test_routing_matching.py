"""Map matching: noisy traces stay on the roads driven; a stray fix does not jump roads."""

from __future__ import annotations

import math

import numpy as np

from routing import GpsFix, Router

from .test_routing_turns import _dual_carriageway

M_LAT = 1 / 111_320.0


def test_a_stray_fix_does_not_jump_to_the_other_carriageway() -> None:
    router = Router(_dual_carriageway())
    m_lon = 1 / (111_320.0 * math.cos(math.radians(30.0)))
    matcher = router.matcher()
    names = []
    for k in range(12):
        # Northbound on the east carriageway (16 m east), 10 m a second; fix 6 strays 13 m
        # west, nearer the southbound carriageway than its own.
        east_m = 3.0 if k == 6 else 16.0
        fix = GpsFix(30.0 + (50 + 10 * k) * M_LAT, 120.0 + east_m * m_lon)
        point = matcher.update(fix)
        names.append((point.edge_u, point.edge_v))
        if k > 0:
            assert point.route_distance_m is not None
            assert abs(point.route_distance_m - 10.0) < 1.0
    assert router.snap((30.0 + 110 * M_LAT, 120.0 + 3.0 * m_lon)).edge_u == 3  # naive: wrong side
    assert all(pair == (1, 2) for pair in names)  # matched: northbound throughout


def test_noisy_trace_is_matched_onto_the_route_driven(shanghai: Router) -> None:
    g = shanghai.graph
    rng = np.random.default_rng(17)
    route = shanghai.route(
        (float(g.node_lat[100]), float(g.node_lon[100])),
        (float(g.node_lat[2000]), float(g.node_lon[2000])),
    )
    coords = np.asarray(route.coordinates)
    lons, lats = coords[:, 0], coords[:, 1]
    steps = np.concatenate(
        [[0.0], np.cumsum(np.hypot(np.diff(lons) * 96_000.0, np.diff(lats) * 111_320.0))]
    )
    along = np.arange(0.0, steps[-1], 12.0)  # one fix a second at 43 km/h
    true_lat = np.interp(along, steps, lats)
    true_lon = np.interp(along, steps, lons)
    noise = rng.normal(0.0, 7.0, (along.shape[0], 2))
    trace = [
        GpsFix(float(la + n[1] * M_LAT), float(lo + n[0] / 96_000.0))
        for la, lo, n in zip(true_lat, true_lon, noise, strict=True)
    ]
    on_route = {(e.u, e.v) for e in route.edges}
    matched = shanghai.match(trace)
    assert len(matched) == len(trace)
    hits = sum((p.edge_u, p.edge_v) in on_route for p in matched)
    naive = 0
    for fix in trace:
        snap = shanghai.snap((fix.lat, fix.lon))
        naive += (snap.edge_u, snap.edge_v) in on_route
    assert hits >= 0.95 * len(trace)
    assert hits >= naive
    # Online, fix by fix, the answers stay on the route as well (no back-tracking there).
    matcher = shanghai.matcher()
    online = 0
    for fix in trace:
        point = matcher.update(fix)
        online += (point.edge_u, point.edge_v) in on_route
    assert online >= 0.9 * len(trace)
