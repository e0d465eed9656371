"""One offer record everywhere: Python frames, CLI files (CSV, Parquet, JSON lines) and HTTP."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell.cli import EXIT_OK, EXIT_USAGE, main
from crosssell.records import (
    DESCRIPTION_MAX,
    RECORD_COLUMNS,
    RecordSettings,
    offer_records,
    record_head,
    rounded,
    spelled,
)

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def rec() -> cs.Recommender:
    return cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(cs.datasets.demo(), AS_OF)


@pytest.fixture(scope="module")
def saved(rec: cs.Recommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rec.save(tmp_path_factory.mktemp("model") / "demo.crosssell")


def _offers(**overrides: object) -> pd.DataFrame:
    row = {
        "client_id": "C1",
        "product_id": "P2",
        "offer_type": "cross_sell",
        "score": 0.123456789,
        "propensity": 0.3333333333,
        "value": 1234.5678,
        "expected_value": 411.522599,
        "priority": 411.522599,
        "rank": 1,
        "reason": "Clients who hold P1 also hold P2.",
    }
    row.update(overrides)
    return pd.DataFrame([row])


# ------------------------------------------------------------------------------ the record


def test_record_fields_in_front_of_the_offer() -> None:
    """Check the id, name, labels, validity and reference of one hand-made offer."""
    settings_ = RecordSettings(
        validity_days=7, language="fr", action_reference="crm://{client_id}/{product_id}/{id}"
    )
    r = offer_records(
        _offers(), as_of=AS_OF, model_id="abc", names={"P2": "Payroll"}, settings=settings_
    )
    assert r.columns.tolist()[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    row = r.iloc[0]
    assert row["id"] == "abc:C1:P2:2025-06-30"
    assert row["name"] == "Payroll (cross-sell)"
    assert row["description"] == "Clients who hold P1 also hold P2."
    assert (row["valid_from"], row["valid_until"]) == ("2025-06-30", "2025-07-07")
    assert (row["accept_label"], row["reject_label"], row["language"]) == (
        "Intéressé",
        "Pas maintenant",
        "fr",
    )
    assert row["action_reference"] == "crm://C1/P2/abc:C1:P2:2025-06-30"
    assert row["value"] == 1234.5678  # frames keep full precision


def test_long_reason_is_cut_for_the_description_only() -> None:
    """Check that the description respects the CRM limit while the reason stays whole."""
    r = offer_records(_offers(reason="because " * 60), as_of=AS_OF)
    assert len(r.loc[0, "description"]) == DESCRIPTION_MAX
    assert r.loc[0, "description"].endswith("…")
    assert r.loc[0, "reason"] == "because " * 60


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validity_days": 0}, "validity_days"),
        ({"language": "pt"}, "no built-in labels in 'pt'"),
        ({"accept_label": " "}, "accept_label"),
        ({"action_reference": "crm://{customer}"}, "names customer"),
        ({"action_reference": "crm://{client_id"}, "not a valid template"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    """Check that each bad setting is refused with a message naming it."""
    with pytest.raises(ValueError, match=match):
        RecordSettings(**kwargs)  # type: ignore[arg-type]


def test_files_are_rounded_frames_are_not() -> None:
    """Check money to cents and probabilities to four digits in files only."""
    r = rounded(offer_records(_offers(), as_of=AS_OF))
    assert r.loc[0, ["value", "expected_value"]].tolist() == [1234.57, 411.52]
    assert r.loc[0, ["score", "propensity"]].tolist() == [0.1235, 0.3333]


@settings(max_examples=50, deadline=None)
@given(
    clients=st.lists(st.integers(0, 10**12), min_size=1, max_size=20, unique=True),
    products=st.lists(
        st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
        unique=True,
    ),
)
def test_record_ids_are_unique_and_spell_ids_as_written(
    clients: list[int], products: list[str]
) -> None:
    """Check that ids are distinct per (client, product) and hold the ids as the user wrote them."""
    pairs = [(np.int64(c), p) for c in clients for p in products]
    offers = pd.DataFrame(
        {
            "client_id": [c for c, _ in pairs],
            "product_id": [p for _, p in pairs],
            "offer_type": "upsell",
            "reason": "x",
        }
    )
    ids = offer_records(offers, as_of=AS_OF, model_id="m").loc[:, "id"]
    assert ids.is_unique
    assert ids.tolist() == [f"m:{c}:{p}:{AS_OF}" for c, p in zip(clients * 0 or
        [c for c in clients for _ in products], [p for _ in clients for p in products],
        strict=True)]  # fmt: skip
    assert not ids.str.contains("int64").any()


_IDS = st.one_of(
    st.integers(-(10**12), 10**12),
    st.sampled_from([1, 1.0, True, 2.5]),
    st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=6),
)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            _IDS,
            _IDS,
            st.sampled_from(["upsell", "cross_sell", "other"]),
            st.one_of(st.none(), st.just(""), st.text(max_size=300)),
        ),
        max_size=25,
    ),
    id_type=st.sampled_from(["int64", "str", "object"]),
    named=st.booleans(),
    template=st.sampled_from([None, "crm://{client_id}/{product_id}?{offer_type}&{id}"]),
)
@example(
    rows=[(1, 1.0, "upsell", None), (1.0, True, "upsell", ""), (True, 1, "other", "r")],
    id_type="object",
    named=True,
    template=None,
)
def test_records_equal_record_head_row_by_row(
    rows: list[tuple[object, object, str, object]],
    id_type: str,
    named: bool,
    template: str | None,
) -> None:
    """Check that the batch writes, for every row, what record_head writes for that one offer.

    Ids repeat, mix types in object columns (``1``, ``1.0``, ``True`` and ``"1"`` are four
    spellings), and some products have names.
    """

    def cast(value: object) -> object:
        if id_type == "int64":
            return hash(value) % 1000
        return str(value) if id_type == "str" else value

    offers = pd.DataFrame(
        {
            "client_id": pd.Series([cast(r[0]) for r in rows], dtype=object),
            "product_id": pd.Series([cast(r[1]) for r in rows], dtype=object),
            "offer_type": pd.Series([r[2] for r in rows], dtype="category"),
            "reason": pd.Series([r[3] for r in rows], dtype=object),
        }
    )
    if id_type == "int64":
        offers = offers.astype({"client_id": "int64", "product_id": "int64"})
    elif id_type == "str":
        offers = offers.astype({"client_id": "str", "product_id": "str"})
    products = offers["product_id"].tolist()
    names = {p: f"Name {i} " + "x" * (90 * (i % 2)) for i, p in enumerate(products[::2])}
    settings_ = RecordSettings(action_reference=template)
    got = offer_records(
        offers, as_of=AS_OF, model_id="m1", names=names if named else None, settings=settings_
    )
    day = pd.Timestamp(AS_OF).date()
    expected = [
        record_head(
            client, product, str(kind), reason, day=day, model_id="m1",
            names=names if named else {}, settings=settings_,
        )
        for client, product, kind, reason in zip(
            offers["client_id"].tolist(), products, offers["offer_type"].tolist(),
            offers["reason"].tolist(), strict=True,
        )
    ]  # fmt: skip
    columns = ["id", "name", "description", "action_reference"]
    assert [tuple(r) for r in got[columns].itertuples(index=False)] == expected
    assert len(got) == len(offers)


def test_spelled_never_shows_numpy() -> None:
    """Check that numpy scalars are spelled as plain numbers."""
    assert spelled(np.int64(12346)) == "12346"
    assert spelled(np.float64(2.5)) == "2.5"


# ---------------------------------------------------------------------------- the model id


def test_model_id_is_the_same_for_the_same_model(rec: cs.Recommender, saved: Path) -> None:
    """Check that a saved and a loaded model share their id, and that it names the content."""
    loaded = cs.load(saved)
    assert loaded.model_id_ == rec.model_id_ != "unsaved"
    other = cs.Recommender(k=3).fit(cs.datasets.demo(), AS_OF)
    assert other.model_id_ == "unsaved"
    other.save(saved.with_name("other.crosssell"))
    assert other.model_id_ != rec.model_id_


def test_batch_file_and_http_give_an_offer_the_same_id(saved: Path, tmp_path: Path) -> None:
    """Check that a CRM can upsert batch and online records under one external id."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from crosssell.serve import create_app

    out = tmp_path / "offers.jsonl"
    argv = ["recommend", "--model", str(saved), "--client", "C0001", "--out", str(out), "-q"]
    assert main(argv) == EXIT_OK
    batch = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    with TestClient(create_app(saved)) as client:
        online = client.post("/recommend", json={"client_id": "C0001"}).json()["actions"]
    assert [r["id"] for r in batch] == [a["id"] for a in online]
    assert batch[0]["propensity"] == online[0]["propensity"]  # both rounded alike
    assert batch[0]["evidence"] == online[0]["evidence"]


