"""CoOccurrence: "clients who hold A also hold C", as sparse products of the holdings."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._codec import StateArray, StateSparse, StateSpec, register
from crosssell._params import Interval, Options
from crosssell._sparse import rows_times
from crosssell.scorers._common import cached_dense, cached_keys, lookup
from crosssell.scorers.base import (
    ExplainKind,
    FloatArray,
    IntArray,
    Scorer,
    gather_rows_dot,
)

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = ["CoOccurrence"]

Measure = Literal["confidence", "lift", "jaccard"]


@register("scorer")
class CoOccurrence(Scorer):
    """Association rules between pairs of products, summed over what a client holds.

    With ``B`` the binary holdings (rows are clients, columns are products), ``C = Bᵀ B`` counts
    the clients holding both ``a`` and ``c``. The rule ``a → c`` gets

    - ``"confidence"``: ``C[a, c] / C[a, a]``, the share of holders of ``a`` who also hold ``c``;
    - ``"lift"``: confidence divided by the share of all clients holding ``c``;
    - ``"jaccard"``: ``C[a, c] / (C[a, a] + C[c, c] - C[a, c])``.

    A client's score for ``c`` is ``Σ_a x[a] · rule[a, c]`` over its held products ``a``
    (``x`` its matrix weights), computed for a chunk as ``X_chunk @ rules_``.

    Parameters
    ----------
    measure : {"confidence", "lift", "jaccard"}, default "confidence"
        Strength of a rule.
    min_support : int, default 1
        Rules backed by fewer co-holding clients are dropped.

    Attributes
    ----------
    rules_ : scipy.sparse.csr_matrix of float32, shape (n_products_, n_products_)
        ``rules_[a, c]``: strength of ``a → c``; the diagonal is empty.
    support_ : ndarray of int64, shape (n_products_,)
        Holders of each product.

    Examples
    --------
    >>> import numpy as np, pandas as pd, scipy.sparse as sp
    >>> from crosssell import ClientProductMatrix, IdMap
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype=np.float32))
    >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
    ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
    ...     weighting="binary")
    >>> s = CoOccurrence().fit(m)
    >>> s.rules_.toarray().round(2).tolist()[0]
    [0.0, 0.67, 0.33]
    """

    explain_kind: ClassVar[ExplainKind] = "rules"
    scores_by_row: ClassVar[bool] = True
    _state_schema: ClassVar[dict[str, StateSpec]] = {
        "rules_": StateSparse(dtype="float32", shape=("n_products", "n_products")),
        "support_": StateArray(dtype="int64", shape=("n_products",)),
    }

    rules_: sp.csr_matrix
    support_: IntArray

    def __init__(self, *, measure: Measure = "confidence", min_support: int = 1) -> None:
        self.measure = measure
        self.min_support = min_support

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "measure": [Options({"confidence", "lift", "jaccard"})],
        "min_support": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        binary = x.copy()
        binary.data = np.ones_like(binary.data)
        counts = sp.csr_matrix(binary.T @ binary, dtype=np.float64).tocoo()
        support = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
        self.rules_, self.support_ = rules_from_counts(
            counts.row,
            counts.col,
            counts.data,
            support,
            n_clients=x.shape[0],
            n_products=x.shape[1],
            measure=self.measure,
            min_support=self.min_support,
        )

    def _score_rows(self, rows: IntArray) -> FloatArray:
        # the dense table serves blocks of clients; one client (real time) reads the sparse one
        dense = cached_dense(self, self.rules_) if rows.size > 1 else None
        scores: FloatArray = rows_times(self.client_product_, rows, self.rules_, dense)
        return scores

    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        return gather_rows_dot(self.rules_, held, weights, self.n_products_)

    def _pair_weight(self) -> Callable[[IntArray, IntArray], npt.NDArray[np.float64]]:
        rules = self.rules_
        keys = cached_keys(self, rules)

        def weight(held: IntArray, target: IntArray) -> npt.NDArray[np.float64]:
            return lookup(rules, held, target, keys)

        return weight


def rules_from_counts(
    a: npt.NDArray[np.integer[Any]],
    c: npt.NDArray[np.integer[Any]],
    both: npt.NDArray[np.float64],
    support: npt.NDArray[np.float64],
    *,
    n_clients: int,
    n_products: int,
    measure: Measure,
    min_support: int,
) -> tuple[sp.csr_matrix, IntArray]:
    """Turn co-holding counts into the rules of :class:`CoOccurrence`.

    The arithmetic of :meth:`CoOccurrence.fit`, shared with the fit on Spark
    (:func:`crosssell.spark_fit.fit_statistics`), which counts the pairs there.

    Parameters
    ----------
    a, c : ndarray of int
        Products of each counted pair (the diagonal may be among them: it is dropped).
    both : ndarray of float64
        Clients holding both.
    support : ndarray of float64, shape (n_products,)
        Clients holding each product.
    n_clients : int
        Clients of the matrix (for ``"lift"``).
    n_products : int
        Number of products.
    measure : {"confidence", "lift", "jaccard"}
        Strength of a rule.
    min_support : int
        Pairs held by fewer clients are dropped.

    Returns
    -------
    rules : scipy.sparse.csr_matrix of float32, shape (n_products, n_products)
    support : ndarray of int64, shape (n_products,)

    Examples
    --------
    >>> import numpy as np
    >>> rules, support = rules_from_counts(np.array([0, 1]), np.array([1, 0]),
    ...     np.array([2.0, 2.0]), np.array([4.0, 2.0]), n_clients=5, n_products=2,
    ...     measure="confidence", min_support=1)
    >>> rules.toarray().tolist(), support.tolist()
    ([[0.0, 0.5], [1.0, 0.0]], [4, 2])
    """
    keep = (a != c) & (both >= min_support)
    a, c, both = a[keep], c[keep], both[keep]
    if measure == "confidence":
        strength = both / support[a]
    elif measure == "lift":
        strength = both * n_clients / (support[a] * support[c])
    else:
        strength = both / (support[a] + support[c] - both)
    rules = sp.csr_matrix((strength.astype(np.float32), (a, c)), shape=(n_products, n_products))
    rules.sort_indices()
    return rules, support.astype(np.int64)
