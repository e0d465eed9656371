"""Tests of the rules, the Suppression they build, and the route-sales policy."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosssell import Book
from crosssell.columns import EventType
from crosssell.exceptions import UnknownIdError
from crosssell.rules import (
    AlreadyHeld,
    Blocks,
    ChurnSignal,
    ContactCap,
    DoNotContact,
    ExcludedByHolding,
    FunctionRule,
    GroupHeld,
    LowSatisfaction,
    NotSellable,
    NotWorthProposing,
    OpenComplaint,
    Policy,
    PrerequisiteMissing,
    RecentDecline,
    RenewalFirst,
    Rule,
    RuleContext,
    SegmentNotEligible,
    Suppression,
    route_sales,
    rule,
)
from crosssell.rules._context import event_columns

AS_OF = "2025-06-30"

PRODUCTS = pd.DataFrame(
    {
        "product_id": ["LOAN1", "LOAN2", "CARD", "INS", "INS_PLUS", "PREM", "OLD"],
        "family": ["Loans", "Loans", "Cards", "Insurance", "Insurance", "Premium", "Legacy"],
        "tier": [1, 2, 1, 1, 2, 1, 1],
        "requires": [(), (), (), ("CARD",), ("CARD", "LOAN1"), (), ()],
        "excludes": [(), (), (), (), (), ("LOAN2",), ()],
        "segments": [None, None, None, None, None, ("Enterprise",), None],
        "sellable": [True, True, True, True, True, True, False],
    }
)
CLIENTS = pd.DataFrame(
    {
        "client_id": ["C1", "C2", "C3", "C4"],
        "segment": ["SME", "Enterprise", "SME", "SME"],
        "do_not_contact": [False, False, True, False],
        "satisfaction": [8.0, 3.0, 7.0, np.nan],
        "parent_id": [None, None, None, "C1"],
    }
)
CONTRACTS = pd.DataFrame(
    {
        "client_id": ["C1", "C1", "C2", "C4"],
        "product_id": ["LOAN1", "CARD", "LOAN2", "CARD"],
        "start_date": ["2024-08-16", "2024-01-01", "2024-01-01", "2024-01-01"],
        "end_date": ["2025-08-15", None, None, None],
        "value": [1200.0, 300.0, 5000.0, 300.0],
    }
)


def make_book(
    contracts: pd.DataFrame = CONTRACTS,
    events: list[dict[str, Any]] | None = None,
    products: pd.DataFrame = PRODUCTS,
    clients: pd.DataFrame = CLIENTS,
) -> Book:
    frame = None
    if events:
        frame = pd.DataFrame(events)
        for col in ("product_id", "ref"):
            if col not in frame.columns:
                frame[col] = None
        frame = frame[["client_id", "date", "type", "product_id", "ref"]]
    return Book.from_frames(contracts=contracts, products=products, clients=clients, events=frame)


def ctx_at(book: Book, as_of: str = AS_OF) -> RuleContext:
    return RuleContext.at(book, as_of)


def ev(
    client: str, date: str, kind: str, product: str | None = None, ref: str | None = None
) -> dict[str, Any]:
    return {"client_id": client, "date": date, "type": kind, "product_id": product, "ref": ref}


def rows(book: Book, blocks: Blocks) -> set[tuple[Any, Any, str, str]]:
    """Blocks in the caller's ids: (client, product, detail, scope), None meaning all."""
    cid = book.client_ids.external
    pid = book.product_ids.external
    return {
        (
            cid[c] if c >= 0 else None,
            pid[p] if p >= 0 else None,
            str(d),
            str(s),
        )
        for c, p, d, s in zip(
            blocks.client, blocks.product, blocks.detail, blocks.scope, strict=True
        )
    }


def frame_key(book: Book, s: Suppression) -> list[tuple[str, ...]]:
    out = s.to_frame(book).astype(object).where(lambda f: f.notna(), "*")
    return sorted(tuple(str(v) for v in r) for r in out.itertuples(index=False))


EVENTS = [
    ev("C4", "2025-05-02", "complaint_opened", ref="R17"),
    ev("C4", "2025-07-10", "complaint_closed", ref="R17"),
    ev("C1", "2025-06-01", "offer_declined", "INS"),
    ev("C2", "2025-06-10", "offer_declined", "Cards"),
    ev("C1", "2025-06-05", "offer_made", "INS"),
    ev("C1", "2025-06-20", "offer_made", "LOAN2"),
    ev("C1", "2025-06-25", "offer_made", "INS"),
    ev("C2", "2025-04-01", "churn_signal"),
    ev("C3", "2025-07-05", "churn_signal"),
]

BUILT_INS: list[Rule] = [
    AlreadyHeld(),
    NotSellable(),
    PrerequisiteMissing(),
    ExcludedByHolding(),
    SegmentNotEligible(),
    OpenComplaint(),
    RecentDecline(),
    ContactCap(),
    RenewalFirst(),
    LowSatisfaction(),
    ChurnSignal(),
    DoNotContact(),
    NotWorthProposing(),
    GroupHeld(),
]

