"""What a policy blocks at ``as_of``: the masks the recommender applies, and the log."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crosssell._sparse import row_positions, rows_dense
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.rules._base import Rule
from crosssell.rules._blocks import SCOPES, Blocks
from crosssell.rules._common import BoolArray, IntArray

_CLIENT_IDX: Final = Columns.client_idx
_PRODUCT_IDX: Final = Columns.product_idx
_SCOPE: Final = Columns.scope


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Suppression:
    """Everything a policy blocks at ``as_of``: masks to apply, and a log that says why.

    Attributes
    ----------
    client_any, client_cross_sell, client_upsell : ndarray of bool, shape (n_clients,)
        Clients for whom every offer, every cross-sell, or every upsell is blocked.
    product_any, product_cross_sell, product_upsell : ndarray of bool, shape (n_products,)
        Products blocked for every client (for every offer, cross-sell only, upsell only).
    pairs, pairs_cross_sell, pairs_upsell : scipy.sparse.csr_matrix of bool
        Blocked (client, product) pairs; rows are clients, columns are products.
    log : pandas.DataFrame
        One row per block: ``client_idx`` and ``product_idx`` (-1 = all), ``rule``, ``kind``,
        ``detail``, ``scope``.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> from crosssell.rules import AlreadyHeld, Policy, RuleContext
    >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
    ...                   "start_date": ["2024-01-01", "2024-01-01"]})
    >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
    >>> s = Policy([AlreadyHeld()]).evaluate(ctx)
    >>> s.mask([0, 1]).tolist()
    [[True, False], [False, True]]
    """

    client_any: BoolArray
    client_cross_sell: BoolArray
    client_upsell: BoolArray
    product_any: BoolArray
    product_cross_sell: BoolArray
    product_upsell: BoolArray
    pairs: sp.csr_matrix
    pairs_cross_sell: sp.csr_matrix
    pairs_upsell: sp.csr_matrix
    log: pd.DataFrame

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_clients, n_products)``.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> from crosssell.rules import Policy, RuleContext
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> Policy([]).evaluate(RuleContext.at(Book.from_frames(contracts=c), "2024")).shape
        (1, 1)
        """
        r, c = self.pairs.shape
        return int(r), int(c)

    def mask(self, rows: Any, is_upsell: Any = None, *, is_candidate: Any = None) -> BoolArray:
        """Dense blocked mask for a chunk of clients: True = do not offer.

        Parameters
        ----------
        rows : array-like of int
            Client indices of the chunk.
        is_upsell : array-like of bool, shape (len(rows), n_products), optional
            True where offering the product would be an upsell, False where a cross-sell. When
            omitted, blocks limited to one offer type apply to every pair (the safe side).
        is_candidate : array-like of bool, same shape, optional
            When given, pairs that are not candidates are reported blocked as well, so the
            result is the one mask to apply.

        Returns
        -------
        ndarray of bool, shape (len(rows), n_products)

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from crosssell import Book
        >>> from crosssell.rules import Policy, RenewalFirst, RuleContext
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"],
        ...                   "end_date": ["2024-07-15"]})
        >>> p = pd.DataFrame({"product_id": ["P1", "P2", "Q1"], "family": ["P", "P", "Q"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> s = Policy([RenewalFirst()]).evaluate(ctx)
        >>> s.mask([0], np.array([[True, True, False]])).tolist()
        [[False, False, True]]
        """
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        n_products = self.shape[1]
        up: BoolArray | None = None
        if is_upsell is not None:
            up = np.asarray(is_upsell, dtype=bool)
            if up.shape != (idx.shape[0], n_products):
                raise ValueError(
                    f"Suppression.mask: 'is_upsell' has shape {up.shape}; expected "
                    f"{(idx.shape[0], n_products)} (one row per client of the chunk)."
                )
        out = rows_dense(self.pairs, idx, dtype=bool)
        _or_rows(out, self.client_any[idx], None)
        if self.product_any.any():
            out |= self.product_any[None, :]
        # Scoped blocks touch few clients, few products or few pairs: apply them where they are
        # rather than through dense (clients x products) temporaries.
        for clients, products, pairs, offer_up in (
            (self.client_cross_sell, self.product_cross_sell, self.pairs_cross_sell, False),
            (self.client_upsell, self.product_upsell, self.pairs_upsell, True),
        ):
            # A scope applies where the offer has its type; unknown types count as both.
            scope = None if up is None else (up if offer_up else ~up)
            _or_rows(out, clients[idx], scope)
            cols = np.flatnonzero(products)
            if cols.size:
                out[:, cols] |= True if scope is None else scope[:, cols]
            if pairs.nnz:
                pos, owner = row_positions(pairs.indptr, idx)
                hit = pairs.data[pos].astype(bool)
                r, c = owner[hit], pairs.indices[pos][hit]
                out[r, c] |= True if scope is None else scope[r, c]
        if is_candidate is not None:
            out |= ~np.asarray(is_candidate, dtype=bool)
        return out

    def reasons(
        self, client_idx: int, product_idx: int, is_upsell: bool = False
    ) -> list[tuple[str, str, str]]:
        """Every rule that blocks one (client, product) pair, with its detail.

        Parameters
        ----------
        client_idx, product_idx : int
            Indices into the Book's clients and products.
        is_upsell : bool, default False
            Whether the offer would be an upsell (else a cross-sell).

        Returns
        -------
        list of (rule, kind, detail)
            Empty when nothing blocks the pair.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> from crosssell.rules import AlreadyHeld, Policy, RuleContext
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024")
        >>> s = Policy([AlreadyHeld()]).evaluate(ctx)
        >>> s.reasons(0, 0)
        [('already_held', 'eligibility', 'the client already holds this product')]
        """
        log = self.log
        c = log[_CLIENT_IDX].to_numpy()
        p = log[_PRODUCT_IDX].to_numpy()
        scope = log[_SCOPE].astype(object).to_numpy()
        hit = ((c == client_idx) | (c < 0)) & ((p == product_idx) | (p < 0))
        hit &= (scope == "any") | (scope == ("upsell" if is_upsell else "cross_sell"))
        rows = log[hit]
        return list(
            zip(
                rows[Columns.rule].astype(str).tolist(),
                rows[Columns.kind].astype(str).tolist(),
                rows[Columns.detail].astype(str).tolist(),
                strict=True,
            )
        )

    def to_frame(self, book: Book) -> pd.DataFrame:
        """Return the log in the caller's ids.

        Parameters
        ----------
        book : Book
            The Book the suppression was evaluated on.

        Returns
        -------
        pandas.DataFrame
            Columns ``client_id`` (``<NA>`` = every client), ``product_id`` (``<NA>`` = every
            product), ``rule``, ``kind``, ``detail``, ``scope``.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> from crosssell.rules import DoNotContact, Policy, RuleContext
        >>> k = pd.DataFrame({"client_id": [7, 8], "do_not_contact": [True, False]})
        >>> c = pd.DataFrame({"client_id": [7], "product_id": [1], "start_date": ["2024-01-01"]})
        >>> book = Book.from_frames(contracts=c, clients=k)
        >>> s = Policy([DoNotContact()]).evaluate(RuleContext.at(book, "2024-06-30"))
        >>> s.to_frame(book)[["client_id", "product_id", "rule"]]
           client_id  product_id            rule
        0          7        <NA>  do_not_contact
        """
        log = self.log
        return pd.DataFrame(
            {
                Columns.client: _external(book.client_ids.external, log[_CLIENT_IDX].to_numpy()),
                Columns.product: _external(book.product_ids.external, log[_PRODUCT_IDX].to_numpy()),
                Columns.rule: log[Columns.rule].astype(str).to_numpy(),
                Columns.kind: log[Columns.kind].astype(str).to_numpy(),
                Columns.detail: log[Columns.detail].astype(str).to_numpy(),
                _SCOPE: log[_SCOPE].astype(str).to_numpy(),
            }
        )

    def equals(self, other: Suppression) -> bool:
        """Whether two suppressions block exactly the same things with the same log.

        Parameters
        ----------
        other : Suppression

        Returns
        -------
        bool

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> from crosssell.rules import AlreadyHeld, Policy, RuleContext
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024")
        >>> Policy([AlreadyHeld()]).evaluate(ctx).equals(Policy([AlreadyHeld()]).evaluate(ctx))
        True
        """
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                same = np.array_equal(a, b)
            elif isinstance(a, pd.DataFrame):
                same = a.equals(b)
            else:
                same = a.shape == b.shape and (a != b).nnz == 0
            if not same:
                return False
        return True


