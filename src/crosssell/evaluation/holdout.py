"""Measured lift: what proposing changed, read from the decision log against its holdout group.

Clients held out by a :class:`~crosssell.Holdout` got no proactive offer, but what they would
have been offered is in the decision log. :func:`lift` compares, over the clients with a (would-be)
offer, what the two arms took up within a horizon after the decision: the share that took up any
new product (``take_up``), the share that took up the very product at the top of their list
(``offer_take_up``) and the annual value taken up (``value``). Outcomes are read from the Book,
the same for both arms, never from reactions (a held-out client has none).

The difference of the arms' means carries a percentile bootstrap interval (clients resampled
within each arm) and, beside it, the normal interval of the delta method; the two agree when the
sample is large enough for either to be trusted.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.columns import Columns
from crosssell.evaluation import _common, metrics
from crosssell.evaluation._figures import figure_axes
from crosssell.evaluation.truth import additions
from crosssell.evaluation.uplift import auuc, qini_coefficient, qini_curve, top_uplift

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from crosssell.book import Book

__all__ = ["LIFT_METRICS", "LiftReport", "lift"]

#: What is compared between the arms, per client.
LIFT_METRICS: Final = ("take_up", "offer_take_up", "value")
_STAT_COLUMNS: Final = (
    "metric",
    "treated",
    "holdout",
    "lift",
    "relative_lift",
    "ci_low",
    "ci_high",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "n_treated",
    "n_holdout",
)
_NO_FAMILY: Final = "(none)"
_BOOT_CELLS: Final = 4_000_000


@dataclass(frozen=True, slots=True, eq=False)
class LiftReport:
    """Take-up and value in the treated and holdout arms, and their difference.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per metric (:data:`LIFT_METRICS`): the arms' means (``treated``, ``holdout``), their
        difference (``lift``) and ``relative_lift`` (over the holdout), the bootstrap interval
        (``ci_low``, ``ci_high``), the delta-method interval (``delta_ci_low``,
        ``delta_ci_high``), the two-sided ``p_value`` of no difference, and the clients per
        arm.
    by_family : pandas.DataFrame
        The same per product family of the client's top (would-be) offer, with a ``family``
        column first.
    by_segment : pandas.DataFrame
        The same per client segment (empty when the clients table has none).
    clients : pandas.DataFrame
        One row per client compared: ``client_id``, ``arm``, ``as_of``, ``product_id`` (the
        top offer), ``family``, ``segment``, ``take_up``, ``offer_take_up``, ``value``.
    horizon : pandas.Timedelta
    level : float
        The confidence level of the intervals.
    no_offer : pandas.Series
        Clients decided with no offer, per arm (they are not compared: proposing nothing is
        the same in both arms).
    targeting : pandas.DataFrame
        With ``lift(..., uplift=...)``: how well the uplift estimates order the clients, on
        the take-up of their top offer. One row per ``measure``: ``qini`` (area between the
        Qini curve and random targeting, per client), ``auuc`` (area under the uplift
        curve, per client), and for the top decile by estimated uplift ``top_decile_clients``,
        ``top_decile_uplift`` (treated minus holdout take-up among them),
        ``top_decile_added`` (take-ups that proposing to them adds),
        ``top_decile_share_of_added`` (of what proposing to everyone adds) and
        ``top_decile_value_added`` (the same for the value taken up). Empty without
        ``uplift``.
    qini : pandas.DataFrame
        With ``uplift``: the Qini and uplift curves
        (:func:`crosssell.evaluation.uplift.qini_curve`); empty without.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, true_uplift=0.3, seed=0)
    >>> report = lift(sim.decisions, sim.book, horizon="90D", n_boot=200)
    >>> row = report.summary.set_index("metric").loc["offer_take_up"]
    >>> bool(row["ci_low"] > 0)  # proposing helped, and the interval says so
    True
    """

    summary: pd.DataFrame
    by_family: pd.DataFrame
    by_segment: pd.DataFrame
    clients: pd.DataFrame
    horizon: pd.Timedelta
    level: float
    no_offer: pd.Series
    targeting: pd.DataFrame = field(default_factory=pd.DataFrame)
    qini: pd.DataFrame = field(default_factory=pd.DataFrame)

    def sample_size(
        self, effect: float, *, power: float = 0.8, metric: str = "take_up"
    ) -> dict[str, int]:
        """Clients needed to detect an absolute lift of ``effect``, at this holdout share.

        Uses the holdout arm's mean (and, for ``value``, the pooled spread) as the baseline and
        a two-sided test at the report's level.

        Parameters
        ----------
        effect : float
            The smallest lift worth detecting, in the metric's unit (0.02 = two points of
            take-up).
        power : float, default 0.8
        metric : {"take_up", "offer_take_up", "value"}, default "take_up"

        Returns
        -------
        dict
            ``clients`` (in all), ``holdout`` (of them held out) and ``holdout_share``
            (per cent, as observed).

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, seed=0)
        >>> report = lift(sim.decisions, sim.book, n_boot=0)
        >>> report.sample_size(0.05)["clients"] > report.sample_size(0.10)["clients"]
        True
        """
        if metric not in LIFT_METRICS:
            raise ValueError(f"metric must be one of {', '.join(LIFT_METRICS)}. Got {metric!r}.")
        if not effect or not math.isfinite(effect):
            raise ValueError(f"effect must be a non-zero number. Got {effect!r}.")
        if not 0.0 < power < 1.0:
            raise ValueError(f"power must be in (0, 1). Got {power!r}.")
        arms = self.clients["arm"]
        y = self.clients[metric].to_numpy(dtype=np.float64)
        h = float((arms == "holdout").mean()) if len(arms) else 0.5
        h = min(max(h, 1e-6), 1 - 1e-6)
        if metric == "value":
            variance = float(np.var(y, ddof=1)) if len(y) > 1 else float("nan")
        else:
            base = (
                float(y[(arms == "holdout").to_numpy()].mean())
                if (arms == "holdout").any()
                else 0.5
            )
            p = min(max(base + effect / 2.0, 1e-6), 1 - 1e-6)
            variance = p * (1.0 - p)
        z = NormalDist().inv_cdf(0.5 + self.level / 2.0) + NormalDist().inv_cdf(power)
        n = math.ceil(z**2 * variance * (1.0 / h + 1.0 / (1.0 - h)) / effect**2)
        return {"clients": n, "holdout": math.ceil(n * h), "holdout_share": round(100 * h)}

    def plot(
        self, *, by: str = "family", metric: str = "take_up", ax: Axes | None = None
    ) -> Figure:
        """Draw the lift with its interval, overall and per family (or segment).

        Parameters
        ----------
        by : {"family", "segment"}, default "family"
        metric : {"take_up", "offer_take_up", "value"}, default "take_up"
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, seed=0)
        >>> fig = lift(sim.decisions, sim.book, n_boot=100).plot()
        >>> fig.axes[0].get_xlabel()
        'lift in take_up (treated - holdout)'
        """
        if by not in ("family", "segment"):
            raise ValueError(f"by must be 'family' or 'segment'. Got {by!r}.")
        parts = self.by_family if by == "family" else self.by_segment
        rows = [("all clients", self.summary)]
        if len(parts):
            rows += [(str(name), g) for name, g in parts.groupby(by, sort=True)]
        labels, mid, low, high = [], [], [], []
        for name, frame in rows:
            r: Any = frame.set_index("metric").loc[metric]
            labels.append(f"{name} (n={int(r['n_treated'])}+{int(r['n_holdout'])})")
            mid.append(float(r["lift"]))
            lo, hi = r["ci_low"], r["ci_high"]
            if not (np.isfinite(lo) and np.isfinite(hi)):
                lo, hi = r["delta_ci_low"], r["delta_ci_high"]
            low.append(float(lo))
            high.append(float(hi))
        fig, (axis,) = figure_axes(ax, figsize=(6.0, 0.5 * len(labels) + 1.2))
        y = np.arange(len(labels))[::-1]
        m = np.asarray(mid)
        err = np.vstack([m - np.asarray(low), np.asarray(high) - m])
        axis.errorbar(m, y, xerr=np.nan_to_num(err), fmt="o", color="C0", capsize=3)
        axis.axvline(0.0, color="0.5", linewidth=0.8, linestyle="--")
        axis.set_yticks(y, labels)
        axis.set_xlabel(f"lift in {metric} (treated - holdout)")
        axis.set_title(f"Lift against the holdout, {int(self.level * 100)}% intervals")
        return fig

    def to_frame(self) -> pd.DataFrame:
        """Return the summary, the families and the segments as one tidy table.

        Returns
        -------
        pandas.DataFrame
            ``group`` (``"all"``, ``"family"`` or ``"segment"``), ``name`` and the statistics.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, seed=0)
        >>> lift(sim.decisions, sim.book, n_boot=0).to_frame()["group"].iloc[0]
        'all'
        """
        parts = [self.summary.assign(group="all", name="all clients")]
        if len(self.by_family):
            parts.append(self.by_family.rename(columns={"family": "name"}).assign(group="family"))
        if len(self.by_segment):
            parts.append(
                self.by_segment.rename(columns={"segment": "name"}).assign(group="segment")
            )
        out = pd.concat(parts, ignore_index=True)
        return out.loc[:, ["group", "name", *_STAT_COLUMNS]]

    def _repr_html_(self) -> str:
        html = self.summary.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        if len(self.targeting):
            html += self.targeting.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        return html


def lift(
    log: Any,
    book: Book,
    horizon: Any = "90D",
    *,
    campaign: str | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    uplift: Any = None,
) -> LiftReport:
    """Compare what treated and held-out clients took up after the decisions.

    For each client with a (would-be) offer in the log (the first decision of the client, or
    of the campaign), the outcomes are read from ``book`` in ``(as_of, as_of + horizon]``:
    whether it took up any new product, whether it took up its top offer's product, and the
    annual value taken up. Treated and held-out clients are compared overall, per product
    family of the top offer and per segment.

    Parameters
    ----------
    log : DecisionLog or DataFrame
        The decision log, or its decisions (columns of
        :data:`crosssell.decisions.DECISION_COLUMNS`).
    book : Book
        The book, including what happened after the decisions.
    horizon : str, timedelta or int, default "90D"
        How long after ``as_of`` a take-up counts; an int is a number of days.
    campaign : str, optional
        Only this campaign's decisions.
    n_boot : int, default 1000
        Bootstrap resamples (0: the delta-method interval alone).
    level : float, default 0.95
    seed : int, default 0
    uplift : Uplift, mapping or pandas.Series, optional
        Estimated uplift of each compared client's top offer: a fitted
        :class:`~crosssell.scorers.Uplift` (asked for each client and product), or uplift by
        client id. The report's :attr:`~LiftReport.targeting` then says how well targeting
        by it would have done on these arms: Qini, AUUC and the top decile's capture.

    Returns
    -------
    LiftReport

    Raises
    ------
    ValueError
        When the log has no offer decisions in one of the arms (there is nothing to compare:
        was a holdout used?).

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, seed=0)
    >>> report = lift(sim.decisions, sim.book, horizon="90D", n_boot=200)
    >>> report.summary["metric"].tolist()
    ['take_up', 'offer_take_up', 'value']

    With uplift estimates, the report also measures targeting by them:

    >>> model = cs.scorers.Uplift(n_boot=0).fit(sim.decisions, sim.book)
    >>> report = lift(sim.decisions, sim.book, n_boot=0, uplift=model)
    >>> report.targeting["measure"].tolist()[:3]
    ['qini', 'auuc', 'top_decile_clients']
    """
    if isinstance(log, numbers.Real) and isinstance(book, numbers.Real):
        warnings.warn(
            "crosssell.evaluation.lift(value, baseline), the ratio of two metrics, moved to "
            "crosssell.evaluation.metrics.lift; crosssell.evaluation.lift now measures the lift "
            "of a decision log against its holdout group.",
            DeprecationWarning,
            stacklevel=2,
        )
        return metrics.lift(float(log), float(book))  # type: ignore[return-value]
    owner = "lift"
    span = _common.to_horizon(horizon, owner=owner)
    if not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ValueError(f"lift: n_boot must be a whole number >= 0. Got {n_boot!r}.")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"lift: level must be in (0, 1). Got {level!r}.")
    decisions = log.decisions() if hasattr(log, "decisions") else log
    if not isinstance(decisions, pd.DataFrame):
        raise TypeError(
            f"lift takes a DecisionLog or a DataFrame of decisions. Got {type(log).__name__}."
        )
    missing = [
        c
        for c in ("client_id", "action", "arm", "as_of", "product_id", "rank")
        if c not in decisions.columns
    ]
    if missing:
        raise ValueError(f"lift: the decisions lack column(s) {', '.join(missing)}.")
    clients, no_offer = _clients(decisions, campaign)
    arms = set(clients["arm"])
    if not {"treated", "holdout"} <= arms:
        raise ValueError(
            f"lift: the decisions hold offers in the arm(s) {sorted(arms) or 'none'} only; a "
            "lift needs treated and held-out clients with offers. Decide with a holdout: "
            "rec.recommend(log=log, holdout=cs.Holdout(share=0.1, salt=...))."
        )
    clients = _outcomes(clients, book, span)
    rng = np.random.default_rng(seed)
    summary = _compare(clients, rng, n_boot, float(level))
    by_family = _by(clients, "family", rng, n_boot, float(level))
    by_segment = (
        _by(clients, "segment", rng, n_boot, float(level))
        if clients["segment"].notna().any()
        else pd.DataFrame(columns=["segment", *_STAT_COLUMNS])
    )
    targeting, curve = pd.DataFrame(), pd.DataFrame()
    if uplift is not None:
        estimate = _uplift_of(uplift, clients, book)
        clients = clients.assign(uplift=estimate)
        targeting, curve = _targeting(clients)
    return LiftReport(
        summary=summary,
        by_family=by_family,
        by_segment=by_segment,
        clients=clients,
        horizon=span,
        level=float(level),
        no_offer=no_offer,
        targeting=targeting,
        qini=curve,
    )


def _uplift_of(uplift: Any, clients: pd.DataFrame, book: Book) -> npt.NDArray[np.float64]:
    """Each compared client's estimated uplift: from a fitted model, or looked up by client."""
    if callable(getattr(uplift, "predict", None)):
        pairs = clients[[Columns.client, Columns.product]].reset_index(drop=True)
        # the clients as this Book describes them, not as the model's own Book did: the same
        # id may be another client of another campaign
        table = book.client_table
        described = [c for c in getattr(uplift, "features_", []) if c in table.columns]
        if described:
            by_id = table.set_index(table[Columns.client].astype(str))[described]
            attributes = by_id.reindex(pairs[Columns.client].astype(str).to_numpy())
            pairs[described] = attributes.to_numpy()
        if getattr(uplift, "features", None) == "ranker":
            # the pairs' features as the measured Book stood at each decision
            pairs["as_of"] = clients["as_of"].to_numpy()
            return np.asarray(uplift.predict(pairs, book=book)["uplift"], dtype=np.float64)
        return np.asarray(uplift.predict(pairs)["uplift"], dtype=np.float64)
    if isinstance(uplift, Mapping | pd.Series):
        by_client = pd.Series(dict(uplift)) if isinstance(uplift, Mapping) else uplift
        by_client.index = by_client.index.astype(str)
        found = clients[Columns.client].astype(str).map(by_client)
        missing = found.isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            shown = ", ".join(repr(clients[Columns.client].iloc[i]) for i in rows[:5])
            raise ValueError(
                f"lift: 'uplift' has no estimate for {rows.size} of the {len(clients)} compared "
                f"clients (showing up to 5): {shown}. Give one per client of the decisions."
            )
        return found.to_numpy(dtype=np.float64)
    raise TypeError(
        "lift: 'uplift' must be a fitted crosssell.scorers.Uplift, a mapping or a Series of "
        f"uplift by client id. Got {type(uplift).__name__}."
    )


