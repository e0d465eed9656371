"""The one total order of offers: what breaks a tie between equal priorities.

Offers of a client come by higher priority; equal priorities by higher propensity, then higher
raw score, then higher popularity at ``as_of`` (clients holding the product), then product id.
The last two keys are fixed per fitted model, so they fold into one integer per product, its
:func:`tie_rank`, and the selection compares ``(priority, propensity, score, -tie_rank)``. The
row order of the input tables (which sets the internal product index) thus never decides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["tie_rank"]


def tie_rank(popularity: npt.ArrayLike, product_ids: pd.Index) -> npt.NDArray[np.int64]:
    """Per product, its position when sorted by popularity (most held first), then by id.

    Parameters
    ----------
    popularity : array-like of int, shape (n_products,)
        Clients holding each product at ``as_of``, in product index order.
    product_ids : pandas.Index
        External product ids, in product index order. Ids of mixed types that do not compare
        are ordered by their text.

    Returns
    -------
    ndarray of int64, shape (n_products,)
        0 for the product that wins every tie, ``n_products - 1`` for the one that loses all.

    Examples
    --------
    >>> import pandas as pd
    >>> tie_rank([1, 2, 2], pd.Index(["C", "B", "A"])).tolist()
    [2, 1, 0]
    """
    pop = np.asarray(popularity, dtype=np.int64)
    try:
        id_order = np.asarray(product_ids.argsort(), dtype=np.int64)
    except TypeError:
        id_order = np.asarray(product_ids.astype(str).argsort(), dtype=np.int64)
    id_rank = np.empty(pop.shape[0], dtype=np.int64)
    id_rank[id_order] = np.arange(pop.shape[0], dtype=np.int64)
    order = np.lexsort((id_rank, -pop))
    rank = np.empty(pop.shape[0], dtype=np.int64)
    rank[order] = np.arange(pop.shape[0], dtype=np.int64)
    return rank
