"""Checks that turn raw input columns into validated arrays, or raise ``SchemaError`` with rows.

Every check is vectorised over a whole column; id checks run on the distinct values of a column
(``pd.factorize`` first), which keeps validation cheap on millions of rows. The helpers here know
nothing about the Book's tables beyond what their arguments say.
"""

from __future__ import annotations

import difflib
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from crosssell.columns import Columns
from crosssell.exceptions import DataWarning, SchemaError
from crosssell.ids import spell_text_ids

__all__ = [
    "REJECTED_COLUMNS",
    "Collector",
    "IdColumn",
    "Reading",
    "as_pandas",
    "check_columns",
    "encode_ids",
    "fold_name",
    "near_names",
    "number_twins",
    "parse_bools",
    "parse_dates",
    "parse_numbers",
    "unify_id_kinds",
]

Errors = Literal["raise", "collect"]

#: Name of the column of ``Book.rejected`` that names the offending column.
COLUMN: Final = Columns.column
#: Name of the column of ``Book.rejected`` holding the whole offending row as text.
RECORD: Final = Columns.record
#: Columns of ``Book.rejected``, in order.
REJECTED_COLUMNS: Final = (Columns.table, Columns.row, COLUMN, Columns.rule, Columns.reason, RECORD)

#: How many offending rows an error message shows.
SHOWN: Final = 5
#: Dates after this are sentinels ("never ends") rather than real end dates.
SENTINEL_AFTER: Final = pd.Timestamp("2200-01-01")
#: Months in a year: a leading part above it is a day.
_MONTHS: Final = 12
#: The most decimal digits an int64 id can have.
_INT64_DIGITS: Final = 19
#: The earliest date nanosecond timestamps can hold (with a margin).
EARLIEST: Final = pd.Timestamp("1678-01-01")

_NS_PER_US: Final = 1000
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_TRUE: Final = frozenset({"true", "t", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "f", "no", "n", "0"})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def as_pandas(obj: Any, *, parameter: str, owner: str) -> pd.DataFrame:
    """Return a pandas DataFrame for a pandas, pyarrow or polars table (never copied if pandas).

    Parameters
    ----------
    obj : pandas.DataFrame, pyarrow.Table or polars.DataFrame
        The caller's table.
    parameter, owner : str
        Names used in the error message.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    TypeError
        If ``obj`` is none of the accepted kinds.

    Examples
    --------
    >>> import pyarrow as pa
    >>> as_pandas(pa.table({"a": [1]}), parameter="contracts", owner="Book").shape
    (1, 1)
    """
    if isinstance(obj, pd.DataFrame):
        return obj
    module = type(obj).__module__
    if module.startswith("pyarrow") and hasattr(obj, "to_pandas"):
        # Arrow dates would otherwise become Python objects, which are slow to parse.
        frame = obj.to_pandas(date_as_object=False)
        assert isinstance(frame, pd.DataFrame)
        return frame
    if module.startswith("polars") and hasattr(obj, "to_arrow"):
        frame = obj.to_arrow().to_pandas(date_as_object=False)
        assert isinstance(frame, pd.DataFrame)
        return frame
    raise TypeError(
        f"The {parameter!r} parameter of {owner} must be a pandas DataFrame, a pyarrow Table or a "
        f"polars DataFrame. Got {type(obj).__name__} instead."
    )


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str | bytes | tuple | list) and pd.isna(value)):
        return "<NA>"
    if isinstance(value, pd.Timestamp):
        return str(value.isoformat(sep=" ")).replace(" 00:00:00", "")
    return str(value)


def describe_rows(
    frame: pd.DataFrame, rows: npt.NDArray[np.intp], columns: Sequence[Any], positions: Any = None
) -> list[str]:
    """Format rows of ``frame`` as ``row 17 client_id=C042 start_date=2024-03-01``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The caller's frame (original values).
    rows : ndarray of int
        Positions in ``frame``.
    columns : sequence
        The columns to show, in order.
    positions : ndarray of int, optional
        The row numbers to print (default: ``rows``).

    Returns
    -------
    list of str

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> describe_rows(pd.DataFrame({"a": [1, 2]}), np.array([1]), ["a"])
    ['row 1 a=2']
    """
    shown = [c for c in dict.fromkeys(columns) if c in frame.columns]
    numbers = rows if positions is None else positions
    out = []
    for i, r in zip(numbers, rows, strict=True):
        # Only the few shown rows are formatted, so a loop is fine here.
        cells = " ".join(f"{c}={_text(frame[c].iloc[int(r)])}" for c in shown)
        out.append(f"row {int(i)} {cells}".rstrip())
    return out


