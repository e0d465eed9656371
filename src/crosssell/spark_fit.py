"""Fitting on Apache Spark: the scorers whose fit is a sum over clients, as Spark aggregations.

When the contract history does not fit on one machine, a Book cannot be built, so
:meth:`crosssell.Recommender.fit` cannot start. Three scorers learn only sums over clients, which
Spark computes where the data live:

- :class:`~crosssell.scorers.Popularity`: holders per product, overall and per client group
  (``by``, e.g. the segment), divided by the number of clients (in the group);
- :class:`~crosssell.scorers.CoOccurrence`: clients holding each pair of products, from a
  self-join of the held pairs on the client;
- :class:`~crosssell.scorers.ItemKNN`: the product x product dot products of the weighted
  holdings (cosine, TF-IDF or BM25), from the same self-join, then the nearest neighbours of each
  product.

Only product-level results come back to the driver (a products x products table at most), and
the arithmetic after the sums is the single-machine code's, so the fitted state equals what
``scorer.fit(book.matrix(as_of, weighting=...), book)`` learns on the same data (see
:func:`fit_statistics` for the two points where it may differ in the last bits or in a tie).

The factorisation scorers (:class:`~crosssell.scorers.ALS`, :class:`~crosssell.scorers.BPR`)
and the learned :class:`~crosssell.scorers.Ranker` are not sums over clients: they stay on one
machine (fit ALS on a GPU with ``use_gpu=True`` when the matrix fits there, or on a sample of
clients). :func:`fit_statistics` refuses them with an error that says so.

pyspark is optional (``pip install "crosssell[spark]"``); it is imported when called.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._params import Options, validate_params
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.exceptions import DataWarning, InvalidParameterError, SchemaError, UnknownIdError
from crosssell.matrix import AsOf, ClientProductMatrix, to_as_of
from crosssell.recommender import Recommender
from crosssell.scorers import CoOccurrence, ItemKNN, Popularity
from crosssell.scorers._implicit import keep_top_per_row
from crosssell.scorers.base import Scorer
from crosssell.scorers.cooccurrence import rules_from_counts
from crosssell.scorers.popularity import shares_from_counts
from crosssell.weighting import (
    MIN_WEIGHT,
    Binary,
    Combined,
    LogValue,
    Quantity,
    Recency,
    Tenure,
    Value,
    Weighting,
    WeightingLike,
    as_weighting,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["FittedStatistics", "assemble", "fit_statistics", "top_neighbours"]

State = Literal["active", "ever"]

#: Scorers whose fit is a sum over clients, which :func:`fit_statistics` computes on Spark.
SUMMABLE: Final = (Popularity, CoOccurrence, ItemKNN)

# implicit's BM25 constants, as crosssell.scorers._implicit.item_similarity passes them
_BM25_K1: Final = 1.2
_BM25_B: Final = 0.75
# Tenure counts Julian years, as crosssell.weighting does.
_YEAR_US: Final = 365.25 * 24 * 3600 * 10**6
_EXTRA_HINT: Final = 'Install it with: pip install "crosssell[spark]"'
_SHOWN: Final = 5

# private column names of the intermediate frames
_C, _P, _W = "__client", "__product", "__weight"
_START, _END, _BAD = "__start", "__end", "__bad"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FittedStatistics:
    """A scorer fitted on Spark from product-level sums, with what it was fitted on.

    Attributes
    ----------
    scorer : Scorer
        The fitted :class:`~crosssell.scorers.Popularity`, :class:`~crosssell.scorers.CoOccurrence`
        or :class:`~crosssell.scorers.ItemKNN`. Its product-level state (``fallback_``,
        ``group_shares_``, ``rules_``, ``support_``, ``similarity_``) equals a single-machine
        fit's. It holds no client rows (``n_clients_`` is 0): a client is scored from its
        holdings with ``scorer.fit_client(held, weights)``, or by its group with
        ``Popularity.score_groups``, which is how ``crosssell.spark.recommend`` buckets score
        clients that the fitted model has not stored.
    products : pandas.Index
        The product ids, in column order of every fitted array.
    n_clients : int
        The clients counted: those of the clients table, of the contracts and (without a
        clients table) of the events, as a Book counts them.
    holders : ndarray of int64, shape (n_products,)
        Clients holding each product at ``as_of``.
    as_of : pandas.Timestamp
        The point in time.
    weighting : str
        The weighting's description.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from crosssell.scorers import Popularity
    >>> fs = FittedStatistics(scorer=Popularity(), products=pd.Index(["P1"]), n_clients=2,
    ...     holders=np.array([1]), as_of=pd.Timestamp("2024-06-30"), weighting="binary")
    >>> fs.products.tolist(), fs.n_clients
    (['P1'], 2)
    """

    scorer: Scorer
    products: pd.Index
    n_clients: int
    holders: npt.NDArray[np.int64]
    as_of: pd.Timestamp
    weighting: str


def _require_pyspark() -> None:
    try:
        import pyspark.sql  # noqa: F401
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"crosssell.spark_fit needs pyspark (>= 4.0), which is not installed. {_EXTRA_HINT}"
        ) from err


# ----------------------------------------------------------------- the driver's arithmetic
def top_neighbours(
    rows: npt.ArrayLike,
    cols: npt.ArrayLike,
    dots: npt.ArrayLike,
    *,
    n_products: int,
    neighbours: int,
) -> sp.csr_matrix:
    """Keep each product's nearest neighbours from its dot products, as :class:`ItemKNN` does.

    The single-machine fit asks implicit's kernel for the ``neighbours + 1`` largest dot
    products of each product (itself usually among them), removes the product itself and the
    zeros, and keeps the ``neighbours`` largest of the rest. This does the same from the dot
    products computed elsewhere (on Spark). Where dot products tie at the cut, the lower product
    index is kept; the kernel keeps the one it met first, which follows the order of the
    clients in the Book.

    Parameters
    ----------
    rows, cols : array-like of int
        Product indices of each dot product (both orders of a pair, and the product with
        itself, as the kernel sees them).
    dots : array-like of float
        The dot products of the weighted holdings.
    n_products : int
        Number of products.
    neighbours : int
        Neighbours kept per product.

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_products, n_products)
        ``[a, c]``: how much holding ``a`` speaks for ``c``; the diagonal is empty.

    Examples
    --------
    >>> m = top_neighbours([0, 0, 0, 1, 1, 2, 2], [0, 1, 2, 0, 1, 0, 2],
    ...                    [1.0, 0.5, 0.2, 0.5, 1.0, 0.2, 1.0], n_products=3, neighbours=1)
    >>> m.toarray().tolist()
    [[0.0, 0.5, 0.0], [0.5, 0.0, 0.0], [0.20000000298023224, 0.0, 0.0]]
    """
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    v = np.asarray(dots, dtype=np.float64)
    k = min(neighbours + 1, max(n_products, 1))
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    rank = np.arange(r.size) - np.searchsorted(r, r, side="left")
    keep = (rank < k) & (r != c) & (v != 0)
    sim = sp.csr_matrix(
        (v[keep].astype(np.float32), (r[keep], c[keep])), shape=(n_products, n_products)
    )
    return keep_top_per_row(sim, neighbours)


def _fitted_scorer(
    scorer: Scorer, *, holders: npt.NDArray[np.int64], n_clients: int, state: dict[str, Any]
) -> Scorer:
    """Set the fitted state of a clone of ``scorer``: product-level arrays, no client rows."""
    out = scorer.clone()
    out._validate_params()
    n_products = int(holders.shape[0])
    for name, value in state.items():
        setattr(out, name, value)
    out.client_product_ = sp.csr_matrix(np.zeros((0, n_products), dtype=np.float32))
    out.n_clients_ = 0
    out.n_products_ = n_products
    out.fallback_ = (holders.astype(np.float64) / max(n_clients, 1)).astype(np.float32)
    return out


# ----------------------------------------------------------------- the public function
def fit_statistics(
    contracts_df: DataFrame,
    *,
    as_of: AsOf,
    scorer: Scorer,
    clients_df: DataFrame | None = None,
    events_df: DataFrame | None = None,
    products: Any = None,
    weighting: WeightingLike = "binary",
    state: State = "active",
) -> FittedStatistics:
    """Fit a scorer whose fit is a sum over clients from Spark DataFrames.

    The contracts held at ``as_of`` are grouped by (client, product) pair on the cluster (one
    weight per pair, as :meth:`crosssell.ClientProductMatrix.from_book` weighs it); the sums the
    scorer learns from are Spark aggregations of those pairs: holders per product (and per
    group), a self-join on the client for the pairs of products. Only product-level tables come
    back to the driver.

    The result equals ``scorer.fit(book.matrix(as_of, weighting=weighting), book)`` on the
    same data, with two exceptions that the tests measure: the dot products of
    :class:`~crosssell.scorers.ItemKNN` add up in another order, so they may differ in the last
    bits of a float64 (counts are exact); and :class:`~crosssell.scorers.ItemKNN`
    breaks a tie at its cut by the lower product index (see :func:`top_neighbours`). The
    fitted groups of :class:`~crosssell.scorers.Popularity` are in sorted order rather than in
    order of first appearance.

    Parameters
    ----------
    contracts_df : pyspark.sql.DataFrame
        Contracts with crosssell's column names: ``client_id``, ``product_id``, ``start_date``
        and optionally ``end_date`` (null: open), ``value`` and ``quantity``. Dates may be DATE,
        TIMESTAMP, TIMESTAMP_NTZ or ISO text; TIMESTAMP values are read in the session time zone
        (a Book reads aware times in UTC: set ``spark.sql.session.timeZone`` to ``UTC``).
    as_of : str, date, datetime, Timestamp or datetime64
        The point in time (microseconds, Spark's precision). Required: there is no Book to take
        its last date from.
    scorer : Popularity, CoOccurrence or ItemKNN
        The scorer to fit (not changed: a fitted clone is returned).
    clients_df : pyspark.sql.DataFrame, optional
        One row per client (``client_id``, and the ``by`` column of a grouped Popularity).
        Clients in it count even when they hold nothing, as in a Book.
    events_df : pyspark.sql.DataFrame, optional
        Events (``client_id``); without ``clients_df`` their clients count, as in a Book.
    products : sequence or pandas.DataFrame, optional
        The catalogue: its product ids (a ``product_id`` column of a frame) give the column
        order, and products nobody holds get a column. Default: the products of the contracts,
        sorted.
    weighting : str, Weighting or tuple, default "binary"
        As in :meth:`crosssell.Book.matrix`; the built-in weightings and their products.
        Popularity and CoOccurrence read holdings as binary, whatever the weighting.
    state : {"active", "ever"}, default "active"
        Which holdings count, as in :meth:`crosssell.Book.matrix`.

    Returns
    -------
    FittedStatistics
        The fitted scorer (product-level state only), the product order, the client count.

    Raises
    ------
    InvalidParameterError
        If ``scorer`` is not a Popularity, CoOccurrence or ItemKNN (the factorisation scorers
        and the Ranker fit on one machine), or a parameter is invalid.
    SchemaError
        If a required column is missing, or rows have no client, no product, an unreadable
        start, an end before the start, or a client appears twice in ``clients_df`` (the
        count and up to five rows are shown).
    UnknownIdError
        If contracts name products that are not in ``products``.
    ImportError
        If pyspark is not installed.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell.spark_fit import fit_statistics
    >>> frames = cs.datasets.synthetic_frames(200, seed=0)
    >>> contracts = spark.createDataFrame(frames["contracts"])  # doctest: +SKIP
    >>> fitted = fit_statistics(contracts, as_of="2025-06-30",  # doctest: +SKIP
    ...                         scorer=cs.scorers.ItemKNN(), products=frames["products"])
    >>> fitted.scorer.similarity_.shape  # doctest: +SKIP
    (24, 24)
    """
    if not isinstance(scorer, SUMMABLE):
        names = ", ".join(t.__name__ for t in SUMMABLE)
        raise InvalidParameterError(
            f"The 'scorer' parameter of fit_statistics must be one of {names}, whose fit is a "
            f"sum over clients. Got {type(scorer).__name__} instead: it fits on one machine "
            "(a factorisation on a GPU with use_gpu=True, or on a sample of clients), with "
            "Recommender.fit.",
            owner="fit_statistics",
            parameter="scorer",
        )
    validate_params("fit_statistics", {"state": state}, {"state": [Options({"active", "ever"})]})
    w = as_weighting(weighting, caller="fit_statistics")
    _spark_weight_check(w)
    ts = to_as_of(as_of, caller="fit_statistics")
    _require_pyspark()
    scorer._validate_params()
    by = scorer.by if isinstance(scorer, Popularity) else None

    # A few Spark jobs: the checks with the distinct products, the clients with their checks,
    # then one aggregation of the held pairs (two for ItemKNN, three with a grouped Popularity).
    if isinstance(scorer, ItemKNN) and not isinstance(w, Binary):
        # a Book collapses exact duplicate contract rows (with a warning): their values must not
        # add up twice in a weight. Binary holdings count each pair once anyway.
        contracts_df = _without_duplicates(contracts_df)
    contracts, seen = _checked_contracts(contracts_df)
    catalogue = _catalogue(contracts, seen, products)
    n_products = len(catalogue)
    clients = _checked_clients(clients_df, by)
    n_clients = _count_clients(contracts, clients, events_df)
    pairs = _held_pairs(contracts, catalogue, ts, state, w, binary=not isinstance(scorer, ItemKNN))
    pairs = pairs.persist()
    try:
        if isinstance(scorer, Popularity):
            holders, fitted_state = _popularity_state(pairs, clients, by, n_products)
        elif isinstance(scorer, CoOccurrence):
            holders, fitted_state = _cooccurrence_state(pairs, scorer, n_clients, n_products)
        else:
            holders, fitted_state = _knn_state(pairs, scorer, catalogue, w)
    finally:
        pairs.unpersist()
    fitted = _fitted_scorer(scorer, holders=holders, n_clients=n_clients, state=fitted_state)
    return FittedStatistics(
        scorer=fitted,
        products=catalogue,
        n_clients=n_clients,
        holders=holders,
        as_of=ts,
        weighting=w.describe(),
    )


def _with_clients(fitted: FittedStatistics, matrix: ClientProductMatrix, book: Book) -> Scorer:
    """Copy the fitted scorer, storing the rows of ``matrix`` (the Book's clients)."""
    scorer = fitted.scorer.clone()
    scorer.__dict__.update(
        {k: v for k, v in fitted.scorer.__dict__.items() if k.endswith("_") and k != "_"}
    )
    x = matrix.client_product
    x = x.astype(np.float32) if x.dtype != np.float32 else x
    scorer.client_product_ = x
    scorer.n_clients_ = int(x.shape[0])
    if isinstance(scorer, Popularity):
        client_group = np.full(x.shape[0], -1, dtype=np.int64)
        if scorer.by is not None and len(scorer.groups_):
            table = book.client_table
            if scorer.by not in table.columns:
                raise SchemaError(
                    f"clients: column {scorer.by!r} is missing, so the clients of the Book "
                    f"cannot be placed in the groups of Popularity(by={scorer.by!r}). Add the "
                    "column to the clients table.",
                    table="clients",
                    column=scorer.by,
                    rule="missing_column",
                )
            code = scorer.groups_.get_indexer(pd.Index(table[scorer.by].to_numpy(dtype=object)))
            pos = book.client_ids.to_index(matrix.clients.external, missing="ignore")
            client_group = np.where(pos >= 0, code[np.maximum(pos, 0)], -1).astype(np.int64)
        scorer.client_group_ = client_group
    return scorer


def assemble(
    recommender: Recommender,
    book: Book,
    fitted: FittedStatistics,
    *,
    fallback: FittedStatistics | None = None,
) -> Recommender:
    """Build a fitted Recommender from statistics fitted on Spark and a Book of a few clients.

    The scorer's learned state comes from ``fitted`` (the whole data, on Spark); ``book`` holds
    the catalogue and the clients the driver can hold, for instance a sample of clients with
    all their contracts, events and client rows. From ``book`` come what is not a sum over
    clients: the product values (catalogue prices, else the median contract value of the
    book), the policy's catalogue, the scale of the scores (from its clients' scores, unless
    ``recommender.calibrator`` is set) and the order of products that tie on everything else
    (their holders in the book). Its clients are stored in the model; every other client is
    scored by :func:`crosssell.spark.recommend` from its holdings in its bucket
    (``scorer.fit_client``), with the same learned state.

    When ``book`` holds the whole data, the Recommender equals ``recommender.fit(book, as_of)``
    up to the points :func:`fit_statistics` names.

    Parameters
    ----------
    recommender : Recommender
        The parameters (policy, ``k``, levers, calibrator, ``cold_start``, weighting); its
        ``scorer`` must be None or of the fitted scorer's class. Not changed.
    book : Book
        The catalogue (the same product ids, in the same order, as ``fitted.products``) and the
        clients to store.
    fitted : FittedStatistics
        The scorer fitted by :func:`fit_statistics`, with the Recommender's weighting.
    fallback : FittedStatistics, optional
        The cold-start popularity fitted by :func:`fit_statistics`
        (``Popularity(by="segment")`` for ``cold_start="segment"``, else ``Popularity()``).
        Default: fitted on ``book`` alone.

    Returns
    -------
    Recommender
        Fitted at ``fitted.as_of``.

    Raises
    ------
    ValueError
        If the products, the date or the weighting of ``fitted`` and ``book`` disagree, or
        the Recommender asks for another scorer.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell.spark_fit import assemble, fit_statistics
    >>> frames = cs.datasets.synthetic_frames(200, seed=0)
    >>> fitted = fit_statistics(spark.createDataFrame(frames["contracts"]),  # doctest: +SKIP
    ...     as_of="2025-06-30", scorer=cs.scorers.CoOccurrence(), products=frames["products"])
    >>> sample = cs.Book.from_frames(**frames)  # a sample of clients, in practice
    >>> rec = assemble(cs.Recommender(k=2), sample, fitted)  # doctest: +SKIP
    >>> from crosssell import spark as cs_spark
    >>> offers = cs_spark.recommend(rec, contracts_df)  # doctest: +SKIP
    """
    if not isinstance(recommender, Recommender):
        raise TypeError(
            f"assemble expects a crosssell.Recommender. Got {type(recommender).__name__} instead."
        )
    rec = recommender.clone()
    rec._validate_params()
    wanted = type(rec.scorer) if rec.scorer is not None else None
    if wanted is not None and wanted is not type(fitted.scorer):
        raise ValueError(
            f"The Recommender asks for {rec.scorer!r} but the statistics fitted "
            f"{fitted.scorer!r}. Pass Recommender(scorer=None) or fit the same scorer."
        )
    as_of = fitted.as_of
    for name, stats in (("fitted", fitted), ("fallback", fallback)):
        if stats is None:
            continue
        if not book.product_ids.external.equals(stats.products):
            raise ValueError(
                f"The products of '{name}' ({len(stats.products)}) are not the Book's "
                f"({len(book.product_ids)}) in the same order. Pass the Book's catalogue as "
                "'products' to fit_statistics."
            )
        if stats.as_of != as_of:
            raise ValueError(
                f"'{name}' was fitted at {stats.as_of} and 'fitted' at {as_of}: fit both at "
                "one date."
            )
    matrix = book.matrix(as_of, weighting=rec.weighting)
    if matrix.weighting != fitted.weighting:
        raise ValueError(
            f"The statistics were fitted with weighting {fitted.weighting!r} and the "
            f"Recommender weighs holdings with {matrix.weighting!r}: fit with the same one."
        )
    scorer = _with_clients(fitted, matrix, book)
    if fallback is not None:
        cold = _with_clients(fallback, matrix, book)
    else:
        by = Columns.segment if rec.cold_start == "segment" else None
        cold = Popularity(by=by).fit(matrix, book)
    return rec._prepare(book, matrix, scorer, cold)


# ----------------------------------------------------------------- reading the tables
def _missing(table: str, column: str, present: list[str]) -> SchemaError:
    shown = ", ".join(repr(c) for c in present[:12])
    return SchemaError(
        f"{table}: column {column!r} is missing (columns: {shown}). Rename your column to "
        f"{column!r} with withColumnRenamed before calling fit_statistics.",
        table=table,
        column=column,
        rule="missing_column",
    )


def _as_time(column: str) -> Column:
    """Read a date, timestamp or ISO text column as TIMESTAMP_NTZ (null when unreadable)."""
    from pyspark.sql import functions as sf

    return sf.col(column).try_cast("timestamp_ntz")


def _raise_bad_rows(
    df: DataFrame,
    checks: list[tuple[Column, str, str, str, str]],
    table: str,
    *also: Column,
) -> list[Any]:
    """Count the rows breaking each check in one pass; raise on the first one broken.

    Each check is ``(condition, column, rule, what, fix)``. The error names the count and shows
    up to five rows. ``also`` are aggregates computed in the same pass, returned.
    """
    from pyspark.sql import functions as sf

    counts = df.agg(
        *[
            sf.sum(sf.when(bad, 1).otherwise(0)).alias(f"__{i}")
            for i, (bad, *_) in enumerate(checks)
        ],
        *also,
    ).collect()[0]
    for i, (bad, column, rule, what, fix) in enumerate(checks):
        n_bad = int(counts[i] or 0)
        if n_bad == 0:
            continue
        shown = "; ".join(
            " ".join(f"{k}={v!r}" for k, v in row.asDict().items())
            for row in df.where(bad).limit(_SHOWN).collect()
        )
        raise SchemaError(
            f"{table}: {what} in {n_bad:,} rows (showing up to {_SHOWN}): {shown}. {fix}",
            table=table,
            column=column,
            rule=rule,
        )
    return list(counts[len(checks) :])


def _without_duplicates(contracts_df: DataFrame) -> DataFrame:
    """Collapse exact duplicate contract rows, warning with their count as a Book does."""
    from pyspark.sql import functions as sf

    counted = contracts_df.groupBy(*contracts_df.columns).count()
    repeated = counted.agg(sf.sum(sf.col("count") - 1)).collect()[0][0] or 0
    if repeated:
        warnings.warn(
            f"contracts: exact duplicates of an earlier row in {int(repeated):,} rows; each was "
            "collapsed into the first, as a Book does.",
            DataWarning,
            stacklevel=3,
        )
    return counted.drop("count")


def _checked_contracts(contracts_df: DataFrame) -> tuple[DataFrame, list[Any]]:
    """Check every contract row (nothing dropped); return the columns under private names."""
    from pyspark.sql import functions as sf

    present = list(contracts_df.columns)
    for column in (Columns.client, Columns.product, Columns.start):
        if column not in present:
            raise _missing("contracts", column, present)
    end = _as_time(Columns.end) if Columns.end in present else sf.lit(None).cast("timestamp_ntz")
    start = _as_time(Columns.start)
    fix = "Fix or remove these rows."
    checks = [
        (sf.col(Columns.client).isNull(), Columns.client, "missing_value", "no client id", fix),
        (sf.col(Columns.product).isNull(), Columns.product, "missing_value", "no product id", fix),
        (start.isNull(), Columns.start, "bad_date", "no readable 'start_date'", fix),
    ]
    if Columns.end in present:
        checks += [
            (
                sf.col(Columns.end).isNotNull() & end.isNull(),
                Columns.end,
                "bad_date",
                "an 'end_date' that is not a date",
                "Fix the dates (null means open).",
            ),
            (end < start, Columns.end, "end_before_start", "'end_date' is before 'start_date'",
             "Fix the dates."),
        ]  # fmt: skip
    (seen,) = _raise_bad_rows(
        contracts_df, checks, "contracts", sf.collect_set(Columns.product).alias("__products")
    )
    value = sf.col(Columns.value) if Columns.value in present else sf.lit(None)
    quantity = sf.col(Columns.quantity) if Columns.quantity in present else sf.lit(None)
    checked = contracts_df.select(
        sf.col(Columns.client).alias(_C),
        sf.col(Columns.product).alias(Columns.product),
        start.alias(_START),
        end.alias(_END),
        value.cast("double").alias(Columns.value),
        quantity.cast("double").alias(Columns.quantity),
    )
    return checked, list(seen)


def _checked_clients(clients_df: DataFrame | None, by: str | None) -> DataFrame | None:
    """Return the clients table's ids and group column (checked with the client count)."""
    from pyspark.sql import functions as sf

    if clients_df is None:
        if by is not None:
            raise ValueError(
                f"Popularity(by={by!r}) reads the clients table: pass clients_df with a "
                f"{by!r} column."
            )
        return None
    present = list(clients_df.columns)
    if Columns.client not in present:
        raise _missing("clients", Columns.client, present)
    if by is not None and by not in present:
        raise SchemaError(
            f"clients: column {by!r} is missing, so Popularity(by={by!r}) cannot group clients "
            f"(columns: {present[:10]}). Add the column to the clients table or choose another "
            "'by'.",
            table="clients",
            column=by,
            rule="missing_column",
        )
    group = sf.col(by) if by is not None else sf.lit(None)
    return clients_df.select(sf.col(Columns.client).alias(_C), group.alias("__group"))


def _catalogue(contracts: DataFrame, seen: list[Any], products: Any) -> pd.Index:
    """Return the product ids in column order; every contract's product must be among them."""
    from pyspark.sql import functions as sf

    if products is None:
        ordered: pd.Index = pd.Index(sorted(seen), name=Columns.product)
        return ordered
    if isinstance(products, pd.DataFrame):
        if Columns.product not in products.columns:
            raise _missing("products", Columns.product, list(products.columns))
        ids = pd.Index(products[Columns.product])
    else:
        ids = pd.Index(list(products) if not isinstance(products, pd.Index) else products)
    if ids.has_duplicates:
        repeated = ids[ids.duplicated()].unique().tolist()[:_SHOWN]
        raise SchemaError(
            f"products: {int(ids.duplicated().sum())} product ids appear more than once "
            f"(showing up to {_SHOWN}): {repeated}. Keep one row per product.",
            table="products",
            column=Columns.product,
            rule="duplicate",
        )
    unknown = [p for p, at in zip(seen, ids.get_indexer(pd.Index(seen)), strict=True) if at < 0]
    if unknown:
        n_rows = contracts.where(sf.col(Columns.product).isin(unknown)).count()
        shown = ", ".join(repr(p) for p in sorted(unknown, key=str)[:_SHOWN])
        raise UnknownIdError(
            f"contracts: {n_rows:,} rows name {len(unknown)} product id(s) that are not in the "
            f"catalogue (showing up to {_SHOWN}): {shown}. Add them to 'products' or remove "
            "the rows.",
            ids=unknown,
        )
    catalogue: pd.Index = pd.Index(ids.to_numpy(dtype=object), name=Columns.product)
    return catalogue


def _count_clients(
    contracts: DataFrame, clients: DataFrame | None, events_df: DataFrame | None
) -> int:
    """Count the clients a Book would know (clients table, contracts, events without a table).

    The same pass checks the clients table: no row without an id, no client twice.
    """
    from pyspark.sql import functions as sf

    ids = contracts.select(_C, sf.lit(0).alias("__rows"))
    if clients is not None:
        ids = ids.unionByName(clients.select(_C, sf.lit(1).alias("__rows")))
    elif events_df is not None:
        if Columns.client not in events_df.columns:
            raise _missing("events", Columns.client, list(events_df.columns))
        known = events_df.where(sf.col(Columns.client).isNotNull())
        ids = ids.unionByName(
            known.select(sf.col(Columns.client).alias(_C), sf.lit(0).alias("__rows"))
        )
    per_client = ids.groupBy(_C).agg(sf.sum("__rows").alias("rows_in_clients"))
    per_client = per_client.select(sf.col(_C).alias(Columns.client), "rows_in_clients")
    fix = "Fix or remove these rows."
    (n_clients,) = _raise_bad_rows(
        per_client,
        [
            (sf.col(Columns.client).isNull(), Columns.client, "missing_value", "no client id", fix),
            (sf.col("rows_in_clients") > 1, Columns.client, "duplicate",
             "a client id appears more than once", "Keep one row per client."),
        ],
        "clients",
        sf.count(sf.lit(1)),
    )  # fmt: skip
    return int(n_clients)


# ----------------------------------------------------------------- weights of held pairs
def _spark_weight_check(w: Weighting) -> None:
    parts = w.factors if isinstance(w, Combined) else (w,)
    known = (Binary, Value, LogValue, Quantity, Tenure, Recency)
    odd = [type(p).__name__ for p in parts if not isinstance(p, known)]
    if odd:
        raise InvalidParameterError(
            f"The 'weighting' parameter of fit_statistics must be built from crosssell's "
            f"weightings (binary, value, log_value, quantity, tenure, recency). Got "
            f"{', '.join(odd)}, whose weigh() runs in Python on one machine.",
            owner="fit_statistics",
            parameter="weighting",
        )


def _factor(w: Weighting, as_of: Column) -> Column:
    """Weigh by one factor from the per-pair aggregates, as crosssell.weighting does."""
    from pyspark.sql import functions as sf

    if isinstance(w, Binary):
        return sf.lit(1.0)
    if isinstance(w, Value):
        return sf.col("__value")
    if isinstance(w, LogValue):
        return sf.log1p(sf.col("__value"))
    if isinstance(w, Quantity):
        return sf.col("__quantity")
    if isinstance(w, Tenure):
        age = sf.timestamp_diff("MICROSECOND", sf.col("__first"), as_of)
        return sf.lit(1.0) + age.cast("double") / sf.lit(_YEAR_US)
    assert isinstance(w, Recency)
    age = sf.timestamp_diff("MICROSECOND", sf.col("__touched"), as_of).cast("double")
    half_life = pd.Timedelta(w.half_life).value / 1000.0
    return sf.pow(sf.lit(2.0), -age / sf.lit(half_life))


def _held_pairs(
    contracts: DataFrame,
    catalogue: pd.Index,
    as_of: pd.Timestamp,
    state: State,
    w: Weighting,
    *,
    binary: bool,
) -> DataFrame:
    """One row per (client, product index) held at ``as_of``, with its float32 weight."""
    from pyspark.sql import functions as sf

    spark = contracts.sparkSession
    at = sf.lit(as_of.strftime("%Y-%m-%d %H:%M:%S.%f")).cast("timestamp_ntz")
    held = sf.col(_START) <= at
    if state == "active":
        held &= sf.col(_END).isNull() | (sf.col(_END) > at)
    index = spark.createDataFrame(
        [(p, i) for i, p in enumerate(catalogue.tolist())],
        schema=contracts.select(Columns.product, sf.lit(0).alias(_P)).schema,
    )
    rows = contracts.where(held).join(sf.broadcast(index), on=Columns.product, how="inner")
    if binary or isinstance(w, Binary):
        return (
            rows.select(_C, _P)
            .distinct()
            .select(_C, _P, sf.lit(1.0).cast("float").alias(_W), sf.lit(False).alias(_BAD))
        )
    value = sf.col(Columns.value)
    quantity = sf.col(Columns.quantity)
    # the latest start or end at or before as_of (Recency's age runs from it)
    touched = sf.when(sf.col(_END).isNotNull() & (sf.col(_END) <= at), sf.col(_END)).otherwise(
        sf.col(_START)
    )
    pairs = rows.groupBy(_C, _P).agg(
        sf.sum(sf.when(value.isNull() | sf.isnan(value), 0.0).otherwise(value)).alias("__value"),
        sf.sum(sf.when(quantity.isNull() | sf.isnan(quantity), 0.0).otherwise(quantity)).alias(
            "__quantity"
        ),
        sf.min(_START).alias("__first"),
        sf.max(touched).alias("__touched"),
    )
    parts = w.factors if isinstance(w, Combined) else (w,)
    raw = _factor(parts[0], at)
    for part in parts[1:]:
        raw = raw * _factor(part, at)
    pairs = pairs.withColumn("__raw", raw)
    # negative and infinite weights are counted with the first aggregation (see _check_weights)
    bad = (sf.col("__raw") < 0) | (sf.col("__raw") == float("inf"))
    # zeros and NaN (null) are raised to MIN_WEIGHT, as crosssell.weighting.finalize_weights does
    floor = sf.lit(MIN_WEIGHT)
    weight = (
        sf.when(sf.col("__raw").isNull() | sf.isnan("__raw"), floor)
        .otherwise(sf.greatest(sf.col("__raw"), floor))
        .cast("float")
    )
    return pairs.select(_C, _P, weight.alias(_W), sf.col("__raw"), bad.alias(_BAD))


def _check_weights(pairs: DataFrame, n_bad: int, w: Weighting) -> None:
    """Raise when the weighting gave negative or infinite weights, as the Book's matrix does."""
    from pyspark.sql import functions as sf

    if n_bad == 0:
        return
    shown = [r[0] for r in pairs.where(sf.col(_BAD)).select("__raw").limit(_SHOWN).collect()]
    raise ValueError(
        f"Weighting {w.describe()!r} returned {n_bad} negative or infinite weights (showing "
        f"up to {_SHOWN}): {shown}. A weighting must return finite weights >= 0."
    )


# ----------------------------------------------------------------- the three scorers
def _popularity_state(
    pairs: DataFrame, clients: DataFrame | None, by: str | None, n_products: int
) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
    from pyspark.sql import functions as sf

    if by is None:
        holders = _per_product(pairs.groupBy(_P).count().collect(), n_products)
        return holders.astype(np.int64), {
            "client_group_": np.zeros(0, dtype=np.int64),
            "group_shares_": np.zeros((0, n_products), dtype=np.float32),
            "groups_": pd.Index([]),
        }
    assert clients is not None
    grouped = clients.where(sf.col("__group").isNotNull())
    sizes = {r[0]: int(r[1]) for r in grouped.groupBy("__group").count().collect()}
    groups = pd.Index(sorted(sizes))
    code = {g: i for i, g in enumerate(groups.tolist())}
    # holders per group and product in one pass; clients of no group count only in the total
    counted = pairs.join(grouped, on=_C, how="left").groupBy("__group", _P).count().collect()
    per_group = np.zeros((len(groups) + 1, n_products), dtype=np.float64)
    for row in counted:
        per_group[code.get(row[0], len(groups)) if row[0] is not None else len(groups), row[1]] = (
            float(row[2])
        )
    size = np.array([sizes[g] for g in groups.tolist()], dtype=np.float64)
    return per_group.sum(axis=0).astype(np.int64), {
        "client_group_": np.zeros(0, dtype=np.int64),
        "group_shares_": shares_from_counts(per_group[: len(groups)], size),
        "groups_": groups,
    }


def _per_product(rows: list[Any], n_products: int, at: int = 1) -> npt.NDArray[np.float64]:
    """Spread collected ``(product index, ...)`` rows into a dense array (0 where absent)."""
    out = np.zeros(n_products, dtype=np.float64)
    for row in rows:
        out[int(row[0])] = float(row[at] or 0.0)
    return out


def _self_join(pairs: DataFrame, value: Column | None) -> DataFrame:
    """Pairs of products held by one client (a product with itself too), summed per pair."""
    from pyspark.sql import functions as sf

    left = pairs.select(_C, sf.col(_P).alias("__a"), sf.col(_W).alias("__wa"))
    right = pairs.select(_C, sf.col(_P).alias("__b"), sf.col(_W).alias("__wb"))
    joined = left.join(right, on=_C)
    if value is None:
        return joined.groupBy("__a", "__b").count()
    return joined.groupBy("__a", "__b").agg(sf.sum(value).alias("__dot"))


def _cooccurrence_state(
    pairs: DataFrame, scorer: CoOccurrence, n_clients: int, n_products: int
) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
    rows = _self_join(pairs, None).collect()
    a = np.array([r[0] for r in rows], dtype=np.int64)
    c = np.array([r[1] for r in rows], dtype=np.int64)
    both = np.array([r[2] for r in rows], dtype=np.float64)
    # a product paired with itself counts its holders
    support = np.zeros(n_products, dtype=np.float64)
    mine = a == c
    support[a[mine]] = both[mine]
    rules, support_ = rules_from_counts(
        a,
        c,
        both,
        support,
        n_clients=n_clients,
        n_products=n_products,
        measure=scorer.measure,
        min_support=int(scorer.min_support),
    )
    return support_, {"rules_": rules, "support_": support_}


def _knn_state(
    pairs: DataFrame, scorer: ItemKNN, catalogue: pd.Index, w: Weighting
) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
    """Weigh the holdings by implicit's metric, take their dot products, keep the nearest.

    Two jobs: one aggregation per product (holders, the weighting's check, and the column
    lengths or sums the metric needs), then the dot products of the self-join.
    """
    from pyspark.sql import functions as sf

    spark = pairs.sparkSession
    n_products = len(catalogue)
    x = sf.col(_W)
    if scorer.metric != "cosine":
        # per client: log(N) - log1p(products held), N the number of products (implicit's idf);
        # computed by numpy on the driver for every possible count, so the values are its own
        counts = np.arange(n_products + 1)
        idf = np.log(float(n_products)) - np.log1p(counts)
        table = spark.createDataFrame(
            [(int(k), float(v)) for k, v in zip(counts, idf, strict=True)],
            schema="__held int, __idf double",
        )
        held = pairs.groupBy(_C).agg(sf.count(sf.lit(1)).cast("int").alias("__held"))
        pairs = pairs.join(held, on=_C).join(sf.broadcast(table), on="__held")
    if scorer.metric == "cosine":
        data = x.cast("double")
        # implicit squares the float32 holdings in float32
        summed = (x * x).cast("double")
    elif scorer.metric == "tfidf":
        data = sf.sqrt(x.cast("double")).cast("float").cast("double") * sf.col("__idf")
        summed = data * data
    else:
        summed = x.cast("double")
    per_product = pairs.groupBy(_P).agg(
        sf.count(sf.lit(1)), sf.sum(summed), sf.sum(sf.col(_BAD).cast("int"))
    )
    rows = per_product.collect()
    holders = _per_product(rows, n_products, 1).astype(np.int64)
    _check_weights(pairs, int(_per_product(rows, n_products, 3).sum()), w)
    sums = _per_product(rows, n_products, 2)
    if scorer.metric == "bm25":
        # implicit's length norm of each product, from its holdings summed in float32
        row_sums = sums.astype(np.float32)
        length_norm = (1.0 - _BM25_B) + _BM25_B * row_sums / row_sums.mean()
        norms = spark.createDataFrame(
            [(i, float(v)) for i, v in enumerate(length_norm.tolist())],
            schema=f"{_P} int, __norm float",
        )
        pairs = pairs.join(sf.broadcast(norms), on=_P)
        top = x * sf.lit(_BM25_K1 + 1.0).cast("float")
        bottom = sf.lit(_BM25_K1).cast("float") * sf.col("__norm") + x
        weighted = pairs.select(
            _C, _P, ((top / bottom).cast("float").cast("double") * sf.col("__idf")).alias(_W)
        )
    else:
        flat = np.flatnonzero((sums == 0) & (holders > 0))
        if flat.size:
            shown = ", ".join(repr(p) for p in catalogue[flat[:_SHOWN]].tolist())
            raise InvalidParameterError(
                f"ItemKNN(metric={scorer.metric!r}) weighs {flat.size} held product(s) to "
                f"nothing (showing up to {_SHOWN}): {shown}. With TF-IDF, a client holding "
                f"all but one of the {n_products} products weighs 0, and these products are held "
                "by such clients alone; the similarity is undefined. Use metric='cosine' or "
                "'bm25'.",
                owner="ItemKNN",
                parameter="metric",
            )
        # each product's column scaled to unit length, as implicit's normalize does
        lengths = spark.createDataFrame(
            [(i, float(v)) for i, v in enumerate(np.sqrt(sums).tolist())],
            schema=f"{_P} int, __length double",
        )
        weighted = pairs.join(sf.broadcast(lengths), on=_P).select(
            _C, _P, (data / sf.col("__length")).alias(_W)
        )
    dots = _self_join(weighted, sf.col("__wa") * sf.col("__wb")).collect()
    similarity = top_neighbours(
        [r[0] for r in dots],
        [r[1] for r in dots],
        [r[2] for r in dots],
        n_products=n_products,
        neighbours=int(scorer.neighbours),
    )
    return holders, {"similarity_": similarity}
