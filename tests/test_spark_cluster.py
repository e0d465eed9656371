"""Tests of crosssell.spark on a standalone Spark cluster: a master and two workers.

They run on this machine from the pip-installed PySpark (its ``bin/spark-class``), on free
loopback ports, and are stopped by their process ids when the module's tests end. crosssell
reaches the executors as a zip of the package, the way ``--py-files`` ships it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import crosssell as cs
from crosssell.columns import Columns
from test_spark import _assert_same_offers, _needs_spark, _offers_frame

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

N_CLIENTS = 2_000
BUCKETS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the Spark process ended early:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"nothing listens on port {port} after {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux ``/proc``), deepest first."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(parent, []).append(int(entry.name))
    out: list[int] = []
    stack = list(kids.get(pid, []))
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(kids.get(child, []))
    return out[::-1]


def _kill(pid: int) -> None:
    """Kill ``pid`` and what it started (executors, Python workers), deepest first."""
    for p in [*_children(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


class _Processes:
    """Spark processes this module started, each stopped by its pid."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(folder / "logs"),
            "SPARK_PID_DIR": str(folder),
            "SPARK_WORKER_DIR": str(folder / "work"),
        }

    def start(self, name: str, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.folder
            )
        self.procs.append(proc)
        return proc, log

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                _kill(proc.pid)
                proc.wait(timeout=30)


def _spark_bin(name: str) -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / name)


def _package_zip(folder: Path) -> Path:
    """crosssell as a zip of its package folder: what ``--py-files`` or ``addPyFile`` ships."""
    package = Path(cs.__file__).parent
    target = folder / "crosssell.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, Path("crosssell") / path.relative_to(package))
    return target


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Processes]:
    """The Spark servers of this module, stopped by pid at its end."""
    _needs_spark()
    procs = _Processes(tmp_path_factory.mktemp("spark-cluster"))
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """A small synthetic book."""
    return cs.datasets.synthetic_frames(n_clients=N_CLIENTS, seed=5)


@pytest.fixture(scope="module")
def fitted(frames: dict[str, pd.DataFrame]) -> cs.Recommender:
    """The route-sales recommender fitted on one machine (item-kNN: fits in a second)."""
    rec = cs.Recommender(policy=cs.rules.route_sales(), k=3, scorer=cs.scorers.ItemKNN())
    return rec.fit(cs.Book.from_frames(**frames))


@pytest.fixture(scope="module")
def cluster(processes: _Processes) -> Iterator[dict[str, Any]]:
    """A standalone master and two one-core workers, and a session on them."""
    from pyspark.sql import SparkSession

    port, ui = _free_port(), _free_port()
    cls = _spark_bin("spark-class")
    master, log = processes.start(
        "master",
        [
            *(cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"),
            *("--port", str(port), "--webui-port", str(ui)),
        ],
    )
    _wait_for_port(port, master, log, 60)
    url = f"spark://127.0.0.1:{port}"
    workers = []
    for i in range(2):
        w_port, w_ui = _free_port(), _free_port()
        worker, w_log = processes.start(
            f"worker{i}",
            [
                *(cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1"),
                *("--port", str(w_port), "--webui-port", str(w_ui), "--cores", "1"),
                *("--memory", "2g", "--work-dir", str(processes.folder / f"work{i}"), url),
            ],
        )
        _wait_for_port(w_port, worker, w_log, 60)
        workers.append(worker)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master(url)
        .appName("crosssell-cluster-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executor.memory", "1g")
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(BUCKETS))
        .config("spark.task.maxFailures", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.addPyFile(str(_package_zip(processes.folder)))
    yield {"spark": session, "workers": workers}
    session.stop()


def _tables(spark: Any, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {
        name: spark.createDataFrame(frames[name]) for name in ("contracts", "clients", "events")
    }


def _recommend(fitted: cs.Recommender, tables: dict[str, Any]) -> Any:
    from crosssell import spark as cs_spark

    return cs_spark.recommend(
        fitted, tables["contracts"], tables["events"], tables["clients"], buckets=BUCKETS
    )


def test_standalone_cluster_same_offers(
    cluster: dict[str, Any], fitted: cs.Recommender, frames: dict[str, pd.DataFrame]
) -> None:
    """Check that two workers of a standalone cluster give exactly recommend()'s offers."""
    offers = _recommend(fitted, _tables(cluster["spark"], frames))
    got = _offers_frame(offers.collect())
    assert got[Columns.client].nunique() > 0.5 * N_CLIENTS
    _assert_same_offers(got, fitted.recommend())


def test_executors_import_the_shipped_package(cluster: dict[str, Any]) -> None:
    """Check that the executors import crosssell from the zip the session shipped."""
    spark = cluster["spark"]

    def where(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import crosssell

        for batch in batches:
            yield pd.DataFrame({"file": [crosssell.__file__] * len(batch)})

    files = {r["file"] for r in spark.range(4).mapInPandas(where, "file string").collect()}
    assert files
    assert all("crosssell.zip" in f for f in files), files


def test_killed_worker_is_retried(
    cluster: dict[str, Any], fitted: cs.Recommender, frames: dict[str, pd.DataFrame]
) -> None:
    """Check that killing a worker mid-job loses no offer: its tasks run again elsewhere."""
    spark = cluster["spark"]
    tracker = spark.sparkContext.statusTracker()
    offers = _recommend(fitted, _tables(spark, frames))
    result: dict[str, Any] = {}

    def collect() -> None:
        try:
            result["rows"] = offers.collect()
        except Exception as err:  # reported by the test below
            result["error"] = err

    job = threading.Thread(target=collect)
    job.start()
    # wait until the scoring stage has tasks running, then kill the second worker whole
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and job.is_alive():
        stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
        if any(s is not None and s.numTasks == BUCKETS and s.numActiveTasks for s in stages):
            _kill(cluster["workers"][1].pid)
            killed = True
            break
        time.sleep(0.05)
    job.join(timeout=120)
    assert killed, "the scoring stage ended before a worker could be killed"
    assert "error" not in result, result.get("error")
    _assert_same_offers(_offers_frame(result["rows"]), fitted.recommend())
