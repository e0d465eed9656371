"""One self-contained HTML page of a backtest: tables, charts, and the tuning behind the model.

The page is a single file (inline CSS, charts embedded as base64 PNG, no script and no external
resource), so it can be mailed or archived with the model it describes. Charts need matplotlib
(the ``plot`` extra); without it the page keeps its tables and says that charts were left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import pandas as pd

from crosssell._calibrators import Calibrator
from crosssell._version import __version__
from crosssell.columns import Columns
from crosssell.evaluation import _common
from crosssell.evaluation.backtest import BacktestResult
from crosssell.evaluation.calibration import calibration_error, calibration_table
from crosssell.evaluation.holdout import LiftReport
from crosssell.evaluation.off_policy import OffPolicyResult
from crosssell.evaluation.tuning import TuneResult
from crosssell.html import _html

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["report"]

_MODEL: Final = "crosssell"
_ALL: Final = "all"
#: Metrics shown with their intervals in the fold table and drawn as curves.
_HEADLINE: Final = ("precision", "recall", "ndcg", "hit_rate")
_NAMES: Final = {
    "precision": "precision",
    "recall": "recall",
    "map": "MAP",
    "ndcg": "NDCG",
    "hit_rate": "hit rate",
    "value_captured": "value captured",
    "value_share": "share of added value",
    "coverage": "catalogue coverage",
}
_DASH: Final = "–"


# --------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 3) -> str:
    """Write a number for a table: fixed decimals for rates, thousands separators for money."""
    if value is None:
        return _DASH
    x = float(value)
    if np.isnan(x):
        return _DASH
    if np.isinf(x):
        return "∞" if x > 0 else "-∞"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def _ratio(value: Any) -> str:
    text = _num(value, 2)
    return text if text in (_DASH, "∞", "-∞") else f"{text}×"


def _span_text(low: Any, high: Any) -> str:
    if pd.isna(low) or pd.isna(high):
        return _DASH
    return f"{_num(low)}–{_num(high)}"


def _metric_label(name: str, k: int | None = None) -> str:
    label = _NAMES.get(name, name)
    return f"{label}@{k}" if k is not None else label


# --------------------------------------------------------------------------- sections


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{_html.esc(anchor)}">\n<h2>{_html.esc(heading)}</h2>\n{body}\n</section>'


def _para(text: str, cls: str = "") -> str:
    attr = f' class="{_html.esc(cls)}"' if cls else ""
    return f"<p{attr}>{_html.esc(text)}</p>"


def _models(result: BacktestResult) -> list[str]:
    return [str(m) for m in pd.unique(result.metrics[Columns.model])]


def _headline(result: BacktestResult) -> str:
    """One sentence a reader can quote: NDCG and recall at the deepest k, against the baseline."""
    summary = result.summary()
    k = max(result.k)
    models = _models(result)
    parts = []
    for name in ("ndcg", "recall"):
        row = summary[(summary[Columns.metric] == name) & (summary[Columns.k] == k)]
        if row.empty or _MODEL not in row.columns:
            continue
        text = f"{_metric_label(name, k)} {_num(row[_MODEL].iloc[0])}"
        if len(models) > 1 and models[1] in row.columns:
            text += f" against {_num(row[models[1]].iloc[0])} for {models[1]}"
            if Columns.lift in row.columns:
                text += f" (lift {_ratio(row[Columns.lift].iloc[0])})"
        parts.append(text)
    if not parts:
        return ""
    return f"Averaged over {result.folds.shape[0]} fold(s): " + "; ".join(parts) + "."


def _summary_table(result: BacktestResult) -> str:
    """Headline metrics in the open; the others folded away below them."""
    summary = result.summary()
    models = [c for c in summary.columns if c not in (Columns.metric, Columns.k, Columns.lift)]
    header = ["metric", "k", *models]
    has_lift = Columns.lift in summary.columns
    if has_lift:
        header.append("lift")
    numeric = [False, True, *([True] * (len(header) - 2))]

    def render(part: pd.DataFrame) -> str:
        rows = []
        for record in part.to_dict("records"):
            row = [_metric_label(str(record[Columns.metric])), str(record[Columns.k])]
            row += [_num(record[m]) for m in models]
            if has_lift:
                row.append(_ratio(record[Columns.lift]))
            rows.append(row)
        return str(_html.table(rows, header, numeric=numeric))

    main = summary[Columns.metric].isin(_HEADLINE)
    out = render(summary[main])
    if (~main).any():
        out += (
            "\n<details><summary>More metrics (MAP, value captured, coverage)</summary>\n"
            f"{render(summary[~main])}\n</details>"
        )
    return out


def _wide_rows(rows: pd.DataFrame, by: str) -> list[list[str]]:
    """Headline metrics of ``rows`` averaged over folds, one line per (``by``, model)."""
    wide = rows.pivot_table(
        index=[by, Columns.model],
        columns=Columns.metric,
        values=Columns.value,
        aggfunc="mean",
        sort=False,
    )
    out = []
    for key, line in wide.iterrows():
        group, model = cast("tuple[Any, Any]", key)
        out.append([str(group), str(model), *[_num(line.get(n, np.nan)) for n in _HEADLINE]])
    return out


def _type_table(result: BacktestResult) -> str:
    """Headline metrics at the deepest k for upsells and cross-sells apart."""
    k = max(result.k)
    m = result.metrics
    rows = m[(m[Columns.segment] == _ALL) & (m[Columns.k] == k) & m[Columns.metric].isin(_HEADLINE)]
    header = ["offer type", "model", *[_metric_label(n, k) for n in _HEADLINE]]
    numeric = [False, False, *([True] * len(_HEADLINE))]
    return str(_html.table(_wide_rows(rows, Columns.offer_type), header, numeric=numeric))


def _segment_tables(result: BacktestResult) -> str:
    if not (result.metrics[Columns.segment] != _ALL).any():
        return ""
    k = max(result.k)
    m = result.metrics
    rows = m[
        (m[Columns.offer_type] == _ALL)
        & (m[Columns.k] == k)
        & (m[Columns.metric].isin(_HEADLINE))
        & (m[Columns.segment] != _ALL)
    ]
    header = ["segment", "model", *[_metric_label(n, k) for n in _HEADLINE]]
    numeric = [False, False, *([True] * len(_HEADLINE))]
    table = _html.table(_wide_rows(rows, Columns.segment), header, numeric=numeric)
    return f"<h3>By segment</h3>\n{table}"


def _fold_tables(result: BacktestResult) -> str:
    folds = result.folds
    header = [
        "fold",
        "cutoff",
        "horizon end",
        "training rows",
        "clients",
        "products",
        "clients with an addition",
        "additions",
        "offers",
    ]
    columns = [
        Columns.training_rows,
        Columns.clients,
        Columns.products,
        Columns.clients_with_addition,
        Columns.additions,
        Columns.offers,
    ]
    body = [
        [
            str(record[Columns.fold]),
            _common.day(pd.Timestamp(record[Columns.cutoff])),
            _common.day(pd.Timestamp(record[Columns.horizon_end])),
            *[f"{int(record[c]):,}" for c in columns],
        ]
        for record in folds.to_dict("records")
    ]
    numeric = [True, False, False, *([True] * len(columns))]
    counts = _html.table(body, header, numeric=numeric)

    k = max(result.k)
    m = result.metrics
    rows = m[
        (m[Columns.offer_type] == _ALL)
        & (m[Columns.segment] == _ALL)
        & (m[Columns.k] == k)
        & (m[Columns.metric].isin(_HEADLINE))
    ]
    cutoffs = dict(zip(folds[Columns.fold], folds[Columns.cutoff], strict=True))
    with_interval = ("ndcg", "recall")
    plain: tuple[str, ...] = ()
    metric_header = ["fold", "cutoff", "model", "clients"]
    for name in with_interval:
        metric_header += [_metric_label(name, k), "95% interval"]
    metric_header += [_metric_label(name, k) for name in plain]
    metric_body = []
    for (fold, model), part in rows.groupby([Columns.fold, Columns.model], sort=False):
        by_name = part.set_index(Columns.metric)
        line = [
            str(fold),
            _common.day(pd.Timestamp(cutoffs[fold])),
            str(model),
            f"{int(part[Columns.n_clients].max()):,}",
        ]
        for name in (*with_interval, *plain):
            if name not in by_name.index:
                line += [_DASH, _DASH] if name in with_interval else [_DASH]
                continue
            cell = by_name.loc[name]
            line.append(_num(cell[Columns.value]))
            if name in with_interval:
                line.append(_span_text(cell[Columns.ci_low], cell[Columns.ci_high]))
        metric_body.append(line)
    metric_numeric = [True, False, False, *([True] * (len(metric_header) - 3))]
    metrics_table = _html.table(metric_body, metric_header, numeric=metric_numeric)
    note = _para(
        "Averages run over the clients with at least one addition in the horizon; the "
        "intervals are 95% bootstrap intervals over those clients (a dash when the backtest "
        "ran without a bootstrap).",
        "meta",
    )
    return f"{counts}\n<h3>Metrics by fold</h3>\n{note}\n{metrics_table}" + _calibration_by_fold(
        result
    )


def _calibration_by_fold(result: BacktestResult) -> str:
    """Tabulate the calibration error of each model's offered propensities, fold by fold."""
    table = result.calibration()
    if table.empty:
        return ""
    header = ["model", "fold", "cutoff", "offers", "mean propensity", "taken up", "ECE"]
    body = [
        [
            str(r[Columns.model]),
            _ALL if pd.isna(r[Columns.fold]) else str(r[Columns.fold]),
            _DASH if pd.isna(r[Columns.cutoff]) else _common.day(pd.Timestamp(r[Columns.cutoff])),
            f"{int(r[Columns.n]):,}",
            _num(r[Columns.propensity]),
            _num(r[Columns.observed]),
            _num(r[Columns.calibration_error]),
        ]
        for r in table.to_dict("records")
    ]
    note = _para(
        "Expected calibration error of the propensities each model reported on its offers "
        "(ten equal-width bins), against whether the client took the product within the "
        "horizon: 0 is perfectly calibrated. Propensities of a scorer that is not calibrated "
        "are scaled scores, and their error says nothing about its ranking.",
        "meta",
    )
    numeric = [False, True, False, True, True, True, True]
    return f"\n<h3>Calibration by fold</h3>\n{note}\n{_html.table(body, header, numeric=numeric)}"


