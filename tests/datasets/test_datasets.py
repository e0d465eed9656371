"""Tests of crosssell.datasets: the synthetic generator, the shipped demo book, Online Retail II."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosssell import Book, Columns, EventType
from crosssell.datasets import (
    demo,
    demo_as_of,
    demo_frames,
    load_online_retail,
    synthetic_book,
    synthetic_frames,
    tiny,
)
from crosssell.datasets._synthetic import DEMO_SETTINGS, SEGMENTS, write_frames

C = Columns
E = EventType
SIX_MONTHS = pd.Timedelta(days=180)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return synthetic_frames(2000, seed=0)


def _family(products: pd.Series) -> pd.Series:
    return products.str.rsplit("-", n=1).str[0]


def _events(frames: dict[str, pd.DataFrame], etype: str) -> pd.DataFrame:
    ev = frames["events"]
    return ev[ev[C.type] == etype]


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_frames():
    """Check that the same arguments give identical frames."""
    a = synthetic_frames(150, seed=3)
    b = synthetic_frames(150, seed=3)
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table])


def test_different_seed_gives_different_frames():
    """Check that another seed gives other contracts and clients."""
    a = synthetic_frames(150, seed=3)
    b = synthetic_frames(150, seed=4)
    assert not a["contracts"].equals(b["contracts"])
    assert not a["clients"].equals(b["clients"])


# ------------------------------------------------------------------------------ shape


def test_tables_have_default_column_names(frames):
    """Check that the four tables use crosssell's default column names."""
    assert list(frames["contracts"].columns) == [
        C.contract, C.client, C.product, C.start, C.end, C.value, C.quantity,
    ]  # fmt: skip
    assert {C.product, C.family, C.tier, C.price, C.requires, C.excludes, C.sellable,
            C.segments} <= set(frames["products"].columns)  # fmt: skip
    assert {C.client, C.segment, C.region, C.owner, C.parent, C.do_not_contact,
            C.satisfaction} <= set(frames["clients"].columns)  # fmt: skip
    assert list(frames["events"].columns) == [C.client, C.date, C.type, C.product, C.detail, C.ref]


def test_sizes_follow_the_parameters():
    """Check that clients and products follow n_clients, n_families and n_tiers."""
    fr = synthetic_frames(120, n_families=5, n_tiers=4, seed=1)
    assert len(fr["clients"]) == 120
    assert len(fr["products"]) == 20
    assert fr["clients"][C.client].is_unique
    assert fr["contracts"][C.contract].is_unique


def test_every_family_has_every_tier(frames):
    """Check that the catalog is families x tiers named '<FAMILY>-<tier>' with prices rising."""
    products = frames["products"]
    assert (products.groupby(C.family)[C.tier].apply(sorted) == pd.Series([[1, 2, 3]] * 8)
            .set_axis(sorted(products[C.family].unique()))).all()  # fmt: skip
    assert (products[C.product] == products[C.family] + "-" + products[C.tier].astype(str)).all()
    assert (products.groupby(C.family)[C.price].apply(lambda p: p.is_monotonic_increasing)).all()


def test_catalog_rules(frames):
    """Check the catalog's prerequisites, exclusion pair, retired product and segments."""
    products = frames["products"].set_index(C.product)
    known = set(products.index)
    requires = products[C.requires]
    assert (requires.map(len) > 0).sum() >= 2
    assert all(set(r) <= known for r in requires)
    excludes = products[C.excludes][products[C.excludes].map(len) > 0]
    assert len(excludes) == 2
    a, b = excludes.index
    assert excludes[a] == (b,)
    assert excludes[b] == (a,)
    assert (~products[C.sellable]).sum() == 1
    restricted = products[C.segments].dropna()
    assert len(restricted) >= 2
    assert all(set(s) < set(SEGMENTS) for s in restricted)


