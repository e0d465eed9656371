"""Ground truth for evaluation: which products each client newly took up after a cutoff.

A backtest fits a recommender on the book as it stood at a cutoff and compares its offers with
what clients actually added in the following horizon. This module computes that outcome from the
Book's contract arrays, without any Python loop over clients or contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import _common

__all__ = ["additions"]

# Still bound here, where the other evaluation modules have always imported it from.
HorizonLike = _common.HorizonLike

_UPSELL: Final = "upsell"
_CROSS_SELL: Final = "cross_sell"


@dataclass(frozen=True, slots=True, kw_only=True)
class _AdditionArrays:
    """Additions in internal indices: one entry per (client, product) pair added in the window."""

    client: npt.NDArray[np.int64]
    product: npt.NDArray[np.int64]
    is_upsell: npt.NDArray[np.bool_]
    value: npt.NDArray[np.float64]
    first: npt.NDArray[np.int64]


def _family_tier(book: Book) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Family code and tier of every product, aligned with ``book.product_ids``."""
    table = book.product_table
    n_products = len(book.product_ids)
    if Columns.family in table.columns:
        family, _ = pd.factorize(table[Columns.family].astype(str))
        family = np.asarray(family, dtype=np.int64)
    else:
        # without a catalog each product is its own family
        family = np.arange(n_products, dtype=np.int64)
    if Columns.tier in table.columns:
        tier = np.asarray(pd.to_numeric(table[Columns.tier]).fillna(0), dtype=np.int64)
    else:
        tier = np.zeros(n_products, dtype=np.int64)
    return family, tier


def _addition_arrays(book: Book, cutoff_ns: int, end_ns: int) -> _AdditionArrays:
    """Compute additions in ``(cutoff, end]`` as index arrays, sorted by client then product."""
    arrays = book.contract_arrays
    n_products = np.int64(max(len(book.product_ids), 1))
    client = arrays.client.astype(np.int64)
    product = arrays.product.astype(np.int64)
    key = client * n_products + product

    active = _common.active_mask(book, cutoff_ns)
    held_key = np.unique(key[active])

    in_window = (arrays.start > cutoff_ns) & (arrays.start <= end_ns)
    new_idx = np.flatnonzero(in_window)
    # a contract of a pair already held at the cutoff is a renewal or an overlap, not an addition
    pos = np.searchsorted(held_key, key[new_idx])
    pos = np.minimum(pos, max(held_key.shape[0] - 1, 0))
    is_renewal = (
        held_key[pos] == key[new_idx] if held_key.shape[0] else np.zeros(new_idx.shape[0], bool)
    )
    new_idx = new_idx[~is_renewal]

    # the earliest new contract of each pair dates the addition and carries its value
    order = np.lexsort((arrays.start[new_idx], key[new_idx]))
    new_idx = new_idx[order]
    first_of_pair = np.ones(new_idx.shape[0], dtype=bool)
    first_of_pair[1:] = key[new_idx][1:] != key[new_idx][:-1]
    new_idx = new_idx[first_of_pair]

    add_client = client[new_idx]
    add_product = product[new_idx]
    value = arrays.value[new_idx].astype(np.float64, copy=True)
    if Columns.price in book.product_table.columns:
        price = np.asarray(pd.to_numeric(book.product_table[Columns.price]), dtype=np.float64)
        missing = np.isnan(value)
        value[missing] = price[add_product[missing]]

    family, tier = _family_tier(book)
    n_families = np.int64(max(int(family.max(initial=-1)) + 1, 1))
    # lowest tier held per (client, family) at the cutoff
    held_client = client[active]
    held_product = product[active]
    fam_key = held_client * n_families + family[held_product]
    fam_order = np.lexsort((tier[held_product], fam_key))
    fam_key_sorted = fam_key[fam_order]
    starts = np.ones(fam_key_sorted.shape[0], dtype=bool)
    starts[1:] = fam_key_sorted[1:] != fam_key_sorted[:-1]
    fam_keys = fam_key_sorted[starts]
    fam_min_tier = tier[held_product][fam_order][starts]

    add_fam_key = add_client * n_families + family[add_product]
    is_upsell = np.zeros(add_client.shape[0], dtype=bool)
    if fam_keys.shape[0]:
        fpos = np.minimum(np.searchsorted(fam_keys, add_fam_key), fam_keys.shape[0] - 1)
        found = fam_keys[fpos] == add_fam_key
        is_upsell = found & (fam_min_tier[fpos] < tier[add_product])

    return _AdditionArrays(
        client=add_client,
        product=add_product,
        is_upsell=is_upsell,
        value=value,
        first=arrays.start[new_idx].astype(np.int64),
    )