# Data dated after AS_OF: more events and a renewal that starts later.
FUTURE_EVENTS = [
    ev("C1", "2025-07-01", "complaint_opened", ref="R99"),
    ev("C2", "2025-07-02", "offer_declined", "CARD"),
    ev("C4", "2025-07-03", "offer_made", "LOAN1"),
    ev("C4", "2025-07-03", "offer_made", "LOAN1"),
    ev("C4", "2025-07-04", "offer_made", "LOAN1"),
    ev("C2", "2025-07-05", "churn_signal"),
]
FUTURE_CONTRACTS = pd.DataFrame(
    {
        "client_id": ["C1", "C3"],
        "product_id": ["LOAN1", "CARD"],
        "start_date": ["2025-08-15", "2025-09-01"],
        "end_date": ["2026-08-15", None],
        "value": [1300.0, 300.0],
    }
)


# ---------------------------------------------------------------------------- contract suite


@pytest.mark.parametrize("built_in", BUILT_INS, ids=lambda r: r.name)
def test_every_built_in_honours_the_rule_contract(built_in: Rule) -> None:
    """Check that a built-in returns valid Blocks, deterministically, blind to data after as_of."""
    book = make_book(events=EVENTS)
    ctx = ctx_at(book)
    first = built_in.blocks(ctx)
    assert isinstance(first, Blocks)
    assert built_in.kind in ("eligibility", "applicability", "suitability", "contact")
    assert ((first.client >= -1) & (first.client < ctx.n_clients)).all()
    assert ((first.product >= -1) & (first.product < ctx.n_products)).all()
    assert set(first.scope.tolist()) <= {"any", "cross_sell", "upsell"}
    assert all(isinstance(d, str) and d for d in first.detail)
    assert rows(book, built_in.blocks(ctx_at(book))) == rows(book, first)
    future = make_book(
        contracts=pd.concat([CONTRACTS, FUTURE_CONTRACTS], ignore_index=True),
        events=EVENTS + FUTURE_EVENTS,
    )
    assert rows(future, built_in.blocks(ctx_at(future))) == rows(book, first)
    assert dataclasses.is_dataclass(built_in)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built_in.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------- one test per rule


def test_already_held_blocks_the_active_holdings() -> None:
    """Check that already_held blocks exactly the pairs held at as_of."""
    book = make_book()
    got = rows(book, AlreadyHeld().blocks(ctx_at(book)))
    detail = "the client already holds this product"
    assert got == {
        ("C1", "LOAN1", detail, "any"),
        ("C1", "CARD", detail, "any"),
        ("C2", "LOAN2", detail, "any"),
        ("C4", "CARD", detail, "any"),
    }
    expanded = AlreadyHeld(allow_seat_expansion=True).blocks(ctx_at(book))
    assert set(expanded.scope.tolist()) == {"cross_sell"}


def test_not_sellable_blocks_the_product_for_everyone() -> None:
    """Check that not_sellable blocks a product marked not sellable, for every client."""
    book = make_book()
    got = rows(book, NotSellable().blocks(ctx_at(book)))
    assert got == {(None, "OLD", "OLD is marked not sellable in the catalog", "any")}


def test_prerequisite_missing_all_and_any() -> None:
    """Check that requires blocks clients lacking all (or, in 'any' mode, every) prerequisite."""
    book = make_book()
    got = rows(book, PrerequisiteMissing(mode="all").blocks(ctx_at(book)))
    ins = "INS requires CARD to be held first"
    plus = "INS_PLUS requires CARD, LOAN1 to be held first"
    # C1 holds CARD and LOAN1; C4 holds only CARD; C2 and C3 hold neither.
    assert got == {
        ("C2", "INS", ins, "any"),
        ("C3", "INS", ins, "any"),
        ("C2", "INS_PLUS", plus, "any"),
        ("C3", "INS_PLUS", plus, "any"),
        ("C4", "INS_PLUS", plus, "any"),
    }
    anyof = rows(book, PrerequisiteMissing(mode="any").blocks(ctx_at(book)))
    assert {(c, p) for c, p, _, _ in anyof} == {
        ("C2", "INS"),
        ("C3", "INS"),
        ("C2", "INS_PLUS"),
        ("C3", "INS_PLUS"),
    }
    assert "INS_PLUS requires one of CARD, LOAN1 to be held first" in {d for *_, d, _ in anyof}


