"""Tests of the Recommender facade: offers, policy, explanations, audit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosssell as cs
import crosssell.recommender as recommender_module
from crosssell import Book, DataWarning, NotFittedError
from crosssell.recommender import OFFER_COLUMNS, Recommender
from crosssell.rules import route_sales
from crosssell.scorers import ALS, CoOccurrence, ItemKNN, Popularity

AS_OF = "2024-06-30"


def _catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": ["CRM-1", "CRM-2", "ERP-1", "ERP-2", "HR-1", "BI-1"],
            "family": ["CRM", "CRM", "ERP", "ERP", "HR", "BI"],
            "tier": [1, 2, 1, 2, 1, 1],
            "price": [100.0, 300.0, 200.0, 500.0, 50.0, 80.0],
        }
    )


def _contracts() -> pd.DataFrame:
    rows = [
        # clients who hold CRM-1 and ERP-1 mostly also hold HR-1: a rule to learn
        ("A", "CRM-1"),
        ("A", "ERP-1"),
        ("A", "HR-1"),
        ("B", "CRM-1"),
        ("B", "ERP-1"),
        ("B", "HR-1"),
        ("C", "CRM-1"),
        ("C", "ERP-1"),
        ("C", "HR-1"),
        ("D", "CRM-2"),
        ("D", "ERP-2"),
        ("D", "HR-1"),
        ("E", "CRM-1"),
        ("E", "ERP-1"),
        ("F", "CRM-1"),
    ]
    df = pd.DataFrame(rows, columns=["client_id", "product_id"])
    df["start_date"] = "2023-01-01"
    df["end_date"] = pd.NA
    df["value"] = 100.0
    return df


@pytest.fixture
def book() -> Book:
    clients = pd.DataFrame(
        {
            "client_id": list("ABCDEFG"),
            "segment": ["mid"] * 6 + ["small"],
            "satisfaction": [8.0] * 7,
        }
    )
    return Book.from_frames(contracts=_contracts(), products=_catalog(), clients=clients)


def test_fit_returns_self_and_stores_as_of(book: Book) -> None:
    """Check that fit returns the recommender and records the as_of it used."""
    rec = Recommender()
    assert rec.fit(book, AS_OF) is rec
    assert rec.as_of_ == pd.Timestamp(AS_OF)


def test_not_fitted_error_names_the_class() -> None:
    """Check that recommending before fit raises scikit-learn's not-fitted message."""
    with pytest.raises(NotFittedError, match="This Recommender instance is not fitted yet"):
        Recommender().recommend()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 0}, "The 'k' parameter of Recommender must be an int in the range [1, inf). Got 0"),
        ({"batch_size": -5}, "The 'batch_size' parameter of Recommender must be an int"),
        (
            {"cold_start": "nearest"},
            "The 'cold_start' parameter of Recommender must be a str among",
        ),
        ({"scorer": "als"}, "The 'scorer' parameter of Recommender must be a crosssell scorer"),
        (
            {"n_jobs": 0},
            "The 'n_jobs' parameter of Recommender must be an int in the range (-inf, -1] or an ",
        ),
        ({"n_jobs": 1.5}, "The 'n_jobs' parameter of Recommender must be an int"),
    ],
)
def test_bad_parameters_raise_at_fit(book: Book, params: dict[str, object], message: str) -> None:
    """Check that a bad parameter is named when fit validates it."""
    with pytest.raises(
        ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        Recommender(**params).fit(book, AS_OF)  # type: ignore[arg-type]


def test_offers_have_documented_columns_and_caller_ids(book: Book) -> None:
    """Check that offers are a tidy frame with the documented columns and the caller's ids."""
    offers = Recommender(k=2).fit(book, AS_OF).recommend()
    assert tuple(offers.columns) == OFFER_COLUMNS
    assert set(offers["client_id"]) <= set("ABCDEFG")
    assert offers["rank"].min() == 1
    assert set(offers["offer_type"]) <= {"upsell", "cross_sell"}


def test_integer_ids_stay_integers() -> None:
    """Check that integer client and product ids come back as integers."""
    contracts = pd.DataFrame(
        {
            "client_id": [1, 1, 2, 3],
            "product_id": [10, 20, 10, 20],
            "start_date": ["2024-01-01"] * 4,
        }
    )
    offers = Recommender(k=1).fit(Book.from_frames(contracts=contracts), AS_OF).recommend()
    assert offers["client_id"].dtype.kind == "i"
    assert offers["product_id"].dtype.kind == "i"
    assert sorted(offers["client_id"].tolist()) == [2, 3]


def test_held_products_are_never_offered(book: Book) -> None:
    """Check that no offer names a product its client holds actively."""
    offers = Recommender(k=5).fit(book, AS_OF).recommend()
    held = set(map(tuple, _contracts()[["client_id", "product_id"]].to_numpy()))
    assert not held & set(zip(offers["client_id"], offers["product_id"], strict=True))


def test_learned_rule_ranks_first(book: Book) -> None:
    """Check that co-occurrence puts HR-1 first for a client with CRM-1 and ERP-1 but no HR-1."""
    offers = Recommender(scorer=CoOccurrence(), k=1).fit(book, AS_OF).recommend(["E"])
    assert offers["product_id"].tolist() == ["HR-1"]
    # The reason cites what the client holds, never the offer's own family or a product it lacks.
    assert offers["reason"].iloc[0] == "Clients who hold ERP-1 and CRM-1 often also hold HR-1."
    assert {e["product_id"] for e in offers["evidence"].iloc[0]} <= {"CRM-1", "ERP-1"}


def test_exactly_k_or_fewer_never_duplicates(book: Book) -> None:
    """Check that each client gets exactly k offers when enough candidates exist, no duplicates."""
    offers = Recommender(k=3).fit(book, AS_OF).recommend()
    sizes = offers.groupby("client_id").size()
    assert (sizes <= 3).all()
    assert not offers.duplicated(["client_id", "product_id"]).any()
    # F holds only CRM-1: candidates CRM-2 (upsell), ERP-1, ERP-2, HR-1, BI-1 -> 3 offers
    assert sizes["F"] == 3
    ranks = offers.groupby("client_id")["rank"].apply(list)
    assert all(r == list(range(1, len(r) + 1)) for r in ranks)


def test_k_larger_than_catalogue(book: Book) -> None:
    """Check that asking for more offers than products gives every candidate once."""
    offers = Recommender(k=50).fit(book, AS_OF).recommend(["F"])
    # F holds CRM-1; a lower tier is never offered, so 5 candidates remain
    assert sorted(offers["product_id"]) == ["BI-1", "CRM-2", "ERP-1", "ERP-2", "HR-1"]


def test_upsell_typed_and_valued(book: Book) -> None:
    """Check that a higher tier of a held family is an upsell valued at the price difference."""
    offers = Recommender(k=10).fit(book, AS_OF).recommend(["F"])
    crm2 = offers.set_index("product_id").loc["CRM-2"]
    assert crm2["offer_type"] == "upsell"
    assert crm2["value"] == pytest.approx(300.0 - 100.0)
    assert offers.set_index("product_id").loc["HR-1", "offer_type"] == "cross_sell"


def test_unknown_client_gets_no_offers_and_a_warning(book: Book) -> None:
    """Check that an unknown client id warns, gets nothing, and why_not says why."""
    rec = Recommender().fit(book, AS_OF)
    with pytest.warns(DataWarning, match="1 client id"):
        offers = rec.recommend(["ZZ", "A"])
    assert set(offers["client_id"]) <= {"A"}
    assert "not in the book" in rec.why_not("ZZ", "HR-1")


def test_cold_client_gets_segment_popularity(book: Book) -> None:
    """Check that a client with no holdings gets its segment's popular products, as cold_start."""
    offers = Recommender(k=2).fit(book, AS_OF).recommend(["G"])
    assert offers["cold_start"].all()
    assert len(offers) == 2
    assert "popular" in offers["reason"].iloc[0]


def test_deterministic(book: Book) -> None:
    """Check that two fits with the same settings give identical offers."""
    a = Recommender(scorer=ALS(factors=4, random_state=0), k=3).fit(book, AS_OF).recommend()
    b = Recommender(scorer=ALS(factors=4, random_state=0), k=3).fit(book, AS_OF).recommend()
    pd.testing.assert_frame_equal(a, b)


def test_levers_reorder_offers(book: Book) -> None:
    """Check that a lever on a family raises its offers' priority."""
    base = Recommender(k=1).fit(book, AS_OF).recommend(["F"])
    boosted = Recommender(k=1, levers={"HR": 1000.0}).fit(book, AS_OF).recommend(["F"])
    assert boosted["product_id"].tolist() == ["HR-1"]
    assert base["product_id"].tolist() != ["HR-1"]


def test_max_per_family(book: Book) -> None:
    """Check that diversity keeps at most one offer per family."""
    offers = Recommender(k=4, max_per_family=1).fit(book, AS_OF).recommend(["F"])
    fam = offers["product_id"].str.split("-").str[0]
    assert not fam.duplicated().any()
    assert len(offers) == 4


def test_recommend_explain_false_is_the_same_ranking(book: Book) -> None:
    """Check that explain=False changes only the reason and evidence columns."""
    rec = Recommender(k=3).fit(book, AS_OF)
    a = rec.recommend().drop(columns=["reason", "evidence"])
    b = rec.recommend(explain=False).drop(columns=["reason", "evidence"])
    pd.testing.assert_frame_equal(a, b)


def test_batch_size_does_not_change_offers(book: Book) -> None:
    """Check that scoring in smaller chunks gives the same offers."""
    a = Recommender(k=3).fit(book, AS_OF).recommend()
    b = Recommender(k=3, batch_size=2).fit(book, AS_OF).recommend()
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("n_jobs", [1, 2, 3, -1])
def test_threads_do_not_change_offers(n_jobs: int) -> None:
    """Check that blocks scored on several threads give the offers of one thread, in order."""
    book = cs.datasets.demo()
    one = Recommender(policy=route_sales(), k=3, batch_size=7, n_jobs=1).fit(book, "2025-06-30")
    many = one.clone().set_params(n_jobs=n_jobs).fit(book, "2025-06-30")
    pd.testing.assert_frame_equal(many.recommend(), one.recommend())


@pytest.mark.parametrize(
    "scorer",
    [ALS(factors=4, random_state=0), ItemKNN(), CoOccurrence(), Popularity(by="segment")],
)
def test_scoring_a_block_in_cached_pieces_changes_no_offer(
    monkeypatch: pytest.MonkeyPatch, scorer: cs.scorers.Scorer
) -> None:
    """Check that blocks scored and selected in pieces of 16 clients give the whole blocks' offers.

    (A matrix product may round a row's scores differently for another number of rows; the
    demo book has no offers that close.)
    """
    book = cs.datasets.demo()
    rec = Recommender(scorer=scorer, policy=route_sales(), k=3).fit(book, "2025-06-30")
    assert rec.scorer_.scores_by_row
    whole = rec.recommend()
    monkeypatch.setattr(recommender_module, "_CACHED_SCORES", 16 * len(book.product_ids))
    bare = rec.recommend(explain=False)
    pd.testing.assert_frame_equal(rec.recommend(), whole)
    monkeypatch.setattr(recommender_module, "_CACHED_SCORES", 1 << 40)
    pd.testing.assert_frame_equal(rec.recommend(explain=False), bare)


def test_stacking_blocks_on_threads_equals_pandas_concat() -> None:
    """Check that the threaded stacking of block frames gives pd.concat's frame exactly.

    Numeric columns copied in, Arrow text and lists joined, object ids, a column whose type
    differs between blocks, and an empty block.
    """
    from concurrent.futures import ThreadPoolExecutor

    from crosssell.recommender import _stack

    rng = np.random.default_rng(0)

    def part(n: int, ints: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "client_id": pd.Index(rng.integers(0, 99, n)).astype(object),
                "product_id": pd.array([f"P{i}" for i in rng.integers(0, 9, n)], dtype="str"),
                "score": rng.random(n),
                "rank": np.arange(1, n + 1),
                "cold_start": rng.random(n) < 0.5,
                "mixed": np.arange(n) if ints else np.arange(n) + 0.5,
                "evidence": pd.arrays.ArrowExtensionArray(
                    pa.array([[{"product_id": "P1", "weight": 0.5}]] * n)
                ),
            }
        )

    parts = [part(5, True), part(0, True), part(7, False), part(3, True)]
    with ThreadPoolExecutor(2) as pool:
        got = _stack(parts, pool)
    pd.testing.assert_frame_equal(got, pd.concat(parts, ignore_index=True))


