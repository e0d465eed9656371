"""Collection rules for the doctests in src/: optional parts are skipped when not installed."""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = []
for module, extra_file in (
    ("pyspark", "src/crosssell/spark.py"),
    ("fastapi", "src/crosssell/serve.py"),
):
    if importlib.util.find_spec(module) is None:
        collect_ignore.append(extra_file)
