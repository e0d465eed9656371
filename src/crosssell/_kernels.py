"""Compiled loops (numba) of the batch path: selection, evidence and reasons.

- ``select_rows``: a block's priorities, policy and top-k in one pass. The numpy path
  (:func:`crosssell.arbitration._priority.score_block` then :func:`crosssell._topk.top_k`)
  writes a dense priority array and reads it several times: about ten passes over
  ``batch_size x n_products`` floats per block. The loop does the same arithmetic on one
  client at a time, in a row buffer that stays in the CPU cache, and keeps the best ``k`` as
  it goes, in the total order of :mod:`crosssell.arbitration._order`. Results are identical to
  the numpy path (the same float32 operations in the same order; property-tested).
- ``top_contributions_into``: the strongest held products behind each offer, in one pass.
- ``table_contributions_into``: the same, reading each offer's weights from a dense table.
- ``reason_words_into``: the words of every offer's reason sentence.
- ``join_words``: texts joined from a table of words (reasons, ids), 8 bytes at a time, as
  UTF-8 bytes in one buffer, for Arrow.
- ``top_rows_into``: the exact top-k of each row of a chunk above a known lower bound (the
  threshold path of :func:`crosssell._topk.top_k`): one pass per row and a sort of the few
  survivors, instead of a sort of every survivor of the chunk at once (rows of many equal
  scores, such as item-kNN's zeros, kept whole rows).
- ``top_set_into``: the same cells, unordered, marked in a boolean mask (a candidate set).
- ``rows_times_into``: rows of a sparse matrix times another (sparse, or also given dense)
  into float32, one output row at a time in a buffer, summed as scipy sums.

numba is imported, and each loop compiled, on first use: ``import crosssell`` stays light. The
compiled code is cached on disk beside the module (or in numba's user cache) when either is
writable, so later processes load it instead of compiling it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_RIGHT",
    "FEATURE_MASK",
    "MAX_K",
    "NAN_DEFAULT",
    "SELECT_GROUPS",
    "ZERO_DEFAULT",
    "forest_into",
    "greedy_pick",
    "join_words",
    "path_credit_into",
    "reason_words_into",
    "rows_times_into",
    "select_rows",
    "table_contributions_into",
    "top_contributions_into",
    "top_rows_into",
    "top_set_into",
]

MAX_K = 64
"""Largest ``k`` the loop serves; it keeps the best ``k`` by insertion, which suits small ``k``."""
SELECT_GROUPS = 64
"""Column groups whose maxima let ``select_rows`` skip most of a wide row (see there)."""
FEW_CANDIDATES = 32
"""Entries reaching ``select_rows``'s bound up to which it places them by counting (see there)."""

#: Rows the forest walks down a tree together, and how few of them still walking go on alone.
#: 200 trees of 31 leaves, us per row, against 8.74 (demo book) and 1.20 (benchmark book) one
#: row at a time: 32 and 4, 4.58 and 1.17; 16 and 2, 4.61 and 1.22; 32 rows always to the
#: tree's depth, 4.08 and 3.23 (the benchmark book's rows mostly stop after a few steps)
_FOREST_ROWS = 32
_FOREST_FEW = 4
#: Survivors past ``k`` below which :func:`_top_set_py` finds the ``k``-th by passes of a minimum
#: search rather than a partition (which copies the row's survivors).
_FEW_DROPPED = 8
FEATURE_MASK = (1 << 24) - 1
"""A forest node's ``info``: its feature in these bits, then the flags below."""
ZERO_DEFAULT = 1 << 28
"""Flag: a value of 0 (NaN included) goes the split's default way."""
NAN_DEFAULT = 1 << 29
"""Flag: NaN goes the split's default way."""
DEFAULT_RIGHT = 1 << 30
"""Flag: the split's default way is right."""

_lock = threading.Lock()
_compiled: dict[str, Callable[..., Any]] = {}


