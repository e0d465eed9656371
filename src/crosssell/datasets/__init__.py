"""Data to try crosssell on: a synthetic B2B book, the shipped demo book, and Online Retail II.

* :func:`synthetic_frames` / :func:`synthetic_book` generate a seeded contract book of any size
  with a learnable latent structure (see :mod:`crosssell.datasets._synthetic`).
* :func:`demo` loads a small book (about 500 clients, 2021-01-01 .. 2025-06-30) shipped with the
  package; it never generates or downloads anything at run time. Its files are rebuilt with
  ``python -m crosssell.datasets._synthetic --demo``.
* :func:`synthetic_take_up` / :func:`demo_take_up` return the true take-up chances a synthetic
  book was drawn with (:class:`~crosssell.datasets._synthetic.TakeUp`), to check that a model's
  propensities are calibrated.
* :func:`synthetic_churn` / :func:`demo_churn` return the true churn hazards of a synthetic
  book (:class:`~crosssell.datasets._synthetic.Churn`), to check that a retention model orders
  clients as the truth does.
* :func:`tiny` builds a four-contract book, small enough to read whole, for examples and tests.
* :func:`simulate_campaign` plays decisions, reactions and take-up forward with a known effect
  of proposing, to check :func:`crosssell.evaluation.lift`; :func:`simulate_uplift` draws one
  offer per client with a known effect per segment (some may be negative), to check
  :class:`crosssell.scorers.Uplift`.
* :func:`load_telco` turns a local copy of the IBM telco churn sample into a Book (one snapshot:
  services held, their tenure, who left in the last month).
* :func:`load_online_retail` turns a local copy of the UCI Online Retail II transactions into a
  Book.

Examples
--------
>>> from crosssell import datasets
>>> book = datasets.demo()
>>> len(book.product_ids)
24
>>> str(datasets.demo_as_of().date())
'2025-06-30'
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from crosssell.columns import Columns
from crosssell.datasets._campaign import Campaign, simulate_campaign, simulate_uplift

if TYPE_CHECKING:
    from crosssell.book import Book
    from crosssell.datasets._synthetic import (
        Churn,
        TakeUp,
        synthetic_churn,
        synthetic_frames,
        synthetic_take_up,
    )

__all__ = [
    "Campaign",
    "demo",
    "demo_as_of",
    "demo_churn",
    "demo_frames",
    "demo_take_up",
    "load_online_retail",
    "load_telco",
    "simulate_campaign",
    "simulate_uplift",
    "synthetic_book",
    "synthetic_churn",
    "synthetic_frames",
    "synthetic_take_up",
    "tiny",
]

_TABLES = ("contracts", "products", "clients", "events")
_TUPLE_COLUMNS = (Columns.requires, Columns.excludes)
_TEXT_COLUMNS = (
    Columns.contract,
    Columns.client,
    Columns.product,
    Columns.name,
    Columns.family,
    Columns.segment,
    Columns.region,
    Columns.owner,
    Columns.parent,
    Columns.type,
    Columns.detail,
    Columns.ref,
)
_DATE_COLUMNS = (Columns.start, Columns.end, Columns.date)


def __getattr__(name: str) -> Any:
    # The generator is imported on first use, so that running it as a script
    # (python -m crosssell.datasets._synthetic) does not find it already imported.
    if name in ("synthetic_frames", "synthetic_take_up", "synthetic_churn"):
        from crosssell.datasets import _synthetic

        return getattr(_synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def synthetic_book(
    n_clients: int = 2000,
    *,
    n_families: int = 8,
    n_tiers: int = 3,
    start: Any = "2020-01-01",
    end: Any = "2025-06-30",
    seed: int = 0,
) -> Book:
    """Generate a synthetic B2B book and validate it into a :class:`~crosssell.Book`.

    Same as ``Book.from_frames(**synthetic_frames(...))``; see :func:`synthetic_frames` for the
    data and :mod:`crosssell.datasets._synthetic` for the latent structure behind it.

    Parameters
    ----------
    n_clients : int, default 2000
        Number of client accounts.
    n_families : int, default 8
        Number of product families (at least 2).
    n_tiers : int, default 3
        Tiers per family (at least 1).
    start, end : date-like, default "2020-01-01", "2025-06-30"
        The simulated horizon, at least 12 months long.
    seed : int, default 0
        Seed of the random generator; the same seed gives the same book.

    Returns
    -------
    Book

    Raises
    ------
    ValueError
        If a parameter is out of range.

    Examples
    --------
    >>> from crosssell.datasets import synthetic_book
    >>> book = synthetic_book(300, n_families=4, n_tiers=2, seed=3)
    >>> len(book.client_ids), len(book.product_ids)
    (300, 8)
    """
    from crosssell.datasets._synthetic import synthetic_frames

    frames = synthetic_frames(
        n_clients, n_families=n_families, n_tiers=n_tiers, start=start, end=end, seed=seed
    )
    return _book(frames)


def _book(frames: dict[str, pd.DataFrame]) -> Book:
    from crosssell.book import Book

    return Book.from_frames(
        contracts=frames["contracts"],
        products=frames["products"],
        clients=frames["clients"],
        events=frames["events"],
    )


def demo_as_of() -> pd.Timestamp:
    """Return the demo book's "today": the last day of its history.

    Returns
    -------
    pandas.Timestamp

    Examples
    --------
    >>> from crosssell.datasets import demo_as_of
    >>> demo_as_of()
    Timestamp('2025-06-30 00:00:00')
    """
    from crosssell.datasets._synthetic import DEMO_SETTINGS

    return pd.Timestamp(DEMO_SETTINGS["end"])


def demo_take_up() -> TakeUp:
    """Return the true take-up chances the demo book was drawn with.

    The demo's simulation is run again (about a second) with its settings and seed; it draws the
    same numbers, so the chances belong to the book :func:`demo` loads.

    Returns
    -------
    TakeUp
        ``monthly`` chances per (client, product, month), and ``within(as_of, horizon)``.

    Examples
    --------
    >>> from crosssell.datasets import demo_take_up
    >>> truth = demo_take_up().within("2025-03-31", "90D")
    >>> truth.columns.tolist()
    ['client_id', 'product_id', 'probability']
    """
    from crosssell.datasets._synthetic import DEMO_SETTINGS, synthetic_take_up

    return synthetic_take_up(**DEMO_SETTINGS)


def demo_churn() -> Churn:
    """Return the true churn hazards the demo book was drawn with.

    The demo's simulation is run again (about a second) with its settings and seed; it draws the
    same numbers, so the hazards belong to the book :func:`demo` loads.

    Returns
    -------
    Churn
        ``monthly`` hazards per (client, month), ``starts``, and ``within(as_of, horizon)``.

    Examples
    --------
    >>> from crosssell.datasets import demo_churn
    >>> risk = demo_churn().within("2025-03-31", "180D")
    >>> risk.columns.tolist()
    ['client_id', 'churning', 'probability']
    """
    from crosssell.datasets._synthetic import DEMO_SETTINGS, synthetic_churn

    return synthetic_churn(**DEMO_SETTINGS)


def demo_frames() -> dict[str, pd.DataFrame]:
    """Read the raw frames of the demo book shipped with the package.

    The frames are exactly those of ``synthetic_frames(**DEMO_SETTINGS)`` (500 clients, 8
    families of 3 tiers, 2021-01-01 .. 2025-06-30, seed 7), stored as Parquet files. Nothing is
    generated or downloaded.

    Returns
    -------
    dict of str to pandas.DataFrame
        Keys ``contracts``, ``products``, ``clients``, ``events``.

    Examples
    --------
    >>> from crosssell.datasets import demo_frames
    >>> frames = demo_frames()
    >>> len(frames["clients"])
    500
    >>> frames["products"].loc[0, "product_id"]
    'CRM-1'
    """
    pq = importlib.import_module("pyarrow.parquet")
    folder = resources.files("crosssell.datasets").joinpath("data", "demo")
    frames: dict[str, pd.DataFrame] = {}
    for table in _TABLES:
        with folder.joinpath(f"{table}.parquet").open("rb") as handle:
            frames[table] = _restore(pq.read_table(handle).to_pandas(date_as_object=False))
    return frames


def _restore(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the columns read from Parquet the dtypes the generator produces."""
    for col in frame.columns:
        if col in _TEXT_COLUMNS:
            frame[col] = frame[col].astype("str")
        elif col in _DATE_COLUMNS:
            frame[col] = frame[col].astype("datetime64[ns]")
        elif col in _TUPLE_COLUMNS:
            frame[col] = pd.Series([tuple(v) for v in frame[col]], dtype=object)
        elif col == Columns.segments:
            frame[col] = pd.Series(
                [None if v is None else tuple(v) for v in frame[col]], dtype=object
            )
    return frame


