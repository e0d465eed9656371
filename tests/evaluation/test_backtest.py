"""Tests of crosssell.evaluation.truth and crosssell.evaluation.backtest."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import crosssell.evaluation
from crosssell.book import Book
from crosssell.columns import Columns, EventType
from crosssell.evaluation import BacktestResult, additions, backtest
from crosssell.recommender import Recommender
from crosssell.rules import route_sales
from crosssell.scorers import Popularity

C, P, S, E, V = Columns.client, Columns.product, Columns.start, Columns.end, Columns.value
CUTOFF = "2024-06-30"

PRODUCTS = pd.DataFrame(
    {
        P: ["CRM-1", "CRM-2", "ERP-1", "HR-1"],
        Columns.family: ["CRM", "CRM", "ERP", "HR"],
        Columns.tier: [1, 2, 1, 1],
        Columns.price: [100.0, 250.0, 80.0, 40.0],
    }
)
CLIENTS = pd.DataFrame({C: [f"C{i:02d}" for i in range(1, 9)], Columns.segment: ["SMB", "ENT"] * 4})


def _contracts() -> pd.DataFrame:
    rows: list[tuple[str, str, str, str | None, float]] = [
        (f"C{i:02d}", "CRM-1", "2023-01-01", None, 100.0) for i in range(1, 9)
    ]
    rows += [(f"C{i:02d}", "ERP-1", "2023-06-01", None, 80.0) for i in (1, 3, 4)]
    rows += [
        ("C02", "ERP-1", "2023-06-01", "2024-07-31", 80.0),  # renewed below: not an addition
        ("C02", "ERP-1", "2024-07-31", None, 85.0),
        ("C01", "CRM-2", "2024-08-01", None, 250.0),  # upsell of CRM-1
        ("C05", "ERP-1", "2024-07-15", None, float("nan")),  # cross-sell, value from the price
        ("C06", "HR-1", "2023-01-01", "2024-01-31", 40.0),  # lapsed before the cutoff ...
        ("C06", "HR-1", "2024-08-15", None, 45.0),  # ... and taken up again: an addition
        ("C07", "HR-1", CUTOFF, None, 40.0),  # starts on the cutoff: held then, not an addition
        ("C08", "ERP-1", "2024-09-28", None, 90.0),  # on the last day of a 90-day window
        ("C03", "HR-1", "2024-12-01", None, 40.0),  # after the window
    ]
    return pd.DataFrame(rows, columns=[C, P, S, E, V])


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C: ["C05", "C01"],
            Columns.date: ["2024-05-01", "2024-07-05"],
            Columns.type: [EventType.complaint_opened, EventType.complaint_opened],
        }
    )


@pytest.fixture(scope="module")
def book() -> Book:
    return Book.from_frames(
        contracts=_contracts(), products=PRODUCTS, clients=CLIENTS, events=_events()
    )


@pytest.fixture(scope="module")
def result(book: Book) -> BacktestResult:
    rec = Recommender(scorer=Popularity(), policy=route_sales(), k=3)
    return backtest(
        rec,
        book,
        [CUTOFF, "2024-03-31"],
        horizon="90D",
        k=(1, 3),
        n_boot=50,
        segments=Columns.segment,
        progress=False,
    )


# ------------------------------------------------------------------------------ truth


def test_additions_hand_example(book: Book) -> None:
    """Check which pairs count as additions: new and lapsed-and-retaken, not renewals or held."""
    got = additions(book, CUTOFF, "90D")
    expected = pd.DataFrame(
        {
            C: ["C01", "C05", "C06", "C08"],
            P: ["CRM-2", "ERP-1", "HR-1", "ERP-1"],
            Columns.offer_type: ["upsell", "cross_sell", "cross_sell", "cross_sell"],
            V: [250.0, 80.0, 45.0, 90.0],  # C05's contract has no value: the catalog price
            Columns.date: pd.to_datetime(["2024-08-01", "2024-07-15", "2024-08-15", "2024-09-28"]),
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_additions_window_is_open_left_closed_right(book: Book) -> None:
    """Check that a contract starting on the cutoff is held, one on the window's end is added."""
    got = additions(book, "2024-06-29", "91D")
    assert ("C07", "HR-1") in set(zip(got[C], got[P], strict=True))
    shorter = additions(book, CUTOFF, "89D")
    assert "C08" not in set(shorter[C])


