"""Ranker: a learned, calibrated second stage over the base scorers.

Base scorers propose candidates; gradient-boosted trees order them from point-in-time features of
each (client, product) pair and say how likely the client is to take each one within the horizon.
"""

from __future__ import annotations

import numbers
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._calibrators import IsotonicCalibrator
from crosssell._codec import (
    StateArray,
    StateBooster,
    StateCalibrator,
    StateDates,
    StateDuration,
    StateNames,
    StateRebuilt,
    StateScalar,
    StateScorers,
    StateSparse,
    StateSpec,
    StateTable,
    register,
)
from crosssell._params import Interval, Options, Satisfies, validate_params
from crosssell._sparse import take_rows
from crosssell._topk import cells, mark_top_k, top_k
from crosssell.columns import Columns
from crosssell.exceptions import ArtifactError
from crosssell.scorers._common import RANDOM_STATE
from crosssell.scorers._features import (
    EVENT_STATE,
    FeatureContext,
    FeatureFunction,
    build_context,
    context_for_holdings,
    event_state,
    pair_features,
    segment_popularity_of,
    segment_rows,
    with_event_state,
)
from crosssell.scorers._lightgbm import Forest
from crosssell.scorers._response_feature import ResponseFeature
from crosssell.scorers.base import (
    ExplainKind,
    FloatArray,
    IntArray,
    Scorer,
    check_random_state,
)
from crosssell.scorers.cooccurrence import CoOccurrence
from crosssell.scorers.neighbours import ItemKNN
from crosssell.scorers.popularity import Popularity
from crosssell.scorers.response import Response

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = ["Ranker"]

Model = Literal["lightgbm", "hgb"]
BaseName = Literal["popularity", "itemknn", "cooccurrence", "als"]
_BASES: tuple[str, ...] = ("popularity", "itemknn", "cooccurrence", "als")
_BLOCK = 2048
#: ALS iterations of a fit warm-started from the fit at the date before (see Ranker._als_chain):
#: on the 200,000-client benchmark book, recall@10 of the next window's additions at two dates
#: was 0.106 / 0.104 after two iterations as after three, 0.103 / 0.101 after one, 0.099 / 0.097
#: for a cold fit
_WARM_ITERATIONS = 2
#: Past this many candidate rows, the held-out window keeps every candidate of the clients who
#: took something (the NDCG check ranks them) and a weighted sample of the other clients'
#: (the calibration reads it by weight): a wide catalogue's window would otherwise cost more to
#: score than all the training (1.5M rows on Online Retail II, 2.2M at 200k x 1k)
_HELD_OUT_ROWS = 500_000
FloatArray64 = npt.NDArray[np.float64]
# the last client each thread scored alone, with its candidates' features (see _score_rows)
_LAST_CLIENT = threading.local()
_PROB_FLOOR = 1e-6
#: Largest (segments x products) table of popularity's probabilities kept (32 MB of float64)
_POPULARITY_TABLE_CELLS = 4_000_000
_GUARD_K = 10
# held-out rows that decide when boosting stops (early_stopping)
_STOP_ROWS = 200_000
# features that speak of the client's products of the offer's family
_FAMILY_FEATURES = ("family_held", "holds_lower_tier", "tier_gap", "days_since_family_start")
# a sliver of the raw model output breaks the ties of the isotonic steps by the model's order
# while moving a probability by at most this much
_TIE_WEIGHT = 1e-4


def _valid_leaves(value: Any) -> bool:
    """Whether ``value`` is a tree size of 2 leaves or more, or a non-empty sequence of them."""
    sizes = (value,) if isinstance(value, numbers.Integral) else value
    if isinstance(sizes, str) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        return False
    return all(
        not isinstance(n, bool) and isinstance(n, numbers.Integral) and int(n) >= 2 for n in sizes
    )