def test_excluded_by_holding_works_both_ways() -> None:
    """Check that an exclusion blocks the excluded product and, the other way, the excluder."""
    contracts = pd.concat(
        [
            CONTRACTS,
            pd.DataFrame(
                {"client_id": ["C3"], "product_id": ["PREM"], "start_date": ["2024-01-01"]}
            ),
        ],
        ignore_index=True,
    )
    book = make_book(contracts=contracts)
    got = rows(book, ExcludedByHolding().blocks(ctx_at(book)))
    assert got == {
        ("C2", "PREM", "PREM cannot be held together with LOAN2, which the client holds", "any"),
        ("C3", "LOAN2", "LOAN2 cannot be held together with PREM, which the client holds", "any"),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    excludes=st.lists(st.sets(st.integers(0, 5), max_size=3), min_size=6, max_size=6),
    holdings=st.lists(st.sets(st.integers(0, 5), min_size=1, max_size=5), min_size=1, max_size=6),
)
def test_excluded_by_holding_names_every_held_product_in_catalogue_order(
    excludes: list[set[int]], holdings: list[set[int]]
) -> None:
    """Check each blocked pair once, naming every held product behind it, in catalogue order.

    An exclusion works both ways: a held product blocks what it excludes and what excludes it.
    """
    ids = [f"P{i}" for i in range(6)]
    products = pd.DataFrame(
        {"product_id": ids, "excludes": [tuple(ids[j] for j in sorted(e)) for e in excludes]}
    )
    contracts = pd.DataFrame(
        [
            {"client_id": f"C{c}", "product_id": ids[h], "start_date": "2024-01-01"}
            for c, held in enumerate(holdings)
            for h in sorted(held)
        ]
    )
    book = Book.from_frames(contracts=contracts, products=products)
    ctx = ctx_at(book)
    want = set()
    for c, held in enumerate(holdings):
        for p in range(6):
            behind = [h for h in range(6) if h in held and (p in excludes[h] or h in excludes[p])]
            behind.sort(key=lambda h: book.product_ids.index_of(ids[h]))
            if behind:
                names = ", ".join(ids[h] for h in behind)
                detail = f"P{p} cannot be held together with {names}, which the client holds"
                want.add((f"C{c}", f"P{p}", detail, "any"))
    blocks = ExcludedByHolding().blocks(ctx)
    assert len(blocks.client) == len(want)
    assert rows(book, blocks) == want


def test_segment_not_eligible_blocks_other_segments() -> None:
    """Check that a product restricted to a segment is blocked for clients of other segments."""
    book = make_book()
    got = rows(book, SegmentNotEligible().blocks(ctx_at(book)))
    text = "PREM is offered only to segment Enterprise; the client's segment is SME"
    assert got == {
        ("C1", "PREM", text, "any"),
        ("C3", "PREM", text, "any"),
        ("C4", "PREM", text, "any"),
    }


def test_open_complaint_blocks_until_closed_plus_cool_off() -> None:
    """Check that a complaint blocks while open, during the cool-off, and not after it."""
    events = [
        ev("C4", "2025-05-02", "complaint_opened", ref="R17"),
        ev("C4", "2025-06-20", "complaint_closed", ref="R17"),
    ]
    book = make_book(events=events)
    rule_ = OpenComplaint(cool_off_days=30)
    assert rows(book, rule_.blocks(ctx_at(book, "2025-06-01"))) == {
        ("C4", None, "complaint #R17 open since 2025-05-02 (30 days)", "any")
    }
    assert rows(book, rule_.blocks(ctx_at(book, "2025-07-01"))) == {
        (
            "C4",
            None,
            "complaint #R17 closed on 2025-06-20; offers resume on 2025-07-20 "
            "after a 30-day cool-off",
            "any",
        )
    }
    assert len(rule_.blocks(ctx_at(book, "2025-07-20"))) == 0
    assert len(OpenComplaint(cool_off_days=14).blocks(ctx_at(book, "2025-07-05"))) == 0


def test_open_complaint_pairs_by_date_order_without_refs() -> None:
    """Check that without refs the k-th closing answers the k-th opening of the same client."""
    events = [
        ev("C1", "2025-01-01", "complaint_opened"),
        ev("C1", "2025-01-10", "complaint_closed"),
        ev("C1", "2025-06-01", "complaint_opened"),
        ev("C2", "2025-06-02", "complaint_closed"),
    ]
    book = make_book(events=events)
    got = rows(book, OpenComplaint().blocks(ctx_at(book)))
    assert got == {("C1", None, "complaint open since 2025-06-01 (29 days)", "any")}


def test_recent_decline_blocks_the_product_or_the_family_for_the_window() -> None:
    """Check that a decline blocks its product (or family) until the window has passed."""
    events = [
        ev("C1", "2025-06-01", "offer_declined", "INS"),
        ev("C2", "2025-06-10", "offer_declined", "Loans"),
    ]
    book = make_book(events=events)
    got = rows(book, RecentDecline(days=90).blocks(ctx_at(book)))
    fam = (
        "declined the Loans family on 2025-06-10; its products may be offered again from 2025-09-08"
    )
    assert got == {
        ("C1", "INS", "declined INS on 2025-06-01; it may be offered again from 2025-08-30", "any"),
        ("C2", "LOAN1", fam, "any"),
        ("C2", "LOAN2", fam, "any"),
    }
    by_family = rows(book, RecentDecline(scope="family").blocks(ctx_at(book)))
    assert ("C1", "INS_PLUS") in {(c, p) for c, p, _, _ in by_family}
    assert len(RecentDecline(days=90).blocks(ctx_at(book, "2025-09-08"))) == 0
    assert len(RecentDecline(days=90).blocks(ctx_at(book, "2025-05-31"))) == 0


def test_events_read_the_family_of_their_product_or_the_family_they_name() -> None:
    """Check each event's family: its product's, the family it names, or none."""
    events = [
        ev("C1", "2025-06-01", "need", "INS"),
        ev("C1", "2025-06-02", "need", "Loans"),
        ev("C2", "2025-06-03", "need", "Pets"),
        ev("C2", "2025-06-04", "need"),
        ev("C2", "2025-06-05", "need", "Loans"),
    ]
    ctx = ctx_at(make_book(events=events))
    got = event_columns(ctx)
    labels = ctx.family_labels
    names = [labels[f] if f >= 0 else None for f in got.family.tolist()]
    ins = labels[ctx.family_codes[ctx.book.product_ids.index_of("INS")]]
    assert names == [ins, "Loans", None, None, "Loans"]