def test_clients_are_realistic(frames):
    """Check segments, owners with 40-80 clients, satisfaction 0..10, parents and do-not-contact."""
    clients = frames["clients"]
    assert set(clients[C.segment]) == set(SEGMENTS)
    assert clients[C.owner].value_counts().between(40, 80).all()
    assert clients[C.satisfaction].between(0, 10).all()
    subs = clients[clients[C.parent].notna()]
    assert 0 < len(subs) < 0.1 * len(clients)
    parents = clients.set_index(C.client).loc[subs[C.parent]]
    assert parents[C.parent].isna().all()
    assert 0 < clients[C.do_not_contact].sum() < 0.1 * len(clients)


# ------------------------------------------------------------------------------ contracts


def test_renewal_chains_exist(frames):
    """Check that many contracts are renewed back to back (next start == previous end)."""
    c = frames["contracts"]
    chained = c.merge(
        c, left_on=[C.client, C.product, C.end], right_on=[C.client, C.product, C.start]
    )
    assert len(chained) > 0.2 * len(c)


def test_one_tier_of_a_family_at_a_time(frames):
    """Check that an upgrade ends the lower contract the day the higher one starts."""
    c = frames["contracts"].assign(family=lambda d: _family(d[C.product]))
    c = c.sort_values([C.client, "family", C.start], kind="stable")
    prev_end = c.groupby([C.client, "family"])[C.end].shift(1)
    prev_product = c.groupby([C.client, "family"])[C.product].shift(1)
    has_prev = prev_product.notna()
    assert (c.loc[has_prev, C.start] >= prev_end[has_prev]).all()
    upgraded = has_prev & (prev_product != c[C.product]) & (prev_end == c[C.start])
    assert upgraded.sum() > 50


def test_contract_values(frames):
    """Check that dates are ordered, open ends exist, seats and values are positive."""
    c = frames["contracts"]
    closed = c[C.end].notna()
    assert (c.loc[closed, C.end] > c.loc[closed, C.start]).all()
    assert (~closed).sum() > 0
    assert (c[C.quantity] >= 1).all()
    assert (c[C.value] > 0).all()
    assert c[C.start].max() <= pd.Timestamp("2025-06-30")


def test_lapses_and_churn_happen(frames):
    """Check that some clients hold nothing at the end and some contracts lapse."""
    c = frames["contracts"]
    end = pd.Timestamp("2025-06-30")
    active = c[(c[C.start] <= end) & (c[C.end].isna() | (c[C.end] > end))]
    assert active[C.client].nunique() < len(frames["clients"])
    ends = c[c[C.end].notna() & (c[C.end] <= end)]
    followed = ends.merge(c, left_on=[C.client, C.end], right_on=[C.client, C.start])
    assert len(ends) > len(followed[[f"{C.contract}_x"]].drop_duplicates())


def test_requires_and_excludes_are_respected(frames):
    """Check that nobody starts an add-on family without its base or holds an excluded pair."""
    c = frames["contracts"]
    products = frames["products"].set_index(C.product)
    addons = products[products[C.requires].map(len) > 0]
    for family, required in addons.groupby(C.family)[C.requires].first().items():
        bought = c[_family(c[C.product]) == family]
        base = c[c[C.product].isin(required)]
        pairs = bought.merge(base, on=C.client, suffixes=("", "_base"))
        held = (pairs[f"{C.start}_base"] <= pairs[C.start]) & (
            pairs[f"{C.end}_base"].isna() | (pairs[f"{C.end}_base"] > pairs[C.start])
        )
        ok = pairs.loc[held, C.contract].unique()
        first = bought.sort_values(C.start).drop_duplicates(C.client)
        assert first[C.contract].isin(ok).all()
    excl = products[products[C.excludes].map(len) > 0]
    a, b = excl.index
    pairs = c[c[C.product] == a].merge(c[c[C.product] == b], on=C.client)
    overlap = (pairs[f"{C.start}_x"] < pairs[f"{C.end}_y"].fillna(pd.Timestamp.max)) & (
        pairs[f"{C.start}_y"] < pairs[f"{C.end}_x"].fillna(pd.Timestamp.max)
    )
    assert not overlap.any()