def test_evidence_and_reason_columns_have_one_type_for_any_number_of_offers(book: Book) -> None:
    """Check that evidence is a list of {product_id, weight} and reason text, for 1 or many."""
    rec = Recommender(k=3, scorer=ItemKNN()).fit(book, AS_OF)
    few, many, bare = rec.recommend(["E"]), rec.recommend(), rec.recommend(explain=False)
    assert few["evidence"].dtype == many["evidence"].dtype == bare["evidence"].dtype
    assert few["reason"].dtype == many["reason"].dtype == "str"
    assert str(many["evidence"].dtype).startswith("list<item: struct<product_id: string")
    entry = many["evidence"].iloc[0]
    assert set(entry[0]) == {"product_id", "weight"}
    assert bare["evidence"].isna().all()
    assert bare["reason"].isna().all()
    one = rec.recommend_one("E")[0]
    assert one.evidence == tuple((e["product_id"], e["weight"]) for e in few["evidence"].iloc[0])
    assert one.to_dict()["evidence"] == list(few["evidence"].iloc[0])


@pytest.mark.parametrize(
    "scorer", [Popularity(), CoOccurrence(), ItemKNN(), ALS(factors=4, random_state=0)]
)
def test_every_scorer_works_in_the_recommender(book: Book, scorer: cs.scorers.Scorer) -> None:
    """Check that each scorer produces valid offers through the facade."""
    offers = Recommender(scorer=scorer, k=2).fit(book, AS_OF).recommend()
    assert len(offers) > 0
    assert offers["reason"].map(lambda s: isinstance(s, str) and len(s) > 10).all()


