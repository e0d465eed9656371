"""Tests of the retention model: obvious answers, censoring, no look-ahead, invariants."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.exceptions import InvalidParameterError, NotFittedError
from crosssell.retention import RetentionModel, observed_departures, survival_columns

from .conftest import AS_OF, renewal_book, renewal_frames


def _with_x_and_y(frames: dict[str, pd.DataFrame]) -> cs.Book:
    """Add X (open complaint, contract ending in 10 days) and Y (happy, three years left)."""
    contracts = pd.concat(
        [
            frames["contracts"],
            pd.DataFrame(
                {
                    "client_id": ["X", "Y"],
                    "product_id": ["CRM", "CRM"],
                    "start_date": pd.to_datetime(["2023-07-10", "2024-05-01"]),
                    "end_date": pd.to_datetime(["2024-07-10", "2027-05-01"]),
                    "value": [1000.0, 1000.0],
                }
            ),
        ],
        ignore_index=True,
    )
    clients = pd.concat(
        [
            frames["clients"],
            pd.DataFrame(
                {"client_id": ["X", "Y"], "satisfaction": [3.0, 9.0], "segment": ["mid", "mid"]}
            ),
        ],
        ignore_index=True,
    )
    events = pd.concat(
        [
            frames["events"],
            pd.DataFrame(
                {
                    "client_id": ["X"],
                    "date": pd.to_datetime(["2024-06-20"]),
                    "type": ["complaint_opened"],
                    "ref": ["X-0"],
                }
            ),
        ],
        ignore_index=True,
    )
    return cs.Book.from_frames(contracts=contracts, clients=clients, events=events)


@functools.cache
def _fitted() -> tuple[cs.Book, RetentionModel]:
    book = _with_x_and_y(renewal_frames())
    return book, RetentionModel().fit(book, AS_OF)


def test_a_complaint_and_a_near_end_is_riskier_than_a_happy_client_with_years_left() -> None:
    """Check that an open complaint and a contract ending in 10 days outrank a happy client."""
    _, model = _fitted()
    risk = model.predict().set_index("client_id")
    assert risk.loc["X", "p_leave"] > 0.3
    assert risk.loc["Y", "p_leave"] < 0.05
    assert risk.loc["X", "band"] == "at risk"
    assert risk.loc["Y", "band"] == "healthy"
    assert risk.loc["X", "health"] < risk.loc["Y", "health"]


def test_the_reasons_speak_of_the_complaint_and_the_contract_end_in_words() -> None:
    """Check that the riskiest client's reasons name its complaint, satisfaction or contract end."""
    _, model = _fitted()
    reasons = model.predict().set_index("client_id").loc["X", "reasons"]
    assert any(
        words in reasons
        for words in ("complaint", "satisfaction is 3 of 10", "the CRM contract ends in 10 days")
    ), reasons


def test_the_output_columns_and_value_at_risk() -> None:
    """Check the documented columns, value at risk = p x value, and health from p."""
    _, model = _fitted()
    risk = model.predict()
    assert risk.columns.tolist() == [
        "client_id",
        "p_leave",
        "annual_value",
        "value_at_risk",
        "health",
        "band",
        "reasons",
    ]
    np.testing.assert_allclose(risk["value_at_risk"], risk["p_leave"] * risk["annual_value"])
    np.testing.assert_array_equal(risk["health"], np.rint(100 * (1 - risk["p_leave"])))
    assert set(risk["band"]) <= {"healthy", "watch", "at risk"}
    # riskiest value first
    assert risk["value_at_risk"].is_monotonic_decreasing


def test_gone_clients_have_no_row() -> None:
    """Check that only clients holding a contract at as_of are scored."""
    book, model = _fitted()
    risk = model.predict()
    contracts = book.contracts
    t = pd.Timestamp(AS_OF)
    active = contracts[(contracts["start_date"] <= t) & (contracts["end_date"] > t)]
    assert set(risk["client_id"]) == set(active["client_id"])


