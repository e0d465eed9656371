"""One known client's new events, judged without rebuilding the Book: the real-time path.

A CRM sends the complaint it has just logged with the request for offers. The client's holdings,
and so its candidates and scores, are those of the fit; only the rules that read events may
change their mind. :class:`OneClient`, prepared once per fitted model, keeps the fitted events
grouped by client and, for the few clients whose offers the event rules changed at fit, their
offers under the other rules alone. A request then runs the event rules on one client's stored
and new events (numpy columns, no pandas) and folds what they block into that client's row of
the offer map, exactly as :meth:`~crosssell.arbitration._priority.OfferMap.build` would fold a
policy's blocks: the tests compare both paths on random events.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell.arbitration._priority import OfferMap
from crosssell.book import Book
from crosssell.candidates import Candidates
from crosssell.columns import Columns, EventType
from crosssell.rules import Blocks, Policy, RuleContext, Suppression
from crosssell.rules._context import EventColumns, event_columns

IntArray = npt.NDArray[np.int64]

EVENT_FIELDS: Final = frozenset(
    {Columns.client, Columns.date, Columns.type, Columns.product, Columns.detail, Columns.ref}
)
_ISO_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
# a few records from a CRM; more take the batch path
PLAIN_MAX: Final = 64
_LOW_NS: Final = pd.Timestamp("1900-01-01").value


@runtime_checkable
class EventRule(Protocol):
    """A built-in rule that reads a client's own events (see ``crosssell.rules``)."""

    @property
    def name(self) -> str: ...

    def _read_events(self, events: EventColumns, ctx: RuleContext) -> Blocks: ...


@dataclass(frozen=True, slots=True)
class FreshEvents:
    """New events of one client, checked plainly valid: what the Book would have read."""

    date: IntArray
    type: list[str]
    product: npt.NDArray[np.int32]
    ref: list[Any]


def _records(events: Any) -> list[Any] | None:
    """Return the caller's events as a list of records; None for a shape only the Book reads."""
    if isinstance(events, pd.DataFrame):
        return list(events.to_dict("records"))
    if isinstance(events, Mapping):
        columns = list(events.values())
        if columns and all(isinstance(c, list | tuple) for c in columns):
            n = len(columns[0])
            if all(len(c) == n for c in columns):
                keys = list(events.keys())
                return [
                    dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)
                ]
        try:
            return list(pd.DataFrame(dict(events)).to_dict("records"))
        except ValueError:
            return None
    if isinstance(events, list | tuple):
        return list(events)
    return None


