"""scikit-learn's estimator manners, shared by scorers and the Recommender.

Parameters are the keyword arguments of ``__init__``, stored unchanged; ``fit`` validates them;
fitted state ends in ``_``.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Self, TypeAlias, cast

import numpy as np

from crosssell.exceptions import InvalidParameterError, NotFittedError

__all__ = [
    "Constraint",
    "Estimator",
    "InstanceOf",
    "Interval",
    "Options",
    "Satisfies",
    "check_fitted",
    "check_params",
    "invalid_values",
    "make_constraint",
    "validate_params",
]


class Estimator:
    """Base class giving ``get_params``, ``set_params``, ``clone`` and a short repr.

    Examples
    --------
    >>> class Toy(Estimator):
    ...     def __init__(self, *, alpha=1.0, name="x"):
    ...         self.alpha = alpha
    ...         self.name = name
    >>> Toy(alpha=2.0)
    Toy(alpha=2.0)
    >>> Toy().set_params(name="y").get_params()
    {'alpha': 1.0, 'name': 'y'}
    """

    #: Each parameter's admissible values, checked by :meth:`_validate_params` (see
    #: :func:`validate_params`); subclasses extend it.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the parameters given to ``__init__``.

        Parameters
        ----------
        deep : bool, default True
            Also return the parameters of nested estimators as ``name__param``.

        Returns
        -------
        dict

        Examples
        --------
        >>> class Toy(Estimator):
        ...     def __init__(self, *, alpha=1.0):
        ...         self.alpha = alpha
        >>> Toy().get_params()
        {'alpha': 1.0}
        """
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            out[name] = value
            if deep and isinstance(value, Estimator):
                out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return out

    def set_params(self, **params: Any) -> Self:
        """Set parameters (``name__param`` reaches a nested estimator) and return ``self``.

        Parameters
        ----------
        **params
            New parameter values.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a parameter is unknown.

        Examples
        --------
        >>> class Toy(Estimator):
        ...     def __init__(self, *, alpha=1.0):
        ...         self.alpha = alpha
        >>> Toy().set_params(alpha=3).alpha
        3
        """
        valid = self._param_names()
        for key, value in params.items():
            head, _, rest = key.partition("__")
            if head not in valid:
                raise ValueError(
                    f"Invalid parameter {head!r} for {type(self).__name__}. "
                    f"Valid parameters are: {sorted(valid)!r}."
                )
            if rest:
                inner = getattr(self, head)
                if not callable(getattr(inner, "set_params", None)):
                    raise ValueError(
                        f"Parameter {head!r} of {type(self).__name__} is not an estimator, so "
                        f"{key!r} cannot be set."
                    )
                inner.set_params(**{rest: value})
            else:
                setattr(self, head, value)
        return self

    def clone(self) -> Self:
        """Return an unfitted copy with the same parameters (nested estimators cloned too).

        Returns
        -------
        Estimator

        Examples
        --------
        >>> class Toy(Estimator):
        ...     def __init__(self, *, alpha=1.0):
        ...         self.alpha = alpha
        >>> t = Toy(alpha=5)
        >>> t.fitted_ = True
        >>> c = t.clone()
        >>> c.alpha, hasattr(c, "fitted_")
        (5, False)
        """
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            params[name] = _clone_value(value)
        return type(self)(**params)

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name in self._param_names():
            value = getattr(self, name)
            default = sig.parameters[name].default
            if not _same(value, default):
                # a long value (a policy of a dozen rules) may offer a one-line form
                short = getattr(value, "_short_repr", None)
                shown.append(f"{name}={short() if callable(short) else repr(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def _validate_params(self) -> None:
        check_params(self)

    def _is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("__") for k in vars(self))


def _clone_value(value: Any) -> Any:
    if isinstance(value, Estimator) or (
        callable(getattr(value, "clone", None)) and callable(getattr(value, "get_params", None))
    ):
        return value.clone()
    if isinstance(value, list | tuple):
        items = [_clone_value(v) for v in value]
        return type(value)(items) if isinstance(value, list) else tuple(items)
    if isinstance(value, np.random.Generator):
        return copy.deepcopy(value)
    return value


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False


