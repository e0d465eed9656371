"""LightGBM text models in saved Rankers: exact round trips; no damaged text reaches LightGBM."""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell.exceptions import ArtifactError
from crosssell.scorers._lightgbm import BoosterClassifier, booster_from_text, booster_text

RNG = np.random.default_rng(0)
X = RNG.random((300, 4))
X[::7, 2] = np.nan
Y = (np.nan_to_num(X[:, 0]) + X[:, 1] > 1).astype(np.int64)


def _fit(**params: Any) -> lightgbm.LGBMClassifier:
    model = lightgbm.LGBMClassifier(
        n_estimators=4, min_child_samples=5, num_leaves=7, verbose=-1, **params
    )
    return model.fit(X, Y)


MODEL = _fit()
TEXT = booster_text(MODEL)


def test_round_trip_is_exact() -> None:
    """Check that probabilities and contributions of the rebuilt trees equal the fitted ones."""
    loaded = booster_from_text(TEXT, 4)
    np.testing.assert_array_equal(loaded.predict_proba(X), MODEL.predict_proba(X))
    np.testing.assert_array_equal(
        loaded.predict_proba(X, pred_contrib=True), MODEL.predict_proba(X, pred_contrib=True)
    )
    # the training parameters after the trees are not kept: they play no part in a prediction
    trees = TEXT[: TEXT.index("end of trees")]
    assert booster_text(loaded).startswith(trees)


def test_one_leaf_trees_round_trip() -> None:
    """Check that trees without a split (nothing to learn) are read back."""
    stumps = lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=1000, verbose=-1)
    stumps.fit(X, Y)
    loaded = booster_from_text(booster_text(stumps), 4)
    np.testing.assert_array_equal(loaded.predict_proba(X), stumps.predict_proba(X))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: "garbage", "does not start with LightGBM's 'tree' line"),
        (lambda t: t[: len(t) // 3], "holds no trees, or they do not end"),
        (lambda t: t.replace("num_class=1", "num_class=3"), "is not a binary classifier"),
        (lambda t: t.replace("objective=binary", "objective=regression"), "has objective"),
        (lambda t: t.replace("max_feature_idx=3", "max_feature_idx=4"), "reads 5 features"),
        (lambda t: t.replace("\nTree=1\n", "\nTree=7\n"), "tree 1 is not where tree_sizes"),
        (lambda t: t.replace("num_cat=0", "num_cat=1", 1), "categorical or linear splits"),
        (lambda t: t.replace("\nversion=", "\nevil=1\nversion="), "unknown lines \\['evil'\\]"),
    ],
    ids=["garbage", "cut", "classes", "objective", "features", "sizes", "categorical", "key"],
)
def test_damaged_text_is_refused(edit: Any, message: str) -> None:
    """Check that an edited or truncated model text is refused with what is wrong."""
    with pytest.raises(ArtifactError, match=message):
        booster_from_text(edit(TEXT), 4)


def test_children_outside_the_tree_are_refused() -> None:
    """Check that a child index past the tree's nodes is refused before LightGBM reads it."""
    start = TEXT.index("left_child=")
    line = TEXT[start : TEXT.index("\n", start)]
    first = line.split("=")[1].split(" ")[0]
    # the same width keeps every stated tree size right, so only the index check can object
    bad = line.replace(f"={first}", "=" + "9" * len(first), 1)
    with pytest.raises(ArtifactError, match="children outside the tree"):
        booster_from_text(TEXT.replace(line, bad, 1), 4)


