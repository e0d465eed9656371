"""Off-policy evaluation on simulated logs whose logging probabilities and true values are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell import DecisionLog
from crosssell.evaluation import off_policy
from crosssell.exceptions import OverlapWarning, SchemaError
from crosssell.html import report

PRODUCTS = np.array(["P0", "P1", "P2", "P3"], dtype=object)
# true acceptance by segment (rows a, b) and product
TRUTH = np.array([[0.10, 0.25, 0.05, 0.15], [0.30, 0.05, 0.20, 0.10]])
# the logging policy explores: every product has a fair chance in each segment
LOGGING = np.array([[0.4, 0.2, 0.2, 0.2], [0.1, 0.3, 0.3, 0.3]])
# the candidate: P1 to segment a, P0 to segment b
CANDIDATE = np.array([1, 0])


def _simulate(
    seed: int, n: int = 1500, logging: np.ndarray = LOGGING
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float]:
    """Return decisions, reactions, the candidate's offers and its true value on these clients."""
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, 2, n)
    shown = (rng.random(n)[:, None] > np.cumsum(logging[segment], axis=1)).sum(axis=1)
    accepted = rng.random(n) < TRUTH[segment, shown]
    clients = np.array([f"C{i:05d}" for i in range(n)], dtype=object)
    decisions = pd.DataFrame(
        {
            "decision_id": [f"D{seed}-{i}" for i in range(n)],
            "as_of": pd.Timestamp("2025-06-30"),
            "decided_at": pd.Timestamp("2025-06-30"),
            "client_id": clients,
            "product_id": PRODUCTS[shown],
            "action": "offer",
            "rank": 1,
            "value": 100.0,
            "shown_probability": logging[segment, shown],
            "arm": "treated",
        }
    )
    reactions = pd.DataFrame(
        {
            "decision_id": decisions["decision_id"],
            "outcome": np.where(accepted, "accepted", "declined"),
            "reacted_at": pd.Timestamp("2025-07-15"),
            "value": np.where(accepted, 100.0, np.nan),
            "note": None,
        }
    )
    candidate = pd.DataFrame({"client_id": clients, "product_id": PRODUCTS[CANDIDATE[segment]]})
    truth = float(TRUTH[segment, CANDIDATE[segment]].mean())
    return decisions, reactions, candidate, truth


def test_obvious_answer_on_two_clients() -> None:
    """Check that IPS doubles an accepted offer shown half the time and the candidate repeats."""
    decisions = pd.DataFrame(
        {
            "decision_id": ["d1", "d2"],
            "client_id": ["a", "b"],
            "product_id": ["P", "Q"],
            "action": "offer",
            "shown_probability": 0.5,
        }
    )
    reactions = pd.DataFrame({"decision_id": ["d1", "d2"], "outcome": ["accepted", "declined"]})
    candidate = pd.DataFrame({"client_id": ["a", "b"], "product_id": ["P", "P"]})
    result = off_policy(candidate, (decisions, reactions), n_boot=0)
    assert result.estimates.loc["ips", "value"] == pytest.approx(1.0)
    assert result.logged_value == pytest.approx(0.5)
    assert result.weights["weight"].tolist() == [2.0, 0.0]


def test_dr_interval_covers_the_true_value_in_nine_seeds_of_ten() -> None:
    """Check that the DR 95% interval covers the candidate's true value in >= 90% of seeds."""
    covered = []
    for seed in range(60):
        decisions, reactions, candidate, truth = _simulate(seed)
        result = off_policy(candidate, (decisions, reactions), n_boot=200, seed=seed)
        low, high = result.estimates.loc["dr", ["ci_low", "ci_high"]]
        covered.append(low <= truth <= high)
    assert np.mean(covered) >= 0.9


def test_ips_is_unbiased_over_seeds() -> None:
    """Check that IPS errors average to zero over seeds, and SNIPS and DR err less."""
    errors = {"ips": [], "snips": [], "dr": []}
    for seed in range(60):
        decisions, reactions, candidate, truth = _simulate(seed, n=800)
        result = off_policy(candidate, (decisions, reactions), n_boot=0)
        for name, err in errors.items():
            err.append(result.estimates.loc[name, "value"] - truth)
    ips = np.array(errors["ips"])
    assert abs(ips.mean()) < 3 * ips.std() / np.sqrt(ips.size)
    assert np.std(errors["dr"]) < np.std(errors["ips"])


