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
OPTIONAL = {"fastapi", "httpx", "starlette", "uvicorn", "matplotlib", "mlflow"}

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
    # A page may point MLflow at a store in its folder; the variables it sets are put back.
    for variable in ("MLFLOW_ALLOW_FILE_STORE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(variable, raising=False)
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
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_tracking_uri(None)


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
def test_every_chart_shows_once_in_a_notebook() -> None:
    """Check that each chart function, run as a notebook cell's value, gives exactly one image."""
    absent = missing("nbclient", "nbformat", "ipykernel", "matplotlib")
    if absent:
        pytest.skip(f"the docs and plot extras are not installed (missing {', '.join(absent)})")
    import nbclient
    import nbformat

    setup = (
        "import crosssell as cs\n"
        "from crosssell.evaluation import plot_gain\n"
        "from crosssell.insights import plot_whitespace, whitespace\n"
        "book = cs.datasets.demo()\n"
        "result = cs.backtest(cs.Recommender(scorer=cs.scorers.Popularity()), book,\n"
        "                     ['2024-12-31'], '90D', k=(1, 3), n_boot=0, progress=False)\n"
        "rec = cs.Recommender().fit(book, '2025-06-30')\n"
        "table = whitespace(rec, by='segment', level='family')"
    )
    charts = ["result.plot()", "plot_gain(result)", "result.plot_reliability()",
              "plot_whitespace(table)"]  # fmt: skip
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup)] + [nbformat.v4.new_code_cell(c) for c in charts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    images = {
        cell.source: sum("image/png" in out.get("data", {}) for out in cell.outputs)
        for cell in nb.cells[1:]
    }
    assert images == dict.fromkeys(charts, 1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the site once, strictly; the tests below read the pages it wrote."""
    absent = missing(
        "mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "mkdocs_jupyter"
    )
    if absent:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(absent)})")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return out


@pytest.mark.slow
def test_site_builds_strictly(site: Path) -> None:
    """Check that ``mkdocs build --strict`` builds the site without a warning."""
    assert (site / "index.html").exists()


def _api_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))


def _api_html(site: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))


# Modules whose public names (their ``__all__``) the API reference must show.
DOCUMENTED = (
    "crosssell",
    "crosssell.account_plan",
    "crosssell.arbitration",
    "crosssell.book",
    "crosssell.candidates",
    "crosssell.columns",
    "crosssell.datasets",
    "crosssell.evaluation",
    "crosssell.exceptions",
    "crosssell.html",
    "crosssell.ids",
    "crosssell.insights",
    "crosssell.matrix",
    "crosssell.persist",
    "crosssell.recommender",
    "crosssell.rules",
    "crosssell.scorers",
    "crosssell.weighting",
)


@pytest.mark.slow
def test_every_public_name_is_in_the_api_reference(site: Path) -> None:
    """Check that each name a public module exports has an entry in the API pages."""
    html = _api_html(site)
    anchors = set(re.findall(r'id="(crosssell[\w.]*)"', html))
    # constants and type aliases have no docstring of their own: a page's table describes them
    tabled = set(re.findall(r"^\| `(\w+)` \|", _api_sources(), re.MULTILINE))
    leaves = {a.rsplit(".", 1)[-1] for a in anchors} | tabled
    absent = []
    for module in DOCUMENTED:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", ()):
            value = getattr(mod, name)
            if isinstance(value, type(sys)):
                continue  # a submodule: its own page lists it
            if name not in leaves:
                absent.append(f"{module}.{name}")
    assert not absent, f"public names missing from docs/api: {absent}"


@pytest.mark.slow
def test_no_private_name_is_rendered_in_the_api_reference(site: Path) -> None:
    """Check that no private name shows in the API pages (a heading, a signature, a base)."""
    html = _api_html(site)
    private = sorted(set(re.findall(r'(?:id|title)="(crosssell[\w.]*\._[A-Za-z]\w*)"', html)))
    assert not private, f"private names rendered in docs/api: {private}"


# Packages an extra installs that nothing imports, because something else loads them at run
# time: the notebook kernel that nbclient starts.
RUNTIME_ONLY = {"ipykernel", "psycopg", "duckdb"}  # duckdb: loaded by duckdb-engine's dialect
# Distribution names that import under another name.
IMPORT_NAMES = {
    "mkdocs-material": "material",
    "mkdocstrings": "mkdocstrings",
    "mkdocs-jupyter": "mkdocs_jupyter",
    "scikit-learn": "sklearn",
    "pytest-timeout": "pytest_timeout",
    "pandas-stubs": "pandas",
    "scipy-stubs": "scipy",
    "mlflow-skinny": "mlflow",
}


def _extras() -> dict[str, list[tuple[str, str]]]:
    """Each extra's requirements of the pyproject as (distribution, lowest version)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out: dict[str, list[tuple[str, str]]] = {}
    for extra, reqs in project["optional-dependencies"].items():
        pairs = []
        for req in reqs:
            found = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(?:>=\s*([\d.]+))?", req)
            assert found, req
            pairs.append((found.group(1), found.group(2) or ""))
        out[extra] = pairs
    return out


def test_every_package_of_an_extra_is_used() -> None:
    """Check that each package an optional extra installs is imported by the code, tests or
    benchmarks (or run by a tool), so no extra installs something nothing needs."""
    text = (
        "\n".join(
            p.read_text(encoding="utf-8")
            for folder in ("src", "tests", "benchmarks", "docs")
            for p in (ROOT / folder).rglob("*.py")
        )
        + (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
        + (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    )
    unused = []
    for extra, pairs in _extras().items():
        for dist, _ in pairs:
            if dist.startswith("crosssell") or dist in RUNTIME_ONLY:
                continue
            module = IMPORT_NAMES.get(dist, dist.replace("-", "_"))
            used = re.search(rf"(import|from)\s+{re.escape(module)}\b", text) or (
                re.search(rf"\b{re.escape(module)}\b", text) and extra in ("dev", "docs")
            )
            if not used:
                unused.append(f"{extra}: {dist}")
    assert not unused, f"extras install packages nothing uses: {unused}"


def test_versions_quoted_in_the_docs_match_the_pyproject() -> None:
    """Check that a page saying "<package> >= X" says what the pyproject requires."""
    pins = {dist.lower(): low for pairs in _extras().values() for dist, low in pairs if low}
    wrong = []
    for page in DOCS.rglob("*.md"):
        for dist, version in re.findall(
            r"\b([a-z][\w-]*) ?>= ?(\d[\d.]*)", page.read_text("utf-8")
        ):
            if dist.lower() in pins and pins[dist.lower()] != version:
                wrong.append(f"{page.relative_to(DOCS)}: {dist} >= {version}")
    assert not wrong, f"pages disagree with pyproject.toml: {wrong} (pyproject: {pins})"