def test_contact_cap_counts_offers_in_the_window() -> None:
    """Check that the cap blocks a client at max_offers in the window and says when it lifts."""
    events = [ev("C1", d, "offer_made", "INS") for d in ("2025-06-05", "2025-06-20", "2025-06-25")]
    book = make_book(events=events)
    got = rows(book, ContactCap(max_offers=3, days=30).blocks(ctx_at(book)))
    assert got == {
        (
            "C1",
            None,
            "3 offers made in the last 30 days (the cap is 3); "
            "the next may be made from 2025-07-05",
            "any",
        )
    }
    assert len(ContactCap(max_offers=4).blocks(ctx_at(book))) == 0
    assert len(ContactCap(max_offers=3).blocks(ctx_at(book, "2025-07-05"))) == 0


def test_renewal_first_blocks_cross_sell_and_other_family_upsells() -> None:
    """Check that a due contract blocks cross-sell, other families' upsells, not its own family."""
    book = make_book()
    got = rows(book, RenewalFirst(days=60).blocks(ctx_at(book)))
    assert got == {
        (
            "C1",
            None,
            "the LOAN1 contract (since 2024-08-16, value 1200.00) ends on 2025-08-15 and is not "
            "renewed yet; renew it before any cross-sell",
            "cross_sell",
        ),
        (
            "C1",
            "CARD",
            "renewal of the LOAN1 contract ending 2025-08-15 comes first; only upsells in the "
            "Loans family may be offered until then",
            "upsell",
        ),
    }
    assert len(RenewalFirst(days=30).blocks(ctx_at(book))) == 0


def test_renewal_first_is_lifted_by_a_renewal_known_at_as_of() -> None:
    """Check that a later-ending contract in the same family, already started, counts as renewed."""
    renewal = pd.DataFrame(
        {
            "client_id": ["C1"],
            "product_id": ["LOAN2"],
            "start_date": ["2025-06-01"],
            "end_date": [None],
        }
    )
    book = make_book(contracts=pd.concat([CONTRACTS, renewal], ignore_index=True))
    assert len(RenewalFirst().blocks(ctx_at(book))) == 0


def test_low_satisfaction_churn_signal_and_do_not_contact_block_clients() -> None:
    """Check the three client-level suitability and contact rules on a tiny book."""
    book = make_book(events=[ev("C2", "2025-04-01", "churn_signal")])
    ctx = ctx_at(book)
    assert rows(book, LowSatisfaction().blocks(ctx)) == {
        ("C2", None, "satisfaction is 3.0, below the threshold of 5", "any")
    }
    assert len(LowSatisfaction(threshold=2.5).blocks(ctx)) == 0
    # 90 days after 2025-04-01 is as_of itself: the window has just closed.
    assert len(ChurnSignal(days=90).blocks(ctx)) == 0
    assert rows(book, ChurnSignal(days=120).blocks(ctx)) == {
        ("C2", None, "churn signal on 2025-04-01; offers resume on 2025-07-30", "any")
    }
    assert rows(book, DoNotContact().blocks(ctx)) == {
        ("C3", None, "the client is marked do-not-contact", "any")
    }


