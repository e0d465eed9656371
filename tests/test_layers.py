"""The import layers: each stage imports only the stages before it, and nothing imports in a circle.

This is the map in docs/concepts/architecture.md, checked. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "crosssell"

# Lowest first. A module may import modules of its own layer or of lower ones, never higher ones.
# The key is the top-level name under crosssell (a module or a package, private ones included).
LAYERS: list[tuple[str, frozenset[str]]] = [
    (
        "foundation",
        frozenset(
            {
                "_version",
                "exceptions",
                "columns",
                "ids",
                "_params",
                "_codec",
                "_calibrators",
                "_sparse",
                "_topk",
                "_kernels",
                "_words",
                "_arrays",
                "_validation",
                "_tables",
                "_html",
                "_progress",
            }
        ),
    ),
    ("book", frozenset({"book", "sql"})),
    ("decisions", frozenset({"decisions"})),
    ("datasets", frozenset({"datasets"})),
    ("weighting", frozenset({"weighting"})),
    ("matrix", frozenset({"matrix"})),
    ("scorers", frozenset({"scorers"})),
    ("candidates", frozenset({"candidates"})),
    ("rules", frozenset({"rules"})),
    ("arbitration", frozenset({"arbitration", "_explain"})),
    ("retention", frozenset({"retention", "_retention_features", "_retention_learners"})),
    ("recommender", frozenset({"recommender", "records", "_fresh"})),
    (
        "evaluation, account plan, insights",
        frozenset({"evaluation", "account_plan", "allocation", "insights"}),
    ),
    ("html", frozenset({"html"})),
    (
        "outer",
        frozenset(
            {"persist", "serve", "spark", "spark_fit", "mlflow", "cli", "__main__", "__init__"}
        ),
    ),
]
LAYER_OF = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}

# The only imports that reach up a layer, each inside one function and each with its reason. A new
# entry needs as good a reason as these.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("crosssell.book", "crosssell.matrix"): (
        "Book.matrix, a convenience for ClientProductMatrix.from_book, as DataFrame.plot is "
        "pandas' door to its plotting layer"
    ),
    ("crosssell.evaluation", "crosssell.html.backtest_page"): (
        "the deprecated alias crosssell.evaluation.report, resolved on first use"
    ),
    ("crosssell.evaluation.backtest", "crosssell.mlflow"): (
        "BacktestResult.log_to_mlflow, a convenience for crosssell.mlflow.log_backtest, as "
        "DataFrame.plot is pandas' door to its plotting layer"
    ),
    ("crosssell.evaluation.tuning", "crosssell.mlflow"): (
        "TuneResult.log_to_mlflow, a convenience for crosssell.mlflow.log_tune, likewise"
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def _resolve(target: str) -> str:
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def imports_of(module: str) -> set[str]:
    """Return the crosssell modules ``module`` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("crosssell"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else _resolve(node.module))
        elif isinstance(node, ast.Import):
            found.update(_resolve(a.name) for a in node.names if a.name.startswith("crosssell"))
    found.discard(module)
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_every_module_has_a_layer() -> None:
    """Check that every module under src/crosssell is placed in one layer of the map."""
    missing = sorted({_top(m) for m in MODULES} - set(LAYER_OF))
    assert not missing, f"Give these modules a layer in tests/test_layers.py: {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module: str) -> None:
    """Check that a module imports only its own layer and the layers below it."""
    rank = LAYER_OF.get(_top(module))
    if rank is None:
        pytest.skip("not placed in a layer (the test above fails for it)")
    higher = sorted(
        t
        for t in imports_of(module)
        if LAYER_OF.get(_top(t), -1) > rank and (module, t) not in ALLOWED_UPWARD
    )
    assert not higher, (
        f"{module} (layer {LAYERS[rank][0]!r}) imports from higher layers: "
        + ", ".join(f"{t} ({LAYERS[LAYER_OF[_top(t)]][0]!r})" for t in higher)
    )


def _package_of(module: str) -> str | None:
    return module.rsplit(".", 1)[0] if "." in module else None


def test_no_import_cycles() -> None:
    """Check that the module graph has no cycle (a package importing its own modules aside)."""
    graph = {
        m: {
            t
            for t in imports_of(m)
            if t != _package_of(m) and not m.startswith(f"{t}.") and (m, t) not in ALLOWED_UPWARD
        }
        for m in MODULES
    }
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_each_allowed_upward_import_is_still_needed() -> None:
    """Check that every entry of ALLOWED_UPWARD still names an import, so the list only shrinks."""
    stale = [pair for pair in ALLOWED_UPWARD if pair[1] not in imports_of(pair[0])]
    assert not stale, f"remove these from ALLOWED_UPWARD: {stale}"


def test_no_private_name_is_imported_across_modules() -> None:
    """Check that no module imports an underscore name defined in another module.

    Shared helpers live in private modules under public names (scikit-learn's manner), so what a
    module keeps to itself stays free to change.
    """
    offenders: list[str] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if not node.module.startswith("crosssell"):
                continue
            for alias in node.names:
                is_module = f"{node.module}.{alias.name}" in MODULES
                if alias.name.startswith("_") and not alias.name.startswith("__") and not is_module:
                    offenders.append(f"{module}: from {node.module} import {alias.name}")
    assert not offenders, "\n".join(offenders)
