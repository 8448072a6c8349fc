"""Contraction hierarchies over the turn graph: preprocessing, its cache file, and queries.

Query cost grows with the height of the hierarchy, not with the graph: a route on a
million-node city settles a few thousand states where Dijkstra settles millions. Costs equal a
plain Dijkstra over the same turn graph (:meth:`ContractionHierarchy.dijkstra` is that
reference); the search spaces are exact, only their order of summation differs.

Cache file (``numpy.savez``, no pickles): the upward (``f_*``) and downward (``b_*``) CSR, the
arcs' children for unpacking, and ``meta`` (format version, the turn graph's fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _ch
from .errors import GraphFormatError
from .graph import FloatArray, IntArray
from .turns import TurnGraph

HIERARCHY_FORMAT_VERSION = 2
# Label tables start this big (slots; a table is kept under half full) and grow fourfold on
# overflow; each hierarchy remembers the size its queries last needed. Start small: tables are
# allocated per query, and one past malloc's mmap threshold (128 kB) costs page faults that
# dwarf a search of a few hundred labels (1.6 ms against 0.08 ms on the Shanghai extract).
_FIRST_CAP = 1 << 11
_MAX_CAP = 1 << 26
_ARRAYS = (
    "f_off", "f_nb", "f_wt", "f_ln", "f_arc", "b_off", "b_nb", "b_wt", "b_ln", "b_arc",
    "a_c1", "a_c2", "a_src", "a_dst", "rank", "inv",
)  # fmt: skip


def fingerprint(turns: TurnGraph) -> str:
    """A digest of a turn graph's arcs and weights (a cache is valid only for the same one)."""
    digest = hashlib.sha256()
    digest.update(np.int64(turns.state_count).tobytes())
    for arr in (turns.arc_offsets, turns.arc_to, turns.arc_weight_s, turns.arc_length_m):
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()[:24]


def _csr(
    by: IntArray, nb: IntArray, wt: FloatArray, ln: FloatArray, arc: IntArray, n: int
) -> tuple[IntArray, npt.NDArray[np.int32], FloatArray, FloatArray, npt.NDArray[np.int32]]:
    order = np.argsort(by, kind="stable")
    off = np.concatenate([[0], np.cumsum(np.bincount(by, minlength=n))]).astype(np.int64)
    return (
        off,
        nb[order].astype(np.int32),
        wt[order].astype(np.float64),
        ln[order].astype(np.float64),
        arc[order].astype(np.int32),
    )


class _Table:
    """One search's labels: open-addressing keys (empty between queries), cost, length,
    predecessor state and arc per slot, and the slots the search filled."""

    def __init__(self, cap: int) -> None:
        self.keys = np.full(cap, -1, dtype=np.int64)
        self.dist = np.empty(cap, dtype=np.float64)
        self.length = np.empty(cap, dtype=np.float64)
        self.pred = np.empty(cap, dtype=np.int64)
        self.pred_arc = np.empty(cap, dtype=np.int64)
        self.touched = np.empty(cap, dtype=np.int64)

    def arrays(self) -> tuple[IntArray, FloatArray, FloatArray, IntArray, IntArray, IntArray]:
        """The kernels' argument order: keys, dist, length, pred, pred_arc, touched."""
        return self.keys, self.dist, self.length, self.pred, self.pred_arc, self.touched


