"""The account plan: one next best action per client, and each account manager's list.

Route sales is not only selling. For every client the plan picks one action, in this order:

1. ``resolve_complaint``: a complaint is open (the oldest one is named, with its age);
2. ``renew``: a contract ends within the renewal window and is not renewed yet (the contract at
   risk first, with its value); an upsell of that contract rides along when the policy allowed it.
   On a Book of purchases (:meth:`~crosssell.Book.from_transactions`) nothing has a term to
   renew; the retention action there is ``reorder``: a product the client buys regularly (on
   three days or more, a week or more apart on average) is overdue (no purchase for more than
   one and a half of its usual intervals, within the look-back), the one with the most yearly
   spend at stake first;
3. ``propose``: the best offers left after the policy and arbitration, with reasons;
4. ``check_in``: nothing is worth proposing, but the client has not been contacted for a while;
5. ``none``: the client is fine and was contacted recently.

Each manager's list is ordered by action (in the order above), renewals at risk before the
others, then by priority, and cut at the manager's capacity for the period; what falls below
the cut is summarised. Accounts without an owner are listed apart.

**Priority** is money at stake times urgency, in the currency of the contract values:

=====================  ========================================  ===============================
action                 money at stake                            urgency
=====================  ========================================  ===============================
``resolve_complaint``  annual value of the client's active       ``1 + age_days / 30``
                       contracts
``renew``              annual value of the due contract          ``(1 + risk_signals) *
                                                                 (2 - days_left / window)``
``reorder``            yearly spend on the overdue product       ``(1 + risk_signals) * 2``
``propose``            sum of the offers' priorities             1
                       (propensity x value x levers)
``check_in``           annual value of the client's active       ``days_quiet / check_in_days``,
                       contracts                                 at most 3 (3: never contacted)
``none``               0                                         0
=====================  ========================================  ===============================

``risk_signals`` counts a churn signal, a satisfaction below the threshold and a declined offer
(the last two within ``risk_days``); ``window`` is ``renewal_days``. With a retention model
(``plan(..., retention=model)``), a renewal's priority is instead its contract's value at risk
times ``(2 - days_left / window)`` and a check-in's the client's value at risk times its quiet
urgency; ``retain_first`` holds back the proposals of clients likely to leave.
"""

from __future__ import annotations

import numbers
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._params import Interval, Options, check_fitted, validate_params
from crosssell.allocation import Allocation, Constraints, allocate
from crosssell.book import OPEN_END, Book
from crosssell.columns import Columns, EventType, PlanColumns
from crosssell.decisions import DecisionLog, Holdout, decisions_from_offers, policy_id
from crosssell.exceptions import SchemaError
from crosssell.recommender import Recommender
from crosssell.retention import RetentionModel
from crosssell.rules import GroupHeld, RuleContext
from crosssell.rules._common import holds_purchases
from crosssell.rules._eligibility import parent_index

__all__ = [
    "ACTIONS",
    "AccountPlan",
    "Action",
    "PlanColumns",
    "plan",
    "plan_rows",
    "risk_signals",
    "write_plan_csv",
]

Action = Literal["resolve_complaint", "renew", "reorder", "propose", "check_in", "none"]
#: The actions, in route-sales order: an earlier action wins over a later one. ``renew`` is the
#: retention step of contract books, ``reorder`` that of purchase books: one Book has one of them.
ACTIONS: Final[tuple[Action, ...]] = (
    "resolve_complaint",
    "renew",
    "reorder",
    "propose",
    "check_in",
    "none",
)
# the action of each step of the route-sales order, on contract books and on purchase books
_STEPS: Final = {
    False: ("resolve_complaint", "renew", "propose", "check_in", "none"),
    True: ("resolve_complaint", "reorder", "propose", "check_in", "none"),
}
# a regular product is overdue after this many of its usual intervals without a purchase
_OVERDUE_INTERVALS: Final = 1.5
# purchases closer than this are one order, not a rhythm; fewer orders than this are no rhythm
_MIN_INTERVAL_DAYS: Final = 7.0
_MIN_ORDERS: Final = 3

