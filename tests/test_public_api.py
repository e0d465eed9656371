"""Every public name resolves, is documented, and has a page in the API reference."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import crosssell

DOCS_API = Path(__file__).resolve().parents[1] / "docs" / "api"


def _public_modules() -> list[str]:
    names = ["crosssell"]
    for info in pkgutil.walk_packages(crosssell.__path__, prefix="crosssell."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()
API_PAGES = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS_API.glob("*.md")))


def _exported(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    return list(getattr(module, "__all__", []))


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_resolves_and_has_a_docstring(module_name: str) -> None:
    """Check that each name a public module exports exists and says what it is."""
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ repeats a name"
    undocumented = []
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which is not there"
        obj = getattr(module, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            undocumented.append(name)
    assert not undocumented, f"{module_name}: no docstring on {undocumented}"


def _documented() -> set[int]:
    """Ids of every object some ``::: target`` line of docs/api renders."""
    shown: set[int] = set()
    for line in API_PAGES.splitlines():
        if not line.startswith("::: "):
            continue
        target = line[4:].strip()
        try:
            module = importlib.import_module(target)
        except ImportError:
            parent, _, name = target.rpartition(".")
            shown.add(id(getattr(importlib.import_module(parent), name)))
            continue
        shown.update(id(getattr(module, name)) for name in getattr(module, "__all__", []))
    return shown


DOCUMENTED = _documented()


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_reaches_the_api_reference(module_name: str) -> None:
    """Check that each exported class and function is rendered by some page of docs/api."""
    module = importlib.import_module(module_name)
    missing = [
        name
        for name in _exported(module_name)
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and id(obj) not in DOCUMENTED
    ]
    assert not missing, f"no page of docs/api renders {module_name}: {missing}"


def test_importing_crosssell_loads_no_stage_until_a_name_is_used() -> None:
    """Check that ``import crosssell`` stays light (no pandas, no recommender) until used."""
    import subprocess
    import sys

    code = (
        "import sys, crosssell\n"
        "heavy = [m for m in ('pandas', 'scipy', 'crosssell.recommender') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "crosssell.Recommender\n"
        "assert 'crosssell.recommender' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_recommender_saves_without_importing_persist_first(tmp_path: Path) -> None:
    """Check that saving works in a fresh process that only used the lazy top-level names."""
    import subprocess
    import sys

    code = (
        "import sys, crosssell as cs\n"
        "rec = cs.Recommender(k=1).fit(cs.datasets.tiny(), '2024-06-30')\n"
        f"rec.save({str(tmp_path / 'model')!r})\n"
        f"assert cs.load({str(tmp_path / 'model')!r}).k == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
