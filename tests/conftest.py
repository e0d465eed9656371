"""Shared test fixtures: tiny hand-built tables with obvious answers."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def tiny_contracts() -> pd.DataFrame:
    """Three clients, three products, one open and one ended contract."""
    return pd.DataFrame(
        {
            "client_id": ["C1", "C1", "C2", "C3"],
            "product_id": ["P1", "P2", "P1", "P3"],
            "start_date": ["2024-01-01", "2024-03-01", "2024-02-01", "2024-04-01"],
            "end_date": [None, "2025-02-28", None, None],
            "value": [100.0, 50.0, 120.0, None],
        }
    )
