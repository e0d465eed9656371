"""Policies: sets of rules whose union says what not to offer, and the route-sales default."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from crosssell._params import validate_params
from crosssell.rules._applicability import OpenComplaint, RenewalFirst
from crosssell.rules._base import KIND, FunctionRule, Reads, Rule
from crosssell.rules._contact import ContactCap, DoNotContact, RecentDecline
from crosssell.rules._context import RuleContext
from crosssell.rules._eligibility import (
    AlreadyHeld,
    ExcludedByHolding,
    NotSellable,
    PrerequisiteMissing,
    SegmentNotEligible,
)
from crosssell.rules._suitability import ChurnSignal, LowSatisfaction, NotWorthProposing
from crosssell.rules._suppression import Suppression, build_suppression, check_blocks


def _as_rule(item: Any) -> Rule:
    if isinstance(item, Rule):
        validate_params(f"rule {item.name!r}", {"kind": item.kind}, {"kind": [KIND]})
        return item
    if callable(item):
        return FunctionRule(
            name=str(getattr(item, "__name__", "user_rule")), kind="applicability", func=item
        )
    raise TypeError(
        f"A policy takes rules (objects with name, kind and blocks) or functions of the context; "
        f"got {type(item).__name__}."
    )


class Policy:
    """An immutable set of rules whose union says what not to offer.

    Parameters
    ----------
    rules : iterable of Rule or callable
        Rules; a plain function ``func(ctx)`` becomes a :class:`FunctionRule` named after it.
    name : str, default "custom"
        A name for the policy, shown in its repr.

    Raises
    ------
    ValueError
        If two rules share a name.
    TypeError
        If an item is neither a rule nor a function.

    Examples
    --------
    >>> p = Policy([DoNotContact(), ContactCap(max_offers=2)], name="mine")
    >>> p.names
    ('do_not_contact', 'contact_cap')
    >>> p.without("contact_cap").names
    ('do_not_contact',)
    """

    __slots__ = ("_rules", "name")

    def __init__(
        self, rules: Iterable[Rule | Callable[[RuleContext], Any]], *, name: str = "custom"
    ) -> None:
        items = tuple(_as_rule(r) for r in rules)
        seen: set[str] = set()
        dup = [r.name for r in items if r.name in seen or seen.add(r.name)]  # type: ignore[func-returns-value]
        if dup:
            raise ValueError(
                f"Policy: rule names must be distinct; {sorted(set(dup))} appear more than once. "
                "Give each rule its own name=."
            )
        self._rules: tuple[Rule, ...] = items
        self.name = name

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order given.

        Examples
        --------
        >>> len(Policy([DoNotContact()]).rules)
        1
        """
        return self._rules

    @property
    def names(self) -> tuple[str, ...]:
        """The rule names, in the order given.

        Examples
        --------
        >>> Policy([DoNotContact()]).names
        ('do_not_contact',)
        """
        return tuple(r.name for r in self._rules)

    @property
    def not_worth(self) -> NotWorthProposing | None:
        """The :class:`NotWorthProposing` rule arbitration applies after scoring, if any.

        Examples
        --------
        >>> route_sales().not_worth.min_expected_value
        0.0
        """
        for r in self._rules:
            if isinstance(r, NotWorthProposing):
                return r
        return None

    @property
    def reads(self) -> Reads | None:
        """What the rules read together, or None when a rule does not say (it may read anything).

        The union of the rules' :class:`Reads`: every event type one of them reads, with the
        longest look-back (any age wins), and ended contracts or other clients' rows when one
        reads them. Spark scoring ships only these rows (see ``docs/spark.md``); a rule without
        a ``reads`` attribute, such as a :class:`FunctionRule` built without ``reads=``, makes
        it None and every row travels.

        Examples
        --------
        >>> route_sales().reads.events  # doctest: +NORMALIZE_WHITESPACE
        {'churn_signal': Timedelta('90 days 00:00:00'),
         'complaint_closed': None, 'complaint_opened': None,
         'offer_declined': Timedelta('90 days 00:00:00'),
         'offer_made': Timedelta('30 days 00:00:00')}
        >>> route_sales().with_rules(lambda ctx: None).reads is None
        True
        """
        declared = [Reads.of(r) for r in self._rules]
        known = [d for d in declared if d is not None]
        if len(known) < len(declared):
            return None
        return Reads.union(known)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, name: str) -> Rule:
        for r in self._rules:
            if r.name == name:
                return r
        raise KeyError(self._unknown(name))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self._rules == other._rules

    def __hash__(self) -> int:
        return hash(self.names)

    def __repr__(self) -> str:
        inner = "".join(f"\n    {r!r}," for r in self._rules)
        return (
            f"Policy(name={self.name!r}, rules=[{inner}\n])"
            if inner
            else f"Policy(name={self.name!r}, rules=[])"
        )

    def _short_repr(self) -> str:
        """One line for an estimator's repr; ``repr(policy)`` lists every rule."""
        if self == route_sales() and self.name == "route_sales":
            return "route_sales()"
        if len(self._rules) <= 3:
            return f"Policy(name={self.name!r}, rules={list(self.names)!r})"
        return f"<Policy {self.name!r}: {len(self._rules)} rules>"

    def _unknown(self, name: str) -> str:
        return f"Policy {self.name!r} has no rule named {name!r}; its rules are {list(self.names)}."

    def evaluate(self, ctx: RuleContext) -> Suppression:
        """Evaluate every rule and union what they block.

        The result does not depend on the order of the rules; the log lists rules by name.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Suppression

        Raises
        ------
        TypeError
            If a rule returns something else than Blocks.
        ValueError
            If a rule returns indices outside the Book.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "do_not_contact": [True, False]})
        >>> c = pd.DataFrame({"client_id": ["C2"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> s = route_sales().evaluate(ctx)
        >>> s.client_any.tolist(), s.log["rule"].tolist()
        ([True, False], ['already_held', 'do_not_contact'])
        """
        n_c, n_p = ctx.n_clients, ctx.n_products
        parts = [
            (r, check_blocks(r, r.blocks(ctx), n_c, n_p))
            for r in sorted(self._rules, key=lambda r: r.name)
        ]
        return build_suppression(parts, n_c, n_p)

    def without(self, *names: str) -> Policy:
        """Return a copy without the named rules.

        Parameters
        ----------
        *names : str

        Returns
        -------
        Policy

        Raises
        ------
        KeyError
            If a name is not a rule of the policy.

        Examples
        --------
        >>> "contact_cap" in route_sales().without("contact_cap").names
        False
        """
        for n in names:
            if n not in self.names:
                raise KeyError(self._unknown(n))
        return Policy([r for r in self._rules if r.name not in names], name=self.name)

    def with_rules(self, *rules: Rule | Callable[[RuleContext], Any]) -> Policy:
        """Return a copy with more rules added at the end.

        Parameters
        ----------
        *rules : Rule or callable

        Returns
        -------
        Policy

        Examples
        --------
        >>> Policy([]).with_rules(DoNotContact()).names
        ('do_not_contact',)
        """
        return Policy([*self._rules, *rules], name=self.name)

    def replace(self, name: str, rule: Rule | Callable[[RuleContext], Any]) -> Policy:
        """Return a copy with the named rule replaced, in place.

        Parameters
        ----------
        name : str
            The rule to replace.
        rule : Rule or callable
            Its replacement (which may carry another name).

        Returns
        -------
        Policy

        Raises
        ------
        KeyError
            If ``name`` is not a rule of the policy.

        Examples
        --------
        >>> route_sales().replace("contact_cap", ContactCap(max_offers=5))["contact_cap"].max_offers
        5
        """
        if name not in self.names:
            raise KeyError(self._unknown(name))
        return Policy([rule if r.name == name else r for r in self._rules], name=self.name)


