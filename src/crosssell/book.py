"""The Book: validated, immutable, point-in-time inputs (contracts, products, clients, events).

Everything downstream takes a :class:`Book` and trusts it; nothing re-validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.columns import Columns
from crosssell.ids import IdMap

if TYPE_CHECKING:
    from crosssell.matrix import ClientProductMatrix
    from crosssell.weighting import WeightingLike

__all__ = ["OPEN_END", "Book", "ContractArrays", "Schema"]

#: Internal end time (int64 nanoseconds) of an open contract: later than any date.
OPEN_END: Final = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """Maps the caller's column names onto crosssell's, once, at the boundary.

    Each field is a crosssell column (see :class:`crosssell.columns.Columns`); its value is the
    caller's name for it. Only the names that differ need to be given.

    Examples
    --------
    >>> s = Schema(client="customer_no", product="sku")
    >>> s.client, s.start
    ('customer_no', 'start_date')
    >>> s.renames()["customer_no"]
    'client_id'
    """

    client: str = Columns.client
    product: str = Columns.product
    contract: str = Columns.contract
    start: str = Columns.start
    end: str = Columns.end
    value: str = Columns.value
    quantity: str = Columns.quantity
    timestamp: str = Columns.timestamp
    amount: str = Columns.amount
    family: str = Columns.family
    tier: str = Columns.tier
    price: str = Columns.price
    requires: str = Columns.requires
    excludes: str = Columns.excludes
    sellable: str = Columns.sellable
    segments: str = Columns.segments
    name: str = Columns.name
    segment: str = Columns.segment
    region: str = Columns.region
    owner: str = Columns.owner
    parent: str = Columns.parent
    do_not_contact: str = Columns.do_not_contact
    satisfaction: str = Columns.satisfaction
    date: str = Columns.date
    type: str = Columns.type
    detail: str = Columns.detail
    ref: str = Columns.ref

    def renames(self) -> dict[str, str]:
        """Return ``{caller's name: crosssell's name}`` for every field whose names differ.

        Returns
        -------
        dict of str to str

        Examples
        --------
        >>> Schema().renames()
        {}
        """
        out: dict[str, str] = {}
        for f in fields(self):
            ours = getattr(Columns, f.name)
            theirs = getattr(self, f.name)
            if theirs != ours:
                out[theirs] = ours
        return out

    def to_dict(self) -> dict[str, str]:
        """Return the mapping as a plain dict (for saving in a model manifest).

        Returns
        -------
        dict of str to str

        Examples
        --------
        >>> Schema(client="cust").to_dict()["client"]
        'cust'
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


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


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Book:
    """Validated inputs of crosssell, immutable after construction.

    Build it with :meth:`from_frames`, :meth:`read` or :meth:`from_transactions`; never call the
    constructor directly.

    Examples
    --------
    >>> import pandas as pd
    >>> contracts = pd.DataFrame({"client_id": ["C1", "C1", "C2"],
    ...                           "product_id": ["P1", "P2", "P1"],
    ...                           "start_date": ["2024-01-01", "2024-03-01", "2024-02-01"]})
    >>> book = Book.from_frames(contracts=contracts)
    >>> len(book.client_ids), len(book.product_ids)
    (2, 2)
    """

    #: Column names as the caller gave them.
    schema: Schema
    #: Every client id known (clients table, then contracts, then events), caller's values and dtype.
    client_ids: IdMap
    #: Every product id known (catalog, then contracts), caller's values and dtype.
    product_ids: IdMap
    #: Contracts as arrays aligned with the id maps (internal, read-only arrays).
    contract_arrays: ContractArrays
    #: One row per product, in ``product_ids`` order, defaults filled (internal, read-only).
    product_table: pd.DataFrame
    #: One row per client, in ``client_ids`` order, defaults filled (internal, read-only).
    client_table: pd.DataFrame
    #: Events, with integer ``client_idx`` and ``product_idx`` (-1: none) columns (internal).
    event_table: pd.DataFrame
    #: Rows set aside by ``errors="collect"``, with ``table``, ``row`` and ``reason`` columns.
    rejected: pd.DataFrame
    #: The validated contracts in the caller's ids (returned as a copy by :attr:`contracts`).
    _contracts: pd.DataFrame = field(repr=False)
    #: Transactions look-back, when built by :meth:`from_transactions` (None otherwise).
    lookback: pd.Timedelta | None = None

    @property
    def contracts(self) -> pd.DataFrame:
        """The validated contracts (a copy), with crosssell's column names and the caller's ids.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": [1], "product_id": [7], "start_date": ["2024-01-01"]})
        >>> Book.from_frames(contracts=c).contracts.columns.tolist()[:3]
        ['client_id', 'product_id', 'start_date']
        """
        return self._contracts.copy()

    def matrix(
        self,
        as_of: Any = None,
        *,
        weighting: WeightingLike = "binary",
        state: str = "active",
    ) -> ClientProductMatrix:
        """Build the client x product matrix at ``as_of``; see :func:`crosssell.matrix.build_matrix`.

        Examples
        --------
        >>> import pandas as pd
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"], "start_date": ["2024-01-01"]})
        >>> Book.from_frames(contracts=c).matrix("2024-06-30").client_product.nnz
        1
        """
        from crosssell.matrix import build_matrix

        return build_matrix(self, as_of, weighting=weighting, state=state)  # type: ignore[arg-type]
