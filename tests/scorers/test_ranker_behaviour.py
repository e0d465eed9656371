"""The Ranker's behaviour on tiny hand-built books: offer outcomes as labels, the popularity
guard, the trees' size, products nobody holds yet, and reasons from feature contributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.scorers import Ranker

AS_OF = pd.Timestamp("2025-06-30")
SMALL: dict[str, Any] = {"n_estimators": 40, "windows": 3, "horizon": "90D", "random_state": 0}


def _book(
    contracts: list[tuple[str, str, str]],
    products: dict[str, list[Any]],
    events: list[tuple[str, str, str, str]] | None = None,
) -> cs.Book:
    return cs.Book.from_frames(
        contracts=pd.DataFrame(contracts, columns=["client_id", "product_id", "start_date"]),
        products=pd.DataFrame(products),
        events=None
        if not events
        else pd.DataFrame(events, columns=["client_id", "product_id", "date", "type"]),
    )


def _dates(window: int, n: int) -> list[str]:
    """``n`` dates inside training window ``window`` (0 is the one ending at AS_OF)."""
    end = AS_OF - pd.Timedelta(days=90 * window)
    return [(end - pd.Timedelta(days=5 + i * 80 // n)).strftime("%Y-%m-%d") for i in range(n)]


def _takes(
    rng: np.random.Generator,
    *,
    group: list[str],
    product: str,
    window: int,
    n: int,
    held: set[tuple[str, str]],
) -> list[tuple[str, str, str]]:
    """``n`` clients of ``group`` not holding ``product`` take it within ``window``."""
    free = [c for c in group if (c, product) not in held]
    takers = rng.choice(free, n, replace=False).tolist()
    held.update((c, product) for c in takers)
    return [(c, product, d) for c, d in zip(takers, _dates(window, n), strict=True)]


def _decline_book(*, declines: bool, after_as_of: bool = False) -> cs.Book:
    """Everyone holds A; B and D are taken alike; with ``declines`` many decline D each window."""
    rng = np.random.default_rng(1)
    clients = [f"K{i:03d}" for i in range(300)]
    rows = [(c, "A", "2023-01-01") for c in clients]
    events = []
    held: set[tuple[str, str]] = set()
    for w in range(4):
        rows += _takes(rng, group=clients, product="B", window=w, n=15, held=held)
        rows += _takes(rng, group=clients, product="D", window=w, n=15, held=held)
        if declines:
            free = [c for c in clients if (c, "D") not in held]
            who = rng.choice(free, 60, replace=False).tolist()
            events += [
                (c, "D", d, "offer_declined") for c, d in zip(who, _dates(w, 60), strict=True)
            ]
    if after_as_of:
        for c in clients[:100]:
            events += [
                (c, "B", "2025-07-15", "offer_declined"),
                (c, "D", "2025-07-20", "offer_accepted"),
            ]
            rows.append((c, "D", "2025-08-01"))
    products = {"product_id": ["A", "B", "D"], "family": ["a", "b", "d"], "tier": [1, 1, 1]}
    return _book(rows, products, events)


def _guard_book(*, pattern_holds_recently: bool) -> cs.Book:
    """A-holders take D and C-holders take B in every window; B is by far the most popular.

    When the pattern breaks in the most recent window (everyone takes B), trees trained on the
    older windows rank that window worse than popularity does.
    """
    rng = np.random.default_rng(0)
    a_group = [f"A{i:03d}" for i in range(150)]
    c_group = [f"C{i:03d}" for i in range(150)]
    rows = [(c, "A", "2023-01-01") for c in a_group] + [(c, "C", "2023-01-01") for c in c_group]
    early = rng.choice(a_group + c_group, 160, replace=False).tolist()
    rows += [(c, "B", "2023-06-01") for c in early[:140]]
    rows += [(c, "D", "2023-06-01") for c in early[140:]]
    held = {(c, p) for c, p, _ in rows}
    for w in range(4):
        broken = w == 0 and not pattern_holds_recently
        rows += _takes(
            rng, group=a_group, product="B" if broken else "D", window=w, n=15, held=held
        )
        rows += _takes(rng, group=c_group, product="B", window=w, n=15, held=held)
    products = {"product_id": list("ABCD"), "family": list("abcd"), "tier": [1] * 4}
    return _book(rows, products)


def _fit(book: cs.Book, **params: Any) -> Ranker:
    return Ranker(**{**SMALL, **params}).fit(book.matrix(AS_OF), book)


# ----------------------------------------------------------------- offer outcomes as labels
def test_declined_offers_lower_the_probability_for_similar_clients() -> None:
    """Check that a product often declined gets a lower probability for a client like the others."""
    without = _fit(_decline_book(declines=False))
    with_declines = _fit(_decline_book(declines=True))
    assert (with_declines.training_["offer_outcomes"] > 0).all()
    assert (without.training_["offer_outcomes"] == 0).all()
    client = np.flatnonzero(with_declines.client_product_.toarray().sum(axis=1) == 1)[:1]
    b, d = 1, 2
    p_with = with_declines.score(client)[0]
    p_without = without.score(client)[0]
    assert p_with[d] < p_without[d]
    assert p_with[d] < p_with[b]


def test_offers_answered_after_as_of_change_nothing() -> None:
    """Check that offers answered and contracts taken after as_of leave every score unchanged."""
    before = _decline_book(declines=True)
    after = _decline_book(declines=True, after_as_of=True)
    assert len(after.events) > len(before.events)
    rows = np.arange(len(before.client_ids))
    np.testing.assert_array_equal(_fit(after).score(rows), _fit(before).score(rows))


# ----------------------------------------------------------------- never worse than popularity
def test_trees_that_beat_popularity_on_the_held_out_window_are_kept() -> None:
    """Check that trees ranking the held-out window better than popularity are used."""
    ranker = _fit(_guard_book(pattern_holds_recently=True))
    assert ranker.uses_model_
    assert ranker.model_ is not None
    assert ranker.holdout_ndcg_["trees"] > ranker.holdout_ndcg_["popularity"]
    # an A-holder without D gets D first, against popularity (B)
    a_rows = np.flatnonzero(ranker.client_product_[:, 0].toarray().ravel() > 0)
    free = a_rows[(ranker.client_product_[a_rows][:, [1, 3]].toarray() == 0).all(axis=1)]
    assert (ranker.score(free).argmax(axis=1) == 3).all()


def test_trees_that_lose_to_popularity_fall_back_to_it() -> None:
    """Check that trees no better than popularity on the held-out window give way to it."""
    ranker = _fit(_guard_book(pattern_holds_recently=False))
    assert not ranker.uses_model_
    assert ranker.model_ is None
    assert ranker.holdout_ndcg_["trees"] < ranker.holdout_ndcg_["popularity"]
    scores = ranker.score(np.arange(ranker.n_clients_))
    assert ((scores >= 0) & (scores <= 1)).all()
    # the order is popularity's: B (most held) first for everyone without it
    free = np.flatnonzero(ranker.client_product_[:, 1].toarray().ravel() == 0)
    assert (scores[free].argmax(axis=1) == 1).all()


def test_popularity_fallback_reads_two_columns_and_scores_as_every_feature_would() -> None:
    """Check that a ranker fallen back to popularity scores, batch and alone, as its features do.

    Its scoring reads only the two popularity columns; the reference computes every feature
    and orders the candidates through them, as before that shortcut.
    """
    ranker = _fit(_guard_book(pattern_holds_recently=False))
    assert ranker.model_ is None
    rows = np.arange(ranker.n_clients_)
    ctx = ranker.context_
    local, clients, products, x = ranker._features(
        ctx, [b.score(rows) for b in ranker.bases_], rows
    )
    want = np.zeros((rows.size, ctx.holdings.shape[1]), dtype=np.float32)
    want[local, products] = np.clip(ranker._probability(x, ctx, clients, products), 1e-6, 1.0)
    np.testing.assert_array_equal(ranker.score(rows), want)
    for row in rows[:: max(rows.size // 7, 1)]:
        np.testing.assert_array_equal(ranker.score(rows[row : row + 1])[0], want[row])
    evidence, weights, text = ranker.reasons(clients[:20], products[:20])
    assert (evidence == -1).all()
    assert (weights == 0).all()
    names = ranker.context_.book.product_ids.to_external(products[:20])
    held_by_some = ranker.context_.popularity[products[:20]] > 0
    for sentence, name, some in zip(text, names, held_by_some, strict=True):
        if some:
            assert sentence == (
                "Proposed on popularity only: nothing about this client in particular "
                f"speaks for {name}."
            )
        else:
            assert sentence.startswith(f"{name} is held by no client yet")


def test_a_ranker_that_fell_back_to_popularity_saves_and_loads_so(tmp_path: Path) -> None:
    """Check that a saved ranker keeps the guard's verdict, its held-out NDCG and its offers."""
    book = _guard_book(pattern_holds_recently=False)
    rec = cs.Recommender(scorer=Ranker(**SMALL), k=2).fit(book, AS_OF)
    loaded = cs.load(rec.save(tmp_path / "model"))
    assert loaded.scorer_.uses_model_ is False
    assert loaded.scorer_.holdout_ndcg_ == rec.scorer_.holdout_ndcg_
    pd.testing.assert_frame_equal(loaded.recommend(), rec.recommend())


