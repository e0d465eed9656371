"""Tests of crosssell.book: validation of the input tables into an immutable Book."""

from __future__ import annotations

import copy
import dataclasses
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosssell import Book, DataWarning, EventTypeWarning, Schema, SchemaError
from crosssell.book import OPEN_END
from crosssell.ids import spell_id
from strategies import ID_TEXT, contract_frames

DAY = pd.Timedelta("1D").value


def frame(**columns: object) -> pd.DataFrame:
    return pd.DataFrame(columns)


def quiet_build(*args: object, **kwargs: object) -> Book:
    """Build a Book while ignoring DataWarnings (for tests about something else)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return Book.from_frames(*args, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the happy path and the layout


def test_tiny_book_layout(tiny_contracts: pd.DataFrame) -> None:
    """Check that a clean book has the documented arrays, id order and defaults."""
    book = Book.from_frames(tiny_contracts)
    assert book.client_ids.external.tolist() == ["C1", "C2", "C3"]
    assert book.product_ids.external.tolist() == ["P1", "P2", "P3"]
    a = book.contract_arrays
    assert a.client.dtype == np.int32
    assert a.product.dtype == np.int32
    assert a.start.dtype == np.int64
    assert a.end.dtype == np.int64
    assert a.client.tolist() == [0, 0, 1, 2]
    assert a.product.tolist() == [0, 1, 0, 2]
    assert a.start[0] == pd.Timestamp("2024-01-01").value
    assert a.end.tolist()[0] == OPEN_END
    assert a.end[1] == pd.Timestamp("2025-02-28").value
    assert np.isnan(a.value[3])
    assert a.value[0] == 100.0
    assert a.quantity.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert book.rejected.empty
    assert list(book.rejected.columns) == ["table", "row", "column", "rule", "reason", "record"]


def test_product_table_defaults_without_catalog(tiny_contracts: pd.DataFrame) -> None:
    """Check that without a catalog each product is its own family with default attributes."""
    p = Book.from_frames(tiny_contracts).product_table
    assert isinstance(p.index, pd.RangeIndex)
    assert p["family"].tolist() == ["P1", "P2", "P3"]
    assert p["tier"].dtype == np.int64
    assert p["tier"].tolist() == [0, 0, 0]
    assert p["price"].isna().all()
    assert p["sellable"].tolist() == [True, True, True]
    assert p["requires"].tolist() == [(), (), ()]
    assert p["segments"].tolist() == [None, None, None]
    assert p["name"].tolist() == ["P1", "P2", "P3"]
    assert not p["in_catalog"].any()


def test_catalog_columns_parsed(tiny_contracts: pd.DataFrame) -> None:
    """Check that the catalog's lists, booleans and tiers are parsed into the documented types."""
    products = frame(
        product_id=["P3", "P1", "P2", "P4"],
        family=["Y", "X", "X", None],
        tier=[1, 1, 2, None],
        price=["1,000.50", 10, None, 5],
        sellable=["yes", True, "no", None],
        requires=[None, "P3", "P1;P3", ["P1"]],
        excludes=[(), None, "P3,P1", None],
        segments=[None, "SME;Corporate", ["Corporate"], None],
        colour=["red", "blue", "green", "grey"],
    )
    with pytest.warns(DataWarning, match="thousands separators"):
        book = Book.from_frames(tiny_contracts, products=products)
    p = book.product_table
    assert book.product_ids.external.tolist() == ["P3", "P1", "P2", "P4"]
    assert p["family"].tolist() == ["Y", "X", "X", "P4"]
    assert p["tier"].tolist() == [1, 1, 2, 0]
    assert p["price"].tolist()[:2] == [1000.5, 10.0]
    assert p["sellable"].tolist() == [True, True, False, True]
    assert p["requires"].tolist() == [(), ("P3",), ("P1", "P3"), ("P1",)]
    assert p["excludes"].tolist() == [(), (), ("P3", "P1"), ()]
    assert p["segments"].tolist() == [None, ("SME", "Corporate"), ("Corporate",), None]
    assert p["in_catalog"].all()
    assert p["colour"].tolist() == ["red", "blue", "green", "grey"]
    # Contracts are indexed against the catalog order.
    assert book.contract_arrays.product.tolist() == [1, 2, 1, 0]


def test_client_table_layout(tiny_contracts: pd.DataFrame) -> None:
    """Check that the clients table comes first, then new contract clients with defaults."""
    clients = frame(
        client_id=["C9", "C2"],
        segment=["SME", None],
        do_not_contact=["yes", None],
        satisfaction=[7, None],
        parent_id=[None, "C9"],
        tenure=[3, 4],
    )
    book = Book.from_frames(tiny_contracts, clients=clients)
    c = book.client_table
    assert book.client_ids.external.tolist() == ["C9", "C2", "C1", "C3"]
    assert c["do_not_contact"].tolist() == [True, False, False, False]
    assert c["satisfaction"].tolist()[0] == 7.0
    assert c["satisfaction"].isna().sum() == 3
    assert c["segment"].tolist()[0] == "SME"
    assert c["segment"].isna().sum() == 3
    assert c["parent_id"].tolist()[1] == "C9"
    assert c["tenure"].tolist()[:2] == [3, 4]
    assert book.contract_arrays.client.tolist() == [2, 2, 1, 3]