_DAY_NS: Final = 86_400 * 10**9
_NAT: Final = np.iinfo(np.int64).min
# The event table carries integer indices beside the caller's ids under these names.
_CLIENT_IDX: Final = "client_idx"
_PRODUCT_IDX: Final = "product_idx"
# Renewal talks should be done a little before the contract ends.
_RENEW_LEAD_DAYS: Final = 14
# A quiet client's urgency grows with the silence, but a decade of silence is not 40x a year's.
_MAX_QUIET_URGENCY: Final = 3.0
_LIST_SEP: Final = " | "
_TOUCH_TYPES: Final = (
    EventType.contact,
    EventType.offer_made,
    EventType.offer_accepted,
    EventType.offer_declined,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AccountPlan:
    """Next best action per client, and each account manager's list for the period.

    Attributes
    ----------
    actions : pandas.DataFrame
        One row per client: ``client_id, owner, segment, action, priority, due, reason,
        talking_points`` (tuple of str), ``materials`` (tuple of str), ``product_id`` (the due
        contract's product, or the top offer), ``contract_id`` (renew, when the contracts carry
        one), ``value`` (the due contract's annual value, or the offers' summed value),
        ``expected_value`` (propose), ``upsell_product_id`` (the upsell riding along a renewal),
        ``at_risk`` (renew), ``open_complaints``, ``days_since_contact`` (NaN: never),
        ``group_holds`` (what the client's group already holds), ``rank_in_owner`` (1 = call
        first; ``<NA>`` for ``none``) and ``within_capacity``. Rows are ordered by owner (no owner
        last), then as in each manager's list.
    as_of : pandas.Timestamp
        The date the plan is made at.
    period : pandas.Timedelta
        The period the capacity is for.
    capacities : pandas.Series
        Capacity per owner for the period (NaN: no cut).
    allocation : Allocation or None
        With ``plan(..., constraints=...)``: the optimised choice of actions (which rows are
        ``within_capacity``, why each was chosen or dropped, the objective against the greedy
        cut and the shadow prices of binding constraints). None for the greedy cut per manager.

    Examples
    --------
    >>> import crosssell as cs
    >>> book = cs.datasets.demo()
    >>> rec = cs.Recommender(policy=cs.rules.route_sales()).fit(book, cs.datasets.demo_as_of())
    >>> p = plan(rec, capacity=10)
    >>> len(p.actions) == int(rec.eligible_.sum())
    True
    >>> lists = p.by_owner()
    >>> sorted(lists)[:2], int(lists["AM01"]["rank_in_owner"].max())
    (['AM01', 'AM02'], 10)
    """

    actions: pd.DataFrame
    as_of: pd.Timestamp
    period: pd.Timedelta
    capacities: pd.Series
    allocation: Allocation | None = None

    def __repr__(self) -> str:
        a = self.actions
        actionable = int(a[Columns.action].ne("none").sum())
        return (
            f"AccountPlan(as_of={self.as_of.date()}, period={self.period.days}D, "
            f"clients={len(a):,}, actionable={actionable:,}, owners={len(self.owners):,}, "
            f"within_capacity={int(a[Columns.within_capacity].sum()):,})"
        )

    def _repr_html_(self) -> str:
        """Show, per manager, the actions in the period's list by kind."""
        from crosssell._html import card

        a = self.actions
        listed = a[a[Columns.within_capacity] & a[Columns.action].ne("none")]
        counts = (
            pd.crosstab(listed[Columns.owner].fillna("(no owner)"), listed[Columns.action])
            .reindex(columns=[c for c in ACTIONS if c in set(listed[Columns.action])])
            .rename_axis(index=Columns.owner, columns=None)
            .reset_index()
        )
        counts.insert(1, "capacity", counts[Columns.owner].map(self.capacities))
        facts = [
            ("as_of", self.as_of.date()),
            ("period", f"{self.period.days} days"),
            ("clients", f"{len(a):,} ({int(a[Columns.action].ne('none').sum()):,} with an "
             "action)"),
            ("in the period's lists", f"{len(listed):,}"),
        ]  # fmt: skip
        if self.allocation is not None:
            facts.append(("optimised", f"{self.allocation.status}, gap {self.allocation.gap:.1e}"))
        return card("AccountPlan", facts, [("actions within capacity, per manager", counts)])

    @property
    def owners(self) -> list[str]:
        """The account managers with at least one client, sorted.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
        >>> plan(rec).owners[:3]
        ['AM01', 'AM02', 'AM03']
        """
        owner = self.actions[Columns.owner]
        return sorted(str(o) for o in owner.dropna().unique())

    def by_owner(self, *, cut: bool = True) -> dict[str, pd.DataFrame]:
        """Each manager's list: actionable clients ordered by action, then priority.

        Parameters
        ----------
        cut : bool, default True
            Keep only what fits in the manager's capacity for the period.

        Returns
        -------
        dict of str to DataFrame
            Owner to their rows of :attr:`actions`, in calling order. Clients with nothing to do
            are left out; accounts without an owner are in :attr:`unowned`.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
        >>> p = plan(rec, capacity=5)
        >>> {len(v) for v in p.by_owner().values()}
        {5}
        """
        a = self.actions
        keep = a[Columns.action].ne("none") & a[Columns.owner].notna()
        if cut:
            keep &= a[Columns.within_capacity]
        rows = a[keep]
        return {str(k): g.reset_index(drop=True) for k, g in rows.groupby(Columns.owner, sort=True)}

    @property
    def unowned(self) -> pd.DataFrame:
        """Actionable accounts without an owner, in calling order (no capacity applies).

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
        >>> plan(rec).unowned.empty
        True
        """
        a = self.actions
        keep = a[Columns.action].ne("none") & a[Columns.owner].isna()
        return a[keep].reset_index(drop=True)

    def below_cut(self) -> pd.DataFrame:
        """Per manager: how much fits in the period, and what fell below the cut.

        Returns
        -------
        pandas.DataFrame
            One row per owner: ``owner, capacity, listed, below_cut``, one count column per
            action below the cut (``resolve_complaint`` ... ``check_in``),
            ``priority_below_cut`` (summed priority left for later) and ``nothing_to_do``.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
        >>> s = plan(rec, capacity=5).below_cut()
        >>> s["listed"].unique().tolist()
        [5]
        """
        a = self.actions[self.actions[Columns.owner].notna()]
        owners = pd.Index(self.owners, name=Columns.owner)
        act = a[Columns.action]
        actionable = act.ne("none")
        inside = actionable & a[Columns.within_capacity]
        outside = actionable & ~a[Columns.within_capacity]
        by = a[Columns.owner]
        out = pd.DataFrame(index=owners)
        out[Columns.capacity] = self.capacities.reindex(owners)
        out[Columns.listed] = inside.groupby(by).sum().reindex(owners, fill_value=0)
        out[Columns.below_cut] = outside.groupby(by).sum().reindex(owners, fill_value=0)
        counts = pd.crosstab(by[outside], act[outside]).reindex(
            index=owners, columns=list(ACTIONS[:-1]), fill_value=0
        )
        out = out.join(counts)
        prio = a[Columns.priority].where(outside, 0.0)
        out[Columns.priority_below_cut] = prio.groupby(by).sum().reindex(owners, fill_value=0.0)
        out[Columns.nothing_to_do] = (~actionable).groupby(by).sum().reindex(owners, fill_value=0)
        out.columns.name = None
        return out.reset_index()


def plan(  # noqa: PLR0915 - one pass over the route-sales steps, in order
    recommender: Recommender,
    book: Book | None = None,
    as_of: Any = None,
    *,
    period: str | pd.Timedelta = "7D",
    capacity: int | str | None = None,
    renewal_days: int = 60,
    check_in_days: int = 90,
    risk_days: int = 90,
    satisfaction_threshold: float = 5.0,
    need_days: int = 365,
    filter_group: bool = True,
    holdout: Holdout | None = None,
    log: DecisionLog | None = None,
    campaign: str | None = None,
    constraints: Constraints | dict[str, Any] | None = None,
    retention: RetentionModel | None = None,
    retention_order: Literal["value_at_risk", "signals"] = "value_at_risk",
    retain_first: float | None = None,
) -> AccountPlan:
    """Pick one next best action per client and build each account manager's list.

    Parameters
    ----------
    recommender : Recommender
        A fitted recommender; its offers, policy log and holdings are used.
    book : Book, optional
        The Book the recommender was fitted on (the default).
    as_of : str or datetime-like, optional
        Must equal the date the recommender was fitted at (the default).
    period : str or Timedelta, default "7D"
        The period the plan is for: capacity is per period, and proposals and check-ins are due
        at its end.
    capacity : int or str, optional
        Actions a manager can take in the period: one number for all, or the name of a column of
        the clients table holding each owner's capacity (the largest value of their clients is
        used; a missing value means no cut). None: no cut.
    renewal_days : int, default 60
        A contract ending within this many days and not renewed yet is due for renewal.
    check_in_days : int, default 90
        A client not contacted for this many days gets a check-in when nothing else is due.
    risk_days : int, default 90
        Churn signals and declined offers within this many days make a renewal at risk.
    satisfaction_threshold : float, default 5.0
        A satisfaction below it makes a renewal at risk.
    need_days : int, default 365
        Needs stated within this many days become talking points.
    filter_group : bool, default True
        Drop offers of products the client's parent holds for the group (see
        :class:`GroupHeld`; the policy's GroupHeld rule is used when it has one).
    holdout : crosssell.Holdout, optional
        Held-out clients get no proposal (nor an upsell riding along a renewal); complaints,
        renewals, reorders and check-ins are never withheld.
    log : crosssell.DecisionLog, optional
        Record each client's action as a decision (``propose`` as ``offer``, ``none`` as
        ``no_offer``), and the proposals withheld from held-out clients with
        ``arm="holdout"``; the actions then carry a ``decision_id`` column.
    campaign : str, optional
        Recorded with the decisions; scopes the holdout draw.
    constraints : Constraints or dict, optional
        Plan the whole book at once instead of cutting each manager's list greedily: the
        actions ``within_capacity`` are those :func:`crosssell.allocation.allocate` chooses to
        maximise the summed ``priority`` under these constraints (capacity, in actions or hours,
        per-client caps, product and family quotas, family shares, rows that must be included).
        ``capacity`` above fills the constraints' capacity when they give none. The result is
        in :attr:`AccountPlan.allocation`.
    retention : RetentionModel, optional
        A fitted :class:`~crosssell.retention.RetentionModel` of the same Book: each client's
        chance of leaving, value at risk, health and reasons are added to the actions
        (``p_leave``, ``value_at_risk``, ``health``) and to the talking points, ``at_risk``
        is the model's "at risk" band, and renewals and check-ins are ordered by value at risk
        (see ``retention_order``).
    retention_order : {"value_at_risk", "signals"}, default "value_at_risk"
        With ``retention``: a renewal's priority is its contract's value at risk times the
        deadline's urgency, a check-in's the client's value at risk times the quiet's urgency
        (``"value_at_risk"``); or the signal-count formula of the module docstring
        (``"signals"``, the only one without a model), to compare the two.
    retain_first : float, optional
        With ``retention``: a client whose chance of leaving is at least this gets no proposal;
        the action is a check-in that says "retain first", with the risk and its reasons.

    Returns
    -------
    AccountPlan

    Raises
    ------
    NotFittedError
        If the recommender is not fitted.
    ValueError
        If ``as_of`` or ``book`` differ from the fitted ones, or a parameter is out of range.
    SchemaError
        If ``capacity`` names a column the clients table does not have.

    Examples
    --------
    >>> import crosssell as cs
    >>> book = cs.datasets.demo()
    >>> rec = cs.Recommender(policy=cs.rules.route_sales()).fit(book, cs.datasets.demo_as_of())
    >>> p = plan(rec, capacity=8)
    >>> sorted(set(p.actions["action"]) - set(ACTIONS))
    []
    >>> p.actions["client_id"].is_unique
    True
    """
    check_fitted(recommender, "scorer_")
    book, ts = _check_inputs(recommender, book, as_of)
    span = _check_period(period)
    _check_days(
        renewal_days=renewal_days,
        check_in_days=check_in_days,
        risk_days=risk_days,
        need_days=need_days,
        satisfaction_threshold=satisfaction_threshold,
    )
    ctx = RuleContext(book=book, as_of=ts, holdings=recommender.candidates_.holdings)
    n, t = ctx.n_clients, ctx.as_of_ns
    names = _product_names(book)
    fam_code = recommender.candidates_.family
    fam_names = np.asarray(recommender.candidates_.families.astype(str), dtype=object)

    risk = _retention_risk(retention, book, ts, retain_first) if retention is not None else None
    if retention is None and retain_first is not None:
        raise ValueError("plan: retain_first needs a retention model (retention=...).")
    validate_params(
        "plan",
        {"retention_order": retention_order},
        {"retention_order": [Options({"value_at_risk", "signals"})]},
    )
    complaints = _complaints(ctx)
    risk_texts, n_risk = _risks(ctx, risk_days, float(satisfaction_threshold))
    if risk is not None:
        risk_texts = pd.concat([risk.texts, risk_texts], ignore_index=True)
    purchases = holds_purchases(book)
    renewal = (
        _reorders(ctx, recommender, names, n_risk)
        if purchases
        else _renewals(ctx, recommender, renewal_days, n_risk)
    )
    offers, withheld, held = _hold_out(
        _offers(recommender, ctx, filter_group), holdout, book, campaign
    )
    ride = _ride_along(renewal, offers, fam_code)
    last_touch = _last_touch(ctx)
    days_quiet = np.where(last_touch == _NAT, np.nan, (t - last_touch) / _DAY_NS)

    # -- which action wins, client by client (route-sales order)
    oldest = complaints.drop_duplicates("c", keep="first")
    first = offers.drop_duplicates("c", keep="first")
    n_open = np.bincount(complaints["c"].to_numpy(dtype=np.int64), minlength=n)
    has_renewal = _spread(n, renewal, None, False).astype(bool)
    has_offer = _spread(n, first, None, False).astype(bool)
    dnc = book.client_table[Columns.do_not_contact].to_numpy(dtype=bool)
    quiet = (np.isnan(days_quiet) | (days_quiet >= check_in_days)) & ~dnc
    # retain first: a client likely to leave is called on, not sold to
    hold_back = risk.hold_back & has_offer & ~dnc if risk is not None else np.zeros(n, dtype=bool)
    code = np.select(
        [n_open > 0, has_renewal, has_offer & ~hold_back, quiet | hold_back],
        [0, 1, 2, 3],
        default=4,
    )
    code = code.astype(np.int64)

    # -- priority: money at stake x urgency (see the module docstring)
    renew_value = _spread(n, renewal, "value", np.nan).astype(np.float64)
    priority, due_ns = _priority_and_due(
        code,
        t=t,
        span=span,
        relationship=np.asarray(recommender.candidates_.paid.sum(axis=1), np.float64).ravel(),
        age=_spread(n, oldest, "age", 0.0).astype(np.float64),
        renew_value=renew_value,
        renew_end=_spread(n, renewal, "end", _NAT).astype(np.int64),
        n_risk=n_risk,
        offer_priority=_sum_by(n, offers["c"].to_numpy(dtype=np.int64), offers[Columns.priority]),
        days_quiet=days_quiet,
        renewal_days=renewal_days,
        check_in_days=check_in_days,
        at_risk=(
            (_contract_var(n, renewal, risk), risk.value_at_risk, hold_back)
            if risk is not None and retention_order == "value_at_risk"
            else None
        ),
    )

    # -- the one sentence, the talking points and the materials
    more = np.where(n_open > 1, " (and " + (n_open - 1).astype(str) + " more open)", "")
    quiet_text = np.where(
        np.isnan(days_quiet),
        "no contact on record",
        "no contact for " + np.nan_to_num(days_quiet).astype(np.int64).astype(str) + " days",
    ).astype(object)
    blocked_text = _client_blocks(recommender, n)
    none_text = np.where(
        blocked_text != "",
        "nothing to propose: " + blocked_text.astype(str),
        np.where(
            dnc,
            "nothing to propose; the client is marked do-not-contact",
            "nothing worth proposing; last contact " + quiet_text.astype(str),
        ),
    )
    reason = np.select(
        [code == 0, code == 1, code == 2, code == 3],
        [
            _spread(n, oldest, "text", "") + more,
            _spread(n, renewal, "text", ""),
            _spread(n, first, Columns.reason, ""),
            np.where(
                hold_back,
                risk.retain_text if risk is not None else "",
                quiet_text + "; keep the relationship",
            ),
        ],
        default=none_text,
    ).astype(object)
    group_text = _group_holds(book, recommender.candidates_.holdings, names)
    points = _talking_points(
        code=code,
        complaints=complaints,
        renewal=renewal,
        risk_texts=risk_texts,
        ride=ride,
        offers=offers,
        needs=_needs(ctx, need_days, names, fam_names),
        quiet_text=quiet_text,
        blocked_text=blocked_text,
        group_text=group_text,
        names=names,
    )
    materials = _materials(
        code,
        offers=offers,
        renewal=renewal,
        ride=ride,
        names=names,
        fam_names=fam_names,
        family=fam_code,
    )

    # -- assemble, for clients that exist at as_of
    rows = np.flatnonzero(recommender.eligible_).astype(np.int64)
    is_renew, is_offer = code == 1, code == 2
    ids = book.product_ids.external
    offer_c = offers["c"].to_numpy(dtype=np.int64)
    product = np.where(is_offer, _spread(n, first, "p", -1), -1)
    product = np.where(is_renew, _spread(n, renewal, "p", -1), product).astype(np.int64)
    value = np.where(is_offer, _sum_by(n, offer_c, offers[Columns.value]), np.nan)
    expected = np.where(is_offer, _sum_by(n, offer_c, offers[Columns.expected_value]), np.nan)
    upsell = np.where(is_renew, _spread(n, ride, "p", -1), -1).astype(np.int64)
    contract_row = np.where(is_renew, _spread(n, renewal, "row", -1), -1).astype(np.int64)
    columns: dict[str, Any] = {
        Columns.client: book.client_ids.to_external(rows),
        Columns.owner: _clean_text(book.client_table[Columns.owner]).to_numpy()[rows],
        Columns.segment: book.client_table[Columns.segment].to_numpy()[rows],
        Columns.action: pd.Categorical(
            np.asarray(_STEPS[purchases], dtype=object)[code[rows]], categories=list(ACTIONS)
        ),
        Columns.priority: priority[rows],
        Columns.due: pd.to_datetime(due_ns[rows].view("datetime64[ns]")),
        Columns.reason: reason[rows],
        Columns.talking_points: points[rows],
        Columns.materials: materials[rows],
        Columns.product: _external(ids, product[rows]),
        Columns.contract: _contract_ids(book, contract_row[rows]),
        Columns.value: np.where(is_renew, renew_value, value)[rows],
        Columns.expected_value: expected[rows],
        Columns.upsell_product: _external(ids, upsell[rows]),
        Columns.at_risk: (((n_risk > 0) if risk is None else risk.at_risk) & is_renew)[rows],
        Columns.open_complaints: n_open[rows],
        Columns.days_since_contact: days_quiet[rows],
        Columns.group_holds: group_text[rows],
        Columns.p_leave: risk.p[rows] if risk is not None else None,
        Columns.value_at_risk: risk.value_at_risk[rows] if risk is not None else None,
        Columns.health: risk.health[rows] if risk is not None else None,
        "_code": code[rows],
        "_row": rows,
    }
    frame = pd.DataFrame({k: v for k, v in columns.items() if v is not None})
    capacities = _capacities(book, capacity, frame[Columns.owner])
    actions = _rank(frame, capacities)
    allocation = None
    if constraints is not None:
        actions, allocation = _allocate(actions, capacities, constraints, book)
    if log is not None:
        actions = _record_plan(
            actions,
            first=first,
            # held-out clients who would have been proposed to: their withheld proposal
            withheld=_would_propose(withheld, n, n_open == 0, ~has_renewal),
            held=held,
            recommender=recommender,
            as_of=ts,
            log=log,
            campaign=campaign,
        )
    return AccountPlan(
        actions=actions, as_of=ts, period=span, capacities=capacities, allocation=allocation
    )


def _allocate(
    actions: pd.DataFrame,
    capacities: pd.Series,
    constraints: Constraints | dict[str, Any],
    book: Book,
) -> tuple[pd.DataFrame, Allocation]:
    """Choose the actions within capacity by one optimisation over the book (see plan)."""
    c = constraints if isinstance(constraints, Constraints) else Constraints.from_dict(constraints)
    if c.capacity is None and capacities.notna().any():
        c = replace(c, capacity={str(k): float(v) for k, v in capacities.dropna().items()})
    actionable = actions[Columns.rank_in_owner].notna().to_numpy()
    result = allocate(actions[actionable], c, book=book, objective=Columns.priority)
    within = np.zeros(len(actions), dtype=bool)
    within[np.flatnonzero(actionable)] = result.rows["chosen"].to_numpy()
    why = np.full(len(actions), None, dtype=object)
    why[np.flatnonzero(actionable)] = result.rows["why"].to_numpy()
    out = actions.assign(**{Columns.within_capacity: within, "allocation": why})
    return out, result


def _hold_out(
    offers: pd.DataFrame, holdout: Holdout | None, book: Book, campaign: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, BoolArray]:
    """Split the offers into those shown and those withheld from held-out clients."""
    held = np.zeros(len(book.client_ids), dtype=bool)
    if holdout is not None:
        held = holdout.arms(book.client_ids.external, campaign) == "holdout"
    out = held[offers["c"].to_numpy(dtype=np.int64)]
    return offers[~out].reset_index(drop=True), offers[out], held


def _would_propose(
    withheld: pd.DataFrame, n: int, no_complaint: BoolArray, no_renewal: BoolArray
) -> pd.DataFrame:
    """Keep the withheld offers of clients whose action would have been ``propose``."""
    if not len(withheld):
        return withheld
    has = _spread(n, withheld.drop_duplicates("c"), None, False).astype(bool)
    would = has & no_complaint & no_renewal
    out: pd.DataFrame = withheld[would[withheld["c"].to_numpy(dtype=np.int64)]]
    return out


# the decision log's action of each plan action
_DECISION_ACTION: Final = {"propose": "offer", "none": "no_offer"}


def _record_plan(
    actions: pd.DataFrame,
    *,
    first: pd.DataFrame,
    withheld: pd.DataFrame,
    held: BoolArray,
    recommender: Recommender,
    as_of: pd.Timestamp,
    log: DecisionLog,
    campaign: str | None,
) -> pd.DataFrame:
    """Record each client's action (and the withheld proposals) as decisions; add their ids."""
    c = recommender.book_.client_ids.to_index(actions[Columns.client])
    is_offer = (actions[Columns.action].astype(str) == "propose").to_numpy()
    top = first.set_index("c")
    offer_type = pd.Series(c).map(top[Columns.offer_type]).where(is_offer, None)
    propensity = pd.Series(c).map(top[Columns.propensity]).where(is_offer, np.nan)
    plan_rows = pd.DataFrame(
        {
            Columns.client: actions[Columns.client].to_numpy(),
            Columns.product: actions[Columns.product].to_numpy(),
            Columns.offer_type: offer_type.to_numpy(),
            Columns.rank: np.where(is_offer, 1, 0),
            Columns.propensity: propensity.to_numpy(dtype=np.float64),
            Columns.value: actions[Columns.value].to_numpy(dtype=np.float64),
            Columns.priority: actions[Columns.priority].to_numpy(dtype=np.float64),
            Columns.reason: actions[Columns.reason].to_numpy(),
        }
    )
    rows = decisions_from_offers(
        plan_rows,
        as_of=as_of,
        model_id=recommender.model_id_,
        policy_id=policy_id(recommender.policy),
        campaign=campaign,
    )
    kind = actions[Columns.action].astype(str)
    rows["action"] = kind.map(lambda a: _DECISION_ACTION.get(a, a)).to_numpy()
    rows["rank"] = rows["rank"].where(is_offer)
    rows["arm"] = np.where(held[c], "holdout", "treated")
    parts = [rows]
    if len(withheld):
        top_withheld = withheld.drop_duplicates("c")
        hidden = decisions_from_offers(
            top_withheld,
            as_of=as_of,
            model_id=recommender.model_id_,
            policy_id=policy_id(recommender.policy),
            arm="holdout",
            campaign=campaign,
            decided_at=rows["decided_at"].iloc[0] if len(rows) else None,
        )
        hidden["shown_probability"] = 0.0
        parts.append(hidden)
    log.record(pd.concat(parts, ignore_index=True))
    return actions.assign(decision_id=rows["decision_id"].to_numpy())


@dataclass(frozen=True, slots=True)
class _Risk:
    """What a retention model says of every client of the Book (and of its contracts)."""

    p: FloatArray
    value_at_risk: FloatArray
    health: npt.NDArray[np.float64]
    at_risk: BoolArray
    hold_back: BoolArray
    retain_text: ObjArray
    texts: pd.DataFrame
    contract_var: pd.DataFrame


def _retention_risk(
    model: RetentionModel, book: Book, ts: pd.Timestamp, retain_first: float | None
) -> _Risk:
    """Read a fitted retention model at the plan's date, client by client."""
    check_fitted(model, "base_rate_")
    if retain_first is not None:
        validate_params(
            "plan",
            {"retain_first": retain_first},
            {"retain_first": [Interval(numbers.Real, 0, 1, closed="both")]},
        )
    n = len(book.client_ids)
    table = model.predict(book, ts)
    rows = book.client_ids.to_index(table[Columns.client].to_numpy(dtype=object))
    p = np.full(n, np.nan)
    var = np.zeros(n)
    health = np.full(n, np.nan)
    band = np.full(n, "", dtype=object)
    reasons = np.full(n, "", dtype=object)
    p[rows] = table[Columns.p_leave].to_numpy(dtype=np.float64)
    var[rows] = np.nan_to_num(table[Columns.value_at_risk].to_numpy(dtype=np.float64))
    health[rows] = table[Columns.health].to_numpy(dtype=np.float64)
    band[rows] = table[Columns.band].to_numpy(dtype=object)
    reasons[rows] = table[Columns.reasons].fillna("").to_numpy(dtype=object)
    horizon = f"{int(model.horizon_.days)} days"
    pct = np.char.mod("%.0f%%", np.nan_to_num(p) * 100).astype(object)
    risk_words = "risk of leaving within " + horizon + ": " + pct + " (health "
    risk_words = risk_words + np.char.mod("%.0f", np.nan_to_num(health)).astype(object) + ")"
    said = np.where(reasons != "", risk_words + "; " + reasons, risk_words)
    hold_back = (
        np.nan_to_num(p) >= float(retain_first)
        if retain_first is not None
        else np.zeros(n, dtype=bool)
    )
    at_risk = band == "at risk"
    shown = np.flatnonzero(at_risk | hold_back)
    texts = pd.DataFrame({"c": shown.astype(np.int64), "text": said[shown]})
    contracts = model.predict_contracts(book, ts)
    contract_var = (
        pd.DataFrame(
            {
                "c": book.client_ids.to_index(contracts[Columns.client].to_numpy(dtype=object)),
                "p": book.product_ids.to_index(contracts[Columns.product].to_numpy(dtype=object)),
                "var": contracts[Columns.value_at_risk].to_numpy(dtype=np.float64),
            }
        )
        .groupby(["c", "p"], as_index=False)
        .agg(var=("var", "max"))
    )
    return _Risk(
        p=p,
        value_at_risk=var,
        health=health,
        at_risk=at_risk,
        hold_back=hold_back,
        retain_text=("retain first: " + said).astype(object),
        texts=texts,
        contract_var=contract_var,
    )


def _contract_var(n: int, renewal: pd.DataFrame, risk: _Risk) -> FloatArray:
    """Return the value at risk of each client's due contract (0 where none is due)."""
    due = renewal.merge(risk.contract_var, on=["c", "p"], how="left")
    out = np.zeros(n)
    out[due["c"].to_numpy(dtype=np.int64)] = np.nan_to_num(due["var"].to_numpy(dtype=np.float64))
    return out


def _priority_and_due(
    code: IntArray,
    *,
    t: int,
    span: pd.Timedelta,
    relationship: FloatArray,
    age: FloatArray,
    renew_value: FloatArray,
    renew_end: IntArray,
    n_risk: FloatArray,
    offer_priority: FloatArray,
    days_quiet: FloatArray,
    renewal_days: int,
    check_in_days: int,
    at_risk: tuple[FloatArray, FloatArray, BoolArray] | None = None,
) -> tuple[FloatArray, IntArray]:
    """Compute each client's priority and due date (ns), as the module docstring describes.

    ``at_risk`` (a retention model's value at risk of each client's due contract, of each
    client, and the clients held back for retention) replaces the money at stake of renewals
    and check-ins, and the signal count's urgency with the deadline's alone; a client held back
    is due now however recently it was called.
    """
    n = code.shape[0]
    days_left = np.where(renew_end == _NAT, 0.0, (renew_end - t) / _DAY_NS)
    deadline = 2.0 - np.clip(days_left / max(renewal_days, 1), 0.0, 1.0)
    quiet_urgency = np.where(
        np.isnan(days_quiet),
        _MAX_QUIET_URGENCY,
        np.minimum(np.nan_to_num(days_quiet) / check_in_days, _MAX_QUIET_URGENCY),
    )
    renew_money, renew_urgency, quiet_money = renew_value, (1.0 + n_risk) * deadline, relationship
    if at_risk is not None:
        renew_money, quiet_money, held_back = at_risk
        renew_urgency = deadline
        quiet_urgency = np.where(held_back, np.maximum(quiet_urgency, 1.0), quiet_urgency)
    priority = np.select(
        [code == 0, code == 1, code == 2, code == 3],
        [
            relationship * (1.0 + age / 30.0),
            np.nan_to_num(renew_money) * renew_urgency,
            offer_priority,
            quiet_money * quiet_urgency,
        ],
        default=0.0,
    ).astype(np.float64)
    due = np.select(
        [code == 0, code == 1, code == 4],
        [np.full(n, t), np.maximum(renew_end - _RENEW_LEAD_DAYS * _DAY_NS, t), np.full(n, _NAT)],
        default=t + int(span.value),
    ).astype(np.int64)
    return priority, due


def _spread(n: int, frame: pd.DataFrame, column: str | None, fill: Any) -> npt.NDArray[Any]:
    """One value per client from a frame keyed by client index ``c`` (``fill`` elsewhere).

    With ``column=None`` the result marks which clients the frame has (True).
    """
    values = np.full(n, fill, dtype=object if isinstance(fill, str) else None)
    c = frame["c"].to_numpy(dtype=np.int64)
    if column is None:
        values[c] = True
    else:
        got = frame[column]
        values[c] = got.astype(object).fillna("").to_numpy() if isinstance(fill, str) else got
    return values


def _sum_by(n: int, client: IntArray, values: pd.Series) -> FloatArray:
    out: FloatArray = np.bincount(
        client, weights=values.to_numpy(dtype=np.float64), minlength=n
    ).astype(np.float64)
    return out


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def _check_inputs(rec: Recommender, book: Book | None, as_of: Any) -> tuple[Book, pd.Timestamp]:
    fitted_book: Book = rec.book_
    fitted: pd.Timestamp = rec.as_of_
    if book is None:
        book = fitted_book
    elif book is not fitted_book and not (
        book.client_ids == fitted_book.client_ids and book.product_ids == fitted_book.product_ids
    ):
        raise ValueError(
            "plan: the 'book' differs from the one the recommender was fitted on (other clients "
            "or products). Refit the recommender on this book, or omit 'book'."
        )
    if as_of is None:
        return book, fitted
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    if ts != fitted:
        raise ValueError(
            f"The 'as_of' parameter of plan must be the date the recommender was fitted at "
            f"({fitted.date()}). Got {str(as_of)!r} instead. Refit the recommender at "
            f"{ts.date()}, or omit 'as_of'."
        )
    return book, fitted


def _check_days(
    *,
    renewal_days: Any,
    check_in_days: Any,
    risk_days: Any,
    need_days: Any,
    satisfaction_threshold: Any,
) -> None:
    validate_params(
        "plan",
        {
            "renewal_days": renewal_days,
            "check_in_days": check_in_days,
            "risk_days": risk_days,
            "need_days": need_days,
            "satisfaction_threshold": satisfaction_threshold,
        },
        {
            "renewal_days": [Interval(numbers.Integral, 0, None, closed="left")],
            "check_in_days": [Interval(numbers.Integral, 1, None, closed="left")],
            "risk_days": [Interval(numbers.Integral, 0, None, closed="left")],
            "need_days": [Interval(numbers.Integral, 0, None, closed="left")],
            "satisfaction_threshold": [Interval(numbers.Real, 0, 10, closed="both")],
        },
    )


def _check_period(period: Any) -> pd.Timedelta:
    try:
        span: Any = pd.Timedelta(period)
    except (TypeError, ValueError):
        span = pd.NaT
    if not isinstance(span, pd.Timedelta) or not span > pd.Timedelta(0):
        raise ValueError(
            f"The 'period' parameter of plan must be a positive duration such as '7D'. "
            f"Got {period!r} instead."
        )
    return span


def _capacities(book: Book, capacity: int | str | None, owner: pd.Series) -> pd.Series:
    owners = pd.Index(sorted(str(o) for o in owner.dropna().unique()), name=Columns.owner)
    if capacity is None:
        return pd.Series(np.nan, index=owners, name=Columns.capacity)
    if isinstance(capacity, str):
        table = book.client_table
        if capacity not in table.columns:
            raise SchemaError(
                f"clients: the capacity column {capacity!r} is missing (columns: "
                f"{list(table.columns)}). Add each owner's capacity per period to the clients "
                "table, or pass capacity as a number.",
                table="clients",
                column=capacity,
                rule="missing_column",
            )
        values = pd.to_numeric(table[capacity], errors="coerce")
        per = values.groupby(_clean_text(table[Columns.owner])).max()
        return per.reindex(owners).rename(Columns.capacity).astype(np.float64)
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
        raise ValueError(
            "The 'capacity' parameter of plan must be an int in the range [1, inf), a column "
            f"name of the clients table, or None. Got {capacity!r} instead."
        )
    return pd.Series(float(capacity), index=owners, name=Columns.capacity)


def _rank(frame: pd.DataFrame, capacities: pd.Series) -> pd.DataFrame:
    frame = frame.assign(
        _no_owner=frame[Columns.owner].isna(),
        _safe=~frame[Columns.at_risk],
        _neg=-frame[Columns.priority],
    )
    frame = frame.sort_values(
        ["_no_owner", Columns.owner, "_code", "_safe", "_neg", "_row"],
        kind="stable",
        na_position="last",
    ).reset_index(drop=True)
    actionable = frame["_code"].to_numpy() < 4
    key = frame[Columns.owner].fillna("")
    rank = actionable.astype(np.int64)
    rank = pd.Series(rank).groupby(key.to_numpy()).cumsum().to_numpy()
    frame[Columns.rank_in_owner] = pd.array(np.where(actionable, rank, 0), dtype="Int64")
    frame.loc[~actionable, Columns.rank_in_owner] = pd.NA
    cap = frame[Columns.owner].map(capacities).to_numpy(dtype=np.float64, na_value=np.nan)
    within = actionable & frame[Columns.owner].notna().to_numpy() & ~(rank > cap)
    frame[Columns.within_capacity] = within
    return frame.drop(columns=["_no_owner", "_safe", "_neg", "_code", "_row"])


# --------------------------------------------------------------------------------------------
# the facts behind each action
# --------------------------------------------------------------------------------------------


def _ns(values: Any) -> IntArray:
    return np.asarray(pd.Series(values).to_numpy(dtype="datetime64[ns]").view(np.int64))


def _day_text(ns: Any) -> npt.NDArray[np.str_]:
    return np.datetime_as_string(np.asarray(ns, dtype=np.int64).view("datetime64[ns]"), unit="D")


def _product_names(book: Book) -> ObjArray:
    table = book.product_table
    ids = pd.Series(book.product_ids.external.astype(str), dtype=object)
    if Columns.name not in table.columns:
        return ids.to_numpy(dtype=object)
    named = table[Columns.name].astype(object)
    return named.where(named.notna(), ids).astype(str).to_numpy(dtype=object)


def _clean_text(values: pd.Series) -> pd.Series:
    text = values.astype(object)
    blank = text.isna() | text.astype(str).str.strip().eq("")
    return text.where(~blank, None)


def _external(ids: pd.Index, idx: IntArray) -> pd.Series:
    """Caller's ids with ``<NA>`` where the index is -1."""
    missing = idx < 0
    values = pd.Series(ids.take(np.where(missing, 0, idx)) if len(ids) else [None] * len(idx))
    if not missing.any():
        return values
    if pd.api.types.is_integer_dtype(values.dtype):
        values = values.astype("Int64")
    return values.astype(object).mask(pd.Series(missing), pd.NA)


def _complaints(ctx: RuleContext) -> pd.DataFrame:
    """Open complaints at ``as_of``, oldest first: ``c``, ``opened``, ``age`` (days), ``text``."""
    empty = pd.DataFrame(
        {"c": np.empty(0, np.int64), "opened": np.empty(0, np.int64), "age": [], "text": []}
    )
    ev = ctx.events(EventType.complaint_opened, EventType.complaint_closed)
    if len(ev) == 0:
        return empty
    ref = ev[Columns.ref]
    has_ref = ref.notna().to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64),
            "has_ref": has_ref,
            "ref": np.where(has_ref, ref.astype(object).astype(str).to_numpy(dtype=object), ""),
            "is_open": (ev[Columns.type] == EventType.complaint_opened).to_numpy(dtype=bool),
            "t": _ns(ev[Columns.date]),
            "detail": ev[Columns.detail].astype(object).to_numpy(dtype=object),
        }
    )
    keys = ["c", "has_ref", "ref"]
    # Without a ref, a client's k-th closing answers its k-th opening, as the policy reads it.
    frame["k"] = frame.groupby([*keys, "is_open"], sort=False).cumcount()
    opens = frame[frame["is_open"]]
    closes = frame.loc[~frame["is_open"], [*keys, "k", "t"]].rename(columns={"t": "closed"})
    closes["closed"] = closes["closed"].to_numpy(dtype=np.int64).view("datetime64[ns]")
    merged = opens.merge(closes, on=[*keys, "k"], how="left")
    closed = _ns(merged["closed"])
    opened = merged["t"].to_numpy(dtype=np.int64)
    still_open = (closed == _NAT) | (closed < opened)
    merged = merged[still_open]
    if len(merged) == 0:
        return empty
    opened = merged["t"].to_numpy(dtype=np.int64)
    age = (ctx.as_of_ns - opened) // _DAY_NS
    label = np.where(merged["has_ref"], "complaint #" + merged["ref"].astype(str), "complaint")
    detail = merged["detail"].astype(object)
    about = np.where(detail.notna(), " about " + detail.astype(str), "")
    unit = np.where(age == 1, " day)", " days)")
    text = label + about + " open since " + _day_text(opened) + " (" + age.astype(str) + unit
    out = pd.DataFrame(
        {"c": merged["c"].to_numpy(dtype=np.int64), "opened": opened, "age": age, "text": text}
    )
    return out.sort_values(["opened", "c"], kind="stable").reset_index(drop=True)


