"""Tests of crosssell.weighting: how much each held (client, product) pair weighs."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from crosssell import Book
from crosssell.book import OPEN_END, ContractArrays
from crosssell.columns import Columns
from crosssell.matrix import build_matrix
from crosssell.weighting import (
    MIN_WEIGHT,
    Binary,
    Combined,
    HeldPairs,
    LogValue,
    Quantity,
    Recency,
    Tenure,
    Value,
    Weighting,
    as_weighting,
    finalize_weights,
)

C = Columns
AS_OF = "2024-07-01"
DAY = 24 * 3600 * 10**9


def make_book(frame: pd.DataFrame) -> Book:
    return Book.from_frames(contracts=frame)


@pytest.fixture
def book() -> Book:
    """C1 holds P1 through a renewal chain, C2 holds P1 with an unknown value, C1 held P2."""
    frame = pd.DataFrame(
        {
            C.client: ["C1", "C1", "C2", "C1"],
            C.product: ["P1", "P1", "P1", "P2"],
            C.start: ["2022-07-01", "2023-07-01", "2024-01-01", "2023-01-01"],
            C.end: ["2023-07-01", None, None, "2024-01-01"],
            C.value: [100.0, 300.0, None, 50.0],
            C.quantity: [2.0, 5.0, 1.0, 4.0],
        }
    )
    return make_book(frame)


def weights(book: Book, weighting: Any, state: str = "active") -> dict[tuple[str, str], float]:
    m = build_matrix(book, AS_OF, weighting=weighting, state=state)  # type: ignore[arg-type]
    coo = m.client_product.tocoo()
    clients = m.clients.to_external(coo.row).tolist()
    products = m.products.to_external(coo.col).tolist()
    return {(c, p): float(v) for c, p, v in zip(clients, products, coo.data, strict=True)}


def years(start: str, end: str = AS_OF) -> float:
    return (pd.Timestamp(end) - pd.Timestamp(start)) / pd.Timedelta(days=365.25)


def test_binary_weighs_every_pair_one(book: Book) -> None:
    """Check that the binary weighting gives 1 to each held pair, however many rows it has."""
    assert weights(book, "binary") == {("C1", "P1"): 1.0, ("C2", "P1"): 1.0}
    assert weights(book, Binary(), state="ever") == {
        ("C1", "P1"): 1.0,
        ("C2", "P1"): 1.0,
        ("C1", "P2"): 1.0,
    }


def test_value_sums_counted_rows_and_floors_unknown(book: Book) -> None:
    """Check that value sums the counted rows' values and keeps a NaN-valued pair at the floor."""
    active = weights(book, "value")
    assert active[("C1", "P1")] == 300.0
    assert active[("C2", "P1")] == pytest.approx(MIN_WEIGHT)
    ever = weights(book, Value(), state="ever")
    assert ever == pytest.approx(
        {("C1", "P1"): 400.0, ("C2", "P1"): MIN_WEIGHT, ("C1", "P2"): 50.0}
    )


def test_log_value_is_log1p_of_value(book: Book) -> None:
    """Check that log_value is log1p of the summed value, with unknown values at the floor."""
    w = weights(book, "log_value", state="ever")
    assert w[("C1", "P1")] == pytest.approx(math.log1p(400.0), rel=1e-6)
    assert w[("C1", "P2")] == pytest.approx(math.log1p(50.0), rel=1e-6)
    assert w[("C2", "P1")] == pytest.approx(MIN_WEIGHT)


def test_tenure_counts_years_from_earliest_counted_start(book: Book) -> None:
    """Check that tenure is 1 + years since the earliest start of the pair's counted rows."""
    active = weights(book, "tenure")
    # only the renewal is active, so tenure runs from 2023-07-01
    assert active[("C1", "P1")] == pytest.approx(1 + years("2023-07-01"), rel=1e-6)
    assert active[("C2", "P1")] == pytest.approx(1 + years("2024-01-01"), rel=1e-6)
    ever = weights(book, Tenure(), state="ever")
    assert ever[("C1", "P1")] == pytest.approx(1 + years("2022-07-01"), rel=1e-6)