class _Scratch:
    """Two label tables and a queue's room, for one thread's point-to-point queries."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.a = _Table(cap)
        self.b = _Table(cap)
        self.hk = np.empty(4 * cap, dtype=np.float64)
        self.hv = np.empty(4 * cap, dtype=np.int32)


class _SweepScratch:
    """Room for one one-to-many query: the root's label table and queue (``cap`` slots), and
    the sweep's arrays over every state (21 bytes a state: 47 MB on the 1M-node region, made
    once and pooled)."""

    def __init__(self, cap: int, states: int) -> None:
        self.cap = cap
        self.root = _Table(cap)
        self.hk = np.empty(4 * cap, dtype=np.float64)
        self.hv = np.empty(4 * cap, dtype=np.int32)
        self.mark = np.zeros(states, dtype=np.bool_)
        self.members = np.empty(states, dtype=np.int32)
        self.best = np.empty(states, dtype=np.float64)
        self.best_len = np.empty(states, dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class PathAnswer:
    """One point-to-point answer: cost (seconds), length (metres), states in travel order."""

    cost: float
    length: float
    states: IntArray


class ContractionHierarchy:
    """A contracted turn graph answering cheapest-path queries between weighted state sets.

    Seeds: a query starts from one or more states each with a starting cost and length (the
    part of the first edge still to drive), and ends at states each with an end offset (the
    part of the last edge not driven, usually negative). That is how a route starts and ends
    part-way along an edge. Thread-safe: each thread keeps its own labels, and queries release
    the GIL.
    """

    def __init__(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.meta = dict(meta)
        self.state_count = int(meta["state_count"])
        self._a: dict[str, Any] = {name: arrays[name] for name in _ARRAYS}
        # The label table size queries start with: grows (never shrinks) when one overflows.
        # Threads may race on it; the worst a race costs is one retry.
        self._cap = _FIRST_CAP
        self._cap_many = _FIRST_CAP  # the same for the root of one-to-many sweeps
        self._local = threading.local()
        self._sweeps: queue.SimpleQueue[_SweepScratch] = queue.SimpleQueue()

    def _take_scratch(self, cap: int) -> _Scratch:
        """This thread's tables for point-to-point queries, ``cap`` slots (made once, then
        reused: allocating and faulting in megabytes per query cost more than the search).
        Taken for one query and put back by it (``self._local.route = w``): one that raised
        leaves its tables dirty, and they are dropped."""
        got: _Scratch | None = getattr(self._local, "route", None)
        self._local.route = None
        if got is None or got.cap != cap:
            got = _Scratch(cap)
        return got

    def _borrow_sweep(self, cap: int) -> _SweepScratch:
        """Room for one one-to-many query (see :class:`_SweepScratch`): taken from a shared
        pool rather than kept per thread, so the memory follows how many sweeps run at once,
        not how many threads have ever run one. The query puts it back (``self._sweeps.put``)."""
        try:
            got = self._sweeps.get_nowait()
        except queue.Empty:
            return _SweepScratch(cap, self.state_count)
        if got.cap != cap:  # only the root's table and queue depend on the size
            got.cap, got.root = cap, _Table(cap)
            got.hk = np.empty(4 * cap, dtype=np.float64)
            got.hv = np.empty(4 * cap, dtype=np.int32)
        return got

    # ------------------------------------------------------------------------- building

    @classmethod
    def build(cls, turns: TurnGraph, *, seed: int = 0) -> ContractionHierarchy:
        """Contract ``turns`` (minutes for millions of states; seconds for a city district)."""
        start = time.perf_counter()
        src = turns.arc_sources()
        dst = turns.arc_to
        loop = src == dst  # a self-loop is never on a cheapest path
        keep = ~loop
        rng = np.random.default_rng(seed)
        # A small jitter breaks priority ties the same way every build (reproducible order).
        hint = rng.uniform(0.0, 0.25, turns.state_count)
        rank, a_src, a_dst, a_w, a_len, c1, c2, alive, _ = _ch.contract(
            turns.state_count,
            np.ascontiguousarray(src[keep], dtype=np.int32),
            np.ascontiguousarray(dst[keep], dtype=np.int32),
            np.ascontiguousarray(turns.arc_weight_s[keep]),
            np.ascontiguousarray(turns.arc_length_m[keep]),
            hint,
        )
        if np.any(rank < 0):
            raise RuntimeError("contraction left states unranked")
        # States are renumbered by rank (internal id = rank): an upward search then climbs
        # into one compact block of the arrays, the hierarchy's top, instead of jumping about
        # millions of states (memory latency, not arithmetic, is what a query pays for at that
        # scale). ``rank`` maps a turn-graph state to its internal id, ``inv`` back.
        a_src = rank[a_src].astype(np.int32)
        a_dst = rank[a_dst].astype(np.int32)
        inv = np.argsort(rank).astype(np.int32)
        arc_ids = np.flatnonzero(alive).astype(np.int64)
        u, v = a_src[arc_ids].astype(np.int64), a_dst[arc_ids].astype(np.int64)
        up = u < v
        n = turns.state_count
        # Upward graph at the lower end; the downward one stored at its lower (head) end too,
        # so a backward search from a target climbs it.
        f = _csr(u[up], v[up], a_w[arc_ids[up]], a_len[arc_ids[up]], arc_ids[up], n)
        down = ~up
        b = _csr(v[down], u[down], a_w[arc_ids[down]], a_len[arc_ids[down]], arc_ids[down], n)
        arrays = {
            "f_off": f[0], "f_nb": f[1], "f_wt": f[2], "f_ln": f[3], "f_arc": f[4],
            "b_off": b[0], "b_nb": b[1], "b_wt": b[2], "b_ln": b[3], "b_arc": b[4],
            "a_c1": c1.astype(np.int32), "a_c2": c2.astype(np.int32),
            "a_src": a_src.astype(np.int32), "a_dst": a_dst.astype(np.int32),
            "rank": rank.astype(np.int32), "inv": inv,
        }  # fmt: skip
        meta = {
            "format_version": HIERARCHY_FORMAT_VERSION,
            "state_count": n,
            "fingerprint": fingerprint(turns),
            "turn_arcs": int(keep.sum()),
            "shortcuts": int(alive.sum()) - int(keep.sum()),
            "build_s": round(time.perf_counter() - start, 3),
            "seed": seed,
        }
        return cls(arrays, meta)

    @property
    def nbytes(self) -> int:
        """Memory held by the hierarchy's arrays."""
        return int(sum(arr.nbytes for arr in self._a.values()))

    def save(self, path: Path) -> Path:
        """Write the hierarchy beside its graph (atomic rename); returns ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with tmp.open("wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(self.meta)), **self._a)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path, *, expect_fingerprint: str | None = None) -> ContractionHierarchy:
        """Read a hierarchy written by :meth:`save`.

        Raises:
            GraphFormatError: unreadable, another format version, or built for another turn
                graph (``expect_fingerprint`` differs).
        """
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                arrays = {name: npz[name] for name in _ARRAYS}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise GraphFormatError(f"{path}: not a readable hierarchy ({exc})") from exc
        if meta.get("format_version") != HIERARCHY_FORMAT_VERSION:
            raise GraphFormatError(f"{path}: hierarchy format {meta.get('format_version')}")
        if expect_fingerprint is not None and meta.get("fingerprint") != expect_fingerprint:
            raise GraphFormatError(f"{path}: built for another graph or profile")
        return cls(arrays, meta)

    # ------------------------------------------------------------------------- queries

    def route(
        self,
        src: npt.ArrayLike,
        src_cost: npt.ArrayLike,
        src_len: npt.ArrayLike,
        dst: npt.ArrayLike,
        dst_cost: npt.ArrayLike,
        dst_len: npt.ArrayLike,
    ) -> PathAnswer:
        """Cheapest path from the source seeds to the target seeds.

        Args:
            src, src_cost, src_len: source states and their starting cost / length.
            dst, dst_cost, dst_len: target states and the cost / length added on arriving.

        Returns:
            The answer; cost ``inf`` and no states when no path exists.
        """
        a = self._a
        rank = a["rank"]
        s = rank[np.asarray(src, dtype=np.int64)].astype(np.int64)
        t = rank[np.asarray(dst, dtype=np.int64)].astype(np.int64)
        sc, sl = np.asarray(src_cost, np.float64), np.asarray(src_len, np.float64)
        tc, tl = np.asarray(dst_cost, np.float64), np.asarray(dst_len, np.float64)
        cap = self._cap
        while True:
            w = self._take_scratch(cap)
            cost, length, states, ok = _ch.point_to_point(
                s, sc, sl, t, tc, tl,
                a["f_off"], a["f_nb"], a["f_wt"], a["f_ln"], a["f_arc"],
                a["b_off"], a["b_nb"], a["b_wt"], a["b_ln"], a["b_arc"],
                a["a_c1"], a["a_c2"], a["a_src"], a["a_dst"],
                *w.a.arrays(), *w.b.arrays(), w.hk, w.hv,
            )  # fmt: skip
            self._local.route = w
            if ok or cap >= _MAX_CAP:
                path = a["inv"][np.asarray(states, dtype=np.int64)].astype(np.int64)
                return PathAnswer(float(cost), float(length), path)
            cap *= 4
            self._cap = max(self._cap, cap)

    def one_to_many(
        self,
        root: npt.ArrayLike,
        root_cost: npt.ArrayLike,
        root_len: npt.ArrayLike,
        others: npt.ArrayLike,
        other_cost: npt.ArrayLike,
        other_len: npt.ArrayLike,
        other_group: npt.ArrayLike,
        groups: int,
        *,
        root_is_target: bool,
    ) -> tuple[FloatArray, FloatArray]:
        """Cost and length between one root seed set and each of ``groups`` seed sets.

        Args:
            root, root_cost, root_len: the common end's seeds.
            others, other_cost, other_len: every other point's seeds, sorted by group.
            other_group: ``int[k]`` the group (point index) of each seed.
            groups: number of points.
            root_is_target: True for many origins to one destination (the root's seeds are
                target seeds), False for one origin to many destinations.

        Returns:
            ``(cost[groups], length[groups])``, ``inf`` where no path.
        """
        a = self._a
        rank = a["rank"]
        r, o = ("b", "f") if root_is_target else ("f", "b")
        cap = self._cap_many
        while True:
            w = self._borrow_sweep(cap)
            # A query that raised leaves its arrays dirty: the scratch is then dropped.
            cost, length, ok = _ch.one_to_many(
                rank[np.asarray(root, dtype=np.int64)].astype(np.int64),
                np.asarray(root_cost, dtype=np.float64),
                np.asarray(root_len, dtype=np.float64),
                a[f"{r}_off"], a[f"{r}_nb"], a[f"{r}_wt"], a[f"{r}_ln"], a[f"{r}_arc"],
                a[f"{o}_off"], a[f"{o}_nb"], a[f"{o}_wt"], a[f"{o}_ln"], a[f"{o}_arc"],
                rank[np.asarray(others, dtype=np.int64)].astype(np.int64),
                np.asarray(other_cost, dtype=np.float64),
                np.asarray(other_len, dtype=np.float64),
                np.asarray(other_group, dtype=np.int64),
                groups,
                *w.root.arrays(), w.mark, w.members, w.best, w.best_len, w.hk, w.hv,
            )  # fmt: skip
            self._sweeps.put(w)
            if ok or cap >= _MAX_CAP:
                return np.asarray(cost, dtype=np.float64), np.asarray(length, dtype=np.float64)
            cap *= 4
            self._cap_many = max(self._cap_many, cap)


def dijkstra(
    turns: TurnGraph,
    src: npt.ArrayLike,
    src_cost: npt.ArrayLike,
    src_len: npt.ArrayLike,
    *,
    bound: float = np.inf,
    reverse_arcs: tuple[IntArray, npt.NDArray[np.int32], FloatArray, FloatArray] | None = None,
    targets: npt.ArrayLike = (),
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Plain Dijkstra over the turn graph from weighted seeds: the hierarchy's reference.

    Args:
        turns: the turn graph.
        src, src_cost, src_len: seeds.
        bound: stop past this cost.
        targets: stop once all these states are settled (costs beyond them are then ``inf``).
        reverse_arcs: a reversed CSR ``(offsets, to, weight, length)`` to search backwards.

    Returns:
        ``(cost, length, pred)`` over all states.
    """
    if reverse_arcs is None:
        off, to, wt, ln = turns.arc_offsets, turns.arc_to, turns.arc_weight_s, turns.arc_length_m
    else:
        off, to, wt, ln = reverse_arcs
    cost, length, pred = _ch.dijkstra(
        off, to, wt, ln,
        np.asarray(src, dtype=np.int64),
        np.asarray(src_cost, dtype=np.float64),
        np.asarray(src_len, dtype=np.float64),
        turns.state_count,
        float(bound),
        np.asarray(targets, dtype=np.int64).reshape(-1),
    )  # fmt: skip
    return cost, length, pred


