"""Tests of the HTTP service (crosssell.serve): records, endpoints, errors and a real server."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import httpx  # only with the serve extra, hence after importorskip
from fastapi.testclient import TestClient  # runs on httpx2 (the dev extra)

import crosssell as cs
from crosssell.recommender import Offer
from crosssell.serve import (
    ACCEPT_LABEL,
    DESCRIPTION_MAX,
    NAME_MAX,
    REJECT_LABEL,
    create_app,
    next_best_actions,
    product_names,
)

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def rec() -> cs.Recommender:
    return cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(cs.datasets.demo(), AS_OF)


@pytest.fixture(scope="module")
def client(rec) -> TestClient:
    return TestClient(create_app(rec))


def _offer(**changes: object) -> Offer:
    fields: dict[str, object] = {
        "client_id": "C1", "product_id": "P2", "offer_type": "cross_sell", "score": 0.4,
        "propensity": 0.2, "value": 100.0, "expected_value": 20.0, "priority": 20.0, "rank": 1,
        "reason": "Clients who hold P1 also hold P2.", "evidence": (("P1", 0.4),),
        "cold_start": False,
    }  # fmt: skip
    fields.update(changes)
    return Offer(**fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ records


def test_record_fields_follow_the_offer():
    """Check that an offer becomes a record with a stable id, labels and a validity window."""
    (action,) = next_best_actions([_offer()], as_of="2025-06-30", names={"P2": "Payroll"})
    assert action.id == "unsaved:C1:P2:2025-06-30"
    assert action.model_id == "unsaved"
    assert action.name == "Payroll (cross-sell)"
    assert action.description == action.reason == "Clients who hold P1 also hold P2."
    assert (action.accept_label, action.reject_label) == (ACCEPT_LABEL, REJECT_LABEL)
    assert action.valid_from == dt.date(2025, 6, 30)
    assert action.valid_until == dt.date(2025, 7, 30)
    assert action.evidence[0].product_id == "P1"
    assert action.to_dict()["evidence"] == [{"product_id": "P1", "weight": 0.4}]


def test_long_name_and_reason_are_cut_with_an_ellipsis():
    """Check that name and description respect the CRM limits and end with an ellipsis."""
    (action,) = next_best_actions(
        [_offer(offer_type="upsell", reason="because " * 60)],
        as_of="2025-06-30",
        names={"P2": "A very long product name " * 5},
    )
    assert len(action.name) == NAME_MAX
    assert action.name.endswith("…")
    assert len(action.description) == DESCRIPTION_MAX
    assert action.description.endswith("…")
    assert action.reason == "because " * 60


def test_validity_days_sets_valid_until():
    """Check that the validity window is configurable and validated."""
    (action,) = next_best_actions([_offer()], as_of="2025-06-30", validity_days=7)
    assert action.valid_until == dt.date(2025, 7, 7)
    with pytest.raises(ValueError, match="'validity_days' parameter of next_best_actions"):
        next_best_actions([_offer()], as_of="2025-06-30", validity_days=0)


def test_records_from_a_frame_equal_records_from_offers(rec):
    """Check that recommend() frames and recommend_one() offers give the same records."""
    from_frame = next_best_actions(rec.recommend(["C0001"]), as_of=rec.as_of_)
    from_offers = next_best_actions(rec.recommend_one("C0001"), as_of=rec.as_of_)
    assert from_frame == from_offers


def test_records_of_offers_equal_records_of_their_frame_for_many_clients(rec):
    """Check that the service's frame-free records equal the frame path's, field for field."""
    settings = cs.RecordSettings(
        validity_days=14, language="de", action_reference="crm://{client_id}/{product_id}"
    )
    names = product_names(rec)
    for client in rec.book_.client_ids.external[:60]:
        offers = rec.recommend_one(client, k=5)
        frame = pd.DataFrame([o.to_dict() for o in offers])
        kw = {"as_of": rec.as_of_, "names": names, "model_id": "m1", "settings": settings}
        assert next_best_actions(offers, **kw) == next_best_actions(frame, **kw)


def test_product_names_fall_back_to_ids():
    """Check that a catalogue without names labels products by id."""
    contracts = pd.DataFrame(
        {"client_id": ["C1"], "product_id": ["P1"], "start_date": ["2024-01-01"]}
    )
    tiny = cs.Recommender().fit(cs.Book.from_frames(contracts=contracts), "2024-06-30")
    assert product_names(tiny) == {"P1": "P1"}


# ---------------------------------------------------------------------------- endpoints


def test_recommend_returns_crm_records(client, rec):
    """Check that POST /recommend answers the client's offers as records, best first."""
    response = client.post("/recommend", json={"client_id": "C0001"})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["client_id"], answer["as_of"]) == ("C0001", "2025-06-30")
    assert answer["model_id"] == rec.model_id_
    assert answer["no_offer"] is None
    body = answer["actions"]
    expected = [o.product_id for o in rec.recommend_one("C0001")]
    assert [r["product_id"] for r in body] == expected
    assert [r["rank"] for r in body] == list(range(1, len(body) + 1))
    first = body[0]
    assert first["id"] == f"{rec.model_id_}:C0001:{first['product_id']}:2025-06-30"
    assert (first["valid_from"], first["valid_until"]) == ("2025-06-30", "2025-07-30")
    assert first["accept_label"] == "Interested"
    assert first["reject_label"] == "Not now"
    assert set(first) >= {"score", "propensity", "value", "expected_value", "offer_type"}


