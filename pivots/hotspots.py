"""Hotspots by Getis-Ord Gi* (PySAL esda) on H3 cells, corrected for testing every cell.

Gi* compares the sum over a cell and its ring of neighbours with what the whole area's mean
would give; a large positive z means the cell sits in a cluster of high values. The test is
one-sided (hot only) under the normal approximation (esda's ``p_norm``), at ``alpha`` = 0.05 by
default, and the Benjamini-Hochberg false-discovery-rate cut (esda's ``fdr``) is applied across
all cells of the band, since hundreds of cells are tested at once. Weights are binary (the
cell itself plus its adjacent study-area cells).

The statistic is computed on ``log(1 + value)``. Call counts are heavily skewed, and on raw
counts one very busy place inflates the variance so much that every other cluster of the band
falls below significance (on the synthetic district a summer night market hid the all-year bar
street from the evening bands); on the log scale each cluster is judged on its own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .grid import Grid

DEFAULT_ALPHA = 0.05
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class GiStar:
    """Gi* of every study-area cell for one band.

    Attributes:
        z: ``float64[cells]`` standardised Gi*.
        p: one-sided p-value under normality.
        hot: cells flagged hot: ``z > 0`` and ``p`` at or below the FDR cut.
        p_cut: the Benjamini-Hochberg cut-off applied (``alpha / n`` when it falls back to
            Bonferroni, as esda does when no p-value passes).
        alpha: the nominal level.
    """

    z: FloatArray
    p: FloatArray
    hot: BoolArray
    p_cut: float
    alpha: float


class HotspotTest:
    """Gi* over a grid's cells; build once per grid, call once per band (the weights are
    reused)."""

    def __init__(self, grid: Grid, *, alpha: float = DEFAULT_ALPHA) -> None:
        from libpysal.weights import W  # type: ignore[import-untyped,unused-ignore]

        self.grid = grid
        self.alpha = alpha
        # Each cell lists itself: Gi* (star) counts the cell with its ring, and a diagonal
        # already in the weights spares esda rebuilding them on every call.
        neighbours = {i: [i, *n] for i, n in enumerate(grid.neighbours)}
        weights = {i: [1.0] * len(n) for i, n in neighbours.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._w = W(neighbours, weights, silence_warnings=True)
            self._w.transform = "B"

    def run(self, values: npt.ArrayLike) -> GiStar:
        """Gi* of ``log(1 + values)`` (one value per study-area cell, e.g. expected calls in a
        band; negative values count as zero)."""
        from esda import G_Local, fdr  # type: ignore[import-untyped,unused-ignore]

        y = np.log1p(np.maximum(np.asarray(values, dtype=np.float64), 0.0))
        n = y.shape[0]
        if n < 3 or not np.any(y > 0) or np.allclose(y, y[0]):
            return GiStar(np.zeros(n), np.ones(n), np.zeros(n, dtype=np.bool_), 0.0, self.alpha)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            g = G_Local(y, self._w, transform="B", permutations=0, star=True)
        z = np.nan_to_num(np.asarray(g.Zs, dtype=np.float64), nan=0.0)
        p = np.nan_to_num(np.asarray(g.p_norm, dtype=np.float64), nan=1.0)
        # esda's p_norm is one-sided in the direction of z; only high clusters interest us.
        p = np.where(z > 0, p, 1.0)
        p_cut = float(fdr(p, self.alpha))
        hot = (z > 0) & (p <= p_cut)
        return GiStar(z, p, hot, p_cut, self.alpha)
