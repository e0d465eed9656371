"""Tests of the crosssell command line (crosssell.cli and python -m crosssell)."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest

import crosssell as cs
from crosssell.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main, matrix_summary
from crosssell.datasets import demo, demo_as_of, demo_frames
from crosssell.persist import load, save


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
    assert "Top offers for 3 demo clients" in done.stdout
    assert "Why not" in done.stdout
    assert "Suppressed by the policy" in done.stdout
    assert "do_not_contact" in done.stdout
    assert "No offer for" in done.stdout
    assert "Account plan for AM01 and AM02" in done.stdout
    assert "Does it beat the obvious?" in done.stdout


def test_demo_backtests_against_popularity_with_what_it_knew(capsys):
    """Check that the demo's backtest is compare()'s pooled row, on cutoffs known at as_of."""
    from crosssell.evaluation import compare
    from crosssell.rules import route_sales

    assert main(["demo"]) == EXIT_OK
    out = capsys.readouterr().out.split("Does it beat the obvious?")[1]
    result = cs.backtest(
        cs.Recommender(policy=route_sales(), k=3), demo(), ["2024-06-30", "2024-12-31"], "180D",
        k=(10,), progress=False,
    )  # fmt: skip
    row = compare(result).set_index("fold").loc["all"]
    assert f"crosssell {row['value']:.3f}  popularity {row['baseline_value']:.3f}" in out
    assert f"[95% CI {row['ci_low']:+.3f}, {row['ci_high']:+.3f}]: above popularity" in out
    # at an earlier as_of only the cutoff whose half-year had passed is used
    assert main(["demo", "--as-of", "2024-12-31"]) == EXIT_OK
    assert "fitted at 2024-06-30, scored" in capsys.readouterr().out
    # too early for any: the section is left out
    assert main(["demo", "--as-of", "2023-12-31"]) == EXIT_OK
    assert "Does it beat the obvious?" not in capsys.readouterr().out


def test_validate_bad_csv_exits_1_and_shows_the_row(bad_csv):
    """Check that 'validate' on a CSV with end before start exits 1 and names the problem."""
    done = _run("validate", "--contracts", str(bad_csv))
    assert done.returncode == 1
    assert "end_before_start" in done.stdout
    assert "contracts row 0 column 'end_date'" in done.stdout
    assert "end_date=2023-01-01" in done.stdout


def test_help_lists_commands_and_examples(capsys):
    """Check that '--help' exits 0 and shows the commands and examples."""
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for command in ("demo", "validate", "recommend", "fit", "backtest", "tune", "why-not",
                    "plan", "serve"):  # fmt: skip
        assert command in out
    assert "examples:" in out


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


# ------------------------------------------------------------------- the modelling commands


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, Path]:
    """The demo book as CSV files, list columns joined with '|' as a spreadsheet would hold them."""
    folder = tmp_path_factory.mktemp("demo")
    paths = {}
    for name, frame in demo_frames().items():
        flat = frame.copy()
        for column in ("requires", "excludes", "segments"):
            if column in flat.columns:
                flat[column] = flat[column].map(
                    lambda v: "|".join(v) if isinstance(v, tuple) else v
                )
        paths[name] = folder / f"{name}.csv"
        flat.to_csv(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    """A saved demo model (route-sales policy, k=2)."""
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=2).fit(demo(), demo_as_of())
    return save(rec, tmp_path_factory.mktemp("model") / "demo.crosssell")


@pytest.fixture
def tiny_files(tmp_path: Path) -> list[str]:
    """Two clients who each add a product within 60 days of a mid-2024 cutoff."""
    contracts = tmp_path / "c.csv"
    contracts.write_text(
        "client_id,product_id,start_date,value\n"
        "C1,CRM-1,2024-01-01,100\nC1,CRM-2,2024-08-01,250\n"
        "C2,ERP-1,2024-01-01,80\nC2,CRM-1,2024-09-01,100\n",
        encoding="utf-8",
    )
    products = tmp_path / "p.csv"
    products.write_text("product_id,family,tier\nCRM-1,CRM,1\nCRM-2,CRM,2\nERP-1,ERP,1\n")
    return ["--contracts", str(contracts), "--products", str(products)]


def _inputs(files: dict[str, Path]) -> list[str]:
    return [arg for name, path in files.items() for arg in (f"--{name}", str(path))]


def test_recommend_from_files_subprocess(demo_files, tmp_path):
    """Check that 'python -m crosssell recommend' fits on CSV files and writes Parquet."""
    out = tmp_path / "offers.parquet"
    done = _run("recommend", *_inputs(demo_files), "--as-of", "2025-06-30", "-k", "2",
                "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    offers = pd.read_parquet(out)
    assert offers.columns.tolist()[:3] == ["id", "name", "description"]
    assert offers.groupby("client_id").size().max() <= 2
    # evidence is a list of {product_id, weight} structs, not JSON text
    first = offers["evidence"].iloc[0][0]
    assert first["product_id"] in set(demo().product_ids.external)
    assert isinstance(first["weight"], float)


def test_fit_subprocess_saves_a_loadable_model(demo_files, tmp_path):
    """Check that 'python -m crosssell fit' saves a model that loads and offers as fitted."""
    model = tmp_path / "m.crosssell"
    done = _run("fit", *_inputs(demo_files), "--as-of", "2025-06-30", "--model", str(model))
    assert done.returncode == 0, done.stderr
    assert f"saved to {model}" in done.stdout
    loaded = load(model)
    assert loaded.as_of_ == pd.Timestamp("2025-06-30")
    assert len(loaded.recommend(["C0001"])) == 3


def test_recommend_to_stdout_matches_the_library(demo_files, capsys):
    """Check that the CSV on stdout holds the library's offers, and stderr stays quiet."""
    assert main(["recommend", *_inputs(demo_files), "--as-of", "2025-06-30"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.err == ""
    offers = pd.read_csv(StringIO(captured.out), dtype={"client_id": str, "product_id": str})
    expected = cs.Recommender(policy=cs.rules.route_sales()).fit(demo(), "2025-06-30").recommend()
    assert offers["product_id"].tolist() == expected["product_id"].tolist()
    assert offers["rank"].tolist() == expected["rank"].tolist()


def test_recommend_policy_none_offers_to_do_not_contact_clients(demo_files, tmp_path):
    """Check that --policy none drops the rules (a do-not-contact client gets offers)."""
    base = ["recommend", *_inputs(demo_files), "--as-of", "2025-06-30", "--client", "C0003"]
    strict, loose = tmp_path / "strict.csv", tmp_path / "loose.csv"
    assert main([*base, "--out", str(strict)]) == EXIT_OK
    assert main([*base, "--policy", "none", "--scorer", "popularity", "--out", str(loose)]) == 0
    assert len(pd.read_csv(strict)) == 0
    assert len(pd.read_csv(loose)) == 3


def test_recommend_model_with_fresh_events(demo_model, demo_files, tmp_path, capsys):
    """Check that --model with input tables scores them: a complaint today removes the offers."""
    contracts = pd.read_csv(demo_files["contracts"])
    mine = tmp_path / "mine.csv"
    contracts[contracts["client_id"] == "C0001"].to_csv(mine, index=False)
    events = tmp_path / "events.csv"
    events.write_text("client_id,date,type\nC0001,2025-06-30,complaint_opened\n")
    assert main(["recommend", "--model", str(demo_model), "--contracts", str(mine)]) == EXIT_OK
    assert capsys.readouterr().out.count("C0001,") == 2
    argv = ["recommend", "--model", str(demo_model), "--contracts", str(mine), "--events",
            str(events)]  # fmt: skip
    assert main(argv) == EXIT_OK
    assert "C0001," not in capsys.readouterr().out


def test_recommend_bad_rows_exit_1_unless_collected(bad_csv, capsys):
    """Check that invalid rows stop 'recommend' with the report, and --errors collect goes on."""
    assert main(["recommend", "--contracts", str(bad_csv)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "end_before_start" in err
    assert "--errors collect" in err
    assert main(["recommend", "--contracts", str(bad_csv), "--errors", "collect"]) == EXIT_OK
    assert "1 invalid rows set aside" in capsys.readouterr().err


def test_unknown_client_is_bad_input(demo_model, capsys):
    """Check that 'recommend' refuses an unknown client with exit 1, as 'why-not' does."""
    assert main(["recommend", "--model", str(demo_model), "--client", "nobody"]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "Invalid input: 1 client id(s) are not in the book (showing up to 5): 'nobody'."
    )


def test_fit_saves_the_chosen_scorer(demo_files, tmp_path, capsys):
    """Check that 'fit --scorer popularity --policy none' saves that configuration."""
    model = tmp_path / "pop.crosssell"
    argv = ["fit", *_inputs(demo_files), "--scorer", "popularity", "--policy", "none", "-k", "4",
            "--model", str(model)]  # fmt: skip
    assert main(argv) == EXIT_OK
    loaded = load(model)
    assert type(loaded.scorer_).__name__ == "Popularity"
    assert (loaded.policy, loaded.k_) == (None, 4)
    assert "Popularity scorer, no policy, k=4" in capsys.readouterr().out


def test_why_not_from_inputs_and_unknown_ids(demo_files, demo_model, capsys):
    """Check that 'why-not' answers from inputs or a model, and exits 1 for an unknown id."""
    argv = ["why-not", *_inputs(demo_files), "--client", "C0001", "--product", "ERP-2"]
    assert main(argv) == EXIT_OK
    assert "already holds 'ERP-2'" in capsys.readouterr().out
    argv = ["why-not", "--model", str(demo_model), "--client", "nobody", "--product", "ERP-2"]
    assert main(argv) == EXIT_BAD_INPUT
    assert "'nobody' is not in the book" in capsys.readouterr().out


def test_plan_writes_csv_and_pages(demo_model, tmp_path, capsys):
    """Check that 'plan' writes plan.csv and one page per manager, and prints the cut."""
    out = tmp_path / "plan"
    assert main(["plan", "--model", str(demo_model), "--capacity", "5", "--out", str(out)]) == 0
    plan = pd.read_csv(out / "plan.csv")
    assert {"client_id", "owner", "action"} <= set(plan.columns)
    owners = sorted(plan["owner"].dropna().unique())
    assert sorted(p.name for p in out.glob("owner-*.html")) == [f"owner-{o}.html" for o in owners]
    assert (out / "index.html").is_file()
    assert "below_cut" in capsys.readouterr().out


def test_plan_under_constraints_from_a_yaml_file(demo_model, tmp_path, capsys):
    """Check that 'plan --constraints' plans the book at once and refuses a misspelt key."""
    quarter = tmp_path / "quarter.yaml"
    quarter.write_text(
        "per_client: 1\nfamily_share:\n  SEC: 0.3\nfamily_quota:\n  ERP: [null, 10]\n",
        encoding="utf-8",
    )
    out = tmp_path / "plan"
    argv = ["plan", "--model", str(demo_model), "--capacity", "5", "--constraints", str(quarter),
            "--out", str(out)]  # fmt: skip
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Planned as one book:" in printed
    assert "optimised" in printed
    plan = pd.read_csv(out / "plan.csv")
    within = plan[plan["within_capacity"]]
    assert (within.groupby("owner").size() <= 5).all()
    assert (within["product_id"].str.startswith("ERP")).sum() <= 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("capacty: 5\n", encoding="utf-8")
    argv = ["plan", "--model", str(demo_model), "--constraints", str(bad), "--out", str(out)]
    assert main(argv) == EXIT_USAGE
    assert "did you mean 'capacity'" in capsys.readouterr().err


def test_backtest_prints_writes_and_reports(tiny_files, tmp_path, capsys):
    """Check that 'backtest' prints the summary, writes the tidy metrics and an HTML report."""
    metrics, page = tmp_path / "metrics.csv", tmp_path / "bt.html"
    argv = ["backtest", *tiny_files, "--cutoffs", "2024-06-15,2024-07-03", "--horizon", "60D",
            "-k", "1,3", "--n-boot", "0", "--out", str(metrics), "--report", str(page)]  # fmt: skip
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "crosssell" in out
    assert "popularity" in out
    tidy = pd.read_csv(metrics)
    assert set(tidy["k"]) == {1, 3}
    assert set(tidy["fold"]) == {0, 1}
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_backtest_impossible_cutoff_is_a_usage_error(tiny_files, capsys):
    """Check that a cutoff whose horizon runs past the data exits 2 with the library's advice."""
    argv = ["backtest", *tiny_files, "--cutoffs", "2024-09-01", "--horizon", "180D"]
    assert main(argv) == EXIT_USAGE
    assert "Use a cutoff on or before" in capsys.readouterr().err


def test_tune_prints_trials_and_saves_the_best(tiny_files, tmp_path, capsys):
    """Check that 'tune' searches the named scorers, prints the table and saves the best."""
    model, trials = tmp_path / "best.crosssell", tmp_path / "trials.csv"
    argv = ["tune", *tiny_files, "--cutoffs", "2024-06-15,2024-07-03", "--horizon", "60D",
            "--metric", "recall@1", "--scorers", "popularity,cooccurrence",
            "--model", str(model), "--out", str(trials)]  # fmt: skip
    assert main(argv) == EXIT_OK
    out = capsys.readouterr().out
    assert "held-out recall@1" in out
    assert len(pd.read_csv(trials)) == 3
    assert load(model).as_of_ == pd.Timestamp("2024-09-01")


def test_serve_command_hands_the_model_to_the_server(demo_model, monkeypatch):
    """Check that 'serve' loads the model and starts the server with the given options."""
    pytest.importorskip("fastapi")
    import crosssell.serve

    calls = {}

    def fake_run(model, **options):
        calls.update(options, model=model)

    monkeypatch.setattr(crosssell.serve, "run", fake_run)
    argv = ["serve", "--model", str(demo_model), "--port", "8123", "--validity-days", "7"]
    assert main(argv) == EXIT_OK
    assert calls["model"].k_ == 2
    assert (calls["host"], calls["port"], calls["validity_days"]) == ("127.0.0.1", 8123, 7)


def test_serve_command_takes_an_api_key_file(demo_model, tmp_path, capsys):
    """Check that 'serve --api-key-file' reaches the server, and an unreadable file is exit 2."""
    pytest.importorskip("fastapi")
    argv = ["serve", "--model", str(demo_model), "--api-key-file", str(tmp_path / "none")]
    assert main(argv) == EXIT_USAGE
    assert "Cannot read the API key file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["recommend"],
        ["recommend", "--model", "no/such/model.crosssell"],
        ["recommend", "--contracts", "c.csv", "-k", "0"],
        ["recommend", "--policy", "strict"],
        ["why-not", "--client", "C1"],
        ["backtest", "--contracts", "c.csv", "--cutoffs", "soon"],
        ["tune", "--contracts", "c.csv", "--cutoffs", "2024-01-01", "--scorers", "magic"],
        ["fit", "--contracts", "c.csv"],
        ["plan", "--model", "m.crosssell"],
    ],
)
def test_more_usage_errors_exit_2(argv, capsys):
    """Check that command-line mistakes of the modelling commands exit 2 with a message."""
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err


def test_model_at_another_date_is_a_usage_error(demo_model, capsys):
    """Check that --as-of different from the model's, without inputs, exits 2 and says why."""
    assert main(["recommend", "--model", str(demo_model), "--as-of", "2025-01-01"]) == EXIT_USAGE
    assert "fitted at 2025-06-30" in capsys.readouterr().err


def test_corrupt_model_exits_1(tmp_path, capsys):
    """Check that a file that is not a model is bad input (exit 1), named in the message."""
    junk = tmp_path / "junk.crosssell"
    junk.write_bytes(b"not a model")
    assert main(["recommend", "--model", str(junk)]) == EXIT_BAD_INPUT
    assert "cannot load the model" in capsys.readouterr().err


def test_out_needs_a_table_suffix(demo_model, tmp_path, capsys):
    """Check that --out with an unknown suffix exits 2."""
    out = tmp_path / "offers.xlsx"
    assert main(["recommend", "--model", str(demo_model), "--out", str(out)]) == EXIT_USAGE
    assert ".parquet" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "command", ["demo", "validate", "recommend", "fit", "backtest", "tune", "why-not", "plan",
                "serve", "react", "lift"],
)  # fmt: skip
def test_every_command_has_help_with_examples(command, capsys):
    """Check that each subcommand's --help exits 0 and shows examples."""
    assert main([command, "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"crosssell {command}" in out
