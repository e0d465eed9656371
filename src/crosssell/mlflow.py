"""MLflow: fitted recommenders as MLflow models, backtests and tunings as MLflow runs.

The ``crosssell`` flavor stores a fitted :class:`~crosssell.Recommender` in crosssell's own safe
format (:func:`crosssell.save`: a JSON manifest and arrays, never pickle) as the model's data,
beside a ``python_function`` entry whose loader is this module: MLflow rebuilds the model with
:func:`crosssell.load`, by module path, so nothing is cloudpickled and nothing in the artifact runs
code when it is loaded.

* :func:`log_model` / :func:`save_model` write the model; :func:`load_model` gives the
  Recommender back.
* ``mlflow.pyfunc.load_model(uri)`` gives an :class:`OffersModel`: its ``predict`` takes client
  ids (and optionally fresh events and contracts) and returns the offers frame of
  :meth:`~crosssell.Recommender.recommend`; ``k`` and ``explain`` are inference parameters.
* :func:`log_backtest` (:meth:`BacktestResult.log_to_mlflow
  <crosssell.evaluation.BacktestResult.log_to_mlflow>`) logs a backtest's settings, every metric
  at every k per fold with its bootstrap interval, the averages and the lift, the HTML report
  and the charts; :func:`log_tune` (:meth:`TuneResult.log_to_mlflow
  <crosssell.evaluation.TuneResult.log_to_mlflow>`) logs a tuning, each trial as a nested run.

MLflow metric names may hold letters, digits, ``_ - . /`` and spaces: ``ndcg@10`` is logged as
``ndcg_at_10``, and any other character of a segment name becomes ``_``.

MLflow is optional: install it with ``pip install "crosssell[mlflow]"`` (the MLflow client,
``mlflow-skinny``; the full ``mlflow`` package, with its server and UI, serves as well). Neither
``import crosssell`` nor ``import crosssell.mlflow`` imports MLflow.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from crosssell._params import check_fitted
from crosssell._version import __version__
from crosssell.columns import Columns
from crosssell.exceptions import ArtifactError, SchemaError
from crosssell.recommender import Recommender

if TYPE_CHECKING:
    from crosssell.evaluation.backtest import BacktestResult
    from crosssell.evaluation.tuning import TuneResult
    from crosssell.rules import Policy

__all__ = [
    "FLAVOR_NAME",
    "OffersModel",
    "load_model",
    "log_backtest",
    "log_model",
    "log_tune",
    "metric_name",
    "save_model",
]

#: The flavor's name in an MLmodel file.
FLAVOR_NAME: Final = "crosssell"
_DATA: Final = "data"
_MODEL_FILE: Final = "model.crosssell"
_EXTRA_HINT: Final = 'Install it with: pip install "crosssell[mlflow]"'
_FRESH: Final = ("events", "contracts")
_CLIENTS: Final = "clients"
_NOT_NAME: Final = re.compile(r"[^A-Za-z0-9_.\- ]")


def _mlflow() -> Any:
    """Import MLflow, or say which extra installs it."""
    try:
        import mlflow
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"crosssell.mlflow needs MLflow (>= 3.0), which is not installed. {_EXTRA_HINT}"
        ) from err
    return mlflow


# --------------------------------------------------------------------------- the flavor


def save_model(
    recommender: Recommender,
    path: str | os.PathLike[str],
    *,
    mlflow_model: Any = None,
    pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted recommender as an MLflow model folder (the ``crosssell`` flavor).

    The folder holds ``MLmodel``, ``requirements.txt``, ``python_env.yaml`` and
    ``data/model.crosssell``, the model in crosssell's safe format (:func:`crosssell.save`).

    Parameters
    ----------
    recommender : Recommender
        Fitted.
    path : str or path-like
        A folder that does not exist yet.
    mlflow_model : mlflow.models.Model, optional
        The model description to add the flavors to (:func:`log_model` passes its own).
    pip_requirements : sequence of str, optional
        The serving environment's requirements; default ``crosssell==<this version>``.
    metadata : mapping, optional
        Stored in the MLmodel file.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ImportError
        If MLflow is not installed.
    FileExistsError
        If ``path`` exists.
    NotFittedError
        If ``recommender`` is not fitted.
    ArtifactError
        If the model holds something that cannot be saved without code (a user rule).

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from crosssell.mlflow import load_model, save_model
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.tiny(), "2024-06-30")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     saved = save_model(rec, f"{folder}/model")
    ...     again = load_model(str(saved))
    ...     files = sorted(p.name for p in saved.iterdir())
    >>> files
    ['MLmodel', 'data', 'python_env.yaml', 'requirements.txt']
    >>> again.recommend().equals(rec.recommend())
    True
    """
    mlflow = _mlflow()
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    if not isinstance(recommender, Recommender):
        raise TypeError(
            "The 'recommender' parameter of save_model must be a fitted crosssell Recommender. "
            f"Got {type(recommender).__name__} instead."
        )
    check_fitted(recommender, "scorer_")
    folder = Path(path)
    if folder.exists():
        raise FileExistsError(f"save_model: {folder} exists; give a new folder.")
    (folder / _DATA).mkdir(parents=True)
    try:
        recommender.save(folder / _DATA / _MODEL_FILE)
    except BaseException:
        # a model that cannot be saved (a user rule) leaves no half-made folder behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    requirements = (
        [f"crosssell=={__version__}"] if pip_requirements is None else list(pip_requirements)
    )
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    python = ".".join(str(v) for v in sys.version_info[:3])
    (folder / "python_env.yaml").write_text(
        f"python: {python}\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r requirements.txt\n",
        encoding="utf-8",
    )
    model = mlflow.models.Model() if mlflow_model is None else mlflow_model
    if metadata is not None:
        model.metadata = {**(model.metadata or {}), **dict(metadata)}
    if model.signature is None:
        # No input schema: ids keep their own dtype. The parameters are what recommend takes.
        model.signature = ModelSignature(
            params=ParamSchema(
                [
                    ParamSpec("k", "long", int(recommender.k_)),
                    ParamSpec("explain", "boolean", True),
                ]
            )
        )
    data = f"{_DATA}/{_MODEL_FILE}"
    mlflow.pyfunc.add_to_model(
        model, loader_module=__name__, data=data, python_env="python_env.yaml"
    )
    model.add_flavor(FLAVOR_NAME, crosssell_version=__version__, data=data, format="crosssell-safe")
    model.save(str(folder / "MLmodel"))
    return folder


