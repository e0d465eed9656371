"""Helpers shared by the scorers: shared parameter constraints and sparse look-ups."""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable
from typing import Any, Final, SupportsIndex, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._params import ConstraintLike, InstanceOf, Interval, validate_params
from crosssell._sparse import dense_form, row_keys

__all__ = [
    "RANDOM_STATE",
    "as_rows",
    "cached_dense",
    "cached_keys",
    "check_evidence_n",
    "is_int",
    "lookup",
]

IntArray = npt.NDArray[np.int64]

#: The ``random_state`` a scorer admits: a non-negative seed, a generator, or ``None`` (fresh
#: entropy).
RANDOM_STATE: Final[list[ConstraintLike]] = [
    Interval(numbers.Integral, 0, None, closed="left"),
    InstanceOf(np.random.Generator, "an instance of 'numpy.random.Generator'"),
    None,
]


def is_int(value: object) -> bool:
    """Tell whether a value is an int (numpy ints included, bools excluded)."""
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, numbers.Integral)


def check_evidence_n(owner: object, n: object) -> int:
    """Check the ``n`` argument of a scorer's ``evidence`` and return it as an int."""
    if type(n) is int and n >= 1:  # the usual answer, without the checker's cost per offer
        return n
    name = f"{type(owner).__name__}.evidence"
    validate_params(name, {"n": n}, {"n": [Interval(numbers.Integral, 1, None, closed="left")]})
    return operator.index(cast(SupportsIndex, n))


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


def _kept(owner: object, attr: str, matrix: sp.csr_matrix, build: Callable[[], Any]) -> Any:
    """Return ``build()``, kept on ``owner`` under ``attr`` while ``matrix`` is the same object.

    The attribute is private (no trailing underscore), so it is never saved.
    """
    cached = getattr(owner, attr, None)
    if cached is not None and cached[0] is matrix:
        return cached[1]
    value = build()
    setattr(owner, attr, (matrix, value))
    return value


def cached_keys(owner: object, matrix: sp.csr_matrix) -> IntArray:
    """Search keys of ``matrix`` (see :func:`lookup`), kept on ``owner`` for later calls.

    Building them reads every stored entry; per offer explained (one client in real time) that
    cost would dominate.
    """
    keys: IntArray = _kept(owner, "_lookup_keys", matrix, lambda: row_keys(matrix))
    return keys


def cached_dense(owner: object, matrix: sp.csr_matrix) -> npt.NDArray[Any] | None:
    """``matrix`` made dense for :func:`crosssell._sparse.rows_times` (or None), kept on ``owner``.

    Made once per fitted matrix, not per block of clients.
    """
    dense: npt.NDArray[Any] | None = _kept(owner, "_dense_form", matrix, lambda: dense_form(matrix))
    return dense


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
        keys = row_keys(matrix)
    wanted = rows.astype(np.int64) * n_cols + cols
    at = np.searchsorted(keys, wanted)
    at_c = np.minimum(at, max(keys.size - 1, 0))
    found = (at < keys.size) & (keys[at_c] == wanted) if keys.size else np.zeros(rows.size, bool)
    out = np.zeros(rows.size, dtype=np.float64)
    out[found] = matrix.data[at_c[found]]
    return out
