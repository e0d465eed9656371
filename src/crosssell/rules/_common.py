"""Small vectorised helpers the rules share: text, dates and numbers over whole arrays."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
TextArray = npt.NDArray[np.object_]

DAY_NS: Final = 86_400 * 10**9


def holds_purchases(book: Any) -> bool:
    """Whether the Book's holdings are look-back purchases rather than contracts with terms.

    A Book built by :meth:`~crosssell.Book.from_transactions` ends each purchase's holding when
    its look-back runs out: that end is not a term anyone renews.
    """
    return str(getattr(getattr(book, "info", None), "source", "contracts")) == "transactions"


def concat_text(*parts: Any) -> TextArray:
    """Concatenate strings and string arrays element-wise into an object array."""
    out: Any = ""
    for part in parts:
        piece = part if isinstance(part, str) else np.asarray(part).astype(str)
        out = np.strings.add(out, piece)
    return np.asarray(out, dtype=object).reshape(-1) if np.ndim(out) else np.array([out], object)


def iso_dates(ns: Any) -> npt.NDArray[np.str_]:
    """Format int64 nanoseconds as ``YYYY-MM-DD`` strings."""
    return np.datetime_as_string(np.asarray(ns, dtype=np.int64).view("datetime64[ns]"), unit="D")


def format_numbers(template: str, values: Any) -> npt.NDArray[np.str_]:
    """printf-format every number of an array (``"%.1f"``)."""
    return np.asarray(np.strings.mod(np.array(template), np.asarray(values)), dtype=str)


def as_tuple(value: Any) -> tuple[Any, ...]:
    """Read a catalog list cell as a tuple: None or NaN is empty, a lone string is one item."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def to_ns(values: Any) -> IntArray:
    """Datetime-like column as int64 nanoseconds (NaT as the smallest int64)."""
    return np.asarray(pd.Series(values).to_numpy(dtype="datetime64[ns]").view(np.int64))


def rank_within(key: IntArray) -> IntArray:
    """Return each element's position among the elements of its key, in the given order."""
    order = np.argsort(key, kind="stable")
    ranked = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = ranked[1:] != ranked[:-1]
    starts = np.flatnonzero(first)
    runs = np.diff(np.append(starts, len(key)))
    out = np.empty(len(key), dtype=np.int64)
    out[order] = np.arange(len(key), dtype=np.int64) - np.repeat(starts, runs)
    return out


def last_of_each(key: IntArray, by: IntArray | None = None) -> IntArray:
    """Positions of the last element of each key, in order, after a stable sort on ``by``.

    With ``by`` (e.g. dates) the elements are first put in a stable order of ``by``; the
    positions returned index the original arrays and follow that order. This is pandas'
    ``sort_values(by, kind="stable").drop_duplicates(key, keep="last")`` on arrays.
    """
    order = np.argsort(by, kind="stable") if by is not None else np.arange(len(key))
    ranked = np.asarray(key, dtype=np.int64)[order]
    n = ranked.shape[0]
    if n == 0:
        return order.astype(np.int64)
    _, first_from_end = np.unique(ranked[::-1], return_index=True)
    kept: IntArray = order[np.sort(n - 1 - first_from_end)].astype(np.int64)
    return kept


def family_members(codes: IntArray, n_families: int) -> tuple[IntArray, IntArray]:
    """Products of every family: ``members[ptr[f]:ptr[f + 1]]`` are family ``f``'s, ascending."""
    members = np.argsort(codes, kind="stable").astype(np.int64)
    ptr = np.zeros(n_families + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=n_families), out=ptr[1:])
    return members, ptr
