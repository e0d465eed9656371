"""Tests of crosssell.report, the backtest page: one self-contained, escaped HTML page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from crosssell.book import Book
from crosssell.datasets import synthetic_book
from crosssell.evaluation import BacktestResult, TuneResult, backtest, tune
from crosssell.evaluation.calibration import PlattCalibrator
from crosssell.html import report
from crosssell.recommender import Recommender
from crosssell.rules import route_sales
from crosssell.scorers import CoOccurrence, Popularity

pytest.importorskip("matplotlib")

CUTOFFS = ["2024-06-30", "2024-12-31"]
VOID = {"meta", "img", "br", "hr", "input", "link", "col", "source", "wbr", "area", "base"}


class _Checker(HTMLParser):
    """Collect tags, check nesting, and record every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.has_doctype = False

    def handle_decl(self, decl: str) -> None:
        self.has_doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Checker:
    checker = _Checker()
    checker.feed(path.read_text(encoding="utf-8"))
    checker.close()
    return checker


@pytest.fixture(scope="module")
def book() -> Book:
    return synthetic_book(300, seed=2)


@pytest.fixture(scope="module")
def result(book: Book) -> BacktestResult:
    rec = Recommender(policy=route_sales())
    return backtest(rec, book, CUTOFFS, "180D", k=(1, 5), segments="segment", n_boot=20)


@pytest.fixture(scope="module")
def tuned(book: Book) -> TuneResult:
    return tune(
        Recommender(),
        book,
        {"scorer": [Popularity(), CoOccurrence()]},
        CUTOFFS,
        horizon="180D",
        metric="ndcg@5",
        search="grid",
    )


def test_report_is_valid_self_contained_html(
    result: BacktestResult, tuned: TuneResult, book: Book, tmp_path: Path
) -> None:
    """Check that the page parses, nests correctly, embeds its charts and loads nothing else."""
    fitted = Recommender(policy=route_sales()).fit(book, CUTOFFS[-1])
    path = report(
        result, tmp_path / "sub" / "backtest.html", tune=tuned, suppressed=fitted.suppressed()
    )
    assert path == tmp_path / "sub" / "backtest.html"
    checker = _parse(path)
    assert checker.has_doctype
    assert checker.errors == []
    assert checker.stack == []
    assert "script" not in checker.tags
    assert {"html", "head", "title", "style", "body", "table", "img"} <= set(checker.tags)
    # metric curves, gain, calibration (the offers' own propensities), suppression, tuning
    assert checker.tags.count("img") == 5
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in checker.urls)
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert "@import" not in text
    assert "url(" not in text
    words = " ".join(checker.text)
    for heading in ("Summary", "Charts", "Upsell and cross-sell", "Folds", "Tuning"):
        assert heading in words
    assert "By segment" in words
    assert [p.name for p in path.parent.iterdir()] == ["backtest.html"]


def test_text_is_escaped(result: BacktestResult, tmp_path: Path) -> None:
    """Check that a title holding markup comes out as text, never as a tag."""
    title = '<script>alert("x")</script> & <b>co</b>'
    path = report(result, tmp_path / "r.html", title=title)
    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "<b>co</b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in text
    checker = _parse(path)
    assert "script" not in checker.tags
    assert "b" not in checker.tags
    assert title in "".join(checker.text)


def test_summary_figures_appear(result: BacktestResult, tmp_path: Path) -> None:
    """Check that the page shows the backtest's averaged figures and every cutoff."""
    text = report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    summary = result.summary()
    ndcg = summary[(summary["metric"] == "ndcg") & (summary["k"] == 5)]
    assert f"{ndcg['crosssell'].iloc[0]:.3f}" in text
    assert f"{ndcg['popularity'].iloc[0]:.3f}" in text
    for cutoff in CUTOFFS:
        assert cutoff in text


def test_calibrator_curve_and_replacement(result: BacktestResult, tmp_path: Path) -> None:
    """Check that a given calibrator is named on the page and that a rewrite replaces the file."""
    offers = result.offers[result.offers["model"] == "crosssell"]
    calibrator = PlattCalibrator().fit(
        offers["score"].to_numpy(float), offers["added"].to_numpy(float)
    )
    path = tmp_path / "r.html"
    path.write_text("old", encoding="utf-8")
    report(result, path, calibration=calibrator)
    text = path.read_text(encoding="utf-8")
    assert "PlattCalibrator" in text
    assert "Expected calibration error" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_wrong_inputs_are_refused(result: BacktestResult, tmp_path: Path) -> None:
    """Check that a result or tuning of the wrong type is refused with the expected type named."""
    with pytest.raises(TypeError, match="must be a BacktestResult"):
        report(pd.DataFrame(), tmp_path / "r.html")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a TuneResult"):
        report(result, tmp_path / "r.html", tune=result)  # type: ignore[arg-type]
    assert not (tmp_path / "r.html").exists()
