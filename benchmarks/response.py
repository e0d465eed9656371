"""Learning from outcomes on real phone offers: does the response model keep up with the drift?

Prequential evaluation on the bank marketing contacts (``../shared/data/bank_marketing`` or
``$CROSSSELL_DATA_DIR/bank_marketing``): the first 60% of the file is the history; on the last
40%, each batch of 1,000 contacts is predicted before its outcomes are known, then its
outcomes are learned (or not) before the next batch. ``duration`` (known only after the call)
is never an input. Printed per model: ROC AUC, Brier score and expected calibration error
(10 equal-count bins), each with a bootstrap 95% interval over the predicted contacts, and
the mean time of one update.

Then one update of 1,000 outcomes on a model fitted on 200,000 synthetic clients' offers.

Run: ``PYTHONPATH=src python benchmarks/response.py``
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import roc_auc_score

from crosssell.scorers import Response

BATCH = 1000
START = 0.6
SEED = 0


def data_dir() -> Path:
    override = os.environ.get("CROSSSELL_DATA_DIR")
    base = Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "bank_marketing"


def load() -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_parquet(data_dir() / "contacts.parquet").sort_values("contact_seq")
    y = (frame["y"] == "yes").to_numpy(dtype=np.float64)
    # the call's length is known only once it ended: it leaks the outcome
    x = frame.drop(columns=["y", "duration"]).reset_index(drop=True)
    return x, y


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    order = np.argsort(p, kind="stable")
    parts = np.array_split(order, bins)
    return float(sum(abs(y[i].mean() - p[i].mean()) * i.size for i in parts) / y.size)


def metrics(y: np.ndarray, p: np.ndarray, n_boot: int = 200) -> dict[str, str]:
    rng = np.random.default_rng(SEED)
    fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "auc": lambda a, b: float(roc_auc_score(a, b)),
        "brier": lambda a, b: float(np.mean((a - b) ** 2)),
        "ece": ece,
    }
    draws = {k: [] for k in fns}
    for _ in range(n_boot):
        i = rng.integers(0, y.size, y.size)
        for k, f in fns.items():
            draws[k].append(f(y[i], p[i]))
    out = {}
    for k, f in fns.items():
        lo, hi = np.quantile(draws[k], [0.025, 0.975])
        out[k] = f"{f(y, p):.3f} [{lo:.3f}, {hi:.3f}]"
    return out


def one_hot(train: pd.DataFrame, *others: pd.DataFrame) -> list[np.ndarray]:
    cats = [c for c in train.columns if train[c].dtype == object or str(train[c].dtype) == "str"]
    nums = [c for c in train.columns if c not in cats and c != "contact_seq"]
    mean, sd = train[nums].mean(), train[nums].std().replace(0, 1)
    out = []
    for f in (train, *others):
        dummies = pd.get_dummies(f[cats].astype(object), dtype=np.float64)
        dummies = dummies.reindex(
            columns=pd.get_dummies(train[cats].astype(object)).columns, fill_value=0.0
        )
        out.append(np.hstack([((f[nums] - mean) / sd).to_numpy(), dummies.to_numpy()]))
    return out


class Sklearn:
    """A scikit-learn logistic regression, fitted once or refitted on everything earlier."""

    def __init__(self, refit: bool) -> None:
        self.refit = refit

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> None:
        self.x, self.y = x, y
        self._train()

    def _train(self) -> None:
        (a,) = one_hot(self.x)
        self.model = LogisticRegression(C=1.0, max_iter=2000).fit(a, self.y)

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        _, b = one_hot(self.x, x)
        return self.model.predict_proba(b)[:, 1]

    def update(self, x: pd.DataFrame, y: np.ndarray) -> None:
        if self.refit:
            self.x = pd.concat([self.x, x], ignore_index=True)
            self.y = np.concatenate([self.y, y])
            self._train()


class Gbm(Sklearn):
    """LightGBM, fitted once or refitted on everything earlier."""

    def _train(self) -> None:
        import lightgbm

        (a,) = one_hot(self.x)
        self.model = lightgbm.LGBMClassifier(
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=50,
            random_state=SEED,
            deterministic=True,
            force_row_wise=True,
            n_jobs=1,
            verbose=-1,
        ).fit(a, self.y)


class GbmContinued(Gbm):
    """LightGBM fitted once, then continued with ``init_model``: 20 more trees per batch."""

    def update(self, x: pd.DataFrame, y: np.ndarray) -> None:
        import lightgbm

        _, b = one_hot(self.x, x)
        self.model = lightgbm.LGBMClassifier(
            n_estimators=20,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=50,
            random_state=SEED,
            deterministic=True,
            force_row_wise=True,
            n_jobs=1,
            verbose=-1,
        ).fit(b, y, init_model=self.model.booster_)


class Sgd(Sklearn):
    """SGDClassifier(loss="log_loss") updated with partial_fit (the alternative measured)."""

    def _train(self) -> None:
        (a,) = one_hot(self.x)
        self.model = SGDClassifier(
            loss="log_loss", alpha=1e-4, learning_rate="constant", eta0=0.01, random_state=SEED
        )
        for _ in range(5):
            self.model.partial_fit(a, self.y, classes=[0.0, 1.0])

    def update(self, x: pd.DataFrame, y: np.ndarray) -> None:
        _, b = one_hot(self.x, x)
        self.model.partial_fit(b, y)


class Adaptive:
    """crosssell's Response, updated with partial_fit."""

    def __init__(self, **params: Any) -> None:
        self.model = Response(time="contact_seq", **params)

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> None:
        self.model.fit(x, y)

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x)

    def update(self, x: pd.DataFrame, y: np.ndarray) -> None:
        self.model.partial_fit(x, y)


