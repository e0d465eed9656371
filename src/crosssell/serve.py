"""An HTTP service for a fitted recommender: next best actions for a CRM, one client at a time.

:func:`create_app` builds a FastAPI application around one fitted
:class:`~crosssell.Recommender` (or a saved one, loaded once at start-up). The model is only
read while serving: requests never change it, so one process serves concurrent requests safely.

Endpoints
---------
``POST /recommend``
    Body: ``client_id``, optional ``k``, optional fresh ``contracts`` and ``events`` (lists of
    records in crosssell's column names; ``client_id`` may be left out of them) and optional
    ``as_of``. Answers a list of :class:`NextBestAction` records, best first (an empty list
    when the policy leaves nothing to offer). A client the model does not know, sent without
    contracts, answers 404 with a ``detail`` naming the id: an empty list would read as "offer
    nothing", which is a different statement. Invalid bodies answer 422 with the field at fault
    in ``loc``, as FastAPI does for its own validation.
``GET /why-not?client_id=...&product_id=...``
    One sentence on why the product is (or is not) offered (:class:`WhyNot`); 404 for an unknown
    id.
``GET /health``
    Status, the model's ``as_of``, the library version and sizes (:class:`Health`).
``GET /openapi.json``, ``/docs``
    FastAPI's OpenAPI schema and its browser, with examples.

The web stack is optional: install it with ``pip install "crosssell[serve]"``. Neither
``import crosssell`` nor ``import crosssell.serve`` imports FastAPI; :func:`create_app` and
:func:`run` do, and say which extra is missing when they cannot.

The records are plain frozen dataclasses, so :func:`next_best_actions` also serves a batch
export to a CRM without the web stack.
"""

# Annotations are evaluated when the endpoints are defined inside create_app, so FastAPI sees
# the request model defined there; postponing them (PEP 563) would hide it.

import datetime as dt
import hmac
import math
import numbers
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final

import numpy as np
import pandas as pd

from crosssell._params import check_fitted
from crosssell._version import __version__
from crosssell.columns import Columns, OfferType
from crosssell.decisions import DecisionLog, Holdout, decide, no_offer_row, shown_offers
from crosssell.exceptions import CrossSellError, CrossSellWarning, SchemaError, UnknownIdError
from crosssell.matrix import to_as_of
from crosssell.recommender import OFFER_COLUMNS, Offer, Recommender
from crosssell.records import (
    DESCRIPTION_MAX,
    LABELS,
    NAME_MAX,
    UNSAVED,
    RecordSettings,
    offer_records,
    product_names,
    record_head,
    rounded,
)

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = [
    "ACCEPT_LABEL",
    "API_KEY_ENV",
    "API_KEY_FILE_ENV",
    "DESCRIPTION_MAX",
    "HELD_OUT",
    "MAX_BODY_BYTES",
    "NAME_MAX",
    "REJECT_LABEL",
    "Answer",
    "Evidence",
    "Health",
    "HealthScore",
    "NextBestAction",
    "NoOffer",
    "WhyNot",
    "create_app",
    "next_best_actions",
    "product_names",
    "run",
]

#: Label of the button that takes an offer up.
ACCEPT_LABEL: Final = LABELS["en"][0]
#: Label of the button that puts an offer aside.
REJECT_LABEL: Final = LABELS["en"][1]

#: Environment variable holding the API key that requests must carry (see :func:`create_app`).
API_KEY_ENV: Final = "CROSSSELL_API_KEY"
#: Environment variable naming a file whose first line is the API key.
API_KEY_FILE_ENV: Final = "CROSSSELL_API_KEY_FILE"
#: Largest request body accepted by default, in bytes (one client's records fit many times over).
MAX_BODY_BYTES: Final = 4 * 1024 * 1024

_EXTRA_HINT: Final = 'Install it with: pip install "crosssell[serve]"'
_ELLIPSIS: Final = "…"
_MAX_K: Final = 100
_UNAUTHORIZED: Final = 401
_NOT_FOUND: Final = 404
_TOO_LARGE: Final = 413
_INVALID: Final = 422
_SERVER_ERROR: Final = 500
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
# what an error message may quote of the caller's input: enough to recognise it, never all of it
_ECHO_MAX: Final = 80
_MESSAGE_MAX: Final = 2000


def _schema_extra(
    descriptions: Mapping[str, str], example: Mapping[str, Any]
) -> Callable[[dict[str, Any]], None]:
    """Return a hook that writes field descriptions and an example into a JSON schema."""

    def extra(schema: dict[str, Any]) -> None:
        for name, text in descriptions.items():
            schema.get("properties", {}).get(name, {})["description"] = text
        schema["examples"] = [dict(example)]

    return extra


