"""ClientProductMatrix: who holds what at ``as_of``, weighted (rows: clients, columns: products)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crosssell._params import Options, validate_params
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.ids import IdMap
from crosssell.weighting import Binary, HeldPairs, WeightingLike, as_weighting, finalize_weights

__all__ = ["AsOf", "ClientProductMatrix", "State", "build_matrix", "last_date", "to_as_of"]

State = Literal["active", "ever"]
AsOf: TypeAlias = str | dt.date | dt.datetime | pd.Timestamp | np.datetime64
"""A point in time: text (``"2024-06-30"``), a date, a datetime, a Timestamp or a datetime64."""

_STATES: tuple[State, ...] = ("active", "ever")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ClientProductMatrix:
    """A weighted client x product matrix at a point in time.

    Attributes
    ----------
    client_product : scipy.sparse.csr_matrix of float32
        Rows are clients (``clients``), columns are products (``products``); an entry is stored
        for every (client, product) pair held at ``as_of`` (``state="active"``) or held at any
        time up to it (``state="ever"``), its value the weight.
    clients, products : IdMap
        The Book's id maps; row ``i`` is ``clients.to_external([i])``.
    as_of : pandas.Timestamp
        The point in time; nothing dated later influenced the matrix.
    weighting : str
        A readable description of the weighting used.
    state : {"active", "ever"}
        Which holdings count.

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P1"],
    ...                   "start_date": ["2024-01-01", "2024-02-01"]})
    >>> from crosssell import Book
    >>> m = Book.from_frames(contracts=c).matrix("2024-06-30")
    >>> m.shape
    (2, 1)
    """

    client_product: sp.csr_matrix
    clients: IdMap
    products: IdMap
    as_of: pd.Timestamp
    weighting: str
    state: State = "active"

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_clients, n_products)``.

        Examples
        --------
        >>> import scipy.sparse as sp, pandas as pd
        >>> from crosssell.ids import IdMap
        >>> m = ClientProductMatrix(client_product=sp.csr_matrix((2, 3), dtype="float32"),
        ...     clients=IdMap(["a", "b"]), products=IdMap([1, 2, 3]),
        ...     as_of=pd.Timestamp("2024-01-01"), weighting="binary")
        >>> m.shape
        (2, 3)
        """
        r, c = self.client_product.shape
        return int(r), int(c)

    def summary(self) -> dict[str, Any]:
        """Return headline counts of the matrix, cheap enough to log on every build.

        Returns
        -------
        dict
            ``clients`` (rows), ``clients_with_holdings`` (non-empty rows), ``products``
            (columns), ``products_held`` (non-empty columns), ``stored_pairs`` (stored entries),
            ``density`` (stored entries / rows x columns, 0.0 for an empty shape), ``as_of``,
            ``weighting`` and ``state``.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2", "C2"], "product_id": ["P1", "P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-02-01", "2024-09-01"]})
        >>> s = Book.from_frames(contracts=c).matrix("2024-06-30").summary()
        >>> s["clients_with_holdings"], s["products_held"], s["stored_pairs"], s["density"]
        (2, 1, 2, 0.5)
        """
        n_clients, n_products = self.shape
        m = self.client_product
        cells = n_clients * n_products
        return {
            "clients": n_clients,
            "clients_with_holdings": int(np.count_nonzero(np.diff(m.indptr))),
            "products": n_products,
            "products_held": int(np.count_nonzero(np.bincount(m.indices, minlength=n_products))),
            "stored_pairs": int(m.nnz),
            "density": float(m.nnz / cells) if cells else 0.0,
            "as_of": self.as_of,
            "weighting": self.weighting,
            "state": self.state,
        }

    def holders_per_product(self) -> pd.Series:
        """Count the clients holding each product.

        Returns
        -------
        pandas.Series of int64
            Indexed by product id (every known product, in column order; 0 where nobody holds it).

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2", "C2"], "product_id": ["P1", "P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-02-01", "2024-09-01"]})
        >>> Book.from_frames(contracts=c).matrix("2024-06-30").holders_per_product().to_dict()
        {'P1': 2, 'P2': 0}
        """
        counts = np.bincount(self.client_product.indices, minlength=self.shape[1]).astype(np.int64)
        index = self.products.external.rename(Columns.product)
        return pd.Series(counts, index=index, copy=False)

    def holdings_per_client(self) -> pd.Series:
        """Count the products each client holds.

        Returns
        -------
        pandas.Series of int64
            Indexed by client id (every known client, in row order; 0 for a client holding
            nothing).

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2", "C2"], "product_id": ["P1", "P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"]})
        >>> Book.from_frames(contracts=c).matrix("2024-06-30").holdings_per_client().to_dict()
        {'C1': 1, 'C2': 2}
        """
        counts = np.diff(self.client_product.indptr).astype(np.int64)
        index = self.clients.external.rename(Columns.client)
        return pd.Series(counts, index=index, copy=False)

    @classmethod
    def from_book(
        cls,
        book: Book,
        as_of: AsOf | None = None,
        *,
        weighting: WeightingLike = "binary",
        state: State = "active",
    ) -> ClientProductMatrix:
        """Build the weighted client x product matrix of a Book at a point in time.

        Rows are clients (every client the Book knows, in ``book.client_ids`` order, empty for
        a client holding nothing), columns are products (every known product,
        ``book.product_ids`` order). One entry is stored per distinct (client, product) pair
        held: duplicate, overlapping and renewed contracts of a pair collapse into one entry
        whose weight aggregates them. Nothing dated after ``as_of`` can change the result.
        :meth:`crosssell.Book.matrix` and :func:`build_matrix` call this.

        Parameters
        ----------
        book : Book
            A validated Book.
        as_of : str, date, datetime, Timestamp, numpy.datetime64 or None, default None
            The point in time (a date means midnight at its start). None means the Book's last
            recorded date: its latest contract start or event date (see :func:`last_date`).
        weighting : str, Weighting or tuple, default "binary"
            How much each held pair weighs; see :mod:`crosssell.weighting`. A name
            (``"binary"``, ``"value"``, ``"log_value"``, ``"tenure"``, ``"recency"``,
            ``"quantity"``), a weighting such as ``Recency(half_life="180D") * LogValue()``, or
            a tuple of those (multiplied). Stored weights are at least
            :data:`crosssell.weighting.MIN_WEIGHT`, so a held pair whose weight computes to
            zero (e.g. unknown value) is still stored.
        state : {"active", "ever"}, default "active"
            ``"active"``: a contract counts when ``start <= as_of < end`` (an open end or one
            after ``as_of`` means still active). ``"ever"``: it counts when ``start <= as_of``,
            ended or not.

        Returns
        -------
        ClientProductMatrix
            ``client_product`` is a float32 CSR matrix with sorted indices and no explicit
            zeros.

        Raises
        ------
        ValueError
            For an unknown ``state`` or weighting name, an unreadable ``as_of``, or
            ``as_of=None`` with a Book holding no contracts.
        TypeError
            For an ``as_of`` or ``weighting`` of the wrong type.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C1", "C2"], "product_id": ["P1", "P2", "P1"],
        ...                   "start_date": ["2023-01-01", "2024-01-01", "2024-02-01"],
        ...                   "end_date": [None, "2024-03-01", None],
        ...                   "value": [100.0, 50.0, 200.0]})
        >>> m = ClientProductMatrix.from_book(Book.from_frames(contracts=c), "2024-06-30",
        ...                                   weighting="value")
        >>> m.client_product.toarray().tolist()
        [[100.0, 0.0], [200.0, 0.0]]
        >>> m.weighting
        'value'
        """
        validate_params("build_matrix", {"state": state}, {"state": [Options(set(_STATES))]})
        w = as_weighting(weighting)
        ts = last_date(book) if as_of is None else to_as_of(as_of)
        t = int(ts.value)
        arrays = book.contract_arrays
        shape = (len(book.client_ids), len(book.product_ids))

        held = arrays.start <= t
        if state == "active":
            held &= arrays.end > t
        rows = np.flatnonzero(held)
        del held

        if isinstance(w, Binary):
            # scipy's COO -> CSR conversion is a linear-time bucket sort that also merges duplicate
            # pairs; it is about twice as fast as sorting pair keys, and binary is the common case.
            client_product = sp.csr_matrix(
                (np.ones(rows.size, dtype=np.float32), (arrays.client[rows], arrays.product[rows])),
                shape=shape,
            )
            client_product.sum_duplicates()
            client_product.data.fill(1.0)
        else:
            pairs = HeldPairs.group(arrays, rows, as_of=t, state=state, n_products=shape[1])
            raw = w.weigh(pairs)
            if np.shape(raw) != (pairs.n_pairs,):
                raise ValueError(
                    f"Weighting {w.describe()!r} returned weights of shape {np.shape(raw)}; "
                    f"expected one weight per held pair, shape ({pairs.n_pairs},)."
                )
            data = finalize_weights(raw, w)
            indptr = np.zeros(shape[0] + 1, dtype=np.int64)
            np.cumsum(np.bincount(pairs.client, minlength=shape[0]), out=indptr[1:])
            client_product = sp.csr_matrix((data, pairs.product, indptr), shape=shape)
            client_product.has_sorted_indices = True
        return cls(
            client_product=client_product,
            clients=book.client_ids,
            products=book.product_ids,
            as_of=ts,
            weighting=w.describe(),
            state=state,
        )


