"""Applicability rules: what must come before an offer (a complaint resolved, a renewal)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crosssell._codec import register
from crosssell._params import Interval, check_params
from crosssell.book import OPEN_END
from crosssell.columns import Columns, EventType, RuleKind
from crosssell.rules._base import NAME, Reads
from crosssell.rules._blocks import Blocks
from crosssell.rules._common import (
    DAY_NS,
    concat_text,
    format_numbers,
    holds_purchases,
    iso_dates,
    rank_within,
)
from crosssell.rules._context import EventColumns, RuleContext, event_columns

_CLIENT_IDX: Final = Columns.client_idx
_NAT: Final = np.iinfo(np.int64).min


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class OpenComplaint:
    """No offers at all while a complaint is open, nor for a cool-off period after it closes.

    Openings and closings are matched by ``ref`` when the events carry one; otherwise a client's
    k-th closing answers its k-th opening, in date order. A closing dated after ``as_of`` does not
    exist yet, so the complaint is still open.

    Parameters
    ----------
    name : str, default "open_complaint"
    cool_off_days : int, default 30
        Days after the closing during which offers stay blocked.

    Raises
    ------
    ValueError
        If ``cool_off_days`` is negative.

    Examples
    --------
    >>> OpenComplaint(cool_off_days=14).cool_off_days
    14
    """

    name: str = "open_complaint"
    cool_off_days: int = 30
    kind: RuleKind = field(default="applicability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "cool_off_days": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Complaint openings and closings of any age: an open complaint blocks until it closes.

        Examples
        --------
        >>> OpenComplaint().reads.events
        {'complaint_closed': None, 'complaint_opened': None}
        """
        return Reads(events={EventType.complaint_opened: None, EventType.complaint_closed: None})

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients with an open complaint or one closed within the cool-off.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            One row per complaint that blocks, scope ``"any"``.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"], "date": ["2024-06-01"],
        ...                   "type": ["complaint_opened"], "ref": ["R17"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> OpenComplaint().blocks(ctx).detail.tolist()
        ['complaint #R17 open since 2024-06-01 (29 days)']
        """
        return self._read_events(event_columns(ctx), ctx)

    def _read_events(self, events: EventColumns, ctx: RuleContext) -> Blocks:
        """Blocks from ``events`` (one client's or every client's), with ``ctx``'s catalogue."""
        ev = events.select(EventType.complaint_opened, EventType.complaint_closed)
        if len(ev) == 0:
            return Blocks.empty()
        has_ref = ~pd.isna(ev.ref)
        ref_text = np.where(has_ref, ev.ref.astype(str).astype(object), "")
        client_all = ev.client
        opened_all = np.isin(
            ev.type_code,
            [i for i, t in enumerate(ev.type_labels) if t == EventType.complaint_opened],
        )
        t_all = ev.date
        # one code per (client, has_ref, ref): the k-th closing of a code answers its k-th opening
        ref_code, ref_names = pd.factorize(ref_text)
        span = np.int64(len(ref_names) + 1)
        group = (client_all * 2 + has_ref) * span + ref_code
        k = rank_within(group * 2 + opened_all)
        opens = np.flatnonzero(opened_all)
        closes = np.flatnonzero(~opened_all)
        width = np.int64(k.max(initial=0) + 1)
        close_key = group[closes] * width + k[closes]
        order = np.argsort(close_key, kind="stable")
        sorted_keys = close_key[order]
        wanted = group[opens] * width + k[opens]
        pos = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(sorted_keys) - 1, 0))
        found = (
            (sorted_keys[pos] == wanted) if len(sorted_keys) else np.zeros(len(opens), dtype=bool)
        )
        opened_t = t_all[opens]
        close_ns = np.full(len(opens), _NAT, dtype=np.int64)
        if len(sorted_keys):
            close_ns[found] = t_all[closes[order[pos[found]]]]
        has_close = close_ns != _NAT
        has_ref_open = has_ref[opens]
        ref_open = ref_text[opens]
        # A closing dated before its opening answers nothing: the complaint stays open.
        still_open = ~has_close | (close_ns < opened_t)
        resume = close_ns + self.cool_off_days * DAY_NS
        cooling = ~still_open & (ctx.as_of_ns < resume)
        blocking = still_open | cooling
        if not blocking.any():
            return Blocks.empty()
        label = np.where(
            has_ref_open,
            concat_text("complaint #", ref_open.astype(str)).astype(str),
            "complaint",
        )
        age = (ctx.as_of_ns - opened_t) // DAY_NS
        unit = np.where(age == 1, " day)", " days)")
        open_text = concat_text(label, " open since ", iso_dates(opened_t), " (", age, unit)
        cool_text = concat_text(
            label,
            " closed on ",
            iso_dates(close_ns),
            "; offers resume on ",
            iso_dates(resume),
            f" after a {self.cool_off_days}-day cool-off",
        )
        detail = np.where(still_open, open_text, cool_text)
        client = client_all[opens]
        return Blocks.clients(client[blocking], detail[blocking])


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalFirst:
    """While a contract is due for renewal, no new cross-sell; its own family may be upsold.

    A contract is due when it is active at ``as_of``, ends within ``days`` days, and the client
    holds nothing in the same family that runs past that end (a renewal or an upgrade). A renewal
    contract starting after ``as_of`` does not exist yet at ``as_of``.

    On a Book of purchases (:meth:`~crosssell.Book.from_transactions`) a holding ends when its
    look-back runs out, which is not a term to renew: the rule blocks nothing there. The account
    plan's retention action for purchases is ``reorder`` (see :func:`crosssell.plan`).

    Parameters
    ----------
    name : str, default "renewal_first"
    days : int, default 60
        How far ahead of its end a contract counts as due.

    Raises
    ------
    ValueError
        If ``days`` is negative.

    Examples
    --------
    >>> RenewalFirst(days=30).days
    30
    """

    name: str = "renewal_first"
    days: int = 60
    kind: RuleKind = field(default="applicability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "days": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the contracts active at ``as_of``: no event, no ended contract.

        It looks at every contract started by ``as_of``, but one ended by then never runs past
        a contract still due, so ended contracts change nothing.

        Examples
        --------
        >>> RenewalFirst().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block cross-sell to clients with a contract due, and upsells outside its family.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            One client row (scope ``"cross_sell"``) per due contract, and (client, product) rows
            (scope ``"upsell"``) for the products of the client's other held families.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2023-08-01"],
        ...                   "end_date": ["2024-08-01"], "value": [1200.0]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> b = RenewalFirst().blocks(ctx)
        >>> b.scope.tolist()
        ['cross_sell']
        >>> print(b.detail[0])  # doctest: +NORMALIZE_WHITESPACE
        the P1 contract (since 2023-08-01, value 1200.00) ends on 2024-08-01 and is not
        renewed yet; renew it before any cross-sell
        """
        ca = ctx.book.contract_arrays
        t = ctx.as_of_ns
        if len(ca) == 0 or holds_purchases(ctx.book):
            return Blocks.empty()
        codes = ctx.family_codes
        n_fam = len(ctx.family_labels)
        client = ca.client.astype(np.int64)
        family = codes[ca.product.astype(np.int64)]
        known = ca.start <= t
        horizon = t + self.days * DAY_NS
        due = known & (t < ca.end) & (ca.end != OPEN_END) & (ca.end <= horizon)
        if not due.any():
            return Blocks.empty()
        key = client * n_fam + family
        # Latest end per (client, family) among contracts known at as_of; due ones are among them.
        groups, inverse = np.unique(key[known], return_inverse=True)
        latest = np.full(groups.shape[0], np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(latest, inverse, ca.end[known])
        latest_end = latest[np.searchsorted(groups, key[due])]
        pending = latest_end <= ca.end[due]
        if not pending.any():
            return Blocks.empty()
        rows = np.flatnonzero(due)[pending]
        order = np.lexsort((ca.end[rows], client[rows]))
        rows = rows[order]
        c = client[rows]
        value = ca.value[rows]
        value_text = np.where(
            np.isnan(value),
            "value unknown",
            concat_text("value ", format_numbers("%.2f", value)).astype(str),
        )
        text = concat_text(
            "the ",
            ctx.product_text[ca.product[rows]],
            " contract (since ",
            iso_dates(ca.start[rows]),
            ", ",
            value_text,
            ") ends on ",
            iso_dates(ca.end[rows]),
            " and is not renewed yet; renew it before any cross-sell",
        )
        cross = Blocks.clients(c, text, scope="cross_sell")
        # Upsells in the client's other held families wait too; the due family's own may go.
        n_c = ctx.n_clients
        fam_matrix = ctx.family_matrix
        held_fam = (ctx.holdings.astype(np.int32) @ fam_matrix).tocsr()
        due_clients = np.zeros(n_c, dtype=np.float64)
        due_clients[c] = 1.0
        held_fam = (sp.diags(due_clients) @ held_fam).tocsr()
        due_fam = sp.csr_matrix(
            (np.ones(c.shape[0], dtype=np.int32), (c, family[rows])), shape=held_fam.shape
        )
        other = ((held_fam > 0).astype(np.int32) - (held_fam > 0).multiply(due_fam > 0)).tocsr()
        other.eliminate_zeros()
        pairs = (other @ fam_matrix.T).tocoo()
        if pairs.nnz == 0:
            return cross
        fam_names = np.asarray(ctx.family_labels.astype(str), dtype=str)
        first = np.unique(c, return_index=True)[1]
        per_client = np.empty(n_c, dtype=object)
        per_client[c[first]] = concat_text(
            "renewal of the ",
            ctx.product_text[ca.product[rows[first]]],
            " contract ending ",
            iso_dates(ca.end[rows[first]]),
            " comes first; only upsells in the ",
            fam_names[family[rows[first]]],
            " family may be offered until then",
        )
        pc = pairs.row.astype(np.int64)
        up = Blocks.pairs(pc, pairs.col, per_client[pc], scope="upsell")
        return Blocks.concat([cross, up])
