"""Batch scoring on Apache Spark: offers and the suppression log for every client of a warehouse.

Fitting stays on one machine (the driver); scoring is spread over the cluster. The client ids are
hashed into ``buckets``; each bucket's contracts, clients and events travel together to one
worker, which calls :meth:`crosssell.Recommender.recommend_frames` (or
:meth:`~crosssell.Recommender.suppressed_frames`) once on the whole bucket, with the catalogue,
rule tables and id maps of the fitted model. Only the rows the policy reads travel (events
within each rule's look-back before ``as_of``, contracts not ended by then and each client's
latest ended one). The fitted model is saved once on the driver in crosssell's safe format
(:func:`crosssell.persist.save` with ``scoring_only=True``: a JSON manifest and arrays, no
pickle, no event), sent once to each executor as a file of the Spark session, and loaded once
per worker process by :func:`crosssell.load`, which runs no code from the file.

Only the DataFrame API is used (no ``SparkContext``, no RDD), so the same code runs on a classic
cluster and on Spark Connect. pyspark is optional: install it with ``pip install
"crosssell[spark]"``; ``import crosssell`` never imports it.

Output schema of :func:`recommend` (see :func:`offers_schema`): ``client_id`` (string or long, as
the fitted client ids), ``product_id`` (string or long, as the fitted catalogue), ``offer_type``
string, ``score``, ``propensity``, ``value``, ``expected_value``, ``priority`` double, ``rank``
long (from 1), ``reason`` string, ``evidence`` array of struct ``<product_id, weight double>``,
``cold_start`` boolean.
"""

from __future__ import annotations

import atexit
import copy
import numbers
import re
import secrets
import shutil
import tempfile
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from crosssell import rules as _rules
from crosssell._codec import registered
from crosssell._params import Interval, Options, check_fitted, validate_params
from crosssell._validation import REJECTED_COLUMNS
from crosssell.book import Book
from crosssell.columns import Columns
from crosssell.exceptions import ArtifactError, CrossSellWarning, SchemaError
from crosssell.matrix import to_as_of
from crosssell.persist import load, save
from crosssell.recommender import OFFER_COLUMNS, Recommender
from crosssell.records import RECORD_COLUMNS, RecordSettings, offer_records, product_names

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "offers_schema",
    "recommend",
    "rejected",
    "rejected_schema",
    "suppressed",
    "suppressed_schema",
]

# the columns of recommend(): the offer record's fields, then the offer's
_OFFER_ORDER: tuple[str, ...] = (*RECORD_COLUMNS, *OFFER_COLUMNS)

_EXTRA_HINT = 'Install it with: pip install "crosssell[spark]"'
_TAG = "__crosssell_table"
_BUCKET = "__crosssell_bucket"
_ENDED = "__crosssell_ended"
_SCOPE = "scope"
_LOG_COLUMNS: tuple[str, ...] = (
    Columns.client,
    Columns.product,
    Columns.rule,
    Columns.kind,
    Columns.detail,
    _SCOPE,
)
#: Fitted models already loaded in this worker process, by token; a few at most.
_MODELS: OrderedDict[str, Recommender] = OrderedDict()
_MODELS_LOCK = threading.Lock()
_MODELS_KEPT = 4
# datetime64[ns] ends in 2262; warehouse sentinels such as 9999-12-31 need a coarser unit.
_NS_LIMIT = np.datetime64("2262-04-01", "D")

IdKind = Literal["long", "string"]
#: What Python's ``str.strip`` takes for blanks (a superset of Arrow's), as a Java regex class.
_BLANK = r"[\t\n\x0B\f\r\x1C-\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
#: Time zone names of UTC: its wall-clock times need no time zone database.
_UTC = frozenset({"UTC", "Etc/UTC", "+00:00", "Z"})


def _require_pyspark() -> None:
    """Check that pyspark can be imported, or say how to install it."""
    try:
        import pyspark.sql  # noqa: F401
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"crosssell.spark needs pyspark (>= 3.5), which is not installed. {_EXTRA_HINT}"
        ) from err


# ---------------------------------------------------------------------- schemas
def _id_kind(ids: pd.Index) -> IdKind:
    return "long" if pd.api.types.is_integer_dtype(ids.dtype) else "string"


def _id_type(kind: IdKind) -> DataType:
    _require_pyspark()
    from pyspark.sql import types

    return types.LongType() if kind == "long" else types.StringType()


def _fitted(recommender: Recommender) -> Recommender:
    if not isinstance(recommender, Recommender):
        raise TypeError(
            "crosssell.spark expects a fitted crosssell.Recommender. "
            f"Got {type(recommender).__name__} instead."
        )
    check_fitted(recommender, "scorer_")
    return recommender


