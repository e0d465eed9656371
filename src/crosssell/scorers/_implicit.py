"""The one door to implicit: conversion, orientation, threads.

Every call into implicit goes through this module. It hands implicit float32 CSR matrices with
rows as clients (implicit 0.7 takes user x item), limits BLAS to one thread while implicit's own
OpenMP threads run (nested thread pools slow fitting down badly), and returns plain numpy arrays,
so the rest of crosssell never sees an implicit object.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from crosssell.exceptions import InvalidParameterError

# implicit imports tqdm.auto, which in Jupyter without ipywidgets warns "IProgress not found" the
# first time it is imported; crosssell never shows implicit's own bars, so import it quietly once
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="IProgress not found")
    import tqdm.auto  # noqa: F401

__all__ = [
    "als_explain",
    "fit_als",
    "fit_bpr",
    "has_cuda",
    "item_similarity",
    "keep_top_per_row",
    "one_blas_thread",
    "recalculate_user",
    "to_user_items",
]

Float32Array = npt.NDArray[np.float32]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (implicit parallelises with OpenMP itself).

    Examples
    --------
    >>> with one_blas_thread():
    ...     pass
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def has_cuda() -> bool:
    """Tell whether implicit was built with CUDA and sees a GPU.

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(has_cuda(), bool)
    True
    """
    import implicit.gpu

    return bool(implicit.gpu.HAS_CUDA)


def to_user_items(client_product: Any) -> sp.csr_matrix:
    """Return a float32 CSR matrix with sorted indices, rows as clients (implicit's users).

    Parameters
    ----------
    client_product : sparse matrix or array
        Rows are clients, columns are products.

    Returns
    -------
    scipy.sparse.csr_matrix of float32

    Examples
    --------
    >>> import numpy as np
    >>> to_user_items(np.eye(2)).dtype
    dtype('float32')
    """
    x = (
        client_product
        if isinstance(client_product, sp.csr_matrix)
        else sp.csr_matrix(client_product)
    )
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if not x.has_canonical_format:
        x = x.copy()
        x.sum_duplicates()
    return x


def _to_numpy(factors: Any) -> Float32Array:
    if hasattr(factors, "to_numpy"):
        factors = factors.to_numpy()
    return np.ascontiguousarray(factors, dtype=np.float32)


def fit_als(
    client_product: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    random_state: np.random.Generator,
    num_threads: int = 0,
    use_gpu: bool = False,
    init: tuple[Float32Array, Float32Array] | None = None,
) -> tuple[Float32Array, Float32Array]:
    """Fit implicit's ALS and return ``(client_factors, product_factors)`` as float32.

    Parameters
    ----------
    client_product : scipy.sparse.csr_matrix
        Confidences; rows are clients, columns are products.
    factors, regularization, alpha, iterations
        As in implicit's ``AlternatingLeastSquares``.
    random_state : numpy.random.Generator
        Seeds the initial factors; on the CPU the result is then deterministic whatever the
        number of threads (each ALS half-step solves every row independently).
    num_threads : int, default 0
        OpenMP threads (0: all cores).
    use_gpu : bool, default False
        Fit with CUDA (needs implicit built with CUDA).
    init : (ndarray, ndarray), optional
        Factors to start from instead of random ones (a warm start, on the CPU): client and
        product factors of the same shapes as the result, e.g. those of an earlier fit.

    Returns
    -------
    client_factors : ndarray of float32, shape (n_clients, factors)
    product_factors : ndarray of float32, shape (n_products, factors)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> u, v = fit_als(x, factors=2, regularization=0.1, alpha=1.0, iterations=2,
    ...                random_state=np.random.default_rng(0))
    >>> u.shape, v.shape
    ((2, 2), (3, 2))

    Started from those factors, two more iterations continue the same fit:

    >>> u2, v2 = fit_als(x, factors=2, regularization=0.1, alpha=1.0, iterations=2,
    ...                  random_state=np.random.default_rng(0), init=(u, v))
    >>> u2.shape
    (2, 2)
    """
    from implicit.als import AlternatingLeastSquares

    user_items = to_user_items(client_product)
    largest = float(np.abs(client_product.data).max()) if client_product.nnz else 0.0

    def failed(why: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"ALS could not fit: {why}. The confidences are alpha times the matrix's values: "
            f"alpha={alpha:g} and the largest value {largest:g} give {alpha * largest:g}, "
            "beyond what float32 factors hold. Lower 'alpha', or weigh the holdings on a "
            "smaller scale (e.g. weighting='log_value' instead of 'value').",
            owner="ALS",
            parameter="alpha",
        )

    if not alpha * largest <= _ALS_MAX_CONFIDENCE:  # also refuses inf and NaN
        raise failed("the confidences overflow")
    # implicit reports a numerical failure with its own exception and numpy warnings
    from implicit.recommender_base import ModelFitError

    with one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=random_state,
            num_threads=num_threads,
            use_gpu=use_gpu,
        )
        if init is not None and not use_gpu:
            client_init, product_init = init
            expected = (client_product.shape[0], factors), (client_product.shape[1], factors)
            if (client_init.shape, product_init.shape) != expected:
                raise ValueError(
                    f"ALS warm start: factors of shapes {client_init.shape} and "
                    f"{product_init.shape} cannot start a fit of shapes {expected}."
                )
            model.user_factors = np.array(client_init, dtype=np.float32, order="C")
            model.item_factors = np.array(product_init, dtype=np.float32, order="C")
        try:
            model.fit(user_items, show_progress=False)
        except (ModelFitError, RuntimeWarning, FloatingPointError) as exc:
            raise failed(str(exc)) from None
    user, item = _to_numpy(model.user_factors), _to_numpy(model.item_factors)
    if not (np.isfinite(user).all() and np.isfinite(item).all()):
        raise failed("the factors came out NaN or infinite")
    return user, item


#: Above this, alpha times a value leaves float32 too little room for the sums ALS forms.
_ALS_MAX_CONFIDENCE = 1e30


def fit_bpr(
    client_product: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    iterations: int,
    random_state: np.random.Generator,
    num_threads: int = 0,
) -> tuple[Float32Array, Float32Array]:
    """Fit implicit's BPR on the CPU; return ``(client_factors, product_factors)`` as float32.

    implicit appends a bias column: the last product factor is a product bias and the last
    client factor is 1. The stochastic updates run lock-free across threads, so only
    ``num_threads=1`` is reproducible from ``random_state``.

    Parameters
    ----------
    client_product : scipy.sparse.csr_matrix
        Holdings; rows are clients, columns are products (values are read as binary).
    factors, learning_rate, regularization, iterations
        As in implicit's ``BayesianPersonalizedRanking``.
    random_state : numpy.random.Generator
        Seeds the initial factors and the sampling.
    num_threads : int, default 0
        OpenMP threads (0: all cores).

    Returns
    -------
    client_factors : ndarray of float32, shape (n_clients, factors + 1)
    product_factors : ndarray of float32, shape (n_products, factors + 1)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> u, v = fit_bpr(x, factors=2, learning_rate=0.01, regularization=0.01, iterations=2,
    ...                random_state=np.random.default_rng(0), num_threads=1)
    >>> u.shape, v.shape
    ((2, 3), (3, 3))
    """
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    user_items = to_user_items(client_product)
    with one_blas_thread():
        model = BayesianPersonalizedRanking(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            random_state=random_state,
            num_threads=num_threads,
        )
        model.fit(user_items, show_progress=False)
    return _to_numpy(model.user_factors), _to_numpy(model.item_factors)


def item_similarity(
    client_product: sp.csr_matrix,
    *,
    metric: Literal["cosine", "bm25", "tfidf"],
    neighbours: int,
    num_threads: int = 0,
) -> sp.csr_matrix:
    """Product x product similarity from implicit's nearest-neighbour kernel.

    Each row keeps its ``neighbours`` most similar *other* products (the product itself is
    removed): row ``i`` says how much holding ``i`` speaks for each column product.

    Parameters
    ----------
    client_product : scipy.sparse.csr_matrix
        Holdings; rows are clients, columns are products.
    metric : {"cosine", "bm25", "tfidf"}
        How holdings are weighted before the dot products.
    neighbours : int
        Neighbours kept per product.
    num_threads : int, default 0
        OpenMP threads (0: all cores).

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_products, n_products)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> s = item_similarity(x, metric="cosine", neighbours=1)
    >>> s.toarray().argmax(axis=1).tolist()
    [1, 0, 1]
    """
    from implicit._nearest_neighbours import all_pairs_knn
    from implicit.nearest_neighbours import bm25_weight, normalize, tfidf_weight

    x = to_user_items(client_product)
    # implicit's weightings work on product x client rows; they return COO, turned back to CSR
    product_client = x.T
    if metric == "cosine":
        weighted = normalize(product_client)
    elif metric == "tfidf":
        weighted = normalize(tfidf_weight(product_client))
    else:
        weighted = bm25_weight(product_client, 1.2, 0.75)
    weighted = sp.csr_matrix(weighted.T)
    n_products = x.shape[1]
    # one extra neighbour because the product itself is usually among its own nearest
    k = min(neighbours + 1, max(n_products, 1))
    with one_blas_thread():
        sim = sp.csr_matrix(
            all_pairs_knn(weighted, k, show_progress=False, num_threads=num_threads)
        )
    sim.setdiag(0)
    sim.eliminate_zeros()
    sim = sim.astype(np.float32)
    return keep_top_per_row(sim, neighbours)


def keep_top_per_row(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties: lower column first).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[0.5, 0.2, 0.5], [0.1, 0.0, 0.3]], dtype=np.float32))
    >>> keep_top_per_row(m, 1).toarray().tolist()
    [[0.5, 0.0, 0.0], [0.0, 0.0, 0.30000001192092896]]
    """
    coo = matrix.tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]
    pos = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    keep = pos < n
    out = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=matrix.shape)
    out.sort_indices()
    return out


