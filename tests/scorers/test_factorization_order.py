"""ALS and BPR give the same offers whatever the order of the input tables' rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.scorers import ALS, BPR

FRAMES = cs.datasets.demo_frames()


def _offers(seed: int | None, scorer: cs.scorers.Scorer) -> pd.DataFrame:
    frames = {
        name: frame if seed is None else frame.sample(frac=1.0, random_state=seed)
        for name, frame in FRAMES.items()
    }
    book = cs.Book.from_frames(**{k: v.reset_index(drop=True) for k, v in frames.items()})
    offers = cs.Recommender(k=3, scorer=scorer, policy=None).fit(book, "2025-06-30")
    out = offers.recommend(explain=False)
    return out.sort_values(["client_id", "rank"]).reset_index(drop=True)


@pytest.mark.parametrize(
    "scorer",
    [
        ALS(factors=8, iterations=3, random_state=0, num_threads=1),
        BPR(factors=8, iterations=5, random_state=0, num_threads=1),
    ],
    ids=lambda s: type(s).__name__,
)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_row_order_changes_no_offer(scorer: cs.scorers.Scorer, seed: int) -> None:
    """Check that shuffling every table's rows leaves the offers unchanged (same seed)."""
    base = _offers(None, scorer)
    shuffled = _offers(seed, scorer)
    pd.testing.assert_frame_equal(
        base[["client_id", "product_id", "rank"]], shuffled[["client_id", "product_id", "rank"]]
    )
    pd.testing.assert_series_equal(base["score"], shuffled["score"], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "scorer",
    [
        ALS(factors=8, iterations=3, random_state=0, num_threads=1),
        BPR(factors=8, iterations=5, random_state=0, num_threads=1),
    ],
    ids=lambda s: type(s).__name__,
)
def test_sorted_ids_fit_in_place_alike_and_leave_the_matrix_alone(
    scorer: cs.scorers.Scorer,
) -> None:
    """Check that ids already sorted (no reordering copy) give the offers of a shuffled book.

    That path hands implicit the Book's own matrix, which must come back untouched.
    """
    from crosssell.scorers.factorization import _id_order, _is_identity

    frames = {name: frame.copy() for name, frame in FRAMES.items()}
    frames["clients"] = frames["clients"].sort_values("client_id")
    frames["products"] = frames["products"].sort_values("product_id")
    book = cs.Book.from_frames(**{k: v.reset_index(drop=True) for k, v in frames.items()})
    matrix = book.matrix("2025-06-30")
    x = matrix.client_product
    assert all(_is_identity(order) for order in _id_order(matrix, x))
    before = [x.data.copy(), x.indices.copy(), x.indptr.copy()]
    rec = cs.Recommender(k=3, scorer=scorer, policy=None).fit(book, "2025-06-30")
    x = rec.scorer_.client_product_
    assert all(
        np.array_equal(a, b) for a, b in zip(before, [x.data, x.indices, x.indptr], strict=True)
    )
    got = rec.recommend(explain=False).sort_values(["client_id", "rank"]).reset_index(drop=True)
    want = _offers(7, scorer)
    pd.testing.assert_frame_equal(
        got[["client_id", "product_id", "rank"]], want[["client_id", "product_id", "rank"]]
    )
    pd.testing.assert_series_equal(got["score"], want["score"], atol=1e-6, rtol=0)
