"""A simulated campaign: decisions, reactions and take-up with a known effect of proposing.

:func:`simulate_campaign` plays one round of proposals forward on a book: a fitted recommender
decides, a :class:`~crosssell.Holdout` keeps some clients apart, and every client with an offer
takes up its top offer with a chance of ``baseline`` (held out) or ``baseline + true_uplift``
(proposed to) within the horizon. The take-ups become contracts of the returned Book, and the
treated clients' answers become reactions, so that :func:`crosssell.evaluation.lift` can be
checked against the effect the simulation was drawn with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crosssell.columns import Columns
from crosssell.decisions import REACTION_COLUMNS, DecisionLog, Holdout, decide

if TYPE_CHECKING:
    from crosssell.book import Book

__all__ = ["Campaign", "simulate_campaign", "simulate_uplift"]

_CAMPAIGN = "simulated"
_TERM_DAYS = 365


@dataclass(frozen=True, slots=True, eq=False)
class Campaign:
    """What :func:`simulate_campaign` played out.

    Attributes
    ----------
    decisions : pandas.DataFrame
        The decisions (columns of :data:`crosssell.decisions.DECISION_COLUMNS`), held-out
        clients' included with ``arm="holdout"``.
    reactions : pandas.DataFrame
        The treated clients' answers to their top offer (columns of
        :data:`crosssell.decisions.REACTION_COLUMNS`).
    book : Book
        The book as known at ``as_of`` plus the simulated take-ups (contracts starting within
        the horizon).
    as_of : pandas.Timestamp
    horizon : pandas.Timedelta
    true_uplift : float
        The effect of proposing on the chance of taking up the top offer.
    baseline : float
        The chance of taking it up unasked.
    uplift_by_segment : mapping of str to float
        :func:`simulate_uplift`: the effect of proposing in each client segment (empty for
        :func:`simulate_campaign`, whose effect is ``true_uplift`` everywhere).

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    >>> sim = simulate_campaign(cs.datasets.demo(), rec, true_uplift=0.2, seed=1)
    >>> sorted(sim.decisions["arm"].unique())
    ['holdout', 'treated']
    """

    decisions: pd.DataFrame
    reactions: pd.DataFrame
    book: Book
    as_of: pd.Timestamp
    horizon: pd.Timedelta
    true_uplift: float
    baseline: float
    uplift_by_segment: Mapping[str, float] = field(default_factory=dict)


def simulate_campaign(
    book: Book,
    recommender: Any,
    *,
    true_uplift: float = 0.05,
    baseline: float = 0.1,
    holdout: Holdout | None = None,
    horizon: str | pd.Timedelta = "90D",
    seed: int = 0,
    log: DecisionLog | None = None,
) -> Campaign:
    """Play one campaign forward with a known effect of proposing.

    Parameters
    ----------
    book : Book
        The book the recommender was fitted on; what happened after its ``as_of`` is dropped
        and replaced by the simulated take-ups.
    recommender : Recommender
        Fitted; its offers (all of them, held-out clients' too) are the decisions.
    true_uplift : float, default 0.05
        Added to the chance of taking up the top offer when it is proposed (may be negative:
        a proposal that puts clients off).
    baseline : float, default 0.1
        The chance of taking the top offer up within the horizon without being asked.
    holdout : Holdout, optional
        Default ``Holdout(share=0.5, salt=f"simulate-{seed}")``.
    horizon : str or Timedelta, default "90D"
        Take-ups start on a uniformly drawn day within it.
    seed : int, default 0
    log : DecisionLog, optional
        Also record the decisions and reactions there.

    Returns
    -------
    Campaign

    Raises
    ------
    ValueError
        If ``baseline`` or ``baseline + true_uplift`` is not a probability, or the horizon is
        not a positive number of days.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.demo(), "2025-06-30")
    >>> sim = simulate_campaign(cs.datasets.demo(), rec, true_uplift=0.1, seed=3)
    >>> set(sim.reactions["outcome"]) <= {"accepted", "declined", "ignored"}
    True
    """
    for name, p in (("baseline", baseline), ("baseline + true_uplift", baseline + true_uplift)):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"simulate_campaign: {name} must be a probability. Got {p!r}.")
    span = pd.Timedelta(horizon)
    days = int(span / pd.Timedelta(days=1))
    if days < 1:
        raise ValueError(f"simulate_campaign: horizon must be at least a day. Got {horizon!r}.")
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp(recommender.as_of_)
    offers = recommender.recommend(explain=False)
    rows, _ = decide(
        offers,
        recommender.no_offer_report(offers),
        as_of=as_of,
        model_id=recommender.model_id_,
        policy=recommender.policy,
        holdout=holdout or Holdout(share=0.5, salt=f"simulate-{seed}"),
        campaign=_CAMPAIGN,
        decided_at=as_of,
    )
    top = rows[(rows["action"] == "offer") & (rows["rank"] == 1)].reset_index(drop=True)
    treated = (top["arm"] == "treated").to_numpy()
    chance = baseline + true_uplift * treated
    taken = rng.random(len(top)) < chance
    start = as_of + pd.to_timedelta(rng.integers(1, days + 1, len(top)), unit="D")

    past = book.known_at(as_of)
    contracts = past.contracts
    new = pd.DataFrame(
        {
            Columns.client: top.loc[taken, "client_id"].to_numpy(),
            Columns.product: top.loc[taken, "product_id"].to_numpy(),
            Columns.start: start[taken],
            Columns.end: start[taken] + pd.Timedelta(days=_TERM_DAYS),
        }
    )
    if Columns.value in contracts.columns:
        new[Columns.value] = top.loc[taken, "value"].to_numpy()
    if Columns.contract in contracts.columns:
        new[Columns.contract] = [f"SIM-{seed}-{i}" for i in range(len(new))]
    new = _like(new, contracts)
    grown = type(book).from_frames(
        contracts=pd.concat([contracts, new], ignore_index=True),
        products=past.products,
        clients=past.clients,
        events=past.events,
    )

    # the treated clients' answers: accepted when taken up, else declined or left unanswered
    answered = treated
    outcome = np.where(
        taken, "accepted", np.where(rng.random(len(top)) < 0.5, "declined", "ignored")
    )
    answer_day = np.where(
        taken, start, as_of + pd.to_timedelta(rng.integers(1, days + 1, len(top)), unit="D")
    )
    reactions = pd.DataFrame(
        {
            "decision_id": top.loc[answered, "decision_id"].to_numpy(),
            "outcome": outcome[answered],
            "reacted_at": pd.to_datetime(answer_day[answered]),
            "value": np.where(taken, top["value"].to_numpy(), np.nan)[answered],
            "note": None,
        }
    ).loc[:, list(REACTION_COLUMNS)]
    if log is not None:
        log.record(rows)
        log.react_many(reactions)
    return Campaign(
        decisions=rows,
        reactions=reactions,
        book=grown,
        as_of=as_of,
        horizon=span,
        true_uplift=float(true_uplift),
        baseline=float(baseline),
    )


def simulate_uplift(
    uplift_by_segment: Mapping[str, float],
    *,
    baseline_by_segment: Mapping[str, float] | None = None,
    n_clients: int = 3000,
    treated_share: float = 0.5,
    as_of: str = "2025-01-01",
    horizon: str | pd.Timedelta = "90D",
    seed: int = 0,
) -> Campaign:
    """Draw one offer per client whose effect of proposing is known per segment.

    Each client (of a segment drawn uniformly, with a ``size`` attribute that does not matter)
    holds a ``BASE`` product and is offered ``OFFER`` at ``as_of``; with chance
    ``treated_share`` it is proposed to (``arm="treated"``), else held out. It takes the offer
    up within the horizon with chance ``baseline`` (held out) or ``baseline + uplift``
    (proposed to) of its segment: a negative uplift is a proposal that puts clients off.

    Parameters
    ----------
    uplift_by_segment : mapping of str to float
        The segments and the effect of proposing in each.
    baseline_by_segment : mapping of str to float, optional
        The chance of taking the offer up unasked, per segment (default 0.2 in each).
    n_clients : int, default 3000
    treated_share : float, default 0.5
    as_of : str, default "2025-01-01"
    horizon : str or Timedelta, default "90D"
    seed : int, default 0

    Returns
    -------
    Campaign
        ``true_uplift`` is the average effect over the clients; ``uplift_by_segment`` the
        effect per segment.

    Raises
    ------
    ValueError
        If a segment's chance, unasked or proposed to, is not a probability.

    Examples
    --------
    >>> sim = simulate_uplift({"A": 0.1, "B": -0.1}, n_clients=200, seed=1)
    >>> sorted(sim.decisions["arm"].unique())
    ['holdout', 'treated']
    >>> sim.uplift_by_segment["B"]
    -0.1
    """
    segments = sorted(uplift_by_segment)
    base = dict.fromkeys(segments, 0.2) | dict(baseline_by_segment or {})
    for s in segments:
        for name, p in (
            ("baseline", base[s]),
            ("baseline + uplift", base[s] + uplift_by_segment[s]),
        ):
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(
                    f"simulate_uplift: segment {s!r}: {name} must be a probability. Got {p!r}."
                )
    span = pd.Timedelta(horizon)
    days = int(span / pd.Timedelta(days=1))
    rng = np.random.default_rng(seed)
    day = pd.Timestamp(as_of)
    ids = np.array([f"C{i:05d}" for i in range(n_clients)], dtype=object)
    segment = np.asarray(segments, dtype=object)[rng.integers(0, len(segments), n_clients)]
    treated = rng.random(n_clients) < treated_share
    effect = np.array([float(uplift_by_segment[s]) for s in segment])
    chance = np.array([float(base[s]) for s in segment]) + effect * treated
    taken = rng.random(n_clients) < chance
    start = day + pd.to_timedelta(rng.integers(1, days + 1, n_clients), unit="D")
    clients = pd.DataFrame(
        {
            Columns.client: ids,
            Columns.segment: segment,
            "size": np.round(rng.normal(100.0, 20.0, n_clients), 1),
        }
    )
    held = pd.DataFrame(
        {
            Columns.client: ids,
            Columns.product: "BASE",
            Columns.start: day - pd.Timedelta(days=_TERM_DAYS),
        }
    )
    new = pd.DataFrame(
        {Columns.client: ids[taken], Columns.product: "OFFER", Columns.start: start[taken]}
    )
    from crosssell.book import Book

    book = Book.from_frames(
        contracts=pd.concat([held, new], ignore_index=True),
        products=pd.DataFrame(
            {Columns.product: ["BASE", "OFFER"], Columns.family: ["core", "add-on"]}
        ),
        clients=clients,
    )
    decisions = pd.DataFrame(
        {
            "decision_id": [f"SIMU-{seed}-{i}" for i in range(n_clients)],
            "client_id": ids,
            "product_id": "OFFER",
            "action": "offer",
            "rank": 1,
            "arm": np.where(treated, "treated", "holdout"),
            "as_of": day,
            "decided_at": day,
            "shown_probability": 1.0,
            "campaign": _CAMPAIGN,
        }
    )
    answered = treated
    outcome = np.where(
        taken, "accepted", np.where(rng.random(n_clients) < 0.5, "declined", "ignored")
    )
    reactions = pd.DataFrame(
        {
            "decision_id": decisions.loc[answered, "decision_id"].to_numpy(),
            "outcome": outcome[answered],
            "reacted_at": pd.to_datetime(start[answered]),
            "value": np.nan,
            "note": None,
        }
    ).loc[:, list(REACTION_COLUMNS)]
    return Campaign(
        decisions=decisions,
        reactions=reactions,
        book=book,
        as_of=day,
        horizon=span,
        true_uplift=float(effect.mean()) if n_clients else 0.0,
        baseline=float(np.mean([base[s] for s in segment])) if n_clients else 0.0,
        uplift_by_segment={s: float(uplift_by_segment[s]) for s in segments},
    )


def _like(new: pd.DataFrame, contracts: pd.DataFrame) -> pd.DataFrame:
    """Give new contract rows the columns and id types of the book's contracts."""
    for column in contracts.columns:
        if column not in new.columns:
            new[column] = pd.Series([None] * len(new), dtype=contracts[column].dtype)
    for column in (Columns.client, Columns.product):
        kind = contracts[column].dtype
        if pd.api.types.is_integer_dtype(kind):
            new[column] = new[column].astype("int64")
    return new.loc[:, list(contracts.columns)]
