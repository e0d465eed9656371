"""Quality of the ranking, per book: popularity, each base scorer and the learned Ranker.

Run by hand (minutes per book on 2 cores; Online Retail II is the longest)::

    python benchmarks/quality.py              # every book found
    python benchmarks/quality.py demo czech   # only these books (demo, retail, czech, telco)
    python benchmarks/quality.py --fast demo  # without the tuned and hgb rows

Books: the synthetic demo book (``crosssell.datasets.demo()``), UCI Online Retail II (a wide
catalogue of purchases), the Czech bank's products (account, loan, three card tiers: narrow and
dense) and the telco services (narrow; the data is one snapshot, so each customer's last service
is taken out and dated within the last year before it: a leave-one-out in time), all read from the
shared data folder beside the project (``../shared/data``; set ``CROSSSELL_DATA_DIR`` to read it
elsewhere). Nothing is downloaded.

Each model is backtested with ``crosssell.backtest`` on the same cutoffs, horizon and clients
(k = 10, route-sales policy off, which none of the real books can feed). The table shows NDCG@10,
recall@10 and value captured@10 pooled over the folds with 95% bootstrap intervals, the paired
difference of NDCG@10 with popularity (``crosssell.evaluation.compare``: client by client, 95%
interval; ``*`` marks an interval that excludes 0), the fit time of one recommender at the last
cutoff, and the expected calibration error of the offered propensities against what was taken
within the horizon. "tuned" rows choose the scorer's main parameter by ``crosssell.tune`` on
cutoffs before the evaluated ones, so the choice never sees the folds it is measured on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import crosssell as cs
from crosssell.evaluation import BacktestResult, calibration_error, compare
from crosssell.scorers import ALS, CoOccurrence, ItemKNN, Popularity, Ranker, Scorer

DATA = Path(
    os.environ.get(
        "CROSSSELL_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


class Setup:
    """A book with the cutoffs it is measured on and the earlier ones tuning may use."""

    def __init__(self, book: cs.Book, cutoffs: list[str], horizon: str, tune_on: list[str]):
        self.book, self.cutoffs, self.horizon, self.tune_on = book, cutoffs, horizon, tune_on


def demo() -> Setup:
    return Setup(
        cs.datasets.demo(), ["2024-06-30", "2024-12-31"], "180D", ["2023-06-30", "2023-12-31"]
    )


def retail() -> Setup:
    book = cs.datasets.load_online_retail(DATA / "online_retail_ii")
    return Setup(book, ["2011-03-01", "2011-06-01"], "90D", ["2010-09-01", "2010-12-01"])


def czech() -> Setup:
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
    return Setup(book, ["1997-06-30", "1997-12-31"], "180D", ["1996-06-30", "1996-12-31"])


_TELCO_SERVICES = {
    "PhoneService": ("phone", "phone", 1),
    "MultipleLines": ("multiple_lines", "phone", 2),
    "DSL": ("internet_dsl", "internet", 1),
    "Fiber optic": ("internet_fiber", "internet", 2),
    "OnlineSecurity": ("online_security", "security", 1),
    "OnlineBackup": ("online_backup", "security", 1),
    "DeviceProtection": ("device_protection", "security", 1),
    "TechSupport": ("tech_support", "support", 1),
    "StreamingTV": ("streaming_tv", "streaming", 1),
    "StreamingMovies": ("streaming_movies", "streaming", 1),
}


def telco() -> Setup:
    """Telco services held; one service per customer dated within the last year (seeded)."""
    raw = pd.read_parquet(DATA / "telco_churn" / "customers.parquet")
    snapshot = pd.Timestamp("2024-12-31")
    held = []
    for column, (product, _, _) in _TELCO_SERVICES.items():
        if column in ("DSL", "Fiber optic"):
            mask = raw["InternetService"] == column
        else:
            mask = raw[column] == "Yes"
        held.append(pd.DataFrame({"client_id": raw.loc[mask, "customerID"], "product_id": product}))
    contracts = pd.concat(held, ignore_index=True)
    tenure = raw.set_index("customerID")["tenure"].clip(lower=1)
    begin = snapshot - pd.to_timedelta(tenure * 30.4375, unit="D").dt.floor("D")
    contracts["start_date"] = contracts["client_id"].map(begin)
    # the data has no per-service dates: take one service of every customer holding two or more
    # out and date it at random after the customer's start, within the last year
    rng = np.random.default_rng(0)
    order = contracts.sample(frac=1.0, random_state=0).groupby("client_id").head(1).index
    multi = contracts.groupby("client_id")["product_id"].transform("size") > 1
    last = contracts.index.isin(order) & multi.to_numpy()
    lo = np.maximum(
        contracts.loc[last, "start_date"].to_numpy("datetime64[D]").astype(np.int64) + 1,
        np.int64((snapshot - pd.Timedelta("365D")).value // 86_400_000_000_000),
    )
    hi = np.int64(snapshot.value // 86_400_000_000_000)
    day = lo + (rng.random(lo.size) * np.maximum(hi - lo, 0)).astype(np.int64)
    contracts.loc[last, "start_date"] = pd.to_datetime(day, unit="D")
    contracts["value"] = contracts["client_id"].map(raw.set_index("customerID")["MonthlyCharges"])
    products = pd.DataFrame(
        [(p, f, t) for p, f, t in _TELCO_SERVICES.values()],
        columns=["product_id", "family", "tier"],
    )
    clients = pd.DataFrame({"client_id": raw["customerID"], "segment": raw["Contract"]})
    book = cs.Book.from_frames(contracts=contracts, products=products, clients=clients)
    return Setup(book, ["2024-07-02", "2024-09-30"], "90D", ["2024-04-03"])


BOOKS: dict[str, Callable[[], Setup]] = {
    "demo": demo,
    "retail": retail,
    "czech": czech,
    "telco": telco,
}


def _tuned(setup: Setup, scorer: Scorer, space: dict[str, list[object]]) -> Scorer:
    """The scorer with the parameters ``tune`` chose on the cutoffs before the measured ones."""
    found = cs.tune(
        cs.Recommender(scorer=scorer, k=10, policy=None),
        setup.book,
        {f"scorer__{name}": values for name, values in space.items()},
        setup.tune_on,
        horizon=setup.horizon,
        metric="ndcg@10",
        search="grid",
        progress=False,
    )
    return found.best_recommender.scorer


def _models(setup: Setup, fast: bool) -> dict[str, Callable[[], Scorer]]:
    segmented = setup.book.client_table["segment"].notna().any()
    models: dict[str, Callable[[], Scorer]] = {
        "popularity": lambda: Popularity(by="segment" if segmented else None),
        "itemknn": ItemKNN,
        "cooccurrence": CoOccurrence,
        "als": lambda: ALS(random_state=0, num_threads=1),
        # the library's default (its 90-day label window), then with the backtest's horizon
        "ranker (default)": Ranker,
        "ranker, backtest's horizon": lambda: Ranker(horizon=setup.horizon),
    }
    if not fast:
        models["itemknn tuned"] = lambda: _tuned(
            setup, ItemKNN(), {"neighbours": [5, 10, 20, 50, 100]}
        )
        models["als tuned"] = lambda: _tuned(
            setup, ALS(random_state=0, num_threads=1), {"factors": [16, 32, 64]}
        )
        models["ranker hgb"] = lambda: Ranker(horizon=setup.horizon, model="hgb")
    return models


def _pooled(result: BacktestResult, metric: str) -> tuple[float, float, float]:
    m = result.metrics
    m = m[
        (m["offer_type"] == "all")
        & (m["segment"] == "all")
        & (m["k"] == 10)
        & (m["model"] == "crosssell")
        & (m["metric"] == metric)
    ]
    # folds weigh by their clients; the interval shown is the widest fold's
    w = m["n_clients"] / m["n_clients"].sum()
    reduce = float((m["value"] * w).sum()) if metric != "value_captured" else m["value"].sum()
    return float(reduce), float(m["ci_low"].min()), float(m["ci_high"].max())


def measure(setup: Setup, fast: bool = False) -> pd.DataFrame:
    results: dict[str, BacktestResult] = {}
    fits: dict[str, float] = {}
    for name, make in _models(setup, fast).items():
        scorer = make()
        start = time.perf_counter()
        cs.Recommender(scorer=scorer, k=10, policy=None).fit(setup.book, setup.cutoffs[-1])
        fits[name] = time.perf_counter() - start
        results[name] = cs.backtest(
            cs.Recommender(scorer=scorer, k=10, policy=None),
            setup.book,
            cutoffs=setup.cutoffs,
            horizon=setup.horizon,
            k=(10,),
            baseline=False,
            n_boot=200,
            random_state=0,
            progress=False,
        )
        print(f"  {name}: fitted in {fits[name]:.1f} s", file=sys.stderr, flush=True)
    paired = compare(results, baseline="popularity", metric="ndcg", k=10, n_boot=1000)
    paired = paired[paired["fold"] == "all"].set_index("model")
    rows = []
    for name, result in results.items():
        row: dict[str, object] = {"model": name}
        for metric, label in (("ndcg", "NDCG@10"), ("recall", "recall@10")):
            value, low, high = _pooled(result, metric)
            row[label] = f"{value:.4f} [{low:.4f}, {high:.4f}]"
        row["value@10"] = f"{_pooled(result, 'value_captured')[0]:,.0f}"
        if name in paired.index:
            d = paired.loc[name]
            star = "*" if d["significant"] else ""
            row["vs popularity"] = (
                f"{d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]{star}"
            )
        else:
            row["vs popularity"] = ""
        offers = result.offers
        row["ECE"] = (
            f"{calibration_error(offers['propensity'], offers['added']):.4f}" if len(offers) else ""
        )
        row["fit s"] = f"{fits[name]:.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame) -> str:
    cells = [list(map(str, table.columns)), *table.astype(str).to_numpy().tolist()]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * table.shape[1])
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    fast = "--fast" in argv
    names = [a for a in argv if not a.startswith("--")]
    for name in names or list(BOOKS):
        try:
            setup = BOOKS[name]()
        except FileNotFoundError as err:
            print(f"{name}: skipped ({err})")
            continue
        print(
            f"\n## {name}: {setup.book!r}\n\ncutoffs {setup.cutoffs}, horizon {setup.horizon}, "
            "k = 10\n",
            flush=True,
        )
        print(_markdown(measure(setup, fast)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
