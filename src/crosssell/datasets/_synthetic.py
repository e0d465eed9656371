"""A seeded synthetic B2B contract book with a learnable latent structure.

The generator simulates a software vendor that sells product *families* (``CRM``, ``ERP``, ...)
in *tiers* (``CRM-1`` < ``CRM-2`` < ``CRM-3``) to business clients, month by month, and writes
what a CRM system would have recorded: contracts, a catalog, client accounts and an event log.
The whole horizon is the "simulated future": a backtest cuts it at earlier dates and scores what
was added later.

Latent structure
----------------
Clients
    Each client has a segment (``small`` 60%, ``mid`` 30%, ``enterprise`` 10%), a region, an
    account manager (``owner``; portfolios of 40-80 clients, grouped by region), a latent
    *health* ``h ~ N(0, 1)`` and latent *tastes* ``u ~ N(0, I_3)``. About 5% are subsidiaries
    (``parent_id``) of a larger client: they share its region and half of its tastes. About 3%
    ask not to be contacted. The recorded ``satisfaction`` (0..10) is a noisy reading of health.
Families
    Family tastes ``v_f`` are drawn around a few group centres, so families of one group are
    bought together (what co-occurrence and matrix factorisation learn). Each family also has a
    popularity and a segment effect. A client's *affinity* to a family is
    ``a = 2.2 u . v_f / sqrt(3) + popularity_f + segment_effect[segment, f]``.
Adoption over time
    Clients join at an onboarding month (45% are already clients at the start) with one base
    family. Every later month each family not held is adopted with a hazard that rises with the
    affinity, with the segment's buying rate, with the families already held that resemble it,
    and falls with the number of families held. The tier bought depends on the segment
    (enterprises buy higher tiers). Upgrades to the next tier happen mid-term (the lower contract
    ends the day the higher one starts) or at renewal, more often for high affinity.
Contracts
    Terms of 12, 24 or 36 months (or open-ended for about 10%) renew back to back. At each term
    end a holding lapses with a probability that rises after a complaint, with low health and with
    low affinity. A client may start to churn (more likely after complaints and with low health):
    it then buys nothing more and lets every contract lapse. An add-on lapses at its renewal
    when its base family is gone, and a lapsed family is not bought again for three months.
    Seats (``quantity``) follow the segment and sometimes expand at renewal; ``value`` is
    price x seats with a segment discount.
Catalog
    Families x tiers, price rising with tier. The top tier of the first two families is sold to
    mid-sized and enterprise clients only (``segments``), tier 1 of the last family to small and
    mid-sized ones. ``BI`` needs an ``ERP`` product and ``PAY`` an ``HR`` product (``requires``
    lists every tier of the base family: holding any one of them is enough); tier 1 of the last two
    families exclude each other (``excludes``). Tier 1 of one family (``SEC`` with eight
    families) is retired half-way through the horizon (``sellable=False``): existing contracts
    renew, nobody buys it afresh.
Events
    ``complaint_opened`` / ``complaint_closed`` pairs share a ``ref`` (complaints still open at the
    end have no closing event); some purchases are preceded by ``offer_made`` and accepted with
    ``offer_accepted`` on the day the contract starts; other offers are declined
    (``offer_declined``), and the client then buys no such product for at least six months;
    ``need`` events name a family or a product, often months before it is bought; ``contact``
    records visits and calls; ``churn_signal`` often precedes churn, sometimes falsely.
    Clients marked ``do_not_contact`` get no offers.

Rebuild the demo files shipped with the package (``crosssell/datasets/data/demo/``) with::

    python -m crosssell.datasets._synthetic --demo
"""

from __future__ import annotations

import argparse
import importlib
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._params import Interval, Satisfies, validate_params
from crosssell.columns import Columns, EventType
from crosssell.exceptions import InvalidParameterError

__all__ = [
    "DEMO_SETTINGS",
    "Churn",
    "TakeUp",
    "synthetic_churn",
    "synthetic_frames",
    "synthetic_take_up",
    "write_demo",
    "write_frames",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Settings of the demo book shipped with the package.
DEMO_SETTINGS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "n_clients": 500,
        "n_families": 8,
        "n_tiers": 3,
        "start": "2021-01-01",
        "end": "2025-06-30",
        "seed": 7,
    }
)

SEGMENTS: Final = ("small", "mid", "enterprise")
_SEGMENT_SHARE: Final = (0.60, 0.30, 0.10)
REGIONS: Final = ("North", "South", "East", "West", "Central")
_REGION_SHARE: Final = (0.25, 0.20, 0.20, 0.20, 0.15)
_FAMILY_NAMES: Final = (
    "CRM", "ERP", "BI", "HR", "PAY", "SEC", "MAIL", "DOCS", "CLOUD", "VOIP", "BACKUP", "TRAIN",
)  # fmt: skip
_TIER_NAMES: Final = ("Basic", "Standard", "Premium", "Ultimate", "Elite")
_COMPLAINT_TOPICS: Final = (
    "billing",
    "outage",
    "support response",
    "onboarding",
    "missing feature",
)
_DECLINE_REASONS: Final = ("price", "timing", "no budget", "no need", "competitor")
_FACTOR_DIM: Final = 3
# Weight of the latent tastes against popularity: large enough that who-holds-what predicts
# the next purchase better than popularity does (the data must be learnable).
_TASTE_WEIGHT: Final = 2.2
_DAYS_IN_MONTH: Final = 28  # offsets 0..27 keep every month's day valid
_NEVER: Final = np.iinfo(np.int32).max
_NAT: Final = np.iinfo(np.int64).min

# Monthly hazards, tuned so a client holds about three families after a few years.
_ADOPT_RATE: Final = 0.06
_UPGRADE_RATE: Final = 0.006
_UPGRADE_AT_RENEWAL: Final = 0.15
_LAPSE_RATE: Final = 0.07
_EVERGREEN_LAPSE: Final = 0.004
_CHURN_RATE: Final = 0.003
_COMPLAINT_RATE: Final = 0.008
_SEGMENT_BUYING: Final = (0.8, 1.0, 1.4)
_SEGMENT_SEATS: Final = (3.0, 15.0, 80.0)
_SEGMENT_DISCOUNT: Final = (1.0, 0.92, 0.8)
_CONTACTS_PER_MONTH: Final = (0.4, 0.8, 1.5)
_COMPLAINTS_BY_SEGMENT: Final = np.array([1.0, 1.3, 1.8])
# Contract terms in months (0: open-ended) and their shares by segment.
_TERM_MONTHS: Final[IntArray] = np.array([12, 24, 36, 0], dtype=np.int64)
_TERM_SHARE: Final = np.array(
    [[0.60, 0.20, 0.08, 0.12], [0.45, 0.30, 0.15, 0.10], [0.25, 0.35, 0.32, 0.08]]
)
_SIX_MONTHS: Final = 183  # days

# Row kinds of the simulated contracts (kept internal: they drive the event log).
_INITIAL, _RENEWAL, _NEW, _UPGRADE = 0, 1, 2, 3

# Event type codes, in the order of the readable names below.
_EVENT_TYPES: Final = (
    EventType.complaint_opened,
    EventType.complaint_closed,
    EventType.offer_made,
    EventType.offer_accepted,
    EventType.offer_declined,
    EventType.contact,
    EventType.need,
    EventType.churn_signal,
)
_E_OPEN, _E_CLOSE, _E_MADE, _E_ACCEPT, _E_DECLINE, _E_CONTACT, _E_NEED, _E_CHURN = range(8)


def _is_date(value: object) -> bool:
    return _parse_date(value) is not None


_DATE: Final = Satisfies(_is_date, "a date such as '2020-01-01'", ("soon",))

#: What ``synthetic_frames`` admits for each argument, checked as estimators check parameters.
_CONSTRAINTS: Final[dict[str, list[Any]]] = {
    "n_clients": [Interval(numbers.Integral, 1, None, closed="left")],
    "n_families": [Interval(numbers.Integral, 2, None, closed="left")],
    "n_tiers": [Interval(numbers.Integral, 1, None, closed="left")],
    "start": [_DATE],
    "end": [_DATE],
    "seed": [Interval(numbers.Integral, 0, None, closed="left")],
}


def _day(value: object) -> pd.Timestamp:
    return pd.Timestamp(pd.Timestamp(value).date())  # type: ignore[arg-type]


def _parse_date(value: object) -> pd.Timestamp | None:
    """``value`` as a Timestamp, or None when it is not a date."""
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if pd.isna(stamp) else stamp


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


