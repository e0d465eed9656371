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
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell import _validation as _val
from crosssell._arrays import OPEN_END, ContractArrays
from crosssell._params import Options, check_params
from crosssell._tables import (
    CLIENTS,
    CONTRACTS,
    EVENTS,
    PRODUCTS,
    TRANSACTIONS,
    ContractParts,
    Table,
    catalog_columns,
    catalog_lists,
    client_columns,
    contract_columns,
    count_repeated_lines,
    event_columns,
    mark_duplicates,
    plural,
    prepare_table,
    read_ids,
    reject,
    split_list,
)
from crosssell.columns import Columns, EventType
from crosssell.exceptions import (
    EventTypeWarning,
    InvalidParameterError,
    PurchaseLinesWarning,
    SchemaError,
)
from crosssell.ids import IdMap, positions, spell_text_ids

if TYPE_CHECKING:
    from crosssell.matrix import AsOf, ClientProductMatrix, State
    from crosssell.weighting import WeightingLike

__all__ = ["OPEN_END", "Book", "BuildInfo", "ContractArrays", "Errors", "Schema"]

Errors = Literal["raise", "collect"]

#: The fields of :class:`Schema` that say how to read, not how a column is named.
_READING: Final = ("match_names", "date_format", "decimal", "thousands")
#: The fields of :class:`Schema` that name a column.
_COLUMN_FIELDS: Final = (
    "client", "product", "contract", "start", "end", "value", "quantity", "timestamp", "amount",
    "family", "tier", "price", "requires", "excludes", "sellable", "segments", "name",
    "available_from", "available_to", "segment", "region", "owner", "parent", "do_not_contact",
    "satisfaction", "date", "type", "detail", "ref",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """Maps the caller's column names onto crosssell's, once, at the boundary, and says how to read.

    Each column field is a crosssell column (see :class:`crosssell.columns.Columns`); its value
    is the caller's name for it. Only the names that differ need to be given. The last four
    fields say how to read the tables rather than name a column.

    Parameters
    ----------
    client, product, ..., ref : str
        The caller's name of each crosssell column (default: crosssell's own name).
    match_names : {"exact", "folded"}, default "exact"
        A column spelled like a known one but not exactly (``"End_Date "``, ``"Value"``,
        ``"do-not-contact"``: equal once trimmed, case-folded and with blanks and hyphens read as
        underscores) is an error under ``"exact"``; under ``"folded"`` it is read as the known
        column, with a :class:`~crosssell.exceptions.DataWarning`.
    date_format : str or None, default None
        The ``strftime`` format of the dates given as text, e.g. ``"%d/%m/%Y"`` (ISO dates such
        as ``2024-03-01`` are read too; any other text is not a date). Without it,
        ISO dates are read as such, and a column of dates such as ``03/04/2024`` must show
        which part is the day (a part above 12) or it is refused.
    decimal : {".", ","} or None, default None
        The decimal mark of numbers given as text. Without it, ``"."`` is taken, and a column
        that can only be read with ``","`` (``"1.000,50"``) is refused.
    thousands : {",", ".", " ", "'", "_", ""} or None, default None
        The thousands separator of numbers given as text (default: ``","`` with a decimal
        ``"."``, ``"."`` with a decimal ``","``; ``""`` for none).

    Examples
    --------
    >>> s = Schema(client="customer_no", product="sku")
    >>> s.client, s.start
    ('customer_no', 'start_date')
    >>> s.renames()["customer_no"]
    'client_id'
    >>> Schema(decimal=",", date_format="%d.%m.%Y").thousands is None
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{name: [str] for name in _COLUMN_FIELDS},
        "match_names": [Options({"exact", "folded"})],
        "date_format": [str, None],
        "decimal": [Options({".", ","}), None],
        "thousands": [Options({",", ".", " ", "'", "_", ""}), None],
    }

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
    available_from: str = Columns.available_from
    available_to: str = Columns.available_to
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
    match_names: Literal["exact", "folded"] = "exact"
    date_format: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: Literal[",", ".", " ", "'", "_", ""] | None = None

    def __post_init__(self) -> None:
        check_params(self)
        if self.decimal is not None and self.decimal == self.thousands:
            raise InvalidParameterError(
                f"The 'thousands' parameter of Schema must differ from 'decimal'. Got "
                f"{self.thousands!r} for both instead.",
                owner="Schema",
                parameter="thousands",
            )

    def id_columns(self) -> tuple[str, ...]:
        """Return the caller's names of the id columns: read as text from files and databases.

        Returns
        -------
        tuple of str
            Client, product, parent, contract and ref columns, in the caller's spelling.

        Examples
        --------
        >>> Schema(client="customer_no").id_columns()[:2]
        ('customer_no', 'product_id')
        """
        return (self.client, self.product, self.parent, self.contract, self.ref)

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
            if f.name in _READING:
                continue
            ours = getattr(Columns, f.name)
            theirs = getattr(self, f.name)
            if theirs != ours:
                out[theirs] = ours
        return out

    def to_dict(self) -> dict[str, str]:
        """Return the mapping as a plain dict (for saving in a model manifest).

        The reading options appear only when they differ from their defaults, so that a schema
        of column names alone gives the dict it always gave.

        Returns
        -------
        dict of str to str

        Examples
        --------
        >>> Schema(client="cust").to_dict()["client"]
        'cust'
        >>> Schema(decimal=",").to_dict()["decimal"]
        ','
        """
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in _READING or value != f.default:
                out[f.name] = value
        return out


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

    def __post_init__(self) -> None:
        table = self.product_table
        if Columns.available_from not in table.columns or Columns.available_to not in table.columns:
            # Books saved before products had an availability window get the default one, the
            # same a build from their contracts gives.
            object.__setattr__(self, "product_table", _with_window(table, self.contract_arrays))

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
        ``"42"``), become text, and an integer spelled otherwise as text (``7`` and ``"007"``) is
        an error; text ids are trimmed and normalised to unicode NFC
        (:func:`crosssell.ids.spell_id`). A column spelled like a known one but not exactly
        (``"End_Date "``) is an error unless ``Schema(match_names="folded")``. An event type
        that misspells a built-in one is an error; other types are listed in an
        :class:`~crosssell.exceptions.EventTypeWarning`. Dates and numbers given as text are
        read as the schema's ``date_format``, ``decimal`` and ``thousands`` say; without them, a
        column that reads two ways (``03/04/2024`` throughout, ``"1.000,50"``) is an error, and
        so is a date column of numbers. Time-zone-aware dates are converted to UTC and made
        naive. A null end date is open; an end date after 2200 (e.g.
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
        exactly; with ``Schema(decimal=...)`` or ``Schema(thousands=...)`` the number columns
        are read as text too, then as the schema says. Parquet files keep their stored types.

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
        frames = _read_files((contracts, products, clients, events), schema)
        return cls.from_frames(
            frames[0], frames[1], frames[2], frames[3], schema=schema, errors=errors
        )

    @classmethod
    def from_sql(
        cls,
        con: Any,
        contracts: Any,
        products: Any = None,
        clients: Any = None,
        events: Any = None,
        *,
        schema: Schema | None = None,
        errors: Errors = "raise",
        db_schema: str | None = None,
        chunksize: int = 100_000,
    ) -> Book:
        """Read the tables from a database and validate them with :meth:`from_frames`.

        Each table is a table name or a SQL query, read in chunks through SQLAlchemy (see
        :func:`crosssell.sql.read_tables`). Id columns are read as text (an integer id ``7``
        is ``"7"``, as in a CSV file); dates, numbers and rejected rows follow the same rules as
        every other reader. Needs the ``db`` extra, and a driver for the database (``psycopg``
        for PostgreSQL, ``duckdb-engine`` for DuckDB; SQLite is built in).

        Parameters
        ----------
        con : str, sqlalchemy Engine or Connection
            A SQLAlchemy URL (``"postgresql+psycopg://user@host/crm"``,
            ``"sqlite:///crm.db"``, ``"duckdb:///crm.duckdb"``) or an engine or connection.
        contracts, products, clients, events : str or SQLAlchemy selectable
            A table name (``"contracts"``, ``"crm.contracts"``) or a query
            (``"SELECT ... FROM ... WHERE ..."``); ``products``, ``clients`` and ``events`` may
            be None.
        schema, errors
            As in :meth:`from_frames`: the column names, and what to do with bad rows.
        db_schema : str, optional
            The database schema of bare table names.
        chunksize : int, default 100000
            Rows fetched at a time.

        Returns
        -------
        Book

        Raises
        ------
        ValueError
            When a table or query cannot be read (the message names the table and the
            database's error).
        SchemaError
            As in :meth:`from_frames`.

        Examples
        --------
        >>> import sqlite3, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "crm.db"
        >>> with sqlite3.connect(path) as db:
        ...     _ = db.execute("CREATE TABLE deals (client_id INTEGER, product_id TEXT, "
        ...                    "start_date TEXT, end_date TEXT)")
        ...     _ = db.execute("INSERT INTO deals VALUES (7, 'P1', '2024-01-01', NULL)")
        >>> book = Book.from_sql(f"sqlite:///{path}",
        ...                      contracts="SELECT * FROM deals WHERE start_date < '2025-01-01'")
        >>> book.client_ids.external.tolist()
        ['7']
        """
        from crosssell.sql import read_tables

        names = schema if schema is not None else Schema()
        frames = read_tables(
            con,
            {"contracts": contracts, "products": products, "clients": clients, "events": events},
            id_columns=names.id_columns(),
            db_schema=db_schema,
            chunksize=chunksize,
        )
        return cls.from_frames(
            frames["contracts"],
            frames["products"],
            frames["clients"],
            frames["events"],
            schema=schema,
            errors=errors,
        )

    @classmethod
    def read_transactions(
        cls,
        lines: str | os.PathLike[str],
        products: str | os.PathLike[str] | None = None,
        clients: str | os.PathLike[str] | None = None,
        events: str | os.PathLike[str] | None = None,
        *,
        lookback: str | pd.Timedelta | None = "365D",
        schema: Schema | None = None,
        errors: Errors = "raise",
    ) -> Book:
        """Read purchase lines and the other tables from files, as :meth:`from_transactions` builds.

        The files are read as in :meth:`read` (ids as text, CSV or Parquet).

        Parameters
        ----------
        lines : path
            Purchase lines: ``client_id``, ``product_id``, ``timestamp`` and optionally
            ``amount``, ``quantity``.
        products, clients, events : path, optional
            As in :meth:`read`.
        lookback, schema, errors
            As in :meth:`from_transactions`.

        Returns
        -------
        Book

        Raises
        ------
        ValueError
            For a file type other than CSV or Parquet, or a ``lookback`` that is not a positive
            duration or ``"ever"``.
        SchemaError
            As in :meth:`from_transactions`.

        Examples
        --------
        >>> import pandas as pd, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"client_id": ["007", "007"], "product_id": ["P1", "P2"],
        ...               "timestamp": ["2024-01-05 10:00", "2024-03-01 09:30"],
        ...               "amount": [12.5, 3.0]}).to_csv(folder / "lines.csv", index=False)
        >>> book = Book.read_transactions(folder / "lines.csv", lookback="90D")
        >>> book.client_ids.external.tolist(), str(book.lookback)
        (['007'], '90 days 00:00:00')
        """
        frames = _read_files((lines, products, clients, events), schema)
        return cls.from_transactions(
            frames[0],
            lookback=lookback,
            products=frames[1],
            clients=frames[2],
            events=frames[3],
            schema=schema,
            errors=errors,
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

    def available(self, as_of: AsOf | None = None) -> npt.NDArray[np.bool_]:
        """Which products can be offered at ``as_of``: launched by then and not withdrawn.

        A product is available from ``available_from`` (inclusive) until ``available_to``
        (exclusive: the day it is withdrawn), the columns of :attr:`products`. Where the catalog
        gives no ``available_from``, it is the product's first contract start (its first sale,
        for :meth:`from_transactions`); a product never sold and without a date is always
        available. Without ``available_to`` a product is never withdrawn.

        Parameters
        ----------
        as_of : str, date, datetime, Timestamp, numpy.datetime64 or None, default None
            The point in time; None means the Book's last recorded date.

        Returns
        -------
        ndarray of bool, shape (n_products,)
            In ``product_ids`` order.

        Raises
        ------
        ValueError
            If ``as_of`` is not a date.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-05-01"]})
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "available_to": ["2024-09-01", None]})
        >>> book = Book.from_frames(contracts=c, products=p)
        >>> book.available("2024-03-01").tolist(), book.available("2024-09-01").tolist()
        ([True, False], [False, True])
        """
        from crosssell.matrix import to_as_of

        t = self.dates[1] if as_of is None else to_as_of(as_of, caller="Book.available")
        return _window_contains(self.product_table, int(t.value))

    def known_at(self, as_of: AsOf) -> Book:
        """Return the Book as it stood at ``as_of``: later contracts and events do not exist yet.

        Contracts that start after ``as_of`` and events dated after it are left out. End dates
        are kept: a contract's term is known when it is signed, and a later end simply means
        "still active". Id maps and the catalog are unchanged, so matrices keep their shape.

        Parameters
        ----------
        as_of : str, date, datetime, Timestamp or numpy.datetime64
            The point in time (inclusive).

        Returns
        -------
        Book
            A new Book; this one is unchanged (the same object when nothing is later).

        Raises
        ------
        ValueError
            If ``as_of`` is not a date.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1, 1], "product_id": [7, 8],
        ...                   "start_date": ["2024-01-01", "2024-05-01"]})
        >>> book = Book.from_frames(c)
        >>> len(book.known_at("2024-03-01").contracts), len(book.contracts)
        (1, 2)
        """
        import dataclasses

        from crosssell.matrix import to_as_of

        cutoff_ns = int(to_as_of(as_of, caller="Book.known_at").value)
        arrays = self.contract_arrays
        keep = arrays.start <= cutoff_ns
        changes: dict[str, Any] = {}
        if not keep.all():
            changes["contract_arrays"] = dataclasses.replace(
                arrays,
                **{f.name: getattr(arrays, f.name)[keep] for f in dataclasses.fields(arrays)},
            )
            raw = getattr(self, "_contracts", None)
            names = {f.name for f in fields(self)}
            if "_contracts" in names and isinstance(raw, pd.DataFrame) and len(raw) == len(keep):
                changes["_contracts"] = raw.loc[keep].reset_index(drop=True)
        events = self.event_table
        if Columns.date in events.columns and events.shape[0]:
            later = (events[Columns.date] > pd.Timestamp(cutoff_ns, unit="ns")).to_numpy(bool)
            if later.any():
                changes["event_table"] = events.loc[~later].reset_index(drop=True)
        return dataclasses.replace(self, **changes) if changes else self

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
                PRODUCTS,
                int(self.product_table[_IN_CATALOG].sum()),
                0,
                int(catalog.notna().sum()),
                nat,
                nat,
            ),
            (
                CLIENTS,
                self._kept(CLIENTS, per_table),
                self._kept(CLIENTS, per_table),
                0,
                nat,
                nat,
            ),
            (
                EVENTS,
                len(ev),
                int(ev[_CLIENT_IDX].nunique()),
                int(ev.loc[ev[_PRODUCT_IDX] >= 0, _PRODUCT_IDX].nunique()),
                *self._span(ev[Columns.date].to_numpy().view(np.int64)),
            ),
        ]
        out = pd.DataFrame(rows, columns=[Columns.table, _ROWS, CLIENTS, PRODUCTS, _FIRST, _LAST])
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
        word = "transaction line" if self.info.source == TRANSACTIONS else "contract row"
        lines = [
            f"Book: {n:,} {word}{'s' if n != 1 else ''}, {plural(len(self.client_ids), 'client')}, "
            f"{plural(len(self.product_ids), 'product')}, "
            f"{plural(len(self.event_table), 'event')}; "
            f"dates {_day(first)} to {_day(last)}"
        ]
        if self.lookback is not None or self.info.source == TRANSACTIONS:
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
                f"{plural(self.info.repeated_lines, 'transaction line')} repeat an earlier line "
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

    def _repr_html_(self) -> str:
        """Show the summary table and the rejected counts in a notebook."""
        from crosssell._html import card

        first, last = self.dates
        table = self.summary()
        for col in (_FIRST, _LAST):
            table[col] = [_day(t) for t in table[col]]
        tables = [("tables", table)]
        if len(self.rejected):
            counts = (
                self.rejected.groupby([Columns.table, Columns.rule], sort=True)
                .size()
                .rename("findings")
                .reset_index()
            )
            tables.append(("rejected rows (book.rejected), by table and rule", counts))
        facts = [
            (self.info.source, f"{len(self.contract_arrays):,} rows"),
            ("clients", f"{len(self.client_ids):,}"),
            ("products", f"{len(self.product_ids):,}"),
            ("events", f"{len(self.event_table):,}"),
            ("dates", f"{_day(first)} to {_day(last)}"),
            ("rejected findings", f"{len(self.rejected):,}"),
        ]
        return card("Book", facts, tables)

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
_CLIENT_IDX: Final = Columns.client_idx
_PRODUCT_IDX: Final = Columns.product_idx
_IN_CATALOG: Final = Columns.in_catalog
_ROWS: Final = Columns.rows
_REJECTED: Final = Columns.rejected
_FIRST: Final = Columns.first_date
_LAST: Final = Columns.last_date
_NAT: Final = np.iinfo(np.int64).min
#: How many event types without a built-in meaning the warning names.
_LISTED_TYPES: Final = 10
#: Every column each table may have, by crosssell's names: a column spelled like one of them
#: but not exactly is refused (or read as it under ``Schema(match_names="folded")``).
_KNOWN: Final[dict[str, tuple[str, ...]]] = {
    CONTRACTS: (
        Columns.client, Columns.product, Columns.contract, Columns.start, Columns.end,
        Columns.value, Columns.quantity,
    ),
    TRANSACTIONS: (
        Columns.client, Columns.product, Columns.contract, Columns.timestamp, Columns.amount,
        Columns.quantity,
    ),
    PRODUCTS: (
        Columns.product, Columns.family, Columns.tier, Columns.price, Columns.requires,
        Columns.excludes, Columns.sellable, Columns.segments, Columns.name,
        Columns.available_from, Columns.available_to,
    ),
    CLIENTS: (
        Columns.client, Columns.segment, Columns.region, Columns.owner, Columns.parent,
        Columns.do_not_contact, Columns.satisfaction,
    ),
    EVENTS: (
        Columns.client, Columns.date, Columns.type, Columns.product, Columns.detail, Columns.ref,
    ),
}  # fmt: skip


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


def _read_files(
    paths: Sequence[str | os.PathLike[str] | None], schema: Schema | None
) -> list[pd.DataFrame | None]:
    """Read the files of one Book; id columns (and, with decimal marks given, numbers) as text."""
    names = schema if schema is not None else Schema()
    text_columns = names.id_columns()
    if names.decimal is not None or names.thousands is not None:
        # numbers are then read by the Book with the marks given, not guessed by the reader
        text_columns += (
            names.value,
            names.amount,
            names.quantity,
            names.price,
            names.tier,
            names.satisfaction,
        )
    return [None if path is None else _read_table(path, text_columns) for path in paths]


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
    """Validate the tables into a Book: each table alone, then across tables, then assemble.

    The order of the checks is the order in which rejected rows are listed and, with
    ``errors="raise"``, which problem is raised first; it is part of the behaviour.
    """
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
    schema = schema if schema is not None else Schema()
    collector = _val.Collector(errors=errors)
    inputs = _read_inputs(
        contracts,
        products,
        clients,
        events,
        schema=schema,
        source=source,
        owner=owner,
        collector=collector,
    )
    parsed = _check_each_table(inputs, collector, lookback=lookback)
    _unify_id_kinds(inputs, parsed, collector)
    catalog = _check_against_catalog(inputs, parsed, collector)
    _check_event_clients(inputs, parsed, collector)
    _check_purchase_lines(inputs, parsed, collector)
    if inputs.products is not None:
        catalog.lists = catalog_lists(collector, inputs.products, catalog.index)
    duplicates, repeated = _check_repeats(inputs, parsed, collector)
    _check_rows_left(inputs, collector, duplicates=duplicates)
    id_maps = _map_ids(inputs, parsed, catalog)
    arrays, extras = _contract_arrays(inputs.contracts, parsed.contracts, id_maps)
    book = _assemble(
        inputs,
        parsed,
        catalog,
        id_maps,
        arrays=arrays,
        extras=extras,
        schema=schema,
        collector=collector,
        lookback=lookback,
        repeated=repeated,
    )
    # Notes are issued once the Book stands, so that each warning points at the caller's line
    # and an error is never masked by a warning raised while it propagates.
    for note, category in zip(collector.notes, collector.categories, strict=True):
        warnings.warn(note, category, stacklevel=3)
    return book


@dataclass(slots=True, kw_only=True)
class _Inputs:
    """The tables of one build, read and renamed: the contracts always, the others if given."""

    source: str
    contracts: Table
    products: Table | None
    clients: Table | None
    events: Table | None
    #: A Book given as ``products``: its validated catalog stands in for a products table.
    catalog_book: Book | None
    given: tuple[tuple[str, int], ...]

    def tables(self) -> list[Table]:
        """Return the tables given, contracts first."""
        tables = (self.contracts, self.products, self.clients, self.events)
        return [table for table in tables if table is not None]


@dataclass(slots=True, kw_only=True)
class _Parsed:
    """Each table's own validated columns; ids are encoded table by table."""

    contracts: ContractParts
    product_ids: _val.IdColumn | None
    catalog: dict[str, Any]
    client_ids: _val.IdColumn | None
    parent: _val.IdColumn | None
    satisfaction: _val.ParsedNumbers | None
    do_not_contact: npt.NDArray[np.bool_] | None
    event_ids: _val.IdColumn | None
    event_dates: _val.ParsedDates | None


