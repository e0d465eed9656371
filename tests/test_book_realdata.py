"""Tests of Book.from_transactions on the real Online Retail II data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from crosssell import Book


def data_dir() -> Path:
    override = os.environ.get("CROSSSELL_DATA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail_ii"


@pytest.fixture(scope="module")
def clean_lines() -> pd.DataFrame:
    path = data_dir() / "transactions.parquet"
    if not path.exists():
        pytest.skip(f"Online Retail II data not found at {path}")
    lines = pd.read_parquet(path)
    keep = (
        lines["client_id"].notna()
        & ~lines["is_cancellation"]
        & (lines["quantity"] > 0)
        & ~lines["is_non_product"]
    )
    return lines[keep].reset_index(drop=True)


@pytest.mark.realdata
def test_online_retail_counts(clean_lines: pd.DataFrame) -> None:
    """Check that the clean Online Retail II lines give the README's counts."""
    book = Book.from_transactions(clean_lines, lookback="365D")
    assert len(book.contract_arrays) == 788_267
    assert len(book.client_ids) == 5_853
    assert len(book.product_ids) == 4_621
    assert book.dates == (pd.Timestamp("2009-12-01 07:45"), pd.Timestamp("2011-12-09 12:50"))
    assert book.rejected.empty
    row = book.summary().iloc[0]
    assert (row["table"], row["rows"], row["clients"], row["products"]) == (
        "transactions",
        788_267,
        5_853,
        4_621,
    )
    # Client ids are stored as integers and stay integers.
    assert book.client_ids.dtype == "int64"
    # 11,610 exact repeats are genuine repeated purchase lines and stay separate.
    assert "11,610 transaction lines repeat an earlier line" in book.validation_report()