def test_survival_is_a_curve_that_meets_p_leave_at_the_horizon() -> None:
    """Check that survival starts at or below 1, never rises, and equals 1 - p_leave at 180 days."""
    _, model = _fitted()
    curve = model.survival().set_index("client_id")
    assert curve.columns.tolist() == survival_columns()
    values = curve.to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert (np.diff(values, axis=1) <= 1e-12).all()
    risk = model.predict().set_index("client_id")
    months = 180 / (365.25 / 12)
    lo = int(np.floor(months))
    s_lo, s_hi = values[:, lo - 1], values[:, lo]
    with np.errstate(divide="ignore"):
        at = np.exp(np.log(s_lo) + (months - lo) * (np.log(s_hi) - np.log(s_lo)))
    at = np.where(np.isfinite(at), at, 0.0)
    np.testing.assert_allclose(1 - at, risk.loc[curve.index, "p_leave"].to_numpy(), atol=1e-3)


def test_contracts_are_scored_by_their_product_line() -> None:
    """Check that predict_contracts gives one row per active contract, the riskiest X's."""
    book, model = _fitted()
    lines = model.predict_contracts()
    t = pd.Timestamp(AS_OF)
    c = book.contracts
    assert len(lines) == int(((c["start_date"] <= t) & (c["end_date"] > t)).sum())
    assert lines["p_leave"].between(0, 1).all()
    x = lines[lines["client_id"] == "X"]["p_leave"].iloc[0]
    y = lines[lines["client_id"] == "Y"]["p_leave"].iloc[0]
    assert x > y


def test_a_censored_window_is_not_a_stay() -> None:
    """Check that a contract ending within the grace before the Book's end is unknown, not kept."""
    contracts = pd.DataFrame(
        {
            "client_id": ["A", "B"],
            "product_id": ["P", "P"],
            "start_date": ["2023-01-01", "2023-01-01"],
            "end_date": ["2025-06-15", "2025-03-01"],
        }
    )
    events = pd.DataFrame({"client_id": ["A"], "date": ["2025-06-20"], "type": ["contact"]})
    book = cs.Book.from_frames(contracts=contracts, events=events)
    out = observed_departures(book, "2025-01-01", "180D", grace="30D").set_index("client_id")
    # A's contract ends 2025-06-15; a renewal could still come until 2025-07-15, after the
    # Book's last date (2025-06-20): its outcome is not known, and it is not called a stay
    assert not out.loc["A", "left"]
    assert not out.loc["A", "known"]
    # B's ended 2025-03-01 with no renewal by 2025-03-31: it left, and that is known
    assert out.loc["B", "left"]
    assert out.loc["B", "known"]
    assert out.loc["B", "days"] == (pd.Timestamp("2025-03-01") - pd.Timestamp("2025-01-01")).days


def test_censored_units_give_only_the_months_observed() -> None:
    """Check that training rows of a unit end where the Book stops knowing, without a departure."""
    book = renewal_book(60, seed=1)
    model = RetentionModel(contracts=False, windows=1, step="100D")
    model._validate_params()
    model.purchases_ = False
    model.horizon_ = pd.Timedelta("180D")
    t = pd.Timestamp(AS_OF)
    a = model._arrays(book, t)
    cache: dict[object, object] = {}
    day = a.as_of - 100
    _, y, unit, _ = model._window_rows(
        a, day, a.as_of, by_family=False, take=10**6, rng=np.random.default_rng(0), cache=cache
    )
    units = model._units(a, day, False, cache)
    days, left = model._outcomes(a, units, a.as_of, False, cache)
    # 100 days seen, 30 of them inside the grace: 70 days = two whole months at most
    months = np.bincount(unit, minlength=units.key.size)
    assert months[~left].max() <= 2
    assert (days[~left] == 70).all()
    assert y[np.isin(unit, np.flatnonzero(~left))].sum() == 0


def test_rows_after_as_of_change_nothing() -> None:
    """Check that contracts and events dated after as_of leave the predictions unchanged."""
    frames = renewal_frames(150, seed=2)
    book = cs.Book.from_frames(
        contracts=frames["contracts"], clients=frames["clients"], events=frames["events"]
    )
    later_contracts = pd.concat(
        [
            frames["contracts"],
            pd.DataFrame(
                {
                    "client_id": ["C000", "C001"],
                    "product_id": ["ERP", "CRM"],
                    "start_date": pd.to_datetime(["2024-07-15", "2024-08-01"]),
                    "end_date": pd.to_datetime(["2025-07-15", "2025-08-01"]),
                    "value": [5000.0, 1000.0],
                }
            ),
        ],
        ignore_index=True,
    )
    later_events = pd.concat(
        [
            frames["events"],
            pd.DataFrame(
                {
                    "client_id": ["C002", "C003"],
                    "date": pd.to_datetime(["2024-07-01", "2024-09-01"]),
                    "type": ["complaint_opened", "churn_signal"],
                    "ref": ["late", None],
                }
            ),
        ],
        ignore_index=True,
    )
    later = cs.Book.from_frames(
        contracts=later_contracts, clients=frames["clients"], events=later_events
    )
    a = RetentionModel(contracts=False).fit(book, AS_OF).predict()
    b = RetentionModel(contracts=False).fit(later, AS_OF).predict()
    pd.testing.assert_frame_equal(a, b)


