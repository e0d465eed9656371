"""Calibration: fit a calibrator on backtest folds, and measure how well propensities match.

A scorer ranks well but its scores are not probabilities. A calibrator learns, on backtest folds,
how often an offered pair with a given score was actually added, and maps any score to that
rate. :func:`calibrate` fits one from a recommender and a book; the recommender then takes it as
its ``calibrator``. The calibrators themselves (:class:`IsotonicCalibrator`,
:class:`PlattCalibrator`) belong to arbitration, where propensities are used, and are imported
here so that evaluation code finds them beside :func:`calibrate`. :func:`calibration_error` and
:func:`calibration_table` compare propensities with what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from crosssell._calibrators import ISOTONIC, PLATT
from crosssell._params import Options, validate_params
from crosssell.arbitration import (
    BuiltinCalibrator,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
)
from crosssell.columns import Columns
from crosssell.evaluation._reliability import calibration_error, calibration_table
from crosssell.evaluation.backtest import backtest

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.evaluation._common import HorizonLike

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


def calibrate(
    recommender: Any,
    book: Book,
    cutoffs: Sequence[Any] | Any,
    horizon: HorizonLike = "180D",
    method: Method = "isotonic",
    *,
    k: int = 10,
    progress: bool | None = None,
) -> BuiltinCalibrator:
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
    >>> from crosssell.datasets import tiny
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import Popularity
    >>> cal = calibrate(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"], "60D",
    ...                 method="platt", progress=False)
    >>> type(cal).__name__
    'PlattCalibrator'
    """
    owner = "calibrate"
    validate_params(owner, {"method": method}, {"method": [Options({ISOTONIC, PLATT})]})
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
    offers = offers[offers[Columns.model] == "crosssell"]
    if offers.shape[0] == 0:
        raise ValueError(
            f"{owner}: the backtest made no offer at any cutoff, so there is nothing to calibrate "
            "on. Use later cutoffs or a book with more clients."
        )
    scores = offers[Columns.score].to_numpy(dtype=np.float64)
    added = offers[Columns.added].to_numpy(dtype=np.float64)
    finite = np.isfinite(scores)
    calibrator: BuiltinCalibrator = (
        IsotonicCalibrator() if method == ISOTONIC else PlattCalibrator()
    )
    return calibrator.fit(scores[finite], added[finite])
