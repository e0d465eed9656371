"""Benchmark: the full pipeline (fit, batch recommend) against raw implicit and the bare floor.

Run by hand::

    python benchmarks/recommend.py                 # 200k clients x 1k products, ~1M holdings
    python benchmarks/recommend.py --large         # also 1M x 2k, ~5M holdings
    python benchmarks/recommend.py --repeats 3 --factors 64 --memory
    python benchmarks/recommend.py --ranker        # also the learned Ranker (ALS among its bases)

The Book comes from ``benchmarks/_books.py``: product families of three tiers with prices, a
clients table (segments, satisfaction, do_not_contact) and events (complaints, offers made and
declined, churn signals, renewals due) touching a few percent of clients each. Steps timed:

- ALS fit: implicit's ``AlternatingLeastSquares.fit`` on the same matrix and regularisation,
  against ``Recommender(scorer=ALS(...)).fit`` (matrix build, candidates, cold-start fallback
  included); the route-sales policy's ``evaluate`` at fit is timed on its own;
- batch top-10 for every client: implicit's ``recommend(userids, X, N=10,
  filter_already_liked_items=True)`` against crosssell's ``recommend(k=10)`` (typed, valued,
  explained, policy-filtered), ``recommend(explain=False)``, and ``policy=None``;
- the floor: chunked ``U @ V.T``, ``argpartition`` and a sort of the ten, no filter (plain
  numpy on one thread plus BLAS's threads).

With ``--ranker``, the learned second stage is timed against the same implicit runs:
``Recommender(scorer=Ranker(base=(popularity, itemknn, cooccurrence, als)))``'s fit (its
defaults: the trees on one thread, the base scorers on every core) against implicit's ALS fit,
its batch recommend (policy, explained and not) against implicit's filtered recommend, and
``recommend_one`` for 2,000 random clients, one at a time (p50 and p99, with and without
explanations). Where the Ranker's time goes is printed too: for the fit, its steps (ALS
at each date, the training windows, then the trees, the calibration and the prediction state,
which is also shown on its own since it may be built while the last trees grow); for
scoring, candidates (the base scorers and their top-k), features, and the trees.

crosssell scores blocks of clients on ``n_jobs`` threads (default: every core), as implicit's
batch recommend does; the ``n_jobs=1`` row shows the single-thread figure beside it.

Times are medians of ``--repeats`` runs; ratios are computed within the run, and the two sides
of the fit and recommend ratios run in turns (crosssell, implicit, crosssell, ...) so that a
change of load on a shared machine does not fall on one side only. With ``--memory``
two more runs per step measure memory: one traced by ``tracemalloc`` (numpy and Python
allocations only), one watched for the growth of the resident set (everything: Arrow's
buffers, BLAS, implicit's C++, and the result the step returns). The size of the offers frame
is shown beside them: what is above the frame is the working set, bounded by
``n_jobs x batch_size x n_products``."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from crosssell._topk import masked_fill, top_k
from crosssell.scorers import ALS
from crosssell.scorers.factorization import auto_regularization

# the shared synthetic Book builder sits beside this script
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def run_floor(
    u: np.ndarray, v: np.ndarray, *, k: int = 10, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """The bare floor: chunked U·Vᵀ, argpartition and a sort of the k, no filter, no ties rule.

    Plain numpy on the calling thread (BLAS uses its own threads), as one would write it by
    hand; crosssell's own selection is not used, so a faster crosssell top-k cannot lower it.
    """
    n_clients = u.shape[0]
    idx = np.empty((n_clients, k), dtype=np.int64)
    val = np.empty((n_clients, k), dtype=np.float32)
    for start in range(0, n_clients, chunk):
        stop = min(start + chunk, n_clients)
        scores = u[start:stop] @ v.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-best, axis=1)
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        val[start:stop] = np.take_along_axis(best, order, axis=1)
    return idx, val


class PeakRSS:
    """Highest resident set size while the block runs, above its level at the start (MiB).

    A thread reads ``/proc/self/statm`` every millisecond, so that what tracemalloc cannot see
    (Arrow's buffers, BLAS, implicit's C++) is counted too. ``nan`` where there is no /proc.
    """

    def __init__(self) -> None:
        self.mib = float("nan")
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def __enter__(self) -> PeakRSS:
        if not os.path.exists("/proc/self/statm"):
            return self
        # hand freed memory back first, so that the step's growth is not hidden in it
        gc.collect()
        pa.default_memory_pool().release_unused()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self._start = self._peak = self._rss()

        def sample() -> None:
            while not self._stop.wait(0.001):
                self._peak = max(self._peak, self._rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not hasattr(self, "_thread"):
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.mib = (self._peak - self._start) / 2**20


def _memory_run(fn: Callable[[], Any]) -> tuple[float, float]:
    """Peak traced MiB and peak RSS growth MiB of one run of ``fn``."""
    tracemalloc.start()
    fn()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    with PeakRSS() as rss:
        result = fn()
    del result
    return traced, rss.mib


def measure(
    fn: Callable[[], Any], repeats: int, *, memory: bool
) -> tuple[float, tuple[float, float], Any]:
    """Median seconds over ``repeats`` runs, memory of more runs (see below), and a result.

    Tracing slows Python-level allocation badly, so memory is measured in separate runs and
    only when asked (``nan`` otherwise): one traced by tracemalloc (numpy and Python), one
    watched by :class:`PeakRSS` (everything the process holds).
    """
    times = []
    result = None
    for _ in range(repeats):
        # the last run's result is let go first: a caller does not hold two batches at once,
        # and holding it would make every run write into memory the system has to hand out anew
        result = None
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    peak = _memory_run(fn) if memory else (float("nan"), float("nan"))
    return statistics.median(times), peak, result


def measure_pair(
    first: Callable[[], Any], second: Callable[[], Any], repeats: int, *, memory: bool
) -> tuple[tuple[float, tuple[float, float], Any], tuple[float, tuple[float, float], Any]]:
    """:func:`measure` for two steps run in turns (a, b, a, b, ...), so that a change of load
    on a shared machine falls on both sides of a ratio rather than on one."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[Any] = [None, None]
    for _ in range(repeats):
        for i, fn in enumerate((first, second)):
            results[i] = None  # as in measure
            t0 = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - t0)
    nan = (float("nan"), float("nan"))
    peaks = [_memory_run(first), _memory_run(second)] if memory else [nan, nan]
    return (
        (statistics.median(times[0]), peaks[0], results[0]),
        (statistics.median(times[1]), peaks[1], results[1]),
    )