# one refusal per kind of record the Book must judge
def plain_events(  # noqa: PLR0911, PLR0912
    events: Any, client: Any, book: Book, as_of: pd.Timestamp
) -> FreshEvents | None:
    """Read new events when they are plainly valid; None for anything the Book must judge.

    Plainly valid: the known columns only, the client's own id (or none), a date written
    ``YYYY-MM-DD`` within 1900 and ``as_of``, a built-in event type, a product of the
    catalogue (or none), and a text or integer (or nothing) as detail and ref.
    """
    records = _records(events)
    if not records or len(records) > PLAIN_MAX:
        return None
    products = book.product_ids.external
    text_ids = products.dtype == object or pd.api.types.is_string_dtype(products.dtype)
    hi = as_of.value
    out = FreshEvents(
        date=np.empty(len(records), dtype=np.int64),
        type=[],
        product=np.full(len(records), -1, dtype=np.int32),
        ref=[],
    )
    for i, record in enumerate(records):
        if not isinstance(record, Mapping) or not set(record) <= EVENT_FIELDS:
            return None
        given = record.get(Columns.client, client)
        if type(given) is not type(client) or given != client:
            return None
        day, kind = record.get(Columns.date), record.get(Columns.type)
        if not isinstance(day, str) or not _ISO_DAY.fullmatch(day):
            return None
        if not isinstance(kind, str) or kind not in EventType.known:
            return None
        try:
            ns = pd.Timestamp(day).value
        except ValueError:
            return None
        if not _LOW_NS <= ns <= hi:
            return None
        product = record.get(Columns.product)
        if product is not None:
            if text_ids != isinstance(product, str) or isinstance(product, bool):
                return None
            at = int(products.get_indexer(pd.Index([product]))[0])
            if at < 0:
                return None
            out.product[i] = at
        for name in (Columns.detail, Columns.ref):
            value = record.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
                return None
        out.ref.append(record.get(Columns.ref))
        out.date[i] = ns
        out.type.append(kind)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class OneClient:
    """What the real-time path needs of a fitted model, prepared once.

    Attributes
    ----------
    rules : tuple
        The policy's rules that read events, in name order (as a Policy evaluates them).
    whole : WholeBlocks
        The policy's other rules' blocks of every offer of a client, by client.
    ctx : RuleContext
        The fitted context: its catalogue (families, product names) and ``as_of``.
    events : EventColumns
        The fitted events on or before ``as_of``, grouped by client (date order within).
    ptr : ndarray of int64
        Client ``r``'s events are ``events[ptr[r]:ptr[r + 1]]``.
    type_code : dict of str to int
        Code of every built-in event type in ``events.type_labels`` (which lists them all).
    changed : ndarray of int64
        Sorted clients whose offers the event rules changed at fit.
    others : OfferMap or None
        The offers of ``changed`` clients (rows in that order) under the other rules alone.
    """

    rules: tuple[EventRule, ...]
    whole: WholeBlocks
    ctx: RuleContext
    events: EventColumns
    ptr: IntArray
    type_code: dict[str, int]
    changed: IntArray
    others: OfferMap | None

    @classmethod
    def prepare(
        cls, static: Policy, rules: Sequence[EventRule], ctx: RuleContext, candidates: Candidates
    ) -> OneClient | None:
        """Prepare the path for a fitted model; None when the event rules block whole products."""
        n_clients = ctx.n_clients
        stored = event_columns(ctx)
        labels = stored.type_labels + tuple(
            sorted(t for t in EventType.known if t not in stored.type_labels)
        )
        stored = dataclasses.replace(stored, type_labels=labels)
        order = np.argsort(stored.client, kind="stable")
        ptr = np.zeros(n_clients + 1, dtype=np.int64)
        np.cumsum(np.bincount(stored.client, minlength=n_clients), out=ptr[1:])
        ordered = sorted(rules, key=lambda r: r.name)
        fitted = [r._read_events(stored, ctx) for r in ordered]
        if any((b.client < 0).any() for b in fitted):
            return None
        changed = np.unique(np.concatenate([b.client for b in fitted] + [np.empty(0, np.int64)]))
        blocks = static.evaluate(ctx)
        others = None
        if changed.size:
            others = OfferMap.build(_candidate_rows(candidates, changed), _rows(blocks, changed))
        return cls(
            rules=tuple(ordered),
            whole=WholeBlocks.of(blocks.log, n_clients),
            ctx=ctx,
            events=stored.take(order),
            ptr=ptr,
            type_code={t: i for i, t in enumerate(labels)},
            changed=changed.astype(np.int64),
            others=others,
        )

    def client_events(self, row: int, fresh: FreshEvents) -> EventColumns:
        """Return one client's stored and new events: new first, then by date (stable)."""
        stored = self.events.take(np.arange(self.ptr[row], self.ptr[row + 1], dtype=np.int64))
        product = fresh.product.astype(np.int64)
        codes = self.ctx.family_codes
        new = EventColumns(
            client=np.full(product.shape[0], row, dtype=np.int64),
            product=product,
            family=np.where(product >= 0, codes[np.maximum(product, 0)], -1).astype(np.int64),
            date=fresh.date,
            type_code=np.array([self.type_code[t] for t in fresh.type], dtype=np.int64),
            type_labels=stored.type_labels,
            ref=np.asarray([*fresh.ref, None], dtype=object)[:-1],
        )
        both = EventColumns.concat([new, stored])
        return both.take(np.argsort(both.date, kind="stable"))

    def blocks(self, row: int, fresh: FreshEvents) -> list[tuple[EventRule, Blocks]]:
        """Return what each event rule blocks for the client, given its stored and new events."""
        events = self.client_events(row, fresh)
        return [(r, r._read_events(events, self.ctx)) for r in self.rules]

    def offers(
        self, row: int, fresh: FreshEvents, fitted: OfferMap
    ) -> tuple[IntArray, IntArray, npt.NDArray[np.float64], bool] | None:
        """Return the client's offer-map row with its new events; None when all are blocked.

        Returns the products never offered, the upsells allowed and their values, and whether
        every cross-sell is blocked, as :meth:`OfferMap.build` would for the whole policy.
        """
        at = int(np.searchsorted(self.changed, row))
        if at < self.changed.size and self.changed[at] == row and self.others is not None:
            base, r = self.others, at
        else:
            base, r = fitted, row
        if base.all_rows[r]:
            return None
        off = base.off.indices[base.off.indptr[r] : base.off.indptr[r + 1]].astype(np.int64)
        lo, hi = base.up.indptr[r], base.up.indptr[r + 1]
        up = base.up.indices[lo:hi].astype(np.int64)
        up_value = np.asarray(base.up.data[lo:hi], dtype=np.float64)
        cross_row = bool(base.cross_rows[r])
        whole = {"any": False, "cross_sell": False, "upsell": False}
        pairs: dict[str, list[IntArray]] = {"any": [], "cross_sell": [], "upsell": []}
        for _, b in self.blocks(row, fresh):
            for scope in whole:
                mine = b.scope == scope
                whole[scope] |= bool((mine & (b.product < 0)).any())
                pairs[scope].append(b.product[mine & (b.product >= 0)])
        if whole["any"]:
            return None
        pair_any = np.concatenate(pairs["any"] + [off[:0]])
        blocked = np.isin(up, np.concatenate([pair_any, *pairs["upsell"]]))
        if whole["upsell"]:
            blocked[:] = True
        kept = ~blocked
        # a cross-sell-only block leaves an allowed upsell of the same pair alone
        cross = np.concatenate(pairs["cross_sell"] + [off[:0]])
        cross = cross[~np.isin(cross, up[kept])]
        off = np.unique(np.concatenate([off, up[blocked], pair_any, cross]))
        return off, up[kept], up_value[kept], cross_row or whole["cross_sell"]