def _tune_section(tune: TuneResult) -> tuple[str, Callable[[Any], Any] | None]:
    table = tune.results.sort_values(Columns.rank, kind="stable")
    body = [
        [
            str(r[Columns.rank]),
            str(r[Columns.trial]),
            str(r[Columns.params]),
            _num(r[Columns.selection_score], 4),
            _num(r[Columns.held_out_score], 4),
            f"{float(r[Columns.fit_seconds]):.1f}",
        ]
        for r in table.to_dict("records")
    ]
    header = ["rank", "trial", "configuration", "selection score", "held-out score", "seconds"]
    selection = ", ".join(_common.day(c) for c in tune.selection_cutoffs)
    intro = _para(
        f"{table.shape[0]} configuration(s) were backtested. The one with the best mean "
        f"{tune.metric} on the selection folds ({selection}) was chosen; its {tune.metric} on "
        f"the held-out fold ({_common.day(tune.held_out_cutoff)}), which took no part in the "
        "choice, "
        f"is {_num(tune.held_out, 4)}. Chosen: {table[Columns.params].iloc[0]}."
    )
    out = intro + "\n" + _html.table(body, header, numeric=[True, True, False, True, True, True])
    return out, (lambda ax: tune.plot(ax=ax))


# --------------------------------------------------------------------------- charts


