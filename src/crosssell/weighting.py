"""Weightings: how much a held (client, product) pair weighs in a client x product matrix.

A weighting is a small frozen object with one vectorised method, :meth:`Weighting.weigh`, that
turns the contract rows counted at ``as_of`` (grouped by pair in :class:`HeldPairs`) into one
weight per pair. Weightings multiply: ``Recency(half_life="180D") * LogValue()`` weighs each pair
by the product of both factors; a tuple of names, ``("recency", "log_value")``, means the same.

Every stored weight is at least :data:`MIN_WEIGHT`, so a held pair is never dropped from a sparse
matrix because its weight happens to be zero (an unknown value, a very old holding).
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._arrays import OPEN_END, ContractArrays
from crosssell._codec import register
from crosssell._params import Satisfies, check_params

__all__ = [
    "MIN_WEIGHT",
    "WEIGHTING_NAMES",
    "Binary",
    "Combined",
    "HeldPairs",
    "LogValue",
    "Quantity",
    "Recency",
    "Tenure",
    "Value",
    "Weighting",
    "WeightingLike",
    "as_weighting",
    "finalize_weights",
]

#: Smallest stored weight: a held pair whose weight computes to zero (or NaN) is kept with this.
MIN_WEIGHT: Final = 1e-6

# Tenure is counted in Julian years so that leap years do not make a holding jump in weight.
_YEAR_NS: Final = int(365.25 * 24 * 3600 * 10**9)

State = Literal["active", "ever"]
FloatArray: TypeAlias = npt.NDArray[np.float64]
HalfLife: TypeAlias = str | pd.Timedelta | dt.timedelta | np.timedelta64
ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldPairs:
    """The contract rows counted at ``as_of``, grouped by (client, product) pair.

    This is what a :class:`Weighting` reads. Pairs are in (client, product) order, the order of
    the stored entries of a CSR matrix; the rows of each pair are contiguous in :attr:`rows`.

    Attributes
    ----------
    contracts : ContractArrays
        All contracts of the Book (not only the counted ones).
    rows : ndarray of intp
        Positions in ``contracts`` of the counted rows, grouped by pair.
    starts : ndarray of intp
        Offset in ``rows`` of the first row of each pair.
    client, product : ndarray of int32
        Client and product index of each pair.
    as_of : int
        The point in time, nanoseconds since the epoch.
    state : {"active", "ever"}
        Which rows were counted: active at ``as_of``, or started at or before it.

    Examples
    --------
    >>> import numpy as np
    >>> from crosssell.book import OPEN_END, ContractArrays
    >>> a = ContractArrays(
    ...     client=np.array([1, 0, 1], np.int32), product=np.array([0, 0, 0], np.int32),
    ...     start=np.array([5, 1, 2], np.int64), end=np.full(3, OPEN_END, np.int64),
    ...     value=np.array([10.0, 1.0, 20.0]), quantity=np.ones(3))
    >>> pairs = HeldPairs.group(a, np.arange(3), as_of=9, state="active", n_products=1)
    >>> pairs.n_pairs, pairs.client.tolist()
    (2, [0, 1])
    >>> pairs.sum(pairs.take(a.value)).tolist()
    [1.0, 30.0]
    """

    contracts: ContractArrays
    rows: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]
    client: npt.NDArray[np.int32]
    product: npt.NDArray[np.int32]
    as_of: int
    state: State

    @classmethod
    def group(
        cls,
        contracts: ContractArrays,
        rows: npt.NDArray[np.intp],
        *,
        as_of: int,
        state: State,
        n_products: int,
    ) -> HeldPairs:
        """Group counted rows by (client, product) pair.

        Parameters
        ----------
        contracts : ContractArrays
            All contracts of a Book.
        rows : ndarray of int
            Positions of the counted rows, in any order.
        as_of : int
            The point in time, nanoseconds since the epoch.
        state : {"active", "ever"}
            Which rows were counted.
        n_products : int
            Number of known products (the number of matrix columns).

        Returns
        -------
        HeldPairs

        Examples
        --------
        >>> import numpy as np
        >>> from crosssell.book import OPEN_END, ContractArrays
        >>> a = ContractArrays(
        ...     client=np.array([0, 0], np.int32), product=np.array([1, 1], np.int32),
        ...     start=np.array([1, 2], np.int64), end=np.full(2, OPEN_END, np.int64),
        ...     value=np.full(2, np.nan), quantity=np.ones(2))
        >>> HeldPairs.group(a, np.arange(2), as_of=3, state="ever", n_products=2).n_pairs
        1
        """
        rows = np.asarray(rows, dtype=np.intp)
        key = contracts.client[rows].astype(np.int64) * n_products + contracts.product[rows]
        # Not a stable sort: it is 2-3x faster on int64 keys, and the order of rows within a pair
        # only moves sums in their last bits (shuffled input moves them anyway).
        order = np.argsort(key)
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else order[:0]
        pair_key = key[starts]
        return cls(
            contracts=contracts,
            rows=rows[order],
            starts=starts.astype(np.intp, copy=False),
            client=(pair_key // n_products).astype(np.int32),
            product=(pair_key % n_products).astype(np.int32),
            as_of=int(as_of),
            state=state,
        )

    @property
    def n_pairs(self) -> int:
        """Number of distinct pairs held.

        Examples
        --------
        >>> import numpy as np
        >>> from crosssell.book import ContractArrays
        >>> empty = np.array([], np.int64)
        >>> a = ContractArrays(client=empty.astype(np.int32), product=empty.astype(np.int32),
        ...     start=empty, end=empty, value=empty.astype(float), quantity=empty.astype(float))
        >>> HeldPairs.group(a, empty, as_of=0, state="active", n_products=3).n_pairs
        0
        """
        return int(self.starts.shape[0])

    def take(self, column: npt.NDArray[ScalarT]) -> npt.NDArray[ScalarT]:
        """Return a contract column restricted to the counted rows, in :attr:`rows` order.

        Parameters
        ----------
        column : ndarray
            An array aligned with ``contracts`` (e.g. ``contracts.value``).

        Returns
        -------
        ndarray
            ``column[rows]``.

        Examples
        --------
        >>> import numpy as np
        >>> from crosssell.book import OPEN_END, ContractArrays
        >>> a = ContractArrays(
        ...     client=np.array([1, 0], np.int32), product=np.array([0, 0], np.int32),
        ...     start=np.array([1, 2], np.int64), end=np.full(2, OPEN_END, np.int64),
        ...     value=np.array([7.0, 8.0]), quantity=np.ones(2))
        >>> p = HeldPairs.group(a, np.arange(2), as_of=3, state="active", n_products=1)
        >>> p.take(a.value).tolist()
        [8.0, 7.0]
        """
        return column[self.rows]

    def _reduce(self, ufunc: np.ufunc, values: npt.NDArray[ScalarT]) -> npt.NDArray[ScalarT]:
        if self.n_pairs == 0:
            return values[:0]
        out: npt.NDArray[ScalarT] = ufunc.reduceat(values, self.starts)
        return out

    def sum(self, values: FloatArray) -> FloatArray:
        """Sum values of the counted rows per pair.

        Parameters
        ----------
        values : ndarray of float64
            One value per counted row, in :attr:`rows` order (see :meth:`take`).

        Returns
        -------
        ndarray of float64
            One sum per pair.

        Examples
        --------
        >>> import numpy as np
        >>> from crosssell.book import OPEN_END, ContractArrays
        >>> a = ContractArrays(
        ...     client=np.zeros(3, np.int32), product=np.zeros(3, np.int32),
        ...     start=np.arange(3, dtype=np.int64), end=np.full(3, OPEN_END, np.int64),
        ...     value=np.array([1.0, 2.0, 4.0]), quantity=np.ones(3))
        >>> p = HeldPairs.group(a, np.arange(3), as_of=5, state="active", n_products=1)
        >>> p.sum(p.take(a.value)).tolist()
        [7.0]
        """
        return self._reduce(np.add, np.asarray(values, dtype=np.float64))

    def min(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Smallest value of the counted rows per pair (e.g. the earliest start).

        Parameters
        ----------
        values : ndarray of int64
            One value per counted row, in :attr:`rows` order (see :meth:`take`).

        Returns
        -------
        ndarray of int64
            One minimum per pair.

        Examples
        --------
        >>> import numpy as np
        >>> from crosssell.book import OPEN_END, ContractArrays
        >>> a = ContractArrays(
        ...     client=np.zeros(2, np.int32), product=np.zeros(2, np.int32),
        ...     start=np.array([4, 2], np.int64), end=np.full(2, OPEN_END, np.int64),
        ...     value=np.ones(2), quantity=np.ones(2))
        >>> p = HeldPairs.group(a, np.arange(2), as_of=5, state="active", n_products=1)
        >>> p.min(p.take(a.start)).tolist()
        [2]
        """
        return self._reduce(np.minimum, values)

    def max(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Largest value of the counted rows per pair (e.g. the latest start).

        Parameters
        ----------
        values : ndarray of int64
            One value per counted row, in :attr:`rows` order (see :meth:`take`).

        Returns
        -------
        ndarray of int64
            One maximum per pair.

        Examples
        --------
        >>> import numpy as np
        >>> from crosssell.book import OPEN_END, ContractArrays
        >>> a = ContractArrays(
        ...     client=np.zeros(2, np.int32), product=np.zeros(2, np.int32),
        ...     start=np.array([4, 2], np.int64), end=np.full(2, OPEN_END, np.int64),
        ...     value=np.ones(2), quantity=np.ones(2))
        >>> p = HeldPairs.group(a, np.arange(2), as_of=5, state="active", n_products=1)
        >>> p.max(p.take(a.start)).tolist()
        [4]
        """
        return self._reduce(np.maximum, values)


class Weighting(abc.ABC):
    """Base class of weightings: one weight per held (client, product) pair.

    Subclasses are frozen dataclasses that implement :meth:`weigh` (vectorised over all pairs)
    and :meth:`describe`. Two weightings multiply into a :class:`Combined` one with ``*``.

    Examples
    --------
    >>> w = Recency(half_life="180D") * LogValue()
    >>> w.describe()
    "recency(half_life='180D') * log_value"
    """

    __slots__ = ()

    @abc.abstractmethod
    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return one non-negative weight per pair, in the order of ``pairs``.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64
            Shape ``(pairs.n_pairs,)``. Zeros and NaN are raised to :data:`MIN_WEIGHT` when the
            matrix is built; negative or infinite weights are an error.
        """

    @abc.abstractmethod
    def describe(self) -> str:
        """Return a short readable description, e.g. ``"log_value"``.

        Returns
        -------
        str
        """

    def __mul__(self, other: object) -> Combined:
        if not isinstance(other, Weighting):
            return NotImplemented
        return Combined(factors=(*_factors(self), *_factors(other)))


def _factors(w: Weighting) -> tuple[Weighting, ...]:
    return w.factors if isinstance(w, Combined) else (w,)


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class Binary(Weighting):
    """Every held pair weighs 1.

    Examples
    --------
    >>> Binary().describe()
    'binary'
    """

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return ones.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> Binary().weigh(_example_pairs()).tolist()
        [1.0, 1.0]
        """
        return np.ones(pairs.n_pairs, dtype=np.float64)

    def describe(self) -> str:
        """Return ``"binary"``.

        Returns
        -------
        str

        Examples
        --------
        >>> str(Binary().describe())
        'binary'
        """
        return "binary"


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class Value(Weighting):
    """The summed annual value of the pair's counted rows.

    An unknown (NaN) value counts as 0; a pair whose sum is 0 stays stored with
    :data:`MIN_WEIGHT`.

    Examples
    --------
    >>> Value().weigh(_example_pairs()).tolist()
    [30.0, 0.0]
    """

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return the summed value of each pair.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> Value().weigh(_example_pairs()).tolist()
        [30.0, 0.0]
        """
        values = pairs.take(pairs.contracts.value)
        return pairs.sum(np.where(np.isnan(values), 0.0, values))

    def describe(self) -> str:
        """Return ``"value"``.

        Returns
        -------
        str

        Examples
        --------
        >>> Value().describe()
        'value'
        """
        return "value"


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class LogValue(Weighting):
    """``log1p`` of the summed annual value (see :class:`Value`), damping very large accounts.

    Examples
    --------
    >>> LogValue().weigh(_example_pairs()).round(3).tolist()
    [3.434, 0.0]
    """

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return ``log1p`` of each pair's summed value.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> LogValue().weigh(_example_pairs()).shape
        (2,)
        """
        return np.log1p(Value().weigh(pairs))

    def describe(self) -> str:
        """Return ``"log_value"``.

        Returns
        -------
        str

        Examples
        --------
        >>> LogValue().describe()
        'log_value'
        """
        return "log_value"


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class Tenure(Weighting):
    """``1 +`` years since the earliest start among the pair's counted rows.

    The ``+ 1`` keeps a holding that started on ``as_of`` non-zero. Years are Julian (365.25 days).

    Examples
    --------
    >>> Tenure().weigh(_example_pairs()).round(2).tolist()
    [3.0, 2.0]
    """

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return ``1 + (as_of - earliest start) / 1 year`` per pair.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> Tenure().weigh(_example_pairs()).round(2).tolist()
        [3.0, 2.0]
        """
        first = pairs.min(pairs.take(pairs.contracts.start))
        return 1.0 + (pairs.as_of - first) / _YEAR_NS

    def describe(self) -> str:
        """Return ``"tenure"``.

        Returns
        -------
        str

        Examples
        --------
        >>> Tenure().describe()
        'tenure'
        """
        return "tenure"


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class Recency(Weighting):
    """Decay with the age of the pair's latest start or end: ``0.5 ** (age / half_life)``.

    The age runs from the latest date at or before ``as_of`` among the starts and ends of the
    pair's counted rows. For ``state="active"`` every counted end is later than ``as_of``, so the
    age is the time since the latest start (a renewal refreshes it); for ``state="ever"`` a pair
    whose contracts have all ended ages from its last end.

    Parameters
    ----------
    half_life : str, pandas.Timedelta, datetime.timedelta or numpy.timedelta64, default "365D"
        The age at which the weight halves; must be positive.

    Raises
    ------
    ValueError
        If ``half_life`` is not a positive duration.

    Examples
    --------
    >>> Recency(half_life="365D").weigh(_example_pairs()).tolist()
    [1.0, 0.5]
    >>> Recency(half_life="0D")
    Traceback (most recent call last):
    ...
    crosssell.exceptions.InvalidParameterError: The 'half_life' parameter of Recency must be a ...
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "half_life": [
            Satisfies(
                lambda v: pd.Timedelta(v) > pd.Timedelta(0),
                "a positive duration",
                ("0D", "-1D", "soon", object()),
            )
        ],
    }

    half_life: HalfLife = "365D"

    def __post_init__(self) -> None:
        check_params(self)

    def _half_life_ns(self) -> int:
        return int(pd.Timedelta(self.half_life).value)

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return ``0.5 ** (age / half_life)`` per pair.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> Recency(half_life="730D").weigh(_example_pairs()).round(3).tolist()
        [1.0, 0.707]
        """
        start = pairs.take(pairs.contracts.start)
        end = pairs.take(pairs.contracts.end)
        touched = np.where(end <= pairs.as_of, end, start)
        age = pairs.as_of - pairs.max(touched)
        return np.exp2(-age / self._half_life_ns())

    def describe(self) -> str:
        """Return ``"recency(half_life=...)"``.

        Returns
        -------
        str

        Examples
        --------
        >>> Recency().describe()
        "recency(half_life='365D')"
        """
        hl = (
            self.half_life if isinstance(self.half_life, str) else str(pd.Timedelta(self.half_life))
        )
        return f"recency(half_life={hl!r})"


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class Quantity(Weighting):
    """The summed quantity (seats, units) of the pair's counted rows; NaN counts as 0.

    Examples
    --------
    >>> Quantity().weigh(_example_pairs()).tolist()
    [5.0, 1.0]
    """

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return the summed quantity of each pair.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> Quantity().weigh(_example_pairs()).tolist()
        [5.0, 1.0]
        """
        qty = pairs.take(pairs.contracts.quantity)
        return pairs.sum(np.where(np.isnan(qty), 0.0, qty))

    def describe(self) -> str:
        """Return ``"quantity"``.

        Returns
        -------
        str

        Examples
        --------
        >>> Quantity().describe()
        'quantity'
        """
        return "quantity"


@register("weighting")
@dataclass(frozen=True, slots=True, kw_only=True)
class Combined(Weighting):
    """The product of several weightings; usually made with ``*`` or a tuple of names.

    Parameters
    ----------
    factors : tuple of Weighting
        At least one weighting.

    Raises
    ------
    ValueError
        If ``factors`` is empty or holds something other than weightings.

    Examples
    --------
    >>> w = Combined(factors=(Recency(), Quantity()))
    >>> w.weigh(_example_pairs()).tolist()
    [5.0, 0.5]
    >>> w == Recency() * Quantity()
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "factors": [
            Satisfies(
                lambda v: (
                    isinstance(v, tuple) and len(v) > 0 and all(isinstance(f, Weighting) for f in v)
                ),
                "a non-empty tuple of Weighting",
                ((), ("binary",), [Binary()]),
            )
        ],
    }

    factors: tuple[Weighting, ...]

    def __post_init__(self) -> None:
        check_params(self)

    def weigh(self, pairs: HeldPairs) -> FloatArray:
        """Return the product of the factors' weights.

        Parameters
        ----------
        pairs : HeldPairs
            The counted rows grouped by pair.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> (Value() * Quantity()).weigh(_example_pairs()).tolist()
        [150.0, 0.0]
        """
        out = self.factors[0].weigh(pairs).astype(np.float64, copy=True)
        for factor in self.factors[1:]:
            out *= factor.weigh(pairs)
        return out

    def describe(self) -> str:
        """Return the factors' descriptions joined by ``" * "``.

        Returns
        -------
        str

        Examples
        --------
        >>> (Tenure() * Value()).describe()
        'tenure * value'
        """
        return " * ".join(f.describe() for f in self.factors)


