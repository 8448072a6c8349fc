"""Who a post covers: road travel time from each candidate site to every node, up to T.

One bounded Dijkstra per candidate over the router's edge times (the emergency profile by
default), run by scipy in chunks of sources and kept as a sparse matrix of the nodes reached
within ``cover_s``. The direction is post -> incident (a crew leaves the post).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import dijkstra  # type: ignore[import-untyped,unused-ignore]

from routing import Router

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Rows of the dense Dijkstra result held at once: chunk x nodes floats stay near 64 MB.
_CHUNK_CELLS = 8_000_000


def road_matrix(router: Router) -> sp.csr_matrix:
    """The router's graph as a CSR matrix of edge travel times, parallel edges reduced to the
    cheapest (scipy would add them)."""
    g = router.graph
    w = router.edge_time_s
    order = np.lexsort((w, g.edge_v, g.edge_u))
    u, v = g.edge_u[order], g.edge_v[order]
    first = np.ones(order.shape[0], dtype=np.bool_)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    keep = order[first]
    n = g.node_count
    return sp.csr_matrix((w[keep], (g.edge_u[keep], g.edge_v[keep])), shape=(n, n))


class Coverage:
    """Travel times within ``cover_s`` from each candidate site to the nodes it reaches.

    Attributes:
        sites: ``int64[candidates]`` node index of each candidate.
        time_s: CSR ``candidates x nodes``: travel time where within ``cover_s``; a stored
            entry means covered (an entry of the site's own node holds a tiny positive time,
            so that no covered pair is an implicit zero).
        cover_s: the coverage time.
    """

    def __init__(self, router: Router, sites: npt.ArrayLike, *, cover_s: float) -> None:
        self.sites: IntArray = np.asarray(sites, dtype=np.int64)
        self.cover_s = float(cover_s)
        matrix = road_matrix(router)
        n = router.graph.node_count
        chunk = max(1, _CHUNK_CELLS // max(n, 1))
        blocks: list[sp.csr_matrix] = []
        for lo in range(0, self.sites.shape[0], chunk):
            src = self.sites[lo : lo + chunk]
            dist = dijkstra(matrix, directed=True, indices=src, limit=self.cover_s)
            reached = np.isfinite(dist)
            dist[reached] = np.maximum(dist[reached], 1e-3)
            dist[~reached] = 0.0
            blocks.append(sp.csr_matrix(dist))
        self.time_s: sp.csr_matrix = (
            sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, n), dtype=np.float64)
        )
        self.time_s.sort_indices()

    @property
    def candidate_count(self) -> int:
        return int(self.sites.shape[0])

    def covered_nodes(self, posts: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Nodes within ``cover_s`` of any of the given candidate rows."""
        rows = np.asarray(posts, dtype=np.int64)
        out = np.zeros(self.time_s.shape[1], dtype=np.bool_)
        if rows.size:
            out[self.time_s[rows].indices] = True
        return out
