"""LightGBM's trees in a saved model: its own text model format, checked before LightGBM reads it.

A saved :class:`~crosssell.scorers.Ranker` holds its trees as the text ``model_to_string()``
writes. LightGBM's parser trusts that text: it jumps by the tree sizes the text states and reads
arrays of the lengths it states, so a truncated or edited text can make it read past the end of
the buffer and end the process instead of raising. :func:`booster_from_text` therefore checks the
whole layout first (header, every tree's arrays and indices, the stated sizes) and hands LightGBM
only a text that matches it; anything else is an :class:`~crosssell.exceptions.ArtifactError`.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from crosssell._kernels import DEFAULT_RIGHT, FEATURE_MASK, NAN_DEFAULT, ZERO_DEFAULT
from crosssell.exceptions import ArtifactError

__all__ = ["BoosterClassifier", "Forest", "booster_from_text", "booster_text"]

_WHAT: Final = "the LightGBM model text"
# arrays of a tree with more than one leaf, by length: one per split, or one per leaf
_PER_SPLIT: Final = (
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "internal_value",
    "internal_weight",
    "internal_count",
)
_PER_LEAF: Final = ("leaf_value", "leaf_weight", "leaf_count")
_TREE_KEYS: Final = frozenset(
    {"num_leaves", "num_cat", "is_linear", "shrinkage", *_PER_SPLIT, *_PER_LEAF}
)
_HEADER_KEYS: Final = frozenset(
    {
        "version",
        "num_class",
        "num_tree_per_iteration",
        "label_index",
        "max_feature_idx",
        "objective",
        "feature_names",
        "feature_infos",
        "tree_sizes",
    }
)
_OBJECTIVE: Final = re.compile(r"binary sigmoid:[0-9.eE+-]+")
_END: Final = "\nend of trees\n"
# categorical splits: decision_type bit 0; the trees the Ranker fits never have them
_CATEGORICAL_BIT: Final = 1


class BoosterClassifier:
    """A fitted LightGBM binary classifier rebuilt from its text model.

    It answers what the Ranker asks of a fitted ``lightgbm.LGBMClassifier``, with the same
    numbers: :meth:`predict_proba` (also with ``pred_contrib=True``) and ``booster_``.

    Parameters
    ----------
    booster : lightgbm.Booster
        The trees.

    Examples
    --------
    >>> import numpy as np, lightgbm
    >>> x = np.arange(200.0).reshape(100, 2)
    >>> clf = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
    >>> clf = clf.fit(x, (x[:, 0] > 100).astype(int))
    >>> loaded = booster_from_text(booster_text(clf), 2)
    >>> bool(np.array_equal(loaded.predict_proba(x), clf.predict_proba(x)))
    True
    """

    def __init__(self, booster: Any) -> None:
        self.booster_ = booster

    def predict_proba(self, x: npt.ArrayLike, *, pred_contrib: bool = False) -> npt.NDArray[Any]:
        """Return the probabilities of both classes, or the per-feature contributions.

        Parameters
        ----------
        x : array-like of float, shape (n, n_features)
            Features; NaN is missing.
        pred_contrib : bool, default False
            Return each feature's contribution (log-odds) and the bias in the last column.

        Returns
        -------
        ndarray of float64
            ``(n, 2)`` probabilities, or ``(n, n_features + 1)`` contributions.

        Examples
        --------
        >>> import numpy as np, lightgbm
        >>> x = np.arange(200.0).reshape(100, 2)
        >>> clf = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
        >>> clf = clf.fit(x, (x[:, 0] > 100).astype(int))
        >>> booster_from_text(booster_text(clf), 2).predict_proba(x[:1], pred_contrib=True).shape
        (1, 3)
        """
        out = np.asarray(self.booster_.predict(x, pred_contrib=pred_contrib, num_threads=1))
        if pred_contrib:
            return out
        return np.vstack((1.0 - out, out)).transpose()

    def __repr__(self) -> str:
        return f"BoosterClassifier(<{self.booster_.num_trees()} trees>)"


#: LightGBM's ``kZeroThreshold``: the float literal 1e-35f, held as a double
_ZERO: Final = float(np.float32(1e-35))
# decision_type bits: 1 categorical, 2 missing goes left, 4-8 missing type (none, zero, NaN)
_DEFAULT_LEFT: Final = 2


@dataclass(frozen=True, eq=False)
class Forest:
    """LightGBM's trees as flat arrays, walked by one compiled loop: the numbers of its predict.

    LightGBM's own predict copies each row twice into new vectors before it walks the trees,
    one row down one tree at a time: each step waits for the node the step before chose. A
    forest reads the rows where they are and walks 32 rows down a tree together while more than
    four of them are still on their way (the last few go on alone), so the steps of different
    rows overlap: about 1.9x faster than one row at a time on the demo book's trees (leaf-wise,
    31 leaves, mean depth 14), as fast on trees whose rows stop after a few steps. It takes the
    same decisions and adds the trees' outputs in the same order: the same raw scores,
    probabilities and leaves, bit for bit (tested). Built from the text model, numerical splits
    only (the Ranker's trees); :meth:`from_text` returns None for anything else.

    The nodes are the splits (``0 .. n_splits - 1``) then every tree's leaves; a leaf's two
    children are itself, so a row that reaches one stays there while the others walk on (at
    most the tree's ``depth`` steps). ``info`` holds a node's feature and its missing-value
    flags (value 0 or NaN goes the default way; that way is right).

    Examples
    --------
    >>> import numpy as np, lightgbm
    >>> x = np.arange(200.0).reshape(100, 2)
    >>> clf = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
    >>> clf = clf.fit(x, (x[:, 0] > 100).astype(int))
    >>> forest = Forest.from_text(clf.booster_.model_to_string())
    >>> bool(np.array_equal(forest.predict(x), clf.booster_.predict(x)))
    True
    """

    info: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float64]
    child: npt.NDArray[np.int32]
    leaf_value: npt.NDArray[np.float64]
    root: npt.NDArray[np.int32]
    depth: npt.NDArray[np.int32]
    leaf_offset: npt.NDArray[np.int32]
    n_splits: int
    sigmoid: float
    n_features: int

    @classmethod
    def from_text(cls, text: str) -> Forest | None:
        """Return the forest of a binary LightGBM text model, or None if it has other splits.

        Parameters
        ----------
        text : str
            ``Booster.model_to_string()`` (the trees its predict uses by default).

        Returns
        -------
        Forest or None
            None for another objective, categorical or linear trees, or a text that does not
            parse (the caller then predicts with LightGBM).

        Examples
        --------
        >>> Forest.from_text("not a model") is None
        True
        """
        try:
            return cls._parse(text)
        except (ArtifactError, ValueError, KeyError, IndexError):
            return None

    @classmethod
    def _parse(cls, text: str) -> Forest:
        """Parse the trees; ValueError for what a forest does not read."""
        first, end = text.find("\nTree=0\n"), text.find(_END)
        if not text.startswith("tree\n") or first < 0 or end < first:
            raise ValueError("not a binary model of numerical splits")
        header = _key_values(text[5:first], "the header")
        objective = header.get("objective", "")
        if not _OBJECTIVE.fullmatch(objective) or header.get("num_tree_per_iteration") != "1":
            raise ValueError("not a binary model of numerical splits")
        sigmoid = float(objective.partition("sigmoid:")[2])
        if not sigmoid > 0:
            raise ValueError("a sigmoid of at most 0")
        n_features = int(header["max_feature_idx"]) + 1
        if not 0 < n_features <= FEATURE_MASK:
            raise ValueError("not a binary model of numerical splits")
        trees = [
            _key_values("\n".join(block.strip().split("\n")[1:]), "a tree")
            for block in text[first + 1 : end].split("\n\n")
            if block.strip()
        ]
        return cls._from_trees(trees, sigmoid, n_features)

    @classmethod
    def _from_trees(cls, trees: list[dict[str, str]], sigmoid: float, n_features: int) -> Forest:
        """Lay out the parsed trees as nodes: every split, then every leaf."""
        n_splits = sum(int(t["num_leaves"]) - 1 for t in trees)
        info: list[npt.NDArray[np.int64]] = []
        left: list[npt.NDArray[np.int64]] = []
        right: list[npt.NDArray[np.int64]] = []
        threshold: list[npt.NDArray[np.float64]] = []
        leaf_value: list[npt.NDArray[np.float64]] = []
        roots: list[int] = []
        depths: list[int] = []
        offsets: list[int] = []
        split_at = leaf_at = 0
        for tree in trees:
            if tree.get("num_cat", "0") != "0" or tree.get("is_linear", "0") != "0":
                raise ValueError("not a binary model of numerical splits")
            leaves = int(tree["num_leaves"])
            values = _floats(tree["leaf_value"], "leaf_value")
            if values.shape[0] != leaves:
                raise ValueError("not a binary model of numerical splits")
            offsets.append(leaf_at)
            leaf_value.append(values)
            if leaves == 1:
                roots.append(n_splits + leaf_at)
                depths.append(0)
                leaf_at += 1
                continue
            decision = _floats(tree["decision_type"], "decision_type").astype(np.int64)
            feature = _floats(tree["split_feature"], "split_feature").astype(np.int64)
            outside = (feature < 0) | (feature >= n_features)
            if (decision & _CATEGORICAL_BIT).any() or outside.any():
                raise ValueError("not a binary model of numerical splits")
            missing = (decision >> 2) & 3
            info.append(
                feature
                | np.where(missing == 1, ZERO_DEFAULT, 0)
                | np.where(missing == 2, NAN_DEFAULT, 0)
                | np.where(decision & _DEFAULT_LEFT, 0, DEFAULT_RIGHT)
            )
            threshold.append(_floats(tree["threshold"], "threshold"))
            sides = []
            for side in ("left", "right"):
                child = _floats(tree[f"{side}_child"], f"{side}_child").astype(np.int64)
                if child.shape[0] != leaves - 1 or (child >= leaves - 1).any():
                    raise ValueError("not a binary model of numerical splits")
                if (~child[child < 0] >= leaves).any():
                    raise ValueError("not a binary model of numerical splits")
                sides.append(child)
            # splits numbered on from the trees before, leaves after every split
            for kids, out in zip(sides, (left, right), strict=True):
                out.append(np.where(kids >= 0, kids + split_at, n_splits + leaf_at + ~kids))
            roots.append(split_at)
            depths.append(_depth(sides[0], sides[1]))
            split_at += leaves - 1
            leaf_at += leaves
        nodes = np.arange(n_splits, n_splits + leaf_at)

        def flat(parts: list[npt.NDArray[Any]], tail: npt.NDArray[Any], dtype: Any) -> Any:
            return np.concatenate([*parts, tail]).astype(dtype)

        # a leaf reads feature 0 and leads to itself whichever way it goes
        children = np.column_stack(
            [flat(left, nodes, np.int64), flat(right, nodes, np.int64)]
        ).reshape(-1)
        return cls(
            info=flat(info, np.zeros(leaf_at, np.int64), np.int32),
            threshold=flat(threshold, np.zeros(leaf_at), np.float64),
            child=children.astype(np.int32),
            leaf_value=flat(leaf_value, np.zeros(0), np.float64),
            root=np.asarray(roots, dtype=np.int32),
            depth=np.asarray(depths, dtype=np.int32),
            leaf_offset=np.asarray(offsets, dtype=np.int32),
            n_splits=n_splits,
            sigmoid=sigmoid,
            n_features=n_features,
        )

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return int(self.root.shape[0])

    def _walk(self, x: npt.ArrayLike, leaves: bool, prob: bool = False) -> tuple[Any, Any]:
        from crosssell._kernels import forest_into

        rows = np.ascontiguousarray(x, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(
                f"the trees read {self.n_features} features; got an array of shape {rows.shape}"
            )
        raw = np.empty(rows.shape[0])
        out = np.empty((rows.shape[0] if leaves else 0, self.n_trees), dtype=np.int32)
        forest_into(
            rows,
            self.info,
            self.threshold,
            self.child,
            self.leaf_value,
            self.root,
            self.depth,
            self.leaf_offset,
            self.n_splits,
            _ZERO,
            self.sigmoid if prob else 0.0,
            raw,
            out,
        )
        return raw, out

    def raw(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the sum of the trees' outputs (log-odds) for each row of ``x``.

        Examples
        --------
        >>> forest, booster, x = _example()
        >>> bool(np.array_equal(forest.raw(x), booster.predict(x, raw_score=True)))
        True
        """
        out: npt.NDArray[np.float64] = self._walk(x, False)[0]
        return out

    def predict(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the probability of the positive class for each row, as LightGBM's predict.

        Examples
        --------
        >>> forest, booster, x = _example()
        >>> p = forest.predict(x[[0, 75]])
        >>> bool(p[0] < 0.5 < p[1])
        True
        """
        out: npt.NDArray[np.float64] = self._walk(x, False, prob=True)[0]
        return out

    def leaves(self, x: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Return each row's leaf in each tree (rows x trees), as ``predict(pred_leaf=True)``.

        Examples
        --------
        >>> forest, booster, x = _example()
        >>> bool(np.array_equal(forest.leaves(x), booster.predict(x, pred_leaf=True)))
        True
        """
        out: npt.NDArray[np.int32] = self._walk(x, True)[1]
        return out


def _depth(left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> int:
    """Longest path from the root (split 0) to a leaf of one tree (children: ``~leaf``)."""
    deepest = 0
    stack = [(0, 1)]
    while stack:
        node, steps = stack.pop()
        if steps > left.shape[0]:
            # longer than the tree has splits: a child leads back up
            raise ValueError("not a binary model of numerical splits")
        for child in (int(left[node]), int(right[node])):
            if child >= 0:
                stack.append((child, steps + 1))
            else:
                deepest = max(deepest, steps)
    return deepest


def _example() -> tuple[Forest, Any, npt.NDArray[np.float64]]:
    """Return a forest of three trees, its LightGBM booster and the rows it learned from."""
    lightgbm: Any = importlib.import_module("lightgbm")
    x = np.arange(200.0).reshape(100, 2)
    clf = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
    booster = clf.fit(x, (x[:, 0] > 100).astype(int)).booster_
    forest = Forest.from_text(booster.model_to_string())
    assert forest is not None
    return forest, booster, x


def booster_text(model: Any) -> str:
    """Return LightGBM's text model of a fitted ``LGBMClassifier`` or :class:`BoosterClassifier`.

    Parameters
    ----------
    model : lightgbm.LGBMClassifier or BoosterClassifier
        Fitted.

    Returns
    -------
    str

    Raises
    ------
    ArtifactError
        If ``model`` is neither (e.g. scikit-learn's trees): only LightGBM's can be saved.

    Examples
    --------
    >>> import numpy as np, lightgbm
    >>> x = np.arange(20.0).reshape(10, 2)
    >>> clf = lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=2, verbose=-1)
    >>> booster_text(clf.fit(x, [0, 1] * 5)).splitlines()[0]
    'tree'
    """
    booster = getattr(model, "booster_", None)
    to_string = getattr(booster, "model_to_string", None)
    if to_string is None:
        raise ArtifactError(
            f"the fitted model is a {type(model).__name__}; only LightGBM's trees can be saved "
            "(in LightGBM's own text model format). scikit-learn's trees have no format that "
            "loads without pickle: fit the Ranker with model='lightgbm' to save it"
        )
    return str(to_string())


def booster_from_text(text: str, n_features: int) -> BoosterClassifier:
    """Check a LightGBM text model, then parse it with LightGBM.

    Parameters
    ----------
    text : str
        As :func:`booster_text` wrote it.
    n_features : int
        The number of features the model must read.

    Returns
    -------
    BoosterClassifier

    Raises
    ------
    ArtifactError
        If the text is not a well-formed binary LightGBM model of ``n_features`` features
        (truncated, edited, another objective, categorical or linear trees), or LightGBM
        refuses it.

    Examples
    --------
    >>> booster_from_text("not a model", 3)
    Traceback (most recent call last):
    ...
    crosssell.exceptions.ArtifactError: the LightGBM model text does not start with LightGBM's ...
    """
    checked = _check_text(text, n_features)
    lightgbm: Any = importlib.import_module("lightgbm")
    try:
        booster = lightgbm.Booster(model_str=checked)
    except (lightgbm.basic.LightGBMError, ValueError, TypeError) as exc:
        raise ArtifactError(f"LightGBM cannot parse {_WHAT} ({exc})") from None
    if booster.num_feature() != n_features:
        raise ArtifactError(
            f"{_WHAT} reads {booster.num_feature()} features; the Ranker has {n_features}"
        )
    return BoosterClassifier(booster)


def _check_text(text: str, n_features: int) -> str:
    """Check the header and every tree; return the text up to the end of the trees."""
    if not isinstance(text, str) or not text.isascii() or not text.startswith("tree\n"):
        raise ArtifactError(f"{_WHAT} does not start with LightGBM's 'tree' line")
    first = text.find("\nTree=0\n")
    end = text.find(_END)
    if first < 0 or end < first:
        raise ArtifactError(f"{_WHAT} holds no trees, or they do not end")
    header = _key_values(text[5:first], "the header")
    max_feature = _check_header(header, n_features)
    sizes = [_int(v, "tree_sizes") for v in header["tree_sizes"].split(" ")]
    # LightGBM jumps by these sizes without a bound check, so they must be exactly the trees'
    start = first + 1
    for i, size in enumerate(sizes):
        stop = start + size
        if size <= 0 or stop > end + 1 or not text.startswith(f"Tree={i}\n", start):
            raise ArtifactError(f"{_WHAT}: tree {i} is not where tree_sizes puts it")
        _check_tree(text[start:stop], i, max_feature)
        start = stop
    if start != end + 1:
        raise ArtifactError(f"{_WHAT}: tree_sizes do not cover the trees exactly")
    return text[: end + len(_END)]


def _check_header(header: dict[str, str], n_features: int) -> int:
    """Check the header's lines; return max_feature_idx."""
    unknown = sorted(set(header) - _HEADER_KEYS)
    if unknown:
        raise ArtifactError(f"{_WHAT}: the header has unknown lines {unknown[:5]}")
    lacking = sorted(_HEADER_KEYS - set(header))
    if lacking:
        raise ArtifactError(f"{_WHAT} lacks the header lines {lacking}")
    if header["version"] not in ("v3", "v4") or header["label_index"] != "0":
        raise ArtifactError(f"{_WHAT} has version {header['version']!r}; v3 or v4 is read")
    if header["num_class"] != "1" or header["num_tree_per_iteration"] != "1":
        raise ArtifactError(f"{_WHAT} is not a binary classifier (num_class must be 1)")
    if not _OBJECTIVE.fullmatch(header["objective"]):
        raise ArtifactError(f"{_WHAT} has objective {header['objective']!r}, not 'binary'")
    max_feature = _int(header["max_feature_idx"], "max_feature_idx")
    if max_feature + 1 != n_features:
        raise ArtifactError(
            f"{_WHAT} reads {max_feature + 1} features (max_feature_idx={max_feature}); the "
            f"Ranker has {n_features}"
        )
    for key in ("feature_names", "feature_infos"):
        if len(header[key].split(" ")) != n_features:
            raise ArtifactError(f"{_WHAT}: {key} does not list {n_features} features")
    return max_feature


def _check_tree(block: str, i: int, max_feature: int) -> None:
    where = f"tree {i}"
    lines = block.split("\n")
    if lines[-2:] != ["", ""]:
        raise ArtifactError(f"{_WHAT}: {where} does not end with a blank line")
    values = _key_values("\n".join(lines[1:]), where)
    unknown = sorted(set(values) - _TREE_KEYS)
    if unknown:
        raise ArtifactError(f"{_WHAT}: {where} has unknown lines {unknown[:5]}")
    n_leaves = _int(values.get("num_leaves", ""), f"{where} num_leaves")
    if n_leaves < 1:
        raise ArtifactError(f"{_WHAT}: {where} has {n_leaves} leaves")
    if values.get("num_cat", "0") != "0" or values.get("is_linear", "0") != "0":
        raise ArtifactError(f"{_WHAT}: {where} has categorical or linear splits")
    arrays = {k: _floats(v, f"{where} {k}") for k, v in values.items() if k in _PER_SPLIT}
    arrays.update({k: _floats(v, f"{where} {k}") for k, v in values.items() if k in _PER_LEAF})
    want = {**dict.fromkeys(_PER_SPLIT, n_leaves - 1), **dict.fromkeys(_PER_LEAF, n_leaves)}
    needed = ("leaf_value",) if n_leaves == 1 else (*_PER_SPLIT[:6], "leaf_value")
    for key in needed:
        if key not in arrays:
            raise ArtifactError(f"{_WHAT}: {where} lacks {key}")
    for key, arr in arrays.items():
        # a one-leaf tree is read for its leaf value alone
        if arr.shape[0] != want[key] and (n_leaves > 1 or key == "leaf_value"):
            raise ArtifactError(
                f"{_WHAT}: {where} has {arr.shape[0]} {key} values, expected {want[key]}"
            )
    # a threshold may be infinite; the values a prediction adds up may not
    if not np.isfinite(arrays["leaf_value"]).all():
        raise ArtifactError(f"{_WHAT}: {where} has NaN or infinite leaf values")
    if n_leaves > 1:
        _check_splits(arrays, n_leaves, max_feature, where)


def _check_splits(
    arrays: dict[str, npt.NDArray[np.float64]], n_leaves: int, max_feature: int, where: str
) -> None:
    """Check the split features and children of a tree with ``n_leaves`` > 1 leaves."""
    for key in ("split_feature", "decision_type", "left_child", "right_child"):
        values = arrays[key]
        if not np.isfinite(values).all() or (values % 1 != 0).any():
            raise ArtifactError(f"{_WHAT}: {where} has {key} values that are not integers")
    feature = arrays["split_feature"]
    if (feature < 0).any() or (feature > max_feature).any():
        raise ArtifactError(f"{_WHAT}: {where} splits on a feature outside 0..{max_feature}")
    if (arrays["decision_type"].astype(np.int64) & _CATEGORICAL_BIT).any():
        raise ArtifactError(f"{_WHAT}: {where} has categorical splits")
    children = np.concatenate([arrays["left_child"], arrays["right_child"]])
    # a child >= 0 is a split, ~child a leaf; every split but the root and every leaf is
    # reached exactly once, so prediction walks a tree and stays inside its arrays
    splits = children[children >= 0]
    leaves = -children[children < 0] - 1
    if (
        splits.shape[0] != n_leaves - 2
        or np.unique(splits).shape[0] != splits.shape[0]
        or (splits < 1).any()
        or (splits > n_leaves - 2).any()
        or np.unique(leaves).shape[0] != n_leaves
        or (leaves > n_leaves - 1).any()
    ):
        raise ArtifactError(f"{_WHAT}: {where} has children outside the tree, or shared")


def _key_values(part: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in part.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or key in out:
            raise ArtifactError(f"{_WHAT}: {where} has a malformed line {line[:40]!r}")
        out[key] = value
    return out


def _int(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ArtifactError(f"{_WHAT}: {where} is {value[:40]!r}, not an integer") from None


def _floats(value: str, where: str) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(value.split(), dtype=np.float64)
    except ValueError:
        raise ArtifactError(f"{_WHAT}: {where} holds something other than numbers") from None
    return arr