def test_not_worth_proposing_thresholds_and_detail() -> None:
    """Check that expected value must exceed the minimum and propensity reach its minimum."""
    rule_ = NotWorthProposing(min_expected_value=10.0, min_propensity=0.1)
    p = np.array([0.5, 0.5, 0.05, np.nan])
    value = np.array([5.0, 50.0, 50.0, 50.0])
    assert rule_.blocked(p, value).tolist() == [True, False, True, True]
    assert rule_.detail(p, value)[:3].tolist() == [
        "expected value 5.00 is not above the minimum of 10",
        "",
        "propensity 0.050 is below the minimum of 0.1",
    ]
    assert NotWorthProposing().blocked(np.array([0.3]), np.array([0.0])).tolist() == [True]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: OpenComplaint(cool_off_days=-1),
            "The 'cool_off_days' parameter of OpenComplaint must be an int in the range [0, inf)."
            " Got -1 instead.",
        ),
        (
            lambda: ContactCap(max_offers=0),
            "The 'max_offers' parameter of ContactCap must be an int in the range [1, inf)."
            " Got 0 instead.",
        ),
        (
            lambda: RecentDecline(scope="shop"),
            "The 'scope' parameter of RecentDecline must be a str among {'family', 'product'}."
            " Got 'shop' instead.",
        ),
        (
            lambda: LowSatisfaction(threshold=11),
            "The 'threshold' parameter of LowSatisfaction must be a float in the range [0, 10]."
            " Got 11 instead.",
        ),
        (
            lambda: PrerequisiteMissing(mode="most"),
            "The 'mode' parameter of PrerequisiteMissing must be a str among {'all', 'any'}."
            " Got 'most' instead.",
        ),
    ],
)
def test_parameter_errors_read_like_scikit_learn(make: Any, message: str) -> None:
    """Check that a bad rule parameter raises a ValueError in scikit-learn's wording."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make()


# ---------------------------------------------------------------------------- Suppression


def test_mask_applies_every_kind_of_block() -> None:
    """Check Suppression.mask on a tiny example with client, product, pair and scoped blocks."""

    def blocks(ctx: RuleContext) -> Blocks:
        return Blocks.concat(
            [
                Blocks.clients([1], "client 1 blocked"),
                Blocks.products([2], "product 2 blocked"),
                Blocks.pairs([0], [0], "pair (0, 0) blocked"),
                Blocks.clients([2], "no cross-sell", scope="cross_sell"),
                Blocks.pairs([3], [1], "no upsell of 1", scope="upsell"),
            ]
        )

    book = make_book()
    s = Policy([FunctionRule(name="toy", kind="contact", func=blocks)]).evaluate(ctx_at(book))
    n_p = len(book.product_ids)
    up = np.zeros((4, n_p), dtype=bool)
    up[:, 1] = True
    got = s.mask([0, 1, 2, 3], up)
    want = np.zeros((4, n_p), dtype=bool)
    want[:, 2] = True
    want[0, 0] = True
    want[1, :] = True
    want[2, :] = ~up[2]
    want[3, 1] = True
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(s.mask([3, 0], up[[3, 0]]), want[[3, 0]])
    # Without offer types the scoped blocks apply to every pair, the safe side.
    assert s.mask([2]).all()
    candidate = np.ones((1, n_p), dtype=bool)
    candidate[0, 4] = False
    assert s.mask([3], up[[3]], is_candidate=candidate)[0, 4]
    assert s.reasons(2, 0, is_upsell=False) == [("toy", "contact", "no cross-sell")]
    assert s.reasons(2, 1, is_upsell=True) == []
    assert s.reasons(0, 0) == [("toy", "contact", "pair (0, 0) blocked")]


def test_to_frame_uses_the_callers_ids() -> None:
    """Check that the log comes back with the caller's ids, NA meaning all."""
    contracts = pd.DataFrame(
        {"client_id": [101, 102], "product_id": [7, 8], "start_date": ["2024-01-01"] * 2}
    )
    clients = pd.DataFrame({"client_id": [101, 102], "do_not_contact": [False, True]})
    products = pd.DataFrame({"product_id": [7, 8], "sellable": [True, False]})
    book = Book.from_frames(contracts=contracts, products=products, clients=clients)
    frame = Policy([DoNotContact(), NotSellable()]).evaluate(ctx_at(book)).to_frame(book)
    assert frame.columns.tolist() == ["client_id", "product_id", "rule", "kind", "detail", "scope"]
    assert frame["client_id"].dtype == "Int64"
    assert frame["product_id"].dtype == "Int64"
    got = {
        (None if pd.isna(c) else int(c), None if pd.isna(p) else int(p), r)
        for c, p, r in frame[["client_id", "product_id", "rule"]].itertuples(index=False)
    }
    assert got == {(102, None, "do_not_contact"), (None, 8, "not_sellable")}


# ---------------------------------------------------------------------------- user rules


def test_function_rule_accepts_blocks_masks_and_frames() -> None:
    """Check that a user function may return Blocks, a client mask or a DataFrame in caller ids."""
    book = make_book()
    ctx = ctx_at(book)

    @rule(name="vip_only", kind="suitability")
    def vip_only(ctx: RuleContext) -> Any:
        return ctx.book.client_table["segment"].to_numpy() != "Enterprise"

    assert isinstance(vip_only, FunctionRule)
    assert rows(book, vip_only.blocks(ctx)) == {
        (c, None, "blocked by rule vip_only", "any") for c in ("C1", "C3", "C4")
    }

    def frame_rule(ctx: RuleContext) -> pd.DataFrame:
        return pd.DataFrame(
            {"client_id": ["C2", "C1"], "product_id": ["CARD", None], "detail": ["audit", None]}
        )

    got = rows(book, FunctionRule(name="audit", kind="contact", func=frame_rule).blocks(ctx))
    assert got == {("C2", "CARD", "audit", "any"), ("C1", None, "blocked by rule audit", "any")}
    policy = Policy([frame_rule])
    assert policy.names == ("frame_rule",)
    assert policy.rules[0].kind == "applicability"


def test_a_frame_naming_clients_outside_a_partial_book_blocks_only_its_own() -> None:
    """Check that a whole do-not-call list works on a batch: outside clients are passed over.

    On a whole Book an unknown client is refused (a likely typo); on a partial one (fresh
    frames of some clients) the others are simply not in it.
    """
    book = make_book()
    listed = FunctionRule(
        name="do_not_call",
        kind="contact",
        func=lambda ctx: pd.DataFrame({"client_id": ["C2", "ELSEWHERE", "C4"]}),
    )
    with pytest.raises(UnknownIdError, match="ELSEWHERE"):
        listed.blocks(ctx_at(book))
    whole = ctx_at(book)
    partial = RuleContext(book=book, as_of=whole.as_of, holdings=whole.holdings, partial=True)
    assert rows(book, listed.blocks(partial)) == {
        ("C2", None, "blocked by rule do_not_call", "any"),
        ("C4", None, "blocked by rule do_not_call", "any"),
    }


