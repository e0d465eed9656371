"""Readable reasons and evidence for offers, built for whole arrays of offers at once."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crosssell.book import Book
from crosssell.candidates import Candidates
from crosssell.columns import Columns
from crosssell.ids import IdMap

__all__ = ["evidence_tuples", "reason_sentences"]


_TEMPLATES = {
    "rules": ("Clients who hold ", " often also hold "),
    "neighbours": ("Clients holding ", " also tend to hold "),
    "factors": ("Clients with a portfolio like this one (", ") hold "),
}


def _join_names(names: npt.NDArray[np.object_], ev_idx: npt.NDArray[np.int64]) -> list[str]:
    """Join evidence product names per row: 'A', 'A and B', 'A, B and C' (-1 = none)."""
    found = [[names[j] for j in row if j >= 0] for row in ev_idx.tolist()]
    return [
        parts[0]
        if len(parts) == 1
        else ", ".join(parts[:-1]) + " and " + parts[-1]
        if parts
        else ""
        for parts in found
    ]


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
    offered = names[products].tolist()
    family = np.asarray(candidates.families.astype(str))[candidates.family[products]].tolist()
    evidence = _join_names(names, ev_idx)
    has_ev: list[bool] = np.asarray((ev_idx >= 0).any(axis=1)).tolist()
    lead, tail = _TEMPLATES.get(kind, _TEMPLATES["rules"])
    segments = book.client_table[Columns.segment]
    seg_known = segments.notna().to_numpy()[clients] & (cold_by == "segment")
    seg = segments.astype(object).to_numpy()[clients]
    popular_in = [
        f"among {s} clients" if known else "among all clients"
        for s, known in zip(seg.tolist(), seg_known.tolist(), strict=True)
    ]
    # Plain string formatting: per offer it is cheaper than pandas' object-column arithmetic, and
    # one client's few offers (the real-time path) pay no per-call overhead.
    out = np.empty(len(offered), dtype=object)
    out[:] = [
        ("Upgrade within " + fam + ": " if up else "")
        + (
            f"{name} is popular {pop}; this client has no active contract to learn from yet."
            if is_cold
            else f"{lead}{ev}{tail}{name}."
            if any_ev
            else f"{name} is one of the products most held {pop}."
            if kind == "popularity"
            else f"{name} is widely held by clients with a similar portfolio."
        )
        for name, fam, up, is_cold, any_ev, ev, pop in zip(
            offered,
            family,
            upsell.tolist(),
            cold.tolist(),
            has_ev,
            evidence,
            popular_in,
            strict=True,
        )
    ]
    return out


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
