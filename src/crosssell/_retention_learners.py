"""The hazard learners of retention: a logistic regression or LightGBM's trees over person-months.

Both are trained on rows of (static features of a unit, then the month's own columns) and give
the probability of leaving in that month; both explain a probability by each feature's share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._calibrators import IsotonicCalibrator
from crosssell._retention_features import N_MONTHS

__all__ = ["HazardLevel", "LinearHazard", "TreeHazard"]

FloatArray = npt.NDArray[np.float64]


class LinearHazard:
    """Logistic regression on signed-log, standardised features with missing-value flags."""

    def __init__(self, names: list[str], seed: int) -> None:
        self.names = names
        self.seed = seed

    def _design(self, x: FloatArray) -> FloatArray:
        z = np.sign(x) * np.log1p(np.abs(x))
        missing = np.isnan(z)
        z = np.where(missing, self.mean_, z)
        z = (z - self.mean_) / self.scale_
        month = x[:, self.names.index("month")].astype(np.int64)
        dummies = (month[:, None] == np.arange(1, N_MONTHS + 1)[None, :]).astype(np.float64)
        return np.hstack([z, missing[:, self.flagged_].astype(np.float64), dummies])

    def fit(self, x: FloatArray, y: FloatArray, w: FloatArray) -> LinearHazard:
        from sklearn.linear_model import LogisticRegression

        z = np.sign(x) * np.log1p(np.abs(x))
        seen = ~np.isnan(z)
        count = seen.sum(axis=0)
        filled = np.where(seen, z, 0.0)
        mean = filled.sum(axis=0) / np.maximum(count, 1)
        var = (np.where(seen, z - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
        self.mean_ = mean
        self.scale_ = np.where(var > 0, np.sqrt(var), 1.0)
        self.flagged_ = np.flatnonzero(np.isnan(x).any(axis=0))
        design = self._design(x)
        model = LogisticRegression(
            C=1.0, solver="newton-cholesky", max_iter=200, random_state=self.seed
        )
        model.fit(design, y, sample_weight=w)
        # plain arrays from here on: a saved model holds them as they are
        self.coef_ = np.asarray(model.coef_[0], dtype=np.float64).copy()
        self.intercept_ = float(model.intercept_[0])
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        logit = self._design(x) @ self.coef_ + self.intercept_
        return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)

    def partial_logit(self, x: FloatArray, start: int) -> FloatArray:
        """Return the linear score of feature columns ``start, start + 1, ...`` (no intercept).

        A unit's static features are the same in each of its 12 months: their part of the
        score is computed once per unit, and only the months' own columns once per month.
        """
        stop = start + x.shape[1]
        coef = self.coef_
        n = len(self.names)
        z = np.sign(x) * np.log1p(np.abs(x))
        missing = np.isnan(z)
        mean, scale = self.mean_[start:stop], self.scale_[start:stop]
        z = (np.where(missing, mean, z) - mean) / scale
        out = z @ coef[start:stop]
        flagged = (self.flagged_ >= start) & (self.flagged_ < stop)
        if flagged.any():
            flag_coef = coef[n : n + self.flagged_.size][flagged]
            out = out + missing[:, self.flagged_[flagged] - start] @ flag_coef
        month = self.names.index("month")
        if start <= month < stop:
            m = x[:, month - start].astype(np.int64)
            out = out + coef[n + self.flagged_.size :][np.clip(m, 1, N_MONTHS) - 1]
        return np.asarray(out, dtype=np.float64)

    @property
    def intercept(self) -> float:
        return self.intercept_

    def contributions(self, x: FloatArray) -> FloatArray:
        design = self._design(x)
        coef = self.coef_
        n = len(self.names)
        out = design[:, :n] * coef[:n]
        flags = design[:, n : n + self.flagged_.size] * coef[n : n + self.flagged_.size]
        out[:, self.flagged_] += flags
        return np.asarray(out, dtype=np.float64)


class TreeHazard:
    """LightGBM's gradient-boosted trees over person-period rows."""

    def __init__(
        self, names: list[str], seed: int, *, n_estimators: int, learning_rate: float, threads: int
    ) -> None:
        self.names = names
        self.seed = seed
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.threads = threads

    def fit(self, x: FloatArray, y: FloatArray, w: FloatArray) -> TreeHazard:
        import lightgbm

        model = lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=15,
            min_child_samples=50,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            reg_lambda=1.0,
            random_state=self.seed,
            n_jobs=self.threads if self.threads > 0 else -1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        model.fit(x, y.astype(np.int64), sample_weight=w)
        self.booster_ = model.booster_
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        if x.shape[0] == 0:
            return np.zeros(0)
        return np.asarray(self.booster_.predict(x, num_threads=self.threads), dtype=np.float64)

    def contributions(self, x: FloatArray) -> FloatArray:
        if x.shape[0] == 0:
            return np.zeros((0, len(self.names)))
        raw = self.booster_.predict(x, pred_contrib=True, num_threads=self.threads)
        return np.asarray(raw, dtype=np.float64)[:, : len(self.names)]


@dataclass(frozen=True, slots=True, kw_only=True)
class HazardLevel:
    """A fitted hazard model of one level (clients, or product lines)."""

    by_family: bool
    names: list[str]
    learner: Any
    calibrator: IsotonicCalibrator | None
    training: pd.DataFrame
