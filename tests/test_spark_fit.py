"""Tests of crosssell.spark_fit: scorers fitted from Spark aggregations equal one-machine fits."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.exceptions import InvalidParameterError, SchemaError, UnknownIdError
from crosssell.scorers import ALS, CoOccurrence, ItemKNN, Popularity, Ranker
from crosssell.scorers._implicit import item_similarity
from crosssell.spark_fit import assemble, fit_statistics, top_neighbours

AS_OF = "2024-06-30"
pytestmark = [
    # pyspark announces on every conversion that it has not certified pandas 3 yet.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local two-core Spark session bound to the loopback interface (as in test_spark)."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("crosssell-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "3g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _tiny() -> dict[str, pd.DataFrame]:
    """Six clients, three products. At 2024-06-30: a and b hold P1 and P2, c holds P1 and P3
    (P1 twice, renewed), d's P1 ended, e's P2 starts later, f holds nothing."""
    contracts = pd.DataFrame(
        {
            "client_id": ["a", "a", "b", "b", "c", "c", "c", "d", "e"],
            "product_id": ["P1", "P2", "P1", "P2", "P1", "P1", "P3", "P1", "P2"],
            "start_date": ["2023-01-01", "2023-02-01", "2022-05-01", "2024-01-01", "2021-01-01",
                           "2024-03-01", "2023-07-01", "2022-01-01", "2024-09-01"],
            "end_date": [None, None, None, "2025-01-01", "2024-03-01", None, None, "2023-01-01",
                         None],
            "value": [100.0, 50.0, 80.0, np.nan, 10.0, 30.0, 200.0, 60.0, 40.0],
            "quantity": [1.0, 2.0, 1.0, 3.0, 1.0, 1.0, 5.0, 1.0, 1.0],
        }
    )  # fmt: skip
    clients = pd.DataFrame(
        {
            "client_id": ["a", "b", "c", "d", "e", "f"],
            "segment": ["small", "small", "large", "large", None, "small"],
        }
    )
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3"]})
    return {"contracts": contracts, "clients": clients, "products": products}


def _frame(spark: Any, frame: pd.DataFrame) -> Any:
    """A Spark DataFrame of a pandas frame, text columns as plain Python strings."""
    plain = frame.copy()
    for column in plain.columns:
        if pd.api.types.is_string_dtype(plain[column].dtype):
            plain[column] = plain[column].astype(object).where(plain[column].notna(), None)
    return spark.createDataFrame(plain)


def _spark_fit(spark: Any, frames: dict[str, pd.DataFrame], scorer: Any, **kwargs: Any) -> Any:
    return fit_statistics(
        _frame(spark, frames["contracts"]),
        as_of=kwargs.pop("as_of", AS_OF),
        scorer=scorer,
        clients_df=_frame(spark, frames["clients"][["client_id", "segment"]]),
        products=frames["products"],
        **kwargs,
    )


def _assert_same_state(spark_scorer: Any, one: Any, *, rtol: float = 0.0) -> None:
    """The product-level fitted state of both scorers agrees (exactly when rtol is 0)."""
    np.testing.assert_allclose(spark_scorer.fallback_, one.fallback_, rtol=rtol)
    assert spark_scorer.n_products_ == one.n_products_
    for name in ("rules_", "similarity_"):
        if hasattr(one, name):
            got, want = getattr(spark_scorer, name), getattr(one, name)
            assert (got != 0).nnz == (want != 0).nnz
            assert ((got != 0) != (want != 0)).nnz == 0, f"{name}: other pairs kept"
            np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=rtol)
    if isinstance(one, CoOccurrence):
        np.testing.assert_array_equal(spark_scorer.support_, one.support_)
    if isinstance(one, Popularity) and len(one.groups_):
        assert sorted(spark_scorer.groups_.tolist()) == sorted(one.groups_.tolist())
        order = one.groups_.get_indexer(spark_scorer.groups_)
        np.testing.assert_allclose(spark_scorer.group_shares_, one.group_shares_[order], rtol=rtol)


# ---------------------------------------------------------------------- no Spark needed
@pytest.mark.parametrize("scorer", [ALS(), Ranker()], ids=["ALS", "Ranker"])
def test_scorers_that_are_not_sums_over_clients_are_refused(scorer: Any) -> None:
    """Check that a factorisation or the ranker is refused with a message saying why."""
    with pytest.raises(InvalidParameterError, match=r"sum over clients.*fits on one machine"):
        fit_statistics(None, as_of=AS_OF, scorer=scorer)  # type: ignore[arg-type]


def test_top_neighbours_keeps_the_lower_product_on_a_tie() -> None:
    """Check that of two equally similar products, the lower index is kept."""
    got = top_neighbours(
        [0, 0, 0, 1, 1, 2, 2], [0, 1, 2, 0, 1, 0, 2], [1.0, 0.5, 0.5, 0.5, 1.0, 0.5, 1.0],
        n_products=3, neighbours=1,
    )  # fmt: skip
    assert got.toarray().tolist() == [[0.0, 0.5, 0.0], [0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=6),
    st.sampled_from(["cosine", "tfidf", "bm25"]),
)
def test_top_neighbours_of_the_dot_products_is_implicits_similarity(
    seed: int, neighbours: int, metric: str
) -> None:
    """Check that pruning the dot products of weighted holdings gives implicit's neighbours."""
    from implicit.nearest_neighbours import bm25_weight, normalize, tfidf_weight

    rng = np.random.default_rng(seed)
    # continuous weights: no two dot products tie, so the kernel's order of visit cannot matter
    dense = (rng.random((40, 9)) < 0.3) * rng.uniform(0.5, 3.0, (40, 9))
    x = sp.csr_matrix(dense.astype(np.float32))
    product_client = x.T
    if metric == "cosine":
        weighted = normalize(product_client)
    elif metric == "tfidf":
        weighted = normalize(tfidf_weight(product_client))
    else:
        weighted = bm25_weight(product_client, 1.2, 0.75)
    w = sp.csr_matrix(weighted)
    dots = (w @ w.T).tocoo()
    got = top_neighbours(dots.row, dots.col, dots.data, n_products=9, neighbours=neighbours)
    want = item_similarity(x, metric=metric, neighbours=neighbours)  # type: ignore[arg-type]
    assert ((got != 0) != (want != 0)).nnz == 0
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-6)


