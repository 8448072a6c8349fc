"""Gi* (esda) on H3 cells with the FDR cut: a planted cluster is hot, noise is not."""

from __future__ import annotations

import numpy as np

from pivots.grid import Grid
from pivots.hotspots import HotspotTest
from routing import Router

from .conftest import node_at


def test_planted_hotspot_flagged_and_noise_not(town: Router) -> None:
    grid = Grid(town.graph)
    test = HotspotTest(grid, alpha=0.05)
    rng = np.random.default_rng(11)
    noise = rng.poisson(2.0, grid.cell_count).astype(np.float64)
    null = test.run(noise)
    assert not null.hot.any(), "pure noise: the FDR cut should flag nothing"
    lat, lon = node_at(town, 15, 15)
    centre = int(grid.node_cell[grid.nearest_nodes([lat], [lon])[0]])
    planted = noise.copy()
    planted[centre] += 40
    planted[grid.neighbours[centre]] += 15
    result = test.run(planted)
    assert result.hot[centre]
    hot = set(np.flatnonzero(result.hot).tolist())
    near = set(grid.ring_cells(grid.ring_cells([centre]).tolist()).tolist())
    assert hot <= near, "only the cluster and its surroundings are hot"
    assert 0 < result.p_cut <= 0.05
    assert result.z[centre] > 3


def test_flat_or_empty_values_flag_nothing(town: Router) -> None:
    grid = Grid(town.graph)
    test = HotspotTest(grid)
    assert not test.run(np.zeros(grid.cell_count)).hot.any()
    assert not test.run(np.full(grid.cell_count, 3.0)).hot.any()
