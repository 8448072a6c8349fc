"""History as arrays on one map: node, cell, local month, band and type of every incident."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timezone

import numpy as np
import numpy.typing as npt

from dispatch.models import CallType

from .bands import DAY_KINDS, DayKind, HourBands, band_id, month_index
from .grid import Grid
from .history import HistoryRecord

TYPES: tuple[CallType, ...] = tuple(CallType)
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Frame:
    """Incidents as parallel arrays (only those on the map; ``outside`` counts the rest).

    Attributes:
        node: nearest graph node.
        cell: study-area cell index.
        month: :func:`pivots.bands.month_index` of the local month.
        band: band id (day kind x hour band) in local time.
        kind: call type index into :data:`TYPES`.
        outside: records farther than the snap limit from every node (never planned, and
            counted as not covered in a back-test).
        outside_by_month: those, by month index.
        synthetic: how many records were synthetic.
    """

    node: IntArray
    cell: IntArray
    month: IntArray
    band: IntArray
    kind: IntArray
    outside: int
    outside_by_month: dict[int, int]
    synthetic: int

    def __len__(self) -> int:
        return int(self.node.shape[0])

    def select(self, mask: npt.NDArray[np.bool_]) -> Frame:
        return Frame(
            self.node[mask],
            self.cell[mask],
            self.month[mask],
            self.band[mask],
            self.kind[mask],
            0,
            {},
            0,
        )


def build_frame(
    records: Sequence[HistoryRecord], grid: Grid, *, tz: timezone, bands: HourBands
) -> Frame:
    """Place every record on the map and in its local band."""
    n = len(records)
    lat = np.fromiter((r.lat for r in records), dtype=np.float64, count=n)
    lon = np.fromiter((r.lon for r in records), dtype=np.float64, count=n)
    local = [r.occurred_at.astimezone(tz) for r in records]
    months = np.fromiter((month_index(t.year, t.month) for t in local), dtype=np.int64, count=n)
    hours = np.fromiter((t.hour for t in local), dtype=np.int64, count=n)
    weekend = np.fromiter((t.weekday() >= 5 for t in local), dtype=np.bool_, count=n)
    type_index = {t: i for i, t in enumerate(TYPES)}
    kinds = np.fromiter((type_index[r.call_type] for r in records), dtype=np.int64, count=n)
    hb = bands.of_hours(hours)
    band = np.where(
        weekend,
        band_id(DayKind.WEEKEND, 0, bands) + hb,
        band_id(DAY_KINDS[0], 0, bands) + hb,
    ).astype(np.int64)
    node = grid.nearest_nodes(lat, lon)
    on = node >= 0
    outside_months, outside_counts = np.unique(months[~on], return_counts=True)
    return Frame(
        node=node[on],
        cell=grid.node_cell[node[on]],
        month=months[on],
        band=band[on],
        kind=kinds[on],
        outside=int((~on).sum()),
        outside_by_month=dict(zip(outside_months.tolist(), outside_counts.tolist(), strict=True)),
        synthetic=sum(1 for r in records if r.synthetic),
    )