# ---------------------------------------------------------------------- tiny, obvious answers
@pytest.mark.spark
def test_popularity_counts_the_clients_holding_each_product_at_as_of(spark: Any) -> None:
    """Check the shares on the tiny book: P1 held by a, b, c of six clients; by segment too."""
    fitted = _spark_fit(spark, _tiny(), Popularity(by="segment"))
    assert fitted.n_clients == 6
    assert fitted.holders.tolist() == [3, 2, 1]
    assert fitted.scorer.fallback_.tolist() == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    shares = dict(zip(fitted.scorer.groups_, fitted.scorer.group_shares_.tolist(), strict=True))
    # small: a, b, f (f holds nothing); large: c, d (d's P1 has ended)
    assert shares["small"] == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert shares["large"] == pytest.approx([1 / 2, 0.0, 1 / 2])
    assert fitted.scorer.score_groups(["large", "unknown"]).tolist()[0] == pytest.approx(
        [0.5, 0.0, 0.5]
    )


@pytest.mark.spark
def test_cooccurrence_counts_pairs_held_by_one_client(spark: Any) -> None:
    """Check the rules on the tiny book: of P1's three holders two hold P2, one P3."""
    fitted = _spark_fit(spark, _tiny(), CoOccurrence())
    rules = fitted.scorer.rules_.toarray()
    assert rules[0].tolist() == pytest.approx([0.0, 2 / 3, 1 / 3])
    assert rules[1].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert fitted.scorer.support_.tolist() == [3, 2, 1]


@pytest.mark.spark
@pytest.mark.parametrize(
    ("scorer", "weighting"),
    [
        (Popularity(by="segment"), "value"),
        (CoOccurrence(measure="jaccard", min_support=2), "binary"),
        (ItemKNN(neighbours=1), "binary"),
        (ItemKNN(), ("recency", "log_value")),
        (ItemKNN(metric="bm25"), ("tenure", "quantity")),
    ],
    ids=repr,
)
def test_tiny_book_fits_as_on_one_machine(spark: Any, scorer: Any, weighting: Any) -> None:
    """Check that each scorer and weighting fitted on Spark has the one-machine fitted state."""
    frames = _tiny()
    book = cs.Book.from_frames(**frames)
    one = scorer.clone().fit(book.matrix(AS_OF, weighting=weighting), book)
    fitted = _spark_fit(spark, frames, scorer, weighting=weighting)
    assert fitted.products.tolist() == book.product_ids.external.tolist()
    _assert_same_state(fitted.scorer, one, rtol=1e-6)


@pytest.mark.spark
def test_exact_duplicate_contracts_are_collapsed_with_a_warning(spark: Any) -> None:
    """Check that a repeated contract row weighs once, as in a Book, and is reported."""
    frames = _tiny()
    frames["contracts"] = pd.concat(
        [frames["contracts"], frames["contracts"].iloc[:1]], ignore_index=True
    )
    with pytest.warns(cs.DataWarning, match="exact duplicates"):
        book = cs.Book.from_frames(**frames)
    one = ItemKNN().fit(book.matrix(AS_OF, weighting="value"), book)
    with pytest.warns(cs.DataWarning, match="exact duplicates of an earlier row in 1 rows"):
        fitted = _spark_fit(spark, frames, ItemKNN(), weighting="value")
    _assert_same_state(fitted.scorer, one, rtol=1e-6)


@pytest.mark.spark
def test_ever_state_counts_ended_holdings(spark: Any) -> None:
    """Check that state="ever" counts d's ended P1: four holders of six."""
    fitted = _spark_fit(spark, _tiny(), Popularity(), state="ever")
    assert fitted.holders.tolist() == [4, 2, 1]


