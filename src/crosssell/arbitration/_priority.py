"""Priorities of a block of clients: typed, valued and filtered by the policy in a few passes.

Almost every (client, product) pair of a block is a plain cross-sell: its priority is the
propensity times the product's (lever-weighted) value, and it is offerable unless a column- or
client-wide rule says otherwise. What differs is sparse: held products and lower tiers, upsells
with their own value, and pair-level blocks. So a block costs one dense product with a row of
weights, one comparison for the not-worth floor, and writes at a few scattered pairs, instead
of dense masks and value matrices per rule.

:func:`score_block` is the definition, in numpy, and serves every caller that needs the whole
priority array. :func:`select_block` is what a batch of offers uses: the same arithmetic in one
compiled pass (:mod:`crosssell._kernels`) that keeps only the best ``k`` of each client.
:func:`~crosssell.arbitration._select.select_offers` chooses between them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from crosssell._kernels import SELECT_GROUPS, select_rows
from crosssell._sparse import row_positions
from crosssell.candidates import Candidates, FamilyPairs
from crosssell.rules import NotWorthProposing, Suppression

__all__ = [
    "BlockSelector",
    "OfferMap",
    "Pricing",
    "Scored",
    "Selected",
    "cross_sell_floor",
    "display_bound",
    "score_block",
    "select_block",
]

_NEG_INF = np.float32(-np.inf)


class _Propensities:
    """Propensities of chosen pairs of a block, from its raw scores."""

    __slots__ = ()
    scores: npt.NDArray[np.float32]
    predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]

    def propensity(
        self, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """Propensities of chosen pairs (the mapping is elementwise: recomputed, not stored)."""
        return self.predict(self.scores[rows, cols])


@dataclass(frozen=True, slots=True, eq=False)
class Scored(_Propensities):
    """A block of clients after scoring and filtering.

    ``priority`` is ``-inf`` where the pair may not be offered. Offer types and values of
    chosen pairs come from :meth:`typed`.
    """

    scores: npt.NDArray[np.float32]
    priority: npt.NDArray[np.float32]
    pairs: FamilyPairs
    cross_value: npt.NDArray[np.float64]
    predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]

    def typed(
        self, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Whether each chosen (block row, product) is an upsell, and its value."""
        upsell, up_value = self.pairs.lookup(rows, cols, self.cross_value.shape[0])
        return upsell, np.where(upsell, up_value, self.cross_value[cols])


def cross_sell_floor(
    floor: NotWorthProposing | None,
    cross_value: npt.NDArray[np.float64],
    cost: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float32]:
    """Per product, the float32 propensity a cross-sell must exceed to be worth proposing.

    ``NotWorthProposing`` allows an offer when ``propensity * value > min_expected_value``,
    ``propensity >= min_propensity`` and, where the product's ``cost`` of proposing is
    positive, ``propensity * value >= cost``. For a cross-sell the value depends on the product
    only, so the tests fold into one strict bound per product; rounding it down to float32 keeps
    the comparison exact for float32 propensities. ``cost`` defaults to the floor's
    ``contact_cost`` (a float). Without a floor the bound is ``-inf`` (only NaN propensities
    fail it).
    """
    n = cross_value.shape[0]
    if floor is None:
        return np.full(n, _NEG_INF, dtype=np.float32)
    e = float(floor.min_expected_value)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(cross_value > 0, e / cross_value, -np.inf if e < 0 else np.inf)
    if floor.min_propensity > 0:
        bound = np.maximum(bound, _below(np.array([float(floor.min_propensity)]))[0])
    c = _uniform_cost(floor, n) if cost is None else np.asarray(cost, dtype=np.float64)
    paid = np.flatnonzero(c > 0)
    if paid.size:
        # p * v >= c  <=>  p >= c / v  (v > 0); nothing of zero value pays a positive cost
        v = cross_value[paid]
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(v > 0, c[paid] / v, np.inf)
        bound[paid] = np.maximum(bound[paid], _below(need))
    out = bound.astype(np.float32)
    # round toward -inf, so that p > out exactly when p > bound
    up = out.astype(np.float64) > bound
    out[up] = np.nextafter(out[up], _NEG_INF)
    return out