def test_additions_leave_out_clients_absent_at_the_cutoff() -> None:
    """Check that a client who held nothing at the cutoff is listed only when asked for."""
    contracts = pd.DataFrame(
        {
            C: ["OLD", "OLD", "NEW", "GONE", "GONE"],
            P: ["A", "B", "A", "A", "B"],
            "start_date": pd.to_datetime(
                ["2024-01-01", "2024-08-01", "2024-08-01", "2023-01-01", "2024-09-01"]
            ),
            "end_date": pd.to_datetime([None, None, None, "2024-01-01", None]),
        }
    )
    book = Book.from_frames(contracts=contracts)
    assert additions(book, CUTOFF, "180D")[C].tolist() == ["OLD"]
    every = additions(book, CUTOFF, "180D", include_absent=True)
    assert sorted(zip(every[C], every[P], strict=True)) == [
        ("GONE", "B"),
        ("NEW", "A"),
        ("OLD", "B"),
    ]


def test_additions_errors(book: Book) -> None:
    """Check that a bad horizon or cutoff is refused in scikit-learn's wording."""
    with pytest.raises(
        ValueError, match=r"^The 'horizon' parameter of additions must be a positive duration"
    ):
        additions(book, CUTOFF, "-5D")
    with pytest.raises(ValueError, match=r"^The 'cutoff' parameter of additions must be a date"):
        additions(book, "not a date", "90D")


# ------------------------------------------------------------------------------ backtest


def test_result_shapes(result: BacktestResult) -> None:
    """Check the tidy metrics frame: folds, models, offer types, segments, metrics and k."""
    m = result.metrics
    assert m.columns.tolist() == [
        "fold",
        "model",
        "offer_type",
        "segment",
        "metric",
        "k",
        "value",
        "ci_low",
        "ci_high",
        "n_clients",
    ]
    assert set(m["fold"]) == {0, 1}
    assert set(m["model"]) == {"crosssell", "popularity"}
    assert set(m["offer_type"]) == {"all", "upsell", "cross_sell"}
    assert set(m["segment"]) == {"all", "SMB", "ENT"}
    assert set(m["k"]) == {1, 3}
    assert result.k == (1, 3)
    assert result.horizon == pd.Timedelta(days=90)


def test_folds_record_what_they_used(result: BacktestResult) -> None:
    """Check each fold's record: cutoffs sorted, training rows, clients, additions."""
    folds = result.folds.set_index("cutoff")
    assert folds.index.tolist() == [pd.Timestamp("2024-03-31"), pd.Timestamp(CUTOFF)]
    late = folds.loc[pd.Timestamp(CUTOFF)]
    assert late["horizon_end"] == pd.Timestamp("2024-09-28")
    # 8 CRM-1 + 3 ERP-1 + C02's first ERP-1 + C06's first HR-1 + C07's HR-1 on the cutoff
    assert late["training_rows"] == 14
    assert late["clients"] == 8
    assert late["products"] == 3  # CRM-1, ERP-1, HR-1 are held at the cutoff
    assert late["clients_with_addition"] == 4
    assert late["additions"] == 4


def test_offers_are_marked_added(result: BacktestResult, book: Book) -> None:
    """Check that each recorded offer's 'added' flag agrees with the additions."""
    offers = result.offers
    late = offers[offers["cutoff"] == pd.Timestamp(CUTOFF)]
    truth = additions(book, CUTOFF, "90D")
    pairs = set(zip(truth[C], truth[P], strict=True))
    expected = [(c, p) in pairs for c, p in zip(late[C], late[P], strict=True)]
    assert late["added"].tolist() == expected
    assert late["rank"].max() <= 3


