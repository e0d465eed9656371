"""Tests of the account plan: one next best action per client, and each manager's list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.account_plan import ACTIONS, plan, write_plan_csv
from crosssell.exceptions import NotFittedError, SchemaError
from crosssell.rules import (
    AlreadyHeld,
    DoNotContact,
    GroupHeld,
    LowSatisfaction,
    OpenComplaint,
    Policy,
    RenewalFirst,
    RuleContext,
)

AS_OF = "2025-06-30"

PRODUCTS = pd.DataFrame(
    {
        "product_id": ["CRM-1", "CRM-2", "ERP-1", "BI-1"],
        "family": ["CRM", "CRM", "ERP", "BI"],
        "tier": [1, 2, 1, 1],
        "price": [100.0, 300.0, 500.0, 200.0],
        "name": ["CRM Basic", "CRM Plus", "ERP Basic", "BI Basic"],
    }
)

# A has a complaint and a renewal; B and B2 renew (B2 at risk: a churn signal); C is offered
# something; D has not been contacted at all; E is fine and was called last week; P is the parent
# of S; U has no owner.
CLIENTS = pd.DataFrame(
    {
        "client_id": ["A", "B", "B2", "C", "D", "E", "P", "S", "U"],
        "owner": ["AM1", "AM1", "AM1", "AM1", "AM1", "AM1", "AM2", "AM2", None],
        "segment": ["mid"] * 9,
        "parent_id": [None, None, None, None, None, None, None, "P", None],
        "satisfaction": [8, 8, 8, 8, 3, 3, 8, 8, 8],
    }
)

CONTRACTS = pd.DataFrame(
    {
        "client_id": ["A", "B", "B2", "C", "D", "E", "P", "P", "S", "U"],
        "product_id": [
            "CRM-1",
            "CRM-1",
            "CRM-1",
            "ERP-1",
            "BI-1",
            "BI-1",
            "ERP-1",
            "CRM-1",
            "BI-1",
            "ERP-1",
        ],
        "start_date": ["2024-07-15", "2024-07-20", "2024-08-10"] + ["2023-01-01"] * 7,
        "end_date": ["2025-07-15", "2025-07-20", "2025-08-10"] + [None] * 7,
        "value": [100.0, 100.0, 50.0, 500.0, 200.0, 200.0, 500.0, 100.0, 200.0, 500.0],
        "contract_id": [f"K{i}" for i in range(10)],
    }
)

EVENTS = pd.DataFrame(
    {
        "client_id": ["A", "B2", "A", "B", "B2", "C", "E", "P", "S", "U", "C"],
        "date": [
            "2025-06-01",
            "2025-06-15",
            "2025-06-20",
            "2025-06-20",
            "2025-06-20",
            "2025-06-20",
            "2025-06-20",
            "2025-06-20",
            "2025-06-20",
            "2025-06-20",
            "2025-05-02",
        ],
        "type": ["complaint_opened", "churn_signal"] + ["contact"] * 8 + ["need"],
        "ref": ["R1"] + [None] * 10,
        "detail": ["invoice <wrong>"] + [None] * 9 + ["wants reporting"],
        "product_id": [None] * 10 + ["BI-1"],
    }
)


def _book(clients: pd.DataFrame = CLIENTS, contracts: pd.DataFrame = CONTRACTS) -> cs.Book:
    return cs.Book.from_frames(
        contracts=contracts, products=PRODUCTS, clients=clients, events=EVENTS
    )


def _policy(*extra: object) -> Policy:
    rules = [
        AlreadyHeld(),
        OpenComplaint(),
        RenewalFirst(),
        LowSatisfaction(),
        DoNotContact(),
        *extra,
    ]
    return Policy(rules)  # type: ignore[arg-type]


def _fit(book: cs.Book | None = None, policy: Policy | None = None) -> cs.Recommender:
    rec = cs.Recommender(scorer=cs.scorers.Popularity(), policy=policy or _policy(), k=3)
    return rec.fit(book or _book(), AS_OF)


@pytest.fixture(scope="module")
def fitted() -> cs.Recommender:
    return _fit(policy=_policy(GroupHeld()))


def _row(p: object, client: str) -> pd.Series:
    actions = p.actions  # type: ignore[attr-defined]
    return actions[actions["client_id"] == client].iloc[0]


def test_route_sales_order(fitted: cs.Recommender) -> None:
    """Check that a complaint beats a renewal, which beats a proposal, then check-in, then none."""
    got = plan(fitted).actions.set_index("client_id")["action"].astype(str).to_dict()
    assert got == {
        "A": "resolve_complaint",
        "B": "renew",
        "B2": "renew",
        "C": "propose",
        "D": "check_in",
        "E": "none",
        "P": "propose",
        "S": "propose",
        "U": "propose",
    }


def test_complaint_names_the_oldest_with_its_age(fitted: cs.Recommender) -> None:
    """Check that the complaint action names the complaint, its subject and its age in days."""
    row = _row(plan(fitted), "A")
    assert row["reason"] == "complaint #R1 about invoice <wrong> open since 2025-06-01 (29 days)"
    assert row["due"] == pd.Timestamp(AS_OF)
    assert row["open_complaints"] == 1


def test_renewal_carries_contract_value_and_upsell(fitted: cs.Recommender) -> None:
    """Check that a renewal names its contract and value, and the upsell of it rides along."""
    row = _row(plan(fitted), "B")
    assert (row["product_id"], row["contract_id"], row["value"]) == ("CRM-1", "K1", 100.0)
    assert row["upsell_product_id"] == "CRM-2"
    assert row["materials"] == ("CRM Basic (CRM)", "CRM Plus (CRM)")
    assert any(p.startswith("an upsell may ride along: CRM Plus") for p in row["talking_points"])
    # Talks are due two weeks before the contract ends.
    assert row["due"] == pd.Timestamp("2025-07-06")


def test_at_risk_renewal_comes_first(fitted: cs.Recommender) -> None:
    """Check that a renewal at risk is listed before a safer, larger one of the same manager."""
    mine = plan(fitted).by_owner()["AM1"]
    renewals = mine[mine["action"] == "renew"]
    assert renewals["client_id"].tolist() == ["B2", "B"]
    assert renewals["at_risk"].tolist() == [True, False]
    assert any("churn signal on 2025-06-15" in p for p in renewals.iloc[0]["talking_points"])


def test_capacity_cut_and_summary(fitted: cs.Recommender) -> None:
    """Check that a manager's list is cut at capacity and what fell below it is summarised."""
    p = plan(fitted, capacity=2)
    assert p.by_owner()["AM1"]["client_id"].tolist() == ["A", "B2"]
    assert p.by_owner(cut=False)["AM1"]["client_id"].tolist() == ["A", "B2", "B", "C", "D"]
    summary = p.below_cut().set_index("owner").loc["AM1"]
    assert (summary["listed"], summary["below_cut"]) == (2, 3)
    assert (summary["renew"], summary["propose"], summary["check_in"]) == (1, 1, 1)
    assert summary["nothing_to_do"] == 1
    assert summary["priority_below_cut"] > 0


