"""Uplift: what proposing changes, per client and product, learned from a holdout.

A decision log with a :class:`~crosssell.Holdout` holds offers made (``arm="treated"``) and
offers withheld (``arm="holdout"``). Reading from the Book which of them were taken up within a
horizon after the decision, :class:`Uplift` estimates, for each (client, product),

``uplift = P(take | proposed) - P(take | not proposed)``

which is negative where a proposal puts clients off (a "sleeping dog" woken). Two learners:

* ``"two_model"``: one logistic regression per arm, their difference;
* ``"transformed_outcome"``: one regression of ``Z = Y (T - e) / (e (1 - e))``, whose
  expectation given the features is the uplift when ``T`` is drawn with the known chance ``e``
  (Athey & Imbens, 2015).

The features are the client's attributes (its segment, size...) and the product and its family:
cheap, and enough to say which kinds of client a proposal helps. With ``features="ranker"``
the point-in-time features of the pair that the :class:`~crosssell.scorers.Ranker` reads
(holdings of the family, past offers and answers, popularity in the segment, tenure...) are
added, each computed at its decision's date. The standard error and the interval come from a
bootstrap of the decisions within each arm.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit

from crosssell._params import Estimator, Interval, Options, Satisfies
from crosssell.columns import Columns
from crosssell.exceptions import NotFittedError, SchemaError

if TYPE_CHECKING:
    from crosssell.book import Book

__all__ = ["UPLIFT_COLUMNS", "Uplift"]

_FloatVec = npt.NDArray[np.float64]
#: Columns :meth:`Uplift.predict` adds to the pairs it is given.
UPLIFT_COLUMNS: Final = ("uplift", "se", "ci_low", "ci_high", "p_treated", "p_holdout")
# client columns that name or route a client rather than describe it
_NOT_FEATURES: Final = frozenset(
    {Columns.client, Columns.client_idx, Columns.parent, Columns.owner, Columns.do_not_contact}
)
_NONE: Final = "(none)"
_NEWTON_STEPS: Final = 50
_CLIP: Final = 3.0
_NEWTON_TOL: Final = 1e-8
_DECISION_COLUMNS: Final = ("client_id", "product_id", "action", "arm", "as_of")
# pair features that are codes rather than quantities: the attributes give them as categories
_CODES: Final = frozenset({"product_family", "client_segment"})
# above this many distinct decision days, features are computed once a month (at its first day)
_MAX_DAYS: Final = 24


def _is_horizon(value: Any) -> bool:
    if not isinstance(value, str | pd.Timedelta):
        return False
    try:
        return bool(pd.Timedelta(value) >= pd.Timedelta(days=1))
    except ValueError:
        return False


class Uplift(Estimator):
    """The change in take-up that proposing a product makes, per client and product.

    Parameters
    ----------
    learner : {"two_model", "transformed_outcome"}, default "two_model"
        ``"two_model"``: a logistic regression per arm, their difference.
        ``"transformed_outcome"``: a ridge regression of the transformed outcome
        ``Y (T - e) / (e (1 - e))``, with ``e`` the known chance of being proposed to.
    horizon : str or timedelta, default "90D"
        A take-up counts when the client's contract for the product starts within this long
        after the decision's ``as_of`` and the client did not hold the product at ``as_of``.
        Outcomes are read from the Book, the same for both arms, never from reactions: a
        held-out client has none.
    treated_share : float or None, default None
        The chance ``e`` that a decision was proposed (1 - the holdout share); None reads it as
        the share of treated decisions.
    C : float, default 1.0
        Inverse strength of the L2 penalty of the regressions (``alpha = 1 / C`` for the ridge).
    n_boot : int, default 50
        Bootstrap refits for the standard error and the interval (0: none, they are NaN).
    level : float, default 0.9
        Confidence level of the interval.
    random_state : int or None, default 0
        Seed of the bootstrap.
    features : {"attributes", "ranker"}, default "attributes"
        ``"attributes"``: the client's attributes, the product and its family.
        ``"ranker"``: those and the Ranker's point-in-time pair features (see
        :class:`~crosssell.scorers.FeatureContext`), each computed from the Book as it stood
        at the decision's ``as_of`` (at the first day of its month when the decisions span
        more than 24 days), so that no take-up is described by what followed it.

    Attributes
    ----------
    treated_share_ : float
        The chance of being proposed to that was used.
    n_treated_, n_holdout_ : int
        Offer decisions learned from, per arm.
    take_up_ : dict
        Take-up per arm (``"treated"``, ``"holdout"``).
    features_ : list of str
        The client columns used as features (besides product and family).
    pair_features_ : list of str
        ``features="ranker"``: the pair features used (empty otherwise).
    products_ : list of str
        The products offered in the decisions learned from.

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> clients = pd.DataFrame({"client_id": [f"C{i}" for i in range(8)],
    ...                         "segment": ["A", "B"] * 4})
    >>> contracts = pd.DataFrame({"client_id": ["C0", "C1", "C2", "C6"],
    ...                           "product_id": ["P1"] * 4,
    ...                           "start_date": ["2025-02-01"] * 4})
    >>> book = Book.from_frames(contracts=contracts, clients=clients)
    >>> decisions = pd.DataFrame({"client_id": clients["client_id"], "product_id": "P1",
    ...                           "action": "offer", "arm": ["treated"] * 4 + ["holdout"] * 4,
    ...                           "as_of": "2025-01-01"})
    >>> model = Uplift(n_boot=0).fit(decisions, book)
    >>> model.take_up_
    {'treated': 0.75, 'holdout': 0.25}
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "learner": [Options({"two_model", "transformed_outcome"})],
        "horizon": [
            Satisfies(_is_horizon, "a duration of at least a day such as '90D'", ("12h", "-3D", 5))
        ],
        "treated_share": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "C": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_boot": [Interval(numbers.Integral, 0, None, closed="left")],
        "level": [Interval(numbers.Real, 0, 1, closed="neither")],
        "random_state": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "features": [Options({"attributes", "ranker"})],
    }

    treated_share_: float
    n_treated_: int
    n_holdout_: int
    take_up_: dict[str, float]
    features_: list[str]
    pair_features_: list[str]
    products_: list[str]
    _book: Book
    _pair_mean: _FloatVec
    _pair_scale: _FloatVec
    _clients: pd.DataFrame
    _family_of: dict[str, str]
    _categories: dict[str, list[str]]
    _mean: dict[str, float]
    _scale: dict[str, float]
    _fits: list[tuple[Any, Any]]

    def __init__(
        self,
        *,
        learner: Literal["two_model", "transformed_outcome"] = "two_model",
        horizon: str | pd.Timedelta = "90D",
        treated_share: float | None = None,
        C: float = 1.0,  # noqa: N803 (scikit-learn's name)
        n_boot: int = 50,
        level: float = 0.9,
        random_state: int | None = 0,
        features: Literal["attributes", "ranker"] = "attributes",
    ) -> None:
        self.learner = learner
        self.horizon = horizon
        self.treated_share = treated_share
        self.C = C
        self.n_boot = n_boot
        self.level = level
        self.random_state = random_state
        self.features = features
        self._validate_params()

    def _check_fitted(self) -> None:
        if not hasattr(self, "_fits"):
            raise NotFittedError(
                "This Uplift instance is not fitted yet. Call 'fit' before using it."
            )

    def fit(self, log: Any, book: Book) -> Self:
        """Learn the uplift from the offer decisions of both arms and the Book's take-ups.

        Parameters
        ----------
        log : DecisionLog or pandas.DataFrame
            The decision log, or its decisions (``client_id``, ``product_id``, ``action``,
            ``arm``, ``as_of``); only ``action="offer"`` rows are read, every rank.
        book : Book
            The book, including the contracts started after the decisions.

        Returns
        -------
        Uplift
            ``self``, fitted.

        Raises
        ------
        SchemaError
            If the decisions lack a column, or one arm has no offer decision.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, seed=0)
        >>> model = Uplift(n_boot=0).fit(sim.decisions, sim.book)
        >>> model.n_treated_ > 0 and model.n_holdout_ > 0
        True
        """
        self._validate_params()
        for name in [n for n in vars(self) if n.startswith("_") and not n.startswith("__")]:
            delattr(self, name)
        rows = self._rows(log, book)
        treated = (rows["arm"] == "treated").to_numpy()
        y = rows["taken"].to_numpy(dtype=np.float64)
        self.products_ = sorted(set(rows["product_id"]))
        # the last day of the Book the outcomes were read from: what the estimates know
        self.as_of_ = pd.Timestamp(book.dates[1]).normalize()
        self.n_treated_ = int(treated.sum())
        self.n_holdout_ = int((~treated).sum())
        self.take_up_ = {
            "treated": float(y[treated].mean()),
            "holdout": float(y[~treated].mean()),
        }
        share = self.treated_share
        self.treated_share_ = float(treated.mean()) if share is None else float(share)
        self._learn_design(rows)
        x = self._design(rows, learn=True)
        rng = np.random.default_rng(self.random_state)
        fits = [self._fit_once(x, y, treated)]
        arm_t, arm_h = np.flatnonzero(treated), np.flatnonzero(~treated)
        for _ in range(self.n_boot):
            pick = np.concatenate([rng.choice(arm_t, arm_t.size), rng.choice(arm_h, arm_h.size)])
            fits.append(self._fit_once(x[pick], y[pick], treated[pick]))
        self._fits = fits
        return self

    def _rows(self, log: Any, book: Book) -> pd.DataFrame:
        """One row per offer decision, in a canonical order, with its take-up."""
        decisions = log.decisions() if hasattr(log, "decisions") else log
        if not isinstance(decisions, pd.DataFrame):
            raise TypeError(
                f"Uplift.fit takes a DecisionLog or a DataFrame of decisions. "
                f"Got {type(log).__name__}."
            )
        missing = [c for c in _DECISION_COLUMNS if c not in decisions.columns]
        if missing:
            raise SchemaError(
                f"decisions: column(s) {', '.join(missing)} missing; Uplift.fit needs "
                f"{', '.join(_DECISION_COLUMNS)}.",
                table="decisions",
                column=missing[0],
            )
        d = decisions[decisions["action"] == "offer"]
        rows = pd.DataFrame(
            {
                "client_id": d["client_id"].astype(str).to_numpy(),
                "product_id": d["product_id"].astype(str).to_numpy(),
                "arm": d["arm"].astype(str).to_numpy(),
                "as_of": pd.to_datetime(d["as_of"]).to_numpy(),
            }
        )
        arms = set(rows["arm"])
        if not {"treated", "holdout"} <= arms:
            raise SchemaError(
                f"decisions: the offers are in the arm(s) {sorted(arms) or 'none'} only; an "
                "uplift needs offers in both the treated and the holdout arm. Decide with a "
                "holdout: rec.recommend(log=log, holdout=cs.Holdout(share=0.2, salt=...)).",
                table="decisions",
                column="arm",
            )
        # the order of the log's rows must not change the model (nor the bootstrap)
        rows = rows.sort_values(["client_id", "product_id", "as_of", "arm"], kind="stable")
        rows = rows.reset_index(drop=True)
        rows["taken"] = take_ups(rows, book, pd.Timedelta(self.horizon))
        self._remember(book)
        return rows

    def _remember(self, book: Book) -> None:
        """Keep the clients' attributes and the products' families, to describe new pairs."""
        self._book = book
        self.pair_features_ = []
        clients = book.clients.copy()
        clients[Columns.client] = clients[Columns.client].astype(str)
        self.features_ = [c for c in clients.columns if c not in _NOT_FEATURES]
        self._clients = clients.set_index(Columns.client)[self.features_]
        products = book.products
        self._family_of = (
            dict(
                zip(
                    products[Columns.product].astype(str),
                    products[Columns.family].astype(str),
                    strict=True,
                )
            )
            if Columns.family in products.columns
            else {}
        )

    def _described(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Describe the pairs by their client's attributes and their product's family."""
        client = pairs[Columns.client].astype(str)
        out = self._clients.reindex(client.to_numpy()).reset_index(drop=True)
        for col in self.features_:
            if col in pairs.columns:
                out[col] = pairs[col].to_numpy()
        product = pairs[Columns.product].astype(str).to_numpy()
        out[Columns.product] = product
        out["_family"] = [self._family_of.get(p, _NONE) for p in product]
        return out

    def _learn_design(self, rows: pd.DataFrame) -> None:
        frame = self._described(rows)
        self._categories, self._mean, self._scale = {}, {}, {}
        for col in frame.columns:
            values = frame[col]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                x = values.to_numpy(dtype=np.float64)
                ok = x[np.isfinite(x)]
                self._mean[col] = float(ok.mean()) if ok.size else 0.0
                sd = float(ok.std()) if ok.size else 0.0
                self._scale[col] = sd if sd > 0 else 1.0
            else:
                self._categories[col] = sorted(set(_labels(values)))

    def _pair_block(
        self, pairs: pd.DataFrame, book: Book | None = None
    ) -> tuple[list[str], _FloatVec]:
        """Compute the Ranker's features of each pair from the Book as it stood at its date.

        The date is the pair's ``as_of`` (the Book's last date when absent), floored to the
        month's first day when the pairs span many days; a client or product the Book does not
        know has missing features.
        """
        from crosssell.scorers._features import build_context, pair_features

        book = self._book if book is None else book
        n = len(pairs)
        clients = pd.Index(book.client_ids.external.astype(str)).get_indexer(
            pairs[Columns.client].astype(str).to_numpy()
        )
        products = pd.Index(book.product_ids.external.astype(str)).get_indexer(
            pairs[Columns.product].astype(str).to_numpy()
        )
        if "as_of" in pairs.columns:
            day = pd.to_datetime(pairs["as_of"]).dt.normalize()
        else:
            day = pd.Series(self.as_of_, index=pairs.index)
        if day.nunique() > _MAX_DAYS:
            day = day.dt.to_period("M").dt.start_time
        day_values = day.to_numpy()
        known = (clients >= 0) & (products >= 0)
        names: list[str] = []
        x = np.full((n, 0), np.nan)
        horizon = pd.Timedelta(self.horizon)
        for at in np.unique(day_values[known]) if known.any() else []:
            mine = np.flatnonzero(known & (day_values == at))
            ctx = build_context(book, pd.Timestamp(at), horizon)
            got, values = pair_features(
                ctx, clients[mine].astype(np.int64), products[mine].astype(np.int64)
            )
            if not names:
                names = [g for g in got if g not in _CODES]
                x = np.full((n, len(names)), np.nan)
            x[mine] = values[:, [got.index(g) for g in names]]
        return names, x

    def _design(
        self, pairs: pd.DataFrame, *, learn: bool = False, book: Book | None = None
    ) -> _FloatVec:
        """Rows are pairs; one-hot categories (unseen ones add nothing), standardised numbers."""
        attributes = self._attribute_design(pairs)
        if self.features != "ranker":
            return attributes
        names, x = self._pair_block(pairs, book)
        if learn:
            self.pair_features_ = names
            ok = np.isfinite(x)
            count = np.maximum(ok.sum(axis=0), 1)
            # a column without a single value (e.g. no prices) has mean 0 and scale 1
            mean = np.where(ok, x, 0.0).sum(axis=0) / count
            sd = np.sqrt(np.where(ok, (x - mean) ** 2, 0.0).sum(axis=0) / count)
            self._pair_mean = mean
            self._pair_scale = np.where(sd > 0, sd, 1.0)
        if not self.pair_features_:
            return attributes
        if names != self.pair_features_:
            # no pair the Book knows: every feature missing, read as the average
            x = np.full((len(pairs), len(self.pair_features_)), np.nan)
        # as the attributes: a missing value is the average, an extreme one is capped
        z = np.clip((x - self._pair_mean) / self._pair_scale, -_CLIP, _CLIP)
        return np.hstack([attributes, np.nan_to_num(z, nan=0.0)])

    def _attribute_design(self, pairs: pd.DataFrame) -> _FloatVec:
        frame = self._described(pairs)
        parts: list[_FloatVec] = []
        for col, mean in self._mean.items():
            x = frame[col].to_numpy(dtype=np.float64)
            # an unknown number is the average one: it moves nothing; an extreme one (a
            # client a hundred times the usual size) must not extrapolate the odds
            z = np.clip((x - mean) / self._scale[col], -_CLIP, _CLIP)
            parts.append(np.nan_to_num(z, nan=0.0)[:, None])
        for col, labels in self._categories.items():
            codes = pd.Categorical(_labels(frame[col]), categories=labels).codes
            hot = np.zeros((len(frame), len(labels)), dtype=np.float64)
            known = codes >= 0
            hot[np.flatnonzero(known), codes[known]] = 1.0
            parts.append(hot)
        if not parts:
            return np.zeros((len(frame), 0), dtype=np.float64)
        return np.hstack(parts)

    def _fit_once(self, x: _FloatVec, y: _FloatVec, treated: npt.NDArray[np.bool_]) -> Any:
        """One fit of both arms' take-up (two models) or of the transformed outcome."""
        held = _Arm.fit(x[~treated], y[~treated], self.C)
        if self.learner == "two_model":
            return (_Arm.fit(x[treated], y[treated], self.C), held)
        e = self.treated_share_
        z = y * (treated.astype(np.float64) - e) / (e * (1.0 - e))
        from sklearn.linear_model import Ridge  # imported when a model is fitted

        ridge = Ridge(alpha=1.0 / float(self.C)).fit(x, z)
        return (ridge, held)

    def _point(self, fit: Any, x: _FloatVec) -> tuple[_FloatVec, _FloatVec]:
        first, held = fit
        p_h = held.predict(x)
        if self.learner == "two_model":
            return first.predict(x) - p_h, p_h
        return np.asarray(first.predict(x), dtype=np.float64), p_h

    def clients(self) -> pd.Index:
        """Return the ids of the clients of the Book learned from, as text.

        Returns
        -------
        pandas.Index

        Examples
        --------
        >>> import crosssell as cs
        >>> sim = cs.datasets.simulate_uplift({"A": 0.1}, n_clients=50)
        >>> Uplift(n_boot=0).fit(sim.decisions, sim.book).clients()[:2].tolist()
        ['C00000', 'C00001']
        """
        self._check_fitted()
        ids: pd.Index = pd.Index(self._clients.index.to_numpy(dtype=object), dtype=object)
        return ids

    def predict(self, pairs: pd.DataFrame, *, book: Book | None = None) -> pd.DataFrame:
        """Estimate the uplift of proposing each product to each client, with its uncertainty.

        Parameters
        ----------
        pairs : pandas.DataFrame
            ``client_id`` and ``product_id``; client attribute columns given here replace
            the Book's (an unknown client without them is described by the product alone).
            With ``features="ranker"``, an ``as_of`` column dates each pair's features
            (absent: the last date of the Book learned from).
        book : Book, optional
            With ``features="ranker"``: the Book the pairs' features are read from, e.g. that
            of a later campaign (default: the Book learned from).

        Returns
        -------
        pandas.DataFrame
            A copy of ``pairs`` with :data:`UPLIFT_COLUMNS`: ``uplift`` (the change in the
            chance of a take-up), its bootstrap ``se`` and percentile interval (``ci_low``,
            ``ci_high``, at ``level``), and the chances of a take-up when proposed
            (``p_treated = p_holdout + uplift``, within [0, 1]) and when not (``p_holdout``).

        Raises
        ------
        SchemaError
            If ``client_id`` or ``product_id`` is missing.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, seed=0)
        >>> model = Uplift(n_boot=20).fit(sim.decisions, sim.book)
        >>> out = model.predict(sim.decisions[["client_id", "product_id"]].head(3))
        >>> bool((out["ci_low"] <= out["uplift"]).all())
        True
        """
        self._check_fitted()
        missing = [c for c in (Columns.client, Columns.product) if c not in pairs.columns]
        if missing:
            raise SchemaError(
                f"pairs: column(s) {', '.join(missing)} missing; Uplift.predict needs "
                "client_id and product_id.",
                table="pairs",
                column=missing[0],
            )
        x = self._design(pairs, book=book)
        uplift, p_h = self._point(self._fits[0], x)
        out = pairs.copy()
        if len(self._fits) > 1:
            boots = np.vstack([self._point(f, x)[0] for f in self._fits[1:]])
            tail = (1.0 - float(self.level)) / 2.0
            se = boots.std(axis=0, ddof=1) if boots.shape[0] > 1 else np.full(len(x), np.nan)
            low, high = np.quantile(boots, [tail, 1.0 - tail], axis=0)
        else:
            se = low = high = np.full(len(x), np.nan)
        out["uplift"] = uplift
        out["se"] = se
        out["ci_low"] = low
        out["ci_high"] = high
        out["p_treated"] = np.clip(p_h + uplift, 0.0, 1.0)
        out["p_holdout"] = p_h
        return out