def test_recommend_k_limits_the_list(client):
    """Check that k in the body caps the number of records."""
    body = client.post("/recommend", json={"client_id": "C0001", "k": 1}).json()
    assert len(body["actions"]) == 1


def test_fresh_complaint_suppresses_every_offer(client):
    """Check that an event sent with the request (a complaint opened today) is honoured."""
    events = [{"date": AS_OF, "type": "complaint_opened"}]
    response = client.post("/recommend", json={"client_id": "C0001", "events": events})
    assert response.status_code == 200
    answer = response.json()
    assert answer["actions"] == []
    assert answer["no_offer"]["rule"] == "open_complaint"
    assert "complaint" in answer["no_offer"]["reason"]


def test_new_client_is_scored_from_its_contracts(client):
    """Check that a client unknown at fit is scored when its contracts come with the request."""
    contracts = [{"product_id": "ERP-2", "start_date": "2024-01-01"}]
    response = client.post("/recommend", json={"client_id": "NEW1", "contracts": contracts})
    assert response.status_code == 200
    assert {r["client_id"] for r in response.json()["actions"]} == {"NEW1"}


def test_as_of_in_the_body_moves_the_window(client):
    """Check that a later as_of is used for the ids and the validity window."""
    body = client.post("/recommend", json={"client_id": "C0001", "as_of": "2025-07-15"}).json()
    assert body["as_of"] == "2025-07-15"
    assert body["actions"][0]["id"].endswith(":2025-07-15")
    assert body["actions"][0]["valid_until"] == "2025-08-14"