def test_capacity_from_a_clients_column() -> None:
    """Check that capacity may come from a column of the clients table, per owner."""
    clients = CLIENTS.assign(capacity=[1, 1, 1, 1, 1, 1, 5, 5, None])
    p = plan(_fit(_book(clients=clients)), capacity="capacity")
    assert len(p.by_owner()["AM1"]) == 1
    assert len(p.by_owner()["AM2"]) == 2
    assert p.capacities.to_dict() == {"AM1": 1.0, "AM2": 5.0}


def test_check_in_after_quiet_days(fitted: cs.Recommender) -> None:
    """Check that a client with nothing to propose gets a check-in once quiet for N days."""
    assert str(_row(plan(fitted), "E")["action"]) == "none"
    assert str(_row(plan(fitted, check_in_days=10), "E")["action"]) == "check_in"
    row = _row(plan(fitted), "D")
    assert row["reason"] == "no contact on record; keep the relationship"


def test_nothing_says_why(fitted: cs.Recommender) -> None:
    """Check that a client with nothing to do is told why (here: low satisfaction)."""
    row = _row(plan(fitted), "E")
    assert row["reason"].startswith("nothing to propose: satisfaction is 3.0")
    assert pd.isna(row["rank_in_owner"])
    assert not row["within_capacity"]


def test_subsidiary_not_offered_the_parents_group_product() -> None:
    """Check that a subsidiary is not offered what its parent holds for the group."""
    without_rule = _fit()
    raw = without_rule.recommend(["S"])
    assert "ERP-1" in raw["product_id"].tolist()
    row = _row(plan(without_rule), "S")
    assert not any(m.startswith(("ERP Basic", "CRM Basic")) for m in row["materials"])
    assert "ERP Basic" in row["group_holds"]
    assert "BI Basic" in row["group_holds"]