@dataclass(slots=True, kw_only=True)
class _Catalog:
    """The products the catalog defines, in its order, and its requires/excludes lists."""

    #: Whether a catalog was given (a products table or a Book).
    given: bool
    #: The kept catalog rows, in order.
    rows: npt.NDArray[np.intp]
    #: Their product ids: the head of the Book's product ids.
    index: pd.Index
    lists: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class _IdMaps:
    """The Book's id maps, and for each table's id codes the position they map to (-1: none)."""

    client_ids: IdMap
    product_ids: IdMap
    client_lookup: npt.NDArray[np.int64]
    product_lookup: npt.NDArray[np.int64]
    event_lookup: npt.NDArray[np.int64] | None


def _read_inputs(
    contracts: Any,
    products: Any,
    clients: Any,
    events: Any,
    *,
    schema: Schema,
    source: str,
    owner: str,
    collector: _val.Collector,
) -> _Inputs:
    """Read each table given, check its required columns and rename them to ours."""
    start_col = Columns.timestamp if source == TRANSACTIONS else Columns.start
    # A Book as products lends its validated catalog: its ids stand in for an encoded table.
    catalog_book: Book | None = products if isinstance(products, Book) else None
    if catalog_book is not None:
        products = None
    renames = schema.renames()
    schema_fields = {getattr(Columns, name): name for name in _COLUMN_FIELDS}
    fold = schema.match_names == "folded"
    reading = _val.Reading(
        date_format=schema.date_format, decimal=schema.decimal, thousands=schema.thousands
    )

    def read(obj: Any, name: str, parameter: str, required: tuple[str, ...]) -> Table | None:
        if obj is None and name != source:
            return None
        return prepare_table(
            obj,
            name=name,
            parameter=parameter,
            owner=owner,
            renames=renames,
            schema_fields=schema_fields,
            required=required,
            known=_KNOWN[name],
            fold=fold,
            collector=collector,
            reading=reading,
        )

    contract_table = read(
        contracts,
        source,
        "lines" if source == TRANSACTIONS else CONTRACTS,
        (Columns.client, Columns.product, start_col),
    )
    assert contract_table is not None
    product_table = read(products, PRODUCTS, PRODUCTS, (Columns.product,))
    client_table = read(clients, CLIENTS, CLIENTS, (Columns.client,))
    event_table = read(events, EVENTS, EVENTS, (Columns.client, Columns.date, Columns.type))
    if len(contract_table.raw) == 0:
        raise SchemaError(
            f"{source}: the table is empty; a Book needs at least one "
            f"{'purchase line' if source == TRANSACTIONS else 'contract'}. "
            "Check the file or the filter that produced it.",
            table=source,
            rule="empty",
        )
    inputs = _Inputs(
        source=source,
        contracts=contract_table,
        products=product_table,
        clients=client_table,
        events=event_table,
        catalog_book=catalog_book,
        given=(),
    )
    given = tuple((t.name, len(t.raw)) for t in inputs.tables())
    if catalog_book is not None:
        given += ((PRODUCTS, len(catalog_book.product_ids)),)
    inputs.given = given
    return inputs


