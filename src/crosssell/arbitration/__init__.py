"""Arbitration: turn scored, typed, policy-filtered candidates into at most ``k`` offers per client.

``priority = propensity x value x lever``. Propensity is the chance the client takes the product;
until a calibrator is given it is the scorer's score divided by a scale fitted on the training
clients and clipped into ``[0, 1]`` (:class:`ScoreScale`). This package is the one place where
calibration plugs in: pass any :class:`Calibrator`, an object with ``predict(scores) ->
propensity``, such as the built-in :class:`IsotonicCalibrator` or :class:`PlattCalibrator`
(fitted on backtest folds by :func:`crosssell.evaluation.calibrate`).

Examples
--------
>>> import numpy as np
>>> from crosssell.arbitration import ScoreScale, diverse_top_k
>>> propensity = ScoreScale(scale=2.0).predict(np.array([[1.0, 3.0, 0.5]], np.float32))
>>> diverse_top_k(propensity, 2)[0].tolist()
[[1, 0]]
"""

from crosssell._calibrators import (
    BuiltinCalibrator,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
)
from crosssell.arbitration._explore import Explore
from crosssell.arbitration._levers import ScoreScale, diverse_top_k, lever_weights

__all__ = [
    "BuiltinCalibrator",
    "Calibrator",
    "Explore",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "ScoreScale",
    "calibrator_from_dict",
    "diverse_top_k",
    "lever_weights",
]