def offer_map_row(
    row: int,
    n_clients: int,
    like: OfferMap,
    parts: tuple[IntArray, IntArray, npt.NDArray[np.float64], bool],
) -> OfferMap:
    """Return an offer map whose only non-empty row is ``row``, from :meth:`OneClient.offers`."""
    off, up, up_value, cross_row = parts
    n_products = like.off.shape[1]

    def csr(data: npt.NDArray[Any], indices: IntArray) -> sp.csr_matrix:
        indptr = np.zeros(n_clients + 1, dtype=np.int64)
        indptr[row + 1 :] = indices.shape[0]
        return sp.csr_matrix((data, indices, indptr), shape=(n_clients, n_products))

    cross_rows = np.zeros(n_clients, dtype=bool)
    cross_rows[row] = cross_row
    return OfferMap(
        off=csr(np.ones(off.shape[0], dtype=bool), off),
        up=csr(up_value, up),
        cross_cols=like.cross_cols,
        cross_rows=cross_rows,
        all_rows=np.zeros(n_clients, dtype=bool),
    )


def _candidate_rows(candidates: Candidates, rows: IntArray) -> Candidates:
    """Return the candidates of some clients (rows in the given order)."""
    return dataclasses.replace(
        candidates,
        held_tier=candidates.held_tier[rows],
        paid=candidates.paid[rows],
        holdings=candidates.holdings[rows],
    )


def _rows(s: Suppression, rows: IntArray) -> Suppression:
    """Return the blocks of some clients of ``s`` (rows in the given order; no log)."""
    return Suppression(
        client_any=s.client_any[rows],
        client_cross_sell=s.client_cross_sell[rows],
        client_upsell=s.client_upsell[rows],
        product_any=s.product_any,
        product_cross_sell=s.product_cross_sell,
        product_upsell=s.product_upsell,
        pairs=s.pairs[rows],
        pairs_cross_sell=s.pairs_cross_sell[rows],
        pairs_upsell=s.pairs_upsell[rows],
        log=s.log.iloc[:0],
    )


@dataclass(frozen=True, slots=True, eq=False)
class WholeBlocks:
    """The rows of a suppression log that block every offer of a client, grouped by client.

    What a no-offer reason is made of: ``of_client(row)`` lists ``(rule, detail)`` pairs in log
    order (rules by name, as a Policy evaluates them) without scanning the log.
    """

    ptr: IntArray
    rule: npt.NDArray[np.object_]
    detail: npt.NDArray[np.object_]

    @classmethod
    def of(cls, log: pd.DataFrame, n_clients: int) -> WholeBlocks:
        """Index the whole-client blocks (no product, scope ``any``) of ``log`` by client."""
        whole = log[(log[Columns.product_idx] < 0) & (log[Columns.scope] == "any")]
        client = whole[Columns.client_idx].to_numpy(dtype=np.int64)
        order = np.argsort(client, kind="stable")
        ptr = np.zeros(n_clients + 1, dtype=np.int64)
        np.cumsum(np.bincount(client[client >= 0], minlength=n_clients), out=ptr[1:])
        return cls(
            ptr=ptr,
            rule=whole[Columns.rule].astype(object).to_numpy()[order],
            detail=whole[Columns.detail].astype(object).to_numpy()[order],
        )

    def of_client(self, row: int) -> list[tuple[str, str]]:
        """Return the ``(rule, detail)`` pairs that block every offer of client ``row``."""
        lo, hi = self.ptr[row], self.ptr[row + 1]
        return list(zip(self.rule[lo:hi].tolist(), self.detail[lo:hi].tolist(), strict=True))


def whole_pairs(parts: list[tuple[EventRule, Blocks]]) -> list[tuple[str, str]]:
    """Return the ``(rule, detail)`` pairs of event-rule blocks of every offer of the client."""
    out: list[tuple[str, str]] = []
    for rule, b in parts:
        whole = (b.product < 0) & (b.scope == "any")
        out.extend((rule.name, str(d)) for d in b.detail[whole].tolist())
    return out


def block_reason(pairs: list[tuple[str, str]]) -> tuple[str, tuple[str, ...]] | None:
    """Join one client's whole-client blocks into its no-offer reason, as the batch report does.

    The pairs are put in rule-name order (stable), the order a Policy logs its rules in; the
    reason is the distinct details joined with ``"; "``, the rules the distinct names.
    """
    if not pairs:
        return None
    ordered = sorted(pairs, key=lambda pair: pair[0])
    details = dict.fromkeys(d for _, d in ordered)
    return "; ".join(details), tuple(dict.fromkeys(r for r, _ in ordered))
