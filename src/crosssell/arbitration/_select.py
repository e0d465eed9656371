"""Choose the offers of a block of clients: the compiled pass when it applies, numpy otherwise.

Both paths give the same offers, priorities and order (``tests/arbitration/test_priority.py``
checks it).
The compiled one (:func:`~crosssell.arbitration._priority.select_block`) never builds the dense
priority array, but it knows neither family caps nor more than ``MAX_K`` offers per client; the
numpy one (:func:`~crosssell.arbitration._priority.score_block` then :func:`diverse_top_k`)
handles everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crosssell._calibrators import Calibrator
from crosssell._kernels import MAX_K
from crosssell.arbitration._levers import ScoreScale, diverse_top_k
from crosssell.arbitration._priority import (
    BlockSelector,
    OfferMap,
    Pricing,
    Scored,
    score_block,
)

__all__ = ["Choice", "priorities", "select_offers"]


@dataclass(frozen=True, slots=True, eq=False)
class Choice:
    """The offers chosen for a block of clients: one entry per offer, by client then rank.

    Attributes
    ----------
    row : ndarray of int64
        Position of the offer's client in the block.
    rank : ndarray of int64
        Rank of the offer within its client's list, from 1.
    product : ndarray of int64
        Product index.
    score, propensity, value, priority : ndarray of float64
        The raw score, the propensity, the value (cross-sell or upsell) and the priority.
    upsell : ndarray of bool
        Whether the offer is an upsell.
    """

    row: npt.NDArray[np.int64]
    rank: npt.NDArray[np.int64]
    product: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]
    propensity: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    priority: npt.NDArray[np.float64]
    upsell: npt.NDArray[np.bool_]

    @classmethod
    def concat(cls, parts: list[Choice], sizes: list[int]) -> Choice:
        """Return the choices of consecutive pieces of a block as one, ``sizes`` rows each."""
        if len(parts) == 1:
            return parts[0]
        starts = np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)])
        return cls(
            row=np.concatenate([c.row + s for c, s in zip(parts, starts, strict=True)]),
            rank=np.concatenate([c.rank for c in parts]),
            product=np.concatenate([c.product for c in parts]),
            score=np.concatenate([c.score for c in parts]),
            propensity=np.concatenate([c.propensity for c in parts]),
            value=np.concatenate([c.value for c in parts]),
            priority=np.concatenate([c.priority for c in parts]),
            upsell=np.concatenate([c.upsell for c in parts]),
        )


def priorities(
    *,
    rows: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float32],
    offers: OfferMap,
    pricing: Pricing,
    propensity: Calibrator | ScoreScale,
    not_worth: bool = True,
) -> Scored:
    """Propensities and priorities (``-inf``: not offerable) of a block of clients, in numpy.

    A :class:`ScoreScale`'s propensity enters the priority before its display bound at 1, so
    that scores above the scale still rank.

    Parameters
    ----------
    rows : ndarray of int64
        Rows of the book (or of a fresh view) in the block.
    scores : ndarray of float32, shape (len(rows), n_products)
        Their raw scores.
    offers : OfferMap
        Upsells and blocked pairs of every client.
    pricing : Pricing
        Values, levers and the not-worth floor.
    propensity : Calibrator or ScoreScale
        What maps scores to propensities.
    not_worth : bool, default True
        Apply the pricing's not-worth floor.

    Returns
    -------
    Scored
    """
    scaled = isinstance(propensity, ScoreScale)
    return score_block(
        rows=rows,
        scores=scores,
        # float32, the working precision of scores, whatever a calibrator returns: the
        # compiled selection (select_block) compares in float32 too
        propensity=np.asarray(
            propensity.unbounded(scores)
            if isinstance(propensity, ScoreScale)
            else propensity.predict(scores),
            dtype=np.float32,
        ),
        offers=offers,
        pricing=pricing,
        predict=propensity.predict,
        finite=scaled,
        not_worth=not_worth,
        unbounded=scaled,
    )


def select_offers(
    *,
    rows: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float32] | Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]],
    k: int,
    offers: OfferMap,
    pricing: Pricing,
    propensity: Calibrator | ScoreScale,
    family: npt.NDArray[np.int64],
    tie_rank: npt.NDArray[np.int64],
    max_per_family: int | None = None,
    step: int | None = None,
) -> Choice:
    """Choose the best ``k`` offers of each client of a block, best first.

    Best first in one total order: higher priority, then higher propensity, then higher raw
    score, then lower ``tie_rank`` (popularity at ``as_of``, then product id; see
    :mod:`crosssell.arbitration._order`).

    Parameters
    ----------
    rows : ndarray of int64
        Rows of the book (or of a fresh view) in the block.
    scores : ndarray of float32, shape (len(rows), n_products), or callable
        Their raw scores; or a function giving the scores of some of ``rows`` (any
        consecutive ``step`` of them), called piece after piece.
    k : int
        Offers per client at most.
    offers : OfferMap
        Upsells and blocked pairs of every client.
    pricing : Pricing
        Values, levers and the not-worth floor.
    propensity : Calibrator or ScoreScale
        What maps scores to propensities.
    family : ndarray of int64, shape (n_products,)
        Family code of each product, read only with ``max_per_family``.
    tie_rank : ndarray of int64, shape (n_products,)
        Last key of the order, lower first.
    max_per_family : int, optional
        At most this many offers per family per client.
    step : int, optional
        Rows per piece when ``scores`` is a function (default: all of them at once). Small
        pieces are selected while their scores are still in the core's cache; the offers are
        the same whatever the step.

    Returns
    -------
    Choice
    """
    score_rows = scores if callable(scores) else (lambda _: scores)
    size = max(int(step or rows.shape[0]), 1)
    pieces = [rows[i : i + size] for i in range(0, rows.shape[0], size)] or [rows]
    first = score_rows(pieces[0])
    kk = min(k, first.shape[1])
    if max_per_family is not None or kk > MAX_K:
        return Choice.concat(
            [
                _dense_choice(
                    piece,
                    first if i == 0 else score_rows(piece),
                    kk,
                    offers=offers,
                    pricing=pricing,
                    propensity=propensity,
                    family=family,
                    tie_rank=tie_rank,
                    max_per_family=max_per_family,
                )
                for i, piece in enumerate(pieces)
            ],
            [piece.shape[0] for piece in pieces],
        )
    # the compiled pass: same offers and order, without a dense priority array; what it
    # needs besides the scores is prepared once for all the pieces
    selector = BlockSelector.of(
        n=first.shape[1],
        k=kk,
        offers=offers,
        pricing=pricing,
        predict=propensity.predict,
        tie_rank=tie_rank,
        scale=propensity.scale if isinstance(propensity, ScoreScale) else None,
    )
    m = rows.shape[0]
    idx = np.empty((m, kk), dtype=np.int64)
    prio = np.empty((m, kk), dtype=np.float32)
    slot = np.empty((m, kk), dtype=np.int64)
    chosen = np.empty((m, kk), dtype=first.dtype)
    lo = 0
    for i, piece in enumerate(pieces):
        piece_scores = first if i == 0 else score_rows(piece)
        hi = lo + piece.shape[0]
        selector.run(piece, piece_scores, idx[lo:hi], prio[lo:hi], slot[lo:hi])
        # the chosen raw scores, read while the piece's scores are at hand
        chosen[lo:hi] = np.take_along_axis(piece_scores, np.maximum(idx[lo:hi], 0), axis=1)
        lo = hi
    r_local, rank0 = np.nonzero(idx >= 0)
    products = idx[r_local, rank0]
    up_slot = slot[r_local, rank0]
    upsell = up_slot >= 0
    value = pricing.cross_value[products]
    value[upsell] = selector.up_value[up_slot[upsell]]
    chosen_scores = chosen[r_local, rank0]
    return Choice(
        row=r_local.astype(np.int64, copy=False),
        rank=(rank0 + 1).astype(np.int64),
        product=products,
        score=chosen_scores.astype(np.float64),
        propensity=np.asarray(propensity.predict(chosen_scores), dtype=np.float64),
        value=value,
        priority=prio[r_local, rank0].astype(np.float64),
        upsell=upsell,
    )


def _dense_choice(
    rows: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float32],
    kk: int,
    *,
    offers: OfferMap,
    pricing: Pricing,
    propensity: Calibrator | ScoreScale,
    family: npt.NDArray[np.int64],
    tie_rank: npt.NDArray[np.int64],
    max_per_family: int | None,
) -> Choice:
    """Choose the offers of :func:`select_offers` by the dense priorities (family caps, big k)."""
    scored = priorities(
        rows=rows, scores=scores, offers=offers, pricing=pricing, propensity=propensity
    )
    idx, prio = diverse_top_k(
        scored.priority,
        kk,
        family=family if max_per_family is not None else None,
        max_per_family=max_per_family,
        propensity=np.asarray(propensity.predict(scores), dtype=np.float32),
        score=scores,
        tie_rank=tie_rank,
    )
    r_local, rank0 = np.nonzero(idx >= 0)
    products = idx[r_local, rank0]
    upsell, value = scored.typed(r_local, products)
    return Choice(
        row=r_local.astype(np.int64, copy=False),
        rank=(rank0 + 1).astype(np.int64),
        product=products,
        score=scored.scores[r_local, products].astype(np.float64),
        propensity=scored.propensity(r_local, products).astype(np.float64),
        value=value,
        priority=prio[r_local, rank0].astype(np.float64),
        upsell=upsell,
    )
