"""Per-table validation of a Book's inputs: each table's own columns, one table at a time.

:mod:`crosssell._validation` holds the column-level checks (ids, dates, numbers, booleans) and
the :class:`~crosssell._validation.Collector` of failures; this module knows the Book's tables
and applies those checks to their columns, rule by rule, keeping track of the rows still kept.
Checks that span tables (unknown ids, id kinds) and the assembly of the Book stay in
:mod:`crosssell.book`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell import _validation as _val
from crosssell._arrays import OPEN_END
from crosssell.columns import Columns, EventType
from crosssell.exceptions import SchemaError
from crosssell.ids import spell_id

__all__ = [
    "CLIENTS",
    "CONTRACTS",
    "EVENTS",
    "PRODUCTS",
    "TRANSACTIONS",
    "ContractParts",
    "Table",
    "as_id",
    "catalog_columns",
    "catalog_lists",
    "client_columns",
    "contract_columns",
    "count_repeated_lines",
    "event_columns",
    "mark_duplicates",
    "near_event_type",
    "parse_number_column",
    "plural",
    "prepare_table",
    "read_dates",
    "read_ids",
    "read_numbers",
    "reject",
    "same_key",
    "split_list",
]

#: Table names, as they appear in messages and in ``Book.rejected``.
CONTRACTS: Final = "contracts"
TRANSACTIONS: Final = "transactions"
PRODUCTS: Final = "products"
CLIENTS: Final = "clients"
EVENTS: Final = "events"
#: Values above this are taken for typing errors (a trillion per year per contract).
_MAX_AMOUNT: Final = 1e12
_SPLIT = re.compile(r"[;,|]")
#: Built-in event types at least this long catch one-slip misspellings (shorter ones only case).
_SLIP_MIN: Final = 7


def plural(n: int, word: str) -> str:
    """Return ``n`` with thousands separators and ``word``, plural unless ``n`` is 1.

    Examples
    --------
    >>> plural(1, "row"), plural(1200, "row")
    ('1 row', '1,200 rows')
    """
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


@dataclass(slots=True, kw_only=True)
class Table:
    """One input table during a build: the caller's frame, its renamed view and kept rows.

    Attributes
    ----------
    name : str
        The table's name in messages (``"contracts"``, ``"transactions"``, ``"products"``...).
    raw : pandas.DataFrame
        The caller's frame, for showing rejected rows as given.
    frame : pandas.DataFrame
        The same rows under crosssell's column names.
    labels : dict of str to str
        ``{crosssell's name: caller's name}`` where they differ, for messages.
    ok : ndarray of bool
        The rows still kept; every rejection clears its rows here.

    Examples
    --------
    >>> import pandas as pd
    >>> t = prepare_table(pd.DataFrame({"cust": ["C1"]}), name="clients", parameter="clients",
    ...                   owner="Book.from_frames", renames={"cust": "client_id"},
    ...                   schema_fields={}, required=("client_id",))
    >>> t.column("client_id").tolist(), t.label("client_id"), t.show("client_id", "region")
    (['C1'], 'cust', ['cust'])
    """

    name: str
    raw: pd.DataFrame
    frame: pd.DataFrame
    labels: dict[str, str]
    ok: npt.NDArray[np.bool_]
    reading: _val.Reading = field(default_factory=_val.Reading)

    def column(self, ours: str) -> pd.Series:
        return self.frame[ours]

    def has(self, ours: str) -> bool:
        return ours in self.frame.columns

    def label(self, ours: str) -> str:
        return self.labels.get(ours, ours)

    def show(self, *ours: str) -> list[str]:
        return [self.label(c) for c in ours if self.has(c)]


def prepare_table(
    obj: Any,
    *,
    name: str,
    parameter: str,
    owner: str,
    renames: Mapping[str, str],
    schema_fields: Mapping[str, str],
    required: Sequence[str],
    known: Sequence[str] = (),
    fold: bool = False,
    collector: _val.Collector | None = None,
    reading: _val.Reading | None = None,
) -> Table:
    """Read one input table, check its required columns and rename them to crosssell's names.

    Parameters
    ----------
    obj : DataFrame-like
        The caller's table (anything :func:`crosssell._validation.as_pandas` reads).
    name : str
        The table's name in messages.
    parameter, owner : str
        The parameter and the function it was passed to, for messages.
    renames : mapping of str to str
        ``{caller's name: crosssell's name}`` (``Schema.renames()``).
    schema_fields : mapping of str to str
        ``{crosssell's name: Schema field}``, to suggest a mapping for a missing column.
    required : sequence of str
        crosssell's names of the columns the table must have.
    known : sequence of str, optional
        crosssell's names of every column the table may have (the required ones included): a
        column spelled like one of them (:func:`crosssell._validation.near_names`) is an error.
    fold : bool, default False
        Read such near names as the known ones instead, with a note to ``collector``.
    collector : Collector, optional
        Receives the note of the names read under ``fold``.
    reading : Reading, optional
        How the table's dates and numbers are written, when the caller said so.

    Returns
    -------
    Table
        With every row kept.

    Raises
    ------
    SchemaError
        If a required column is missing, a column is spelled like a known one (unless ``fold``),
        or two columns end up with the same name.

    Examples
    --------
    >>> import pandas as pd
    >>> t = prepare_table(pd.DataFrame({"client_id": ["C1", "C2"]}), name="clients",
    ...                   parameter="clients", owner="Book.from_frames", renames={},
    ...                   schema_fields={}, required=("client_id",))
    >>> t.name, t.ok.tolist()
    ('clients', [True, True])
    """
    raw = _val.as_pandas(obj, parameter=parameter, owner=owner)
    inverse = {ours: theirs for theirs, ours in renames.items()}
    expected = {inverse.get(c, c): c for c in dict.fromkeys((*required, *known))}
    near = (
        _val.near_names(
            raw,
            table=name,
            known=expected,
            schema_fields=schema_fields,
            fold=fold,
        )
        if fold
        else {}
    )
    if near:
        renames = {**renames, **{theirs: expected[target] for theirs, target in near.items()}}
        inverse = {ours: theirs for theirs, ours in renames.items()}
        if collector is not None:
            read = ", ".join(f"{theirs!r} as {target!r}" for theirs, target in near.items())
            collector.note(
                f'{name}: read {plural(len(near), "column")} under match_names="folded": {read}.'
            )
    _val.check_columns(
        raw,
        table=name,
        required={inverse.get(c, c): c for c in required},
        schema_fields=schema_fields,
    )
    if not fold:
        _val.near_names(raw, table=name, known=expected, schema_fields=schema_fields, fold=False)
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
    return Table(
        name=name,
        raw=raw,
        frame=frame,
        labels=inverse,
        ok=np.ones(len(raw), dtype=bool),
        reading=reading if reading is not None else _val.Reading(),
    )


def reject(
    collector: _val.Collector,
    table: Table,
    *,
    column: str | None,
    rule: str,
    bad: npt.NDArray[np.bool_],
    what: str,
    fix: str,
    show: Sequence[str] = (),
) -> None:
    """Report the rows ``bad`` as breaking ``rule`` and stop keeping them.

    ``what`` and ``fix`` complete the message; ``column`` and ``show`` are crosssell's names,
    reported in the caller's spelling. Nothing happens when no row is bad.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> import numpy as np
    >>> t = table("clients", client_id=["C1", "C2"])
    >>> collector = Collector(errors="collect")
    >>> reject(collector, t, column="client_id", rule="example", bad=np.array([False, True]),
    ...        what="'client_id' is an example", fix="Nothing to fix")
    >>> t.ok.tolist(), collector.frame()["row"].tolist()
    ([True, False], [1])
    """
    if not bad.any():
        return
    collector.fail(
        table=table.name,
        column=None if column is None else table.label(column),
        rule=rule,
        bad=bad,
        frame=table.raw,
        what=what,
        fix=fix,
        show=table.show(*show) if show else ([table.label(column)] if column is not None else []),
    )
    table.ok &= ~bad


def read_ids(
    collector: _val.Collector,
    table: Table,
    ours: str,
    *,
    show: Sequence[str],
    allow_null: bool = False,
) -> _val.IdColumn:
    """Encode the id column ``ours`` (:func:`crosssell._validation.encode_ids`); reject bad ids.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("clients", client_id=["C1", "C2", "C1"])
    >>> read_ids(Collector(errors="raise"), t, "client_id", show=()).codes.tolist()
    [0, 1, 0]
    """
    ids = _val.encode_ids(
        table.column(ours),
        table=table.name,
        column=table.label(ours),
        frame=table.raw,
        collector=collector,
        allow_null=allow_null,
        show=table.show(*show),
    )
    if ids.bad.any():
        table.ok &= ~ids.bad
    return ids


def read_dates(
    collector: _val.Collector, table: Table, ours: str, *, show: Sequence[str], required: bool
) -> _val.ParsedDates:
    """Parse the date column ``ours``; reject missing (if ``required``), unreadable, early dates.

    Dates after 2200 are left to the caller (an open end for an end date, an error elsewhere);
    time zones are converted to UTC with a note.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("events", date=["2024-01-01", "soon"])
    >>> d = read_dates(Collector(errors="collect"), t, "date", show=("date",), required=True)
    >>> t.ok.tolist()
    [True, False]
    """
    d = _val.parse_dates(table.column(ours), date_format=table.reading.date_format)
    name = repr(table.label(ours))
    _check_date_reading(collector, table, ours, d, show=show)
    if required:
        reject(
            collector,
            table,
            column=ours,
            rule="null_date",
            bad=d.null,
            what=f"{name} is missing",
            fix=f"Fill in the {name} values",
            show=show,
        )
    reject(
        collector,
        table,
        column=ours,
        rule="bad_date",
        bad=d.bad,
        what=f"{name} is not a date",
        fix="Fix the dates",
        show=show,
    )
    reject(
        collector,
        table,
        column=ours,
        rule="date_out_of_range",
        bad=d.early,
        what=f"{name} is before 1678",
        fix="Fix the dates",
        show=show,
    )
    if d.tz_rows:
        collector.note(
            f"{table.name}: {name} had time zones in {plural(d.tz_rows, 'row')}; converted to UTC "
            "and made naive."
        )
    return d


def _refuse_dates(
    table: Table,
    ours: str,
    rows: npt.NDArray[np.bool_],
    *,
    show: Sequence[str],
    what: str,
    fix: str,
    rule: str,
) -> NoReturn:
    where = np.flatnonzero(rows)
    lines = _val.describe_rows(table.raw, where[: _val.SHOWN], table.show(*show, ours))
    raise SchemaError(
        f"{table.name}: {table.label(ours)!r} {what} in {plural(int(where.size), 'row')} "
        f"(showing {len(lines)}): {'; '.join(lines)}. {fix}",
        table=table.name,
        column=table.label(ours),
        rule=rule,
        rows=where.tolist(),
    )


def _check_date_reading(
    collector: _val.Collector,
    table: Table,
    ours: str,
    d: _val.ParsedDates,
    *,
    show: Sequence[str],
) -> None:
    """Refuse numbers for dates and dates that read two ways; note a day-first reading."""
    name = table.label(ours)
    if d.numeric:
        _refuse_dates(
            table,
            ours,
            d.bad,
            show=show,
            what="holds numbers, not dates",
            fix=(
                "A number may count days, seconds or nanoseconds since 1970: convert the column "
                f'with the unit it has, e.g. pd.to_datetime(frame[{name!r}], unit="D") for days '
                'or unit="s" for seconds.'
            ),
            rule="numeric_date",
        )
    option = 'Schema(date_format="%d/%m/%Y") or Schema(date_format="%m/%d/%Y")'
    if d.day_first.any() and d.month_first.any():
        _refuse_dates(
            table,
            ours,
            d.day_first | d.month_first,
            show=show,
            what="holds dates with the day first (13/04/2024) and others with the month first "
            "(04/13/2024)",
            fix=f"Write every date one way, and say which with {option}.",
            rule="date_order",
        )
    if d.order is None and d.two_ways.any():
        _refuse_dates(
            table,
            ours,
            d.two_ways,
            show=show,
            what="holds dates that read two ways (03/04/2024: 3 April or March 4) and none that "
            "says which part is the day",
            fix=f"Say how the dates are written with {option}.",
            rule="date_order",
        )
    if d.order is not None and d.two_ways.any():
        proof = d.day_first if d.order == "day" else d.month_first
        column = table.column(ours)
        two = str(column.iloc[int(np.flatnonzero(d.two_ways)[0])]).strip()
        sure = str(column.iloc[int(np.flatnonzero(proof)[0])]).strip()
        collector.note(
            f"{table.name}: {name!r} held dates that read two ways in "
            f"{plural(int(d.two_ways.sum()), 'row')} (e.g. {two!r}); they were read {d.order} "
            f"first, as {plural(int(proof.sum()), 'row')} can only be read so (e.g. {sure!r}). "
            f"Pass {option} to say so."
        )


def read_numbers(
    collector: _val.Collector,
    table: Table,
    ours: str,
    *,
    show: Sequence[str],
    positive: bool,
) -> npt.NDArray[np.float64]:
    """Parse the number column ``ours``; reject text, negative, infinite and huge values.

    With ``positive``, zero is rejected too. A missing value stays NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("contracts", value=["1,000.50", "-3"])
    >>> collector = Collector(errors="collect")
    >>> read_numbers(collector, t, "value", show=("value",), positive=False).tolist()
    [1000.5, -3.0]
    >>> t.ok.tolist()
    [True, False]
    """
    n = parse_number_column(table, ours, show=show)
    name = repr(table.label(ours))
    reject(
        collector,
        table,
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
    reject(
        collector,
        table,
        column=ours,
        rule="not_positive" if positive else "negative",
        bad=low,
        what=f"{name} is {'not positive' if positive else 'negative'}",
        fix="Fix the values",
        show=show,
    )
    reject(
        collector,
        table,
        column=ours,
        rule="infinite",
        bad=np.isinf(v),
        what=f"{name} is infinite",
        fix="Fix the values",
        show=show,
    )
    reject(
        collector,
        table,
        column=ours,
        rule="too_large",
        bad=np.isfinite(v) & (v > _MAX_AMOUNT),
        what=f"{name} is above 1e12",
        fix="Fix the values (a unit or typing error?)",
        show=show,
    )
    if n.from_text and table.reading.decimal is None:
        collector.note(
            f"{table.name}: {name} was read from text with thousands separators (e.g. '1,000.50') "
            f"in {plural(n.from_text, 'row')}."
        )
    return v


def parse_number_column(table: Table, ours: str, *, show: Sequence[str]) -> _val.ParsedNumbers:
    """Parse the number column ``ours`` as the table's reading says; refuse a decimal comma guess.

    Without ``Schema(decimal=...)`` a column whose text reads only with a decimal comma
    (``"1.000,50"`` beside ``"2.500"``, which a point would read as 2.5) is an error for the
    whole column: no row can be trusted until the mark is said.

    Examples
    --------
    >>> import pandas as pd
    >>> t = prepare_table(pd.DataFrame({"value": ["2.500", "1.000,50"]}), name="contracts",
    ...                   parameter="contracts", owner="Book.from_frames", renames={},
    ...                   schema_fields={}, required=())
    >>> parse_number_column(t, "value", show=("value",))
    Traceback (most recent call last):
    ...
    crosssell.exceptions.SchemaError: contracts: 'value' is written with a decimal comma ...
    """
    reading = table.reading
    n = _val.parse_numbers(table.column(ours), decimal=reading.decimal, thousands=reading.thousands)
    if not n.decimal_comma:
        return n
    rows = np.flatnonzero(n.comma_only | n.two_ways)
    name = table.label(ours)
    lines = _val.describe_rows(table.raw, rows[: _val.SHOWN], table.show(*show, ours))
    guess = ""
    if n.two_ways.any():
        first = int(np.flatnonzero(n.two_ways)[0])
        text = str(table.column(ours).iloc[first]).strip()
        guess = f"Read with a decimal point, {text!r} would be {n.values[first]:g}. "
    raise SchemaError(
        f"{table.name}: {name!r} is written with a decimal comma (e.g. '1.000,50'), or reads two "
        f"ways, in {plural(int(rows.size), 'row')} (showing {len(lines)}): {'; '.join(lines)}. "
        f"{guess}Say how the numbers are written: "
        'Schema(decimal=",", thousands="."), or Schema(decimal=".") if the point is the '
        "mark.",
        table=table.name,
        column=name,
        rule="decimal_mark",
        rows=rows.tolist(),
    )


@dataclass(slots=True, kw_only=True)
class ContractParts:
    """The validated columns of a contracts (or transactions) table, one entry per input row.

    Attributes
    ----------
    client, product : IdColumn
        The encoded ids.
    start, end : ndarray of int64
        Nanoseconds since the epoch; ``end`` is :data:`crosssell.book.OPEN_END` when open.
    value, quantity : ndarray of float64
        NaN for an unknown value; 1.0 for a quantity not given.
    extras : list of str
        The table's other columns, kept alongside.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("contracts", client_id=["C1"], product_id=["P1"], start_date=["2024-01-01"])
    >>> parts = contract_columns(Collector(errors="raise"), t, lookback=None)
    >>> parts.client.codes.tolist(), parts.quantity.tolist(), parts.extras
    ([0], [1.0], [])
    """

    client: _val.IdColumn
    product: _val.IdColumn
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    quantity: npt.NDArray[np.float64]
    extras: list[str]


def contract_columns(
    collector: _val.Collector, table: Table, *, lookback: pd.Timedelta | None
) -> ContractParts:
    """Validate the contracts' (or purchase lines') own columns.

    A transaction's end is its time plus ``lookback`` (open when None); a contract's end date
    after 2200 reads as open, with a note.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("contracts", client_id=["C1", "C2"], product_id=["P1", "P1"],
    ...           start_date=["2024-01-01", "2024-02-01"], end_date=["2023-01-01", None])
    >>> parts = contract_columns(Collector(errors="collect"), t, lookback=None)
    >>> t.ok.tolist()
    [False, True]
    """
    transactions = table.name == TRANSACTIONS
    start_col = Columns.timestamp if transactions else Columns.start
    value_col = Columns.amount if transactions else Columns.value
    ident = (Columns.client, Columns.product)
    client = read_ids(collector, table, Columns.client, show=ident)
    product = read_ids(collector, table, Columns.product, show=ident)
    start_d = read_dates(collector, table, start_col, show=(*ident, start_col), required=True)
    start = start_d.ns
    reject(
        collector,
        table,
        column=start_col,
        rule="date_out_of_range",
        bad=start_d.late,
        what=f"{table.label(start_col)!r} is after 2200",
        fix="Fix the dates",
        show=(*ident, start_col),
    )
    if transactions:
        if lookback is None:
            end = np.full(len(start), OPEN_END, dtype=np.int64)
        else:
            end = start + np.int64(lookback.value)
    elif table.has(Columns.end):
        shown = (*ident, Columns.start, Columns.end)
        end_d = read_dates(collector, table, Columns.end, show=shown, required=False)
        sentinel = end_d.late & table.ok
        if sentinel.any():
            collector.note(
                f"{table.name}: {table.label(Columns.end)!r} is after 2200 (e.g. 9999-12-31) in "
                f"{plural(int(sentinel.sum()), 'row')}; read as open (no end)."
            )
        open_ = end_d.null | end_d.late
        end = np.where(open_, OPEN_END, end_d.ns)
        backwards = ~open_ & ~end_d.bad & ~start_d.null & ~start_d.bad & (end < start)
        reject(
            collector,
            table,
            column=Columns.end,
            rule="end_before_start",
            bad=backwards,
            what=f"{table.label(Columns.end)!r} is before {table.label(Columns.start)!r}",
            fix="Fix the dates",
            show=shown,
        )
    else:
        end = np.full(len(start), OPEN_END, dtype=np.int64)
    if table.has(value_col):
        value = read_numbers(collector, table, value_col, show=(*ident, value_col), positive=False)
    else:
        value = np.full(len(start), np.nan)
    if table.has(Columns.quantity):
        quantity = read_numbers(
            collector, table, Columns.quantity, show=(*ident, Columns.quantity), positive=True
        )
        # A missing quantity means "not given": one unit, the same as a table without the column.
        quantity = np.where(np.isnan(quantity), 1.0, quantity)
    else:
        quantity = np.ones(len(start))
    core = {Columns.client, Columns.product, start_col, Columns.end, value_col, Columns.quantity}
    extras = [c for c in table.frame.columns if c not in core]
    return ContractParts(
        client=client,
        product=product,
        start=start,
        end=end,
        value=value,
        quantity=quantity,
        extras=extras,
    )


def same_key(parts: ContractParts) -> npt.NDArray[np.bool_]:
    """Rows whose (client, product, start) may repeat another row's: a superset, checked later.

    One 64-bit hash column is much cheaper to deduplicate than three columns; a hash collision
    only adds a candidate, which the exact comparison that follows then discards.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("contracts", client_id=["C1", "C1", "C2"], product_id=["P1", "P1", "P1"],
    ...           start_date=["2024-01-01"] * 3)
    >>> same_key(contract_columns(Collector(errors="raise"), t, lookback=None)).tolist()
    [True, True, False]
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


