"""Tests of crosssell.evaluation.tuning: grid and random search, chosen on early folds only."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pandas as pd
import pytest

from crosssell.book import Book
from crosssell.datasets import synthetic_book
from crosssell.evaluation import TuneResult, backtest, tune
from crosssell.evaluation.tuning import FloatRange, IntRange, default_space
from crosssell.recommender import Recommender
from crosssell.scorers import ALS, CoOccurrence, ItemKNN, Popularity

# On this book CoOccurrence(measure="jaccard") has the better recall@10 over the first two
# cutoffs, and CoOccurrence() the better one on the last: a search that peeked would flip.
CUTOFFS = ["2023-12-31", "2024-06-30", "2024-12-31"]
HORIZON = "180D"
METRIC = "recall@10"


@pytest.fixture(scope="module")
def book() -> Book:
    return synthetic_book(600, seed=1)


def _fold_scores(book: Book, scorer: CoOccurrence) -> np.ndarray:
    result = backtest(
        Recommender(scorer=scorer), book, CUTOFFS, HORIZON, k=10, baseline=False, n_boot=0
    )
    m = result.metrics
    rows = m[(m["metric"] == "recall") & (m["offer_type"] == "all") & (m["segment"] == "all")]
    return rows.sort_values("fold")["value"].to_numpy(np.float64)


def test_choice_ignores_the_last_fold(book: Book) -> None:
    """Check that the configuration is chosen on the earlier folds, not on the reported one."""
    confidence = _fold_scores(book, CoOccurrence())
    jaccard = _fold_scores(book, CoOccurrence(measure="jaccard"))
    # the premise: the two folds that choose and the fold that reports disagree
    assert jaccard[:-1].mean() > confidence[:-1].mean()
    assert confidence[-1] > jaccard[-1]

    result = tune(
        Recommender(),
        book,
        {"scorer": [CoOccurrence()], "scorer__measure": ["confidence", "jaccard"]},
        CUTOFFS,
        horizon=HORIZON,
        metric=METRIC,
        search="grid",
        progress=False,
    )
    assert result.best_params["scorer__measure"] == "jaccard"
    assert result.held_out == pytest.approx(jaccard[-1])
    table = result.results.set_index("scorer__measure")
    assert table.loc["jaccard", "selection_score"] == pytest.approx(jaccard[:-1].mean())
    assert table.loc["confidence", "held_out_score"] == pytest.approx(confidence[-1])
    assert result.selection_cutoffs == (pd.Timestamp(CUTOFFS[0]), pd.Timestamp(CUTOFFS[1]))
    assert result.held_out_cutoff == pd.Timestamp(CUTOFFS[2])


def test_grid_search_runs_every_configuration(book: Book) -> None:
    """Check that grid search tries each configuration of a union of grids once, in order."""
    space = [
        {"scorer": [Popularity()]},
        {"scorer": [ALS(factors=4, iterations=2, random_state=0)], "scorer__factors": [2, 4]},
        {"scorer": [ItemKNN()], "scorer__neighbours": [5]},
    ]
    result = tune(
        Recommender(),
        book,
        space,
        CUTOFFS[:2],
        horizon=HORIZON,
        metric="ndcg@5",
        search="grid",
        n_trials=1,
        progress=False,
    )
    table = result.results
    assert isinstance(result, TuneResult)
    assert table.shape == (4, 10)
    assert table.columns.tolist() == [
        "trial",
        "params",
        "scorer",
        "scorer__factors",
        "scorer__neighbours",
        "selection_score",
        "held_out_score",
        "fit_seconds",
        "pruned",
        "rank",
    ]
    assert table["trial"].tolist() == [0, 1, 2, 3]
    assert table["scorer__factors"].tolist() == [None, 2, 4, None]
    assert table["params"].iloc[0] == "scorer=Popularity()"
    assert sorted(table["rank"].tolist()) == [1, 2, 3, 4]
    assert (table["fit_seconds"] > 0).all()
    best = table.loc[table["rank"] == 1].iloc[0]
    assert best["selection_score"] == table["selection_score"].max()
    assert result.held_out == best["held_out_score"]


def test_random_search_samples_without_repetition(book: Book) -> None:
    """Check that random search tries n_trials distinct configurations, the same for one seed."""
    space = {
        "scorer": [CoOccurrence()],
        "scorer__measure": ["confidence", "lift", "jaccard"],
        "scorer__min_support": [1, 2],
    }
    kwargs = {"horizon": HORIZON, "metric": "ndcg@3", "n_trials": 3, "progress": False}
    first = tune(Recommender(), book, space, CUTOFFS[:2], random_state=7, **kwargs)
    again = tune(Recommender(), book, space, CUTOFFS[:2], random_state=7, **kwargs)
    assert first.results.shape[0] == 3
    assert first.results["params"].is_unique
    assert first.results["params"].tolist() == again.results["params"].tolist()
    whole = tune(Recommender(), book, space, CUTOFFS[:2], **{**kwargs, "n_trials": 50})
    assert whole.results.shape[0] == 6


def test_space_and_template_are_not_changed(book: Book) -> None:
    """Check that the recommender and the scorers in the space keep their parameters."""
    scorer = CoOccurrence()
    template = Recommender(scorer=CoOccurrence())
    tune(
        template,
        book,
        [{"scorer": [scorer], "scorer__min_support": [3]}, {"scorer__measure": ["lift"]}],
        CUTOFFS[:2],
        horizon=HORIZON,
        search="grid",
        progress=False,
    )
    assert scorer.get_params() == {"measure": "confidence", "min_support": 1}
    assert template.scorer is not None
    assert template.scorer.get_params() == {"measure": "confidence", "min_support": 1}
    assert not hasattr(template, "scorer_")


def test_best_recommender_is_refitted_on_the_whole_book(book: Book) -> None:
    """Check that the returned recommender has the best parameters and is fitted at the end."""
    result = tune(
        Recommender(),
        book,
        {"scorer": [Popularity(), CoOccurrence()]},
        CUTOFFS[:2],
        horizon=HORIZON,
        progress=False,
    )
    best = result.best_recommender
    assert type(best.scorer) is type(result.best_params["scorer"])
    assert best.scorer is not result.best_params["scorer"]
    assert best.as_of_ == book.dates[1]
    assert best.recommend(book.client_ids.external[:3], explain=False).shape[0] > 0


def test_one_cutoff_is_refused(book: Book) -> None:
    """Check that a single cutoff is refused: nothing would be left to report on."""
    with pytest.raises(ValueError, match="tune needs at least 2 cutoffs") as info:
        tune(Recommender(), book, {"scorer": [Popularity()]}, ["2024-06-30"], progress=False)
    assert "Got 1 (2024-06-30). Add an earlier cutoff." in str(info.value)
    with pytest.raises(ValueError, match="at least 2 cutoffs"):
        tune(Recommender(), book, {"scorer": [Popularity()]}, ["2024-06-30"] * 2)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"colour": [1]}, "names 'colour', which Recommender does not have"),
        (
            {"scorer": [Popularity(), ALS()], "scorer__factors": [8]},
            "scorer=Popularity() has no parameter 'factors'",
        ),
        ({"scorer": []}, "non-empty list of values"),
        ({}, "non-empty dicts"),
        ([], "is empty"),
    ],
)
def test_bad_space_is_refused_before_fitting(book: Book, space: object, message: str) -> None:
    """Check that a space naming parameters that cannot be set fails with a clear message."""
    with pytest.raises(ValueError, match=re.escape(message)):
        tune(Recommender(), book, space, CUTOFFS[:2], progress=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "ndcg"}, "The 'metric' parameter of tune must be a str 'name@k'"),
        ({"metric": "auc@10"}, "Got 'auc@10' instead."),
        ({"metric": "ndcg@0"}, "Got 'ndcg@0' instead."),
        ({"n_trials": 0}, "The 'n_trials' parameter of tune must be an int in the range [1, inf)"),
        (
            {"search": "bayes"},
            "The 'search' parameter of tune must be a str among {'grid', 'random'}",
        ),
    ],
)
def test_bad_parameters_are_refused(book: Book, kwargs: dict[str, object], message: str) -> None:
    """Check that invalid parameters fail in scikit-learn's wording."""
    with pytest.raises(ValueError, match=re.escape(message)):
        tune(Recommender(), book, {"scorer": [Popularity()]}, CUTOFFS[:2], **kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("optuna") is not None, reason="optuna installed")