def test_a_rule_reading_beyond_what_it_declares_is_refused_by_name() -> None:
    """Check that ctx.events calls are held to a declaring rule's reads, on any Book.

    Spark and recommend_one ship only the declared rows: a rule reading more would block
    otherwise there than on the whole Book, so the mistake is refused where it is first made.
    """
    import crosssell.rules as rules_module

    ctx = ctx_at(make_book())
    declared = rules_module.Reads(events={"offer_declined": pd.Timedelta(days=30)})

    def reading(*types: str, days: int | None) -> FunctionRule:
        def func(c: RuleContext) -> Any:
            c.events(*types, days=days)
            return np.zeros(c.n_clients, dtype=bool)

        return FunctionRule(name="breather", kind="contact", func=func, reads=declared)

    assert len(reading("offer_declined", days=30).blocks(ctx)) == 0
    assert len(reading("offer_declined", days=7).blocks(ctx)) == 0
    with pytest.raises(
        ValueError, match="Rule 'breather' read events of type 'offer_declined' within 60 days"
    ):
        reading("offer_declined", days=60).blocks(ctx)
    with pytest.raises(ValueError, match="'offer_declined' of any age"):
        reading("offer_declined", days=None).blocks(ctx)
    with pytest.raises(ValueError, match="events of type 'complaint_opened'"):
        reading("offer_declined", "complaint_opened", days=30).blocks(ctx)
    with pytest.raises(ValueError, match="events of every type"):
        reading(days=30).blocks(ctx)
    # the check ends with the rule: other code reads freely, and so does an undeclared rule
    assert len(ctx.events("complaint_opened")) >= 0
    undeclared = dataclasses.replace(reading("complaint_opened", days=None), reads=None)
    assert len(undeclared.blocks(ctx)) == 0


def test_function_rule_wrong_answer_names_the_rule() -> None:
    """Check that a user rule returning the wrong type raises a TypeError naming it."""
    ctx = ctx_at(make_book())
    bad = FunctionRule(name="sloppy", kind="contact", func=lambda ctx: [1, 2])
    with pytest.raises(TypeError, match="Rule 'sloppy' returned list"):
        bad.blocks(ctx)
    short = FunctionRule(name="short", kind="contact", func=lambda ctx: np.zeros(2, bool))
    with pytest.raises(ValueError, match="Rule 'short' returned a boolean array of 2 entries"):
        short.blocks(ctx)
    wild = FunctionRule(name="wild", kind="contact", func=lambda ctx: Blocks.clients([99], "x"))
    with pytest.raises(
        ValueError, match=r"Rule 'wild' returned client indices outside \[-1, 4\) in 1 rows"
    ):
        Policy([wild]).evaluate(ctx)


# ---------------------------------------------------------------------------- the policy


def test_route_sales_has_every_rule_and_takes_overrides() -> None:
    """Check the default policy's rules, its overrides, without, replace and repr."""
    policy = route_sales(complaint_cool_off_days=14, contact_max_offers=5)
    assert policy.names == (
        "already_held",
        "not_sellable",
        "prerequisite_missing",
        "excluded_by_holding",
        "segment_not_eligible",
        "open_complaint",
        "recent_decline",
        "contact_cap",
        "renewal_first",
        "low_satisfaction",
        "churn_signal",
        "do_not_contact",
        "not_worth_proposing",
    )
    assert policy["open_complaint"] == OpenComplaint(cool_off_days=14)
    assert policy["contact_cap"] == ContactCap(max_offers=5)
    assert policy.not_worth == NotWorthProposing(min_expected_value=0.0)
    assert "contact_cap" not in policy.without("contact_cap").names
    assert policy.replace("contact_cap", ContactCap(max_offers=1))["contact_cap"] == ContactCap(
        max_offers=1
    )
    assert "OpenComplaint(name='open_complaint', cool_off_days=14" in repr(policy)
    with pytest.raises(KeyError, match="has no rule named 'nope'"):
        policy.without("nope")
    with pytest.raises(ValueError, match="rule names must be distinct"):
        policy.with_rules(DoNotContact())
    with pytest.raises(ValueError, match="The 'cool_off_days' parameter of OpenComplaint"):
        route_sales(complaint_cool_off_days=-3)


def test_business_scenario() -> None:
    """Check the route-sales story: complaint, cool-off, decline window and renewal first."""
    events = [
        ev("C4", "2025-05-02", "complaint_opened", ref="R17"),
        ev("C4", "2025-07-10", "complaint_closed", ref="R17"),
        ev("C2", "2025-06-10", "offer_declined", "LOAN1"),
    ]
    book = make_book(events=events)
    policy = route_sales()
    pid = book.product_ids
    c1, c2, c4 = book.client_ids.to_index(["C1", "C2", "C4"])
    n_p = len(pid)

    # An open complaint blocks the client and the log says so.
    s = policy.evaluate(ctx_at(book))
    assert s.client_any[c4]
    log = s.to_frame(book)
    mine = log[(log["client_id"] == "C4") & (log["rule"] == "open_complaint")]
    assert mine["detail"].tolist() == ["complaint #R17 open since 2025-05-02 (59 days)"]
    # Closed on 2025-07-10: still blocked in the 30-day cool-off, free from 2025-08-09.
    assert policy.evaluate(ctx_at(book, "2025-08-01")).client_any[c4]
    assert not policy.evaluate(ctx_at(book, "2025-08-09")).client_any[c4]

    # A decline blocks that product for the window only.
    loan1 = int(pid.to_index(["LOAN1"])[0])
    assert s.pairs[c2, loan1]
    assert policy.evaluate(ctx_at(book, "2025-09-07")).pairs[c2, loan1]
    assert not policy.evaluate(ctx_at(book, "2025-09-08")).pairs[c2, loan1]

    # C1's LOAN1 is due on 2025-08-15: no cross-sell, but the LOAN2 upsell stays open.
    loan2, card = pid.to_index(["LOAN2", "CARD"])
    assert s.client_cross_sell[c1]
    assert not s.client_any[c1]
    upsell = np.zeros((1, n_p), dtype=bool)
    upsell[0, [loan2, card]] = True
    mask = s.mask([c1], upsell)[0]
    assert not mask[loan2]
    assert mask[int(pid.to_index(["PREM"])[0])]  # a cross-sell
    reasons = s.reasons(c1, int(pid.to_index(["PREM"])[0]), is_upsell=False)
    assert [r[0] for r in reasons] == ["renewal_first", "segment_not_eligible"]


