"""Point-in-time features of (client, product) pairs for the learned second stage.

Everything here is computed from a :class:`FeatureContext`, a snapshot of a Book at one date that
holds only contracts started and events dated on or before it. The ranker builds one context per
training window (at the start of the window) and one at ``as_of`` for prediction, so a feature can
never see the outcome it is used to predict.

A user feature is any callable ``f(context, clients, products) -> array of float`` over aligned
arrays of client and product indices (rows of ``book.client_ids`` and ``book.product_ids``); it must
read the Book only through the context (``context.contracts()``, ``context.events()``, or the
client and product tables), which keeps the same no-look-ahead contract as the built-in features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._sparse import group_max, row_keys
from crosssell.columns import Columns
from crosssell.scorers._common import lookup

if TYPE_CHECKING:
    from crosssell.book import Book

__all__ = [
    "EVENT_STATE",
    "FeatureContext",
    "FeatureFunction",
    "build_context",
    "context_for_holdings",
    "event_state",
    "pair_features",
    "segment_popularity_of",
    "segment_rows",
    "with_event_state",
]

IntArray = npt.NDArray[np.int64]
FloatArray64 = npt.NDArray[np.float64]
FeatureFunction = Callable[["FeatureContext", IntArray, IntArray], npt.ArrayLike]

_DAY_NS = 86_400 * 10**9
_CHURN_WINDOW_DAYS = 365

#: The arrays of a :class:`FeatureContext` that :func:`build_context` computes from the Book's
#: events, by ``"<attribute>"`` or ``"<attribute>/<key>"``, with their kind and shape:
#: everything else it reads from the contracts and the client and product tables.
EVENT_STATE: dict[str, tuple[str, tuple[str, ...]]] = {
    "client_columns/client_open_complaints": ("array", ("n_clients",)),
    "client_columns/client_contacts": ("array", ("n_clients",)),
    "client_columns/client_churn_signals": ("array", ("n_clients",)),
    **{
        f"client_family/{kind}": ("sparse", ("n_clients", "n_families"))
        for kind in ("offer_made", "offer_declined", "offer_accepted", "need", "last_decline")
    },
    **{
        f"client_product/{kind}": ("sparse", ("n_clients", "n_products"))
        for kind in ("offer_made", "offer_declined", "offer_accepted", "need")
    },
    "segment_accept": ("array", ("n_segment_rows", "n_products")),
}


@dataclass(frozen=True, slots=True, kw_only=True, weakref_slot=True)
class FeatureContext:
    """A Book seen at one date: the arrays every built-in feature reads.

    Build it with :func:`build_context`. Arrays indexed by client follow ``book.client_ids``;
    arrays indexed by product follow ``book.product_ids``; families are codes into
    :attr:`families`. Sparse matrices are CSR with canonical indices.

    Attributes
    ----------
    book : Book
        The whole Book; read it only through :meth:`contracts` and :meth:`events`.
    as_of : pandas.Timestamp
        The date of the snapshot: nothing dated later is used.
    horizon : pandas.Timedelta
        Length of the recent window (trend, contacts).
    holdings : scipy.sparse.csr_matrix
        Binary holdings at ``as_of``; rows are clients, columns are products.
    available : ndarray of bool
        Products that can be offered at ``as_of`` (see :meth:`crosssell.Book.available`).
    product_age_days : ndarray of float64
        Days since each product became available (NaN when the catalogue gives no date and it
        was never sold).
    family_segment_popularity : ndarray of float64, shape (n_segments + 1, n_families)
        Share of the clients of each segment (last row: clients without one) holding any
        product of each family, shrunk toward the overall share like ``segment_popularity``.
        It speaks for a product nobody holds yet through the products of its family.

    Examples
    --------
    >>> import crosssell as cs
    >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
    >>> ctx.holdings.toarray().tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """

    book: Book
    as_of: pd.Timestamp
    horizon: pd.Timedelta
    holdings: sp.csr_matrix
    families: pd.Index
    product_family: IntArray
    product_tier: FloatArray64
    product_price: FloatArray64
    client_segment: IntArray
    segments: pd.Index
    popularity: FloatArray64
    segment_popularity: FloatArray64
    trend: FloatArray64
    available: npt.NDArray[np.bool_]
    product_age_days: FloatArray64
    family_segment_popularity: FloatArray64
    client_columns: dict[str, FloatArray64]
    client_family: dict[str, sp.csr_matrix]
    client_product: dict[str, sp.csr_matrix]
    segment_accept: FloatArray64
    _keys: dict[int, IntArray] = field(default_factory=dict, repr=False)
    _family_labels: list[npt.NDArray[np.object_]] = field(default_factory=list, repr=False)

    def family_labels(self) -> npt.NDArray[np.object_]:
        """Return the family names as an object array of str, aligned with :attr:`families`.

        Built once per context: explaining one client's offers reads them on every call.

        Returns
        -------
        ndarray of object

        Examples
        --------
        >>> import crosssell as cs
        >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
        >>> ctx.family_labels().tolist() == [str(f) for f in ctx.families]
        True
        """
        if not self._family_labels:
            self._family_labels.append(np.asarray(self.families.astype(str), dtype=object))
        return self._family_labels[0]

    def contracts(self) -> pd.DataFrame:
        """Return the contracts started on or before :attr:`as_of` (ends after it read as open).

        Returns
        -------
        pandas.DataFrame
            Columns ``client_idx``, ``product_idx``, ``start_date``, ``end_date``, ``value``.

        Examples
        --------
        >>> import crosssell as cs
        >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
        >>> len(ctx.contracts())
        2
        """
        a = self.book.contract_arrays
        t = int(self.as_of.value)
        keep = a.start <= t
        end = a.end[keep].copy()
        end[end > t] = np.iinfo(np.int64).min
        return pd.DataFrame(
            {
                Columns.client_idx: a.client[keep].astype(np.int64),
                Columns.product_idx: a.product[keep].astype(np.int64),
                Columns.start: pd.to_datetime(a.start[keep], unit="ns"),
                Columns.end: pd.to_datetime(end.view("datetime64[ns]")),
                Columns.value: a.value[keep],
            }
        )

    def events(self) -> pd.DataFrame:
        """Return the events dated on or before :attr:`as_of`, with integer index columns.

        Returns
        -------
        pandas.DataFrame
            The Book's event table (``client_idx``, ``product_idx`` with -1 for none, ``date``,
            ``type``, ``family`` ...) cut at ``as_of``.

        Examples
        --------
        >>> import crosssell as cs
        >>> ctx = build_context(cs.datasets.demo(), "2023-01-01", "90D")
        >>> bool((ctx.events()["date"] <= ctx.as_of).all())
        True
        """
        ev = self.book.event_table
        return ev[ev[Columns.date] <= self.as_of]

    def pair(self, matrix: sp.csr_matrix, rows: IntArray, cols: IntArray) -> FloatArray64:
        """Read ``matrix[rows[i], cols[i]]`` for aligned index arrays (0 where absent).

        Parameters
        ----------
        matrix : scipy.sparse.csr_matrix
            One of the context's sparse matrices (canonical CSR).
        rows, cols : ndarray of int64
            Aligned indices.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> import numpy as np, crosssell as cs
        >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
        >>> ctx.pair(ctx.holdings, np.array([0, 1]), np.array([0, 0])).tolist()
        [1.0, 0.0]
        """
        keys = self._keys.get(id(matrix))
        if keys is None:
            keys = row_keys(matrix)
            self._keys[id(matrix)] = keys
        return lookup(matrix, rows, cols, keys)


def _sparse(
    rows: npt.ArrayLike, cols: npt.ArrayLike, vals: npt.ArrayLike, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Sum duplicate entries into a canonical CSR matrix."""
    out = sp.csr_matrix(
        (np.asarray(vals, dtype=np.float64), (np.asarray(rows), np.asarray(cols))), shape=shape
    )
    out.sum_duplicates()
    out.sort_indices()
    return out


