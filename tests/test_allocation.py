"""Tests of allocate: optimal plans under capacity, caps, quotas and shares, with reasons."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.allocation import Constraints, InfeasibleConstraintsError, allocate


def _offers(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame(columns)


def _holds(frame: pd.DataFrame, x: np.ndarray, c: Constraints) -> bool:
    """Whether choice ``x`` meets ``c``, written independently of the solver's rows."""
    picked = frame[x.astype(bool)]
    if c.per_client is not None and (picked.groupby("client_id").size() > c.per_client).any():
        return False
    if c.capacity is not None:
        effort = (
            picked["action"].map(c.effort).fillna(1.0)
            if isinstance(c.effort, dict)
            else pd.Series(1.0, index=picked.index)
        )
        used = effort.groupby(picked["owner"]).sum()
        for owner, hours in used.items():
            cap = c.capacity.get(owner) if isinstance(c.capacity, dict) else c.capacity
            if cap is not None and hours > cap + 1e-9:
                return False
    for column, quotas in (("family", c.family_quota), ("product_id", c.product_quota)):
        for name, (lo, hi) in quotas.items():
            count = int((picked[column] == name).sum())
            if (lo is not None and count < lo) or (hi is not None and count > hi):
                return False
    if c.exclude and frame.eval(c.exclude)[x.astype(bool)].any():
        return False
    for fam, share in c.family_share.items():
        if len(picked) and (picked["family"] == fam).sum() < share * len(picked) - 1e-9:
            return False
    return not c.must_include or bool(frame.eval(c.must_include)[~x.astype(bool)].eq(False).all())


def _brute(frame: pd.DataFrame, c: Constraints) -> float | None:
    best = None
    value = frame["expected_value"].to_numpy()
    for bits in itertools.product((0, 1), repeat=len(frame)):
        x = np.array(bits, dtype=float)
        if _holds(frame, x, c):
            v = float(value @ x)
            best = v if best is None else max(best, v)
    return best


@st.composite
def _problems(draw: st.DrawFn) -> tuple[pd.DataFrame, Constraints]:
    n = draw(st.integers(1, 7))
    frame = pd.DataFrame(
        {
            "client_id": [draw(st.sampled_from("ABCD")) for _ in range(n)],
            "owner": [draw(st.sampled_from(["AM1", "AM2"])) for _ in range(n)],
            "family": [draw(st.sampled_from(["ERP", "SEC"])) for _ in range(n)],
            "product_id": [draw(st.sampled_from(["P1", "P2", "P3"])) for _ in range(n)],
            "action": [draw(st.sampled_from(["propose", "renew"])) for _ in range(n)],
            "expected_value": [float(draw(st.integers(0, 20))) for _ in range(n)],
        }
    )
    capacity = draw(st.none() | st.integers(0, 3) | st.just({"AM1": 1}))
    effort = draw(st.none() | st.just({"renew": 2.0}))
    quota_lo = draw(st.none() | st.integers(0, 2))
    quota_hi = draw(st.none() | st.integers(0, 3))
    if quota_lo is not None and quota_hi is not None and quota_lo > quota_hi:
        quota_lo, quota_hi = quota_hi, quota_lo
    c = Constraints(
        capacity=capacity,
        effort=effort if capacity is not None else None,
        per_client=draw(st.none() | st.integers(1, 2)),
        family_quota={"ERP": (quota_lo, quota_hi)} if draw(st.booleans()) else {},
        family_share={"SEC": draw(st.sampled_from([0.25, 0.5]))} if draw(st.booleans()) else {},
        must_include="action == 'renew' and expected_value >= 15" if draw(st.booleans()) else None,
        product_quota={"P1": (draw(st.none() | st.just(1)), draw(st.none() | st.integers(1, 2)))}
        if draw(st.booleans())
        else {},
        exclude="expected_value < 3" if draw(st.booleans()) else None,
    )
    return frame, c


@settings(max_examples=200, deadline=None)
@given(_problems())
def test_allocation_is_optimal_and_respects_every_constraint(
    problem: tuple[pd.DataFrame, Constraints],
) -> None:
    """Check against brute force over every subset: same best value, every constraint met."""
    frame, c = problem
    best = _brute(frame, c)
    if best is None:
        with pytest.raises(InfeasibleConstraintsError):
            allocate(frame, c)
        return
    result = allocate(frame, c)
    assert result.objective == pytest.approx(best)
    assert _holds(frame, result.rows["chosen"].to_numpy(dtype=float), c)
    assert result.status == "optimal"
    if result.greedy_feasible:
        assert result.greedy_objective <= result.objective + 1e-9