# --------------------------------------------------------------------------- policy scenarios


def _scenario_book(events: list[tuple[str, str, str, str | None, str | None]]) -> Book:
    ev = pd.DataFrame(events, columns=["client_id", "date", "type", "product_id", "ref"])
    clients = pd.DataFrame({"client_id": list("ABCDEFG"), "segment": ["mid"] * 7})
    return Book.from_frames(contracts=_contracts(), products=_catalog(), clients=clients, events=ev)


def test_open_complaint_blocks_every_offer_until_cool_off_ends() -> None:
    """Check that an open complaint blocks every offer and that they return after the cool-off."""
    book = _scenario_book(
        [
            ("E", "2024-06-01", "complaint_opened", None, "R1"),
            ("E", "2024-07-10", "complaint_closed", None, "R1"),
        ]
    )
    policy = route_sales()
    during = Recommender(policy=policy).fit(book, "2024-06-30")
    assert "E" not in set(during.recommend()["client_id"])
    log = during.suppressed()
    assert (log.loc[log["client_id"] == "E", "rule"] == "open_complaint").any()
    assert "open_complaint" in during.why_not("E", "HR-1")
    cooling = Recommender(policy=policy).fit(book, "2024-07-20")
    assert "E" not in set(cooling.recommend()["client_id"])
    after = Recommender(policy=policy).fit(book, "2024-09-01")
    assert "E" in set(after.recommend()["client_id"])


def test_decline_blocks_that_product_for_the_window_only() -> None:
    """Check that a declined product is not offered within the window and returns after it."""
    book = _scenario_book([("E", "2024-06-01", "offer_declined", "HR-1", None)])
    # popularity gives every held-somewhere product a score, so other offers remain visible
    rec = Recommender(scorer=Popularity(), policy=route_sales(), k=10)
    soon = rec.fit(book, "2024-06-30").recommend(["E"])
    assert "HR-1" not in set(soon["product_id"])
    assert len(soon) > 0  # other products are still offered
    later = rec.fit(book, "2024-12-31").recommend(["E"])
    assert "HR-1" in set(later["product_id"])


