"""Quality floor: the default scorers beat popularity on the products clients add next."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import crosssell as cs
from crosssell.scorers import ALS, ItemKNN, Popularity, Scorer

DATA = Path(
    os.environ.get(
        "CROSSSELL_DATA_DIR",
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail_ii",
    )
)


def _ndcg10(scorer: Scorer | None, book: cs.Book, cutoff: str, horizon: str) -> float:
    rec = cs.Recommender(scorer=scorer, k=10)
    result = cs.backtest(
        rec,
        book,
        cutoffs=[cutoff],
        horizon=horizon,
        k=(10,),
        baseline=False,
        n_boot=2,
        progress=False,
    )
    m = result.metrics
    row = m[(m["metric"] == "ndcg") & (m["offer_type"] == "all") & (m["segment"] == "all")]
    return float(row["value"].iloc[0])


@pytest.fixture(scope="module")
def synthetic() -> cs.Book:
    return cs.datasets.synthetic_book(3000, seed=3)


@pytest.mark.parametrize(
    "scorer", [None, ALS(random_state=0), ItemKNN()], ids=["default", "als", "itemknn"]
)
def test_defaults_beat_popularity_on_the_synthetic_future(
    synthetic: cs.Book, scorer: Scorer | None
) -> None:
    """Check that default-parameter scorers beat popularity on NDCG@10 of the simulated future."""
    base = _ndcg10(Popularity(), synthetic, "2024-06-30", "180D")
    assert _ndcg10(scorer, synthetic, "2024-06-30", "180D") > base


@pytest.fixture(scope="module")
def retail() -> cs.Book:
    if not (DATA / "transactions.parquet").exists():
        pytest.skip(f"Online Retail II data not found in {DATA}")
    return cs.datasets.load_online_retail(DATA)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(
    "scorer", [None, ALS(random_state=0), ItemKNN()], ids=["default", "als", "itemknn"]
)
def test_defaults_beat_popularity_on_online_retail(retail: cs.Book, scorer: Scorer | None) -> None:
    """Check that default-parameter scorers beat popularity on NDCG@10 of real next purchases."""
    base = _ndcg10(Popularity(), retail, "2011-06-01", "90D")
    assert _ndcg10(scorer, retail, "2011-06-01", "90D") > base
