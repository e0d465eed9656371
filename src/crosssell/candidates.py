"""Candidates: which (client, product) pairs are offers at all, typed and valued.

A product the client holds actively is never a candidate. Within a family the client holds, only a
higher tier is a candidate (an **upsell**); a lower or equal tier is a downgrade and no offer. A
product of a family the client does not hold is a **cross_sell**. Seat or quantity expansion is
modelled as a catalog product of the same family with a higher tier (for example a larger seat
pack), so that "a held product is never offered" holds without exception. Without a catalog each
product is its own family, so every candidate is a cross-sell. A product outside its availability
window at ``as_of`` (:meth:`crosssell.Book.available`: not launched yet, or withdrawn) is no
candidate for anyone.

Value: the catalog ``price``, else the median annual value of the product's contracts up to
``as_of``, else the median of those product values over the catalogue (marked ``"default"``); for
an upsell, the difference to what the client pays today in that family (never below zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._sparse import group_max, row_positions, rows_dense
from crosssell.book import Book
from crosssell.columns import Columns

__all__ = ["CandidateChunk", "Candidates", "FamilyPairs", "ValueSource"]

ValueSource = Literal["price", "median_contract", "default"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateChunk:
    """Offer typing and value for a block of clients against every product.

    Attributes
    ----------
    is_candidate : ndarray of bool, shape (m, n_products)
        True where the pair may be offered at all (not held, not a downgrade).
    is_upsell : ndarray of bool, shape (m, n_products) or None
        True where the candidate is an upsell; None when the catalogue has no tiers, in which
        case every candidate is a cross-sell.
    value : ndarray of float64, shape (m, n_products) or (n_products,)
        Value of each pair; a single row when it does not depend on the client.

    Examples
    --------
    >>> import numpy as np
    >>> c = CandidateChunk(is_candidate=np.ones((1, 2), bool), is_upsell=None, value=np.ones(2))
    >>> c.value.shape
    (2,)
    """

    is_candidate: npt.NDArray[np.bool_]
    is_upsell: npt.NDArray[np.bool_] | None
    value: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyPairs:
    """The few (client, product) pairs of a block of clients that are not plain cross-sells.

    Every other pair of an available product is a cross-sell valued at the product's value, so
    a block of clients is typed by a dense row of values, the products not available at
    ``as_of`` (:attr:`Candidates.available`) and these sparse exceptions.

    Attributes
    ----------
    blocked_rows, blocked_cols : ndarray of int64
        Pairs that are no candidate at all: held products, lower or equal tiers of a held
        family, and unavailable products of a held family (rows are positions in the block).
    upsell_rows, upsell_cols : ndarray of int64
        Upsell candidates, sorted by row then column.
    upsell_value : ndarray of float64
        Their value: price minus what the client pays in the family, never below zero.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([], dtype=np.int64)
    >>> FamilyPairs(blocked_rows=e, blocked_cols=e, upsell_rows=e, upsell_cols=e,
    ...             upsell_value=np.array([])).upsell_value.size
    0
    """

    blocked_rows: npt.NDArray[np.int64]
    blocked_cols: npt.NDArray[np.int64]
    upsell_rows: npt.NDArray[np.int64]
    upsell_cols: npt.NDArray[np.int64]
    upsell_value: npt.NDArray[np.float64]

    def lookup(
        self, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64], n_products: int
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Whether each (row, col) pair is an upsell, and its upsell value (0 where not).

        Parameters
        ----------
        rows, cols : ndarray of int64
            Pairs, rows as positions in the block.
        n_products : int
            Number of products.

        Returns
        -------
        is_upsell : ndarray of bool
        value : ndarray of float64

        Examples
        --------
        >>> import numpy as np
        >>> one = np.array([0])
        >>> f = FamilyPairs(blocked_rows=one, blocked_cols=one, upsell_rows=one,
        ...                 upsell_cols=np.array([1]), upsell_value=np.array([5.0]))
        >>> f.lookup(np.array([0, 0]), np.array([1, 2]), 3)[0].tolist()
        [True, False]
        """
        keys = self.upsell_rows * n_products + self.upsell_cols
        want = rows * n_products + cols
        at = np.minimum(np.searchsorted(keys, want), max(keys.shape[0] - 1, 0))
        found = keys[at] == want if keys.size else np.zeros(want.shape[0], dtype=bool)
        value = np.where(found, self.upsell_value[at] if keys.size else 0.0, 0.0)
        return found, value


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Candidates:
    """Offer typing and value of every (client, product) pair at ``as_of``.

    Build it with :meth:`build`. Rows are the Book's clients, columns its products.

    Attributes
    ----------
    family : ndarray of int64, shape (n_products,)
        Family code of each product (index into ``families``).
    families : pandas.Index
        Family names.
    tier : ndarray of int64, shape (n_products,)
        Tier of each product.
    held_tier : scipy.sparse.csr_matrix, shape (n_clients, n_families)
        ``1 + highest tier held`` per client and family (no entry: family not held).
    paid : scipy.sparse.csr_matrix, shape (n_clients, n_families)
        Annual value the client pays today in each family.
    holdings : scipy.sparse.csr_matrix of bool, shape (n_clients, n_products)
        Products held actively at ``as_of``.
    product_value : ndarray of float64, shape (n_products,)
        Value of each product as a cross-sell.
    value_source : ndarray of str, shape (n_products,)
        Where each product's value came from: ``"price"``, ``"median_contract"`` or ``"default"``.
    has_upsells : bool
        Whether any family has more than one tier (otherwise every candidate is a cross-sell).
    available : ndarray of bool, shape (n_products,)
        Products within their availability window at ``as_of`` (:meth:`Book.available`); the
        others are no candidate for anyone.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> products = pd.DataFrame({"product_id": ["CRM-1", "CRM-2", "ERP-1"],
    ...                          "family": ["CRM", "CRM", "ERP"], "tier": [1, 2, 1],
    ...                          "price": [100.0, 250.0, 400.0]})
    >>> contracts = pd.DataFrame({"client_id": ["C1"], "product_id": ["CRM-1"],
    ...                           "start_date": ["2024-01-01"], "value": [100.0]})
    >>> book = Book.from_frames(contracts=contracts, products=products)
    >>> cand = Candidates.build(book, "2024-06-30")
    >>> chunk = cand.chunk([0])
    >>> chunk.is_candidate.tolist(), chunk.is_upsell.tolist()
    ([[False, True, True]], [[False, True, False]])
    >>> chunk.value.tolist()
    [[100.0, 150.0, 400.0]]
    """

    family: npt.NDArray[np.int64]
    families: pd.Index
    tier: npt.NDArray[np.int64]
    held_tier: sp.csr_matrix
    paid: sp.csr_matrix
    holdings: sp.csr_matrix
    product_value: npt.NDArray[np.float64]
    value_source: npt.NDArray[np.str_]
    has_upsells: bool
    available: npt.NDArray[np.bool_]
    _family_order: npt.NDArray[np.int64] = field(init=False, repr=False)
    _family_ptr: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Derived once: a chunk looks up the products of the families its clients hold.
        n_fam = self.families.shape[0]
        ptr = np.zeros(n_fam + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.family, minlength=n_fam), out=ptr[1:])
        object.__setattr__(self, "_family_order", np.argsort(self.family, kind="stable"))
        object.__setattr__(self, "_family_ptr", ptr)

    @classmethod
    def build(cls, book: Book, as_of: object) -> Candidates:
        """Compute the typing and value tables of ``book`` at ``as_of``.

        Parameters
        ----------
        book : Book
            Validated inputs.
        as_of : str or datetime-like
            The point in time; contracts are active when ``start <= as_of < end``.

        Returns
        -------
        Candidates

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"], "value": [10.0, 30.0]})
        >>> cand = Candidates.build(Book.from_frames(contracts=c), "2024-06-30")
        >>> cand.has_upsells, cand.product_value.tolist()
        (False, [10.0, 30.0])
        """
        t = pd.Timestamp(as_of).value  # type: ignore[arg-type]
        products = book.product_table
        n_clients, n_products = len(book.client_ids), len(book.product_ids)
        family_codes, families = pd.factorize(products[Columns.family].astype(str), sort=False)
        family = np.asarray(family_codes, dtype=np.int64)
        tier = products[Columns.tier].to_numpy(dtype=np.int64, na_value=0)
        n_fam = len(families)

        arr = book.contract_arrays
        started = arr.start <= t
        active = started & (arr.end > t)
        c, p = arr.client[active], arr.product[active]
        holdings = sp.csr_matrix(
            (np.ones(c.shape[0], dtype=bool), (c, p)), shape=(n_clients, n_products)
        )
        holdings.sum_duplicates()
        # sum_duplicates on bool adds with "or"; the structure is what matters.
        holdings.data[:] = True

        fam_of = family[p]
        held_tier = group_max(c, fam_of, tier[p].astype(np.float64) + 1.0, (n_clients, n_fam))
        values = np.nan_to_num(arr.value[active], nan=0.0)
        paid = sp.csr_matrix((values, (c, fam_of)), shape=(n_clients, n_fam), dtype=np.float64)
        paid.sum_duplicates()

        product_value, source = _product_values(
            products[Columns.price].to_numpy(dtype=np.float64, na_value=np.nan),
            arr.product[started],
            arr.value[started],
            n_products,
        )
        has_upsells = bool(
            n_fam < n_products and pd.Series(tier).groupby(family).nunique().max() > 1
        )
        return cls(
            family=family,
            families=pd.Index(families),
            tier=tier,
            held_tier=held_tier,
            paid=paid,
            holdings=holdings,
            product_value=product_value,
            value_source=source,
            has_upsells=has_upsells,
            available=book.available(pd.Timestamp(t)),
        )

    @property
    def n_products(self) -> int:
        """Number of products (columns).

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [9], "start_date": ["2024-01-01"]})
        >>> Candidates.build(Book.from_frames(contracts=c), "2024-02-01").n_products
        1
        """
        return int(self.family.shape[0])

    def chunk(self, rows: npt.ArrayLike) -> CandidateChunk:
        """Type and value every product for a block of clients.

        Parameters
        ----------
        rows : array-like of int
            Client row indices.

        Returns
        -------
        CandidateChunk

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"]})
        >>> cand = Candidates.build(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> cand.chunk([0]).is_candidate.tolist()
        [[False, True]]
        """
        idx = np.asarray(rows, dtype=np.int64)
        held = rows_dense(self.holdings, idx)
        if not self.has_upsells:
            return CandidateChunk(
                is_candidate=~held & self.available, is_upsell=None, value=self.product_value
            )
        owner, product, upsell, up_value = self._in_family(idx, held)
        # Outside the families a client holds every product not held is a cross-sell; inside
        # them only the (sparse) pairs computed above differ, so the dense work is one pass.
        is_candidate = np.logical_not(held, out=held)
        is_candidate &= self.available
        is_candidate[owner, product] = upsell
        is_upsell = np.zeros(held.shape, dtype=bool)
        is_upsell[owner[upsell], product[upsell]] = True
        value = np.empty(held.shape, dtype=np.float64)
        value[...] = np.maximum(self.product_value, 0.0)
        value[owner[upsell], product[upsell]] = up_value
        return CandidateChunk(is_candidate=is_candidate, is_upsell=is_upsell, value=value)

    def family_pairs(self, rows: npt.ArrayLike) -> FamilyPairs:
        """Type a block of clients sparsely: the pairs that are not plain cross-sells.

        The dense equivalent is :meth:`chunk`; this is what batch scoring uses, since a client
        holds a few products of a few families and everything else is a cross-sell.

        Parameters
        ----------
        rows : array-like of int
            Client row indices.

        Returns
        -------
        FamilyPairs
            Rows as positions in ``rows``.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> products = pd.DataFrame({"product_id": ["CRM-1", "CRM-2", "ERP-1"],
        ...                          "family": ["CRM", "CRM", "ERP"], "tier": [1, 2, 1],
        ...                          "price": [100.0, 250.0, 400.0]})
        >>> contracts = pd.DataFrame({"client_id": ["C1"], "product_id": ["CRM-1"],
        ...                           "start_date": ["2024-01-01"], "value": [100.0]})
        >>> cand = Candidates.build(Book.from_frames(contracts=contracts, products=products),
        ...                         "2024-06-30")
        >>> pairs = cand.family_pairs([0])
        >>> pairs.blocked_cols.tolist(), pairs.upsell_cols.tolist(), pairs.upsell_value.tolist()
        ([0], [1], [150.0])
        """
        idx = np.asarray(rows, dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        if not self.has_upsells:
            pos, owner = row_positions(self.holdings.indptr, idx)
            hit = self.holdings.data[pos].astype(bool)
            return FamilyPairs(
                blocked_rows=owner[hit],
                blocked_cols=self.holdings.indices[pos][hit].astype(np.int64),
                upsell_rows=empty,
                upsell_cols=empty,
                upsell_value=np.zeros(0, dtype=np.float64),
            )
        owner, product, upsell, up_value = self._in_family(idx, None)
        up_owner, up_product = owner[upsell], product[upsell]
        # owners come sorted, products only within a family: a stable sort of one key, nearly
        # in order already, is cheap
        order = np.argsort(up_owner * self.n_products + up_product, kind="stable")
        return FamilyPairs(
            blocked_rows=owner[~upsell],
            blocked_cols=product[~upsell],
            upsell_rows=up_owner[order],
            upsell_cols=up_product[order],
            upsell_value=up_value[order],
        )

    def _in_family(
        self, idx: npt.NDArray[np.int64], held: npt.NDArray[np.bool_] | None
    ) -> tuple[
        npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.float64]
    ]:
        """Find the (chunk row, product) pairs in a family the client holds.

        Returns the pairs, whether each is an upsell, and the value of the upsells (price minus
        what the client pays in the family, never below zero).

        A client holds a few families, so these pairs are few: working on them rather than on
        dense (clients x products) arrays is what keeps a chunk cheap.
        """
        ht = self.held_tier
        pos, owner_f = row_positions(ht.indptr, idx)
        fam = ht.indices[pos].astype(np.int64)
        top1 = ht.data[pos]
        # rows_dense semantics: duplicate (client, family) entries add up
        key = owner_f * self.families.shape[0] + fam
        key, top1 = _sum_by_key(key, top1)
        owner_f, fam = np.divmod(key, max(self.families.shape[0], 1))
        in_family = top1 > 0
        owner_f, fam, top1, key = (
            owner_f[in_family],
            fam[in_family],
            top1[in_family],
            key[in_family],
        )
        order, fam_ptr = self._family_index()
        lengths = fam_ptr[fam + 1] - fam_ptr[fam]
        entry = np.repeat(np.arange(fam.shape[0], dtype=np.int64), lengths)
        offsets = np.cumsum(lengths) - lengths
        product = order[
            np.arange(entry.shape[0], dtype=np.int64) - offsets[entry] + fam_ptr[fam][entry]
        ]
        owner = owner_f[entry]
        tier1 = (self.tier[product] + 1).astype(np.float64)
        # A held product's tier is at most the top tier held, so it is never an upsell; the
        # dense check only matters for holdings that disagree with held_tier.
        upsell = (top1[entry] < tier1) & self.available[product]
        if held is not None:
            upsell &= ~held[owner, product]
        pp, po = row_positions(self.paid.indptr, idx)
        paid_key, paid_val = _sum_by_key(
            po * self.families.shape[0] + self.paid.indices[pp].astype(np.int64), self.paid.data[pp]
        )
        up_key = key[entry[upsell]]
        at = np.searchsorted(paid_key, up_key)
        at_c = np.minimum(at, max(paid_key.shape[0] - 1, 0))
        found = (at < paid_key.shape[0]) & (paid_key[at_c] == up_key) if paid_key.size else at < 0
        paid = np.where(found, paid_val[at_c] if paid_key.size else 0.0, 0.0)
        up_value = np.maximum(self.product_value[product[upsell]] - paid, 0.0)
        return owner, product, upsell, up_value

    def _family_index(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Products ordered by family, and where each family starts in that order."""
        return self._family_order, self._family_ptr

    def pairs(
        self, clients: npt.ArrayLike, products: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Type and value a list of (client, product) pairs.

        Parameters
        ----------
        clients, products : array-like of int
            Row and column indices, of equal length.

        Returns
        -------
        is_candidate, is_upsell : ndarray of bool
        value : ndarray of float64

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> cand = Candidates.build(Book.from_frames(contracts=c), "2024-06-30")
        >>> cand.pairs([0], [0])[0].tolist()
        [False]
        """
        ci = np.asarray(clients, dtype=np.int64)
        pi = np.asarray(products, dtype=np.int64)
        held = np.asarray(self.holdings[ci, pi]).ravel().astype(bool)
        fam = self.family[pi]
        held_tier = np.asarray(self.held_tier[ci, fam]).ravel()
        in_family = held_tier > 0
        available = self.available[pi]
        is_upsell = in_family & (held_tier < self.tier[pi] + 1) & ~held & available
        is_candidate = ~held & (~in_family | is_upsell) & available
        paid = np.asarray(self.paid[ci, fam]).ravel()
        value = self.product_value[pi] - np.where(is_upsell, paid, 0.0)
        return is_candidate, is_upsell, np.maximum(value, 0.0)


def _sum_by_key(
    key: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sorted distinct keys and the sum of the values of each (sparse duplicates add up)."""
    if key.shape[0] < 2:
        return key, values
    order = np.argsort(key, kind="stable")
    key, values = key[order], values[order]
    first = np.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    if first.all():
        return key, values
    starts = np.flatnonzero(first)
    return key[starts], np.add.reduceat(values, starts)


def _product_values(
    price: npt.NDArray[np.float64],
    contract_product: npt.NDArray[np.int32],
    contract_value: npt.NDArray[np.float64],
    n_products: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Value of each product: catalog price, else median contract value, else the overall median."""
    known = ~np.isnan(contract_value)
    medians = (
        pd.Series(contract_value[known])
        .groupby(contract_product[known])
        .median()
        .reindex(range(n_products))
        .to_numpy(dtype=np.float64)
    )
    value = np.where(np.isnan(price), medians, price)
    source = np.where(
        ~np.isnan(price), "price", np.where(np.isnan(medians), "default", "median_contract")
    )
    finite = value[~np.isnan(value)]
    # With no price and no contract value anywhere, every offer is worth one unit: priority then
    # ranks by propensity alone.
    fallback = float(np.median(finite)) if finite.size else 1.0
    value = np.where(np.isnan(value), fallback, value)
    return value.astype(np.float64), source.astype(np.str_)