# ------------------------------------------------------------------------------ CLI files


def test_cli_files_carry_the_record(saved: Path, tmp_path: Path) -> None:
    """Check CSV (evidence as JSON objects), Parquet (structs) and JSON lines alike."""
    frames = {}
    for suffix in ("csv", "parquet", "jsonl"):
        out = tmp_path / f"offers.{suffix}"
        argv = ["recommend", "--model", str(saved), "--out", str(out), "-q", "--language", "de"]
        assert main(argv) == EXIT_OK
        if suffix == "csv":
            frames[suffix] = pd.read_csv(out)
        elif suffix == "parquet":
            frames[suffix] = pd.read_parquet(out)
        else:
            lines = out.read_text(encoding="utf-8").splitlines()
            frames[suffix] = pd.DataFrame([json.loads(line) for line in lines])
    ids = [frames[s]["id"].tolist() for s in frames]
    assert ids[0] == ids[1] == ids[2]
    assert set(frames["csv"]["accept_label"]) == {"Interessiert"}
    evidence_csv = json.loads(frames["csv"]["evidence"].iloc[0])
    evidence_parquet = [dict(e) for e in frames["parquet"]["evidence"].iloc[0]]
    assert evidence_csv == evidence_parquet == frames["jsonl"]["evidence"].iloc[0]
    assert set(evidence_csv[0]) == {"product_id", "weight"}
    values = frames["parquet"]["value"]
    assert (values == values.round(2)).all()


