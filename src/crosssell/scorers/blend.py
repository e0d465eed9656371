"""Blend: a weighted mix of scorers, each normalised per client before mixing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._codec import StateArray, StateScorers, StateSpec, register
from crosssell._params import Options, Satisfies
from crosssell.scorers._common import as_rows, check_evidence_n
from crosssell.scorers.base import (
    ExplainKind,
    FloatArray,
    IntArray,
    Scorer,
    top_contributions,
)

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = ["Blend"]

Method = Literal["score", "rank"]


def _normalise(scores: FloatArray, method: Method) -> FloatArray:
    """Map each row into [0, 1]: min-max of the scores, or rank percentile."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf, posinf=np.inf)
    n_products = s.shape[1]
    if method == "rank":
        # percentile of each score in its row (0 = lowest, 1 = highest), equal scores share
        # the mean of their ranks so ties never favour one product
        order = np.argsort(s, axis=1, kind="stable")
        sorted_s = np.take_along_axis(s, order, axis=1)
        pos = np.broadcast_to(np.arange(n_products, dtype=np.float64), s.shape)
        run_start = np.ones(s.shape, dtype=bool)
        run_start[:, 1:] = sorted_s[:, 1:] != sorted_s[:, :-1]
        run_end = np.ones(s.shape, dtype=bool)
        run_end[:, :-1] = run_start[:, 1:]
        first = np.maximum.accumulate(np.where(run_start, pos, 0.0), axis=1)
        last = np.minimum.accumulate(np.where(run_end, pos, np.inf)[:, ::-1], axis=1)[:, ::-1]
        out = np.empty(s.shape, dtype=np.float64)
        np.put_along_axis(out, order, (first + last) / 2.0, axis=1)
        ranked: FloatArray = (out / max(n_products - 1, 1)).astype(np.float32)
        return ranked
    finite = np.isfinite(s)
    lo = np.where(finite, s, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, s, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    ok = np.isfinite(span) & (span > 0)
    safe_span = np.where(ok, span, 1.0)
    out = np.where(ok, (s - np.where(ok, lo, 0.0)) / safe_span, 0.0)
    out = np.where(finite, out, 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _are_members(scorers: object) -> bool:
    """Whether ``scorers`` is a non-empty sequence of (Scorer, weight >= 0) with a positive sum."""
    if not isinstance(scorers, Sequence) or isinstance(scorers, str) or len(scorers) == 0:
        return False
    for item in scorers:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            return False
        member, weight = item
        if not isinstance(member, Scorer) or isinstance(weight, bool | np.bool_):
            return False
        if not isinstance(weight, int | float | np.floating | np.integer):
            return False
        if not (np.isfinite(float(weight)) and float(weight) >= 0):
            return False
    return sum(float(item[1]) for item in scorers) > 0


@register("scorer")
class Blend(Scorer):
    """A weighted sum of scorers, each normalised per client (row) first.

    Parameters
    ----------
    scorers : sequence of (Scorer, float)
        Members and their weights (>= 0, not all 0). ``fit`` fits clones of the members, so the
        given instances stay unfitted.
    method : {"score", "rank"}, default "score"
        Per-client normalisation of each member's row before mixing: ``"score"`` min-max scales
        it into [0, 1] (a constant row becomes 0); ``"rank"`` replaces each score by its rank
        percentile in the row (0 lowest, 1 highest; equal scores share their mean rank).

    Attributes
    ----------
    scorers_ : list of Scorer
        The fitted members (clones).
    weights_ : ndarray of float64
        Member weights, divided by their sum.

    Notes
    -----
    :attr:`explain_kind` is ``"neighbours"``: the evidence of an offer is the held products
    named by the members, each member's contributions scaled to its strongest one, weighted by
    the member's weight, and summed per product.

    Examples
    --------
    >>> import numpy as np, pandas as pd, scipy.sparse as sp
    >>> from crosssell import ClientProductMatrix, IdMap
    >>> from crosssell.scorers import CoOccurrence, Popularity
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
    ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
    ...     weighting="binary")
    >>> b = Blend([(CoOccurrence(), 0.7), (Popularity(), 0.3)]).fit(m)
    >>> b.score([2]).round(2).tolist()
    [[0.5, 1.0, 0.0]]
    """

    explain_kind: ClassVar[ExplainKind] = "neighbours"
    _state_schema: ClassVar[dict[str, StateSpec]] = {
        "scorers_": StateScorers(),
        "weights_": StateArray(dtype="float64", shape=("n_scorers",)),
    }

    scorers_: list[Scorer]
    weights_: npt.NDArray[np.float64]

    def __init__(
        self, scorers: Sequence[tuple[Scorer, float]], *, method: Method = "score"
    ) -> None:
        self.scorers = scorers
        self.method = method

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "scorers": [
            Satisfies(
                _are_members,
                "a non-empty list of (scorer, weight) pairs with weights >= 0 and a positive sum",
                ([], [(None, 1.0)], 3),
            )
        ],
        "method": [Options({"score", "rank"})],
    }

    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        fitted = [scorer.clone().fit(matrix, book) for scorer, _ in self.scorers]
        weights = np.array([float(w) for _, w in self.scorers], dtype=np.float64)
        self.scorers_ = fitted
        self.weights_ = weights / weights.sum()

    def _mix(self, parts: list[FloatArray]) -> FloatArray:
        method: Method = self.method
        out = np.zeros(parts[0].shape, dtype=np.float32)
        for part, w in zip(parts, self.weights_, strict=True):
            out += np.float32(w) * _normalise(part, method)
        return out

    def _score_rows(self, rows: IntArray) -> FloatArray:
        return self._mix([s.score(rows) for s in self.scorers_])

    def _score_cold(self, rows: IntArray) -> FloatArray:
        return self._mix([s.score(rows) for s in self.scorers_])

    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        parts = [s.fit_client(held, weights)[None, :] for s in self.scorers_]
        mixed: FloatArray = self._mix(parts)[0]
        return mixed

    def evidence(
        self,
        clients: npt.ArrayLike,
        products: npt.ArrayLike,
        n: int = 3,
        *,
        holdings: sp.csr_matrix | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Name the held products that the members credit most for each offer.

        Parameters
        ----------
        clients : array-like of int
            Row index of the client of each offer.
        products : array-like of int
            Product index of each offer.
        n : int, default 3
            Contributions kept per offer.
        holdings : scipy.sparse.csr_matrix, optional
            Fresh holdings to explain from (see :meth:`Scorer.evidence`).

        Returns
        -------
        ev_products : ndarray of int64, shape (m, n)
            Held products, strongest first, padded with -1.
        ev_weights : ndarray of float32, shape (m, n)
            Summed, member-weighted relative contributions, padded with 0.

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import numpy as np, pandas as pd, scipy.sparse as sp
        >>> from crosssell import ClientProductMatrix, IdMap
        >>> from crosssell.scorers import CoOccurrence, Popularity
        >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=np.float32))
        >>> m = ClientProductMatrix(client_product=x, clients=IdMap(["a", "b", "c"]),
        ...     products=IdMap(["P1", "P2", "P3"]), as_of=pd.Timestamp("2024-06-30"),
        ...     weighting="binary")
        >>> b = Blend([(CoOccurrence(), 1.0), (Popularity(), 1.0)]).fit(m)
        >>> b.evidence([0], [2])[0].tolist()
        [[0, -1, -1]]
        """
        self._check_fitted()
        rows = as_rows(clients, name="clients")
        n = check_evidence_n(self, n)
        owners: list[IntArray] = []
        helds: list[IntArray] = []
        ws: list[npt.NDArray[np.float64]] = []
        for scorer, weight in zip(self.scorers_, self.weights_, strict=True):
            p, w = scorer.evidence(rows, products, n=n, holdings=holdings)
            w64 = w.astype(np.float64)
            top = w64.max(axis=1, keepdims=True) if w64.size else w64
            rel = np.where(top > 0, w64 / np.where(top > 0, top, 1.0), 0.0) * weight
            owner = np.repeat(np.arange(rows.size, dtype=np.int64), n)
            keep = p.ravel() >= 0
            owners.append(owner[keep])
            helds.append(p.ravel()[keep])
            ws.append(rel.ravel()[keep])
        owner_all = np.concatenate(owners)
        held_all = np.concatenate(helds)
        w_all = np.concatenate(ws)
        if owner_all.size == 0:
            return top_contributions(owner_all, held_all, w_all, rows.size, n)
        # sum the credit each held product gets from the members
        order = np.lexsort((held_all, owner_all))
        owner_all, held_all, w_all = owner_all[order], held_all[order], w_all[order]
        new = np.ones(owner_all.size, dtype=bool)
        new[1:] = (owner_all[1:] != owner_all[:-1]) | (held_all[1:] != held_all[:-1])
        starts = np.flatnonzero(new)
        summed = np.add.reduceat(w_all, starts)
        return top_contributions(owner_all[starts], held_all[starts], summed, rows.size, n)
