"""Tests of crosssell.evaluation.compare: paired differences between backtested models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell.columns import Columns
from crosssell.datasets import demo
from crosssell.evaluation import BacktestResult, backtest, compare
from crosssell.recommender import Recommender
from crosssell.scorers import ItemKNN

C, P = Columns.client, Columns.product
CUTOFF = pd.Timestamp("2024-06-30")


def _result(
    offers: dict[str, list[tuple[int, str, str, int]]],
    truth: list[tuple[int, str, str]],
    cutoffs: tuple[pd.Timestamp, ...] = (CUTOFF,),
) -> BacktestResult:
    """A result built by hand: offers as (fold, client, product, rank) per model."""
    parts = [
        pd.DataFrame(rows, columns=[Columns.fold, C, P, Columns.rank]).assign(
            **{Columns.model: model}
        )
        for model, rows in offers.items()
    ]
    truth_frame = pd.DataFrame(truth, columns=[Columns.fold, C, P]).assign(
        **{Columns.offer_type: "cross_sell", Columns.value: 1.0}
    )
    folds = pd.DataFrame(
        {
            Columns.fold: range(len(cutoffs)),
            Columns.cutoff: list(cutoffs),
            Columns.additions: [
                int((truth_frame[Columns.fold] == f).sum()) for f in range(len(cutoffs))
            ],
        }
    )
    return BacktestResult(
        metrics=pd.DataFrame(),
        folds=folds,
        offers=pd.concat(parts, ignore_index=True),
        horizon=pd.Timedelta("90D"),
        k=(10,),
        truth=truth_frame,
    )


def test_compare_gives_the_paired_difference_of_a_hand_built_case() -> None:
    """Check that A found by the model only and B by both give a difference of 0.5 NDCG."""
    result = _result(
        {
            "crosssell": [(0, "A", "x", 1), (0, "B", "y", 1)],
            "popularity": [(0, "A", "z", 1), (0, "B", "y", 1)],
        },
        [(0, "A", "x"), (0, "B", "y")],
    )
    table = compare(result, k=1, n_boot=0)
    row = table[table[Columns.fold] == "all"].iloc[0]
    assert (row[Columns.value], row["baseline_value"], row["difference"]) == (1.0, 0.5, 0.5)
    assert row[Columns.n_clients] == 2
    assert np.isnan(row[Columns.ci_low])
    assert not row["significant"]


def test_identical_models_differ_by_exactly_zero_with_a_zero_width_interval() -> None:
    """Check that a model compared with itself has difference 0 and the interval [0, 0]."""
    rows = [(0, "A", "x", 1), (0, "B", "q", 1), (0, "C", "y", 2)]
    result = _result(
        {"crosssell": rows, "popularity": rows}, [(0, "A", "x"), (0, "B", "y"), (0, "C", "y")]
    )
    table = compare(result, n_boot=100)
    assert table["difference"].eq(0).all()
    assert table[Columns.ci_low].eq(0).all()
    assert table[Columns.ci_high].eq(0).all()
    assert not table["significant"].any()


def test_a_model_that_wins_on_every_client_is_significant() -> None:
    """Check that a model finding every addition the baseline misses is significantly better."""
    clients = [f"C{i}" for i in range(30)]
    result = _result(
        {
            "crosssell": [(0, c, "x", 1) for c in clients],
            "popularity": [(0, c, "z", 1) for c in clients],
        },
        [(0, c, "x") for c in clients],
    )
    row = compare(result, n_boot=200).iloc[-1]
    assert row["difference"] == 1.0
    assert row["significant"]


def test_several_results_are_named_by_their_keys_and_share_the_baseline() -> None:
    """Check that a mapping of results compares each one's model, named by its key."""
    truth = [(0, "A", "x"), (0, "B", "y")]
    pop = [(0, "A", "z", 1), (0, "B", "z", 1)]
    good = _result({"crosssell": [(0, "A", "x", 1), (0, "B", "y", 1)], "popularity": pop}, truth)
    half = _result({"crosssell": [(0, "A", "x", 1)], "popularity": pop}, truth)
    table = compare({"good": good, "half": half}, k=1, n_boot=0)
    pooled = table[table[Columns.fold] == "all"].set_index(Columns.model)["difference"]
    assert pooled.to_dict() == {"good": 1.0, "half": 0.5}


