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
import numpy.typing as npt
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

__all__ = ["FloatRange", "IntRange", "TuneResult", "default_space", "tune"]


@dataclass(frozen=True, slots=True)
class IntRange:
    """Whole numbers from ``low`` to ``high`` (both included) for a searched parameter.

    Parameters
    ----------
    low, high : int
    log : bool, default False
        Draw on a log scale (each factor of 10 equally likely), for counts that span orders
        of magnitude such as neighbours or factors.
    step : int, default 1

    Examples
    --------
    >>> IntRange(5, 200, log=True)
    IntRange(low=5, high=200, log=True, step=1)
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        _check_range(self, int)

    def draw(self, rng: np.random.Generator) -> int:
        """Draw one value (log-uniform with ``log``).

        Examples
        --------
        >>> 5 <= IntRange(5, 200, log=True).draw(np.random.default_rng(0)) <= 200
        True
        """
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(max(math.floor(value), self.low), self.high))
        n = (self.high - self.low) // self.step
        return int(self.low + self.step * int(rng.integers(0, n + 1)))


@dataclass(frozen=True, slots=True)
class FloatRange:
    """Real numbers from ``low`` to ``high`` for a searched parameter.

    Parameters
    ----------
    low, high : float
    log : bool, default False
        Draw on a log scale, for rates and regularisation strengths.

    Examples
    --------
    >>> FloatRange(0.01, 100.0, log=True).log
    True
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self, float)

    def draw(self, rng: np.random.Generator) -> float:
        """Draw one value (log-uniform with ``log``).

        Examples
        --------
        >>> 0.01 <= FloatRange(0.01, 100.0, log=True).draw(np.random.default_rng(0)) <= 100
        True
        """
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))


Range = IntRange | FloatRange


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value))


def _check_range(r: IntRange | FloatRange, kind: type) -> None:
    name = type(r).__name__
    ends: tuple[Any, Any] = (r.low, r.high)  # whatever the caller gave
    numbers_ok = all(_finite_number(v) for v in ends)
    whole = all(isinstance(v, numbers.Integral) for v in ends)
    if not numbers_ok or (kind is int and not whole):
        raise ValueError(f"{name}: low and high must be finite {kind.__name__}s; got {r!r}.")
    if r.low > r.high:
        raise ValueError(f"{name}: low ({r.low}) must not exceed high ({r.high}).")
    if r.log and r.low <= 0:
        raise ValueError(f"{name}: a log range needs low > 0; got {r.low}.")
    if isinstance(r, IntRange) and (r.step < 1 or (r.log and r.step != 1)):
        raise ValueError(f"{name}: step must be >= 1, and 1 on a log scale; got {r.step}.")


#: One search space: parameter name (``set_params`` spelling) -> candidate values or a range.
SpaceDict = Mapping[str, Sequence[Any] | IntRange | FloatRange]

# what is worth searching for each built-in scorer, by its class name
_DEFAULT_SPACES: Final[dict[str, dict[str, Any]]] = {
    "ItemKNN": {"neighbours": IntRange(5, 200, log=True), "metric": ["cosine", "bm25", "tfidf"]},
    "ALS": {
        "factors": IntRange(8, 256, log=True),
        "regularization": FloatRange(0.01, 100.0, log=True),
        "alpha": FloatRange(0.5, 50.0, log=True),
        "iterations": IntRange(5, 30),
    },
    "BPR": {
        "factors": IntRange(8, 256, log=True),
        "learning_rate": FloatRange(0.001, 0.1, log=True),
        "regularization": FloatRange(1e-4, 0.1, log=True),
    },
    "CoOccurrence": {"measure": ["confidence", "lift"], "min_support": IntRange(1, 20, log=True)},
    "Ranker": {
        "n_estimators": IntRange(50, 400, log=True),
        "learning_rate": FloatRange(0.02, 0.2, log=True),
        "n_candidates": IntRange(20, 100),
        "negatives_per_positive": IntRange(5, 50, log=True),
    },
}


