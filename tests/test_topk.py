from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crosssell._topk import mark_top_k, masked_fill, top_k


def brute_force(
    scores: np.ndarray, k: int, exclude: sp.csr_matrix | None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full lexsort of every row (score descending, then index ascending)."""
    s = scores.astype(np.float64).copy()
    if exclude is not None:
        coo = exclude.tocoo()
        s[coo.row, coo.col] = -np.inf
    s[np.isnan(s)] = -np.inf
    m, p = s.shape
    idx = np.full((m, k), -1, dtype=np.int64)
    val = np.full((m, k), -np.inf, dtype=np.float32)
    for r in range(m):
        order = np.lexsort((np.arange(p), -s[r]))
        order = order[s[r, order] > -np.inf][:k]
        idx[r, : order.size] = order
        val[r, : order.size] = s[r, order]
    return idx, val


@st.composite
def score_cases(draw: st.DrawFn) -> tuple[np.ndarray, int, sp.csr_matrix | None]:
    m = draw(st.integers(1, 6))
    p = draw(st.integers(1, 12))
    # few distinct values, so ties (also at the k-th place) are the rule, not the exception
    values = st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.0, -np.inf, np.nan])
    scores = draw(hnp.arrays(np.float32, (m, p), elements=values))
    k = draw(st.integers(1, p + 3))
    mask = draw(hnp.arrays(np.bool_, (m, p)))
    exclude = sp.csr_matrix(mask) if draw(st.booleans()) else None
    return scores, k, exclude


@settings(max_examples=300, deadline=None)
@given(score_cases())
def test_top_k_matches_brute_force(case: tuple[np.ndarray, int, sp.csr_matrix | None]) -> None:
    """Check that top_k equals a full lexsort, with ties, -inf, NaN and excluded entries."""
    scores, k, exclude = case
    before = scores.copy()
    idx, val = top_k(scores, k, exclude)
    ref_idx, ref_val = brute_force(scores, k, exclude)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)
    np.testing.assert_array_equal(scores, before)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.float32, (8, 20), elements=st.sampled_from([0.0, 1.0, 2.0])),
    st.integers(1, 25),
)
def test_top_k_does_not_depend_on_chunking(scores: np.ndarray, k: int) -> None:
    """Check that scoring rows in chunks gives the same offers as all at once."""
    whole = top_k(scores, k)[0]
    parts = np.vstack([top_k(scores[i : i + 3], k)[0] for i in range(0, 8, 3)])
    np.testing.assert_array_equal(whole, parts)


def test_top_k_breaks_ties_at_the_boundary_by_index() -> None:
    """Check that the last place goes to the lowest index among equal scores."""
    scores = np.array([[1.0, 3.0, 1.0, 1.0, 3.0]], dtype=np.float32)
    idx, val = top_k(scores, 3)
    assert idx.tolist() == [[1, 4, 0]]
    assert val.tolist() == [[3.0, 3.0, 1.0]]


def test_top_k_pads_short_rows() -> None:
    """Check that rows with fewer candidates than k are padded with -1 and -inf."""
    scores = np.array([[0.2, np.nan, -np.inf]], dtype=np.float32)
    idx, val = top_k(scores, 4)
    assert idx.tolist() == [[0, -1, -1, -1]]
    assert val[0, 0] == np.float32(0.2)
    assert np.isneginf(val[0, 1:]).all()


def test_top_k_output_dtypes() -> None:
    """Check that indices are int64 and values float32, also for float64 input."""
    idx, val = top_k(np.random.default_rng(0).random((3, 5)), 2)
    assert idx.dtype == np.int64
    assert val.dtype == np.float32
    assert idx.shape == val.shape == (3, 2)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_top_k_rejects_bad_k(k: object) -> None:
    """Check that a bad k gets scikit-learn's parameter message."""
    with pytest.raises(
        ValueError, match=r"The 'k' parameter of top_k must be an int in the range \[1, inf\)"
    ):
        top_k(np.zeros((1, 2), dtype=np.float32), k)  # type: ignore[arg-type]


def test_top_k_rejects_mismatched_exclude() -> None:
    """Check that an exclusion matrix of another shape is refused with both shapes named."""
    with pytest.raises(ValueError, match=r"shape \(1, 3\) but the scores have shape \(1, 2\)"):
        top_k(np.zeros((1, 2), dtype=np.float32), 1, sp.csr_matrix((1, 3)))


def test_masked_fill_sets_stored_entries_in_place() -> None:
    """Check that masked_fill writes -inf exactly at the stored entries and returns the array."""
    scores = np.arange(6, dtype=np.float32).reshape(2, 3)
    held = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0]], dtype=np.float32))
    out = masked_fill(scores, held)
    assert out is scores
    assert scores.tolist() == [[-np.inf, 1.0, -np.inf], [3.0, 4.0, 5.0]]


