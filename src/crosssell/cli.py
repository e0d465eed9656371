"""The ``crosssell`` command line.

Each subcommand is one function registered with :func:`_command`; the options that several
subcommands share (input tables, ``--as-of``, ``-k``, ``--model``, ``--out``, ``--policy``,
``--scorer``, ``--quiet``) are added by the ``_*_option(s)`` helpers, so every subcommand spells
them the same way.

Exit codes: 0 success, 1 bad input (the report says why), 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from crosssell._version import __version__
from crosssell.columns import Columns
from crosssell.exceptions import ArtifactError, SchemaError, UnknownIdError

if TYPE_CHECKING:
    import pandas as pd

    from crosssell.book import Book, Schema
    from crosssell.recommender import Recommender
    from crosssell.records import RecordSettings
    from crosssell.rules import Policy
    from crosssell.scorers import Scorer

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_USAGE", "main", "matrix_summary"]

#: The command succeeded.
EXIT_OK: Final = 0
#: The input data broke a rule of the data model; the report says which.
EXIT_BAD_INPUT: Final = 1
#: The command line itself was wrong (unknown option, missing file, bad value).
EXIT_USAGE: Final = 2

_TOP_FAMILIES: Final = 5
_DEFAULT_K: Final = 3
_SCORERS: Final = ("default", "als", "itemknn", "cooccurrence", "popularity")
_POLICIES: Final = ("route_sales", "none")
_TABLE_SUFFIXES: Final = (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl")
_DEMO_CLIENTS: Final = 3
_DEMO_OWNERS: Final = 2
_DEMO_CAPACITY: Final = 5
_DEMO_HEAD: Final = 5
# '--db' given without a value: the embedded log beside the model
_BESIDE: Final = "<beside the model>"

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


class _BadInputError(Exception):
    """Input data that cannot be used (exit code 1); the message is the whole report."""


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
    """Add ``--contracts|--transactions --lookback --products --clients --events --schema``.

    One of ``--contracts`` and ``--transactions`` is needed (``required``); the check is made
    when the files are read, so that the message names both.
    """
    group = parser.add_argument_group(
        "input tables (CSV, CSV.GZ or Parquet files)"
        + ("; --contracts or --transactions is required" if required else "")
    )
    group.add_argument(
        "--contracts", metavar="FILE",
        help="contracts: client_id, product_id, start_date[, end_date, value, quantity]",
    )  # fmt: skip
    group.add_argument(
        "--transactions", metavar="FILE",
        help="purchase lines instead of contracts: client_id, product_id, timestamp[, amount, "
        "quantity]; a purchase counts as holding the product for --lookback",
    )  # fmt: skip
    group.add_argument(
        "--lookback", default="365D", metavar="SPAN",
        help="with --transactions: how long a purchase counts as holding the product, e.g. "
        "365D (default) or 'ever'",
    )  # fmt: skip
    group.add_argument("--products", metavar="FILE", help="product catalog")
    group.add_argument("--clients", metavar="FILE", help="client accounts")
    group.add_argument("--events", metavar="FILE", help="event log")
    group.add_argument(
        "--from-db", metavar="URL",
        help="read the tables from this database (a SQLAlchemy URL, e.g. "
        "postgresql+psycopg://user@host/crm or sqlite:///crm.db; needs crosssell[db]): "
        "--contracts and the others are then table names or SQL queries",
    )  # fmt: skip
    group.add_argument(
        "--schema", type=Path, metavar="JSON",
        help='JSON file mapping crosssell columns to yours, e.g. {"client": "customer_no"}',
    )  # fmt: skip
    parser.set_defaults(inputs_required=required)


def _optional_input_options(parser: argparse.ArgumentParser) -> None:
    """Add the input tables, none required (a ``--model`` can stand in for them)."""
    _input_options(parser, required=False)


def _errors_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--errors raise|collect``."""
    parser.add_argument(
        "--errors", choices=("raise", "collect"), default="raise",
        help="on invalid rows: stop with the validation report (raise, the default) or set them "
        "aside and go on with the rest (collect)",
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
    parser.add_argument(
        "-k", type=_positive_int, default=None, metavar="N",
        help=f"offers per client (default {_DEFAULT_K}, or the saved model's)",
    )  # fmt: skip


def _model_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--model PATH`` (a saved model to read)."""
    parser.add_argument(
        "--model", type=Path, metavar="PATH",
        help="a saved model (from 'crosssell fit'); used instead of fitting on the inputs",
    )  # fmt: skip


def _model_out_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--model PATH`` (where to save the model)."""
    parser.add_argument(
        "--model", type=Path, metavar="PATH", required=True,
        help="save the fitted model here (e.g. model.crosssell)",
    )  # fmt: skip


def _out_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--out PATH``."""
    parser.add_argument(
        "--out", type=_out_target, metavar="PATH",
        help="write the result here (.csv, .csv.gz or .parquet), or to a database table "
        "(a SQLAlchemy URL ending in ?table=NAME, replaced in one transaction); default: CSV "
        "on stdout",
    )  # fmt: skip


def _policy_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--policy route_sales|none``."""
    parser.add_argument(
        "--policy", choices=_POLICIES, default=None,
        help="rules that suppress offers: the built-in route-sales policy (default when "
        "fitting) or none; a saved model keeps its own policy unless this is given",
    )  # fmt: skip


def _scorer_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--scorer NAME``."""
    parser.add_argument(
        "--scorer", choices=_SCORERS, default="default",
        help="how products are scored: default (the learned Ranker over popularity, "
        "item-kNN and co-occurrence), als, itemknn, cooccurrence or popularity",
    )  # fmt: skip


def _fit_options(parser: argparse.ArgumentParser) -> None:
    """Add what fitting needs: ``--as-of -k --policy --scorer --errors``."""
    _as_of_option(parser)
    _k_option(parser)
    _policy_option(parser)
    _scorer_option(parser)
    _errors_option(parser)


def _quiet_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--quiet``."""
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bar (it is shown on stderr only when stderr is a terminal)",
    )  # fmt: skip


def _backtest_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--cutoffs --horizon``."""
    parser.add_argument(
        "--cutoffs", type=_date_list, required=True, metavar="DATES",
        help="comma-separated cutoff dates to fit at, e.g. 2024-06-30,2024-12-31",
    )  # fmt: skip
    parser.add_argument(
        "--horizon", default="180D", metavar="SPAN",
        help="observation window after each cutoff, e.g. 180D (default)",
    )  # fmt: skip


def _record_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--validity-days --language --action-reference`` (the offer records' settings)."""
    group = parser.add_argument_group("offer records (the same as the HTTP service answers)")
    group.add_argument(
        "--validity-days", type=_positive_int, default=30, metavar="N",
        help="days an offer stays valid (valid_until; default 30)",
    )  # fmt: skip
    group.add_argument(
        "--language", default="en", metavar="CODE",
        help="language of the accept/reject labels: en (default), de, es, fr, it, nl",
    )  # fmt: skip
    group.add_argument(
        "--action-reference", default=None, metavar="TEMPLATE",
        help="a link or key back into the CRM per offer, e.g. 'crm://offers/{client_id}/"
        "{product_id}' (fields: id, client_id, product_id, offer_type, valid_from)",
    )  # fmt: skip


def _db_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add ``--db URL``: the decision log."""
    parser.add_argument(
        "--db", required=required, metavar="URL", nargs="?", const=_BESIDE,
        help="the decision log: a database URL (sqlite:///crosssell.db, "
        "postgresql+psycopg://user@host/db) or a SQLite file path; alone, crosssell.db beside "
        "--model (or here); needs the 'db' extra",
    )  # fmt: skip


def _decision_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--db --holdout --holdout-salt --campaign``."""
    group = parser.add_argument_group("decision log and holdout (see 'crosssell lift')")
    _db_option(group)  # type: ignore[arg-type]
    group.add_argument(
        "--holdout", type=float, default=None, metavar="SHARE",
        help="hold this share of clients out of proactive offers (e.g. 0.1), to measure lift",
    )  # fmt: skip
    group.add_argument(
        "--holdout-salt", default="crosssell", metavar="TEXT",
        help="another salt draws another holdout group (e.g. one per quarter; default "
        "'crosssell')",
    )  # fmt: skip
    group.add_argument(
        "--campaign", default=None, metavar="NAME",
        help="recorded with each decision; also scopes the holdout draw",
    )  # fmt: skip


