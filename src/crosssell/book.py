"""The Book: validated, immutable, point-in-time inputs (contracts, products, clients, events).

Everything downstream takes a :class:`Book` and trusts it; nothing re-validates.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell import _validation as _val
from crosssell._arrays import OPEN_END, ContractArrays
from crosssell.columns import Columns, EventType
from crosssell.exceptions import DataWarning, SchemaError
from crosssell.ids import IdMap

if TYPE_CHECKING:
    from crosssell.matrix import AsOf, ClientProductMatrix, State
    from crosssell.weighting import WeightingLike

__all__ = ["OPEN_END", "Book", "BuildInfo", "ContractArrays", "Errors", "Schema"]

Errors = Literal["raise", "collect"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """Maps the caller's column names onto crosssell's, once, at the boundary.

    Each field is a crosssell column (see :class:`crosssell.columns.Columns`); its value is the
    caller's name for it. Only the names that differ need to be given.

    Examples
    --------
    >>> s = Schema(client="customer_no", product="sku")
    >>> s.client, s.start
    ('customer_no', 'start_date')
    >>> s.renames()["customer_no"]
    'client_id'
    """

    client: str = Columns.client
    product: str = Columns.product
    contract: str = Columns.contract
    start: str = Columns.start
    end: str = Columns.end
    value: str = Columns.value
    quantity: str = Columns.quantity
    timestamp: str = Columns.timestamp
    amount: str = Columns.amount
    family: str = Columns.family
    tier: str = Columns.tier
    price: str = Columns.price
    requires: str = Columns.requires
    excludes: str = Columns.excludes
    sellable: str = Columns.sellable
    segments: str = Columns.segments
    name: str = Columns.name
    segment: str = Columns.segment
    region: str = Columns.region
    owner: str = Columns.owner
    parent: str = Columns.parent
    do_not_contact: str = Columns.do_not_contact
    satisfaction: str = Columns.satisfaction
    date: str = Columns.date
    type: str = Columns.type
    detail: str = Columns.detail
    ref: str = Columns.ref

    def renames(self) -> dict[str, str]:
        """Return ``{caller's name: crosssell's name}`` for every field whose names differ.

        Returns
        -------
        dict of str to str

        Examples
        --------
        >>> Schema().renames()
        {}
        """
        out: dict[str, str] = {}
        for f in fields(self):
            ours = getattr(Columns, f.name)
            theirs = getattr(self, f.name)
            if theirs != ours:
                out[theirs] = ours
        return out

    def to_dict(self) -> dict[str, str]:
        """Return the mapping as a plain dict (for saving in a model manifest).

        Returns
        -------
        dict of str to str

        Examples
        --------
        >>> Schema(client="cust").to_dict()["client"]
        'cust'
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildInfo:
    """What happened while a Book was validated: input sizes, notes and remarks for the report.

    Attributes
    ----------
    source : str
        ``"contracts"`` or ``"transactions"``: the table the contract rows came from.
    given : tuple of (str, int)
        ``(table, rows given)`` for every table passed in.
    notes : tuple of str
        The texts of the :class:`~crosssell.exceptions.DataWarning` issued.
    other_event_types : tuple of (str, int)
        Event types without a built-in meaning, with their counts.
    repeated_lines : int
        Identical transaction lines kept as separate purchases (transactions only).

    Examples
    --------
    >>> BuildInfo().source
    'contracts'
    """

    source: str = "contracts"
    given: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()
    other_event_types: tuple[tuple[str, int], ...] = ()
    repeated_lines: int = 0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Book:
    """Validated inputs of crosssell, immutable after construction.

    Build it with :meth:`from_frames`, :meth:`read` or :meth:`from_transactions`; never call the
    constructor directly. Validation happens once, there; downstream code trusts the Book.

    Conventions of validation (each documented on :meth:`from_frames`): ids keep the caller's
    values and dtype (text stays text, leading zeros and large integers are kept exactly); dates
    are tz-naive UTC; a null end date, or one after 2200 (a sentinel such as 9999-12-31), means
    "open"; exact duplicate contract rows are collapsed with a
    :class:`~crosssell.exceptions.DataWarning`.

    Examples
    --------
    >>> import pandas as pd
    >>> contracts = pd.DataFrame({"client_id": ["C1", "C1", "C2"],
    ...                           "product_id": ["P1", "P2", "P1"],
    ...                           "start_date": ["2024-01-01", "2024-03-01", "2024-02-01"]})
    >>> book = Book.from_frames(contracts=contracts)
    >>> len(book.client_ids), len(book.product_ids)
    (2, 2)
    >>> book
    Book(contracts=3, clients=2, products=2, events=0, rejected=0, dates=2024-01-01..2024-03-01)
    """

    #: Column names as the caller gave them.
    schema: Schema
    #: Every client id known (clients table, then contracts, then events), caller's values/dtype.
    client_ids: IdMap
    #: Every product id known (catalog, then contracts), caller's values and dtype.
    product_ids: IdMap
    #: Contracts as arrays aligned with the id maps (internal, read-only arrays).
    contract_arrays: ContractArrays
    #: One row per product, in ``product_ids`` order, defaults filled (internal, read-only).
    product_table: pd.DataFrame
    #: One row per client, in ``client_ids`` order, defaults filled (internal, read-only).
    client_table: pd.DataFrame
    #: Events, with integer ``client_idx`` and ``product_idx`` (-1: none) columns (internal).
    event_table: pd.DataFrame
    #: Rows set aside by ``errors="collect"``, with ``table``, ``row`` and ``reason`` columns.
    rejected: pd.DataFrame
    #: Contract columns beyond the arrays (e.g. ``contract_id`` and the caller's extra columns),
    #: one row per entry of ``contract_arrays``; :attr:`contracts` rebuilds the rest.
    _contracts: pd.DataFrame = field(repr=False)
    #: Transactions look-back, when built by :meth:`from_transactions` (None otherwise or "ever").
    lookback: pd.Timedelta | None = None
    #: What validation did, for :meth:`summary` and :meth:`validation_report`.
    info: BuildInfo = field(default_factory=BuildInfo, repr=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frames(
        cls,
        contracts: Any,
        products: Any = None,
        clients: Any = None,
        events: Any = None,
        *,
        schema: Schema | None = None,
        errors: Errors = "raise",
    ) -> Book:
        """Validate the four input tables into a Book.

        Tables and columns are those of the data model (contracts, products, clients, events);
        pandas DataFrames, pyarrow Tables and polars DataFrames are accepted. The caller's frames
        are never modified.

        Conventions: ids that pandas read as floats (``1.0``) become integers when all are
        integral; a column mixing integer and text ids, or tables disagreeing (``42`` and
        ``"42"``), become text; text ids are normalised to unicode NFC. Time-zone-aware dates are
        converted to UTC and made naive. A null end date is open; an end date after 2200 (e.g.
        ``9999-12-31``) is read as open. Values parse text with thousands separators
        ("1,000.50"); NaN means unknown. Exact duplicate contract rows are collapsed into one
        (under ``errors="collect"`` the copies are also listed in :attr:`rejected`). Every such
        change is reported with a :class:`~crosssell.exceptions.DataWarning` that counts the rows.

        Parameters
        ----------
        contracts : DataFrame
            One row per contract: ``client_id``, ``product_id``, ``start_date`` and optionally
            ``end_date``, ``value``, ``quantity``, ``contract_id``; extra columns are kept.
        products : DataFrame or Book, optional
            The catalog: ``product_id`` and optionally ``family``, ``tier``, ``price``,
            ``requires``, ``excludes``, ``sellable``, ``segments``, ``name``. A Book lends its
            catalog as validated, without validating it again (fast for a few new rows against
            a known catalog; contract and event products must be in it).
        clients : DataFrame, optional
            ``client_id`` and optionally ``segment``, ``region``, ``owner``, ``parent_id``,
            ``do_not_contact``, ``satisfaction``.
        events : DataFrame, optional
            ``client_id``, ``date``, ``type`` and optionally ``product_id``, ``detail``, ``ref``.
        schema : Schema, optional
            The caller's column names, when they differ from crosssell's.
        errors : {"raise", "collect"}, default "raise"
            ``"raise"``: bad rows raise :class:`~crosssell.exceptions.SchemaError`;
            ``"collect"``: bad rows are set aside in :attr:`rejected` and the rest is kept.

        Returns
        -------
        Book

        Raises
        ------
        SchemaError
            When a table breaks a rule (``errors="raise"``), or a required column is missing,
            or no contract is left.
        TypeError, ValueError
            When a parameter has the wrong type or value.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1, 2], "product_id": ["A", "B"],
        ...                   "start_date": ["2024-01-01", "2024-02-01"],
        ...                   "end_date": [None, "2023-01-01"]})
        >>> Book.from_frames(c)
        Traceback (most recent call last):
        ...
        crosssell.exceptions.SchemaError: contracts: 'end_date' is before 'start_date' in 1 row ...
        """
        return _build(
            contracts,
            products,
            clients,
            events,
            schema=schema,
            errors=errors,
            source="contracts",
            lookback=None,
            owner="Book.from_frames",
        )

    @classmethod
    def from_transactions(
        cls,
        lines: Any,
        *,
        lookback: str | pd.Timedelta | None = "365D",
        products: Any = None,
        clients: Any = None,
        events: Any = None,
        schema: Schema | None = None,
        errors: Errors = "raise",
    ) -> Book:
        """Build a Book from purchase lines: a product is held while bought within ``lookback``.

        Each line becomes a contract that starts at its ``timestamp`` and ends ``lookback``
        later (open when ``lookback`` is ``"ever"`` or None), with ``value`` = ``amount`` (NaN
        when absent) and ``quantity`` (1 when absent). Identical lines are kept as separate
        purchases (two identical lines of one invoice are two purchases). Everything else is
        validated as in :meth:`from_frames`, with ``"transactions"`` naming the table.

        Parameters
        ----------
        lines : DataFrame
            ``client_id``, ``product_id``, ``timestamp`` and optionally ``amount``,
            ``quantity``; extra columns are kept.
        lookback : str, Timedelta, "ever" or None, default "365D"
            How long a purchase counts as holding the product.
        products, clients, events, schema, errors
            As in :meth:`from_frames`.

        Returns
        -------
        Book

        Raises
        ------
        SchemaError
            As in :meth:`from_frames`.
        ValueError
            When ``lookback`` is not a positive duration or ``"ever"``.

        Examples
        --------
        >>> import pandas as pd
        >>> lines = pd.DataFrame({"client_id": [7, 7], "product_id": ["A", "B"],
        ...                       "timestamp": ["2024-01-05 10:00", "2024-03-01 09:30"],
        ...                       "amount": [12.5, 3.0]})
        >>> book = Book.from_transactions(lines, lookback="90D")
        >>> book.lookback
        Timedelta('90 days 00:00:00')
        >>> book.contracts["end_date"].iloc[0]
        Timestamp('2024-04-04 10:00:00')
        """
        span = _check_lookback(lookback)
        return _build(
            lines,
            products,
            clients,
            events,
            schema=schema,
            errors=errors,
            source="transactions",
            lookback=span,
            owner="Book.from_transactions",
        )

    @classmethod
    def read(
        cls,
        contracts: str | os.PathLike[str],
        products: str | os.PathLike[str] | None = None,
        clients: str | os.PathLike[str] | None = None,
        events: str | os.PathLike[str] | None = None,
        *,
        schema: Schema | None = None,
        errors: Errors = "raise",
    ) -> Book:
        """Read the tables from CSV or Parquet files and validate them with :meth:`from_frames`.

        Id columns of CSV files are read as text, so leading zeros and long numbers are kept
        exactly; Parquet files keep their stored types.

        Parameters
        ----------
        contracts, products, clients, events : path
            ``.csv`` (optionally compressed, e.g. ``.csv.gz``) or ``.parquet`` / ``.pq`` files.
        schema, errors
            As in :meth:`from_frames`.

        Returns
        -------
        Book

        Raises
        ------
        ValueError
            For a file type other than CSV or Parquet.
        SchemaError
            As in :meth:`from_frames`.

        Examples
        --------
        >>> import pandas as pd, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"client_id": ["007"], "product_id": ["P1"],
        ...               "start_date": ["2024-01-01"]}).to_csv(folder / "c.csv", index=False)
        >>> Book.read(folder / "c.csv").client_ids.external.tolist()
        ['007']
        """
        sch = schema if schema is not None else Schema()
        id_columns = (sch.client, sch.product, sch.parent, sch.contract, sch.ref)
        frames = [
            None if path is None else _read_table(path, id_columns)
            for path in (contracts, products, clients, events)
        ]
        return cls.from_frames(
            frames[0], frames[1], frames[2], frames[3], schema=schema, errors=errors
        )

    # ------------------------------------------------------------------ views
    @property
    def contracts(self) -> pd.DataFrame:
        """The validated contracts (a copy), with crosssell's column names and the caller's ids.

        Open contracts have ``end_date`` NaT; ``value`` is NaN where unknown.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [7], "start_date": ["2024-01-01"]})
        >>> Book.from_frames(contracts=c).contracts.columns.tolist()[:3]
        ['client_id', 'product_id', 'start_date']
        """
        a = self.contract_arrays
        end = a.end.copy()
        end[end == OPEN_END] = np.iinfo(np.int64).min
        core = pd.DataFrame(
            {
                Columns.client: self.client_ids.to_external(a.client),
                Columns.product: self.product_ids.to_external(a.product),
                Columns.start: pd.to_datetime(a.start.copy(), unit="ns"),
                Columns.end: pd.to_datetime(end.view("datetime64[ns]")),
                Columns.value: a.value.copy(),
                Columns.quantity: a.quantity.copy(),
            }
        )
        extra = self._contracts.loc[
            :, [c for c in self._contracts.columns if c not in core.columns]
        ]
        if extra.shape[1] == 0:
            return core
        return pd.concat([core, extra.reset_index(drop=True)], axis=1)

    @property
    def products(self) -> pd.DataFrame:
        """The validated product table (a copy), one row per product in ``product_ids`` order.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [7], "start_date": ["2024-01-01"]})
        >>> Book.from_frames(c).products[["product_id", "family", "tier"]].to_dict("records")
        [{'product_id': 7, 'family': '7', 'tier': 0}]
        """
        return self.product_table.copy()

    @property
    def clients(self) -> pd.DataFrame:
        """The validated client table (a copy), one row per client in ``client_ids`` order.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [7], "start_date": ["2024-01-01"]})
        >>> Book.from_frames(c).clients["do_not_contact"].tolist()
        [False]
        """
        return self.client_table.copy()

    @property
    def events(self) -> pd.DataFrame:
        """The validated events (a copy) sorted by date, without the internal index columns.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [7], "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": [1], "date": ["2024-02-01"], "type": ["contact"]})
        >>> Book.from_frames(c, events=e).events["type"].tolist()
        ['contact']
        """
        return self.event_table.drop(columns=[_CLIENT_IDX, _PRODUCT_IDX])

    @property
    def dates(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last recorded date: contract starts (purchase times) and event dates.

        End dates are left out: they are often scheduled in the future (a renewal date) or, for
        transactions, derived from the look-back.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1, 1], "product_id": [7, 8],
        ...                   "start_date": ["2024-01-01", "2024-05-01"]})
        >>> Book.from_frames(c).dates
        (Timestamp('2024-01-01 00:00:00'), Timestamp('2024-05-01 00:00:00'))
        """
        starts = self.contract_arrays.start
        lo, hi = int(starts.min()), int(starts.max())
        if len(self.event_table):
            ev = self.event_table[Columns.date].to_numpy().view(np.int64)
            lo, hi = min(lo, int(ev.min())), max(hi, int(ev.max()))
        return pd.Timestamp(lo, unit="ns"), pd.Timestamp(hi, unit="ns")

    def summary(self) -> pd.DataFrame:
        """Sizes of the validated tables, as a tidy frame.

        Returns
        -------
        pandas.DataFrame
            One row per table (the contract source, then products, clients, events) with
            columns ``table``, ``rows`` (kept), ``rejected``, ``clients``, ``products``,
            ``first_date``, ``last_date``.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1, 2], "product_id": [7, 7],
        ...                   "start_date": ["2024-01-01", "2024-05-01"]})
        >>> summary = Book.from_frames(c).summary()
        >>> print(summary[["table", "rows", "clients", "products"]].to_string(index=False))
            table  rows  clients  products
        contracts     2        2         1
         products     0        0         0
          clients     0        0         0
           events     0        0         0
        """
        a = self.contract_arrays
        rejected = self.rejected.drop_duplicates([Columns.table, Columns.row])
        per_table = rejected[Columns.table].value_counts()
        nat = pd.NaT
        ev = self.event_table
        catalog = self.product_table[Columns.product].where(self.product_table[_IN_CATALOG])
        rows = [
            (
                self.info.source,
                len(a),
                int(np.unique(a.client).size),
                int(np.unique(a.product).size),
                *self._span(a.start),
            ),
            (
                _PRODUCTS,
                int(self.product_table[_IN_CATALOG].sum()),
                0,
                int(catalog.notna().sum()),
                nat,
                nat,
            ),
            (
                _CLIENTS,
                self._kept(_CLIENTS, per_table),
                self._kept(_CLIENTS, per_table),
                0,
                nat,
                nat,
            ),
            (
                _EVENTS,
                len(ev),
                int(ev[_CLIENT_IDX].nunique()),
                int(ev.loc[ev[_PRODUCT_IDX] >= 0, _PRODUCT_IDX].nunique()),
                *self._span(ev[Columns.date].to_numpy().view(np.int64)),
            ),
        ]
        out = pd.DataFrame(rows, columns=[Columns.table, _ROWS, _CLIENTS, _PRODUCTS, _FIRST, _LAST])
        out.insert(2, _REJECTED, [int(per_table.get(t, 0)) for t in out[Columns.table]])
        return out

    def _kept(self, table: str, rejected: pd.Series) -> int:
        given = dict(self.info.given).get(table, 0)
        return int(given - rejected.get(table, 0))

    @staticmethod
    def _span(ns: npt.NDArray[np.int64]) -> tuple[pd.Timestamp, pd.Timestamp]:
        if ns.size == 0:
            nat: Any = pd.NaT
            return nat, nat
        return pd.Timestamp(int(ns.min()), unit="ns"), pd.Timestamp(int(ns.max()), unit="ns")

    def validation_report(self) -> str:
        """Describe the validation in readable text: sizes, rejected rows by rule, and notes.

        Returns
        -------
        str

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [7], "start_date": ["2024-01-01"]})
        >>> print(Book.from_frames(c).validation_report())  # doctest: +ELLIPSIS
        Book: 1 contract row, 1 client, 1 product, 0 events; dates 2024-01-01 to 2024-01-01
        ...
        Nothing rejected.
        """
        first, last = self.dates
        n = len(self.contract_arrays)
        word = "transaction line" if self.info.source == _TRANSACTIONS else "contract row"
        lines = [
            f"Book: {n:,} {word}{'s' if n != 1 else ''}, {_count(len(self.client_ids), 'client')}, "
            f"{_count(len(self.product_ids), 'product')}, "
            f"{_count(len(self.event_table), 'event')}; "
            f"dates {_day(first)} to {_day(last)}"
        ]
        if self.lookback is not None or self.info.source == _TRANSACTIONS:
            held = "ever" if self.lookback is None else f"{self.lookback.days} days"
            lines.append(f"A purchase counts as a holding for: {held}.")
        table = self.summary()
        for col in (_FIRST, _LAST):
            table[col] = [_day(t) for t in table[col]]
        lines.append("")
        lines.append(table.to_string(index=False))
        given = ", ".join(f"{t} {r:,}" for t, r in self.info.given)
        lines.append("")
        lines.append(f"Rows given: {given}.")
        if self.info.repeated_lines:
            lines.append(
                f"{_count(self.info.repeated_lines, 'transaction line')} repeat an earlier line "
                "exactly; kept as separate purchases."
            )
        if self.info.other_event_types:
            types = ", ".join(f"{t} ({c})" for t, c in self.info.other_event_types)
            lines.append(f"Event types without built-in meaning (kept for user rules): {types}.")
        if self.info.notes:
            lines.append("Notes:")
            lines.extend(f"  - {note}" for note in self.info.notes)
        if len(self.rejected):
            counts = self.rejected.groupby([Columns.table, Columns.rule], sort=True).size()
            lines.append(f"Rejected ({len(self.rejected):,} findings; see book.rejected):")
            lines.extend(
                f"  - {key[0]} / {key[1]}: {c:,}"  # type: ignore[index]
                for key, c in counts.items()
            )
        else:
            lines.append("Nothing rejected.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        first, last = self.dates
        return (
            f"Book({self.info.source}={len(self.contract_arrays):,}, "
            f"clients={len(self.client_ids):,}, products={len(self.product_ids):,}, "
            f"events={len(self.event_table):,}, rejected={len(self.rejected):,}, "
            f"dates={_day(first)}..{_day(last)})"
        )

    def matrix(
        self,
        as_of: AsOf | None = None,
        *,
        weighting: WeightingLike = "binary",
        state: State = "active",
    ) -> ClientProductMatrix:
        """Build the client x product matrix at ``as_of``.

        A convenience for :meth:`crosssell.matrix.ClientProductMatrix.from_book`, which
        documents the parameters and the rules.

        Parameters
        ----------
        as_of : str, date, datetime, Timestamp, numpy.datetime64 or None, default None
            The point in time; None means the Book's last recorded date.
        weighting : str, Weighting or tuple, default "binary"
            How much each held pair weighs; see :mod:`crosssell.weighting`.
        state : {"active", "ever"}, default "active"
            ``"active"``: contracts running at ``as_of``; ``"ever"``: started by then.

        Returns
        -------
        ClientProductMatrix
            Rows are clients, columns are products.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> Book.from_frames(contracts=c).matrix("2024-06-30").client_product.nnz
        1
        """
        # The matrix is a later stage that imports the Book; importing it here, on use, keeps
        # the Book free of any import of the stages built on it.
        from crosssell.matrix import ClientProductMatrix

        return ClientProductMatrix.from_book(self, as_of, weighting=weighting, state=state)


# ---------------------------------------------------------------------- building
_CONTRACTS: Final = "contracts"
_TRANSACTIONS: Final = "transactions"
_PRODUCTS: Final = "products"
_CLIENTS: Final = "clients"
_EVENTS: Final = "events"
_CLIENT_IDX: Final = Columns.client_idx
_PRODUCT_IDX: Final = Columns.product_idx
_IN_CATALOG: Final = Columns.in_catalog
_ROWS: Final = Columns.rows
_REJECTED: Final = Columns.rejected
_FIRST: Final = Columns.first_date
_LAST: Final = Columns.last_date
#: Values above this are taken for typing errors (a trillion per year per contract).
_MAX_AMOUNT: Final = 1e12
_SPLIT = re.compile(r"[;,|]")


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _day(t: Any) -> str:
    if t is pd.NaT or pd.isna(t):
        return ""
    ts = pd.Timestamp(t)
    return str(ts.date()) if ts == ts.normalize() else str(ts)


def _check_lookback(lookback: Any) -> pd.Timedelta | None:
    if lookback is None or (isinstance(lookback, str) and lookback == "ever"):
        return None
    try:
        span = pd.Timedelta(lookback)
    except (ValueError, TypeError):
        return _bad_lookback(lookback)
    if pd.isna(span) or span <= pd.Timedelta(0):
        return _bad_lookback(lookback)
    return span


def _bad_lookback(lookback: Any) -> NoReturn:
    raise ValueError(
        "The 'lookback' parameter of Book.from_transactions must be a positive duration "
        f"such as '365D', or 'ever'. Got {lookback!r} instead."
    )


def _read_table(path: str | os.PathLike[str], id_columns: Sequence[str]) -> pd.DataFrame:
    name = os.fspath(path).lower()
    if name.endswith((".parquet", ".pq")):
        pq = importlib.import_module("pyarrow.parquet")
        frame = pq.read_table(path).to_pandas(date_as_object=False)
        assert isinstance(frame, pd.DataFrame)
        return frame
    if re.search(r"\.(csv|txt)(\.(gz|bz2|zip|xz|zst))?$", name):
        return pd.read_csv(path, dtype=dict.fromkeys(id_columns, str))
    raise ValueError(
        "Book.read reads CSV (.csv, .csv.gz) and Parquet (.parquet) files. "
        f"Got {os.fspath(path)!r}."
    )


@dataclass(slots=True, kw_only=True)
class _Table:
    """One input table during a build: the caller's frame, its renamed view and kept rows."""

    name: str
    raw: pd.DataFrame
    frame: pd.DataFrame
    labels: dict[str, str]
    ok: npt.NDArray[np.bool_]

    def col(self, ours: str) -> pd.Series:
        return self.frame[ours]

    def has(self, ours: str) -> bool:
        return ours in self.frame.columns

    def label(self, ours: str) -> str:
        return self.labels.get(ours, ours)

    def show(self, *ours: str) -> list[str]:
        return [self.label(c) for c in ours if self.has(c)]


