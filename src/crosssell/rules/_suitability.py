"""Suitability rules: whether an offer suits the client now, and whether it is worth making."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from crosssell._codec import register
from crosssell._params import Interval, check_params
from crosssell.columns import Columns, EventType, RuleKind
from crosssell.rules._base import FINITE_FLOAT, NAME
from crosssell.rules._blocks import Blocks
from crosssell.rules._common import (
    DAY_NS,
    BoolArray,
    TextArray,
    concat_text,
    format_numbers,
    iso_dates,
    to_ns,
)
from crosssell.rules._context import RuleContext

_CLIENT_IDX: Final = Columns.client_idx


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
        if self.days == 0:
            return Blocks.empty()
        ev = ctx.events(EventType.churn_signal, days=self.days)
        if len(ev) == 0:
            return Blocks.empty()
        frame = pd.DataFrame(
            {"c": ev[_CLIENT_IDX].to_numpy(dtype=np.int64), "t": to_ns(ev[Columns.date])}
        ).drop_duplicates("c", keep="last")
        t = frame["t"].to_numpy(dtype=np.int64)
        text = concat_text(
            "churn signal on ",
            iso_dates(t),
            "; offers resume on ",
            iso_dates(t + self.days * DAY_NS),
        )
        return Blocks.clients(frame["c"].to_numpy(dtype=np.int64), text)


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class NotWorthProposing:
    """Offer nothing rather than a weak offer: applied after scoring, by arbitration.

    An offer is worth proposing when its expected value is above ``min_expected_value`` and its
    propensity is at least ``min_propensity``; a missing value is not worth proposing.

    Parameters
    ----------
    name : str, default "not_worth_proposing"
    min_expected_value : float, default 0.0
        Expected values at or below it are dropped (so by default an offer must be worth
        something).
    min_propensity : float, default 0.0
        Propensities below it are dropped (0 to 1).

    Raises
    ------
    ValueError
        If ``min_propensity`` is outside [0, 1] or ``min_expected_value`` is not a finite number.

    Examples
    --------
    >>> import numpy as np
    >>> rule = NotWorthProposing(min_expected_value=10.0)
    >>> rule.blocked(np.array([0.5, 0.5]), np.array([5.0, 50.0])).tolist()
    [True, False]
    """

    name: str = "not_worth_proposing"
    min_expected_value: float = 0.0
    min_propensity: float = 0.0
    kind: RuleKind = field(default="suitability", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "min_expected_value": [FINITE_FLOAT],
        "min_propensity": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __post_init__(self) -> None:
        check_params(self)

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

    def blocked(self, propensity: Any, expected_value: Any) -> BoolArray:
        """Which scored offers are not worth proposing.

        Parameters
        ----------
        propensity : array-like of float
            Probability-like scores in [0, 1].
        expected_value : array-like of float
            Expected benefit of each offer, same shape.

        Returns
        -------
        ndarray of bool
            True where the offer should not be made.

        Examples
        --------
        >>> import numpy as np
        >>> NotWorthProposing().blocked(np.array([0.2, 0.2]), np.array([0.0, 3.0])).tolist()
        [True, False]
        """
        p = np.asarray(propensity, dtype=np.float64)
        ev = np.asarray(expected_value, dtype=np.float64)
        out: BoolArray = ~(ev > self.min_expected_value) | ~(p >= self.min_propensity)
        return out

    def detail(self, propensity: Any, expected_value: Any) -> TextArray:
        """One sentence per offer saying why it is not worth proposing ("" where it is).

        Parameters
        ----------
        propensity : array-like of float
        expected_value : array-like of float

        Returns
        -------
        ndarray of object

        Examples
        --------
        >>> import numpy as np
        >>> NotWorthProposing(min_propensity=0.1).detail(np.array([0.05]), np.array([4.0])).tolist()
        ['propensity 0.050 is below the minimum of 0.1']
        """
        p = np.asarray(propensity, dtype=np.float64)
        ev = np.asarray(expected_value, dtype=np.float64)
        shape = np.broadcast_shapes(p.shape, ev.shape)
        p, ev = np.broadcast_to(p, shape).reshape(-1), np.broadcast_to(ev, shape).reshape(-1)
        low_value = ~(ev > self.min_expected_value)
        low_p = ~(p >= self.min_propensity)
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
        out = np.where(low_value, value_text, np.where(low_p, p_text, ""))
        return np.asarray(out, dtype=object).reshape(shape)