@register("scorer")
class Ranker(Scorer):
    """A learned second stage: gradient-boosted trees over candidates of the base scorers.

    For each client, the candidates are the union of the top ``n_candidates`` products of each
    base scorer among those it scores above zero (a zero is no evidence: a similarity with
    nothing the client holds), or every product when the catalogue has at most
    ``score_all_below`` products,
    plus every product available at the date that nobody holds yet (a launch: no base scorer
    can rank it, so it is scored from its attributes, its age and its family's popularity in
    the client's segment, whatever the catalogue's size). Each candidate pair gets
    point-in-time features (see :class:`~crosssell.scorers.FeatureContext`: base scores and
    ranks, popularity overall, in the client's segment and its trend, product and client
    attributes, client x family holdings and tiers, past offers and their outcomes, stated
    needs) and the trees give the probability that the client takes the product within
    ``horizon``. Products that are not candidates score 0, below every candidate.

    Training happens inside :meth:`fit`, honestly: for windows ending at ``as_of``,
    ``as_of - horizon``, ... (``windows`` of them, as far as the history allows), features are
    computed at the start of the window and the labels are the products newly taken within it.
    Offers answered within a window are labelled rows too, candidates or not: an
    ``offer_accepted`` event is a positive and an ``offer_declined`` event a negative for its
    (client, product), with features at the window's start.
    The most recent window is held out to fit an isotonic calibration of the trees' output.
    On that window the trees (trained on the older ones) must also rank each client's
    candidates better than the segment's popularity does (NDCG@10); when they do not, the
    ranker orders by segment popularity, calibrated on the same window, and says so in
    ``uses_model_``. Otherwise the trees are refitted on every window (``refit=True``) so that
    the model predicting at ``as_of`` has seen the most recent behaviour. Nothing dated after
    ``as_of`` is read.

    In a :class:`~crosssell.Recommender`, offers are explained by :meth:`reasons`
    (``explain_kind = "contributions"``): the features that raised each probability, in words,
    and the held products they rest on as evidence.

    Parameters
    ----------
    base : sequence of {"popularity", "itemknn", "cooccurrence", "als"}
        Default ``("popularity", "itemknn", "cooccurrence")``. Base scorers proposing
        candidates and giving score and rank features. Popularity is by segment when the
        clients have one.
    n_candidates : int, default 50
        Products kept per client from each base scorer, among those it scores above zero.
    score_all_below : int, default 200
        Catalogues with at most this many products have every product scored.
    horizon : str or timedelta, default "90D"
        Length of a label window: the propensity is that of taking the product within it.
        Shortened to fit the history when even one window does not.
    windows : int, default 3
        Training windows, most recent first, as many as the history allows.
    model : {"lightgbm", "hgb"}, default "lightgbm"
        LightGBM's ``LGBMClassifier`` or scikit-learn's ``HistGradientBoostingClassifier``.
    n_estimators : int, default 200
        Boosting rounds.
    learning_rate : float, default 0.05
        Shrinkage of each tree.
    num_leaves : int or sequence of int, default 31
        Leaves per tree (LightGBM's ``num_leaves``, scikit-learn's ``max_leaf_nodes``). Given
        several sizes, trees of each size learn from the older windows and the size that ranks
        the held-out window's candidates best (NDCG@10; a tie goes to fewer leaves) is the one
        refitted and kept, in ``num_leaves_``, for one more boosting per extra size. Measured
        with ``benchmarks/quality.py``, comparing (15, 31) was no default to keep: it chose 15
        leaves on most fits of the Czech bank's and the demo books (a few hundred products
        taken per window) and 31 on telco's, and NDCG@10 on the later test windows rose on the
        Czech bank's (0.8294 to 0.8340 over seeds 0-2) and on the demo book with a 180-day
        horizon (0.3887 to 0.4032) but fell on the demo book with the default 90 days (0.4057
        to 0.3873): the held-out window does not always tell. Try it on your own backtest.
    early_stopping : int or None, default None
        LightGBM only: stop adding trees when the log-loss on (a sample of) the held-out
        window has not improved for this many rounds, and refit with that many trees. Fewer
        trees score faster; measured with ``benchmarks/quality.py``, 20 rounds kept the
        quality of narrow books (Czech bank +0.002, telco +0.002 NDCG@10, demo -0.003) but cut
        Online Retail II from 0.0955 to 0.0707: the log-loss stops improving long before the
        ranking does on a wide catalogue. Off by default.
    max_train_clients : int, default 20000
        Clients sampled per window for training (all when fewer).
    negatives_per_positive : float or None, default 20
        Candidates not taken are most of the rows (99.9% on a 1,000-product book): in the
        windows the trees learn from, they are sampled down to about this many per product
        taken, each kept one weighted by the inverse of its chance of being kept, so that the
        trees still estimate the same probabilities from a fraction of the rows. Answered
        offers and the products taken are always kept. The held-out window used for the
        calibration and the popularity check keeps every candidate of the clients who took
        something (the check ranks them) and, past 500,000 candidate rows (a wide catalogue),
        a sample of the other clients' candidates, weighted the same way, so that its cost
        stays bounded (Online Retail II's window: 1.5M rows). None keeps every row of the
        older windows.
    features : sequence of (str, callable), default ()
        User features: ``f(context, clients, products) -> array of float``, one value per pair,
        read from the :class:`~crosssell.scorers.FeatureContext` only (so at the
        context's date, never later).
    response : bool, Response or None, default None
        Give the trees the response model's chance that the offer is accepted, point in time:
        at each window's start (and at ``as_of`` for prediction) a
        :class:`~crosssell.scorers.Response` (True: the default one; or a ``Response`` whose
        parameters are used) is fitted on the offers answered on or before that date only,
        and two features are added: ``response_acceptance`` (its probability, pooled by
        product, family and segment and moved by the client's attributes) and
        ``response_answers`` (the answers in the client's segment it rests on). None or False
        adds nothing.
    refit : bool, default True
        Refit the trees on every window after calibrating on the held-out most recent one.
    random_state : int, Generator or None, default 0
        Seeds client sampling and the trees.
    num_threads : int, default 1
        Threads for the trees (0: every core). With LightGBM the trees are the same on any
        number of threads: on more than one, each thread builds whole features' histograms
        (column-wise), so no sum depends on how rows are split among threads (1.1 to 1.3
        times faster on 2 idle cores at 200k clients). On a machine other work shares,
        boosting on several threads costs two to three times more (its threads wait on one
        another), hence 1. The base scorers fit on every core, as ALS and item-kNN do on their
        own: their fitted state does not depend on the number of threads either.

    Attributes
    ----------
    bases_ : list of Scorer
        The base scorers fitted at ``as_of``.
    feature_names_ : list of str
        Feature columns, in the model's order.
    model_ : object or None
        The fitted classifier (None when the history held no positive label, or when the trees
        lost to popularity: scores then are the segment popularity). A loaded model holds the
        same LightGBM trees, rebuilt from their text model.
    calibrator_ : IsotonicCalibrator or None
        Maps the trees' output (or, when ``uses_model_`` is False, the segment popularity) to a
        probability.
    num_leaves_ : int
        Leaves per tree of the kept trees (see ``num_leaves``).
    uses_model_ : bool
        False when the trees ranked the held-out window no better than segment popularity and
        the ranker orders by popularity instead.
    holdout_ndcg_ : dict
        ``{"trees": ..., "popularity": ...}``: NDCG@10 on the held-out window's candidates
        (NaN when the comparison could not be made, e.g. no positive in that window); read from
        the held-out row of ``training_``.
    horizon_ : pandas.Timedelta
        The label window used.
    windows_ : list of pandas.Timestamp
        End of each training window, most recent first.
    training_ : pandas.DataFrame
        Per window: its dates, rows, positives and ``offer_outcomes`` (rows that are answered
        offers).

    Examples
    --------
    >>> import crosssell as cs
    >>> book = cs.datasets.demo()
    >>> ranker = cs.scorers.Ranker(n_estimators=50)
    >>> rec = cs.Recommender(scorer=ranker, k=3).fit(book, "2025-06-30")
    >>> offers = rec.recommend(["C0001"])
    >>> bool(offers["propensity"].between(0, 1).all())
    True
    """

    explain_kind: ClassVar[ExplainKind] = "contributions"
    outputs_probability: ClassVar[bool] = True
    # saved as LightGBM's text model and plain values; the context is rebuilt from the Book
    _state_schema: ClassVar[dict[str, StateSpec]] = {
        "bases_": StateScorers(),
        "feature_names_": StateNames(dim="n_features"),
        "model_": StateBooster(features="n_features", nullable=True),
        "calibrator_": StateCalibrator(nullable=True),
        "horizon_": StateDuration(),
        "windows_": StateDates(),
        "training_": StateTable(
            columns=(
                Columns.cutoff,
                Columns.horizon_end,
                Columns.rows,
                "positives",
                "offer_outcomes",
                "ndcg_trees",
                "ndcg_popularity",
            )
        ),
        "uses_model_": StateScalar(type="bool"),
        "num_leaves_": StateScalar(type="int"),
        "context_": StateRebuilt(),
    }
    # a scoring-only save leaves the Book's events out, so it keeps what the context took from them
    _scoring_schema: ClassVar[dict[str, StateSpec]] = {
        name: StateArray(dtype="float64", shape=dims)
        if kind == "array"
        else StateSparse(dtype="float64", shape=(dims[0], dims[1]))
        for name, (kind, dims) in EVENT_STATE.items()
    }

    bases_: list[Scorer]
    feature_names_: list[str]
    model_: Any
    calibrator_: Any
    horizon_: pd.Timedelta
    windows_: list[pd.Timestamp]
    training_: pd.DataFrame
    uses_model_: bool
    num_leaves_: int
    _leaf_cache: tuple[Any, npt.NDArray[np.float64], sp.csr_matrix] | None
    _forest_cache: tuple[Any, Forest | None] | None
    _popularity_cache: tuple[tuple[Any, ...], npt.NDArray[np.float64]] | None
    _names_cache: tuple[Book, npt.NDArray[np.object_]] | None
    _response_feature: ResponseFeature | None
    #: holdings at each training date, built once for ALS and the other bases of that date
    _matrices: dict[pd.Timestamp, ClientProductMatrix]
    context_: FeatureContext
    _n_trees: int
    empty_columns_: npt.NDArray[np.bool_]

    def __init__(
        self,
        *,
        base: Sequence[BaseName] = ("popularity", "itemknn", "cooccurrence"),
        n_candidates: int = 50,
        score_all_below: int = 200,
        horizon: Any = "90D",
        windows: int = 3,
        model: Model = "lightgbm",
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int | Sequence[int] = 31,
        early_stopping: int | None = None,
        max_train_clients: int = 20000,
        negatives_per_positive: float | None = 20,
        features: Sequence[tuple[str, FeatureFunction]] = (),
        response: bool | Response | None = None,
        refit: bool = True,
        random_state: Any = 0,
        num_threads: int = 1,
    ) -> None:
        self.base = base
        self.n_candidates = n_candidates
        self.score_all_below = score_all_below
        self.horizon = horizon
        self.windows = windows
        self.model = model
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.early_stopping = early_stopping
        self.max_train_clients = max_train_clients
        self.negatives_per_positive = negatives_per_positive
        self.features = features
        self.response = response
        self.refit = refit
        self.random_state = random_state
        self.num_threads = num_threads

    # ------------------------------------------------------------------ parameters
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "base": [
            Satisfies(
                lambda v: not isinstance(v, str) and len(v) > 0 and all(b in _BASES for b in v),
                f"a non-empty sequence of names among {{{', '.join(map(repr, _BASES))}}}",
                ("itemknn", (), ("nope",)),
            )
        ],
        "n_candidates": [Interval(numbers.Integral, 1, None, closed="left")],
        "score_all_below": [Interval(numbers.Integral, 0, None, closed="left")],
        "horizon": [
            Satisfies(
                lambda v: pd.Timedelta(v) > pd.Timedelta(0),
                "a positive duration such as '90D'",
                ("-5D", "soon"),
            )
        ],
        "windows": [Interval(numbers.Integral, 1, None, closed="left")],
        "model": [Options({"lightgbm", "hgb"})],
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, 1, closed="right")],
        "num_leaves": [
            Satisfies(
                _valid_leaves,
                "an int of at least 2 or a non-empty sequence of them",
                (1, (), (7, 1)),
            ),
        ],
        "early_stopping": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_train_clients": [Interval(numbers.Integral, 1, None, closed="left")],
        "negatives_per_positive": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "features": [
            Satisfies(
                lambda v: all(
                    isinstance(item, tuple) and len(item) == 2 and callable(item[1]) for item in v
                ),
                "a sequence of (name, function) pairs",
                ((("f", 3),), 3),
            )
        ],
        "response": [
            "boolean",
            Satisfies(lambda v: isinstance(v, Response), "a Response", ("yes", 3)),
            None,
        ],
        "refit": ["boolean"],
        "random_state": RANDOM_STATE,
        "num_threads": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    # ------------------------------------------------------------------ fitting
    def _fit(self, x: sp.csr_matrix, matrix: ClientProductMatrix, book: Book | None) -> None:
        if book is None:
            raise ValueError(
                "Ranker reads the whole Book (events, history): call fit(matrix, book)."
            )
        if x.shape != (len(book.client_ids), len(book.product_ids)):
            raise ValueError(
                "Ranker expects the matrix built from the Book it is given "
                f"({len(book.client_ids)} x {len(book.product_ids)}); got {x.shape}."
            )
        rng = check_random_state(self.random_state, owner="Ranker")
        self._n_trees = int(self.n_estimators)
        as_of = pd.Timestamp(matrix.as_of)
        first = book.dates[0]
        horizon = pd.Timedelta(self.horizon)
        if as_of - 2 * horizon <= first:
            # too short a history for even one window: two halves of what there is
            horizon = max((as_of - first) / 2, pd.Timedelta(days=1)).floor("D")
        ends = [as_of - w * horizon for w in range(int(self.windows))]
        ends = [e for e in ends if e - horizon > first] or [as_of]
        self.horizon_ = horizon
        self.windows_ = ends
        seed = int(rng.integers(2**31 - 1))
        # where a fit's time goes, for benchmarks/recommend.py (seconds per step)
        clock = time.perf_counter()
        self._fit_seconds: dict[str, float] = {}
        self._response_feature = self._new_response_feature()

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            self._fit_seconds[step] = self._fit_seconds.get(step, 0.0) + now - clock
            clock = now

        self._als_fits = self._als_chain(book, [e - horizon for e in ends] + [as_of])
        lap("ALS at each date")

        blocks = self._windows(book, ends, horizon, seed)
        self.uses_model_ = True
        lap("windows: bases, candidates, features")

        # the largest size until the held-out window chooses among several (_choose_leaves)
        self.num_leaves_ = self._leaf_sizes()[-1]

        def prediction_state() -> None:
            start = time.perf_counter()
            self._prediction_state(book, as_of, horizon)
            self._fit_seconds["prediction state"] = time.perf_counter() - start

        y_all = np.concatenate([b.y for b in blocks]) if blocks else np.zeros(0)
        if y_all.sum() == 0 or y_all.sum() == y_all.size:
            prediction_state()
            self.model_ = None
            self.calibrator_ = None
            return
        # when sizes are compared, the prediction state is built while the refit grows
        first_model, every_model = self._calibrate(blocks, rng, seed, prediction_state)
        lap("trees, calibration, prediction state")
        if not self.uses_model_:
            self.model_ = None
            return
        if self.refit or self.calibrator_ is None:
            self.model_ = every_model
        else:
            self.model_ = first_model

    def _prediction_state(self, book: Book, as_of: pd.Timestamp, horizon: pd.Timedelta) -> None:
        """Build the feature snapshot and fit the base scorers at ``as_of``, which scoring reads."""
        self.context_ = build_context(book, as_of, horizon)
        self.bases_ = self._fit_bases(book, as_of)
        self._als_fits = {}
        self._matrices = {}
        if self._response_feature is not None:
            self._response_feature.keep_only(self.context_)

    def _windows(
        self, book: Book, ends: list[pd.Timestamp], horizon: pd.Timedelta, seed: int
    ) -> list[_Rows]:
        """Training rows of each window, most recent first; their summary as ``training_``.

        The windows are built side by side on every core (one thread each, the largest first),
        each from random streams of its own: a window draws the same clients and rows whatever
        the others draw and whichever thread builds it. The most recent window is held out
        whole when there is another to learn from.
        """

        def build(i: int) -> _Rows:
            end = ends[i]
            return self._window_rows(
                book,
                end - horizon,
                end,
                np.random.default_rng([seed, 2, i]),
                # the held-out window's thinning
                np.random.default_rng([seed, 1]),
                sample=i > 0 or len(ends) == 1,
            )

        workers = min(len(ends), os.cpu_count() or 1)
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                blocks = list(pool.map(build, range(len(ends))))
        else:
            blocks = [build(i) for i in range(len(ends))]
        summary = [
            {
                Columns.cutoff: end - horizon,
                Columns.horizon_end: end,
                Columns.rows: len(rows_w.y),
                "positives": int(rows_w.y.sum()),
                "offer_outcomes": int(rows_w.outcome.sum()),
            }
            for end, rows_w in zip(ends, blocks, strict=True)
        ]
        self.training_ = pd.DataFrame(summary).assign(ndcg_trees=np.nan, ndcg_popularity=np.nan)
        return blocks

    def _new_response_feature(self) -> ResponseFeature | None:
        if self.response is None or self.response is False:
            return None
        return ResponseFeature(self.response if isinstance(self.response, Response) else None)

    def _extra_features(self) -> list[tuple[str, FeatureFunction]]:
        """Return the user features, then the response model's when ``response`` is on."""
        extra = list(self.features)
        if self.response is None or self.response is False:
            return extra
        fn = getattr(self, "_response_feature", None)
        if fn is None:
            # a loaded model: the fit at as_of is made again from the saved Book on first use
            fn = self._response_feature = self._new_response_feature()
        return extra + (fn.columns() if fn is not None else [])

    def _calibrate(
        self,
        blocks: list[_Rows],
        rng: np.random.Generator,
        seed: int,
        meanwhile: Callable[[], None] = lambda: None,
    ) -> tuple[Any, Any]:
        """Train on older windows, calibrate on the held-out one, and guard against popularity.

        Returns the trees trained without the held-out rows (None when those hold a single
        class) and, when ``refit`` asks for them or there is no calibration, the trees trained
        on every window (their negatives sampled), None otherwise. When the first rank the
        held-out window no better than the segment's popularity (NDCG@10 over each client's
        candidates), ``uses_model_`` turns False, the calibration is that of the popularity on
        the same rows and the second are None. ``meanwhile`` runs once, while the refit grows
        when it grows on one core of several.
        """
        cal, fit_rows = self._held_out(blocks, rng)
        single_class = not 0 < fit_rows.y.sum() < fit_rows.y.size
        sizes = self._leaf_sizes()
        stop_on = None
        if not single_class and self.early_stopping is not None and self.model == "lightgbm":
            stop_on = self._stop_rows(cal, rng)
        every: _Rows | None = None
        if self.refit or single_class:
            # drawn after the split's draws, whichever order the trees are then trained in
            every = _Rows.concat(
                [self._sample(blocks[0], rng), *blocks[1:]] if len(blocks) >= 2 else blocks
            )
        if single_class:
            # nothing to compare sizes on: the largest (num_leaves_ as fit set it)
            self.calibrator_ = None
            assert every is not None
            meanwhile()
            return None, self._train(every.x, every.y, every.w, seed, leaves=sizes[-1])
        # the probability is that of taking a candidate: answered offers, rows of their own in
        # training, would count those pairs twice here
        cal_rows = cal.take(~cal.outcome) if cal.y[~cal.outcome].any() else cal
        every_model: Any = None
        if len(sizes) == 1 and every is not None and stop_on is None and self._side_by_side():
            # two single-threaded boostings side by side, each on its own core: the same trees
            # as one after the other (neither draws from the other's stream), in the time of
            # the longer. Nothing else runs LightGBM meanwhile: a prediction on every core
            # would change the thread count the other boosting reads
            with ThreadPoolExecutor(max_workers=1) as pool:
                later = pool.submit(self._train, every.x, every.y, every.w, seed, leaves=sizes[0])
                first_model = self._train(fit_rows.x, fit_rows.y, fit_rows.w, seed, leaves=sizes[0])
                every_model = later.result()
            # every core: a prediction does not depend on the threads that make it
            raw_cal = self._raw(first_model, cal_rows.x, threads=0)
        else:
            first_model, raw_cal = self._choose_leaves(fit_rows, cal_rows, sizes, seed, stop_on)
        # after early stopping, as many trees as the held-out window asked for
        self._n_trees = int(getattr(first_model, "best_iteration_", 0) or self.n_estimators)
        with ThreadPoolExecutor(max_workers=1) as pool:
            growing: Future[Any] | None = None
            if every is not None and every_model is None and self._side_by_side():
                # the refit grows on one core while the other calibrates, checks the trees
                # against popularity and builds what prediction reads (none runs LightGBM); it
                # is wasted only when popularity wins
                growing = pool.submit(
                    self._train, every.x, every.y, every.w, seed, leaves=self.num_leaves_
                )
            meanwhile()
            self.calibrator_ = IsotonicCalibrator().fit(
                raw_cal, cal_rows.y, sample_weight=cal_rows.w
            )
            trees_win = self._trees_beat_popularity(raw_cal, cal_rows)
            if growing is not None:
                every_model = growing.result()
        if not trees_win:
            self.uses_model_ = False
            self.calibrator_ = IsotonicCalibrator().fit(
                self._popularity_raw(cal_rows.x), cal_rows.y, sample_weight=cal_rows.w
            )
            return first_model, None
        if every is not None and every_model is None:
            every_model = self._train(every.x, every.y, every.w, seed, leaves=self.num_leaves_)
        return first_model, every_model

    def _held_out(self, blocks: list[_Rows], rng: np.random.Generator) -> tuple[_Rows, _Rows]:
        """Split the windows' rows into the held-out ones and those the first trees learn from."""
        if len(blocks) >= 2 and blocks[0].y.sum() > 0:
            return blocks[0], _Rows.concat(blocks[1:])
        if len(blocks) >= 2:
            # no positive in the most recent window: nothing to calibrate on there
            return blocks[0], _Rows.concat([self._sample(blocks[0], rng), *blocks[1:]])
        # one window (its negatives sampled): hold out a random fifth of its clients, weighted
        # rows and all, for the calibration
        clients = np.unique(blocks[0].client)
        held = np.isin(blocks[0].client, clients[rng.random(clients.size) < 0.2])
        return blocks[0].take(held), blocks[0].take(~held)

    @staticmethod
    def _stop_rows(cal: _Rows, rng: np.random.Generator) -> _Rows | None:
        """Return a sample of the held-out candidate rows: it tells when more trees stop helping."""
        pick = np.flatnonzero(~cal.outcome)
        if pick.size > _STOP_ROWS:
            pick = np.sort(rng.choice(pick, _STOP_ROWS, replace=False))
        if 0 < cal.y[pick].sum() < pick.size:
            return cal.take(np.isin(np.arange(cal.y.size), pick))
        return None

    def _leaf_sizes(self) -> tuple[int, ...]:
        """Return the tree sizes ``num_leaves`` asks to compare, fewest leaves first."""
        v: Any = self.num_leaves
        return (int(v),) if isinstance(v, numbers.Integral) else tuple(sorted({int(n) for n in v}))

    def _choose_leaves(
        self,
        fit_rows: _Rows,
        held_out: _Rows,
        sizes: tuple[int, ...],
        seed: int,
        stop_on: _Rows | None,
    ) -> tuple[Any, npt.NDArray[np.float64]]:
        """Train trees of each size on the older windows; keep those ranking ``held_out`` best.

        Returns the kept trees and their output on the held-out rows; sets ``num_leaves_``
        (the largest size when the held-out window has no positive to rank).
        On more than one core and one thread per boosting, the sizes are trained side by side
        (each on its own stream: the same trees as one after the other).
        """

        def train(leaves: int) -> Any:
            return self._train(
                fit_rows.x, fit_rows.y, fit_rows.w, seed, leaves=leaves, stop_on=stop_on
            )

        if len(sizes) > 1 and self._side_by_side():
            with ThreadPoolExecutor(max_workers=2) as pool:
                models = list(pool.map(train, sizes))
        else:
            models = [train(n) for n in sizes]
        best = 0
        if len(models) > 1:
            # NDCG counts only the clients who took something: the sizes are compared on their
            # rows alone (a quarter of a large window's), the kept trees then predict every row
            rows = held_out.take(np.isin(held_out.client, held_out.client[held_out.y > 0]))
            ndcg = np.array(
                [
                    _ndcg_at(self._raw(m, rows.x, threads=0), rows.y, rows.client, _GUARD_K)
                    for m in models
                ]
            )
            # the first of the best (fewest leaves); the largest when nothing could be compared
            best = int(np.argmax(np.nan_to_num(ndcg, nan=-1.0))) if np.isfinite(ndcg).any() else -1
        self.num_leaves_ = sizes[best]
        # every core: a prediction does not depend on the threads that make it
        return models[best], self._raw(models[best], held_out.x, threads=0)

    def _side_by_side(self) -> bool:
        """Whether a fit's boostings may run at once (one thread each, LightGBM)."""
        return self.model == "lightgbm" and int(self.num_threads) == 1 and (os.cpu_count() or 1) > 1

    def _sample(self, rows: _Rows, rng: np.random.Generator) -> _Rows:
        """Candidate rows not taken, sampled to ``negatives_per_positive`` per row taken.

        Kept rows are weighted by the inverse of their chance of being kept, so sums over rows
        (and the trees' estimates) stay unbiased. Answered offers and positives are all kept.
        """
        keep, w = self._sample_mask(rows.y, rows.outcome, rows.w, rng)
        if keep is None:
            return rows
        return _Rows(rows.x[keep], rows.y[keep], rows.client[keep], rows.outcome[keep], w[keep])

    def _sample_mask(
        self,
        y: npt.NDArray[np.float64],
        outcome: npt.NDArray[np.bool_],
        w: npt.NDArray[np.float64],
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.bool_] | None, npt.NDArray[np.float64]]:
        """Rows :meth:`_sample` keeps (None: all, no draw made) and every row's new weight."""
        ratio = self.negatives_per_positive
        negative = (y == 0) & ~outcome
        # rows already kept by an earlier draw (the held-out window's thinning) stand for
        # ``w`` rows each: a negative is kept with a chance in proportion to its weight, so
        # that every kept negative ends with the same weight
        mass = float(w[negative].sum())
        if ratio is None or mass == 0:
            return None, w
        chance = np.minimum(1.0, w * (float(ratio) * max(int((y > 0).sum()), 1) / mass))
        if (chance[negative] >= 1.0).all():
            return None, w
        keep = ~negative | (rng.random(y.size) < chance)
        return keep, np.where(negative, w / chance, w)

    def _als_chain(self, book: Book, dates: list[pd.Timestamp]) -> dict[pd.Timestamp, Scorer]:
        """ALS base scorers at each of ``dates``, fitted from the earliest on, each warm-started.

        The earliest fit runs ALS's full iterations from random factors; each later one starts
        from the factors of the fit before it (data up to an earlier date only, so nothing is
        read ahead of its own date) and runs :data:`_WARM_ITERATIONS` more: the training
        windows and the prediction state cost about as much as two cold fits instead of one
        per date.
        """
        self._matrices = {}
        if "als" not in self.base:
            return {}
        from crosssell.scorers.factorization import ALS, WarmStart

        out: dict[pd.Timestamp, Scorer] = {}
        previous: ALS | None = None
        for at in sorted(set(dates)):
            als = ALS(random_state=0, num_threads=0)
            if previous is not None:
                als._warm_start = WarmStart(  # type: ignore[attr-defined]
                    previous.client_factors_, previous.product_factors_, _WARM_ITERATIONS
                )
            matrix = book.matrix(at)
            # the other base scorers of the same date read the same holdings
            self._matrices[at] = matrix
            out[at] = previous = als.fit(matrix, book)
        return out

    def _fit_bases(self, book: Book, at: pd.Timestamp) -> list[Scorer]:
        """Fit the base scorers on the binary holdings at ``at``."""
        m = getattr(self, "_matrices", {}).pop(at, None)
        if m is None:
            m = book.matrix(at)
        has_segment = (
            Columns.segment in book.client_table.columns
            and book.client_table[Columns.segment].notna().any()
        )
        out: list[Scorer] = []
        for name in self.base:
            if name == "popularity":
                out.append(Popularity(by=Columns.segment if has_segment else None).fit(m, book))
            elif name == "itemknn":
                out.append(ItemKNN(num_threads=0).fit(m, book))
            elif name == "cooccurrence":
                out.append(CoOccurrence().fit(m, book))
            elif at in getattr(self, "_als_fits", {}):
                out.append(self._als_fits[at])
            else:
                from crosssell.scorers.factorization import ALS

                out.append(ALS(random_state=0, num_threads=0).fit(m, book))
        return out

    def _window_rows(
        self,
        book: Book,
        start: pd.Timestamp,
        end: pd.Timestamp,
        rng: np.random.Generator,
        thin_rng: np.random.Generator,
        *,
        sample: bool,
    ) -> _Rows:
        """Features at ``start`` and labels in ``(start, end]`` of sampled clients' candidates.

        The outcomes of offers made within the window follow as labelled rows of their own
        (see :meth:`_outcome_rows`). With ``sample``, each block's negatives are sampled as it
        is built (see :meth:`_sample`), so the whole window never sits in memory.
        """
        ctx = build_context(book, start, self.horizon_)
        bases = self._fit_bases(book, start)
        warm = np.flatnonzero(np.diff(ctx.holdings.indptr) > 0)
        if warm.size > self.max_train_clients:
            warm = np.sort(rng.choice(warm, int(self.max_train_clients), replace=False))
        a = book.contract_arrays
        new = (a.start > start.value) & (a.start <= end.value)
        taken = sp.csr_matrix(
            (
                np.ones(int(new.sum())),
                (a.client[new].astype(np.int64), a.product[new].astype(np.int64)),
            ),
            shape=ctx.holdings.shape,
        )
        taken.sum_duplicates()
        taken.sort_indices()
        parts = []
        thin = 1.0
        for lo in range(0, warm.size, _BLOCK):
            rows = warm[lo : lo + _BLOCK]
            scores, groups = self._base_scores(bases, rows)
            local, clients, products, lead = self._candidates(ctx, scores, rows, groups)
            # a candidate is never held at start, so any new contract in the window is an addition
            y = (ctx.pair(taken, clients, products) > 0).astype(np.float64)
            w = np.ones(y.size)
            if not sample and lo == 0:
                # the window's size, told by its first block's candidates per client
                size = y.size / rows.size * warm.size
                thin = min(1.0, _HELD_OUT_ROWS / size) if size > 0 else 1.0
            keep: npt.NDArray[np.bool_] | None = None
            if not sample and thin < 1.0:
                keep, w = _thin_held_out(local, y, thin, thin_rng)
            elif sample:
                # negatives are sampled before their features are computed: the same rows and
                # weights as sampling the whole block afterwards, at a fraction of the cost
                keep, w = self._sample_mask(y, np.zeros(y.size, dtype=bool), w, rng)
            if keep is not None:
                clients, products, y, w = clients[keep], products[keep], y[keep], w[keep]
                lead = [(name, np.asarray(col)[keep]) for name, col in lead]
            names, x = pair_features(ctx, clients, products, self._extra_features(), lead=lead)
            self.feature_names_ = names
            parts.append(_Rows(x, y, clients, np.zeros(y.size, dtype=bool), w))
        # one copy of the window's rows: the candidates' blocks and the answered offers at once
        return _Rows.concat([*parts, self._outcome_rows(ctx, bases, start, end)])

    def _outcome_rows(
        self, ctx: FeatureContext, bases: list[Scorer], start: pd.Timestamp, end: pd.Timestamp
    ) -> _Rows:
        """Offers accepted (label 1) or declined (label 0) in ``(start, end]``, as extra rows.

        Each (client, product, outcome) counts once per window, with its features at ``start``,
        whether or not the pair was a candidate: an offer's answer is the one label observed
        rather than inferred. Pairs the client held at ``start`` are left out, as in scoring.
        """
        ev = ctx.book.event_table
        kind = ev[Columns.type].to_numpy(dtype=object)
        date = ev[Columns.date].to_numpy().view(np.int64)
        product = ev[Columns.product_idx].to_numpy(np.int64)
        inside = (date > start.value) & (date <= end.value) & (product >= 0)
        accepted = inside & (kind == "offer_accepted")
        declined = inside & (kind == "offer_declined")
        client = ev[Columns.client_idx].to_numpy(np.int64)
        pick = accepted | declined
        n_products = ctx.holdings.shape[1]
        keys = np.unique(
            (client[pick] * n_products + product[pick]) * 2 + accepted[pick].astype(np.int64)
        )
        clients, products = (keys // 2) // n_products, (keys // 2) % n_products
        label = (keys % 2).astype(np.float64)
        fresh = ctx.pair(ctx.holdings, clients, products) == 0
        clients, products, label = clients[fresh], products[fresh], label[fresh]
        x = self._offer_features(ctx, bases, clients, products)
        return _Rows.of([x], [label], [clients], outcome=True)

    def _features(
        self,
        ctx: FeatureContext,
        scores: list[FloatArray],
        rows: IntArray,
        groups: Sequence[IntArray | None] | None = None,
    ) -> tuple[IntArray, IntArray, IntArray, npt.NDArray[np.float64]]:
        """Candidate pairs of a block of clients (local row, client, product) and their features.

        ``scores`` holds each base scorer's scores of ``rows`` (rows are clients of the block),
        one row per group for a base with ``groups`` (see :meth:`_base_scores`).
        """
        local, clients, products, lead = self._candidates(ctx, scores, rows, groups)
        names, x = pair_features(ctx, clients, products, self._extra_features(), lead=lead)
        self.feature_names_ = names
        return local, clients, products, x

    def _candidates(
        self,
        ctx: FeatureContext,
        scores: list[FloatArray],
        rows: IntArray,
        groups: Sequence[IntArray | None] | None = None,
        *,
        lead: bool = True,
    ) -> tuple[IntArray, IntArray, IntArray, list[tuple[str, npt.NDArray[Any]]]]:
        """Candidate pairs of a block of clients and the base scorers' score and rank of each.

        ``groups`` (one per base, or None) tells, for a base whose rows of one group score
        alike, each row's group: that base's scores are then one row per group (see
        :meth:`_base_scores`), and its top products are selected once per group. With
        ``lead=False`` the scores and ranks are not gathered (an empty list).
        """
        n_products = ctx.holdings.shape[1]
        keep = min(int(self.n_candidates), n_products)
        mask = np.zeros((rows.size, n_products), dtype=bool)
        # the rank arrays are as large as the scores: half of int32's bytes to write and read
        rank_type = np.int16 if keep < np.iinfo(np.int16).max else np.int32
        ranks: list[tuple[npt.NDArray[np.signedinteger[Any]], IntArray | None]] = []
        for distinct, of_row in zip(scores, groups or [None] * len(scores), strict=True):
            if not lead and of_row is None:
                # only the set is wanted: the same cells, without sorting each row's survivors
                mark_top_k(distinct, keep, mask, above=0.0)
                continue
            # ties broken by product index so that the candidates never depend on input order
            top, value = top_k(distinct, keep)
            local, place = cells(top >= 0)
            chosen = top[local, place]
            if lead:
                rank = np.full(distinct.shape, keep + 1, dtype=rank_type)
                rank[local, chosen] = place + 1
                ranks.append((rank, of_row))
            # a base proposes only what it scores above zero: past its evidence (item-kNN's
            # top 50 held about 24 products with a score at 200k x 1k), the rest of its top
            # would be products in index order, 26% of all candidates
            scored = value[local, place] > 0
            at, proposed = local[scored], chosen[scored]
            if of_row is None:
                mask[at, proposed] = True
            else:
                by_key = np.zeros(distinct.shape, dtype=bool)
                by_key[at, proposed] = True
                mask |= by_key[of_row]
        if n_products <= self.score_all_below:
            mask[:] = True
        mask[:, _new_products(ctx)] = True
        held = take_rows(ctx.holdings, rows)
        mask[np.repeat(np.arange(rows.size), np.diff(held.indptr)), held.indices] = False
        local, products = cells(mask)
        clients = rows[local]
        columns: list[tuple[str, npt.NDArray[Any]]] = []
        # flat positions: a gather through one index array is 2.5x faster than through two
        cell = local * n_products + products
        for name, s, (rank, of_row) in zip(self.base, scores, ranks, strict=lead):
            # a grouped base's scores and ranks are one row per group
            at = cell if of_row is None else of_row[local] * n_products + products
            columns += [
                (f"{name}_score", np.ascontiguousarray(s).reshape(-1)[at]),
                (f"{name}_rank", rank.reshape(-1)[at]),
            ]
        return local.astype(np.int64), clients, products.astype(np.int64), columns

    @staticmethod
    def _base_scores(
        bases: Sequence[Scorer], rows: IntArray
    ) -> tuple[list[FloatArray], list[IntArray | None]]:
        """Each base scorer's scores of ``rows``, and the groups of rows that score alike.

        Popularity by segment scores every row of a segment alike: it scores one row per
        segment, and the row's segment (its place among them) comes with it; the candidates
        are read through it (see :meth:`_candidates`). The other bases score every row (None).
        """
        scores: list[FloatArray] = []
        groups: list[IntArray | None] = []
        for b in bases:
            if isinstance(b, Popularity) and rows.size > 1:
                _, first, of_row = np.unique(
                    b.row_groups(rows), return_index=True, return_inverse=True
                )
                scores.append(b.score(rows[first]))
                groups.append(of_row.reshape(-1))
            else:
                scores.append(b.score(rows))
                groups.append(None)
        return scores, groups

    def _train(
        self,
        x: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        w: npt.NDArray[np.float64],
        seed: int,
        *,
        leaves: int,
        stop_on: _Rows | None = None,
    ) -> Any:
        threads = int(self.num_threads)
        if self.model == "lightgbm":
            import lightgbm

            trees = int(getattr(self, "_n_trees", 0) or self.n_estimators)
            # one thread: row-wise histograms, the faster; several: column-wise, whose sums do
            # not depend on the threads (row-wise ones add per-thread partial sums)
            histograms: dict[str, Any] = (
                {"force_row_wise": True} if threads == 1 else {"force_col_wise": True}
            )
            model: Any = lightgbm.LGBMClassifier(
                n_estimators=int(self.n_estimators) if stop_on is not None else trees,
                learning_rate=float(self.learning_rate),
                num_leaves=leaves,
                min_child_samples=50,
                reg_lambda=1.0,
                random_state=seed,
                n_jobs=threads if threads > 0 else -1,
                deterministic=True,
                **histograms,
                verbose=-1,
            )
            if stop_on is None:
                model.fit(x, y.astype(np.int64), sample_weight=w)
                return model
            import inspect

            held: dict[str, Any] = (
                # LightGBM 4.7 names the validation set eval_X / eval_y; older ones eval_set
                {"eval_X": (stop_on.x,), "eval_y": (stop_on.y.astype(np.int64),)}
                if "eval_X" in inspect.signature(model.fit).parameters
                else {"eval_set": [(stop_on.x, stop_on.y.astype(np.int64))]}
            )
            model.fit(
                x,
                y.astype(np.int64),
                sample_weight=w,
                eval_sample_weight=[stop_on.w],
                callbacks=[lightgbm.early_stopping(int(self.early_stopping or 1), verbose=False)],
                **held,
            )
            return model
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        model = HistGradientBoostingClassifier(
            max_iter=int(self.n_estimators),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=leaves,
            min_samples_leaf=50,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
        # scikit-learn cannot bin a column without a single value (e.g. no prices at all)
        self.empty_columns_ = np.asarray(np.isnan(x).all(axis=0), dtype=np.bool_)
        with threadpool_limits(limits=threads if threads > 0 else None, user_api="openmp"):
            model.fit(_fill_empty(x, self.empty_columns_), y.astype(np.int64), sample_weight=w)
        return model

    def _raw(
        self, model: Any, x: npt.NDArray[np.float64], *, threads: int = 1
    ) -> npt.NDArray[np.float64]:
        """Return the trees' probability for each row.

        Scoring is single-threaded (``threads=1``): a Recommender already spreads blocks of
        clients over its own threads, and one client must never wake a thread pool, whose
        start-up dominates the tail latency on a loaded machine. Fit predicts the large
        held-out window on every core (``threads=0``): the output is the same on any number.
        """
        if x.shape[0] == 0:
            return np.zeros(0)
        if self.model == "hgb":
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=threads if threads > 0 else None, user_api="openmp"):
                p = model.predict_proba(_fill_empty(x, self.empty_columns_))[:, 1]
            return np.asarray(p, dtype=np.float64)
        # LightGBM's Booster straight away (fitted or loaded): the scikit-learn wrapper's
        # predict inspects and copies its parameters on every call, most of one client's time
        booster = model.booster_
        forest = self._forest(booster) if threads == 1 else None
        if forest is not None:
            # LightGBM's numbers, bit for bit, without its two copies of every row
            return forest.predict(x)
        return np.asarray(booster.predict(x, num_threads=threads), dtype=np.float64)

    def _memo(self, attr: str, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """Return what ``build`` made from the objects ``key``, kept in ``attr`` until they change.

        The objects are compared by identity. The entry is one tuple, swapped atomically:
        threads scoring at once build it alike.
        """
        cached = getattr(self, attr, None)
        if cached is None or any(a is not b for a, b in zip(cached[0], key, strict=True)):
            cached = (key, build())
            setattr(self, attr, cached)
        return cached[1]

    def _forest(self, booster: Any) -> Forest | None:
        """Return the fitted trees as a :class:`Forest`, built on first use (None: LightGBM)."""
        forest: Forest | None = self._memo(
            "_forest_cache", (booster,), lambda: Forest.from_text(booster.model_to_string())
        )
        return forest

    def _probability(
        self, x: npt.NDArray[np.float64], ctx: FeatureContext, clients: IntArray, products: IntArray
    ) -> npt.NDArray[np.float64]:
        raw = self._popularity_raw(x) if self.model_ is None else self._raw(self.model_, x)
        return self._calibrated(raw)

    def _calibrated(self, raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the calibrated probability of raw scores, their order kept among equal ones."""
        if self.calibrator_ is None:
            return raw
        cal = np.asarray(self.calibrator_.predict(raw), dtype=np.float64)
        return (1.0 - _TIE_WEIGHT) * cal + _TIE_WEIGHT * raw

    def _pairs_probability(
        self,
        ctx: FeatureContext,
        scores: list[FloatArray],
        rows: IntArray,
        groups: Sequence[IntArray | None] | None = None,
    ) -> tuple[IntArray, IntArray, IntArray, FloatArray64 | None, FloatArray64]:
        """Candidates of a block of clients, their features (None: not needed) and probability.

        When the trees lost to popularity in :meth:`fit` (no model kept), only the two
        popularity columns that order the candidates are read: the same probabilities, without
        the other features (most of such a block's time after the candidates).
        """
        if self.model_ is not None:
            local, clients, products, x = self._features(ctx, scores, rows, groups)
            return local, clients, products, x, self._probability(x, ctx, clients, products)
        local, clients, products, _ = self._candidates(ctx, scores, rows, groups, lead=False)
        table = self._popularity_table(ctx)
        if table is not None:
            return local, clients, products, None, table[segment_rows(ctx, clients), products]
        raw = _popularity_score(*segment_popularity_of(ctx, clients, products))
        return local, clients, products, None, self._calibrated(raw)

    def _popularity_table(self, ctx: FeatureContext) -> FloatArray64 | None:
        """Popularity order's probability per (segment row, product), or None when too large.

        It depends on the pair through those two only, so it is computed once per model and
        read per candidate (the same numbers: the same operations on the same values).
        """
        seg, fam = ctx.segment_popularity, ctx.family_segment_popularity
        if seg.size > _POPULARITY_TABLE_CELLS:
            return None

        def build() -> FloatArray64:
            raw = _popularity_score(seg, fam[:, ctx.product_family])
            return self._calibrated(raw.reshape(-1)).reshape(raw.shape)

        table: FloatArray64 = self._memo(
            "_popularity_cache", (seg, fam, ctx.product_family, self.calibrator_), build
        )
        return table

    def _restore(self, book: Book, as_of: pd.Timestamp) -> None:
        # the snapshot is a function of the Book, as_of and the horizon, so it is not saved
        if self.model_ is not None and self.model != "lightgbm":
            raise ArtifactError(f"a saved Ranker(model={self.model!r}) holds LightGBM trees")
        self.context_ = build_context(book, as_of, self.horizon_)
        self._response_feature = self._new_response_feature()

    def _scoring_state(self) -> dict[str, Any]:
        """Return what the context took from the events, for a save that leaves them out."""
        if self._new_response_feature() is not None:
            raise ArtifactError(
                f"a Ranker with response={self.response!r} learns its response model again from "
                "the Book's events when loaded, so it cannot be saved scoring-only; save it whole"
            )
        return event_state(self.context_)

    def _restore_scoring(self, book: Book, as_of: pd.Timestamp, state: dict[str, Any]) -> None:
        """Rebuild the context from a Book without events and the event arrays saved with it."""
        if self._new_response_feature() is not None:
            raise ArtifactError("a Ranker with 'response' is never saved scoring-only")
        self._restore(book, as_of)
        self.context_ = with_event_state(self.context_, state)

    # ------------------------------------------------------------------ scoring
    def _score_rows(self, rows: IntArray) -> FloatArray:
        ctx = self.context_
        out = np.zeros((rows.size, ctx.holdings.shape[1]), dtype=np.float32)
        n_lead = 2 * len(self.bases_)
        parts = []
        for lo in range(0, rows.size, _BLOCK):
            block = rows[lo : lo + _BLOCK]
            scores, groups = self._base_scores(self.bases_, block)
            local, clients, products, x, p = self._pairs_probability(ctx, scores, block, groups)
            out[lo + local, products] = np.clip(p, _PROB_FLOOR, 1.0)
            if rows.size > 1 and x is not None:
                parts.append((clients, products, x[:, :n_lead].copy()))
        if self.model_ is None or rows.size == 0:
            # popularity's order: an explanation reads no feature (every contribution is 0)
            return out
        if rows.size == 1:
            # one client, as recommend_one asks: its offers' explanation reads these features
            # instead of computing them again (per thread: requests run in parallel)
            _LAST_CLIENT.scored = (_owner(self, ctx), int(rows[0]), products, x)
        else:
            # a batch's chunk: its offers' explanation reads the base scorers' columns of the
            # candidates (a fifth of the features' memory) instead of scoring the clients
            # again and ranking each offer among all products
            _LAST_CLIENT.chunk = (_owner(self, ctx), parts)
        return out

    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        # a client the fitted book does not know: no attributes, no history, only its holdings
        ctx = context_for_holdings(self.context_, held)
        scores = [b.fit_client(held, weights)[None, :] for b in self.bases_]
        row = np.zeros(1, dtype=np.int64)
        out = np.zeros(ctx.holdings.shape[1], dtype=np.float32)
        _, _, products, _, p = self._pairs_probability(ctx, scores, row)
        out[products] = np.clip(p, _PROB_FLOOR, 1.0)
        return out

    @property
    def holdout_ndcg_(self) -> dict[str, float]:
        """NDCG@10 of the trees and of popularity on the held-out window (see the class)."""
        row = self.training_.iloc[0]
        return {"trees": float(row["ndcg_trees"]), "popularity": float(row["ndcg_popularity"])}

    def contributions(
        self, clients: npt.ArrayLike, products: npt.ArrayLike, n: int = 3
    ) -> pd.DataFrame:
        """Explain offers by the features that pushed their probability up most.

        With LightGBM the contributions are the trees' exact per-prediction attributions
        (``pred_contrib``, in log-odds); with scikit-learn's trees they are approximated by how
        much the raw probability drops when the feature is set to missing. When the trees lost
        to popularity inside :meth:`fit` (``uses_model_`` False) every contribution is 0.

        Parameters
        ----------
        clients : array-like of int
            Row index of the client of each offer.
        products : array-like of int
            Product index of each offer, aligned with ``clients``.
        n : int, default 3
            Features kept per offer.

        Returns
        -------
        pandas.DataFrame
            One row per offer: ``client_id``, ``product_id``, ``propensity``, ``evidence`` (a
            list of ``{"feature", "value", "contribution"}``, strongest first, positive ones
            only) and ``reason`` (the sentence a Recommender shows, see :meth:`reasons`).

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import crosssell as cs
        >>> book = cs.datasets.demo()
        >>> ranker = cs.scorers.Ranker(n_estimators=30).fit(book.matrix("2025-06-30"), book)
        >>> table = ranker.contributions([0], [4])
        >>> table.columns.tolist()
        ['client_id', 'product_id', 'propensity', 'evidence', 'reason']
        """
        self._check_fitted()
        rows, prods = self._offer_arrays(clients, products)
        n = _check_n("Ranker.contributions", n)
        x = self._offer_features(self.context_, self.bases_, rows, prods)
        prob = self._probability(x, self.context_, rows, prods)
        contrib = self._contributions(x)
        top = _top_positive(contrib, n)
        evidence = [
            [
                {
                    "feature": self.feature_names_[j],
                    "value": float(x[i, j]),
                    "contribution": round(float(contrib[i, j]), 4),
                }
                for j in row
                if j >= 0
            ]
            for i, row in enumerate(top.tolist())
        ]
        _, _, reasons = self._explain_rows(rows, prods, n, None)
        return pd.DataFrame(
            {
                Columns.client: self.context_.book.client_ids.to_external(rows),
                Columns.product: self.context_.book.product_ids.to_external(prods),
                Columns.propensity: prob,
                Columns.evidence: evidence,
                Columns.reason: reasons,
            }
        )

    def reasons(
        self,
        clients: npt.ArrayLike,
        products: npt.ArrayLike,
        n: int = 3,
        *,
        holdings: sp.csr_matrix | None = None,
    ) -> tuple[IntArray, FloatArray, npt.NDArray[np.object_]]:
        """Explain offers from their feature contributions: evidence and one sentence each.

        This is what a :class:`~crosssell.Recommender` shows for a Ranker (its
        ``explain_kind`` is ``"contributions"``). Contributions are computed for the given
        offers only, in one call to the trees. The sentence names the strongest features that
        raised the probability ("holds ERP Standard; clients in its segment take it 3.0x more
        often; no recent decline"). The evidence is the held products those features rest on:
        the products a base scorer's score came from and the client's products of the offer's
        family, each weighted by the contribution (log-odds) it carries.

        An offer with no positive contribution, or of a product nobody holds yet, has no
        evidence, and its sentence says plainly that it is proposed on popularity or on the
        product's attributes only.

        Parameters
        ----------
        clients : array-like of int
            Row index of the client of each offer (rows of ``holdings`` when given).
        products : array-like of int
            Product index of each offer, aligned with ``clients``.
        n : int, default 3
            Evidence products and features kept per offer.
        holdings : scipy.sparse.csr_matrix, optional
            Fresh holdings of clients folded in with :meth:`fit_client` (rows are ``clients``,
            columns the fitted products); each such client is explained as ``fit_client``
            scores it.

        Returns
        -------
        ev_products : ndarray of int64, shape (m, n)
            Held products, strongest first, padded with -1.
        ev_weights : ndarray of float32, shape (m, n)
            The contribution each carries, padded with 0.
        sentences : ndarray of str (object), shape (m,)

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.

        Examples
        --------
        >>> import crosssell as cs
        >>> book = cs.datasets.demo()
        >>> ranker = cs.scorers.Ranker(n_estimators=30).fit(book.matrix("2025-06-30"), book)
        >>> ev, w, text = ranker.reasons([0], [4])
        >>> ev.shape, text[0].endswith(".")
        ((1, 3), True)
        """
        self._check_fitted()
        rows, prods = self._offer_arrays(clients, products)
        n = _check_n("Ranker.reasons", n)
        return self._explain_rows(rows, prods, n, holdings)

    def _offer_arrays(
        self, clients: npt.ArrayLike, products: npt.ArrayLike
    ) -> tuple[IntArray, IntArray]:
        rows = np.asarray(clients, dtype=np.int64).reshape(-1)
        prods = np.asarray(products, dtype=np.int64).reshape(-1)
        if rows.size != prods.size:
            raise ValueError(
                f"'clients' and 'products' must be aligned: got {rows.size} clients and "
                f"{prods.size} products."
            )
        return rows, prods

    def _offer_features(
        self, ctx: FeatureContext, bases: list[Scorer], clients: IntArray, products: IntArray
    ) -> npt.NDArray[np.float64]:
        """Features of given (client, product) pairs, equal to those :meth:`_features` gives.

        The base scorers score each distinct client once; a pair's rank among the client's
        products is counted as :func:`~crosssell._topk.top_k` orders them.
        """
        uniq, inverse = np.unique(clients, return_inverse=True)
        scores = [np.asarray(b.score(uniq), dtype=np.float32) for b in bases]
        return self._offer_columns(ctx, scores, inverse, clients, products)

    def _offer_columns(
        self,
        ctx: FeatureContext,
        scores: list[FloatArray],
        inverse: IntArray,
        clients: IntArray,
        products: IntArray,
    ) -> npt.NDArray[np.float64]:
        keep = min(int(self.n_candidates), ctx.holdings.shape[1])
        base_cols: list[npt.NDArray[np.float64]] = []
        base_names: list[str] = []
        for name, s in zip(self.base, scores, strict=True):
            score, rank = _score_and_rank(s, inverse, products, keep)
            base_cols += [score, rank]
            base_names += [f"{name}_score", f"{name}_rank"]
        names, x = pair_features(ctx, clients, products, self._extra_features())
        self.feature_names_ = base_names + names
        if not clients.size:
            return np.zeros((0, len(base_cols) + len(names)))
        return np.column_stack([*base_cols, x])

    def _scored_features(self, rows: IntArray, prods: IntArray) -> npt.NDArray[np.float64] | None:
        """Return the features of one client's pairs from its last scoring, if it has them."""
        last = getattr(_LAST_CLIENT, "scored", None)
        if last is None or not _owned(last[0], self) or rows.size == 0 or (rows != last[1]).any():
            return None
        products, x = last[2], last[3]
        order = np.argsort(products, kind="stable")
        at = np.searchsorted(products[order], prods)
        at = np.minimum(at, max(products.size - 1, 0))
        if products.size == 0 or (products[order][at] != prods).any():
            return None
        picked: npt.NDArray[np.float64] = np.asarray(x[order[at]], dtype=np.float64)
        return picked

    def _chunk_features(self, rows: IntArray, prods: IntArray) -> npt.NDArray[np.float64] | None:
        """Return the features of pairs scored in this thread's last chunk, if all were."""
        last = getattr(_LAST_CLIENT, "chunk", None)
        if last is None or not _owned(last[0], self) or rows.size == 0:
            return None
        parts = last[1]
        n_products = self.context_.holdings.shape[1]
        keys = np.concatenate([c * n_products + p for c, p, _ in parts])
        if keys.size == 0:
            return None
        order = np.argsort(keys, kind="stable")
        want = rows * n_products + prods
        at = np.minimum(np.searchsorted(keys[order], want), keys.size - 1)
        if (keys[order[at]] != want).any():
            return None
        lead = np.concatenate([part[2] for part in parts])[order[at]]
        names, rest = pair_features(self.context_, rows, prods, self._extra_features())
        if len(names) + lead.shape[1] != len(self.feature_names_):
            return None
        return np.column_stack([lead, rest])

    def _explain_rows(
        self, rows: IntArray, prods: IntArray, n: int, holdings: sp.csr_matrix | None
    ) -> tuple[IntArray, FloatArray, npt.NDArray[np.object_]]:
        """Contributions, evidence and sentences of offers (stored or fresh clients)."""
        ctx = self.context_
        x: FloatArray64 | None
        if self.model_ is None:
            # popularity's order: every contribution is 0, so no evidence and plain sentences
            return (
                np.full((rows.size, n), -1, dtype=np.int64),
                np.zeros((rows.size, n), dtype=np.float32),
                _plain_sentences(ctx, prods, self._product_names()),
            )
        if holdings is None:
            x = self._scored_features(rows, prods)
            if x is None:
                x = self._chunk_features(rows, prods)
            if x is None:
                x = self._offer_features(ctx, self.bases_, rows, prods)
            held = take_rows(ctx.holdings, rows)
        else:
            x = np.empty((rows.size, len(self.feature_names_)))
            for row in np.unique(rows):
                mine = np.flatnonzero(rows == row)
                h = holdings[int(row)]
                one = context_for_holdings(ctx, h.indices.astype(np.int64))
                scores = [
                    np.asarray(b.fit_client(h.indices, h.data)[None, :], dtype=np.float32)
                    for b in self.bases_
                ]
                zeros = np.zeros(mine.size, dtype=np.int64)
                x[mine] = self._offer_columns(one, scores, zeros, zeros, prods[mine])
            held = holdings[rows]
        contrib = self._contributions(x)
        ev_idx, ev_w = self._evidence_products(
            rows=rows, prods=prods, contrib=contrib, held=held, n=n, holdings=holdings
        )
        sentences = _sentences(
            ctx=ctx,
            names=self.feature_names_,
            x=x,
            top=_top_positive(contrib, n),
            products=prods,
            family_product=_family_holding(ctx, held, prods),
            names_of_products=self._product_names(),
            user=[name for name, _ in self.features],
        )
        return ev_idx, ev_w, sentences

    def _product_names(self) -> npt.NDArray[np.object_]:
        """Product names of the fitted Book, read once (the Book is immutable)."""
        book = self.context_.book
        names: npt.NDArray[np.object_] = self._memo(
            "_names_cache",
            (book,),
            lambda: np.asarray(book.product_table[Columns.name].astype(str), dtype=object),
        )
        return names

    def _evidence_products(
        self,
        *,
        rows: IntArray,
        prods: IntArray,
        contrib: npt.NDArray[np.float64],
        held: sp.csr_matrix,
        n: int,
        holdings: sp.csr_matrix | None,
    ) -> tuple[IntArray, FloatArray]:
        """Share each offer's positive contributions among the held products they rest on."""
        ctx = self.context_
        names = self.feature_names_
        m = rows.size
        positive = np.maximum(contrib, 0.0)
        r_parts: list[IntArray] = []
        p_parts: list[IntArray] = []
        w_parts: list[npt.NDArray[np.float64]] = []
        # base scorers that explain themselves by held products
        for name, b in zip(self.base, self.bases_, strict=True):
            if name == "popularity":
                continue
            carried = (
                positive[:, names.index(f"{name}_score")] + positive[:, names.index(f"{name}_rank")]
            )
            some = np.flatnonzero(carried > 0)
            if not some.size:
                continue
            ev, w = b.evidence(rows[some], prods[some], n=n, holdings=holdings)
            w = np.where(ev >= 0, np.maximum(w.astype(np.float64), 0.0), 0.0)
            total = w.sum(axis=1, keepdims=True)
            share = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
            ok = (ev >= 0) & (share > 0)
            r_parts.append(np.broadcast_to(some[:, None], ev.shape)[ok])
            p_parts.append(ev[ok])
            w_parts.append((share * carried[some, None])[ok])
        # the client's products of the offer's family, for the client x family features
        fam_cols = [names.index(f) for f in _FAMILY_FEATURES if f in names]
        carried = positive[:, fam_cols].sum(axis=1)
        entry_row = np.repeat(np.arange(m), np.diff(held.indptr))
        same = ctx.product_family[held.indices] == ctx.product_family[prods[entry_row]]
        same &= carried[entry_row] > 0
        count = np.bincount(entry_row[same], minlength=m)
        r_parts.append(entry_row[same])
        p_parts.append(held.indices[same].astype(np.int64))
        w_parts.append(carried[entry_row[same]] / np.maximum(count[entry_row[same]], 1))
        return _top_per_row(
            np.concatenate(r_parts), np.concatenate(p_parts), np.concatenate(w_parts), m, n
        )

    def _trees_beat_popularity(self, raw: npt.NDArray[np.float64], held_out: _Rows) -> bool:
        """Record the held-out NDCG@10 of the trees and of popularity; True if the trees win.

        Offer-outcome rows are left out: the comparison is over each client's candidates.
        """
        if held_out.outcome.any():
            raw, held_out = raw[~held_out.outcome], held_out.take(~held_out.outcome)
        y, groups = held_out.y, held_out.client
        trees = _ndcg_at(raw, y, groups, _GUARD_K)
        popularity = _ndcg_at(self._popularity_raw(held_out.x), y, groups, _GUARD_K)
        # the held-out window is the most recent one, the first row of the training summary
        self.training_.loc[0, ["ndcg_trees", "ndcg_popularity"]] = [trees, popularity]
        if np.isnan(trees) or np.isnan(popularity):
            return True
        return bool(trees > popularity)

    def _popularity_raw(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the popularity order's score of feature rows (see :func:`_popularity_score`)."""
        names = self.feature_names_
        return _popularity_score(
            x[:, names.index("segment_popularity")], x[:, names.index("family_segment_popularity")]
        )

    def _contributions(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.model_ is None or x.shape[0] == 0:
            return np.zeros_like(x)
        if self.model == "lightgbm":
            booster = self.model_.booster_

            def tables() -> tuple[npt.NDArray[np.float64], sp.csr_matrix]:
                table = _leaf_table(booster, x.shape[1])
                return table, sp.csr_matrix(table.reshape(-1, table.shape[2]))

            # one table per fitted model
            table, credit = self._memo("_leaf_cache", (booster,), tables)
            return _path_contributions(booster, x, table, credit, self._forest(booster))
        base = self._raw(self.model_, x)
        out = np.empty_like(x)
        for j in range(x.shape[1]):
            masked = x.copy()
            masked[:, j] = np.nan
            out[:, j] = base - self._raw(self.model_, masked)
        return out

    def _pair_weight(
        self,
    ) -> Callable[[IntArray, IntArray], npt.NDArray[np.float64]] | None:
        for b in self.bases_:
            if isinstance(b, ItemKNN | CoOccurrence):
                return b._pair_weight()
        return None


def _popularity_score(
    segment: npt.NDArray[np.float64], family: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Segment popularity of pairs, ties (e.g. products nobody holds) by their family's."""
    return np.asarray(segment + _TIE_WEIGHT * family, dtype=np.float64)


def _owner(ranker: Ranker, ctx: FeatureContext) -> tuple[Any, Any]:
    """Who scored what a thread keeps (weak references: ids of freed objects are reused)."""
    return weakref.ref(ranker), weakref.ref(ctx)


def _owned(owner: tuple[Any, Any], ranker: Ranker) -> bool:
    """Whether ``owner`` is this ranker with its current context."""
    return owner[0]() is ranker and owner[1]() is ranker.context_


def _fill_empty(
    x: npt.NDArray[np.float64], empty: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Zero the columns that held no value in training, as that model saw them."""
    if not empty.any():
        return x
    out = x.copy()
    out[:, empty] = 0.0
    return out


@dataclass(frozen=True, slots=True)
class _Rows:
    """Training rows of a window: features, labels, client, offer-outcome flag, weight."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    client: IntArray
    outcome: npt.NDArray[np.bool_]
    w: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls,
        xs: list[npt.NDArray[np.float64]],
        ys: list[npt.NDArray[np.float64]],
        cs: list[IntArray],
        *,
        outcome: bool,
    ) -> _Rows:
        if not xs:
            empty = np.zeros(0)
            return cls(np.zeros((0, 0)), empty, np.zeros(0, np.int64), np.zeros(0, bool), empty)
        y = np.concatenate(ys)
        return cls(
            np.concatenate(xs),
            y,
            np.concatenate(cs).astype(np.int64),
            np.full(y.size, outcome),
            np.ones(y.size),
        )

    @classmethod
    def concat(cls, parts: Sequence[_Rows]) -> _Rows:
        full = [p for p in parts if p.y.size] or list(parts[:1])
        return cls(
            np.concatenate([p.x for p in full]),
            np.concatenate([p.y for p in full]),
            np.concatenate([p.client for p in full]),
            np.concatenate([p.outcome for p in full]),
            np.concatenate([p.w for p in full]),
        )

    def take(self, mask: npt.NDArray[np.bool_]) -> _Rows:
        pick = np.flatnonzero(mask)
        if pick.size and pick[-1] - pick[0] + 1 == pick.size:
            # one run of rows (e.g. a window without its answered offers, which come last):
            # views, not a copy of the feature matrix
            s = slice(int(pick[0]), int(pick[-1]) + 1)
            return _Rows(self.x[s], self.y[s], self.client[s], self.outcome[s], self.w[s])
        return _Rows(
            self.x[pick], self.y[pick], self.client[pick], self.outcome[pick], self.w[pick]
        )


def _path_contributions(
    booster: Any,
    x: npt.NDArray[np.float64],
    table: npt.NDArray[np.float64] | None = None,
    credit: sp.csr_matrix | None = None,
    forest: Forest | None = None,
) -> npt.NDArray[np.float64]:
    """Per-prediction contributions of LightGBM trees by their decision paths, in log-odds.

    Along the path of a row through a tree, each split moves the tree's output from the node's
    value to the child's; the move is credited to the split's feature. Summed over the trees,
    the contributions plus the roots' values are exactly the model's log-odds. The credit of
    every leaf is tabulated once per model, so explaining a row costs one leaf lookup per tree
    (TreeSHAP, LightGBM's ``pred_contrib``, is some hundred times slower for the same rows).
    ``credit`` is the table as a sparse matrix of (tree, leaf) rows: a path credits a few
    features only (16% of the table's cells at 200k x 1k), so each row adds up the stored
    cells of its leaves' rows, tree after tree. ``forest`` (the same trees) finds the leaves
    without LightGBM's copies of every row.
    """
    if table is None:
        table = _leaf_table(booster, x.shape[1])
    if forest is not None:
        leaves = forest.leaves(x)
    else:
        leaves = np.asarray(booster.predict(x, pred_leaf=True, num_threads=1), dtype=np.int32)
    leaves = leaves.reshape(x.shape[0], -1)
    n_trees, n_leaves, _ = table.shape
    if credit is None:
        credit = sp.csr_matrix(table.reshape(n_trees * n_leaves, -1))
    from crosssell._kernels import path_credit_into

    out = np.zeros(x.shape)
    path_credit_into(
        np.ascontiguousarray(leaves, dtype=np.int32),
        n_leaves,
        credit.indptr.astype(np.int64, copy=False),
        credit.indices.astype(np.int64, copy=False),
        credit.data.astype(np.float64, copy=False),
        out,
    )
    return out


def _leaf_table(booster: Any, n_features: int) -> npt.NDArray[np.float64]:
    """Credit of each feature on the path to each leaf: shape (trees, leaves, features)."""
    trees = booster.dump_model()["tree_info"]
    n_leaves = max(int(t["num_leaves"]) for t in trees) if trees else 1
    table = np.zeros((len(trees), n_leaves, n_features))
    for t, tree in enumerate(trees):
        stack = [(tree["tree_structure"], np.zeros(n_features))]
        while stack:
            node, credit = stack.pop()
            if "leaf_index" in node or "split_feature" not in node:
                table[t, int(node.get("leaf_index", 0))] = credit
                continue
            here = float(node["internal_value"])
            for side in ("left_child", "right_child"):
                child = node[side]
                value = float(child.get("leaf_value", child.get("internal_value", here)))
                step = credit.copy()
                step[int(node["split_feature"])] += value - here
                stack.append((child, step))
    return table


def _new_products(ctx: FeatureContext) -> IntArray:
    """Products available at the context's date that nobody holds yet: always candidates."""
    return np.flatnonzero(ctx.available & (ctx.popularity == 0)).astype(np.int64)


def _check_n(owner: str, n: int) -> int:
    validate_params(owner, {"n": n}, {"n": [Interval(numbers.Integral, 1, None, closed="left")]})
    return int(n)


def _score_and_rank(
    scores: FloatArray, inverse: IntArray, products: IntArray, keep: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each pair's base score and its place among its client's products (``keep + 1`` if out).

    The place is the one :func:`~crosssell._topk.top_k` gives: higher scores first, ties by
    lower product index, ``-inf`` and NaN never placed.
    """
    m = products.size
    score = np.empty(m)
    rank = np.empty(m)
    columns = np.arange(scores.shape[1])
    for lo in range(0, m, _BLOCK):
        part = slice(lo, lo + _BLOCK)
        block = scores[inverse[part]]
        mine = block[np.arange(block.shape[0]), products[part]]
        ahead = (block > mine[:, None]).sum(axis=1) + (
            (block == mine[:, None]) & (columns[None, :] < products[part, None])
        ).sum(axis=1)
        placed = np.isfinite(mine) & (ahead < keep)
        score[part] = mine
        rank[part] = np.where(placed, ahead + 1.0, keep + 1.0)
    return score, rank


def _top_positive(contrib: npt.NDArray[np.float64], n: int) -> IntArray:
    """Column indices of each row's ``n`` largest positive contributions, -1 pads."""
    n = min(n, contrib.shape[1])
    top = np.argsort(-contrib, axis=1, kind="stable")[:, :n]
    value = np.take_along_axis(contrib, top, axis=1)
    return np.where(value > 0, top, -1).astype(np.int64)


def _top_per_row(
    rows: IntArray, products: IntArray, weights: npt.NDArray[np.float64], m: int, n: int
) -> tuple[IntArray, FloatArray]:
    """Sum weights per (row, product) and keep each row's ``n`` heaviest, -1 / 0 pads."""
    ev_idx = np.full((m, n), -1, dtype=np.int64)
    ev_w = np.zeros((m, n), dtype=np.float32)
    if not rows.size:
        return ev_idx, ev_w
    n_products = int(products.max()) + 1
    keys, inverse = np.unique(rows * n_products + products, return_inverse=True)
    total = np.bincount(inverse, weights=weights)
    r, p = keys // n_products, keys % n_products
    order = np.lexsort((p, -total, r))
    r, p, total = r[order], p[order], total[order]
    # each entry's place within its row (np.r_ would cost more than the rest for one client)
    starts = np.flatnonzero(r[1:] != r[:-1]) + 1
    first = np.zeros(r.size, dtype=np.int64)
    first[starts] = starts
    place = np.arange(r.size) - np.maximum.accumulate(first)
    keep = place < n
    ev_idx[r[keep], place[keep]] = p[keep]
    ev_w[r[keep], place[keep]] = total[keep]
    return ev_idx, ev_w


def _thin_held_out(
    local: IntArray, y: npt.NDArray[np.float64], chance: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Rows of a held-out block to keep, and their weights (see :data:`_HELD_OUT_ROWS`).

    Every candidate of a client who took one is kept (the NDCG check ranks them all); the
    candidates of the other clients are kept with probability ``chance``, each then weighted
    ``1 / chance``, so that the calibration still sees an unbiased sample.
    """
    took = np.bincount(local, weights=y, minlength=int(local.max(initial=-1)) + 1) > 0
    whole = took[local]
    keep = whole | (rng.random(y.size) < chance)
    return keep, np.where(whole, 1.0, 1.0 / chance)


def _ndcg_at(
    scores: npt.NDArray[np.float64], y: npt.NDArray[np.float64], groups: IntArray, k: int
) -> float:
    """Mean NDCG@k over the groups (clients) with at least one positive; NaN when none has."""
    if not y.size or not y.any():
        return float("nan")
    order = np.lexsort((-scores, groups))
    g, rel = groups[order], y[order]
    _, gid, sizes = np.unique(g, return_inverse=True, return_counts=True)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    place = np.arange(g.size) - first[gid]
    gain = np.where(place < k, rel / np.log2(place + 2.0), 0.0)
    dcg = np.bincount(gid, weights=gain, minlength=sizes.size)
    positives = np.bincount(gid, weights=rel, minlength=sizes.size).astype(np.int64)
    ideal_steps = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))]
    idcg = ideal_steps[np.minimum(positives, k)]
    some = positives > 0
    return float(np.mean(dcg[some] / idcg[some]))


def _family_holding(ctx: FeatureContext, held: sp.csr_matrix, products: IntArray) -> IntArray:
    """Per offer, the client's highest-tier product of the offer's family (-1 when none)."""
    m = products.size
    entry_row = np.repeat(np.arange(m), np.diff(held.indptr))
    entry = held.indices.astype(np.int64)
    same = ctx.product_family[entry] == ctx.product_family[products[entry_row]]
    r, p = entry_row[same], entry[same]
    out = np.full(m, -1, dtype=np.int64)
    order = np.lexsort((p, np.nan_to_num(ctx.product_tier[p], nan=-np.inf), r))
    out[r[order]] = p[order]  # the last write per row wins: the highest tier, then index
    return out


_BASE_PHRASES = {
    "popularity": "popular among comparable clients",
    "itemknn": "clients with similar portfolios hold it",
    "cooccurrence": "often held with what the client holds",
    "als": "fits the client's portfolio",
}


def _base_column(name: str) -> bool:
    """Whether a feature is a base scorer's score or rank (put into words by its name alone)."""
    return name.endswith(("_score", "_rank"))


def _phrase(  # noqa: PLR0911, PLR0912 - one case per feature, read top to bottom
    name: str, value: float, family: str, held_name: str | None
) -> str | None:
    """Put one positive contribution into words, or None when no true sentence fits it."""
    known = not np.isnan(value)
    if name in ("family_held", "holds_lower_tier", "tier_gap") and known and value > 0:
        return f"holds {held_name}" if held_name else f"already works with {family}"
    if name == "days_since_family_start" and known:
        return f"took a {family} product {value:.0f} days ago"
    if name == "segment_lift" and known and value > 1:
        return f"clients in its segment take it {value:.1f}x more often"
    if name in ("popularity", "segment_popularity") and known and value > 0:
        where = "in its segment" if name == "segment_popularity" else "overall"
        return f"held by {value:.0%} of clients {where}"
    if name == "family_segment_popularity" and known and value > 0:
        return f"{value:.0%} of clients in its segment use {family}"
    if name in ("trend", "trend_share") and known and value > 0:
        return "taken by more clients lately"
    if name in ("offers_declined", "family_offers_declined") and value == 0:
        return "no recent decline"
    if name == "days_since_family_decline":
        return "no recent decline" if not known else f"no decline for {value:.0f} days"
    if name in ("need", "family_need") and known and value > 0:
        return "stated a need for it" if name == "need" else f"stated a need for {family}"
    if name in ("offers_accepted", "family_offers_accepted") and known and value > 0:
        return (
            "accepted an offer of it before"
            if name == "offers_accepted"
            else (f"accepted an offer in {family} before")
        )
    if name == "response_acceptance" and known:
        return f"when offered to clients like this, it was accepted {value:.0%} of the time"
    if name == "segment_acceptance" and known:
        return f"when offered in its segment, it was accepted {value:.0%} of the time"
    if name == "product_age_days" and known and value >= 0:
        return f"launched {value:.0f} days ago"
    if _base_column(name):
        base = name.rsplit("_", 1)[0]
        return _BASE_PHRASES.get(base, f"ranked high by {base}")
    if name == "client_tenure_days" and known:
        return f"a client for {value / 365.25:.1f} years"
    if name == "client_holdings" and known:
        return f"holds {value:g} products"
    return None


def _distinct(values: npt.NDArray[np.float64], *keys: IntArray) -> tuple[IntArray, IntArray]:
    """Group equal (value, keys...) entries: return each group's first entry, each entry's group.

    Values are compared bit for bit (NaN equals NaN, 0.0 differs from -0.0), as they print.
    """
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    order = np.lexsort((*reversed(keys), bits))
    same = np.ones(bits.size, dtype=bool)
    for column in (bits, *keys):
        ordered = column[order]
        same[1:] &= ordered[1:] == ordered[:-1]
    same[:1] = False
    inverse = np.empty(bits.size, dtype=np.int64)
    inverse[order] = np.cumsum(~same) - 1
    return order[~same], inverse


def _plain_sentences(
    ctx: FeatureContext, products: IntArray, product_names: npt.NDArray[np.object_]
) -> npt.NDArray[np.object_]:
    """Per offer, the sentence of an offer no feature speaks for, made once per product.

    A product nobody holds is proposed on its attributes; any other on popularity only.
    """
    uniq, inverse = np.unique(products, return_inverse=True)
    families = ctx.family_labels()
    family = families[ctx.product_family[uniq]] if families.size else np.full(uniq.size, "")
    words = np.empty(uniq.size, dtype=object)
    words[:] = [
        f"{name} is held by no client yet: proposed on its attributes only (family {fam})."
        if nobody
        else (
            f"Proposed on popularity only: nothing about this client in particular "
            f"speaks for {name}."
        )
        for name, fam, nobody in zip(
            product_names[uniq].tolist(),
            family.tolist(),
            (ctx.popularity[uniq] == 0).tolist(),
            strict=True,
        )
    ]
    return words[inverse.reshape(-1)]


def _sentences(
    *,
    ctx: FeatureContext,
    names: list[str],
    x: npt.NDArray[np.float64],
    top: IntArray,
    products: IntArray,
    family_product: IntArray,
    names_of_products: npt.NDArray[np.object_],
    user: Sequence[str] = (),
) -> npt.NDArray[np.object_]:
    """One sentence per offer from its strongest positive contributions (``top``, -1 pads).

    A product nobody holds, or an offer with no positive contribution, gets a plain sentence
    saying it is proposed on popularity or attributes only. Each phrase is put into words once
    per distinct feature, value, family and held product among the offers, then the offers'
    phrases are joined.
    """
    product_names = names_of_products
    families = ctx.family_labels()
    family_of = ctx.product_family[products]
    family = families[family_of] if families.size else np.full(products.size, "", dtype=object)
    phrases = np.full(top.shape, None, dtype=object)
    for slot in range(top.shape[1]):
        col = top[:, slot]
        for j in np.unique(col[col >= 0]).tolist():
            rows = np.flatnonzero(col == j)
            if names[j] not in user and _base_column(names[j]):
                # a base scorer's column is put into words by its name alone
                first, inverse = rows[:1], np.zeros(rows.size, dtype=np.int64)
            else:
                first, inverse = _distinct(x[rows, j], family_of[rows], family_product[rows])
                first = rows[first]
            name = names[j]
            held = family_product[first]
            held_names = product_names[np.maximum(held, 0)]
            held_names[held < 0] = None
            words = np.empty(first.size, dtype=object)
            own = name in user
            words[:] = [
                f"{name} {value:g}" if own else _phrase(name, value, str(fam), who)
                for value, fam, who in zip(
                    x[first, j].tolist(), family[first].tolist(), held_names.tolist(), strict=True
                )
            ]
            phrases[rows, slot] = words[inverse]
    out = _plain_sentences(ctx, products, product_names)
    plain = ((ctx.popularity[products] == 0) | (top < 0).all(axis=1)).tolist()
    for i, (row, cols) in enumerate(zip(phrases.tolist(), top.tolist(), strict=True)):
        if plain[i]:
            continue
        strong = [j for j in cols if j >= 0]
        unique = list(dict.fromkeys(p for p in row if p))
        if not unique:
            listed = ", ".join(names[j].replace("_", " ") for j in strong)
            out[i] = f"Proposed by the learned ranking; strongest features: {listed}."
            continue
        text = "; ".join(unique)
        out[i] = text[0].upper() + text[1:] + "."
    return out
