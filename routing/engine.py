"""Shortest paths on CSR arrays with scipy's compiled Dijkstra.

Measured (see ``benchmarks/routing.py``): one Dijkstra over all of a 50k-node city takes ~4 ms;
bounding it with ``limit`` (a lower bound on the answer times a slack, doubled on a miss)
settles only the nodes that can matter and roughly halves that. The answer is exact either way:
scipy settles every node whose distance is within ``limit`` exactly, and a miss just retries
with a larger one. One-to-many searches (:meth:`CsrEngine.search` with many wanted nodes) use
the same bound on the farthest wanted node; with 50 nodes spread over a city it still settles
~99 % of the graph, so there the search is the full ~4 ms and the bound only pays off when the
wanted nodes are near the root. Path lengths come from :meth:`CsrEngine.path_sums` (~0.4 ms for
50 paths of up to ~300 hops, against ~2.2 ms for the former hop-by-hop lookup walk).

Every call allocates its own arrays, and the CSR matrices are never written after
construction, so one engine is safe to share between threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import dijkstra  # type: ignore[import-untyped,unused-ignore]

from .graph import FloatArray, Int32Array, IntArray, RoadGraph, haversine_m

# First bound = straight-line lower bound x slack. The slack is calibrated per graph (see
# calibrate()): detour factors differ a lot between a grid (~1.7) and Shanghai (~2, tail 5).
DEFAULT_SLACK = 2.0
CALIBRATION_PAIRS = 32
CALIBRATION_QUANTILE = 90.0
LIMIT_FLOOR_S = 30.0
MAX_BOUNDED_TRIES = 3
_NO_PREDECESSOR = -9999  # scipy's marker
# path_sums checks whether every walk has reached the root once per this many hops.
_WALK_CHECK_EVERY = 16


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

    def search(
        self, root: int, wanted: npt.ArrayLike, *, reverse: bool = False
    ) -> tuple[FloatArray, Int32Array]:
        """One Dijkstra from ``root``, bounded just enough to settle every ``wanted`` node.

        The first bound is the largest straight-line lower bound from ``root`` to a wanted node
        times the calibrated slack; a miss doubles it, and after :data:`MAX_BOUNDED_TRIES`
        misses one unbounded search settles everything. Costs of settled nodes are exact
        whatever the bound.

        Args:
            root: the search's start node (the common destination when ``reverse``).
            wanted: node indices whose costs the caller needs.
            reverse: search the reversed graph, giving costs *to* ``root``.

        Returns:
            ``(cost, pred)`` over all nodes. ``cost[v]``: from ``root`` to ``v`` (to ``root``
            from ``v`` when ``reverse``), ``inf`` if unreachable or beyond the final bound.
            ``pred[v]``: the node before ``v`` on that path (after ``v`` when ``reverse``);
            ``pred[root] == root``, and ``-9999`` where ``v`` was not settled.
        """
        matrix = self._backward if reverse else self._forward
        want = np.asarray(wanted, dtype=np.int64)
        crow = 0.0
        if want.size:
            lat, lon = self._lat, self._lon
            crow = float(np.max(haversine_m(lat[root], lon[root], lat[want], lon[want])))
        limit = max(crow / self._max_speed_mps * self.slack, LIMIT_FLOOR_S)
        for attempt in range(MAX_BOUNDED_TRIES + 1):
            if attempt == MAX_BOUNDED_TRIES:
                # A bound this far off means a detour-heavy pair or an unreachable node: one
                # unbounded search settles it either way.
                limit = np.inf
            cost, pred = dijkstra(
                matrix, directed=True, indices=root, return_predecessors=True, limit=limit
            )
            if np.isfinite(cost[want]).all():
                break
            limit *= 2.0
        pred[root] = root
        return cost, pred

    def shortest_path(self, source: int, target: int) -> PathResult:
        """Find the cheapest path from node ``source`` to node ``target``.

        Returns:
            The path; cost ``inf`` and empty lists when ``target`` is unreachable.
        """
        if source == target:
            return PathResult(0.0, [source], [])
        dist, pred = self.search(source, [target])
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

    def path_sums(
        self,
        root: int,
        nodes: npt.ArrayLike,
        pred: Int32Array,
        values: FloatArray,
        *,
        reverse: bool = False,
    ) -> FloatArray:
        """Sum a per-edge value along each node's tree path to or from ``root``.

        All paths are walked together, one ``take`` per hop (about 0.6 us), recording the
        nodes; the edges are then looked up once per distinct node of the union of the paths
        (paths to one root merge, so that union is far smaller than the sum of their hops).

        Args:
            root: the tree's root.
            nodes: node indices.
            pred: predecessors from :meth:`search` with the same ``root`` and ``reverse``.
            values: ``float64[E]`` per-edge values (e.g. lengths).
            reverse: the tree came from a reversed search (paths run from ``nodes`` to
                ``root``).

        Returns:
            ``float64`` per node; ``inf`` where a node is not in the tree.
        """
        start = np.asarray(nodes, dtype=np.int64)
        if start.size == 0:
            return np.zeros(0, dtype=np.float64)
        if pred[root] != root:
            raise ValueError("pred must come from search() with the same root")
        lost = pred[start] == _NO_PREDECESSOR
        # A node outside the tree walks from the root (no hops); it is set to inf at the end.
        cursor = np.where(lost, root, start).astype(pred.dtype)
        step = pred.take
        rows = [cursor]
        while True:
            for _ in range(_WALK_CHECK_EVERY):
                cursor = step(cursor)
                rows.append(cursor)
            if (cursor == root).all():  # pred[root] == root: walking on is harmless
                break
            if len(rows) > self._n + _WALK_CHECK_EVERY:  # a tree path has fewer hops
                raise ValueError("pred is not a shortest-path tree rooted at root")
        walked = np.stack(rows)
        on_path = np.zeros(self._n, dtype=np.bool_)
        on_path[walked.ravel()] = True
        on_path[root] = False
        hop_from = np.flatnonzero(on_path)
        hop_to = pred[hop_from]
        hop_value = np.zeros(self._n, dtype=np.float64)
        if reverse:
            hop_value[hop_from] = values[self.edge_between(hop_from, hop_to)]
        else:
            hop_value[hop_from] = values[self.edge_between(hop_to, hop_from)]
        total: FloatArray = hop_value[walked].sum(axis=0)
        total[lost] = np.inf
        return total
