"""The HTTP service's health score: one client's retention risk, for a CRM."""

from __future__ import annotations

import pandas as pd
import pytest

import crosssell as cs

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from crosssell.serve import create_app

_DAY = "2025-06-30"


@pytest.fixture(scope="module")
def models() -> tuple[cs.Recommender, cs.RetentionModel]:
    book = cs.datasets.demo()
    return cs.Recommender(k=2).fit(book, _DAY), cs.RetentionModel().fit(book, _DAY)


def test_health_score_is_the_models_answer(models, tmp_path):
    """Check that /health-score answers what predict and survival say, from a saved model."""
    rec, model = models
    from crosssell.persist import save_retention

    path = save_retention(model, tmp_path / "risk.crosssell")
    client = TestClient(create_app(rec, retention=path, api_key="a-long-enough-secret"))
    headers = {"X-API-Key": "a-long-enough-secret"}
    risk = model.predict().set_index("client_id")
    who = risk.index[0]
    body = client.get(f"/health-score/{who}", headers=headers).json()
    assert body["client_id"] == who
    assert body["as_of"] == _DAY
    assert body["health"] == risk.loc[who, "health"]
    assert body["band"] == risk.loc[who, "band"]
    assert body["p_leave"] == pytest.approx(risk.loc[who, "p_leave"])
    assert body["value_at_risk"] == pytest.approx(risk.loc[who, "value_at_risk"])
    assert "; ".join(body["reasons"]) == risk.loc[who, "reasons"]
    curve = model.survival().set_index("client_id").loc[who]
    assert body["survival"] == pytest.approx(curve.to_numpy().round(4).tolist())
    assert body["horizon_days"] == 180
    trend = model.health_trend(since="90D").set_index("client_id")
    change = trend.loc[who, "health_change"]
    assert body["health_change"] == (None if pd.isna(change) else pytest.approx(change))


def test_health_score_refuses_unknown_clients_and_needs_the_key(models):
    """Check the 404 for a client the model does not score, and the 401 without the key."""
    rec, model = models
    client = TestClient(create_app(rec, retention=model, api_key="a-long-enough-secret"))
    assert client.get("/health-score/C0001").status_code == 401
    answer = client.get("/health-score/nobody", headers={"X-API-Key": "a-long-enough-secret"})
    assert answer.status_code == 404
    assert "has no health score" in answer.json()["detail"]


def test_without_a_retention_model_there_is_no_health_score(models):
    """Check that the route exists only when a retention model is given."""
    rec, _ = models
    assert TestClient(create_app(rec)).get("/health-score/C0001").status_code == 404
    with pytest.raises(TypeError, match="must be a fitted RetentionModel"):
        create_app(rec, retention=rec)