def _select_rows_py(  # noqa: PLR0912, PLR0915, PLR0917 - one fused loop; its inputs are its state
    src: npt.NDArray[np.float32],
    scale_mode: bool,
    inv: np.float32,
    weight: npt.NDArray[np.float32],
    bound: npt.NDArray[np.float32],
    gated: bool,
    min_ev: float,
    min_p: float,
    cost: npt.NDArray[np.float64],
    row_off: npt.NDArray[np.bool_],
    levers: npt.NDArray[np.float64],
    by_value: bool,
    up_ptr: npt.NDArray[Any],
    up_col: npt.NDArray[Any],
    up_v: npt.NDArray[np.float64],
    rows: npt.NDArray[np.int64],
    off_ptr: npt.NDArray[Any],
    off_col: npt.NDArray[Any],
    score: npt.NDArray[np.float32],
    tie: npt.NDArray[np.int64],
    grouped: bool,
    idx: npt.NDArray[np.int64],
    val: npt.NDArray[np.float32],
    slot: npt.NDArray[np.int64],
) -> None:
    """Choose each client's best ``k`` offers into ``idx``/``val``/``slot`` (one row per client).

    :func:`crosssell.arbitration._priority.select_block` is the caller; it documents the arguments.
    ``grouped`` (for ``k < SELECT_GROUPS``) puts the columns ``j`` of a row in groups by
    ``j % SELECT_GROUPS``: the ``k``-th largest group maximum bounds the ``k``-th best priority
    from below (the ``k`` groups reaching it hold one each), so only the groups reaching that
    bound are read. Reading them out of column order changes nothing: the keys' order is total.
    When at most ``FEW_CANDIDATES`` entries reach the bound (about ``k`` on most rows), each is
    placed by counting the entries ahead of it; otherwise they are kept by insertion.
    """
    m, n = src.shape
    k = idx.shape[1]
    whole = n - n % SELECT_GROUPS
    g_max = np.empty(SELECT_GROUPS, dtype=np.float32)
    g_top = np.empty(k, dtype=np.float32)
    ninf = np.float32(-np.inf)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    buf = np.empty(n, dtype=np.float32)
    mark = np.full(n, -1, dtype=np.int64)
    top_v = np.empty(k, dtype=np.float32)
    top_p = np.empty(k, dtype=np.float32)
    top_r = np.empty(k, dtype=np.float32)
    top_t = np.empty(k, dtype=np.int64)
    top_i = np.empty(k, dtype=np.int64)
    top_s = np.empty(k, dtype=np.int64)
    # the entries a row's scan reads (see below); few of them with their keys
    cand = np.empty(n, dtype=np.int64)
    c_v = np.empty(FEW_CANDIDATES, dtype=np.float32)
    c_p = np.empty(FEW_CANDIDATES, dtype=np.float32)
    c_s = np.empty(FEW_CANDIDATES, dtype=np.float32)
    c_t = np.empty(FEW_CANDIDATES, dtype=np.int64)
    for i in range(m):
        # Plain cross-sells: propensity times the product's weight, kept when the propensity
        # passes the product's bound (the not-worth floor; +inf for a blocked product). No
        # branch in the loop, so that it runs on vector instructions. In scale mode the
        # priority takes the propensity before its display bound at 1 (the caller's bound
        # already says what the bounded one must pass).
        if row_off[i]:
            buf[:] = ninf
        elif scale_mode:
            for j in range(n):
                # ScoreScale.unbounded: max(score / scale, 0), NaN to 0 as numpy's fmax does
                p = src[i, j] * inv
                p = p if p > zero else zero
                pr = p * weight[j]
                buf[j] = pr if (p > bound[j]) & (pr == pr) else ninf  # noqa: PLR0124 - NaN test
        else:
            for j in range(n):
                p = src[i, j]
                pr = p * weight[j]
                buf[j] = pr if (p > bound[j]) & (pr == pr) else ninf  # noqa: PLR0124 - NaN test
        # upsells: their own value, the floor tested on the (bounded) propensity and expected
        # value, against the product's cost of proposing
        r = rows[i]
        for e in range(up_ptr[r], up_ptr[r + 1]):
            c = up_col[e]
            p = src[i, c]
            pb = p
            if scale_mode:
                p = p * inv
                p = p if p > zero else zero
                pb = p if p < one else one
            # as score_block: the value times the lever, rounded to float32, times the propensity
            # (value-blind: the propensity alone, as the cross-sells' weight of 1 gives)
            pr = p * np.float32(up_v[e] * levers[c]) if by_value else p
            if np.isnan(pr):
                pr = ninf
            elif gated:
                pf = np.float64(pb)
                ev = pf * up_v[e]
                if not (ev > min_ev and pf >= min_p) or (cost[c] > 0.0 and not ev >= cost[c]):
                    pr = ninf
            buf[c] = pr
            mark[c] = e
        for e in range(off_ptr[r], off_ptr[r + 1]):
            buf[off_col[e]] = ninf
        # The groups' maxima (lanes of whole rows of groups, so that the loop is vectorised)
        # and the k-th largest of them: nothing below it can be among the best k.
        thr = ninf
        if grouped:
            for g in range(SELECT_GROUPS):
                g_max[g] = ninf
            for base in range(0, whole, SELECT_GROUPS):
                for g in range(SELECT_GROUPS):
                    x = buf[base + g]
                    y = g_max[g]
                    g_max[g] = x if x > y else y
            for j in range(whole, n):
                x = buf[j]
                g = j - whole
                g_max[g] = x if x > g_max[g] else g_max[g]
            have = 0
            for g in range(SELECT_GROUPS):
                x = g_max[g]
                if have < k:
                    pos = have
                    have += 1
                elif x > g_top[k - 1]:
                    pos = k - 1
                else:
                    continue
                while pos > 0 and g_top[pos - 1] < x:
                    g_top[pos] = g_top[pos - 1]
                    pos -= 1
                g_top[pos] = x
            if have == k:
                thr = g_top[k - 1]
        # The best k, best first, by (priority, propensity, score, -tie rank): a total order,
        # so the product index (the input's row order) never decides. -inf never enters.
        # In a grouped row, first the entries reaching the bound, in the order of the scan.
        c = n
        if grouped:
            c = 0
            for g in range(SELECT_GROUPS):
                if not (g_max[g] >= thr and g_max[g] > ninf):
                    continue
                for j in range(g, n, SELECT_GROUPS):
                    v = buf[j]
                    if v >= thr and v > ninf:
                        cand[c] = j
                        c += 1
        cnt = 0
        if grouped and c <= FEW_CANDIDATES:
            # Few (about k): each one's place is the count of those ahead of it, compared
            # without a branch (an insertion's comparisons go either way at random, and the
            # mispredicted branches cost more than the whole count).
            for q in range(c):
                j = cand[q]
                c_v[q] = buf[j]
                p = src[i, j]
                if scale_mode:
                    p = p * inv
                    p = p if p > zero else zero
                    p = p if p < one else one
                s = score[i, j]
                c_p[q] = p if p == p else ninf  # noqa: PLR0124 - NaN test
                c_s[q] = s if s == s else ninf  # noqa: PLR0124 - NaN test
                c_t[q] = tie[j]
            for q in range(c):
                v = c_v[q]
                p = c_p[q]
                s = c_s[q]
                t = c_t[q]
                ahead = 0
                for u in range(c):
                    # on equal keys the one scanned first, as the insertion below keeps it
                    ahead += (c_v[u] > v) | (
                        (c_v[u] == v)
                        & (
                            (c_p[u] > p)
                            | (
                                (c_p[u] == p)
                                & (
                                    (c_s[u] > s)
                                    | ((c_s[u] == s) & ((c_t[u] < t) | ((c_t[u] == t) & (u < q))))
                                )
                            )
                        )
                    )
                if ahead < k:
                    j = cand[q]
                    top_v[ahead] = v
                    top_i[ahead] = j
                    top_s[ahead] = mark[j]
            cnt = min(c, k)
            c = 0  # nothing left for the insertion
        # Otherwise by insertion, the bound rising to the k-th best once k are in.
        for q in range(c):
            j = cand[q] if grouped else q
            v = buf[j]
            if not (v >= thr and v > ninf):
                continue
            # the tie keys: the displayed propensity and the raw score (NaN ranks last)
            s = score[i, j]
            if scale_mode:
                p = src[i, j] * inv
                p = p if p > zero else zero
                p = p if p < one else one
            else:
                p = src[i, j]
            p = p if p == p else ninf  # noqa: PLR0124 - NaN test
            s = s if s == s else ninf  # noqa: PLR0124 - NaN test
            t = tie[j]
            if cnt < k:
                pos = cnt
                cnt += 1
            else:
                pos = k - 1
                w = top_v[pos]
                if not (
                    v > w
                    or (
                        v == w
                        and (
                            p > top_p[pos]
                            or (
                                p == top_p[pos]
                                and (s > top_r[pos] or (s == top_r[pos] and t < top_t[pos]))
                            )
                        )
                    )
                ):
                    continue
            while pos > 0:
                w = top_v[pos - 1]
                if not (
                    v > w
                    or (
                        v == w
                        and (
                            p > top_p[pos - 1]
                            or (
                                p == top_p[pos - 1]
                                and (
                                    s > top_r[pos - 1]
                                    or (s == top_r[pos - 1] and t < top_t[pos - 1])
                                )
                            )
                        )
                    )
                ):
                    break
                top_v[pos] = top_v[pos - 1]
                top_p[pos] = top_p[pos - 1]
                top_r[pos] = top_r[pos - 1]
                top_t[pos] = top_t[pos - 1]
                top_i[pos] = top_i[pos - 1]
                top_s[pos] = top_s[pos - 1]
                pos -= 1
            top_v[pos] = v
            top_p[pos] = p
            top_r[pos] = s
            top_t[pos] = t
            top_i[pos] = j
            top_s[pos] = mark[j]
            if cnt == k:
                thr = top_v[k - 1]
        for t in range(k):
            if t < cnt:
                val[i, t] = top_v[t]
                idx[i, t] = top_i[t]
                slot[i, t] = top_s[t]
            else:
                val[i, t] = ninf
                idx[i, t] = -1
                slot[i, t] = -1
        for e in range(up_ptr[r], up_ptr[r + 1]):
            mark[up_col[e]] = -1


