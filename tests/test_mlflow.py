"""crosssell.mlflow: the model flavor, and backtests and tunings logged as runs, on a file store."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

import crosssell as cs  # noqa: E402 - only with the mlflow extra, hence after importorskip
from crosssell.evaluation import backtest as run_backtest  # noqa: E402
from crosssell.evaluation.tuning import tune  # noqa: E402
from crosssell.exceptions import ArtifactError, NotFittedError, SchemaError  # noqa: E402
from crosssell.mlflow import (  # noqa: E402
    FLAVOR_NAME,
    OffersModel,
    load_model,
    log_backtest,
    log_model,
    metric_name,
    save_model,
)
from crosssell.scorers import CoOccurrence, Popularity  # noqa: E402

PICKLE_OPCODES = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> mlflow.MlflowClient:
    """A file-store tracking URI in tmp_path, reset afterwards."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file://{tmp_path}/mlruns"
    mlflow.set_tracking_uri(uri)
    yield mlflow.MlflowClient(uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def book() -> cs.Book:
    return cs.datasets.synthetic_book(60, seed=1)


@pytest.fixture(scope="module")
def rec(book: cs.Book) -> cs.Recommender:
    return cs.Recommender(policy=cs.rules.route_sales(), k=3).fit(book)


@pytest.fixture(scope="module")
def result(rec: cs.Recommender, book: cs.Book) -> cs.evaluation.BacktestResult:
    return run_backtest(
        rec, book, ["2024-06-30", "2024-12-31"], "180D", k=(1, 3), n_boot=20, progress=False
    )


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------- the flavor


def test_log_model_then_load_model_gives_the_same_offers(tracking, rec) -> None:
    """Check that a logged model loads back into a Recommender making the very same offers."""
    with mlflow.start_run():
        info = log_model(rec, "recommender")
    again = load_model(info.model_uri)
    assert isinstance(again, cs.Recommender)
    pd.testing.assert_frame_equal(again.recommend(), rec.recommend())
    assert again.as_of_ == rec.as_of_


def test_model_logged_in_a_run_loads_by_its_run_uri(tracking, rec) -> None:
    """Check that runs:/<run id>/<name> reaches the model too."""
    with mlflow.start_run() as run:
        log_model(rec, "recommender")
    again = load_model(f"runs:/{run.info.run_id}/recommender")
    pd.testing.assert_frame_equal(again.recommend(["C0001"]), rec.recommend(["C0001"]))


def test_registered_model_loads_by_name_and_version(tracking, rec) -> None:
    """Check that a model logged without a run and registered loads by models:/<name>/<version>."""
    info = log_model(rec, registered_model_name="route-sales")
    assert info.run_id is None
    again = load_model("models:/route-sales/1")
    pd.testing.assert_frame_equal(again.recommend(["C0001"]), rec.recommend(["C0001"]))


def test_pyfunc_predict_gives_the_offers_of_recommend(tracking, rec) -> None:
    """Check that the python_function model answers a frame of ids with recommend's offers."""
    with mlflow.start_run():
        info = log_model(rec)
    model = mlflow.pyfunc.load_model(info.model_uri)
    clients = ["C0001", "C0002", "C0005"]
    got = model.predict(pd.DataFrame({"client_id": clients}))
    pd.testing.assert_frame_equal(got, rec.recommend(clients))
    one = model.predict(pd.DataFrame({"client_id": clients}), params={"k": 1})
    pd.testing.assert_frame_equal(one, rec.recommend(clients, k=1))
    assert one.groupby("client_id").size().max() == 1


def test_pyfunc_predict_with_fresh_events_follows_recommend_one(tracking, rec) -> None:
    """Check that fresh events reach the policy: a complaint today suppresses the offers."""
    with mlflow.start_run():
        info = log_model(rec)
    model = mlflow.pyfunc.load_model(info.model_uri)
    today = str(rec.as_of_.date())
    events = pd.DataFrame({"client_id": ["C0001"], "date": [today], "type": ["complaint_opened"]})
    got = model.predict({"clients": pd.DataFrame({"client_id": ["C0001", "C0002"]}),
                         "events": events})  # fmt: skip
    assert rec.recommend_one("C0001", events=events) == []
    assert not rec.recommend(["C0001"]).empty  # without the complaint C0001 gets offers
    pd.testing.assert_frame_equal(got, rec.recommend(["C0002"]))


def test_pyfunc_predict_refuses_fresh_rows_of_clients_not_asked(rec) -> None:
    """Check that a fresh event of a client not asked for is an error naming the row."""
    events = {"client_id": ["C0001", "C0009"], "date": ["2025-06-29"] * 2,
              "type": ["contact"] * 2}  # fmt: skip
    with pytest.raises(
        SchemaError, match=r"events: 1 row names a client .* row 1 client_id='C0009'"
    ):
        OffersModel(rec).predict({"clients": ["C0001"], "events": events})


def test_pyfunc_predict_says_which_column_is_missing(rec) -> None:
    """Check that a frame without client_id is refused with its columns shown."""
    with pytest.raises(SchemaError, match=r"no 'client_id' column \(columns: \['customer'\]\)"):
        OffersModel(rec).predict(pd.DataFrame({"customer": ["C0001"]}))


def test_artifact_holds_the_safe_format_and_no_pickle(tracking, rec, tmp_path) -> None:
    """Check that the artifact is crosssell's manifest-and-arrays model, with nothing pickled."""
    with mlflow.start_run():
        info = log_model(rec)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "d")))
    description = mlflow.models.Model.load(str(local / "MLmodel"))
    assert description.flavors[FLAVOR_NAME]["data"] == "data/model.crosssell"
    pyfunc = description.flavors["python_function"]
    assert pyfunc["loader_module"] == "crosssell.mlflow"
    assert "python_model" not in pyfunc
    assert "cloudpickle_version" not in pyfunc
    files = _files(local)
    assert not [p for p in files if p.suffix in {".pkl", ".pickle"}]
    assert not [p for p in files if p.read_bytes()[:2] in PICKLE_OPCODES]
    manifest = cs.persist.read_manifest(local / "data" / "model.crosssell")
    assert manifest["as_of"].startswith(str(rec.as_of_.date()))
    assert "crosssell" in (local / "requirements.txt").read_text(encoding="utf-8")


