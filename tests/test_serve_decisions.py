"""The HTTP service with a decision log: decision ids in answers, POST /reactions, holdouts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import crosssell as cs

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
from fastapi.testclient import TestClient

from crosssell.serve import HELD_OUT, create_app


@pytest.fixture(scope="module")
def rec() -> cs.Recommender:
    return cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(cs.datasets.demo(), "2025-06-30")


def test_every_answer_is_recorded_with_its_ids(rec: cs.Recommender, tmp_path: Path) -> None:
    log = cs.DecisionLog(tmp_path / "log.db")
    client = TestClient(create_app(rec, log=log))
    body = client.post("/recommend", json={"client_id": "C0001"}).json()
    ids = [a["decision_id"] for a in body["actions"]]
    assert len(ids) == 2
    assert body["decision_id"] is None
    complaint = [{"date": "2025-06-30", "type": "complaint_opened"}]
    empty = client.post("/recommend", json={"client_id": "C0001", "events": complaint}).json()
    assert empty["actions"] == []
    decisions = log.decisions().set_index("decision_id")
    assert decisions.loc[ids, "action"].tolist() == ["offer", "offer"]
    assert decisions.loc[empty["decision_id"], "action"] == "no_offer"
    assert "complaint" in decisions.loc[empty["decision_id"], "reason"]
    log.close()


def test_reactions_one_or_a_batch_all_kept_or_none(rec: cs.Recommender, tmp_path: Path) -> None:
    log = cs.DecisionLog(tmp_path / "log.db")
    client = TestClient(create_app(rec, log=log))
    actions = client.post("/recommend", json={"client_id": "C0001"}).json()["actions"]
    first, second = (a["decision_id"] for a in actions)
    one = client.post("/reactions", json={"decision_id": first, "outcome": "accepted"})
    assert one.status_code == 200
    assert one.json() == {"recorded": 1, "repeated": 0}
    bad = client.post(
        "/reactions",
        json=[
            {"decision_id": second, "outcome": "declined"},
            {"decision_id": "no-such-id", "outcome": "declined"},
            {"decision_id": second, "outcome": "maybe"},
        ],
    )
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert [d["loc"] for d in detail] == [["body", 1, "decision_id"], ["body", 2, "outcome"]]
    assert "no decision with this id" in detail[0]["msg"]
    assert log.reactions()["decision_id"].tolist() == [first]  # nothing of the batch kept
    again = client.post("/reactions", json=[{"decision_id": first, "outcome": "accepted"}])
    assert again.json() == {"recorded": 0, "repeated": 1}
    early = client.post(
        "/reactions", json={"decision_id": second, "outcome": "ignored", "at": "2001-01-01"}
    )
    assert early.status_code == 422
    assert early.json()["detail"][0]["loc"] == ["body", "at"]
    log.close()


def test_held_out_clients_get_nothing_and_are_told_why(rec: cs.Recommender, tmp_path: Path) -> None:
    holdout = cs.Holdout(share=0.5, salt="http")
    arms = dict(zip(["C0001", "C0002", "C0003", "C0004"],
                    holdout.arms(["C0001", "C0002", "C0003", "C0004"]), strict=True))  # fmt: skip
    held = next(c for c, arm in arms.items() if arm == "holdout")
    log = cs.DecisionLog(tmp_path / "log.db")
    client = TestClient(create_app(rec, log=log, holdout=holdout, campaign="web"))
    answer = client.post("/recommend", json={"client_id": held}).json()
    assert answer["actions"] == []
    assert answer["no_offer"]["rule"] == "holdout"
    assert answer["no_offer"]["reason"] == HELD_OUT
    recorded = log.decisions(client=held)
    assert set(recorded["arm"]) == {"holdout"}
    assert set(recorded["campaign"]) == {"web"}
    log.close()


def test_no_log_no_reactions_route(rec: cs.Recommender) -> None:
    client = TestClient(create_app(rec))
    reaction = {"decision_id": "x", "outcome": "accepted"}
    assert client.post("/reactions", json=reaction).status_code == 404
    actions = client.post("/recommend", json={"client_id": "C0001"}).json()["actions"]
    assert actions[0]["decision_id"] is None


def test_concurrent_answers_are_all_recorded(rec: cs.Recommender, tmp_path: Path) -> None:
    log = cs.DecisionLog(tmp_path / "log.db")
    client = TestClient(create_app(rec, log=log))
    ids = [f"C{i:04d}" for i in range(1, 81)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: client.post("/recommend", json={"client_id": c}), ids))
    assert all(a.status_code == 200 for a in answers)
    assert set(log.decisions()["client_id"]) == set(ids)
    log.close()
