"""Tests of crosssell.evaluation.calibration: calibrators, calibration error and table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import (
    IsotonicCalibrator,
    PlattCalibrator,
    calibrate,
    calibration_error,
    calibration_table,
    calibrator_from_dict,
)
from crosssell.exceptions import ArtifactError, NotFittedError
from crosssell.recommender import Recommender
from crosssell.scorers import Popularity


def _synthetic(n: int, seed: int, link: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-2.0, 2.0, n)
    truth = (
        expit(1.5 * scores - 0.5) if link == "logistic" else np.clip((scores + 2) / 4, 0, 1) ** 2
    )
    return scores, (rng.uniform(size=n) < truth).astype(np.int64)


def test_isotonic_hand_example() -> None:
    """Check that isotonic pooling averages the violating middle pair."""
    # outcomes 0, 1, 0, 1 at scores 1..4: the pair (1, 0) at scores 2, 3 is pooled to 0.5
    cal = IsotonicCalibrator().fit([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1])
    assert cal.predict([1.0, 2.0, 2.5, 3.0, 4.0]).tolist() == [0.0, 0.5, 0.5, 0.5, 1.0]
    # beyond the fitted range the end values hold
    assert cal.predict([-10.0, 10.0]).tolist() == [0.0, 1.0]


def test_isotonic_ties_are_averaged() -> None:
    """Check that equal scores share one rate (the mean of their outcomes)."""
    cal = IsotonicCalibrator().fit([1.0, 1.0, 1.0, 1.0], [1, 0, 0, 0])
    assert cal.predict([0.0, 1.0, 2.0]).tolist() == [0.25, 0.25, 0.25]


def test_platt_recovers_a_logistic_link() -> None:
    """Check that Platt scaling finds the slope and intercept that generated the data."""
    scores, outcomes = _synthetic(20_000, 0, "logistic")
    cal = PlattCalibrator().fit(scores, outcomes)
    assert cal.a_ == pytest.approx(1.5, abs=0.1)
    assert cal.b_ == pytest.approx(-0.5, abs=0.1)


def test_platt_slope_never_negative() -> None:
    """Check that scores running against the outcomes give a flat mapping at the base rate."""
    cal = PlattCalibrator().fit([0.0, 1.0, 2.0, 3.0], [1, 1, 0, 0])
    assert cal.a_ == 0.0
    p = cal.predict([0.0, 3.0])
    assert p[0] == pytest.approx(p[1])
    assert p[0] == pytest.approx(0.5)


@pytest.mark.parametrize("link", ["logistic", "square"])
@pytest.mark.parametrize("calibrator", [IsotonicCalibrator, PlattCalibrator])
def test_calibrated_data_has_small_error(link: str, calibrator: type) -> None:
    """Check that a calibrator fitted on one half is well calibrated on the other half."""
    scores, outcomes = _synthetic(20_000, 1, link)
    fitted = calibrator().fit(scores[:10_000], outcomes[:10_000])
    propensity = fitted.predict(scores[10_000:])
    limit = 0.03 if calibrator is IsotonicCalibrator or link == "logistic" else 0.06
    assert calibration_error(propensity, outcomes[10_000:]) < limit
    # raw uniform scores mapped into [0, 1] are badly calibrated under the square link
    assert calibration_error((scores[10_000:] + 2) / 4, outcomes[10_000:]) > limit


@pytest.mark.parametrize("calibrator", [IsotonicCalibrator, PlattCalibrator])
def test_round_trip_through_json(calibrator: type) -> None:
    """Check that to_dict is plain JSON and from_dict predicts exactly as before."""
    scores, outcomes = _synthetic(2_000, 2, "logistic")
    fitted = calibrator().fit(scores, outcomes)
    payload = json.loads(json.dumps(fitted.to_dict()))
    again = calibrator_from_dict(payload)
    assert type(again) is calibrator
    grid = np.linspace(-3, 3, 101)
    np.testing.assert_array_equal(again.predict(grid), fitted.predict(grid))


def test_from_dict_refuses_corrupt_payloads() -> None:
    """Check that a tampered or foreign payload raises ArtifactError, not a bad model."""
    with pytest.raises(ArtifactError, match="unknown calibrator method 'pickle'"):
        calibrator_from_dict({"method": "pickle"})
    with pytest.raises(ArtifactError, match="'y' must be non-decreasing"):
        IsotonicCalibrator.from_dict({"method": "isotonic", "x": [0, 1], "y": [0.9, 0.1]})
    with pytest.raises(ArtifactError, match="equal length"):
        IsotonicCalibrator.from_dict({"method": "isotonic", "x": [0, 1], "y": [0.1]})
    with pytest.raises(ArtifactError, match="'a' must be a finite number >= 0"):
        PlattCalibrator.from_dict({"method": "platt", "a": -1.0, "b": 0.0})
    with pytest.raises(ArtifactError, match="expected a saved calibrator with method='platt'"):
        PlattCalibrator.from_dict({"method": "isotonic", "x": [0], "y": [0]})


@pytest.mark.parametrize("calibrator", [IsotonicCalibrator, PlattCalibrator])
def test_not_fitted(calibrator: type) -> None:
    """Check that predicting before fit says what to do."""
    with pytest.raises(
        NotFittedError,
        match=rf"^This {calibrator.__name__} instance is not fitted yet\. "
        r"Call 'fit' before using it\.$",
    ):
        calibrator().predict([0.5])


def test_fit_input_errors() -> None:
    """Check that mismatched, empty or non-binary inputs are refused with counts."""
    with pytest.raises(ValueError, match="same length; got 2 scores and 1 outcomes"):
        IsotonicCalibrator().fit([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="no scores to fit on"):
        PlattCalibrator().fit([], [])
    with pytest.raises(
        ValueError,
        match=r"'outcomes' must be 0/1 or boolean; 1 are not \(showing 1\): position 1=2.0",
    ):
        IsotonicCalibrator().fit([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match=r"'scores' must be finite; 1 are not"):
        IsotonicCalibrator().fit([0.1, np.nan], [0, 1])


@settings(max_examples=50, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_nan=False), st.booleans()), min_size=1, max_size=60
    ),
    probe=st.lists(st.floats(-2e3, 2e3, allow_nan=False), min_size=2, max_size=20),
)
def test_calibrators_are_monotone_and_bounded(
    pairs: list[tuple[float, bool]], probe: list[float]
) -> None:
    """Check that both calibrators map any scores monotonically into [0, 1]."""
    scores = np.array([s for s, _ in pairs])
    outcomes = np.array([o for _, o in pairs])
    grid = np.sort(np.array(probe))
    for calibrator in (IsotonicCalibrator(), PlattCalibrator()):
        p = calibrator.fit(scores, outcomes).predict(grid)
        assert ((p >= 0.0) & (p <= 1.0)).all()
        assert (np.diff(p) >= -1e-12).all()


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(-20, 20), st.booleans(), st.integers(1, 4)), min_size=1, max_size=40
    )
)
def test_isotonic_weight_is_repetition(pairs: list[tuple[int, bool, int]]) -> None:
    """Check that a pair of weight w calibrates as that pair repeated w times."""
    scores = np.array([float(s) for s, _, _ in pairs])
    outcomes = np.array([o for _, o, _ in pairs])
    weights = np.array([float(w) for _, _, w in pairs])
    weighted = IsotonicCalibrator().fit(scores, outcomes, sample_weight=weights)
    repeat = np.repeat(np.arange(len(pairs)), weights.astype(np.int64))
    repeated = IsotonicCalibrator().fit(scores[repeat], outcomes[repeat])
    grid = np.arange(-21.0, 22.0, 0.5)
    np.testing.assert_allclose(weighted.predict(grid), repeated.predict(grid), atol=1e-12)


def test_isotonic_weights_are_checked() -> None:
    """Check that a weight per score, finite and positive, is required."""
    with pytest.raises(ValueError, match="one finite, positive weight per score"):
        IsotonicCalibrator().fit([1.0, 2.0], [0, 1], sample_weight=[1.0])
    with pytest.raises(ValueError, match="one finite, positive weight per score"):
        IsotonicCalibrator().fit([1.0, 2.0], [0, 1], sample_weight=[1.0, 0.0])


def test_calibration_error_hand_example() -> None:
    """Check the expected calibration error on two bins worked out by hand."""
    # bin [0.2, 0.3): mean propensity 0.2, observed 0/2 -> gap 0.2 (weight 2/4)
    # bin [0.8, 0.9): mean propensity 0.8, observed 1/2 -> gap 0.3 (weight 2/4)
    assert calibration_error([0.2, 0.2, 0.8, 0.8], [0, 0, 1, 0]) == pytest.approx(0.25)
    assert calibration_error([1.0, 0.0], [1, 0]) == 0.0


def test_calibration_table_hand_example() -> None:
    """Check the calibration curve table, bins and Wilson interval bounds."""
    table = calibration_table([0.1, 0.1, 0.9, 0.9, 0.95], [0, 1, 1, 1, 1], n_bins=2)
    assert table["bin"].tolist() == [0, 1]
    assert table["n"].tolist() == [2, 3]
    assert table["observed"].tolist() == [0.5, 1.0]
    assert table[Columns.propensity].round(4).tolist() == [0.1, 0.9167]
    assert ((table["ci_low"] <= table["observed"]) & (table["observed"] <= table["ci_high"])).all()
    quantile = calibration_table(
        np.linspace(0, 1, 100), np.arange(100) % 2, n_bins=4, strategy="quantile"
    )
    assert quantile["n"].tolist() == [25, 25, 25, 25]


def test_calibration_table_errors() -> None:
    """Check that propensities outside [0, 1] and bad options are refused."""
    with pytest.raises(ValueError, match=r"'propensity' must lie in \[0, 1\]; 1 values do not"):
        calibration_table([0.5, 1.5], [0, 1])
    with pytest.raises(ValueError, match="The 'strategy' parameter of calibration_table"):
        calibration_table([0.5], [1], strategy="kmeans")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"The 'n_bins' parameter of calibration_error must be an int in the range "
        r"\[1, inf\)\. Got 0 instead\.",
    ):
        calibration_error([0.5], [1], n_bins=0)


def _small_book() -> Book:
    # 12 clients all start on P1; over time half of them add P2 and a few add P3.
    rows = [(f"C{i:02d}", "P1", "2023-01-01") for i in range(12)]
    rows += [(f"C{i:02d}", "P2", f"2023-{3 + i % 6:02d}-01") for i in range(0, 12, 2)]
    rows += [(f"C{i:02d}", "P2", "2024-03-01") for i in range(1, 12, 4)]
    rows += [(f"C{i:02d}", "P3", "2024-04-01") for i in range(0, 12, 3)]
    contracts = pd.DataFrame(rows, columns=[Columns.client, Columns.product, Columns.start])
    return Book.from_frames(contracts=contracts)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrate_fits_on_backtest_offers(method: str) -> None:
    """Check that calibrate returns a fitted calibrator that a Recommender accepts."""
    book = _small_book()
    rec = Recommender(scorer=Popularity(), k=2)
    cal = calibrate(
        rec, book, ["2023-09-30", "2023-12-31"], horizon="90D", method=method, progress=False
    )  # type: ignore[arg-type]
    p = cal.predict(np.array([0.0, 0.5, 1.0]))
    assert ((p >= 0) & (p <= 1)).all()
    offers = rec.set_params(calibrator=cal).fit(book, "2024-06-30").recommend()
    assert offers[Columns.propensity].between(0, 1).all()


def test_calibrate_refuses_unknown_method() -> None:
    """Check that an unknown method is refused in scikit-learn's wording."""
    with pytest.raises(
        ValueError,
        match=r"^The 'method' parameter of calibrate must be a str among "
        r"\{'isotonic', 'platt'\}\. Got 'beta' instead\.$",
    ):
        calibrate(Recommender(), _small_book(), ["2023-12-31"], method="beta")  # type: ignore[arg-type]


def test_calibrators_are_arbitrations_own() -> None:
    """Check that evaluation re-exports arbitration's calibrators and its one Calibrator."""
    from crosssell import arbitration, evaluation

    assert evaluation.IsotonicCalibrator is arbitration.IsotonicCalibrator
    assert evaluation.PlattCalibrator is arbitration.PlattCalibrator
    assert evaluation.calibrator_from_dict is arbitration.calibrator_from_dict
    assert evaluation.Calibrator is arbitration.Calibrator
    assert isinstance(arbitration.PlattCalibrator(), evaluation.Calibrator)
