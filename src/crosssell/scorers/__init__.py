"""Scorers: learn from who holds what, then score clients against every product.

Every scorer follows scikit-learn's estimator contract (see :class:`~crosssell.scorers.base.Scorer`)
and takes a :class:`~crosssell.matrix.ClientProductMatrix` (rows are clients, columns are products).

Examples
--------
>>> from crosssell import scorers
>>> scorers.ALS(factors=32, random_state=0)
ALS(factors=32, random_state=0)
"""

from crosssell.scorers._features import FeatureContext
from crosssell.scorers.base import Scorer, check_random_state
from crosssell.scorers.blend import Blend
from crosssell.scorers.cooccurrence import CoOccurrence
from crosssell.scorers.factorization import ALS, BPR, auto_regularization
from crosssell.scorers.neighbours import ItemKNN
from crosssell.scorers.popularity import Popularity
from crosssell.scorers.ranker import Ranker
from crosssell.scorers.response import Response
from crosssell.scorers.uplift import UPLIFT_COLUMNS, Uplift

__all__ = [
    "ALS",
    "BPR",
    "UPLIFT_COLUMNS",
    "Blend",
    "CoOccurrence",
    "FeatureContext",
    "ItemKNN",
    "Popularity",
    "Ranker",
    "Response",
    "Scorer",
    "Uplift",
    "auto_regularization",
    "check_random_state",
]
