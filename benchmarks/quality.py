"""Quality of the ranking: popularity, item-kNN (the default) and the learned Ranker, per book.

Run by hand (a few minutes on 2 cores)::

    python benchmarks/quality.py            # every book found
    python benchmarks/quality.py demo       # only the named books (demo, retail, czech)

Books: the synthetic demo book (``crosssell.datasets.demo()``), UCI Online Retail II and the Czech
bank's products (account, loan, three card tiers) from the shared data folder beside the project
(``../shared/data``; set ``CROSSSELL_DATA_DIR`` to read it elsewhere). Nothing is downloaded.

Each model is backtested with ``crosssell.backtest`` on the same cutoffs, horizon and bootstrap
resamples (k = 10, route-sales policy off, which none of the real books can feed); the table shows
NDCG@10 and recall@10 over every fold with their 95% bootstrap intervals, the fit time of one
recommender at the last cutoff, and for the Ranker the expected calibration error of its offered
propensities against what was taken within the horizon.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

import crosssell as cs
from crosssell.evaluation import calibration_error
from crosssell.scorers import ItemKNN, Popularity, Ranker, Scorer

DATA = Path(
    os.environ.get(
        "CROSSSELL_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def demo() -> tuple[cs.Book, list[str], str]:
    return cs.datasets.demo(), ["2024-06-30", "2024-12-31"], "180D"


def retail() -> tuple[cs.Book, list[str], str]:
    book = cs.datasets.load_online_retail(DATA / "online_retail_ii")
    return book, ["2011-03-01", "2011-06-01"], "90D"


def czech() -> tuple[cs.Book, list[str], str]:
    events = pd.read_parquet(DATA / "czech_bank" / "client_product_events.parquet")
    # the products are the kinds (account, loan, card tiers), not the individual accounts
    contracts = events[["client_id", "product", "start_date"]].rename(
        columns={"product": "product_id"}
    )
    contracts["start_date"] = contracts["start_date"].astype("datetime64[ns]")
    kinds = sorted(contracts["product_id"].unique())
    tiers = {"junior": 1, "classic": 2, "gold": 3}
    products = pd.DataFrame(
        {
            "product_id": kinds,
            "family": ["card" if "card" in k or k in tiers else k for k in kinds],
            "tier": [next((t for n, t in tiers.items() if n in k), 1) for k in kinds],
        }
    )
    book = cs.Book.from_frames(contracts=contracts.drop_duplicates(), products=products)
    return book, ["1997-06-30", "1997-12-31"], "180D"


BOOKS: dict[str, Callable[[], tuple[cs.Book, list[str], str]]] = {
    "demo": demo,
    "retail": retail,
    "czech": czech,
}


def measure(book: cs.Book, cutoffs: list[str], horizon: str) -> pd.DataFrame:
    models: dict[str, Scorer] = {
        "popularity": Popularity(by="segment"),
        "itemknn (default)": ItemKNN(),
        "ranker lightgbm": Ranker(horizon=horizon, model="lightgbm"),
        "ranker hgb": Ranker(horizon=horizon, model="hgb"),
    }
    if book.client_table["segment"].isna().all():
        models["popularity"] = Popularity()
    rows = []
    for name, scorer in models.items():
        start = time.perf_counter()
        cs.Recommender(scorer=scorer, k=10, policy=None).fit(book, cutoffs[-1])
        fit_s = time.perf_counter() - start
        result = cs.backtest(
            cs.Recommender(scorer=scorer, k=10, policy=None),
            book,
            cutoffs=cutoffs,
            horizon=horizon,
            k=(10,),
            baseline=False,
            n_boot=200,
            random_state=0,
            progress=False,
        )
        m = result.metrics
        m = m[(m["offer_type"] == "all") & (m["segment"] == "all") & (m["k"] == 10)]
        row: dict[str, object] = {"model": name, "fit_s": round(fit_s, 1)}
        for metric in ("ndcg", "recall"):
            sel = m[m["metric"] == metric]
            # folds weigh by their clients; the interval shown is the widest fold's
            w = sel["n_clients"] / sel["n_clients"].sum()
            row[f"{metric}@10"] = round(float((sel["value"] * w).sum()), 4)
            row[f"{metric} 95% CI"] = f"[{sel['ci_low'].min():.4f}, {sel['ci_high'].max():.4f}]"
        offers = result.offers
        row["ECE"] = (
            round(calibration_error(offers["propensity"], offers["added"]), 4)
            if isinstance(scorer, Ranker)
            else None
        )
        rows.append(row)
        print(f"  {name}: {row}", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main(names: list[str]) -> None:
    for name in names or list(BOOKS):
        try:
            book, cutoffs, horizon = BOOKS[name]()
        except FileNotFoundError as err:
            print(f"{name}: skipped ({err})")
            continue
        print(f"\n## {name}: {book!r}\ncutoffs {cutoffs}, horizon {horizon}, k = 10")
        print(measure(book, cutoffs, horizon).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1:])