def mark_duplicates(collector: _val.Collector, table: Table, parts: ContractParts) -> int:
    """Mark exact duplicate contract rows (after the first) as not kept; return how many.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("contracts", client_id=["C1", "C1"], product_id=["P1", "P1"],
    ...           start_date=["2024-01-01"] * 2)
    >>> collector = Collector(errors="raise")
    >>> mark_duplicates(collector, t, contract_columns(collector, t, lookback=None))
    1
    >>> t.ok.tolist()
    [True, False]
    """
    maybe = same_key(parts) & table.ok
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
        full[f"x_{c}"] = table.frame[c].iloc[rows].astype("str").to_numpy()
    dup_local = full.duplicated(keep="first").to_numpy()
    dup = np.zeros(len(table.ok), dtype=bool)
    dup[rows[dup_local]] = True
    n = int(dup.sum())
    if n == 0:
        return 0
    shown = table.show(Columns.client, Columns.product, Columns.start)
    example = "; ".join(_val.describe_rows(table.raw, np.flatnonzero(dup)[: _val.SHOWN], shown))
    if collector.errors == "collect":
        collector.fail(
            table=table.name,
            column=None,
            rule="duplicate_row",
            bad=dup,
            frame=table.raw,
            what="exact duplicate of an earlier row",
            fix="Remove the duplicates",
            show=shown,
        )
    collector.note(
        f"{table.name}: exact duplicates of an earlier row in {plural(n, 'row')}; each was "
        f"collapsed into the first (e.g. {example})."
    )
    table.ok &= ~dup
    return n


