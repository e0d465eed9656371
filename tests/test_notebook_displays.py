"""Notebook displays: short reprs, and HTML cards with the facts a data scientist looks for."""

from __future__ import annotations

import pandas as pd
import pytest

import crosssell as cs
from crosssell.rules import route_sales

_DAY = "2025-06-30"


@pytest.fixture(scope="module")
def fitted() -> cs.Recommender:
    return cs.Recommender(policy=route_sales(), k=3).fit(cs.datasets.demo(), _DAY)


def test_book_card_shows_sizes_dates_and_rejected_rows_escaped():
    """Check the Book card: its summary table, dates, rejected counts, and ids escaped."""
    contracts = pd.DataFrame(
        {"client_id": ["<b>C1</b>", "C2", "C3"], "product_id": ["P1", "P1", "P2"],
         "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
         "end_date": [None, "2023-01-01", None]}
    )  # fmt: skip
    with pytest.warns(cs.DataWarning, match="set aside"):
        book = cs.Book.from_frames(contracts=contracts, errors="collect")
    html = book._repr_html_()
    assert "<b>Book</b>" in html
    assert "clients: 2" in html
    assert "2024-01-01 to 2024-03-01" in html
    assert "rejected rows (book.rejected), by table and rule" in html
    assert "end_before_start" in html
    assert "<b>C1</b>" not in html  # an id never becomes markup
    assert len(repr(book)) < 160
    assert "\n" not in repr(book)


def test_recommender_card_before_and_after_fit(fitted):
    """Check the Recommender card: parameters unfitted; scorer, policy, date and blocks fitted."""
    unfitted = cs.Recommender(policy=route_sales(), k=3)._repr_html_()
    assert "not fitted" in unfitted
    assert "route_sales()" in unfitted
    html = fitted._repr_html_()
    facts = ("scorer: Ranker()", "as_of: 2025-06-30", "clients: 500", "offers per client (k): 3",
             "do_not_contact", "what the policy blocked at as_of, per rule")  # fmt: skip
    for fact in facts:
        assert fact in html
    blocked = fitted.suppressed()["rule"].value_counts()
    assert f"<td>{blocked['already_held']}</td>" in html


def test_account_plan_repr_is_short_and_its_card_counts_each_managers_list(fitted):
    """Check the plan: a one-line repr, and per manager the actions within capacity by kind."""
    p = cs.plan(fitted, capacity=5)
    text = repr(p)
    assert "\n" not in text
    assert text.startswith("AccountPlan(as_of=2025-06-30, period=7D")
    html = p._repr_html_()
    lists = p.by_owner()
    assert f"in the period&#x27;s lists: {sum(len(v) for v in lists.values())}" in html
    first = p.owners[0]
    assert f"<td>{first}</td>" in html
    assert "<th>capacity</th>" in html


def test_backtest_result_repr_is_short_and_its_card_has_the_summary(fitted):
    """Check the backtest: a one-line repr, and the summary with the lift in its card."""
    result = cs.backtest(fitted, cs.datasets.demo(), ["2024-12-31"], "180D", k=(5, 10),
                         n_boot=0, progress=False)  # fmt: skip
    text = repr(result)
    assert text == (
        "BacktestResult(cutoffs=[2024-12-31], horizon=180D, k=(5, 10), "
        "models=[crosssell, popularity])"
    )
    html = result._repr_html_()
    assert "summary(): averages over folds" in html
    assert "<th>lift</th>" in html
    pytest.importorskip("matplotlib")
    assert 'src="data:image/png;base64,' in html