# ----------------------------------------------------------------- the trees' size
def _demo_ranker(num_leaves: Any) -> cs.Recommender:
    params = {"n_estimators": 40, "horizon": "180D", "random_state": 0}
    return cs.Recommender(scorer=Ranker(**params, num_leaves=num_leaves), k=5).fit(
        cs.datasets.demo(), "2024-12-31"
    )


def test_the_tree_size_kept_is_the_one_ranking_the_held_out_window_best() -> None:
    """Check that of two sizes the ranker keeps the one whose held-out NDCG is higher.

    Each size fitted alone gives its held-out NDCG; given both, the ranker must keep the better
    one (a tie: fewer leaves) and score exactly as that size fitted alone.
    """
    alone = {n: _demo_ranker(n) for n in (4, 31)}
    ndcg = {n: rec.scorer_.holdout_ndcg_["trees"] for n, rec in alone.items()}
    assert ndcg[4] != ndcg[31]
    better = 4 if ndcg[4] >= ndcg[31] else 31
    both = _demo_ranker((31, 4))
    assert both.scorer_.num_leaves_ == better
    assert both.scorer_.holdout_ndcg_ == alone[better].scorer_.holdout_ndcg_
    rows = np.arange(both.scorer_.n_clients_)
    np.testing.assert_array_equal(both.scorer_.score(rows), alone[better].scorer_.score(rows))
    pd.testing.assert_frame_equal(both.recommend(), alone[better].recommend())