def build_context(  # noqa: PLR0915 - one pass over the snapshot's arrays, read top to bottom
    book: Book, as_of: Any, horizon: Any
) -> FeatureContext:
    """Snapshot ``book`` at ``as_of`` for the built-in features (no look-ahead).

    Parameters
    ----------
    book : Book
        Validated inputs.
    as_of : date-like
        The snapshot date; contracts started and events dated later are ignored.
    horizon : str or timedelta
        The recent window: product trend is the share of clients who took the product in
        ``(as_of - horizon, as_of]``, contacts are counted over it.

    Returns
    -------
    FeatureContext

    Examples
    --------
    >>> import crosssell as cs
    >>> ctx = build_context(cs.datasets.demo(), "2024-06-30", "90D")
    >>> ctx.holdings.shape
    (500, 24)
    """
    t_stamp = pd.Timestamp(as_of)
    span = pd.Timedelta(horizon)
    t = int(t_stamp.value)
    n_clients, n_products = len(book.client_ids), len(book.product_ids)
    holdings = book.matrix(t_stamp).client_product.astype(np.float32).tocsr()
    holdings.data = np.ones_like(holdings.data)
    holdings.sort_indices()

    products = book.product_table
    fam_codes, families = pd.factorize(products[Columns.family].astype(object), sort=True)
    product_family = np.asarray(fam_codes, dtype=np.int64)
    n_fam = max(len(families), 1)
    tier = pd.to_numeric(products[Columns.tier], errors="coerce").to_numpy(np.float64)
    price = (
        pd.to_numeric(products[Columns.price], errors="coerce").to_numpy(np.float64)
        if Columns.price in products.columns
        else np.full(n_products, np.nan)
    )

    clients = book.client_table
    if Columns.segment in clients.columns:
        seg_codes, segments = pd.factorize(clients[Columns.segment].astype(object), sort=True)
    else:
        seg_codes, segments = np.full(n_clients, -1), pd.Index([])
    client_segment = np.asarray(seg_codes, dtype=np.int64)
    n_seg = len(segments)

    # popularity among clients present at as_of (holding something), overall and per segment
    held_rows = np.repeat(np.arange(n_clients), np.diff(holdings.indptr))
    active = np.diff(holdings.indptr) > 0
    n_active = max(int(active.sum()), 1)
    holders = np.bincount(holdings.indices, minlength=n_products).astype(np.float64)
    popularity = holders / n_active
    seg_of_held = client_segment[held_rows]
    known = seg_of_held >= 0
    seg_holders = np.zeros((n_seg + 1, n_products))
    np.add.at(seg_holders, (np.where(known, seg_of_held, n_seg), holdings.indices), 1.0)
    seg_sizes = np.bincount(
        np.where(client_segment >= 0, client_segment, n_seg)[active], minlength=n_seg + 1
    ).astype(np.float64)
    # shrink small segments toward the overall share: ten pseudo-clients
    segment_popularity = (seg_holders + 10.0 * popularity) / (seg_sizes[:, None] + 10.0)
    family_segment_popularity = _family_segment_popularity(
        holdings, product_family, client_segment, seg_sizes, n_fam
    )
    available = book.available(t_stamp)
    launched = products[Columns.available_from].to_numpy(dtype="datetime64[ns]").view(np.int64)
    product_age_days = np.where(
        launched == np.iinfo(np.int64).min, np.nan, (t - launched.astype(np.float64)) / _DAY_NS
    )

    a = book.contract_arrays
    started = a.start <= t
    c_client = a.client[started].astype(np.int64)
    c_product = a.product[started].astype(np.int64)
    c_start = a.start[started]
    c_end = a.end[started]
    c_value = np.nan_to_num(a.value[started])
    live = c_end > t
    recent = c_start > t - span.value
    trend = np.bincount(c_product[recent], minlength=n_products).astype(np.float64) / n_active

    n_holdings = np.diff(holdings.indptr).astype(np.float64)
    value = np.bincount(c_client[live], weights=c_value[live], minlength=n_clients)
    first = np.full(n_clients, np.iinfo(np.int64).max)
    np.minimum.at(first, c_client, c_start)
    tenure = np.where(first < np.iinfo(np.int64).max, (t - first) / _DAY_NS, np.nan)
    satisfaction = (
        pd.to_numeric(clients[Columns.satisfaction], errors="coerce").to_numpy(np.float64)
        if Columns.satisfaction in clients.columns
        else np.full(n_clients, np.nan)
    )

    ev = book.event_table
    ev = ev[ev[Columns.date] <= t_stamp]
    e_client = ev[Columns.client_idx].to_numpy(np.int64)
    e_product = ev[Columns.product_idx].to_numpy(np.int64)
    e_type = ev[Columns.type].to_numpy(dtype=object)
    e_date = ev[Columns.date].to_numpy().view(np.int64)
    if Columns.family in ev.columns:
        e_fam = families.get_indexer(pd.Index(ev[Columns.family].astype(object)))
    else:
        e_fam = np.full(len(ev), -1)
    # an event naming a product speaks for its family too
    e_fam = np.where(e_product >= 0, product_family[np.maximum(e_product, 0)], e_fam)
    e_fam = np.asarray(e_fam, dtype=np.int64)

    def count(kind: str, since: int | None = None) -> FloatArray64:
        m = e_type == kind
        if since is not None:
            m &= e_date > since
        return np.bincount(e_client[m], minlength=n_clients).astype(np.float64)

    open_complaints = np.maximum(count("complaint_opened") - count("complaint_closed"), 0.0)
    client_columns = {
        "client_segment": client_segment.astype(np.float64),
        "client_holdings": n_holdings,
        "client_value": value,
        "client_tenure_days": tenure,
        "client_satisfaction": satisfaction,
        "client_open_complaints": open_complaints,
        "client_contacts": count("contact", t - span.value),
        "client_churn_signals": count("churn_signal", t - _CHURN_WINDOW_DAYS * _DAY_NS),
    }

    shape_cf = (n_clients, n_fam)
    shape_cp = (n_clients, n_products)
    hf = product_family[holdings.indices]
    client_family = {
        "family_held": _sparse(held_rows, hf, np.ones(hf.size), shape_cf),
        # tier + 1 so that an absent entry (0) reads as "holds no tier"
        "family_max_tier": group_max(
            held_rows, hf, np.nan_to_num(tier[holdings.indices], nan=0.0) + 1.0, shape_cf
        ),
        "family_last_start": group_max(
            c_client, product_family[c_product], c_start.astype(np.float64), shape_cf
        ),
    }
    client_product: dict[str, sp.csr_matrix] = {}
    for kind in ("offer_made", "offer_declined", "offer_accepted", "need"):
        m = e_type == kind
        mp = m & (e_product >= 0)
        client_product[kind] = _sparse(
            e_client[mp], e_product[mp], np.ones(int(mp.sum())), shape_cp
        )
        mf = m & (e_fam >= 0)
        client_family[kind] = _sparse(e_client[mf], e_fam[mf], np.ones(int(mf.sum())), shape_cf)
    declined = (e_type == "offer_declined") & (e_fam >= 0)
    client_family["last_decline"] = group_max(
        e_client[declined], e_fam[declined], e_date[declined].astype(np.float64), shape_cf
    )

    # acceptance rate of each product's offers in each segment, smoothed toward the overall rate
    made = (e_type == "offer_made") & (e_product >= 0)
    took = (e_type == "offer_accepted") & (e_product >= 0)
    seg_e = np.where(client_segment[e_client] >= 0, client_segment[e_client], n_seg)
    n_made = np.zeros((n_seg + 1, n_products))
    n_took = np.zeros((n_seg + 1, n_products))
    np.add.at(n_made, (seg_e[made], e_product[made]), 1.0)
    np.add.at(n_took, (seg_e[took], e_product[took]), 1.0)
    overall = (n_took.sum() + 1.0) / (n_made.sum() + 2.0)
    segment_accept = (n_took + 5.0 * overall) / (n_made + 5.0)

    return FeatureContext(
        book=book,
        as_of=t_stamp,
        horizon=span,
        holdings=holdings,
        families=pd.Index(families),
        product_family=product_family,
        product_tier=tier,
        product_price=price,
        client_segment=client_segment,
        segments=pd.Index(segments),
        popularity=popularity,
        segment_popularity=segment_popularity,
        trend=trend,
        available=np.asarray(available, dtype=np.bool_),
        product_age_days=product_age_days,
        family_segment_popularity=family_segment_popularity,
        client_columns=client_columns,
        client_family=client_family,
        client_product=client_product,
        segment_accept=segment_accept,
    )