def test_retired_product_is_not_bought_after_retirement(frames):
    """Check that the retired product gets no new holders late in the horizon."""
    c = frames["contracts"]
    retired = frames["products"].loc[~frames["products"][C.sellable], C.product].item()
    first = c[c[C.product] == retired].groupby(C.client)[C.start].min()
    assert len(first) > 0
    assert first.max() < pd.Timestamp("2023-01-01")


# ------------------------------------------------------------------------------ events


def test_complaints_open_and_close_consistently(frames):
    """Check that each closed complaint was opened before by the same client; some stay open."""
    opened = _events(frames, E.complaint_opened)
    closed = _events(frames, E.complaint_closed)
    assert opened[C.ref].is_unique
    assert closed[C.ref].is_unique
    pairs = closed.merge(opened, on=C.ref, suffixes=("_c", "_o"), validate="one_to_one")
    assert len(pairs) == len(closed)
    assert (pairs[f"{C.client}_c"] == pairs[f"{C.client}_o"]).all()
    assert (pairs[f"{C.date}_c"] > pairs[f"{C.date}_o"]).all()
    assert len(opened) > len(closed)


def test_accepted_offers_have_their_contract(frames):
    """Check that every accepted offer was made before and a contract starts that day."""
    made = _events(frames, E.offer_made)
    accepted = _events(frames, E.offer_accepted)
    assert len(accepted) > 100
    pairs = accepted.merge(made, on=C.ref, suffixes=("", "_made"), validate="one_to_one")
    assert len(pairs) == len(accepted)
    assert (pairs[f"{C.date}_made"] < pairs[C.date]).all()
    c = frames["contracts"]
    hit = accepted.merge(
        c, left_on=[C.client, C.product, C.date], right_on=[C.client, C.product, C.start]
    )
    assert hit[C.ref].nunique() == len(accepted)


def test_declined_offers_have_no_contract_within_months(frames):
    """Check that after a declined offer the client buys no such product for six months."""
    made = _events(frames, E.offer_made)
    declined = _events(frames, E.offer_declined)
    assert len(declined) > 100
    pairs = declined.merge(made, on=C.ref, suffixes=("", "_made"), validate="one_to_one")
    assert len(pairs) == len(declined)
    assert (pairs[C.product] == pairs[f"{C.product}_made"]).all()
    c = frames["contracts"]
    later = pairs.merge(c, on=[C.client, C.product])
    soon = (later[C.start] >= later[f"{C.date}_made"]) & (
        later[C.start] <= later[C.date] + SIX_MONTHS
    )
    held = (later[C.start] <= later[f"{C.date}_made"]) & (
        later[C.end].isna() | (later[C.end] > later[f"{C.date}_made"])
    )
    assert not (soon | held).any()


def test_no_offers_to_do_not_contact_clients(frames):
    """Check that clients who asked not to be contacted get no offers."""
    dnc = frames["clients"].loc[frames["clients"][C.do_not_contact], C.client]
    assert not _events(frames, E.offer_made)[C.client].isin(dnc).any()


def test_every_event_type_occurs_within_the_horizon(frames):
    """Check that all built-in event types occur, dated inside the horizon, sorted by date."""
    ev = frames["events"]
    assert set(ev[C.type]) == set(E.known)
    assert ev[C.date].between(pd.Timestamp("2020-01-01"), pd.Timestamp("2025-06-30")).all()
    assert ev[C.date].is_monotonic_increasing
    needs = _events(frames, E.need)[C.product]
    families = set(frames["products"][C.family])
    assert needs.isin(families).any()
    assert needs.isin(set(frames["products"][C.product])).any()


# ------------------------------------------------------------------------------ Book


def test_book_validates_without_rejected_rows(frames):
    """Check that the frames validate into a Book with nothing rejected."""
    book = Book.from_frames(**frames)
    assert len(book.rejected) == 0
    assert len(book.client_ids) == 2000
    assert len(book.contract_arrays) == len(frames["contracts"])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_families=st.integers(2, 13),
    n_tiers=st.integers(1, 5),
)
def test_any_shape_validates(seed, n_families, n_tiers):
    """Check that any seed and catalog shape gives a Book with nothing rejected."""
    fr = synthetic_frames(60, n_families=n_families, n_tiers=n_tiers, seed=seed)
    book = Book.from_frames(**fr)
    assert len(book.rejected) == 0
    assert len(book.product_ids) == n_families * n_tiers