def test_by_default_trees_have_31_leaves() -> None:
    """Check that the default grows one size of tree, 31 leaves, and compares none."""
    rec = _demo_ranker(Ranker().num_leaves)
    assert rec.scorer_.num_leaves_ == 31


def test_one_tree_size_is_used_as_given() -> None:
    """Check that ``num_leaves=n`` grows trees of n leaves at most, and n where rows allow."""
    rec = _demo_ranker(6)
    assert rec.scorer_.num_leaves_ == 6
    text = rec.scorer_.model_.booster_.model_to_string()
    leaves = [
        int(line.split("=")[1]) for line in text.splitlines() if line.startswith("num_leaves=")
    ]
    assert max(leaves, default=0) == 6


def test_the_chosen_tree_size_survives_a_save(tmp_path: Path) -> None:
    """Check that a loaded ranker reports the size it was fitted with and offers the same."""
    rec = _demo_ranker((15, 31))
    loaded = cs.load(rec.save(tmp_path / "model"))
    assert loaded.scorer_.num_leaves_ == rec.scorer_.num_leaves_ in (15, 31)
    pd.testing.assert_frame_equal(loaded.recommend(), rec.recommend())


def test_with_nothing_taken_in_the_held_out_window_the_largest_size_is_kept() -> None:
    """Check that a held-out window without a product taken, nothing to rank, keeps 31 leaves."""
    rng = np.random.default_rng(3)
    clients = [f"K{i:03d}" for i in range(300)]
    rows = [(c, "A", "2023-01-01") for c in clients]
    held: set[tuple[str, str]] = set()
    for w in (1, 2, 3):
        rows += _takes(rng, group=clients, product="B", window=w, n=20, held=held)
        rows += _takes(rng, group=clients, product="D", window=w, n=10, held=held)
    book = _book(rows, {"product_id": ["A", "B", "D"], "family": list("abd"), "tier": [1] * 3})
    ranker = _fit(book, num_leaves=(4, 31))
    assert ranker.training_["positives"].iloc[0] == 0
    assert ranker.num_leaves_ == 31