def _or_rows(out: BoolArray, rows: BoolArray, scope: BoolArray | None) -> None:
    """OR ``scope`` (or True when None) into the rows of ``out`` flagged in ``rows``."""
    hit = np.flatnonzero(rows)
    if hit.size == 0:
        return
    if scope is None:
        out[hit] = True
    else:
        out[hit] |= scope[hit]


def _external(ids: pd.Index, idx: IntArray) -> pd.Series:
    """Caller's ids for indices, with ``<NA>`` where the index is -1."""
    missing = idx < 0
    if len(ids) == 0:
        return pd.Series(pd.array([pd.NA] * idx.shape[0], dtype="object"))
    values = pd.Series(ids.take(np.where(missing, 0, idx)))
    if not missing.any():
        return values
    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
        values.dtype, pd.api.extensions.ExtensionDtype
    ):
        values = values.astype("Int64")
    elif values.dtype == object:
        values = values.astype(object)
    return values.mask(pd.Series(missing), pd.NA)


def build_suppression(
    parts: list[tuple[Rule, Blocks]], n_clients: int, n_products: int
) -> Suppression:
    names = [r.name for r, _ in parts]
    kinds = [r.kind for r, _ in parts]
    sizes = np.array([len(b) for _, b in parts], dtype=np.int64)
    merged = Blocks.concat(b for _, b in parts)
    client, product = merged.client, merged.product
    scope_code = np.concatenate([np.empty(0, np.int8)] + [b.scope_code for _, b in parts])
    out: dict[str, Any] = {}
    for code, label in enumerate(("any", "cross_sell", "upsell")):
        sel = scope_code == code
        pair = sel & (client >= 0) & (product >= 0)
        matrix = sp.csr_matrix(
            (np.ones(int(pair.sum()), dtype=np.int32), (client[pair], product[pair])),
            shape=(n_clients, n_products),
        )
        matrix.sum_duplicates()
        matrix = matrix.astype(bool)
        clients = np.zeros(n_clients, dtype=bool)
        clients[client[sel & (client >= 0) & (product < 0)]] = True
        clients |= bool((sel & (client < 0) & (product < 0)).any())
        products = np.zeros(n_products, dtype=bool)
        products[product[sel & (client < 0) & (product >= 0)]] = True
        suffix = "any" if label == "any" else label
        out[f"client_{suffix}"] = clients
        out[f"product_{suffix}"] = products
        out["pairs" if label == "any" else f"pairs_{label}"] = matrix
    rule_codes = np.repeat(np.arange(len(parts), dtype=np.int64), sizes)
    kind_index, kind_labels = pd.factorize(pd.Index(kinds, dtype=object))
    kind_codes = np.asarray(kind_index, dtype=np.int64)
    log = pd.DataFrame(
        {
            _CLIENT_IDX: client,
            _PRODUCT_IDX: product,
            Columns.rule: pd.Categorical.from_codes(rule_codes, categories=pd.Index(names)),
            Columns.kind: pd.Categorical.from_codes(
                kind_codes[rule_codes], categories=pd.Index(kind_labels)
            ),
            Columns.detail: pd.Series(merged.detail, dtype=object),
            _SCOPE: pd.Categorical.from_codes(scope_code, categories=pd.Index(list(SCOPES))),
        }
    )
    return Suppression(log=log, **out)


def check_blocks(rule: Rule, blocks: Any, n_clients: int, n_products: int) -> Blocks:
    if not isinstance(blocks, Blocks):
        raise TypeError(
            f"Rule {rule.name!r} returned {type(blocks).__name__} from 'blocks'; it must return "
            "Blocks (see Blocks.clients, Blocks.products, Blocks.pairs)."
        )
    for axis, values, n in (
        ("client", blocks.client, n_clients),
        ("product", blocks.product, n_products),
    ):
        bad = (values < -1) | (values >= n)
        if bad.any():
            where = np.flatnonzero(bad)
            shown = "; ".join(f"row {i} {axis}={values[i]}" for i in where[:5])
            raise ValueError(
                f"Rule {rule.name!r} returned {axis} indices outside [-1, {n}) "
                f"in {where.size} rows "
                f"(showing {min(where.size, 5)}): {shown}. Indices must address the Book's "
                f"{axis}s, -1 meaning all."
            )
    return blocks
