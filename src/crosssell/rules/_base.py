"""The rule protocol, rules made from functions, and the constraints rules share."""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol, get_args, runtime_checkable

import numpy as np
import pandas as pd

from crosssell._params import InstanceOf, Options, Satisfies, check_params
from crosssell.columns import Columns, RuleKind
from crosssell.rules._blocks import Blocks
from crosssell.rules._context import RuleContext, reading_as

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


def _is_look_back(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, dt.timedelta | np.timedelta64) or pd.isna(value):
        return False
    return bool(pd.Timedelta(value) >= pd.Timedelta(0))


def _is_event_reads(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k.strip() != "" and _is_look_back(v) for k, v in value.items()
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reads:
    """What a rule reads of a Book at ``as_of``, beyond the tables every rule may read.

    Every rule may read the contracts active at ``as_of`` (``ctx.holdings``), the client and
    product tables and its own parameters. A rule says what else it reads in its ``reads``
    attribute; the built-in rules derive it from their parameters. Spark scoring ships only the
    rows the policy's rules read (see :attr:`Policy.reads`), and ``recommend_one`` with new
    events reruns only the rules that read events. A rule without ``reads`` may read anything:
    every row then travels, and ``recommend_one`` takes the full path.

    The declaration is a promise: a rule that reads more than it declares (an older event, an
    ended contract) sees less in Spark than on one machine, and its offers may differ.

    Parameters
    ----------
    events : mapping of str to timedelta or None, default {}
        Each event type the rule reads, with its look-back before ``as_of``: events older than
        ``as_of - look_back`` are not read. ``None`` reads events of that type of any age.
        Look-backs are kept as :class:`pandas.Timedelta`.
    ended_contracts : bool, default False
        Whether the rule reads contracts ended by ``as_of``.
    other_clients : bool, default False
        Whether what the rule blocks for one client depends on other clients' rows (as
        :class:`GroupHeld` reads the parent's contracts). ``recommend_one`` with new events
        then answers on the full path.

    Raises
    ------
    InvalidParameterError
        If ``events`` is not a mapping of event types to non-negative timedeltas or None, or
        a flag is not a bool.

    Examples
    --------
    >>> import pandas as pd
    >>> r = Reads(events={"offer_accepted": pd.Timedelta(days=30)})
    >>> r.events, r.ended_contracts
    ({'offer_accepted': Timedelta('30 days 00:00:00')}, False)
    >>> from crosssell.rules import RecentDecline
    >>> RecentDecline(days=60).reads.events
    {'offer_declined': Timedelta('60 days 00:00:00')}
    """

    events: Mapping[str, pd.Timedelta | None] = field(default_factory=dict)
    ended_contracts: bool = False
    other_clients: bool = False

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "events": [
            Satisfies(
                _is_event_reads,
                "a mapping of event types (str) to non-negative timedeltas or None",
                ({"offer_made": 30}, {"offer_made": pd.Timedelta(days=-1)}, {"": None}),
            )
        ],
        "ended_contracts": ["boolean"],
        "other_clients": ["boolean"],
    }

    def __post_init__(self) -> None:
        check_params(self)
        events = {
            str(k): None if v is None else pd.Timedelta(v) for k, v in sorted(self.events.items())
        }
        object.__setattr__(self, "events", events)

    def __hash__(self) -> int:
        return hash((tuple(self.events.items()), self.ended_contracts, self.other_clients))

    @classmethod
    def of(cls, rule: Any) -> Reads | None:
        """Return what a rule declares it reads, or None when it declares nothing.

        Parameters
        ----------
        rule : Rule
            Any rule; its ``reads`` attribute is read when it is a :class:`Reads`.

        Returns
        -------
        Reads or None
            None for a rule that may read anything.

        Examples
        --------
        >>> from crosssell.rules import ContactCap, FunctionRule
        >>> Reads.of(ContactCap(days=14)).events
        {'offer_made': Timedelta('14 days 00:00:00')}
        >>> Reads.of(FunctionRule(name="mine", kind="contact", func=len)) is None
        True
        """
        declared = getattr(rule, "reads", None)
        return declared if isinstance(declared, Reads) else None

    @classmethod
    def union(cls, items: Iterable[Reads]) -> Reads:
        """Return what a set of rules reads together.

        Event types are united, each with the longest look-back (``None``, any age, wins);
        ended contracts and other clients are read when any one reads them.

        Parameters
        ----------
        items : iterable of Reads

        Returns
        -------
        Reads
            ``Reads()`` (nothing beyond the tables every rule reads) when ``items`` is empty.

        Examples
        --------
        >>> import pandas as pd
        >>> a = Reads(events={"offer_made": pd.Timedelta(days=30)})
        >>> b = Reads(events={"offer_made": pd.Timedelta(days=90), "need": None})
        >>> Reads.union([a, b]).events
        {'need': None, 'offer_made': Timedelta('90 days 00:00:00')}
        """
        events: dict[str, pd.Timedelta | None] = {}
        ended = other = False
        for item in items:
            for kind, back in item.events.items():
                before = events.get(kind, pd.Timedelta(0))
                events[kind] = None if back is None or before is None else max(back, before)
            ended |= item.ended_contracts
            other |= item.other_clients
        return cls(events=events, ended_contracts=ended, other_clients=other)


