"""Ground truth for evaluation: which products each client newly took up after a cutoff.

A backtest fits a recommender on the book as it stood at a cutoff and compares its offers with
what clients actually added in the following horizon. This module computes that outcome from the
Book's contract arrays, without any Python loop over clients or contracts.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from crosssell._params import validate_params
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.evaluation import _common
from crosssell.evaluation._additions import AdditionArrays, addition_arrays

__all__ = ["additions"]

# Still bound here, where the other evaluation modules have always imported it from.
HorizonLike = _common.HorizonLike

_UPSELL: Final = "upsell"
_CROSS_SELL: Final = "cross_sell"


def _additions_frame(book: Book, adds: AdditionArrays) -> pd.DataFrame:
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
    book: Book, cutoff: Any, horizon: HorizonLike = "180D", *, include_absent: bool = False
) -> pd.DataFrame:
    """List the products each client newly took up in ``(cutoff, cutoff + horizon]``.

    A pair counts when a contract for it starts inside the window and the client did not hold
    the product actively at the cutoff: renewals and overlapping contracts of a product held at
    the cutoff are not additions, while a product that lapsed before the cutoff and was taken up
    again is. Each pair appears once, dated by its earliest new contract.

    By default only clients who held something at the cutoff are listed: they are the ones a
    recommender fitted then makes offers to, and :func:`~crosssell.evaluation.backtest` scores
    them alone. A client who arrived (or came back) after the cutoff would otherwise count as a
    miss of every model.

    Parameters
    ----------
    book : Book
        The whole book, including what happened after the cutoff.
    cutoff : date-like
        The point in time the recommender was fitted at (``as_of``).
    horizon : str, timedelta or int, default "180D"
        Length of the observation window; an int is a number of days.
    include_absent : bool, default False
        Also list the additions of clients who held nothing at the cutoff (new or lapsed
        clients), e.g. to study acquisition rather than to score a recommender.

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
        If ``cutoff`` is not a date, ``horizon`` is not a positive duration or ``include_absent``
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
    validate_params(owner, {"include_absent": include_absent}, {"include_absent": ["boolean"]})
    adds = addition_arrays(book, int(cut.value), int((cut + span).value))
    if not include_absent:
        present = np.isin(adds.client, _common.active_clients(book, int(cut.value)))
        adds = adds.subset(present)
    return _additions_frame(book, adds)