def _family_segment_popularity(
    holdings: sp.csr_matrix,
    product_family: IntArray,
    client_segment: IntArray,
    seg_sizes: FloatArray64,
    n_fam: int,
) -> FloatArray64:
    """Share of each segment's clients holding any product of each family (shrunk)."""
    n_clients = holdings.shape[0]
    n_seg = seg_sizes.size - 1
    held_rows = np.repeat(np.arange(n_clients), np.diff(holdings.indptr))
    # distinct (client, family) keys: a sort and a comparison of neighbours (np.unique hashes
    # them first, several times slower on a million holdings)
    keys = np.sort(held_rows * n_fam + product_family[holdings.indices])
    pairs = keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys
    rows, fams = pairs // n_fam, pairs % n_fam
    seg = client_segment[rows]
    seg_fam = np.zeros((n_seg + 1, n_fam))
    np.add.at(seg_fam, (np.where(seg >= 0, seg, n_seg), fams), 1.0)
    overall = seg_fam.sum(axis=0) / max(float(seg_sizes.sum()), 1.0)
    return np.asarray((seg_fam + 10.0 * overall) / (seg_sizes[:, None] + 10.0), dtype=np.float64)


def event_state(ctx: FeatureContext) -> dict[str, Any]:
    """Return the arrays of ``ctx`` computed from events, by their names in :data:`EVENT_STATE`.

    With the Book's contracts and tables, they are all :func:`with_event_state` needs to give
    back the same context from a Book whose events were left out.

    Parameters
    ----------
    ctx : FeatureContext
        A snapshot.

    Returns
    -------
    dict
        Name to ndarray of float64 or CSR matrix of float64 (rows are clients).

    Examples
    --------
    >>> import crosssell as cs
    >>> state = event_state(build_context(cs.datasets.demo(), "2024-06-30", "90D"))
    >>> sorted(state) == sorted(EVENT_STATE), state["segment_accept"].shape[1]
    (True, 24)
    """
    out: dict[str, Any] = {}
    for name in EVENT_STATE:
        attr, _, key = name.partition("/")
        value = getattr(ctx, attr)
        out[name] = value[key] if key else value
    return out


