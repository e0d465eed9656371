"""Hyper-parameter search that never chooses on the fold it reports.

Every configuration is backtested on all cutoffs. The configuration with the best mean score
on the earlier cutoffs (the *selection* folds) is chosen; its score on the last cutoff (the
*held-out* fold) is what the search reports. The last fold lies after every selection fold in
time, so the reported score is what choosing this way would have achieved on data the choice
had not seen, which a score on the selection folds overstates.
"""

from __future__ import annotations

import importlib
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import numpy as np
import pandas as pd

from crosssell._params import Interval, Options, validate_params
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import _common
from crosssell.evaluation._common import HorizonLike
from crosssell.evaluation._figures import figure_axes
from crosssell.evaluation.backtest import backtest
from crosssell.evaluation.metrics import METRICS
from crosssell.recommender import Recommender

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TuneResult", "tune"]

#: One search space: parameter name (``set_params`` spelling) -> candidate values.
SpaceDict = Mapping[str, Sequence[Any]]

_OWNER: Final = "tune"
_ALL: Final = "all"
_SCALARS: Final = (int, float, str, bool, np.integer, np.floating, np.bool_)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TuneResult:
    """What :func:`tune` tried and chose.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per trial, in the order tried: ``trial`` (from 0), ``params`` (the configuration
        as readable text), one column per searched parameter (scorers and policies as their
        repr; ``None`` where a sub-space does not set that parameter), ``selection_score`` (the
        metric averaged over the selection folds), ``held_out_score`` (the metric on the last
        fold), ``fit_seconds`` (wall time of the trial: fitting, offering and scoring on every
        fold) and ``rank`` (1 = best selection score; ties go to the earlier trial).
    best_params : dict
        The chosen configuration, as ``set_params`` keywords.
    best_recommender : Recommender
        A clone of the searched recommender with ``best_params``, fitted on the whole book as of
        its last date (``fit(book)``), ready to make offers today.
    held_out : float
        The chosen configuration's score on the held-out fold: the figure to quote.
    metric : str
        The metric, e.g. ``"ndcg@10"``.
    selection_cutoffs : tuple of pandas.Timestamp
        The cutoffs the choice was made on.
    held_out_cutoff : pandas.Timestamp
        The last cutoff, whose fold only reports.

    Examples
    --------
    >>> from crosssell.datasets import tiny
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import CoOccurrence, Popularity
    >>> result = tune(Recommender(), tiny(),
    ...               {"scorer": [Popularity(), CoOccurrence()]},
    ...               ["2024-06-15", "2024-07-03"], horizon="60D", metric="recall@1",
    ...               search="grid", progress=False)
    >>> result.results[["trial", "params", "selection_score", "held_out_score", "rank"]]
       trial                 params  selection_score  held_out_score  rank
    0      0    scorer=Popularity()              0.0             0.5     1
    1      1  scorer=CoOccurrence()              0.0             0.5     2
    """

    results: pd.DataFrame
    best_params: dict[str, Any]
    best_recommender: Recommender
    held_out: float
    metric: str
    selection_cutoffs: tuple[pd.Timestamp, ...]
    held_out_cutoff: pd.Timestamp

    def plot(self, *, ax: Axes | None = None) -> Figure:
        """Draw each trial's held-out score against its selection score; the chosen one in red.

        Points near the diagonal mean the selection folds predicted the held-out fold well; a
        cloud with no slope means the search chose on noise.

        Parameters
        ----------
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
        >>> from crosssell.recommender import Recommender
        >>> from crosssell.scorers import CoOccurrence, Popularity
        >>> result = tune(Recommender(), tiny(),
        ...               {"scorer": [Popularity(), CoOccurrence()]},
        ...               ["2024-06-15", "2024-07-03"], horizon="60D", metric="recall@1",
        ...               progress=False)
        >>> result.plot().axes[0].get_xlabel()
        'selection score (mean of 1 fold)'
        """
        fig, (panel,) = figure_axes(ax)
        table = self.results
        x = table[Columns.selection_score].to_numpy(np.float64)
        y = table[Columns.held_out_score].to_numpy(np.float64)
        best = (table[Columns.rank] == 1).to_numpy(bool)
        panel.scatter(x[~best], y[~best], color="tab:blue", alpha=0.7, label="trials")
        panel.scatter(x[best], y[best], color="tab:red", s=60, label="chosen", zorder=3)
        finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            pad = 0.05 * (high - low) if high > low else 0.01
            panel.plot(
                [low - pad, high + pad], [low - pad, high + pad], linestyle="--", color="grey"
            )
        n_sel = len(self.selection_cutoffs)
        panel.set_xlabel(f"selection score (mean of {n_sel} fold{'s' if n_sel != 1 else ''})")
        panel.set_ylabel(f"held-out score ({_common.day(self.held_out_cutoff)})")
        panel.set_title(self.metric)
        panel.legend()
        fig.tight_layout()
        return fig