def test_save_model_refuses_an_existing_folder(rec, tmp_path) -> None:
    """Check that save_model never writes over a folder."""
    (tmp_path / "model").mkdir()
    with pytest.raises(FileExistsError, match="exists; give a new folder"):
        save_model(rec, tmp_path / "model")


def test_save_model_of_an_unfitted_recommender_leaves_nothing(tmp_path) -> None:
    """Check that an unfitted recommender is refused before any file is written."""
    with pytest.raises(NotFittedError, match="not fitted yet"):
        save_model(cs.Recommender(), tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_save_model_of_a_user_rule_leaves_no_half_folder(tmp_path) -> None:
    """Check that a model crosssell cannot save without code leaves no folder behind."""
    mine = cs.rules.FunctionRule(
        name="nobody", kind="contact", func=lambda ctx: np.zeros(ctx.n_clients, bool)
    )
    policy = cs.rules.route_sales().with_rules(mine)
    custom = cs.Recommender(policy=policy, k=2).fit(cs.datasets.tiny(), "2024-06-30")
    with pytest.raises(ArtifactError):
        save_model(custom, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_log_model_keeps_the_metadata(tracking, rec) -> None:
    """Check that metadata given to log_model reaches the MLmodel file."""
    with mlflow.start_run():
        info = log_model(rec, metadata={"team": "route sales"})
    assert mlflow.models.get_model_info(info.model_uri).metadata == {"team": "route sales"}


def test_load_model_refuses_a_model_of_another_flavor(rec, tmp_path) -> None:
    """Check that a model without the crosssell flavor is refused with the flavors it has."""
    folder = save_model(rec, tmp_path / "model")
    description = mlflow.models.Model.load(str(folder / "MLmodel"))
    del description.flavors[FLAVOR_NAME]
    description.save(str(folder / "MLmodel"))
    with pytest.raises(
        ArtifactError, match=r"no 'crosssell' flavor \(it has \['python_function'\]"
    ):
        load_model(str(folder))


def test_missing_mlflow_names_the_extra(rec, tmp_path, monkeypatch) -> None:
    """Check that without MLflow the error says which extra installs it."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r'pip install "crosssell\[mlflow\]"'):
        save_model(rec, tmp_path / "model")


# --------------------------------------------------------------------------- runs


def test_metric_name_is_valid_for_mlflow() -> None:
    """Check that @ and other characters MLflow refuses become valid names."""
    assert metric_name("folds", "crosssell", "ndcg@10") == "folds/crosssell/ndcg_at_10"
    assert metric_name("segment", "SME/retail: <B2B>") == "segment/SME_retail_ _B2B_"


def test_backtest_is_logged_per_fold_and_k_with_intervals(tracking, result) -> None:
    """Check that every fold's metric at every k, with its interval, is read back as logged."""
    run_id = result.log_to_mlflow(params={"scorer": "default", "k": 3})
    run = tracking.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert mlflow.active_run() is None
    params = run.data.params
    assert params["backtest/horizon_days"] == "180"
    assert params["backtest/k"] == "1, 3"
    assert params["k"] == "3"  # the caller's own, beside the backtest's
    assert params["backtest/cutoffs"] == "2024-06-30, 2024-12-31"
    assert params["scorer"] == "default"
    m = result.metrics
    assert set(m["fold"]) == {0, 1}
    checked = m[(m["segment"] == "all") & m["metric"].isin(["precision", "ndcg"])]
    for (model, offer_type, name, k), rows in checked.groupby(
        ["model", "offer_type", "metric", "k"]
    ):
        qual = [model] if offer_type == "all" else [model, offer_type]
        key = "/".join(["folds", *qual, f"{name}_at_{k}"])
        for suffix, column in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
            history = {h.step: h.value for h in tracking.get_metric_history(run_id, key + suffix)}
            expected = dict(zip(rows["fold"], rows[column], strict=True))
            assert history.keys() == expected.keys()
            for fold, value in expected.items():
                assert history[fold] == pytest.approx(value, nan_ok=True)
    summary = result.summary()
    metrics = run.data.metrics
    for row in summary.itertuples(index=False):
        assert metrics[f"crosssell/{row.metric}_at_{row.k}"] == pytest.approx(row.crosssell)
        lift = metrics[f"lift/{row.metric}_at_{row.k}"]
        assert (math.isnan(lift) and math.isnan(row.lift)) or lift == pytest.approx(row.lift)
    additions = {h.step: h.value for h in tracking.get_metric_history(run_id, "folds/additions")}
    assert additions == dict(zip(result.folds["fold"], result.folds["additions"], strict=True))


def test_backtest_artifacts_hold_the_report_tables_and_charts(tracking, result, tmp_path) -> None:
    """Check that the HTML report, the tables and the charts are logged as artifacts."""
    pytest.importorskip("matplotlib")
    run_id = result.log_to_mlflow()
    files = {f.path for f in tracking.list_artifacts(run_id, "backtest")}
    assert files == {
        "backtest/report.html",
        "backtest/metrics.csv",
        "backtest/folds.csv",
        "backtest/metrics.png",
        "backtest/gain.png",
        "backtest/reliability.png",
    }
    assert "crosssell.charts" not in tracking.get_run(run_id).data.tags
    local = Path(tracking.download_artifacts(run_id, "backtest/metrics.csv", str(tmp_path)))
    logged = pd.read_csv(local)
    assert len(logged) == len(result.metrics)


def test_backtest_logs_into_the_active_run(tracking, result) -> None:
    """Check that an active run is used, and left open for the caller."""
    with mlflow.start_run() as run:
        run_id = log_backtest(result, report=False)
        assert mlflow.active_run().info.run_id == run.info.run_id
    assert run_id == run.info.run_id
    files = {f.path for f in tracking.list_artifacts(run_id, "backtest")}
    assert "backtest/report.html" not in files
    assert "backtest/metrics.csv" in files


def test_backtest_with_segments_gets_valid_names(tracking, rec, book) -> None:
    """Check that segment values become valid metric names under folds/<model>/segment/."""
    segmented = run_backtest(rec, book, ["2024-12-31"], "180D", k=(3,), n_boot=0,
                             segments="segment", progress=False)  # fmt: skip
    run_id = segmented.log_to_mlflow(report=False)
    names = tracking.get_run(run_id).data.metrics.keys()
    segments = [s for s in segmented.metrics["segment"].unique() if s != "all"]
    assert segments
    for segment in segments:
        assert metric_name("folds", "crosssell", "segment", segment, "recall@3") in names


@pytest.fixture(scope="module")
def tuned(book: cs.Book) -> cs.evaluation.TuneResult:
    space = [{"scorer": [Popularity()]},
             {"scorer": [CoOccurrence()], "scorer__measure": ["confidence", "lift"]}]  # fmt: skip
    return tune(cs.Recommender(k=3), book, space, ["2024-06-30", "2024-12-31"],
                horizon="180D", metric="recall@3", search="grid", progress=False)  # fmt: skip


def test_tune_logs_each_trial_as_a_nested_run(tracking, tuned) -> None:
    """Check that the parent run holds the choice and each trial is a child with its scores."""
    run_id = tuned.log_to_mlflow(run_name="tuning")
    parent = tracking.get_run(run_id)
    assert parent.data.params["metric"] == "recall@3"
    assert parent.data.params["best/scorer"] == repr(tuned.best_params["scorer"])
    assert parent.data.metrics["held_out"] == pytest.approx(tuned.held_out)
    children = tracking.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    table = tuned.results
    assert len(children) == len(table) == 3
    by_trial = {int(c.data.params["trial"]): c for c in children}
    for row in table.itertuples(index=False):
        child = by_trial[row.trial]
        assert child.info.run_name == f"trial {row.trial}"
        assert child.data.params["scorer"] == row.scorer
        measure = child.data.params.get("scorer__measure")
        assert measure == (None if row.scorer == "Popularity()" else row.scorer__measure)
        assert child.data.metrics["selection_score"] == pytest.approx(row.selection_score)
        assert child.data.metrics["held_out_score"] == pytest.approx(row.held_out_score)
        assert child.data.metrics["rank"] == row.rank
    files = {f.path for f in tracking.list_artifacts(run_id, "tune")}
    assert "tune/trials.csv" in files


def test_tune_can_log_the_chosen_model(tracking, tuned) -> None:
    """Check that log_best logs the refitted best recommender, which loads and offers alike."""
    with mlflow.start_run() as run:
        tuned.log_to_mlflow(log_best=True)
    again = load_model(f"runs:/{run.info.run_id}/best_recommender")
    best = tuned.best_recommender
    clients = best.recommend()["client_id"].unique()[:5]
    pd.testing.assert_frame_equal(again.recommend(clients), best.recommend(clients))
    assert np.array_equal(again.recommend()["rank"], best.recommend()["rank"])


def test_a_pruned_trial_is_tagged_and_has_no_scores(tracking, tuned) -> None:
    """Check that a trial Optuna stopped is logged as pruned, with its time but no score."""
    table = tuned.results.copy()
    table["pruned"] = [False, True, False]
    table.loc[1, ["selection_score", "held_out_score"]] = np.nan
    run_id = dataclasses.replace(tuned, results=table).log_to_mlflow()
    children = tracking.search_runs(
        [tracking.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
    )
    by_trial = {int(c.data.params["trial"]): c for c in children}
    assert by_trial[1].data.tags["crosssell.pruned"] == "true"
    assert set(by_trial[1].data.metrics) == {"fit_seconds"}
    assert by_trial[0].data.tags["crosssell.pruned"] == "false"
    assert "selection_score" in by_trial[0].data.metrics