def default_space(recommender: Recommender) -> dict[str, Any]:
    """Return a sensible search space for the recommender's scorer, in ``set_params`` spelling.

    Parameters
    ----------
    recommender : Recommender

    Returns
    -------
    dict
        ``"scorer__<name>"`` -> list of values or :class:`IntRange` / :class:`FloatRange`.

    Raises
    ------
    ValueError
        For a scorer without a default space (pass your own).

    Examples
    --------
    >>> from crosssell.scorers import ItemKNN
    >>> default_space(Recommender(scorer=ItemKNN()))["scorer__neighbours"]
    IntRange(low=5, high=200, log=True, step=1)
    >>> sorted(default_space(Recommender()))[:2]  # the default Ranker, made explicit
    ['scorer', 'scorer__learning_rate']
    """
    scorer = recommender.scorer
    head: dict[str, Any] = {}
    if scorer is None:
        from crosssell.recommender import default_scorer

        scorer = default_scorer()
        head = {"scorer": [scorer]}  # the default, made explicit so its parameters can be set
    name = type(scorer).__name__
    if name not in _DEFAULT_SPACES:
        raise ValueError(
            f"default_space: no default search space for {name}; pass a space of your own, "
            f"e.g. {{'scorer__<parameter>': [...]}}. Scorers with one: {sorted(_DEFAULT_SPACES)}."
        )
    return head | {f"scorer__{key}": value for key, value in _DEFAULT_SPACES[name].items()}


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
        fold), ``rank`` (1 = best selection score; ties go to the earlier trial).
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

    def log_to_mlflow(self, *, run_name: str | None = None, log_best: bool = False) -> str:
        """Log the tuning to MLflow (needs the ``mlflow`` extra); see :func:`crosssell.mlflow.log_tune`.

        The choice, its held-out score, the trials table and chart in the active run (or a new
        one), and each trial as a nested run with its parameters and scores.

        Parameters
        ----------
        run_name : str, optional
            The name of a new run.
        log_best : bool, default False
            Also log :attr:`best_recommender` as an MLflow model (the ``crosssell`` flavor).

        Returns
        -------
        str
            The run id of the parent run.

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
        >>> from crosssell.scorers import CoOccurrence, Popularity
        >>> result = tune(Recommender(), tiny(), {"scorer": [Popularity(), CoOccurrence()]},
        ...               ["2024-06-15", "2024-07-03"], horizon="60D", metric="recall@1",
        ...               progress=False)
        >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(
        ...         os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"}):
        ...     mlflow.set_tracking_uri(f"file://{folder}/mlruns")
        ...     run_id = result.log_to_mlflow(run_name="tune")
        ...     trials = mlflow.search_runs(
        ...         filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
        ...     mlflow.set_tracking_uri(None)
        >>> sorted(trials["params.scorer"])
        ['CoOccurrence()', 'Popularity()']
        """  # noqa: E501
        # the MLflow adapter sits above evaluation; this door is a convenience, as DataFrame.plot
        from crosssell.mlflow import log_tune

        return log_tune(self, run_name=run_name, log_best=log_best)


# --------------------------------------------------------------------------- the space


@dataclass(frozen=True, slots=True, kw_only=True)
class _Space:
    """A union of grids; configuration ``i`` is decoded from a mixed-radix index.

    A parameter is a tuple of values or a range; a space with a range has no finite grid: its
    configurations are drawn (:meth:`draw`) or suggested by Optuna.
    """

    grids: tuple[tuple[tuple[str, tuple[Any, ...] | Range], ...], ...]

    @property
    def has_ranges(self) -> bool:
        return any(isinstance(v, IntRange | FloatRange) for grid in self.grids for _, v in grid)

    @property
    def sizes(self) -> tuple[int, ...]:
        if self.has_ranges:
            raise ValueError(
                f"{_OWNER}: a space with IntRange or FloatRange has no grid to walk; use "
                "search='random' or use_optuna=True."
            )
        return tuple(
            math.prod(len(cast(tuple[Any, ...], values)) for _, values in grid)
            for grid in self.grids
        )

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """One configuration: a sub-space at random, then each parameter at random."""
        grid = self.grids[int(rng.integers(0, len(self.grids)))]
        return {
            name: values.draw(rng)
            if isinstance(values, IntRange | FloatRange)
            else values[int(rng.integers(0, len(values)))]
            for name, values in grid
        }

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
                    choices = cast(tuple[Any, ...], values)
                    index, pick = divmod(index, len(choices))
                    out[name] = choices[pick]
                return dict(reversed(out.items()))
            index -= size
        raise IndexError(index)