def test_group_held_rule_in_the_policy(fitted: cs.Recommender) -> None:
    """Check that GroupHeld, added to a policy, blocks the parent's products and says why."""
    assert "ERP-1" not in fitted.recommend(["S"])["product_id"].tolist()
    assert "held by the parent account P under a group contract" in fitted.why_not("S", "ERP-1")


def test_group_column_limits_the_rule() -> None:
    """Check that with a group column only the parent's flagged contracts cover the group."""
    contracts = CONTRACTS.assign(group=[False] * 6 + [True, False, False, False])
    book = _book(contracts=contracts)
    ctx = RuleContext.at(book, AS_OF)
    blocks = GroupHeld(group_column="group").blocks(ctx)
    products = book.product_ids.to_external(blocks.product).tolist()
    assert products == ["ERP-1"]
    with pytest.raises(SchemaError, match="'grp' is missing"):
        GroupHeld(group_column="grp").blocks(ctx)


def test_unowned_accounts_listed_apart(fitted: cs.Recommender) -> None:
    """Check that accounts without an owner are in `unowned`, not in any manager's list."""
    p = plan(fitted, capacity=1)
    assert p.unowned["client_id"].tolist() == ["U"]
    assert "U" not in pd.concat(p.by_owner(cut=False).values())["client_id"].tolist()
    assert not _row(p, "U")["within_capacity"]


def test_stated_needs_become_talking_points(fitted: cs.Recommender) -> None:
    """Check that a need the client stated is among the talking points."""
    points = _row(plan(fitted), "C")["talking_points"]
    assert "stated a need for BI Basic on 2025-05-02" in points


def test_as_of_must_match_the_fit(fitted: cs.Recommender) -> None:
    """Check that a plan at another date than the fit is refused with a clear message."""
    with pytest.raises(ValueError, match=r"fitted at \(2025-06-30\)\. Got '2025-07-31'"):
        plan(fitted, as_of="2025-07-31")
    assert plan(fitted, as_of=AS_OF).as_of == pd.Timestamp(AS_OF)


def test_parameter_errors(fitted: cs.Recommender) -> None:
    """Check that bad parameters are refused in scikit-learn's wording."""
    with pytest.raises(ValueError, match="'capacity' parameter of plan must be an int"):
        plan(fitted, capacity=0)
    with pytest.raises(ValueError, match="'period' parameter of plan must be a positive"):
        plan(fitted, period="-3D")
    with pytest.raises(ValueError, match="'check_in_days' parameter of plan must be an int"):
        plan(fitted, check_in_days=0)
    with pytest.raises(SchemaError, match="capacity column 'cap' is missing"):
        plan(fitted, capacity="cap")
    with pytest.raises(NotFittedError):
        plan(cs.Recommender())


def test_write_plan_csv(tmp_path: Path, fitted: cs.Recommender) -> None:
    """Check that the CSV holds one row per client with lists joined by ' | '."""
    out = write_plan_csv(plan(fitted), tmp_path / "sub" / "plan.csv")
    back = pd.read_csv(out)
    assert len(back) == 9
    row = back[back["client_id"] == "B"].iloc[0]
    assert row["materials"] == "CRM Basic (CRM) | CRM Plus (CRM)"
    assert row["due"] == "2025-07-06"


def test_demo_book_plan_is_consistent() -> None:
    """Check on the demo book that ranks run 1..n per owner and the cut follows capacity."""
    book = cs.datasets.demo()
    rec = cs.Recommender(policy=cs.rules.route_sales()).fit(book, cs.datasets.demo_as_of())
    p = plan(rec, capacity=7)
    for owner, rows in p.by_owner(cut=False).items():
        assert rows["rank_in_owner"].tolist() == list(range(1, len(rows) + 1)), owner
        assert rows["within_capacity"].sum() == min(7, len(rows))
        codes = rows["action"].map(ACTIONS.index).to_numpy()
        assert (np.diff(codes) >= 0).all()