def test_renewal_due_blocks_cross_sell_not_the_upsell_of_that_contract() -> None:
    """Check that a contract due for renewal blocks cross-sell but allows its own upsell."""
    contracts = pd.DataFrame(
        {
            "client_id": ["R", "R", "X", "X", "X", "Y", "Y"],
            "product_id": ["CRM-1", "ERP-1", "CRM-1", "ERP-1", "HR-1", "CRM-2", "ERP-1"],
            "start_date": ["2023-08-01", "2024-01-01"] + ["2023-01-01"] * 5,
            "end_date": ["2024-07-31", None, None, None, None, None, None],
            "value": [100.0, 200.0, 100.0, 200.0, 50.0, 300.0, 200.0],
        }
    )
    book = Book.from_frames(contracts=contracts, products=_catalog())
    rec = Recommender(policy=route_sales(), k=10).fit(book, "2024-06-30")
    offers = rec.recommend(["R"])
    assert set(offers["product_id"]) == {"CRM-2"}
    assert offers["offer_type"].tolist() == ["upsell"]
    assert "renewal_first" in rec.why_not("R", "HR-1")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(list("ABCDEF")), min_size=0, max_size=4), st.integers(1, 6))
def test_suppressed_pairs_never_appear_in_offers(book: Book, dnc: list[str], k: int) -> None:
    """Check that no pair in the suppression log (or a client-level block) is ever offered."""
    events = pd.DataFrame(
        {
            "client_id": dnc,
            "date": ["2024-06-01"] * len(dnc),
            "type": ["offer_declined"] * len(dnc),
            "product_id": ["HR-1"] * len(dnc),
        }
    )
    b = Book.from_frames(contracts=_contracts(), products=_catalog(), events=events)
    rec = Recommender(policy=route_sales(), k=k).fit(b, AS_OF)
    offers = rec.recommend()
    log = rec.suppressed()
    pair_blocked = set(zip(log["client_id"], log["product_id"], strict=True))
    client_blocked = set(log.loc[log["product_id"].isna() & (log["scope"] == "any"), "client_id"])
    for c, p in zip(offers["client_id"], offers["product_id"], strict=True):
        assert (c, p) not in pair_blocked
        assert c not in client_blocked
    assert not any(
        c in dnc and p == "HR-1"
        for c, p in zip(offers["client_id"], offers["product_id"], strict=True)
    )


def test_no_offer_report_names_the_blocking_rule() -> None:
    """Check that a client left without offers is listed with the rule that blocked it."""
    clients = pd.DataFrame(
        {"client_id": list("ABCDEFG"), "do_not_contact": [False] * 4 + [True] + [False] * 2}
    )
    book = Book.from_frames(contracts=_contracts(), products=_catalog(), clients=clients)
    rec = Recommender(policy=route_sales()).fit(book, AS_OF)
    report = rec.no_offer_report()
    row = report.set_index("client_id").loc["E"]
    assert "do_not_contact" in row["rules"]


def test_as_of_before_an_event_removes_its_effect() -> None:
    """Check that fitting before a complaint was opened ignores it."""
    book = _scenario_book([("E", "2024-06-01", "complaint_opened", None, "R1")])
    before = Recommender(policy=route_sales()).fit(book, "2024-05-31")
    assert "E" in set(before.recommend()["client_id"])


def test_recommender_on_demo_book() -> None:
    """Check that the default recommender with the route-sales policy runs on the demo book."""
    book = cs.datasets.demo()
    rec = Recommender(policy=route_sales(), k=3).fit(book, cs.datasets.demo_as_of())
    offers = rec.recommend()
    assert offers["client_id"].nunique() > 100
    assert np.isfinite(offers["expected_value"]).all()
    assert (offers["propensity"].between(0, 1)).all()


def test_no_offer_report_names_not_worth_proposing() -> None:
    """Check that a client whose candidates all fall under the threshold is reported as such."""
    book = Book.from_frames(contracts=_contracts(), products=_catalog())
    policy = route_sales(min_expected_value=1e9)
    rec = Recommender(policy=policy).fit(book, AS_OF)
    assert rec.recommend().empty
    report = rec.no_offer_report().set_index("client_id")
    assert report.loc["F", "rules"] == ("not_worth_proposing",)
    assert "worth proposing: the expected value must exceed 1e+09" in report.loc["F", "reason"]


def test_recommend_one_fills_the_client_of_fresh_rows(book: Book) -> None:
    """Check that fresh contracts without a client column are taken as the client's own."""
    rec = Recommender(k=5).fit(book, AS_OF)
    before = {o.product_id for o in rec.recommend_one("F")}
    fresh = {"product_id": ["HR-1"], "start_date": ["2024-06-01"]}
    after = {o.product_id for o in rec.recommend_one("F", contracts=fresh)}
    assert "HR-1" in before
    assert "HR-1" not in after


class _Halving:
    """A calibrator the compiled pass cannot inline, returning float64 as crosssell's own do."""

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(scores, dtype=np.float64) * 0.5, 0, 1)


@pytest.mark.parametrize(
    ("scorer", "calibrator"),
    [(None, None), (ALS(factors=8, random_state=0), None), (CoOccurrence(), _Halving())],
)
def test_compiled_pass_gives_the_numpy_offers(
    monkeypatch: pytest.MonkeyPatch, scorer: object, calibrator: object
) -> None:
    """Check that recommend's compiled selection equals the numpy definition, frame for frame."""
    from crosssell.arbitration import _select

    book = cs.datasets.demo()
    rec = Recommender(
        scorer=scorer, calibrator=calibrator, policy=route_sales(), k=5, batch_size=64
    )
    rec.fit(book, "2025-06-30")
    compiled = rec.recommend()
    monkeypatch.setattr(_select, "MAX_K", 0)
    numpy_path = rec.recommend()
    assert len(compiled) > 100
    pd.testing.assert_frame_equal(compiled, numpy_path)
    one = rec.recommend_one(book.client_ids.external[0])
    monkeypatch.undo()
    assert [o.product_id for o in one] == [
        o.product_id for o in rec.recommend_one(book.client_ids.external[0])
    ]