def test_revenue_is_the_accepted_value() -> None:
    """Check that revenue is take-up times the accepted value when every offer is worth 100."""
    decisions, reactions, candidate, _ = _simulate(1)
    take_up = off_policy(candidate, (decisions, reactions), n_boot=0)
    revenue = off_policy(candidate, (decisions, reactions), reward="revenue", n_boot=0)
    np.testing.assert_allclose(
        revenue.estimates["value"].to_numpy(), 100 * take_up.estimates["value"].to_numpy()
    )


def test_a_perfect_outcome_model_makes_dr_exact_on_average() -> None:
    """Check that DR with the true acceptance is close to the truth and has a narrow interval."""
    decisions, reactions, candidate, truth = _simulate(2, n=3000)
    segment_of = dict(
        zip(candidate["client_id"], (candidate["product_id"] == "P0").astype(int), strict=True)
    )

    def true_model(pairs: pd.DataFrame) -> np.ndarray:
        seg = pairs["client_id"].map(segment_of).to_numpy()
        prod = pairs["product_id"].str[1].astype(int).to_numpy()
        return TRUTH[seg, prod]

    result = off_policy(candidate, (decisions, reactions), outcome_model=true_model, n_boot=200)
    dr = result.estimates.loc["dr"]
    ips = result.estimates.loc["ips"]
    assert dr["value"] == pytest.approx(truth, abs=0.02)
    assert dr["ci_high"] - dr["ci_low"] < ips["ci_high"] - ips["ci_low"]


def test_warns_when_the_log_never_showed_the_candidates_offers() -> None:
    """Check that a candidate's offer the logging policy never made raises an OverlapWarning."""
    blind = np.array([[0.5, 0.0, 0.25, 0.25], [0.1, 0.3, 0.3, 0.3]])
    decisions, reactions, candidate, _ = _simulate(3, logging=blind)
    with pytest.warns(OverlapWarning, match=r"too little probability: only 4\d% of the candidate"):
        result = off_policy(candidate, (decisions, reactions), n_boot=0)
    assert result.coverage < 0.8


def test_no_warning_when_the_log_explores() -> None:
    """Check that an exploring log raises no warning and sees about all the candidate's offers."""
    decisions, reactions, candidate, _ = _simulate(4)
    result = off_policy(candidate, (decisions, reactions), n_boot=0)
    assert result.coverage == pytest.approx(1.0, abs=0.1)
    assert 0 < result.effective_sample_size < result.n_offers


def test_reads_a_decision_log(tmp_path: Path) -> None:
    """Check that a DecisionLog's decisions and reactions give the same estimates as frames."""
    decisions, reactions, candidate, _ = _simulate(5, n=300)
    log = DecisionLog(tmp_path / "log.db")
    try:
        log.record(decisions)
        log.react_many(reactions)
        from_log = off_policy(candidate, log, n_boot=0)
    finally:
        log.close()
    from_frames = off_policy(candidate, (decisions, reactions), n_boot=0)
    pd.testing.assert_frame_equal(from_log.estimates, from_frames.estimates)


def test_the_logging_recommender_as_candidate_earns_what_was_logged() -> None:
    """Check that valuing the recommender that made a campaign's offers gives the logged value."""
    book = cs.datasets.demo()
    rec = cs.Recommender(k=1).fit(book, "2025-06-30")
    campaign = cs.datasets.simulate_campaign(book, rec, seed=0)
    result = off_policy(rec, campaign, book, n_boot=0)
    assert result.coverage == pytest.approx(1.0)
    for name in ("ips", "snips", "dr"):
        assert result.estimates.loc[name, "value"] == pytest.approx(result.logged_value)