def with_event_state(ctx: FeatureContext, state: dict[str, Any]) -> FeatureContext:
    """Return ``ctx`` with the arrays computed from events replaced by ``state``.

    ``ctx`` is built from a Book without events; ``state`` is what :func:`event_state` took from
    the context of the Book with them, at the same date and horizon.

    Parameters
    ----------
    ctx : FeatureContext
        A snapshot of the Book without its events.
    state : dict
        Every name of :data:`EVENT_STATE`, each with the shape of the array it replaces.

    Returns
    -------
    FeatureContext

    Raises
    ------
    ValueError
        If a name is missing or unknown, or an array has another shape or dtype, or a sparse
        matrix is not canonical CSR.

    Examples
    --------
    >>> import dataclasses, crosssell as cs
    >>> book = cs.datasets.demo()
    >>> full = build_context(book, "2024-06-30", "90D")
    >>> bare = dataclasses.replace(book, event_table=book.event_table.iloc[:0])
    >>> again = with_event_state(build_context(bare, "2024-06-30", "90D"), event_state(full))
    >>> bool((again.segment_accept == full.segment_accept).all())
    True
    """
    if set(state) != set(EVENT_STATE):
        missing = sorted(set(EVENT_STATE) - set(state))
        unknown = sorted(set(state) - set(EVENT_STATE))
        raise ValueError(
            f"The feature context's event arrays lack {missing} and hold unknown {unknown}."
        )
    now = event_state(ctx)
    for name, value in state.items():
        was = now[name]
        canonical = not sp.issparse(value) or (
            isinstance(value, sp.csr_matrix | sp.csr_array) and value.has_canonical_format
        )
        if value.shape != was.shape or value.dtype != was.dtype or not canonical:
            raise ValueError(
                f"The feature context's event array {name!r} is {type(value).__name__} "
                f"{value.dtype} of shape {value.shape}; expected {type(was).__name__} "
                f"{was.dtype} of shape {was.shape}{'' if canonical else ' in canonical CSR'}."
            )
    groups: dict[str, Any] = {
        "client_columns": dict(ctx.client_columns),
        "client_family": dict(ctx.client_family),
        "client_product": dict(ctx.client_product),
    }
    fields: dict[str, Any] = {}
    for name, value in state.items():
        attr, _, key = name.partition("/")
        if key:
            groups[attr][key] = value
        else:
            fields[attr] = value
    # the lookup keys are cached by matrix: a fresh cache for the new matrices
    return replace(ctx, **groups, **fields, _keys={})


