"""The feature context of a Book without its events, given back what was taken from them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import crosssell as cs
from crosssell.scorers._features import build_context, event_state, with_event_state


def _same(a: object, b: object) -> bool:
    if sp.issparse(a) or sp.issparse(b):
        return sp.issparse(a) and sp.issparse(b) and (a != b).nnz == 0  # type: ignore[union-attr]
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, pd.Index):
        return isinstance(b, pd.Index) and a.equals(b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


@pytest.mark.parametrize("as_of", ["2024-06-30", "2025-06-30"])
def test_event_state_covers_every_array_read_from_events(as_of: str) -> None:
    """Check that the arrays a scoring-only save keeps are all that events change.

    A feature added to the context from events but not to the saved arrays would make a
    scoring-only model score differently from the fitted one; this compares every field.
    """
    book = cs.datasets.demo()
    full = build_context(book, as_of, "90D")
    bare_book = dataclasses.replace(book, event_table=book.event_table.iloc[:0])
    bare = build_context(bare_book, as_of, "90D")
    again = with_event_state(bare, event_state(full))
    skip = {"book", "_keys", "_family_labels"}
    differ = [
        f.name
        for f in dataclasses.fields(full)
        if f.name not in skip and not _same(getattr(again, f.name), getattr(full, f.name))
    ]
    assert differ == []
    # and events do change the context: without the saved arrays the bare one differs
    assert any(
        not _same(getattr(bare, f.name), getattr(full, f.name))
        for f in dataclasses.fields(full)
        if f.name not in skip
    )
