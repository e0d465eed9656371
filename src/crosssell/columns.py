"""The column vocabulary of crosssell: every column name the library reads or writes.

Users with other names map them once with :class:`crosssell.Schema`; inside the library only the
names below are used.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["Columns", "EventType", "OfferType", "PlanColumns", "RuleKind", "WhitespaceColumns"]


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
    available_from: Final = "available_from"
    available_to: Final = "available_to"
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
    # evaluation: metric tables, backtest folds and backtest offers
    metric: Final = "metric"
    k: Final = "k"
    ci_low: Final = "ci_low"
    ci_high: Final = "ci_high"
    n_clients: Final = "n_clients"
    fold: Final = "fold"
    model: Final = "model"
    cutoff: Final = "cutoff"
    horizon_end: Final = "horizon_end"
    added: Final = "added"
    lift: Final = "lift"
    training_rows: Final = "training_rows"
    clients: Final = "clients"
    products: Final = "products"
    clients_with_addition: Final = "clients_with_addition"
    additions: Final = "additions"
    offers: Final = "offers"
    # evaluation: calibration table
    bin: Final = "bin"
    lower: Final = "lower"
    upper: Final = "upper"
    n: Final = "n"
    observed: Final = "observed"
    calibration_error: Final = "calibration_error"
    # evaluation: tuning table
    trial: Final = "trial"
    params: Final = "params"
    selection_score: Final = "selection_score"
    held_out_score: Final = "held_out_score"
    fit_seconds: Final = "fit_seconds"
    # account plan: actions and each manager's summary
    action: Final = "action"
    due: Final = "due"
    talking_points: Final = "talking_points"
    materials: Final = "materials"
    upsell_product: Final = "upsell_product_id"
    at_risk: Final = "at_risk"
    open_complaints: Final = "open_complaints"
    days_since_contact: Final = "days_since_contact"
    group_holds: Final = "group_holds"
    rank_in_owner: Final = "rank_in_owner"
    within_capacity: Final = "within_capacity"
    capacity: Final = "capacity"
    listed: Final = "listed"
    below_cut: Final = "below_cut"
    priority_below_cut: Final = "priority_below_cut"
    nothing_to_do: Final = "nothing_to_do"
    # retention: each client's risk of leaving
    p_leave: Final = "p_leave"
    annual_value: Final = "annual_value"
    value_at_risk: Final = "value_at_risk"
    health: Final = "health"
    band: Final = "band"
    reasons: Final = "reasons"
    # whitespace (``offers`` above counts offers there too)
    holders: Final = "holders"
    needs: Final = "needs"
    offered_value: Final = "offered_value"
    candidates: Final = "candidates"
    candidate_value: Final = "candidate_value"
    allowed_value: Final = "allowed_value"
    blocked: Final = "blocked"
    #: one ``blocked_by_<rule>`` column per rule
    blocked_prefix: Final = "blocked_by_"


class PlanColumns:
    """The columns an account plan adds to :class:`Columns`, under the names it has always used.

    Every value is the :class:`Columns` constant of the same name (``below``, ``priority_below``
    and ``nothing`` are ``Columns.below_cut``, ``Columns.priority_below_cut`` and
    ``Columns.nothing_to_do``).

    Examples
    --------
    >>> from crosssell.columns import Columns, PlanColumns
    >>> PlanColumns.action, PlanColumns.rank_in_owner
    ('action', 'rank_in_owner')
    >>> PlanColumns.below == Columns.below_cut
    True
    """

    action: Final = Columns.action
    due: Final = Columns.due
    talking_points: Final = Columns.talking_points
    materials: Final = Columns.materials
    contract: Final = Columns.contract
    upsell_product: Final = Columns.upsell_product
    at_risk: Final = Columns.at_risk
    open_complaints: Final = Columns.open_complaints
    days_since_contact: Final = Columns.days_since_contact
    group_holds: Final = Columns.group_holds
    rank_in_owner: Final = Columns.rank_in_owner
    within_capacity: Final = Columns.within_capacity
    capacity: Final = Columns.capacity
    listed: Final = Columns.listed
    below: Final = Columns.below_cut
    priority_below: Final = Columns.priority_below_cut
    nothing: Final = Columns.nothing_to_do


class WhitespaceColumns:
    """The columns :func:`crosssell.insights.whitespace` adds to :class:`Columns`.

    Every value is the :class:`Columns` constant of the same name.

    Examples
    --------
    >>> from crosssell.columns import WhitespaceColumns
    >>> WhitespaceColumns.offered_value, WhitespaceColumns.blocked_prefix
    ('offered_value', 'blocked_by_')
    """

    holders: Final = Columns.holders
    needs: Final = Columns.needs
    offers: Final = Columns.offers
    offered_value: Final = Columns.offered_value
    candidates: Final = Columns.candidates
    candidate_value: Final = Columns.candidate_value
    allowed_value: Final = Columns.allowed_value
    blocked: Final = Columns.blocked
    blocked_prefix: Final = Columns.blocked_prefix


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
