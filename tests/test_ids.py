"""Tests of the one spelling of ids: the same at fit, in Python scoring, the CLI and HTTP."""

from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crosssell as cs
from crosssell.cli import main
from crosssell.ids import IdMap, spell_id, spell_text_ids

NFD = unicodedata.normalize("NFD", "Zoë")
NFC = unicodedata.normalize("NFC", "Zoë")


@given(st.lists(st.text(max_size=6), min_size=1, max_size=20))
def test_vectorised_spelling_is_the_scalar_one(values: list[str]) -> None:
    """Check that spelling a column of ids gives the spelling of each id."""
    assert spell_text_ids(pd.Series(values, dtype="str")).tolist() == [spell_id(v) for v in values]


@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=20))
def test_vectorised_spelling_keeps_nulls_null(values: list[str | None]) -> None:
    """Check that a column with missing ids spells the others and leaves the missing ones."""
    out = spell_text_ids(pd.Series(values, dtype="str"))
    assert out.isna().tolist() == [v is None for v in values]
    assert out.dropna().tolist() == [spell_id(v) for v in values if v is not None]


@given(st.text(max_size=8))
def test_spelling_is_idempotent(value: str) -> None:
    """Check that spelling an id twice changes nothing more."""
    assert spell_id(spell_id(value)) == spell_id(value)


@pytest.mark.parametrize(
    ("ids", "given_", "expected"),
    [
        (["1", "2"], 2, "2"),
        (["1", "2"], np.int64(2), "2"),
        ([1, 2], "2", 2),
        ([1, 2], " 2 ", 2),
        (["C1"], " C1", "C1"),
        ([NFC], NFD, NFC),
        (["007"], 7, "7"),
        (["1"], True, True),
    ],
)
def test_coerce_spells_like_the_book(ids: list[object], given_: object, expected: object) -> None:
    """Check that coerce finds an id given as int or text, with blanks, in another unicode form."""
    assert IdMap(ids).coerce(given_) == expected


def _book() -> cs.Book:
    contracts = pd.DataFrame(
        {
            "client_id": ["1", "1", "2", "3", "3", NFC, NFC],
            "product_id": ["P1", "P2", "P1", "P1", "P2", "P1", "P2"],
            "start_date": ["2024-01-01"] * 7,
        }
    )
    return cs.Book.from_frames(contracts)


@pytest.fixture(scope="module")
def rec() -> cs.Recommender:
    return cs.Recommender(k=1, scorer=cs.scorers.ItemKNN()).fit(_book(), "2024-06-30")


@pytest.mark.parametrize("client", [2, np.int64(2), " 2", "2 "])
def test_python_scoring_finds_the_client_however_spelled(
    rec: cs.Recommender, client: object
) -> None:
    """Check that recommend_one, recommend and why_not find client '2' given as 2 or ' 2'."""
    offers = rec.recommend_one(client)
    assert [(o.client_id, o.product_id) for o in offers] == [("2", "P2")]
    assert rec.recommend([client])["client_id"].tolist() == ["2"]
    assert rec.why_not(client, " P2") == "'P2' is offered to '2' at rank 1 (priority 1)."


def test_python_scoring_finds_another_unicode_form(rec: cs.Recommender) -> None:
    """Check that a client id typed in NFD is the client stored in NFC."""
    assert rec.recommend_one(NFD) == []
    assert "not in the book" not in rec.why_not(NFD, "P1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rec.recommend([NFD]).empty


def test_cli_finds_the_client_however_spelled(
    rec: cs.Recommender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that the command line finds client '2' given with blanks, and an NFD client id."""
    model = tmp_path / "model.zip"
    rec.save(model)
    assert main(["why-not", "--model", str(model), "--client", " 2", "--product", "P2"]) == 0
    assert "'P2' is offered to '2'" in capsys.readouterr().out
    assert main(["why-not", "--model", str(model), "--client", NFD, "--product", "P2"]) == 0
    assert f"Client '{NFC}' already holds 'P2'" in capsys.readouterr().out


def test_http_finds_the_client_however_spelled(rec: cs.Recommender) -> None:
    """Check that the HTTP service finds an NFD client id and an id with blanks."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from crosssell.serve import create_app

    client = TestClient(create_app(rec))
    for spelled in (NFD, f" {NFC} "):
        got = client.get("/why-not", params={"client_id": spelled, "product_id": "P2"})
        assert got.status_code == 200, got.text
    got = client.post("/recommend", json={"client_id": " 2"})
    assert got.status_code == 200, got.text
