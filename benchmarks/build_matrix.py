"""Time and size the contracts -> client x product matrix build against a plain pandas build.

Run by hand::

    python benchmarks/build_matrix.py [--sizes 1000000 5000000] [--repeats 3] [--profile]

For each size it generates a synthetic contracts frame (string client ids such as "C0001234",
about five contract rows per client, 2,000 products with skewed popularity, starts over five
years, a third of the contracts open, annual values with a few unknown), then measures

(a) crosssell: ``Book.from_frames(contracts=frame)`` (validation included) then
    ``book.matrix(as_of)``;
(b) plain pandas: as-of mask, ``pd.factorize`` of the client and product columns,
    ``scipy.sparse.coo_matrix`` -> CSR, duplicates summed, then binarised;

and checks that both give the same matrix. Times are medians over ``--repeats`` runs. Peak
memory is the growth of the resident set (Linux ``VmHWM`` after resetting it through
``/proc/self/clear_refs``, minus ``VmRSS`` before the build) in a fresh process per build, so it
counts every allocator (numpy, pandas, Arrow strings), not only Python's. Where that reset is not
available it falls back to ``tracemalloc`` (numpy and Python allocations only) and says so.

Targets: crosssell / plain <= 1.5 and crosssell peak < 3x the input frame.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import gc
import json
import pstats
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crosssell import Book
from crosssell.columns import Columns

C = Columns
N_PRODUCTS = 2000
ROWS_PER_CLIENT = 5
AS_OF = "2023-06-30"
HISTORY_START = pd.Timestamp("2020-01-01")
HISTORY_DAYS = 5 * 365


def make_contracts(n: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic contracts frame of ``n`` rows."""
    rng = np.random.default_rng(seed)
    n_clients = max(n // ROWS_PER_CLIENT, 1)
    client = rng.integers(0, n_clients, n)
    # Zipf-like popularity: a few products are held by many clients.
    weights = 1.0 / np.arange(1, N_PRODUCTS + 1) ** 0.8
    product = rng.choice(N_PRODUCTS, size=n, p=weights / weights.sum())
    start_day = rng.integers(0, HISTORY_DAYS, n)
    length = rng.integers(30, 3 * 365, n)
    open_ = rng.random(n) < 1 / 3
    start = HISTORY_START.to_datetime64() + start_day.astype("timedelta64[D]")
    end = (start + length.astype("timedelta64[D]")).astype("datetime64[ns]")
    end[open_] = np.datetime64("NaT")
    value = np.round(rng.lognormal(7.0, 1.0, n), 2)
    value[rng.random(n) < 0.05] = np.nan
    client_ids = pd.Series(client).astype(str).str.zfill(7).radd("C")
    product_ids = pd.Series(product).astype(str).str.zfill(4).radd("P")
    return pd.DataFrame(
        {
            C.client: client_ids,
            C.product: product_ids,
            C.start: start.astype("datetime64[ns]"),
            C.end: end,
            C.value: value,
        }
    )


def crosssell_build(frame: pd.DataFrame, as_of: str) -> sp.csr_matrix:
    book = Book.from_frames(contracts=frame)
    m: sp.csr_matrix = book.matrix(as_of).client_product
    return m


def plain_build(frame: pd.DataFrame, as_of: str) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    t = np.datetime64(pd.Timestamp(as_of))
    start = frame[C.start].to_numpy()
    end = frame[C.end].to_numpy()
    held = (start <= t) & (np.isnat(end) | (end > t))
    client_codes, clients = pd.factorize(frame[C.client])
    product_codes, products = pd.factorize(frame[C.product])
    coo = sp.coo_matrix(
        (np.ones(int(held.sum()), dtype=np.float32), (client_codes[held], product_codes[held])),
        shape=(len(clients), len(products)),
    )
    m = coo.tocsr()
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, pd.Index(clients), pd.Index(products)


def same_matrix(frame: pd.DataFrame, as_of: str) -> bool:
    book = Book.from_frames(contracts=frame)
    ours = book.matrix(as_of).client_product
    plain, clients, products = plain_build(frame, as_of)
    rows = clients.get_indexer(book.client_ids.external)
    cols = products.get_indexer(book.product_ids.external)
    if (rows < 0).any() or (cols < 0).any() or ours.shape != plain.shape:
        return False
    aligned = plain[rows][:, cols]
    return bool((ours != aligned).nnz == 0)


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _release_free_memory() -> None:
    # Memory freed while the frame was generated stays in the allocators' pools; handing it back
    # to the system first makes the build's own growth show in the resident set.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:
        pass


def measure_peak_here(n: int, which: str, as_of: str) -> dict[str, Any]:
    """Peak memory growth of one build, in this (fresh) process."""
    frame = make_contracts(n)
    input_mb = frame.memory_usage(deep=True).sum() / 2**20
    fn = (
        (lambda: crosssell_build(frame, as_of))
        if which == "crosssell"
        else (lambda: plain_build(frame, as_of))
    )
    gc.collect()
    _release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        fn()
        peak_mb = (_status_kb("VmHWM") - before) / 1024
        method = "rss"
    except OSError:
        tracemalloc.start()
        fn()
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        method = "tracemalloc"
    return {"peak_mb": peak_mb, "input_mb": input_mb, "method": method}


def measure_peak(n: int, which: str, as_of: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", which, "--sizes", str(n), "--as-of", as_of],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def profile(frame: pd.DataFrame, as_of: str, top: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    crosssell_build(frame, as_of)
    prof.disable()
    print(f"\ncProfile of crosssell build, {len(frame):,} rows (top {top} by cumulative time):")
    pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--profile", action="store_true", help="cProfile the largest size")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--memory-child", choices=["crosssell", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child:
        print(json.dumps(measure_peak_here(args.sizes[0], args.memory_child, args.as_of)))
        return

    header = (
        f"{'rows':>10} {'crosssell s':>11} {'book s':>7} {'matrix s':>8} {'plain s':>8} "
        f"{'ratio':>6} {'rows/s':>11} {'peak MB':>8} {'plain MB':>8} {'input MB':>8} "
        f"{'peak/in':>7} {'equal':>5}"
    )
    lines = []
    method = "-"
    frame = None
    for n in args.sizes:
        frame = make_contracts(n)
        input_mb = frame.memory_usage(deep=True).sum() / 2**20
        equal = same_matrix(frame, args.as_of)
        holder: dict[str, Any] = {}

        def book_only(f: pd.DataFrame = frame, h: dict[str, Any] = holder) -> None:
            h["book"] = Book.from_frames(contracts=f)

        def matrix_only(h: dict[str, Any] = holder) -> None:
            h["book"].matrix(args.as_of)

        ours = median_seconds(lambda f=frame: crosssell_build(f, args.as_of), args.repeats)
        book_s = median_seconds(book_only, args.repeats)
        matrix_s = median_seconds(matrix_only, args.repeats)
        holder.clear()
        plain = median_seconds(lambda f=frame: plain_build(f, args.as_of), args.repeats)
        if args.no_memory:
            peak = plain_peak = float("nan")
        else:
            mem = measure_peak(n, "crosssell", args.as_of)
            peak, method = mem["peak_mb"], mem["method"]
            plain_peak = measure_peak(n, "plain", args.as_of)["peak_mb"]
        line = (
            f"{n:>10,} {ours:>11.3f} {book_s:>7.3f} {matrix_s:>8.3f} {plain:>8.3f} "
            f"{ours / plain:>6.2f} {n / ours:>11,.0f} {peak:>8.0f} {plain_peak:>8.0f} "
            f"{input_mb:>8.0f} {peak / input_mb:>7.2f} {equal!s:>5}"
        )
        lines.append(line)
        print(line if len(lines) > 1 else header + "\n" + line, flush=True)
    print(
        f"\nas_of={args.as_of}; times are medians of {args.repeats}; ratio = crosssell / plain "
        f"(target <= 1.5); peak = memory growth during one build, measured by {method} "
        "(target < 3x input)."
    )
    if args.profile and frame is not None:
        profile(frame, args.as_of, top=30)


if __name__ == "__main__":
    main()
