"""Cheap row access on CSR matrices.

scipy's fancy row indexing builds a new sparse matrix and costs tens of microseconds even for one
row; reading ``indptr``/``indices`` directly is what a hot path needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._kernels import rows_times_into

__all__ = [
    "dense_form",
    "group_max",
    "row_keys",
    "row_positions",
    "rows_dense",
    "rows_times",
    "take_rows",
]


def row_positions(
    indptr: npt.NDArray[np.integer], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return positions of the stored entries of ``rows`` in a CSR, and their owner.

    Parameters
    ----------
    indptr : ndarray
        The CSR ``indptr``.
    rows : ndarray of int64
        Row indices (repeats allowed).

    Returns
    -------
    positions : ndarray of int64
        Indices into ``indices``/``data``, row after row.
    owner : ndarray of int64
        For each position, its index in ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> pos, owner = row_positions(np.array([0, 2, 3]), np.array([1, 0]))
    >>> pos.tolist(), owner.tolist()
    ([2, 0, 1], [0, 1, 1])
    """
    if rows.shape[0] == 1:
        # one client in real time: a slice, not the general machinery
        start, stop = int(indptr[rows[0]]), int(indptr[rows[0] + 1])
        return np.arange(start, stop, dtype=np.int64), np.zeros(stop - start, dtype=np.int64)
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    owner = np.repeat(np.arange(rows.shape[0], dtype=np.int64), lengths)
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(owner.shape[0], dtype=np.int64) - offsets[owner] + starts[owner]
    return positions, owner


def rows_dense(
    matrix: sp.csr_matrix, rows: npt.ArrayLike, dtype: npt.DTypeLike | None = None
) -> npt.NDArray[Any]:
    """Return a dense copy of some rows of a CSR matrix (duplicates summed, as scipy does).

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The matrix.
    rows : array-like of int
        Row indices.
    dtype : dtype, optional
        Output dtype; default the matrix's.

    Returns
    -------
    ndarray, shape (len(rows), n_columns)

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix([[0, 2], [3, 0]])
    >>> rows_dense(m, [1, 1, 0]).tolist()
    [[3, 0], [3, 0], [0, 2]]
    """
    idx = np.asarray(rows, dtype=np.int64).reshape(-1)
    out = np.zeros((idx.shape[0], matrix.shape[1]), dtype=dtype or matrix.dtype)
    pos, owner = row_positions(matrix.indptr, idx)
    if matrix.dtype == np.bool_ and out.dtype == np.bool_:
        out[owner, matrix.indices[pos]] = matrix.data[pos]
    else:
        np.add.at(out, (owner, matrix.indices[pos]), matrix.data[pos])
    return out


def take_rows(matrix: sp.csr_matrix, rows: npt.ArrayLike) -> sp.csr_matrix:
    """Return the CSR matrix of some rows (like ``matrix[rows]``, without scipy's indexing cost).

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The matrix.
    rows : array-like of int
        Row indices (repeats allowed).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (len(rows), n_columns)

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix([[0, 2], [3, 0]])
    >>> take_rows(m, [1, 0]).toarray().tolist()
    [[3, 0], [0, 2]]
    """
    idx = np.asarray(rows, dtype=np.int64).reshape(-1)
    pos, owner = row_positions(matrix.indptr, idx)
    indptr = np.zeros(idx.shape[0] + 1, dtype=matrix.indptr.dtype)
    np.cumsum(np.bincount(owner, minlength=idx.shape[0]), out=indptr[1:])
    return sp.csr_matrix(
        (matrix.data[pos], matrix.indices[pos], indptr),
        shape=(idx.shape[0], matrix.shape[1]),
    )


