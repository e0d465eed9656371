"""ALS and BPR give the same offers whatever the order of the input tables' rows."""

from __future__ import annotations

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