def _client_filter_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--client ID`` (repeatable) and keep the ids in ``args.client_ids``."""
    parser.add_argument(
        "--client", action="append", metavar="ID", dest="client_ids",
        help="only this client (repeat for several)",
    )  # fmt: skip


def _no_explain_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-explain``."""
    parser.add_argument(
        "--no-explain", action="store_true",
        help="leave reason and evidence empty (faster for large books)",
    )  # fmt: skip


def _ks_option(parser: argparse.ArgumentParser) -> None:
    """Add ``-k N[,N...]``: the list lengths a backtest evaluates."""
    parser.add_argument(
        "-k", type=_int_list, default=(1, 3, 5, 10), metavar="N[,N...]",
        help="offer list lengths to evaluate (default 1,3,5,10)",
    )  # fmt: skip


def _n_boot_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--n-boot N``."""
    parser.add_argument(
        "--n-boot", type=int, default=200, metavar="N",
        help="bootstrap resamples for the intervals (default 200; 0 skips them)",
    )  # fmt: skip


def _report_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--report HTML``."""
    parser.add_argument(
        "--report", type=Path, metavar="HTML", help="write a self-contained HTML report here"
    )


def _metric_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--metric NAME@K``."""
    parser.add_argument(
        "--metric", default="ndcg@10", metavar="NAME@K",
        help="what to maximise, e.g. ndcg@10 (default), recall@5, precision@3",
    )  # fmt: skip


def _best_model_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--model PATH`` (where to save the best model of a search)."""
    parser.add_argument("--model", type=Path, metavar="PATH", help="save the best model here")


def _pair_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--client ID --product ID``."""
    parser.add_argument("--client", required=True, metavar="ID", help="client id")
    parser.add_argument("--product", required=True, metavar="ID", help="product id")


def _plan_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--out DIR --capacity --period``."""
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR",
        help="folder for plan.csv and the pages (created when missing)",
    )  # fmt: skip
    parser.add_argument(
        "--capacity", default=None, metavar="N|COLUMN",
        help="actions per manager in the period: a number, or a clients column holding it",
    )  # fmt: skip
    parser.add_argument(
        "--period", default="7D", metavar="SPAN", help="the period planned (default 7D)"
    )
    parser.add_argument(
        "--table", type=_db_target, default=None, metavar="URL",
        help="also write the plan's rows (as plan.csv) to a database table: a SQLAlchemy URL "
        "ending in ?table=NAME, replaced in one transaction",
    )  # fmt: skip
    parser.add_argument(
        "--constraints", type=Path, default=None, metavar="FILE",
        help="plan the whole book at once under these constraints (YAML or JSON: capacity, "
        "effort, per_client, product_quota, family_quota, family_share, must_include, exclude; "
        "see crosssell.allocation.Constraints)",
    )  # fmt: skip


def _read_constraints(path: Path) -> Any:
    """Read a constraints file (YAML or JSON) into checked Constraints."""
    import json

    from crosssell.allocation import Constraints

    _check_file(path, "--constraints")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:
        raise _UsageError(f"--constraints {path}: not valid YAML or JSON: {err}") from err
    if not isinstance(data, dict):
        raise _UsageError(
            f"--constraints {path}: expected a mapping of constraint names to values, got "
            f"{type(data).__name__}"
        )
    try:
        return Constraints.from_dict(data)
    except (TypeError, ValueError) as err:
        raise _UsageError(f"--constraints {path}: {err}") from err


def _server_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--host --port --api-key-file`` and the records' options."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--api-key-file", default=None, metavar="PATH",
        help="file whose first line is the API key requests must carry (default: the "
        "CROSSSELL_API_KEY or CROSSSELL_API_KEY_FILE environment variable; none: open)",
    )  # fmt: skip
    parser.add_argument(
        "--retention", type=Path, default=None, metavar="FILE",
        help="a retention model saved by crosssell.persist.save_retention: serve each "
        "client's health score at GET /health-score/{client_id}",
    )  # fmt: skip
    _record_options(parser)


def _date(text: str) -> pd.Timestamp:
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    if pd.isna(stamp):
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)")
    return stamp


def _date_list(text: str) -> list[pd.Timestamp]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected dates like 2024-06-30,2024-12-31")
    return [_date(p) for p in parts]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int in the range [1, inf); got {text!r}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(sorted({_positive_int(p.strip()) for p in text.split(",") if p.strip()}))


