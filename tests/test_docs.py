"""Tests of the documentation: its code runs, its notebooks run, and the site builds strictly.

The Python blocks of the guide pages need nothing beyond crosssell and run everywhere. Running the
notebooks and building the site need the ``docs`` extra (and ``mkdocs-jupyter`` for the site) and
are skipped cleanly without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((DOCS / "tutorials").glob("*.ipynb"))
# Pages written alongside the guide by their own authors, and the generated API pages, hold no
# runnable walk-through.
NOT_WALKED = {"spark.md", "evaluation-online-retail.md"}
# Extras a page may need; without them the rest of that page is skipped, not failed.
OPTIONAL = {"fastapi", "httpx", "starlette", "uvicorn", "matplotlib"}

FENCE = re.compile(
    r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)


def guide_pages() -> list[Path]:
    return sorted(
        p
        for p in DOCS.rglob("*.md")
        if p.name not in NOT_WALKED and "api" not in p.relative_to(DOCS).parts
    )


def snippets(text: str) -> list[tuple[str, str | None]]:
    """Return each ``python`` block with the ``text`` block right after it (its printed output)."""
    blocks = list(FENCE.finditer(text))
    out: list[tuple[str, str | None]] = []
    for i, block in enumerate(blocks):
        if block.group("lang") != "python":
            continue
        expected = None
        if i + 1 < len(blocks):
            nxt = blocks[i + 1]
            between = text[block.end() : nxt.start()]
            if nxt.group("lang") == "text" and not between.strip():
                expected = nxt.group("body")
        out.append((block.group("body"), expected))
    return out


def normalise(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines() if line.strip()]


def missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.mark.parametrize("page", guide_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_snippets_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that every Python block of a page runs and prints the output shown below it."""
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        # Charts are drawn off screen; pages never show a window.
        matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, (code, expected) in enumerate(snippets(page.read_text(encoding="utf-8")), 1):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            # The pages show warnings on purpose (a DataWarning is part of the story); they
            # must not fail the run.
            warnings.simplefilter("ignore")
            try:
                exec(compile(code, f"{page.name}[{number}]", "exec"), namespace)
            except ModuleNotFoundError as exc:
                if exc.name not in OPTIONAL:
                    raise
                pytest.skip(f"{page.relative_to(DOCS)} needs {exc.name} from block {number} on")
            except Exception as exc:  # pragma: no cover - the message is the test's output
                pytest.fail(f"{page.relative_to(DOCS)}, block {number} raised {exc!r}:\n{code}")
        if expected is not None:
            assert normalise(printed.getvalue()) == normalise(expected), (
                f"{page.relative_to(DOCS)}, block {number} printed something else:\n"
                f"{printed.getvalue()}"
            )
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook: Path) -> None:
    """Check that a tutorial notebook runs from top to bottom without an error."""
    absent = missing("nbclient", "nbformat", "ipykernel")
    if absent:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(absent)})")
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    with warnings.catch_warnings():
        # The kernel machinery (jupyter_client, zmq) warns about its own internals.
        warnings.simplefilter("ignore")
        client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors


@pytest.mark.slow
def test_site_builds_strictly(tmp_path: Path) -> None:
    """Check that ``mkdocs build --strict`` builds the site without a warning."""
    absent = missing(
        "mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "mkdocs_jupyter"
    )
    if absent:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(absent)})")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert (tmp_path / "site" / "index.html").exists()
