"""Exploration's pieces: the budget draw, the Thompson draw and the chance of winning it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosssell.arbitration import Explore
from crosssell.arbitration._explore import draw_explorers, thompson_winners, win_probabilities


def test_budget_is_a_share_of_each_managers_proposals() -> None:
    """Check that a manager explores with floor(share x proposals) clients, and says so exactly."""
    managers = ["a"] * 5 + ["b"] * 3 + [None] * 2
    proposals = [2] * 5 + [1] * 3 + [3] * 2
    chosen, p = draw_explorers(managers, proposals, 0.3, np.random.default_rng(0))
    # a: 10 proposals -> 3 of 5 clients; b: 3 -> 0; no manager: 6 -> 1 of 2
    assert [int(chosen[:5].sum()), int(chosen[5:8].sum()), int(chosen[8:].sum())] == [3, 0, 1]
    assert p.tolist() == [0.6] * 5 + [0.0] * 3 + [0.5] * 2


def test_each_client_is_chosen_as_often_as_its_stated_probability() -> None:
    """Check that over many draws each client explores with the probability stated."""
    rng = np.random.default_rng(1)
    managers = ["a"] * 4 + ["b"] * 6
    counts = np.zeros(10)
    for _ in range(2000):
        chosen, p = draw_explorers(managers, [1] * 10, 0.5, rng)
        counts += chosen
    np.testing.assert_allclose(counts / 2000, p, atol=0.04)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    mask=st.lists(st.booleans(), min_size=5, max_size=5).filter(any),
)
def test_a_thompson_draw_never_picks_a_disallowed_offer(seed: int, mask: list[bool]) -> None:
    """Check that the winner of a draw is always one of the allowed offers."""
    rng = np.random.default_rng(seed)
    alpha, beta = rng.uniform(0.5, 50, (20, 5)), rng.uniform(0.5, 50, (20, 5))
    allowed = np.tile(np.array(mask), (20, 1))
    winners = thompson_winners(alpha, beta, allowed, rng)
    assert allowed[np.arange(20), winners].all()


def test_two_equal_posteriors_split_evenly() -> None:
    """Check that of two identical posteriors each wins half the draws."""
    alpha, beta = np.array([[3.0, 3.0, 9.0]]), np.array([[5.0, 5.0, 1.0]])
    allowed = np.array([[True, True, False]])
    p, err = win_probabilities(alpha, beta, np.array([0]), allowed, np.array([0]))
    assert p[0] == pytest.approx(0.5, abs=err[0] + 1e-9)
    assert err[0] < 1e-3


def test_quadrature_matches_the_closed_form_of_two_uniforms() -> None:
    """Check that Beta(2, 1) beats Beta(1, 1) with probability 2/3, within the stated error."""
    alpha, beta = np.array([[2.0, 1.0]]), np.array([[1.0, 1.0]])
    p, err = win_probabilities(alpha, beta, np.array([0]), np.ones((1, 2), bool), np.array([0]))
    assert abs(p[0] - 2 / 3) <= err[0] + 1e-12


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_chances_of_winning_sum_to_one_within_their_errors(seed: int) -> None:
    """Check that the chances of every allowed offer, narrow or wide posteriors, sum to 1."""
    rng = np.random.default_rng(seed)
    n_prod = 6
    alpha = np.exp(rng.uniform(0, 7, (1, n_prod)))
    beta = np.exp(rng.uniform(0, 7, (1, n_prod)))
    mask = rng.random(n_prod) < 0.7
    mask[:2] = True
    members = np.flatnonzero(mask)
    allowed = np.tile(mask, (members.size, 1))
    groups = np.zeros(members.size, dtype=np.int64)
    p, err = win_probabilities(alpha, beta, groups, allowed, members)
    total, slack = p.sum(), err.sum()
    assert abs(total - 1.0) <= slack + 1e-9


def test_monte_carlo_agrees_with_quadrature_within_its_standard_error() -> None:
    """Check that the Monte Carlo estimate lies within 4 standard errors of the quadrature."""
    alpha = np.array([[4.0, 30.0, 2.0, 12.0]])
    beta = np.array([[20.0, 90.0, 9.0, 40.0]])
    allowed = np.ones((4, 4), dtype=bool)
    groups = np.zeros(4, dtype=np.int64)
    exact, bound = win_probabilities(alpha, beta, groups, allowed, np.arange(4))
    mc, se = win_probabilities(
        alpha, beta, groups, allowed, np.arange(4), samples=4000, rng=np.random.default_rng(3)
    )
    assert (np.abs(mc - exact) <= 4 * se + bound).all()
    assert (se > 0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"share": 0.0}, "'share' parameter of Explore must be a float in the range (0, 1]"),
        ({"share": 1.5}, "'share' parameter of Explore must be a float in the range (0, 1]"),
        ({"samples": 0}, "'samples' parameter of Explore must be an int in the range [1, inf)"),
        ({"seed": 1.5}, "'seed' parameter of Explore must be an int"),
        ({"model": "Response"}, "'model' parameter of Explore must be a crosssell.scorers"),
    ],
)
def test_bad_settings_are_refused_with_their_name(kwargs: dict, message: str) -> None:
    """Check that a bad setting is refused in scikit-learn's words."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Explore(**kwargs)