def test_tenure_of_a_holding_starting_on_as_of_is_one() -> None:
    """Check that a holding that starts on as_of weighs 1 under tenure, not 0."""
    frame = pd.DataFrame(
        {
            C.client: ["C1"],
            C.product: ["P1"],
            C.start: [AS_OF],
            C.end: [None],
            C.value: [1.0],
            C.quantity: [1.0],
        }
    )
    assert weights(make_book(frame), "tenure") == {("C1", "P1"): 1.0}


def test_recency_halves_every_half_life(book: Book) -> None:
    """Check that recency is 0.5 ** (age of the latest start / half-life) for active holdings."""
    w = weights(book, Recency(half_life="366D"))
    assert w[("C1", "P1")] == pytest.approx(0.5**1, rel=1e-6)  # 2023-07-01 is 366 days back
    assert w[("C2", "P1")] == pytest.approx(0.5 ** (182 / 366), rel=1e-6)


def test_recency_ever_state_ages_from_the_last_end(book: Book) -> None:
    """Check that under state='ever' a pair whose contracts all ended ages from its last end."""
    w = weights(book, Recency(half_life="182D"), state="ever")
    # C1 held P2 until 2024-01-01, 182 days before as_of: one half-life, not 1.5 from its start
    assert w[("C1", "P2")] == pytest.approx(0.5, rel=1e-6)
    # C1's P1 renewal started 366 days back and is still running
    assert w[("C1", "P1")] == pytest.approx(0.5 ** (366 / 182), rel=1e-6)


def test_recency_name_uses_a_one_year_half_life(book: Book) -> None:
    """Check that the name 'recency' means Recency(half_life='365D')."""
    assert as_weighting("recency") == Recency(half_life="365D")
    assert weights(book, "recency") == weights(book, Recency(half_life="365D"))


def test_quantity_sums_counted_rows(book: Book) -> None:
    """Check that quantity sums the seats of the pair's counted rows."""
    assert weights(book, "quantity") == {("C1", "P1"): 5.0, ("C2", "P1"): 1.0}
    assert weights(book, Quantity(), state="ever")[("C1", "P1")] == 7.0


def test_combined_multiplies_factors(book: Book) -> None:
    """Check that a combination weighs each pair by the product of its factors."""
    w = weights(book, Recency(half_life="366D") * Quantity())
    assert w[("C1", "P1")] == pytest.approx(0.5 * 5.0, rel=1e-6)
    assert weights(book, ("quantity", "value")) == pytest.approx(
        {("C1", "P1"): 1500.0, ("C2", "P1"): MIN_WEIGHT}
    )


def test_multiplying_flattens_into_one_combined() -> None:
    """Check that chained * gives one flat Combined equal to the tuple form."""
    w = Recency() * LogValue() * Tenure()
    assert isinstance(w, Combined)
    assert w.factors == (Recency(), LogValue(), Tenure())
    assert as_weighting(("recency", LogValue(), "tenure")) == w
    assert w.describe() == "recency(half_life='365D') * log_value * tenure"


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("binary", Binary),
        ("value", Value),
        ("log_value", LogValue),
        ("tenure", Tenure),
        ("recency", Recency),
        ("quantity", Quantity),
    ],
)
def test_names_resolve_to_weightings(name: str, cls: type[Weighting]) -> None:
    """Check that each weighting name resolves to its class and describes itself by that name."""
    w = as_weighting(name)
    assert type(w) is cls
    assert w.describe().startswith(name)


def test_unknown_name_lists_the_options() -> None:
    """Check that an unknown name raises a ValueError listing every known name."""
    with pytest.raises(ValueError, match=r"must be one of 'binary', 'value', 'log_value', "):
        as_weighting("revenue")
    with pytest.raises(ValueError, match=r"Got \(\) instead"):
        as_weighting(())