def test_a_model_without_any_offer_scores_zero_rather_than_disappearing() -> None:
    """Check that a result whose model made no offer is compared as scoring 0."""
    result = _result({"popularity": [(0, "A", "x", 1)]}, [(0, "A", "x")])
    row = compare(result, n_boot=0).iloc[-1]
    assert (row[Columns.model], row["difference"]) == ("crosssell", -1.0)


def test_results_of_different_cutoffs_are_refused() -> None:
    """Check that pairing results of different cutoffs is an error naming both."""
    a = _result({"crosssell": [(0, "A", "x", 1)]}, [(0, "A", "x")])
    b = _result(
        {"crosssell": [(0, "A", "x", 1)]}, [(0, "A", "x")], cutoffs=(pd.Timestamp("2024-03-31"),)
    )
    with pytest.raises(ValueError, match=r"'b' was backtested on cutoffs \['2024-03-31'\]"):
        compare({"a": a, "b": b}, baseline="a")


def test_an_unknown_baseline_names_the_models_there_are() -> None:
    """Check that a baseline missing from the results is an error listing the models."""
    result = _result({"crosssell": [(0, "A", "x", 1)]}, [(0, "A", "x")])
    with pytest.raises(ValueError, match=r"no model named 'popularity'.*\['crosssell'\]"):
        compare(result)


@settings(max_examples=40, deadline=None)
@given(
    hits=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
)
def test_swapping_model_and_baseline_negates_the_difference(
    hits: list[tuple[bool, bool]], seed: int
) -> None:
    """Check that comparing B with A gives minus the difference and the mirrored interval of A
    with B."""
    truth = [(0, f"C{i}", "x") for i in range(len(hits))]
    a = [(0, f"C{i}", "x" if h else "z", 1) for i, (h, _) in enumerate(hits)]
    b = [(0, f"C{i}", "x" if h else "z", 1) for i, (_, h) in enumerate(hits)]
    ab = compare(_result({"crosssell": a, "popularity": b}, truth), n_boot=50, random_state=seed)
    ba = compare(_result({"crosssell": b, "popularity": a}, truth), n_boot=50, random_state=seed)
    assert np.allclose(ab["difference"], -ba["difference"])
    assert np.allclose(ab[Columns.ci_low], -ba[Columns.ci_high])
    assert (ab["significant"] == ba["significant"]).all()


def test_compare_agrees_with_the_backtest_metrics_on_the_demo_book() -> None:
    """Check that on a real backtest the paired values are the backtest's own NDCG@10 per fold."""
    result = backtest(
        Recommender(scorer=ItemKNN()),
        demo(),
        ["2024-06-30", "2024-12-31"],
        "180D",
        k=(10,),
        n_boot=0,
        progress=False,
    )
    table = compare(result, n_boot=0)
    m = result.metrics
    m = m[
        (m[Columns.metric] == "ndcg")
        & (m[Columns.offer_type] == "all")
        & (m[Columns.segment] == "all")
    ]
    mine = m[m[Columns.model] == "crosssell"].set_index(Columns.fold)[Columns.value]
    base = m[m[Columns.model] == "popularity"].set_index(Columns.fold)[Columns.value]
    per_fold = table[table[Columns.fold] != "all"].set_index(Columns.fold)
    assert np.allclose(per_fold[Columns.value].to_numpy(float), mine.to_numpy())
    assert np.allclose(per_fold["baseline_value"].to_numpy(float), base.to_numpy())
    assert set(result.truth.columns) == {Columns.fold, C, P, Columns.offer_type, Columns.value}
