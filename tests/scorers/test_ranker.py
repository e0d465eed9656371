"""The learned second stage: honest training, calibrated output, deterministic, no look-ahead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.scorers import Popularity, Ranker

AS_OF = "2025-06-30"
SMALL: dict[str, Any] = {"n_estimators": 30, "windows": 2, "random_state": 0}


@pytest.fixture(scope="module")
def demo() -> cs.Book:
    return cs.datasets.demo()


@pytest.fixture(scope="module")
def fitted(demo: cs.Book) -> Ranker:
    return Ranker(**SMALL).fit(demo.matrix(AS_OF), demo)


def test_fits_and_scores_the_tiny_book() -> None:
    """Check that a book too short for a training window still gets probabilities."""
    book = cs.datasets.tiny()
    ranker = Ranker(**SMALL).fit(book.matrix("2024-09-01"), book)
    scores = ranker.score([0, 1])
    assert scores.shape == (2, 3)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_scores_are_probabilities_and_candidates_beat_the_rest(fitted: Ranker) -> None:
    """Check that scores lie in [0, 1] and every candidate outranks every non-candidate."""
    scores = fitted.score(np.arange(50))
    assert ((scores >= 0) & (scores <= 1)).all()
    held = fitted.client_product_[np.arange(50)].toarray() > 0
    assert (scores[held] == 0).all()
    assert (scores[~held] > 0).mean() > 0.5
    assert fitted.calibrator_ is not None


def test_same_seed_same_scores(demo: cs.Book, fitted: Ranker) -> None:
    """Check that two fits with the same seed give identical scores."""
    again = Ranker(**SMALL).fit(demo.matrix(AS_OF), demo)
    rows = np.arange(100)
    np.testing.assert_array_equal(again.score(rows), fitted.score(rows))


def _trees(ranker: Ranker) -> list[str]:
    """The model's trees as text (the parameters section names the threads)."""
    return _trees_of(ranker.model_.booster_)


def _trees_of(booster: Any) -> list[str]:
    return str(booster.model_to_string()).split("end of trees")[0].split("Tree=")[1:]


@pytest.mark.parametrize("threads", [2, 3, 0])
def test_same_trees_on_any_number_of_threads(demo: cs.Book, fitted: Ranker, threads: int) -> None:
    """Check that the trees and scores do not depend on the number of threads that boost them."""
    other = Ranker(**SMALL, num_threads=threads).fit(demo.matrix(AS_OF), demo)
    assert _trees(other) == _trees(fitted)
    assert len(_trees(fitted)) == SMALL["n_estimators"]
    rows = np.arange(200)
    np.testing.assert_array_equal(other.score(rows), fitted.score(rows))


def _one_after_and_at_once(
    demo: cs.Book, monkeypatch: pytest.MonkeyPatch, **params: Any
) -> tuple[Ranker, list[tuple[str, ...]], Ranker, list[tuple[str, ...]]]:
    """Fit twice, boostings one after the other then at once; each fit with the trees it grew."""
    grown: list[tuple[str, ...]] = []
    train = Ranker._train

    def spy(self: Ranker, *args: Any, **kwargs: Any) -> Any:
        model = train(self, *args, **kwargs)
        grown.append(tuple(_trees_of(model.booster_)))
        return model

    monkeypatch.setattr(Ranker, "_train", spy)
    monkeypatch.setattr(Ranker, "_side_by_side", lambda self: False)
    one_after = Ranker(**{**SMALL, **params}).fit(demo.matrix(AS_OF), demo)
    serial = list(grown)
    grown.clear()
    monkeypatch.undo()
    monkeypatch.setattr(Ranker, "_train", spy)
    at_once = Ranker(**{**SMALL, **params}).fit(demo.matrix(AS_OF), demo)
    assert at_once._side_by_side()
    return one_after, serial, at_once, grown