def demo() -> Book:
    """Load the small demo book shipped with the package.

    About 500 clients of a software vendor with 8 product families in 3 tiers, contracts,
    catalog, accounts and an event log from 2021-01-01 to 2025-06-30 (:func:`demo_as_of`). The
    files are read from the installed package; nothing is generated or downloaded.

    Returns
    -------
    Book

    Examples
    --------
    >>> from crosssell.datasets import demo, demo_as_of
    >>> book = demo()
    >>> len(book.client_ids)
    500
    >>> book.matrix(demo_as_of()).shape
    (500, 24)
    """
    return _book(demo_frames())


def tiny() -> Book:
    """Build a four-contract book, small enough to read whole, for examples and tests.

    Two clients and three products in two families. ``C1`` takes ``CRM-1`` on 2024-01-01 and
    moves up to ``CRM-2`` on 2024-08-01; ``C2`` takes ``ERP-1`` on 2024-01-01 and adds
    ``CRM-1`` on 2024-09-01. As of 2024-06-30 the second half of 2024 thus holds one upsell and
    one cross-sell. Contracts carry an annual ``value``; products a ``family``, a ``tier`` and
    the date they went on sale (``available_from``, 2024-01-01 for all three).

    Returns
    -------
    Book

    Examples
    --------
    >>> from crosssell.datasets import tiny
    >>> book = tiny()
    >>> book.contracts[["client_id", "product_id", "start_date", "value"]]
      client_id product_id start_date  value
    0        C1      CRM-1 2024-01-01  100.0
    1        C1      CRM-2 2024-08-01  250.0
    2        C2      ERP-1 2024-01-01   80.0
    3        C2      CRM-1 2024-09-01  100.0
    """
    from crosssell.book import Book

    contracts = pd.DataFrame(
        {
            Columns.client: ["C1", "C1", "C2", "C2"],
            Columns.product: ["CRM-1", "CRM-2", "ERP-1", "CRM-1"],
            Columns.start: ["2024-01-01", "2024-08-01", "2024-01-01", "2024-09-01"],
            Columns.value: [100.0, 250.0, 80.0, 100.0],
        }
    )
    products = pd.DataFrame(
        {
            Columns.product: ["CRM-1", "CRM-2", "ERP-1"],
            Columns.family: ["CRM", "CRM", "ERP"],
            Columns.tier: [1, 2, 1],
            # CRM-2 is first sold in August but on sale all year, so it can be offered before
            Columns.available_from: ["2024-01-01"] * 3,
        }
    )
    return Book.from_frames(contracts=contracts, products=products)


