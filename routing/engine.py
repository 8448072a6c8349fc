"""Shortest paths on CSR arrays with scipy's compiled Dijkstra.

Measured (see ``benchmarks/routing.py``): one Dijkstra over all of a 50k-node city takes ~4 ms;
bounding it with ``limit`` (a lower bound on the answer times a slack, doubled on a miss)
settles only the nodes that can matter and roughly halves that. The answer is exact either way:
scipy settles every node whose distance is within ``limit`` exactly, and a miss just retries
with a larger one.

Every call allocates its own arrays, and the CSR matrices are never written after
construction, so one engine is safe to share between threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import dijkstra  # type: ignore[import-untyped,unused-ignore]

from .graph import FloatArray, IntArray, RoadGraph, haversine_m

# First bound = straight-line lower bound x slack. The slack is calibrated per graph (see
# calibrate()): detour factors differ a lot between a grid (~1.7) and Shanghai (~2, tail 5).
DEFAULT_SLACK = 2.0
CALIBRATION_PAIRS = 32
CALIBRATION_QUANTILE = 90.0
LIMIT_FLOOR_S = 30.0
MAX_BOUNDED_TRIES = 3
_NO_PREDECESSOR = -9999  # scipy's marker


@dataclass(frozen=True, slots=True)
class PathResult:
    """A shortest path between two nodes.

    Attributes:
        cost: total weight (seconds for travel-time weights).
        nodes: node indices from source to target.
        edges: edge indices (into the RoadGraph arrays), one per hop.
    """

    cost: float
    nodes: list[int]
    edges: list[int]


class CsrEngine:
    """Dijkstra over a graph's edges, one weight per edge, parallel edges reduced to the cheapest.

    Args:
        graph: the compiled graph (for node coordinates and edge endpoints).
        weights: ``float64[E]`` strictly positive edge weights (e.g. travel times).
        max_speed_mps: an upper bound on ``length / weight`` over all edges, used to turn a
            straight-line distance into a lower bound on the weight of any path.
    """

    def __init__(self, graph: RoadGraph, weights: FloatArray, *, max_speed_mps: float) -> None:
        if weights.shape != graph.edge_u.shape or not np.all(weights > 0):
            raise ValueError("weights must be one positive value per edge")
        n = graph.node_count
        self._n = n
        self._lat = graph.node_lat
        self._lon = graph.node_lon
        self._max_speed_mps = max_speed_mps
        # Sort by (u, v, weight) and keep the first of each (u, v): the cheapest parallel edge.
        order = np.lexsort((weights, graph.edge_v, graph.edge_u))
        u, v = graph.edge_u[order], graph.edge_v[order]
        first = np.ones(order.shape[0], dtype=np.bool_)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        keep = order[first]
        self._edge_of_entry: IntArray = keep.astype(np.int64)
        ku = graph.edge_u[keep].astype(np.int64)
        kv = graph.edge_v[keep].astype(np.int64)
        # Keys u*n+v are sorted because keep is sorted by (u, v): searchsorted finds an edge.
        self._keys: IntArray = ku * n + kv
        self._forward = sp.csr_matrix((weights[keep], (ku, kv)), shape=(n, n))
        self._backward = self._forward.transpose().tocsr()
        self._forward.sort_indices()
        self._backward.sort_indices()
        self.slack = DEFAULT_SLACK

    def calibrate(self, *, seed: int = 0) -> float:
        """Set the search-bound slack from the graph's own detour factors; returns it.

        Runs a few unbounded searches between seeded random pairs and takes the 90th percentile
        of cost / straight-line bound: most queries then need one bounded search, and the rest
        one or two more. Correctness does not depend on it, only speed.
        """
        rng = np.random.default_rng(seed)
        ratios: list[float] = []
        for source, target in rng.integers(0, self._n, size=(CALIBRATION_PAIRS, 2)):
            bound = self.lower_bound(int(source), int(target))
            if source == target or bound <= 0:
                continue
            dist = dijkstra(self._forward, directed=True, indices=int(source))
            if np.isfinite(dist[target]):
                ratios.append(float(dist[target]) / bound)
        if ratios:
            self.slack = max(1.0, float(np.percentile(ratios, CALIBRATION_QUANTILE)))
        return self.slack

    def edge_between(self, tails: npt.ArrayLike, heads: npt.ArrayLike) -> IntArray:
        """Return the cheapest edge index from each tail to each head (they must be adjacent)."""
        keys = np.asarray(tails, dtype=np.int64) * self._n + np.asarray(heads, dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        return self._edge_of_entry[pos]

    def lower_bound(self, a: int, b: int) -> float:
        """A lower bound on the weight of any path between nodes ``a`` and ``b``."""
        crow = float(haversine_m(self._lat[a], self._lon[a], self._lat[b], self._lon[b]))
        return crow / self._max_speed_mps

    def shortest_path(self, source: int, target: int) -> PathResult:
        """Find the cheapest path from node ``source`` to node ``target``.

        Returns:
            The path; cost ``inf`` and empty lists when ``target`` is unreachable.
        """
        if source == target:
            return PathResult(0.0, [source], [])
        limit = max(self.lower_bound(source, target) * self.slack, LIMIT_FLOOR_S)
        for attempt in range(MAX_BOUNDED_TRIES + 1):
            if attempt == MAX_BOUNDED_TRIES:
                # A bound this far off means a detour-heavy pair or an unreachable target:
                # one unbounded search settles it either way.
                limit = np.inf
            dist, pred = dijkstra(
                self._forward, directed=True, indices=source, return_predecessors=True, limit=limit
            )
            if np.isfinite(dist[target]):
                break
            limit *= 2.0
        cost = float(dist[target])
        if not np.isfinite(cost):
            return PathResult(cost, [], [])
        nodes = [target]
        node = target
        while node != source:
            node = int(pred[node])
            nodes.append(node)
        nodes.reverse()
        edges = self.edge_between(nodes[:-1], nodes[1:]).tolist()
        return PathResult(cost, nodes, edges)

    def costs_to(self, target: int, sources: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
        """Cheapest cost from each source node to ``target``: one search on the reversed graph.

        Args:
            target: destination node index.
            sources: origin node indices.

        Returns:
            ``(costs, predecessors)``: ``costs[i]`` for ``sources[i]`` (``inf`` if unreachable),
            and for every node the next node towards ``target`` (``-9999`` where none).
        """
        src = np.asarray(sources, dtype=np.int64)
        dist, pred = dijkstra(
            self._backward, directed=True, indices=target, return_predecessors=True
        )
        costs: FloatArray = dist[src]
        return costs, pred.astype(np.int64)

    def sum_along_tree(
        self, target: int, sources: npt.ArrayLike, next_hop: IntArray, values: FloatArray
    ) -> FloatArray:
        """Sum a per-edge value along each source's tree path to ``target``.

        Walks all sources one hop at a time together (numpy), so the cost is the longest path's
        hop count, not the total.

        Args:
            target: the tree's root.
            sources: node indices.
            next_hop: predecessors from :meth:`costs_to`.
            values: ``float64[E]`` per-edge values (e.g. lengths).

        Returns:
            ``float64`` per source; ``inf`` where a source is not in the tree.
        """
        current = np.asarray(sources, dtype=np.int64).copy()
        total = np.zeros(current.shape[0], dtype=np.float64)
        lost = (next_hop[current] == _NO_PREDECESSOR) & (current != target)
        total[lost] = np.inf
        active = np.flatnonzero((current != target) & ~lost)
        while active.size:
            here = current[active]
            there = next_hop[here]
            total[active] += values[self.edge_between(here, there)]
            current[active] = there
            active = active[there != target]
        return total
