"""The decision log on the command line: recommend and plan --db --holdout, react, lift."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import crosssell as cs
from crosssell.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main

pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The demo book as CSV files, as the input options name them."""
    folder = tmp_path_factory.mktemp("demo")
    book = cs.datasets.demo()
    argv = []
    for name in ("contracts", "products", "clients", "events"):
        path = folder / f"{name}.csv"
        getattr(book, name).to_csv(path, index=False)
        argv += [f"--{name}", str(path)]
    return argv


def test_recommend_records_decisions_and_holds_clients_out(
    tables: list[str], tmp_path: Path
) -> None:
    db, out = tmp_path / "crosssell.db", tmp_path / "offers.csv"
    argv = ["recommend", *tables, "--as-of", "2025-06-30", "--out", str(out), "-q"]
    assert main([*argv, "--db", str(db), "--holdout", "0.2", "--campaign", "q3"]) == EXIT_OK
    offers = pd.read_csv(out)
    with cs.DecisionLog(db) as log:
        decisions = log.decisions()
    held = set(decisions.loc[decisions["arm"] == "holdout", "client_id"])
    assert held
    assert not held & set(offers["client_id"])
    assert set(offers["decision_id"]) <= set(decisions["decision_id"])
    assert set(decisions["campaign"]) == {"q3"}
    assert (decisions["action"] == "no_offer").any()


def test_react_keeps_good_rows_reports_the_rest_and_ignores_repeats(
    tables: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "crosssell.db", tmp_path / "offers.csv"
    argv = ["recommend", *tables, "--as-of", "2025-06-30", "--out", str(out), "-q"]
    assert main([*argv, "--db", str(db)]) == EXIT_OK
    ids = pd.read_csv(out)["decision_id"].tolist()
    good = tmp_path / "good.csv"
    pd.DataFrame({"decision_id": ids[:2], "outcome": ["accepted", "declined"]}).to_csv(good)
    assert main(["react", "--db", str(db), "--file", str(good)]) == EXIT_OK
    assert "Recorded 2 reaction(s); 0 already" in capsys.readouterr().out
    assert main(["react", "--db", str(db), "--file", str(good)]) == EXIT_OK
    assert "Recorded 0 reaction(s); 2 already" in capsys.readouterr().out
    bad, refused = tmp_path / "bad.csv", tmp_path / "refused.csv"
    pd.DataFrame(
        {"decision_id": [ids[2], "no-such-id"], "outcome": ["ignored", "accepted"]}
    ).to_csv(bad, index=False)
    code = main(["react", "--db", str(db), "--file", str(bad), "--rejected", str(refused)])
    assert code == EXIT_BAD_INPUT
    assert "reactions row 1 column 'decision_id'" in capsys.readouterr().err
    assert pd.read_csv(refused)["decision_id"].tolist() == ["no-such-id"]
    with cs.DecisionLog(db) as log:
        assert sorted(log.reactions()["outcome"]) == ["accepted", "declined", "ignored"]


def test_lift_reads_the_log_and_the_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = cs.Recommender(k=1).fit(cs.datasets.demo(), "2025-06-30")
    db = tmp_path / "crosssell.db"
    with cs.DecisionLog(db) as log:
        sim = cs.datasets.simulate_campaign(cs.datasets.demo(), rec, true_uplift=0.3, log=log)
    contracts = tmp_path / "contracts.csv"
    sim.book.contracts.to_csv(contracts, index=False)
    products = tmp_path / "products.csv"
    sim.book.products.drop(columns=["requires", "excludes", "segments"]).to_csv(
        products, index=False
    )
    out = tmp_path / "lift.csv"
    argv = ["lift", "--db", str(db), "--contracts", str(contracts), "--products", str(products)]
    assert main([*argv, "--n-boot", "50", "--out", str(out), "-q"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Lift within 90 days" in printed
    table = pd.read_csv(out)
    overall = table[(table["group"] == "all") & (table["metric"] == "offer_take_up")].iloc[0]
    assert overall["lift"] == pytest.approx(
        cs.evaluation.lift(sim.decisions, sim.book, n_boot=0)
        .summary.set_index("metric")
        .loc["offer_take_up", "lift"]
    )


def test_a_bad_holdout_or_database_is_a_usage_error(
    tables: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["recommend", *tables, "--as-of", "2025-06-30", "-q", "--out", str(tmp_path / "o.csv")]
    assert main([*argv, "--holdout", "1.5"]) == EXIT_USAGE
    assert "--holdout" in capsys.readouterr().err
    assert main([*argv, "--db", "nosuchdialect://x/y"]) == EXIT_USAGE
    assert "--db" in capsys.readouterr().err


def test_plan_records_its_actions(tables: list[str], tmp_path: Path) -> None:
    db = tmp_path / "crosssell.db"
    argv = ["plan", *tables, "--as-of", "2025-06-30", "--out", str(tmp_path / "plan"), "-q"]
    assert main([*argv, "--db", str(db), "--holdout", "0.2"]) == EXIT_OK
    actions = pd.read_csv(tmp_path / "plan" / "plan.csv")
    with cs.DecisionLog(db) as log:
        decisions = log.decisions()
    assert len(decisions[decisions["shown_probability"] == 1.0]) == len(actions)
    assert (decisions.loc[decisions["shown_probability"] == 0.0, "arm"] == "holdout").all()


def test_db_alone_is_the_file_beside_the_model(tables: list[str], tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "model.crosssell"
    fit = ["fit", *tables, "--as-of", "2025-06-30", "--model", str(model), "-q"]
    assert main(fit) == EXIT_OK
    argv = ["recommend", "--model", str(model), "--out", str(tmp_path / "o.csv"), "-q", "--db"]
    assert main(argv) == EXIT_OK
    with cs.DecisionLog.beside(model) as log:
        assert len(log.decisions()) > 0
    assert (model.parent / "crosssell.db").exists()
