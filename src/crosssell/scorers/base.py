"""The scorer contract: scikit-learn estimator manners over a client x product matrix.

A scorer learns from a :class:`~crosssell.matrix.ClientProductMatrix` (rows are clients, columns
are products) and then scores any chunk of clients against every product. Every scorer in
:mod:`crosssell.scorers` derives from :class:`Scorer` and passes one shared contract test suite.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._codec import StateArray, StateScalar, StateSparse, StateSpec
from crosssell._kernels import table_contributions_into, top_contributions_into
from crosssell._params import Estimator, check_fitted, validate_params
from crosssell._sparse import row_positions
from crosssell.scorers._common import RANDOM_STATE, as_rows, check_evidence_n

if TYPE_CHECKING:
    import pandas as pd

    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = [
    "ExplainKind",
    "FloatArray",
    "IntArray",
    "RandomStateLike",
    "Scorer",
    "check_random_state",
]

ExplainKind = Literal["neighbours", "rules", "factors", "popularity", "contributions"]
RandomStateLike = int | np.random.Generator | None
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def check_random_state(
    random_state: RandomStateLike, *, owner: str = "Scorer"
) -> np.random.Generator:
    """Turn a ``random_state`` parameter into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None
        An int seeds a fresh generator (so two fits with the same int agree); a generator is used
        as it is (and advanced); ``None`` draws fresh entropy.
    owner : str, default "Scorer"
        The estimator's class name, for the error message.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    InvalidParameterError
        If ``random_state`` is of another type or a negative int.

    Examples
    --------
    >>> a = check_random_state(7).integers(1000)
    >>> b = check_random_state(7).integers(1000)
    >>> bool(a == b)
    True
    """
    validate_params(owner, {"random_state": random_state}, {"random_state": RANDOM_STATE})
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    return np.random.default_rng(operator.index(random_state))


def gather_rows_dot(
    matrix: sp.csr_matrix, rows: IntArray, weights: npt.NDArray[np.floating[Any]], n_columns: int
) -> FloatArray:
    """Return ``weights @ matrix[rows]`` as a dense float32 vector, without scipy's row slicing.

    Slicing one row of a scipy CSR matrix costs tens of microseconds; gathering the rows'
    entries straight from ``indptr``/``indices``/``data`` keeps one-client scoring cheap.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The matrix whose rows are summed.
    rows : ndarray of int64
        Row indices (may repeat).
    weights : ndarray of float
        One weight per row index.
    n_columns : int
        Width of the result.

    Returns
    -------
    ndarray of float32, shape (n_columns,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))
    >>> gather_rows_dot(m, np.array([0, 1]), np.array([1.0, 3.0]), 2).tolist()
    [1.0, 6.0]
    """
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(n_columns, dtype=np.float32)
    # positions of every gathered entry: a run of consecutive offsets per row
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
    vals = matrix.data[offsets] * np.repeat(weights, lengths)
    out = np.bincount(matrix.indices[offsets], weights=vals, minlength=n_columns)
    return out.astype(np.float32)


def top_contributions(
    owner_rows: IntArray,
    held: IntArray,
    weights: npt.NDArray[np.floating[Any]],
    m: int,
    n: int,
) -> tuple[IntArray, FloatArray]:
    """Keep, for each of ``m`` offers, the ``n`` held products with the largest positive weight.

    Entries may come in any order; on equal weights the lower product index comes first.

    Parameters
    ----------
    owner_rows : ndarray of int64
        For every (offer, held product) entry, the offer's position ``0 .. m-1``.
    held : ndarray of int64
        The held product of each entry.
    weights : ndarray of float
        The contribution of each entry; entries with weight <= 0 (or NaN) are dropped.
    m : int
        Number of offers.
    n : int
        Number of contributions kept per offer.

    Returns
    -------
    products : ndarray of int64, shape (m, n)
        Held products, strongest first, padded with -1.
    weights : ndarray of float32, shape (m, n)
        Their contributions, padded with 0.

    Examples
    --------
    >>> import numpy as np
    >>> p, w = top_contributions(np.array([0, 0, 1]), np.array([4, 2, 7]),
    ...                          np.array([0.5, 0.9, 0.2]), 2, 2)
    >>> p.tolist(), w.round(2).tolist()
    ([[2, 4], [7, -1]], [[0.9, 0.5], [0.2, 0.0]])
    """
    out_p = np.full((m, n), -1, dtype=np.int64)
    out_w = np.zeros((m, n), dtype=np.float32)
    if owner_rows.size == 0:
        return out_p, out_w
    # one compiled pass keeps a short ranked list per offer: no sort of the entries
    top_contributions_into(
        np.ascontiguousarray(owner_rows, dtype=np.int64),
        np.ascontiguousarray(held, dtype=np.int64),
        np.ascontiguousarray(weights, dtype=np.float64),
        out_p,
        out_w,
    )
    return out_p, out_w


class Scorer(Estimator, ABC):
    """Base class of crosssell's scorers, with scikit-learn's estimator contract.

    ``__init__`` stores keyword parameters unchanged; :meth:`fit` validates them and learns
    attributes whose names end in ``_``. After fitting, :meth:`score` scores any chunk of clients
    (row indices of the fitted matrix) against every product.

    Cold clients (rows without holdings) and rows outside the fitted matrix (including the ``-1``
    that :meth:`crosssell.ids.IdMap.to_index` gives for unknown ids) never raise: they get the
    fallback scores, the share of clients holding each product (:attr:`fallback_`).

    Attributes
    ----------
    explain_kind : str
        How an offer from this scorer is explained: ``"neighbours"`` (held products similar to
        the offer), ``"rules"`` (clients who hold A also hold C), ``"factors"`` (held products
        close in factor space), ``"popularity"`` (what many clients hold) or
        ``"contributions"`` (the features that raised a learned probability, see
        :meth:`crosssell.scorers.Ranker.reasons`).
    outputs_probability : bool
        True when scores are already calibrated probabilities in [0, 1] (the
        :class:`~crosssell.scorers.Ranker`): a Recommender then uses them as propensities
        unscaled.
    scores_by_row : bool
        True when scoring a block of clients costs what scoring its rows apart costs (a matrix
        product, a sparse product, a lookup): a Recommender then scores a block in small pieces,
        each chosen from while its scores are still in the CPU cache.
    n_clients_ : int
        Rows of the fitted matrix.
    n_products_ : int
        Columns of the fitted matrix.
    client_product_ : scipy.sparse.csr_matrix of float32
        The fitted holdings (rows are clients, columns are products), read for evidence.
    fallback_ : ndarray of float32, shape (n_products_,)
        Share of clients holding each product: the score of cold and unknown clients.

    Examples
    --------
    >>> from crosssell.scorers import Popularity
    >>> Popularity()
    Popularity()
    >>> Popularity(by="segment").get_params()
    {'by': 'segment'}
    """

    explain_kind: ClassVar[ExplainKind]
    #: Fitted state every scorer saves; subclasses add theirs (merged along the MRO).
    _state_schema: ClassVar[dict[str, StateSpec]] = {
        "client_product_": StateSparse(dtype="float32", shape=("n_clients", "n_products")),
        "n_clients_": StateScalar(type="int", dim="n_clients"),
        "n_products_": StateScalar(type="int", dim="n_products"),
        "fallback_": StateArray(dtype="float32", shape=("n_products",)),
    }
    outputs_probability: ClassVar[bool] = False
    scores_by_row: ClassVar[bool] = False

    # fitted state, declared for type checkers; set by fit
    n_clients_: int
    n_products_: int
    client_product_: sp.csr_matrix
    fallback_: FloatArray

    # ----------------------------------------------------------------- estimator manners
    def _check_fitted(self) -> None:
        check_fitted(self, "n_products_")

    # ----------------------------------------------------------------------- fitting
    def fit(self, matrix: ClientProductMatrix, book: Book | None = None) -> Self:
        """Validate the parameters and learn from ``matrix``.

        Parameters
        ----------
        matrix : ClientProductMatrix
            Holdings at ``as_of``; rows are clients, columns are products.
        book : Book, optional
            The Book the matrix came from; only scorers that read client attributes need it.

        Returns
        -------
        Scorer
            ``self``, fitted.

        Raises
        ------
        ValueError
            If a parameter is invalid (scikit-learn's message).

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import Popularity
        >>> x = sp.csr_matrix(np.array([[1, 0], [1, 1]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b"], name="client"),
        ...     products=IdMap(["P1", "P2"], name="product"), as_of=pd.Timestamp("2024-06-30"),
        ...     weighting="binary")
        >>> Popularity().fit(m).n_products_
        2
        """
        self._validate_params()
        x = _as_float32_csr(matrix.client_product)
        n_clients, n_products = x.shape
        holders = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
        self._fit(x, matrix, book)
        self.client_product_ = x
        self.n_clients_ = int(n_clients)
        self.n_products_ = int(n_products)
        self.fallback_ = (holders / max(int(n_clients), 1)).astype(np.float32)
        return self

    @abstractmethod
    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        """Learn the fitted state from the float32 CSR holdings ``x``."""

    def _restore(self, book: Book, as_of: pd.Timestamp) -> None:
        """Rebuild, after a load, the state the schema marks ``StateRebuilt`` (none here)."""

    # ----------------------------------------------------------------------- scoring
    def cold(self, clients: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Tell which clients get the fallback scores (no holdings, or outside the fitted matrix).

        Parameters
        ----------
        clients : array-like of int
            Row indices of the fitted matrix; ``-1`` or indices past the end mean unknown.

        Returns
        -------
        ndarray of bool

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import CoOccurrence
        >>> x = sp.csr_matrix(np.array([[1, 0], [0, 0]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b"]),
        ...     products=IdMap(["P1", "P2"]), as_of=pd.Timestamp("2024-06-30"), weighting="binary")
        >>> CoOccurrence().fit(m).cold([0, 1, 5, -1]).tolist()
        [False, True, True, True]
        """
        self._check_fitted()
        rows = as_rows(clients, name="clients")
        known = (rows >= 0) & (rows < self.n_clients_)
        out = ~known
        indptr = self.client_product_.indptr
        safe = np.where(known, rows, 0)
        out |= indptr[safe + 1] == indptr[safe]
        return out

    def score(self, clients: npt.ArrayLike) -> FloatArray:
        """Score a chunk of clients against every product.

        Parameters
        ----------
        clients : array-like of int
            Row indices of the fitted matrix. Memory is O(len(clients) x n_products): the caller
            chunks large batches. Cold or unknown rows get :attr:`fallback_`.

        Returns
        -------
        ndarray of float32, shape (len(clients), n_products_)
            Raw scores: higher is better; comparable within a row, not across scorers.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import Popularity
        >>> x = sp.csr_matrix(np.array([[1, 0], [1, 1]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b"]),
        ...     products=IdMap(["P1", "P2"]), as_of=pd.Timestamp("2024-06-30"), weighting="binary")
        >>> Popularity().fit(m).score([0, 7]).tolist()
        [[1.0, 0.5], [1.0, 0.5]]
        """
        self._check_fitted()
        rows = as_rows(clients, name="clients")
        cold = self.cold(rows)
        if rows.size and not cold.any():
            # the common chunk: no copy of the scores through a mask
            return np.asarray(self._score_rows(rows), dtype=np.float32)
        out = np.empty((rows.size, self.n_products_), dtype=np.float32)
        warm = ~cold
        if warm.any():
            out[warm] = self._score_rows(rows[warm])
        if cold.any():
            out[cold] = self._score_cold(rows[cold])
        return out

    def score_rows(self, rows: npt.NDArray[np.int64]) -> FloatArray:
        """Score clients that are known to hold something, without the checks of :meth:`score`.

        For a caller that has already told warm clients from cold ones (see :meth:`cold`), as
        the recommender does for every block: the rows are trusted, not checked, and no cold
        client is looked for, which keeps one client's real-time scoring cheap.

        Parameters
        ----------
        rows : ndarray of int64
            Row indices of the fitted matrix, each of a client with at least one holding.

        Returns
        -------
        ndarray of float32, shape (len(rows), n_products_)
            The raw scores :meth:`score` gives for the same rows.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import CoOccurrence
        >>> x = sp.csr_matrix(np.array([[1, 0], [1, 1]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b"]),
        ...     products=IdMap(["P1", "P2"]), as_of=pd.Timestamp("2024-06-30"), weighting="binary")
        >>> scorer = CoOccurrence().fit(m)
        >>> rows = np.array([0, 1])
        >>> bool((scorer.score_rows(rows) == scorer.score(rows)).all())
        True
        """
        self._check_fitted()
        return np.asarray(self._score_rows(rows), dtype=np.float32)

    @abstractmethod
    def _score_rows(self, rows: IntArray) -> FloatArray:
        """Score known clients that hold something (the hook behind :meth:`score_rows`)."""

    def _score_cold(self, rows: IntArray) -> FloatArray:
        """Score cold or unknown clients: the share of clients holding each product."""
        return np.broadcast_to(self.fallback_, (rows.size, self.n_products_))

    def fit_client(
        self, held_products: npt.ArrayLike, weights: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Score one new or updated client from its holdings, without refitting.

        Parameters
        ----------
        held_products : array-like of int
            Product indices (columns of the fitted matrix) the client holds.
        weights : array-like of float, optional
            One weight per held product, as in the matrix (default 1.0 each).

        Returns
        -------
        ndarray of float32, shape (n_products_,)
            Raw scores; those of a cold client when it holds nothing.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.
        ValueError
            If a product index is outside the fitted matrix or the weights do not match.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import CoOccurrence
        >>> x = sp.csr_matrix(np.array([[1, 1], [1, 0]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b"]),
        ...     products=IdMap(["P1", "P2"]), as_of=pd.Timestamp("2024-06-30"), weighting="binary")
        >>> CoOccurrence().fit(m).fit_client([0]).tolist()
        [0.0, 0.5]
        """
        self._check_fitted()
        held = as_rows(held_products, name="held_products")
        if held.size and (held.min() < 0 or held.max() >= self.n_products_):
            bad = held[(held < 0) | (held >= self.n_products_)][:5].tolist()
            raise ValueError(
                f"'held_products' must be product indices in [0, {self.n_products_}); "
                f"got {bad}. Translate product ids with matrix.products.to_index first."
            )
        if weights is None:
            w = np.ones(held.size, dtype=np.float64)
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if w.size != held.size:
                raise ValueError(
                    f"'weights' must hold one weight per held product: got {w.size} weights "
                    f"for {held.size} products."
                )
        if held.size == 0:
            cold_row: FloatArray = self._score_cold(np.full(1, -1, dtype=np.int64))[0].copy()
            return cold_row
        return self._fit_client(held, w)

    @abstractmethod
    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        """Score one client from its (non-empty, validated) holdings."""

    # ----------------------------------------------------------------------- evidence
    def evidence(
        self,
        clients: npt.ArrayLike,
        products: npt.ArrayLike,
        n: int = 3,
        *,
        holdings: sp.csr_matrix | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Name the held products that contributed most to each offer.

        Parameters
        ----------
        clients : array-like of int
            Row index of the client of each offer.
        products : array-like of int
            Product index of each offer, aligned with ``clients``.
        n : int, default 3
            Contributions kept per offer.
        holdings : scipy.sparse.csr_matrix, optional
            Holdings to explain from instead of the fitted matrix (rows are ``clients``, columns
            the fitted products): fresh data of clients folded in with :meth:`fit_client`.

        Returns
        -------
        ev_products : ndarray of int64, shape (m, n)
            Held products, strongest first, padded with -1 (cold clients and the popularity
            scorer give only -1).
        ev_weights : ndarray of float32, shape (m, n)
            Their contributions to the score, padded with 0.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.
        ValueError
            If ``clients`` and ``products`` differ in length or ``n`` < 1.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import CoOccurrence
        >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
        ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
        ...     weighting="binary")
        >>> p, w = CoOccurrence().fit(m).evidence([0], [2], n=2)
        >>> p.tolist()
        [[0, -1]]
        """
        self._check_fitted()
        rows = as_rows(clients, name="clients")
        prods = as_rows(products, name="products")
        n = check_evidence_n(self, n)
        if rows.size != prods.size:
            raise ValueError(
                f"'clients' and 'products' must be aligned: got {rows.size} clients and "
                f"{prods.size} products."
            )
        m = rows.size
        # a dense table is read by the compiled pass below; the per-entry function otherwise
        dense = self._dense_pair_weights()
        pair_weight = self._pair_weight() if dense is None else None
        if (dense is None and pair_weight is None) or m == 0:
            return np.full((m, n), -1, dtype=np.int64), np.zeros((m, n), dtype=np.float32)
        if prods.size and (prods.min() < 0 or prods.max() >= self.n_products_):
            raise ValueError(f"'products' must be product indices in [0, {self.n_products_}).")
        if holdings is None:
            source: sp.csr_matrix = self.client_product_
            warm = np.flatnonzero(~self.cold(rows))
        else:
            source = holdings
            warm = np.flatnonzero(np.diff(holdings.indptr)[rows] > 0)
        if dense is not None:
            # the same weights and choice as below, read from the table in one compiled pass
            out_p = np.full((m, n), -1, dtype=np.int64)
            out_w = np.zeros((m, n), dtype=np.float32)
            table_contributions_into(
                warm.astype(np.int64),
                rows[warm].astype(np.int64),
                prods[warm].astype(np.int64),
                source.indptr,
                source.indices,
                source.data,
                dense[0],
                float(dense[1]),
                out_p,
                out_w,
            )
            return out_p, out_w
        # the stored entries of the warm rows, read in place (no CSR built: one client's offers
        # are explained in real time)
        assert pair_weight is not None
        pos, local = row_positions(source.indptr, rows[warm])
        owner = warm[local]
        held = source.indices[pos].astype(np.int64)
        target = prods[owner]
        w = source.data[pos].astype(np.float64) * pair_weight(held, target)
        w[held == target] = 0.0
        return top_contributions(owner, held, w, m, n)

    def _pair_weight(
        self,
    ) -> Callable[[IntArray, IntArray], npt.NDArray[np.float64]] | None:
        """Return ``f(held, target)``: contribution of holding ``held`` to ``target`` per unit."""
        return None

    def _dense_pair_weights(self) -> tuple[npt.NDArray[np.float64], float] | None:
        """Return ``(table, scale)`` when ``f(held, target)`` is ``scale * table[target, held]``.

        A scorer that keeps its pair weights as one dense table says so here, and
        :meth:`evidence` reads the table in a compiled pass instead of gathering every
        (offer, held product) entry first.
        """
        return None

    def exact_explain(
        self, client_row: int, product: int, n: int = 3
    ) -> tuple[IntArray, FloatArray]:
        """Explain one offer exactly: the held products that contributed most.

        For most scorers this is :meth:`evidence` for a single offer (already exact);
        :class:`~crosssell.scorers.ALS` asks implicit's own ``explain``.

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
            Held products, strongest first, padded with -1.
        ev_weights : ndarray of float32, shape (n,)
            Their contributions, padded with 0.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import CoOccurrence
        >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
        ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
        ...     weighting="binary")
        >>> CoOccurrence().fit(m).exact_explain(0, 2, n=1)[0].tolist()
        [0]
        """
        p, w = self.evidence(np.array([client_row]), np.array([product]), n=n)
        return p[0], w[0]


def _as_float32_csr(x: Any) -> sp.csr_matrix:
    """Canonical float32 CSR with sorted indices and no duplicates (a copy only when needed)."""
    out = x if isinstance(x, sp.csr_matrix) else sp.csr_matrix(x)
    if out.dtype != np.float32:
        out = out.astype(np.float32)
    if not out.has_canonical_format:
        out = out.copy()
        out.sum_duplicates()
    return out