@runtime_checkable
class Rule(Protocol):
    """What a rule is: a name, a kind, and a vectorised ``blocks`` method.

    Built-in rules are frozen dataclasses; a user rule may be any object with these members, or a
    :class:`FunctionRule` (see :func:`rule`). A rule may also have a ``reads`` attribute, a
    :class:`Reads` saying what it reads beyond the active contracts and the client and product
    tables; it is optional (read with :meth:`Reads.of`), and a rule without it may read anything.

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
    reads : Reads, optional
        What the function reads beyond the active contracts and the client and product tables:
        the event types and their look-backs, whether ended contracts or other clients' rows.
        Without it the rule may read anything, so Spark ships every row and ``recommend_one``
        with new events takes the full path. What the function reads through
        ``ctx.events`` is checked against it on every Book: an undeclared event type, or a
        look-back longer than declared, raises a ``ValueError`` naming the rule (what it reads
        from ``ctx.book`` directly cannot be checked: declare that too).

    Raises
    ------
    ValueError
        If ``kind`` is not one of the four kinds.

    Examples
    --------
    >>> import numpy as np
    >>> r = FunctionRule(name="no_one", kind="contact",
    ...                  func=lambda ctx: np.zeros(ctx.n_clients, bool))
    >>> r.name, r.kind, r.reads
    ('no_one', 'contact', None)
    >>> import pandas as pd
    >>> def rested(ctx):
    ...     accepted = ctx.events("offer_accepted", days=30)
    ...     return Blocks.clients(accepted["client_idx"].to_numpy(), "accepted an offer lately")
    >>> r = FunctionRule(name="rested", kind="contact", func=rested,
    ...                  reads=Reads(events={"offer_accepted": pd.Timedelta(days=30)}))
    >>> r.reads.events
    {'offer_accepted': Timedelta('30 days 00:00:00')}
    """

    name: str
    kind: RuleKind
    func: Callable[[RuleContext], Any]
    reads: Reads | None = None

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "kind": [KIND],
        "func": ["callable"],
        "reads": [Reads, None],
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
            If a DataFrame names ids the Book does not know (clients outside a partial
            context's Book excepted: see :class:`RuleContext`).

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
        if self.reads is None:
            answer = self.func(ctx)
        else:
            # what it reads through ctx.events must be declared (see reading_as)
            with reading_as(self.name, self.reads.events):
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
        if ctx.partial:
            # a batch of fresh frames: clients the frame names outside the batch are not its own
            client = ctx.book.client_ids.to_index(frame[Columns.client], missing="ignore")
            if (client < 0).any():
                frame = frame.loc[client >= 0]
                client = client[client >= 0]
        else:
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
    *, name: str | None = None, kind: RuleKind = "applicability", reads: Reads | None = None
) -> Callable[[Callable[[RuleContext], Any]], FunctionRule]:
    """Decorate a function of the context to make it a rule.

    Parameters
    ----------
    name : str, optional
        Name of the rule; the function's name when omitted.
    kind : {"eligibility", "applicability", "suitability", "contact"}, default "applicability"
    reads : Reads, optional
        What the function reads (see :class:`FunctionRule`); without it, anything.

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
    FunctionRule(name='nobody', kind='contact', func=<function nobody at ...>, reads=None)
    >>> @rule(kind="contact", reads=Reads())
    ... def also_nobody(ctx):
    ...     return np.zeros(ctx.n_clients, dtype=bool)
    >>> also_nobody.reads.events
    {}
    """

    def wrap(func: Callable[[RuleContext], Any]) -> FunctionRule:
        return FunctionRule(
            name=name or str(getattr(func, "__name__", "user_rule")),
            kind=kind,
            func=func,
            reads=reads,
        )

    return wrap