def _figure(draw: Callable[[Any], Any], size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    # A bare Figure stays out of pyplot's global registry: nothing to close, no GUI backend.
    fig = Figure(figsize=size)
    draw(fig.add_subplot())
    fig.tight_layout()
    return fig


def _metric_grid(result: BacktestResult) -> Figure:
    from matplotlib.figure import Figure

    from crosssell.evaluation.plots import plot_metrics

    present = set(result.metrics[Columns.metric])
    names = [n for n in _HEADLINE if n in present]
    fig = Figure(figsize=(8.0, 6.4))
    axes: Sequence[Axes] = fig.subplots(2, 2).ravel().tolist()
    m = result.metrics
    rows = m[(m[Columns.offer_type] == _ALL) & (m[Columns.segment] == _ALL)]
    for ax, name in zip(axes, names, strict=False):
        plot_metrics(result, [name], ax=ax)
        if len(result.k) == 1:
            # a band over a single k is invisible: draw the interval as an error bar instead
            part = rows[rows[Columns.metric] == name].groupby(Columns.model, sort=False)
            means = part[[Columns.value, Columns.ci_low, Columns.ci_high]].mean()
            lines = ax.get_lines()
            k = float(result.k[0])
            for i, (line, (_, mean)) in enumerate(zip(lines, means.iterrows(), strict=False)):
                # side by side, so that overlapping intervals stay readable
                x = k + 0.15 * (i - (len(lines) - 1) / 2)
                line.set_xdata([x])
                if pd.notna(mean[Columns.ci_low]):
                    below = max(mean[Columns.value] - mean[Columns.ci_low], 0.0)
                    above = max(mean[Columns.ci_high] - mean[Columns.value], 0.0)
                    ax.errorbar(
                        [x],
                        line.get_ydata(),
                        yerr=[[below], [above]],
                        color=line.get_color(),
                        capsize=4,
                    )
            ax.set_xlim(k - 1.0, k + 1.0)
    for i, ax in enumerate(axes):
        legend = ax.get_legend()
        if i >= len(names):
            ax.set_visible(False)
        elif i > 0 and legend is not None:
            legend.remove()
    fig.tight_layout()
    return fig


def _calibration_panel(
    propensity: np.ndarray[Any, Any], added: np.ndarray[Any, Any], ax: Any
) -> None:
    """Draw the reliability plot (with the offers in each bin) zoomed on the propensities' range.

    Take-up of cross-sell offers is a few percent; ten bins over [0, 1] would put every offer
    in the first bin and draw a single point in a corner.
    """
    from crosssell.evaluation.plots import plot_reliability

    top = float(np.max(propensity)) if propensity.size else 1.0
    n_bins = int(np.clip(np.ceil(10.0 / max(top, 1e-3)), 10, 1000))
    table = calibration_table(propensity, added, n_bins)
    plot_reliability(table, error=calibration_error(propensity, added), title="calibration", ax=ax)


def _calibration_data(
    result: BacktestResult, calibration: Calibrator | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], str] | None:
    offers = result.offers
    offers = offers[offers[Columns.model] == _MODEL]
    if offers.empty:
        return None
    added = offers[Columns.added].to_numpy(np.float64)
    if calibration is not None:
        scores = offers[Columns.score].to_numpy(np.float64)
        keep = np.isfinite(scores)
        propensity = np.asarray(calibration.predict(scores[keep]), dtype=np.float64)
        caption = (
            f"Propensities of the given calibrator ({type(calibration).__name__}) on the "
            "backtest offers of crosssell, against whether each offer was taken up. A calibrator "
            "fitted on these same folds looks better here than it will on new data."
        )
        return np.clip(propensity, 0.0, 1.0), added[keep], caption
    if Columns.propensity not in offers.columns:
        return None
    propensity = offers[Columns.propensity].to_numpy(np.float64)
    keep = np.isfinite(propensity)
    if not keep.any():
        return None
    caption = (
        "The propensities the recommender reported on its backtest offers, against whether "
        "each offer was taken up, with the offers in each bin. Unless the scorer gives "
        "probabilities (the Ranker) or a calibrator was set, they are scaled scores, and their "
        "distance from the diagonal says nothing about the model."
    )
    return np.clip(propensity[keep], 0.0, 1.0), added[keep], caption


