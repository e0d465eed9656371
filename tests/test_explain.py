"""Tests of offer reasons and evidence: the bulk and the one-client paths agree."""

from __future__ import annotations

import pandas as pd
import pytest

import crosssell as cs
from crosssell import _explain
from crosssell.scorers import ALS, CoOccurrence, Popularity


@pytest.mark.parametrize(
    "scorer", [None, CoOccurrence(), ALS(factors=8, random_state=0), Popularity()]
)
def test_bulk_and_small_paths_give_identical_reasons(
    monkeypatch: pytest.MonkeyPatch, scorer: cs.scorers.Scorer | None
) -> None:
    """Check that sentences built column-wise (many offers) equal those built one by one."""
    book = cs.datasets.demo()
    rec = cs.Recommender(scorer=scorer, policy=cs.rules.route_sales(), k=3).fit(
        book, cs.datasets.demo_as_of()
    )
    monkeypatch.setattr(_explain, "_BULK", 0)
    bulk = rec.recommend()
    monkeypatch.setattr(_explain, "_BULK", 10**9)
    small = rec.recommend()
    rec.texts_ = None  # the small path reading the book's columns instead of prepared words
    unprepared = rec.recommend()
    assert len(bulk) > 100
    pd.testing.assert_frame_equal(bulk, small)
    pd.testing.assert_frame_equal(bulk, unprepared)


def test_cold_client_reason_names_its_segment() -> None:
    """Check that a client without holdings is told its offer is popular in its own segment."""
    contracts = pd.DataFrame(
        {
            "client_id": ["A", "B", "C"],
            "product_id": ["P1", "P1", "P2"],
            "start_date": ["2024-01-01"] * 3,
        }
    )
    clients = pd.DataFrame({"client_id": ["A", "B", "C", "NEW"], "segment": ["mid"] * 4})
    book = cs.Book.from_frames(contracts=contracts, clients=clients)
    offers = cs.Recommender(k=1).fit(book, "2024-06-30").recommend(["NEW"])
    assert offers["reason"].iloc[0] == (
        "P1 is popular among mid clients; this client has no active contract to learn from yet."
    )
