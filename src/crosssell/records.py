"""Next-best-action records: one offer, written the same in Python, in files and over HTTP.

A CRM stores an offer under one external id, whether it came from the nightly batch file or from
the HTTP service during a call. :func:`offer_records` adds to an offers frame the fields a CRM's
next-best-action object needs: a stable ``id`` (the model's id, the client, the product and the
day the offer is valid from), a short ``name``, a ``description``, the validity window, the labels
of the two buttons (in a language), an optional link back to the CRM (``action_reference``) and
the ``model_id``. :class:`RecordSettings` holds the choices; :func:`rounded` is what files carry
(money to cents, probabilities to four digits), while frames keep full precision.

Examples
--------
>>> import crosssell as cs
>>> rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
>>> records = offer_records(rec.recommend(), as_of=rec.as_of_, names=product_names(rec))
>>> records.columns[:4].tolist()
['id', 'name', 'description', 'valid_from']
>>> records["id"].iloc[0].startswith("unsaved:C0001:")
True
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from crosssell.columns import Columns

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from crosssell.recommender import Recommender

__all__ = [
    "DESCRIPTION_MAX",
    "LABELS",
    "NAME_MAX",
    "RECORD_COLUMNS",
    "UNSAVED",
    "RecordSettings",
    "offer_records",
    "product_names",
    "record_head",
    "rounded",
    "spelled",
]

#: The ``model_id`` of a model that was neither saved nor loaded.
UNSAVED: Final = "unsaved"
#: Longest ``name`` of a record; a longer one is cut and ends with an ellipsis.
NAME_MAX: Final = 80
#: Longest ``description`` of a record; a longer reason is cut and ends with an ellipsis.
DESCRIPTION_MAX: Final = 255
#: Button labels (accept, reject) per language code; :class:`RecordSettings` may give others.
LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "en": ("Interested", "Not now"),
    "de": ("Interessiert", "Nicht jetzt"),
    "es": ("Me interesa", "Ahora no"),
    "fr": ("Intéressé", "Pas maintenant"),
    "it": ("Interessato", "Non ora"),
    "nl": ("Interesse", "Niet nu"),
}
#: The columns :func:`offer_records` puts before the offer's own, in this order.
RECORD_COLUMNS: Final = (
    "id",
    "name",
    "description",
    "valid_from",
    "valid_until",
    "accept_label",
    "reject_label",
    "language",
    "action_reference",
    "model_id",
)

_ELLIPSIS: Final = "…"
_TYPE_LABEL: Final = {"upsell": "upsell", "cross_sell": "cross-sell"}
_FIELDS: Final = frozenset({"id", "client_id", "product_id", "offer_type", "valid_from"})
# what files round, and to how many digits: money to cents, the rest to four digits
_MONEY: Final = (Columns.value, Columns.expected_value)
_FOUR_DIGITS: Final = (Columns.score, Columns.propensity, Columns.priority)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSettings:
    """How offers are written as CRM records.

    Parameters
    ----------
    validity_days : int, default 30
        Days an offer stays valid: ``valid_until = valid_from + validity_days``.
    language : str, default "en"
        Language code of the button labels; the built-in ones are the keys of :data:`LABELS`.
        Another code needs both labels given.
    accept_label, reject_label : str, optional
        The buttons' labels; default the language's from :data:`LABELS`.
    action_reference : str, optional
        A template for a link or key back into the CRM, filled per offer from ``{id}``,
        ``{client_id}``, ``{product_id}``, ``{offer_type}`` and ``{valid_from}``, e.g.
        ``"crm://offers/{client_id}/{product_id}"``. None leaves the field empty.

    Raises
    ------
    ValueError
        For a validity that is not a positive number of days, an unknown language without
        labels, an empty label, or a template naming another field.

    Examples
    --------
    >>> RecordSettings(language="fr").labels()
    ('Intéressé', 'Pas maintenant')
    >>> RecordSettings(language="pt", accept_label="Tenho interesse",
    ...                reject_label="Agora não").labels()
    ('Tenho interesse', 'Agora não')
    """

    validity_days: int = 30
    language: str = "en"
    accept_label: str | None = None
    reject_label: str | None = None
    action_reference: str | None = None

    def __post_init__(self) -> None:
        days = self.validity_days
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(
                "The 'validity_days' parameter of RecordSettings must be an int >= 1. "
                f"Got {days!r} instead."
            )
        if not isinstance(self.language, str) or not self.language.strip():
            raise ValueError(
                "The 'language' parameter of RecordSettings must be a language code such as "
                f"'en'. Got {self.language!r} instead."
            )
        for name in ("accept_label", "reject_label"):
            label = getattr(self, name)
            if label is not None and (not isinstance(label, str) or not label.strip()):
                raise ValueError(
                    f"The {name!r} parameter of RecordSettings must be a non-empty str or None. "
                    f"Got {label!r} instead."
                )
        given = self.accept_label is not None and self.reject_label is not None
        if self.language not in LABELS and not given:
            raise ValueError(
                f"RecordSettings has no built-in labels in {self.language!r} (it has "
                f"{', '.join(sorted(LABELS))}): give accept_label and reject_label too."
            )
        if self.action_reference is not None:
            _check_template(self.action_reference)

    def labels(self) -> tuple[str, str]:
        """Return the (accept, reject) button labels.

        Returns
        -------
        tuple of str

        Examples
        --------
        >>> RecordSettings().labels()
        ('Interested', 'Not now')
        """
        accept, reject = LABELS.get(self.language, ("", ""))
        return (self.accept_label or accept, self.reject_label or reject)


def _check_template(template: Any) -> None:
    if not isinstance(template, str):
        raise ValueError(
            "The 'action_reference' parameter of RecordSettings must be a str or None. "
            f"Got {template!r} instead."
        )
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    except ValueError as err:
        raise ValueError(f"action_reference {template!r} is not a valid template: {err}") from None
    unknown = sorted(names - _FIELDS)
    if unknown:
        raise ValueError(
            f"action_reference {template!r} names {', '.join(unknown)}; a template may use "
            f"{', '.join('{' + f + '}' for f in sorted(_FIELDS))}."
        )


def _cut(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + _ELLIPSIS


def spelled(value: Any) -> str:
    """Return an id as the user wrote it: ``12346``, never ``np.int64(12346)``.

    Parameters
    ----------
    value : object
        A client or product id (str, int, numpy scalar).

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> spelled(np.int64(12346)), spelled("C0001"), spelled(np.str_("7"))
    ('12346', 'C0001', '7')
    """
    item = getattr(value, "item", None)
    return str(item() if callable(item) else value)


def product_names(recommender: Recommender) -> dict[Any, str]:
    """Return each product's readable name: the catalogue's ``name`` column, else its id.

    Parameters
    ----------
    recommender : Recommender
        A fitted recommender.

    Returns
    -------
    dict
        Product id to name.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> product_names(rec)["CRM-1"]
    'CRM Basic'
    """
    from crosssell._params import check_fitted

    check_fitted(recommender, "scorer_")
    table = recommender.book_.product_table
    ids = table[Columns.product]
    names = table[Columns.name] if Columns.name in table.columns else ids
    names = names.astype(object).where(names.notna(), ids).astype(str)
    return dict(zip(ids.tolist(), names.tolist(), strict=True))


def offer_records(
    offers: pd.DataFrame,
    *,
    as_of: Any,
    model_id: str = UNSAVED,
    names: Mapping[Any, str] | None = None,
    settings: RecordSettings | None = None,
) -> pd.DataFrame:
    """Add the next-best-action fields to an offers frame, in front of its own columns.

    Parameters
    ----------
    offers : DataFrame
        What :meth:`~crosssell.Recommender.recommend` returns (or any frame with ``client_id``,
        ``product_id``, ``offer_type`` and ``reason``).
    as_of : date-like
        The day the offers were made for: ``valid_from``, and part of each ``id``.
    model_id : str, default "unsaved"
        The model's id (``Recommender.model_id_``: a hash of the saved model).
    names : mapping, optional
        Product id to readable name (see :func:`product_names`); default the ids.
    settings : RecordSettings, optional
        Validity, labels, language and ``action_reference``; default ``RecordSettings()``.

    Returns
    -------
    pandas.DataFrame
        :data:`RECORD_COLUMNS`, then the offers' columns, numbers at full precision. ``id`` is
        ``"<model_id>:<client_id>:<product_id>:<valid_from>"``, ids spelled as the user wrote
        them; ``name`` is the product's name and the kind of offer; ``description`` the reason,
        cut to :data:`DESCRIPTION_MAX` characters.

    Examples
    --------
    >>> import pandas as pd
    >>> offers = pd.DataFrame({"client_id": [12346], "product_id": ["P1"],
    ...                        "offer_type": ["upsell"], "reason": ["Holds P0."]})
    >>> r = offer_records(offers, as_of="2025-06-30", model_id="ab12",
    ...                   names={"P1": "Premium"},
    ...                   settings=RecordSettings(action_reference="crm://{client_id}/{product_id}"))
    >>> r.loc[0, ["id", "name", "valid_until", "action_reference"]].tolist()
    ['ab12:12346:P1:2025-06-30', 'Premium (upsell)', '2025-07-30', 'crm://12346/P1']
    """
    import numpy as np
    import pandas as pd

    settings = settings if settings is not None else RecordSettings()
    day = pd.Timestamp(as_of).date()
    until = day + dt.timedelta(days=settings.validity_days)
    accept, reject = settings.labels()
    known = names if names is not None else {}
    valid_from = day.isoformat()
    n = len(offers)
    # What record_head writes for each row, worked out once per distinct id, and the titles
    # once per product and kind: a batch repeats few products, and clients hold several offers.
    client_codes, _, client_texts = _distinct(offers[Columns.client])
    product_codes, products, product_texts = _distinct(offers[Columns.product])
    kind_codes, kinds, _ = _distinct(offers[Columns.offer_type].astype(str))
    width = max(len(kinds), 1)
    pair_codes, pairs = pd.factorize(product_codes * width + kind_codes)
    pair_titles = [
        _title(known.get(products[p], product_texts[p]), kinds[k])
        for p, k in (divmod(int(pair), width) for pair in pairs)
    ]
    row_clients = np.array(client_texts, dtype=object)[client_codes]
    row_products = np.array(product_texts, dtype=object)[product_codes]
    ids = (f"{model_id}:" + row_clients + ":" + row_products + f":{valid_from}").tolist()
    reasons = offers[Columns.reason] if Columns.reason in offers.columns else None
    if reasons is not None and _fit_as_they_are(reasons, DESCRIPTION_MAX):
        descriptions = reasons.tolist()
    else:
        descriptions = [
            _description(reason, pair_titles[pair])
            for reason, pair in zip(
                [None] * n if reasons is None else reasons.tolist(),
                pair_codes.tolist(),
                strict=True,
            )
        ]
    references: list[str | None] = [None] * n
    if settings.action_reference is not None:
        template = settings.action_reference
        references = [
            _reference(
                template,
                record_id=record_id,
                client=client,
                product=product,
                kind=kinds[kind],
                valid_from=valid_from,
            )
            for record_id, client, product, kind in zip(
                ids, row_clients.tolist(), row_products.tolist(), kind_codes.tolist(), strict=True
            )
        ]
    names_cut = np.array([_cut(t, NAME_MAX) for t in pair_titles], dtype=object)[pair_codes]
    head = pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=object),
            "name": pd.Series(names_cut, dtype=object),
            "description": pd.Series(descriptions, dtype=object),
            "valid_from": pd.Series([valid_from] * n, dtype=object),
            "valid_until": pd.Series([until.isoformat()] * n, dtype=object),
            "accept_label": pd.Series([accept] * n, dtype=object),
            "reject_label": pd.Series([reject] * n, dtype=object),
            "language": pd.Series([settings.language] * n, dtype=object),
            "action_reference": pd.Series(references, dtype=object),
            "model_id": pd.Series([model_id] * n, dtype=object),
        }
    )
    rest = offers.drop(columns=[c for c in RECORD_COLUMNS if c in offers.columns])
    return pd.concat([head, rest.reset_index(drop=True)], axis=1)


def _fit_as_they_are(texts: pd.Series, limit: int) -> bool:
    """Tell whether every value is text of 1 to ``limit`` characters (none to fill in or cut)."""
    import pandas as pd

    if not pd.api.types.is_string_dtype(texts.dtype) or texts.dtype == object:
        return False
    lengths = texts.str.len()
    return bool(lengths.notna().all() and (lengths > 0).all() and lengths.max() <= limit)


def _distinct(values: pd.Series) -> tuple[npt.NDArray[np.intp], list[Any], list[str]]:
    """Return each row's code, the distinct values (as ``tolist`` gives them), their spelling.

    Values of mixed types are not merged by equality (``1`` and ``1.0`` would be one value but
    are spelled apart): each row is its own value there.
    """
    import numpy as np
    import pandas as pd

    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) not in (
        "string",
        "integer",
    ):
        every = values.tolist()
        return np.arange(len(every), dtype=np.intp), every, [spelled(v) for v in every]
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    distinct = list(uniques.tolist())
    return codes.astype(np.intp, copy=False), distinct, [spelled(v) for v in distinct]


def record_head(
    client: Any,
    product: Any,
    kind: str,
    reason: Any,
    *,
    day: dt.date,
    model_id: str,
    names: Mapping[Any, str],
    settings: RecordSettings,
) -> tuple[str, str, str, str | None]:
    """Return one offer's record ``id``, ``name``, ``description`` and ``action_reference``.

    What :func:`offer_records` writes for each row, for callers that hold one offer at a time
    (the HTTP service answers a client's few offers without building a frame).

    Parameters
    ----------
    client, product : object
        The offer's ids, as the Book holds them.
    kind : str
        ``"upsell"`` or ``"cross_sell"``.
    reason : str or None
        The offer's reason; the description says none was recorded when it is empty.
    day : datetime.date
        The day the offer is made for.
    model_id : str
    names : mapping
        Product id to readable name; the id when missing.
    settings : RecordSettings

    Returns
    -------
    tuple of str
        ``(id, name, description, action_reference)``; the reference is None without a template.

    Examples
    --------
    >>> import datetime as dt
    >>> record_head("C1", "P1", "upsell", "", day=dt.date(2025, 6, 30), model_id="ab12",
    ...             names={"P1": "Premium"}, settings=RecordSettings())
    ('ab12:C1:P1:2025-06-30', 'Premium (upsell)', 'Premium (upsell): no reason recorded.', None)
    """
    client_text, product_text = spelled(client), spelled(product)
    valid_from = day.isoformat()
    record_id = f"{model_id}:{client_text}:{product_text}:{valid_from}"
    title = _title(names.get(product, product_text), kind)
    reference = None
    if settings.action_reference is not None:
        reference = _reference(
            settings.action_reference,
            record_id=record_id,
            client=client_text,
            product=product_text,
            kind=kind,
            valid_from=valid_from,
        )
    return record_id, _cut(title, NAME_MAX), _description(reason, title), reference


def _title(name: str, kind: str) -> str:
    """Return an offer's title, uncut: the product's name and the kind of offer."""
    return f"{name} ({_TYPE_LABEL.get(kind, kind)})"


def _description(reason: Any, title: str) -> str:
    """Return an offer's description: its reason, else a sentence saying none was recorded."""
    text = reason if isinstance(reason, str) and reason else f"{title}: no reason recorded."
    return _cut(text, DESCRIPTION_MAX)


def _reference(
    template: str, *, record_id: str, client: str, product: str, kind: str, valid_from: str
) -> str:
    """Return the ``action_reference`` template filled in for one offer."""
    return template.format(
        id=record_id, client_id=client, product_id=product, offer_type=kind, valid_from=valid_from
    )


def rounded(records: pd.DataFrame) -> pd.DataFrame:
    """Round what files carry: money to cents, scores and probabilities to four digits.

    Frames in Python keep full precision; files and HTTP answers carry these.

    Parameters
    ----------
    records : DataFrame
        Offers or records.

    Returns
    -------
    pandas.DataFrame
        A copy; ``value`` and ``expected_value`` to 2 decimals, ``score``, ``propensity`` and
        ``priority`` to 4, and the weights of ``evidence`` to 4.

    Examples
    --------
    >>> import pandas as pd
    >>> rounded(pd.DataFrame({"value": [1234.5678], "propensity": [0.123456]})).iloc[0].tolist()
    [1234.57, 0.1235]
    """
    out = records.copy()
    for column in _MONEY:
        if column in out.columns:
            out[column] = out[column].astype("float64").round(2)
    for column in _FOUR_DIGITS:
        if column in out.columns:
            out[column] = out[column].astype("float64").round(4)
    if Columns.evidence in out.columns:
        out[Columns.evidence] = _rounded_evidence(out[Columns.evidence])
    return out


def _rounded_evidence(values: pd.Series) -> pd.Series:
    """Round each evidence weight to four digits, keeping the column's type."""
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]

    def one(entries: Any) -> Any:
        if entries is None or (not isinstance(entries, list | tuple) and pd.isna(entries)):
            return None
        return [{**dict(e), "weight": round(float(dict(e)["weight"]), 4)} for e in entries]

    rows = [one(v) for v in values.tolist()]
    if isinstance(values.dtype, pd.ArrowDtype):
        array = pa.array(rows, type=values.dtype.pyarrow_dtype)
        return pd.Series(array, index=values.index, dtype=values.dtype, name=values.name)
    return pd.Series(rows, index=values.index, dtype=object, name=values.name)
