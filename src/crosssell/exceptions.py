"""Exceptions and warnings raised by crosssell.

Callers route errors by class and read their fields; they never need to parse a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ArtifactError",
    "CrossSellError",
    "CrossSellWarning",
    "DataWarning",
    "EventTypeWarning",
    "InvalidParameterError",
    "NotFittedError",
    "OverlapWarning",
    "PurchaseLinesWarning",
    "SchemaError",
    "ScoringOnlyError",
    "UnknownIdError",
]


class CrossSellError(Exception):
    """Base class of every error crosssell raises on purpose.

    Examples
    --------
    >>> from crosssell.exceptions import CrossSellError, SchemaError
    >>> issubclass(SchemaError, CrossSellError)
    True
    """


class SchemaError(CrossSellError, ValueError):
    """Input data that breaks a rule of the data model.

    Parameters
    ----------
    message : str
        The whole readable message (table, column, rule, count, up to five rows, a fix).
    table : str
        The table at fault: ``contracts``, ``products``, ``clients``, ``events`` or
        ``transactions``.
    column : str or None
        The column at fault, if one is.
    rule : str or None
        A short name of the broken rule, e.g. ``"end_before_start"``.
    rows : sequence of int
        Positions (0-based, in the caller's frame) of the offending rows; all of them, not only the
        five shown in the message.

    Examples
    --------
    >>> err = SchemaError("contracts: 'start_date' is missing", table="contracts",
    ...                   column="start_date")
    >>> err.table, err.column, err.rows
    ('contracts', 'start_date', ())
    """

    def __init__(
        self,
        message: str,
        *,
        table: str,
        column: str | None = None,
        rule: str | None = None,
        rows: Sequence[int] = (),
    ) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.rule = rule
        self.rows = tuple(int(r) for r in rows)


class InvalidParameterError(CrossSellError, ValueError, TypeError):
    """A parameter of an estimator, rule or builder that it does not admit.

    A ``ValueError`` and a ``TypeError`` both, as scikit-learn's, so callers catching either keep
    working.

    Parameters
    ----------
    message : str
        ``The 'k' parameter of Recommender must be an int in the range [1, inf). Got 0 instead.``
    owner : str
        The class whose parameter it is.
    parameter : str
        The parameter's name.

    Examples
    --------
    >>> err = InvalidParameterError("The 'k' parameter ...", owner="Recommender", parameter="k")
    >>> err.owner, err.parameter, isinstance(err, ValueError)
    ('Recommender', 'k', True)
    """

    def __init__(self, message: str, *, owner: str = "", parameter: str = "") -> None:
        super().__init__(message)
        self.owner = owner
        self.parameter = parameter


class NotFittedError(CrossSellError, ValueError, AttributeError):
    """An estimator was used before ``fit``.

    Examples
    --------
    >>> raise NotFittedError("This ALS instance is not fitted yet. Call 'fit' before using it.")
    Traceback (most recent call last):
    ...
    crosssell.exceptions.NotFittedError: This ALS instance is not fitted yet. Call 'fit' ...
    """


class ScoringOnlyError(NotFittedError):
    """A method that reads the fitted Book was called on a model loaded from a scoring-only save.

    Such a file (``rec.save(path, scoring_only=True)``) holds no events, so only fresh frames
    are scored (``recommend_frames``, ``suppressed_frames``). A :class:`NotFittedError`, so
    code that caught that before still catches it.

    Examples
    --------
    >>> raise ScoringOnlyError("Recommender.recommend reads the fitted Book's events ...")
    Traceback (most recent call last):
    ...
    crosssell.exceptions.ScoringOnlyError: Recommender.recommend reads the fitted Book's ...
    """


class UnknownIdError(CrossSellError, KeyError):
    """A client or product id that the fitted data does not know.

    Parameters
    ----------
    message : str
        Readable message.
    ids : sequence
        The unknown ids, as the caller gave them.

    Examples
    --------
    >>> err = UnknownIdError("unknown client ids: 'C9'", ids=["C9"])
    >>> err.ids
    ('C9',)
    """

    def __init__(self, message: str, *, ids: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.ids = tuple(ids)

    def __str__(self) -> str:
        # KeyError quotes its argument; a readable message is more useful here.
        return str(self.args[0])


class ArtifactError(CrossSellError):
    """A saved model that cannot be loaded safely: corrupt, truncated, foreign or too new.

    Examples
    --------
    >>> issubclass(ArtifactError, CrossSellError)
    True
    """


class CrossSellWarning(UserWarning):
    """Base class of crosssell's warnings.

    Examples
    --------
    >>> issubclass(DataWarning, CrossSellWarning)
    True
    """


class DataWarning(CrossSellWarning):
    """Input data that was accepted but deserves a look (e.g. ids normalised, rows collected aside).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("3 float ids read as integers", DataWarning, stacklevel=1)
    >>> caught[0].category.__name__
    'DataWarning'
    """


class EventTypeWarning(DataWarning):
    """Events of types without a built-in meaning were kept (for rules of the caller's own).

    One warning lists them all with their counts; a type spelled like a built-in one
    (``complaint_openned``) is an error instead.

    Examples
    --------
    >>> issubclass(EventTypeWarning, DataWarning)
    True
    """


class PurchaseLinesWarning(DataWarning):
    """A contracts table that looks like purchase lines: no end dates, one row per purchase.

    Read as contracts, every purchase becomes a product held forever; purchase lines belong in
    :meth:`crosssell.Book.from_transactions` (``crosssell ... --transactions FILE`` on the
    command line), where a purchase counts as holding the product for a look-back window.

    Examples
    --------
    >>> issubclass(PurchaseLinesWarning, DataWarning)
    True
    """


class OverlapWarning(CrossSellWarning):
    """An off-policy estimate resting on offers the logged policy (almost) never showed.

    :func:`crosssell.evaluation.off_policy` warns when the candidate's offers are poorly
    covered by the log or the effective sample size is tiny: the estimate is then unreliable.

    Examples
    --------
    >>> issubclass(OverlapWarning, CrossSellWarning)
    True
    """
