"""Every class that declares parameter constraints refuses every value they rule out.

The classes are found by walking the package, so a new estimator, rule or weighting is checked
as soon as it declares ``_parameter_constraints``: each constraint names a real parameter, each
parameter has a constraint, and each value :func:`invalid_values` derives from a constraint is
refused with the one message form.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import pkgutil
from typing import Any

import numpy as np
import pytest

import crosssell
from crosssell._params import Estimator, invalid_values
from crosssell.book import Book
from crosssell.exceptions import InvalidParameterError
from crosssell.recommender import Recommender
from crosssell.rules import FunctionRule
from crosssell.scorers import Popularity
from crosssell.scorers.base import Scorer
from crosssell.weighting import Binary, Combined

AS_OF = "2024-06-30"

# Classes that cannot be built from defaults alone: valid values of their required parameters.
BASE_ARGUMENTS: dict[type, dict[str, Any]] = {
    crosssell.scorers.Blend: {"scorers": [(Popularity(), 1.0)]},
    FunctionRule: {
        "name": "nobody",
        "kind": "contact",
        "func": lambda ctx: np.zeros(ctx.n_clients, bool),
    },
    Combined: {"factors": (Binary(),)},
}


def _classes_with_constraints() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(crosssell.__path__, prefix="crosssell."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (Spark, the web service) is not installed
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__.startswith("crosssell.") and cls.__dict__.get(
                "_parameter_constraints"
            ):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


CLASSES = _classes_with_constraints()


def _init_names(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    assert issubclass(cls, Estimator)
    return cls._param_names()


def _cases() -> list[Any]:
    out = []
    for cls in CLASSES:
        for param, specs in cls.__dict__["_parameter_constraints"].items():
            if specs == "no_validation":
                continue
            for i, value in enumerate(invalid_values(specs)):
                # ids from the value's type, not its repr, so that every worker collects the same
                label = f"{cls.__name__}-{param}-{i}-{type(value).__name__}"
                out.append(pytest.param(cls, param, value, id=label))
    return out


@functools.cache
def _book() -> Book:
    return crosssell.datasets.tiny()


def _build_and_check(cls: type, arguments: dict[str, Any], fit: bool) -> None:
    if dataclasses.is_dataclass(cls):
        cls(**arguments)
        return
    obj = cls(**arguments)
    if not fit:
        obj._validate_params()
    elif isinstance(obj, Recommender):
        obj.fit(_book(), AS_OF)
    else:
        obj.fit(_book().matrix(AS_OF), _book())


def test_the_walk_finds_estimators_rules_and_weightings() -> None:
    """Check that the walk reaches every family of classes that declare constraints."""
    names = {cls.__name__ for cls in CLASSES}
    assert {"Recommender", "ALS", "Blend", "OpenComplaint", "FunctionRule", "Recency"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_constraints_match_the_parameters(cls: type) -> None:
    """Check that each constraint names a parameter and each parameter has a constraint."""
    constraints = cls.__dict__["_parameter_constraints"]
    params = _init_names(cls)
    assert sorted(set(constraints) - set(params)) == [], "constraints on unknown parameters"
    assert sorted(set(params) - set(constraints)) == [], "parameters without a constraint"


@pytest.mark.parametrize(("cls", "param", "value"), _cases())
def test_invalid_values_are_refused_in_one_form(cls: type, param: str, value: Any) -> None:
    """Check that each derived invalid value raises InvalidParameterError naming the parameter."""
    arguments = {**BASE_ARGUMENTS.get(cls, {}), param: value}
    fits = [False]
    if issubclass(cls, Recommender | Scorer):
        fits.append(True)
    for fit in fits:
        with pytest.raises(InvalidParameterError) as caught:
            _build_and_check(cls, arguments, fit)
        assert str(caught.value).startswith(f"The {param!r} parameter of {cls.__name__} must be")
        assert caught.value.parameter == param
