"""The real-time path folds an event rule's blocks into one client's offers as the batch does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import crosssell as cs
from crosssell._fresh import FreshEvents, OneClient
from crosssell.arbitration._priority import OfferMap
from crosssell.recommender import Recommender
from crosssell.rules import Blocks, Policy, RuleContext, route_sales
from crosssell.rules._context import EventColumns

_DAY = "2025-06-30"


@dataclass(frozen=True)
class _Fixed:
    """An event rule that blocks the same things of one client whatever its events say."""

    row: int
    product: tuple[int, ...]
    scope: tuple[str, ...]
    name: str = "fixed"
    kind: str = "contact"

    def blocks(self, ctx: RuleContext) -> Blocks:
        n = len(self.product)
        return Blocks(
            client=np.full(n, self.row), product=np.array(self.product, dtype=np.int64),
            detail=np.array(["fixed"] * n, dtype=object), scope=np.array(self.scope, dtype=object),
        )  # fmt: skip

    def _read_events(self, events: EventColumns, ctx: RuleContext) -> Blocks:
        return self.blocks(ctx)


@pytest.fixture(scope="module")
def fitted() -> Recommender:
    return Recommender(policy=route_sales(), k=3).fit(cs.datasets.demo(), _DAY)


def _no_events() -> FreshEvents:
    empty = np.zeros(0, dtype=np.int64)
    return FreshEvents(date=empty, type=[], product=empty.astype(np.int32), ref=[])


def _row(m: OfferMap, r: int) -> tuple[list[int], list[int], list[float], bool] | None:
    if m.all_rows[r]:
        return None
    up = m.up[r]
    return (
        sorted(m.off[r].indices.tolist()),
        up.indices.tolist(),
        up.data.tolist(),
        bool(m.cross_rows[r]),
    )


_BLOCK = st.tuples(st.integers(-1, 23), st.sampled_from(["any", "cross_sell", "upsell"]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    client=st.sampled_from(["C0001", "C0002", "C0006", "C0017", "C0063", "C0320"]),
    blocks=st.lists(_BLOCK, max_size=6),
)
@example(client="C0002", blocks=[(17, "upsell")])  # an upsell blocked as an upsell
@example(client="C0002", blocks=[(19, "cross_sell")])  # a cross-sell block leaves the upsell
@example(client="C0006", blocks=[(-1, "upsell"), (3, "cross_sell")])
@example(client="C0001", blocks=[(-1, "cross_sell")])
def test_fold_equals_the_batch_offer_map(fitted, client, blocks):
    """Check that any blocks of any scope give the row OfferMap.build gives for the policy."""
    ctx = fitted.rule_context_
    row = fitted.book_.client_ids.index_of(client)
    rule = _Fixed(row=row, product=tuple(p for p, _ in blocks), scope=tuple(s for _, s in blocks))
    static = route_sales()
    whole = Policy([*static, rule])
    batch = OfferMap.build(fitted.candidates_, whole.evaluate(ctx))
    prepared = OneClient.prepare(static, [rule], ctx, fitted.candidates_)
    assert prepared is not None
    parts = prepared.offers(row, _no_events(), batch)
    expected = _row(batch, row)
    if parts is None:
        assert expected is None
        return
    off, up, up_value, cross_row = parts
    assert expected == (sorted(off.tolist()), up.tolist(), up_value.tolist(), cross_row)