def test_boostings_side_by_side_give_the_trees_of_one_after_the_other(
    demo: cs.Book, fitted: Ranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that training the two boostings at once changes neither of them."""
    one_after, serial, at_once, trained = _one_after_and_at_once(demo, monkeypatch)
    # the older windows' trees, then every window's: different rows, different trees
    assert len(serial) == len(trained) == 2
    assert serial[0] != serial[1]
    assert sorted(trained) == sorted(serial)
    assert tuple(_trees(at_once)) == tuple(_trees(one_after)) == tuple(_trees(fitted)) == serial[1]
    np.testing.assert_array_equal(at_once.score(np.arange(100)), fitted.score(np.arange(100)))


def test_sizes_compared_side_by_side_give_the_trees_of_one_after_the_other(
    demo: cs.Book, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that comparing tree sizes on two cores changes none of the boostings.

    The older windows' trees of each size grow side by side, then every window's beside the
    calibration, the check against popularity and the prediction state.
    """
    one_after, serial, at_once, trained = _one_after_and_at_once(
        demo, monkeypatch, num_leaves=(7, 31)
    )
    # the older windows' trees of 7 and 31 leaves, then every window's: all different
    assert len(serial) == len(trained) == 3
    assert len(set(serial)) == 3
    assert sorted(trained) == sorted(serial)
    assert at_once.num_leaves_ == one_after.num_leaves_
    assert tuple(_trees(at_once)) == tuple(_trees(one_after)) == serial[2]
    rows = np.arange(100)
    np.testing.assert_array_equal(at_once.score(rows), one_after.score(rows))


def test_one_core_gives_the_model_of_many(
    demo: cs.Book, fitted: Ranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that windows built one after the other on one core give the same trees."""
    import crosssell.scorers.ranker as ranker_module

    monkeypatch.setattr(ranker_module.os, "cpu_count", lambda: 1)
    alone = Ranker(**SMALL).fit(demo.matrix(AS_OF), demo)
    assert not alone._side_by_side()
    pd.testing.assert_frame_equal(alone.training_, fitted.training_)
    assert _trees(alone) == _trees(fitted)


def test_a_window_draws_the_same_rows_whatever_the_others_draw(demo: cs.Book) -> None:
    """Check that a third, older window leaves the two recent windows' rows as they were."""
    two = Ranker(**{**SMALL, "windows": 2}).fit(demo.matrix(AS_OF), demo)
    three = Ranker(**{**SMALL, "windows": 3}).fit(demo.matrix(AS_OF), demo)
    assert len(three.training_) == 3
    columns = ["rows", "positives", "offer_outcomes"]
    pd.testing.assert_frame_equal(three.training_[columns].iloc[:2], two.training_[columns])


def test_without_refit_the_model_is_the_calibrated_one(demo: cs.Book, fitted: Ranker) -> None:
    """Check that refit=False keeps the trees trained without the held-out window."""
    kept = Ranker(**SMALL, refit=False).fit(demo.matrix(AS_OF), demo)
    assert kept.calibrator_ is not None
    assert kept.uses_model_
    assert _trees(kept) != _trees(fitted)
    assert len(_trees(kept)) == SMALL["n_estimators"]
    rows = np.arange(100)
    assert not np.array_equal(kept.score(rows), fitted.score(rows))


def test_rows_after_as_of_change_nothing(demo: cs.Book) -> None:
    """Check that contracts and events dated after as_of leave every score unchanged."""
    as_of = "2024-12-31"
    contracts, events = demo.contracts, demo.events
    cut_c = contracts[contracts["start_date"] <= as_of]
    cut_e = events[events["date"] <= as_of]
    products = demo.products.drop(columns=["in_catalog"])
    clients = demo.clients

    def book(c: pd.DataFrame, e: pd.DataFrame) -> cs.Book:
        return cs.Book.from_frames(contracts=c, products=products, clients=clients, events=e)

    before, after = book(cut_c, cut_e), book(contracts, events)
    assert len(after.contracts) > len(before.contracts)
    a = Ranker(**SMALL).fit(before.matrix(as_of), before)
    b = Ranker(**SMALL).fit(after.matrix(as_of), after)
    rows = np.arange(len(before.client_ids))
    np.testing.assert_array_equal(a.score(rows), b.score(rows))


def test_beats_popularity_on_the_synthetic_book(demo: cs.Book) -> None:
    """Check that the ranker's NDCG@10 is above popularity's in a backtest of the demo book."""

    def ndcg(scorer: cs.scorers.Scorer) -> float:
        result = cs.backtest(
            cs.Recommender(scorer=scorer, k=10),
            demo,
            cutoffs=["2024-12-31"],
            horizon="180D",
            k=(10,),
            baseline=False,
            n_boot=0,
            progress=False,
        )
        m = result.metrics
        row = m[(m["metric"] == "ndcg") & (m["offer_type"] == "all") & (m["segment"] == "all")]
        return float(row["value"].iloc[0])

    assert ndcg(Ranker(**SMALL)) > ndcg(Popularity(by="segment"))


def test_user_feature_is_computed_at_the_window_start(demo: cs.Book) -> None:
    """Check that a user feature function is called at each date with one value per pair."""
    seen: list[pd.Timestamp] = []

    def region_north(ctx: Any, clients: np.ndarray, products: np.ndarray) -> np.ndarray:
        seen.append(ctx.as_of)
        north = ctx.book.client_table["region"].to_numpy(dtype=object) == "North"
        return north[clients].astype(float)

    ranker = Ranker(**SMALL, features=[("north", region_north)]).fit(demo.matrix(AS_OF), demo)
    assert "north" in ranker.feature_names_
    assert max(seen) == pd.Timestamp(AS_OF) - pd.Timedelta("90D")
    ranker.score([0])
    assert seen[-1] == pd.Timestamp(AS_OF)


def test_a_recommender_uses_the_probabilities_as_propensities(demo: cs.Book) -> None:
    """Check that a Recommender's propensity is the ranker's probability, unscaled."""
    rec = cs.Recommender(scorer=Ranker(**SMALL), k=3).fit(demo, AS_OF)
    offers = rec.recommend(["C0001", "C0002"])
    assert len(offers) == 6
    np.testing.assert_allclose(offers["propensity"], offers["score"], rtol=1e-6)


def test_a_new_client_is_scored_from_its_holdings(fitted: Ranker) -> None:
    """Check that fit_client scores a client unknown to the book, holdings excluded."""
    scores = fitted.fit_client([0, 3])
    assert scores.shape == (fitted.n_products_,)
    assert scores[0] == 0
    assert scores[3] == 0
    assert scores.max() > 0


def test_bad_parameters_are_named() -> None:
    """Check that invalid parameters raise scikit-learn's message."""
    book = cs.datasets.tiny()
    with pytest.raises(ValueError, match="'model' parameter of Ranker"):
        Ranker(model="xgboost").fit(book.matrix(), book)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'horizon' parameter of Ranker"):
        Ranker(horizon="soon").fit(book.matrix(), book)
    with pytest.raises(ValueError, match="call fit\\(matrix, book\\)"):
        Ranker().fit(book.matrix())


def test_contributions_explain_an_offer(fitted: Ranker) -> None:
    """Check that an offer is explained by positive feature contributions and a sentence."""
    table = fitted.contributions([0, 1], [4, 5], n=2)
    assert table["propensity"].between(0, 1).all()
    assert all(len(items) <= 2 for items in table["evidence"])
    assert all(item["contribution"] > 0 for items in table["evidence"] for item in items)
    assert table["reason"].str.endswith(".").all()


def test_a_ranker_model_saves_and_loads(demo: cs.Book, tmp_path: Any) -> None:
    """Check that a Recommender with a Ranker saves, and loads to the same offers."""
    rec = cs.Recommender(scorer=Ranker(**SMALL), k=2).fit(demo, AS_OF)
    back = cs.load(rec.save(tmp_path / "model.crosssell"))
    pd.testing.assert_frame_equal(back.recommend(), rec.recommend())


# ------------------------------------------------------------------ sampled negatives
def _rows(y: list[float], outcome: list[bool]) -> Any:
    from crosssell.scorers.ranker import _Rows

    n = len(y)
    return _Rows(
        np.arange(n, dtype=np.float64)[:, None],
        np.asarray(y, dtype=np.float64),
        np.arange(n, dtype=np.int64),
        np.asarray(outcome),
        np.ones(n),
    )


def test_sampling_keeps_positives_and_answers_and_weighs_negatives_back() -> None:
    """Check that positives and answered offers all stay, and kept negatives count 1/rate."""
    y = [1.0] * 10 + [0.0] * 10_000 + [0.0] * 5
    outcome = [False] * 10_010 + [True] * 5
    rows = _rows(y, outcome)
    sampled = Ranker(negatives_per_positive=20)._sample(rows, np.random.default_rng(0))
    assert sampled.y.sum() == 10
    assert sampled.outcome.sum() == 5
    negative = (sampled.y == 0) & ~sampled.outcome
    # about 20 per positive, each standing for 10,000 / 200 rows
    assert 150 <= negative.sum() <= 250
    np.testing.assert_allclose(sampled.w[negative], 10_000 / 200)
    assert (sampled.w[~negative] == 1.0).all()
    # the weighted count of negatives estimates how many there were
    assert abs(sampled.w[negative].sum() - 10_000) < 2_500


def test_sampling_leaves_a_window_with_few_negatives_whole() -> None:
    """Check that nothing is drawn when negatives are already within the ratio, or when off."""
    rows = _rows([1.0, 0.0, 0.0, 0.0], [False] * 4)
    assert Ranker(negatives_per_positive=20)._sample(rows, np.random.default_rng(0)) is rows
    many = _rows([1.0] + [0.0] * 500, [False] * 501)
    assert Ranker(negatives_per_positive=None)._sample(many, np.random.default_rng(0)) is many


def test_sampled_and_whole_training_hold_out_the_same_window(demo: cs.Book) -> None:
    """Check that sampling shrinks the older windows only and keeps the ranker calibrated."""
    m = demo.matrix(AS_OF)
    whole = Ranker(**SMALL, negatives_per_positive=None).fit(m, demo)
    sampled = Ranker(**SMALL, negatives_per_positive=1).fit(m, demo)
    rows_whole, rows_sampled = whole.training_["rows"], sampled.training_["rows"]
    assert rows_sampled.iloc[0] == rows_whole.iloc[0]  # the held-out window, used whole
    assert (rows_sampled.iloc[1:] < rows_whole.iloc[1:]).all()
    assert (sampled.training_["positives"] == whole.training_["positives"]).all()
    p = sampled.score(np.arange(len(demo.client_ids)))
    assert ((p >= 0) & (p <= 1)).all()


def test_negatives_per_positive_must_be_positive() -> None:
    """Check that a ratio of 0 is refused with the parameter's name."""
    book = cs.datasets.tiny()
    with pytest.raises(ValueError, match="'negatives_per_positive' parameter of Ranker"):
        Ranker(negatives_per_positive=0).fit(book.matrix(), book)


def test_early_stopping_keeps_the_trees_that_help_on_the_held_out_window(
    demo: cs.Book, tmp_path: Any
) -> None:
    """Check that early stopping fits fewer trees, the same ones again, and saves like the rest."""
    from crosssell import persist

    m = demo.matrix(AS_OF)
    stopped = Ranker(early_stopping=5, n_estimators=200).fit(m, demo)
    again = Ranker(early_stopping=5, n_estimators=200).fit(m, demo)
    n_trees = stopped.model_.booster_.num_trees()
    assert 0 < n_trees < 200
    assert again.model_.booster_.num_trees() == n_trees
    rows = np.arange(len(demo.client_ids))
    np.testing.assert_array_equal(stopped.score(rows), again.score(rows))
    with pytest.raises(ValueError, match="'early_stopping' parameter of Ranker"):
        Ranker(early_stopping=0).fit(m, demo)
    rec = cs.Recommender(scorer=Ranker(early_stopping=5), k=3).fit(demo, AS_OF)
    loaded = persist.load(persist.save(rec, tmp_path / "model"))
    pd.testing.assert_frame_equal(loaded.recommend(explain=False), rec.recommend(explain=False))


def test_als_warm_start_continues_the_same_fit() -> None:
    """Check that two iterations, then two more from their factors, equal four in one go."""
    from crosssell.scorers._implicit import fit_als

    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((60, 12)) < 0.3).astype(np.float32))
    common: dict[str, Any] = {"factors": 4, "regularization": 0.1, "alpha": 1.0, "num_threads": 1}
    u4, v4 = fit_als(x, iterations=4, random_state=np.random.default_rng(0), **common)
    u2, v2 = fit_als(x, iterations=2, random_state=np.random.default_rng(0), **common)
    u, v = fit_als(x, iterations=2, random_state=np.random.default_rng(9), init=(u2, v2), **common)
    np.testing.assert_allclose(u, u4, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, v4, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="warm start"):
        fit_als(x, iterations=1, random_state=np.random.default_rng(0), init=(v2, u2), **common)