def test_synthetic_book_is_from_frames():
    """Check that synthetic_book validates the same frames synthetic_frames returns."""
    book = synthetic_book(80, seed=2)
    fr = synthetic_frames(80, seed=2)
    pd.testing.assert_frame_equal(
        book.contracts[fr["contracts"].columns].reset_index(drop=True), fr["contracts"],
        check_dtype=False,
    )  # fmt: skip


def _hit_rate_at_3(scores: np.ndarray, held: np.ndarray, new: np.ndarray) -> float:
    scores = np.where(held, -np.inf, scores)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    rows = np.flatnonzero(new.any(axis=1))
    return float(new[rows[:, None], top[rows]].any(axis=1).mean())


def test_holdings_are_learnable():
    """Check that look-alike families predict next year's purchases better than popularity."""
    book = synthetic_book(3000, seed=5)
    held = book.matrix("2024-06-30", state="ever").client_product.toarray() > 0
    later = book.matrix("2025-06-30", state="ever").client_product.toarray() > 0
    new = later & ~held
    x = held.astype(np.float64)
    popularity = x.sum(axis=0)
    norm = np.sqrt(popularity) + 1e-9
    cosine = (x.T @ x) / np.outer(norm, norm)
    np.fill_diagonal(cosine, 0.0)
    by_cosine = _hit_rate_at_3(x @ cosine, held, new)
    by_popularity = _hit_rate_at_3(np.tile(popularity, (len(x), 1)), held, new)
    assert by_cosine > by_popularity + 0.03


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_clients": 0}, "The 'n_clients' parameter of synthetic_frames must be an int in the "
                           "range [1, inf). Got 0 instead."),
        ({"n_families": 1}, "The 'n_families' parameter"),
        ({"n_tiers": 2.5}, "Got 2.5 instead."),
        ({"start": "soon"}, "The 'start' parameter of synthetic_frames must be a date"),
        ({"start": "2024-01-01", "end": "2024-06-30"}, "at least 12 months after 'start'"),
    ],
)  # fmt: skip
def test_bad_parameters_are_rejected(kwargs, message):
    """Check that out-of-range parameters raise a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=re.escape(message)):
        synthetic_frames(**{"n_clients": 10, **kwargs})


# ------------------------------------------------------------------------------ demo


def test_demo_equals_regenerating_it():
    """Check that the shipped demo files equal the generator run with the demo settings."""
    shipped = demo_frames()
    fresh = synthetic_frames(**DEMO_SETTINGS)
    for table in fresh:
        pd.testing.assert_frame_equal(shipped[table], fresh[table])


def test_demo_files_are_small():
    """Check that every shipped demo file is well under 1 MB."""
    folder = resources.files("crosssell.datasets").joinpath("data", "demo")
    sizes = {
        name: len(folder.joinpath(f"{name}.parquet").read_bytes())
        for name in ("contracts", "products", "clients", "events")
    }
    assert max(sizes.values()) < 500_000


def test_demo_book_loads():
    """Check that demo() gives a valid book of about 500 clients with holdings at its as_of."""
    book = demo()
    assert len(book.client_ids) == 500
    assert len(book.rejected) == 0
    assert demo_as_of() == pd.Timestamp("2025-06-30")
    assert book.matrix(demo_as_of()).client_product.nnz > 500
    first, last = book.dates
    assert first >= pd.Timestamp("2021-01-01")
    assert last <= demo_as_of()


def test_write_frames_round_trips(tmp_path):
    """Check that written files read back as the same frames (tuples and None included)."""
    import pyarrow.parquet as pq

    from crosssell.datasets import _restore

    fr = synthetic_frames(40, seed=9)
    write_frames(fr, tmp_path)
    for table, frame in fr.items():
        back = _restore(pq.read_table(tmp_path / f"{table}.parquet").to_pandas())
        pd.testing.assert_frame_equal(back, frame)


# ------------------------------------------------------------------------------ tiny


def test_tiny_holds_four_contracts_of_two_clients():
    """Check that tiny() gives two clients, three products and the four contracts it describes."""
    book = tiny()
    assert isinstance(book, Book)
    assert len(book.rejected) == 0
    assert sorted(book.client_ids.external) == ["C1", "C2"]
    assert sorted(book.product_ids.external) == ["CRM-1", "CRM-2", "ERP-1"]
    held = book.contracts[[C.client, C.product, C.value]]
    assert sorted(map(tuple, held.to_numpy().tolist())) == [
        ("C1", "CRM-1", 100.0),
        ("C1", "CRM-2", 250.0),
        ("C2", "CRM-1", 100.0),
        ("C2", "ERP-1", 80.0),
    ]
    catalog = book.products.set_index(C.product)
    assert catalog[C.family].to_dict() == {"CRM-1": "CRM", "CRM-2": "CRM", "ERP-1": "ERP"}
    assert catalog[C.tier].to_dict() == {"CRM-1": 1, "CRM-2": 2, "ERP-1": 1}


def test_tiny_is_built_anew_each_call():
    """Check that two calls give equal but separate books, so a caller may not spoil the next."""
    first, second = tiny(), tiny()
    assert first is not second
    pd.testing.assert_frame_equal(first.contracts, second.contracts)


# ------------------------------------------------------------------------------ Online Retail


def _retail_fixture(path: Path) -> None:
    pd.DataFrame(
        {
            C.client: pd.array([1, 1, 2, None, 3, 3, 3], dtype="Int64"),
            C.product: ["A", "B", "A", "A", "POST", "B", "C"],
            C.timestamp: pd.to_datetime(["2011-01-01", "2011-02-01", "2011-03-01", "2011-03-02",
                                         "2011-04-01", "2011-04-02", "2011-04-03"]),
            C.quantity: [1, 2, 3, 4, 1, -1, 5],
            C.amount: [1.0, 2.0, 3.0, 4.0, 5.0, -1.0, 5.0],
            "is_cancellation": [False, False, False, False, False, True, False],
            "is_non_product": [False, False, False, False, True, False, False],
            "country": ["France", "France", "Spain", "Spain", "Spain", "Spain", "Spain"],
        }
    ).to_parquet(path / "transactions.parquet")  # fmt: skip


def test_load_online_retail_keeps_clean_rows(tmp_path):
    """Check that guests, cancellations, returns and non-products are dropped."""
    _retail_fixture(tmp_path)
    book = load_online_retail(tmp_path)
    assert len(book.contract_arrays) == 4
    assert sorted(book.client_ids.external.tolist()) == [1, 2, 3]
    assert sorted(book.product_ids.external.tolist()) == ["A", "B", "C"]
    regions = book.client_table.set_index(C.client)[C.region]
    assert regions.to_dict() == {1: "France", 2: "Spain", 3: "Spain"}
    assert book.lookback == pd.Timedelta("365D")


def test_load_online_retail_missing_file(tmp_path):
    """Check that a missing file says where it looked."""
    with pytest.raises(FileNotFoundError, match=r"transactions\.parquet"):
        load_online_retail(tmp_path)


def _real_data_dir() -> Path:
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "online_retail_ii"
    return Path(os.environ.get("CROSSSELL_DATA_DIR", default))


@pytest.mark.realdata
@pytest.mark.slow
def test_load_online_retail_real_data():
    """Check the clean Online Retail II counts: 5,853 clients and 4,621 products."""
    folder = _real_data_dir()
    if not (folder / "transactions.parquet").is_file():
        pytest.skip("Online Retail II data not found; set CROSSSELL_DATA_DIR")
    book = load_online_retail(folder)
    assert len(book.contract_arrays) == 788_267
    assert len(book.client_ids) == 5_853
    assert len(book.product_ids) == 4_621
    assert book.client_table[C.region].notna().all()
