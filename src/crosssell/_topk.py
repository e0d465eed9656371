"""Exact, deterministic top-k selection over chunks of dense scores.

Rows are clients, columns are products. Ties are broken by product index (lower first), also
at the k-th place, so the same scores always give the same offers whatever the chunking.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._kernels import top_rows_into, top_set_into
from crosssell._params import Interval, Options, validate_params

__all__ = ["cells", "mark_top_k", "masked_fill", "ordered_top_k", "top_k"]


def _check_csr_rows(csr_rows: Any, shape: tuple[int, ...], name: str) -> sp.csr_matrix:
    if getattr(csr_rows, "format", None) != "csr":
        raise ValueError(
            f"'{name}' must be a scipy.sparse CSR matrix with one row per score row; "
            f"got {type(csr_rows).__name__}. Convert it with .tocsr()."
        )
    if tuple(csr_rows.shape) != tuple(shape):
        raise ValueError(
            f"'{name}' has shape {tuple(csr_rows.shape)} but the scores have shape "
            f"{tuple(shape)}; they must match."
        )
    return cast(sp.csr_matrix, csr_rows)


def cells(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row and column of every True entry of a 2-D boolean array, in row-major order.

    The same as ``np.nonzero(mask)``, about three times faster on rows of 1,000 columns with
    few entries set (one pass over the flat array, then a division).

    Parameters
    ----------
    mask : ndarray of bool, shape (m, n)
        Any 2-D boolean array.

    Returns
    -------
    rows, cols : ndarray of int64
        The coordinates of the True entries, rows ascending, columns ascending within a row.

    Examples
    --------
    >>> import numpy as np
    >>> [c.tolist() for c in cells(np.array([[False, True], [True, True]]))]
    [[0, 1, 1], [1, 0, 1]]
    """
    flat = np.flatnonzero(mask)
    n = max(mask.shape[1], 1)
    rows = flat // n
    return rows, flat - rows * n


def masked_fill(
    scores: npt.NDArray[np.floating[Any]], csr_rows: sp.csr_matrix, value: float = -np.inf
) -> npt.NDArray[np.floating[Any]]:
    """Set the entries stored in ``csr_rows`` to ``value`` in place, without a dense mask.

    Every stored entry of ``csr_rows`` counts, whatever its value (call ``eliminate_zeros()``
    first to drop explicit zeros).

    Parameters
    ----------
    scores : ndarray of float, shape (m, n_products)
        Scores of a chunk of clients; modified in place.
    csr_rows : scipy.sparse.csr_matrix, shape (m, n_products)
        The pairs to blank out, e.g. the chunk's rows of the holdings.
    value : float, default -inf
        The value written.

    Returns
    -------
    ndarray
        ``scores`` itself.

    Raises
    ------
    ValueError
        If ``csr_rows`` is not CSR or its shape differs from ``scores``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> s = np.ones((2, 3), dtype=np.float32)
    >>> masked_fill(s, sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1]]))).tolist()
    [[1.0, -inf, 1.0], [-inf, 1.0, -inf]]
    """
    csr = _check_csr_rows(csr_rows, scores.shape, "csr_rows")
    rows = np.repeat(np.arange(scores.shape[0], dtype=np.int64), np.diff(csr.indptr))
    scores[rows, csr.indices] = value
    return scores


