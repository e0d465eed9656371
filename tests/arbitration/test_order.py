"""Tests of the order of offers: one total order, whatever the row order of the inputs.

Equal priorities are broken by the higher propensity, then the higher raw score, then the
higher popularity at ``as_of``, then the product id; the propensity's display bound never
ranks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import shuffled

import crosssell as cs
from crosssell.columns import Columns
from crosssell.recommender import Recommender
from crosssell.scorers import ALS, BPR, Blend, CoOccurrence, ItemKNN, Popularity

C = Columns


def _reverse_id_book() -> cs.Book:
    """Products first seen in reverse id order; popularity P3 = P4 = 2 > P1 = P2 = P5 = 1.

    Client X holds only Z, which nobody else holds, so its co-occurrence scores all tie at 0.
    """
    pairs = [
        ("A", "P5"),
        ("A", "P4"),
        ("B", "P4"),
        ("B", "P3"),
        ("C", "P3"),
        ("C", "P2"),
        ("D", "P1"),
        ("X", "Z"),
    ]
    contracts = pd.DataFrame(
        {
            C.client: [c for c, _ in pairs],
            C.product: [p for _, p in pairs],
            C.start: ["2024-01-01"] * len(pairs),
        }
    )
    return cs.Book.from_frames(contracts=contracts)


def test_tie_rank_orders_by_popularity_then_id() -> None:
    """Check that the tie rank puts the most held product first, equal holders by id."""
    from crosssell.arbitration._order import tie_rank

    ids = pd.Index(["P5", "P4", "P3", "P2", "P1"])
    got = tie_rank(np.array([1, 2, 2, 1, 1]), ids)
    # order: P3, P4, P1, P2, P5
    assert got.tolist() == [4, 1, 0, 3, 2]


@pytest.mark.parametrize("scorer", [ItemKNN(), CoOccurrence()], ids=["itemknn", "cooccurrence"])
def test_tied_scores_rank_by_popularity_then_id(scorer) -> None:
    """Check that offers whose scores all tie come by popularity, then by product id."""
    book = _reverse_id_book()
    rec = Recommender(scorer=scorer, k=5).fit(book, "2024-06-30")
    offers = rec.recommend(["X"], explain=False)
    assert offers[C.score].nunique() == 1
    assert offers[C.product].tolist() == ["P3", "P4", "P1", "P2", "P5"]


def _wide_book() -> cs.Book:
    """3,000 filler products held by one client each, five popular ones T1..T5 held by 10..6.

    With so wide a catalogue the 0.999 quantile of the scores falls below the top products'
    popularity, so their display propensity is 1 for several of them. The popular products
    appear in the input in reverse order of popularity.
    """
    clients, products = [], []
    for t, holders in zip(["T5", "T4", "T3", "T2", "T1"], [6, 7, 8, 9, 10], strict=True):
        for c in range(holders):
            clients.append(f"C{c:02d}")
            products.append(t)
    for f in range(3000):
        clients.append(f"C{10 + f % 30:02d}")
        products.append(f"F{f:04d}")
    contracts = pd.DataFrame(
        {C.client: clients, C.product: products, C.start: ["2024-01-01"] * len(clients)}
    )
    return cs.Book.from_frames(contracts=contracts)


def test_popularity_scorer_ranks_by_popularity_past_the_clip() -> None:
    """Check that Recommender(Popularity()) ranks by popularity where propensities clip at 1."""
    book = _wide_book()
    rec = Recommender(scorer=Popularity(), k=5).fit(book, "2024-06-30")
    offers = rec.recommend(["C20"], explain=False)
    assert (offers[C.propensity] == 1.0).sum() >= 2
    assert offers[C.product].tolist() == ["T1", "T2", "T3", "T4", "T5"]
    assert offers[C.priority].is_monotonic_decreasing
    one = [o.product_id for o in rec.recommend_one("C20", explain=False)]
    assert one == ["T1", "T2", "T3", "T4", "T5"]


def _expected_order(offers: pd.DataFrame, rec: Recommender) -> pd.DataFrame:
    """Re-sort each client's offers by the documented key."""
    pop = rec.matrix_.holders_per_product()
    key = offers.assign(
        _pop=pop.reindex(offers[C.product]).to_numpy(),
        _id=offers[C.product].to_numpy(),
        _client=rec.book_.client_ids.to_index(offers[C.client]),
    )
    key = key.sort_values(
        ["_client", C.priority, C.propensity, C.score, "_pop", "_id"],
        ascending=[True, False, False, False, False, True],
        kind="stable",
    )
    return key.drop(columns=["_pop", "_id", "_client"]).reset_index(drop=True)


