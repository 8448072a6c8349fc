"""Maximal covering of demand by p posts: greedy with swaps, and the exact MILP for checking.

The objective (per band): the expected calls within ``cover_s`` of a post, each call counted
once, plus a small closeness bonus ``closeness * (1 - t / cover_s)`` for the nearest post, so
that among sites covering the same calls the one nearest the calls wins (a post stands where
the incidents are, not merely within reach of them).

:func:`greedy_cover` adds the best site one at a time (recording each addition's marginal
gain) and then improves the set by single swaps until none helps. Coverage is submodular, so
greedy alone is within 1 - 1/e of the optimum; in practice (``benchmarks/pivots.py``) the swaps
close most of the rest. :func:`exact_cover` solves the plain MCLP (no bonus) with HiGHS for
measuring that gap: on the Shanghai extract it takes tens of seconds per band, which is why the
planner does not use it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MAX_SWAP_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class CoverResult:
    """Chosen candidate rows, in the order greedy would add them.

    Attributes:
        chosen: candidate rows.
        gains: calls each chosen row brings within cover_s beyond the ones before it.
        covered: demand within cover_s of the set (without the closeness bonus).
        curve: covered demand after each greedy addition, up to the largest p asked for.
        curve_hot: likewise for the "hot" part of the demand.
        swaps: improving swaps made.
    """

    chosen: IntArray
    gains: FloatArray
    covered: float
    curve: FloatArray
    curve_hot: FloatArray
    swaps: int


class CoverProblem:
    """One band's demand against the candidates' coverage.

    Args:
        time_s: CSR candidates x nodes travel times (stored entries = covered).
        cover_s: coverage time.
        demand: ``float64[nodes]`` expected calls.
        hot: ``float64[nodes]`` the part of demand that counts towards the coverage target.
        closeness: weight of the closeness bonus.
        hot_weight: extra weight of hot calls when choosing sites (0: all calls alike).
    """

    def __init__(
        self,
        time_s: sp.csr_matrix,
        cover_s: float,
        demand: FloatArray,
        hot: FloatArray,
        *,
        closeness: float,
        hot_weight: float = 0.0,
    ) -> None:
        # Keep only the candidates and nodes that carry demand: the rest cannot change a gain.
        cols = np.flatnonzero(demand > 0)
        self.cols: IntArray = cols.astype(np.int64)
        sub = time_s[:, cols].tocsr()
        sub.eliminate_zeros()
        self.rows_all = time_s.shape[0]
        useful = np.flatnonzero(np.diff(sub.indptr) > 0)
        self.rows: IntArray = useful.astype(np.int64)
        m = sub[useful].tocsr()
        self.indptr = m.indptr
        self.indices = m.indices
        self.score = 1.0 + closeness * (1.0 - m.data / cover_s)
        self.w_plain = demand[cols]
        self.w_hot = hot[cols]
        # What the sites are chosen by: hot calls count (1 + hot_weight) times.
        self.w = self.w_plain + hot_weight * self.w_hot
        self.n = cols.shape[0]
        self._row_of_entry = np.repeat(np.arange(useful.shape[0]), np.diff(m.indptr))

    def _gains(self, best: FloatArray) -> FloatArray:
        up = np.maximum(self.score - best[self.indices], 0.0) * self.w[self.indices]
        out: FloatArray = np.bincount(
            self._row_of_entry, weights=up, minlength=self.rows.shape[0]
        ).astype(np.float64)
        return out

    def _row_gain(self, r: int, best: FloatArray) -> float:
        lo, hi = self.indptr[r], self.indptr[r + 1]
        idx = self.indices[lo:hi]
        return float((np.maximum(self.score[lo:hi] - best[idx], 0.0) * self.w[idx]).sum())

    def _add(self, r: int, best: FloatArray) -> None:
        lo, hi = self.indptr[r], self.indptr[r + 1]
        idx = self.indices[lo:hi]  # unique within a row, so plain fancy assignment is safe
        best[idx] = np.maximum(best[idx], self.score[lo:hi])

    def _best(self, chosen: list[int]) -> FloatArray:
        best = np.zeros(self.n)
        for r in chosen:
            self._add(r, best)
        return best

    def _value(self, best: FloatArray) -> float:
        return float((best * self.w).sum())

    def _covered(self, best: FloatArray, weights: FloatArray) -> float:
        return float(weights[best > 0].sum())

    def greedy(self, k_max: int) -> tuple[list[int], FloatArray, FloatArray]:
        """Add up to ``k_max`` sites greedily (stopping when nothing more is gained).

        Lazy greedy (CELF): a site's gain can only shrink as others are added, so stale gains
        are upper bounds and only the site on top of the heap is re-evaluated; the result is
        the plain greedy's.

        Returns:
            ``(order, curve, curve_hot)``: local rows in the order added, and the demand
            (all, and hot) within cover_s after each addition.
        """
        best = np.zeros(self.n)
        order: list[int] = []
        curve: list[float] = []
        curve_hot: list[float] = []
        first = self._gains(best)
        # Max-heap of (-gain, row, step at which the gain was computed); ties by row.
        heap = [(-float(g), r, 0) for r, g in enumerate(first.tolist()) if g > 0]
        heapq.heapify(heap)
        while heap and len(order) < k_max:
            _, r, step = heapq.heappop(heap)
            if step != len(order):
                gain = self._row_gain(r, best)
                if gain > 0:
                    heapq.heappush(heap, (-gain, r, len(order)))
                continue
            order.append(r)
            self._add(r, best)
            curve.append(self._covered(best, self.w_plain))
            curve_hot.append(self._covered(best, self.w_hot))
        return order, np.asarray(curve), np.asarray(curve_hot)

    def finish(
        self, chosen: list[int], curve: FloatArray, curve_hot: FloatArray, *, swaps: bool = True
    ) -> CoverResult:
        """Improve a greedy prefix by swaps and order it; rows become candidate rows."""
        n_swaps = 0
        if swaps:
            chosen, n_swaps = self._swap(chosen)
        rows, gains = self._ordered(chosen)
        best = self._best(rows)
        return CoverResult(
            chosen=self.rows[np.asarray(rows, dtype=np.int64)],
            gains=np.asarray(gains, dtype=np.float64),
            covered=self._covered(best, self.w_plain),
            curve=curve,
            curve_hot=curve_hot,
            swaps=n_swaps,
        )

    def solve(self, p: int, *, swaps: bool = True) -> CoverResult:
        """Choose ``p`` sites (fewer if fewer candidates carry demand)."""
        order, curve, curve_hot = self.greedy(p)
        return self.finish(order, curve, curve_hot, swaps=swaps)

    def assign(self, result: CoverResult) -> IntArray:
        """For each demand node of the problem, the position in ``result.chosen`` of the post
        that serves it (the highest score), ``-1`` when none is within cover_s."""
        local = np.searchsorted(self.rows, result.chosen)
        best = np.zeros(self.n)
        owner = np.full(self.n, -1, dtype=np.int64)
        for pos, r in enumerate(local.tolist()):
            lo, hi = self.indptr[r], self.indptr[r + 1]
            idx, sc = self.indices[lo:hi], self.score[lo:hi]
            better = sc > best[idx]
            best[idx[better]] = sc[better]
            owner[idx[better]] = pos
        return owner

    def _swap(self, chosen: list[int]) -> tuple[list[int], int]:
        """Single swaps (drop one, add the best other) while any improves the objective."""
        swaps = 0
        if not chosen:
            return chosen, 0
        for _ in range(MAX_SWAP_ROUNDS):
            improved = False
            stale = True
            for k in range(len(chosen)):
                if stale:  # the two best scores per node, recomputed after each swap
                    scores = np.zeros((len(chosen), self.n))
                    for i, r in enumerate(chosen):
                        self._add(r, scores[i])
                    top = np.argmax(scores, axis=0)
                    first = scores[top, np.arange(self.n)]
                    second = (
                        np.partition(scores, -2, axis=0)[-2]
                        if len(chosen) > 1
                        else np.zeros(self.n)
                    )
                    current = self._value(first)
                    stale = False
                base = np.where(top == k, second, first)
                g = self._gains(base)
                others = chosen[:k] + chosen[k + 1 :]
                g[others] = -1.0
                r = int(np.argmax(g))
                if r != chosen[k] and self._value(base) + g[r] > current * (1 + 1e-9) + 1e-12:
                    chosen = [*others[:k], r, *others[k:]]
                    swaps += 1
                    improved = stale = True
            if not improved:
                break
        return chosen, swaps

    def _ordered(self, chosen: list[int]) -> tuple[list[int], list[float]]:
        """Chosen rows re-ordered greedily (by the objective), with the calls each one brings
        within cover_s that the ones before it did not."""
        left = list(chosen)
        best = np.zeros(self.n)
        rows: list[int] = []
        gains: list[float] = []
        covered = 0.0
        while left:
            g = [self._row_gain(r, best) for r in left]
            k = int(np.argmax(g))
            r = left.pop(k)
            rows.append(r)
            self._add(r, best)
            now = self._covered(best, self.w_plain)
            gains.append(now - covered)
            covered = now
        return rows, gains


def greedy_cover(
    time_s: sp.csr_matrix,
    cover_s: float,
    demand: FloatArray,
    p: int,
    *,
    hot: FloatArray | None = None,
    closeness: float = 0.3,
    curve_to: int | None = None,
) -> CoverResult:
    """Greedy-with-swaps maximal covering (see the module docstring); rows are candidate rows
    of ``time_s``."""
    problem = CoverProblem(
        time_s, cover_s, demand, demand if hot is None else hot, closeness=closeness
    )
    order, curve, curve_hot = problem.greedy(max(p, curve_to or 0))
    return problem.finish(order[:p], curve, curve_hot)


def exact_cover(
    time_s: sp.csr_matrix, demand: FloatArray, p: int, *, time_limit_s: float = 120.0
) -> tuple[IntArray, float, float]:
    """The plain MCLP solved by HiGHS: ``(chosen rows, covered demand, MIP gap)``.

    max sum_i w_i y_i  s.t.  y_i <= sum_j a_ij x_j,  sum_j x_j = p,  x binary, 0 <= y <= 1.
    """
    import highspy  # type: ignore[import-untyped,unused-ignore]

    cols = np.flatnonzero(demand > 0)
    a = (time_s[:, cols] > 0).astype(np.float64).T.tocsr()  # demand x candidates
    nd, nc = a.shape
    rows = sp.vstack(
        [
            sp.hstack([-a, sp.identity(nd, format="csr")]),
            sp.hstack([sp.csr_matrix(np.ones((1, nc))), sp.csr_matrix((1, nd))]),
        ]
    ).tocsc()
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = nc + nd
    lp.num_row_ = nd + 1
    lp.col_cost_ = np.concatenate([np.zeros(nc), -demand[cols]])
    lp.col_lower_ = np.zeros(nc + nd)
    lp.col_upper_ = np.ones(nc + nd)
    lp.row_lower_ = np.concatenate([np.full(nd, -inf), [float(p)]])
    lp.row_upper_ = np.concatenate([np.zeros(nd), [float(p)]])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = rows.indptr
    lp.a_matrix_.index_ = rows.indices
    lp.a_matrix_.value_ = rows.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * nc + [highspy.HighsVarType.kContinuous] * nd
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(lp)
    h.run()
    x = np.asarray(h.getSolution().col_value[:nc])
    info = h.getInfo()
    chosen = np.flatnonzero(x > 0.5).astype(np.int64)
    return chosen, -float(info.objective_function_value), float(info.mip_gap)