def context_for_holdings(ctx: FeatureContext, held: IntArray) -> FeatureContext:
    """Build a one-client context: a client unknown to ``ctx`` that holds ``held`` and nothing else.

    The client has no segment, attributes or history; product-level arrays are those of ``ctx``.

    Parameters
    ----------
    ctx : FeatureContext
        The snapshot the product-level features come from.
    held : ndarray of int64
        Product indices the client holds.

    Returns
    -------
    FeatureContext
        Client index 0 is the new client.

    Examples
    --------
    >>> import numpy as np, crosssell as cs
    >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
    >>> context_for_holdings(ctx, np.array([2])).holdings.toarray().tolist()
    [[0.0, 0.0, 1.0]]
    """
    held = np.unique(np.asarray(held, dtype=np.int64))
    n_products = ctx.holdings.shape[1]
    n_fam = ctx.client_family["family_held"].shape[1]
    zeros = np.zeros(held.size, dtype=np.int64)
    holdings = _sparse(zeros, held, np.ones(held.size), (1, n_products)).astype(np.float32)
    fam = ctx.product_family[held]
    tier = np.nan_to_num(ctx.product_tier[held], nan=0.0) + 1.0
    client_family = {k: sp.csr_matrix((1, n_fam), dtype=np.float64) for k in ctx.client_family}
    client_family["family_held"] = _sparse(zeros, fam, np.ones(held.size), (1, n_fam))
    client_family["family_max_tier"] = group_max(zeros, fam, tier, (1, n_fam))
    client_columns = {k: np.full(1, np.nan) for k in ctx.client_columns}
    client_columns["client_holdings"] = np.array([float(held.size)])
    client_columns["client_segment"] = np.array([-1.0])
    return FeatureContext(
        book=ctx.book,
        as_of=ctx.as_of,
        horizon=ctx.horizon,
        holdings=holdings,
        families=ctx.families,
        product_family=ctx.product_family,
        product_tier=ctx.product_tier,
        product_price=ctx.product_price,
        client_segment=np.full(1, -1, dtype=np.int64),
        segments=ctx.segments,
        popularity=ctx.popularity,
        segment_popularity=ctx.segment_popularity,
        trend=ctx.trend,
        available=ctx.available,
        product_age_days=ctx.product_age_days,
        family_segment_popularity=ctx.family_segment_popularity,
        client_columns=client_columns,
        client_family=client_family,
        client_product={
            k: sp.csr_matrix((1, n_products), dtype=np.float64) for k in ctx.client_product
        },
        segment_accept=ctx.segment_accept,
    )


