"""Qini and uplift curves: hand-counted tiny cases, and the truth ordering at least as well."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.evaluation import auuc, plot_qini, qini_coefficient, qini_curve, top_uplift

# four clients, highest uplift first: proposed-to and took up, held out and did not,
# proposed-to and did not, held out and took up
UPLIFT = [0.9, 0.5, 0.1, -0.2]
TREATED = [1, 0, 1, 0]
OUTCOME = [1, 0, 0, 1]
TRUTH = {"gain": 0.15, "flat": 0.0, "put_off": -0.12}


def test_the_tiny_curve_is_counted_by_hand():
    """Check every point of the Qini and uplift curves of four clients."""
    curve = qini_curve(UPLIFT, TREATED, OUTCOME)
    assert curve["n"].tolist() == [0, 1, 2, 3, 4]
    assert curve["n_treated"].tolist() == [0, 1, 1, 2, 2]
    # at 4: 1 take-up treated - 1 held-out take-up x 2 treated / 2 held out
    assert curve["qini"].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    # at 3: (1/2 - 0/1) x 3
    assert curve["uplift_curve"].tolist() == [0.0, 1.0, 2.0, 1.5, 0.0]
    assert curve["random"].tolist() == [0.0] * 5


def test_the_tiny_areas_are_counted_by_hand():
    """Check the Qini coefficient and the AUUC: trapezoids of width 1/4 over curves / 4."""
    assert qini_coefficient(UPLIFT, TREATED, OUTCOME) == pytest.approx(0.25 * 3 / 4)
    assert auuc(UPLIFT, TREATED, OUTCOME) == pytest.approx(0.25 * 4.5 / 4)
    # the reverse ordering puts the held-out take-up first: worse than chance
    assert qini_coefficient(-np.asarray(UPLIFT), TREATED, OUTCOME) < 0


def test_ties_enter_together_whatever_the_row_order():
    """Check that clients of equal uplift form one point, and shuffling changes nothing."""
    curve = qini_curve([0.5, 0.5, 0.1, 0.1], [1, 0, 1, 0], [1, 0, 0, 1])
    assert curve["n"].tolist() == [0, 2, 4]
    shuffled = qini_curve([0.1, 0.5, 0.1, 0.5], [0, 0, 1, 1], [1, 0, 0, 1])
    pd.testing.assert_frame_equal(curve, shuffled)


def test_the_top_share_captures_its_uplift_and_value():
    """Check the top half of the tiny case: one take-up treated, none held out."""
    top = top_uplift(UPLIFT, TREATED, OUTCOME, share=0.5, value=[100.0, 0.0, 0.0, 50.0])
    assert top["n"] == 2
    assert (top["take_up_treated"], top["take_up_holdout"]) == (1.0, 0.0)
    assert top["added"] == 2.0
    assert top["value_added"] == 200.0
    assert np.isnan(top["share_of_added"])  # proposing to everyone adds nothing here


def test_errors_name_the_rows():
    """Check the messages for unequal lengths, a missing outcome and a bad share."""
    with pytest.raises(ValueError, match="one entry per client"):
        qini_curve([0.1, 0.2], [1], [0, 1])
    with pytest.raises(ValueError, match=r"in 1 rows \(showing 1\): rows \[1\]"):
        qini_curve([0.1, 0.2], [1, 0], [0, np.nan])
    with pytest.raises(ValueError, match="share must be in"):
        top_uplift(UPLIFT, TREATED, OUTCOME, share=0.0)


@functools.cache
def _scored() -> pd.DataFrame:
    """The model learns on one campaign and is measured on another, drawn alike."""
    learned = cs.datasets.simulate_uplift(TRUTH, n_clients=3000, seed=1)
    model = cs.scorers.Uplift(n_boot=0).fit(learned.decisions, learned.book)
    sim = cs.datasets.simulate_uplift(TRUTH, n_clients=3000, seed=2)
    pairs = sim.decisions[["client_id", "product_id", "arm"]].merge(
        sim.book.clients[["client_id", "segment", "size"]], on="client_id"
    )
    out = model.predict(pairs)
    taken = sim.book.contracts.loc[sim.book.contracts["product_id"] == "OFFER", "client_id"]
    out["taken"] = out["client_id"].isin(taken).astype(float)
    out["truth"] = out["segment"].map(TRUTH)
    return out


def test_the_true_uplift_orders_at_least_as_well_as_the_model():
    """Check Qini(truth) >= Qini(model) > 0 > Qini(model reversed), on a fresh campaign.

    The truth orders best in expectation only; one campaign's arms are a draw, so the
    comparison allows the model 5% of the truth's value (the spread measured over draws).
    """
    s = _scored()
    args = (s["arm"], s["taken"])
    truth = qini_coefficient(s["truth"], *args)
    model = qini_coefficient(s["uplift"], *args)
    assert truth >= model - 0.05 * truth
    assert model > 0 > qini_coefficient(-s["uplift"], *args)
    truth_auuc = auuc(s["truth"], *args)
    assert truth_auuc >= auuc(s["uplift"], *args) - 0.05 * truth_auuc
    top = top_uplift(s["uplift"], *args)
    assert top["uplift"] > 0.05


def test_the_plot_draws_each_curve_and_the_random_line():
    """Check that plot_qini draws one line per curve plus the random line."""
    pytest.importorskip("matplotlib")
    s = _scored()
    curves = {
        "model": qini_curve(s["uplift"], s["arm"], s["taken"]),
        "truth": qini_curve(s["truth"], s["arm"], s["taken"]),
    }
    fig = plot_qini(curves)
    assert len(fig.axes[0].get_lines()) == 3
