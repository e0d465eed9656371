"""The command line reads what Python reads: purchase lines, duplicates, shared options, plans."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import crosssell as cs
from crosssell.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, _parser, main
from crosssell.exceptions import DataWarning, PurchaseLinesWarning
from crosssell.html import plan_overview, write_plan_pages

# ------------------------------------------------------------------------------ fixtures


def _lines() -> pd.DataFrame:
    """Purchase lines of three clients over 2024: repeat buys, times of day, amounts."""
    rows = [
        ("C1", "A", "2024-01-05 10:00", 12.5),
        ("C1", "B", "2024-01-05 10:00", 3.0),
        ("C1", "A", "2024-03-01 09:30", 12.5),
        ("C1", "A", "2024-06-11 14:10", 12.5),
        ("C2", "A", "2024-02-02 11:00", 12.5),
        ("C2", "C", "2024-04-20 16:45", 40.0),
        ("C2", "C", "2024-08-20 16:45", 40.0),
        ("C3", "B", "2024-05-05 08:15", 3.0),
        ("C3", "C", "2024-07-07 12:00", 40.0),
        ("C3", "B", "2024-09-09 13:20", 3.0),
        ("C3", "A", "2024-10-10 10:10", 12.5),
        ("C1", "C", "2024-11-11 11:11", 40.0),
    ]
    return pd.DataFrame(rows, columns=["client_id", "product_id", "timestamp", "amount"])


@pytest.fixture
def lines_csv(tmp_path: Path) -> Path:
    path = tmp_path / "lines.csv"
    _lines().to_csv(path, index=False)
    return path


@pytest.fixture
def lines_as_contracts_csv(tmp_path: Path) -> Path:
    """The same purchase lines, named as contracts (what a newcomer without --transactions does)."""
    path = tmp_path / "contracts.csv"
    _lines().rename(columns={"timestamp": "start_date", "amount": "value"}).to_csv(
        path, index=False
    )
    return path


@pytest.fixture
def duplicated_csv(tmp_path: Path) -> Path:
    """Contracts with end dates, one row written twice."""
    path = tmp_path / "dups.csv"
    path.write_text(
        "client_id,product_id,start_date,end_date\n"
        "C1,P1,2024-01-01,2026-01-01\n"
        "C1,P1,2024-01-01,2026-01-01\n"
        "C1,P2,2024-02-01,2026-01-01\n"
        "C2,P1,2024-03-01,2026-01-01\n",
        encoding="utf-8",
    )
    return path


# ------------------------------------------------------------------------ --transactions


def test_read_transactions_matches_from_transactions(lines_csv: Path) -> None:
    """Check that Book.read_transactions reads a file as from_transactions reads the frame."""
    from_file = cs.Book.read_transactions(lines_csv, lookback="90D")
    from_frame = cs.Book.from_transactions(_lines(), lookback="90D")
    assert from_file.client_ids.external.tolist() == ["C1", "C2", "C3"]
    pd.testing.assert_frame_equal(from_file.contracts, from_frame.contracts)
    assert from_file.lookback == pd.Timedelta("90D")


def test_validate_and_fit_read_purchase_lines(lines_csv: Path, tmp_path: Path, capsys) -> None:
    """Check that --transactions with --lookback builds the Book Python builds, and fits."""
    assert main(["validate", "--transactions", str(lines_csv), "--lookback", "90D"]) == EXIT_OK
    assert "transactions" in capsys.readouterr().out
    model = tmp_path / "m.crosssell"
    code = main(
        [
            *("fit", "--transactions", str(lines_csv), "--lookback", "90D"),
            *("--as-of", "2024-12-01", "--model", str(model), "--scorer", "popularity", "-q"),
        ]
    )
    assert code == EXIT_OK
    rec = cs.load(model)
    assert rec.book_.lookback == pd.Timedelta("90D")
    # at 2024-12-01 with 90 days of look-back, the purchases since 2024-09-02 are held:
    # C3's B (09-09) and A (10-10), C1's C (11-11)
    held = rec.book_.matrix("2024-12-01").client_product
    assert held.nnz == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--contracts", "{lines}"], "not both"),
        (["--lookback", "soon"], "not a duration"),
    ],
)
def test_transactions_usage_errors(lines_csv: Path, extra, message, capsys) -> None:
    """Check that both inputs at once, or a look-back that is no duration, are usage errors."""
    argv = ["validate", "--transactions", str(lines_csv)]
    argv += [a.format(lines=lines_csv) for a in extra]
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_no_input_table_is_a_usage_error_naming_both_options(capsys) -> None:
    """Check that a command that reads data asks for --contracts or --transactions."""
    assert main(["validate"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--contracts" in err
    assert "--transactions" in err


# ----------------------------------------------------------------- purchase lines as contracts


def test_purchase_lines_passed_as_contracts_warn_in_python() -> None:
    """Check that open-ended contracts with times of day are flagged as purchase lines."""
    contracts = _lines().rename(columns={"timestamp": "start_date", "amount": "value"})
    with pytest.warns(PurchaseLinesWarning, match="from_transactions"):
        cs.Book.from_frames(contracts)


def test_repeated_open_contracts_without_times_warn_too() -> None:
    """Check that the same product started again and again, with no end date, is flagged."""
    dates = pd.date_range("2024-01-01", periods=12, freq="MS").strftime("%Y-%m-%d")
    contracts = pd.DataFrame({"client_id": "C1", "product_id": "A", "start_date": dates})
    with pytest.warns(PurchaseLinesWarning, match="start again"):
        cs.Book.from_frames(contracts)


def test_real_contracts_do_not_warn() -> None:
    """Check that contracts with end dates (the demo book) raise no purchase-lines warning."""
    frames = cs.datasets.demo_frames()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PurchaseLinesWarning)
        cs.Book.from_frames(**frames)


def test_purchase_lines_as_contracts_warn_on_the_command_line(
    lines_as_contracts_csv: Path, capsys
) -> None:
    """Check that the CLI says the same, and points to --transactions."""
    assert main(["validate", "--contracts", str(lines_as_contracts_csv)]) == EXIT_OK
    out = capsys.readouterr()
    assert "look like purchase lines" in out.out + out.err
    assert "--transactions FILE" in out.out + out.err


# --------------------------------------------------------------------------- duplicates


def test_duplicates_collapse_alike_in_python_and_the_cli(
    duplicated_csv: Path, tmp_path: Path, capsys
) -> None:
    """Check that exact duplicate rows are collapsed with a warning, never an exit 1."""
    with pytest.warns(DataWarning, match="exact duplicates"):
        book = cs.Book.read(duplicated_csv)
    assert len(book.contract_arrays) == 3
    assert main(["validate", "--contracts", str(duplicated_csv)]) == EXIT_OK
    out = capsys.readouterr()
    assert "exact duplicates" in out.out + out.err
    model = tmp_path / "m.crosssell"
    argv = ["fit", "--contracts", str(duplicated_csv), "--model", str(model), "-q"]
    assert main([*argv, "--scorer", "popularity"]) == EXIT_OK
    assert len(cs.load(model).book_.contract_arrays) == 3


def test_invalid_rows_still_fail_beside_duplicates(tmp_path: Path, capsys) -> None:
    """Check that a row that breaks a rule still stops the command under --errors raise."""
    path = tmp_path / "c.csv"
    path.write_text(
        "client_id,product_id,start_date,end_date\n"
        "C1,P1,2024-01-01,2026-01-01\nC1,P1,2024-01-01,2026-01-01\n"
        "C2,P1,2024-03-01,2023-01-01\n",
        encoding="utf-8",
    )
    assert main(["validate", "--contracts", str(path)]) == EXIT_BAD_INPUT
    out = capsys.readouterr().out
    assert "row 2" in out
    assert "row 1:" not in out  # the duplicate is not listed as rejected
    assert main(["validate", "--contracts", str(path), "--errors", "collect"]) == EXIT_OK


# ------------------------------------------------------------------------ shared options

DATA_COMMANDS = [
    "validate", "fit", "recommend", "backtest", "tune", "why-not", "plan", "serve", "lift"
]  # fmt: skip


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_every_command_that_reads_data_takes_the_shared_options(command: str) -> None:
    """Check that --errors, --as-of, --transactions and --lookback exist wherever data is read."""
    commands = next(a for a in _parser()._actions if a.dest == "command")
    sub = commands.choices[command]  # type: ignore[index]
    options = {o for action in sub._actions for o in action.option_strings}
    assert {"--errors", "--as-of", "--contracts", "--transactions", "--lookback"} <= options


def test_the_cli_guide_lists_the_shared_options() -> None:
    """Check that the guide's list of shared options is what the commands take."""
    guide = (Path(__file__).parents[1] / "docs" / "guide" / "cli.md").read_text(encoding="utf-8")
    for option in ("--transactions FILE", "--lookback SPAN", "--errors", "--as-of DATE"):
        assert option in guide


