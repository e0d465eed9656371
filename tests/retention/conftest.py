"""Small contract books for the retention tests, built so that the answer is obvious."""

from __future__ import annotations

import numpy as np
import pandas as pd

import crosssell as cs

AS_OF = "2024-06-30"


def renewal_frames(n: int = 300, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Yearly contracts renewed back to back, unless a complaint came in the 90 days before.

    Each client starts in 2021 with one 12-month contract (some hold a second product line on
    the same terms). At each term's end it renews, except after a complaint opened in the 90
    days before the end: then every contract lapses and the client is gone. Unhappy clients
    (satisfaction 3) complain far more often than happy ones (satisfaction 9). Complaints stay
    open for 20 days.
    """
    rng = np.random.default_rng(seed)
    contracts: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    clients: list[dict[str, object]] = []
    stop = pd.Timestamp("2025-06-30")
    for i in range(n):
        cid = f"C{i:03d}"
        unhappy = rng.random() < 0.35
        clients.append(
            {"client_id": cid, "satisfaction": 3.0 if unhappy else 9.0, "segment": "mid"}
        )
        start = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 330)))
        products = ["CRM"] if rng.random() < 0.6 else ["CRM", "ERP"]
        ref = 0
        while start < stop:
            end = start + pd.DateOffset(months=12)
            contracts.extend(
                {
                    "client_id": cid,
                    "product_id": product,
                    "start_date": start,
                    "end_date": end,
                    "value": 1000.0 if product == "CRM" else 3000.0,
                }
                for product in products
            )
            complained = rng.random() < (0.3 if unhappy else 0.03)
            if complained:
                opened = end - pd.Timedelta(days=int(rng.integers(10, 80)))
                events.append(
                    {
                        "client_id": cid,
                        "date": opened,
                        "type": "complaint_opened",
                        "ref": f"{cid}-{ref}",
                    }
                )
                events.append(
                    {
                        "client_id": cid,
                        "date": opened + pd.Timedelta(days=20),
                        "type": "complaint_closed",
                        "ref": f"{cid}-{ref}",
                    }
                )
                ref += 1
                break
            start = end
    return {
        "contracts": pd.DataFrame(contracts),
        "clients": pd.DataFrame(clients),
        "events": pd.DataFrame(events),
    }


def renewal_book(n: int = 300, seed: int = 0) -> cs.Book:
    """The book of :func:`renewal_frames`."""
    frames = renewal_frames(n, seed)
    return cs.Book.from_frames(
        contracts=frames["contracts"], clients=frames["clients"], events=frames["events"]
    )