def to_as_of(value: AsOf, *, caller: str = "build_matrix") -> pd.Timestamp:
    """Turn a point in time into a tz-naive nanosecond Timestamp.

    A date means midnight at its start. A time-zone-aware value is converted to UTC, as the
    Book does with aware dates.

    Parameters
    ----------
    value : str, datetime.date, datetime.datetime, pandas.Timestamp or numpy.datetime64
        The point in time.
    caller : str, default "build_matrix"
        The function named in error messages.

    Returns
    -------
    pandas.Timestamp

    Raises
    ------
    ValueError
        If ``value`` is not a date or is out of the range nanosecond timestamps hold (1677-2262).
    TypeError
        If ``value`` is of another type (e.g. a number).

    Examples
    --------
    >>> import datetime as dt
    >>> to_as_of("2024-06-30")
    Timestamp('2024-06-30 00:00:00')
    >>> to_as_of(dt.date(2024, 6, 30)) == to_as_of("2024-06-30T02:00+02:00")
    True
    >>> to_as_of("end of June")
    Traceback (most recent call last):
    ...
    ValueError: The 'as_of' parameter of build_matrix must be a date (text such as '2024-06-30', \
a date, datetime, Timestamp or datetime64). Got 'end of June' instead.
    """
    message = (
        f"The 'as_of' parameter of {caller} must be a date (text such as '2024-06-30', a date, "
        f"datetime, Timestamp or datetime64). Got {value!r} instead."
    )
    if not isinstance(value, str | dt.date | np.datetime64):
        raise TypeError(message)
    try:
        ts = pd.Timestamp(value)
        if pd.isna(ts):
            raise ValueError(message)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime as exc:
        raise ValueError(
            f"The 'as_of' parameter of {caller} is out of range: {value!r} is a date, but "
            f"crosssell's timestamps hold dates from {pd.Timestamp.min.date()} to "
            f"{pd.Timestamp.max.date()}. Got {value!r} instead."
        ) from exc
    except (ValueError, OverflowError) as exc:
        raise ValueError(message) from exc