def test_a_client_of_two_owners_does_not_make_a_row_dominated() -> None:
    """Check that C is still chosen when AM1's better rows are on clients AM2 serves anyway.

    AM1 fits one action; its rows on A and B rank before C, but A and B take AM2's actions
    (one per client), so AM1's best use of its visit is C: 3 in all, not 2.
    """
    frame = _offers(
        client_id=["A", "A", "A", "B", "A", "B", "C"],
        owner=["AM1", "AM1", "AM1", "AM1", "AM2", "AM2", "AM1"],
        expected_value=[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    )
    result = allocate(frame, Constraints(capacity={"AM1": 1}, per_client=1))
    assert result.objective == 3.0
    assert sorted(result.chosen["client_id"]) == ["A", "B", "C"]


def test_capacity_in_hours_beats_greedy() -> None:
    """Check a knapsack where best-first is not best: 10 hours, one long and two short actions."""
    frame = _offers(
        client_id=["A", "B", "C"],
        owner="AM1",
        action=["renew", "propose", "propose"],
        expected_value=[10.0, 6.0, 6.0],
    )
    c = Constraints(capacity=10, effort={"renew": 8.0, "propose": 5.0})
    result = allocate(frame, c)
    assert result.chosen["client_id"].tolist() == ["B", "C"]
    assert (result.objective, result.greedy_objective) == (12.0, 10.0)
    assert result.dropped["why"].tolist() == ["dropped: capacity of AM1 is full (10 of 10)"]


def test_shadow_price_of_a_capacity_is_the_next_best_action() -> None:
    """Check that one more visit for AM1 is worth the best action it had to leave out."""
    frame = _offers(client_id=["A", "B", "C"], owner="AM1", expected_value=[5.0, 3.0, 1.0])
    result = allocate(frame, Constraints(capacity=1))
    prices = result.shadow_prices
    assert prices["constraint"].tolist() == ["capacity of AM1 <= 1 actions"]
    assert prices["shadow_price"].iloc[0] == pytest.approx(3.0)
    assert prices["sentence"].iloc[0] == (
        "one more unit of capacity of AM1 is worth about 3 in expected value"
    )


def test_a_quota_left_slack_has_no_price() -> None:
    """Check that only binding constraints are priced."""
    frame = _offers(client_id=["A", "B"], family="ERP", expected_value=[5.0, 3.0])
    result = allocate(frame, Constraints(family_quota={"ERP": (None, 5)}))
    assert result.objective == 8.0
    assert result.shadow_prices.empty


def test_infeasible_constraints_are_named() -> None:
    """Check that a capacity smaller than what must be done names both constraints."""
    frame = _offers(
        client_id=["A", "B", "C"],
        owner=["AM1", "AM1", "AM2"],
        action=["renew", "renew", "propose"],
        family=["ERP", "SEC", "SEC"],
        expected_value=[0.0, 0.0, 4.0],
    )
    c = Constraints(
        capacity={"AM1": 1},
        family_quota={"SEC": (None, 5)},
        must_include="action == 'renew'",
    )
    with pytest.raises(InfeasibleConstraintsError, match="cannot all hold together") as caught:
        allocate(frame, c)
    assert caught.value.conflict == ["capacity of AM1 <= 1 actions", "must include: 2 rows"]


def test_same_input_in_any_row_order_gives_the_same_plan() -> None:
    """Check determinism: shuffled candidates choose the same rows (values tie on purpose)."""
    rng = np.random.default_rng(0)
    frame = _offers(
        client_id=[f"C{i}" for i in range(30)],
        owner=rng.choice(["AM1", "AM2", "AM3"], 30),
        family=rng.choice(["ERP", "SEC"], 30),
        expected_value=rng.integers(1, 5, 30).astype(float),
    )
    c = Constraints(capacity=4, family_share={"SEC": 0.5})
    first = allocate(frame, c)
    again = allocate(frame, c)
    shuffled = allocate(frame.sample(frac=1.0, random_state=1), c)
    assert first.chosen.equals(again.chosen)
    assert shuffled.objective == first.objective


def test_plan_of_the_demo_book_keeps_its_renewals() -> None:
    """Check an account plan under capacity and a must-include rule for every renewal."""
    book = cs.datasets.demo()
    rec = cs.Recommender(k=3, scorer=cs.scorers.ItemKNN()).fit(book, cs.datasets.demo_as_of())
    account_plan = cs.plan(rec)
    actions = account_plan.actions
    renewals = actions[actions["action"] == "renew"]
    per_owner = int(renewals.groupby("owner").size().max())
    c = Constraints(capacity=per_owner + 2, must_include="action == 'renew'")
    result = allocate(account_plan, c)
    chosen = result.chosen
    assert set(renewals["client_id"]) <= set(chosen["client_id"])
    assert (chosen.groupby("owner").size() <= per_owner + 2).all()
    assert (chosen.loc[chosen["action"] == "renew", "why"] == "chosen: must include").all()


def test_offers_read_owner_and_family_from_the_book() -> None:
    """Check that offers without owner or family columns get them from the Book."""
    book = cs.datasets.demo()
    rec = cs.Recommender(k=3, scorer=cs.scorers.ItemKNN()).fit(book, cs.datasets.demo_as_of())
    offers = rec.recommend()
    c = Constraints(capacity=5, family_share={"SEC": 0.4})
    result = allocate(offers, c, book=book)
    chosen = result.chosen
    assert (chosen.groupby("owner").size() <= 5).all()
    assert (chosen["family"] == "SEC").mean() >= 0.4 - 1e-9
    assert chosen["client_id"].is_unique
    with pytest.raises(ValueError, match="need owners: give the candidates a 'owner' column"):
        allocate(offers, c)


def test_constraints_from_plain_data_are_checked() -> None:
    """Check that a constraints file's keys and values are validated with clear messages."""
    c = Constraints.from_dict({"capacity": {"AM1": 3}, "family_quota": {"ERP": [None, 40]}})
    assert c.family_quota == {"ERP": (None, 40)}
    with pytest.raises(ValueError, match=r"'capacty' \(did you mean 'capacity'\?\)"):
        Constraints.from_dict({"capacty": 3})
    with pytest.raises(ValueError, match=r"family_quota\['ERP'\] must be \[min, max\]"):
        Constraints.from_dict({"family_quota": {"ERP": 40}})
    frame = _offers(client_id=["A"], family="ERP", expected_value=[1.0])
    with pytest.raises(ValueError, match="family share SEC must be a number"):
        allocate(frame, Constraints(family_share={"SEC": "lots"}))
    with pytest.raises(ValueError, match="must_include = 'nope ==' cannot be read"):
        allocate(frame, Constraints(must_include="nope =="))


def test_non_finite_objective_is_refused_with_rows() -> None:
    """Check that an infinite expected value is an error naming the rows."""
    frame = _offers(client_id=["A", "B"], expected_value=[1.0, np.inf])
    with pytest.raises(ValueError, match=r"1 rows that are not finite numbers, e.g. rows \[1\]"):
        allocate(frame)


def test_plan_with_constraints_marks_the_optimised_choice() -> None:
    """Check that plan(constraints=) puts the allocation's choice in within_capacity."""
    book = cs.datasets.demo()
    rec = cs.Recommender(k=3, scorer=cs.scorers.ItemKNN()).fit(book, cs.datasets.demo_as_of())
    greedy = cs.plan(rec, capacity=4)
    actions = greedy.actions
    cap = int(actions[actions["action"] == "renew"].groupby("owner").size().max()) + 2
    optimised = cs.plan(
        rec,
        capacity=cap,
        constraints={"family_share": {"SEC": 0.3}, "must_include": "action == 'renew'"},
    )
    assert optimised.allocation is not None
    assert greedy.allocation is None
    a = optimised.actions
    chosen = a[a["within_capacity"]]
    assert (chosen.groupby("owner").size() <= cap).all()
    assert set(a.loc[a["action"] == "renew", "client_id"]) <= set(chosen["client_id"])
    families = chosen["product_id"].astype(str).str.split("-").str[0]
    assert (families == "SEC").mean() >= 0.3 - 1e-9
    assert (a.loc[a["within_capacity"], "allocation"].str.startswith("chosen")).all()
    lists = optimised.by_owner()
    assert sum(len(v) for v in lists.values()) == int(a["within_capacity"].sum())


def test_a_minimum_that_only_excluded_rows_could_meet_is_a_conflict() -> None:
    """Check that excluding every row leaves an empty plan, or a named conflict with a minimum."""
    frame = _offers(client_id=["A"], family="ERP", expected_value=[1.0])
    result = allocate(frame, Constraints(exclude="expected_value < 3"))
    assert result.rows["why"].tolist() == ["dropped: excluded"]
    with pytest.raises(InfeasibleConstraintsError, match="family ERP: at least 1"):
        allocate(frame, Constraints(family_quota={"ERP": (1, None)}, exclude="expected_value < 3"))


def test_a_better_row_of_another_family_does_not_push_a_row_out() -> None:
    """Check that rows are only compared with rows of the same product, family and effort.

    The SEC row is the only one that meets the share; the ERP rows of the same product, worth
    as much, must not make it look dominated, and neither may an excluded row.
    """
    frame = _offers(
        client_id=["A", "A", "B", "A", "C"],
        owner="AM1",
        family=["ERP", "ERP", "ERP", "SEC", "SEC"],
        product_id=["P1", "P3", "P3", "P3", "P3"],
        expected_value=[0.0, 1.0, 1.0, 1.0, 5.0],
    )
    c = Constraints(
        capacity={"AM1": 1},
        per_client=None,
        product_quota={"P1": (None, None)},
        family_share={"SEC": 0.25},
        exclude="client_id == 'C'",
    )
    result = allocate(frame, c)
    assert result.objective == 1.0
    assert result.chosen["family"].tolist() == ["SEC"]


# ------------------------------------------------------------------------------- warm start
def test_a_greedy_fill_that_keeps_a_share_meets_it():
    """Check that the warm start's fill never lets a family's share fall below its minimum."""
    from crosssell.allocation import _filled, _greedy, _keeping_lower_bounds, _rows

    frame = _offers(
        client_id=["A", "B", "C"], product_id=["E1", "E2", "S1"], family=["ERP", "ERP", "SEC"],
        owner=["AM1"] * 3, expected_value=[10.0, 9.0, 1.0],
    )  # fmt: skip
    c = Constraints(capacity=2, family_share={"SEC": 0.5})
    rows = _rows(frame, c)
    value = frame["expected_value"].to_numpy()
    lo, hi = np.zeros(3), np.ones(3)
    plain = _greedy(value, rows, lo, hi)
    kept = _filled(value, _keeping_lower_bounds(rows), lo, hi)
    assert plain.tolist() == [1.0, 1.0, 0.0]  # best first: the share is broken
    assert kept.tolist() == [1.0, 0.0, 1.0]  # SEC first, then the best ERP: the optimum
    assert _holds(frame, kept, c)


def _mixed_book(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    i = np.arange(n)
    return pd.DataFrame(
        {
            "client_id": [f"C{k // 3}" for k in i],
            "product_id": [f"P{k % 7}" for k in i],
            "family": [f"F{k % 5}" for k in i],
            "owner": [f"AM{k % 13}" for k in i],
            "expected_value": rng.gamma(2, 10, n).round(2),
            "offer_type": rng.choice(["upsell", "cross_sell"], n),
        }
    )


def test_the_integer_program_starts_from_a_feasible_plan(monkeypatch):
    """Check that a fractional relaxation sends HiGHS a feasible start, and the plan beats it."""
    from crosssell import allocation

    frame = _mixed_book(600)
    c = Constraints(capacity=8.0, family_share={"F1": 0.3}, product_quota={"P3": (None, 8)})
    starts = []
    solve = allocation._solve

    def spy(value, rows, **kw):
        starts.append((value, rows, kw["start"]))
        return solve(value, rows, **kw)

    monkeypatch.setattr(allocation, "_solve", spy)
    result = allocate(frame, c)
    ((value, rows, start),) = starts
    assert start is not None
    assert allocation._feasible(start, rows)
    assert not result.greedy_feasible  # so the start came from a fill that keeps the share
    assert result.status == "optimal"
    assert result.objective >= float(value @ start) - 1e-9
    assert _holds(frame, result.rows["chosen"].to_numpy(), c)


def test_out_of_time_the_plan_is_the_start_or_better_with_a_finite_gap(monkeypatch):
    """Check that a solver stopped at once still returns a feasible plan and a bounded gap."""
    from crosssell import allocation

    frame = _mixed_book(600)
    c = Constraints(capacity=8.0, family_share={"F1": 0.3})
    solve = allocation._solve
    monkeypatch.setattr(
        allocation, "_solve", lambda *a, **kw: solve(*a, **{**kw, "time_limit": 1e-3})
    )
    result = allocate(frame, c)
    assert _holds(frame, result.rows["chosen"].to_numpy(), c)
    assert 0.0 <= result.gap < 0.2
    optimal = allocate(frame, c, time_limit=60.0)
    assert result.objective <= optimal.objective + 1e-9
