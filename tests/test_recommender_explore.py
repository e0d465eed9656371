"""A Recommender that explores: within the policy, on budget, reproducible, with its chances."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.arbitration import Explore
from crosssell.exceptions import OverlapWarning

AS_OF = "2025-06-30"
OFFERS = ["P0", "P1", "P2", "P3"]
# true acceptance of each offer by segment (rows a, b)
TRUTH = np.array([[0.10, 0.40, 0.20, 0.05], [0.30, 0.05, 0.15, 0.25]])


def _book(n: int = 60, seed: int = 0) -> cs.Book:
    """Clients holding BASE, in two segments and two managers; a few answered offers of P0, P1."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:03d}" for i in range(n)]
    segment = np.where(np.arange(n) % 2 == 0, "a", "b")
    contracts = pd.DataFrame(
        {"client_id": ids, "product_id": "BASE", "start_date": "2024-01-01", "value": 10.0}
    )
    # some clients hold offer products too, so that every product has holders to score it by;
    # an offer of a held product is suppressed (already held)
    held = rng.random((n, len(OFFERS))) < 0.15
    rows, cols = np.nonzero(held)
    contracts = pd.concat(
        [
            contracts,
            pd.DataFrame(
                {
                    "client_id": np.array(ids, dtype=object)[rows],
                    "product_id": np.array(OFFERS, dtype=object)[cols],
                    "start_date": "2024-01-01",
                    "value": 100.0,
                }
            ),
        ],
        ignore_index=True,
    )
    products = pd.DataFrame(
        {
            "product_id": ["BASE", *OFFERS],
            "family": ["core", "f0", "f1", "f2", "f3"],
            "value": [10.0, 100.0, 100.0, 100.0, 100.0],
        }
    )
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "segment": segment,
            "owner": np.where(np.arange(n) < n // 3, "AM1", "AM2"),
            "do_not_contact": np.arange(n) == 2,
        }
    )
    answered = rng.choice(n, min(n, 30), replace=False)
    product = np.array(OFFERS[:2], dtype=object)[rng.integers(0, 2, answered.size)]
    seg = (segment[answered] == "b").astype(int)
    took = rng.random(answered.size) < TRUTH[seg, [OFFERS.index(p) for p in product]]
    events = pd.DataFrame(
        {
            "client_id": np.array(ids, dtype=object)[answered],
            "date": "2025-03-01",
            "type": np.where(took, "offer_accepted", "offer_declined"),
            "product_id": product,
        }
    )
    return cs.Book.from_frames(
        contracts=contracts, products=products, clients=clients, events=events
    )


@pytest.fixture(scope="module")
def book() -> cs.Book:
    return _book()


def _rec(book: cs.Book, explore: Explore | None, k: int = 2) -> cs.Recommender:
    return cs.Recommender(
        scorer=cs.scorers.Popularity(by="segment"),
        policy=cs.rules.route_sales(),
        k=k,
        n_jobs=1,
        explore=explore,
    ).fit(book, AS_OF)


def test_without_explore_the_offers_are_as_before(book: cs.Book) -> None:
    """Check that explore=None gives the same frame as a recommender never told of exploring."""
    plain = cs.Recommender(
        scorer=cs.scorers.Popularity(by="segment"), policy=cs.rules.route_sales(), k=2, n_jobs=1
    ).fit(book, AS_OF)
    offers = _rec(book, None).recommend()
    pd.testing.assert_frame_equal(offers, plain.recommend())
    assert "shown_probability" not in offers.columns


def test_the_same_seed_gives_the_same_offers(book: cs.Book) -> None:
    """Check that exploring is deterministic for a seed, and another seed draws otherwise."""
    first = _rec(book, Explore(share=0.5, seed=7)).recommend()
    again = _rec(book, Explore(share=0.5, seed=7)).recommend()
    pd.testing.assert_frame_equal(first, again)
    others = [_rec(book, Explore(share=0.5, seed=s)).recommend() for s in (8, 9, 10)]
    assert any(not o["product_id"].equals(first["product_id"]) for o in others)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), share=st.sampled_from([0.1, 0.3, 0.5, 1.0]))
def test_no_explored_offer_is_one_the_policy_suppresses(
    book: cs.Book, seed: int, share: float
) -> None:
    """Check that every offer of an exploring recommender is one the policy allows."""
    rec = _rec(book, Explore(share=share, seed=seed))
    offers = rec.recommend()
    blocked = rec.suppressed()
    whole = set(blocked.loc[blocked["product_id"].isna(), "client_id"])
    pairs = set(zip(blocked["client_id"], blocked["product_id"], strict=True))
    assert not whole & set(offers["client_id"])
    assert not pairs & set(zip(offers["client_id"], offers["product_id"], strict=True))
    assert not offers.duplicated(["client_id", "product_id"]).any()


@pytest.mark.parametrize("share", [0.1, 0.25, 1.0])
def test_each_manager_keeps_to_its_budget(book: cs.Book, share: float) -> None:
    """Check that per manager, exploratory offers are at most share x its proposals."""
    offers = _rec(book, Explore(share=share, seed=3)).recommend()
    owner = offers["client_id"].map(book.clients.set_index("client_id")["owner"])
    per = offers.groupby(owner).agg(n=("exploratory", "size"), explored=("exploratory", "sum"))
    assert (per["explored"] <= np.floor(share * per["n"])).all()
    assert per["explored"].sum() > 0
    # one exploratory offer per client at most, always its last
    explored = offers[offers["exploratory"]]
    last = offers.groupby("client_id")["rank"].transform("max")
    assert (explored["rank"] == last[explored.index]).all()
    assert explored["reason"].str.startswith("Exploratory offer").all()


