"""Calibrators: what maps a scorer's scores to propensities (chances that an offer is taken up).

Public as :mod:`crosssell.arbitration`'s; the code lives at the bottom of the house because
pure score-to-probability maps are also what a learned scorer (the
:class:`~crosssell.scorers.Ranker`) calibrates its own output with.

Arbitration accepts any :class:`Calibrator`, an object with ``predict(scores) -> propensity``.
Two are built in: :class:`IsotonicCalibrator` and :class:`PlattCalibrator`. They save as plain
lists of floats (:meth:`IsotonicCalibrator.to_dict`, :func:`calibrator_from_dict`), never as
pickles. Fitting one on backtest folds is evaluation's work
(:func:`crosssell.evaluation.calibrate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression, minimize
from scipy.special import expit

from crosssell._codec import register
from crosssell._params import check_fitted
from crosssell.exceptions import ArtifactError

__all__ = [
    "ISOTONIC",
    "PLATT",
    "BuiltinCalibrator",
    "Calibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "calibrator_from_dict",
    "check_scores_outcomes",
]

#: The ``method`` names of the built-in calibrators, as saved by ``to_dict``.
ISOTONIC: Final = "isotonic"
PLATT: Final = "platt"


@runtime_checkable
class Calibrator(Protocol):
    """Anything that maps raw scores to propensities in ``[0, 1]``.

    Examples
    --------
    >>> from crosssell.arbitration import ScoreScale
    >>> isinstance(ScoreScale(scale=2.0), Calibrator)
    True
    >>> isinstance(IsotonicCalibrator(), Calibrator)
    True
    """

    def predict(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return propensities for ``scores`` (same shape)."""
        ...


def check_scores_outcomes(
    scores: npt.ArrayLike, outcomes: npt.ArrayLike, *, owner: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Validate a pair of aligned score and 0/1 outcome arrays, as float64.

    Parameters
    ----------
    scores : array-like of float
        Scores (or propensities), all finite.
    outcomes : array-like of bool or {0, 1}
        Whether each pair was added.
    owner : str
        The caller, named in error messages.

    Returns
    -------
    scores, outcomes : ndarray of float64
        Flattened.

    Raises
    ------
    ValueError
        If the arrays differ in length, are empty, or hold non-finite scores or outcomes other
        than 0/1.

    Examples
    --------
    >>> s, y = check_scores_outcomes([0.5, 1.0], [True, False], owner="example")
    >>> y.tolist()
    [1.0, 0.0]
    """
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


@register("calibrator")
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

    def fit(
        self,
        scores: npt.ArrayLike,
        outcomes: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> IsotonicCalibrator:
        """Learn the score -> take-up mapping.

        Parameters
        ----------
        scores : array-like of float
            Scores of offered pairs (finite).
        outcomes : array-like of bool or {0, 1}
            Whether each pair was added.
        sample_weight : array-like of float, optional
            Positive weight of each pair (e.g. the inverse of its chance of being sampled);
            every pair counts once when omitted.

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
        s, y = check_scores_outcomes(scores, outcomes, owner="IsotonicCalibrator.fit")
        w = np.ones(s.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if w.shape != s.shape or not (np.isfinite(w).all() and (w > 0).all()):
            raise ValueError(
                "IsotonicCalibrator.fit: sample_weight must hold one finite, positive weight "
                f"per score ({s.size}); got shape {w.shape}"
            )
        unique, inverse = np.unique(s, return_inverse=True)
        counts = np.bincount(inverse, weights=w)
        rate = np.bincount(inverse, weights=y * w) / counts
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
        check_fitted(self, "x_")
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
        check_fitted(self, "x_")
        return {
            "method": ISOTONIC,
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
        _check_method(payload, ISOTONIC, owner)
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


@register("calibrator")
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
        s, y = check_scores_outcomes(scores, outcomes, owner="PlattCalibrator.fit")
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
        check_fitted(self, "a_")
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
        check_fitted(self, "a_")
        return {"method": PLATT, "a": float(self.a_), "b": float(self.b_)}

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
        _check_method(payload, PLATT, owner)
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


#: The calibrators crosssell ships, and the only ones a saved model can hold.
BuiltinCalibrator = IsotonicCalibrator | PlattCalibrator


def calibrator_from_dict(payload: Mapping[str, Any]) -> BuiltinCalibrator:
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
    if method == ISOTONIC:
        return IsotonicCalibrator.from_dict(payload)
    if method == PLATT:
        return PlattCalibrator.from_dict(payload)
    raise ArtifactError(
        f"calibrator_from_dict: unknown calibrator method {method!r}; expected 'isotonic' or "
        "'platt'."
    )
