"""Bad inputs on the command line, one row each: the exit code and the one line that explains.

To add a case, add a row to ``CASES``: the arguments (``{dir}`` is a folder holding the files
below, a good ``contracts.csv`` among them), the exit code, and words the error must hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crosssell.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main

GOOD = (
    "client_id,product_id,start_date\n"
    "C1,P1,2024-01-01\nC1,P2,2024-02-01\nC2,P1,2024-03-01\nC3,P2,2024-03-01\n"
)
BAD_ROW = GOOD + "C4,P1,not a date\n"

FILES: dict[str, bytes] = {
    "contracts.csv": GOOD.encode(),
    "bad_row.csv": BAD_ROW.encode(),
    "latin1.csv": "client_id,product_id,start_date\nCé1,P1,2024-01-01\n".encode("latin-1"),
    "binary.csv": bytes(range(256)) * 4,
    "empty.csv": b"",
    "typo_schema.json": b'{"clinet": "client_id"}',
    "odd_schema.json": b'{"nonsense": "x"}',
}

# (id, arguments, exit code, words on stderr)
CASES: list[tuple[str, str, int, str]] = [
    ("latin-1 file", "validate --contracts {dir}/latin1.csv", EXIT_BAD_INPUT,
     "a file is not UTF-8 text"),
    ("binary file", "validate --contracts {dir}/binary.csv", EXIT_BAD_INPUT,
     "Check that each file is a CSV with a header line"),
    ("empty file", "validate --contracts {dir}/empty.csv", EXIT_BAD_INPUT,
     "No columns to parse from file"),
    ("empty file when fitting", "fit --contracts {dir}/empty.csv --model {dir}/m.crosssell",
     EXIT_BAD_INPUT, "cannot read the input"),
    ("folder as a file", "validate --contracts {dir}", EXIT_USAGE,
     "--contracts {dir} is a folder; give the path of a file in it"),
    ("folder as the schema", "validate --contracts {dir}/contracts.csv --schema {dir}",
     EXIT_USAGE, "--schema {dir} is a folder"),
    ("missing file", "validate --contracts {dir}/nope.csv", EXIT_USAGE,
     "--contracts {dir}/nope.csv: no such file"),
    ("schema key misspelt", "validate --contracts {dir}/contracts.csv --schema "
     "{dir}/typo_schema.json", EXIT_USAGE, "'clinet' is not a crosssell column; did you mean "
     "'client'?"),
    ("schema key unknown", "validate --contracts {dir}/contracts.csv --schema "
     "{dir}/odd_schema.json", EXIT_USAGE, "'nonsense' is not a crosssell column. The keys"),
    ("--out under a file", "recommend --contracts {dir}/contracts.csv --out "
     "{dir}/contracts.csv/offers.csv", EXIT_USAGE, "cannot write --out {dir}/contracts.csv/"),
    ("bad row, errors raise", "validate --contracts {dir}/bad_row.csv", EXIT_BAD_INPUT, ""),
    ("bad row, errors collect", "validate --contracts {dir}/bad_row.csv --errors collect",
     EXIT_OK, ""),
    ("unknown client in recommend", "recommend --contracts {dir}/contracts.csv --client C9",
     EXIT_BAD_INPUT, "1 client id(s) are not in the book (showing up to 5): 'C9'"),
    ("unknown client in why-not", "why-not --contracts {dir}/contracts.csv --client C9 "
     "--product P1", EXIT_BAD_INPUT, ""),
]  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(("argv", "code", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input(
    folder: Path, capsys: pytest.CaptureFixture[str], argv: str, code: int, words: str
) -> None:
    """Check that a bad input gets its documented exit code and a message, not a traceback."""
    assert main(argv.format(dir=folder).split()) == code
    err = capsys.readouterr().err
    assert words.format(dir=folder) in err
    assert "Traceback" not in err
    if code == EXIT_USAGE:
        assert len(err.strip().splitlines()) == 1
