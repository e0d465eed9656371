"""Additions as index arrays: the ground truth before it is turned into the caller's ids.

:func:`crosssell.evaluation.additions` and the backtest share this computation; the backtest
works on the arrays directly, fold by fold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import _common

__all__ = ["AdditionArrays", "addition_arrays"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdditionArrays:
    """Additions in internal indices: one entry per (client, product) pair added in the window."""

    client: npt.NDArray[np.int64]
    product: npt.NDArray[np.int64]
    is_upsell: npt.NDArray[np.bool_]
    value: npt.NDArray[np.float64]
    first: npt.NDArray[np.int64]

    def subset(self, mask: npt.NDArray[np.bool_]) -> AdditionArrays:
        """Return the additions where ``mask`` is true."""
        return dataclasses.replace(
            self, **{f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self)}
        )


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


def addition_arrays(book: Book, cutoff_ns: int, end_ns: int) -> AdditionArrays:
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

    return AdditionArrays(
        client=add_client,
        product=add_product,
        is_upsell=is_upsell,
        value=value,
        first=arrays.start[new_idx].astype(np.int64),
    )