def top_k(
    scores: npt.ArrayLike,
    k: int,
    exclude: sp.csr_matrix | None = None,
    *,
    tiebreak: Literal["index"] = "index",
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Select the ``k`` best products of each row, best first, ties by lower product index.

    Selection is exact: a product with an equal score and a lower index always wins the last
    place. Excluded entries, ``-inf`` and ``NaN`` are never selected; rows with fewer than ``k``
    candidates (or ``k`` larger than the catalogue) are padded with index ``-1`` and ``-inf``.

    Parameters
    ----------
    scores : array-like of float, shape (m, n_products)
        Scores of a chunk of clients (not modified). float64 scores are compared in float64.
    k : int
        Products per row, ``>= 1``.
    exclude : scipy.sparse.csr_matrix, shape (m, n_products), optional
        Pairs never selected (every stored entry counts), e.g. the holdings of the chunk.
    tiebreak : {"index"}, default "index"
        Equal scores are ordered by product index, lower first.

    Returns
    -------
    indices : ndarray of int64, shape (m, k)
        Product indices, best first; -1 pads.
    values : ndarray of float32, shape (m, k)
        Their scores; -inf pads.

    Raises
    ------
    ValueError
        If ``k`` is not a positive int, ``scores`` is not 2-D, ``tiebreak`` is unknown or
        ``exclude`` does not match.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> s = np.array([[0.1, 0.9, 0.9, 0.5], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    >>> idx, val = top_k(s, 2)
    >>> idx.tolist()
    [[1, 2], [0, 1]]
    >>> held = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 0]]))
    >>> top_k(s, 3, held)[0].tolist()
    [[2, 3, 0], [3, -1, -1]]
    """
    fast = type(k) is int and k >= 1 and type(tiebreak) is str and tiebreak == "index"
    if not fast:  # the checker costs more than one client's selection
        validate_params(
            "top_k",
            {"k": k, "tiebreak": tiebreak},
            {
                "k": [Interval(numbers.Integral, 1, None, closed="left")],
                "tiebreak": [Options({"index"})],
            },
        )
    k = int(k)
    s = np.asarray(scores)
    if s.ndim != 2 or not np.issubdtype(s.dtype, np.floating):
        raise ValueError(
            f"'scores' must be a 2-D float array (rows are clients); got shape {s.shape}, "
            f"dtype {s.dtype}."
        )
    m, n_products = s.shape
    work = s
    if exclude is not None:
        work = s.copy()
        masked_fill(work, exclude)
    # One reduction finds a NaN (max propagates it) without a boolean temporary per chunk.
    if work.size and np.isnan(work.max()):
        if work is s:
            work = s.copy()
        work[np.isnan(work)] = -np.inf
    kk = min(k, n_products)
    idx = np.full((m, k), -1, dtype=np.int64)
    val = np.full((m, k), -np.inf, dtype=np.float32)
    if kk == 0 or m == 0:
        return idx, val
    if m == 1 and kk < n_products:
        # One client (the real-time path): a few vector operations beat the general machinery.
        idx[0, :kk], val[0, :kk] = _one_row(work[0], kk)
        return idx, val
    if kk < n_products:
        idx[:, :kk], val[:, :kk] = _by_threshold(work, kk, _groups(kk, n_products))
        return idx, val
    # whole row wanted: a stable sort of the negated scores puts ties in index order
    sel = np.argsort(-work, axis=1, kind="stable")
    chosen = np.take_along_axis(work, sel, axis=1)
    valid = chosen > -np.inf
    sel = np.where(valid, sel, -1)
    # best first, equal scores by product index; pads (-inf) sink to the end
    order = np.lexsort((np.where(valid, sel, n_products), -chosen), axis=1)
    idx[:, :kk] = np.take_along_axis(sel, order, axis=1)
    val[:, :kk] = np.take_along_axis(chosen, order, axis=1)
    return idx, val


def _one_row(
    row: npt.NDArray[np.floating[Any]], kk: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Top ``kk`` of one row: best first, ties by index, -inf never chosen (padded -1/-inf)."""
    kth = -np.partition(-row, kk - 1)[kk - 1]
    above = np.flatnonzero(row > kth)
    if kth > -np.inf:
        ties = np.flatnonzero(row == kth)[: kk - above.shape[0]]
        chosen = np.concatenate([above, ties])
    else:
        chosen = above
    order = np.lexsort((chosen, -row[chosen]))
    chosen = chosen[order]
    idx = np.full(kk, -1, dtype=np.int64)
    val = np.full(kk, -np.inf, dtype=np.float32)
    idx[: chosen.shape[0]] = chosen
    val[: chosen.shape[0]] = row[chosen]
    return idx, val


def _positions(rows: npt.NDArray[np.int64], counts: npt.NDArray[np.int64] | None) -> Any:
    """Place of each entry within its row, for row indices in ascending order.

    ``counts`` holds the entries of each row (their ``np.bincount``; computed when None).
    """
    if rows.size == 0:
        return rows
    if counts is None:
        counts = np.bincount(rows)
    starts = np.cumsum(counts) - counts
    return np.arange(rows.size) - starts[rows]


def _groups(kk: int, n_products: int) -> int:
    """Column groups for :func:`_by_threshold`: ``8 kk`` (at least 64), at most one per column.

    Measured on 2,048 rows of 60 to 2,000 products, ``kk`` 10 and 50, dense and mostly-zero
    scores: the fastest of 1, 2, 4 and 8 groups per place, or within 5% of it; one group per
    column makes the bound the exact ``kk``-th score (a partition of every row).
    """
    return min(max(8 * kk, 64), n_products)


