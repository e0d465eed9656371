from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell import ClientProductMatrix, Columns, IdMap, NotFittedError, SchemaError
from crosssell._topk import top_k
from crosssell.scorers import (
    ALS,
    BPR,
    Blend,
    CoOccurrence,
    ItemKNN,
    Popularity,
    Scorer,
    _implicit,
    auto_regularization,
)

AS_OF = pd.Timestamp("2024-06-30")


def make_matrix(dense: np.ndarray) -> ClientProductMatrix:
    """A matrix with clients C0.. and products P0.. from a dense 0/1 (or weighted) array."""
    x = sp.csr_matrix(np.asarray(dense, dtype=np.float32))
    n_clients, n_products = x.shape
    return ClientProductMatrix(
        client_product=x,
        clients=IdMap([f"C{i}" for i in range(n_clients)], name="client"),
        products=IdMap([f"P{j}" for j in range(n_products)], name="product"),
        as_of=AS_OF,
        weighting="binary",
    )


def latent_holdings(
    n_clients: int, n_products: int, *, rank: int = 4, seed: int = 0, base: float = -2.0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Synthetic latent-factor holdings at a cutoff and the products bought after it."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_clients, rank))
    v = rng.normal(size=(n_products, rank))
    bias = rng.normal(size=n_products)
    p = 1.0 / (1.0 + np.exp(-(1.5 * (u @ v.T) / np.sqrt(rank) + bias + base)))
    held = rng.random(p.shape) < p
    new = ~held & (rng.random(p.shape) < 0.25 * p)
    return sp.csr_matrix(held.astype(np.float32)), sp.csr_matrix(new.astype(np.float32))


def ndcg_at(scorer: Scorer, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10) -> float:
    """Mean NDCG@k over clients who bought something after the cutoff, held products excluded."""
    scorer.fit(make_matrix(train.toarray()))
    rows = np.flatnonzero(np.diff(test.indptr) > 0)
    idx, _ = top_k(scorer.score(rows), k, train[rows])
    truth = test[rows].toarray() > 0
    gains = np.take_along_axis(truth, np.maximum(idx, 0), axis=1) & (idx >= 0)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(disc)[np.minimum(truth.sum(axis=1), k) - 1]
    return float(((gains * disc).sum(axis=1) / ideal).mean())


# ten clients, six products: two clear baskets ({0, 1, 2} and {3, 4}) and product 5 alone;
# client 9 holds nothing (cold)
HOLDINGS = np.array(
    [
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [0, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 1],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [1, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)
N_CLIENTS, N_PRODUCTS = HOLDINGS.shape
COLD = 9

FACTORIES: dict[str, Callable[[], Scorer]] = {
    "popularity": Popularity,
    "cooccurrence": CoOccurrence,
    "lift": lambda: CoOccurrence(measure="lift"),
    "itemknn": lambda: ItemKNN(neighbours=3),
    "bm25": lambda: ItemKNN(metric="bm25", neighbours=3),
    "als": lambda: ALS(factors=4, iterations=5, random_state=0, num_threads=1),
    "bpr": lambda: BPR(factors=4, iterations=20, random_state=0, num_threads=1),
    "blend": lambda: Blend([(CoOccurrence(), 2.0), (Popularity(), 1.0)]),
    "blend_rank": lambda: Blend([(ItemKNN(neighbours=3), 1.0), (Popularity(), 1.0)], method="rank"),
}


@pytest.fixture(scope="module")
def matrix() -> ClientProductMatrix:
    return make_matrix(HOLDINGS)


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Callable[[], Scorer]:
    return FACTORIES[request.param]


# --------------------------------------------------------------------------- contract suite
def test_fit_returns_self(factory: Callable[[], Scorer], matrix: ClientProductMatrix) -> None:
    """Check that fit returns the scorer itself, with fitted attributes ending in '_'."""
    scorer = factory()
    assert scorer.fit(matrix) is scorer
    assert scorer.n_products_ == N_PRODUCTS
    assert scorer.n_clients_ == N_CLIENTS


def test_not_fitted_error(factory: Callable[[], Scorer]) -> None:
    """Check that every method says the scorer is not fitted, in scikit-learn's words."""
    scorer = factory()
    name = type(scorer).__name__
    message = f"This {name} instance is not fitted yet. Call 'fit' before using it."
    for call in (
        lambda: scorer.score([0]),
        lambda: scorer.evidence([0], [1]),
        lambda: scorer.fit_client([0]),
        lambda: scorer.cold([0]),
    ):
        with pytest.raises(NotFittedError, match=message.replace(".", r"\.")):
            call()


def test_score_shape_and_dtype(factory: Callable[[], Scorer], matrix: ClientProductMatrix) -> None:
    """Check that score returns float32 (clients x products) with finite values."""
    scores = factory().fit(matrix).score(np.arange(N_CLIENTS))
    assert scores.dtype == np.float32
    assert scores.shape == (N_CLIENTS, N_PRODUCTS)
    assert np.isfinite(scores).all()


def test_refit_equals_fit(factory: Callable[[], Scorer], matrix: ClientProductMatrix) -> None:
    """Check that fitting the same scorer twice gives the same scores."""
    scorer = factory()
    first = scorer.fit(matrix).score(np.arange(N_CLIENTS)).copy()
    second = scorer.fit(matrix).score(np.arange(N_CLIENTS))
    np.testing.assert_array_equal(first, second)


def test_deterministic_across_clones(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that two clones fitted on the same data score identically."""
    a = factory().fit(matrix).score(np.arange(N_CLIENTS))
    b = factory().clone().fit(matrix).score(np.arange(N_CLIENTS))
    np.testing.assert_array_equal(a, b)


def test_chunking_does_not_change_scores(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that scoring clients in chunks or in another order gives the same rows."""
    scorer = factory().fit(matrix)
    whole = scorer.score(np.arange(N_CLIENTS))
    parts = np.vstack(
        [scorer.score(np.arange(i, min(i + 3, N_CLIENTS))) for i in range(0, N_CLIENTS, 3)]
    )
    np.testing.assert_allclose(whole, parts, rtol=1e-6)
    np.testing.assert_allclose(scorer.score([4, 1])[0], whole[4], rtol=1e-6)


def test_score_rows_equals_score_on_warm_clients(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that score_rows, the unchecked path, gives score's rows for clients with holdings."""
    scorer = factory().fit(matrix)
    warm = np.flatnonzero(~scorer.cold(np.arange(N_CLIENTS))).astype(np.int64)
    got = scorer.score_rows(warm)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, scorer.score(warm))
    with pytest.raises(NotFittedError):
        factory().score_rows(warm)


def test_unknown_and_cold_clients_get_the_fallback(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that cold, negative and out-of-range rows do not crash and share the fallback."""
    scorer = factory().fit(matrix)
    rows = np.array([COLD, -1, N_CLIENTS + 5])
    assert scorer.cold(rows).all()
    scores = scorer.score(rows)
    np.testing.assert_array_equal(scores[1], scores[2])
    assert np.isfinite(scores).all()
    if not isinstance(scorer, Blend | Popularity):
        np.testing.assert_array_equal(scores[0], scorer.fallback_)
    ev, w = scorer.evidence(rows, np.array([0, 1, 2]))
    assert (ev == -1).all()
    assert (w == 0).all()


def test_k_larger_than_catalogue(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that asking for more offers than products pads with -1 and never offers holdings."""
    scorer = factory().fit(matrix)
    rows = np.arange(N_CLIENTS)
    idx, val = top_k(scorer.score(rows), N_PRODUCTS + 4, matrix.client_product[rows])
    assert idx.shape == (N_CLIENTS, N_PRODUCTS + 4)
    held = HOLDINGS.sum(axis=1).astype(int)
    assert ((idx >= 0).sum(axis=1) == N_PRODUCTS - held).all()
    offered = np.zeros_like(HOLDINGS, dtype=bool)
    r, c = np.nonzero(idx >= 0)
    offered[r, idx[r, c]] = True
    assert not (offered & (HOLDINGS > 0)).any()
    assert np.isneginf(val[idx < 0]).all()


def test_evidence_names_held_products(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that evidence has the documented shapes, -1 padding and only held products."""
    scorer = factory().fit(matrix)
    clients = np.array([0, 0, 5, 8])
    products = np.array([2, 3, 4, 0])
    ev, w = scorer.evidence(clients, products, n=2)
    assert ev.shape == w.shape == (4, 2)
    assert ev.dtype == np.int64
    assert w.dtype == np.float32
    for row, client in enumerate(clients):
        named = ev[row][ev[row] >= 0]
        assert HOLDINGS[client, named].all()
        assert (w[row][ev[row] < 0] == 0).all()
        assert (np.diff(w[row][ev[row] >= 0]) <= 0).all()
    if scorer.explain_kind == "popularity":
        assert (ev == -1).all()
    else:
        assert ev[0, 0] in (0, 1)


def test_fit_client_matches_known_rows(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that fit_client returns float32 scores that rank like the fitted row."""
    scorer = factory().fit(matrix)
    held = np.flatnonzero(HOLDINGS[1])
    scores = scorer.fit_client(held)
    assert scores.dtype == np.float32
    assert scores.shape == (N_PRODUCTS,)
    if not isinstance(scorer, ALS | BPR | Blend | Popularity):
        np.testing.assert_allclose(scores, scorer.score([1])[0], rtol=1e-6)
    np.testing.assert_array_equal(scorer.fit_client([]), scorer.score([-1])[0])


def test_fit_client_rejects_unknown_products(
    factory: Callable[[], Scorer], matrix: ClientProductMatrix
) -> None:
    """Check that product indices outside the catalogue are refused with a hint."""
    scorer = factory().fit(matrix)
    with pytest.raises(ValueError, match=r"product indices in \[0, 6\); got \[9\]"):
        scorer.fit_client([0, 9])


def test_params_round_trip(factory: Callable[[], Scorer]) -> None:
    """Check get_params, set_params, clone and repr follow scikit-learn's manners."""
    scorer = factory()
    params = scorer.get_params()
    clone = scorer.clone()
    assert type(clone) is type(scorer)
    assert clone is not scorer
    assert repr(clone) == repr(scorer)
    assert scorer.set_params(**{k: v for k, v in params.items() if "__" not in k}) is scorer
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        scorer.set_params(nope=1)


def test_clone_is_unfitted(factory: Callable[[], Scorer], matrix: ClientProductMatrix) -> None:
    """Check that a clone of a fitted scorer is not fitted."""
    clone = factory().fit(matrix).clone()
    with pytest.raises(NotFittedError):
        clone.score([0])


# --------------------------------------------------------------------------- estimator manners
def test_repr_shows_only_non_default_params() -> None:
    """Check that the repr lists only parameters that differ from their defaults."""
    assert repr(ALS()) == "ALS()"
    assert repr(ALS(factors=8, random_state=3)) == "ALS(factors=8, random_state=3)"
    assert repr(CoOccurrence(measure="lift")) == "CoOccurrence(measure='lift')"


def test_init_stores_params_unchanged() -> None:
    """Check that __init__ stores even invalid values; fit is where they are checked."""
    als = ALS(factors=0)
    assert als.factors == 0


BAD_PARAMS: list[tuple[Scorer, str]] = [
    (
        ALS(factors=0),
        "The 'factors' parameter of ALS must be an int in the range [1, inf). Got 0 instead.",
    ),
    (
        ALS(regularization=-1.0),
        "The 'regularization' parameter of ALS must be a str among {'auto'} or a float in the "
        "range [0, inf). Got -1.0 instead.",
    ),
    (
        ALS(alpha=0),
        "The 'alpha' parameter of ALS must be a float in the range (0, inf). Got 0 instead.",
    ),
    (
        ALS(random_state="x"),  # type: ignore[arg-type]
        "The 'random_state' parameter of ALS must be an int in the range [0, inf)",
    ),
    (
        BPR(iterations=0),
        "The 'iterations' parameter of BPR must be an int in the range [1, inf). Got 0 instead.",
    ),
    (
        CoOccurrence(measure="x"),  # type: ignore[arg-type]
        "The 'measure' parameter of CoOccurrence must be a str among "
        "{'confidence', 'jaccard', 'lift'}. Got 'x' instead.",
    ),
    (
        CoOccurrence(min_support=0),
        "The 'min_support' parameter of CoOccurrence must be an int in the range [1, inf). "
        "Got 0 instead.",
    ),
    (
        ItemKNN(neighbours=1.5),  # type: ignore[arg-type]
        "The 'neighbours' parameter of ItemKNN must be an int in the range [1, inf). "
        "Got 1.5 instead.",
    ),
    (Blend([]), "The 'scorers' parameter of Blend must be a non-empty list"),
    (
        Blend([(Popularity(), 1.0)], method="x"),  # type: ignore[arg-type]
        "The 'method' parameter of Blend must be a str among {'rank', 'score'}. Got 'x' instead.",
    ),
]


@pytest.mark.parametrize(("scorer", "message"), BAD_PARAMS)
def test_invalid_params_are_named(
    scorer: Scorer, message: str, matrix: ClientProductMatrix
) -> None:
    """Check that fit rejects each bad parameter with scikit-learn's message."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        scorer.fit(matrix)


def test_random_state_generator_is_used() -> None:
    """Check that a Generator random_state is accepted and an int seeds reproducibly."""
    m = make_matrix(HOLDINGS)
    a = ALS(factors=3, iterations=3, random_state=np.random.default_rng(5)).fit(m)
    b = ALS(factors=3, iterations=3, random_state=np.random.default_rng(5)).fit(m)
    np.testing.assert_array_equal(a.client_factors_, b.client_factors_)


def test_nested_set_params_reaches_inner_scorer() -> None:
    """Check that set_params with 'name__param' reaches a scorer held as a parameter."""

    class Wrapper(Popularity):
        def __init__(self, inner: Scorer | None = None, by: str | None = None) -> None:
            self.inner = inner
            self.by = by

    w = Wrapper(inner=ALS())
    w.set_params(inner__factors=3)
    assert w.inner is not None
    assert w.get_params()["inner__factors"] == 3


# --------------------------------------------------------------------------- specific scorers
def test_popularity_is_share_of_holders(matrix: ClientProductMatrix) -> None:
    """Check that popularity scores are the share of clients holding each product."""
    scores = Popularity().fit(matrix).score([0])[0]
    np.testing.assert_allclose(scores, HOLDINGS.mean(axis=0))


def test_popularity_by_segment_with_unknown_group_fallback(matrix: ClientProductMatrix) -> None:
    """Check that grouped popularity uses each client's segment and global shares otherwise."""
    segment = ["a"] * 5 + ["b"] * 3 + [None, "a"]
    book = SimpleNamespace(
        client_ids=matrix.clients,
        client_table=pd.DataFrame(
            {Columns.client: matrix.clients.external, Columns.segment: segment}
        ),
    )
    scorer = Popularity(by=Columns.segment).fit(matrix, book)  # type: ignore[arg-type]
    scores = scorer.score([0, 5, 8, 9, -1])
    np.testing.assert_allclose(scores[0], HOLDINGS[[0, 1, 2, 3, 4, 9]].mean(axis=0))
    np.testing.assert_allclose(scores[1], HOLDINGS[[5, 6, 7]].mean(axis=0))
    np.testing.assert_allclose(scores[2], HOLDINGS.mean(axis=0))
    np.testing.assert_allclose(scores[3], scores[0])
    np.testing.assert_allclose(scores[4], HOLDINGS.mean(axis=0))


def test_popularity_scores_groups_by_value(matrix: ClientProductMatrix) -> None:
    """Check that score_groups gives a group's shares by value, and global shares otherwise."""
    segment = ["a"] * 5 + ["b"] * 3 + [None, "a"]
    book = SimpleNamespace(
        client_ids=matrix.clients,
        client_table=pd.DataFrame(
            {Columns.client: matrix.clients.external, Columns.segment: segment}
        ),
    )
    scorer = Popularity(by=Columns.segment).fit(matrix, book)  # type: ignore[arg-type]
    assert scorer.groups_.tolist() == ["a", "b"]
    scores = scorer.score_groups(["b", "new", None])
    np.testing.assert_array_equal(scores[0], scorer.score([5])[0])
    np.testing.assert_allclose(scores[1], HOLDINGS.mean(axis=0))
    np.testing.assert_allclose(scores[2], HOLDINGS.mean(axis=0))
    np.testing.assert_array_equal(Popularity().fit(matrix).score_groups(["a"])[0], scores[1])


def test_popularity_by_needs_book_and_column(matrix: ClientProductMatrix) -> None:
    """Check that grouped popularity explains a missing book or column."""
    with pytest.raises(ValueError, match=r"call fit\(matrix, book\)"):
        Popularity(by="segment").fit(matrix)
    book = SimpleNamespace(
        client_ids=matrix.clients, client_table=pd.DataFrame({Columns.client: []})
    )
    with pytest.raises(SchemaError, match="column 'segment' is missing") as info:
        Popularity(by="segment").fit(matrix, book)  # type: ignore[arg-type]
    assert info.value.table == "clients"


def test_cooccurrence_measures_by_hand() -> None:
    """Check confidence, lift and jaccard against hand-computed values."""
    m = make_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1], [0, 0, 1]]))
    conf = CoOccurrence().fit(m).rules_.toarray()
    lift = CoOccurrence(measure="lift").fit(m).rules_.toarray()
    jac = CoOccurrence(measure="jaccard").fit(m).rules_.toarray()
    # 3 hold P0, 2 hold P1, 2 hold P2; P0&P1: 2, P0&P2: 1, P1&P2: 0
    np.testing.assert_allclose(conf[0], [0, 2 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(conf[1], [1, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(lift[0, 1], (2 / 3) / (2 / 4), rtol=1e-6)
    np.testing.assert_allclose(jac[0, 1], 2 / (3 + 2 - 2), rtol=1e-6)
    pruned = CoOccurrence(min_support=2).fit(m).rules_.toarray()
    assert pruned[0, 2] == 0
    assert pruned[0, 1] > 0


def test_cooccurrence_scores_are_weighted_sums(matrix: ClientProductMatrix) -> None:
    """Check that a chunk is scored as X_chunk @ rules_."""
    scorer = CoOccurrence().fit(matrix)
    expected = HOLDINGS[[0, 5]] @ scorer.rules_.toarray()
    np.testing.assert_allclose(scorer.score([0, 5]), expected, rtol=1e-6)


def test_itemknn_evidence_is_x_times_similarity(matrix: ClientProductMatrix) -> None:
    """Check that ItemKNN evidence weights are x_ci * sim[i, j] over the held products."""
    scorer = ItemKNN(neighbours=5).fit(matrix)
    sim = scorer.similarity_.toarray()
    ev, w = scorer.evidence([0], [2], n=2)
    contrib = HOLDINGS[0] * sim[:, 2]
    best = np.argsort(-contrib, kind="stable")[:2]
    assert ev[0].tolist() == best.tolist()
    np.testing.assert_allclose(w[0], contrib[best], rtol=1e-6)
    assert np.diag(sim).max() == 0
    assert ((sim > 0).sum(axis=1) <= 5).all()


def test_itemknn_keeps_only_k_neighbours(matrix: ClientProductMatrix) -> None:
    """Check that each product keeps at most 'neighbours' similar products."""
    sim = ItemKNN(neighbours=1).fit(matrix).similarity_
    assert (np.diff(sim.indptr) <= 1).all()


def test_als_fit_client_matches_implicit_recalculate_user(matrix: ClientProductMatrix) -> None:
    """Check that the numpy fold-in equals implicit's exact recalculate_user."""
    als = ALS(factors=4, iterations=5, random_state=0, alpha=2.0).fit(matrix)
    weights = np.array([1.0, 3.0, 0.5])
    held = np.array([0, 2, 5])
    row = sp.csr_matrix(
        (weights.astype(np.float32), (np.zeros(3, int), held)), shape=(1, N_PRODUCTS)
    )
    factor = _implicit.recalculate_user(
        row, als.product_factors_, regularization=als.regularization_, alpha=2.0
    )
    np.testing.assert_allclose(
        als.fit_client(held, weights), als.product_factors_ @ factor, rtol=1e-3, atol=1e-5
    )


def test_als_evidence_agrees_with_exact_explain(matrix: ClientProductMatrix) -> None:
    """Check that the vectorised factor evidence matches implicit's explain for binary data."""
    als = ALS(factors=4, iterations=10, random_state=0).fit(matrix)
    ev, w = als.evidence([1], [5], n=3)
    ex_p, ex_w = als.exact_explain(1, 5, n=3)
    assert ev[0].tolist() == ex_p.tolist()
    np.testing.assert_allclose(w[0], ex_w, rtol=1e-3, atol=1e-6)
    assert (als.exact_explain(COLD, 0)[0] == -1).all()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["als", "bpr"]),
    n=st.sampled_from([1, 3, 5]),
    fresh=st.booleans(),
)
def test_factor_evidence_from_the_dense_table_equals_the_gathered_path(
    seed: int, kind: str, n: int, fresh: bool
) -> None:
    """Check that the compiled read of the pair table names the products the gather names.

    Same products, order and float32 weights: ties (two products with equal factors), offers
    of held products, unknown and cold rows, weighted holdings and fresh float64 holdings.
    """
    rng = np.random.default_rng(seed)
    dense = (rng.random((30, 12)) < 0.4) * rng.choice([1.0, 2.0, 0.5], size=(30, 12))
    dense[3] = 0.0
    scorer: ALS | BPR
    if kind == "als":
        scorer = ALS(factors=3, iterations=3, random_state=0)
    else:
        scorer = BPR(factors=3, iterations=3, random_state=0, num_threads=1)
    scorer.fit(make_matrix(dense))
    scorer.product_factors_[1] = scorer.product_factors_[0]
    scorer._pair_table = None
    rows = rng.integers(-1, 32, size=200)
    products = rng.integers(0, 12, size=200)
    holdings = None
    if fresh:
        holdings = sp.csr_matrix(dense * rng.choice([1.0, 3.0], size=dense.shape))
        rows = rows.clip(0, 29)
    got = scorer.evidence(rows, products, n=n, holdings=holdings)
    scorer._dense_pair_weights = lambda: None  # type: ignore[method-assign]
    want = scorer.evidence(rows, products, n=n, holdings=holdings)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert (got[0] >= 0).any()


def test_als_auto_regularization_scales_with_data(matrix: ClientProductMatrix) -> None:
    """Check that 'auto' resolves to sqrt(nnz / n_products), clipped into [1, 100]."""
    als = ALS(factors=2, iterations=2, random_state=0).fit(matrix)
    assert als.regularization_ == pytest.approx(np.sqrt(HOLDINGS.sum() / N_PRODUCTS))
    assert auto_regularization(nnz=4_000_000, n_products=10) == 100.0
    assert ALS(regularization=7.5, factors=2, iterations=2).fit(matrix).regularization_ == 7.5


def test_default_als_does_not_lose_to_popularity() -> None:
    """Check that default ALS, ItemKNN and CoOccurrence beat Popularity on a small catalogue."""
    train, test = latent_holdings(1000, 60, seed=3)
    pop = ndcg_at(Popularity(), train, test)
    assert ndcg_at(ALS(random_state=0), train, test) > pop
    assert ndcg_at(ItemKNN(), train, test) > pop
    assert ndcg_at(CoOccurrence(), train, test) > pop


def test_bpr_single_thread_is_reproducible(matrix: ClientProductMatrix) -> None:
    """Check that BPR with num_threads=1 gives identical factors for the same seed."""
    a = BPR(factors=3, iterations=10, random_state=4, num_threads=1).fit(matrix)
    b = BPR(factors=3, iterations=10, random_state=4, num_threads=1).fit(matrix)
    np.testing.assert_array_equal(a.product_factors_, b.product_factors_)
    assert np.allclose(a.client_factors_[:, -1], 1.0)


def test_blend_min_max_mix(matrix: ClientProductMatrix) -> None:
    """Check that 'score' blending min-max scales each member's row before weighting."""
    blend = Blend([(CoOccurrence(), 3.0), (Popularity(), 1.0)]).fit(matrix)
    co = CoOccurrence().fit(matrix).score([3])[0]
    pop = Popularity().fit(matrix).score([3])[0]

    def mm(v: np.ndarray) -> np.ndarray:
        return (v - v.min()) / (v.max() - v.min())

    np.testing.assert_allclose(blend.score([3])[0], 0.75 * mm(co) + 0.25 * mm(pop), rtol=1e-5)
    assert blend.scorers[0][0] is not blend.scorers_[0]


def test_blend_rank_uses_mean_rank_for_ties(matrix: ClientProductMatrix) -> None:
    """Check that rank blending gives equal scores the same percentile."""
    blend = Blend([(Popularity(), 1.0)], method="rank").fit(matrix)
    # shares: P0 .5, P1 .4, P2 .4, P3 .3, P4 .3, P5 .1 -> ranks 5, 3.5, 3.5, 1.5, 1.5, 0
    np.testing.assert_allclose(blend.score([0])[0], np.array([5, 3.5, 3.5, 1.5, 1.5, 0]) / 5)


def test_blend_evidence_merges_members(matrix: ClientProductMatrix) -> None:
    """Check that blended evidence sums member credit per held product, strongest first."""
    blend = Blend([(CoOccurrence(), 1.0), (ItemKNN(neighbours=5), 1.0)]).fit(matrix)
    ev, w = blend.evidence([0], [2], n=3)
    assert set(ev[0][ev[0] >= 0].tolist()) <= {0, 1}
    assert w[0, 0] <= 1.0 + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5), st.integers(0, 9), st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])
        ),
        max_size=40,
    ),
    st.integers(1, 4),
)
def test_top_contributions_equals_a_full_sort(
    entries: list[tuple[int, int, float]], n: int
) -> None:
    """Check the n strongest positive weights per offer, ties by product, whatever the order."""
    from crosssell.scorers.base import top_contributions

    owner = np.array([e[0] for e in entries], dtype=np.int64)
    held = np.array([e[1] for e in entries], dtype=np.int64)
    weight = np.array([e[2] for e in entries], dtype=np.float64)
    got_p, got_w = top_contributions(owner, held, weight, 6, n)
    for offer in range(6):
        mine = sorted((-w, p) for o, p, w in entries if o == offer and w > 0)[:n]
        assert got_p[offer].tolist() == [p for _, p in mine] + [-1] * (n - len(mine))
        assert got_w[offer].tolist() == [-w for w, _ in mine] + [0.0] * (n - len(mine))
