"""The Recommender: the one place that wires the pipeline together.

Book → matrix → scorer → candidates → policy → arbitration → offers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import numbers
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Self, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from crosssell._codec import save_model
from crosssell._explain import (
    NO_CANDIDATE_LEFT,
    PairFacts,
    Texts,
    client_block_reasons,
    evidence_arrow,
    evidence_type,
    no_offer_frame,
    not_worth_reason,
    reason_sentences,
    why_not_sentence,
)
from crosssell._fresh import (
    EventRule,
    OneClient,
    WholeBlocks,
    block_reason,
    offer_map_row,
    plain_events,
    whole_pairs,
)
from crosssell._params import (
    Estimator,
    InstanceOf,
    Interval,
    Options,
    check_fitted,
    validate_params,
)
from crosssell._progress import progress_bar
from crosssell._words import WordTable
from crosssell.arbitration import Calibrator, Explore, ScoreScale, lever_weights
from crosssell.arbitration._explore import (
    draw_explorers,
    explored_reason,
    thompson_winners,
    win_probabilities,
)
from crosssell.arbitration._order import tie_rank
from crosssell.arbitration._priority import OfferMap, Pricing, Scored
from crosssell.arbitration._select import priorities, select_offers
from crosssell.book import OPEN_END, Book, Schema
from crosssell.candidates import Candidates
from crosssell.columns import Columns, OfferType
from crosssell.decisions import DecisionLog, Holdout, no_offer_row, record_recommendation
from crosssell.exceptions import (
    DataWarning,
    InvalidParameterError,
    ScoringOnlyError,
    UnknownIdError,
)
from crosssell.matrix import ClientProductMatrix, to_as_of
from crosssell.records import UNSAVED, RecordSettings, offer_records, product_names, spelled
from crosssell.rules import Policy, Reads, RuleContext, Suppression
from crosssell.scorers import Popularity, Ranker, Response
from crosssell.scorers.base import Scorer
from crosssell.weighting import Weighting, WeightingLike

_K = Interval(numbers.Integral, 1, None, closed="left")

__all__ = [
    "OFFER_COLUMNS",
    "WHY_NOT_STATUSES",
    "Offer",
    "Recommender",
    "WhyNotAnswer",
    "default_scorer",
]

#: Columns of the offers frame, in order.
OFFER_COLUMNS: tuple[str, ...] = (
    Columns.client,
    Columns.product,
    Columns.offer_type,
    Columns.score,
    Columns.propensity,
    Columns.value,
    Columns.expected_value,
    Columns.priority,
    Columns.rank,
    Columns.reason,
    Columns.evidence,
    Columns.cold_start,
)

_EVIDENCE_N = 3
_SCALE_SAMPLE = 2048
#: Scores of a piece of a block scored and selected together (float32): 1 MiB, a core's L2
#: cache on current servers. For scorers whose block costs what its rows cost apart; on the 1M x
#: 2k benchmark book, 2 cores, batch recommend 3.79 -> 3.37 s explained, 2.83 -> 2.68 s not.
_CACHED_SCORES = 1 << 18


def default_scorer() -> Scorer:
    """Return the scorer used when none is given: the learned :class:`~crosssell.scorers.Ranker`.

    Popularity (by segment), item-kNN and co-occurrence propose candidates; gradient-boosted
    trees order them from point-in-time features and give a calibrated probability of take-up
    within 90 days. Measured with ``benchmarks/quality.py`` (same folds and truth as
    :func:`crosssell.backtest`, k = 10, paired NDCG@10 differences with segment popularity and
    their 95% intervals), it is the only scorer never below popularity on the books tried: the
    synthetic demo book +0.063 [+0.019, +0.108], the telco services +0.068 [+0.060, +0.077],
    Online Retail II +0.047 [+0.042, +0.052], and level with it on the Czech bank's five
    products (+0.010 [-0.006, +0.026]); item-kNN, the previous default, was below popularity on
    two of the four (significantly on the telco book). Its propensities are calibrated
    (expected calibration error 0.001 to 0.011, against 0.17 to 0.32 for item-kNN's scaled
    scores). It costs more to fit: about a second on
    narrow books, under half a minute on Online Retail II; pass ``scorer=ItemKNN()`` where a
    fit must take a second.

    Returns
    -------
    Scorer

    Examples
    --------
    >>> default_scorer()
    Ranker()
    """
    return Ranker()


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """One offer for one client, as :meth:`Recommender.recommend_one` returns it.

    Fields are the columns of :meth:`Recommender.recommend`.

    Examples
    --------
    >>> o = Offer(client_id="C1", product_id="P2", offer_type="cross_sell", score=0.4,
    ...           propensity=0.2, value=100.0, expected_value=20.0, priority=20.0, rank=1,
    ...           reason="Clients who hold P1 often also hold P2.", evidence=(("P1", 0.4),),
    ...           cold_start=False)
    >>> o.to_dict()["expected_value"]
    20.0
    """

    client_id: Any
    product_id: Any
    offer_type: OfferType
    score: float
    propensity: float
    value: float
    expected_value: float
    priority: float
    rank: int
    reason: str | None
    evidence: tuple[tuple[Any, float], ...] | None
    cold_start: bool
    #: The id under which the offer was recorded in a decision log (``recommend_one(log=...)``).
    decision_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the offer as a plain dict, like a record of :meth:`Recommender.recommend`.

        Evidence becomes a list of ``{"product_id": ..., "weight": ...}`` (JSON-ready).

        Returns
        -------
        dict

        Examples
        --------
        >>> Offer(client_id=1, product_id=2, offer_type="upsell", score=1.0, propensity=1.0,
        ...       value=5.0, expected_value=5.0, priority=5.0, rank=1, reason=None,
        ...       evidence=None, cold_start=False).to_dict()["offer_type"]
        'upsell'
        """
        out = {f: getattr(self, f) for f in OFFER_COLUMNS}
        out[Columns.evidence] = [
            {Columns.product: product, "weight": weight} for product, weight in self.evidence or ()
        ]
        if self.decision_id is not None:
            out["decision_id"] = self.decision_id
        return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Evidence:
    """Evidence of selected offers before it is shaped for a frame or for Offer objects."""

    products: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _View:
    """What scoring needs about a set of clients: the fitted book, or fresh frames for some clients.

    ``fitted_rows`` maps the view's rows to rows of the fitted model (-1: unknown there); it is
    None when the view is the fitted book itself. ``fresh`` marks rows whose holdings differ from
    the fitted ones and are folded in rather than read from the stored model.
    """

    book: Book
    candidates: Candidates
    suppression: Suppression | None
    offers: OfferMap
    cold: npt.NDArray[np.bool_]
    eligible: npt.NDArray[np.bool_]
    fitted_rows: npt.NDArray[np.int64] | None = None
    fresh: npt.NDArray[np.bool_] | None = None
    holdings: sp.csr_matrix | None = None


