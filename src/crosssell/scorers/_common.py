"""Helpers shared by the scorers: scikit-learn style parameter checks and sparse look-ups."""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable
from typing import Any, SupportsIndex, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

__all__ = [
    "as_rows",
    "cached_keys",
    "check_bool",
    "check_float",
    "check_int",
    "check_option",
    "is_int",
    "lookup",
]

IntArray = npt.NDArray[np.int64]


def is_int(value: object) -> bool:
    """Tell whether a value is an int (numpy ints included, bools excluded)."""
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, numbers.Integral)


def check_int(owner: str, name: str, value: object, *, low: int, high: int | None = None) -> int:
    """Check an int parameter in ``[low, high]`` and raise scikit-learn's message otherwise."""
    upper = "inf)" if high is None else f"{high}]"
    if is_int(value):
        iv = operator.index(cast(SupportsIndex, value))
        if iv >= low and (high is None or iv <= high):
            return iv
    raise ValueError(
        f"The '{name}' parameter of {owner} must be an int in the range [{low}, {upper}. "
        f"Got {value!r} instead."
    )


def check_float(
    owner: str, name: str, value: object, *, low: float, low_open: bool, extra: str = ""
) -> float:
    """Check a real parameter above ``low`` (open or closed) and raise scikit-learn's message."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        if np.isfinite(v) and (v > low if low_open else v >= low):
            return v
    bracket = "(" if low_open else "["
    raise ValueError(
        f"The '{name}' parameter of {owner} must be {extra}a float in the range "
        f"{bracket}{low}, inf). Got {value!r} instead."
    )


def check_option(owner: str, name: str, value: object, options: Iterable[str]) -> str:
    """Check a string option and raise scikit-learn's message otherwise."""
    allowed = sorted(options)
    if isinstance(value, str) and value in allowed:
        return value
    shown = "{" + ", ".join(repr(o) for o in allowed) + "}"
    raise ValueError(
        f"The '{name}' parameter of {owner} must be a str among {shown}. Got {value!r} instead."
    )


def check_bool(owner: str, name: str, value: object) -> bool:
    """Check a boolean parameter."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(
        f"The '{name}' parameter of {owner} must be an instance of 'bool'. Got {value!r} instead."
    )


def as_rows(values: Any, *, name: str) -> IntArray:
    """Read a 1-D array of integer row or column indices."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"'{name}' must be a 1-D array of int indices; got shape {arr.shape}.")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"'{name}' must hold int indices; got dtype {arr.dtype}.")
    return arr.astype(np.int64, copy=False)


def cached_keys(owner: object, matrix: sp.csr_matrix) -> IntArray:
    """Search keys of ``matrix`` (see :func:`lookup`), kept on ``owner`` for later calls.

    Building them reads every stored entry; per offer explained (one client in real time) that
    cost would dominate. The cache is private (no trailing underscore), so it is never saved.
    """
    cached = getattr(owner, "_lookup_keys", None)
    if cached is not None and cached[0] is matrix:
        keys: IntArray = cached[1]
        return keys
    keys = _row_keys(matrix)
    owner._lookup_keys = (matrix, keys)  # type: ignore[attr-defined]
    return keys


def _row_keys(matrix: sp.csr_matrix) -> IntArray:
    """``row * n_cols + col`` of every stored entry, in storage order."""
    row_of = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys: IntArray = row_of * matrix.shape[1] + matrix.indices
    return keys


def lookup(
    matrix: sp.csr_matrix, rows: IntArray, cols: IntArray, keys: IntArray | None = None
) -> npt.NDArray[np.float64]:
    """Entries ``matrix[rows[e], cols[e]]`` (0 where absent), vectorised over the pairs.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[0, 2.0], [3.0, 0]]))
    >>> lookup(m, np.array([0, 1, 1]), np.array([1, 0, 1])).tolist()
    [2.0, 3.0, 0.0]
    """
    if rows.size == 0:
        return np.zeros(0, dtype=np.float64)
    # entries of a canonical CSR are sorted by (row, column): one searchsorted finds them all
    n_cols = matrix.shape[1]
    if keys is None:
        keys = _row_keys(matrix)
    wanted = rows.astype(np.int64) * n_cols + cols
    at = np.searchsorted(keys, wanted)
    at_c = np.minimum(at, max(keys.size - 1, 0))
    found = (at < keys.size) & (keys[at_c] == wanted) if keys.size else np.zeros(rows.size, bool)
    out = np.zeros(rows.size, dtype=np.float64)
    out[found] = matrix.data[at_c[found]]
    return out
