"""Tests of offer typing (upsell / cross-sell) and value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crosssell import Book
from crosssell.candidates import Candidates

AS_OF = "2024-06-30"


@pytest.fixture
def tiered_book() -> Book:
    products = pd.DataFrame(
        {
            "product_id": ["CRM-1", "CRM-2", "CRM-3", "ERP-1", "ERP-2", "HR-1"],
            "family": ["CRM", "CRM", "CRM", "ERP", "ERP", "HR"],
            "tier": [1, 2, 3, 1, 2, 1],
            "price": [100.0, 250.0, 500.0, 400.0, np.nan, np.nan],
            # HR-1 is first sold after AS_OF but on sale before it, so it is a candidate then
            "available_from": [None, None, None, None, None, "2024-01-01"],
        }
    )
    contracts = pd.DataFrame(
        {
            "client_id": ["C1", "C1", "C2", "C3", "C3"],
            "product_id": ["CRM-2", "ERP-1", "CRM-1", "ERP-2", "HR-1"],
            "start_date": ["2024-01-01", "2024-01-01", "2024-01-01", "2023-01-01", "2024-09-01"],
            "end_date": [None, None, None, None, None],
            "value": [240.0, 380.0, 90.0, 900.0, 50.0],
        }
    )
    return Book.from_frames(contracts=contracts, products=products)


def test_held_products_are_never_candidates(tiered_book: Book) -> None:
    """Check that an actively held product is not a candidate."""
    cand = Candidates.build(tiered_book, AS_OF)
    chunk = cand.chunk([0])
    held = tiered_book.product_ids.to_index(["CRM-2", "ERP-1"])
    assert not chunk.is_candidate[0, held].any()


def test_higher_tier_is_upsell_lower_tier_is_no_offer(tiered_book: Book) -> None:
    """Check that within a held family a higher tier is an upsell and a lower tier no offer."""
    cand = Candidates.build(tiered_book, AS_OF)
    chunk = cand.chunk([0])
    assert chunk.is_upsell is not None
    pid = tiered_book.product_ids
    crm1, crm3, erp2, hr1 = pid.to_index(["CRM-1", "CRM-3", "ERP-2", "HR-1"])
    assert not chunk.is_candidate[0, crm1]  # a downgrade
    assert chunk.is_upsell[0, crm3]
    assert chunk.is_upsell[0, erp2]
    assert chunk.is_candidate[0, hr1]
    assert not chunk.is_upsell[0, hr1]


def test_upsell_value_is_the_difference_to_what_the_client_pays(tiered_book: Book) -> None:
    """Check that an upsell is worth the catalog price minus what the client pays in that family."""
    cand = Candidates.build(tiered_book, AS_OF)
    chunk = cand.chunk([0])
    crm3 = int(tiered_book.product_ids.to_index(["CRM-3"])[0])
    assert chunk.value[0, crm3] == pytest.approx(500.0 - 240.0)


def test_value_falls_back_to_median_contract_value(tiered_book: Book) -> None:
    """Check that a product without a price is valued at the median value of its contracts."""
    cand = Candidates.build(tiered_book, AS_OF)
    erp2 = int(tiered_book.product_ids.to_index(["ERP-2"])[0])
    assert cand.product_value[erp2] == pytest.approx(900.0)
    assert cand.value_source[erp2] == "median_contract"


def test_contract_after_as_of_does_not_count(tiered_book: Book) -> None:
    """Check that a contract starting after as_of neither holds the product nor sets its value."""
    cand = Candidates.build(tiered_book, AS_OF)
    c3 = int(tiered_book.client_ids.to_index(["C3"])[0])
    hr1 = int(tiered_book.product_ids.to_index(["HR-1"])[0])
    assert cand.chunk([c3]).is_candidate[0, hr1]
    assert cand.value_source[hr1] == "default"


def test_pairs_agree_with_chunk(tiered_book: Book) -> None:
    """Check that typing single pairs gives the same answer as typing whole rows."""
    cand = Candidates.build(tiered_book, AS_OF)
    n_c, n_p = len(tiered_book.client_ids), len(tiered_book.product_ids)
    rows = np.repeat(np.arange(n_c), n_p)
    cols = np.tile(np.arange(n_p), n_c)
    is_cand, is_up, value = cand.pairs(rows, cols)
    chunk = cand.chunk(np.arange(n_c))
    assert chunk.is_upsell is not None
    np.testing.assert_array_equal(is_cand, chunk.is_candidate.ravel())
    np.testing.assert_array_equal(is_up, chunk.is_upsell.ravel())
    np.testing.assert_allclose(value, np.asarray(chunk.value).ravel())


def test_without_catalog_every_candidate_is_cross_sell() -> None:
    """Check that without a catalog each product is its own family, so nothing is an upsell."""
    contracts = pd.DataFrame(
        {"client_id": [1, 2], "product_id": ["A", "B"], "start_date": ["2024-01-01"] * 2}
    )
    cand = Candidates.build(Book.from_frames(contracts=contracts), AS_OF)
    chunk = cand.chunk([0, 1])
    assert chunk.is_upsell is None
    assert chunk.is_candidate.tolist() == [[False, True], [True, False]]


# ------------------------------------------------------------------ availability


def _launch_book() -> Book:
    """Three clients hold P1 and P2 before 2024-06-30; P3 is first sold after it, P4 withdrawn."""
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4"],
            "available_to": [None, None, None, "2024-04-01"],
        }
    )
    contracts = pd.DataFrame(
        {
            "client_id": ["C1", "C2", "C2", "C3", "C3", "C4", "C4"],
            "product_id": ["P1", "P1", "P2", "P2", "P4", "P3", "P1"],
            "start_date": [
                "2024-01-01",
                "2024-01-01",
                "2024-02-01",
                "2024-02-01",
                "2024-01-01",
                "2024-09-01",
                "2024-09-01",
            ],
        }
    )
    return Book.from_frames(contracts=contracts, products=products)


def test_unavailable_products_are_not_candidates() -> None:
    """Check that a product not launched yet, or withdrawn, is no candidate at as_of."""
    book = _launch_book()
    cand = Candidates.build(book, AS_OF)
    assert cand.available.tolist() == [True, True, False, False]
    assert cand.chunk([0]).is_candidate.tolist() == [[False, True, False, False]]
    is_candidate, _, _ = cand.pairs([0, 0], [2, 3])
    assert is_candidate.tolist() == [False, False]
    later = Candidates.build(book, "2024-09-01")
    assert later.available.tolist() == [True, True, True, False]


def test_a_product_first_sold_after_as_of_is_never_offered() -> None:
    """Check that the recommender offers nothing unavailable, and why_not says why."""
    from crosssell.recommender import Recommender
    from crosssell.scorers import Popularity

    book = _launch_book()
    rec = Recommender(scorer=Popularity(), k=4).fit(book, AS_OF)
    offers = rec.recommend()
    assert set(offers["product_id"]) == {"P2", "P1"}
    assert rec.why_not("C1", "P3") == (
        "'P3' is not offered to 'C1': it is not available until 2024-09-01."
    )
    assert rec.why_not("C1", "P4") == "'P4' is not offered to 'C1': it was withdrawn on 2024-04-01."