@pytest.mark.parametrize("bad", [1, 0, (), (7, 1), (7, 2.5), True])
def test_a_tree_size_below_two_is_refused(bad: Any) -> None:
    """Check that ``num_leaves`` must be whole numbers of at least 2, and says so."""
    with pytest.raises(ValueError, match="num_leaves"):
        Ranker(num_leaves=bad).fit(*_small_matrix_and_book())


def _small_matrix_and_book() -> tuple[Any, cs.Book]:
    book = _guard_book(pattern_holds_recently=True)
    return book.matrix(AS_OF), book


# ----------------------------------------------------------------- products nobody holds yet
def _launch_book() -> cs.Book:
    """The decline book's clients, a product N launched before AS_OF and a product Z after it."""
    base = _decline_book(declines=False)
    products = pd.DataFrame(
        {
            "product_id": ["A", "B", "D", "N", "Z"],
            "family": ["a", "b", "d", "b", "d"],
            "tier": [1, 1, 1, 2, 2],
            "available_from": [None, None, None, "2025-06-01", "2025-09-01"],
        }
    )
    return cs.Book.from_frames(contracts=base.contracts, products=products)


def test_a_product_nobody_holds_yet_is_always_a_candidate() -> None:
    """Check that a launched product held by nobody is scored above 0 in a large-catalogue mode."""
    book = _launch_book()
    ranker = _fit(book, score_all_below=0, n_candidates=1)
    n, z = book.product_ids.to_index(["N", "Z"])
    scores = ranker.score(np.arange(ranker.n_clients_))
    assert (scores[:, n] > 0).all()
    assert (scores[:, z] == 0).all()


def test_a_product_nobody_holds_is_explained_by_its_attributes() -> None:
    """Check that an offer of a product nobody holds has no evidence and says so plainly."""
    book = _launch_book()
    rec = cs.Recommender(scorer=Ranker(**SMALL, score_all_below=0, n_candidates=1), k=3)
    offers = rec.fit(book, AS_OF).recommend()
    new = offers[offers["product_id"] == "N"]
    assert len(new) > 0
    assert (
        new["reason"].str.contains("held by no client yet: proposed on its attributes only").all()
    )
    assert all(len(e) == 0 for e in new["evidence"])


# ----------------------------------------------------------------- reasons from contributions
@pytest.fixture(scope="module")
def demo_rec() -> cs.Recommender:
    ranker = Ranker(n_estimators=30, windows=2, random_state=0)
    return cs.Recommender(scorer=ranker, k=3).fit(cs.datasets.demo(), "2025-06-30")


