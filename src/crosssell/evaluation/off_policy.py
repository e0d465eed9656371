"""Off-policy evaluation: what a new recommender would have earned on decisions already logged.

Every offer in a decision log was shown with a known probability (``shown_probability``: the
logging policy explored). Reweighting each logged answer by how much more (or less) often the
candidate would have shown that offer estimates the candidate's value without showing it to
anyone:

* **IPS** (inverse propensity scoring): ``sum(w * r) / n``, ``w = candidate / shown``;
  unbiased when every offer the candidate makes had a chance to be logged;
* **SNIPS** (self-normalised IPS): the same, scaled so that the weights sum to the offers the
  candidate makes; a little biased, far less variable;
* **DR** (doubly robust): an outcome model's prediction of the candidate's offers, corrected
  by the reweighted errors of that model on the logged ones; unbiased if either the
  probabilities or the model are right, and the least variable of the three.

Values are per client (take-ups, or revenue, a client would bring under the candidate), with
percentile bootstrap intervals over clients.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell._html import card
from crosssell.columns import Columns
from crosssell.exceptions import OverlapWarning, SchemaError
from crosssell.scorers.response import Response

if TYPE_CHECKING:
    from crosssell.book import Book

__all__ = ["OffPolicyResult", "off_policy"]

Reward = Literal["take_up", "revenue"]
#: The estimators :func:`off_policy` reports, in order.
ESTIMATORS: Final = ("ips", "snips", "dr")
_PROBABILITY: Final = "probability"
_SHOWN: Final = "shown_probability"
_FloatVec = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class OffPolicyResult:
    """What :func:`off_policy` estimated.

    Attributes
    ----------
    estimates : pandas.DataFrame
        One row per estimator (``ips``, ``snips``, ``dr``): ``value`` (per client),
        ``ci_low``, ``ci_high`` (percentile bootstrap over clients).
    logged_value : float
        What the logged policy earned per client (the mean reward as it happened).
    reward : str
        ``"take_up"`` (accepted offers per client) or ``"revenue"`` (accepted value).
    n_clients : int
        Clients in the log: the population the values are per.
    n_offers : int
        Logged offers shown.
    effective_sample_size : float
        ``(sum w)^2 / sum w^2`` over the logged offers: how many offers the estimate is
        really worth (far below ``n_offers`` when a few large weights carry it).
    coverage : float
        The candidate's offers that the log can see: ``sum w`` over the candidate's own
        offers, about 1 when the logged policy gave all of them a fair chance.
    weights : pandas.DataFrame
        Per logged offer: ``decision_id``, ``client_id``, ``product_id``,
        ``shown_probability``, ``candidate_probability``, ``weight``, ``reward``,
        ``predicted`` (the outcome model's).
    changes : pandas.DataFrame
        What the change would have done, per rule and lever: one row per ``change``
        (``dropped``: logged offers the candidate would not make; ``kept``; ``added``: offers
        of the candidate the log never showed) and ``cause`` (for a dropped offer, the rule of
        the candidate's policy that blocks it, ``not_worth_proposing`` for its contact-cost
        lever, or ``ranking`` when the candidate simply ranks other offers first; for a frame
        candidate, ``not offered``), with ``offers``, ``clients``, ``logged_reward`` (what the
        log's offers earned as it happened; NaN for added ones) and ``predicted_reward`` (the
        outcome model's expectation, by the candidate's probability for kept and added).

    Examples
    --------
    >>> import pandas as pd
    >>> decisions = pd.DataFrame({"decision_id": ["d1", "d2"], "client_id": ["a", "b"],
    ...     "product_id": ["P", "Q"], "action": "offer", "shown_probability": 0.5})
    >>> reactions = pd.DataFrame({"decision_id": ["d1", "d2"],
    ...                           "outcome": ["accepted", "declined"]})
    >>> candidate = pd.DataFrame({"client_id": ["a", "b"], "product_id": ["P", "P"]})
    >>> result = off_policy(candidate, (decisions, reactions), n_boot=50)
    >>> float(result.estimates.loc["ips", "value"])
    1.0
    """

    estimates: pd.DataFrame
    logged_value: float
    reward: str
    n_clients: int
    n_offers: int
    effective_sample_size: float
    coverage: float
    weights: pd.DataFrame
    changes: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    def _repr_html_(self) -> str:
        """Return the estimates and the changes per rule and lever as an HTML card."""
        return card(
            "What this change would have done",
            [
                ("reward", f"{self.reward} per client"),
                ("as logged", f"{self.logged_value:,.4g}"),
                ("clients, logged offers", f"{self.n_clients:,}, {self.n_offers:,}"),
                ("coverage", f"{self.coverage:.2f}"),
                ("effective sample size", f"{self.effective_sample_size:,.0f}"),
            ],
            [("estimates", self.estimates.reset_index()), ("per rule and lever", self.changes)],
        )


def off_policy(
    candidate: Any,
    log: Any,
    book: Book | None = None,
    *,
    reward: Reward = "take_up",
    outcome_model: Any = None,
    n_boot: int = 1000,
    level: float = 0.95,
    min_coverage: float = 0.8,
    min_effective_share: float = 0.01,
    seed: int = 0,
) -> OffPolicyResult:
    """Estimate what ``candidate`` would have earned on the logged decisions.

    The population is the log's clients (their decisions with an ``offer`` or ``no_offer``
    action, treated arm). For each, the candidate names the offers it would show and with
    what probability; the logged offers, shown with probability ``shown_probability``, and
    their reactions (``accepted``: the reward; anything else or no reaction: 0) are reweighted
    to that candidate (see the module). A logged offer shown with probability 0 (a held-out
    client's) cannot be reweighted and is left out of the weights, as is every decision that
    is not an offer.

    Parameters
    ----------
    candidate : Recommender or pandas.DataFrame
        A fitted :class:`~crosssell.Recommender` (its offers to the log's clients, each
        shown with probability 1), or a frame of ``client_id``, ``product_id`` and optionally
        ``probability`` (a stochastic policy; default 1) and ``value``.
    log : DecisionLog, Campaign or (decisions, reactions)
        Decisions (columns of :data:`crosssell.decisions.DECISION_COLUMNS`, at least
        ``decision_id``, ``client_id``, ``product_id``, ``action``, ``shown_probability``)
        and reactions (``decision_id``, ``outcome``, optionally ``value``).
    book : Book, optional
        Gives the default outcome model the clients' segments and attributes.
    reward : {"take_up", "revenue"}, default "take_up"
        Accepted offers per client, or their value (the reaction's ``value``, else the
        decision's).
    outcome_model : object, optional
        The doubly robust estimator's model of acceptance: anything with
        ``predict_proba(frame)`` over ``client_id``, ``product_id`` rows (a fitted
        :class:`~crosssell.scorers.Response`) or a callable doing the same. Default: a
        ``Response`` fitted on the logged offers and their answers.
    n_boot : int, default 1000
        Bootstrap resamples of clients (0: no interval).
    level : float, default 0.95
    min_coverage : float, default 0.8
        Warn when less than this share of the candidate's offers is visible in the log.
    min_effective_share : float, default 0.01
        Warn when the effective sample size falls below this share of the logged offers.
    seed : int, default 0

    Returns
    -------
    OffPolicyResult

    Raises
    ------
    SchemaError
        When the decisions lack a needed column or a ``shown_probability`` is not in [0, 1].

    Warns
    -----
    OverlapWarning
        When the logged policy gave the candidate's offers too little probability: low
        coverage or a tiny effective sample size. The estimates are then unreliable (IPS
        and SNIPS miss what was never shown; DR leans on its outcome model).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> shown = rng.choice(["P", "Q"], n)  # a logging policy that flips a coin
    >>> decisions = pd.DataFrame({"decision_id": np.arange(n).astype(str),
    ...     "client_id": np.arange(n), "product_id": shown, "action": "offer",
    ...     "shown_probability": 0.5})
    >>> accepted = rng.random(n) < np.where(shown == "P", 0.3, 0.1)
    >>> reactions = pd.DataFrame({"decision_id": decisions["decision_id"],
    ...     "outcome": np.where(accepted, "accepted", "declined")})
    >>> always_p = pd.DataFrame({"client_id": np.arange(n), "product_id": "P"})
    >>> result = off_policy(always_p, (decisions, reactions), n_boot=200)
    >>> round(float(result.estimates.loc["dr", "value"]), 2)
    0.3
    """
    if reward not in ("take_up", "revenue"):
        raise ValueError(f"off_policy: 'reward' must be 'take_up' or 'revenue'. Got {reward!r}.")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"off_policy: 'n_boot' must be an int >= 0. Got {n_boot!r}.")
    decisions, reactions = _read_log(log)
    population = decisions.loc[
        decisions["action"].isin(["offer", "no_offer"])
        & (decisions.get("arm", pd.Series("treated", index=decisions.index)) == "treated")
    ]
    clients = np.unique(population[Columns.client].astype(str).to_numpy())
    offers = population.loc[(population["action"] == "offer") & (population[_SHOWN] > 0)]
    offers = offers.reset_index(drop=True)
    r = _rewards(offers, reactions, reward)
    policy = _candidate(candidate, decisions, clients)
    pair = _pair_keys(offers)
    cand_prob = pd.Series(policy[_PROBABILITY].to_numpy(), index=_pair_keys(policy))
    cand_prob = cand_prob.groupby(level=0).sum()
    pi = cand_prob.reindex(pair).fillna(0.0).to_numpy(dtype=np.float64)
    w = pi / offers[_SHOWN].to_numpy(dtype=np.float64)

    model = outcome_model if outcome_model is not None else _default_model(offers, r, book)
    q_logged = _predict(model, offers[[Columns.client, Columns.product]])
    q_cand = _predict(model, policy[[Columns.client, Columns.product]])
    if reward == "revenue":
        q_logged = q_logged * _values(offers, offers)
        q_cand = q_cand * _values(policy, offers)

    # per-client sums: the bootstrap resamples clients, each with all its offers
    client_index = pd.Index(clients)
    of_offer = client_index.get_indexer(pd.Index(offers[Columns.client].astype(str)))
    of_cand = client_index.get_indexer(pd.Index(policy[Columns.client].astype(str)))
    n = clients.size

    def per_client(values: _FloatVec, where: npt.NDArray[np.intp]) -> _FloatVec:
        return np.bincount(where, weights=values, minlength=n).astype(np.float64)

    wr = per_client(w * r, of_offer)
    ww = per_client(w, of_offer)
    mass = per_client(policy[_PROBABILITY].to_numpy(dtype=np.float64), of_cand)
    direct = per_client(policy[_PROBABILITY].to_numpy(dtype=np.float64) * q_cand, of_cand)
    correction = per_client(w * (r - q_logged), of_offer)
    logged = per_client(r, of_offer)

    def estimate(take: _FloatVec) -> tuple[float, float, float]:
        total = float(take.sum())
        hits, seen = float(take @ wr), float(take @ ww)
        # SNIPS rescales the weights to the candidate's own number of offers
        snips = hits / seen * float(take @ mass) / total if seen > 0 else 0.0
        return hits / total, snips, float(take @ (direct + correction)) / total

    point = estimate(np.ones(n))
    low, high = _bootstrap(estimate, n, n_boot, level, seed)
    estimates = pd.DataFrame(
        {"value": point, "ci_low": low, "ci_high": high},
        index=pd.Index(list(ESTIMATORS), name="estimator"),
    )
    ess = float(w.sum() ** 2 / (w * w).sum()) if (w * w).sum() > 0 else 0.0
    coverage = float(ww.sum() / mass.sum()) if mass.sum() > 0 else 1.0
    _warn_overlap(coverage, ess, len(offers), min_coverage, min_effective_share)
    weights = pd.DataFrame(
        {
            "decision_id": offers["decision_id"].to_numpy(),
            Columns.client: offers[Columns.client].to_numpy(),
            Columns.product: offers[Columns.product].to_numpy(),
            _SHOWN: offers[_SHOWN].to_numpy(dtype=np.float64),
            "candidate_probability": pi,
            "weight": w,
            "reward": r,
            "predicted": q_logged,
        }
    )
    changes = _changes(
        candidate,
        offers,
        policy,
        pair=pair,
        pi=pi,
        r=r,
        q_logged=q_logged,
        q_policy=q_cand * policy[_PROBABILITY].to_numpy(dtype=np.float64),
    )
    return OffPolicyResult(
        changes=changes,
        estimates=estimates,
        logged_value=float(logged.sum() / n) if n else float("nan"),
        reward=reward,
        n_clients=int(n),
        n_offers=len(offers),
        effective_sample_size=ess,
        coverage=coverage,
        weights=weights,
    )


def _changes(
    candidate: Any,
    offers: pd.DataFrame,
    policy: pd.DataFrame,
    *,
    pair: pd.Index,
    pi: _FloatVec,
    r: _FloatVec,
    q_logged: _FloatVec,
    q_policy: _FloatVec,
) -> pd.DataFrame:
    """Tell apart the logged offers the candidate drops (and why), keeps, and the ones it adds."""
    dropped = pi <= 0
    cause = np.full(len(offers), "", dtype=object)
    if dropped.any():
        cause[dropped] = _drop_causes(candidate, offers.loc[dropped])
    added = ~_pair_keys(policy).isin(pair)
    parts = [
        pd.DataFrame(
            {
                "change": np.where(dropped, "dropped", "kept"),
                "cause": cause,
                Columns.client: offers[Columns.client].astype(str).to_numpy(),
                "logged_reward": r,
                # a kept offer is expected to earn as the candidate would show it
                "predicted_reward": np.where(dropped, q_logged, q_logged * pi),
            }
        ),
        pd.DataFrame(
            {
                "change": "added",
                "cause": "",
                Columns.client: policy.loc[added, Columns.client].astype(str).to_numpy(),
                "logged_reward": np.nan,
                "predicted_reward": q_policy[added],
            }
        ),
    ]
    rows = pd.concat(parts, ignore_index=True)
    out = rows.groupby(["change", "cause"], sort=False).agg(
        offers=(Columns.client, "size"),
        clients=(Columns.client, "nunique"),
        logged_reward=("logged_reward", lambda v: v.sum(min_count=1)),
        predicted_reward=("predicted_reward", "sum"),
    )
    order = {"dropped": 0, "kept": 1, "added": 2}
    out = out.reset_index()
    out = out.assign(_o=out["change"].map(order)).sort_values(
        ["_o", "offers", "cause"], ascending=[True, False, True], kind="stable"
    )
    return out.drop(columns="_o").reset_index(drop=True)


def _drop_causes(candidate: Any, dropped: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Name what keeps each of these logged offers out of the candidate's offers."""
    if not callable(getattr(candidate, "suppressed", None)):
        return np.full(len(dropped), "not offered", dtype=object)
    log = candidate.suppressed(not_worth=True)
    clients = dropped[Columns.client].astype(str).to_numpy()
    whole = log[Columns.product].isna()
    # the first rule that blocks the pair; a rule blocking every product of the client counts
    pairs = log.loc[~whole]
    by_pair = pd.Series(pairs[Columns.rule].to_numpy(), index=_pair_keys(pairs))
    by_pair = by_pair[~by_pair.index.duplicated()]
    by_client = (
        log.loc[whole]
        .assign(_k=lambda f: f[Columns.client].astype(str))
        .drop_duplicates("_k")
        .set_index("_k")[Columns.rule]
    )
    pair_rule = by_pair.reindex(_pair_keys(dropped)).to_numpy(dtype=object)
    client_rule = by_client.reindex(pd.Index(clients)).to_numpy(dtype=object)
    out = np.where(pd.isna(client_rule), pair_rule, client_rule)
    return np.where(pd.isna(out), "ranking", out).astype(object)


def _bootstrap(
    estimate: Any, n: int, n_boot: int, level: float, seed: int
) -> tuple[_FloatVec, _FloatVec]:
    """Percentile interval of each estimator over ``n_boot`` resamples of the ``n`` clients."""
    if not n_boot or not n:
        return np.full(len(ESTIMATORS), np.nan), np.full(len(ESTIMATORS), np.nan)
    rng = np.random.default_rng(seed)
    # a multinomial draw of clients per resample: how often each client is in the sample
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=int(n_boot)).astype(np.float64)
    draws = np.array([estimate(c) for c in counts])
    alpha = (1.0 - float(level)) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _read_log(log: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(log, tuple) and len(log) == 2:
        decisions, reactions = log
    elif hasattr(log, "decisions") and hasattr(log, "reactions"):
        decisions = log.decisions() if callable(log.decisions) else log.decisions
        reactions = log.reactions() if callable(log.reactions) else log.reactions
    else:
        raise TypeError(
            "off_policy: 'log' must be a DecisionLog, a Campaign or a (decisions, reactions) "
            f"pair. Got {type(log).__name__}."
        )
    needed = ("decision_id", Columns.client, Columns.product, "action", _SHOWN)
    missing = [c for c in needed if c not in decisions.columns]
    if missing:
        raise SchemaError(
            f"decisions: columns {missing} are missing from the {len(decisions)} rows; "
            "off-policy evaluation needs each offer's shown_probability. Record decisions "
            "with crosssell.decisions.decide or DecisionLog.record.",
            table="decisions",
            column=missing[0],
        )
    shown = pd.to_numeric(decisions[_SHOWN], errors="coerce")
    bad = ~shown.between(0.0, 1.0)
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        listed = "; ".join(
            f"row {i} decision_id={decisions['decision_id'].iloc[i]} "
            f"shown_probability={decisions[_SHOWN].iloc[i]!r}"
            for i in rows[:5]
        )
        raise SchemaError(
            f"decisions: 'shown_probability' is not a probability in [0, 1] in {rows.size} "
            f"rows (showing {min(rows.size, 5)}): {listed}. Record the chance each offer "
            "had of being shown.",
            table="decisions",
            column=_SHOWN,
            rows=rows.tolist(),
        )
    decisions = decisions.assign(**{_SHOWN: shown.astype(np.float64)})
    for column in ("decision_id", "outcome"):
        if column not in reactions.columns:
            raise SchemaError(
                f"reactions: column {column!r} is missing from the {len(reactions)} rows.",
                table="reactions",
                column=column,
            )
    return decisions, reactions


def _rewards(offers: pd.DataFrame, reactions: pd.DataFrame, reward: Reward) -> _FloatVec:
    """Reward of each logged offer: its accepted value (revenue) or 1 (take-up), else 0."""
    accepted = reactions.loc[reactions["outcome"] == "accepted"]
    accepted = accepted.drop_duplicates("decision_id", keep="last").set_index("decision_id")
    ids = offers["decision_id"].astype(str)
    accepted.index = accepted.index.astype(str)
    taken = ids.isin(accepted.index).to_numpy()
    if reward == "take_up":
        return taken.astype(np.float64)
    value = ids.map(accepted["value"]) if "value" in accepted.columns else None
    fallback = offers.get(Columns.value, pd.Series(np.nan, index=offers.index))
    amount = (value if value is not None else fallback).fillna(fallback).fillna(0.0)
    return np.where(taken, amount.to_numpy(dtype=np.float64), 0.0)


def _candidate(candidate: Any, decisions: pd.DataFrame, clients: npt.NDArray[Any]) -> pd.DataFrame:
    """Return the candidate's offers to the log's clients, each with its chance of being shown."""
    if isinstance(candidate, pd.DataFrame):
        frame = candidate
    elif callable(getattr(candidate, "recommend", None)):
        known = set(map(str, clients))
        ids = [c for c in candidate.book_.client_ids.external if str(c) in known]
        frame = candidate.recommend(ids, explain=False)
    else:
        raise TypeError(
            "off_policy: 'candidate' must be a fitted Recommender or a frame of client_id, "
            f"product_id and probability. Got {type(candidate).__name__}."
        )
    missing = [c for c in (Columns.client, Columns.product) if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"candidate: columns {missing} are missing from the {len(frame)} offers.",
            table="candidate",
            column=missing[0],
        )
    out = frame.loc[frame[Columns.client].astype(str).isin(set(map(str, clients)))].copy()
    if _PROBABILITY not in out.columns:
        out[_PROBABILITY] = 1.0
    out[_PROBABILITY] = pd.to_numeric(out[_PROBABILITY], errors="coerce").fillna(0.0)
    return out.reset_index(drop=True)


def _pair_keys(frame: pd.DataFrame) -> pd.Index:
    return pd.Index(frame[Columns.client].astype(str) + "\x1f" + frame[Columns.product].astype(str))


def _values(frame: pd.DataFrame, offers: pd.DataFrame) -> _FloatVec:
    """Value of each offer: its own, else the mean logged value of its product, else 0."""
    by_product = (
        offers.groupby(offers[Columns.product].astype(str))[Columns.value].mean()
        if Columns.value in offers.columns
        else pd.Series(dtype=np.float64)
    )
    mean = frame[Columns.product].astype(str).map(by_product)
    own = frame.get(Columns.value, pd.Series(np.nan, index=frame.index))
    return np.asarray(own.fillna(mean).fillna(0.0), dtype=np.float64)


def _default_model(offers: pd.DataFrame, r: _FloatVec, book: Book | None) -> Any:
    """Fit a Response on the logged offers (product, segment, region); return its predictor."""
    columns: list[str] = []
    attributes = pd.DataFrame()
    if book is not None:
        table = book.client_table
        attributes = table.set_index(table[Columns.client].astype(str))
        columns = [c for c in (Columns.segment, Columns.region) if c in attributes.columns]

    def described(pairs: pd.DataFrame) -> pd.DataFrame:
        frame = pairs[[Columns.client, Columns.product]].astype(str).reset_index(drop=True)
        for column in columns:
            frame[column] = frame[Columns.client].map(attributes[column])
        return frame

    model = Response(features=[c for c in columns if c != Columns.segment])
    model.fit(described(offers), y=(r > 0).astype(np.float64))

    def predict(pairs: pd.DataFrame) -> _FloatVec:
        return model.predict_proba(described(pairs))

    return predict


def _predict(model: Any, pairs: pd.DataFrame) -> _FloatVec:
    frame = pairs.reset_index(drop=True)
    if callable(getattr(model, "predict_proba", None)):
        out = model.predict_proba(frame)
    elif callable(model):
        out = model(frame)
    else:
        raise TypeError(
            "off_policy: 'outcome_model' must have predict_proba(frame) or be a callable. "
            f"Got {type(model).__name__}."
        )
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _warn_overlap(
    coverage: float, ess: float, n_offers: int, min_coverage: float, min_share: float
) -> None:
    problems = []
    if coverage < min_coverage:
        problems.append(
            f"only {coverage:.0%} of the candidate's offers are visible in the log "
            f"(expected about 100%)"
        )
    if n_offers and ess < min_share * n_offers:
        problems.append(f"the effective sample size is {ess:.0f} of {n_offers} logged offers")
    if problems:
        warnings.warn(
            "off_policy: the logged policy gave the candidate's offers too little probability: "
            + "; ".join(problems)
            + ". IPS and SNIPS cannot see offers that were (almost) never shown, and DR then "
            "rests on its outcome model. Log with more exploration, or compare a candidate "
            "closer to the logged policy.",
            OverlapWarning,
            stacklevel=2,
        )
