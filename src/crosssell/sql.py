"""Books from a CRM's database, and offers or plans written back into it.

Contracts, clients and events usually live in a relational database. :func:`read_tables` reads
each table (a table name or a SQL query) in chunks through SQLAlchemy, with id columns as text,
for :meth:`crosssell.Book.from_sql`; :func:`offers_to_sql` writes a result back so that a CRM
reading the table never sees half a night's run: the rows go to a staging table, which replaces
the target inside one transaction. PostgreSQL, SQLite and DuckDB (through ``duckdb-engine``)
are tested; any SQLAlchemy dialect with transactional DDL should do. Needs the ``db`` extra.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["offers_to_sql", "read_tables"]

# a bare table name, optionally qualified by its database schema: anything else is a query
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def _sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError as err:  # pragma: no cover - the db extra installs it
        raise ImportError(
            "Reading from or writing to a database needs SQLAlchemy: "
            'pip install "crosssell[db]" (and a driver for your database).'
        ) from err
    return sqlalchemy


@contextmanager
def _connection(con: Any, *, write: bool) -> Iterator[Connection]:
    """Yield a connection of ``con`` (a URL, an Engine or a Connection); write in a transaction."""
    sa = _sqlalchemy()
    if isinstance(con, sa.engine.Connection):
        if write and not con.in_transaction():
            with con.begin():
                _begin_sqlite(con)
                yield con
        else:
            yield con
        return
    engine: Engine
    owned = isinstance(con, str)
    if owned:
        engine = sa.create_engine(con)
    elif isinstance(con, sa.engine.Engine):
        engine = con
    else:
        raise TypeError(
            f"con must be a SQLAlchemy URL (str), Engine or Connection; got {type(con).__name__}."
        )
    try:
        with engine.begin() if write else engine.connect() as conn:
            if write:
                _begin_sqlite(conn)
            yield conn
    finally:
        if owned:
            engine.dispose()


def _begin_sqlite(conn: Connection) -> None:
    """Open SQLite's transaction now, so that CREATE and DROP TABLE are inside it too.

    Python's sqlite3 opens a transaction only before the first INSERT, UPDATE or DELETE: the
    staging table's CREATE would be committed on its own, and a failed run would leave it.
    """
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.dbapi_connection
    if raw is not None and not getattr(raw, "in_transaction", True):
        conn.exec_driver_sql("BEGIN")


def _selectable(sa: Any, source: Any, db_schema: str | None) -> Any:
    """Return a table name (``name``, ``schema.name``) as a SELECT of it, other text as a query."""
    if not isinstance(source, str):
        return source  # a SQLAlchemy selectable
    text = source.strip()
    if _NAME.fullmatch(text):
        schema, _, name = text.rpartition(".")
        return sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or db_schema))
    return sa.text(text)


def _as_text(values: pd.Series) -> pd.Series:
    """Ids as text: whole numbers without a decimal point, missing values kept missing."""

    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, float | np.floating) and float(v).is_integer():
            return str(int(v))
        if isinstance(v, bytes):
            return v.decode()
        return str(v)

    return pd.Series([one(v) for v in values.tolist()], index=values.index, dtype=object)


def read_tables(
    con: Any,
    sources: Mapping[str, Any],
    *,
    id_columns: Sequence[str],
    db_schema: str | None = None,
    chunksize: int = 100_000,
) -> dict[str, pd.DataFrame | None]:
    """Read tables or queries from a database, in chunks, with id columns as text.

    Parameters
    ----------
    con : str, sqlalchemy Engine or Connection
        A SQLAlchemy URL (``"postgresql+psycopg://..."``, ``"sqlite:///crm.db"``,
        ``"duckdb:///crm.duckdb"``), or an engine or connection of one.
    sources : mapping of str to (str, selectable or None)
        Per table: a table name (``"contracts"`` or ``"crm.contracts"``), a SQL query
        (``"SELECT ... FROM ..."``), a SQLAlchemy selectable, or None (not read).
    id_columns : sequence of str
        Columns read as text wherever they appear (ids: an integer column ``7`` reads ``"7"``).
    db_schema : str, optional
        The database schema of bare table names.
    chunksize : int, default 100000
        Rows fetched at a time.

    Returns
    -------
    dict of str to DataFrame or None

    Examples
    --------
    >>> import sqlite3, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "crm.db"
    >>> with sqlite3.connect(path) as db:
    ...     _ = db.execute("CREATE TABLE contracts (client_id INTEGER, product_id TEXT)")
    ...     _ = db.execute("INSERT INTO contracts VALUES (7, 'P1')")
    >>> frames = read_tables(f"sqlite:///{path}", {"contracts": "contracts", "events": None},
    ...                      id_columns=["client_id", "product_id"])
    >>> frames["contracts"]["client_id"].tolist(), frames["events"]
    (['7'], None)
    """
    sa = _sqlalchemy()
    out: dict[str, pd.DataFrame | None] = {}
    with _connection(con, write=False) as conn:
        for name, source in sources.items():
            if source is None:
                out[name] = None
                continue
            query = _selectable(sa, source, db_schema)
            try:
                chunks = list(pd.read_sql(query, conn, chunksize=chunksize))
            except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as err:
                raise ValueError(
                    f"Book.from_sql: the {name} table could not be read from the database "
                    f"({source!r}): {str(err).splitlines()[0]}"
                ) from err
            frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
            for column in id_columns:
                if column in frame.columns:
                    frame[column] = _as_text(frame[column])
            out[name] = frame
    return out


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns a database takes: lists, tuples and mappings as JSON text, the rest as they are."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype != object and not isinstance(values.dtype, pd.ArrowDtype):
            continue
        nested = values.map(lambda v: isinstance(v, list | tuple | dict | np.ndarray))
        if nested.any():
            out[column] = [
                json.dumps(_jsonable(v), default=str) if n else v
                for v, n in zip(values.tolist(), nested.tolist(), strict=True)
            ]
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def offers_to_sql(
    frame: pd.DataFrame,
    con: Any,
    table: str,
    *,
    db_schema: str | None = None,
    chunksize: int = 10_000,
) -> int:
    """Write offers (or a plan, or any result) to a table, replacing it in one transaction.

    The rows are written to a staging table ``<table>__staging``, then, in the same
    transaction, the old table is dropped and the staging table takes its name: a CRM reading
    ``table`` sees the previous run's rows until the commit and this run's after, never a part.
    Lists and mappings (``evidence``, ``rules``, ``talking_points``) are written as JSON text.

    Parameters
    ----------
    frame : DataFrame
        What to write, e.g. :meth:`crosssell.Recommender.recommend`'s offers or
        :meth:`crosssell.Recommender.records`.
    con : str, sqlalchemy Engine or Connection
        Where (a Connection already in a transaction writes inside it).
    table : str
        The target table's name.
    db_schema : str, optional
        Its database schema.
    chunksize : int, default 10000
        Rows sent at a time.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    ValueError
        If ``table`` is not a plain name (letters, digits, ``_``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import crosssell as cs
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.demo(), "2025-06-30")
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'crm.db'}"
    >>> offers_to_sql(rec.recommend(["C0001", "C0002"]), url, "offers")
    4
    >>> read_tables(url, {"offers": "offers"}, id_columns=[])["offers"].shape
    (4, 12)
    """
    sa = _sqlalchemy()
    if not _NAME.fullmatch(table) or "." in table:
        raise ValueError(
            f"offers_to_sql: table must be a plain name (letters, digits, _); got {table!r}. "
            "Give the database schema as db_schema."
        )
    staging = f"{table}__staging"
    plain = _plain(frame)
    with _connection(con, write=True) as conn:
        quote = conn.dialect.identifier_preparer.quote
        prefix = f"{quote(db_schema)}." if db_schema else ""
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}{quote(staging)}"))
        plain.to_sql(
            staging, conn, schema=db_schema, index=False, chunksize=chunksize, if_exists="fail"
        )
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}{quote(table)}"))
        conn.execute(sa.text(f"ALTER TABLE {prefix}{quote(staging)} RENAME TO {quote(table)}"))
    return len(plain)