def offers_schema(recommender: Recommender) -> StructType:
    """Return the Spark schema of the offers that :func:`recommend` gives for ``recommender``.

    Parameters
    ----------
    recommender : Recommender
        A fitted recommender; its client and product ids decide whether the id columns are
        ``string`` or ``long``.

    Returns
    -------
    pyspark.sql.types.StructType
        The offer record's fields (:data:`crosssell.records.RECORD_COLUMNS`, strings), then the
        columns of :meth:`crosssell.Recommender.recommend`, in order: ids, ``offer_type``, five
        doubles (``score`` .. ``priority``), ``rank`` long, ``reason`` string, ``evidence``
        ``array<struct<product_id, weight: double>>`` and ``cold_start`` boolean.

    Raises
    ------
    ImportError
        If pyspark is not installed.
    NotFittedError
        If ``recommender`` is not fitted.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell.spark import offers_schema
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.demo(), "2025-06-30")
    >>> schema = offers_schema(rec)
    >>> schema.fieldNames()[:3]
    ['id', 'name', 'description']
    >>> schema["evidence"].dataType.simpleString()
    'array<struct<product_id:string,weight:double>>'
    """
    _require_pyspark()
    from pyspark.sql import types

    rec = _fitted(recommender)
    client = _id_type(_id_kind(rec.book_.client_ids.external))
    product = _id_type(_id_kind(rec.book_.product_ids.external))
    double = types.DoubleType()
    evidence = types.ArrayType(
        types.StructType(
            [
                types.StructField(Columns.product, product, nullable=True),
                types.StructField("weight", double, nullable=True),
            ]
        ),
        containsNull=True,
    )
    kinds: dict[str, DataType] = {
        Columns.client: client,
        Columns.product: product,
        Columns.offer_type: types.StringType(),
        Columns.score: double,
        Columns.propensity: double,
        Columns.value: double,
        Columns.expected_value: double,
        Columns.priority: double,
        Columns.rank: types.LongType(),
        Columns.reason: types.StringType(),
        Columns.evidence: evidence,
        Columns.cold_start: types.BooleanType(),
    }
    kinds.update({c: types.StringType() for c in RECORD_COLUMNS})
    return types.StructType([types.StructField(c, kinds[c], nullable=True) for c in _OFFER_ORDER])


def suppressed_schema(recommender: Recommender) -> StructType:
    """Return the Spark schema of the suppression log that :func:`suppressed` gives.

    Parameters
    ----------
    recommender : Recommender
        A fitted recommender (decides ``string`` or ``long`` ids).

    Returns
    -------
    pyspark.sql.types.StructType
        ``client_id``, ``product_id`` (null where a rule blocks every product), ``rule``,
        ``kind``, ``detail``, ``scope``.

    Raises
    ------
    ImportError
        If pyspark is not installed.
    NotFittedError
        If ``recommender`` is not fitted.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell.spark import suppressed_schema
    >>> rec = cs.Recommender(policy=cs.rules.route_sales()).fit(cs.datasets.demo(), "2025-06-30")
    >>> suppressed_schema(rec).fieldNames()
    ['client_id', 'product_id', 'rule', 'kind', 'detail', 'scope']
    """
    _require_pyspark()
    from pyspark.sql import types

    rec = _fitted(recommender)
    kinds: dict[str, DataType] = {
        Columns.client: _id_type(_id_kind(rec.book_.client_ids.external)),
        Columns.product: _id_type(_id_kind(rec.book_.product_ids.external)),
    }
    return types.StructType(
        [
            types.StructField(c, kinds.get(c, types.StringType()), nullable=True)
            for c in _LOG_COLUMNS
        ]
    )


# ------------------------------------------------------- shipping the model
def _model(token: str, path: str, policy: _rules.Policy | None = None) -> Recommender:
    """Return the fitted model of ``token``, loaded from ``path`` once per worker process.

    ``policy`` replaces the saved one: a policy holding rules of the caller's own code travels
    with the tasks, as Spark sends the job's code, and the file holds none.
    """
    with _MODELS_LOCK:
        hit = _MODELS.get(token)
        if hit is None:
            # the safe format: nothing in the file is executed, whoever wrote it
            hit = load(path, policy=policy)
            # the whole-book offers and suppression of the shipped Book: batches never read them
            hit.view_ = None  # type: ignore[assignment]
            hit.suppression_ = None
            _MODELS[token] = hit
            while len(_MODELS) > _MODELS_KEPT:
                _MODELS.popitem(last=False)
        else:
            _MODELS.move_to_end(token)
        return hit


def _own_code(policy: _rules.Policy | None) -> bool:
    """Tell whether ``policy`` holds a rule that is not one of crosssell's own classes."""
    if policy is None:
        return False
    if type(policy) is not _rules.Policy:
        return True
    known = registered("rule")
    return any(known.get(type(rule).__name__) is not type(rule) for rule in policy.rules)


def _write_model(recommender: Recommender, path: Path) -> Recommender:
    """Save the copy of ``recommender`` that workers load to ``path``; return that copy.

    Batch scoring validates each bucket into its own small Book, so the fitted Book's events,
    contract rows and rows set aside are dead weight on the wire: a scoring-only save leaves them
    out and keeps what the scorer computed from them. A model that learns again from the events
    when loaded (a Response, ``explore``) travels whole. A policy holding rules of the caller's
    own code is not saved (the copy has none); it travels with the tasks. The copy scores on one
    thread: Spark runs one task per core already, and threads of a task would only compete with
    the other tasks.
    """
    light = copy.copy(recommender)
    light.n_jobs = 1
    if _own_code(light.policy):
        light.policy = None
    try:
        save(light, path, scoring_only=True)
    except ArtifactError:
        try:
            save(light, path)
        except ArtifactError as exc:
            raise ArtifactError(
                "crosssell.spark sends the model to the workers in crosssell's safe format, "
                f"which holds no code: {exc}"
            ) from None
    return light


#: Models this driver process has shipped, per Spark session: (session, digest) -> file name.
_SHIPPED: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
_SHIP_FOLDER: list[Path] = []