def _top_contributions_py(
    owner: npt.NDArray[np.int64],
    held: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    out_p: npt.NDArray[np.int64],
    out_w: npt.NDArray[np.float32],
) -> None:
    """Fill ``out_p``/``out_w`` (preset to -1 and 0) with each offer's strongest contributions.

    :func:`crosssell.scorers.base.top_contributions` is the caller; it documents the rule.
    """
    m, n = out_p.shape
    best = np.full((m, n), -np.inf, dtype=np.float64)
    count = np.zeros(m, dtype=np.int64)
    for e in range(owner.shape[0]):
        w = weights[e]
        if not w > 0.0:
            continue
        o = owner[e]
        p = held[e]
        c = count[o]
        if c < n:
            pos = c
            count[o] = c + 1
        elif w > best[o, n - 1] or (w == best[o, n - 1] and p < out_p[o, n - 1]):
            pos = n - 1
        else:
            continue
        # strongest first; on equal weights the lower product first, whatever the entry order
        while pos > 0 and (
            best[o, pos - 1] < w or (best[o, pos - 1] == w and out_p[o, pos - 1] > p)
        ):
            best[o, pos] = best[o, pos - 1]
            out_p[o, pos] = out_p[o, pos - 1]
            pos -= 1
        best[o, pos] = w
        out_p[o, pos] = p
    for o in range(m):
        for t in range(count[o]):
            out_w[o, t] = best[o, t]


