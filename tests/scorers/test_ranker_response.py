"""The response model as a ranker feature: point in time, useful, saved with the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.scorers import Ranker, Response
from crosssell.scorers._features import build_context
from crosssell.scorers._response_feature import RESPONSE_FEATURES, ResponseFeature

AS_OF = "2024-12-31"
SMALL = {"n_estimators": 30, "windows": 2, "horizon": "90D", "random_state": 0}
ACCEPT = {"P": 0.7, "Q": 0.1}


def _offer_book(seed: int = 0, n: int = 600) -> cs.Book:
    """Clients offered P or Q every month; P is accepted 70%, Q 10% of the time.

    Q was sold widely before the offers began and P hardly: popularity ranks Q first, while an
    offer of P is far more often taken.
    """
    rng = np.random.default_rng(seed)
    clients = np.array([f"C{i:03d}" for i in range(n)], dtype=object)
    contracts = [(c, "BASE", "2022-01-01") for c in clients]
    taken: set[tuple[str, str]] = set()
    for c, u in zip(clients, rng.random(n), strict=True):
        if u < 0.5:
            contracts.append((c, "Q", "2022-06-01"))
            taken.add((c, "Q"))
        elif u > 0.95:
            contracts.append((c, "P", "2022-06-01"))
            taken.add((c, "P"))
    events = []
    for k, month in enumerate(pd.date_range("2024-01-01", AS_OF, freq="MS")):
        for i in np.flatnonzero(rng.random(n) < 0.1):
            product = "P" if rng.random() < 0.5 else "Q"
            if (clients[i], product) in taken:
                continue
            ref = f"O{k}-{i}"
            events.append((clients[i], product, month, "offer_made", "visit", ref))
            answer_day = month + pd.Timedelta(days=5)
            if rng.random() < ACCEPT[product]:
                events.append((clients[i], product, answer_day, "offer_accepted", None, ref))
                contracts.append((clients[i], product, answer_day))
                taken.add((clients[i], product))
            else:
                events.append((clients[i], product, answer_day, "offer_declined", None, ref))
    return cs.Book.from_frames(
        contracts=pd.DataFrame(contracts, columns=["client_id", "product_id", "start_date"]),
        products=pd.DataFrame({"product_id": ["BASE", "P", "Q"], "family": ["B", "X", "X"]}),
        clients=pd.DataFrame(
            {"client_id": clients, "segment": np.where(np.arange(n) % 2 == 0, "a", "b")}
        ),
        events=pd.DataFrame(
            events, columns=["client_id", "product_id", "date", "type", "detail", "ref"]
        ),
    )


@pytest.fixture(scope="module")
def book() -> cs.Book:
    return _offer_book()


@pytest.fixture(scope="module")
def fitted(book: cs.Book) -> Ranker:
    return Ranker(**SMALL, response=True).fit(book.matrix(AS_OF), book)


def _pairs(book: cs.Book) -> tuple[np.ndarray, np.ndarray]:
    n = len(book.client_ids)
    products = book.product_ids.to_index(["P", "Q"])
    return np.repeat(np.arange(n), 2), np.tile(products, n)


def test_answers_after_the_date_change_no_feature(book: cs.Book) -> None:
    """Check that the feature at a date is the same with or without the answers given later."""
    day = pd.Timestamp("2024-03-31")
    events = book.events
    early = cs.Book.from_frames(
        contracts=book.contracts,
        products=book.products,
        clients=book.clients,
        events=events.loc[pd.to_datetime(events["date"]) <= day],
    )
    clients, products = _pairs(book)
    for fn_index in range(2):
        with_late = ResponseFeature(None).columns()[fn_index][1](
            build_context(book, day, pd.Timedelta("90D")), clients, products
        )
        without = ResponseFeature(None).columns()[fn_index][1](
            build_context(early, day, pd.Timedelta("90D")), clients, products
        )
        np.testing.assert_array_equal(with_late, without)
    later = ResponseFeature(None).columns()[1][1](
        build_context(book, pd.Timestamp(AS_OF), pd.Timedelta("90D")), clients, products
    )
    # the later date rests on more answers: the feature does move with time
    assert later.sum() > without.sum()


def test_the_feature_follows_the_acceptance_of_each_product(fitted: Ranker) -> None:
    """Check that P, accepted 70% of the time, gets a higher acceptance than Q (10%)."""
    names = fitted.feature_names_
    assert names[-2:] == list(RESPONSE_FEATURES)
    clients, products = _pairs(fitted.context_.book)
    fn = fitted._extra_features()[0][1]
    p = fn(fitted.context_, clients, products).reshape(-1, 2)
    # pooled towards their family's rate (about 40%), each stays on its side of it
    assert p[:, 0].mean() == pytest.approx(ACCEPT["P"], abs=0.15)
    assert p[:, 1].mean() == pytest.approx(ACCEPT["Q"], abs=0.15)
    assert (p[:, 0] > p[:, 1]).all()


def test_the_feature_at_a_date_predicts_the_answers_after_it(book: cs.Book) -> None:
    """Check that the acceptance learned by a date ranks the offers answered after it."""
    from sklearn.metrics import roc_auc_score

    day = pd.Timestamp("2024-09-30")
    ev = book.event_table
    later = ev.loc[(ev["date"] > day) & ev["type"].isin(["offer_accepted", "offer_declined"])]
    clients = later["client_idx"].to_numpy(np.int64)
    products = later["product_idx"].to_numpy(np.int64)
    accepted = (later["type"] == "offer_accepted").to_numpy()
    ctx = build_context(book, day, pd.Timedelta("90D"))
    p = ResponseFeature(None).acceptance(ctx, clients, products)
    assert roc_auc_score(accepted, p) > 0.7


def test_the_explanation_says_how_often_it_was_accepted() -> None:
    """Check that a contribution of the feature reads as the acceptance of similar offers."""
    from crosssell.scorers.ranker import _phrase

    text = _phrase("response_acceptance", 0.18, "X", None)
    assert text == "when offered to clients like this, it was accepted 18% of the time"


def test_off_by_default_and_false_changes_nothing(book: cs.Book) -> None:
    """Check that the default Ranker has no response feature and response=False scores alike."""
    default = Ranker(**SMALL).fit(book.matrix(AS_OF), book)
    off = Ranker(**SMALL, response=False).fit(book.matrix(AS_OF), book)
    assert not set(RESPONSE_FEATURES) & set(default.feature_names_)
    rows = np.arange(len(book.client_ids))
    np.testing.assert_array_equal(default.score(rows), off.score(rows))


def test_a_ranker_with_a_response_saves_and_loads(book: cs.Book, tmp_path: Path) -> None:
    """Check that the response model's parameters are saved and a load gives the same offers."""
    ranker = Ranker(**SMALL, response=Response(prior_strength=10.0))
    rec = cs.Recommender(scorer=ranker, k=2).fit(book, AS_OF)
    back = cs.load(rec.save(tmp_path / "model.crosssell"))
    assert back.scorer_.response.prior_strength == 10.0
    pd.testing.assert_frame_equal(back.recommend(), rec.recommend())


def test_a_bad_response_is_named() -> None:
    """Check that a response that is neither a flag nor a Response says what it must be."""
    with pytest.raises(ValueError, match="'response' parameter of Ranker"):
        Ranker(response="yes").fit(cs.datasets.tiny().matrix("2024-09-01"), cs.datasets.tiny())


def test_a_client_the_book_does_not_know_gets_the_response_of_no_segment(book: cs.Book) -> None:
    """Check that a fresh client is scored, its response read as that of no known segment."""
    ranker = Ranker(**SMALL, response=True).fit(book.matrix(AS_OF), book)
    fresh = ranker.fit_client(np.array([0]), np.array([1.0]))
    assert fresh.shape == (len(book.product_ids),)
    assert ((fresh >= 0) & (fresh <= 1)).all()
    from crosssell.scorers._features import context_for_holdings

    one = context_for_holdings(ranker.context_, np.array([0]))
    products = book.product_ids.to_index(["P", "Q"])
    p = ranker._response_feature.acceptance(one, np.zeros(2, dtype=np.int64), products)
    unknown = ranker._response_feature._model(ranker.context_)[0].score([-1])[0, products]
    np.testing.assert_allclose(p, unknown)
