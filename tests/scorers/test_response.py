"""The response model on tiny contact tables and books: pooling, learning on, point in time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

import crosssell as cs
from crosssell.exceptions import InvalidParameterError, NotFittedError, SchemaError
from crosssell.scorers import Response


def _contacts(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two segments, three products of one family; D is always declined by ``smb``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "product_id": rng.choice(["A", "B", "D"], n),
            "segment": rng.choice(["smb", "mid"], n),
            "channel": rng.choice(["call", "visit"], n),
            "date": np.arange(n, dtype=np.float64),
        }
    )
    frame["family"] = "F"
    chance = np.where(frame["channel"] == "visit", 0.5, 0.3)
    y = (rng.random(n) < chance).astype(float)
    y[((frame["product_id"] == "D") & (frame["segment"] == "smb")).to_numpy()] = 0.0
    return frame, y


def test_always_declined_in_a_segment_scores_low_there() -> None:
    """Check that a product always declined in a segment scores far below it elsewhere."""
    frame, y = _contacts()
    model = Response().fit(frame, y)
    ask = pd.DataFrame(
        {"product_id": ["D", "D"], "segment": ["smb", "mid"], "channel": ["call", "call"]}
    )
    p = model.predict_proba(ask)
    assert p[0] < 0.05
    assert p[1] > 0.2


def test_context_moves_the_odds() -> None:
    """Check that a visit, accepted more often than a call, scores higher."""
    frame, y = _contacts(2000)
    model = Response().fit(frame, y)
    ask = pd.DataFrame({"product_id": ["A", "A"], "segment": "mid", "channel": ["call", "visit"]})
    p = model.predict_proba(ask)
    assert p[1] - p[0] == pytest.approx(0.2, abs=0.08)


def test_three_answers_never_make_a_certainty() -> None:
    """Check that a product with three answers, all yes or all no, is scored strictly inside."""
    frame, y = _contacts()
    for outcome in (0.0, 1.0):
        new = pd.DataFrame({"product_id": ["N"] * 3, "segment": "mid", "channel": "call"})
        new["family"] = "F"
        new["date"] = [500.0, 501.0, 502.0]
        both = pd.concat([frame, new], ignore_index=True)
        model = Response().fit(both, np.concatenate([y, [outcome] * 3]))
        p = model.predict_proba(new.iloc[:1])[0]
        assert 0.1 < p < 0.7
        assert model.explain(new.iloc[:1])[0].startswith("few answers yet (3); similar offers")


def test_many_answers_approach_the_raw_rate() -> None:
    """Check that a product answered thousands of times is scored at its own rate."""
    n = 6000
    frame = pd.DataFrame({"product_id": ["A"] * n + ["B"] * 200, "family": "F", "segment": "s"})
    y = np.r_[np.arange(n) % 10 == 0, np.arange(200) % 2 == 0].astype(float)  # A: 10%, B: 50%
    model = Response().fit(frame, y)
    p = model.predict_proba(pd.DataFrame({"product_id": ["A"], "family": "F", "segment": "s"}))
    assert p[0] == pytest.approx(0.10, abs=0.01)
    text = model.explain(pd.DataFrame({"product_id": ["A"], "family": "F", "segment": "s"}))[0]
    assert text == "offered 6000 times in its segment, accepted 10% of the time"


def test_partial_fit_approaches_a_refit() -> None:
    """Check that learning in two batches gives about what learning all at once gives."""
    frame, y = _contacts(1200)
    once = Response().fit(frame, y)
    twice = Response().fit(frame.iloc[:600], y[:600]).partial_fit(frame.iloc[600:], y[600:])
    probe, _ = _contacts(300, seed=9)
    assert np.abs(once.predict_proba(probe) - twice.predict_proba(probe)).max() < 0.03
    assert twice.n_outcomes_ == once.n_outcomes_ == 1200


def test_half_life_follows_a_drift() -> None:
    """Check that with a half-life a model tracks a take-up rate that rose; without, lags."""
    n = 2000
    frame = pd.DataFrame({"product_id": "A", "date": np.arange(n, dtype=np.float64)})
    y = (np.arange(n) % 10 < np.where(np.arange(n) < 1500, 1, 5)).astype(float)  # 10% then 50%
    ask = pd.DataFrame({"product_id": ["A"]})
    fading = Response(half_life=100).fit(frame, y).predict_proba(ask)[0]
    keeping = Response().fit(frame, y).predict_proba(ask)[0]
    assert fading == pytest.approx(0.5, abs=0.08)
    assert keeping == pytest.approx(0.2, abs=0.05)


def test_rows_after_as_of_change_nothing() -> None:
    """Check that contacts dated after as_of do not move a probability."""
    frame, y = _contacts()
    known = Response().fit(frame.iloc[:300], y[:300])
    flipped = y.copy()
    flipped[300:] = 1 - flipped[300:]
    later = Response().fit(frame, flipped, as_of=299)
    probe, _ = _contacts(50, seed=3)
    np.testing.assert_array_equal(known.predict_proba(probe), later.predict_proba(probe))


def test_fit_is_deterministic() -> None:
    """Check that two fits of the same outcomes give the same probabilities, bit for bit."""
    frame, y = _contacts()
    a = Response(half_life=50).fit(frame, y).predict_proba(frame)
    b = Response(half_life=50).fit(frame, y).predict_proba(frame)
    np.testing.assert_array_equal(a, b)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_row_order_changes_nothing(seed: int) -> None:
    """Check that shuffling the contacts leaves every probability as it was."""
    frame, y = _contacts(200)
    order = np.random.default_rng(seed).permutation(len(frame))
    a = Response(half_life=30).fit(frame, y).predict_proba(frame)
    b = Response(half_life=30).fit(frame.iloc[order], y[order]).predict_proba(frame)
    np.testing.assert_allclose(a, b, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(
    y=st.lists(st.booleans(), min_size=1, max_size=30),
    products=st.lists(st.sampled_from(["A", "B", "C"]), min_size=30, max_size=30),
)
def test_probabilities_are_inside_zero_one(y: list[bool], products: list[str]) -> None:
    """Check that every probability lies strictly between 0 and 1, whatever the outcomes."""
    frame = pd.DataFrame({"product_id": products[: len(y)]})
    p = Response().fit(frame, y).predict_proba(pd.DataFrame({"product_id": ["A", "B", "C", "Z"]}))
    assert ((p > 0) & (p < 1)).all()


def test_input_frame_is_not_mutated() -> None:
    """Check that fitting and predicting leave the caller's frame as it was."""
    frame, y = _contacts()
    before = frame.copy()
    Response().fit(frame, y).predict_proba(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_bad_outcomes_are_named() -> None:
    """Check that outcomes other than 0/1 raise a SchemaError showing the rows."""
    frame, _ = _contacts(4)
    with pytest.raises(
        SchemaError, match=r"'y' is not 0/1 in 1 rows \(showing 1\): row 2 y='maybe'"
    ):
        Response().fit(frame, [1, 0, "maybe", 0])


def test_bad_parameter_is_named() -> None:
    """Check that a bad half-life is refused in scikit-learn's words."""
    with pytest.raises(InvalidParameterError, match="The 'half_life' parameter of Response"):
        Response(half_life=-1)


def test_not_fitted() -> None:
    """Check that predicting before fitting says to call fit."""
    with pytest.raises(NotFittedError, match="This Response instance is not fitted yet"):
        Response().predict_proba(pd.DataFrame({"product_id": ["A"]}))


def _offer_book() -> cs.Book:
    """Clients of two segments; X accepted by ``big`` and declined by ``small``."""
    clients = [f"C{i:02d}" for i in range(40)]
    segment = ["big" if i < 20 else "small" for i in range(40)]
    contracts = pd.DataFrame({"client_id": clients, "product_id": "A", "start_date": "2024-01-01"})
    rows = []
    for i, c in enumerate(clients):
        ref = f"O{i}"
        rows.append((c, "X", "2024-03-01", "offer_made", "visit", ref))
        answer = "offer_accepted" if segment[i] == "big" else "offer_declined"
        rows.append((c, "X", "2024-03-05", answer, None, ref))
        # an answer after as_of, the other way round: it must change nothing
        late = "offer_declined" if segment[i] == "big" else "offer_accepted"
        rows.append((c, "Y", "2024-09-05", late, None, None))
    events = pd.DataFrame(
        rows, columns=["client_id", "product_id", "date", "type", "detail", "ref"]
    )
    return cs.Book.from_frames(
        contracts=contracts,
        products=pd.DataFrame({"product_id": ["A", "X", "Y"], "family": ["F", "G", "G"]}),
        clients=pd.DataFrame({"client_id": clients, "segment": segment}),
        events=events,
    )


def test_book_fit_scores_acceptance_by_segment() -> None:
    """Check that as a scorer it gives X a high chance in ``big`` and a low one in ``small``."""
    book = _offer_book()
    model = Response().fit(book.matrix("2024-06-30"), book)
    s = model.score([0, 30])
    x = book.product_ids.to_index(["X"])[0]
    assert s[0, x] > 0.7
    assert s[1, x] < 0.3
    assert model.n_outcomes_ == 40


def test_unknown_client_gets_the_segments_rates_by_their_size() -> None:
    """Check that a client of no known segment gets X between the two segments' chances."""
    book = _offer_book()
    model = Response().fit(book.matrix("2024-06-30"), book)
    x = book.product_ids.to_index(["X"])[0]
    big, small, unknown = model.score([0, 30, -1])[:, x]
    assert small < unknown < big
    assert unknown == pytest.approx((big + small) / 2, abs=0.1)


def test_book_events_after_as_of_change_no_score() -> None:
    """Check that answers dated after as_of leave every score of a Book fit as it was."""
    book = _offer_book()
    events = book.events
    early = cs.Book.from_frames(
        contracts=book.contracts,
        products=book.products,
        clients=book.clients,
        events=events.loc[events["date"] <= "2024-06-30"],
    )
    with_late = Response().fit(book.matrix("2024-06-30"), book).score(np.arange(40))
    without = Response().fit(early.matrix("2024-06-30"), early).score(np.arange(40))
    np.testing.assert_array_equal(with_late, without)


def test_book_partial_fit_reads_decision_log_events() -> None:
    """Check that new answers in the events' shape (DecisionLog.events) update the scores."""
    book = _offer_book()
    model = Response().fit(book.matrix("2024-06-30"), book)
    x = book.product_ids.to_index(["X"])[0]
    before = model.score([30])[0, x]
    news = pd.DataFrame(
        {
            "client_id": [f"C{i}" for i in range(20, 40)],
            "date": pd.Timestamp("2024-07-01"),
            "type": "offer_accepted",
            "product_id": "X",
            "ref": None,
            "detail": None,
        }
    )
    after = model.partial_fit(news).score([30])[0, x]
    assert after > before + 0.2


def test_response_in_a_recommender() -> None:
    """Check that a Recommender uses its probabilities as propensities."""
    book = cs.datasets.demo()
    rec = cs.Recommender(scorer=Response(), k=2).fit(book, "2025-06-30")
    offers = rec.recommend(["C0001", "C0002"])
    assert offers["propensity"].between(0, 1).all()
    assert len(offers) > 0
    assert offers["reason"].str.contains("accepted").all()


def test_score_of_a_table_fit_says_to_fit_a_book() -> None:
    """Check that scoring clients after a fit on contacts says a Book fit is needed."""
    frame, y = _contacts(20)
    with pytest.raises(ValueError, match="fitted on a table of contacts: score needs a fit"):
        Response().fit(frame, y).score([0])


def _bank() -> Path:
    override = os.environ.get("CROSSSELL_DATA_DIR")
    base = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
    return base / "bank_marketing" / "contacts.parquet"


@pytest.mark.realdata
@pytest.mark.slow
def test_learning_on_beats_fitted_once_on_bank_marketing() -> None:
    """Check that, predicting each batch before learning it, partial_fit beats fitting once."""
    if not _bank().exists():
        pytest.skip(f"bank marketing data not found at {_bank()}")
    frame = pd.read_parquet(_bank()).sort_values("contact_seq", kind="stable")
    y = (frame["y"] == "yes").to_numpy(dtype=float)
    x = frame.drop(columns=["y", "duration"]).reset_index(drop=True)  # duration leaks the outcome
    start = int(len(x) * 0.6)
    once = Response(time="contact_seq", half_life=1000).fit(x.iloc[:start], y[:start])
    adaptive = Response(time="contact_seq", half_life=1000).fit(x.iloc[:start], y[:start])
    p_once, p_adaptive = [], []
    for lo in range(start, len(x), 1000):
        batch, target = x.iloc[lo : lo + 1000], y[lo : lo + 1000]
        p_once.append(once.predict_proba(batch))
        p_adaptive.append(adaptive.predict_proba(batch))
        adaptive.partial_fit(batch, target)
    truth = y[start:]
    auc_once = roc_auc_score(truth, np.concatenate(p_once))
    auc_adaptive = roc_auc_score(truth, np.concatenate(p_adaptive))
    assert auc_adaptive > auc_once + 0.02


def test_offer_reasons_are_explain_sentences_and_follow_new_answers() -> None:
    """Check that each offer's reason is explain's sentence, read again after partial_fit."""
    book = cs.datasets.demo()
    model = cs.scorers.Response().fit(book.matrix("2025-06-30"), book)
    rows = np.repeat(np.arange(40), 3)
    cols = np.tile([0, 5, 9], 40)
    frame = pd.DataFrame(
        {
            "client_id": book.client_ids.external[rows],
            "product_id": book.product_ids.external[cols],
        }
    )
    expected = [f"{t[:1].upper()}{t[1:]}." for t in model.explain(frame)]
    assert model.reasons(rows, cols)[2].tolist() == expected
    assert model.reasons(rows, cols)[2].tolist() == expected  # read back, the same
    # new answers for product 0 change its sentence in every segment
    client = book.client_ids.external[0]
    product = book.product_ids.external[0]
    answers = pd.DataFrame(
        {
            "client_id": [client] * 30,
            "product_id": [product] * 30,
            "type": ["offer_accepted"] * 30,
            "date": pd.Timestamp("2025-06-30"),
        }
    )
    before = model.reasons([0], [0])[2][0]
    model.partial_fit(answers)
    after = model.reasons([0], [0])[2][0]
    assert after != before
    assert after == f"{model.explain(frame.iloc[:1]).iloc[0][:1].upper()}" + (
        f"{model.explain(frame.iloc[:1]).iloc[0][1:]}."
    )