def test_a_book_fitted_response_is_an_outcome_model() -> None:
    """Check that a Response fitted on the Book serves as the DR's outcome model."""
    book = cs.datasets.demo()
    rec = cs.Recommender(k=1).fit(book, "2025-06-30")
    campaign = cs.datasets.simulate_campaign(book, rec, seed=1)
    model = cs.scorers.Response().fit(book.matrix("2025-06-30"), book)
    result = off_policy(rec, campaign, book, outcome_model=model, n_boot=50)
    predicted = result.weights["predicted"]
    assert predicted.between(0, 1).all()
    assert predicted.nunique() > 1


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_row_order_changes_nothing(seed: int) -> None:
    """Check that shuffling the logged decisions and reactions leaves every estimate as it was."""
    decisions, reactions, candidate, _ = _simulate(8, n=300)
    order = np.random.default_rng(seed).permutation(len(decisions))
    a = off_policy(candidate, (decisions, reactions), n_boot=50)
    b = off_policy(candidate, (decisions.iloc[order], reactions.iloc[order[::-1]]), n_boot=50)
    pd.testing.assert_frame_equal(a.estimates, b.estimates, atol=1e-9)


def test_input_frames_are_not_mutated() -> None:
    """Check that off_policy leaves the caller's decisions, reactions and candidate as they were."""
    decisions, reactions, candidate, _ = _simulate(9, n=200)
    before = (decisions.copy(), reactions.copy(), candidate.copy())
    off_policy(candidate, (decisions, reactions), n_boot=10)
    for frame, copy in zip((decisions, reactions, candidate), before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)


def test_bad_shown_probability_is_named() -> None:
    """Check that a shown probability above 1 raises a SchemaError naming the row."""
    decisions, reactions, candidate, _ = _simulate(6, n=5)
    decisions.loc[3, "shown_probability"] = 1.5
    with pytest.raises(SchemaError, match=r"in 1 rows \(showing 1\): row 3 decision_id=D6-3"):
        off_policy(candidate, (decisions, reactions))


def test_changes_tell_dropped_kept_and_added_offers_apart() -> None:
    """Check the per-cause table on three logged offers: one dropped, one kept, one added."""
    decisions = pd.DataFrame(
        {
            "decision_id": ["d1", "d2", "d3"],
            "client_id": ["a", "b", "c"],
            "product_id": ["P", "Q", "P"],
            "action": "offer",
            "shown_probability": 0.5,
        }
    )
    reactions = pd.DataFrame(
        {"decision_id": ["d1", "d2", "d3"], "outcome": ["accepted", "declined", "accepted"]}
    )
    candidate = pd.DataFrame({"client_id": ["a", "b", "c"], "product_id": ["P", "P", "Q"]})
    with pytest.warns(OverlapWarning):  # two of its three offers were never shown
        result = off_policy(candidate, (decisions, reactions), n_boot=0)
    changes = result.changes.set_index("change")
    assert changes.loc["dropped", "cause"] == "not offered"
    assert changes.loc["dropped", "offers"] == 2  # b's Q and c's P
    assert changes.loc["dropped", "logged_reward"] == 1.0  # c had accepted P
    assert changes.loc["kept", "offers"] == 1
    assert changes.loc["kept", "logged_reward"] == 1.0
    assert changes.loc["added", "offers"] == 2  # b's P and c's Q, never logged
    assert np.isnan(changes.loc["added", "logged_reward"])
    assert (changes["predicted_reward"] >= 0).all()
    html = result._repr_html_()
    assert "What this change would have done" in html
    assert "not offered" in html


def test_changes_name_the_rule_that_drops_a_logged_offer(tmp_path: Path) -> None:
    """Check that a logged offer the candidate's policy blocks is put down to that rule."""
    book = cs.datasets.demo()
    plain = cs.Recommender(k=2, policy=None).fit(book, "2025-06-30")
    campaign = cs.datasets.simulate_campaign(book, plain, seed=0)
    strict = cs.Recommender(k=2, policy=cs.rules.route_sales()).fit(book, "2025-06-30")
    result = off_policy(strict, campaign, book, n_boot=0)
    dropped = result.changes[result.changes["change"] == "dropped"]
    blocked = set(strict.suppressed(not_worth=True)["rule"])
    causes = set(dropped["cause"])
    # every cause is a rule of the policy or the ranking, and some offers are the rules'
    assert causes <= blocked | {"ranking"}
    assert causes & blocked
    assert int(result.changes["offers"].sum()) >= result.n_offers
    page = report(
        cs.backtest(strict, book, "2025-03-31", "60D", k=(2,), n_boot=0, progress=False),
        tmp_path / "report.html",
        off_policy=result,
    )
    text = page.read_text(encoding="utf-8")
    assert "What this change would have done" in text
    assert sorted(causes)[0] in text
