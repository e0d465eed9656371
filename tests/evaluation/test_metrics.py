"""Tests of crosssell.evaluation.metrics: ranking metrics against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell.columns import Columns
from crosssell.evaluation import (
    coverage,
    evaluate,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    value_captured_at_k,
)
from crosssell.evaluation.metrics import lift

C, P, R, V = Columns.client, Columns.product, Columns.rank, Columns.value


@pytest.fixture
def recs() -> pd.DataFrame:
    # A is offered P1, P2, P3; B is offered P1, P5, P6; C (who adds nothing) is offered P2.
    return pd.DataFrame(
        {
            C: ["A", "A", "A", "B", "B", "B", "C"],
            P: ["P1", "P2", "P3", "P1", "P5", "P6", "P2"],
            R: [1, 2, 3, 1, 2, 3, 1],
        }
    )


@pytest.fixture
def truth() -> pd.DataFrame:
    # A added P2 (100) and P4 (50); B added P1 (30). Total added value 180.
    return pd.DataFrame({C: ["A", "A", "B"], P: ["P2", "P4", "P1"], V: [100.0, 50.0, 30.0]})


def test_hand_computed_at_3(recs: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Check that every metric at k=3 matches the arithmetic written out below."""
    # A: hit at rank 2 only; B: hit at rank 1 only; C has no addition and is left out.
    # precision: A 1/3, B 1/3 -> 1/3
    assert precision_at_k(recs, truth, 3) == pytest.approx(1 / 3)
    # recall: A 1/2, B 1/1 -> 0.75
    assert recall_at_k(recs, truth, 3) == pytest.approx(0.75)
    # AP: A = precision@2 (1/2) / min(3, 2 additions) = 0.25; B = 1/1 = 1 -> MAP 0.625
    assert map_at_k(recs, truth, 3) == pytest.approx(0.625)
    # NDCG: A = (1/log2 3) / (1 + 1/log2 3) = 0.38685; B = 1 -> 0.69343
    ndcg_a = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(recs, truth, 3) == pytest.approx((ndcg_a + 1) / 2)
    # hit rate: both A and B have a hit
    assert hit_rate_at_k(recs, truth, 3) == 1.0
    # value: A's P2 (100) + B's P1 (30) = 130 of 180
    assert value_captured_at_k(recs, truth, 3) == 130.0
    assert value_captured_at_k(recs, truth, 3, share=True) == pytest.approx(130 / 180)
    # coverage: P1, P2, P3, P5, P6 offered (C's offer counts) out of 10 products
    assert coverage(recs, n_products=10, k=3) == 0.5