def take_ups(rows: pd.DataFrame, book: Book, span: pd.Timedelta) -> npt.NDArray[np.bool_]:
    """Say whether each decided (client, product) was taken up within ``span`` of its ``as_of``.

    A take-up is a contract of the product starting in ``(as_of, as_of + span]`` for a client
    that did not hold it at ``as_of`` (a renewal is no take-up). ``rows`` has ``client_id``,
    ``product_id`` (compared as text) and ``as_of``.

    Examples
    --------
    >>> import crosssell as cs
    >>> rows = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["CRM-2", "CRM-1"],
    ...                      "as_of": pd.to_datetime(["2024-06-30"] * 2)})
    >>> take_ups(rows, cs.datasets.tiny(), pd.Timedelta("60D")).tolist()
    [True, False]

    C2 takes CRM-1 on 2024-09-01, after the 60 days.
    """
    rows = rows.reset_index(drop=True)
    rows = pd.DataFrame(
        {
            "client_id": rows["client_id"].astype(str).to_numpy(),
            "product_id": rows["product_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(rows["as_of"]).to_numpy(),
        }
    )
    contracts = book.contracts
    started = pd.DataFrame(
        {
            "client_id": contracts[Columns.client].astype(str).to_numpy(),
            "product_id": contracts[Columns.product].astype(str).to_numpy(),
            "start": pd.to_datetime(contracts[Columns.start]).to_numpy(),
            "end": (
                pd.to_datetime(contracts[Columns.end]).to_numpy()
                if Columns.end in contracts.columns
                else np.full(len(contracts), np.datetime64("NaT"), dtype="datetime64[ns]")
            ),
        }
    )
    joined = rows.reset_index().merge(started, on=["client_id", "product_id"], how="inner")
    inside = (joined["start"] > joined["as_of"]) & (joined["start"] <= joined["as_of"] + span)
    # a renewal of a product the client held at the decision is no take-up (as in lift)
    active = (joined["start"] <= joined["as_of"]) & ~(joined["end"] <= joined["as_of"])
    taken = np.zeros(len(rows), dtype=bool)
    taken[joined.loc[inside, "index"].to_numpy(dtype=np.int64)] = True
    taken[joined.loc[active, "index"].to_numpy(dtype=np.int64)] = False
    return taken


def _labels(values: pd.Series) -> list[str]:
    """Category labels as text, a missing value its own label."""
    return [_NONE if pd.isna(v) else str(v) for v in values.astype(object)]


class _Arm:
    """Take-up in one arm: an L2-penalised logistic regression fitted by Newton's method.

    The features are few (one-hot attributes), so a handful of exact Newton steps is both
    faster and steadier than a general solver, refitted once per bootstrap resample.
    """

    def __init__(self, w: _FloatVec) -> None:
        self.w = w

    @classmethod
    def fit(cls, x: _FloatVec, y: _FloatVec, c: float) -> _Arm:
        n, k = x.shape
        xi = np.hstack([np.ones((n, 1)), x])
        rate = float(np.clip(y.mean() if n else 0.5, 1e-3, 1 - 1e-3))
        w = np.zeros(k + 1)
        w[0] = np.log(rate / (1.0 - rate))
        # the intercept is not penalised
        penalty = np.full(k + 1, 1.0 / float(c))
        penalty[0] = 1e-6
        for _ in range(_NEWTON_STEPS):
            p = expit(xi @ w)
            grad = xi.T @ (p - y) + penalty * w
            hess = (xi.T * (p * (1.0 - p))) @ xi + np.diag(penalty)
            step = np.linalg.solve(hess, grad)
            w -= step
            if float(np.abs(step).max()) < _NEWTON_TOL:
                break
        return cls(w)

    def predict(self, x: _FloatVec) -> _FloatVec:
        return np.asarray(expit(self.w[0] + x @ self.w[1:]), dtype=np.float64)
