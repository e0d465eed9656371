"""Backtest's Qini and AUUC: does the recommender rank first the offers that proposing moves?"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.evaluation.uplift import qini_coefficient
from crosssell.scorers.uplift import take_ups

TRUTH = {"gain": 0.2, "flat": 0.0, "put_off": -0.15}
CUTOFF = "2024-12-31"


@functools.cache
def _campaign() -> cs.datasets.Campaign:
    return cs.datasets.simulate_uplift(TRUTH, n_clients=2000, seed=0)


def _with_history(accepted: dict[str, float]) -> cs.Book:
    """The campaign's book with an earlier round of offers of OFFER, accepted per segment."""
    sim = _campaign()
    clients = sim.book.clients
    rng = np.random.default_rng(1)
    yes = rng.random(len(clients)) < clients["segment"].map(accepted).to_numpy()
    ids = clients["client_id"].to_numpy()
    refs = [f"H{i}" for i in range(len(ids))]
    made = pd.DataFrame(
        {"client_id": ids, "product_id": "OFFER", "date": "2024-06-01", "type": "offer_made",
         "ref": refs}
    )  # fmt: skip
    answered = made.assign(
        date="2024-06-05", type=np.where(yes, "offer_accepted", "offer_declined")
    )
    return cs.Book.from_frames(
        contracts=sim.book.contracts,
        products=sim.book.products,
        clients=clients,
        events=pd.concat([made, answered], ignore_index=True),
    )


def _targeting(book: cs.Book) -> cs.evaluation.BacktestResult:
    rec = cs.Recommender(scorer=cs.scorers.Response(), k=1)
    return cs.evaluation.backtest(
        rec, book, CUTOFF, "90D", k=1, n_boot=0, baseline=False, progress=False,
        decisions=_campaign().decisions,
    )  # fmt: skip


def _measure(result: cs.evaluation.BacktestResult, name: str) -> float:
    t = result.targeting
    return float(t.loc[t["measure"] == name, "value"].iloc[0])


def test_an_order_that_follows_the_true_uplift_scores_a_high_qini():
    """Check that scores aligned with the true uplift give a positive Qini near the truth's,
    and scores in the reverse order a negative one."""
    sim = _campaign()
    aligned = _targeting(_with_history({"gain": 0.6, "flat": 0.3, "put_off": 0.05}))
    reversed_ = _targeting(_with_history({"gain": 0.05, "flat": 0.3, "put_off": 0.6}))
    d = sim.decisions
    truth = d["client_id"].map(sim.book.clients.set_index("client_id")["segment"]).map(TRUTH)
    y = take_ups(d, sim.book, pd.Timedelta("90D"))
    best = qini_coefficient(truth, d["arm"], y)
    assert best > 0
    assert 0.6 * best < _measure(aligned, "qini") <= best + 0.01
    assert _measure(reversed_, "qini") < 0
    assert _measure(aligned, "top_decile_uplift") > _measure(reversed_, "top_decile_uplift")
    assert _measure(aligned, "auuc") > _measure(reversed_, "auuc")
    assert _measure(aligned, "treated") + _measure(aligned, "holdout") == len(d)


def test_the_result_shows_the_targeting():
    """Check the summary by model, the curves and the HTML report's table."""
    result = _targeting(_with_history({"gain": 0.6, "flat": 0.3, "put_off": 0.05}))
    summary = result.uplift_summary()
    assert summary.columns.tolist() == ["measure", "crosssell"]
    assert {"fold", "model", "qini", "uplift_curve"} <= set(result.qini.columns)
    assert "uplift_summary()" in result._repr_html_()


def test_decisions_outside_every_fold_are_not_measured():
    """Check that a fold whose window holds no decision reports counts of 0 and no Qini."""
    sim = _campaign()
    rec = cs.Recommender(scorer=cs.scorers.Popularity(), k=1)
    result = cs.evaluation.backtest(
        rec, sim.book, "2024-09-30", "90D", k=1, n_boot=0, baseline=False, progress=False,
        decisions=sim.decisions,
    )  # fmt: skip
    assert _measure(result, "treated") == 0
    assert np.isnan(_measure(result, "qini"))


def test_without_decisions_nothing_changes():
    """Check that the targeting table is empty when no decisions are given."""
    rec = cs.Recommender(scorer=cs.scorers.Popularity(), k=1)
    result = cs.evaluation.backtest(
        rec, _campaign().book, CUTOFF, "90D", k=1, n_boot=0, baseline=False, progress=False
    )
    assert result.targeting.empty
    assert result.uplift_summary().empty


def test_decisions_of_one_arm_are_refused():
    """Check that decisions without a holdout arm say what is missing."""
    d = _campaign().decisions
    rec = cs.Recommender(scorer=cs.scorers.Popularity(), k=1)
    with pytest.raises(ValueError, match=r"arm\(s\) \['treated'\] only"):
        cs.evaluation.backtest(
            rec, _campaign().book, CUTOFF, "90D", k=1, n_boot=0, progress=False,
            decisions=d.loc[d["arm"] == "treated"],
        )  # fmt: skip