class _Catalog:
    """Families x tiers with availability, prerequisites, exclusions and one retired product."""

    def __init__(self, n_families: int, n_tiers: int, n_months: int, rng: np.random.Generator):
        self.n_families = n_families
        self.n_tiers = n_tiers
        self.families = [
            _FAMILY_NAMES[f] if f < len(_FAMILY_NAMES) else f"F{f + 1:02d}"
            for f in range(n_families)
        ]
        # avail[segment, family, tier - 1]
        avail = np.ones((len(SEGMENTS), n_families, n_tiers), dtype=bool)
        self.segments: dict[tuple[int, int], tuple[str, ...]] = {}
        if n_tiers >= 2:
            for f in range(min(2, n_families)):
                avail[0, f, n_tiers - 1] = False
                self.segments[(f, n_tiers)] = (SEGMENTS[1], SEGMENTS[2])
            if n_families >= 3:
                avail[2, n_families - 1, 0] = False
                self.segments[(n_families - 1, 1)] = (SEGMENTS[0], SEGMENTS[1])
        self.avail = avail
        # requires: add-on family -> base family
        self.base_of = np.full(n_families, -1, dtype=np.int64)
        for addon, base in ((2, 1), (4, 3)):
            if addon < n_families:
                self.base_of[addon] = base
        self.excluded_pair: tuple[int, int] | None = (
            (n_families - 2, n_families - 1) if n_families >= 4 else None
        )
        self.retired = ((n_families // 2 + 1) % n_families, 1)
        self.retire_month = n_months // 2
        base_price = np.round(rng.uniform(60.0, 300.0, n_families))
        tier_factor = 1.0 + 1.2 * np.arange(n_tiers) + 0.3 * np.arange(n_tiers) ** 2
        self.price: FloatArray = base_price[:, None] * tier_factor[None, :]

    def available(self, month: int) -> npt.NDArray[np.bool_]:
        """Return ``avail[segment, family, tier - 1]`` for sales in ``month``."""
        out = self.avail.copy()
        if month >= self.retire_month:
            out[:, self.retired[0], self.retired[1] - 1] = False
        return out

    def product_ids(self) -> list[str]:
        return [f"{fam}-{t}" for fam in self.families for t in range(1, self.n_tiers + 1)]

    def frame(self) -> pd.DataFrame:
        families = np.repeat(self.families, self.n_tiers)
        tiers = np.tile(np.arange(1, self.n_tiers + 1), self.n_families)
        ids = self.product_ids()
        tier_names = [_TIER_NAMES[t - 1] if t <= len(_TIER_NAMES) else f"Tier {t}" for t in tiers]
        requires: list[tuple[str, ...]] = []
        excludes: list[tuple[str, ...]] = []
        segments: list[tuple[str, ...] | None] = []
        for f in range(self.n_families):
            base = int(self.base_of[f])
            for t in range(1, self.n_tiers + 1):
                requires.append(
                    tuple(f"{self.families[base]}-{s}" for s in range(1, self.n_tiers + 1))
                    if base >= 0
                    else ()
                )
                excluded: tuple[str, ...] = ()
                if self.excluded_pair is not None and t == 1 and f in self.excluded_pair:
                    other = (
                        self.excluded_pair[1]
                        if f == self.excluded_pair[0]
                        else self.excluded_pair[0]
                    )
                    excluded = (f"{self.families[other]}-1",)
                excludes.append(excluded)
                segments.append(self.segments.get((f, t)))
        sellable = np.ones(len(ids), dtype=bool)
        sellable[self.retired[0] * self.n_tiers + self.retired[1] - 1] = False
        return pd.DataFrame(
            {
                Columns.product: pd.array(ids, dtype="str"),
                Columns.name: pd.array(
                    [f"{fam} {name}" for fam, name in zip(families, tier_names, strict=True)],
                    dtype="str",
                ),
                Columns.family: pd.array(families, dtype="str"),
                Columns.tier: tiers.astype(np.int64),
                Columns.price: np.round(self.price.ravel(), 2),
                Columns.requires: pd.Series(requires, dtype=object),
                Columns.excludes: pd.Series(excludes, dtype=object),
                Columns.sellable: sellable,
                Columns.segments: pd.Series(segments, dtype=object),
            }
        )


class _Log:
    """Append-only columns of contracts and events, filled month by month."""

    def __init__(self) -> None:
        self.rows: dict[str, list[npt.NDArray[Any]]] = {
            k: [] for k in ("client", "family", "tier", "start", "end", "qty", "kind", "term")
        }
        self.n_rows = 0
        self.end_fix: list[tuple[IntArray, IntArray]] = []
        self.events: dict[str, list[npt.NDArray[Any]]] = {
            k: [] for k in ("client", "day", "type", "product", "family", "detail", "ref")
        }

    def add_rows(self, **cols: npt.NDArray[Any]) -> IntArray:
        k = len(cols["client"])
        for key, value in cols.items():
            self.rows[key].append(np.asarray(value))
        ids = np.arange(self.n_rows, self.n_rows + k, dtype=np.int64)
        self.n_rows += k
        return ids

    def add_events(
        self,
        client: IntArray,
        day: IntArray,
        etype: int,
        *,
        product: IntArray | None = None,
        family: IntArray | None = None,
        detail: IntArray | None = None,
        ref: IntArray | None = None,
    ) -> None:
        k = len(client)
        none = np.full(k, -1, dtype=np.int64)
        self.events["client"].append(client.astype(np.int64))
        self.events["day"].append(day.astype(np.int64))
        self.events["type"].append(np.full(k, etype, dtype=np.int64))
        for key, value in (
            ("product", product),
            ("family", family),
            ("detail", detail),
            ("ref", ref),
        ):
            self.events[key].append(none if value is None else value.astype(np.int64))

    def contract_rows(self, end_day: int) -> pd.DataFrame:
        """Contract rows as integer columns (days since the epoch; ``_NAT`` = open end)."""
        cols = {k: self.column(self.rows, k).astype(np.int64) for k in self.rows}
        end = cols["end"]
        for ids, days in self.end_fix:
            end[ids] = days
        frame = pd.DataFrame(cols)
        return frame[frame["start"] <= end_day].reset_index(drop=True)

    def column(self, table: dict[str, list[npt.NDArray[Any]]], key: str) -> npt.NDArray[Any]:
        parts = table[key]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _gumbel_argmax(scores: FloatArray, rng: np.random.Generator) -> IntArray:
    """Sample one column per row with probabilities ``softmax(scores)`` (``-inf`` = excluded)."""
    noise = -np.log(-np.log(rng.random(scores.shape) + 1e-300) + 1e-300)
    out: IntArray = np.argmax(scores + noise, axis=1).astype(np.int64)
    return out


def _next_tiers(avail: BoolArray) -> IntArray:
    """``out[s, f, t]``: the lowest tier above ``t`` that segment ``s`` may buy in family ``f``.

    0 when there is none; ``avail[s, f, t - 1]`` says whether tier ``t`` is on sale.
    """
    n_seg, n_fam, n_tier = avail.shape
    out = np.zeros((n_seg, n_fam, n_tier + 1), dtype=np.int64)
    for t in range(n_tier, 0, -1):
        out[:, :, t - 1] = np.where(avail[:, :, t - 1], t, out[:, :, t])
    return out


def _owners(region: IntArray, rng: np.random.Generator) -> npt.NDArray[np.str_]:
    """Split the clients, grouped by region, into portfolios of 40-80 clients."""
    n = len(region)
    n_owners = max(1, round(n / 60))
    if n >= 40 * n_owners:
        sizes = 40 + rng.multinomial(n - 40 * n_owners, np.full(n_owners, 1.0 / n_owners))
    else:
        sizes = np.array([n])
        n_owners = 1
    width = max(2, len(str(n_owners)))
    names = np.array([f"AM{i + 1:0{width}d}" for i in range(n_owners)])
    order = np.lexsort((rng.random(n), region))
    out = np.empty(n, dtype=names.dtype)
    out[order] = np.repeat(names, sizes)
    return out


def synthetic_frames(
    n_clients: int = 2000,
    *,
    n_families: int = 8,
    n_tiers: int = 3,
    start: Any = "2020-01-01",
    end: Any = "2025-06-30",
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Generate a synthetic B2B book: contracts, products, clients and events.

    The data follow the latent structure described in :mod:`crosssell.datasets._synthetic`:
    clients with segment, tastes and health adopt correlated product families over time, upgrade,
    renew, complain, decline offers and churn. The same arguments always give identical frames.

    Parameters
    ----------
    n_clients : int, default 2000
        Number of client accounts.
    n_families : int, default 8
        Number of product families (at least 2).
    n_tiers : int, default 3
        Tiers per family (at least 1); products are named ``"<FAMILY>-<tier>"``.
    start, end : date-like, default "2020-01-01", "2025-06-30"
        The simulated horizon; nothing is dated after ``end`` except the scheduled end of running
        contracts. At least 12 months apart.
    seed : int, default 0
        Seed of the random generator.

    Returns
    -------
    dict of str to pandas.DataFrame
        Keys ``contracts``, ``products``, ``clients``, ``events``, with crosssell's default
        column names (see :class:`crosssell.columns.Columns`), ready for
        ``Book.from_frames(**frames)``.

    Raises
    ------
    ValueError
        If a parameter is out of range.

    Examples
    --------
    >>> from crosssell.datasets import synthetic_frames
    >>> frames = synthetic_frames(200, seed=1)
    >>> sorted(frames)
    ['clients', 'contracts', 'events', 'products']
    >>> len(frames["clients"]), len(frames["products"])
    (200, 24)
    >>> frames["products"]["product_id"].head(3).tolist()
    ['CRM-1', 'CRM-2', 'CRM-3']
    """
    given = {
        "n_clients": n_clients,
        "n_families": n_families,
        "n_tiers": n_tiers,
        "start": start,
        "end": end,
        "seed": seed,
    }
    frames, _ = _simulate("synthetic_frames", given, truth=False)
    return frames


def _simulate(
    owner: str, given: dict[str, Any], *, truth: bool, churn: bool = False
) -> tuple[dict[str, pd.DataFrame], Any]:
    """Run the simulation; with ``truth``, also record the take-up chances (no extra draws).

    With ``churn``, the churn hazards are recorded instead and a :class:`Churn` returned.
    """
    validate_params(owner, given, _CONSTRAINTS)
    n, n_fam = int(given["n_clients"]), int(given["n_families"])
    n_tier, seed = int(given["n_tiers"]), int(given["seed"])
    horizon = _Horizon.between(_day(given["start"]), _day(given["end"]))
    rng = np.random.default_rng(seed)
    catalog = _Catalog(n_fam, n_tier, horizon.n_months, rng)
    population = _Population.draw(n, catalog, horizon, rng)
    sim = _Simulation(population, catalog, horizon, rng)
    if truth:
        sim.truth = []
    if churn:
        sim.churn_truth = []
    sim.run()
    rows = sim.log.contract_rows(horizon.end_day)
    _derived_events(sim, rows)
    frames = {
        "contracts": _contract_frame(rows, catalog, population),
        "products": catalog.frame(),
        "clients": population.frame(),
        "events": _events_to_frame(sim.log, catalog, population, horizon),
    }
    if sim.churn_truth is not None:
        return frames, _churn_truth(sim, horizon, n)
    if sim.truth is None:
        return frames, None
    parts = sim.truth or [(np.zeros(0, np.int64),) * 3 + (np.zeros(0),)]
    month, client, product, p = (np.concatenate(a) for a in zip(*parts, strict=True))
    monthly = pd.DataFrame(
        {
            Columns.client: _client_ids(n)[client],
            Columns.product: np.asarray(catalog.product_ids(), dtype=object)[product],
            _MONTH: pd.to_datetime(horizon.month_start[month], unit="D"),
            _PROBABILITY: p,
        }
    )
    return frames, TakeUp(monthly=monthly)


_MONTH: Final = "month"
_PROBABILITY: Final = "probability"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TakeUp:
    """The true take-up chances a synthetic book was drawn with.

    Attributes
    ----------
    monthly : pandas.DataFrame
        One row per (client, product, month) the simulation could have started: ``client_id``,
        ``product_id``, ``month`` (its first day) and ``probability``, the chance that the
        client starts the product during that month given everything simulated before it (a
        new family at the tier the segment prefers, or an upgrade mid-term or at renewal).
        Pairs with no chance have no row. Onboarding of new clients is left out (they hold
        nothing before), and so is the rare drop of a purchase that clashes with one made the
        same month.

    Notes
    -----
    The chances of a month depend on the simulated state at its start (what the client holds
    then, whether it churns), so over several months they follow the path the book took. Summed
    along that path they are the expected number of starts given it, which is what calibration
    compares with: the average of :meth:`within` over many pairs is the share that take up.

    Examples
    --------
    >>> from crosssell.datasets import synthetic_take_up
    >>> truth = synthetic_take_up(200, seed=1)
    >>> truth.monthly.columns.tolist()
    ['client_id', 'product_id', 'month', 'probability']
    """

    monthly: pd.DataFrame

    def within(self, as_of: Any, horizon: Any = "90D") -> pd.DataFrame:
        """Chance that each client starts each product in ``(as_of, as_of + horizon]``.

        A month partly inside the window counts for the share of its days inside it (starts
        fall on days 1 to 28 of a month, evenly).

        Parameters
        ----------
        as_of : date-like
        horizon : str, timedelta or int, default "90D"
            An int is days.

        Returns
        -------
        pandas.DataFrame
            ``client_id``, ``product_id``, ``probability``: one row per pair with a chance.

        Examples
        --------
        >>> from crosssell.datasets import synthetic_take_up
        >>> truth = synthetic_take_up(200, seed=1)
        >>> p = truth.within("2024-06-30", "90D")["probability"]
        >>> bool(p.between(0, 1).all())
        True
        """
        start = pd.Timestamp(as_of).normalize()
        span = pd.Timedelta(days=horizon) if isinstance(horizon, int) else pd.Timedelta(horizon)
        end = start + span
        first = self.monthly[_MONTH].to_numpy(dtype="datetime64[D]").astype(np.int64)
        days = first[:, None] + np.arange(_DAYS_IN_MONTH)[None, :]
        lo = np.datetime64(start.date(), "D").astype(np.int64)
        hi = np.datetime64(end.date(), "D").astype(np.int64)
        share = ((days > lo) & (days <= hi)).mean(axis=1)
        inside = share > 0
        part = self.monthly.loc[inside, [Columns.client, Columns.product]].copy()
        p = self.monthly[_PROBABILITY].to_numpy(np.float64)[inside] * share[inside]
        part["log_miss"] = np.log1p(-np.minimum(p, 1.0 - 1e-12))
        total = part.groupby([Columns.client, Columns.product], sort=True)["log_miss"].sum()
        out = pd.DataFrame(total.reset_index())
        out[_PROBABILITY] = -np.expm1(out.pop("log_miss").to_numpy(np.float64))
        return out


def synthetic_take_up(
    n_clients: int = 2000,
    *,
    n_families: int = 8,
    n_tiers: int = 3,
    start: Any = "2020-01-01",
    end: Any = "2025-06-30",
    seed: int = 0,
) -> TakeUp:
    """Return the true take-up chances behind :func:`synthetic_frames` with the same arguments.

    The simulation is run again with the same seed and records, month by month, the chance of
    every start it could have drawn; it draws exactly the same numbers, so the book is the one
    :func:`synthetic_frames` gives.

    Parameters
    ----------
    n_clients, n_families, n_tiers, start, end, seed
        As in :func:`synthetic_frames`.

    Returns
    -------
    TakeUp

    Raises
    ------
    ValueError
        If a parameter is out of range.

    Examples
    --------
    >>> from crosssell.datasets import synthetic_take_up
    >>> truth = synthetic_take_up(200, seed=1)
    >>> bool(truth.monthly["probability"].between(0, 1).all())
    True
    """
    given = {
        "n_clients": n_clients,
        "n_families": n_families,
        "n_tiers": n_tiers,
        "start": start,
        "end": end,
        "seed": seed,
    }
    _, truth = _simulate("synthetic_take_up", given, truth=True)
    assert isinstance(truth, TakeUp)
    return truth


def _churn_truth(sim: _Simulation, horizon: _Horizon, n: int) -> Churn:
    parts = sim.churn_truth or [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))]
    month, client, hazard = (np.concatenate(a) for a in zip(*parts, strict=True))
    ids = _client_ids(n)
    monthly = pd.DataFrame(
        {
            Columns.client: ids[client],
            _MONTH: pd.to_datetime(horizon.month_start[month], unit="D"),
            _HAZARD: hazard,
        }
    )
    started = sim.churn_month >= 0
    start = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    start[started] = pd.to_datetime(horizon.month_start[sim.churn_month[started]], unit="D")
    return Churn(
        monthly=monthly,
        starts=pd.DataFrame({Columns.client: ids, _CHURN_START: start.to_numpy()}),
    )


_HAZARD: Final = "hazard"
_CHURN_START: Final = "churn_start"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Churn:
    """The true churn hazards a synthetic book was drawn with.

    Each month, a client that holds something and is not yet churning starts to churn with
    probability ``0.003 * exp(-0.6 * health) * (4 if it complained in the last 6 months)``
    (health is the latent factor the recorded satisfaction reads noisily). A churning client
    buys nothing more and lets every contract lapse at its term's end (an open-ended one soon
    after), so it leaves the book within a term. Renewals also lapse now and then without churn
    (more often after complaints and with low health); those are not in these hazards.

    Attributes
    ----------
    monthly : pandas.DataFrame
        ``client_id``, ``month`` (its first day) and ``hazard``: the chance that the client
        starts to churn during that month, given everything simulated before it.
    starts : pandas.DataFrame
        ``client_id`` and ``churn_start``: the first day of the month it started to churn
        (NaT: never).

    Examples
    --------
    >>> from crosssell.datasets import synthetic_churn
    >>> truth = synthetic_churn(200, seed=1)
    >>> truth.monthly.columns.tolist()
    ['client_id', 'month', 'hazard']
    """

    monthly: pd.DataFrame
    starts: pd.DataFrame

    def within(self, as_of: Any, horizon: Any = "180D") -> pd.DataFrame:
        """Each client's true risk at ``as_of``: churning already, or starting within ``horizon``.

        Parameters
        ----------
        as_of : date-like
        horizon : str, timedelta or int, default "180D"
            An int is days.

        Returns
        -------
        pandas.DataFrame
            ``client_id``, ``churning`` (started before ``as_of``) and ``probability``: 1 for a
            client churning already, else the chance of starting within the horizon (months
            partly inside count for the share of their days inside it).

        Examples
        --------
        >>> from crosssell.datasets import synthetic_churn
        >>> risk = synthetic_churn(200, seed=1).within("2024-06-30")
        >>> bool(risk["probability"].between(0, 1).all())
        True
        """
        start = pd.Timestamp(as_of).normalize()
        span = pd.Timedelta(days=horizon) if isinstance(horizon, int) else pd.Timedelta(horizon)
        first = self.monthly[_MONTH].to_numpy(dtype="datetime64[D]").astype(np.int64)
        days = first[:, None] + np.arange(_DAYS_IN_MONTH)[None, :]
        lo = np.datetime64(start.date(), "D").astype(np.int64)
        hi = np.datetime64((start + span).date(), "D").astype(np.int64)
        share = ((days > lo) & (days <= hi)).mean(axis=1)
        p = self.monthly[_HAZARD].to_numpy(np.float64) * share
        log_stay = (
            pd.Series(np.log1p(-np.minimum(p, 1.0 - 1e-12)))
            .groupby(self.monthly[Columns.client].to_numpy())
            .sum()
        )
        out = self.starts[[Columns.client]].copy()
        churn_day = self.starts[_CHURN_START].to_numpy(dtype="datetime64[D]")
        churning = ~np.isnat(churn_day) & (churn_day.astype(np.int64) <= lo)
        total = log_stay.reindex(out[Columns.client]).fillna(0.0).to_numpy(np.float64)
        out["churning"] = churning
        out[_PROBABILITY] = np.where(churning, 1.0, -np.expm1(total))
        return out


def synthetic_churn(
    n_clients: int = 2000,
    *,
    n_families: int = 8,
    n_tiers: int = 3,
    start: Any = "2020-01-01",
    end: Any = "2025-06-30",
    seed: int = 0,
) -> Churn:
    """Return the true churn hazards behind :func:`synthetic_frames` with the same arguments.

    The simulation is run again with the same seed and records each month's churn hazards
    without drawing anything more, so the book is the one :func:`synthetic_frames` gives.

    Parameters
    ----------
    n_clients, n_families, n_tiers, start, end, seed
        As in :func:`synthetic_frames`.

    Returns
    -------
    Churn

    Raises
    ------
    ValueError
        If a parameter is out of range.

    Examples
    --------
    >>> from crosssell.datasets import synthetic_churn
    >>> truth = synthetic_churn(200, seed=1)
    >>> bool(truth.monthly["hazard"].between(0, 1).all())
    True
    """
    given = {
        "n_clients": n_clients,
        "n_families": n_families,
        "n_tiers": n_tiers,
        "start": start,
        "end": end,
        "seed": seed,
    }
    _, truth = _simulate("synthetic_churn", given, truth=False, churn=True)
    return truth  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Horizon:
    """The simulated months, as day numbers (days since 1970-01-01)."""

    n_months: int
    #: First day of each month, far enough ahead for the longest term started in the last one.
    month_start: IntArray
    start_day: int
    end_day: int

    @classmethod
    def between(cls, start: pd.Timestamp, end: pd.Timestamp) -> _Horizon:
        first_month = np.datetime64(start.strftime("%Y-%m"), "M")
        last_month = np.datetime64(end.strftime("%Y-%m"), "M")
        n_months = int((last_month - first_month).astype(np.int64)) + 1
        if n_months < 13:
            raise InvalidParameterError(
                "The 'end' parameter of synthetic_frames must be at least 12 months after "
                f"'start'. Got start={start.date()} and end={end.date()} instead.",
                owner="synthetic_frames",
                parameter="end",
            )
        months = first_month + np.arange(n_months + 40)
        return cls(
            n_months=n_months,
            month_start=months.astype("datetime64[D]").astype(np.int64),
            start_day=int(np.datetime64(start.date(), "D").astype(np.int64)),
            end_day=int(np.datetime64(end.date(), "D").astype(np.int64)),
        )

    def day_of(self, month: int, offsets: IntArray) -> IntArray:
        """Days ``offsets`` into ``month``, never before the start of the horizon."""
        days: IntArray = self.month_start[month] + offsets
        return np.maximum(days, self.start_day) if month == 0 else days


@dataclass(frozen=True, slots=True, kw_only=True)
class _Population:
    """The clients: what the CRM records and the latent factors behind their behaviour."""

    n: int
    segment: IntArray
    region: IntArray
    owner: npt.NDArray[np.str_]
    parent: IntArray
    satisfaction: FloatArray
    dnc: BoolArray
    health: FloatArray
    onboard: IntArray
    #: ``affinity[c, f]``: how much client ``c`` wants family ``f``.
    affinity: FloatArray
    #: ``resemblance[f, g]``: cosine of the family tastes (0 on the diagonal and when negative).
    resemblance: FloatArray

    @classmethod
    def draw(
        cls, n: int, catalog: _Catalog, horizon: _Horizon, rng: np.random.Generator
    ) -> _Population:
        n_fam = catalog.n_families
        seg = rng.choice(len(SEGMENTS), size=n, p=_SEGMENT_SHARE).astype(np.int64)
        region = rng.choice(len(REGIONS), size=n, p=_REGION_SHARE).astype(np.int64)
        health = rng.standard_normal(n)
        tastes = rng.standard_normal((n, _FACTOR_DIM))
        # Subsidiaries belong to a bigger client of the same region and share half its tastes.
        parent = np.full(n, -1, dtype=np.int64)
        heads = np.flatnonzero(seg == 2)
        if len(heads) == 0:
            heads = np.flatnonzero(seg == 1)
        if len(heads) > 0 and n >= 20:
            subs = np.flatnonzero((rng.random(n) < 0.05) & (seg != 2))
            parent[subs] = heads[rng.integers(0, len(heads), len(subs))]
            region[subs] = region[parent[subs]]
            tastes[subs] = 0.7 * tastes[parent[subs]] + 0.7 * tastes[subs]
        owner = _owners(region, rng)
        satisfaction = np.clip(np.round(6.5 + 1.8 * health + rng.normal(0.0, 0.8, n)), 0, 10)
        dnc = rng.random(n) < 0.03

        n_groups = max(2, n_fam // 3)
        # Group centres point in clearly different directions (orthogonal for the first three),
        # so that every seed gives distinct groups of families rather than one blur.
        centres = rng.standard_normal((n_groups, _FACTOR_DIM))
        basis, _ = np.linalg.qr(rng.standard_normal((_FACTOR_DIM, _FACTOR_DIM)))
        k = min(n_groups, _FACTOR_DIM)
        centres[:k] = basis.T[:k]
        centres = 1.5 * centres / np.linalg.norm(centres, axis=1, keepdims=True)
        noise = rng.normal(0.0, 0.4, (n_fam, _FACTOR_DIM))
        fam_tastes = centres[np.arange(n_fam) % n_groups] + noise
        popularity = np.linspace(0.5, -0.5, n_fam)
        seg_effect = rng.normal(0.0, 0.4, (len(SEGMENTS), n_fam))
        taste = tastes @ fam_tastes.T / np.sqrt(_FACTOR_DIM)
        unit = fam_tastes / np.linalg.norm(fam_tastes, axis=1, keepdims=True)
        resemblance = np.clip(unit @ unit.T, 0.0, None)
        np.fill_diagonal(resemblance, 0.0)
        later = rng.integers(1, max(2, horizon.n_months - 6), n)
        return cls(
            n=n,
            segment=seg,
            region=region,
            owner=owner,
            parent=parent,
            satisfaction=satisfaction,
            dnc=dnc,
            health=health,
            onboard=np.where(rng.random(n) < 0.45, 0, later).astype(np.int64),
            affinity=_TASTE_WEIGHT * taste + popularity + seg_effect[seg],
            resemblance=resemblance,
        )

    def frame(self) -> pd.DataFrame:
        """Build the clients table."""
        ids = _client_ids(self.n)
        return pd.DataFrame(
            {
                Columns.client: pd.array(ids, dtype="str"),
                Columns.segment: _text(SEGMENTS, self.segment),
                Columns.region: _text(REGIONS, self.region),
                Columns.owner: pd.array(self.owner, dtype="str"),
                Columns.parent: _text(ids, self.parent),
                Columns.do_not_contact: self.dnc.astype(bool),
                Columns.satisfaction: self.satisfaction.astype(np.float64),
            }
        )


class _Simulation:
    """Month-by-month life of the book; holdings are ``(client, family)`` cells of arrays."""

    def __init__(
        self,
        population: _Population,
        catalog: _Catalog,
        horizon: _Horizon,
        rng: np.random.Generator,
    ) -> None:
        self.pop = population
        self.catalog = catalog
        self.horizon = horizon
        self.rng = rng
        self.log = _Log()
        self.n_complaints = 0
        n, n_fam, n_tier = population.n, catalog.n_families, catalog.n_tiers
        seg, affinity = population.segment, population.affinity
        self.adopt_score = (
            _ADOPT_RATE
            * _sigmoid(2.0 * (affinity - 0.8))
            * np.asarray(_SEGMENT_BUYING)[seg][:, None]
            * np.where(population.dnc, 0.7, 1.0)[:, None]
        )
        # Candidates for adoption are drawn against this upper bound of the hazard, then thinned
        # with the exact hazard, so only a few cells a month need the full computation.
        # 2.5 = 1 + 1.5 x (resemblance <= 1, averaged over the other families).
        self.adopt_bound = 2.5 * self.adopt_score
        self.upgrade_score = _sigmoid(1.5 * (affinity - 0.3))
        self.lapse_score = (
            _LAPSE_RATE * np.exp(-0.5 * population.health)[:, None] * np.exp(-0.5 * affinity)
        )
        # Tier preference: small clients start low, enterprises high.
        centre = np.array([0.2, 0.45, 0.8]) * (n_tier - 1)
        self.tier_logit = -1.5 * np.abs(np.arange(n_tier)[None, :] - centre[:, None])
        # Cell state: tier held (0: none), its contract row, start month, term end month,
        # term length (0: open-ended), day of month, seats, month it last ended.
        self.tier = np.zeros((n, n_fam), dtype=np.int64)
        self.row = np.full((n, n_fam), -1, dtype=np.int64)
        self.start_m = np.zeros((n, n_fam), dtype=np.int64)
        self.term_end = np.full((n, n_fam), _NEVER, dtype=np.int64)
        self.term = np.zeros((n, n_fam), dtype=np.int64)
        self.dom = np.zeros((n, n_fam), dtype=np.int64)
        self.qty = np.zeros((n, n_fam), dtype=np.int64)
        self.ended = np.full((n, n_fam), -_NEVER, dtype=np.int64)
        self.churning = np.zeros(n, dtype=bool)
        self.complaint_until = np.full(n, -1, dtype=np.int64)
        self.held_any = np.zeros(n, dtype=bool)
        # (month, client, product, probability) of each start the month could bring, when asked
        self.truth: list[tuple[IntArray, IntArray, IntArray, FloatArray]] | None = None
        # (month, client, hazard) of each churn start the month could bring, when asked
        self.churn_truth: list[tuple[IntArray, IntArray, FloatArray]] | None = None
        self.churn_month = np.full(n, -1, dtype=np.int64)

    # -- the true take-up probabilities (computed from the state, never drawing from rng)

    def _record(self, m: int, c: IntArray, f: IntArray, tier: IntArray, p: FloatArray) -> None:
        keep = (tier > 0) & (p > 0)
        if self.truth is None or not keep.any():
            return
        product = f[keep] * self.catalog.n_tiers + tier[keep] - 1
        month = np.full(int(keep.sum()), m, dtype=np.int64)
        self.truth.append((month, c[keep], product, np.minimum(p[keep], 1.0)))

    def _tier_odds(self, seg: IntArray, f: IntArray, avail: BoolArray) -> FloatArray:
        """``out[i, t - 1]``: chance that :meth:`_pick_tier` picks tier ``t`` (a softmax)."""
        logit = np.where(avail[seg, f], self.tier_logit[seg], -np.inf)
        top = logit.max(axis=1, keepdims=True)
        weight = np.exp(logit - np.where(np.isfinite(top), top, 0.0))
        total = weight.sum(axis=1, keepdims=True)
        odds: FloatArray = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
        return odds

    def _record_adoption(self, m: int, avail: BoolArray) -> None:
        """Chance of each new product this month, as :meth:`_adopt` draws it."""
        pop, n_fam = self.pop, self.catalog.n_families
        held = (self.tier > 0).astype(np.float64)
        boost = 1.0 + 1.5 * (held @ pop.resemblance.T) / max(1, n_fam - 1)
        appetite = 1.0 / (1.0 + 0.3 * held.sum(axis=1))
        hazard = self.adopt_score * boost * appetite[:, None]
        ok = (self.tier == 0) & (pop.onboard < m)[:, None] & ~self.churning[:, None]
        ok &= self.ended + 3 <= m
        c, f = np.nonzero(ok)
        keep = self._base_held(c, f)
        c, f = c[keep], f[keep]
        odds = self._tier_odds(pop.segment[c], f, avail)
        if self.catalog.excluded_pair is not None:
            a, b = self.catalog.excluded_pair
            other = np.where(f == a, b, a)
            busy = (self.tier[c, other] == 1) | (self.ended[c, other] == m)
            odds[:, 0] = np.where(((f == a) | (f == b)) & busy, 0.0, odds[:, 0])
        p = np.minimum(hazard[c, f], 1.0)
        for t in range(1, self.catalog.n_tiers + 1):
            self._record(m, c, f, np.full(c.shape[0], t), p * odds[:, t - 1])

    def _record_upgrades(self, m: int, higher: IntArray, renewal: bool) -> None:
        """Chance of an upgrade this month: at the end of a term, or mid-term."""
        seg = self.pop.segment
        if renewal:
            c, f = np.nonzero(self.term_end == m)
            recent = self.complaint_until[c] >= m
            lapse = np.minimum(self.lapse_score[c, f] * np.where(recent, 3.0, 1.0), 1.0)
            stay = np.where(self.churning[c] | ~self._base_held(c, f), 0.0, 1.0 - lapse)
            p = stay * np.minimum(_UPGRADE_AT_RENEWAL * self.upgrade_score[c, f], 1.0)
        else:
            # called after open-ended contracts stopped: the cells held now are _upgrade's
            c, f = np.nonzero(self.tier > 0)
            ok = (self.start_m[c, f] < m) & ~self.churning[c] & self._base_held(c, f)
            c, f = c[ok], f[ok]
            rate = _UPGRADE_RATE * np.asarray(_SEGMENT_BUYING)[seg[c]]
            p = np.minimum(rate * self.upgrade_score[c, f], 1.0)
        up_to = higher[seg[c], f, self.tier[c, f]]
        self._record(m, c, f, up_to, p)

    def run(self) -> None:
        """Simulate every month of the horizon."""
        for m in range(self.horizon.n_months):
            avail = self.catalog.available(m)
            higher = _next_tiers(avail)
            self._renew(m, higher)
            hc, hf = self._stop_open_ended(m)
            self._upgrade(m, higher, hc, hf)
            self.held_any[:] = False
            self.held_any[hc] = True
            self._churn(m)
            self._adopt(m, avail)
            self._onboard(m, avail)
            self._complain(m)

    # -- helpers

    def _offsets(self, k: int) -> IntArray:
        return self.rng.integers(0, _DAYS_IN_MONTH, k)

    def _open(
        self, m: int, cells: tuple[IntArray, IntArray], tier: IntArray, kind: int, *,
        qty: IntArray, term: IntArray, offsets: IntArray,
    ) -> None:  # fmt: skip
        """Start contracts in ``cells`` (the previous row of a cell, if any, has ended)."""
        c, f = cells
        month_start = self.horizon.month_start
        days = self.horizon.day_of(m, offsets)
        last = len(month_start) - 1
        ends = np.where(term > 0, month_start[np.minimum(m + term, last)] + offsets, _NAT)
        kinds = np.full(len(c), kind)
        ids = self.log.add_rows(
            client=c, family=f, tier=tier, start=days, end=ends, qty=qty, kind=kinds, term=term
        )
        self.tier[c, f] = tier
        self.row[c, f] = ids
        self.start_m[c, f] = m
        self.term[c, f] = term
        self.term_end[c, f] = np.where(term > 0, m + term, _NEVER)
        self.dom[c, f] = np.minimum(days - month_start[m], _DAYS_IN_MONTH - 1)
        self.qty[c, f] = qty

    def _close(self, m: int, c: IntArray, f: IntArray) -> None:
        self.tier[c, f] = 0
        self.row[c, f] = -1
        self.term_end[c, f] = _NEVER
        self.ended[c, f] = m

    def _pick_tier(self, c: IntArray, f: IntArray, avail: BoolArray) -> IntArray:
        """Tier to buy: by segment preference among the tiers on sale (0: none on sale)."""
        seg = self.pop.segment[c]
        ok = avail[seg, f]
        picked = _gumbel_argmax(np.where(ok, self.tier_logit[seg], -np.inf), self.rng) + 1
        return np.where(ok.any(axis=1), picked, 0)

    def _new_terms(self, c: IntArray) -> IntArray:
        u = self.rng.random(len(c))
        cum = np.cumsum(_TERM_SHARE[self.pop.segment[c]], axis=1)
        terms: IntArray = _TERM_MONTHS[(u[:, None] > cum).sum(axis=1)]
        return terms

    def _seats(self, c: IntArray) -> IntArray:
        med = np.asarray(_SEGMENT_SEATS)[self.pop.segment[c]]
        noise = np.exp(self.rng.normal(0.0, 0.6, len(c)))
        return np.maximum(1, np.round(med * noise)).astype(np.int64)

    def _base_held(self, c: IntArray, f: IntArray) -> BoolArray:
        base = self.catalog.base_of[f]
        ok: BoolArray = (base < 0) | (self.tier[c, np.maximum(base, 0)] > 0)
        return ok

    # -- the monthly steps, in order

    def _renew(self, m: int, higher: IntArray) -> None:
        """At the end of a term: renew back to back (sometimes upgraded or with more seats)."""
        if self.truth is not None:
            self._record_upgrades(m, higher, renewal=True)
        c, f = np.nonzero(self.term_end == m)
        if not len(c):
            return
        rng = self.rng
        recent = self.complaint_until[c] >= m
        p = self.lapse_score[c, f] * np.where(recent, 3.0, 1.0)
        # An add-on whose base has gone lapses with it.
        lapse = self.churning[c] | ~self._base_held(c, f) | (rng.random(len(c)) < p)
        self._close(m, c[lapse], f[lapse])
        c, f = c[~lapse], f[~lapse]
        up_to = higher[self.pop.segment[c], f, self.tier[c, f]]
        p_up = _UPGRADE_AT_RENEWAL * self.upgrade_score[c, f]
        go_up = (up_to > 0) & (rng.random(len(c)) < p_up)
        new_tier = np.where(go_up, up_to, self.tier[c, f])
        grow = rng.random(len(c)) < 0.15
        qty = self.qty[c, f]
        more = np.ceil(qty * rng.uniform(1.1, 1.6, len(c))).astype(np.int64)
        new_qty = np.where(grow, more, qty)
        for kind, sel in ((_RENEWAL, ~go_up), (_UPGRADE, go_up)):
            cs, fs = c[sel], f[sel]
            self._open(m, (cs, fs), new_tier[sel], kind, qty=new_qty[sel],
                       term=self.term[cs, fs], offsets=self.dom[cs, fs])  # fmt: skip

    def _stop_open_ended(self, m: int) -> tuple[IntArray, IntArray]:
        """Open-ended contracts stop when the client churns, or now and then.

        Returns the cells still held afterwards.
        """
        hc, hf = np.nonzero(self.tier > 0)
        stop = (self.term[hc, hf] == 0) & (self.start_m[hc, hf] < m)
        draw = self.rng.random(int(stop.sum())) < _EVERGREEN_LAPSE
        stop[stop] = self.churning[hc[stop]] | draw
        c, f = hc[stop], hf[stop]
        if len(c):
            self.log.end_fix.append((self.row[c, f], self.horizon.day_of(m, self._offsets(len(c)))))
            self._close(m, c, f)
        return hc[~stop], hf[~stop]

    def _upgrade(self, m: int, higher: IntArray, hc: IntArray, hf: IntArray) -> None:
        """Mid-term upgrades: the higher tier replaces the lower one from the same day."""
        if self.truth is not None:
            self._record_upgrades(m, higher, renewal=False)
        up_to = higher[self.pop.segment[hc], hf, self.tier[hc, hf]]
        cand = (up_to > 0) & (self.start_m[hc, hf] < m) & ~self.churning[hc]
        cand &= self._base_held(hc, hf)
        c, f, up_to = hc[cand], hf[cand], up_to[cand]
        rate = _UPGRADE_RATE * np.asarray(_SEGMENT_BUYING)[self.pop.segment[c]]
        go = self.rng.random(len(c)) < rate * self.upgrade_score[c, f]
        c, f, up_to = c[go], f[go], up_to[go]
        if not len(c):
            return
        offsets = self._offsets(len(c))
        self.log.end_fix.append((self.row[c, f], self.horizon.day_of(m, offsets)))
        on_term = self.term[c, f] > 0
        term = np.where(on_term, self._new_terms(c), 0)
        term = np.where(on_term & (term == 0), 12, term)
        self._open(m, (c, f), up_to, _UPGRADE, qty=self.qty[c, f], term=term, offsets=offsets)

    def _churn(self, m: int) -> None:
        """Churn starts: the client buys nothing more and lets its contracts lapse."""
        rng, n = self.rng, self.pop.n
        alive = self.held_any & ~self.churning & (self.pop.onboard < m)
        recent = self.complaint_until >= m
        p = _CHURN_RATE * np.exp(-0.6 * self.pop.health) * np.where(recent, 4.0, 1.0)
        starts = alive & (rng.random(n) < p)
        if self.churn_truth is not None:
            at = np.flatnonzero(alive)
            self.churn_truth.append((np.full(at.size, m, dtype=np.int64), at, p[at]))
            self.churn_month[starts] = m
        self.churning |= starts
        signal = starts & (rng.random(n) < 0.6)
        signal |= alive & ~starts & (rng.random(n) < 0.001)
        c = np.flatnonzero(signal)
        self.log.add_events(c, self.horizon.day_of(m, self._offsets(len(c))), _E_CHURN)

    def _adopt(self, m: int, avail: BoolArray) -> None:
        """Adopt new families: hazard from affinity, segment, similar families held, appetite."""
        if self.truth is not None:
            self._record_adoption(m, avail)
        n_fam = self.catalog.n_families
        u = self.rng.random((self.pop.n, n_fam))
        c, f = np.nonzero(u < self.adopt_bound)
        ok = (self.tier[c, f] == 0) & (self.pop.onboard[c] < m) & ~self.churning[c]
        # A lapsed family is not bought again for a few months.
        ok &= (self.ended[c, f] + 3 <= m) & self._base_held(c, f)
        c, f = c[ok], f[ok]
        held = (self.tier[c] > 0).astype(np.float64)
        boost = 1.0 + 1.5 * (held * self.pop.resemblance[f]).sum(axis=1) / max(1, n_fam - 1)
        appetite = 1.0 / (1.0 + 0.3 * held.sum(axis=1))
        take = u[c, f] < self.adopt_score[c, f] * boost * appetite
        c, f = c[take], f[take]
        if not len(c):
            return
        t = self._pick_tier(c, f, avail)
        if self.catalog.excluded_pair is not None:
            a, b = self.catalog.excluded_pair
            other = np.where(f == a, b, a)
            # The other side ending this month may still run on the day this one starts.
            busy = (self.tier[c, other] == 1) | (self.ended[c, other] == m)
            clash = ((f == a) | (f == b)) & (t == 1) & busy
            # Both sides bought in the same month: the second one is dropped.
            first_side = np.zeros(self.pop.n, dtype=bool)
            first_side[c[(f == a) & (t == 1)]] = True
            clash |= (f == b) & (t == 1) & first_side[c]
            t = np.where(clash, 0, t)
        keep = t > 0
        c, f, t = c[keep], f[keep], t[keep]
        self._open(m, (c, f), t, _NEW, qty=self._seats(c), term=self._new_terms(c),
                   offsets=self._offsets(len(c)))  # fmt: skip
        self.held_any[c] = True

    def _onboard(self, m: int, avail: BoolArray) -> None:
        """Onboard new clients with one base family (one that needs no other)."""
        c = np.flatnonzero(self.pop.onboard == m)
        if not len(c):
            return
        seg = self.pop.segment[c]
        on_sale = avail[seg].any(axis=2) & (self.catalog.base_of[None, :] < 0)
        scores = np.where(on_sale, 1.5 * self.pop.affinity[c], -np.inf)
        f = _gumbel_argmax(scores, self.rng)
        t = self._pick_tier(c, f, avail)
        # Only a catalog with nothing on sale for a segment leaves a client without a start.
        c, f, t = c[t > 0], f[t > 0], t[t > 0]
        self._open(m, (c, f), t, _INITIAL, qty=self._seats(c), term=self._new_terms(c),
                   offsets=self._offsets(len(c)))  # fmt: skip
        self.held_any[c] = True

    def _complain(self, m: int) -> None:
        """Complaints, more frequent for unhappy and bigger clients, about a product held."""
        rng, pop = self.rng, self.pop
        p = _COMPLAINT_RATE * np.exp(-0.8 * pop.health) * _COMPLAINTS_BY_SEGMENT[pop.segment]
        c = np.flatnonzero(self.held_any & (rng.random(pop.n) < p) & (pop.onboard < m))
        if not len(c):
            return
        opened = self.horizon.day_of(m, self._offsets(len(c)))
        lasting = np.ceil(np.exp(rng.normal(2.5, 0.9, len(c)))).astype(np.int64)
        f = _gumbel_argmax(np.where(self.tier[c] > 0, 0.0, -np.inf), rng)
        product = f * self.catalog.n_tiers + self.tier[c, f] - 1
        refs = np.arange(self.n_complaints, self.n_complaints + len(c))
        self.n_complaints += len(c)
        topic = rng.integers(0, len(_COMPLAINT_TOPICS), len(c))
        self.log.add_events(c, opened, _E_OPEN, product=product, detail=topic, ref=refs)
        closed = opened + lasting
        self.log.add_events(c, closed, _E_CLOSE, product=product, detail=topic, ref=refs)
        self.complaint_until[c] = m + 6


def _contract_frame(rows: pd.DataFrame, catalog: _Catalog, population: _Population) -> pd.DataFrame:
    """Build the public contracts table, sorted by client, start and family."""
    n_tier = catalog.n_tiers
    order = np.lexsort(
        (rows["family"].to_numpy(), rows["start"].to_numpy(), rows["client"].to_numpy())
    )
    rows = rows.iloc[order].reset_index(drop=True)
    client = rows["client"].to_numpy()
    family = rows["family"].to_numpy()
    tier = rows["tier"].to_numpy()
    qty = rows["qty"].to_numpy().astype(np.float64)
    price = catalog.price[family, tier - 1]
    discount = np.asarray(_SEGMENT_DISCOUNT)[population.segment[client]]
    width = max(6, len(str(len(rows))))
    return pd.DataFrame(
        {
            Columns.contract: _text(_numbered("CT", len(rows), width), np.arange(len(rows))),
            Columns.client: _text(_client_ids(population.n), client),
            Columns.product: _text(catalog.product_ids(), family * n_tier + tier - 1),
            Columns.start: _days_to_datetime(rows["start"].to_numpy()),
            Columns.end: _days_to_datetime(rows["end"].to_numpy()),
            Columns.value: np.round(price * qty * discount, 2),
            Columns.quantity: qty,
        }
    )


def _client_ids(n: int) -> npt.NDArray[np.str_]:
    return _numbered("C", n, max(4, len(str(n))))


def _days_to_datetime(days: IntArray) -> pd.Series:
    """Day numbers to ``datetime64[ns]``; ``_NAT`` becomes ``NaT``."""
    # numpy reads the smallest int64 as NaT, which is what _NAT is.
    return pd.Series(days.astype("datetime64[D]").astype("datetime64[ns]"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rows:
    """Contract rows as aligned arrays, for deriving events from them."""

    client: IntArray
    family: IntArray
    tier: IntArray
    product: IntArray
    start: IntArray
    end: IntArray  # open ends as the largest int64
    kind: IntArray

    @classmethod
    def of(cls, rows: pd.DataFrame, n_tiers: int) -> _Rows:
        end = rows["end"].to_numpy()
        family, tier = rows["family"].to_numpy(), rows["tier"].to_numpy()
        return cls(
            client=rows["client"].to_numpy(),
            family=family,
            tier=tier,
            product=family * n_tiers + tier - 1,
            start=rows["start"].to_numpy(),
            end=np.where(end == _NAT, np.iinfo(np.int64).max, end),
            kind=rows["kind"].to_numpy(),
        )


def _derived_events(sim: _Simulation, frame: pd.DataFrame) -> None:
    """Add offers, needs and contacts, which follow from the simulated contracts."""
    rows = _Rows.of(frame, sim.catalog.n_tiers)
    n = sim.pop.n
    # Each client's active span, from its first contract to its last day as a client.
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, rows.client, rows.start)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, rows.client, np.minimum(rows.end, sim.horizon.end_day))
    span = (first, last)
    n_accepted = _accepted_offers(sim, rows)
    _declined_offers(sim, rows, span, first_ref=n_accepted)
    _needs(sim, rows, span)
    _contacts(sim, span)


def _span_months(span: tuple[IntArray, IntArray]) -> FloatArray:
    first, last = span
    months: FloatArray = np.where(last > first, (last - first) / 30.44, 0.0)
    return months


def _accepted_offers(sim: _Simulation, rows: _Rows) -> int:
    """Offers made before a purchase and accepted the day the contract starts; returns count."""
    rng = sim.rng
    sold = np.flatnonzero(
        ((rows.kind == _NEW) | (rows.kind == _UPGRADE)) & ~sim.pop.dnc[rows.client]
    )
    sold = sold[rng.random(len(sold)) < 0.6]
    made = rows.start[sold] - rng.integers(7, 61, len(sold))
    in_horizon = made >= sim.horizon.start_day
    sold, made = sold[in_horizon], made[in_horizon]
    refs = np.arange(len(sold), dtype=np.int64)
    channel = rng.integers(0, 2, len(sold))
    client, product = rows.client[sold], rows.product[sold]
    sim.log.add_events(client, made, _E_MADE, product=product, detail=channel, ref=refs)
    sim.log.add_events(
        client, rows.start[sold], _E_ACCEPT, product=product, detail=channel, ref=refs
    )
    return len(sold)


def _declined_offers(
    sim: _Simulation, rows: _Rows, span: tuple[IntArray, IntArray], *, first_ref: int
) -> None:
    """Declined offers, mostly of low-affinity families.

    An offer is kept only when the client neither holds the product (or a higher tier of its
    family) when it is made nor buys the product within six months of declining, and no other
    offer of it was declined in the six months before.
    """
    rng, pop, catalog, horizon = sim.rng, sim.pop, sim.catalog, sim.horizon
    first, last = span
    weights = np.where(pop.dnc, 0.0, _span_months(span))
    n_decl = int(rng.poisson(0.012 * weights.sum()))
    if not n_decl:
        return
    c = rng.choice(pop.n, size=n_decl, p=weights / weights.sum())
    made = first[c] + (rng.random(n_decl) * np.maximum(last[c] - first[c] - 30, 1)).astype(np.int64)
    allowed = (catalog.base_of < 0) & (np.arange(catalog.n_families) != catalog.retired[0])
    f = _gumbel_argmax(np.where(allowed[None, :], -0.7 * pop.affinity[c], -np.inf), rng)
    on_sale = catalog.avail[pop.segment[c], f]
    t = _gumbel_argmax(np.where(on_sale, 0.0, -np.inf), rng) + 1
    cand = pd.DataFrame(
        {"i": np.arange(n_decl), "client": c, "family": f, "tier": t,
         "product": f * catalog.n_tiers + t - 1, "made": made,
         "declined": made + rng.integers(3, 31, n_decl)}
    )  # fmt: skip
    cand = cand[(cand["declined"] <= horizon.end_day) & (cand["made"] >= horizon.start_day)]
    held = pd.DataFrame(
        {"client": rows.client, "family": rows.family, "held_tier": rows.tier,
         "held_product": rows.product, "start": rows.start, "end": rows.end}
    )  # fmt: skip
    pairs = cand.merge(held, on=["client", "family"], how="inner")
    holds = (
        (pairs["start"] <= pairs["made"])
        & (pairs["end"] > pairs["made"])
        & (pairs["held_tier"] >= pairs["tier"])
    )
    buys = (
        (pairs["held_product"] == pairs["product"])
        & (pairs["start"] >= pairs["made"])
        & (pairs["start"] <= pairs["declined"] + _SIX_MONTHS)
    )
    cand = cand[~cand["i"].isin(pairs.loc[holds | buys, "i"].unique())]
    cand = cand.sort_values(["client", "product", "made"], kind="stable")
    prev = cand.groupby(["client", "product"])["declined"].shift(1)
    cand = cand[~(prev.notna() & (cand["made"] <= prev + _SIX_MONTHS))].sort_values("i")
    k = len(cand)
    refs = np.arange(first_ref, first_ref + k, dtype=np.int64)
    client, product = cand["client"].to_numpy(), cand["product"].to_numpy()
    channel = rng.integers(0, 2, k)
    why = 2 + rng.integers(0, len(_DECLINE_REASONS), k)
    sim.log.add_events(
        client, cand["made"].to_numpy(), _E_MADE, product=product, detail=channel, ref=refs
    )
    sim.log.add_events(
        client, cand["declined"].to_numpy(), _E_DECLINE, product=product, detail=why, ref=refs
    )


def _needs(sim: _Simulation, rows: _Rows, span: tuple[IntArray, IntArray]) -> None:
    """Stated needs: often months before a purchase, sometimes never followed by one."""
    rng = sim.rng
    bought = np.flatnonzero((rows.kind == _NEW) & (rng.random(len(rows.kind)) < 0.3))
    said = rows.start[bought] - rng.integers(20, 151, len(bought))
    in_horizon = said >= sim.horizon.start_day
    bought, said = bought[in_horizon], said[in_horizon]
    as_family = rng.random(len(bought)) < 0.7
    sim.log.add_events(
        rows.client[bought], said, _E_NEED,
        product=np.where(as_family, -1, rows.product[bought]),
        family=np.where(as_family, rows.family[bought], -1),
    )  # fmt: skip
    months = _span_months(span)
    n_idle = int(rng.poisson(0.003 * months.sum()))
    if n_idle:
        first, last = span
        c = rng.choice(sim.pop.n, size=n_idle, p=months / months.sum())
        day = first[c] + (rng.random(n_idle) * (last[c] - first[c])).astype(np.int64)
        families = rng.integers(0, sim.catalog.n_families, n_idle)
        sim.log.add_events(c, day, _E_NEED, family=families)


def _contacts(sim: _Simulation, span: tuple[IntArray, IntArray]) -> None:
    """Visits and calls over the whole relationship, more for bigger clients."""
    rng, seg = sim.rng, sim.pop.segment
    first, last = span
    counts = rng.poisson(np.asarray(_CONTACTS_PER_MONTH)[seg] * _span_months(span))
    c = np.repeat(np.arange(sim.pop.n), counts)
    day = first[c] + (rng.random(len(c)) * (last[c] - first[c])).astype(np.int64)
    visit = rng.random(len(c)) < np.array([0.2, 0.4, 0.6])[seg[c]]
    sim.log.add_events(c, day, _E_CONTACT, detail=np.where(visit, 0, 1) + 10)


def _text(labels: Sequence[str] | npt.NDArray[Any], codes: IntArray) -> pd.Series:
    """Text column ``labels[codes]`` (missing where ``codes < 0``) without a Python loop."""
    pa = importlib.import_module("pyarrow")
    pc = importlib.import_module("pyarrow.compute")
    taken = pc.take(pa.array(np.asarray(labels, dtype=str)), pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(taken, dtype="str"))


def _numbered(prefix: str, n: int, width: int = 6) -> npt.NDArray[np.str_]:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _events_to_frame(
    log: _Log, catalog: _Catalog, population: _Population, horizon: _Horizon
) -> pd.DataFrame:
    """Build the public event log from the coded events, sorted by date."""
    start_day, end_day = horizon.start_day, horizon.end_day
    ev = {k: log.column(log.events, k) for k in log.events}
    keep = (ev["day"] <= end_day) & (ev["day"] >= start_day)
    ev = {k: v[keep] for k, v in ev.items()}
    order = np.lexsort((ev["ref"], ev["type"], ev["client"], ev["day"]))
    ev = {k: v[order] for k, v in ev.items()}
    etype = ev["type"]
    n_products = catalog.n_families * catalog.n_tiers

    # product_id names a product, or a family for some needs.
    product = np.where(ev["family"] >= 0, n_products + ev["family"], ev["product"])
    product_labels = [*catalog.product_ids(), *catalog.families]

    # detail codes: 0/1 offer channel, 2.. decline reasons; 10/11 visit/call; complaints a topic.
    detail_labels = [
        "visit", "call", *_DECLINE_REASONS, *_COMPLAINT_TOPICS, "stated need", "churn risk",
    ]  # fmt: skip
    topics = 2 + len(_DECLINE_REASONS)
    code = ev["detail"]
    detail = np.full(len(etype), -1, dtype=np.int64)
    offers = (etype == _E_MADE) | (etype == _E_ACCEPT)
    detail[offers] = np.clip(code[offers], 0, 1)
    decl = etype == _E_DECLINE
    detail[decl] = code[decl]
    cont = etype == _E_CONTACT
    detail[cont] = code[cont] - 10
    compl = (etype == _E_OPEN) | (etype == _E_CLOSE)
    detail[compl] = topics + code[compl]
    detail[etype == _E_NEED] = topics + len(_COMPLAINT_TOPICS)
    detail[etype == _E_CHURN] = topics + len(_COMPLAINT_TOPICS) + 1

    # Complaint refs CP..., offer refs OF..., each numbered from 1.
    complaint_refs = ev["ref"][(ev["ref"] >= 0) & compl]
    n_complaints = int(complaint_refs.max()) + 1 if len(complaint_refs) else 0
    ref_of = ev["ref"][(ev["ref"] >= 0) & ~compl]
    n_offer_refs = int(ref_of.max()) + 1 if len(ref_of) else 0
    ref_labels = np.concatenate([_numbered("CP", n_complaints), _numbered("OF", n_offer_refs)])
    ref = np.where(ev["ref"] < 0, -1, np.where(compl, ev["ref"], n_complaints + ev["ref"]))
    return pd.DataFrame(
        {
            Columns.client: _text(_client_ids(population.n), ev["client"]),
            Columns.date: _days_to_datetime(ev["day"]),
            Columns.type: _text(_EVENT_TYPES, etype),
            Columns.product: _text(product_labels, product),
            Columns.detail: _text(detail_labels, detail),
            Columns.ref: _text(ref_labels, ref),
        }
    )


# ----------------------------------------------------------------------------------------------
# Demo files


def write_frames(frames: dict[str, pd.DataFrame], directory: str | Path) -> list[Path]:
    """Write the four frames as zstd-compressed Parquet files, one per table.

    List columns of the catalog (``requires``, ``excludes``, ``segments``) are stored as Parquet
    lists; :func:`crosssell.datasets.demo_frames` turns them back into tuples.

    Parameters
    ----------
    frames : dict of str to pandas.DataFrame
        As returned by :func:`synthetic_frames`.
    directory : str or Path
        Output folder, created if needed.

    Returns
    -------
    list of Path
        The files written, in the order contracts, products, clients, events.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in write_frames(synthetic_frames(30, seed=0), tmp)]
    ['contracts.parquet', 'products.parquet', 'clients.parquet', 'events.parquet']
    """
    pa = importlib.import_module("pyarrow")
    pq = importlib.import_module("pyarrow.parquet")
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in ("contracts", "products", "clients", "events"):
        frame = frames[table].copy()
        for col in (Columns.requires, Columns.excludes, Columns.segments):
            if col in frame.columns:
                lists = [None if v is None else list(v) for v in frame[col]]
                frame[col] = pd.Series(lists, index=frame.index, dtype=object)
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        path = target / f"{table}.parquet"
        # Fixed writer settings keep the files byte-stable across rebuilds.
        pq.write_table(arrow, path, compression="zstd", compression_level=19)
        paths.append(path)
    return paths


def write_demo(directory: str | Path | None = None) -> list[Path]:
    """Generate the demo book with :data:`DEMO_SETTINGS` and write it as Parquet files.

    Parameters
    ----------
    directory : str or Path, optional
        Where to write ``contracts.parquet``, ``products.parquet``, ``clients.parquet`` and
        ``events.parquet``; by default the package's ``datasets/data/demo`` folder.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in write_demo(tmp)]
    ['contracts.parquet', 'products.parquet', 'clients.parquet', 'events.parquet']
    """
    target = Path(directory) if directory is not None else Path(__file__).parent / "data" / "demo"
    return write_frames(synthetic_frames(**DEMO_SETTINGS), target)


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crosssell.datasets._synthetic",
        description="Generate a synthetic B2B book, or rebuild the demo files of crosssell.",
    )
    parser.add_argument("--demo", action="store_true", help="rebuild the shipped demo files")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--n-clients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.demo:
        paths = write_demo(args.out)
    else:
        if args.out is None:
            parser.error("--out is required unless --demo is given")
        paths = write_frames(synthetic_frames(args.n_clients, seed=args.seed), args.out)
    for path in paths:
        print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
