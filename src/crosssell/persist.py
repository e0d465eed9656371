"""Saving and loading fitted recommenders: a JSON manifest and numpy arrays, never pickle.

A saved model is a folder, or a zip file when the name ends in ``.zip`` or ``.crosssell``,
holding two entries:

``manifest.json``
    The format name and version, the library version, when it was made, the Recommender's
    parameters as a JSON spec (scorers, rules and weightings by class name, from registries of
    crosssell's own classes), the Schema, ``as_of``, sizes, and one line per array with its
    name, dtype, shape and SHA-256 checksum. It also describes how the Book, the matrix and the
    fitted scorers are rebuilt from the arrays.
``arrays.npz``
    Every array, read back with ``numpy.load(..., allow_pickle=False)``: text is stored as
    UTF-8 bytes with offsets, ids keep their dtype through a tag, tuples are flattened with
    lengths, and nulls are masks. No object array, so no pickle.

Loading never executes code: classes are looked up by name in fixed registries (each class
registers itself where it is defined) and built from plain values, whose parameters are checked
as ``fit`` checks them. A fitted scorer's state must be exactly what its class declares in
``_state_schema``: names, dtypes and shapes are checked from the manifest before any array is
read, against the sizes of the saved id lists (which must match the lengths the manifest declares
for them), and float state must be finite. Each array's header must match its manifest line and
the archive's size for it; its data is then read a piece at a time, so a forged size allocates
nothing. Devices, pipes and folders standing in for a model's files are refused, and the manifest
is read with a cap. A file that is truncated, corrupt, foreign, made by a newer crosssell, or
that names an unknown class is refused with an :class:`~crosssell.exceptions.ArtifactError`
saying what is wrong; so is any other failure while loading.

Saving is atomic: everything is written next to the target first, flushed to disk, then renamed
onto it, so a failed save never leaves a half-written model. A folder that replaces a saved model
is swapped in with one atomic exchange where the system offers it (Linux); elsewhere the old
folder steps aside for a moment. The files get the modes the process's umask gives any file.
A save holds a lock on its temporary entry; the next save of the same target removes the entries
of saves that were killed.

A :class:`~crosssell.scorers.Ranker` keeps its trees in LightGBM's own text model format (checked
in full before LightGBM parses it) and rebuilds its feature context from the saved Book.

What is not saved: user code (a :class:`~crosssell.rules.FunctionRule`, a custom scorer, rule,
weighting or calibrator class, a Ranker's user features) makes :func:`save` fail up front; save
the model without it and give the policy again to :func:`load`. Nor are scikit-learn's trees
(``Ranker(model="hgb")``): they have no format that loads without pickle. Extra user columns
of the Book's tables that are neither numbers, booleans, dates nor text (or tuples and mixes of
those) are dropped, and the manifest's ``notes`` say so.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime as dt
import errno
import hashlib
import importlib
import json
import math
import os
import secrets
import shutil
import stat
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Final, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._codec import (
    DIMS,
    StateArray,
    StateBooster,
    StateCalibrator,
    StateDates,
    StateDuration,
    StateIndex,
    StateNames,
    StateRebuilt,
    StateScalar,
    StateScorers,
    StateSparse,
    StateSpec,
    StateTable,
    lookup,
    registered,
    set_saver,
    state_schema,
)
from crosssell._params import check_fitted
from crosssell._version import __version__
from crosssell.arbitration import (
    Explore,
    ScoreScale,
    calibrator_from_dict,
)
from crosssell.book import Book, BuildInfo, ContractArrays, Schema
from crosssell.columns import Columns
from crosssell.exceptions import ArtifactError
from crosssell.ids import IdMap
from crosssell.matrix import ClientProductMatrix
from crosssell.recommender import Recommender
from crosssell.rules import Policy
from crosssell.scorers import Scorer
from crosssell.scorers._lightgbm import booster_from_text, booster_text
from crosssell.weighting import WEIGHTING_NAMES, Combined, Weighting

# pyarrow ships no type information; only its buffer-level text arrays are used here
pa: Any = importlib.import_module("pyarrow")
# advisory locks tell a killed save's leftovers from a running one's (Windows has none)
fcntl: Any
try:
    fcntl = importlib.import_module("fcntl")
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RETENTION_FORMAT_NAME",
    "load",
    "load_retention",
    "model_id",
    "read_manifest",
    "save",
    "save_retention",
]

#: The ``format`` written in every manifest.
FORMAT_NAME: Final = "crosssell-model"
#: The newest format this crosssell reads and the one it writes.
FORMAT_VERSION: Final = 1
#: The ``format`` of a saved :class:`~crosssell.RetentionModel` (same layout and version).
RETENTION_FORMAT_NAME: Final = "crosssell-retention-model"

_MANIFEST: Final = "manifest.json"
_ARRAYS: Final = "arrays.npz"
_ZIP_SUFFIXES: Final = (".zip", ".crosssell")
_NPY: Final = ".npy"
_MANIFEST_KEYS: Final = (
    "format",
    "format_version",
    "library_version",
    "created",
    "parameters",
    "schema",
    "as_of",
    "sizes",
    "book",
    "model",
    "notes",
    "arrays",
)
_SCHEMA_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Schema))
_SIZE_KEYS: Final = ("clients", "products", "contracts", "events")
_CONTRACT_FIELDS: Final = ("client", "product", "start", "end", "value", "quantity")
_CONTRACT_DTYPES: Final = {
    "client": np.dtype(np.int32),
    "product": np.dtype(np.int32),
    "start": np.dtype(np.int64),
    "end": np.dtype(np.int64),
    "value": np.dtype(np.float64),
    "quantity": np.dtype(np.float64),
}
#: Columns the library reads; the other columns of a table are the caller's extras.
_CORE_COLUMNS: Final = {
    "products": frozenset(
        {
            Columns.product,
            Columns.family,
            Columns.tier,
            Columns.price,
            Columns.sellable,
            Columns.requires,
            Columns.excludes,
            Columns.segments,
            Columns.name,
            Columns.in_catalog,
        }
    ),
    "clients": frozenset(
        {
            Columns.client,
            Columns.segment,
            Columns.region,
            Columns.owner,
            Columns.parent,
            Columns.do_not_contact,
            Columns.satisfaction,
        }
    ),
    "events": frozenset(
        {
            Columns.client_idx,
            Columns.product_idx,
            Columns.client,
            Columns.product,
            Columns.family,
            Columns.date,
            Columns.type,
            Columns.detail,
            Columns.ref,
        }
    ),
    "contracts": frozenset({Columns.contract}),
    "rejected": frozenset(),
}
_MASKED_DTYPES: Final = frozenset(
    {
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "Float32",
        "Float64",
        "boolean",
    }
)
# Element kinds of an object column, one int8 per row.
_K_NONE: Final = 0
_K_NA: Final = 1
_K_NAT: Final = 2
_K_STR: Final = 3
_K_INT: Final = 4
_K_FLOAT: Final = 5
_K_BOOL: Final = 6
_K_TUPLE: Final = 7
#: The kinds of dtype a saved array may have: no objects, no raw bytes, no records.
_ARRAY_KINDS: Final = "biufcmM"
_MAX_NDIM: Final = 2
#: No saved model's manifest comes near this; a larger one is refused unread.
_MANIFEST_LIMIT: Final = 256 * 2**20
#: Arrays are read in pieces of this size, so memory grows with the data actually there.
_CHUNK: Final = 4 * 2**20
#: Deepest nesting of lists and objects a manifest may have. Saved models reach about 13
#: levels; the decoders recurse once per level, so a forged file nested deeper would end in
#: a RecursionError or, where the interpreter's recursion limit was raised, be read on.
_MANIFEST_DEPTH: Final = 64
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


# ---------------------------------------------------------------------------------- registries
def _scorer_classes() -> dict[str, type[Scorer]]:
    return cast(dict[str, type[Scorer]], dict(registered("scorer")))


def _rule_classes() -> dict[str, type[Any]]:
    return dict(registered("rule"))


def _weighting_classes() -> dict[str, type[Weighting]]:
    return cast(dict[str, type[Weighting]], dict(registered("weighting")))


def _calibrator_classes() -> tuple[type[Any], ...]:
    return tuple(registered("calibrator").values())


# ------------------------------------------------------------------------------ public api
def save(
    rec: Recommender,
    path: str | os.PathLike[str],
    *,
    compress: bool = False,
    scoring_only: bool = False,
) -> Path:
    """Save a fitted Recommender to a folder or a zip file, atomically.

    ``.zip`` and ``.crosssell`` names make one zip file; any other name makes a folder holding
    ``manifest.json`` and ``arrays.npz``. Everything is written next to the target, flushed to
    disk and renamed onto it last, so an interrupted save leaves the previous file (or nothing)
    in place. Events and contracts are saved whole, so a loaded model can also answer
    :meth:`~crosssell.Recommender.recommend_one` with fresh data; the rows validation set
    aside (``book.rejected``) are saved too.

    ``scoring_only=True`` saves a model for scoring fresh frames only, as batch scoring ships
    it to workers: the Book's events, the rows set aside and the extra columns of the
    contracts are left out, and what the fitted scorer computed from the events is saved
    instead (a :class:`~crosssell.scorers.Ranker`'s event features), checked on load like
    every other array. The loaded model gives the same
    :meth:`~crosssell.Recommender.recommend_frames` and
    :meth:`~crosssell.Recommender.suppressed_frames` as ``rec`` and refuses every method that
    reads the fitted Book's events or suppression (``recommend``, ``recommend_one``,
    ``suppressed``, ``why_not``, ``no_offer_*``, a whole save). Models that
    learn again from the events when loaded (a :class:`~crosssell.scorers.Response` scorer, a
    Ranker with ``response``, ``explore``) cannot be saved so.

    Parameters
    ----------
    rec : Recommender
        A fitted Recommender.
    path : str or path-like
        Target. An existing zip file is replaced; an existing folder is replaced only when it
        holds a saved model.
    compress : bool, default False
        Deflate the zip entries: smaller files, slower saves and loads.
    scoring_only : bool, default False
        Leave the events out and keep only what scoring fresh frames reads (see above).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    NotFittedError
        If ``rec`` is not fitted.
    ArtifactError
        If the model holds something that cannot be saved without code: a
        :class:`~crosssell.rules.FunctionRule` or another rule, scorer, weighting or calibrator
        that is not one of crosssell's own classes, or fitted state of an unsupported type.
        Nothing is written then. Also when the target is a folder that is not a saved model,
        with ``scoring_only`` when the model learns again from the events when loaded, and
        without it when ``rec`` was itself loaded from a scoring-only save.

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from pathlib import Path
    >>> book = cs.datasets.demo()
    >>> rec = cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(book, "2025-06-30")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = save(rec, Path(tmp) / "model.crosssell")
    ...     again = load(written)
    ...     same = again.recommend().equals(rec.recommend())
    >>> written.name, same
    ('model.crosssell', True)

    A scoring-only save scores fresh frames the same and holds no event:

    >>> frames = cs.datasets.demo_frames()
    >>> mine = frames["contracts"][frames["contracts"]["client_id"] == "C0001"]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     light = load(save(rec, Path(tmp) / "light.crosssell", scoring_only=True))
    >>> light.recommend_frames(mine).equals(rec.recommend_frames(mine)), len(light.book_.events)
    (True, 0)
    """
    check_fitted(rec, "scorer_")
    if not isinstance(scoring_only, bool):
        raise TypeError(
            f"The 'scoring_only' parameter of save must be a bool. Got {scoring_only!r} instead."
        )
    target = Path(path)
    try:
        if getattr(rec, "scoring_only_", False) and not scoring_only:
            raise ArtifactError(
                "this model was loaded from a scoring-only save, which holds no events; save it "
                "with scoring_only=True, or save the model it was made from"
            )
        writer = _Writer(scoring_only=scoring_only)
        manifest = _manifest(rec, writer)
        payload = json.dumps(manifest, indent=1, allow_nan=False, ensure_ascii=False)
        _write_atomic(target, payload.encode("utf-8"), writer.arrays, compress=compress)
    except ArtifactError as exc:
        raise ArtifactError(f"Cannot save this model to {str(target)!r}: {exc}") from None
    rec.model_id_ = model_id(manifest)
    return target


def load(path: str | os.PathLike[str], *, policy: Policy | None = None) -> Recommender:
    """Load a Recommender saved by :func:`save`, without executing any code from the file.

    The Book, the matrix and the fitted scorers are rebuilt from the arrays; candidates and
    the policy's suppression are recomputed from the Book, so the loaded model offers exactly
    what the saved one offered. A scoring-only save (see :func:`save`) loads into a model that
    scores fresh frames only (``scoring_only_`` is True).

    Parameters
    ----------
    path : str or path-like
        A saved model: a folder, or a zip file (any name).
    policy : Policy, optional
        Use this policy instead of the saved one. This is how a policy holding user code (a
        :class:`~crosssell.rules.FunctionRule`) comes back: such a rule cannot be saved, so save
        the model without it (``rec.set_params(policy=rec.policy.without("mine"))`` changes no
        fitted state) and pass the whole policy here.

    Returns
    -------
    Recommender
        Fitted.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ArtifactError
        If the file is not a saved crosssell model, is truncated or corrupt (bad zip, checksum
        mismatch), holds pickled objects, has arrays or manifest keys that do not match, was
        made with a newer format, names a class this crosssell does not know, or holds fitted
        state its class does not declare (unknown or missing names, wrong dtype or shape, NaN).

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from pathlib import Path
    >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load(save(rec, Path(tmp) / "model"))
    >>> loaded.as_of_ == rec.as_of_, type(loaded.scorer_) is type(rec.scorer_)
    (True, True)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     junk = Path(tmp) / "junk.crosssell"
    ...     _ = junk.write_bytes(b"not a model")
    ...     load(junk)
    Traceback (most recent call last):
    ...
    crosssell.exceptions.ArtifactError: Cannot load a crosssell model from '...junk.crosssell': ...
    """
    source = Path(path)
    if policy is not None and not isinstance(policy, Policy):
        raise TypeError(
            "The 'policy' parameter of load must be a crosssell.rules.Policy or None. "
            f"Got {policy!r} instead."
        )
    if not source.exists():
        raise FileNotFoundError(f"No saved model at {str(source)!r}.")
    try:
        with _open_model(source) as (manifest_bytes, open_arrays):
            manifest = _parse_manifest(manifest_bytes)
            _check_states(manifest)
            with open_arrays() as handle:
                arrays = _read_arrays(handle, manifest["arrays"])
        rec = _rebuild(manifest, _Reader(arrays), policy)
        rec.model_id_ = model_id(manifest)
        return rec
    except ArtifactError as exc:
        raise ArtifactError(f"Cannot load a crosssell model from {str(source)!r}: {exc}") from None
    except Exception as exc:
        raise ArtifactError(
            f"Cannot load a crosssell model from {str(source)!r}: it is damaged or was not made "
            f"by crosssell's save ({type(exc).__name__}: {exc})"
        ) from exc


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the manifest of a saved model, without loading its arrays.

    Parameters
    ----------
    path : str or path-like
        A saved model: a folder or a zip file.

    Returns
    -------
    dict
        The manifest: ``format``, ``format_version``, ``library_version``, ``created``,
        ``parameters``, ``schema``, ``as_of``, ``sizes``, ``notes``, ``arrays`` and the
        rebuilding specs ``book`` and ``model``.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ArtifactError
        If it is not a saved crosssell model or its format is newer than this crosssell reads.

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from pathlib import Path
    >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     manifest = read_manifest(save(rec, Path(tmp) / "model.zip"))
    >>> manifest["format"], manifest["as_of"], manifest["sizes"]["clients"]
    ('crosssell-model', '2025-06-30T00:00:00', 500)
    """
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"No saved model at {str(source)!r}.")
    try:
        with _open_model(source) as (manifest_bytes, _):
            return _parse_manifest(manifest_bytes)
    except ArtifactError as exc:
        raise ArtifactError(f"Cannot read a crosssell model from {str(source)!r}: {exc}") from None
    except Exception as exc:
        raise ArtifactError(
            f"Cannot read a crosssell model from {str(source)!r}: it is damaged or was not made "
            f"by crosssell's save ({type(exc).__name__}: {exc})"
        ) from exc


