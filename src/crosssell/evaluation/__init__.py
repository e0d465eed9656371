"""Evaluation: ground truth, ranking metrics, the temporal backtest, calibration and tuning.

Examples
--------
>>> from crosssell import evaluation
>>> evaluation.precision_at_k.__name__
'precision_at_k'
"""

# Each module imports only those before it, even inside functions, so any one can be read and
# imported alone: truth and metrics, then plots (drawing frames and results it is handed), then
# backtest, then calibration (fitted on backtest folds) and tuning (a search over backtests).
from crosssell.evaluation.backtest import BacktestResult, backtest
from crosssell.evaluation.calibration import (
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrate,
    calibration_error,
    calibration_table,
    calibrator_from_dict,
)
from crosssell.evaluation.metrics import (
    METRICS,
    coverage,
    evaluate,
    hit_rate_at_k,
    lift,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    value_captured_at_k,
)
from crosssell.evaluation.plots import plot_calibration, plot_gain, plot_metrics, plot_suppression
from crosssell.evaluation.truth import additions
from crosssell.evaluation.tuning import TuneResult, tune

# The backtest page is written by crosssell.html, which reads the results above; it stays
# reachable here because ``crosssell.evaluation.report`` is where users have always found it.
# It must be imported after the evaluation modules it reads.
from crosssell.html.backtest_page import report

__all__ = [
    "METRICS",
    "BacktestResult",
    "Calibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "TuneResult",
    "additions",
    "backtest",
    "calibrate",
    "calibration_error",
    "calibration_table",
    "calibrator_from_dict",
    "coverage",
    "evaluate",
    "hit_rate_at_k",
    "lift",
    "map_at_k",
    "ndcg_at_k",
    "plot_calibration",
    "plot_gain",
    "plot_metrics",
    "plot_suppression",
    "precision_at_k",
    "recall_at_k",
    "report",
    "tune",
    "value_captured_at_k",
]