#: What :meth:`Recommender.why_not_answer` can say of a pair.
WHY_NOT_STATUSES: Final = (
    "offered",
    "ranked_below",
    "blocked",
    "not_worth",
    "held",
    "unavailable",
    "not_a_candidate",
    "not_a_client",
    "unknown_client",
    "unknown_product",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WhyNotAnswer:
    """Why a product is, or is not, offered to a client (see :meth:`Recommender.why_not_answer`).

    Attributes
    ----------
    status : str
        One of :data:`WHY_NOT_STATUSES`: ``"offered"`` (in the top k), ``"ranked_below"``
        (allowed, but k others rank higher), ``"blocked"`` (a rule blocks it), ``"not_worth"``
        (its expected value does not cover the cost of proposing), ``"held"``,
        ``"unavailable"`` (outside its availability window), ``"not_a_candidate"`` (neither a
        cross-sell nor the next tier up), ``"not_a_client"`` (holds nothing at ``as_of``),
        ``"unknown_client"``, ``"unknown_product"``.
    rule, kind : str or None
        The first rule that blocks the pair and its kind; None when no rule does.
    sentence : str
        The answer in one sentence, ids spelled as the user wrote them.

    Examples
    --------
    >>> WhyNotAnswer(status="held", sentence="Client 'C1' already holds 'P1'.").rule is None
    True
    """

    status: str
    sentence: str
    rule: str | None = None
    kind: str | None = None


class Recommender(Estimator):
    """Offers for existing clients: typed, valued, explained, filtered by a policy, arbitrated.

    Parameters
    ----------
    scorer : Scorer, optional
        Any scorer of :mod:`crosssell.scorers`; default :func:`default_scorer`.
    policy : Policy, optional
        Rules that suppress offers (see :func:`crosssell.rules.route_sales`). ``None`` removes only
        products the client already holds (and downgrades).
    k : int, default 3
        Offers per client (fewer when fewer candidates are eligible; never padded).
    weighting : str, Weighting or tuple, default "binary"
        How holdings are weighted in the matrix the scorer learns from.
    levers : mapping, optional
        Business weights ``{product_id or family: weight}`` multiplied into the priority.
    max_per_family : int, optional
        At most this many offers per product family per client.
    calibrator : Calibrator, optional
        Maps scores to propensities; default: scores scaled into ``[0, 1]``
        (:class:`~crosssell.arbitration.ScoreScale`), a ranking score, not a probability. The
        priority takes the scaled score before its bound at 1: the bound is for display only.
    cold_start : {"segment", "global"}, default "segment"
        Fallback for clients with no active holding at ``as_of``: popularity within the client's
        segment, or overall. Their offers are marked ``cold_start=True``.
    batch_size : int, default 4096
        Clients scored at once; memory grows with ``batch_size x n_products`` per job.
    n_jobs : int, default -1
        Blocks of clients scored at the same time by :meth:`recommend` (threads: the heavy work
        runs in numpy, BLAS and Arrow without the GIL). ``-1`` uses every core, as implicit
        does; ``-2`` all but one; ``1`` scores on the calling thread with multi-threaded BLAS.
        One client (:meth:`recommend_one`) always stays on one thread.
    explore : Explore, optional
        Let a share of each account manager's proposals explore: the last offer of some
        clients' lists is drawn by Thompson sampling over a response model's posterior, among
        the offers the policy allows (see :class:`~crosssell.arbitration.Explore`). The offers
        of :meth:`recommend` then have three more columns: ``exploratory``,
        ``shown_probability`` (each offer's chance of being shown) and
        ``shown_probability_error``, which the decision log records. None (the default)
        proposes the best-looking offers only, and :meth:`recommend_one` never explores.

    Notes
    -----
    Offers of a client come in one total order: higher priority first; equal priorities by
    higher propensity, then higher raw score, then higher popularity at ``as_of`` (clients
    holding the product in the fitted matrix), then product id. The row order of the input
    tables never decides, on every path (:meth:`recommend`, :meth:`recommend_one`,
    ``max_per_family``).

    Examples
    --------
    >>> import crosssell as cs
    >>> book = cs.datasets.demo()
    >>> rec = Recommender(k=2).fit(book, as_of=cs.datasets.demo_as_of())
    >>> offers = rec.recommend(book.client_ids.external[:3])
    >>> offers.columns.tolist()[:4]
    ['client_id', 'product_id', 'offer_type', 'score']
    >>> int(offers.groupby("client_id").size().max()) <= 2
    True
    """

    def __init__(
        self,
        scorer: Scorer | None = None,
        policy: Policy | None = None,
        k: int = 3,
        *,
        weighting: WeightingLike = "binary",
        levers: Mapping[Any, float] | None = None,
        max_per_family: int | None = None,
        calibrator: Calibrator | None = None,
        cold_start: Literal["segment", "global"] = "segment",
        batch_size: int = 4096,
        n_jobs: int = -1,
        explore: Explore | None = None,
    ) -> None:
        self.scorer = scorer
        self.policy = policy
        self.k = k
        self.weighting = weighting
        self.levers = levers
        self.max_per_family = max_per_family
        self.calibrator = calibrator
        self.cold_start = cold_start
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.explore = explore

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "scorer": [InstanceOf(Scorer, "a crosssell scorer (see crosssell.scorers)"), None],
        "policy": [
            InstanceOf(Policy, "a crosssell.rules.Policy (e.g. crosssell.rules.route_sales())"),
            None,
        ],
        "k": [_K],
        "weighting": [str, Weighting, tuple],
        "levers": [InstanceOf(Mapping, "a mapping {product id or family: weight}"), None],
        "max_per_family": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "calibrator": [InstanceOf(Calibrator, "an object with a predict(scores) method"), None],
        "cold_start": [Options({"segment", "global"})],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        # 0 jobs means nothing: negative counts leave cores free, as in joblib
        "n_jobs": [
            Interval(numbers.Integral, None, -1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
        ],
        "explore": [InstanceOf(Explore, "a crosssell.arbitration.Explore"), None],
    }

    # ------------------------------------------------------------------ fit
    def _check_k(self, k: Any) -> int:
        validate_params(self, {"k": k}, {"k": [_K]})
        return int(k)

    def fit(self, book: Book, as_of: Any = None) -> Self:
        """Learn from ``book`` as it stood at ``as_of`` and prepare the policy.

        Parameters
        ----------
        book : Book
            Validated inputs.
        as_of : str or datetime-like, optional
            The point in time; nothing dated later is used. Default: the last date in the book.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a parameter is invalid (named in the message).

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender().fit(cs.datasets.demo(), "2025-06-30")
        >>> str(rec.as_of_.date())
        '2025-06-30'
        """
        self._validate_params()
        if not isinstance(book, Book):
            raise TypeError(f"fit expects a crosssell.Book. Got {type(book).__name__} instead.")
        matrix = book.matrix(as_of, weighting=self.weighting)
        if matrix.client_product.nnz == 0:
            first, last = book.dates
            raise InvalidParameterError(
                f"The 'as_of' parameter of Recommender.fit is {matrix.as_of.date()}, when no "
                f"client holds any product: the book's dates run from {first.date()} to "
                f"{last.date()}. Fit at a date when contracts are held.",
                owner="Recommender",
                parameter="as_of",
            )
        scorer = (self.scorer.clone() if self.scorer is not None else default_scorer()).fit(
            matrix, book
        )
        by = Columns.segment if self.cold_start == "segment" else None
        fallback = Popularity(by=by).fit(matrix, book)
        self._prepare(book, matrix, scorer, fallback)
        self.explore_model_ = self._explore_model(matrix, book)
        return self

    def _check_whole_book(self, method: str) -> None:
        """Refuse a method that reads the fitted Book's events when a scoring-only save has none."""
        if getattr(self, "scoring_only_", False):
            raise ScoringOnlyError(
                f"Recommender.{method} reads the fitted Book's events and suppression, which a "
                "scoring-only save leaves out: this model scores fresh frames only "
                "(recommend_frames, suppressed_frames). Load the whole saved model to call "
                f"{method}."
            )

    def _explore_model(self, matrix: ClientProductMatrix, book: Book) -> Response | None:
        """Return the response model exploration draws from (None without explore)."""
        if self.explore is None:
            return None
        model = self.explore.model
        if model is None:
            if isinstance(self.scorer_, Response):
                return self.scorer_
            return Response().fit(matrix, book)
        if getattr(model, "_book_columns", None) is None:
            # unfitted, or fitted on a table of contacts: learn from this Book's offers
            return model.clone().fit(matrix, book)
        if not model._product_ids.equals(book.product_ids.external):
            raise InvalidParameterError(
                "The 'explore' parameter of Recommender holds a Response fitted on another "
                f"catalogue ({len(model._product_ids)} products; this Book has "
                f"{len(book.product_ids)}). Pass it unfitted, or fitted on this Book.",
                owner="Recommender",
                parameter="explore",
            )
        return model

    def _prepare(
        self,
        book: Book,
        matrix: ClientProductMatrix,
        scorer: Scorer,
        fallback: Scorer,
        *,
        whole_book: bool = True,
    ) -> Self:
        """Derive everything that is not learned (candidates, policy, scale) from the book.

        Deterministic given its inputs, so a loaded model recomputes it and offers exactly what
        the saved one offered. ``whole_book=False`` (a scoring-only load, whose Book has no
        events) leaves the whole book's suppression out: only fresh frames are scored.
        """
        as_of_ts = matrix.as_of
        candidates = Candidates.build(book, as_of_ts)
        suppression: Suppression | None = None
        self.rule_context_: RuleContext | None = None
        if self.policy is not None:
            ctx = RuleContext(book=book, as_of=as_of_ts, holdings=candidates.holdings)
            if whole_book:
                suppression = self.policy.evaluate(ctx)
            self.rule_context_ = ctx

        self.eligible_ = _eligible(book, as_of_ts)
        self.cold_ = np.diff(candidates.holdings.indptr) == 0
        # the content hash of the saved model (set by save and load); offers' record ids use it
        self.model_id_ = UNSAVED
        # set by a load of a scoring-only save, whose Book holds no events
        self.scoring_only_ = False
        self.book_ = book
        self.as_of_ = as_of_ts
        self.matrix_: ClientProductMatrix = matrix
        self.scorer_ = scorer
        self.fallback_ = fallback
        self.candidates_ = candidates
        self.suppression_ = suppression
        self.view_ = _View(
            book=book,
            candidates=candidates,
            suppression=suppression,
            offers=OfferMap.build(candidates, suppression),
            cold=self.cold_,
            eligible=self.eligible_,
        )
        # Python objects of the product ids, for building one client's offers without pandas
        # (the trailing None keeps numpy from turning a list of tuples or ints into a 2-D array).
        self.product_objects_ = np.asarray([*book.product_ids.external.tolist(), None])[:-1]
        self.product_arrow_ = _arrow_ids(book.product_ids.external)
        self.texts_ = Texts.of(book, candidates)
        self.levers_ = lever_weights(self.levers, book)
        self.not_worth_ = self.policy.not_worth if self.policy is not None else None
        self.pricing_ = Pricing.of(
            candidates.product_value,
            self.levers_,
            self.not_worth_,
            candidates.families.to_numpy(dtype=object)[candidates.family],
        )
        self.propensity_ = self.calibrator if self.calibrator is not None else self._fit_scale()
        # the last keys of the order of offers, so that input row order never decides
        self.tie_rank_ = tie_rank(
            matrix.holders_per_product().to_numpy(), book.product_ids.external
        )
        self.k_ = int(self.k)
        # derived from the policy and the fitted blocks: rebuilt on first use after a (re)fit
        self.__dict__.pop("_one_client_", None)
        self.__dict__.pop("_whole_blocks_", None)
        return self

    def _repr_html_(self) -> str:
        """Show the parameters, or once fitted the scorer, policy, date and sizes."""
        from crosssell._html import card

        if not hasattr(self, "scorer_"):
            return card("Recommender (not fitted)", [("parameters", repr(self))])
        facts: list[tuple[str, Any]] = [
            ("scorer", repr(self.scorer_)),
            ("as_of", self.as_of_.date()),
            ("clients", f"{len(self.book_.client_ids):,} ({int(self.eligible_.sum()):,} hold "
             "something)"),
            ("products", f"{len(self.book_.product_ids):,}"),
            ("offers per client (k)", self.k_),
            ("model_id", self.model_id_),
        ]  # fmt: skip
        tables = []
        if self.policy is not None:
            facts.insert(1, ("policy", ", ".join(r.name for r in self.policy)))
            if self.suppression_ is not None:
                log = self.suppression_.log
                blocks = (
                    pd.DataFrame(
                        {
                            Columns.rule: log[Columns.rule].astype(object).to_numpy(),
                            Columns.kind: log[Columns.kind].astype(object).to_numpy(),
                        }
                    )
                    .value_counts(sort=True)
                    .rename("blocks")
                    .reset_index()
                )
                tables.append(("what the policy blocked at as_of, per rule", blocks))
        return card("Recommender", facts, tables)

    def _fit_scale(self) -> ScoreScale:
        warm = np.flatnonzero(self.eligible_ & ~self.cold_)
        if warm.size == 0 or self.scorer_.outputs_probability:
            return ScoreScale(scale=1.0)
        sample = warm[np.linspace(0, warm.size - 1, min(warm.size, _SCALE_SAMPLE)).astype(np.int64)]
        return ScoreScale.fit(self.scorer_.score(sample))

    # ------------------------------------------------------------ scoring
    def _rows_for(self, clients: Iterable[Any] | None) -> npt.NDArray[np.int64]:
        if clients is None:
            return np.flatnonzero(self.eligible_).astype(np.int64)
        ids = pd.Index(list(clients) if not isinstance(clients, pd.Index | pd.Series) else clients)
        known = self.book_.client_ids
        rows = known.to_index(ids, missing="ignore")
        unknown = rows < 0
        if unknown.any():
            # ids spelled otherwise than at fit (' C1', 2 for '2', another unicode form) are
            # looked up again in the Book's spelling; only the few unknown ones pay for it
            respelled = [known.coerce(x) for x in ids[unknown].tolist()]
            rows[unknown] = known.to_index(pd.Index(respelled, dtype=object), missing="ignore")
            unknown = rows < 0
        if unknown.any():
            shown = ", ".join(repr(x) for x in ids[unknown][:5].tolist())
            warnings.warn(
                f"{int(unknown.sum())} client id(s) are unknown to the book this model was fitted "
                f"on and get no offers (showing up to 5): {shown}. Refit on a book that holds "
                "them, or score them with recommend_one.",
                DataWarning,
                stacklevel=3,
            )
        return rows[~unknown]

    def _scores(self, view: _View, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Raw scores of view rows: stored model rows, folded-in rows, or the cold fallback."""
        if view.fitted_rows is None:
            cold = view.cold[rows]
            if not cold.any():
                # known rows with holdings (what cold says): the scorer's checks are done
                return self.scorer_.score_rows(rows)
            scores = self.scorer_.score(rows)
            scores[cold] = self.fallback_.score(rows[cold])
            return scores
        assert view.fresh is not None
        assert view.holdings is not None
        fitted = view.fitted_rows[rows]
        cold = view.cold[rows]
        fresh = view.fresh[rows] & ~cold
        stored = ~view.fresh[rows] & ~cold
        scores = np.empty((rows.shape[0], len(view.book.product_ids)), dtype=np.float32)
        if stored.any():
            scores[stored] = self.scorer_.score(fitted[stored])
        for i in np.flatnonzero(fresh):
            held = view.holdings[rows[i]]
            scores[i] = self.scorer_.fit_client(held.indices, held.data)
        if cold.any():
            scores[cold] = self._cold_scores(view, rows[cold])
        return scores

    def _cold_scores(self, view: _View, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Popularity within the client's segment (or overall) for clients of a fresh view."""
        fallback = self.fallback_
        table = view.book.client_table
        if isinstance(fallback, Popularity) and Columns.segment in table.columns:
            return fallback.score_groups(table[Columns.segment].to_numpy(dtype=object)[rows])
        return np.broadcast_to(fallback.fallback_, (rows.shape[0], fallback.n_products_)).copy()

    def _priority_chunk(
        self, rows: npt.NDArray[np.int64], view: _View | None = None, *, not_worth: bool = True
    ) -> Scored:
        """Scores, propensities and priorities (-inf = not offerable) of a block of clients."""
        view = self.view_ if view is None else view
        return priorities(
            rows=rows,
            scores=self._scores(view, rows),
            offers=view.offers,
            pricing=self.pricing_,
            propensity=self.propensity_,
            not_worth=not_worth,
        )

    def recommend(
        self,
        clients: Iterable[Any] | None = None,
        k: int | None = None,
        *,
        explain: bool = True,
        log: DecisionLog | None = None,
        holdout: Holdout | None = None,
        campaign: str | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Offers for ``clients`` (default: every client of the book at ``as_of``).

        Parameters
        ----------
        clients : iterable of ids, optional
            Client ids as in the Book, in any spelling :meth:`crosssell.ids.IdMap.coerce`
            reads. Unknown ids get no offers and a :class:`DataWarning`.
        k : int, optional
            Offers per client; default the ``k`` given at construction.
        explain : bool, default True
            Fill ``reason`` and ``evidence``; ``False`` is faster for bulk scoring.
        log : crosssell.DecisionLog, optional
            Record every offer, and every asked client left with no offer (with the reason),
            as decisions with this model's ``model_id_`` and the policy's id, in one
            transaction (see :mod:`crosssell.decisions`). The result then has a
            ``decision_id`` column, for the CRM to send reactions back.
        holdout : crosssell.Holdout, optional
            Held-out clients get no offer; what they would have been offered is recorded with
            ``arm="holdout"`` (when ``log`` is given), to measure the lift of proposing.
        campaign : str, optional
            Recorded with the decisions; scopes the holdout draw.
        progress : bool, default False
            Show a progress bar over the clients on the standard error stream (a notebook
            widget where ipywidgets is installed), when there is more than one block of
            ``batch_size`` clients. Off by default: a service calling ``recommend`` keeps its
            logs clean.

        Returns
        -------
        pandas.DataFrame
            One row per offer, columns ``client_id, product_id, offer_type ("upsell" |
            "cross_sell"), score, propensity, value, expected_value, priority, rank (from 1),
            reason, evidence, cold_start`` (and ``decision_id`` with ``log``); ordered by client
            (book order) then rank. Caller's
            ids and dtypes. ``offer_type`` and ``reason`` are text columns; ``evidence`` is an
            Arrow list column: per offer a list of ``{"product_id": ..., "weight": ...}``, the
            held products that contributed most, strongest first (missing without ``explain``).
            Both are built column-wise by Arrow, which keeps explained batches fast.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> rec.recommend(["C0001"])["rank"].tolist()
        [1]
        """
        check_fitted(self, "scorer_")
        self._check_whole_book("recommend")
        kk = self._check_k(self.k_ if k is None else k)
        asked = self._rows_for(clients)
        rows = _offerable(asked, self.view_)
        offers = self._recommend_blocks(rows, int(kk), explain, self.view_, progress=bool(progress))
        if self.explore is not None:
            offers = self._explore_offers(offers, explain)
        if log is None and holdout is None:
            return offers
        report = None
        if log is not None:
            everyone = clients is None
            report = self.no_offer_report(
                offers, clients=None if everyone else self.book_.client_ids.to_external(asked)
            )
        return record_recommendation(
            offers,
            report,
            as_of=self.as_of_,
            model_id=self.model_id_,
            policy=self.policy,
            log=log,
            holdout=holdout,
            campaign=campaign,
        )

    def _explore_offers(self, offers: pd.DataFrame, explain: bool) -> pd.DataFrame:
        """Let the budget's clients draw their last offer; give every offer its shown chance."""
        settings = self.explore
        model = getattr(self, "explore_model_", None)
        assert settings is not None
        if model is None:
            raise InvalidParameterError(
                "The 'explore' parameter of Recommender was set after fit: call fit again.",
                owner="Recommender",
                parameter="explore",
            )
        n = len(offers)
        out = offers.assign(
            exploratory=np.zeros(n, dtype=bool),
            shown_probability=np.ones(n),
            shown_probability_error=np.zeros(n),
        )
        if n == 0:
            return out
        rng = np.random.default_rng(int(settings.seed))
        client_rows = self.book_.client_ids.to_index(offers[Columns.client])
        products = self.book_.product_ids.to_index(offers[Columns.product])
        # offers come by client then rank: each client's last offer closes its run
        last = np.flatnonzero(np.append(client_rows[1:] != client_rows[:-1], True))
        first = np.concatenate([[0], last[:-1] + 1])
        clients = client_rows[last]
        table = self.book_.client_table
        managers = (
            table[Columns.owner].to_numpy(dtype=object)[clients]
            if Columns.owner in table.columns
            else np.full(clients.size, None, dtype=object)
        )
        # the clients whose last slot has a choice: the others have nothing to explore
        allowed = self._draw_set(clients, products, first, last)
        explores, p_explore = draw_explorers(
            managers,
            last - first + 1,
            settings.share,
            rng,
            eligible=allowed.sum(axis=1) > 1,
        )
        at = np.flatnonzero(p_explore > 0)
        if at.size == 0:
            return out
        allowed = allowed[at]
        groups, alpha, beta = model.posterior(clients[at])
        drawing = np.flatnonzero(explores[at])
        winners = products[last[at]].copy()
        if drawing.size:
            g = groups[drawing]
            winners[drawing] = thompson_winners(alpha[g], beta[g], allowed[drawing], rng)
        p_win, error = win_probabilities(
            alpha, beta, groups, allowed, winners, samples=settings.samples, rng=rng
        )
        greedy = winners == products[last[at]]
        pe = p_explore[at]
        probability = np.where(explores[at], pe * p_win + (1 - pe) * greedy, 1 - pe + pe * p_win)
        # a last offer that was not drawn is the best-looking one: its chance includes the draw
        # it could have lost; one that was drawn had a chance above 0, whatever the rounding
        probability = np.clip(probability, np.finfo(np.float64).tiny, 1.0)
        position = last[at]
        out.loc[position, "shown_probability"] = probability
        out.loc[position, "shown_probability_error"] = pe * error
        out.loc[position[drawing], "exploratory"] = True
        replaced = position[drawing[~greedy[drawing]]]
        if replaced.size:
            fresh = self._offers_of_pairs(
                client_rows[replaced], winners[np.isin(position, replaced)], explain
            )
            fresh[Columns.rank] = out.loc[replaced, Columns.rank].to_numpy()
            for column in ("exploratory", "shown_probability", "shown_probability_error"):
                fresh[column] = out.loc[replaced, column].to_numpy()
            fresh.index = pd.Index(replaced)
            out = pd.concat([out.drop(index=replaced), fresh[out.columns]]).sort_index()
            out = out.astype(offers.dtypes.to_dict() | {"exploratory": bool})
        if explain:
            mark = position[drawing]
            out.loc[mark, Columns.reason] = [
                f"{explored_reason(p)} {r}" if isinstance(r, str) else explored_reason(p)
                for p, r in zip(
                    out.loc[mark, "shown_probability"], out.loc[mark, Columns.reason], strict=True
                )
            ]
        return out

    def _draw_set(
        self,
        clients: npt.NDArray[np.int64],
        products: npt.NDArray[np.int64],
        first: npt.NDArray[np.int64],
        last: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.bool_]:
        """Offers each client's last slot may draw: allowed, not already above it, family caps.

        ``products`` holds every offer, client after client; ``first`` and ``last`` are each
        client's first and last offer in it.
        """
        allowed = np.zeros((clients.size, len(self.book_.product_ids)), dtype=bool)
        for lo in range(0, clients.size, self.batch_size):
            part = clients[lo : lo + self.batch_size]
            allowed[lo : lo + part.size] = np.isfinite(self._priority_chunk(part).priority)
        owner = np.repeat(np.arange(clients.size), last - first + 1)
        above = np.ones(products.size, dtype=bool)
        above[last] = False
        allowed[owner[above], products[above]] = False
        if self.max_per_family is not None:
            family = self.candidates_.family
            count = np.zeros((clients.size, int(family.max()) + 1), dtype=np.int64)
            np.add.at(count, (owner[above], family[products[above]]), 1)
            allowed &= (count < int(self.max_per_family))[:, family]
        # the best-looking last offer is always among them (the policy allowed it)
        allowed[np.arange(clients.size), products[last]] = True
        return allowed

    def _offers_of_pairs(
        self, clients: npt.NDArray[np.int64], products: npt.NDArray[np.int64], explain: bool
    ) -> pd.DataFrame:
        """Return the offer rows of given (client, product) pairs, as recommend shapes them."""
        block = self._priority_chunk(clients)
        local = np.arange(clients.size)
        upsell, value = block.typed(local, products)
        propensity = np.asarray(block.propensity(local, products), dtype=np.float64)
        cold = self.view_.cold[clients]
        reasons: Any = None
        evidence: _Evidence | None = None
        if explain:
            reasons, evidence = self._explain(
                self.view_,
                clients,
                products,
                upsell,
                cold,
                scores=block.scores[local, products].astype(np.float64),
            )
        cols: dict[str, Any] = {
            Columns.client: clients,
            Columns.product: products,
            Columns.offer_type: _offer_types(upsell),
            Columns.score: block.scores[local, products].astype(np.float64),
            Columns.propensity: propensity,
            Columns.value: value,
            Columns.expected_value: propensity * value,
            Columns.priority: block.priority[local, products].astype(np.float64),
            Columns.rank: np.ones(clients.size, dtype=np.int64),
            Columns.reason: reasons,
            Columns.evidence: evidence,
            Columns.cold_start: cold,
        }
        return self._frame_of(cols, self.view_)

    def _recommend_blocks(
        self,
        rows: npt.NDArray[np.int64],
        k: int,
        explain: bool,
        view: _View,
        *,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Offers of ``rows`` of ``view``, block after block, blocks spread over ``n_jobs``."""
        blocks = [rows[i : i + self.batch_size] for i in range(0, rows.shape[0], self.batch_size)]
        if not blocks:
            return self._empty_offers()
        bar = None
        if progress and len(blocks) > 1:
            bar = progress_bar(total=int(rows.shape[0]), desc="recommend", unit="client")

        def block_offers(b: npt.NDArray[np.int64]) -> pd.DataFrame:
            out = self._recommend_rows(b, k, explain, view)
            if bar is not None:
                bar.update(int(b.shape[0]))
            return out

        jobs = min(_jobs(self.n_jobs), len(blocks))
        try:
            if jobs == 1:
                return pd.concat([block_offers(b) for b in blocks], ignore_index=True)
            # Each block already uses BLAS; threads of BLAS inside threads of blocks would
            # only compete for the same cores.
            with _one_thread(), ThreadPoolExecutor(jobs) as pool:
                return _stack(list(pool.map(block_offers, blocks)), pool)
        finally:
            if bar is not None:
                bar.close()

    def _select(
        self, rows: npt.NDArray[np.int64], k: int, explain: bool, view: _View
    ) -> dict[str, Any]:
        """Pick the offers of a chunk of clients; columns as arrays, in output order."""
        step = rows.shape[0]
        if self.scorer_.scores_by_row:
            # pieces whose scores are selected while they are still in the core's cache
            step = max(_CACHED_SCORES // max(len(view.book.product_ids), 1), 16)
        choice = select_offers(
            rows=rows,
            scores=lambda piece: self._scores(view, piece),
            step=step,
            k=k,
            offers=view.offers,
            pricing=self.pricing_,
            propensity=self.propensity_,
            family=view.candidates.family,
            tie_rank=self.tie_rank_,
            max_per_family=self.max_per_family,
        )
        client_rows = rows[choice.row]
        products = choice.product
        offer_cold = view.cold[client_rows]
        reasons: Any = None
        evidence: _Evidence | None = None
        if explain:
            reasons, evidence = self._explain(
                view, client_rows, products, choice.upsell, offer_cold, scores=choice.score
            )
        return {
            Columns.client: client_rows,
            Columns.product: products,
            Columns.offer_type: _offer_types(choice.upsell),
            Columns.score: choice.score,
            Columns.propensity: choice.propensity,
            Columns.value: choice.value,
            Columns.expected_value: choice.propensity * choice.value,
            Columns.priority: choice.priority,
            Columns.rank: choice.rank,
            Columns.reason: reasons,
            Columns.evidence: evidence,
            Columns.cold_start: offer_cold,
        }

    def _warm_up(self) -> None:
        """Compile the loops of recommend and recommend_one now, for this model's array types.

        numba compiles each loop on first use (about a second each), or loads it from its disk
        cache; a service calls this at start so that no request pays for it.
        """
        check_fitted(self, "scorer_")
        # the fitted blocks the one-client path and the no-offer reasons reuse
        self._one_client()
        # the tables id columns are joined from (built on first use)
        self.book_.client_ids._text_words()
        self.book_.product_ids._text_words()
        if self.suppression_ is not None:
            self._whole_blocks()
        view = self.view_
        warm = np.flatnonzero(~view.cold)[:1]
        rows = warm if warm.size else np.zeros(1, dtype=np.int64)
        self._select(rows, int(self.k_), True, view)
        one = np.zeros(1, dtype=np.int64)
        self.texts_.sentences(
            family=view.candidates.family[one],
            kind=self.scorer_.explain_kind,
            clients=rows[:1],
            products=one,
            upsell=np.zeros(1, dtype=bool),
            cold=np.zeros(1, dtype=bool),
            ev_idx=np.full((1, _EVIDENCE_N), -1, dtype=np.int64),
            cold_by=self.cold_start,
        )

    def _recommend_rows(
        self, rows: npt.NDArray[np.int64], k: int, explain: bool, view: _View | None = None
    ) -> pd.DataFrame:
        view = self.view_ if view is None else view
        return self._frame_of(self._select(rows, k, explain, view), view)

    def _frame_of(self, cols: dict[str, Any], view: _View) -> pd.DataFrame:
        """Return the offers frame of selected columns: external ids, text reasons, evidence."""
        n = cols[Columns.rank].shape[0]
        cols[Columns.client] = view.book.client_ids._external_array(cols[Columns.client])
        cols[Columns.product] = view.book.product_ids._external_array(cols[Columns.product])
        reasons = cols[Columns.reason]
        cols[Columns.reason] = pd.array(
            np.full(n, None, dtype=object) if reasons is None else reasons, dtype="str"
        )
        evidence: _Evidence | None = cols[Columns.evidence]
        ids = self.product_arrow_
        cols[Columns.evidence] = pd.arrays.ArrowExtensionArray(
            pa.nulls(n, evidence_type(ids))
            if evidence is None
            else evidence_arrow(
                ids, evidence.products, evidence.weights, words=view.book.product_ids._text_words()
            )
        )
        return pd.DataFrame(cols)

    def _empty_offers(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                Columns.client: self.book_.client_ids.external[:0],
                Columns.product: self.book_.product_ids.external[:0],
                Columns.offer_type: pd.Series([], dtype="str"),
                Columns.score: np.array([], dtype=np.float64),
                Columns.propensity: np.array([], dtype=np.float64),
                Columns.value: np.array([], dtype=np.float64),
                Columns.expected_value: np.array([], dtype=np.float64),
                Columns.priority: np.array([], dtype=np.float64),
                Columns.rank: np.array([], dtype=np.int64),
                Columns.reason: pd.Series([], dtype="str"),
                Columns.evidence: pd.arrays.ArrowExtensionArray(
                    pa.nulls(0, evidence_type(self.product_arrow_))
                ),
                Columns.cold_start: np.array([], dtype=bool),
            }
        )

    # ------------------------------------------------------- fresh data
    def _fresh_view(
        self,
        contracts: Any,
        clients: Any = None,
        events: Any = None,
        as_of: Any = None,
        schema: Schema | None = None,
    ) -> _View:
        """Build a view of the clients in fresh frames, checked against the fitted catalogue."""
        check_fitted(self, "scorer_")
        as_of_ts = self.as_of_ if as_of is None else to_as_of(as_of, caller="recommend_frames")
        book = Book.from_frames(
            contracts=contracts,
            # the fitted Book lends its validated catalogue: not parsed again per call
            products=self.book_,
            clients=clients,
            events=events,
            schema=schema,
        )
        if not book.product_ids.external.equals(self.book_.product_ids.external):
            new = book.product_ids.external.difference(self.book_.product_ids.external)
            raise UnknownIdError(
                f"contracts: {len(new)} product id(s) are not in the catalogue this model was "
                f"fitted on (showing up to 5): {', '.join(repr(x) for x in new[:5].tolist())}. "
                "Refit the model on a book that has them.",
                ids=new.tolist(),
            )
        matrix = book.matrix(as_of_ts, weighting=self.weighting)
        candidates = Candidates.build(book, as_of_ts)
        # Values come from the whole fitted book, not from the few contracts at hand.
        candidates = dataclasses.replace(
            candidates,
            product_value=self.candidates_.product_value,
            value_source=self.candidates_.value_source,
        )
        suppression = None
        if self.policy is not None:
            ctx = RuleContext(book=book, as_of=as_of_ts, holdings=candidates.holdings, partial=True)
            fitted_ctx = getattr(self, "rule_context_", None)
            if fitted_ctx is not None:
                # same catalogue (checked above): its families and lists are parsed already
                ctx.share_catalogue(fitted_ctx)
            suppression = self.policy.evaluate(ctx)
        fitted_rows = self.book_.client_ids.to_index(book.client_ids.external, missing="ignore")
        holdings = matrix.client_product
        fresh = fitted_rows < 0
        known = np.flatnonzero(~fresh)
        if as_of_ts != self.as_of_:
            fresh[:] = True
        elif known.size:
            stored = self.matrix_.client_product[fitted_rows[known]]
            diff = abs(stored - holdings[known])
            fresh[known] = np.asarray(diff.sum(axis=1)).ravel() > 0
        return _View(
            book=book,
            candidates=candidates,
            suppression=suppression,
            offers=OfferMap.build(candidates, suppression),
            cold=np.diff(holdings.indptr) == 0,
            eligible=_eligible(book, as_of_ts),
            fitted_rows=fitted_rows,
            fresh=fresh,
            holdings=holdings,
        )

    def recommend_frames(
        self,
        contracts: Any,
        *,
        clients: Any = None,
        events: Any = None,
        as_of: Any = None,
        k: int | None = None,
        explain: bool = True,
        schema: Schema | None = None,
    ) -> pd.DataFrame:
        """Offers for the clients in fresh frames, scored with the fitted model.

        The frames (crosssell's column names, or ``schema``) are validated into a small Book with
        the fitted catalogue. Clients known at fit whose holdings at ``as_of`` are unchanged are
        scored from the stored model, so their offers equal :meth:`recommend`; the others are
        folded in from their holdings (see the scorer's ``fit_client``). The policy runs on the
        fresh events and contracts. This is the batch path behind ``crosssell.spark``.

        Parameters
        ----------
        contracts : DataFrame
            Contracts of the clients to score (all of their contracts, not only new ones).
        clients, events : DataFrame, optional
            Their client rows and events.
        as_of : datetime-like, optional
            Default: the fitted ``as_of``.
        k : int, optional
            Offers per client.
        explain : bool, default True
            Fill ``reason`` and ``evidence``.
        schema : Schema, optional
            Column names of the frames.

        Returns
        -------
        pandas.DataFrame
            Same columns as :meth:`recommend`.

        Raises
        ------
        SchemaError
            If the frames are invalid.
        UnknownIdError
            If a product is not in the fitted catalogue.

        Examples
        --------
        >>> import crosssell as cs
        >>> book = cs.datasets.demo()
        >>> rec = Recommender(k=2).fit(book, "2025-06-30")
        >>> mine = book.contracts[book.contracts["client_id"] == "C0001"]
        >>> fresh = rec.recommend_frames(mine)
        >>> fresh["product_id"].tolist() == rec.recommend(["C0001"])["product_id"].tolist()
        True
        """
        kk = self._check_k(self.k_ if k is None else k)
        view = self._fresh_view(contracts, clients, events, as_of, schema)
        rows = _offerable(np.flatnonzero(view.eligible).astype(np.int64), view)
        return self._recommend_blocks(rows, int(kk), explain, view)

    def suppressed_frames(
        self,
        contracts: Any,
        *,
        clients: Any = None,
        events: Any = None,
        as_of: Any = None,
        schema: Schema | None = None,
    ) -> pd.DataFrame:
        """Return the suppression log of the clients in fresh frames (see :meth:`recommend_frames`).

        Parameters
        ----------
        contracts : DataFrame
            Contracts of the clients.
        clients, events : DataFrame, optional
            Their client rows and events.
        as_of : datetime-like, optional
            Default: the fitted ``as_of``.
        schema : Schema, optional
            Column names of the frames.

        Returns
        -------
        pandas.DataFrame
            Same columns as :meth:`suppressed`.

        Examples
        --------
        >>> import crosssell as cs
        >>> book = cs.datasets.demo()
        >>> rec = Recommender(policy=cs.rules.route_sales()).fit(book, "2025-06-30")
        >>> mine = book.contracts[book.contracts["client_id"] == "C0001"]
        >>> set(rec.suppressed_frames(mine)["client_id"].dropna()) <= {"C0001"}
        True
        """
        view = self._fresh_view(contracts, clients, events, as_of, schema)
        if view.suppression is None:
            return self._empty_log()
        return view.suppression.to_frame(view.book)

    def recommend_one(
        self,
        client: Any,
        *,
        contracts: Any = None,
        events: Any = None,
        as_of: Any = None,
        k: int | None = None,
        explain: bool = True,
        log: DecisionLog | None = None,
        holdout: Holdout | None = None,
        campaign: str | None = None,
    ) -> list[Offer]:
        """Offers for one client, in real time, optionally with data not seen at fit.

        Without fresh data this reads the fitted state only and answers in well under a
        millisecond (see ``benchmarks/realtime.py``). With ``contracts`` or ``events`` the
        client's stored rows and the fresh ones are validated together, new holdings are folded
        in and the policy sees the new events (tens of milliseconds: the rows are validated
        with the catalogue and every rule runs again).

        Parameters
        ----------
        client : id
            Client id, in any spelling :meth:`crosssell.ids.IdMap.coerce` reads (``2`` for
            ``"2"``, blanks around, another unicode form); an id unknown at fit needs
            ``contracts``.
        contracts : DataFrame, list of records or dict of columns, optional
            New contracts of this client (added to the ones known at fit).
        events : DataFrame, list of records or dict of columns, optional
            New events of this client (e.g. a complaint opened today).
        as_of : datetime-like, optional
            Default: the fitted ``as_of``.
        k : int, optional
            Offers; default the fitted ``k``.
        explain : bool, default True
            Fill ``reason`` and ``evidence``.
        log : crosssell.DecisionLog, optional
            Record the answer as decisions (an empty answer as one ``no_offer`` decision with
            its reason); each offer then carries its ``decision_id``.
        holdout : crosssell.Holdout, optional
            A held-out client gets an empty list (what it would have got is recorded with
            ``arm="holdout"`` when ``log`` is given).
        campaign : str, optional
            Recorded with the decisions; scopes the holdout draw.

        Returns
        -------
        list of Offer
            Best first; empty when nothing fits. An unknown client without contracts gets an
            empty list and a :class:`DataWarning`.

        Examples
        --------
        >>> import crosssell as cs
        >>> book = cs.datasets.demo()
        >>> rec = Recommender(policy=cs.rules.route_sales(), k=2).fit(book, "2025-06-30")
        >>> [o.rank for o in rec.recommend_one("C0001")]
        [1, 2]
        >>> complaint = {"client_id": ["C0001"], "date": ["2025-06-30"],
        ...              "type": ["complaint_opened"]}
        >>> rec.recommend_one("C0001", events=complaint)
        []
        """
        offers = self._recommend_one(
            client, contracts=contracts, events=events, as_of=as_of, k=k, explain=explain
        )
        if log is None and holdout is None:
            return offers
        return self._decide_one(
            client, offers, events=events, as_of=as_of, log=log, holdout=holdout, campaign=campaign
        )

    def _decide_one(
        self,
        client: Any,
        offers: list[Offer],
        *,
        events: Any,
        as_of: Any,
        log: DecisionLog | None,
        holdout: Holdout | None,
        campaign: str | None,
    ) -> list[Offer]:
        """Record one client's answer as decisions and apply the holdout to it."""
        client = self.book_.client_ids.coerce(client)
        frame = pd.DataFrame([o.to_dict() for o in offers], columns=list(OFFER_COLUMNS))
        report = None
        if log is not None and not offers:
            try:
                reason, rules = self.no_offer_reason(client, events=events)
            except UnknownIdError:
                reason, rules = "the client is not in the fitted book", ()
            report = no_offer_row(client, reason, rules)
        day = self.as_of_ if as_of is None else to_as_of(as_of, caller="recommend_one")
        shown = record_recommendation(
            frame,
            report,
            as_of=day,
            model_id=self.model_id_,
            policy=self.policy,
            log=log,
            holdout=holdout,
            campaign=campaign,
        )
        if shown.empty:
            return []
        if "decision_id" not in shown.columns:
            return offers
        ids = shown["decision_id"].tolist()
        return [dataclasses.replace(o, decision_id=d) for o, d in zip(offers, ids, strict=True)]

    def _recommend_one(
        self,
        client: Any,
        *,
        contracts: Any,
        events: Any,
        as_of: Any,
        k: int | None,
        explain: bool,
    ) -> list[Offer]:
        check_fitted(self, "scorer_")
        self._check_whole_book("recommend_one")
        kk = self._check_k(self.k_ if k is None else k)
        given = client
        client = self.book_.client_ids.coerce(client)
        row = self.book_.client_ids.index_of(client)
        same_time = as_of is None or to_as_of(as_of, caller="recommend_one") == self.as_of_
        if contracts is None and events is None and same_time:
            if row < 0 or not self.eligible_[row]:
                return _offers_from_frame(self.recommend([client], k=kk, explain=explain))
            # One client must not fan out to BLAS threads: thread start-up costs more than the
            # whole product, and under load it turns into millisecond tails.
            with _one_thread():
                cols = self._select(np.array([row], dtype=np.int64), int(kk), explain, self.view_)
            return _offers_from_columns(cols, self.product_objects_, client)
        if contracts is None and events is not None and same_time and row >= 0:
            fast = self._recommend_one_events(row, client, events, int(kk), explain)
            if fast is not None:
                return fast
        stored_c, stored_e, stored_cl = self._stored_frames(row)
        fresh_c, fresh_e = (
            _with_client(_as_frame(contracts), client),
            _with_client(_as_frame(events), client),
        )
        # The caller's rows first: an error in them names their own row numbers, not positions
        # after the client's stored rows.
        frames_c = [f for f in (fresh_c, stored_c) if f is not None and len(f)]
        frames_e = [f for f in (fresh_e, stored_e) if f is not None and len(f)]
        if not frames_c:
            return _offers_from_frame(self.recommend([client], k=kk, explain=explain))
        offers = self.recommend_frames(
            pd.concat(frames_c, ignore_index=True),
            clients=stored_cl,
            events=pd.concat(frames_e, ignore_index=True) if frames_e else None,
            as_of=as_of,
            k=kk,
            explain=explain,
        )
        mine = offers[Columns.client] == client
        if not mine.any():
            # a new client whose fresh rows keep the caller's spelling of its id
            mine = offers[Columns.client] == given
        return _offers_from_frame(offers[mine])

    def _recommend_one_events(
        self, row: int, client: Any, events: Any, k: int, explain: bool
    ) -> list[Offer] | None:
        """Offers of a known client given new events only; None when the full path must answer.

        The client's holdings, and so its scores and candidates, are those of the fit; only the
        rules that read events can change their mind. They run on a one-client context of the
        stored events and the new ones; the other rules keep their fitted blocks of this client.
        Nothing else of the Book is validated again. Records that are not plainly valid (an
        unknown column or event type, a date that is not ``YYYY-MM-DD``...) return None, and the
        full path validates them and says what is wrong; it gives the same offers.
        """
        if not self.eligible_[row]:
            return None
        prepared = self._one_client()
        if prepared == "full":
            return None
        fresh = plain_events(events, client, self.book_, self.as_of_)
        if fresh is None:
            return None
        one = np.array([row], dtype=np.int64)
        view = self.view_
        if isinstance(prepared, OneClient):
            parts = prepared.offers(row, fresh, view.offers)
            if parts is None:
                return []
            offers = offer_map_row(row, len(self.book_.client_ids), view.offers, parts)
            view = dataclasses.replace(view, suppression=None, offers=offers)
        with _one_thread():
            cols = self._select(one, k, explain, view)
        return _offers_from_columns(cols, self.product_objects_, client)

    def _one_client(self) -> OneClient | Literal["full", "fitted"]:
        """Return what the one-client path needs of this model, prepared once.

        ``"fitted"`` when no rule reads events (new events change nothing), ``"full"`` when the
        policy has a rule whose inputs are not known to be the client's own rows (a user's
        rule, or one that looks at other clients): such a policy always takes the full path.
        Computed once per model, under a lock: requests may race for it.
        """
        cached = self.__dict__.get("_one_client_")
        if cached is None:
            with _ONE_CLIENT_LOCK:
                cached = self.__dict__.get("_one_client_")
                if cached is None:
                    cached = (self._prepare_one_client(),)
                    self.__dict__["_one_client_"] = cached
        prepared: OneClient | Literal["full", "fitted"] = cached[0]
        return prepared

    def _whole_blocks(self) -> WholeBlocks:
        """Return the fitted policy's blocks of every offer of a client, by client (cached)."""
        cached = self.__dict__.get("_whole_blocks_")
        if cached is None:
            assert self.suppression_ is not None
            cached = WholeBlocks.of(self.suppression_.log, len(self.book_.client_ids))
            self.__dict__["_whole_blocks_"] = cached
        return cast(WholeBlocks, cached)

    def _prepare_one_client(self) -> OneClient | Literal["full", "fitted"]:
        if self.policy is None:
            return "fitted"
        rules = list(self.policy)
        declared = [Reads.of(r) for r in rules]
        # A rule that may read anything, or other clients' rows, is run again on the full path.
        if any(d is None or d.other_clients for d in declared):
            return "full"
        if self.rule_context_ is None:
            return "full"
        reading = [r for r, d in zip(rules, declared, strict=True) if d is not None and d.events]
        if not reading:
            return "fitted"
        # only the built-in event rules can run on one client's event columns
        runnable = [r for r in reading if isinstance(r, EventRule)]
        if len(runnable) < len(reading):
            return "full"
        static = Policy([r for r, d in zip(rules, declared, strict=True) if d and not d.events])
        prepared = OneClient.prepare(static, runnable, self.rule_context_, self.candidates_)
        return "full" if prepared is None else prepared

    def _stored_frames(
        self, row: int
    ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
        """Return the fitted book's contracts, events and client row of one client as frames."""
        if row < 0:
            return None, None, None
        book = self.book_
        arr = book.contract_arrays
        mine = np.flatnonzero(arr.client == row)
        end = arr.end[mine]
        contracts = pd.DataFrame(
            {
                Columns.client: book.client_ids.to_external(np.full(mine.size, row)),
                Columns.product: book.product_ids.to_external(arr.product[mine]),
                Columns.start: pd.to_datetime(arr.start[mine]),
                Columns.end: pd.to_datetime(np.where(end == OPEN_END, np.iinfo(np.int64).min, end)),
                Columns.value: arr.value[mine],
                Columns.quantity: arr.quantity[mine],
            }
        )
        ev = book.event_table
        events = ev[ev[Columns.client_idx].to_numpy() == row].drop(
            columns=[Columns.client_idx, Columns.product_idx, Columns.family], errors="ignore"
        )
        client = book.client_table.iloc[[row]]
        return contracts, events, client

    # ------------------------------------------------------------ explain
    def _explain(
        self,
        view: _View,
        client_rows: npt.NDArray[np.int64],
        products: npt.NDArray[np.int64],
        upsell: npt.NDArray[np.bool_],
        cold: npt.NDArray[np.bool_],
        *,
        scores: npt.NDArray[np.float64] | None = None,
    ) -> tuple[Any, _Evidence]:
        if self.scorer_.explain_kind == "contributions":
            return self._explain_contributions(view, client_rows, products, upsell, cold)
        ev_idx, ev_w = self._evidence(view, client_rows, products)
        ev_idx = np.where(cold[:, None], -1, ev_idx)
        reasons = reason_sentences(
            book=view.book,
            candidates=view.candidates,
            kind=self.scorer_.explain_kind,
            clients=client_rows,
            products=products,
            upsell=upsell,
            cold=cold,
            ev_idx=ev_idx,
            cold_by=self.cold_start,
            arrow=True,
            texts=self.texts_ if view.book is self.book_ else None,
            scores=scores,
        )
        return reasons, _Evidence(products=ev_idx, weights=ev_w)

    def _explain_contributions(
        self,
        view: _View,
        client_rows: npt.NDArray[np.int64],
        products: npt.NDArray[np.int64],
        upsell: npt.NDArray[np.bool_],
        cold: npt.NDArray[np.bool_],
    ) -> tuple[Any, _Evidence]:
        """Reasons and evidence of a learned ranker's or response model's offers (``reasons``).

        Cold clients are scored by the fallback, so they keep the fallback's sentence.
        """
        scorer = self.scorer_
        assert isinstance(scorer, Ranker | Response)
        m = products.shape[0]
        ev_idx = np.full((m, _EVIDENCE_N), -1, dtype=np.int64)
        ev_w = np.zeros((m, _EVIDENCE_N), dtype=np.float32)
        text = np.empty(m, dtype=object)
        if cold.any():
            text[cold] = reason_sentences(
                book=view.book,
                candidates=view.candidates,
                kind="popularity",
                clients=client_rows[cold],
                products=products[cold],
                upsell=upsell[cold],
                cold=cold[cold],
                ev_idx=ev_idx[cold],
                cold_by=self.cold_start,
                texts=self.texts_ if view is self.view_ else None,
            )
        warm = ~cold
        parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], sp.csr_matrix | None]]
        if view.fitted_rows is None:
            parts = [(np.flatnonzero(warm), client_rows, None)]
        else:
            assert view.fresh is not None
            stored = warm & ~view.fresh[client_rows]
            parts = [
                (np.flatnonzero(stored), view.fitted_rows[client_rows], None),
                (np.flatnonzero(warm & ~stored), client_rows, view.holdings),
            ]
        for at, rows, holdings in parts:
            if at.size:
                ev_idx[at], ev_w[at], text[at] = scorer.reasons(
                    rows[at], products[at], n=_EVIDENCE_N, holdings=holdings
                )
        up = np.flatnonzero(warm & upsell)
        if up.size:
            family = view.candidates.families[view.candidates.family[products[up]]]
            text[up] = [
                f"Upgrade within {f}: {t}"
                for f, t in zip(family.tolist(), text[up].tolist(), strict=True)
            ]
        return text, _Evidence(products=ev_idx, weights=ev_w)

    def _evidence(
        self, view: _View, rows: npt.NDArray[np.int64], products: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        if view.fitted_rows is None:
            return self.scorer_.evidence(rows, products, n=_EVIDENCE_N)
        assert view.fresh is not None
        assert view.holdings is not None
        stored = ~view.fresh[rows]
        ev_idx = np.full((rows.shape[0], _EVIDENCE_N), -1, dtype=np.int64)
        ev_w = np.zeros((rows.shape[0], _EVIDENCE_N), dtype=np.float32)
        if stored.any():
            ev_idx[stored], ev_w[stored] = self.scorer_.evidence(
                view.fitted_rows[rows[stored]], products[stored], n=_EVIDENCE_N
            )
        fresh = np.flatnonzero(~stored)
        if fresh.size:
            ev_idx[fresh], ev_w[fresh] = self.scorer_.evidence(
                rows[fresh], products[fresh], n=_EVIDENCE_N, holdings=view.holdings
            )
        return ev_idx, ev_w

    # -------------------------------------------------------- persistence
    def save(
        self, path: str | os.PathLike[str], *, compress: bool = False, scoring_only: bool = False
    ) -> Path:
        """Save the fitted model safely: a JSON manifest and arrays, never a pickle.

        Parameters
        ----------
        path : str or path-like
            A ``.zip`` or ``.crosssell`` name gives one zip file; any other name a folder.
        compress : bool, default False
            Deflate the arrays (smaller, slower).
        scoring_only : bool, default False
            Leave the Book's events out and keep what scoring fresh frames reads: the loaded
            model answers only :meth:`recommend_frames` and :meth:`suppressed_frames` (see
            :func:`crosssell.persist.save`).

        Returns
        -------
        pathlib.Path
            Where the model was written (atomically).

        Raises
        ------
        ArtifactError
            If the model holds something that cannot be saved without code (a user rule), or
            with ``scoring_only`` learns again from the events when loaded (a Response).

        Examples
        --------
        >>> import tempfile, crosssell as cs
        >>> rec = Recommender(k=2).fit(cs.datasets.demo(), "2025-06-30")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = rec.save(f"{d}/model.crosssell")
        ...     again = cs.load(path)
        >>> again.recommend(["C0001"]).equals(rec.recommend(["C0001"]))
        True
        """
        # persistence knows every class and so sits above this module; it installs its saver
        return save_model(self, path, compress=compress, scoring_only=scoring_only)

    # -------------------------------------------------------------- audit
    def suppressed(self, *, not_worth: bool = False) -> pd.DataFrame:
        """Return the policy's log: every blocked (client, product) and the rule that blocked it.

        Parameters
        ----------
        not_worth : bool, default False
            Also log the candidates the policy allowed but its
            :class:`~crosssell.rules.NotWorthProposing` rule dropped after scoring, one row
            per (client, product) with the sentence saying why (e.g. "expected value 12.40
            (propensity 0.031 x value 400) is below the 25.00 cost of proposing it"). This
            scores every client, and the rows can be many.

        Returns
        -------
        pandas.DataFrame
            Columns ``client_id, product_id, rule, kind, detail, scope``; ``product_id`` is
            missing where a rule blocks every product of the client. Empty without a policy.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender(policy=cs.rules.route_sales()).fit(cs.datasets.demo(), "2025-06-30")
        >>> {"rule", "kind", "detail"} <= set(rec.suppressed().columns)
        True
        >>> policy = cs.rules.route_sales(contact_cost=100.0)
        >>> rec = Recommender(policy=policy).fit(cs.datasets.demo(), "2025-06-30")
        >>> log = rec.suppressed(not_worth=True)
        >>> log.loc[log["rule"] == "not_worth_proposing", "detail"].iloc[0]  # doctest: +ELLIPSIS
        'expected value ... is below the 100.00 cost of proposing it'
        """
        check_fitted(self, "scorer_")
        self._check_whole_book("suppressed")
        if self.suppression_ is None:
            return self._empty_log()
        log = self.suppression_.to_frame(self.book_)
        if not not_worth or self.not_worth_ is None:
            return log
        weak = self._not_worth_log()
        return pd.concat([log, weak], ignore_index=True) if len(weak) else log

    def _not_worth_log(self) -> pd.DataFrame:
        """Candidates the policy allowed and the not-worth floor dropped, with the reason."""
        floor = self.not_worth_
        assert floor is not None
        rows = _offerable(np.flatnonzero(self.eligible_).astype(np.int64), self.view_)
        parts_r, parts_c, parts_d = [], [], []
        for start in range(0, rows.shape[0], self.batch_size):
            chunk = rows[start : start + self.batch_size]
            block = self._priority_chunk(chunk, not_worth=False)
            r, c = np.nonzero(np.isfinite(block.priority))
            p = np.asarray(block.propensity(r, c), dtype=np.float64)
            v = block.typed(r, c)[1]
            cost = self.pricing_.cost[c]
            hit = floor.blocked(p, p * v, cost=cost)
            parts_r.append(chunk[r[hit]])
            parts_c.append(c[hit])
            parts_d.append(floor.detail(p[hit], p[hit] * v[hit], value=v[hit], cost=cost[hit]))
        if not parts_r:
            return self._empty_log()
        r, c = np.concatenate(parts_r), np.concatenate(parts_c)
        n = r.shape[0]
        return pd.DataFrame(
            {
                Columns.client: self.book_.client_ids.to_external(r),
                Columns.product: self.book_.product_ids.to_external(c),
                Columns.rule: np.full(n, floor.name, dtype=object),
                Columns.kind: np.full(n, floor.kind, dtype=object),
                Columns.detail: np.concatenate(parts_d).astype(object),
                Columns.scope: np.full(n, "any", dtype=object),
            }
        )

    def _empty_log(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                Columns.client: self.book_.client_ids.external[:0],
                Columns.product: self.book_.product_ids.external[:0],
                Columns.rule: pd.Series([], dtype=object),
                Columns.kind: pd.Series([], dtype=object),
                Columns.detail: pd.Series([], dtype=object),
                Columns.scope: pd.Series([], dtype=object),
            }
        )

    def why_not(self, client: Any, product: Any) -> str:
        """Say in one sentence why ``product`` is (or is not) offered to ``client``.

        Parameters
        ----------
        client, product : id
            Ids as in the Book, in any spelling :meth:`crosssell.ids.IdMap.coerce` reads
            (``2`` for ``"2"``, blanks around, another unicode form).

        Returns
        -------
        str
            :attr:`WhyNotAnswer.sentence` of :meth:`why_not_answer`.

        Examples
        --------
        >>> import crosssell as cs
        >>> book = cs.datasets.demo()
        >>> rec = Recommender().fit(book, "2025-06-30")
        >>> rec.why_not("no-such-client", book.product_ids.external[0])
        "Client 'no-such-client' is not in the book this model was fitted on."
        """
        return self.why_not_answer(client, product).sentence

    def why_not_answer(self, client: Any, product: Any) -> WhyNotAnswer:  # noqa: PLR0911
        """Why ``product`` is (or is not) offered to ``client``: a status, the rule and a sentence.

        Parameters
        ----------
        client, product : id
            Ids as in the Book, in any spelling :meth:`crosssell.ids.IdMap.coerce` reads.

        Returns
        -------
        WhyNotAnswer
            ``status`` (one of :data:`WHY_NOT_STATUSES`), ``rule`` and ``kind`` of the first
            rule that blocks the pair (None when no rule does) and the ``sentence``.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender(policy=cs.rules.route_sales()).fit(cs.datasets.demo(), "2025-06-30")
        >>> answer = rec.why_not_answer("C0003", "BI-2")
        >>> answer.status, answer.rule, answer.kind
        ('blocked', 'do_not_contact', 'contact')
        """
        check_fitted(self, "scorer_")
        self._check_whole_book("why_not")
        client = self.book_.client_ids.coerce(client)
        product = self.book_.product_ids.coerce(product)
        row = self.book_.client_ids.index_of(client)
        col = self.book_.product_ids.index_of(product)
        facts = functools.partial(
            PairFacts, client=client, product=product, as_of=self.as_of_, k=self.k_
        )
        if row < 0 or col < 0:
            status = "unknown_client" if row < 0 else "unknown_product"
            text = why_not_sentence(facts(known_client=row >= 0, known_product=col >= 0))
            return WhyNotAnswer(status=status, sentence=text)
        if not self.eligible_[row]:
            return WhyNotAnswer(
                status="not_a_client", sentence=why_not_sentence(facts(eligible=False))
            )
        is_cand, is_up, _ = self.candidates_.pairs([row], [col])
        if bool(self.candidates_.holdings[row, col]):
            return WhyNotAnswer(status="held", sentence=why_not_sentence(facts(held=True)))
        if not self.candidates_.available[col]:
            detail = _unavailable_detail(self.book_.product_table, col, self.as_of_)
            text = why_not_sentence(facts(unavailable=detail))
            return WhyNotAnswer(status="unavailable", sentence=text)
        if not is_cand[0]:
            family = self.candidates_.families[self.candidates_.family[col]]
            text = why_not_sentence(facts(upgrade=False, family=family))
            return WhyNotAnswer(status="not_a_candidate", sentence=text)
        if self.suppression_ is not None:
            hits = self.suppression_.reasons(row, col, bool(is_up[0]))
            if hits:
                rule, kind, _ = hits[0]
                text = why_not_sentence(facts(blocked_by=tuple(hits)))
                return WhyNotAnswer(status="blocked", rule=rule, kind=kind, sentence=text)
        rows = np.array([row], dtype=np.int64)
        block = self._priority_chunk(rows)
        priority = block.priority
        p = float(block.propensity(np.zeros(1, dtype=np.int64), np.array([col]))[0])
        v = float(block.typed(np.zeros(1, dtype=np.int64), np.array([col]))[1][0])
        if self.not_worth_ is not None and not np.isfinite(priority[0, col]):
            detail = self.not_worth_.detail(
                np.array([p]),
                np.array([p * v]),
                value=np.array([v]),
                cost=self.pricing_.cost[[col]],
            )[0]
            return WhyNotAnswer(
                status="not_worth",
                rule=self.not_worth_.name,
                kind=self.not_worth_.kind,
                sentence=why_not_sentence(facts(not_worth=detail)),
            )
        offerable = np.flatnonzero(np.isfinite(priority[0]))
        mine = float(priority[0, col])
        # the rank the selection gives it: the same total order (priority, propensity, raw score,
        # then popularity and product id through tie_rank_)
        scores = block.scores[0, offerable]
        order = np.lexsort(
            (
                self.tie_rank_[offerable],
                -scores,
                -np.asarray(block.predict(scores), dtype=np.float32),
                -priority[0, offerable],
            )
        )
        better = int(np.flatnonzero(offerable[order] == col)[0])
        text = why_not_sentence(
            facts(
                priority=mine,
                better=better,
                n_candidates=int(offerable.size),
                because=self._because(row, col),
            )
        )
        return WhyNotAnswer(status="offered" if better < self.k_ else "ranked_below", sentence=text)

    def _because(self, row: int, col: int) -> str | None:
        """Give the contribution sentence of a learned ranker's pair (None for other scorers)."""
        scorer = self.scorer_
        if not isinstance(scorer, Ranker | Response) or self.view_.cold[row]:
            return None
        _, _, text = scorer.reasons(np.array([row]), np.array([col]), n=_EVIDENCE_N)
        return str(text[0])

    def no_offer_report(
        self, offers: pd.DataFrame | None = None, *, clients: Iterable[Any] | None = None
    ) -> pd.DataFrame:
        """Clients left with no offer, and what blocked them.

        A policy that is too strict shows itself here.

        Parameters
        ----------
        offers : DataFrame, optional
            The result of :meth:`recommend` for every client (or for ``clients``; computed
            when not given).
        clients : iterable of ids, optional
            Only these clients (default: every client of the book at ``as_of``).

        Returns
        -------
        pandas.DataFrame
            One row per client without an offer: ``client_id``, ``reason`` (the client-level rules
            that blocked it, or why no candidate was left), ``rules`` (tuple of rule names).

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender(policy=cs.rules.route_sales()).fit(cs.datasets.demo(), "2025-06-30")
        >>> set(rec.no_offer_report().columns) == {"client_id", "reason", "rules"}
        True
        """
        check_fitted(self, "scorer_")
        self._check_whole_book("no_offer_report")
        if offers is None:
            offers = self.recommend(clients, explain=False)
        rows = np.flatnonzero(self.eligible_)
        if clients is not None:
            rows = np.intersect1d(rows, self._rows_for(clients))
        offered = self.book_.client_ids.to_index(offers[Columns.client].unique(), missing="ignore")
        without = np.setdiff1d(rows, offered)
        reason = np.full(without.shape[0], NO_CANDIDATE_LEFT, dtype=object)
        rules = np.empty(without.shape[0], dtype=object)
        rules[:] = [()] * without.shape[0]
        if self.suppression_ is not None and without.size:
            log = self.suppression_.log
            # Only blocks of every offer explain an empty list; a cross-sell-only block does not.
            client_level = log[
                (log[Columns.product_idx] < 0)
                & (log[Columns.scope] == "any")
                & log[Columns.client_idx].isin(without)
            ]
            if not client_level.empty:
                blocked, names, details = client_block_reasons(client_level)
                pos = pd.Index(without).get_indexer(pd.Index(blocked))
                rules[pos] = names
                reason[pos] = details
        self._explain_not_worth(without, reason, rules)
        return no_offer_frame(self.book_.client_ids.to_external(without), reason, rules)

    def no_offer_reason(self, client: Any, *, events: Any = None) -> tuple[str, tuple[str, ...]]:
        """Why one client gets no offer: the sentence and the rules, as :meth:`no_offer_report`.

        Meant for a client whose list came back empty (the HTTP service says it beside the empty
        list). New ``events`` are read as :meth:`recommend_one` reads them: a complaint sent with
        the request is the reason when it blocks every offer.

        Parameters
        ----------
        client : id
            Client id, in any spelling :meth:`crosssell.ids.IdMap.coerce` reads.
        events : DataFrame, list of records or dict of columns, optional
            New events of this client.

        Returns
        -------
        reason : str
            The sentence; for a client with offers, what would block them otherwise
            (:data:`NO_CANDIDATE_LEFT` when nothing does).
        rules : tuple of str
            The rules that blocked every offer (empty when none did).

        Raises
        ------
        UnknownIdError
            For a client the fitted Book does not hold.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender(policy=cs.rules.route_sales()).fit(cs.datasets.demo(), "2025-06-30")
        >>> rec.no_offer_reason("C0003")
        ('the client is marked do-not-contact', ('do_not_contact',))
        >>> complaint = {"client_id": ["C0001"], "date": ["2025-06-30"],
        ...              "type": ["complaint_opened"]}
        >>> rec.no_offer_reason("C0001", events=complaint)[1]
        ('open_complaint',)
        """
        check_fitted(self, "scorer_")
        self._check_whole_book("no_offer_reason")
        client = self.book_.client_ids.coerce(client)
        row = self.book_.client_ids.index_of(client)
        if row < 0:
            raise UnknownIdError(
                f"Client {spelled(client)} is not in the book this model was fitted on."
            )
        if not self.eligible_[row]:
            return (f"the client holds nothing at {self.as_of_.date()}", ())
        prepared = self._one_client() if events is not None else "fitted"
        fresh = (
            plain_events(events, client, self.book_, self.as_of_)
            if isinstance(prepared, OneClient)
            else None
        )
        found = None
        if isinstance(prepared, OneClient) and fresh is not None:
            # the other rules' fitted blocks, and the event rules' on stored and new events
            pairs = prepared.whole.of_client(row) + whole_pairs(prepared.blocks(row, fresh))
            found = block_reason(pairs)
        elif self.suppression_ is not None:
            found = block_reason(self._whole_blocks().of_client(row))
        if found is not None:
            return found
        reason = np.array([NO_CANDIDATE_LEFT], dtype=object)
        rules = np.empty(1, dtype=object)
        rules[0] = ()
        self._explain_not_worth(np.array([row], dtype=np.int64), reason, rules)
        return (str(reason[0]), tuple(rules[0]))

    def records(
        self, offers: pd.DataFrame | None = None, *, settings: RecordSettings | None = None
    ) -> pd.DataFrame:
        """Return the offers as CRM next-best-action records (see :mod:`crosssell.records`).

        The same record the command line writes and the HTTP service answers: a stable ``id``
        (``"<model_id>:<client_id>:<product_id>:<valid_from>"``), ``name``, ``description``,
        validity, button labels in a language, ``action_reference`` and ``model_id``, then
        the offer's own columns at full precision.

        Parameters
        ----------
        offers : DataFrame, optional
            What :meth:`recommend` returned; computed for every client when not given.
        settings : RecordSettings, optional
            Validity, labels, language and ``action_reference``.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
        >>> r = rec.records(settings=cs.RecordSettings(language="de"))
        >>> r.loc[0, ["id", "accept_label", "valid_until"]].tolist()
        ['unsaved:C0001:CRM-3:2025-06-30', 'Interessiert', '2025-07-30']
        """
        check_fitted(self, "scorer_")
        if offers is None:
            offers = self.recommend()
        return offer_records(
            offers,
            as_of=self.as_of_,
            model_id=self.model_id_,
            names=product_names(self),
            settings=settings,
        )

    def _explain_not_worth(
        self,
        without: npt.NDArray[np.int64],
        reason: npt.NDArray[np.object_],
        rules: npt.NDArray[np.object_],
    ) -> None:
        """Name the not-worth threshold for clients whose every candidate fell under it."""
        if self.not_worth_ is None:
            return
        open_ = np.flatnonzero(np.array([r == () for r in rules], dtype=bool))
        floor = self.not_worth_
        text = not_worth_reason(floor.min_expected_value, floor.min_propensity, floor.contact_cost)
        for i in range(0, open_.shape[0], self.batch_size):
            part = open_[i : i + self.batch_size]
            priority = self._priority_chunk(without[part], not_worth=False).priority
            weak = part[np.isfinite(priority).any(axis=1)]
            reason[weak] = text
            rules[weak] = [(floor.name,)] * weak.shape[0]


_OFFER_TYPES = WordTable.of(["cross_sell", "upsell"])


_ONE_CLIENT_LOCK = threading.Lock()


def _stack(parts: list[pd.DataFrame], pool: ThreadPoolExecutor) -> pd.DataFrame:
    """Return ``pd.concat(parts, ignore_index=True)``, its copies made on the pool's threads.

    Stacking the blocks' offers is mostly writing them into fresh memory (7.5M offers of the
    1M-client benchmark book: 0.6 s on one core). Numeric columns are allocated whole and each
    block copies its rows in on a thread; text, evidence and other extension columns are joined
    as their arrays' chunks (Arrow's, without a copy); a column whose type differs between
    blocks is left to pandas.
    """
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out: dict[str, Any] = {}
    copied: list[str] = []
    dtypes = [p.dtypes for p in parts]
    for column in parts[0].columns:
        name = str(column)
        dtype = dtypes[0][name]
        if any(d[name] != dtype for d in dtypes):
            out[name] = pd.concat([p[name] for p in parts], ignore_index=True).array
        elif isinstance(dtype, np.dtype) and dtype.kind != "O":
            out[name] = np.empty(int(ends[-1]), dtype=dtype)
            copied.append(name)
        else:
            arrays = [p[name].array for p in parts]
            out[name] = type(arrays[0])._concat_same_type(arrays)

    def copy_in(i: int) -> None:
        for name in copied:
            np.copyto(out[name][starts[i] : ends[i]], parts[i][name].to_numpy())

    list(pool.map(copy_in, range(len(parts))))
    return pd.DataFrame(out, copy=False)


def _offer_types(upsell: npt.NDArray[np.bool_]) -> Any:
    """Return the offer_type column, built by Arrow (no Python string per offer)."""
    if upsell.shape[0] < 64:
        return np.where(upsell, "upsell", "cross_sell")
    return pd.array(_OFFER_TYPES.take(upsell.view(np.int8), large=True), dtype="str")


def _with_client(frame: pd.DataFrame | None, client: Any) -> pd.DataFrame | None:
    """Fill the client column of one client's fresh rows when the caller left it out."""
    if frame is None or Columns.client in frame.columns:
        return frame
    return frame.assign(**{Columns.client: [client] * len(frame)})


def _as_frame(data: Any) -> pd.DataFrame | None:
    """Accept a DataFrame, a list of records or a dict of columns for fresh rows."""
    if data is None or isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    return pd.DataFrame(list(data))


def _arrow_ids(ids: pd.Index) -> pa.Array:
    """Product ids as an Arrow array, for the evidence column (text when Arrow cannot type them)."""
    try:
        return pa.array(ids.to_numpy() if ids.dtype != object else ids.tolist())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(ids.astype(str).tolist(), type=pa.string())


def _offerable(rows: npt.NDArray[np.int64], view: _View) -> npt.NDArray[np.int64]:
    """Drop clients for whom the policy blocks every offer: scoring them would be wasted."""
    return rows[~view.offers.all_rows[rows]]


def _unavailable_detail(products: pd.DataFrame, col: int, as_of: pd.Timestamp) -> str:
    """Why product ``col`` is outside its availability window at ``as_of``, as a clause."""
    start = products[Columns.available_from].iloc[col]
    if pd.notna(start) and as_of < start:
        return f"it is not available until {_when(start)}"
    return f"it was withdrawn on {_when(products[Columns.available_to].iloc[col])}"


def _when(t: pd.Timestamp) -> str:
    return str(t.date()) if t == t.normalize() else str(t)


def _eligible(book: Book, as_of: pd.Timestamp) -> npt.NDArray[np.bool_]:
    """Clients to recommend to at ``as_of``: every client of the book who is a client by then.

    A client whose first contract starts after ``as_of`` was not a client yet; one with no
    contract at all comes from the clients table and is a cold start.
    """
    arr = book.contract_arrays
    n = len(book.client_ids)
    has_history = np.bincount(arr.client[arr.start <= as_of.value], minlength=n) > 0
    has_any = np.bincount(arr.client, minlength=n) > 0
    return np.asarray(has_history | ~has_any)


@functools.cache
def _thread_controller() -> ThreadpoolController:
    """One controller per process: inspecting the loaded thread pools costs milliseconds."""
    return ThreadpoolController()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Limit BLAS and OpenMP pools to one thread, and restore them (a few microseconds).

    Only pools running more than one thread are touched, through threadpoolctl's per-library
    controllers, which skips the bookkeeping of a full ``limit`` context on every call.
    """
    changed = []
    for lib in _thread_controller().lib_controllers:
        threads = lib.num_threads
        if threads > 1:
            lib.set_num_threads(1)
            changed.append((lib, threads))
    try:
        yield
    finally:
        for lib, threads in changed:
            lib.set_num_threads(threads)


def _jobs(n_jobs: int) -> int:
    """Return the threads for ``n_jobs`` (scikit-learn convention: -1 is every usable core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(cores or 1, 1)
    return n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)


def _python(value: Any) -> Any:
    """Plain Python scalar from a numpy one (ids keep their kind: int stays int)."""
    return value.item() if isinstance(value, np.generic) else value


def _offers_from_columns(
    cols: dict[str, Any], product_objects: npt.NDArray[np.object_], client: Any
) -> list[Offer]:
    """Offer objects from one client's selected columns, without building a DataFrame."""
    products = product_objects[cols[Columns.product]].tolist()
    reasons = cols[Columns.reason]
    if reasons is None:
        reasons = [None] * len(products)
    elif isinstance(reasons, pa.Array):
        reasons = reasons.to_pylist()
    ev: _Evidence | None = cols[Columns.evidence]
    evidence: list[Any] = [None] * len(products)
    if ev is not None:
        weights = np.round(ev.weights.astype(np.float64), 4).tolist()
        evidence = [
            tuple((product_objects[j], w) for j, w in zip(row, ws, strict=True) if j >= 0)
            for row, ws in zip(ev.products.tolist(), weights, strict=True)
        ]
    return [
        Offer(
            client_id=client,
            product_id=products[i],
            offer_type=str(cols[Columns.offer_type][i]),  # type: ignore[arg-type]
            score=float(cols[Columns.score][i]),
            propensity=float(cols[Columns.propensity][i]),
            value=float(cols[Columns.value][i]),
            expected_value=float(cols[Columns.expected_value][i]),
            priority=float(cols[Columns.priority][i]),
            rank=int(cols[Columns.rank][i]),
            reason=reasons[i],
            evidence=evidence[i],
            cold_start=bool(cols[Columns.cold_start][i]),
        )
        for i in range(len(products))
    ]


def _offers_from_frame(frame: pd.DataFrame) -> list[Offer]:
    """Offer objects from rows of an offers frame (evidence as pairs, a missing reason None)."""
    out = []
    for record in frame.to_dict(orient="records"):
        plain = {str(k): _python(v) for k, v in record.items()}
        reason = plain[Columns.reason]
        plain[Columns.reason] = reason if isinstance(reason, str) else None
        evidence = plain[Columns.evidence]
        plain[Columns.evidence] = (
            None if evidence is None else tuple((e[Columns.product], e["weight"]) for e in evidence)
        )
        out.append(Offer(**plain))
    return out
