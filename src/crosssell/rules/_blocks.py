"""What a rule returns: blocked clients, products or pairs, each with a reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.rules._common import IntArray, TextArray

Scope = Literal["any", "cross_sell", "upsell"]
"""Which offer types a block applies to."""

SCOPES: Final = ("any", "cross_sell", "upsell")
_SCOPE_CODE = {name: i for i, name in enumerate(SCOPES)}
# Up to this many rows, Blocks checks scopes with a dict rather than pandas
_SMALL = 64


def _filled(text: str | Any, n: int, what: str) -> TextArray:
    """Broadcast one string, or check an array, to ``n`` object entries."""
    if isinstance(text, str):
        out = np.empty(n, dtype=object)
        out[:] = text
        return out
    arr = np.asarray(text, dtype=object).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(
            f"Blocks: '{what}' has {arr.shape[0]} entries, expected {n} (one per row)."
        )
    return arr


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Blocks:
    """What one rule blocks: clients, products or (client, product) pairs, each with a reason.

    Attributes
    ----------
    client : ndarray of int64
        Client index (rows of the Book); ``-1`` means every client.
    product : ndarray of int64
        Product index (columns of the Book); ``-1`` means every product of that client.
    detail : ndarray of object
        One readable sentence per row, e.g. ``"complaint #R17 open since 2025-05-02 (59 days)"``.
    scope : ndarray of object
        ``"any"``, ``"cross_sell"`` or ``"upsell"``: the offer types the row blocks.

    Raises
    ------
    ValueError
        If the arrays differ in length or a scope is not one of the three.

    Examples
    --------
    >>> b = Blocks.clients([0, 2], "the client is marked do-not-contact")
    >>> len(b), b.product.tolist(), b.scope.tolist()
    (2, [-1, -1], ['any', 'any'])
    >>> len(Blocks.concat([b, Blocks.pairs([1], [3], "already held")]))
    3
    """

    client: IntArray
    product: IntArray
    detail: TextArray
    scope: TextArray
    _scope_code: npt.NDArray[np.int8] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        client = np.asarray(self.client, dtype=np.int64).reshape(-1)
        product = np.asarray(self.product, dtype=np.int64).reshape(-1)
        n = client.shape[0]
        if product.shape[0] != n:
            raise ValueError(
                f"Blocks: 'product' has {product.shape[0]} entries but 'client' has {n}; "
                "give one product index (or -1) per row."
            )
        detail = _filled(self.detail, n, "detail")
        scope = _filled(self.scope, n, "scope")
        if n <= _SMALL:
            # few rows (one client in real time, or an empty rule): a dict beats factorize
            code = np.array([_SCOPE_CODE.get(v, -1) for v in scope.tolist()], dtype=np.int64)
        else:
            codes, uniques = pd.factorize(scope)
            code = pd.Index(SCOPES).get_indexer(pd.Index(uniques, dtype=object))[codes]
        if (code < 0).any():
            bad = code < 0
            shown = pd.unique(scope[bad])[:5].tolist()
            raise ValueError(
                f"Blocks: 'scope' must be one of {list(SCOPES)}; got {shown} in "
                f"{int(bad.sum())} rows."
            )
        object.__setattr__(self, "_scope_code", code.astype(np.int8))
        object.__setattr__(self, "client", client)
        object.__setattr__(self, "product", product)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "scope", scope)

    def __len__(self) -> int:
        return int(self.client.shape[0])

    @property
    def scope_code(self) -> npt.NDArray[np.int8]:
        """Each row's scope as its position in ``SCOPES`` (0 any, 1 cross_sell, 2 upsell).

        Coded once when the blocks are made, so merging many rules' blocks compares small
        integers rather than strings.

        Examples
        --------
        >>> b = Blocks.concat([Blocks.clients([0], "do not contact"),
        ...                    Blocks.clients([1], "renewal due", scope="cross_sell")])
        >>> b.scope_code.tolist()
        [0, 1]
        """
        return self._scope_code

    @classmethod
    def empty(cls) -> Blocks:
        """Block nothing.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> len(Blocks.empty())
        0
        """
        none = np.empty(0, dtype=np.int64)
        return cls(client=none, product=none, detail=np.empty(0, object), scope=np.empty(0, object))

    @classmethod
    def clients(cls, idx: Any, detail: str | Any, *, scope: Scope | Any = "any") -> Blocks:
        """Block every product for some clients.

        Parameters
        ----------
        idx : array-like of int
            Client indices.
        detail : str or array-like of str
            One sentence for all rows, or one per row.
        scope : {"any", "cross_sell", "upsell"} or array-like, default "any"
            Offer types blocked.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> Blocks.clients([4], "renewal first", scope="cross_sell").scope.tolist()
        ['cross_sell']
        """
        client = np.asarray(idx, dtype=np.int64).reshape(-1)
        n = client.shape[0]
        return cls(
            client=client,
            product=np.full(n, -1, dtype=np.int64),
            detail=_filled(detail, n, "detail"),
            scope=_filled(scope, n, "scope"),
        )

    @classmethod
    def products(cls, idx: Any, detail: str | Any, *, scope: Scope | Any = "any") -> Blocks:
        """Block some products for every client.

        Parameters
        ----------
        idx : array-like of int
            Product indices.
        detail : str or array-like of str
            One sentence for all rows, or one per row.
        scope : {"any", "cross_sell", "upsell"} or array-like, default "any"
            Offer types blocked.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> Blocks.products([1, 2], "not sellable").client.tolist()
        [-1, -1]
        """
        product = np.asarray(idx, dtype=np.int64).reshape(-1)
        n = product.shape[0]
        return cls(
            client=np.full(n, -1, dtype=np.int64),
            product=product,
            detail=_filled(detail, n, "detail"),
            scope=_filled(scope, n, "scope"),
        )

    @classmethod
    def pairs(
        cls, client: Any, product: Any, detail: str | Any, *, scope: Scope | Any = "any"
    ) -> Blocks:
        """Block (client, product) pairs.

        Parameters
        ----------
        client, product : array-like of int
            Aligned client and product indices.
        detail : str or array-like of str
            One sentence for all rows, or one per row.
        scope : {"any", "cross_sell", "upsell"} or array-like, default "any"
            Offer types blocked.

        Returns
        -------
        Blocks

        Examples
        --------
        >>> Blocks.pairs([0, 1], [2, 2], "declined").product.tolist()
        [2, 2]
        """
        c = np.asarray(client, dtype=np.int64).reshape(-1)
        n = c.shape[0]
        return cls(
            client=c,
            product=np.asarray(product, dtype=np.int64).reshape(-1),
            detail=_filled(detail, n, "detail"),
            scope=_filled(scope, n, "scope"),
        )

    @classmethod
    def concat(cls, parts: Iterable[Blocks]) -> Blocks:
        """Stack several Blocks into one.

        Parameters
        ----------
        parts : iterable of Blocks

        Returns
        -------
        Blocks

        Examples
        --------
        >>> len(Blocks.concat([Blocks.clients([0], "a"), Blocks.products([1], "b")]))
        2
        """
        items = [p for p in parts if len(p)]
        if not items:
            return cls.empty()
        if len(items) == 1:
            return items[0]
        return cls(
            client=np.concatenate([p.client for p in items]),
            product=np.concatenate([p.product for p in items]),
            detail=np.concatenate([p.detail for p in items]),
            scope=np.concatenate([p.scope for p in items]),
        )
