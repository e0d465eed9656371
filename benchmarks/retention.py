"""Benchmark: the retention model's speed on a large synthetic book and its quality on real books.

Run by hand::

    python benchmarks/retention.py                       # speed at 200k clients, then quality
    python benchmarks/retention.py --clients 20000 --skip-quality
    python benchmarks/retention.py --skip-speed

Speed: the seeded synthetic book (``crosssell.datasets.synthetic_book``) of ``--clients``
clients; it times ``RetentionModel().fit`` (clients only, and with the model of product lines),
``predict`` (probabilities, value and reasons of every client) and ``survival``. Targets: fit
under 60 s, scoring under 5 s at 200,000 clients.

Quality, for the logistic hazard (the default) and LightGBM's trees:

- telco churn sample (``../shared/data/telco_churn``): one snapshot, so 30% of the clients are
  held out at random; the model is fitted on the others' last month and scores the held-out
  clients a month before the snapshot (``end_dates="observed"``: a churner's end date is written
  by its departure). ROC AUC with a 95% bootstrap interval.
- Online Retail II (``../shared/data/online_retail_ii``): ``backtest_retention`` at three cutoffs
  of 2011, leaving = 90 days without a purchase, beside the risk-signal count and recency.
- the synthetic demo book: ``backtest_retention`` at two cutoffs of 2024, horizon 180 days.

The data folder is ``CROSSSELL_DATA_DIR`` when set, else ``shared/data`` beside the project.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import crosssell as cs
from crosssell.retention import RetentionModel, observed_departures

SNAPSHOT = pd.Timestamp("2024-01-01")
TELCO_MODEL = {
    "horizon": "30D",
    "windows": 1,
    "step": "31D",
    "grace": "0D",
    "end_dates": "observed",
    "contracts": False,
}


def data_dir() -> Path:
    override = os.environ.get("CROSSSELL_DATA_DIR")
    return (
        Path(override)
        if override
        else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )


def speed(n_clients: int) -> pd.DataFrame:
    """Time fit, predict and survival on a synthetic book of ``n_clients``."""
    rows = []
    t = time.perf_counter()
    book = cs.datasets.synthetic_book(n_clients, seed=1)
    rows.append({"step": "build the synthetic book", "seconds": time.perf_counter() - t})
    as_of = "2025-03-31"
    for contracts in (False, True):
        model = RetentionModel(contracts=contracts)
        t = time.perf_counter()
        model.fit(book, as_of)
        what = "fit, clients and product lines" if contracts else "fit, clients"
        rows.append({"step": what, "seconds": time.perf_counter() - t})
    t = time.perf_counter()
    fresh = model.predict(book, "2025-04-30")
    rows.append(
        {
            "step": f"predict at another date, {len(fresh):,} clients (features recomputed)",
            "seconds": time.perf_counter() - t,
        }
    )
    t = time.perf_counter()
    risk = model.predict()
    rows.append(
        {
            "step": f"predict {len(risk):,} clients (with reasons)",
            "seconds": time.perf_counter() - t,
        }
    )
    t = time.perf_counter()
    model.survival()
    rows.append({"step": "survival, 12 months", "seconds": time.perf_counter() - t})
    t = time.perf_counter()
    lines = model.predict_contracts()
    rows.append({"step": f"predict_contracts ({len(lines):,})", "seconds": time.perf_counter() - t})
    return pd.DataFrame(rows).round({"seconds": 2})


def _interval(y: np.ndarray, p: np.ndarray, n: int = 200, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, y.size, y.size) for _ in range(n)]
    values = [roc_auc_score(y[d], p[d]) for d in draws if 0 < y[d].sum() < y.size]
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def telco_quality() -> pd.DataFrame:
    folder = data_dir() / "telco_churn"
    if not (folder / "customers.parquet").exists():
        print(f"telco data not found at {folder}; skipped")
        return pd.DataFrame()
    book = cs.datasets.load_telco(folder, snapshot=SNAPSHOT)
    clients = book.clients[["client_id", "segment", *book.clients.columns[7:]]]
    test = np.random.default_rng(0).random(len(clients)) < 0.3
    contracts, products = book.contracts, book.products[["product_id", "family"]]

    def part(mask: np.ndarray) -> cs.Book:
        keep = clients["client_id"][mask]
        return cs.Book.from_frames(
            contracts=contracts[contracts["client_id"].isin(keep)],
            products=products,
            clients=clients[mask],
        )

    train, held = part(~test), part(test)
    at = SNAPSHOT - pd.Timedelta("31D")
    seen = observed_departures(held, at, "30D", grace="0D")
    rows = []
    for learner in ("logistic", "lightgbm"):
        t = time.perf_counter()
        model = RetentionModel(model=learner, **TELCO_MODEL).fit(train, SNAPSHOT)
        fit_s = time.perf_counter() - t
        frame = seen.merge(model.predict(held, at), on="client_id")
        y = frame["left"].to_numpy(np.float64)
        p = frame["p_leave"].to_numpy(np.float64)
        lo, hi = _interval(y, p)
        rows.append(
            {
                "book": "telco (30% held out)",
                "model": learner,
                "metric": "roc_auc",
                "value": roc_auc_score(y, p),
                "ci_low": lo,
                "ci_high": hi,
                "n_clients": len(frame),
                "fit_seconds": fit_s,
            }
        )
        rows.append(
            {
                "book": "telco (30% held out)",
                "model": learner,
                "metric": "brier",
                "value": float(np.mean((p - y) ** 2)),
                "ci_low": np.nan,
                "ci_high": np.nan,
                "n_clients": len(frame),
                "fit_seconds": fit_s,
            }
        )
    return pd.DataFrame(rows)


def backtest_quality(name: str, book: cs.Book, cutoffs: list[str], horizon: str) -> pd.DataFrame:
    parts = []
    for learner in ("logistic", "lightgbm"):
        t = time.perf_counter()
        result = cs.evaluation.backtest_retention(
            book, model=RetentionModel(model=learner, horizon=horizon), cutoffs=cutoffs
        )
        seconds = time.perf_counter() - t
        table = result.table[result.table["fold"] == "all"].copy()
        if learner != "logistic":
            # the baselines do not depend on the learner: shown once
            table = table[table["model"] == "model"]
        table["model"] = np.where(table["model"] == "model", learner, table["model"])
        table.insert(0, "book", name)
        table["fit_seconds"] = seconds
        parts.append(table.drop(columns="fold"))
    return pd.concat(parts, ignore_index=True)


def quality() -> pd.DataFrame:
    parts = [telco_quality()]
    retail = data_dir() / "online_retail_ii"
    if (retail / "transactions.parquet").exists():
        book = cs.datasets.load_online_retail(retail)
        parts.append(
            backtest_quality(
                "Online Retail II", book, ["2011-03-01", "2011-06-01", "2011-09-01"], "90D"
            )
        )
    else:
        print(f"Online Retail II data not found at {retail}; skipped")
    parts.append(
        backtest_quality(
            "demo (synthetic)", cs.datasets.demo(), ["2024-06-30", "2024-09-30"], "180D"
        )
    )
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200_000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 200)
    if not args.skip_speed:
        print(f"Speed, synthetic book of {args.clients:,} clients")
        print(speed(args.clients).to_string(index=False))
        print()
    if not args.skip_quality:
        print("Quality (fold 'all': the cutoffs pooled; 95% bootstrap intervals over clients)")
        table = quality()
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
