"""The rule protocol, rules made from functions, and the constraints rules share."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol, get_args, runtime_checkable

import numpy as np
import pandas as pd

from crosssell._params import InstanceOf, Options, Satisfies, check_params
from crosssell.columns import Columns, RuleKind
from crosssell.rules._blocks import Blocks
from crosssell.rules._context import RuleContext

KINDS: Final = get_args(RuleKind)
_SCOPE: Final = Columns.scope


#: A rule's ``name``: it keys the rule in a policy and in the suppression log.
NAME: Final = InstanceOf(str, "a non-empty str", non_empty=True)

#: A rule's ``kind``: the stage of the policy it belongs to.
KIND: Final = Options(frozenset(KINDS))


def _is_finite_real(value: Any) -> bool:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    return bool(np.isfinite(float(value)))


#: A threshold that any finite number may set.
FINITE_FLOAT: Final = Satisfies(
    _is_finite_real,
    "a finite float",
    (float("inf"), float("nan"), "0"),
)


@runtime_checkable
class Rule(Protocol):
    """What a rule is: a name, a kind, and a vectorised ``blocks`` method.

    Built-in rules are frozen dataclasses; a user rule may be any object with these members, or a
    :class:`FunctionRule` (see :func:`rule`).

    Examples
    --------
    >>> from crosssell.rules import DoNotContact
    >>> isinstance(DoNotContact(), Rule)
    True
    """

    @property
    def name(self) -> str:
        """Unique name of the rule within a policy."""
        ...

    @property
    def kind(self) -> RuleKind:
        """``eligibility``, ``applicability``, ``suitability`` or ``contact``."""
        ...

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Return what the rule blocks at ``ctx.as_of``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionRule:
    """A user rule from a function of the context.

    The function returns :class:`Blocks`, or for convenience a boolean array with one entry per
    client (True = block every offer to that client), or a DataFrame in the caller's ids with a
    ``client_id`` column and optional ``product_id`` (missing = every product), ``detail`` and
    ``scope`` columns.

    Parameters
    ----------
    name : str
        Unique name within a policy; it appears in the suppression log.
    kind : {"eligibility", "applicability", "suitability", "contact"}
    func : callable
        ``func(ctx: RuleContext) -> Blocks | ndarray | DataFrame``.

    Raises
    ------
    ValueError
        If ``kind`` is not one of the four kinds.

    Examples
    --------
    >>> import numpy as np
    >>> r = FunctionRule(name="no_one", kind="contact",
    ...                  func=lambda ctx: np.zeros(ctx.n_clients, bool))
    >>> r.name, r.kind
    ('no_one', 'contact')
    """

    name: str
    kind: RuleKind
    func: Callable[[RuleContext], Any]

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "kind": [KIND],
        "func": ["callable"],
    }

    def __post_init__(self) -> None:
        check_params(self)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Call the function and turn its answer into Blocks.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Raises
        ------
        TypeError
            If the function returns something else than Blocks, a boolean array or a DataFrame.
        ValueError
            If a boolean array does not have one entry per client, or a DataFrame lacks
            ``client_id``.
        UnknownIdError
            If a DataFrame names ids the Book does not know.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P1"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> r = FunctionRule(name="vip", kind="contact",
        ...                  func=lambda ctx: pd.DataFrame({"client_id": ["C2"]}))
        >>> b = r.blocks(ctx)
        >>> b.client.tolist(), b.detail.tolist()
        ([1], ['blocked by rule vip'])
        """
        answer = self.func(ctx)
        default = f"blocked by rule {self.name}"
        if isinstance(answer, Blocks):
            return answer
        if isinstance(answer, pd.DataFrame):
            return self._from_frame(ctx, answer, default)
        if isinstance(answer, np.ndarray | pd.Series) and np.asarray(answer).dtype == np.bool_:
            mask = np.asarray(answer, dtype=bool).reshape(-1)
            if mask.shape[0] != ctx.n_clients:
                raise ValueError(
                    f"Rule {self.name!r} returned a boolean array of {mask.shape[0]} entries; "
                    f"a client mask needs one per client ({ctx.n_clients})."
                )
            return Blocks.clients(np.flatnonzero(mask), default)
        raise TypeError(
            f"Rule {self.name!r} returned {type(answer).__name__}; a rule function must return "
            "Blocks, a boolean numpy array over clients, or a DataFrame with a 'client_id' column."
        )

    def _from_frame(self, ctx: RuleContext, frame: pd.DataFrame, default: str) -> Blocks:
        if Columns.client not in frame.columns:
            raise ValueError(
                f"Rule {self.name!r} returned a DataFrame without a {Columns.client!r} column "
                f"(columns: {list(frame.columns)}); name the clients to block there."
            )
        client = ctx.book.client_ids.to_index(frame[Columns.client])
        product = np.full(len(frame), -1, dtype=np.int64)
        if Columns.product in frame.columns:
            given = frame[Columns.product].notna().to_numpy(dtype=bool)
            product[given] = ctx.book.product_ids.to_index(frame.loc[given, Columns.product])
        detail: Any = default
        if Columns.detail in frame.columns:
            detail = (
                frame[Columns.detail].astype(object).fillna(default).astype(str).to_numpy(object)
            )
        scope: Any = "any"
        if _SCOPE in frame.columns:
            scope = frame[_SCOPE].astype(object).fillna("any").to_numpy(dtype=object)
        return Blocks(client=client, product=product, detail=detail, scope=scope)


def rule(
    *, name: str | None = None, kind: RuleKind = "applicability"
) -> Callable[[Callable[[RuleContext], Any]], FunctionRule]:
    """Decorate a function of the context to make it a rule.

    Parameters
    ----------
    name : str, optional
        Name of the rule; the function's name when omitted.
    kind : {"eligibility", "applicability", "suitability", "contact"}, default "applicability"

    Returns
    -------
    callable
        A decorator returning a :class:`FunctionRule`.

    Examples
    --------
    >>> import numpy as np
    >>> @rule(kind="contact")
    ... def nobody(ctx):
    ...     return np.zeros(ctx.n_clients, dtype=bool)
    >>> nobody
    FunctionRule(name='nobody', kind='contact', func=<function nobody at ...>)
    """

    def wrap(func: Callable[[RuleContext], Any]) -> FunctionRule:
        return FunctionRule(
            name=name or str(getattr(func, "__name__", "user_rule")), kind=kind, func=func
        )

    return wrap