def test_masked_fill_requires_csr() -> None:
    """Check that a dense mask is refused with a hint to convert."""
    with pytest.raises(ValueError, match="tocsr"):
        masked_fill(np.zeros((1, 2), dtype=np.float32), np.zeros((1, 2)))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(score_cases())
def test_one_row_path_equals_the_chunk_path(
    case: tuple[np.ndarray, int, sp.csr_matrix | None],
) -> None:
    """Check that scoring a client alone (the real-time path) picks what its chunk picks."""
    scores, k, _ = case
    idx, val = top_k(scores, k)
    for r in range(scores.shape[0]):
        one_idx, one_val = top_k(scores[r : r + 1], k)
        np.testing.assert_array_equal(one_idx[0], idx[r])
        np.testing.assert_array_equal(one_val[0], val[r])


@settings(max_examples=300, deadline=None)
def loose_bound_case(
    case: tuple[np.ndarray, int, sp.csr_matrix | None], groups: int, dtype: type
) -> tuple[np.ndarray, int, int]:
    """Scores without NaN (-inf instead), k within the row and groups between k and the row."""
    scores, k, _ = case
    k = min(k, scores.shape[1])
    groups = min(max(groups, k), scores.shape[1])
    work = scores.astype(dtype)
    work[np.isnan(work)] = -np.inf
    return work, k, groups


@given(score_cases(), st.integers(1, 12), st.booleans())
def test_threshold_path_matches_brute_force(
    case: tuple[np.ndarray, int, sp.csr_matrix | None], groups: int, wide: bool
) -> None:
    """Check that the group-maximum bound selects exactly what a full sort selects."""
    from crosssell._topk import _by_threshold

    work, k, groups = loose_bound_case(case, groups, np.float64 if wide else np.float32)
    idx, val = _by_threshold(work, k, groups)
    ref_idx, ref_val = brute_force(work, k, None)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)


def test_wide_catalogue_takes_the_threshold_path_and_stays_exact() -> None:
    """Check that a 1,000-product chunk with ties, -inf rows and NaN equals the reference."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, size=(64, 1000)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[:3] = -np.inf
    scores[3, :995] = -np.inf
    scores[4, 7] = np.nan
    idx, val = top_k(scores, 10)
    ref_idx, ref_val = brute_force(scores, 10, None)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5),
    st.integers(1, 60),
    st.integers(0, 400),
    st.data(),
)
def test_ties_far_into_the_row_are_found_exactly(
    m: int, k: int, blank: int, data: st.DataObject
) -> None:
    """Check the selection when the k-th value's ties lie far into the row.

    Rows of 500 products with a few distinct values, their first ``blank`` columns out of
    reach (-inf) or a single high score, as item-kNN's rows of many zeros and a few scores.
    """
    values = st.sampled_from([0.0, 0.0, 0.0, -0.0, 0.25, 1.0, -np.inf])
    scores = data.draw(hnp.arrays(np.float32, (m, 500), elements=values))
    scores[:, :blank] = data.draw(st.sampled_from([-np.inf, 3.0]))
    idx, val = top_k(scores, k)
    ref_idx, ref_val = brute_force(scores, k, None)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)


def marked_reference(scores: np.ndarray, k: int, above: float) -> np.ndarray:
    """Reference: the cells of the full lexsort's top k whose float32 value is above ``above``."""
    idx, val = brute_force(scores, k, None)
    want = np.zeros(scores.shape, dtype=bool)
    r, c = np.nonzero((idx >= 0) & (val > above))
    want[r, idx[r, c]] = True
    return want


