"""Charts of a backtest: metric@k curves, cumulative gain, calibration curve, suppression funnel.

Needs matplotlib (the ``plot`` extra); it is imported only when a chart is drawn. Every function
returns the matplotlib Figure and draws on a given Axes when one is passed. A new figure is
closed as soon as it is made, so Jupyter shows it once (as the returned value); in a script, save
it with ``fig.savefig(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.columns import Columns
from crosssell.evaluation._common import BacktestFrames
from crosssell.evaluation._figures import figure_axes
from crosssell.evaluation._reliability import calibration_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_calibration",
    "plot_gain",
    "plot_metrics",
    "plot_reliability",
    "plot_suppression",
]

_LABELS = {
    "precision": "precision@k",
    "recall": "recall@k",
    "map": "MAP@k",
    "ndcg": "NDCG@k",
    "hit_rate": "hit rate@k",
    "value_captured": "value captured@k",
    "value_share": "share of added value@k",
    "coverage": "catalogue coverage@k",
}


def plot_metrics(
    result: BacktestFrames,
    metrics: Sequence[str] = ("precision", "recall", "ndcg", "hit_rate"),
    *,
    offer_type: str = "all",
    segment: str = "all",
    ax: Axes | None = None,
) -> Figure:
    """Draw metric@k curves of each model, averaged over folds, with their bootstrap bands.

    Parameters
    ----------
    result : BacktestResult
        A backtest's result.
    metrics : sequence of str, default ("precision", "recall", "ndcg", "hit_rate")
        One panel per metric.
    offer_type : {"all", "upsell", "cross_sell"}, default "all"
        Which additions the metrics score against.
    segment : str, default "all"
        A segment value, when the backtest was split by segment.
    ax : matplotlib Axes, optional
        Draw on it (only with a single metric).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If a metric is not in the result.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crosssell.datasets import tiny
    >>> from crosssell.evaluation import backtest
    >>> from crosssell.recommender import Recommender
    >>> result = backtest(Recommender(), tiny(), "2024-06-30", "60D", k=(1, 2),
    ...                   n_boot=0, progress=False)
    >>> fig = plot_metrics(result, ["recall"])
    >>> len(fig.axes)
    1
    """
    m = result.metrics
    known = set(m[Columns.metric])
    unknown = [name for name in metrics if name not in known]
    if unknown:
        raise ValueError(
            f"The 'metrics' parameter of plot_metrics must name metrics of the result "
            f"({', '.join(sorted(known))}). Got {unknown!r} instead."
        )
    rows = m[(m[Columns.offer_type] == offer_type) & (m[Columns.segment] == segment)]
    mean = rows.groupby([Columns.metric, Columns.model, Columns.k])[
        [Columns.value, Columns.ci_low, Columns.ci_high]
    ].mean()
    fig, axes = figure_axes(ax, len(metrics))
    for panel, name in zip(axes, metrics, strict=True):
        part = mean.loc[name]
        for model in part.index.get_level_values(0).unique():
            line = part.loc[model]
            ks = line.index.to_numpy()
            (drawn,) = panel.plot(ks, line[Columns.value], marker="o", label=str(model))
            if line[Columns.ci_low].notna().any():
                panel.fill_between(
                    ks,
                    line[Columns.ci_low],
                    line[Columns.ci_high],
                    alpha=0.2,
                    color=drawn.get_color(),
                )
        panel.set_xlabel("k (offers per client)")
        panel.set_title(_LABELS.get(name, name))
        panel.set_xticks(sorted(set(rows[Columns.k])))
    axes[0].legend()
    fig.tight_layout()
    return fig


def _gain_curve(
    offers: pd.DataFrame,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    order = np.argsort(-offers[Columns.score].to_numpy(np.float64), kind="stable")
    added = offers[Columns.added].to_numpy(np.float64)[order]
    total = added.sum()
    x = np.arange(0, added.shape[0] + 1) / max(added.shape[0], 1)
    y = np.concatenate(([0.0], np.cumsum(added) / total if total > 0 else np.zeros_like(added)))
    return x, y


def plot_gain(result: BacktestFrames, *, ax: Axes | None = None) -> Figure:
    """Draw the cumulative gain chart: share of taken-up offers found against offers made.

    Offers of all folds are ranked by score, best first; a useful scorer rises above the
    diagonal (offers made at random).

    Parameters
    ----------
    result : BacktestResult
        A backtest's result.
    ax : matplotlib Axes, optional
        Draw on it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crosssell.datasets import tiny
    >>> from crosssell.evaluation import backtest
    >>> from crosssell.recommender import Recommender
    >>> result = backtest(Recommender(), tiny(), "2024-06-30", "60D", k=2,
    ...                   n_boot=0, progress=False)
    >>> plot_gain(result).axes[0].get_xlabel()
    'share of offers made'
    """
    fig, (panel,) = figure_axes(ax)
    for model, offers in result.offers.groupby(Columns.model, sort=False):
        x, y = _gain_curve(offers)
        panel.plot(x, y, label=str(model))
    panel.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    panel.set_xlabel("share of offers made")
    panel.set_ylabel("share of taken-up offers found")
    panel.set_title("cumulative gain")
    panel.legend()
    fig.tight_layout()
    return fig


def plot_calibration(
    propensity: npt.ArrayLike,
    outcome: npt.ArrayLike,
    n_bins: int = 10,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Draw the calibration curve: observed take-up against predicted propensity per bin.

    Parameters
    ----------
    propensity : array-like of float
        Predicted probabilities in [0, 1] (e.g. a calibrator's predictions on backtest offers).
    outcome : array-like of bool
        Whether each offer was taken up.
    n_bins : int, default 10
        Number of equal-width bins.
    ax : matplotlib Axes, optional
        Draw on it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_calibration([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], n_bins=2)
    >>> fig.axes[0].get_title()
    'calibration'
    """
    table = calibration_table(propensity, outcome, n_bins)
    fig, (panel,) = figure_axes(ax)
    observed = table[Columns.observed].to_numpy()
    # Rounding can put a Wilson bound a hair on the wrong side of the observed share.
    errors = np.clip(
        np.vstack(
            [
                observed - table[Columns.ci_low].to_numpy(),
                table[Columns.ci_high].to_numpy() - observed,
            ]
        ),
        0.0,
        None,
    )
    panel.errorbar(table[Columns.propensity], observed, yerr=errors, marker="o", capsize=3)
    panel.plot([0, 1], [0, 1], linestyle="--", color="grey")
    panel.set_xlim(0, 1)
    panel.set_ylim(0, 1)
    panel.set_xlabel("predicted propensity")
    panel.set_ylabel("observed take-up")
    panel.set_title("calibration")
    fig.tight_layout()
    return fig