def _check_each_table(
    inputs: _Inputs, collector: _val.Collector, *, lookback: pd.Timedelta | None
) -> _Parsed:
    """Validate each table's own columns, one table at a time."""
    contracts = contract_columns(collector, inputs.contracts, lookback=lookback)
    products = inputs.products
    product_ids = (
        None
        if products is None
        else read_ids(collector, products, Columns.product, show=(Columns.product,))
    )
    if inputs.catalog_book is not None:
        n_products = len(inputs.catalog_book.product_ids)
        product_ids = _val.IdColumn(
            codes=np.arange(n_products, dtype=np.int64),
            uniques=inputs.catalog_book.product_ids.external,
            bad=np.zeros(n_products, dtype=bool),
        )
    catalog = (
        {}
        if products is None or product_ids is None
        else catalog_columns(collector, products, product_ids)
    )
    clients = inputs.clients
    client_ids = (
        None
        if clients is None
        else read_ids(collector, clients, Columns.client, show=(Columns.client,))
    )
    parent = satisfaction = do_not_contact = None
    if clients is not None and client_ids is not None:
        parent, satisfaction, do_not_contact = client_columns(collector, clients, client_ids)
    events = inputs.events
    event_ids, event_dates = (None, None) if events is None else event_columns(collector, events)
    return _Parsed(
        contracts=contracts,
        product_ids=product_ids,
        catalog=catalog,
        client_ids=client_ids,
        parent=parent,
        satisfaction=satisfaction,
        do_not_contact=do_not_contact,
        event_ids=event_ids,
        event_dates=event_dates,
    )


