"""Tests of the crosssell command line (crosssell.cli and python -m crosssell)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crosssell.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main, matrix_summary
from crosssell.datasets import demo, demo_as_of


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosssell", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    path = tmp_path / "contracts.csv"
    pd.DataFrame(
        {
            "client_id": ["C1", "C1", "C2"],
            "product_id": ["P1", "P2", "P1"],
            "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(
        "client_id,product_id,start_date,end_date\n"
        "C1,P1,2024-01-01,2023-01-01\n"
        "C2,P1,2024-02-01,\n",
        encoding="utf-8",
    )
    return path


# ------------------------------------------------------------------------------ subprocess


def test_demo_command_runs():
    """Check that 'python -m crosssell demo' exits 0 and prints the book and matrix summary."""
    done = _run("demo")
    assert done.returncode == 0, done.stderr
    assert "500 clients" in done.stdout
    assert "Client x product matrix at 2025-06-30" in done.stdout
    assert "density" in done.stdout
    assert "top families by holdings" in done.stdout
    assert "CRM" in done.stdout


def test_validate_bad_csv_exits_1_and_shows_the_row(bad_csv):
    """Check that 'validate' on a CSV with end before start exits 1 and names the problem."""
    done = _run("validate", "--contracts", str(bad_csv))
    assert done.returncode == 1
    assert "end_before_start" in done.stdout
    assert "contracts row 0 column 'end_date'" in done.stdout
    assert "end_date=2023-01-01" in done.stdout


def test_help_lists_commands_and_examples():
    """Check that '--help' exits 0 and shows the commands and examples."""
    done = _run("--help")
    assert done.returncode == 0
    assert "demo" in done.stdout
    assert "validate" in done.stdout
    assert "examples:" in done.stdout


# ------------------------------------------------------------------------------ in process


def test_validate_good_csv_exits_0(good_csv, capsys):
    """Check that valid input exits 0 and prints the report."""
    assert main(["validate", "--contracts", str(good_csv)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Nothing rejected." in out


def test_validate_missing_column_exits_1(tmp_path, capsys):
    """Check that a table without a required column exits 1 with the SchemaError message."""
    path = tmp_path / "c.csv"
    path.write_text("client,product_id,start_date\nC1,P1,2024-01-01\n", encoding="utf-8")
    assert main(["validate", "--contracts", str(path)]) == EXIT_BAD_INPUT
    out = capsys.readouterr().out
    assert "Invalid input: contracts: missing required column 'client_id'" in out


def test_validate_with_schema_file(tmp_path, capsys):
    """Check that --schema maps the caller's column names."""
    path = tmp_path / "c.csv"
    path.write_text("customer,product_id,start_date\nC1,P1,2024-01-01\n", encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"client": "customer"}), encoding="utf-8")
    code = main(["validate", "--contracts", str(path), "--schema", str(schema)])
    assert code == EXIT_OK, capsys.readouterr()


def test_validate_schema_json_output(bad_csv, capsys):
    """Check that --schema-json prints parseable JSON with the rejected rows."""
    assert main(["validate", "--contracts", str(bad_csv), "--schema-json"]) == EXIT_BAD_INPUT
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    assert payload["schema"]["client"] == "client_id"
    assert payload["rejected"][0]["rule"] == "end_before_start"
    assert payload["summary"][0]["table"] == "contracts"


def test_validate_schema_json_on_fatal_error(tmp_path, capsys):
    """Check that --schema-json reports a fatal SchemaError with its table and column."""
    path = tmp_path / "c.csv"
    path.write_text("client_id,product_id\nC1,P1\n", encoding="utf-8")
    assert main(["validate", "--contracts", str(path), "--schema-json"]) == EXIT_BAD_INPUT
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    assert payload["error"]["table"] == "contracts"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["validate"],
        ["validate", "--contracts", "no/such/file.csv"],
        ["demo", "--as-of", "not-a-date"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    """Check that command-line mistakes exit 2 with a message on stderr."""
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err


def test_bad_schema_file_is_a_usage_error(good_csv, tmp_path, capsys):
    """Check that an unreadable --schema file exits 2 and says why."""
    schema = tmp_path / "s.json"
    schema.write_text("{not json", encoding="utf-8")
    assert main(["validate", "--contracts", str(good_csv), "--schema", str(schema)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_demo_as_of_option(capsys):
    """Check that 'demo --as-of' summarises the matrix at that date."""
    assert main(["demo", "--as-of", "2023-12-31"]) == EXIT_OK
    assert "Client x product matrix at 2023-12-31" in capsys.readouterr().out


def test_matrix_summary_counts():
    """Check the matrix summary of the demo: clients, products, holdings, density, families."""
    summary = matrix_summary(demo(), demo_as_of())
    assert summary["clients"] == 500
    assert summary["products"] == 24
    assert summary["density"] == pytest.approx(summary["holdings"] / (500 * 24))
    counts = list(summary["top_families"].values())
    assert counts == sorted(counts, reverse=True)
    assert len(counts) == 5