@dataclass(slots=True, kw_only=True)
class Collector:
    """Gathers rejected rows and notes while one Book is built (mutable, private to a build).

    Parameters
    ----------
    errors : {"raise", "collect"}
        ``"raise"``: the first failed check raises :class:`SchemaError`; ``"collect"``: the
        offending rows are recorded and the build goes on without them.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> col = Collector(errors="collect")
    >>> frame = pd.DataFrame({"client_id": ["C1", ""]})
    >>> bad = np.array([False, True])
    >>> col.fail(table="contracts", column="client_id", rule="null_id", bad=bad, frame=frame,
    ...          what="'client_id' is blank", fix="Fill in the ids.")
    >>> col.frame()[["table", "row", "rule"]].to_dict("records")
    [{'table': 'contracts', 'row': 1, 'rule': 'null_id'}]
    """

    errors: Errors
    parts: list[pd.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The warning class of each note, in the same order.
    categories: list[type[Warning]] = field(default_factory=list)
    rejected_counts: dict[str, int] = field(default_factory=dict)

    def fail(
        self,
        *,
        table: str,
        column: str | None,
        rule: str,
        bad: npt.NDArray[np.bool_],
        frame: pd.DataFrame,
        what: str,
        fix: str,
        show: Sequence[Any] = (),
    ) -> None:
        """Raise or record rows that break a rule; do nothing when ``bad`` is all False.

        Parameters
        ----------
        table, column, rule : str
            Where and what (``column`` in the caller's spelling).
        bad : ndarray of bool
            One entry per row of ``frame``.
        frame : pandas.DataFrame
            The caller's frame, whose positions are the row numbers reported.
        what : str
            The broken rule as a phrase, e.g. ``"'end_date' is before 'start_date'"``.
        fix : str
            How to fix it (the message adds ``or pass errors="collect"``).
        show : sequence
            Columns shown for each row (default: ``column``).

        Raises
        ------
        SchemaError
            When ``errors="raise"`` and a row is bad.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> Collector(errors="raise").fail(table="t", column="a", rule="r",
        ...     bad=np.array([True]), frame=pd.DataFrame({"a": [1]}), what="'a' is odd",
        ...     fix="Fix it.")
        Traceback (most recent call last):
        ...
        crosssell.exceptions.SchemaError: t: 'a' is odd in 1 row (showing 1): row 0 a=1. Fix it ...
        """
        rows = np.flatnonzero(bad)
        if rows.size == 0:
            return
        columns = list(show) or ([column] if column is not None else [])
        if self.errors == "raise":
            n = int(rows.size)
            lines = describe_rows(frame, rows[:SHOWN], columns)
            fix_text = fix.rstrip(".")
            raise SchemaError(
                f"{table}: {what} in {_plural(n, 'row')} (showing {len(lines)}): "
                f'{"; ".join(lines)}. {fix_text} or pass errors="collect".',
                table=table,
                column=column,
                rule=rule,
                rows=rows.tolist(),
            )
        records = _records(frame, rows)
        self.parts.append(
            pd.DataFrame(
                {
                    Columns.table: table,
                    Columns.row: rows.astype(np.int64),
                    COLUMN: column if column is not None else pd.NA,
                    Columns.rule: rule,
                    Columns.reason: what,
                    RECORD: records,
                }
            )
        )

    def note(self, message: str, category: type[Warning] = DataWarning) -> None:
        """Keep a note (the builder warns with it) for the validation report.

        Parameters
        ----------
        message : str
            What was accepted but changed or set aside, with a count.
        category : Warning subclass, default DataWarning
            The class of the warning issued with it.

        Examples
        --------
        >>> col = Collector(errors="raise")
        >>> col.note("2 rows had time zones")
        >>> col.notes
        ['2 rows had time zones']
        """
        self.notes.append(message)
        self.categories.append(category)

    def frame(self) -> pd.DataFrame:
        """All rejected rows so far, sorted by table and row (empty with the columns if none).

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> Collector(errors="collect").frame().columns.tolist()
        ['table', 'row', 'column', 'rule', 'reason', 'record']
        """
        if not self.parts:
            return pd.DataFrame(
                {
                    Columns.table: pd.Series([], dtype="str"),
                    Columns.row: pd.Series([], dtype=np.int64),
                    COLUMN: pd.Series([], dtype="str"),
                    Columns.rule: pd.Series([], dtype="str"),
                    Columns.reason: pd.Series([], dtype="str"),
                    RECORD: pd.Series([], dtype="str"),
                }
            )
        out = pd.concat(self.parts, ignore_index=True)
        out[COLUMN] = out[COLUMN].astype("str")
        return out.sort_values([Columns.table, Columns.row], kind="stable", ignore_index=True)


def _records(frame: pd.DataFrame, rows: npt.NDArray[np.intp]) -> list[str]:
    sub = frame.iloc[rows]
    parts = [[f"{c}={_text(v)}" for v in sub[c].tolist()] for c in sub.columns]
    return [" ".join(cells) for cells in zip(*parts, strict=True)] if parts else [""] * len(rows)


def check_columns(
    frame: pd.DataFrame,
    *,
    table: str,
    required: Mapping[str, str],
    schema_fields: Mapping[str, str],
) -> None:
    """Raise one :class:`SchemaError` listing every missing required column, with close matches.

    Parameters
    ----------
    frame : pandas.DataFrame
        The caller's frame.
    table : str
        Table name for the message.
    required : mapping of str to str
        ``{caller's expected name: crosssell's name}`` of the required columns.
    schema_fields : mapping of str to str
        ``{crosssell's name: Schema field}``, to suggest a ``Schema(...)`` mapping.

    Raises
    ------
    SchemaError
        If a required column is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> check_columns(pd.DataFrame({"Client_ID ": [1]}), table="contracts",
    ...               required={"client_id": "client_id"}, schema_fields={"client_id": "client"})
    Traceback (most recent call last):
    ...
    crosssell.exceptions.SchemaError: contracts: missing required column 'client_id' ...
    """
    present = [str(c) for c in frame.columns]
    missing = [name for name in required if name not in frame.columns]
    if not missing:
        return
    hints = []
    mapping = []
    for name in missing:
        folded = [c for c in present if c.strip().casefold() == name.casefold()]
        close = folded or difflib.get_close_matches(name, present, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} for {name!r}")
            mapping.append(f"{schema_fields[required[name]]}={close[0]!r}")
    listed = ", ".join(repr(m) for m in missing)
    did_you_mean = f"Did you mean {', '.join(hints)}? " if hints else ""
    found = ", ".join(repr(c) for c in present[:20]) or "none"
    fix = (
        f"Rename the columns or map them once with Schema({', '.join(mapping)})."
        if mapping
        else "Add the columns or map your names with Schema(...)."
    )
    raise SchemaError(
        f"{table}: missing required {'column' if len(missing) == 1 else 'columns'} {listed} "
        f"(found: {found}). {did_you_mean}{fix}",
        table=table,
        column=missing[0],
        rule="missing_column",
    )


_SEPARATORS = re.compile(r"[\s\-]+")


def fold_name(name: Any) -> str:
    """Return a column name trimmed, case-folded, with blanks and hyphens read as underscores.

    Two names that fold to the same text are taken for the same column spelled differently.

    Examples
    --------
    >>> fold_name(" End Date "), fold_name("do_not_contact "), fold_name("Do-Not-Contact")
    ('end_date', 'do_not_contact', 'do_not_contact')
    """
    return _SEPARATORS.sub("_", str(name).strip()).casefold()


def near_names(
    frame: pd.DataFrame,
    *,
    table: str,
    known: Mapping[str, str],
    schema_fields: Mapping[str, str],
    fold: bool,
) -> dict[str, str]:
    """Find columns named like a known column but spelled differently (case, blanks, hyphens).

    Such a column would be kept as an unknown extra while the known one stays empty (a
    ``"do_not_contact "`` with a trailing blank leaves every client contactable), so it is an
    error unless ``fold`` maps it onto the known name.

    Parameters
    ----------
    frame : pandas.DataFrame
        The caller's frame.
    table : str
        Table name for the message.
    known : mapping of str to str
        ``{caller's expected name: crosssell's name}`` of every column the table may have.
    schema_fields : mapping of str to str
        ``{crosssell's name: Schema field}``, to suggest a ``Schema(...)`` mapping.
    fold : bool
        Whether a near name is read as the known one (``Schema(match_names="folded")``).

    Returns
    -------
    dict of str to str
        ``{caller's column: caller's expected name}`` of the columns to read as known ones
        (empty unless ``fold``).

    Raises
    ------
    SchemaError
        If a column is a near name and ``fold`` is False, or the known column is there too.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"client_id": ["C1"], "Do_Not_Contact ": [True]})
    >>> near_names(frame, table="clients", known={"do_not_contact": "do_not_contact"},
    ...            schema_fields={"do_not_contact": "do_not_contact"}, fold=False)
    Traceback (most recent call last):
    ...
    crosssell.exceptions.SchemaError: clients: column 'Do_Not_Contact ' is spelled like the ...
    >>> near_names(frame, table="clients", known={"do_not_contact": "do_not_contact"},
    ...            schema_fields={"do_not_contact": "do_not_contact"}, fold=True)
    {'Do_Not_Contact ': 'do_not_contact'}
    """
    present = [c for c in frame.columns if isinstance(c, str)]
    by_fold = {fold_name(name): name for name in known}
    found: dict[str, str] = {}
    for column in present:
        target = by_fold.get(fold_name(column))
        if target is not None and column != target and column not in known:
            found[column] = target
    if not found:
        return {}
    targets = list(found.values())
    both = [c for c, t in found.items() if t in frame.columns or targets.count(t) > 1]
    if fold and not both:
        return found
    shown = list(found.items())[:SHOWN]
    pairs = "; ".join(f"column {c!r} is spelled like the known column {t!r}" for c, t in shown)
    if both:
        column = both[0]
        fix = (
            f"Both {column!r} and {found[column]!r} name the same column: rename or drop one of "
            "them."
        )
    else:
        column = shown[0][0]
        mapping = ", ".join(f"{schema_fields[known[t]]}={c!r}" for c, t in shown)
        fix = (
            f"Did you mean {', '.join(repr(t) for _, t in shown)}? Rename the columns, map them "
            f'with Schema({mapping}), or pass Schema(match_names="folded") to read such '
            "names as the known ones."
        )
    n = len(found)
    raise SchemaError(
        f"{table}: {pairs} ({_plural(n, 'column')}, showing {len(shown)}); read as given, it "
        f"would be an unknown extra column and the known one would stay empty. {fix}",
        table=table,
        column=column,
        rule="near_column_name",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IdColumn:
    """A column of ids as integer codes into its distinct, normalised values.

    Attributes
    ----------
    codes : ndarray of int64
        Code of each row; ``-1`` for a null, blank or invalid id.
    uniques : pandas.Index
        Distinct ids, int64 or text, in order of first appearance.
    bad : ndarray of bool
        Rows whose id is null, blank or invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> ids = encode_ids(pd.Series(["a", "b", "a"]), table="t", column="c", frame=None,
    ...                  collector=Collector(errors="raise"))
    >>> ids.codes.tolist(), ids.uniques.tolist()
    ([0, 1, 0], ['a', 'b'])
    """

    codes: npt.NDArray[np.int64]
    uniques: pd.Index
    bad: npt.NDArray[np.bool_]

    @property
    def is_text(self) -> bool:
        """Whether the ids are text (else integers).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> IdColumn(codes=np.zeros(1, np.int64), uniques=pd.Index([1]),
        ...          bad=np.zeros(1, bool)).is_text
        False
        """
        return not pd.api.types.is_integer_dtype(self.uniques.dtype)

    def with_uniques(self, uniques: pd.Index) -> IdColumn:
        """Return the same rows with normalised uniques, merging values that became equal.

        Parameters
        ----------
        uniques : pandas.Index
            One new value per old unique.

        Returns
        -------
        IdColumn

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> ids = IdColumn(codes=np.array([0, 1]), uniques=pd.Index(["x", "y"]),
        ...                bad=np.zeros(2, bool))
        >>> ids.with_uniques(pd.Index(["z", "z"])).codes.tolist()
        [0, 0]
        """
        remap, merged = pd.factorize(uniques)
        if len(merged) == len(uniques):
            return IdColumn(codes=self.codes, uniques=pd.Index(merged), bad=self.bad)
        table = np.append(remap.astype(np.int64), np.int64(-1))
        return IdColumn(codes=table[self.codes], uniques=pd.Index(merged), bad=self.bad)


def _to_text_index(values: Iterable[Any]) -> pd.Index:
    out = []
    for v in values:
        # Integral floats from a mixed column are written as integers (1.0 -> "1").
        if isinstance(v, float) and np.isfinite(v) and v == int(v):
            out.append(str(int(v)))
        else:
            out.append(str(v))
    return pd.Index(out, dtype="str")


def _by_kind(
    uniques: pd.Index,
    bad_unique: npt.NDArray[np.bool_],
    codes: npt.NDArray[np.int64],
    kind: str | None,
    *,
    table: str,
    column: str,
    n_rows: int,
    collector: Collector,
) -> tuple[pd.Index, npt.NDArray[np.bool_], bool]:
    """Turn distinct ids into int64 or text by what they hold; note float and mixed ids."""
    changed = False
    if pd.api.types.is_bool_dtype(uniques.dtype) or kind == "boolean":
        uniques = _to_text_index(uniques)
    elif pd.api.types.is_float_dtype(uniques.dtype) or kind in {"floating", "mixed-integer-float"}:
        values = np.asarray(uniques, dtype=np.float64)
        integral = np.isfinite(values) & (values == np.round(values))
        bad_unique = ~integral
        if integral.any():
            floaty = (codes >= 0) & integral[np.maximum(codes, 0)]
            collector.note(
                f"{table}: {column!r} held ids read as floats (e.g. 1.0) in "
                f"{_plural(int(floaty.sum()), 'row')}; they were turned into integers."
            )
        uniques = pd.Index(np.where(integral, values, 0).astype(np.int64))
        changed = True
    elif pd.api.types.is_integer_dtype(uniques.dtype) or kind == "integer":
        uniques = pd.Index(
            np.asarray(uniques, dtype=np.uint64 if uniques.dtype == np.uint64 else np.int64)
        )
    elif kind is not None and kind not in {"string", "empty"}:
        objects = np.asarray(uniques, dtype=object)
        is_int = np.array(
            [isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in objects],
            dtype=bool,
        )
        twins = number_twins(
            pd.Index(objects[is_int].tolist()), pd.Index([v for v in objects if isinstance(v, str)])
        )
        if twins:
            mixed = IdColumn(codes=codes, uniques=uniques, bad=np.zeros(n_rows, dtype=bool))
            _refuse_twins(table, mixed, twins, ["the same column"], column)
        before = len(uniques)
        uniques = _to_text_index(uniques)
        changed = True
        n_merged = before - len(pd.unique(np.asarray(uniques, dtype=object)))
        collision = (
            f"; {_plural(n_merged, 'id')} collided with an existing text id (e.g. 42 and '42') "
            "and were merged"
            if n_merged
            else ""
        )
        collector.note(
            f"{table}: {column!r} mixes integer and text ids in {_plural(n_rows, 'row')}; "
            f"all were turned into text{collision}."
        )
    else:
        uniques = pd.Index(uniques, dtype="str")

    return uniques, bad_unique, changed


def _text_checks(
    uniques: pd.Index,
    bad_unique: npt.NDArray[np.bool_],
    codes: npt.NDArray[np.int64],
    *,
    table: str,
    column: str,
    collector: Collector,
) -> tuple[pd.Index, npt.NDArray[np.bool_], bool]:
    """Mark blank text ids and spell text ids with :func:`crosssell.ids.spell_id` (noted).

    Blanks around an id are trimmed (``'C1 '`` is ``'C1'``) and text is brought to unicode NFC,
    the same spelling every lookup at scoring time applies; each change is noted with a count.
    """
    text = pd.Series(uniques, dtype="str")
    spelled = spell_text_ids(text)
    bad_unique = bad_unique | (spelled == "").to_numpy(dtype=bool)
    differs = (spelled != text).fillna(value=False).to_numpy(dtype=bool)
    if not differs.any():
        return uniques, bad_unique, False
    trimmed = differs & (text.str.strip() != text).fillna(value=False).to_numpy(dtype=bool)
    trimmed &= ~bad_unique
    used = codes >= 0

    def rows(mask: npt.NDArray[np.bool_]) -> int:
        return int((used & mask[np.maximum(codes, 0)]).sum())

    if trimmed.any():
        examples = ", ".join(repr(v) for v in text[trimmed].head(SHOWN).tolist())
        joined = trimmed & spelled.duplicated(keep=False).to_numpy(dtype=bool)
        merged = ""
        if joined.any():
            first = int(np.flatnonzero(joined)[0])
            merged = (
                f"; {_plural(int(joined.sum()), 'id')} now match another id of the column "
                f"(e.g. {text.iloc[first]!r} is {spelled.iloc[first]!r})"
            )
        collector.note(
            f"{table}: {column!r} held ids with blanks around them in "
            f"{_plural(rows(trimmed), 'row')} (e.g. {examples}); the blanks were trimmed"
            f"{merged}."
        )
    unicode_ = differs & ~trimmed & ~bad_unique
    unicode_ |= (
        differs & trimmed & (text.str.strip() != spelled).fillna(value=False).to_numpy(dtype=bool)
    )
    if unicode_.any():
        collector.note(
            f"{table}: {column!r} held ids in a non-standard unicode form in "
            f"{_plural(rows(unicode_), 'row')}; they were normalised (NFC), so ids that look the "
            "same now match."
        )
    return pd.Index(spelled.to_numpy(dtype=object), dtype="str"), bad_unique, True


def encode_ids(
    series: pd.Series,
    *,
    table: str,
    column: str,
    frame: pd.DataFrame | None,
    collector: Collector,
    allow_null: bool = False,
    show: Sequence[Any] = (),
) -> IdColumn:
    """Encode a column of ids, checking nulls, blanks, float ids, mixed types and unicode forms.

    Parameters
    ----------
    series : pandas.Series
        The caller's id column (not modified).
    table, column : str
        Names for messages (``column`` in the caller's spelling).
    frame : pandas.DataFrame or None
        The caller's frame, for showing rows (None: show the id column only).
    collector : Collector
        Receives failures and notes.
    allow_null : bool, default False
        Whether nulls are allowed (e.g. ``parent_id``); blank text still counts as null.
    show : sequence
        Columns to show in messages.

    Returns
    -------
    IdColumn

    Raises
    ------
    SchemaError
        On null, blank or non-integral float ids when ``collector.errors == "raise"``.

    Examples
    --------
    >>> import pandas as pd, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     ids = encode_ids(pd.Series([1.0, 2.0]), table="t", column="c", frame=None,
    ...                      collector=Collector(errors="raise"))
    >>> ids.uniques.tolist()
    [1, 2]
    """
    display = frame if frame is not None else pd.DataFrame({column: series})
    codes, raw_uniques = pd.factorize(series, use_na_sentinel=True)
    codes = codes.astype(np.int64, copy=False)
    uniques = pd.Index(
        np.asarray(raw_uniques, dtype=object)
        if isinstance(raw_uniques.dtype, pd.CategoricalDtype)
        else raw_uniques
    )
    bad_unique = np.zeros(len(uniques), dtype=bool)
    kind = pd.api.types.infer_dtype(uniques, skipna=True) if uniques.dtype == object else None

    uniques, bad_unique, changed = _by_kind(
        uniques,
        bad_unique,
        codes,
        kind,
        table=table,
        column=column,
        n_rows=len(series),
        collector=collector,
    )
    if not pd.api.types.is_integer_dtype(uniques.dtype):
        uniques, bad_unique, nfc_changed = _text_checks(
            uniques, bad_unique, codes, table=table, column=column, collector=collector
        )
        changed = changed or nfc_changed

    null = codes < 0
    invalid = ~null & bad_unique[np.maximum(codes, 0)] if bad_unique.any() else np.zeros_like(null)
    blank = invalid & pd.api.types.is_string_dtype(uniques.dtype)
    missing = blank | (null if not allow_null else np.zeros_like(null))
    collector.fail(
        table=table,
        column=column,
        rule="null_id",
        bad=missing,
        frame=display,
        what=f"{column!r} is null or blank",
        fix=f"Fill in the {column!r} values",
        show=show,
    )
    collector.fail(
        table=table,
        column=column,
        rule="float_id",
        bad=invalid & ~blank,
        frame=display,
        what=f"{column!r} holds ids read as non-integral floats",
        fix=f"Read {column!r} as text (dtype=str) or fix the ids",
        show=show,
    )
    out = IdColumn(codes=codes, uniques=uniques, bad=missing | invalid)
    if changed:
        out = out.with_uniques(uniques)
    if invalid.any():
        codes2 = out.codes.copy()
        codes2[invalid] = -1
        out = IdColumn(codes=codes2, uniques=out.uniques, bad=out.bad)
    return out


def number_twins(integers: pd.Index, texts: pd.Index) -> list[tuple[int, str]]:
    """Pairs of an integer id and a text id that spell the same number differently (7, '007').

    Parameters
    ----------
    integers : pandas.Index
        Integer ids.
    texts : pandas.Index
        Text ids.

    Returns
    -------
    list of (int, str)

    Examples
    --------
    >>> import pandas as pd
    >>> number_twins(pd.Index([7, 8]), pd.Index(["007", "8", "C9"]))
    [(7, '007')]
    """
    text = pd.Series(texts, dtype="str")
    digits = text.str.fullmatch(r"[+-]?[0-9]+").fillna(value=False).to_numpy(dtype=bool)
    if not digits.any():
        return []
    candidates = text[digits]
    # Ids too long for int64 cannot equal an int64 id: they are left as they are.
    short = candidates.str.len().to_numpy() <= _INT64_DIGITS
    candidates = candidates[short]
    values = pd.to_numeric(candidates, errors="coerce")
    odd = (values.astype("Int64").astype("str") != candidates).to_numpy(dtype=bool)
    spelled = candidates[odd]
    numbers = values[odd].astype(np.int64)
    hit = pd.Index(numbers).isin(integers)
    return list(zip(numbers[hit].tolist(), spelled[hit].tolist(), strict=True))


def unify_id_kinds(
    columns: Mapping[str, IdColumn],
    *,
    what: str,
    collector: Collector,
    labels: Mapping[str, str] | None = None,
) -> dict[str, IdColumn]:
    """Give every table's ids one dtype: text when any table has text ids, else integers.

    Integers are written as decimal text (7 as ``'7'``) and match the text ids spelled so. An
    integer that another table spells differently (``'007'``, ``'+7'``) cannot be matched
    safely either way, so it is refused with its rows rather than left apart silently.

    Parameters
    ----------
    columns : mapping of str to IdColumn
        ``{table: ids}``.
    what : str
        ``"client"`` or ``"product"``.
    collector : Collector
        Receives a note saying how many integer ids matched a text id.
    labels : mapping of str to str, optional
        ``{table: the caller's name of the id column}``, for the messages.

    Returns
    -------
    dict of str to IdColumn

    Raises
    ------
    SchemaError
        When an integer id of one table and a text id of another spell the same number
        differently.

    Examples
    --------
    >>> import numpy as np, pandas as pd, warnings
    >>> a = IdColumn(codes=np.array([0]), uniques=pd.Index([42]), bad=np.zeros(1, bool))
    >>> b = IdColumn(codes=np.array([0]), uniques=pd.Index(["42"]), bad=np.zeros(1, bool))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     out = unify_id_kinds({"contracts": a, "clients": b}, what="client",
    ...                          collector=Collector(errors="raise"))
    >>> out["contracts"].uniques.tolist()
    ['42']
    >>> c = IdColumn(codes=np.array([0]), uniques=pd.Index(["042"]), bad=np.zeros(1, bool))
    >>> unify_id_kinds({"clients": a, "contracts": c}, what="client",
    ...                collector=Collector(errors="raise"))
    Traceback (most recent call last):
    ...
    crosssell.exceptions.SchemaError: clients: 'client_id' is an integer id spelled differently ...
    """
    text = [t for t, c in columns.items() if c.is_text]
    numeric = [t for t, c in columns.items() if not c.is_text and len(c.uniques)]
    if not text or not numeric:
        return dict(columns)
    names = labels or {}
    all_text = pd.Index(
        pd.unique(np.concatenate([np.asarray(columns[t].uniques, dtype=object) for t in text]))
    )
    for t in numeric:
        found = {u: number_twins(columns[t].uniques, columns[u].uniques) for u in text}
        where = [u for u, twins in found.items() if twins]
        if where:
            twins = [pair for u in where for pair in found[u]]
            _refuse_twins(t, columns[t], twins, where, names.get(t, f"{what}_id"))
    as_text = {t: pd.Index(columns[t].uniques.astype(str), dtype="str") for t in numeric}
    n_ints = sum(len(v) for v in as_text.values())
    n_matched = sum(int(v.isin(all_text).sum()) for v in as_text.values())
    collector.note(
        f"{what} ids are integers in {', '.join(numeric)} but text in {', '.join(text)}; "
        f"the integers were written as text (7 as '7') to compare them, and "
        f"{n_matched:,} of {n_ints:,} matched a text id."
    )
    return {t: c.with_uniques(as_text[t]) if t in numeric else c for t, c in columns.items()}


def _refuse_twins(
    table: str, ids: IdColumn, twins: list[tuple[int, str]], text: list[str], column: str
) -> None:
    integers = pd.Index([i for i, _ in twins])
    spelled = dict(twins)
    hit = np.append(integers.get_indexer(ids.uniques) >= 0, False)
    rows = np.flatnonzero(hit[ids.codes])
    shown = [
        f"row {int(r)} {column}={ids.uniques[ids.codes[r]]} (as text: "
        f"{spelled[ids.uniques[ids.codes[r]]]!r})"
        for r in rows[:SHOWN]
    ]
    raise SchemaError(
        f"{table}: {column!r} is an integer id spelled differently as text in {', '.join(text)} "
        f"in {_plural(int(rows.size), 'row')} (showing {len(shown)}): {'; '.join(shown)}. "
        "Matched by their text they would be two ids, and this table's flags and details would "
        "miss the other's rows. Read the id columns of every table as text (dtype=str) so that "
        "each id is spelled one way, or fix the ids.",
        table=table,
        column=column,
        rule="id_spelling",
        rows=rows.tolist(),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """How dates and numbers given as text are written (``Schema``'s reading options).

    Examples
    --------
    >>> Reading(decimal=",").thousands is None
    True
    """

    date_format: str | None = None
    decimal: str | None = None
    thousands: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedDates:
    """Dates as int64 nanoseconds (tz-naive UTC) with masks of what went wrong.

    Attributes
    ----------
    ns : ndarray of int64
        Nanoseconds since the epoch; undefined where ``null``, ``bad`` or ``late``.
    null : ndarray of bool
        Missing or blank.
    bad : ndarray of bool
        Present but not a date.
    early : ndarray of bool
        Before 1678 (outside what nanosecond timestamps can hold).
    late : ndarray of bool
        After 2200 (a sentinel such as 9999-12-31).
    tz_rows : int
        Values that had a time zone.
    numeric : bool
        The column holds numbers, not dates (nothing was parsed).
    day_first, month_first, two_ways : ndarray of bool
        Text dates such as ``13/04/2024`` that read only day first, such as ``04/13/2024``
        that read only month first, and such as ``03/04/2024`` that read both ways (all False
        when a ``date_format`` is given).
    order : {"day", "month"} or None
        How the dates with the day and month both in front were read, when the column said.

    Examples
    --------
    >>> import pandas as pd
    >>> d = parse_dates(pd.Series(["2024-01-01", "nope", None]))
    >>> d.bad.tolist(), d.null.tolist()
    ([False, True, False], [False, False, True])
    """

    ns: npt.NDArray[np.int64]
    null: npt.NDArray[np.bool_]
    bad: npt.NDArray[np.bool_]
    early: npt.NDArray[np.bool_]
    late: npt.NDArray[np.bool_]
    tz_rows: int
    numeric: bool = False
    day_first: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    month_first: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    two_ways: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    order: str | None = None


#: A date such as ``03/04/2024`` or ``3.4.24 10:30``: two leading parts, either may be the day.
_DAY_MONTH: Final = (
    r"^(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<y>\d{2}|\d{4})(?P<rest>(?:[ T].*)?)$"
)
#: Two-digit years from this one on are 19xx, as ``strptime``'s ``%y`` reads them.
_CENTURY_PIVOT: Final = 69
_SHORT_YEAR: Final = 2


def _to_datetime(values: pd.Series, **options: Any) -> pd.Series:
    """``pd.to_datetime`` without pandas' own warnings about guessed formats."""
    with warnings.catch_warnings():
        # crosssell says itself what it guessed (or refuses); pandas' warning would leak raw
        warnings.simplefilter("ignore", UserWarning)
        out = pd.to_datetime(values, errors="coerce", **options)
    assert isinstance(out, pd.Series)
    return out


def _day_month_parts(text: pd.Series) -> dict[str, Any] | None:
    """Split dates such as ``03/04/2024`` into Arrow arrays of parts (None if no date is so).

    Arrow's regular expressions run in C over the whole column; pandas' would loop in Python.
    """
    values = pa.array(text.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    found = pc.extract_regex(values, pattern=_DAY_MONTH)
    if found.null_count == len(found):
        return None
    valid = found.is_valid()
    # the parts of a row that does not match are empty text, not null: make them null
    nothing = pa.scalar(None, type=pa.string())
    return {
        name: pc.if_else(valid, found.field(name), nothing) for name in ("a", "b", "y", "rest")
    } | {"matched": valid.to_numpy(zero_copy_only=False)}


def _as_iso(text: pd.Series, order: str) -> pd.Series:
    """Rewrite dates such as ``03/04/2024 10:00`` as ISO text, day or month first as ``order``."""
    parts = _day_month_parts(text)
    if parts is None:
        return text
    index = text.index

    def column(name: str) -> pd.Series:
        values = parts[name].to_numpy(zero_copy_only=False)
        return pd.Series(values, index=index, dtype="str").fillna("")

    first, second, year, rest = column("a"), column("b"), column("y"), column("rest")
    day, month = (first, second) if order == "day" else (second, first)
    short = (year.str.len() == _SHORT_YEAR).to_numpy(dtype=bool)
    pivot = pd.to_numeric(year, errors="coerce").to_numpy() >= _CENTURY_PIVOT
    century = pd.Series(np.where(pivot, "19", "20"), index=index, dtype="str")
    year = year.where(~short, century + year)
    return year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + rest


def _read_ordered(text: pd.Series, order: str) -> pd.Series:
    """Read dates such as ``03/04/2024`` day or month first as ``order`` says.

    The form of the first date (its separator, its year's digits) is tried on all with pandas'
    fast parser; the dates in another form are rewritten as ISO text and read so.
    """
    first = str(text.iloc[0])
    sep = next(c for c in first if not c.isdigit())
    digits = re.split(r"[ T]", first.split(sep)[2], maxsplit=1)[0]
    year = "%Y" if len(digits) > _SHORT_YEAR else "%y"
    form = f"%d{sep}%m{sep}{year}" if order == "day" else f"%m{sep}%d{sep}{year}"
    out = _to_datetime(text, format=form)
    rest = out.isna().to_numpy(dtype=bool)
    if rest.any():
        out = out.astype("datetime64[us]")
        out.loc[rest] = _to_datetime(_as_iso(text[rest], order), format="ISO8601").astype(
            "datetime64[us]"
        )
    return out


def _day_month_order(
    text: pd.Series,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_], str | None]:
    """Which dates such as ``03/04/2024`` read day first only, month first only, or both."""
    n = len(text)
    parts = _day_month_parts(text)
    if parts is None:
        empty = np.zeros(n, dtype=bool)
        return empty, empty, empty, None
    matched = np.asarray(parts["matched"], dtype=bool)
    a, b = (
        pc.fill_null(pc.cast(parts[name], pa.int64()), 0).to_numpy(zero_copy_only=False)
        for name in ("a", "b")
    )
    day_first = matched & (a > _MONTHS) & (b <= _MONTHS)
    month_first = matched & (b > _MONTHS) & (a <= _MONTHS)
    two_ways = matched & (a <= _MONTHS) & (b <= _MONTHS) & (a != b)
    order = None
    if day_first.any() and not month_first.any():
        order = "day"
    elif month_first.any() and not day_first.any():
        order = "month"
    return day_first, month_first, two_ways, order


def parse_dates(series: pd.Series, *, date_format: str | None = None) -> ParsedDates:
    """Parse a column of dates; time-zone-aware values are converted to UTC, then made naive.

    Parameters
    ----------
    series : pandas.Series
        Datetimes, dates, or text.
    date_format : str or None, default None
        The ``strftime`` format of the text (None: ISO and other unambiguous forms; dates such
        as ``03/04/2024`` are read day first or month first only as the column says, see
        ``order``).

    Returns
    -------
    ParsedDates
        With ``numeric`` set (and nothing parsed) for a column of numbers.

    Examples
    --------
    >>> import pandas as pd
    >>> d = parse_dates(pd.Series(["2024-01-01T01:00+01:00", "2024-01-01T00:00"]))
    >>> pd.to_datetime(d.ns).tolist(), d.tz_rows
    ([Timestamp('2024-01-01 00:00:00'), Timestamp('2024-01-01 00:00:00')], 2)
    """
    n = len(series)
    no = np.zeros(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        null = series.isna().to_numpy(dtype=bool)
        if not null.all():
            return ParsedDates(
                ns=np.zeros(n, dtype=np.int64),
                null=null,
                bad=~null,
                early=no,
                late=no,
                tz_rows=0,
                numeric=True,
            )
        # a column of nothing but NaN (an empty column of a CSV file) holds no date at all
        series = pd.Series([None] * n, dtype=object)
    order: _Order = (no, no, no, None)
    tz_rows = 0
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        tz_rows = int(series.notna().sum())
        parsed = series.dt.tz_convert("UTC").dt.tz_localize(None)
        null = series.isna().to_numpy(dtype=bool)
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = series
        null = series.isna().to_numpy(dtype=bool)
    else:
        parsed, null, tz_rows, order = _parse_text_dates(series, date_format)
    nat = np.iinfo(np.int64).min
    if parsed.dtype == np.dtype("datetime64[ns]"):
        ns = parsed.to_numpy().view(np.int64)
        missing = ns == nat
        early = np.zeros(len(ns), dtype=bool)
        late = ~missing & (ns >= SENTINEL_AFTER.value)
        if late.any():
            ns = np.where(late, 0, ns)
    else:
        us = parsed.astype("datetime64[us]").to_numpy().view(np.int64)
        missing = us == nat
        early = ~missing & (us < EARLIEST.value // _NS_PER_US)
        late = ~missing & (us >= SENTINEL_AFTER.value // _NS_PER_US)
        ns = np.where(~missing & ~early & ~late, us, 0) * _NS_PER_US
    bad = missing & ~null
    return ParsedDates(
        ns=ns,
        null=null,
        bad=bad,
        early=early,
        late=late,
        tz_rows=tz_rows,
        day_first=order[0],
        month_first=order[1],
        two_ways=order[2],
        order=order[3],
    )


_Order = tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_], str | None]


def _parse_text_dates(
    series: pd.Series, date_format: str | None
) -> tuple[pd.Series, npt.NDArray[np.bool_], int, _Order]:
    """Parse text (or objects) as dates: parsed values, nulls, rows with a time zone, order."""
    is_text = pd.api.types.is_string_dtype(series.dtype) or series.dtype == object
    text = series.astype("str").str.strip() if is_text else series
    null = series.isna().to_numpy(dtype=bool)
    if is_text:
        null = null | (text == "").fillna(value=False).to_numpy(dtype=bool)
    source = text.where(~null) if is_text else series
    no = np.zeros(len(series), dtype=bool)
    order: _Order = (no, no, no, None)
    if is_text and date_format is None:
        order = _day_month_order(text.where(~null, ""))
    either = order[0] | order[1] | order[2]
    try:
        if date_format is not None:
            parsed = _to_datetime(source, format=date_format)
        else:
            parsed = _to_datetime(source.where(~either) if order[3] is not None else source)
    except (ValueError, TypeError):
        parsed = _to_datetime(source, utc=True, format="mixed")
    if order[3] is not None:
        # the column says which part is the day: every date such as 03/04/2024 is read so
        ordered = _read_ordered(source[either], order[3])
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            ordered = ordered.dt.tz_localize("UTC")
        parsed = parsed.astype(ordered.dtype)
        parsed.loc[either] = ordered
    tz_rows = 0
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        tz_rows = int(parsed.notna().sum())
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    failed = ~null & parsed.isna().to_numpy(dtype=bool)
    if failed.any():
        # The first value fixes the inferred format; values in other formats (or with and
        # without offsets mixed) get a second, slower chance. A format given is never second-
        # guessed: what does not follow it must be ISO 8601 (which reads one way only).
        retry = _to_datetime(
            source[failed], utc=True, format="mixed" if date_format is None else "ISO8601"
        )
        tz_rows += int(retry.notna().sum()) if tz_rows else 0
        parsed = parsed.astype("datetime64[us]")
        parsed.loc[failed] = retry.dt.tz_localize(None).astype("datetime64[us]")
    return parsed, null, tz_rows, order


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedNumbers:
    """Numbers as float64 with masks of text that is not a number or reads two ways.

    Attributes
    ----------
    values : ndarray of float64
        NaN where missing or bad.
    bad : ndarray of bool
        Present but not a number.
    from_text : int
        How many values were read from text with thousands separators.
    comma_only : ndarray of bool
        Text that reads as a number only with a decimal comma (``"1.000,50"``, ``"2,5"``), when
        no text of the column needs a decimal point; always False when the decimal mark is
        given.
    two_ways : ndarray of bool
        Text that reads as two different numbers with a decimal point or a decimal comma
        (``"2.500"``, ``"1,000"``); always False when the decimal mark is given.

    Examples
    --------
    >>> import pandas as pd
    >>> n = parse_numbers(pd.Series(["1,000.50", "x", None]))
    >>> n.values.tolist()[:1], n.bad.tolist(), n.from_text
    ([1000.5], [False, True, False], 1)
    """

    values: npt.NDArray[np.float64]
    bad: npt.NDArray[np.bool_]
    from_text: int
    comma_only: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    two_ways: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def decimal_comma(self) -> bool:
        """Whether the text reads as written with a decimal comma (and none with a point).

        Examples
        --------
        >>> import pandas as pd
        >>> parse_numbers(pd.Series(["2.500", "1.000,50"])).decimal_comma
        True
        >>> parse_numbers(pd.Series(["2.5", "1.000,50"])).decimal_comma
        False
        """
        return bool(self.comma_only.any())


def _grouped(thousands: str, decimal: str) -> re.Pattern[str]:
    t, d = re.escape(thousands), re.escape(decimal)
    return re.compile(rf"^[+-]?[1-9]\d{{0,2}}({t}\d{{3}})+({d}\d*)?$")


def parse_numbers(
    series: pd.Series, *, decimal: str | None = None, thousands: str | None = None
) -> ParsedNumbers:
    """Parse a numeric column; text with thousands separators ("1,000.50") is read as a number.

    Parameters
    ----------
    series : pandas.Series
    decimal : {".", ","} or None, default None
        The decimal mark of text. None: a point, and the text that reads otherwise with a
        comma is marked in ``comma_only`` and ``two_ways`` for the caller to judge.
    thousands : str or None, default None
        The thousands separator of text (default: the other one of ``","`` and ``"."``;
        ``""`` for none).

    Returns
    -------
    ParsedNumbers

    Examples
    --------
    >>> parse_numbers(pd.Series([1, 2])).values.tolist()
    [1.0, 2.0]
    >>> parse_numbers(pd.Series(["1.000,50", "2,5"]), decimal=",").values.tolist()
    [1000.5, 2.5]
    """
    n = len(series)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return ParsedNumbers(values=values, bad=np.zeros(n, dtype=bool), from_text=0)
    text = series.astype("str").str.strip()
    null = series.isna().to_numpy(dtype=bool) | (text == "").fillna(value=False).to_numpy(
        dtype=bool
    )
    mark = decimal if decimal is not None else "."
    sep = thousands if thousands is not None else ("," if mark == "." else ".")
    if sep:
        grouped = text.str.match(_grouped(sep, mark)).fillna(value=False).to_numpy(dtype=bool)
        cleaned = text.where(~grouped, text.str.replace(sep, "", regex=False))
    else:
        grouped = np.zeros(n, dtype=bool)
        cleaned = text
    if mark != ".":
        # a point left in the text is neither the mark nor a valid separator: not a number
        cleaned = cleaned.where(~cleaned.str.contains(".", regex=False).fillna(value=False), "x")
        cleaned = cleaned.str.replace(mark, ".", regex=False)
    cleaned = cleaned.where(~null)
    values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~null & np.isnan(values) & ~cleaned.str.lower().isin(["nan"]).to_numpy(dtype=bool)
    out = ParsedNumbers(values=values, bad=bad, from_text=int((grouped & ~bad).sum()))
    if decimal is not None or not text.str.contains(",", regex=False).fillna(value=False).any():
        # without a comma no text can read only with a decimal comma: nothing to judge
        return out
    comma = parse_numbers(series, decimal=",", thousands=".")
    read_comma = ~comma.bad & ~null
    comma_only = bad & read_comma
    with np.errstate(invalid="ignore"):
        two_ways = ~bad & read_comma & (comma.values != values)
    marked = text.str.contains(r"[.,]").fillna(value=False).to_numpy(dtype=bool)
    point_only = ~bad & ~null & ~read_comma & marked
    return ParsedNumbers(
        values=values,
        bad=bad,
        from_text=out.from_text,
        comma_only=comma_only if not point_only.any() else np.zeros(n, dtype=bool),
        two_ways=two_ways,
    )


def parse_bools(
    series: pd.Series, *, default: bool
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Parse a yes/no column (bools, 0/1, or text such as "yes", "false"); nulls take ``default``.

    Parameters
    ----------
    series : pandas.Series
    default : bool

    Returns
    -------
    values, bad : ndarray of bool

    Examples
    --------
    >>> values, bad = parse_bools(pd.Series(["yes", None, "maybe"]), default=True)
    >>> values.tolist(), bad.tolist()
    ([True, True, False], [False, False, True])
    """
    null = series.isna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=bool, na_value=default)
        return values, np.zeros(len(values), dtype=bool)
    text = series.astype("str").str.strip().str.lower()
    text = text.str.replace(r"\.0$", "", regex=True)
    null = null | (text == "").fillna(value=False).to_numpy(dtype=bool)
    true = text.isin(list(_TRUE)).to_numpy(dtype=bool)
    false = text.isin(list(_FALSE)).to_numpy(dtype=bool)
    values = np.where(null, default, true)
    return values, ~null & ~true & ~false