def test_event_table_layout(tiny_contracts: pd.DataFrame) -> None:
    """Check event indices, family lookup (also by family name) and sorting by date."""
    products = frame(product_id=["P1", "P2", "P3"], family=["Loans", "Loans", "Cards"])
    events = frame(
        client_id=["C2", "C1", "C1"],
        date=["2024-05-03", "2024-05-01", "2024-05-02"],
        type=["need", "offer_declined", "site_visit"],
        product_id=["Cards", "P2", None],
        ref=["r1", "r2", "r3"],
    )
    with pytest.warns(EventTypeWarning, match="'site_visit'"):
        book = Book.from_frames(tiny_contracts, products=products, events=events)
    e = book.event_table
    assert e["ref"].tolist() == ["r2", "r3", "r1"]
    assert e["client_idx"].dtype == np.int32
    assert e["client_idx"].tolist() == [0, 0, 1]
    assert e["product_idx"].tolist() == [1, -1, -1]
    assert e["family"].tolist()[0] == "Loans"
    assert e["family"].tolist()[2] == "Cards"
    assert pd.isna(e["family"].tolist()[1])
    assert e["date"].dtype == "datetime64[ns]"
    assert "client_idx" not in book.events.columns


def test_event_products_read_in_any_spelling(tiny_contracts: pd.DataFrame) -> None:
    """Check that events name a product padded, decomposed or repeated, and miss the unknown."""
    nfd, nfc = unicodedata.normalize("NFD", "Prêt"), unicodedata.normalize("NFC", "Prêt")
    contracts = pd.concat(
        [tiny_contracts, frame(client_id=["C1"], product_id=[nfc], start_date=["2024-01-01"])],
        ignore_index=True,
    )
    named = [" P1", nfd, "P9", None, "P1", f"\u00a0{nfc}"]
    events = frame(
        client_id=["C1"] * len(named),
        date=[f"2024-05-0{d}" for d in range(1, len(named) + 1)],
        type=["need"] * len(named),
        product_id=pd.Series(named, dtype="str"),
        ref=pd.Series([None] * len(named), dtype="str"),
    )
    book = quiet_build(contracts, events=events)
    e = book.event_table
    p1, pret = book.product_ids.index_of("P1"), book.product_ids.index_of(nfc)
    assert e["product_idx"].tolist() == [p1, pret, -1, -1, p1, pret]
    assert e["family"].tolist()[:2] == ["P1", nfc]
    # a text column stays text, even when every value is missing
    assert isinstance(e["ref"].dtype, pd.StringDtype)
    assert e["ref"].isna().all()


def test_events_naming_no_product(tiny_contracts: pd.DataFrame) -> None:
    """Check that events whose product ids are all missing name no product."""
    events = frame(
        client_id=["C1", "C2"],
        date=["2024-05-01", "2024-05-02"],
        type=["complaint_opened", "need"],
        product_id=pd.Series([None, None], dtype="str"),
    )
    e = quiet_build(tiny_contracts, events=events).event_table
    assert e["product_idx"].tolist() == [-1, -1]
    assert e["family"].isna().all()


# ---------------------------------------------------------------- columns


def test_missing_columns_listed_with_suggestions() -> None:
    """Check that every missing column is named at once, with close matches and a Schema fix."""
    bad = frame(**{"Client_ID ": [1], "prodct_id": ["P"], "begin": ["2024-01-01"]})
    with pytest.raises(SchemaError) as err:
        Book.from_frames(bad)
    msg = str(err.value)
    assert "missing required columns 'client_id', 'product_id', 'start_date'" in msg
    assert "'Client_ID ' for 'client_id'" in msg
    assert "'prodct_id' for 'product_id'" in msg
    assert "Schema(client='Client_ID ', product='prodct_id')" in msg
    assert err.value.table == "contracts"
    assert err.value.rule == "missing_column"


def test_schema_maps_names(tiny_contracts: pd.DataFrame) -> None:
    """Check that a Schema maps the caller's names once and messages use the caller's names."""
    theirs = tiny_contracts.rename(columns={"client_id": "customer", "end_date": "until"})
    book = Book.from_frames(theirs, schema=Schema(client="customer", end="until"))
    assert book.client_ids.external.tolist() == ["C1", "C2", "C3"]
    theirs.loc[0, "until"] = "2023-01-01"
    with pytest.raises(SchemaError, match=r"'until' is before 'start_date' .* customer=C1"):
        Book.from_frames(theirs, schema=Schema(client="customer", end="until"))


def test_extra_columns_kept(tiny_contracts: pd.DataFrame) -> None:
    """Check that unexpected columns are kept in the validated contracts."""
    extra = tiny_contracts.assign(contract_id=["K1", "K2", "K3", "K4"], channel=list("abcd"))
    out = Book.from_frames(extra).contracts
    assert out["contract_id"].tolist() == ["K1", "K2", "K3", "K4"]
    assert out["channel"].tolist() == list("abcd")


# ---------------------------------------------------------------- ids


def test_null_and_blank_ids_raise() -> None:
    """Check that null and blank ids are an error naming the rows."""
    c = frame(
        client_id=["C1", None, "  "], product_id=["P", "P", "P"], start_date=["2024-01-01"] * 3
    )
    with pytest.raises(SchemaError) as err:
        Book.from_frames(c)
    assert str(err.value).startswith(
        "contracts: 'client_id' is null or blank in 2 rows (showing 2)"
    )
    assert "row 1 client_id=<NA> product_id=P" in str(err.value)
    assert err.value.rows == (1, 2)
    assert err.value.column == "client_id"


