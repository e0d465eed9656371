"""Benchmark: cs.allocate on books of 20k to 1M clients, ten candidate actions each.

Run by hand::

    python benchmarks/allocate.py                  # 20k and 200k clients
    python benchmarks/allocate.py --clients 1000000

The candidates are synthetic and seeded: one account manager per 250 clients, ten candidate
proposals per client across six product families (expected values log-normal, a family's
level differing by up to 3x), and one client in twenty with a renewal due that must be kept
(``must_include``). The constraints are the realistic ones of a route-sales quarter: 30 actions
per manager, one action per client, at most 10% of the chosen actions in the ERP family (its
onboarding team is small) and at least 30% in SEC (the marketing push); and, apart, a week in
hours: 30 hours per manager, a renewal taking three and a proposal one, where best-first is
feasible but not best. For each size and scenario it prints
the time of ``allocate`` (solver and the rest), the solver's status and optimality gap, the
objective against the greedy choice (best first, skipping what breaks a limit) and whether the
greedy choice met every constraint, and the largest shadow price.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from crosssell.allocation import Constraints, allocate

FAMILIES = np.array(["ERP", "SEC", "CRM", "DOCS", "BI", "HR"])


def candidates(n_clients: int, per_client: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_clients * per_client
    client = np.repeat(np.arange(n_clients), per_client)
    family = rng.integers(0, FAMILIES.size, n)
    level = np.array([3.0, 1.0, 1.5, 1.0, 2.0, 1.2])[family]
    value = np.round(rng.lognormal(3.0, 1.0, n) * level, 2)
    renew = np.zeros(n, dtype=bool)
    renew[::per_client] = rng.random(n_clients) < 0.05
    return pd.DataFrame(
        {
            "client_id": pd.Series(client).map("C{:07d}".format),
            "owner": pd.Series(client // 250).map("AM{:04d}".format),
            "family": FAMILIES[family],
            "action": np.where(renew, "renew", "propose"),
            "expected_value": value,
        }
    )


def scenarios(n_clients: int) -> dict[str, Constraints]:
    """The two sets of constraints timed: a quarter's mix, and a week measured in hours."""
    n_chosen = 30 * (n_clients // 250)
    return {
        "quarter": Constraints(
            capacity=30,
            per_client=1,
            family_share={"SEC": 0.3},
            family_quota={"ERP": (None, int(0.10 * n_chosen))},
            must_include="action == 'renew'",
        ),
        # renewals take three hours, proposals one: best-first fills the week with renewals
        "hours": Constraints(capacity=30, effort={"renew": 3.0, "propose": 1.0}, per_client=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[20_000, 200_000])
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    print(
        f"{'clients':>9} {'rows':>10} {'scenario':>8} {'seconds':>8} {'status':>10} {'gap':>8} "
        f"{'objective':>12} {'greedy':>12} {'gain':>7} {'greedy ok':>9}  top shadow price"
    )
    for n_clients in args.clients:
        frame = candidates(n_clients)
        for name, c in scenarios(n_clients).items():
            t0 = time.perf_counter()
            result = allocate(frame, c, time_limit=args.time_limit)
            seconds = time.perf_counter() - t0
            prices = result.shadow_prices
            top = prices["sentence"].iloc[0] if len(prices) else ""
            gain = result.objective / result.greedy_objective - 1 if result.greedy_objective else 0
            print(
                f"{n_clients:>9,} {len(frame):>10,} {name:>8} {seconds:>8.1f} "
                f"{result.status:>10} {result.gap:>8.1e} {result.objective:>12,.0f} "
                f"{result.greedy_objective:>12,.0f} {gain:>+7.1%} "
                f"{result.greedy_feasible!s:>9}  {top}"
            )


if __name__ == "__main__":
    main()
