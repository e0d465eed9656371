"""Backtest of a retention model: who left after each cutoff, against what it predicted.

At each cutoff the model is fitted on the Book as it stood then, scores the clients at risk, and
is compared with what the whole Book says happened within the horizon, beside two rules: the
account plan's risk-signal count, and "the contract ends soon" alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation._common import cutoff_list, day, to_horizon
from crosssell.evaluation._reliability import calibration_error
from crosssell.retention import RetentionModel, observed_departures

__all__ = ["RetentionBacktest", "backtest_retention", "concordance"]

FloatArray = npt.NDArray[np.float64]

#: Metrics of :func:`backtest_retention`, in table order.
METRICS: Final = (
    "roc_auc",
    "pr_auc",
    "brier",
    "calibration_error",
    "c_index",
    "value_recall_top_decile",
)
_MODEL: Final = "model"
_SIGNALS: Final = "risk signals"
_ENDS_SOON: Final = "contract ends soon"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionBacktest:
    """What :func:`backtest_retention` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (fold, model, metric): ``fold`` (a cutoff date, or "all" for the folds
        pooled), ``model`` ("model", "risk signals", "contract ends soon"), ``metric``,
        ``value``, ``ci_low``, ``ci_high`` (95% bootstrap over clients; NaN where a baseline
        gives no probability) and ``n_clients``.
    scores : pandas.DataFrame
        One row per (fold, client at risk): ``fold``, ``client_id``, ``left`` (within the
        horizon), ``days`` (to leaving, or to the end of what is known, at most 365),
        ``departed`` (whether ``days`` is a departure), ``annual_value``, ``p_leave`` and the
        two baselines' scores.

    Examples
    --------
    >>> import crosssell as cs
    >>> result = cs.evaluation.backtest_retention(
    ...     cs.datasets.demo(), model=cs.RetentionModel(n_estimators=20),
    ...     cutoffs=["2024-09-30"], horizon="180D", n_bootstrap=20)
    >>> sorted(result.table["model"].unique())
    ['contract ends soon', 'model', 'risk signals']
    """

    table: pd.DataFrame
    scores: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """Return the pooled metrics as a metric x model table of values.

        Returns
        -------
        pandas.DataFrame
            Rows are metrics, columns the model and its baselines.

        Examples
        --------
        >>> import crosssell as cs
        >>> result = cs.evaluation.backtest_retention(
        ...     cs.datasets.demo(), model=cs.RetentionModel(n_estimators=20),
        ...     cutoffs=["2024-09-30"], n_bootstrap=20)
        >>> result.summary().columns.tolist()
        ['model', 'risk signals', 'contract ends soon']
        """
        pooled = self.table[self.table[Columns.fold] == "all"]
        wide = pooled.pivot_table(
            index=Columns.metric, columns=Columns.model, values="value", dropna=False
        )
        return wide.reindex(index=list(METRICS), columns=[_MODEL, _SIGNALS, _ENDS_SOON])


def concordance(risk: npt.ArrayLike, days: npt.ArrayLike, event: npt.ArrayLike) -> float:
    """Harrell's C-index: how often, of two clients, the one that left first had the higher risk.

    Pairs are comparable when the earlier of the two times is a departure; tied risks count
    one half.

    Parameters
    ----------
    risk : array-like of float
        Higher means expected to leave sooner.
    days : array-like of float
        Time to leaving, or to the end of what is known (censored).
    event : array-like of bool
        Whether ``days`` is a departure.

    Returns
    -------
    float
        In [0, 1]; 0.5 is chance. NaN when no pair is comparable.

    Examples
    --------
    >>> concordance([0.9, 0.5, 0.1], [10, 20, 30], [True, True, False])
    1.0
    """
    r = np.asarray(risk, dtype=np.float64)
    t = np.asarray(days, dtype=np.float64)
    e = np.asarray(event, dtype=bool)
    order = np.argsort(t, kind="stable")
    r, t, e = r[order], t[order], e[order]
    good = 0.0
    pairs = 0.0
    for time in np.unique(t[e]):
        at = e & (t == time)
        later = np.sort(r[t > time])
        if later.size == 0:
            continue
        below = np.searchsorted(later, r[at], side="left")
        tied = np.searchsorted(later, r[at], side="right") - below
        good += float(below.sum()) + 0.5 * float(tied.sum())
        pairs += float(later.size) * int(at.sum())
    return good / pairs if pairs else float("nan")


def _auc(score: FloatArray, y: FloatArray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < y.size else float("nan")


def _pr_auc(score: FloatArray, y: FloatArray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if y.sum() > 0 else float("nan")


def _value_recall(score: FloatArray, y: FloatArray, value: FloatArray) -> float:
    """Share of the value that left held by the tenth of clients with the highest scores."""
    lost = np.nan_to_num(value) * y
    if lost.sum() <= 0:
        return float("nan")
    n_top = max(1, int(np.ceil(0.1 * score.size)))
    top = np.lexsort((np.arange(score.size), -score))[:n_top]
    return float(lost[top].sum() / lost.sum())


def _metrics(
    score: FloatArray,
    y: FloatArray,
    days: FloatArray,
    departed: npt.NDArray[np.bool_],
    value: FloatArray,
    *,
    probability: bool,
) -> dict[str, float]:
    return {
        "roc_auc": _auc(score, y),
        "pr_auc": _pr_auc(score, y),
        "brier": float(np.mean((score - y) ** 2)) if probability else float("nan"),
        "calibration_error": calibration_error(score, y) if probability else float("nan"),
        "c_index": concordance(score, days, departed),
        "value_recall_top_decile": _value_recall(score, y, value),
    }


def backtest_retention(
    book: Book,
    *,
    model: RetentionModel | None = None,
    cutoffs: Any,
    horizon: Any = None,
    n_bootstrap: int = 200,
    random_state: int = 0,
) -> RetentionBacktest:
    """Fit ``model`` at each cutoff and compare its risks with who actually left.

    At each cutoff the model (a fresh clone) is fitted on the Book, reading nothing later; the
    clients at risk then are scored, and the outcome within ``horizon`` is read from the whole
    Book (:func:`crosssell.retention.observed_departures`). Beside it, two baselines score the
    same clients: the account plan's risk-signal count
    (:func:`crosssell.account_plan.risk_signals`) and "the contract ends soon" (fewer days to
    the next contract end is riskier; for purchases, more days since the last purchase).

    Metrics: ROC AUC, PR AUC (average precision), Brier score and expected calibration error
    (the model only: the baselines give no probability), Harrell's C-index of the risk against
    the time to leaving (censored at the end of the Book or 12 months, whichever is first), and
    the value-weighted recall of the top decile: of the annual value that left, the share held
    by the 10% of clients scored riskiest.

    Parameters
    ----------
    book : Book
    model : RetentionModel or None, default None
        None: ``RetentionModel()`` with ``horizon``.
    cutoffs : date-like or sequence of date-like
        Starts of the folds. Each plus the horizon and the model's ``grace`` must be within
        the Book.
    horizon : str, timedelta or None, default None
        None: the model's horizon. Otherwise it replaces the model's.
    n_bootstrap : int, default 200
        Resamples of clients for the 95% intervals.
    random_state : int, default 0
        Seed of the bootstrap (the same resamples serve the model and the baselines).

    Returns
    -------
    RetentionBacktest

    Raises
    ------
    ValueError
        If a cutoff leaves no room for the horizon in the Book, or the fit fails there.

    Examples
    --------
    >>> import crosssell as cs
    >>> result = cs.evaluation.backtest_retention(
    ...     cs.datasets.demo(), model=cs.RetentionModel(n_estimators=20),
    ...     cutoffs=["2024-09-30"], n_bootstrap=20)
    >>> result.table.columns.tolist()
    ['fold', 'model', 'metric', 'value', 'ci_low', 'ci_high', 'n_clients']
    """
    template = model if model is not None else RetentionModel()
    if horizon is not None:
        template = template.clone().set_params(
            horizon=to_horizon(horizon, owner="backtest_retention")
        )
    span = pd.Timedelta(template.horizon)
    folds = cutoff_list(cutoffs)
    last = book.dates[1].normalize()
    from crosssell.rules._common import holds_purchases

    grace = pd.Timedelta(0) if holds_purchases(book) else pd.Timedelta(template.grace)
    parts = []
    for cut in folds:
        if cut + span + grace > last:
            raise ValueError(
                f"backtest_retention: cutoff {day(cut)} + horizon {span.days} days + grace "
                f"{grace.days} days is after the Book's last date ({day(last)}): the outcome "
                f"cannot be observed. Use a cutoff on or before {day(last - span - grace)}."
            )
        parts.append(_fold(book, template, cut))
    scores = pd.concat(parts, ignore_index=True)
    rng = np.random.default_rng(random_state)
    rows = []
    groups = [(day(c), scores[scores[Columns.fold] == day(c)]) for c in folds]
    if len(folds) > 1:
        groups.append(("all", scores))
    else:
        groups = [("all", scores), *groups]
    for label, frame in groups:
        rows.extend(_fold_table(label, frame, int(n_bootstrap), rng))
    table = pd.DataFrame(rows)
    return RetentionBacktest(table=table, scores=scores)


def _fold(book: Book, template: RetentionModel, cut: pd.Timestamp) -> pd.DataFrame:
    # the plan (and the recommender behind it) is imported only when a backtest runs
    from crosssell.account_plan import risk_signals

    fitted = template.clone().fit(book, cut)
    risk = fitted.predict()
    truth = observed_departures(
        book, cut, template.horizon, grace=template.grace, lapse=template.lapse
    )
    frame = truth.merge(risk, on=Columns.client, how="inner")
    signals = risk_signals(book, cut)
    frame = frame.merge(signals, on=Columns.client, how="left")
    from crosssell._retention_features import CLIENT_FEATURES, BookArrays, client_features

    arrays = BookArrays.of(
        book.known_at(cut),
        cut,
        lapse=int(pd.Timedelta(template.lapse or template.horizon).days),
        purchases=fitted.purchases_,
        satisfaction_event=str(template.satisfaction_event),
        observed_ends=template.end_dates == "observed",
    )
    grace = 0 if fitted.purchases_ else int(pd.Timedelta(template.grace).days)
    snap = client_features(arrays, arrays.as_of, grace=grace)
    if fitted.purchases_:
        soon = snap.x[:, CLIENT_FEATURES.index("days_since_last_start")]
    else:
        soon = -snap.x[:, CLIENT_FEATURES.index("days_to_next_end")]
    # no end date: never ends soon
    soon = np.where(np.isfinite(soon), soon, -1e9)
    idx = book.client_ids.to_index(frame[Columns.client])
    # the C-index reads departures up to 12 months or the Book's end, whichever is first
    known_days = (book.dates[1].normalize() - cut).days - grace
    cap = min(known_days, 365)
    raw_days = frame["days"].to_numpy(np.float64)
    departed = (raw_days < known_days) & (raw_days <= cap)
    return pd.DataFrame(
        {
            Columns.fold: day(cut),
            Columns.client: frame[Columns.client].to_numpy(),
            "left": frame["left"].to_numpy(bool),
            "days": np.minimum(raw_days, cap),
            "departed": departed,
            Columns.annual_value: frame[Columns.annual_value].to_numpy(np.float64),
            Columns.p_leave: frame[Columns.p_leave].to_numpy(np.float64),
            _SIGNALS: frame["risk_signals"].fillna(0).to_numpy(np.float64),
            _ENDS_SOON: soon[np.asarray(idx)],
        }
    )


def _fold_table(
    label: str, frame: pd.DataFrame, n_bootstrap: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    y = frame["left"].to_numpy(np.float64)
    days = frame["days"].to_numpy(np.float64)
    departed = frame["departed"].to_numpy(bool)
    value = frame[Columns.annual_value].to_numpy(np.float64)
    n = len(frame)
    draws = [rng.integers(0, n, n) for _ in range(n_bootstrap)] if n else []
    out = []
    for name, column, prob in (
        (_MODEL, Columns.p_leave, True),
        (_SIGNALS, _SIGNALS, False),
        (_ENDS_SOON, _ENDS_SOON, False),
    ):
        score = frame[column].to_numpy(np.float64)
        point = _metrics(score, y, days, departed, value, probability=prob)
        boots = [
            _metrics(score[d], y[d], days[d], departed[d], value[d], probability=prob)
            for d in draws
        ]
        for metric in METRICS:
            samples = np.array([b[metric] for b in boots], dtype=np.float64)
            samples = samples[np.isfinite(samples)]
            lo, hi = (
                (float(np.quantile(samples, 0.025)), float(np.quantile(samples, 0.975)))
                if samples.size
                else (float("nan"), float("nan"))
            )
            out.append(
                {
                    Columns.fold: label,
                    Columns.model: name,
                    Columns.metric: metric,
                    "value": point[metric],
                    Columns.ci_low: lo,
                    Columns.ci_high: hi,
                    Columns.n_clients: n,
                }
            )
    return out