def bench(
    n_clients: int,
    n_products: int,
    *,
    repeats: int,
    factors: int,
    iterations: int,
    memory: bool,
    batch_size: int,
    ranker: bool = False,
) -> None:
    from implicit.als import AlternatingLeastSquares

    from _books import AS_OF, make_book
    from crosssell import Recommender
    from crosssell.rules import RuleContext, route_sales

    book = make_book(n_clients, n_products)
    matrix = book.matrix(AS_OF)
    x = matrix.client_product.astype(np.float32)
    n_clients, n_products = x.shape
    print(
        f"\n## {n_clients:,} clients x {n_products:,} products, {x.nnz:,} active holdings, "
        f"{len(book.events):,} events; load average {os.getloadavg()[0]:.1f}"
    )
    als = ALS(factors=factors, iterations=iterations, random_state=0)

    def cs_fit() -> Recommender:
        return Recommender(scorer=als, k=10, batch_size=batch_size).fit(book, AS_OF)

    # the regularisation "auto" resolves to, so that implicit fits the same model
    reg = auto_regularization(int(x.nnz), int(x.shape[1]))

    def raw_fit() -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=reg,
                iterations=iterations,
                random_state=0,
                use_gpu=False,
            )
            model.fit(x, show_progress=False)
        return model

    (cs_fit_t, cs_fit_mem, rec), (raw_fit_t, raw_fit_mem, model) = measure_pair(
        cs_fit, raw_fit, repeats, memory=memory
    )
    policy = route_sales()
    ctx = RuleContext(book=book, as_of=rec.as_of_, holdings=rec.candidates_.holdings)
    eval_t, eval_mem, suppression = measure(lambda: policy.evaluate(ctx), repeats, memory=memory)
    # The same fitted scorer with the policy: only the non-learned part of fit is redone.
    rec_pol = Recommender(**{**rec.get_params(deep=False), "policy": policy})
    rec_pol._validate_params()
    prep_t, _, _ = measure(
        lambda: rec_pol._prepare(book, rec.matrix_, rec.scorer_, rec.fallback_), 1, memory=False
    )
    # what fit adds to the learning itself, without the noise of a second ALS fit: the Book's
    # matrix, candidates, offer map, reason words and propensity scale
    bare_t, _, _ = measure(
        lambda: (
            book.matrix(AS_OF),
            rec._prepare(book, rec.matrix_, rec.scorer_, rec.fallback_),
        ),
        repeats,
        memory=False,
    )
    # numba compiles the loops on first use (or loads them from its cache): not timed here
    rec_pol._warm_up()
    rec.recommend(book.client_ids.external[:1000])

    userids = np.arange(n_clients)
    (raw_rec_t, raw_rec_mem, (raw_idx, _)), (pol_t, pol_mem, offers) = measure_pair(
        lambda: model.recommend(userids, x, N=10, filter_already_liked_items=True),
        rec_pol.recommend,
        repeats,
        memory=memory,
    )
    pol_ne_t, pol_ne_mem, offers_ne = measure(
        lambda: rec_pol.recommend(explain=False), repeats, memory=memory
    )
    rec_pol.set_params(n_jobs=1)
    one_t, _, _ = measure(rec_pol.recommend, repeats, memory=False)
    rec_pol.set_params(n_jobs=-1)
    none_t, none_mem, _ = measure(rec.recommend, repeats, memory=memory)
    none_ne_t, none_ne_mem, _ = measure(
        lambda: rec.recommend(explain=False), repeats, memory=memory
    )
    u, v = rec.scorer_.client_factors_, rec.scorer_.product_factors_
    floor_t, floor_mem, _ = measure(
        lambda: run_floor(u, v, k=10, chunk=batch_size), repeats, memory=memory
    )

    # the same factors through both selection paths must give the same offers
    n_check = min(2000, n_clients)
    mine = top_k(masked_fill(model.user_factors[:n_check] @ model.item_factors.T, x[:n_check]), 10)[
        0
    ]
    same = float((mine == raw_idx[:n_check]).all(axis=1).mean())

    def frame_mib(frame: pd.DataFrame) -> float:
        return float(frame.memory_usage(deep=True).sum()) / 2**20

    rows = [
        ("implicit ALS fit", raw_fit_t, raw_fit_mem, ""),
        (
            "crosssell Recommender(ALS).fit",
            cs_fit_t,
            cs_fit_mem,
            f"{cs_fit_t / raw_fit_t:.2f}x raw (<= 1.1)",
        ),
        (
            "  fit's non-learned part, no policy",
            bare_t,
            (float("nan"),) * 2,
            f"{bare_t / raw_fit_t:.0%} of implicit's fit",
        ),
        ("route_sales().evaluate (at fit)", eval_t, eval_mem, f"{len(suppression.log):,} blocks"),
        ("  fit's non-learned part with the policy", prep_t, (float("nan"),) * 2, ""),
        ("implicit recommend(all, N=10, filtered)", raw_rec_t, raw_rec_mem, ""),
        ("floor: chunked U·Vᵀ + top_k", floor_t, floor_mem, ""),
        (
            "crosssell recommend(k=10), policy",
            pol_t,
            pol_mem,
            f"{pol_t / raw_rec_t:.2f}x raw (<= 0.25), {pol_t / floor_t:.2f}x floor (<= 2); "
            f"offers frame {frame_mib(offers):.0f} MiB",
        ),
        (
            "  explain=False, policy",
            pol_ne_t,
            pol_ne_mem,
            f"{pol_ne_t / raw_rec_t:.2f}x raw, {pol_ne_t / floor_t:.2f}x floor; "
            f"offers frame {frame_mib(offers_ne):.0f} MiB",
        ),
        (
            "  n_jobs=1 (blocks on one thread)",
            one_t,
            (float("nan"),) * 2,
            f"{one_t / raw_rec_t:.2f}x raw, {one_t / floor_t:.2f}x floor",
        ),
        ("  policy=None", none_t, none_mem, f"policy adds {pol_t / none_t - 1:+.0%} (<= +15%)"),
        (
            "  policy=None, explain=False",
            none_ne_t,
            none_ne_mem,
            f"policy adds {pol_ne_t / none_ne_t - 1:+.0%} (<= +15%)",
        ),
    ]
    if ranker:
        rows += bench_ranker(book, raw_fit, raw_rec_t, repeats=repeats, batch_size=batch_size)
    print(f"{'step':<44} {'median s':>9} {'traced':>7} {'RSS+':>7}  note")
    for name, t, (traced, rss), note in rows:
        print(f"{name:<44} {t:>9.2f} {traced:>7.0f} {rss:>7.0f}  {note}")
    print(
        f"regularization_={reg:.1f}; batch_size={batch_size}; {len(offers):,} offers; on "
        f"{n_check:,} clients the same factors give the same top-10 as implicit for {same:.3f} "
        f"of clients; load average now {os.getloadavg()[0]:.1f}"
    )


