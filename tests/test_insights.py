"""Tests of whitespace: value left on the table per product (or family) and segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.insights import plot_whitespace, whitespace
from crosssell.rules import AlreadyHeld, DoNotContact, Policy

AS_OF = "2025-06-30"

PRODUCTS = pd.DataFrame(
    {
        "product_id": ["A1", "A2", "B1"],
        "family": ["A", "A", "B"],
        "tier": [1, 2, 1],
        "price": [100.0, 300.0, 200.0],
        "name": ["A basic", "A plus", "B basic"],
    }
)
CLIENTS = pd.DataFrame(
    {
        "client_id": ["C1", "C2", "C3", "C4"],
        "segment": ["small", "small", "large", None],
        "do_not_contact": [False, False, True, False],
    }
)
CONTRACTS = pd.DataFrame(
    {
        "client_id": ["C1", "C2", "C3", "C4", "C4"],
        "product_id": ["A1", "B1", "A1", "A2", "B1"],
        "start_date": ["2024-01-01"] * 5,
    }
)
EVENTS = pd.DataFrame(
    {
        "client_id": ["C1", "C2", "C3"],
        "date": ["2025-01-01", "2025-02-01", "2025-03-01"],
        "type": ["need", "need", "need"],
        "product_id": ["B1", "A", "A2"],
    }
)


@pytest.fixture(scope="module")
def rec() -> cs.Recommender:
    book = cs.Book.from_frames(
        contracts=CONTRACTS, products=PRODUCTS, clients=CLIENTS, events=EVENTS
    )
    policy = Policy([AlreadyHeld(), DoNotContact()])
    return cs.Recommender(scorer=cs.scorers.Popularity(), policy=policy, k=2).fit(book, AS_OF)


def _cell(ws: pd.DataFrame, key: str, item: str, group: str) -> pd.Series:
    return ws[(ws[key] == item) & (ws["segment"] == group)].iloc[0]


def test_holders_and_needs(rec: cs.Recommender) -> None:
    """Check that holders and stated needs are counted per product and segment."""
    ws = whitespace(rec)
    assert len(ws) == 3 * 3
    assert _cell(ws, "product_id", "A1", "small")["holders"] == 1
    assert _cell(ws, "product_id", "B1", "(none)")["holders"] == 1
    # C2 named the family A: a need for each of its products.
    assert _cell(ws, "product_id", "A1", "small")["needs"] == 1
    assert _cell(ws, "product_id", "A2", "small")["needs"] == 1
    assert _cell(ws, "product_id", "B1", "small")["needs"] == 1
    assert _cell(ws, "product_id", "A2", "large")["needs"] == 1


def test_offered_value_matches_the_offers(rec: cs.Recommender) -> None:
    """Check that offered value sums the expected value of the recommended offers."""
    ws = whitespace(rec, by=None)
    offers = rec.recommend(explain=False)
    want = offers.groupby("product_id")["expected_value"].sum()
    got = ws.set_index("product_id")["offered_value"]
    assert np.allclose(got.reindex(want.index), want)
    assert ws["offers"].sum() == len(offers)
    assert set(ws["group"]) == {"all"}


def test_blocked_by_rule(rec: cs.Recommender) -> None:
    """Check that candidates blocked by a rule are counted under that rule, per segment."""
    ws = whitespace(rec)
    large = ws[ws["segment"] == "large"]
    # C3 holds A1 and is do-not-contact: A2 (upsell) and B1 (cross-sell) are blocked.
    assert large["blocked_by_do_not_contact"].sum() == 2
    assert large["allowed_value"].sum() == 0
    assert large["candidate_value"].sum() > 0
    assert (ws["allowed_value"] <= ws["candidate_value"] + 1e-9).all()
    assert (ws["blocked"] <= ws["candidates"]).all()


def test_family_level(rec: cs.Recommender) -> None:
    """Check that the family level counts a client once per family and sums values."""
    fam = whitespace(rec, level="family")
    prod = whitespace(rec)
    assert fam.columns[:2].tolist() == ["family", "segment"]
    # C4 holds A2 and B1: one holder of family A in the "(none)" group.
    assert _cell(fam, "family", "A", "(none)")["holders"] == 1
    assert np.isclose(fam["offered_value"].sum(), prod["offered_value"].sum())


def test_cheap_mode_and_errors(rec: cs.Recommender) -> None:
    """Check that candidates=False skips the scan, and bad parameters are refused."""
    ws = whitespace(rec, candidates=False)
    assert "candidate_value" not in ws.columns
    with pytest.raises(ValueError, match="'by' parameter of whitespace must be a column"):
        whitespace(rec, by="nope")
    with pytest.raises(ValueError, match="'level' parameter of whitespace must be a str among"):
        whitespace(rec, level="sku")  # type: ignore[arg-type]


def test_plot_whitespace(rec: cs.Recommender) -> None:
    """Check that the heatmap has one row per item and one column per segment."""
    pytest.importorskip("matplotlib")
    fig = plot_whitespace(whitespace(rec, level="family"), "candidate_value")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["(none)", "large", "small"]
    assert len(ax.get_yticklabels()) == 2
    assert ax.get_title() == "candidate value"
    with pytest.raises(ValueError, match="'value' parameter of plot_whitespace"):
        plot_whitespace(whitespace(rec), "nope")