def _by_threshold(
    work: npt.NDArray[np.floating[Any]], kk: int, groups: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Exact top ``kk`` of each row, best first, ties by index, through a cheap lower bound.

    The columns are cut into ``groups`` disjoint groups (column ``j`` in group ``j % groups``).
    The ``kk``-th largest group maximum is reached by ``kk`` distinct entries, so it bounds the
    ``kk``-th best score from below: only entries at or above it can be chosen. On scores these
    are a few more than ``kk`` per row; a compiled pass per row keeps them (and, of the entries
    equal to the bound, only the ``kk`` first: rows of many equal scores, such as item-kNN's
    zeros, no longer keep the whole row) and sorts them. About 1.4x faster than a sort of the
    chunk's survivors on dense rows of 2,000 products, 13x on rows of zeros and a few scores.
    """
    m = work.shape[0]
    bound = _bound(work, kk, groups)
    idx = np.full((m, kk), -1, dtype=np.int64)
    val = np.full((m, kk), -np.inf, dtype=np.float32)
    top_rows_into(work, kk, bound, idx, val)
    return idx, val


#: Rows :func:`mark_top_k` selects at a time: 256 x 2,000 float32 scores are 2 MiB.
_SET_ROWS = 256


def _group_max(work: npt.NDArray[np.floating[Any]], groups: int) -> npt.NDArray[Any]:
    """Return each row's maximum of the column groups ``j % groups`` (NaN where one is)."""
    n = work.shape[1]
    full = n - n % groups
    # slice after slice: twice as fast as a maximum over the middle axis of a reshaped view
    best = work[:, :groups].copy()
    for start in range(groups, full, groups):
        np.maximum(best, work[:, start : start + groups], out=best)
    if full < n:
        np.maximum(best[:, : n - full], work[:, full:], out=best[:, : n - full])
    return best


def _kth_of(best: npt.NDArray[Any], kk: int) -> npt.NDArray[Any]:
    """Return the ``kk``-th largest of each row (NaN last: the kk-th of the others)."""
    kth: npt.NDArray[Any] = -np.partition(-best, kk - 1, axis=1)[:, kk - 1]
    return kth


def _bound(work: npt.NDArray[np.floating[Any]], kk: int, groups: int) -> npt.NDArray[Any]:
    """Return the ``kk``-th largest maximum of ``groups`` disjoint column groups of each row."""
    return _kth_of(_group_max(work, groups), kk)


def mark_top_k(
    scores: npt.NDArray[np.floating[Any]],
    k: int,
    mask: npt.NDArray[np.bool_],
    *,
    above: float = -np.inf,
) -> None:
    """Set in ``mask`` the cells :func:`top_k` selects whose value (float32) is above ``above``.

    The same cells as ``top_k(scores, k)`` (ties by lower product index; ``-inf`` and NaN
    never), without ordering them: a candidate set needs no order, and sorting each row's
    survivors was most of the selection's time. Cells already set stay set.

    Parameters
    ----------
    scores : ndarray of float, shape (m, n_products)
        Scores of a chunk of clients (not modified).
    k : int
        Products per row, ``>= 1``.
    mask : ndarray of bool, shape (m, n_products)
        Written in place.
    above : float, default -inf
        Only selected cells scoring strictly more are set.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[0.1, 0.9, 0.0, 0.9], [0.0, 0.0, 0.0, 0.3]], dtype=np.float32)
    >>> mask = np.zeros(s.shape, dtype=bool)
    >>> mark_top_k(s, 2, mask, above=0.0)
    >>> mask.astype(int).tolist()
    [[0, 1, 0, 1], [0, 0, 0, 1]]
    """
    work = np.asarray(scores)
    if work.shape != mask.shape:
        raise ValueError(f"'mask' has shape {mask.shape}; the scores have {work.shape}.")
    m, n = work.shape
    kk = min(int(k), n)
    if kk == 0 or m == 0:
        return
    if kk == n or m == 1:
        idx, val = top_k(work, kk)
        r, c = np.nonzero((idx >= 0) & (val > above))
        mask[r, idx[r, c]] = True
        return
    groups = _groups(kk, n)
    # a few hundred rows at a time: the kernel reads rows the group maxima have just read,
    # still in the core's cache (1.5x faster than a whole block of 2,048 x 2,000 at once)
    for lo in range(0, m, _SET_ROWS):
        part = work[lo : lo + _SET_ROWS]
        best = _group_max(part, groups)
        if np.isnan(best).any():
            # the kernel skips a group whose maximum is NaN: NaN become -inf (never chosen)
            part = part.copy()
            part[np.isnan(part)] = -np.inf
            best = _group_max(part, groups)
        top_set_into(
            part, kk, groups, best, _kth_of(best, kk), float(above), mask[lo : lo + _SET_ROWS]
        )


def ordered_top_k(
    priority: npt.NDArray[np.floating[Any]],
    k: int,
    *,
    propensity: npt.NDArray[np.floating[Any]] | None = None,
    score: npt.NDArray[np.floating[Any]] | None = None,
    tie_rank: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Select the ``k`` best products of each row in a total order of several keys.

    Higher ``priority`` first; equal priorities by higher ``propensity``, then higher
    ``score``, then lower ``tie_rank`` (default: the product index). A key left out is
    skipped. NaN keys rank last; ``-inf`` and NaN priorities are never selected; rows run
    short are padded with ``-1`` and ``-inf``, as :func:`top_k` does.

    Parameters
    ----------
    priority : ndarray of float, shape (m, n_products)
        What ranks first (not modified).
    k : int
        Products per row, ``>= 1``.
    propensity, score : ndarray of float, shape (m, n_products), optional
        The second and third keys.
    tie_rank : ndarray of int64, shape (n_products,), optional
        The last key, one per product, lower first.

    Returns
    -------
    indices : ndarray of int64, shape (m, k)
    values : ndarray of float32, shape (m, k)
        The priorities of the chosen products.

    Examples
    --------
    >>> import numpy as np
    >>> pr = np.array([[1.0, 2.0, 2.0, 2.0]], np.float32)
    >>> sc = np.array([[0.0, 1.0, 3.0, 3.0]], np.float32)
    >>> ordered_top_k(pr, 2, score=sc, tie_rank=np.array([0, 1, 3, 2]))[0].tolist()
    [[3, 2]]
    """
    idx, val = top_k(priority, k)
    m, n = priority.shape
    kk = min(k, n)
    if m == 0 or kk == 0:
        return idx, val
    n_keys = sum(x is not None for x in (propensity, score))
    ranks = np.arange(n, dtype=np.int64) if tie_rank is None else np.asarray(tie_rank, np.int64)
    if n_keys == 0 and tie_rank is None:
        return idx, val

    def keys(r: npt.NDArray[np.int64], c: npt.NDArray[np.int64]) -> list[npt.NDArray[Any]]:
        """Sort keys of entries, least significant first, for np.lexsort (ascending)."""
        out: list[npt.NDArray[Any]] = [ranks[c]]
        for key in (score, propensity):
            if key is not None:
                v = np.asarray(key[r, c], dtype=np.float64)
                out.append(np.where(np.isnan(v), np.inf, -v))
        return out

    # the k-th priority of each row: products tied with it compete for the last places
    kth = val[:, kk - 1].astype(priority.dtype)
    above = (val[:, :kk] > kth[:, None]).sum(axis=1)
    tied = (priority == kth[:, None]).sum(axis=1)
    cut = np.flatnonzero((kth > -np.inf) & (tied > kk - above))
    if cut.size:
        r_loc, c = cells(priority[cut] == kth[cut, None])
        r = cut[r_loc]
        order = np.lexsort((*keys(r, c), r))
        r, c = r[order], c[order]
        pos = _positions(r_loc[order], np.bincount(r_loc, minlength=cut.size))
        take = pos < (kk - above[r])
        idx[r[take], above[r[take]] + pos[take]] = c[take]
    # order each row's chosen products by every key; pads (-inf) stay last
    rows = np.repeat(np.arange(m, dtype=np.int64), kk)
    chosen = idx[:, :kk].ravel()
    valid = chosen >= 0
    cols = np.where(valid, chosen, 0)
    vals = val[:, :kk].ravel().astype(np.float64)
    sort_keys = [np.where(valid, k_, np.inf) for k_ in keys(rows, cols)]
    order = np.lexsort((*sort_keys, -vals, rows))
    idx[:, :kk] = chosen[order].reshape(m, kk)
    val[:, :kk] = val[:, :kk].ravel()[order].reshape(m, kk)
    return idx, val