_EXAMPLE_EVIDENCE: Final = {"product_id": "DOCS-3", "weight": 0.7}
_EXAMPLE_ACTION: Final = {
    "id": "3f9a0c1d2e4b5a6f:C0001:BI-2:2025-06-30",
    "name": "BI Standard (cross-sell)",
    "description": "Clients holding DOCS Premium, ERP Standard and SEC Premium also tend to hold "
    "BI Standard.",
    "reason": "Clients holding DOCS Premium, ERP Standard and SEC Premium also tend to hold "
    "BI Standard.",
    "accept_label": ACCEPT_LABEL,
    "reject_label": REJECT_LABEL,
    "valid_from": "2025-06-30",
    "valid_until": "2025-07-30",
    "score": 0.7,
    "propensity": 0.7,
    "value": 615.0,
    "expected_value": 430.5,
    "offer_type": "cross_sell",
    "rank": 1,
    "product_id": "BI-2",
    "client_id": "C0001",
    "evidence": [_EXAMPLE_EVIDENCE, {"product_id": "ERP-2", "weight": 0.675}],
    "cold_start": False,
    "language": "en",
    "action_reference": None,
    "model_id": "3f9a0c1d2e4b5a6f",
}
_EXAMPLE_ANSWER: Final = {
    "client_id": "C0001",
    "as_of": "2025-06-30",
    "model_id": "3f9a0c1d2e4b5a6f",
    "actions": [_EXAMPLE_ACTION],
    "no_offer": None,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """A product the client holds that speaks for an offer, and how strongly.

    Examples
    --------
    >>> Evidence(product_id="P1", weight=0.5)
    Evidence(product_id='P1', weight=0.5)
    """

    product_id: str | int
    weight: float

    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "json_schema_extra": _schema_extra(
            {"product_id": "A product the client holds.", "weight": "Its share of the score."},
            _EXAMPLE_EVIDENCE,
        )
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class NextBestAction:
    """One offer as a CRM next-best-action record.

    Attributes
    ----------
    id : str
        Stable: ``"{model_id}:{client_id}:{product_id}:{valid_from}"``: the same offer of the same
        model on the same day keeps it, in the batch files and over HTTP alike.
    name : str
        Product name and offer type, at most :data:`NAME_MAX` characters.
    description : str
        The reason, cut to :data:`DESCRIPTION_MAX` characters (ending with an ellipsis).
    reason : str
        The whole reason.
    accept_label, reject_label : str
        Button labels: :data:`ACCEPT_LABEL`, :data:`REJECT_LABEL`.
    valid_from, valid_until : datetime.date
        ``as_of`` and ``as_of`` plus the validity window.
    score, propensity, value, expected_value : float
        As in :meth:`crosssell.Recommender.recommend`.
    offer_type : {"upsell", "cross_sell"}
    rank : int
        1 = best.
    product_id, client_id : str or int
        The caller's ids.
    evidence : tuple of Evidence
        Held products that speak for the offer.
    cold_start : bool
        The client held nothing to learn from; the offer follows its segment.
    language : str
        Language code of the labels (see :class:`crosssell.RecordSettings`).
    action_reference : str or None
        A link or key back into the CRM, when the settings give a template.
    model_id : str
        The id of the saved model that made the offer (``"unsaved"`` otherwise).
    decision_id : str or None
        The offer's id in the decision log, when the service keeps one: the CRM sends it
        back with the client's reaction (``POST /reactions``).

    Examples
    --------
    >>> import datetime
    >>> a = NextBestAction(id="C1:P2:2025-06-30", name="P2 (cross-sell)", description="Why.",
    ...     reason="Why.", accept_label=ACCEPT_LABEL, reject_label=REJECT_LABEL,
    ...     valid_from=datetime.date(2025, 6, 30), valid_until=datetime.date(2025, 7, 30),
    ...     score=0.5, propensity=0.5, value=100.0, expected_value=50.0,
    ...     offer_type="cross_sell", rank=1, product_id="P2", client_id="C1", evidence=(),
    ...     cold_start=False)
    >>> a.to_dict()["valid_until"]
    '2025-07-30'
    """

    id: str
    name: str
    description: str
    reason: str
    accept_label: str
    reject_label: str
    valid_from: dt.date
    valid_until: dt.date
    score: float
    propensity: float
    value: float
    expected_value: float
    offer_type: OfferType
    rank: int
    product_id: str | int
    client_id: str | int
    evidence: tuple[Evidence, ...]
    cold_start: bool
    language: str = "en"
    action_reference: str | None = None
    model_id: str = UNSAVED
    decision_id: str | None = None

    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "json_schema_extra": _schema_extra(
            {
                "id": "Stable id: model_id:client_id:product_id:valid_from, the same in the "
                "batch files of the same model.",
                "name": f"Product name and offer type (at most {NAME_MAX} characters).",
                "description": f"The reason, cut to {DESCRIPTION_MAX} characters.",
                "reason": "Why this offer, in one sentence.",
                "accept_label": "Label of the button that takes the offer up.",
                "reject_label": "Label of the button that puts it aside.",
                "valid_from": "The date the offer was made for (as_of).",
                "valid_until": "The last day the offer stands.",
                "score": "The scorer's raw score.",
                "propensity": "Chance-like score in [0, 1] that the client takes the offer.",
                "value": "Annual value of the product to the client (for an upsell, the step).",
                "expected_value": "propensity x value.",
                "offer_type": "upsell (a higher tier of a held family) or cross_sell.",
                "rank": "1 = best.",
                "product_id": "The product offered.",
                "client_id": "The client.",
                "evidence": "Held products that speak for the offer.",
                "cold_start": "True when the client held nothing to learn from.",
                "language": "Language code of the labels.",
                "action_reference": "A link or key back into the CRM, when configured.",
                "model_id": "Hash of the saved model that made the offer.",
                "decision_id": "The offer's id in the decision log (when the service keeps "
                "one): send it back with POST /reactions.",
            },
            _EXAMPLE_ACTION,
        )
    }

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-ready data (dates as ISO text).

        Returns
        -------
        dict

        Examples
        --------
        >>> import datetime
        >>> day = datetime.date(2025, 6, 30)
        >>> NextBestAction(id="a", name="n", description="d", reason="d", accept_label="y",
        ...     reject_label="n", valid_from=day, valid_until=day, score=1.0, propensity=1.0,
        ...     value=1.0, expected_value=1.0, offer_type="upsell", rank=1, product_id=2,
        ...     client_id=1, evidence=(Evidence(product_id=1, weight=1.0),),
        ...     cold_start=False).to_dict()["evidence"]
        [{'product_id': 1, 'weight': 1.0}]
        """
        out = asdict(self)
        out["evidence"] = [asdict(e) for e in self.evidence]
        out["valid_from"] = self.valid_from.isoformat()
        out["valid_until"] = self.valid_until.isoformat()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """What ``GET /health`` answers.

    Attributes
    ----------
    status : str
        ``"ok"``.
    version : str
        The crosssell version serving.
    model_as_of : datetime.date
        The date the model was fitted at.
    clients, products, holdings : int
        Sizes of the book the model was fitted on (holdings: active client-product pairs).
    k : int
        Offers per client by default.
    scorer : str
        The scorer's class name.
    policy : tuple of str
        The names of the policy's rules (empty without a policy).
    validity_days : int
        Days an offer stays valid.

    Examples
    --------
    >>> Health(status="ok", version="0", model_as_of=dt.date(2025, 6, 30), clients=1, products=1,
    ...        holdings=1, k=3, scorer="Blend", policy=(), validity_days=30).status
    'ok'
    """

    status: str
    version: str
    model_as_of: dt.date
    clients: int
    products: int
    holdings: int
    k: int
    scorer: str
    policy: tuple[str, ...]
    validity_days: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthScore:
    """What ``GET /health-score/{client_id}`` answers: a client's retention risk for a CRM.

    Attributes
    ----------
    client_id : str or int
    as_of : datetime.date
        The date the retention model was fitted at.
    health : int
        0 to 100, higher is healthier: ``100 * (1 - p_leave)``, rounded.
    band : str
        ``"healthy"``, ``"watch"`` or ``"at risk"``.
    p_leave : float
        Probability of leaving within ``horizon_days``, calibrated.
    horizon_days : int
    annual_value, value_at_risk : float
        The client's annual value, and ``p_leave`` times it.
    reasons : tuple of str
        What raised the risk most, in words.
    survival : tuple of float
        Probability of still being a client after each of the next 12 months.
    health_change : float or None
        ``health`` minus the health 90 days before (negative: worse); None for a client not
        at risk then.

    Examples
    --------
    >>> HealthScore(client_id="C1", as_of=dt.date(2025, 6, 30), health=46, band="at risk",
    ...             p_leave=0.54, horizon_days=180, annual_value=100.0, value_at_risk=54.0,
    ...             reasons=("a churn signal on 2025-06-01",), survival=(0.9,) * 12).band
    'at risk'
    """

    client_id: str | int
    as_of: dt.date
    health: int
    band: str
    p_leave: float
    horizon_days: int
    annual_value: float
    value_at_risk: float
    reasons: tuple[str, ...]
    survival: tuple[float, ...]
    health_change: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WhyNot:
    """What ``GET /why-not`` answers: the pair asked about, a status, the rule and one sentence.

    Attributes
    ----------
    client_id, product_id : str or int
        The pair, as in the model's book.
    answer : str
        The sentence of :meth:`crosssell.Recommender.why_not`.
    status : str
        One of :data:`crosssell.recommender.WHY_NOT_STATUSES` (``"offered"``, ``"blocked"``...).
    rule, kind : str or None
        The rule that blocks the pair and its kind; None when no rule does.

    Examples
    --------
    >>> WhyNot(client_id="C1", product_id="P1", answer="...", status="held").rule is None
    True
    """

    client_id: str | int
    product_id: str | int
    answer: str
    status: str
    rule: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoOffer:
    """Why a client's list is empty: the no-offer report's sentence and the rules behind it.

    Examples
    --------
    >>> NoOffer(reason="the client is marked do-not-contact", rule="do_not_contact",
    ...         rules=("do_not_contact",)).rule
    'do_not_contact'
    """

    reason: str
    rule: str | None
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What ``POST /recommend`` answers: the actions, and why there are none when so.

    Attributes
    ----------
    client_id : str or int
        The client, as in the model's book.
    as_of : datetime.date
        The date the actions are for.
    model_id : str
        The id of the saved model that answered.
    actions : tuple of NextBestAction
        Best first; empty when nothing fits.
    no_offer : NoOffer or None
        When ``actions`` is empty: the sentence and rule of the no-offer report.
    decision_id : str or None
        When the service keeps a decision log and nothing is offered: the id of that
        "no offer" decision.

    Examples
    --------
    >>> Answer(client_id="C1", as_of=dt.date(2025, 6, 30), model_id="unsaved", actions=(),
    ...        no_offer=NoOffer(reason="no eligible candidate left after the policy",
    ...                         rule=None, rules=())).no_offer.rule is None
    True
    """

    client_id: str | int
    as_of: dt.date
    model_id: str
    actions: tuple[NextBestAction, ...]
    no_offer: NoOffer | None
    decision_id: str | None = None