def test_als_chain_reads_no_data_after_each_date(demo: cs.Book) -> None:
    """Check that the ALS fit at a date is the same whatever happened after that date.

    The Ranker fits ALS at its windows' starts from the earliest on, each started from the
    fit before it; moving the contracts started after the earlier date beyond the later one
    (same clients and products) must not change the earlier fit, and must change the later.
    """
    early, late = pd.Timestamp("2024-06-30"), pd.Timestamp(AS_OF)
    contracts = demo.contracts.copy()
    moved = contracts["start_date"] > early
    contracts.loc[moved, "start_date"] = late + pd.Timedelta("10D")
    contracts.loc[moved, "end_date"] = pd.NaT
    other = cs.Book.from_frames(
        contracts=contracts,
        products=demo.products.drop(columns=["in_catalog"]),
        clients=demo.clients,
        events=demo.events,
    )
    ranker = Ranker(base=("popularity", "als"), **SMALL)
    a = ranker._als_chain(demo, [late, early])
    b = ranker._als_chain(other, [early, late])
    np.testing.assert_array_equal(a[early].client_factors_, b[early].client_factors_)
    np.testing.assert_array_equal(a[early].product_factors_, b[early].product_factors_)
    assert not np.array_equal(a[late].product_factors_, b[late].product_factors_)
    # the later fit is a short continuation of the earlier one, not a fresh start
    assert a[late].iterations == a[early].iterations


