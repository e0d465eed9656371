"""Books read from a database, and results written back in one transaction.

SQLite and DuckDB files always; PostgreSQL when ``CROSSSELL_TEST_PG_URL`` names a database
(``.ci/run`` starts a throwaway server). No mock database.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell.rules import route_sales

sa = pytest.importorskip("sqlalchemy")
from crosssell.sql import offers_to_sql, read_tables  # noqa: E402

PG_URL = os.environ.get("CROSSSELL_TEST_PG_URL")
_DAY = "2025-06-30"


def _duckdb_ok() -> bool:
    try:
        import duckdb_engine  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["sqlite", "duckdb", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    if request.param == "duckdb":
        if not _duckdb_ok():
            pytest.skip("duckdb-engine is not installed (the db extra installs it)")
        return f"duckdb:///{tmp_path / 'crm.duckdb'}"
    if not PG_URL:
        pytest.skip("CROSSSELL_TEST_PG_URL is not set (.ci/run starts a PostgreSQL server)")
    return PG_URL


def _prefix() -> str:
    """Table names of one test, so that tests sharing a PostgreSQL database never meet."""
    return f"t{uuid.uuid4().hex[:8]}_"


def _as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists of products (requires, segments) as a database keeps them: text, items by ';'."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, tuple | list)).any():
            out[column] = out[column].map(
                lambda v: ";".join(map(str, v)) if isinstance(v, tuple | list) else v
            )
    return out


def _write(url: str, frames: dict[str, pd.DataFrame], prefix: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for name, frame in frames.items():
                _as_stored(frame).to_sql(prefix + name, conn, index=False, if_exists="replace")
    finally:
        engine.dispose()


def test_a_book_from_tables_equals_the_book_from_the_same_frames(url):
    """Check that the demo book written to a database reads back to the same offers."""
    frames = cs.datasets.demo_frames()
    p = _prefix()
    _write(url, frames, p)
    book = cs.Book.from_sql(url, p + "contracts", p + "products", p + "clients", p + "events")
    direct = cs.Book.from_frames(**frames)
    assert book.client_ids.external.tolist() == direct.client_ids.external.tolist()
    assert len(book.event_table) == len(direct.event_table)
    assert np.array_equal(book.contract_arrays.start, direct.contract_arrays.start)
    fitted = cs.Recommender(policy=route_sales(), k=3)
    a = fitted.fit(book, _DAY).recommend(explain=False)
    b = cs.Recommender(policy=route_sales(), k=3).fit(direct, _DAY).recommend(explain=False)
    pd.testing.assert_frame_equal(a, b)


def test_queries_integer_ids_and_rejected_rows(url):
    """Check a query as a table, integer ids read as text, and bad rows set aside as usual."""
    p = _prefix()
    contracts = pd.DataFrame(
        {"client_id": [7, 8, 9], "product_id": ["P1", "P2", "P1"],
         "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
         "end_date": [None, "2023-01-01", None], "region": ["N", "N", "S"]}
    )  # fmt: skip
    clients = pd.DataFrame({"client_id": ["7", "8", "9"], "do_not_contact": [True, False, False]})
    _write(url, {"contracts": contracts, "clients": clients}, p)
    with pytest.warns(cs.DataWarning, match="set aside"):
        book = cs.Book.from_sql(
            url,
            f"SELECT client_id, product_id, start_date, end_date FROM {p}contracts "
            "WHERE region = 'N'",
            clients=p + "clients",
            errors="collect",
        )
    assert book.client_ids.external.tolist() == ["7", "8", "9"]
    assert len(book.contract_arrays) == 1  # client 8's contract ends before it starts
    assert book.rejected["rule"].tolist() == ["end_before_start"]
    assert bool(book.client_table.set_index("client_id").loc["7", "do_not_contact"])


def test_a_missing_table_names_itself(url):
    """Check that a table the database does not have gives an error naming it."""
    with pytest.raises(ValueError, match=r"the contracts table could not be read .*no_such_table"):
        cs.Book.from_sql(url, "no_such_table")


def test_offers_written_back_replace_the_table_and_read_back(url):
    """Check that offers are written, replaced on the next run, and keep evidence as JSON."""
    rec = cs.Recommender(policy=route_sales(), k=3).fit(cs.datasets.demo(), _DAY)
    table = _prefix() + "offers"
    first = rec.recommend(["C0001", "C0002"])
    assert offers_to_sql(first, url, table) == len(first)
    second = rec.recommend(["C0005"])
    assert offers_to_sql(second, url, table) == len(second)
    back = read_tables(url, {"o": table}, id_columns=["client_id", "product_id"])["o"]
    assert back["client_id"].tolist() == second["client_id"].tolist()
    assert back["product_id"].tolist() == second["product_id"].tolist()
    evidence = [json.loads(e) for e in back["evidence"]]
    assert evidence[0] == [
        {"product_id": e["product_id"], "weight": pytest.approx(e["weight"])}
        for e in second["evidence"].iloc[0]
    ]


def test_a_failed_write_leaves_the_previous_table(tmp_path, monkeypatch):
    """Check that a run failing half-way leaves the table as it was: one transaction."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    before = pd.DataFrame({"client_id": ["A"], "product_id": ["P1"]})
    offers_to_sql(before, url, "offers")
    real = pd.DataFrame.to_sql

    def half(self, name, con, **kw):
        real(self.head(1), name, con, **kw)
        raise RuntimeError("connection lost")

    monkeypatch.setattr(pd.DataFrame, "to_sql", half)
    with pytest.raises(RuntimeError, match="connection lost"):
        offers_to_sql(pd.DataFrame({"client_id": ["B", "C"], "product_id": ["P2", "P3"]}),
                      url, "offers")  # fmt: skip
    monkeypatch.undo()
    back = read_tables(url, {"o": "offers"}, id_columns=[])["o"]
    assert back.to_dict("records") == [{"client_id": "A", "product_id": "P1"}]
    tables = sa.inspect(sa.create_engine(url)).get_table_names()
    assert tables == ["offers"]  # no staging table left behind


