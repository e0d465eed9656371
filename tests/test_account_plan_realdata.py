"""The account plan on the real Online Retail II purchases (skipped when the data is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import crosssell as cs


def _data() -> Path:
    override = os.environ.get("CROSSSELL_DATA_DIR")
    base = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    return base / "online_retail_ii"


@pytest.mark.realdata
def test_route_sales_on_online_retail_never_asks_to_renew_a_purchase() -> None:
    """Check that purchases are not renewals: no renewal block, no renew action, reorders named."""
    if not (_data() / "transactions.parquet").exists():
        pytest.skip(f"Online Retail II data not found at {_data()}")
    book = cs.datasets.load_online_retail(_data())
    rec = cs.Recommender(policy=cs.rules.route_sales()).fit(book, "2011-12-01")
    log = rec.suppressed()
    assert "renewal_first" not in set(log["rule"])
    p = cs.plan(rec)
    actions = p.actions["action"].value_counts()
    assert actions["renew"] == 0
    assert actions["reorder"] > 0
    reorder = p.actions[p.actions["action"] == "reorder"]
    # reasons use the shop's product descriptions, not bare stock codes
    assert (
        reorder["reason"].str.match(r"(at risk: )?reorder due for .+: bought every ~\d+ days").all()
    )
    assert not reorder["reason"].str.match(r"(at risk: )?reorder due for \d+[A-Z]*: ").any()
    assert not reorder["reason"].str.contains("contract").any()