def test_a_batch_explains_its_offers_from_the_features_it_scored(
    demo_rec: cs.Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that explanations read from a chunk's scoring equal those computed afresh."""
    clients = demo_rec.book_.client_ids.external[:300]
    found: list[bool] = []
    read = Ranker._chunk_features

    def spy(self: Ranker, rows: np.ndarray, prods: np.ndarray) -> Any:
        x = read(self, rows, prods)
        found.append(x is not None)
        if x is not None:
            np.testing.assert_array_equal(
                x, self._offer_features(self.context_, self.bases_, rows, prods)
            )
        return x

    monkeypatch.setattr(Ranker, "_chunk_features", spy)
    before = demo_rec.get_params(deep=False)
    for jobs in (1, 2):
        demo_rec.set_params(n_jobs=jobs, batch_size=64)
        read_back = demo_rec.recommend(clients)
        assert found
        assert all(found)
        found.clear()
        monkeypatch.setattr(Ranker, "_chunk_features", lambda self, rows, prods: None)
        fresh = demo_rec.recommend(clients)
        monkeypatch.setattr(Ranker, "_chunk_features", spy)
        pd.testing.assert_frame_equal(read_back, fresh)
    demo_rec.set_params(n_jobs=before["n_jobs"], batch_size=before["batch_size"])


def test_ranker_offers_are_explained_by_their_contributions(demo_rec: cs.Recommender) -> None:
    """Check that offers carry contribution sentences and evidence held by the client."""
    assert demo_rec.scorer_.explain_kind == "contributions"
    offers = demo_rec.recommend(demo_rec.book_.client_ids.external[:40])
    warm = offers[~offers["cold_start"]]
    assert not warm["reason"].str.contains("also tend to hold").any()
    assert warm["reason"].str.endswith(".").all()
    contracts = demo_rec.book_.contracts
    holds = set(zip(contracts["client_id"], contracts["product_id"], strict=True))
    for client, evidence in zip(warm["client_id"], warm["evidence"], strict=True):
        assert all((client, e["product_id"]) in holds for e in evidence)
        assert all(e["weight"] > 0 for e in evidence)
    assert (warm["evidence"].map(len) > 0).mean() > 0.5


def test_one_client_is_explained_as_in_a_batch(demo_rec: cs.Recommender) -> None:
    """Check that recommend_one gives the reasons and evidence of recommend."""
    client = demo_rec.book_.client_ids.external[3]
    batch = demo_rec.recommend([client])
    one = demo_rec.recommend_one(client)
    assert [o.reason for o in one] == batch["reason"].tolist()
    assert [o.evidence for o in one] == [
        tuple((e["product_id"], e["weight"]) for e in ev) for ev in batch["evidence"]
    ]


def test_a_client_with_fresh_holdings_is_explained_from_them(demo_rec: cs.Recommender) -> None:
    """Check that a client folded in from fresh contracts gets evidence among its holdings."""
    new = {
        "client_id": ["NEW"] * 2,
        "product_id": ["ERP-2", "SEC-2"],
        "start_date": ["2025-01-01"] * 2,
    }
    offers = demo_rec.recommend_one("NEW", contracts=new)
    assert offers
    assert all(o.reason for o in offers)
    assert all(p in {"ERP-2", "SEC-2"} for o in offers for p, _ in o.evidence or ())


def test_popularity_fallback_offers_say_so() -> None:
    """Check that offers of a ranker fallen back to popularity have no evidence and say why."""
    book = _guard_book(pattern_holds_recently=False)
    offers = cs.Recommender(scorer=Ranker(**SMALL), k=2).fit(book, AS_OF).recommend()
    assert offers["reason"].str.startswith("Proposed on popularity only").all()
    assert (offers["evidence"].map(len) == 0).all()


def test_path_contributions_add_up_to_the_log_odds(demo_rec: cs.Recommender) -> None:
    """Check that the contributions of every feature plus the trees' roots give the log-odds."""
    from crosssell.scorers.ranker import _path_contributions

    ranker = demo_rec.scorer_
    assert isinstance(ranker, Ranker)
    rows, products = np.arange(30), np.arange(30) % ranker.n_products_
    x = ranker._offer_features(ranker.context_, ranker.bases_, rows, products)
    booster = ranker.model_.booster_
    roots = sum(
        float(t["tree_structure"].get("internal_value", t["tree_structure"].get("leaf_value", 0)))
        for t in booster.dump_model()["tree_info"]
    )
    total = _path_contributions(booster, x).sum(axis=1) + roots
    np.testing.assert_allclose(total, booster.predict(x, raw_score=True), atol=1e-9)


def test_path_contributions_are_the_same_for_few_rows_and_many(
    demo_rec: cs.Recommender,
) -> None:
    """Check that a row's sums do not depend on the rows beside it, and are the table's sums."""
    from crosssell.scorers.ranker import _leaf_table, _path_contributions

    ranker = demo_rec.scorer_
    assert isinstance(ranker, Ranker)
    n = 200
    rows, products = np.arange(n), np.arange(n) % ranker.n_products_
    x = ranker._offer_features(ranker.context_, ranker.bases_, rows, products)
    booster = ranker.model_.booster_
    many = _path_contributions(booster, x)
    few = np.vstack([_path_contributions(booster, x[i : i + 7]) for i in range(0, n, 7)])
    np.testing.assert_array_equal(many, few)
    assert (many != 0).any()
    # the dense table, added up tree after tree, as the sparse credit rows are
    table = _leaf_table(booster, x.shape[1])
    leaves = booster.predict(x, pred_leaf=True)
    dense = table[np.arange(table.shape[0]), leaves].sum(axis=1)
    np.testing.assert_array_equal(many, dense)


def test_why_not_gives_the_contribution_sentence(demo_rec: cs.Recommender) -> None:
    """Check that why_not of an offered pair ends with the offer's reason."""
    offer = demo_rec.recommend([demo_rec.book_.client_ids.external[5]]).iloc[0]
    text = demo_rec.why_not(offer["client_id"], offer["product_id"])
    assert text.startswith(f"{offer['product_id']!r} is offered to")
    reason = str(offer["reason"])
    core = reason.split(": ", 1)[1] if reason.startswith("Upgrade within ") else reason
    assert text.endswith(" " + core)


def test_one_clients_explanation_reuses_its_scoring_features_exactly(demo_rec, monkeypatch):
    """Check that explaining from the scoring pass's features says what recomputing them says."""
    from crosssell.scorers.ranker import Ranker

    clients = demo_rec.book_.client_ids.external[:40]
    reused = [[o.to_dict() for o in demo_rec.recommend_one(c, explain=True)] for c in clients]
    monkeypatch.setattr(Ranker, "_scored_features", lambda self, rows, prods: None)
    again = [[o.to_dict() for o in demo_rec.recommend_one(c, explain=True)] for c in clients]
    assert reused == again
    assert any(offers for offers in reused)


def test_a_base_proposes_only_what_it_scores_above_zero() -> None:
    """Check that a product item-kNN scores 0 (nothing co-held) is no candidate of its own.

    Before, item-kNN's top ``n_candidates`` ran past its evidence into products in index order.
    """
    book = cs.datasets.demo()
    ranker = Ranker(
        n_estimators=20,
        windows=2,
        random_state=0,
        base=("itemknn",),
        score_all_below=0,
        n_candidates=len(book.product_ids),
    ).fit(book.matrix(AS_OF), book)
    rows = np.arange(300)
    knn = ranker.bases_[0].score(rows)
    scores = ranker.score(rows)
    held = ranker.client_product_[rows].toarray() > 0
    new = np.zeros(knn.shape[1], dtype=bool)
    new[ranker.context_.available & (ranker.context_.popularity == 0)] = True
    # the demo book has clients whose holdings leave some products without a neighbour
    assert ((knn <= 0) & ~held & ~new).any()
    np.testing.assert_array_equal(scores > 0, ((knn > 0) | new) & ~held)
