"""Demand by band: counts with their uncertainty, and the seasonal estimate the planner uses.

Counts are exact (by cell, month, day kind, hour band and type) with a Garwood (exact Poisson)
interval. The planner's estimate for a target month weighs each past month by a seasonal
kernel (the same calendar month counts fully, the neighbouring months a quarter, the rest
barely) and halves the weight of each year back, then turns the weighted counts into
expected calls for the target month's hours. Its interval treats a weighted count as a scaled
Poisson count with the effective number of observations ``(sum w)^2 / sum w^2``, which reduces
to the Garwood interval when all weights are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import gammaincinv  # type: ignore[import-untyped,unused-ignore]

from .bands import DayKind, HourBands, band_count, band_hours, band_parts, month_key, month_of_index
from .frame import TYPES, Frame
from .grid import Grid

FloatArray = npt.NDArray[np.float64]
CONFIDENCE = 0.95


def poisson_interval(
    count: npt.ArrayLike, *, confidence: float = CONFIDENCE
) -> tuple[FloatArray, FloatArray]:
    """Garwood's exact interval for a Poisson mean from an observed count (count may be
    fractional, for an effective count). Returns ``(low, high)`` arrays."""
    k = np.asarray(count, dtype=np.float64)
    a = 1.0 - confidence
    # chi2.ppf(q, 2k) / 2 is the inverse regularised gamma function at (k, q), without
    # scipy.stats' per-call overhead (the planner asks for thousands of intervals).
    low = np.where(k > 0, gammaincinv(np.maximum(k, 1e-12), a / 2), 0.0)
    high = gammaincinv(k + 1.0, 1 - a / 2)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


class DemandRow(BaseModel):
    """Incidents counted in one cell, month, day kind, hour band and type."""

    model_config = ConfigDict(frozen=True)

    cell: str = Field(description="H3 cell")
    month: str
    day_kind: DayKind
    hours: str
    call_type: str
    count: int
    low: float = Field(description="95 % Garwood interval of the mean count, low end")
    high: float


def demand_table(frame: Frame, grid: Grid, *, bands: HourBands) -> list[DemandRow]:
    """Exact counts by cell x month x day kind x hour band x type (empty groups left out)."""
    keys = np.stack([frame.cell, frame.month, frame.band, frame.kind], axis=1)
    if keys.shape[0] == 0:
        return []
    groups, counts = np.unique(keys, axis=0, return_counts=True)
    low, high = poisson_interval(counts)
    rows: list[DemandRow] = []
    for (cell, month, band, kind), n, lo, hi in zip(
        groups.tolist(), counts.tolist(), low.tolist(), high.tolist(), strict=True
    ):
        day_kind, hb = band_parts(band, bands)
        rows.append(
            DemandRow(
                cell=grid.cells[cell],
                month=month_key(*month_of_index(month)),
                day_kind=day_kind,
                hours=bands.label(hb),
                call_type=TYPES[kind].value,
                count=n,
                low=round(lo, 3),
                high=round(hi, 3),
            )
        )
    return rows


def _sums(index: npt.NDArray[np.int64], weights: FloatArray, size: int) -> FloatArray:
    out: FloatArray = np.bincount(index, weights=weights, minlength=size).astype(np.float64)
    return out


@dataclass(frozen=True, slots=True)
class SeasonalKernel:
    """Weight of a past month for a target month (see the module docstring)."""

    same: float = 1.0
    adjacent: float = 0.25
    other: float = 0.001
    half_life_months: float = 12.0

    def weights(self, target: int, months: npt.NDArray[np.int64]) -> FloatArray:
        gap = (months % 12 - target % 12) % 12
        circ = np.minimum(gap, 12 - gap)
        season = np.where(circ == 0, self.same, np.where(circ == 1, self.adjacent, self.other))
        back = (target - months).astype(np.float64)
        out: FloatArray = np.where(back > 0, season * 0.5 ** (back / self.half_life_months), 0.0)
        return out


@dataclass(frozen=True, slots=True)
class Demand:
    """Expected calls of one target month, per band and node, with what intervals need.

    ``expected[b, v]`` is the expected number of calls at node ``v`` during band ``b`` of the
    month (``b`` a band id; one pooled band when the estimate pools bands).
    ``s1``/``s2`` hold the sums of weights and squared weights of the counted incidents, and
    ``scale[b]`` turns a weighted count into expected calls (target hours / weighted hours).
    ``by_type[b, t, v]`` splits ``s1`` by call type.
    """

    expected: FloatArray
    s1: FloatArray
    s2: FloatArray
    by_type: FloatArray
    scale: FloatArray
    pooled: bool

    def interval(self, band: int, nodes: npt.ArrayLike) -> tuple[float, float]:
        """95 % interval of the expected calls summed over ``nodes`` in ``band``."""
        idx = np.asarray(nodes, dtype=np.int64)
        s1 = float(self.s1[band, idx].sum())
        s2 = float(self.s2[band, idx].sum())
        if s1 <= 0 or s2 <= 0:
            _, hi = poisson_interval(0.0)
            # No incident seen: the upper end still says how much could have been missed,
            # in units of one average weight.
            return 0.0, float(hi) * float(self.scale[band])
        n_eff = s1 * s1 / s2
        lo, hi = poisson_interval(n_eff)
        unit = s1 / n_eff * float(self.scale[band])
        return float(lo) * unit, float(hi) * unit


def estimate(
    frame: Frame,
    grid: Grid,
    *,
    target: int,
    history_months: Sequence[int],
    bands: HourBands,
    kernel: SeasonalKernel | None,
    pool_bands: bool = False,
) -> Demand:
    """Expected calls in month ``target`` (a month index) from the history's months.

    Args:
        frame: the history on the map (only incidents in ``history_months`` are used).
        grid: the map.
        target: the month planned for.
        history_months: the months the history covers (months without incidents count too:
            they are exposure).
        bands: hour bands.
        kernel: seasonal weights; ``None`` weighs every history month equally.
        pool_bands: one band for all hours and days (a static, all-year plan).
    """
    months = np.asarray(sorted(set(history_months)), dtype=np.int64)
    nb = band_count(bands)
    w_month = np.ones(months.shape[0]) if kernel is None else kernel.weights(target, months)
    hours = np.zeros((0, nb))
    if months.size:
        hours = np.stack([band_hours(*month_of_index(int(m)), bands) for m in months])
    target_hours = band_hours(*month_of_index(target), bands)
    exposure = (w_month[:, None] * hours).sum(axis=0)  # weighted band-hours
    if pool_bands:
        exposure = np.asarray([exposure.sum()])
        target_hours = np.asarray([target_hours.sum()])
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(exposure > 0, target_hours / exposure, 0.0)
    lookup = np.full(int(months.max()) + 1 if months.size else 1, -1, dtype=np.int64)
    lookup[months] = np.arange(months.shape[0])
    pos = np.where(
        frame.month < lookup.shape[0], lookup[np.minimum(frame.month, lookup.shape[0] - 1)], -1
    )
    keep = pos >= 0
    w = np.where(keep, w_month[np.maximum(pos, 0)], 0.0)
    keep &= w > 0
    w = w[keep]
    band = np.zeros(int(keep.sum()), dtype=np.int64) if pool_bands else frame.band[keep]
    node = frame.node[keep]
    kind = frame.kind[keep]
    n_bands = 1 if pool_bands else nb
    n_nodes = grid.graph.node_count
    flat = band * n_nodes + node
    size = n_bands * n_nodes
    s1 = _sums(flat, w, size).reshape(n_bands, n_nodes)
    s2 = _sums(flat, w * w, size).reshape(n_bands, n_nodes)
    tflat = (band * len(TYPES) + kind) * n_nodes + node
    by_type = _sums(tflat, w, n_bands * len(TYPES) * n_nodes).reshape(n_bands, len(TYPES), n_nodes)
    expected: FloatArray = s1 * scale[:, None]
    return Demand(expected, s1, s2, by_type, scale, pool_bands)
