"""Tests of the calibration a backtest reports: ECE per fold and overall, reliability plot."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import BacktestResult, backtest, calibration_error
from crosssell.recommender import Recommender
from crosssell.scorers import Popularity

C, P = Columns.client, Columns.product


def _book() -> Book:
    """Four clients hold A; two of them take B within 90 days of 2024-06-30, nobody takes C.

    K0 has held B and C since 2023, so both are on sale at the cutoff.
    """
    rows = [(f"K{i}", "A", "2023-01-01") for i in range(1, 5)]
    rows += [("K0", "B", "2023-01-01"), ("K0", "C", "2023-01-01")]
    rows += [("K1", "B", "2024-08-01"), ("K2", "B", "2024-08-15"), ("K3", "C", "2024-12-01")]
    return Book.from_frames(contracts=pd.DataFrame(rows, columns=[C, P, Columns.start]))


class _Fixed(Recommender):
    """Offers B then C to K1..K4 with planted propensities."""

    propensity: ClassVar[dict[str, float]] = {"B": 0.5, "C": 0.0}

    def recommend(
        self, clients: Any = None, k: int | None = None, *, explain: bool = True
    ) -> pd.DataFrame:
        ids = [c for c in clients if c != "K0"]
        return pd.DataFrame(
            {
                C: np.repeat(ids, 2),
                P: ["B", "C"] * len(ids),
                Columns.offer_type: "cross_sell",
                Columns.score: 1.0,
                Columns.propensity: [self.propensity["B"], self.propensity["C"]] * len(ids),
                Columns.rank: [1, 2] * len(ids),
            }
        )


def _run(propensity: dict[str, float]) -> BacktestResult:
    _Fixed.propensity = propensity
    return backtest(
        _Fixed(), _book(), "2024-06-30", "90D", k=(1, 2), baseline=False, n_boot=0, progress=False
    )


def test_perfectly_calibrated_offers_have_zero_error() -> None:
    """Check that propensities equal to the observed take-up give an ECE of 0, fold and overall."""
    table = _run({"B": 0.5, "C": 0.0}).calibration()
    assert table[Columns.calibration_error].tolist() == [0.0, 0.0]
    assert table[Columns.fold].isna().tolist() == [False, True]
    assert table[Columns.n].tolist() == [8, 8]
    assert table[Columns.observed].tolist() == [0.25, 0.25]


def test_miscalibrated_offers_show_the_gap() -> None:
    """Check that saying 0.9 for a product half the clients take gives the weighted gap."""
    result = _run({"B": 0.9, "C": 0.0})
    # bin of 0.9: four offers, two taken, gap 0.4 over half of the offers; bin of 0: no gap
    assert result.calibration()[Columns.calibration_error].iloc[0] == pytest.approx(0.2)
    table = result.reliability()
    assert table.equals(result.reliability(fold=0))
    assert table[Columns.n].tolist() == [4, 4]
    assert table[Columns.observed].tolist() == [0.0, 0.5]


def _result(offers: pd.DataFrame) -> BacktestResult:
    cutoffs = pd.to_datetime(["2024-03-31", "2024-06-30"])
    folds = pd.DataFrame({Columns.fold: [0, 1], Columns.cutoff: cutoffs})
    return BacktestResult(
        metrics=pd.DataFrame(),
        folds=folds,
        offers=offers,
        horizon=pd.Timedelta(days=90),
        k=(1,),
    )


def test_calibration_per_fold_and_overall_by_model() -> None:
    """Check the per-fold and pooled errors, model by model, on hand-made offers."""
    offers = pd.DataFrame(
        {
            Columns.fold: [0] * 8 + [1] * 2 + [0] * 2,
            Columns.model: ["crosssell"] * 10 + ["popularity"] * 2,
            Columns.propensity: [0.25] * 4 + [0.75] * 4 + [0.55] * 2 + [0.1, np.nan],
            Columns.added: [1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1],
        }
    )
    table = _result(offers).calibration()
    assert table[[Columns.model, Columns.fold]].astype(object).where(
        table[[Columns.model, Columns.fold]].notna(), None
    ).values.tolist() == [
        ["crosssell", 0],
        ["crosssell", 1],
        ["popularity", 0],
        ["crosssell", None],
        ["popularity", None],
    ]
    # fold 0 is calibrated; fold 1 is 0.45 short; pooled: 0.45 x 2 of 10 offers
    assert table[Columns.calibration_error].tolist() == pytest.approx([0.0, 0.45, 0.1, 0.09, 0.1])
    assert table[Columns.n].tolist() == [8, 2, 1, 10, 1]  # the NaN propensity is not counted
    assert table[Columns.cutoff].iloc[1] == pd.Timestamp("2024-06-30")
    assert pd.isna(table[Columns.cutoff].iloc[3])


def test_calibration_matches_calibration_error_of_the_offers() -> None:
    """Check that a real backtest's per-fold error is calibration_error of that fold's offers."""
    book = _book()
    result = backtest(
        Recommender(scorer=Popularity()), book, "2024-06-30", "90D", k=(1, 2), n_boot=0,
        progress=False,
    )  # fmt: skip
    table = result.calibration(n_bins=5).set_index([Columns.model, Columns.fold])
    offers = result.offers
    for model in ("crosssell", "popularity"):
        mine = offers[offers[Columns.model] == model]
        assert len(mine) > 0
        want = calibration_error(mine[Columns.propensity].clip(0, 1), mine[Columns.added], 5)
        assert table.loc[(model, 0), Columns.calibration_error] == pytest.approx(want)


def test_reliability_refuses_an_unknown_model() -> None:
    """Check that asking for a model the backtest did not run names the ones it ran."""
    with pytest.raises(ValueError, match="no offer with a propensity for model 'als'; its models"):
        _run({"B": 0.5, "C": 0.0}).reliability("als")


def test_reliability_plot_shows_the_counts() -> None:
    """Check that the reliability plot writes each bin's number of offers and the ECE."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        fig = _run({"B": 0.9, "C": 0.0}).plot_reliability(strategy="uniform")
        panel = fig.axes[0]
        assert panel.get_title() == "reliability: crosssell (ECE 0.200)"
        assert sorted(t.get_text() for t in panel.texts) == ["4", "4"]
        assert fig.axes[1].get_ylabel() == "offers in bin"
    finally:
        plt.close("all")
