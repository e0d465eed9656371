"""Paired comparison of models backtested on the same folds: whether a difference is real.

Two models scored on the same clients differ by much less than their separate confidence
intervals suggest, because most of the spread comes from the clients, not the models. The
honest test pairs them: for every client with an addition the difference of the two models'
metric is computed, and the bootstrap resamples those clients (within each fold), so the
interval of the difference carries only the models' own disagreement.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._params import Interval, Options, validate_params
from crosssell.columns import Columns
from crosssell.evaluation._common import boot_sums
from crosssell.evaluation.backtest import BacktestResult
from crosssell.evaluation.metrics import per_client_metric

__all__ = ["compare"]

_ALL: Final = "all"
_MAIN: Final = "crosssell"
# metrics averaged over clients with an addition; value_captured is a total per fold
_COMPARABLE: Final = ("precision", "recall", "map", "ndcg", "hit_rate", "value_captured")
_COLUMNS: Final = (
    Columns.model,
    Columns.fold,
    Columns.metric,
    Columns.k,
    Columns.value,
    "baseline_value",
    "difference",
    Columns.ci_low,
    Columns.ci_high,
    Columns.n_clients,
    "significant",
)


def _models(
    results: BacktestResult | Mapping[str, BacktestResult],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Offers per model, the folds and the truth shared by every result."""
    if isinstance(results, BacktestResult):
        named: dict[str, BacktestResult] = {_MAIN: results}
    elif (
        isinstance(results, Mapping)
        and results
        and all(isinstance(r, BacktestResult) for r in results.values())
    ):
        named = {str(k): v for k, v in results.items()}
    else:
        raise ValueError(
            "The 'results' parameter of compare must be a BacktestResult or a non-empty mapping "
            f"of names to BacktestResult. Got {type(results).__name__} instead."
        )
    first_name, first = next(iter(named.items()))
    if first.truth.empty and first.folds[Columns.additions].sum() > 0:
        raise ValueError(
            f"compare: the result {first_name!r} carries no truth table (it was built by hand or "
            "by an older version); run backtest again."
        )
    cutoffs = first.folds[Columns.cutoff].tolist()
    offers: dict[str, pd.DataFrame] = {}
    for name, result in named.items():
        if result.folds[Columns.cutoff].tolist() != cutoffs or result.horizon != first.horizon:
            raise ValueError(
                f"compare: {name!r} was backtested on cutoffs "
                f"{[str(c.date()) for c in result.folds[Columns.cutoff]]} with horizon "
                f"{result.horizon}, {first_name!r} on {[str(c.date()) for c in cutoffs]} with "
                f"{first.horizon}. Pair only results of the same cutoffs and horizon."
            )
        by_model = dict(tuple(result.offers.groupby(Columns.model, sort=False)))
        # a model that made no offer at all is still a model: it scores 0 everywhere
        by_model.setdefault(_MAIN, result.offers.iloc[:0])
        for model, frame in by_model.items():
            label = name if (model == _MAIN and len(named) > 1) else str(model)
            offers.setdefault(label, frame)
    return offers, first.folds, first.truth


def _per_fold(
    offers: pd.DataFrame, truth: pd.DataFrame, metric: str, k: int
) -> npt.NDArray[np.float64]:
    """One value of ``metric`` per client of ``truth`` (in its order of first appearance)."""
    return per_client_metric(offers, truth, metric, k)


