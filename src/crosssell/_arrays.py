"""Validated contracts as aligned arrays: the form the Book hands to matrices and weightings.

This module sits below both :mod:`crosssell.book` and :mod:`crosssell.weighting`, so that a
weighting can read contracts without importing the Book. Both names are public from
:mod:`crosssell.book`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["OPEN_END", "ContractArrays"]

#: Internal end time (int64 nanoseconds) of an open contract: later than any date.
OPEN_END: Final = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractArrays:
    """Validated contracts as aligned numpy arrays, the form matrices are built from.

    One entry per contract row that survived validation (renewal chains are *not* merged here:
    a matrix counts distinct (client, product) pairs, so overlapping rows collapse there).

    Attributes
    ----------
    client : ndarray of int32
        Index into ``Book.client_ids``.
    product : ndarray of int32
        Index into ``Book.product_ids``.
    start : ndarray of int64
        Start, nanoseconds since the epoch (UTC, tz-naive).
    end : ndarray of int64
        End, nanoseconds since the epoch; :data:`OPEN_END` for an open contract. A contract is
        active at ``as_of`` when ``start <= as_of < end``.
    value : ndarray of float64
        Annual value (NaN where unknown).
    quantity : ndarray of float64
        Seats or units (1.0 where not given).

    Examples
    --------
    >>> import numpy as np
    >>> a = ContractArrays(
    ...     client=np.array([0], np.int32), product=np.array([0], np.int32),
    ...     start=np.array([0], np.int64), end=np.array([OPEN_END], np.int64),
    ...     value=np.array([1.0]), quantity=np.array([1.0]))
    >>> len(a)
    1
    """

    client: npt.NDArray[np.int32]
    product: npt.NDArray[np.int32]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    quantity: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.client.shape[0])