def _table_contributions_py(  # noqa: PLR0917 - the offers' arrays, as numba takes them
    offers: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    indptr: npt.NDArray[Any],
    indices: npt.NDArray[Any],
    data: npt.NDArray[Any],
    table: npt.NDArray[np.float64],
    scale: float,
    out_p: npt.NDArray[np.int64],
    out_w: npt.NDArray[np.float32],
) -> None:
    """Fill rows ``offers`` of ``out_p``/``out_w`` (preset to -1 and 0) from a dense table.

    The weight of held product ``h`` (stored value ``x``) behind offer ``t`` is
    ``x * (scale * table[t, h])``, in float64 and in that order; the offer itself never counts.
    The best are kept as :func:`_top_contributions_py` keeps them (positive weights, strongest
    first, the lower product first on equal weights), without gathering the entries first.
    :meth:`crosssell.scorers.base.Scorer.evidence` is the caller.
    """
    n = out_p.shape[1]
    best = np.empty(n, dtype=np.float64)
    for q in range(offers.shape[0]):
        o = offers[q]
        r = rows[q]
        t = targets[q]
        c = 0
        for e in range(indptr[r], indptr[r + 1]):
            p = np.int64(indices[e])
            if p == t:
                continue
            w = np.float64(data[e]) * (scale * table[t, p])
            if not w > 0.0:
                continue
            if c < n:
                pos = c
                c += 1
            elif w > best[n - 1] or (w == best[n - 1] and p < out_p[o, n - 1]):
                pos = n - 1
            else:
                continue
            while pos > 0 and (best[pos - 1] < w or (best[pos - 1] == w and out_p[o, pos - 1] > p)):
                best[pos] = best[pos - 1]
                out_p[o, pos] = out_p[o, pos - 1]
                pos -= 1
            best[pos] = w
            out_p[o, pos] = p
        for j in range(c):
            out_w[o, j] = best[j]


# The fixed words of a reason, in the order the loop below refers to them (see _explain.py).
UPGRADE, COLON, POPULAR, COLD_TAIL, MOST_HELD, STOP, WIDELY_HELD, COMMA, AND = range(9)


