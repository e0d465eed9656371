"""Rules with reasons, and the route-sales policy.

A rule looks at a :class:`RuleContext` (a Book at a point in time, with the holdings at that time)
and returns :class:`Blocks`: which clients, products or (client, product) pairs it blocks, for
which offer types, with one sentence per row that an account manager can read aloud. A
:class:`Policy` unions the blocks of its rules into a :class:`Suppression`: the masks the
recommender applies, and the log that ``why_not`` answers from.

Every rule reads only data dated on or before ``as_of``: an event after it does not exist yet, and
a complaint closed after it is still open. Rules work on whole arrays; none loops over clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal, Protocol, cast, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._sparse import row_positions, rows_dense
from crosssell.book import OPEN_END, Book
from crosssell.columns import Columns, EventType, RuleKind

__all__ = [
    "AlreadyHeld",
    "Blocks",
    "ChurnSignal",
    "ContactCap",
    "DoNotContact",
    "ExcludedByHolding",
    "FunctionRule",
    "LowSatisfaction",
    "NotSellable",
    "NotWorthProposing",
    "OpenComplaint",
    "Policy",
    "PrerequisiteMissing",
    "RecentDecline",
    "RenewalFirst",
    "Rule",
    "RuleContext",
    "Scope",
    "SegmentNotEligible",
    "Suppression",
    "route_sales",
    "rule",
]

Scope = Literal["any", "cross_sell", "upsell"]
"""Which offer types a block applies to."""

_SCOPES: Final = ("any", "cross_sell", "upsell")
_SCOPE_CODE = {name: i for i, name in enumerate(_SCOPES)}
# Up to this many rows, Blocks checks scopes with a dict rather than pandas
_SMALL = 64
_KINDS: Final = get_args(RuleKind)
_CLIENT_IDX: Final = Columns.client_idx
_PRODUCT_IDX: Final = Columns.product_idx
_SCOPE: Final = Columns.scope
_DAY_NS: Final = 86_400 * 10**9
_NAT: Final = np.iinfo(np.int64).min
# Dense scratch blocks (clients x restricted products) are cut to about this many cells.
_CHUNK_CELLS: Final = 1 << 24

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
TextArray = npt.NDArray[np.object_]


# --------------------------------------------------------------------------------------------
# small vectorised helpers
# --------------------------------------------------------------------------------------------


def _text(*parts: Any) -> TextArray:
    """Concatenate strings and string arrays element-wise into an object array."""
    out: Any = ""
    for part in parts:
        piece = part if isinstance(part, str) else np.asarray(part).astype(str)
        out = np.strings.add(out, piece)
    return np.asarray(out, dtype=object).reshape(-1) if np.ndim(out) else np.array([out], object)


def _dates(ns: Any) -> npt.NDArray[np.str_]:
    """Format int64 nanoseconds as ``YYYY-MM-DD`` strings."""
    return np.datetime_as_string(np.asarray(ns, dtype=np.int64).view("datetime64[ns]"), unit="D")


def _fmt(template: str, values: Any) -> npt.NDArray[np.str_]:
    """printf-format every number of an array (``"%.1f"``)."""
    return np.asarray(np.strings.mod(np.array(template), np.asarray(values)), dtype=str)


def _filled(text: str | Any, n: int, what: str) -> TextArray:
    """Broadcast one string, or check an array, to ``n`` object entries."""
    if isinstance(text, str):
        out = np.empty(n, dtype=object)
        out[:] = text
        return out
    arr = np.asarray(text, dtype=object).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(
            f"Blocks: '{what}' has {arr.shape[0]} entries, expected {n} (one per row)."
        )
    return arr


def _check_int(owner: str, param: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(
            f"The '{param}' parameter of {owner} must be an int in the range [{low}, inf). "
            f"Got {value!r} instead."
        )


def _check_real(owner: str, param: str, value: Any, low: float, high: float) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and low <= float(value) <= high
    )
    if not ok:
        lo = "-inf" if low == -np.inf else f"{low}"
        hi = "inf" if high == np.inf else f"{high}"
        lb = "(" if low == -np.inf else "["
        rb = ")" if high == np.inf else "]"
        raise ValueError(
            f"The '{param}' parameter of {owner} must be a float in the range {lb}{lo}, {hi}{rb}. "
            f"Got {value!r} instead."
        )


def _check_choice(owner: str, param: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        shown = "{" + ", ".join(repr(c) for c in choices) + "}"
        raise ValueError(
            f"The '{param}' parameter of {owner} must be a str among {shown}. "
            f"Got {value!r} instead."
        )


def _check_name(owner: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"The 'name' parameter of {owner} must be a non-empty str. Got {name!r} instead."
        )


# --------------------------------------------------------------------------------------------
# Blocks and the context rules read
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Blocks:
    """What one rule blocks: clients, products or (client, product) pairs, each with a reason.

    Attributes
    ----------
    client : ndarray of int64
        Client index (rows of the Book); ``-1`` means every client.
    product : ndarray of int64
        Product index (columns of the Book); ``-1`` means every product of that client.
    detail : ndarray of object
        One readable sentence per row, e.g. ``"complaint #R17 open since 2025-05-02 (59 days)"``.
    scope : ndarray of object
        ``"any"``, ``"cross_sell"`` or ``"upsell"``: the offer types the row blocks.

    Raises
    ------
    ValueError
        If the arrays differ in length or a scope is not one of the three.

    Examples
    --------
    >>> b = Blocks.clients([0, 2], "the client is marked do-not-contact")
    >>> len(b), b.product.tolist(), b.scope.tolist()
    (2, [-1, -1], ['any', 'any'])
    >>> len(Blocks.concat([b, Blocks.pairs([1], [3], "already held")]))
    3
    """

    client: IntArray
    product: IntArray
    detail: TextArray
    scope: TextArray
    _scope_code: npt.NDArray[np.int8] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        client = np.asarray(self.client, dtype=np.int64).reshape(-1)
        product = np.asarray(self.product, dtype=np.int64).reshape(-1)
        n = client.shape[0]
        if product.shape[0] != n:
            raise ValueError(
                f"Blocks: 'product' has {product.shape[0]} entries but 'client' has {n}; "
                "give one product index (or -1) per row."
            )
        detail = _filled(self.detail, n, "detail")
        scope = _filled(self.scope, n, "scope")
        if n <= _SMALL:
            # few rows (one client in real time, or an empty rule): a dict beats factorize
            code = np.array([_SCOPE_CODE.get(v, -1) for v in scope.tolist()], dtype=np.int64)
        else:
            codes, uniques = pd.factorize(scope)
            code = pd.Index(_SCOPES).get_indexer(pd.Index(uniques, dtype=object))[codes]
        if (code < 0).any():
            bad = code < 0
            shown = pd.unique(scope[bad])[:5].tolist()
            raise ValueError(
                f"Blocks: 'scope' must be one of {list(_SCOPES)}; got {shown} in "
                f"{int(bad.sum())} rows."
            )
        object.__setattr__(self, "_scope_code", code.astype(np.int8))
        object.__setattr__(self, "client", client)
        object.__setattr__(self, "product", product)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "scope", scope)

    def __len__(self) -> int:
        return int(self.client.shape[0])

    @classmethod
    def empty(cls) -> Blocks:
        """Block nothing.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> len(Blocks.empty())
        0
        """
        none = np.empty(0, dtype=np.int64)
        return cls(client=none, product=none, detail=np.empty(0, object), scope=np.empty(0, object))

    @classmethod
    def clients(cls, idx: Any, detail: str | Any, *, scope: Scope | Any = "any") -> Blocks:
        """Block every product for some clients.

        Parameters
        ----------
        idx : array-like of int
            Client indices.
        detail : str or array-like of str
            One sentence for all rows, or one per row.
        scope : {"any", "cross_sell", "upsell"} or array-like, default "any"
            Offer types blocked.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> Blocks.clients([4], "renewal first", scope="cross_sell").scope.tolist()
        ['cross_sell']
        """
        client = np.asarray(idx, dtype=np.int64).reshape(-1)
        n = client.shape[0]
        return cls(
            client=client,
            product=np.full(n, -1, dtype=np.int64),
            detail=_filled(detail, n, "detail"),
            scope=_filled(scope, n, "scope"),
        )

    @classmethod
    def products(cls, idx: Any, detail: str | Any, *, scope: Scope | Any = "any") -> Blocks:
        """Block some products for every client.

        Parameters
        ----------
        idx : array-like of int
            Product indices.
        detail : str or array-like of str
            One sentence for all rows, or one per row.
        scope : {"any", "cross_sell", "upsell"} or array-like, default "any"
            Offer types blocked.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> Blocks.products([1, 2], "not sellable").client.tolist()
        [-1, -1]
        """
        product = np.asarray(idx, dtype=np.int64).reshape(-1)
        n = product.shape[0]
        return cls(
            client=np.full(n, -1, dtype=np.int64),
            product=product,
            detail=_filled(detail, n, "detail"),
            scope=_filled(scope, n, "scope"),
        )

    @classmethod
    def pairs(
        cls, client: Any, product: Any, detail: str | Any, *, scope: Scope | Any = "any"
    ) -> Blocks:
        """Block (client, product) pairs.

        Parameters
        ----------
        client, product : array-like of int
            Aligned client and product indices.
        detail : str or array-like of str
            One sentence for all rows, or one per row.
        scope : {"any", "cross_sell", "upsell"} or array-like, default "any"
            Offer types blocked.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> Blocks.pairs([0, 1], [2, 2], "declined").product.tolist()
        [2, 2]
        """
        c = np.asarray(client, dtype=np.int64).reshape(-1)
        n = c.shape[0]
        return cls(
            client=c,
            product=np.asarray(product, dtype=np.int64).reshape(-1),
            detail=_filled(detail, n, "detail"),
            scope=_filled(scope, n, "scope"),
        )

    @classmethod
    def concat(cls, parts: Iterable[Blocks]) -> Blocks:
        """Stack several Blocks into one.

        Parameters
        ----------
        parts : iterable of Blocks

        Returns
        -------
        Blocks

        Examples
        --------
        >>> len(Blocks.concat([Blocks.clients([0], "a"), Blocks.products([1], "b")]))
        2
        """
        items = [p for p in parts if len(p)]
        if not items:
            return cls.empty()
        if len(items) == 1:
            return items[0]
        return cls(
            client=np.concatenate([p.client for p in items]),
            product=np.concatenate([p.product for p in items]),
            detail=np.concatenate([p.detail for p in items]),
            scope=np.concatenate([p.scope for p in items]),
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RuleContext:
    """A Book seen at ``as_of``: what every rule reads.

    Attributes
    ----------
    book : Book
        The validated inputs.
    as_of : pandas.Timestamp
        The point in time; rules ignore everything dated later.
    holdings : scipy.sparse.csr_matrix of bool
        Active holdings at ``as_of``; rows are clients (``book.client_ids``), columns are products
        (``book.product_ids``).

    Raises
    ------
    ValueError
        If ``holdings`` does not have one row per client and one column per product.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
    ...                   "start_date": ["2024-01-01", "2025-01-01"]})
    >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
    >>> ctx.holdings.toarray().tolist()
    [[True, False], [False, False]]
    """

    book: Book
    as_of: pd.Timestamp
    holdings: sp.csr_matrix
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        as_of = pd.Timestamp(self.as_of)
        if as_of.tzinfo is not None:
            as_of = as_of.tz_convert(None)
        shape = (len(self.book.client_ids), len(self.book.product_ids))
        holdings = sp.csr_matrix(cast(Any, self.holdings), dtype=bool)
        if holdings.shape != shape:
            raise ValueError(
                f"RuleContext: 'holdings' has shape {holdings.shape}; expected {shape} "
                "(rows are the Book's clients, columns its products)."
            )
        object.__setattr__(self, "as_of", as_of)
        object.__setattr__(self, "holdings", holdings)

    def share_catalogue(self, other: RuleContext) -> None:
        """Reuse what ``other`` derived from the catalogue (families, requires/excludes lists).

        For a small Book built on the same catalogue, e.g. one client's fresh data scored
        with a fitted model: the catalogue is parsed once per model, not once per call.

        Parameters
        ----------
        other : RuleContext
            A context over a Book with the same product ids, in the same order.

        Raises
        ------
        ValueError
            If the two Books' product ids differ.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> book = Book.from_frames(contracts=c)
        >>> fitted = RuleContext.at(book, "2024-06-30")
        >>> fitted.family_labels.tolist()
        ['P1']
        >>> fresh = RuleContext.at(book, "2024-07-31")
        >>> fresh.share_catalogue(fitted)
        >>> fresh.family_labels.tolist()
        ['P1']
        """
        if not self.book.product_ids.external.equals(other.book.product_ids.external):
            raise ValueError(
                "RuleContext.share_catalogue: the two Books have different product ids; "
                "only a context over the same catalogue can be shared."
            )
        for key, value in other._cache.items():
            if key in _CATALOGUE_KEYS or key.startswith("list:"):
                self._cache.setdefault(key, value)

    @classmethod
    def at(cls, book: Book, as_of: Any, *, holdings: sp.spmatrix | None = None) -> RuleContext:
        """Build a context, computing the active holdings at ``as_of`` when not given.

        Parameters
        ----------
        book : Book
        as_of : str or datetime-like
        holdings : sparse matrix, optional
            Active holdings, rows are clients and columns are products; computed from the
            contracts (``start <= as_of < end``) when omitted.

        Returns
        -------
        RuleContext

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> RuleContext.at(Book.from_frames(contracts=c), "2023-12-31").holdings.nnz
        0
        """
        ts = pd.Timestamp(as_of)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(None)
        if holdings is None:
            ca = book.contract_arrays
            t = ts.value
            active = (ca.start <= t) & (t < ca.end)
            shape = (len(book.client_ids), len(book.product_ids))
            data = np.ones(int(active.sum()), dtype=np.int32)
            holdings = sp.csr_matrix(
                (data, (ca.client[active].astype(np.int64), ca.product[active].astype(np.int64))),
                shape=shape,
            )
        return cls(book=book, as_of=ts, holdings=sp.csr_matrix(cast(Any, holdings), dtype=bool))

    @property
    def as_of_ns(self) -> int:
        """``as_of`` as int64 nanoseconds since the epoch.

        Examples
        --------
        >>> import pandas as pd, scipy.sparse as sp
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> RuleContext.at(Book.from_frames(contracts=c), "1970-01-02").as_of_ns
        86400000000000
        """
        return int(self.as_of.value)

    @property
    def n_clients(self) -> int:
        """Number of clients (rows).

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> RuleContext.at(Book.from_frames(contracts=c), "2024-06-30").n_clients
        1
        """
        return int(self.holdings.shape[0])

    @property
    def n_products(self) -> int:
        """Number of products (columns).

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> RuleContext.at(Book.from_frames(contracts=c), "2024-06-30").n_products
        1
        """
        return int(self.holdings.shape[1])

    def events(self, *types: str, days: int | None = None) -> pd.DataFrame:
        """Events dated on or before ``as_of`` (and, with ``days``, after ``as_of - days``).

        Parameters
        ----------
        *types : str
            Event types to keep (see :class:`~crosssell.columns.EventType`); all when none given.
        days : int, optional
            Keep only events in the window of this many days ending at ``as_of``.

        Returns
        -------
        pandas.DataFrame
            Rows of ``book.event_table``, in date order.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1", "C1"], "date": ["2024-03-01", "2024-09-01"],
        ...                   "type": ["offer_made", "offer_made"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> len(ctx.events("offer_made")), len(ctx.events("offer_made", days=30))
        (1, 0)
        """
        key = "events"
        if key not in self._cache:
            table = self.book.event_table
            dates = _ns(table[Columns.date]) if len(table) else np.empty(0, np.int64)
            stop = int(np.searchsorted(dates, self.as_of_ns, side="right"))
            kept = table.iloc[:stop]
            # Types repeat a lot: compare a handful of distinct labels, not every row.
            type_codes, type_labels = pd.factorize(kept[Columns.type])
            self._cache[key] = (kept, dates[:stop], type_codes, pd.Index(type_labels, dtype=object))
        table, dates, type_codes, type_labels = cast(
            tuple[pd.DataFrame, IntArray, IntArray, pd.Index], self._cache[key]
        )
        keep = np.ones(len(table), dtype=bool)
        if types:
            wanted = np.flatnonzero(type_labels.isin(types))
            keep &= np.isin(type_codes, wanted)
        if days is not None:
            keep &= dates > self.as_of_ns - int(days) * _DAY_NS
        return table if keep.all() else table[keep]

    @property
    def family_codes(self) -> IntArray:
        """Family of every product as a code into :attr:`family_labels` (one per product).

        A product without a family is its own family.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["A1", "A2", "B1"], "family": ["A", "A", "B"]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["A1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> ctx.family_codes.tolist(), ctx.family_labels.tolist()
        ([0, 0, 1], ['A', 'B'])
        """
        return self._families()[0]

    @property
    def family_labels(self) -> pd.Index:
        """Family names, indexed by :attr:`family_codes`.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> RuleContext.at(Book.from_frames(contracts=c), "2024-06-30").family_labels.tolist()
        ['P1']
        """
        return self._families()[1]

    def _families(self) -> tuple[IntArray, pd.Index]:
        if "families" not in self._cache:
            table = self.book.product_table
            own = pd.Series(self.book.product_ids.external.astype(str), index=table.index)
            if Columns.family in table.columns:
                fam = table[Columns.family].astype(object).where(table[Columns.family].notna(), own)
            else:
                fam = own
            codes, labels = pd.factorize(fam.astype(str))
            self._cache["families"] = (np.asarray(codes, dtype=np.int64), pd.Index(labels))
        return cast(tuple[IntArray, pd.Index], self._cache["families"])

    def _product_text(self) -> npt.NDArray[np.str_]:
        if "product_text" not in self._cache:
            self._cache["product_text"] = np.asarray(
                self.book.product_ids.external.astype(str), dtype=str
            )
        return cast(npt.NDArray[np.str_], self._cache["product_text"])

    def _family_matrix(self) -> sp.csr_matrix:
        """One-hot products x families (int32)."""
        if "family_matrix" not in self._cache:
            codes, labels = self._families()
            n = codes.shape[0]
            self._cache["family_matrix"] = sp.csr_matrix(
                (np.ones(n, dtype=np.int32), (np.arange(n), codes)), shape=(n, len(labels))
            )
        return cast(sp.csr_matrix, self._cache["family_matrix"])

    def _product_lists(self, column: str) -> tuple[sp.csr_matrix, IntArray, pd.Series]:
        """Products x products matrix of a list column, listed lengths, and a readable list."""
        key = f"list:{column}"
        if key not in self._cache:
            n = self.n_products
            table = self.book.product_table
            if column in table.columns:
                lists = table[column].map(_as_tuple)
            else:
                lists = pd.Series([()] * n, index=table.index, dtype=object)
            lengths = np.asarray(lists.map(len), dtype=np.int64)
            exploded = lists.explode().dropna()
            target = self.book.product_ids.to_index(
                exploded.to_numpy(dtype=object), missing="ignore"
            )
            known = target >= 0
            rows = np.asarray(exploded.index, dtype=np.int64)[known]
            matrix = sp.csr_matrix(
                (np.ones(int(known.sum()), dtype=np.int32), (rows, target[known])), shape=(n, n)
            )
            matrix.sum_duplicates()
            readable = lists.map(lambda t: ", ".join(str(x) for x in t))
            self._cache[key] = (matrix, lengths, readable)
        return cast(tuple[sp.csr_matrix, IntArray, pd.Series], self._cache[key])


# RuleContext cache entries that depend on the catalogue only (plus "list:<column>")
_CATALOGUE_KEYS = frozenset({"families", "product_text", "family_matrix"})


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _ns(values: Any) -> IntArray:
    """Datetime-like column as int64 nanoseconds (NaT as the smallest int64)."""
    return np.asarray(pd.Series(values).to_numpy(dtype="datetime64[ns]").view(np.int64))


def _complement(
    n_clients: int, cols: IntArray, allowed_rows: IntArray, allowed_cols: IntArray
) -> tuple[IntArray, IntArray]:
    """Every (client, k) for k in ``range(len(cols))`` except the allowed ones, as pairs.

    ``allowed_cols`` are positions into ``cols``; the returned products are ``cols[k]``.
    """
    width = max(1, _CHUNK_CELLS // max(n_clients, 1))
    out_c: list[IntArray] = []
    out_p: list[IntArray] = []
    for start in range(0, cols.shape[0], width):
        stop = min(start + width, cols.shape[0])
        blocked = np.ones((n_clients, stop - start), dtype=bool)
        sel = (allowed_cols >= start) & (allowed_cols < stop)
        blocked[allowed_rows[sel], allowed_cols[sel] - start] = False
        r, k = np.nonzero(blocked)
        out_c.append(r.astype(np.int64))
        out_p.append(cols[k + start])
    if not out_c:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_c), np.concatenate(out_p)


# --------------------------------------------------------------------------------------------
# the rule protocol and the built-in rules
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Rule(Protocol):
    """What a rule is: a name, a kind, and a vectorised ``blocks`` method.

    Built-in rules are frozen dataclasses; a user rule may be any object with these members, or a
    :class:`FunctionRule` (see :func:`rule`).

    Examples
    --------
    >>> isinstance(DoNotContact(), Rule)
    True
    """

    @property
    def name(self) -> str:
        """Unique name of the rule within a policy."""
        ...

    @property
    def kind(self) -> RuleKind:
        """``eligibility``, ``applicability``, ``suitability`` or ``contact``."""
        ...

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Return what the rule blocks at ``ctx.as_of``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AlreadyHeld:
    """Never offer a product the client actively holds.

    Parameters
    ----------
    name : str, default "already_held"
    allow_seat_expansion : bool, default False
        When True, a held product may still be offered as an upsell (more seats or units of it).

    Examples
    --------
    >>> AlreadyHeld()
    AlreadyHeld(name='already_held', allow_seat_expansion=False, kind='eligibility')
    """

    name: str = "already_held"
    allow_seat_expansion: bool = False
    kind: RuleKind = field(default="eligibility", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every (client, product) pair held at ``as_of``.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> AlreadyHeld().blocks(ctx).detail[0]
        'the client already holds this product'
        """
        coo = ctx.holdings.tocoo()
        if self.allow_seat_expansion:
            return Blocks.pairs(
                coo.row,
                coo.col,
                "the client already holds this product; only more seats of it may be offered",
                scope="cross_sell",
            )
        return Blocks.pairs(coo.row, coo.col, "the client already holds this product")


@dataclass(frozen=True, slots=True, kw_only=True)
class NotSellable:
    """Never offer a product the catalog marks as not sellable.

    Parameters
    ----------
    name : str, default "not_sellable"

    Examples
    --------
    >>> NotSellable().kind
    'eligibility'
    """

    name: str = "not_sellable"
    kind: RuleKind = field(default="eligibility", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block, for every client, each product whose ``sellable`` flag is False.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "sellable": [True, False]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> NotSellable().blocks(ctx).detail.tolist()
        ['P2 is marked not sellable in the catalog']
        """
        table = ctx.book.product_table
        if Columns.sellable not in table.columns:
            return Blocks.empty()
        sellable = table[Columns.sellable].astype(object).fillna(value=True).astype(bool)
        idx = np.flatnonzero(~sellable.to_numpy(dtype=bool))
        text = _text(ctx._product_text()[idx], " is marked not sellable in the catalog")
        return Blocks.products(idx, text if idx.size else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class PrerequisiteMissing:
    """Offer a product only to clients holding what it requires (the catalog's ``requires``).

    Parameters
    ----------
    name : str, default "prerequisite_missing"
    mode : {"all", "any"}, default "any"
        One of the listed products is enough by default (a base product in any tier); ``"all"``
        asks for every one of them.

    Raises
    ------
    ValueError
        If ``mode`` is not ``"all"`` or ``"any"``.

    Examples
    --------
    >>> PrerequisiteMissing(mode="any").mode
    'any'
    """

    name: str = "prerequisite_missing"
    mode: Literal["all", "any"] = "any"
    kind: RuleKind = field(default="eligibility", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_choice(type(self).__name__, "mode", self.mode, ("all", "any"))

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs where the client lacks the product's prerequisites.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "requires": [(), ("P1",)]})
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2025-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> b = PrerequisiteMissing().blocks(ctx)
        >>> b.client.tolist(), b.product.tolist(), b.detail[0]
        ([1], [1], 'P2 requires P1 to be held first')
        """
        matrix, lengths, readable = ctx._product_lists(Columns.requires)
        cols = np.flatnonzero(lengths > 0)
        if cols.size == 0 or ctx.n_clients == 0:
            return Blocks.empty()
        need = lengths[cols] if self.mode == "all" else np.ones(cols.size, dtype=np.int64)
        held = ctx.holdings.astype(np.int32)
        counts = (held @ matrix[cols].T).tocoo()
        ok = counts.data >= need[counts.col]
        client, product = _complement(
            ctx.n_clients, cols, counts.row[ok].astype(np.int64), counts.col[ok].astype(np.int64)
        )
        lists = readable.to_numpy(dtype=str)
        many = "one of " if self.mode == "any" else ""
        many_arr = np.where(lengths > 1, many, "")
        per_product = _text(ctx._product_text(), " requires ", many_arr, lists, " to be held first")
        return Blocks.pairs(client, product, per_product[product])


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludedByHolding:
    """Never offer a product that cannot be held together with one the client holds.

    Exclusions work both ways: if A excludes B, a holder of A is not offered B and a holder of B
    is not offered A.

    Parameters
    ----------
    name : str, default "excluded_by_holding"

    Examples
    --------
    >>> ExcludedByHolding().name
    'excluded_by_holding'
    """

    name: str = "excluded_by_holding"
    kind: RuleKind = field(default="eligibility", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs where a held product excludes the product (or back).

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "excludes": [("P2",), ()]})
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> b = ExcludedByHolding().blocks(ctx)
        >>> sorted(zip(b.client.tolist(), b.product.tolist()))
        [(0, 1), (1, 0)]
        >>> b.detail[b.client == 0][0]
        'P2 cannot be held together with P1, which the client holds'
        """
        matrix, _, _ = ctx._product_lists(Columns.excludes)
        if matrix.nnz == 0:
            return Blocks.empty()
        both = ((matrix + matrix.T) > 0).astype(np.int32).tocsr()
        conflicts = (ctx.holdings.astype(np.int32) @ both).tocoo()
        client = conflicts.row.astype(np.int64)
        product = conflicts.col.astype(np.int64)
        if client.size == 0:
            return Blocks.empty()
        # Name the held products behind each pair: the held x excluded overlap, per pair, is small.
        pair_key = pd.DataFrame({"c": client, "p": product})
        held = ctx.holdings.tocoo()
        excl = both.tocoo()
        held_df = pd.DataFrame({"c": held.row.astype(np.int64), "h": held.col.astype(np.int64)})
        excl_df = pd.DataFrame({"h": excl.row.astype(np.int64), "p": excl.col.astype(np.int64)})
        why = held_df.merge(excl_df, on="h").merge(pair_key, on=["c", "p"])
        why["h"] = ctx._product_text()[why["h"].to_numpy()]
        names = why.groupby(["c", "p"], sort=True)["h"].agg(", ".join).reset_index()
        c = names["c"].to_numpy(dtype=np.int64)
        p = names["p"].to_numpy(dtype=np.int64)
        text = _text(
            ctx._product_text()[p],
            " cannot be held together with ",
            names["h"].to_numpy(dtype=str),
            ", which the client holds",
        )
        return Blocks.pairs(c, p, text)


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentNotEligible:
    """Offer a product restricted to some segments only to clients in those segments.

    A product whose ``segments`` is empty (None) is offered to every segment.

    Parameters
    ----------
    name : str, default "segment_not_eligible"

    Examples
    --------
    >>> SegmentNotEligible().kind
    'eligibility'
    """

    name: str = "segment_not_eligible"
    kind: RuleKind = field(default="eligibility", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs where the client's segment is not among the product's.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "segments": [None, ("SME",)]})
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "segment": ["SME", "Retail"]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p, clients=k), "2024-06-30")
        >>> b = SegmentNotEligible().blocks(ctx)
        >>> b.client.tolist(), b.product.tolist(), b.detail[0]
        ([1], [1], "P2 is offered only to segment SME; the client's segment is Retail")
        """
        products = ctx.book.product_table
        if Columns.segments not in products.columns or ctx.n_clients == 0:
            return Blocks.empty()
        restricted = products[Columns.segments].map(
            lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else _as_tuple(v)
        )
        cols = np.flatnonzero(restricted.notna().to_numpy(dtype=bool))
        if cols.size == 0:
            return Blocks.empty()
        clients = ctx.book.client_table
        if Columns.segment in clients.columns:
            seg = clients[Columns.segment].astype(object)
        else:
            seg = pd.Series([None] * ctx.n_clients, dtype=object)
        exploded = restricted.iloc[cols].reset_index(drop=True).explode().dropna()
        labels = pd.Index(pd.unique(pd.concat([seg.dropna(), exploded]).astype(str)))
        client_code = labels.get_indexer(seg.astype(str).where(seg.notna(), None))
        client_code = np.where(seg.notna().to_numpy(dtype=bool), client_code, -1)
        seg_code = labels.get_indexer(exploded.astype(str))
        # Row len(labels) stands for "no segment" and is allowed nowhere.
        allowed = np.zeros((len(labels) + 1, cols.size), dtype=bool)
        allowed[seg_code, np.asarray(exploded.index, dtype=np.int64)] = True
        row = np.where(client_code >= 0, client_code, len(labels)).astype(np.int64)
        per_client = allowed[row]
        ok_rows, ok_cols = np.nonzero(per_client)
        client, product = _complement(
            ctx.n_clients, cols, ok_rows.astype(np.int64), ok_cols.astype(np.int64)
        )
        if client.size == 0:
            return Blocks.empty()
        lists = restricted.iloc[cols].map(lambda t: ", ".join(str(x) for x in t)).to_numpy(str)
        plural = np.where(restricted.iloc[cols].map(len).to_numpy() > 1, "s", "")
        head = _text(ctx._product_text()[cols], " is offered only to segment", plural, " ", lists)
        tails = np.append(
            _text("; the client's segment is ", np.asarray(labels.astype(str), dtype=str)),
            "; the client has no segment",
        ).astype(str)
        table = _text(
            np.broadcast_to(head.astype(str)[None, :], allowed.shape),
            np.broadcast_to(tails[:, None], allowed.shape),
        ).reshape(allowed.shape)
        position = np.searchsorted(cols, product)
        return Blocks.pairs(client, product, table[row[client], position])


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenComplaint:
    """No offers at all while a complaint is open, nor for a cool-off period after it closes.

    Openings and closings are matched by ``ref`` when the events carry one; otherwise a client's
    k-th closing answers its k-th opening, in date order. A closing dated after ``as_of`` does not
    exist yet, so the complaint is still open.

    Parameters
    ----------
    name : str, default "open_complaint"
    cool_off_days : int, default 30
        Days after the closing during which offers stay blocked.

    Raises
    ------
    ValueError
        If ``cool_off_days`` is negative.

    Examples
    --------
    >>> OpenComplaint(cool_off_days=14).cool_off_days
    14
    """

    name: str = "open_complaint"
    cool_off_days: int = 30
    kind: RuleKind = field(default="applicability", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_int(type(self).__name__, "cool_off_days", self.cool_off_days, 0)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients with an open complaint or one closed within the cool-off.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            One row per complaint that blocks, scope ``"any"``.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"], "date": ["2024-06-01"],
        ...                   "type": ["complaint_opened"], "ref": ["R17"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> OpenComplaint().blocks(ctx).detail.tolist()
        ['complaint #R17 open since 2024-06-01 (29 days)']
        """
        ev = ctx.events(EventType.complaint_opened, EventType.complaint_closed)
        if len(ev) == 0:
            return Blocks.empty()
        ref = ev[Columns.ref] if Columns.ref in ev.columns else pd.Series(pd.NA, index=ev.index)
        has_ref = ref.notna().to_numpy(dtype=bool)
        frame = pd.DataFrame(
            {
                "c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64),
                "has_ref": has_ref,
                "ref": np.where(has_ref, ref.astype(object).astype(str).to_numpy(dtype=object), ""),
                "opened": (ev[Columns.type] == EventType.complaint_opened).to_numpy(dtype=bool),
                "t": _ns(ev[Columns.date]),
            }
        )
        keys = ["c", "has_ref", "ref"]
        frame["k"] = frame.groupby([*keys, "opened"], sort=False).cumcount()
        opens = frame[frame["opened"]]
        closes = frame.loc[~frame["opened"], [*keys, "k", "t"]].rename(columns={"t": "closed_t"})
        # A datetime column keeps unmatched openings as NaT through the merge, without floats.
        closes["closed_t"] = closes["closed_t"].to_numpy(dtype=np.int64).view("datetime64[ns]")
        merged = opens.merge(closes, on=[*keys, "k"], how="left")
        opened_t = merged["t"].to_numpy(dtype=np.int64)
        close_ns = _ns(merged["closed_t"])
        has_close = close_ns != _NAT
        # A closing dated before its opening answers nothing: the complaint stays open.
        still_open = ~has_close | (close_ns < opened_t)
        resume = close_ns + self.cool_off_days * _DAY_NS
        cooling = ~still_open & (ctx.as_of_ns < resume)
        blocking = still_open | cooling
        if not blocking.any():
            return Blocks.empty()
        label = np.where(
            merged["has_ref"].to_numpy(dtype=bool),
            _text("complaint #", merged["ref"].to_numpy(dtype=str)).astype(str),
            "complaint",
        )
        age = (ctx.as_of_ns - opened_t) // _DAY_NS
        unit = np.where(age == 1, " day)", " days)")
        open_text = _text(label, " open since ", _dates(opened_t), " (", age, unit)
        cool_text = _text(
            label,
            " closed on ",
            _dates(close_ns),
            "; offers resume on ",
            _dates(resume),
            f" after a {self.cool_off_days}-day cool-off",
        )
        detail = np.where(still_open, open_text, cool_text)
        client = merged["c"].to_numpy(dtype=np.int64)
        return Blocks.clients(client[blocking], detail[blocking])


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentDecline:
    """Do not offer again, for a while, what the client has declined.

    An ``offer_declined`` event names a product or a family; one naming a family blocks every
    product of that family. With ``scope="family"`` a declined product blocks its whole family.

    Parameters
    ----------
    name : str, default "recent_decline"
    days : int, default 90
        Days after the decline during which the offer stays blocked.
    scope : {"product", "family"}, default "product"
        What a declined product blocks.

    Raises
    ------
    ValueError
        If ``days`` is negative or ``scope`` is not one of the two.

    Examples
    --------
    >>> RecentDecline(days=60, scope="family")
    RecentDecline(name='recent_decline', days=60, scope='family', kind='contact')
    """

    name: str = "recent_decline"
    days: int = 90
    scope: Literal["product", "family"] = "product"
    kind: RuleKind = field(default="contact", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_int(type(self).__name__, "days", self.days, 0)
        _check_choice(type(self).__name__, "scope", self.scope, ("product", "family"))

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs declined within the last ``days`` days.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            One row per blocked pair, naming the latest decline.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"], "date": ["2024-06-01"],
        ...                   "type": ["offer_declined"], "product_id": ["P1"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> RecentDecline().blocks(ctx).detail.tolist()
        ['declined P1 on 2024-06-01; it may be offered again from 2024-08-30']
        """
        if self.days == 0:
            return Blocks.empty()
        ev = ctx.events(EventType.offer_declined, days=self.days)
        if len(ev) == 0:
            return Blocks.empty()
        codes, labels = ctx.family_codes, ctx.family_labels
        product = ev[_PRODUCT_IDX].to_numpy(dtype=np.int64)
        if Columns.family in ev.columns:
            named = labels.get_indexer(pd.Index(ev[Columns.family].astype(object).astype(str)))
        else:
            named = np.full(len(ev), -1, dtype=np.int64)
        family = np.where(product >= 0, codes[np.maximum(product, 0)], named).astype(np.int64)
        by_family = (product < 0) | (self.scope == "family")
        frame = pd.DataFrame(
            {
                "c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64),
                "p": product,
                "f": family,
                "whole": by_family,
                "t": _ns(ev[Columns.date]),
            }
        )
        single = frame[~frame["whole"] & (frame["p"] >= 0)]
        members = pd.DataFrame({"f": codes, "member": np.arange(codes.shape[0], dtype=np.int64)})
        whole = frame[frame["whole"] & (frame["f"] >= 0)].merge(members, on="f")
        whole = whole.drop(columns="p").rename(columns={"member": "p"})
        both = pd.concat([single, whole], ignore_index=True).sort_values("t", kind="stable")
        both = both.drop_duplicates(["c", "p"], keep="last")
        if len(both) == 0:
            return Blocks.empty()
        t = both["t"].to_numpy(dtype=np.int64)
        p = both["p"].to_numpy(dtype=np.int64)
        f = both["f"].to_numpy(dtype=np.int64)
        is_family = both["whole"].to_numpy(dtype=bool)
        names = ctx._product_text()
        fam_names = np.asarray(labels.astype(str), dtype=str)
        again = _dates(t + self.days * _DAY_NS)
        family_text = _text(
            "declined the ",
            fam_names[f],
            " family on ",
            _dates(t),
            "; its products may be offered again from ",
            again,
        )
        product_text = _text(
            "declined ", names[p], " on ", _dates(t), "; it may be offered again from ", again
        )
        return Blocks.pairs(
            both["c"].to_numpy(dtype=np.int64), p, np.where(is_family, family_text, product_text)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCap:
    """At most ``max_offers`` offers to a client within ``days`` days.

    Parameters
    ----------
    name : str, default "contact_cap"
    max_offers : int, default 3
        Offers (``offer_made`` events) allowed in the window.
    days : int, default 30
        Length of the window ending at ``as_of``.

    Raises
    ------
    ValueError
        If ``max_offers`` or ``days`` is below 1.

    Examples
    --------
    >>> ContactCap(max_offers=2).max_offers
    2
    """

    name: str = "contact_cap"
    max_offers: int = 3
    days: int = 30
    kind: RuleKind = field(default="contact", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_int(type(self).__name__, "max_offers", self.max_offers, 1)
        _check_int(type(self).__name__, "days", self.days, 1)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients who already received ``max_offers`` in the window.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"] * 2, "date": ["2024-06-10", "2024-06-20"],
        ...                   "type": ["offer_made"] * 2})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> ContactCap(max_offers=2).blocks(ctx).detail.tolist()
        ['2 offers made in the last 30 days (the cap is 2); the next may be made from 2024-07-10']
        """
        ev = ctx.events(EventType.offer_made, days=self.days)
        if len(ev) == 0:
            return Blocks.empty()
        frame = pd.DataFrame(
            {"c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64), "t": _ns(ev[Columns.date])}
        )
        frame["count"] = frame.groupby("c")["t"].transform("size")
        frame["newest_rank"] = frame.groupby("c").cumcount(ascending=False)
        # The cap frees a slot when the max_offers-th newest offer leaves the window.
        edge = frame[
            (frame["count"] >= self.max_offers) & (frame["newest_rank"] == self.max_offers - 1)
        ]
        if len(edge) == 0:
            return Blocks.empty()
        count = edge["count"].to_numpy(dtype=np.int64)
        resume = _dates(edge["t"].to_numpy(dtype=np.int64) + self.days * _DAY_NS)
        noun = np.where(count == 1, " offer", " offers")
        text = _text(
            count,
            noun,
            f" made in the last {self.days} days (the cap is {self.max_offers}); "
            "the next may be made from ",
            resume,
        )
        return Blocks.clients(edge["c"].to_numpy(dtype=np.int64), text)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalFirst:
    """While a contract is due for renewal, no new cross-sell; its own family may be upsold.

    A contract is due when it is active at ``as_of``, ends within ``days`` days, and the client
    holds nothing in the same family that runs past that end (a renewal or an upgrade). A renewal
    contract starting after ``as_of`` does not exist yet at ``as_of``.

    Parameters
    ----------
    name : str, default "renewal_first"
    days : int, default 60
        How far ahead of its end a contract counts as due.

    Raises
    ------
    ValueError
        If ``days`` is negative.

    Examples
    --------
    >>> RenewalFirst(days=30).days
    30
    """

    name: str = "renewal_first"
    days: int = 60
    kind: RuleKind = field(default="applicability", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_int(type(self).__name__, "days", self.days, 0)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block cross-sell to clients with a contract due, and upsells outside its family.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            One client row (scope ``"cross_sell"``) per due contract, and (client, product) rows
            (scope ``"upsell"``) for the products of the client's other held families.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2023-08-01"],
        ...                   "end_date": ["2024-08-01"], "value": [1200.0]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> b = RenewalFirst().blocks(ctx)
        >>> b.scope.tolist()
        ['cross_sell']
        >>> print(b.detail[0])  # doctest: +NORMALIZE_WHITESPACE
        the P1 contract (since 2023-08-01, value 1200.00) ends on 2024-08-01 and is not
        renewed yet; renew it before any cross-sell
        """
        ca = ctx.book.contract_arrays
        t = ctx.as_of_ns
        if len(ca) == 0:
            return Blocks.empty()
        codes = ctx.family_codes
        n_fam = len(ctx.family_labels)
        client = ca.client.astype(np.int64)
        family = codes[ca.product.astype(np.int64)]
        known = ca.start <= t
        horizon = t + self.days * _DAY_NS
        due = known & (t < ca.end) & (ca.end != OPEN_END) & (ca.end <= horizon)
        if not due.any():
            return Blocks.empty()
        key = client * n_fam + family
        # Latest end per (client, family) among contracts known at as_of; due ones are among them.
        groups, inverse = np.unique(key[known], return_inverse=True)
        latest = np.full(groups.shape[0], np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(latest, inverse, ca.end[known])
        latest_end = latest[np.searchsorted(groups, key[due])]
        pending = latest_end <= ca.end[due]
        if not pending.any():
            return Blocks.empty()
        rows = np.flatnonzero(due)[pending]
        order = np.lexsort((ca.end[rows], client[rows]))
        rows = rows[order]
        c = client[rows]
        value = ca.value[rows]
        value_text = np.where(
            np.isnan(value), "value unknown", _text("value ", _fmt("%.2f", value)).astype(str)
        )
        text = _text(
            "the ",
            ctx._product_text()[ca.product[rows]],
            " contract (since ",
            _dates(ca.start[rows]),
            ", ",
            value_text,
            ") ends on ",
            _dates(ca.end[rows]),
            " and is not renewed yet; renew it before any cross-sell",
        )
        cross = Blocks.clients(c, text, scope="cross_sell")
        # Upsells in the client's other held families wait too; the due family's own may go.
        n_c = ctx.n_clients
        fam_matrix = ctx._family_matrix()
        held_fam = (ctx.holdings.astype(np.int32) @ fam_matrix).tocsr()
        due_clients = np.zeros(n_c, dtype=np.float64)
        due_clients[c] = 1.0
        held_fam = (sp.diags(due_clients) @ held_fam).tocsr()
        due_fam = sp.csr_matrix(
            (np.ones(c.shape[0], dtype=np.int32), (c, family[rows])), shape=held_fam.shape
        )
        other = ((held_fam > 0).astype(np.int32) - (held_fam > 0).multiply(due_fam > 0)).tocsr()
        other.eliminate_zeros()
        pairs = (other @ fam_matrix.T).tocoo()
        if pairs.nnz == 0:
            return cross
        fam_names = np.asarray(ctx.family_labels.astype(str), dtype=str)
        first = np.unique(c, return_index=True)[1]
        per_client = np.empty(n_c, dtype=object)
        per_client[c[first]] = _text(
            "renewal of the ",
            ctx._product_text()[ca.product[rows[first]]],
            " contract ending ",
            _dates(ca.end[rows[first]]),
            " comes first; only upsells in the ",
            fam_names[family[rows[first]]],
            " family may be offered until then",
        )
        pc = pairs.row.astype(np.int64)
        up = Blocks.pairs(pc, pairs.col, per_client[pc], scope="upsell")
        return Blocks.concat([cross, up])


@dataclass(frozen=True, slots=True, kw_only=True)
class LowSatisfaction:
    """No offers to clients whose satisfaction score is below a threshold.

    The score is a client attribute with no date; a missing score blocks nothing.

    Parameters
    ----------
    name : str, default "low_satisfaction"
    threshold : float, default 5.0
        Scores strictly below it block (scale 0 to 10).

    Raises
    ------
    ValueError
        If ``threshold`` is outside [0, 10].

    Examples
    --------
    >>> LowSatisfaction(threshold=4.0).threshold
    4.0
    """

    name: str = "low_satisfaction"
    threshold: float = 5.0
    kind: RuleKind = field(default="suitability", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_real(type(self).__name__, "threshold", self.threshold, 0.0, 10.0)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients with satisfaction below the threshold.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "satisfaction": [3.5, 8.0]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> LowSatisfaction().blocks(ctx).detail.tolist()
        ['satisfaction is 3.5, below the threshold of 5']
        """
        table = ctx.book.client_table
        if Columns.satisfaction not in table.columns:
            return Blocks.empty()
        score = pd.to_numeric(table[Columns.satisfaction], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        idx = np.flatnonzero(score < self.threshold)
        text = _text(
            "satisfaction is ",
            _fmt("%.1f", score[idx]),
            f", below the threshold of {self.threshold:g}",
        )
        return Blocks.clients(idx, text if idx.size else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChurnSignal:
    """No offers to a client for ``days`` days after a churn signal.

    Parameters
    ----------
    name : str, default "churn_signal"
    days : int, default 90
        Days after the latest signal during which offers stay blocked.

    Raises
    ------
    ValueError
        If ``days`` is negative.

    Examples
    --------
    >>> ChurnSignal().days
    90
    """

    name: str = "churn_signal"
    days: int = 90
    kind: RuleKind = field(default="suitability", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_int(type(self).__name__, "days", self.days, 0)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients with a churn signal in the window.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"], "date": ["2024-06-01"],
        ...                   "type": ["churn_signal"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> ChurnSignal().blocks(ctx).detail.tolist()
        ['churn signal on 2024-06-01; offers resume on 2024-08-30']
        """
        if self.days == 0:
            return Blocks.empty()
        ev = ctx.events(EventType.churn_signal, days=self.days)
        if len(ev) == 0:
            return Blocks.empty()
        frame = pd.DataFrame(
            {"c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64), "t": _ns(ev[Columns.date])}
        ).drop_duplicates("c", keep="last")
        t = frame["t"].to_numpy(dtype=np.int64)
        text = _text(
            "churn signal on ", _dates(t), "; offers resume on ", _dates(t + self.days * _DAY_NS)
        )
        return Blocks.clients(frame["c"].to_numpy(dtype=np.int64), text)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoNotContact:
    """No offers to clients marked do-not-contact.

    Parameters
    ----------
    name : str, default "do_not_contact"

    Examples
    --------
    >>> DoNotContact().kind
    'contact'
    """

    name: str = "do_not_contact"
    kind: RuleKind = field(default="contact", init=False)

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients whose ``do_not_contact`` flag is True.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "do_not_contact": [False, True]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> b = DoNotContact().blocks(ctx)
        >>> b.client.tolist(), b.detail.tolist()
        ([1], ['the client is marked do-not-contact'])
        """
        table = ctx.book.client_table
        if Columns.do_not_contact not in table.columns:
            return Blocks.empty()
        flag = table[Columns.do_not_contact].astype(object).fillna(value=False).astype(bool)
        return Blocks.clients(
            np.flatnonzero(flag.to_numpy(dtype=bool)), "the client is marked do-not-contact"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NotWorthProposing:
    """Offer nothing rather than a weak offer: applied after scoring, by arbitration.

    An offer is worth proposing when its expected value is above ``min_expected_value`` and its
    propensity is at least ``min_propensity``; a missing value is not worth proposing.

    Parameters
    ----------
    name : str, default "not_worth_proposing"
    min_expected_value : float, default 0.0
        Expected values at or below it are dropped (so by default an offer must be worth
        something).
    min_propensity : float, default 0.0
        Propensities below it are dropped (0 to 1).

    Raises
    ------
    ValueError
        If ``min_propensity`` is outside [0, 1] or ``min_expected_value`` is not a finite number.

    Examples
    --------
    >>> import numpy as np
    >>> rule = NotWorthProposing(min_expected_value=10.0)
    >>> rule.blocked(np.array([0.5, 0.5]), np.array([5.0, 50.0])).tolist()
    [True, False]
    """

    name: str = "not_worth_proposing"
    min_expected_value: float = 0.0
    min_propensity: float = 0.0
    kind: RuleKind = field(default="suitability", init=False)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check_name(owner, self.name)
        _check_real(owner, "min_expected_value", self.min_expected_value, -np.inf, np.inf)
        if not np.isfinite(self.min_expected_value):
            _check_real(owner, "min_expected_value", None, -np.inf, np.inf)
        _check_real(owner, "min_propensity", self.min_propensity, 0.0, 1.0)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block nothing before scoring; see :meth:`blocked`.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            Always empty.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> len(NotWorthProposing().blocks(RuleContext.at(Book.from_frames(contracts=c), "2024")))
        0
        """
        return Blocks.empty()

    def blocked(self, propensity: Any, expected_value: Any) -> BoolArray:
        """Which scored offers are not worth proposing.

        Parameters
        ----------
        propensity : array-like of float
            Probability-like scores in [0, 1].
        expected_value : array-like of float
            Expected benefit of each offer, same shape.

        Returns
        -------
        ndarray of bool
            True where the offer should not be made.

        Examples
        --------
        >>> import numpy as np
        >>> NotWorthProposing().blocked(np.array([0.2, 0.2]), np.array([0.0, 3.0])).tolist()
        [True, False]
        """
        p = np.asarray(propensity, dtype=np.float64)
        ev = np.asarray(expected_value, dtype=np.float64)
        out: BoolArray = ~(ev > self.min_expected_value) | ~(p >= self.min_propensity)
        return out

    def detail(self, propensity: Any, expected_value: Any) -> TextArray:
        """One sentence per offer saying why it is not worth proposing ("" where it is).

        Parameters
        ----------
        propensity : array-like of float
        expected_value : array-like of float

        Returns
        -------
        ndarray of object

        Examples
        --------
        >>> import numpy as np
        >>> NotWorthProposing(min_propensity=0.1).detail(np.array([0.05]), np.array([4.0])).tolist()
        ['propensity 0.050 is below the minimum of 0.1']
        """
        p = np.asarray(propensity, dtype=np.float64)
        ev = np.asarray(expected_value, dtype=np.float64)
        shape = np.broadcast_shapes(p.shape, ev.shape)
        p, ev = np.broadcast_to(p, shape).reshape(-1), np.broadcast_to(ev, shape).reshape(-1)
        low_value = ~(ev > self.min_expected_value)
        low_p = ~(p >= self.min_propensity)
        value_text = _text(
            "expected value ",
            _fmt("%.2f", ev),
            f" is not above the minimum of {self.min_expected_value:g}",
        ).astype(str)
        p_text = _text(
            "propensity ", _fmt("%.3f", p), f" is below the minimum of {self.min_propensity:g}"
        ).astype(str)
        out = np.where(low_value, value_text, np.where(low_p, p_text, ""))
        return np.asarray(out, dtype=object).reshape(shape)


# --------------------------------------------------------------------------------------------
# user rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionRule:
    """A user rule from a function of the context.

    The function returns :class:`Blocks`, or for convenience a boolean array with one entry per
    client (True = block every offer to that client), or a DataFrame in the caller's ids with a
    ``client_id`` column and optional ``product_id`` (missing = every product), ``detail`` and
    ``scope`` columns.

    Parameters
    ----------
    name : str
        Unique name within a policy; it appears in the suppression log.
    kind : {"eligibility", "applicability", "suitability", "contact"}
    func : callable
        ``func(ctx: RuleContext) -> Blocks | ndarray | DataFrame``.

    Raises
    ------
    ValueError
        If ``kind`` is not one of the four kinds.

    Examples
    --------
    >>> import numpy as np
    >>> r = FunctionRule(name="no_one", kind="contact",
    ...                  func=lambda ctx: np.zeros(ctx.n_clients, bool))
    >>> r.name, r.kind
    ('no_one', 'contact')
    """

    name: str
    kind: RuleKind
    func: Callable[[RuleContext], Any]

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        _check_choice(type(self).__name__, "kind", self.kind, _KINDS)
        if not callable(self.func):
            raise TypeError(
                f"The 'func' parameter of FunctionRule must be callable. Got {self.func!r} instead."
            )

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Call the function and turn its answer into Blocks.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Raises
        ------
        TypeError
            If the function returns something else than Blocks, a boolean array or a DataFrame.
        ValueError
            If a boolean array does not have one entry per client, or a DataFrame lacks
            ``client_id``.
        UnknownIdError
            If a DataFrame names ids the Book does not know.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P1"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> r = FunctionRule(name="vip", kind="contact",
        ...                  func=lambda ctx: pd.DataFrame({"client_id": ["C2"]}))
        >>> b = r.blocks(ctx)
        >>> b.client.tolist(), b.detail.tolist()
        ([1], ['blocked by rule vip'])
        """
        answer = self.func(ctx)
        default = f"blocked by rule {self.name}"
        if isinstance(answer, Blocks):
            return answer
        if isinstance(answer, pd.DataFrame):
            return self._from_frame(ctx, answer, default)
        if isinstance(answer, np.ndarray | pd.Series) and np.asarray(answer).dtype == np.bool_:
            mask = np.asarray(answer, dtype=bool).reshape(-1)
            if mask.shape[0] != ctx.n_clients:
                raise ValueError(
                    f"Rule {self.name!r} returned a boolean array of {mask.shape[0]} entries; "
                    f"a client mask needs one per client ({ctx.n_clients})."
                )
            return Blocks.clients(np.flatnonzero(mask), default)
        raise TypeError(
            f"Rule {self.name!r} returned {type(answer).__name__}; a rule function must return "
            "Blocks, a boolean numpy array over clients, or a DataFrame with a 'client_id' column."
        )

    def _from_frame(self, ctx: RuleContext, frame: pd.DataFrame, default: str) -> Blocks:
        if Columns.client not in frame.columns:
            raise ValueError(
                f"Rule {self.name!r} returned a DataFrame without a {Columns.client!r} column "
                f"(columns: {list(frame.columns)}); name the clients to block there."
            )
        client = ctx.book.client_ids.to_index(frame[Columns.client])
        product = np.full(len(frame), -1, dtype=np.int64)
        if Columns.product in frame.columns:
            given = frame[Columns.product].notna().to_numpy(dtype=bool)
            product[given] = ctx.book.product_ids.to_index(frame.loc[given, Columns.product])
        detail: Any = default
        if Columns.detail in frame.columns:
            detail = (
                frame[Columns.detail].astype(object).fillna(default).astype(str).to_numpy(object)
            )
        scope: Any = "any"
        if _SCOPE in frame.columns:
            scope = frame[_SCOPE].astype(object).fillna("any").to_numpy(dtype=object)
        return Blocks(client=client, product=product, detail=detail, scope=scope)


def rule(
    *, name: str | None = None, kind: RuleKind = "applicability"
) -> Callable[[Callable[[RuleContext], Any]], FunctionRule]:
    """Decorate a function of the context to make it a rule.

    Parameters
    ----------
    name : str, optional
        Name of the rule; the function's name when omitted.
    kind : {"eligibility", "applicability", "suitability", "contact"}, default "applicability"

    Returns
    -------
    callable
        A decorator returning a :class:`FunctionRule`.

    Examples
    --------
    >>> import numpy as np
    >>> @rule(kind="contact")
    ... def nobody(ctx):
    ...     return np.zeros(ctx.n_clients, dtype=bool)
    >>> nobody
    FunctionRule(name='nobody', kind='contact', func=<function nobody at ...>)
    """

    def wrap(func: Callable[[RuleContext], Any]) -> FunctionRule:
        return FunctionRule(
            name=name or str(getattr(func, "__name__", "user_rule")), kind=kind, func=func
        )

    return wrap


# --------------------------------------------------------------------------------------------
# Suppression and Policy
# --------------------------------------------------------------------------------------------


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


def _build(parts: list[tuple[Rule, Blocks]], n_clients: int, n_products: int) -> Suppression:
    names = [r.name for r, _ in parts]
    kinds = [r.kind for r, _ in parts]
    sizes = np.array([len(b) for _, b in parts], dtype=np.int64)
    merged = Blocks.concat(b for _, b in parts)
    client, product = merged.client, merged.product
    scope_code = np.concatenate([np.empty(0, np.int8)] + [b._scope_code for _, b in parts])
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
            _SCOPE: pd.Categorical.from_codes(scope_code, categories=pd.Index(list(_SCOPES))),
        }
    )
    return Suppression(log=log, **out)


def _check_blocks(rule: Rule, blocks: Any, n_clients: int, n_products: int) -> Blocks:
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


def _as_rule(item: Any) -> Rule:
    if isinstance(item, Rule):
        _check_choice(f"rule {item.name!r}", "kind", item.kind, _KINDS)
        return item
    if callable(item):
        return FunctionRule(
            name=str(getattr(item, "__name__", "user_rule")), kind="applicability", func=item
        )
    raise TypeError(
        f"A policy takes rules (objects with name, kind and blocks) or functions of the context; "
        f"got {type(item).__name__}."
    )


class Policy:
    """An immutable set of rules whose union says what not to offer.

    Parameters
    ----------
    rules : iterable of Rule or callable
        Rules; a plain function ``func(ctx)`` becomes a :class:`FunctionRule` named after it.
    name : str, default "custom"
        A name for the policy, shown in its repr.

    Raises
    ------
    ValueError
        If two rules share a name.
    TypeError
        If an item is neither a rule nor a function.

    Examples
    --------
    >>> p = Policy([DoNotContact(), ContactCap(max_offers=2)], name="mine")
    >>> p.names
    ('do_not_contact', 'contact_cap')
    >>> p.without("contact_cap").names
    ('do_not_contact',)
    """

    __slots__ = ("_rules", "name")

    def __init__(
        self, rules: Iterable[Rule | Callable[[RuleContext], Any]], *, name: str = "custom"
    ) -> None:
        items = tuple(_as_rule(r) for r in rules)
        seen: set[str] = set()
        dup = [r.name for r in items if r.name in seen or seen.add(r.name)]  # type: ignore[func-returns-value]
        if dup:
            raise ValueError(
                f"Policy: rule names must be distinct; {sorted(set(dup))} appear more than once. "
                "Give each rule its own name=."
            )
        self._rules: tuple[Rule, ...] = items
        self.name = name

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order given.

        Examples
        --------
        >>> len(Policy([DoNotContact()]).rules)
        1
        """
        return self._rules

    @property
    def names(self) -> tuple[str, ...]:
        """The rule names, in the order given.

        Examples
        --------
        >>> Policy([DoNotContact()]).names
        ('do_not_contact',)
        """
        return tuple(r.name for r in self._rules)

    @property
    def not_worth(self) -> NotWorthProposing | None:
        """The :class:`NotWorthProposing` rule arbitration applies after scoring, if any.

        Examples
        --------
        >>> route_sales().not_worth.min_expected_value
        0.0
        """
        for r in self._rules:
            if isinstance(r, NotWorthProposing):
                return r
        return None

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, name: str) -> Rule:
        for r in self._rules:
            if r.name == name:
                return r
        raise KeyError(self._unknown(name))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self._rules == other._rules

    def __hash__(self) -> int:
        return hash(self.names)

    def __repr__(self) -> str:
        inner = "".join(f"\n    {r!r}," for r in self._rules)
        return (
            f"Policy(name={self.name!r}, rules=[{inner}\n])"
            if inner
            else f"Policy(name={self.name!r}, rules=[])"
        )

    def _unknown(self, name: str) -> str:
        return f"Policy {self.name!r} has no rule named {name!r}; its rules are {list(self.names)}."

    def evaluate(self, ctx: RuleContext) -> Suppression:
        """Evaluate every rule and union what they block.

        The result does not depend on the order of the rules; the log lists rules by name.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Suppression

        Raises
        ------
        TypeError
            If a rule returns something else than Blocks.
        ValueError
            If a rule returns indices outside the Book.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "do_not_contact": [True, False]})
        >>> c = pd.DataFrame({"client_id": ["C2"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> s = route_sales().evaluate(ctx)
        >>> s.client_any.tolist(), s.log["rule"].tolist()
        ([True, False], ['already_held', 'do_not_contact'])
        """
        n_c, n_p = ctx.n_clients, ctx.n_products
        parts = [
            (r, _check_blocks(r, r.blocks(ctx), n_c, n_p))
            for r in sorted(self._rules, key=lambda r: r.name)
        ]
        return _build(parts, n_c, n_p)

    def without(self, *names: str) -> Policy:
        """Return a copy without the named rules.

        Parameters
        ----------
        *names : str

        Returns
        -------
        Policy

        Raises
        ------
        KeyError
            If a name is not a rule of the policy.

        Examples
        --------
        >>> "contact_cap" in route_sales().without("contact_cap").names
        False
        """
        for n in names:
            if n not in self.names:
                raise KeyError(self._unknown(n))
        return Policy([r for r in self._rules if r.name not in names], name=self.name)

    def with_rules(self, *rules: Rule | Callable[[RuleContext], Any]) -> Policy:
        """Return a copy with more rules added at the end.

        Parameters
        ----------
        *rules : Rule or callable

        Returns
        -------
        Policy

        Examples
        --------
        >>> Policy([]).with_rules(DoNotContact()).names
        ('do_not_contact',)
        """
        return Policy([*self._rules, *rules], name=self.name)

    def replace(self, name: str, rule: Rule | Callable[[RuleContext], Any]) -> Policy:
        """Return a copy with the named rule replaced, in place.

        Parameters
        ----------
        name : str
            The rule to replace.
        rule : Rule or callable
            Its replacement (which may carry another name).

        Returns
        -------
        Policy

        Raises
        ------
        KeyError
            If ``name`` is not a rule of the policy.

        Examples
        --------
        >>> route_sales().replace("contact_cap", ContactCap(max_offers=5))["contact_cap"].max_offers
        5
        """
        if name not in self.names:
            raise KeyError(self._unknown(name))
        return Policy([rule if r.name == name else r for r in self._rules], name=self.name)


def route_sales(
    *,
    prerequisite_mode: Literal["all", "any"] = "any",
    complaint_cool_off_days: int = 30,
    decline_days: int = 90,
    decline_scope: Literal["product", "family"] = "product",
    contact_max_offers: int = 3,
    contact_days: int = 30,
    renewal_days: int = 60,
    satisfaction_threshold: float = 5.0,
    churn_days: int = 90,
    allow_seat_expansion: bool = False,
    min_expected_value: float = 0.0,
    min_propensity: float = 0.0,
) -> Policy:
    """Return the default route-sales policy: every built-in rule, each configurable.

    Parameters
    ----------
    prerequisite_mode : {"all", "any"}, default "any"
        :class:`PrerequisiteMissing` mode.
    complaint_cool_off_days : int, default 30
        :class:`OpenComplaint` cool-off after a complaint closes.
    decline_days : int, default 90
        :class:`RecentDecline` window.
    decline_scope : {"product", "family"}, default "product"
        What a declined product blocks.
    contact_max_offers : int, default 3
        :class:`ContactCap` offers allowed in the window.
    contact_days : int, default 30
        :class:`ContactCap` window.
    renewal_days : int, default 60
        :class:`RenewalFirst` horizon.
    satisfaction_threshold : float, default 5.0
        :class:`LowSatisfaction` threshold.
    churn_days : int, default 90
        :class:`ChurnSignal` window.
    allow_seat_expansion : bool, default False
        :class:`AlreadyHeld`: whether a held product may be upsold (more seats).
    min_expected_value : float, default 0.0
        :class:`NotWorthProposing`: expected values at or below it give no offer.
    min_propensity : float, default 0.0
        :class:`NotWorthProposing`: propensities below it give no offer.

    Returns
    -------
    Policy

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names the rule's parameter).

    Examples
    --------
    >>> p = route_sales(complaint_cool_off_days=14)
    >>> p["open_complaint"].cool_off_days, len(p)
    (14, 13)
    """
    return Policy(
        [
            AlreadyHeld(allow_seat_expansion=allow_seat_expansion),
            NotSellable(),
            PrerequisiteMissing(mode=prerequisite_mode),
            ExcludedByHolding(),
            SegmentNotEligible(),
            OpenComplaint(cool_off_days=complaint_cool_off_days),
            RecentDecline(days=decline_days, scope=decline_scope),
            ContactCap(max_offers=contact_max_offers, days=contact_days),
            RenewalFirst(days=renewal_days),
            LowSatisfaction(threshold=satisfaction_threshold),
            ChurnSignal(days=churn_days),
            DoNotContact(),
            NotWorthProposing(min_expected_value=min_expected_value, min_propensity=min_propensity),
        ],
        name="route_sales",
    )