# --------------------------------------------------------------------------- the space


@dataclass(frozen=True, slots=True, kw_only=True)
class _Space:
    """A union of grids; configuration ``i`` is decoded from a mixed-radix index."""

    grids: tuple[tuple[tuple[str, tuple[Any, ...]], ...], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(len(values) for _, values in grid) for grid in self.grids)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @property
    def names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for grid in self.grids:
            seen.update(dict.fromkeys(name for name, _ in grid))
        return tuple(seen)

    def config(self, index: int) -> dict[str, Any]:
        for grid, size in zip(self.grids, self.sizes, strict=True):
            if index < size:
                out: dict[str, Any] = {}
                # the last parameter varies fastest, as in itertools.product
                for name, values in reversed(grid):
                    index, pick = divmod(index, len(values))
                    out[name] = values[pick]
                return dict(reversed(out.items()))
            index -= size
        raise IndexError(index)


def _as_space(space: SpaceDict | Sequence[SpaceDict]) -> _Space:
    items = [space] if isinstance(space, Mapping) else list(space)
    usage = (
        "Pass a dict of parameter name -> list of values, e.g. {'scorer__factors': [32, 64]}, "
        "or a list of such dicts."
    )
    if not items:
        raise ValueError(f"The 'space' parameter of {_OWNER} is empty. {usage}")
    grids = []
    for item in items:
        if not isinstance(item, Mapping) or not item:
            raise ValueError(
                f"The 'space' parameter of {_OWNER} must hold non-empty dicts. "
                f"Got {item!r} instead. {usage}"
            )
        grid = []
        for name, values in item.items():
            if (
                not isinstance(name, str)
                or isinstance(values, str | bytes | Mapping)
                or not isinstance(values, Sequence)
                or len(values) == 0
            ):
                raise ValueError(
                    f"The 'space' parameter of {_OWNER} must map each parameter name to a "
                    f"non-empty list of values. Got {name!r}: {values!r} instead. {usage}"
                )
            grid.append((name, tuple(values)))
        grids.append(tuple(grid))
    return _Space(grids=tuple(grids))


def _accepts(host: Any, name: str) -> bool:
    getter = getattr(host, "get_params", None)
    return callable(getter) and name in getter(deep=True)


def _check_space(recommender: Recommender, space: _Space) -> None:
    """Fail before any fitting when a parameter cannot be set on some configuration."""
    top = recommender.get_params(deep=False)
    for grid in space.grids:
        values = dict(grid)
        for name, _ in grid:
            head, _, rest = name.partition("__")
            if head not in top:
                raise ValueError(
                    f"The 'space' parameter of {_OWNER} names {name!r}, which "
                    f"{type(recommender).__name__} does not have. Valid names start with one "
                    f"of {sorted(top)!r}."
                )
            if not rest:
                continue
            hosts = values.get(head, (top[head],))
            for host in hosts:
                if not _accepts(host, rest):
                    raise ValueError(
                        f"The 'space' parameter of {_OWNER} sets {name!r}, but {head}={host!r} "
                        f"has no parameter {rest!r}. Give parameters that apply to one {head} "
                        f"only their own sub-space, e.g. [{{'{head}': [A()]}}, "
                        f"{{'{head}': [B()], '{name}': [...]}}]."
                    )