set_saver(save)


# ---------------------------------------------------------------------------- retention model
_RETENTION_DURATIONS: Final = ("horizon", "step", "grace", "lapse")


def save_retention(model: Any, path: str | os.PathLike[str], *, compress: bool = False) -> Path:
    """Save a fitted :class:`~crosssell.RetentionModel` to a folder or a zip file, atomically.

    The same layout as :func:`save`: a JSON manifest (parameters, the Book's spec, each
    model's feature names, windows and calibration) and checked arrays (the Book, the
    logistic hazard's coefficients and scaling); LightGBM's trees are kept as their own text
    model, checked in full before LightGBM reads it. No pickle.

    Parameters
    ----------
    model : RetentionModel
        Fitted, without user ``features`` (code cannot be saved: refit with them instead).
    path : str or path-like
        Target; ``.zip`` and ``.crosssell`` names make one zip file, others a folder.
    compress : bool, default False
        Deflate the zip entries.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    ArtifactError
        If the model holds user features or a random generator, or the target cannot be
        written. Nothing is written then.

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from pathlib import Path
    >>> model = cs.RetentionModel(contracts=False).fit(cs.datasets.demo(), "2025-03-31")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     again = load_retention(save_retention(model, Path(tmp) / "risk.crosssell"))
    ...     same = again.predict().equals(model.predict())
    >>> same
    True
    """
    from crosssell.retention import RetentionModel

    if not isinstance(model, RetentionModel):
        raise TypeError(f"save_retention expects a RetentionModel; got {type(model).__name__}.")
    check_fitted(model, "clients_")
    target = Path(path)
    try:
        w = _Writer()
        book = model.book_
        manifest = {
            "format": RETENTION_FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "parameters": _retention_parameters(model),
            "schema": book.schema.to_dict(),
            "as_of": model.as_of_.isoformat(),
            "sizes": {
                "clients": len(book.client_ids),
                "products": len(book.product_ids),
                "contracts": len(book.contract_arrays),
                "events": len(book.event_table),
            },
            "book": _encode_book(book, w),
            "model": {
                "horizon_ns": int(model.horizon_.value),
                "purchases": bool(model.purchases_),
                "base_rate": float(model.base_rate_),
                "clients": _encode_level(model.clients_, "clients", w),
                "lines": None if model.lines_ is None else _encode_level(model.lines_, "lines", w),
            },
            "notes": list(w.notes),
            "arrays": _array_entries(w),
        }
        payload = json.dumps(manifest, indent=1, allow_nan=False, ensure_ascii=False)
        _write_atomic(target, payload.encode("utf-8"), w.arrays, compress=compress)
    except ArtifactError as exc:
        raise ArtifactError(f"Cannot save this retention model to {str(target)!r}: {exc}") from None
    return target


def _retention_parameters(model: Any) -> dict[str, Any]:
    params = model.get_params()
    if params["features"]:
        names = [name for name, _ in params["features"]]
        raise ArtifactError(
            f"its user features {names} are code, which a saved model never holds; save a model "
            "fitted without them"
        )
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        raise ArtifactError("its random_state is a generator; give an int or None to save it")
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name == "features":
            out[name] = []
        elif name in _RETENTION_DURATIONS:
            # a duration as given ("180D"), or as pandas writes a Timedelta
            out[name] = (
                value if value is None or isinstance(value, str) else str(pd.Timedelta(value))
            )
        elif name == "bands":
            out[name] = [float(v) for v in value]
        elif isinstance(value, np.generic):
            out[name] = value.item()
        else:
            out[name] = value
    return out


def _encode_level(level: Any, prefix: str, w: _Writer) -> dict[str, Any]:
    from crosssell._retention_learners import LinearHazard

    learner = level.learner
    if isinstance(learner, LinearHazard):
        fitted: dict[str, Any] = {
            "kind": "logistic",
            "mean": w.add(f"{prefix}/mean", np.asarray(learner.mean_, np.float64)),
            "scale": w.add(f"{prefix}/scale", np.asarray(learner.scale_, np.float64)),
            "flagged": w.add(f"{prefix}/flagged", np.asarray(learner.flagged_, np.int64)),
            "coef": w.add(f"{prefix}/coef", np.asarray(learner.coef_, np.float64)),
            "intercept": float(learner.intercept_),
        }
    else:
        fitted = {
            "kind": "lightgbm",
            "text": str(learner.booster_.model_to_string()),
            "n_estimators": int(learner.n_estimators),
            "learning_rate": float(learner.learning_rate),
            "threads": int(learner.threads),
        }
    training = level.training
    return {
        "by_family": bool(level.by_family),
        "names": [str(n) for n in level.names],
        "learner": fitted,
        "calibrator": None if level.calibrator is None else level.calibrator.to_dict(),
        "training": {
            "level": training["level"].astype(str).tolist(),
            "cutoff": [pd.Timestamp(t).isoformat() for t in training[Columns.cutoff]],
            "units": training["units"].astype(int).tolist(),
            "rows": training["rows"].astype(int).tolist(),
            "departures": training["departures"].astype(int).tolist(),
        },
    }


def load_retention(path: str | os.PathLike[str]) -> Any:
    """Load a RetentionModel saved by :func:`save_retention`, without executing code from it.

    Parameters
    ----------
    path : str or path-like
        A saved retention model: a folder or a zip file.

    Returns
    -------
    RetentionModel
        Fitted on the saved Book; ``predict()`` gives what the saved model gave.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ArtifactError
        If the file is not a saved retention model, is truncated or corrupt, holds pickled
        objects, or its arrays do not match its feature names (wrong dtype, shape, NaN).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     junk = Path(tmp) / "junk.crosssell"
    ...     _ = junk.write_bytes(b"not a model")
    ...     load_retention(junk)
    Traceback (most recent call last):
    ...
    crosssell.exceptions.ArtifactError: Cannot load a retention model from '...junk.crosssell': ...
    """
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"No saved model at {str(source)!r}.")
    try:
        with _open_model(source) as (manifest_bytes, open_arrays):
            manifest = _parse_manifest(manifest_bytes, RETENTION_FORMAT_NAME)
            with open_arrays() as handle:
                arrays = _read_arrays(handle, manifest["arrays"])
        return _rebuild_retention(manifest, _Reader(arrays))
    except ArtifactError as exc:
        raise ArtifactError(f"Cannot load a retention model from {str(source)!r}: {exc}") from None
    except Exception as exc:
        raise ArtifactError(
            f"Cannot load a retention model from {str(source)!r}: it is damaged or was not "
            f"made by crosssell's save_retention ({type(exc).__name__}: {exc})"
        ) from exc


def _rebuild_retention(manifest: dict[str, Any], r: _Reader) -> Any:
    from crosssell.retention import RetentionModel

    params = _fields(manifest["parameters"], "parameters", tuple(RetentionModel._param_names()))
    if params["features"] != []:
        raise ArtifactError("parameters.features must be empty in a saved model")
    params = {**params, "features": (), "bands": tuple(params["bands"])}
    model = RetentionModel(**params)
    model._validate_params()
    book = _decode_book(manifest, r)
    spec = _fields(
        manifest["model"], "model", ("horizon_ns", "purchases", "base_rate", "clients", "lines")
    )
    model.as_of_ = pd.Timestamp(manifest["as_of"])
    model.horizon_ = pd.Timedelta(int(spec["horizon_ns"]), unit="ns")
    model.purchases_ = bool(spec["purchases"])
    model.base_rate_ = float(spec["base_rate"])
    model.book_ = book
    model.clients_ = _decode_level(spec["clients"], "model.clients", r)
    model.lines_ = None if spec["lines"] is None else _decode_level(spec["lines"], "model.lines", r)
    model.feature_names_ = list(model.clients_.names)
    model.training_ = pd.concat(
        [lvl.training for lvl in (model.clients_, model.lines_) if lvl is not None],
        ignore_index=True,
    )
    arrays = model._arrays(book, model.as_of_)
    cache: dict[Any, Any] = {}
    snap, _ = model._snapshot(arrays, arrays.as_of, cache)
    expected = [*model._static_names(snap, False), *model.clients_.names[-5:]]
    if expected != model.clients_.names:
        raise ArtifactError(
            "model.clients: the saved feature names do not match the features of the saved Book"
        )
    model._fitted_arrays = arrays
    model._fitted_cache = cache
    return model


