"""Tests of the sparse helpers: one-row fast paths equal the general ones exactly."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell._sparse import dense_form, row_positions, rows_times, take_rows


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    dtypes=st.sampled_from([(np.float32, np.float32), (np.float64, np.float32)]),
)
def test_one_row_product_is_scipys_bit_for_bit(seed: int, density: float, dtypes) -> None:
    """Check that rows_times of one row equals scipy's sparse product in every bit."""
    rng = np.random.default_rng(seed)
    a = sp.random(7, 30, density=density, format="csr", rng=rng, dtype=dtypes[0])
    b = sp.random(30, 40, density=0.3, format="csr", rng=rng, dtype=dtypes[1])
    b.data = rng.standard_normal(b.nnz).astype(b.dtype) * 1e3
    for row in range(7):
        want = np.asarray((take_rows(a, [row]) @ b).toarray(), dtype=np.float32)
        got = rows_times(a, np.array([row]), b)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    many = rows_times(a, np.arange(7), b)
    single = np.vstack([rows_times(a, np.array([r]), b) for r in range(7)])
    np.testing.assert_array_equal(many.view(np.uint32), single.view(np.uint32))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    other_density=st.sampled_from([0.0, 0.1, 0.4, 1.0]),
    dtypes=st.sampled_from(
        [(np.float32, np.float32), (np.float64, np.float32), (np.float32, np.float64)]
    ),
    negative=st.booleans(),
    with_dense=st.booleans(),
)
def test_many_rows_are_scipys_bit_for_bit(  # noqa: PLR0917 - hypothesis passes them so
    seed: int,
    density: float,
    other_density: float,
    dtypes,
    negative: bool,
    with_dense: bool,
) -> None:
    """Check that the compiled product (``other`` sparse or also dense) equals scipy's."""
    rng = np.random.default_rng(seed)
    a = sp.random(50, 30, density=density, format="csr", rng=rng, dtype=dtypes[0])
    if negative:
        a.data = -a.data
    b = sp.random(30, 40, density=other_density, format="csr", rng=rng, dtype=dtypes[1])
    b.data = rng.standard_normal(b.nnz).astype(b.dtype) * 1e3
    rows = rng.permutation(50)[:40]
    want = np.asarray((take_rows(a, rows) @ b).toarray(), dtype=np.float32)
    got = rows_times(a, rows, b, b.toarray() if with_dense else None)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_rows_with_an_infinity_keep_the_sparse_product() -> None:
    """Check that an infinite or NaN weight is not multiplied by the zeros of a dense copy."""
    a = sp.csr_matrix(np.array([[np.inf, 0.0], [0.0, 1.0], [np.nan, 2.0]], dtype=np.float32))
    b = sp.csr_matrix(np.array([[3.0, 0.0], [0.0, 2.0]], dtype=np.float32))
    want = np.asarray((a @ b).toarray(), dtype=np.float32)
    for dense in (None, b.toarray()):
        got = rows_times(a, np.array([0, 1, 2]), b, dense)
        np.testing.assert_array_equal(got, want)
        assert got[:2].tolist() == [[np.inf, 0.0], [0.0, 2.0]]
        assert np.isnan(got[2, 0])
        assert got[2, 1] == 4.0


def test_dense_form_only_where_whole_rows_pay() -> None:
    """Check that a table a tenth full is made dense and a sparser or empty one is not."""
    tenth = sp.random(20, 20, density=0.1, format="csr", rng=0, dtype=np.float32)
    assert dense_form(tenth) is not None
    np.testing.assert_array_equal(dense_form(tenth), tenth.toarray())
    assert dense_form(sp.random(20, 20, density=0.05, format="csr", rng=0)) is None
    assert dense_form(sp.csr_matrix((0, 5), dtype=np.float32)) is None


def test_row_positions_of_one_row_equals_the_general_path() -> None:
    """Check that the one-row slice gives the positions and owners of the general path."""
    indptr = np.array([0, 2, 2, 5])
    for row in range(3):
        pos, owner = row_positions(indptr, np.array([row]))
        pos2, _ = row_positions(indptr, np.array([row, row]))
        assert pos.tolist() == pos2[: pos.size].tolist()
        assert owner.tolist() == [0] * pos.size
