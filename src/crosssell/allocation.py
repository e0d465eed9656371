"""Plan the whole book at once: capacity, quotas and mix as one integer program.

:func:`allocate` chooses which candidate actions (offers, or the account plan's actions) to
carry out under constraints that cross clients and managers, maximising their summed expected
value. Its linear relaxation is solved first (HiGHS through :func:`scipy.optimize.linprog`):
when it is integral the plan is optimal, and its duals give every binding constraint its shadow
price, what one more unit of it would be worth. Otherwise the integer program is solved with
HiGHS (``highspy``) up to a stated gap, started from the better of two quick plans that meet
every constraint, and compared with the greedy choice.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

from crosssell.columns import Columns

if TYPE_CHECKING:
    from crosssell.account_plan import AccountPlan
    from crosssell.book import Book


__all__ = ["Allocation", "Constraints", "InfeasibleConstraintsError", "allocate"]

_TOL = 1e-6
# above this many candidate rows, conflicts are found on the linear relaxation
_EXACT_CONFLICT_ROWS = 5000


class InfeasibleConstraintsError(ValueError):
    """The constraints given to :func:`allocate` cannot all hold; ``conflict`` names them.

    Examples
    --------
    >>> err = InfeasibleConstraintsError("no", ["capacity of AM01 <= 1", "must include: 2 rows"])
    >>> err.conflict
    ['capacity of AM01 <= 1', 'must include: 2 rows']
    """

    def __init__(self, message: str, conflict: Sequence[str]) -> None:
        super().__init__(message)
        self.conflict = list(conflict)


Bound = tuple[float | None, float | None]


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """What a plan of the whole book must respect (every field optional).

    Parameters
    ----------
    capacity : float or mapping of str to float, optional
        Per owner (account manager): how many actions (or hours, with ``effort``) fit in the
        period. One number for every owner, or a mapping owner -> capacity (owners it does not
        name are not limited).
    effort : float or mapping of str to float, optional
        Hours one action takes, per action type (the ``action`` column of a plan, or
        ``offer_type`` of offers); types it does not name take 1. Without it, capacity counts
        actions.
    per_client : int or None, default 1
        At most this many actions per client in the period.
    product_quota, family_quota : mapping of str to (min, max), optional
        Per product id or family: the least and most actions chosen (``None`` for no bound on
        that side), e.g. ``{"ERP": (None, 40)}``.
    family_share : mapping of str to float, optional
        Least share of the chosen actions that must be in each family, e.g. ``{"SEC": 0.3}``.
    must_include : str, optional
        A :meth:`pandas.DataFrame.query` over the candidates whose rows must all be chosen, e.g.
        ``"action == 'renew' and value >= 5000"``.
    exclude : str, optional
        A query whose rows may not be chosen (hard exclusions beyond the policy's blocks, which
        never reach the candidates).

    Examples
    --------
    >>> Constraints(capacity=25, family_share={"SEC": 0.3}).per_client
    1
    """

    capacity: float | Mapping[str, float] | None = None
    effort: float | Mapping[str, float] | None = None
    per_client: int | None = 1
    product_quota: Mapping[str, Bound] = field(default_factory=dict)
    family_quota: Mapping[str, Bound] = field(default_factory=dict)
    family_share: Mapping[str, float] = field(default_factory=dict)
    must_include: str | None = None
    exclude: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constraints:
        """Constraints from plain data (a parsed YAML or JSON file), keys checked.

        Parameters
        ----------
        data : mapping
            Keys among the fields of :class:`Constraints`; quotas as ``[min, max]`` lists.

        Returns
        -------
        Constraints

        Raises
        ------
        ValueError
            On an unknown key (with the closest known one) or a malformed value.

        Examples
        --------
        >>> Constraints.from_dict({"capacity": 5, "family_quota": {"ERP": [None, 40]}})
        ... # doctest: +ELLIPSIS
        Constraints(capacity=5, ..., family_quota={'ERP': (None, 40)}, ...)
        """
        import difflib

        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            hints = [
                f"{k!r}" + (f" (did you mean {m[0]!r}?)" if m else "")
                for k in unknown
                for m in [difflib.get_close_matches(k, known, n=1)]
            ]
            raise ValueError(
                f"constraints: unknown keys {', '.join(hints)}; known keys are "
                f"{', '.join(sorted(known))}"
            )
        out = dict(data)
        for key in ("product_quota", "family_quota"):
            quotas = out.get(key) or {}
            if not isinstance(quotas, Mapping):
                raise ValueError(f"constraints: {key} must map ids to [min, max]; got {quotas!r}")
            parsed = {}
            for name, pair in quotas.items():
                if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
                    raise ValueError(
                        f"constraints: {key}[{name!r}] must be [min, max] (null for no bound); "
                        f"got {pair!r}"
                    )
                parsed[str(name)] = (pair[0], pair[1])
            out[key] = parsed
        return cls(**out)


@dataclass(frozen=True)
class _Row:
    """One linear constraint: ``lo <= coef @ x <= hi`` over the candidates."""

    name: str
    kind: str
    index: npt.NDArray[np.int64]
    coef: npt.NDArray[np.float64]
    lo: float
    hi: float
    group: str


@dataclass(frozen=True)
class Allocation:
    """What :func:`allocate` chose, why, and what each binding constraint is worth.

    Attributes
    ----------
    rows : pandas.DataFrame
        Every candidate, with ``chosen`` (bool) and ``why`` (the sentence saying why it was
        chosen or dropped), in the candidates' order.
    objective : float
        Summed objective of the chosen rows.
    greedy_objective : float
        Summed objective of the greedy choice (best first, skipping what breaks a limit).
    greedy_feasible : bool
        Whether the greedy choice meets every constraint (minimums and shares included).
    shadow_prices : pandas.DataFrame
        One row per binding constraint of the linear relaxation: ``constraint``, ``kind``,
        ``shadow_price`` (objective gained per unit more of its bound) and ``sentence``.
    status : str
        ``"optimal"`` or ``"time limit"`` (then ``gap`` says how far from proven optimal).
    gap : float
        Relative optimality gap reported by the solver (0 when proven optimal).
    seconds : float
        Time spent solving.

    Examples
    --------
    >>> import pandas as pd
    >>> offers = pd.DataFrame({"client_id": ["A", "A", "B"], "product_id": ["X", "Y", "X"],
    ...                        "owner": "AM1", "expected_value": [5.0, 4.0, 3.0]})
    >>> result = allocate(offers, Constraints(capacity=1))
    >>> result.chosen["product_id"].tolist(), result.objective
    (['X'], 5.0)
    """

    rows: pd.DataFrame
    objective: float
    greedy_objective: float
    greedy_feasible: bool
    shadow_prices: pd.DataFrame
    status: str
    gap: float
    seconds: float

    @property
    def chosen(self) -> pd.DataFrame:
        """The chosen rows, in the candidates' order.

        Examples
        --------
        >>> import pandas as pd
        >>> offers = pd.DataFrame({"client_id": ["A", "B"], "product_id": ["X", "X"],
        ...                        "expected_value": [1.0, 2.0]})
        >>> result = allocate(offers, Constraints(product_quota={"X": (None, 1)}))
        >>> result.chosen["client_id"].tolist()
        ['B']
        """
        return self.rows[self.rows["chosen"]]

    @property
    def dropped(self) -> pd.DataFrame:
        """The rows left out, each with its reason in ``why``.

        Examples
        --------
        >>> import pandas as pd
        >>> offers = pd.DataFrame({"client_id": ["A", "B", "C"], "owner": "AM1",
        ...                        "expected_value": [1.0, 2.0, 3.0]})
        >>> allocate(offers, Constraints(capacity=2)).dropped[["client_id", "why"]].values.tolist()
        [['A', 'dropped: capacity of AM1 is full (2 of 2)']]
        """
        return self.rows[~self.rows["chosen"]]

    def summary(self) -> pd.DataFrame:
        """Optimised against greedy: objective, number chosen, feasibility, status and gap.

        Examples
        --------
        >>> import pandas as pd
        >>> offers = pd.DataFrame({"client_id": ["A"], "product_id": ["X"],
        ...                        "expected_value": [1.0]})
        >>> allocate(offers, Constraints()).summary()["objective"].tolist()
        [1.0, 1.0]
        """
        return pd.DataFrame(
            {
                "plan": ["optimised", "greedy"],
                "objective": [self.objective, self.greedy_objective],
                "feasible": [True, self.greedy_feasible],
                "status": [self.status, ""],
                "gap": [self.gap, np.nan],
            }
        )


def allocate(  # noqa: PLR0912, PLR0915 - one pass: read, prune, relax, solve, explain
    candidates: pd.DataFrame | AccountPlan,
    constraints: Constraints | Mapping[str, Any] | None = None,
    *,
    book: Book | None = None,
    objective: str | None = None,
    time_limit: float = 60.0,
    gap: float = 1e-4,
) -> Allocation:
    """Choose the actions of the whole book that maximise ``objective`` under ``constraints``.

    Each candidate row (an offer, or an account plan's action) is chosen or not; the choice
    maximises the summed ``objective`` subject to per-owner capacity (counts or hours), a
    per-client cap, product and family quotas, family shares of the mix, rows that must be
    chosen and rows that may not. When the linear relaxation is not integral, the integer
    program is solved by HiGHS within ``time_limit`` seconds to a relative ``gap``, warm-started
    from the better feasible one of the greedy choice and the relaxation rounded down and filled
    greedily; the greedy choice (best first, skipping a row that would break a limit) is
    reported beside it, and kept if the solver stops at its time limit with something worse.
    Shadow prices come from the linear relaxation.

    Parameters
    ----------
    candidates : DataFrame or AccountPlan
        Rows with ``client_id`` and ``objective``; ``owner`` and ``family`` are read from
        ``book`` when absent (and needed). An :class:`~crosssell.account_plan.AccountPlan`
        gives its actions other than ``none``.
    constraints : Constraints or mapping, optional
        What must hold (see :class:`Constraints`; a mapping goes through
        :meth:`Constraints.from_dict`). Default: at most one action per client.
    book : Book, optional
        Where owners (clients table) and families (products table) are read from.
    objective : str, optional
        Column maximised: ``expected_value`` for offers, ``priority`` for an account plan (the
        plan's common scale for renewals, complaints, proposals and check-ins). A missing value
        counts 0.
    time_limit : float, default 60
        Seconds the solver may take.
    gap : float, default 1e-4
        Relative optimality gap at which the solver stops.

    Returns
    -------
    Allocation

    Raises
    ------
    InfeasibleConstraintsError
        When the constraints cannot all hold; the message names a smallest conflicting set.
    ValueError
        When a needed column is missing, an objective value is not finite, or a constraint is
        malformed (the message names it).

    Examples
    --------
    >>> import pandas as pd
    >>> offers = pd.DataFrame({
    ...     "client_id": ["A", "A", "B", "C"],
    ...     "product_id": ["ERP-1", "SEC-1", "SEC-1", "ERP-1"],
    ...     "family": ["ERP", "SEC", "SEC", "ERP"],
    ...     "owner": ["AM1", "AM1", "AM1", "AM2"],
    ...     "expected_value": [10.0, 6.0, 3.0, 8.0]})
    >>> result = allocate(offers, Constraints(capacity=1, family_share={"SEC": 0.5}))
    >>> result.chosen[["client_id", "product_id"]].values.tolist()
    [['A', 'SEC-1'], ['C', 'ERP-1']]
    >>> result.objective, result.greedy_objective, result.greedy_feasible
    (14.0, 18.0, False)
    """
    started = time.perf_counter()
    if constraints is None:
        constraints = Constraints()
    elif not isinstance(constraints, Constraints):
        constraints = Constraints.from_dict(constraints)
    if objective is None:
        objective = Columns.expected_value if isinstance(candidates, pd.DataFrame) else "priority"
    frame = _candidates(candidates, book, constraints, objective)
    value = frame[objective].to_numpy(dtype=np.float64, na_value=0.0)
    bad = ~np.isfinite(value)
    if bad.any():
        raise ValueError(
            f"allocate: candidates column {objective!r} has {int(bad.sum())} rows that are not "
            f"finite numbers, e.g. rows {np.flatnonzero(bad)[:5].tolist()}"
        )
    n = len(frame)
    lower = np.zeros(n)
    upper = np.ones(n)
    must = _query(frame, constraints.must_include, "must_include")
    banned = _query(frame, constraints.exclude, "exclude")
    both = must & banned
    if both.any():
        raise InfeasibleConstraintsError(
            f"allocate: {int(both.sum())} rows are both in must_include and exclude, e.g. "
            f"{frame.loc[both].head(3).to_dict('records')}",
            ["must_include", "exclude"],
        )
    lower[must] = 1.0
    upper[banned] = 0.0
    if n == 0:
        empty = frame.assign(chosen=np.zeros(0, bool), why=np.zeros(0, object))
        return Allocation(empty, 0.0, 0.0, True, _no_prices(), "optimal", 0.0, 0.0)

    # rows no optimal plan can hold are left out of the program (see _dominated)
    live = np.flatnonzero(~banned & ~_dominated(frame, constraints, value, must, banned))
    sub = frame.iloc[live].reset_index(drop=True)
    rows = _rows(sub, constraints)
    groups = {r.group for r in rows}
    if must.any():
        groups.add("must_include")
    v, lo_x, hi_x = value[live], lower[live], upper[live]

    # every row excluded: nothing to choose, an empty plan (minimums are checked on it)
    relaxed = _relaxation(v, rows, lo_x, hi_x) if live.size else _empty_relaxation(rows)
    if relaxed is None:
        _raise_conflict(len(live), rows, lower=lo_x, upper=hi_x, must=must[live], groups=groups)
    x_lp, bound, prices = relaxed
    fractional = (x_lp > _TOL) & (x_lp < 1 - _TOL)
    x_sub: npt.NDArray[np.float64] | None
    if not fractional.any():
        x_sub, status, mip_gap = np.round(x_lp), "optimal", 0.0
    else:
        # the solver starts from the best of quick plans that meet every constraint: best
        # first, the relaxation rounded down then filled best first, and both of these kept
        # above the lower bounds an empty plan meets (a family's share) all along
        rounded = _greedy(v, rows, np.where(x_lp > 1 - _TOL, 1.0, lo_x), hi_x)
        kept = _keeping_lower_bounds(rows)
        quick = [
            x
            for x in (
                _greedy(v, rows, lo_x, hi_x),
                rounded,
                _filled(v, kept, lo_x, hi_x),
                _filled(v, kept, np.where(x_lp > 1 - _TOL, 1.0, lo_x), hi_x),
            )
            if _feasible(x, rows)
        ]
        start = max(quick, key=lambda x: float(v @ x)) if quick else None
        spent = time.perf_counter() - started
        x_sub, status, mip_gap = _solve(
            v,
            rows,
            lower=lo_x,
            upper=hi_x,
            time_limit=max(time_limit - spent, 1.0),
            gap=gap,
            start=start,
        )
        if x_sub is None and status == "infeasible":
            _raise_conflict(len(live), rows, lower=lo_x, upper=hi_x, must=must[live], groups=groups)
        if x_sub is None:
            # out of time without an integer plan: the relaxation rounded down, then filled
            x_sub = rounded
        if status != "optimal":
            # the relaxation bounds the optimum too (HiGHS may stop before it has a bound)
            lp_gap = (bound - float(v @ x_sub)) / max(abs(bound), _TOL)
            mip_gap = lp_gap if not math.isfinite(mip_gap) else min(mip_gap, lp_gap)
    x = np.zeros(n)
    x[live] = x_sub
    rows_all = _rows(frame, constraints)
    greedy = _greedy(value, rows_all, lower, upper)
    greedy_ok = _feasible(greedy, rows_all)
    greedy_obj = float(value @ greedy)
    if status != "optimal" and greedy_ok and greedy_obj > float(value @ x) + _TOL:
        x = greedy
    chosen = x > 0.5
    out = frame.assign(
        chosen=chosen, why=_why(frame, chosen, rows=rows_all, must=must, banned=banned, value=value)
    )
    return Allocation(
        rows=out,
        objective=float(value @ chosen),
        greedy_objective=greedy_obj,
        greedy_feasible=greedy_ok,
        shadow_prices=prices,
        status=status,
        gap=float(mip_gap),
        seconds=time.perf_counter() - started,
    )


def _empty_relaxation(
    rows: Sequence[_Row],
) -> tuple[npt.NDArray[np.float64], float, pd.DataFrame] | None:
    """Relax a program over no row at all: feasible when every lower bound allows zero."""
    if any(r.lo > _TOL for r in rows):
        return None
    return np.zeros(0), 0.0, _no_prices()


def _dominated(
    frame: pd.DataFrame,
    c: Constraints,
    value: npt.NDArray[np.float64],
    must: npt.NDArray[np.bool_],
    banned: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Rows no optimal plan needs: C better rows of the same kind on other clients of the owner.

    An owner fits at most C actions (its capacity over the least effort of its rows). If a row
    has, in its owner and of the same kind (the same product when products have quotas, the
    same family when families have constraints, the same action type when efforts differ),
    better rows that may be chosen on C clients other than its own, one of those clients has no
    action in any plan that holds the row, and swapping the row for that client's better one
    keeps every constraint and raises the objective. Such rows are left out of the program (ties
    go by row order, so a plan of the same value is kept). Must-include rows are never left
    out, and excluded rows never count as better. Nor do rows of a client that other owners
    also hold rows of: that client may have an action from another owner, and the swap would
    break its limits.
    """
    n = len(frame)
    out = np.zeros(n, dtype=bool)
    if c.capacity is None or Columns.owner not in frame.columns:
        return out
    effort = _effort(frame, c.effort)
    owner = frame[Columns.owner].astype(object)
    caps = (
        owner.map({str(k): v for k, v in c.capacity.items()})
        if isinstance(c.capacity, Mapping)
        else pd.Series(float(c.capacity), index=frame.index)
    ).to_numpy(dtype=np.float64, na_value=np.nan)
    least = pd.Series(effort).groupby(owner.to_numpy()).transform("min").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        most = np.where(least > 0, np.floor(caps / least + _TOL), np.inf)
    keys: list[Any] = [owner.to_numpy()]
    if c.product_quota:
        keys.append(frame[Columns.product].astype(object).to_numpy())
    if c.family_quota or c.family_share:
        keys.append(frame[Columns.family].astype(object).to_numpy())
    if isinstance(c.effort, Mapping):
        keys.append(effort)
    group = (
        pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
        .groupby([f"k{i}" for i in range(len(keys))], sort=False, dropna=False)
        .ngroup()
        .to_numpy()
    )
    # excluded rows go last in their group, and count for nothing (see below)
    order = np.lexsort((np.arange(n), -value, banned, group))
    g = group[order]
    client_code = pd.factorize(frame[Columns.client].astype(object))[0]
    client = client_code[order]
    # a client of one owner only has no action at all in a plan without its row of that owner
    owners = pd.Series(frame[Columns.owner].astype(object).to_numpy()).groupby(client_code)
    alone = (owners.transform("nunique") <= 1).to_numpy()
    fresh = (
        ~pd.DataFrame({"g": g, "c": client}).duplicated().to_numpy() & ~banned[order] & alone[order]
    )
    first = fresh.astype(np.int64)
    seen = np.cumsum(first)
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    before: npt.NDArray[np.int64] = (
        seen - first - np.repeat(seen[start] - first[start], np.diff(np.r_[start, n]))
    )
    # ``before``: distinct clients among the better rows of the group (the row's own included)
    drop = (before >= most[order] + 1) & np.isfinite(caps[order]) & ~must[order]
    out[order[drop]] = True
    return out


# ---------------------------------------------------------------------- candidates
def _candidates(
    candidates: Any, book: Book | None, constraints: Constraints, objective: str
) -> pd.DataFrame:
    if isinstance(candidates, pd.DataFrame):
        frame = candidates
    elif isinstance(getattr(candidates, "actions", None), pd.DataFrame):
        # an account plan (not imported here: it imports this module): its actions but "none"
        frame = candidates.actions[candidates.actions[Columns.action] != "none"]
    else:
        raise TypeError(
            "allocate expects a DataFrame of candidate actions or an AccountPlan; got "
            f"{type(candidates).__name__}"
        )
    frame = frame.reset_index(drop=True)
    for column in (Columns.client, objective):
        if column not in frame.columns:
            raise ValueError(
                f"allocate: the candidates ({len(frame)} rows) have no {column!r} column; "
                f"columns are {list(frame.columns)}"
            )
    needs_owner = constraints.capacity is not None
    if needs_owner and Columns.owner not in frame.columns:
        frame = frame.assign(owner=_lookup(book, "client", frame[Columns.client], Columns.owner))
    needs_family = bool(constraints.family_quota or constraints.family_share)
    if needs_family and Columns.family not in frame.columns:
        if Columns.product not in frame.columns:
            raise ValueError(
                "allocate: family quotas and shares need a 'family' or 'product_id' column"
            )
        frame = frame.assign(family=_lookup(book, "product", frame[Columns.product], "family"))
    if constraints.product_quota and Columns.product not in frame.columns:
        raise ValueError("allocate: product quotas need a 'product_id' column")
    return frame


def _lookup(book: Book | None, table: str, ids: pd.Series, column: str) -> pd.Series:
    what = "owners" if column == Columns.owner else "families"
    if book is None:
        raise ValueError(
            f"allocate: the constraints need {what}: give the candidates a {column!r} column, "
            "or pass book= to read it from the "
            f"{'clients' if table == 'client' else 'products'} table"
        )
    source = book.client_table if table == "client" else book.product_table
    if column not in source.columns:
        raise ValueError(
            f"allocate: the Book's {'clients' if table == 'client' else 'products'} table has no "
            f"{column!r} column, which the constraints need"
        )
    key = Columns.client if table == "client" else Columns.product
    mapping = source.set_index(key)[column] if key in source.columns else source[column]
    return ids.astype(str).map(mapping.astype(object)).astype(object)


def _query(frame: pd.DataFrame, query: str | None, name: str) -> npt.NDArray[np.bool_]:
    if not query:
        return np.zeros(len(frame), dtype=bool)
    try:
        picked = frame.eval(query)
    except Exception as err:
        raise ValueError(
            f"allocate: constraint {name} = {query!r} cannot be read over the candidates' columns "
            f"{list(frame.columns)}: {err}"
        ) from err
    if not isinstance(picked, pd.Series) or picked.dtype != bool:
        raise ValueError(f"allocate: constraint {name} = {query!r} is not a true/false condition")
    return picked.to_numpy(dtype=bool)


# ---------------------------------------------------------------------- constraint rows
def _rows(frame: pd.DataFrame, c: Constraints) -> list[_Row]:  # noqa: PLR0912 - one per kind
    n = len(frame)
    rows: list[_Row] = []
    if c.capacity is not None:
        effort = _effort(frame, c.effort)
        unit = "hours" if c.effort is not None else "actions"
        owner = frame[Columns.owner]
        for name, idx in _groups(owner).items():
            cap = c.capacity.get(name) if isinstance(c.capacity, Mapping) else c.capacity
            if cap is None:
                continue
            _check_number(cap, f"capacity of {name}")
            rows.append(
                _Row(
                    f"capacity of {name} <= {cap:g} {unit}",
                    "capacity",
                    idx,
                    effort[idx],
                    -np.inf,
                    float(cap),
                    f"capacity of {name}",
                )
            )
    if c.per_client is not None:
        if int(c.per_client) < 0:
            raise ValueError(f"constraints: per_client must be >= 0; got {c.per_client!r}")
        for name, idx in _groups(frame[Columns.client]).items():
            if idx.size > int(c.per_client):
                rows.append(
                    _Row(
                        f"at most {int(c.per_client)} per client ({name})",
                        "per_client",
                        idx,
                        np.ones(idx.size),
                        -np.inf,
                        float(int(c.per_client)),
                        "per-client cap",
                    )
                )
    for column, quotas, label in (
        (Columns.product, c.product_quota, "product"),
        (Columns.family, c.family_quota, "family"),
    ):
        if not quotas:
            continue
        groups = _groups(frame[column])
        for name, (lo, hi) in quotas.items():
            idx = groups.get(str(name), np.zeros(0, np.int64))
            lo_v = -np.inf if lo is None else _check_number(lo, f"{label} quota {name} min")
            hi_v = np.inf if hi is None else _check_number(hi, f"{label} quota {name} max")
            if lo_v > hi_v:
                raise ValueError(f"constraints: {label}_quota[{name!r}] has min {lo} > max {hi}")
            text = " and ".join(
                t
                for t in (
                    None if lo is None else f"at least {lo:g}",
                    None if hi is None else f"at most {hi:g}",
                )
                if t
            )
            rows.append(
                _Row(
                    f"{label} {name}: {text}",
                    f"{label}_quota",
                    idx,
                    np.ones(idx.size),
                    lo_v,
                    hi_v,
                    f"{label} quota {name}",
                )
            )
    if c.family_share:
        family = frame[Columns.family].astype(object).to_numpy()
        for name, share in c.family_share.items():
            s = _check_number(share, f"family share {name}")
            if not 0 <= s <= 1:
                raise ValueError(f"constraints: family_share[{name!r}] must be in [0, 1]; got {s}")
            coef = (family == name).astype(np.float64) - s
            rows.append(
                _Row(
                    f"share of {name} >= {s:.0%}",
                    "family_share",
                    np.arange(n),
                    coef,
                    0.0,
                    np.inf,
                    f"share of {name}",
                )
            )
    return rows


def _effort(frame: pd.DataFrame, effort: Any) -> npt.NDArray[np.float64]:
    n = len(frame)
    if effort is None:
        return np.ones(n)
    if not isinstance(effort, Mapping):
        return np.full(n, _check_number(effort, "effort"))
    column = Columns.action if Columns.action in frame.columns else "offer_type"
    if column not in frame.columns:
        raise ValueError(
            "allocate: effort per action type needs an 'action' or 'offer_type' column"
        )
    kinds = frame[column].astype(object)
    out = kinds.map({k: _check_number(v, f"effort of {k}") for k, v in effort.items()})
    return out.fillna(1.0).to_numpy(dtype=np.float64)


def _check_number(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"constraints: {what} must be a number; got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"constraints: {what} must be a finite number >= 0; got {value!r}")
    return v


def _groups(values: pd.Series) -> dict[str, npt.NDArray[np.int64]]:
    keys = values.astype(object).where(values.notna(), None)
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {
        str(u): order[bounds[i] : bounds[i + 1]].astype(np.int64) for i, u in enumerate(uniques)
    }


def _matrix(rows: Sequence[_Row], n: int) -> sp.csr_matrix:
    if not rows:
        return sp.csr_matrix((0, n))
    r = np.concatenate([np.full(row.index.size, i) for i, row in enumerate(rows)])
    c = np.concatenate([row.index for row in rows])
    v = np.concatenate([row.coef for row in rows])
    return sp.csr_matrix((v, (r, c)), shape=(len(rows), n))


# ---------------------------------------------------------------------- solving
def _solve(
    value: npt.NDArray[np.float64],
    rows: Sequence[_Row],
    *,
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    time_limit: float,
    gap: float,
    start: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64] | None, str, float]:
    """Solve the integer program with HiGHS, from ``start`` (a feasible plan) when given.

    Returns the plan (None without one), ``"optimal"``, ``"time limit"`` or ``"infeasible"``,
    and the relative gap HiGHS reports.
    """
    import highspy

    n = value.size
    inf = float(highspy.kHighsInf)
    a = _matrix(rows, n)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, len(rows)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = value.astype(np.float64)
    lp.col_lower_, lp.col_upper_ = lower.astype(np.float64), upper.astype(np.float64)
    lp.row_lower_ = np.clip(np.array([r.lo for r in rows], dtype=np.float64), -inf, inf)
    lp.row_upper_ = np.clip(np.array([r.hi for r in rows], dtype=np.float64), -inf, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h = _highs()
    for option, setting in (
        ("output_flag", False),
        ("time_limit", float(time_limit)),
        ("mip_rel_gap", float(gap)),
        ("random_seed", 0),
    ):
        h.setOptionValue(option, setting)
    h.passModel(lp)
    if start is not None:
        warm = highspy.HighsSolution()
        warm.col_value = start.astype(np.float64).tolist()
        warm.value_valid = True
        h.setSolution(warm)
    h.run()
    model_status = h.getModelStatus()
    if model_status == highspy.HighsModelStatus.kInfeasible:
        return None, "infeasible", math.nan
    info = h.getInfo()
    if info.primal_solution_status != _FEASIBLE_POINT:
        return None, "time limit", math.nan
    x = np.asarray(h.getSolution().col_value, dtype=np.float64).round()
    optimal = model_status == highspy.HighsModelStatus.kOptimal
    return x, "optimal" if optimal else "time limit", float(info.mip_gap)


# HiGHS' code of a primal solution that is feasible
_FEASIBLE_POINT = 2
_HIGHS_LOCK = threading.Lock()
_HIGHS_STARTED: list[bool] = []


def _highs() -> Any:
    """Return a new HiGHS instance; the first one of the process prints nothing.

    HiGHS writes a banner to the process's standard output when its first instance is built,
    below Python's ``sys.stdout``: it would land in the middle of a plan written to standard
    output. That one construction runs with file descriptor 1 pointed at the null device.
    """
    import highspy

    make: Any = highspy.Highs  # untyped constructor
    with _HIGHS_LOCK:
        if _HIGHS_STARTED:
            return make()
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = make()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _HIGHS_STARTED.append(True)
        return h


def _feasible(x: npt.NDArray[np.float64], rows: Sequence[_Row]) -> bool:
    for r in rows:
        total = float(r.coef @ x[r.index])
        if total < r.lo - _TOL or total > r.hi + _TOL:
            return False
    return True


def _greedy(
    value: npt.NDArray[np.float64],
    rows: Sequence[_Row],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Best first (must-include rows before all), skipping a row that would pass an upper bound."""
    from crosssell._kernels import greedy_pick

    n = value.size
    a = _matrix(rows, n).tocsc()
    hi = np.array([r.hi for r in rows], dtype=np.float64)
    order = np.lexsort((np.arange(n), -value, -(lower > 0).astype(np.int8))).astype(np.int64)
    allowed = (upper > 0) & ((value > 0) | (lower > 0))
    return np.asarray(
        greedy_pick(
            order,
            a.indptr.astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(np.float64),
            hi,
            lower > 0,
            allowed,
            _TOL,
        )
    )


def _filled(
    value: npt.NDArray[np.float64],
    rows: Sequence[_Row],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    passes: int = 20,
) -> npt.NDArray[np.float64]:
    """Fill best first again and again, keeping what is chosen, until nothing more fits.

    One pass skips a row that does not fit yet; under a share (see
    :func:`_keeping_lower_bounds`) it may fit once rows of the family are in.
    """
    x = _greedy(value, rows, lower, upper)
    for _ in range(passes - 1):
        more = _greedy(value, rows, np.maximum(lower, x), upper)
        if np.array_equal(more, x):
            break
        x = more
    return x


def _keeping_lower_bounds(rows: Sequence[_Row]) -> list[_Row]:
    """Return ``rows`` plus, for each lower bound an empty plan meets, the same as an upper one.

    ``lo <= a @ x`` with ``lo <= 0`` is ``-a @ x <= -lo``: a greedy fill that never passes an
    upper bound then never falls below it either (a family's share stays met as rows are added).
    """
    extra = [
        _Row(r.name, r.kind, r.index, -r.coef, -np.inf, -r.lo, r.group)
        for r in rows
        if np.isfinite(r.lo) and r.lo <= 0
    ]
    return [*rows, *extra]


def _relaxation(
    value: npt.NDArray[np.float64],
    rows: Sequence[_Row],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], float, pd.DataFrame] | None:
    """Solve the linear relaxation: its solution, its bound, and its duals as shadow prices.

    None when even the relaxation is infeasible (then so is the integer program).
    """
    n = value.size
    if (lower > upper).any():
        return None
    if not rows:
        x = np.where(value > 0, upper, lower).astype(np.float64)
        return x, float(value @ x), _no_prices()
    a = _matrix(rows, n)
    lo = np.array([r.lo for r in rows])
    hi = np.array([r.hi for r in rows])
    has_hi, has_lo = np.isfinite(hi), np.isfinite(lo)
    a_ub = sp.vstack([a[has_hi], -a[has_lo]]).tocsr()
    b_ub = np.concatenate([hi[has_hi], -lo[has_lo]])
    bounds: Any = np.column_stack([lower, upper])  # one (low, high) pair per row
    res = linprog(-value, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status == 2:
        return None
    if res.status != 0:
        raise RuntimeError(f"allocate: the linear relaxation failed: {res.message}")
    x_lp = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, 1.0)
    bound = -float(cast(float, res.fun))
    marg = -np.asarray(res.ineqlin.marginals)  # per unit more of each b_ub, for maximising
    ids_hi, ids_lo = np.flatnonzero(has_hi), np.flatnonzero(has_lo)
    price = np.zeros(len(rows))
    price[ids_hi] += marg[: ids_hi.size]
    # raising a lower bound by one lowers -lo by one
    price[ids_lo] -= marg[ids_hi.size :]
    out = []
    for r, p in zip(rows, price, strict=True):
        if abs(p) <= 1e-9:
            continue
        if r.kind == "capacity":
            sentence = f"one more unit of {r.group} is worth about {p:,.0f} in expected value"
        elif r.kind == "per_client":
            sentence = f"{r.name}: one more would be worth about {p:,.0f}"
        elif p < 0:
            sentence = f"{r.name} costs about {-p:,.0f} per unit of the bound"
        else:
            sentence = f"one more unit of {r.group} is worth about {p:,.0f}"
        out.append({"constraint": r.name, "kind": r.kind, "shadow_price": p, "sentence": sentence})
    if not out:
        return x_lp, bound, _no_prices()
    frame = pd.DataFrame(out)
    order = np.argsort(-np.abs(frame["shadow_price"].to_numpy()), kind="stable")
    return x_lp, bound, frame.iloc[order].reset_index(drop=True)


def _no_prices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "constraint": pd.Series(dtype=object),
            "kind": pd.Series(dtype=object),
            "shadow_price": pd.Series(dtype=np.float64),
            "sentence": pd.Series(dtype=object),
        }
    )


def _raise_conflict(
    n: int,
    rows: Sequence[_Row],
    *,
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    must: npt.NDArray[np.bool_],
    groups: set[str],
) -> NoReturn:
    """Raise naming a smallest set of constraint groups that cannot hold together.

    The set is found by a deletion filter: drop each group in turn, and keep it dropped when
    what remains is still infeasible.
    """
    names = sorted(groups)

    def feasible(keep: set[str]) -> bool:
        kept = [r for r in rows if r.group in keep]
        lo = lower if "must_include" in keep else np.minimum(lower, 0.0)
        if n == 0:
            return all(r.lo <= _TOL for r in kept)
        if n > _EXACT_CONFLICT_ROWS:
            # on large books the relaxation decides (an infeasible relaxation is a conflict)
            return _relaxation(np.zeros(n), kept, lo, upper) is not None
        x, status, _ = _solve(np.zeros(n), kept, lower=lo, upper=upper, time_limit=10.0, gap=1e-4)
        return x is not None or status != "infeasible"

    keep = set(names)
    for g in names:
        trial = keep - {g}
        if not feasible(trial):
            keep = trial
    described = []
    for g in sorted(keep):
        if g == "must_include":
            described.append(f"must include: {int(must.sum())} rows")
        else:
            described.append(next(r.name for r in rows if r.group == g) if _single(rows, g) else g)
    raise InfeasibleConstraintsError(
        "allocate: the constraints cannot all hold together. A smallest conflicting set: "
        + "; ".join(described)
        + ". Relax one of them.",
        described,
    )


def _single(rows: Sequence[_Row], group: str) -> bool:
    return sum(r.group == group for r in rows) == 1


def _why(
    frame: pd.DataFrame,
    chosen: npt.NDArray[np.bool_],
    *,
    rows: Sequence[_Row],
    must: npt.NDArray[np.bool_],
    banned: npt.NDArray[np.bool_],
    value: npt.NDArray[np.float64],
) -> npt.NDArray[np.object_]:
    """Say for each row why it was chosen, or the limit that left it out."""
    n = len(frame)
    x = chosen.astype(np.float64)
    why = np.empty(n, dtype=object)
    why[chosen] = "chosen"
    why[chosen & must] = "chosen: must include"
    # the first full limit each dropped row meets, in the order the constraints were given
    for r in rows:
        if r.kind == "family_share":
            continue
        total = float(r.coef @ x[r.index])
        if total < r.hi - _TOL:
            continue
        hit = r.index[~chosen[r.index] & (why[r.index] == None)]  # noqa: E711 - object array
        if r.kind == "capacity":
            text = f"dropped: {r.group} is full ({total:g} of {r.hi:g})"
        elif r.kind == "per_client":
            text = f"dropped: the client already has {int(r.hi)} action(s) in the plan"
        else:
            label = "product" if r.kind == "product_quota" else "family"
            name = r.group.split(" quota ", 1)[1]
            text = f"dropped: the most of {label} {name} ({r.hi:g}) is reached"
        why[hit] = text
    left = ~chosen & (why == None)  # noqa: E711 - object array
    why[left & banned] = "dropped: excluded"
    left &= ~banned
    why[left & (value <= 0)] = "dropped: worth nothing to the objective"
    left &= value > 0
    why[left] = "dropped: other actions make a better plan under the constraints"
    return why