def _unify_id_kinds(inputs: _Inputs, parsed: _Parsed, collector: _val.Collector) -> None:
    """Give every table the same kind of client id, and of product id (text or integer)."""
    source = inputs.source
    client_columns_ = {source: parsed.contracts.client}
    if parsed.client_ids is not None:
        client_columns_[CLIENTS] = parsed.client_ids
    if parsed.event_ids is not None:
        client_columns_[EVENTS] = parsed.event_ids
    if parsed.parent is not None and len(parsed.parent.uniques):
        client_columns_["clients.parent_id"] = parsed.parent
    labels = {source: inputs.contracts.label(Columns.client)}
    if inputs.clients is not None:
        labels[CLIENTS] = inputs.clients.label(Columns.client)
        labels["clients.parent_id"] = inputs.clients.label(Columns.parent)
    if inputs.events is not None:
        labels[EVENTS] = inputs.events.label(Columns.client)
    unified = _val.unify_id_kinds(
        client_columns_, what="client", collector=collector, labels=labels
    )
    parsed.contracts.client = unified[source]
    parsed.client_ids = unified.get(CLIENTS)
    parsed.event_ids = unified.get(EVENTS)
    parsed.parent = unified.get("clients.parent_id", parsed.parent)
    product_columns = {source: parsed.contracts.product}
    if parsed.product_ids is not None:
        product_columns[PRODUCTS] = parsed.product_ids
    labels = {source: inputs.contracts.label(Columns.product)}
    if inputs.products is not None:
        labels[PRODUCTS] = inputs.products.label(Columns.product)
    unified = _val.unify_id_kinds(
        product_columns, what="product", collector=collector, labels=labels
    )
    parsed.contracts.product = unified[source]
    parsed.product_ids = unified.get(PRODUCTS)


