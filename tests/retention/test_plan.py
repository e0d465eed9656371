"""The account plan with a retention model: value at risk orders renewals, retain first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.rules import route_sales

_DAY = "2025-06-30"


@pytest.fixture(scope="module")
def fitted() -> tuple[cs.Recommender, cs.RetentionModel]:
    book = cs.datasets.demo()
    rec = cs.Recommender(policy=route_sales()).fit(book, _DAY)
    return rec, cs.RetentionModel().fit(book, _DAY)


def test_renewals_are_ordered_by_their_contracts_value_at_risk(fitted):
    """Check that a renewal's priority is its contract's value at risk times the deadline."""
    rec, model = fitted
    p = cs.plan(rec, retention=model)
    renew = p.actions[p.actions["action"] == "renew"]
    contracts = model.predict_contracts().sort_values("value_at_risk", kind="stable")
    top = contracts.drop_duplicates(["client_id", "product_id"], keep="last")
    due = renew.merge(top, on=["client_id", "product_id"], how="left", suffixes=("", "_c"))
    days_left = (pd.to_datetime(due["end_date"]) - pd.Timestamp(_DAY)).dt.days.to_numpy()
    deadline = 2.0 - np.clip(days_left / 60, 0, 1)
    expected = due["value_at_risk_c"].to_numpy(dtype=float) * deadline
    assert len(renew) > 20
    np.testing.assert_allclose(renew["priority"].to_numpy(), expected, rtol=1e-6, atol=1e-9)
    # the columns a CRM reads beside the action
    per_client = model.predict().set_index("client_id")
    shown = p.actions.set_index("client_id")
    known = shown.index.isin(per_client.index)
    assert shown.loc[~known, "p_leave"].isna().all()  # the model says nothing of them
    shown = shown[known]
    np.testing.assert_allclose(shown["p_leave"], per_client.loc[shown.index, "p_leave"], rtol=1e-12)
    assert (shown["at_risk"] == ((per_client.loc[shown.index, "band"] == "at risk")
                                 & (shown["action"] == "renew"))).all()  # fmt: skip


def test_signals_order_is_kept_for_comparison(fitted):
    """Check that retention_order='signals' orders as the plan without a model does."""
    rec, model = fitted
    with_model = cs.plan(rec, retention=model, retention_order="signals").actions
    without = cs.plan(rec).actions
    pd.testing.assert_series_equal(
        with_model.set_index("client_id")["priority"].sort_index(),
        without.set_index("client_id")["priority"].sort_index(),
    )
    assert "p_leave" in with_model.columns
    assert "p_leave" not in without.columns


def test_clients_likely_to_leave_are_called_on_not_sold_to(fitted):
    """Check retain_first: no proposal above the threshold, a check-in saying why instead."""
    rec, model = fitted
    threshold = 0.3
    p = cs.plan(rec, retention=model, retain_first=threshold).actions
    risky = p["p_leave"] >= threshold
    assert risky.any()
    assert not (risky & (p["action"] == "propose")).any()
    held = p[p["reason"].str.startswith("retain first: risk of leaving within 180 days: ")]
    assert len(held) >= 1
    assert (held["action"] == "check_in").all()
    assert (held["p_leave"] >= threshold).all()
    baseline = cs.plan(rec).actions.set_index("client_id")
    assert (baseline.loc[held["client_id"], "action"] == "propose").all()
    # the reasons are the model's, in the talking points of clients at risk too
    first = held.iloc[0]
    reasons = model.predict().set_index("client_id").loc[first["client_id"], "reasons"]
    assert first["reason"].endswith(reasons)


def test_retain_first_needs_a_model(fitted):
    """Check that retain_first without a retention model is refused."""
    rec, _ = fitted
    with pytest.raises(ValueError, match="retain_first needs a retention model"):
        cs.plan(rec, retain_first=0.5)
    with pytest.raises(ValueError, match="retention_order"):
        cs.plan(rec, retention=fitted[1], retention_order="random")


def test_plan_pages_show_each_clients_health(fitted, tmp_path):
    """Check that a manager's page shows the health and value at risk of each listed client."""
    from crosssell.html import write_plan_pages

    rec, model = fitted
    p = cs.plan(rec, capacity=5, retention=model)
    pages = write_plan_pages(p, tmp_path)
    owner = p.owners[0]
    page = next(x for x in pages if owner in x.name).read_text(encoding="utf-8")
    first = p.by_owner()[owner].iloc[0]
    if pd.notna(first["health"]):
        assert f"health {int(first['health'])}/100" in page
    assert "value at risk" in page
    plain = write_plan_pages(cs.plan(rec, capacity=5), tmp_path / "plain")
    assert "health " not in next(x for x in plain if owner in x.name).read_text(encoding="utf-8")
