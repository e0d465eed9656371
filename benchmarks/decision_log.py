"""Benchmark: writing and reading the decision log, beside the cost of ``recommend()`` itself.

Run by hand::

    python benchmarks/decision_log.py                          # 100k clients x k=10: 1M offers
    python benchmarks/decision_log.py --clients 20000 --repeats 3
    python benchmarks/decision_log.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/bench

For a synthetic book (``_books.make_book``) it times, medians of ``--repeats`` runs:

* ``recommend(k=10)`` with explanations (what is recorded);
* turning the offers into decision rows (``decisions_from_offers``);
* ``DecisionLog.record`` of the whole batch into a new SQLite file, and into PostgreSQL when
  ``--pg`` (or ``CROSSSELL_TEST_PG_URL``) names a database (its log tables are dropped first);
* sending the same batch again (every id already there: nothing written);
* reading every decision back (``DecisionLog.decisions``) and one reaction per ten decisions
  (``react_many``).

Target: the 1M-offer batch written in under 30 s to SQLite and to PostgreSQL on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from crosssell import Recommender
from crosssell.decisions import DecisionLog, decisions_from_offers, policy_id

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _books import AS_OF, make_book

TABLES = ("crosssell_reactions", "crosssell_decisions", "crosssell_schema")


def timed(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs (``setup()`` before each, untimed)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def drop_tables(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def database_rows(name: str, url: str, rows: pd.DataFrame, repeats: int) -> list[list[Any]]:
    """Time record, re-send, read and react on one database; return the table rows."""
    state: dict[str, Any] = {}

    def fresh() -> None:
        if "log" in state:
            state["log"].close()
        drop_tables(url)
        state["log"] = DecisionLog(url)

    write = timed(lambda: state["log"].record(rows), repeats, setup=fresh)
    log: DecisionLog = state["log"]
    again = timed(lambda: log.record(rows), repeats)
    read = timed(log.decisions, repeats)
    ids = rows["decision_id"].iloc[::10]
    reactions = pd.DataFrame({"decision_id": ids.to_numpy(), "outcome": "accepted"})

    def clear_reactions() -> None:
        import sqlalchemy as sa

        with log._engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM crosssell_reactions"))

    react = timed(lambda: log.react_many(reactions), repeats, setup=clear_reactions)
    log.close()
    n = len(rows)
    return [
        [f"{name}: record (new)", write, n / write],
        [f"{name}: record (again, nothing new)", again, n / again],
        [f"{name}: read back", read, n / read],
        [f"{name}: react ({len(reactions):,})", react, len(reactions) / react],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("CROSSSELL_TEST_PG_URL"))
    args = parser.parse_args()

    book = make_book(args.clients, args.products)
    rec = Recommender(k=args.k).fit(book, AS_OF)
    recommend = timed(rec.recommend, args.repeats)
    offers = rec.recommend()
    report = rec.no_offer_report(offers)
    pid = policy_id(rec.policy)

    def rows_of() -> pd.DataFrame:
        return decisions_from_offers(
            offers, report, as_of=rec.as_of_, model_id=rec.model_id_, policy_id=pid
        )

    convert = timed(rows_of, args.repeats)
    rows = rows_of()
    n = len(rows)
    table: list[list[Any]] = [
        [f"recommend(k={args.k}), explained", recommend, len(offers) / recommend],
        ["decision rows from the offers", convert, n / convert],
    ]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'crosssell.db'}"
        table += database_rows("SQLite", url, rows, args.repeats)
    if args.pg:
        table += database_rows("PostgreSQL", args.pg, rows, args.repeats)
    else:
        table.append(["PostgreSQL: skipped (no --pg URL)", float("nan"), float("nan")])

    print(
        f"{args.clients:,} clients x {args.products:,} products; {len(offers):,} offers and "
        f"{n - len(offers):,} no-offer decisions; medians of {args.repeats} runs\n"
    )
    print(f"{'step':<42} {'seconds':>9} {'rows/s':>12}")
    for name, seconds, rate in table:
        print(f"{name:<42} {seconds:>9.2f} {rate:>12,.0f}")


if __name__ == "__main__":
    main()