def test_warm_up_compiles_without_changing_offers(book: Book) -> None:
    """Check that warming a fitted model up leaves its offers as they were, and needs a fit."""
    rec = Recommender(k=3).fit(book, AS_OF)
    before = rec.recommend()
    rec._warm_up()
    pd.testing.assert_frame_equal(rec.recommend(), before)
    with pytest.raises(NotFittedError):
        Recommender()._warm_up()


def test_why_not_gives_the_rank_recommend_gives_even_among_ties() -> None:
    """Check that why_not names each offer's own rank, in the documented order for ties."""
    book = cs.datasets.demo()
    # one neighbour leaves most scores at zero, so most priorities tie
    rec = Recommender(scorer=ItemKNN(neighbours=1), k=5).fit(book, "2025-06-30")
    offers = rec.recommend(book.client_ids.external[:40])
    assert len(offers) > 0
    for client, product, rank in offers[["client_id", "product_id", "rank"]].itertuples(
        index=False
    ):
        assert f"at rank {rank} " in rec.why_not(client, product)


def test_repr_of_a_recommender_with_a_policy_fits_on_one_line() -> None:
    """Check that the repr names the stock policy or counts the rules instead of listing them."""
    from crosssell.rules import AlreadyHeld, Policy, route_sales

    assert repr(Recommender(policy=route_sales())) == "Recommender(policy=route_sales())"
    assert repr(Recommender(policy=route_sales(decline_days=30), k=7)) == (
        "Recommender(policy=<Policy 'route_sales': 13 rules>, k=7)"
    )
    assert repr(Recommender(policy=Policy([AlreadyHeld()]))) == (
        "Recommender(policy=Policy(name='custom', rules=['already_held']))"
    )
    # the policy itself still lists every rule with its parameters
    assert "RecentDecline(name='recent_decline', days=30" in repr(route_sales(decline_days=30))


def test_contact_cost_drops_exactly_the_offers_below_it() -> None:
    """Check that a contact cost keeps the offers whose expected value reaches it, no others."""
    book = Book.from_frames(contracts=_contracts(), products=_catalog())
    free = Recommender(policy=route_sales(), k=6).fit(book, AS_OF).recommend(explain=False)
    cost = float(np.median(free["expected_value"]))
    rec = Recommender(policy=route_sales(contact_cost=cost), k=6).fit(book, AS_OF)
    paid = rec.recommend(explain=False)
    want = free[free["expected_value"] >= cost]
    assert 0 < len(paid) < len(free)
    assert set(zip(paid["client_id"], paid["product_id"], strict=True)) == set(
        zip(want["client_id"], want["product_id"], strict=True)
    )
    dropped = free[free["expected_value"] < cost].iloc[0]
    p, v = dropped["propensity"], dropped["value"]
    assert rec.why_not(dropped["client_id"], dropped["product_id"]).endswith(
        f"not worth proposing: expected value {p * v:.2f} (propensity {p:.3f} x value "
        f"{v:.0f}) is below the {cost:.2f} cost of proposing it"
    )


def test_contact_cost_per_family_spares_other_families() -> None:
    """Check that a cost on one family removes its offers only."""
    book = Book.from_frames(contracts=_contracts(), products=_catalog())
    free = Recommender(policy=route_sales(), k=6).fit(book, AS_OF).recommend(explain=False)
    rec = Recommender(policy=route_sales(contact_cost={"HR": 1e9}), k=6).fit(book, AS_OF)
    paid = rec.recommend(explain=False)
    assert "HR-1" in set(free["product_id"])
    assert set(paid["product_id"]) == set(free["product_id"]) - {"HR-1"}


def test_no_offer_report_and_log_name_the_contact_cost() -> None:
    """Check that a client with no offer worth its cost is reported so, and logged per pair."""
    book = Book.from_frames(contracts=_contracts(), products=_catalog())
    rec = Recommender(policy=route_sales(contact_cost=1e9)).fit(book, AS_OF)
    assert rec.recommend().empty
    report = rec.no_offer_report().set_index("client_id")
    assert report.loc["F", "rules"] == ("not_worth_proposing",)
    assert report.loc["F", "reason"] == (
        "no candidate left by the policy was worth proposing: no expected value reached the "
        "1000000000.00 cost of proposing it"
    )
    log = rec.suppressed(not_worth=True)
    weak = log[(log["rule"] == "not_worth_proposing") & (log["client_id"] == "F")]
    assert "ERP-1" in set(weak["product_id"])
    assert weak["detail"].str.endswith("is below the 1000000000.00 cost of proposing it").all()
    assert len(rec.suppressed()) == len(log) - (log["rule"] == "not_worth_proposing").sum()


# ------------------------------------------------------------- one client with new events

_DEMO_DAY = "2025-06-30"


@pytest.fixture(scope="module")
def demo_rec() -> Recommender:
    return Recommender(policy=route_sales(), k=3).fit(cs.datasets.demo(), _DEMO_DAY)


def _full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Recommender, "_recommend_one_events", lambda self, *a, **kw: None)