def test_null_ids_collected() -> None:
    """Check that null ids are set aside with a reason and a DataWarning under collect."""
    c = frame(client_id=["C1", None], product_id=["P", "P"], start_date=["2024-01-01"] * 2)
    with pytest.warns(DataWarning, match="1 row set aside in book.rejected"):
        book = Book.from_frames(c, errors="collect")
    r = book.rejected
    assert r[["table", "row", "column", "rule"]].values.tolist() == [
        ["contracts", 1, "client_id", "null_id"]
    ]
    assert r["reason"].iloc[0] == "'client_id' is null or blank"
    assert r["record"].iloc[0] == "client_id=<NA> product_id=P start_date=2024-01-01"
    assert len(book.contract_arrays) == 1


def test_float_ids_become_integers() -> None:
    """Check that ids read as floats become integers with a warning counting the rows."""
    c = frame(client_id=[1.0, 2.0, 2.0], product_id=[7, 7, 8], start_date=["2024-01-01"] * 3)
    with pytest.warns(DataWarning, match=r"'client_id' held ids read as floats .* in 3 rows"):
        book = Book.from_frames(c)
    assert book.client_ids.external.tolist() == [1, 2]
    assert book.client_ids.dtype == np.int64


def test_non_integral_float_ids_raise() -> None:
    """Check that ids like 1.5 are an error that suggests reading ids as text."""
    c = frame(client_id=[1.0, 1.5], product_id=[7, 7], start_date=["2024-01-01"] * 2)
    with pytest.raises(SchemaError, match=r"non-integral floats in 1 row .*row 1 client_id=1.5"):
        quiet_build(c)


def test_ids_round_trip_exactly() -> None:
    """Check that leading zeros and integers beyond 2**53 are kept exactly."""
    big = 2**60 + 1
    c = frame(client_id=["007", "7"], product_id=[big, big - 1], start_date=["2024-01-01"] * 2)
    book = Book.from_frames(c)
    assert book.client_ids.external.tolist() == ["007", "7"]
    assert book.product_ids.external.tolist() == [big, big - 1]
    assert book.contracts["product_id"].tolist() == [big, big - 1]


def test_mixed_int_and_text_ids() -> None:
    """Check that a column mixing ints and text becomes text and collisions are reported."""
    c = frame(
        client_id=pd.Series([42, "42", "C1"], dtype=object),
        product_id=["P", "P", "P"],
        start_date=["2024-01-01", "2024-02-01", "2024-01-01"],
    )
    with pytest.warns(DataWarning, match=r"mixes integer and text ids .* 1 id collided"):
        book = Book.from_frames(c)
    assert book.client_ids.external.tolist() == ["42", "C1"]
    assert book.contract_arrays.client.tolist() == [0, 0, 1]


def test_unicode_forms_are_merged() -> None:
    """Check that ids differing only in unicode normalisation become one id, with a warning."""
    composed, decomposed = "Caf\u00e9", "Cafe\u0301"
    c = frame(
        client_id=[composed, decomposed],
        product_id=["P", "Q"],
        start_date=["2024-01-01"] * 2,
    )
    with pytest.warns(DataWarning, match=r"non-standard unicode form in 1 row"):
        book = Book.from_frames(c)
    assert book.client_ids.external.tolist() == [composed]


def test_ids_agree_across_tables() -> None:
    """Check that int ids in contracts and text ids in clients are unified as text."""
    c = frame(client_id=[42, 43], product_id=["P", "P"], start_date=["2024-01-01"] * 2)
    clients = frame(client_id=["42"], segment=["SME"])
    with pytest.warns(DataWarning, match="integers in contracts but text in clients"):
        book = Book.from_frames(c, clients=clients)
    assert book.client_ids.external.tolist() == ["42", "43"]
    assert book.client_table["segment"].tolist()[0] == "SME"


# ---------------------------------------------------------------- rows and dates


def test_exact_duplicates_collapsed() -> None:
    """Check that exact duplicate rows collapse into one with a warning counting them."""
    c = frame(
        client_id=["C1", "C1", "C1", "C2"],
        product_id=["P", "P", "P", "P"],
        start_date=["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01"],
        value=[1.0, 1.0, 2.0, 1.0],
    )
    with pytest.warns(DataWarning, match=r"exact duplicates of an earlier row in 1 row.*row 1"):
        book = Book.from_frames(c)
    assert len(book.contract_arrays) == 3
    assert book.contract_arrays.value.tolist() == [1.0, 2.0, 1.0]


def test_exact_duplicates_rejected_under_collect() -> None:
    """Check that under collect the collapsed copies are also listed in rejected."""
    c = frame(client_id=["C1", "C1"], product_id=["P", "P"], start_date=["2024-01-01"] * 2)
    with pytest.warns(DataWarning, match="exact duplicates"):
        book = Book.from_frames(c, errors="collect")
    assert book.rejected[["row", "rule"]].values.tolist() == [[1, "duplicate_row"]]


def test_overlapping_contracts_kept_as_rows() -> None:
    """Check that renewals and overlaps of one client and product stay separate rows."""
    c = frame(
        client_id=["C1", "C1", "C1"],
        product_id=["P", "P", "P"],
        start_date=["2023-01-01", "2024-01-01", "2023-06-01"],
        end_date=["2024-01-01", None, "2024-06-01"],
    )
    book = Book.from_frames(c)
    assert len(book.contract_arrays) == 3
    assert len(book.client_ids) == 1


