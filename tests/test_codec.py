"""Tests of crosssell._codec: the registries of persisted classes and their state schemas."""

from __future__ import annotations

import pytest

import crosssell as cs
from crosssell._codec import (
    KINDS,
    StateArray,
    StateScalar,
    StateSparse,
    lookup,
    register,
    registered,
    state_schema,
)
from crosssell.exceptions import ArtifactError


def test_every_builtin_class_is_registered() -> None:
    """Check that importing crosssell registers the built-in classes of every kind."""
    assert set(registered("scorer")) == {
        "ALS",
        "BPR",
        "Blend",
        "CoOccurrence",
        "ItemKNN",
        "Popularity",
        "Ranker",
        "Response",
    }
    assert registered("rule")["AlreadyHeld"] is cs.rules.AlreadyHeld
    assert registered("weighting")["Combined"] is cs.weighting.Combined
    assert set(registered("calibrator")) == {"IsotonicCalibrator", "PlattCalibrator"}
    assert all(registered(kind) for kind in KINDS)


def test_lookup_unknown_name() -> None:
    """Check that an unknown name is refused with the classes this crosssell knows."""
    with pytest.raises(
        ArtifactError, match=r"unknown rule class 'Magic'; this crosssell knows \['"
    ):
        lookup("rule", "Magic")
    with pytest.raises(ArtifactError, match="unknown scorer class 3"):
        lookup("scorer", 3)


def test_register_refuses_a_second_class_of_the_same_name() -> None:
    """Check that two different classes cannot share a name in one registry."""

    class ALS:
        pass

    with pytest.raises(ValueError, match="two scorer classes are named 'ALS'"):
        register("scorer")(ALS)
    assert lookup("scorer", "ALS") is cs.scorers.ALS


def test_state_schema_merges_along_the_mro() -> None:
    """Check that a scorer's schema holds its own state and the state every scorer saves."""
    schema = state_schema(cs.scorers.ALS)
    assert schema["regularization_"] == StateScalar(type="float")
    assert schema["product_factors_"] == StateArray(
        dtype="float32", shape=("n_products", "n_factors")
    )
    assert schema["client_product_"] == StateSparse(
        dtype="float32", shape=("n_clients", "n_products")
    )
    assert "regularization_" not in state_schema(cs.scorers.BPR)


@pytest.mark.parametrize("name", sorted(registered("scorer")))
def test_every_scorer_declares_its_state(name: str) -> None:
    """Check that every registered scorer has a schema with the state every scorer fits."""
    schema = state_schema(lookup("scorer", name))
    assert {"client_product_", "n_clients_", "n_products_", "fallback_"} <= set(schema)
