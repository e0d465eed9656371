"""Tests of the true take-up chances the synthetic generator emits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.datasets import demo_frames, synthetic_frames, synthetic_take_up
from crosssell.datasets._synthetic import DEMO_SETTINGS, TakeUp, _simulate


def test_recording_the_chances_leaves_the_demo_book_unchanged() -> None:
    """Check that the simulation run with its chances recorded gives the shipped demo book."""
    frames, truth = _simulate("test", dict(DEMO_SETTINGS), truth=True)
    shipped = demo_frames()
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, shipped[name], check_dtype=False)
    assert truth is not None
    assert len(truth.monthly) > 0


def test_chances_account_for_what_was_taken() -> None:
    """Check that every addition had a chance, and the chances add up to the count taken."""
    frames = synthetic_frames(600, seed=5)
    truth = synthetic_take_up(600, seed=5)
    book = cs.Book.from_frames(**frames)
    expected, observed = 0.0, 0
    for cutoff in ("2023-06-30", "2024-06-30", "2024-12-31"):
        adds = cs.evaluation.additions(book, cutoff, "90D")
        chances = truth.within(cutoff, "90D")
        keyed = chances.set_index(["client_id", "product_id"])["probability"]
        hit = keyed.reindex(pd.MultiIndex.from_frame(adds[["client_id", "product_id"]]))
        assert hit.notna().all()
        assert (hit > 0).all()
        expected += float(chances["probability"].sum())
        observed += len(adds)
    # a sum of independent-ish Bernoulli draws: within four standard deviations
    assert abs(observed - expected) < 4 * np.sqrt(expected)


def test_within_is_one_minus_the_chance_of_missing_every_month() -> None:
    """Check the window arithmetic on two whole months and a partial one."""
    monthly = pd.DataFrame(
        {
            "client_id": ["C1"] * 3,
            "product_id": ["P"] * 3,
            "month": pd.to_datetime(["2024-07-01", "2024-08-01", "2024-09-01"]),
            "probability": [0.1, 0.2, 0.5],
        }
    )
    truth = TakeUp(monthly=monthly)
    # (2024-06-30, 2024-09-14]: July and August whole, 14 of the 28 start days of September
    got = truth.within("2024-06-30", "76D")["probability"].iloc[0]
    assert got == pytest.approx(1 - 0.9 * 0.8 * 0.75)
