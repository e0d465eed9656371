"""Lift against the holdout: obvious answers on a tiny book, and recovery of a known effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.decisions import DecisionLog
from crosssell.evaluation import LiftReport, lift


def _tiny() -> tuple[pd.DataFrame, cs.Book]:
    contracts = pd.DataFrame(
        {
            "client_id": ["C1", "C2", "C3", "C4", "C1", "C3"],
            "product_id": ["P1", "P1", "P1", "P1", "P2", "P3"],
            "start_date": ["2024-01-01"] * 4 + ["2024-07-10", "2024-09-30"],
            "value": [10.0, 10.0, 10.0, 10.0, 100.0, 40.0],
        }
    )
    products = pd.DataFrame(
        {"product_id": ["P1", "P2", "P3"], "family": ["A", "B", "B"], "tier": [1, 1, 2]}
    )
    clients = pd.DataFrame(
        {"client_id": ["C1", "C2", "C3", "C4"], "segment": ["big", "small", "big", "small"]}
    )
    book = cs.Book.from_frames(contracts, products, clients)
    decisions = pd.DataFrame(
        {
            "client_id": ["C1", "C2", "C3", "C4", "C1"],
            "product_id": ["P2", "P2", "P2", "P2", "P3"],
            "action": "offer",
            "rank": [1, 1, 1, 1, 2],
            "arm": ["treated", "treated", "holdout", "holdout", "treated"],
            "as_of": pd.Timestamp("2024-06-30"),
            "decided_at": pd.Timestamp("2024-06-30"),
        }
    )
    return decisions, book


def test_tiny_book_gives_the_obvious_lift() -> None:
    decisions, book = _tiny()
    report = lift(decisions, book, horizon="30D", n_boot=200)
    s = report.summary.set_index("metric")
    # C1 took up its offer within 30 days; C3's take-up comes after the horizon
    assert s.loc["take_up", ["treated", "holdout", "lift"]].tolist() == [0.5, 0.0, 0.5]
    assert s.loc["offer_take_up", "lift"] == 0.5
    assert s.loc["value", ["treated", "holdout"]].tolist() == [50.0, 0.0]
    assert s.loc["take_up", ["n_treated", "n_holdout"]].tolist() == [2, 2]
    assert report.clients.set_index("client_id").loc["C1", "product_id"] == "P2"  # rank 1
    assert report.by_family["family"].unique().tolist() == ["B"]
    assert sorted(report.by_segment["segment"].unique()) == ["big", "small"]
    # a longer horizon sees C3's take-up (of another product than offered)
    longer = lift(decisions, book, horizon="120D", n_boot=0).summary.set_index("metric")
    assert longer.loc["take_up", "holdout"] == 0.5
    assert longer.loc["offer_take_up", "holdout"] == 0.0


def test_no_holdout_arm_is_a_clear_error() -> None:
    decisions, book = _tiny()
    with pytest.raises(ValueError, match="holdout"):
        lift(decisions.assign(arm="treated"), book, n_boot=0)
    with pytest.raises(ValueError, match="n_boot"):
        lift(decisions, book, n_boot=-1)
    with pytest.raises(ValueError, match="as_of"):
        lift(decisions.drop(columns="as_of"), book)


def test_the_ratio_of_two_metrics_still_answers_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"evaluation\.metrics\.lift"):
        assert lift(0.3, 0.2) == pytest.approx(1.5)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted() -> cs.Recommender:
    return cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")


@pytest.mark.slow
@pytest.mark.parametrize("true_uplift", [0.1, 0.0])
def test_lift_recovers_the_simulated_effect_within_its_interval(
    fitted: cs.Recommender, true_uplift: float
) -> None:
    covered, covered_delta, estimates = [], [], []
    for seed in range(60):
        sim = cs.datasets.simulate_campaign(
            cs.datasets.demo(), fitted, true_uplift=true_uplift, seed=seed
        )
        row = lift(sim.decisions, sim.book, n_boot=400, seed=seed).summary.set_index("metric")
        r = row.loc["offer_take_up"]
        covered.append(r["ci_low"] <= true_uplift <= r["ci_high"])
        covered_delta.append(r["delta_ci_low"] <= true_uplift <= r["delta_ci_high"])
        estimates.append(r["lift"])
    assert np.mean(covered) >= 0.9
    assert np.mean(covered_delta) >= 0.9
    assert abs(np.mean(estimates) - true_uplift) < 0.02


def test_a_log_and_its_frame_give_the_same_lift(fitted: cs.Recommender, tmp_path: Path) -> None:
    with DecisionLog(tmp_path / "log.db") as log:
        sim = cs.datasets.simulate_campaign(cs.datasets.demo(), fitted, seed=5, log=log)
        from_log = lift(log, sim.book, n_boot=50)
        assert len(log.reactions()) == len(sim.reactions)
    from_frame = lift(sim.decisions, sim.book, n_boot=50)
    pd.testing.assert_frame_equal(from_log.summary, from_frame.summary)


def test_sample_size_follows_the_effect_and_the_formula(fitted: cs.Recommender) -> None:
    sim = cs.datasets.simulate_campaign(cs.datasets.demo(), fitted, seed=2)
    report = lift(sim.decisions, sim.book, n_boot=0)
    small, large = report.sample_size(0.02), report.sample_size(0.08)
    assert small["clients"] > 10 * large["clients"] > 0
    assert small["holdout"] < small["clients"]
    with pytest.raises(ValueError, match="effect"):
        report.sample_size(0.0)


def test_the_plot_and_the_tidy_table(fitted: cs.Recommender) -> None:
    pytest.importorskip("matplotlib")
    sim = cs.datasets.simulate_campaign(cs.datasets.demo(), fitted, true_uplift=0.2, seed=4)
    report = lift(sim.decisions, sim.book, n_boot=100)
    assert isinstance(report, LiftReport)
    fig = report.plot(by="family")
    assert len(fig.axes[0].get_yticklabels()) == 1 + report.by_family["family"].nunique()
    table = report.to_frame()
    assert set(table["group"]) == {"all", "family", "segment"}
    assert "<table" in report._repr_html_()


def test_simulate_campaign_refuses_impossible_chances(fitted: cs.Recommender) -> None:
    with pytest.raises(ValueError, match="probability"):
        cs.datasets.simulate_campaign(cs.datasets.demo(), fitted, baseline=0.9, true_uplift=0.2)


def test_the_backtest_page_carries_a_lift_section(fitted: cs.Recommender, tmp_path: Path) -> None:
    sim = cs.datasets.simulate_campaign(cs.datasets.demo(), fitted, true_uplift=0.2, seed=4)
    report = lift(sim.decisions, sim.book, n_boot=50)
    result = cs.backtest(
        cs.Recommender(), cs.datasets.tiny(), "2024-06-30", "60D", k=(1,), n_boot=0, progress=False
    )
    text = cs.report(result, tmp_path / "page.html", lift=report).read_text(encoding="utf-8")
    assert "Lift against the holdout" in text
    assert "offer_take_up" in text
    assert "within 90 days" in text


# ------------------------------------------------------------------------- targeting by uplift
UPLIFT_TRUTH = {"gain": 0.3, "flat": 0.0, "harm": -0.15}


def _true_uplift(sim: Any) -> pd.Series:
    """The known uplift of each simulated client, by client id."""
    segment = sim.book.clients.set_index("client_id")["segment"]
    return segment.map(UPLIFT_TRUTH).astype(float)


def test_targeting_by_the_true_uplift_beats_random_and_a_learned_model_sits_between() -> None:
    """Check that the true uplift's Qini bounds a learned model's, which beats a random order."""
    sim = cs.datasets.simulate_uplift(UPLIFT_TRUTH, n_clients=3000, seed=3)
    truth = lift(sim.decisions, sim.book, n_boot=0, uplift=_true_uplift(sim))
    model = cs.scorers.Uplift(n_boot=0).fit(sim.decisions, sim.book)
    learned = lift(sim.decisions, sim.book, n_boot=0, uplift=model)
    ids = sim.book.clients["client_id"]
    noise = pd.Series(np.random.default_rng(0).random(len(ids)), index=ids)
    random = lift(sim.decisions, sim.book, n_boot=0, uplift=noise)

    def measure(report: Any, name: str) -> float:
        return float(report.targeting.set_index("measure").loc[name, "value"])

    assert measure(truth, "qini") > measure(random, "qini") + 0.02
    assert measure(learned, "qini") <= measure(truth, "qini") + 1e-9
    assert measure(learned, "qini") > measure(random, "qini")
    # the top decile by true uplift is all of the segment that proposing helps
    assert measure(truth, "top_decile_uplift") == pytest.approx(0.3, abs=0.08)
    assert measure(truth, "top_decile_added") > 0
    assert truth.qini["qini"].iloc[0] == 0.0
    assert len(lift(sim.decisions, sim.book, n_boot=0).targeting) == 0


def test_uplift_missing_for_some_clients_is_refused_with_the_count() -> None:
    """Check that an uplift lookup lacking compared clients names how many and which."""
    sim = cs.datasets.simulate_uplift(UPLIFT_TRUTH, n_clients=200, seed=4)
    partial = _true_uplift(sim).iloc[:150]
    with pytest.raises(ValueError, match=r"no estimate for 50 of the 200 compared clients"):
        lift(sim.decisions, sim.book, n_boot=0, uplift=partial)


def test_a_model_is_asked_about_the_clients_as_the_measured_book_describes_them() -> None:
    """Check that a model fitted on one campaign scores the next one's clients by its Book."""
    first = cs.datasets.simulate_uplift(UPLIFT_TRUTH, n_clients=600, seed=5)
    later = cs.datasets.simulate_uplift(UPLIFT_TRUTH, n_clients=600, seed=6)
    model = cs.scorers.Uplift(n_boot=0).fit(first.decisions, first.book)
    report = lift(later.decisions, later.book, n_boot=0, uplift=model)
    pairs = report.clients[["client_id", "product_id"]].merge(later.book.clients, how="left")
    expected = model.predict(pairs)["uplift"].to_numpy()
    np.testing.assert_allclose(report.clients["uplift"].to_numpy(), expected)