def test_end_before_start_raises() -> None:
    """Check the end-before-start message: table, column, count, rows shown and the fix."""
    c = frame(
        client_id=["C042", "C1"],
        product_id=["LOAN", "LOAN"],
        start_date=["2024-03-01", "2024-01-01"],
        end_date=["2023-03-01", None],
    )
    with pytest.raises(SchemaError) as err:
        Book.from_frames(c)
    assert str(err.value) == (
        "contracts: 'end_date' is before 'start_date' in 1 row (showing 1): row 0 "
        "client_id=C042 product_id=LOAN start_date=2024-03-01 end_date=2023-03-01. "
        'Fix the dates or pass errors="collect".'
    )
    assert err.value.rule == "end_before_start"


def test_end_before_start_collected() -> None:
    """Check that a backwards contract is set aside and the others kept."""
    c = frame(
        client_id=["C042", "C1"],
        product_id=["LOAN", "LOAN"],
        start_date=["2024-03-01", "2024-01-01"],
        end_date=["2023-03-01", None],
    )
    with pytest.warns(DataWarning, match="set aside"):
        book = Book.from_frames(c, errors="collect")
    assert book.rejected["rule"].tolist() == ["end_before_start"]
    assert book.client_ids.external.tolist() == ["C1"]


def test_null_and_sentinel_ends_are_open() -> None:
    """Check that null ends are open and far-future sentinels are open with a warning."""
    c = frame(
        client_id=["C1", "C2", "C3"],
        product_id=["P", "P", "P"],
        start_date=["2024-01-01"] * 3,
        end_date=[None, "9999-12-31", "2250-01-01"],
    )
    with pytest.warns(DataWarning, match=r"'end_date' is after 2200 .* in 2 rows; read as open"):
        book = Book.from_frames(c)
    assert (book.contract_arrays.end == OPEN_END).all()


def test_unparseable_dates_shown() -> None:
    """Check that unparseable dates are an error showing them as given."""
    c = frame(client_id=["C1", "C2"], product_id=["P", "P"], start_date=["2024-01-01", "soon"])
    with pytest.raises(SchemaError, match=r"'start_date' is not a date in 1 row .*start_date=soon"):
        Book.from_frames(c)


def test_missing_start_raises() -> None:
    """Check that a missing start date is an error."""
    c = frame(client_id=["C1", "C2"], product_id=["P", "P"], start_date=["2024-01-01", None])
    with pytest.raises(SchemaError, match=r"'start_date' is missing in 1 row"):
        Book.from_frames(c)


def test_time_zones_converted_to_utc() -> None:
    """Check that tz-aware dates are converted to UTC, made naive, and reported."""
    c = frame(
        client_id=["C1", "C2"],
        product_id=["P", "P"],
        start_date=["2024-01-01T01:00+01:00", "2024-01-01T05:00-05:00"],
    )
    with pytest.warns(DataWarning, match=r"'start_date' had time zones in 2 rows"):
        book = Book.from_frames(c)
    assert pd.to_datetime(book.contract_arrays.start).tolist() == [
        pd.Timestamp("2024-01-01 00:00"),
        pd.Timestamp("2024-01-01 10:00"),
    ]


def test_tz_aware_column_converted() -> None:
    """Check that a tz-aware datetime column is converted to naive UTC."""
    start = pd.Series(pd.to_datetime(["2024-01-01 12:00"]).tz_localize("Europe/Paris"))
    c = frame(client_id=["C1"], product_id=["P"], start_date=start)
    with pytest.warns(DataWarning, match="time zones"):
        book = Book.from_frames(c)
    assert book.contracts["start_date"].tolist() == [pd.Timestamp("2024-01-01 11:00")]


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "rule", "phrase"),
    [
        (-5.0, "negative", "'value' is negative"),
        (np.inf, "infinite", "'value' is infinite"),
        (2e12, "too_large", "'value' is above 1e12"),
        ("12 EUR", "not_a_number", "'value' is not a number"),
    ],
)
def test_bad_values(value: object, rule: str, phrase: str) -> None:
    """Check that negative, infinite, huge and non-numeric values are errors, or set aside."""
    c = frame(
        client_id=["C1", "C2"],
        product_id=["P", "P"],
        start_date=["2024-01-01"] * 2,
        value=pd.Series([1.0, value], dtype=object),
    )
    with pytest.raises(SchemaError, match=rf"{phrase} in 1 row \(showing 1\): row 1 "):
        Book.from_frames(c)
    with pytest.warns(DataWarning, match="set aside"):
        book = Book.from_frames(c, errors="collect")
    assert book.rejected["rule"].tolist() == [rule]
    assert book.contract_arrays.value.tolist() == [1.0]


def test_text_values_parsed_and_nan_allowed() -> None:
    """Check that '1,000.50' is read as 1000.5 (warned) and missing values stay NaN."""
    c = frame(
        client_id=["C1", "C2", "C3"],
        product_id=["P", "P", "P"],
        start_date=["2024-01-01"] * 3,
        value=["1,000.50", None, "7"],
    )
    with pytest.warns(DataWarning, match=r"thousands separators .* in 1 row"):
        book = Book.from_frames(c)
    v = book.contract_arrays.value
    assert v[0] == 1000.5
    assert np.isnan(v[1])
    assert v[2] == 7.0