def _charts(
    result: BacktestResult,
    calibration: Calibrator | None,
    suppressed: pd.DataFrame | None,
) -> str:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return _para(
            "Charts were left out: they need matplotlib (pip install 'crosssell[plot]').", "meta"
        )
    from crosssell.evaluation.plots import plot_gain, plot_suppression

    models = _models(result)
    blocks = [
        "<h3>Metrics at each list length</h3>",
        _para(
            "Each model's metric averaged over folds at each k, with the bootstrap band; "
            f"{' against '.join(models)}.",
            "meta",
        ),
        _html.figure_img(_metric_grid(result), "metric@k curves"),
        "<h3>Cumulative gain</h3>",
        _para(
            "Offers of all folds ranked by score, best first: the share of taken-up offers "
            "found against the share of offers made. The dashed diagonal is random ordering.",
            "meta",
        ),
        _html.figure_img(
            _figure(lambda ax: plot_gain(result, ax=ax), (5.6, 4.0)), "cumulative gain chart"
        ),
    ]
    data = _calibration_data(result, calibration)
    if data is not None:
        propensity, added, caption = data
        error = calibration_error(propensity, added)
        blocks += [
            "<h3>Calibration</h3>",
            _para(f"{caption} Expected calibration error: {_num(error)}.", "meta"),
            _html.figure_img(
                _figure(lambda ax: _calibration_panel(propensity, added, ax), (5.6, 4.0)),
                "calibration curve",
            ),
        ]
    if suppressed is not None and Columns.rule in suppressed.columns and not suppressed.empty:
        offers = result.offers
        last = offers[
            (offers[Columns.model] == _MODEL) & (offers[Columns.fold] == offers[Columns.fold].max())
        ]
        blocks += [
            "<h3>Suppression</h3>",
            _para(
                f"(Client, product) pairs blocked by each rule of the policy "
                f"({suppressed.shape[0]:,} in all), beside the offers of the last fold.",
                "meta",
            ),
            _html.figure_img(
                _figure(
                    lambda ax: plot_suppression(suppressed, last, ax=ax),
                    (6.4, 0.9 + 0.35 * (suppressed[Columns.rule].nunique() + 1)),
                ),
                "suppression funnel",
            ),
        ]
    return "\n".join(blocks)


