"""Calibration: turn scorer scores into propensities (probabilities that an offer is taken up).

A scorer ranks well but its scores are not probabilities. A calibrator learns, on backtest folds,
how often an offered pair with a given score was actually added, and maps any score to that
rate. :func:`calibrate` fits one from a recommender and a book; the recommender then takes it as
its ``calibrator``. Calibrators save as plain lists of floats (:meth:`IsotonicCalibrator.to_dict`),
never as pickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import isotonic_regression, minimize
from scipy.special import expit

from crosssell.columns import Columns
from crosssell.columns import Columns as _Out
from crosssell.exceptions import ArtifactError, NotFittedError

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.evaluation.truth import HorizonLike

__all__ = [
    "Calibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "calibrate",
    "calibration_error",
    "calibration_table",
    "calibrator_from_dict",
]

Method = Literal["isotonic", "platt"]

_ISOTONIC: Final = "isotonic"
_PLATT: Final = "platt"


def _scores_outcomes(
    scores: npt.ArrayLike, outcomes: npt.ArrayLike, *, owner: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Validate a pair of aligned score and 0/1 outcome arrays."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if s.shape[0] != y.shape[0]:
        raise ValueError(
            f"{owner}: 'scores' and 'outcomes' must have the same length; got {s.shape[0]} scores "
            f"and {y.shape[0]} outcomes."
        )
    if s.shape[0] == 0:
        raise ValueError(f"{owner}: no scores to fit on; pass at least one (score, outcome) pair.")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.shape[0]:
        raise ValueError(
            f"{owner}: 'scores' must be finite; {bad.shape[0]} are not (showing "
            f"{min(bad.shape[0], 5)}): "
            + ", ".join(f"position {int(i)}={float(s[i])!r}" for i in bad[:5])
            + ". Drop those pairs before fitting."
        )
    bad = np.flatnonzero(~((y == 0.0) | (y == 1.0)))
    if bad.shape[0]:
        raise ValueError(
            f"{owner}: 'outcomes' must be 0/1 or boolean; {bad.shape[0]} are not (showing "
            f"{min(bad.shape[0], 5)}): "
            + ", ".join(f"position {int(i)}={float(y[i])!r}" for i in bad[:5])
            + "."
        )
    return s, y


def _not_fitted(instance: object) -> NotFittedError:
    return NotFittedError(
        f"This {type(instance).__name__} instance is not fitted yet. Call 'fit' before using it."
    )


def _float_list(payload: Mapping[str, Any], key: str, owner: str) -> npt.NDArray[np.float64]:
    try:
        values = np.asarray([float(v) for v in payload[key]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{owner}: the saved calibrator has no valid {key!r} list of numbers."
        ) from exc
    if not np.isfinite(values).all():
        raise ArtifactError(
            f"{owner}: the saved calibrator's {key!r} list holds non-finite values."
        )
    return values


def _check_method(payload: Mapping[str, Any], expected: str, owner: str) -> None:
    method = payload.get("method") if isinstance(payload, Mapping) else None
    if method != expected:
        raise ArtifactError(
            f"{owner}: expected a saved calibrator with method={expected!r}; got "
            f"method={method!r}. Load it with calibrator_from_dict, which picks the class."
        )


class IsotonicCalibrator:
    """Monotone, non-parametric calibration: isotonic regression of outcomes on scores.

    Fitting pools adjacent scores until the observed take-up rate never falls as the score
    rises (scipy's pool-adjacent-violators), then keeps the two ends of each pooled block as
    knots; prediction interpolates linearly between knots and holds the end values beyond them.

    Attributes
    ----------
    x_ : ndarray of float64
        Knot scores, strictly increasing (after ``fit``).
    y_ : ndarray of float64
        Propensity at each knot, non-decreasing, in [0, 1].

    Examples
    --------
    >>> cal = IsotonicCalibrator().fit([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    >>> cal.predict([0.1, 0.25, 0.4]).tolist()
    [0.0, 0.5, 1.0]
    >>> IsotonicCalibrator.from_dict(cal.to_dict()).predict([0.25]).tolist()
    [0.5]
    """

    x_: npt.NDArray[np.float64]
    y_: npt.NDArray[np.float64]

    def fit(self, scores: npt.ArrayLike, outcomes: npt.ArrayLike) -> IsotonicCalibrator:
        """Learn the score -> take-up mapping.

        Parameters
        ----------
        scores : array-like of float
            Scores of offered pairs (finite).
        outcomes : array-like of bool or {0, 1}
            Whether each pair was added.

        Returns
        -------
        IsotonicCalibrator
            ``self``.

        Raises
        ------
        ValueError
            If the arrays differ in length, are empty, or hold non-finite scores or outcomes
            other than 0/1.

        Examples
        --------
        >>> IsotonicCalibrator().fit([1.0, 2.0], [0, 1]).y_.tolist()
        [0.0, 1.0]
        """
        s, y = _scores_outcomes(scores, outcomes, owner="IsotonicCalibrator.fit")
        unique, inverse = np.unique(s, return_inverse=True)
        counts = np.bincount(inverse).astype(np.float64)
        rate = np.bincount(inverse, weights=y) / counts
        result = isotonic_regression(rate, weights=counts, increasing=True)
        fitted = np.clip(np.asarray(result.x, dtype=np.float64), 0.0, 1.0)
        blocks = np.asarray(result.blocks, dtype=np.int64)
        # a pooled block is flat: its two end scores carry all the information
        knots = np.unique(np.concatenate([blocks[:-1], blocks[1:] - 1]))
        self.x_ = unique[knots]
        self.y_ = fitted[knots]
        return self

    def predict(self, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map scores to propensities in [0, 1].

        Parameters
        ----------
        scores : array-like of float
            Any scores of the same scorer; NaN stays NaN.

        Returns
        -------
        ndarray of float64
            Same shape as ``scores``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.

        Examples
        --------
        >>> cal = IsotonicCalibrator().fit([0.0, 1.0], [0, 1])
        >>> cal.predict([-5.0, 0.5, 5.0]).tolist()
        [0.0, 0.5, 1.0]
        """
        if not hasattr(self, "x_"):
            raise _not_fitted(self)
        s = np.asarray(scores, dtype=np.float64)
        out = np.interp(s, self.x_, self.y_)
        out[np.isnan(s)] = np.nan
        return np.asarray(out, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted mapping as plain lists of floats (JSON-safe).

        Returns
        -------
        dict
            ``{"method": "isotonic", "x": [...], "y": [...]}``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.

        Examples
        --------
        >>> IsotonicCalibrator().fit([0.0, 1.0], [0, 1]).to_dict()
        {'method': 'isotonic', 'x': [0.0, 1.0], 'y': [0.0, 1.0]}
        """
        if not hasattr(self, "x_"):
            raise _not_fitted(self)
        return {
            "method": _ISOTONIC,
            "x": [float(v) for v in self.x_],
            "y": [float(v) for v in self.y_],
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> IsotonicCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output, checking it.

        Parameters
        ----------
        payload : mapping
            As returned by :meth:`to_dict`.

        Returns
        -------
        IsotonicCalibrator

        Raises
        ------
        ArtifactError
            If the payload is not a valid isotonic calibrator (wrong method, lengths, order or
            range).

        Examples
        --------
        >>> IsotonicCalibrator.from_dict({"method": "isotonic", "x": [0, 1], "y": [0.2, 0.6]}).y_
        array([0.2, 0.6])
        """
        owner = "IsotonicCalibrator.from_dict"
        _check_method(payload, _ISOTONIC, owner)
        x = _float_list(payload, "x", owner)
        y = _float_list(payload, "y", owner)
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ArtifactError(
                f"{owner}: 'x' and 'y' must be non-empty and of equal length; got {x.shape[0]} "
                f"and {y.shape[0]}."
            )
        if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any() or (y < 0).any() or (y > 1).any():
            raise ArtifactError(
                f"{owner}: 'x' must increase strictly and 'y' must be non-decreasing within "
                "[0, 1]; the saved calibrator is corrupt."
            )
        cal = cls()
        cal.x_, cal.y_ = x, y
        return cal

    def __repr__(self) -> str:
        if not hasattr(self, "x_"):
            return "IsotonicCalibrator()"
        return f"IsotonicCalibrator(<fitted, {self.x_.shape[0]} knots>)"


class PlattCalibrator:
    """Logistic calibration: ``propensity = 1 / (1 + exp(-(a * score + b)))``.

    The slope is kept non-negative so that a higher score never means a lower propensity; a
    score unrelated to take-up gets a flat mapping at the base rate. Targets are smoothed as in
    Platt's method (``(n1 + 1) / (n1 + 2)`` and ``1 / (n0 + 2)``) so that perfectly separated
    data still gets finite coefficients.

    Attributes
    ----------
    a_ : float
        Slope (>= 0) on the raw score (after ``fit``).
    b_ : float
        Intercept.

    Examples
    --------
    >>> cal = PlattCalibrator().fit([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1])
    >>> p = cal.predict([0.0, 3.0])
    >>> bool(p[0] < 0.5 < p[1])
    True
    >>> PlattCalibrator.from_dict(cal.to_dict()).a_ == cal.a_
    True
    """

    a_: float
    b_: float

    def fit(self, scores: npt.ArrayLike, outcomes: npt.ArrayLike) -> PlattCalibrator:
        """Fit the slope and intercept by maximum likelihood.

        Parameters
        ----------
        scores : array-like of float
            Scores of offered pairs (finite).
        outcomes : array-like of bool or {0, 1}
            Whether each pair was added.

        Returns
        -------
        PlattCalibrator
            ``self``.

        Raises
        ------
        ValueError
            If the arrays differ in length, are empty, or hold non-finite scores or outcomes
            other than 0/1.

        Examples
        --------
        >>> cal = PlattCalibrator().fit([0.0, 0.0, 1.0, 1.0], [0, 1, 1, 1])
        >>> cal.a_ > 0
        True
        """
        s, y = _scores_outcomes(scores, outcomes, owner="PlattCalibrator.fit")
        n_pos = float(y.sum())
        n_neg = float(y.shape[0]) - n_pos
        target = np.where(y == 1.0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
        # standardised scores keep the optimiser well conditioned whatever the scorer's scale
        centre = float(s.mean())
        spread = float(s.std())
        if not spread > 0.0:
            spread = 1.0
        z = (s - centre) / spread

        def loss(params: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            f = params[0] * z + params[1]
            value = float(np.mean(np.logaddexp(0.0, f) - target * f))
            residual = expit(f) - target
            grad = np.array([np.mean(residual * z), np.mean(residual)], dtype=np.float64)
            return value, grad

        base = float(np.clip(target.mean(), 1e-12, 1 - 1e-12))
        start = np.array([0.0, np.log(base / (1.0 - base))], dtype=np.float64)
        result = minimize(
            loss, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)]
        )
        alpha, beta = (float(v) for v in result.x)
        self.a_ = alpha / spread
        self.b_ = beta - alpha * centre / spread
        return self

    def predict(self, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map scores to propensities in [0, 1].

        Parameters
        ----------
        scores : array-like of float
            Any scores of the same scorer; NaN stays NaN.

        Returns
        -------
        ndarray of float64
            Same shape as ``scores``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.

        Examples
        --------
        >>> cal = PlattCalibrator.from_dict({"method": "platt", "a": 1.0, "b": 0.0})
        >>> cal.predict([0.0]).tolist()
        [0.5]
        """
        if not hasattr(self, "a_"):
            raise _not_fitted(self)
        s = np.asarray(scores, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return np.asarray(expit(self.a_ * s + self.b_), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return the coefficients as plain floats (JSON-safe).

        Returns
        -------
        dict
            ``{"method": "platt", "a": float, "b": float}``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.

        Examples
        --------
        >>> PlattCalibrator.from_dict({"method": "platt", "a": 2.0, "b": -1.0}).to_dict()
        {'method': 'platt', 'a': 2.0, 'b': -1.0}
        """
        if not hasattr(self, "a_"):
            raise _not_fitted(self)
        return {"method": _PLATT, "a": float(self.a_), "b": float(self.b_)}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> PlattCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output, checking it.

        Parameters
        ----------
        payload : mapping
            As returned by :meth:`to_dict`.

        Returns
        -------
        PlattCalibrator

        Raises
        ------
        ArtifactError
            If the payload is not a valid Platt calibrator.

        Examples
        --------
        >>> PlattCalibrator.from_dict({"method": "platt", "a": 0.5, "b": 0.1}).b_
        0.1
        """
        owner = "PlattCalibrator.from_dict"
        _check_method(payload, _PLATT, owner)
        try:
            a, b = float(payload["a"]), float(payload["b"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{owner}: the saved calibrator needs numbers 'a' and 'b'."
            ) from exc
        if not (np.isfinite(a) and np.isfinite(b)) or a < 0:
            raise ArtifactError(
                f"{owner}: 'a' must be a finite number >= 0 and 'b' finite; got a={a!r}, b={b!r}."
            )
        cal = cls()
        cal.a_, cal.b_ = a, b
        return cal

    def __repr__(self) -> str:
        if not hasattr(self, "a_"):
            return "PlattCalibrator()"
        return f"PlattCalibrator(<fitted, a={self.a_:.4g}, b={self.b_:.4g}>)"


Calibrator = IsotonicCalibrator | PlattCalibrator


def calibrator_from_dict(payload: Mapping[str, Any]) -> Calibrator:
    """Rebuild whichever calibrator :meth:`~IsotonicCalibrator.to_dict` saved.

    Parameters
    ----------
    payload : mapping
        A saved calibrator; its ``method`` picks the class.

    Returns
    -------
    IsotonicCalibrator or PlattCalibrator

    Raises
    ------
    ArtifactError
        If the method is unknown or the payload is invalid.

    Examples
    --------
    >>> calibrator_from_dict({"method": "platt", "a": 1.0, "b": 0.0})
    PlattCalibrator(<fitted, a=1, b=0>)
    """
    method = payload.get("method") if isinstance(payload, Mapping) else None
    if method == _ISOTONIC:
        return IsotonicCalibrator.from_dict(payload)
    if method == _PLATT:
        return PlattCalibrator.from_dict(payload)
    raise ArtifactError(
        f"calibrator_from_dict: unknown calibrator method {method!r}; expected 'isotonic' or "
        "'platt'."
    )


def _propensity_outcome(
    propensity: npt.ArrayLike, outcome: npt.ArrayLike, *, owner: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    p, y = _scores_outcomes(propensity, outcome, owner=owner)
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
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(
            f"The 'n_bins' parameter of {owner} must be an int in the range [1, inf). "
            f"Got {n_bins!r} instead."
        )
    return int(n_bins)


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
    if strategy not in ("uniform", "quantile"):
        raise ValueError(
            f"The 'strategy' parameter of {owner} must be a str among {{'uniform', 'quantile'}}. "
            f"Got {strategy!r} instead."
        )
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
            _Out.bin: keep.astype(np.int64),
            _Out.lower: edges[keep],
            _Out.upper: edges[keep + 1],
            _Out.n: n.astype(np.int64),
            Columns.propensity: mean_p,
            _Out.observed: rate,
            _Out.ci_low: np.clip(centre - half, 0.0, 1.0),
            _Out.ci_high: np.clip(centre + half, 0.0, 1.0),
        }
    )


def calibrate(
    recommender: Any,
    book: Book,
    cutoffs: Sequence[Any] | Any,
    horizon: HorizonLike = "180D",
    method: Method = "isotonic",
    *,
    k: int = 10,
    progress: bool | None = None,
) -> Calibrator:
    """Fit a calibrator on backtest folds: offered pairs' scores against whether they were added.

    For each cutoff the recommender is cloned, fitted as of the cutoff and asked for ``k`` offers
    per active client (see :func:`crosssell.evaluation.backtest`); each offer's ``score`` is
    paired with whether the client added that product within the horizon.

    Parameters
    ----------
    recommender : Recommender
        An unfitted or fitted recommender; it is cloned, never changed.
    book : Book
        The whole book.
    cutoffs : date-like or sequence of date-like
        Points in time to fit at; more folds give a steadier calibration.
    horizon : str, timedelta or int, default "180D"
        Observation window after each cutoff.
    method : {"isotonic", "platt"}, default "isotonic"
        :class:`IsotonicCalibrator` (flexible, needs more offers) or :class:`PlattCalibrator`
        (two parameters).
    k : int, default 10
        Offers per client to learn from; deeper lists cover low scores too.
    progress : bool, optional
        Show a progress bar (default: when interactive).

    Returns
    -------
    IsotonicCalibrator or PlattCalibrator
        Fitted; pass it to the recommender as ``calibrator``.

    Raises
    ------
    ValueError
        For an unknown ``method``, an impossible cutoff or horizon (see
        :func:`~crosssell.evaluation.backtest`), or folds without any offer.

    Examples
    --------
    >>> from crosssell.evaluation.truth import _example_book
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import Popularity
    >>> cal = calibrate(Recommender(scorer=Popularity()), _example_book(), ["2024-06-30"], "60D",
    ...                 method="platt", progress=False)
    >>> type(cal).__name__
    'PlattCalibrator'
    """
    from crosssell.evaluation.backtest import backtest

    owner = "calibrate"
    if method not in (_ISOTONIC, _PLATT):
        raise ValueError(
            f"The 'method' parameter of {owner} must be a str among {{'isotonic', 'platt'}}. "
            f"Got {method!r} instead."
        )
    result = backtest(
        recommender,
        book,
        cutoffs,
        horizon=horizon,
        k=k,
        baseline=False,
        n_boot=0,
        progress=progress,
    )
    offers = result.offers
    offers = offers[offers[_Out.model] == "crosssell"]
    if offers.shape[0] == 0:
        raise ValueError(
            f"{owner}: the backtest made no offer at any cutoff, so there is nothing to calibrate "
            "on. Use later cutoffs or a book with more clients."
        )
    scores = offers[Columns.score].to_numpy(dtype=np.float64)
    added = offers[_Out.added].to_numpy(dtype=np.float64)
    finite = np.isfinite(scores)
    calibrator: Calibrator = IsotonicCalibrator() if method == _ISOTONIC else PlattCalibrator()
    return calibrator.fit(scores[finite], added[finite])