def count_repeated_lines(table: Table, parts: ContractParts) -> int:
    """Count purchase lines identical to an earlier one (they stay separate purchases).

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("transactions", client_id=["C1", "C1"], product_id=["P1", "P1"],
    ...           timestamp=["2024-01-01"] * 2)
    >>> count_repeated_lines(t, contract_columns(Collector(errors="raise"), t, lookback=None))
    1
    """
    maybe = same_key(parts) & table.ok
    if not maybe.any():
        return 0
    rows = np.flatnonzero(maybe)
    sub = table.raw.iloc[rows]
    return int(sub.astype("str").duplicated().sum())


def catalog_columns(collector: _val.Collector, table: Table, ids: _val.IdColumn) -> dict[str, Any]:
    """Validate the catalog's own columns; return arrays over its rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("products", product_id=["P1", "P2"], tier=["1", "x"])
    >>> collector = Collector(errors="collect")
    >>> ids = read_ids(collector, t, "product_id", show=())
    >>> catalog_columns(collector, t, ids)["tier"].tolist()
    [1, 0]
    >>> t.ok.tolist()
    [True, False]
    """
    show = (Columns.product,)
    out: dict[str, Any] = {}
    codes = ids.codes
    dup = pd.Series(codes).duplicated().to_numpy() & (codes >= 0) & table.ok
    reject(
        collector,
        table,
        column=Columns.product,
        rule="duplicate_id",
        bad=dup,
        what=f"{table.label(Columns.product)!r} appears more than once",
        fix="Keep one row per product",
        show=show,
    )
    if table.has(Columns.tier):
        tier = parse_number_column(table, Columns.tier, show=show)
        with np.errstate(invalid="ignore"):
            bad = tier.bad | (~np.isnan(tier.values) & (tier.values != np.round(tier.values)))
            bad = bad | np.isinf(tier.values)
        reject(
            collector,
            table,
            column=Columns.tier,
            rule="not_an_integer",
            bad=bad,
            what=f"{table.label(Columns.tier)!r} is not an integer",
            fix="Fix the tiers",
            show=(*show, Columns.tier),
        )
        out[Columns.tier] = np.where(np.isfinite(tier.values), tier.values, 0).astype(np.int64)
    if table.has(Columns.price):
        out[Columns.price] = read_numbers(
            collector, table, Columns.price, show=(*show, Columns.price), positive=False
        )
    if table.has(Columns.sellable):
        values, bad = _val.parse_bools(table.column(Columns.sellable), default=True)
        reject(
            collector,
            table,
            column=Columns.sellable,
            rule="not_a_bool",
            bad=bad,
            what=f"{table.label(Columns.sellable)!r} is not yes/no",
            fix="Use true/false",
            show=(*show, Columns.sellable),
        )
        out[Columns.sellable] = values
    out.update(_availability_columns(collector, table))
    return out