def _check_against_catalog(inputs: _Inputs, parsed: _Parsed, collector: _val.Collector) -> _Catalog:
    """Take the catalog's products first; contract products must be in it when it is given."""
    contracts = inputs.contracts
    product_ids = parsed.product_ids
    contract_products = parsed.contracts.product
    given = (inputs.products is not None or inputs.catalog_book is not None) and (
        product_ids is not None
    )
    if not given or product_ids is None:
        return _Catalog(
            given=False,
            rows=np.zeros(0, dtype=np.int64),
            index=pd.Index(contract_products.uniques[:0]),
        )
    rows = (
        np.flatnonzero(inputs.products.ok)
        if inputs.products is not None
        else np.arange(len(product_ids.uniques))
    )
    index = product_ids.uniques.take(product_ids.codes[rows])
    pos = index.get_indexer(contract_products.uniques)
    unknown_unique = np.append(pos < 0, False)
    unknown = pd.Series(unknown_unique[contract_products.codes]).to_numpy() & contracts.ok
    reject(
        collector,
        contracts,
        column=Columns.product,
        rule="unknown_product",
        bad=unknown,
        what=f"{contracts.label(Columns.product)!r} is not in the products table",
        fix="Add them to products, or remove these rows",
        show=(Columns.client, Columns.product),
    )
    return _Catalog(given=True, rows=rows, index=index)