def test_a_reader_during_the_write_sees_the_old_rows_or_the_new_never_a_part():
    """Check on PostgreSQL that a CRM reading during the write waits, then reads the new rows."""
    import threading

    if not PG_URL:
        pytest.skip("CROSSSELL_TEST_PG_URL is not set (.ci/run starts a PostgreSQL server)")
    table = _prefix() + "offers"
    offers_to_sql(pd.DataFrame({"client_id": ["A"], "n": [1]}), PG_URL, table)
    engine = sa.create_engine(PG_URL)
    seen: list[list[str]] = []
    try:
        with engine.connect() as writer:
            tx = writer.begin()
            offers_to_sql(pd.DataFrame({"client_id": ["B", "C"], "n": [2, 3]}), writer, table)

            def read() -> None:
                with engine.connect() as reader:
                    rows = reader.execute(sa.text(f"SELECT client_id FROM {table}")).all()
                    seen.append(sorted(r[0] for r in rows))

            thread = threading.Thread(target=read)
            thread.start()
            thread.join(timeout=1.0)
            assert thread.is_alive()  # the swap's lock holds the reader until the commit
            tx.commit()
            thread.join(timeout=30)
        assert seen == [["B", "C"]]
    finally:
        engine.dispose()


def test_table_names_are_checked():
    """Check that a target that is not a plain name is refused before anything is written."""
    with pytest.raises(ValueError, match="plain name"):
        offers_to_sql(pd.DataFrame({"a": [1]}), "sqlite://", "offers; DROP TABLE x")


# ----------------------------------------------------------------------------- command line
def test_command_line_reads_tables_and_queries_and_writes_offers_to_a_table(tmp_path, capsys):
    """Check --from-db with table names and a query, and --out to a table of the same offers."""
    from crosssell.cli import EXIT_OK, main

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    _write(url, cs.datasets.demo_frames(), "")
    tables = ["--products", "products", "--clients", "clients", "--events", "events"]
    assert main(["validate", "--from-db", url, "--contracts", "SELECT * FROM contracts",
                 *tables]) == EXIT_OK  # fmt: skip
    assert "500 clients" in capsys.readouterr().out
    common = ["recommend", "--from-db", url, "--contracts", "contracts", *tables,
              "--as-of", _DAY, "-k", "2"]  # fmt: skip
    assert main([*common, "--out", f"{url}?table=offers"]) == EXIT_OK
    capsys.readouterr()
    assert main(common) == EXIT_OK
    printed = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out), dtype=str)
    stored = read_tables(url, {"o": "offers"}, id_columns=["client_id", "product_id"])["o"]
    assert stored["id"].tolist() == printed["id"].tolist()
    assert stored["product_id"].tolist() == printed["product_id"].tolist()


def test_command_line_database_errors_are_one_line(tmp_path, capsys):
    """Check that a missing table exits 1 naming it, and a URL without a table exits 2."""
    from crosssell.cli import EXIT_BAD_INPUT, EXIT_USAGE, main

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    _write(url, {"contracts": cs.datasets.demo_frames()["contracts"]}, "")
    assert main(["validate", "--from-db", url, "--contracts", "nowhere"]) == EXIT_BAD_INPUT
    assert "--from-db: the contracts table could not be read" in capsys.readouterr().err
    code = main(["recommend", "--from-db", url, "--contracts", "contracts", "--out", url])
    assert code == EXIT_USAGE
    assert "needs the table to write" in capsys.readouterr().err


def test_plan_rows_go_to_a_table_as_plan_csv_has_them(tmp_path, capsys):
    """Check that 'plan --table' writes the rows of plan.csv to the table."""
    from crosssell.cli import EXIT_OK, main

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    _write(url, cs.datasets.demo_frames(), "")
    tables = ["--products", "products", "--clients", "clients", "--events", "events"]
    out = tmp_path / "plan"
    args = ["plan", "--from-db", url, "--contracts", "contracts", *tables, "--as-of", _DAY,
            "--capacity", "5", "--out", str(out), "--table", f"{url}?table=plan"]  # fmt: skip
    assert main(args) == EXIT_OK
    capsys.readouterr()
    csv = pd.read_csv(out / "plan.csv", dtype={"client_id": str})
    stored = read_tables(url, {"p": "plan"}, id_columns=["client_id"])["p"]
    assert stored["client_id"].tolist() == csv["client_id"].tolist()
    assert stored["action"].tolist() == csv["action"].tolist()
    assert stored["due"].fillna("").tolist() == csv["due"].fillna("").tolist()


def test_a_failed_write_through_a_callers_connection_leaves_the_previous_table(
    tmp_path, monkeypatch
):
    """Check the same through a SQLite connection the caller opened (no transaction yet)."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    offers_to_sql(pd.DataFrame({"client_id": ["A"]}), url, "offers")
    real = pd.DataFrame.to_sql

    def half(self, name, con, **kw):
        real(self.head(1), name, con, **kw)
        raise RuntimeError("connection lost")

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            monkeypatch.setattr(pd.DataFrame, "to_sql", half)
            with pytest.raises(RuntimeError, match="connection lost"):
                offers_to_sql(pd.DataFrame({"client_id": ["B", "C"]}), conn, "offers")
            monkeypatch.undo()
        assert sa.inspect(engine).get_table_names() == ["offers"]
    finally:
        engine.dispose()
    assert read_tables(url, {"o": "offers"}, id_columns=[])["o"]["client_id"].tolist() == ["A"]