def test_recorded_chances_are_probabilities(book: cs.Book) -> None:
    """Check that every shown chance is in (0, 1], 1 above the last rank, with an error >= 0."""
    offers = _rec(book, Explore(share=0.5, seed=1)).recommend()
    p = offers["shown_probability"]
    assert ((p > 0) & (p <= 1)).all()
    last = offers.groupby("client_id")["rank"].transform("max")
    assert (p[offers["rank"] < last] == 1.0).all()
    assert (offers["shown_probability_error"] >= 0).all()
    assert (p[offers["exploratory"]] < 1).any()


@pytest.mark.parametrize("samples", [None, 400])
def test_recorded_chances_match_how_often_offers_are_shown(samples: int | None) -> None:
    """Check that over many seeds each last offer is shown as often as its recorded chance."""
    small = _book(n=6, seed=2)
    rec = _rec(small, Explore(share=0.5, seed=0, samples=samples), k=1)
    runs = 120
    shown: dict[tuple[str, str], int] = {}
    stated: dict[tuple[str, str], tuple[float, float]] = {}
    for seed in range(runs):
        rec.set_params(explore=Explore(share=0.5, seed=seed, samples=samples))
        offers = rec.recommend(explain=False)
        for c, pr, p, e in offers[
            ["client_id", "product_id", "shown_probability", "shown_probability_error"]
        ].itertuples(index=False):
            shown[(c, pr)] = shown.get((c, pr), 0) + 1
            if samples is None:
                # quadrature: the same chance whatever the seed
                assert stated.get((c, pr), (p, e))[0] == pytest.approx(p, abs=1e-12)
            stated.setdefault((c, pr), (p, e))
    for pair, count in shown.items():
        p, e = stated[pair]
        sampling = np.sqrt(p * (1 - p) / runs)
        assert abs(count / runs - p) <= 4.5 * sampling + 4 * e + 1e-9, pair


def test_the_decision_log_and_off_policy_read_the_recorded_chances(
    book: cs.Book, tmp_path: object
) -> None:
    """Check that a logged exploring recommendation keeps each offer's chance for off_policy."""
    rec = _rec(book, Explore(share=0.5, seed=4))
    with cs.DecisionLog(f"{tmp_path}/log.db") as log:
        offers = rec.recommend(log=log)
        decisions = log.decisions()
        result = cs.evaluation.off_policy(offers, log, n_boot=0)
    logged = decisions.set_index("decision_id").loc[offers["decision_id"]]
    np.testing.assert_allclose(logged["shown_probability"], offers["shown_probability"])
    np.testing.assert_allclose(logged["shown_probability_error"], offers["shown_probability_error"])
    w = result.weights.set_index("decision_id").loc[offers["decision_id"]]
    np.testing.assert_allclose(w["shown_probability"], offers["shown_probability"])


def _value_on_log(seed: int, explore: Explore | None) -> tuple[pd.Series, float, bool]:
    """Simulate answers to one recommendation; return off_policy's estimates of always-P1."""
    book = _book(n=400, seed=seed)
    rec = _rec(book, explore, k=1)
    offers = rec.recommend(explain=False)
    rng = np.random.default_rng(1000 + seed)
    segment = offers["client_id"].map(book.clients.set_index("client_id")["segment"])
    seg = (segment == "b").to_numpy().astype(int)
    p_true = TRUTH[seg, [OFFERS.index(p) for p in offers["product_id"]]]
    took = rng.random(len(offers)) < p_true
    decisions = cs.decisions.decisions_from_offers(offers, as_of=AS_OF)
    reactions = pd.DataFrame(
        {
            "decision_id": decisions["decision_id"],
            "outcome": np.where(took, "accepted", "declined"),
        }
    )
    # the candidate offers P1 wherever the policy allows it
    blocked = rec.suppressed()
    barred = set(blocked.loc[blocked["product_id"] == "P1", "client_id"])
    open_ = ~offers["client_id"].isin(barred).to_numpy()
    candidate = pd.DataFrame({"client_id": offers["client_id"][open_], "product_id": "P1"})
    truth = float(TRUTH[seg[open_], 1].sum() / len(offers))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cs.evaluation.off_policy(candidate, (decisions, reactions), n_boot=0)
    warned = any(issubclass(w.category, OverlapWarning) for w in caught)
    return result.estimates["value"], truth, warned


def test_off_policy_on_an_exploring_log_recovers_a_known_policy() -> None:
    """Check that IPS on exploring logs is unbiased for always-P1; on a greedy log it is not."""
    runs = [_value_on_log(seed, Explore(share=1.0, seed=seed)) for seed in range(12)]
    errors = np.array([estimate["ips"] - truth for estimate, truth, _ in runs])
    se = errors.std(ddof=1) / np.sqrt(errors.size)
    assert abs(errors.mean()) <= 3 * se
    estimate, truth, warned = _value_on_log(0, None)
    assert warned
    assert abs(estimate["ips"] - truth) > abs(errors.mean()) + 3 * se