@pytest.mark.parametrize("k", [3, 8])
def test_both_selection_paths_give_the_documented_order_on_ties(k: int) -> None:
    """Check that the compiled and the numpy selection give the same, documented order on ties."""
    book = cs.datasets.demo()
    as_of = cs.datasets.demo_as_of()
    # one neighbour: most scores are exactly zero, so priorities tie everywhere
    scorer = ItemKNN(neighbours=1)
    compiled = Recommender(scorer=scorer, k=k).fit(book, as_of).recommend(explain=False)
    numpy_path = (
        Recommender(scorer=scorer, k=k, max_per_family=100)
        .fit(book, as_of)
        .recommend(explain=False)
    )
    pd.testing.assert_frame_equal(compiled, numpy_path)
    rec = Recommender(scorer=scorer, k=k).fit(book, as_of)
    assert (compiled[C.priority] == 0).sum() > 100
    pd.testing.assert_frame_equal(compiled, _expected_order(compiled, rec))


_SCORERS = {
    "popularity": Popularity,
    "cooccurrence": CoOccurrence,
    "itemknn": ItemKNN,
    "blend": lambda: Blend([(ItemKNN(), 0.5), (Popularity(), 0.5)]),
    "als": lambda: ALS(factors=4, iterations=3, random_state=0, num_threads=1),
    "bpr": lambda: BPR(factors=4, iterations=3, random_state=0, num_threads=1),
}
#: Scorers whose fit is exact arithmetic on the holdings, so that any table may be shuffled.
_EXACT = ("popularity", "cooccurrence", "itemknn", "blend")


@pytest.fixture(scope="module")
def demo_frames() -> dict[str, pd.DataFrame]:
    book = cs.datasets.demo()
    return {
        "contracts": book.contracts,
        "products": book.products,
        "clients": book.clients,
        "events": book.events,
    }


_UNSHUFFLED: dict[str, pd.DataFrame] = {}


def _offers(frames: dict[str, pd.DataFrame], scorer: str) -> pd.DataFrame:
    book = cs.Book.from_frames(**frames)
    rec = Recommender(scorer=_SCORERS[scorer](), k=3).fit(book, cs.datasets.demo_as_of())
    offers = rec.recommend(explain=False)
    return offers.sort_values([C.client, C.rank]).reset_index(drop=True)


@settings(max_examples=10, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("scorer", list(_SCORERS))
def test_row_order_of_the_inputs_never_changes_an_offer(demo_frames, scorer: str, data) -> None:
    """Check that shuffling the rows of every input table leaves recommend() unchanged."""
    # ALS and BPR start from seeded random factors laid out in the order products first
    # appear (contracts, products table), and BPR samples clients by row: moving those rows
    # moves the start or the samples, hence the learned scores, and some offers change. Those
    # tables keep their order for them.
    names = ["contracts", "products", "clients", "events"]
    if scorer == "als":
        names = ["clients", "events"]
    elif scorer == "bpr":
        names = ["events"]
    frames = dict(demo_frames)
    for name in names:
        frames[name] = data.draw(shuffled(frames[name]), label=name)
    if scorer not in _UNSHUFFLED:
        _UNSHUFFLED[scorer] = _offers(demo_frames, scorer)
    want = _UNSHUFFLED[scorer]
    got = _offers(frames, scorer)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-5)
