"""Compiled kernels (numba) for contraction hierarchies over the turn graph.

Private: :mod:`routing.hierarchy` wraps them. Nodes here are turn-graph *states* (a state is a
road edge driven to its head, see :mod:`routing.turns`); an arc is a permitted turn, or a
shortcut standing for two arcs through a contracted state.

Preprocessing is the classic one (Geisberger et al. 2008): states are contracted one by one in
the order of a lazily updated priority (edge difference, contracted neighbours, level); a
shortcut is added unless a bounded witness search finds a path at most as cheap. Queries are
upward Dijkstra searches with stall-on-demand; their labels live in small open-addressing hash
tables that each thread keeps from query to query (see ``routing.hierarchy``), so queries run
without the GIL from many threads at once. One-to-many queries are RPHAST sweeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba  # type: ignore[import-untyped,unused-ignore]
import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])

# Witness searches stop after settling this many states: a missed witness costs one needless
# shortcut, never a wrong answer.
WITNESS_SETTLE_LIMIT = 400
SIMULATE_SETTLE_LIMIT = 40
_HEAP_CAP = 1 << 16


def _jit(fn: _F) -> _F:
    return cast(_F, numba.njit(cache=True, nogil=True)(fn))


# ----------------------------------------------------------------------------- binary heap
# A lazy min-heap over parallel key / value arrays (duplicates allowed, stale entries skipped
# by the caller). ``size`` lives in a one-element array so helpers can change it.


@_jit
def _heap_push(keys: Any, vals: Any, size: Any, key: float, val: int) -> bool:
    n = size[0]
    if n >= keys.shape[0]:
        return False
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    size[0] = n + 1
    return True


@_jit
def _heap_pop(keys: Any, vals: Any, size: Any) -> tuple[float, int]:
    top_k = keys[0]
    top_v = vals[0]
    n = size[0] - 1
    size[0] = n
    if n > 0:
        key = keys[n]
        val = vals[n]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and keys[child + 1] < keys[child]:
                child += 1
            if keys[child] >= key:
                break
            keys[i] = keys[child]
            vals[i] = vals[child]
            i = child
        keys[i] = key
        vals[i] = val
    return top_k, top_v


# ----------------------------------------------------------------------------- preprocessing


@_jit
def _grow_i32(arr: Any, need: int) -> Any:
    if need <= arr.shape[0]:
        return arr
    out = np.empty(max(need, 2 * arr.shape[0]), dtype=np.int32)
    out[: arr.shape[0]] = arr
    return out


@_jit
def _grow_f64(arr: Any, need: int) -> Any:
    if need <= arr.shape[0]:
        return arr
    out = np.empty(max(need, 2 * arr.shape[0]), dtype=np.float64)
    out[: arr.shape[0]] = arr
    return out


@_jit
def _witness(
    source: int,
    skip: int,
    bound: float,
    limit: int,
    out_start: Any,
    out_len: Any,
    pool_nb: Any,
    pool_arc: Any,
    arc_w: Any,
    done: Any,
    dist: Any,
    stamp: Any,
    tick: int,
    hk: Any,
    hv: Any,
    hsize: Any,
    tmark: Any,
    ntargets: int,
) -> None:
    """Dijkstra from ``source`` avoiding ``skip`` and contracted states, up to ``bound``.

    Stops early once the ``ntargets`` states with ``tmark == tick`` are all settled.
    """
    hsize[0] = 0
    reached = 0
    stamp[source] = tick
    dist[source] = 0.0
    _heap_push(hk, hv, hsize, 0.0, source)
    settled = 0
    while hsize[0] > 0:
        d, x = _heap_pop(hk, hv, hsize)
        if d > dist[x] or d > bound:
            if d > bound:
                break
            continue
        settled += 1
        if settled > limit:
            break
        if tmark[x] == tick:
            tmark[x] = -1
            reached += 1
            if reached >= ntargets:
                break
        lo = out_start[x]
        for k in range(lo, lo + out_len[x]):
            y = pool_nb[k]
            if y == skip or done[y]:
                continue
            nd = d + arc_w[pool_arc[k]]
            if nd > bound:
                continue
            if stamp[y] != tick or nd < dist[y]:
                stamp[y] = tick
                dist[y] = nd
                if not _heap_push(hk, hv, hsize, nd, y):
                    return


@_jit
def _compact(node: int, start: Any, length: Any, pool_nb: Any, pool_arc: Any, done: Any) -> None:
    """Drop list entries of ``node`` that point at contracted states."""
    lo = start[node]
    w = lo
    for k in range(lo, lo + length[node]):
        if not done[pool_nb[k]]:
            pool_nb[w] = pool_nb[k]
            pool_arc[w] = pool_arc[k]
            w += 1
    length[node] = w - lo


@_jit
def contract(
    n: int,
    arc_src: Any,
    arc_dst: Any,
    arc_w0: Any,
    arc_len0: Any,
    rank_hint: Any,
) -> tuple[Any, Any, Any, Any, Any, Any, Any, Any, int]:
    """Contract all ``n`` states of a graph given as arc lists.

    Args:
        n: number of states.
        arc_src, arc_dst: int32 arc endpoints (no self-loops, no parallel arcs).
        arc_w0: float64 arc weights (> 0); arc_len0: float64 arc lengths (carried along).
        rank_hint: float64[n] small tie-breaker added to every priority (e.g. a random jitter).

    Returns:
        ``(rank, arc_src, arc_dst, arc_w, arc_len, child1, child2, alive, arc_count)``: the
        contraction order (rank[v] = position), and every arc (originals first, then shortcuts;
        ``child1/child2`` are -1 for originals), ``alive`` False for arcs a cheaper shortcut
        replaced.
    """
    m0 = arc_src.shape[0]
    cap = max(2 * m0, 16)
    a_src = np.empty(cap, dtype=np.int32)
    a_dst = np.empty(cap, dtype=np.int32)
    a_w = np.empty(cap, dtype=np.float64)
    a_len = np.empty(cap, dtype=np.float64)
    a_c1 = np.full(cap, -1, dtype=np.int32)
    a_c2 = np.full(cap, -1, dtype=np.int32)
    a_alive = np.ones(cap, dtype=np.bool_)
    a_orig = np.ones(cap, dtype=np.float64)
    a_src[:m0] = arc_src
    a_dst[:m0] = arc_dst
    a_w[:m0] = arc_w0
    a_len[:m0] = arc_len0
    m = m0

    # Adjacency lists in pools; a full list moves to the end of its pool with twice the room.
    out_deg = np.zeros(n, dtype=np.int64)
    in_deg = np.zeros(n, dtype=np.int64)
    for k in range(m0):
        out_deg[arc_src[k]] += 1
        in_deg[arc_dst[k]] += 1
    out_start = np.zeros(n, dtype=np.int64)
    in_start = np.zeros(n, dtype=np.int64)
    out_cap = np.empty(n, dtype=np.int64)
    in_cap = np.empty(n, dtype=np.int64)
    pos_o = 0
    pos_i = 0
    for v in range(n):
        out_start[v] = pos_o
        out_cap[v] = out_deg[v] + 2
        pos_o += out_cap[v]
        in_start[v] = pos_i
        in_cap[v] = in_deg[v] + 2
        pos_i += in_cap[v]
    out_nb = np.empty(2 * pos_o, dtype=np.int32)
    out_arc = np.empty(2 * pos_o, dtype=np.int32)
    in_nb = np.empty(2 * pos_i, dtype=np.int32)
    in_arc = np.empty(2 * pos_i, dtype=np.int32)
    out_len = np.zeros(n, dtype=np.int64)
    in_len = np.zeros(n, dtype=np.int64)
    for k in range(m0):
        u = arc_src[k]
        v = arc_dst[k]
        out_nb[out_start[u] + out_len[u]] = v
        out_arc[out_start[u] + out_len[u]] = k
        out_len[u] += 1
        in_nb[in_start[v] + in_len[v]] = u
        in_arc[in_start[v] + in_len[v]] = k
        in_len[v] += 1
    end_o = pos_o
    end_i = pos_i

    done = np.zeros(n, dtype=np.bool_)
    rank = np.full(n, -1, dtype=np.int64)
    level = np.zeros(n, dtype=np.float64)
    deleted = np.zeros(n, dtype=np.float64)
    prio = np.zeros(n, dtype=np.float64)
    dist = np.zeros(n, dtype=np.float64)
    stamp = np.zeros(n, dtype=np.int64)
    tmark = np.full(n, -1, dtype=np.int64)
    tick = 0
    hk = np.empty(_HEAP_CAP, dtype=np.float64)
    hv = np.empty(_HEAP_CAP, dtype=np.int32)
    hsize = np.zeros(1, dtype=np.int64)
    # Scratch for one contraction: out-neighbours of v and their arcs.
    tgt = np.empty(4096, dtype=np.int32)
    tgt_arc = np.empty(4096, dtype=np.int32)
    # Shortcuts found by one contraction (applied after all its witness searches).
    sc_u = np.empty(64, dtype=np.int32)
    sc_w = np.empty(64, dtype=np.int32)
    sc_a1 = np.empty(64, dtype=np.int32)
    sc_a2 = np.empty(64, dtype=np.int32)

    # The main queue: a lazy heap of (priority, state).
    qk = np.empty(4 * n + 16, dtype=np.float64)
    qv = np.empty(4 * n + 16, dtype=np.int32)
    qsize = np.zeros(1, dtype=np.int64)

    next_rank = 0
    for v in range(n):
        prio[v] = _estimate(v, out_start, out_len, out_nb, out_arc, in_start, in_len, in_nb,
                            in_arc, a_w, a_orig, done, dist, stamp, tick, hk, hv, hsize, tgt,
                            tgt_arc, 0.0, tmark) + rank_hint[v]  # fmt: skip
        tick += in_len[v] + 2
        _heap_push(qk, qv, qsize, prio[v], v)

    while qsize[0] > 0:
        p, v = _heap_pop(qk, qv, qsize)
        if done[v] or p != prio[v]:
            continue
        # Lazy update: a quick re-estimate; contract only if v is still the minimum.
        newp = _estimate(v, out_start, out_len, out_nb, out_arc, in_start, in_len, in_nb,
                         in_arc, a_w, a_orig, done, dist, stamp, tick, hk, hv, hsize, tgt,
                         tgt_arc, level[v], tmark) + rank_hint[v]  # fmt: skip
        tick += in_len[v] + 2
        if qsize[0] > 0 and newp > qk[0]:
            prio[v] = newp
            if not _heap_push(qk, qv, qsize, newp, v):
                _requeue(qk, qv, qsize, prio, done, n)
            continue
        for _once in range(1):
            _compact(v, out_start, out_len, out_nb, out_arc, done)
            _compact(v, in_start, in_len, in_nb, in_arc, done)
            nt = 0
            lo = out_start[v]
            for k in range(lo, lo + out_len[v]):
                y = out_nb[k]
                if y != v:
                    if nt >= tgt.shape[0]:
                        tgt = _grow_i32(tgt, 2 * nt)
                        tgt_arc = _grow_i32(tgt_arc, 2 * nt)
                    tgt[nt] = y
                    tgt_arc[nt] = out_arc[k]
                    nt += 1
            n_sc = 0
            n_in = 0
            orig_removed = 0.0
            for t in range(nt):
                orig_removed += a_orig[tgt_arc[t]]
            lo_in = in_start[v]
            limit = WITNESS_SETTLE_LIMIT
            for k in range(lo_in, lo_in + in_len[v]):
                u = in_nb[k]
                if u == v:
                    continue
                n_in += 1
                a1 = in_arc[k]
                wu = a_w[a1]
                orig_removed += a_orig[a1]
                bound = 0.0
                for t in range(nt):
                    if tgt[t] != u:
                        c = wu + a_w[tgt_arc[t]]
                        if c > bound:
                            bound = c
                if bound == 0.0:
                    continue
                tick += 1
                ntg = 0
                for t in range(nt):
                    if tgt[t] != u:
                        tmark[tgt[t]] = tick
                        ntg += 1
                _witness(u, v, bound, limit, out_start, out_len, out_nb, out_arc, a_w, done,
                         dist, stamp, tick, hk, hv, hsize, tmark, ntg)  # fmt: skip
                for t in range(nt):
                    w = tgt[t]
                    if w == u:
                        continue
                    c = wu + a_w[tgt_arc[t]]
                    if stamp[w] != tick or dist[w] > c:
                        if n_sc >= sc_u.shape[0]:
                            sc_u = _grow_i32(sc_u, 2 * n_sc)
                            sc_w = _grow_i32(sc_w, 2 * n_sc)
                            sc_a1 = _grow_i32(sc_a1, 2 * n_sc)
                            sc_a2 = _grow_i32(sc_a2, 2 * n_sc)
                        sc_u[n_sc] = u
                        sc_w[n_sc] = w
                        sc_a1[n_sc] = a1
                        sc_a2[n_sc] = tgt_arc[t]
                        n_sc += 1
            # Contract v: add the shortcuts, then retire v.
            for s in range(n_sc):
                u = sc_u[s]
                w = sc_w[s]
                c = a_w[sc_a1[s]] + a_w[sc_a2[s]]
                # An arc u -> w already there: keep the cheaper.
                found = -1
                lo_u = out_start[u]
                for k in range(lo_u, lo_u + out_len[u]):
                    if out_nb[k] == w:
                        found = k
                        break
                if found >= 0 and a_w[out_arc[found]] <= c:
                    continue
                if m >= a_src.shape[0]:
                    a_src = _grow_i32(a_src, 2 * m)
                    a_dst = _grow_i32(a_dst, 2 * m)
                    a_w = _grow_f64(a_w, 2 * m)
                    a_len = _grow_f64(a_len, 2 * m)
                    old = a_c1.shape[0]
                    a_c1 = _grow_i32(a_c1, 2 * m)
                    a_c2 = _grow_i32(a_c2, 2 * m)
                    alive2 = np.ones(a_c1.shape[0], dtype=np.bool_)
                    alive2[:old] = a_alive
                    a_alive = alive2
                    a_orig = _grow_f64(a_orig, a_c1.shape[0])
                a_src[m] = u
                a_dst[m] = w
                a_w[m] = c
                a_len[m] = a_len[sc_a1[s]] + a_len[sc_a2[s]]
                a_c1[m] = sc_a1[s]
                a_c2[m] = sc_a2[s]
                a_orig[m] = a_orig[sc_a1[s]] + a_orig[sc_a2[s]]
                a_alive[m] = True
                if found >= 0:
                    a_alive[out_arc[found]] = False
                    out_arc[found] = m
                    lo_w = in_start[w]
                    for k in range(lo_w, lo_w + in_len[w]):
                        if in_nb[k] == u:
                            in_arc[k] = m
                            break
                else:
                    if out_len[u] >= out_cap[u]:
                        need = end_o + 2 * out_cap[u]
                        if need > out_nb.shape[0]:
                            out_nb = _grow_i32(out_nb, 2 * need)
                            out_arc = _grow_i32(out_arc, 2 * need)
                        lo_u = out_start[u]
                        for k in range(out_len[u]):
                            out_nb[end_o + k] = out_nb[lo_u + k]
                            out_arc[end_o + k] = out_arc[lo_u + k]
                        out_start[u] = end_o
                        out_cap[u] *= 2
                        end_o += out_cap[u]
                    out_nb[out_start[u] + out_len[u]] = w
                    out_arc[out_start[u] + out_len[u]] = m
                    out_len[u] += 1
                    if in_len[w] >= in_cap[w]:
                        need = end_i + 2 * in_cap[w]
                        if need > in_nb.shape[0]:
                            in_nb = _grow_i32(in_nb, 2 * need)
                            in_arc = _grow_i32(in_arc, 2 * need)
                        lo_w = in_start[w]
                        for k in range(in_len[w]):
                            in_nb[end_i + k] = in_nb[lo_w + k]
                            in_arc[end_i + k] = in_arc[lo_w + k]
                        in_start[w] = end_i
                        in_cap[w] *= 2
                        end_i += in_cap[w]
                    in_nb[in_start[w] + in_len[w]] = u
                    in_arc[in_start[w] + in_len[w]] = m
                    in_len[w] += 1
                m += 1
            done[v] = True
            rank[v] = next_rank
            next_rank += 1
            # Neighbours: one more contracted neighbour, a level above v. Their priorities are
            # recomputed lazily, when they reach the top of the queue (cheaper than re-simulating
            # every neighbour after every contraction, and about as good an order).
            for side in range(2):
                st = out_start if side == 0 else in_start
                ln = out_len if side == 0 else in_len
                nb = out_nb if side == 0 else in_nb
                lo_v = st[v]
                for k in range(lo_v, lo_v + ln[v]):
                    x = nb[k]
                    if done[x]:
                        continue
                    deleted[x] += 1.0
                    # Entries towards contracted states pile up on busy states: drop them now,
                    # or every later scan of x pays for them.
                    _compact(x, out_start, out_len, out_nb, out_arc, done)
                    _compact(x, in_start, in_len, in_nb, in_arc, done)
                    if level[v] + 1.0 > level[x]:
                        level[x] = level[v] + 1.0
    return rank, a_src[:m], a_dst[:m], a_w[:m], a_len[:m], a_c1[:m], a_c2[:m], a_alive[:m], m


@_jit
def _requeue(qk: Any, qv: Any, qsize: Any, prio: Any, done: Any, n: int) -> None:
    """Rebuild a queue grown full of stale entries from the live states."""
    qsize[0] = 0
    for y in range(n):
        if not done[y]:
            _heap_push(qk, qv, qsize, prio[y], y)


@_jit
def _estimate(
    v: int,
    out_start: Any,
    out_len: Any,
    out_nb: Any,
    out_arc: Any,
    in_start: Any,
    in_len: Any,
    in_nb: Any,
    in_arc: Any,
    a_w: Any,
    a_orig: Any,
    done: Any,
    dist: Any,
    stamp: Any,
    tick: int,
    hk: Any,
    hv: Any,
    hsize: Any,
    tgt: Any,
    tgt_arc: Any,
    lvl: float,
    tmark: Any,
) -> float:
    """:func:`_priority` of contracting ``v`` now (with quick witness searches)."""
    nt = 0
    lo = out_start[v]
    cap = tgt.shape[0]
    for k in range(lo, lo + out_len[v]):
        y = out_nb[k]
        if y != v and not done[y] and nt < cap:
            tgt[nt] = y
            tgt_arc[nt] = out_arc[k]
            nt += 1
    count = 0
    n_in = 0
    orig_removed = 0.0
    orig_added = 0.0
    for t in range(nt):
        orig_removed += a_orig[tgt_arc[t]]
    lo_in = in_start[v]
    for k in range(lo_in, lo_in + in_len[v]):
        u = in_nb[k]
        if u == v or done[u]:
            continue
        n_in += 1
        wu = a_w[in_arc[k]]
        orig_removed += a_orig[in_arc[k]]
        bound = 0.0
        for t in range(nt):
            if tgt[t] != u:
                c = wu + a_w[tgt_arc[t]]
                if c > bound:
                    bound = c
        if bound == 0.0:
            continue
        tick += 1
        ntg = 0
        for t in range(nt):
            if tgt[t] != u:
                tmark[tgt[t]] = tick
                ntg += 1
        _witness(u, v, bound, SIMULATE_SETTLE_LIMIT, out_start, out_len, out_nb, out_arc, a_w,
                 done, dist, stamp, tick, hk, hv, hsize, tmark, ntg)  # fmt: skip
        for t in range(nt):
            w = tgt[t]
            if w == u:
                continue
            if stamp[w] != tick or dist[w] > wu + a_w[tgt_arc[t]]:
                count += 1
                orig_added += a_orig[in_arc[k]] + a_orig[tgt_arc[t]]
    return _priority(count, n_in + nt, orig_added, orig_removed, lvl)


@_jit
def _priority(
    added: int, removed: int, orig_added: float, orig_removed: float, lvl: float
) -> float:
    # OSRM's contractor weighting: edge quotient, original-edge quotient, depth.
    return 2.0 * added / max(removed, 1) + 4.0 * orig_added / max(orig_removed, 1.0) + lvl


# ----------------------------------------------------------------------------- queries
# Labels: open addressing over a power-of-two table. keys[-1 = empty], dist, length, pred state,
# pred arc. A full table makes the query report failure; the caller retries with a bigger one.


@_jit
def _slot(keys: Any, key: int) -> int:
    mask = keys.shape[0] - 1
    h = (key * 2654435761) & mask
    while True:
        k = keys[h]
        if k == key or k == -1:
            return int(h)
        h = (h + 1) & mask


@_jit
def _lookup(keys: Any, key: int) -> int:
    """Slot of ``key``, or -1."""
    h = _slot(keys, key)
    return h if keys[h] == key else -1


@_jit
def _upward(
    seeds: Any,
    seed_cost: Any,
    seed_len: Any,
    off: Any,
    nb: Any,
    wt: Any,
    ln: Any,
    arc: Any,
    s_off: Any,
    s_nb: Any,
    s_wt: Any,
    keys: Any,
    dist: Any,
    length: Any,
    pred: Any,
    pred_arc: Any,
    touched: Any,
    hk: Any,
    hv: Any,
    stop_at: float,
) -> int:
    """One upward search (all of it, or until its queue passes ``stop_at``) into the tables.

    ``s_*`` is the opposite direction's graph, for stall-on-demand. ``keys`` must come empty
    (all -1); the slots it fills are listed in ``touched`` (see :func:`_clear`). ``hk``/``hv``
    are the queue's room. Returns the number of labels, or ``-1 - labels`` if the table or the
    queue filled up.
    """
    cap = keys.shape[0]
    hsize = np.zeros(1, dtype=np.int64)
    used = 0
    for i in range(seeds.shape[0]):
        s = seeds[i]
        h = _slot(keys, s)
        if keys[h] == -1:
            if 2 * (used + 1) > cap:
                return -1 - used
            keys[h] = s
            touched[used] = h
            used += 1
            dist[h] = seed_cost[i]
            length[h] = seed_len[i]
            pred[h] = -1
            pred_arc[h] = -1
            _heap_push(hk, hv, hsize, seed_cost[i], s)
        elif seed_cost[i] < dist[h]:
            dist[h] = seed_cost[i]
            length[h] = seed_len[i]
            _heap_push(hk, hv, hsize, seed_cost[i], s)
    while hsize[0] > 0:
        d, x = _heap_pop(hk, hv, hsize)
        if d >= stop_at:
            break
        hx = _slot(keys, x)
        if d > dist[hx]:
            continue
        # Stall: a higher state reaches x more cheaply, so x's label is not final.
        stalled = False
        for k in range(s_off[x], s_off[x + 1]):
            hy = _lookup(keys, s_nb[k])
            if hy >= 0 and dist[hy] + s_wt[k] < d:
                stalled = True
                break
        if stalled:
            continue
        lx = length[hx]
        for k in range(off[x], off[x + 1]):
            y = nb[k]
            nd = d + wt[k]
            hy = _slot(keys, y)
            if keys[hy] == -1:
                if 2 * (used + 1) > cap:
                    return -1 - used
                keys[hy] = y
                touched[used] = hy
                used += 1
            elif nd >= dist[hy]:
                continue
            dist[hy] = nd
            length[hy] = lx + ln[k]
            pred[hy] = x
            pred_arc[hy] = arc[k]
            if not _heap_push(hk, hv, hsize, nd, y):
                return -1 - used
    return used


@_jit
def _clear(keys: Any, touched: Any, used: int) -> None:
    """Empty the table slots a search filled (``used`` as it returned it), for the next one."""
    if used < 0:
        used = -1 - used
    for i in range(used):
        keys[touched[i]] = -1


@_jit
def point_to_point(
    src: Any,
    src_cost: Any,
    src_len: Any,
    dst: Any,
    dst_cost: Any,
    dst_len: Any,
    f_off: Any,
    f_nb: Any,
    f_wt: Any,
    f_ln: Any,
    f_arc: Any,
    b_off: Any,
    b_nb: Any,
    b_wt: Any,
    b_ln: Any,
    b_arc: Any,
    a_c1: Any,
    a_c2: Any,
    a_src: Any,
    a_dst: Any,
    fk: Any,
    fd: Any,
    fl: Any,
    fp: Any,
    fa: Any,
    ft: Any,
    bk: Any,
    bd: Any,
    bl: Any,
    bp: Any,
    ba: Any,
    bt: Any,
    hk: Any,
    hv: Any,
) -> tuple[float, float, Any, bool]:
    """Cheapest path from any seed in ``src`` to any in ``dst`` (seed costs added at each end).

    Returns:
        ``(cost, length, states, ok)``: the states of the path in order (first a source seed,
        last a target seed); cost ``inf`` and no states when there is no path; ``ok`` False
        when the label tables were too small (retry with bigger ones).

    The tables (``f*`` forward, ``b*`` backward: keys, cost, length, predecessor, its arc,
    the slots filled) and the queue's room (``hk``/``hv``) are the caller's scratch, reused
    from query to query: keys come empty and are left empty.
    """
    empty = np.zeros(0, dtype=np.int64)
    # Upward search spaces are small: search both completely, then meet.
    nf = _upward(src, src_cost, src_len, f_off, f_nb, f_wt, f_ln, f_arc, b_off, b_nb, b_wt,
                 fk, fd, fl, fp, fa, ft, hk, hv, np.inf)  # fmt: skip
    if nf < 0:
        _clear(fk, ft, nf)
        return np.inf, np.inf, empty, False
    nb_ = _upward(dst, dst_cost, dst_len, b_off, b_nb, b_wt, b_ln, b_arc, f_off, f_nb, f_wt,
                  bk, bd, bl, bp, ba, bt, hk, hv, np.inf)  # fmt: skip
    if nb_ < 0:
        _clear(fk, ft, nf)
        _clear(bk, bt, nb_)
        return np.inf, np.inf, empty, False
    best = np.inf
    best_len = np.inf
    meet = -1
    for i in range(nf):
        h = ft[i]
        x = fk[h]
        hb = _lookup(bk, x)
        if hb >= 0:
            c = fd[h] + bd[hb]
            if c < best:
                best = c
                best_len = fl[h] + bl[hb]
                meet = x
    if meet < 0:
        _clear(fk, ft, nf)
        _clear(bk, bt, nb_)
        return np.inf, np.inf, empty, True
    # Arcs from the source seed up to meet (reversed while walking), then down to the target.
    chain = np.empty(64, dtype=np.int64)
    nchain = 0
    x = meet
    while True:
        h = _lookup(fk, x)
        if fa[h] < 0:
            break
        if nchain >= chain.shape[0]:
            grown = np.empty(2 * chain.shape[0], dtype=np.int64)
            grown[:nchain] = chain[:nchain]
            chain = grown
        chain[nchain] = fa[h]
        nchain += 1
        x = fp[h]
    first = x
    chain[:nchain] = chain[:nchain][::-1].copy()
    x = meet
    while True:
        h = _lookup(bk, x)
        if ba[h] < 0:
            break
        if nchain >= chain.shape[0]:
            grown = np.empty(2 * chain.shape[0], dtype=np.int64)
            grown[:nchain] = chain[:nchain]
            chain = grown
        chain[nchain] = ba[h]
        nchain += 1
        x = bp[h]
    _clear(fk, ft, nf)
    _clear(bk, bt, nb_)
    states = _unpack(first, chain[:nchain], a_c1, a_c2, a_dst)
    return best, best_len, states, True


@_jit
def _unpack(first: int, arcs: Any, a_c1: Any, a_c2: Any, a_dst: Any) -> Any:
    """States visited from ``first`` along ``arcs`` (shortcuts expanded)."""
    out = np.empty(max(2 * arcs.shape[0] + 1, 16), dtype=np.int64)
    out[0] = first
    n = 1
    stack = np.empty(64, dtype=np.int64)
    for i in range(arcs.shape[0]):
        top = 0
        stack[0] = arcs[i]
        top = 1
        while top > 0:
            top -= 1
            a = stack[top]
            if a_c1[a] < 0:
                if n >= out.shape[0]:
                    grown = np.empty(2 * out.shape[0], dtype=np.int64)
                    grown[:n] = out[:n]
                    out = grown
                out[n] = a_dst[a]
                n += 1
            else:
                if top + 2 > stack.shape[0]:
                    grown = np.empty(2 * stack.shape[0], dtype=np.int64)
                    grown[:top] = stack[:top]
                    stack = grown
                stack[top] = a_c2[a]
                stack[top + 1] = a_c1[a]
                top += 2
    return out[:n]


@_jit
def dijkstra(
    off: Any,
    to: Any,
    wt: Any,
    ln: Any,
    src: Any,
    src_cost: Any,
    src_len: Any,
    n: int,
    bound: float,
    targets: Any,
) -> tuple[Any, Any, Any]:
    """Plain Dijkstra over a CSR graph from weighted seeds (the reference for the hierarchy).

    Stops past ``bound``, or once every state in ``targets`` is settled (empty: never).

    Returns:
        ``(cost[n], length[n], pred[n])``: ``inf`` beyond ``bound`` or unreachable; ``pred``
        -1 at seeds and unreached states.
    """
    dist = np.full(n, np.inf)
    length = np.full(n, np.inf)
    pred = np.full(n, -1, dtype=np.int64)
    hk = np.empty(max(4 * to.shape[0] + src.shape[0], 16), dtype=np.float64)
    hv = np.empty(hk.shape[0], dtype=np.int32)
    hsize = np.zeros(1, dtype=np.int64)
    for i in range(src.shape[0]):
        s = src[i]
        if src_cost[i] < dist[s]:
            dist[s] = src_cost[i]
            length[s] = src_len[i]
            pred[s] = -1
            _heap_push(hk, hv, hsize, src_cost[i], s)
    wanted = np.zeros(n, dtype=np.bool_)
    left = 0
    for i in range(targets.shape[0]):
        if not wanted[targets[i]]:
            wanted[targets[i]] = True
            left += 1
    while hsize[0] > 0:
        d, x = _heap_pop(hk, hv, hsize)
        if d > dist[x]:
            continue
        if d > bound:
            break
        if wanted[x]:
            wanted[x] = False
            left -= 1
            if left == 0:
                break
        for k in range(off[x], off[x + 1]):
            y = to[k]
            nd = d + wt[k]
            if nd < dist[y]:
                dist[y] = nd
                length[y] = length[x] + ln[k]
                pred[y] = x
                _heap_push(hk, hv, hsize, nd, y)
    # Labels past the bound (or left when the targets were all settled) are not final.
    for x in range(n):
        if dist[x] > bound or (left == 0 and dist[x] > d):
            dist[x] = np.inf
            length[x] = np.inf
            pred[x] = -1
    return dist, length, pred


@_jit
def one_to_many(
    root: Any,
    root_cost: Any,
    root_len: Any,
    r_off: Any,
    r_nb: Any,
    r_wt: Any,
    r_ln: Any,
    r_arc: Any,
    o_off: Any,
    o_nb: Any,
    o_wt: Any,
    o_ln: Any,
    o_arc: Any,
    others: Any,
    other_cost: Any,
    other_len: Any,
    other_group: Any,
    groups: int,
    rk: Any,
    rd: Any,
    rl: Any,
    rp: Any,
    ra: Any,
    rt: Any,
    mark: Any,
    members: Any,
    best: Any,
    best_len: Any,
    hk: Any,
    hv: Any,
) -> tuple[Any, Any, bool]:
    """Cost and length between one root and many other points, by a restricted sweep.

    RPHAST (Delling, Goldberg, Werneck 2011): the root's upward search gives, at each state it
    reaches, the cost between that state and the root over the hierarchy's other direction.
    The other points' upward search spaces are then selected (each state once however many
    points reach it: nearby units share most of theirs) and swept from the highest rank down,
    each state taking the cheaper of its root label and the best of its upward arcs into
    states already swept. One pass over the union replaces a Dijkstra per point.

    Returns:
        ``(cost[groups], length[groups], ok)``; inf where no path; ``ok`` False when the root's
        table (kept under half full) is too small.

    Scratch: the root's table (``r*``, as in :func:`point_to_point`), the queue's room, and
    the sweep's arrays over every state (``mark`` all False, ``members``, ``best``,
    ``best_len``), reused from query to query; ``mark`` is left all False.
    """
    cost = np.full(groups, np.inf)
    length = np.full(groups, np.inf)
    nr = _upward(root, root_cost, root_len, r_off, r_nb, r_wt, r_ln, r_arc, o_off, o_nb, o_wt,
                 rk, rd, rl, rp, ra, rt, hk, hv, np.inf)  # fmt: skip
    if nr < 0:
        _clear(rk, rt, nr)
        return cost, length, False
    _sweep(rk, rd, rl, o_off, o_nb, o_wt, o_ln, others, other_cost, other_len, other_group,
           cost, length, mark, members, best, best_len)  # fmt: skip
    _clear(rk, rt, nr)
    return cost, length, True


@_jit
def _sweep(
    rk: Any,
    rd: Any,
    rl: Any,
    o_off: Any,
    o_nb: Any,
    o_wt: Any,
    o_ln: Any,
    others: Any,
    other_cost: Any,
    other_len: Any,
    other_group: Any,
    cost: Any,
    length: Any,
    mark: Any,
    members: Any,
    best: Any,
    best_len: Any,
) -> None:
    """:func:`one_to_many`'s selection and sweep; leaves ``mark`` all False.

    Selection: the union of the points' upward search spaces, a plain traversal marking each
    state once in an array over all states (a hash table here cost twice as much: one probe
    per arc of the union, some 450k on the 1M-node region). Sweep: the union from the highest
    rank down (states are numbered by rank, so a radix sort of the members orders them, and
    the sweep walks the arrays in memory order), labels kept by state so an arc needs no
    lookup. A memoised depth-first search that needs no sort was measured slower.
    """
    count = 0
    for i in range(others.shape[0]):
        s = others[i]
        if not mark[s]:
            mark[s] = True
            members[count] = s
            count += 1
    head = 0
    while head < count:
        x = members[head]
        for k in range(o_off[x], o_off[x + 1]):
            y = o_nb[k]
            if not mark[y]:
                mark[y] = True
                members[count] = y
                count += 1
        head += 1
    order = _radix_sorted(members, count, mark.shape[0])
    # Every upward arc leads to a state already swept.
    for j in range(count - 1, -1, -1):
        x = order[j]
        mark[x] = False
        hr = _lookup(rk, x)
        if hr >= 0:
            d = rd[hr]
            dl = rl[hr]
        else:
            d = np.inf
            dl = np.inf
        for k in range(o_off[x], o_off[x + 1]):
            y = o_nb[k]
            c = o_wt[k] + best[y]
            if c < d:
                d = c
                dl = o_ln[k] + best_len[y]
        best[x] = d
        best_len[x] = dl
    for i in range(others.shape[0]):
        s = others[i]
        c = other_cost[i] + best[s]
        g = other_group[i]
        if c < cost[g]:
            cost[g] = c
            length[g] = other_len[i] + best_len[s]


@_jit
def _radix_sorted(values: Any, count: int, bound: int) -> Any:
    """``values[:count]`` (distinct, each in ``[0, bound)``) in ascending order: an LSD radix
    sort of 11-bit digits, some five times faster than ``np.argsort`` on a union of 20k."""
    out = values[:count].copy()
    tmp = np.empty_like(out)
    shift = 0
    while (bound - 1) >> shift > 0 or shift == 0:
        counts = np.zeros(2049, dtype=np.int64)
        for i in range(count):
            counts[((out[i] >> shift) & 2047) + 1] += 1
        for b in range(2048):
            counts[b + 1] += counts[b]
        for i in range(count):
            b = (out[i] >> shift) & 2047
            tmp[counts[b]] = out[i]
            counts[b] += 1
        out, tmp = tmp, out
        shift += 11
    return out
