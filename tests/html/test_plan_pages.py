"""Tests of the account plan's HTML pages: escaped, self-contained, readable on a phone."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import crosssell as cs
from crosssell.account_plan import plan
from crosssell.html import write_plan_pages
from crosssell.html._html import esc, slug

AS_OF = "2025-06-30"
EVIL = "<script>alert(1)</script>"

CLIENTS = pd.DataFrame(
    {
        "client_id": [EVIL, "C2", "C3"],
        "owner": ["Ann <b>&</b> Bob", "Ann <b>&</b> Bob", None],
    }
)
CONTRACTS = pd.DataFrame(
    {
        "client_id": [EVIL, "C2", "C3"],
        "product_id": ["P1", "P2", "P1"],
        "start_date": ["2024-01-01"] * 3,
    }
)
EVENTS = pd.DataFrame(
    {
        "client_id": [EVIL],
        "date": ["2025-06-01"],
        "type": ["complaint_opened"],
        "detail": ['"><img src=x onerror=alert(2)>'],
    }
)


class _Page(HTMLParser):
    """Collect tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    book = cs.Book.from_frames(contracts=CONTRACTS, clients=CLIENTS, events=EVENTS)
    rec = cs.Recommender(scorer=cs.scorers.Popularity()).fit(book, AS_OF)
    return write_plan_pages(plan(rec, capacity=5), tmp_path_factory.mktemp("pages"))


def test_pages_written(pages: list[Path]) -> None:
    """Check that there is one page per manager, one for unowned accounts, and an index."""
    assert [p.name for p in pages] == ["owner-Ann-b-b-Bob.html", "unowned.html", "index.html"]


def test_text_is_escaped_and_no_script(pages: list[Path]) -> None:
    """Check that data with markup shows as text and never becomes a tag or a handler."""
    owner = _parse(pages[0])
    tags = {t for t, _ in owner.tags}
    assert "script" not in tags
    assert "img" not in tags
    assert not any(k.startswith("on") for _, a in owner.tags for k in a)
    text = "".join(owner.text)
    assert EVIL in text
    assert "Ann <b>&</b> Bob: who to call first" in text
    assert '"><img src=x onerror=alert(2)>' in text


def test_self_contained_and_phone_ready(pages: list[Path]) -> None:
    """Check that every page has a viewport, inline CSS with print rules, no external resource."""
    for path in pages:
        parsed = _parse(path)
        metas = [a for t, a in parsed.tags if t == "meta"]
        assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
        assert not any(t == "link" for t, _ in parsed.tags)
        for _, attrs in parsed.tags:
            for key in ("src", "href"):
                value = attrs.get(key) or ""
                assert "://" not in value, (path.name, value)
                assert not value.startswith("//"), (path.name, value)
        source = path.read_text(encoding="utf-8")
        assert "@media print" in source
        assert "@import" not in source


def test_index_links_every_page(pages: list[Path]) -> None:
    """Check that the index links each manager's page and the unowned accounts."""
    index = _parse(pages[-1])
    links = {a.get("href") for t, a in index.tags if t == "a"}
    assert {"owner-Ann-b-b-Bob.html", "unowned.html"} <= links


def test_helpers_escape() -> None:
    """Check that the helpers escape quotes and make safe file names."""
    assert esc("a\"b'c") == "a&quot;b&#x27;c"
    assert slug("../../etc/passwd") == "etc-passwd"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_screenshot_in_a_browser(pages: list[Path], tmp_path: Path) -> None:
    """Check that a real browser renders a manager's page at phone width."""
    shot = tmp_path / "page.png"
    command = [
        str(shutil.which("chromium")),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=420,900",
        pages[0].resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000


def test_pages_of_a_plan_under_constraints_say_what_was_left_out_and_why(
    tmp_path: Path,
) -> None:
    """Check the index compares optimised and greedy plans and a manager page gives reasons."""
    book = cs.datasets.demo()
    rec = cs.Recommender(k=3, scorer=cs.scorers.ItemKNN()).fit(book, cs.datasets.demo_as_of())
    account_plan = plan(rec, capacity=5, constraints={"family_share": {"SEC": 0.3}})
    pages = write_plan_pages(account_plan, tmp_path)
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "The book planned at once" in index
    assert "optimised" in index
    assert "greedy" in index
    assert "What the binding limits cost" in index
    owner_pages = [p for p in pages if p.name.startswith("owner-")]
    texts = [p.read_text(encoding="utf-8") for p in owner_pages]
    assert any("Left out by the book&#x27;s plan" in t or "Left out by the book's plan" in t
               for t in texts)  # fmt: skip
    assert any("is full (5 of 5)" in t for t in texts)
