"""Uplift: the change that proposing makes, recovered from a holdout with a known effect."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.exceptions import NotFittedError, SchemaError
from crosssell.scorers import UPLIFT_COLUMNS, Uplift

TRUTH = {"gain": 0.15, "flat": 0.0, "put_off": -0.12}


@functools.cache
def _campaign() -> cs.datasets.Campaign:
    return cs.datasets.simulate_uplift(TRUTH, n_clients=3000, seed=0)


def _by_segment(model: Uplift) -> pd.DataFrame:
    sim = _campaign()
    pairs = sim.decisions[["client_id", "product_id"]]
    out = model.predict(pairs).merge(sim.book.clients[["client_id", "segment"]])
    return out.groupby("segment")[list(UPLIFT_COLUMNS)].mean()


@pytest.mark.parametrize("learner", ["two_model", "transformed_outcome"])
def test_it_ranks_the_segments_as_the_truth_does(learner):
    """Check that both learners order the segments by their true uplift, the negative last."""
    sim = _campaign()
    seg = _by_segment(Uplift(learner=learner, n_boot=30).fit(sim.decisions, sim.book))
    assert seg["uplift"].sort_values().index.tolist() == ["put_off", "flat", "gain"]
    assert seg.loc["put_off", "ci_high"] < 0 < seg.loc["gain", "ci_low"]
    for name, truth in TRUTH.items():
        assert abs(seg.loc[name, "uplift"] - truth) < 0.06


def test_the_interval_holds_the_estimate_and_the_chances_add_up():
    """Check ci_low <= uplift <= ci_high, se > 0 and p_treated = p_holdout + uplift."""
    sim = _campaign()
    out = Uplift(n_boot=20).fit(sim.decisions, sim.book).predict(sim.decisions.head(50))
    assert (out["ci_low"] <= out["uplift"]).all()
    assert (out["uplift"] <= out["ci_high"]).all()
    assert (out["se"] > 0).all()
    np.testing.assert_allclose(out["p_treated"], out["p_holdout"] + out["uplift"])


def test_the_same_seed_gives_the_same_model_in_any_row_order():
    """Check determinism, and that shuffling the decisions changes nothing."""
    sim = _campaign()
    pairs = sim.decisions[["client_id", "product_id"]].head(30)
    first = Uplift(n_boot=10, random_state=3).fit(sim.decisions, sim.book).predict(pairs)
    again = Uplift(n_boot=10, random_state=3).fit(sim.decisions, sim.book).predict(pairs)
    shuffled = sim.decisions.sample(frac=1.0, random_state=7)
    moved = Uplift(n_boot=10, random_state=3).fit(shuffled, sim.book).predict(pairs)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, moved)


def test_the_input_frames_are_not_changed():
    """Check that fit and predict leave the decisions and the pairs as they were."""
    sim = _campaign()
    decisions = sim.decisions.copy()
    pairs = decisions[["client_id", "product_id"]].head(5).copy()
    model = Uplift(n_boot=0).fit(decisions, sim.book)
    before = pairs.copy()
    out = model.predict(pairs)
    pd.testing.assert_frame_equal(decisions, sim.decisions)
    pd.testing.assert_frame_equal(pairs, before)
    assert out["se"].isna().all()  # no bootstrap, no interval


def test_tiny_take_up_per_arm():
    """Check the take-up of each arm on eight hand-built decisions."""
    clients = pd.DataFrame({"client_id": [f"C{i}" for i in range(8)], "segment": ["A", "B"] * 4})
    contracts = pd.DataFrame(
        {
            "client_id": ["C0", "C1", "C2", "C6", "C7", "C3", "C3"],
            "product_id": ["P1"] * 7,
            # C7 took it up after the horizon, C3 renewed what it held: neither counts
            "start_date": ["2025-02-01"] * 4 + ["2025-12-01", "2024-01-01", "2025-01-15"],
            "end_date": [None] * 5 + ["2025-01-14", None],
        }
    )
    book = cs.Book.from_frames(contracts=contracts, clients=clients)
    decisions = pd.DataFrame(
        {
            "client_id": clients["client_id"],
            "product_id": "P1",
            "action": "offer",
            "arm": ["treated"] * 4 + ["holdout"] * 4,
            "as_of": "2025-01-01",
        }
    )
    model = Uplift(n_boot=0).fit(decisions, book)
    assert model.take_up_ == {"treated": 0.75, "holdout": 0.25}
    assert (model.n_treated_, model.n_holdout_, model.treated_share_) == (4, 4, 0.5)


def test_integer_ids_are_read_as_text():
    """Check that a Book with integer client ids gives the same estimates as with text ids."""
    sim = cs.datasets.simulate_uplift({"a": 0.1, "b": -0.1}, n_clients=400, seed=2)
    number = {c: int(c[1:]) for c in sim.book.clients["client_id"]}
    book = cs.Book.from_frames(
        contracts=sim.book.contracts.assign(client_id=sim.book.contracts["client_id"].map(number)),
        products=sim.book.products,
        clients=sim.book.clients.assign(client_id=sim.book.clients["client_id"].map(number)),
    )
    decisions = sim.decisions.assign(client_id=sim.decisions["client_id"].map(number))
    as_text = Uplift(n_boot=0).fit(sim.decisions, sim.book).predict(sim.decisions.head(5))
    as_int = Uplift(n_boot=0).fit(decisions, book).predict(decisions.head(5))
    np.testing.assert_allclose(as_int["uplift"], as_text["uplift"])


def test_errors_say_what_is_missing():
    """Check the messages for a missing column, a single arm and a call before fit."""
    sim = _campaign()
    with pytest.raises(SchemaError, match="column\\(s\\) arm missing"):
        Uplift().fit(sim.decisions.drop(columns="arm"), sim.book)
    treated = sim.decisions[sim.decisions["arm"] == "treated"]
    with pytest.raises(SchemaError, match=r"arm\(s\) \['treated'\] only"):
        Uplift().fit(treated, sim.book)
    with pytest.raises(NotFittedError, match="Call 'fit'"):
        Uplift().predict(sim.decisions)


# ------------------------------------------------------------------ on the ranker's features
def _by_segment_dated(model: Uplift, book: cs.Book) -> pd.DataFrame:
    sim = _campaign()
    pairs = sim.decisions[["client_id", "product_id", "as_of"]]
    out = model.predict(pairs).merge(book.clients[["client_id", "segment"]])
    return out.groupby("segment")[list(UPLIFT_COLUMNS)].mean()


@pytest.mark.parametrize("learner", ["two_model", "transformed_outcome"])
def test_on_the_ranker_features_it_still_ranks_the_segments(learner):
    """Check that with the ranker's features both learners order the segments as the truth."""
    sim = _campaign()
    model = Uplift(learner=learner, features="ranker", n_boot=5).fit(sim.decisions, sim.book)
    assert "client_holdings" in model.pair_features_
    seg = _by_segment_dated(model, sim.book)
    assert seg["uplift"].sort_values().index.tolist() == ["put_off", "flat", "gain"]
    for name, truth in TRUTH.items():
        assert abs(seg.loc[name, "uplift"] - truth) < 0.06


