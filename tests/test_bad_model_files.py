"""Bad model files, one row each: every one is refused by ``load`` with an ArtifactError.

To add a case, write a function that damages a saved model folder and add a row to ``CASES``
with the words the error must say. Saving tests (file modes, interrupted saves) follow the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import crosssell as cs
from crosssell import persist
from crosssell.exceptions import ArtifactError
from crosssell.scorers import ALS

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, cs.Recommender]:
    book = cs.datasets.demo()
    als = ALS(factors=4, iterations=2, random_state=0, num_threads=1)
    return {
        "knn": cs.Recommender(k=3, scorer=cs.scorers.ItemKNN()).fit(book, AS_OF),
        "als": cs.Recommender(k=3, scorer=als).fit(book, AS_OF),
    }


def _manifest(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((folder / "manifest.json").read_text("utf-8"))
    return out


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """A damage that edits the manifest with ``change``."""

    def damage(folder: Path) -> None:
        manifest = _manifest(folder)
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")

    return damage


def _entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in manifest["arrays"] if a["name"] == name)


def _rewrite_npz(folder: Path, name: str, header_shape: tuple[int, ...], data: bytes) -> None:
    """Store ``data`` under ``name`` behind a header claiming ``header_shape``."""
    with np.load(folder / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    with zipfile.ZipFile(folder / "arrays.npz", "w") as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", "w") as member:
                if key == name:
                    header = {"descr": value.dtype.str, "fortran_order": False}
                    np.lib.format.write_array_header_1_0(member, {**header, "shape": header_shape})
                    member.write(data)
                else:
                    np.lib.format.write_array(member, value)


def _huge_header(folder: Path) -> None:
    """An events column claiming 10**9 rows in both the manifest and the array header."""
    name = "book/events/0/values"
    manifest = _manifest(folder)
    _entry(manifest, name)["shape"] = [10**9]
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    _rewrite_npz(folder, name, (10**9,), b"\0" * 1000)


def _symlink(entry: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        (folder / entry).unlink()
        (folder / entry).symlink_to("/dev/zero")

    return damage


def _set_state(attr: str, value: Any, part: str = "scorer") -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["model"][part]["state"][attr] = value

    return change


def _set_param(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["model"]["scorer"]["params"][name] = value

    return change


def _shrink(name: str) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        entry = _entry(m, name)
        entry["shape"] = [entry["shape"][0] - 1, *entry["shape"][1:]]

    return change


def _nested_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")


def _nested_parameter(m: dict[str, Any]) -> None:
    m["parameters"]["k"] = {"tuple": json.loads("[" * 900 + "]" * 900)}


def _pickle_arrays(folder: Path) -> None:
    (folder / "arrays.npz").write_bytes(b"\x80\x04\x95" + b"\0" * 20)


def _sizes(m: dict[str, Any]) -> None:
    m["sizes"]["products"] = 10**12


def _object_line(m: dict[str, Any]) -> None:
    m["arrays"][0]["dtype"] = "|O"


# (id, model, damage, words the message must hold)
CASES: list[tuple[str, str, Callable[[Path], None], str]] = [
    ("unknown state", "knn", _edit(_set_state("evil_", {"kind": "value", "value": 1})),
     r"unknown state 'evil_' for ItemKNN"),
    ("sizes larger than the ids", "knn", _edit(_sizes),
     r"the saved sizes say 1000000000000 products, but the id list holds 24"),
    ("n_products_ forged", "knn",
     _edit(_set_state("n_products_", {"kind": "value", "value": 10**12}, "fallback")),
     r"fallback\.state\.n_products_ is 1000000000000, expected n_products=24"),
    ("truncated fallback_", "knn", _edit(_shrink("fallback/fallback_")),
     r"fallback_ has shape \[23\], expected \(n_products=24\)"),
    ("truncated gram_", "als", _edit(_shrink("scorer/gram_")),
     r"scorer\.state\.gram_ has shape"),
    ("truncated product_factors_", "als", _edit(_shrink("scorer/product_factors_")),
     r"product_factors_ has shape \[23, 4\], expected \(n_products=24, n_factors=4\)"),
    ("huge shape in manifest and header", "knn", _huge_header,
     r"'book/events/0/values' should hold 4000000000 bytes of data after its header"),
    ("neighbours out of range", "knn", _edit(_set_param("neighbours", -5)),
     r"model\.scorer\.params: The 'neighbours' parameter of ItemKNN must be an int"),
    ("factors out of range", "als", _edit(_set_param("factors", 0)),
     r"The 'factors' parameter of ALS must be an int in the range \[1, inf\)"),
    ("manifest is /dev/zero", "knn", _symlink("manifest.json"),
     r"manifest\.json is not a regular file"),
    ("arrays are /dev/zero", "knn", _symlink("arrays.npz"), r"arrays\.npz is not a regular file"),
    ("manifest nested without end", "knn", _nested_manifest, r"nested too deeply"),
    ("parameter nested without end", "knn", _edit(_nested_parameter), r"nested too deeply"),
    ("pickle as arrays", "knn", _pickle_arrays, r"arrays\.npz holds pickled Python objects"),
    ("object dtype listed", "knn", _edit(_object_line), r"has dtype '\|O'; a saved model holds"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "damage", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_model_file_is_refused(
    models: dict[str, cs.Recommender],
    tmp_path: Path,
    model: str,
    damage: Callable[[Path], None],
    message: str,
) -> None:
    """Check that a damaged or forged model file is refused with an ArtifactError saying why."""
    folder = persist.save(models[model], tmp_path / "model")
    damage(folder)
    with pytest.raises(ArtifactError, match=message) as caught:
        persist.load(folder)
    assert "allow_pickle" not in str(caught.value)


def test_nesting_does_not_depend_on_the_recursion_limit(
    models: dict[str, cs.Recommender], tmp_path: Path
) -> None:
    """Check that a deeply nested parameter is refused where the recursion limit was raised.

    Some libraries (PySpark among them) raise the interpreter's limit on import; the nested
    value must still be refused for its depth, not decoded and handed to the Recommender.
    """
    folder = persist.save(models["knn"], tmp_path / "model")
    _edit(_nested_parameter)(folder)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        with pytest.raises(ArtifactError, match="nested too deeply"):
            persist.load(folder)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("depth", [1, 2, 13, persist._MANIFEST_DEPTH])
def test_nesting_up_to_the_limit_is_counted(depth: int) -> None:
    """Check the nesting count on lists and objects of a known depth, scalars not counted."""
    value: Any = "leaf"
    for level in range(depth):
        value = [value, 1] if level % 2 else {"a": value, "b": [] if level else None}
    assert persist._nesting(value) == depth
    assert persist._nesting({"wide": [1, 2, 3], "deep": value}) == depth + 1
    assert persist._nesting("scalar") == 0


def test_infinite_factors_refused(models: dict[str, cs.Recommender], tmp_path: Path) -> None:
    """Check that an infinite factor is refused at load, not served."""
    folder = persist.save(models["als"], tmp_path / "model")
    name = "scorer/client_factors_"
    with np.load(folder / "arrays.npz") as z:
        factors = z[name].copy()
    factors[0, 0] = np.inf
    _rewrite_npz(folder, name, factors.shape, factors.tobytes())
    manifest = _manifest(folder)
    _entry(manifest, name)["sha256"] = persist._sha256(factors)
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(ArtifactError, match=r"client_factors_ holds NaN or infinite values"):
        persist.load(folder)


def test_forged_size_allocates_nothing(models: dict[str, cs.Recommender], tmp_path: Path) -> None:
    """Check that a header claiming 4 GB over 1 KB of data is refused without allocating it."""
    folder = persist.save(models["knn"], tmp_path / "model")
    _huge_header(folder)
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError):
            persist.load(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20


def test_device_as_model_file(tmp_path: Path) -> None:
    """Check that a model path pointing at /dev/zero is refused, not read without end."""
    link = tmp_path / "model.crosssell"
    link.symlink_to("/dev/zero")
    with pytest.raises(ArtifactError, match=r"the path is not a regular file"):
        persist.load(link)


def test_manifest_over_the_cap(
    models: dict[str, cs.Recommender], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that a manifest larger than the cap is refused unread."""
    folder = persist.save(models["knn"], tmp_path / "model.crosssell")
    monkeypatch.setattr(persist, "_MANIFEST_LIMIT", 1024)
    with pytest.raises(ArtifactError, match=r"manifest\.json is larger than 0 MiB"):
        persist.load(folder)