def test_optuna_missing_gives_a_clear_error(book: Book) -> None:
    """Check that use_optuna=True without Optuna says how to install it."""
    with pytest.raises(ImportError, match="pip install optuna"):
        tune(Recommender(), book, {"scorer": [Popularity()]}, CUTOFFS[:2], use_optuna=True)


def test_plot_marks_the_chosen_trial(book: Book) -> None:
    """Check that the plot draws one point per trial and a separate marker for the choice."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = tune(
        Recommender(),
        book,
        {"scorer": [Popularity(), CoOccurrence(), ItemKNN()]},
        CUTOFFS[:2],
        horizon=HORIZON,
        progress=False,
    )
    fig = result.plot()
    try:
        trials, chosen = fig.axes[0].collections[:2]
        assert len(trials.get_offsets()) == 2
        assert len(chosen.get_offsets()) == 1
    finally:
        plt.close(fig)


# ------------------------------------------------------------------- ranges, Optuna, pruning
def test_ranges_are_drawn_by_random_search_and_refused_by_grid_search(book: Book) -> None:
    """Check that a range gives drawn values within it, and that grid search says it cannot."""
    space = {"scorer": [CoOccurrence()], "scorer__min_support": IntRange(1, 20, log=True)}
    result = tune(Recommender(), book, space, CUTOFFS[:2], horizon=HORIZON, metric=METRIC,
                  n_trials=4, progress=False)  # fmt: skip
    values = result.results["scorer__min_support"].tolist()
    assert len(values) == 4
    assert all(isinstance(v, int) and 1 <= v <= 20 for v in values)
    with pytest.raises(ValueError, match="has no grid to walk"):
        tune(Recommender(), book, space, CUTOFFS[:2], horizon=HORIZON, search="grid",
             progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: IntRange(5, 1), "must not exceed"),
        (lambda: IntRange(0, 10, log=True), "log range needs low > 0"),
        (lambda: IntRange(1.5, 3), "finite ints"),
        (lambda: FloatRange(0.0, float("inf")), "finite floats"),
    ],
)
def test_bad_ranges_are_refused(make, message: str) -> None:
    """Check that a range that cannot be drawn from says why."""
    with pytest.raises(ValueError, match=message):
        make()


def test_default_spaces_name_parameters_their_scorers_have() -> None:
    """Check that every default space sets only parameters of its scorer."""
    from crosssell.scorers import BPR, Ranker

    for scorer in (ItemKNN(), ALS(), BPR(), CoOccurrence(), Ranker()):
        space = default_space(Recommender(scorer=scorer))
        names = scorer.get_params()
        assert all(key.removeprefix("scorer__") in names for key in space)
    assert "scorer" in default_space(Recommender())  # the default Ranker, made explicit
    with pytest.raises(ValueError, match="no default search space for Popularity"):
        default_space(Recommender(scorer=Popularity()))


try:
    import optuna
except ImportError:  # the optuna extra is not installed
    optuna = None
needs_optuna = pytest.mark.skipif(optuna is None, reason="optuna is not installed")


@needs_optuna
def test_optuna_trials_score_as_the_whole_backtest(book: Book) -> None:
    """Check that Optuna's fold-by-fold trials give the scores of one backtest of all folds."""
    confidence = _fold_scores(book, CoOccurrence())
    result = tune(Recommender(), book, {"scorer": [CoOccurrence()]}, CUTOFFS, horizon=HORIZON,
                  metric=METRIC, n_trials=1, use_optuna=True, pruner=None,
                  progress=False)  # fmt: skip
    row = result.results.iloc[0]
    assert row["selection_score"] == pytest.approx(confidence[:-1].mean())
    assert row["held_out_score"] == pytest.approx(confidence[-1])
    assert not row["pruned"]


