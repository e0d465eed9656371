"""Compiled loops for the batch path: a block's priorities, policy and top-k in one pass.

The numpy path (:func:`crosssell._priority.score_block` then :func:`crosssell._topk.top_k`)
writes a dense priority array and reads it several times: about ten passes over
``batch_size x n_products`` floats per block. The loop below does the same arithmetic on one
client at a time, in a row buffer that stays in the CPU cache, and keeps the best ``k`` as it
goes, so a block costs one read of its scores. Results are identical to the numpy path (the
same float32 operations in the same order; property-tested).

numba is imported, and the loop compiled, on first use: ``import crosssell`` stays light. The
compiled code is cached on disk beside the module (or in numba's user cache) when either is
writable, so later processes load it instead of compiling it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_K", "select_rows"]

MAX_K = 64
"""Largest ``k`` the loop serves; it keeps the best ``k`` by insertion, which suits small ``k``."""

_lock = threading.Lock()
_compiled: Callable[..., None] | None = None


def _select_rows_py(  # noqa: PLR0912, PLR0915, PLR0917 - one fused loop; its inputs are its state
    src: npt.NDArray[np.float32],
    scale_mode: bool,
    inv: np.float32,
    weight: npt.NDArray[np.float32],
    bound: npt.NDArray[np.float32],
    gated: bool,
    min_ev: float,
    min_p: float,
    row_off: npt.NDArray[np.bool_],
    up_ptr: npt.NDArray[np.int64],
    up_col: npt.NDArray[np.int64],
    up_w: npt.NDArray[np.float32],
    up_v: npt.NDArray[np.float64],
    up_slot: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    off_ptr: npt.NDArray[Any],
    off_col: npt.NDArray[Any],
    idx: npt.NDArray[np.int64],
    val: npt.NDArray[np.float32],
    slot: npt.NDArray[np.int64],
) -> None:
    m, n = src.shape
    k = idx.shape[1]
    ninf = np.float32(-np.inf)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    buf = np.empty(n, dtype=np.float32)
    mark = np.full(n, -1, dtype=np.int64)
    top_v = np.empty(k, dtype=np.float32)
    top_i = np.empty(k, dtype=np.int64)
    top_s = np.empty(k, dtype=np.int64)
    for i in range(m):
        # Plain cross-sells: propensity times the product's weight, kept when the propensity
        # passes the product's bound (the not-worth floor; +inf for a blocked product). No
        # branch in the loop, so that it runs on vector instructions.
        if row_off[i]:
            buf[:] = ninf
        elif scale_mode:
            for j in range(n):
                # ScoreScale: clip(score / scale, 0, 1), NaN to 0 as numpy's fmax does
                p = src[i, j] * inv
                p = p if p > zero else zero
                p = p if p < one else one
                pr = p * weight[j]
                buf[j] = pr if (p > bound[j]) & (pr == pr) else ninf  # noqa: PLR0124 - NaN test
        else:
            for j in range(n):
                p = src[i, j]
                pr = p * weight[j]
                buf[j] = pr if (p > bound[j]) & (pr == pr) else ninf  # noqa: PLR0124 - NaN test
        # upsells: their own value, the floor tested on propensity and expected value
        for e in range(up_ptr[i], up_ptr[i + 1]):
            c = up_col[e]
            p = src[i, c]
            if scale_mode:
                p = p * inv
                p = p if p > zero else zero
                p = p if p < one else one
            pr = p * up_w[e]
            if np.isnan(pr):
                pr = ninf
            elif gated:
                pf = np.float64(p)
                if not (pf * up_v[e] > min_ev and pf >= min_p):
                    pr = ninf
            buf[c] = pr
            mark[c] = up_slot[e]
        r = rows[i]
        for e in range(off_ptr[r], off_ptr[r + 1]):
            buf[off_col[e]] = ninf
        # The best k, best first. An equal value never passes one already kept, which has the
        # lower index; -inf never enters (the threshold starts there).
        cnt = 0
        thr = ninf
        for j in range(n):
            v = buf[j]
            if not v > thr:
                continue
            if cnt < k:
                pos = cnt
                cnt += 1
            else:
                pos = k - 1
            while pos > 0 and top_v[pos - 1] < v:
                top_v[pos] = top_v[pos - 1]
                top_i[pos] = top_i[pos - 1]
                top_s[pos] = top_s[pos - 1]
                pos -= 1
            top_v[pos] = v
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
        for e in range(up_ptr[i], up_ptr[i + 1]):
            mark[up_col[e]] = -1


def _kernel() -> Callable[..., None]:
    """Return the compiled loop, compiling it (or loading it from numba's cache) on first call."""
    global _compiled  # noqa: PLW0603 - compiled once per process, on demand
    with _lock:
        if _compiled is None:
            import numba

            options: dict[str, Any] = {"nogil": True, "error_model": "numpy"}
            try:
                _compiled = numba.njit(cache=True, **options)(_select_rows_py)
            except RuntimeError:
                # no writable cache location: compile in memory, once per process
                _compiled = numba.njit(**options)(_select_rows_py)
        return _compiled


def select_rows(*args: Any) -> None:
    """Run the compiled loop on positional arguments, in the order of its definition.

    :func:`crosssell._priority.select_block` is the one caller; it documents the arguments.
    """
    _kernel()(*args)
