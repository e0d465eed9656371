"""Tests of block priorities: the sparse path equals the dense definition, rule by rule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell._calibrators import PlattCalibrator
from crosssell._kernels import MAX_K, SELECT_GROUPS
from crosssell._topk import ordered_top_k
from crosssell.arbitration import ScoreScale
from crosssell.arbitration._priority import (
    OfferMap,
    Pricing,
    cross_sell_floor,
    grouped_selection,
    score_block,
    select_block,
)
from crosssell.arbitration._select import _dense_choice, select_offers
from crosssell.candidates import Candidates
from crosssell.rules import NotWorthProposing, RuleContext, route_sales


@pytest.fixture(scope="module")
def demo() -> tuple[cs.Book, Candidates, object]:
    book = cs.datasets.demo()
    as_of = pd.Timestamp(cs.datasets.demo_as_of())
    cand = Candidates.build(book, as_of)
    ctx = RuleContext(book=book, as_of=as_of, holdings=cand.holdings)
    return book, cand, route_sales().evaluate(ctx)


def _families(cand):
    return cand.families.to_numpy(dtype=object)[cand.family]


def _floor(min_ev, min_p, cost):
    """A floor whose cost is none, one number, or one per family of the demo catalogue."""
    if cost == "family":
        cost = {"CRM": 120.0, "ERP": 40.0, "BI": 0.0, "SEC": 300.0}
    return NotWorthProposing(min_expected_value=min_ev, min_propensity=min_p, contact_cost=cost)


def _dense_reference(cand, suppression, rows, propensity, *, levers, floor, by_value=True):
    """The definition: dense typing, dense policy mask, not-worth on every pair."""
    chunk = cand.chunk(rows)
    value = np.broadcast_to(chunk.value, propensity.shape)
    if by_value:
        priority = np.multiply(propensity, value * levers, dtype=np.float32)
    else:
        priority = propensity.copy()
    blocked = ~chunk.is_candidate
    is_up = chunk.is_upsell if chunk.is_upsell is not None else np.zeros_like(blocked)
    if suppression is not None:
        blocked |= suppression.mask(rows, is_up)
    if floor is not None:
        cost = floor.costs(_families(cand))[None, :]
        blocked |= floor.blocked(propensity, propensity * value, cost=cost)
    blocked |= np.isnan(priority)
    priority[blocked] = -np.inf
    return priority, is_up, value


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "min_ev": st.sampled_from([0.0, 50.0, 400.0]),
            "min_p": st.sampled_from([0.0, 0.3, 0.7]),
            "cost": st.sampled_from([0.0, 30.0, 150.0, "family"]),
            "levers": st.booleans(),
            "scoped": st.booleans(),
            "policy": st.booleans(),
            "by_value": st.booleans(),
        }
    )
)
def test_sparse_block_equals_dense_definition(demo, case) -> None:
    """Check that score_block blocks, types and values every pair as the dense formulas do."""
    book, cand, suppression = demo
    rng = np.random.default_rng(case["seed"])
    if case["scoped"] and case["policy"]:
        # blocks limited to one offer type, which the demo policy does not produce everywhere
        shape = suppression.shape
        suppression = dataclasses.replace(
            suppression,
            client_upsell=rng.random(shape[0]) < 0.1,
            product_cross_sell=rng.random(shape[1]) < 0.05,
            product_upsell=rng.random(shape[1]) < 0.05,
            pairs_cross_sell=sp.csr_matrix(rng.random(shape) < 0.02),
            pairs_upsell=sp.csr_matrix(rng.random(shape) < 0.02),
        )
    if not case["policy"]:
        suppression = None
    rows = np.sort(rng.choice(len(book.client_ids), size=64, replace=False)).astype(np.int64)
    n = cand.n_products
    # propensities on a coarse grid, so the not-worth floor is met exactly and often
    propensity = rng.choice(np.linspace(0, 1, 11), size=(rows.size, n)).astype(np.float32)
    levers = rng.choice([0.5, 1.0, 2.0], size=n) if case["levers"] else np.ones(n)
    floor = _floor(case["min_ev"], case["min_p"], case["cost"])
    got = score_block(
        rows=rows,
        scores=propensity,
        propensity=propensity.copy(),
        offers=OfferMap.build(cand, suppression, block=97),
        pricing=Pricing.of(
            cand.product_value, levers, floor, _families(cand), by_value=case["by_value"]
        ),
        predict=lambda s: s,
        finite=True,
    )
    want, is_up, value = _dense_reference(
        cand, suppression, rows, propensity, levers=levers, floor=floor, by_value=case["by_value"]
    )
    np.testing.assert_array_equal(np.isfinite(got.priority), np.isfinite(want))
    np.testing.assert_allclose(got.priority[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-6)
    r, c = np.nonzero(np.isfinite(want))
    up, val = got.typed(r, c)
    np.testing.assert_array_equal(up, is_up[r, c])
    np.testing.assert_allclose(val, value[r, c])


def test_cross_sell_floor_is_exact_at_the_boundary() -> None:
    """Check that p * value > min_ev and p >= min_p hold exactly where p exceeds the bound."""
    p = np.linspace(0, 1, 10_001, dtype=np.float32)
    value = np.array([0.0, 1.0, 3.0, 7.0, 1e6])
    floor = NotWorthProposing(min_expected_value=0.7, min_propensity=0.25)
    bound = cross_sell_floor(floor, value)
    for j, v in enumerate(value):
        allowed = ~floor.blocked(p, p * v)
        np.testing.assert_array_equal(p > bound[j], allowed)


@pytest.mark.parametrize("cost", [0.3, 7.0, 25.0, 1e-3])
def test_cross_sell_floor_with_a_cost_is_exact_at_the_boundary(cost) -> None:
    """Check that p * value >= cost holds exactly where p exceeds the bound (equality passes)."""
    p = np.linspace(0, 1, 10_001, dtype=np.float32)
    value = np.array([0.0, 1.0, 3.0, 7.0, 25.0, 100.0, 1e6])
    floor = NotWorthProposing(min_expected_value=0.0, min_propensity=0.1, contact_cost=cost)
    bound = cross_sell_floor(floor, value, np.full(value.shape, cost))
    for j, v in enumerate(value):
        allowed = ~floor.blocked(p, p.astype(np.float64) * v)
        np.testing.assert_array_equal(p > bound[j], allowed)
    # an expected value exactly equal to the cost is worth proposing
    assert not floor.blocked(np.array([0.25]), np.array([cost]))[0]


def test_pricing_refuses_a_cost_per_family_without_families() -> None:
    """Check that pricing with a per-family cost and no families says what it needs."""
    floor = NotWorthProposing(contact_cost={"CRM": 1.0})
    with pytest.raises(ValueError, match="needs the family of each of the 2 products"):
        Pricing.of(np.array([1.0, 2.0]), np.ones(2), floor)


def test_no_floor_blocks_only_nan() -> None:
    """Check that without a floor every real propensity passes and NaN does not."""
    bound = cross_sell_floor(None, np.array([0.0, 5.0]))
    p = np.array([0.0, np.nan], dtype=np.float32)
    assert (p[:, None] > bound[None, :]).tolist() == [[True, True], [False, False]]


def test_floor_blocks_at_the_bound_and_allows_one_step_above(demo) -> None:
    """Check the float32 boundary: a propensity equal to the bound is blocked, the next one not."""
    _, cand, _ = demo
    rows = np.arange(8, dtype=np.int64)
    cross = cand.product_value.clip(min=0.0)
    floor = NotWorthProposing(min_expected_value=50.0, min_propensity=0.25)
    bound = cross_sell_floor(floor, cross)
    at = np.where(np.isfinite(bound), bound, np.float32(0.5)).astype(np.float32)
    above = np.nextafter(at, np.float32(np.inf))
    propensity = np.vstack([at] * 4 + [above] * 4).astype(np.float32)
    got = score_block(
        rows=rows,
        scores=propensity,
        propensity=propensity.copy(),
        offers=OfferMap.build(cand, None),
        pricing=Pricing.of(cand.product_value, np.ones(cand.n_products), floor),
        predict=lambda s: s,
        finite=True,
    )
    want, _, _ = _dense_reference(
        cand, None, rows, propensity, levers=np.ones(cand.n_products), floor=floor
    )
    np.testing.assert_array_equal(np.isfinite(got.priority), np.isfinite(want))
    finite_bound = np.isfinite(bound) & (bound >= 0)
    assert not np.isfinite(got.priority[:4][:, finite_bound]).any()


def _numpy_choice(rows, scores, k, *, offers, pricing, predict, scale, tie):
    """The numpy path's choice: score_block's priorities, then ordered_top_k."""
    scaled = scale is not None
    block = score_block(
        rows=rows,
        scores=scores,
        propensity=ScoreScale(scale=scale).unbounded(scores) if scaled else predict(scores),
        offers=offers,
        pricing=pricing,
        predict=predict,
        finite=False,
        unbounded=scaled,
    )
    want_idx, want_val = ordered_top_k(
        block.priority, k, propensity=predict(scores), score=scores, tie_rank=tie
    )
    return block, want_idx, want_val


@settings(max_examples=60, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "k": st.sampled_from([1, 3, 10, MAX_K]),
            "floor": st.sampled_from(
                [
                    None,
                    (0.0, 0.0, 0.0),
                    (50.0, 0.25, 0.0),
                    (400.0, 0.5, 0.0),
                    (0.0, 0.25, 0.0),
                    (0.0, 0.3, 0.0),
                    (0.0, 0.0, 60.0),
                    (10.0, 0.1, 200.0),
                    (0.0, 0.0, "family"),
                ]
            ),
            "levers": st.booleans(),
            "policy": st.sampled_from(["none", "demo", "scoped"]),
            "scale": st.sampled_from([None, 0.8]),
            "nan": st.booleans(),
            "by_value": st.booleans(),
        }
    )
)
def test_compiled_selection_equals_numpy_path(demo, case) -> None:
    """Check that select_block picks, orders, prices and types offers as the numpy path."""
    book, cand, suppression = demo
    rng = np.random.default_rng(case["seed"])
    shape = suppression.shape
    if case["policy"] == "scoped":
        suppression = dataclasses.replace(
            suppression,
            client_cross_sell=rng.random(shape[0]) < 0.1,
            client_upsell=rng.random(shape[0]) < 0.1,
            product_any=rng.random(shape[1]) < 0.05,
            product_cross_sell=rng.random(shape[1]) < 0.05,
            product_upsell=rng.random(shape[1]) < 0.05,
            pairs_cross_sell=sp.csr_matrix(rng.random(shape) < 0.02),
            pairs_upsell=sp.csr_matrix(rng.random(shape) < 0.02),
        )
    elif case["policy"] == "none":
        suppression = None
    rows = np.sort(rng.choice(len(book.client_ids), size=48, replace=False)).astype(np.int64)
    n = cand.n_products
    # a coarse grid: many equal priorities (ties) and propensities exactly at the floor
    scores = rng.choice(np.linspace(-0.2, 1.2, 15), size=(rows.size, n)).astype(np.float32)
    if case["nan"]:
        scores[rng.random(scores.shape) < 0.05] = np.nan
    if case["scale"] is None:
        # a calibrated model: any elementwise mapping, NaN kept
        def predict(s):
            return np.asarray(s, dtype=np.float32) * np.float32(0.5)
    else:
        predict = ScoreScale(scale=case["scale"]).predict
    levers = rng.choice([0.0, 0.5, 1.0, 2.0], size=n) if case["levers"] else np.ones(n)
    floor = None
    if case["floor"] is not None:
        floor = _floor(*case["floor"])
    offers = OfferMap.build(cand, suppression, block=31)
    pricing = Pricing.of(
        cand.product_value, levers, floor, _families(cand), by_value=case["by_value"]
    )
    tie = rng.permutation(n).astype(np.int64)
    block, want_idx, want_val = _numpy_choice(
        rows,
        scores,
        case["k"],
        offers=offers,
        pricing=pricing,
        predict=predict,
        scale=case["scale"],
        tie=tie,
    )
    got = select_block(
        rows=rows,
        scores=scores,
        k=case["k"],
        offers=offers,
        pricing=pricing,
        predict=predict,
        tie_rank=tie,
        scale=case["scale"],
    )
    np.testing.assert_array_equal(got.index, want_idx)
    np.testing.assert_array_equal(got.priority, want_val)
    r, rank = np.nonzero(want_idx >= 0)
    up, val = got.typed(r, rank)
    want_up, want_value = block.typed(r, want_idx[r, rank])
    np.testing.assert_array_equal(up, want_up)
    np.testing.assert_array_equal(val, want_value)
    np.testing.assert_array_equal(got.slot[want_idx < 0], -1)


def _wide_offer_map(rng, n_clients: int, n: int) -> OfferMap:
    """An offer map over ``n`` products: random held pairs, upsells and blocked rows."""
    off = sp.random(n_clients, n, density=0.03, random_state=rng, format="csr").astype(bool)
    up = sp.random(n_clients, n, density=0.01, random_state=rng, format="csr")
    up = up - up.multiply(off)
    up.eliminate_zeros()
    return OfferMap(
        off=off,
        up=(up * 1000.0).tocsr(),
        cross_cols=np.sort(rng.choice(n, size=n // 50, replace=False)).astype(np.int64),
        cross_rows=rng.random(n_clients) < 0.05,
        all_rows=np.zeros(n_clients, dtype=bool),
    )


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "n": st.sampled_from([SELECT_GROUPS * 8, SELECT_GROUPS * 8 + 37, 2_000]),
            "k": st.sampled_from([1, 10, SELECT_GROUPS // 2]),
            "grid": st.sampled_from([3, 15, 0]),
            "scale": st.sampled_from([None, 0.8]),
            "floor": st.booleans(),
            "nan": st.booleans(),
        }
    )
)
def test_grouped_selection_of_a_wide_catalogue_equals_numpy_path(case) -> None:
    """Check that the bound by column groups' maxima skips nothing that belongs in the top k.

    Wide rows (the grouped pass's case), with ties (a coarse grid of scores: whole groups of
    equal maxima), -inf (held and blocked pairs, rows blocked for cross-sells), NaN, a floor,
    and a tail of columns outside the whole groups.
    """
    rng = np.random.default_rng(case["seed"])
    n, k = case["n"], case["k"]
    rows = np.arange(40, dtype=np.int64)
    offers = _wide_offer_map(rng, rows.size, n)
    if case["grid"]:
        scores = rng.choice(np.linspace(-0.2, 1.2, case["grid"]), size=(rows.size, n))
    else:
        scores = rng.normal(size=(rows.size, n))
    scores = scores.astype(np.float32)
    if case["nan"]:
        scores[rng.random(scores.shape) < 0.05] = np.nan
    # rows whose best are few: most of them below the floor
    scores[::7] -= np.float32(1.5)
    values = rng.choice([0.0, 50.0, 100.0, 400.0], size=n)
    floor = None
    if case["floor"]:
        floor = NotWorthProposing(min_expected_value=20.0, min_propensity=0.1)
    pricing = Pricing.of(values, np.ones(n), floor)
    scaled = case["scale"] is not None
    predict = ScoreScale(scale=case["scale"]).predict if scaled else (lambda s: s.clip(0, 1))
    tie = rng.permutation(n).astype(np.int64)
    block, want_idx, want_val = _numpy_choice(
        rows,
        scores,
        k,
        offers=offers,
        pricing=pricing,
        predict=predict,
        scale=case["scale"],
        tie=tie,
    )
    for grouped in (True, False):
        got = select_block(
            rows=rows,
            scores=scores,
            k=k,
            offers=offers,
            pricing=pricing,
            predict=predict,
            tie_rank=tie,
            scale=case["scale"],
            grouped=grouped,
        )
        np.testing.assert_array_equal(got.index, want_idx)
        np.testing.assert_array_equal(got.priority, want_val)
        r, rank = np.nonzero(want_idx >= 0)
        np.testing.assert_array_equal(got.typed(r, rank)[0], block.typed(r, want_idx[r, rank])[0])


def test_grouped_selection_is_the_default_for_wide_rows_and_small_k() -> None:
    """Check when select_block bounds rows by group maxima: wide rows, k small beside groups."""
    assert grouped_selection(2_000, 10)
    assert not grouped_selection(2_000, SELECT_GROUPS)
    assert not grouped_selection(30, 10)


@pytest.mark.parametrize("scale", [None, 0.5])
def test_value_blind_pricing_ranks_by_propensity_on_both_paths(demo, scale) -> None:
    """Check that a value-blind priority is the (unbounded) propensity, values still reported."""
    book, cand, suppression = demo
    rows = np.arange(0, len(book.client_ids), 7, dtype=np.int64)
    n = cand.n_products
    scores = np.random.default_rng(3).random((rows.size, n)).astype(np.float32)
    if scale is None:
        predict = ScoreScale(scale=1.0).predict
        unbounded = scores
    else:
        predict = ScoreScale(scale=scale).predict
        unbounded = ScoreScale(scale=scale).unbounded(scores)
    offers = OfferMap.build(cand, suppression)
    # dear products and levers that would reorder everything if they counted
    levers = np.linspace(0.5, 3.0, n)
    by_value = Pricing.of(cand.product_value, levers, None)
    blind = by_value.value_blind()
    tie = np.arange(n, dtype=np.int64)
    got = select_block(
        rows=rows,
        scores=scores,
        k=10,
        offers=offers,
        pricing=blind,
        predict=predict,
        tie_rank=tie,
        scale=scale,
    )
    block = score_block(
        rows=rows,
        scores=scores,
        propensity=unbounded.copy(),
        offers=offers,
        pricing=blind,
        predict=predict,
        finite=True,
        unbounded=scale is not None,
    )
    numpy_idx, numpy_val = ordered_top_k(
        block.priority, 10, propensity=predict(scores), score=scores, tie_rank=tie
    )
    np.testing.assert_array_equal(got.index, numpy_idx)
    r, rank = np.nonzero(got.index >= 0)
    c = got.index[r, rank]
    np.testing.assert_array_equal(got.priority[r, rank], unbounded[r, c])
    np.testing.assert_array_equal(numpy_val[r, rank], unbounded[r, c])
    # best first by score: each client's list is its offerable products by falling score
    shown = np.where(np.isfinite(got.priority), got.priority, np.float32(-1.0))
    assert (np.diff(shown, axis=1) <= 0).all()
    want_up, want_value = score_block(
        rows=rows,
        scores=scores,
        propensity=unbounded.copy(),
        offers=offers,
        pricing=by_value,
        predict=predict,
        finite=True,
        unbounded=scale is not None,
    ).typed(r, c)
    up, value = got.typed(r, rank)
    assert up.any()
    np.testing.assert_array_equal(up, want_up)
    np.testing.assert_array_equal(value, want_value)


def test_compiled_selection_never_offers_a_blocked_pair(demo) -> None:
    """Check that pairs the offer map blocks, and -inf priorities, are never chosen."""
    book, cand, suppression = demo
    rows = np.arange(len(book.client_ids), dtype=np.int64)
    offers = OfferMap.build(cand, suppression)
    scores = np.ones((rows.size, cand.n_products), dtype=np.float32)
    got = select_block(
        rows=rows,
        scores=scores,
        k=MAX_K,
        offers=offers,
        pricing=Pricing.of(cand.product_value, np.ones(cand.n_products), None),
        predict=lambda s: s,
        tie_rank=np.arange(cand.n_products, dtype=np.int64),
    )
    r, rank = np.nonzero(got.index >= 0)
    c = got.index[r, rank]
    assert not np.asarray(offers.off[rows[r], c]).ravel().any()
    assert np.isfinite(got.priority[r, rank]).all()
    assert not offers.cross_rows[rows[r]][~got.typed(r, rank)[0]].any()


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**32 - 1),
            "n": st.sampled_from([40, SELECT_GROUPS * 8 + 37]),
            "k": st.sampled_from([1, 10, MAX_K + 6]),
            "step": st.sampled_from([1, 7, 16, 200]),
            "propensity": st.sampled_from(["scale", "platt"]),
            "family_cap": st.booleans(),
            "grid": st.booleans(),
        }
    )
)
def test_selecting_piece_by_piece_equals_the_whole_block(case) -> None:
    """Check that scoring a block in pieces (a function of rows, any step) changes no offer.

    Both paths: the compiled pass (one prepared selector for every piece) and the dense one
    (family caps, more than MAX_K offers); the function sees each row once, in order.
    """
    rng = np.random.default_rng(case["seed"])
    n, k = case["n"], case["k"]
    rows = np.arange(37, dtype=np.int64)
    offers = _wide_offer_map(rng, rows.size, n)
    if case["grid"]:
        scores = rng.choice(np.linspace(-0.2, 1.2, 4), size=(rows.size, n)).astype(np.float32)
    else:
        scores = rng.normal(size=(rows.size, n)).astype(np.float32)
    values = rng.choice([0.0, 50.0, 100.0, 400.0], size=n)
    floor = NotWorthProposing(min_expected_value=20.0, min_propensity=0.1)
    if case["propensity"] == "scale":
        propensity = ScoreScale(scale=0.8)
    else:
        propensity = PlattCalibrator().fit([0.0, 0.5, 1.0, 1.5], [0, 1, 0, 1])
    common = {
        "k": k,
        "offers": offers,
        "pricing": Pricing.of(values, np.ones(n), floor),
        "propensity": propensity,
        "family": rng.integers(0, 3, size=n),
        "tie_rank": rng.permutation(n).astype(np.int64),
        "max_per_family": 2 if case["family_cap"] else None,
    }
    seen: list[np.ndarray] = []

    def score_rows(piece: np.ndarray) -> np.ndarray:
        seen.append(piece.copy())
        return scores[piece - rows[0]]

    whole = select_offers(rows=rows, scores=scores, **common)
    pieces = select_offers(rows=rows, scores=score_rows, step=case["step"], **common)
    np.testing.assert_array_equal(np.concatenate(seen), rows)
    assert all(p.size <= case["step"] for p in seen)
    # and the compiled pass's offers are the dense definition's
    rest = {key: value for key, value in common.items() if key != "k"}
    dense = _dense_choice(rows, scores, min(k, n), **rest)
    for field in dataclasses.fields(whole):
        np.testing.assert_array_equal(
            getattr(pieces, field.name), getattr(whole, field.name), err_msg=field.name
        )
        np.testing.assert_array_equal(
            getattr(whole, field.name), getattr(dense, field.name), err_msg=field.name
        )
    assert whole.row.size > 0