def test_sklearn_trees_have_no_text() -> None:
    """Check that scikit-learn's trees are refused with a pointer to LightGBM."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(max_iter=2).fit(np.nan_to_num(X), Y)
    with pytest.raises(ArtifactError, match="fit the Ranker with model='lightgbm' to save it"):
        booster_text(hgb)


@settings(max_examples=150, deadline=None)
@given(
    where=st.integers(0, len(TEXT) - 1),
    char=st.sampled_from(list("0123456789-=. \nTe")),
    how=st.sampled_from(["cut", "replace", "insert", "drop line"]),
)
def test_any_damage_is_refused_or_harmless(where: int, char: str, how: str) -> None:
    """Check that a model text damaged anywhere is refused or still predicts: it never crashes."""
    if how == "cut":
        text = TEXT[:where]
    elif how == "replace":
        text = TEXT[:where] + char + TEXT[where + 1 :]
    elif how == "insert":
        text = TEXT[:where] + char + TEXT[where:]
    else:
        lines = TEXT.split("\n")
        del lines[where % len(lines)]
        text = "\n".join(lines)
    try:
        loaded = booster_from_text(text, 4)
    except ArtifactError:
        return
    assert isinstance(loaded, BoosterClassifier)
    assert loaded.predict_proba(X).shape == (300, 2)
    assert loaded.predict_proba(X, pred_contrib=True).shape == (300, 5)


# ------------------------------------------------------------------ Forest: LightGBM's numbers
# LightGBM's zero: the float 1e-35 as a double (values within it are read as 0)
_LGB_ZERO = float(np.float32(1e-35))
_ODD = st.sampled_from(
    [0.0, -0.0, 1e-36, -1e-35, 1e-35, 1e-34, _LGB_ZERO, -_LGB_ZERO, np.nan, np.inf, -np.inf]
)


@st.composite
def _rows(draw: st.DrawFn, n_features: int) -> np.ndarray:
    """Rows of plain values with zeros, signed zeros, values around LightGBM's zero and NaN."""
    n = draw(st.integers(1, 40))
    base = draw(st.lists(st.floats(-3, 3), min_size=n * n_features, max_size=n * n_features))
    x = np.asarray(base, dtype=np.float64).reshape(n, n_features)
    odd = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n_features - 1), _ODD)))
    for i, j, v in odd:
        x[i, j] = v
    return x


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([{}, {"zero_as_missing": True}, {"use_missing": False}]),
    st.integers(0, 3),
    st.data(),
)
def test_forest_gives_lightgbm_numbers_bit_for_bit(
    params: dict[str, Any], seed: int, data: st.DataObject
) -> None:
    """Check raw scores, probabilities and leaves against LightGBM's on awkward values."""
    from crosssell.scorers._lightgbm import Forest

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((400, 5))
    x[rng.random(x.shape) < 0.25] = 0.0
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 3]) + rng.standard_normal(400) > 0
    model = lightgbm.LGBMClassifier(
        n_estimators=20, num_leaves=15, min_child_samples=5, verbose=-1, **params
    ).fit(x, y.astype(np.int64))
    booster = model.booster_
    forest = Forest.from_text(booster.model_to_string())
    assert forest is not None
    for rows in (x, data.draw(_rows(5))):
        np.testing.assert_array_equal(forest.raw(rows), booster.predict(rows, raw_score=True))
        np.testing.assert_array_equal(forest.predict(rows), booster.predict(rows))
        np.testing.assert_array_equal(forest.leaves(rows), booster.predict(rows, pred_leaf=True))


def test_forest_reads_one_leaf_trees_and_declines_what_it_cannot_walk() -> None:
    """Check a forest of stumps, and None for categorical splits, many classes and no model."""
    from crosssell.scorers._lightgbm import Forest

    stumps = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=1000, verbose=-1)
    booster = stumps.fit(X, Y).booster_
    forest = Forest.from_text(booster.model_to_string())
    assert forest is not None
    np.testing.assert_array_equal(forest.predict(X), booster.predict(X))
    assert (forest.leaves(X) == 0).all()
    cats = X.copy()
    cats[:, 3] = np.arange(300) % 4
    categorical = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
    categorical.fit(cats, (cats[:, 3] == 2).astype(np.int64), categorical_feature=[3])
    assert "num_cat=0" not in categorical.booster_.model_to_string()
    assert Forest.from_text(categorical.booster_.model_to_string()) is None
    classes = lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=5, verbose=-1)
    classes.fit(X, (X[:, 0] * 3).astype(np.int64))
    assert Forest.from_text(classes.booster_.model_to_string()) is None
    assert Forest.from_text(TEXT[: len(TEXT) // 2]) is None
    with pytest.raises(ValueError, match="4 features"):
        Forest.from_text(TEXT).predict(np.zeros((2, 3)))  # type: ignore[union-attr]


def test_forest_declines_a_tree_whose_child_leads_back_up() -> None:
    """Check that a model text whose split points back to the root gives no forest (no loop)."""
    import re

    from crosssell.scorers._lightgbm import Forest

    tree = TEXT.index("\nTree=0\n")
    line = re.compile(r"\nleft_child=([^\n]*)").search(TEXT, tree)
    assert line is not None
    looped = " ".join("0" for _ in line.group(1).split())
    text = TEXT[: line.start(1)] + looped + TEXT[line.end(1) :]
    assert Forest.from_text(TEXT) is not None
    assert Forest.from_text(text) is None


def test_the_ranker_scores_and_explains_through_the_forest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that a fitted ranker's scores and contributions are those of LightGBM's predict."""
    import crosssell as cs
    from crosssell.scorers import Ranker

    book = cs.datasets.demo()
    ranker = Ranker(n_estimators=20, windows=2).fit(book.matrix("2025-06-30"), book)
    rows = np.arange(60)
    fast = ranker.score(rows)
    x = ranker._offer_features(ranker.context_, ranker.bases_, rows, rows % ranker.n_products_)
    fast_contrib = ranker._contributions(x)
    assert ranker._forest(ranker.model_.booster_) is not None
    monkeypatch.setattr(Ranker, "_forest", lambda self, booster: None)
    ranker._leaf_cache = None
    np.testing.assert_array_equal(ranker.score(rows), fast)
    np.testing.assert_array_equal(ranker._contributions(x), fast_contrib)