def _als_shell(product_factors: Float32Array, regularization: float, alpha: float) -> Any:
    """Wrap stored factors in an implicit ALS object (for its exact per-client routines)."""
    from implicit.cpu.als import AlternatingLeastSquares

    with one_blas_thread():
        model = AlternatingLeastSquares(
            factors=product_factors.shape[1],
            regularization=regularization,
            alpha=alpha,
            num_threads=1,
        )
    model.item_factors = product_factors
    return model


def recalculate_user(
    held_row: sp.csr_matrix, product_factors: Float32Array, *, regularization: float, alpha: float
) -> Float32Array:
    """Exact ALS fold-in of one client by implicit's ``recalculate_user`` (one thread).

    Parameters
    ----------
    held_row : scipy.sparse.csr_matrix, shape (1, n_products)
        The client's confidences.
    product_factors : ndarray of float32
        Fitted product factors.
    regularization, alpha : float
        As fitted.

    Returns
    -------
    ndarray of float32, shape (factors,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> v = np.eye(3, 2, dtype=np.float32)
    >>> recalculate_user(sp.csr_matrix(np.array([[1, 0, 0]], np.float32)), v,
    ...                  regularization=1.0, alpha=1.0).round(2).tolist()
    [0.5, 0.0]
    """
    model = _als_shell(product_factors, regularization, alpha)
    return _to_numpy(model.recalculate_user(0, to_user_items(held_row)))


def als_explain(
    held_row: sp.csr_matrix,
    product_factors: Float32Array,
    product: int,
    *,
    regularization: float,
    alpha: float,
    n: int,
) -> tuple[float, list[tuple[int, float]]]:
    """Exact ALS explanation of one offer by implicit's ``explain``.

    Parameters
    ----------
    held_row : scipy.sparse.csr_matrix, shape (1, n_products)
        The client's confidences.
    product_factors : ndarray of float32
        Fitted product factors.
    product : int
        The offered product.
    regularization, alpha : float
        As fitted.
    n : int
        Contributions returned.

    Returns
    -------
    total : float
        The score implied by the client's exact least-squares factors.
    contributions : list of (int, float)
        ``(held product, contribution)``, strongest first.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> v = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    >>> total, top = als_explain(sp.csr_matrix(np.array([[1, 0, 1]], np.float32)), v, 1,
    ...                          regularization=0.1, alpha=1.0, n=2)
    >>> [p for p, _ in top]
    [0, 2]
    """
    model = _als_shell(product_factors, regularization, alpha)
    total, top, _ = model.explain(0, to_user_items(held_row), int(product), N=n)
    return float(total), [(int(p), float(s)) for p, s in top]