def test_hand_computed_at_1(recs: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Check that the metrics at k=1 only see the first offer of each client."""
    # A's first offer P1 missed; B's first offer P1 hit.
    assert precision_at_k(recs, truth, 1) == 0.5  # (0 + 1) / 2
    assert recall_at_k(recs, truth, 1) == 0.5  # (0/2 + 1/1) / 2
    assert map_at_k(recs, truth, 1) == 0.5  # (0 + 1) / 2
    assert ndcg_at_k(recs, truth, 1) == 0.5  # ideal at k=1 is one hit for both
    assert hit_rate_at_k(recs, truth, 1) == 0.5
    assert value_captured_at_k(recs, truth, 1) == 30.0
    assert coverage(recs, n_products=10, k=1) == 0.2  # P1 (A, B) and P2 (C)


def test_evaluate_matches_single_metrics(recs: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Check that evaluate reports the same numbers as the single-metric functions."""
    table = evaluate(recs, truth, k=(1, 3), n_products=10, n_boot=0).set_index(["metric", "k"])
    assert table.loc[("precision", 3), "value"] == pytest.approx(1 / 3)
    assert table.loc[("map", 3), "value"] == pytest.approx(0.625)
    assert table.loc[("value_share", 1), "value"] == pytest.approx(30 / 180)
    assert table.loc[("coverage", 1), "value"] == pytest.approx(0.2)
    assert (table["n_clients"] == 2).all()
    assert table["ci_low"].isna().all()


def test_clients_without_addition_are_left_out(recs: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Check that offers to clients who added nothing do not change the averages."""
    more = pd.concat(
        [recs, pd.DataFrame({C: ["Z", "Z"], P: ["P1", "P2"], R: [1, 2]})], ignore_index=True
    )
    assert precision_at_k(more, truth, 3) == precision_at_k(recs, truth, 3)


def test_clients_without_offers_score_zero(truth: pd.DataFrame) -> None:
    """Check that a client with additions but no offer counts as a miss."""
    only_b = pd.DataFrame({C: ["B"], P: ["P1"], R: [1]})
    # A gets nothing (0), B hits (1) -> 0.5
    assert recall_at_k(only_b, truth, 1) == 0.5


def test_no_addition_gives_nan() -> None:
    """Check that the averages are NaN when nobody added anything."""
    recs = pd.DataFrame({C: ["A"], P: ["P1"], R: [1]})
    empty = pd.DataFrame({C: pd.Series([], dtype=str), P: pd.Series([], dtype=str)})
    assert math.isnan(precision_at_k(recs, empty, 1))
    table = evaluate(recs, empty, k=1, n_products=2)
    assert table.set_index("metric").loc["coverage", "value"] == 0.5
    assert (
        table.set_index("metric").loc["ndcg", "value"]
        != table.set_index("metric").loc["ndcg", "value"]
    )


def test_perfect_scorer_on_planted_future() -> None:
    """Check that offering exactly what each client will add scores 1.0 where it can."""
    rng = np.random.default_rng(0)
    n_clients, n_products = 300, 40
    sizes = rng.integers(1, 6, size=n_clients)
    rows = [
        (f"C{c}", f"P{p}")
        for c in range(n_clients)
        for p in rng.choice(n_products, size=sizes[c], replace=False)
    ]
    truth = pd.DataFrame(rows, columns=[C, P])
    recs = truth.assign(**{R: truth.groupby(C).cumcount() + 1})
    for k in (1, 3, 5):
        expected_precision = float(np.mean(np.minimum(sizes, k) / k))
        expected_recall = float(np.mean(np.minimum(sizes, k) / sizes))
        assert precision_at_k(recs, truth, k) == pytest.approx(expected_precision)
        assert recall_at_k(recs, truth, k) == pytest.approx(expected_recall)
        assert ndcg_at_k(recs, truth, k) == pytest.approx(1.0)
        assert map_at_k(recs, truth, k) == pytest.approx(1.0)
        assert hit_rate_at_k(recs, truth, k) == 1.0
    assert recall_at_k(recs, truth, 5) == 1.0


def test_random_scorer_near_base_rate() -> None:
    """Check that random offers score precision near the share of products added."""
    rng = np.random.default_rng(1)
    n_clients, n_products, n_added, k = 2000, 50, 5, 10
    clients = np.repeat([f"C{c}" for c in range(n_clients)], n_added)
    added = np.concatenate(
        [rng.choice(n_products, n_added, replace=False) for _ in range(n_clients)]
    )
    offered = np.concatenate([rng.choice(n_products, k, replace=False) for _ in range(n_clients)])
    truth = pd.DataFrame({C: clients, P: added})
    recs = pd.DataFrame(
        {
            C: np.repeat([f"C{c}" for c in range(n_clients)], k),
            P: offered,
            R: np.tile(np.arange(1, k + 1), n_clients),
        }
    )
    base_rate = n_added / n_products  # 0.1
    assert precision_at_k(recs, truth, k) == pytest.approx(base_rate, abs=0.01)
    assert recall_at_k(recs, truth, k) == pytest.approx(k / n_products, abs=0.02)


def test_bootstrap_interval_brackets_value_and_is_seeded(
    recs: pd.DataFrame, truth: pd.DataFrame
) -> None:
    """Check that the bootstrap interval holds the estimate and repeats with the same seed."""
    rng = np.random.default_rng(2)
    n = 500
    truth = pd.DataFrame({C: [f"C{i}" for i in range(n)], P: rng.integers(0, 5, n), V: 1.0})
    recs = pd.DataFrame({C: [f"C{i}" for i in range(n)], P: rng.integers(0, 5, n), R: 1})
    first = evaluate(recs, truth, k=1, n_boot=200, random_state=3)
    again = evaluate(recs, truth, k=1, n_boot=200, random_state=3)
    pd.testing.assert_frame_equal(first, again)
    rows = first[first["metric"] != "coverage"]
    assert (rows["ci_low"] <= rows["value"] + 1e-12).all()
    assert (rows["value"] <= rows["ci_high"] + 1e-12).all()
    precision = rows.set_index("metric").loc["precision"]
    assert 0.0 < precision["ci_high"] - precision["ci_low"] < 0.2


def test_rank_errors_show_rows() -> None:
    """Check that a rank below 1 is refused with the offending rows in the message."""
    recs = pd.DataFrame({C: ["A", "B"], P: ["P1", "P2"], R: [1, 0]})
    truth = pd.DataFrame({C: ["A"], P: ["P1"]})
    with pytest.raises(
        ValueError,
        match=r"'rank' must be an integer >= 1 in 1 row \(showing 1\): row 1 client_id='B' rank=0",
    ):
        precision_at_k(recs, truth, 1)


def test_parameter_errors_in_sklearn_form(recs: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Check that bad parameters are refused in scikit-learn's wording."""
    with pytest.raises(
        ValueError,
        match=r"^The 'k' parameter of precision_at_k must be an int in the range "
        r"\[1, inf\)\. Got 0 instead\.$",
    ):
        precision_at_k(recs, truth, 0)
    with pytest.raises(ValueError, match=r"The 'n_boot' parameter of evaluate must be an int"):
        evaluate(recs, truth, n_boot=-1)
    with pytest.raises(ValueError, match=r"recommendations: missing column 'rank'"):
        precision_at_k(recs.drop(columns=R), truth, 1)


def test_lift() -> None:
    """Check the lift ratio and its edge cases."""
    assert lift(0.3, 0.2) == pytest.approx(1.5)
    assert lift(0.1, 0.0) == math.inf
    assert math.isnan(lift(0.0, 0.0))


def test_integer_ids_keep_working() -> None:
    """Check that integer client and product ids match as well as text ones."""
    recs = pd.DataFrame({C: [1, 1], P: [10, 20], R: [1, 2]})
    truth = pd.DataFrame({C: [1], P: [20]})
    assert precision_at_k(recs, truth, 2) == 0.5


@st.composite
def _frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_clients = draw(st.integers(1, 8))
    n_products = 6
    recs_rows = []
    truth_rows = []
    for c in range(n_clients):
        offered = draw(st.lists(st.integers(0, n_products - 1), max_size=5, unique=True))
        recs_rows.extend((c, p, r + 1) for r, p in enumerate(offered))
        added = draw(st.lists(st.integers(0, n_products - 1), max_size=4, unique=True))
        truth_rows.extend((c, p, float(draw(st.integers(0, 9)))) for p in added)
    recs = pd.DataFrame(recs_rows, columns=[C, P, R]).astype({C: "int64", P: "int64", R: "int64"})
    truth = pd.DataFrame(truth_rows, columns=[C, P, V]).astype({C: "int64", P: "int64"})
    return recs, truth


@settings(max_examples=60, deadline=None)
@given(frames=_frames(), seed=st.integers(0, 2**16))
def test_shuffling_rows_changes_nothing(
    frames: tuple[pd.DataFrame, pd.DataFrame], seed: int
) -> None:
    """Check that the metrics do not depend on the order of the rows of either frame."""
    recs, truth = frames
    base = evaluate(recs, truth, k=(1, 3, 5), n_products=6, n_boot=0)
    shuffled = evaluate(
        recs.sample(frac=1.0, random_state=seed),
        truth.sample(frac=1.0, random_state=seed + 1),
        k=(1, 3, 5),
        n_products=6,
        n_boot=0,
    )
    pd.testing.assert_frame_equal(base, shuffled)


@settings(max_examples=60, deadline=None)
@given(frames=_frames())
def test_metric_ranges(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Check that precision, recall, MAP, NDCG and hit rate stay in [0, 1]."""
    recs, truth = frames
    table = evaluate(recs, truth, k=(1, 3, 5), n_products=6, n_boot=0)
    bounded = table[
        table["metric"].isin(
            ["precision", "recall", "map", "ndcg", "hit_rate", "value_share", "coverage"]
        )
    ]
    values = bounded["value"].dropna()
    assert ((values >= 0.0) & (values <= 1.0 + 1e-12)).all()