@pytest.mark.parametrize(
    "events",
    [
        [{"date": _DEMO_DAY, "type": "complaint_opened", "ref": "R9"}],
        [{"date": "2025-06-01", "type": "complaint_opened", "ref": 7},
         {"date": "2025-06-20", "type": "complaint_closed", "ref": 7}],
        [{"date": _DEMO_DAY, "type": "offer_declined", "product_id": "BI-2"}],
        [{"date": _DEMO_DAY, "type": "need", "product_id": "HR-2", "detail": "asked"}],
        [{"date": "2025-06-29", "type": "churn_signal"}],
        [{"date": _DEMO_DAY, "type": "offer_made", "product_id": p} for p in
         ("BI-2", "HR-2", "HR-3")],
    ],
)  # fmt: skip
@pytest.mark.parametrize("explain", [False, True])
def test_one_client_path_gives_the_full_paths_offers(demo_rec, monkeypatch, events, explain):
    """Check that new events give the same offers on the one-client path as on the full path."""
    for client in ("C0001", "C0002", "C0017", "C0100"):
        fast = [o.to_dict() for o in demo_rec.recommend_one(client, events=events, explain=explain)]
        with monkeypatch.context() as m:
            _full_path(m)
            full = demo_rec.recommend_one(client, events=events, explain=explain)
        assert fast == [o.to_dict() for o in full]


def test_one_client_path_is_taken_and_blocks_on_a_complaint(demo_rec, monkeypatch):
    """Check that plain new events take the one-client path, and a complaint empties the offers."""
    taken = _taken(monkeypatch)
    complaint = [{"date": _DEMO_DAY, "type": "complaint_opened"}]
    assert demo_rec.recommend_one("C0001") != []
    assert demo_rec.recommend_one("C0001", events=complaint) == []
    assert taken == [True]


@pytest.mark.parametrize(
    "events",
    [
        [{"date": _DEMO_DAY, "type": "Complaint_Opened"}],
        [{"date": "30/06/2025", "type": "need"}],
        [{"date": _DEMO_DAY, "type": "need", "colour": "red"}],
        [{"date": _DEMO_DAY, "type": "need", "product_id": "NOPE"}],
        [{"date": "2030-01-01", "type": "need"}],
    ],
)
def test_records_not_plainly_valid_take_the_full_path(demo_rec, events):
    """Check that records the one-client path cannot vouch for are left to the full path."""
    row = demo_rec.book_.client_ids.index_of("C0001")
    assert demo_rec._recommend_one_events(row, "C0001", events, 3, False) is None


def test_one_client_path_matches_new_contracts_too(demo_rec, monkeypatch):
    """Check that new contracts with events give the same offers with or without the fast path."""
    contracts = [{"product_id": "HR-2", "start_date": "2025-06-01", "value": 100.0}]
    events = [{"date": _DEMO_DAY, "type": "offer_declined", "product_id": "BI-2"}]
    fast = demo_rec.recommend_one("C0001", contracts=contracts, events=events)
    with monkeypatch.context() as m:
        _full_path(m)
        full = demo_rec.recommend_one("C0001", contracts=contracts, events=events)
    assert [o.to_dict() for o in fast] == [o.to_dict() for o in full]
    assert "HR-2" not in [o.product_id for o in fast]


_DEMO_PRODUCTS = [f"{f}-{t}" for f in ("CRM", "ERP", "BI", "HR", "PAY", "SEC") for t in (1, 2, 3)]


@st.composite
def _new_events(draw: st.DrawFn) -> list[dict[str, object]]:
    """A CRM's few new records of one client: any built-in type, dates in the last 120 days."""
    out = []
    for _ in range(draw(st.integers(1, 5))):
        day = pd.Timestamp(_DEMO_DAY) - pd.Timedelta(days=draw(st.integers(0, 120)))
        record: dict[str, object] = {
            "date": str(day.date()),
            "type": draw(st.sampled_from(sorted(cs.columns.EventType.known))),
        }
        if draw(st.booleans()):
            record["product_id"] = draw(st.sampled_from(_DEMO_PRODUCTS))
        if draw(st.booleans()):
            record["ref"] = draw(st.sampled_from(["R1", "R2", 7]))
        out.append(record)
    return out


@pytest.fixture(scope="module")
def demo_recs() -> list[Recommender]:
    """The route-sales policy, and one whose event rules bite harder (family-wide declines)."""
    strict = route_sales(
        decline_days=365, decline_scope="family", contact_max_offers=1, contact_days=60
    )
    book = cs.datasets.demo()
    return [
        Recommender(policy=route_sales(), k=3).fit(book, _DEMO_DAY),
        Recommender(policy=strict, k=5).fit(book, _DEMO_DAY),
    ]


# clients whose offers the event rules change at fit, and plain ones
_DEMO_CLIENTS = ["C0008", "C0016", "C0020", "C0042", "C0001", "C0002", "C0017", "C0100", "C0333"]


def _both_paths(rec, monkeypatch, client, events, explain=False):
    fast = [o.to_dict() for o in rec.recommend_one(client, events=events, explain=explain)]
    with monkeypatch.context() as m:
        _full_path(m)
        full = [o.to_dict() for o in rec.recommend_one(client, events=events, explain=explain)]
    return fast, full


_CHECKS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_CHECKS
@given(
    events=_new_events(),
    where=st.tuples(st.sampled_from(_DEMO_CLIENTS), st.integers(0, 1)),
    explain=st.booleans(),
)
def test_one_client_path_equals_the_full_path_on_random_events(
    demo_recs, monkeypatch, events, where, explain
):
    """Check that any plainly valid new events give the same offers on both paths."""
    client, which = where
    fast, full = _both_paths(demo_recs[which], monkeypatch, client, events, explain)
    assert fast == full


