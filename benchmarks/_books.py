"""A synthetic contract book for benchmarks, built with whole-array numpy (no per-client loop).

``make_book(n_clients, n_products)`` returns a validated :class:`crosssell.Book` with

- a catalogue of families of ``tiers`` products (tier 1..tiers, prices rising with the tier);
- about ``per_client`` active contracts per client, drawn from latent client and family factors
  so that a factor model has structure to learn; within a family a client holds one tier (the
  entry tier most often); some closed contracts in the past, some due for renewal soon;
- a clients table with segment, region, satisfaction (0..10) and do_not_contact;
- events at rates that touch a few percent of clients each: complaints opened (half of them
  closed, some within the cool-off), offers made, offers declined, churn signals.

The synthetic generator of :mod:`crosssell.datasets` simulates month by month, client by
client history; it is the right tool for realistic backtests but far too slow at these sizes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crosssell import Book
from crosssell.columns import Columns, EventType

C = Columns
AS_OF = pd.Timestamp("2025-06-30")
_DAY = np.timedelta64(1, "D")
SEGMENTS = np.array(["smb", "mid", "enterprise", "public"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def _days(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    """``n`` dates ``as_of - high .. as_of - low`` days, as datetime64[ns]."""
    back = rng.integers(low, high, n)
    return (AS_OF.to_datetime64() - back * _DAY).astype("datetime64[ns]")


def make_frames(
    n_clients: int,
    n_products: int,
    *,
    per_client: int = 5,
    tiers: int = 3,
    rank: int = 16,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Build the four input frames (contracts, products, clients, events)."""
    rng = np.random.default_rng(seed)
    n_fam = max(n_products // tiers, 1)
    n_products = n_fam * tiers
    fam = np.repeat(np.arange(n_fam), tiers)
    tier = np.tile(np.arange(1, tiers + 1), n_fam)
    base_price = np.round(rng.lognormal(7.0, 0.8, n_fam), -1)
    price = base_price[fam] * (1.0 + 0.8 * (tier - 1))
    product_ids = pd.Index([f"P{i:05d}" for i in range(n_products)])
    products = pd.DataFrame(
        {
            C.product: product_ids,
            C.family: pd.Index([f"F{i:04d}" for i in range(n_fam)])[fam],
            C.tier: tier,
            C.price: price,
        }
    )

    # Families drawn from latent factors: Gumbel top-k samples without replacement.
    v = rng.normal(size=(n_fam, rank)).astype(np.float32)
    bias = rng.normal(scale=1.5, size=n_fam).astype(np.float32)
    held_fam = np.empty((n_clients, per_client), dtype=np.int64)
    step = 20_000
    for start in range(0, n_clients, step):
        stop = min(start + step, n_clients)
        u = rng.normal(size=(stop - start, rank)).astype(np.float32)
        logits = u @ v.T / np.float32(np.sqrt(rank)) + bias
        logits += rng.gumbel(size=logits.shape).astype(np.float32)
        held_fam[start:stop] = np.argpartition(-logits, per_client - 1, axis=1)[:, :per_client]
    client = np.repeat(np.arange(n_clients), per_client)
    family = held_fam.ravel()
    # Entry tier most often, so upsells exist for most holdings.
    held_tier = rng.choice(np.arange(tiers), size=client.size, p=_tier_odds(tiers))
    product = family * tiers + held_tier
    n = client.size
    start_d = _days(rng, 30, 5 * 365, n)
    # About 4% of active contracts end within the next 60 days (renewal due), the rest later
    # or open.
    r = rng.random(n)
    end = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    due = r < 0.04
    end[due] = (AS_OF.to_datetime64() + rng.integers(1, 60, int(due.sum())) * _DAY).astype(
        "datetime64[ns]"
    )
    later = (r >= 0.04) & (r < 0.5)
    end[later] = (AS_OF.to_datetime64() + rng.integers(60, 900, int(later.sum())) * _DAY).astype(
        "datetime64[ns]"
    )
    value = np.round(price[product] * rng.uniform(0.85, 1.0, n), 2)
    # Past contracts (ended before as_of): history that the as-of filter must drop.
    n_past = n // 10
    past_client = rng.integers(0, n_clients, n_past)
    past_product = rng.integers(0, n_products, n_past)
    past_start = _days(rng, 800, 5 * 365, n_past)
    past_end = (past_start + rng.integers(90, 700, n_past) * _DAY).astype("datetime64[ns]")
    client_ids = pd.Index([f"C{i:07d}" for i in range(n_clients)])
    contracts = pd.DataFrame(
        {
            C.client: client_ids[np.concatenate([client, past_client])],
            C.product: product_ids[np.concatenate([product, past_product])],
            C.start: np.concatenate([start_d, past_start]),
            C.end: np.concatenate([end, past_end]),
            C.value: np.concatenate([value, np.round(price[past_product], 2)]),
        }
    )

    clients = pd.DataFrame(
        {
            C.client: client_ids,
            C.segment: SEGMENTS[rng.choice(SEGMENTS.size, n_clients, p=[0.5, 0.3, 0.15, 0.05])],
            C.region: REGIONS[rng.integers(0, REGIONS.size, n_clients)],
            # about 3% of clients below the satisfaction threshold of 5
            C.satisfaction: np.clip(np.round(rng.normal(7.8, 1.4, n_clients), 1), 0.0, 10.0),
            C.do_not_contact: rng.random(n_clients) < 0.02,
        }
    )
    events = _events(rng, client_ids, product_ids, client, product)
    return {"contracts": contracts, "products": products, "clients": clients, "events": events}


def _tier_odds(tiers: int) -> np.ndarray:
    odds = 0.5 ** np.arange(tiers)
    return odds / odds.sum()


def _events(
    rng: np.random.Generator,
    client_ids: pd.Index,
    product_ids: pd.Index,
    held_client: np.ndarray,
    held_product: np.ndarray,
) -> pd.DataFrame:
    """Complaints, offers made and declined, churn signals: each touching a few % of clients."""
    n_clients = len(client_ids)
    n_products = len(product_ids)
    parts: list[pd.DataFrame] = []

    def add(
        kind: str, who: np.ndarray, when: np.ndarray, what: np.ndarray | None, ref: object
    ) -> None:
        parts.append(
            pd.DataFrame(
                {
                    C.client: client_ids[who],
                    C.date: when,
                    C.type: kind,
                    C.product: product_ids[what] if what is not None else None,
                    C.ref: ref,
                }
            )
        )

    # complaints: 4% of clients in the last 120 days; 60% of them closed, 10 to 60 days later
    n_cmp = int(0.04 * n_clients)
    who = rng.choice(n_clients, n_cmp, replace=False)
    opened = _days(rng, 1, 120, n_cmp)
    refs = np.array([f"R{i}" for i in range(n_cmp)], dtype=object)
    add(EventType.complaint_opened, who, opened, None, refs)
    closed = rng.random(n_cmp) < 0.6
    close_t = (opened[closed] + rng.integers(10, 60, int(closed.sum())) * _DAY).astype(
        "datetime64[ns]"
    )
    close_t = np.minimum(close_t, AS_OF.to_datetime64().astype("datetime64[ns]"))
    add(EventType.complaint_closed, who[closed], close_t, None, refs[closed])
    # offers made: 5% of clients, 1-4 offers each in the last 60 days (some hit the contact cap)
    n_off_clients = int(0.05 * n_clients)
    who = rng.choice(n_clients, n_off_clients, replace=False)
    who = np.repeat(who, rng.integers(1, 5, n_off_clients))
    what = rng.integers(0, n_products, who.size)
    made = _days(rng, 1, 60, who.size)
    add(EventType.offer_made, who, made, what, None)
    # declines: 3% of clients declined one product in the last 180 days
    n_dec = int(0.03 * n_clients)
    who = rng.choice(n_clients, n_dec, replace=False)
    add(
        EventType.offer_declined,
        who,
        _days(rng, 1, 180, n_dec),
        rng.integers(0, n_products, n_dec),
        None,
    )
    # churn signals: 2% of clients in the last 180 days
    n_churn = int(0.02 * n_clients)
    who = rng.choice(n_clients, n_churn, replace=False)
    add(EventType.churn_signal, who, _days(rng, 1, 180, n_churn), None, None)
    return pd.concat(parts, ignore_index=True)


def make_book(
    n_clients: int,
    n_products: int,
    *,
    per_client: int = 5,
    tiers: int = 3,
    seed: int = 0,
) -> Book:
    """Return a validated Book (see the module docstring); ``as_of`` is :data:`AS_OF`."""
    frames = make_frames(n_clients, n_products, per_client=per_client, tiers=tiers, seed=seed)
    return Book.from_frames(**frames)


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    frames = make_frames(200_000, 1_000)
    t1 = time.perf_counter()
    book = Book.from_frames(**frames)
    t2 = time.perf_counter()
    m = book.matrix(AS_OF)
    print(
        f"frames {t1 - t0:.1f}s, Book {t2 - t1:.1f}s, {m.client_product.shape} "
        f"{m.client_product.nnz:,} active; events "
        f"{frames['events'][C.type].value_counts().to_dict()}"
    )
