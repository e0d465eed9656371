"""Popularity: offer what many clients hold, globally or within a client group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._codec import StateArray, StateIndex, StateSpec, register
from crosssell.exceptions import SchemaError
from crosssell.scorers.base import ExplainKind, FloatArray, IntArray, Scorer

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = ["Popularity"]


@register("scorer")
class Popularity(Scorer):
    """Score each product by the share of clients holding it.

    The baseline every other scorer must beat, and the fallback for cold clients.

    Parameters
    ----------
    by : str or None, default None
        A column of the Book's clients table (e.g. ``Columns.segment``). When given, a client's
        scores are the shares within its group; clients whose group is unknown (missing value,
        or not in the Book) get the global shares. Needs ``fit(matrix, book)``.

    Attributes
    ----------
    fallback_ : ndarray of float32, shape (n_products_,)
        Global share of clients holding each product.
    group_shares_ : ndarray of float32, shape (n_groups_, n_products_)
        Share within each group (empty when ``by`` is None).
    client_group_ : ndarray of int64, shape (n_clients_,)
        Group of each matrix row, -1 when unknown.
    groups_ : pandas.Index
        The group values, in ``group_shares_`` order.

    Examples
    --------
    >>> import numpy as np, pandas as pd, scipy.sparse as sp
    >>> from crosssell import ClientProductMatrix, IdMap
    >>> x = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=np.float32))
    >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
    ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
    ...     weighting="binary")
    >>> Popularity().fit(m).score([0]).round(2).tolist()
    [[1.0, 0.67, 0.33]]
    """

    explain_kind: ClassVar[ExplainKind] = "popularity"
    scores_by_row: ClassVar[bool] = True
    _state_schema: ClassVar[dict[str, StateSpec]] = {
        "client_group_": StateArray(dtype="int64", shape=("n_clients",)),
        "group_shares_": StateArray(dtype="float32", shape=("n_groups", "n_products")),
        "groups_": StateIndex(),
    }

    group_shares_: FloatArray
    client_group_: IntArray
    groups_: pd.Index

    def __init__(self, *, by: str | None = None) -> None:
        self.by = by

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"by": [str, None]}

    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        n_clients, n_products = x.shape
        if self.by is None:
            self.client_group_ = np.full(n_clients, -1, dtype=np.int64)
            self.group_shares_ = np.zeros((0, n_products), dtype=np.float32)
            self.groups_ = pd.Index([])
            return
        if book is None:
            raise ValueError(
                f"Popularity(by={self.by!r}) reads the clients table: call fit(matrix, book)."
            )
        table = book.client_table
        if self.by not in table.columns:
            raise SchemaError(
                f"clients: column {self.by!r} is missing, so Popularity(by={self.by!r}) cannot "
                f"group clients (columns: {list(table.columns)[:10]}). Add the column to the "
                "clients table or choose another 'by'.",
                table="clients",
                column=self.by,
                rule="missing_column",
            )
        # matrix rows follow the Book's client map, but look positions up rather than assume it
        pos = book.client_ids.to_index(matrix.clients.external, missing="ignore")
        codes, groups = pd.factorize(table[self.by], use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        client_group = np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)
        n_groups = len(groups)
        known = client_group >= 0
        membership = sp.csr_matrix(
            (
                np.ones(int(known.sum()), dtype=np.float32),
                (client_group[known], np.flatnonzero(known)),
            ),
            shape=(n_groups, n_clients),
        )
        binary = x.copy()
        binary.data = np.ones_like(binary.data)
        holders = np.asarray((membership @ binary).todense(), dtype=np.float64)
        sizes = np.bincount(client_group[known], minlength=n_groups).astype(np.float64)
        self.client_group_ = client_group
        self.group_shares_ = shares_from_counts(holders, sizes)
        self.groups_ = pd.Index(groups)

    def score_groups(self, groups: npt.ArrayLike) -> FloatArray:
        """Score clients by their group value alone, e.g. clients the fitted matrix never saw.

        Parameters
        ----------
        groups : array-like
            One value of the ``by`` column per client. A value not among :attr:`groups_` (a
            new or missing group, or any value when ``by`` is None) gets the global shares.

        Returns
        -------
        ndarray of float32, shape (len(groups), n_products_)
            The shares of clients holding each product within each client's group.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import Book, ClientProductMatrix, IdMap
        >>> contracts = pd.DataFrame({"client_id": ["a", "b", "c"],
        ...     "product_id": ["P1", "P2", "P2"], "start_date": ["2024-01-01"] * 3})
        >>> clients = pd.DataFrame({"client_id": ["a", "b", "c"], "segment": ["x", "y", "y"]})
        >>> book = Book.from_frames(contracts=contracts, clients=clients)
        >>> pop = Popularity(by="segment").fit(book.matrix("2024-06-30"), book)
        >>> pop.score_groups(["y", "z"]).round(2).tolist()
        [[0.0, 1.0], [0.33, 0.67]]
        """
        self._check_fitted()
        values = np.asarray(groups, dtype=object).ravel()
        out = np.broadcast_to(self.fallback_, (values.shape[0], self.n_products_)).copy()
        if len(self.groups_):
            code = self.groups_.get_indexer(pd.Index(values))
            has = code >= 0
            out[has] = self.group_shares_[code[has]]
        return out

    def row_groups(self, rows: IntArray) -> IntArray:
        """Return the group of each row: rows of one group get the same scores.

        Lets a caller that selects per row (e.g. the Ranker's candidates) do it once per group.

        Parameters
        ----------
        rows : ndarray of int64
            Row indices of the fitted matrix; rows outside it get -1.

        Returns
        -------
        ndarray of int64
            Index into :attr:`groups_`, or -1 for the global shares (no group, or unknown row).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from crosssell import Book
        >>> contracts = pd.DataFrame({"client_id": ["a", "b", "c"],
        ...     "product_id": ["P1", "P2", "P2"], "start_date": ["2024-01-01"] * 3})
        >>> clients = pd.DataFrame({"client_id": ["a", "b", "c"], "segment": ["x", "y", "y"]})
        >>> book = Book.from_frames(contracts=contracts, clients=clients)
        >>> pop = Popularity(by="segment").fit(book.matrix("2024-06-30"), book)
        >>> pop.row_groups(np.array([0, 1, 2, 9])).tolist()
        [0, 1, 1, -1]
        """
        known = (rows >= 0) & (rows < self.n_clients_)
        group = np.full(rows.size, -1, dtype=np.int64)
        group[known] = self.client_group_[rows[known]]
        return group

    def _group_scores(self, rows: IntArray) -> FloatArray:
        group = self.row_groups(rows)
        out = np.empty((rows.size, self.n_products_), dtype=np.float32)
        has = group >= 0
        out[has] = self.group_shares_[group[has]]
        out[~has] = self.fallback_
        return out

    def _score_rows(self, rows: IntArray) -> FloatArray:
        return self._group_scores(rows)

    def _score_cold(self, rows: IntArray) -> FloatArray:
        # a known client without holdings still has a segment: its group's shares apply
        return self._group_scores(rows)

    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        return self.fallback_.copy()


def shares_from_counts(
    holders: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64]
) -> FloatArray:
    """Shares of each group's clients holding each product, as :class:`Popularity` fits them.

    Shared with the fit on Spark (:func:`crosssell.spark_fit.fit_statistics`), which counts there.

    Parameters
    ----------
    holders : ndarray of float64, shape (n_groups, n_products)
        Clients of each group holding each product.
    sizes : ndarray of float64, shape (n_groups,)
        Clients in each group (an empty group gets shares 0).

    Returns
    -------
    ndarray of float32, shape (n_groups, n_products)

    Examples
    --------
    >>> import numpy as np
    >>> shares_from_counts(np.array([[1.0, 2.0]]), np.array([4.0])).tolist()
    [[0.25, 0.5]]
    """
    shares = holders / np.maximum(sizes, 1.0)[:, None]
    return shares.astype(np.float32)