def test_unknown_client_is_404_naming_the_id(client):
    """Check that an unknown client without contracts answers 404 and names the id."""
    response = client.post("/recommend", json={"client_id": "nobody"})
    assert response.status_code == 404
    assert "'nobody'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"client_id": "C0001", "k": 0}, ["body", "k"]),
        ({"client_id": "C0001", "colour": "red"}, ["body", "colour"]),
        ({"k": 2}, ["body", "client_id"]),
        ({"client_id": "C0001", "as_of": "someday"}, ["body", "as_of"]),
        (
            {"client_id": "N", "contracts": [{"product_id": "ERP-2", "start_date": "2024-13-01"}]},
            ["body", "contracts", 0, "start_date"],
        ),
        (
            {"client_id": "N", "contracts": [{"product_id": "NOPE", "start_date": "2024-01-01"}]},
            ["body", "contracts", 0, "product_id"],
        ),
        (
            {"client_id": "N", "contracts": [{"client_id": "X", "product_id": "ERP-2",
                                              "start_date": "2024-01-01"}]},
            ["body", "contracts", 0, "client_id"],
        ),
    ],
)  # fmt: skip
def test_invalid_bodies_are_422_naming_the_field(client, body, loc):
    """Check that invalid requests answer 422 with the field at fault in loc."""
    response = client.post("/recommend", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_why_not_answers_like_the_recommender(client, rec):
    """Check that GET /why-not gives the recommender's own sentence."""
    params = {"client_id": "C0001", "product_id": "ERP-2"}
    body = client.get("/why-not", params=params).json()
    assert body == {
        **params,
        "answer": rec.why_not("C0001", "ERP-2"),
        "status": "held",
        "rule": None,
        "kind": None,
    }
    assert "already holds" in body["answer"]


def test_why_not_unknown_ids_are_404(client):
    """Check that an unknown client or product answers 404 naming it."""
    response = client.get("/why-not", params={"client_id": "C0001", "product_id": "NOPE"})
    assert response.status_code == 404
    assert "'NOPE'" in response.json()["detail"]
    response = client.get("/why-not", params={"client_id": "nobody", "product_id": "ERP-2"})
    assert response.status_code == 404
    assert client.get("/why-not", params={"client_id": "C0001"}).status_code == 422


def test_health_reports_the_model(client):
    """Check that GET /health gives status, as_of, version and sizes."""
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model_as_of"] == AS_OF
    assert body["version"] == cs.__version__
    assert (body["clients"], body["products"], body["k"]) == (500, 24, 2)
    assert "do_not_contact" in body["policy"]


def test_openapi_schema_has_examples_and_descriptions(client):
    """Check that the OpenAPI schema documents the record and the request with examples."""
    schema = client.get("/openapi.json").json()
    assert {"/recommend", "/why-not", "/health"} <= set(schema["paths"])
    parts = schema["components"]["schemas"]
    record = parts["NextBestAction"]
    assert record["examples"][0]["accept_label"] == "Interested"
    assert "description" in record["properties"]["valid_until"]
    assert parts["RecommendRequest"]["examples"][0]["client_id"] == "C0001"


def test_requests_leave_the_model_unchanged(rec):
    """Check that serving reads the model only: no attribute is replaced by any request."""
    app = create_app(rec)
    before = {name: id(value) for name, value in vars(rec).items()}
    local = TestClient(app)
    local.post("/recommend", json={"client_id": "C0001"})
    local.post("/recommend", json={"client_id": "C0001", "events": [
        {"date": AS_OF, "type": "complaint_opened"}]})  # fmt: skip
    local.get("/why-not", params={"client_id": "C0002", "product_id": "CRM-1"})
    assert {name: id(value) for name, value in vars(rec).items()} == before
    assert app.state.recommender is rec


def test_create_app_loads_a_saved_model(rec, tmp_path):
    """Check that create_app takes the path of a saved model."""
    from crosssell.persist import save

    path = save(rec, tmp_path / "model.crosssell")
    body = TestClient(create_app(path, validity_days=7)).get("/health").json()
    assert (body["model_as_of"], body["validity_days"]) == (AS_OF, 7)


def test_create_app_rejects_bad_arguments(rec):
    """Check that an unfitted model, a wrong type or a bad window fail with clear messages."""
    with pytest.raises(cs.NotFittedError):
        create_app(cs.Recommender())
    with pytest.raises(TypeError, match="fitted Recommender or the path"):
        create_app(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'validity_days' parameter of create_app"):
        create_app(rec, validity_days=-1)


def test_import_crosssell_does_not_import_fastapi():
    """Check that neither crosssell nor crosssell.serve pulls in the web stack on import."""
    code = "import sys, crosssell, crosssell.serve; print('fastapi' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------------------ abuse

KEY = "a-key-of-some-length-0123456789"


def _raw(client: TestClient, text: str) -> httpx.Response:
    return client.post("/recommend", content=text, headers={"content-type": "application/json"})


@pytest.mark.parametrize("day", ["2300-01-01", "1500-06-30", "9999-12-31"])
def test_as_of_outside_pandas_dates_is_422_not_500(client, day):
    """Check that an as_of pandas cannot hold answers 422 at as_of, with a JSON body."""
    response = client.post("/recommend", json={"client_id": "C0001", "as_of": day})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "as_of"]
    assert error["msg"].startswith(f"as_of {day} is out of range: dates run from 1677-09-22")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("table", ["contracts", "events"])
def test_non_finite_numbers_in_records_are_422(client, number, table):
    """Check that NaN or infinity in a record (Python's JSON reads them) answer 422 at the field."""
    record = (
        '{"product_id": "ERP-2", "start_date": "2025-01-01", "value": %s}'
        if table == "contracts"
        else '{"date": "2025-06-30", "type": "need", "score": %s}'
    )
    body = f'{{"client_id": "C0001", "{table}": [{record % 1}, {record % number}]}}'
    response = _raw(client, body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    column = "value" if table == "contracts" else "score"
    assert error["loc"] == ["body", table, 1, column]
    assert "not a number JSON allows" in error["msg"]


def test_error_rows_are_the_requests_own_rows(client):
    """Check that a bad fresh record of a known client is located by its own index."""
    events = [
        {"date": "2025-06-01", "type": "need"},
        {"date": "not a date", "type": "complaint_opened"},
    ]
    response = client.post("/recommend", json={"client_id": "C0001", "events": events})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "events", 1, "date"]
    assert "row 1 client_id=C0001 date=not a date" in error["msg"]
    contracts = [{"product_id": "NOPE", "start_date": "2025-01-01"}]
    error = client.post("/recommend", json={"client_id": "C0001", "contracts": contracts})
    assert error.json()["detail"][0]["loc"] == ["body", "contracts", 0, "product_id"]


def test_huge_inputs_are_not_echoed(client):
    """Check that errors quote a huge id or field value in a few dozen characters at most."""
    huge = "x" * 100_000
    for response in (
        client.post("/recommend", json={"client_id": huge}),
        client.post("/recommend", json={"client_id": "C0001", "k": huge}),
        client.post("/recommend", json={"client_id": "C0001", huge: 1}),
        client.get("/why-not", params={"client_id": "C0001", "product_id": huge[:20_000]}),
    ):
        assert response.status_code in (404, 422)
        assert len(response.content) < 1_000
        assert "x" * 100 not in response.text


def test_body_over_the_limit_is_413(rec):
    """Check that a body over max_body_bytes answers 413, whether its length is given or not."""
    local = TestClient(create_app(rec, max_body_bytes=1_000))
    events = [{"date": AS_OF, "type": "need", "detail": "y" * 50}] * 40
    response = local.post("/recommend", json={"client_id": "C0001", "events": events})
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 1000 bytes; send less."}

    def chunks():  # no content-length: the body is counted as it arrives
        yield b'{"client_id": "C0001", "events": ['
        for _ in range(40):
            yield b'{"date": "2025-06-30", "type": "need", "detail": "' + b"y" * 50 + b'"},'
        yield b"{}]}"

    response = local.post(
        "/recommend", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert local.post("/recommend", json={"client_id": "C0001"}).status_code == 200


def test_create_app_rejects_a_bad_body_limit(rec):
    """Check that max_body_bytes must be a positive int."""
    with pytest.raises(ValueError, match="'max_body_bytes' parameter of create_app"):
        create_app(rec, max_body_bytes=0)


def test_api_key_is_required_when_set(rec):
    """Check that with a key, /recommend and /why-not need it (bearer or header); /health not."""
    local = TestClient(create_app(rec, api_key=KEY))
    body = {"client_id": "C0001"}
    refused = local.post("/recommend", json=body)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["detail"].startswith("Missing or wrong API key")
    assert (
        local.post("/recommend", json=body, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert (
        local.post("/recommend", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code
        == 200
    )
    assert local.post("/recommend", json=body, headers={"X-API-Key": KEY}).status_code == 200
    params = {"client_id": "C0001", "product_id": "ERP-2"}
    assert local.get("/why-not", params=params).status_code == 401
    assert local.get("/why-not", params=params, headers={"X-API-Key": KEY}).status_code == 200
    assert local.get("/health").status_code == 200
    assert local.get("/openapi.json").status_code == 200
    assert TestClient(create_app(rec)).post("/recommend", json=body).status_code == 200


def test_api_key_comes_from_the_environment_or_a_file(rec, tmp_path, monkeypatch):
    """Check that the key is read from CROSSSELL_API_KEY, or the file CROSSSELL_API_KEY_FILE
    names."""
    from crosssell.serve import API_KEY_ENV, API_KEY_FILE_ENV

    monkeypatch.setenv(API_KEY_ENV, KEY)
    assert create_app(rec).state.api_key == KEY
    monkeypatch.delenv(API_KEY_ENV)
    path = tmp_path / "key"
    path.write_text(f"{KEY}\n", encoding="utf-8")
    monkeypatch.setenv(API_KEY_FILE_ENV, str(path))
    local = TestClient(create_app(rec))
    assert local.post("/recommend", json={"client_id": "C0001"}).status_code == 401
    monkeypatch.delenv(API_KEY_FILE_ENV)
    assert create_app(rec, api_key_file=path).state.api_key == KEY
    assert create_app(rec).state.api_key is None


def test_bad_api_keys_are_refused_at_start(rec, tmp_path):
    """Check that a short key, a missing file or two sources fail with a message."""
    with pytest.raises(ValueError, match="at least 16 characters"):
        create_app(rec, api_key="short")
    with pytest.raises(ValueError, match="Cannot read the API key file"):
        create_app(rec, api_key_file=tmp_path / "missing")
    with pytest.raises(ValueError, match="either 'api_key' or 'api_key_file'"):
        create_app(rec, api_key=KEY, api_key_file=tmp_path / "missing")


def test_run_warns_when_listening_beyond_the_machine_without_a_key(rec, monkeypatch):
    """Check that run on 0.0.0.0 without a key warns before serving."""
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw["host"]))
    with pytest.warns(cs.exceptions.CrossSellWarning, match="Serving on 0.0.0.0 without an API"):
        cs.serve.run(rec, host="0.0.0.0")
    assert served == ["0.0.0.0"]


# --------------------------------------------------------------------------- real server


def test_real_uvicorn_server_answers_http(rec):
    """Check that the app behind a real uvicorn server answers a few HTTP requests."""
    import uvicorn

    config = uvicorn.Config(
        create_app(rec), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert thread.is_alive(), "the server stopped while starting"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/health").json()["status"] == "ok"
            answer = http.post("/recommend", json={"client_id": "C0001", "k": 1}).json()
            assert [o["rank"] for o in answer["actions"]] == [1]
            assert http.post("/recommend", json={"client_id": "nobody"}).status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_saved_model_path_type_is_accepted(rec, tmp_path):
    """Check that a str path works as well as a Path."""
    from crosssell.persist import save

    path = save(rec, tmp_path / "m.crosssell")
    app = create_app(str(Path(path)))
    assert app.state.recommender.as_of_ == rec.as_of_