def bench_ranker(
    book: Any,
    raw_fit: Callable[[], Any],
    raw_rec_t: float,
    *,
    repeats: int,
    batch_size: int,
) -> list[tuple[str, float, tuple[float, float], str]]:
    """Rows of the table for the Ranker, its ratios taken against implicit's times of this run.

    The fit runs in turns with implicit's ALS fit (``raw_fit``), as the other fit ratio does:
    implicit's own fit moves with the load of a shared machine (5 to 9 s at 200k x 1k).
    """
    import cProfile
    import pstats

    import lightgbm  # noqa: F401 - imported once here, so that no timed fit pays for it

    from _books import AS_OF
    from crosssell import Recommender
    from crosssell.rules import route_sales
    from crosssell.scorers import Ranker

    nan = (float("nan"), float("nan"))
    ranker = Ranker(base=("popularity", "itemknn", "cooccurrence", "als"))
    (fit_t, _, rec), (raw_fit_t, _, _) = measure_pair(
        lambda: Recommender(scorer=ranker, k=10, batch_size=batch_size, policy=route_sales()).fit(
            book, AS_OF
        ),
        raw_fit,
        max(1, repeats // 2),
        memory=False,
    )
    rec._warm_up()
    rec.recommend(book.client_ids.external[:1000])
    rec_t, _, offers = measure(rec.recommend, repeats, memory=False)
    rec_ne_t, _, _ = measure(lambda: rec.recommend(explain=False), repeats, memory=False)

    # where scoring's time goes: one block of clients, one thread, stage by stage
    scorer = rec.scorer_
    block = np.arange(min(batch_size, len(book.client_ids)))
    t0 = time.perf_counter()
    # as scoring does: popularity by segment scores one row per segment
    scores, groups = scorer._base_scores(scorer.bases_, block)
    t1 = time.perf_counter()
    if scorer.model_ is None:
        # popularity's order: the candidate set and its two popularity columns, no features
        _, clients, _, _, _ = scorer._pairs_probability(scorer.context_, scores, block, groups)
        t2 = t3 = time.perf_counter()
        features, pairs = 0.0, clients.size
    else:
        profile = cProfile.Profile()
        profile.enable()
        _, clients, products, feats = scorer._features(scorer.context_, scores, block, groups)
        profile.disable()
        t2 = time.perf_counter()
        scorer._probability(feats, scorer.context_, clients, products)
        t3 = time.perf_counter()
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        features = sum(v[3] for k, v in stats.items() if k[2] == "pair_features")
        pairs = feats.shape[0]
    bases, candidates, trees = t1 - t0, t2 - t1 - features, t3 - t2
    total = t3 - t0

    rng = np.random.default_rng(0)
    ids = rng.choice(book.client_ids.external, size=min(2000, len(book.client_ids)), replace=False)

    def one_by_one(explain: bool) -> tuple[float, float]:
        times = []
        for client in ids:
            t0 = time.perf_counter()
            rec.recommend_one(client, explain=explain)
            times.append(time.perf_counter() - t0)
        ms = np.asarray(times) * 1000
        return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))

    one_by_one(False)  # warm: the first calls compile and fill caches
    p50_ne, p99_ne = one_by_one(False)
    p50, p99 = one_by_one(True)
    return [
        (
            "Ranker(+ALS) fit, route_sales",
            fit_t,
            nan,
            f"{fit_t / raw_fit_t:.2f}x implicit's ALS fit in turns with it ({raw_fit_t:.1f} s; "
            "<= 3); "
            f"training rows {int(scorer.training_['rows'].sum()):,}; "
            + ("trees" if scorer.uses_model_ else "popularity's order (trees no better)"),
        ),
        *[
            (f"  {step}", seconds, nan, f"{seconds / fit_t:.0%} of the last fit")
            for step, seconds in getattr(scorer, "_fit_seconds", {}).items()
        ],
        (
            "Ranker recommend(k=10), policy",
            rec_t,
            nan,
            f"{rec_t / raw_rec_t:.2f}x implicit's filtered recommend; {len(offers):,} offers",
        ),
        (
            "  explain=False",
            rec_ne_t,
            nan,
            f"{rec_ne_t / raw_rec_t:.2f}x implicit's filtered recommend (<= 0.5)",
        ),
        (
            f"  one block of {block.size:,} clients, one thread",
            total,
            nan,
            f"base scorers {bases / total:.0%}, candidates {candidates / total:.0%}, "
            f"features {features / total:.0%}, trees {trees / total:.0%}; "
            f"{pairs / block.size:.0f} candidates per client",
        ),
        (
            "Ranker recommend_one, no explanation",
            p50_ne / 1000,
            nan,
            f"p50 {p50_ne:.2f} ms, p99 {p99_ne:.2f} ms (< 2)",
        ),
        (
            "Ranker recommend_one, explained",
            p50 / 1000,
            nan,
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (< 4)",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--clients", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--memory", action="store_true", help="one extra traced run per step")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--large", action="store_true", help="also run 1M clients x 2k products")
    parser.add_argument("--ranker", action="store_true", help="also time the learned Ranker")
    args = parser.parse_args()
    sizes = [(args.clients, args.products)] + ([(1_000_000, 2_000)] if args.large else [])
    for n_clients, n_products in sizes:
        bench(
            n_clients,
            n_products,
            repeats=args.repeats,
            factors=args.factors,
            iterations=args.iterations,
            memory=args.memory,
            batch_size=args.batch_size,
            ranker=args.ranker,
        )


if __name__ == "__main__":
    main()
