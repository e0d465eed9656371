"""Reliability of propensities: predicted against observed take-up, bin by bin.

Pure functions of two arrays, kept below both the calibration module (which fits calibrators
on backtest folds) and the charts (which draw the curve), so neither has to import the other.
"""

from __future__ import annotations

import numbers
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._calibrators import check_scores_outcomes
from crosssell._params import Interval, Options, validate_params
from crosssell.columns import Columns

__all__ = ["calibration_error", "calibration_table"]


def _propensity_outcome(
    propensity: npt.ArrayLike, outcome: npt.ArrayLike, *, owner: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    p, y = check_scores_outcomes(propensity, outcome, owner=owner)
    outside = np.flatnonzero((p < 0.0) | (p > 1.0))
    if outside.shape[0]:
        raise ValueError(
            f"{owner}: 'propensity' must lie in [0, 1]; {outside.shape[0]} values do not (showing "
            f"{min(outside.shape[0], 5)}): "
            + ", ".join(f"position {int(i)}={float(p[i])!r}" for i in outside[:5])
            + ". Calibrate scores first (IsotonicCalibrator or PlattCalibrator)."
        )
    return p, y


def _check_bins(n_bins: object, owner: str) -> int:
    validate_params(
        owner, {"n_bins": n_bins}, {"n_bins": [Interval(numbers.Integral, 1, None, closed="left")]}
    )
    return int(cast(int, n_bins))


def _bin_index(
    p: npt.NDArray[np.float64], n_bins: int, strategy: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
        if edges.shape[0] < 2:
            edges = np.array([edges[0], edges[0]])
    index = np.searchsorted(edges[1:-1], p, side="right").astype(np.int64)
    return index, edges


def calibration_error(propensity: npt.ArrayLike, outcome: npt.ArrayLike, n_bins: int = 10) -> float:
    """Measure the expected calibration error: the mean gap between predicted and observed take-up.

    Propensities are cut into ``n_bins`` equal-width bins on [0, 1]; the error is the average
    over bins of ``|mean propensity - observed rate|``, weighted by the share of pairs in each.

    Parameters
    ----------
    propensity : array-like of float
        Predicted probabilities in [0, 1].
    outcome : array-like of bool or {0, 1}
        Whether each pair was added.
    n_bins : int, default 10
        Number of bins.

    Returns
    -------
    float
        In [0, 1]; 0 is perfectly calibrated.

    Raises
    ------
    ValueError
        If the arrays are empty or of different lengths, a propensity lies outside [0, 1], an
        outcome is not 0/1, or ``n_bins < 1``.

    Examples
    --------
    >>> calibration_error([0.2, 0.2, 0.8, 0.8], [0, 0, 1, 1])  # off by 0.2 in both bins
    0.2
    """
    owner = "calibration_error"
    bins = _check_bins(n_bins, owner)
    p, y = _propensity_outcome(propensity, outcome, owner=owner)
    index, _ = _bin_index(p, bins, "uniform")
    count = np.bincount(index, minlength=bins).astype(np.float64)
    gap = np.abs(
        np.bincount(index, weights=p, minlength=bins)
        - np.bincount(index, weights=y, minlength=bins)
    )
    return float(round(gap.sum() / count.sum(), 12))


def calibration_table(
    propensity: npt.ArrayLike,
    outcome: npt.ArrayLike,
    n_bins: int = 10,
    *,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> pd.DataFrame:
    """Predicted against observed take-up per propensity bin: the data of a calibration curve.

    Parameters
    ----------
    propensity : array-like of float
        Predicted probabilities in [0, 1].
    outcome : array-like of bool or {0, 1}
        Whether each pair was added.
    n_bins : int, default 10
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins on [0, 1], or bins holding about equal numbers of pairs.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin``, ``lower``, ``upper``, ``n``, ``propensity`` (mean
        predicted), ``observed`` (share added), and ``ci_low``/``ci_high`` (95% Wilson interval
        of the observed share).

    Raises
    ------
    ValueError
        As :func:`calibration_error`, or for an unknown ``strategy``.

    Examples
    --------
    >>> table = calibration_table([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1], n_bins=2)
    >>> table[["bin", "n", "propensity", "observed"]]
       bin  n  propensity  observed
    0    0  2         0.1       0.5
    1    1  2         0.9       1.0
    """
    owner = "calibration_table"
    bins = _check_bins(n_bins, owner)
    validate_params(owner, {"strategy": strategy}, {"strategy": [Options({"uniform", "quantile"})]})
    p, y = _propensity_outcome(propensity, outcome, owner=owner)
    index, edges = _bin_index(p, bins, strategy)
    size = edges.shape[0] - 1
    count = np.bincount(index, minlength=size).astype(np.float64)
    keep = np.flatnonzero(count > 0)
    n = count[keep]
    mean_p = np.bincount(index, weights=p, minlength=size)[keep] / n
    rate = np.bincount(index, weights=y, minlength=size)[keep] / n
    # Wilson score interval: sensible even for a bin with 0 or 100% take-up
    z = 1.959963984540054
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return pd.DataFrame(
        {
            Columns.bin: keep.astype(np.int64),
            Columns.lower: edges[keep],
            Columns.upper: edges[keep + 1],
            Columns.n: n.astype(np.int64),
            Columns.propensity: mean_p,
            Columns.observed: rate,
            Columns.ci_low: np.clip(centre - half, 0.0, 1.0),
            Columns.ci_high: np.clip(centre + half, 0.0, 1.0),
        }
    )
