"""The decision log: what crosssell proposed (or chose not to), and what the client did.

Route sales is a loop: the account manager proposes, the client accepts, declines or ignores,
and the next proposal should know. :class:`DecisionLog` keeps that record in a real database
(SQLite by default, PostgreSQL in production, the same URL form for both, through SQLAlchemy
Core):

* a **decision** is one proposed offer, or one client left with no offer ("propose nothing" is a
  decision too), with the model and policy that made it, the probability that it was shown, and
  the client's holdout arm (:data:`DECISION_COLUMNS`);
* a **reaction** is what came of it: ``accepted``, ``declined``, ``ignored`` or ``not_reached``
  (:data:`OUTCOMES`), at most one of each per decision.

Writes are transactional: a batch is recorded whole or not at all, and sending it again (same
``decision_id``) changes nothing. :meth:`DecisionLog.events` gives the reactions back as the
Book's ``offer_accepted`` / ``offer_declined`` / ``offer_made`` events, so the next fit's
policy (cool-offs, contact cap) and the ranker's outcome features see them with no glue.

SQLAlchemy is the ``db`` extra (``pip install "crosssell[db]"``, which also brings the
PostgreSQL driver); nothing else in crosssell needs it.

Examples
--------
>>> import tempfile, pathlib
>>> import crosssell as cs
>>> rec = cs.Recommender(policy=cs.rules.route_sales(), k=1).fit(cs.datasets.demo(), "2025-06-30")
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> log = DecisionLog(folder / "crosssell.db")
>>> rows = decisions_from_offers(rec.recommend(), rec.no_offer_report(), as_of=rec.as_of_,
...                              model_id=rec.model_id_, policy_id=policy_id(rec.policy),
...                              decided_at="2025-06-30 08:00")
>>> written = log.record(rows)
>>> first = written.loc[written["action"] == "offer", "decision_id"].iloc[0]
>>> log.react(first, "accepted", at="2025-07-02")
>>> log.events()[["type", "date"]].iloc[0].tolist()
['offer_accepted', Timestamp('2025-07-02 00:00:00')]
>>> log.close()
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from crosssell.columns import Columns, EventType
from crosssell.exceptions import SchemaError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from crosssell.rules import Policy

__all__ = [
    "ACTIONS",
    "ARMS",
    "DECISION_COLUMNS",
    "DEFAULT_FILE",
    "OUTCOMES",
    "REACTION_COLUMNS",
    "SCHEMA_VERSION",
    "DecisionLog",
    "Holdout",
    "ReactReport",
    "decide",
    "decisions_from_offers",
    "new_ids",
    "no_offer_row",
    "policy_id",
    "record_recommendation",
    "shown_offers",
]

#: The file name of the embedded log beside a model (:meth:`DecisionLog.beside`).
DEFAULT_FILE: Final = "crosssell.db"
#: The schema version this release writes; older databases are migrated when opened.
SCHEMA_VERSION: Final = 3
#: What a client can do with a proposed offer.
OUTCOMES: Final = ("accepted", "declined", "ignored", "not_reached")
#: The holdout arms of a decision.
ARMS: Final = ("treated", "holdout")
#: Kinds of decision: a proposed offer, no offer, or an account-plan action.
ACTIONS: Final = ("offer", "no_offer", "resolve_complaint", "renew", "reorder", "check_in")
#: Columns of a decisions frame, in order (see :meth:`DecisionLog.record`).
DECISION_COLUMNS: Final = (
    "decision_id",
    "decided_at",
    "as_of",
    "client_id",
    "product_id",
    "action",
    "offer_type",
    "rank",
    "propensity",
    "value",
    "priority",
    "reason",
    "rule",
    "shown_probability",
    "shown_probability_error",
    "model_id",
    "policy_id",
    "arm",
    "campaign",
)
#: Columns of a reactions frame, in order (see :meth:`DecisionLog.react_many`).
REACTION_COLUMNS: Final = ("decision_id", "outcome", "reacted_at", "value", "note")

_REQUIRED: Final = ("client_id", "action")
_TEXT: Final = (
    "decision_id",
    "client_id",
    "product_id",
    "action",
    "offer_type",
    "reason",
    "rule",
    "model_id",
    "policy_id",
    "arm",
    "campaign",
)
_FLOAT: Final = ("propensity", "value", "priority", "shown_probability", "shown_probability_error")
_SHOWN: Final = 5
# the reaction that an outcome becomes in the Book's events (not_reached: none)
_EVENT_OF: Final = {
    "accepted": EventType.offer_accepted,
    "declined": EventType.offer_declined,
    "ignored": EventType.offer_made,
}
_BUSY_SECONDS: Final = 30


def _require_sqlalchemy() -> None:
    try:
        import sqlalchemy  # noqa: F401
    except ImportError as err:  # pragma: no cover - only without the extra
        raise ImportError(
            'The decision log needs SQLAlchemy: pip install "crosssell[db]".'
        ) from err


def _url(target: str | os.PathLike[str]) -> str:
    """Return a database URL: given as one, or a file path made into a SQLite URL."""
    text = os.fspath(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _metadata() -> Any:
    """Return the tables of the current schema version."""
    import sqlalchemy as sa

    meta = sa.MetaData()
    sa.Table(
        "crosssell_schema",
        meta,
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("migrated_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "crosssell_decisions",
        meta,
        sa.Column("decision_id", sa.String(64), primary_key=True),
        sa.Column("decided_at", sa.DateTime, nullable=False, index=True),
        sa.Column("as_of", sa.DateTime, nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False, index=True),
        sa.Column("product_id", sa.String(255)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("offer_type", sa.String(32)),
        sa.Column("rank", sa.Integer),
        sa.Column("propensity", sa.Float),
        sa.Column("value", sa.Float),
        sa.Column("priority", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("rule", sa.String(255)),
        sa.Column("shown_probability", sa.Float, nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        # added by version 2
        sa.Column("policy_id", sa.String(64)),
        sa.Column("campaign", sa.String(255)),
        # added by version 3
        sa.Column("shown_probability_error", sa.Float),
    )
    sa.Table(
        "crosssell_reactions",
        meta,
        sa.Column(
            "decision_id",
            sa.String(64),
            sa.ForeignKey("crosssell_decisions.decision_id"),
            primary_key=True,
        ),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("reacted_at", sa.DateTime, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("note", sa.Text),
    )
    return meta


# version -> the statements that bring a database of the version before up to it
_MIGRATIONS: Final = {
    2: (
        "ALTER TABLE crosssell_decisions ADD COLUMN policy_id VARCHAR(64)",
        "ALTER TABLE crosssell_decisions ADD COLUMN campaign VARCHAR(255)",
    ),
    # the error of a shown probability that was computed (an exploring recommender's)
    3: ("ALTER TABLE crosssell_decisions ADD COLUMN shown_probability_error FLOAT",),
}


@dataclass(frozen=True, slots=True)
class ReactReport:
    """What :meth:`DecisionLog.react_many` did: how many reactions it kept, and which it refused.

    Attributes
    ----------
    recorded : int
        New reactions written.
    repeated : int
        Reactions already in the log (sent again), left as they were.
    rejected : pandas.DataFrame
        The refused rows: their position in the input (``row``), the row's fields and a
        ``reason``.

    Examples
    --------
    >>> ReactReport(recorded=2, repeated=0, rejected=pd.DataFrame()).recorded
    2
    """

    recorded: int
    repeated: int
    rejected: pd.DataFrame


class DecisionLog:
    """Decisions and reactions in a database: SQLite file or PostgreSQL, through SQLAlchemy.

    Parameters
    ----------
    target : str or path
        A database URL (``"sqlite:///crosssell.db"``,
        ``"postgresql+psycopg://user@host/db"``) or the path of a SQLite file (created when
        missing).
    echo : bool, default False
        Log the SQL (SQLAlchemy's ``echo``).

    Raises
    ------
    ImportError
        Without SQLAlchemy (the ``db`` extra).
    ValueError
        When the database holds a newer schema than this release knows.

    Notes
    -----
    The schema (three tables prefixed ``crosssell_``) is created on first use and migrated
    forward from any older version, once, in a transaction; opening it again changes nothing.
    Two processes may write at once (SQLite waits up to 30 s for the other writer).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
    >>> log.schema_version, len(log.decisions())
    (3, 0)
    >>> log.close()
    """

    def __init__(self, target: str | os.PathLike[str], *, echo: bool = False) -> None:
        _require_sqlalchemy()
        import sqlalchemy as sa

        self.url = _url(target)
        connect_args: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            connect_args["timeout"] = _BUSY_SECONDS
        self._engine: Engine = sa.create_engine(self.url, echo=echo, connect_args=connect_args)
        if self.url.startswith("sqlite"):
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        self._meta = _metadata()
        self._decisions = self._meta.tables["crosssell_decisions"]
        self._reactions = self._meta.tables["crosssell_reactions"]
        try:
            self.schema_version = self._migrate()
        except BaseException:
            self._engine.dispose()  # no connection is left open behind a refused database
            raise

    @classmethod
    def beside(cls, model: str | os.PathLike[str], *, echo: bool = False) -> DecisionLog:
        """Open the embedded default: the SQLite file ``crosssell.db`` beside a saved model.

        Parameters
        ----------
        model : path
            The saved model's file (it need not exist yet).
        echo : bool, default False

        Returns
        -------
        DecisionLog

        Examples
        --------
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> log = DecisionLog.beside(folder / "model.crosssell")
        >>> log.url.endswith("crosssell.db")
        True
        >>> log.close()
        """
        return cls(Path(model).expanduser().resolve().with_name(DEFAULT_FILE), echo=echo)

    # ------------------------------------------------------------------------ housekeeping
    def close(self) -> None:
        """Release the database connections.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db").close()
        """
        self._engine.dispose()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        safe = self._engine.url.render_as_string(hide_password=True)
        return f"DecisionLog({safe!r}, schema_version={self.schema_version})"

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    def _migrate(self) -> int:
        import sqlalchemy as sa

        version_table = self._meta.tables["crosssell_schema"]
        with self._begin() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("crosssell_schema"):
                self._meta.create_all(conn)
                conn.execute(
                    version_table.insert().values(
                        version=SCHEMA_VERSION, migrated_at=dt.datetime.now(dt.UTC)
                    )
                )
                return SCHEMA_VERSION
            found = conn.execute(sa.select(sa.func.max(version_table.c.version))).scalar()
            version = int(found or 1)
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"The decision log at {self._engine.url.render_as_string(hide_password=True)}"
                    f" has schema version {version}; this release of crosssell knows versions "
                    f"up to {SCHEMA_VERSION}. Upgrade crosssell to use it."
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(sa.text(statement))
                conn.execute(
                    version_table.insert().values(version=step, migrated_at=dt.datetime.now(dt.UTC))
                )
            return SCHEMA_VERSION

    # --------------------------------------------------------------------------- decisions
    def record(self, decisions: pd.DataFrame) -> pd.DataFrame:
        """Write decisions in one transaction; decisions already in the log are left as they are.

        Parameters
        ----------
        decisions : DataFrame
            Columns of :data:`DECISION_COLUMNS` (see :func:`decisions_from_offers`). Needed:
            ``client_id`` and ``action``, plus ``as_of``; ``decision_id`` (a new UUID when
            missing), ``decided_at`` (now), ``shown_probability`` (1.0),
            ``shown_probability_error`` (0: an exact probability), ``model_id``
            ("unsaved"), ``policy_id`` (none) and ``arm`` ("treated") have defaults.

        Returns
        -------
        pandas.DataFrame
            The decisions as written, with their ids: what :meth:`decisions` reads back.

        Raises
        ------
        SchemaError
            For a missing column, an unknown ``action`` or ``arm``, a ``shown_probability``
            outside [0, 1], a missing date or a ``decision_id`` repeated within the frame:
            naming the column, how many rows and a few of them. Nothing is written then.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
        >>> rows = pd.DataFrame({"client_id": ["C1"], "action": ["no_offer"],
        ...                      "as_of": ["2025-06-30"], "reason": ["nothing fits"]})
        >>> again = log.record(log.record(rows))  # sending it twice changes nothing
        >>> len(log.decisions()), log.decisions()["arm"].tolist()
        (1, ['treated'])
        >>> log.close()
        """
        frame = _checked_decisions(decisions)
        if frame.empty:
            return frame
        with self._begin() as conn:
            name = conn.dialect.name
            if name == "sqlite":
                _copy_sqlite(conn, frame)
            elif name == "postgresql":
                _copy_postgresql(conn, frame)
            else:
                _insert_new(conn, self._decisions, _records(frame), ("decision_id",))
        return frame

    def decisions(
        self,
        *,
        since: Any = None,
        client: Any = None,
        model_id: str | None = None,
    ) -> pd.DataFrame:
        """Read decisions back, oldest first.

        Parameters
        ----------
        since : date-like, optional
            Only decisions made at or after this time.
        client : id, optional
            Only this client's.
        model_id : str, optional
            Only this model's.

        Returns
        -------
        pandas.DataFrame
            Columns of :data:`DECISION_COLUMNS`; ids as text, dates as ``datetime64[ns]``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
        >>> log.decisions().columns.tolist()[:4]
        ['decision_id', 'decided_at', 'as_of', 'client_id']
        >>> log.close()
        """
        import sqlalchemy as sa

        table = self._decisions
        # dates come back as the driver gives them (text on SQLite) and are parsed for the
        # whole column at once below, not value by value
        query = sa.select(
            *[
                sa.type_coerce(table.c[c], sa.String).label(c)
                if c in ("decided_at", "as_of")
                else table.c[c]
                for c in DECISION_COLUMNS
            ]
        )
        if since is not None:
            query = query.where(table.c.decided_at >= _naive(pd.Timestamp(since)))
        if client is not None:
            query = query.where(table.c.client_id == _spell(client))
        if model_id is not None:
            query = query.where(table.c.model_id == model_id)
        query = query.order_by(table.c.decided_at, table.c.client_id, table.c.rank)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return _decision_frame(_columns(rows, DECISION_COLUMNS))

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write every decision, with its reactions as list columns, to one Parquet file.

        Parameters
        ----------
        path : path
            The file to write.

        Returns
        -------
        pathlib.Path

        Examples
        --------
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> log = DecisionLog(folder / "log.db")
        >>> log.to_parquet(folder / "decisions.parquet").name
        'decisions.parquet'
        >>> log.close()
        """
        decisions = self.decisions()
        reactions = self.reactions()
        outcomes = (
            reactions.sort_values(["decision_id", "reacted_at"], kind="stable")
            .groupby("decision_id", sort=False)
            .agg(outcomes=("outcome", list), reacted_at=("reacted_at", list))
        )
        out = decisions.merge(outcomes, how="left", left_on="decision_id", right_index=True)
        for column in ("outcomes", "reacted_at"):
            out[column] = out[column].map(lambda v: v if isinstance(v, list) else [])
        target = Path(path)
        out.to_parquet(target, index=False)
        return target

    # --------------------------------------------------------------------------- reactions
    def react(
        self,
        decision_id: str,
        outcome: str,
        *,
        at: Any = None,
        value: float | None = None,
        note: str | None = None,
    ) -> None:
        """Record what came of one decision.

        Parameters
        ----------
        decision_id : str
            The decision's id (as the HTTP answer and the records give it).
        outcome : {"accepted", "declined", "ignored", "not_reached"}
            What the client did.
        at : date-like, optional
            When; default now. Not before the decision.
        value : float, optional
            The value taken up (an accepted offer's contract value).
        note : str, optional
            Free text from the account manager.

        Raises
        ------
        SchemaError
            For an unknown decision id or outcome, or a reaction dated before its decision.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
        >>> log.react("no-such-id", "accepted")
        Traceback (most recent call last):
        ...
        crosssell.exceptions.SchemaError: reactions: no decision with this id in the log...
        >>> log.close()
        """
        frame = pd.DataFrame(
            {
                "decision_id": [decision_id],
                "outcome": [outcome],
                "reacted_at": [at],
                "value": [value],
                "note": [note],
            }
        )
        report = self.react_many(frame)
        if len(report.rejected):
            raise SchemaError(
                f"reactions: {report.rejected['reason'].iloc[0]} (decision_id {decision_id!r}, "
                f"outcome {outcome!r}).",
                table="reactions",
                column=str(report.rejected["column"].iloc[0]),
                rule="reaction",
                rows=(0,),
            )

    def react_many(self, reactions: pd.DataFrame, *, all_or_nothing: bool = False) -> ReactReport:
        """Record many reactions in one transaction; refused rows are reported, never lost.

        Each (decision_id, outcome) is kept once: sending it again changes nothing.

        Parameters
        ----------
        reactions : DataFrame
            ``decision_id``, ``outcome`` and optionally ``reacted_at`` (default now),
            ``value`` and ``note``.
        all_or_nothing : bool, default False
            Write nothing when any row is refused (the report still lists them).

        Returns
        -------
        ReactReport
            How many were recorded, how many were already there, and the refused rows with
            their reason (unknown decision, unknown outcome, dated before the decision, missing
            id).

        Raises
        ------
        SchemaError
            When ``decision_id`` or ``outcome`` is missing from the columns.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
        >>> ids = log.record(pd.DataFrame({"client_id": ["C1", "C2"], "action": ["offer"] * 2,
        ...     "product_id": ["P1", "P2"], "as_of": ["2025-06-30"] * 2,
        ...     "decided_at": ["2025-06-30"] * 2}))["decision_id"]
        >>> report = log.react_many(pd.DataFrame({"decision_id": [ids[0], ids[1], "x"],
        ...     "outcome": ["accepted", "maybe", "declined"], "reacted_at": ["2025-07-01"] * 3}))
        >>> report.recorded, report.rejected["reason"].str[:40].tolist()
        (1, ['outcome must be one of accepted, decline', 'no decision with this id in the log'])
        >>> log.close()
        """
        missing = [c for c in ("decision_id", "outcome") if c not in reactions.columns]
        if missing:
            raise SchemaError(
                f"reactions: missing column(s) {', '.join(missing)}; a reaction needs "
                "decision_id and outcome (and optionally reacted_at, value, note).",
                table="reactions",
                column=missing[0],
                rule="missing_column",
            )
        frame = reactions.reset_index(drop=True).copy()
        for column in ("reacted_at", "value", "note"):
            if column not in frame.columns:
                frame[column] = None
        now = _now()
        frame["decision_id"] = frame["decision_id"].map(
            lambda v: None if _missing(v) else _spell(v)
        )
        frame["outcome"] = frame["outcome"].map(lambda v: None if _missing(v) else str(v).strip())
        at = pd.to_datetime(frame["reacted_at"], errors="coerce", format="mixed", utc=True)
        at = at.astype("datetime64[ns, UTC]")
        bad_date = at.isna() & frame["reacted_at"].map(lambda v: not _missing(v))
        at = at.fillna(pd.Timestamp(now, tz="UTC"))
        frame["reacted_at"] = at.dt.tz_localize(None).astype("datetime64[ns]")
        values = pd.to_numeric(frame["value"], errors="coerce")
        bad_value = values.isna() & frame["value"].map(lambda v: not _missing(v))
        frame["value"] = values
        reasons = pd.Series([None] * len(frame), dtype=object)
        columns = pd.Series([None] * len(frame), dtype=object)

        def refuse(mask: pd.Series, column: str, text: str) -> None:
            fresh = mask & reasons.isna()
            reasons[fresh] = text
            columns[fresh] = column

        refuse(frame["decision_id"].isna(), "decision_id", "decision_id is missing")
        refuse(
            ~frame["outcome"].isin(OUTCOMES),
            "outcome",
            f"outcome must be one of {', '.join(OUTCOMES)}",
        )
        refuse(bad_date, "reacted_at", "reacted_at is not a date")
        refuse(bad_value, "value", "value is not a number")
        with self._begin() as conn:
            wanted = sorted(set(frame.loc[reasons.isna(), "decision_id"].dropna()))
            found = _matching(conn, self._decisions, wanted, ("decision_id", "decided_at"))
            decided: dict[str, dt.datetime] = {str(i): d for i, d in found}
            known = frame["decision_id"].map(lambda v: v in decided)
            refuse(~known, "decision_id", "no decision with this id in the log")
            when = frame["decision_id"].map(
                lambda v: pd.Timestamp(decided[v]) if v in decided else pd.NaT
            )
            refuse(
                known & (frame["reacted_at"] < when),
                "reacted_at",
                "the reaction is dated before its decision",
            )
            good = frame[reasons.isna()].drop_duplicates(["decision_id", "outcome"])
            ids = sorted(set(good["decision_id"]))
            existing = {
                (str(a), str(b))
                for a, b in _matching(conn, self._reactions, ids, ("decision_id", "outcome"))
            }
            pairs = list(zip(good["decision_id"], good["outcome"], strict=True))
            new = good[[p not in existing for p in pairs]]
            repeated = len(good) - len(new)
            if all_or_nothing and reasons.notna().any():
                new = new.iloc[:0]
            if len(new):
                _insert_new(
                    conn,
                    self._reactions,
                    [
                        {
                            "decision_id": str(row["decision_id"]),
                            "outcome": str(row["outcome"]),
                            "reacted_at": pd.Timestamp(row["reacted_at"]).to_pydatetime(),
                            "value": None if _missing(row["value"]) else float(row["value"]),
                            "note": None if _missing(row["note"]) else str(row["note"]),
                        }
                        for row in new.to_dict("records")
                    ],
                    ("decision_id", "outcome"),
                )
        rejected = reactions.reset_index(drop=True).loc[reasons.notna()].copy()
        rejected.insert(0, "row", rejected.index.to_numpy())
        rejected["column"] = columns[reasons.notna()].to_numpy()
        rejected["reason"] = reasons[reasons.notna()].to_numpy()
        return ReactReport(
            recorded=len(new),
            repeated=repeated,
            rejected=rejected.reset_index(drop=True),
        )

    def reactions(self) -> pd.DataFrame:
        """Read every reaction back, oldest first.

        Returns
        -------
        pandas.DataFrame
            Columns of :data:`REACTION_COLUMNS`.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
        >>> log.reactions().columns.tolist()
        ['decision_id', 'outcome', 'reacted_at', 'value', 'note']
        >>> log.close()
        """
        import sqlalchemy as sa

        r = self._reactions
        query = sa.select(*[r.c[c] for c in REACTION_COLUMNS]).order_by(
            r.c.reacted_at, r.c.decision_id, r.c.outcome
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        out = _columns(rows, REACTION_COLUMNS)
        out["decision_id"] = out["decision_id"].astype(object)
        out["outcome"] = out["outcome"].astype(object)
        out["reacted_at"] = pd.to_datetime(out["reacted_at"]).astype("datetime64[ns]")
        out["value"] = out["value"].astype("float64")
        out["note"] = out["note"].astype(object)
        return out

    def events(self) -> pd.DataFrame:
        """Return the reactions as the Book's events, to add to the next fit's events table.

        ``accepted`` becomes ``offer_accepted``, ``declined`` ``offer_declined`` and
        ``ignored`` ``offer_made`` (presented, no answer: it counts towards the contact cap);
        ``not_reached`` is no event. Each event carries the decision's client and product, the
        reaction's date and, in ``ref``, the decision id.

        Returns
        -------
        pandas.DataFrame
            ``client_id``, ``date``, ``type``, ``product_id``, ``ref``, ``detail``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> log = DecisionLog(pathlib.Path(tempfile.mkdtemp()) / "log.db")
        >>> log.events().columns.tolist()
        ['client_id', 'date', 'type', 'product_id', 'ref', 'detail']
        >>> log.close()
        """
        reactions = self.reactions()
        decisions = self.decisions()[["decision_id", "client_id", "product_id"]]
        joined = reactions[reactions["outcome"].isin(list(_EVENT_OF))].merge(
            decisions, on="decision_id", how="inner"
        )
        out = pd.DataFrame(
            {
                Columns.client: joined["client_id"].astype(object),
                Columns.date: joined["reacted_at"].astype("datetime64[ns]"),
                Columns.type: joined["outcome"].map(_EVENT_OF).astype(object),
                Columns.product: joined["product_id"].astype(object),
                Columns.ref: joined["decision_id"].astype(object),
                Columns.detail: joined["note"].astype(object),
            }
        )
        return out.sort_values([Columns.date, Columns.client], kind="stable").reset_index(drop=True)


_STAMP: Final = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's text form of a date on SQLite


def _driver_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Decision rows as tuples of plain values, dates as SQLAlchemy's text for SQLite."""
    return list(zip(*_plain_columns(frame, dates_as_text=True), strict=True))


def _copy_sqlite(conn: Connection, frame: pd.DataFrame) -> None:
    """Insert decisions through the driver's executemany, skipping ids already there."""
    names = ", ".join(DECISION_COLUMNS)
    marks = ", ".join("?" * len(DECISION_COLUMNS))
    sql = (
        f"INSERT INTO crosssell_decisions ({names}) VALUES ({marks}) "
        "ON CONFLICT (decision_id) DO NOTHING"
    )
    conn.exec_driver_sql(sql, _driver_rows(frame))


def _copy_postgresql(conn: Connection, frame: pd.DataFrame) -> None:
    """COPY decisions into a temporary table, then insert those whose id is new."""
    names = ", ".join(DECISION_COLUMNS)
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE crosssell_incoming "
            "(LIKE crosssell_decisions INCLUDING DEFAULTS)"
        )
        with cursor.copy(f"COPY crosssell_incoming ({names}) FROM STDIN") as copy:
            for row in _driver_rows(frame):
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO crosssell_decisions ({names}) SELECT {names} "
            "FROM crosssell_incoming ON CONFLICT (decision_id) DO NOTHING"
        )
        cursor.execute("DROP TABLE crosssell_incoming")


