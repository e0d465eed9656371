"""Benchmark: batch scoring on local Spark against one machine, and scaling from 1 to 2 cores.

Run by hand (needs ``pip install "crosssell[spark]"`` and Java 17+)::

    python benchmarks/spark.py                      # 500k synthetic clients, 3 repeats
    python benchmarks/spark.py --clients 100000 --repeats 1

The synthetic book is written to Parquet (timestamps in microseconds: Spark cannot read pandas'
nanosecond ones) and read back by Spark, as a warehouse table would be. Each Spark run scores
every client with ``crosssell.spark.recommend`` into Spark's ``noop`` sink, so the whole plan
(read, shuffle by bucket, score, write) runs without collecting to the driver. The single-machine
row is ``Recommender.recommend()`` on the fitted Book; "files + frames" is the same job as Spark's
on one process: read the three Parquet tables with pandas, validate them and score every client
with ``Recommender.recommend_frames``. Medians of ``--repeats`` runs. The peak
resident memory of the Python worker processes (each runs one bucket at a time) is read from
``/proc`` before each session stops (Linux only).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import crosssell as cs
from crosssell import spark as cs_spark


def median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def write_parquet(frames: dict[str, pd.DataFrame], folder: Path) -> dict[str, str]:
    paths = {}
    for name in ("contracts", "clients", "events"):
        path = folder / f"{name}.parquet"
        frames[name].to_parquet(path, coerce_timestamps="us", allow_truncated_timestamps=True)
        paths[name] = str(path)
    return paths


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def python_workers_peak_gib() -> float:
    """Peak resident memory of this run's Python workers (Linux): one bucket at a time each."""
    me, peak = os.getpid(), 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"pyspark" not in (entry / "cmdline").read_bytes():
                continue
            pid = int(entry.name)
            while pid > 1 and pid != me:
                pid = _parent(pid)
            if pid != me:
                continue
            status = (entry / "status").read_text()
        except (OSError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 2**20


def session(cores: int, *, memory: str, arrow_batch: int) -> Any:
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(f"crosssell-bench-{cores}")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(4 * cores))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
        .getOrCreate()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--buckets-per-core", type=int, default=3)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--arrow-batch", type=int, default=10_000)
    parser.add_argument(
        "--scorer",
        choices=["default", "itemknn"],
        default="default",
        help="the default ranker, or item-kNN (whose one-machine scoring is the cheapest)",
    )
    parser.add_argument(
        "--no-prune", action="store_true", help="ship every event and contract to the buckets"
    )
    args = parser.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

    t0 = time.perf_counter()
    frames = cs.datasets.synthetic_frames(n_clients=args.clients, seed=0)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    book = cs.Book.from_frames(**frames)
    t_book = time.perf_counter() - t0
    scorer = cs.scorers.ItemKNN() if args.scorer == "itemknn" else None
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=3, scorer=scorer)
    t_fit, _ = median_seconds(lambda: rec.fit(book), 1)
    t_single, offers = median_seconds(rec.recommend, args.repeats)
    n_offers = len(offers)
    n_scored = int(offers[cs.Columns.client].nunique())
    print(
        f"\n## {args.clients:,} clients, {len(frames['contracts']):,} contracts, "
        f"{len(frames['events']):,} events; {n_offers:,} offers for {n_scored:,} clients"
    )
    with tempfile.TemporaryDirectory() as tmp:
        shipped = Path(tmp) / "model.crosssell"
        cs_spark._write_model(rec, shipped)
        size = shipped.stat().st_size
        t_load, _ = median_seconds(lambda: cs.load(shipped), 1)
    print(
        f"generate {t_gen:.1f} s, Book {t_book:.1f} s, fit {t_fit:.1f} s (driver, one machine); "
        f"shipped model {size / 2**20:.0f} MiB (scoring-only safe file), loaded in "
        f"{t_load:.1f} s; "
        f"driver peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB"
    )

    rows = [("one machine: recommend()", "-", "-", t_single)]
    peaks: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_parquet(frames, Path(tmp))
        del frames

        def from_files() -> pd.DataFrame:
            # Spark's whole job on one machine: read the tables, validate them, score everyone
            read = {name: pd.read_parquet(path) for name, path in paths.items()}
            return rec.recommend_frames(
                read["contracts"], clients=read["clients"], events=read["events"]
            )

        t_files, _ = median_seconds(from_files, args.repeats)
        rows.append(("one machine: files + frames", "1", "-", t_files))
        for cores in args.cores:
            spark = session(cores, memory=args.driver_memory, arrow_batch=args.arrow_batch)
            spark.sparkContext.setLogLevel("ERROR")
            tables = {name: spark.read.parquet(path) for name, path in paths.items()}
            buckets = args.buckets_per_core * cores

            def run(spark_: Any = spark, tables_: Any = tables, buckets_: int = buckets) -> None:
                out = cs_spark.recommend(
                    rec,
                    tables_["contracts"],
                    tables_["events"],
                    tables_["clients"],
                    buckets=buckets_,
                    prune=not args.no_prune,
                )
                out.write.format("noop").mode("overwrite").save()

            run()  # starts the Python workers and warms the caches, untimed
            t_spark, _ = median_seconds(run, args.repeats)
            rows.append((f"Spark local[{cores}]", str(cores), str(buckets), t_spark))
            peaks.append(f"local[{cores}] {python_workers_peak_gib():.2f} GiB")
            spark.stop()

    base = next((t for name, _, _, t in rows if name.startswith("Spark local[1]")), None)
    header = ("run", "cores", "buckets", "median s", "offers/s", "clients/s")
    print("{:<28} {:>5} {:>7} {:>9} {:>10} {:>10}  note".format(*header))
    for name, cores, buckets, t in rows:
        note = ""
        if base is not None and name.startswith("Spark") and cores != "1":
            note = f"{base / t:.2f}x local[1]"
        if name.startswith("Spark"):
            note = (note + ", " if note else "") + (
                f"{t / t_single:.1f}x one machine, {t / t_files:.1f}x files + frames"
            )
        print(
            f"{name:<28} {cores:>5} {buckets:>7} {t:>9.2f} {n_offers / t:>10,.0f} "
            f"{n_scored / t:>10,.0f}  {note}"
        )
    print(
        "settings: driver memory "
        f"{args.driver_memory}, buckets = {args.buckets_per_core} x cores, "
        f"spark.sql.execution.arrow.maxRecordsPerBatch={args.arrow_batch:,}, "
        f"{'no push-down' if args.no_prune else 'push-down'}, scorer {args.scorer}"
    )
    print("peak memory of a Python worker (one bucket at a time): " + ", ".join(peaks))


if __name__ == "__main__":
    main()