@needs_optuna
def test_optuna_searches_ranges(book: Book) -> None:
    """Check that Optuna suggests integers and floats within their ranges."""
    space = {"scorer": [ALS(iterations=2, random_state=0)],
             "scorer__factors": IntRange(2, 16, log=True),
             "scorer__regularization": FloatRange(0.01, 10.0, log=True)}  # fmt: skip
    result = tune(Recommender(), book, space, CUTOFFS[:2], horizon=HORIZON, metric=METRIC,
                  n_trials=3, use_optuna=True, progress=False)  # fmt: skip
    table = result.results
    assert len(table) == 3
    assert table["scorer__factors"].between(2, 16).all()
    assert table["scorer__regularization"].between(0.01, 10.0).all()


@needs_optuna
def test_a_trial_behind_after_its_first_fold_is_stopped(book: Book) -> None:
    """Check that a pruned trial stops after its first fold and is never chosen."""
    confidence = _fold_scores(book, CoOccurrence())
    jaccard = _fold_scores(book, CoOccurrence(measure="jaccard"))
    worse, better = sorted([("confidence", confidence[0]), ("jaccard", jaccard[0])],
                           key=lambda x: x[1])  # fmt: skip
    assert worse[1] < better[1]
    pruner = optuna.pruners.ThresholdPruner(lower=(worse[1] + better[1]) / 2)
    space = {"scorer": [CoOccurrence()], "scorer__measure": ["confidence", "jaccard"]}
    result = tune(Recommender(), book, space, CUTOFFS, horizon=HORIZON, metric=METRIC,
                  n_trials=6, use_optuna=True, pruner=pruner, progress=False)  # fmt: skip
    table = result.results
    stopped = table[table["pruned"]]
    assert set(stopped["scorer__measure"]) == {worse[0]}
    assert stopped["selection_score"].isna().all()
    assert stopped["held_out_score"].isna().all()
    assert result.best_params["scorer__measure"] == better[0]