# ---------------------------------------------------------------------- errors
@pytest.mark.spark
def test_an_end_before_the_start_is_an_error_naming_the_rows(spark: Any) -> None:
    """Check that a contract ending before it starts stops the fit with its count and row."""
    frames = _tiny()
    frames["contracts"].loc[0, "end_date"] = "2022-01-01"
    message = (
        r"contracts: 'end_date' is before 'start_date' in 1 rows \(showing up to 5\): "
        r"client_id='a' product_id='P1'"
    )
    with pytest.raises(SchemaError, match=message) as err:
        _spark_fit(spark, frames, Popularity())
    assert (err.value.table, err.value.column, err.value.rule) == (
        "contracts",
        "end_date",
        "end_before_start",
    )


@pytest.mark.spark
def test_tfidf_weights_that_vanish_are_an_error(spark: Any) -> None:
    """Check that TF-IDF on three products, where every holder holds two, says why it fails."""
    with pytest.raises(
        InvalidParameterError, match=r"weighs 3 held product\(s\) to nothing.*'P1', 'P2', 'P3'"
    ):
        _spark_fit(spark, _tiny(), ItemKNN(metric="tfidf"))


@pytest.mark.spark
def test_a_product_outside_the_catalogue_is_an_error(spark: Any) -> None:
    """Check that contracts naming a product missing from the catalogue stop the fit."""
    frames = _tiny()
    frames["products"] = frames["products"].iloc[:2]
    with pytest.raises(UnknownIdError, match=r"1 rows name 1 product id\(s\).*'P3'"):
        _spark_fit(spark, frames, CoOccurrence())


@pytest.mark.spark
def test_a_client_twice_in_the_clients_table_is_an_error(spark: Any) -> None:
    """Check that a repeated client row stops the fit rather than counting the client twice."""
    frames = _tiny()
    frames["clients"] = pd.concat([frames["clients"], frames["clients"].iloc[:1]])
    with pytest.raises(SchemaError, match="clients: a client id appears more than once in 1 rows"):
        _spark_fit(spark, frames, Popularity(by="segment"))


# ---------------------------------------------------------------------- a synthetic book
@pytest.fixture(scope="module")
def synthetic(spark: Any) -> dict[str, Any]:
    """A synthetic book of 2,000 clients, its Book, and its tables on Spark (dates as DATE)."""
    from pyspark.sql import functions as sf

    frames = cs.datasets.synthetic_frames(n_clients=2_000, seed=5)
    contracts = _frame(spark, frames["contracts"])
    for column in ("start_date", "end_date"):
        contracts = contracts.withColumn(column, sf.to_date(column))
    clients = _frame(spark, frames["clients"][["client_id", "segment"]])
    return {
        "frames": frames,
        "book": cs.Book.from_frames(**frames),
        "contracts": contracts,
        "clients": clients,
        "as_of": "2025-06-30",
    }


@pytest.mark.spark
@pytest.mark.slow
def test_a_recommender_from_spark_statistics_offers_what_fit_offers(
    synthetic: dict[str, Any],
) -> None:
    """Check that a Recommender assembled from the Spark fit gives Recommender.fit's offers."""
    book, as_of = synthetic["book"], synthetic["as_of"]
    scorer = ItemKNN()
    common = {
        "as_of": as_of,
        "clients_df": synthetic["clients"],
        "products": book.product_ids.external,
    }
    fitted = fit_statistics(synthetic["contracts"], scorer=scorer, **common)
    fallback = fit_statistics(synthetic["contracts"], scorer=Popularity(by="segment"), **common)
    one = scorer.clone().fit(book.matrix(as_of), book)
    _assert_same_state(fitted.scorer, one)
    base = cs.Recommender(scorer=scorer, policy=cs.rules.route_sales(), k=3)
    want = base.fit(book, as_of).recommend()
    got = assemble(base, book, fitted, fallback=fallback).recommend()
    assert len(want) > 1000
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.spark
@pytest.mark.slow
def test_clients_outside_the_assembled_book_are_scored_from_their_holdings(
    synthetic: dict[str, Any],
) -> None:
    """Check that a model assembled on a sample of clients ranks the others as fit does."""
    frames, book, as_of = synthetic["frames"], synthetic["book"], synthetic["as_of"]
    common = {"as_of": as_of, "products": book.product_ids.external}
    fitted = fit_statistics(synthetic["contracts"], scorer=CoOccurrence(), **common)
    fallback = fit_statistics(synthetic["contracts"], scorer=Popularity(), **common)
    ids = frames["clients"]["client_id"]
    sample = {
        name: frame[frame["client_id"].isin(ids.iloc[:200])] if name != "products" else frame
        for name, frame in frames.items()
    }
    base = cs.Recommender(scorer=CoOccurrence(), k=3, cold_start="global")
    small = assemble(base, cs.Book.from_frames(**sample), fitted, fallback=fallback)
    others = frames["contracts"][frames["contracts"]["client_id"].isin(ids.iloc[1000:1300])]
    want = base.fit(book, as_of).recommend_frames(others)
    got = small.recommend_frames(others)
    keys = ["client_id", "product_id", "rank"]
    assert len(want) > 500
    pd.testing.assert_frame_equal(got[keys], want[keys])