def _as_space(space: SpaceDict | Sequence[SpaceDict]) -> _Space:
    items = [space] if isinstance(space, Mapping) else list(space)
    usage = (
        "Pass a dict of parameter name -> list of values or a range, e.g. "
        "{'scorer__factors': [32, 64]} or {'scorer__factors': IntRange(8, 256, log=True)}, "
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
        grid: list[tuple[str, tuple[Any, ...] | Range]] = []
        for name, values in item.items():
            if isinstance(name, str) and isinstance(values, IntRange | FloatRange):
                grid.append((name, values))
                continue
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
            given = values.get(head, (top[head],))
            hosts = given if isinstance(given, tuple) else (top[head],)
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
    pruner: Any = "best",
    storage: str | None = None,
    study_name: str | None = None,
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
        Let Optuna's TPE sampler choose the ``n_trials`` configurations (``pip install
        "crosssell[optuna]"``). The same temporal rule applies; each trial runs its folds one
        at a time, so that a bad trial can be stopped after its first.
    pruner : "best", an Optuna pruner, or None, default "best"
        With Optuna: ``"best"`` stops a trial whose first fold scores more than 20% below the
        best first fold of the finished trials (from the sixth trial on); any
        ``optuna.pruners`` object decides instead; None runs every fold of every trial.
        Stopped trials are kept in the results with ``pruned`` True and no score.
    storage : str, optional
        With Optuna: where the study is kept, e.g. ``"sqlite:///tune.db"``. With
        ``study_name``, a search that stops can be resumed: its finished trials are read back
        and ``n_trials`` more are run. The Optuna dashboard reads the same storage.
    study_name : str, optional
        The study's name in ``storage``.

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

    def measure(estimator: Recommender, at: Sequence[pd.Timestamp]) -> npt.NDArray[np.float64]:
        result = backtest(
            estimator, book, list(at), span, k=(k,), baseline=False, n_boot=0, progress=False
        )
        return _fold_scores(result, name, k)

    def record(params: dict[str, Any], scores: Any, seconds: float, pruned: bool) -> float:
        scores = np.asarray(scores, dtype=np.float64)
        head = scores[:-1]
        selection = float(np.nanmean(head)) if np.isfinite(head).any() and not pruned else np.nan
        configs.append(params)
        rows.append(
            {
                Columns.trial: len(rows),
                Columns.params: _params_text(params),
                **{key: _cell(value) for key, value in params.items()},
                Columns.selection_score: selection,
                Columns.held_out_score: float(scores[-1]),
                Columns.fit_seconds: seconds,
                _PRUNED: pruned,
            }
        )
        return selection

    def run(params: dict[str, Any]) -> float:
        started = time.perf_counter()
        scores = measure(_configure(recommender, params), stamps)
        return record(params, scores, time.perf_counter() - started, False)

    if use_optuna:
        _optuna_search(
            grid, measure, record, recommender, stamps,
            n_trials=n, seed=seed, progress=progress, pruner=pruner, storage=storage,
            study_name=study_name, rows=rows, configs=configs,
        )  # fmt: skip
    else:
        if grid.has_ranges:
            if search == "grid":
                grid.sizes  # noqa: B018 - raises: a range has no grid
            rng = np.random.default_rng(seed)
            drawn = [grid.draw(rng) for _ in range(n)]
        else:
            if search == "grid" or grid.size <= n:
                order = list(range(grid.size))
            else:
                order = [int(i) for i in np.random.default_rng(seed).choice(grid.size, n, False)]
            drawn = [grid.config(index) for index in order]
        bar = _common.progress_bar(
            drawn, desc=_OWNER, unit="trial", disable=not _common.show_progress(progress)
        )
        try:
            for params in bar:
                run(params)
                best = max((r[Columns.selection_score] for r in rows), key=_sortable)
                bar.set_postfix_str(f"best {metric} {best:.4g}")
        finally:
            bar.close()

    return _result(recommender, book, grid, rows, configs, metric=metric, stamps=stamps)


def _sortable(value: float) -> float:
    return value if np.isfinite(value) else -np.inf


def _fold_scores(result: Any, name: str, k: int) -> npt.NDArray[np.float64]:
    """Return the metric of every fold of a backtest (NaN for a fold without a score)."""
    m = result.metrics
    pick = m[
        (m[Columns.metric] == name)
        & (m[Columns.k] == k)
        & (m[Columns.offer_type] == _ALL)
        & (m[Columns.segment] == _ALL)
        & (m[Columns.model] == "crosssell")
    ]
    by_fold = pick.set_index(Columns.fold)[Columns.value]
    scores: npt.NDArray[np.float64] = by_fold.reindex(range(len(result.folds))).to_numpy(np.float64)
    return scores


_PRUNED: Final = "pruned"
# Optuna user attribute holding a trial's scores, so that a resumed study can be reported whole
_ATTR: Final = "crosssell"
# "best": a first fold this far below the best finished first fold stops the trial
_PRUNE_MARGIN: Final = 0.2
_PRUNE_STARTUP: Final = 5


def _best_so_far(optuna: Any) -> Any:
    """Return an Optuna pruner stopping a first fold clearly below the best finished one."""

    class BestSoFar(optuna.pruners.BasePruner):  # type: ignore[misc]
        def prune(self, study: Any, trial: Any) -> bool:
            step = trial.last_step
            if step is None:
                return False
            value = trial.intermediate_values[step]
            done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            seen = [t.intermediate_values.get(step) for t in done]
            seen = [v for v in seen if v is not None and math.isfinite(v)]
            if len(seen) < _PRUNE_STARTUP or not math.isfinite(value):
                return False
            best = max(seen)
            return bool(value < best - _PRUNE_MARGIN * abs(best))

    return BestSoFar()