def _prepare(
    obj: Any,
    *,
    name: str,
    parameter: str,
    owner: str,
    schema: Schema,
    required: Sequence[str],
) -> _Table:
    raw = _val.as_pandas(obj, parameter=parameter, owner=owner)
    renames = schema.renames()
    inverse = {ours: theirs for theirs, ours in renames.items()}
    fields_of = {getattr(Columns, f.name): f.name for f in fields(Schema)}
    _val.check_columns(
        raw,
        table=name,
        required={inverse.get(c, c): c for c in required},
        schema_fields=fields_of,
    )
    # Columns named like one of ours but mapped away by the schema would collide after renaming.
    clash = [c for c in raw.columns if c in inverse and c not in renames]
    frame = raw.drop(columns=clash).rename(columns=renames) if renames else raw
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()].tolist()
        raise SchemaError(
            f"{name}: duplicated column names {dup}. Rename them so each name appears once.",
            table=name,
            column=str(dup[0]),
            rule="duplicate_column",
        )
    return _Table(name=name, raw=raw, frame=frame, labels=inverse, ok=np.ones(len(raw), dtype=bool))


def _reject(
    col: _val.Collector,
    t: _Table,
    *,
    column: str | None,
    rule: str,
    bad: npt.NDArray[np.bool_],
    what: str,
    fix: str,
    show: Sequence[str] = (),
) -> None:
    if not bad.any():
        return
    col.fail(
        table=t.name,
        column=None if column is None else t.label(column),
        rule=rule,
        bad=bad,
        frame=t.raw,
        what=what,
        fix=fix,
        show=t.show(*show) if show else ([t.label(column)] if column is not None else []),
    )
    t.ok &= ~bad