def test_the_same_seed_gives_the_same_model() -> None:
    """Check that two fits with one seed agree exactly, trees included."""
    book = renewal_book(150, seed=3)
    for model in ("logistic", "lightgbm"):
        a = RetentionModel(model=model, contracts=False, n_estimators=20).fit(book, AS_OF)
        b = RetentionModel(model=model, contracts=False, n_estimators=20).fit(book, AS_OF)
        pd.testing.assert_frame_equal(a.predict(), b.predict())


def test_user_features_join_the_model_and_are_checked() -> None:
    """Check that a user feature is a column of the model and a wrong length names it."""
    book = renewal_book(150, seed=4)

    def contacts(ctx: cs.rules.RuleContext, clients: np.ndarray) -> np.ndarray:
        seen = ctx.events("complaint_opened")
        return np.bincount(seen["client_idx"], minlength=ctx.n_clients)[clients].astype(float)

    model = RetentionModel(contracts=False, features=[("complaints_ever", contacts)])
    model.fit(book, AS_OF)
    assert "complaints_ever" in model.feature_names_

    bad = RetentionModel(contracts=False, features=[("short", lambda ctx, clients: [1.0])])
    with pytest.raises(ValueError, match="The feature 'short' returned 1 values"):
        bad.fit(book, AS_OF)


def test_before_fit_and_bad_parameters() -> None:
    """Check the not-fitted error and a parameter error in scikit-learn's form."""
    with pytest.raises(NotFittedError, match="This RetentionModel instance is not fitted yet"):
        RetentionModel().predict()
    with pytest.raises(InvalidParameterError, match="The 'windows' parameter of RetentionModel"):
        RetentionModel(windows=0).fit(renewal_book(50), AS_OF)


def test_a_history_without_departures_says_what_to_do() -> None:
    """Check that a book where nobody ever left raises an error naming the fix."""
    contracts = pd.DataFrame(
        {
            "client_id": [f"C{i}" for i in range(20)],
            "product_id": ["P"] * 20,
            "start_date": ["2022-01-01"] * 20,
        }
    )
    book = cs.Book.from_frames(contracts=contracts)
    with pytest.raises(ValueError, match=r"0 departures of clients.*needs both departures"):
        RetentionModel().fit(book, AS_OF)


def test_purchases_have_no_contract_level() -> None:
    """Check that a Book of purchases is scored by recency and refuses predict_contracts."""
    rng = np.random.default_rng(0)
    n = 3000
    lines = pd.DataFrame(
        {
            "client_id": rng.integers(0, 150, n),
            "product_id": rng.choice(["A", "B", "C"], n),
            "timestamp": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
            "amount": rng.uniform(5, 50, n),
        }
    )
    book = cs.Book.from_transactions(lines)
    model = RetentionModel(horizon="90D").fit(book, "2024-03-01")
    assert model.purchases_
    risk = model.predict()
    assert risk["p_leave"].between(0, 1).all()
    with pytest.raises(ValueError, match="no model of product lines"):
        model.predict_contracts()


def test_parents_roll_up_their_children_by_value() -> None:
    """Check that a parent's p_leave is its children's, weighted by their annual value."""
    frames = renewal_frames(150, seed=5)
    clients = frames["clients"].copy()
    clients["parent_id"] = np.where(np.arange(len(clients)) < 10, "GROUP", None)
    book = cs.Book.from_frames(
        contracts=frames["contracts"], clients=clients, events=frames["events"]
    )
    model = RetentionModel(contracts=False).fit(book, AS_OF)
    risk = model.predict().set_index("client_id")
    parents = model.predict_parents().set_index("parent_id")
    children = risk.loc[risk.index.intersection([f"C{i:03d}" for i in range(10)])]
    expected = (children["p_leave"] * children["annual_value"]).sum() / children[
        "annual_value"
    ].sum()
    assert parents.loc["GROUP", "p_leave"] == pytest.approx(expected)
    assert parents.loc["GROUP", "annual_value"] == pytest.approx(children["annual_value"].sum())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), model=st.sampled_from(["logistic", "lightgbm"]))