# ---------------------------------------------------------------------------- properties

_CLIENT_IDS = ["C1", "C2", "C3", "C4"]
_TYPES = ["complaint_opened", "complaint_closed", "offer_made", "offer_declined", "churn_signal"]
_EVENT = st.tuples(
    st.sampled_from(_CLIENT_IDS),
    st.integers(min_value=0, max_value=400),
    st.sampled_from(_TYPES),
    st.sampled_from([None, "LOAN2", "CARD", "INS", "Loans"]),
)


def _events(items: list[tuple[str, int, str, str | None]]) -> list[dict[str, Any]]:
    start = pd.Timestamp("2024-09-01")
    return [ev(c, str((start + pd.Timedelta(days=d)).date()), t, p) for c, d, t, p in items]


_SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(items=st.lists(_EVENT, max_size=12), days=st.integers(min_value=0, max_value=400))
def test_evaluating_twice_gives_the_same_suppression(items: list[Any], days: int) -> None:
    """Check that evaluating a policy twice gives the same Suppression."""
    book = make_book(events=_events(items))
    as_of = str((pd.Timestamp("2024-09-01") + pd.Timedelta(days=days)).date())
    policy = route_sales()
    assert policy.evaluate(ctx_at(book, as_of)).equals(policy.evaluate(ctx_at(book, as_of)))


@_SETTINGS
@given(items=st.lists(_EVENT, max_size=12), order=st.permutations(list(range(13))))
def test_rule_order_does_not_change_the_suppression(items: list[Any], order: list[int]) -> None:
    """Check that shuffling the rules of a policy gives the same Suppression."""
    book = make_book(events=_events(items))
    rules = route_sales().rules
    ctx = ctx_at(book)
    assert Policy(rules).evaluate(ctx).equals(Policy([rules[i] for i in order]).evaluate(ctx))


@_SETTINGS
@given(items=st.lists(_EVENT, min_size=1, max_size=12), pick=st.integers(min_value=0))
def test_as_of_before_an_event_removes_its_effect(items: list[Any], pick: int) -> None:
    """Check that at an as_of before an event, the Suppression is as if the event did not exist."""
    chosen = items[pick % len(items)]
    rest = [e for e in items if e is not chosen]
    as_of = str((pd.Timestamp("2024-09-01") + pd.Timedelta(days=chosen[1] - 1)).date())
    with_it = make_book(events=_events(items))
    without = make_book(events=_events(rest))
    policy = route_sales()
    got = frame_key(with_it, policy.evaluate(ctx_at(with_it, as_of)))
    assert got == frame_key(without, policy.evaluate(ctx_at(without, as_of)))


def test_holdings_shape_is_checked() -> None:
    """Check that a RuleContext refuses holdings of the wrong shape."""
    book = make_book()
    with pytest.raises(ValueError, match="'holdings' has shape"):
        RuleContext(
            book=book, as_of=pd.Timestamp(AS_OF), holdings=sp.csr_matrix((2, 2), dtype=bool)
        )


def test_share_catalogue_refuses_another_catalogue_and_keeps_results() -> None:
    """Check that a shared catalogue gives the same blocks, and a different one is refused."""
    import crosssell as cs

    book = cs.datasets.demo()
    as_of = cs.datasets.demo_as_of()
    policy = cs.rules.route_sales()
    fitted = RuleContext.at(book, as_of)
    alone = policy.evaluate(RuleContext.at(book, as_of))
    policy.evaluate(fitted)
    shared = RuleContext.at(book, as_of)
    shared.share_catalogue(fitted)
    assert policy.evaluate(shared).equals(alone)
    other = cs.Book.from_frames(
        contracts=pd.DataFrame(
            {"client_id": ["C1"], "product_id": ["X"], "start_date": ["2024-01-01"]}
        )
    )
    with pytest.raises(ValueError, match="different product ids"):
        RuleContext.at(other, "2024-06-30").share_catalogue(fitted)


@pytest.mark.parametrize("n", [1, 200])
def test_blocks_refuse_an_unknown_scope_for_few_and_many_rows(n: int) -> None:
    """Check that a scope outside any/cross_sell/upsell is named, whatever the row count."""
    from crosssell.rules import Blocks

    scope = np.array(["any"] * (n - 1) + ["everything"], dtype=object)
    with pytest.raises(ValueError, match=r"'scope' must be one of .*'everything'.* in 1 rows"):
        Blocks(client=np.zeros(n), product=np.zeros(n), detail=np.full(n, "x"), scope=scope)
    m = n - 1
    ok = Blocks(client=np.zeros(m), product=np.zeros(m), detail=np.full(m, "x"), scope=scope[:m])
    assert ok.scope.tolist() == ["any"] * m