def test_validate_as_of_describes_what_is_held(lines_csv: Path, capsys) -> None:
    """Check that validate --as-of adds the matrix of holdings at that date."""
    argv = ["validate", "--transactions", str(lines_csv), "--as-of", "2024-12-01"]
    assert main(argv) == EXIT_OK
    assert "matrix at 2024-12-01" in capsys.readouterr().out


def test_backtest_as_of_refuses_a_horizon_that_ends_later(lines_csv: Path, capsys) -> None:
    """Check that with --as-of nothing later is used: a fold that needs later data is refused."""
    argv = ["backtest", "--transactions", str(lines_csv), "--cutoffs", "2024-06-30"]
    argv += ["--horizon", "120D", "--as-of", "2024-09-30", "--n-boot", "0", "-q"]
    assert main(argv) == EXIT_USAGE
    assert "use cutoffs on or before 2024-06-02" in capsys.readouterr().err


def test_backtest_as_of_drops_later_data(lines_csv: Path, capsys) -> None:
    """Check that a backtest with --as-of answers as one on the data cut at that date."""
    base = ["backtest", "--cutoffs", "2024-06-30", "--horizon", "90D", "--n-boot", "0", "-q"]
    base += ["--scorer", "popularity", "-k", "2"]
    assert main([*base, "--transactions", str(lines_csv), "--as-of", "2024-10-31"]) == EXIT_OK
    with_as_of = capsys.readouterr().out
    cut = _lines()[_lines()["timestamp"] <= "2024-10-31"]
    path = lines_csv.with_name("cut.csv")
    cut.to_csv(path, index=False)
    assert main([*base, "--transactions", str(path)]) == EXIT_OK
    assert capsys.readouterr().out == with_as_of


