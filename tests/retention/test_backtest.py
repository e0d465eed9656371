"""The retention backtest: metrics with intervals beside the two rule baselines."""

from __future__ import annotations

import numpy as np
import pytest

import crosssell as cs
from crosssell.evaluation import backtest_retention, concordance


def test_the_table_is_tidy_and_the_model_beats_the_rules_on_the_demo() -> None:
    """Check the table's shape, interval order, and the model's lead in ROC AUC on the demo."""
    result = backtest_retention(
        cs.datasets.demo(),
        model=cs.RetentionModel(),
        cutoffs=["2024-06-30", "2024-09-30"],
        n_bootstrap=30,
    )
    table = result.table
    assert table.columns.tolist() == [
        "fold", "model", "metric", "value", "ci_low", "ci_high", "n_clients",
    ]  # fmt: skip
    assert set(table["fold"]) == {"2024-06-30", "2024-09-30", "all"}
    assert len(table) == 3 * 3 * 6
    finite = table.dropna(subset=["value", "ci_low", "ci_high"])
    assert (finite["ci_low"] <= finite["ci_high"]).all()
    summary = result.summary()
    assert summary.loc["roc_auc", "model"] > summary.loc["roc_auc", "risk signals"]
    assert summary.loc["roc_auc", "model"] > summary.loc["roc_auc", "contract ends soon"]
    assert np.isnan(summary.loc["brier", "risk signals"])
    assert 0 <= summary.loc["value_recall_top_decile", "model"] <= 1


def test_a_cutoff_too_late_for_its_horizon_is_refused() -> None:
    """Check that a fold whose outcome the Book cannot show raises, naming the latest cutoff."""
    with pytest.raises(ValueError, match="Use a cutoff on or before 2024-12-01"):
        backtest_retention(cs.datasets.demo(), cutoffs=["2025-03-31"], n_bootstrap=5)


def test_concordance_counts_pairs_as_harrell_does() -> None:
    """Check the C-index on pairs counted by hand: ties in risk count one half."""
    # pairs with an earlier departure: (a,b), (a,c), (b,c); b and c tie in risk
    assert concordance([0.9, 0.5, 0.5], [1, 2, 3], [True, True, False]) == pytest.approx(
        (1 + 1 + 0.5) / 3
    )
    assert concordance([0.1, 0.9], [1, 2], [True, False]) == 0.0
    assert np.isnan(concordance([0.1, 0.9], [1, 2], [False, False]))