def prequential(model: Any, x: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, float]:
    start = int(len(x) * START)
    model.fit(x.iloc[:start], y[:start])
    preds, times = [], []
    for lo in range(start, len(x), BATCH):
        batch, target = x.iloc[lo : lo + BATCH], y[lo : lo + BATCH]
        preds.append(model.predict(batch))
        t0 = time.perf_counter()
        model.update(batch, target)
        times.append(time.perf_counter() - t0)
    return np.concatenate(preds), float(np.mean(times))


def synthetic_update(n_clients: int = 200_000, n_products: int = 200) -> tuple[float, float]:
    rng = np.random.default_rng(SEED)
    n = n_clients
    frame = pd.DataFrame(
        {
            "product_id": rng.integers(0, n_products, n).astype(str),
            "segment": rng.choice(["smb", "mid", "enterprise", "public"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "channel": rng.choice(["call", "visit", "mail"], n),
            "age": rng.integers(1, 40, n).astype(np.float64),
            "date": np.sort(rng.integers(0, 700, n)).astype(np.float64),
        }
    )
    frame["family"] = (frame["product_id"].astype(int) // 10).astype(str)
    y = (rng.random(n) < 0.1 + 0.05 * (frame["channel"] == "visit")).astype(float)
    t0 = time.perf_counter()
    model = Response(half_life=180).fit(frame, y)
    fit_seconds = time.perf_counter() - t0
    new = frame.sample(BATCH, random_state=SEED).assign(date=701.0)
    t0 = time.perf_counter()
    model.partial_fit(new, y[:BATCH])
    return fit_seconds, time.perf_counter() - t0


def main() -> None:
    x, y = load()
    start = int(len(x) * START)
    truth = y[start:]
    print(
        f"bank marketing: {len(x)} contacts, prequential on the last {len(truth)} "
        f"(take-up {truth.mean():.1%} there, {y[:start].mean():.1%} before), batches of {BATCH}"
    )
    models: dict[str, Any] = {
        "logistic, fitted once": Sklearn(refit=False),
        "lightgbm, fitted once": Gbm(refit=False),
        "logistic, refit every batch": Sklearn(refit=True),
        "lightgbm, refit every batch": Gbm(refit=True),
        "lightgbm, init_model +20 trees": GbmContinued(refit=False),
        "sgd log_loss, partial_fit": Sgd(refit=False),
        "Response, partial_fit": Adaptive(),
        "Response(half_life=1000), partial_fit": Adaptive(half_life=1000),
    }
    rows = []
    for name, model in models.items():
        p, seconds = prequential(model, x, y)
        rows.append({"model": name, **metrics(truth, p), "update_s": f"{seconds:.3f}"})
    print(pd.DataFrame(rows).to_string(index=False))
    fit_s, update_s = synthetic_update()
    print(
        f"synthetic, 200,000 offers of 200 products: fit {fit_s:.2f} s, "
        f"one partial_fit of {BATCH} outcomes {update_s:.3f} s"
    )


if __name__ == "__main__":
    main()