# -------------------------------------------------------------------------- plan summary


@pytest.fixture(scope="module")
def demo_plan() -> cs.account_plan.AccountPlan:
    rec = cs.Recommender(policy=cs.rules.route_sales()).fit(
        cs.datasets.demo(), cs.datasets.demo_as_of()
    )
    return cs.plan(rec, capacity=5)


def test_plan_overview_counts_what_is_listed(demo_plan) -> None:
    """Check that the per-action columns add up to the listed actions of each manager."""
    overview = plan_overview(demo_plan)
    actions = ["resolve_complaint", "renew", "reorder", "propose", "check_in"]
    assert (overview[actions].sum(axis=1) == overview["listed"]).all()
    assert (overview["listed"] <= 5).all()
    listed = demo_plan.actions[demo_plan.actions["within_capacity"]]
    assert overview["listed"].sum() == listed["owner"].notna().sum()


def test_cli_and_index_page_show_the_same_table(demo_plan, tmp_path: Path) -> None:
    """Check that index.html shows plan_overview's numbers, row by row."""
    pages = write_plan_pages(demo_plan, tmp_path)
    html = pages[-1].read_text(encoding="utf-8")
    rows = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    ]
    rows = [r for r in rows if r]
    overview = plan_overview(demo_plan)
    assert len(rows) == len(overview)
    shown = [[int(v) for v in r[2:]] for r in rows]
    assert shown == overview.iloc[:, 2:].astype(int).to_numpy().tolist()


def test_plan_without_owners_prints_a_sentence(tmp_path: Path, capsys) -> None:
    """Check that a book without an owner column gets a sentence, not 'Empty DataFrame'."""
    frames = cs.datasets.demo_frames()
    frames["clients"] = frames["clients"].drop(columns=["owner"])
    folder = tmp_path / "in"
    folder.mkdir()
    argv = ["plan", "--out", str(tmp_path / "plan"), "-q", "--scorer", "popularity"]
    for name in ("contracts", "clients"):
        frame = frames[name]
        frame.to_parquet(folder / f"{name}.parquet")
        argv += [f"--{name}", str(folder / f"{name}.parquet")]
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "Empty DataFrame" not in out
    assert "No client has an owner" in out


# ---------------------------------------------------------------------------- lazy import


def test_the_command_line_module_imports_no_data_library() -> None:
    """Check that importing the CLI (as --help does) loads neither numpy nor pandas."""
    code = (
        "import sys, crosssell.cli\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- real data


def _online_retail() -> pd.DataFrame:
    root = os.environ.get("CROSSSELL_DATA_DIR")
    folder = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    path = folder / "online_retail_ii" / "transactions.parquet"
    if not path.exists():
        path = folder / "transactions.parquet"  # CROSSSELL_DATA_DIR naming the folder itself
    if not path.exists():
        pytest.skip(f"Online Retail II data not found at {path}")
    lines = pd.read_parquet(path)
    keep = lines["client_id"].notna() & ~lines["is_cancellation"] & ~lines["is_non_product"]
    first = lines.loc[keep, "timestamp"].min()
    keep &= lines["timestamp"] < first + pd.Timedelta("60D")  # two months keep the test quick
    return lines.loc[keep, ["client_id", "product_id", "timestamp", "amount"]]


@pytest.mark.realdata
def test_online_retail_lines_through_the_command_line(tmp_path: Path, capsys) -> None:
    """Check the real wholesaler's lines: read as purchases, and as contracts by mistake.

    As contracts, the exact duplicate lines are collapsed (exit 0, as in Python) and the file is
    flagged as purchase lines; as transactions, identical lines stay separate purchases.
    """
    lines = _online_retail()
    n_duplicates = int(lines.duplicated().sum())
    assert n_duplicates > 100  # the real file has exact repeats of invoice lines
    lines_path = tmp_path / "lines.csv"
    lines.to_csv(lines_path, index=False)
    contracts_path = tmp_path / "contracts.csv"
    lines.rename(columns={"timestamp": "start_date", "amount": "value"}).to_csv(
        contracts_path, index=False
    )

    assert main(["validate", "--contracts", str(contracts_path)]) == EXIT_OK
    out = capsys.readouterr()
    said = out.out + out.err
    assert f"exact duplicates of an earlier row in {n_duplicates:,} rows" in said
    assert "look like purchase lines" in said

    assert main(["validate", "--transactions", str(lines_path)]) == EXIT_OK
    said = "".join(capsys.readouterr())
    assert "look like purchase lines" not in said
    book = cs.Book.read_transactions(lines_path)
    assert len(book.contract_arrays) == len(lines)