#: Weightings reachable by name.
WEIGHTING_NAMES: Final[dict[str, type[Weighting]]] = {
    "binary": Binary,
    "value": Value,
    "log_value": LogValue,
    "tenure": Tenure,
    "recency": Recency,
    "quantity": Quantity,
}

WeightingLike: TypeAlias = str | Weighting | tuple[str | Weighting, ...]
"""A weighting, its name, or a tuple of those (multiplied together)."""


def as_weighting(weighting: WeightingLike, *, caller: str = "build_matrix") -> Weighting:
    """Turn a name, a weighting or a tuple of those into a :class:`Weighting`.

    Parameters
    ----------
    weighting : str, Weighting or tuple
        One of ``"binary"``, ``"value"``, ``"log_value"``, ``"tenure"``, ``"recency"`` (half-life
        365 days) and ``"quantity"``; a :class:`Weighting`; or a tuple of those, multiplied.
    caller : str, default "build_matrix"
        The function named in error messages.

    Returns
    -------
    Weighting

    Raises
    ------
    ValueError
        For an unknown name or an empty tuple.
    TypeError
        For anything that is not a name, a weighting or a tuple.

    Examples
    --------
    >>> as_weighting("log_value")
    LogValue()
    >>> as_weighting(("recency", "value")).describe()
    "recency(half_life='365D') * value"
    >>> as_weighting("money")
    Traceback (most recent call last):
    ...
    ValueError: The 'weighting' parameter of build_matrix must be one of 'binary', 'value', \
'log_value', 'tenure', 'recency', 'quantity', a Weighting, or a tuple of those. Got 'money' instead.
    """
    if isinstance(weighting, Weighting):
        return weighting
    options = ", ".join(repr(n) for n in WEIGHTING_NAMES)
    message = (
        f"The 'weighting' parameter of {caller} must be one of {options}, a Weighting, "
        f"or a tuple of those. Got {weighting!r} instead."
    )
    if isinstance(weighting, str):
        if weighting not in WEIGHTING_NAMES:
            raise ValueError(message)
        return WEIGHTING_NAMES[weighting]()
    if isinstance(weighting, tuple):
        if not weighting or any(isinstance(w, tuple) for w in weighting):
            raise ValueError(message)
        parts = [as_weighting(w, caller=caller) for w in weighting]
        return Combined(factors=tuple(f for p in parts for f in _factors(p)))
    raise TypeError(message)


