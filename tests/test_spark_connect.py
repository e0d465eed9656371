"""Tests of crosssell.spark through a Spark Connect server (``sc://``), as platforms expose it.

The server runs on this machine from the pip-installed PySpark (``bin/spark-submit`` with the
Connect server class, local mode), on a free loopback port, and is stopped by its process id
when the module's tests end. crosssell reaches its Python workers as a session artifact.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import crosssell as cs
from crosssell.columns import Columns
from test_spark import _assert_same_offers, _needs_spark, _offers_frame
from test_spark_cluster import _free_port, _package_zip, _Processes, _spark_bin, _wait_for_port

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

N_CLIENTS = 1_500


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Processes]:
    """The Spark server of this module, stopped by pid at its end."""
    _needs_spark()
    pytest.importorskip("grpc")
    procs = _Processes(tmp_path_factory.mktemp("spark-connect"))
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """A small synthetic book."""
    return cs.datasets.synthetic_frames(n_clients=N_CLIENTS, seed=6)


@pytest.fixture(scope="module")
def fitted(frames: dict[str, pd.DataFrame]) -> cs.Recommender:
    """The route-sales recommender (the default ranker) fitted on one machine."""
    return cs.Recommender(policy=cs.rules.route_sales(), k=3).fit(cs.Book.from_frames(**frames))


@pytest.fixture(scope="module")
def connect(processes: _Processes) -> Iterator[Any]:
    """A Spark Connect server (local, two cores) and a remote session on it."""
    from pyspark.sql import SparkSession

    port = _free_port()
    server, log = processes.start(
        "connect",
        [
            *(_spark_bin("spark-submit"), "--master", "local[2]"),
            *("--class", "org.apache.spark.sql.connect.service.SparkConnectServer"),
            *("--name", "crosssell-connect-tests"),
            *("--conf", f"spark.connect.grpc.binding.port={port}"),
            *("--conf", "spark.connect.grpc.binding.address=127.0.0.1"),
            *("--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false"),
            *("--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.driver.memory=2g"),
        ],
    )
    _wait_for_port(port, server, log, 90)
    # PySpark marks the whole process as Connect mode (an environment variable) when a remote
    # session starts; later modules build local sessions, so the mark leaves with the session
    before = {name: os.environ.get(name) for name in _CONNECT_ENVIRONMENT}
    session = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").getOrCreate()
    session.addArtifacts(str(_package_zip(processes.folder)), pyfile=True)
    yield session
    session.stop()
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


#: What starting a Spark Connect session sets in the process environment.
_CONNECT_ENVIRONMENT = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")


def test_spark_connect_same_offers(
    connect: Any, fitted: cs.Recommender, frames: dict[str, pd.DataFrame]
) -> None:
    """Check that recommend() through a Spark Connect server gives recommend()'s offers."""
    from crosssell import spark as cs_spark

    tables = {name: connect.createDataFrame(frames[name]) for name in ("contracts", "events")}
    assert type(tables["contracts"]).__module__.startswith("pyspark.sql.connect")
    # the clients table stays home: rules reading client attributes see none, on both sides
    offers = cs_spark.recommend(fitted, tables["contracts"], tables["events"], buckets=5)
    assert offers.schema == cs_spark.offers_schema(fitted)
    got = _offers_frame(offers.collect())
    assert got[Columns.client].nunique() > 0.5 * N_CLIENTS
    want = fitted.recommend_frames(frames["contracts"], events=frames["events"])
    _assert_same_offers(got, want)
