"""Parameter constraints: one mechanism and one message for every estimator, rule and builder."""

import math
import numbers

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosssell._params import (
    InstanceOf,
    Interval,
    Options,
    Satisfies,
    invalid_values,
    make_constraint,
    validate_params,
)
from crosssell.exceptions import InvalidParameterError

K = Interval(numbers.Integral, 1, None, closed="left")
SHARE = Interval(numbers.Real, 0, 1, closed="right")


def test_interval_admits_its_kind_within_its_bounds() -> None:
    """Check that an int interval refuses bools, floats and its open bound; numpy ints pass."""
    assert K.is_satisfied_by(1)
    assert K.is_satisfied_by(np.int64(7))
    assert not K.is_satisfied_by(0)
    assert not K.is_satisfied_by(True)
    assert not K.is_satisfied_by(2.0)
    assert SHARE.is_satisfied_by(1)
    assert SHARE.is_satisfied_by(0.5)
    assert not SHARE.is_satisfied_by(0)
    assert not SHARE.is_satisfied_by(math.nan)


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        (K, "an int in the range [1, inf)"),
        (SHARE, "a float in the range (0, 1]"),
        (Interval(numbers.Real, None, 2.5, closed="neither"), "a float in the range (-inf, 2.5)"),
        (Options({"log", "linear"}), "a str among {'linear', 'log'}"),
        (InstanceOf(str), "a str"),
        (make_constraint(None), "None"),
        (make_constraint("boolean"), "a bool"),
        (make_constraint("callable"), "a callable"),
    ],
)
def test_each_constraint_says_what_it_admits(constraint: object, words: str) -> None:
    """Check the words each constraint puts in the message."""
    assert str(constraint) == words


def test_message_names_the_class_the_parameter_every_option_and_the_value() -> None:
    """Check scikit-learn's message: class, parameter, all admitted forms joined by 'or', value."""
    with pytest.raises(InvalidParameterError) as info:
        validate_params("ItemKNN", {"k": -2}, {"k": [K, None]})
    assert str(info.value) == (
        "The 'k' parameter of ItemKNN must be an int in the range [1, inf) or None. Got -2 instead."
    )
    assert (info.value.owner, info.value.parameter) == ("ItemKNN", "k")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TypeError)


def test_parameters_without_constraints_are_not_checked() -> None:
    """Check that only parameters with constraints are checked, and valid values pass."""
    validate_params("X", {"k": 3, "free": object()}, {"k": [K]})


@given(
    left=st.one_of(st.none(), st.integers(-5, 5)),
    width=st.integers(0, 5),
    right_none=st.booleans(),
    closed=st.sampled_from(["left", "right", "both", "neither"]),
    kind=st.sampled_from([numbers.Integral, numbers.Real]),
)
def test_generated_invalid_values_are_always_refused(
    left: int | None, width: int, right_none: bool, closed: str, kind: type
) -> None:
    """Check that every value a constraint offers as invalid is refused by it, and raises."""
    right = None if right_none else (0 if left is None else left) + width
    interval = Interval(kind, left, right, closed=closed)  # type: ignore[arg-type]
    bad = invalid_values([interval])
    assert bad, "every interval can be broken by a value of the wrong type"
    for value in bad:
        assert not interval.is_satisfied_by(value)
        with pytest.raises(InvalidParameterError, match="The 'p' parameter of T must be"):
            validate_params("T", {"p": value}, {"p": [interval]})


def test_invalid_values_skip_what_another_constraint_admits() -> None:
    """Check that a value one constraint refuses but another admits is not offered as invalid."""
    either = [Options({"auto"}), K]
    assert all(
        not any(make_constraint(c).is_satisfied_by(v) for c in either)
        for v in invalid_values(either)
    )
    assert 3 not in invalid_values(either)


def test_satisfies_treats_an_error_in_its_predicate_as_a_refusal() -> None:
    """Check that a predicate that cannot read a value refuses it instead of raising."""
    pair = Satisfies(lambda v: len(v) == 2, "a pair", (3,))
    assert pair.is_satisfied_by((1, 2))
    assert not pair.is_satisfied_by(3)
