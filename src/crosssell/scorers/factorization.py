"""Matrix factorisation scorers on implicit: ALS and BPR.

Both learn a factor vector per client and per product; a client's score for a product is the
dot product. Scoring a chunk is one matrix product, ``U[chunk] @ Vᵀ``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._codec import StateArray, StateScalar, StateSpec, register
from crosssell._params import Interval, Options, check_params
from crosssell.exceptions import InvalidParameterError
from crosssell.scorers import _implicit
from crosssell.scorers._common import RANDOM_STATE
from crosssell.scorers.base import (
    ExplainKind,
    FloatArray,
    IntArray,
    RandomStateLike,
    Scorer,
    check_random_state,
)

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = ["ALS", "BPR", "auto_regularization"]

#: Bounds of the automatic ALS regularisation.
AUTO_REGULARIZATION_RANGE = (1.0, 100.0)


def auto_regularization(nnz: int, n_products: int) -> float:
    """Return the ALS regularisation that ``regularization="auto"`` picks for a matrix.

    The square root of the average number of holders per product, ``sqrt(nnz / n_products)``,
    clipped into ``[1, 100]``. implicit's own default (0.01) lets 64 factors fit noise on small
    dense catalogues and rank below popularity; too strong a penalty shrinks the factors to the
    popularity direction and ties it. On synthetic latent-factor books (30 to 1,000 products,
    2 to 30 % dense) the best fixed value grew like the square root of the holders per product
    (about 5 at 32 holders per product, 20 at 430, 60 at 4,000), which this rule follows.

    Parameters
    ----------
    nnz : int
        Stored holdings in the matrix.
    n_products : int
        Products (columns).

    Returns
    -------
    float

    Examples
    --------
    >>> auto_regularization(nnz=40_000, n_products=100)
    20.0
    >>> auto_regularization(nnz=10, n_products=100)
    1.0
    """
    low, high = AUTO_REGULARIZATION_RANGE
    raw = float(np.sqrt(nnz / max(n_products, 1)))
    return float(np.clip(raw, low, high))


# Up to this many products, factor evidence reads a (products x products) table (32 MiB at
# 2,048 products) instead of computing a dot product per (offer, held product).
_DENSE_PAIRS = 2048


class FactorScorer(Scorer):
    """Shared scoring, fold-in and evidence of factor models."""

    explain_kind: ClassVar[ExplainKind] = "factors"
    scores_by_row: ClassVar[bool] = True
    _state_schema: ClassVar[dict[str, StateSpec]] = {
        "client_factors_": StateArray(dtype="float32", shape=("n_clients", "n_factors")),
        "product_factors_": StateArray(dtype="float32", shape=("n_products", "n_factors")),
        "gram_": StateArray(dtype="float64", shape=("n_basis", "n_basis")),
        "explain_basis_": StateArray(dtype="float32", shape=("n_products", "n_basis")),
    }

    client_factors_: FloatArray
    product_factors_: FloatArray
    gram_: npt.NDArray[np.float64]
    explain_basis_: FloatArray
    # derived from explain_basis_ on first use; private, so never saved
    _pair_table: npt.NDArray[np.float64] | None = None

    def _confidence_scale(self) -> float:
        return 1.0

    def _fold_in_part(self) -> tuple[FloatArray, FloatArray]:
        """Product factors used by the fold-in, and a per-product offset (BPR's bias)."""
        return self.product_factors_, np.zeros(self.n_products_, dtype=np.float32)

    def _set_gram(self, ridge: float) -> None:
        self._pair_table = None
        v, _ = self._fold_in_part()
        v64 = v.astype(np.float64)
        self.gram_ = v64.T @ v64 + ridge * np.eye(v.shape[1])
        # products mapped through the inverse Gram matrix: contribution of held h to offer j
        # is c_h * basis[j] . v[h]
        self.explain_basis_ = np.linalg.solve(self.gram_, v64.T).T.astype(np.float32)

    def _score_rows(self, rows: IntArray) -> FloatArray:
        return np.asarray(self.client_factors_[rows] @ self.product_factors_.T, dtype=np.float32)

    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        v, offset = self._fold_in_part()
        conf = self._confidence_scale() * weights
        vh = v[held].astype(np.float64)
        a = self.gram_ + vh.T @ ((conf - 1.0)[:, None] * vh)
        b = vh.T @ conf
        factor = np.linalg.solve(a, b)
        return (v @ factor.astype(np.float32) + offset).astype(np.float32)

    def _dense_pair_weights(self) -> tuple[npt.NDArray[np.float64], float] | None:
        if self.n_products_ > _DENSE_PAIRS:
            return None
        # Every (offer, held) weight is an entry of basis · Vᵀ: for catalogues of a few
        # thousand products that table is small, and a gather replaces a dot product of
        # `factors` numbers per entry (about ten times faster for a batch).
        table = self._pair_table
        if table is None or table.shape[0] != self.n_products_:
            v, _ = self._fold_in_part()
            table = self.explain_basis_.astype(np.float64) @ v.T.astype(np.float64)
            self._pair_table = table
        return table, self._confidence_scale()

    def _pair_weight(self) -> Callable[[IntArray, IntArray], npt.NDArray[np.float64]]:
        dense = self._dense_pair_weights()
        if dense is not None:
            table, scale = dense

            def lookup(held: IntArray, target: IntArray) -> npt.NDArray[np.float64]:
                return scale * table[target, held]

            return lookup
        v, _ = self._fold_in_part()
        basis = self.explain_basis_
        scale = self._confidence_scale()

        def weight(held: IntArray, target: IntArray) -> npt.NDArray[np.float64]:
            dots: npt.NDArray[np.float64] = np.einsum(
                "ef,ef->e", basis[target], v[held], dtype=np.float64
            )
            return scale * dots

        return weight


@register("scorer")
class ALS(FactorScorer):
    """Implicit-feedback alternating least squares (implicit's ``AlternatingLeastSquares``).

    Parameters
    ----------
    factors : int, default 64
        Latent factors.
    regularization : float or "auto", default "auto"
        L2 penalty. ``"auto"`` scales it with the data, see :func:`auto_regularization`, so the
        default does not overfit small dense B2B catalogues.
    iterations : int, default 15
        ALS sweeps.
    alpha : float, default 1.0
        Confidence per unit of weight: a holding of weight ``x`` has confidence ``alpha * x``.
    random_state : int, numpy.random.Generator or None, default None
        Seeds the initial factors; with an int, fitting on the CPU is deterministic.
    use_gpu : bool, default False
        Fit with CUDA (needs implicit built with CUDA).
    num_threads : int, default 0
        Threads for fitting (0: all cores). Results do not depend on it.

    Attributes
    ----------
    client_factors_ : ndarray of float32, shape (n_clients_, factors)
    product_factors_ : ndarray of float32, shape (n_products_, factors)
    regularization_ : float
        The regularisation used (resolved from ``"auto"``).
    gram_ : ndarray of float64, shape (factors, factors)
        ``VᵀV + regularization_ I``, precomputed for one-client fold-in.
    explain_basis_ : ndarray of float32, shape (n_products_, factors)
        ``V gram_⁻¹``, for evidence.

    Notes
    -----
    :meth:`evidence` splits a score into held-product contributions with the paper's formula
    ``c_h · v_jᵀ W v_h``, but with ``W = (VᵀV + λI)⁻¹`` shared by all clients instead of each
    client's own ``(Vᵀ C_u V + λI)⁻¹``: exact for the client's least-squares factors when every
    confidence is 1 (binary holdings, ``alpha=1``), an approximation otherwise, and always
    approximate for factors that implicit's conjugate-gradient fit left unconverged.
    :meth:`exact_explain` asks implicit for one offer.

    Examples
    --------
    >>> import numpy as np, pandas as pd, scipy.sparse as sp
    >>> from crosssell import ClientProductMatrix, IdMap
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
    ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
    ...     weighting="binary")
    >>> als = ALS(factors=2, random_state=0).fit(m)
    >>> als.score([0]).shape, round(als.regularization_, 2)
    ((1, 3), 1.41)
    """

    _state_schema: ClassVar[dict[str, StateSpec]] = {"regularization_": StateScalar(type="float")}

    regularization_: float

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float | Literal["auto"] = "auto",
        iterations: int = 15,
        alpha: float = 1.0,
        random_state: RandomStateLike = None,
        use_gpu: bool = False,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.random_state = random_state
        self.use_gpu = use_gpu
        self.num_threads = num_threads

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "factors": [Interval(numbers.Integral, 1, None, closed="left")],
        "regularization": [Options({"auto"}), Interval(numbers.Real, 0, None, closed="left")],
        "iterations": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": RANDOM_STATE,
        "use_gpu": ["boolean"],
        "num_threads": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def _validate_params(self) -> None:
        check_params(self)
        if self.use_gpu and not _implicit.has_cuda():
            raise InvalidParameterError(
                "The 'use_gpu' parameter of ALS must be False when implicit was built without "
                "CUDA or sees no GPU. Got True instead.",
                owner="ALS",
                parameter="use_gpu",
            )

    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        if self.regularization == "auto":
            reg = auto_regularization(int(x.nnz), int(x.shape[1]))
        else:
            reg = float(self.regularization)
        rng = check_random_state(self.random_state, owner="ALS")
        rows, cols = _id_order(matrix, x)
        iterations, init = int(self.iterations), None
        warm: WarmStart | None = self.__dict__.pop("_warm_start", None)
        if warm is not None:
            # a warm start (see WarmStart): a few iterations from an earlier fit's factors
            iterations = warm.iterations
            init = (_in_order(warm.client_factors, rows), _in_order(warm.product_factors, cols))
        u, v = _implicit.fit_als(
            _reorder(x, rows, cols),
            factors=int(self.factors),
            regularization=reg,
            alpha=float(self.alpha),
            iterations=iterations,
            random_state=rng,
            num_threads=int(self.num_threads),
            use_gpu=bool(self.use_gpu),
            init=init,
        )
        self.client_factors_ = _undo(u, rows)
        self.product_factors_ = _undo(v, cols)
        self.regularization_ = reg
        self.n_products_ = int(x.shape[1])
        self._set_gram(reg)

    def _confidence_scale(self) -> float:
        return float(self.alpha)

    def exact_explain(
        self, client_row: int, product: int, n: int = 3
    ) -> tuple[IntArray, FloatArray]:
        """Explain one offer exactly with implicit's ``explain`` (one client, one product).

        Parameters
        ----------
        client_row : int
            Row index of the client.
        product : int
            Product index of the offer.
        n : int, default 3
            Contributions kept.

        Returns
        -------
        ev_products : ndarray of int64, shape (n,)
            Held products with a positive contribution, strongest first, padded with -1.
        ev_weights : ndarray of float32, shape (n,)
            Their contributions, padded with 0.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
        ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
        ...     weighting="binary")
        >>> p, w = ALS(factors=2, random_state=0).fit(m).exact_explain(0, 2, n=2)
        >>> p.shape, w.dtype
        ((2,), dtype('float32'))
        """
        self._check_fitted()
        out_p = np.full(n, -1, dtype=np.int64)
        out_w = np.zeros(n, dtype=np.float32)
        if self.cold(np.array([client_row]))[0]:
            return out_p, out_w
        row = self.client_product_[int(client_row)]
        _, top = _implicit.als_explain(
            row,
            self.product_factors_,
            int(product),
            regularization=self.regularization_,
            alpha=float(self.alpha),
            n=n,
        )
        kept = [(p, s) for p, s in top if s > 0 and p != product][:n]
        for i, (p, s) in enumerate(kept):
            out_p[i] = p
            out_w[i] = s
        return out_p, out_w


@register("scorer")
class BPR(FactorScorer):
    """Bayesian personalised ranking (implicit's ``BayesianPersonalizedRanking``, CPU).

    Parameters
    ----------
    factors : int, default 64
        Latent factors (implicit adds one product-bias factor).
    learning_rate : float, default 0.01
        SGD step.
    regularization : float, default 0.01
        L2 penalty per update.
    iterations : int, default 100
        Epochs.
    random_state : int, numpy.random.Generator or None, default None
        Seeds the initial factors and the sampling.
    num_threads : int, default 0
        Threads for fitting (0: all cores). The SGD updates race across threads, so only
        ``num_threads=1`` gives the same factors for the same ``random_state``.

    Attributes
    ----------
    client_factors_ : ndarray of float32, shape (n_clients_, factors + 1)
        The last column is 1 (it multiplies the product bias).
    product_factors_ : ndarray of float32, shape (n_products_, factors + 1)
        The last column is the product bias.
    gram_ : ndarray of float64, shape (factors, factors)
        Ridge Gram matrix of the product factors, for one-client fold-in.
    explain_basis_ : ndarray of float32, shape (n_products_, factors)
        For evidence.

    Notes
    -----
    BPR has no closed-form way to place a new client, so :meth:`fit_client` uses the ALS
    fold-in on BPR's product factors (held products as targets 1, others 0, ridge penalty of a
    tenth of the mean diagonal of ``VᵀV``) and adds the product bias; it ranks like the fitted
    factors but is not identical to them. :meth:`evidence` splits that fold-in score into
    held-product contributions, as for :class:`ALS`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, scipy.sparse as sp
    >>> from crosssell import ClientProductMatrix, IdMap
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
    ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
    ...     weighting="binary")
    >>> BPR(factors=2, iterations=5, random_state=0, num_threads=1).fit(m).score([0]).shape
    (1, 3)
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: RandomStateLike = None,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "factors": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "regularization": [Interval(numbers.Real, 0, None, closed="left")],
        "iterations": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": RANDOM_STATE,
        "num_threads": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        rng = check_random_state(self.random_state, owner="BPR")
        rows, cols = _id_order(matrix, x)
        u, v = _implicit.fit_bpr(
            _reorder(x, rows, cols),
            factors=int(self.factors),
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            iterations=int(self.iterations),
            random_state=rng,
            num_threads=int(self.num_threads),
        )
        u, v = _undo(u, rows), _undo(v, cols)
        self.client_factors_ = u
        self.product_factors_ = v
        self.n_products_ = int(x.shape[1])
        vf = v[:, :-1].astype(np.float64)
        ridge = 0.1 * float((vf * vf).sum()) / max(vf.shape[1], 1)
        self._set_gram(max(ridge, 1e-6))

    def _fold_in_part(self) -> tuple[FloatArray, FloatArray]:
        v = self.product_factors_
        return np.ascontiguousarray(v[:, :-1]), np.ascontiguousarray(v[:, -1])


@dataclass(frozen=True, slots=True)
class WarmStart:
    """Factors an :class:`ALS` fit starts from, and how many iterations it then runs.

    Set as ``als._warm_start`` right before ``fit`` (which consumes it) by code that fits the
    same book at successive dates, such as the Ranker's training windows: the factors come
    from a fit at an earlier date, so no fit ever reads data after its own date. The factors
    are in the book's order of clients and products.
    """

    client_factors: FloatArray
    product_factors: FloatArray
    iterations: int


def _id_order(matrix: ClientProductMatrix, x: sp.csr_matrix) -> tuple[IntArray, IntArray]:
    """Return the rows and columns of ``x`` in the order of their external ids.

    Factors are seeded row by row, so a model fitted on the ids' order of appearance would
    change with the order of the input tables' rows; sorted ids make the same data with the
    same seed give the same factors. Ids that cannot be sorted (mixed types) keep their order.
    """

    def order(ids: pd.Index, n: int) -> IntArray:
        if len(ids) != n:
            return np.arange(n, dtype=np.int64)
        try:
            return np.asarray(ids.argsort(kind="stable"), dtype=np.int64)
        except TypeError:
            return np.arange(n, dtype=np.int64)

    return (
        order(matrix.clients.external, x.shape[0]),
        order(matrix.products.external, x.shape[1]),
    )


def _is_identity(order: IntArray) -> bool:
    """Tell whether ``order`` is 0, 1, 2, ... (ids that appeared in sorted order)."""
    return order.size == 0 or (int(order[0]) == 0 and bool((np.diff(order) == 1).all()))


def _in_order(factors: FloatArray, order: IntArray) -> FloatArray:
    """Rows of ``factors`` in ``order`` (the array itself when the order is the identity)."""
    return factors if _is_identity(order) else factors[order]


def _reorder(x: sp.csr_matrix, rows: IntArray, cols: IntArray) -> sp.csr_matrix:
    if _is_identity(rows) and _is_identity(cols):
        # ids already sorted (the usual extract): no copy; implicit's door sorts the indices
        return x
    out = sp.csr_matrix(x[rows][:, cols])
    out.sort_indices()
    return out


def _undo(factors: FloatArray, order: IntArray) -> FloatArray:
    """Put factors computed in ``order`` back in the matrix's own order.

    When the ids were sorted already, the factors are returned as they are: a new array of
    200,000 x 64 costs some 60 ms of first-touch page faults, twice per fit.
    """
    if _is_identity(order):
        return factors
    out = np.empty_like(factors)
    out[order] = factors
    return out
