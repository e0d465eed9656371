"""Priorities of a block of clients: typed, valued and filtered by the policy in a few passes.

Almost every (client, product) pair of a block is a plain cross-sell: its priority is the
propensity times the product's (lever-weighted) value, and it is offerable unless a column- or
client-wide rule says otherwise. What differs is sparse: held products and lower tiers, upsells
with their own value, and pair-level blocks. So a block costs one dense product with a row of
weights, one comparison for the not-worth floor, and writes at a few scattered pairs, instead
of dense masks and value matrices per rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._sparse import row_positions
from crosssell.candidates import Candidates, FamilyPairs
from crosssell.rules import NotWorthProposing, Suppression

__all__ = ["Scored", "cross_sell_floor", "score_block"]

_NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True, slots=True, eq=False)
class Scored:
    """A block of clients after scoring and filtering.

    ``priority`` is ``-inf`` where the pair may not be offered. Offer types and values of
    chosen pairs come from :meth:`typed`.
    """

    scores: npt.NDArray[np.float32]
    propensity: npt.NDArray[np.float32]
    priority: npt.NDArray[np.float32]
    pairs: FamilyPairs
    cross_value: npt.NDArray[np.float64]

    def typed(
        self, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Whether each chosen (block row, product) is an upsell, and its value."""
        upsell, up_value = self.pairs.lookup(rows, cols, self.cross_value.shape[0])
        return upsell, np.where(upsell, up_value, self.cross_value[cols])


def cross_sell_floor(
    floor: NotWorthProposing | None, cross_value: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Per product, the float32 propensity a cross-sell must exceed to be worth proposing.

    ``NotWorthProposing`` allows an offer when ``propensity * value > min_expected_value`` and
    ``propensity >= min_propensity``. For a cross-sell the value depends on the product only,
    so both tests fold into one strict bound per product; rounding it down to float32 keeps the
    comparison exact for float32 propensities. Without a floor the bound is ``-inf`` (only NaN
    propensities fail it).
    """
    n = cross_value.shape[0]
    if floor is None:
        return np.full(n, _NEG_INF, dtype=np.float32)
    e = float(floor.min_expected_value)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(cross_value > 0, e / cross_value, -np.inf if e < 0 else np.inf)
    if floor.min_propensity > 0:
        # p >= m for float32 p  <=>  p > the largest float32 below m (m rounded up first)
        m32 = np.float32(floor.min_propensity)
        if float(m32) < floor.min_propensity:
            m32 = np.nextafter(m32, np.float32(np.inf))
        bound = np.maximum(bound, float(np.nextafter(m32, _NEG_INF)))
    out = bound.astype(np.float32)
    # round toward -inf, so that p > out exactly when p > bound
    up = out.astype(np.float64) > bound
    out[up] = np.nextafter(out[up], _NEG_INF)
    return out


def _hits(matrix: sp.csr_matrix, rows: npt.NDArray[np.int64]) -> tuple[Any, Any]:
    """Return the stored (block row, column) entries of ``rows`` in a boolean CSR."""
    pos, owner = row_positions(matrix.indptr, rows)
    hit = matrix.data[pos].astype(bool)
    return owner[hit], matrix.indices[pos][hit]


def _pair_lookup(
    matrix: sp.csr_matrix, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Whether each (row, col) pair is stored (and true) in a boolean CSR."""
    if matrix.nnz == 0 or rows.size == 0:
        return np.zeros(rows.shape[0], dtype=bool)
    return np.asarray(matrix[rows, cols]).ravel().astype(bool)


def score_block(
    *,
    rows: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float32],
    propensity: npt.NDArray[np.float32],
    candidates: Candidates,
    suppression: Suppression | None,
    levers: npt.NDArray[np.float64],
    floor: NotWorthProposing | None,
    bound: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
) -> Scored:
    """Priorities of a block of clients (rows of the book) from their scores and propensities.

    ``weight`` is the cross-sell value times the levers per product, and ``bound`` the
    :func:`cross_sell_floor` of the cross-sell values; both depend on the model only, so the
    caller computes them once.
    """
    if floor is not None or np.isnan(propensity.max(initial=0.0)):
        priority = np.full(propensity.shape, _NEG_INF, dtype=np.float32)
        np.multiply(propensity, weight, out=priority, where=propensity > bound)
    else:
        priority = np.multiply(propensity, weight, dtype=np.float32)
    pairs = candidates.family_pairs(rows)
    s = suppression
    if s is not None:
        # Blocks of every offer, and of cross-sells only; upsells are re-decided below.
        cols = np.flatnonzero(s.product_any | s.product_cross_sell)
        if cols.size:
            priority[:, cols] = _NEG_INF
        whole = np.flatnonzero(s.client_any[rows] | s.client_cross_sell[rows])
        if whole.size:
            priority[whole] = _NEG_INF
        if s.pairs_cross_sell.nnz:
            priority[_hits(s.pairs_cross_sell, rows)] = _NEG_INF
    ur, uc = pairs.upsell_rows, pairs.upsell_cols
    if ur.size:
        p = propensity[ur, uc]
        up_priority = np.multiply(p, pairs.upsell_value * levers[uc], dtype=np.float32)
        blocked = np.isnan(up_priority)
        if floor is not None:
            blocked |= floor.blocked(p, p * pairs.upsell_value)
        if s is not None:
            client = rows[ur]
            blocked |= s.client_any[client] | s.client_upsell[client]
            blocked |= s.product_any[uc] | s.product_upsell[uc]
            blocked |= _pair_lookup(s.pairs_upsell, client, uc)
        up_priority[blocked] = _NEG_INF
        priority[ur, uc] = up_priority
    priority[pairs.blocked_rows, pairs.blocked_cols] = _NEG_INF
    if s is not None and s.pairs.nnz:
        priority[_hits(s.pairs, rows)] = _NEG_INF
    return Scored(
        scores=scores,
        propensity=propensity,
        priority=priority,
        pairs=pairs,
        cross_value=candidates.product_value.clip(min=0.0),
    )