# --------------------------------------------------------------------------- the page


def report(
    result: BacktestResult,
    path: str | os.PathLike[str],
    *,
    title: str = "crosssell backtest",
    tune: TuneResult | None = None,
    calibration: Calibrator | None = None,
    suppressed: pd.DataFrame | None = None,
    lift: LiftReport | None = None,
    off_policy: OffPolicyResult | None = None,
) -> Path:
    """Write a backtest (and the tuning behind it) as one self-contained HTML file.

    The page holds the summary table (each metric at each k, averaged over folds, with the lift
    over the baseline), the fold details with 95% bootstrap intervals, upsell and cross-sell
    apart, segments when the backtest had them, and charts embedded as PNG: metric@k curves
    against the baseline, cumulative gain, the calibration curve (of ``calibration`` when given,
    else of the propensities the offers carry) and the suppression funnel (when ``suppressed``
    is given). With ``tune``, the tuning table and its selection-against-held-out chart follow.
    All text is escaped; nothing outside the file is referenced. The file is written to a
    temporary name beside ``path`` and renamed, so a reader never sees half a page.

    Parameters
    ----------
    result : BacktestResult
        What :func:`~crosssell.evaluation.backtest` returned.
    path : str or path-like
        The HTML file to write; missing folders are created, an existing file is replaced.
    title : str, default "crosssell backtest"
        Page title and heading.
    tune : TuneResult, optional
        What :func:`~crosssell.evaluation.tune` returned, to show how the model was chosen.
    calibration : Calibrator, optional
        A fitted calibrator (e.g. from :func:`~crosssell.evaluation.calibrate`); its
        propensities on the backtest offers are drawn against the take-up.
    suppressed : pandas.DataFrame, optional
        A suppression log (``Recommender.suppressed()``) for the funnel chart.
    lift : LiftReport, optional
        What :func:`~crosssell.evaluation.lift` measured against a holdout group: a section
        with the arms side by side, overall and per family, and its chart.
    off_policy : OffPolicyResult, optional
        What :func:`~crosssell.evaluation.off_policy` estimated for a candidate on a decision
        log: a section "What this change would have done" with the estimates and, per rule and
        lever, the logged offers the candidate drops, keeps and adds.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        If ``result`` or ``tune`` is of the wrong type.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from crosssell.evaluation import backtest
    >>> from crosssell.datasets import tiny
    >>> from crosssell.recommender import Recommender
    >>> result = backtest(Recommender(), tiny(), "2024-06-30", "60D", k=(1, 2),
    ...                   n_boot=0, progress=False)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = report(result, pathlib.Path(folder) / "backtest.html", title="Q2 <review>")
    ...     text = page.read_text(encoding="utf-8")
    >>> "<title>Q2 &lt;review&gt;</title>" in text, "data:image/png;base64," in text
    (True, True)
    """
    if not isinstance(result, BacktestResult):
        raise TypeError(
            "The 'result' parameter of report must be a BacktestResult (what backtest "
            f"returns). Got {type(result).__name__} instead."
        )
    if tune is not None and not isinstance(tune, TuneResult):
        raise TypeError(
            "The 'tune' parameter of report must be a TuneResult (what tune returns) or None. "
            f"Got {type(tune).__name__} instead."
        )
    folds = result.folds
    cutoffs = ", ".join(_common.day(pd.Timestamp(c)) for c in folds[Columns.cutoff])
    meta = (
        f"crosssell {__version__} · {folds.shape[0]} fold(s), cutoffs {cutoffs} · horizon "
        f"{_common.span(result.horizon)} · k = {', '.join(str(k) for k in result.k)} · models: "
        f"{', '.join(_models(result))}"
    )
    sections = [
        f"<h1>{_html.esc(title)}</h1>",
        _para(meta, "meta"),
        _para(_headline(result)),
        _section(
            "summary",
            "Summary",
            _para(
                "Each metric at each k, averaged over folds; lift is the first model over the "
                "baseline. Averages run over clients who added at least one product.",
                "meta",
            )
            + "\n"
            + _summary_table(result),
        ),
        _section("charts", "Charts", _charts(result, calibration, suppressed)),
        _section(
            "offer-types",
            "Upsell and cross-sell",
            _para(
                f"The headline metrics at k = {max(result.k)} scored against upsells and "
                "cross-sells apart ('all' scores against every addition).",
                "meta",
            )
            + "\n"
            + _type_table(result)
            + _segment_tables(result),
        ),
        _section("folds", "Folds", _fold_tables(result)),
    ]
    if tune is not None:
        text, draw = _tune_section(tune)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            draw = None
        if draw is not None:
            text += "\n" + _html.figure_img(_figure(draw, (5.6, 4.0)), "selection against held-out")
        sections.append(_section("tuning", "Tuning", text))
    if lift is not None:
        sections.append(_section("lift", "Lift against the holdout", _lift_section(lift)))
    if off_policy is not None:
        sections.append(
            _section("off-policy", "What this change would have done", _change_section(off_policy))
        )
    document = _html.page(title, "\n".join(sections))
    return Path(_html.write_page(path, document))