def _ship_folder() -> Path:
    """Return the folder of the model files this driver ships (removed when it ends)."""
    if not _SHIP_FOLDER:
        folder = Path(tempfile.mkdtemp(prefix="crosssell-spark-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SHIP_FOLDER.append(folder)
    return _SHIP_FOLDER[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Shipped:
    """A fitted recommender saved once on the driver and sent once to each executor.

    The file (crosssell's safe format, see :func:`_write_model`) travels as a file of the Spark
    session (``SparkSession.addArtifacts(file=True)``, which classic Spark and Spark Connect both
    serve): each executor downloads it once, and each worker process loads it once into its
    cache. Only the file name travels with the tasks. The token is the saved model's id, a hash
    of its content, so an identical model is sent once per session however often it scores.
    """

    token: str
    name: str
    size: int
    #: a policy with rules of the caller's own code, sent with the tasks (the file has none)
    policy: _rules.Policy | None = None
    #: a model the safe format cannot hold (a scorer of the caller's own code), sent with the
    #: tasks as Spark sends the job's code: no file, the whole model with every task
    model: Recommender | None = None

    @classmethod
    def of(cls, recommender: Recommender, spark: Any) -> _Shipped:
        folder = _ship_folder()
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            written = Path(tmp) / "model.crosssell"
            try:
                token = _write_model(recommender, written).model_id_
            except ArtifactError as exc:
                warnings.warn(
                    f"{exc}. The model travels with every task instead, as the job's code "
                    "does: slower than one file per executor on large books.",
                    CrossSellWarning,
                    stacklevel=4,
                )
                inline = copy.copy(recommender)
                inline.n_jobs = 1
                return cls(token="", name="", size=0, model=inline)
            size = written.stat().st_size
            policy = recommender.policy if _own_code(recommender.policy) else None
            try:
                shipped = _SHIPPED.setdefault(spark, {})
            except TypeError:  # pragma: no cover - a session class without weak references
                shipped = {}
            name = shipped.get(token)
            if name is None:
                name = f"crosssell-model-{token}.crosssell"
                path = folder / name
                written.replace(path)
                spark.addArtifacts(str(path), file=True)
                shipped[token] = name
        if policy is not None:
            # the same file with another policy object: a model of its own in the workers' cache
            token = f"{token}-{secrets.token_hex(8)}"
        return cls(token=token, name=name, size=size, policy=policy)

    def get(self) -> Recommender:
        if self.model is not None:
            return self.model
        from pyspark import SparkFiles

        path = Path(SparkFiles.get(self.name))
        if not path.exists():  # pragma: no cover - a worker that runs in the files' folder
            path = Path.cwd() / self.name
        return _model(self.token, str(path), self.policy)


# ------------------------------------------------- what the rules read
# Spark's clock may read a date a few hours off pandas' (time zones): keep a margin.
_MARGIN_DAYS = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class _Reads:
    """What scoring at ``as_of`` reads: which events, and whether ended contracts matter.

    ``events`` maps each event type read to its look-back (``None``: any age); ``None`` as a
    whole means unknown (a rule that does not say what it reads), and every event travels.
    """

    as_of: pd.Timestamp
    events: dict[str, pd.Timedelta | None] | None
    ended_contracts: bool


def _reads(rec: Recommender, as_of: pd.Timestamp) -> _Reads:
    """Derive what the policy and the matrix read, from what the rules declare they read.

    The scorers read the fitted state for known clients and only current holdings for the
    others; the matrix of an "active" weighting reads contracts active at ``as_of``, and each
    rule says what it reads beyond them (:attr:`crosssell.rules.Policy.reads`).
    """
    declared = _rules.Reads() if rec.policy is None else rec.policy.reads
    state = getattr(rec.matrix_, "state", "active")
    return _Reads(
        as_of=as_of,
        events=None if declared is None else dict(declared.events),
        ended_contracts=declared is None or declared.ended_contracts or state != "active",
    )


def _refuse_other_clients(policy: _rules.Policy | None, what: str) -> None:
    """Refuse a policy whose blocks for a client read other clients' rows.

    Buckets hold whole clients, not whole groups: a subsidiary's parent may sit in another
    bucket, and a rule such as :class:`~crosssell.rules.GroupHeld` would silently block nothing.
    """
    if policy is None:
        return
    names = [
        r.name for r in policy.rules if (d := _rules.Reads.of(r)) is not None and d.other_clients
    ]
    if names:
        raise ValueError(
            f"crosssell.spark.{what} cannot apply the rule(s) {names}: they read other clients' "
            "rows (a parent's contracts), and each Spark bucket holds only its own clients. "
            "Score with Recommender.recommend on one machine, or drop the rule(s) with "
            "rec.set_params(policy=rec.policy.without(...)) and apply them afterwards."
        )


def _prune_events(df: DataFrame, reads: _Reads, schema: Any) -> DataFrame | None:
    """Keep the events the rules read (``None``: none is read), within their look-back."""
    from pyspark.sql import functions

    if reads.events is None or schema.type not in df.columns or schema.date not in df.columns:
        return df
    if not reads.events:
        return None
    kind = functions.col(schema.type).cast("string")
    when = functions.col(schema.date).cast("timestamp")
    keep = None
    for name, back in sorted(reads.events.items()):
        # The Book strips an event type's text. Most types are written as they are read: only
        # a type holding the name is matched with blanks around it. (Stripping every type with
        # a regular expression cost Spark more than the rest of the scan.)
        padded = rf"\A{_BLANK}*{re.escape(name)}{_BLANK}*\z"
        this = (kind == functions.lit(name)) | (kind.contains(name) & kind.rlike(padded))
        if back is not None:
            since = reads.as_of - back - pd.Timedelta(days=_MARGIN_DAYS)
            # an unreadable date travels: the Book says what is wrong with it
            this = this & (when.isNull() | (when >= functions.lit(since.to_pydatetime())))
        keep = this if keep is None else keep | this
    assert keep is not None
    return df.where(kind.isNull() | keep)


def _prune_contracts(df: DataFrame, reads: _Reads, schema: Any) -> DataFrame:
    """Keep contracts not ended before ``as_of``, and of the ended ones each client's latest.

    No rule nor the "active" matrix reads an ended contract; one of them still tells that its
    client was a client by ``as_of`` (a lapsed client gets cold-start offers, not none). The
    latest is kept, ties broken by the other columns, so the choice does not depend on the
    partitioning.
    """
    from pyspark.sql import functions

    if reads.ended_contracts or schema.end not in df.columns or schema.client not in df.columns:
        return df
    end = functions.col(schema.end).cast("timestamp")
    since = reads.as_of - pd.Timedelta(days=_MARGIN_DAYS)
    ended = end.isNotNull() & (end < functions.lit(since.to_pydatetime()))
    columns = df.columns
    latest = functions.max(functions.struct(end.alias(_ENDED), *(df[c] for c in columns)))
    lapsed = (
        df.where(ended)
        .groupBy(df[schema.client])
        .agg(latest.alias(_ENDED))
        .select(*(functions.col(_ENDED).getField(c).alias(c) for c in columns))
    )
    return df.where(~ended).unionByName(lapsed)


# ------------------------------------------------------ packing the tables
@dataclass(frozen=True, slots=True, kw_only=True)
class _Packed:
    """Where each input table's columns sit in the one frame that travels to the workers."""

    #: ``(table, ((packed name, caller's name), ...))`` in tag order.
    tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    #: Packed names of DATE columns, turned into datetimes on the worker.
    dates: frozenset[str]


def _filler(dtype: DataType) -> Any:
    """Fill another table's rows with a typed literal, never null where pandas would recast."""
    from pyspark.sql import functions, types

    if isinstance(dtype, types.BooleanType):
        return functions.lit(False)
    if isinstance(dtype, types.NumericType):
        # A null in an integer column would turn it into float64 on the pandas side.
        return functions.lit(0).cast(dtype)
    return functions.lit(None).cast(dtype)


def _pack(
    frames: tuple[tuple[str, DataFrame], ...],
    *,
    client: str,
    product: str,
    client_type: DataType,
    product_type: DataType,
    keys: tuple[int, ...],
) -> tuple[DataFrame, _Packed]:
    """Union the tables into one frame with a table tag and a client hash bucket.

    The bucket column holds ``keys[b]`` for bucket ``b``: the key Spark's hash partitioning
    sends to partition ``b``, so that each bucket is one partition of its own.
    """
    from pyspark.sql import functions, types

    columns: list[tuple[int, str, str, DataType]] = []
    dates: set[str] = set()
    for tag, (table, df) in enumerate(frames):
        if client not in df.columns:
            raise _missing_column(table, client, df.columns)
        for i, field in enumerate(df.schema.fields):
            dtype = field.dataType
            if field.name == client:
                dtype = client_type
            elif field.name == product:
                dtype = product_type
            elif isinstance(dtype, types.DecimalType):
                dtype = types.DoubleType()
            packed = f"t{tag}_{i}"
            if isinstance(dtype, types.DateType):
                dates.add(packed)
            columns.append((tag, packed, field.name, dtype))
    parts = []
    for tag, (_, df) in enumerate(frames):
        key = functions.col(client).cast(client_type)
        # pmod, not abs(hash) % n: abs overflows for the smallest int and goes negative.
        bucket = functions.pmod(functions.hash(key), functions.lit(len(keys)))
        key_of = functions.array(*(functions.lit(k).cast("long") for k in keys))
        cols = [
            functions.lit(tag).alias(_TAG),
            functions.element_at(key_of, bucket + functions.lit(1)).alias(_BUCKET),
        ]
        for owner, packed, name, dtype in columns:
            value = functions.col(name).cast(dtype) if owner == tag else _filler(dtype)
            cols.append(value.alias(packed))
        parts.append(df.select(*cols))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    layout = tuple(
        (table, tuple((packed, name) for owner, packed, name, _ in columns if owner == tag))
        for tag, (table, _) in enumerate(frames)
    )
    return union, _Packed(tables=layout, dates=frozenset(dates))


#: Bucket keys found per (session, number of buckets), on this driver.
_KEYS: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, ...]]] = weakref.WeakKeyDictionary()


