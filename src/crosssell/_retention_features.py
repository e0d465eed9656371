"""Point-in-time arrays of retention: coverage runs, outcomes and client features at a date.

Everything is in whole days since the epoch. A *unit* is what can leave: a client (all its
contracts ended), or a (client, product family) chain of contracts (a contract not renewed). Its
*coverage* is the union of its contracts' spans, with gaps of at most ``grace`` days closed (a
renewal signed a few days late is not a departure). For purchases, each purchase covers
``lapse`` days from its date, so a unit leaves when it has gone ``lapse`` days without buying.

Features at a date ``s`` read only contracts started on or before ``s`` and events dated on or
before it; outcomes read what happened after ``s`` as far as the Book (seen at its own ``as_of``)
tells, and say where they stop knowing (censoring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._arrays import OPEN_END
from crosssell.book import Book
from crosssell.columns import Columns, EventType

__all__ = [
    "MONTH_DAYS",
    "N_MONTHS",
    "OPEN_DAY",
    "BookArrays",
    "Runs",
    "client_features",
    "family_features",
]

DAY_NS: Final = 86_400 * 10**9
#: A month of the survival curve, in days.
MONTH_DAYS: Final = 365.25 / 12
#: Months of the survival curve.
N_MONTHS: Final = 12
#: Day number of an open end: later than any date.
OPEN_DAY: Final = 10**8

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_MAX_LEVELS: Final = 64


def _days(ns: npt.NDArray[np.int64]) -> IntArray:
    out = np.floor_divide(ns, DAY_NS)
    return np.where(ns == OPEN_END, OPEN_DAY, out).astype(np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Runs:
    """Coverage runs: sorted by (key, start), disjoint within a key."""

    key: IntArray
    start: IntArray
    end: IntArray
    code: IntArray

    @classmethod
    def of(
        cls, key: IntArray, start: IntArray, end: IntArray, grace: int, *, ordered: bool = False
    ) -> Runs:
        """Merge spans ``[start, end)`` of each key, closing gaps of at most ``grace`` days.

        ``ordered``: the spans are sorted by (key, start) already.
        """
        if key.size == 0:
            empty = np.zeros(0, np.int64)
            return cls(key=empty, start=empty, end=empty, code=empty)
        if ordered:
            k, s, e = key, start, end
        else:
            order = np.lexsort((start, key))
            k, s, e = key[order], start[order], end[order]
        frame = pd.DataFrame({"k": k, "e": e})
        reach = frame.groupby("k", sort=False)["e"].cummax().to_numpy(np.int64)
        prev_reach = np.empty_like(reach)
        prev_reach[1:] = reach[:-1]
        new = np.ones(k.size, dtype=bool)
        new[1:] = (k[1:] != k[:-1]) | (s[1:] > np.minimum(prev_reach[1:], OPEN_DAY) + grace)
        run = np.cumsum(new) - 1
        run_end = np.full(int(run[-1]) + 1, np.iinfo(np.int64).min)
        np.maximum.at(run_end, run, e)
        first = np.flatnonzero(new)
        rk, rs = k[first], s[first]
        return cls(key=rk, start=rs, end=run_end, code=_code(rk, rs))

    def at(self, key: IntArray, day: int) -> tuple[npt.NDArray[np.bool_], IntArray, IntArray]:
        """For each key: covered at ``day``, and that run's start and end (OPEN_DAY: open)."""
        if self.key.size == 0:
            z = np.zeros(key.size, np.int64)
            return np.zeros(key.size, bool), z, z
        i = np.searchsorted(self.code, _code(key, np.full(key.size, day)), side="right") - 1
        j = np.clip(i, 0, None)
        ok = (i >= 0) & (self.key[j] == key) & (self.start[j] <= day) & (self.end[j] > day)
        return ok, self.start[j], self.end[j]

    def ended_within(
        self, n_keys: int, owner: IntArray, lo: int, hi: int, grace: int
    ) -> FloatArray:
        """Per owner (``owner[key]``), runs that ended in ``(lo, hi]`` and were not resumed."""
        done = (self.end > lo) & (self.end <= hi) & (self.end + grace <= hi)
        return np.bincount(owner[self.key[done]], minlength=n_keys).astype(np.float64)