def route_sales(
    *,
    prerequisite_mode: Literal["all", "any"] = "any",
    complaint_cool_off_days: int = 30,
    decline_days: int = 90,
    decline_scope: Literal["product", "family"] = "product",
    contact_max_offers: int = 3,
    contact_days: int = 30,
    renewal_days: int = 60,
    satisfaction_threshold: float = 5.0,
    churn_days: int = 90,
    allow_seat_expansion: bool = False,
    min_expected_value: float = 0.0,
    min_propensity: float = 0.0,
    contact_cost: float | Mapping[str, float] = 0.0,
) -> Policy:
    """Return the default route-sales policy: every built-in rule, each configurable.

    Parameters
    ----------
    prerequisite_mode : {"all", "any"}, default "any"
        :class:`PrerequisiteMissing` mode.
    complaint_cool_off_days : int, default 30
        :class:`OpenComplaint` cool-off after a complaint closes.
    decline_days : int, default 90
        :class:`RecentDecline` window.
    decline_scope : {"product", "family"}, default "product"
        What a declined product blocks.
    contact_max_offers : int, default 3
        :class:`ContactCap` offers allowed in the window.
    contact_days : int, default 30
        :class:`ContactCap` window.
    renewal_days : int, default 60
        :class:`RenewalFirst` horizon.
    satisfaction_threshold : float, default 5.0
        :class:`LowSatisfaction` threshold.
    churn_days : int, default 90
        :class:`ChurnSignal` window.
    allow_seat_expansion : bool, default False
        :class:`AlreadyHeld`: whether a held product may be upsold (more seats).
    min_expected_value : float, default 0.0
        :class:`NotWorthProposing`: expected values at or below it give no offer.
    min_propensity : float, default 0.0
        :class:`NotWorthProposing`: propensities below it give no offer.
    contact_cost : float or mapping of str to float, default 0.0
        :class:`NotWorthProposing`: the cost of proposing an offer (or one per product family);
        offers whose expected value is below it give no offer.

    Returns
    -------
    Policy

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names the rule's parameter).

    Examples
    --------
    >>> p = route_sales(complaint_cool_off_days=14)
    >>> p["open_complaint"].cool_off_days, len(p)
    (14, 13)
    """
    return Policy(
        [
            AlreadyHeld(allow_seat_expansion=allow_seat_expansion),
            NotSellable(),
            PrerequisiteMissing(mode=prerequisite_mode),
            ExcludedByHolding(),
            SegmentNotEligible(),
            OpenComplaint(cool_off_days=complaint_cool_off_days),
            RecentDecline(days=decline_days, scope=decline_scope),
            ContactCap(max_offers=contact_max_offers, days=contact_days),
            RenewalFirst(days=renewal_days),
            LowSatisfaction(threshold=satisfaction_threshold),
            ChurnSignal(days=churn_days),
            DoNotContact(),
            NotWorthProposing(
                min_expected_value=min_expected_value,
                min_propensity=min_propensity,
                contact_cost=contact_cost,
            ),
        ],
        name="route_sales",
    )
