"""Tests of what rules declare they read (rules.Reads), and of a policy's union of it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosssell import Book
from crosssell.exceptions import InvalidParameterError
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
    Reads,
    RecentDecline,
    RenewalFirst,
    RetainFirst,
    Rule,
    RuleContext,
    SegmentNotEligible,
    SleepingDog,
    route_sales,
    rule,
)

AS_OF = pd.Timestamp("2025-06-30")
DAYS = pd.Timedelta(days=1)

PRODUCTS = pd.DataFrame(
    {
        "product_id": ["LOAN1", "LOAN2", "CARD", "INS"],
        "family": ["Loans", "Loans", "Cards", "Insurance"],
        "requires": [(), (), (), ("CARD",)],
        "excludes": [(), ("CARD",), (), ()],
    }
)
CLIENTS = pd.DataFrame(
    {
        "client_id": ["C1", "C2", "C3", "C4"],
        "do_not_contact": [False, False, True, False],
        "satisfaction": [8.0, 3.0, 7.0, np.nan],
        "parent_id": [None, None, None, "C1"],
    }
)
# Active contracts, one due for renewal, and ended ones a rule reading them would notice.
CONTRACTS = pd.DataFrame(
    {
        "client_id": ["C1", "C1", "C2", "C4", "C2", "C3", "C1"],
        "product_id": ["LOAN1", "CARD", "LOAN2", "CARD", "CARD", "INS", "LOAN2"],
        "start_date": [
            "2024-08-16",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
            "2023-01-01",
            "2023-01-01",
            "2023-01-01",
        ],
        "end_date": [
            "2025-08-15",
            None,
            None,
            None,
            "2025-03-01",
            "2025-06-29",
            "2024-12-31",
        ],
    }
)

BUILT_INS: list[tuple[Rule, Reads]] = [
    (AlreadyHeld(), Reads()),
    (NotSellable(), Reads()),
    (PrerequisiteMissing(), Reads()),
    (ExcludedByHolding(), Reads()),
    (SegmentNotEligible(), Reads()),
    (GroupHeld(), Reads(other_clients=True)),
    (
        OpenComplaint(cool_off_days=7),
        Reads(events={"complaint_opened": None, "complaint_closed": None}),
    ),
    (RenewalFirst(days=60), Reads()),
    (LowSatisfaction(), Reads()),
    (ChurnSignal(days=45), Reads(events={"churn_signal": 45 * DAYS})),
    (RetainFirst(as_of="2025-06-30", risk={"C2": (0.8, "a churn signal")}), Reads()),
    (SleepingDog(uplift={("C1", "INS"): (-0.1, -0.02, 0.1, 0.2)}), Reads()),
    (NotWorthProposing(min_propensity=0.1), Reads()),
    (RecentDecline(days=30), Reads(events={"offer_declined": 30 * DAYS})),
    (ContactCap(max_offers=2, days=14), Reads(events={"offer_made": 14 * DAYS})),
    (DoNotContact(), Reads()),
]


def _blocks(book: Book, rule: Rule, as_of: pd.Timestamp) -> set[tuple[Any, ...]]:
    """What a rule blocks, in the caller's ids: (client, product, detail, scope)."""
    b = rule.blocks(RuleContext.at(book, as_of))
    cid, pid = book.client_ids.external, book.product_ids.external
    return {
        (cid[c] if c >= 0 else None, pid[p] if p >= 0 else None, str(d), str(s))
        for c, p, d, s in zip(b.client, b.product, b.detail, b.scope, strict=True)
    }


def _book(contracts: pd.DataFrame, events: pd.DataFrame) -> Book:
    return Book.from_frames(
        contracts=contracts,
        products=PRODUCTS,
        clients=CLIENTS,
        events=events if len(events) else None,
    )