def _change_section(result: OffPolicyResult) -> str:
    """Render an off-policy estimate: the value per estimator, then the changes per rule."""
    est = result.estimates
    rows = [
        [name.upper(), _num(r.value), _span_text(r.ci_low, r.ci_high)]
        for name, r in zip(est.index, est.itertuples(index=False), strict=True)
    ]
    text = (
        _para(
            f"The candidate's {result.reward.replace('_', ' ')} per client, estimated on "
            f"{result.n_offers:,} logged offers to {result.n_clients:,} clients (as logged: "
            f"{_num(result.logged_value)}; coverage {_num(result.coverage)}, effective sample "
            f"size {result.effective_sample_size:,.0f}).",
            "meta",
        )
        + "\n"
        + _html.table(rows, ["estimator", "value", "interval"], numeric=[False, True, False])
    )
    changes = result.changes
    if len(changes):
        crows = [
            [
                r.change,
                r.cause,
                f"{r.offers:,}",
                f"{r.clients:,}",
                _num(r.logged_reward),
                _num(r.predicted_reward),
            ]
            for r in changes.itertuples(index=False)
        ]
        text += (
            "\n"
            + _para(
                "Per rule and lever: the logged offers the candidate drops (and what drops "
                "them), keeps, and the offers it adds; what they earned as logged and what "
                "the outcome model expects of them.",
                "meta",
            )
            + "\n"
            + _html.table(
                crows,
                ["change", "cause", "offers", "clients", "logged", "expected"],
                numeric=[False, False, True, True, True, True],
            )
        )
    return text


def _lift_section(lift: LiftReport) -> str:
    """Render the measured lift: the arms side by side per metric and family, and the chart."""
    days = int(lift.horizon / pd.Timedelta(days=1))
    level = f"{round(lift.level * 100)}%"
    header = ["", "metric", "treated", "holdout", "lift", f"{level} interval", "p", "clients"]
    numeric = [False, False, True, True, True, False, True, True]
    groups = [("all clients", lift.summary)] + [
        (str(f), g) for f, g in lift.by_family.groupby("family", sort=True)
    ]
    rows = [
        [
            name,
            r.metric,
            _num(r.treated),
            _num(r.holdout),
            _num(r.lift),
            _span_text(r.ci_low, r.ci_high),
            _num(r.p_value),
            f"{r.n_treated} + {r.n_holdout}",
        ]
        for name, frame in groups
        for r in frame.itertuples(index=False)
    ]
    text = (
        _para(
            f"Clients with a (would-be) offer, treated against held out; outcomes within {days} "
            f"days of the decision, read from the book. Intervals: percentile bootstrap "
            "over clients within each arm.",
            "meta",
        )
        + "\n"
        + _html.table(rows, header, numeric=numeric)
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return text
    return text + "\n" + _html.figure_img(lift.plot(), "lift against the holdout per family")