def _configure(recommender: Recommender, params: Mapping[str, Any]) -> Recommender:
    """Clone the template with ``params`` set, nested estimators cloned first so none is shared."""
    estimator = recommender.clone()
    top = {k: v for k, v in params.items() if "__" not in k}
    estimator.set_params(**top)
    # Recommender.clone keeps the same scorer instance; a nested set_params would then change
    # the caller's scorer (or the one in the space) for every later trial.
    detached = {
        name: value.clone()
        for name, value in estimator.get_params(deep=False).items()
        if callable(getattr(value, "clone", None)) and callable(getattr(value, "set_params", None))
    }
    estimator.set_params(**detached)
    nested = sorted((k for k in params if "__" in k), key=lambda k: k.count("__"))
    for name in nested:
        estimator.set_params(**{name: params[name]})
    return estimator


def _text(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else value


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={_text(value)}" for name, value in params.items())


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, _SCALARS) else repr(value)


# --------------------------------------------------------------------------- checks


def _parse_metric(metric: object) -> tuple[str, int]:
    bad = ValueError(
        f"The 'metric' parameter of {_OWNER} must be a str 'name@k' with name among "
        f"{{{', '.join(repr(m) for m in METRICS)}}} and k an int >= 1, e.g. 'ndcg@10'. "
        f"Got {metric!r} instead."
    )
    if not isinstance(metric, str):
        raise bad
    name, at, k_text = metric.partition("@")
    if not at or name not in METRICS or not k_text.isdigit() or int(k_text) < 1:
        raise bad
    return name, int(k_text)


def _check_n_trials(n_trials: object) -> int:
    at_least_1 = Interval(numbers.Integral, 1, None, closed="left")
    validate_params(_OWNER, {"n_trials": n_trials}, {"n_trials": [at_least_1]})
    return int(cast(int, n_trials))


def _import_optuna() -> Any:
    try:
        optuna = importlib.import_module("optuna")
    except ImportError as exc:
        raise ImportError(
            "tune(use_optuna=True) needs Optuna, which is not installed: pip install optuna, "
            "or call tune with use_optuna=False (random or grid search)."
        ) from exc
    return optuna


# --------------------------------------------------------------------------- the search