def _below(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the largest float32 below each ``m`` rounded up (``p >= m  <=>  p > it``)."""
    m32 = m.astype(np.float32)
    low = m32.astype(np.float64) < m
    m32[low] = np.nextafter(m32[low], np.float32(np.inf))
    return np.nextafter(m32, _NEG_INF).astype(np.float64)


def display_bound(bound: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Return the per-product floor bound for a propensity whose display is bounded at 1.

    ``min(p, 1) > b`` exactly when ``p > b`` and ``1 > b``: a bound of 1 or more can never be
    passed by the displayed propensity, so it becomes ``+inf`` for the unbounded one.
    """
    return np.where(bound < np.float32(1.0), bound, np.float32(np.inf)).astype(np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class OfferMap:
    """Per client, the pairs that are not plain cross-sells, with the policy's blocks folded in.

    Built once per fitted model (and per fresh view), so that scoring a block of clients, or
    one client in real time, reads a few CSR rows instead of typing families and looking up
    rule tables again.

    Attributes
    ----------
    off : scipy.sparse.csr_matrix of bool, shape (n_clients, n_products)
        Pairs never offered: held products, lower or equal tiers of a held family, pairs the
        policy blocks, upsells blocked by upsell rules, cross-sell-only blocks of cross-sells.
    up : scipy.sparse.csr_matrix of float64, same shape
        Upsells the policy allows, holding their value (explicit zeros are kept).
    cross_cols : ndarray of int64
        Products blocked as cross-sells for every client (with those not available at
        ``as_of``, whose upsells are in ``off``).
    cross_rows : ndarray of bool, shape (n_clients,)
        Clients for whom every cross-sell is blocked (their upsells may stay).
    all_rows : ndarray of bool, shape (n_clients,)
        Clients for whom every offer is blocked.
    """

    off: sp.csr_matrix
    up: sp.csr_matrix
    cross_cols: npt.NDArray[np.int64]
    cross_rows: npt.NDArray[np.bool_]
    all_rows: npt.NDArray[np.bool_]

    @classmethod
    def build(
        cls, candidates: Candidates, suppression: Suppression | None, *, block: int = 65_536
    ) -> OfferMap:
        """Type every client's family pairs and fold in the policy (blocks of ``block`` clients)."""
        n_clients = candidates.holdings.shape[0]
        n = candidates.n_products
        s = suppression
        off_r, off_c, up_r, up_c, up_v = [], [], [], [], []
        for start in range(0, n_clients, block):
            rows = np.arange(start, min(start + block, n_clients), dtype=np.int64)
            pairs = candidates.family_pairs(rows)
            off_r.append(rows[pairs.blocked_rows])
            off_c.append(pairs.blocked_cols)
            r, c, v = rows[pairs.upsell_rows], pairs.upsell_cols, pairs.upsell_value
            if s is not None and r.size:
                blocked = s.client_any[r] | s.client_upsell[r] | s.product_any[c]
                blocked |= s.product_upsell[c]
                blocked |= _pair_lookup(s.pairs_upsell, r, c) | _pair_lookup(s.pairs, r, c)
                off_r.append(r[blocked])
                off_c.append(c[blocked])
                r, c, v = r[~blocked], c[~blocked], v[~blocked]
            up_r.append(r)
            up_c.append(c)
            up_v.append(v)
        ur, uc = np.concatenate(up_r), np.concatenate(up_c)
        if s is not None:
            for matrix, keep_upsells in ((s.pairs, False), (s.pairs_cross_sell, True)):
                coo = matrix.tocoo()
                hit = coo.data.astype(bool)
                r, c = coo.row[hit].astype(np.int64), coo.col[hit].astype(np.int64)
                if keep_upsells and ur.size and r.size:
                    # a cross-sell-only block does not touch the pair when it is an upsell
                    c_is_up = np.isin(r * n + c, ur * n + uc)
                    r, c = r[~c_is_up], c[~c_is_up]
                off_r.append(r)
                off_c.append(c)
        rr, cc = np.concatenate(off_r), np.concatenate(off_c)
        off = sp.csr_matrix(
            (np.ones(rr.shape[0], dtype=bool), (rr, cc)), shape=(n_clients, n), dtype=bool
        )
        off.sum_duplicates()
        # Built from its parts, so that zero-value upsells stay entries (they are still
        # upsells); blocks come in client order, each sorted by client then product.
        indptr = np.zeros(n_clients + 1, dtype=np.int64)
        np.cumsum(np.bincount(ur, minlength=n_clients), out=indptr[1:])
        up = sp.csr_matrix((np.concatenate(up_v), uc, indptr), shape=(n_clients, n))
        # A product outside its availability window is offered to no one, whatever the policy.
        unavailable = ~candidates.available
        if s is None:
            no = np.zeros(n_clients, dtype=bool)
            cross_cols = np.flatnonzero(unavailable).astype(np.int64)
            return cls(off=off, up=up, cross_cols=cross_cols, cross_rows=no, all_rows=no)
        return cls(
            off=off,
            up=up,
            cross_cols=np.flatnonzero(s.product_any | s.product_cross_sell | unavailable).astype(
                np.int64
            ),
            cross_rows=s.client_cross_sell | s.client_any,
            all_rows=s.client_any.copy(),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Pricing:
    """What turns a propensity into a priority, per product; fixed for a fitted model.

    ``weight`` is the cross-sell value times the levers, ``cost`` the floor's cost of proposing
    each product (zeros without a floor), and ``bound`` the :func:`cross_sell_floor` of the
    cross-sell values under ``floor``.

    ``by_value=False`` makes the priority blind to value and levers: it is the propensity
    itself (a :class:`~crosssell.arbitration.ScoreScale`'s before its bound at 1), for
    upsells and cross-sells alike, so that offers rank as the scores do. The values are still
    reported and the not-worth floor still tests them: only the order changes. A popularity
    baseline ranks this way, by how many clients hold each product.
    """

    cross_value: npt.NDArray[np.float64]
    levers: npt.NDArray[np.float64]
    floor: NotWorthProposing | None
    weight: npt.NDArray[np.float32]
    bound: npt.NDArray[np.float32]
    cost: npt.NDArray[np.float64]
    by_value: bool = True

    @classmethod
    def of(
        cls,
        product_value: npt.NDArray[np.float64],
        levers: npt.NDArray[np.float64],
        floor: NotWorthProposing | None,
        families: npt.ArrayLike | None = None,
        *,
        by_value: bool = True,
    ) -> Pricing:
        """Derive the per-product weights, costs and floor bounds from values, levers and a floor.

        ``families`` (one label per product) prices a ``contact_cost`` given per family; it is
        required then.
        """
        cross_value = product_value.clip(min=0.0)
        n = cross_value.shape[0]
        if floor is None:
            cost = np.zeros(n, dtype=np.float64)
        elif families is None:
            cost = _uniform_cost(floor, n)
        else:
            cost = floor.costs(families)
        weight = cross_value * levers if by_value else np.ones_like(cross_value)
        return cls(
            cross_value=cross_value,
            levers=levers,
            floor=floor,
            weight=weight.astype(np.float32),
            bound=cross_sell_floor(floor, cross_value, cost),
            cost=cost,
            by_value=by_value,
        )

    def value_blind(self) -> Pricing:
        """Return this pricing ranking by propensity alone (``by_value=False``), floor unchanged.

        Examples
        --------
        >>> blind = Pricing.of(np.array([10.0, 1000.0]), np.ones(2), None).value_blind()
        >>> blind.weight.tolist(), blind.cross_value.tolist()
        ([1.0, 1.0], [10.0, 1000.0])
        """
        return dataclasses.replace(self, weight=np.ones_like(self.weight), by_value=False)


def _uniform_cost(floor: NotWorthProposing, n: int) -> npt.NDArray[np.float64]:
    """Return the floor's ``contact_cost`` for each of ``n`` products, when it is one number."""
    if isinstance(floor.contact_cost, Mapping):
        raise ValueError(
            f"{floor.name}: contact_cost is given per product family, so pricing needs the "
            f"family of each of the {n} products."
        )
    return np.full(n, float(floor.contact_cost), dtype=np.float64)


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
    offers: OfferMap,
    pricing: Pricing,
    predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    finite: bool = False,
    not_worth: bool = True,
    unbounded: bool = False,
) -> Scored:
    """Priorities of a block of clients (rows of the book) from their scores and propensities.

    ``propensity`` is ``predict(scores)`` and is overwritten with the priorities. ``finite``
    says the propensities cannot be NaN (a NaN is never offered; checking for one costs a pass
    over the block). ``not_worth=False`` leaves the pricing's floor out. ``unbounded`` says
    that ``propensity`` is a :class:`~crosssell.arbitration.ScoreScale`'s before its display
    bound at 1: it ranks as given, and the floor tests the bounded one.
    """
    floor = pricing.floor if not_worth else None
    levers = pricing.levers
    bound = display_bound(pricing.bound) if unbounded else pricing.bound
    # The floor without a boolean mask: a masked write costs about 3 ns per entry, several
    # times an arithmetic pass. p > bound exactly when p - nextafter(bound, +inf) >= 0, whose
    # sign copied onto infinity gives +inf (allowed) or -inf (blocked); the minimum with the
    # priority then keeps it or blocks it. (The sign of a float32 difference is always exact.)
    gate = None
    if floor is not None:
        gate = np.subtract(propensity, np.nextafter(bound, np.float32(np.inf)))
        np.copysign(np.float32(np.inf), gate, out=gate)
    nan = None
    if not finite and np.isnan(propensity.max(initial=0.0)):
        nan = np.isnan(propensity)
    pos, ur = row_positions(offers.up.indptr, rows)
    uc = offers.up.indices[pos].astype(np.int64)
    uv = offers.up.data[pos]
    p = propensity[ur, uc]
    # The propensity array becomes the priority array in place: a block is tens of megabytes,
    # and a fresh one costs page faults as well as a pass. Value-blind, it already is one.
    priority = (
        np.multiply(propensity, pricing.weight, out=propensity) if pricing.by_value else propensity
    )
    if gate is not None:
        np.minimum(priority, gate, out=priority)
        del gate
    if nan is not None:
        np.putmask(priority, nan, _NEG_INF)
    if offers.cross_cols.size:
        priority[:, offers.cross_cols] = _NEG_INF
    whole = np.flatnonzero(offers.cross_rows[rows])
    if whole.size:
        priority[whole] = _NEG_INF
    if ur.size:
        up_priority = (
            np.multiply(p, uv * levers[uc], dtype=np.float32) if pricing.by_value else p.copy()
        )
        blocked = np.isnan(up_priority)
        if floor is not None:
            shown = np.minimum(p, np.float32(1.0)) if unbounded else p
            blocked |= floor.blocked(shown, shown * uv, cost=pricing.cost[uc])
        up_priority[blocked] = _NEG_INF
        priority[ur, uc] = up_priority
    pos, owner = row_positions(offers.off.indptr, rows)
    priority[owner, offers.off.indices[pos]] = _NEG_INF
    empty = np.zeros(0, dtype=np.int64)
    return Scored(
        scores=scores,
        priority=priority,
        pairs=FamilyPairs(
            blocked_rows=empty, blocked_cols=empty, upsell_rows=ur, upsell_cols=uc, upsell_value=uv
        ),
        cross_value=pricing.cross_value,
        predict=predict,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Selected(_Propensities):
    """The best offers of a block of clients, chosen without a dense priority array.

    ``index`` and ``priority`` are what :func:`crosssell._topk.ordered_top_k` gives on the
    priorities of :func:`score_block` (best first, ties in the total order of
    :mod:`crosssell.arbitration._order`, ``-1``/``-inf`` pads); ``slot``
    holds, per chosen pair, its position among the offer map's upsells, or -1 for a
    cross-sell.
    """

    scores: npt.NDArray[np.float32]
    index: npt.NDArray[np.int64]
    priority: npt.NDArray[np.float32]
    slot: npt.NDArray[np.int64]
    up_value: npt.NDArray[np.float64]
    cross_value: npt.NDArray[np.float64]
    predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]

    def typed(
        self, rows: npt.NDArray[np.int64], ranks: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Whether the offer at (block row, rank from 0) is an upsell, and its value."""
        slot = self.slot[rows, ranks]
        upsell = slot >= 0
        value = self.cross_value[self.index[rows, ranks]]
        value[upsell] = self.up_value[slot[upsell]]
        return upsell, value


def grouped_selection(n: int, k: int) -> bool:
    """Whether :func:`select_block` bounds each row's ``k``-th best by column groups' maxima.

    Worth it when a row is long beside the groups (:data:`~crosssell._kernels.SELECT_GROUPS`)
    and ``k`` is small beside their count: the bound then skips most of the row.
    """
    return n >= 8 * SELECT_GROUPS and 2 * k <= SELECT_GROUPS


@dataclass(frozen=True, slots=True, eq=False)
class BlockSelector:
    """What :func:`select_block` hands the compiled loop beside the scores, prepared once.

    A block scored piece by piece (:func:`crosssell.arbitration._select.select_offers` with
    ``score_rows``) runs it on every piece: per piece only the rows, their scores and the rows
    of the output change.
    """

    k: int
    scale: float | None
    predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
    weight: npt.NDArray[np.float32]
    bound: npt.NDArray[np.float32]
    floor: NotWorthProposing | None
    cost: npt.NDArray[np.float64]
    cross_rows: npt.NDArray[np.bool_]
    levers: npt.NDArray[np.float64]
    by_value: bool
    up: sp.csr_matrix
    up_value: npt.NDArray[np.float64]
    off: sp.csr_matrix
    tie_rank: npt.NDArray[np.int64]
    grouped: bool

    @classmethod
    def of(
        cls,
        *,
        n: int,
        k: int,
        offers: OfferMap,
        pricing: Pricing,
        predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
        tie_rank: npt.NDArray[np.int64],
        scale: float | None = None,
        grouped: bool | None = None,
    ) -> BlockSelector:
        """Prepare the choice among ``n`` products (the arguments of :func:`select_block`)."""
        floor = pricing.floor
        # one bound per product: the floor's, or none; a product blocked for cross-sells
        # can't pass
        if floor is None:
            bound = np.full(n, _NEG_INF, dtype=np.float32)
        else:
            bound = display_bound(pricing.bound) if scale is not None else pricing.bound
        if offers.cross_cols.size:
            bound = bound.copy()
            bound[offers.cross_cols] = np.inf
        return cls(
            k=k,
            scale=scale,
            predict=predict,
            weight=pricing.weight,
            bound=bound,
            floor=floor,
            cost=np.asarray(pricing.cost, dtype=np.float64),
            cross_rows=offers.cross_rows,
            levers=np.asarray(pricing.levers, dtype=np.float64),
            by_value=pricing.by_value,
            up=offers.up,
            up_value=np.asarray(offers.up.data, dtype=np.float64),
            off=offers.off,
            tie_rank=np.ascontiguousarray(tie_rank, dtype=np.int64),
            grouped=grouped_selection(n, k) if grouped is None else bool(grouped),
        )

    def run(
        self,
        rows: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float32],
        index: npt.NDArray[np.int64],
        priority: npt.NDArray[np.float32],
        slot: npt.NDArray[np.int64],
    ) -> None:
        """Choose the best ``k`` offers of ``rows`` into ``index``, ``priority`` and ``slot``.

        The three are C-contiguous, of shape ``(len(rows), k)`` (consecutive rows of a
        block's arrays are).
        """
        raw = np.ascontiguousarray(scores, dtype=np.float32)
        if self.scale is None:
            src = np.ascontiguousarray(self.predict(scores), dtype=np.float32)
            inv = np.float32(1.0)
        else:
            src = raw
            inv = np.float32(1.0 / self.scale)
        floor = self.floor
        select_rows(
            src,
            self.scale is not None,
            inv,
            self.weight,
            self.bound,
            floor is not None,
            float(floor.min_expected_value) if floor is not None else 0.0,
            float(floor.min_propensity) if floor is not None else 0.0,
            self.cost,
            np.ascontiguousarray(self.cross_rows[rows]),
            self.levers,
            self.by_value,
            self.up.indptr,
            self.up.indices,
            self.up_value,
            np.ascontiguousarray(rows, dtype=np.int64),
            self.off.indptr,
            self.off.indices,
            raw,
            self.tie_rank,
            self.grouped,
            index,
            priority,
            slot,
        )


def select_block(
    *,
    rows: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float32],
    k: int,
    offers: OfferMap,
    pricing: Pricing,
    predict: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    tie_rank: npt.NDArray[np.int64],
    scale: float | None = None,
    grouped: bool | None = None,
) -> Selected:
    """Choose the best ``k`` offers of a block of clients (rows of the book) in one compiled pass.

    The same offers, priorities and order as :func:`score_block` followed by
    :func:`crosssell._topk.ordered_top_k` (ties by propensity, raw score, then ``tie_rank``),
    for ``k <= MAX_K`` (see :mod:`crosssell._kernels`). ``scale`` says that ``predict`` is a
    :class:`~crosssell.arbitration.ScoreScale` of that scale, whose arithmetic the loop then
    does itself (priorities from the unbounded propensity); otherwise the propensities are
    computed by ``predict`` first. A value-blind ``pricing`` (``by_value=False``) ranks by the
    propensity alone, as :func:`score_block` does.
    """
    m, n = scores.shape
    selector = BlockSelector.of(
        n=n,
        k=k,
        offers=offers,
        pricing=pricing,
        predict=predict,
        tie_rank=tie_rank,
        scale=scale,
        grouped=grouped,
    )
    index = np.empty((m, k), dtype=np.int64)
    priority = np.empty((m, k), dtype=np.float32)
    slot = np.empty((m, k), dtype=np.int64)
    selector.run(rows, scores, index, priority, slot)
    return Selected(
        scores=scores,
        index=index,
        priority=priority,
        slot=slot,
        up_value=selector.up_value,
        cross_value=pricing.cross_value,
        predict=predict,
    )
