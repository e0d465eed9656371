"""Readable reasons and evidence for offers, built for whole arrays of offers at once."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.book import Book
from crosssell.candidates import Candidates
from crosssell.columns import Columns
from crosssell.ids import IdMap

__all__ = ["evidence_tuples", "reason_sentences"]


def _join_names(names: npt.NDArray[np.object_], ev_idx: npt.NDArray[np.int64]) -> pd.Series:
    """Join evidence product names per row: 'A', 'A and B', 'A, B and C' (-1 = none)."""
    m, n = ev_idx.shape
    cols = [
        pd.Series(np.where(ev_idx[:, j] >= 0, names[np.maximum(ev_idx[:, j], 0)], ""), dtype=object)
        for j in range(n)
    ]
    count = (ev_idx >= 0).sum(axis=1)
    out = pd.Series(np.full(m, "", dtype=object), dtype=object)
    if n == 0:
        return out
    out = cols[0].copy()
    for j in range(1, n):
        last = count == j + 1
        sep = pd.Series(np.where(last, " and ", np.where(count > j + 1, ", ", "")), dtype=object)
        out = out + sep + cols[j]
    return out


def reason_sentences(
    *,
    book: Book,
    candidates: Candidates,
    kind: str,
    clients: npt.NDArray[np.int64],
    products: npt.NDArray[np.int64],
    upsell: npt.NDArray[np.bool_],
    cold: npt.NDArray[np.bool_],
    ev_idx: npt.NDArray[np.int64],
    cold_by: str,
) -> npt.NDArray[np.object_]:
    """One sentence per offer that an account manager can say aloud.

    Parameters
    ----------
    book : Book
        The fitted book (product names, client segments).
    candidates : Candidates
        Family names of products.
    kind : str
        The scorer's ``explain_kind``: ``"neighbours"``, ``"rules"``, ``"factors"`` or
        ``"popularity"``.
    clients, products : ndarray of int
        Offer rows and columns.
    upsell, cold : ndarray of bool
        Offer type and cold-start flag per offer.
    ev_idx : ndarray of int, shape (m, n)
        Evidence products per offer (-1 = none).
    cold_by : str
        ``"segment"`` or ``"global"``: the cold-start fallback.

    Returns
    -------
    ndarray of object (str)

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from crosssell import Book
    >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
    ...                   "start_date": ["2024-01-01"] * 2})
    >>> book = Book.from_frames(contracts=c)
    >>> cand = Candidates.build(book, "2024-06-30")
    >>> reason_sentences(book=book, candidates=cand, kind="rules", clients=np.array([0]),
    ...     products=np.array([1]), upsell=np.array([False]), cold=np.array([False]),
    ...     ev_idx=np.array([[0, -1]]), cold_by="segment")[0]
    'Clients who hold P1 often also hold P2.'
    """
    names = book.product_table[Columns.name].astype(str).to_numpy(dtype=object)
    offered = pd.Series(names[products], dtype=object)
    family = pd.Series(
        np.asarray(candidates.families.astype(str))[candidates.family[products]], dtype=object
    )
    evidence = _join_names(names, ev_idx)
    has_ev = pd.Series((ev_idx >= 0).any(axis=1))

    lead = {
        "rules": "Clients who hold ",
        "neighbours": "Clients holding ",
        "factors": "Clients with a portfolio like this one (",
    }.get(kind, "Clients who hold ")
    tail = {
        "rules": " often also hold ",
        "neighbours": " also tend to hold ",
        "factors": ") hold ",
    }.get(kind, " often also hold ")
    with_ev = lead + evidence + tail + offered + "."
    without_ev = offered + " is widely held by clients with a similar portfolio."

    segments = np.array(book.client_table[Columns.segment].astype(object), dtype=object)
    segments[pd.isna(segments)] = None
    seg = pd.Series(segments[clients], dtype=object)
    seg_known = seg.notna() & (cold_by == "segment")
    popular_in = pd.Series(
        np.where(
            seg_known, "among " + seg.fillna("").astype(str) + " clients", "among all clients"
        ),
        dtype=object,
    )
    popular = offered + " is one of the products most held " + popular_in + "."
    cold_text = (
        offered
        + " is popular "
        + popular_in
        + "; this client has no active contract to learn from yet."
    )

    text = with_ev.where(has_ev, popular if kind == "popularity" else without_ev)
    text = text.where(~pd.Series(cold), cold_text)
    prefix = pd.Series(np.where(upsell, "Upgrade within " + family + ": ", ""), dtype=object)
    return (prefix + text).to_numpy(dtype=object)


def evidence_tuples(
    products: IdMap, ev_idx: npt.NDArray[np.int64], ev_w: npt.NDArray[np.float32]
) -> npt.NDArray[np.object_]:
    """Per offer, a tuple of ``(product_id, weight)`` for the held products that contributed most.

    Parameters
    ----------
    products : IdMap
        Product ids.
    ev_idx : ndarray of int, shape (m, n)
        Evidence product indices (-1 = none).
    ev_w : ndarray of float, shape (m, n)
        Their weights.

    Returns
    -------
    ndarray of object (tuples)

    Examples
    --------
    >>> import numpy as np
    >>> ids = IdMap(["P1", "P2"])
    >>> evidence_tuples(ids, np.array([[1, -1]]), np.array([[0.5, 0.0]], np.float32))[0]
    (('P2', 0.5),)
    """
    m, n = ev_idx.shape
    out = np.empty(m, dtype=object)
    if m == 0:
        return out
    valid = ev_idx >= 0
    ext = np.asarray(products.to_external(np.maximum(ev_idx, 0).ravel()), dtype=object).reshape(
        m, n
    )
    weights = np.round(ev_w.astype(np.float64), 4)
    counts = valid.sum(axis=1)
    # Evidence is sorted by weight with -1 padding last, so the first `count` entries are real.
    flat = list(zip(ext[valid].tolist(), weights[valid].tolist(), strict=True))
    ends = np.cumsum(counts)
    starts = ends - counts
    out[:] = [tuple(flat[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return out