def _availability_columns(collector: _val.Collector, table: Table) -> dict[str, Any]:
    """Validate ``available_from`` and ``available_to``; NaT where blank, as int64 nanoseconds.

    ``available_to`` after 2200 (a sentinel such as 9999-12-31) reads as open, with a note, as an
    open contract end does; ``available_from`` after 2200 is an error.
    """
    out: dict[str, Any] = {}
    shown = (Columns.product, Columns.available_from, Columns.available_to)
    nat = np.iinfo(np.int64).min
    first: _val.ParsedDates | None = None
    if table.has(Columns.available_from):
        first = read_dates(collector, table, Columns.available_from, show=shown, required=False)
        reject(
            collector,
            table,
            column=Columns.available_from,
            rule="date_out_of_range",
            bad=first.late,
            what=f"{table.label(Columns.available_from)!r} is after 2200",
            fix="Fix the dates, or leave them blank for the first contract start",
            show=shown,
        )
        out[Columns.available_from] = np.where(first.null | first.bad, nat, first.ns)
    if table.has(Columns.available_to):
        last = read_dates(collector, table, Columns.available_to, show=shown, required=False)
        sentinel = last.late & table.ok
        if sentinel.any():
            collector.note(
                f"{table.name}: {table.label(Columns.available_to)!r} is after 2200 (e.g. "
                f"9999-12-31) in {plural(int(sentinel.sum()), 'row')}; read as open (no end)."
            )
        open_ = last.null | last.late | last.bad
        out[Columns.available_to] = np.where(open_, nat, last.ns)
        if first is not None:
            given = ~(first.null | first.bad | first.late)
            backwards = given & ~open_ & (last.ns < first.ns) & table.ok
            reject(
                collector,
                table,
                column=Columns.available_to,
                rule="end_before_start",
                bad=backwards,
                what=(
                    f"{table.label(Columns.available_to)!r} is before "
                    f"{table.label(Columns.available_from)!r}"
                ),
                fix="Fix the dates",
                show=shown,
            )
    return out