def _schema(path: Path | None) -> Schema | None:
    """Read a ``--schema`` JSON file into a :class:`~crosssell.Schema`."""
    if path is None:
        return None
    from crosssell.book import Schema

    _check_file(path, "--schema")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise _UsageError(f"cannot read --schema file {path}: {err.strerror}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _UsageError(f"--schema file {path} is not valid JSON: {err}") from err
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise _UsageError(f'--schema file {path} must hold an object like {{"client": "cust_no"}}')
    known = [f.name for f in dataclasses.fields(Schema) if f.init]
    unknown = [key for key in mapping if key not in known]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise _UsageError(
            f"--schema file {path}: {key!r} is not a crosssell column{hint} The keys are "
            f"crosssell's names ({', '.join(known)}) and the values your column names."
        )
    try:
        return Schema(**mapping)
    except (TypeError, ValueError) as err:
        raise _UsageError(f"--schema file {path}: {err}") from err


def _check_file(path: Path, option: str) -> None:
    """Refuse a missing file or a folder given where a file is expected (a usage error)."""
    if path.is_dir():
        raise _UsageError(f"{option} {path} is a folder; give the path of a file in it")
    if not path.is_file():
        raise _UsageError(f"{option} {path}: no such file")


def _read_book(args: argparse.Namespace) -> Book:
    """Read the input tables named on the command line (bad rows set aside, not fatal)."""
    from crosssell.book import Book

    if args.contracts is not None and args.transactions is not None:
        raise _UsageError(
            "give either --contracts (contracts with start and end dates) or --transactions "
            "(purchase lines), not both"
        )
    main_option = "--transactions" if args.transactions is not None else "--contracts"
    main_path = args.transactions if args.transactions is not None else args.contracts
    if main_path is None:
        raise _UsageError(
            "give the input tables: --contracts FILE (contracts) or --transactions FILE "
            "(purchase lines)"
        )
    sources = [main_path, args.products, args.clients, args.events]
    schema = _schema(args.schema)
    if getattr(args, "from_db", None) is not None:
        return _read_db_book(args, sources, schema)
    main_file = Path(main_path)
    paths: list[Path | None] = [main_file]
    paths += [None if source is None else Path(source) for source in sources[1:]]
    options = (main_option, "--products", "--clients", "--events")
    for option, path in zip(options, paths, strict=True):
        if path is not None:
            _check_file(path, option)
    try:
        if args.transactions is not None:
            return Book.read_transactions(
                main_file, *paths[1:], lookback=_lookback(args.lookback), schema=schema,
                errors="collect",
            )  # fmt: skip
        return Book.read(main_file, *paths[1:], schema=schema, errors="collect")
    except SchemaError:
        raise
    except OSError as err:
        raise _UsageError(f"cannot read the input: {err}") from err
    except UnicodeDecodeError as err:
        raise _BadInputError(
            f"cannot read the input: a file is not UTF-8 text ({err.reason} at byte "
            f"{err.start}); save it as UTF-8 CSV, or as Parquet"
        ) from err
    except ValueError as err:
        # pandas' parse errors (an empty file, binary data, broken quoting) are ValueErrors
        raise _BadInputError(
            f"cannot read the input: {err}. Check that each file is a CSV with a header line, "
            "or a Parquet file"
        ) from err


def _lookback(value: str) -> str | None:
    """Read ``--lookback``: a duration, or ``ever`` for none."""
    import pandas as pd

    lookback = None if value in ("ever", "none") else str(value)
    try:
        if lookback is not None:
            pd.Timedelta(lookback)
    except ValueError as err:
        raise _UsageError(
            f"--lookback {value!r} is not a duration: write e.g. 365D, 52W or 'ever'"
        ) from err
    return lookback


def _read_db_book(args: argparse.Namespace, sources: list[Any], schema: Schema | None) -> Book:
    """Read the tables (names or queries) from ``--from-db`` (bad rows set aside, not fatal)."""
    from crosssell.book import Book, Schema
    from crosssell.sql import read_tables

    names = schema if schema is not None else Schema()
    main = "transactions" if args.transactions is not None else "contracts"
    try:
        frames = read_tables(
            args.from_db,
            dict(zip((main, "products", "clients", "events"), sources, strict=True)),
            id_columns=names.id_columns(),
        )
    except ImportError as err:
        raise _UsageError(str(err)) from err
    except ValueError as err:
        raise _BadInputError(str(err).replace("Book.from_sql: ", "--from-db: ")) from err
    except Exception as err:  # the driver's own errors: an unknown host, a wrong password
        raise _UsageError(
            f"--from-db: cannot read the database: {str(err).splitlines()[0]}"
        ) from err
    if args.transactions is not None:
        return Book.from_transactions(
            frames[main],
            lookback=_lookback(args.lookback),
            products=frames["products"],
            clients=frames["clients"],
            events=frames["events"],
            schema=schema,
            errors="collect",
        )
    return Book.from_frames(
        frames[main],
        frames["products"],
        frames["clients"],
        frames["events"],
        schema=schema,
        errors="collect",
    )


#: Rows of ``book.rejected`` that are exact duplicates: collapsed into the first, as in Python,
#: so they never fail a command (they are counted in the report and in a warning).
_COLLAPSED: Final = "duplicate_row"


def _invalid(book: Book) -> pd.DataFrame:
    """Return the rejected rows that are invalid (exact duplicates are collapsed, not rejected)."""
    rejected = book.rejected
    if Columns.rule not in rejected.columns:
        return rejected
    return rejected[rejected[Columns.rule] != _COLLAPSED]


def _checked_book(args: argparse.Namespace) -> Book:
    """Read the inputs; with ``--errors raise`` any invalid row stops the command (exit 1).

    Exact duplicate rows are collapsed into the first with a warning, as in Python, whatever
    ``--errors`` says.
    """
    book = _read_book(args)
    invalid = _invalid(book)
    if len(invalid) and args.errors == "raise":
        lines = [_report(book), *_rejected_lines(invalid)]
        lines.append("\nFix the rows above, or pass --errors collect to set them aside.")
        raise _BadInputError("\n".join(lines))
    if len(invalid):
        _note(args, f"{len(invalid):,} invalid rows set aside (see 'crosssell validate').")
    return book


def _has_inputs(args: argparse.Namespace) -> bool:
    return (
        getattr(args, "contracts", None) is not None
        or getattr(args, "transactions", None) is not None
    )


def _note(args: argparse.Namespace, text: str) -> None:
    """Print a progress note on stderr unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def _show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


@contextmanager
def _progress(args: argparse.Namespace, *, total: int, desc: str, unit: str) -> Iterator[Any]:
    """Show a progress bar on stderr, silent with ``--quiet`` or when stderr is not a terminal."""
    from tqdm import tqdm

    bar = tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=not _show_progress(args),
        leave=False, dynamic_ncols=True,
    )  # fmt: skip
    try:
        yield bar
    finally:
        bar.close()


# ------------------------------------------------------------------------- models and scorers


def _make_scorer(name: str) -> Scorer | None:
    """Return the scorer called ``name`` on the command line (None: the library's default)."""
    from crosssell import scorers

    if name == "als":
        return scorers.ALS(random_state=0)
    if name == "itemknn":
        return scorers.ItemKNN()
    if name == "cooccurrence":
        return scorers.CoOccurrence()
    if name == "popularity":
        return scorers.Popularity()
    return None


def _make_policy(name: str | None) -> Policy | None:
    from crosssell.rules import route_sales

    return None if name == "none" else route_sales()


def _new_recommender(args: argparse.Namespace) -> Recommender:
    from crosssell.recommender import Recommender

    # backtest's -k lists the lengths to evaluate; the recommender keeps its default there.
    given = getattr(args, "k", None)
    k = given if isinstance(given, int) else _DEFAULT_K
    return Recommender(scorer=_make_scorer(args.scorer), policy=_make_policy(args.policy), k=k)


def _load_model(args: argparse.Namespace) -> Recommender:
    """Load ``--model``; ``--policy`` given on the command line replaces the saved policy."""
    path: Path = args.model
    if not path.exists():
        raise _UsageError(f"no such model: {path}")
    from crosssell.persist import load

    policy = _make_policy(args.policy) if getattr(args, "policy", None) is not None else None
    try:
        model = load(path, policy=policy)
    except FileNotFoundError as err:
        raise _UsageError(f"no such model: {path}") from err
    except ArtifactError as err:
        raise _BadInputError(f"cannot load the model {path}: {err}") from err
    if getattr(args, "policy", None) == "none" and model.policy is not None:
        # A saved policy is part of the fitted state; dropping it means refitting the rest.
        model = model.set_params(policy=None).fit(model.book_, model.as_of_)
    return model


def _recommender(args: argparse.Namespace, bar: Any | None = None) -> Recommender:
    """Return the model to work with: ``--model`` when given, else fitted on the inputs."""
    if args.model is not None:
        if bar is not None:
            bar.set_postfix_str("loading the model")
        rec = _load_model(args)
        if args.as_of is not None and not _has_inputs(args) and args.as_of != rec.as_of_:
            raise _UsageError(
                f"the model was fitted at {rec.as_of_.date()}, not {args.as_of.date()}: "
                "pass the input tables to score them at another date, or refit"
            )
        return rec
    if not _has_inputs(args):
        raise _UsageError("give the input tables (--contracts ...) or a saved model (--model)")
    if bar is not None:
        bar.set_postfix_str("reading the input")
    book = _checked_book(args)
    if bar is not None:
        bar.update()
        bar.set_postfix_str("fitting")
    rec = _new_recommender(args).fit(book, args.as_of)
    if bar is not None:
        bar.update()
    return rec


def _fresh_tables(args: argparse.Namespace) -> dict[str, pd.DataFrame | None]:
    """Return the input tables validated, with crosssell's column names, for a model to score."""
    book = _checked_book(args)
    return {
        "contracts": book.contracts,
        "clients": book.clients if args.clients is not None else None,
        "events": book.events if args.events is not None else None,
    }


# ----------------------------------------------------------------------------------- outputs


def _flat(frame: pd.DataFrame, *, nested: bool = False) -> pd.DataFrame:
    """Make a frame writable: lists (evidence) become JSON text unless ``nested`` keeps them.

    Parquet keeps ``evidence`` as a list of ``{product_id, weight}`` structs (``nested``); CSV
    holds it as a JSON list of such objects.
    """
    import pandas as pd
    import pyarrow as pa  # type: ignore[import-untyped]

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_list(values.dtype.pyarrow_dtype):
            if not nested:
                out[column] = values.map(
                    lambda v: None if v is None else json.dumps([_plain(dict(e)) for e in v])
                )
            continue
        if values.dtype != object:
            continue
        is_nested = values.map(lambda v: isinstance(v, tuple | list)).any()
        if is_nested:
            out[column] = values.map(
                lambda v: json.dumps(_plain(v)) if isinstance(v, tuple | list) else v
            )
        elif not values.map(lambda v: v is None or isinstance(v, str)).all():
            out[column] = values.map(lambda v: None if v is None else str(v))
    return out


def _write_parquet(frame: pd.DataFrame, path: str) -> None:
    """Write Parquet with Arrow types only: a list of structs reads back in any Parquet reader.

    pandas' own metadata is left out, since it names extension types (``list<...>[pyarrow]``)
    that some readers, pandas' default one included, cannot rebuild.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)


def _write_jsonl(frame: pd.DataFrame, path: str) -> None:
    """Write one JSON object per row; evidence as a list of objects, dates as ISO text."""
    import pandas as pd

    with open(path, "w", encoding="utf-8") as handle:
        for row in frame.to_dict("records"):
            record = {}
            for key, raw in row.items():
                value = raw
                if isinstance(raw, list | tuple):
                    value = [_plain(dict(e)) if isinstance(e, dict) else _plain(e) for e in raw]
                elif isinstance(raw, pd.Timestamp):
                    value = raw.isoformat()
                elif raw is not None and not isinstance(raw, str) and pd.isna(raw):
                    value = None
                record[key] = _plain(value)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _plain(value: Any) -> Any:
    """Nested tuples of ids and numpy scalars as JSON-ready lists and Python numbers."""
    import numpy as np

    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _db_target(value: str) -> str:
    """Read a database target: a SQLAlchemy URL (``scheme://...?table=NAME``)."""
    if "://" not in value:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a database URL: write e.g. sqlite:///crm.db?table=plan"
        )
    return value


def _out_target(value: str) -> Path | str:
    """Read ``--out``: a database URL (``scheme://...?table=NAME``) as text, else a path."""
    return value if "://" in value else Path(value)


def _write_db(frame: pd.DataFrame, url: str) -> None:
    """Write to the table named by ``url``'s ``table`` parameter, in one transaction."""
    from urllib.parse import parse_qsl, urlencode

    from crosssell.sql import offers_to_sql

    # split by hand: urllib would fold sqlite:////abs/path into a relative path
    base, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    tables = [v for k, v in query if k == "table"]
    schemas = [v for k, v in query if k == "db_schema"]
    if len(tables) != 1:
        raise _UsageError(
            "--out: a database URL needs the table to write, e.g. "
            "postgresql+psycopg://user@host/crm?table=offers"
        )
    rest = urlencode([(k, v) for k, v in query if k not in ("table", "db_schema")])
    try:
        offers_to_sql(
            frame,
            f"{base}?{rest}" if rest else base,
            tables[0],
            db_schema=schemas[0] if schemas else None,
        )
    except ImportError as err:
        raise _UsageError(str(err)) from err
    except ValueError as err:
        raise _UsageError(f"--out: {err}") from err
    except Exception as err:  # the driver's own errors: an unknown host, no permission
        raise _UsageError(f"cannot write --out: {str(err).splitlines()[0]}") from err


def _write_table(frame: pd.DataFrame, path: Path | str | None) -> None:
    """Write to ``path``, a database table, or stdout.

    A file is CSV, Parquet or JSON lines by its suffix, replaced atomically; a URL with
    ``?table=`` names a table, replaced in one transaction.
    """
    if path is None:
        _flat(frame).to_csv(sys.stdout, index=False)
        return
    if isinstance(path, str):
        _write_db(frame, path)
        return
    name = path.name.lower()
    if not name.endswith(_TABLE_SUFFIXES):
        raise _UsageError(f"--out {path}: use a .csv, .csv.gz, .parquet or .jsonl file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    except OSError as err:
        raise _UsageError(f"cannot write --out {path}: {err.strerror or err}") from err
    os.close(fd)
    try:
        if name.endswith((".parquet", ".pq")):
            _write_parquet(_flat(frame, nested=True), tmp)
        elif name.endswith(".jsonl"):
            _write_jsonl(frame, tmp)
        else:
            _flat(frame).to_csv(
                tmp, index=False, compression="gzip" if name.endswith(".gz") else None
            )
        # A temporary file is private (0600); an output is meant to be shared like any file.
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _UsageError(f"cannot write --out {path}: {err.strerror or err}") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    import numpy as np
    import pandas as pd

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
    help="run the whole pipeline on the demo book and show what it does",
    epilog=(
        "Fits the default recommender with the route-sales policy on the demo book, then shows\n"
        "offers with their reasons, what the policy suppressed, who gets no offer and why, the\n"
        "account plan of two managers, and a backtest against popularity with its interval.\n\n"
        "examples:\n  crosssell demo\n  crosssell demo --as-of 2024-12-31"
    ),
    options=(_as_of_option,),
)
def _demo(args: argparse.Namespace) -> int:
    from crosssell.datasets import demo, demo_as_of
    from crosssell.recommender import Recommender
    from crosssell.rules import route_sales
    from crosssell.serve import product_names

    book = demo()
    as_of = args.as_of if args.as_of is not None else demo_as_of()
    out = sys.stdout
    print("Demo book: a synthetic software vendor (crosssell.datasets.demo()).\n", file=out)
    print(_report(book), file=out)
    _print_matrix_summary(matrix_summary(book, as_of), out)
    rec = Recommender(policy=route_sales(), k=_DEFAULT_K).fit(book, as_of)
    offers = rec.recommend()
    names = product_names(rec)
    _print_demo_offers(rec, offers, names, out)
    _print_suppression(rec.suppressed(), out)
    _print_no_offer(rec, rec.no_offer_report(offers), out)
    _print_demo_plan(rec, out)
    _print_demo_backtest(rec, book, out)
    return EXIT_OK


# the demo's backtest: two cutoffs a half-year apart, each scored on the next half-year
_DEMO_CUTOFFS: Final = ("2024-06-30", "2024-12-31")
_DEMO_HORIZON: Final = "180D"


def _print_demo_backtest(rec: Recommender, book: Book, out: TextIO) -> None:
    """Say whether the offers beat the obvious: a backtest against popularity, with its interval."""
    import pandas as pd

    from crosssell.evaluation import backtest, compare

    # only what was known at as_of: each cutoff's half-year has passed by then
    horizon = pd.Timedelta(_DEMO_HORIZON)
    cutoffs = [c for c in _DEMO_CUTOFFS if pd.Timestamp(c) + horizon <= rec.as_of_]
    if not cutoffs:
        return
    known = book.known_at(rec.as_of_)
    result = backtest(rec, known, cutoffs, _DEMO_HORIZON, k=(10,), progress=False)

    def pooled_row(metric: str) -> dict[str, Any]:
        table = compare(result, metric=metric, k=10)
        return {str(k): v for k, v in table[table["fold"] == "all"].iloc[0].items()}

    pooled, value = pooled_row("ndcg"), pooled_row("value_captured")
    verdict = (
        "above popularity" if pooled["ci_low"] > 0
        else "below popularity" if pooled["ci_high"] < 0
        else "not distinguishable from popularity"
    )  # fmt: skip
    print(
        f"\nDoes it beat the obvious? Backtest (cs.backtest): fitted at {' and '.join(cutoffs)}, "
        f"scored on the next {_DEMO_HORIZON[:-1]} days ({int(pooled['n_clients']):,} clients who "
        "took something), against a popularity ranking with the same policy:",
        file=out,
    )
    print(
        f"  NDCG@10            crosssell {pooled['value']:.3f}  popularity "
        f"{pooled['baseline_value']:.3f}  difference {pooled['difference']:+.3f} "
        f"[95% CI {pooled['ci_low']:+.3f}, {pooled['ci_high']:+.3f}]: {verdict}",
        file=out,
    )
    print(
        f"  value captured@10  crosssell {value['value']:,.0f}  popularity "
        f"{value['baseline_value']:,.0f}  ({value['value'] / value['baseline_value'] - 1:+.1%})",
        file=out,
    )


def _print_demo_offers(
    rec: Recommender, offers: pd.DataFrame, names: dict[Any, str], out: TextIO
) -> None:
    clients = offers[Columns.client].drop_duplicates().head(_DEMO_CLIENTS).tolist()
    print(
        f"\nTop offers for {len(clients)} demo clients at {rec.as_of_.date()} "
        f"(k={rec.k_}, route-sales policy):",
        file=out,
    )
    table = rec.book_.client_table.set_index(Columns.client)
    shown = offers[offers[Columns.client].isin(clients)]
    for client, rows in shown.groupby(Columns.client, sort=False):
        who = table.loc[client]
        print(f"  {client} ({who.get(Columns.segment)}, {who.get(Columns.owner)})", file=out)
        for row in rows.itertuples(index=False):
            product = getattr(row, Columns.product)
            print(
                f"    {getattr(row, Columns.rank)}. {names.get(product, product):<16} "
                f"{getattr(row, Columns.offer_type):<10} "
                f"propensity {getattr(row, Columns.propensity):.2f}  "
                f"value {getattr(row, Columns.value):>9,.0f}  "
                f"expected {getattr(row, Columns.expected_value):>9,.0f}",
                file=out,
            )
            print(f"       {getattr(row, Columns.reason)}", file=out)
    log = rec.suppressed()
    explained = log[log[Columns.product].notna() & (log[Columns.rule] != "already_held")]
    if len(explained):
        first = explained.iloc[0]
        client, product = first[Columns.client], first[Columns.product]
        print(f"\n  Why not {product} for {client}? {rec.why_not(client, product)}", file=out)


def _print_suppression(log: pd.DataFrame, out: TextIO) -> None:
    counts = (
        log.groupby([Columns.rule, Columns.kind], sort=False)
        .size()
        .sort_values(ascending=False, kind="stable")
    )
    print(f"\nSuppressed by the policy ({len(log):,} blocks), per rule:", file=out)
    for row in counts.rename("n").reset_index().itertuples(index=False):
        print(f"  {row.rule:<24} {row.kind:<14} {row.n:>7,}", file=out)


def _print_no_offer(rec: Recommender, report: pd.DataFrame, out: TextIO) -> None:
    n_clients = int(rec.eligible_.sum())
    print(
        f"\nNo offer for {len(report):,} of {n_clients:,} clients (first {_DEMO_HEAD}):", file=out
    )
    for row in report.head(_DEMO_HEAD).itertuples(index=False):
        print(f"  {getattr(row, Columns.client)}  {getattr(row, Columns.reason)}", file=out)


def _print_demo_plan(rec: Recommender, out: TextIO) -> None:
    import pandas as pd

    from crosssell.account_plan import plan

    account_plan = plan(rec, capacity=_DEMO_CAPACITY)
    owners = account_plan.owners[:_DEMO_OWNERS]
    lists = account_plan.by_owner()
    print(
        f"\nAccount plan for {' and '.join(owners)} (period {account_plan.period.days} days, "
        f"capacity {_DEMO_CAPACITY} actions each):",
        file=out,
    )
    for owner in owners:
        print(f"  {owner}", file=out)
        for row in lists.get(owner, pd.DataFrame()).itertuples(index=False):
            due = str(row.due)[:10]
            print(
                f"    {row.rank_in_owner}. {row.action:<18} {getattr(row, Columns.client)}  "
                f"due {due}  {row.reason}",
                file=out,
            )


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
    options=(_input_options, _errors_option, _as_of_option, _schema_json_option),
)
def _validate(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            book = _read_book(args)
        except SchemaError as err:
            return _validation_failed(args, err, caught)
    notes = [str(w.message) for w in caught]
    invalid = _invalid(book)
    ok = len(invalid) == 0
    # with --errors collect, invalid rows are reported and set aside, as fit would set them aside
    usable = ok or args.errors == "collect"
    held = matrix_summary(book, args.as_of) if args.as_of is not None else None
    if args.schema_json:
        payload = {
            "ok": ok,
            "schema": book.schema.to_dict(),
            "summary": json.loads(book.summary().to_json(orient="records", date_format="iso")),
            "rejected": json.loads(book.rejected.to_json(orient="records", date_format="iso")),
            "warnings": notes,
        }
        if held is not None:
            payload["held_at_as_of"] = held
        print(json.dumps(payload, indent=2, default=str))
    else:
        report = _report(book)
        print(report)
        if not ok:
            print("\n".join(_rejected_lines(invalid)))
        if held is not None:
            _print_matrix_summary(held, sys.stdout)
        for note in notes:
            if note not in report:
                print(f"warning: {note}", file=sys.stderr)
    return EXIT_OK if usable else EXIT_BAD_INPUT


def _rejected_lines(rejected: pd.DataFrame, limit: int = 20) -> list[str]:
    shown = rejected.head(limit)
    lines = [
        f"\nRejected rows (showing {len(shown)} of {len(rejected)}; row = 0-based position in "
        "the file's data rows):"
    ]
    for rec in shown.to_dict("records"):
        where = f"{rec.get('table')} row {rec.get('row')}"
        column = rec.get("column")
        if isinstance(column, str) and column:
            where += f" column {column!r}"
        detail = rec.get("record")
        lines.append(f"  {where}: {rec.get('reason')}" + (f" ({detail})" if detail else ""))
    return lines


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


@_command(
    "recommend",
    help="make offers for every client (or some) and write them as CSV or Parquet",
    epilog=(
        "Fits on the input tables at --as-of (default: the last date in them), or uses a saved\n"
        "model. With --model and input tables, the model scores the clients in the tables\n"
        "(new contracts and events taken into account) without refitting.\n"
        "Each row is an offer record, as the HTTP service answers it: id (model_id:client_id:\n"
        "product_id:valid_from), name, description, valid_from, valid_until, accept_label,\n"
        "reject_label, language, action_reference, model_id, then client_id, product_id,\n"
        "offer_type, score, propensity, value, expected_value, priority, rank, reason, evidence\n"
        "(a list of {product_id, weight}: structs in Parquet, JSON in CSV), cold_start.\n"
        "Money is rounded to cents, scores and probabilities to 4 digits. --out takes .csv,\n"
        ".csv.gz, .parquet or .jsonl (one JSON record per line).\n\n"
        "examples:\n"
        "  crosssell recommend --contracts c.csv --products p.csv --as-of 2025-06-30 "
        "--out offers.parquet\n"
        "  crosssell recommend --contracts c.csv --scorer als --policy none -k 5 > offers.csv\n"
        "  crosssell recommend --model model.crosssell --client C0001 --client C0002\n"
        "  crosssell recommend --model model.crosssell --contracts today.csv "
        "--events today-events.csv"
    ),
    options=(
        _optional_input_options,
        _fit_options,
        _model_option,
        _out_option,
        _quiet_option,
        _client_filter_option,
        _no_explain_option,
        _record_options,
        _decision_options,
    ),
)
def _recommend(args: argparse.Namespace) -> int:
    with _progress(args, total=3, desc="recommend", unit="step") as bar:
        rec = _recommender(args, bar)
        k = args.k if args.k is not None else rec.k_
        explain = not args.no_explain
        bar.set_postfix_str("scoring")
        if args.model is not None and _has_inputs(args):
            tables = _fresh_tables(args)
            offers = rec.recommend_frames(
                tables["contracts"], clients=tables["clients"], events=tables["events"],
                as_of=args.as_of, k=k, explain=explain,
            )  # fmt: skip
            if args.client_ids:
                ids = [rec.book_.client_ids.coerce(c) for c in args.client_ids]
                offers = offers[offers[Columns.client].isin(ids)].reset_index(drop=True)
            offers = _decide_fresh(rec, offers, args)
        else:
            offers = _recommend_in_batches(rec, args, k, explain)
        bar.update(bar.total - bar.n)
    from crosssell.records import rounded

    settings = _record_settings(args)
    records = rec.records(offers, settings=settings)
    if args.as_of is not None and args.model is not None and _has_inputs(args):
        from crosssell.records import offer_records, product_names

        records = offer_records(
            offers, as_of=args.as_of, model_id=rec.model_id_, names=product_names(rec),
            settings=settings,
        )  # fmt: skip
    _write_table(rounded(records), args.out)
    if args.out is not None:
        _note(args, f"{len(offers):,} offers for {offers[Columns.client].nunique():,} clients "
              f"written to {args.out}")  # fmt: skip
    return EXIT_OK


def _record_settings(args: argparse.Namespace) -> RecordSettings:
    """Return the records' settings given by ``--validity-days --language --action-reference``."""
    from crosssell.records import RecordSettings

    try:
        return RecordSettings(
            validity_days=args.validity_days,
            language=args.language,
            action_reference=args.action_reference,
        )
    except ValueError as err:
        raise _UsageError(str(err)) from err


def _check_known_clients(rec: Recommender, wanted: Sequence[Any]) -> None:
    """Refuse client ids the Book does not hold, as ``why-not`` does (exit code 1)."""
    unknown = [c for c in wanted if c not in rec.book_.client_ids]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise _BadInputError(
            f"{len(unknown)} client id(s) are not in the book (showing up to 5): {shown}. "
            "Check the ids, or refit on a book that holds them."
        )


def _recommend_in_batches(
    rec: Recommender, args: argparse.Namespace, k: int, explain: bool
) -> pd.DataFrame:
    """Offers for the chosen clients, a batch at a time so the progress bar can move."""
    import numpy as np
    import pandas as pd

    ids = rec.book_.client_ids
    if args.client_ids:
        wanted = pd.Index([ids.coerce(c) for c in args.client_ids])
        _check_known_clients(rec, wanted)
    else:
        wanted = ids.to_external(np.flatnonzero(rec.eligible_))
    step = int(rec.batch_size)
    parts = []
    decide = _decision_kwargs(args)
    with _progress(args, total=len(wanted), desc="offers", unit="client") as bar:
        for start in range(0, len(wanted), step):
            chunk = wanted[start : start + step]
            parts.append(rec.recommend(chunk, k=k, explain=explain, **decide))
            bar.update(len(chunk))
    if "log" in decide:
        decide["log"].close()
    if not parts:
        return rec.recommend([], k=k, explain=explain)
    return pd.concat(parts, ignore_index=True)


def _decision_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Return ``log``, ``holdout`` and ``campaign`` as ``--db --holdout --campaign`` give them."""
    out: dict[str, Any] = {}
    if getattr(args, "db", None):
        out["log"] = _open_log(_db_url(args))
    if getattr(args, "holdout", None) is not None:
        from crosssell.decisions import Holdout

        try:
            out["holdout"] = Holdout(share=args.holdout, salt=args.holdout_salt)
        except (TypeError, ValueError) as err:
            raise _UsageError(f"--holdout: {err}") from err
    if out and getattr(args, "campaign", None):
        out["campaign"] = args.campaign
    return out


def _db_url(args: argparse.Namespace) -> str:
    """Return the log ``--db`` names; ``--db`` alone: ``crosssell.db`` beside ``--model``."""
    if args.db != _BESIDE:
        return str(args.db)
    from crosssell.decisions import DEFAULT_FILE

    model = getattr(args, "model", None)
    folder = Path(model).expanduser().resolve().parent if model is not None else Path.cwd()
    return str(folder / DEFAULT_FILE)


def _open_log(url: str) -> Any:
    """Open the decision log named by ``--db``, turning setup problems into usage errors."""
    from crosssell.decisions import DecisionLog

    try:
        return DecisionLog(url)
    except ImportError as err:
        raise _UsageError(str(err)) from err
    except Exception as err:  # a URL SQLAlchemy cannot parse, or a server that does not answer
        if isinstance(err, ValueError | OSError) or type(err).__module__.startswith("sqlalchemy"):
            raise _UsageError(f"--db {url}: {err}") from err
        raise


def _decide_fresh(rec: Recommender, offers: pd.DataFrame, args: argparse.Namespace) -> Any:
    """Record (and hold out) offers scored on fresh tables, as ``recommend(log=...)`` does."""
    decide = _decision_kwargs(args)
    if not decide:
        return offers
    from crosssell.decisions import record_recommendation

    log = decide.get("log")
    try:
        return record_recommendation(
            offers,
            None,
            as_of=args.as_of if args.as_of is not None else rec.as_of_,
            model_id=rec.model_id_,
            policy=rec.policy,
            **decide,
        )
    finally:
        if log is not None:
            log.close()


@_command(
    "fit",
    help="fit a recommender on the input tables and save it",
    epilog=(
        "The saved model holds the fitted state and the validated book; load it with\n"
        "crosssell.load(path) or use it with 'recommend', 'why-not', 'plan' and 'serve'.\n\n"
        "examples:\n"
        "  crosssell fit --contracts c.csv --products p.csv --clients a.csv --events e.csv "
        "--model model.crosssell\n"
        "  crosssell fit --contracts c.parquet --as-of 2025-06-30 --scorer als "
        "--model als.crosssell"
    ),
    options=(_input_options, _fit_options, _model_out_option, _quiet_option),
)
def _fit(args: argparse.Namespace) -> int:
    with _progress(args, total=3, desc="fit", unit="step") as bar:
        bar.set_postfix_str("reading the input")
        book = _checked_book(args)
        bar.update()
        bar.set_postfix_str("fitting")
        rec = _new_recommender(args).fit(book, args.as_of)
        bar.update()
        bar.set_postfix_str("saving")
        _save(rec, args.model)
        bar.update()
    n_clients, n_products = rec.matrix_.shape
    policy = rec.policy.name if rec.policy is not None else "no policy"
    print(
        f"Fitted a recommender ({type(rec.scorer_).__name__} scorer, {policy}, k={rec.k_}) at "
        f"{rec.as_of_.date()} on {n_clients:,} clients x {n_products:,} products; "
        f"saved to {args.model}"
    )
    return EXIT_OK


def _save(rec: Recommender, path: Path) -> None:
    from crosssell.persist import save

    try:
        save(rec, path)
    except ArtifactError as err:
        raise _UsageError(str(err)) from err
    except OSError as err:
        raise _UsageError(f"cannot save the model to {path}: {err}") from err


@_command(
    "backtest",
    help="measure the recommender on the past: fit at each cutoff, score the next horizon",
    epilog=(
        "Prints each metric at each k averaged over the folds, against a popularity baseline.\n"
        "--out writes the tidy table (one row per fold, model, offer type, metric and k, with\n"
        "bootstrap intervals); --report writes a self-contained HTML page with charts.\n\n"
        "examples:\n"
        "  crosssell backtest --contracts c.csv --cutoffs 2024-06-30,2024-12-31 --horizon 180D\n"
        "  crosssell backtest --contracts c.csv --events e.csv --cutoffs 2024-12-31 "
        "--scorer als -k 1,3,10 --report backtest.html --out metrics.csv"
    ),
    options=(
        _input_options,
        _backtest_options,
        _as_of_option,
        _policy_option,
        _scorer_option,
        _errors_option,
        _ks_option,
        _n_boot_option,
        _report_option,
        _out_option,
        _quiet_option,
    ),
)
def _backtest(args: argparse.Namespace) -> int:
    from crosssell.evaluation import backtest
    from crosssell.html import report

    book = _until(_checked_book(args), args)
    rec = _new_recommender(args)
    try:
        result = backtest(
            rec, book, args.cutoffs, args.horizon, k=args.k, n_boot=args.n_boot,
            progress=_show_progress(args),
        )  # fmt: skip
    except SchemaError:
        raise
    except ValueError as err:
        raise _UsageError(str(err)) from err
    print(result.summary().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out is not None:
        _write_table(result.to_frame(), args.out)
        _note(args, f"metrics written to {args.out}")
    if args.report is not None:
        report(result, args.report)
        _note(args, f"report written to {args.report}")
    return EXIT_OK


def _until(book: Book, args: argparse.Namespace) -> Book:
    """Keep what was known at ``--as-of`` (contracts started and events dated by then).

    Every cutoff's horizon must then end by ``--as-of``: nothing dated later is used.
    """
    if args.as_of is None:
        return book
    import pandas as pd

    horizon = pd.Timedelta(args.horizon)
    late = [c for c in args.cutoffs if c + horizon > args.as_of]
    if late:
        raise _UsageError(
            f"with --as-of {args.as_of.date()} nothing later is used, but cutoff "
            f"{late[0].date()} + horizon {args.horizon} ends on {(late[0] + horizon).date()}: "
            f"use cutoffs on or before {(args.as_of - horizon).date()}"
        )
    return book.known_at(args.as_of)


def _tune_space(names: Sequence[str]) -> list[dict[str, list[Any]]]:
    """Return a small search over the named scorers, each with the setting that matters most."""
    from crosssell import scorers
    from crosssell.recommender import default_scorer

    space: dict[str, dict[str, list[Any]]] = {
        "default": {"scorer": [default_scorer()]},
        "popularity": {"scorer": [scorers.Popularity()]},
        "cooccurrence": {
            "scorer": [scorers.CoOccurrence()],
            "scorer__measure": ["confidence", "lift"],
        },
        "itemknn": {"scorer": [scorers.ItemKNN()], "scorer__neighbours": [20, 100]},
        "als": {"scorer": [scorers.ALS(random_state=0)], "scorer__factors": [16, 64]},
    }
    return [space[name] for name in names]


def _scorer_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in _SCORERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scorer(s) {', '.join(map(repr, unknown))}; choose from {', '.join(_SCORERS)}"
        )
    return names


def _scorers_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--scorers NAME[,NAME...]``: the scorers a search tries."""
    parser.add_argument(
        "--scorers", type=_scorer_list, default=_SCORERS, metavar="NAME[,NAME...]",
        help=f"scorers to try (default all: {','.join(_SCORERS)})",
    )  # fmt: skip


@_command(
    "tune",
    help="choose a scorer by backtest: pick on the early cutoffs, report on the last",
    epilog=(
        "Tries default, popularity, co-occurrence (confidence, lift), item-kNN (20, 100\n"
        "neighbours) and ALS (16, 64 factors). The choice is made on all cutoffs but the last;\n"
        "the last one gives the held-out score to quote. --model saves the best configuration\n"
        "fitted on the whole input (at --as-of when given).\n\n"
        "examples:\n"
        "  crosssell tune --contracts c.csv --cutoffs 2024-06-30,2024-12-31 --horizon 180D\n"
        "  crosssell tune --contracts c.csv --cutoffs 2023-12-31,2024-06-30,2024-12-31 "
        "--metric recall@5 --model best.crosssell --out trials.csv\n"
        "  crosssell tune --contracts c.csv --cutoffs 2024-06-30,2024-12-31 "
        "--scorers cooccurrence,itemknn"
    ),
    options=(
        _input_options,
        _backtest_options,
        _as_of_option,
        _policy_option,
        _errors_option,
        _metric_option,
        _scorers_option,
        _best_model_option,
        _out_option,
        _quiet_option,
    ),
)
def _tune(args: argparse.Namespace) -> int:
    from crosssell.evaluation import tune
    from crosssell.recommender import Recommender

    book = _checked_book(args)
    template = Recommender(policy=_make_policy(args.policy), k=_DEFAULT_K)
    try:
        result = tune(
            template, book, _tune_space(args.scorers), args.cutoffs, horizon=args.horizon,
            metric=args.metric, search="grid", progress=_show_progress(args),
        )  # fmt: skip
    except SchemaError:
        raise
    except ValueError as err:
        raise _UsageError(str(err)) from err
    columns = ["rank", "params", "selection_score", "held_out_score", "fit_seconds"]
    table = result.results.sort_values("rank", kind="stable")
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nBest: {result.best_params}; held-out {result.metric} = {result.held_out:.4f}")
    if args.out is not None:
        _write_table(result.results, args.out)
        _note(args, f"trials written to {args.out}")
    if args.model is not None:
        best = result.best_recommender
        if args.as_of is not None:
            best = best.fit(book, args.as_of)
        _save(best, args.model)
        _note(args, f"best model saved to {args.model}")
    return EXIT_OK


@_command(
    "why-not",
    help="say why a product is (or is not) offered to a client",
    epilog=(
        "examples:\n"
        "  crosssell why-not --model model.crosssell --client C0042 --product CRM-3\n"
        "  crosssell why-not --contracts c.csv --events e.csv --as-of 2025-06-30 "
        "--client C0042 --product CRM-3"
    ),
    options=(_optional_input_options, _fit_options, _model_option, _pair_options),
)
def _why_not(args: argparse.Namespace) -> int:
    rec = _recommender(args)
    client = rec.book_.client_ids.coerce(args.client)
    product = rec.book_.product_ids.coerce(args.product)
    print(rec.why_not(client, product))
    if client not in rec.book_.client_ids or product not in rec.book_.product_ids:
        return EXIT_BAD_INPUT
    return EXIT_OK


@_command(
    "plan",
    help="build each account manager's list: plan.csv and one HTML page per manager",
    epilog=(
        "Picks one next best action per client (resolve a complaint, renew, propose, check in,\n"
        "or nothing) and orders each manager's list; --capacity cuts it to what fits in the\n"
        "period.\n\n"
        "examples:\n"
        "  crosssell plan --model model.crosssell --out plan/\n"
        "  crosssell plan --contracts c.csv --clients a.csv --events e.csv --capacity 20 "
        "--period 7D --out plan/\n"
        "  crosssell plan --model model.crosssell --capacity 20 --constraints quarter.yaml "
        "--out plan/"
    ),
    options=(
        _optional_input_options,
        _fit_options,
        _model_option,
        _quiet_option,
        _plan_options,
        _decision_options,
    ),
)
def _plan(args: argparse.Namespace) -> int:
    from crosssell.account_plan import plan, plan_rows, write_plan_csv
    from crosssell.html import plan_overview, write_plan_pages

    capacity: int | str | None = args.capacity
    if isinstance(capacity, str) and capacity.isdigit():
        capacity = int(capacity)
    with _progress(args, total=4, desc="plan", unit="step") as bar:
        rec = _recommender(args, bar)
        bar.set_postfix_str("planning")
        decide = _decision_kwargs(args)
        constraints = None if args.constraints is None else _read_constraints(args.constraints)
        try:
            account_plan = plan(
                rec, period=args.period, capacity=capacity, constraints=constraints, **decide
            )
        except SchemaError:
            raise
        except ValueError as err:
            raise _UsageError(str(err)) from err
        finally:
            if "log" in decide:
                decide["log"].close()
        bar.update()
        bar.set_postfix_str("writing")
        csv_path = write_plan_csv(account_plan, args.out / "plan.csv")
        if args.table is not None:
            _write_db(plan_rows(account_plan), args.table)
        pages = write_plan_pages(account_plan, args.out)
        bar.update(bar.total - bar.n)
    overview = plan_overview(account_plan)
    if len(overview):
        print("Actions listed per manager this period (the table of index.html):")
        print(overview.to_string(index=False, float_format=lambda v: f"{v:,.0f}", na_rep="-"))
    else:
        n = len(account_plan.actions)
        print(
            f"No client has an owner, so there is no list per manager: the {n:,} clients' "
            "actions are on the page of accounts without an owner."
        )
    allocation = account_plan.allocation
    if allocation is not None:
        print("\nPlanned as one book:")
        print(allocation.summary().to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
        for sentence in allocation.shadow_prices["sentence"].head(5):
            print(f"  {sentence}")
    print(f"\nWrote {csv_path} and {len(pages)} pages (open {pages[-1]}).")
    return EXIT_OK


def _reactions_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--file FILE --rejected FILE``."""
    parser.add_argument(
        "--file", type=Path, required=True, metavar="FILE",
        help="reactions (CSV, CSV.GZ, Parquet or JSONL): decision_id, outcome[, reacted_at, "
        "value, note]; outcome is accepted, declined, ignored or not_reached",
    )  # fmt: skip
    parser.add_argument(
        "--rejected", type=Path, default=None, metavar="FILE",
        help="also write the refused rows, with their reason, to this file",
    )  # fmt: skip


def _read_reactions(path: Path) -> pd.DataFrame:
    """Read a reactions file, ids as text."""
    import pandas as pd

    _check_file(path, "--file")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith(".jsonl"):
        return pd.read_json(path, lines=True, dtype={"decision_id": str, "note": str})
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, dtype={"decision_id": str, "outcome": str, "note": str})
    raise _UsageError(f"--file {path}: give a .csv, .csv.gz, .parquet or .jsonl file")


@_command(
    "react",
    help="record what clients did with offers (reactions) in the decision log",
    epilog=(
        "Each row names a decision (the decision_id of an offer record or an HTTP answer) and\n"
        "what came of it. A reaction already in the log (same decision and outcome) is left\n"
        "as it is, so a file can be sent again. Refused rows (unknown decision, unknown\n"
        "outcome, a date before the decision) are listed, the others are kept, and the exit\n"
        "code is 1.\n\n"
        "examples:\n"
        "  crosssell react --db crosssell.db --file reactions.csv\n"
        "  crosssell react --db postgresql+psycopg://crm@db/sales --file today.parquet "
        "--rejected refused.csv"
    ),
    options=(lambda p: _db_option(p, required=True), _reactions_option),
)
def _react(args: argparse.Namespace) -> int:
    reactions = _read_reactions(args.file)
    log = _open_log(_db_url(args))
    try:
        try:
            report = log.react_many(reactions)
        except SchemaError as err:
            raise _BadInputError(str(err)) from err
    finally:
        log.close()
    rejected = report.rejected
    print(
        f"Recorded {report.recorded:,} reaction(s); {report.repeated:,} already in the log; "
        f"{len(rejected):,} refused."
    )
    if len(rejected):
        print("\n".join(_rejected_lines(rejected.assign(table="reactions"))), file=sys.stderr)
        if args.rejected is not None:
            _write_table(rejected, args.rejected)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _lift_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--horizon --campaign --out``."""
    parser.add_argument(
        "--horizon", default="90D", metavar="SPAN",
        help="how long after a decision a take-up counts (default 90D)",
    )  # fmt: skip
    parser.add_argument(
        "--campaign", default=None, metavar="NAME", help="only this campaign's decisions"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE",
        help="also write the whole table (overall, per family, per segment) to this file",
    )  # fmt: skip


@_command(
    "lift",
    help="measure what proposing changed: treated against held-out clients",
    epilog=(
        "Reads the decisions from the log and what the clients took up afterwards from the\n"
        "input tables (the whole book, including what happened after the decisions). Needs\n"
        "decisions made with a holdout ('crosssell recommend --db ... --holdout 0.1').\n\n"
        "examples:\n"
        "  crosssell lift --db crosssell.db --contracts contracts.csv --products p.csv\n"
        "  crosssell lift --db crosssell.db --contracts c.csv --horizon 60D --campaign 2026-Q4 "
        "--out lift.csv"
    ),
    options=(
        lambda p: _db_option(p, required=True),
        _input_options,
        _errors_option,
        _as_of_option,
        _lift_options,
        _n_boot_option,
        _quiet_option,
    ),
)
def _lift(args: argparse.Namespace) -> int:
    import pandas as pd

    from crosssell.evaluation import lift

    book = _checked_book(args)
    if args.as_of is not None:  # outcomes known up to --as-of
        book = _until(book, args)
    log = _open_log(_db_url(args))
    try:
        report = lift(log, book, args.horizon, campaign=args.campaign, n_boot=args.n_boot)
    except ValueError as err:
        raise _UsageError(str(err)) from err
    finally:
        log.close()
    table = report.to_frame()
    shown = table[table["group"] != "segment"].drop(columns=["delta_ci_low", "delta_ci_high"])
    days = int(report.horizon / pd.Timedelta(days=1))
    print(
        f"Lift within {days} days of the decision, treated against held-out clients with a "
        f"(would-be) offer; {round(report.level * 100)}% bootstrap intervals:"
    )
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out is not None:
        _write_table(table, args.out)
        _note(args, f"Wrote {args.out}")
    return EXIT_OK


def _retention_file(path: Path | None) -> Any:
    """Load ``--retention`` (a usage error when it is not a retention model file)."""
    if path is None:
        return None
    from crosssell.exceptions import ArtifactError
    from crosssell.persist import load_retention

    if not path.exists():
        raise _UsageError(f"--retention {path}: no such file")
    try:
        return load_retention(path)
    except ArtifactError as err:
        raise _UsageError(f"--retention {path}: {err}") from err


@_command(
    "serve",
    help="serve a model over HTTP (needs the 'serve' extra: fastapi, uvicorn)",
    epilog=(
        "Endpoints: POST /recommend, GET /why-not, GET /health, GET /health-score/{client_id}\n"
        "(with --retention), and the OpenAPI schema at /docs and /openapi.json. The model is\n"
        "loaded once and never changes while serving.\n"
        "With --db every answer is recorded in the decision log (each action carries its\n"
        "decision_id) and POST /reactions takes the clients' reactions.\n\n"
        "examples:\n"
        "  crosssell serve --model model.crosssell\n"
        "  crosssell serve --model model.crosssell --db crosssell.db --holdout 0.1\n"
        "  crosssell serve --model model.crosssell --host 0.0.0.0 --port 8080 \\\n"
        "      --api-key-file /etc/crosssell/api-key --validity-days 14\n\n"
        "Listening beyond this machine without an API key warns: anyone who reaches the port\n"
        "could read every client's offers."
    ),
    options=(
        _optional_input_options,
        _fit_options,
        _model_option,
        _server_options,
        _decision_options,
    ),
)
def _serve(args: argparse.Namespace) -> int:
    try:
        from crosssell.serve import run
    except ImportError as err:  # pragma: no cover - only without the extra
        raise _UsageError(str(err)) from err
    rec = _recommender(args)
    settings = _record_settings(args)
    decide = _decision_kwargs(args)
    try:
        run(
            rec,
            host=args.host,
            port=args.port,
            validity_days=args.validity_days,
            api_key_file=args.api_key_file,
            settings=settings,
            retention=_retention_file(args.retention),
            **decide,
        )
    except (ImportError, ValueError) as err:  # the extra is missing, or the key is unusable
        raise _UsageError(str(err)) from err
    return EXIT_OK


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
            "  crosssell demo                                # the whole pipeline on a demo book\n"
            "  crosssell validate --contracts contracts.csv  # check your own data\n"
            "  crosssell recommend --contracts c.csv --products p.csv --out offers.csv\n"
            "  crosssell fit --contracts c.csv --events e.csv --model model.crosssell\n"
            "  crosssell backtest --contracts c.csv --cutoffs 2024-06-30,2024-12-31\n"
            "  crosssell plan --model model.crosssell --out plan/\n"
            "  crosssell serve --model model.crosssell --port 8000\n\n"
            "exit codes: 0 ok, 1 bad input (with the validation report), 2 usage error\n"
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


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


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
    # Library warnings (ids normalised, unknown clients) are for the person at the terminal:
    # one readable line each on stderr, after the output they concern.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code: int = args.run(args)
        except _UsageError as err:
            print(f"crosssell {args.command}: error: {err}", file=sys.stderr)
            code = EXIT_USAGE
        except SchemaError as err:
            print(f"Invalid input: {err}", file=sys.stderr)
            code = EXIT_BAD_INPUT
        except (_BadInputError, UnknownIdError) as err:
            print(f"Invalid input: {err}", file=sys.stderr)
            code = EXIT_BAD_INPUT
        except BrokenPipeError:
            # The reader (e.g. 'head') has what it wanted; more output would fail again at exit.
            _silence_stdout()
            code = EXIT_OK
    for note in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {note}", file=sys.stderr)
    return code