def test_policy_is_replayed_at_each_cutoff(result: BacktestResult, book: Book) -> None:
    """Check that a complaint open at the cutoff blocks offers, and one opened later does not."""
    offers = result.offers
    late = offers[(offers["cutoff"] == pd.Timestamp(CUTOFF)) & (offers["model"] == "crosssell")]
    assert "C05" not in set(late[C])  # complaint opened 2024-05-01, still open
    assert "C01" in set(late[C])  # complaint opened 2024-07-05: after the cutoff
    free = backtest(
        Recommender(scorer=Popularity(), policy=route_sales()),
        book,
        CUTOFF,
        horizon="90D",
        k=3,
        policy=False,
        baseline=False,
        n_boot=0,
        progress=False,
    )
    assert "C05" in set(free.offers[C])
    assert set(free.metrics["model"]) == {"crosssell"}


def test_summary_and_frame(result: BacktestResult) -> None:
    """Check the summary's model columns and lift, and the flat frame's dates."""
    summary = result.summary()
    assert summary.columns.tolist() == ["metric", "k", "crosssell", "popularity", "lift"]
    # the same scorer on both sides: lift is 1 wherever the baseline scores
    lifted = summary.dropna(subset=["lift"])
    assert np.allclose(lifted["lift"], 1.0)
    frame = result.to_frame()
    assert {"cutoff", "horizon_end"} <= set(frame.columns)
    assert frame.shape[0] == result.metrics.shape[0]
    ent = result.summary(segment="ENT")
    assert ent.shape[0] == summary.shape[0]


def test_intervals_bracket_values(result: BacktestResult) -> None:
    """Check that bootstrap intervals hold the estimate wherever they exist."""
    m = result.metrics.dropna(subset=["ci_low", "ci_high", "value"])
    assert not m.empty
    assert (m["ci_low"] <= m["value"] + 1e-12).all()
    assert (m["value"] <= m["ci_high"] + 1e-12).all()


class _Spy(Recommender):
    """Records the book and matrix each fitted clone saw."""

    seen: ClassVar[list[tuple[pd.Timestamp, Any, Book, Any]]] = []

    def fit(self, book: Book, as_of: Any = None) -> _Spy:
        super().fit(book, as_of)
        type(self).seen.append((self.as_of_, self.matrix_.client_product.copy(), book, self.policy))
        return self


def test_no_leak_from_after_the_cutoff(book: Book) -> None:
    """Check that a contract and an event dated after the cutoff change no fold's training."""
    later = pd.DataFrame(
        [("C04", "HR-1", "2024-07-10", None, 40.0), ("C02", "CRM-2", "2024-12-01", None, 250.0)],
        columns=[C, P, S, E, V],
    )
    events = pd.concat(
        [
            _events(),
            pd.DataFrame(
                {C: ["C03"], Columns.date: ["2024-07-01"], Columns.type: [EventType.churn_signal]}
            ),
        ],
        ignore_index=True,
    )
    richer = Book.from_frames(
        contracts=pd.concat([_contracts(), later], ignore_index=True),
        products=PRODUCTS,
        clients=CLIENTS,
        events=events,
    )
    runs = []
    for b in (book, richer):
        _Spy.seen.clear()
        res = backtest(
            _Spy(scorer=Popularity(), policy=route_sales()),
            b,
            ["2024-03-31", CUTOFF],
            horizon="90D",
            k=3,
            baseline=False,
            n_boot=0,
            progress=False,
        )
        runs.append((list(_Spy.seen), res))
    (seen_a, res_a), (seen_b, res_b) = runs
    assert len(seen_a) == len(seen_b) == 2
    for (as_of_a, matrix_a, book_a, _), (as_of_b, matrix_b, book_b, _) in zip(
        seen_a, seen_b, strict=True
    ):
        assert as_of_a == as_of_b
        assert (matrix_a != matrix_b).nnz == 0
        assert int(book_b.contract_arrays.start.max()) <= as_of_b.value
        assert (book_b.event_table[Columns.date] <= as_of_b).all()
        assert len(book_a.contract_arrays) == len(book_b.contract_arrays)
    offers_a = res_a.offers.drop(columns="added")
    offers_b = res_b.offers.drop(columns="added")
    pd.testing.assert_frame_equal(offers_a, offers_b)


