"""Benchmark: tuning by grid, by random draws from ranges, and by Optuna with pruning.

Run by hand::

    python benchmarks/tune.py                  # synthetic book, 3,000 clients
    python benchmarks/tune.py --retail PATH    # also Online Retail II (transactions.parquet)

Each search tunes item-kNN (neighbours, similarity) on the same cutoffs with crosssell's rule:
the choice is made on the earlier cutoffs, the last one reports. It prints, per search: trials
run, trials pruned, wall time, the held-out score of the chosen configuration, and how long it
took to first choose a configuration at least as good (held-out) as the grid's choice.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import crosssell as cs
from crosssell.evaluation import IntRange, tune
from crosssell.scorers import ItemKNN


def run(name: str, book: cs.Book, cutoffs: list[str], horizon: str, **kwargs: object) -> None:
    grid = {"scorer": [ItemKNN()], "scorer__neighbours": [5, 10, 20, 40, 80, 160],
            "scorer__metric": ["cosine", "bm25"]}  # fmt: skip
    ranged = {"scorer": [ItemKNN()], "scorer__neighbours": IntRange(5, 200, log=True),
              "scorer__metric": ["cosine", "bm25"]}  # fmt: skip
    common = {"horizon": horizon, "metric": "ndcg@10", "progress": False}
    searches = {
        "grid (12 points)": lambda: tune(
            cs.Recommender(), book, grid, cutoffs, search="grid", **common
        ),
        "random, ranges (12)": lambda: tune(
            cs.Recommender(), book, ranged, cutoffs, n_trials=12, **common
        ),
        "optuna, ranges, pruning (12)": lambda: tune(
            cs.Recommender(), book, ranged, cutoffs, n_trials=12, use_optuna=True, **common
        ),
    }
    print(f"\n## {name}: cutoffs {', '.join(cutoffs)}, horizon {horizon}")
    print(f"{'search':<30} {'trials':>6} {'pruned':>6} {'seconds':>8} {'held-out':>9} "
          f"{'s to reach grid':>16}")  # fmt: skip
    target = None
    for label, search in searches.items():
        t0 = time.perf_counter()
        result = search()
        seconds = time.perf_counter() - t0
        table = result.results
        if target is None:
            target = result.held_out
        # running choice: after each trial, the best selection so far, and its held-out score
        best, reach, spent = -np.inf, None, 0.0
        for row in table.itertuples():
            spent += row.fit_seconds
            if np.isfinite(row.selection_score) and row.selection_score > best:
                best, held = row.selection_score, row.held_out_score
                if reach is None and held >= target - 1e-12:
                    reach = spent
        reached = "-" if reach is None else f"{reach:.1f}"
        pruned = int(table["pruned"].sum())
        print(
            f"{label:<30} {len(table):>6} {pruned:>6} {seconds:>8.1f} "
            f"{result.held_out:>9.4f} {reached:>16}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--retail", default=None, help="path of Online Retail II's parquet")
    args = parser.parse_args()
    book = cs.datasets.synthetic_book(args.clients, seed=1)
    run("synthetic book", book, ["2023-12-31", "2024-06-30", "2024-12-31"], "180D")
    if args.retail:
        retail = cs.datasets.load_online_retail(args.retail)
        run("Online Retail II", retail, ["2011-03-01", "2011-06-01", "2011-09-01"], "90D")


if __name__ == "__main__":
    main()