def test_on_the_ranker_features_nothing_after_a_decision_is_read():
    """Check that events dated after the decisions change no estimate of the ranker features.

    Every client of the put-off segment states a need for the offer, and every other client
    declines it, the day after the decisions: read at the decision's date, none of it exists.
    """
    sim = _campaign()
    clients = sim.book.clients
    day = pd.Timestamp(sim.as_of) + pd.Timedelta(days=1)
    late = pd.DataFrame(
        {
            "client_id": clients["client_id"],
            "product_id": "OFFER",
            "date": day,
            "type": np.where(clients["segment"] == "put_off", "need", "offer_declined"),
        }
    )
    later = cs.Book.from_frames(
        contracts=sim.book.contracts,
        products=sim.book.products,
        clients=clients,
        events=late,
    )
    pairs = sim.decisions[["client_id", "product_id", "as_of"]].head(200)
    before = Uplift(features="ranker", n_boot=5).fit(sim.decisions, sim.book).predict(pairs)
    after = Uplift(features="ranker", n_boot=5).fit(sim.decisions, later).predict(pairs)
    pd.testing.assert_frame_equal(before, after)


def test_the_default_reads_no_ranker_feature():
    """Check that the default features are the attributes alone."""
    sim = _campaign()
    assert Uplift(n_boot=0).fit(sim.decisions, sim.book).pair_features_ == []


def test_on_the_ranker_features_lift_reads_the_measured_book():
    """Check that lift measures a ranker-features model on a later campaign's own Book."""
    sim = _campaign()
    model = Uplift(features="ranker", n_boot=0).fit(sim.decisions, sim.book)
    later = cs.datasets.simulate_uplift(TRUTH, n_clients=3000, seed=1)
    report = cs.evaluation.lift(later.decisions, later.book, n_boot=0, uplift=model)
    qini = report.targeting.set_index("measure")["value"]["qini"]
    assert qini > 0
