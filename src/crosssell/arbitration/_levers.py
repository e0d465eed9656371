"""Priority parts that are not learned: the uncalibrated propensity, levers, diversity.

``priority = propensity x value x lever``. Until a calibrator is given, the propensity is the
scorer's score divided by a scale fitted on the training clients and clipped into ``[0, 1]``
(:class:`ScoreScale`); the priority takes it before the clip at 1, which is for display only.
Levers are per-product business weights; :func:`diverse_top_k` picks the best offers of each
client under a cap per product family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._topk import ordered_top_k
from crosssell.book import Book
from crosssell.columns import Columns

__all__ = [
    "ScoreScale",
    "diverse_top_k",
    "lever_weights",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreScale:
    """The uncalibrated propensity: ``clip(score / scale, 0, 1)``.

    Parameters
    ----------
    scale : float
        A high quantile of the scores of the training clients; scores above it count as certain.

    Examples
    --------
    >>> import numpy as np
    >>> ScoreScale(scale=4.0).predict(np.array([-1.0, 1.0, 8.0], np.float32)).tolist()
    [0.0, 0.25, 1.0]
    """

    scale: float

    @classmethod
    def fit(cls, scores: npt.NDArray[np.float32], *, quantile: float = 0.999) -> ScoreScale:
        """Fit the scale from a sample of scores (non-finite and non-positive ones ignored).

        Parameters
        ----------
        scores : ndarray
            Sample of raw scores.
        quantile : float, default 0.999
            Which quantile of the positive scores maps to propensity 1.

        Returns
        -------
        ScoreScale

        Examples
        --------
        >>> import numpy as np
        >>> ScoreScale.fit(np.array([0.0, 1.0, 2.0], np.float32), quantile=1.0).scale
        2.0
        """
        s = np.asarray(scores, dtype=np.float64).ravel()
        s = s[np.isfinite(s) & (s > 0)]
        scale = float(np.quantile(s, quantile)) if s.size else 1.0
        return cls(scale=scale if scale > 0 else 1.0)

    def unbounded(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return ``max(scores / scale, 0)`` as float32: the propensity before its bound at 1.

        What ranks offers: the bound is for display, and ranking by it would tie every score
        above the scale.

        Parameters
        ----------
        scores : ndarray
            Raw scores.

        Returns
        -------
        ndarray of float32

        Examples
        --------
        >>> import numpy as np
        >>> ScoreScale(scale=4.0).unbounded(np.array([-1.0, 1.0, 8.0], np.float32)).tolist()
        [0.0, 0.25, 2.0]
        """
        out = np.multiply(scores, np.float32(1.0 / self.scale), dtype=np.float32)
        # fmax maps NaN to 0 (clip would keep it)
        np.fmax(out, np.float32(0.0), out=out)
        return out

    def predict(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return ``clip(scores / scale, 0, 1)`` as float32.

        Parameters
        ----------
        scores : ndarray
            Raw scores.

        Returns
        -------
        ndarray of float32

        Examples
        --------
        >>> import numpy as np
        >>> ScoreScale(scale=1.0).predict(np.array([0.5], np.float32)).tolist()
        [0.5]
        """
        out = self.unbounded(scores)
        np.minimum(out, np.float32(1.0), out=out)
        return out


def lever_weights(levers: Mapping[object, float] | None, book: Book) -> npt.NDArray[np.float64]:
    """Per-product business weights from a mapping of product ids or family names.

    A product id key wins over its family's key; products named nowhere weigh 1.

    Parameters
    ----------
    levers : mapping or None
        ``{product_id or family: weight}``, weights >= 0 (a campaign, a margin).
    book : Book
        The book whose products are weighted.

    Returns
    -------
    ndarray of float64, shape (n_products,)

    Raises
    ------
    ValueError
        If a key is neither a product id nor a family, or a weight is negative or not finite.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> products = pd.DataFrame({"product_id": ["A1", "A2", "B1"], "family": ["A", "A", "B"]})
    >>> c = pd.DataFrame({"client_id": [1], "product_id": ["A1"], "start_date": ["2024-01-01"]})
    >>> book = Book.from_frames(contracts=c, products=products)
    >>> lever_weights({"A": 2.0, "A2": 3.0}, book).tolist()
    [2.0, 3.0, 1.0]
    """
    n = len(book.product_ids)
    weights = np.ones(n, dtype=np.float64)
    if not levers:
        return weights
    families = book.product_table[Columns.family].astype(str).to_numpy()
    by_product: dict[int, float] = {}
    unknown = []
    for key, w in levers.items():
        weight = float(w)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"lever {key!r} must be a finite weight >= 0. Got {w!r} instead.")
        fam_hits = np.flatnonzero(families == str(key))
        if fam_hits.size:
            weights[fam_hits] = weight
        pos = int(book.product_ids.to_index([key], missing="ignore")[0])
        if pos >= 0:
            by_product[pos] = weight
        elif not fam_hits.size:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f"levers: {len(unknown)} key(s) are neither a product id nor a family: "
            f"{', '.join(repr(u) for u in unknown[:5])}. Use ids from the products table or its "
            f"'{Columns.family}' column."
        )
    for pos, weight in by_product.items():
        weights[pos] = weight
    return weights


def diverse_top_k(
    priority: npt.NDArray[np.float32],
    k: int,
    *,
    family: npt.NDArray[np.int64] | None = None,
    max_per_family: int | None = None,
    propensity: npt.NDArray[np.float32] | None = None,
    score: npt.NDArray[np.float32] | None = None,
    tie_rank: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Top ``k`` columns of each row by priority, at most ``max_per_family`` per family.

    Entries equal to ``-inf`` are never chosen; rows with fewer candidates are padded with ``-1``.
    Equal priorities break by higher ``propensity``, then higher ``score``, then lower
    ``tie_rank`` (each when given; the last defaults to the column index), so results are
    deterministic. A :class:`~crosssell.Recommender` passes its propensities, raw scores and
    a tie rank of popularity at ``as_of`` then product id.

    Parameters
    ----------
    priority : ndarray of float32, shape (m, n_products)
        Priorities; ``-inf`` marks a blocked pair.
    k : int
        Offers per row.
    family : ndarray of int64, optional
        Family code of each column; required with ``max_per_family``.
    max_per_family : int, optional
        Diversity cap.
    propensity, score : ndarray of float32, shape (m, n_products), optional
        The second and third keys of the order, higher first.
    tie_rank : ndarray of int64, shape (n_products,), optional
        The last key, lower first; default the column index.

    Returns
    -------
    indices : ndarray of int64, shape (m, k)
    values : ndarray of float32, shape (m, k)

    Examples
    --------
    >>> import numpy as np
    >>> pr = np.array([[0.9, 0.8, 0.7, 0.1]], np.float32)
    >>> diverse_top_k(pr, 2, family=np.array([0, 0, 1, 1]), max_per_family=1)[0].tolist()
    [[0, 2]]
    """
    if max_per_family is None or family is None:
        return ordered_top_k(priority, k, propensity=propensity, score=score, tie_rank=tie_rank)
    n_products = priority.shape[1]
    fetch = min(n_products, k * 4)
    while True:
        idx, vals = ordered_top_k(
            priority, fetch, propensity=propensity, score=score, tie_rank=tie_rank
        )
        keep = _family_cap(idx, family, max_per_family)
        got = keep.sum(axis=1)
        # A row is settled when it has k offers, or when nothing more could be fetched for it.
        short = (got < k) & (idx[:, -1] >= 0)
        if fetch >= n_products or not short.any():
            break
        fetch = min(n_products, fetch * 4)
    return _compact(idx, vals, keep, k)


def _family_cap(
    idx: npt.NDArray[np.int64], family: npt.NDArray[np.int64], cap: int
) -> npt.NDArray[np.bool_]:
    """Mask of entries that stay within ``cap`` per family, walking each row in rank order."""
    m, width = idx.shape
    valid = idx >= 0
    fam = np.where(valid, family[np.where(valid, idx, 0)], -1)
    row = np.repeat(np.arange(m), width)
    seen = (
        pd.DataFrame({"row": row, "fam": fam.ravel()})
        .groupby(["row", "fam"], sort=False)
        .cumcount()
    )
    return valid & (seen.to_numpy().reshape(m, width) < cap)


def _compact(
    idx: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float32],
    keep: npt.NDArray[np.bool_],
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Move kept entries to the front of each row (order kept) and cut at ``k``."""
    order = np.argsort(~keep, axis=1, kind="stable")
    idx2 = np.take_along_axis(np.where(keep, idx, -1), order, axis=1)[:, :k]
    vals2 = np.take_along_axis(np.where(keep, vals, -np.inf), order, axis=1)[:, :k]
    if idx2.shape[1] < k:
        pad = k - idx2.shape[1]
        idx2 = np.pad(idx2, ((0, 0), (0, pad)), constant_values=-1)
        vals2 = np.pad(vals2, ((0, 0), (0, pad)), constant_values=-np.inf)
    return idx2.astype(np.int64), vals2.astype(np.float32)
