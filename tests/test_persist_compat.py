"""Models saved by an earlier layout of crosssell load and answer the same after a refactor."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crosssell as cs

MODELS = Path(__file__).parent / "data" / "models_v1"
NAMES = ["itemknn_route_sales", "als_platt", "blend_isotonic"]


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_from_before_gives_the_same_offers(name: str) -> None:
    """Check that a model saved before the package was reorganised loads and recommends as then."""
    rec = cs.load(MODELS / f"{name}.crosssell")
    expected = pq.read_table(MODELS / f"{name}.offers.parquet")
    got = pa.Table.from_pandas(rec.recommend().reset_index(drop=True), preserve_index=False)
    assert got.num_rows == expected.num_rows > 0
    assert got.column_names == expected.column_names
    # Row by row as Python values (Arrow's own equality also compares pandas metadata). Scores are
    # float32 dot products, whose last bits depend on the CPU's vector width and the BLAS build:
    # numbers are equal to 1e-5, everything else (ids, ranks, reasons, evidence) exactly.
    for got_row, expected_row in zip(got.to_pylist(), expected.to_pylist(), strict=True):
        for key, value in expected_row.items():
            if isinstance(value, float):
                assert got_row[key] == pytest.approx(value, rel=1e-5), (key, expected_row)
            else:
                assert got_row[key] == value, (key, expected_row)
