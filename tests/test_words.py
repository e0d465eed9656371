"""Tests of text columns joined from a table of words (reasons, ids, offer types)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell._words import WordTable
from crosssell.ids import IdMap

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=80, deadline=None)
@given(
    texts=st.lists(_TEXT, min_size=1, max_size=12),
    rows=st.lists(st.lists(st.integers(-1, 40), max_size=9), max_size=12),
    large=st.booleans(),
)
def test_joined_texts_equal_python_joins(texts: list[str], rows: list[list[int]], large) -> None:
    """Check a join against Python's, for any words (empty, multi-byte, 8-byte multiples)."""
    width = max((len(r) for r in rows), default=0) + 1
    words = np.full((len(rows), width), -1, dtype=np.int64)
    want = []
    for i, row in enumerate(rows):
        kept = []
        for t, raw in enumerate(row):
            x = raw % len(texts) if raw >= 0 else -1
            words[i, t] = x
            if x < 0:
                break
            kept.append(texts[x])
        want.append("".join(kept))
    got = WordTable.of(texts).join(words, large=large)
    assert got.to_pylist() == want
    assert got.type == (pa.large_string() if large else pa.string())
    got.validate(full=True)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=20), start=st.integers(0, 5))
def test_a_table_read_from_arrow_equals_one_read_from_python(texts: list[str], start) -> None:
    """Check that an Arrow array (sliced, chunked, large or not) gives the same table."""
    start = min(start, len(texts) - 1)
    mine = WordTable.of(texts[start:])
    for arr in (
        pa.array(texts)[start:],
        pa.array(texts, type=pa.large_string())[start:],
        pa.chunked_array(
            [
                pa.array(texts[start : start + 1], pa.string()),
                pa.array(texts[start + 1 :], pa.string()),
            ]
        ),
    ):
        other = WordTable.of(arr)
        np.testing.assert_array_equal(other.words, mine.words)
        np.testing.assert_array_equal(other.starts, mine.starts)
        np.testing.assert_array_equal(other.offsets, mine.offsets)
    index = np.arange(len(texts) - start)[::-1]
    assert mine.take(index).to_pylist() == [texts[start:][i] for i in index]


def test_bad_words_are_refused() -> None:
    """Check the errors: a word number past the table, a negative one to take, nulls."""
    table = WordTable.of(["a", "b"])
    with pytest.raises(ValueError, match="below 2"):
        table.join(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="0 or more"):
        table.take(np.array([1, -1]))
    with pytest.raises(ValueError, match="no nulls; got 1"):
        WordTable.of(pa.array(["a", None]))
    with pytest.raises(TypeError, match="must be strings"):
        WordTable.of(pa.array([1, 2]))


@pytest.mark.parametrize(
    "ids",
    [
        pd.Index(["C1", "C22", "Zoë", "C0000001"]),
        pd.Index([10, 3, 7, 99]),
        pd.Index(["a", "bb", "c", "d"], dtype=object),
    ],
)
def test_id_columns_equal_to_external(ids: pd.Index) -> None:
    """Check that an id column joined from the table equals pandas' take, dtype included."""
    m = IdMap(ids)
    index = np.array([3, 0, 0, 2, 1, 3])
    got = pd.Series(m._external_array(index))
    want = pd.Series(m.to_external(index))
    pd.testing.assert_series_equal(got, want)