def check_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` if ``estimator`` lacks the fitted ``attribute``.

    Parameters
    ----------
    estimator : object
        The estimator.
    attribute : str
        A fitted attribute, ending in ``_``.

    Raises
    ------
    NotFittedError

    Examples
    --------
    >>> class ALS:
    ...     pass
    >>> check_fitted(ALS(), "item_factors_")
    Traceback (most recent call last):
    ...
    crosssell.exceptions.NotFittedError: This ALS instance is not fitted yet. Call 'fit' ...
    """
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. "
            "Call 'fit' before using it."
        )


# --------------------------------------------------------------------------------------------
# Parameter constraints as data, checked in one place
# --------------------------------------------------------------------------------------------


class Constraint(abc.ABC):
    """One admissible family of values for a parameter.

    A class lists each parameter's constraints in ``_parameter_constraints``; a value is valid when
    it satisfies at least one of them. Each constraint also yields values that break it, so one
    test can try every class's parameters with values they must refuse.

    Examples
    --------
    >>> Interval(numbers.Integral, 1, None, closed="left").is_satisfied_by(3)
    True
    >>> str(Options({"cosine", "bm25"}))
    "a str among {'bm25', 'cosine'}"
    """

    @abc.abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` is admissible under this constraint.

        Parameters
        ----------
        value : object

        Returns
        -------
        bool

        Examples
        --------
        >>> Options({"a"}).is_satisfied_by("b")
        False
        """

    def invalid_values(self) -> list[Any]:
        """Return values that break this constraint (for tests that generate bad input).

        Returns
        -------
        list

        Examples
        --------
        >>> Interval(numbers.Integral, 1, None, closed="left").invalid_values()
        [0, 1.5, '1']
        """
        return [object()]

    @abc.abstractmethod
    def __str__(self) -> str:
        """Say in words what the constraint admits, as the error message shows it."""


@dataclass(frozen=True, slots=True)
class Interval(Constraint):
    """Numbers of one kind between two bounds.

    Parameters
    ----------
    type : numbers.Integral or numbers.Real
        ``numbers.Integral`` admits ints (never bools); ``numbers.Real`` admits ints and floats.
    left, right : float or None
        The bounds; ``None`` is unbounded (infinities themselves are never admitted).
    closed : {"left", "right", "both", "neither"}
        Which bounds are included.

    Examples
    --------
    >>> half = Interval(numbers.Real, 0, 1, closed="right")
    >>> half.is_satisfied_by(1), half.is_satisfied_by(0), str(half)
    (True, False, 'a float in the range (0, 1]')
    """

    type: type
    left: float | None
    right: float | None
    closed: Literal["left", "right", "both", "neither"]

    def __post_init__(self) -> None:
        if self.type not in (numbers.Integral, numbers.Real):
            raise ValueError(
                f"Interval's type must be numbers.Integral or numbers.Real. Got {self.type!r}."
            )
        if self.closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                "Interval's closed must be one of 'left', 'right', 'both', 'neither'. "
                f"Got {self.closed!r}."
            )
        if self.left is not None and self.right is not None and self.left > self.right:
            raise ValueError(f"Interval's left bound {self.left} is above its right {self.right}.")

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.type):
            return False
        number = float(cast(Any, value))
        # an unbounded side is open ("[0, inf)"): infinity itself is no admissible number
        if not np.isfinite(number):
            return False
        open_left = self.closed in ("right", "neither")
        open_right = self.closed in ("left", "neither")
        if self.left is not None and (number < self.left or (number == self.left and open_left)):
            return False
        return not (
            self.right is not None
            and (number > self.right or (number == self.right and open_right))
        )

    def invalid_values(self) -> list[Any]:
        out: list[Any] = []
        step = 1 if self.type is numbers.Integral else 0.5
        if self.left is not None:
            out.append(self.left if self.closed in ("right", "neither") else self.left - step)
        if self.right is not None:
            out.append(self.right if self.closed in ("left", "neither") else self.right + step)
        if self.type is numbers.Integral:
            inside = self.left if self.left is not None else 0
            out.append(float(inside) + 0.5)
        else:
            out.append(float("nan"))
            if self.right is None:
                out.append(float("inf"))
        out.append(str(self.left if self.left is not None else 0))
        return [_tidy(v, self.type) for v in out]

    def __str__(self) -> str:
        what = "an int" if self.type is numbers.Integral else "a float"
        lo = "-inf" if self.left is None else _bound(self.left, self.type)
        hi = "inf" if self.right is None else _bound(self.right, self.type)
        lb = "[" if self.left is not None and self.closed in ("left", "both") else "("
        rb = "]" if self.right is not None and self.closed in ("right", "both") else ")"
        return f"{what} in the range {lb}{lo}, {hi}{rb}"


def _bound(value: float, kind: type) -> str:
    return str(int(value)) if kind is numbers.Integral or float(value).is_integer() else str(value)


def _tidy(value: Any, kind: type) -> Any:
    if isinstance(value, float) and kind is numbers.Integral and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class Options(Constraint):
    """One of a fixed set of values (usually strings).

    Parameters
    ----------
    values : collection
        The admissible values.

    Examples
    --------
    >>> Options({"linear", "log"}).is_satisfied_by("log")
    True
    """

    values: frozenset[Any] | set[Any] | tuple[Any, ...]

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return value in self.values
        except TypeError:  # an unhashable value is no option
            return False

    def invalid_values(self) -> list[Any]:
        return ["not-an-option", 3]

    def __str__(self) -> str:
        listed = sorted(self.values, key=repr)
        kind = "a str" if all(isinstance(v, str) for v in listed) else "a value"
        return f"{kind} among {{{', '.join(repr(v) for v in listed)}}}"


@dataclass(frozen=True, slots=True)
class InstanceOf(Constraint):
    """An instance of one or more types.

    Parameters
    ----------
    types : type or tuple of types
    description : str, optional
        How the message names it (default: "an instance of 'Name'").

    Examples
    --------
    >>> str(InstanceOf(str, "a non-empty str"))
    'a non-empty str'
    >>> InstanceOf(bool).is_satisfied_by(1)
    False
    """

    types: type | tuple[type, ...]
    description: str = ""
    non_empty: bool = False

    def is_satisfied_by(self, value: Any) -> bool:
        if self.types is not bool and isinstance(value, bool):
            wanted = self.types if isinstance(self.types, tuple) else (self.types,)
            if bool not in wanted and int in wanted:
                return False
        if not isinstance(value, self.types):
            return False
        return not (self.non_empty and len(cast(Any, value)) == 0)

    def invalid_values(self) -> list[Any]:
        out: list[Any] = [object()]
        if self.non_empty:
            wanted = self.types if isinstance(self.types, tuple) else (self.types,)
            out += [t() for t in wanted if t in (str, tuple, list)][:1]
        return out

    def __str__(self) -> str:
        if self.description:
            return self.description
        wanted = self.types if isinstance(self.types, tuple) else (self.types,)
        names = [_TYPE_WORDS.get(t, f"an instance of {t.__name__!r}") for t in wanted]
        return _either(names)


@dataclass(frozen=True, slots=True)
class Satisfies(Constraint):
    """A value for which a predicate holds (for shapes the other constraints cannot say).

    Parameters
    ----------
    predicate : callable
        ``predicate(value) -> bool``; an exception counts as ``False``.
    description : str
        What it admits, in words, for the message.
    examples_of_invalid : tuple
        Values the predicate refuses, for generated tests.

    Examples
    --------
    >>> pairs = Satisfies(lambda v: len(v) == 2, "a pair", ((1,),))
    >>> pairs.is_satisfied_by((1, 2)), str(pairs)
    (True, 'a pair')
    """

    predicate: Callable[[Any], bool]
    description: str
    examples_of_invalid: tuple[Any, ...] = ()

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except Exception:
            return False

    def invalid_values(self) -> list[Any]:
        return list(self.examples_of_invalid)

    def __str__(self) -> str:
        return self.description


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def invalid_values(self) -> list[Any]:
        return []

    def __str__(self) -> str:
        return "None"


class _CallableConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return callable(value)

    def invalid_values(self) -> list[Any]:
        return [3]

    def __str__(self) -> str:
        return "a callable"


_TYPE_WORDS: Final[dict[type, str]] = {
    bool: "a bool",
    int: "an int",
    float: "a float",
    str: "a str",
    dict: "a dict",
    list: "a list",
    tuple: "a tuple",
}

ConstraintLike: TypeAlias = Constraint | type | str | None
"""What a ``_parameter_constraints`` list may hold: a :class:`Constraint`, a type, ``None``,
``"boolean"`` (a bool, numpy's included) or ``"callable"``."""


def make_constraint(spec: ConstraintLike) -> Constraint:
    """Turn a shorthand in ``_parameter_constraints`` into a :class:`Constraint`.

    Parameters
    ----------
    spec : Constraint, type, None, "boolean" or "callable"

    Returns
    -------
    Constraint

    Raises
    ------
    ValueError
        For a shorthand it does not know.

    Examples
    --------
    >>> str(make_constraint(None)), str(make_constraint("boolean")), str(make_constraint(str))
    ('None', 'a bool', 'a str')
    """
    if isinstance(spec, Constraint):
        return spec
    if spec is None:
        return _NoneConstraint()
    if spec == "boolean":
        return InstanceOf((bool, np.bool_), "a bool")
    if spec == "callable":
        return _CallableConstraint()
    if isinstance(spec, type):
        return InstanceOf(spec)
    raise ValueError(f"Unknown parameter constraint {spec!r}.")


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def validate_params(
    owner: object | str,
    params: Mapping[str, Any],
    constraints: Mapping[str, Sequence[ConstraintLike]],
) -> None:
    """Check each parameter against its constraints; raise one message on the first failure.

    Parameters with no entry in ``constraints`` are not checked; an entry ``"no_validation"``
    skips a parameter on purpose.

    Parameters
    ----------
    owner : object or str
        The estimator, rule or builder (its class name goes in the message), or that name.
    params : mapping
        Parameter name to value.
    constraints : mapping
        Parameter name to a list of constraints, any one of which admits a value.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` and ``TypeError``, saying which parameter, what it admits and what it got.

    Examples
    --------
    >>> validate_params("Recommender", {"k": 0},
    ...                 {"k": [Interval(numbers.Integral, 1, None, closed="left")]})
    Traceback (most recent call last):
    ...
    crosssell.exceptions.InvalidParameterError: The 'k' parameter of Recommender must be an int in the range [1, inf). Got 0 instead.
    """  # noqa: E501 - a doctest's expected line cannot wrap
    name = owner if isinstance(owner, str) else type(owner).__name__
    for param, value in params.items():
        specs = constraints.get(param)
        if specs is None or specs == "no_validation":
            continue
        rules = [make_constraint(s) for s in specs]
        if any(rule.is_satisfied_by(value) for rule in rules):
            continue
        raise InvalidParameterError(
            f"The {param!r} parameter of {name} must be {_either([str(r) for r in rules])}. "
            f"Got {value!r} instead.",
            owner=name,
            parameter=param,
        )


def invalid_values(specs: Sequence[ConstraintLike]) -> list[Any]:
    """Return values that none of ``specs`` admits (for tests that generate bad parameters).

    Parameters
    ----------
    specs : sequence
        One parameter's constraints.

    Returns
    -------
    list

    Examples
    --------
    >>> invalid_values([Interval(numbers.Integral, 1, None, closed="left"), None])
    [0, 1.5, '1']
    """
    rules = [make_constraint(s) for s in specs]
    out: list[Any] = []
    for rule in rules:
        out.extend(
            value
            for value in rule.invalid_values()
            if not any(r.is_satisfied_by(value) for r in rules)
        )
    return out


def check_params(obj: Any) -> None:
    """Check an estimator's or a frozen value's parameters against its class's constraints.

    Estimators call this at the start of ``fit``; rules and other frozen values call it in
    ``__post_init__``. One mechanism, one message for every class.

    Parameters
    ----------
    obj : Estimator or dataclass instance
        Its class holds ``_parameter_constraints``.

    Raises
    ------
    InvalidParameterError

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> at_least_0 = Interval(numbers.Integral, 0, None, closed="left")
    >>> @dataclass(frozen=True)
    ... class Cap:
    ...     _parameter_constraints = {"per_month": [at_least_0]}
    ...     per_month: int = 2
    ...     def __post_init__(self):
    ...         check_params(self)
    >>> Cap(per_month=-1)
    Traceback (most recent call last):
    ...
    crosssell.exceptions.InvalidParameterError: The 'per_month' parameter of Cap must be an int ...
    """
    constraints = getattr(type(obj), "_parameter_constraints", {})
    if isinstance(obj, Estimator):
        params = {name: getattr(obj, name) for name in obj._param_names()}
    elif dataclasses.is_dataclass(obj):
        params = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        params = {name: getattr(obj, name) for name in constraints if hasattr(obj, name)}
    validate_params(obj, params, constraints)