def log_model(
    recommender: Recommender,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Log a fitted recommender as an MLflow model of the active run (the ``crosssell`` flavor).

    The artifact is the model in crosssell's safe format (never pickle) with a
    ``python_function`` wrapper (:class:`OffersModel`). Without an active run MLflow logs the
    model on its own, as ``mlflow.sklearn.log_model`` does.

    Parameters
    ----------
    recommender : Recommender
        Fitted.
    name : str, default "model"
        The model's name in the run.
    registered_model_name : str, optional
        Also register the model under this name in the model registry.
    pip_requirements : sequence of str, optional
        The serving environment's requirements; default ``crosssell==<this version>``.
    metadata : mapping, optional
        Stored in the MLmodel file.

    Returns
    -------
    mlflow.models.model.ModelInfo
        Its ``model_uri`` loads the model again (:func:`load_model`, ``mlflow.pyfunc.load_model``).

    Raises
    ------
    ImportError
        If MLflow is not installed.
    NotFittedError
        If ``recommender`` is not fitted.
    ArtifactError
        If the model holds something that cannot be saved without code (a user rule).

    Examples
    --------
    A tracking store in a temporary folder (MLflow's plain-files store, which it allows when
    asked; ``sqlite:///mlflow.db`` or a tracking server is the usual choice):

    >>> import os, tempfile, mlflow, crosssell as cs
    >>> from unittest import mock
    >>> from crosssell.mlflow import load_model, log_model
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.tiny(), "2024-06-30")
    >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(
    ...         os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"}):
    ...     mlflow.set_tracking_uri(f"file://{folder}/mlruns")
    ...     with mlflow.start_run():
    ...         info = log_model(rec, "recommender")
    ...     offers = mlflow.pyfunc.load_model(info.model_uri).predict(
    ...         pd.DataFrame({"client_id": ["C1"]}), params={"k": 1})
    ...     again = load_model(info.model_uri)
    ...     mlflow.set_tracking_uri(None)
    >>> offers[["client_id", "product_id", "rank"]]
      client_id product_id  rank
    0        C1      ERP-1     1
    >>> again.recommend(["C1"]).equals(rec.recommend(["C1"]))
    True
    """
    mlflow = _mlflow()
    return mlflow.models.Model.log(
        artifact_path=None,
        name=name,
        flavor=_Flavor,
        registered_model_name=registered_model_name,
        recommender=recommender,
        pip_requirements=pip_requirements,
        metadata=dict(metadata) if metadata is not None else None,
    )


class _Flavor:
    """Face ``Model.log`` calls as a flavor module: ``save_model(path=..., mlflow_model=...)``."""

    __name__ = FLAVOR_NAME

    @staticmethod
    def save_model(
        *,
        path: str,
        mlflow_model: Any,
        recommender: Recommender,
        pip_requirements: Sequence[str] | None = None,
    ) -> Path:
        # the metadata went to the Model that Model.log made and passes here as mlflow_model
        return save_model(
            recommender, path, mlflow_model=mlflow_model, pip_requirements=pip_requirements
        )


def load_model(
    model_uri: str, *, dst_path: str | None = None, policy: Policy | None = None
) -> Recommender:
    """Load a recommender logged with :func:`log_model` (or saved with :func:`save_model`).

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI: ``models:/<model_id>``, ``runs:/<run_id>/<name>``, a registered
        ``models:/<name>/<version>``, or a local folder.
    dst_path : str, optional
        Where to download the artifact; default a temporary folder.
    policy : Policy, optional
        Use this policy instead of the saved one (see :func:`crosssell.load`).

    Returns
    -------
    Recommender
        Fitted.

    Raises
    ------
    ImportError
        If MLflow is not installed.
    ArtifactError
        If the model has no ``crosssell`` flavor, or its data is not a sound crosssell model.

    Examples
    --------
    >>> import tempfile, crosssell as cs
    >>> from crosssell.mlflow import load_model, save_model
    >>> rec = cs.Recommender(k=2).fit(cs.datasets.tiny(), "2024-06-30")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     again = load_model(str(save_model(rec, f"{folder}/model")))
    >>> again.as_of_ == rec.as_of_
    True
    """
    mlflow = _mlflow()
    from mlflow.artifacts import download_artifacts

    with _download_folder(dst_path) as target:
        local = Path(download_artifacts(artifact_uri=model_uri, dst_path=target))
        description = mlflow.models.Model.load(str(local / "MLmodel"))
        flavor = description.flavors.get(FLAVOR_NAME)
        if flavor is None:
            raise ArtifactError(
                f"load_model: the model at {model_uri} has no {FLAVOR_NAME!r} flavor (it has "
                f"{sorted(description.flavors)}); log it with crosssell.mlflow.log_model."
            )
        return _load(local / str(flavor["data"]), policy=policy)


@contextmanager
def _download_folder(dst_path: str | None) -> Iterator[str]:
    if dst_path is not None:
        yield dst_path
        return
    with tempfile.TemporaryDirectory(prefix="crosssell-mlflow-") as folder:
        yield folder


def _load(path: Path, *, policy: Policy | None = None) -> Recommender:
    from crosssell.persist import load

    return load(path, policy=policy)


def _load_pyfunc(data_path: str, model_config: Any = None) -> OffersModel:
    """MLflow's entry point for ``mlflow.pyfunc.load_model``: the loader module's contract."""
    return OffersModel(_load(Path(data_path)))


class OffersModel:
    """The ``python_function`` face of a crosssell model: client ids in, offers out.

    ``mlflow.pyfunc.load_model`` wraps it; its ``predict`` is called through the wrapper.

    Parameters
    ----------
    recommender : Recommender
        Fitted.

    Examples
    --------
    >>> import crosssell as cs
    >>> from crosssell.mlflow import OffersModel
    >>> model = OffersModel(cs.Recommender(k=2).fit(cs.datasets.tiny(), "2024-06-30"))
    >>> model.predict(pd.DataFrame({"client_id": ["C2"]}))[["client_id", "product_id", "rank"]]
      client_id product_id  rank
    0        C2      CRM-1     1
    1        C2      CRM-2     2
    """

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender

    def predict(self, model_input: Any, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the offers for the clients of ``model_input``.

        Parameters
        ----------
        model_input : DataFrame, Series, sequence or mapping
            The clients: a DataFrame with a ``client_id`` column, a Series or list of ids, or
            a mapping of columns with ``client_id``. With fresh data, a mapping with
            ``clients`` (any of those forms) and ``events`` and/or ``contracts`` (DataFrames,
            lists of records or dicts of columns in crosssell's column names, each row with
            its ``client_id``); each client is then answered by
            :meth:`~crosssell.Recommender.recommend_one` with its own fresh rows.
        params : mapping, optional
            ``k`` (offers per client; default the model's) and ``explain`` (default True).

        Returns
        -------
        pandas.DataFrame
            The columns and dtypes of :meth:`~crosssell.Recommender.recommend`, one row per
            offer, by client then rank (with fresh data, in the order of the clients asked
            for).

        Raises
        ------
        SchemaError
            If the clients have no ``client_id`` column, or a fresh row names a client that is
            not asked for.

        Examples
        --------
        >>> import crosssell as cs
        >>> rec = cs.Recommender(k=2).fit(cs.datasets.tiny(), "2024-06-30")
        >>> model = OffersModel(rec)
        >>> model.predict(["C1"], params={"k": 1})["product_id"].tolist()
        ['ERP-1']

        C1 signed for ERP-1 yesterday: it is no longer offered.

        >>> fresh = {"clients": ["C1"], "contracts": {"client_id": ["C1"],
        ...          "product_id": ["ERP-1"], "start_date": ["2024-06-29"]}}
        >>> model.predict(fresh)["product_id"].tolist()
        ['CRM-2']
        """
        settings = dict(params or {})
        k = settings.get("k")
        explain = bool(settings.get("explain", True))
        k = None if k is None else int(k)
        fresh: dict[str, pd.DataFrame] = {}
        clients_in = model_input
        if isinstance(model_input, Mapping) and _CLIENTS in model_input:
            clients_in = model_input[_CLIENTS]
            fresh = {
                key: _as_table(model_input[key], key)
                for key in _FRESH
                if model_input.get(key) is not None
            }
            unknown = sorted(set(model_input) - {_CLIENTS, *_FRESH})
            if unknown:
                raise SchemaError(
                    f"OffersModel.predict: unknown keys {unknown}; the input takes "
                    f"{[_CLIENTS, *_FRESH]}.",
                    table="model_input",
                )
        clients = _client_list(clients_in)
        if not fresh:
            return self.recommender.recommend(clients, k=k, explain=explain)
        return self._with_fresh(clients, fresh, k=k, explain=explain)

    def _with_fresh(
        self, clients: list[Any], fresh: dict[str, pd.DataFrame], *, k: int | None, explain: bool
    ) -> pd.DataFrame:
        ids = self.recommender.book_.client_ids
        asked = [ids.coerce(c) for c in clients]
        known = set(asked)
        by_client: dict[str, dict[Any, pd.DataFrame]] = {}
        for key, table in fresh.items():
            owners = [ids.coerce(c) for c in table[Columns.client]]
            stray = [i for i, owner in enumerate(owners) if owner not in known]
            if stray:
                shown = "; ".join(
                    f"row {i} client_id={table[Columns.client].iloc[i]!r}" for i in stray[:5]
                )
                rows = "1 row names" if len(stray) == 1 else f"{len(stray)} rows name"
                raise SchemaError(
                    f"OffersModel.predict: {key}: {rows} a client that is not among the "
                    f"clients asked for (showing {min(len(stray), 5)}): {shown}. Add the client "
                    "to 'clients' or remove the rows.",
                    table=key,
                    column=Columns.client,
                    rule="client_not_asked",
                    rows=stray,
                )
            keys = pd.Series(owners, index=table.index, dtype=object)
            # not dict(groupby): a GroupBy has a 'keys' attribute, which dict() would call
            by_client[key] = {c: rows for c, rows in table.groupby(keys, sort=False)}  # noqa: C416
        records: list[dict[str, Any]] = []
        for client in asked:
            offers = self.recommender.recommend_one(
                client,
                events=by_client.get("events", {}).get(client),
                contracts=by_client.get("contracts", {}).get(client),
                k=k,
                explain=explain,
            )
            records.extend(o.to_dict() for o in offers)
        # the same columns and dtypes as recommend's, evidence as an Arrow list column included
        empty = self.recommender.recommend([], k=k, explain=explain)
        frame = pd.DataFrame(records, columns=list(empty.columns))
        return frame.astype(empty.dtypes.to_dict())


def _as_table(value: Any, name: str) -> pd.DataFrame:
    table = value if isinstance(value, pd.DataFrame) else pd.DataFrame(value)
    if Columns.client not in table.columns:
        raise SchemaError(
            f"OffersModel.predict: {name}: no {Columns.client!r} column (columns: "
            f"{list(table.columns)}); every fresh row names its client.",
            table=name,
            column=Columns.client,
        )
    return table.reset_index(drop=True)


def _client_list(value: Any) -> list[Any]:
    if isinstance(value, (pd.DataFrame, Mapping)):
        table = value if isinstance(value, pd.DataFrame) else pd.DataFrame(dict(value))
        if Columns.client not in table.columns:
            raise SchemaError(
                f"OffersModel.predict: the clients have no {Columns.client!r} column (columns: "
                f"{list(table.columns)}). Give a DataFrame with a {Columns.client!r} column.",
                table=_CLIENTS,
                column=Columns.client,
            )
        return table[Columns.client].tolist()
    if isinstance(value, pd.Series | pd.Index | np.ndarray):
        return list(value.tolist())
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


# --------------------------------------------------------------------------- runs


def metric_name(*parts: Any) -> str:
    """Join name parts into a valid MLflow metric name: ``@`` becomes ``_at_``, others ``_``.

    Parameters
    ----------
    *parts
        Joined with ``/``; a ``/`` inside a part is replaced too.

    Returns
    -------
    str

    Examples
    --------
    >>> metric_name("crosssell", "ndcg@10")
    'crosssell/ndcg_at_10'
    >>> metric_name("segment", "SME / retail")
    'segment/SME _ retail'
    """
    return "/".join(_NOT_NAME.sub("_", str(p).replace("@", "_at_")) for p in parts)


@contextmanager
def _run(run_name: str | None, *, nested: bool = False) -> Iterator[Any]:
    """Yield the active run, or a new one ended on leaving."""
    mlflow = _mlflow()
    active = mlflow.active_run()
    if active is not None and not nested:
        yield active
        return
    with mlflow.start_run(run_name=run_name, nested=nested) as run:
        yield run


def _params_of(values: Mapping[str, Any]) -> dict[str, str]:
    """Parameters with valid names (a name already made with :func:`metric_name` is kept)."""
    return {"/".join(metric_name(p) for p in key.split("/")): str(value)
            for key, value in values.items()}  # fmt: skip


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def log_backtest(
    result: BacktestResult,
    *,
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    report: bool = True,
) -> str:
    """Log a backtest to MLflow: settings, metrics per fold and k with intervals, report, charts.

    Logged in the active run, or in a new run (ended before returning) when none is active:

    * parameters ``backtest/cutoffs``, ``backtest/horizon_days``, ``backtest/k``,
      ``backtest/models`` and ``backtest/folds``, and ``params`` under their own names;
    * per fold (the metric's step is the fold number) ``folds/<model>/<metric>_at_<k>`` with
      ``..._ci_low``, ``..._ci_high`` and ``..._n_clients``, scored against all additions;
      ``folds/<model>/<offer type>/...`` and ``folds/<model>/segment/<segment>/...`` for the
      upsell, cross-sell and segment rows; and each fold's facts as ``folds/<column>``;
    * the averages over folds ``<model>/<metric>_at_<k>`` and ``lift/<metric>_at_<k>`` (as
      :meth:`~crosssell.evaluation.BacktestResult.summary`);
    * artifacts ``backtest/report.html`` (:func:`crosssell.html.report`), ``backtest/metrics.csv``
      (:meth:`~crosssell.evaluation.BacktestResult.to_frame`), ``backtest/folds.csv`` and the
      charts ``backtest/metrics.png``, ``backtest/gain.png`` and ``backtest/reliability.png``
      when matplotlib is installed (the tag ``crosssell.charts`` says why any is missing, e.g.
      no offer with a propensity to draw the reliability of).

    Parameters
    ----------
    result : BacktestResult
        What :func:`~crosssell.evaluation.backtest` returned.
    params : mapping, optional
        More parameters to log, e.g. the recommender's ``get_params()``.
    run_name : str, optional
        The name of a new run.
    report : bool, default True
        Log the HTML report.

    Returns
    -------
    str
        The run id.

    Raises
    ------
    ImportError
        If MLflow is not installed.

    Examples
    --------
    >>> import os, tempfile, mlflow
    >>> from unittest import mock
    >>> from crosssell.datasets import tiny
    >>> from crosssell.evaluation.backtest import backtest
    >>> from crosssell.recommender import Recommender
    >>> result = backtest(Recommender(), tiny(), "2024-06-30", "60D", k=(1, 2), n_boot=0,
    ...                   progress=False)
    >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(
    ...         os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"}):
    ...     mlflow.set_tracking_uri(f"file://{folder}/mlruns")
    ...     run_id = log_backtest(result, report=False)
    ...     logged = mlflow.get_run(run_id).data
    ...     mlflow.set_tracking_uri(None)
    >>> logged.params["backtest/horizon_days"], logged.metrics["crosssell/recall_at_2"]
    ('60', 1.0)
    """
    from crosssell.evaluation.backtest import BacktestResult
    from crosssell.evaluation.plots import plot_gain

    if not isinstance(result, BacktestResult):
        raise TypeError(
            "The 'result' parameter of log_backtest must be a BacktestResult (what backtest "
            f"returns). Got {type(result).__name__} instead."
        )
    mlflow = _mlflow()
    folds = result.folds
    # under backtest/: the caller's parameters (a recommender's k, say) never collide with them
    settings: dict[str, Any] = {
        "backtest/cutoffs": ", ".join(str(pd.Timestamp(c).date()) for c in folds[Columns.cutoff]),
        "backtest/horizon_days": result.horizon.days,
        "backtest/k": ", ".join(str(k) for k in result.k),
        "backtest/models": ", ".join(str(m) for m in result.metrics[Columns.model].unique()),
        "backtest/folds": len(folds),
    }
    with _run(run_name) as run:
        mlflow.log_params({**_params_of(settings), **_params_of(params or {})})
        for step, metrics in _fold_metrics(result).items():
            mlflow.log_metrics(metrics, step=step)
        mlflow.log_metrics(_summary_metrics(result))
        with tempfile.TemporaryDirectory(prefix="crosssell-mlflow-") as folder:
            where = Path(folder)
            result.to_frame().to_csv(where / "metrics.csv", index=False)
            folds.to_csv(where / "folds.csv", index=False)
            if report:
                from crosssell.html import report as write_report

                write_report(result, where / "report.html")
            missing = _draw(
                where,
                {
                    "metrics.png": result.plot,
                    "gain.png": lambda: plot_gain(result),
                    "reliability.png": result.plot_reliability,
                },
            )
            mlflow.log_artifacts(folder, artifact_path="backtest")
        if missing:
            mlflow.set_tag("crosssell.charts", missing)
        return str(run.info.run_id)


def _draw(folder: Path, charts: Mapping[str, Any]) -> str:
    """Save each chart as PNG; return why charts are missing ("" when none is)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return 'not drawn: matplotlib is not installed (pip install "crosssell[plot]")'
    skipped: list[str] = []
    for file, draw in charts.items():
        try:
            fig = draw()
        except ValueError as err:
            skipped.append(f"{file}: {err}")
            continue
        fig.savefig(folder / file, dpi=110)
    return "; ".join(skipped)


def _qualified(model: str, offer_type: str, segment: str) -> tuple[str, ...]:
    parts: tuple[str, ...] = (model,)
    if offer_type != "all":
        parts = (*parts, offer_type)
    if segment != "all":
        parts = (*parts, "segment", segment)
    return parts


def _fold_metrics(result: BacktestResult) -> dict[int, dict[str, float]]:
    by_step: dict[int, dict[str, float]] = {}
    seen: dict[str, tuple[Any, ...]] = {}
    m = result.metrics
    for row in m.itertuples(index=False):
        fold = int(getattr(row, Columns.fold))
        base = metric_name(
            "folds",
            *_qualified(
                str(getattr(row, Columns.model)),
                str(getattr(row, Columns.offer_type)),
                str(getattr(row, Columns.segment)),
            ),
            f"{getattr(row, Columns.metric)}@{int(getattr(row, Columns.k))}",
        )
        origin = (
            getattr(row, Columns.model),
            getattr(row, Columns.offer_type),
            getattr(row, Columns.segment),
            getattr(row, Columns.metric),
            getattr(row, Columns.k),
        )
        if seen.setdefault(base, origin) != origin:
            raise ValueError(
                f"log_backtest: {seen[base]} and {origin} both become the metric name {base!r} "
                "once made valid for MLflow; rename the segments so that they differ in "
                "letters, digits, '_', '-', '.' or spaces."
            )
        metrics = by_step.setdefault(fold, {})
        metrics[base] = _float(getattr(row, Columns.value))
        metrics[f"{base}_ci_low"] = _float(getattr(row, Columns.ci_low))
        metrics[f"{base}_ci_high"] = _float(getattr(row, Columns.ci_high))
        metrics[f"{base}_n_clients"] = _float(getattr(row, Columns.n_clients))
    facts = [c for c in result.folds.columns if c not in (Columns.fold, Columns.cutoff)]
    for record in result.folds.to_dict("records"):
        metrics = by_step.setdefault(int(record[Columns.fold]), {})
        for column in facts:
            value = record[column]
            if isinstance(value, int | float | np.number) and not isinstance(value, bool):
                metrics[metric_name("folds", column)] = float(value)
    return by_step


def _summary_metrics(result: BacktestResult) -> dict[str, float]:
    table = result.summary()
    out: dict[str, float] = {}
    models = [c for c in table.columns if c not in (Columns.metric, Columns.k)]
    for row in table.to_dict("records"):
        name = f"{row[Columns.metric]}@{int(row[Columns.k])}"
        for model in models:
            out[metric_name(model, name)] = _float(row[model])
    return out


def log_tune(
    result: TuneResult,
    *,
    run_name: str | None = None,
    log_best: bool = False,
) -> str:
    """Log a tuning to MLflow: the choice and its held-out score, and each trial as a nested run.

    Logged in the active run, or in a new run (ended before returning) when none is active:

    * parameters ``metric``, ``selection_cutoffs``, ``held_out_cutoff``, ``trials`` and the
      chosen configuration as ``best/<parameter>``;
    * metrics ``held_out`` (the chosen configuration's score on the last fold: the figure to
      quote) and ``best_selection_score``;
    * artifacts ``tune/trials.csv`` (:attr:`~crosssell.evaluation.TuneResult.results`) and the
      chart ``tune/selection.png`` when matplotlib is installed;
    * one nested run per trial, named ``trial <n>``, with the searched parameters as given to
      ``set_params`` and the metrics ``selection_score``, ``held_out_score``, ``fit_seconds``
      and ``rank``; a pruned trial has the tag ``crosssell.pruned`` ``true`` and no scores.

    Parameters
    ----------
    result : TuneResult
        What :func:`~crosssell.evaluation.tune` returned.
    run_name : str, optional
        The name of a new run.
    log_best : bool, default False
        Also log :attr:`~crosssell.evaluation.TuneResult.best_recommender` with
        :func:`log_model` as ``best_recommender``.

    Returns
    -------
    str
        The run id of the parent run.

    Raises
    ------
    ImportError
        If MLflow is not installed.

    Examples
    --------
    >>> import os, tempfile, mlflow
    >>> from unittest import mock
    >>> from crosssell.datasets import tiny
    >>> from crosssell.evaluation.tuning import tune
    >>> from crosssell.recommender import Recommender
    >>> from crosssell.scorers import CoOccurrence, Popularity
    >>> result = tune(Recommender(), tiny(), {"scorer": [Popularity(), CoOccurrence()]},
    ...               ["2024-06-15", "2024-07-03"], horizon="60D", metric="recall@1",
    ...               progress=False)
    >>> with tempfile.TemporaryDirectory() as folder, mock.patch.dict(
    ...         os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"}):
    ...     mlflow.set_tracking_uri(f"file://{folder}/mlruns")
    ...     run_id = log_tune(result)
    ...     parent = mlflow.get_run(run_id).data
    ...     trials = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    ...     mlflow.set_tracking_uri(None)
    >>> parent.metrics["held_out"], len(trials)
    (0.5, 2)
    """
    from crosssell.evaluation.tuning import TuneResult

    if not isinstance(result, TuneResult):
        raise TypeError(
            "The 'result' parameter of log_tune must be a TuneResult (what tune returns). "
            f"Got {type(result).__name__} instead."
        )
    mlflow = _mlflow()
    table = result.results
    searched = [
        c
        for c in table.columns
        if c
        not in (
            Columns.trial,
            Columns.params,
            Columns.selection_score,
            Columns.held_out_score,
            Columns.fit_seconds,
            Columns.rank,
            "pruned",
        )
    ]
    settings = {
        "metric": result.metric,
        "selection_cutoffs": ", ".join(str(c.date()) for c in result.selection_cutoffs),
        "held_out_cutoff": str(result.held_out_cutoff.date()),
        "trials": len(table),
    }
    best_params = {metric_name("best", key): value for key, value in result.best_params.items()}
    best = table.loc[table[Columns.rank] == 1, Columns.selection_score]
    with _run(run_name) as run:
        mlflow.log_params({**_params_of(settings), **_params_of(best_params)})
        mlflow.log_metrics(
            {
                "held_out": _float(result.held_out),
                "best_selection_score": _float(best.iloc[0]) if len(best) else math.nan,
            }
        )
        with tempfile.TemporaryDirectory(prefix="crosssell-mlflow-") as folder:
            table.to_csv(Path(folder) / "trials.csv", index=False)
            missing = _draw(Path(folder), {"selection.png": result.plot})
            mlflow.log_artifacts(folder, artifact_path="tune")
        if missing:
            mlflow.set_tag("crosssell.charts", missing)
        for row in table.to_dict("records"):
            with _run(f"trial {int(row[Columns.trial])}", nested=True):
                trial_params = {c: row[c] for c in searched if not _is_missing(row[c])}
                mlflow.log_params(_params_of({"trial": row[Columns.trial], **trial_params}))
                pruned = bool(row.get("pruned", False))
                scores = {
                    "selection_score": row[Columns.selection_score],
                    "held_out_score": row[Columns.held_out_score],
                    "fit_seconds": row[Columns.fit_seconds],
                    "rank": row[Columns.rank],
                }
                mlflow.log_metrics(
                    {
                        key: _float(value)
                        for key, value in scores.items()
                        if not (pruned and key != "fit_seconds")
                    }
                )
                mlflow.set_tag("crosssell.pruned", str(pruned).lower())
        if log_best:
            log_model(result.best_recommender, "best_recommender")
        return str(run.info.run_id)


def _is_missing(value: Any) -> bool:
    """Whether a trial's cell is empty (a parameter its sub-space does not set)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))