@pytest.mark.parametrize("client", ["C0001", "C0002", "C0017", "C0320"])
def test_one_client_path_equals_the_full_path_for_every_decline(demo_recs, monkeypatch, client):
    """Check that declining any product, upsells included, blocks the same offers on both paths."""
    for rec in demo_recs:
        for product in rec.book_.product_ids.external:
            declined = [{"date": _DEMO_DAY, "type": "offer_declined", "product_id": product}]
            fast, full = _both_paths(rec, monkeypatch, client, declined)
            assert fast == full, product


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Spy on the one-client path: one entry per call, True when it answered."""
    taken: list[bool] = []
    original = Recommender._recommend_one_events

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(Recommender, "_recommend_one_events", spy)
    return taken


def _hold_bi2(ctx):
    # the full path scores one client's own Book: name C0001 only when it is there
    held = [c for c in ["C0001"] if c in set(ctx.book.client_ids.external)]
    return pd.DataFrame({"client_id": held, "product_id": ["BI-2"] * len(held)})


def _rested(ctx):
    accepted = ctx.events("offer_accepted", days=30)
    return cs.rules.Blocks.clients(accepted["client_idx"].to_numpy(), "accepted an offer lately")


_DECLARED_NONE = cs.rules.FunctionRule(
    name="hold", kind="eligibility", func=_hold_bi2, reads=cs.rules.Reads()
)
_DECLARED_EVENTS = cs.rules.FunctionRule(
    name="rested",
    kind="contact",
    func=_rested,
    reads=cs.rules.Reads(events={"offer_accepted": pd.Timedelta(days=30)}),
)
_SLEEPING = cs.rules.SleepingDog(uplift={("C0001", "CRM-3"): (-0.1, -0.02, 0.1, 0.2)})


@pytest.mark.parametrize(
    ("extra", "fast"),
    [
        (_SLEEPING, True),
        (_DECLARED_NONE, True),
        (_DECLARED_EVENTS, False),
        (dataclasses.replace(_DECLARED_NONE, reads=None), False),
        (cs.rules.GroupHeld(), False),
    ],
    ids=["sleeping_dog", "declared_no_event", "declared_events", "undeclared", "group_held"],
)
def test_one_client_path_follows_what_the_rules_read(monkeypatch, extra, fast):
    """Check that rules reading no event keep the one-client path; the others take the full one."""
    rec = Recommender(policy=route_sales().with_rules(extra), k=3).fit(
        cs.datasets.demo(), _DEMO_DAY
    )
    taken = _taken(monkeypatch)
    events = [
        [{"date": _DEMO_DAY, "type": "offer_declined", "product_id": "BI-2"}],
        [{"date": "2025-06-29", "type": "offer_accepted", "product_id": "HR-2"}],
    ]
    for client in ("C0001", "C0002"):
        for new in events:
            got, full = _both_paths(rec, monkeypatch, client, new)
            assert got == full
    assert taken == [fast] * 4
    # and each rule still bites: its pair is gone, or the client who just accepted gets nothing
    gone = {"sleeping_dog": ("C0001", "CRM-3"), "hold": ("C0001", "BI-2")}
    if extra.name in gone:
        client, product = gone[extra.name]
        assert product not in [o.product_id for o in rec.recommend_one(client, events=events[1])]
    if extra.name == "rested":
        assert rec.recommend_one("C0002", events=events[1]) == []


def test_closing_a_complaint_brings_the_offers_back_on_both_paths(monkeypatch):
    """Check that a complaint open at fit and closed by a new event no longer blocks offers."""
    frames = cs.datasets.demo_frames()
    opened = pd.DataFrame(
        {"client_id": ["C0001"], "date": ["2025-05-01"], "type": ["complaint_opened"],
         "ref": ["X1"]}
    )  # fmt: skip
    frames["events"] = pd.concat([frames["events"], opened], ignore_index=True)
    rec = Recommender(policy=route_sales(), k=3).fit(Book.from_frames(**frames), _DEMO_DAY)
    assert rec.recommend_one("C0001") == []
    closed = [{"date": "2025-05-20", "type": "complaint_closed", "ref": "X1"}]
    for explain in (False, True):
        fast, full = _both_paths(rec, monkeypatch, "C0001", closed, explain)
        assert fast == full
        assert fast != []
    # closed within the cool-off: still blocked on both paths
    recent = [{"date": "2025-06-20", "type": "complaint_closed", "ref": "X1"}]
    assert _both_paths(rec, monkeypatch, "C0001", recent) == ([], [])


def test_no_offer_reason_agrees_with_the_report_for_every_client(demo_rec):
    """Check that the one-client reason is the batch report's, for every client left empty."""
    report = demo_rec.no_offer_report()
    assert len(report) > 20
    for client, reason, rules in report.itertuples(index=False):
        assert demo_rec.no_offer_reason(client) == (reason, tuple(rules))


@pytest.mark.parametrize(
    "events",
    [
        [{"date": _DEMO_DAY, "type": "complaint_opened", "ref": "R9"}],
        [{"date": "2025-06-29", "type": "churn_signal"}],
        [{"date": "2025-06-29", "type": "churn_signal"},
         {"date": _DEMO_DAY, "type": "complaint_opened"}],
        [{"date": _DEMO_DAY, "type": "offer_made"} for _ in range(3)],
    ],
)  # fmt: skip
def test_no_offer_reason_with_new_events_is_that_of_a_refit(events):
    """Check that the reason given new events is the report's once the events are in the Book."""
    clients = ["C0001", "C0003", "C0016", "C0100"]
    frames = cs.datasets.demo_frames()
    rec = Recommender(policy=route_sales(), k=3).fit(Book.from_frames(**frames), _DEMO_DAY)
    added = pd.DataFrame([{**e, "client_id": c} for c in clients for e in events])
    frames["events"] = pd.concat([frames["events"], added], ignore_index=True)
    refit = Recommender(policy=route_sales(), k=3).fit(Book.from_frames(**frames), _DEMO_DAY)
    report = refit.no_offer_report(clients=clients).set_index("client_id")
    for client in clients:
        expected = (report.loc[client, "reason"], tuple(report.loc[client, "rules"]))
        assert rec.no_offer_reason(client, events=events) == expected