def load_online_retail(path: str | Path) -> Book:
    """Build a Book from a local copy of the UCI Online Retail II transactions.

    Reads the tidy Parquet file (columns ``client_id``, ``product_id``, ``timestamp``,
    ``quantity``, ``amount``, ``is_cancellation``, ``is_non_product``, ``country``, ...), keeps
    the clean rows (client known, not a cancellation, quantity above zero, merchandise only) and
    returns ``Book.from_transactions(lines, lookback="365D")`` with each client's country (its
    most frequent one) as ``region`` and each product's description (its most frequent one) as
    ``name``, so that reasons read as the shop's catalogue does. Nothing is downloaded.

    Parameters
    ----------
    path : str or Path
        The Parquet file, or a folder holding ``transactions.parquet``.

    Returns
    -------
    Book

    Raises
    ------
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> from crosssell.datasets import load_online_retail
    >>> load_online_retail("no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: Online Retail II transactions not found at no/such/folder/...
    """
    from crosssell.book import Book

    pq = importlib.import_module("pyarrow.parquet")
    source = Path(path)
    if source.is_dir() or not source.suffix:
        source = source / "transactions.parquet"
    if not source.is_file():
        raise FileNotFoundError(
            f"Online Retail II transactions not found at {source}. Pass the path of "
            "transactions.parquet or of the folder that holds it."
        )
    columns = [
        Columns.client,
        Columns.product,
        Columns.timestamp,
        Columns.quantity,
        Columns.amount,
        "is_cancellation",
        "is_non_product",
        "country",
    ]
    # the product descriptions name the products when the file has them
    named = "description" in pq.read_schema(source).names
    raw = pq.read_table(source, columns=[*columns, "description"] if named else columns).to_pandas(
        date_as_object=False
    )
    clean = (
        raw[Columns.client].notna()
        & ~raw["is_cancellation"].astype(bool)
        & (raw[Columns.quantity] > 0)
        & ~raw["is_non_product"].astype(bool)
    )
    keep = [Columns.client, Columns.product, Columns.timestamp, Columns.quantity, Columns.amount]
    lines = raw.loc[clean, keep].reset_index(drop=True)
    # Guests (no client id) are gone, so the nullable integer ids fit plain int64.
    lines[Columns.client] = lines[Columns.client].astype("int64")
    countries = (
        raw.loc[clean, [Columns.client, "country"]]
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(["n", Columns.client, "country"], ascending=[False, True, True], kind="stable")
        .drop_duplicates(Columns.client)
        .sort_values(Columns.client)
    )
    clients = pd.DataFrame(
        {
            Columns.client: countries[Columns.client].astype("int64").to_numpy(),
            Columns.region: countries["country"].astype("str").to_numpy(),
        }
    )
    if not named:
        return Book.from_transactions(lines, lookback="365D", clients=clients)
    # a product's name is the description its lines carry most often (spellings vary a little)
    names = (
        raw.loc[clean & raw["description"].notna(), [Columns.product, "description"]]
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(
            ["n", Columns.product, "description"], ascending=[False, True, True], kind="stable"
        )
        .drop_duplicates(Columns.product)
    )
    products = pd.DataFrame(
        {
            Columns.product: names[Columns.product].astype("str").to_numpy(),
            Columns.name: names["description"].astype("str").str.strip().to_numpy(),
        }
    )
    return Book.from_transactions(lines, lookback="365D", clients=clients, products=products)