def _decode_level(spec: Any, where: str, r: _Reader) -> Any:
    from crosssell._calibrators import IsotonicCalibrator
    from crosssell._retention_learners import HazardLevel, LinearHazard, TreeHazard

    s = _fields(spec, where, ("by_family", "names", "learner", "calibrator", "training"))
    names = s["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ArtifactError(f"{where}.names is not a list of names")
    n = len(names)
    learner_spec = s["learner"]
    kind = learner_spec.get("kind") if isinstance(learner_spec, dict) else None
    if kind == "logistic":
        ls = _fields(
            learner_spec,
            f"{where}.learner",
            ("kind", "mean", "scale", "flagged", "coef", "intercept"),
        )
        learner: Any = LinearHazard(names, 0)
        learner.mean_ = _finite(r.get(ls["mean"], dtype_kind="f"), n, f"{where}.mean")
        learner.scale_ = _finite(r.get(ls["scale"], dtype_kind="f"), n, f"{where}.scale")
        flagged = r.get(ls["flagged"], dtype_kind="iu").astype(np.int64)
        if flagged.size and (flagged.min() < 0 or flagged.max() >= n):
            raise ArtifactError(f"{where}.flagged names a feature that does not exist")
        learner.flagged_ = flagged
        learner.coef_ = _finite(
            r.get(ls["coef"], dtype_kind="f"), n + flagged.size + 12, f"{where}.coef"
        )
        learner.intercept_ = float(ls["intercept"])
        if not math.isfinite(learner.intercept_):
            raise ArtifactError(f"{where}.intercept is not finite")
    elif kind == "lightgbm":
        ls = _fields(
            learner_spec,
            f"{where}.learner",
            ("kind", "text", "n_estimators", "learning_rate", "threads"),
        )
        learner = TreeHazard(
            names,
            0,
            n_estimators=int(ls["n_estimators"]),
            learning_rate=float(ls["learning_rate"]),
            threads=int(ls["threads"]),
        )
        learner.booster_ = booster_from_text(str(ls["text"]), n).booster_
    else:
        raise ArtifactError(f"{where}.learner has an unknown kind {kind!r}")
    calibrator = None if s["calibrator"] is None else IsotonicCalibrator.from_dict(s["calibrator"])
    t = _fields(
        s["training"], f"{where}.training", ("level", "cutoff", "units", "rows", "departures")
    )
    training = pd.DataFrame(
        {
            "level": t["level"],
            Columns.cutoff: pd.to_datetime(t["cutoff"]).astype("datetime64[ns]"),
            "units": t["units"],
            "rows": t["rows"],
            "departures": t["departures"],
        }
    )
    return HazardLevel(
        by_family=bool(s["by_family"]),
        names=list(names),
        learner=learner,
        calibrator=calibrator,
        training=training,
    )


def _finite(arr: npt.NDArray[Any], size: int, where: str) -> npt.NDArray[np.float64]:
    out = np.asarray(arr, dtype=np.float64)
    if out.shape != (size,):
        raise ArtifactError(f"{where} has shape {out.shape}, expected ({size},)")
    if not np.isfinite(out).all():
        raise ArtifactError(f"{where} holds values that are not finite")
    return out


# ---------------------------------------------------------------------------------- writing
class _UnsupportedError(Exception):
    """A value the format cannot hold without code; the message names its type."""


class _Writer:
    """Collects arrays under unique names; an array object met twice is stored once."""

    def __init__(self, *, scoring_only: bool = False) -> None:
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self._seen: dict[int, str] = {}
        self.notes: list[str] = []
        self.scoring_only = scoring_only

    def add(self, name: str, array: npt.NDArray[Any]) -> str:
        # the arrays dict keeps every stored array alive, so an id cannot be reused meanwhile
        known = self._seen.get(id(array))
        if known is not None:
            return known
        if name in self.arrays:
            raise ArtifactError(f"two arrays would be stored as {name!r}")
        arr = np.asarray(array)
        if arr.dtype.hasobject:
            raise ArtifactError(
                f"array {name!r} holds Python objects (dtype object), which would need pickle"
            )
        self.arrays[name] = arr
        self._seen[id(array)] = name
        return name


def model_id(manifest: Mapping[str, Any]) -> str:
    """Return a saved model's id: a hash of its manifest's content, the date of saving left out.

    The manifest holds every parameter and the SHA-256 of every array, so two files share an id
    exactly when they hold the same fitted model (saved by the same version of crosssell). The
    ids of offer records (:mod:`crosssell.records`) start with it, so a batch file and the HTTP
    service answering from the same model file give an offer the same id.

    Parameters
    ----------
    manifest : mapping
        What :func:`read_manifest` returns.

    Returns
    -------
    str
        16 hexadecimal digits.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.demo(), "2025-06-30")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = save(rec, Path(tmp) / "a.crosssell")
    ...     again = load(save(rec, Path(tmp) / "b.crosssell"))
    ...     same = model_id(read_manifest(first)) == again.model_id_ == rec.model_id_
    >>> same, len(rec.model_id_)
    (True, 16)
    """
    content = {key: value for key, value in manifest.items() if key != "created"}
    text = json.dumps(content, sort_keys=True, allow_nan=False, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _manifest(rec: Recommender, w: _Writer) -> dict[str, Any]:
    book = rec.book_
    matrix = rec.matrix_
    if w.scoring_only:
        if rec.explore is not None:
            raise ArtifactError(
                "a model with 'explore' learns its response model again from the Book's events "
                "when loaded, so it cannot be saved scoring-only; save it whole"
            )
        # fresh frames bring their own events and contracts; the fitted Book lends its ids,
        # catalogue, client table and contract arrays (an empty contracts table keeps the rows)
        book = dataclasses.replace(
            book,
            event_table=book.event_table.iloc[:0],
            _contracts=book._contracts.iloc[:, :0],
            rejected=book.rejected.iloc[:0],
        )
    parameters = _encode_parameters(rec, w)
    book_spec = _encode_book(book, w)
    if not (matrix.clients == book.client_ids and matrix.products == book.product_ids):
        raise ArtifactError("the fitted matrix does not use the fitted Book's ids")
    model = {
        "matrix": {
            "client_product": _encode_csr(matrix.client_product, "matrix/client_product", w),
            "weighting": matrix.weighting,
            "state": matrix.state,
        },
        "scorer": _encode_scorer(rec.scorer_, "scorer", w, fitted=True),
        "fallback": _encode_scorer(rec.fallback_, "fallback", w, fitted=True),
        "propensity": _encode_propensity(rec),
    }
    scoring = {"scoring_only": True} if w.scoring_only else {}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **scoring,
        "parameters": parameters,
        "schema": book.schema.to_dict(),
        "as_of": matrix.as_of.isoformat(),
        "sizes": {
            "clients": len(book.client_ids),
            "products": len(book.product_ids),
            "contracts": len(book.contract_arrays),
            "events": len(book.event_table),
        },
        "book": book_spec,
        "model": model,
        "notes": list(w.notes),
        "arrays": _array_entries(w),
    }


def _array_entries(w: _Writer) -> list[dict[str, Any]]:
    """Return the manifest's entry of every array written: name, dtype, shape and checksum."""
    return [
        {
            "name": name,
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
            "sha256": _sha256(arr),
        }
        for name, arr in w.arrays.items()
    ]


def _sha256(arr: npt.NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data).hexdigest()


# -- parameters
def _encode_parameters(rec: Recommender, w: _Writer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in rec.get_params(deep=False).items():
        where = f"Recommender.{name}"
        if name == "scorer":
            out[name] = None if value is None else _scorer_spec(value, where, w)
        elif name == "policy":
            out[name] = None if value is None else _policy_spec(value)
        elif name == "weighting":
            out[name] = _weighting_spec(value, where, w)
        elif name == "calibrator":
            out[name] = None if value is None else _calibrator_spec(value)
        elif name == "explore":
            out[name] = None if value is None else _explore_spec(value, where, w)
        else:
            out[name] = _encode_value(value, where, w)
    return out


def _explore_spec(explore: Explore, where: str, w: _Writer) -> dict[str, Any]:
    model = explore.model
    if model is not None and hasattr(model, "n_products_"):
        raise ArtifactError(
            f"{where}.model is a fitted Response: a load could not tell it from one fitted on "
            "the saved Book. Pass it unfitted (the Recommender then fits it on its Book) to save"
        )
    return {
        "share": float(explore.share),
        "seed": int(explore.seed),
        "samples": None if explore.samples is None else int(explore.samples),
        "model": None if model is None else _scorer_spec(model, f"{where}.model", w),
    }


def _decode_explore(spec: Any, where: str) -> Explore:
    s = _fields(spec, where, ("share", "seed", "samples", "model"))
    model = s["model"]
    try:
        return Explore(
            share=s["share"],
            seed=s["seed"],
            samples=s["samples"],
            model=None
            if model is None
            else cast(Any, _decode_scorer(model, f"{where}.model", None, fitted=False)),
        )
    except ValueError as exc:
        raise ArtifactError(f"{where}: {exc}") from None


def _scorer_spec(scorer: Any, where: str, w: _Writer | None) -> dict[str, Any]:
    registry = _scorer_classes()
    name = type(scorer).__name__
    if registry.get(name) is not type(scorer):
        raise ArtifactError(
            f"{where} is a {name}, not one of crosssell's scorers {sorted(registry)}; only those "
            "can be saved, because loading never runs code"
        )
    params = {
        key: _encode_value(value, f"{name}.{key}", w)
        for key, value in scorer.get_params(deep=False).items()
    }
    return {"class": name, "params": params}


def _policy_spec(policy: Any) -> dict[str, Any]:
    if type(policy) is not Policy:
        raise ArtifactError(
            f"the policy is a {type(policy).__name__}, not a crosssell.rules.Policy; only those "
            "can be saved"
        )
    registry = _rule_classes()
    rules = []
    for rule in policy.rules:
        cls = type(rule)
        if registry.get(cls.__name__) is not cls:
            raise ArtifactError(
                f"policy {policy.name!r} holds rule {rule.name!r} ({cls.__name__}), which is "
                "user code and cannot be saved: loading never runs code. Save the model without "
                f"it, e.g. rec.set_params(policy=rec.policy.without({rule.name!r})), and give "
                "the whole policy again with crosssell.load(path, policy=...)"
            )
        params = {
            f.name: _encode_value(getattr(rule, f.name), f"{cls.__name__}.{f.name}", None)
            for f in dataclasses.fields(cast(Any, rule))
            if f.init
        }
        rules.append({"class": cls.__name__, "params": params})
    return {"name": _encode_value(policy.name, "Policy.name", None), "rules": rules}


def _weighting_spec(value: Any, where: str, w: _Writer | None) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, tuple):
        return {"tuple": [_weighting_spec(v, where, w) for v in value]}
    registry = _weighting_classes()
    cls = type(value)
    if registry.get(cls.__name__) is not cls:
        raise ArtifactError(
            f"{where} is a {cls.__name__}, not one of crosssell's weightings {sorted(registry)}; "
            "only those can be saved"
        )
    if isinstance(value, Combined):
        return {
            "class": cls.__name__,
            "factors": [_weighting_spec(f, where, w) for f in value.factors],
        }
    params = {
        f.name: _encode_value(getattr(value, f.name), f"{cls.__name__}.{f.name}", w)
        for f in dataclasses.fields(value)
        if f.init
    }
    return {"class": cls.__name__, "params": params}


def _calibrator_spec(value: Any) -> dict[str, Any]:
    if type(value) not in _calibrator_classes():
        raise ArtifactError(
            f"the calibrator is a {type(value).__name__}; only crosssell's IsotonicCalibrator "
            "and PlattCalibrator can be saved (loading never runs code)"
        )
    payload = value.to_dict()
    return dict(payload)


def _encode_propensity(rec: Recommender) -> dict[str, Any]:
    prop = rec.propensity_
    if rec.calibrator is not None and prop is rec.calibrator:
        return {"source": "calibrator"}
    if isinstance(prop, ScoreScale):
        return {"source": "scale", "scale": _encode_value(prop.scale, "ScoreScale.scale", None)}
    raise ArtifactError(
        f"the fitted propensity is a {type(prop).__name__}; expected the calibrator or a ScoreScale"
    )


def _encode_value(value: Any, where: str, w: _Writer | None) -> Any:  # noqa: PLR0911 (one per type)
    """Encode a parameter value as JSON; tagged objects carry a type JSON lacks."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if np.isfinite(f) else {"float": repr(f)}
    if isinstance(value, tuple):
        return {"tuple": [_encode_value(v, where, w) for v in value]}
    if isinstance(value, list):
        return [_encode_value(v, where, w) for v in value]
    if isinstance(value, Mapping):
        return {
            "mapping": [
                [_encode_value(k, where, w), _encode_value(v, where, w)] for k, v in value.items()
            ]
        }
    if isinstance(value, Scorer):
        return {"scorer": _scorer_spec(value, where, w)}
    if isinstance(value, Weighting):
        return {"weighting": _weighting_spec(value, where, w)}
    if isinstance(value, pd.Timedelta | dt.timedelta | np.timedelta64):
        td = pd.Timedelta(value)
        if not pd.isna(td):
            return {"timedelta_ns": int(td.value)}
    if isinstance(value, np.random.Generator) and w is not None:
        # a generator's state is not a parameter a loaded model needs: the fit is done
        w.notes.append(f"{where} was a numpy Generator; saved as None (the fitted state is kept).")
        return None
    _refuse_code(value, where)
    raise ArtifactError(
        f"{where} = {value!r} ({type(value).__name__}) cannot be saved; parameters must be "
        "numbers, text, booleans, None, tuples, lists, mappings, durations or crosssell objects"
    )


def _refuse_code(value: Any, where: str) -> None:
    if callable(value):
        label = getattr(value, "__name__", type(value).__name__)
        raise ArtifactError(
            f"{where} holds the function {label!r}, which is user code and cannot be saved: "
            "loading never runs code. Fit the model without it to save it (a Ranker's user "
            "features: fit with features=())"
        )


# -- fitted scorers
def _encode_scorer(scorer: Any, prefix: str, w: _Writer, *, fitted: bool) -> dict[str, Any]:
    spec = _scorer_spec(scorer, prefix, w)
    if fitted:
        # a scorer whose state the saved Book cannot give back says so before anything is written
        check = getattr(scorer, "_check_saveable", None)
        if check is not None:
            check()
        state: dict[str, Any] = {}
        schema = state_schema(type(scorer))
        undeclared: list[str] = []
        for attr, value in vars(scorer).items():
            if attr.startswith("_") or not attr.endswith("_"):
                continue
            want = schema.get(attr)
            if want is None:
                undeclared.append(attr)
            elif not isinstance(want, StateRebuilt):
                where = f"{spec['class']}.{attr}"
                state[attr] = _encode_state(value, f"{prefix}/{attr}", where, w, want)
        # a load refuses state its class does not declare, so never write any; the declared
        # state is encoded first, as it says best why a model cannot be saved
        if undeclared:
            raise ArtifactError(
                f"fitted attribute {spec['class']}.{undeclared[0]} is not in {spec['class']}'s "
                "_state_schema, so a load would refuse it"
            )
        spec["state"] = state
        if w.scoring_only and any(isinstance(v, StateRebuilt) for v in schema.values()):
            spec["context"] = _encode_scoring(scorer, spec["class"], prefix, w)
    return spec


def _encode_scoring(scorer: Any, name: str, prefix: str, w: _Writer) -> dict[str, Any]:
    """Encode what a scorer rebuilds from the events at load, for a save without them."""
    take = getattr(scorer, "_scoring_state", None)
    if take is None:
        raise ArtifactError(
            f"a {name} learns again from the Book's events when loaded, so it cannot be saved "
            "scoring-only; save it whole"
        )
    schema = _scoring_schema(type(scorer))
    out: dict[str, Any] = {}
    for key, value in take().items():
        out[key] = _encode_state(
            value, f"{prefix}/context/{key}", f"{name} context {key}", w, schema.get(key)
        )
    return out


def _scoring_schema(cls: type) -> dict[str, StateSpec]:
    """Return the state a scorer class keeps in a scoring-only save, besides its saved state."""
    return dict(getattr(cls, "_scoring_schema", {}))


def _encode_declared(  # noqa: PLR0911 (one per spec)
    value: Any, name: str, where: str, w: _Writer, want: StateSpec
) -> dict[str, Any] | None:
    """Encode state of the kinds only a schema asks for; None when ``want`` is a generic kind."""
    if value is None and getattr(want, "nullable", False):
        return {"kind": "value", "value": None}
    if isinstance(want, StateNames):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ArtifactError(f"fitted attribute {where} is not a list of names")
        return {"kind": "names", "names": list(value)}
    if isinstance(want, StateBooster):
        try:
            text = booster_text(value)
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: {exc}") from None
        n_features = int(value.booster_.num_feature())
        data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        return {"kind": "lightgbm", "text": w.add(name, data), "n_features": n_features}
    if isinstance(want, StateCalibrator):
        return {"kind": "calibrator", "calibrator": _calibrator_spec(value)}
    if isinstance(want, StateDuration):
        return {"kind": "duration", "ns": int(pd.Timedelta(value).value)}
    if isinstance(want, StateDates):
        stamps = [pd.Timestamp(v) for v in value]
        if any(t.tz is not None for t in stamps):
            raise ArtifactError(f"fitted attribute {where} holds dates with a time zone")
        return {"kind": "dates", "ns": [int(t.as_unit("ns").value) for t in stamps]}
    if isinstance(want, StateTable):
        return _encode_state_table(value, name, where, w, want)
    return None


def _encode_state_table(
    frame: Any, name: str, where: str, w: _Writer, want: StateTable
) -> dict[str, Any]:
    if not isinstance(frame, pd.DataFrame) or tuple(frame.columns) != want.columns:
        raise ArtifactError(f"fitted attribute {where} is not a table of columns {want.columns}")
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        raise ArtifactError(f"fitted attribute {where} has an index other than 0..n-1")
    columns = []
    for label in want.columns:
        values = frame[label].to_numpy()
        if values.dtype.kind not in "biufmM":
            raise ArtifactError(f"column {label!r} of {where} holds neither numbers nor dates")
        columns.append({"name": label, "values": w.add(f"{name}/{label}", values)})
    return {"kind": "table", "rows": len(frame), "columns": columns}


def _encode_state(  # noqa: PLR0911 (one per kind)
    value: Any, name: str, where: str, w: _Writer, want: StateSpec | None = None
) -> dict[str, Any]:
    declared = None if want is None else _encode_declared(value, name, where, w, want)
    if declared is not None:
        return declared
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ArtifactError(f"fitted attribute {where} is an object array and cannot be saved")
        return {"kind": "array", "array": w.add(name, value)}
    if isinstance(value, sp.csr_matrix | sp.csr_array):
        return {"kind": "csr", "csr": _encode_csr(value, name, w)}
    if value is None or isinstance(value, bool | int | float | str):
        return {"kind": "value", "value": _encode_value(value, where, w)}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"kind": "scalar", "dtype": value.dtype.str, "value": _encode_value(value, where, w)}
    if isinstance(value, pd.Index):
        try:
            return {"kind": "index", "index": _encode_index(value, name, w)}
        except _UnsupportedError as exc:
            raise ArtifactError(f"fitted attribute {where} cannot be saved: {exc}") from None
    if isinstance(value, Scorer):
        return {"kind": "scorer", "scorer": _encode_scorer(value, name, w, fitted=True)}
    if isinstance(value, list | tuple):
        items = [_encode_state(v, f"{name}/{i}", f"{where}[{i}]", w) for i, v in enumerate(value)]
        return {"kind": "list" if isinstance(value, list) else "tuple", "items": items}
    raise ArtifactError(
        f"fitted attribute {where} is a {type(value).__name__}, which the model format cannot "
        "hold (arrays, CSR matrices, scalars, pandas Index, scorers and lists of those)"
    )


def _encode_csr(matrix: Any, name: str, w: _Writer) -> dict[str, Any]:
    return {
        "format": "csr_array" if isinstance(matrix, sp.csr_array) else "csr_matrix",
        "shape": [int(s) for s in matrix.shape],
        "data": w.add(f"{name}/data", matrix.data),
        "indices": w.add(f"{name}/indices", matrix.indices),
        "indptr": w.add(f"{name}/indptr", matrix.indptr),
    }


# -- the Book
def _encode_book(book: Book, w: _Writer) -> dict[str, Any]:
    arrays = book.contract_arrays
    info = book.info
    try:
        client_ids = _encode_index(book.client_ids.external, "book/client_ids", w)
        product_ids = _encode_index(book.product_ids.external, "book/product_ids", w)
    except _UnsupportedError as exc:
        raise ArtifactError(f"the Book's ids cannot be saved: {exc}") from None
    return {
        "client_ids": {"name": book.client_ids.name, "index": client_ids},
        "product_ids": {"name": book.product_ids.name, "index": product_ids},
        "contracts": {
            f: w.add(f"book/contracts/{f}", getattr(arrays, f)) for f in _CONTRACT_FIELDS
        },
        "tables": {
            "products": _encode_table(book.product_table, "products", w),
            "clients": _encode_table(book.client_table, "clients", w),
            "events": _encode_table(book.event_table, "events", w),
            "contracts": _encode_table(book._contracts, "contracts", w),
            "rejected": _encode_table(book.rejected, "rejected", w),
        },
        "lookback_ns": None if book.lookback is None else int(book.lookback.value),
        "info": {
            "source": info.source,
            "given": [[t, int(n)] for t, n in info.given],
            "notes": list(info.notes),
            "other_event_types": [[t, int(n)] for t, n in info.other_event_types],
            "repeated_lines": int(info.repeated_lines),
        },
    }


def _encode_table(frame: pd.DataFrame, table: str, w: _Writer) -> dict[str, Any]:
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        raise ArtifactError(f"the Book's {table} table has an index other than 0..n-1")
    core = _CORE_COLUMNS[table]
    columns: list[dict[str, Any]] = []
    seen: set[str] = set()
    labels: list[Any] = list(frame.columns)
    for i, label in enumerate(labels):
        prefix = f"book/{table}/{i}"
        is_core = label in core
        problem: str | None = None
        if not isinstance(label, str):
            problem = "its name is not text"
        elif label in seen:
            problem = "its name repeats another column's"
        else:
            try:
                spec = _encode_column(frame.iloc[:, i], prefix, w)
            except _UnsupportedError as exc:
                problem = str(exc)
        if problem is not None:
            if is_core:
                raise ArtifactError(
                    f"column {label!r} of the Book's {table} table cannot be saved: {problem}. "
                    "Give it numbers, booleans, dates or text"
                )
            w.notes.append(f"{table}: column {label!r} was not saved ({problem}).")
            continue
        seen.add(label)
        spec["name"] = label
        columns.append(spec)
    return {"rows": len(frame), "columns": columns}


def _encode_index(index: pd.Index, prefix: str, w: _Writer) -> dict[str, Any]:
    name = index.name
    if name is not None and not isinstance(name, str):
        raise _UnsupportedError(f"the index name {name!r} is not text")
    if index.hasnans:
        raise _UnsupportedError("the index holds nulls")
    spec = _encode_column(pd.Series(index, copy=False), prefix, w)
    spec["name"] = name
    return spec


def _encode_column(series: pd.Series, prefix: str, w: _Writer) -> dict[str, Any]:
    """Encode one column as arrays; raise _UnsupportedError for what the format cannot hold."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biufmM":
            return {"codec": "numpy", "values": w.add(f"{prefix}/values", series.to_numpy())}
        if dtype.kind == "O":
            return _encode_objects(series.to_numpy(), prefix, w)
        raise _UnsupportedError(f"dtype {dtype} is not supported")
    if isinstance(dtype, pd.StringDtype):
        mask = series.isna().to_numpy(dtype=bool)
        # pyarrow-backed text hands its buffers over without a Python object per row
        offsets, data = _encode_text(pa.array(series.array))
        return {
            "codec": "string",
            "storage": str(dtype.storage),
            "na": "nan" if _is_nan_na(dtype) else "NA",
            "offsets": w.add(f"{prefix}/offsets", offsets),
            "data": w.add(f"{prefix}/data", data),
            "mask": w.add(f"{prefix}/mask", mask),
        }
    if str(dtype) in _MASKED_DTYPES:
        mask = series.isna().to_numpy(dtype=bool)
        numpy_dtype = np.dtype(getattr(dtype, "numpy_dtype", np.float64))
        fill = False if numpy_dtype.kind == "b" else 0
        values = series.to_numpy(dtype=numpy_dtype, na_value=fill)
        return {
            "codec": "masked",
            "dtype": str(dtype),
            "values": w.add(f"{prefix}/values", values),
            "mask": w.add(f"{prefix}/mask", mask),
        }
    raise _UnsupportedError(f"dtype {dtype} is not supported")


def _is_nan_na(dtype: pd.StringDtype) -> bool:
    na = getattr(dtype, "na_value", pd.NA)
    return isinstance(na, float) and bool(np.isnan(na))


def _encode_text(values: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """UTF-8 bytes of every string, end to end, and ``n + 1`` offsets into them."""
    try:
        arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
        arr = arr.cast(pa.large_utf8())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise _UnsupportedError(f"text expected ({exc})") from None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets_buf, data_buf = arr.buffers()[1], arr.buffers()[2]
    if offsets_buf is None or len(arr) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.zeros(0, dtype=np.uint8) if data_buf is None else np.frombuffer(data_buf, np.uint8)
    start, stop = int(offsets[0]), int(offsets[-1])
    return (offsets - start).astype(np.int64), data[start:stop].copy()


def _kind_of(value: Any) -> int:  # noqa: PLR0911 (one answer per type)
    if value is None:
        return _K_NONE
    if value is pd.NA:
        return _K_NA
    if value is pd.NaT:
        return _K_NAT
    if isinstance(value, str):
        return _K_STR
    if isinstance(value, bool | np.bool_):
        return _K_BOOL
    if isinstance(value, int | np.integer):
        if not _INT64_MIN <= int(value) <= _INT64_MAX:
            raise _UnsupportedError(f"the integer {value} does not fit in 64 bits")
        return _K_INT
    if isinstance(value, float | np.floating):
        return _K_FLOAT
    if isinstance(value, tuple):
        return _K_TUPLE
    raise _UnsupportedError(f"it holds a {type(value).__name__} ({value!r})")


def _encode_objects(
    values: npt.NDArray[Any], prefix: str, w: _Writer, *, nested: bool = False
) -> dict[str, Any]:
    """Encode an object column: one kind per row, then each kind's values as typed arrays."""
    n = values.shape[0]
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # all text (or empty) with nulls: kinds without a Python loop over the text rows
        null = pd.isna(values)
        kinds = np.where(null, _K_NONE, _K_STR).astype(np.int8)
        is_none = np.asarray(values == None)  # noqa: E711 (an elementwise comparison)
        odd = np.flatnonzero(null & ~is_none)
        kinds[odd] = [_kind_of(v) for v in values[odd]]
    else:
        kinds = np.fromiter((_kind_of(v) for v in values), dtype=np.int8, count=n)
    spec: dict[str, Any] = {"codec": "object", "kinds": w.add(f"{prefix}/kinds", kinds)}
    text = kinds == _K_STR
    if text.any():
        offsets, data = _encode_text(values[text])
        spec["text"] = {
            "offsets": w.add(f"{prefix}/text_offsets", offsets),
            "data": w.add(f"{prefix}/text_data", data),
        }
    for kind, key, dtype in (
        (_K_INT, "int", np.int64),
        (_K_FLOAT, "float", np.float64),
        (_K_BOOL, "bool", np.bool_),
    ):
        sel = kinds == kind
        if sel.any():
            spec[key] = w.add(f"{prefix}/{key}", values[sel].astype(dtype))
    tuples = kinds == _K_TUPLE
    if tuples.any():
        if nested:
            raise _UnsupportedError("it holds tuples inside tuples")
        items = values[tuples]
        lengths = np.fromiter((len(t) for t in items), dtype=np.int64, count=items.shape[0])
        flat = np.empty(int(lengths.sum()), dtype=object)
        flat[:] = [v for t in items for v in t]
        spec["tuple"] = {
            "lengths": w.add(f"{prefix}/tuple_lengths", lengths),
            "items": _encode_objects(flat, f"{prefix}/tuple_items", w, nested=True),
        }
    return spec


# -- files
def _write_atomic(
    target: Path, manifest: bytes, arrays: Mapping[str, npt.NDArray[Any]], *, compress: bool
) -> None:
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ArtifactError(f"the folder {str(parent)!r} does not exist")
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    is_zip = target.suffix.lower() in _ZIP_SUFFIXES
    if is_zip and target.is_dir():
        raise ArtifactError("a folder of that name exists; a zip file is written there")
    if not is_zip and target.exists() and not (target.is_dir() and (target / _MANIFEST).is_file()):
        raise ArtifactError(
            "something that is not a saved model exists there; it is left alone. Choose "
            "another path, or a name ending in .crosssell for a single file"
        )
    _remove_stale(target)
    tmp, lock = _make_temporary(target, folder=not is_zip)
    try:
        if is_zip:
            with os.fdopen(os.dup(lock), "wb") as handle:
                with zipfile.ZipFile(handle, "w", compression=method, allowZip64=True) as zf:
                    with zf.open(_ARRAYS, "w", force_zip64=True) as member:
                        _write_npz(member, arrays, method)
                    zf.writestr(_MANIFEST, manifest)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        else:
            with (tmp / _ARRAYS).open("wb") as handle:
                _write_npz(handle, arrays, method)
                handle.flush()
                os.fsync(handle.fileno())
            with (tmp / _MANIFEST).open("wb") as handle:
                handle.write(manifest)
                handle.flush()
                os.fsync(handle.fileno())
            _fsync_dir(tmp)
            _replace_folder(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        os.close(lock)
    _fsync_dir(parent)


def _temporary_names(target: Path) -> tuple[str, str]:
    """Return the prefix and suffix of every temporary entry a save of ``target`` makes."""
    return f".{target.name}.", ".tmp"


def _make_temporary(target: Path, *, folder: bool) -> tuple[Path, int]:
    """Create a fresh temporary file or folder beside ``target``, locked while the save runs.

    It is created with the default modes (0o666 and 0o777), so the process's umask decides
    who may read the model, as for any other file it writes. The returned descriptor holds
    an advisory lock: a later save removes only temporary entries nobody holds.
    """
    prefix, suffix = _temporary_names(target)
    for _ in range(100):
        tmp = target.with_name(f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            if folder:
                tmp.mkdir(mode=0o777)
                fd = os.open(tmp, os.O_RDONLY)
            else:
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        _lock(fd, blocking=True)
        return tmp, fd
    raise ArtifactError(f"cannot create a temporary entry beside {str(target)!r}")


def _lock(fd: int, *, blocking: bool) -> bool:
    """Take an exclusive advisory lock on ``fd``; False when another process holds one."""
    if fcntl is None:  # pragma: no cover - systems without flock
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # pragma: no cover - a file system without locks
        return not blocking
    return True


def _remove_stale(target: Path) -> None:
    """Remove what interrupted saves of ``target`` left beside it (never another save's work).

    A save holds a lock on its temporary entry until it ends, so an entry whose lock can be
    taken belongs to a save that was killed. Without locks (no ``fcntl``), entries older than
    a day are taken as stale.
    """
    prefix, suffix = _temporary_names(target)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        entries = [
            p
            for p in parent.iterdir()
            if p.name.startswith(prefix) and p.name.endswith((suffix, suffix + ".old"))
        ]
    except OSError:
        return
    for entry in entries:
        try:
            fd = os.open(entry, os.O_RDONLY)
        except OSError:
            continue
        try:
            if fcntl is None:  # pragma: no cover - systems without flock
                stale = dt.datetime.now().timestamp() - os.fstat(fd).st_mtime > 86_400
            else:
                stale = _lock(fd, blocking=False)
            if stale:
                _remove(entry)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def _replace_folder(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` at ``target``; an old model folder there is swapped out, then removed.

    Where the system can exchange two names in one step (Linux), there is no moment without a
    model at ``target``. Elsewhere the old folder steps aside for a moment (a folder cannot be
    renamed onto a non-empty one), under a name the next save cleans up if this one is killed.
    """
    if not target.exists():
        os.replace(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = tmp.with_name(tmp.name + ".old")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` atomically; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # pragma: no cover - a C library before glibc 2.28
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False  # pragma: no cover - a file system without exchange
    raise OSError(code, os.strerror(code), str(b))


def _fsync_dir(folder: Path) -> None:
    # makes the renames durable on POSIX; other systems cannot open a folder, and need not
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_npz(handle: IO[bytes], arrays: Mapping[str, npt.NDArray[Any]], method: int) -> None:
    with zipfile.ZipFile(handle, "w", compression=method, allowZip64=True) as npz:
        for name, arr in arrays.items():
            with npz.open(name + _NPY, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


# ---------------------------------------------------------------------------------- reading
@contextmanager
def _open_model(
    source: Path,
) -> Iterator[tuple[bytes, Callable[[], Any]]]:
    """Yield the manifest bytes and a function opening the arrays file, folder or zip alike."""
    if source.is_dir():
        manifest_path = source / _MANIFEST
        arrays_path = source / _ARRAYS
        missing = [p.name for p in (manifest_path, arrays_path) if not p.exists()]
        if missing:
            raise ArtifactError(
                f"the folder is not a saved model: {', '.join(missing)} missing (a saved model "
                f"holds {_MANIFEST} and {_ARRAYS})"
            )
        extra = sorted(p.name for p in source.iterdir() if p.name not in (_MANIFEST, _ARRAYS))
        if extra:
            raise ArtifactError(f"the folder holds unexpected entries {extra[:5]}")
        _check_regular(manifest_path, _MANIFEST)
        _check_regular(arrays_path, _ARRAYS)
        with manifest_path.open("rb") as handle:
            manifest = _read_capped(handle, _MANIFEST_LIMIT, _MANIFEST)
        yield manifest, lambda: arrays_path.open("rb")
        return
    _check_regular(source, "the path")
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ArtifactError(
            f"not a saved model: the file is not a readable zip archive ({exc}); it may be "
            "truncated, damaged or another kind of file"
        ) from None
    with zf:
        names = zf.namelist()
        if sorted(names) != sorted((_MANIFEST, _ARRAYS)):
            raise ArtifactError(
                f"not a saved model: the zip holds {sorted(names)[:5]}, expected exactly "
                f"{[_ARRAYS, _MANIFEST]}"
            )
        try:
            with zf.open(_MANIFEST) as handle:
                manifest = _read_capped(handle, _MANIFEST_LIMIT, _MANIFEST)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise ArtifactError(f"{_MANIFEST} is damaged ({exc})") from None
        yield manifest, lambda: zf.open(_ARRAYS)


def _check_regular(path: Path, what: str) -> None:
    """Refuse anything but a regular file: a device or a pipe would be read without end."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ArtifactError(f"{what} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ArtifactError(
            f"{what} is not a regular file (a device, a pipe or a folder), so it is not a "
            "saved model"
        )


def _read_capped(handle: IO[bytes], limit: int, what: str) -> bytes:
    """Read to the end, a piece at a time, refusing to go past ``limit`` bytes."""
    data = bytearray()
    while piece := handle.read(min(_CHUNK, limit + 1 - len(data))):
        data += piece
        if len(data) > limit:
            raise ArtifactError(
                f"{what} is larger than {limit // 2**20} MiB, far more than any saved model's"
            )
    return bytes(data)


def _nesting(value: Any) -> int:
    """Return how deeply ``value``'s lists and dicts nest, without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        if depth > _MANIFEST_DEPTH:
            break  # deep enough to refuse: the rest need not be walked
        stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _parse_manifest(raw: bytes, expected: str = FORMAT_NAME) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{_MANIFEST} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ArtifactError(f"{_MANIFEST} is nested too deeply to be a saved model's") from None
    if _nesting(manifest) > _MANIFEST_DEPTH:
        raise ArtifactError(
            f"{_MANIFEST} is nested too deeply to be a saved model's (more than "
            f"{_MANIFEST_DEPTH} levels of lists and objects)"
        )
    if not isinstance(manifest, dict) or manifest.get("format") != expected:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArtifactError(
            f"not a saved model: the manifest's format is {found!r}, expected {expected!r}"
        )
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(f"the manifest's format_version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        made_by = manifest.get("library_version", "an unknown version")
        raise ArtifactError(
            f"made by crosssell {made_by} with format {version}; this crosssell "
            f"({__version__}) reads format {FORMAT_VERSION}: upgrade crosssell"
        )
    _fields(
        manifest,
        "the manifest",
        _MANIFEST_KEYS,
        ("scoring_only",) if expected == FORMAT_NAME else (),
    )
    if manifest.get("scoring_only", True) is not True:
        raise ArtifactError(
            f"the manifest's scoring_only is {manifest['scoring_only']!r}; only true is written"
        )
    entries = manifest["arrays"]
    if not isinstance(entries, list):
        raise ArtifactError("the manifest's 'arrays' is not a list")
    for i, entry in enumerate(entries):
        _check_entry(entry, f"arrays[{i}] of the manifest")
    return manifest


def _check_entry(entry: Any, where: str) -> None:
    """Check one manifest line: a name, a plain numeric dtype, a shape of counts, a checksum."""
    _fields(entry, where, ("name", "dtype", "shape", "sha256"))
    name, dtype, shape = entry["name"], entry["dtype"], entry["shape"]
    if not isinstance(name, str) or not isinstance(entry["sha256"], str):
        raise ArtifactError(f"{where}: the name and the checksum must be text")
    try:
        parsed = np.dtype(dtype) if isinstance(dtype, str) else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.kind not in _ARRAY_KINDS or parsed.itemsize == 0:
        raise ArtifactError(
            f"{where}: array {name!r} has dtype {dtype!r}; a saved model holds only numbers, "
            "booleans and dates"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_NDIM
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ArtifactError(f"{where}: array {name!r} has shape {shape!r}, not a list of counts")


def _read_arrays(handle: IO[bytes], entries: list[dict[str, Any]]) -> dict[str, npt.NDArray[Any]]:
    listed = {str(e["name"]): e for e in entries}
    if len(listed) != len(entries):
        raise ArtifactError("the manifest lists an array name twice")
    try:
        npz = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if _starts_like_pickle(handle):
            raise ArtifactError(
                f"{_ARRAYS} holds pickled Python objects, which are never loaded"
            ) from None
        raise ArtifactError(
            f"{_ARRAYS} is not a numpy archive (a zip of .npy arrays), or it is truncated or "
            f"damaged ({exc})"
        ) from None
    with npz:
        members = npz.namelist()
        present = {m.removesuffix(_NPY) for m in members}
        if len(present) != len(members) or not all(m.endswith(_NPY) for m in members):
            raise ArtifactError(f"{_ARRAYS} holds entries that are not one array each")
        unknown = sorted(present - set(listed))
        missing = sorted(set(listed) - present)
        if unknown:
            raise ArtifactError(f"{_ARRAYS} holds arrays the manifest does not list: {unknown[:5]}")
        if missing:
            raise ArtifactError(f"{_ARRAYS} lacks arrays the manifest lists: {missing[:5]}")
        out: dict[str, npt.NDArray[Any]] = {}
        for name, entry in listed.items():
            arr = _read_member(npz, name, entry)
            if _sha256(arr) != entry["sha256"]:
                raise ArtifactError(
                    f"array {name!r} does not match its checksum: the file is corrupt"
                )
            out[name] = arr
    return out


def _starts_like_pickle(handle: IO[bytes]) -> bool:
    try:
        handle.seek(0)
        return handle.read(1) == b"\x80"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def _read_member(zf: zipfile.ZipFile, name: str, entry: dict[str, Any]) -> npt.NDArray[Any]:
    """Read one array: its header checked against the manifest first, then its data in pieces.

    Nothing is allocated from a size a file declares: the data is read a piece at a time, so a
    forged shape or a truncated member ends in an error after reading what is really there.
    """
    info = zf.getinfo(name + _NPY)
    try:
        with zf.open(info) as f:
            dtype, shape, fortran = _npy_header(f, name)
            if dtype.str != entry["dtype"] or list(shape) != entry["shape"]:
                raise ArtifactError(
                    f"array {name!r} has dtype {dtype.str} and shape {list(shape)}; "
                    f"the manifest says dtype {entry['dtype']} and shape {entry['shape']}"
                )
            nbytes = math.prod(shape) * dtype.itemsize
            if info.file_size != f.tell() + nbytes:
                raise ArtifactError(
                    f"array {name!r} should hold {nbytes} bytes of data after its header; the "
                    f"archive says {info.file_size - f.tell()}: the file is damaged or edited"
                )
            buffer = bytearray()
            while len(buffer) < nbytes:
                piece = f.read(min(_CHUNK, nbytes - len(buffer)))
                if not piece:
                    raise ArtifactError(
                        f"array {name!r} is truncated: {len(buffer)} of {nbytes} bytes"
                    )
                buffer += piece
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise ArtifactError(f"array {name!r} is truncated or damaged ({exc})") from None
    flat = np.frombuffer(buffer, dtype=dtype)
    out: npt.NDArray[Any] = flat.reshape(shape, order="F" if fortran else "C")
    return out


def _npy_header(f: IO[bytes], name: str) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """Read the dtype, shape and order of one .npy member from its header, not its data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ArtifactError(f"array {name!r} has a header of unknown version {version}")
    except (ValueError, SyntaxError) as exc:
        raise ArtifactError(f"array {name!r} has a damaged header ({exc})") from None
    if dtype.hasobject:
        raise ArtifactError(
            f"array {name!r} holds Python objects (dtype object), which are never loaded"
        )
    return dtype, tuple(shape), bool(fortran)


def _check_states(manifest: dict[str, Any]) -> None:
    """Check every fitted scorer's state against its class's schema, from the manifest alone.

    The state's dims are resolved from the saved sizes of the id lists, which the rebuilt Book
    must match later; every array's header must match its manifest line before it is read.
    """
    try:
        sizes = _fields(manifest["sizes"], "sizes", _SIZE_KEYS)
        dims = {"n_clients": sizes["clients"], "n_products": sizes["products"]}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in dims.values()):
            raise ArtifactError(f"the saved sizes {sizes} are not counts")
        entries = {str(e["name"]): e for e in manifest["arrays"]}
        _check_sizes(manifest["book"], sizes, entries)
        model = _fields(manifest["model"], "model", ("matrix", "scorer", "fallback", "propensity"))
        for part in ("scorer", "fallback"):
            _check_scorer_state(model[part], f"model.{part}", dims, entries)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(
            f"the manifest does not describe a consistent model ({type(exc).__name__}: {exc})"
        ) from None


def _check_sizes(book: Any, sizes: dict[str, Any], entries: dict[str, dict[str, Any]]) -> None:
    """Check the saved sizes against the lengths declared for the id lists and the contracts.

    So no size a fitted state is checked against is larger than the data behind it.
    """
    spec = _fields(
        book, "book", ("client_ids", "product_ids", "contracts", "tables", "lookback_ns", "info")
    )
    declared = {
        "clients": _declared_rows(spec["client_ids"].get("index"), "book.client_ids", entries),
        "products": _declared_rows(spec["product_ids"].get("index"), "book.product_ids", entries),
    }
    contracts = _fields(spec["contracts"], "book.contracts", _CONTRACT_FIELDS)
    for f in _CONTRACT_FIELDS:
        shape = _entry(entries, contracts[f], f"book.contracts.{f}")["shape"]
        if shape != [sizes["contracts"]]:
            raise ArtifactError(
                f"book.contracts.{f} has shape {shape}, but the saved sizes say "
                f"{sizes['contracts']} contracts"
            )
    for key, rows in declared.items():
        if rows != sizes[key]:
            raise ArtifactError(
                f"the saved sizes say {sizes[key]!r} {key}, but the id list holds {rows}"
            )


def _declared_rows(spec: Any, where: str, entries: dict[str, dict[str, Any]]) -> int:
    """Return the number of rows of an encoded column, from the manifest's array lines."""
    if not isinstance(spec, dict):
        raise ArtifactError(f"{where} is not a JSON object")
    codec = spec.get("codec")
    key = {"numpy": "values", "masked": "values", "object": "kinds", "string": "offsets"}.get(
        codec if isinstance(codec, str) else ""
    )
    if key is None:
        raise ArtifactError(f"{where}: unknown column codec {codec!r}")
    shape = _entry(entries, spec.get(key), where)["shape"]
    if len(shape) != 1 or (key == "offsets" and shape[0] < 1):
        raise ArtifactError(f"{where}: the array {spec.get(key)!r} has shape {shape}")
    return int(shape[0]) - 1 if key == "offsets" else int(shape[0])


def _check_scorer_state(
    spec: Any, where: str, dims: dict[str, int], entries: dict[str, dict[str, Any]]
) -> None:
    s = _fields(spec, where, ("class", "params", "state"), ("context",))
    cls = lookup("scorer", s["class"])
    schema = state_schema(cls)
    if "context" in s:
        _check_scoring_state(s["context"], cls, f"{where}.context", dims, entries)
    state = _fields(s["state"], f"{where}.state", (), None)
    saved = {a: spec for a, spec in schema.items() if not isinstance(spec, StateRebuilt)}
    for attr in state:
        if attr not in saved:
            rebuilt = " (it is rebuilt at load, never read from a file)" if attr in schema else ""
            raise ArtifactError(
                f"{where}: unknown state {attr!r} for {cls.__name__}{rebuilt}; it saves "
                f"{sorted(saved)}"
            )
    lacking = [a for a in saved if a not in state]
    if lacking:
        raise ArtifactError(f"{where}: the fitted state lacks {lacking}")
    bound: dict[str, int] = dict(dims)
    for attr, want in saved.items():
        _check_state_item(
            state[attr],
            want,
            f"{where}.state.{attr}",
            owner=cls.__name__,
            bound=bound,
            entries=entries,
        )


def _check_scoring_state(
    context: Any,
    cls: type,
    where: str,
    dims: dict[str, int],
    entries: dict[str, dict[str, Any]],
) -> None:
    """Check the state a scoring-only save keeps for a scorer, against its class's schema."""
    schema = _scoring_schema(cls)
    if not schema:
        raise ArtifactError(f"{where}: {cls.__name__} keeps nothing in a scoring-only save")
    items = _fields(context, where, tuple(schema))
    bound: dict[str, int] = dict(dims)
    for key, want in schema.items():
        _check_state_item(
            items[key], want, f"{where}.{key}", owner=cls.__name__, bound=bound, entries=entries
        )


def _check_state_item(
    item: Any,
    want: StateSpec,
    where: str,
    *,
    owner: str,
    bound: dict[str, int],
    entries: dict[str, dict[str, Any]],
) -> None:
    kind = item.get("kind") if isinstance(item, dict) else None
    if kind == "value" and getattr(want, "nullable", False) and item.get("value") is None:
        return
    if isinstance(want, StateNames | StateBooster | StateCalibrator):
        _check_declared_item(item, kind, want, where, owner=owner, bound=bound, entries=entries)
    elif isinstance(want, StateDuration | StateDates | StateTable):
        _check_time_item(item, kind, want, where, owner=owner, entries=entries)
    elif isinstance(want, StateArray) and kind == "array":
        entry = _entry(entries, item.get("array"), where)
        _check_array(entry["dtype"], entry["shape"], want, where, bound)
    elif isinstance(want, StateSparse) and kind == "csr":
        csr = _fields(item.get("csr"), where, ("format", "shape", "data", "indices", "indptr"))
        data = _entry(entries, csr["data"], where)
        _check_array(data["dtype"], csr["shape"], want, where, bound)
    elif isinstance(want, StateScalar) and kind in ("value", "scalar"):
        _check_scalar(item.get("value"), want, where, bound)
    elif isinstance(want, StateScorers) and kind in ("list", "tuple"):
        items = item.get("items")
        if not isinstance(items, list) or not items:
            raise ArtifactError(f"{where}: 'items' is not a non-empty list")
        dims = {d: bound[d] for d in DIMS}
        for i, one in enumerate(items):
            if not isinstance(one, dict) or one.get("kind") != "scorer":
                raise ArtifactError(f"{where}[{i}] is not a fitted scorer")
            _check_scorer_state(one.get("scorer"), f"{where}[{i}]", dims, entries)
    elif not (isinstance(want, StateIndex) and kind == "index"):
        raise ArtifactError(f"{where} is saved as {kind!r}, which {owner} does not save")


def _check_scalar(value: Any, want: StateScalar, where: str, bound: dict[str, int]) -> None:
    if want.type == "bool":
        if not isinstance(value, bool):
            raise ArtifactError(f"{where} is {value!r}, not a boolean")
        return
    allowed = int if want.type == "int" else int | float
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ArtifactError(f"{where} is {value!r}, not a finite {want.type}")
    if want.dim is not None and bound.setdefault(want.dim, value) != value:
        raise ArtifactError(f"{where} is {value!r}, expected {want.dim}={bound[want.dim]}")


def _check_declared_item(
    item: Any,
    kind: Any,
    want: StateNames | StateBooster | StateCalibrator,
    where: str,
    *,
    owner: str,
    bound: dict[str, int],
    entries: dict[str, dict[str, Any]],
) -> None:
    if isinstance(want, StateNames) and kind == "names":
        names = _fields(item, where, ("kind", "names"))["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ArtifactError(f"{where} is not a list of names")
        _bind(bound, want.dim, len(names), f"{where} holds {len(names)} names")
    elif isinstance(want, StateBooster) and kind == "lightgbm":
        s = _fields(item, where, ("kind", "text", "n_features"))
        entry = _entry(entries, s["text"], where)
        if (
            entry["dtype"] != "|u1"
            or not isinstance(entry["shape"], list)
            or len(entry["shape"]) != 1
        ):
            raise ArtifactError(f"{where}: the model text is not stored as bytes")
        n = s["n_features"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ArtifactError(f"{where}: n_features is {n!r}, not a count")
        _bind(bound, want.features, n, f"{where} reads {n} features")
    elif not (isinstance(want, StateCalibrator) and kind == "calibrator"):
        raise ArtifactError(f"{where} is saved as {kind!r}, which {owner} does not save")


def _check_time_item(
    item: Any,
    kind: Any,
    want: StateDuration | StateDates | StateTable,
    where: str,
    *,
    owner: str,
    entries: dict[str, dict[str, Any]],
) -> None:
    if isinstance(want, StateDuration) and kind == "duration":
        ns = _fields(item, where, ("kind", "ns"))["ns"]
        if isinstance(ns, bool) or not isinstance(ns, int):
            raise ArtifactError(f"{where} is {ns!r}, not a duration in nanoseconds")
    elif isinstance(want, StateDates) and kind == "dates":
        ns = _fields(item, where, ("kind", "ns"))["ns"]
        if not isinstance(ns, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in ns
        ):
            raise ArtifactError(f"{where} is not a list of dates in nanoseconds")
    elif isinstance(want, StateTable) and kind == "table":
        s = _fields(item, where, ("kind", "rows", "columns"))
        rows, columns = s["rows"], s["columns"]
        if isinstance(rows, bool) or not isinstance(rows, int) or not isinstance(columns, list):
            raise ArtifactError(f"{where} is not a table")
        names = tuple(c.get("name") if isinstance(c, dict) else None for c in columns)
        if names != want.columns:
            raise ArtifactError(f"{where} has columns {list(names)}, expected {list(want.columns)}")
        for col in columns:
            entry = _entry(entries, _fields(col, where, ("name", "values"))["values"], where)
            if np.dtype(entry["dtype"]).kind not in "biufmM" or entry["shape"] != [rows]:
                raise ArtifactError(
                    f"{where}: column {col['name']!r} is not {rows} numbers or dates"
                )
    else:
        raise ArtifactError(f"{where} is saved as {kind!r}, which {owner} does not save")


def _bind(bound: dict[str, int], dim: str, size: int, found: str) -> None:
    """Bind ``dim`` to ``size`` the first time; later uses must agree."""
    if bound.setdefault(dim, size) != size:
        raise ArtifactError(f"{found}, expected {dim}={bound[dim]}")


def _entry(entries: dict[str, dict[str, Any]], name: Any, where: str) -> dict[str, Any]:
    entry = entries.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ArtifactError(f"{where} refers to an array {name!r} that is not stored")
    return entry


def _check_array(
    dtype: Any, shape: Any, want: StateArray | StateSparse, where: str, bound: dict[str, int]
) -> None:
    want_dtype, want_shape = want.dtype, want.shape
    expected = ", ".join(
        "any" if d is None else f"{d}={bound[d]}" if isinstance(d, str) and d in bound else str(d)
        for d in want_shape
    )
    if np.dtype(dtype) != np.dtype(want_dtype):
        raise ArtifactError(f"{where} has dtype {dtype}, expected {np.dtype(want_dtype).str}")
    if not isinstance(shape, list) or len(shape) != len(want_shape):
        raise ArtifactError(f"{where} has shape {shape!r}, expected ({expected})")
    for size, dim in zip(shape, want_shape, strict=True):
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ArtifactError(f"{where} has shape {shape!r}, expected ({expected})")
        if isinstance(dim, str):
            # a dim named once binds here, so every later use must agree with this one
            dim_size = bound.setdefault(dim, size)
        else:
            dim_size = size if dim is None else dim
        if size != dim_size:
            raise ArtifactError(f"{where} has shape {shape}, expected ({expected})")


def _fields(
    value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] | None = ()
) -> dict[str, Any]:
    """Check a JSON object's keys (``optional=None``: any other key is allowed)."""
    if not isinstance(value, dict):
        raise ArtifactError(f"{where} is not a JSON object")
    allowed = set(value) if optional is None else {*required, *optional}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ArtifactError(
            f"{where} has unknown keys {unknown}; this crosssell ({__version__}) does not know "
            "them (a newer or modified writer?)"
        )
    missing = [k for k in required if k not in value]
    if missing:
        raise ArtifactError(f"{where} lacks the keys {missing}")
    return value


class _Reader:
    """Hands out the verified arrays by name; decoded CSR matrices are shared like on save."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.arrays = arrays
        self._csr: dict[tuple[str, str, str], Any] = {}
        # the rebuilt Book and date, for scorers that rebuild state from them (StateRebuilt)
        self.book: Book | None = None
        self.as_of: pd.Timestamp | None = None
        # a scoring-only save: scorers rebuild from the Book without events and saved state
        self.scoring_only = False

    def get(self, name: Any, *, dtype_kind: str | None = None, ndim: int = 1) -> npt.NDArray[Any]:
        if not isinstance(name, str) or name not in self.arrays:
            raise ArtifactError(f"the manifest refers to an array {name!r} that is not stored")
        arr = self.arrays[name]
        if dtype_kind is not None and arr.dtype.kind not in dtype_kind:
            raise ArtifactError(f"array {name!r} has dtype {arr.dtype}, not the kind expected")
        if ndim >= 0 and arr.ndim != ndim:
            raise ArtifactError(f"array {name!r} has {arr.ndim} dimensions, expected {ndim}")
        return arr

    def csr(self, spec: Any, where: str) -> Any:
        s = _fields(spec, where, ("format", "shape", "data", "indices", "indptr"))
        key = (s["data"], s["indices"], s["indptr"])
        if key in self._csr:
            return self._csr[key]
        shape = s["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(isinstance(v, int) and v >= 0 for v in shape)
        ):
            raise ArtifactError(f"{where}: bad shape {shape!r}")
        cls = {"csr_matrix": sp.csr_matrix, "csr_array": sp.csr_array}.get(s["format"])
        if cls is None:
            raise ArtifactError(f"{where}: unknown sparse format {s['format']!r}")
        data = self.get(s["data"], dtype_kind="biuf")
        indices = self.get(s["indices"], dtype_kind="iu")
        indptr = self.get(s["indptr"], dtype_kind="iu")
        try:
            matrix = cls((data, indices, indptr), shape=tuple(shape))
            matrix.check_format(full_check=True)
        except ValueError as exc:
            raise ArtifactError(f"{where}: inconsistent sparse matrix ({exc})") from None
        self._csr[key] = matrix
        return matrix


def _rebuild(manifest: dict[str, Any], r: _Reader, policy: Policy | None) -> Recommender:
    try:
        book = _decode_book(manifest, r)
        sizes = _fields(manifest["sizes"], "sizes", _SIZE_KEYS)
        found = {
            "clients": len(book.client_ids),
            "products": len(book.product_ids),
            "contracts": len(book.contract_arrays),
            "events": len(book.event_table),
        }
        if sizes != found:
            raise ArtifactError(f"the saved sizes {sizes} disagree with the arrays ({found})")
        r.scoring_only = manifest.get("scoring_only", False) is True
        if r.scoring_only and found["events"]:
            raise ArtifactError(f"a scoring-only save holds {found['events']} events, not 0")
        as_of = pd.Timestamp(manifest["as_of"]).as_unit("ns")
        r.book, r.as_of = book, as_of
        model = _fields(manifest["model"], "model", ("matrix", "scorer", "fallback", "propensity"))
        spec = _fields(model["matrix"], "model.matrix", ("client_product", "weighting", "state"))
        client_product = r.csr(spec["client_product"], "model.matrix.client_product")
        if client_product.shape != (len(book.client_ids), len(book.product_ids)):
            raise ArtifactError("the matrix's shape does not match the Book's ids")
        if spec["state"] not in ("active", "ever") or not isinstance(spec["weighting"], str):
            raise ArtifactError("model.matrix has a bad 'state' or 'weighting'")
        matrix = ClientProductMatrix(
            client_product=client_product,
            clients=book.client_ids,
            products=book.product_ids,
            as_of=as_of,
            weighting=spec["weighting"],
            state=spec["state"],
        )
        scorer = _decode_scorer(model["scorer"], "model.scorer", r, fitted=True)
        fallback = _decode_scorer(model["fallback"], "model.fallback", r, fitted=True)
        params = _decode_parameters(manifest["parameters"])
        if policy is not None:
            params["policy"] = policy
        rec = Recommender(**params)
        rec._validate_params()
        rec._prepare(book, matrix, scorer, fallback, whole_book=not r.scoring_only)
        rec.propensity_ = _decode_propensity(model["propensity"], rec)
        if r.scoring_only and rec.explore is not None:
            raise ArtifactError("a scoring-only save has 'explore', which needs the events")
        # exploration's model is the scorer, or a Response learned again from the saved Book
        rec.explore_model_ = rec._explore_model(matrix, book)
        rec.scoring_only_ = r.scoring_only
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise ArtifactError(
            f"the manifest does not describe a consistent model ({type(exc).__name__}: {exc})"
        ) from None
    return rec


# -- parameters
def _decode_parameters(spec: Any) -> dict[str, Any]:
    names = tuple(Recommender._param_names())
    s = _fields(spec, "parameters", (), names)
    out: dict[str, Any] = {}
    for name, value in s.items():
        where = f"parameters.{name}"
        if name == "scorer":
            out[name] = None if value is None else _decode_scorer(value, where, None, fitted=False)
        elif name == "policy":
            out[name] = None if value is None else _decode_policy(value)
        elif name == "weighting":
            out[name] = _decode_weighting(value, where)
        elif name == "calibrator":
            out[name] = None if value is None else _decode_calibrator(value)
        elif name == "explore":
            out[name] = None if value is None else _decode_explore(value, where)
        else:
            out[name] = _decode_value(value, where)
    return out


def _decode_value(value: Any, where: str) -> Any:  # noqa: PLR0911 (one answer per tag)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_decode_value(v, where) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        raise ArtifactError(f"{where}: {value!r} is not an encoded value")
    tag, inner = next(iter(value.items()))
    if tag == "float" and inner in ("nan", "inf", "-inf"):
        return float(inner)
    if tag == "tuple" and isinstance(inner, list):
        return tuple(_decode_value(v, where) for v in inner)
    if tag == "mapping" and isinstance(inner, list):
        pairs = [_decode_value(v, where) for v in inner]
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ArtifactError(f"{where}: a mapping must be a list of [key, value] pairs")
        return dict(pairs)
    if tag == "scorer":
        return _decode_scorer(inner, where, None, fitted=False)
    if tag == "weighting":
        return _decode_weighting(inner, where)
    if tag == "timedelta_ns" and isinstance(inner, int) and not isinstance(inner, bool):
        return pd.Timedelta(inner, unit="ns")
    raise ArtifactError(f"{where}: unknown encoded value {tag!r}")


def _decode_policy(spec: Any) -> Policy:
    s = _fields(spec, "parameters.policy", ("name", "rules"))
    if not isinstance(s["rules"], list):
        raise ArtifactError("parameters.policy.rules is not a list")
    rules = []
    for i, item in enumerate(s["rules"]):
        r = _fields(item, f"parameters.policy.rules[{i}]", ("class", "params"))
        cls = lookup("rule", r["class"])
        params = _fields(r["params"], f"parameters.policy.rules[{i}].params", (), _init_names(cls))
        rules.append(cls(**{k: _decode_value(v, cls.__name__) for k, v in params.items()}))
    return Policy(rules, name=_decode_value(s["name"], "policy name"))


def _init_names(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def _decode_weighting(spec: Any, where: str) -> Any:
    s = _fields(spec, where, (), ("name", "tuple", "class", "params", "factors"))
    if set(s) == {"name"} and isinstance(s["name"], str):
        if s["name"] not in WEIGHTING_NAMES:
            raise ArtifactError(f"{where}: unknown weighting name {s['name']!r}")
        return s["name"]
    if set(s) == {"tuple"} and isinstance(s["tuple"], list):
        return tuple(_decode_weighting(v, where) for v in s["tuple"])
    cls = lookup("weighting", s.get("class"))
    if cls is Combined and set(s) == {"class", "factors"} and isinstance(s["factors"], list):
        return Combined(factors=tuple(_decode_weighting(f, where) for f in s["factors"]))
    if set(s) == {"class", "params"}:
        params = _fields(s["params"], f"{where}.params", (), _init_names(cls))
        return cls(**{k: _decode_value(v, where) for k, v in params.items()})
    raise ArtifactError(f"{where}: {spec!r} is not an encoded weighting")


def _decode_calibrator(spec: Any) -> Any:
    if not isinstance(spec, dict):
        raise ArtifactError("parameters.calibrator is not a JSON object")
    return calibrator_from_dict(spec)


def _decode_propensity(spec: Any, rec: Recommender) -> Any:
    s = _fields(spec, "model.propensity", ("source",), ("scale",))
    if s["source"] == "calibrator" and rec.calibrator is not None:
        return rec.calibrator
    if s["source"] == "scale" and "scale" in s:
        scale = _decode_value(s["scale"], "model.propensity.scale")
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise ArtifactError("model.propensity.scale is not a number")
        return ScoreScale(scale=float(scale))
    raise ArtifactError(f"model.propensity {spec!r} does not match the parameters")


# -- scorers
def _decode_scorer(spec: Any, where: str, r: _Reader | None, *, fitted: bool) -> Scorer:
    keys = ("class", "params", "state") if fitted else ("class", "params")
    s = _fields(spec, where, keys, ("context",) if fitted else ())
    cls: type[Scorer] = lookup("scorer", s["class"])
    params = _fields(s["params"], f"{where}.params", (), tuple(cls._param_names()))
    scorer: Scorer = cls(**{k: _decode_value(v, f"{where}.params.{k}") for k, v in params.items()})
    try:
        scorer._validate_params()
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{where}.params: {exc}") from None
    if not fitted:
        return scorer
    assert r is not None
    state = _fields(s["state"], f"{where}.state", (), None)
    schema = state_schema(cls)
    for attr, value in state.items():
        decoded = _decode_state(value, f"{where}.state.{attr}", r)
        want = schema.get(attr)
        if isinstance(want, StateArray | StateSparse) and np.dtype(want.dtype).kind == "f":
            values = decoded.data if isinstance(want, StateSparse) else decoded
            if not np.isfinite(values).all():
                raise ArtifactError(
                    f"{where}.state.{attr} holds NaN or infinite values, which no fit produces: "
                    "the model was damaged or edited"
                )
        setattr(scorer, attr, decoded)
    rebuilt = any(isinstance(want, StateRebuilt) for want in schema.values())
    if ("context" in s) != (rebuilt and r.scoring_only):
        raise ArtifactError(
            f"{where}: a {cls.__name__} in a {'scoring-only' if r.scoring_only else 'whole'} "
            f"save {'lacks' if 'context' not in s else 'holds no'} event state"
        )
    if rebuilt:
        if r.book is None or r.as_of is None:
            raise ArtifactError(f"{where}: {cls.__name__} needs the saved Book to be rebuilt")
        if r.scoring_only:
            context = _decode_scoring(s["context"], cls, f"{where}.context", r)
            cast(Any, scorer)._restore_scoring(r.book, r.as_of, context)
        else:
            scorer._restore(r.book, r.as_of)
    return scorer


def _decode_scoring(spec: Any, cls: type, where: str, r: _Reader) -> dict[str, Any]:
    schema = _scoring_schema(cls)
    items = _fields(spec, where, tuple(schema))
    out: dict[str, Any] = {}
    for key, want in schema.items():
        decoded = _decode_state(items[key], f"{where}.{key}", r)
        values = decoded.data if isinstance(want, StateSparse) else decoded
        if not np.isfinite(values).all():
            raise ArtifactError(f"{where}.{key} holds NaN or infinite values")
        out[key] = decoded
    return out


def _decode_state(spec: Any, where: str, r: _Reader) -> Any:  # noqa: PLR0911 (one per kind)
    if not isinstance(spec, dict):
        raise ArtifactError(f"{where} is not a JSON object")
    kind = spec.get("kind")
    if kind == "array":
        s = _fields(spec, where, ("kind", "array"))
        return r.get(s["array"], ndim=-1)
    if kind == "csr":
        return r.csr(_fields(spec, where, ("kind", "csr"))["csr"], where)
    if kind == "value":
        value = _decode_value(_fields(spec, where, ("kind", "value"))["value"], where)
        if not (value is None or isinstance(value, bool | int | float | str)):
            raise ArtifactError(f"{where}: a plain value was expected")
        return value
    if kind == "scalar":
        s = _fields(spec, where, ("kind", "dtype", "value"))
        dtype = np.dtype(s["dtype"])
        if dtype.kind not in "biuf":
            raise ArtifactError(f"{where}: a numeric scalar was expected")
        return dtype.type(_decode_value(s["value"], where))
    if kind == "index":
        return _decode_index(_fields(spec, where, ("kind", "index"))["index"], where, r)
    if kind == "scorer":
        return _decode_scorer(
            _fields(spec, where, ("kind", "scorer"))["scorer"], where, r, fitted=True
        )
    if kind in ("names", "lightgbm", "calibrator", "duration", "dates", "table"):
        return _decode_declared(spec, kind, where, r)
    if kind in ("list", "tuple"):
        items = _fields(spec, where, ("kind", "items"))["items"]
        if not isinstance(items, list):
            raise ArtifactError(f"{where}: 'items' is not a list")
        decoded = [_decode_state(v, f"{where}[{i}]", r) for i, v in enumerate(items)]
        return decoded if kind == "list" else tuple(decoded)
    raise ArtifactError(f"{where}: unknown kind of fitted state {kind!r}")


def _decode_declared(spec: dict[str, Any], kind: str, where: str, r: _Reader) -> Any:
    """Decode state of the kinds only a schema asks for (already checked against it)."""
    if kind == "names":
        return [str(v) for v in _fields(spec, where, ("kind", "names"))["names"]]
    if kind == "lightgbm":
        s = _fields(spec, where, ("kind", "text", "n_features"))
        try:
            text = r.get(s["text"], dtype_kind="u").tobytes().decode("ascii")
        except UnicodeDecodeError:
            raise ArtifactError(f"{where}: the LightGBM model text is not ASCII text") from None
        try:
            return booster_from_text(text, int(s["n_features"]))
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: {exc}") from None
    if kind == "calibrator":
        payload = _fields(spec, where, ("kind", "calibrator"))["calibrator"]
        if not isinstance(payload, dict):
            raise ArtifactError(f"{where} is not a saved calibrator")
        return calibrator_from_dict(payload)
    if kind == "duration":
        return pd.Timedelta(int(_fields(spec, where, ("kind", "ns"))["ns"]), unit="ns")
    if kind == "dates":
        return [pd.Timestamp(int(v), unit="ns") for v in _fields(spec, where, ("kind", "ns"))["ns"]]
    s = _fields(spec, where, ("kind", "rows", "columns"))
    data = {c["name"]: r.get(c["values"], dtype_kind="biufmM") for c in s["columns"]}
    if any(v.shape[0] != s["rows"] for v in data.values()):
        raise ArtifactError(f"{where}: the columns differ in length")
    return pd.DataFrame(data, index=pd.RangeIndex(s["rows"]))


# -- the Book
def _decode_book(manifest: dict[str, Any], r: _Reader) -> Book:
    spec = _fields(
        manifest["book"],
        "book",
        ("client_ids", "product_ids", "contracts", "tables", "lookback_ns", "info"),
    )
    client_ids = _decode_ids(spec["client_ids"], "book.client_ids", r)
    product_ids = _decode_ids(spec["product_ids"], "book.product_ids", r)
    n_clients, n_products = len(client_ids), len(product_ids)
    c = _fields(spec["contracts"], "book.contracts", _CONTRACT_FIELDS)
    parts: dict[str, npt.NDArray[Any]] = {}
    for f in _CONTRACT_FIELDS:
        arr = r.get(c[f])
        if arr.dtype != _CONTRACT_DTYPES[f]:
            raise ArtifactError(f"book.contracts.{f} has dtype {arr.dtype}")
        arr.flags.writeable = False
        parts[f] = arr
    n = parts["client"].shape[0]
    if any(a.shape[0] != n for a in parts.values()):
        raise ArtifactError("the contract arrays differ in length")
    for f, bound in (("client", n_clients), ("product", n_products)):
        idx = parts[f]
        if n and (int(idx.min()) < 0 or int(idx.max()) >= bound):
            raise ArtifactError(f"book.contracts.{f} holds indices outside the Book's ids")
    tables = _fields(
        spec["tables"], "book.tables", ("products", "clients", "events", "contracts", "rejected")
    )
    product_table = _decode_table(tables["products"], "book.tables.products", r, rows=n_products)
    client_table = _decode_table(tables["clients"], "book.tables.clients", r, rows=n_clients)
    event_table = _decode_table(tables["events"], "book.tables.events", r)
    contracts = _decode_table(tables["contracts"], "book.tables.contracts", r, rows=n)
    rejected = _decode_table(tables["rejected"], "book.tables.rejected", r)
    info = _fields(
        spec["info"],
        "book.info",
        ("source", "given", "notes", "other_event_types", "repeated_lines"),
    )
    lookback_ns = spec["lookback_ns"]
    return Book(
        schema=Schema(**_fields(manifest["schema"], "schema", (), _SCHEMA_FIELDS)),
        client_ids=client_ids,
        product_ids=product_ids,
        contract_arrays=ContractArrays(**parts),
        product_table=product_table,
        client_table=client_table,
        event_table=event_table,
        rejected=rejected,
        _contracts=contracts,
        lookback=None if lookback_ns is None else pd.Timedelta(int(lookback_ns), unit="ns"),
        info=BuildInfo(
            source=str(info["source"]),
            given=tuple((str(t), int(k)) for t, k in info["given"]),
            notes=tuple(str(x) for x in info["notes"]),
            other_event_types=tuple((str(t), int(k)) for t, k in info["other_event_types"]),
            repeated_lines=int(info["repeated_lines"]),
        ),
    )


def _decode_ids(spec: Any, where: str, r: _Reader) -> IdMap:
    s = _fields(spec, where, ("name", "index"))
    index = _decode_index(s["index"], where, r)
    return IdMap._from_unique(index, name=str(s["name"]))


def _decode_index(spec: Any, where: str, r: _Reader) -> pd.Index:
    if not isinstance(spec, dict):
        raise ArtifactError(f"{where} is not a JSON object")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise ArtifactError(f"{where}: the index name is not text")
    body = {k: v for k, v in spec.items() if k != "name"}
    series = _decode_column(body, where, r, rows=None)
    index: pd.Index = pd.Index(series.array, dtype=series.dtype, name=name, copy=False)
    return index


def _decode_table(spec: Any, where: str, r: _Reader, *, rows: int | None = None) -> pd.DataFrame:
    s = _fields(spec, where, ("rows", "columns"))
    n = s["rows"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ArtifactError(f"{where}: bad row count {n!r}")
    if rows is not None and n != rows:
        raise ArtifactError(f"{where} has {n} rows, expected {rows}")
    if not isinstance(s["columns"], list):
        raise ArtifactError(f"{where}: 'columns' is not a list")
    data: dict[str, pd.Series] = {}
    for i, col in enumerate(s["columns"]):
        if not isinstance(col, dict) or not isinstance(col.get("name"), str):
            raise ArtifactError(f"{where}: column {i} has no name")
        label = col["name"]
        if label in data:
            raise ArtifactError(f"{where}: column {label!r} appears twice")
        body = {k: v for k, v in col.items() if k != "name"}
        data[label] = _decode_column(body, f"{where}.{label}", r, rows=n)
    if not data:
        return pd.DataFrame(index=pd.RangeIndex(n))
    return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)


def _decode_column(spec: dict[str, Any], where: str, r: _Reader, *, rows: int | None) -> pd.Series:
    codec = spec.get("codec")
    if codec == "numpy":
        s = _fields(spec, where, ("codec", "values"))
        values = r.get(s["values"], dtype_kind="biufmM")
        out = pd.Series(values, copy=False)
    elif codec == "string":
        s = _fields(spec, where, ("codec", "storage", "na", "offsets", "data", "mask"))
        mask = r.get(s["mask"], dtype_kind="b")
        text = _text_array(r, s["offsets"], s["data"], where, mask=mask)
        out = pd.Series(pd.array(text, dtype=_string_dtype(s["storage"], s["na"], where)))
    elif codec == "masked":
        s = _fields(spec, where, ("codec", "dtype", "values", "mask"))
        if s["dtype"] not in _MASKED_DTYPES:
            raise ArtifactError(f"{where}: unknown nullable dtype {s['dtype']!r}")
        values = r.get(s["values"], dtype_kind="biuf")
        mask = r.get(s["mask"], dtype_kind="b")
        if values.shape != mask.shape:
            raise ArtifactError(f"{where}: values and mask differ in length")
        arr = pd.array(values, dtype=s["dtype"])
        arr[mask] = pd.NA
        out = pd.Series(arr)
    elif codec == "object":
        out = pd.Series(_decode_objects(spec, where, r), dtype=object)
    else:
        raise ArtifactError(f"{where}: unknown column codec {codec!r}")
    if rows is not None and len(out) != rows:
        raise ArtifactError(f"{where} has {len(out)} rows, expected {rows}")
    return out


def _string_dtype(storage: Any, na: Any, where: str) -> pd.StringDtype:
    if storage not in ("python", "pyarrow") or na not in ("nan", "NA"):
        raise ArtifactError(f"{where}: unknown text dtype ({storage!r}, {na!r})")
    na_value = np.nan if na == "nan" else pd.NA
    try:
        return pd.StringDtype(storage=storage, na_value=na_value)  # type: ignore[call-arg,unused-ignore]
    except TypeError:  # pragma: no cover - pandas before 2.3 has one null for text
        return pd.StringDtype(storage=storage)


def _text_array(
    r: _Reader,
    offsets_name: Any,
    data_name: Any,
    where: str,
    *,
    mask: npt.NDArray[np.bool_] | None = None,
) -> Any:
    """Rebuild a pyarrow text array from its buffers, checking offsets and UTF-8 fully."""
    offsets = r.get(offsets_name, dtype_kind="i")
    data = r.get(data_name, dtype_kind="u")
    if offsets.dtype != np.int64 or data.dtype != np.uint8 or offsets.size == 0:
        raise ArtifactError(f"{where}: bad text arrays")
    n = offsets.size - 1
    if mask is not None and mask.shape != (n,):
        raise ArtifactError(f"{where}: text and mask differ in length")
    validity = None
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    try:
        arr = pa.Array.from_buffers(
            pa.large_utf8(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        arr.validate(full=True)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise ArtifactError(f"{where}: damaged text ({exc})") from None
    return arr


def _decode_text(r: _Reader, offsets_name: Any, data_name: Any, where: str) -> npt.NDArray[Any]:
    arr = _text_array(r, offsets_name, data_name, where)
    out: npt.NDArray[Any] = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    return out


def _decode_objects(spec: dict[str, Any], where: str, r: _Reader) -> npt.NDArray[Any]:
    s = _fields(spec, where, ("codec", "kinds"), ("text", "int", "float", "bool", "tuple"))
    kinds = r.get(s["kinds"], dtype_kind="i")
    out = np.empty(kinds.shape[0], dtype=object)
    filled = np.zeros(kinds.shape[0], dtype=bool)

    def put(kind: int, values: npt.NDArray[Any] | list[Any]) -> None:
        sel = kinds == kind
        if int(sel.sum()) != len(values):
            raise ArtifactError(f"{where}: the counts of stored values do not match the kinds")
        if isinstance(values, list):
            for pos, v in zip(np.flatnonzero(sel).tolist(), values, strict=True):
                out[pos] = v
        else:
            out[sel] = values
        filled[sel] = True

    for kind, constant in ((_K_NONE, None), (_K_NA, pd.NA), (_K_NAT, pd.NaT)):
        sel = kinds == kind
        out[sel] = constant
        filled[sel] = True
    if "text" in s:
        t = _fields(s["text"], f"{where}.text", ("offsets", "data"))
        put(_K_STR, _decode_text(r, t["offsets"], t["data"], where))
    for kind, key, dtype_kind in (
        (_K_INT, "int", "i"),
        (_K_FLOAT, "float", "f"),
        (_K_BOOL, "bool", "b"),
    ):
        if key in s:
            put(kind, r.get(s[key], dtype_kind=dtype_kind))
    if "tuple" in s:
        t = _fields(s["tuple"], f"{where}.tuple", ("lengths", "items"))
        lengths = r.get(t["lengths"], dtype_kind="i")
        items = _decode_objects(t["items"], f"{where}.tuple", r)
        if (lengths < 0).any() or int(lengths.sum()) != items.shape[0]:
            raise ArtifactError(f"{where}: tuple lengths do not match the stored items")
        bounds = np.cumsum(lengths)[:-1]
        put(_K_TUPLE, [tuple(part.tolist()) for part in np.split(items, bounds)])
    if not filled.all():
        raise ArtifactError(
            f"{where}: rows of unknown kind {sorted(set(kinds[~filled].tolist()))[:5]}"
        )
    return out