def tune(
    recommender: Recommender,
    book: Book,
    space: SpaceDict | Sequence[SpaceDict],
    cutoffs: Sequence[Any],
    *,
    horizon: HorizonLike = "180D",
    metric: str = "ndcg@10",
    n_trials: int = 20,
    search: Literal["random", "grid"] = "random",
    random_state: int | np.random.Generator | None = 0,
    progress: bool | None = None,
    use_optuna: bool = False,
) -> TuneResult:
    """Search scorers and parameters by backtest, choosing on early folds and reporting on the last.

    With cutoffs ``c1 < c2 < ... < cn``, each configuration is backtested at every cutoff
    (:func:`~crosssell.evaluation.backtest`, policy replayed, no baseline, no bootstrap). The
    configuration with the best mean ``metric`` over ``c1 .. c(n-1)`` is chosen, and its score
    at ``cn`` is reported as :attr:`TuneResult.held_out`. The last fold never takes part in the
    choice, so that figure is an honest estimate of what the chosen configuration will do next;
    the best selection score is optimistic by construction.

    Parameters
    ----------
    recommender : Recommender
        The template; every trial is a clone with some parameters changed. Never modified.
    book : Book
        The whole book, including what happened after the cutoffs.
    space : dict or list of dict
        Parameter name, in ``set_params`` spelling (``"scorer"``, ``"scorer__factors"``,
        ``"k"``, ``"weighting"``, ``"policy"`` ...), to the list of values to try; ``"scorer"``
        takes scorer instances. A list of dicts is a union of such grids: give parameters that
        apply to one scorer only their own dict, e.g. ``[{"scorer": [CoOccurrence()]},
        {"scorer": [ALS()], "scorer__regularization": [1.0, 10.0]}]``. Searching ``"k"`` is
        pointless: a backtest asks every configuration for as many offers as the metric's k.
    cutoffs : sequence of date-like
        At least two; sorted, duplicates dropped. All but the last choose; the last reports.
    horizon : str, timedelta or int, default "180D"
        Observation window after each cutoff.
    metric : str, default "ndcg@10"
        ``"name@k"`` with a name of :data:`~crosssell.evaluation.METRICS` (measured over all
        offer types and segments); higher is better.
    n_trials : int, default 20
        Configurations tried by random search and by Optuna. Grid search tries every
        configuration; random search tries the whole space when it is no larger than this.
    search : {"random", "grid"}, default "random"
        Random search draws configurations without repetition, each equally likely (a larger
        sub-space gets more draws); grid search tries them all in order.
    random_state : int, numpy Generator or None, default 0
        Seeds the draws of random search and of Optuna's sampler.
    progress : bool, optional
        Show a progress bar over trials; default: when the standard error stream is a terminal.
    use_optuna : bool, default False
        Let Optuna's TPE sampler choose the ``n_trials`` configurations (needs ``optuna``,
        which crosssell does not install). The same temporal rule applies.

    Returns
    -------
    TuneResult
        With ``best_recommender`` refitted on the whole book as of its last date.

    Raises
    ------
    ValueError
        With fewer than two cutoffs, an unusable cutoff or horizon (see
        :func:`~crosssell.evaluation.backtest`), a parameter the recommender (or the scorer it
        belongs to) does not have, or when no trial can be scored on the selection folds.
    ImportError
        With ``use_optuna=True`` when Optuna is not installed.

    Examples
    --------
    >>> from crosssell.datasets import tiny
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import CoOccurrence, Popularity
    >>> space = [{"scorer": [Popularity()]},
    ...          {"scorer": [CoOccurrence()], "scorer__measure": ["confidence", "lift"]}]
    >>> result = tune(Recommender(), tiny(), space, ["2024-06-15", "2024-07-03"],
    ...               horizon="60D", metric="recall@1", search="grid", progress=False)
    >>> result.results["params"].tolist()
    ['scorer=Popularity()', 'scorer=CoOccurrence(), scorer__measure=confidence', 'scorer=CoOccurrence(), scorer__measure=lift']
    >>> result.best_params, result.held_out
    ({'scorer': Popularity()}, 0.5)
    >>> tune(Recommender(), tiny(), space, ["2024-06-30"], horizon="60D")
    Traceback (most recent call last):
    ...
    ValueError: tune needs at least 2 cutoffs: it chooses on all but the last and reports the score on the last. Got 1 (2024-06-30). Add an earlier cutoff.
    """  # noqa: E501
    name, k = _parse_metric(metric)
    n = _check_n_trials(n_trials)
    validate_params(_OWNER, {"search": search}, {"search": [Options({"random", "grid"})]})
    if not isinstance(recommender, Recommender):
        raise ValueError(
            f"The 'recommender' parameter of {_OWNER} must be a crosssell Recommender. "
            f"Got {recommender!r} instead."
        )
    span = _common.to_horizon(horizon, owner=_OWNER)
    stamps = _common.cutoff_list(cutoffs)
    if len(stamps) < 2:
        shown = ", ".join(_common.day(s) for s in stamps)
        raise ValueError(
            f"{_OWNER} needs at least 2 cutoffs: it chooses on all but the last and reports the "
            f"score on the last. Got {len(stamps)} ({shown}). Add an earlier cutoff."
        )
    _common.check_cutoffs(book, stamps, span)
    grid = _as_space(space)
    _check_space(recommender, grid)
    seed = _common.seed(random_state)

    rows: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []

    def run(params: dict[str, Any]) -> float:
        estimator = _configure(recommender, params)
        started = time.perf_counter()
        result = backtest(
            estimator, book, stamps, span, k=(k,), baseline=False, n_boot=0, progress=False
        )
        seconds = time.perf_counter() - started
        m = result.metrics
        pick = m[
            (m[Columns.metric] == name)
            & (m[Columns.k] == k)
            & (m[Columns.offer_type] == _ALL)
            & (m[Columns.segment] == _ALL)
            & (m[Columns.model] == "crosssell")
        ]
        by_fold = pick.set_index(Columns.fold)[Columns.value].reindex(range(len(stamps)))
        scores = by_fold.to_numpy(np.float64)
        selection = float(np.nanmean(scores[:-1])) if np.isfinite(scores[:-1]).any() else np.nan
        configs.append(params)
        rows.append(
            {
                Columns.trial: len(rows),
                Columns.params: _params_text(params),
                **{key: _cell(value) for key, value in params.items()},
                Columns.selection_score: selection,
                Columns.held_out_score: float(scores[-1]),
                Columns.fit_seconds: seconds,
            }
        )
        return selection

    if use_optuna:
        _optuna_search(grid, run, n_trials=n, seed=seed, progress=progress)
    else:
        if search == "grid" or grid.size <= n:
            order = list(range(grid.size))
        else:
            order = [int(i) for i in np.random.default_rng(seed).choice(grid.size, n, False)]
        bar = _common.progress_bar(
            order, desc=_OWNER, unit="trial", disable=not _common.show_progress(progress)
        )
        try:
            for index in bar:
                run(grid.config(index))
                best = max((r[Columns.selection_score] for r in rows), key=_sortable)
                bar.set_postfix_str(f"best {metric} {best:.4g}")
        finally:
            bar.close()

    return _result(recommender, book, grid, rows, configs, metric=metric, stamps=stamps)