def _reason_words_py(  # noqa: PLR0917 - the offers' arrays, as numba takes them
    offered: npt.NDArray[np.int64],
    family: npt.NDArray[np.int64],
    upsell: npt.NDArray[np.bool_],
    cold: npt.NDArray[np.bool_],
    ev: npt.NDArray[np.int64],
    among: npt.NDArray[np.int64],
    lead: int,
    tail: int,
    popularity: bool,
    base: int,
    words: npt.NDArray[np.int64],
) -> None:
    """Write the words of each offer's reason at the start of its row of ``words``.

    :meth:`crosssell._explain.Texts.sentences` is the caller; it documents the sentences.
    ``words`` (preset to -1) has ``2 * ev.shape[1] + 8`` columns: room for the longest
    sentence (``2 * n + 6`` words) and its end.
    """
    m = offered.shape[0]
    n = ev.shape[1]
    for i in range(m):
        w = 0
        if upsell[i]:
            words[i, 0] = base + UPGRADE
            words[i, 1] = family[i]
            words[i, 2] = base + COLON
            w = 3
        n_ev = 0
        for j in range(n):
            if ev[i, j] >= 0:
                n_ev += 1
        if cold[i]:
            words[i, w] = offered[i]
            words[i, w + 1] = base + POPULAR
            words[i, w + 2] = among[i]
            words[i, w + 3] = base + COLD_TAIL
            w += 4
        elif n_ev == 0 and popularity:
            words[i, w] = offered[i]
            words[i, w + 1] = base + MOST_HELD
            words[i, w + 2] = among[i]
            words[i, w + 3] = base + STOP
            w += 4
        elif n_ev == 0:
            words[i, w] = offered[i]
            words[i, w + 1] = base + WIDELY_HELD
            w += 2
        else:
            words[i, w] = lead
            w += 1
            seen = 0
            for j in range(n):
                if ev[i, j] < 0:
                    continue
                if seen:
                    words[i, w] = base + (AND if seen == n_ev - 1 else COMMA)
                    w += 1
                words[i, w] = ev[i, j]
                w += 1
                seen += 1
            words[i, w] = tail
            words[i, w + 1] = offered[i]
            words[i, w + 2] = base + STOP
            w += 3