def rows_times(
    matrix: sp.csr_matrix,
    rows: npt.NDArray[np.int64],
    other: sp.csr_matrix,
    dense: npt.NDArray[Any] | None = None,
) -> Any:
    """Return ``matrix[rows] @ other`` as a dense float32 array, the same numbers as scipy's.

    For one row (a client in real time) the product is summed with numpy in scipy's own order
    (each stored entry of the row in turn, each of its entries in ``other`` in turn, in the
    result dtype), so it equals the sparse product bit for bit at a fraction of its fixed cost.
    For more rows a compiled loop sums the same way, one output row at a time in a buffer,
    written straight into float32 (no sparse result, no float64 copy); given ``dense``
    (``other`` as a dense array, see :func:`dense_form`), it adds whole rows of it instead of
    scattering ``other``'s entries: about 1.7x faster than scipy's dense product on a
    co-occurrence table half full at 2,048 rows x 2,000 products, where scattering is 3x
    slower.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix, shape (n, m)
    rows : ndarray of int64
        Row indices.
    other : scipy.sparse.csr_matrix, shape (m, p)
    dense : ndarray, shape (m, p), optional
        ``other.toarray()``, kept by the caller.

    Returns
    -------
    ndarray of float32, shape (len(rows), p)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix(np.array([[1.0, 2.0], [0.0, 3.0]], np.float32))
    >>> b = sp.csr_matrix(np.array([[1.0, 0.0, 4.0], [0.5, 1.0, 0.0]], np.float32))
    >>> rows_times(a, np.array([0]), b).tolist()
    [[2.0, 2.0, 4.0]]
    >>> rows_times(a, np.array([1, 0]), b, dense_form(b)).tolist()
    [[1.5, 3.0, 0.0], [2.0, 2.0, 4.0]]
    """
    dtype = np.result_type(matrix.dtype, other.dtype)
    if rows.shape[0] != 1:
        out = np.empty((rows.shape[0], other.shape[1]), dtype=np.float32)
        rows_times_into(
            matrix.indptr,
            matrix.indices,
            matrix.data,
            np.asarray(rows, dtype=np.int64),
            other.indptr,
            other.indices,
            other.data,
            _NO_DENSE if dense is None else dense,
            np.zeros(other.shape[1], dtype=dtype),
            out,
        )
        return out
    start, stop = int(matrix.indptr[rows[0]]), int(matrix.indptr[rows[0] + 1])
    held = matrix.indices[start:stop].astype(np.int64)
    pos, owner = row_positions(other.indptr, held)
    weights = matrix.data[start:stop].astype(dtype)[owner]
    out = np.zeros(other.shape[1], dtype=dtype)
    np.add.at(out, other.indices[pos], weights * other.data[pos].astype(dtype))
    return out.astype(np.float32)[None, :]


_NO_DENSE = np.zeros((0, 0), dtype=np.float32)

#: Largest ``other`` :func:`dense_form` makes dense (cells): 64 MiB of float32, a catalogue of
#: 4,096 products; a tenth of its cells stored is enough for whole rows to pay.
_DENSE_CELLS = 1 << 24


def dense_form(other: sp.csr_matrix) -> npt.NDArray[Any] | None:
    """Return ``other`` as a dense array when :func:`rows_times` gains by it, else None.

    Whole rows pay when at least a tenth of the cells are stored; the copy is made only up to
    ``2**24`` cells (64 MiB of float32).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> dense_form(sp.csr_matrix(np.eye(3, dtype=np.float32))).shape
    (3, 3)
    >>> dense_form(sp.csr_matrix((100, 100), dtype=np.float32)) is None
    True
    """
    n, p = other.shape
    if n * p == 0 or n * p > _DENSE_CELLS or other.nnz < 0.1 * n * p:
        return None
    return np.asarray(other.toarray())


def group_max(
    rows: npt.NDArray[np.integer[Any]],
    cols: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Sparse matrix holding the maximum of ``values`` per (row, col) cell.

    Examples
    --------
    >>> import numpy as np
    >>> m = group_max(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([2.0, 5.0, 1.0]), (2, 2))
    >>> m.toarray().tolist()
    [[0.0, 5.0], [1.0, 0.0]]
    """
    if rows.shape[0] == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    # one stable sort of a single cell key (contracts usually come grouped by client, which the
    # sort exploits) and a maximum per run: several times cheaper than a lexsort of three keys
    cell = rows.astype(np.int64) * shape[1] + cols
    order = np.argsort(cell, kind="stable")
    cell = cell[order]
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    top = np.maximum.reduceat(values[order], starts)
    r, c = np.divmod(cell[starts], shape[1])
    return sp.csr_matrix((top, (r, c)), shape=shape)


def row_keys(matrix: sp.csr_matrix) -> npt.NDArray[np.int64]:
    """``row * n_cols + col`` of every stored entry, in storage order (sorted for canonical CSR).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> row_keys(sp.csr_matrix(np.array([[0, 1], [1, 0]]))).tolist()
    [1, 2]
    """
    row_of = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys: npt.NDArray[np.int64] = row_of * matrix.shape[1] + matrix.indices
    return keys