def _ids(
    col: _val.Collector, t: _Table, ours: str, *, show: Sequence[str], allow_null: bool = False
) -> _val.IdColumn:
    ids = _val.encode_ids(
        t.col(ours),
        table=t.name,
        column=t.label(ours),
        frame=t.raw,
        collector=col,
        allow_null=allow_null,
        show=t.show(*show),
    )
    if ids.bad.any():
        t.ok &= ~ids.bad
    return ids


def _dates(
    col: _val.Collector, t: _Table, ours: str, *, show: Sequence[str], required: bool
) -> _val.ParsedDates:
    d = _val.parse_dates(t.col(ours))
    name = repr(t.label(ours))
    if required:
        _reject(
            col,
            t,
            column=ours,
            rule="null_date",
            bad=d.null,
            what=f"{name} is missing",
            fix=f"Fill in the {name} values",
            show=show,
        )
    _reject(
        col,
        t,
        column=ours,
        rule="bad_date",
        bad=d.bad,
        what=f"{name} is not a date",
        fix="Fix the dates",
        show=show,
    )
    _reject(
        col,
        t,
        column=ours,
        rule="date_out_of_range",
        bad=d.early,
        what=f"{name} is before 1678",
        fix="Fix the dates",
        show=show,
    )
    if d.tz_rows:
        col.note(
            f"{t.name}: {name} had time zones in {_count(d.tz_rows, 'row')}; converted to UTC "
            "and made naive."
        )
    return d