def _insert_new(
    conn: Connection, table: Any, rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> None:
    """Insert rows, leaving alone those whose key is already there (also a concurrent one's)."""
    import sqlalchemy as sa

    if not rows:
        return
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if name == "postgresql" else sqlite.insert
        conn.execute(insert(table).on_conflict_do_nothing(index_elements=list(keys)), rows)
        return
    # other databases: look the keys up first
    known = {
        tuple(str(v) for v in found)
        for found in _matching(conn, table, sorted({str(r[keys[0]]) for r in rows}), keys)
    }
    fresh = [r for r in rows if tuple(str(r[k]) for k in keys) not in known]
    if fresh:
        conn.execute(sa.insert(table), fresh)


def _matching(
    conn: Connection, table: Any, ids: Sequence[str], columns: Sequence[str]
) -> list[Any]:
    """Rows of ``table`` whose ``decision_id`` is one of ``ids``: a join on a temporary table.

    A join scales with the ids and the table alike; an ``IN`` list of many thousand values
    does not (PostgreSQL may scan the whole table once per value).
    """
    import sqlalchemy as sa

    if not ids:
        return []
    wanted = sa.Table(
        "crosssell_wanted",
        sa.MetaData(),
        sa.Column("decision_id", sa.String(64), primary_key=True),
        prefixes=["TEMPORARY"],
    )
    wanted.create(conn)
    try:
        conn.execute(wanted.insert(), [{"decision_id": i} for i in ids])
        query = sa.select(*[table.c[c] for c in columns]).select_from(
            table.join(wanted, wanted.c.decision_id == table.c.decision_id)
        )
        return list(conn.execute(query).all())
    finally:
        wanted.drop(conn)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead logging (readers never wait for a writer) and enforced foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _naive(stamp: Any) -> Any:
    """Return a timestamp in UTC without its time zone (databases store naive UTC)."""
    ts = pd.Timestamp(stamp)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _spell(value: Any) -> str:
    item = getattr(value, "item", None)
    return str(item() if callable(item) else value).strip()


def _refuse(column: str, bad: pd.Series, frame: pd.DataFrame, what: str) -> SchemaError:
    rows = np.flatnonzero(bad.to_numpy(dtype=bool))
    shown = ", ".join(
        f"row {i} ({column}={frame[column].iloc[i]!r})" if column in frame.columns else f"row {i}"
        for i in rows[:_SHOWN]
    )
    n = len(rows)
    return SchemaError(
        f"decisions: {what} in {n} row{'s' if n != 1 else ''} of column {column!r}: {shown}"
        f"{' ...' if n > _SHOWN else ''}. Nothing was written.",
        table="decisions",
        column=column,
        rule="decision",
        rows=tuple(int(i) for i in rows[:_SHOWN]),
    )


def _checked_decisions(decisions: pd.DataFrame) -> pd.DataFrame:  # noqa: PLR0912, PLR0915
    """Validate a decisions frame and fill the defaults; refuse it whole, naming rows."""
    if not isinstance(decisions, pd.DataFrame):
        raise TypeError(
            f"DecisionLog.record takes a DataFrame of decisions. Got {type(decisions).__name__}."
        )
    missing = [c for c in (*_REQUIRED, "as_of") if c not in decisions.columns]
    if missing:
        raise SchemaError(
            f"decisions: missing column(s) {', '.join(missing)}; see DECISION_COLUMNS (or build "
            "the frame with decisions_from_offers).",
            table="decisions",
            column=missing[0],
            rule="missing_column",
        )
    unknown = [c for c in decisions.columns if c not in DECISION_COLUMNS]
    if unknown:
        raise SchemaError(
            f"decisions: unknown column(s) {', '.join(map(repr, unknown))}; a decision has "
            f"{', '.join(DECISION_COLUMNS)}.",
            table="decisions",
            column=unknown[0],
            rule="unknown_column",
        )
    frame = decisions.reset_index(drop=True).copy()
    n = len(frame)
    defaults: dict[str, Any] = {
        "decision_id": None,
        "decided_at": None,
        "product_id": None,
        "offer_type": None,
        "rank": None,
        "propensity": np.nan,
        "value": np.nan,
        "priority": np.nan,
        "reason": None,
        "rule": None,
        "shown_probability": 1.0,
        "shown_probability_error": 0.0,
        "model_id": "unsaved",
        "policy_id": None,
        "arm": "treated",
        "campaign": None,
    }
    for column, default in defaults.items():
        if column not in frame.columns:
            frame[column] = [default] * n
    ids = _text(frame["decision_id"])
    no_id = ids.isna().to_numpy()
    if no_id.any():
        ids[no_id] = new_ids(int(no_id.sum()))
    frame["decision_id"] = ids
    now = _now()
    for column in ("decided_at", "as_of"):
        given = frame[column].notna()
        parsed = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True)
        parsed = parsed.astype("datetime64[ns, UTC]")
        if column == "decided_at":
            parsed = parsed.fillna(pd.Timestamp(now, tz="UTC"))
        if (given & parsed.isna()).any():
            raise _refuse(column, given & parsed.isna(), frame, "not a date")
        if parsed.isna().any():
            raise _refuse(column, parsed.isna(), frame, "missing date")
        frame[column] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
    if frame["client_id"].isna().any():
        raise _refuse("client_id", frame["client_id"].isna(), frame, "missing client id")
    for column in _TEXT:
        if column != "decision_id":
            frame[column] = _text(frame[column])
    bad_action = ~frame["action"].isin(ACTIONS)
    if bad_action.any():
        raise _refuse("action", bad_action, frame, f"action must be one of {', '.join(ACTIONS)}")
    bad_arm = ~frame["arm"].isin(ARMS)
    if bad_arm.any():
        raise _refuse("arm", bad_arm, frame, f"arm must be one of {', '.join(ARMS)}")
    for column in _FLOAT:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            raise _refuse(column, bad, frame, "not a number")
        frame[column] = values.astype("float64")
    shown = frame["shown_probability"]
    bad_shown = shown.isna() | (shown < 0) | (shown > 1)
    if bad_shown.any():
        raise _refuse("shown_probability", bad_shown, frame, "not a probability in [0, 1]")
    bad_error = frame["shown_probability_error"] < 0
    if bad_error.any():
        raise _refuse("shown_probability_error", bad_error, frame, "a negative error")
    ranks = pd.to_numeric(frame["rank"], errors="coerce")
    frame["rank"] = ranks.astype("Int64")
    repeated = frame["decision_id"].duplicated(keep=False)
    if repeated.any():
        raise _refuse("decision_id", repeated, frame, "decision_id repeated within the batch")
    return frame.loc[:, list(DECISION_COLUMNS)]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values for SQLAlchemy (None for missing, dates as datetimes)."""
    columns = _plain_columns(frame, dates_as_text=False)
    return [dict(zip(DECISION_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)]


def _plain_columns(frame: pd.DataFrame, *, dates_as_text: bool) -> list[list[Any]]:
    """Return the columns of a checked decisions frame as plain values, None for missing."""
    columns: list[list[Any]] = []
    for column in DECISION_COLUMNS:
        values = frame[column]
        if column in ("decided_at", "as_of"):
            dates = values.dt.strftime(_STAMP) if dates_as_text else values.dt.to_pydatetime()
            columns.append(list(dates))
        elif column == "rank" or column in _FLOAT:
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            gap = np.isnan(numbers)
            plain = np.where(gap, 0, numbers).astype(np.int64) if column == "rank" else numbers
            out = np.asarray(plain, dtype=object)
            out[gap] = None
            columns.append(out.tolist())
        else:  # text, missing already None
            columns.append(values.tolist())
    return columns


def new_ids(n: int) -> list[str]:
    """Return ``n`` new random (version 4) UUIDs as text, made in one go.

    Parameters
    ----------
    n : int

    Returns
    -------
    list of str

    Examples
    --------
    >>> import uuid
    >>> a, b = new_ids(2)
    >>> len(a), a[14], a != b, str(uuid.UUID(a)) == a
    (36, '4', True, True)
    """
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def _columns(rows: Sequence[Any], names: Sequence[str]) -> pd.DataFrame:
    """Build a frame of database rows column by column (object columns, typed later)."""
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in names})
    columns = zip(*rows, strict=True)
    return pd.DataFrame(
        {c: np.asarray(v, dtype=object) for c, v in zip(names, columns, strict=True)}
    )


def _text(values: pd.Series) -> pd.Series:
    """Ids and labels as trimmed text, ``None`` where missing (numbers spelt as Python does)."""
    missing = values.isna().to_numpy()
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        stripped = values.astype(object).str.strip()
        return stripped.where(~missing, None).astype(object)
    plain = values.astype(object).to_numpy()
    out = np.empty(len(plain), dtype=object)
    keep = ~missing
    out[keep] = [v.strip() if isinstance(v, str) else _spell(v) for v in plain[keep].tolist()]
    out[missing] = None
    return pd.Series(out, index=values.index, dtype=object)


def _decision_frame(frame: pd.DataFrame) -> pd.DataFrame:
    for column in _TEXT:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    for column in ("decided_at", "as_of"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[ns]")
    frame["rank"] = pd.to_numeric(frame["rank"]).astype("Int64")
    for column in _FLOAT:
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def decisions_from_offers(
    offers: pd.DataFrame,
    no_offer_report: pd.DataFrame | None = None,
    *,
    as_of: Any,
    model_id: str = "unsaved",
    policy_id: str | None = None,
    arm: str = "treated",
    campaign: str | None = None,
    decided_at: Any = None,
) -> pd.DataFrame:
    """Turn ``recommend()`` offers (and the no-offer report) into decision rows.

    Parameters
    ----------
    offers : DataFrame
        What :meth:`crosssell.Recommender.recommend` (or ``records()``) returned.
    no_offer_report : DataFrame, optional
        What :meth:`crosssell.Recommender.no_offer_report` returned: one ``no_offer`` decision
        per client, with the reason and the first rule.
    as_of : date-like
        The date the recommender scored at.
    model_id : str, default "unsaved"
        ``Recommender.model_id_``.
    policy_id : str, optional
        :func:`policy_id` of the recommender's policy.
    arm : {"treated", "holdout"}, default "treated"
    campaign : str, optional
    decided_at : date-like, optional
        Default now.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`DECISION_COLUMNS`, one new UUID per row; a deterministic top-k shows
        its offers with probability 1, an exploring one (``Recommender(explore=...)``) with
        the ``shown_probability`` and ``shown_probability_error`` of its offers.

    Examples
    --------
    >>> offers = pd.DataFrame({"client_id": ["C1"], "product_id": ["P2"],
    ...     "offer_type": ["upsell"], "rank": [1], "propensity": [0.3], "value": [100.0],
    ...     "priority": [30.0], "reason": ["Holds P1."]})
    >>> none = pd.DataFrame({"client_id": ["C2"], "reason": ["the client is marked "
    ...     "do-not-contact"], "rules": [("do_not_contact",)]})
    >>> d = decisions_from_offers(offers, none, as_of="2025-06-30", model_id="m1")
    >>> d[["client_id", "action", "rule", "shown_probability"]].values.tolist()
    [['C1', 'offer', None, 1.0], ['C2', 'no_offer', 'do_not_contact', 1.0]]
    """
    stamp = _now() if decided_at is None else _naive(pd.Timestamp(decided_at))
    day = pd.Timestamp(as_of)
    parts = []
    if len(offers):
        o = offers.reset_index(drop=True)
        parts.append(
            pd.DataFrame(
                {
                    "client_id": o[Columns.client].map(_spell),
                    "product_id": o[Columns.product].map(_spell),
                    "action": "offer",
                    "offer_type": o[Columns.offer_type].astype(object),
                    "rank": o[Columns.rank].astype("Int64"),
                    "propensity": o[Columns.propensity].astype("float64"),
                    "value": o[Columns.value].astype("float64"),
                    "priority": o[Columns.priority].astype("float64"),
                    "reason": o[Columns.reason].astype(object)
                    if Columns.reason in o.columns
                    else None,
                    "rule": None,
                }
            )
        )
    if no_offer_report is not None and len(no_offer_report):
        r = no_offer_report.reset_index(drop=True)
        rules = r["rules"] if "rules" in r.columns else pd.Series([()] * len(r))
        parts.append(
            pd.DataFrame(
                {
                    "client_id": r[Columns.client].map(_spell),
                    "product_id": None,
                    "action": "no_offer",
                    "offer_type": None,
                    "rank": pd.array([pd.NA] * len(r), dtype="Int64"),
                    "propensity": np.nan,
                    "value": np.nan,
                    "priority": np.nan,
                    "reason": r[Columns.reason].astype(object),
                    "rule": [v[0] if isinstance(v, Sequence) and len(v) else None for v in rules],
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DECISION_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out["decision_id"] = new_ids(len(out))
    out["decided_at"] = stamp
    out["as_of"] = day
    out["shown_probability"] = 1.0
    out["shown_probability_error"] = 0.0
    for column in ("shown_probability", "shown_probability_error"):
        if len(offers) and column in offers.columns:
            out.loc[: len(offers) - 1, column] = offers[column].to_numpy(dtype=np.float64)
    out["model_id"] = model_id
    out["policy_id"] = policy_id
    out["arm"] = arm
    out["campaign"] = campaign
    return out.loc[:, list(DECISION_COLUMNS)]


def policy_id(policy: Policy | None) -> str | None:
    """Return a short hash of a policy's rules and parameters (None for no policy).

    Two policies with the same rules, in the same order, with the same parameters share it; any
    change of a threshold gives another id, so a decision names the policy version behind it.

    Parameters
    ----------
    policy : Policy or None

    Returns
    -------
    str or None
        16 hexadecimal digits.

    Examples
    --------
    >>> import crosssell as cs
    >>> a = policy_id(cs.rules.route_sales())
    >>> a == policy_id(cs.rules.route_sales()), len(a)
    (True, 16)
    >>> a == policy_id(cs.rules.route_sales(decline_days=30))
    False
    """
    if policy is None:
        return None
    rules: list[list[str]] = [[type(policy).__name__, str(policy.name)]]
    for rule in cast(Sequence[Any], policy.rules):
        cls = type(rule)
        parts = [f"{cls.__module__}.{cls.__qualname__}"]
        if dataclasses.is_dataclass(rule):
            parts += [f"{f.name}={getattr(rule, f.name)!r}" for f in dataclasses.fields(rule)]
        else:  # a user rule that is not a dataclass: its class and name stand for it
            parts.append(f"name={getattr(rule, 'name', '')!r}")
        rules.append(parts)
    text = json.dumps(rules)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Holdout:
    """A persistent, hash-based holdout group of clients, to measure what proposing changes.

    A client is held out when a keyed hash of its id (and the campaign, when one is given) falls
    below ``share``: the assignment depends on the client, the salt and the campaign alone, never
    on which other clients are scored or in what order, so a client stays in its arm from one
    run to the next. Held-out clients get no proactive offer; what they would have been offered
    is still recorded, with ``arm="holdout"`` and ``shown_probability=0``, so that the lift can
    be read per product and family (:func:`crosssell.evaluation.lift`). Retention actions of the
    account plan are not withheld.

    Parameters
    ----------
    share : float, default 0.1
        The expected share of clients held out, in [0, 1).
    salt : str, default "crosssell"
        Another salt draws another group (e.g. one per quarter: ``"2026-Q4"``).

    Examples
    --------
    >>> h = Holdout(share=0.5, salt="2026-Q4")
    >>> h.arms(["C1", "C2", "C3", "C4"]).tolist()
    ['treated', 'holdout', 'treated', 'holdout']
    >>> h.arms(["C4", "C2"]).tolist()  # the same client, the same arm
    ['holdout', 'holdout']
    """

    share: float = 0.1
    salt: str = "crosssell"

    def __post_init__(self) -> None:
        if isinstance(self.share, bool) or not isinstance(self.share, (int, float)):
            raise TypeError(f"Holdout share must be a number in [0, 1). Got {self.share!r}.")
        if not 0.0 <= float(self.share) < 1.0:
            raise ValueError(
                f"Holdout share must be in [0, 1) (0.1 holds out one client in ten). "
                f"Got {self.share!r}."
            )
        if not isinstance(self.salt, str):
            raise TypeError(f"Holdout salt must be text. Got {type(self.salt).__name__}.")

    def draws(self, clients: Any, campaign: str | None = None) -> npt.NDArray[np.float64]:
        """Return each client's uniform draw in [0, 1): held out when below ``share``.

        Parameters
        ----------
        clients : iterable of ids
            Client ids, spelt as the decision log spells them (text, blanks trimmed).
        campaign : str, optional
            Draw a group per campaign: the same client can be held out of one and not another.

        Returns
        -------
        numpy.ndarray of float64

        Examples
        --------
        >>> d = Holdout(salt="x").draws(["C1", "C1", " C1"])
        >>> bool(d[0] == d[1] == d[2]), bool(0 <= d[0] < 1)
        (True, True)
        """
        key = self.salt.encode("utf-8")[:64]
        scope = "" if campaign is None else str(campaign)
        out = np.empty(len(ids := [_spell(c) for c in clients]), dtype=np.float64)
        for i, client in enumerate(ids):
            digest = hashlib.blake2b(
                f"{scope}\x1f{client}".encode(), digest_size=8, key=key
            ).digest()
            out[i] = int.from_bytes(digest, "big") / 2.0**64
        return out

    def arms(self, clients: Any, campaign: str | None = None) -> npt.NDArray[np.object_]:
        """Return each client's arm, ``"treated"`` or ``"holdout"``.

        Parameters
        ----------
        clients : iterable of ids
        campaign : str, optional
            See :meth:`draws`.

        Returns
        -------
        numpy.ndarray of object

        Examples
        --------
        >>> Holdout(share=0.0).arms(["C1"]).tolist()
        ['treated']
        """
        held = self.draws(clients, campaign) < float(self.share)
        return np.where(held, "holdout", "treated").astype(object)


def no_offer_row(client: Any, reason: str, rules: Sequence[str] = ()) -> pd.DataFrame:
    """Return one client's no-offer report (what :func:`decide` records for an empty answer).

    Parameters
    ----------
    client : id
    reason : str
    rules : sequence of str, default ()
        The rules that blocked, first the one named in the decision.

    Returns
    -------
    pandas.DataFrame
        ``client_id``, ``reason``, ``rules``: one row.

    Examples
    --------
    >>> no_offer_row("C1", "a complaint is open", ("open_complaint",))["rules"].iloc[0]
    ('open_complaint',)
    """
    return pd.DataFrame(
        {Columns.client: [client], Columns.reason: [reason], "rules": [tuple(rules)]}
    )


def record_recommendation(
    offers: pd.DataFrame,
    no_offer_report: pd.DataFrame | None,
    *,
    as_of: Any,
    model_id: str,
    policy: Policy | None,
    log: DecisionLog | None = None,
    holdout: Holdout | None = None,
    campaign: str | None = None,
) -> pd.DataFrame:
    """Apply a holdout to offers, record them as decisions, and return what is shown.

    The door through which :meth:`crosssell.Recommender.recommend` (``log=``, ``holdout=``)
    and the HTTP service record their answers.

    Parameters
    ----------
    offers : DataFrame
        Offers of every client asked for, held-out ones included.
    no_offer_report : DataFrame, optional
        The asked clients left with no offer (``client_id``, ``reason``, ``rules``).
    as_of : date-like
    model_id : str
    policy : Policy or None
    log : DecisionLog, optional
        Where the decisions go; without it nothing is written.
    holdout : Holdout, optional
        Held-out clients' offers are recorded with ``arm="holdout"`` and
        ``shown_probability=0``, and left out of the result.
    campaign : str, optional
        Recorded with each decision; also scopes the holdout draw.

    Returns
    -------
    pandas.DataFrame
        The offers shown (treated clients'), with a ``decision_id`` column when ``log`` is
        given.

    Examples
    --------
    >>> offers = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P2", "P2"],
    ...     "offer_type": ["upsell"] * 2, "rank": [1, 1], "propensity": [0.3, 0.2],
    ...     "value": [100.0, 90.0], "priority": [30.0, 18.0], "reason": ["Holds P1."] * 2})
    >>> shown = record_recommendation(offers, None, as_of="2025-06-30", model_id="m",
    ...     policy=None, holdout=Holdout(share=0.5, salt="2026-Q4"))
    >>> shown["client_id"].tolist()
    ['C1']
    """
    if holdout is None and log is None:
        return offers
    rows, shown = decide(
        offers,
        no_offer_report,
        as_of=as_of,
        model_id=model_id,
        policy=policy,
        holdout=holdout,
        campaign=campaign,
    )
    return shown_offers(offers, rows, shown, log)


def shown_offers(
    offers: pd.DataFrame,
    rows: pd.DataFrame,
    shown: npt.NDArray[np.bool_],
    log: DecisionLog | None,
) -> pd.DataFrame:
    """Record what :func:`decide` returned, and keep the offers shown, with their ids.

    Parameters
    ----------
    offers : DataFrame
        The offers given to :func:`decide`.
    rows, shown
        What :func:`decide` returned.
    log : DecisionLog, optional
        Where the rows go; with it the result has a ``decision_id`` column.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> offers = pd.DataFrame({"client_id": ["C1"], "product_id": ["P2"],
    ...     "offer_type": ["upsell"], "rank": [1], "propensity": [0.3], "value": [100.0],
    ...     "priority": [30.0], "reason": ["Holds P1."]})
    >>> rows, shown = decide(offers, None, as_of="2025-06-30", model_id="m", policy=None)
    >>> len(shown_offers(offers, rows, shown, None))
    1
    """
    out = offers
    if log is not None:
        log.record(rows)
        out = offers.assign(decision_id=rows["decision_id"].to_numpy()[: len(offers)])
    if not shown.all():
        out = out.loc[shown].reset_index(drop=True)
    return out


def decide(
    offers: pd.DataFrame,
    no_offer_report: pd.DataFrame | None,
    *,
    as_of: Any,
    model_id: str,
    policy: Policy | None,
    holdout: Holdout | None = None,
    campaign: str | None = None,
    decided_at: Any = None,
) -> tuple[pd.DataFrame, npt.NDArray[np.bool_]]:
    """Return the decision rows of offers (and no-offers) under a holdout, and which are shown.

    Parameters
    ----------
    offers, no_offer_report, as_of, model_id, policy, holdout, campaign
        As :func:`record_recommendation`.
    decided_at : date-like, optional
        Default now.

    Returns
    -------
    rows : pandas.DataFrame
        Columns of :data:`DECISION_COLUMNS`: the offers first, in their order, then the
        no-offers.
    shown : numpy.ndarray of bool
        Per offer, whether its client is treated (shown) rather than held out.

    Examples
    --------
    >>> offers = pd.DataFrame({"client_id": ["C2"], "product_id": ["P2"],
    ...     "offer_type": ["upsell"], "rank": [1], "propensity": [0.3], "value": [100.0],
    ...     "priority": [30.0], "reason": ["Holds P1."]})
    >>> rows, shown = decide(offers, None, as_of="2025-06-30", model_id="m", policy=None,
    ...                      holdout=Holdout(share=0.5, salt="2026-Q4"))
    >>> rows["arm"].tolist(), rows["shown_probability"].tolist(), shown.tolist()
    (['holdout'], [0.0], [False])
    """
    rows = decisions_from_offers(
        offers,
        no_offer_report,
        as_of=as_of,
        model_id=model_id,
        policy_id=policy_id(policy),
        campaign=campaign,
        decided_at=decided_at,
    )
    n_offers = len(offers)
    if holdout is None or not len(rows):
        return rows, np.ones(n_offers, dtype=bool)
    arm = holdout.arms(rows["client_id"], campaign)
    rows["arm"] = arm
    withheld = (arm == "holdout") & (rows["action"] == "offer").to_numpy()
    rows.loc[withheld, ["shown_probability", "shown_probability_error"]] = 0.0
    return rows, ~withheld[:n_offers]