def compare(
    results: BacktestResult | Mapping[str, BacktestResult],
    *,
    baseline: str = "popularity",
    metric: str = "ndcg",
    k: int = 10,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Compare models with the baseline, client by client: the paired difference and its interval.

    Parameters
    ----------
    results : BacktestResult or mapping of str to BacktestResult
        One backtest (its ``"crosssell"`` model against its baseline), or several run on the
        same cutoffs and horizon, keyed by a name that replaces each one's ``"crosssell"`` model
        (their baselines are the same model, read from the first result that has it).
    baseline : str, default "popularity"
        The model the others are compared with: a model name in the results (``"popularity"``
        is the backtest's built-in baseline) or a key of ``results``.
    metric : {"ndcg", "recall", "precision", "map", "hit_rate", "value_captured"}, default "ndcg"
        Per-client metric; ``value_captured`` is compared as a total per fold.
    k : int, default 10
        Length of the offer lists compared (at most the ``k`` the backtests measured).
    n_boot : int, default 1000
        Paired bootstrap resamples of the clients: a fold's row resamples its clients, the
        pooled row every (fold, client) pair; 0 skips the intervals.
    confidence : float, default 0.95
        Coverage of the percentile interval of the difference.
    random_state : int, numpy Generator or None, default 0
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per (model, fold), with ``fold`` ``"all"`` for the folds pooled (each client
        of each fold counts once): ``model``, ``fold``, ``metric``, ``k``, ``value``,
        ``baseline_value``, ``difference`` (model minus baseline), ``ci_low`` and ``ci_high``
        (of the difference), ``n_clients`` (clients with an addition) and ``significant``
        (the interval excludes 0).

    Raises
    ------
    ValueError
        If the results were not backtested on the same cutoffs and horizon, the baseline is
        not among the models, or a parameter is out of range.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell.scorers import ItemKNN
    >>> result = cs.backtest(cs.Recommender(scorer=ItemKNN()), cs.datasets.demo(),
    ...                      ["2024-06-30"], "180D", k=(10,), n_boot=0, progress=False)
    >>> table = compare(result, n_boot=200)
    >>> table[["model", "fold", "metric", "k"]].to_dict("records")
    [{'model': 'crosssell', 'fold': 0, 'metric': 'ndcg', 'k': 10}, \
{'model': 'crosssell', 'fold': 'all', 'metric': 'ndcg', 'k': 10}]
    >>> bool((table["ci_low"] <= table["difference"]).all())
    True
    """
    owner = "compare"
    validate_params(
        owner,
        {
            "metric": metric,
            "k": k,
            "n_boot": n_boot,
            "confidence": confidence,
            "baseline": baseline,
        },
        {
            "metric": [Options(set(_COMPARABLE))],
            "k": [Interval(numbers.Integral, 1, None, closed="left")],
            "n_boot": [Interval(numbers.Integral, 0, None, closed="left")],
            "confidence": [Interval(numbers.Real, 0, 1, closed="neither")],
            "baseline": [str],
        },
    )
    offers, folds, truth = _models(results)
    if baseline not in offers:
        raise ValueError(
            f"compare: no model named {baseline!r} in the results; they hold "
            f"{sorted(offers)!r}. Pass baseline= one of them (backtest(..., baseline=True) "
            "runs 'popularity')."
        )
    others = [m for m in offers if m != baseline]
    rng = np.random.default_rng(random_state)
    tail = (1.0 - float(confidence)) / 2.0
    total = metric == "value_captured"

    rows: list[dict[str, Any]] = []
    pooled: dict[str, list[npt.NDArray[np.float64]]] = {m: [] for m in others}
    pooled_base: list[npt.NDArray[np.float64]] = []
    for fold in folds[Columns.fold].tolist():
        fold_truth = truth[truth[Columns.fold] == fold]
        base_offers = offers[baseline]
        base = _per_fold(base_offers[base_offers[Columns.fold] == fold], fold_truth, metric, k)
        pooled_base.append(base)
        for model in others:
            frame = offers[model]
            values = _per_fold(frame[frame[Columns.fold] == fold], fold_truth, metric, k)
            pooled[model].append(values)
            rows.append(_row(model, fold, values, base, total, n_boot, rng, tail))
    for model in others:
        values = np.concatenate(pooled[model]) if pooled[model] else np.zeros(0)
        base = np.concatenate(pooled_base) if pooled_base else np.zeros(0)
        rows.append(_row(model, _ALL, values, base, total, n_boot, rng, tail))
    out = pd.DataFrame(rows, columns=list(_COLUMNS))
    out[Columns.metric] = metric
    out[Columns.k] = int(k)
    return out


def _row(  # noqa: PLR0917 - a private helper called the same way three times
    model: str,
    fold: int | str,
    values: npt.NDArray[np.float64],
    base: npt.NDArray[np.float64],
    total: bool,
    n_boot: int,
    rng: np.random.Generator,
    tail: float,
) -> dict[str, Any]:
    """Compute the paired difference of one model over one set of clients, with its interval."""
    n = int(values.shape[0])
    reduce = np.sum if total else np.mean
    value = float(reduce(values)) if n else float("nan")
    base_value = float(reduce(base)) if n else float("nan")
    low = high = float("nan")
    if n and n_boot:
        sums = boot_sums((values - base)[:, None], int(n_boot), rng)[:, 0]
        diffs = sums if total else sums / n
        low, high = (float(v) for v in np.quantile(diffs, [tail, 1.0 - tail]))
    difference = value - base_value
    return {
        Columns.model: model,
        Columns.fold: fold,
        Columns.metric: "",
        Columns.k: 0,
        Columns.value: value,
        "baseline_value": base_value,
        "difference": difference,
        Columns.ci_low: low,
        Columns.ci_high: high,
        Columns.n_clients: n,
        "significant": bool(low > 0 or high < 0),
    }
