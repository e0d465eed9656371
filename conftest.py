"""Collection rules for the doctests in src/: optional parts are skipped when not installed."""

from __future__ import annotations

import importlib.util

import pytest

collect_ignore: list[str] = []
for module, extra_file in (
    ("pyspark", "src/crosssell/spark.py"),
    ("fastapi", "src/crosssell/serve.py"),
    ("mlflow", "src/crosssell/mlflow.py"),
):
    if importlib.util.find_spec(module) is None:
        collect_ignore.append(extra_file)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the examples of the log_to_mlflow methods when MLflow is not installed."""
    if importlib.util.find_spec("mlflow") is not None:
        return
    skip = pytest.mark.skip(reason='needs MLflow: pip install "crosssell[mlflow]"')
    for item in items:
        if item.name.endswith(".log_to_mlflow"):
            item.add_marker(skip)