def test_policy_false_clones_without_policy(book: Book) -> None:
    """Check that policy=False fits clones with policy=None and leaves the original alone."""
    rec = _Spy(scorer=Popularity(), policy=route_sales())
    _Spy.seen.clear()
    backtest(
        rec,
        book,
        CUTOFF,
        horizon="90D",
        k=3,
        policy=False,
        baseline=False,
        n_boot=0,
        progress=False,
    )
    assert [policy for *_, policy in _Spy.seen] == [None]
    assert rec.policy is not None
    assert not hasattr(rec, "matrix_")


class _Oracle(Recommender):
    """Offers exactly what each client will add: a perfect scorer planted in the future."""

    future: ClassVar[pd.DataFrame] = pd.DataFrame()

    def recommend(
        self, clients: Any = None, k: int | None = None, *, explain: bool = True
    ) -> pd.DataFrame:
        wanted = self.future[self.future[C].isin(list(clients))]
        out = wanted[[C, P, Columns.offer_type]].copy()
        out[Columns.score] = 1.0
        out[Columns.propensity] = 1.0
        out[Columns.rank] = out.groupby(C).cumcount() + 1
        return out[out[Columns.rank] <= (k or 3)].reset_index(drop=True)


def test_perfect_recommender_scores_one(book: Book) -> None:
    """Check that offering the planted future gives precision@1, recall, NDCG and MAP of 1."""
    _Oracle.future = additions(book, CUTOFF, "90D")
    res = backtest(
        _Oracle(), book, CUTOFF, horizon="90D", k=(1, 3), baseline=False, n_boot=0, progress=False
    )
    table = res.metrics[(res.metrics["offer_type"] == "all") & (res.metrics["segment"] == "all")]
    values = table.set_index(["metric", "k"])["value"]
    assert values[("precision", 1)] == 1.0
    assert values[("precision", 3)] == pytest.approx(1 / 3)  # one addition per client, 3 slots
    for metric in ("recall", "ndcg", "map", "hit_rate", "value_share"):
        assert values[(metric, 1)] == 1.0
        assert values[(metric, 3)] == 1.0
    assert values[("value_captured", 1)] == 250.0 + 80.0 + 45.0 + 90.0
    upsell = res.metrics[
        (res.metrics["offer_type"] == "upsell") & (res.metrics["segment"] == "all")
    ]
    assert upsell.set_index(["metric", "k"])["n_clients"][("recall", 1)] == 1


