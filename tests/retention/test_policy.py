"""RetainFirst: the policy holds back proposals to clients a retention model says may leave."""

from __future__ import annotations

import pytest

import crosssell as cs
from crosssell.rules import RetainFirst, route_sales

_DAY = "2025-06-30"


@pytest.fixture(scope="module")
def held() -> tuple[cs.Recommender, RetainFirst]:
    book = cs.datasets.demo()
    model = cs.RetentionModel().fit(book, _DAY)
    rule = RetainFirst.from_model(model, threshold=0.3)
    rec = cs.Recommender(policy=route_sales().with_rules(rule), k=3).fit(book, _DAY)
    return rec, rule


def test_clients_likely_to_leave_get_no_offer_and_are_told_why(held):
    """Check that the held clients get no offer, and the report says 'retain first' and why."""
    rec, rule = held
    assert len(rule.risk) >= 1
    offers = rec.recommend(explain=False)
    assert not set(offers["client_id"]) & set(rule.risk)
    report = rec.no_offer_report().set_index("client_id")
    for client, (chance, reasons) in rule.risk.items():
        if client not in report.index:
            continue  # holding nothing at as_of: no report row either way
        assert "retain_first" in report.loc[client, "rules"]
        assert (
            f"retain first: {chance * 100:.0f}% risk of leaving within 180 days"
            in (report.loc[client, "reason"])
        )
        assert reasons in report.loc[client, "reason"]


def test_at_another_date_it_blocks_nothing_and_warns(held):
    """Check that the risk of one date is never read at another (a backtest's cutoff)."""
    rec, _ = held
    with pytest.warns(cs.CrossSellWarning, match="blocks nothing"):
        earlier = cs.Recommender(policy=rec.policy, k=3).fit(cs.datasets.demo(), "2024-12-31")
    assert "retain_first" not in set(earlier.suppressed()["rule"])


def test_it_is_saved_and_read_back_and_holds_on_the_one_client_path(held, tmp_path):
    """Check a save round trip, and that new events of a held client still give no offer."""
    rec, rule = held
    path = rec.save(tmp_path / "model.crosssell")
    loaded = cs.load(path)
    assert loaded.recommend(explain=False).equals(rec.recommend(explain=False))
    client = next(iter(c for c in rule.risk if rec.book_.client_ids.index_of(c) >= 0))
    need = [{"date": _DAY, "type": "need", "product_id": "CRM-1"}]
    assert loaded.recommend_one(client, events=need) == []
    assert loaded.no_offer_reason(client, events=need)[1][0] == "retain_first"


def test_bad_risk_tables_are_refused():
    """Check that a chance outside [0, 1] or a bare number is refused with the expected form."""
    with pytest.raises(ValueError, match="chance of leaving in"):
        RetainFirst(risk={"C1": (1.5, "")})
    with pytest.raises(ValueError, match="chance of leaving in"):
        RetainFirst(risk={"C1": 0.5})  # type: ignore[dict-item]