def test_not_worth_proposing_contact_cost_blocks_below_the_cost() -> None:
    """Check that an offer whose expected value is below the cost is dropped, with the reason."""
    rule_ = NotWorthProposing(contact_cost=25.0)
    p = np.array([0.031, 0.1, 0.05])
    value = np.array([400.0, 250.0, 1000.0])
    # 12.4 is below 25; 25.0 reaches it exactly; 50 is above
    assert rule_.blocked(p, p * value).tolist() == [True, False, False]
    assert rule_.detail(p, p * value, value=value).tolist() == [
        "expected value 12.40 (propensity 0.031 x value 400) is below the 25.00 cost of "
        "proposing it",
        "",
        "",
    ]


def test_not_worth_proposing_cost_per_family() -> None:
    """Check that a mapping prices each product by its family and unnamed families cost nothing."""
    rule_ = NotWorthProposing(contact_cost={"ERP": 40.0, "CRM": 5.0})
    cost = rule_.costs(np.array(["ERP", "HR", "CRM"], dtype=object))
    assert cost.tolist() == [40.0, 0.0, 5.0]
    ev = np.array([30.0, 0.5, 30.0])
    assert rule_.blocked(np.full(3, 0.5), ev, cost=cost).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="contact_cost is given per product family"):
        rule_.blocked(np.full(3, 0.5), ev)


def test_not_worth_proposing_zero_cost_changes_nothing() -> None:
    """Check that the default cost of 0 keeps the expected-value and propensity thresholds."""
    p = np.array([0.5, 0.5, 0.05, 0.0])
    ev = np.array([5.0, 50.0, 2.5, 0.0])
    old = NotWorthProposing(min_expected_value=4.0, min_propensity=0.1)
    new = NotWorthProposing(min_expected_value=4.0, min_propensity=0.1, contact_cost=0.0)
    assert new.blocked(p, ev).tolist() == old.blocked(p, ev).tolist() == [False, False, True, True]
    assert new.detail(p, ev).tolist() == old.detail(p, ev).tolist()


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        (
            -1.0,
            "The 'contact_cost' parameter of NotWorthProposing must be a non-negative finite "
            "float or a mapping of product families (str) to non-negative finite floats. "
            "Got -1.0 instead.",
        ),
        (
            {"CRM": float("inf")},
            "The 'contact_cost' parameter of NotWorthProposing must be a non-negative finite "
            "float or a mapping of product families (str) to non-negative finite floats. "
            "Got {'CRM': inf} instead.",
        ),
    ],
)
def test_not_worth_proposing_refuses_a_bad_cost(cost, message) -> None:
    """Check that a negative or infinite contact cost is refused with the one message form."""
    with pytest.raises(ValueError, match=re.escape(message)):
        NotWorthProposing(contact_cost=cost)


def _complaint_reference(ctx: RuleContext, cool_off_days: int) -> list[tuple[int, str]]:
    """Open or cooling complaints by plain Python: (client, "open" | "cooling"), sorted."""
    events = ctx.events(EventType.complaint_opened, EventType.complaint_closed)
    queues: dict[tuple[int, Any], dict[str, list[pd.Timestamp]]] = {}
    for row in events.itertuples(index=False):
        ref = getattr(row, "ref", None)
        key = (int(row.client_idx), None if pd.isna(ref) else str(ref))
        kind = "open" if row.type == EventType.complaint_opened else "close"
        queues.setdefault(key, {"open": [], "close": []})[kind].append(pd.Timestamp(row.date))
    out = []
    as_of = pd.Timestamp(ctx.as_of_ns)
    for (client, _), q in queues.items():
        for k, opened in enumerate(q["open"]):
            closed = q["close"][k] if k < len(q["close"]) else None
            if closed is None or closed < opened:
                out.append((client, "open"))
            elif as_of < closed + pd.Timedelta(days=cool_off_days):
                out.append((client, "cooling"))
    return sorted(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["C1", "C2", "C4"]),
            st.integers(0, 200),
            st.booleans(),
            st.sampled_from([None, "R1", "R2"]),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(0, 60),
)
def test_open_complaint_matches_openings_and_closings_as_stated(
    drawn: list[tuple[str, int, bool, str | None]], cool_off: int
) -> None:
    """Check the k-th closing of a (client, ref) answers its k-th opening, on any mix of events."""
    day0 = pd.Timestamp("2025-01-01")
    events = [
        ev(c, str((day0 + pd.Timedelta(days=d)).date()),
           "complaint_opened" if opened else "complaint_closed", ref=ref)
        for c, d, opened, ref in drawn
    ]  # fmt: skip
    book = make_book(events=events)
    ctx = ctx_at(book, "2025-06-30")
    blocks = OpenComplaint(cool_off_days=cool_off).blocks(ctx)
    got = sorted(
        (int(c), "cooling" if "closed on" in str(d) else "open")
        for c, d in zip(blocks.client, blocks.detail, strict=True)
    )
    assert got == _complaint_reference(ctx, cool_off)
