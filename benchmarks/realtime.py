"""Benchmark: one client at a time, ``Recommender.recommend_one`` against raw implicit.

Run by hand::

    python benchmarks/realtime.py                      # 50k clients x 2k products
    python benchmarks/realtime.py --clients 200000 --calls 1000

For the ALS scorer, item-kNN, the default scorer (the learned Ranker) and the response model
(``scorers.Response``, the chance an offer is accepted), each with the
route-sales policy, it times ``--calls`` calls of ``recommend_one(client, k=10)`` on clients
drawn at random (seeded), with ``explain=False`` and ``explain=True``, and reports p50 and p99 in
milliseconds. The comparison is implicit's public one-client path with one thread:
``model.recommend(0, row, N=10, recalculate_user=True, filter_already_liked_items=True,
filter_items=blocked)`` (fold the client in, score, filter its holdings and the products the
policy blocks, top 10).

It also measures what keeping BLAS to one thread costs per call: ``threadpool_limits(1)`` built
on each call, and a ``ThreadpoolController`` built once whose ``limit`` is entered on each call.
One client must never fan out to threads: a serving process sets ``OPENBLAS_NUM_THREADS=1``
(``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``) in its environment before numpy is imported.

With fresh data, one new event per call (a complaint, a decline, a stated need), as a CRM sends
the record it has just logged with the request: the event rules run again on the client's stored
and new events, the other rules keep their fitted blocks.

Targets: p99 < 0.5 ms without explanations and < 2 ms with them (item-kNN, ALS); the default
Ranker p99 < 2 ms without explanations and < 4 ms with; the response model p99 < 2 ms; one new
event per call p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from crosssell import Recommender
from crosssell.rules import route_sales
from crosssell.scorers import ALS, ItemKNN, Response

# the shared synthetic Book builder sits beside this script
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def latencies(fn: Callable[[Any], Any], clients: list[Any], warmup: int = 50) -> np.ndarray:
    """Seconds per call of ``fn(client)``, one call per client (after a few warm-up calls)."""
    for c in clients[:warmup]:
        fn(c)
    out = np.empty(len(clients), dtype=np.float64)
    gc.disable()
    try:
        for i, c in enumerate(clients):
            t0 = time.perf_counter()
            fn(c)
            out[i] = time.perf_counter() - t0
    finally:
        gc.enable()
    return out


def row(name: str, t: np.ndarray, note: str = "") -> None:
    """Print one line of the table: p50 and p99 in milliseconds."""
    p50, p99 = np.percentile(t, [50, 99]) * 1e3
    print(f"{name:<58} {p50:>8.3f} {p99:>8.3f}  {note}")


def main() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    from _books import AS_OF, make_book

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--factors", type=int, default=64)
    args = parser.parse_args()

    book = make_book(args.clients, args.products)
    rng = np.random.default_rng(0)
    ids = book.client_ids.external
    picked = ids[rng.integers(0, len(ids), args.calls)].tolist()
    blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    print(
        f"\n## {len(ids):,} clients x {len(book.product_ids):,} products, {args.calls:,} calls; "
        f"load average {os.getloadavg()[0]:.1f}; thread pools {blas}; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    print(f"{'step':<58} {'p50 ms':>8} {'p99 ms':>8}  note")

    controller = ThreadpoolController()
    recs = {}
    for label, scorer in (
        ("ALS", ALS(factors=args.factors, iterations=15, random_state=0)),
        ("item-kNN", ItemKNN()),
        ("default (Ranker)", None),
        ("response model", Response()),
    ):
        rec = Recommender(scorer=scorer, policy=route_sales(), k=10).fit(book, AS_OF)
        recs[label] = rec
        for explain in (False, True):
            t = latencies(lambda c, r=rec, e=explain: r.recommend_one(c, explain=e), picked)
            row(f"{label}: recommend_one, explain={explain}", t)
        # fresh data (what a CRM sends with the request): a complaint opened today blocks every
        # offer; a decline of one product today, or a stated need, leaves the others to choose
        day = str(rec.as_of_.date())
        products = book.product_ids.external[rng.integers(0, len(book.product_ids), len(picked))]
        chosen = dict(zip(picked, products.tolist(), strict=True))
        for kind in ("complaint_opened", "offer_declined", "need"):
            for explain in (False, True):
                t = latencies(
                    lambda c, r=rec, d=day, k=kind, e=explain, w=chosen: r.recommend_one(
                        c,
                        events=[{"date": d, "type": k, "product_id": w[c]}],
                        explain=e,
                    ),
                    picked,
                )
                row(f"{label}: recommend_one(events=one {kind}), explain={explain}", t)
        # what a one-thread guard per call costs
        t = latencies(
            lambda c, r=rec: _with(threadpool_limits(limits=1, user_api="blas"), r, c), picked
        )
        row(f"{label}: + threadpool_limits(1) per call, explain=False", t)
        t = latencies(
            lambda c, r=rec: _with(controller.limit(limits=1, user_api="blas"), r, c), picked
        )
        row(f"{label}: + prebuilt controller.limit(1) per call, explain=False", t)

    # raw implicit: fold the client in, score, filter holdings and policy blocks, top 10
    rec = recs["ALS"]
    scorer = rec.scorer_
    x = rec.matrix_.client_product.astype(np.float32).tocsr()
    model = AlternatingLeastSquares(
        factors=scorer.product_factors_.shape[1],
        regularization=scorer.regularization_,
        alpha=scorer.alpha,
        num_threads=1,
    )
    model.item_factors = scorer.product_factors_
    model.user_factors = scorer.client_factors_
    suppression = rec.suppression_
    rows = book.client_ids.to_index(picked)
    held = [x[r] for r in rows]
    # the policy's blocks of each client, for implicit's filter_items (what a caller would pass)
    blocked = [np.flatnonzero(suppression.mask([r])[0]) for r in rows]
    order = list(range(len(rows)))

    def raw(i: int) -> Any:
        return model.recommend(
            0,
            held[i],
            N=10,
            recalculate_user=True,
            filter_already_liked_items=True,
            filter_items=blocked[i],
        )

    with threadpool_limits(limits=1, user_api="blas"):
        t = latencies(raw, order)
    row("implicit recommend(recalculate_user=True, filtered), 1 thread", t)
    t = latencies(
        lambda i: model.recommend(
            int(rows[i]), x[int(rows[i])], N=10, filter_already_liked_items=True
        ),
        order,
    )
    row("implicit recommend(stored factors, holdings filtered)", t)
    t0 = time.perf_counter()
    for _ in range(1000):
        with threadpool_limits(limits=1, user_api="blas"):
            pass
    per_guard = (time.perf_counter() - t0) / 1000 * 1e3
    t0 = time.perf_counter()
    for _ in range(1000):
        with controller.limit(limits=1, user_api="blas"):
            pass
    per_ctrl = (time.perf_counter() - t0) / 1000 * 1e3
    print(
        f"empty guard: threadpool_limits {per_guard:.3f} ms, prebuilt controller.limit "
        f"{per_ctrl:.3f} ms per call; load average now {os.getloadavg()[0]:.1f}"
    )


def _with(guard: Any, rec: Recommender, client: Any) -> Any:
    with guard:
        return rec.recommend_one(client, explain=False)


if __name__ == "__main__":
    main()