def segment_rows(ctx: FeatureContext, clients: IntArray) -> IntArray:
    """Return the row of each client's segment in the segment tables (the last: no segment).

    Examples
    --------
    >>> import numpy as np, crosssell as cs
    >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
    >>> bool((segment_rows(ctx, np.arange(2)) < ctx.segment_popularity.shape[0]).all())
    True
    """
    seg = ctx.client_segment[clients]
    return np.where(seg >= 0, seg, ctx.segment_popularity.shape[0] - 1)


def segment_popularity_of(
    ctx: FeatureContext, clients: IntArray, products: IntArray
) -> tuple[FloatArray64, FloatArray64]:
    """Return the features ``segment_popularity`` and ``family_segment_popularity`` alone.

    The same values :func:`pair_features` gives those two columns, without the others.

    Examples
    --------
    >>> import numpy as np, crosssell as cs
    >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
    >>> seg, fam = segment_popularity_of(ctx, np.array([0, 1]), np.array([1, 1]))
    >>> names, x = pair_features(ctx, np.array([0, 1]), np.array([1, 1]))
    >>> bool((seg == x[:, names.index("segment_popularity")]).all())
    True
    """
    seg_row = segment_rows(ctx, clients)
    fam = ctx.product_family[products]
    return ctx.segment_popularity[seg_row, products], ctx.family_segment_popularity[seg_row, fam]


