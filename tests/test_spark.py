"""Tests of crosssell.spark: scoring on local Spark equals scoring on one machine."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import crosssell as cs
from crosssell import persist
from crosssell.columns import Columns

pytestmark = [
    pytest.mark.spark,
    # pyspark announces on every conversion that it has not certified pandas 3 yet.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

N_CLIENTS = 10_000
LOG_ORDER = [Columns.client, Columns.product, Columns.rule, Columns.kind, Columns.detail, "scope"]


def _needs_spark() -> Any:
    pyspark = pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)")
    return pyspark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local two-core Spark session bound to the loopback interface."""
    _needs_spark()
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("crosssell-tests")
        .config("spark.ui.enabled", "false")
        # The default 1 GiB driver heap ran out while shuffling the 10k-client book: tasks
        # then stalled without failing.
        .config("spark.driver.memory", "3g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """A synthetic book of 10,000 clients with complaints, declines and renewals."""
    return cs.datasets.synthetic_frames(n_clients=N_CLIENTS, seed=11)


@pytest.fixture(scope="module")
def fitted(frames: dict[str, pd.DataFrame]) -> cs.Recommender:
    """The route-sales recommender fitted on one machine."""
    book = cs.Book.from_frames(**frames)
    return cs.Recommender(policy=cs.rules.route_sales(), k=3).fit(book)


@pytest.fixture(scope="module")
def tables(spark: Any, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The same frames as Spark tables; contract dates as DATE, as a warehouse stores them."""
    from pyspark.sql import functions as sf

    contracts = spark.createDataFrame(frames["contracts"])
    for column in (Columns.start, Columns.end):
        contracts = contracts.withColumn(column, sf.to_date(column))
    return {
        "contracts": contracts,
        "clients": spark.createDataFrame(frames["clients"]),
        "events": spark.createDataFrame(frames["events"]),
    }


def _offers_frame(rows: list[Any]) -> pd.DataFrame:
    return pd.DataFrame([r.asDict(recursive=True) for r in rows])


def _sorted(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df.sort_values(by, kind="stable").reset_index(drop=True)


def _assert_same_offers(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = _sorted(got, [Columns.client, Columns.rank])
    want = _sorted(want, [Columns.client, Columns.rank])
    assert len(got) == len(want)
    for column in (Columns.client, Columns.product, Columns.offer_type, Columns.reason):
        assert got[column].astype(object).tolist() == want[column].astype(object).tolist(), column
    assert got[Columns.rank].tolist() == want[Columns.rank].tolist()
    assert got[Columns.cold_start].tolist() == want[Columns.cold_start].tolist()
    for column in (
        Columns.score,
        Columns.propensity,
        Columns.value,
        Columns.expected_value,
        Columns.priority,
    ):
        np.testing.assert_allclose(got[column], want[column], rtol=0, atol=1e-6, err_msg=column)
    for g, w in zip(got[Columns.evidence], want[Columns.evidence], strict=True):
        assert [e[Columns.product] for e in g] == [e[Columns.product] for e in w]
        np.testing.assert_allclose([e["weight"] for e in g], [e["weight"] for e in w], atol=1e-6)


@pytest.fixture(scope="module")
def spark_offers(tables: dict[str, Any], fitted: cs.Recommender) -> dict[int, pd.DataFrame]:
    """Offers scored on Spark with 2 and with 7 client buckets, collected once."""
    from crosssell import spark as cs_spark

    out = {}
    for buckets in (2, 7):
        offers = cs_spark.recommend(
            fitted, tables["contracts"], tables["events"], tables["clients"], buckets=buckets
        )
        assert offers.schema == cs_spark.offers_schema(fitted)
        out[buckets] = _offers_frame(offers.collect())
    return out


@pytest.mark.parametrize("buckets", [2, 7])
def test_offers_equal_single_machine(
    spark_offers: dict[int, pd.DataFrame], fitted: cs.Recommender, buckets: int
) -> None:
    """Check that offers scored on Spark equal recommend() for every client, for any bucketing."""
    got = spark_offers[buckets]
    want = fitted.recommend()
    assert got[Columns.client].nunique() > 0.5 * N_CLIENTS
    assert got[Columns.cold_start].any()
    _assert_same_offers(got, want)


def test_fresh_date_equals_recommend_frames(
    tables: dict[str, Any], frames: dict[str, pd.DataFrame], fitted: cs.Recommender
) -> None:
    """Check that scoring at another date (every client folded in) matches one machine."""
    from crosssell import spark as cs_spark

    as_of = "2025-03-31"
    offers = cs_spark.recommend(
        fitted,
        tables["contracts"],
        tables["events"],
        tables["clients"],
        as_of=as_of,
        k=2,
        buckets=5,
    )
    want = fitted.recommend_frames(
        frames["contracts"],
        clients=frames["clients"],
        events=frames["events"],
        as_of=as_of,
        k=2,
    )
    _assert_same_offers(_offers_frame(offers.collect()), want)


def test_large_arrow_types_give_the_same_offers(
    spark: Any,
    spark_offers: dict[int, pd.DataFrame],
    tables: dict[str, Any],
    fitted: cs.Recommender,
) -> None:
    """Check a session exchanging large Arrow strings and lists scores as the default one."""
    from crosssell import spark as cs_spark

    key = "spark.sql.execution.arrow.useLargeVarTypes"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        offers = cs_spark.recommend(
            fitted, tables["contracts"], tables["events"], tables["clients"], buckets=2
        )
        got = _offers_frame(offers.collect())
    finally:
        spark.conf.set(key, before)
    _assert_same_offers(got, spark_offers[2])


@pytest.mark.parametrize("buckets", [2, 7])
def test_suppressed_equal_single_machine(
    tables: dict[str, Any], fitted: cs.Recommender, buckets: int
) -> None:
    """Check that the suppression log from Spark has exactly the rows of suppressed()."""
    from crosssell import spark as cs_spark

    log = cs_spark.suppressed(
        fitted, tables["contracts"], tables["events"], tables["clients"], buckets=buckets
    )
    got = pd.DataFrame([r.asDict() for r in log.collect()], columns=LOG_ORDER)
    want = fitted.suppressed()
    # Client-level blocks (complaint, churn, do-not-contact) must travel too, not only pairs.
    assert want[Columns.product].isna().any()
    # A catalogue-wide row (every client) must come once, not once per bucket.
    assert want[Columns.client].isna().sum() == 1
    assert log.schema == cs_spark.suppressed_schema(fitted)
    key = LOG_ORDER

    def norm(df: pd.DataFrame) -> pd.DataFrame:
        df = df[key].astype(object).where(df[key].notna(), None)
        return _sorted(df.astype(str), key)

    pd.testing.assert_frame_equal(norm(got), norm(want))


def test_suppressed_clients_get_no_offers(
    spark_offers: dict[int, pd.DataFrame], fitted: cs.Recommender
) -> None:
    """Check that a client blocked as a whole by a rule gets no offer from Spark either."""
    log = fitted.suppressed()
    blocked = set(log.loc[log[Columns.product].isna() & (log["scope"] == "any"), Columns.client])
    assert blocked
    assert not blocked & set(spark_offers[7][Columns.client])


def test_integer_ids_stay_long(spark: Any) -> None:
    """Check that integer client and product ids come back as long, with the same offers."""
    frames = cs.datasets.synthetic_frames(n_clients=300, seed=2)
    products = frames["products"][Columns.product]
    code = pd.Series(np.arange(1, len(products) + 1) * 1_000_000_007, index=products.to_numpy())
    contracts = frames["contracts"].copy()
    contracts[Columns.client] = contracts[Columns.client].str[1:].astype("int64")
    contracts[Columns.product] = code[contracts[Columns.product]].to_numpy()
    catalog = frames["products"].copy()
    catalog[Columns.product] = code.to_numpy()
    catalog[Columns.requires] = [tuple(code[list(r)].tolist()) for r in catalog[Columns.requires]]
    catalog[Columns.excludes] = [tuple(code[list(r)].tolist()) for r in catalog[Columns.excludes]]
    rec = cs.Recommender(k=2).fit(cs.Book.from_frames(contracts, products=catalog))
    from crosssell import spark as cs_spark

    offers = cs_spark.recommend(rec, spark.createDataFrame(contracts), buckets=3)
    schema = offers.schema
    assert schema[Columns.client].dataType.simpleString() == "bigint"
    assert schema[Columns.product].dataType.simpleString() == "bigint"
    _assert_same_offers(_offers_frame(offers.collect()), rec.recommend())


def test_missing_client_column(spark: Any, fitted: cs.Recommender) -> None:
    """Check that a table without the client column is refused on the driver, by name."""
    from crosssell import spark as cs_spark

    df = spark.createDataFrame(pd.DataFrame({"customer": ["C1"], "product_id": ["CRM-1"]}))
    with pytest.raises(cs.SchemaError, match="contracts: the client column 'client_id' is missing"):
        cs_spark.recommend(fitted, df)


def test_bad_buckets(spark: Any, fitted: cs.Recommender, tables: dict[str, Any]) -> None:
    """Check that a bucket count below one gets scikit-learn's parameter message."""
    from crosssell import spark as cs_spark

    with pytest.raises(ValueError, match=r"The 'buckets' parameter of Recommender must be an int"):
        cs_spark.recommend(fitted, tables["contracts"], buckets=0)


def test_unfitted_model_refused() -> None:
    """Check that an unfitted recommender is refused before any Spark work."""
    _needs_spark()
    from crosssell import spark as cs_spark

    with pytest.raises(cs.NotFittedError):
        cs_spark.offers_schema(cs.Recommender())


def test_warehouse_dates_become_datetimes() -> None:
    """Check that Python dates, nulls and 9999-12-31 sentinels become datetime64 values."""
    from crosssell.spark import _as_datetimes

    near = _as_datetimes(pd.Series([dt.date(2024, 1, 31), None], dtype=object))
    assert near.dtype == np.dtype("datetime64[ns]")
    assert near.iloc[0] == pd.Timestamp("2024-01-31")
    assert pd.isna(near.iloc[1])
    far = _as_datetimes(pd.Series([dt.date(2024, 1, 31), dt.date(9999, 12, 31)], dtype=object))
    assert far.iloc[1] == pd.Timestamp("9999-12-31")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Prague", "America/Sao_Paulo"])
def test_arrow_batches_read_as_pandas_udfs_read_them(zone: str) -> None:
    """Check a bucket's Arrow batches become the frame mapInPandas would hand over.

    TIMESTAMP values (UTC instants tagged with the session time zone) become naive wall-clock
    times of that zone, DATE values Python dates, and the batches are joined in order.
    """
    import pyarrow as pa

    from crosssell.spark import _from_arrow

    instants = pd.Series(pd.to_datetime(["2025-06-29 23:30", "2025-01-01 00:00", None], utc=True))
    days = [dt.date(2025, 6, 30), dt.date(9999, 12, 31), None]
    whole = pa.table(
        {
            "when": pa.array(instants, type=pa.timestamp("us", tz=zone)),
            "naive": pa.array(instants.dt.tz_localize(None), type=pa.timestamp("us")),
            "day": pa.array(days, type=pa.date32()),
            "id": pa.array(["C1", None, "C3"]),
        }
    )
    frame = _from_arrow(whole.to_batches(max_chunksize=2))
    wall = instants.dt.tz_convert(zone).dt.tz_localize(None)
    assert frame["when"].tolist() == wall.tolist()
    assert frame["naive"].tolist() == instants.dt.tz_localize(None).tolist()
    assert frame["day"].tolist() == days
    assert frame["id"].tolist()[::2] == ["C1", "C3"]
    assert frame["id"].isna().tolist() == [False, True, False]


def test_model_loaded_once_per_process(spark: Any, fitted: cs.Recommender) -> None:
    """Check that the model is shipped once per session and loaded once per process."""
    from crosssell.spark import _Shipped

    shipped = _Shipped.of(fitted, spark)
    again = _Shipped.of(fitted, spark)
    assert again.name == shipped.name
    assert shipped.name.endswith(".crosssell")
    first = shipped.get()
    assert first is not fitted
    assert shipped.get() is first
    assert again.get() is first


@pytest.mark.parametrize("scorer", [None, "ItemKNN", "Popularity", "CoOccurrence", "ALS"])
def test_shipped_model_is_safe_light_and_scores_the_same(
    frames: dict[str, pd.DataFrame],
    fitted: cs.Recommender,
    scorer: str | None,
    tmp_path: Path,
) -> None:
    """Check that the file sent to workers holds no pickle and no event, and scores the same.

    Fresh frames of clients known at fit and of the same clients under new ids give the same
    offers and suppressed rows from the model a worker loads as from the fitted one.
    """
    from crosssell.spark import _model, _write_model

    rec = fitted
    if scorer is not None:
        rec = cs.Recommender(
            policy=cs.rules.route_sales(), k=3, scorer=getattr(cs.scorers, scorer)()
        ).fit(cs.Book.from_frames(**frames))
    path = tmp_path / "model.crosssell"
    _write_model(rec, path)
    # a copy: save gives the model it saves an id, and the fixture's offers were made without
    whole = persist.save(copy.copy(rec), tmp_path / "whole.crosssell")
    assert path.stat().st_size * 2 < whole.stat().st_size
    assert persist.read_manifest(path)["scoring_only"] is True
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["arrays.npz", "manifest.json"]
        json.loads(z.read("manifest.json"))
        with z.open("arrays.npz") as member, np.load(member, allow_pickle=False) as arrays:
            assert all(arrays[name].dtype.kind in "biufcmM" for name in arrays.files)
    worker = _model(str(path), str(path))
    assert worker.scoring_only_
    assert len(worker.book_.events) == 0
    assert _model(str(path), str(path)) is worker

    ids = frames["clients"][Columns.client].iloc[::250]
    known = {
        t: frames[t][frames[t][Columns.client].isin(ids)]
        for t in ("contracts", "clients", "events")
    }
    new = {
        t: v.assign(**{Columns.client: "N" + v[Columns.client].astype(str)})
        for t, v in known.items()
    }
    for part in (known, new):
        kw = {"clients": part["clients"], "events": part["events"]}
        for explain in (False, True):
            pd.testing.assert_frame_equal(
                worker.recommend_frames(part["contracts"], explain=explain, **kw),
                rec.recommend_frames(part["contracts"], explain=explain, **kw),
            )
        pd.testing.assert_frame_equal(
            worker.suppressed_frames(part["contracts"], **kw),
            rec.suppressed_frames(part["contracts"], **kw),
        )


def test_policy_of_own_code_travels_beside_the_file(
    frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """Check that a policy with a FunctionRule stays out of the file and scores the same."""
    from crosssell.spark import _model, _write_model

    rule = cs.rules.FunctionRule(
        name="odd_rows_only",
        kind="suitability",
        func=lambda ctx: np.arange(ctx.n_clients) % 2 == 0,
    )
    policy = cs.rules.route_sales().with_rules(rule)
    rec = cs.Recommender(policy=policy, k=3, scorer=cs.scorers.ItemKNN()).fit(
        cs.Book.from_frames(**frames)
    )
    path = tmp_path / "model.crosssell"
    _write_model(rec, path)
    assert persist.read_manifest(path)["parameters"]["policy"] is None
    worker = _model(f"{path}-policy", str(path), policy)
    mine = frames["contracts"][frames["contracts"][Columns.client].isin(["C00002", "C00003"])]
    log = rec.suppressed_frames(mine)
    assert "odd_rows_only" in set(log[Columns.rule])
    pd.testing.assert_frame_equal(worker.suppressed_frames(mine), log)
    pd.testing.assert_frame_equal(worker.recommend_frames(mine), rec.recommend_frames(mine))


def test_model_the_safe_format_cannot_hold_travels_with_the_tasks(
    spark: Any, frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """Check that a model without a safe form (trees of scikit-learn) still scores on Spark.

    It cannot be saved without code, so it travels with every task, with a warning that says
    why; the offers are one machine's.
    """
    from crosssell.exceptions import ArtifactError, CrossSellWarning
    from crosssell.spark import recommend

    ids = frames["clients"][Columns.client].iloc[:1500]
    small = {
        t: f[f[Columns.client].isin(ids)] if Columns.client in f else f for t, f in frames.items()
    }
    rec = cs.Recommender(
        policy=cs.rules.route_sales(), k=3, scorer=cs.scorers.Ranker(model="hgb", n_estimators=20)
    ).fit(cs.Book.from_frames(**small))
    with pytest.raises(ArtifactError):
        persist.save(copy.copy(rec), tmp_path / "model")
    tables = {t: spark.createDataFrame(small[t]) for t in ("contracts", "events", "clients")}
    with pytest.warns(CrossSellWarning, match="travels with every task"):
        out = recommend(rec, tables["contracts"], tables["events"], tables["clients"], buckets=2)
    want = rec.recommend_frames(
        small["contracts"], clients=small["clients"], events=small["events"]
    )
    assert len(want) > 0
    _assert_same_offers(_offers_frame(out.collect()), want)


def test_rules_of_other_clients_rows_are_refused(
    spark: Any, frames: dict[str, pd.DataFrame], fitted: cs.Recommender
) -> None:
    """Check that a group rule, which reads a parent's contracts, is refused by name.

    A bucket holds whole clients, not whole groups: the rule would silently block nothing for
    a subsidiary whose parent sits in another bucket.
    """
    from crosssell.spark import recommend, suppressed

    rec = copy.copy(fitted)
    rec.policy = fitted.policy.with_rules(cs.rules.GroupHeld())
    contracts = spark.createDataFrame(frames["contracts"].head(50))
    for run in (recommend, suppressed):
        with pytest.raises(ValueError, match=r"\['group_held'\].*other clients"):
            run(rec, contracts)


def test_import_crosssell_leaves_pyspark_alone() -> None:
    """Check that importing crosssell and crosssell.spark does not import pyspark."""
    code = "import sys, crosssell, crosssell.spark; print('pyspark' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


def test_spark_rows_are_the_offer_records(
    spark_offers: dict[int, pd.DataFrame], fitted: cs.Recommender
) -> None:
    """Check that Spark writes the record Python and HTTP give: same ids, names and labels."""
    got = _sorted(spark_offers[2], [Columns.client, Columns.rank])
    want = _sorted(fitted.records(), [Columns.client, Columns.rank])
    for column in ("id", "name", "description", "valid_from", "valid_until", "accept_label"):
        assert got[column].tolist() == want[column].tolist(), column
    assert got["id"].str.startswith(f"{fitted.model_id_}:").all()


def _pruned_on_one_machine(
    frames: dict[str, pd.DataFrame], as_of: pd.Timestamp, reads: dict[str, int | None]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The documented push-down written with pandas.

    Contracts not ended two days before ``as_of`` and each client's latest ended one; events of
    the types read, within their look-back plus two days.
    """
    contracts, events = frames["contracts"], frames["events"]
    margin = pd.Timedelta(days=2)
    end = pd.to_datetime(contracts[Columns.end])
    ended = end.notna() & (end < as_of - margin)
    latest = contracts[ended].sort_values(Columns.end).groupby(Columns.client).tail(1)
    kept = pd.concat([contracts[~ended], latest], ignore_index=True)
    keep = pd.Series(False, index=events.index)
    for kind, days in reads.items():
        this = events[Columns.type] == kind
        if days is not None:
            this &= pd.to_datetime(events[Columns.date]) >= as_of - pd.Timedelta(days=days) - margin
        keep |= this
    return kept, events[keep]


def test_push_down_equals_same_filter_on_one_machine(
    tables: dict[str, Any], frames: dict[str, pd.DataFrame], fitted: cs.Recommender
) -> None:
    """Check that pruned Spark scoring equals one machine given the same pruned rows."""
    from crosssell import spark as cs_spark

    as_of = pd.Timestamp("2025-03-31")
    reads = {
        "complaint_opened": None,
        "complaint_closed": None,
        "offer_declined": 90,
        "offer_made": 30,
        "churn_signal": 90,
    }
    contracts, events = _pruned_on_one_machine(frames, as_of, reads)
    # the route-sales policy reads so little that most rows stay home
    assert len(contracts) < 0.6 * len(frames["contracts"])
    assert len(events) < 0.1 * len(frames["events"])
    offers = cs_spark.recommend(
        fitted, tables["contracts"], tables["events"], tables["clients"], as_of=as_of, k=2
    )
    got = _offers_frame(offers.collect())
    want = fitted.recommend_frames(
        contracts, clients=frames["clients"], events=events, as_of=as_of, k=2
    )
    # (test_fresh_date_equals_recommend_frames compares the same scoring with every row)
    _assert_same_offers(got, want)


def test_blank_class_is_what_strip_takes() -> None:
    """Check that the push-down's class of blanks is exactly the characters str.strip removes."""
    import re

    from crosssell.spark import _BLANK

    blank = re.compile(_BLANK)
    every = (chr(i) for i in range(0x110000))
    assert {c for c in every if blank.fullmatch(c)} == {
        chr(i) for i in range(0x110000) if chr(i).isspace()
    }


def test_push_down_matches_event_types_as_the_book_strips_them(spark: Any) -> None:
    """Check that events whose type holds blanks around a read type travel, and only those.

    A type that merely contains a read name (``offer_made_by_phone``) stays home; an unreadable
    date or a missing type travels, for the Book to report.
    """
    from crosssell.spark import _prune_events, _Reads

    as_of = pd.Timestamp("2025-06-30")
    recent, old = dt.datetime(2025, 6, 20), dt.datetime(2024, 1, 1)
    rows = [
        ("offer_made", recent),
        ("  offer_made\t", recent),
        ("offer_made\xa0", recent),
        ("\u3000offer_made\n", recent),
        ("offer_made ", old),
        ("offer_made_by_phone", recent),
        ("xoffer_made", recent),
        ("offer made", recent),
        (" complaint_opened", old),
        ("complaint_openedx", old),
        ("email", recent),
        (None, recent),
        ("offer_made", None),
    ]
    events = spark.createDataFrame(
        pd.DataFrame(
            {
                Columns.client: [f"C{i}" for i in range(len(rows))],
                Columns.type: [r[0] for r in rows],
                Columns.date: pd.Series([r[1] for r in rows], dtype="datetime64[us]"),
            }
        )
    )
    reads = _Reads(
        as_of=as_of,
        events={"offer_made": pd.Timedelta(days=30), "complaint_opened": None},
        ended_contracts=False,
    )
    pruned = _prune_events(events, reads, cs.Schema())
    assert pruned is not None
    got = sorted(int(r[Columns.client][1:]) for r in pruned.collect())
    assert got == [0, 1, 2, 3, 8, 11, 12]
    for i, (kind, _) in enumerate(rows):
        # what travels is what the Book reads as a read type, and rows it must judge itself
        wanted = kind is None or kind.strip() in ("offer_made", "complaint_opened")
        assert (i in got) == (wanted and i != 4), (i, kind)


def test_push_down_reads_of_the_policy(fitted: cs.Recommender) -> None:
    """Check the look-backs the rules declare; an undeclared rule of one's own keeps every row."""
    from crosssell.spark import _reads

    as_of = pd.Timestamp("2025-06-30")
    days = pd.Timedelta(days=1)
    reads = _reads(fitted, as_of)
    assert reads.events == {
        "complaint_opened": None,
        "complaint_closed": None,
        "offer_declined": 90 * days,
        "offer_made": 30 * days,
        "churn_signal": 90 * days,
    }
    assert not reads.ended_contracts
    longer = copy.copy(fitted)
    longer.policy = fitted.policy.with_rules(cs.rules.ContactCap(name="cap_90", days=90))
    assert _reads(longer, as_of).events == {**reads.events, "offer_made": 90 * days}
    own = copy.copy(fitted)
    own.policy = fitted.policy.with_rules(lambda ctx: cs.rules.Blocks.empty())
    unknown = _reads(own, as_of)
    assert unknown.events is None
    assert unknown.ended_contracts
    declared = copy.copy(fitted)
    accepted = cs.rules.Reads(events={"offer_accepted": 30 * days}, ended_contracts=True)
    declared.policy = fitted.policy.with_rules(
        cs.rules.FunctionRule(
            name="mine", kind="contact", func=lambda ctx: cs.rules.Blocks.empty(), reads=accepted
        )
    )
    known = _reads(declared, as_of)
    assert known.events == {**reads.events, "offer_accepted": 30 * days}
    assert known.ended_contracts


@pytest.fixture(scope="module")
def long_churn(frames: dict[str, pd.DataFrame]) -> cs.Recommender:
    """Route sales plus a user rule reading churn signals of a year, declared so."""
    year = cs.rules.Reads(events={"churn_signal": pd.Timedelta(days=365)})
    # a bound method of a built-in pickles by reference, so the model ships to the workers
    func = cs.rules.ChurnSignal(name="long_churn", days=365).blocks
    mine = cs.rules.FunctionRule(name="long_churn", kind="suitability", func=func, reads=year)
    policy = cs.rules.route_sales().with_rules(mine)
    return cs.Recommender(policy=policy, k=3).fit(cs.Book.from_frames(**frames))


def test_declared_user_rule_keeps_the_push_down_and_the_offers(
    tables: dict[str, Any], frames: dict[str, pd.DataFrame], long_churn: cs.Recommender
) -> None:
    """Check that a declared user rule keeps pruning on, with the offers of every row."""
    from crosssell import spark as cs_spark
    from crosssell.spark import _reads

    as_of = pd.Timestamp("2025-03-31")
    reads = _reads(long_churn, as_of)
    assert reads.events is not None
    assert reads.events["churn_signal"] == pd.Timedelta(days=365)
    assert not reads.ended_contracts
    declared = {k: None if v is None else v.days for k, v in reads.events.items()}
    contracts, events = _pruned_on_one_machine(frames, as_of, declared)
    assert len(events) < 0.1 * len(frames["events"])
    every_row = long_churn.recommend_frames(
        frames["contracts"], clients=frames["clients"], events=frames["events"], as_of=as_of, k=2
    )
    # the year of churn signals matters: pruned to route-sales' 90 days, the offers differ
    short_contracts, short_events = _pruned_on_one_machine(
        frames, as_of, {**declared, "churn_signal": 90}
    )
    cut = long_churn.recommend_frames(
        short_contracts, clients=frames["clients"], events=short_events, as_of=as_of, k=2
    )
    assert len(cut) > len(every_row)
    pruned = cs_spark.recommend(
        long_churn, tables["contracts"], tables["events"], tables["clients"], as_of=as_of, k=2
    )
    got = _offers_frame(pruned.collect())
    _assert_same_offers(got, every_row)
    same_filter = long_churn.recommend_frames(
        contracts, clients=frames["clients"], events=events, as_of=as_of, k=2
    )
    _assert_same_offers(got, same_filter)


def test_rejected_rows_as_spark_table(spark: Any) -> None:
    """Check that bad rows come back with book.rejected's reasons and are left out of offers."""
    from crosssell import spark as cs_spark

    frames = cs.datasets.synthetic_frames(n_clients=300, seed=3)
    rec = cs.Recommender(k=2, scorer=cs.scorers.ItemKNN()).fit(cs.Book.from_frames(**frames))
    contracts = frames["contracts"].copy()
    bad = [3, 40]
    contracts.loc[bad, Columns.end] = contracts.loc[bad, Columns.start] - pd.Timedelta(days=30)
    with pytest.warns(cs.DataWarning, match="rejected"):
        want = cs.Book.from_frames(contracts, products=rec.book_, errors="collect").rejected
    assert len(want) == len(bad)
    table = spark.createDataFrame(contracts)

    found = cs_spark.rejected(rec, table, buckets=3)
    assert found.schema == cs_spark.rejected_schema()
    got = pd.DataFrame([r.asDict() for r in found.collect()])
    assert got[Columns.row].isna().all()
    key = [Columns.table, "column", Columns.rule, Columns.reason, "record"]
    pd.testing.assert_frame_equal(
        _sorted(got[key].astype(str), key), _sorted(want[key].astype(str), key)
    )

    offers = cs_spark.recommend(rec, table, buckets=3, errors="collect")
    kept = contracts.drop(index=bad)
    _assert_same_offers(_offers_frame(offers.collect()), rec.recommend_frames(kept))
    with pytest.raises(Exception, match="end_date"):
        cs_spark.recommend(rec, table, buckets=3).collect()
