"""Benchmark: the HTTP service under load, on loopback, with and without fresh data.

Run by hand::

    python benchmarks/serve_load.py                          # 20k clients x 2k products
    python benchmarks/serve_load.py --requests 4000 --concurrency 16 --time-limit 120

It fits a recommender (default scorer, route-sales policy, k=10) on the synthetic book of
``benchmarks/_books.py``, saves it, starts ``crosssell.serve.run`` in a child process on a free
loopback port (one BLAS thread, as a serving process should run) and sends ``--requests``
``POST /recommend`` calls from ``--concurrency`` concurrent callers (httpx, one connection
each), in two rounds:

- ``plain``: a client id only;
- ``fresh event``: a client id and one new event dated ``as_of``, cycling through a complaint
  opened, an offer declined, a need and a churn signal (what a CRM sends when it has just
  logged one).

Each round stops after ``--requests`` answers or ``--time-limit`` seconds, whichever comes first.
It prints throughput, p50 and p99 latency, the answers that were not 200, and the server's
resident memory (VmRSS) before the first round and after each one; then stops the server.
Client and server share the machine: on a small one the client's own work is part of what
is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from crosssell import Recommender
from crosssell.rules import route_sales

# the shared synthetic Book builder sits beside this script
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

EVENT_TYPES = ("complaint_opened", "offer_declined", "need", "churn_signal")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model: Path, port: int, timeout: float) -> subprocess.Popen[bytes]:
    """Start the service in a child process and wait until /health answers."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("CROSSSELL_API_KEY", None)
    env.pop("CROSSSELL_API_KEY_FILE", None)
    code = (
        "from crosssell.serve import run; "
        f"run({str(model)!r}, host='127.0.0.1', port={port}, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped while starting (exit {proc.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")


async def load(
    port: int, bodies: list[dict[str, Any]], concurrency: int, time_limit: float
) -> tuple[np.ndarray, dict[int, int], float]:
    """Send the bodies from ``concurrency`` callers; latencies (s), status counts, wall time."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.monotonic() + time_limit

    async def caller() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as http:
            while time.monotonic() < stop:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                try:
                    status = (await http.post("/recommend", json=body)).status_code
                except httpx.HTTPError:
                    status = -1
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return np.asarray(latencies), statuses, time.perf_counter() - t0


def main() -> None:
    from _books import AS_OF, make_book

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per round")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    args = parser.parse_args()

    book = make_book(args.clients, args.products)
    rec = Recommender(policy=route_sales(), k=10).fit(book, AS_OF)
    rng = np.random.default_rng(0)
    ids = book.client_ids.external
    picked = ids[rng.integers(0, len(ids), args.requests)].tolist()
    day = str(AS_OF.date())
    products = book.product_ids.external
    plain = [{"client_id": c} for c in picked]
    fresh = []
    for i, c in enumerate(picked):
        event = {"date": day, "type": EVENT_TYPES[i % len(EVENT_TYPES)]}
        if event["type"] == "offer_declined":
            event["product_id"] = products[i % len(products)]
        fresh.append({"client_id": c, "events": [event]})

    with tempfile.TemporaryDirectory() as tmp:
        model = rec.save(Path(tmp) / "model.crosssell")
        port = free_port()
        proc = start_server(model, port, args.start_timeout)
        try:
            print(
                f"\n## {len(ids):,} clients x {len(products):,} products; {args.requests:,} "
                f"requests per round, {args.concurrency} concurrent callers, "
                f"limit {args.time_limit:.0f} s; load average {os.getloadavg()[0]:.1f}"
            )
            print(f"server memory at start: {rss_mib(proc.pid):.0f} MiB")
            print(
                f"{'round':<14} {'answered':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'not 200':>8} {'RSS MiB':>8}"
            )
            for name, bodies in (("plain", plain), ("fresh event", fresh)):
                # a short warm-up: connections and first-call caches
                asyncio.run(load(port, bodies[:20], args.concurrency, args.time_limit))
                lat, statuses, wall = asyncio.run(
                    load(port, bodies, args.concurrency, args.time_limit)
                )
                p50, p99 = np.percentile(lat, [50, 99]) * 1e3 if lat.size else (np.nan,) * 2
                bad = sum(n for s, n in statuses.items() if s != 200)
                print(
                    f"{name:<14} {lat.size:>9,} {lat.size / wall:>8.1f} {p50:>8.1f} {p99:>8.1f} "
                    f"{bad:>8} {rss_mib(proc.pid):>8.0f}"
                )
                if bad:
                    print(f"  statuses: {dict(sorted(statuses.items()))}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
