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
