"""Tests of crosssell.matrix: the point-in-time client x product matrix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell import Book, ClientProductMatrix
from crosssell.columns import Columns
from crosssell.exceptions import DataWarning
from crosssell.matrix import build_matrix, last_date, to_as_of
from crosssell.weighting import LogValue, Recency
from strategies import DAY0, contract_frames

C = Columns
AS_OF = "2024-07-01"


def contracts(*rows: tuple[Any, ...]) -> pd.DataFrame:
    """Contracts from (client, product, start, end[, value[, quantity]]) tuples."""
    records = [
        {
            C.client: r[0],
            C.product: r[1],
            C.start: r[2],
            C.end: r[3],
            C.value: r[4] if len(r) > 4 else np.nan,
            C.quantity: r[5] if len(r) > 5 else 1.0,
        }
        for r in rows
    ]
    return pd.DataFrame.from_records(
        records, columns=[C.client, C.product, C.start, C.end, C.value, C.quantity]
    )


def make_book(frame: pd.DataFrame) -> Book:
    return Book.from_frames(contracts=frame)


def book_of(*rows: tuple[Any, ...]) -> Book:
    return make_book(contracts(*rows))


def dense(m: ClientProductMatrix) -> dict[tuple[Any, Any], float]:
    """The stored entries keyed by external ids, independent of row and column order."""
    coo = m.client_product.tocoo()
    clients = m.clients.to_external(coo.row).tolist()
    products = m.products.to_external(coo.col).tolist()
    return {(c, p): float(v) for c, p, v in zip(clients, products, coo.data, strict=True)}


def assert_well_formed(m: ClientProductMatrix) -> None:
    x = m.client_product
    assert isinstance(x, sp.csr_matrix)
    assert x.dtype == np.float32
    assert x.shape == (len(m.clients), len(m.products))
    assert x.has_sorted_indices
    x.check_format(full_check=True)
    assert (x.data > 0).all()
    # one stored entry per pair: no duplicates within a row
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    keys = rows.astype(np.int64) * max(x.shape[1], 1) + x.indices
    assert np.unique(keys).size == x.nnz


@pytest.fixture
def book() -> Book:
    return book_of(
        ("C1", "P1", "2023-01-01", None, 100.0),  # open: active
        ("C1", "P2", "2024-01-01", "2024-03-01", 50.0),  # ended before as_of
        ("C2", "P1", "2024-02-01", "2025-02-01", 200.0),  # ends after as_of: active
        ("C3", "P2", "2024-09-01", None, 10.0),  # starts after as_of: not yet
        ("C4", "P3", "2020-01-01", "2021-01-01", 5.0),  # long gone
    )


def test_binary_active_matrix_has_obvious_entries(book: Book) -> None:
    """Check that the default matrix holds exactly the contracts active at as_of, weighted 1."""
    m = build_matrix(book, AS_OF)
    assert_well_formed(m)
    assert dense(m) == {("C1", "P1"): 1.0, ("C2", "P1"): 1.0}
    assert m.shape == (4, 3)
    assert m.weighting == "binary"
    assert m.state == "active"
    assert m.as_of == pd.Timestamp(AS_OF)


def test_ever_state_counts_ended_contracts_but_not_future_ones(book: Book) -> None:
    """Check that state='ever' adds ended contracts and still ignores contracts starting later."""
    m = build_matrix(book, AS_OF, state="ever")
    assert_well_formed(m)
    assert dense(m) == {
        ("C1", "P1"): 1.0,
        ("C1", "P2"): 1.0,
        ("C2", "P1"): 1.0,
        ("C4", "P3"): 1.0,
    }


def test_rows_and_columns_cover_every_known_id(book: Book) -> None:
    """Check that clients and products holding nothing still get an (empty) row and column."""
    m = build_matrix(book, AS_OF)
    assert m.clients == book.client_ids
    assert m.products == book.product_ids
    per_client = m.holdings_per_client()
    assert per_client.to_dict() == {"C1": 1, "C2": 1, "C3": 0, "C4": 0}


def test_boundaries_start_inclusive_end_exclusive() -> None:
    """Check that a contract starting on as_of counts and one ending on as_of does not."""
    b = book_of(
        ("C1", "P1", AS_OF, None),
        ("C2", "P1", "2024-01-01", AS_OF),
        ("C3", "P1", "2024-01-01", "2024-07-02"),
    )
    assert set(dense(build_matrix(b, AS_OF))) == {("C1", "P1"), ("C3", "P1")}
    assert set(dense(build_matrix(b, AS_OF, state="ever"))) == {
        ("C1", "P1"),
        ("C2", "P1"),
        ("C3", "P1"),
    }


def test_overlaps_and_renewals_collapse_into_one_entry() -> None:
    """Check that overlapping and renewed rows of a pair give one stored entry."""
    b = book_of(
        ("C1", "P1", "2022-01-01", "2023-01-01", 10.0),
        ("C1", "P1", "2023-01-01", None, 20.0),
        ("C1", "P1", "2023-06-01", None, 30.0),
        ("C1", "P1", "2023-06-01", "2025-01-01", 40.0),
    )
    m = build_matrix(b, AS_OF)
    assert m.client_product.nnz == 1
    assert dense(m) == {("C1", "P1"): 1.0}
    assert dense(build_matrix(b, AS_OF, weighting="value")) == {("C1", "P1"): 90.0}
    assert dense(build_matrix(b, AS_OF, weighting="value", state="ever")) == {("C1", "P1"): 100.0}


def test_exact_duplicate_rows_count_once() -> None:
    """Check that an exact duplicate row (collapsed by the Book with a warning) counts once."""
    with pytest.warns(DataWarning, match="exact duplicates"):
        b = book_of(
            ("C1", "P1", "2023-06-01", None, 30.0),
            ("C1", "P1", "2023-06-01", None, 30.0),
        )
    assert dense(build_matrix(b, AS_OF, weighting="value")) == {("C1", "P1"): 30.0}


@pytest.mark.parametrize(
    "as_of",
    [
        "2024-07-01",
        dt.date(2024, 7, 1),
        dt.datetime(2024, 7, 1),
        pd.Timestamp("2024-07-01"),
        np.datetime64("2024-07-01"),
        pd.Timestamp("2024-07-01 02:00", tz="Europe/Paris"),
    ],
)
def test_as_of_accepts_every_date_type(book: Book, as_of: Any) -> None:
    """Check that text, date, datetime, Timestamp, datetime64 and aware times mean the same."""
    m = build_matrix(book, as_of)
    assert m.as_of == pd.Timestamp(AS_OF)
    assert dense(m) == dense(build_matrix(book, AS_OF))


def test_as_of_none_is_the_last_recorded_date(book: Book) -> None:
    """Check that as_of=None means the latest start in the Book, never a scheduled end date."""
    assert last_date(book) == pd.Timestamp("2024-09-01")
    m = build_matrix(book)
    assert m.as_of == pd.Timestamp("2024-09-01")
    # C3's contract starts on that day, so it counts; C2's ends later, so it is still active
    assert set(dense(m)) == {("C1", "P1"), ("C2", "P1"), ("C3", "P2")}


def test_transactions_count_as_held_within_the_look_back() -> None:
    """Check that a purchase counts while within the look-back, and as_of=None is the last one."""
    lines = pd.DataFrame(
        {
            C.client: ["C1", "C1", "C2"],
            C.product: ["P1", "P2", "P1"],
            C.timestamp: ["2024-01-10", "2024-06-01", "2024-06-20"],
            C.amount: [5.0, 7.0, 9.0],
        }
    )
    b = Book.from_transactions(lines, lookback="90D")
    assert set(dense(build_matrix(b, AS_OF))) == {("C1", "P2"), ("C2", "P1")}
    assert set(dense(build_matrix(b, AS_OF, state="ever"))) == {
        ("C1", "P1"),
        ("C1", "P2"),
        ("C2", "P1"),
    }
    assert build_matrix(b).as_of == pd.Timestamp("2024-06-20")
    assert dense(build_matrix(b, AS_OF, weighting="value")) == {
        ("C1", "P2"): 7.0,
        ("C2", "P1"): 9.0,
    }


def test_book_matrix_delegates_to_build_matrix(book: Book) -> None:
    """Check that Book.matrix gives the same matrix as build_matrix."""
    a = book.matrix(AS_OF, weighting="log_value", state="ever")
    b = build_matrix(book, AS_OF, weighting=LogValue(), state="ever")
    assert dense(a) == dense(b)
    assert a.weighting == b.weighting == "log_value"


def test_weighting_description_is_recorded(book: Book) -> None:
    """Check that the matrix records a readable description of its weighting."""
    m = build_matrix(book, AS_OF, weighting=Recency(half_life="180D") * LogValue())
    assert m.weighting == "recency(half_life='180D') * log_value"
    assert build_matrix(book, AS_OF, weighting=("tenure", "quantity")).weighting == (
        "tenure * quantity"
    )


def test_unknown_state_is_rejected(book: Book) -> None:
    """Check that an unknown state raises a ValueError naming the options."""
    with pytest.raises(
        ValueError, match=r"The 'state' parameter of build_matrix must be a str among"
    ):
        build_matrix(book, AS_OF, state="current")  # type: ignore[arg-type]


def test_unknown_weighting_is_rejected(book: Book) -> None:
    """Check that an unknown weighting name raises a ValueError listing the known names."""
    with pytest.raises(ValueError, match=r"'binary', 'value', 'log_value'.*Got 'money' instead"):
        build_matrix(book, AS_OF, weighting="money")


@pytest.mark.parametrize(
    ("as_of", "error", "words"),
    [
        ("end of June", ValueError, "must be a date"),
        ("3000-01-01", ValueError, "is out of range: '3000-01-01' is a date"),
        (20240701, TypeError, "must be a date"),
    ],
)
def test_bad_as_of_is_rejected(book: Book, as_of: Any, error: type[Exception], words: str) -> None:
    """Check that an unreadable or out-of-range as_of raises with the parameter named."""
    with pytest.raises(error, match=rf"The 'as_of' parameter of build_matrix {words}"):
        build_matrix(book, as_of)


def test_to_as_of_converts_aware_times_to_utc() -> None:
    """Check that an aware as_of is converted to UTC and made naive."""
    assert to_as_of("2024-07-01T02:00+02:00") == pd.Timestamp("2024-07-01")
    assert to_as_of(pd.Timestamp("2024-07-01", tz="UTC")).tzinfo is None


def test_as_of_before_all_history_gives_empty_matrix_of_full_shape(book: Book) -> None:
    """Check that an as_of before every contract gives an empty matrix with every row and column."""
    for state in ("active", "ever"):
        m = build_matrix(book, "1999-01-01", state=state, weighting="recency")  # type: ignore[arg-type]
        assert_well_formed(m)
        assert m.shape == (4, 3)
        assert m.client_product.nnz == 0


def test_summary_counts(book: Book) -> None:
    """Check that summary() reports rows, columns, holders, stored pairs and density."""
    s = build_matrix(book, AS_OF).summary()
    assert s == {
        "clients": 4,
        "clients_with_holdings": 2,
        "products": 3,
        "products_held": 1,
        "stored_pairs": 2,
        "density": 2 / 12,
        "as_of": pd.Timestamp(AS_OF),
        "weighting": "binary",
        "state": "active",
    }


def test_holders_per_product_counts_clients(book: Book) -> None:
    """Check that holders_per_product counts clients per product, zero for unheld products."""
    h = build_matrix(book, AS_OF, state="ever", weighting="value").holders_per_product()
    assert h.to_dict() == {"P1": 2, "P2": 1, "P3": 1}
    assert h.index.name == C.product
    assert h.dtype == np.int64


def test_integer_ids_keep_their_dtype() -> None:
    """Check that integer client and product ids come back as integers."""
    m = book_of((7, 70, "2024-01-01", None), (8, 70, "2024-01-01", None)).matrix(AS_OF)
    assert dense(m) == {(7, 70): 1.0, (8, 70): 1.0}


# --- properties -----------------------------------------------------------------------------

PROPERTY_AS_OF = DAY0 + pd.Timedelta(days=400)
WEIGHTINGS = ["binary", "value", "log_value", "tenure", "recency", "quantity", ("recency", "value")]


def held_pairs(frame: pd.DataFrame, as_of: pd.Timestamp, state: str) -> set[tuple[str, str]]:
    held = frame[C.start] <= as_of
    if state == "active":
        held &= frame[C.end].isna() | (frame[C.end] > as_of)
    sub = frame[held]
    return set(zip(sub[C.client], sub[C.product], strict=True))


def assert_same_entries(a: ClientProductMatrix, b: ClientProductMatrix) -> None:
    da, db = dense(a), dense(b)
    assert da.keys() == db.keys()
    for key, value in da.items():
        assert value == pytest.approx(db[key], rel=1e-6)


@pytest.mark.filterwarnings("ignore::crosssell.exceptions.DataWarning")
@settings(max_examples=40, deadline=None)
@given(
    frame=contract_frames(),
    state=st.sampled_from(["active", "ever"]),
    weighting=st.sampled_from(WEIGHTINGS),
)
def test_property_one_entry_per_distinct_pair_held(
    frame: pd.DataFrame, state: str, weighting: Any
) -> None:
    """Check that the stored entries are exactly the distinct (client, product) pairs held."""
    m = build_matrix(make_book(frame), PROPERTY_AS_OF, weighting=weighting, state=state)  # type: ignore[arg-type]
    assert_well_formed(m)
    assert set(dense(m)) == held_pairs(frame, PROPERTY_AS_OF, state)
    assert m.client_product.nnz == len(held_pairs(frame, PROPERTY_AS_OF, state))


@pytest.mark.filterwarnings("ignore::crosssell.exceptions.DataWarning")
@settings(max_examples=30, deadline=None)
@given(
    frame=contract_frames(),
    seed=st.integers(0, 2**32 - 1),
    state=st.sampled_from(["active", "ever"]),
    weighting=st.sampled_from(WEIGHTINGS),
)
def test_property_shuffling_rows_changes_nothing(
    frame: pd.DataFrame, seed: int, state: str, weighting: Any
) -> None:
    """Check that shuffling the contract rows gives the same entries and weights."""
    shuffled = frame.sample(frac=1.0, random_state=np.random.default_rng(seed)).reset_index(
        drop=True
    )
    a = build_matrix(make_book(frame), PROPERTY_AS_OF, weighting=weighting, state=state)  # type: ignore[arg-type]
    b = build_matrix(make_book(shuffled), PROPERTY_AS_OF, weighting=weighting, state=state)  # type: ignore[arg-type]
    assert_same_entries(a, b)


@pytest.mark.filterwarnings("ignore::crosssell.exceptions.DataWarning")
@settings(max_examples=30, deadline=None)
@given(
    frame=contract_frames(),
    later=contract_frames(),
    state=st.sampled_from(["active", "ever"]),
    weighting=st.sampled_from(WEIGHTINGS),
)
def test_property_rows_dated_after_as_of_change_nothing(
    frame: pd.DataFrame, later: pd.DataFrame, state: str, weighting: Any
) -> None:
    """Check that adding contracts starting after as_of leaves the matrix unchanged."""
    shift = PROPERTY_AS_OF - DAY0 + pd.Timedelta(days=1)
    later = later.assign(**{C.start: later[C.start] + shift, C.end: later[C.end] + shift})
    grown = pd.concat([frame, later], ignore_index=True)
    a = build_matrix(make_book(frame), PROPERTY_AS_OF, weighting=weighting, state=state)  # type: ignore[arg-type]
    b = build_matrix(make_book(grown), PROPERTY_AS_OF, weighting=weighting, state=state)  # type: ignore[arg-type]
    assert_same_entries(a, b)


@pytest.mark.filterwarnings("ignore::crosssell.exceptions.DataWarning")
@settings(max_examples=20, deadline=None)
@given(frame=contract_frames(), state=st.sampled_from(["active", "ever"]))
def test_property_as_of_before_history_is_empty(frame: pd.DataFrame, state: str) -> None:
    """Check that an as_of before every start gives an empty matrix of full shape."""
    b = make_book(frame)
    m = build_matrix(b, DAY0 - pd.Timedelta(days=1), state=state)  # type: ignore[arg-type]
    assert m.client_product.nnz == 0
    assert m.shape == (len(b.client_ids), len(b.product_ids))
