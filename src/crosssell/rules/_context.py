"""The context every rule reads: a Book seen at ``as_of``, with what is held then."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.ids import positions
from crosssell.rules._common import DAY_NS, IntArray, as_tuple, to_ns

#: (rule name, declared event look-backs) while a rule that declares its reads runs
_READING = threading.local()


@contextlib.contextmanager
def reading_as(name: str, events: Mapping[str, pd.Timedelta | None]) -> Iterator[None]:
    """Check every ``ctx.events`` call made inside against the events a rule declares.

    A rule that declares its reads (``FunctionRule(reads=...)``) is given only those rows
    where rows are shipped by the declarations (``crosssell.spark``, ``recommend_one`` with new
    events): reading more through :meth:`RuleContext.events` would block differently there than
    on the whole Book, so it is refused at once, on any Book.
    """
    previous = getattr(_READING, "rule", None)
    _READING.rule = (name, events)
    try:
        yield
    finally:
        _READING.rule = previous


def _check_declared(types: tuple[str, ...], days: int | None) -> None:
    guard = getattr(_READING, "rule", None)
    if guard is None:
        return
    name, declared = guard
    span = f"within {days} days" if days is not None else "of any age"
    if not types:
        raise _undeclared(name, declared, f"events of every type {span}", "{...}")
    asked = pd.Timedelta(days=days) if days is not None else None
    for kind in types:
        look_back = declared.get(kind)
        if kind in declared and (look_back is None or (asked is not None and asked <= look_back)):
            continue
        age = f"pd.Timedelta(days={days})" if days is not None else "None"
        raise _undeclared(name, declared, f"events of type {kind!r} {span}", f"{{{kind!r}: {age}}}")


def _undeclared(
    name: str, declared: Mapping[str, pd.Timedelta | None], what: str, hint: str
) -> ValueError:
    return ValueError(
        f"Rule {name!r} read {what} through ctx.events, beyond what its reads= declares "
        f"(events: {dict(declared) or 'none'}). Where only the declared rows are shipped "
        "(crosssell.spark, recommend_one with new events) it would block otherwise than on the "
        f"whole Book. Declare it, e.g. reads=Reads(events={hint}), or leave reads= out (every "
        "row is read)."
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
    partial : bool, default False
        The Book holds only some clients of the fitted one: a client's or a batch's fresh
        frames scored by a fitted model (``recommend_frames``, ``recommend_one`` with new
        rows, a Spark bucket). A DataFrame a rule returns (e.g. a whole do-not-call list) may
        then name clients outside it; they are not this Book's and are passed over, where a
        whole Book refuses an unknown client as a likely typo.

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
    partial: bool = False
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
        _check_declared(types, days)
        key = "events"
        if key not in self._cache:
            table = self.book.event_table
            dates = to_ns(table[Columns.date]) if len(table) else np.empty(0, np.int64)
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
            keep &= dates > self.as_of_ns - int(days) * DAY_NS
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

    @property
    def product_text(self) -> npt.NDArray[np.str_]:
        """Every product's id as text, one per product (column), to name products in a detail.

        Index it with product indices to write readable sentences over whole arrays; it is
        computed once per catalogue and shared by every rule that reads it.

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> ctx.product_text.tolist()
        ['P1', 'P2']
        >>> np.strings.add(ctx.product_text[[1]], " is out of stock").tolist()
        ['P2 is out of stock']
        """
        if "product_text" not in self._cache:
            self._cache["product_text"] = np.asarray(
                self.book.product_ids.external.astype(str), dtype=str
            )
        return cast(npt.NDArray[np.str_], self._cache["product_text"])

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

    @property
    def family_matrix(self) -> sp.csr_matrix:
        """One-hot products x families: rows are products, columns are :attr:`family_labels`.

        Multiply the holdings by it to count, per client, the products held in each family; it
        is computed once per catalogue and shared by every rule that reads it.

        Returns
        -------
        scipy.sparse.csr_matrix of int32
            One 1 per row, in the column of the product's family code.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["A1", "A2", "B1"], "family": ["A", "A", "B"]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["A1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> ctx.family_matrix.toarray().tolist()
        [[1, 0], [1, 0], [0, 1]]
        >>> (ctx.holdings.astype("int32") @ ctx.family_matrix).toarray().tolist()
        [[1, 0]]
        """
        if "family_matrix" not in self._cache:
            codes, labels = self._families()
            n = codes.shape[0]
            self._cache["family_matrix"] = sp.csr_matrix(
                (np.ones(n, dtype=np.int32), (np.arange(n), codes)), shape=(n, len(labels))
            )
        return cast(sp.csr_matrix, self._cache["family_matrix"])

    def product_lists(self, column: str) -> tuple[sp.csr_matrix, IntArray, pd.Series]:
        """Read a catalogue column of product lists (``requires``, ``excludes``) as a matrix.

        Parameters
        ----------
        column : str
            A column of ``book.product_table`` holding, per product, a list of product ids. A
            missing column reads as empty lists; ids not in the Book are ignored.

        Returns
        -------
        matrix : scipy.sparse.csr_matrix of int32
            Products x products: row ``i`` has a 1 in the column of every product listed for
            product ``i``.
        lengths : ndarray of int64
            How many products each product lists, counting unknown ids.
        readable : pandas.Series of str
            Each product's list as ``"P1, P2"``, to write in a detail.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "requires": [(), ("P1",)]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> matrix, lengths, readable = ctx.product_lists("requires")
        >>> matrix.toarray().tolist(), lengths.tolist(), readable.tolist()
        ([[0, 0], [1, 0]], [0, 1], ['', 'P1'])
        """
        key = f"list:{column}"
        if key not in self._cache:
            n = self.n_products
            table = self.book.product_table
            if column in table.columns:
                lists = table[column].map(as_tuple)
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


@dataclass(frozen=True, slots=True, eq=False)
class EventColumns:
    """Events dated on or before ``as_of`` as numpy columns, in date order (stable).

    What the built-in event rules read, so that the same code judges a whole Book (from
    :meth:`RuleContext.events`) and one client's stored and new events (built without pandas
    by the recommender's one-client path).

    Attributes
    ----------
    client, product : ndarray of int64
        Client and product index of each event (``-1``: no product).
    family : ndarray of int64
        Family code (into :attr:`RuleContext.family_labels`) of the event's product, or of the
        family it names when it has no product; ``-1`` for neither.
    date : ndarray of int64
        Nanoseconds since the epoch.
    type_code : ndarray of int64
        Code of each event's type into ``type_labels``.
    type_labels : tuple of str
    ref : ndarray of object
        The ``ref`` column as given (None or NaN where missing).
    """

    client: IntArray
    product: IntArray
    family: IntArray
    date: IntArray
    type_code: IntArray
    type_labels: tuple[str, ...]
    ref: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return int(self.date.shape[0])

    def select(self, *types: str, after: int | None = None) -> EventColumns:
        """Return the events of the given types, dated strictly after ``after`` (ns) if given."""
        keep = np.ones(len(self), dtype=bool)
        if types:
            wanted = [i for i, label in enumerate(self.type_labels) if label in types]
            keep &= np.isin(self.type_code, np.asarray(wanted, dtype=np.int64))
        if after is not None:
            keep &= self.date > after
        return self.take(np.flatnonzero(keep)) if not keep.all() else self

    def take(self, rows: IntArray) -> EventColumns:
        """Return the events at positions ``rows``, in that order."""
        return EventColumns(
            client=self.client[rows],
            product=self.product[rows],
            family=self.family[rows],
            date=self.date[rows],
            type_code=self.type_code[rows],
            type_labels=self.type_labels,
            ref=self.ref[rows],
        )

    @classmethod
    def concat(cls, parts: Sequence[EventColumns]) -> EventColumns:
        """Stack events of parts sharing one ``type_labels``, in the order given."""
        return cls(
            client=np.concatenate([p.client for p in parts]),
            product=np.concatenate([p.product for p in parts]),
            family=np.concatenate([p.family for p in parts]),
            date=np.concatenate([p.date for p in parts]),
            type_code=np.concatenate([p.type_code for p in parts]),
            type_labels=parts[0].type_labels,
            ref=np.concatenate([p.ref for p in parts]),
        )


def event_columns(ctx: RuleContext) -> EventColumns:
    """Return every event of ``ctx`` (on or before ``as_of``) as :class:`EventColumns`, cached."""
    key = "event_columns"
    if key not in ctx._cache:
        table = ctx.events()
        n = len(table)
        codes, labels = ctx.family_codes, ctx.family_labels
        product = (
            table[Columns.product_idx].to_numpy(dtype=np.int64)
            if Columns.product_idx in table.columns
            else np.full(n, -1, dtype=np.int64)
        )
        if Columns.family in table.columns and n:
            named = positions(
                labels, table[Columns.family], spell=lambda names: names.astype(object).astype(str)
            )
        else:
            named = np.full(n, -1, dtype=np.int64)
        family = np.where(product >= 0, codes[np.maximum(product, 0)], named)
        type_code, type_labels = pd.factorize(table[Columns.type])
        ref = (
            table[Columns.ref].to_numpy(dtype=object)
            if Columns.ref in table.columns
            else np.full(n, None, dtype=object)
        )
        ctx._cache[key] = EventColumns(
            client=table[Columns.client_idx].to_numpy(dtype=np.int64),
            product=product,
            family=np.asarray(family, dtype=np.int64),
            date=to_ns(table[Columns.date]) if n else np.empty(0, dtype=np.int64),
            type_code=np.asarray(type_code, dtype=np.int64),
            type_labels=tuple(str(t) for t in type_labels.tolist()),
            ref=ref,
        )
    return cast(EventColumns, ctx._cache[key])


# RuleContext cache entries that depend on the catalogue only (plus "list:<column>")
_CATALOGUE_KEYS = frozenset({"families", "product_text", "family_matrix"})