def _check_event_clients(inputs: _Inputs, parsed: _Parsed, collector: _val.Collector) -> None:
    """Reject events of clients unknown to both the clients table and the contracts."""
    clients, events = inputs.clients, inputs.events
    client_ids, event_ids = parsed.client_ids, parsed.event_ids
    if events is None or event_ids is None or client_ids is None or clients is None:
        return
    contract_clients = parsed.contracts.client
    known = client_ids.uniques.take(
        np.unique(client_ids.codes[clients.ok & (client_ids.codes >= 0)])
    )
    known = known.append(
        contract_clients.uniques.take(np.unique(contract_clients.codes[inputs.contracts.ok]))
    )
    hit = np.append(pd.Index(known).unique().get_indexer(event_ids.uniques) >= 0, True)
    unknown = ~hit[event_ids.codes] & events.ok
    reject(
        collector,
        events,
        column=Columns.client,
        rule="unknown_client",
        bad=unknown,
        what=f"{events.label(Columns.client)!r} is neither in the clients table nor in "
        f"{inputs.source}",
        fix="Add them to clients, or remove these events",
        show=(Columns.client, Columns.date, Columns.type),
    )


_DAY_NS: Final = 86_400 * 10**9
# a contracts table "looks like purchase lines" from this many rows on, when no row has an end
# date and either most rows carry a time of day or many restart a client's product still held
_LINES_MIN_ROWS: Final = 10
_LINES_TIMED_SHARE: Final = 0.5
_LINES_REPEAT_SHARE: Final = 0.2


def _check_purchase_lines(inputs: _Inputs, parsed: _Parsed, collector: _val.Collector) -> None:
    """Note (as a :class:`PurchaseLinesWarning`) a contracts table that looks like purchase lines.

    Read as contracts, each purchase would be a product held for ever: the warning points to
    ``Book.from_transactions``. Nothing is changed.
    """
    if inputs.source != CONTRACTS:
        return
    ok = inputs.contracts.ok
    parts = parsed.contracts
    n = int(ok.sum())
    if n < _LINES_MIN_ROWS or (parts.end[ok] != OPEN_END).any():
        return
    start = parts.start[ok]
    timed = float(np.mean(start % _DAY_NS != 0))
    pairs = parts.client.codes[ok] * (int(parts.product.codes.max()) + 1) + parts.product.codes[ok]
    repeated = 1.0 - len(np.unique(pairs)) / n
    if timed < _LINES_TIMED_SHARE and repeated < _LINES_REPEAT_SHARE:
        return
    why = (
        f"{timed:.0%} of the start dates carry a time of day"
        if timed >= _LINES_TIMED_SHARE
        else f"{repeated:.0%} of the rows start again a product the client already holds"
    )
    collector.note(
        f"{inputs.source}: no row has an end date and {why}: these look like purchase lines, "
        "and read as contracts every purchase is a product held for ever. Build the Book with "
        "Book.from_transactions(lines, lookback=...) (on the command line: --transactions FILE "
        "--lookback 365D), or give the contracts their end dates.",
        PurchaseLinesWarning,
    )


def _check_repeats(inputs: _Inputs, parsed: _Parsed, collector: _val.Collector) -> tuple[int, int]:
    """Collapse duplicate contract rows; count repeated purchase lines, which stay.

    Returns ``(duplicates collapsed, lines repeated)``.
    """
    if inputs.source == CONTRACTS:
        return mark_duplicates(collector, inputs.contracts, parsed.contracts), 0
    return 0, count_repeated_lines(inputs.contracts, parsed.contracts)


def _check_rows_left(inputs: _Inputs, collector: _val.Collector, *, duplicates: int) -> None:
    """Raise when no contract row is left; note how many rows were set aside, per table."""
    source = inputs.source
    contracts = inputs.contracts
    if not contracts.ok.any():
        raise SchemaError(
            f"{source}: no row is left after setting aside {plural(len(contracts.ok), 'row')} "
            f'(see the reasons with errors="collect" in book.rejected). Fix the data.',
            table=source,
            rule="empty",
        )
    tables = inputs.tables()
    n_rejected = sum(int((~t.ok).sum()) for t in tables)
    if collector.errors == "collect" and n_rejected > duplicates:
        by_table = ", ".join(f"{t.name} {int((~t.ok).sum()):,}" for t in tables if (~t.ok).any())
        collector.note(f"{plural(n_rejected, 'row')} set aside in book.rejected ({by_table}).")