def _suggest(trial: Any, space: _Space) -> dict[str, Any]:
    which = 0
    if len(space.grids) > 1:
        which = int(trial.suggest_categorical("space", list(range(len(space.grids)))))
    params: dict[str, Any] = {}
    for name, values in space.grids[which]:
        key = f"{which}:{name}"
        if isinstance(values, IntRange):
            params[name] = trial.suggest_int(
                key, values.low, values.high, step=values.step, log=values.log
            )
        elif isinstance(values, FloatRange):
            params[name] = trial.suggest_float(key, values.low, values.high, log=values.log)
        else:
            index = int(trial.suggest_categorical(key, list(range(len(values)))))
            params[name] = values[index]
    return params


def _decode(space: _Space, suggested: Mapping[str, Any], number: int) -> dict[str, Any]:
    """Return a stored trial's configuration; an error when it came from another space."""
    which = int(suggested.get("space", 0))
    try:
        grid = space.grids[which]
        out = {}
        for name, values in grid:
            value = suggested[f"{which}:{name}"]
            out[name] = value if isinstance(values, IntRange | FloatRange) else values[value]
    except (IndexError, KeyError, TypeError) as err:
        raise ValueError(
            f"{_OWNER}: trial {number} of the stored study was made on another search space "
            f"({dict(suggested)}); resume a study with the space it was started with, or give "
            "a new study_name."
        ) from err
    return out


def _optuna_search(
    space: _Space,
    measure: Callable[[Recommender, Sequence[pd.Timestamp]], npt.NDArray[np.float64]],
    record: Callable[[dict[str, Any], Any, float, bool], float],
    recommender: Recommender,
    stamps: Sequence[pd.Timestamp],
    *,
    n_trials: int,
    seed: int | None,
    progress: bool | None,
    pruner: Any,
    storage: str | None,
    study_name: str | None,
    rows: list[dict[str, Any]],
    configs: list[dict[str, Any]],
) -> None:
    optuna = _import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if isinstance(pruner, str) and pruner == "best":
        pruner = _best_so_far(optuna)
    elif pruner is None:
        pruner = optuna.pruners.NopPruner()
    elif not isinstance(pruner, optuna.pruners.BasePruner):
        raise ValueError(
            f"The 'pruner' parameter of {_OWNER} must be 'best', an optuna.pruners object or "
            f"None. Got {pruner!r} instead."
        )
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
        storage=storage,
        study_name=study_name,
        load_if_exists=storage is not None,
    )
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def objective(trial: Any) -> float:
        params = _suggest(trial, space)
        estimator = _configure(recommender, params)
        started = time.perf_counter()
        scores = np.full(len(stamps), np.nan)
        # the first fold alone, then the rest: a trial clearly behind stops here
        scores[0] = measure(estimator, stamps[:1])[0]
        first = float(scores[0]) if np.isfinite(scores[0]) else -math.inf
        trial.report(first, step=0)
        pruned = len(stamps) > 2 and trial.should_prune()
        if not pruned:
            scores[1:] = measure(estimator, stamps[1:])
        seconds = time.perf_counter() - started
        trial.set_user_attr(
            _ATTR, {"scores": [None if not np.isfinite(v) else float(v) for v in scores],
                    "seconds": seconds, "pruned": bool(pruned)},
        )  # fmt: skip
        if pruned:
            raise optuna.TrialPruned()
        head = scores[:-1]
        selection = float(np.nanmean(head)) if np.isfinite(head).any() else -math.inf
        # a fold without additions gives no score; Optuna must still see a number to rank
        return selection if math.isfinite(selection) else -math.inf

    study.optimize(
        objective,
        n_trials=n_trials,
        show_progress_bar=_common.show_progress(progress),
        catch=(),
    )
    # every finished trial of the study, resumed ones included, in the order they ran
    for trial in sorted(study.get_trials(deepcopy=False, states=finished), key=lambda t: t.number):
        stored = trial.user_attrs.get(_ATTR)
        if stored is None:
            continue
        scores = [np.nan if v is None else v for v in stored["scores"]]
        record(
            _decode(space, trial.params, trial.number),
            scores,
            float(stored["seconds"]),
            bool(stored["pruned"]),
        )


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
        _PRUNED,
    ]
    table = pd.DataFrame(rows).reindex(columns=columns)
    table[_PRUNED] = table[_PRUNED].fillna(False).astype(bool)
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