def _declared_rows(
    contracts: pd.DataFrame, events: pd.DataFrame, reads: Reads, as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Only the rows a declaration says are read: events by type and look-back, no ended ones."""
    keep = pd.Series(False, index=events.index)
    for kind, back in reads.events.items():
        this = events["type"] == kind
        if back is not None:
            this &= pd.to_datetime(events["date"]) >= as_of - back
        keep |= this
    if not reads.ended_contracts:
        end = pd.to_datetime(contracts["end_date"])
        contracts = contracts[end.isna() | (end > as_of)]
    return contracts, events[keep]


@pytest.mark.parametrize(("built_in", "expected"), BUILT_INS, ids=lambda v: getattr(v, "name", ""))
def test_each_built_in_declares_what_its_parameters_say(built_in: Rule, expected: Reads) -> None:
    """Check each built-in rule's declaration, e.g. RecentDecline(days=30): declines of 30 days."""
    assert Reads.of(built_in) == expected


_TYPES = [
    "complaint_opened",
    "complaint_closed",
    "offer_made",
    "offer_declined",
    "churn_signal",
    "offer_accepted",
]
_EVENT = st.tuples(
    st.sampled_from(["C1", "C2", "C3", "C4"]),
    st.integers(min_value=0, max_value=900),
    st.sampled_from(_TYPES),
    st.sampled_from([None, "LOAN2", "CARD", "INS", "Loans"]),
    st.sampled_from([None, "R1", "R2"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_EVENT, max_size=14))
def test_a_built_in_blocks_the_same_given_only_what_it_declares(items: list[Any]) -> None:
    """Check that each built-in blocks the same when given only the rows it declares it reads."""
    events = pd.DataFrame(
        [
            {
                "client_id": c,
                "date": str((AS_OF - pd.Timedelta(days=d)).date()),
                "type": t,
                "product_id": p,
                "ref": r,
            }
            for c, d, t, p, r in items
        ],
        columns=["client_id", "date", "type", "product_id", "ref"],
    )
    whole = _book(CONTRACTS, events)
    for built_in, _ in BUILT_INS:
        declared = Reads.of(built_in)
        assert declared is not None
        contracts, kept = _declared_rows(CONTRACTS, events, declared, AS_OF)
        got = _blocks(_book(contracts, kept), built_in, AS_OF)
        assert got == _blocks(whole, built_in, AS_OF), built_in.name


def test_reads_keeps_look_backs_as_timedeltas_in_type_order() -> None:
    """Check that look-backs become Timedeltas, and equal declarations are equal and hash alike."""
    import datetime as dt

    a = Reads(events={"offer_made": dt.timedelta(days=30), "need": None})
    b = Reads(events={"need": None, "offer_made": np.timedelta64(30, "D")})
    assert list(a.events) == ["need", "offer_made"]
    assert a.events["offer_made"] == pd.Timedelta(days=30)
    assert a == b
    assert hash(a) == hash(b)
    assert Reads() == Reads(events={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": {"offer_made": 30}}, "The 'events' parameter of Reads must be a mapping"),
        ({"events": {"offer_made": pd.Timedelta(days=-1)}}, "non-negative timedeltas or None"),
        ({"events": {"": None}}, "a mapping of event types"),
        ({"events": ["offer_made"]}, "The 'events' parameter of Reads"),
        ({"ended_contracts": "yes"}, "The 'ended_contracts' parameter of Reads"),
    ],
)
def test_reads_refuses_what_is_not_a_declaration(kwargs: dict[str, Any], message: str) -> None:
    """Check that a look-back in plain days, a negative one or an empty type is refused."""
    with pytest.raises(InvalidParameterError, match=message):
        Reads(**kwargs)


def test_union_takes_every_type_the_longest_look_back_and_any_age_wins() -> None:
    """Check the union of declarations on a hand-made case."""
    a = Reads(events={"offer_made": 30 * DAYS, "churn_signal": 90 * DAYS})
    b = Reads(events={"offer_made": 60 * DAYS, "churn_signal": None}, ended_contracts=True)
    c = Reads(other_clients=True)
    got = Reads.union([a, b, c])
    assert got == Reads(
        events={"offer_made": 60 * DAYS, "churn_signal": None},
        ended_contracts=True,
        other_clients=True,
    )
    assert Reads.union([]) == Reads()


_READS = st.builds(
    Reads,
    events=st.dictionaries(
        st.sampled_from(_TYPES),
        st.one_of(st.none(), st.integers(0, 400).map(lambda d: pd.Timedelta(days=d))),
        max_size=4,
    ),
    ended_contracts=st.booleans(),
    other_clients=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(items=st.lists(_READS, max_size=5), seed=st.randoms())
def test_union_does_not_depend_on_order_and_repeats(items: list[Reads], seed: Any) -> None:
    """Check that the union is the same in any order, and that uniting it again changes nothing."""
    shuffled = list(items)
    seed.shuffle(shuffled)
    got = Reads.union(items)
    assert Reads.union(shuffled) == got
    assert Reads.union([got, *items]) == got
    for item in items:
        for kind, back in item.events.items():
            wider = got.events[kind]
            assert wider is None or (back is not None and back <= wider)


def test_policy_reads_unites_its_rules() -> None:
    """Check that route_sales reads its event rules' types with their own look-backs."""
    policy = route_sales(decline_days=120, contact_days=14)
    assert policy.reads == Reads(
        events={
            "complaint_opened": None,
            "complaint_closed": None,
            "offer_declined": 120 * DAYS,
            "offer_made": 14 * DAYS,
            "churn_signal": 90 * DAYS,
        }
    )
    assert Policy([AlreadyHeld(), DoNotContact()]).reads == Reads()
    assert Policy([]).reads == Reads()
    assert Policy([GroupHeld()]).reads == Reads(other_clients=True)


def _accepted_lately(ctx: RuleContext) -> Blocks:
    accepted = ctx.events("offer_accepted", days=30)
    return Blocks.clients(accepted["client_idx"].to_numpy(), "accepted an offer lately")


class _OwnRule:
    """A rule of the caller's own class, written before rules could say what they read."""

    name = "own"
    kind = "contact"

    def blocks(self, ctx: RuleContext) -> Blocks:
        return Blocks.empty()


def test_a_user_rule_is_unknown_unless_it_declares_what_it_reads() -> None:
    """Check that an undeclared user rule makes the policy's reads unknown, a declared one not."""
    bare = FunctionRule(name="accepted", kind="contact", func=_accepted_lately)
    declared = FunctionRule(
        name="accepted",
        kind="contact",
        func=_accepted_lately,
        reads=Reads(events={"offer_accepted": 30 * DAYS}),
    )
    assert Reads.of(bare) is None
    assert route_sales().with_rules(bare).reads is None
    assert route_sales().with_rules(_accepted_lately).reads is None
    reads = route_sales().with_rules(declared).reads
    assert reads is not None
    assert reads.events["offer_accepted"] == 30 * DAYS
    assert reads.events["offer_made"] == 30 * DAYS
    # a rule class of one's own is still a Rule without ``reads``, and is unknown
    assert isinstance(_OwnRule(), Rule)
    assert Policy([AlreadyHeld(), _OwnRule()]).reads is None
    odd = _OwnRule()
    odd.reads = "everything"  # type: ignore[attr-defined]
    assert Reads.of(odd) is None


def test_rule_decorator_passes_reads_on() -> None:
    """Check that @rule(reads=...) gives a FunctionRule with that declaration, and a refusal."""

    @rule(kind="contact", reads=Reads(events={"offer_accepted": 30 * DAYS}))
    def accepted(ctx: RuleContext) -> Blocks:
        return _accepted_lately(ctx)

    assert isinstance(accepted, FunctionRule)
    assert accepted.reads == Reads(events={"offer_accepted": 30 * DAYS})
    assert hash(accepted) == hash(accepted)
    with pytest.raises(InvalidParameterError, match="The 'reads' parameter of FunctionRule"):
        FunctionRule(name="x", kind="contact", func=_accepted_lately, reads={"offer_made": 30})  # type: ignore[arg-type]
