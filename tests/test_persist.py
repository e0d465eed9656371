"""Tests of crosssell.persist: exact round trips, refusals of bad files, atomic saves."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell import persist
from crosssell.arbitration import IsotonicCalibrator, PlattCalibrator
from crosssell.exceptions import ArtifactError, NotFittedError, ScoringOnlyError
from crosssell.rules import FunctionRule, GroupHeld, route_sales
from crosssell.scorers import ALS, BPR, Blend, CoOccurrence, ItemKNN, Popularity, Ranker
from crosssell.weighting import LogValue, Recency

AS_OF = "2025-06-30"


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def book() -> cs.Book:
    return cs.datasets.demo()


@pytest.fixture(scope="module")
def int_book() -> cs.Book:
    """The demo book with integer client and product ids, a parent hierarchy and extra columns."""
    f = cs.datasets.demo_frames()
    pid = {p: 100 + i for i, p in enumerate(f["products"]["product_id"])}

    def client_int(s: pd.Series) -> pd.Series:
        return s.str[1:].astype("int64")

    k = f["contracts"]
    k = k.assign(client_id=client_int(k["client_id"]), product_id=k["product_id"].map(pid))
    p = f["products"]
    p = p.assign(
        product_id=p["product_id"].map(pid),
        requires=[tuple(pid[x] for x in t) for t in p["requires"]],
        excludes=[tuple(pid[x] for x in t) for t in p["excludes"]],
    )
    c = f["clients"]
    parent = pd.array([pd.NA] * len(c), dtype="Int64")
    parent[1:4] = 1
    c = c.assign(
        client_id=client_int(c["client_id"]),
        parent_id=parent,
        rating=np.linspace(0.0, 1.0, len(c)),
        grade=pd.Categorical(["a", "b"] * (len(c) // 2)),
        meta=[{"x": 1}] * len(c),
    )
    e = f["events"]
    # product ids become ints; family names stay text: a column mixing both
    mixed = pd.Series([pid.get(x, x) for x in e["product_id"]], dtype=object)
    e = e.assign(client_id=client_int(e["client_id"]), product_id=mixed)
    return cs.Book.from_frames(contracts=k, products=p, clients=c, events=e)


def _fit(book: cs.Book, scorer: Any = None, **params: Any) -> cs.Recommender:
    params.setdefault("policy", route_sales())
    params.setdefault("k", 3)
    return cs.Recommender(scorer=scorer, **params).fit(book, AS_OF)


@pytest.fixture(scope="module")
def rec(book: cs.Book) -> cs.Recommender:
    return _fit(book)


@pytest.fixture
def saved(rec: cs.Recommender, tmp_path: Path) -> Path:
    """A model saved as a folder, for tests that damage its files."""
    return persist.save(rec, tmp_path / "model")


def _assert_same_model(a: cs.Recommender, b: cs.Recommender) -> None:
    pd.testing.assert_frame_equal(a.recommend(), b.recommend())
    pd.testing.assert_frame_equal(a.suppressed(), b.suppressed())
    log = a.suppressed()
    clients = a.book_.client_ids.external[:2].tolist() + log[cs.Columns.client].head(2).tolist()
    products = a.book_.product_ids.external[:3].tolist()
    for client in clients:
        for product in products:
            assert a.why_not(client, product) == b.why_not(client, product)


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "arrays.npz") as z:
        return {k: z[k] for k in z.files}


def _manifest(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((folder / "manifest.json").read_text("utf-8"))
    return out


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "scorer",
    [
        Popularity(by="segment"),
        CoOccurrence(measure="lift"),
        ItemKNN(neighbours=10),
        ALS(factors=8, iterations=3, random_state=0, num_threads=1),
        BPR(factors=8, iterations=5, random_state=0, num_threads=1),
        Blend([(CoOccurrence(), 0.6), (ItemKNN(neighbours=5), 0.4)], method="rank"),
    ],
    ids=lambda s: type(s).__name__,
)
def test_round_trip_every_scorer(book: cs.Book, scorer: Any, tmp_path: Path) -> None:
    """Check that a loaded model gives exactly the saved one's offers, log and answers."""
    rec = _fit(book, scorer)
    back = persist.load(persist.save(rec, tmp_path / "model.crosssell"))
    _assert_same_model(rec, back)
    assert type(back.scorer_) is type(rec.scorer_)
    assert _params_of(back.scorer) == _params_of(rec.scorer)


