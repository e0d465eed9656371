"""scikit-learn's estimator manners, shared by scorers and the Recommender.

Parameters are the keyword arguments of ``__init__``, stored unchanged; ``fit`` validates them;
fitted state ends in ``_``.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from typing import Any, Self

import numpy as np

from crosssell.exceptions import NotFittedError

__all__ = ["Estimator", "check_fitted", "check_number", "check_option", "check_random_state"]


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
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

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


def check_number(
    owner: object,
    name: str,
    value: Any,
    *,
    kind: type = numbers.Real,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    none_ok: bool = False,
) -> None:
    """Validate a numeric parameter and raise scikit-learn's message on failure.

    Parameters
    ----------
    owner : object
        The estimator (its class name goes in the message).
    name : str
        Parameter name.
    value : object
        The value given.
    kind : type, default numbers.Real
        ``numbers.Integral`` for ints.
    low, high : float, optional
        Bounds (``None``: unbounded).
    low_open : bool, default False
        Whether ``low`` itself is excluded.
    none_ok : bool, default False
        Whether ``None`` is allowed.

    Raises
    ------
    ValueError

    Examples
    --------
    >>> class Recommender:
    ...     pass
    >>> check_number(Recommender(), "k", 0, kind=numbers.Integral, low=1)
    Traceback (most recent call last):
    ...
    ValueError: The 'k' parameter of Recommender must be an int in the range [1, inf). Got 0 ...
    """
    if value is None and none_ok:
        return
    is_int = kind is numbers.Integral
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = not np.isnan(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v <= high
    if not ok:
        lo = "-inf" if low is None else (str(int(low)) if is_int else str(low))
        hi = "inf" if high is None else (str(int(high)) if is_int else str(high))
        left = "(" if (low is None or low_open) else "["
        right = ")" if high is None else "]"
        what = "an int" if is_int else "a float"
        extra = " or None" if none_ok else ""
        raise ValueError(
            f"The {name!r} parameter of {type(owner).__name__} must be {what} in the range "
            f"{left}{lo}, {hi}{right}{extra}. Got {value!r} instead."
        )


def check_option(owner: object, name: str, value: Any, options: tuple[Any, ...]) -> None:
    """Validate a parameter that takes one of a few options.

    Parameters
    ----------
    owner : object
        The estimator.
    name : str
        Parameter name.
    value : object
        The value given.
    options : tuple
        Allowed values.

    Raises
    ------
    ValueError

    Examples
    --------
    >>> class ItemKNN:
    ...     pass
    >>> check_option(ItemKNN(), "metric", "l2", ("cosine", "bm25"))
    Traceback (most recent call last):
    ...
    ValueError: The 'metric' parameter of ItemKNN must be one of 'cosine', 'bm25'. Got 'l2' instead.
    """
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(
            f"The {name!r} parameter of {type(owner).__name__} must be one of {listed}. "
            f"Got {value!r} instead."
        )


def check_random_state(seed: Any) -> np.random.Generator:
    """Turn ``None``, an int or a Generator into a Generator.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        For anything else.

    Examples
    --------
    >>> int(check_random_state(0).integers(10)) == int(check_random_state(0).integers(10))
    True
    """
    if seed is None or isinstance(seed, numbers.Integral):
        return np.random.default_rng(seed)  # type: ignore[arg-type]
    if isinstance(seed, np.random.Generator):
        return seed
    raise ValueError(
        f"random_state must be None, an int or a numpy.random.Generator. Got {seed!r} instead."
    )