def _builtin(ctx: FeatureContext, clients: IntArray, products: IntArray) -> dict[str, FloatArray64]:
    """Every built-in feature of the pairs, as named float64 columns."""
    t = float(ctx.as_of.value)
    fam = ctx.product_family[products]
    seg_row = segment_rows(ctx, clients)
    cf, cp = ctx.client_family, ctx.client_product
    tier = ctx.product_tier[products]
    max_tier = ctx.pair(cf["family_max_tier"], clients, fam) - 1.0
    last_start = ctx.pair(cf["family_last_start"], clients, fam)
    last_decline = ctx.pair(cf["last_decline"], clients, fam)
    pop = ctx.popularity[products]
    seg_pop = ctx.segment_popularity[seg_row, products]
    out = {
        "popularity": pop,
        "segment_popularity": seg_pop,
        "segment_lift": seg_pop / np.maximum(pop, 1e-9),
        "trend": ctx.trend[products],
        "trend_share": ctx.trend[products] / np.maximum(pop, 1e-9),
        "product_family": fam.astype(np.float64),
        "product_tier": tier,
        "product_price": ctx.product_price[products],
        "product_age_days": ctx.product_age_days[products],
        "family_segment_popularity": ctx.family_segment_popularity[seg_row, fam],
        "family_held": ctx.pair(cf["family_held"], clients, fam),
        "holds_lower_tier": ((max_tier >= 0) & (max_tier < tier)).astype(np.float64),
        "tier_gap": np.where(max_tier >= 0, tier - max_tier, np.nan),
        "days_since_family_start": np.where(last_start > 0, (t - last_start) / _DAY_NS, np.nan),
        "offers_made": ctx.pair(cp["offer_made"], clients, products),
        "offers_declined": ctx.pair(cp["offer_declined"], clients, products),
        "offers_accepted": ctx.pair(cp["offer_accepted"], clients, products),
        "family_offers_made": ctx.pair(cf["offer_made"], clients, fam),
        "family_offers_declined": ctx.pair(cf["offer_declined"], clients, fam),
        "family_offers_accepted": ctx.pair(cf["offer_accepted"], clients, fam),
        "days_since_family_decline": np.where(
            last_decline > 0, (t - last_decline) / _DAY_NS, np.nan
        ),
        "segment_acceptance": ctx.segment_accept[seg_row, products],
        "need": ctx.pair(cp["need"], clients, products),
        "family_need": ctx.pair(cf["need"], clients, fam),
    }
    for name, column in ctx.client_columns.items():
        out[name] = column[clients]
    return out


def pair_features(
    ctx: FeatureContext,
    clients: IntArray,
    products: IntArray,
    extra: Sequence[tuple[str, FeatureFunction]] = (),
    *,
    lead: Sequence[tuple[str, npt.ArrayLike]] = (),
) -> tuple[list[str], FloatArray64]:
    """Compute the built-in and user features of aligned (client, product) pairs.

    Parameters
    ----------
    ctx : FeatureContext
        The snapshot the features are read from.
    clients, products : ndarray of int64
        Aligned indices into ``book.client_ids`` and ``book.product_ids``.
    extra : sequence of (str, callable)
        User features: ``f(ctx, clients, products)`` returning one float per pair.
    lead : sequence of (str, array), optional
        Columns already computed (one value per pair) to place first, so that the whole
        feature matrix is written once.

    Returns
    -------
    names : list of str
    values : ndarray of float64, shape (len(clients), len(names))
        NaN marks a missing value (the trees route it on their own).

    Raises
    ------
    ValueError
        If a user feature returns the wrong number of values.

    Examples
    --------
    >>> import numpy as np, crosssell as cs
    >>> ctx = build_context(cs.datasets.tiny(), "2024-06-30", "90D")
    >>> names, x = pair_features(ctx, np.array([0]), np.array([1]))
    >>> x[0, names.index("holds_lower_tier")]
    np.float64(1.0)
    """
    cols: dict[str, npt.ArrayLike] = dict(lead)
    cols.update(_builtin(ctx, clients, products))
    for name, fn in extra:
        values = np.asarray(fn(ctx, clients, products), dtype=np.float64).reshape(-1)
        if values.size != clients.size:
            raise ValueError(
                f"The feature {name!r} returned {values.size} values for {clients.size} pairs: a "
                "feature function must return one float per (client, product) pair."
            )
        cols[name] = values
    names = list(cols)
    x = np.empty((clients.size, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        x[:, j] = cols[name]
    return names, x
