"""Ranking metrics of offers against what clients actually added, with bootstrap intervals.

Every metric is computed from two tidy frames, without a Python loop over clients:

- *recommendations*: one row per offer, with ``client_id``, ``product_id`` and ``rank``
  (1 = first offer of that client; ranks are distinct within a client);
- *truth*: one row per (client, product) pair the client added (see
  :func:`crosssell.evaluation.additions`), with an optional ``value``.

Per-client metrics (precision, recall, MAP, NDCG, hit rate) are averaged over the clients
**with at least one addition** in ``truth``: clients who added nothing have no relevant item and
are left out, and a client with additions but no offer scores zero. Value captured and coverage
are totals, not averages. Confidence intervals come from a percentile bootstrap over those
clients.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._params import Interval, validate_params
from crosssell.columns import Columns
from crosssell.evaluation import _common

__all__ = [
    "METRICS",
    "Metric",
    "coverage",
    "evaluate",
    "hit_rate_at_k",
    "lift",
    "map_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "value_captured_at_k",
]

Metric = Literal[
    "precision", "recall", "map", "ndcg", "hit_rate", "value_captured", "value_share", "coverage"
]

#: Metric names, in the order :func:`evaluate` reports them.
METRICS: Final[tuple[str, ...]] = (
    "precision",
    "recall",
    "map",
    "ndcg",
    "hit_rate",
    "value_captured",
    "value_share",
    "coverage",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Hits:
    """Offers matched with truth, one row per client with at least one addition."""

    #: (n_clients, k_max) True where the offer at that rank was added.
    hit: npt.NDArray[np.bool_]
    #: (n_clients, k_max) value of the added offer at that rank (0 elsewhere).
    hit_value: npt.NDArray[np.float64]
    #: (n_clients,) number of distinct added pairs.
    n_truth: npt.NDArray[np.int64]
    #: (n_clients,) total value added (unknown values count as 0).
    truth_value: npt.NDArray[np.float64]


def _require(frame: pd.DataFrame, columns: Sequence[str], *, table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{table}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)}; it has {list(frame.columns)!r}. "
            f"Pass a frame with {', '.join(repr(c) for c in columns)}."
        )


def _ranks(recommendations: pd.DataFrame) -> npt.NDArray[np.int64]:
    rank = recommendations[Columns.rank]
    values = pd.to_numeric(rank, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values < 1) | (values != np.floor(values))
    if bad.any():
        rows = np.flatnonzero(bad)
        clients = recommendations[Columns.client].iloc[rows[:5]].tolist()
        ranks = rank.iloc[rows[:5]].tolist()
        shown = "; ".join(
            f"row {int(r)} {Columns.client}={c!r} {Columns.rank}={v!r}"
            for r, c, v in zip(rows[:5], clients, ranks, strict=True)
        )
        n = int(rows.shape[0])
        raise ValueError(
            f"recommendations: {Columns.rank!r} must be an integer >= 1 in {n} "
            f"row{'s' if n != 1 else ''} (showing {min(n, 5)}): {shown}. "
            "Number each client's offers 1, 2, 3, ..."
        )
    return values.astype(np.int64)


def _match(recommendations: pd.DataFrame, truth: pd.DataFrame, k_max: int) -> _Hits:
    """Match offers ranked up to ``k_max`` with the additions in ``truth``."""
    _require(
        recommendations, (Columns.client, Columns.product, Columns.rank), table="recommendations"
    )
    _require(truth, (Columns.client, Columns.product), table="truth")
    pairs = truth.drop_duplicates([Columns.client, Columns.product])
    client_code, clients = pd.factorize(pairs[Columns.client])
    product_code, products = pd.factorize(pairs[Columns.product])
    n = int(clients.shape[0])
    n_products = np.int64(max(int(products.shape[0]), 1))
    t_client = np.asarray(client_code, dtype=np.int64)
    t_key = t_client * n_products + np.asarray(product_code, dtype=np.int64)
    if Columns.value in pairs.columns:
        t_value = np.nan_to_num(pd.to_numeric(pairs[Columns.value]).to_numpy(np.float64), nan=0.0)
    else:
        t_value = np.zeros(t_key.shape[0])
    order = np.argsort(t_key, kind="stable")
    t_key, t_value = t_key[order], t_value[order]

    rank = _ranks(recommendations)
    top = rank <= k_max
    r_client = np.asarray(
        clients.get_indexer(pd.Index(recommendations[Columns.client][top])), np.int64
    )
    r_product = np.asarray(
        products.get_indexer(pd.Index(recommendations[Columns.product][top])), np.int64
    )
    r_rank = rank[top]
    known = (r_client >= 0) & (r_product >= 0)
    r_client, r_product, r_rank = r_client[known], r_product[known], r_rank[known]
    r_key = r_client * n_products + r_product
    pos = np.minimum(np.searchsorted(t_key, r_key), max(t_key.shape[0] - 1, 0))
    is_hit = t_key[pos] == r_key if t_key.shape[0] else np.zeros(r_key.shape[0], dtype=bool)

    hit = np.zeros((n, k_max), dtype=bool)
    hit_value = np.zeros((n, k_max), dtype=np.float64)
    hit[r_client[is_hit], r_rank[is_hit] - 1] = True
    hit_value[r_client[is_hit], r_rank[is_hit] - 1] = t_value[pos[is_hit]]
    return _Hits(
        hit=hit,
        hit_value=hit_value,
        n_truth=np.bincount(t_client, minlength=n).astype(np.int64),
        truth_value=np.asarray(
            np.bincount(t_client[order], weights=t_value, minlength=n), dtype=np.float64
        ),
    )


def _per_client(hits: _Hits, k: int) -> dict[str, npt.NDArray[np.float64]]:
    """Per-client precision, recall, AP, NDCG, hit and captured value at ``k``."""
    top = hits.hit[:, :k].astype(np.float64)
    n_hits = top.sum(axis=1)
    n_truth = hits.n_truth.astype(np.float64)
    positions = np.arange(1, k + 1, dtype=np.float64)
    precision_at_i = np.cumsum(top, axis=1) / positions
    n_relevant = np.minimum(n_truth, k)
    discount = 1.0 / np.log2(positions + 1.0)
    ideal = np.concatenate(([0.0], np.cumsum(discount)))[n_relevant.astype(np.int64)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "precision": n_hits / k,
            "recall": n_hits / n_truth,
            "map": (precision_at_i * top).sum(axis=1) / n_relevant,
            "ndcg": (top @ discount) / ideal,
            "hit_rate": (n_hits > 0).astype(np.float64),
            "value_captured": hits.hit_value[:, :k].sum(axis=1),
        }


def per_client_metric(
    recommendations: pd.DataFrame, truth: pd.DataFrame, metric: str, k: int
) -> npt.NDArray[np.float64]:
    """Return one client's ``metric`` at ``k`` per client with an addition in ``truth``.

    Clients come in the order they first appear in ``truth``; a client without any offer
    scores 0, as in :func:`evaluate`.

    Examples
    --------
    >>> recs = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["x", "z"], "rank": [1, 1]})
    >>> truth = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["x", "y"]})
    >>> per_client_metric(recs, truth, "ndcg", 1).tolist()
    [1.0, 0.0]
    """
    hits = _match(recommendations, truth, k)
    return np.nan_to_num(_per_client(hits, k)[metric], nan=0.0)


def _coverage_counts(recommendations: pd.DataFrame, ks: Sequence[int]) -> list[int]:
    rank = _ranks(recommendations)
    product = recommendations[Columns.product]
    return [int(product[rank <= k].nunique()) for k in ks]


def evaluate(
    recommendations: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    k: int | Iterable[int] = (1, 3, 5, 10),
    n_products: int | None = None,
    n_boot: int = 200,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Compute every metric at every ``k``, with bootstrap confidence intervals.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank`` (integers from 1, distinct within a
        client). Row order does not matter.
    truth : pandas.DataFrame
        Added pairs with ``client_id``, ``product_id`` and optionally ``value``. Its clients are
        the population: restrict it to the clients you evaluate.
    k : int or sequence of int, default (1, 3, 5, 10)
        Cut-offs of the offer lists.
    n_products : int, optional
        Size of the catalogue, for ``coverage``; without it coverage is not reported.
    n_boot : int, default 200
        Bootstrap resamples of the clients; 0 skips the intervals (NaN).
    confidence : float, default 0.95
        Coverage of the percentile intervals.
    random_state : int, numpy Generator or None, default 0
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per (metric, k) with columns ``metric``, ``k``, ``value``, ``ci_low``,
        ``ci_high`` and ``n_clients`` (clients with at least one addition). Metrics:
        ``precision``, ``recall``, ``map``, ``ndcg``, ``hit_rate`` (averages over those clients),
        ``value_captured`` (total value of the added pairs that were offered), ``value_share``
        (that over all value added) and ``coverage`` (distinct products offered over the
        catalogue; no interval). Without any client with an addition the averages are NaN.

    Raises
    ------
    ValueError
        If a column is missing, a rank is not an integer >= 1, or a parameter is out of range.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A", "A", "B", "B"], "product_id": ["x", "y", "x", "z"],
    ...                      "rank": [1, 2, 1, 2]})
    >>> truth = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["y", "q"],
    ...                       "value": [10.0, 5.0]})
    >>> table = evaluate(recs, truth, k=2, n_products=4, n_boot=0)
    >>> table.set_index("metric")["value"].round(4).to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'precision': 0.25, 'recall': 0.5, 'map': 0.25, 'ndcg': 0.3155, 'hit_rate': 0.5,
     'value_captured': 10.0, 'value_share': 0.6667, 'coverage': 0.75}
    """
    owner = "evaluate"
    ks = _common.check_ks(k, owner=owner)
    validate_params(
        owner,
        {"n_boot": n_boot, "confidence": confidence, "n_products": n_products},
        {
            "n_boot": [Interval(numbers.Integral, 0, None, closed="left")],
            "confidence": [Interval(numbers.Real, 0, 1, closed="neither")],
            "n_products": [Interval(numbers.Integral, 1, None, closed="left"), None],
        },
    )
    hits = _match(recommendations, truth, max(ks))
    n = int(hits.n_truth.shape[0])
    averaged = ("precision", "recall", "map", "ndcg", "hit_rate")

    # one column per (metric, k), then the total added value: a single bootstrap pass serves all
    blocks: list[npt.NDArray[np.float64]] = []
    for kk in ks:
        per = _per_client(hits, kk)
        blocks.extend(per[m] for m in (*averaged, "value_captured"))
    blocks.append(hits.truth_value)
    columns = np.column_stack(blocks) if n else np.zeros((0, len(blocks)))
    sums = columns.sum(axis=0)
    width = len(averaged) + 1

    if n and n_boot:
        rng = np.random.default_rng(random_state)
        boot = _common.boot_sums(columns, int(n_boot), rng)
    else:
        boot = np.full((0, columns.shape[1]), np.nan)
    tail = (1.0 - confidence) / 2.0

    def interval(samples: npt.NDArray[np.float64]) -> tuple[float, float]:
        if samples.shape[0] == 0:
            return float("nan"), float("nan")
        finite = samples[np.isfinite(samples)]
        if finite.shape[0] == 0:
            return float("nan"), float("nan")
        low, high = np.quantile(finite, [tail, 1.0 - tail])
        return float(low), float(high)

    records: list[tuple[str, int, float, float, float, int]] = []
    coverage_counts = (
        _coverage_counts(recommendations, ks) if n_products is not None else [0] * len(ks)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        total_boot = boot[:, -1]
        for i, kk in enumerate(ks):
            base = i * width
            for j, name in enumerate(averaged):
                value = sums[base + j] / n if n else float("nan")
                records.append((name, kk, float(value), *interval(boot[:, base + j] / n), n))
            captured = sums[base + width - 1]
            records.append(
                ("value_captured", kk, float(captured), *interval(boot[:, base + width - 1]), n)
            )
            share = captured / sums[-1] if sums[-1] > 0 else float("nan")
            share_boot = boot[:, base + width - 1] / total_boot
            records.append(("value_share", kk, float(share), *interval(share_boot), n))
            if n_products is not None:
                cov = coverage_counts[i] / int(n_products)
                records.append(("coverage", kk, float(cov), float("nan"), float("nan"), n))
    frame = pd.DataFrame(
        records,
        columns=[
            Columns.metric,
            Columns.k,
            Columns.value,
            Columns.ci_low,
            Columns.ci_high,
            Columns.n_clients,
        ],
    )
    order = {name: i for i, name in enumerate(METRICS)}
    frame["_order"] = frame[Columns.metric].map(order)
    frame = frame.sort_values(["_order", Columns.k], kind="stable").drop(columns="_order")
    return frame.reset_index(drop=True)


def _single(
    recommendations: pd.DataFrame, truth: pd.DataFrame, k: int, metric: str, *, owner: str
) -> float:
    kk = _common.check_k(k, owner=owner)
    hits = _match(recommendations, truth, kk)
    if hits.n_truth.shape[0] == 0:
        return float("nan")
    per = _per_client(hits, kk)
    return float(per[metric].mean())


def precision_at_k(recommendations: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    """Share of the first ``k`` offers that were added, averaged over clients with an addition.

    The denominator is ``k`` even when fewer offers were made: offering nothing is not free.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank``.
    truth : pandas.DataFrame
        Added pairs with ``client_id`` and ``product_id``; its clients are the population.
    k : int
        Length of the offer list.

    Returns
    -------
    float
        NaN when no client in ``truth`` added anything.

    Raises
    ------
    ValueError
        If a column is missing, a rank is invalid or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A", "A"], "product_id": ["x", "y"], "rank": [1, 2]})
    >>> truth = pd.DataFrame({"client_id": ["A"], "product_id": ["y"]})
    >>> precision_at_k(recs, truth, 2)
    0.5
    """
    return _single(recommendations, truth, k, "precision", owner="precision_at_k")


def recall_at_k(recommendations: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    """Share of a client's additions found in its first ``k`` offers, averaged over clients.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank``.
    truth : pandas.DataFrame
        Added pairs with ``client_id`` and ``product_id``; its clients are the population.
    k : int
        Length of the offer list.

    Returns
    -------
    float
        NaN when no client in ``truth`` added anything.

    Raises
    ------
    ValueError
        If a column is missing, a rank is invalid or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A"], "product_id": ["x"], "rank": [1]})
    >>> truth = pd.DataFrame({"client_id": ["A", "A"], "product_id": ["x", "y"]})
    >>> recall_at_k(recs, truth, 1)
    0.5
    """
    return _single(recommendations, truth, k, "recall", owner="recall_at_k")


def map_at_k(recommendations: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    """Mean average precision at ``k``.

    A client's average precision is the sum of precision@i over the ranks ``i <= k`` holding an
    added product, divided by ``min(k, number of additions)``.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank``.
    truth : pandas.DataFrame
        Added pairs with ``client_id`` and ``product_id``; its clients are the population.
    k : int
        Length of the offer list.

    Returns
    -------
    float
        NaN when no client in ``truth`` added anything.

    Raises
    ------
    ValueError
        If a column is missing, a rank is invalid or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A", "A"], "product_id": ["x", "y"], "rank": [1, 2]})
    >>> truth = pd.DataFrame({"client_id": ["A"], "product_id": ["y"]})
    >>> map_at_k(recs, truth, 2)  # the hit at rank 2 has precision 1/2
    0.5
    """
    return _single(recommendations, truth, k, "map", owner="map_at_k")


def ndcg_at_k(recommendations: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary gains.

    ``DCG = sum(1 / log2(rank + 1))`` over the added offers in the first ``k``; the ideal DCG puts
    ``min(k, number of additions)`` hits at the top.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank``.
    truth : pandas.DataFrame
        Added pairs with ``client_id`` and ``product_id``; its clients are the population.
    k : int
        Length of the offer list.

    Returns
    -------
    float
        In [0, 1]; NaN when no client in ``truth`` added anything.

    Raises
    ------
    ValueError
        If a column is missing, a rank is invalid or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A", "A"], "product_id": ["x", "y"], "rank": [1, 2]})
    >>> truth = pd.DataFrame({"client_id": ["A"], "product_id": ["y"]})
    >>> round(ndcg_at_k(recs, truth, 2), 4)  # 1/log2(3) over 1/log2(2)
    0.6309
    """
    return _single(recommendations, truth, k, "ndcg", owner="ndcg_at_k")


def hit_rate_at_k(recommendations: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    """Share of clients with an addition for whom at least one of the first ``k`` offers was added.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank``.
    truth : pandas.DataFrame
        Added pairs with ``client_id`` and ``product_id``; its clients are the population.
    k : int
        Length of the offer list.

    Returns
    -------
    float
        NaN when no client in ``truth`` added anything.

    Raises
    ------
    ValueError
        If a column is missing, a rank is invalid or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["x", "x"], "rank": [1, 1]})
    >>> truth = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["x", "y"]})
    >>> hit_rate_at_k(recs, truth, 1)
    0.5
    """
    return _single(recommendations, truth, k, "hit_rate", owner="hit_rate_at_k")


def value_captured_at_k(
    recommendations: pd.DataFrame, truth: pd.DataFrame, k: int, *, share: bool = False
) -> float:
    """Total value of the added pairs that were among the first ``k`` offers.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``client_id``, ``product_id`` and ``rank``.
    truth : pandas.DataFrame
        Added pairs with ``client_id``, ``product_id`` and ``value`` (NaN counts as 0).
    k : int
        Length of the offer list.
    share : bool, default False
        Return the captured value as a share of all value added instead (NaN when nothing of
        value was added).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a column is missing, a rank is invalid or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A"], "product_id": ["x"], "rank": [1]})
    >>> truth = pd.DataFrame({"client_id": ["A", "A"], "product_id": ["x", "y"],
    ...                       "value": [30.0, 10.0]})
    >>> value_captured_at_k(recs, truth, 1), value_captured_at_k(recs, truth, 1, share=True)
    (30.0, 0.75)
    """
    kk = _common.check_k(k, owner="value_captured_at_k")
    hits = _match(recommendations, truth, kk)
    captured = float(hits.hit_value[:, :kk].sum())
    if not share:
        return captured
    total = float(hits.truth_value.sum())
    return captured / total if total > 0 else float("nan")


def coverage(recommendations: pd.DataFrame, n_products: int, k: int | None = None) -> float:
    """Share of the catalogue offered to at least one client.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Offers with ``product_id`` (and ``rank`` when ``k`` is given).
    n_products : int
        Size of the catalogue.
    k : int, optional
        Count only offers ranked ``<= k``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``n_products < 1`` or ``k < 1``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["x", "x"], "rank": [1, 1]})
    >>> coverage(recs, n_products=4)
    0.25
    """
    validate_params(
        "coverage",
        {"n_products": n_products},
        {"n_products": [Interval(numbers.Integral, 1, None, closed="left")]},
    )
    _require(recommendations, (Columns.product,), table="recommendations")
    if k is None:
        return int(recommendations[Columns.product].nunique()) / int(n_products)
    kk = _common.check_k(k, owner="coverage")
    return _coverage_counts(recommendations, (kk,))[0] / int(n_products)


def lift(value: float, baseline: float) -> float:
    """Ratio of a model's metric to the baseline's (1.0 = no better).

    Parameters
    ----------
    value : float
        The model's metric.
    baseline : float
        The baseline's metric.

    Returns
    -------
    float
        ``value / baseline``; ``inf`` when only the baseline is 0, NaN when both are 0 or either
        is NaN.

    Examples
    --------
    >>> lift(0.3, 0.2)
    1.5
    >>> lift(0.0, 0.0)
    nan
    """
    if np.isnan(value) or np.isnan(baseline) or (baseline == 0 and value == 0):
        return float("nan")
    if baseline == 0:
        return float("inf")
    return float(value) / float(baseline)
