"""Contact rules: how often, and after what answer, a client may be approached."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd

from crosssell._codec import register
from crosssell._params import Interval, Options, check_params
from crosssell.columns import Columns, EventType, RuleKind
from crosssell.rules._base import NAME, Reads
from crosssell.rules._blocks import Blocks
from crosssell.rules._common import (
    DAY_NS,
    concat_text,
    family_members,
    iso_dates,
    last_of_each,
    rank_within,
)
from crosssell.rules._context import EventColumns, RuleContext, event_columns

_CLIENT_IDX: Final = Columns.client_idx
_PRODUCT_IDX: Final = Columns.product_idx


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class RecentDecline:
    """Do not offer again, for a while, what the client has declined.

    An ``offer_declined`` event names a product or a family; one naming a family blocks every
    product of that family. With ``scope="family"`` a declined product blocks its whole family.

    Parameters
    ----------
    name : str, default "recent_decline"
    days : int, default 90
        Days after the decline during which the offer stays blocked.
    scope : {"product", "family"}, default "product"
        What a declined product blocks.

    Raises
    ------
    ValueError
        If ``days`` is negative or ``scope`` is not one of the two.

    Examples
    --------
    >>> RecentDecline(days=60, scope="family")
    RecentDecline(name='recent_decline', days=60, scope='family', kind='contact')
    """

    name: str = "recent_decline"
    days: int = 90
    scope: Literal["product", "family"] = "product"
    kind: RuleKind = field(default="contact", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "days": [Interval(numbers.Integral, 0, None, closed="left")],
        "scope": [Options({"product", "family"})],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """``offer_declined`` events of the last ``days`` days.

        Examples
        --------
        >>> RecentDecline(days=30).reads.events
        {'offer_declined': Timedelta('30 days 00:00:00')}
        """
        return Reads(events={EventType.offer_declined: pd.Timedelta(days=self.days)})

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs declined within the last ``days`` days.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            One row per blocked pair, naming the latest decline.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"], "date": ["2024-06-01"],
        ...                   "type": ["offer_declined"], "product_id": ["P1"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> RecentDecline().blocks(ctx).detail.tolist()
        ['declined P1 on 2024-06-01; it may be offered again from 2024-08-30']
        """
        return self._read_events(event_columns(ctx), ctx)

    def _read_events(self, events: EventColumns, ctx: RuleContext) -> Blocks:
        """Blocks from ``events`` (one client's or every client's), with ``ctx``'s catalogue."""
        if self.days == 0:
            return Blocks.empty()
        ev = events.select(EventType.offer_declined, after=ctx.as_of_ns - self.days * DAY_NS)
        if len(ev) == 0:
            return Blocks.empty()
        codes, labels = ctx.family_codes, ctx.family_labels
        by_family = (ev.product < 0) | (self.scope == "family")
        # a decline of a product blocks it; one of a family blocks each of its products
        single = np.flatnonzero(~by_family & (ev.product >= 0))
        whole = np.flatnonzero(by_family & (ev.family >= 0))
        members, ptr = family_members(codes, len(labels))
        counts = ptr[ev.family[whole] + 1] - ptr[ev.family[whole]]
        first = np.repeat(ptr[ev.family[whole]], counts)
        within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(counts) - counts, counts
        )
        source = np.concatenate([single, np.repeat(whole, counts)])
        c = ev.client[source]
        p = np.concatenate([ev.product[single], members[first + within]])
        t = ev.date[source]
        f = ev.family[source]
        is_family = np.concatenate([np.zeros(single.size, dtype=bool), np.ones(first.size, bool)])
        # the latest decline of each pair names it (ties: the later row)
        kept = last_of_each(c * np.int64(len(codes)) + p, t)
        if kept.size == 0:
            return Blocks.empty()
        c, p, t, f, is_family = c[kept], p[kept], t[kept], f[kept], is_family[kept]
        names = ctx.product_text
        fam_names = np.asarray(labels.astype(str), dtype=str)
        again = iso_dates(t + self.days * DAY_NS)
        family_text = concat_text(
            "declined the ",
            fam_names[f],
            " family on ",
            iso_dates(t),
            "; its products may be offered again from ",
            again,
        )
        product_text = concat_text(
            "declined ", names[p], " on ", iso_dates(t), "; it may be offered again from ", again
        )
        return Blocks.pairs(c, p, np.where(is_family, family_text, product_text))


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCap:
    """At most ``max_offers`` offers to a client within ``days`` days.

    Parameters
    ----------
    name : str, default "contact_cap"
    max_offers : int, default 3
        Offers (``offer_made`` events) allowed in the window.
    days : int, default 30
        Length of the window ending at ``as_of``.

    Raises
    ------
    ValueError
        If ``max_offers`` or ``days`` is below 1.

    Examples
    --------
    >>> ContactCap(max_offers=2).max_offers
    2
    """

    name: str = "contact_cap"
    max_offers: int = 3
    days: int = 30
    kind: RuleKind = field(default="contact", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "max_offers": [Interval(numbers.Integral, 1, None, closed="left")],
        "days": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """``offer_made`` events of the last ``days`` days.

        Examples
        --------
        >>> ContactCap(days=30).reads.events
        {'offer_made': Timedelta('30 days 00:00:00')}
        """
        return Reads(events={EventType.offer_made: pd.Timedelta(days=self.days)})

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients who already received ``max_offers`` in the window.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> e = pd.DataFrame({"client_id": ["C1"] * 2, "date": ["2024-06-10", "2024-06-20"],
        ...                   "type": ["offer_made"] * 2})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> ContactCap(max_offers=2).blocks(ctx).detail.tolist()
        ['2 offers made in the last 30 days (the cap is 2); the next may be made from 2024-07-10']
        """
        return self._read_events(event_columns(ctx), ctx)

    def _read_events(self, events: EventColumns, ctx: RuleContext) -> Blocks:
        """Blocks from ``events`` (one client's or every client's), with ``ctx``'s catalogue."""
        ev = events.select(EventType.offer_made, after=ctx.as_of_ns - self.days * DAY_NS)
        if len(ev) == 0:
            return Blocks.empty()
        _, group, sizes = np.unique(ev.client, return_inverse=True, return_counts=True)
        count = sizes[group]
        newest_rank = count - 1 - rank_within(ev.client)
        # The cap frees a slot when the max_offers-th newest offer leaves the window.
        edge = np.flatnonzero((count >= self.max_offers) & (newest_rank == self.max_offers - 1))
        if edge.size == 0:
            return Blocks.empty()
        count = count[edge]
        resume = iso_dates(ev.date[edge] + self.days * DAY_NS)
        noun = np.where(count == 1, " offer", " offers")
        text = concat_text(
            count,
            noun,
            f" made in the last {self.days} days (the cap is {self.max_offers}); "
            "the next may be made from ",
            resume,
        )
        return Blocks.clients(ev.client[edge], text)


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class DoNotContact:
    """No offers to clients marked do-not-contact.

    Parameters
    ----------
    name : str, default "do_not_contact"

    Examples
    --------
    >>> DoNotContact().kind
    'contact'
    """

    name: str = "do_not_contact"
    kind: RuleKind = field(default="contact", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the client table's ``do_not_contact`` flag: no event, no ended contract.

        Examples
        --------
        >>> DoNotContact().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients whose ``do_not_contact`` flag is True.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "do_not_contact": [False, True]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> b = DoNotContact().blocks(ctx)
        >>> b.client.tolist(), b.detail.tolist()
        ([1], ['the client is marked do-not-contact'])
        """
        table = ctx.book.client_table
        if Columns.do_not_contact not in table.columns:
            return Blocks.empty()
        flag = table[Columns.do_not_contact].astype(object).fillna(value=False).astype(bool)
        return Blocks.clients(
            np.flatnonzero(flag.to_numpy(dtype=bool)), "the client is marked do-not-contact"
        )