def test_horizon_past_the_book_is_refused(book: Book) -> None:
    """Check the message when a cutoff plus the horizon ends after the book."""
    # the last date is 2024-12-01; 2024-12-01 - 180 days = 2024-06-04
    message = (
        "cutoff 2024-06-30 + horizon 180 days = 2024-12-27 is after the last date in the book "
        "(2024-12-01): no outcome can be observed. Use a cutoff on or before 2024-06-04."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        backtest(Recommender(), book, [CUTOFF], horizon="180D", progress=False)


def test_cutoff_before_history_is_refused(book: Book) -> None:
    """Check the message when a cutoff lies before the first contract."""
    message = (
        "cutoff 2022-06-30 is before the first contract in the book (2023-01-01): there is no "
        "history to fit on. Use a cutoff on or after 2023-01-01."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        backtest(Recommender(), book, ["2022-06-30"], horizon="90D", progress=False)


def test_horizon_longer_than_the_book_is_refused(book: Book) -> None:
    """Check the advice when no cutoff at all could fit the horizon."""
    with pytest.raises(
        ValueError, match=r"The book spans only 2023-01-01 to 2024-12-01: use a shorter horizon\.$"
    ):
        backtest(Recommender(), book, [CUTOFF], horizon="800D", progress=False)


def test_parameter_errors(book: Book) -> None:
    """Check that bad parameters are refused in scikit-learn's wording."""
    rec = Recommender()
    with pytest.raises(
        ValueError,
        match=r"^The 'k' parameter of backtest must be an int in the range \[1, inf\)\. "
        r"Got 0 instead\.$",
    ):
        backtest(rec, book, [CUTOFF], k=0)
    with pytest.raises(
        ValueError,
        match=r"^The 'segments' parameter of backtest must be None or a column of the clients",
    ):
        backtest(rec, book, [CUTOFF], horizon="90D", segments="planet")
    with pytest.raises(ValueError, match=r"^The 'cutoffs' parameter of backtest must be a date"):
        backtest(rec, book, [], horizon="90D")
    with pytest.raises(
        ValueError,
        match=r"^The 'recommender' parameter of backtest must be a crosssell Recommender",
    ):
        backtest(object(), book, [CUTOFF], horizon="90D")


def test_progress_off_prints_nothing(book: Book, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that progress=False keeps the terminal quiet."""
    backtest(
        Recommender(scorer=Popularity()),
        book,
        CUTOFF,
        horizon="90D",
        k=1,
        baseline=False,
        n_boot=0,
        progress=False,
    )
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_plots_draw(result: BacktestResult) -> None:
    """Check that each chart draws from a backtest result and returns its figure."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crosssell.evaluation.plots import plot_calibration, plot_gain, plot_suppression

    try:
        fig = result.plot(metrics=["precision", "recall"])
        assert [a.get_title() for a in fig.axes] == ["precision@k", "recall@k"]
        assert plot_gain(result).axes[0].get_title() == "cumulative gain"
        offers = result.offers
        propensity = offers[Columns.propensity].clip(0, 1)
        assert plot_calibration(propensity, offers["added"]).axes
        log = pd.DataFrame({Columns.rule: ["open_complaint", "contact_cap", "open_complaint"]})
        bars = plot_suppression(log, offers).axes[0]
        assert [t.get_text() for t in bars.get_yticklabels()] == [
            "open_complaint",
            "contact_cap",
            "offered",
        ]
        with pytest.raises(ValueError, match="must name metrics of the result"):
            result.plot(metrics=["accuracy"])
    finally:
        plt.close("all")


def _pop_or_rich_book() -> Book:
    """POP: six holders at the cutoff, value 1; RICH and OTHER: three each, values 1000 and 10."""
    rows = [(f"C{i}", "POP", "2024-01-01", 1.0) for i in range(6)]
    rows += [(f"C{i}", "RICH", "2024-01-01", 1000.0) for i in range(6, 9)]
    for i in range(9, 12):
        rows.append((f"C{i}", "OTHER", "2024-01-01", 10.0))
        rows.append((f"C{i}", "POP", "2024-09-01", 1.0))
    rows.append(("C0", "OTHER", "2025-02-01", 10.0))
    return Book.from_frames(contracts=pd.DataFrame(rows, columns=[C, P, S, V]))


def _firsts(result: BacktestResult, model: str) -> pd.Series:
    offers = result.offers[result.offers[Columns.model] == model]
    return offers[offers[Columns.rank] == 1].set_index(C)[P]


def test_popularity_baseline_ranks_by_raw_popularity() -> None:
    """Check that the built-in baseline ranks by holders at the cutoff, not by holders x value."""
    # POP is held by six clients and is cheap, RICH by three and dear; POP is taken later.
    # RICH and OTHER tie on three holders: the tie goes by product id, never by value.
    res = backtest(
        Recommender(scorer=Popularity()),
        _pop_or_rich_book(),
        ["2024-06-30"],
        "180D",
        k=1,
        progress=False,
    )
    firsts = _firsts(res, "popularity")
    assert firsts[[f"C{i}" for i in range(9, 12)]].tolist() == ["POP"] * 3
    assert firsts[[f"C{i}" for i in range(6)]].tolist() == ["OTHER"] * 6


@pytest.mark.parametrize("max_per_family", [None, 5], ids=["compiled", "numpy"])
def test_baseline_ranks_by_holders_and_the_model_by_value_on_both_paths(
    max_per_family: int | None,
) -> None:
    """Check that baseline lists go by holders then id, the model's by value, on either path."""
    # max_per_family sends selection down the numpy path; every product is its own family here
    rec = Recommender(scorer=Popularity(), max_per_family=max_per_family)
    res = backtest(rec, _pop_or_rich_book(), ["2024-06-30"], "180D", k=3, n_boot=0, progress=False)
    offers = res.offers
    base = offers[offers[Columns.model] == "popularity"]
    holders = {"POP": 6, "RICH": 3, "OTHER": 3}
    for _, lst in base.groupby(C):
        products = lst.sort_values(Columns.rank)[P].tolist()
        assert products == sorted(products, key=lambda q: (-holders[q], q))
    # values are still reported beside a value-blind order
    assert set(base.loc[base[P] == "RICH", V]) == {1000.0}
    model = _firsts(res, "crosssell")
    assert model[[f"C{i}" for i in range(9, 12)]].tolist() == ["RICH"] * 3
    assert model[[f"C{i}" for i in range(6)]].tolist() == ["RICH"] * 6


def _cheap_or_dear_book() -> Book:
    """Four clients hold A and cheap B, one holds A and dear R; X holds A alone and takes B."""
    rows = [(f"D{i}", q, "2024-01-01", 1.0) for i in range(4) for q in ("A", "B")]
    rows += [("D4", "A", "2024-01-01", 1.0), ("D4", "R", "2024-01-01", 1000.0)]
    rows += [("X", "A", "2024-01-01", 1.0), ("X", "B", "2024-09-01", 1.0)]
    rows.append(("D0", "R", "2025-02-01", 1000.0))
    return Book.from_frames(contracts=pd.DataFrame(rows, columns=[C, P, S, V]))


def test_a_popularity_given_as_baseline_ranks_by_raw_popularity() -> None:
    """Check that baseline=Popularity() ranks by holders, like the built-in baseline."""
    res = backtest(
        Recommender(scorer=Popularity()),
        _cheap_or_dear_book(),
        ["2024-06-30"],
        "180D",
        k=1,
        baseline=Popularity(),
        n_boot=0,
        progress=False,
    )
    assert _firsts(res, "baseline")["X"] == "B"
    assert _firsts(res, "crosssell")["X"] == "R"


def test_another_scorer_given_as_baseline_ranks_as_the_model_does() -> None:
    """Check that a baseline scorer other than Popularity keeps propensity x value as priority."""
    from crosssell.scorers import ItemKNN

    book = _cheap_or_dear_book()
    res = backtest(
        Recommender(scorer=Popularity()),
        book,
        ["2024-06-30"],
        "180D",
        k=2,
        baseline=ItemKNN(),
        n_boot=0,
        progress=False,
    )
    offers = res.offers[(res.offers[Columns.model] == "baseline") & (res.offers[C] == "X")]
    # item-kNN scores B above R for X, but R is worth a thousand times more
    scores = offers.set_index(P)[Columns.score]
    assert scores["B"] > scores["R"] > 0
    assert _firsts(res, "baseline")["X"] == "R"


class _NotARecommender:
    """Has the methods backtest calls, but none of a Recommender's fitted state."""

    def __init__(self, scorer: Any = None) -> None:
        self.scorer = scorer

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {"scorer": self.scorer}

    def set_params(self, **params: Any) -> _NotARecommender:
        self.scorer = params.get("scorer", self.scorer)
        return self

    def clone(self) -> _NotARecommender:
        return _NotARecommender(self.scorer)

    def fit(self, book: Book, as_of: Any = None) -> _NotARecommender:
        return self

    def recommend(self, clients: Any, k: int) -> pd.DataFrame:
        return pd.DataFrame(
            {C: ["X"], P: ["B"], Columns.offer_type: ["cross_sell"], Columns.rank: [1]}
        )


def test_popularity_baseline_needs_a_recommender() -> None:
    """Check that a popularity baseline of a look-alike recommender is refused, saying why."""
    args = (_NotARecommender(), _cheap_or_dear_book(), ["2024-06-30"], "180D")
    with pytest.raises(ValueError, match="Got _NotARecommender: pass baseline=False"):
        backtest(*args, k=1, n_boot=0, progress=False)
    res = backtest(*args, k=1, baseline=False, n_boot=0, progress=False)
    assert res.offers[Columns.model].unique().tolist() == ["crosssell"]


def _evaluation_imports() -> dict[str, set[str]]:
    """Evaluation modules each evaluation module imports, anywhere in its file."""
    folder = Path(crosssell.evaluation.__file__).parent
    names = {f.stem for f in folder.glob("*.py") if f.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in names:
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "crosssell.evaluation":
                    found |= {a.name for a in node.names if a.name in names}
                elif node.module.startswith("crosssell.evaluation."):
                    found.add(node.module.split(".")[2])
        graph[name] = found - {name}
    return graph


def test_evaluation_modules_import_in_one_direction() -> None:
    """Check that no evaluation module imports one that imports it back, even inside a function."""
    graph = _evaluation_imports()
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {name for name, needs in graph.items() if name not in done and needs <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready
    assert graph["plots"].isdisjoint({"backtest", "calibration"})


def test_old_report_address_still_works_with_a_deprecation_warning() -> None:
    """Check that crosssell.evaluation.report is the page function, and says where it went."""
    import crosssell as cs

    with pytest.warns(DeprecationWarning, match="use crosssell.report"):
        old = cs.evaluation.report
    assert old is cs.report


# ------------------------------------------------------------------------------ availability


def test_backtest_never_offers_a_product_launched_after_the_cutoff() -> None:
    """Check that a product first sold after the cutoff is not offered nor counted in coverage."""
    contracts = pd.DataFrame(
        {
            C: ["C1", "C2", "C2", "C3", "C1", "C3"],
            P: ["P1", "P1", "P2", "P2", "NEW", "NEW"],
            S: ["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01", "2024-08-01", "2024-08-01"],
        }
    )
    book = Book.from_frames(contracts=contracts)
    result = backtest(
        Recommender(scorer=Popularity(), k=3),
        book,
        [CUTOFF],
        "32D",
        k=(3,),
        n_boot=0,
        baseline=False,
        progress=False,
    )
    assert "NEW" not in set(result.offers[P])
    # C1 is offered P2 and C3 P1: both products available at the cutoff are offered
    m = result.metrics
    cov = m[(m["metric"] == "coverage") & (m[Columns.offer_type] == "all")]["value"]
    assert cov.tolist() == [1.0]


def test_progress_bar_is_the_text_bar_without_ipywidgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that without ipywidgets the bar is tqdm's text bar, which never warns in Jupyter."""
    import importlib.util

    import tqdm.std

    from crosssell.evaluation import _common

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name)
    )
    bar = _common.progress_bar(range(2), disable=True)
    assert type(bar) is tqdm.std.tqdm
