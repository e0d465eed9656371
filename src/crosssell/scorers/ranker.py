"""Ranker: a learned, calibrated second stage over the base scorers.

Base scorers propose candidates; gradient-boosted trees order them from point-in-time features of
each (client, product) pair and say how likely the client is to take each one within the horizon.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._calibrators import IsotonicCalibrator
from crosssell._codec import (
    StateBooster,
    StateCalibrator,
    StateDates,
    StateDuration,
    StateNames,
    StateRebuilt,
    StateScorers,
    StateSpec,
    StateTable,
    register,
)
from crosssell._params import Interval, Options, Satisfies, validate_params
from crosssell._topk import top_k
from crosssell.columns import Columns
from crosssell.exceptions import ArtifactError
from crosssell.scorers._common import RANDOM_STATE
from crosssell.scorers._features import (
    FeatureContext,
    FeatureFunction,
    build_context,
    context_for_holdings,
    pair_features,
)
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

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.matrix import ClientProductMatrix

__all__ = ["Ranker"]

Model = Literal["lightgbm", "hgb"]
BaseName = Literal["popularity", "itemknn", "cooccurrence", "als"]
_BASES: tuple[str, ...] = ("popularity", "itemknn", "cooccurrence", "als")
_BLOCK = 2048
_PROB_FLOOR = 1e-6
# a sliver of the raw model output breaks the ties of the isotonic steps by the model's order
# while moving a probability by at most this much
_TIE_WEIGHT = 1e-4


@register("scorer")
class Ranker(Scorer):
    """A learned second stage: gradient-boosted trees over candidates of the base scorers.

    For each client, the candidates are the union of the top ``n_candidates`` products of each
    base scorer (every product when the catalogue has at most ``score_all_below`` products).
    Each candidate pair gets point-in-time features (see :class:`~crosssell.scorers.FeatureContext`:
    base scores and ranks, popularity overall, in the client's segment and its trend, product
    and client attributes, client x family holdings and tiers, past offers and their outcomes,
    stated needs) and the trees give the probability that the client takes the product within
    ``horizon``. Products that are not candidates score 0, below every candidate.

    Training happens inside :meth:`fit`, honestly: for windows ending at ``as_of``,
    ``as_of - horizon``, ... (``windows`` of them, as far as the history allows), features are
    computed at the start of the window and the labels are the products newly taken within it.
    The most recent window is held out to fit an isotonic calibration of the trees' output;
    then the trees are refitted on every window (``refit=True``) so that the model predicting
    at ``as_of`` has seen the most recent behaviour. Nothing dated after ``as_of`` is read.

    Parameters
    ----------
    base : sequence of {"popularity", "itemknn", "cooccurrence", "als"}
        Default ``("popularity", "itemknn", "cooccurrence")``. Base scorers proposing
        candidates and giving score and rank features. Popularity is by segment when the
        clients have one.
    n_candidates : int, default 50
        Products kept per client from each base scorer.
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
    max_train_clients : int, default 20000
        Clients sampled per window for training (all when fewer).
    features : sequence of (str, callable), default ()
        User features: ``f(context, clients, products) -> array of float``, one value per pair,
        read from the :class:`~crosssell.scorers.FeatureContext` only (so at the
        context's date, never later).
    refit : bool, default True
        Refit the trees on every window after calibrating on the held-out most recent one.
    random_state : int, Generator or None, default 0
        Seeds client sampling and the trees.
    num_threads : int, default 1
        Threads for the trees (1: single-threaded and reproducible across machines).

    Attributes
    ----------
    bases_ : list of Scorer
        The base scorers fitted at ``as_of``.
    feature_names_ : list of str
        Feature columns, in the model's order.
    model_ : object or None
        The fitted classifier (None when the history held no positive label: scores then are
        the segment popularity). A loaded model holds the same LightGBM trees, rebuilt from
        their text model.
    calibrator_ : IsotonicCalibrator or None
        Maps the trees' output to a probability.
    horizon_ : pandas.Timedelta
        The label window used.
    windows_ : list of pandas.Timestamp
        End of each training window, most recent first.
    training_ : pandas.DataFrame
        Per window: rows, positives and the positive rate.

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

    explain_kind: ClassVar[ExplainKind] = "neighbours"
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
            columns=(Columns.cutoff, Columns.horizon_end, Columns.rows, "positives")
        ),
        "context_": StateRebuilt(),
    }

    bases_: list[Scorer]
    feature_names_: list[str]
    model_: Any
    calibrator_: Any
    horizon_: pd.Timedelta
    windows_: list[pd.Timestamp]
    training_: pd.DataFrame
    context_: FeatureContext
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
        max_train_clients: int = 20000,
        features: Sequence[tuple[str, FeatureFunction]] = (),
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
        self.max_train_clients = max_train_clients
        self.features = features
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
        "max_train_clients": [Interval(numbers.Integral, 1, None, closed="left")],
        "features": [
            Satisfies(
                lambda v: all(
                    isinstance(item, tuple) and len(item) == 2 and callable(item[1]) for item in v
                ),
                "a sequence of (name, function) pairs",
                ((("f", 3),), 3),
            )
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

        blocks: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
        summary = []
        for end in ends:
            start = end - horizon
            xw, yw = self._window_rows(book, start, end, rng)
            blocks.append((xw, yw))
            summary.append(
                {
                    Columns.cutoff: start,
                    Columns.horizon_end: end,
                    Columns.rows: len(yw),
                    "positives": int(yw.sum()),
                }
            )
        self.training_ = pd.DataFrame(summary)

        # prediction state at as_of
        self.context_ = build_context(book, as_of, horizon)
        self.bases_ = self._fit_bases(book, as_of)

        y_all = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0)
        if y_all.sum() == 0 or y_all.sum() == y_all.size:
            self.model_ = None
            self.calibrator_ = None
            return
        if len(blocks) >= 2 and blocks[0][1].sum() > 0:
            x_cal, y_cal = blocks[0]
            x_fit = np.concatenate([b[0] for b in blocks[1:]])
            y_fit = np.concatenate([b[1] for b in blocks[1:]])
        else:
            # one window: hold out a random fifth of its rows for the calibration
            x0, y0 = blocks[0]
            held = rng.random(y0.size) < 0.2
            x_cal, y_cal, x_fit, y_fit = x0[held], y0[held], x0[~held], y0[~held]
        if 0 < y_fit.sum() < y_fit.size:
            first_model = self._train(x_fit, y_fit, seed)
            self.calibrator_ = IsotonicCalibrator().fit(self._raw(first_model, x_cal), y_cal)
        else:
            self.calibrator_ = None
        if self.refit or self.calibrator_ is None:
            x_all = np.concatenate([b[0] for b in blocks])
            self.model_ = self._train(x_all, y_all, seed)
        else:
            self.model_ = first_model

    def _fit_bases(self, book: Book, at: pd.Timestamp) -> list[Scorer]:
        """Fit the base scorers on the binary holdings at ``at``."""
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
                out.append(ItemKNN(num_threads=max(int(self.num_threads), 1)).fit(m, book))
            elif name == "cooccurrence":
                out.append(CoOccurrence().fit(m, book))
            else:
                from crosssell.scorers.factorization import ALS

                out.append(
                    ALS(random_state=0, num_threads=max(int(self.num_threads), 1)).fit(m, book)
                )
        return out

    def _window_rows(
        self, book: Book, start: pd.Timestamp, end: pd.Timestamp, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Features at ``start`` and labels in ``(start, end]`` of sampled clients' candidates."""
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
        xs, ys = [], []
        for lo in range(0, warm.size, _BLOCK):
            rows = warm[lo : lo + _BLOCK]
            _, clients, products, x = self._features(ctx, [b.score(rows) for b in bases], rows)
            xs.append(x)
            # a candidate is never held at start, so any new contract in the window is an addition
            ys.append((ctx.pair(taken, clients, products) > 0).astype(np.float64))
        if not xs:
            return np.zeros((0, len(self.feature_names_))), np.zeros(0)
        return np.concatenate(xs), np.concatenate(ys)

    def _features(
        self, ctx: FeatureContext, scores: list[FloatArray], rows: IntArray
    ) -> tuple[IntArray, IntArray, IntArray, npt.NDArray[np.float64]]:
        """Candidate pairs of a block of clients (local row, client, product) and their features.

        ``scores`` holds each base scorer's scores of ``rows`` (rows are clients of the block).
        """
        n_products = ctx.holdings.shape[1]
        keep = min(int(self.n_candidates), n_products)
        mask = np.zeros((rows.size, n_products), dtype=bool)
        ranks = []
        for s in scores:
            # ties broken by product index so that the candidates never depend on input order
            top, _ = top_k(s, keep)
            local, place = np.nonzero(top >= 0)
            rank = np.full(s.shape, keep + 1, dtype=np.float64)
            rank[local, top[local, place]] = place + 1.0
            ranks.append(rank)
            mask[local, top[local, place]] = True
        if n_products <= self.score_all_below:
            mask[:] = True
        held = ctx.holdings[rows]
        mask[np.repeat(np.arange(rows.size), np.diff(held.indptr)), held.indices] = False
        local, products = np.nonzero(mask)
        clients = rows[local]
        names, x = pair_features(ctx, clients, products, self.features)
        base_cols = []
        base_names = []
        for name, s, rank in zip(self.base, scores, ranks, strict=True):
            base_cols += [s[local, products].astype(np.float64), rank[local, products]]
            base_names += [f"{name}_score", f"{name}_rank"]
        self.feature_names_ = base_names + names
        return (
            local.astype(np.int64),
            clients,
            products.astype(np.int64),
            np.column_stack([*base_cols, x]),
        )

    def _train(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], seed: int) -> Any:
        threads = int(self.num_threads)
        if self.model == "lightgbm":
            import lightgbm

            model: Any = lightgbm.LGBMClassifier(
                n_estimators=int(self.n_estimators),
                learning_rate=float(self.learning_rate),
                num_leaves=31,
                min_child_samples=50,
                reg_lambda=1.0,
                random_state=seed,
                n_jobs=threads if threads > 0 else -1,
                deterministic=True,
                force_row_wise=True,
                verbose=-1,
            )
            model.fit(x, y.astype(np.int64))
            return model
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        model = HistGradientBoostingClassifier(
            max_iter=int(self.n_estimators),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=31,
            min_samples_leaf=50,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
        # scikit-learn cannot bin a column without a single value (e.g. no prices at all)
        self.empty_columns_ = np.asarray(np.isnan(x).all(axis=0), dtype=np.bool_)
        with threadpool_limits(limits=threads if threads > 0 else None, user_api="openmp"):
            model.fit(_fill_empty(x, self.empty_columns_), y.astype(np.int64))
        return model

    def _raw(self, model: Any, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if x.shape[0] == 0:
            return np.zeros(0)
        if self.model == "hgb":
            from threadpoolctl import threadpool_limits

            threads = int(self.num_threads)
            with threadpool_limits(limits=threads if threads > 0 else None, user_api="openmp"):
                p = model.predict_proba(_fill_empty(x, self.empty_columns_))[:, 1]
            return np.asarray(p, dtype=np.float64)
        return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)

    def _probability(
        self, x: npt.NDArray[np.float64], ctx: FeatureContext, clients: IntArray, products: IntArray
    ) -> npt.NDArray[np.float64]:
        if self.model_ is None:
            seg = ctx.client_segment[clients]
            seg_row = np.where(seg >= 0, seg, ctx.segment_popularity.shape[0] - 1)
            return np.asarray(ctx.segment_popularity[seg_row, products], dtype=np.float64)
        raw = self._raw(self.model_, x)
        if self.calibrator_ is None:
            return raw
        cal = np.asarray(self.calibrator_.predict(raw), dtype=np.float64)
        return (1.0 - _TIE_WEIGHT) * cal + _TIE_WEIGHT * raw

    def _restore(self, book: Book, as_of: pd.Timestamp) -> None:
        # the snapshot is a function of the Book, as_of and the horizon, so it is not saved
        if self.model_ is not None and self.model != "lightgbm":
            raise ArtifactError(f"a saved Ranker(model={self.model!r}) holds LightGBM trees")
        self.context_ = build_context(book, as_of, self.horizon_)

    # ------------------------------------------------------------------ scoring
    def _score_rows(self, rows: IntArray) -> FloatArray:
        ctx = self.context_
        out = np.zeros((rows.size, ctx.holdings.shape[1]), dtype=np.float32)
        for lo in range(0, rows.size, _BLOCK):
            block = rows[lo : lo + _BLOCK]
            scores = [b.score(block) for b in self.bases_]
            local, clients, products, x = self._features(ctx, scores, block)
            p = self._probability(x, ctx, clients, products)
            out[lo + local, products] = np.clip(p, _PROB_FLOOR, 1.0)
        return out

    def _fit_client(self, held: IntArray, weights: npt.NDArray[np.float64]) -> FloatArray:
        # a client the fitted book does not know: no attributes, no history, only its holdings
        ctx = context_for_holdings(self.context_, held)
        scores = [b.fit_client(held, weights)[None, :] for b in self.bases_]
        row = np.zeros(1, dtype=np.int64)
        out = np.zeros(ctx.holdings.shape[1], dtype=np.float32)
        _, clients, products, x = self._features(ctx, scores, row)
        out[products] = np.clip(self._probability(x, ctx, clients, products), _PROB_FLOOR, 1.0)
        return out

    def contributions(
        self, clients: npt.ArrayLike, products: npt.ArrayLike, n: int = 3
    ) -> pd.DataFrame:
        """Explain offers by the features that pushed their probability up most.

        With LightGBM the contributions are the trees' exact per-prediction attributions
        (``pred_contrib``, in log-odds); with scikit-learn's trees they are approximated by how
        much the raw probability drops when the feature is set to missing.

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
            list of ``{"feature", "value", "contribution"}``, strongest first) and ``reason``
            (a sentence built from them).

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
        ctx = self.context_
        rows = np.asarray(clients, dtype=np.int64).reshape(-1)
        prods = np.asarray(products, dtype=np.int64).reshape(-1)
        validate_params(
            "Ranker.contributions",
            {"n": n},
            {"n": [Interval(numbers.Integral, 1, None, closed="left")]},
        )
        scores = [np.asarray(b.score(rows), dtype=np.float32) for b in self.bases_]
        _names, x = pair_features(ctx, rows, prods, self.features)
        base_cols = []
        for s in scores:
            score = s[np.arange(rows.size), prods].astype(np.float64)
            # rank of the offer among the products of its client, as the candidates count it
            rank = 1.0 + (s > s[np.arange(rows.size), prods][:, None]).sum(axis=1)
            base_cols += [score, np.minimum(rank, float(self.n_candidates) + 1.0)]
        x = np.column_stack([*base_cols, x])
        prob = self._probability(x, ctx, rows, prods)
        contrib = self._contributions(x)
        top = np.argsort(-contrib, axis=1, kind="stable")[:, :n]
        evidence, reasons = [], []
        for i in range(rows.size):
            items = [
                {
                    "feature": self.feature_names_[j],
                    "value": float(x[i, j]),
                    "contribution": round(float(contrib[i, j]), 4),
                }
                for j in top[i]
                if contrib[i, j] > 0
            ]
            evidence.append(items)
            reasons.append(_sentence(items, ctx, int(prods[i])))
        return pd.DataFrame(
            {
                Columns.client: ctx.book.client_ids.to_external(rows),
                Columns.product: ctx.book.product_ids.to_external(prods),
                Columns.propensity: prob,
                Columns.evidence: evidence,
                Columns.reason: reasons,
            }
        )

    def _contributions(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.model_ is None or x.shape[0] == 0:
            return np.zeros_like(x)
        if self.model == "lightgbm":
            out = self.model_.predict_proba(x, pred_contrib=True)
            return np.asarray(out, dtype=np.float64)[:, : x.shape[1]]
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


def _fill_empty(
    x: npt.NDArray[np.float64], empty: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Zero the columns that held no value in training, as that model saw them."""
    if not empty.any():
        return x
    out = x.copy()
    out[:, empty] = 0.0
    return out


_PHRASES: dict[str, str] = {
    "holds_lower_tier": "holds a lower tier of {family}",
    "family_held": "already works with {family}",
    "need": "stated a need for it",
    "family_need": "stated a need for {family}",
    "offers_accepted": "accepted an offer of it before",
    "family_offers_accepted": "accepted an offer in {family} before",
}


def _sentence(items: list[dict[str, Any]], ctx: FeatureContext, product: int) -> str:
    """Turn the strongest positive contributions of one offer into a short sentence."""
    family = str(ctx.families[ctx.product_family[product]]) if len(ctx.families) else ""
    parts: list[str] = []
    for item in items:
        name, value = str(item["feature"]), float(item["value"])
        if np.isnan(value):
            continue
        if name in _PHRASES and value > 0:
            parts.append(_PHRASES[name].format(family=family))
        elif name == "segment_lift" and value > 1:
            parts.append(f"clients in its segment take it {value:.1f}x more often")
        elif name == "tier_gap" and value > 0:
            parts.append(f"the next tier up in {family}")
        elif name in ("popularity", "segment_popularity"):
            parts.append(f"held by {value:.0%} of comparable clients")
        elif name in ("trend", "trend_share"):
            parts.append("taken by more clients lately")
        elif name == "days_since_family_decline" or (name == "offers_declined" and value == 0):
            parts.append("no recent decline")
        elif name.endswith(("_score", "_rank")):
            parts.append(f"ranked high by {name.rsplit('_', 1)[0]}")
        else:
            parts.append(f"{name.replace('_', ' ')} = {value:g}")
    unique = list(dict.fromkeys(parts))
    if not unique:
        return "Proposed by the learned ranking."
    text = "; ".join(unique)
    return text[0].upper() + text[1:] + "."