@needs_optuna
def test_the_best_so_far_rule_stops_only_a_clearly_worse_first_fold() -> None:
    """Check the default pruner: 20% below the best first fold of five finished trials."""
    from crosssell.evaluation.tuning import _best_so_far

    study = optuna.create_study(direction="maximize", pruner=_best_so_far(optuna))
    for value in (0.30, 0.40, 0.50, 0.45, 0.35):
        study.add_trial(optuna.trial.create_trial(
            params={}, distributions={}, value=value, intermediate_values={0: value}))  # fmt: skip
    for first, stop in ((0.39, True), (0.41, False), (0.60, False)):
        trial = study.ask()
        trial.report(first, step=0)
        assert trial.should_prune() is stop, first
        study.tell(trial, first)


@needs_optuna
def test_a_stored_study_resumes_and_reports_every_trial(book: Book, tmp_path) -> None:
    """Check that a study kept in SQLite resumes: earlier trials are read back, more run."""
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    space = {"scorer": [CoOccurrence()], "scorer__min_support": IntRange(1, 30)}
    kwargs = {"horizon": HORIZON, "metric": METRIC, "n_trials": 2, "use_optuna": True,
              "progress": False, "storage": storage, "study_name": "cooc"}  # fmt: skip
    first = tune(Recommender(), book, space, CUTOFFS[:2], **kwargs)
    second = tune(Recommender(), book, space, CUTOFFS[:2], **kwargs)
    assert len(first.results) == 2
    assert len(second.results) == 4
    pd.testing.assert_frame_equal(
        second.results.iloc[:2].drop(columns=["rank", "fit_seconds"]),
        first.results.drop(columns=["rank", "fit_seconds"]),
    )
    other = {"scorer": [Popularity()], "scorer__by": [None]}
    with pytest.raises(ValueError, match="made on another search space"):
        tune(Recommender(), book, other, CUTOFFS[:2], **kwargs)