def plot_reliability(
    table: pd.DataFrame,
    *,
    error: float | None = None,
    title: str = "reliability",
    ax: Axes | None = None,
) -> Figure:
    """Draw a reliability plot: observed take-up against predicted propensity, with bin counts.

    Each bin of ``table`` is a point at its mean propensity and observed take-up, with the 95%
    interval of the take-up and its number of offers written beside it; light bars on a second
    axis show the counts. The axes are zoomed on the propensities' range (take-up of offers is
    often a few percent), and the dashed diagonal is perfect calibration.

    Parameters
    ----------
    table : pandas.DataFrame
        A calibration table (:func:`~crosssell.evaluation.calibration_table`,
        :meth:`BacktestResult.reliability <crosssell.evaluation.BacktestResult.reliability>`).
    error : float, optional
        An expected calibration error to show in the title.
    title : str, default "reliability"
    ax : matplotlib Axes, optional
        Draw on it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crosssell.evaluation import calibration_table
    >>> table = calibration_table([0.1, 0.1, 0.3, 0.3], [0, 0, 1, 0], n_bins=5)
    >>> fig = plot_reliability(table, error=0.1)
    >>> fig.axes[0].get_title()
    'reliability (ECE 0.100)'
    """
    fig, (panel,) = figure_axes(ax)
    predicted = table[Columns.propensity].to_numpy(np.float64)
    observed = table[Columns.observed].to_numpy(np.float64)
    count = table[Columns.n].to_numpy(np.int64)
    upper = table[Columns.upper].to_numpy(np.float64)
    lower = table[Columns.lower].to_numpy(np.float64)
    top = max(float(upper.max()) if upper.size else 1.0, float(observed.max(initial=0.0)), 1e-3)
    limit = min(1.0, 1.05 * top)
    bars = panel.twinx()
    bars.bar(lower, count, width=upper - lower, align="edge", color="lightgrey", alpha=0.6)
    bars.set_ylabel("offers in bin")
    bars.set_ylim(0, max(1, int(count.max(initial=0))) * 3.0)
    # the curve above the bars
    panel.set_zorder(bars.get_zorder() + 1)
    panel.patch.set_visible(False)
    # Rounding can put a Wilson bound a hair on the wrong side of the observed share.
    errors = np.clip(
        np.vstack(
            [
                observed - table[Columns.ci_low].to_numpy(np.float64),
                table[Columns.ci_high].to_numpy(np.float64) - observed,
            ]
        ),
        0.0,
        None,
    )
    panel.errorbar(predicted, observed, yerr=errors, marker="o", capsize=3, label="offers")
    for x, y, n in zip(predicted, observed, count, strict=True):
        panel.annotate(f"{n:,}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    panel.plot([0, limit], [0, limit], linestyle="--", color="grey", label="perfect calibration")
    panel.set_xlim(0, limit)
    panel.set_ylim(0, limit)
    panel.set_xlabel("predicted propensity")
    panel.set_ylabel("observed take-up")
    panel.set_title(title if error is None else f"{title} (ECE {error:.3f})")
    panel.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_suppression(
    suppressed: pd.DataFrame, offers: pd.DataFrame | None = None, *, ax: Axes | None = None
) -> Figure:
    """Draw the suppression funnel: pairs blocked by each rule, beside the offers made.

    Parameters
    ----------
    suppressed : pandas.DataFrame
        The suppression log (``Recommender.suppressed()``), with a ``rule`` column.
    offers : pandas.DataFrame, optional
        The offers made, drawn as the last bar.
    ax : matplotlib Axes, optional
        Draw on it.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> log = pd.DataFrame({"rule": ["open_complaint", "open_complaint", "contact_cap"]})
    >>> fig = plot_suppression(log)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['open_complaint', 'contact_cap']
    """
    counts = suppressed[Columns.rule].astype(str).value_counts()
    labels = counts.index.tolist()
    values = counts.to_numpy(dtype=np.int64).tolist()
    if offers is not None:
        labels.append("offered")
        values.append(int(offers.shape[0]))
    fig, (panel,) = figure_axes(ax)
    positions = np.arange(len(labels))
    panel.barh(
        positions,
        values,
        color=["tab:red"] * counts.shape[0] + ["tab:green"] * (len(labels) - counts.shape[0]),
    )
    panel.set_yticks(positions, labels)
    panel.invert_yaxis()
    panel.set_xlabel("(client, product) pairs")
    panel.set_title("suppressed by rule")
    fig.tight_layout()
    return fig