_TELCO_SERVICES: Final = (
    "PhoneService",
    "MultipleLines",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)
_TELCO_CLIENT_COLUMNS: Final = (
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
)


def load_telco(path: str | Path, *, snapshot: Any = "2024-01-01") -> Book:
    """Build a Book from a local copy of the IBM telco customer churn sample.

    The file is one snapshot: each customer is a client; each service held (phone, multiple
    lines, DSL or fibre internet, and the six internet add-ons) is a contract that started
    ``tenure`` months before ``snapshot`` (the data has no per-service dates), with the monthly
    charges times 12, shared evenly among the services, as its annual value. A customer who
    churned ("Churn" = Yes: left within the last month) has every contract end 15 days before
    the snapshot; the others' contracts are open. The contract type (month-to-month, one or two
    years) is the client's ``segment`` and, with gender, senior citizen, partner, dependents,
    paperless billing and payment method, a column of the clients table. Nothing is
    downloaded.

    The end dates of churners are written by their departure, not signed in advance: fit a
    :class:`~crosssell.RetentionModel` on this Book with ``end_dates="observed"``.

    Parameters
    ----------
    path : str or Path
        The Parquet file, or a folder holding ``customers.parquet``.
    snapshot : date-like, default "2024-01-01"
        The date the snapshot is placed at.

    Returns
    -------
    Book

    Raises
    ------
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> from crosssell.datasets import load_telco
    >>> load_telco("no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: Telco churn customers not found at no/such/folder/...
    """
    import numpy as np

    from crosssell.book import Book

    source = Path(path)
    if source.is_dir() or not source.suffix:
        source = source / "customers.parquet"
    if not source.is_file():
        raise FileNotFoundError(
            f"Telco churn customers not found at {source}. Pass the path of customers.parquet "
            "or of the folder that holds it."
        )
    raw = pd.read_parquet(source)
    at = pd.Timestamp(snapshot).normalize()
    ids = raw["customerID"].astype(str).to_numpy()
    held = {name: (raw[name] == "Yes").to_numpy() for name in _TELCO_SERVICES}
    internet = raw["InternetService"].astype(str)
    held["Internet DSL"] = (internet == "DSL").to_numpy()
    held["Internet Fiber"] = (internet == "Fiber optic").to_numpy()
    n_services = np.sum(list(held.values()), axis=0)
    annual = raw["MonthlyCharges"].to_numpy(np.float64) * 12 / np.maximum(n_services, 1)
    tenure = raw["tenure"].to_numpy(np.int64)
    month = np.datetime64(at.strftime("%Y-%m"), "M")
    into = (at - pd.Timestamp(str(month))).to_timedelta64()
    months_back = (month - tenure).astype("datetime64[ns]") + into
    # joined this month: a day before the snapshot
    start = np.where(tenure > 0, months_back, np.datetime64(at - pd.Timedelta(days=1)))
    left = (raw["Churn"] == "Yes").to_numpy()
    end = np.where(left, np.datetime64(at - pd.Timedelta(days=15)), np.datetime64("NaT"))
    parts = []
    for product, mask in held.items():
        rows = np.flatnonzero(mask)
        parts.append(
            pd.DataFrame(
                {
                    Columns.client: ids[rows],
                    Columns.product: product,
                    Columns.start: start[rows],
                    Columns.end: end[rows],
                    Columns.value: annual[rows],
                }
            )
        )
    contracts = pd.concat(parts, ignore_index=True)
    products = pd.DataFrame({Columns.product: list(held)})
    products[Columns.family] = [
        "Internet" if p.startswith("Internet") else p for p in products[Columns.product]
    ]
    clients = pd.DataFrame({Columns.client: ids, Columns.segment: raw["Contract"].astype(str)})
    for name in _TELCO_CLIENT_COLUMNS:
        clients[name] = raw[name].to_numpy()
    return Book.from_frames(contracts=contracts, products=products, clients=clients)