def _map_ids(inputs: _Inputs, parsed: _Parsed, catalog: _Catalog) -> _IdMaps:
    """Build the id maps: clients table first, then contracts, then events; catalog first."""
    contracts, clients, events = inputs.contracts, inputs.clients, inputs.events
    contract_clients = parsed.contracts.client
    contract_products = parsed.contracts.product
    client_ids, event_ids = parsed.client_ids, parsed.event_ids
    all_kept = bool(contracts.ok.all())
    if clients is not None and client_ids is not None:
        base = client_ids.uniques.take(client_ids.codes[np.flatnonzero(clients.ok)])
    else:
        base = pd.Index(contract_clients.uniques[:0])
    client_index, client_lookup = _extend(
        base,
        contract_clients,
        _first_used(
            contract_clients.codes, contracts.ok, len(contract_clients.uniques), all_kept=all_kept
        ),
    )
    event_lookup = None
    if events is not None and event_ids is not None:
        used = _first_used(
            event_ids.codes, events.ok, len(event_ids.uniques), all_kept=bool(events.ok.all())
        )
        if clients is None:
            client_index, event_lookup = _extend(client_index, event_ids, used)
        else:
            pos = client_index.get_indexer(event_ids.uniques.take(used))
            event_lookup = np.full(len(event_ids.uniques) + 1, -1, dtype=np.int64)
            event_lookup[used] = pos
    product_index = catalog.index
    if catalog.given:
        used = np.unique(contract_products.codes[contracts.ok])
        pos = product_index.get_indexer(contract_products.uniques.take(used))
        product_lookup = np.full(len(contract_products.uniques) + 1, -1, dtype=np.int64)
        product_lookup[used] = pos
    else:
        product_index, product_lookup = _extend(
            product_index,
            contract_products,
            _first_used(
                contract_products.codes,
                contracts.ok,
                len(contract_products.uniques),
                all_kept=all_kept,
            ),
        )
    return _IdMaps(
        client_ids=IdMap._from_unique(client_index, name="client"),
        product_ids=IdMap._from_unique(product_index, name="product"),
        client_lookup=client_lookup,
        product_lookup=product_lookup,
        event_lookup=event_lookup,
    )


def _contract_arrays(
    contracts: Table, parts: ContractParts, id_maps: _IdMaps
) -> tuple[ContractArrays, pd.DataFrame]:
    """Return the kept contracts as read-only arrays, and their extra columns as a frame."""
    all_kept = bool(contracts.ok.all())
    # One take per array, and only when rows were set aside.
    keep = slice(None) if all_kept else np.flatnonzero(contracts.ok)
    arrays = ContractArrays(
        client=_gather(id_maps.client_lookup, parts.client.codes[keep]),
        product=_gather(id_maps.product_lookup, parts.product.codes[keep]),
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
    extras = contracts.frame.loc[:, parts.extras]
    extras = extras if all_kept else extras.iloc[keep]
    return arrays, extras.reset_index(drop=True)


def _assemble(
    inputs: _Inputs,
    parsed: _Parsed,
    catalog: _Catalog,
    id_maps: _IdMaps,
    *,
    arrays: ContractArrays,
    extras: pd.DataFrame,
    schema: Schema,
    collector: _val.Collector,
    lookback: pd.Timedelta | None,
    repeated: int,
) -> Book:
    """Build the product, client and event tables and stand the Book up."""
    source = inputs.source
    catalog_book = inputs.catalog_book
    product_ids, client_ids = id_maps.product_ids, id_maps.client_ids
    if catalog_book is None:
        product_table = _product_table(
            product_ids, inputs.products, catalog.rows, parsed.catalog, catalog.lists, arrays=arrays
        )
    elif product_ids.external.equals(catalog_book.product_ids.external):
        product_table = catalog_book.product_table
    else:
        raise SchemaError(
            f"{source}: the product ids are text while the catalog of the Book given as "
            "products has integer ids; give the product ids in the catalog's form.",
            table=source,
            column=Columns.product,
            rule="id_kind",
        )
    client_table = _client_table(
        client_ids,
        t=inputs.clients,
        c_ids=parsed.client_ids,
        parent=parsed.parent,
        satisfaction=parsed.satisfaction,
        dnc=parsed.do_not_contact,
    )
    event_table, other_types = _event_table(
        inputs.events,
        ids=parsed.event_ids,
        dates=parsed.event_dates,
        lookup=id_maps.event_lookup,
        product_ids=product_ids,
        product_table=product_table,
        client_dtype=client_ids.dtype,
    )
    if other_types:
        collector.note(_other_types_note(other_types), EventTypeWarning)
    return Book(
        schema=schema,
        client_ids=client_ids,
        product_ids=product_ids,
        contract_arrays=arrays,
        product_table=product_table,
        client_table=client_table,
        event_table=event_table,
        rejected=collector.frame(),
        _contracts=extras,
        lookback=lookback,
        info=BuildInfo(
            source=source,
            given=inputs.given,
            notes=tuple(collector.notes),
            other_event_types=other_types,
            repeated_lines=repeated,
        ),
    )


def _other_types_note(other: tuple[tuple[str, int], ...]) -> str:
    """One sentence listing the event types without a built-in meaning, most frequent first."""
    ranked = sorted(other, key=lambda tc: (-tc[1], tc[0]))
    listed = ", ".join(f"{t!r} ({plural(c, 'row')})" for t, c in ranked[:_LISTED_TYPES])
    more = len(ranked) - _LISTED_TYPES
    rest = f" and {plural(more, 'other')} (see book.validation_report())" if more > 0 else ""
    return (
        f"events: {plural(len(ranked), 'event type')} without a built-in meaning, kept for rules "
        f"of your own: {listed}{rest}. Built-in types: {', '.join(sorted(EventType.known))}."
    )


def _product_table(
    ids: IdMap,
    t: Table | None,
    cat_rows: npt.NDArray[np.intp],
    catalog: dict[str, Any],
    lists: dict[str, list[tuple[Any, ...]]],
    *,
    arrays: ContractArrays,
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
                given = (
                    t.column(ours).iloc[cat_rows].astype("str").str.strip().reset_index(drop=True)
                )
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
        raw = t.column(Columns.segments).tolist()
        for i, r in enumerate(cat_rows.tolist()):
            got = split_list(raw[r])
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
            Columns.available_from: _as_dates(column(Columns.available_from, _NAT, np.int64)),
            Columns.available_to: _as_dates(column(Columns.available_to, _NAT, np.int64)),
            _IN_CATALOG: np.arange(n) < n_cat,
        }
    )
    # A product with no given start is available from its first contract (its first sale).
    launch = table[Columns.available_from].isna().to_numpy()
    if launch.any():
        first = _first_starts(arrays, n)
        table.loc[launch, Columns.available_from] = first[launch].view("datetime64[ns]")
    if t is not None:
        table = _with_extras(table, t, cat_rows)
    return table