def test_bad_quantity() -> None:
    """Check that a non-positive quantity is an error and a missing one means 1."""
    c = frame(
        client_id=["C1", "C2"],
        product_id=["P", "P"],
        start_date=["2024-01-01"] * 2,
        quantity=[None, 0],
    )
    with pytest.raises(SchemaError, match=r"'quantity' is not positive in 1 row"):
        Book.from_frames(c)
    c.loc[1, "quantity"] = 3
    assert Book.from_frames(c).contract_arrays.quantity.tolist() == [1.0, 3.0]


# ---------------------------------------------------------------- catalog, clients, events


def test_unknown_products_raise(tiny_contracts: pd.DataFrame) -> None:
    """Check that contract products missing from a given catalog are an error with the fix."""
    products = frame(product_id=["P1", "P2"])
    with pytest.raises(SchemaError) as err:
        Book.from_frames(tiny_contracts, products=products)
    msg = str(err.value)
    assert "contracts: 'product_id' is not in the products table in 1 row" in msg
    assert "row 3 client_id=C3 product_id=P3" in msg
    assert "Add them to products" in msg


def test_duplicate_catalog_ids(tiny_contracts: pd.DataFrame) -> None:
    """Check that a product listed twice in the catalog is an error, or set aside."""
    products = frame(product_id=["P1", "P2", "P3", "P1"], tier=[1, 1, 1, 2])
    with pytest.raises(
        SchemaError, match=r"products: 'product_id' appears more than once in 1 row"
    ):
        Book.from_frames(tiny_contracts, products=products)
    with pytest.warns(DataWarning, match="set aside"):
        book = Book.from_frames(tiny_contracts, products=products, errors="collect")
    assert book.rejected[["table", "row"]].values.tolist() == [["products", 3]]
    assert book.product_table["tier"].tolist() == [1, 1, 1]


def test_requires_names_unknown_product(tiny_contracts: pd.DataFrame) -> None:
    """Check that a prerequisite outside the catalog is an error."""
    products = frame(product_id=["P1", "P2", "P3"], requires=[None, "P9", None])
    with pytest.raises(SchemaError, match=r"'requires' names products that are not in the catalog"):
        Book.from_frames(tiny_contracts, products=products)


def test_satisfaction_out_of_range(tiny_contracts: pd.DataFrame) -> None:
    """Check that satisfaction outside 0..10 is an error."""
    clients = frame(client_id=["C1", "C2"], satisfaction=[11, 5])
    with pytest.raises(SchemaError, match=r"'satisfaction' is outside 0..10 in 1 row .*row 0"):
        Book.from_frames(tiny_contracts, clients=clients)


def test_duplicate_client_ids(tiny_contracts: pd.DataFrame) -> None:
    """Check that a client listed twice is an error."""
    clients = frame(client_id=["C1", "C1"])
    with pytest.raises(SchemaError, match=r"clients: 'client_id' appears more than once in 1 row"):
        Book.from_frames(tiny_contracts, clients=clients)


def test_events_of_unknown_type_kept(tiny_contracts: pd.DataFrame) -> None:
    """Check that event types without built-in meaning are kept, warned of and reported."""
    events = frame(client_id=["C1", "C2"], date=["2024-05-01"] * 2, type=["site_visit", "need"])
    with pytest.warns(EventTypeWarning, match=r"1 event type .* 'site_visit' \(1 row\)"):
        book = Book.from_frames(tiny_contracts, events=events)
    assert book.event_table["type"].tolist() == ["site_visit", "need"]
    assert "without built-in meaning (kept for user rules): site_visit (1)" in (
        book.validation_report()
    )


def test_events_of_unknown_clients(tiny_contracts: pd.DataFrame) -> None:
    """Check that events of clients in neither clients nor contracts are an error, or set aside."""
    clients = frame(client_id=["C1"])
    events = frame(client_id=["C2", "C7"], date=["2024-05-01"] * 2, type=["contact"] * 2)
    with pytest.raises(SchemaError) as err:
        Book.from_frames(tiny_contracts, clients=clients, events=events)
    assert str(err.value).startswith(
        "events: 'client_id' is neither in the clients table nor in contracts in 1 row"
    )
    assert "row 1 client_id=C7" in str(err.value)
    with pytest.warns(DataWarning, match="set aside"):
        book = Book.from_frames(tiny_contracts, clients=clients, events=events, errors="collect")
    assert book.rejected["rule"].tolist() == ["unknown_client"]
    assert len(book.event_table) == 1


def test_event_clients_added_without_clients_table(tiny_contracts: pd.DataFrame) -> None:
    """Check that without a clients table, clients seen only in events are added last."""
    events = frame(client_id=["C7"], date=["2024-05-01"], type=["contact"])
    book = Book.from_frames(tiny_contracts, events=events)
    assert book.client_ids.external.tolist() == ["C1", "C2", "C3", "C7"]
    assert book.event_table["client_idx"].tolist() == [3]


def test_empty_contracts_raise() -> None:
    """Check that an empty contracts table is a clear error."""
    c = frame(client_id=[], product_id=[], start_date=[])
    with pytest.raises(SchemaError, match="contracts: the table is empty"):
        Book.from_frames(c)


