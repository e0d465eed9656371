"""Tests of arbitration: priority, exactly k, diversity, levers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crosssell import Book
from crosssell.arbitration import ScoreScale, diverse_top_k, lever_weights


def test_score_scale_maps_into_unit_interval() -> None:
    """Check that uncalibrated propensity is the score over the scale, clipped into [0, 1]."""
    s = ScoreScale(scale=2.0).predict(np.array([-1.0, 0.0, 1.0, 4.0, np.nan], np.float32))
    assert s.tolist() == [0.0, 0.0, 0.5, 1.0, 0.0]


def test_diversity_caps_offers_per_family() -> None:
    """Check that max_per_family keeps at most that many offers of one family, still k in all."""
    pr = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]], np.float32)
    fam = np.array([0, 0, 0, 1, 2])
    idx, vals = diverse_top_k(pr, 3, family=fam, max_per_family=1)
    assert idx.tolist() == [[0, 3, 4]]
    assert vals[0].tolist() == pytest.approx([0.9, 0.6, 0.5])


def test_diversity_returns_fewer_when_families_run_out() -> None:
    """Check that a row with too few families gets fewer offers (padded with -1), no repeats."""
    pr = np.array([[0.9, 0.8, -np.inf]], np.float32)
    idx, _ = diverse_top_k(pr, 3, family=np.array([0, 0, 1]), max_per_family=1)
    assert idx.tolist() == [[0, -1, -1]]


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 12)),
        elements=st.sampled_from([0.0, 0.5, 1.0, -np.inf]),
    ),
    st.integers(1, 5),
    st.integers(1, 3),
)
def test_diverse_top_k_properties(pr: np.ndarray, k: int, cap: int) -> None:
    """Check that diverse top-k never picks blocked entries, repeats, or breaks the cap."""
    fam = np.arange(pr.shape[1]) % 3
    idx, vals = diverse_top_k(pr, k, family=fam, max_per_family=cap)
    for r in range(pr.shape[0]):
        chosen = idx[r][idx[r] >= 0]
        assert len(set(chosen.tolist())) == chosen.size
        assert np.isfinite(pr[r, chosen]).all()
        assert (np.bincount(fam[chosen], minlength=3) <= cap).all()
        allowed = np.isfinite(pr[r])
        # exactly k when enough eligible candidates exist within the cap
        possible = sum(min(cap, int((allowed & (fam == f)).sum())) for f in range(3))
        assert chosen.size == min(k, possible)
        assert list(vals[r][: chosen.size]) == sorted(vals[r][: chosen.size], reverse=True)


def test_levers_by_family_and_product() -> None:
    """Check that a product lever overrides its family's and unknown keys are refused."""
    products = pd.DataFrame({"product_id": ["A1", "A2", "B1"], "family": ["A", "A", "B"]})
    contracts = pd.DataFrame({"client_id": [1], "product_id": ["A1"], "start_date": ["2024-01-01"]})
    book = Book.from_frames(contracts=contracts, products=products)
    assert lever_weights({"B": 0.5, "A1": 2.0}, book).tolist() == [2.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="neither a product id nor a family: 'Z'"):
        lever_weights({"Z": 1.0}, book)
    with pytest.raises(ValueError, match="finite weight >= 0"):
        lever_weights({"A": -1.0}, book)