def test_probabilities_and_curves_keep_their_invariants(seed: int, model: str) -> None:
    """Check p_leave in [0, 1], non-increasing survival and value at risk = p x value."""
    book = renewal_book(200, seed=seed)
    fitted = RetentionModel(model=model, n_estimators=20, windows=12, contracts=False)
    fitted.fit(book, AS_OF)
    risk = fitted.predict()
    assert risk["p_leave"].between(0, 1).all()
    np.testing.assert_allclose(risk["value_at_risk"], risk["p_leave"] * risk["annual_value"])
    curve = fitted.survival()[survival_columns()].to_numpy()
    assert ((curve >= 0) & (curve <= 1)).all()
    assert (np.diff(curve, axis=1) <= 1e-12).all()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_the_order_of_input_rows_changes_nothing(seed: int) -> None:
    """Check that shuffling the contracts, clients and events tables gives the same predictions."""
    frames = renewal_frames(120, seed=7)
    rng = np.random.default_rng(seed)
    shuffled = {name: f.iloc[rng.permutation(len(f))] for name, f in frames.items()}
    a = RetentionModel(contracts=False).fit(
        cs.Book.from_frames(
            contracts=frames["contracts"], clients=frames["clients"], events=frames["events"]
        ),
        AS_OF,
    )
    b = RetentionModel(contracts=False).fit(
        cs.Book.from_frames(
            contracts=shuffled["contracts"],
            clients=shuffled["clients"],
            events=shuffled["events"],
        ),
        AS_OF,
    )
    left = a.predict().sort_values("client_id").reset_index(drop=True)
    right = b.predict().sort_values("client_id").reset_index(drop=True)
    np.testing.assert_allclose(left["p_leave"], right["p_leave"], atol=1e-6)
    assert left["client_id"].tolist() == right["client_id"].tolist()


def test_satisfaction_readings_give_its_trend_in_words() -> None:
    """Check that satisfaction events give the last score, its change and the sentence."""
    from crosssell.retention import _sentence

    contracts = pd.DataFrame(
        {"client_id": ["A", "B"], "product_id": ["P", "P"], "start_date": ["2023-01-01"] * 2}
    )
    events = pd.DataFrame(
        {
            "client_id": ["A", "A", "B"],
            "date": ["2024-01-10", "2024-06-01", "2024-05-01"],
            "type": ["satisfaction"] * 3,
            "detail": ["8", "4", "9"],
        }
    )
    with pytest.warns(cs.EventTypeWarning):
        book = cs.Book.from_frames(contracts=contracts, events=events)
    model = RetentionModel()
    model.purchases_ = False
    model.horizon_ = pd.Timedelta("180D")
    a = model._arrays(book, pd.Timestamp(AS_OF))
    cache: dict[object, object] = {}
    snap, _ = model._snapshot(a, a.as_of, cache)
    units = model._units(a, a.as_of, False, cache)
    x = pd.DataFrame(snap.x, columns=snap.names)
    assert x["satisfaction_last"].tolist() == [4.0, 9.0]
    assert x["satisfaction_change"].iloc[0] == -4.0
    text = _sentence(
        "satisfaction", a, snap, units, np.array([0, 1]), purchases=False, user_names=[]
    )
    assert text[0] == "satisfaction fell from 8 to 4 since 2024-01-10"
    assert text[1] == "satisfaction is 9 of 10"


def test_health_trend_reads_the_earlier_health_from_the_book_as_it_stood():
    """Check that the earlier health is predict() at the earlier date, and the change its gap."""
    book = cs.datasets.demo()
    model = cs.RetentionModel().fit(book, "2025-06-30")
    trend = model.health_trend(since="120D").set_index("client_id")
    before = model.predict(as_of="2025-03-02").set_index("client_id")["health"]
    both = trend.index.intersection(before.index)
    assert len(both) > 100
    assert (trend.loc[both, "health_before"] == before.loc[both]).all()
    assert (trend.loc[both, "health_change"] == trend.loc[both, "health"] - before.loc[both]).all()
    assert trend.loc[trend.index.difference(before.index), "health_before"].isna().all()
    with pytest.raises(ValueError, match="positive span"):
        model.health_trend(since="-5D")