def last_date(book: Book) -> pd.Timestamp:
    """Return the last recorded date of a Book: the default ``as_of``.

    This is the Book's own last date (:attr:`crosssell.Book.dates`): the latest contract start
    (purchase time, for transactions) or event date. End dates are left out because they are
    often scheduled in the future; a default ``as_of`` must never lie beyond the data.

    Parameters
    ----------
    book : Book
        A validated Book.

    Returns
    -------
    pandas.Timestamp

    Raises
    ------
    ValueError
        If the Book holds no contracts (pass ``as_of`` explicitly then).

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P1"],
    ...                   "start_date": ["2024-01-01", "2024-02-01"],
    ...                   "end_date": ["2026-03-01", None]})
    >>> last_date(Book.from_frames(contracts=c))
    Timestamp('2024-02-01 00:00:00')
    """
    if len(book.contract_arrays) == 0:
        raise ValueError(
            "The book holds no contracts, so it has no last date to default 'as_of' to. "
            "Pass as_of explicitly."
        )
    return pd.Timestamp(book.dates[1]).as_unit("ns")


def build_matrix(
    book: Book,
    as_of: AsOf | None = None,
    *,
    weighting: WeightingLike = "binary",
    state: State = "active",
) -> ClientProductMatrix:
    """Build the weighted client x product matrix of a Book at a point in time.

    A function form of :meth:`ClientProductMatrix.from_book`, which documents the rules in
    full: rows are clients, columns are products, one entry per distinct pair held at
    ``as_of`` (``state="active"``) or held at any time up to it (``state="ever"``).

    Parameters
    ----------
    book : Book
        A validated Book.
    as_of : str, date, datetime, Timestamp, numpy.datetime64 or None, default None
        The point in time; None means the Book's last recorded date (see :func:`last_date`).
    weighting : str, Weighting or tuple, default "binary"
        How much each held pair weighs; see :mod:`crosssell.weighting`.
    state : {"active", "ever"}, default "active"
        Which holdings count.

    Returns
    -------
    ClientProductMatrix
        ``client_product`` is a float32 CSR matrix with sorted indices and no explicit zeros.

    Raises
    ------
    ValueError
        For an unknown ``state`` or weighting name, an unreadable ``as_of``, or ``as_of=None``
        with a Book holding no contracts.
    TypeError
        For an ``as_of`` or ``weighting`` of the wrong type.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> c = pd.DataFrame({"client_id": ["C1", "C1", "C2", "C3"],
    ...                   "product_id": ["P1", "P2", "P1", "P2"],
    ...                   "start_date": ["2023-01-01", "2024-01-01", "2024-02-01", "2025-01-01"],
    ...                   "end_date": [None, "2024-03-01", None, None],
    ...                   "value": [100.0, 50.0, 200.0, 10.0]})
    >>> book = Book.from_frames(contracts=c)
    >>> m = build_matrix(book, "2024-06-30", weighting="value")
    >>> m.client_product.toarray().tolist()
    [[100.0, 0.0], [200.0, 0.0], [0.0, 0.0]]
    >>> build_matrix(book, "2024-06-30", state="ever").client_product.toarray().tolist()
    [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    """
    return ClientProductMatrix.from_book(book, as_of, weighting=weighting, state=state)