def test_wrong_type_is_a_type_error() -> None:
    """Check that a weighting that is neither a name, a Weighting nor a tuple is a TypeError."""
    with pytest.raises(TypeError, match=r"The 'weighting' parameter of build_matrix"):
        as_weighting(1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("half_life", ["0D", "-5D", "soon", None])
def test_recency_rejects_bad_half_life(half_life: Any) -> None:
    """Check that a non-positive or unreadable half-life is rejected when constructed."""
    with pytest.raises(ValueError, match=r"The 'half_life' parameter of Recency must be"):
        Recency(half_life=half_life)


def test_recency_accepts_timedeltas() -> None:
    """Check that a half-life may be a Timedelta or timedelta64 and describes itself readably."""
    w = Recency(half_life=pd.Timedelta(days=30))
    assert w.describe() == "recency(half_life='30 days 00:00:00')"
    assert Recency(half_life=np.timedelta64(30, "D"))._half_life_ns() == 30 * DAY


def test_weightings_are_frozen_and_hashable() -> None:
    """Check that weightings are immutable values usable as dict keys."""
    w = Recency(half_life="90D")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.half_life = "10D"  # type: ignore[misc]
    assert {w: 1}[Recency(half_life="90D")] == 1


def test_finalize_weights_floors_zeros_and_rejects_negatives() -> None:
    """Check that zero and NaN weights are raised to the floor and negative ones are an error."""
    out = finalize_weights(np.array([0.0, np.nan, 3.0]), Value())
    assert out.dtype == np.float32
    assert out.tolist() == pytest.approx([MIN_WEIGHT, MIN_WEIGHT, 3.0])
    with pytest.raises(ValueError, match=r"returned 2 negative or infinite weights"):
        finalize_weights(np.array([-1.0, np.inf, 3.0]), Value())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _PerProductCount(Weighting):
    """A user weighting: the number of counted rows of the pair."""

    def weigh(self, pairs: HeldPairs) -> npt.NDArray[np.float64]:
        return pairs.sum(np.ones(pairs.rows.size))

    def describe(self) -> str:
        return "row_count"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _WrongShape(Weighting):
    """A broken user weighting returning one weight too many."""

    def weigh(self, pairs: HeldPairs) -> npt.NDArray[np.float64]:
        return np.ones(pairs.n_pairs + 1)

    def describe(self) -> str:
        return "wrong"


def test_user_weighting_plugs_in(book: Book) -> None:
    """Check that a user-defined Weighting is used as is and combines with built-ins."""
    assert weights(book, _PerProductCount(), state="ever") == {
        ("C1", "P1"): 2.0,
        ("C2", "P1"): 1.0,
        ("C1", "P2"): 1.0,
    }
    assert (_PerProductCount() * Binary()).describe() == "row_count * binary"


def test_user_weighting_of_wrong_shape_is_rejected(book: Book) -> None:
    """Check that a weighting returning the wrong number of weights raises a clear error."""
    with pytest.raises(ValueError, match=r"one weight per held pair, shape \(2,\)"):
        build_matrix(book, AS_OF, weighting=_WrongShape())


def test_held_pairs_groups_rows_in_client_product_order() -> None:
    """Check that HeldPairs orders pairs by (client, product), each pair's rows together."""
    arrays = ContractArrays(
        client=np.array([1, 0, 1, 0, 1], np.int32),
        product=np.array([0, 1, 0, 0, 2], np.int32),
        start=np.array([5, 4, 3, 2, 1], np.int64),
        end=np.full(5, OPEN_END, np.int64),
        value=np.array([1.0, 2.0, 4.0, 8.0, 16.0]),
        quantity=np.ones(5),
    )
    pairs = HeldPairs.group(arrays, np.arange(5), as_of=10, state="active", n_products=3)
    assert list(zip(pairs.client.tolist(), pairs.product.tolist(), strict=True)) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 2),
    ]
    assert pairs.sum(pairs.take(arrays.value)).tolist() == [8.0, 2.0, 5.0, 16.0]
    assert pairs.min(pairs.take(arrays.start)).tolist() == [2, 4, 3, 1]
    assert pairs.max(pairs.take(arrays.start)).tolist() == [2, 4, 5, 1]


def test_held_pairs_of_nothing_is_empty() -> None:
    """Check that grouping no rows gives zero pairs and empty reductions."""
    arrays = ContractArrays(
        client=np.array([0], np.int32),
        product=np.array([0], np.int32),
        start=np.array([5], np.int64),
        end=np.array([OPEN_END], np.int64),
        value=np.array([1.0]),
        quantity=np.ones(1),
    )
    pairs = HeldPairs.group(arrays, np.array([], np.intp), as_of=1, state="ever", n_products=1)
    assert pairs.n_pairs == 0
    assert pairs.sum(pairs.take(arrays.value)).size == 0
    for w in (Value(), Tenure(), Recency(), Quantity(), LogValue() * Tenure()):
        assert w.weigh(pairs).shape == (0,)