def _bucket_keys(spark: Any, buckets: int) -> tuple[int, ...]:
    """Return, for each bucket, a long that Spark's hash partitioning sends to that partition.

    Grouping by a bucket number alone lets adaptive execution merge the small shuffled
    partitions into one task (the rows are few, the work per row is not), and hashing bucket
    numbers onto ``buckets`` partitions collides. Repartitioning by these keys gives each
    bucket its own partition, which adaptive execution leaves alone (a number was asked for).
    """
    from pyspark.sql import functions

    try:
        known = _KEYS.setdefault(spark, {})
    except TypeError:  # pragma: no cover - a session class without weak references
        known = {}
    if buckets in known:
        return known[buckets]
    found: dict[int, int] = {}
    start, width = 0, 64 * buckets
    while len(found) < buckets:
        part = functions.pmod(functions.hash("id"), functions.lit(buckets)).alias("part")
        rows = (
            spark.range(start, start + width)
            .select("id", part)
            .groupBy("part")
            .agg(functions.min("id").alias("id"))
            .collect()
        )
        for row in rows:
            found.setdefault(int(row["part"]), int(row["id"]))
        start += width
    keys = tuple(found[b] for b in range(buckets))
    known[buckets] = keys
    return keys


def _missing_column(table: str, column: str, present: list[str]) -> SchemaError:
    shown = ", ".join(repr(c) for c in present[:12])
    return SchemaError(
        f"{table}: the client column {column!r} is missing (columns: {shown}). Rename it, or fit "
        "the model with a Schema that names your client column.",
        table=table,
        column=column,
        rule="missing_column",
    )