def _join_words_py(
    words: npt.NDArray[np.int64],
    tok_words: npt.NDArray[np.uint64],
    tok_start: npt.NDArray[np.int64],
    tok_off: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
) -> npt.NDArray[np.uint64]:
    """Join each row of ``words`` (word numbers up to the first negative) into one text.

    :class:`crosssell._words.WordTable` is the caller. Word ``x`` has
    ``tok_off[x + 1] - tok_off[x]`` bytes, stored from the 8-byte word ``tok_start[x]`` of
    ``tok_words`` (little-endian numbers, zero-padded to whole 8-byte words). The texts come
    back the same way: their bytes, in order, packed into 8-byte words (the last one
    zero-padded), and where each ends in ``offsets`` (``len(words) + 1`` of them, the first
    preset to 0). Copying 8 bytes at a time instead of one is most of the loop's time.
    """
    m, w = words.shape
    at = 0
    for i in range(m):
        for t in range(w):
            x = words[i, t]
            if x < 0:
                break
            at += tok_off[x + 1] - tok_off[x]
        offsets[i + 1] = at
    out = np.empty((at + 7) // 8, dtype=np.uint64)
    # the bytes not yet stored (``part`` of them, in the low bytes of ``acc``) and the next
    # 8-byte word of ``out`` to store
    pos = 0
    part = 0
    acc = np.uint64(0)
    for i in range(m):
        for t in range(w):
            x = words[i, t]
            if x < 0:
                break
            left = tok_off[x + 1] - tok_off[x]
            for q in range(tok_start[x], tok_start[x + 1]):
                v = tok_words[q]
                nb = left if left < 8 else 8
                left -= nb
                acc |= v << np.uint64(8 * part)
                if part + nb >= 8:
                    out[pos] = acc
                    pos += 1
                    # the bytes of v that did not fit (none when part was 0)
                    acc = v >> np.uint64(8 * (8 - part)) if part > 0 else np.uint64(0)
                    part += nb - 8
                else:
                    part += nb
    if part > 0:
        out[pos] = acc
    return out


def _greedy_pick_py(  # noqa: PLR0917 - the program's arrays, as numba takes them
    order: npt.NDArray[np.int64],
    indptr: npt.NDArray[np.int32],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
    forced: npt.NDArray[np.bool_],
    allowed: npt.NDArray[np.bool_],
    tol: float,
) -> npt.NDArray[np.float64]:
    """Take rows in ``order`` while every constraint stays under its upper bound.

    The constraint matrix comes column by column (CSC: one column per row of the candidates).
    A ``forced`` row is taken whatever it costs; a row not ``allowed`` is skipped.
    """
    n = order.shape[0]
    used = np.zeros(hi.shape[0])
    x = np.zeros(indptr.shape[0] - 1)
    for t in range(n):
        i = order[t]
        if not allowed[i]:
            continue
        fits = True
        if not forced[i]:
            for j in range(indptr[i], indptr[i + 1]):
                if used[indices[j]] + data[j] > hi[indices[j]] + tol:
                    fits = False
                    break
        if fits:
            for j in range(indptr[i], indptr[i + 1]):
                used[indices[j]] += data[j]
            x[i] = 1.0
    return x


def _forest_py(  # noqa: PLR0917 - the forest's arrays, as numba takes them
    x: npt.NDArray[np.float64],
    info: npt.NDArray[np.int32],
    threshold: npt.NDArray[np.float64],
    child: npt.NDArray[np.int32],
    leaf_value: npt.NDArray[np.float64],
    root: npt.NDArray[np.int32],
    depth: npt.NDArray[np.int32],
    leaf_offset: npt.NDArray[np.int32],
    n_splits: int,
    zero: float,
    sigmoid: float,
    raw: npt.NDArray[np.float64],
    leaves: npt.NDArray[np.int32],
) -> None:
    """Walk every row of ``x`` down every tree: scores into ``raw``, leaves into ``leaves``.

    The decisions are LightGBM's for numerical splits, on the values its dense-row predict
    reads: a value within ``zero`` of 0 is 0; NaN is 0 unless the split sends NaN one way.
    ``info[node]`` holds the split's feature (bits 0-23) and flags: bit 28, 0 (NaN included)
    goes the default way; bit 29, NaN goes the default way; bit 30, the default way is right.
    Otherwise a row goes right when its value is above the threshold. Node ``s`` has its
    children at ``child[2 s]`` (left) and ``child[2 s + 1]``; nodes from ``n_splits`` on are
    the leaves (leaf ``node - n_splits`` of the forest), their children themselves.

    Rows go down a tree :data:`_FOREST_ROWS` at a time, step by step: one row's step does not
    wait for another's, so the CPU overlaps them (a row at its leaf stays there). Once at most
    :data:`_FOREST_FEW` of them are still on their way, those go on one at a time: leaf-wise
    trees are deep (mean depth 12-14 here) while most rows stop early. The trees' outputs
    are added in tree order from 0.0, as LightGBM adds them. With ``sigmoid`` > 0 the score is
    LightGBM's probability, ``1 / (1 + exp(-sigmoid * sum))`` through the C library's ``exp``
    as LightGBM's (numpy's vectorised ``exp`` differs from it in the last bit on about 2% of
    values); else the sum. ``leaves`` (rows x trees, or 0 rows) receives each tree's leaf
    index within the tree.
    """
    want_leaves = leaves.shape[0] > 0
    n_rows, n_features = x.shape
    width = _FOREST_ROWS
    rows = np.empty((width, n_features))
    node = np.empty(width, np.int64)
    total = np.empty(width)

    def step(r: int, nd: int) -> int:
        """Return the child split ``nd`` sends row ``r`` to."""
        flags = info[nd]
        v = rows[r, flags & FEATURE_MASK]
        nan = np.isnan(v)
        v0 = 0.0 if nan else v
        right = v0 > threshold[nd]
        if (flags & ZERO_DEFAULT and v0 == 0.0) or (flags & NAN_DEFAULT and nan):
            right = flags & DEFAULT_RIGHT != 0
        return int(child[2 * nd + right])

    for lo in range(0, n_rows, width):
        m = min(width, n_rows - lo)
        for r in range(m):
            for j in range(n_features):
                v = x[lo + r, j]
                rows[r, j] = 0.0 if v >= -zero and v <= zero else v
            total[r] = 0.0
        for t in range(root.shape[0]):
            for r in range(m):
                node[r] = root[t]
            for _ in range(depth[t]):
                live = 0
                for r in range(m):
                    nd = step(r, node[r])
                    node[r] = nd
                    live += nd < n_splits
                if live <= _FOREST_FEW:
                    break
            # the few rows still on their way go on one at a time (the same steps)
            for r in range(m):
                nd = node[r]
                while nd < n_splits:
                    nd = step(r, nd)
                leaf = nd - n_splits
                if want_leaves:
                    leaves[lo + r, t] = leaf - leaf_offset[t]
                total[r] += leaf_value[leaf]
        for r in range(m):
            s = total[r]
            raw[lo + r] = 1.0 / (1.0 + np.exp(-sigmoid * s)) if sigmoid > 0 else s


def _path_credit_py(  # noqa: PLR0917 - the credit table's CSR arrays, as numba takes them
    leaves: npt.NDArray[np.int32],
    n_leaves: int,
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    data: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
) -> None:
    """Add to ``out[i]`` the credit row of each tree's leaf of row ``i``, tree after tree.

    ``leaves`` is rows x trees; the credit rows (a CSR matrix: tree ``t``'s leaf ``l`` is row
    ``t * n_leaves + l``) hold what each split on the path credits to its feature.
    """
    for i in range(leaves.shape[0]):
        for t in range(leaves.shape[1]):
            r = t * n_leaves + leaves[i, t]
            for j in range(indptr[r], indptr[r + 1]):
                out[i, indices[j]] += data[j]


def _top_rows_py(
    work: npt.NDArray[np.floating[Any]],
    kk: int,
    bound: npt.NDArray[np.floating[Any]],
    idx: npt.NDArray[np.int64],
    val: npt.NDArray[np.float32],
) -> None:
    """Write each row's best ``kk`` columns into ``idx`` and ``val``: best first, ties by index.

    ``bound[i]`` must be at most row ``i``'s ``kk``-th best score, with ``kk`` entries at or
    above it (a lower bound, e.g. the ``kk``-th largest maximum of disjoint column groups).
    One pass keeps the entries above it and, of those equal to it, the ``kk`` lowest columns:
    no more can be chosen. The survivors are ordered by a stable sort of the negated scores,
    so equal scores keep their columns ascending (``0.0`` and ``-0.0`` are equal). ``-inf``
    is never chosen; places left are not written (the caller fills them with -1 and -inf).
    """
    n = work.shape[1]
    above_v = np.empty(n, work.dtype)
    above_c = np.empty(n, np.int64)
    tie_c = np.empty(kk, np.int64)
    for i in range(work.shape[0]):
        b = bound[i]
        na = 0
        nt = 0
        for j in range(n):
            v = work[i, j]
            if v > b:
                above_v[na] = -v
                above_c[na] = j
                na += 1
            elif v == b and nt < kk:
                tie_c[nt] = j
                nt += 1
        take = min(na, kk)
        if na > 0:
            order = np.argsort(above_v[:na], kind="mergesort")
            for p in range(take):
                q = order[p]
                idx[i, p] = above_c[q]
                val[i, p] = -above_v[q]
        if b > -np.inf:
            for p in range(min(nt, kk - take)):
                idx[i, take + p] = tie_c[p]
                val[i, take + p] = b


def _top_set_py(  # noqa: PLR0912, PLR0915, PLR0917 - one loop per row; numba
    work: npt.NDArray[np.floating[Any]],
    kk: int,
    groups: int,
    best: npt.NDArray[np.floating[Any]],
    bound: npt.NDArray[np.floating[Any]],
    above: float,
    mask: npt.NDArray[np.bool_],
) -> None:
    """Mark in ``mask`` the cells :func:`_top_rows_py` chooses, of float32 value above ``above``.

    The same cells (best ``kk`` of each row, ties by lower column, ``-inf`` and NaN never),
    without their order. ``best[i, g]`` is the maximum of row ``i``'s column group ``g``
    (columns ``g``, ``g + groups``, ...; NaN if it holds one) and ``bound[i]`` the ``kk``-th
    largest of them. Only groups whose maximum exceeds the bound hold entries above it, so
    only those are read (about ``kk`` groups, not the row); when more than ``kk`` entries
    exceed it, the ``kk``-th best is found by selection and its equals go in by lowest column;
    when fewer, the first entries equal to the bound, in column order, are read from the
    groups that reach it, and only if they would be marked. Cells already set stay set.
    """
    n = work.shape[1]
    above_v = np.empty(n, work.dtype)
    above_c = np.empty(n, np.int64)
    scratch = np.empty(n, work.dtype)
    reach = np.empty(groups, np.int64)
    for i in range(work.shape[0]):
        b = bound[i]
        na = 0
        for g in range(groups):
            if best[i, g] > b:
                for j in range(g, n, groups):
                    v = work[i, j]
                    if v > b:
                        above_v[na] = v
                        above_c[na] = j
                        na += 1
        if na > kk:
            drop = na - kk
            if drop <= _FEW_DROPPED:
                # the usual row, a few survivors too many: pass over them once per one dropped
                scratch[:na] = above_v[:na]
                for t in range(drop + 1):
                    low = t
                    for q in range(t + 1, na):
                        if scratch[q] < scratch[low]:
                            low = q
                    scratch[t], scratch[low] = scratch[low], scratch[t]
                kth = scratch[drop]
            else:
                kth = -np.partition(-above_v[:na], kk - 1)[kk - 1]
            left = kk
            for p in range(na):
                if above_v[p] > kth:
                    left -= 1
                    if np.float32(above_v[p]) > above:
                        mask[i, above_c[p]] = True
            # the k-th best's equals, lowest columns first (gathered group by group)
            while left > 0:
                low = -1
                for p in range(na):
                    if above_v[p] == kth and (low < 0 or above_c[p] < above_c[low]):
                        low = p
                if np.float32(kth) > above:
                    mask[i, above_c[low]] = True
                above_v[low] = -np.inf
                left -= 1
            continue
        for p in range(na):
            if np.float32(above_v[p]) > above:
                mask[i, above_c[p]] = True
        need = kk - na
        if need == 0 or not (b > -np.inf) or not (np.float32(b) > above):
            continue
        # entries equal to the bound lie in groups reaching it: read them in column order
        nr = 0
        for g in range(groups):
            if best[i, g] >= b:
                reach[nr] = g
                nr += 1
        for start in range(0, n, groups):
            for r in range(nr):
                j = start + reach[r]
                if j < n and work[i, j] == b:
                    mask[i, j] = True
                    need -= 1
                    if need == 0:
                        break
            if need == 0:
                break


def _rows_times_py(  # noqa: PLR0917 - both matrices' arrays, as numba takes them
    indptr: npt.NDArray[np.integer[Any]],
    indices: npt.NDArray[np.integer[Any]],
    data: npt.NDArray[Any],
    rows: npt.NDArray[np.int64],
    o_indptr: npt.NDArray[np.integer[Any]],
    o_indices: npt.NDArray[np.integer[Any]],
    o_data: npt.NDArray[Any],
    dense: npt.NDArray[Any],
    acc: npt.NDArray[Any],
    out: npt.NDArray[np.float32],
) -> None:
    """Write ``matrix[rows] @ other`` into ``out`` (float32), summed as scipy sums it.

    Each stored entry of a row in turn adds its weight times ``other``'s row into ``acc`` (one
    row of zeros in the product's dtype), which is then cast to float32: the order and dtype
    of scipy's sparse product (numba promotes the operands of each product as numpy's
    ``result_type`` does), so the same bits. ``dense`` is ``other`` as a dense array, or empty:
    a finite weight then adds the whole row (contiguous, several times faster on a dense
    ``other``; the zeros it adds change no bit of a sum that starts at +0), an infinite or NaN
    one only the stored entries, as scipy does.
    """
    p = out.shape[1]
    use_dense = dense.shape[0] > 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for jj in range(indptr[r], indptr[r + 1]):
            j = indices[jj]
            w = data[jj]
            if use_dense and np.isfinite(w):
                for c in range(p):
                    acc[c] += w * dense[j, c]
            else:
                for q in range(o_indptr[j], o_indptr[j + 1]):
                    acc[o_indices[q]] += w * o_data[q]
        for c in range(p):
            out[i, c] = acc[c]
            acc[c] = 0


def _jit(func: Callable[..., Any]) -> Callable[..., Any]:
    """Return ``func`` compiled, compiling it (or loading it from numba's cache) on first call."""
    done = _compiled.get(func.__name__)
    if done is not None:
        return done
    with _lock:
        done = _compiled.get(func.__name__)
        if done is None:
            import numba

            options: dict[str, Any] = {"nogil": True, "error_model": "numpy"}
            try:
                done = numba.njit(cache=True, **options)(func)
            except RuntimeError:
                # no writable cache location: compile in memory, once per process
                done = numba.njit(**options)(func)
            _compiled[func.__name__] = done
        return done


def _lazy(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a loop so that it is compiled on its first call, not when this module is imported."""

    def run(*args: Any) -> Any:
        return _jit(func)(*args)

    run.__name__ = func.__name__.removesuffix("_py").lstrip("_")
    run.__doc__ = func.__doc__
    return run


select_rows = _lazy(_select_rows_py)
greedy_pick = _lazy(_greedy_pick_py)
forest_into = _lazy(_forest_py)
path_credit_into = _lazy(_path_credit_py)
reason_words_into = _lazy(_reason_words_py)
join_words = _lazy(_join_words_py)
top_contributions_into = _lazy(_top_contributions_py)
table_contributions_into = _lazy(_table_contributions_py)
top_rows_into = _lazy(_top_rows_py)
top_set_into = _lazy(_top_set_py)
rows_times_into = _lazy(_rows_times_py)