def _numbers(
    col: _val.Collector,
    t: _Table,
    ours: str,
    *,
    show: Sequence[str],
    positive: bool,
) -> npt.NDArray[np.float64]:
    n = _val.parse_numbers(t.col(ours))
    name = repr(t.label(ours))
    _reject(
        col,
        t,
        column=ours,
        rule="not_a_number",
        bad=n.bad,
        what=f"{name} is not a number",
        fix="Fix the values",
        show=show,
    )
    v = n.values
    with np.errstate(invalid="ignore"):
        low = v <= 0 if positive else v < 0
    _reject(
        col,
        t,
        column=ours,
        rule="not_positive" if positive else "negative",
        bad=low,
        what=f"{name} is {'not positive' if positive else 'negative'}",
        fix="Fix the values",
        show=show,
    )
    _reject(
        col,
        t,
        column=ours,
        rule="infinite",
        bad=np.isinf(v),
        what=f"{name} is infinite",
        fix="Fix the values",
        show=show,
    )
    _reject(
        col,
        t,
        column=ours,
        rule="too_large",
        bad=np.isfinite(v) & (v > _MAX_AMOUNT),
        what=f"{name} is above 1e12",
        fix="Fix the values (a unit or typing error?)",
        show=show,
    )
    if n.from_text:
        col.note(
            f"{t.name}: {name} was read from text with thousands separators (e.g. '1,000.50') "
            f"in {_count(n.from_text, 'row')}."
        )
    return v


@dataclass(slots=True, kw_only=True)
class _ContractParts:
    client: _val.IdColumn
    product: _val.IdColumn
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    quantity: npt.NDArray[np.float64]
    extras: list[str]


def _contract_rows(
    col: _val.Collector, t: _Table, *, lookback: pd.Timedelta | None
) -> _ContractParts:
    transactions = t.name == _TRANSACTIONS
    start_col = Columns.timestamp if transactions else Columns.start
    value_col = Columns.amount if transactions else Columns.value
    ident = (Columns.client, Columns.product)
    client = _ids(col, t, Columns.client, show=ident)
    product = _ids(col, t, Columns.product, show=ident)
    start_d = _dates(col, t, start_col, show=(*ident, start_col), required=True)
    start = start_d.ns
    _reject(
        col,
        t,
        column=start_col,
        rule="date_out_of_range",
        bad=start_d.late,
        what=f"{t.label(start_col)!r} is after 2200",
        fix="Fix the dates",
        show=(*ident, start_col),
    )
    if transactions:
        if lookback is None:
            end = np.full(len(start), OPEN_END, dtype=np.int64)
        else:
            end = start + np.int64(lookback.value)
    elif t.has(Columns.end):
        shown = (*ident, Columns.start, Columns.end)
        end_d = _dates(col, t, Columns.end, show=shown, required=False)
        sentinel = end_d.late & t.ok
        if sentinel.any():
            col.note(
                f"{t.name}: {t.label(Columns.end)!r} is after 2200 (e.g. 9999-12-31) in "
                f"{_count(int(sentinel.sum()), 'row')}; read as open (no end)."
            )
        open_ = end_d.null | end_d.late
        end = np.where(open_, OPEN_END, end_d.ns)
        backwards = ~open_ & ~end_d.bad & ~start_d.null & ~start_d.bad & (end < start)
        _reject(
            col,
            t,
            column=Columns.end,
            rule="end_before_start",
            bad=backwards,
            what=f"{t.label(Columns.end)!r} is before {t.label(Columns.start)!r}",
            fix="Fix the dates",
            show=shown,
        )
    else:
        end = np.full(len(start), OPEN_END, dtype=np.int64)
    if t.has(value_col):
        value = _numbers(col, t, value_col, show=(*ident, value_col), positive=False)
    else:
        value = np.full(len(start), np.nan)
    if t.has(Columns.quantity):
        quantity = _numbers(
            col, t, Columns.quantity, show=(*ident, Columns.quantity), positive=True
        )
        # A missing quantity means "not given": one unit, the same as a table without the column.
        quantity = np.where(np.isnan(quantity), 1.0, quantity)
    else:
        quantity = np.ones(len(start))
    core = {Columns.client, Columns.product, start_col, Columns.end, value_col, Columns.quantity}
    extras = [c for c in t.frame.columns if c not in core]
    return _ContractParts(
        client=client,
        product=product,
        start=start,
        end=end,
        value=value,
        quantity=quantity,
        extras=extras,
    )


