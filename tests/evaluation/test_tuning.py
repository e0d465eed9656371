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
    assert table.shape == (4, 9)
    assert table.columns.tolist() == [
        "trial",
        "params",
        "scorer",
        "scorer__factors",
        "scorer__neighbours",
        "selection_score",
        "held_out_score",
        "fit_seconds",
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
