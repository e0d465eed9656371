"""The response model's acceptance probability as a point-in-time feature of the ranker.

At each date the ranker builds a context for (the start of each training window, and ``as_of``
for prediction), a :class:`~crosssell.scorers.Response` is fitted on the offers answered on or
before that date only, so an answer given later can never inform the feature that predicts it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from crosssell.scorers.response import Response

if TYPE_CHECKING:
    from crosssell.scorers._features import FeatureContext, FeatureFunction

__all__ = ["RESPONSE_FEATURES", "ResponseFeature"]

#: the columns the response model adds to the ranker's features
RESPONSE_FEATURES = ("response_acceptance", "response_answers")

IntArray = npt.NDArray[np.int64]
FloatArray64 = npt.NDArray[np.float64]


class ResponseFeature:
    """Fit a response model per context date and read its chance of acceptance for pairs.

    ``template`` is a :class:`Response` whose parameters are copied (it is never fitted
    itself), or None for the default one. Fits are cached per (Book, date): the blocks of one
    training window share one fit.

    Examples
    --------
    >>> import numpy as np, crosssell as cs
    >>> from crosssell.scorers._features import build_context
    >>> ctx = build_context(cs.datasets.demo(), "2025-06-30", "90D")
    >>> acceptance, answers = ResponseFeature(None).columns()
    >>> p = acceptance[1](ctx, np.array([0, 0]), np.array([0, 1]))
    >>> bool(((p > 0) & (p < 1)).all())
    True
    """

    def __init__(self, template: Response | None) -> None:
        self.template = template
        self._fits: dict[tuple[int, Any], tuple[Any, Response, IntArray, FloatArray64]] = {}
        self._lock = threading.Lock()

    def columns(self) -> list[tuple[str, FeatureFunction]]:
        """Return the (name, function) pairs the ranker appends to its features."""
        return [(RESPONSE_FEATURES[0], self.acceptance), (RESPONSE_FEATURES[1], self.answers)]

    def keep_only(self, ctx: FeatureContext) -> None:
        """Drop every cached fit but the one at ``ctx``'s date (the training windows' ones)."""
        with self._lock:
            key = (id(ctx.book), ctx.as_of)
            self._fits = {k: v for k, v in self._fits.items() if k == key}

    def _model(self, ctx: FeatureContext) -> tuple[Response, IntArray, FloatArray64]:
        key = (id(ctx.book), ctx.as_of)
        with self._lock:
            hit = self._fits.get(key)
            # the Book is kept in the entry so that its id is never reused by another one
            if hit is None or hit[0] is not ctx.book:
                params = {} if self.template is None else self.template.get_params(deep=False)
                model = Response(**params).fit(ctx.book.matrix(ctx.as_of), ctx.book)
                n_clients = len(ctx.book.client_ids)
                groups, alpha, beta = model.posterior(np.arange(n_clients))
                answers = np.maximum(alpha + beta - model.strengths_[1], 0.0)
                hit = (ctx.book, model, groups, answers)
                self._fits[key] = hit
        return hit[1], hit[2], hit[3]

    def _rows(self, ctx: FeatureContext, clients: IntArray) -> IntArray:
        # a one-client context (a client the Book does not know) has row 0 for that client:
        # the response model scores it as a client of no known segment
        if ctx.holdings.shape[0] != len(ctx.book.client_ids):
            return np.full(clients.size, -1, dtype=np.int64)
        return np.asarray(clients, dtype=np.int64)

    def acceptance(
        self, ctx: FeatureContext, clients: IntArray, products: IntArray
    ) -> FloatArray64:
        """Chance that each client accepts an offer of each product, learned up to ``ctx``."""
        model, _, _ = self._model(ctx)
        rows = self._rows(ctx, clients)
        if rows.size == 0:
            return np.zeros(0)
        uniq, inverse = np.unique(rows, return_inverse=True)
        scores = model.score(uniq)
        return np.asarray(scores[inverse, products], dtype=np.float64)

    def answers(self, ctx: FeatureContext, clients: IntArray, products: IntArray) -> FloatArray64:
        """Answered offers of each product in each client's segment up to ``ctx`` (decayed)."""
        _, groups, answers = self._model(ctx)
        rows = self._rows(ctx, clients)
        group = np.where(rows >= 0, groups[np.maximum(rows, 0)], answers.shape[0] - 1)
        return np.asarray(answers[group, products], dtype=np.float64)