def _sortable(value: float) -> float:
    return value if np.isfinite(value) else -np.inf


def _optuna_search(
    space: _Space,
    run: Callable[[dict[str, Any]], float],
    *,
    n_trials: int,
    seed: int | None,
    progress: bool | None,
) -> None:
    optuna = _import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: Any) -> float:
        which = 0
        if len(space.grids) > 1:
            which = int(trial.suggest_categorical("space", list(range(len(space.grids)))))
        params = {
            name: values[
                int(trial.suggest_categorical(f"{which}:{name}", list(range(len(values)))))
            ]
            for name, values in space.grids[which]
        }
        score = run(params)
        # a fold without additions gives no score; Optuna must still see a number to rank
        return score if np.isfinite(score) else -np.inf

    study.optimize(objective, n_trials=n_trials, show_progress_bar=_common.show_progress(progress))


def _result(
    recommender: Recommender,
    book: Book,
    space: _Space,
    rows: list[dict[str, Any]],
    configs: list[dict[str, Any]],
    *,
    metric: str,
    stamps: Sequence[pd.Timestamp],
) -> TuneResult:
    columns = [
        Columns.trial,
        Columns.params,
        *space.names,
        Columns.selection_score,
        Columns.held_out_score,
        Columns.fit_seconds,
    ]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for name in space.names:
        column = table[name].astype(object)
        table[name] = column.where(column.notna(), None)
    selection = table[Columns.selection_score].to_numpy(np.float64)
    if not np.isfinite(selection).any():
        raise ValueError(
            f"{_OWNER}: no trial could be scored on the selection folds "
            f"({', '.join(_common.day(s) for s in stamps[:-1])}): no client added a product within "
            "the horizon, or no offer was made. Use other cutoffs or a longer horizon."
        )
    key = np.where(np.isfinite(selection), selection, -np.inf)
    # stable sort on the negated score: ties go to the earlier trial
    order = np.argsort(-key, kind="stable")
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.arange(1, order.shape[0] + 1)
    table[Columns.rank] = rank
    best = int(order[0])
    best_params = dict(configs[best])
    return TuneResult(
        results=table,
        best_params=best_params,
        best_recommender=_configure(recommender, best_params).fit(book),
        held_out=float(table[Columns.held_out_score].iloc[best]),
        metric=metric,
        selection_cutoffs=tuple(stamps[:-1]),
        held_out_cutoff=stamps[-1],
    )
