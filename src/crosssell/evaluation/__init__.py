"""Evaluation: ground truth, ranking metrics, the temporal backtest, calibration and tuning.

Examples
--------
>>> from crosssell import evaluation
>>> evaluation.precision_at_k.__name__
'precision_at_k'
"""

# Each module imports only those before it, even inside functions, so any one can be read and
# imported alone: truth and metrics, then plots (drawing frames and results it is handed), then
# backtest, then calibration (fitted on backtest folds), the paired comparison of backtests and
# tuning (a search over backtests); off_policy reads a decision log only.
import warnings
from typing import Any

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
from crosssell.evaluation.comparison import compare
from crosssell.evaluation.holdout import LiftReport, lift
from crosssell.evaluation.metrics import (
    METRICS,
    coverage,
    evaluate,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    value_captured_at_k,
)
from crosssell.evaluation.off_policy import OffPolicyResult, off_policy
from crosssell.evaluation.plots import (
    plot_calibration,
    plot_gain,
    plot_metrics,
    plot_reliability,
    plot_suppression,
)
from crosssell.evaluation.retention import RetentionBacktest, backtest_retention, concordance
from crosssell.evaluation.truth import additions
from crosssell.evaluation.tuning import FloatRange, IntRange, TuneResult, default_space, tune
from crosssell.evaluation.uplift import (
    auuc,
    plot_qini,
    qini_coefficient,
    qini_curve,
    top_uplift,
)

__all__ = [
    "METRICS",
    "BacktestResult",
    "Calibrator",
    "FloatRange",
    "IntRange",
    "IsotonicCalibrator",
    "LiftReport",
    "OffPolicyResult",
    "PlattCalibrator",
    "RetentionBacktest",
    "TuneResult",
    "additions",
    "auuc",
    "backtest",
    "backtest_retention",
    "calibrate",
    "calibration_error",
    "calibration_table",
    "calibrator_from_dict",
    "compare",
    "concordance",
    "coverage",
    "default_space",
    "evaluate",
    "hit_rate_at_k",
    "lift",
    "map_at_k",
    "ndcg_at_k",
    "off_policy",
    "plot_calibration",
    "plot_gain",
    "plot_metrics",
    "plot_qini",
    "plot_reliability",
    "plot_suppression",
    "precision_at_k",
    "qini_coefficient",
    "qini_curve",
    "recall_at_k",
    "top_uplift",
    "tune",
    "value_captured_at_k",
]


def __getattr__(name: str) -> Any:
    """Keep ``crosssell.evaluation.report``, the backtest page's old address, working a while."""
    if name == "report":
        # The page belongs to crosssell.html, a later stage than evaluation: reaching it from here
        # is the one upward import left, and it goes with this alias.
        warnings.warn(
            "crosssell.evaluation.report is deprecated and will be removed in a later release; "
            "use crosssell.report (the same function, defined in crosssell.html).",
            DeprecationWarning,
            stacklevel=2,
        )
        from crosssell.html.backtest_page import report

        return report
    raise AttributeError(f"module 'crosssell.evaluation' has no attribute {name!r}")