def test_empty_optional_tables(tiny_contracts: pd.DataFrame) -> None:
    """Check that empty products, clients and events tables are accepted."""
    empty_products = frame(product_id=pd.Series([], dtype="str"))
    empty_events = frame(client_id=[], date=[], type=[])
    book = Book.from_frames(tiny_contracts, events=empty_events)
    assert len(book.event_table) == 0
    with pytest.raises(SchemaError, match="not in the products table in 4 rows"):
        Book.from_frames(tiny_contracts, products=empty_products)


def test_as_of_before_history(tiny_contracts: pd.DataFrame) -> None:
    """Check that a Book answers an as_of before all history without choking."""
    book = Book.from_frames(tiny_contracts)
    as_of = pd.Timestamp("2000-01-01").value
    a = book.contract_arrays
    assert not ((a.start <= as_of) & (as_of < a.end)).any()
    assert book.dates[0] == pd.Timestamp("2024-01-01")
    matrix = book.matrix("2000-01-01")
    assert matrix.shape == (3, 3)
    assert matrix.client_product.nnz == 0


def test_everything_rejected_raises() -> None:
    """Check that collecting every contract row away is an error, not an empty Book."""
    c = frame(client_id=[None], product_id=["P"], start_date=["2024-01-01"])
    with pytest.raises(SchemaError, match="no row is left"):
        Book.from_frames(c, errors="collect")


# ---------------------------------------------------------------- other inputs


def test_pyarrow_and_polars_inputs(tiny_contracts: pd.DataFrame) -> None:
    """Check that pyarrow Tables and polars DataFrames give the same Book as pandas."""
    pl = pytest.importorskip("polars")
    expected = Book.from_frames(tiny_contracts)
    for other in (pa.Table.from_pandas(tiny_contracts), pl.from_pandas(tiny_contracts)):
        book = Book.from_frames(other)
        assert book.client_ids == expected.client_ids
        np.testing.assert_array_equal(book.contract_arrays.end, expected.contract_arrays.end)


def test_wrong_parameters(tiny_contracts: pd.DataFrame) -> None:
    """Check parameter errors in scikit-learn's form."""
    with pytest.raises(ValueError, match=r"The 'errors' parameter of Book.from_frames must be"):
        Book.from_frames(tiny_contracts, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"The 'contracts' parameter of Book.from_frames must be"):
        Book.from_frames([1, 2])
    with pytest.raises(ValueError, match=r"The 'lookback' parameter .* Got '-5D' instead."):
        Book.from_transactions(tiny_contracts, lookback="-5D")


def test_read_csv_and_parquet(tmp_path: Path) -> None:
    """Check that CSV ids are read as text (leading zeros kept) and Parquet keeps its types."""
    c = frame(client_id=["007", "010"], product_id=["01", "2"], start_date=["2024-01-01"] * 2)
    c.to_csv(tmp_path / "c.csv", index=False)
    book = Book.read(tmp_path / "c.csv")
    assert book.client_ids.external.tolist() == ["007", "010"]
    ints = frame(
        client_id=[7, 10], product_id=[1, 2], start_date=pd.to_datetime(["2024-01-01"] * 2)
    )
    ints.to_parquet(tmp_path / "c.parquet")
    assert Book.read(tmp_path / "c.parquet").client_ids.external.tolist() == [7, 10]
    with pytest.raises(ValueError, match="reads CSV"):
        Book.read(tmp_path / "c.xlsx")


def test_from_transactions() -> None:
    """Check that purchase lines become contracts ending one look-back later."""
    lines = frame(
        client_id=[7, 7, 8],
        product_id=["A", "A", "B"],
        timestamp=["2024-01-01", "2024-01-01", "2024-02-01"],
        amount=[10.0, 10.0, None],
        invoice=["I1", "I1", "I2"],
    )
    book = Book.from_transactions(lines, lookback="30D")
    a = book.contract_arrays
    assert len(a) == 3  # identical lines are two purchases
    assert (a.end - a.start).tolist() == [30 * DAY] * 3
    assert a.value.tolist()[:2] == [10.0, 10.0]
    assert np.isnan(a.value[2])
    assert a.quantity.tolist() == [1.0, 1.0, 1.0]
    assert book.lookback == pd.Timedelta("30D")
    assert book.contracts["invoice"].tolist() == ["I1", "I1", "I2"]
    assert "1 transaction line repeat" in book.validation_report()
    ever = Book.from_transactions(lines, lookback="ever")
    assert (ever.contract_arrays.end == OPEN_END).all()
    assert ever.lookback is None


def test_transactions_errors_name_the_table() -> None:
    """Check that errors in purchase lines name the transactions table and its columns."""
    lines = frame(client_id=[7], product_id=["A"], timestamp=["yesterday"])
    with pytest.raises(SchemaError, match=r"transactions: 'timestamp' is not a date in 1 row"):
        Book.from_transactions(lines)


# ---------------------------------------------------------------- immutability and reports


def test_book_is_immutable(tiny_contracts: pd.DataFrame) -> None:
    """Check that the Book and its arrays cannot be changed and views are copies."""
    book = Book.from_frames(tiny_contracts)
    with pytest.raises(dataclasses.FrozenInstanceError):
        book.rejected = pd.DataFrame()  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        book.contract_arrays.client[0] = 5
    view = book.contracts
    view.loc[0, "client_id"] = "X"
    assert book.contracts["client_id"].iloc[0] == "C1"
    products = book.products
    products.loc[0, "family"] = "X"
    assert book.product_table["family"].iloc[0] == "P1"