# --------------------------------------------------------------------------- records


def _cut(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + _ELLIPSIS


def _plain(value: Any) -> Any:
    """Return a numpy scalar as the Python number JSON needs."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def next_best_actions(
    offers: Sequence[Offer] | pd.DataFrame,
    *,
    as_of: Any,
    names: Mapping[Any, str] | None = None,
    validity_days: int = 30,
    model_id: str = UNSAVED,
    settings: RecordSettings | None = None,
) -> list[NextBestAction]:
    """Turn offers into CRM next-best-action records, as :func:`crosssell.records.offer_records`.

    Parameters
    ----------
    offers : list of Offer or DataFrame
        What :meth:`~crosssell.Recommender.recommend_one` or
        :meth:`~crosssell.Recommender.recommend` returned.
    as_of : date-like
        The date the offers were made for: the records' ``valid_from`` and part of their ``id``.
    names : mapping, optional
        Product id to readable name (see :func:`product_names`); default: the ids.
    validity_days : int, default 30
        Days an offer stays valid: ``valid_until = as_of + validity_days`` (``settings``, when
        given, says it instead).
    model_id : str, default "unsaved"
        The model's id (``Recommender.model_id_``), the first part of each ``id``.
    settings : RecordSettings, optional
        Validity, labels, language and ``action_reference``.

    Returns
    -------
    list of NextBestAction
        In the order given; numbers rounded as in files (:func:`crosssell.records.rounded`).

    Raises
    ------
    ValueError
        If ``validity_days`` is not a positive int.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> actions = next_best_actions(rec.recommend_one("C0001"), as_of=rec.as_of_,
    ...                             names=product_names(rec), model_id=rec.model_id_)
    >>> first = actions[0]
    >>> first.id == f"unsaved:C0001:{first.product_id}:2025-06-30", str(first.valid_until)
    (True, '2025-07-30')
    >>> first.id == rec.records(rec.recommend(["C0001"]))["id"].iloc[0]
    True
    """
    days = _check_validity(validity_days, "next_best_actions")
    if settings is None:
        settings = RecordSettings(validity_days=days)
    day = to_as_of(as_of, caller="next_best_actions").date()
    if not isinstance(offers, pd.DataFrame):
        # one client's few offers, as the service answers them: no frame to build
        return _actions_of(list(offers), day, names or {}, model_id, settings)
    frame = offers
    if frame.empty:
        return []
    records = rounded(
        offer_records(frame, as_of=day, model_id=model_id, names=names, settings=settings)
    )
    out = []
    for rec in records.to_dict("records"):
        reason = rec.get(Columns.reason)
        evidence = rec.get(Columns.evidence)
        out.append(
            NextBestAction(
                id=rec["id"],
                name=rec["name"],
                description=rec["description"],
                reason=reason if isinstance(reason, str) and reason else rec["description"],
                accept_label=rec["accept_label"],
                reject_label=rec["reject_label"],
                valid_from=dt.date.fromisoformat(rec["valid_from"]),
                valid_until=dt.date.fromisoformat(rec["valid_until"]),
                score=float(rec[Columns.score]),
                propensity=float(rec[Columns.propensity]),
                value=float(rec[Columns.value]),
                expected_value=float(rec[Columns.expected_value]),
                offer_type=rec[Columns.offer_type],
                rank=int(rec[Columns.rank]),
                product_id=_plain(rec[Columns.product]),
                client_id=_plain(rec[Columns.client]),
                evidence=tuple(_evidence(e) for e in (evidence if evidence is not None else ())),
                cold_start=bool(rec.get(Columns.cold_start, False)),
                language=rec["language"],
                action_reference=rec["action_reference"],
                model_id=rec["model_id"],
                decision_id=_decision_id(rec.get("decision_id")),
            )
        )
    return out


def _actions_of(
    offers: list[Offer],
    day: dt.date,
    names: Mapping[Any, str],
    model_id: str,
    settings: RecordSettings,
) -> list[NextBestAction]:
    """Return the records of Offer objects, field for field those of the frame path."""
    if not offers:
        return []
    # rounded as records.rounded rounds a frame's columns: numpy's round on float64
    money = np.round(np.array([(o.value, o.expected_value) for o in offers], np.float64), 2)
    four = np.round(np.array([(o.score, o.propensity) for o in offers], np.float64), 4)
    accept, reject = settings.labels()
    until = day + dt.timedelta(days=settings.validity_days)
    out = []
    for i, o in enumerate(offers):
        record_id, name, description, reference = record_head(
            o.client_id, o.product_id, str(o.offer_type), o.reason,
            day=day, model_id=model_id, names=names, settings=settings,
        )  # fmt: skip
        out.append(
            NextBestAction(
                id=record_id,
                name=name,
                description=description,
                reason=o.reason if isinstance(o.reason, str) and o.reason else description,
                accept_label=accept,
                reject_label=reject,
                valid_from=day,
                valid_until=until,
                score=float(four[i, 0]),
                propensity=float(four[i, 1]),
                value=float(money[i, 0]),
                expected_value=float(money[i, 1]),
                offer_type=o.offer_type,
                rank=int(o.rank),
                product_id=_plain(o.product_id),
                client_id=_plain(o.client_id),
                evidence=tuple(
                    Evidence(product_id=_plain(p), weight=round(float(w), 4))
                    for p, w in (o.evidence or ())
                ),
                cold_start=bool(o.cold_start),
                language=settings.language,
                action_reference=reference,
                model_id=model_id,
                decision_id=_decision_id(o.decision_id),
            )
        )
    return out


def _decision_id(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_validity(validity_days: Any, owner: str) -> int:
    return _check_positive(validity_days, "validity_days", owner)


def _check_positive(value: Any, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"The {name!r} parameter of {owner} must be an int in the range [1, inf). "
            f"Got {value!r} instead."
        )
    return int(value)


# ------------------------------------------------------------------------------ the app


def _require_web() -> None:
    """Check that FastAPI and Pydantic can be imported, or say which extra installs them."""
    try:
        import fastapi  # noqa: F401
        import pydantic  # noqa: F401
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"crosssell.serve needs FastAPI and Pydantic, which are not installed. {_EXTRA_HINT}"
        ) from err


def _model(model: Recommender | str | os.PathLike[str]) -> Recommender:
    """Return ``model`` itself, or the saved model at that path, checked to be fitted."""
    if isinstance(model, Recommender):
        check_fitted(model, "scorer_")
        return model
    if isinstance(model, str | os.PathLike):
        from crosssell.persist import load

        loaded = load(model)
        check_fitted(loaded, "scorer_")
        return loaded
    raise TypeError(
        "The 'model' parameter of create_app must be a fitted Recommender or the path of a saved "
        f"model. Got {type(model).__name__} instead."
    )


def _echo(value: Any) -> str:
    """Quote a value of the caller's input, cut to :data:`_ECHO_MAX` characters."""
    return _cut(repr(value), _ECHO_MAX)


def _error(loc: Sequence[str | int], message: str, kind: str) -> list[dict[str, Any]]:
    """Return a validation error in FastAPI's shape, so clients parse one format."""
    return [{"loc": list(loc), "msg": _cut(message, _MESSAGE_MAX), "type": kind}]


def _schema_error_loc(err: SchemaError) -> list[str | int]:
    loc: list[str | int] = ["body", err.table]
    if err.rows:
        loc.append(err.rows[0])
    if err.column:
        loc.append(err.column)
    return loc


class _RecordError(ValueError):
    """A fresh record that cannot be used; ``loc`` points at it as FastAPI's errors do."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _fresh_records(
    records: Sequence[Mapping[str, Any]] | None, table: str, client: Any
) -> pd.DataFrame | None:
    """Return the records as a frame of this client's rows (``client_id`` filled in when left out).

    Raises :class:`_RecordError` when a record names another client or holds a number that is
    not finite (JSON has no NaN or infinity, but Python's parser lets them through).
    """
    if not records:
        return None
    rows = []
    for i, record in enumerate(records):
        row = dict(record)
        given = row.get(Columns.client)
        if given is not None and str(given) != str(client):
            raise _RecordError(
                ["body", table, i, Columns.client],
                f"{table}[{i}] is for client {_echo(given)}, not {_echo(client)}; send one "
                "client's records per request (or leave client_id out).",
            )
        for column, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise _RecordError(
                    ["body", table, i, column],
                    f"{table}[{i}].{_cut(column, _ECHO_MAX)} is {value}, which is not a number "
                    "JSON allows; send a finite number, or leave the field out.",
                )
        row[Columns.client] = client
        rows.append(row)
    return pd.DataFrame(rows)


def _check_as_of(day: dt.date | None) -> pd.Timestamp | None:
    """Return ``as_of`` as a timestamp, or raise :class:`_RecordError` if pandas cannot hold it."""
    if day is None:
        return None
    try:
        return pd.Timestamp(day).as_unit("ns")
    except (ValueError, OverflowError):
        raise _RecordError(
            ["body", "as_of"],
            f"as_of {day.isoformat()} is out of range: dates run from "
            f"{pd.Timestamp.min.date() + dt.timedelta(days=1)} to {pd.Timestamp.max.date()}.",
        ) from None


def _read_key(api_key: str | None, api_key_file: str | os.PathLike[str] | None) -> str | None:
    """Return the API key: given, read from a file, or from the environment; None for no key."""
    if api_key is not None and api_key_file is not None:
        raise ValueError("Give create_app either 'api_key' or 'api_key_file', not both.")
    if api_key is None and api_key_file is None:
        api_key = os.environ.get(API_KEY_ENV) or None
        api_key_file = os.environ.get(API_KEY_FILE_ENV) or None
        if api_key is not None and api_key_file is not None:
            raise ValueError(
                f"Both {API_KEY_ENV} and {API_KEY_FILE_ENV} are set; set only one of them."
            )
    if api_key_file is not None:
        try:
            with open(api_key_file, encoding="utf-8") as file:
                api_key = file.readline().strip()
        except OSError as err:
            raise ValueError(
                f"Cannot read the API key file {os.fspath(api_key_file)!r}: {err.strerror}."
            ) from None
    if api_key is None:
        return None
    api_key = api_key.strip()
    if len(api_key) < 16 or any(ch.isspace() for ch in api_key):
        raise ValueError(
            "The API key must be at least 16 characters with no blanks (e.g. the output of "
            "'python -c \"import secrets; print(secrets.token_urlsafe(32))\"')."
        )
    return api_key


def _presented_key(request: "Request") -> str:
    """Return the key a request carries: ``Authorization: Bearer ...`` or ``X-API-Key``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("x-api-key", "").strip()


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, before parsing."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(send)
                return
        seen = 0
        refused = False

        async def limited() -> Any:
            nonlocal seen, refused
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    # ends the body early; the answer below replaces the app's
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if refused:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not refused:
                raise
        if refused and not started:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        import json

        body = json.dumps(
            {"detail": f"The request body is larger than {self.limit} bytes; send less."}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": _TOO_LARGE,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _guard(app: "FastAPI", key: str | None, limit: int) -> Callable[..., None]:
    """Add the body limit and the JSON error handlers to ``app``; return the key check."""
    from fastapi import HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    app.add_middleware(_BodyLimit, limit=limit)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the whole input of each error; a huge body would come straight back
        detail = [
            {
                "loc": [p if isinstance(p, int) else _cut(str(p), _ECHO_MAX) for p in e["loc"]],
                "msg": _cut(str(e.get("msg", "")), _MESSAGE_MAX),
                "type": e.get("type", "value_error"),
            }
            for e in exc.errors()[:20]
        ]
        return JSONResponse(status_code=_INVALID, content={"detail": detail})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=_SERVER_ERROR,
            content={"detail": f"Internal error ({type(exc).__name__}); see the server log."},
        )

    def authorised(request: Request) -> None:
        if key is None:
            return
        given = _presented_key(request)
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPException(
                _UNAUTHORIZED,
                detail="Missing or wrong API key: send 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return authorised


def create_app(  # noqa: PLR0915 (the routes are defined inside, around the model)
    model: Recommender | str | os.PathLike[str],
    *,
    validity_days: int = 30,
    title: str = "crosssell",
    api_key: str | None = None,
    api_key_file: str | os.PathLike[str] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    settings: RecordSettings | None = None,
    log: DecisionLog | str | os.PathLike[str] | None = None,
    holdout: Holdout | None = None,
    campaign: str | None = None,
    retention: Any = None,
) -> "FastAPI":
    """Build the HTTP service around one fitted model.

    With an API key, ``/recommend`` and ``/why-not`` answer 401 unless the request carries it,
    as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; ``/health`` and the OpenAPI
    pages stay open. Without ``api_key`` and ``api_key_file``, the key is read from the
    environment: :data:`API_KEY_ENV`, or the file named by :data:`API_KEY_FILE_ENV`; when
    neither is set, the service is open to whoever can reach it.

    Errors are JSON (``{"detail": ...}``) with a 4xx status for anything wrong with a request,
    and quote at most a few dozen characters of what was sent.

    Parameters
    ----------
    model : Recommender or path
        A fitted recommender, or the path of a saved one (loaded here, once).
    validity_days : int, default 30
        Days an offer stays valid in the CRM (``valid_until``).
    title : str, default "crosssell"
        Title of the OpenAPI schema.
    api_key : str, optional
        The key requests must carry (at least 16 characters, no blanks).
    api_key_file : path, optional
        A file whose first line is the key (keeps it out of the command line and the code).
    max_body_bytes : int, default MAX_BODY_BYTES (4 MiB)
        Larger request bodies answer 413 before they are read.
    settings : RecordSettings, optional
        Labels, language and ``action_reference`` of the records (its ``validity_days`` wins
        over ``validity_days`` when given).
    log : DecisionLog, URL or path, optional
        Record every ``/recommend`` answer as decisions (each action then carries its
        ``decision_id``, an empty answer the id of its "no offer" decision), and accept the
        clients' reactions at ``POST /reactions``.
    holdout : Holdout, optional
        Held-out clients get no actions (``no_offer.rule`` is ``"holdout"``); what they would
        have been offered is recorded with ``arm="holdout"``.
    campaign : str, optional
        Recorded with the decisions; scopes the holdout draw.
    retention : RetentionModel or path, optional
        A fitted :class:`~crosssell.retention.RetentionModel`, or a file of
        :func:`crosssell.persist.save_retention`: ``GET /health-score/{client_id}`` then
        answers each client's health (0-100), band, chance of leaving, value at risk, reasons
        and 12-month survival, computed once at start.

    Returns
    -------
    fastapi.FastAPI
        The application; ``app.state.recommender`` holds the model.

    Raises
    ------
    ImportError
        If FastAPI is not installed (the ``serve`` extra).
    NotFittedError
        If the recommender is not fitted.
    ValueError
        If ``validity_days`` or ``max_body_bytes`` is not a positive int, or the API key is
        too short or cannot be read.

    Examples
    --------
    >>> import crosssell as cs
    >>> from fastapi.testclient import TestClient
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> client = TestClient(create_app(rec))
    >>> body = client.post("/recommend", json={"client_id": "C0001"}).json()
    >>> actions = body["actions"]
    >>> [a["product_id"] for a in actions] == [o.product_id for o in rec.recommend_one("C0001")]
    True
    >>> body["as_of"], actions[0]["valid_until"], actions[0]["accept_label"], body["no_offer"]
    ('2025-06-30', '2025-07-30', 'Interested', None)
    >>> answer = client.get("/why-not", params={"client_id": "C0001", "product_id": "CRM-1"})
    >>> answer.json()["answer"], answer.json()["status"]
    ("'CRM-1' is allowed for 'C0001' but outranked: ...", 'ranked_below')
    >>> client.post("/recommend", json={"client_id": "nobody"}).status_code
    404
    >>> locked = TestClient(create_app(rec, api_key="a-long-enough-secret"))
    >>> locked.post("/recommend", json={"client_id": "C0001"}).status_code
    401
    >>> locked.post("/recommend", json={"client_id": "C0001"},
    ...             headers={"Authorization": "Bearer a-long-enough-secret"}).status_code
    200
    >>> locked.get("/health").status_code
    200
    """
    _require_web()
    from fastapi import Depends, FastAPI, HTTPException, Query
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field

    days = _check_validity(validity_days, "create_app")
    if settings is not None and not isinstance(settings, RecordSettings):
        raise TypeError(
            "The 'settings' parameter of create_app must be a RecordSettings or None. "
            f"Got {type(settings).__name__} instead."
        )
    record_settings = settings if settings is not None else RecordSettings(validity_days=days)
    days = record_settings.validity_days
    limit = _check_positive(max_body_bytes, "max_body_bytes", "create_app")
    key = _read_key(api_key, api_key_file)
    rec = _model(model)
    decision_log = log if log is None or isinstance(log, DecisionLog) else DecisionLog(log)
    # compiled loops are built (or loaded from disk) now, not on the first request
    rec._warm_up()
    names = product_names(rec)
    client_ids = rec.book_.client_ids.external
    product_ids = rec.book_.product_ids.external
    health = Health(
        status="ok",
        version=__version__,
        model_as_of=rec.as_of_.date(),
        clients=len(client_ids),
        products=len(product_ids),
        holdings=int(rec.matrix_.client_product.nnz),
        k=int(rec.k_),
        scorer=type(rec.scorer_).__name__,
        policy=tuple(rec.policy.names) if rec.policy is not None else (),
        validity_days=days,
    )

    scores = _health_scores(retention) if retention is not None else None

    class RecommendRequest(BaseModel):
        """Ask for one client's next best actions, optionally with data the model has not seen."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"client_id": "C0001", "k": 2},
                    {
                        "client_id": "C0001",
                        "events": [{"date": "2025-06-30", "type": "complaint_opened"}],
                    },
                ]
            },
        )

        client_id: str | int = Field(description="The client, as in the model's book.")
        k: int | None = Field(
            default=None, ge=1, le=_MAX_K, description="Offers wanted; default the model's k."
        )
        contracts: list[dict[str, Any]] | None = Field(
            default=None,
            description="New contracts of this client (client_id, product_id, start_date, ...); "
            "client_id may be left out.",
        )
        events: list[dict[str, Any]] | None = Field(
            default=None,
            description="New events of this client (date, type, product_id, ...), e.g. a "
            "complaint opened today.",
        )
        as_of: dt.date | None = Field(
            default=None, description="The date to recommend for; default the model's as_of."
        )

    app = FastAPI(
        title=title,
        version=__version__,
        description="Next best actions (upsell and cross-sell offers) for a CRM, with reasons.",
        docs_url=None,
        redoc_url=None,
        openapi_tags=_TAGS,
    )
    _mount_docs(app, title)
    app.state.recommender = rec
    app.state.validity_days = days
    app.state.api_key = key
    authorised = _guard(app, key, limit)
    guarded = [Depends(authorised)]
    not_found: dict[int | str, dict[str, Any]] = {
        _NOT_FOUND: {"description": "Unknown client or product id."},
        _UNAUTHORIZED: {"description": "Missing or wrong API key (when the service has one)."},
    }

    @app.get("/health", response_model=Health, summary="Status and model facts", tags=["service"])
    def get_health() -> Health:
        return health

    @app.post(
        "/recommend",
        response_model=Answer,
        summary="Next best actions for one client",
        dependencies=guarded,
        tags=["offers"],
        responses={
            **not_found,
            200: {"content": {"application/json": {"example": _EXAMPLE_ANSWER}}},
        },
    )
    def post_recommend(request: RecommendRequest) -> Any:
        client = rec.book_.client_ids.coerce(request.client_id)
        if client not in client_ids and not request.contracts:
            raise HTTPException(
                _NOT_FOUND,
                detail=f"Client {_echo(client)} is not in the book this model was fitted on. "
                "Send its contracts to score it.",
            )
        try:
            as_of = _check_as_of(request.as_of)
            contracts = _fresh_records(request.contracts, "contracts", client)
            events = _fresh_records(request.events, "events", client)
        except _RecordError as err:
            detail = _error(err.loc, str(err), "value_error")
            return JSONResponse(status_code=_INVALID, content={"detail": detail})
        try:
            offers = rec.recommend_one(
                client, contracts=contracts, events=events, as_of=as_of, k=request.k
            )
        except SchemaError as err:
            detail = _error(_schema_error_loc(err), str(err), "schema_error")
            return JSONResponse(status_code=_INVALID, content={"detail": detail})
        except UnknownIdError as err:
            detail = _error(["body", "contracts"], str(err), "unknown_id")
            return JSONResponse(status_code=_INVALID, content={"detail": detail})
        except (CrossSellError, ValueError, TypeError, OverflowError) as err:
            # what the caller sent cannot be used (a date pandas cannot hold, a value of the
            # wrong kind): say so, as a 4xx, rather than fail
            detail = _error(["body"], str(err), "value_error")
            return JSONResponse(status_code=_INVALID, content={"detail": detail})
        day = as_of if as_of is not None else rec.as_of_
        no_offer = None
        if not offers and client in client_ids:
            reason, rules = rec.no_offer_reason(client, events=events)
            no_offer = NoOffer(reason=reason, rule=rules[0] if rules else None, rules=rules)
        frame: Any = offers
        decision_id = None
        if decision_log is not None or holdout is not None:
            frame, decision_id, held = _decide(
                rec, client, offers, no_offer, day, log=decision_log, holdout=holdout,
                campaign=campaign,
            )  # fmt: skip
            if held:
                no_offer = NoOffer(reason=HELD_OUT, rule="holdout", rules=("holdout",))
        actions = next_best_actions(
            frame, as_of=day, names=names, model_id=rec.model_id_, settings=record_settings
        )
        return Answer(
            client_id=_plain(client),
            as_of=pd.Timestamp(day).date(),
            model_id=rec.model_id_,
            actions=tuple(actions),
            no_offer=no_offer,
            decision_id=decision_id,
        )

    if decision_log is not None:
        _reactions_route(app, decision_log, guarded)

    @app.get(
        "/why-not",
        response_model=WhyNot,
        summary="Why a product is, or is not, offered to a client",
        dependencies=guarded,
        tags=["explanations"],
        responses=not_found,
    )
    def get_why_not(
        client_id: Annotated[str, Query(examples=["C0001"])],
        product_id: Annotated[str, Query(examples=["CRM-1"])],
    ) -> WhyNot:
        client = rec.book_.client_ids.coerce(client_id)
        product = rec.book_.product_ids.coerce(product_id)
        if client not in client_ids:
            raise HTTPException(
                _NOT_FOUND,
                detail=f"Client {_echo(client)} is not in the book this model was fitted on.",
            )
        if product not in product_ids:
            raise HTTPException(
                _NOT_FOUND, detail=f"Product {_echo(product)} is not in the model's catalogue."
            )
        found = rec.why_not_answer(client, product)
        return WhyNot(
            client_id=_plain(client),
            product_id=_plain(product),
            answer=found.sentence,
            status=found.status,
            rule=found.rule,
            kind=found.kind,
        )

    if scores is not None:
        table, spell, as_of_day, horizon_days = scores

        @app.get(
            "/health-score/{client_id}",
            response_model=HealthScore,
            summary="A client's retention risk: health, band, value at risk and reasons",
            dependencies=guarded,
            tags=["retention"],
            responses=not_found,
        )
        def get_health_score(client_id: str) -> HealthScore:
            client = spell(client_id)
            row = table.get(client)
            if row is None:
                raise HTTPException(
                    _NOT_FOUND,
                    detail=f"Client {_echo(client)} has no health score: the retention model "
                    "knows only clients holding something at its date.",
                )
            return HealthScore(
                client_id=_plain(client),
                as_of=as_of_day,
                health=int(row["health"]),
                band=str(row["band"]),
                p_leave=float(row["p_leave"]),
                horizon_days=horizon_days,
                annual_value=float(row["annual_value"]),
                value_at_risk=float(row["value_at_risk"]),
                reasons=tuple(r for r in str(row["reasons"] or "").split("; ") if r),
                survival=tuple(float(v) for v in row["survival"]),
                health_change=(
                    None if pd.isna(row["health_change"]) else float(row["health_change"])
                ),
            )

    return app


# how far back the health score's change is read
_TREND: Final = "90D"


def _health_scores(
    retention: Any,
) -> tuple[dict[Any, dict[str, Any]], Callable[[Any], Any], dt.date, int]:
    """Score every client once: the table, the id speller, the date and the horizon."""
    from crosssell.retention import RetentionModel, survival_columns

    model = retention
    if isinstance(retention, str | os.PathLike):
        from crosssell.persist import load_retention

        model = load_retention(retention)
    if not isinstance(model, RetentionModel):
        raise TypeError(
            "The 'retention' parameter of create_app must be a fitted RetentionModel or the "
            f"path of a saved one. Got {type(model).__name__} instead."
        )
    check_fitted(model, "base_rate_")
    risk = model.health_trend(since=_TREND)
    curves = model.survival().set_index(Columns.client)[survival_columns()]
    months = curves.reindex(risk[Columns.client]).to_numpy(dtype=float).round(4).tolist()
    table: dict[Any, dict[str, Any]] = {}
    for raw, curve in zip(risk.to_dict("records"), months, strict=True):
        record = {str(key): value for key, value in raw.items()}
        record["survival"] = curve
        table[record[Columns.client]] = record
    return table, model.book_.client_ids.coerce, model.as_of_.date(), int(model.horizon_.days)


#: The no-offer reason of a held-out client.
HELD_OUT: Final = (
    "the client is in the holdout group: no proactive offer, so that the lift of proposing "
    "can be measured"
)


def _decide(
    rec: Recommender,
    client: Any,
    offers: list[Offer],
    no_offer: NoOffer | None,
    day: Any,
    *,
    log: DecisionLog | None,
    holdout: Holdout | None,
    campaign: str | None,
) -> tuple[pd.DataFrame, str | None, bool]:
    """Record one answer; return the offers shown, the no-offer decision's id, held out or not."""
    frame = pd.DataFrame([o.to_dict() for o in offers], columns=list(OFFER_COLUMNS))
    report = None
    if not offers:
        reason = no_offer.reason if no_offer is not None else "the client is not in the book"
        rules = no_offer.rules if no_offer is not None else ()
        report = no_offer_row(client, reason, rules)
    rows, shown = decide(
        frame,
        report,
        as_of=day,
        model_id=rec.model_id_,
        policy=rec.policy,
        holdout=holdout,
        campaign=campaign,
    )
    held = holdout is not None and bool((rows["arm"] == "holdout").any())
    decision_id = None
    if log is not None and not offers:
        decision_id = str(rows["decision_id"].iloc[-1])
    return shown_offers(frame, rows, shown, log), decision_id, held


def _reactions_route(app: "FastAPI", log: DecisionLog, guarded: list[Any]) -> None:
    """Add ``POST /reactions``: one reaction or a list, all kept or none."""
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field

    class Reaction(BaseModel):
        """What a client did with an offer."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [{"decision_id": "0b8f…", "outcome": "accepted", "at": "2025-07-02"}]
            },
        )

        decision_id: str = Field(description="The decision_id of the action, as answered.")
        outcome: str = Field(description="accepted, declined, ignored or not_reached.")
        at: dt.datetime | None = Field(default=None, description="When; default now.")
        value: float | None = Field(default=None, description="The value taken up.")
        note: str | None = Field(default=None, description="Free text.")

    class Recorded(BaseModel):
        """How many reactions were kept, and how many were already in the log."""

        recorded: int
        repeated: int

    @app.post(
        "/reactions",
        response_model=Recorded,
        summary="Record what clients did with offers",
        dependencies=guarded,
        tags=["offers"],
        responses={_INVALID: {"description": "A refused reaction: its row and the reason."}},
    )
    def post_reactions(body: Reaction | list[Reaction]) -> Any:
        items = body if isinstance(body, list) else [body]
        frame = pd.DataFrame(
            {
                "decision_id": [r.decision_id for r in items],
                "outcome": [r.outcome for r in items],
                "reacted_at": [r.at for r in items],
                "value": [r.value for r in items],
                "note": [r.note for r in items],
            }
        )
        report = log.react_many(frame, all_or_nothing=True)
        if len(report.rejected):
            batch = isinstance(body, list)
            detail = [
                _error(
                    ["body", int(r["row"]), _FIELD_OF.get(str(r["column"]), str(r["column"]))]
                    if batch
                    else ["body", _FIELD_OF.get(str(r["column"]), str(r["column"]))],
                    f"{r['reason']}; nothing was recorded",
                    "reaction",
                )[0]
                for r in report.rejected.to_dict("records")
            ]
            return JSONResponse(status_code=_INVALID, content={"detail": detail})
        return Recorded(recorded=report.recorded, repeated=report.repeated)


# the request's field of each column of a refused reaction
_FIELD_OF: Final = {"reacted_at": "at"}

_TAGS: Final = [
    {"name": "offers", "description": "Next best actions for one client."},
    {"name": "explanations", "description": "Why an offer is, or is not, made."},
    {"name": "service", "description": "Status of the service and its model."},
    {"name": "retention", "description": "Who may leave, with the value at stake and why."},
]
# the Swagger UI's own files, served by the service (no request leaves the host)
_DOCS_ASSETS: Final = "/docs-assets"


def _mount_docs(app: "FastAPI", title: str) -> None:
    """Serve ``/docs`` with the Swagger UI files of the ``serve`` extra, from this service."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    try:
        import swagger_ui_bundle  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - only without the serve extra's bundle
        return
    app.mount(
        _DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets"
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title}: API",
            swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_ASSETS}/favicon-32x32.png",
        )


def run(
    model: Recommender | str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    validity_days: int = 30,
    log_level: str = "info",
    api_key_file: str | os.PathLike[str] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    settings: RecordSettings | None = None,
    log: DecisionLog | str | os.PathLike[str] | None = None,
    holdout: Holdout | None = None,
    campaign: str | None = None,
    retention: Any = None,
) -> None:
    """Serve ``model`` with uvicorn until interrupted.

    Linear algebra runs on one thread per request: the requests themselves run in parallel, and
    nested BLAS threads would only compete with them (and stretch the slowest answers).

    Listening beyond this machine (``host`` other than a loopback address) without an API key
    issues a :class:`~crosssell.exceptions.CrossSellWarning`: anyone who reaches the port could
    read every client's offers.

    Parameters
    ----------
    model : Recommender or path
        As in :func:`create_app`.
    host : str, default "127.0.0.1"
        Address to listen on.
    port : int, default 8000
        Port to listen on.
    validity_days : int, default 30
        As in :func:`create_app`.
    log_level : str, default "info"
        uvicorn's log level.
    api_key_file : path, optional
        A file whose first line is the API key; default: the environment (see
        :func:`create_app`).
    max_body_bytes : int, default MAX_BODY_BYTES (4 MiB)
        As in :func:`create_app`.
    settings : RecordSettings, optional
        As in :func:`create_app`.
    log, holdout, campaign : optional
        As in :func:`create_app`: record the answers, accept reactions, hold clients out.
    retention : RetentionModel or path, optional
        As in :func:`create_app`: serve ``GET /health-score/{client_id}``.

    Raises
    ------
    ImportError
        If FastAPI or uvicorn is not installed (the ``serve`` extra).

    Examples
    --------
    >>> run("model.crosssell", port=8080)  # doctest: +SKIP
    """
    app = create_app(
        model,
        validity_days=validity_days,
        api_key_file=api_key_file,
        max_body_bytes=max_body_bytes,
        settings=settings,
        log=log,
        holdout=holdout,
        campaign=campaign,
        retention=retention,
    )
    if app.state.api_key is None and host not in _LOOPBACK:
        warnings.warn(
            f"Serving on {host} without an API key: anyone who reaches port {port} can read "
            f"every client's offers. Set {API_KEY_ENV} (or {API_KEY_FILE_ENV}, or pass "
            "--api-key-file), or listen on 127.0.0.1 behind a proxy that authenticates.",
            CrossSellWarning,
            stacklevel=2,
        )
    try:
        import uvicorn
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"crosssell.serve needs uvicorn, which is not installed. {_EXTRA_HINT}"
        ) from err
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        uvicorn.run(app, host=host, port=port, log_level=log_level)


def _evidence(entry: Any) -> Evidence:
    """One evidence entry of a frame ({product_id, weight}) or of an Offer ((id, weight))."""
    if isinstance(entry, Mapping):
        return Evidence(product_id=_plain(entry[Columns.product]), weight=float(entry["weight"]))
    product, weight = entry
    return Evidence(product_id=_plain(product), weight=float(weight))