def _params_of(value: Any) -> Any:
    """Parameters as plain values, a Blend's parts opened up, so they compare by value."""
    if hasattr(value, "get_params"):
        return (type(value).__name__, _params_of(value.get_params(deep=False)))
    if isinstance(value, dict):
        return {k: _params_of(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_params_of(v) for v in value]
    return value


def test_round_trip_default_scorer_folder_and_zip(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that the folder and the zip forms load into the same model."""
    folder = persist.save(rec, tmp_path / "model")
    archive = persist.save(rec, tmp_path / "model.zip")
    assert folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "manifest.json"]
    assert zipfile.is_zipfile(archive)
    for path in (folder, archive):
        back = persist.load(path)
        _assert_same_model(rec, back)
        assert back.propensity_ == rec.propensity_


def test_round_trip_keeps_the_book(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that the rebuilt Book holds the same ids, tables and build info."""
    back = persist.load(persist.save(rec, tmp_path / "model")).book_
    book = rec.book_
    assert back.client_ids == book.client_ids
    assert back.product_ids == book.product_ids
    assert back.schema == book.schema
    assert back.info == book.info
    for table in ("product_table", "client_table", "event_table", "_contracts", "rejected"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(book, table))
    assert not back.contract_arrays.start.flags.writeable


def test_int_ids_stay_int(int_book: cs.Book, tmp_path: Path) -> None:
    """Check that integer ids, nullable parents and mixed event columns come back exactly."""
    rec = _fit(int_book, policy=route_sales().with_rules(GroupHeld()))
    back = persist.load(persist.save(rec, tmp_path / "model.crosssell"))
    _assert_same_model(rec, back)
    offers = back.recommend()
    assert offers[cs.Columns.client].dtype == np.int64
    assert offers[cs.Columns.product].dtype == np.int64
    assert back.book_.client_ids.dtype == np.int64
    pd.testing.assert_frame_equal(back.book_.event_table, int_book.event_table)
    pd.testing.assert_frame_equal(back.book_.product_table, int_book.product_table)
    assert str(back.book_.client_table[cs.Columns.parent].dtype) == "Int64"


def test_str_ids_stay_str(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that text ids come back as text of the same dtype."""
    back = persist.load(persist.save(rec, tmp_path / "model"))
    assert back.book_.client_ids.dtype == rec.book_.client_ids.dtype
    assert back.recommend()[cs.Columns.client].tolist()[:3] == ["C0001"] * 3


def test_unsaveable_extra_columns_are_dropped_with_a_note(
    int_book: cs.Book, tmp_path: Path
) -> None:
    """Check that extra columns the format cannot hold are dropped and named in the notes."""
    path = persist.save(_fit(int_book), tmp_path / "model")
    notes = persist.read_manifest(path)["notes"]
    assert any("'grade'" in n for n in notes)
    assert any("'meta'" in n for n in notes)
    columns = persist.load(path).book_.client_table.columns
    assert "rating" in columns
    assert "grade" not in columns


@pytest.mark.parametrize(
    "calibrator",
    [
        PlattCalibrator.from_dict({"method": "platt", "a": 3.0, "b": -2.0}),
        IsotonicCalibrator.from_dict(
            {"method": "isotonic", "x": [0.0, 0.5, 2.0], "y": [0.0, 0.3, 0.9]}
        ),
    ],
    ids=["platt", "isotonic"],
)
def test_calibrator_round_trip(book: cs.Book, calibrator: Any, tmp_path: Path) -> None:
    """Check that a fitted calibrator is saved and used again for the propensities."""
    rec = _fit(book, calibrator=calibrator)
    back = persist.load(persist.save(rec, tmp_path / "model.crosssell"))
    assert type(back.calibrator) is type(calibrator)
    assert back.calibrator.to_dict() == calibrator.to_dict()
    assert back.propensity_ is back.calibrator
    _assert_same_model(rec, back)


def test_parameters_round_trip(book: cs.Book, tmp_path: Path) -> None:
    """Check that weightings, levers and other parameters come back equal."""
    rec = _fit(
        book,
        CoOccurrence(),
        weighting=Recency(half_life="180D") * LogValue(),
        levers={"CRM": 2.0, "ERP-1": 0.5},
        max_per_family=1,
        cold_start="global",
        batch_size=128,
    )
    back = persist.load(persist.save(rec, tmp_path / "model"))
    got, want = back.get_params(deep=False), rec.get_params(deep=False)
    for name in ("weighting", "levers", "max_per_family", "cold_start", "batch_size", "k"):
        assert got[name] == want[name], name
    assert back.policy == rec.policy
    _assert_same_model(rec, back)


def test_tuple_weighting_round_trip(book: cs.Book, tmp_path: Path) -> None:
    """Check that a tuple of weighting names comes back as the same tuple."""
    rec = _fit(book, CoOccurrence(), weighting=("recency", "value"), policy=None)
    back = persist.load(persist.save(rec, tmp_path / "model"))
    assert back.weighting == ("recency", "value")
    assert back.matrix_.weighting == rec.matrix_.weighting
    _assert_same_model(rec, back)


def test_manifest_contents(rec: cs.Recommender, saved: Path) -> None:
    """Check that the manifest names the format, version, sizes, schema and every array."""
    m = persist.read_manifest(saved)
    assert m["format"] == persist.FORMAT_NAME
    assert m["format_version"] == persist.FORMAT_VERSION
    assert m["library_version"] == cs.__version__
    assert m["as_of"] == "2025-06-30T00:00:00"
    assert m["sizes"] == {
        "clients": 500,
        "products": 24,
        "contracts": len(rec.book_.contract_arrays),
        "events": len(rec.book_.event_table),
    }
    assert m["schema"] == rec.book_.schema.to_dict()
    assert m["parameters"]["policy"]["rules"][0] == {
        "class": "AlreadyHeld",
        "params": {"name": "already_held", "allow_seat_expansion": False},
    }
    stored = _arrays(saved)
    assert {a["name"] for a in m["arrays"]} == set(stored)
    assert all(a.dtype != object for a in stored.values())


def test_policy_given_at_load_replaces_the_saved_one(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that load(policy=...) uses the given policy, user rules included."""
    mine = route_sales().with_rules(
        FunctionRule(name="nobody", kind="contact", func=lambda ctx: np.ones(ctx.n_clients, bool))
    )
    back = persist.load(persist.save(rec, tmp_path / "model"), policy=mine)
    assert back.policy is mine
    assert back.recommend().empty


def test_save_then_overwrite(rec: cs.Recommender, book: cs.Book, tmp_path: Path) -> None:
    """Check that saving again over a model replaces it, in both forms."""
    other = _fit(book, Popularity(), k=1)
    for name in ("model", "model.crosssell"):
        persist.save(rec, tmp_path / name)
        persist.save(other, tmp_path / name)
        assert persist.load(tmp_path / name).k == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.crosssell"]


def test_save_refuses_a_folder_that_is_not_a_model(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that an existing folder without a manifest is left alone."""
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "letter.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="not a saved model exists there"):
        persist.save(rec, folder)
    assert (folder / "letter.txt").read_text() == "keep me"


def test_save_unfitted_raises(tmp_path: Path) -> None:
    """Check that saving an unfitted Recommender raises NotFittedError."""
    with pytest.raises(NotFittedError, match="not fitted yet"):
        persist.save(cs.Recommender(), tmp_path / "model")


def test_load_missing_path(tmp_path: Path) -> None:
    """Check that a missing path raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError, match="No saved model"):
        persist.load(tmp_path / "nothing.crosssell")


# ------------------------------------------------------------------------------------- faults
def test_function_rule_cannot_be_saved(book: cs.Book, tmp_path: Path) -> None:
    """Check that a FunctionRule makes save fail up front, naming the rule and the way out."""
    policy = route_sales().with_rules(
        FunctionRule(
            name="vip_only", kind="suitability", func=lambda ctx: np.zeros(ctx.n_clients, bool)
        )
    )
    rec = _fit(book, CoOccurrence(), policy=policy)
    with pytest.raises(ArtifactError, match=r"'vip_only' \(FunctionRule\).*policy=\.\.\.") as err:
        persist.save(rec, tmp_path / "model.crosssell")
    assert "without('vip_only')" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    rec.set_params(policy=policy.without("vip_only"))
    back = persist.load(persist.save(rec, tmp_path / "model.crosssell"), policy=policy)
    rec.set_params(policy=policy)
    pd.testing.assert_frame_equal(back.recommend(), rec.recommend())


def test_truncated_zip(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that a truncated zip file is refused as not a readable zip."""
    path = persist.save(rec, tmp_path / "model.crosssell")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ArtifactError, match="not a readable zip archive"):
        persist.load(path)


def test_flipped_byte(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that one flipped byte inside the arrays is detected."""
    path = persist.save(rec, tmp_path / "model.crosssell")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"damaged|checksum|corrupt"):
        persist.load(path)


def test_checksum_mismatch(saved: Path) -> None:
    """Check that an array whose bytes differ from its checksum is refused."""
    arrays = _arrays(saved)
    name = "book/contracts/value"
    arrays[name] = arrays[name] + 1.0
    np.savez(saved / "arrays.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match=r"'book/contracts/value' does not match its checksum"):
        persist.load(saved)


def test_random_bytes(tmp_path: Path) -> None:
    """Check that a file of random bytes is refused."""
    path = tmp_path / "model.crosssell"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ArtifactError, match="not a readable zip archive"):
        persist.load(path)


def test_pickle_file_renamed(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that a pickle renamed to a model name is refused without being unpickled."""
    path = tmp_path / "model.crosssell"
    path.write_bytes(pickle.dumps({"model": [1, 2, 3]}))
    with pytest.raises(ArtifactError, match="not a readable zip archive"):
        persist.load(path)


def test_pickle_as_arrays_file(saved: Path) -> None:
    """Check that a pickle standing in for arrays.npz is refused."""
    (saved / "arrays.npz").write_bytes(pickle.dumps({"x": np.arange(3)}))
    with pytest.raises(ArtifactError, match="pickled Python objects"):
        persist.load(saved)


def test_object_array_in_npz(saved: Path) -> None:
    """Check that an npz entry holding an object array (pickle inside) is never loaded."""
    arrays: dict[str, Any] = _arrays(saved)
    arrays["book/contracts/value"] = np.array([{"evil": True}], dtype=object)
    np.savez(saved / "arrays.npz", allow_pickle=True, **arrays)
    with pytest.raises(ArtifactError, match=r"'book/contracts/value' holds Python objects"):
        persist.load(saved)


def test_unknown_npz_entry(saved: Path) -> None:
    """Check that an array the manifest does not list is refused."""
    arrays = _arrays(saved)
    arrays["extra/thing"] = np.arange(3)
    np.savez(saved / "arrays.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match=r"does not list: \['extra/thing'\]"):
        persist.load(saved)


def test_unknown_manifest_key(saved: Path) -> None:
    """Check that a manifest with a key this version does not know is refused."""
    manifest = _manifest(saved)
    manifest["surprise"] = 1
    _write_manifest(saved, manifest)
    with pytest.raises(ArtifactError, match=r"unknown keys \['surprise'\]"):
        persist.load(saved)


def test_shape_mismatch(saved: Path) -> None:
    """Check that an array whose shape disagrees with the manifest is refused."""
    manifest = _manifest(saved)
    entry = next(a for a in manifest["arrays"] if a["name"] == "book/events/0/values")
    entry["shape"] = [entry["shape"][0] + 1]
    _write_manifest(saved, manifest)
    with pytest.raises(ArtifactError, match=r"'book/events/0/values' has dtype <i4 and shape"):
        persist.load(saved)


def test_newer_format_version(saved: Path) -> None:
    """Check that a model of a newer format asks to upgrade crosssell."""
    manifest = _manifest(saved)
    manifest["format_version"] = 2
    manifest["library_version"] = "9.0"
    manifest["new_section"] = {}
    _write_manifest(saved, manifest)
    with pytest.raises(
        ArtifactError, match=r"made by crosssell 9\.0 with format 2; .* reads format 1: upgrade"
    ):
        persist.load(saved)


def test_foreign_json(tmp_path: Path) -> None:
    """Check that a folder with some other JSON manifest is not taken for a model."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"format": "other"}')
    (folder / "arrays.npz").write_bytes(b"")
    with pytest.raises(ArtifactError, match="format is 'other'"):
        persist.load(folder)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (("model", "scorer"), "unknown scorer class 'Magic'"),
        (("parameters", "policy", "rules", 0), "unknown rule class 'Magic'"),
    ],
)
def test_unknown_class_name(saved: Path, where: tuple[Any, ...], message: str) -> None:
    """Check that a class name outside crosssell's registries is refused."""
    manifest = _manifest(saved)
    node = manifest
    for key in where:
        node = node[key]
    node["class"] = "Magic"
    _write_manifest(saved, manifest)
    with pytest.raises(ArtifactError, match=message):
        persist.load(saved)


def _replace_array(folder: Path, name: str, array: np.ndarray) -> None:
    """Store ``array`` as ``name`` and update its manifest line, checksum included."""
    arrays = _arrays(folder)
    arrays[name] = array
    np.savez(folder / "arrays.npz", **arrays)  # type: ignore[arg-type]
    manifest = _manifest(folder)
    entry = next(a for a in manifest["arrays"] if a["name"] == name)
    entry["dtype"] = array.dtype.str
    entry["shape"] = list(array.shape)
    entry["sha256"] = hashlib.sha256(np.ascontiguousarray(array).view(np.uint8).data).hexdigest()
    _write_manifest(folder, manifest)


def test_unknown_state_name(saved: Path) -> None:
    """Check that a fitted attribute the scorer's class does not declare is refused."""
    manifest = _manifest(saved)
    manifest["model"]["scorer"]["state"]["evil_"] = {"kind": "value", "value": 1}
    _write_manifest(saved, manifest)
    with pytest.raises(ArtifactError, match=r"model\.scorer: unknown state 'evil_' for Ranker"):
        persist.load(saved)


def test_missing_state_name(saved: Path) -> None:
    """Check that a fitted attribute the scorer's class declares cannot be left out."""
    manifest = _manifest(saved)
    del manifest["model"]["scorer"]["state"]["uses_model_"]
    _write_manifest(saved, manifest)
    with pytest.raises(ArtifactError, match=r"the fitted state lacks \['uses_model_'\]"):
        persist.load(saved)


def test_state_shape_against_schema_refused_before_reading(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that a state array whose shape disagrees with the schema is refused unread."""
    n_products = _manifest(saved)["sizes"]["products"]
    _replace_array(saved, "fallback/fallback_", np.zeros(n_products + 1, dtype=np.float32))

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an array was read")

    monkeypatch.setattr(persist, "_read_arrays", never)
    message = (
        rf"model\.fallback\.state\.fallback_ has shape \[{n_products + 1}\], "
        rf"expected \(n_products={n_products}\)"
    )
    with pytest.raises(ArtifactError, match=message):
        persist.load(saved)


def test_state_dtype_against_schema(saved: Path) -> None:
    """Check that a state array of another dtype than the schema's is refused."""
    n_products = _manifest(saved)["sizes"]["products"]
    _replace_array(saved, "fallback/fallback_", np.zeros(n_products, dtype=np.float64))
    with pytest.raises(ArtifactError, match=r"fallback_ has dtype <f8, expected <f4"):
        persist.load(saved)


def test_array_header_checked_before_reading(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that an array whose header disagrees with the manifest is refused unread."""
    arrays = _arrays(saved)
    arrays["book/contracts/start"] = np.zeros(3, dtype=np.int64)
    np.savez(saved / "arrays.npz", **arrays)  # type: ignore[arg-type]

    read = zipfile.ZipExtFile.read
    bytes_read: dict[str, int] = {}

    def recording(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = read(self, n)
        bytes_read[self.name] = bytes_read.get(self.name, 0) + len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", recording)
    with pytest.raises(
        ArtifactError, match=r"'book/contracts/start' has dtype <i8 and shape \[3\]"
    ):
        persist.load(saved)
    # the .npy header (128 bytes) is read; the data after it is not
    assert bytes_read["book/contracts/start.npy"] <= 128


def test_nan_factors_refused(book: cs.Book, tmp_path: Path) -> None:
    """Check that NaN in saved factors is refused: no fit produces it."""
    rec = _fit(book, ALS(factors=4, iterations=2, random_state=0, num_threads=1))
    folder = persist.save(rec, tmp_path / "model")
    factors = _arrays(folder)["scorer/product_factors_"].copy()
    factors[0, 0] = np.nan
    _replace_array(folder, "scorer/product_factors_", factors)
    with pytest.raises(
        ArtifactError, match=r"model\.scorer\.state\.product_factors_ holds NaN or infinite"
    ):
        persist.load(folder)


def test_undeclared_state_cannot_be_saved(book: cs.Book, tmp_path: Path) -> None:
    """Check that a fitted attribute outside the class's schema stops a save up front."""
    rec = _fit(book, Popularity())
    rec.scorer_.extra_ = 1  # type: ignore[attr-defined]
    with pytest.raises(ArtifactError, match=r"Popularity\.extra_ is not in Popularity's _state_s"):
        persist.save(rec, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_custom_scorer_cannot_be_saved(book: cs.Book, tmp_path: Path) -> None:
    """Check that a scorer class outside crosssell is refused at save time."""

    class MyPopularity(Popularity):
        pass

    rec = _fit(book, MyPopularity(), policy=None)
    with pytest.raises(ArtifactError, match="MyPopularity, not one of crosssell's scorers"):
        persist.save(rec, tmp_path / "model")


# ----------------------------------------------------------------------------------- atomicity
@pytest.mark.parametrize("name", ["model", "model.crosssell"])
def test_failed_save_leaves_no_partial_target(
    rec: cs.Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Check that a failure while writing leaves neither a target nor temporary files."""

    def broken(handle: Any, arrays: Any, method: int) -> None:
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(persist, "_write_npz", broken)
    with pytest.raises(OSError, match="disk full"):
        persist.save(rec, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["model", "model.crosssell"])
def test_failed_save_keeps_the_previous_model(
    rec: cs.Recommender, book: cs.Book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Check that a failed save over an existing model leaves the old model loadable."""
    path = persist.save(rec, tmp_path / name)

    def broken(handle: Any, arrays: Any, method: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(persist, "_write_npz", broken)
    with pytest.raises(OSError, match="disk full"):
        persist.save(_fit(book, Popularity(), k=1), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert persist.load(path).k == rec.k


# ------------------------------------------------------------------------------- column codec
_scalars = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
_cells = st.one_of(_scalars, st.tuples(st.text(max_size=4), st.integers(-5, 5)))


def _same_cell(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=40, deadline=None)
@given(st.lists(_cells, max_size=12))
def test_object_columns_round_trip(cells: list[Any]) -> None:
    """Check that object columns of text, numbers, nulls and tuples come back cell for cell."""
    values = np.empty(len(cells), dtype=object)
    for i, cell in enumerate(cells):
        values[i] = cell
    writer = persist._Writer()
    spec = persist._encode_column(pd.Series(values, dtype=object), "c", writer)
    arrays = {k: np.asarray(v) for k, v in writer.arrays.items()}
    assert all(a.dtype != object for a in arrays.values())
    back = persist._decode_column(spec, "c", persist._Reader(arrays), rows=len(cells))
    assert back.dtype == object
    assert all(_same_cell(a, b) for a, b in zip(cells, back.tolist(), strict=True))


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
@pytest.mark.parametrize("na", [np.nan, pd.NA], ids=["nan", "NA"])
def test_text_columns_keep_their_dtype(storage: str, na: Any) -> None:
    """Check that text columns come back with the same storage, null and values."""
    column = pd.Series(["a", None, "héllo", ""], dtype=pd.StringDtype(storage, na_value=na))
    writer = persist._Writer()
    spec = persist._encode_column(column, "c", writer)
    back = persist._decode_column(spec, "c", persist._Reader(dict(writer.arrays)), rows=4)
    pd.testing.assert_series_equal(back, column)


def test_transactions_book_and_rejected_rows(tmp_path: Path) -> None:
    """Check that a transactions Book keeps its look-back and a collected Book its rejected rows."""
    lines = pd.DataFrame(
        {
            "client_id": [7, 7, 8, 9, 9],
            "product_id": ["A", "B", "A", "A", "C"],
            "timestamp": ["2024-01-05", "2024-03-01", "2024-02-01", "2024-02-03", "2024-04-01"],
            "amount": [12.5, 3.0, 4.0, 1.0, 2.0],
        }
    )
    book = cs.Book.from_transactions(lines, lookback="180D")
    rec = cs.Recommender(CoOccurrence(), k=1).fit(book, "2024-06-01")
    back = persist.load(persist.save(rec, tmp_path / "lines.crosssell"))
    assert back.book_.lookback == pd.Timedelta("180D")
    pd.testing.assert_frame_equal(back.recommend(), rec.recommend())

    contracts = pd.DataFrame(
        {
            "client_id": ["C1", "C2", "C3"],
            "product_id": ["P1", "P1", "P2"],
            "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "end_date": [None, "2023-01-01", None],
        }
    )
    with pytest.warns(cs.DataWarning):
        book = cs.Book.from_frames(contracts, errors="collect")
    rec = cs.Recommender(Popularity(), k=1).fit(book, "2024-06-01")
    back = persist.load(persist.save(rec, tmp_path / "collected"))
    pd.testing.assert_frame_equal(back.book_.rejected, book.rejected)
    assert back.book_.validation_report() == book.validation_report()


def test_availability_window_round_trips(tmp_path: Path) -> None:
    """Check that a saved Book keeps its products' availability window, and offers stay out."""
    contracts = pd.DataFrame(
        {
            "client_id": ["C1", "C2", "C2", "C3"],
            "product_id": ["P1", "P1", "P2", "P3"],
            "start_date": ["2024-01-01", "2024-01-01", "2024-02-01", "2024-09-01"],
        }
    )
    products = pd.DataFrame(
        {"product_id": ["P1", "P2", "P3"], "available_to": [None, "2025-01-01", None]}
    )
    book = cs.Book.from_frames(contracts=contracts, products=products)
    rec = cs.Recommender(scorer=cs.scorers.Popularity(), k=3).fit(book, "2024-06-30")
    back = cs.load(rec.save(tmp_path / "model.crosssell"))
    pd.testing.assert_frame_equal(back.book_.product_table, book.product_table)
    assert back.book_.available("2024-06-30").tolist() == [True, True, False]
    pd.testing.assert_frame_equal(back.recommend(), rec.recommend())
    assert "P3" not in set(back.recommend()["product_id"])


# --------------------------------------------------------------------------------------- Ranker
RANKER: dict[str, Any] = {"n_estimators": 20, "windows": 2, "random_state": 0}


@pytest.fixture(scope="module")
def ranker_rec(book: cs.Book) -> cs.Recommender:
    bases = ("popularity", "itemknn", "cooccurrence", "als")
    return _fit(book, Ranker(base=bases, **RANKER))


@pytest.fixture
def ranker_saved(ranker_rec: cs.Recommender, tmp_path: Path) -> Path:
    """A Ranker model saved as a folder, for tests that damage its files."""
    return persist.save(ranker_rec, tmp_path / "ranker")


def _assert_same_ranker(a: cs.Recommender, b: cs.Recommender, new: dict[str, Any]) -> None:
    """Offers, log, one-client offers (known and new) and contributions are all equal."""
    _assert_same_model(a, b)
    for client in a.book_.client_ids.external[:5].tolist():
        assert a.recommend_one(client) == b.recommend_one(client)
    assert a.recommend_one("NEW", contracts=new) == b.recommend_one("NEW", contracts=new)
    ra, rb = a.scorer_, b.scorer_
    assert isinstance(ra, Ranker)
    assert isinstance(rb, Ranker)
    rows = np.repeat(np.arange(min(4, ra.n_clients_)), ra.n_products_)
    products = np.tile(np.arange(ra.n_products_), min(4, ra.n_clients_))
    pd.testing.assert_frame_equal(
        ra.contributions(rows, products), rb.contributions(rows, products)
    )
    assert rb.feature_names_ == ra.feature_names_
    assert rb.horizon_ == ra.horizon_
    assert rb.windows_ == ra.windows_
    pd.testing.assert_frame_equal(rb.training_, ra.training_)


def _same_context(a: Any, b: Any) -> None:
    """Every array of two feature contexts is equal (the loaded one is rebuilt from the Book)."""
    for name in ("as_of", "horizon", "families", "segments"):
        assert (
            getattr(a, name).equals(getattr(b, name))
            if name in ("families", "segments")
            else (getattr(a, name) == getattr(b, name))
        )
    for name in (
        "product_family",
        "product_tier",
        "product_price",
        "client_segment",
        "popularity",
        "segment_popularity",
        "trend",
        "segment_accept",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.holdings != b.holdings).nnz == 0
    for group in ("client_columns", "client_family", "client_product"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert list(ga) == list(gb)
        for key in ga:
            if group == "client_columns":
                np.testing.assert_array_equal(ga[key], gb[key])
            else:
                np.testing.assert_array_equal(ga[key].toarray(), gb[key].toarray())


def test_ranker_round_trip_on_the_demo_book(ranker_rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that a loaded Ranker model gives exactly the fitted one's offers and explanations."""
    back = persist.load(persist.save(ranker_rec, tmp_path / "ranker.crosssell"))
    new = {"product_id": ["ERP-2", "SEC-3"], "start_date": ["2025-01-01", "2025-02-01"]}
    _assert_same_ranker(ranker_rec, back, new)
    assert [type(b).__name__ for b in back.scorer_.bases_] == [
        "Popularity",
        "ItemKNN",
        "CoOccurrence",
        "ALS",
    ]
    assert type(back.scorer_.calibrator_) is IsotonicCalibrator
    _same_context(ranker_rec.scorer_.context_, back.scorer_.context_)
    assert back.scorer_.context_.book is back.book_
    # a loaded model saves again to the same model
    again = persist.load(persist.save(back, tmp_path / "again"))
    pd.testing.assert_frame_equal(again.recommend(), ranker_rec.recommend())


@pytest.mark.parametrize(
    ("as_of", "has_model"), [("2024-09-01", True), ("2024-07-15", False)], ids=["trees", "none"]
)
def test_ranker_round_trip_on_the_tiny_book(as_of: str, has_model: bool, tmp_path: Path) -> None:
    """Check that a tiny book's Ranker round-trips, with trees and no calibrator or no trees."""
    book = cs.datasets.tiny()
    rec = cs.Recommender(scorer=Ranker(**RANKER), k=2).fit(book, as_of)
    assert (rec.scorer_.model_ is not None) is has_model
    assert rec.scorer_.calibrator_ is None
    back = persist.load(persist.save(rec, tmp_path / "tiny.crosssell"))
    new = {"product_id": ["CRM-1"], "start_date": ["2024-02-01"]}
    _assert_same_ranker(rec, back, new)
    assert back.scorer_.calibrator_ is None
    assert (back.scorer_.model_ is not None) is has_model


def test_ranker_model_is_lightgbm_text(ranker_saved: Path) -> None:
    """Check that the trees are stored as LightGBM's own text model, with their feature count."""
    state = _manifest(ranker_saved)["model"]["scorer"]["state"]
    assert state["model_"]["kind"] == "lightgbm"
    assert state["model_"]["n_features"] == len(state["feature_names_"]["names"])
    assert "context_" not in state
    text = _arrays(ranker_saved)[state["model_"]["text"]].tobytes().decode("ascii")
    assert text.startswith("tree\nversion=")
    assert "objective=binary" in text


def test_ranker_tampered_model_text(ranker_saved: Path) -> None:
    """Check that a model text edited or cut short is refused, never handed to LightGBM as is."""
    name = _manifest(ranker_saved)["model"]["scorer"]["state"]["model_"]["text"]
    text = _arrays(ranker_saved)[name]
    _replace_array(ranker_saved, name, text[: text.size // 2].copy())
    with pytest.raises(
        ArtifactError, match=r"model\.scorer\.state\.model_: the LightGBM model text"
    ):
        persist.load(ranker_saved)


def test_ranker_model_text_of_another_feature_count(ranker_saved: Path) -> None:
    """Check that a model text reading another number of features than the names is refused."""
    name = _manifest(ranker_saved)["model"]["scorer"]["state"]["model_"]["text"]
    text = _arrays(ranker_saved)[name].tobytes().decode("ascii")
    n = len(_manifest(ranker_saved)["model"]["scorer"]["state"]["feature_names_"]["names"])
    edited = text.replace(f"max_feature_idx={n - 1}\n", f"max_feature_idx={n}\n", 1)
    _replace_array(ranker_saved, name, np.frombuffer(edited.encode("ascii"), dtype=np.uint8))
    with pytest.raises(ArtifactError, match=rf"reads {n + 1} features .*; the Ranker has {n}"):
        persist.load(ranker_saved)


def test_ranker_feature_count_disagrees_with_names(ranker_saved: Path) -> None:
    """Check that a manifest whose feature names and model disagree in count is refused."""
    manifest = _manifest(ranker_saved)
    names = manifest["model"]["scorer"]["state"]["feature_names_"]["names"]
    del names[-1]
    _write_manifest(ranker_saved, manifest)
    with pytest.raises(ArtifactError, match=rf"reads {len(names) + 1} features, expected n_featu"):
        persist.load(ranker_saved)


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("evil_", r"unknown state 'evil_' for Ranker; it saves \['bases_'"),
        ("context_", r"unknown state 'context_' for Ranker \(it is rebuilt at load, never"),
    ],
)
def test_ranker_unknown_state_name(ranker_saved: Path, attr: str, message: str) -> None:
    """Check that state the Ranker does not save, or rebuilds at load, is refused in a file."""
    manifest = _manifest(ranker_saved)
    manifest["model"]["scorer"]["state"][attr] = {"kind": "value", "value": 1}
    _write_manifest(ranker_saved, manifest)
    with pytest.raises(ArtifactError, match=message):
        persist.load(ranker_saved)


def test_ranker_trees_under_another_model_parameter(ranker_saved: Path) -> None:
    """Check that LightGBM trees saved under model='hgb' are refused at load."""
    manifest = _manifest(ranker_saved)
    for part in (manifest["model"]["scorer"], manifest["parameters"]["scorer"]):
        part["params"]["model"] = "hgb"
    _write_manifest(ranker_saved, manifest)
    with pytest.raises(ArtifactError, match=r"Ranker\(model='hgb'\) holds LightGBM trees"):
        persist.load(ranker_saved)


def test_ranker_with_user_features_cannot_be_saved(tmp_path: Path) -> None:
    """Check that a Ranker with user features is refused at save, naming the function."""

    def tenure_bucket(ctx: Any, clients: np.ndarray, products: np.ndarray) -> np.ndarray:
        return np.zeros(clients.size)

    ranker = Ranker(features=[("bucket", tenure_bucket)], **RANKER)
    rec = cs.Recommender(scorer=ranker, k=2).fit(cs.datasets.tiny(), "2024-09-01")
    with pytest.raises(
        ArtifactError, match=r"Ranker\.features holds the function 'tenure_bucket', which is user"
    ):
        persist.save(rec, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_ranker_with_sklearn_trees_cannot_be_saved(tmp_path: Path) -> None:
    """Check that a Ranker fitted with scikit-learn's trees is refused, pointing to LightGBM."""
    rec = cs.Recommender(scorer=Ranker(model="hgb", **RANKER), k=2).fit(
        cs.datasets.tiny(), "2024-09-01"
    )
    with pytest.raises(
        ArtifactError,
        match=r"Ranker\.model_: the fitted model is a HistGradientBoostingClassifier; only Light.*"
        r"fit the Ranker with model='lightgbm' to save it",
    ):
        persist.save(rec, tmp_path / "model")
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------------- response and exploring
def test_a_response_scorer_round_trips_to_the_same_scores_and_offers(
    book: cs.Book, tmp_path: Path
) -> None:
    """Check that a saved Response, learned again from the saved Book, scores and offers alike."""
    rec = cs.Recommender(
        scorer=cs.scorers.Response(half_life="180D"), policy=route_sales(), k=2, n_jobs=1
    ).fit(book, AS_OF)
    again = cs.load(rec.save(tmp_path / "response.crosssell"))
    rows = np.arange(len(book.client_ids))
    np.testing.assert_array_equal(again.scorer_.score(rows), rec.scorer_.score(rows))
    pd.testing.assert_frame_equal(again.recommend(), rec.recommend())
    assert again.scorer_.strengths_ == rec.scorer_.strengths_


def test_a_response_updated_past_its_book_is_refused(book: cs.Book, tmp_path: Path) -> None:
    """Check that a Response taught answers its Book lacks is not saved, and says why."""
    rec = cs.Recommender(scorer=cs.scorers.Response(), k=1, n_jobs=1).fit(book, AS_OF)
    news = pd.DataFrame(
        {
            "client_id": ["C0001"],
            "product_id": [book.product_ids.external[0]],
            "date": ["2025-07-01"],
            "type": ["offer_accepted"],
        }
    )
    rec.scorer_.partial_fit(news)
    with pytest.raises(ArtifactError, match="learned answers with partial_fit"):
        rec.save(tmp_path / "updated.crosssell")
    assert not (tmp_path / "updated.crosssell").exists()


def test_an_exploring_recommender_round_trips_to_the_same_offers(
    book: cs.Book, tmp_path: Path
) -> None:
    """Check that exploration's settings are saved and a load explores exactly alike."""
    explore = cs.Explore(share=0.3, seed=5, model=cs.scorers.Response(), samples=50)
    rec = cs.Recommender(scorer=Popularity(), k=2, n_jobs=1, explore=explore).fit(book, AS_OF)
    again = cs.load(rec.save(tmp_path / "explore.crosssell"))
    saved = again.explore
    assert (saved.share, saved.seed, saved.samples) == (0.3, 5, 50)
    assert repr(saved.model) == "Response()"
    pd.testing.assert_frame_equal(again.recommend(), rec.recommend())


def test_a_fitted_explore_model_is_refused(book: cs.Book, tmp_path: Path) -> None:
    """Check that an Explore holding a fitted Response is not saved, and says what to do."""
    fitted = cs.scorers.Response().fit(book.matrix(AS_OF), book)
    rec = cs.Recommender(scorer=Popularity(), k=1, explore=cs.Explore(model=fitted))
    rec.fit(book, AS_OF)
    with pytest.raises(ArtifactError, match="Pass it unfitted"):
        rec.save(tmp_path / "fitted.crosssell")


# --------------------------------------------------------------------------- scoring-only saves
def _fresh_frames() -> dict[str, dict[str, pd.DataFrame]]:
    """Frames of 40 clients of the demo book as they are, and the same clients under new ids."""
    f = cs.datasets.demo_frames()
    ids = f["clients"]["client_id"].iloc[::12].head(40)
    known = {t: f[t][f[t]["client_id"].isin(ids)] for t in ("contracts", "clients", "events")}
    new = {t: v.assign(client_id="N" + v["client_id"].astype(str)) for t, v in known.items()}
    return {"known": known, "new": new}


def _assert_same_on_frames(a: cs.Recommender, b: cs.Recommender) -> None:
    for frames in _fresh_frames().values():
        kw = {"clients": frames["clients"], "events": frames["events"]}
        pd.testing.assert_frame_equal(
            a.recommend_frames(frames["contracts"], **kw),
            b.recommend_frames(frames["contracts"], **kw),
        )
        pd.testing.assert_frame_equal(
            a.suppressed_frames(frames["contracts"], **kw),
            b.suppressed_frames(frames["contracts"], **kw),
        )


@pytest.mark.parametrize(
    "scorer",
    [
        None,
        Popularity(by="segment"),
        CoOccurrence(),
        ItemKNN(),
        ALS(factors=8, iterations=3, random_state=0, num_threads=1),
    ],
    ids=lambda s: "Ranker" if s is None else type(s).__name__,
)
def test_scoring_only_save_scores_fresh_frames_alike(
    book: cs.Book, scorer: Any, tmp_path: Path
) -> None:
    """Check that a scoring-only save holds no event and scores fresh frames exactly alike."""
    rec = _fit(book, scorer)
    path = persist.save(rec, tmp_path / "light.crosssell", scoring_only=True)
    back = persist.load(path)
    assert back.scoring_only_
    assert not rec.scoring_only_
    assert len(back.book_.events) == 0
    assert persist.read_manifest(path)["scoring_only"] is True
    assert path.stat().st_size < persist.save(rec, tmp_path / "whole.crosssell").stat().st_size
    _assert_same_on_frames(rec, back)


def test_scoring_only_ranker_keeps_its_event_features(
    ranker_rec: cs.Recommender, tmp_path: Path
) -> None:
    """Check that a Ranker loaded scoring-only has the fitted feature context, array for array."""
    back = persist.load(persist.save(ranker_rec, tmp_path / "light", scoring_only=True))
    _same_context(ranker_rec.scorer_.context_, back.scorer_.context_)
    _assert_same_on_frames(ranker_rec, back)
    names = {a["name"] for a in _manifest(tmp_path / "light")["arrays"]}
    assert "scorer/context/segment_accept" in names
    assert "scorer/context/client_product/offer_made/data" in names
    # every array loads without pickle
    with np.load(tmp_path / "light" / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype.kind in "biufcmM" for k in z.files)


def test_scoring_only_model_refuses_whole_book_methods(rec: cs.Recommender, tmp_path: Path) -> None:
    """Check that a scoring-only model refuses what reads the events it lacks, and saves light."""
    back = persist.load(persist.save(rec, tmp_path / "light", scoring_only=True))
    client, product = rec.book_.client_ids.external[0], rec.book_.product_ids.external[0]
    calls = {
        "recommend": back.recommend,
        "recommend_one": lambda: back.recommend_one(client),
        "suppressed": back.suppressed,
        "why_not": lambda: back.why_not(client, product),
        "no_offer_report": back.no_offer_report,
        "no_offer_reason": lambda: back.no_offer_reason(client),
    }
    for method, call in calls.items():
        with pytest.raises(ScoringOnlyError, match=rf"Recommender\.{method} reads the fitted Book"):
            call()
    # a NotFittedError, so code that caught that before still catches it
    with pytest.raises(NotFittedError):
        back.recommend()
    with pytest.raises(ArtifactError, match="loaded from a scoring-only save"):
        persist.save(back, tmp_path / "whole")
    again = persist.load(persist.save(back, tmp_path / "again", scoring_only=True))
    _assert_same_on_frames(rec, again)


@pytest.mark.parametrize(
    ("scorer", "explore", "message"),
    [
        (cs.scorers.Response(), None, "a Response learns again from the Book's events"),
        (Ranker(response=True, n_estimators=20), None, "a Ranker with response=True"),
        (Popularity(), cs.Explore(share=0.2), "a model with 'explore'"),
    ],
    ids=["Response", "Ranker-response", "explore"],
)
def test_scoring_only_refuses_models_that_learn_from_events(
    book: cs.Book, scorer: Any, explore: Any, message: str, tmp_path: Path
) -> None:
    """Check that a model that relearns from the events at load is not saved scoring-only."""
    rec = _fit(book, scorer, explore=explore)
    with pytest.raises(ArtifactError, match=message):
        persist.save(rec, tmp_path / "light", scoring_only=True)
    assert not (tmp_path / "light").exists()


@pytest.fixture
def light_saved(rec: cs.Recommender, tmp_path: Path) -> Path:
    """A default (Ranker) model saved scoring-only as a folder, for tests that damage it."""
    return persist.save(rec, tmp_path / "light", scoring_only=True)


def test_scoring_only_event_state_nan_refused(light_saved: Path) -> None:
    """Check that a saved event feature holding NaN is refused."""
    accept = _arrays(light_saved)["scorer/context/segment_accept"].copy()
    accept[0, 0] = np.nan
    _replace_array(light_saved, "scorer/context/segment_accept", accept)
    with pytest.raises(ArtifactError, match=r"context\.segment_accept holds NaN or infinite"):
        persist.load(light_saved)


def test_scoring_only_event_state_shape_refused(light_saved: Path) -> None:
    """Check that a saved event feature of another length than the clients is refused."""
    n_clients = _manifest(light_saved)["sizes"]["clients"]
    name = "scorer/context/client_columns/client_contacts"
    _replace_array(light_saved, name, np.zeros(n_clients + 1))
    message = rf"client_contacts has shape \[{n_clients + 1}\], expected \(n_clients={n_clients}\)"
    with pytest.raises(ArtifactError, match=message):
        persist.load(light_saved)


def test_scoring_only_event_state_missing_or_misplaced(light_saved: Path, saved: Path) -> None:
    """Check that a scoring-only save lacking event state, or a whole save with it, is refused."""
    manifest = _manifest(light_saved)
    del manifest["model"]["scorer"]["context"]["segment_accept"]
    _write_manifest(light_saved, manifest)
    with pytest.raises(ArtifactError, match=r"context lacks the keys \['segment_accept'\]"):
        persist.load(light_saved)
    manifest = _manifest(saved)
    manifest["model"]["scorer"]["context"] = {}
    _write_manifest(saved, manifest)
    with pytest.raises(ArtifactError, match="context lacks the keys"):
        persist.load(saved)


def test_scoring_only_flag_must_be_true(light_saved: Path) -> None:
    """Check that the manifest's scoring_only flag is true when present."""
    manifest = _manifest(light_saved)
    manifest["scoring_only"] = False
    _write_manifest(light_saved, manifest)
    with pytest.raises(ArtifactError, match="scoring_only is False"):
        persist.load(light_saved)