# ------------------------------------------------------------------- as_of outside the data
def test_fit_before_every_contract_is_an_error():
    """Check that fitting at a date when nothing is held names as_of and the book's dates."""
    with pytest.raises(cs.exceptions.InvalidParameterError) as caught:
        Recommender(k=2).fit(cs.datasets.demo(), "1990-01-01")
    assert str(caught.value) == (
        "The 'as_of' parameter of Recommender.fit is 1990-01-01, when no client holds any "
        "product: the book's dates run from 2021-01-01 to 2025-06-29. Fit at a date when "
        "contracts are held."
    )


def test_as_of_beyond_timestamps_is_out_of_range():
    """Check that a date past 2262 is called out of range, not 'not a date'."""
    with pytest.raises(ValueError, match=r"is out of range: '2300-01-01' is a date, but"):
        Recommender(k=2).fit(cs.datasets.demo(), "2300-01-01")


# -------------------------------------------------------------- offers without evidence
def test_product_held_by_nobody_is_not_explained_as_evidence():
    """Check that a zero-score offer is never said to be held by clients like this one."""
    c = pd.DataFrame(
        {
            "client_id": ["A", "A", "B", "B", "C"],
            "product_id": ["X", "Y", "X", "Y", "X"],
            "start_date": "2024-01-01",
        }
    )
    p = pd.DataFrame({"product_id": ["X", "Y", "Z"]})
    rec = Recommender(k=2, policy=None, scorer=ItemKNN()).fit(
        Book.from_frames(contracts=c, products=p), "2024-06-30"
    )
    offers = rec.recommend()
    zero = offers[offers["score"] <= 0]
    assert len(zero) > 0
    sentence = "Z completes the list: nothing in this client's portfolio points to it."
    assert set(zero["reason"]) == {sentence}
    one = rec.recommend_one("C")
    assert [o.reason for o in one if o.score <= 0] == [sentence]
    assert "widely held" not in " ".join(offers["reason"])


# ------------------------------------------------------------------ numerical failure in fit
def test_als_overflow_is_a_crosssell_error():
    """Check that ALS on huge confidences raises a crosssell error naming alpha and the values."""
    c = pd.DataFrame(
        {
            "client_id": ["A", "A", "B", "B", "C"],
            "product_id": ["X", "Y", "X", "Z", "Y"],
            "start_date": "2024-01-01",
            "value": [1e12] * 5,
        }
    )
    rec = Recommender(scorer=ALS(alpha=1e30, random_state=0, num_threads=1), weighting="value")
    with pytest.raises(cs.exceptions.InvalidParameterError) as caught:
        rec.fit(Book.from_frames(contracts=c), "2025-01-01")
    assert "alpha=1e+30 and the largest value 1e+12 give 1e+42" in str(caught.value)
    assert "Lower 'alpha'" in str(caught.value)


def test_a_do_not_call_list_works_on_fresh_frames_and_one_client() -> None:
    """Check that a rule returning a list of clients scores a batch that holds only some of them.

    Fresh frames hold one client; the list names others: before, their ids were refused as
    unknown to the batch's Book, so the rule could not be used outside a whole-book run.
    """
    book = cs.datasets.demo()
    listed = cs.rules.FunctionRule(
        name="do_not_call",
        kind="contact",
        func=lambda ctx: pd.DataFrame({"client_id": ["C0002", "C0003"]}),
    )
    rec = Recommender(k=3, scorer=ItemKNN(), policy=cs.rules.Policy([listed])).fit(
        book, "2025-06-30"
    )
    whole = rec.recommend()
    assert not whole["client_id"].isin(["C0002", "C0003"]).any()
    mine = book.contracts[book.contracts["client_id"] == "C0001"]
    fresh = rec.recommend_frames(mine)
    assert (
        fresh["product_id"].tolist()
        == whole.loc[whole["client_id"] == "C0001", "product_id"].tolist()
    )
    theirs = book.contracts[book.contracts["client_id"] == "C0002"]
    assert rec.recommend_frames(theirs).empty
    assert set(rec.suppressed_frames(theirs)["rule"]) == {"do_not_call"}
    offers = rec.recommend_one("C0001", contracts=mine)
    assert [o.product_id for o in offers] == fresh["product_id"].tolist()


def test_recommend_shows_a_progress_bar_over_its_blocks_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Check that progress=True draws a bar to stderr over every client, and changes no offer."""
    book = cs.datasets.demo()
    rec = Recommender(k=2, scorer=ItemKNN(), batch_size=100, n_jobs=2).fit(book, "2025-06-30")
    quiet = rec.recommend(progress=False)
    assert capsys.readouterr().err == ""
    shown = rec.recommend(progress=True)
    err = capsys.readouterr().err
    pd.testing.assert_frame_equal(shown, quiet)
    n = int(rec.eligible_.sum())
    assert "recommend" in err
    assert f"{n}/{n}" in err
    # one block: nothing worth a bar
    rec.recommend(["C0001"], progress=True)
    assert capsys.readouterr().err == ""