def test_a_ranker_over_als_is_deterministic_and_calibrated(demo: cs.Book) -> None:
    """Check the ALS base through the whole fit: same seed, same probabilities in [0, 1]."""
    m = demo.matrix(AS_OF)
    params = {**SMALL, "base": ("popularity", "itemknn", "als")}
    a, b = Ranker(**params).fit(m, demo), Ranker(**params).fit(m, demo)
    rows = np.arange(200)
    np.testing.assert_array_equal(a.score(rows), b.score(rows))
    p = a.score(rows)
    assert ((p >= 0) & (p <= 1)).all()
    assert not a._als_fits  # the chain is dropped once the prediction state is fitted


def test_sampling_weighs_rows_kept_by_an_earlier_draw_by_what_they_stand_for() -> None:
    """Check that negatives already weighted are kept in proportion to their weight.

    A held-out window thinned before (weights 4) then sampled for training: every kept
    negative ends with the same weight, and the weighted count still estimates all of them.
    """
    y = np.array([1.0] * 10 + [0.0] * 4_000 + [0.0] * 4_000)
    rows = _rows(list(y), [False] * y.size)
    rows.w[10 + 4_000 :] = 4.0  # 4,000 rows standing for 16,000
    sampled = Ranker(negatives_per_positive=20)._sample(rows, np.random.default_rng(0))
    negative = sampled.y == 0
    np.testing.assert_allclose(sampled.w[negative], 20_000 / 200)
    assert abs(sampled.w[negative].sum() - 20_000) < 5_000
    assert sampled.y.sum() == 10