def test_book_does_not_share_the_callers_memory() -> None:
    """Check that changing the caller's frame after the build leaves the Book unchanged."""
    start = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"]))
    c = frame(client_id=[1, 2], product_id=[7, 7], start_date=start, value=[1.0, 2.0])
    book = Book.from_frames(c)
    c.loc[0, "start_date"] = pd.Timestamp("2030-01-01")
    c.loc[0, "value"] = 99.0
    assert book.contract_arrays.start[0] == pd.Timestamp("2024-01-01").value
    assert book.contract_arrays.value[0] == 1.0


def test_summary_report_dates_repr(tiny_contracts: pd.DataFrame) -> None:
    """Check summary, validation report, dates and repr on a tiny book."""
    events = frame(client_id=["C1"], date=["2024-06-01"], type=["contact"])
    book = Book.from_frames(tiny_contracts, events=events)
    s = book.summary()
    assert s.columns.tolist() == [
        "table",
        "rows",
        "rejected",
        "clients",
        "products",
        "first_date",
        "last_date",
    ]
    assert s.iloc[0][["table", "rows", "clients", "products"]].tolist() == ["contracts", 4, 3, 3]
    assert book.dates == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-06-01"))
    assert repr(book) == (
        "Book(contracts=4, clients=3, products=3, events=1, rejected=0, "
        "dates=2024-01-01..2024-06-01)"
    )
    report = book.validation_report()
    assert report.startswith("Book: 4 contract rows, 3 clients, 3 products, 1 event;")
    assert "Nothing rejected." in report


# ---------------------------------------------------------------- properties

BOOK_CONTRACTS = contract_frames(
    clients=ID_TEXT,
    products=st.sampled_from(["P1", "P2", "007", "2"]),
    max_rows=12,
    day0=pd.Timestamp("2022-01-01"),
    lengths=st.integers(0, 400),
    amounts=False,
    unique=True,
)


def _rows(book: Book) -> list[tuple[object, ...]]:
    a = book.contract_arrays
    c = book.client_ids.to_external(a.client).tolist()
    p = book.product_ids.to_external(a.product).tolist()
    return sorted(zip(c, p, a.start.tolist(), a.end.tolist(), strict=True))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=BOOK_CONTRACTS, seed=st.integers(0, 2**16))
def test_shuffling_rows_changes_nothing(df: pd.DataFrame, seed: int) -> None:
    """Check that shuffling input rows gives the same ids and the same contracts."""
    book = Book.from_frames(df)
    shuffled = df.sample(frac=1.0, random_state=seed)
    other = Book.from_frames(shuffled)
    assert set(book.client_ids.external) == set(other.client_ids.external)
    assert set(book.product_ids.external) == set(other.product_ids.external)
    assert _rows(book) == _rows(other)


@settings(max_examples=40, deadline=None)
@given(df=BOOK_CONTRACTS)
def test_input_frames_never_mutated(df: pd.DataFrame) -> None:
    """Check that building a Book leaves the caller's frames unchanged."""
    clients = frame(client_id=df["client_id"].unique(), satisfaction=5)
    before, clients_before = copy.deepcopy(df), copy.deepcopy(clients)
    Book.from_frames(df, clients=clients)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(clients, clients_before)


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(
        st.one_of(st.integers(-(2**62), 2**62)),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    texts=st.lists(
        st.text(alphabet="0 AZ\u00e9", min_size=1, max_size=4).filter(lambda s: s.strip() != ""),
        min_size=1,
        max_size=8,
        unique=True,
    ),
)
def test_ids_round_trip(ids: list[int], texts: list[str]) -> None:
    """Check that integer ids come back exactly (2**60) and text ids in their one spelling.

    Text ids keep leading zeros and inner blanks; blanks around them are trimmed (with a
    DataWarning), so ``'A '`` and ``'A'`` are one id.
    """
    n = min(len(ids), len(texts))
    c = frame(client_id=ids[:n], product_id=texts[:n], start_date=["2024-01-01"] * n)
    book = quiet_build(c)
    assert book.client_ids.external.tolist() == ids[:n]
    assert book.product_ids.external.tolist() == list(dict.fromkeys(map(spell_id, texts[:n])))
    assert book.contracts["client_id"].tolist() == ids[:n]


def test_catalog_written_with_to_csv_reads_back(tmp_path: Path) -> None:
    """Check that list columns written by pandas' to_csv (tuples as text) read back as tuples."""
    products = pd.DataFrame(
        {
            "product_id": ["A", "B"],
            "requires": [(), ("A",)],
            "segments": [None, ("mid", "enterprise")],
        }
    )
    contracts = pd.DataFrame(
        {"client_id": ["C1"], "product_id": ["A"], "start_date": ["2024-01-01"]}
    )
    products.to_csv(tmp_path / "products.csv", index=False)
    contracts.to_csv(tmp_path / "contracts.csv", index=False)
    book = Book.read(contracts=tmp_path / "contracts.csv", products=tmp_path / "products.csv")
    table = book.product_table
    assert table["requires"].tolist() == [(), ("A",)]
    assert table["segments"].tolist() == [None, ("mid", "enterprise")]