def _risks(ctx: RuleContext, days: int, threshold: float) -> tuple[pd.DataFrame, FloatArray]:
    """Risk signals per client: a long frame of sentences, and their count per client."""
    n = ctx.n_clients
    parts: list[pd.DataFrame] = []
    churn = ctx.events(EventType.churn_signal, days=days)
    if len(churn):
        last = churn.drop_duplicates(_CLIENT_IDX, keep="last")
        parts.append(
            pd.DataFrame(
                {
                    "c": last[_CLIENT_IDX].to_numpy(dtype=np.int64),
                    "text": "churn signal on " + _day_text(_ns(last[Columns.date])),
                }
            )
        )
    sat = pd.to_numeric(ctx.book.client_table[Columns.satisfaction], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    low = np.flatnonzero(sat < threshold)
    if low.size:
        parts.append(
            pd.DataFrame(
                {
                    "c": low,
                    "text": "satisfaction is "
                    + np.char.mod("%.1f", sat[low]).astype(object)
                    + f", below {threshold:g}",
                }
            )
        )
    declined = ctx.events(EventType.offer_declined, days=days)
    if len(declined):
        last = declined.drop_duplicates(_CLIENT_IDX, keep="last")
        what = last[Columns.product].astype(object)
        what_text = np.where(what.notna(), " (" + what.astype(str) + ")", "")
        parts.append(
            pd.DataFrame(
                {
                    "c": last[_CLIENT_IDX].to_numpy(dtype=np.int64),
                    "text": "declined an offer on "
                    + _day_text(_ns(last[Columns.date]))
                    + what_text,
                }
            )
        )
    if not parts:
        return pd.DataFrame({"c": np.empty(0, np.int64), "text": []}), np.zeros(n)
    texts = pd.concat(parts, ignore_index=True)
    count = np.bincount(texts["c"].to_numpy(dtype=np.int64), minlength=n).astype(np.float64)
    return texts, count


def risk_signals(
    book: Book, as_of: Any, *, risk_days: int = 90, satisfaction_threshold: float = 5.0
) -> pd.DataFrame:
    """Count each client's risk signals at ``as_of``, as the account plan does for renewals.

    The signals are a churn signal and a declined offer within ``risk_days``, and a
    satisfaction below ``satisfaction_threshold``; the plan calls a renewal "at risk" when the
    count is above zero and ranks renewals by ``(1 + count) * value``. This is the rule a
    learned retention model is measured against.

    Parameters
    ----------
    book : Book
    as_of : date-like
        The point in time; nothing dated later is read.
    risk_days : int, default 90
        Window of churn signals and declined offers.
    satisfaction_threshold : float, default 5.0
        A satisfaction below it is a signal.

    Returns
    -------
    pandas.DataFrame
        ``client_id`` and ``risk_signals`` (0 to 3), one row per client of the Book.

    Raises
    ------
    InvalidParameterError
        If ``risk_days`` is negative.

    Examples
    --------
    >>> import crosssell as cs
    >>> counts = risk_signals(cs.datasets.demo(), "2025-03-31")
    >>> int(counts["risk_signals"].max()) <= 3
    True
    """
    validate_params(
        "risk_signals",
        {"risk_days": risk_days},
        {"risk_days": [Interval(numbers.Integral, 0, None, closed="left")]},
    )
    ctx = RuleContext.at(book, as_of)
    _, count = _risks(ctx, int(risk_days), float(satisfaction_threshold))
    return pd.DataFrame(
        {Columns.client: book.client_ids.external, "risk_signals": count.astype(np.int64)}
    )


def _renewals(ctx: RuleContext, rec: Recommender, days: int, n_risk: FloatArray) -> pd.DataFrame:
    """Pick the one contract per client to renew: soonest end, then largest value."""
    ca = ctx.book.contract_arrays
    t = ctx.as_of_ns
    cols = ["c", "p", "row", "end", "value", "text", "at_risk"]
    empty = pd.DataFrame({c: [] for c in cols})
    if len(ca) == 0:
        return empty.astype({"c": np.int64, "p": np.int64, "row": np.int64, "end": np.int64})
    fam = rec.candidates_.family
    n_fam = len(rec.candidates_.families)
    client = ca.client.astype(np.int64)
    family = fam[ca.product.astype(np.int64)]
    known = ca.start <= t
    due = known & (t < ca.end) & (ca.end != OPEN_END) & (ca.end <= t + days * _DAY_NS)
    if not due.any():
        return empty.astype({"c": np.int64, "p": np.int64, "row": np.int64, "end": np.int64})
    key = client * n_fam + family
    # A later contract in the same family (a renewal or an upgrade) means it is renewed already.
    groups, inverse = np.unique(key[known], return_inverse=True)
    latest = np.full(groups.shape[0], _NAT, dtype=np.int64)
    np.maximum.at(latest, inverse, ca.end[known])
    rows = np.flatnonzero(due)
    rows = rows[latest[np.searchsorted(groups, key[rows])] <= ca.end[rows]]
    value = ca.value[rows]
    value = np.where(np.isnan(value), rec.candidates_.product_value[ca.product[rows]], value)
    order = np.lexsort((-np.nan_to_num(value), ca.end[rows], client[rows]))
    rows, value = rows[order], value[order]
    first = np.unique(client[rows], return_index=True)[1]
    rows, value = rows[first], value[first]
    c = client[rows]
    p = ca.product[rows].astype(np.int64)
    names = _product_names(ctx.book)
    value_text = np.where(np.isnan(value), "value unknown", "value " + np.char.mod("%.2f", value))
    left = (ca.end[rows] - t) // _DAY_NS
    risky = n_risk[c] > 0
    text = (
        np.where(risky, "at risk: the ", "the ").astype(object)
        + names[p]
        + " contract ("
        + value_text
        + ") ends on "
        + _day_text(ca.end[rows])
        + ", in "
        + left.astype(str)
        + np.where(left == 1, " day", " days")
        + ", and is not renewed yet"
    )
    return pd.DataFrame(
        {
            "c": c,
            "p": p,
            "row": rows.astype(np.int64),
            "end": ca.end[rows],
            "value": value,
            "text": text,
            "at_risk": risky,
        }
    )


def _reorders(
    ctx: RuleContext, rec: Recommender, names: ObjArray, n_risk: FloatArray
) -> pd.DataFrame:
    """Pick the one overdue regular purchase per client: most yearly spend at stake first.

    A product is bought regularly when the client bought it on at least three days; its usual
    interval is the time from the first to the last purchase over the number of intervals. It is
    overdue when the last purchase is older than one and a half intervals and still within the
    look-back (past it, the client no longer holds the product).
    """
    ca = ctx.book.contract_arrays
    t = ctx.as_of_ns
    cols = {"c": np.int64, "p": np.int64, "row": np.int64, "end": np.int64}
    known = ca.start <= t
    if not known.any():
        return pd.DataFrame({c: [] for c in [*cols, "value", "text", "at_risk"]}).astype(cols)
    product = ca.product[known].astype(np.int64)
    value = ca.value[known]
    lines = pd.DataFrame(
        {
            "c": ca.client[known].astype(np.int64),
            "p": product,
            "day": ca.start[known] // _DAY_NS,
            "v": np.where(np.isnan(value), rec.candidates_.product_value[product], value),
        }
    )
    g = lines.groupby(["c", "p"], sort=True)
    per = pd.DataFrame(
        {
            "days": g["day"].nunique(),
            "first": g["day"].min(),
            "last": g["day"].max(),
            "spend": g["v"].sum(),
        }
    ).reset_index()
    per = per[per["days"] >= _MIN_ORDERS]
    interval = (per["last"] - per["first"]) / (per["days"] - 1)
    since = t // _DAY_NS - per["last"]
    lookback = ctx.book.lookback
    reach = lookback.days if lookback is not None else np.inf
    overdue = (
        (interval >= _MIN_INTERVAL_DAYS) & (since > _OVERDUE_INTERVALS * interval) & (since < reach)
    )
    per, interval, since = per[overdue], interval[overdue], since[overdue]
    # what a year of the usual rhythm is worth: the average order times the orders in a year
    yearly = per["spend"] / per["days"] * (365.0 / interval)
    per = per.assign(value=yearly.to_numpy(), interval=interval.to_numpy(), since=since.to_numpy())
    per = per.sort_values(["c", "value", "p"], ascending=[True, False, True], kind="stable")
    per = per.drop_duplicates("c", keep="first")
    c = per["c"].to_numpy(dtype=np.int64)
    p = per["p"].to_numpy(dtype=np.int64)
    last_ns = per["last"].to_numpy(dtype=np.int64) * _DAY_NS
    risky = n_risk[c] > 0
    text = (
        np.where(risky, "at risk: reorder due for ", "reorder due for ").astype(object)
        + names[p]
        + ": bought every ~"
        + np.rint(per["interval"].to_numpy()).astype(np.int64).astype(str)
        + " days ("
        + per["days"].to_numpy(dtype=np.int64).astype(str)
        + " orders), last on "
        + _day_text(last_ns)
        + ", "
        + per["since"].to_numpy(dtype=np.int64).astype(str)
        + " days ago"
    )
    return pd.DataFrame(
        {
            "c": c,
            "p": p,
            "row": np.full(c.shape[0], -1, dtype=np.int64),
            # due now: an overdue order is as urgent as a contract ending today
            "end": np.full(c.shape[0], t, dtype=np.int64),
            "value": per["value"].to_numpy(dtype=np.float64),
            "text": text,
            "at_risk": risky,
        }
    )


def _offers(rec: Recommender, ctx: RuleContext, filter_group: bool) -> pd.DataFrame:
    """Get the offers with client and product indices, minus group-held products."""
    offers = rec.recommend(explain=True)
    c = rec.book_.client_ids.to_index(offers[Columns.client])
    p = rec.book_.product_ids.to_index(offers[Columns.product])
    offers = offers.assign(c=c, p=p)
    if filter_group and len(offers):
        rule = _group_rule(rec)
        blocks = rule.blocks(ctx)
        if len(blocks):
            n_p = np.int64(ctx.n_products)
            held = np.unique(blocks.client * n_p + blocks.product)
            offers = offers[~np.isin(c * n_p + p, held)]
    offers = offers.sort_values(["c", Columns.rank], kind="stable").reset_index(drop=True)
    offers[Columns.rank] = offers.groupby("c").cumcount().to_numpy(dtype=np.int64) + 1
    return offers


def _group_rule(rec: Recommender) -> GroupHeld:
    if rec.policy is not None:
        for r in rec.policy:
            if isinstance(r, GroupHeld):
                return r
    return GroupHeld()


def _ride_along(renewal: pd.DataFrame, offers: pd.DataFrame, family: IntArray) -> pd.DataFrame:
    """Find the best upsell offer in the due contract's family, when the policy let one through."""
    if len(renewal) == 0 or len(offers) == 0:
        return pd.DataFrame({"c": np.empty(0, np.int64), "p": np.empty(0, np.int64), "text": []})
    up = offers[offers[Columns.offer_type].astype(str).eq("upsell")]
    up = up.assign(f=family[up["p"].to_numpy(dtype=np.int64)])
    due = pd.DataFrame(
        {
            "c": renewal["c"].to_numpy(dtype=np.int64),
            "f": family[renewal["p"].to_numpy(dtype=np.int64)],
        }
    )
    both = due.merge(up[["c", "f", "p", Columns.rank, Columns.reason]], on=["c", "f"])
    both = both.sort_values(["c", Columns.rank], kind="stable").drop_duplicates("c")
    return pd.DataFrame(
        {
            "c": both["c"].to_numpy(dtype=np.int64),
            "p": both["p"].to_numpy(dtype=np.int64),
            "text": both[Columns.reason].astype(object).fillna("").to_numpy(dtype=object),
        }
    )


def _last_touch(ctx: RuleContext) -> IntArray:
    """Date (ns) of the latest contact or offer event per client; NaT when none."""
    out = np.full(ctx.n_clients, _NAT, dtype=np.int64)
    ev = ctx.events(*_TOUCH_TYPES)
    if len(ev):
        np.maximum.at(out, ev[_CLIENT_IDX].to_numpy(dtype=np.int64), _ns(ev[Columns.date]))
    return out


def _needs(ctx: RuleContext, days: int, names: ObjArray, fam_names: ObjArray) -> pd.DataFrame:
    """Stated needs within ``days``, newest first per client: ``c``, ``text``."""
    ev = ctx.events(EventType.need, days=days)
    if len(ev) == 0:
        return pd.DataFrame({"c": np.empty(0, np.int64), "text": []})
    p = ev[_PRODUCT_IDX].to_numpy(dtype=np.int64)
    family = ev[Columns.family].astype(object)
    detail = ev[Columns.detail].astype(object)
    what = np.where(
        p >= 0,
        names[np.maximum(p, 0)],
        np.where(
            family.notna(),
            family.astype(str) + " products",
            detail.astype(str).where(detail.notna(), "something"),
        ),
    )
    text = "stated a need for " + what + " on " + _day_text(_ns(ev[Columns.date]))
    out = pd.DataFrame({"c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64), "text": text})
    return out.iloc[::-1].drop_duplicates().reset_index(drop=True)


def _client_blocks(rec: Recommender, n: int) -> ObjArray:
    """Per client, the details of the rules that block every offer ("" when none)."""
    out = np.full(n, "", dtype=object)
    sup = rec.suppression_
    if sup is None or len(sup.log) == 0:
        return out
    log = sup.log
    whole = log[(log[_PRODUCT_IDX] < 0) & (log[_CLIENT_IDX] >= 0) & (log["scope"] == "any")]
    if len(whole) == 0:
        return out
    detail = whole[[_CLIENT_IDX, Columns.detail]].drop_duplicates()
    joined = detail.groupby(_CLIENT_IDX, sort=False)[Columns.detail].agg("; ".join)
    out[joined.index.to_numpy(dtype=np.int64)] = joined.to_numpy(dtype=object)
    return out


def _group_holds(book: Book, holdings: sp.csr_matrix, names: ObjArray) -> ObjArray:
    """For members of an account group, what the whole group holds today ("" otherwise)."""
    n = len(book.client_ids)
    out = np.full(n, "", dtype=object)
    parent = parent_index(book)
    if not (parent >= 0).any():
        return out
    root = np.where(parent >= 0, parent, np.arange(n))
    member = (parent >= 0) | np.isin(np.arange(n), parent[parent >= 0])
    coo = holdings.tocoo()
    rows = member[coo.row]
    held = pd.DataFrame({"g": root[coo.row[rows]], "p": coo.col[rows].astype(np.int64)})
    held = held.drop_duplicates().sort_values(["g", "p"])
    held["name"] = names[held["p"].to_numpy()]
    per_group = held.groupby("g", sort=False)["name"].agg(", ".join)
    text = pd.Series("", index=range(n), dtype=object)
    text.loc[per_group.index] = per_group.to_numpy(dtype=object)
    out[member] = text.to_numpy(dtype=object)[root[member]]
    return out


def _contract_ids(book: Book, rows: IntArray) -> pd.Series | None:
    """Contract ids of the renewed contracts, when the contracts carry them."""
    if not (rows >= 0).any():
        return None
    contracts = book.contracts
    if Columns.contract not in contracts.columns:
        return None
    ids = contracts[Columns.contract]
    picked = ids.take(np.maximum(rows, 0)).reset_index(drop=True).astype(object)
    return picked.mask(pd.Series(rows < 0), None)


def _talking_points(
    *,
    code: IntArray,
    complaints: pd.DataFrame,
    renewal: pd.DataFrame,
    risk_texts: pd.DataFrame,
    ride: pd.DataFrame,
    offers: pd.DataFrame,
    needs: pd.DataFrame,
    quiet_text: ObjArray,
    blocked_text: ObjArray,
    group_text: ObjArray,
    names: ObjArray,
) -> ObjArray:
    """Build a tuple of sentences per client, in the order a manager would bring them up."""
    n = code.shape[0]
    everyone = np.arange(n, dtype=np.int64)
    action_of = code
    pieces: list[tuple[int, int | None, pd.DataFrame]] = [
        (0, 0, complaints[["c", "text"]]),
        (1, 1, renewal[["c", "text"]]),
        (2, 1, risk_texts),
        (
            3,
            1,
            pd.DataFrame(
                {
                    "c": ride["c"],
                    "text": "an upsell may ride along: "
                    + pd.Series(names[ride["p"].to_numpy(dtype=np.int64)], dtype=object)
                    + ". "
                    + ride["text"].astype(str),
                }
            ),
        ),
        (4, 2, offers[["c", Columns.reason]].rename(columns={Columns.reason: "text"})),
        (5, None, needs),
        (6, 3, pd.DataFrame({"c": everyone, "text": quiet_text})),
        (7, 4, pd.DataFrame({"c": everyone, "text": blocked_text})),
        (8, None, pd.DataFrame({"c": everyone, "text": "the group already holds " + group_text})),
    ]
    parts = []
    for order, only, piece in pieces:
        if len(piece) == 0:
            continue
        c = piece["c"].to_numpy(dtype=np.int64)
        text = piece["text"].astype(object)
        keep = text.notna().to_numpy() & (text.astype(str) != "").to_numpy()
        if only is not None:
            keep &= action_of[c] == only
        if order == 8:
            keep &= group_text[c] != ""
        if order == 7:
            keep &= blocked_text[c] != ""
        parts.append(pd.DataFrame({"c": c[keep], "o": order, "text": text.to_numpy()[keep]}))
    return _collect(parts, n)


def _collect(parts: list[pd.DataFrame], n: int) -> ObjArray:
    """Gather a long frame (``c``, ``o``, ``text``) into one tuple of texts per client."""
    out = np.empty(n, dtype=object)
    out[:] = [()] * n
    if not parts:
        return out
    long = pd.concat(parts, ignore_index=True).sort_values(["c", "o"], kind="stable")
    c = long["c"].to_numpy(dtype=np.int64)
    if c.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    # One tuple per client is the output itself; splitting a sorted array is far cheaper than
    # a groupby aggregation that calls back into Python for every group.
    pieces = np.split(long["text"].to_numpy(dtype=object), starts[1:])
    filled = np.empty(starts.size, dtype=object)
    filled[:] = list(map(tuple, pieces))
    out[c[starts]] = filled
    return out


def _materials(
    code: IntArray,
    *,
    offers: pd.DataFrame,
    renewal: pd.DataFrame,
    ride: pd.DataFrame,
    names: ObjArray,
    fam_names: ObjArray,
    family: IntArray,
) -> ObjArray:
    """List what to bring per client: product names with their families."""
    n = code.shape[0]

    def label(p: IntArray) -> ObjArray:
        return np.asarray(names[p] + " (" + fam_names[family[p]] + ")", dtype=object)

    parts = []
    for order, only, frame in ((0, 1, renewal), (1, 1, ride), (2, 2, offers)):
        if len(frame) == 0:
            continue
        c = frame["c"].to_numpy(dtype=np.int64)
        p = frame["p"].to_numpy(dtype=np.int64)
        keep = code[c] == only
        parts.append(pd.DataFrame({"c": c[keep], "o": order, "text": label(p[keep])}))
    return _collect(parts, n)


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def plan_rows(account_plan: AccountPlan) -> pd.DataFrame:
    """Return the plan's actions as flat rows: what ``plan.csv`` and a database table hold.

    Talking points and materials are joined into one text each, due dates written
    ``YYYY-MM-DD``.

    Parameters
    ----------
    account_plan : AccountPlan

    Returns
    -------
    pandas.DataFrame
        :attr:`AccountPlan.actions`, one row per client, every cell a plain value.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> rows = plan_rows(plan(rec))
    >>> rows["due"].dropna().iloc[0][:4], type(rows["talking_points"].iloc[0]).__name__
    ('2025', 'str')
    """
    frame = account_plan.actions.copy()
    for column in (Columns.talking_points, Columns.materials):
        frame[column] = frame[column].map(_LIST_SEP.join)
    frame[Columns.due] = frame[Columns.due].dt.strftime("%Y-%m-%d")
    return frame


def write_plan_csv(account_plan: AccountPlan, path: str | os.PathLike[str]) -> Path:
    """Write the plan's actions to a CSV file, lists joined with ``" | "``.

    The file is written next to its target and renamed into place, so a reader never sees half
    of it.

    Parameters
    ----------
    account_plan : AccountPlan
    path : str or path-like
        The CSV file to write; its folder is created when missing.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> import crosssell as cs
    >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_plan_csv(plan(rec), pathlib.Path(d) / "plan.csv")
    ...     pd.read_csv(out).columns[:4].tolist()
    ['client_id', 'owner', 'segment', 'action']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    frame = plan_rows(account_plan)
    fd, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".csv", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False)
        # A temporary file is private (0600); a report is meant to be shared like any file.
        Path(tmp).chmod(0o644)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