def test_a_large_held_out_window_is_thinned_where_no_client_took_anything(
    demo: cs.Book, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check the held-out window past its row budget: same check, fewer rows, still calibrated.

    Clients who took something keep every candidate, so the NDCG comparison with popularity
    (which reads only them) is the very same; the others' candidates are a weighted sample.
    """
    from crosssell.scorers import ranker as ranker_module

    m = demo.matrix(AS_OF)
    whole = Ranker(**SMALL).fit(m, demo)
    monkeypatch.setattr(ranker_module, "_HELD_OUT_ROWS", 2_000)
    thinned = Ranker(**SMALL).fit(m, demo)
    rows_whole, rows_thinned = whole.training_["rows"], thinned.training_["rows"]
    assert rows_thinned.iloc[0] < rows_whole.iloc[0] / 2
    assert (rows_thinned.iloc[1:] == rows_whole.iloc[1:]).all()  # older windows untouched
    assert (thinned.training_["positives"] == whole.training_["positives"]).all()
    assert thinned.holdout_ndcg_ == whole.holdout_ndcg_
    rows = np.arange(len(demo.client_ids))
    p_whole, p_thinned = whole.score(rows), thinned.score(rows)
    assert ((p_thinned >= 0) & (p_thinned <= 1)).all()
    # the calibration read from a weighted sample: the mean probability moves little
    candidates = p_whole > 0
    assert abs(p_thinned[candidates].mean() - p_whole[candidates].mean()) < 0.02


def test_thinning_keeps_every_candidate_of_a_client_who_took_one() -> None:
    """Check the draw of one held-out block: whole clients with a positive, others weighted."""
    from crosssell.scorers.ranker import _thin_held_out

    local = np.repeat(np.arange(4), 100)
    y = np.zeros(400)
    y[[5, 250]] = 1.0  # clients 0 and 2 took something
    keep, w = _thin_held_out(local, y, 0.25, np.random.default_rng(0))
    took = np.isin(local, [0, 2])
    assert keep[took].all()
    assert (w[took] == 1.0).all()
    assert 20 <= keep[~took].sum() <= 80
    assert (w[~took] == 4.0).all()


def test_candidates_selected_once_per_segment_are_the_same_as_per_row(fitted: Ranker) -> None:
    """Check that popularity scored and selected once per segment changes no candidate.

    Neither does selecting the candidate set without ordering it (``lead=False``).
    """
    rows = np.arange(min(300, fitted.context_.holdings.shape[0]))
    scores = [b.score(rows) for b in fitted.bases_]
    grouped, groups = fitted._base_scores(fitted.bases_, rows)
    assert any(g is not None for g in groups)
    assert any(s.shape[0] < rows.size for s in grouped)
    plain = fitted._candidates(fitted.context_, scores, rows)
    once = fitted._candidates(fitted.context_, grouped, rows, groups)
    unordered = fitted._candidates(fitted.context_, grouped, rows, groups, lead=False)
    for a, b, c in zip(plain[:3], once[:3], unordered[:3], strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert unordered[3] == []
    for (name_a, a), (name_b, b) in zip(plain[3], once[3], strict=True):
        assert name_a == name_b
        np.testing.assert_array_equal(a, b)


def test_a_book_where_everyone_holds_everything_fits_with_no_candidate() -> None:
    """Check that a held-out window with no candidate at all is not sized by dividing by 0."""
    n = 50
    contracts = pd.DataFrame(
        {
            "client_id": [f"C{i}" for i in range(n)],
            "product_id": "P1",
            "start_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(np.arange(n) * 7, unit="D"),
        }
    )
    book = cs.Book.from_frames(contracts=contracts)
    ranker = Ranker(n_estimators=5).fit(book.matrix("2025-06-30"), book)
    assert (ranker.training_["rows"] == 0).all()
    assert ranker.score(np.arange(n)).shape == (n, 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.0, 1.5, 2.0, np.nan, np.inf]),
            st.integers(0, 2),
            st.integers(-1, 2),
        ),
        max_size=40,
    )
)
def test_distinct_groups_entries_equal_bit_for_bit(entries: list[tuple[float, int, int]]) -> None:
    """Check the grouping that puts each phrase into words once: equal entries, and only those."""
    from crosssell.scorers.ranker import _distinct

    values = np.array([e[0] for e in entries], dtype=np.float64)
    a = np.array([e[1] for e in entries], dtype=np.int64)
    b = np.array([e[2] for e in entries], dtype=np.int64)
    first, inverse = _distinct(values, a, b)
    bits = values.view(np.int64)
    keys = list(zip(bits.tolist(), a.tolist(), b.tolist(), strict=True))
    assert inverse.shape == values.shape
    assert [keys[i] for i in first[inverse].tolist()] == keys
    assert len({keys[i] for i in first.tolist()}) == first.size