@st.composite
def _random_book(draw: st.DrawFn) -> tuple[cs.Book, dict[str, tuple[bool, bool]]]:
    n = draw(st.integers(min_value=1, max_value=8))
    ids = [f"K{i}" for i in range(n)]
    complaint = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    due = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    quiet = draw(st.lists(st.integers(min_value=0, max_value=400), min_size=n, max_size=n))
    owner = draw(st.lists(st.sampled_from(["AM1", "AM2", None]), min_size=n, max_size=n))
    as_of = pd.Timestamp(AS_OF)
    contracts = pd.DataFrame(
        {
            "client_id": ids,
            "product_id": draw(
                st.lists(st.sampled_from(["CRM-1", "ERP-1", "BI-1"]), min_size=n, max_size=n)
            ),
            "start_date": ["2024-01-01"] * n,
            "end_date": [str((as_of + pd.Timedelta(days=20)).date()) if d else None for d in due],
            "value": [100.0] * n,
        }
    )
    events = pd.DataFrame(
        {
            "client_id": ids + [i for i, c in zip(ids, complaint, strict=True) if c],
            "date": [str((as_of - pd.Timedelta(days=q)).date()) for q in quiet]
            + ["2025-06-01"] * sum(complaint),
            "type": ["contact"] * n + ["complaint_opened"] * sum(complaint),
        }
    )
    clients = pd.DataFrame({"client_id": ids, "owner": owner})
    book = cs.Book.from_frames(
        contracts=contracts, products=PRODUCTS, clients=clients, events=events
    )
    truth = {i: (c, d) for i, c, d in zip(ids, complaint, due, strict=True)}
    return book, truth


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_random_book())
def test_exactly_one_action_per_client(case: tuple[cs.Book, dict[str, tuple[bool, bool]]]) -> None:
    """Check that every client gets exactly one action, complaints and renewals winning."""
    book, truth = case
    p = plan(_fit(book))
    actions = p.actions
    assert sorted(actions["client_id"]) == sorted(truth)
    assert actions["client_id"].is_unique
    assert set(actions["action"].astype(str)) <= set(ACTIONS)
    for client, (complaint, due) in truth.items():
        action = str(_row(p, client)["action"])
        if complaint:
            assert action == "resolve_complaint"
        elif due:
            assert action == "renew"
        else:
            assert action in {"propose", "check_in", "none"}


# ------------------------------------------------------------------------- purchase books


def _purchases() -> cs.Book:
    """R buys TEA every 30 days, last 90 days ago; N bought TEA three times a week ago."""
    days = ["2025-01-01", "2025-01-31", "2025-03-02", "2025-04-01"]
    lines = pd.DataFrame(
        {
            "client_id": ["R"] * 4 + ["N"] * 3 + ["R", "N"],
            "product_id": ["TEA"] * 7 + ["CUP", "CUP"],
            "timestamp": [
                *days,
                "2025-06-09",
                "2025-06-16",
                "2025-06-23",
                "2025-02-01",
                "2025-02-01",
            ],
            "amount": [10.0] * 7 + [5.0, 5.0],
        }
    )
    return cs.Book.from_transactions(lines, lookback="120D")


def test_renewal_first_blocks_nothing_on_a_purchase_book() -> None:
    """Check that a look-back end is not read as a contract term to renew."""
    book = _purchases()
    # R's TEA holding "ends" on 2025-07-30, within 60 days of as_of: a contract would be due
    assert len(RenewalFirst().blocks(RuleContext.at(book, AS_OF))) == 0
    contracts = book.contract_arrays
    assert (contracts.end[contracts.client == 0] > pd.Timestamp(AS_OF).value).any()


def test_plan_on_purchases_asks_to_reorder_an_overdue_regular_product() -> None:
    """Check that the retention action on purchases is a reorder, with its rhythm, never renew."""
    book = _purchases()
    rec = cs.Recommender(scorer=cs.scorers.Popularity(), policy=_policy(), k=3).fit(book, AS_OF)
    p = plan(rec)
    assert "renew" not in set(p.actions["action"])
    row = _row(p, "R")
    assert row["action"] == "reorder"
    assert row["product_id"] == "TEA"
    assert row["reason"] == (
        "reorder due for TEA: bought every ~30 days (4 orders), last on 2025-04-01, 90 days ago"
    )
    # 10.0 an order, every 30 days: a year of it is worth about 121.67
    assert row["value"] == pytest.approx(10.0 * 365 / 30)
    # N's rhythm is weekly and its last order a week ago: nothing is overdue
    assert _row(p, "N")["action"] != "reorder"


def test_a_contract_book_never_gets_a_reorder() -> None:
    """Check that contract books keep renew as their retention action."""
    p = plan(_fit())
    assert "reorder" not in set(p.actions["action"])
    assert "renew" in set(p.actions["action"])
