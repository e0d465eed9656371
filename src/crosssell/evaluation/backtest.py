"""Temporal backtest: fit as of past cutoffs, compare the offers with what clients then added.

For every cutoff the recommender is cloned and fitted on the book as it stood at the cutoff
(contracts started later and events dated later are removed before fitting, on top of the
recommender's own ``as_of``), asked for offers for every client holding something at the cutoff,
and scored against the additions of the following horizon. The policy is replayed at each
cutoff; a popularity recommender with the same policy runs beside it as the baseline, ranking
offers by how many clients hold each product at the cutoff, blind to product values.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._params import Interval, validate_params
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import _common
from crosssell.evaluation._additions import AdditionArrays, addition_arrays
from crosssell.evaluation._common import HorizonLike
from crosssell.evaluation._reliability import calibration_error, calibration_table
from crosssell.evaluation.metrics import evaluate
from crosssell.evaluation.plots import plot_metrics, plot_reliability

__all__ = ["BacktestResult", "backtest"]

_MODEL: Final = "crosssell"
_BASELINE: Final = "popularity"
_CUSTOM_BASELINE: Final = "baseline"
_ALL: Final = "all"
_UPSELL: Final = "upsell"
_CROSS_SELL: Final = "cross_sell"
_UNKNOWN_SEGMENT: Final = "unknown"

_METRIC_COLUMNS: Final = (
    Columns.fold,
    Columns.model,
    Columns.offer_type,
    Columns.segment,
    Columns.metric,
    Columns.k,
    Columns.value,
    Columns.ci_low,
    Columns.ci_high,
    Columns.n_clients,
)
_OFFER_COLUMNS: Final = (
    Columns.client,
    Columns.product,
    Columns.offer_type,
    Columns.score,
    Columns.propensity,
    Columns.value,
    Columns.rank,
)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class BacktestResult:
    """What a :func:`backtest` measured, fold by fold.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Tidy: one row per (fold, model, offer_type, segment, metric, k) with columns ``fold``,
        ``model`` (``"crosssell"`` or ``"popularity"``), ``offer_type`` (``"all"``,
        ``"upsell"``, ``"cross_sell"``), ``segment`` (``"all"`` or a segment value), ``metric``,
        ``k``, ``value``, ``ci_low``, ``ci_high`` (bootstrap over clients) and ``n_clients``
        (clients with at least one addition, over whom the averages run).
    folds : pandas.DataFrame
        One row per cutoff: ``fold``, ``cutoff``, ``horizon_end``, ``training_rows`` (contracts
        started on or before the cutoff), ``clients`` (holding something at the cutoff, the
        clients offers were asked for), ``products`` (held by someone at the cutoff),
        ``clients_with_addition``, ``additions`` and ``offers`` (made by the recommender).
    offers : pandas.DataFrame
        Every offer made, with ``fold``, ``cutoff``, ``model``, ``client_id``, ``product_id``,
        ``offer_type``, ``score``, ``propensity``, ``value``, ``rank`` and ``added`` (whether the
        client added that product within the horizon); the material of calibration.
    truth : pandas.DataFrame
        What each fold was scored against: one row per (fold, client, product) added within the
        horizon by a client active at the cutoff, with ``fold``, ``client_id``, ``product_id``,
        ``offer_type`` and ``value``. With :attr:`offers` it gives each client's metric, which
        :func:`~crosssell.evaluation.compare` pairs across models.
    horizon : pandas.Timedelta
        The observation window after each cutoff.
    k : tuple of int
        The list lengths evaluated.
    targeting : pandas.DataFrame
        With ``backtest(..., decisions=log)``: whether each model's score at the cutoff orders
        the decisions of the fold's window toward those that proposing moved. One row per
        (fold, model, measure) with ``value``; the measures are ``qini`` and ``auuc`` (per
        decision, see :mod:`crosssell.evaluation.uplift`), ``top_decile_uplift`` (treated
        minus holdout take-up among the top tenth by score), ``top_decile_added`` and
        ``top_decile_share_of_added`` (of the take-ups proposing to all adds), and the
        ``treated`` and ``holdout`` decisions counted. Empty without ``decisions``.
    qini : pandas.DataFrame
        The Qini and uplift curves behind :attr:`targeting`
        (:func:`~crosssell.evaluation.uplift.qini_curve`), with ``fold`` and ``model``.

    Examples
    --------
    >>> from crosssell.datasets import tiny
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import Popularity
    >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
    ...                   "60D", k=(1, 2), n_boot=0, progress=False)
    >>> result.summary().head(2)
          metric  k  crosssell  popularity  lift
    0  precision  1        0.0         0.0   NaN
    1  precision  2        0.5         0.5   1.0
    """

    metrics: pd.DataFrame
    folds: pd.DataFrame
    offers: pd.DataFrame
    horizon: pd.Timedelta
    k: tuple[int, ...]
    truth: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    targeting: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    qini: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        cutoffs = ", ".join(str(pd.Timestamp(c).date()) for c in self.folds[Columns.cutoff])
        models = ", ".join(str(m) for m in self.metrics["model"].unique())
        return (
            f"BacktestResult(cutoffs=[{cutoffs}], horizon={self.horizon.days}D, "
            f"k={self.k}, models=[{models}])"
        )

    def _repr_html_(self) -> str:
        """Show the summary with the lift, and the curves when matplotlib is there."""
        from crosssell._html import card, figure_png

        cutoffs = ", ".join(str(pd.Timestamp(c).date()) for c in self.folds[Columns.cutoff])
        facts = [
            ("cutoffs", cutoffs),
            ("horizon", f"{self.horizon.days} days"),
            ("clients with an addition", f"{int(self.folds['clients_with_addition'].sum()):,}"),
        ]
        png = None
        try:
            png = figure_png(self.plot(metrics=("ndcg", "recall")))
        except (ImportError, ValueError):
            png = None  # no plot extra, or nothing to draw: the table alone
        tables = [("summary(): averages over folds", self.summary())]
        if not self.targeting.empty:
            tables.append(("uplift_summary(): targeting the decisions, over folds",
                           self.uplift_summary()))  # fmt: skip
        return card("BacktestResult", facts, tables, png=png)

    def summary(self, offer_type: str = "all", segment: str = "all") -> pd.DataFrame:
        """Average each metric at each ``k`` over folds, by model, with the lift over the baseline.

        Parameters
        ----------
        offer_type : {"all", "upsell", "cross_sell"}, default "all"
            Which additions to score against.
        segment : str, default "all"
            A segment value, when the backtest was split by segment.

        Returns
        -------
        pandas.DataFrame
            Columns ``metric``, ``k``, one column per model (``crosssell``, ``popularity``) and
            ``lift`` (crosssell over popularity; only with a baseline).

        Examples
        --------
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import Popularity
        >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
        ...                   "60D", k=(1, 2), n_boot=0, progress=False)
        >>> result.summary().columns.tolist()
        ['metric', 'k', 'crosssell', 'popularity', 'lift']
        """
        m = self.metrics
        rows = m[(m[Columns.offer_type] == offer_type) & (m[Columns.segment] == segment)]
        table = rows.pivot_table(
            index=[Columns.metric, Columns.k],
            columns=Columns.model,
            values=Columns.value,
            aggfunc="mean",
            sort=False,
            dropna=False,
        ).reset_index()
        table.columns.name = None
        models = [c for c in (_MODEL, _BASELINE, _CUSTOM_BASELINE) if c in table.columns]
        table = table[[Columns.metric, Columns.k, *models]]
        if _MODEL in table.columns and len(models) > 1:
            model = table[_MODEL].to_numpy(np.float64)
            base = table[models[1]].to_numpy(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(base == 0, np.where(model > 0, np.inf, np.nan), model / base)
            table[Columns.lift] = ratio
        return table.reset_index(drop=True)

    def uplift_summary(self) -> pd.DataFrame:
        """Average each targeting measure over folds, by model (empty without decisions).

        Returns
        -------
        pandas.DataFrame
            Columns ``measure`` and one column per model, from :attr:`targeting`.

        Examples
        --------
        >>> import crosssell as cs
        >>> sim = cs.datasets.simulate_uplift({"A": 0.2, "B": -0.1}, n_clients=400, seed=1)
        >>> rec = cs.Recommender(scorer=cs.scorers.Popularity(), k=1)
        >>> result = backtest(rec, sim.book, "2024-12-31", "91D", k=1, n_boot=0,
        ...                   progress=False, decisions=sim.decisions)
        >>> result.uplift_summary()["measure"].tolist()[:2]
        ['qini', 'auuc']
        """
        t = self.targeting
        if t.empty:
            return pd.DataFrame(columns=["measure"])
        table = t.pivot_table(
            index="measure", columns=Columns.model, values=Columns.value, aggfunc="mean",
            sort=False,
        ).reset_index()  # fmt: skip
        table.columns.name = None
        models = [c for c in (_MODEL, _BASELINE, _CUSTOM_BASELINE) if c in table.columns]
        return table[["measure", *models]].reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """Return the tidy metrics with each fold's cutoff and horizon end beside it.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import Popularity
        >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
        ...                   "60D", k=(1, 2), n_boot=0, progress=False)
        >>> result.to_frame().columns.tolist()[:3]
        ['fold', 'cutoff', 'horizon_end']
        """
        dates = self.folds[[Columns.fold, Columns.cutoff, Columns.horizon_end]]
        return dates.merge(self.metrics, on=Columns.fold, how="right")

    def plot(self, **kwargs: Any) -> Any:
        """Draw the metric@k curves against the baseline (needs the ``plot`` extra: matplotlib).

        Parameters
        ----------
        **kwargs
            Passed to :func:`crosssell.evaluation.plots.plot_metrics`.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import Popularity
        >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
        ...                   "60D", k=(1, 2), n_boot=0, progress=False)
        >>> fig = result.plot()  # doctest: +SKIP
        """
        return plot_metrics(self, **kwargs)

    def log_to_mlflow(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        report: bool = True,
    ) -> str:
        """Log the backtest to MLflow (needs the ``mlflow`` extra); see :func:`crosssell.mlflow.log_backtest`.

        Settings as parameters; every metric at every k per fold (the metric's step) with its
        bootstrap interval and client count, averaged over folds and as lift; the HTML report,
        the tables as CSV and the charts as artifacts. Logged in the active run, or in a new
        one when none is active.

        Parameters
        ----------
        params : mapping, optional
            More parameters to log, e.g. the recommender's ``get_params()``.
        run_name : str, optional
            The name of a new run.
        report : bool, default True
            Log the HTML report (:func:`crosssell.html.report`).

        Returns
        -------
        str
            The run id.

        Raises
        ------
        ImportError
            If MLflow is not installed.

        Examples
        --------
        >>> import os, tempfile, mlflow
        >>> from unittest import mock
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> result = backtest(Recommender(), tiny(), "2024-06-30", "60D", k=(1, 2),
        ...                   n_boot=0, progress=False)
        >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(
        ...         os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"}):
        ...     mlflow.set_tracking_uri(f"file://{folder}/mlruns")
        ...     with mlflow.start_run() as run:
        ...         run_id = result.log_to_mlflow(params={"scorer": "default"})
        ...     client = mlflow.MlflowClient()
        ...     files = [f.path for f in client.list_artifacts(run_id, "backtest")]
        ...     mlflow.set_tracking_uri(None)
        >>> run_id == run.info.run_id, "backtest/report.html" in files
        (True, True)
        """  # noqa: E501
        # the MLflow adapter sits above evaluation; this door is a convenience, as DataFrame.plot
        from crosssell.mlflow import log_backtest

        return log_backtest(self, params=params, run_name=run_name, report=report)

    # -- calibration of the offered propensities: what the model said against what happened

    def calibration(self, n_bins: int = 10) -> pd.DataFrame:
        """Measure the calibration error of each model's offered propensities, per fold and overall.

        Each offer's ``propensity`` is compared with whether the client took the product within
        the horizon (``added``); see :func:`~crosssell.evaluation.calibration_error`. Only offers
        are measured, so this is the calibration of the propensities that reach a user.

        Parameters
        ----------
        n_bins : int, default 10
            Equal-width propensity bins on [0, 1].

        Returns
        -------
        pandas.DataFrame
            One row per model and fold, then one per model over all folds (``fold`` and
            ``cutoff`` missing): ``model``, ``fold``, ``cutoff``, ``n`` (offers with a
            propensity), ``propensity`` (mean), ``observed`` (share taken up) and
            ``calibration_error``.

        Raises
        ------
        ValueError
            If ``n_bins`` is not a positive int.

        Examples
        --------
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import Popularity
        >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
        ...                   "60D", k=(1, 2), n_boot=0, progress=False)
        >>> result.calibration().columns.tolist()
        ['model', 'fold', 'cutoff', 'n', 'propensity', 'observed', 'calibration_error']
        """
        p, y, keep = self._calibration_arrays()
        offers = self.offers.loc[keep]
        models = offers[Columns.model].to_numpy(dtype=object)
        folds = offers[Columns.fold].to_numpy(dtype=np.int64)
        cutoff = dict(zip(self.folds[Columns.fold], self.folds[Columns.cutoff], strict=True))
        rows: list[dict[str, Any]] = []
        for whole in (False, True):
            for model in pd.unique(models):
                in_model = models == model
                for fold in [None] if whole else sorted(set(folds[in_model].tolist())):
                    mask = in_model if fold is None else in_model & (folds == fold)
                    rows.append(
                        {
                            Columns.model: model,
                            Columns.fold: fold,
                            Columns.cutoff: pd.NaT if fold is None else cutoff.get(fold, pd.NaT),
                            Columns.n: int(mask.sum()),
                            Columns.propensity: float(p[mask].mean()),
                            Columns.observed: float(y[mask].mean()),
                            Columns.calibration_error: calibration_error(p[mask], y[mask], n_bins),
                        }
                    )
        out = pd.DataFrame(
            rows,
            columns=[
                Columns.model,
                Columns.fold,
                Columns.cutoff,
                Columns.n,
                Columns.propensity,
                Columns.observed,
                Columns.calibration_error,
            ],
        )
        out[Columns.fold] = out[Columns.fold].astype("Int64")
        out[Columns.cutoff] = pd.to_datetime(out[Columns.cutoff])
        return out

    def reliability(
        self,
        model: str = "crosssell",
        fold: int | None = None,
        n_bins: int = 10,
        *,
        strategy: Literal["uniform", "quantile"] = "uniform",
    ) -> pd.DataFrame:
        """Predicted against observed take-up of one model's offers, by propensity bin.

        Parameters
        ----------
        model : str, default "crosssell"
            A model of the backtest (``"crosssell"``, ``"popularity"`` or ``"baseline"``).
        fold : int, optional
            One fold; default every fold's offers together.
        n_bins : int, default 10
            Number of bins.
        strategy : {"uniform", "quantile"}, default "uniform"
            Equal-width bins on [0, 1], or bins holding about as many offers each.

        Returns
        -------
        pandas.DataFrame
            As :func:`~crosssell.evaluation.calibration_table`: ``bin``, ``lower``, ``upper``,
            ``n`` (offers in the bin), ``propensity`` (mean predicted), ``observed`` (share
            taken up), ``ci_low``, ``ci_high``.

        Raises
        ------
        ValueError
            If the model or fold made no offer with a propensity, or a parameter is invalid.

        Examples
        --------
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import Popularity
        >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
        ...                   "60D", k=(1, 2), n_boot=0, progress=False)
        >>> int(result.reliability(n_bins=2)["n"].sum())
        4
        """
        p, y = self._offers_of(model, fold)
        return calibration_table(p, y, n_bins, strategy=strategy)

    def plot_reliability(
        self,
        model: str = "crosssell",
        fold: int | None = None,
        n_bins: int = 10,
        *,
        strategy: Literal["uniform", "quantile"] = "quantile",
        ax: Any = None,
    ) -> Any:
        """Draw the reliability plot of one model's offers (needs the ``plot`` extra: matplotlib).

        Observed take-up against mean predicted propensity per bin, with its 95% interval, the
        diagonal of perfect calibration, and the number of offers in each bin.

        Parameters
        ----------
        model : str, default "crosssell"
            A model of the backtest.
        fold : int, optional
            One fold; default every fold's offers together.
        n_bins : int, default 10
            Number of bins.
        strategy : {"uniform", "quantile"}, default "quantile"
            As in :meth:`reliability`; quantile bins suit propensities of a few percent.
        ax : matplotlib Axes, optional
            Draw on it.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> from crosssell.datasets import tiny
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import Popularity
        >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
        ...                   "60D", k=(1, 2), n_boot=0, progress=False)
        >>> fig = result.plot_reliability()  # doctest: +SKIP
        """
        table = self.reliability(model, fold, n_bins, strategy=strategy)
        p, y = self._offers_of(model, fold)
        title = f"reliability: {model}" + ("" if fold is None else f", fold {fold}")
        return plot_reliability(table, error=calibration_error(p, y), title=title, ax=ax)

    def _calibration_arrays(
        self,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Offered propensities (bounded to [0, 1]), take-up, and which offers have one."""
        offers = self.offers
        if Columns.propensity not in offers.columns:
            keep = np.zeros(offers.shape[0], dtype=bool)
            return np.zeros(0), np.zeros(0), keep
        p = pd.to_numeric(offers[Columns.propensity], errors="coerce").to_numpy(np.float64)
        keep = np.isfinite(p)
        y = offers[Columns.added].to_numpy(dtype=np.float64)[keep]
        return np.clip(p[keep], 0.0, 1.0), y, keep

    def _offers_of(
        self, model: str, fold: int | None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        p, y, keep = self._calibration_arrays()
        offers = self.offers.loc[keep]
        mask = (offers[Columns.model] == model).to_numpy(dtype=bool, copy=True)
        if fold is not None:
            mask = mask & (offers[Columns.fold] == fold).to_numpy(dtype=bool)
        if not mask.any():
            models = ", ".join(repr(m) for m in pd.unique(self.offers[Columns.model]))
            where = f"model {model!r}" + ("" if fold is None else f" in fold {fold}")
            raise ValueError(
                f"The backtest holds no offer with a propensity for {where}; its models are "
                f"{models} and its folds 0 to {self.folds.shape[0] - 1}."
            )
        return p[mask], y[mask]


def _point_in_time(book: Book, cutoff_ns: int) -> Book:
    """Return the book as it stood at the cutoff (see :meth:`Book.known_at`)."""
    return book.known_at(pd.Timestamp(cutoff_ns, unit="ns"))


def _baseline_model(recommender: Any, baseline: Any) -> tuple[str, Any, bool] | None:
    """Return the baseline's name, its unfitted recommender, and whether it ranks by score alone."""
    if baseline is False or baseline is None:
        return None
    from crosssell.scorers import Popularity

    params = recommender.get_params(deep=False)
    if baseline is True:
        name, scorer = _BASELINE, Popularity()
    else:
        name, scorer = _CUSTOM_BASELINE, baseline
    changes: dict[str, Any] = {"scorer": scorer}
    # a calibrator learnt on the main scorer's scores means nothing for another scorer
    if "calibrator" in params:
        changes["calibrator"] = None
    # Popularity x product value is not popularity: a dear product few hold would outrank a
    # cheap one many hold, and the lift over such a baseline would flatter the model.
    return name, recommender.clone().set_params(**changes), isinstance(scorer, Popularity)


def _fit_clone(template: Any, train: Book, cutoff: pd.Timestamp, *, by_score: bool) -> Any:
    """Fit a clone of ``template`` at the cutoff; ``by_score`` makes it rank by score alone."""
    estimator = template.clone()
    estimator.fit(train, as_of=cutoff)
    if by_score:
        _rank_by_score(estimator)
    return estimator


def _rank_by_score(estimator: Any) -> None:
    """Make a fitted recommender rank offers by propensity alone, blind to values and levers.

    The pricing is derived data of the fit; values, policy and not-worth floor stay as fitted.
    """
    pricing = getattr(estimator, "pricing_", None)
    if pricing is None or not callable(getattr(pricing, "value_blind", None)):
        raise ValueError(
            "backtest's popularity baseline ranks by popularity alone and needs a crosssell "
            f"Recommender to do so. Got {type(estimator).__name__}: pass baseline=False, or a "
            "scorer that is not a Popularity."
        )
    estimator.pricing_ = pricing.value_blind()


def _recommend(estimator: Any, clients: pd.Index, k: int) -> pd.DataFrame:
    params = inspect.signature(estimator.recommend).parameters
    if "explain" in params:
        # reasons and evidence are not measured, and building them dominates bulk scoring
        return estimator.recommend(clients, k=k, explain=False)  # type: ignore[no-any-return]
    return estimator.recommend(clients, k=k)  # type: ignore[no-any-return]


def _segment_of(book: Book, segments: str | None) -> npt.NDArray[np.object_] | None:
    if segments is None:
        return None
    table = book.client_table
    if segments not in table.columns:
        raise ValueError(
            "The 'segments' parameter of backtest must be None or a column of the clients table "
            f"({', '.join(repr(c) for c in table.columns)}). Got {segments!r} instead."
        )
    values = table[segments].astype(object)
    return np.asarray(values.where(values.notna(), _UNKNOWN_SEGMENT).astype(str), dtype=object)


def backtest(  # noqa: PLR0915 - one loop over folds and models, read top to bottom
    recommender: Any,
    book: Book,
    cutoffs: Sequence[Any] | Any,
    horizon: HorizonLike = "180D",
    *,
    k: int | Iterable[int] = (1, 3, 5, 10),
    policy: bool = True,
    baseline: Any = True,
    segments: str | None = None,
    n_boot: int = 200,
    random_state: int | np.random.Generator | None = 0,
    progress: bool | None = None,
    decisions: Any = None,
) -> BacktestResult:
    """Measure a recommender on the past: fit at each cutoff, score against the next horizon.

    For each cutoff, a clone of ``recommender`` is fitted on the book as it stood then
    (contracts started later and events dated later are removed, and ``as_of`` is the cutoff),
    asked for ``max(k)`` offers for every client holding something at the cutoff, and compared
    with the products those clients added in ``(cutoff, cutoff + horizon]``
    (:func:`~crosssell.evaluation.additions`). Metrics are reported for all additions and for
    upsells and cross-sells apart; averages run over clients with at least one addition.
    Coverage is over the products that could be offered at each cutoff: sellable, and within
    their availability window (:meth:`~crosssell.Book.available`).

    Parameters
    ----------
    recommender : Recommender
        The recommender to measure, fitted or not; it is cloned, never changed.
    book : Book
        The whole book, including what happened after the cutoffs.
    cutoffs : date-like or sequence of date-like
        Points in time to fit at; sorted, duplicates dropped. Each gives one fold.
    horizon : str, timedelta or int, default "180D"
        Observation window after each cutoff (an int is days). Every window must end on or
        before the last date in the book.
    k : int or sequence of int, default (1, 3, 5, 10)
        Offer list lengths to evaluate.
    policy : bool, default True
        Replay the recommender's policy at each cutoff; ``False`` fits clones with
        ``policy=None``, which shows what the policy costs in measured take-up.
    baseline : bool or Scorer, default True
        ``True`` runs, as model ``"popularity"``, a clone with a
        :class:`~crosssell.scorers.Popularity` scorer, the same policy and no calibrator, whose
        offers rank by raw popularity: the number of clients holding each product at the cutoff
        (ties by product id), blind to product values and levers. Its ``value`` column is still
        filled and the policy's not-worth floor still applies; only the order ignores value.
        A scorer runs a clone with that scorer (no calibrator) as model ``"baseline"``, ranked
        as the recommender ranks (propensity x value x lever), unless it is a ``Popularity``
        (e.g. ``Popularity(by="segment")``), which ranks by its own score as above. ``False``
        runs none.
    segments : str, optional
        A column of the clients table (e.g. ``"segment"``) to report metrics for each of its
        values too; missing values form the segment ``"unknown"``.
    n_boot : int, default 200
        Bootstrap resamples of clients for the confidence intervals; 0 skips them.
    random_state : int, numpy Generator or None, default 0
        Seed of the bootstrap (the same resamples serve both models, so their intervals pair).
    progress : bool, optional
        Show a progress bar; default: when the standard error stream is a terminal.
    decisions : DecisionLog or pandas.DataFrame, optional
        Offer decisions with a treated and a holdout arm (``client_id``, ``product_id``,
        ``action``, ``arm``, ``as_of``). For each fold, the offers decided in
        ``(cutoff, cutoff + horizon]`` are ordered by each model's score of the (client,
        product) at the cutoff, and the Qini coefficient, the AUUC and the top decile's capture
        are measured against the take-ups within ``horizon`` of each decision, in both arms
        (:attr:`BacktestResult.targeting`): they say whether the recommender ranks first the
        offers that proposing actually moves. A client or product unknown at the cutoff is
        scored below every other. Needs crosssell Recommenders.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ValueError
        If a cutoff plus the horizon ends after the last date in the book, a cutoff lies before
        the first contract, no client holds anything at a cutoff, or a parameter is invalid. The
        message shows the dates and the latest usable cutoff. Also if a popularity baseline is
        asked of a recommender that is not a crosssell ``Recommender``.

    Examples
    --------
    >>> from crosssell.datasets import tiny
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import Popularity
    >>> result = backtest(Recommender(scorer=Popularity()), tiny(), ["2024-06-30"],
    ...                   "60D", k=(1, 2), n_boot=0, progress=False)
    >>> result.folds[["cutoff", "clients", "clients_with_addition", "offers"]]
          cutoff  clients  clients_with_addition  offers
    0 2024-06-30        2                      1       4
    >>> backtest(Recommender(), tiny(), ["2024-06-30"], "120D")
    Traceback (most recent call last):
    ...
    ValueError: cutoff 2024-06-30 + horizon 120 days = 2024-10-28 is after the last date in the book (2024-09-01): no outcome can be observed. Use a cutoff on or before 2024-05-04.
    """  # noqa: E501
    owner = "backtest"
    ks = _common.check_ks(k, owner=owner)
    k_max = max(ks)
    span = _common.to_horizon(horizon, owner=owner)
    stamps = _common.cutoff_list(cutoffs)
    validate_params(
        owner, {"n_boot": n_boot}, {"n_boot": [Interval(numbers.Integral, 0, None, closed="left")]}
    )
    for name in ("clone", "fit", "recommend", "set_params", "get_params"):
        if not callable(getattr(recommender, name, None)):
            raise ValueError(
                f"The 'recommender' parameter of {owner} must be a crosssell Recommender (with "
                f"fit, recommend, clone, get_params and set_params). Got {recommender!r} instead."
            )
    _common.check_cutoffs(book, stamps, span)
    segment_of = _segment_of(book, segments)
    seed = _common.seed(random_state)
    decided = None if decisions is None else _decided(decisions)

    main = recommender if policy else recommender.clone().set_params(policy=None)
    models: list[tuple[str, Any, bool]] = [(_MODEL, main, False)]
    extra = _baseline_model(main, baseline)
    if extra is not None:
        models.append(extra)

    metric_parts: list[pd.DataFrame] = []
    offer_parts: list[pd.DataFrame] = []
    truth_parts: list[pd.DataFrame] = []
    target_parts: list[pd.DataFrame] = []
    curve_parts: list[pd.DataFrame] = []
    fold_rows: list[dict[str, Any]] = []
    bar = _common.progress_bar(
        total=len(stamps) * len(models),
        desc=owner,
        unit="fit",
        disable=not _common.show_progress(progress),
    )
    try:
        for fold, cut in enumerate(stamps):
            cut_ns = int(cut.value)
            end = cut + span
            active = _common.active_clients(book, cut_ns)
            if active.shape[0] == 0:
                raise ValueError(
                    f"cutoff {_common.day(cut)}: no client holds any product then, so there is "
                    "nobody to make offers to. Use a cutoff within the period the contracts cover."
                )
            adds = addition_arrays(book, cut_ns, int(end.value))
            adds = adds.subset(np.isin(adds.client, active))
            clients = book.client_ids.to_external(active)
            truth_parts.append(_fold_truth(book, adds, fold))
            catalogue = _catalogue_size(book, cut)
            train = _point_in_time(book, cut_ns)
            n_offers = 0
            for name, template, by_score in models:
                bar.set_postfix_str(f"{_common.day(cut)} {name}")
                estimator = _fit_clone(template, train, cut, by_score=by_score)
                if decided is not None:
                    window = decided.loc[(decided["as_of"] > cut) & (decided["as_of"] <= end)]
                    table, curve = _targeting(estimator, window, book, span)
                    target_parts.append(table.assign(fold=fold, model=name))
                    curve_parts.append(curve.assign(fold=fold, model=name))
                offers = _recommend(estimator, clients, k_max)
                if name == _MODEL:
                    n_offers = int(offers.shape[0])
                codes = _codes(book, offers)
                offer_parts.append(
                    _offer_frame(offers, adds, codes, book=book, fold=fold, cutoff=cut, model=name)
                )
                metric_parts.append(
                    _fold_metrics(
                        offers,
                        adds,
                        codes,
                        segment_of=segment_of,
                        ks=ks,
                        catalogue=catalogue,
                        n_boot=n_boot,
                        seed=seed,
                        fold=fold,
                        model=name,
                    )
                )
                bar.update(1)
            fold_rows.append(
                {
                    Columns.fold: fold,
                    Columns.cutoff: cut,
                    Columns.horizon_end: end,
                    Columns.training_rows: len(train.contract_arrays),
                    Columns.clients: int(active.shape[0]),
                    Columns.products: int(
                        np.unique(
                            book.contract_arrays.product[_common.active_mask(book, cut_ns)]
                        ).shape[0]
                    ),
                    Columns.clients_with_addition: int(np.unique(adds.client).shape[0]),
                    Columns.additions: int(adds.client.shape[0]),
                    Columns.offers: n_offers,
                }
            )
    finally:
        bar.close()

    return BacktestResult(
        metrics=pd.concat(metric_parts, ignore_index=True),
        folds=pd.DataFrame(fold_rows),
        offers=pd.concat(offer_parts, ignore_index=True),
        horizon=span,
        k=ks,
        truth=_truth_frame(truth_parts),
        targeting=(
            pd.concat(target_parts, ignore_index=True)[
                [Columns.fold, Columns.model, "measure", Columns.value]
            ]
            if target_parts
            else pd.DataFrame()
        ),
        qini=pd.concat(curve_parts, ignore_index=True) if curve_parts else pd.DataFrame(),
    )


_DECISION_COLUMNS: Final = ("client_id", "product_id", "action", "arm", "as_of")


def _decided(decisions: Any) -> pd.DataFrame:
    """Return the offer decisions of both arms, checked once."""
    frame = decisions.decisions() if hasattr(decisions, "decisions") else decisions
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            "backtest: 'decisions' must be a DecisionLog or a DataFrame of decisions. "
            f"Got {type(decisions).__name__}."
        )
    missing = [c for c in _DECISION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"backtest: the decisions lack column(s) {', '.join(missing)}; Qini and AUUC need "
            f"{', '.join(_DECISION_COLUMNS)}."
        )
    offers = frame.loc[(frame["action"] == "offer") & frame["arm"].isin(["treated", "holdout"])]
    arms = set(offers["arm"])
    if arms != {"treated", "holdout"}:
        raise ValueError(
            f"backtest: the decisions hold offers in the arm(s) {sorted(arms) or 'none'} only; "
            "Qini and AUUC need offers in both the treated and the holdout arm. Decide with a "
            "holdout: rec.recommend(log=log, holdout=cs.Holdout(share=0.1, salt=...))."
        )
    return pd.DataFrame(
        {
            "client_id": offers["client_id"].astype(str).to_numpy(),
            "product_id": offers["product_id"].astype(str).to_numpy(),
            "arm": offers["arm"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(offers["as_of"]).to_numpy(),
        }
    )


_TARGETING_MEASURES: Final = (
    "qini",
    "auuc",
    "top_decile_uplift",
    "top_decile_added",
    "top_decile_share_of_added",
    "treated",
    "holdout",
)


def _pair_scores(estimator: Any, pairs: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Return the fitted model's score of each (client, product); unknown ones below all."""
    scorer, matrix = getattr(estimator, "scorer_", None), getattr(estimator, "matrix_", None)
    if scorer is None or matrix is None:
        raise ValueError(
            "backtest(decisions=...) reads each model's score of the decided offers and needs "
            f"crosssell Recommenders. Got {type(estimator).__name__}."
        )
    client_ids = pd.Index(matrix.clients.external.astype(str))
    product_ids = pd.Index(matrix.products.external.astype(str))
    rows = client_ids.get_indexer(pairs["client_id"].to_numpy())
    cols = product_ids.get_indexer(pairs["product_id"].to_numpy())
    known = (rows >= 0) & (cols >= 0)
    out = np.full(len(pairs), np.nan)
    if known.any():
        uniq, inverse = np.unique(rows[known], return_inverse=True)
        scores = np.asarray(scorer.score(uniq), dtype=np.float64)
        out[known] = scores[inverse, cols[known]]
    finite = np.isfinite(out)
    floor = float(out[finite].min()) - 1.0 if finite.any() else 0.0
    return np.where(finite, out, floor)


def _targeting(
    estimator: Any, window: pd.DataFrame, book: Book, span: pd.Timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Qini, AUUC and top-decile capture of the window's decisions ordered by the model."""
    from crosssell.evaluation.uplift import auuc, qini_coefficient, qini_curve, top_uplift
    from crosssell.scorers.uplift import take_ups

    treated = (window["arm"] == "treated").to_numpy()
    values = dict.fromkeys(_TARGETING_MEASURES, float("nan"))
    values["treated"], values["holdout"] = float(treated.sum()), float((~treated).sum())
    curve = pd.DataFrame()
    if treated.any() and (~treated).any():
        score = _pair_scores(estimator, window)
        y = take_ups(window, book, span).astype(np.float64)
        top = top_uplift(score, treated, y, share=0.1)
        values |= {
            "qini": qini_coefficient(score, treated, y),
            "auuc": auuc(score, treated, y),
            "top_decile_uplift": top["uplift"],
            "top_decile_added": top["added"],
            "top_decile_share_of_added": top["share_of_added"],
        }
        curve = qini_curve(score, treated, y)
    table = pd.DataFrame({"measure": list(values), Columns.value: list(values.values())})
    return table, curve


_TRUTH_COLUMNS: Final = (
    Columns.fold,
    Columns.client,
    Columns.product,
    Columns.offer_type,
    Columns.value,
)


def _truth_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _TRUTH_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def _fold_truth(book: Book, adds: AdditionArrays, fold: int) -> pd.DataFrame:
    """One fold's additions in the caller's ids."""
    return pd.DataFrame(
        {
            Columns.fold: np.full(adds.client.shape[0], fold, dtype=np.int64),
            Columns.client: book.client_ids.to_external(adds.client),
            Columns.product: book.product_ids.to_external(adds.product),
            Columns.offer_type: np.where(adds.is_upsell, _UPSELL, _CROSS_SELL),
            Columns.value: adds.value,
        }
    )


def _catalogue_size(book: Book, cutoff: pd.Timestamp) -> int:
    """Products that could be offered at the cutoff: sellable and available then."""
    available = book.available(cutoff)
    table = book.product_table
    if Columns.sellable in table.columns:
        n = int((np.asarray(table[Columns.sellable], dtype=bool) & available).sum())
        if n:
            return n
    return max(int(available.sum()), 1)


def _codes(book: Book, offers: pd.DataFrame) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Offers' clients and products as the Book's indices (-1 for an id the Book lacks)."""
    client = book.client_ids.to_index(offers[Columns.client], missing="ignore")
    product = book.product_ids.to_index(offers[Columns.product], missing="ignore")
    return client, product


def _offer_frame(
    offers: pd.DataFrame,
    adds: AdditionArrays,
    codes: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    *,
    book: Book,
    fold: int,
    cutoff: pd.Timestamp,
    model: str,
) -> pd.DataFrame:
    columns = [c for c in _OFFER_COLUMNS if c in offers.columns]
    out = offers[columns].reset_index(drop=True)
    client, product = codes
    n_products = np.int64(max(len(book.product_ids), 1))
    offered = np.where(client >= 0, client * n_products + product, -1)
    out[Columns.added] = np.isin(offered, adds.client * n_products + adds.product)
    out.insert(0, Columns.model, model)
    out.insert(0, Columns.cutoff, cutoff)
    out.insert(0, Columns.fold, fold)
    return out


def _fold_metrics(
    offers: pd.DataFrame,
    adds: AdditionArrays,
    codes: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    *,
    segment_of: npt.NDArray[np.object_] | None,
    ks: tuple[int, ...],
    catalogue: int,
    n_boot: int,
    seed: int | None,
    fold: int,
    model: str,
) -> pd.DataFrame:
    """Metrics of one model at one cutoff, for every offer type and segment."""
    # integer ids make the matching several times cheaper than the caller's text ids
    client, product = codes
    known = client >= 0
    coded_offers = pd.DataFrame(
        {
            Columns.client: client[known],
            Columns.product: product[known],
            Columns.rank: offers[Columns.rank].to_numpy()[known],
        }
    )
    coded_truth = pd.DataFrame(
        {Columns.client: adds.client, Columns.product: adds.product, Columns.value: adds.value}
    )
    offer_is = np.asarray(offers[Columns.offer_type].to_numpy(dtype=object)[known], dtype=object)
    truth_is = np.where(adds.is_upsell, _UPSELL, _CROSS_SELL)
    offer_seg: npt.NDArray[np.object_] | None = None
    truth_seg: npt.NDArray[np.object_] | None = None
    groups = [_ALL]
    if segment_of is not None:
        offer_seg = segment_of[client[known]]
        truth_seg = segment_of[adds.client]
        groups = [_ALL, *sorted(set(segment_of.tolist()))]
    parts: list[pd.DataFrame] = []
    for kind in (_ALL, _UPSELL, _CROSS_SELL):
        offer_keep = np.ones(coded_offers.shape[0], bool) if kind == _ALL else offer_is == kind
        truth_keep = np.ones(coded_truth.shape[0], bool) if kind == _ALL else truth_is == kind
        for group in groups:
            o_mask, t_mask = offer_keep, truth_keep
            if group != _ALL and offer_seg is not None and truth_seg is not None:
                o_mask = o_mask & (offer_seg == group)
                t_mask = t_mask & (truth_seg == group)
            table = evaluate(
                coded_offers.loc[o_mask],
                coded_truth.loc[t_mask],
                k=ks,
                n_products=catalogue,
                n_boot=n_boot,
                random_state=seed,
            )
            table.insert(0, Columns.segment, group)
            table.insert(0, Columns.offer_type, kind)
            table.insert(0, Columns.model, model)
            table.insert(0, Columns.fold, fold)
            parts.append(table)
    return pd.concat(parts, ignore_index=True)[list(_METRIC_COLUMNS)]