def _duplicates(col: _val.Collector, t: _Table, parts: _ContractParts) -> int:
    """Mark exact duplicate contract rows (after the first) as not kept; return how many."""
    maybe = _same_key(parts) & t.ok
    if not maybe.any():
        return 0
    rows = np.flatnonzero(maybe)
    full = pd.DataFrame(
        {
            "c": parts.client.codes[rows],
            "p": parts.product.codes[rows],
            "s": parts.start[rows],
            "e": parts.end[rows],
            "v": parts.value[rows],
            "q": parts.quantity[rows],
        }
    )
    for c in parts.extras:
        full[f"x_{c}"] = t.frame[c].iloc[rows].astype("str").to_numpy()
    dup_local = full.duplicated(keep="first").to_numpy()
    dup = np.zeros(len(t.ok), dtype=bool)
    dup[rows[dup_local]] = True
    n = int(dup.sum())
    if n == 0:
        return 0
    shown = t.show(Columns.client, Columns.product, Columns.start)
    example = "; ".join(_val.describe_rows(t.raw, np.flatnonzero(dup)[: _val.SHOWN], shown))
    if col.errors == "collect":
        col.fail(
            table=t.name,
            column=None,
            rule="duplicate_row",
            bad=dup,
            frame=t.raw,
            what="exact duplicate of an earlier row",
            fix="Remove the duplicates",
            show=shown,
        )
    col.note(
        f"{t.name}: exact duplicates of an earlier row in {_count(n, 'row')}; each was "
        f"collapsed into the first (e.g. {example})."
    )
    t.ok &= ~dup
    return n