def split_list(value: Any) -> tuple[Any, ...] | None:
    """Read a list cell: a list or tuple, or text such as ``"A;B"``, ``"A, B"`` or ``"('A', 'B')"``.

    The bracketed, quoted form is what pandas writes for a tuple or list column with ``to_csv``,
    so a catalog written that way reads back as it was.

    Examples
    --------
    >>> split_list("A; B"), split_list("('A', 'B')"), split_list(["A"]), split_list(None)
    (('A', 'B'), ('A', 'B'), ('A',), None)
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


def as_id(value: Any, integer: bool) -> Any:
    """Read one id named in a list cell in the form of the catalog's ids.

    Examples
    --------
    >>> as_id("12", True), as_id(12.0, True), as_id("P1", False)
    (12, 12, 'P1')
    """
    if integer:
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    return spell_id(str(value))


def catalog_lists(
    collector: _val.Collector, table: Table, product_index: pd.Index
) -> dict[str, list[tuple[Any, ...]]]:
    """Parse ``requires`` and ``excludes``; they must name catalog products.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("products", product_id=["P1", "P2"], requires=["P2", "P9"])
    >>> catalog_lists(Collector(errors="collect"), t, pd.Index(["P1", "P2"]))["requires"]
    [('P2',), ('P9',)]
    >>> t.ok.tolist()
    [True, False]
    """
    lists: dict[str, list[tuple[Any, ...]]] = {}
    integer = pd.api.types.is_integer_dtype(product_index.dtype)
    for name in (Columns.requires, Columns.excludes):
        if not table.has(name):
            continue
        # Catalogs are small (thousands of rows): a loop over them is not a hot path.
        values = [
            tuple(as_id(v, integer) for v in (split_list(x) or ()))
            for x in table.column(name).tolist()
        ]
        flat = pd.Index(
            [v for tup in values for v in tup], dtype=product_index.dtype if integer else "str"
        )
        missing_set = (
            set(flat[product_index.get_indexer(flat) < 0].tolist()) if len(flat) else set()
        )
        bad = np.array([any(v in missing_set for v in tup) for tup in values], dtype=bool)
        reject(
            collector,
            table,
            column=name,
            rule="unknown_product",
            bad=bad & table.ok,
            what=f"{table.label(name)!r} names products that are not in the catalog",
            fix="Add them to products, or correct the names",
            show=(Columns.product, name),
        )
        lists[name] = values
    return lists


def client_columns(
    collector: _val.Collector, table: Table, client_ids: _val.IdColumn
) -> tuple[_val.IdColumn | None, _val.ParsedNumbers | None, npt.NDArray[np.bool_] | None]:
    """Check the clients table's own columns; return parent ids, satisfaction, do-not-contact.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("clients", client_id=["C1", "C2"], satisfaction=[7, 11])
    >>> collector = Collector(errors="collect")
    >>> parent, satisfaction, do_not_contact = client_columns(
    ...     collector, t, read_ids(collector, t, "client_id", show=()))
    >>> parent is None, do_not_contact is None, t.ok.tolist()
    (True, True, [True, False])
    """
    parent = None
    satisfaction = None
    do_not_contact = None
    dup = pd.Series(client_ids.codes).duplicated().to_numpy() & (client_ids.codes >= 0) & table.ok
    reject(
        collector,
        table,
        column=Columns.client,
        rule="duplicate_id",
        bad=dup,
        what=f"{table.label(Columns.client)!r} appears more than once",
        fix="Keep one row per client",
        show=(Columns.client,),
    )
    if table.has(Columns.parent):
        parent = read_ids(
            collector, table, Columns.parent, show=(Columns.client, Columns.parent), allow_null=True
        )
    if table.has(Columns.satisfaction):
        satisfaction = parse_number_column(table, Columns.satisfaction, show=(Columns.client,))
        s = satisfaction.values
        reject(
            collector,
            table,
            column=Columns.satisfaction,
            rule="not_a_number",
            bad=satisfaction.bad,
            what=f"{table.label(Columns.satisfaction)!r} is not a number",
            fix="Fix the values",
            show=(Columns.client, Columns.satisfaction),
        )
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(s) & ((s < 0) | (s > 10))
        reject(
            collector,
            table,
            column=Columns.satisfaction,
            rule="out_of_range",
            bad=outside,
            what=f"{table.label(Columns.satisfaction)!r} is outside 0..10",
            fix="Use a score from 0 to 10 (NaN when unknown)",
            show=(Columns.client, Columns.satisfaction),
        )
    if table.has(Columns.do_not_contact):
        do_not_contact, bad = _val.parse_bools(table.column(Columns.do_not_contact), default=False)
        reject(
            collector,
            table,
            column=Columns.do_not_contact,
            rule="not_a_bool",
            bad=bad,
            what=f"{table.label(Columns.do_not_contact)!r} is not yes/no",
            fix="Use true/false",
            show=(Columns.client, Columns.do_not_contact),
        )
    return parent, satisfaction, do_not_contact


def event_columns(
    collector: _val.Collector, table: Table
) -> tuple[_val.IdColumn, _val.ParsedDates]:
    """Check the events table's own columns; return its client ids and dates.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell._validation import Collector
    >>> def table(name, **columns):
    ...     return prepare_table(pd.DataFrame(columns), name=name, parameter=name,
    ...                          owner="Book.from_frames", renames={}, schema_fields={},
    ...                          required=())
    >>> t = table("events", client_id=["C1", "C2"], date=["2024-01-01"] * 2, type=["call", ""])
    >>> ids, dates = event_columns(Collector(errors="collect"), t)
    >>> t.ok.tolist()
    [True, False]
    """
    ids = read_ids(
        collector, table, Columns.client, show=(Columns.client, Columns.date, Columns.type)
    )
    dates = read_dates(
        collector,
        table,
        Columns.date,
        show=(Columns.client, Columns.date, Columns.type),
        required=True,
    )
    reject(
        collector,
        table,
        column=Columns.date,
        rule="date_out_of_range",
        bad=dates.late,
        what=f"{table.label(Columns.date)!r} is after 2200",
        fix="Fix the dates",
        show=(Columns.client, Columns.date),
    )
    type_text = table.column(Columns.type).astype("str").str.strip()
    blank = table.column(Columns.type).isna().to_numpy() | (type_text == "").to_numpy(dtype=bool)
    reject(
        collector,
        table,
        column=Columns.type,
        rule="null_type",
        bad=blank,
        what=f"{table.label(Columns.type)!r} is missing",
        fix="Fill in the event types",
        show=(Columns.client, Columns.date, Columns.type),
    )
    _check_event_types(collector, table, type_text)
    return ids, dates


def near_event_type(name: str) -> str | None:
    """Return the built-in event type that ``name`` misspells, or None.

    A misspelling is equal to a built-in type once trimmed and case-folded (blanks and hyphens
    read as underscores), or one typing slip away from it (a letter added, dropped, changed or
    two swapped) when the built-in type has at least seven letters.

    Examples
    --------
    >>> near_event_type("complaint_openned"), near_event_type("Complaint_Opened")
    ('complaint_opened', 'complaint_opened')
    >>> near_event_type("complaint_reopened") is None, near_event_type("call") is None
    (True, True)
    """
    if name in EventType.known:
        return None
    folded = _val.fold_name(name)
    for known in sorted(EventType.known):
        if folded == known or (len(known) >= _SLIP_MIN and _one_slip(folded, known)):
            return known
    return None


def _one_slip(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long_, strict=False)) if x != y), len(short))
    return short[i:] == long_[i + 1 :]


def _check_event_types(collector: _val.Collector, table: Table, types: pd.Series) -> None:
    """Reject events whose type misspells a built-in one: the rules keyed on it would not see it."""
    # The distinct types are few: a loop over them is cheap.
    distinct = types[table.ok].unique()
    near = {t: k for t in distinct if isinstance(t, str) and (k := near_event_type(t))}
    if not near:
        return
    pairs = ", ".join(f"{t!r} for {k!r}" for t, k in list(near.items())[: _val.SHOWN])
    reject(
        collector,
        table,
        column=Columns.type,
        rule="near_event_type",
        bad=types.isin(list(near)).to_numpy(dtype=bool) & table.ok,
        what=f"{table.label(Columns.type)!r} misspells a built-in event type ({pairs})",
        fix=(
            "No rule would see these events: write the built-in types exactly (one of "
            f"{', '.join(sorted(EventType.known))}), or name a type of your own further from them"
        ),
        show=(Columns.client, Columns.date, Columns.type),
    )
