"""crosssell: which existing clients to offer what, and when to offer nothing.

Examples
--------
>>> import crosssell as cs
>>> isinstance(cs.__version__, str)
True
"""

from crosssell import datasets, evaluation, insights, rules, scorers, weighting
from crosssell._version import __version__
from crosssell.account_plan import plan
from crosssell.book import Book, Schema
from crosssell.columns import Columns, EventType
from crosssell.evaluation import backtest, tune
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

__all__ = [
    "ArtifactError",
    "Book",
    "ClientProductMatrix",
    "Columns",
    "CrossSellError",
    "CrossSellWarning",
    "DataWarning",
    "EventType",
    "EventTypeWarning",
    "IdMap",
    "NotFittedError",
    "Offer",
    "Recommender",
    "Schema",
    "SchemaError",
    "UnknownIdError",
    "__version__",
    "backtest",
    "datasets",
    "evaluation",
    "insights",
    "load",
    "plan",
    "report",
    "rules",
    "scorers",
    "tune",
    "weighting",
    "whitespace",
]