def _additions_frame(book: Book, adds: _AdditionArrays) -> pd.DataFrame:
    """Turn addition arrays into the public frame, with the caller's ids."""
    return pd.DataFrame(
        {
            Columns.client: book.client_ids.to_external(adds.client),
            Columns.product: book.product_ids.to_external(adds.product),
            Columns.offer_type: np.where(adds.is_upsell, _UPSELL, _CROSS_SELL),
            Columns.value: adds.value,
            Columns.date: pd.to_datetime(adds.first, unit="ns"),
        }
    )


def additions(
    book: Book, cutoff: Any, horizon: HorizonLike = "180D", *, new_clients: bool = False
) -> pd.DataFrame:
    """List the products each client newly took up in ``(cutoff, cutoff + horizon]``.

    A pair counts when a contract for it starts inside the window and the client did not hold
    the product actively at the cutoff: renewals and overlapping contracts of a product held at
    the cutoff are not additions, while a product that lapsed before the cutoff and was taken up
    again is. Each pair appears once, dated by its earliest new contract.

    By default only clients who existed at the cutoff (a contract started on or before it)
    count: a recommender fitted then cannot make offers to the others, so passing their first
    purchases to :func:`~crosssell.evaluation.evaluate` would score them as misses.

    Parameters
    ----------
    book : Book
        The whole book, including what happened after the cutoff.
    cutoff : date-like
        The point in time the recommender was fitted at (``as_of``).
    horizon : str, timedelta or int, default "180D"
        Length of the observation window; an int is a number of days.
    new_clients : bool, default False
        Also list the first purchases of clients with no contract on or before the cutoff.

    Returns
    -------
    pandas.DataFrame
        One row per added (client, product) pair, sorted by client index then product index,
        with columns ``client_id`` and ``product_id`` (the caller's ids), ``offer_type``
        (``"upsell"`` when, at the cutoff, the client held a lower tier of the product's family,
        else ``"cross_sell"``), ``value`` (annual value of the new contract; the catalog price
        where the contract has none; NaN when neither is known) and ``date`` (start of the
        earliest new contract).

    Raises
    ------
    ValueError
        If ``cutoff`` is not a date, ``horizon`` is not a positive duration or ``new_clients``
        is not a bool.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from crosssell.evaluation import additions
    >>> from crosssell.datasets import tiny
    >>> book = tiny()
    >>> additions(book, "2024-06-30", "180D")[["client_id", "product_id", "offer_type"]]
      client_id product_id  offer_type
    0        C1      CRM-2      upsell
    1        C2      CRM-1  cross_sell
    """
    owner = "additions"
    cut = _common.to_timestamp(cutoff, name="cutoff", owner=owner)
    span = _common.to_horizon(horizon, owner=owner)
    if not isinstance(new_clients, bool | np.bool_):
        raise ValueError(
            f"The 'new_clients' parameter of {owner} must be a bool. Got {new_clients!r} instead."
        )
    adds = _addition_arrays(book, int(cut.value), int((cut + span).value))
    if not new_clients:
        arrays = book.contract_arrays
        existing = np.zeros(len(book.client_ids), dtype=bool)
        existing[arrays.client[arrays.start <= cut.value]] = True
        keep = existing[adds.client]
        adds = _AdditionArrays(
            client=adds.client[keep],
            product=adds.product[keep],
            is_upsell=adds.is_upsell[keep],
            value=adds.value[keep],
            first=adds.first[keep],
        )
    return _additions_frame(book, adds)
