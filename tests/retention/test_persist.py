"""Saving and loading a retention model: no pickle, the same predictions after the round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.exceptions import ArtifactError
from crosssell.persist import load_retention, save_retention
from crosssell.retention import RetentionModel

from .conftest import AS_OF, renewal_book


@pytest.mark.parametrize(
    ("learner", "name"), [("logistic", "risk.crosssell"), ("lightgbm", "risk")]
)
def test_a_saved_model_predicts_what_it_predicted(tmp_path: Path, learner: str, name: str) -> None:
    """Check that predictions, survival, contracts and parameters survive a save and a load."""
    book = renewal_book(150, seed=11)
    model = RetentionModel(model=learner, n_estimators=30).fit(book, AS_OF)
    again = load_retention(save_retention(model, tmp_path / name))
    pd.testing.assert_frame_equal(again.predict(), model.predict())
    pd.testing.assert_frame_equal(again.survival(), model.survival())
    pd.testing.assert_frame_equal(again.predict_contracts(), model.predict_contracts())
    assert again.get_params() == model.get_params()
    assert again.as_of_ == model.as_of_
    pd.testing.assert_frame_equal(again.training_, model.training_)


def test_user_features_cannot_be_saved(tmp_path: Path) -> None:
    """Check that a model with user features refuses to save and writes nothing."""
    book = renewal_book(150, seed=11)
    feature = ("one", lambda ctx, clients: np.ones(clients.size))
    model = RetentionModel(contracts=False, features=[feature]).fit(book, AS_OF)
    with pytest.raises(ArtifactError, match=r"user features \['one'\] are code"):
        save_retention(model, tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_an_edited_or_foreign_file_is_refused(tmp_path: Path) -> None:
    """Check that a changed array, a recommender's file and junk are refused with reasons."""
    book = renewal_book(150, seed=11)
    model = RetentionModel(contracts=False).fit(book, AS_OF)
    folder = save_retention(model, tmp_path / "risk")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"]["clients"]["names"] = manifest["model"]["clients"]["names"][:-1]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="has shape"):
        load_retention(folder)
    rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    other = rec.save(tmp_path / "rec.crosssell")
    with pytest.raises(ArtifactError, match="expected 'crosssell-retention-model'"):
        load_retention(other)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK not really")
    with pytest.raises(ArtifactError, match="Cannot load a retention model"):
        load_retention(junk)