def _targeting(clients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Qini, AUUC and the top decile's capture of an ordering by the clients' uplift."""
    u = clients["uplift"].to_numpy(dtype=np.float64)
    treated = (clients["arm"] == "treated").to_numpy()
    y = clients["offer_take_up"].to_numpy(dtype=np.float64)
    top = top_uplift(u, treated, y, share=0.1, value=clients["value"].to_numpy(np.float64))
    measures = {
        "qini": qini_coefficient(u, treated, y),
        "auuc": auuc(u, treated, y),
        "top_decile_clients": top["n"],
        "top_decile_uplift": top["uplift"],
        "top_decile_added": top["added"],
        "top_decile_share_of_added": top["share_of_added"],
        "top_decile_value_added": top["value_added"],
    }
    table = pd.DataFrame({"measure": list(measures), "value": list(measures.values())})
    return table, qini_curve(u, treated, y)


def _text(values: Any) -> pd.Series:
    return pd.Series(values, dtype=object).map(lambda v: None if pd.isna(v) else str(v).strip())


def _clients(decisions: pd.DataFrame, campaign: str | None) -> tuple[pd.DataFrame, pd.Series]:
    """One row per client: its first decision, its arm and its top (would-be) offer."""
    d = decisions
    if campaign is not None:
        d = d[d["campaign"] == campaign] if "campaign" in d.columns else d.iloc[:0]
    d = d.assign(client_id=_text(d["client_id"]).to_numpy(), as_of=pd.to_datetime(d["as_of"]))
    order = ["as_of", "decided_at"] if "decided_at" in d.columns else ["as_of"]
    first = d.sort_values(order, kind="stable").drop_duplicates("client_id")[["client_id", "as_of"]]
    d = d.merge(first, on=["client_id", "as_of"], how="inner")
    offers = d[d["action"] == "offer"]
    top = offers.sort_values(["client_id", "rank"], kind="stable").drop_duplicates("client_id")
    none = d[~d["client_id"].isin(top["client_id"])].drop_duplicates("client_id")
    no_offer = none["arm"].value_counts().rename("clients")
    out = pd.DataFrame(
        {
            "client_id": top["client_id"].to_numpy(),
            "arm": top["arm"].astype(str).to_numpy(),
            "as_of": top["as_of"].to_numpy(),
            "product_id": _text(top["product_id"]).to_numpy(),
        }
    )
    return out, no_offer


def _outcomes(clients: pd.DataFrame, book: Book, span: pd.Timedelta) -> pd.DataFrame:
    """Add family, segment and the outcomes read from the book within the horizon."""
    products = book.products
    family = (
        pd.Series(products[Columns.family].to_numpy(), index=_text(products[Columns.product]))
        if Columns.family in products.columns
        else pd.Series(dtype=object)
    )
    table = book.clients
    segment = (
        pd.Series(table[Columns.segment].to_numpy(), index=_text(table[Columns.client]))
        if Columns.segment in table.columns
        else pd.Series(dtype=object)
    )
    out = clients.copy()
    out["family"] = out["product_id"].map(family).fillna(_NO_FAMILY).astype(str)
    out["segment"] = out["client_id"].map(segment) if len(segment) else None
    took = np.zeros(len(out), dtype=bool)
    took_offer = np.zeros(len(out), dtype=bool)
    value = np.zeros(len(out), dtype=np.float64)
    for day, rows in out.groupby("as_of", sort=True).groups.items():
        # every decided client counts, also one that held nothing active at the decision
        adds = additions(book, cast(Any, day), span, include_absent=True)
        adds = adds.assign(
            client_id=_text(adds[Columns.client]).to_numpy(),
            product_id=_text(adds[Columns.product]).to_numpy(),
        )
        pos = out.index.get_indexer(rows)
        who = out["client_id"].to_numpy()[pos]
        per_client = adds.groupby("client_id")[Columns.value].sum(min_count=0)
        took[pos] = np.isin(who, adds["client_id"].to_numpy())
        value[pos] = pd.Series(who).map(per_client).fillna(0.0).to_numpy(dtype=np.float64)
        pairs = pd.MultiIndex.from_arrays([adds["client_id"], adds["product_id"]])
        wanted = pd.MultiIndex.from_arrays([who, out["product_id"].to_numpy()[pos]])
        took_offer[pos] = wanted.isin(pairs)
    out["take_up"] = took.astype(np.float64)
    out["offer_take_up"] = took_offer.astype(np.float64)
    out["value"] = value
    return out


def _compare(
    clients: pd.DataFrame, rng: np.random.Generator, n_boot: int, level: float
) -> pd.DataFrame:
    """Compute the statistics of every metric for one group of clients."""
    treated = (clients["arm"] == "treated").to_numpy()
    held = (clients["arm"] == "holdout").to_numpy()
    ys = {m: clients[m].to_numpy(dtype=np.float64) for m in LIFT_METRICS}
    boots = _bootstrap({m: (y[treated], y[held]) for m, y in ys.items()}, rng, n_boot)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    rows = []
    for m, y in ys.items():
        a, b = y[treated], y[held]
        mean_a = float(a.mean()) if a.size else float("nan")
        mean_b = float(b.mean()) if b.size else float("nan")
        diff = mean_a - mean_b
        se = (
            math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
            if a.size > 1 and b.size > 1
            else float("nan")
        )
        p = 2.0 * (1.0 - NormalDist().cdf(abs(diff) / se)) if se > 0 else float("nan")
        low = high = float("nan")
        if m in boots and boots[m].size:
            low, high = np.quantile(boots[m], [(1 - level) / 2, (1 + level) / 2]).tolist()
        rows.append(
            {
                "metric": m,
                "treated": mean_a,
                "holdout": mean_b,
                "lift": diff,
                "relative_lift": diff / mean_b if mean_b else float("nan"),
                "ci_low": low,
                "ci_high": high,
                "delta_ci_low": diff - z * se,
                "delta_ci_high": diff + z * se,
                "p_value": p,
                "n_treated": int(a.size),
                "n_holdout": int(b.size),
            }
        )
    return pd.DataFrame(rows, columns=list(_STAT_COLUMNS))


def _bootstrap(
    samples: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
    rng: np.random.Generator,
    n_boot: int,
) -> dict[str, npt.NDArray[np.float64]]:
    """Differences of means over ``n_boot`` resamples of clients within each arm."""
    first = next(iter(samples.values()))
    n_a, n_b = first[0].size, first[1].size
    if n_boot == 0 or n_a < 2 or n_b < 2:
        return {}
    out = {m: np.empty(n_boot, dtype=np.float64) for m in samples}
    step = max(1, _BOOT_CELLS // max(n_a, n_b))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        ia = rng.integers(0, n_a, size=(stop - start, n_a))
        ib = rng.integers(0, n_b, size=(stop - start, n_b))
        for m, (a, b) in samples.items():
            out[m][start:stop] = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    return out


def _by(
    clients: pd.DataFrame, column: str, rng: np.random.Generator, n_boot: int, level: float
) -> pd.DataFrame:
    parts = []
    for name, group in clients.groupby(column, sort=True):
        stats = _compare(group, rng, n_boot, level)
        stats.insert(0, column, name)
        parts.append(stats)
    if not parts:
        return pd.DataFrame(columns=[column, *_STAT_COLUMNS])
    return pd.concat(parts, ignore_index=True)
