"""Hypothesis strategies shared by the tests: one definition of each kind of random input."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from crosssell.columns import Columns

C = Columns

#: Ids as people type them: short, sometimes all digits, sometimes with leading zeros.
ID_TEXT = st.text(alphabet="0123456789AB", min_size=1, max_size=4)
DAY0 = pd.Timestamp("2020-01-01")
CLIENTS = st.integers(0, 5).map(lambda i: f"C{i}")
PRODUCTS = st.integers(0, 4).map(lambda i: f"P{i}")
LENGTHS = st.integers(1, 500)


@st.composite
def contract_frames(
    draw: st.DrawFn,
    *,
    clients: st.SearchStrategy[str] = CLIENTS,
    products: st.SearchStrategy[str] = PRODUCTS,
    max_rows: int = 25,
    day0: pd.Timestamp = DAY0,
    lengths: st.SearchStrategy[int] = LENGTHS,
    amounts: bool = True,
    unique: bool = False,
) -> pd.DataFrame:
    """Draw a contracts table: start within 800 days of ``day0``, open or of a drawn length.

    ``amounts`` adds ``value`` (sometimes missing) and ``quantity``; ``unique`` drops repeated
    lines.
    """
    n = draw(st.integers(min_value=1, max_value=max_rows))
    client = draw(st.lists(clients, min_size=n, max_size=n))
    product = draw(st.lists(products, min_size=n, max_size=n))
    start = draw(st.lists(st.integers(0, 800), min_size=n, max_size=n))
    length = draw(st.lists(st.one_of(st.none(), lengths), min_size=n, max_size=n))
    starts = [day0 + pd.Timedelta(days=s) for s in start]
    ends = [
        None if d is None else s + pd.Timedelta(days=d) for s, d in zip(starts, length, strict=True)
    ]
    columns: dict[str, object] = {
        C.client: client,
        C.product: product,
        C.start: pd.to_datetime(starts),
        C.end: pd.to_datetime(pd.Series(ends, dtype="datetime64[ns]")),
    }
    if amounts:
        value = draw(
            st.lists(
                st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), min_size=n, max_size=n
            )
        )
        quantity = draw(st.lists(st.integers(1, 20), min_size=n, max_size=n))
        columns[C.value] = pd.array(value, dtype="float64")
        columns[C.quantity] = np.asarray(quantity, dtype=np.float64)
    out = pd.DataFrame(columns)
    return out.drop_duplicates(ignore_index=True) if unique else out


def shuffled(frame: pd.DataFrame) -> st.SearchStrategy[pd.DataFrame]:
    """Draw the rows of ``frame`` in another order (a seeded permutation; the index is reset).

    A drawn seed rather than a drawn permutation: tables of thousands of rows would otherwise
    exhaust hypothesis's budget of choices.
    """
    return st.integers(0, 2**32 - 1).map(
        lambda seed: frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    )