def _as_datetimes(values: pd.Series) -> pd.Series:
    """Turn DATE values (Python dates) into datetime64, ns when every date fits, else seconds."""
    days = np.asarray(values.to_numpy(dtype=object), dtype="datetime64[D]")
    valid = days[~np.isnat(days)]
    unit = "ns" if valid.size == 0 or bool((valid < _NS_LIMIT).all()) else "s"
    return pd.Series(days.astype(f"datetime64[{unit}]"), index=values.index, name=values.name)


# ----------------------------------------------------------- the worker side
Task = Literal["offers", "suppressed", "rejected"]
Errors = Literal["raise", "collect"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bucket:
    """What a worker runs on one bucket of clients: unpack, score, hand back a frame."""

    shipped: _Shipped
    packed: _Packed
    what: Task
    client_kind: IdKind
    product_kind: IdKind
    as_of: Any
    k: int | None
    explain: bool
    model_id: str
    settings: RecordSettings | None
    #: the output's Arrow schema, as Spark reads it back (``pyarrow.Schema``)
    arrow_schema: Any
    errors: Errors = "raise"

    def tables(self, bucket: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Split the packed bucket into the caller's tables, columns under their own names."""
        tags = bucket[_TAG].to_numpy()
        tables: dict[str, pd.DataFrame] = {}
        for tag, (table, cols) in enumerate(self.packed.tables):
            mine = bucket.loc[tags == tag, [packed for packed, _ in cols]]
            for packed, _ in cols:
                if packed in self.packed.dates:
                    mine[packed] = _as_datetimes(mine[packed])
            mine.columns = pd.Index([name for _, name in cols])
            tables[table] = mine.reset_index(drop=True)
        return tables

    def run(self, bucket: pd.DataFrame) -> Any:
        """Score one bucket of clients into a ``pyarrow.Table`` of the output schema."""
        out = self._frame(bucket)
        if out is None:
            return self.arrow_schema.empty_table()
        return _to_arrow(out, self.arrow_schema, self.client_kind, self.product_kind)

    def _frame(self, bucket: pd.DataFrame) -> pd.DataFrame | None:
        """Return the bucket's output rows, None when it has none."""
        from threadpoolctl import threadpool_limits

        rec = self.shipped.get()
        tables = self.tables(bucket)
        contracts = tables.pop("contracts", None)
        if contracts is None or not len(contracts):
            # A Book needs a contract: clients known only from their client row or events in a
            # bucket of their own get no offer (see the limits in the Spark guide).
            return None
        clients, events = (
            t if t is not None and len(t) else None
            for t in (tables.get("clients"), tables.get("events"))
        )
        schema = rec.book_.schema
        # one core per task: Spark runs the other tasks on the other cores
        with threadpool_limits(limits=1):
            if self.errors == "collect" or self.what == "rejected":
                contracts, clients, events, found = _set_aside(rec, contracts, clients, events)
                if self.what == "rejected":
                    return _spark_rejected(found, tuple(self.arrow_schema.names))
                if not len(contracts):
                    return None
            return self._score(rec, contracts, clients, events, schema)

    def _score(
        self,
        rec: Recommender,
        contracts: pd.DataFrame,
        clients: pd.DataFrame | None,
        events: pd.DataFrame | None,
        schema: Any,
    ) -> pd.DataFrame:
        if self.what == "offers":
            out = rec.recommend_frames(
                contracts,
                clients=clients,
                events=events,
                as_of=self.as_of,
                k=self.k,
                explain=self.explain,
                schema=schema,
            )
            return offer_records(
                out,
                as_of=self.as_of if self.as_of is not None else rec.as_of_,
                model_id=self.model_id,
                names=product_names(rec),
                settings=self.settings,
            )
        out = rec.suppressed_frames(
            contracts, clients=clients, events=events, as_of=self.as_of, schema=schema
        )
        # Catalogue-wide rows (every client) would repeat in each bucket: the driver adds them
        # once.
        return out[out[Columns.client].notna()]


def _set_aside(
    rec: Recommender,
    contracts: pd.DataFrame,
    clients: pd.DataFrame | None,
    events: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame]:
    """Validate a bucket with ``errors="collect"``: its good rows, and its rejected findings.

    The catalogue is the fitted one (lent, not parsed again); only the bucket's rows are checked,
    with the checks and reasons of :meth:`crosssell.Book.from_frames`.
    """
    import warnings

    from crosssell.exceptions import DataWarning

    with warnings.catch_warnings():
        # the rows set aside are handed back as a table, not as a warning no one reads
        warnings.simplefilter("ignore", DataWarning)
        book = Book.from_frames(
            contracts=contracts,
            products=rec.book_,
            clients=clients,
            events=events,
            schema=rec.book_.schema,
            errors="collect",
        )
    found = book.rejected
    kept: list[pd.DataFrame | None] = []
    for name, table in (("contracts", contracts), ("clients", clients), ("events", events)):
        if table is None:
            kept.append(None)
            continue
        bad = np.unique(found.loc[found[Columns.table] == name, Columns.row].to_numpy())
        keep = np.ones(len(table), dtype=bool)
        keep[bad.astype(np.int64)] = False
        kept.append(table.loc[keep].reset_index(drop=True))
    good_contracts = kept[0]
    assert good_contracts is not None
    return good_contracts, kept[1], kept[2], found


def _spark_rejected(found: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Rejected findings for Spark: a row number means nothing across a cluster, so null."""
    out = pd.DataFrame({c: found[c].astype(object).where(found[c].notna(), None) for c in columns})
    out[Columns.row] = pd.Series([None] * len(out), dtype="Int64")
    return out


def _plain_evidence(kind: Any, product_kind: IdKind) -> bool:
    """Whether an Arrow evidence column is ``list<struct<product_id, weight: double>>`` already."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return False
    item = kind.value_type
    if not pa.types.is_struct(item) or [f.name for f in item] != [Columns.product, "weight"]:
        return False
    ids, weight = item.field(0).type, item.field(1).type
    if product_kind == "long":
        fits = pa.types.is_integer(ids)
    else:
        fits = pa.types.is_string(ids) or pa.types.is_large_string(ids)
    return bool(fits and pa.types.is_floating(weight))


def _from_arrow(batches: list[Any]) -> pd.DataFrame:
    """Join a bucket's Arrow batches into the frame a pandas UDF would be handed.

    TIMESTAMP values come from Spark in UTC, tagged with the session time zone; like
    ``mapInPandas``, they become naive wall-clock times of that zone. DATE values become Python
    dates (see :func:`_as_datetimes`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    table = pa.Table.from_batches(batches)
    columns = []
    for column in table.columns:
        zone = column.type.tz if pa.types.is_timestamp(column.type) else None
        if zone in _UTC:
            columns.append(column.cast(pa.timestamp(column.type.unit)))
        elif zone is not None:
            columns.append(pc.local_timestamp(column))
        else:
            columns.append(column)
    frame: pd.DataFrame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas(
        date_as_object=True
    )
    return frame


def _to_arrow(out: pd.DataFrame, schema: Any, client_kind: IdKind, product_kind: IdKind) -> Any:
    """Return ``out``'s columns as a ``pyarrow.Table`` of ``schema`` (what Spark reads back).

    Ids take the declared Spark type; an evidence column Arrow built already is cast, not
    turned into Python objects and back.
    """
    import pyarrow as pa

    kinds = {Columns.client: client_kind, Columns.product: product_kind}
    arrays = []
    for field in schema:
        values = out[field.name]
        kind = kinds.get(field.name)
        if kind == "long":
            # The "every product" rows of the log carry a missing product id.
            values = values.astype("Int64")
        elif kind is not None and not pd.api.types.is_string_dtype(values.dtype):
            values = values.astype("str").where(values.notna(), None)
        if field.name == Columns.evidence:
            arrow = getattr(values.array, "_pa_array", None)
            if arrow is not None and _plain_evidence(arrow.type, product_kind):
                arrays.append(arrow.cast(field.type))
                continue
            as_id = int if product_kind == "long" else str
            values = pd.Series(
                [
                    None
                    if e is None
                    else [
                        {Columns.product: as_id(d[Columns.product]), "weight": d["weight"]}
                        for d in e
                    ]
                    for e in values.tolist()
                ],
                dtype=object,
            )
        arrays.append(pa.array(values, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _arrow_schema(spark: Any, schema: StructType) -> Any:
    """Return the ``pyarrow.Schema`` Spark expects back for ``schema`` in this session."""
    from pyspark.sql.pandas.types import to_arrow_schema

    large = spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false") == "true"
    return to_arrow_schema(schema, prefers_large_types=large)


# ----------------------------------------------------------------- public
def _run(
    what: Task,
    recommender: Recommender,
    contracts_df: DataFrame,
    events_df: DataFrame | None,
    clients_df: DataFrame | None,
    *,
    as_of: Any,
    k: int | None,
    explain: bool,
    buckets: int | None,
    settings: RecordSettings | None = None,
    prune: bool = True,
    errors: Errors = "raise",
) -> DataFrame:
    rec = _fitted(recommender)
    at_least_1 = Interval(numbers.Integral, 1, None, closed="left")
    validate_params(
        rec,
        {"k": k, "buckets": buckets, "prune": prune, "errors": errors},
        {
            "k": [at_least_1, None],
            "buckets": [at_least_1, None],
            "prune": ["boolean"],
            "errors": [Options({"raise", "collect"})],
        },
    )
    if what != "rejected":
        _refuse_other_clients(rec.policy, what)
    spark = contracts_df.sparkSession
    if buckets is None:
        buckets = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    # Fail on the driver, not in every task, when as_of cannot be read.
    at = rec.as_of_ if as_of is None else to_as_of(as_of, caller=f"crosssell.spark.{what}")
    schema = rec.book_.schema
    if prune and what != "rejected":
        reads = _reads(rec, pd.Timestamp(at))
        contracts_df = _prune_contracts(contracts_df, reads, schema)
        if events_df is not None:
            events_df = _prune_events(events_df, reads, schema)
    client_kind = _id_kind(rec.book_.client_ids.external)
    product_kind = _id_kind(rec.book_.product_ids.external)
    frames: list[tuple[str, DataFrame]] = [("contracts", contracts_df)]
    if clients_df is not None:
        frames.append(("clients", clients_df))
    if events_df is not None:
        frames.append(("events", events_df))
    union, packed = _pack(
        tuple(frames),
        client=schema.client,
        product=schema.product,
        client_type=_id_type(client_kind),
        product_type=_id_type(product_kind),
        keys=_bucket_keys(spark, int(buckets)),
    )
    if what == "offers":
        out_schema = offers_schema(rec)
    elif what == "suppressed":
        out_schema = suppressed_schema(rec)
    else:
        out_schema = rejected_schema()
    task = _Bucket(
        shipped=_Shipped.of(rec, spark),
        packed=packed,
        what=what,
        client_kind=client_kind,
        product_kind=product_kind,
        as_of=as_of,
        k=None if k is None else int(k),
        explain=bool(explain),
        model_id=rec.model_id_,
        settings=settings,
        arrow_schema=_arrow_schema(spark, out_schema),
        errors=errors,
    )

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        # A partition holds every row of its clients, which is all scoring needs: its Arrow
        # batches are joined and scored at once. (Grouping by the bucket instead would make
        # Spark sort each partition's rows by a key they all share.) Arrow in and out: the
        # offers' evidence stays Arrow lists, never Python objects.
        parts = [b for b in batches if b.num_rows]
        if parts:
            yield from task.run(_from_arrow(parts)).to_batches()

    # one partition per bucket, each client's rows in one of them
    shuffled = union.repartition(int(buckets), _BUCKET)
    scored = shuffled.mapInArrow(score, schema=out_schema)
    if what != "suppressed":
        return scored
    log = rec.suppressed()
    catalogue = log[log[Columns.client].isna()]
    if catalogue.empty:
        return scored
    rows = _to_arrow(catalogue, task.arrow_schema, client_kind, product_kind)
    return spark.createDataFrame(rows, schema=out_schema).unionByName(scored)


def rejected_schema() -> StructType:
    """Return the Spark schema of the rows :func:`rejected` sets aside.

    Returns
    -------
    pyspark.sql.types.StructType
        The columns of :attr:`crosssell.Book.rejected`: ``table, row, column, rule, reason,
        record``; ``row`` is a long, always null on Spark (rows have no order across a
        cluster: ``record`` shows the row's values), the others are strings.

    Raises
    ------
    ImportError
        If pyspark is not installed.

    Examples
    --------
    >>> from crosssell.spark import rejected_schema
    >>> rejected_schema().fieldNames()
    ['table', 'row', 'column', 'rule', 'reason', 'record']
    """
    _require_pyspark()
    from pyspark.sql import types

    return types.StructType(
        [
            types.StructField(
                c, types.LongType() if c == Columns.row else types.StringType(), nullable=True
            )
            for c in REJECTED_COLUMNS
        ]
    )


def rejected(
    recommender: Recommender,
    contracts_df: DataFrame,
    events_df: DataFrame | None = None,
    clients_df: DataFrame | None = None,
    *,
    buckets: int | None = None,
) -> DataFrame:
    """Rows of Spark tables that validation sets aside, with the reasons of ``book.rejected``.

    Each bucket of clients is checked on its worker against the fitted catalogue (never parsed
    again): the same checks, rules and reasons as :meth:`crosssell.Book.from_frames` with
    ``errors="collect"`` on those rows. These are the rows that :func:`recommend` and
    :func:`suppressed` leave out with ``errors="collect"``.

    Parameters
    ----------
    recommender : Recommender
        Fitted on the driver; its catalogue and schema are the reference.
    contracts_df : pyspark.sql.DataFrame
        The contracts.
    events_df, clients_df : pyspark.sql.DataFrame, optional
        The events and client rows.
    buckets : int, optional
        Number of client hash buckets; default ``spark.sql.shuffle.partitions``.

    Returns
    -------
    pyspark.sql.DataFrame
        Schema of :func:`rejected_schema`: ``table, row (null), column, rule, reason, record``.

    Raises
    ------
    ImportError
        If pyspark is not installed.
    NotFittedError
        If ``recommender`` is not fitted.
    SchemaError
        If a table lacks the client column.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell import spark as cs_spark
    >>> frames = cs.datasets.synthetic_frames(200, seed=0)
    >>> rec = cs.Recommender().fit(cs.Book.from_frames(**frames))
    >>> contracts = spark.createDataFrame(frames["contracts"])  # doctest: +SKIP
    >>> bad = cs_spark.rejected(rec, contracts, buckets=8)  # doctest: +SKIP
    >>> bad.groupBy("table", "rule").count().show()  # doctest: +SKIP
    """
    return _run(
        "rejected",
        recommender,
        contracts_df,
        events_df,
        clients_df,
        as_of=None,
        k=None,
        explain=False,
        buckets=buckets,
    )


def recommend(
    recommender: Recommender,
    contracts_df: DataFrame,
    events_df: DataFrame | None = None,
    clients_df: DataFrame | None = None,
    *,
    k: int | None = None,
    as_of: Any = None,
    explain: bool = True,
    buckets: int | None = None,
    settings: RecordSettings | None = None,
    prune: bool = True,
    errors: Errors = "raise",
) -> DataFrame:
    """Offers for every client in Spark DataFrames, scored on the cluster with a fitted model.

    The result equals :meth:`crosssell.Recommender.recommend_frames` on the same rows collected
    to one machine, whatever ``buckets`` is: for clients known at fit whose holdings are
    unchanged, it equals :meth:`~crosssell.Recommender.recommend`. Nothing is scored until an
    action (``write``, ``count``, ``collect``) runs; the call itself runs one tiny job, once per
    session and number of buckets, that picks a partition key per bucket.

    Parameters
    ----------
    recommender : Recommender
        Fitted on the driver. It is saved once here in crosssell's safe format (no pickle),
        sent once to each executor and loaded once per worker process.
    contracts_df : pyspark.sql.DataFrame
        Every contract of the clients to score, with the columns the model was fitted on (the
        fitted Book's :class:`~crosssell.Schema`). DATE columns are fine; so are TIMESTAMP ones.
    events_df, clients_df : pyspark.sql.DataFrame, optional
        Their events and client rows; without them, rules that read events or client attributes
        see none.
    k : int, optional
        Offers per client; default the recommender's ``k``.
    as_of : datetime-like, optional
        Scoring date; default the fitted ``as_of`` (clients scored at another date are folded in).
    explain : bool, default True
        Fill ``reason`` and ``evidence``.
    buckets : int, optional
        Number of client hash buckets, i.e. of pandas batches; default
        ``spark.sql.shuffle.partitions``. Two to four times the executor cores is a good start;
        more when one bucket's rows do not fit a worker's memory.
    settings : RecordSettings, optional
        Validity, labels and ``action_reference`` of the offer records; each row is the record
        that :meth:`crosssell.Recommender.records` and the HTTP service give (same ``id``).
    prune : bool, default True
        Ship to the buckets only the rows the policy reads: events of the types its built-in
        rules read, within their look-back before ``as_of``; contracts not ended by ``as_of``,
        and each client's latest ended one. The offers are the same. A rule of the caller's
        own (a :class:`~crosssell.rules.FunctionRule`) turns it off by itself.
    errors : {"raise", "collect"}, default "raise"
        ``"raise"``: a bad row fails the job with the Book's error. ``"collect"``: bad rows are
        left out (:func:`rejected` lists them with their reasons).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per offer with the schema of :func:`offers_schema`, in no particular order.

    Raises
    ------
    ImportError
        If pyspark is not installed.
    NotFittedError
        If ``recommender`` is not fitted.
    SchemaError
        If a table lacks the client column (the tables themselves are validated on the workers,
        with the same errors as :meth:`crosssell.Book.from_frames`).
    ValueError
        If ``k`` or ``buckets`` is not a positive int, ``as_of`` is not a date, or ``errors``
        is another word.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell import spark as cs_spark
    >>> frames = cs.datasets.synthetic_frames(200, seed=0)
    >>> rec = cs.Recommender(policy=cs.rules.route_sales()).fit(cs.Book.from_frames(**frames))
    >>> contracts = spark.createDataFrame(frames["contracts"])  # doctest: +SKIP
    >>> offers = cs_spark.recommend(rec, contracts, buckets=8)  # doctest: +SKIP
    >>> offers.write.mode("overwrite").saveAsTable("crm.offers")  # doctest: +SKIP
    """
    return _run(
        "offers",
        recommender,
        contracts_df,
        events_df,
        clients_df,
        as_of=as_of,
        k=k,
        explain=explain,
        buckets=buckets,
        settings=settings,
        prune=prune,
        errors=errors,
    )


def suppressed(
    recommender: Recommender,
    contracts_df: DataFrame,
    events_df: DataFrame | None = None,
    clients_df: DataFrame | None = None,
    *,
    as_of: Any = None,
    buckets: int | None = None,
    prune: bool = True,
    errors: Errors = "raise",
) -> DataFrame:
    """Compute the policy's audit log for every client in Spark DataFrames, computed on the cluster.

    The rows equal :meth:`crosssell.Recommender.suppressed_frames` on the same data collected to
    one machine (for unchanged clients, :meth:`~crosssell.Recommender.suppressed`), whatever
    ``buckets`` is.

    Parameters
    ----------
    recommender : Recommender
        Fitted on the driver.
    contracts_df : pyspark.sql.DataFrame
        Every contract of the clients.
    events_df, clients_df : pyspark.sql.DataFrame, optional
        Their events and client rows.
    as_of : datetime-like, optional
        Default: the fitted ``as_of``.
    buckets : int, optional
        Number of client hash buckets; default ``spark.sql.shuffle.partitions``.
    prune : bool, default True
        Ship only the rows the policy reads (see :func:`recommend`).
    errors : {"raise", "collect"}, default "raise"
        Fail on a bad row, or leave bad rows out (see :func:`rejected`).

    Returns
    -------
    pyspark.sql.DataFrame
        Schema of :func:`suppressed_schema`: ``client_id, product_id`` (null: every product),
        ``rule, kind, detail, scope``.

    Raises
    ------
    ImportError
        If pyspark is not installed.
    NotFittedError
        If ``recommender`` is not fitted.
    SchemaError
        If a table lacks the client column.
    ValueError
        If ``buckets`` is not a positive int, or ``as_of`` is not a date.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell import spark as cs_spark
    >>> frames = cs.datasets.synthetic_frames(200, seed=0)
    >>> rec = cs.Recommender(policy=cs.rules.route_sales()).fit(cs.Book.from_frames(**frames))
    >>> contracts = spark.createDataFrame(frames["contracts"])  # doctest: +SKIP
    >>> log = cs_spark.suppressed(rec, contracts, buckets=8)  # doctest: +SKIP
    >>> log.groupBy("rule").count().show()  # doctest: +SKIP
    """
    return _run(
        "suppressed",
        recommender,
        contracts_df,
        events_df,
        clients_df,
        as_of=as_of,
        k=None,
        explain=False,
        buckets=buckets,
        prune=prune,
        errors=errors,
    )