class PlainSearch:
    """The same queries as :class:`ContractionHierarchy`, by plain Dijkstra over the turn graph.

    The reference the hierarchy is checked against, and the engine of ``Router(...,
    use_hierarchy=False)``. Each query allocates labels for every state.
    """

    def __init__(self, turns: TurnGraph) -> None:
        self.turns = turns
        src = turns.arc_sources()
        order = np.lexsort((src, turns.arc_to))
        self._reverse = (
            np.concatenate(
                [[0], np.cumsum(np.bincount(turns.arc_to, minlength=turns.state_count))]
            ).astype(np.int64),
            src[order].astype(np.int32),
            turns.arc_weight_s[order],
            turns.arc_length_m[order],
        )

    def route(
        self,
        src: npt.ArrayLike,
        src_cost: npt.ArrayLike,
        src_len: npt.ArrayLike,
        dst: npt.ArrayLike,
        dst_cost: npt.ArrayLike,
        dst_len: npt.ArrayLike,
    ) -> PathAnswer:
        """See :meth:`ContractionHierarchy.route`."""
        t = np.asarray(dst, dtype=np.int64)
        cost, length, pred = dijkstra(self.turns, src, src_cost, src_len, targets=t)
        total = cost[t] + np.asarray(dst_cost, dtype=np.float64)
        if t.size == 0 or not np.isfinite(total).any():
            return PathAnswer(np.inf, np.inf, np.zeros(0, dtype=np.int64))
        best = int(np.argmin(total))
        node = int(t[best])
        states = [node]
        while pred[node] >= 0:
            node = int(pred[node])
            states.append(node)
        states.reverse()
        return PathAnswer(
            float(total[best]),
            float(length[t[best]] + np.asarray(dst_len, dtype=np.float64)[best]),
            np.asarray(states, dtype=np.int64),
        )

    def one_to_many(
        self,
        root: npt.ArrayLike,
        root_cost: npt.ArrayLike,
        root_len: npt.ArrayLike,
        others: npt.ArrayLike,
        other_cost: npt.ArrayLike,
        other_len: npt.ArrayLike,
        other_group: npt.ArrayLike,
        groups: int,
        *,
        root_is_target: bool,
    ) -> tuple[FloatArray, FloatArray]:
        """See :meth:`ContractionHierarchy.one_to_many`."""
        o = np.asarray(others, dtype=np.int64)
        cost, length, _ = dijkstra(
            self.turns, root, root_cost, root_len,
            reverse_arcs=self._reverse if root_is_target else None, targets=o,
        )  # fmt: skip
        total = cost[o] + np.asarray(other_cost, dtype=np.float64)
        total_len = length[o] + np.asarray(other_len, dtype=np.float64)
        group = np.asarray(other_group, dtype=np.int64)
        out = np.full(groups, np.inf)
        out_len = np.full(groups, np.inf)
        for i in np.argsort(total, kind="stable")[::-1].tolist():
            out[group[i]] = total[i]
            out_len[group[i]] = total_len[i]
        return out, out_len
