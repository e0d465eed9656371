"""Helpers shared by the evaluation modules: parameter checks, dates as text, active holdings."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._progress import progress_bar, show_progress
from crosssell.book import Book
from crosssell.columns import Columns

__all__ = [
    "BacktestFrames",
    "HorizonLike",
    "active_clients",
    "active_mask",
    "boot_sums",
    "check_cutoffs",
    "check_k",
    "check_ks",
    "cutoff_list",
    "day",
    "progress_bar",
    "seed",
    "show_progress",
    "span",
    "to_horizon",
    "to_timestamp",
]

# bootstrap weight matrices are built in blocks of at most this many cells to bound memory
BOOT_BLOCK_CELLS: Final = 4_000_000

HorizonLike = str | pd.Timedelta | _dt.timedelta | np.timedelta64 | int


class BacktestFrames(Protocol):
    """What the charts read from a backtest result: its metrics and its offers.

    The charts sit below the backtest (whose result draws itself with them), so they name the
    frames they need rather than the result's class.
    """

    @property
    def metrics(self) -> pd.DataFrame: ...

    @property
    def offers(self) -> pd.DataFrame: ...


def day(ts: pd.Timestamp) -> str:
    """Write a date as a person does: the time only when there is one."""
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def span(delta: pd.Timedelta) -> str:
    """Write a duration in days when it is a whole number of them."""
    if delta == pd.Timedelta(days=delta.days):
        return f"{delta.days} day{'s' if delta.days != 1 else ''}"
    return str(delta)


def cutoff_list(cutoffs: Any) -> list[pd.Timestamp]:
    values: Iterable[Any]
    if isinstance(cutoffs, str | pd.Timestamp) or not isinstance(cutoffs, Iterable):
        values = [cutoffs]
    else:
        values = list(cutoffs)
    stamps = [to_timestamp(v, name="cutoffs", owner="backtest") for v in values]
    if not stamps:
        raise ValueError(
            "The 'cutoffs' parameter of backtest must be a date or a non-empty list of dates. "
            f"Got {cutoffs!r} instead."
        )
    return sorted(set(stamps))


def _book_span(book: Book) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last date observed in the book: contract starts and event dates."""
    starts = book.contract_arrays.start
    if starts.shape[0] == 0:
        raise ValueError(
            "backtest: the book has no contracts, so there is nothing to fit on and no outcome "
            "to observe. Build the Book from a contracts table with rows."
        )
    first = int(starts.min())
    last = int(starts.max())
    events = book.event_table
    if Columns.date in events.columns and events.shape[0]:
        latest_event = pd.Timestamp(events[Columns.date].max())
        if not pd.isna(latest_event):
            last = max(last, int(latest_event.as_unit("ns").value))
    return pd.Timestamp(first, unit="ns"), pd.Timestamp(last, unit="ns")


def check_cutoffs(book: Book, cutoffs: Sequence[pd.Timestamp], horizon: pd.Timedelta) -> None:
    first, last = _book_span(book)
    for cut in cutoffs:
        end = cut + horizon
        if end > last:
            latest = last - horizon
            fix = (
                f"Use a cutoff on or before {day(latest)}."
                if latest >= first
                else f"The book spans only {day(first)} to {day(last)}: use a shorter horizon."
            )
            raise ValueError(
                f"cutoff {day(cut)} + horizon {span(horizon)} = {day(end)} is after the last "
                f"date in the book ({day(last)}): no outcome can be observed. {fix}"
            )
        if cut < first:
            raise ValueError(
                f"cutoff {day(cut)} is before the first contract in the book ({day(first)}): "
                f"there is no history to fit on. Use a cutoff on or after {day(first)}."
            )


def seed(random_state: int | np.random.Generator | None) -> int | None:
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    return random_state


def boot_sums(
    columns: npt.NDArray[np.float64], n_boot: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Column sums of ``columns`` over ``n_boot`` resamples of its rows, shape (n_boot, n_cols).

    Each resample draws the rows with replacement; a block of resamples is one count matrix
    (resamples x rows) multiplied with ``columns``.
    """
    n = columns.shape[0]
    out = np.empty((n_boot, columns.shape[1]), dtype=np.float64)
    block = max(1, BOOT_BLOCK_CELLS // max(n, 1))
    for first in range(0, n_boot, block):
        b = min(block, n_boot - first)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b)[:, None] * n)
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)
        out[first : first + b] = counts @ columns
    return out


def to_timestamp(value: Any, *, name: str, owner: str) -> pd.Timestamp:
    """Read a date-like as a tz-naive UTC timestamp, or raise a parameter error."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The {name!r} parameter of {owner} must be a date (a string such as '2024-06-30', "
            f"a datetime or a pandas Timestamp). Got {value!r} instead."
        ) from exc
    if pd.isna(ts):
        raise ValueError(
            f"The {name!r} parameter of {owner} must be a date (a string such as '2024-06-30', "
            f"a datetime or a pandas Timestamp). Got {value!r} instead."
        )
    if ts.tzinfo is not None:
        # the Book keeps every date as tz-naive UTC
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("ns")


def to_horizon(value: HorizonLike, *, owner: str) -> pd.Timedelta:
    """Read a horizon (``"180D"``, a timedelta, or a number of days) as a positive Timedelta."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | np.integer):
            horizon = pd.Timedelta(days=int(value))
        else:
            horizon = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'horizon' parameter of {owner} must be a positive duration such as '180D', a "
            f"timedelta or a number of days. Got {value!r} instead."
        ) from exc
    if pd.isna(horizon) or horizon <= pd.Timedelta(0):
        raise ValueError(
            f"The 'horizon' parameter of {owner} must be a positive duration such as '180D', a "
            f"timedelta or a number of days. Got {value!r} instead."
        )
    return horizon.as_unit("ns")


def active_mask(book: Book, at_ns: int) -> npt.NDArray[np.bool_]:
    """Contracts active at ``at_ns`` (``start <= at < end``)."""
    arrays = book.contract_arrays
    mask: npt.NDArray[np.bool_] = (arrays.start <= at_ns) & (arrays.end > at_ns)
    return mask


def active_clients(book: Book, at_ns: int) -> npt.NDArray[np.int64]:
    """Sorted indices of clients holding at least one product at ``at_ns``."""
    held = book.contract_arrays.client[active_mask(book, at_ns)]
    return np.unique(held).astype(np.int64)


def check_k(k: object, *, owner: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or int(k) < 1:
        raise ValueError(
            f"The 'k' parameter of {owner} must be an int in the range [1, inf). Got {k!r} instead."
        )
    return int(k)


def check_ks(k: int | Iterable[int], *, owner: str) -> tuple[int, ...]:
    values = [k] if isinstance(k, int | np.integer) else list(k)
    if not values:
        raise ValueError(
            f"The 'k' parameter of {owner} must be an int in the range [1, inf) or a non-empty "
            f"sequence of them. Got {k!r} instead."
        )
    return tuple(sorted({check_k(v, owner=owner) for v in values}))
