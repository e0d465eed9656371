"""What a saved model may name: registries of crosssell's own classes, and their saved state.

This module sits below every stage, so the classes register themselves where they are
defined (``@register("scorer")``) and persistence looks them up by name without importing
the stages. Loading never runs code from a file: a class name is only ever resolved through
these registries, and a scorer's fitted state is checked against the ``_state_schema`` its
class declares before any of its arrays is read.

Kinds of registered classes: ``"scorer"``, ``"rule"``, ``"weighting"`` and ``"calibrator"``.
Importing :mod:`crosssell` imports every module, so every built-in class is registered before
any model is loaded.

Examples
--------
>>> from crosssell._codec import lookup
>>> lookup("scorer", "ALS").__name__
'ALS'
>>> lookup("scorer", "Magic")
Traceback (most recent call last):
...
crosssell.exceptions.ArtifactError: unknown scorer class 'Magic'; this crosssell knows [...]...
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from crosssell.exceptions import ArtifactError

__all__ = [
    "DIMS",
    "KINDS",
    "Kind",
    "StateArray",
    "StateBooster",
    "StateCalibrator",
    "StateDates",
    "StateDuration",
    "StateIndex",
    "StateNames",
    "StateRebuilt",
    "StateScalar",
    "StateScorers",
    "StateSparse",
    "StateSpec",
    "StateTable",
    "lookup",
    "register",
    "registered",
    "save_model",
    "set_saver",
    "state_schema",
]

Kind = Literal["scorer", "rule", "weighting", "calibrator"]
#: The kinds of classes a saved model may name.
KINDS: Final[tuple[Kind, ...]] = ("scorer", "rule", "weighting", "calibrator")
#: The dims a loader resolves from the saved Book's id lists; other named dims only have to
#: agree wherever they appear within one scorer's state.
DIMS: Final = ("n_clients", "n_products")

_T = TypeVar("_T", bound=type)
_REGISTRY: Final[dict[str, dict[str, type]]] = {kind: {} for kind in KINDS}


def register(kind: Kind) -> Callable[[_T], _T]:
    """Return a class decorator recording the class under its name among ``kind``.

    Put it outermost (above ``@dataclass``), so the class recorded is the final one.

    Parameters
    ----------
    kind : {"scorer", "rule", "weighting", "calibrator"}
        The registry.

    Returns
    -------
    callable
        The decorator; it returns the class unchanged.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, or another class already holds the name.

    Examples
    --------
    >>> from crosssell import weighting
    >>> from crosssell._codec import registered
    >>> registered("weighting")["Binary"] is weighting.Binary
    True
    """
    if kind not in _REGISTRY:
        raise ValueError(f"The 'kind' parameter of register must be one of {KINDS}. Got {kind!r}.")
    registry = _REGISTRY[kind]

    def decorate(cls: _T) -> _T:
        known = registry.get(cls.__name__)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"two {kind} classes are named {cls.__name__!r}")
        # a reloaded module replaces its own class, so the registry follows the newest one
        registry[cls.__name__] = cls
        return cls

    return decorate


def registered(kind: Kind) -> Mapping[str, type]:
    """Return the classes registered as ``kind``, by name (a copy).

    Parameters
    ----------
    kind : {"scorer", "rule", "weighting", "calibrator"}
        The registry.

    Returns
    -------
    Mapping[str, type]
        Class name to class.

    Examples
    --------
    >>> from crosssell._codec import registered
    >>> sorted(registered("calibrator"))
    ['IsotonicCalibrator', 'PlattCalibrator']
    """
    return dict(_REGISTRY[kind])


def lookup(kind: Kind, name: Any) -> type:
    """Return the class registered as ``kind`` under ``name``.

    Parameters
    ----------
    kind : {"scorer", "rule", "weighting", "calibrator"}
        The registry.
    name : Any
        The class name read from a file (anything: it is checked).

    Returns
    -------
    type
        The class.

    Raises
    ------
    ArtifactError
        If no class of that kind has that name.

    Examples
    --------
    >>> from crosssell._codec import lookup
    >>> lookup("rule", "AlreadyHeld").__name__
    'AlreadyHeld'
    """
    registry = _REGISTRY[kind]
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ArtifactError(
            f"unknown {kind} class {name!r}; this crosssell knows {sorted(registry)}. The model "
            "was made by another (newer or modified) crosssell, or the manifest was edited."
        )
    return cls


# ------------------------------------------------------------------------------ saved state
Dim = str | int | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateArray:
    """A fitted numpy array: its dtype and its shape in named dims.

    A dim is ``"n_clients"`` or ``"n_products"`` (resolved from the saved ids), another name
    (equal wherever it appears in one scorer's state), an int (exact) or None (any length).

    Examples
    --------
    >>> StateArray(dtype="float32", shape=("n_products", None)).dtype
    'float32'
    """

    dtype: str
    shape: tuple[Dim, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateSparse:
    """A fitted CSR matrix: the dtype of its values and its shape in named dims.

    Examples
    --------
    >>> StateSparse(dtype="float32", shape=("n_clients", "n_products")).shape
    ('n_clients', 'n_products')
    """

    dtype: str
    shape: tuple[Dim, Dim]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateScalar:
    """A fitted plain number; with ``dim``, a count that must equal that dim.

    Examples
    --------
    >>> StateScalar(type="int").type
    'int'
    >>> StateScalar(type="int", dim="n_products").dim
    'n_products'
    """

    type: Literal["int", "float", "bool"]
    dim: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateIndex:
    """A fitted pandas Index (labels seen while fitting).

    Examples
    --------
    >>> StateIndex()
    StateIndex()
    """


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateScorers:
    """A list of fitted scorers, each checked against its own class's schema.

    Examples
    --------
    >>> StateScorers()
    StateScorers()
    """


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateNames:
    """A fitted list of names (text); its length is the dim ``dim``.

    Examples
    --------
    >>> StateNames(dim="n_features").dim
    'n_features'
    """

    dim: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateBooster:
    """Fitted gradient-boosted trees of a binary classifier, in LightGBM's own text model format.

    Loading parses the text with LightGBM, never with pickle; the model's number of features is
    the dim ``features``. With ``nullable``, None (no model) is also valid state.

    Examples
    --------
    >>> StateBooster(features="n_features", nullable=True).features
    'n_features'
    """

    features: str
    nullable: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateCalibrator:
    """A fitted crosssell calibrator (isotonic or Platt), saved as its plain numbers.

    Examples
    --------
    >>> StateCalibrator(nullable=True).nullable
    True
    """

    nullable: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateDuration:
    """A fitted duration (a pandas Timedelta), saved in nanoseconds.

    Examples
    --------
    >>> StateDuration()
    StateDuration()
    """


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateDates:
    """A fitted list of dates (pandas Timestamps without time zone), saved in nanoseconds.

    Examples
    --------
    >>> StateDates()
    StateDates()
    """


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateTable:
    """A fitted small table (a pandas DataFrame) of exactly these columns, numbers or dates.

    Examples
    --------
    >>> StateTable(columns=("rows", "positives")).columns
    ('rows', 'positives')
    """

    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StateRebuilt:
    """Fitted state that is never saved: the class rebuilds it at load from the saved Book.

    A class declaring one defines ``_restore(book, as_of)``, which a load calls once every
    saved attribute is set; a file holding such state is refused.

    Examples
    --------
    >>> StateRebuilt()
    StateRebuilt()
    """


StateSpec = (
    StateArray
    | StateSparse
    | StateScalar
    | StateIndex
    | StateScorers
    | StateNames
    | StateBooster
    | StateCalibrator
    | StateDuration
    | StateDates
    | StateTable
    | StateRebuilt
)


def state_schema(cls: type) -> dict[str, StateSpec]:
    """Return the saved state of a scorer class: the ``_state_schema`` of it and its bases.

    Each class declares only the attributes it fits itself; a base's entries are inherited.

    Parameters
    ----------
    cls : type
        A scorer class.

    Returns
    -------
    dict
        Fitted attribute name to its spec: :class:`StateArray`, :class:`StateSparse`,
        :class:`StateScalar`, :class:`StateIndex`, :class:`StateScorers`, :class:`StateNames`,
        :class:`StateBooster`, :class:`StateCalibrator`, :class:`StateDuration`,
        :class:`StateDates`, :class:`StateTable` or :class:`StateRebuilt`.

    Examples
    --------
    >>> from crosssell._codec import lookup, state_schema
    >>> schema = state_schema(lookup("scorer", "ItemKNN"))
    >>> schema["similarity_"]
    StateSparse(dtype='float32', shape=('n_products', 'n_products'))
    >>> schema["n_clients_"]
    StateScalar(type='int', dim='n_clients')
    """
    out: dict[str, StateSpec] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get("_state_schema", {}))
    return out


# ------------------------------------------------------------------------------ saving hook
_SAVER: list[Callable[..., Path]] = []


def set_saver(fn: Callable[..., Path]) -> None:
    """Install the function that writes a fitted Recommender to disk.

    Persistence installs it when imported, so the Recommender can save itself without
    importing the layer that knows every class.

    Parameters
    ----------
    fn : callable
        Called as ``fn(rec, path, compress=..., scoring_only=...)``; returns the path written.

    Examples
    --------
    >>> from crosssell._codec import set_saver
    >>> from crosssell import persist
    >>> set_saver(persist.save)
    """
    _SAVER[:] = [fn]


def save_model(
    rec: Any, path: str | os.PathLike[str], *, compress: bool = False, scoring_only: bool = False
) -> Path:
    """Save ``rec`` with the installed saver (see :func:`set_saver`).

    Parameters
    ----------
    rec : Recommender
        A fitted Recommender.
    path : str or path-like
        Target.
    compress : bool, default False
        Deflate the zip entries.
    scoring_only : bool, default False
        Leave the events out: a model for scoring fresh frames only.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    RuntimeError
        If ``crosssell.persist`` installed no saver.

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from crosssell._codec import save_model
    >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_model(rec, f"{d}/model").name
    'model'
    """
    if not _SAVER:
        # persistence installs the saver when imported; reach it by name, not by an import
        # statement, so that this bottom layer never depends on the layer that knows every class
        importlib.import_module("crosssell.persist")
    if not _SAVER:
        raise RuntimeError("Saving needs crosssell.persist, which installed no saver.")
    return _SAVER[0](rec, path, compress=compress, scoring_only=scoring_only)