def _own(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Return ``a``, copied if it may be a view of the caller's data."""
    return a if a.flags.owndata and a.flags.c_contiguous else np.array(a, copy=True, order="C")


def _gather(lookup: npt.NDArray[np.int64], codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Map codes to positions as int32; skip the gather when the map is the identity."""
    n = len(lookup) - 1
    if np.array_equal(lookup[:n], np.arange(n)):
        return codes.astype(np.int32)
    return lookup.astype(np.int32)[codes]


def _first_used(
    codes: npt.NDArray[np.int64], ok: npt.NDArray[np.bool_], n: int, *, all_kept: bool
) -> npt.NDArray[np.int64]:
    """Codes used by kept rows, in order of first appearance."""
    if all_kept:
        return np.arange(n, dtype=np.int64)
    kept = codes[ok]
    used, first = np.unique(kept, return_index=True)
    return used[np.argsort(first, kind="stable")].astype(np.int64)


def _extend(
    base: pd.Index, ids: _val.IdColumn, used: npt.NDArray[np.int64]
) -> tuple[pd.Index, npt.NDArray[np.int64]]:
    """Append the ids not yet in ``base``; return the new index and code -> position."""
    values = ids.uniques.take(used)
    pos = (
        base.get_indexer(values).astype(np.int64)
        if len(base)
        else np.full(len(values), -1, np.int64)
    )
    new = pos < 0
    pos[new] = len(base) + np.arange(int(new.sum()), dtype=np.int64)
    lookup = np.full(len(ids.uniques) + 1, -1, dtype=np.int64)
    lookup[used] = pos
    merged = base.append(values[new]) if len(base) else values
    return merged, lookup


def _split_list(value: Any) -> tuple[Any, ...] | None:
    """Read a list cell: a list or tuple, or text such as ``"A;B"``, ``"A, B"`` or ``"('A', 'B')"``.

    The bracketed, quoted form is what pandas writes for a tuple or list column with ``to_csv``,
    so a catalog written that way reads back as it was.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 2 and text[0] + text[-1] in ("()", "[]", "{}"):
            text = text[1:-1]
        parts = [p.strip().strip("'\"").strip() for p in _SPLIT.split(text)]
        return tuple(p for p in parts if p)
    if isinstance(value, list | tuple | np.ndarray | pd.Series | set | frozenset):
        return tuple(value.tolist() if isinstance(value, np.ndarray | pd.Series) else value)
    if pd.isna(value):
        return None
    return (value,)


def _as_id(value: Any, integer: bool) -> Any:
    if integer:
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    return _val.nfc(str(value))


def _catalog(col: _val.Collector, t: _Table, ids: _val.IdColumn) -> dict[str, Any]:
    """Validate the catalog's own columns; return arrays over its rows."""
    show = (Columns.product,)
    out: dict[str, Any] = {}
    codes = ids.codes
    dup = pd.Series(codes).duplicated().to_numpy() & (codes >= 0) & t.ok
    _reject(
        col,
        t,
        column=Columns.product,
        rule="duplicate_id",
        bad=dup,
        what=f"{t.label(Columns.product)!r} appears more than once",
        fix="Keep one row per product",
        show=show,
    )
    if t.has(Columns.tier):
        tier = _val.parse_numbers(t.col(Columns.tier))
        with np.errstate(invalid="ignore"):
            bad = tier.bad | (~np.isnan(tier.values) & (tier.values != np.round(tier.values)))
            bad = bad | np.isinf(tier.values)
        _reject(
            col,
            t,
            column=Columns.tier,
            rule="not_an_integer",
            bad=bad,
            what=f"{t.label(Columns.tier)!r} is not an integer",
            fix="Fix the tiers",
            show=(*show, Columns.tier),
        )
        out[Columns.tier] = np.where(np.isfinite(tier.values), tier.values, 0).astype(np.int64)
    if t.has(Columns.price):
        out[Columns.price] = _numbers(
            col, t, Columns.price, show=(*show, Columns.price), positive=False
        )
    if t.has(Columns.sellable):
        values, bad = _val.parse_bools(t.col(Columns.sellable), default=True)
        _reject(
            col,
            t,
            column=Columns.sellable,
            rule="not_a_bool",
            bad=bad,
            what=f"{t.label(Columns.sellable)!r} is not yes/no",
            fix="Use true/false",
            show=(*show, Columns.sellable),
        )
        out[Columns.sellable] = values
    return out


def _build(
    contracts: Any,
    products: Any,
    clients: Any,
    events: Any,
    *,
    schema: Schema | None,
    errors: Any,
    source: str,
    lookback: pd.Timedelta | None,
    owner: str,
) -> Book:
    if errors not in ("raise", "collect"):
        raise ValueError(
            f"The 'errors' parameter of {owner} must be a str among {{'raise', 'collect'}}. "
            f"Got {errors!r} instead."
        )
    if schema is not None and not isinstance(schema, Schema):
        raise TypeError(
            f"The 'schema' parameter of {owner} must be an instance of Schema or None. "
            f"Got {type(schema).__name__} instead."
        )
    sch = schema if schema is not None else Schema()
    col = _val.Collector(errors=errors)
    book = _build_inner(
        contracts,
        products,
        clients,
        events,
        sch=sch,
        col=col,
        source=source,
        lookback=lookback,
        owner=owner,
    )
    # Notes are issued once the Book stands, so that each warning points at the caller's line
    # and an error is never masked by a warning raised while it propagates.
    for note in col.notes:
        warnings.warn(note, DataWarning, stacklevel=3)
    return book


def _client_rows(
    col: _val.Collector, ct: _Table, c_ids: _val.IdColumn
) -> tuple[_val.IdColumn | None, _val.ParsedNumbers | None, npt.NDArray[np.bool_] | None]:
    """Check the clients table's own columns; return parent ids, satisfaction, do-not-contact."""
    parent = None
    satisfaction = None
    dnc = None
    dup = pd.Series(c_ids.codes).duplicated().to_numpy() & (c_ids.codes >= 0) & ct.ok
    _reject(
        col,
        ct,
        column=Columns.client,
        rule="duplicate_id",
        bad=dup,
        what=f"{ct.label(Columns.client)!r} appears more than once",
        fix="Keep one row per client",
        show=(Columns.client,),
    )
    if ct.has(Columns.parent):
        parent = _ids(
            col, ct, Columns.parent, show=(Columns.client, Columns.parent), allow_null=True
        )
    if ct.has(Columns.satisfaction):
        satisfaction = _val.parse_numbers(ct.col(Columns.satisfaction))
        s = satisfaction.values
        _reject(
            col,
            ct,
            column=Columns.satisfaction,
            rule="not_a_number",
            bad=satisfaction.bad,
            what=f"{ct.label(Columns.satisfaction)!r} is not a number",
            fix="Fix the values",
            show=(Columns.client, Columns.satisfaction),
        )
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(s) & ((s < 0) | (s > 10))
        _reject(
            col,
            ct,
            column=Columns.satisfaction,
            rule="out_of_range",
            bad=outside,
            what=f"{ct.label(Columns.satisfaction)!r} is outside 0..10",
            fix="Use a score from 0 to 10 (NaN when unknown)",
            show=(Columns.client, Columns.satisfaction),
        )
    if ct.has(Columns.do_not_contact):
        dnc, bad = _val.parse_bools(ct.col(Columns.do_not_contact), default=False)
        _reject(
            col,
            ct,
            column=Columns.do_not_contact,
            rule="not_a_bool",
            bad=bad,
            what=f"{ct.label(Columns.do_not_contact)!r} is not yes/no",
            fix="Use true/false",
            show=(Columns.client, Columns.do_not_contact),
        )
    return parent, satisfaction, dnc


def _event_rows(col: _val.Collector, et: _Table) -> tuple[_val.IdColumn, _val.ParsedDates]:
    """Check the events table's own columns; return its client ids and dates."""
    e_ids = _ids(col, et, Columns.client, show=(Columns.client, Columns.date, Columns.type))
    e_dates = _dates(
        col, et, Columns.date, show=(Columns.client, Columns.date, Columns.type), required=True
    )
    _reject(
        col,
        et,
        column=Columns.date,
        rule="date_out_of_range",
        bad=e_dates.late,
        what=f"{et.label(Columns.date)!r} is after 2200",
        fix="Fix the dates",
        show=(Columns.client, Columns.date),
    )
    type_text = et.col(Columns.type).astype("str").str.strip()
    blank = et.col(Columns.type).isna().to_numpy() | (type_text == "").to_numpy(dtype=bool)
    _reject(
        col,
        et,
        column=Columns.type,
        rule="null_type",
        bad=blank,
        what=f"{et.label(Columns.type)!r} is missing",
        fix="Fill in the event types",
        show=(Columns.client, Columns.date, Columns.type),
    )
    return e_ids, e_dates


def _catalog_lists(
    col: _val.Collector, pt: _Table, product_index: pd.Index
) -> dict[str, list[tuple[Any, ...]]]:
    """Parse ``requires`` and ``excludes``; they must name catalog products."""
    lists: dict[str, list[tuple[Any, ...]]] = {}
    integer = pd.api.types.is_integer_dtype(product_index.dtype)
    for name in (Columns.requires, Columns.excludes):
        if not pt.has(name):
            continue
        # Catalogs are small (thousands of rows): a loop over them is not a hot path.
        values = [
            tuple(_as_id(v, integer) for v in (_split_list(x) or ())) for x in pt.col(name).tolist()
        ]
        flat = pd.Index(
            [v for tup in values for v in tup], dtype=product_index.dtype if integer else "str"
        )
        missing_set = (
            set(flat[product_index.get_indexer(flat) < 0].tolist()) if len(flat) else set()
        )
        bad = np.array([any(v in missing_set for v in tup) for tup in values], dtype=bool)
        _reject(
            col,
            pt,
            column=name,
            rule="unknown_product",
            bad=bad & pt.ok,
            what=f"{pt.label(name)!r} names products that are not in the catalog",
            fix="Add them to products, or correct the names",
            show=(Columns.product, name),
        )
        lists[name] = values
    return lists


def _build_inner(  # noqa: PLR0912, PLR0915 (one linear pass over the tables reads best whole)
    contracts: Any,
    products: Any,
    clients: Any,
    events: Any,
    *,
    sch: Schema,
    col: _val.Collector,
    source: str,
    lookback: pd.Timedelta | None,
    owner: str,
) -> Book:
    start_col = Columns.timestamp if source == _TRANSACTIONS else Columns.start
    # A Book as products lends its validated catalog: its ids stand in for an encoded table.
    trusted: Book | None = products if isinstance(products, Book) else None
    if trusted is not None:
        products = None
    kt = _prepare(
        contracts,
        name=source,
        parameter="lines" if source == _TRANSACTIONS else _CONTRACTS,
        owner=owner,
        schema=sch,
        required=(Columns.client, Columns.product, start_col),
    )
    pt = (
        None
        if products is None
        else _prepare(
            products,
            name=_PRODUCTS,
            parameter=_PRODUCTS,
            owner=owner,
            schema=sch,
            required=(Columns.product,),
        )
    )
    ct = (
        None
        if clients is None
        else _prepare(
            clients,
            name=_CLIENTS,
            parameter=_CLIENTS,
            owner=owner,
            schema=sch,
            required=(Columns.client,),
        )
    )
    et = (
        None
        if events is None
        else _prepare(
            events,
            name=_EVENTS,
            parameter=_EVENTS,
            owner=owner,
            schema=sch,
            required=(Columns.client, Columns.date, Columns.type),
        )
    )
    if len(kt.raw) == 0:
        raise SchemaError(
            f"{source}: the table is empty; a Book needs at least one "
            f"{'purchase line' if source == _TRANSACTIONS else 'contract'}. "
            "Check the file or the filter that produced it.",
            table=source,
            rule="empty",
        )
    given = tuple((t.name, len(t.raw)) for t in (kt, pt, ct, et) if t is not None)
    if trusted is not None:
        given += ((_PRODUCTS, len(trusted.product_ids)),)

    # -- each table on its own
    parts = _contract_rows(col, kt, lookback=lookback)
    p_ids = None if pt is None else _ids(col, pt, Columns.product, show=(Columns.product,))
    if trusted is not None:
        n_trusted = len(trusted.product_ids)
        p_ids = _val.IdColumn(
            codes=np.arange(n_trusted, dtype=np.int64),
            uniques=trusted.product_ids.external,
            bad=np.zeros(n_trusted, dtype=bool),
        )
    catalog = {} if pt is None or p_ids is None else _catalog(col, pt, p_ids)
    c_ids = None if ct is None else _ids(col, ct, Columns.client, show=(Columns.client,))
    parent = satisfaction = dnc = None
    if ct is not None and c_ids is not None:
        parent, satisfaction, dnc = _client_rows(col, ct, c_ids)
    e_ids, e_dates = (None, None) if et is None else _event_rows(col, et)

    # -- one dtype per kind of id, across tables
    client_cols = {source: parts.client}
    if c_ids is not None:
        client_cols[_CLIENTS] = c_ids
    if e_ids is not None:
        client_cols[_EVENTS] = e_ids
    if parent is not None and len(parent.uniques):
        client_cols["clients.parent_id"] = parent
    unified = _val.unify_id_kinds(client_cols, what="client", collector=col)
    parts.client = unified[source]
    c_ids = unified.get(_CLIENTS)
    e_ids = unified.get(_EVENTS)
    parent = unified.get("clients.parent_id", parent)
    product_cols = {source: parts.product}
    if p_ids is not None:
        product_cols[_PRODUCTS] = p_ids
    unified_p = _val.unify_id_kinds(product_cols, what="product", collector=col)
    parts.product = unified_p[source]
    p_ids = unified_p.get(_PRODUCTS)

    # -- products: catalog first; contract products must be in it when it is given
    has_catalog = (pt is not None or trusted is not None) and p_ids is not None
    if has_catalog and p_ids is not None:
        cat_rows = np.flatnonzero(pt.ok) if pt is not None else np.arange(len(p_ids.uniques))
        product_index = p_ids.uniques.take(p_ids.codes[cat_rows])
        pos = product_index.get_indexer(parts.product.uniques)
        unknown_u = np.append(pos < 0, False)
        unknown = pd.Series(unknown_u[parts.product.codes]).to_numpy() & kt.ok
        _reject(
            col,
            kt,
            column=Columns.product,
            rule="unknown_product",
            bad=unknown,
            what=f"{kt.label(Columns.product)!r} is not in the products table",
            fix="Add them to products, or remove these rows",
            show=(Columns.client, Columns.product),
        )
    else:
        cat_rows = np.zeros(0, dtype=np.int64)
        product_index = pd.Index(parts.product.uniques[:0])

    # -- clients: events of clients unknown to both the clients table and the contracts
    if et is not None and e_ids is not None and c_ids is not None and ct is not None:
        known = c_ids.uniques.take(np.unique(c_ids.codes[ct.ok & (c_ids.codes >= 0)]))
        known = known.append(parts.client.uniques.take(np.unique(parts.client.codes[kt.ok])))
        hit = np.append(pd.Index(known).unique().get_indexer(e_ids.uniques) >= 0, True)
        unknown = ~hit[e_ids.codes] & et.ok
        _reject(
            col,
            et,
            column=Columns.client,
            rule="unknown_client",
            bad=unknown,
            what=f"{et.label(Columns.client)!r} is neither in the clients table nor in {source}",
            fix="Add them to clients, or remove these events",
            show=(Columns.client, Columns.date, Columns.type),
        )

    # -- requires / excludes name catalog products
    lists = {} if pt is None else _catalog_lists(col, pt, product_index)

    duplicates = 0
    repeated = 0
    if source == _CONTRACTS:
        duplicates = _duplicates(col, kt, parts)
    else:
        repeated = _repeated_lines(kt, parts)

    if not kt.ok.any():
        raise SchemaError(
            f"{source}: no row is left after setting aside {_count(len(kt.ok), 'row')} "
            f'(see the reasons with errors="collect" in book.rejected). Fix the data.',
            table=source,
            rule="empty",
        )
    n_rejected = sum(int((~t.ok).sum()) for t in (kt, pt, ct, et) if t is not None)
    if col.errors == "collect" and n_rejected > duplicates:
        by_table = ", ".join(
            f"{t.name} {int((~t.ok).sum()):,}"
            for t in (kt, pt, ct, et)
            if t is not None and (~t.ok).any()
        )
        col.note(f"{_count(n_rejected, 'row')} set aside in book.rejected ({by_table}).")

    # -- id maps
    all_kept = bool(kt.ok.all())
    if ct is not None and c_ids is not None:
        base = c_ids.uniques.take(c_ids.codes[np.flatnonzero(ct.ok)])
    else:
        base = pd.Index(parts.client.uniques[:0])
    client_index, client_lookup = _extend(
        base,
        parts.client,
        _first_used(parts.client.codes, kt.ok, len(parts.client.uniques), all_kept=all_kept),
    )
    e_lookup = None
    if et is not None and e_ids is not None:
        e_used = _first_used(e_ids.codes, et.ok, len(e_ids.uniques), all_kept=bool(et.ok.all()))
        if ct is None:
            client_index, e_lookup = _extend(client_index, e_ids, e_used)
        else:
            pos = client_index.get_indexer(e_ids.uniques.take(e_used))
            e_lookup = np.full(len(e_ids.uniques) + 1, -1, dtype=np.int64)
            e_lookup[e_used] = pos
    if has_catalog:
        used_p = np.unique(parts.product.codes[kt.ok])
        pos = product_index.get_indexer(parts.product.uniques.take(used_p))
        product_lookup = np.full(len(parts.product.uniques) + 1, -1, dtype=np.int64)
        product_lookup[used_p] = pos
    else:
        product_index, product_lookup = _extend(
            product_index,
            parts.product,
            _first_used(parts.product.codes, kt.ok, len(parts.product.uniques), all_kept=all_kept),
        )
    client_ids = IdMap._from_unique(client_index, name="client")
    product_ids = IdMap._from_unique(product_index, name="product")

    # -- contract arrays (one take per array, only when rows were set aside)
    keep = slice(None) if all_kept else np.flatnonzero(kt.ok)
    arrays = ContractArrays(
        client=_gather(client_lookup, parts.client.codes[keep]),
        product=_gather(product_lookup, parts.product.codes[keep]),
        start=_own(parts.start[keep]),
        end=_own(parts.end[keep]),
        value=_own(parts.value[keep]),
        quantity=_own(parts.quantity[keep]),
    )
    for arr in (
        arrays.client,
        arrays.product,
        arrays.start,
        arrays.end,
        arrays.value,
        arrays.quantity,
    ):
        arr.flags.writeable = False
    extras = kt.frame.loc[:, parts.extras]
    extras = extras if all_kept else extras.iloc[keep]
    extras = extras.reset_index(drop=True)

    if trusted is None:
        product_table = _product_table(product_ids, pt, cat_rows, catalog, lists)
    elif product_ids.external.equals(trusted.product_ids.external):
        product_table = trusted.product_table
    else:
        raise SchemaError(
            f"{source}: the product ids are text while the catalog of the Book given as "
            "products has integer ids; give the product ids in the catalog's form.",
            table=source,
            column=Columns.product,
            rule="id_kind",
        )
    client_table = _client_table(
        client_ids, t=ct, c_ids=c_ids, parent=parent, satisfaction=satisfaction, dnc=dnc
    )
    event_table, other_types = _event_table(
        et,
        ids=e_ids,
        dates=e_dates,
        lookup=e_lookup,
        product_ids=product_ids,
        product_table=product_table,
        client_dtype=client_ids.dtype,
    )
    return Book(
        schema=sch,
        client_ids=client_ids,
        product_ids=product_ids,
        contract_arrays=arrays,
        product_table=product_table,
        client_table=client_table,
        event_table=event_table,
        rejected=col.frame(),
        _contracts=extras,
        lookback=lookback,
        info=BuildInfo(
            source=source,
            given=given,
            notes=tuple(col.notes),
            other_event_types=other_types,
            repeated_lines=repeated,
        ),
    )


def _same_key(parts: _ContractParts) -> npt.NDArray[np.bool_]:
    """Rows whose (client, product, start) may repeat another row's: a superset, checked later.

    One 64-bit hash column is much cheaper to deduplicate than three columns; a hash collision
    only adds a candidate, which the exact comparison that follows then discards.
    """
    n_products = np.int64(max(len(parts.product.uniques), 1))
    with np.errstate(over="ignore"):
        # The pair key is exact; mixing in the start may collide, which only adds candidates.
        pair = parts.client.codes * n_products + parts.product.codes
        h = pair.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= parts.start.view(np.uint64)
    # Sorting one uint64 column is several times cheaper than hashing 5M rows; the repeated
    # values are few, so a hash lookup of each row among them is cheap (a binary search of every
    # row cost three times as much).
    ordered = np.sort(h)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if repeated.size == 0:
        return np.zeros(len(h), dtype=bool)
    return np.asarray(pd.Index(repeated).get_indexer(h) >= 0)


def _repeated_lines(t: _Table, parts: _ContractParts) -> int:
    maybe = _same_key(parts) & t.ok
    if not maybe.any():
        return 0
    rows = np.flatnonzero(maybe)
    sub = t.raw.iloc[rows]
    return int(sub.astype("str").duplicated().sum())


def _product_table(
    ids: IdMap,
    t: _Table | None,
    cat_rows: npt.NDArray[np.intp],
    catalog: dict[str, Any],
    lists: dict[str, list[tuple[Any, ...]]],
) -> pd.DataFrame:
    n = len(ids)
    n_cat = len(cat_rows)
    external = ids.external
    as_text = pd.Series(external.astype(str), dtype="str")

    def column(ours: str, default: Any, dtype: Any) -> pd.Series:
        out = np.full(n, default, dtype=dtype)
        if t is not None and ours in catalog:
            out[:n_cat] = np.asarray(catalog[ours])[cat_rows]
        series: pd.Series = pd.Series(out, dtype=dtype)
        return series

    family = as_text.copy()
    name = as_text.copy()
    if t is not None:
        for ours, target in ((Columns.family, family), (Columns.name, name)):
            if t.has(ours):
                given = t.col(ours).iloc[cat_rows].astype("str").str.strip().reset_index(drop=True)
                given = given.where(given.notna() & (given != ""), target.iloc[:n_cat])
                target.iloc[:n_cat] = given.to_numpy()
    tier = column(Columns.tier, 0, np.int64)
    price = column(Columns.price, np.nan, np.float64)
    sellable = column(Columns.sellable, True, bool)

    def tuples(ours: str) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = [() for _ in range(n)]
        if ours in lists:
            for i, r in enumerate(cat_rows.tolist()):
                out[i] = lists[ours][r]
        return out

    segments: list[tuple[str, ...] | None] = [None] * n
    if t is not None and t.has(Columns.segments):
        raw = t.col(Columns.segments).tolist()
        for i, r in enumerate(cat_rows.tolist()):
            got = _split_list(raw[r])
            segments[i] = None if got is None else tuple(str(s) for s in got)
    table = pd.DataFrame(
        {
            Columns.product: external,
            Columns.family: family,
            Columns.tier: tier,
            Columns.price: price,
            Columns.sellable: sellable,
            Columns.requires: pd.Series(tuples(Columns.requires), dtype=object),
            Columns.excludes: pd.Series(tuples(Columns.excludes), dtype=object),
            Columns.segments: pd.Series(segments, dtype=object),
            Columns.name: name,
            _IN_CATALOG: np.arange(n) < n_cat,
        }
    )
    if t is not None:
        table = _with_extras(table, t, cat_rows)
    return table


def _with_extras(table: pd.DataFrame, t: _Table, rows: npt.NDArray[np.intp]) -> pd.DataFrame:
    extra = [c for c in t.frame.columns if c not in table.columns]
    if not extra:
        return table
    given = t.frame[extra].iloc[rows].reset_index(drop=True)
    given = given.reindex(range(len(table)))
    return pd.concat([table, given], axis=1)


def _client_table(
    ids: IdMap,
    *,
    t: _Table | None,
    c_ids: _val.IdColumn | None,
    parent: _val.IdColumn | None,
    satisfaction: _val.ParsedNumbers | None,
    dnc: npt.NDArray[np.bool_] | None,
) -> pd.DataFrame:
    n = len(ids)
    rows = np.flatnonzero(t.ok) if t is not None else np.zeros(0, dtype=np.int64)
    k = len(rows)

    def text(ours: str) -> pd.Series:
        out = pd.Series(np.nan, index=range(n), dtype="str")
        if t is not None and t.has(ours):
            out.iloc[:k] = t.col(ours).iloc[rows].astype("str").to_numpy()  # type: ignore[call-overload]
        return out

    if parent is not None and t is not None:
        codes = parent.codes[rows]
        uniq = parent.uniques
        dtype = "Int64" if pd.api.types.is_integer_dtype(uniq.dtype) else "str"
        values = pd.Series(pd.NA if dtype == "Int64" else np.nan, index=range(n), dtype=dtype)
        got = np.flatnonzero(codes >= 0)
        values.iloc[got] = uniq.take(codes[got]).to_numpy()
        parent_col = values
    else:
        parent_col = pd.Series(np.nan, index=range(n), dtype="str")
    do_not_contact = np.zeros(n, dtype=bool)
    if dnc is not None:
        do_not_contact[:k] = dnc[rows]
    sat = np.full(n, np.nan)
    if satisfaction is not None:
        sat[:k] = satisfaction.values[rows]
    table = pd.DataFrame(
        {
            Columns.client: ids.external,
            Columns.segment: text(Columns.segment),
            Columns.region: text(Columns.region),
            Columns.owner: text(Columns.owner),
            Columns.parent: parent_col,
            Columns.do_not_contact: do_not_contact,
            Columns.satisfaction: sat,
        }
    )
    if t is not None:
        table = _with_extras(table, t, rows)
    return table


def _event_table(
    t: _Table | None,
    *,
    ids: _val.IdColumn | None,
    dates: _val.ParsedDates | None,
    lookup: npt.NDArray[np.int64] | None,
    product_ids: IdMap,
    product_table: pd.DataFrame,
    client_dtype: Any,
) -> tuple[pd.DataFrame, tuple[tuple[str, int], ...]]:
    columns = [
        _CLIENT_IDX,
        _PRODUCT_IDX,
        Columns.client,
        Columns.product,
        Columns.family,
        Columns.date,
        Columns.type,
        Columns.detail,
        Columns.ref,
    ]
    if t is None or ids is None or dates is None or lookup is None:
        empty = pd.DataFrame(
            {
                _CLIENT_IDX: np.zeros(0, np.int32),
                _PRODUCT_IDX: np.zeros(0, np.int32),
                Columns.client: pd.Series([], dtype=client_dtype),
                Columns.product: pd.Series([], dtype=object),
                Columns.family: pd.Series([], dtype="str"),
                Columns.date: pd.Series([], dtype="datetime64[ns]"),
                Columns.type: pd.Series([], dtype="str"),
                Columns.detail: pd.Series([], dtype=object),
                Columns.ref: pd.Series([], dtype=object),
            }
        )
        return empty[columns], ()
    rows = np.flatnonzero(t.ok)
    client_idx = lookup[ids.codes[rows]].astype(np.int32)
    n = len(rows)
    if t.has(Columns.product):
        given = t.col(Columns.product).iloc[rows].reset_index(drop=True)
        product_idx = _lookup_products(given, product_ids)
        families = product_table[Columns.family]
        family = pd.Series(np.nan, index=range(n), dtype="str")
        hit = product_idx >= 0
        family[hit] = families.to_numpy()[product_idx[hit]]
        as_text = given.astype("str")
        named = ~hit & as_text.isin(pd.unique(families)).to_numpy(dtype=bool)
        family[named] = as_text[named].to_numpy()
    else:
        given = pd.Series([None] * n, dtype=object)
        product_idx = np.full(n, -1, dtype=np.int32)
        family = pd.Series(np.nan, index=range(n), dtype="str")
    table = pd.DataFrame(
        {
            _CLIENT_IDX: client_idx,
            _PRODUCT_IDX: product_idx.astype(np.int32),
        }
    )
    table[Columns.client] = ids.uniques.take(ids.codes[rows])
    table[Columns.product] = given.to_numpy()
    table[Columns.family] = family.to_numpy()
    table[Columns.date] = pd.to_datetime(dates.ns[rows], unit="ns")
    table[Columns.type] = t.col(Columns.type).iloc[rows].astype("str").str.strip().to_numpy()
    for ours in (Columns.detail, Columns.ref):
        table[ours] = t.col(ours).iloc[rows].to_numpy() if t.has(ours) else None
    table = _with_extras(table, t, rows)
    order = np.argsort(table[Columns.date].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    counts = table[Columns.type].value_counts()
    other = tuple((str(k), int(v)) for k, v in counts.items() if k not in EventType.known)
    return table, tuple(sorted(other))


def _lookup_products(given: pd.Series, product_ids: IdMap) -> npt.NDArray[np.int32]:
    index = product_ids.external
    if pd.api.types.is_integer_dtype(index.dtype):
        num = pd.to_numeric(given, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(num) & (num == np.round(num))
        out = np.full(len(given), -1, dtype=np.int64)
        if integral.any():
            out[integral] = index.get_indexer(num[integral].astype(np.int64))
        return out.astype(np.int32)
    text = given.astype("str").str.normalize("NFC")
    out = index.get_indexer(pd.Index(text.to_numpy(), dtype="str"))
    return np.where(given.notna().to_numpy(), out, -1).astype(np.int32)
