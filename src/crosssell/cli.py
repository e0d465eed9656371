"""The ``crosssell`` command line.

Each subcommand is one function registered with :func:`_command`; the options that several
subcommands share (input tables, ``--as-of``, ``-k``, ``--model``, ``--out``) are added by the
``_*_options`` helpers, so every subcommand spells them the same way.

Exit codes: 0 success, 1 bad input (the report says why), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import numpy as np
import pandas as pd

from crosssell._version import __version__
from crosssell.columns import Columns
from crosssell.exceptions import SchemaError

if TYPE_CHECKING:
    from crosssell.book import Book, Schema

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_USAGE", "main", "matrix_summary"]

#: The command succeeded.
EXIT_OK: Final = 0
#: The input data broke a rule of the data model; the report says which.
EXIT_BAD_INPUT: Final = 1
#: The command line itself was wrong (unknown option, missing file, bad value).
EXIT_USAGE: Final = 2

_TOP_FAMILIES: Final = 5

OptionAdder = Callable[[argparse.ArgumentParser], None]
Runner = Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Command:
    """A subcommand: its name, help texts, the options it takes and the function that runs it."""

    name: str
    help: str
    epilog: str
    options: tuple[OptionAdder, ...]
    run: Runner


_COMMANDS: dict[str, _Command] = {}


class _UsageError(Exception):
    """A problem with the command line rather than with the data (exit code 2)."""


def _command(
    name: str, *, help: str, epilog: str = "", options: Sequence[OptionAdder] = ()
) -> Callable[[Runner], Runner]:
    """Register ``function(args) -> exit code`` as the subcommand ``name``."""

    def register(function: Runner) -> Runner:
        _COMMANDS[name] = _Command(
            name=name, help=help, epilog=epilog, options=tuple(options), run=function
        )
        return function

    return register


# ------------------------------------------------------------------------------- shared options


def _input_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Add ``--contracts --products --clients --events --schema`` (CSV or Parquet paths)."""
    group = parser.add_argument_group("input tables (CSV, CSV.GZ or Parquet files)")
    group.add_argument(
        "--contracts", type=Path, required=required, metavar="FILE",
        help="contracts: client_id, product_id, start_date[, end_date, value, quantity]",
    )  # fmt: skip
    group.add_argument("--products", type=Path, metavar="FILE", help="product catalog")
    group.add_argument("--clients", type=Path, metavar="FILE", help="client accounts")
    group.add_argument("--events", type=Path, metavar="FILE", help="event log")
    group.add_argument(
        "--schema", type=Path, metavar="JSON",
        help='JSON file mapping crosssell columns to yours, e.g. {"client": "customer_no"}',
    )  # fmt: skip


def _schema_json_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--schema-json``."""
    parser.add_argument(
        "--schema-json", action="store_true",
        help="print the result as JSON: the column mapping used, the summary per table, "
        "the rejected rows, and the error if the input could not be read",
    )  # fmt: skip


def _as_of_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--as-of DATE``."""
    parser.add_argument(
        "--as-of", type=_date, metavar="DATE", default=None,
        help="point in time (YYYY-MM-DD); nothing dated later is used",
    )  # fmt: skip


def _k_option(parser: argparse.ArgumentParser) -> None:
    """Add ``-k N``."""
    parser.add_argument("-k", type=_positive_int, default=3, metavar="N", help="offers per client")


def _model_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--model PATH``."""
    parser.add_argument("--model", type=Path, metavar="PATH", help="a saved model")


def _out_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--out PATH``."""
    parser.add_argument(
        "--out", type=Path, metavar="PATH", help="write the result here (CSV or Parquet)"
    )


def _date(text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    if pd.isna(stamp):
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)")
    return stamp


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int in the range [1, inf); got {text!r}")
    return value


