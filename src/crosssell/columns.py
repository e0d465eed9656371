"""The column vocabulary of crosssell: every column name the library reads or writes.

Users with other names map them once with :class:`crosssell.Schema`; inside the library only the
names below are used.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["Columns", "EventType", "OfferType", "RuleKind"]


class Columns:
    """Default column names of the four input tables and of the outputs.

    Examples
    --------
    >>> from crosssell.columns import Columns
    >>> Columns.client, Columns.product
    ('client_id', 'product_id')
    """

    # identifiers, shared by every table
    client: Final = "client_id"
    product: Final = "product_id"
    # contracts
    contract: Final = "contract_id"
    start: Final = "start_date"
    end: Final = "end_date"
    value: Final = "value"
    quantity: Final = "quantity"
    # transactions (purchase lines with one timestamp)
    timestamp: Final = "timestamp"
    amount: Final = "amount"
    # products (the catalog)
    family: Final = "family"
    tier: Final = "tier"
    price: Final = "price"
    requires: Final = "requires"
    excludes: Final = "excludes"
    sellable: Final = "sellable"
    segments: Final = "segments"
    name: Final = "name"
    # clients
    segment: Final = "segment"
    region: Final = "region"
    owner: Final = "owner"
    parent: Final = "parent_id"
    do_not_contact: Final = "do_not_contact"
    satisfaction: Final = "satisfaction"
    # events
    date: Final = "date"
    type: Final = "type"
    detail: Final = "detail"
    ref: Final = "ref"
    # outputs
    offer_type: Final = "offer_type"
    score: Final = "score"
    propensity: Final = "propensity"
    expected_value: Final = "expected_value"
    priority: Final = "priority"
    rank: Final = "rank"
    reason: Final = "reason"
    evidence: Final = "evidence"
    cold_start: Final = "cold_start"
    rule: Final = "rule"
    kind: Final = "kind"
    scope: Final = "scope"
    table: Final = "table"
    row: Final = "row"
    # validation report (``Book.rejected`` and ``Book.summary()``)
    column: Final = "column"
    record: Final = "record"
    rows: Final = "rows"
    rejected: Final = "rejected"
    first_date: Final = "first_date"
    last_date: Final = "last_date"
    # internal tables carry dense indices beside the caller's ids
    client_idx: Final = "client_idx"
    product_idx: Final = "product_idx"
    in_catalog: Final = "in_catalog"


class EventType:
    """Event types with a built-in meaning; any other type is kept and available to user rules.

    Examples
    --------
    >>> from crosssell.columns import EventType
    >>> EventType.complaint_opened
    'complaint_opened'
    """

    complaint_opened: Final = "complaint_opened"
    complaint_closed: Final = "complaint_closed"
    offer_made: Final = "offer_made"
    offer_accepted: Final = "offer_accepted"
    offer_declined: Final = "offer_declined"
    contact: Final = "contact"
    need: Final = "need"
    churn_signal: Final = "churn_signal"

    known: Final = frozenset(
        {
            "complaint_opened",
            "complaint_closed",
            "offer_made",
            "offer_accepted",
            "offer_declined",
            "contact",
            "need",
            "churn_signal",
        }
    )


OfferType = Literal["upsell", "cross_sell"]
RuleKind = Literal["eligibility", "applicability", "suitability", "contact"]
