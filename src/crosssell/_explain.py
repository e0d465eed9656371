"""Readable reasons and evidence for offers, built for whole arrays of offers at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

from crosssell._kernels import reasons_into
from crosssell.book import Book
from crosssell.candidates import Candidates
from crosssell.columns import Columns

__all__ = ["Texts", "evidence_arrow", "evidence_type", "reason_sentences"]

# From this many offers on, sentences are assembled column-wise by Arrow's string kernels; below
# it (one client in real time) plain Python is cheaper than converting to Arrow and back. Both
# paths build the same strings.
_BULK = 256


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


_COLD_TAIL = "; this client has no active contract to learn from yet."

# The fixed words of every sentence, in the order of crosssell._kernels' constants, then each
# template's lead and tail.
_FIXED = (
    "Upgrade within ",
    ": ",
    " is popular ",
    _COLD_TAIL,
    " is one of the products most held ",
    ".",
    " is widely held by clients with a similar portfolio.",
    ", ",
    " and ",
)
_KINDS = tuple(_TEMPLATES)


@dataclass(frozen=True, slots=True, eq=False)
class Texts:
    """The words reasons are made of, read once per model.

    One client in real time indexes the Python objects instead of converting table columns per
    call; many offers are written by a compiled loop from one table of UTF-8 words: product
    names, then family names, then "among <segment> clients" per segment and "among all
    clients", then the fixed words (:data:`_FIXED`) and each template's lead and tail.
    """

    names: npt.NDArray[np.object_]
    families: npt.NDArray[np.object_]
    segments: npt.NDArray[np.object_]
    segment_codes: npt.NDArray[np.int64]
    n_segments: int
    word_data: npt.NDArray[np.uint8]
    word_offsets: npt.NDArray[np.int64]

    @classmethod
    def of(cls, book: Book, candidates: Candidates) -> Texts:
        """Read product names, family names and client segments (None where missing)."""
        seg = book.client_table[Columns.segment]
        segments = np.array(seg.astype(object).to_numpy(), dtype=object)
        segments[seg.isna().to_numpy(dtype=bool)] = None
        names = book.product_table[Columns.name].astype(str).to_numpy(dtype=object)
        families = np.asarray(candidates.families.astype(str), dtype=object)
        codes, uniques = pd.factorize(segments, use_na_sentinel=True)
        among = [f"among {s} clients" for s in uniques.tolist()] + ["among all clients"]
        templates = [part for kind in _KINDS for part in _TEMPLATES[kind]]
        encoded = [
            str(w).encode("utf-8")
            for w in [*names.tolist(), *families.tolist(), *among, *_FIXED, *templates]
        ]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in encoded], out=offsets[1:])
        return cls(
            names=names,
            families=families,
            segments=segments,
            segment_codes=codes.astype(np.int64),
            n_segments=len(uniques),
            word_data=np.frombuffer(b"".join(encoded), dtype=np.uint8),
            word_offsets=offsets,
        )

    def _sentences(
        self,
        *,
        family: npt.NDArray[np.int64],
        kind: str,
        clients: npt.NDArray[np.int64],
        products: npt.NDArray[np.int64],
        upsell: npt.NDArray[np.bool_],
        cold: npt.NDArray[np.bool_],
        ev_idx: npt.NDArray[np.int64],
        cold_by: str,
    ) -> pa.Array:
        """Write the sentences of :func:`reason_sentences` for many offers, as Arrow strings."""
        n_names, n_fam = self.names.shape[0], self.families.shape[0]
        first_among = n_names + n_fam
        base = first_among + self.n_segments + 1
        template = _KINDS.index(kind) if kind in _TEMPLATES else _KINDS.index("rules")
        lead = base + len(_FIXED) + 2 * template
        seg = self.segment_codes[clients]
        known = (seg >= 0) & (cold_by == "segment")
        among = first_among + np.where(known, seg, self.n_segments)
        m = products.shape[0]
        offsets = np.zeros(m + 1, dtype=np.int64)
        data = reasons_into(
            np.ascontiguousarray(products, dtype=np.int64),
            (n_names + family).astype(np.int64),
            np.ascontiguousarray(upsell, dtype=np.bool_),
            np.ascontiguousarray(cold, dtype=np.bool_),
            np.ascontiguousarray(ev_idx, dtype=np.int64),
            among.astype(np.int64),
            lead,
            lead + 1,
            kind == "popularity",
            base,
            self.word_data,
            self.word_offsets,
            offsets,
        )
        if offsets[-1] < 2**31:
            return pa.StringArray.from_buffers(
                m, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
            )
        return pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(data))


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
    arrow: bool = False,
    texts: Texts | None = None,
) -> Any:
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
    arrow : bool, default False
        Return many sentences as an Arrow string array, built without a Python string each.
    texts : Texts, optional
        The book's words read beforehand (:meth:`Texts.of`), so that a model reads them once;
        read from ``book`` when omitted.

    Returns
    -------
    ndarray of object (str), or pyarrow.Array when ``arrow`` and there are many offers

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
    texts = texts if texts is not None else Texts.of(book, candidates)
    if products.shape[0] >= _BULK:
        text = texts._sentences(
            family=candidates.family[products],
            kind=kind,
            clients=clients,
            products=products,
            upsell=upsell,
            cold=cold,
            ev_idx=ev_idx,
            cold_by=cold_by,
        )
        return text if arrow else np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    names = texts.names
    offered = names[products].tolist()
    family = texts.families[candidates.family[products]].tolist()
    seg = texts.segments[clients]
    seg_na = np.array([v is None for v in seg.tolist()], dtype=bool)
    evidence = _join_names(names, ev_idx)
    has_ev: list[bool] = np.asarray((ev_idx >= 0).any(axis=1)).tolist()
    lead, tail = _TEMPLATES.get(kind, _TEMPLATES["rules"])
    seg_known = ~seg_na & (cold_by == "segment")
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
            f"{name} is popular {pop}{_COLD_TAIL}"
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


def _compact(
    ev_idx: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """Move the -1 pads of evidence to the end of each row, keeping the order of the rest.

    Returns the moved evidence, the counts per row, and the column order that moved it (None
    when nothing moved), to apply to arrays aligned with the evidence.
    """
    valid = ev_idx >= 0
    counts = valid.sum(axis=1)
    if ev_idx.shape[1] and not (valid[:, :-1] < valid[:, 1:]).any():
        return ev_idx, counts, None
    order = np.argsort(~valid, axis=1, kind="stable")
    return np.take_along_axis(ev_idx, order, axis=1), counts, order


def evidence_type(product_ids: pa.Array) -> pa.DataType:
    """Arrow type of the evidence column: a list of ``{product_id, weight}`` per offer.

    Parameters
    ----------
    product_ids : pyarrow.Array
        The catalogue's product ids, as Arrow stores them.

    Returns
    -------
    pyarrow.DataType

    Examples
    --------
    >>> import pyarrow as pa
    >>> str(evidence_type(pa.array(["P1"])))
    'list<item: struct<product_id: string, weight: double>>'
    """
    return pa.list_(pa.struct([(Columns.product, product_ids.type), ("weight", pa.float64())]))


def evidence_arrow(
    product_ids: pa.Array, ev_idx: npt.NDArray[np.int64], ev_w: npt.NDArray[np.float32]
) -> pa.Array:
    """Evidence of many offers as one Arrow list column, without a Python object per offer.

    Each entry lists the held products that contributed most, strongest first, as
    ``{"product_id": ..., "weight": ...}`` (weights rounded to 4 decimals), the same pairs
    :func:`evidence_tuples` gives.

    Parameters
    ----------
    product_ids : pyarrow.Array
        The catalogue's product ids.
    ev_idx : ndarray of int, shape (m, n)
        Evidence product indices (-1 = none).
    ev_w : ndarray of float, shape (m, n)
        Their weights.

    Returns
    -------
    pyarrow.ListArray
        Of type :func:`evidence_type`.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> out = evidence_arrow(pa.array(["P1", "P2"]), np.array([[1, -1]]),
    ...                      np.array([[0.5, 0.0]], np.float32))
    >>> out.to_pylist()
    [[{'product_id': 'P2', 'weight': 0.5}]]
    """
    ev, counts, order = _compact(ev_idx)
    valid = ev >= 0
    weights = ev_w if order is None else np.take_along_axis(ev_w, order, axis=1)
    offsets = np.zeros(ev.shape[0] + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    items = pa.StructArray.from_arrays(
        [
            product_ids.take(pa.array(ev[valid])),
            pa.array(np.round(weights[valid].astype(np.float64), 4)),
        ],
        fields=list(evidence_type(product_ids).value_type),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), items)