def finalize_weights(weights: FloatArray, weighting: Weighting) -> npt.NDArray[np.float32]:
    """Check a weighting's output and raise zeros and NaN to :data:`MIN_WEIGHT`, as float32.

    Parameters
    ----------
    weights : ndarray of float64
        What ``weighting.weigh`` returned.
    weighting : Weighting
        The weighting, named in error messages.

    Returns
    -------
    ndarray of float32

    Raises
    ------
    ValueError
        If a weight is negative or infinite.

    Examples
    --------
    >>> import numpy as np
    >>> out = finalize_weights(np.array([0.0, np.nan, 2.0]), Value())
    >>> out.dtype.name, (out == np.float32(MIN_WEIGHT)).tolist()
    ('float32', [True, True, False])
    """
    weights = np.asarray(weights, dtype=np.float64)
    bad = (weights < 0) | np.isinf(weights)
    if bad.any():
        shown = weights[bad][:5].tolist()
        raise ValueError(
            f"Weighting {weighting.describe()!r} returned {int(bad.sum())} negative or infinite "
            f"weights (showing up to 5): {shown}. A weighting must return finite weights >= 0."
        )
    return np.fmax(weights, MIN_WEIGHT).astype(np.float32)


def _example_pairs() -> HeldPairs:
    # Two pairs at as_of = day 730: (0, 0) started on day 0 and renewed on as_of (values 10 and
    # 20, quantities 2 and 3); (1, 0) started on day 365 with an unknown value.
    day = 24 * 3600 * 10**9
    contracts = ContractArrays(
        client=np.array([0, 0, 1], np.int32),
        product=np.array([0, 0, 0], np.int32),
        start=np.array([0, 730 * day, 365 * day], np.int64),
        end=np.full(3, OPEN_END, np.int64),
        value=np.array([10.0, 20.0, np.nan]),
        quantity=np.array([2.0, 3.0, 1.0]),
    )
    return HeldPairs.group(contracts, np.arange(3), as_of=730 * day, state="active", n_products=1)
