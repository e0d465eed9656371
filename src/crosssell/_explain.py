"""Readable reasons and evidence for offers, built for whole arrays of offers at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from crosssell._kernels import reason_words_into
from crosssell._words import WordTable
from crosssell.book import Book
from crosssell.candidates import Candidates
from crosssell.columns import Columns

__all__ = [
    "NO_CANDIDATE_LEFT",
    "PairFacts",
    "Texts",
    "client_block_reasons",
    "evidence_arrow",
    "evidence_type",
    "no_offer_frame",
    "not_worth_reason",
    "reason_sentences",
    "why_not_sentence",
]

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
    words: WordTable

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
        return cls(
            names=names,
            families=families,
            segments=segments,
            segment_codes=codes.astype(np.int64),
            n_segments=len(uniques),
            words=WordTable.of(
                [str(w) for w in [*names.tolist(), *families.tolist(), *among, *_FIXED, *templates]]
            ),
        )

    def sentences(
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
        words = np.full((products.shape[0], 2 * ev_idx.shape[1] + 8), -1, dtype=np.int64)
        reason_words_into(
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
            words,
        )
        # large_string: what pandas' text columns hold, so that they take it without a copy
        return self.words.join(words, large=True)


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
    scores: npt.NDArray[np.floating[Any]] | None = None,
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
    scores : ndarray of float, optional
        The scorer's score per offer. An offer scored 0 or less that is not cold-start has no
        evidence behind it, and its sentence says so instead of claiming any.

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
    text = _sentences(
        texts, candidates, kind=kind, clients=clients, products=products, upsell=upsell,
        cold=cold, ev_idx=ev_idx, cold_by=cold_by, arrow=arrow,
    )  # fmt: skip
    if scores is None:
        return text
    empty = np.flatnonzero(~cold & (np.asarray(scores) <= 0))
    if empty.size == 0:
        return text
    names = texts.names[products[empty]].tolist()
    families = texts.families[candidates.family[products[empty]]].tolist()
    fill = [
        ("Upgrade within " + fam + ": " if up else "") + name + _NO_EVIDENCE
        for name, fam, up in zip(names, families, upsell[empty].tolist(), strict=True)
    ]
    if isinstance(text, np.ndarray):
        text[empty] = fill
        return text
    mask = np.zeros(products.shape[0], dtype=bool)
    mask[empty] = True
    full = np.full(products.shape[0], None, dtype=object)
    full[empty] = fill
    return pc.if_else(pa.array(mask), pa.array(full, type=text.type), text)


#: The sentence of an offer nothing in the client's data points to (score 0): it only fills the
#: list, and must not be told as evidence.
_NO_EVIDENCE = " completes the list: nothing in this client's portfolio points to it."


def _sentences(
    texts: Texts,
    candidates: Candidates,
    *,
    kind: str,
    clients: npt.NDArray[np.int64],
    products: npt.NDArray[np.int64],
    upsell: npt.NDArray[np.bool_],
    cold: npt.NDArray[np.bool_],
    ev_idx: npt.NDArray[np.int64],
    cold_by: str,
    arrow: bool,
) -> Any:
    if products.shape[0] >= _BULK:
        text = texts.sentences(
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
    product_ids: pa.Array,
    ev_idx: npt.NDArray[np.int64],
    ev_w: npt.NDArray[np.float32],
    *,
    words: WordTable | None = None,
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
    words : WordTable, optional
        The same product ids as a table of words: when ``product_ids`` are Arrow strings,
        the evidence's ids are joined from it (see :mod:`crosssell._words`).

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
            (
                words.take(ev[valid])
                if words is not None and product_ids.type == pa.string()
                else product_ids.take(pa.array(ev[valid]))
            ),
            pa.array(np.round(weights[valid].astype(np.float64), 4)),
        ],
        fields=list(evidence_type(product_ids).value_type),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), items)


@dataclass(frozen=True, slots=True, kw_only=True)
class PairFacts:
    """What decides whether one product is offered to one client, as far as it was looked up.

    The checks run in this order and the first that fails is the answer, so fields after it
    keep their defaults: the client and the product are known, the client is a client at
    ``as_of``, does not hold the product, the product is available at ``as_of`` (when it is
    not, ``unavailable`` says since or until when), the product is an upgrade (when it is not,
    ``family`` names the family the client holds at the same or a higher tier), no rule blocks
    the pair (``blocked_by``: rule, kind, detail), it is worth proposing (``not_worth``: the
    floor's detail when it is not), and it ranks within the top ``k`` (``better`` candidates
    rank above it, out of ``n_candidates``).
    """

    client: Any
    product: Any
    as_of: pd.Timestamp
    k: int
    known_client: bool = True
    known_product: bool = True
    eligible: bool = True
    held: bool = False
    unavailable: str | None = None
    upgrade: bool = True
    family: Any = None
    blocked_by: tuple[tuple[str, str, str], ...] = ()
    not_worth: str | None = None
    priority: float = float("nan")
    better: int = 0
    n_candidates: int = 0
    because: str | None = None


def why_not_sentence(facts: PairFacts) -> str:  # noqa: PLR0911 (one answer per case)
    """Say in one sentence why a product is (or is not) offered to a client.

    Parameters
    ----------
    facts : PairFacts
        What the recommender found, up to the first check that failed.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> facts = PairFacts(client="C1", product="P1", as_of=pd.Timestamp("2024-06-30"), k=3,
    ...                   priority=12.5, better=1, n_candidates=4)
    >>> why_not_sentence(facts)
    "'P1' is offered to 'C1' at rank 2 (priority 12.5)."
    >>> why_not_sentence(PairFacts(client="C1", product="P1", as_of=facts.as_of, k=3,
    ...                            known_client=False))
    "Client 'C1' is not in the book this model was fitted on."
    """
    client, product = facts.client, facts.product
    if not facts.known_client:
        return f"Client {client!r} is not in the book this model was fitted on."
    if not facts.known_product:
        return f"Product {product!r} is not in the catalogue this model was fitted on."
    if not facts.eligible:
        return (
            f"Client {client!r} had no contract on or before "
            f"{facts.as_of.date()} and is not yet a client at that date."
        )
    if facts.held:
        return f"Client {client!r} already holds {product!r} (an active contract)."
    if facts.unavailable is not None:
        return f"{product!r} is not offered to {client!r}: {facts.unavailable}."
    if not facts.upgrade:
        return (
            f"{product!r} is not an upgrade: client {client!r} already holds family "
            f"{facts.family!r} at the same or a higher tier."
        )
    if facts.blocked_by:
        parts = [f"{rule} ({kind}): {detail}" for rule, kind, detail in facts.blocked_by]
        return f"{product!r} is not offered to {client!r}: blocked by " + "; and by ".join(parts)
    if facts.not_worth is not None:
        return f"{product!r} is not offered to {client!r}: not worth proposing: {facts.not_worth}"
    mine, better = facts.priority, facts.better
    why = "" if facts.because is None else f" {facts.because}"
    if better < facts.k:
        return (
            f"{product!r} is offered to {client!r} at rank {better + 1} (priority {mine:.4g})."
            + why
        )
    return (
        f"{product!r} is allowed for {client!r} but outranked: its priority {mine:.4g} ranks "
        f"{better + 1} of {facts.n_candidates} candidates, and only the top {facts.k} are offered."
        + why
    )


#: The reason of a client left without offers when no rule blocked it as a whole.
NO_CANDIDATE_LEFT = "no eligible candidate left after the policy"


def client_block_reasons(
    log: pd.DataFrame,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """Per client of a suppression log, the rules that blocked it and their details in one text.

    Parameters
    ----------
    log : pandas.DataFrame
        Rows of a suppression log (columns ``client_idx``, ``rule``, ``detail``), each a block
        of every offer of a client.

    Returns
    -------
    clients : ndarray of int64
        Client rows, in order of first appearance.
    rules : ndarray of tuple
        The distinct rule names of each client, in order of appearance.
    reasons : ndarray of str
        The distinct details of each client, joined with ``"; "``.

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({"client_idx": [4, 4, 2], "rule": ["a", "b", "a"],
    ...                     "detail": ["x", "x", "y"]})
    >>> clients, rules, reasons = client_block_reasons(log)
    >>> clients.tolist(), rules.tolist(), reasons.tolist()
    ([4, 2], [('a', 'b'), ('a',)], ['x', 'y'])
    """
    # plain object columns: grouping categorical ones goes through pandas code that silences
    # its own warnings with warnings.catch_warnings, which is not thread-safe (the service
    # answers requests on many threads)
    plain = pd.DataFrame(
        {
            Columns.client_idx: log[Columns.client_idx].to_numpy(),
            Columns.rule: log[Columns.rule].astype(object).to_numpy(),
            Columns.detail: log[Columns.detail].astype(object).to_numpy(),
        }
    )
    grouped = plain.groupby(Columns.client_idx, sort=False)
    names = grouped[Columns.rule].agg(_distinct_tuple)
    details = grouped[Columns.detail].agg(lambda s: "; ".join(dict.fromkeys(s)))
    return names.index.to_numpy(dtype=np.int64), names.to_numpy(), details.to_numpy()


def _distinct_tuple(values: pd.Series) -> tuple[Any, ...]:
    """Distinct values in order of appearance."""
    return tuple(dict.fromkeys(values.tolist()))


def not_worth_reason(
    min_expected_value: float,
    min_propensity: float,
    contact_cost: float | Mapping[str, float] = 0.0,
) -> str:
    """Say why a client's every candidate fell under the not-worth-proposing floor.

    Parameters
    ----------
    min_expected_value : float
        The expected value an offer must exceed.
    min_propensity : float
        The propensity an offer must reach (0: none).
    contact_cost : float or mapping of str to float, default 0.0
        The cost of proposing an offer, or one per product family (0: none).

    Returns
    -------
    str

    Examples
    --------
    >>> not_worth_reason(10.0, 0.05).split(": ")[1]
    'the expected value must exceed 10 and the propensity reach 0.05'
    >>> not_worth_reason(0.0, 0.0, 25.0).split(": ")[1]
    'no expected value reached the 25.00 cost of proposing it'
    """
    head = "no candidate left by the policy was worth proposing: "
    wants = [f"the expected value exceed {min_expected_value:g}"] if min_expected_value else []
    wants += [f"the propensity reach {min_propensity:g}"] if min_propensity else []
    also = " and ".join(wants)
    cost = ""
    if isinstance(contact_cost, Mapping):
        priced = {str(k): float(v) for k, v in contact_cost.items() if float(v) > 0}
        if priced:
            listed = ", ".join(f"{k} {v:.2f}" for k, v in sorted(priced.items()))
            cost = f"no expected value reached the cost of proposing it ({listed})"
    elif float(contact_cost) > 0:
        cost = f"no expected value reached the {float(contact_cost):.2f} cost of proposing it"
    if cost:
        return head + cost + (f"; the floor also asks that {also}" if also else "")
    return (
        head
        + f"the expected value must exceed {min_expected_value:g}"
        + (f" and the propensity reach {min_propensity:g}" if min_propensity else "")
    )


def no_offer_frame(
    clients: pd.Index, reasons: npt.NDArray[np.object_], rules: npt.NDArray[np.object_]
) -> pd.DataFrame:
    """Build the frame of clients left without offers: ``client_id``, ``reason``, ``rules``.

    Parameters
    ----------
    clients : pandas.Index
        Client ids.
    reasons : ndarray of str
        Why each got nothing.
    rules : ndarray of tuple
        The rules behind each reason (empty when none).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rules = np.empty(1, dtype=object)
    >>> rules[:] = [()]
    >>> no_offer_frame(pd.Index(["C1"]), np.array([NO_CANDIDATE_LEFT], dtype=object),
    ...                rules).columns.tolist()
    ['client_id', 'reason', 'rules']
    """
    return pd.DataFrame({Columns.client: clients, Columns.reason: reasons, "rules": rules})
