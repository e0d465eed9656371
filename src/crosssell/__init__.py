"""crosssell: which existing clients to offer what, and when to offer nothing.

The names below are imported on first use, so that ``import crosssell`` (and the command line's
``--help``) does not pay for pandas, scipy and every stage before they are needed.

Examples
--------
>>> import crosssell as cs
>>> isinstance(cs.__version__, str)
True
>>> cs.Recommender.__name__
'Recommender'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crosssell._version import __version__

if TYPE_CHECKING:
    from crosssell import datasets, evaluation, insights, retention, rules, scorers, weighting
    from crosssell.account_plan import plan
    from crosssell.allocation import Constraints, allocate
    from crosssell.arbitration import Explore
    from crosssell.book import Book, Schema
    from crosssell.columns import Columns, EventType
    from crosssell.decisions import DecisionLog, Holdout

    # crosssell.evaluation.backtest is both a module and the function it defines
    from crosssell.evaluation import backtest, tune  # type: ignore[no-redef]
    from crosssell.exceptions import (
        ArtifactError,
        CrossSellError,
        CrossSellWarning,
        DataWarning,
        EventTypeWarning,
        NotFittedError,
        SchemaError,
        UnknownIdError,
    )
    from crosssell.html import report
    from crosssell.ids import IdMap
    from crosssell.insights import whitespace
    from crosssell.matrix import ClientProductMatrix
    from crosssell.persist import load
    from crosssell.recommender import Offer, Recommender
    from crosssell.records import RecordSettings
    from crosssell.retention import RetentionModel

# name -> the module that defines it (a module's own name when the name is the module)
_WHERE: dict[str, str] = {
    "ArtifactError": "crosssell.exceptions",
    "Book": "crosssell.book",
    "ClientProductMatrix": "crosssell.matrix",
    "Constraints": "crosssell.allocation",
    "Columns": "crosssell.columns",
    "CrossSellError": "crosssell.exceptions",
    "CrossSellWarning": "crosssell.exceptions",
    "DataWarning": "crosssell.exceptions",
    "DecisionLog": "crosssell.decisions",
    "EventType": "crosssell.columns",
    "Explore": "crosssell.arbitration",
    "EventTypeWarning": "crosssell.exceptions",
    "Holdout": "crosssell.decisions",
    "IdMap": "crosssell.ids",
    "NotFittedError": "crosssell.exceptions",
    "Offer": "crosssell.recommender",
    "RecordSettings": "crosssell.records",
    "Recommender": "crosssell.recommender",
    "RetentionModel": "crosssell.retention",
    "Schema": "crosssell.book",
    "SchemaError": "crosssell.exceptions",
    "UnknownIdError": "crosssell.exceptions",
    "allocate": "crosssell.allocation",
    "backtest": "crosssell.evaluation",
    "datasets": "crosssell.datasets",
    "decisions": "crosssell.decisions",
    "evaluation": "crosssell.evaluation",
    "insights": "crosssell.insights",
    "load": "crosssell.persist",
    "plan": "crosssell.account_plan",
    "records": "crosssell.records",
    "report": "crosssell.html",
    "retention": "crosssell.retention",
    "rules": "crosssell.rules",
    "scorers": "crosssell.scorers",
    "tune": "crosssell.evaluation",
    "weighting": "crosssell.weighting",
    "whitespace": "crosssell.insights",
}

__all__ = [
    "ArtifactError",
    "Book",
    "ClientProductMatrix",
    "Columns",
    "Constraints",
    "CrossSellError",
    "CrossSellWarning",
    "DataWarning",
    "DecisionLog",
    "EventType",
    "EventTypeWarning",
    "Explore",
    "Holdout",
    "IdMap",
    "NotFittedError",
    "Offer",
    "Recommender",
    "RecordSettings",
    "RetentionModel",
    "Schema",
    "SchemaError",
    "UnknownIdError",
    "__version__",
    "allocate",
    "backtest",
    "datasets",
    "decisions",
    "evaluation",
    "insights",
    "load",
    "plan",
    "records",
    "report",
    "retention",
    "rules",
    "scorers",
    "tune",
    "weighting",
    "whitespace",
]


def __getattr__(name: str) -> Any:
    """Import a top-level name on first use, then keep it as a plain attribute."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'crosssell' has no attribute {name!r}")
    module = importlib.import_module(where)
    value = module if where == f"crosssell.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