# ------------------------------------------------------------------------------------ saving
@pytest.mark.parametrize("name", ["model", "model.crosssell"])
def test_files_follow_the_umask(
    models: dict[str, cs.Recommender], tmp_path: Path, name: str
) -> None:
    """Check that a saved model gets the modes the umask gives any other file."""
    old = os.umask(0o027)
    try:
        target = persist.save(models["knn"], tmp_path / name)
    finally:
        os.umask(old)
    if target.is_dir():
        assert target.stat().st_mode & 0o777 == 0o750
        assert (target / "manifest.json").stat().st_mode & 0o777 == 0o640
    else:
        assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("name", ["model", "model.crosssell"])
def test_stale_temporaries_are_removed(
    models: dict[str, cs.Recommender], tmp_path: Path, name: str
) -> None:
    """Check that the next save removes what killed saves of the same target left behind."""
    (tmp_path / f".{name}.dead0001.tmp").write_bytes(b"x" * 100)
    (tmp_path / f".{name}.dead0002.tmp").mkdir()
    (tmp_path / f".{name}.dead0003.tmp.old").mkdir()
    (tmp_path / ".other.dead0004.tmp").write_bytes(b"kept")
    persist.save(models["knn"], tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.dead0004.tmp", name]


def test_a_running_save_is_not_cleaned(models: dict[str, cs.Recommender], tmp_path: Path) -> None:
    """Check that a temporary entry another save still holds is left alone."""
    import fcntl

    busy = tmp_path / ".model.busy0001.tmp"
    with busy.open("wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        persist.save(models["knn"], tmp_path / "model")
        assert busy.exists()


_KILLED_SAVE = """
import os, shutil, sys
import crosssell as cs
from crosssell import persist
rec = cs.Recommender(k=2, scorer=cs.scorers.Popularity()).fit(cs.datasets.demo(), "2025-06-30")
persist.save(rec, sys.argv[1])
def die(*args, **kwargs):
    os._exit(9)
os.replace = die
shutil.rmtree = die
persist.save(rec.set_params(k=3), sys.argv[1])
"""


def test_a_killed_folder_save_leaves_a_model(tmp_path: Path) -> None:
    """Check that a folder save killed at its first rename or removal leaves a model in place."""
    target = tmp_path / "model"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_SAVE, str(target)], env=env, check=False, timeout=300
    )
    assert done.returncode == 9
    assert persist.load(target).k in (2, 3)
    persist.save(persist.load(target), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
