"""Translation between the caller's ids and the dense indices that matrices use.

It also holds the one spelling of ids (:func:`spell_id`): the Book applies it to every id it
reads, and every lookup (Python scoring, the command line, the HTTP service) applies it to the
id it is given, so an id found at fit is found again at scoring.
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

from crosssell._words import WordTable
from crosssell.exceptions import UnknownIdError

__all__ = ["IdMap", "spell_id", "spell_text_ids"]

_INTEGER: Final = re.compile(r"[+-]?[0-9]+")


def spell_id(value: Any) -> Any:
    r"""Return an id in the one spelling crosssell uses, at fit and at scoring alike.

    Text is trimmed of blanks at both ends and brought to unicode normal form C (an ``é`` typed
    as ``e`` and an accent is the same id as a precomposed ``é``); integers of any kind (numpy's
    included) become Python ints; anything else is returned unchanged. Leading zeros are kept:
    ``'007'`` stays ``'007'``.

    Parameters
    ----------
    value : object
        An id as the caller has it.

    Returns
    -------
    object

    Examples
    --------
    >>> spell_id(" C1 "), spell_id("e\u0301") == "\u00e9", spell_id("007")
    ('C1', True, '007')
    >>> import numpy as np
    >>> type(spell_id(np.int64(7)))
    <class 'int'>
    """
    if isinstance(value, str):
        trimmed = value.strip()
        return trimmed if trimmed.isascii() else unicodedata.normalize("NFC", trimmed)
    if isinstance(value, bool | np.bool_):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return value


def spell_text_ids(values: pd.Series) -> pd.Series:
    r"""Apply :func:`spell_id` to a column of text ids, vectorised (nulls stay null).

    Parameters
    ----------
    values : pandas.Series
        Text ids.

    Returns
    -------
    pandas.Series
        Of dtype ``str``, on the same index.

    Examples
    --------
    >>> import pandas as pd
    >>> spell_text_ids(pd.Series([" C1", "C1 ", "e\u0301"])).tolist() == ["C1", "C1", "\u00e9"]
    True
    """
    out = values.astype("str").str.strip()
    # Only non-ASCII text can change under NFC; checking ASCII first keeps this cheap. A null is
    # not ASCII to the ``str`` dtype's ``isascii`` (False, not NA): leave it out, or a column of
    # mostly missing ids would be normalised row by row.
    wide = ~out.str.isascii().to_numpy(dtype=bool) & out.notna().to_numpy()
    if wide.any():
        out = out.copy()
        out[wide] = out[wide].str.normalize("NFC")
    return out


def positions(
    index: pd.Index, values: pd.Series, *, spell: Callable[[pd.Series], Any] | None = None
) -> npt.NDArray[np.int64]:
    """Return each value's position in ``index``, -1 for a missing or unknown value.

    Each distinct value is spelled (``spell``, given the distinct values as a Series) and looked
    up once, not once per row: a column of millions of events names few products or families.

    Examples
    --------
    >>> import pandas as pd
    >>> index = pd.Index(["P1", "P2"])
    >>> positions(index, pd.Series([" P2", None, "P1", "P9", " P2"]), spell=spell_text_ids).tolist()
    [1, -1, 0, -1, 1]
    """
    if spell is not None and values.dtype == object:
        # factorize takes 1, 1.0 and True for one value; spelled, they differ: spell each row
        values, spell = spell(values), None
    codes, uniques = pd.factorize(values)
    keys = pd.Series(uniques, dtype=values.dtype)
    if spell is not None:
        keys = spell(keys)
    # a missing value (code -1) reads the -1 appended after the distinct ones
    return np.append(index.get_indexer(pd.Index(keys)), -1)[codes].astype(np.int64)


class IdMap:
    """An immutable vocabulary of external ids, each with a dense index ``0 .. n-1``.

    External ids keep the caller's values and dtype (integers stay integers, text stays text);
    internal indices never reach a user.

    Parameters
    ----------
    ids : array-like
        Distinct external ids, in index order.
    name : str, default "id"
        What the ids are (``"client"`` or ``"product"``), used in error messages.

    Raises
    ------
    ValueError
        If ``ids`` holds duplicates or nulls.

    Examples
    --------
    >>> m = IdMap(["P1", "P2", "P3"], name="product")
    >>> m.to_index(["P3", "P1"]).tolist()
    [2, 0]
    >>> m.to_external([1]).tolist()
    ['P2']
    >>> len(m)
    3
    """

    __slots__ = ("_index", "_words", "name")

    def __init__(self, ids: Iterable[Any] | pd.Index, *, name: str = "id") -> None:
        if isinstance(ids, pd.Index):
            index = ids.copy()
        else:
            index = pd.Index(ids if hasattr(ids, "dtype") else list(ids))
        if index.hasnans:
            n_null = int(np.asarray(index.isna()).sum())
            raise ValueError(f"{name} ids must not be null; got {n_null} nulls.")
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"{name} ids must be distinct; duplicated: {dup}")
        self._index: pd.Index = index
        self._words: WordTable | None = None
        self.name = name

    @classmethod
    def _from_unique(cls, index: pd.Index, *, name: str) -> IdMap:
        """Wrap ids already known to be distinct and non-null (e.g. ``pd.factorize`` output).

        Skips the uniqueness check, which costs as much as a second factorize on millions of ids.
        """
        out = cls.__new__(cls)
        out._index = index
        out._words = None
        out.name = name
        return out

    @classmethod
    def from_values(cls, values: Any, *, name: str = "id") -> IdMap:
        """Build a map from the distinct values of an array, in order of first appearance.

        Parameters
        ----------
        values : array-like
            Values with repeats, e.g. a column of contracts.
        name : str, default "id"
            What the ids are.

        Returns
        -------
        IdMap

        Examples
        --------
        >>> IdMap.from_values([5, 3, 5, 7]).external.tolist()
        [5, 3, 7]
        """
        _, uniques = pd.factorize(
            pd.Series(values) if not isinstance(values, pd.Series) else values
        )
        return cls(pd.Index(uniques), name=name)

    @property
    def external(self) -> pd.Index:
        """The external ids as a pandas Index, in index order (read it, do not modify it).

        Examples
        --------
        >>> IdMap(["a", "b"]).external.tolist()
        ['a', 'b']
        """
        return self._index

    @property
    def dtype(self) -> Any:
        """The dtype of the external ids.

        Examples
        --------
        >>> str(IdMap([1, 2]).dtype)
        'int64'
        """
        return self._index.dtype

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item: object) -> bool:
        try:
            return bool(item in self._index)
        except TypeError:
            return False

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._index[:3].tolist())
        more = ", ..." if len(self) > 3 else ""
        return f"IdMap(name={self.name!r}, n={len(self)}, ids=[{head}{more}])"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return self.name == other.name and self._index.equals(other._index)

    def __hash__(self) -> int:
        return hash((self.name, len(self)))

    def coerce(self, value: Any) -> Any:
        """Spell an id the way this map does, e.g. text from a command line or a URL query.

        An id the map knows is returned as is. Otherwise the id is spelled with
        :func:`spell_id` (trimmed, unicode NFC), then text of decimal digits becomes an int when
        the ids are integers, and an int becomes text when they are text. Anything else is
        returned spelled but unknown. Python scoring, the command line and the HTTP service all
        look ids up through this method.

        Parameters
        ----------
        value : object
            An id as the caller has it.

        Returns
        -------
        object

        Examples
        --------
        >>> IdMap([7, 42]).coerce("42")
        42
        >>> IdMap(["007"]).coerce("007")
        '007'
        >>> IdMap(["7"]).coerce(7)
        '7'
        >>> IdMap(["C1"]).coerce(" C1")
        'C1'
        """
        if value in self:
            return value
        value = spell_id(value)
        integer_ids = self._index.dtype.kind in "iu"
        if integer_ids and isinstance(value, str):
            return int(value) if _INTEGER.fullmatch(value) else value
        if not integer_ids and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    def index_of(self, id_: Any) -> int:
        """Index of one external id, or -1 when unknown (the cheap path for single lookups).

        Parameters
        ----------
        id_ : object
            One external id.

        Returns
        -------
        int

        Examples
        --------
        >>> m = IdMap(["a", "b"])
        >>> m.index_of("b"), m.index_of("zz")
        (1, -1)
        """
        try:
            loc = self._index.get_loc(id_)
        except (KeyError, TypeError, ValueError):
            return -1
        return loc if isinstance(loc, int) else -1

    def to_index(
        self, ids: Iterable[Any], *, missing: Literal["raise", "ignore"] = "raise"
    ) -> npt.NDArray[np.int64]:
        """Translate external ids to indices.

        Parameters
        ----------
        ids : array-like
            External ids.
        missing : {"raise", "ignore"}, default "raise"
            ``"raise"`` raises :class:`~crosssell.exceptions.UnknownIdError` naming the unknown
            ids; ``"ignore"`` returns ``-1`` for them.

        Returns
        -------
        numpy.ndarray of int64

        Raises
        ------
        UnknownIdError
            When an id is unknown and ``missing="raise"``.

        Examples
        --------
        >>> m = IdMap(["a", "b"], name="client")
        >>> m.to_index(["b", "zz"], missing="ignore").tolist()
        [1, -1]
        >>> m.to_index(["zz"])
        Traceback (most recent call last):
        ...
        crosssell.exceptions.UnknownIdError: 1 unknown client id (showing 1): 'zz'
        """
        values = ids if isinstance(ids, pd.Index | pd.Series | np.ndarray) else list(ids)
        idx = np.asarray(self._index.get_indexer(pd.Index(values)), dtype=np.int64)
        if missing == "raise" and (idx < 0).any():
            unknown = pd.Index(values)[idx < 0].unique()
            shown = ", ".join(repr(x) for x in unknown[:5].tolist())
            n = len(unknown)
            raise UnknownIdError(
                f"{n} unknown {self.name} id{'s' if n != 1 else ''} (showing {min(n, 5)}): {shown}",
                ids=unknown.tolist(),
            )
        return idx

    def _text_words(self) -> WordTable | None:
        """Return the ids as a table of words when they are text held by Arrow, else None.

        Built on first use (a million ids in about 50 ms) and kept: batches of offers join
        their id columns from it (see :mod:`crosssell._words`).
        """
        dtype = self._index.dtype
        if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
            return None
        if self._words is None:
            self._words = WordTable.of(pa.array(self._index.array))
        return self._words

    def _external_array(self, index: npt.NDArray[np.int64]) -> Any:
        """Return the ids at ``index`` as a column's array, as :meth:`to_external` gives them.

        Text ids held by Arrow are joined by a compiled loop into memory numpy allocates;
        other ids are taken by pandas (:meth:`to_external`'s index).
        """
        words = self._text_words()
        if words is None:
            return self.to_external(index)
        return pd.array(words.take(index, large=True), dtype=self._index.dtype)

    def to_external(self, index: Any) -> pd.Index:
        """Translate indices to external ids.

        Parameters
        ----------
        index : array-like of int
            Indices in ``0 .. len(self) - 1``.

        Returns
        -------
        pandas.Index
            The external ids, with the caller's dtype.

        Examples
        --------
        >>> IdMap([10, 20, 30]).to_external([2, 0]).tolist()
        [30, 10]
        """
        return self._index.take(np.asarray(index, dtype=np.int64))