def _window_contains(products: pd.DataFrame, at_ns: int) -> npt.NDArray[np.bool_]:
    """Whether each product's availability window holds the instant ``at_ns`` (NaT: no bound)."""
    start = products[Columns.available_from].to_numpy(dtype="datetime64[ns]").view(np.int64)
    end = products[Columns.available_to].to_numpy(dtype="datetime64[ns]").view(np.int64)
    # NaT is the smallest int64: an unknown start is always passed; an unknown end never comes.
    return np.asarray((start <= at_ns) & ((end == _NAT) | (at_ns < end)), dtype=bool)


def _first_starts(arrays: ContractArrays, n_products: int) -> npt.NDArray[np.int64]:
    """Each product's earliest contract start, in nanoseconds; the smallest int64 if never sold."""
    first = pd.Series(arrays.start).groupby(arrays.product).min()
    out = np.full(n_products, _NAT, dtype=np.int64)
    out[first.index.to_numpy(dtype=np.int64)] = first.to_numpy(dtype=np.int64)
    return out


def _with_window(table: pd.DataFrame, arrays: ContractArrays) -> pd.DataFrame:
    """Give the product table the default availability window where it has none."""
    table = table.copy()
    n = len(table)
    if Columns.available_from not in table.columns:
        table[Columns.available_from] = _as_dates(pd.Series(_first_starts(arrays, n)))
    if Columns.available_to not in table.columns:
        table[Columns.available_to] = _as_dates(pd.Series(np.full(n, _NAT, dtype=np.int64)))
    return table


def _as_dates(ns: pd.Series) -> pd.Series:
    """Nanoseconds since the epoch as datetimes; the smallest int64 is NaT."""
    return pd.Series(ns.to_numpy(dtype=np.int64).view("datetime64[ns]"))


def _with_extras(table: pd.DataFrame, t: Table, rows: npt.NDArray[np.intp]) -> pd.DataFrame:
    extra = [c for c in t.frame.columns if c not in table.columns]
    if not extra:
        return table
    given = t.frame[extra].iloc[rows].reset_index(drop=True)
    given = given.reindex(range(len(table)))
    return pd.concat([table, given], axis=1)


def _client_table(
    ids: IdMap,
    *,
    t: Table | None,
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
            out.iloc[:k] = t.column(ours).iloc[rows].astype("str").to_numpy()  # type: ignore[call-overload]
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
    t: Table | None,
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
        given = t.column(Columns.product).iloc[rows].reset_index(drop=True)
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
    table[Columns.product] = _values(given)
    table[Columns.family] = family.array
    table[Columns.date] = pd.to_datetime(dates.ns[rows], unit="ns")
    table[Columns.type] = t.column(Columns.type).iloc[rows].astype("str").str.strip().array
    for ours in (Columns.detail, Columns.ref):
        table[ours] = _values(t.column(ours).iloc[rows]) if t.has(ours) else None
    table = _with_extras(table, t, rows)
    order = np.argsort(table[Columns.date].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    counts = table[Columns.type].value_counts()
    other = tuple((str(k), int(v)) for k, v in counts.items() if k not in EventType.known)
    return table, tuple(sorted(other))


def _values(column: pd.Series) -> Any:
    """Give a column's values for a frame with another index: text stays text, not copied.

    ``to_numpy`` on a ``str`` column builds one Python object per row, and the frame infers
    ``str`` again from them (a second pass); an all-missing ``str`` column would come back as
    ``object``.
    """
    return column.array if isinstance(column.dtype, pd.StringDtype) else column.to_numpy()


def _lookup_products(given: pd.Series, product_ids: IdMap) -> npt.NDArray[np.int32]:
    index = product_ids.external
    if pd.api.types.is_integer_dtype(index.dtype):
        num = pd.to_numeric(given, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(num) & (num == np.round(num))
        out = np.full(len(given), -1, dtype=np.int64)
        if integral.any():
            out[integral] = index.get_indexer(num[integral].astype(np.int64))
        return out.astype(np.int32)
    return positions(index, given, spell=spell_text_ids).astype(np.int32)
