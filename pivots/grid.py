"""The map seen by the planner: graph nodes, their H3 cells, cell neighbours, candidate sites.

The study area is every H3 cell holding at least one road-graph node. Demand is counted on
nodes (an incident goes to its nearest node) and on cells (for counts and Gi*). Each cell has
one candidate post site: its node nearest the cell's centre, so candidate sites are road-graph
nodes and a post never stands off the road. Sites come from cells one resolution finer than
the counting cells (about 65 m across at the default), so a post can stand within a street or
two of a cluster rather than at the middle of a counting cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import h3
import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree  # type: ignore[import-untyped,unused-ignore]

from routing import RoadGraph

# H3 resolution 9: cells of about 0.1 km^2 (edge about 175 m), a street block or two.
DEFAULT_RESOLUTION = 9
# An incident farther than this from every node is outside the map (reported, never planned).
MAX_SNAP_M = 500.0
_EARTH_RADIUS_M = 6_371_008.8

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Grid:
    """Cells, nodes and candidate sites of one road graph at one H3 resolution.

    Attributes:
        graph: the road graph.
        resolution: H3 resolution.
        cells: H3 cell ids of the study area, sorted.
        node_cell: ``int64[nodes]`` index into ``cells`` of each node's cell.
        site_node: ``int64[sites]`` candidate sites (node indices): in each cell of
            ``site_resolution``, the node nearest the cell's centre.
        neighbours: for each cell, the indices of its adjacent study-area cells.
    """

    def __init__(
        self,
        graph: RoadGraph,
        *,
        resolution: int = DEFAULT_RESOLUTION,
        site_resolution: int | None = None,
    ) -> None:
        self.graph = graph
        self.resolution = resolution
        node_cells = [
            h3.latlng_to_cell(lat, lon, resolution)
            for lat, lon in zip(graph.node_lat.tolist(), graph.node_lon.tolist(), strict=True)
        ]
        cells, inverse = np.unique(np.asarray(node_cells), return_inverse=True)
        self.cells: list[str] = [str(c) for c in cells]
        self.node_cell: IntArray = inverse.astype(np.int64)
        self._cell_index = {c: i for i, c in enumerate(self.cells)}
        self._lat0 = float(np.mean(graph.node_lat))
        self._lon0 = float(np.mean(graph.node_lon))
        self._cos0 = math.cos(math.radians(self._lat0))
        xy = self.project(graph.node_lat, graph.node_lon)
        self._tree = cKDTree(xy)
        order = np.argsort(self.node_cell, kind="stable")
        starts = np.searchsorted(self.node_cell[order], np.arange(len(self.cells)))
        self.site_resolution = min(site_resolution or resolution + 1, 15)
        site = _sites(graph, xy, self.site_resolution, self.project)
        self.site_node: IntArray = site
        self._members_order: IntArray = order.astype(np.int64)
        self._members_start: IntArray = np.append(starts, order.shape[0]).astype(np.int64)
        self.neighbours: list[list[int]] = []
        for c in self.cells:
            ring = h3.grid_disk(c, 1)
            self.neighbours.append(
                sorted(self._cell_index[n] for n in ring if n != c and n in self._cell_index)
            )

    @property
    def cell_count(self) -> int:
        return len(self.cells)

    def project(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
        """Equirectangular metres around the graph's centre (under 0.1 % error across a city)."""
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        x = np.radians(lo - self._lon0) * self._cos0 * _EARTH_RADIUS_M
        y = np.radians(la - self._lat0) * _EARTH_RADIUS_M
        out: FloatArray = np.stack([x, y], axis=-1)
        return out

    def nearest_nodes(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, *, max_m: float = MAX_SNAP_M
    ) -> IntArray:
        """Nearest graph node of each point, ``-1`` where it is farther than ``max_m``."""
        la = np.asarray(lat, dtype=np.float64).reshape(-1)
        if la.size == 0:
            return np.zeros(0, dtype=np.int64)
        dist, idx = self._tree.query(self.project(la, np.asarray(lon).reshape(-1)))
        out: IntArray = np.where(np.asarray(dist) <= max_m, idx, -1).astype(np.int64)
        return out

    def cell_nodes(self, cell: int) -> IntArray:
        """Node indices in study-area cell ``cell``."""
        lo, hi = self._members_start[cell], self._members_start[cell + 1]
        return self._members_order[lo:hi]

    def cell_index(self, cell: str) -> int:
        """Index of a study-area cell (KeyError if the cell is outside the map)."""
        return self._cell_index[cell]

    def ring_cells(self, cells: Sequence[int]) -> IntArray:
        """The given cells and their neighbours (study-area cell indices, sorted, unique)."""
        out = set(cells)
        for c in cells:
            out.update(self.neighbours[c])
        return np.asarray(sorted(out), dtype=np.int64)

    def node_latlon(self, node: int) -> tuple[float, float]:
        return float(self.graph.node_lat[node]), float(self.graph.node_lon[node])


def _sites(
    graph: RoadGraph,
    xy: FloatArray,
    resolution: int,
    project: Callable[[npt.ArrayLike, npt.ArrayLike], FloatArray],
) -> IntArray:
    """The node nearest the centre of each H3 cell (at ``resolution``) holding nodes."""
    cells = [
        h3.latlng_to_cell(lat, lon, resolution)
        for lat, lon in zip(graph.node_lat.tolist(), graph.node_lon.tolist(), strict=True)
    ]
    uniq, inverse = np.unique(np.asarray(cells), return_inverse=True)
    centres = np.asarray([h3.cell_to_latlng(str(c)) for c in uniq], dtype=np.float64)
    cxy = project(centres[:, 0], centres[:, 1])
    d = np.hypot(*(xy - cxy[inverse]).T)
    # For each cell the member with the smallest distance: sort by (cell, distance).
    order = np.lexsort((d, inverse))
    first = np.ones(order.shape[0], dtype=np.bool_)
    first[1:] = inverse[order][1:] != inverse[order][:-1]
    out: IntArray = np.sort(order[first]).astype(np.int64)
    return out
