"""Tests of offer reasons and evidence: the bulk and the one-client paths agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell import _explain
from crosssell.candidates import Candidates
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


_WORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x1F600), max_size=12
)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(_WORDS, min_size=4, max_size=4),
    segments=st.lists(st.one_of(st.none(), _WORDS), min_size=3, max_size=3),
    kind=st.sampled_from(["rules", "neighbours", "factors", "popularity", "unknown"]),
    cold_by=st.sampled_from(["segment", "global"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_compiled_reasons_equal_python_reasons(
    names: list[str], segments: list[str | None], kind: str, cold_by: str, seed: int
) -> None:
    """Check that the compiled sentences equal the per-offer ones, for any words and shapes."""
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4"],
            "family": ["A", "A", "Bé", "Bé"],
            "tier": [1, 2, 1, 2],
            "name": names,
        }
    )
    contracts = pd.DataFrame(
        {
            "client_id": ["C1", "C2", "C3"],
            "product_id": ["P1", "P2", "P3"],
            "start_date": ["2024-01-01"] * 3,
        }
    )
    clients = pd.DataFrame({"client_id": ["C1", "C2", "C3"], "segment": segments})
    book = cs.Book.from_frames(contracts=contracts, products=products, clients=clients)
    cand = Candidates.build(book, "2024-06-30")
    texts = _explain.Texts.of(book, cand)
    rng = np.random.default_rng(seed)
    m = 40
    ev = rng.integers(-1, 4, size=(m, 3))
    args = {
        "book": book,
        "candidates": cand,
        "kind": kind,
        "clients": rng.integers(0, 3, size=m),
        "products": rng.integers(0, 4, size=m),
        "upsell": rng.random(m) < 0.3,
        "cold": rng.random(m) < 0.2,
        "ev_idx": ev,
        "cold_by": cold_by,
        "texts": texts,
    }
    bulk = texts.sentences(
        family=cand.family[args["products"]],
        **{k: v for k, v in args.items() if k not in ("book", "candidates", "texts")},
    )
    one_by_one = _explain.reason_sentences(**args)
    assert bulk.to_pylist() == one_by_one.tolist()