def test_a_book_as_products_lends_its_catalogue_unchanged() -> None:
    """Check that a Book given as products builds what its catalogue frame builds."""
    import crosssell as cs

    book = cs.datasets.demo()
    mine = book.contracts[book.contracts["client_id"].isin(["C0001", "C0002"])]
    events = book.events[book.events["client_id"].isin(["C0001", "C0002"])]
    by_frame = Book.from_frames(contracts=mine, products=book.products, events=events)
    by_book = Book.from_frames(contracts=mine, products=book, events=events)
    assert by_book.product_ids.external.equals(by_frame.product_ids.external)
    pd.testing.assert_frame_equal(by_book.product_table, by_frame.product_table)
    pd.testing.assert_frame_equal(by_book.contracts, by_frame.contracts)
    pd.testing.assert_frame_equal(by_book.events, by_frame.events)
    assert dict(by_book.info.given) == dict(by_frame.info.given)


def test_a_book_as_products_still_rejects_unknown_products() -> None:
    """Check that a contract for a product outside the lent catalogue is named and refused."""
    import crosssell as cs

    book = cs.datasets.demo()
    bad = pd.DataFrame({"client_id": ["C1"], "product_id": ["NOPE"], "start_date": ["2025-01-01"]})
    with pytest.raises(SchemaError, match="not in the products table"):
        Book.from_frames(contracts=bad, products=book)


# ------------------------------------------------------------------ availability window


def _launches() -> tuple[pd.DataFrame, pd.DataFrame]:
    contracts = frame(
        client_id=["C1", "C2", "C2"],
        product_id=["P1", "P1", "P2"],
        start_date=["2024-01-01", "2024-02-01", "2024-05-01"],
    )
    products = frame(product_id=["P1", "P2", "P3"])
    return contracts, products


def test_availability_defaults_to_the_first_contract_start() -> None:
    """Check that a product is available from its first contract start, with no end."""
    contracts, products = _launches()
    book = Book.from_frames(contracts, products=products)
    table = book.products
    assert table["available_from"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-05-01"),
        pd.NaT,  # never sold: nothing says when it came out, so it is not held back
    ]
    assert table["available_to"].isna().all()
    assert book.available("2024-03-01").tolist() == [True, False, True]
    assert book.available("2024-05-01").tolist() == [True, True, True]


def test_availability_of_purchase_lines_starts_at_the_first_sale() -> None:
    """Check that a Book of purchase lines dates each product from its first sale."""
    lines = frame(
        client_id=[7, 7, 8],
        product_id=["A", "B", "B"],
        timestamp=["2024-03-05 10:00", "2024-01-02 09:00", "2023-12-30 08:00"],
    )
    book = Book.from_transactions(lines, lookback="90D")
    assert book.products["available_from"].tolist() == [
        pd.Timestamp("2024-03-05 10:00"),
        pd.Timestamp("2023-12-30 08:00"),
    ]
    assert book.available("2024-01-01").tolist() == [False, True]


def test_given_window_wins_and_ends_on_withdrawal() -> None:
    """Check that given dates replace the default and that a product is gone on available_to."""
    contracts, _ = _launches()
    products = frame(
        product_id=["P1", "P2", "P3"],
        launch=["2023-06-01", None, "2024-09-01"],
        available_to=["2024-04-01", None, None],
    )
    book = Book.from_frames(contracts, products=products, schema=Schema(available_from="launch"))
    assert book.products["available_from"].tolist() == [
        pd.Timestamp("2023-06-01"),
        pd.Timestamp("2024-05-01"),  # left blank: the first contract start
        pd.Timestamp("2024-09-01"),
    ]
    assert book.available("2024-03-31").tolist() == [True, False, False]
    assert book.available("2024-04-01").tolist() == [False, False, False]
    assert book.available(pd.Timestamp("2024-10-01")).tolist() == [False, True, True]


def test_available_to_before_available_from_is_refused() -> None:
    """Check that a backwards window raises a SchemaError that names the rows and the fix."""
    contracts, _ = _launches()
    products = frame(
        product_id=["P1", "P2"],
        available_from=["2024-01-01", "2024-06-01"],
        available_to=["2025-01-01", "2024-03-01"],
    )
    with pytest.raises(SchemaError) as info:
        Book.from_frames(contracts, products=products)
    assert str(info.value) == (
        "products: 'available_to' is before 'available_from' in 1 row (showing 1): row 1 "
        "product_id=P2 available_from=2024-06-01 available_to=2024-03-01. "
        'Fix the dates or pass errors="collect".'
    )
    assert info.value.table == "products"
    assert info.value.column == "available_to"


def test_bad_availability_dates_are_collected() -> None:
    """Check that unreadable and backwards windows are set aside under errors="collect"."""
    contracts, _ = _launches()
    products = frame(
        product_id=["P1", "P2", "P3", "P4"],
        available_from=[None, None, "2024-06-01", "soon"],
        available_to=[None, None, "2024-03-01", None],
    )
    with pytest.warns(DataWarning, match="set aside"):
        book = Book.from_frames(contracts, products=products, errors="collect")
    rejected = book.rejected.sort_values("row")
    assert rejected["table"].tolist() == ["products", "products"]
    assert rejected["row"].tolist() == [2, 3]
    assert rejected["rule"].tolist() == ["end_before_start", "bad_date"]
    assert book.product_ids.external.tolist() == ["P1", "P2"]


def test_available_rejects_a_bad_date() -> None:
    """Check that Book.available names its parameter when the date cannot be read."""
    contracts, _ = _launches()
    book = Book.from_frames(contracts)
    with pytest.raises(ValueError, match=r"^The 'as_of' parameter of Book.available must be"):
        book.available("not a date")