def test_cli_refuses_a_bad_language(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that an unknown language is a usage error naming the known ones."""
    assert main(["recommend", "--model", str(saved), "--language", "xx", "-q"]) == EXIT_USAGE
    assert "no built-in labels in 'xx'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ HTTP


@pytest.fixture(scope="module")
def client(rec: cs.Recommender):  # type: ignore[no-untyped-def]
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from crosssell.serve import create_app

    with TestClient(create_app(rec, settings=RecordSettings(language="es"))) as test_client:
        yield test_client


def test_http_answer_is_an_envelope(client, rec: cs.Recommender) -> None:  # type: ignore[no-untyped-def]
    """Check the envelope: as_of, model id, actions with the settings' labels, no no_offer."""
    body = client.post("/recommend", json={"client_id": "C0001"}).json()
    assert set(body) == {"client_id", "as_of", "model_id", "actions", "no_offer", "decision_id"}
    assert body["decision_id"] is None  # no decision log behind this service
    assert body["model_id"] == rec.model_id_
    assert {a["accept_label"] for a in body["actions"]} == {"Me interesa"}
    assert body["no_offer"] is None


def test_http_empty_list_says_why(client, rec: cs.Recommender) -> None:  # type: ignore[no-untyped-def]
    """Check that a client with no offer gets the no-offer report's sentence and rule."""
    report = rec.no_offer_report().set_index("client_id")
    for client_id in report.index[:5]:
        body = client.post("/recommend", json={"client_id": client_id}).json()
        assert body["actions"] == []
        assert body["no_offer"]["reason"] == report.loc[client_id, "reason"]
        rules = tuple(report.loc[client_id, "rules"])
        assert tuple(body["no_offer"]["rules"]) == rules
        assert body["no_offer"]["rule"] == (rules[0] if rules else None)


def test_why_not_names_status_rule_and_kind(client) -> None:  # type: ignore[no-untyped-def]
    """Check that /why-not says which rule blocked a pair, of which kind."""
    body = client.get("/why-not", params={"client_id": "C0003", "product_id": "BI-2"}).json()
    assert (body["status"], body["rule"], body["kind"]) == ("blocked", "do_not_contact", "contact")
    assert "do-not-contact" in body["answer"]


def test_openapi_groups_routes_by_tag(client) -> None:  # type: ignore[no-untyped-def]
    """Check that every route of the schema carries a tag."""
    paths = client.get("/openapi.json").json()["paths"]
    tags = {method["tags"][0] for route in paths.values() for method in route.values()}
    assert tags == {"offers", "explanations", "service"}


def test_docs_page_needs_no_internet(client) -> None:  # type: ignore[no-untyped-def]
    """Check that /docs refers only to files the service itself serves."""
    html = client.get("/docs").text
    assert "http://" not in html
    assert "https://" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in html
        assert client.get(f"/docs-assets/{asset}").status_code == 200


# --------------------------------------------------------------------- ids in the sentences


def test_integer_ids_read_as_written_in_every_sentence() -> None:
    """Check reasons, why-not answers and no-offer reasons of a book with integer ids."""
    contracts = pd.DataFrame(
        {
            "client_id": [12346, 12346, 12347, 12348, 12348, 12349],
            "product_id": [101, 102, 101, 101, 103, 102],
            "start_date": ["2024-01-01"] * 6,
            "end_date": ["2024-08-01"] + ["2026-01-01"] * 5,
        }
    )
    events = pd.DataFrame(
        {"client_id": [12347], "date": ["2024-06-01"], "type": ["complaint_opened"]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = cs.Book.from_frames(contracts, events=events)
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(book, "2024-06-30")
    texts = rec.recommend()["reason"].tolist()
    texts += [rec.why_not(c, p) for c in (12346, 12347, 12348, 12349) for p in (101, 102, 103)]
    texts += rec.no_offer_report()["reason"].tolist()
    texts += [rec.no_offer_reason(c)[0] for c in (12346, 12347)]
    texts += rec.records()["id"].tolist()
    assert texts
    for text in texts:
        assert "int64" not in text
        assert "np." not in text
    assert any("12347" in t for t in texts)
