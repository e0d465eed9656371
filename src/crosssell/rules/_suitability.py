"""Suitability rules: whether an offer suits the client now, and whether it is worth making."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._codec import register
from crosssell._params import Interval, Satisfies, check_params
from crosssell.columns import Columns, EventType, RuleKind
from crosssell.exceptions import CrossSellWarning
from crosssell.rules._base import FINITE_FLOAT, NAME, Reads
from crosssell.rules._blocks import Blocks
from crosssell.rules._common import (
    DAY_NS,
    BoolArray,
    TextArray,
    concat_text,
    format_numbers,
    iso_dates,
    last_of_each,
)
from crosssell.rules._context import EventColumns, RuleContext, event_columns

_CLIENT_IDX: Final = Columns.client_idx
FloatArray = npt.NDArray[np.float64]


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class LowSatisfaction:
    """No offers to clients whose satisfaction score is below a threshold.

    The score is a client attribute with no date; a missing score blocks nothing.

    Parameters
    ----------
    name : str, default "low_satisfaction"
    threshold : float, default 5.0
        Scores strictly below it block (scale 0 to 10).

    Raises
    ------
    ValueError
        If ``threshold`` is outside [0, 10].

    Examples
    --------
    >>> LowSatisfaction(threshold=4.0).threshold
    4.0
    """

    name: str = "low_satisfaction"
    threshold: float = 5.0
    kind: RuleKind = field(default="suitability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "threshold": [Interval(numbers.Real, 0, 10, closed="both")],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the client table's ``satisfaction``: no event, no ended contract.

        Examples
        --------
        >>> LowSatisfaction().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients with satisfaction below the threshold.

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
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "satisfaction": [3.5, 8.0]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> LowSatisfaction().blocks(ctx).detail.tolist()
        ['satisfaction is 3.5, below the threshold of 5']
        """
        table = ctx.book.client_table
        if Columns.satisfaction not in table.columns:
            return Blocks.empty()
        score = pd.to_numeric(table[Columns.satisfaction], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        idx = np.flatnonzero(score < self.threshold)
        text = concat_text(
            "satisfaction is ",
            format_numbers("%.1f", score[idx]),
            f", below the threshold of {self.threshold:g}",
        )
        return Blocks.clients(idx, text if idx.size else "")


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChurnSignal:
    """No offers to a client for ``days`` days after a churn signal.

    Parameters
    ----------
    name : str, default "churn_signal"
    days : int, default 90
        Days after the latest signal during which offers stay blocked.

    Raises
    ------
    ValueError
        If ``days`` is negative.

    Examples
    --------
    >>> ChurnSignal().days
    90
    """

    name: str = "churn_signal"
    days: int = 90
    kind: RuleKind = field(default="suitability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "days": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """``churn_signal`` events of the last ``days`` days.

        Examples
        --------
        >>> ChurnSignal(days=30).reads.events
        {'churn_signal': Timedelta('30 days 00:00:00')}
        """
        return Reads(events={EventType.churn_signal: pd.Timedelta(days=self.days)})

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to clients with a churn signal in the window.

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
        >>> e = pd.DataFrame({"client_id": ["C1"], "date": ["2024-06-01"],
        ...                   "type": ["churn_signal"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, events=e), "2024-06-30")
        >>> ChurnSignal().blocks(ctx).detail.tolist()
        ['churn signal on 2024-06-01; offers resume on 2024-08-30']
        """
        return self._read_events(event_columns(ctx), ctx)

    def _read_events(self, events: EventColumns, ctx: RuleContext) -> Blocks:
        """Blocks from ``events`` (one client's or every client's), with ``ctx``'s catalogue."""
        if self.days == 0:
            return Blocks.empty()
        ev = events.select(EventType.churn_signal, after=ctx.as_of_ns - self.days * DAY_NS)
        if len(ev) == 0:
            return Blocks.empty()
        # the latest signal of each client (events are in date order)
        kept = last_of_each(ev.client)
        t = ev.date[kept]
        text = concat_text(
            "churn signal on ",
            iso_dates(t),
            "; offers resume on ",
            iso_dates(t + self.days * DAY_NS),
        )
        return Blocks.clients(ev.client[kept], text)


def _is_chance(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return 0.0 <= float(value) <= 1.0


def _is_risk_table(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(v, tuple) and len(v) == 2 and _is_chance(v[0]) and isinstance(v[1], str)
        for v in value.values()
    )


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class RetainFirst:
    """No proposal to a client a retention model says is likely to leave: retain first.

    Holds the clients whose chance of leaving, at the model's date, is at least ``threshold``,
    each with its chance and its reasons; those clients get no offer, and the block says why
    ("retain first: 54% risk of leaving within 180 days; a churn signal on ..."). Build it with
    :meth:`from_model`. The risk is that of the model's date (``as_of``): at any other date the
    rule blocks nothing and warns, so that a backtest at an earlier cutoff never reads a risk
    computed with later data.

    Parameters
    ----------
    name : str, default "retain_first"
    threshold : float, default 0.5
        Chance of leaving from which proposals are held back.
    as_of : str, default ""
        The retention model's date (``YYYY-MM-DD``).
    horizon_days : int, default 180
        The model's horizon, for the sentence.
    risk : mapping of client id to (float, str), default {}
        The held clients: their chance of leaving and their reasons.

    Raises
    ------
    ValueError
        If ``threshold`` is outside [0, 1] or ``risk`` is not such a mapping.

    Examples
    --------
    >>> rule = RetainFirst(threshold=0.3, as_of="2025-06-30",
    ...                    risk={"C1": (0.54, "a churn signal on 2025-06-01")})
    >>> rule.kind, len(rule.risk)
    ('suitability', 1)
    """

    name: str = "retain_first"
    threshold: float = 0.5
    as_of: str = ""
    horizon_days: int = 180
    risk: Mapping[Any, tuple[float, str]] = field(default_factory=dict)
    kind: RuleKind = field(default="suitability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both")],
        "as_of": [str],
        "horizon_days": [Interval(numbers.Integral, 1, None, closed="left")],
        "risk": [
            Satisfies(
                _is_risk_table,
                "a mapping of client ids to (chance of leaving in [0, 1], reasons)",
                ({"C1": (1.5, "")}, {"C1": 0.5}),
            )
        ],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but its own table of held clients: no event, no ended contract.

        Examples
        --------
        >>> RetainFirst().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    @classmethod
    def from_model(cls, model: Any, threshold: float = 0.5, **kwargs: Any) -> RetainFirst:
        """Hold back the clients a fitted retention model scores at ``threshold`` or more.

        Parameters
        ----------
        model : RetentionModel
            Fitted; its :meth:`~crosssell.retention.RetentionModel.predict` at its own date
            is read once, here.
        threshold : float, default 0.5
        **kwargs
            Other parameters (``name``).

        Returns
        -------
        RetainFirst

        Examples
        --------
        >>> import crosssell as cs
        >>> model = cs.RetentionModel().fit(cs.datasets.demo(), "2025-06-30")
        >>> rule = RetainFirst.from_model(model, threshold=0.3)
        >>> rule.as_of, len(rule.risk) > 0
        ('2025-06-30', True)
        """
        table = model.predict()
        p = table[Columns.p_leave].to_numpy(dtype=np.float64)
        held = table[p >= float(threshold)]
        risk = {
            client: (float(chance), str(reasons) if isinstance(reasons, str) else "")
            for client, chance, reasons in zip(
                held[Columns.client].tolist(),
                held[Columns.p_leave].tolist(),
                held[Columns.reasons].tolist(),
                strict=True,
            )
        }
        return cls(
            threshold=float(threshold),
            as_of=str(pd.Timestamp(model.as_of_).date()),
            horizon_days=int(pd.Timedelta(model.horizon_).days),
            risk=risk,
            **kwargs,
        )

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every offer to the held clients, with their risk and reasons.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Warns
        -----
        CrossSellWarning
            When ``ctx`` is at another date than the model's: nothing is blocked.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P1"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> rule = RetainFirst(threshold=0.3, as_of="2024-06-30",
        ...                    risk={"C1": (0.54, "a churn signal on 2024-06-01")})
        >>> rule.blocks(ctx).detail.tolist()
        ['retain first: 54% risk of leaving within 180 days; a churn signal on 2024-06-01']
        """
        if not self.risk:
            return Blocks.empty()
        if str(ctx.as_of.date()) != self.as_of:
            warnings.warn(
                f"{self.name}: the retention risk is that of {self.as_of or 'an unknown date'}; "
                f"at {ctx.as_of.date()} it blocks nothing. Fit the retention model at the "
                "recommender's date and build the rule again.",
                CrossSellWarning,
                stacklevel=2,
            )
            return Blocks.empty()
        ids = list(self.risk)
        rows = ctx.book.client_ids.to_index(
            np.asarray([*ids, None], dtype=object)[:-1], missing="ignore"
        )
        known = rows >= 0
        chance = np.array([self.risk[i][0] for i in ids], dtype=np.float64)
        reasons = np.array([self.risk[i][1] for i in ids], dtype=object)
        keep = known & (chance >= self.threshold)
        said = concat_text(
            "retain first: ",
            format_numbers("%.0f", chance[keep] * 100),
            f"% risk of leaving within {self.horizon_days} days",
        )
        said = np.where(reasons[keep] != "", concat_text(said, "; ", reasons[keep]), said)
        return Blocks.clients(rows[keep], said if keep.any() else "")


def _is_uplift_table(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, tuple)
        and len(k) == 2
        and all(isinstance(i, str) for i in k)
        and isinstance(v, tuple)
        and len(v) == 4
        and all(isinstance(x, numbers.Real) and np.isfinite(float(x)) for x in v)
        and _is_chance(v[2])
        and _is_chance(v[3])
        for k, v in value.items()
    )


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class SleepingDog:
    """No offer where proposing it puts clients off: let sleeping dogs lie.

    Holds the (client, product) pairs whose estimated uplift (the chance of a take-up when
    proposed minus when not, from :class:`crosssell.scorers.Uplift`) is below zero with
    confidence: the upper end of its interval is below zero. Those offers are blocked, and the
    block says why ("clients like this took it less often when proposed: 12% when proposed, 19%
    when not"). Build it with :meth:`from_model`; the estimates are plain numbers, so that a
    recommender holding the rule can be saved.

    Parameters
    ----------
    name : str, default "sleeping_dog"
    as_of : str, default ""
        The last day of the data the estimates were learned from (``YYYY-MM-DD``): at an
        earlier date (a backtest's cutoff) the rule blocks nothing and warns, so that no cutoff
        reads what happened after it. Empty: no such check.
    uplift : mapping of (client id, product id) to (float, float, float, float), default {}
        The held pairs (ids as text): the uplift, the upper end of its interval, and the
        chances of a take-up when proposed and when not.

    Raises
    ------
    ValueError
        If ``uplift`` is not such a mapping.

    Examples
    --------
    >>> rule = SleepingDog(uplift={("C1", "P1"): (-0.07, -0.01, 0.12, 0.19)})
    >>> rule.kind, len(rule.uplift)
    ('suitability', 1)
    """

    name: str = "sleeping_dog"
    as_of: str = ""
    uplift: Mapping[tuple[str, str], tuple[float, float, float, float]] = field(
        default_factory=dict
    )
    kind: RuleKind = field(default="suitability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "as_of": [str],
        "uplift": [
            Satisfies(
                _is_uplift_table,
                "a mapping of (client id, product id) to (uplift, upper bound, chance when "
                "proposed, chance when not)",
                ({("C1", "P1"): (-0.1, -0.01, 1.5, 0.2)}, {"C1": (-0.1, -0.01, 0.1, 0.2)}),
            )
        ],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but its own table of held pairs: no event, no ended contract.

        Examples
        --------
        >>> SleepingDog().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    @classmethod
    def from_model(
        cls, model: Any, pairs: pd.DataFrame | None = None, **kwargs: Any
    ) -> SleepingDog:
        """Hold the pairs whose uplift a fitted model puts below zero with confidence.

        Parameters
        ----------
        model : crosssell.scorers.Uplift
            Fitted, with a bootstrap (``n_boot`` of 2 or more): without an interval nothing
            is held.
        pairs : pandas.DataFrame, optional
            ``client_id`` and ``product_id`` to estimate; default every client of the model's
            Book with every product offered in its decisions.
        **kwargs
            Other parameters (``name``).

        Returns
        -------
        SleepingDog

        Examples
        --------
        >>> import crosssell as cs
        >>> sim = cs.datasets.simulate_uplift({"A": 0.1, "B": -0.15}, n_clients=1000)
        >>> model = cs.scorers.Uplift(n_boot=20).fit(sim.decisions, sim.book)
        >>> rule = SleepingDog.from_model(model)
        >>> held = {c for c, _ in rule.uplift}
        >>> segment = sim.book.clients.set_index("client_id")["segment"]
        >>> sorted(set(segment[sorted(held)]))
        ['B']
        """
        if pairs is None:
            clients = model.clients()
            products = list(model.products_)
            pairs = pd.DataFrame(
                {
                    Columns.client: np.repeat(clients.to_numpy(dtype=object), len(products)),
                    Columns.product: np.tile(np.asarray(products, dtype=object), len(clients)),
                }
            )
        out = model.predict(pairs)
        high = out["ci_high"].to_numpy(dtype=np.float64)
        held = out[np.isfinite(high) & (high < 0.0)]
        uplift = {
            (str(c), str(p)): (float(u), float(h), float(t), float(n))
            for c, p, u, h, t, n in zip(
                held[Columns.client].tolist(),
                held[Columns.product].tolist(),
                held["uplift"].tolist(),
                held["ci_high"].tolist(),
                held["p_treated"].tolist(),
                held["p_holdout"].tolist(),
                strict=True,
            )
        }
        known = getattr(model, "as_of_", None)
        as_of = "" if known is None else str(pd.Timestamp(known).date())
        return cls(uplift=uplift, **{"as_of": as_of, **kwargs})

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block the held pairs, each with the take-up when proposed and when not.

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
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> rule = SleepingDog(uplift={("C1", "P2"): (-0.07, -0.01, 0.12, 0.19)})
        >>> rule.blocks(ctx).detail.tolist()
        ['clients like this took it less often when proposed: 12% when proposed, 19% when not']
        """
        if not self.uplift:
            return Blocks.empty()
        if self.as_of and ctx.as_of < pd.Timestamp(self.as_of):
            warnings.warn(
                f"{self.name}: the uplift estimates read data up to {self.as_of}; at "
                f"{ctx.as_of.date()} they would look ahead, so the rule blocks nothing. Fit the "
                "uplift model on data up to this date and build the rule again.",
                CrossSellWarning,
                stacklevel=2,
            )
            return Blocks.empty()
        keys = list(self.uplift)
        client_text = pd.Index(ctx.book.client_ids.external.astype(str))
        product_text = pd.Index(ctx.book.product_ids.external.astype(str))
        rows = client_text.get_indexer([c for c, _ in keys])
        cols = product_text.get_indexer([p for _, p in keys])
        known = (rows >= 0) & (cols >= 0)
        values = np.array([self.uplift[k] for k in keys], dtype=np.float64).reshape(-1, 4)
        keep = known & (values[:, 1] < 0.0)
        said = concat_text(
            "clients like this took it less often when proposed: ",
            format_numbers("%.0f", values[keep, 2] * 100),
            "% when proposed, ",
            format_numbers("%.0f", values[keep, 3] * 100),
            "% when not",
        )
        return Blocks.pairs(rows[keep], cols[keep], said if keep.any() else "")


def _is_cost(value: Any) -> bool:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    return bool(np.isfinite(float(value)) and float(value) >= 0.0)


def _is_cost_mapping(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and all(isinstance(k, str) for k in value)
        and all(_is_cost(v) for v in value.values())
    )


#: A cost of proposing an offer: a non-negative finite number, or one per product family.
CONTACT_COST: Final = (
    Satisfies(_is_cost, "a non-negative finite float", (-1.0, float("inf"), float("nan"), "0")),
    Satisfies(
        _is_cost_mapping,
        "a mapping of product families (str) to non-negative finite floats",
        ({"CRM": -1.0}, {1: 2.0}),
    ),
)


def _plain_numbers(values: Any) -> npt.NDArray[np.str_]:
    """Money without needless decimals: 400 -> "400", 399.5 -> "399.50"."""
    v = np.asarray(values, dtype=np.float64)
    whole = np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 1e15)
    return np.where(whole, format_numbers("%.0f", v), format_numbers("%.2f", v))


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class NotWorthProposing:
    """Offer nothing rather than an offer that does not pay: applied after scoring, by arbitration.

    Proposing costs something: an account manager's time, a visit, the client's patience. An
    offer is worth proposing when its expected value (propensity x value) reaches the cost of
    proposing it (``contact_cost``), is above ``min_expected_value`` and its propensity is at
    least ``min_propensity``; a missing value is not worth proposing. A client none of whose
    candidates clears the bar gets no offer, and
    :meth:`~crosssell.Recommender.no_offer_report` says so.

    Parameters
    ----------
    name : str, default "not_worth_proposing"
    min_expected_value : float, default 0.0
        Expected values at or below it are dropped (so by default an offer must be worth
        something).
    min_propensity : float, default 0.0
        Propensities below it are dropped (0 to 1).
    contact_cost : float or mapping of str to float, default 0.0
        The cost of proposing one offer, in the unit of the products' values. A float applies
        to every product; a mapping gives the cost per product family (the ``family`` column of
        the products table, which is the product id as text when the catalog has no families),
        and families it does not name cost nothing. Offers whose expected value is below their
        cost are dropped; 0 drops none.

    Raises
    ------
    ValueError
        If ``min_propensity`` is outside [0, 1], ``min_expected_value`` is not a finite number,
        or ``contact_cost`` is negative, not finite, or a mapping with another key or value.

    Examples
    --------
    >>> import numpy as np
    >>> rule = NotWorthProposing(min_expected_value=10.0)
    >>> rule.blocked(np.array([0.5, 0.5]), np.array([5.0, 50.0])).tolist()
    [True, False]
    >>> rule = NotWorthProposing(contact_cost=25.0)
    >>> rule.detail(np.array([0.031]), np.array([12.4]), value=np.array([400.0])).tolist()
    ['expected value 12.40 (propensity 0.031 x value 400) is below the 25.00 cost of proposing it']
    """

    name: str = "not_worth_proposing"
    min_expected_value: float = 0.0
    min_propensity: float = 0.0
    contact_cost: float | Mapping[str, float] = 0.0
    kind: RuleKind = field(default="suitability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "min_expected_value": [FINITE_FLOAT],
        "min_propensity": [Interval(numbers.Real, 0, 1, closed="both")],
        "contact_cost": [*CONTACT_COST],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the scores, after scoring: no event, no ended contract.

        Examples
        --------
        >>> NotWorthProposing().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block nothing before scoring; see :meth:`blocked`.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks
            Always empty.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> len(NotWorthProposing().blocks(RuleContext.at(Book.from_frames(contracts=c), "2024")))
        0
        """
        return Blocks.empty()

    def costs(self, families: Any) -> FloatArray:
        """Return the cost of proposing each product, from the products' families.

        Parameters
        ----------
        families : array-like of str
            Family of each product (one entry per product).

        Returns
        -------
        ndarray of float64
            One cost per product: ``contact_cost`` itself, or its entry for the product's
            family (0 for a family it does not name).

        Examples
        --------
        >>> rule = NotWorthProposing(contact_cost={"ERP": 40.0})
        >>> rule.costs(["CRM", "ERP", "ERP"]).tolist()
        [0.0, 40.0, 40.0]
        """
        labels = np.asarray(families, dtype=object).reshape(-1)
        cost = self.contact_cost
        if not isinstance(cost, Mapping):
            return np.full(labels.shape[0], float(cost), dtype=np.float64)
        table = pd.Series({str(k): float(v) for k, v in cost.items()}, dtype=np.float64)
        out = table.reindex(pd.Index(labels.astype(str))).to_numpy(dtype=np.float64)
        return np.asarray(np.nan_to_num(out, nan=0.0), dtype=np.float64)

    def _cost(self, cost: Any) -> FloatArray:
        if cost is not None:
            return np.asarray(cost, dtype=np.float64)
        if isinstance(self.contact_cost, Mapping):
            raise ValueError(
                f"{self.name}: contact_cost is given per product family, so the cost of each "
                "offer must be passed: cost=rule.costs(families)."
            )
        return np.asarray(float(self.contact_cost), dtype=np.float64)

    def blocked(self, propensity: Any, expected_value: Any, *, cost: Any = None) -> BoolArray:
        """Which scored offers are not worth proposing.

        Parameters
        ----------
        propensity : array-like of float
            Probability-like scores in [0, 1].
        expected_value : array-like of float
            Expected benefit of each offer, same shape.
        cost : array-like of float, optional
            Cost of proposing each offer (broadcast against ``propensity``); default
            ``contact_cost``, which must then be a float (see :meth:`costs`).

        Returns
        -------
        ndarray of bool
            True where the offer should not be made.

        Raises
        ------
        ValueError
            If ``contact_cost`` is a mapping and ``cost`` is not given.

        Examples
        --------
        >>> import numpy as np
        >>> NotWorthProposing().blocked(np.array([0.2, 0.2]), np.array([0.0, 3.0])).tolist()
        [True, False]
        >>> rule = NotWorthProposing(contact_cost=25.0)
        >>> rule.blocked(np.array([0.05, 0.1]), np.array([20.0, 40.0])).tolist()
        [True, False]
        """
        p = np.asarray(propensity, dtype=np.float64)
        ev = np.asarray(expected_value, dtype=np.float64)
        c = self._cost(cost)
        out: BoolArray = ~(ev > self.min_expected_value) | ~(p >= self.min_propensity)
        # a zero cost blocks nothing (not even a negative expected value, as before costs)
        out |= (c > 0) & ~(ev >= c)
        return out

    def detail(
        self, propensity: Any, expected_value: Any, *, value: Any = None, cost: Any = None
    ) -> TextArray:
        """One sentence per offer saying why it is not worth proposing ("" where it is).

        Parameters
        ----------
        propensity : array-like of float
        expected_value : array-like of float
        value : array-like of float, optional
            Value of each offer, to show the product behind the expected value.
        cost : array-like of float, optional
            As in :meth:`blocked`.

        Returns
        -------
        ndarray of object

        Raises
        ------
        ValueError
            If ``contact_cost`` is a mapping and ``cost`` is not given.

        Examples
        --------
        >>> import numpy as np
        >>> NotWorthProposing(min_propensity=0.1).detail(np.array([0.05]), np.array([4.0])).tolist()
        ['propensity 0.050 is below the minimum of 0.1']
        >>> NotWorthProposing(contact_cost=25.0).detail([0.05], [20.0]).tolist()
        ['expected value 20.00 is below the 25.00 cost of proposing it']
        """
        p = np.asarray(propensity, dtype=np.float64)
        ev = np.asarray(expected_value, dtype=np.float64)
        c = self._cost(cost)
        v = np.asarray(np.nan if value is None else value, dtype=np.float64)
        shape = np.broadcast_shapes(p.shape, ev.shape, c.shape, v.shape)

        def flat(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return np.broadcast_to(a, shape).reshape(-1)

        p, ev, c, v = flat(p), flat(ev), flat(c), flat(v)
        low_value = ~(ev > self.min_expected_value)
        low_p = ~(p >= self.min_propensity)
        under_cost = (c > 0) & ~(ev >= c)
        value_text = concat_text(
            "expected value ",
            format_numbers("%.2f", ev),
            f" is not above the minimum of {self.min_expected_value:g}",
        ).astype(str)
        p_text = concat_text(
            "propensity ",
            format_numbers("%.3f", p),
            f" is below the minimum of {self.min_propensity:g}",
        ).astype(str)
        product = np.where(
            np.isnan(v),
            "",
            concat_text(
                " (propensity ", format_numbers("%.3f", p), " x value ", _plain_numbers(v), ")"
            ).astype(str),
        )
        cost_text = concat_text(
            "expected value ",
            format_numbers("%.2f", ev),
            product,
            " is below the ",
            format_numbers("%.2f", c),
            " cost of proposing it",
        ).astype(str)
        out = np.where(
            under_cost, cost_text, np.where(low_value, value_text, np.where(low_p, p_text, ""))
        )
        return np.asarray(out, dtype=object).reshape(shape)