def _code(key: IntArray, day: IntArray) -> IntArray:
    # days stay below 2**27 (OPEN_DAY is 1e8), keys below 2**35: the pair fits an int64
    return key.astype(np.int64) * (1 << 27) + np.clip(day, -1, (1 << 27) - 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class BookArrays:
    """A Book seen at ``as_of``, as day arrays; built once per fit or prediction."""

    book: Book
    as_of: int
    purchases: bool
    n_clients: int
    client: IntArray
    product: IntArray
    family: IntArray
    tier: FloatArray
    start: IntArray
    end: IntArray
    value: FloatArray
    quantity: FloatArray
    prev_tier: FloatArray
    prev_quantity: FloatArray
    n_families: int
    families: pd.Index
    ev_client: IntArray
    ev_day: IntArray
    ev_type: IntArray
    ev_types: pd.Index
    ev_detail: FloatArray
    complaint_open: IntArray
    complaint_close: IntArray
    complaint_client: IntArray
    clients_x: FloatArray
    clients_names: list[str]
    satisfaction_event: str
    observed_ends: bool
    table_satisfaction: FloatArray
    #: (key, order by key then start) of the contracts, per level, computed on first use
    orders: dict[str, tuple[IntArray, IntArray]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        book: Book,
        as_of: pd.Timestamp,
        *,
        lapse: int,
        purchases: bool,
        satisfaction_event: str,
        observed_ends: bool = False,
    ) -> BookArrays:
        """Read the Book's contracts and events known at ``as_of`` into day arrays."""
        t = int(as_of.value // DAY_NS)
        ca = book.contract_arrays
        known = ca.start <= as_of.value
        client = ca.client[known].astype(np.int64)
        product = ca.product[known].astype(np.int64)
        start = _days(ca.start[known])
        end = start + lapse if purchases else _days(ca.end[known])
        products = book.product_table
        fam_codes, families = pd.factorize(products[Columns.family].astype(str), sort=True)
        family = fam_codes[product].astype(np.int64)
        tiers = pd.to_numeric(products[Columns.tier], errors="coerce").to_numpy(np.float64)
        tier = tiers[product]
        quantity = ca.quantity[known].astype(np.float64)
        # the contract before each one in its (client, family) chain: upsells and downgrades
        order = np.lexsort((start, family, client))
        same = np.zeros(order.size, bool)
        same[1:] = (client[order][1:] == client[order][:-1]) & (
            family[order][1:] == family[order][:-1]
        )
        prev_tier = np.full(order.size, np.nan)
        prev_qty = np.full(order.size, np.nan)
        prev_tier[order[1:][same[1:]]] = tier[order[:-1][same[1:]]]
        prev_qty[order[1:][same[1:]]] = quantity[order[:-1][same[1:]]]

        ev = book.event_table
        if len(ev):
            ev_ns = ev[Columns.date].to_numpy(dtype="datetime64[ns]").view(np.int64)
            keep = ev_ns <= as_of.value
            ev = ev.loc[keep]
            ev_day = ev_ns[keep] // DAY_NS
        else:
            ev_day = np.zeros(0, np.int64)
        ev_client = ev[Columns.client_idx].to_numpy(np.int64) if len(ev) else np.zeros(0, np.int64)
        type_codes, types = (
            pd.factorize(ev[Columns.type].astype(str))
            if len(ev)
            else (
                np.zeros(0, np.int64),
                pd.Index([], dtype=object),
            )
        )
        # only satisfaction readings carry a number in detail: parse those rows alone
        detail = np.full(len(ev), np.nan)
        sat_code = np.flatnonzero(pd.Index(types) == satisfaction_event)
        if sat_code.size and Columns.detail in ev.columns:
            rows = np.flatnonzero(np.asarray(type_codes) == sat_code[0])
            detail[rows] = pd.to_numeric(ev[Columns.detail].iloc[rows], errors="coerce").to_numpy(
                np.float64, na_value=np.nan
            )
        c_open, c_close, c_client = _complaint_pairs(ev, ev_day)
        names, x = _client_table_features(book.client_table)
        return cls(
            book=book,
            as_of=t,
            purchases=purchases,
            n_clients=len(book.client_ids),
            client=client,
            product=product,
            family=family,
            tier=tier,
            start=start,
            end=end,
            value=ca.value[known].astype(np.float64),
            quantity=quantity,
            prev_tier=prev_tier,
            prev_quantity=prev_qty,
            n_families=len(families),
            families=pd.Index(families),
            ev_client=ev_client,
            ev_day=np.asarray(ev_day, np.int64),
            ev_type=np.asarray(type_codes, np.int64),
            ev_types=pd.Index(types),
            ev_detail=detail,
            complaint_open=c_open,
            complaint_close=c_close,
            complaint_client=c_client,
            clients_x=x,
            clients_names=names,
            satisfaction_event=satisfaction_event,
            observed_ends=observed_ends and not purchases,
            table_satisfaction=pd.to_numeric(
                book.client_table[Columns.satisfaction], errors="coerce"
            ).to_numpy(np.float64, na_value=np.nan),
        )

    def known(self, day: int) -> npt.NDArray[np.bool_]:
        """Contracts started on or before ``day``."""
        return self.start <= day

    def runs(self, day: int, *, by_family: bool, grace: int) -> Runs:
        """Coverage runs of clients (or client x family chains) from contracts known at ``day``."""
        key, order = self._order(by_family)
        # the contracts sorted once by (key, start); each day keeps those known in that order
        rows = order[self.start[order] <= day]
        return Runs.of(key[rows], self.start[rows], self.ends(day)[rows], grace, ordered=True)

    def _order(self, by_family: bool) -> tuple[IntArray, IntArray]:
        name = "family" if by_family else "client"
        if name not in self.orders:
            key = self.client * self.n_families + self.family if by_family else self.client
            self.orders[name] = (key, np.lexsort((self.start, key)))
        return self.orders[name]

    def ends(self, day: int) -> IntArray:
        """End days as known at ``day``: with ``observed_ends``, a later end is not known yet."""
        if not self.observed_ends:
            return self.end
        return np.where(self.end > day, OPEN_DAY, self.end)

    def events_of(self, kind: str, lo: int, hi: int) -> npt.NDArray[np.bool_]:
        """Events of type ``kind`` dated in ``(lo, hi]``."""
        where = np.flatnonzero(self.ev_types == kind)
        if where.size == 0:
            return np.zeros(self.ev_day.size, bool)
        found = (self.ev_type == where[0]) & (self.ev_day > lo) & (self.ev_day <= hi)
        return np.asarray(found, dtype=bool)


def _complaint_pairs(ev: pd.DataFrame, ev_day: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Each complaint opened: its day, the day it closed (OPEN_DAY: never) and its client.

    Pairs by ``ref`` where given, else a client's k-th closing answers its k-th opening (as the
    route-sales policy reads them).
    """
    if len(ev) == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    kinds = ev[Columns.type].astype(str).to_numpy()
    is_open = kinds == EventType.complaint_opened
    is_close = kinds == EventType.complaint_closed
    sel = is_open | is_close
    if not sel.any():
        z = np.zeros(0, np.int64)
        return z, z, z
    ref = ev[Columns.ref] if Columns.ref in ev.columns else pd.Series(pd.NA, index=ev.index)
    has_ref = ref.notna().to_numpy(bool)
    frame = pd.DataFrame(
        {
            "c": ev[Columns.client_idx].to_numpy(np.int64),
            "has_ref": has_ref,
            "ref": np.where(has_ref, ref.astype(object).astype(str).to_numpy(object), ""),
            "open": is_open,
            "t": ev_day,
        }
    )[sel]
    keys = ["c", "has_ref", "ref"]
    frame["k"] = frame.groupby([*keys, "open"], sort=False).cumcount()
    opens = frame[frame["open"]]
    closes = frame.loc[~frame["open"], [*keys, "k", "t"]].rename(columns={"t": "closed"})
    merged = opens.merge(closes, on=[*keys, "k"], how="left")
    closed = merged["closed"].fillna(OPEN_DAY).to_numpy(np.int64)
    opened = merged["t"].to_numpy(np.int64)
    closed = np.where(closed < opened, OPEN_DAY, closed)
    return opened, closed, merged["c"].to_numpy(np.int64)


# ids and people say nothing of a client's health; satisfaction is read as satisfaction_last
_SKIP_CLIENT_COLUMNS: Final = frozenset(
    {Columns.client, Columns.owner, Columns.parent, Columns.client_idx, Columns.satisfaction}
)


def _client_table_features(table: pd.DataFrame) -> tuple[list[str], FloatArray]:
    """Turn the clients table into numbers: numeric columns as they are, few-level text as codes."""
    names: list[str] = []
    cols: list[FloatArray] = []
    for name in table.columns:
        if name in _SKIP_CLIENT_COLUMNS:
            continue
        col = table[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        else:
            codes, levels = pd.factorize(col.astype(object), sort=True)
            if len(levels) == 0 or len(levels) > _MAX_LEVELS:
                continue
            values = np.where(codes < 0, np.nan, codes).astype(np.float64)
        if np.isnan(values).all():
            continue
        names.append(str(name))
        cols.append(values)
    x = np.column_stack(cols) if cols else np.zeros((len(table), 0))
    return names, x


#: Built-in client features, in the model's order (user features and the clients table follow).
CLIENT_FEATURES: Final = (
    "tenure_days",
    "active_contracts",
    "product_lines",
    "annual_value",
    "value_change_180d",
    "days_to_next_end",
    "days_to_coverage_end",
    "share_value_ending_90d",
    "open_ended_share",
    "term_days",
    "starts_90d",
    "starts_365d",
    "days_since_last_start",
    "value_started_365d",
    "value_started_prior_365d",
    "upsells_365d",
    "downgrades_365d",
    "lines_ended_365d",
    "complaints_open",
    "oldest_open_complaint_days",
    "complaints_90d",
    "complaints_365d",
    "days_to_close_365d",
    "days_since_complaint",
    "satisfaction_last",
    "satisfaction_change",
    "contacts_90d",
    "days_since_contact",
    "offers_declined_365d",
    "offers_accepted_365d",
    "churn_signals_90d",
    "churn_signals_365d",
    "days_since_churn_signal",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Client features at one day, with what reasons need to speak of them."""

    day: int
    names: list[str]
    x: FloatArray
    #: product of the contract ending soonest (-1: none)
    next_end_product: IntArray
    #: satisfaction reading 180 days before (NaN: none) and its day
    satisfaction_before: FloatArray
    satisfaction_before_day: IntArray
    value_before: FloatArray


def _count(n: int, client: IntArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
    return np.bincount(client[mask], minlength=n).astype(np.float64)


def _last_day(n: int, client: IntArray, day: IntArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
    out = np.full(n, np.nan)
    if mask.any():
        last = np.full(n, np.iinfo(np.int64).min)
        np.maximum.at(last, client[mask], day[mask])
        got = last > np.iinfo(np.int64).min
        out[got] = last[got]
    return out


def client_features(a: BookArrays, day: int, *, grace: int) -> Snapshot:  # noqa: PLR0915
    """Built-in client features at ``day`` (then the clients table's columns)."""
    n = a.n_clients
    known = a.known(day)
    end = a.ends(day)
    active = known & (end > day)
    c = a.client
    value = np.nan_to_num(a.value)
    cols: dict[str, FloatArray] = {}
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, c[known], a.start[known])
    cols["tenure_days"] = np.where(first < np.iinfo(np.int64).max, day - first, np.nan)
    cols["active_contracts"] = _count(n, c, active)
    fam_key = np.unique(c[active] * a.n_families + a.family[active])
    cols["product_lines"] = np.bincount(fam_key // max(a.n_families, 1), minlength=n).astype(
        np.float64
    )
    if a.purchases:
        recent = known & (a.start > day - 365)
        annual = np.bincount(c[recent], weights=value[recent], minlength=n).astype(np.float64)
        before = known & (a.start > day - 545) & (a.start <= day - 180)
        value_before = np.bincount(c[before], weights=value[before], minlength=n).astype(np.float64)
    else:
        annual = np.bincount(c[active], weights=value[active], minlength=n).astype(np.float64)
        was = known & (a.start <= day - 180) & (end > day - 180)
        value_before = np.bincount(c[was], weights=value[was], minlength=n).astype(np.float64)
    cols["annual_value"] = annual
    cols["value_change_180d"] = annual - value_before
    ending = active & (end < OPEN_DAY)
    next_end = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(next_end, c[ending], end[ending])
    has_end = next_end < np.iinfo(np.int64).max
    cols["days_to_next_end"] = np.where(has_end, next_end - day, np.nan)
    # the product and term of the contract ending soonest (largest value first on a tie)
    rows = np.flatnonzero(ending & (end == np.where(has_end, next_end, -1)[c]))
    rows = rows[np.lexsort((-value[rows], c[rows]))]
    first_rows = rows[np.unique(c[rows], return_index=True)[1]]
    next_product = np.full(n, -1, np.int64)
    next_product[c[first_rows]] = a.product[first_rows]
    term = np.full(n, np.nan)
    term[c[first_rows]] = (end[first_rows] - a.start[first_rows]).astype(np.float64)
    cols["term_days"] = term
    runs = a.runs(day, by_family=False, grace=grace)
    covered, _, run_end = runs.at(np.arange(n, dtype=np.int64), day)
    cols["days_to_coverage_end"] = np.where(
        covered & (run_end < OPEN_DAY), run_end - day, np.where(covered, np.nan, 0.0)
    )
    soon = ending & (end <= day + 90)
    ending_value = np.bincount(c[soon], weights=value[soon], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["share_value_ending_90d"] = np.where(annual > 0, ending_value / annual, np.nan)
        n_open = _count(n, c, active & (end >= OPEN_DAY))
        cols["open_ended_share"] = np.where(
            cols["active_contracts"] > 0, n_open / cols["active_contracts"], np.nan
        )
    s90 = known & (a.start > day - 90)
    s365 = known & (a.start > day - 365)
    prior = known & (a.start > day - 730) & (a.start <= day - 365)
    cols["starts_90d"] = _count(n, c, s90)
    cols["starts_365d"] = _count(n, c, s365)
    cols["days_since_last_start"] = day - _last_day(n, c, a.start, known)
    cols["value_started_365d"] = np.bincount(c[s365], weights=value[s365], minlength=n).astype(
        np.float64
    )
    cols["value_started_prior_365d"] = np.bincount(
        c[prior], weights=value[prior], minlength=n
    ).astype(np.float64)
    up = s365 & (
        (a.tier > a.prev_tier) | ((a.tier == a.prev_tier) & (a.quantity > a.prev_quantity))
    )
    down = s365 & (
        (a.tier < a.prev_tier) | ((a.tier == a.prev_tier) & (a.quantity < a.prev_quantity))
    )
    cols["upsells_365d"] = _count(n, c, up)
    cols["downgrades_365d"] = _count(n, c, down)
    fam_runs = a.runs(day, by_family=True, grace=grace)
    owner = np.arange(n * max(a.n_families, 1), dtype=np.int64) // max(a.n_families, 1)
    cols["lines_ended_365d"] = fam_runs.ended_within(n, owner, day - 365, day, grace)

    # complaints
    cc, co, cl = a.complaint_client, a.complaint_open, a.complaint_close
    is_open = (co <= day) & (cl > day)
    cols["complaints_open"] = _count(n, cc, is_open)
    oldest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(oldest, cc[is_open], co[is_open])
    cols["oldest_open_complaint_days"] = np.where(
        oldest < np.iinfo(np.int64).max, day - oldest, np.nan
    )
    cols["complaints_90d"] = _count(n, cc, (co <= day) & (co > day - 90))
    cols["complaints_365d"] = _count(n, cc, (co <= day) & (co > day - 365))
    closed = (cl <= day) & (cl > day - 365)
    took = np.bincount(cc[closed], weights=(cl - co)[closed].astype(np.float64), minlength=n)
    n_closed = _count(n, cc, closed)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["days_to_close_365d"] = np.where(n_closed > 0, took / n_closed, np.nan)
    cols["days_since_complaint"] = day - _last_day(n, cc, co, co <= day)

    # satisfaction: readings from events when the Book has them, else the clients table
    sat_now, sat_before, sat_before_day = _satisfaction(a, day)
    cols["satisfaction_last"] = sat_now
    cols["satisfaction_change"] = sat_now - sat_before

    ec, ed = a.ev_client, a.ev_day
    contact = a.events_of(EventType.contact, -(1 << 40), day)
    cols["contacts_90d"] = _count(n, ec, contact & (ed > day - 90))
    cols["days_since_contact"] = day - _last_day(n, ec, ed, contact)
    cols["offers_declined_365d"] = _count(
        n, ec, a.events_of(EventType.offer_declined, day - 365, day)
    )
    cols["offers_accepted_365d"] = _count(
        n, ec, a.events_of(EventType.offer_accepted, day - 365, day)
    )
    churn = a.events_of(EventType.churn_signal, -(1 << 40), day)
    cols["churn_signals_90d"] = _count(n, ec, churn & (ed > day - 90))
    cols["churn_signals_365d"] = _count(n, ec, churn & (ed > day - 365))
    cols["days_since_churn_signal"] = day - _last_day(n, ec, ed, churn)

    names = list(CLIENT_FEATURES)
    x = np.empty((n, len(names) + len(a.clients_names)), dtype=np.float64)
    for j, name in enumerate(names):
        x[:, j] = cols[name]
    x[:, len(names) :] = a.clients_x
    # the clients table's satisfaction is read through satisfaction_last
    table_names = [f"client_{name}" for name in a.clients_names]
    return Snapshot(
        day=day,
        names=names + table_names,
        x=x,
        next_end_product=next_product,
        satisfaction_before=sat_before,
        satisfaction_before_day=sat_before_day,
        value_before=value_before,
    )


def _satisfaction(a: BookArrays, day: int) -> tuple[FloatArray, FloatArray, IntArray]:
    """Last satisfaction reading at ``day``, the one before it within a year, and its day."""
    n = a.n_clients
    sel = a.events_of(a.satisfaction_event, -(1 << 40), day) & np.isfinite(a.ev_detail)
    table_sat = a.table_satisfaction
    before_day = np.full(n, -1, np.int64)
    if not sel.any():
        return table_sat, np.full(n, np.nan), before_day
    idx = np.flatnonzero(sel)
    # events are in date order: the last reading of each client is its last row
    now = table_sat.copy()
    last = pd.Series(idx).groupby(a.ev_client[idx]).last()
    now[last.index.to_numpy(np.int64)] = a.ev_detail[last.to_numpy(np.int64)]
    old = idx[(a.ev_day[idx] > day - 365) & ~np.isin(idx, last.to_numpy(np.int64))]
    before = np.full(n, np.nan)
    if old.size:
        previous = pd.Series(old).groupby(a.ev_client[old]).last()
        who = previous.index.to_numpy(np.int64)
        before[who] = a.ev_detail[previous.to_numpy(np.int64)]
        before_day[who] = a.ev_day[previous.to_numpy(np.int64)]
    return now, before, before_day


#: Features of a (client, family) chain, placed before the client's own.
FAMILY_FEATURES: Final = (
    "chain_days_to_end",
    "chain_tenure_days",
    "chain_value",
    "chain_tier",
    "chain_contracts",
    "chain_term_days",
    "family",
)


def family_features(
    a: BookArrays, day: int, keys: IntArray, run_start: IntArray, run_end: IntArray
) -> tuple[list[str], FloatArray]:
    """Features of (client, family) chains ``keys`` covered at ``day``."""
    nf = max(a.n_families, 1)
    known = a.known(day)
    end = a.ends(day)
    active = known & (end > day)
    key = a.client * nf + a.family
    frame = pd.DataFrame(
        {
            "key": key[active],
            "value": np.nan_to_num(a.value[active]),
            "tier": a.tier[active],
            "term": np.where(
                end[active] < OPEN_DAY, (end[active] - a.start[active]).astype(float), np.nan
            ),
        }
    )
    agg = frame.groupby("key").agg(
        value=("value", "sum"), tier=("tier", "max"), n=("value", "size"), term=("term", "max")
    )
    agg = agg.reindex(keys)
    x = np.column_stack(
        [
            np.where(run_end < OPEN_DAY, run_end - day, np.nan),
            (day - run_start).astype(np.float64),
            agg["value"].to_numpy(np.float64),
            agg["tier"].to_numpy(np.float64),
            agg["n"].to_numpy(np.float64),
            agg["term"].to_numpy(np.float64),
            (keys % nf).astype(np.float64),
        ]
    )
    return list(FAMILY_FEATURES), x


def as_float_matrix(values: Any, n: int, name: str) -> FloatArray:
    """One float per row from a user feature, or a ValueError naming it."""
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.size != n:
        raise ValueError(
            f"The feature {name!r} returned {out.size} values for {n} clients: a retention "
            "feature function must return one float per client."
        )
    return out