@settings(max_examples=300, deadline=None)
@given(score_cases(), st.sampled_from([-np.inf, 0.0, 0.5]), st.booleans())
def test_mark_top_k_marks_top_ks_cells(
    case: tuple[np.ndarray, int, sp.csr_matrix | None], above: float, wide: bool
) -> None:
    """Check that mark_top_k sets exactly top_k's cells above ``above``, keeping set ones."""
    scores, k, _ = case
    scores = scores.astype(np.float64 if wide else np.float32)
    before = scores.copy()
    mask = np.zeros(scores.shape, dtype=bool)
    mark_top_k(scores, k, mask, above=above)
    np.testing.assert_array_equal(mask, marked_reference(scores, k, above))
    np.testing.assert_array_equal(scores, before)
    already = np.ones(scores.shape, dtype=bool)
    mark_top_k(scores, k, already, above=above)
    assert already.all()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 5),
    st.integers(1, 60),
    st.integers(0, 400),
    st.sampled_from([-np.inf, 0.0]),
    st.data(),
)
def test_mark_top_k_on_wide_rows_of_ties(
    m: int, k: int, blank: int, above: float, data: st.DataObject
) -> None:
    """Check the unordered selection where more than k entries pass the bound.

    Rows of 500 products with a few distinct values: the group bound lets many entries
    through, so the k-th value is found among them and its ties are taken in column order.
    """
    values = st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0, 2.0, -np.inf, np.nan])
    scores = data.draw(hnp.arrays(np.float32, (m, 500), elements=values))
    scores[:, :blank] = data.draw(st.sampled_from([-np.inf, 3.0, 0.5]))
    mask = np.zeros(scores.shape, dtype=bool)
    mark_top_k(scores, k, mask, above=above)
    np.testing.assert_array_equal(mask, marked_reference(scores, k, above))


@settings(max_examples=300, deadline=None)
@given(score_cases(), st.integers(1, 12), st.sampled_from([-np.inf, 0.0, 0.5]))
def test_top_set_kernel_with_loose_bounds(
    case: tuple[np.ndarray, int, sp.csr_matrix | None], groups: int, above: float
) -> None:
    """Check the kernel under bounds from as few groups as places: many entries pass them."""
    from crosssell._kernels import top_set_into
    from crosssell._topk import _group_max, _kth_of

    work, k, groups = loose_bound_case(case, groups, np.float32)
    mask = np.zeros(work.shape, dtype=bool)
    best = _group_max(work, groups)
    top_set_into(work, k, groups, best, _kth_of(best, k), above, mask)
    np.testing.assert_array_equal(mask, marked_reference(work, k, above))


def test_mark_top_k_rejects_a_mask_of_another_shape() -> None:
    """Check that a mask not shaped as the scores is refused, naming both shapes."""
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        mark_top_k(np.zeros((2, 4), np.float32), 1, np.zeros((2, 3), dtype=bool))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=30)))
def test_cells_are_numpy_nonzero(mask: np.ndarray) -> None:
    """Check that cells() gives np.nonzero's coordinates, in its order, also for views."""
    from crosssell._topk import cells

    for m in (mask, mask[:, ::2], mask.T):
        rows, cols = cells(m)
        ref_rows, ref_cols = np.nonzero(m)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_array_equal(cols, ref_cols)