def _schema(path: Path | None) -> Schema | None:
    """Read a ``--schema`` JSON file into a :class:`~crosssell.Schema`."""
    if path is None:
        return None
    from crosssell.book import Schema

    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise _UsageError(f"cannot read --schema file {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise _UsageError(f"--schema file {path} is not valid JSON: {err}") from err
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise _UsageError(f'--schema file {path} must hold an object like {{"client": "cust_no"}}')
    try:
        return Schema(**mapping)
    except TypeError as err:
        raise _UsageError(f"--schema file {path}: {err}") from err


def _read_book(args: argparse.Namespace) -> Book:
    """Read the input tables named on the command line (bad rows set aside, not fatal)."""
    from crosssell.book import Book

    paths = [args.contracts, args.products, args.clients, args.events]
    for path in paths:
        if path is not None and not path.is_file():
            raise _UsageError(f"no such file: {path}")
    try:
        return Book.read(*paths, schema=_schema(args.schema), errors="collect")
    except (OSError, UnicodeDecodeError) as err:
        raise _UsageError(f"cannot read the input: {err}") from err


# ----------------------------------------------------------------------------------- reporting


def matrix_summary(book: Book, as_of: Any) -> dict[str, Any]:
    """Describe the active client x product matrix of ``book`` at ``as_of``.

    Parameters
    ----------
    book : Book
        A validated book.
    as_of : date-like
        The point in time.

    Returns
    -------
    dict
        ``as_of``, ``clients``, ``products``, ``holdings`` (active client-product pairs),
        ``clients_holding`` (clients with at least one), ``density`` and ``top_families``
        (family -> holdings, the largest first, at most five).

    Examples
    --------
    >>> import pandas as pd
    >>> from crosssell import Book
    >>> c = pd.DataFrame({"client_id": ["C1", "C1", "C2"], "product_id": ["P1", "P2", "P1"],
    ...                   "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"]})
    >>> s = matrix_summary(Book.from_frames(contracts=c), "2024-06-30")
    >>> s["holdings"], s["density"], s["top_families"]
    (3, 0.75, {'P1': 2, 'P2': 1})
    """
    matrix = book.matrix(as_of)
    client_product = matrix.client_product
    n_clients, n_products = matrix.shape
    per_product = np.diff(client_product.tocsc().indptr)
    families = book.product_table[Columns.family].astype(str).to_numpy()
    by_family = (
        pd.Series(per_product, index=families)
        .groupby(level=0, sort=True)
        .sum()
        .sort_values(ascending=False, kind="stable")
    )
    holdings = int(client_product.nnz)
    return {
        "as_of": str(matrix.as_of.date()),
        "clients": n_clients,
        "products": n_products,
        "holdings": holdings,
        "clients_holding": int(np.count_nonzero(np.diff(client_product.indptr))),
        "density": holdings / (n_clients * n_products) if n_clients * n_products else 0.0,
        "top_families": {str(k): int(v) for k, v in by_family.head(_TOP_FAMILIES).items() if v > 0},
    }


def _print_matrix_summary(summary: dict[str, Any], out: TextIO) -> None:
    print(f"\nClient x product matrix at {summary['as_of']} (active holdings):", file=out)
    print(f"  clients   {summary['clients']:>9,}", file=out)
    print(f"  products  {summary['products']:>9,}", file=out)
    print(
        f"  holdings  {summary['holdings']:>9,}  "
        f"({summary['clients_holding']:,} clients hold at least one)",
        file=out,
    )
    print(f"  density   {summary['density']:>9.2%}", file=out)
    if summary["top_families"]:
        print("  top families by holdings:", file=out)
        for family, count in summary["top_families"].items():
            print(f"    {family:<12} {count:>7,}", file=out)


def _report(book: Book) -> str:
    report = getattr(book, "validation_report", None)
    if callable(report):
        return str(report())
    return repr(book)


# ---------------------------------------------------------------------------------- commands


@_command(
    "demo",
    help="load the demo book and summarise it",
    epilog="examples:\n  crosssell demo\n  crosssell demo --as-of 2024-12-31",
    options=(_as_of_option,),
)
def _demo(args: argparse.Namespace) -> int:
    from crosssell.datasets import demo, demo_as_of

    book = demo()
    as_of = args.as_of if args.as_of is not None else demo_as_of()
    print("Demo book: a synthetic software vendor (crosssell.datasets.demo()).\n")
    print(_report(book))
    _print_matrix_summary(matrix_summary(book, as_of), sys.stdout)
    return EXIT_OK


@_command(
    "validate",
    help="validate input tables and print the report",
    epilog=(
        "exit codes: 0 valid, 1 bad input (the report says why), 2 usage error\n\n"
        "examples:\n"
        "  crosssell validate --contracts contracts.csv\n"
        "  crosssell validate --contracts c.parquet --products p.csv --clients a.csv "
        "--events e.csv\n"
        "  crosssell validate --contracts c.csv --schema columns.json --schema-json"
    ),
    options=(_input_options, _schema_json_option),
)
def _validate(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            book = _read_book(args)
        except SchemaError as err:
            return _validation_failed(args, err, caught)
    notes = [str(w.message) for w in caught]
    ok = len(book.rejected) == 0
    if args.schema_json:
        payload = {
            "ok": ok,
            "schema": book.schema.to_dict(),
            "summary": json.loads(book.summary().to_json(orient="records", date_format="iso")),
            "rejected": json.loads(book.rejected.to_json(orient="records", date_format="iso")),
            "warnings": notes,
        }
        print(json.dumps(payload, indent=2))
    else:
        report = _report(book)
        print(report)
        if not ok:
            _print_rejected(book.rejected, sys.stdout)
        for note in notes:
            if note not in report:
                print(f"warning: {note}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_BAD_INPUT


def _print_rejected(rejected: pd.DataFrame, out: TextIO, limit: int = 20) -> None:
    shown = rejected.head(limit)
    print(f"\nRejected rows (showing {len(shown)} of {len(rejected)}; row = 0-based position in "
          "the file's data rows):", file=out)  # fmt: skip
    for rec in shown.to_dict("records"):
        where = f"{rec.get('table')} row {rec.get('row')}"
        column = rec.get("column")
        if isinstance(column, str) and column:
            where += f" column {column!r}"
        detail = rec.get("record")
        print(f"  {where}: {rec.get('reason')}" + (f" ({detail})" if detail else ""), file=out)


def _validation_failed(
    args: argparse.Namespace, err: SchemaError, caught: list[warnings.WarningMessage]
) -> int:
    if args.schema_json:
        payload = {
            "ok": False,
            "error": {"message": str(err), "table": err.table, "column": err.column,
                      "rule": err.rule, "rows": list(err.rows)},
            "warnings": [str(w.message) for w in caught],
        }  # fmt: skip
        print(json.dumps(payload, indent=2))
    else:
        print(f"Invalid input: {err}")
    return EXIT_BAD_INPUT


# -------------------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosssell",
        description=(
            "Upsell and cross-sell recommendations for route sales: which existing clients to "
            "offer what, and when to offer nothing."
        ),
        epilog=(
            "examples:\n"
            "  crosssell demo                                # summarise the shipped demo book\n"
            "  crosssell validate --contracts contracts.csv  # check your own data\n"
            "  crosssell validate --contracts c.csv --products p.csv --clients a.csv "
            "--events e.csv\n\n"
            "Run 'crosssell COMMAND --help' for the options of a command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crosssell {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in _COMMANDS.values():
        child = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help[0].upper() + cmd.help[1:] + ".",
            epilog=cmd.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for add in cmd.options:
            add(child)
        child.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crosssell`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit code: 0 success, 1 bad input data, 2 usage error.

    Examples
    --------
    >>> main(["demo"])  # doctest: +ELLIPSIS
    Demo book: ...
    0
    >>> main(["validate", "--contracts", "no/such/file.csv"])  # the message goes to stderr
    2
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse exits on --help (0) and on usage errors (2); callers get the code instead.
        return int(stop.code) if isinstance(stop.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except _UsageError as err:
        print(f"crosssell: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return code
