"""Whitespace: where the book leaves money on the table, by product (or family) and segment.

Marketing and product planning read this table: for every product and client group, the
expected value of the offers made and of every offer that could be made, how many clients hold
the product already, how many said they need it, and how many offers the policy blocked, rule by
rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from crosssell._params import Options, check_fitted, validate_params
from crosssell.book import Book
from crosssell.columns import Columns, EventType, WhitespaceColumns
from crosssell.evaluation._figures import figure_axes
from crosssell.recommender import Recommender
from crosssell.rules import RuleContext

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["WhitespaceColumns", "plot_whitespace", "whitespace"]

Level = Literal["product", "family"]

_ALL: Final = "all"
_NO_GROUP: Final = "(none)"

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, kw_only=True)
class _RuleMask:
    """What one rule blocks, split by offer scope: clients, products and pairs."""

    name: str
    clients: dict[str, BoolArray]
    products: dict[str, BoolArray]
    pairs: dict[str, sp.csr_matrix]

    def chunk(self, rows: npt.NDArray[np.int64], is_upsell: BoolArray) -> BoolArray:
        out = np.zeros(is_upsell.shape, dtype=bool)
        for scope in self.clients:
            dense = self.pairs[scope][rows].toarray().astype(bool, copy=False)
            dense |= self.clients[scope][rows][:, None]
            dense |= self.products[scope][None, :]
            if scope == "upsell":
                dense &= is_upsell
            elif scope == "cross_sell":
                dense &= ~is_upsell
            out |= dense
        return out


def whitespace(
    recommender: Recommender,
    book: Book | None = None,
    *,
    by: str | None = "segment",
    level: Level = "product",
    candidates: bool = True,
) -> pd.DataFrame:
    """Measure the expected value left on the table, per product (or family) and client group.

    Parameters
    ----------
    recommender : Recommender
        A fitted recommender.
    book : Book, optional
        The Book it was fitted on (the default).
    by : str or None, default "segment"
        A column of the clients table to group clients by (``segment``, ``region``, ``owner``
        ...); None gives one group, ``"all"``. Clients without a value form the group
        ``"(none)"``.
    level : {"product", "family"}, default "product"
        One row per product, or per product family.
    candidates : bool, default True
        Also score every candidate pair (not only the recommended offers) for
        ``candidate_value``, ``allowed_value`` and the blocked counts. This costs about one
        batch recommend; pass False on very large books to get only the cheap columns.

    Returns
    -------
    pandas.DataFrame
        One row per (product or family, group), with columns: ``product_id`` (and ``name``) or
        ``family``; the ``by`` column; ``holders`` (clients holding it at ``as_of``); ``needs``
        (clients who stated a need for it, or for its family, up to ``as_of``); ``offers`` and
        ``offered_value`` (count and summed expected value of the recommended offers). With
        ``candidates``: ``candidates`` (pairs that could be offered: not held, not a downgrade),
        ``candidate_value`` (their summed expected value before the policy), ``allowed_value``
        (after the policy), ``blocked`` (candidate pairs the policy blocked) and one
        ``blocked_by_<rule>`` column per rule (a pair blocked by two rules counts for both).

    Raises
    ------
    NotFittedError
        If the recommender is not fitted.
    ValueError
        If ``by`` is not a column of the clients table, ``level`` is unknown, or ``book`` is
        not the fitted one.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender(policy=cs.rules.route_sales()).fit(
    ...     cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> ws = whitespace(rec, level="family")
    >>> ws.columns[:4].tolist()
    ['family', 'segment', 'holders', 'needs']
    >>> bool((ws["allowed_value"] <= ws["candidate_value"] + 1e-6).all())
    True
    """
    check_fitted(recommender, "scorer_")
    fitted: Book = recommender.book_
    if (
        book is not None
        and book is not fitted
        and not (book.client_ids == fitted.client_ids and book.product_ids == fitted.product_ids)
    ):
        raise ValueError(
            "whitespace: the 'book' differs from the one the recommender was fitted on. Refit "
            "the recommender on this book, or omit 'book'."
        )
    validate_params(
        "whitespace",
        {"level": level, "candidates": candidates},
        {"level": [Options({"product", "family"})], "candidates": ["boolean"]},
    )
    book = fitted
    group, labels, by_name = _groups(book, by)
    rows = np.flatnonzero(recommender.eligible_).astype(np.int64)
    n_c, n_p = len(book.client_ids), len(book.product_ids)
    n_g = len(labels)
    # Groups x clients, restricted to clients that exist at as_of.
    g_of = sp.csr_matrix(
        (np.ones(rows.size), (group[rows], rows)), shape=(n_g, n_c), dtype=np.float64
    )
    cand = recommender.candidates_
    # Products x items: the identity at product level, the family one-hot at family level.
    if level == "product":
        item_of = sp.identity(n_p, dtype=np.float64, format="csr")
    else:
        item_of = sp.csr_matrix(
            (np.ones(n_p), (np.arange(n_p), cand.family)), shape=(n_p, len(cand.families))
        )
    ctx = RuleContext(book=book, as_of=recommender.as_of_, holdings=cand.holdings)

    held = (cand.holdings.astype(np.float64) @ item_of) > 0
    columns: dict[str, FloatArray] = {
        Columns.holders: _dense(g_of @ held.astype(np.float64)),
        Columns.needs: _dense(g_of @ _needs(ctx, cand.family, item_of).astype(np.float64)),
    }
    offers = recommender.recommend(explain=False)
    oc = book.client_ids.to_index(offers[Columns.client])
    op = book.product_ids.to_index(offers[Columns.product])
    per_pair = sp.csr_matrix((np.ones(oc.size), (oc, op)), shape=(n_c, n_p), dtype=np.float64)
    ev_pair = sp.csr_matrix(
        (offers[Columns.expected_value].to_numpy(dtype=np.float64), (oc, op)), shape=(n_c, n_p)
    )
    columns[Columns.offers] = _dense(g_of @ per_pair @ item_of)
    columns[Columns.offered_value] = _dense(g_of @ ev_pair @ item_of)
    if candidates:
        columns.update(_scan(recommender, rows, group, n_g, item_of))

    return _frame(
        book, columns=columns, labels=labels, by_name=by_name, level=level, families=cand.families
    )


def _groups(book: Book, by: str | None) -> tuple[npt.NDArray[np.int64], pd.Index, str]:
    table = book.client_table
    n = len(book.client_ids)
    if by is None:
        return np.zeros(n, dtype=np.int64), pd.Index([_ALL]), "group"
    if by not in table.columns:
        raise ValueError(
            f"The 'by' parameter of whitespace must be a column of the clients table "
            f"({list(table.columns)}) or None. Got {by!r} instead."
        )
    values = table[by].astype(object)
    values = values.where(values.notna(), _NO_GROUP).astype(str)
    codes, labels = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(labels), by


def _dense(matrix: Any) -> FloatArray:
    out = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return np.asarray(out, dtype=np.float64)


def _needs(ctx: RuleContext, family: npt.NDArray[np.int64], item_of: sp.csr_matrix) -> Any:
    """Clients x items: True where the client stated a need for the item (or its family)."""
    n_c, n_p = ctx.n_clients, ctx.n_products
    ev = ctx.events(EventType.need)
    c = ev[Columns.client_idx].to_numpy(dtype=np.int64)
    p = ev[Columns.product_idx].to_numpy(dtype=np.int64)
    named = ctx.family_labels.get_indexer(pd.Index(ev[Columns.family].astype(object).astype(str)))
    # A need names a product or a family; either way it is read at family level first.
    fam = np.where(p >= 0, family[np.maximum(p, 0)], _family_code(ctx, family, named))
    keep = fam >= 0
    n_f = int(family.max()) + 1 if family.size else 0
    by_family = sp.csr_matrix(
        (np.ones(int(keep.sum())), (c[keep], fam[keep])), shape=(n_c, max(n_f, 1))
    )
    members = sp.csr_matrix((np.ones(n_p), (family, np.arange(n_p))), shape=(max(n_f, 1), n_p))
    per_product = sp.csr_matrix(by_family @ members)
    per_product.data = (per_product.data > 0).astype(np.float64)
    per_item = sp.csr_matrix(per_product @ item_of)
    per_item.data = (per_item.data > 0).astype(np.float64)
    return per_item


def _family_code(
    ctx: RuleContext, family: npt.NDArray[np.int64], named: npt.NDArray[np.intp]
) -> npt.NDArray[np.int64]:
    """Translate the context's family label codes to the candidates' family codes."""
    ctx_codes = ctx.family_codes
    translate = np.full(len(ctx.family_labels), -1, dtype=np.int64)
    translate[ctx_codes] = family
    return np.where(named >= 0, translate[np.maximum(named, 0)], -1)


def _rule_masks(recommender: Recommender, n_c: int, n_p: int) -> list[_RuleMask]:
    sup = recommender.suppression_
    if sup is None:
        return []
    log = sup.log
    out: list[_RuleMask] = []
    for name in log[Columns.rule].cat.categories:
        part = log[log[Columns.rule] == name]
        clients: dict[str, BoolArray] = {}
        products: dict[str, BoolArray] = {}
        pairs: dict[str, sp.csr_matrix] = {}
        for scope in pd.unique(part[Columns.scope].astype(str)):
            rows = part[part[Columns.scope].astype(str) == scope]
            c = rows[Columns.client_idx].to_numpy(dtype=np.int64)
            p = rows[Columns.product_idx].to_numpy(dtype=np.int64)
            cl = np.zeros(n_c, dtype=bool)
            cl[c[(c >= 0) & (p < 0)]] = True
            cl |= bool(((c < 0) & (p < 0)).any())
            pr = np.zeros(n_p, dtype=bool)
            pr[p[(c < 0) & (p >= 0)]] = True
            both = (c >= 0) & (p >= 0)
            pairs[str(scope)] = sp.csr_matrix(
                (np.ones(int(both.sum()), dtype=bool), (c[both], p[both])), shape=(n_c, n_p)
            )
            clients[str(scope)] = cl
            products[str(scope)] = pr
        out.append(_RuleMask(name=str(name), clients=clients, products=products, pairs=pairs))
    return out


def _scan(
    rec: Recommender,
    rows: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
    n_g: int,
    item_of: sp.csr_matrix,
) -> dict[str, FloatArray]:
    """Score every candidate pair in batches and sum value and blocks per group and item."""
    n_c, n_p = len(rec.book_.client_ids), len(rec.book_.product_ids)
    masks = _rule_masks(rec, n_c, n_p)
    not_worth = rec.not_worth_
    n_i = item_of.shape[1]
    sums = {
        Columns.candidates: np.zeros((n_g, n_p)),
        Columns.candidate_value: np.zeros((n_g, n_p)),
        Columns.allowed_value: np.zeros((n_g, n_p)),
        Columns.blocked: np.zeros((n_g, n_p)),
    }
    per_rule = {m.name: np.zeros((n_g, n_p)) for m in masks}
    if not_worth is not None:
        per_rule[not_worth.name] = np.zeros((n_g, n_p))
    for start in range(0, rows.size, rec.batch_size):
        chunk = rows[start : start + rec.batch_size]
        scores = rec.scorer_.score(chunk)
        cold = rec.cold_[chunk]
        if cold.any():
            scores[cold] = rec.fallback_.score(chunk[cold])
        propensity = np.asarray(rec.propensity_.predict(scores), dtype=np.float64)
        cc = rec.candidates_.chunk(chunk)
        is_up = cc.is_upsell if cc.is_upsell is not None else np.zeros_like(cc.is_candidate)
        ev = np.nan_to_num(propensity * cc.value)
        is_cand = cc.is_candidate
        blocked = np.zeros_like(is_cand)
        for m in masks:
            hit = m.chunk(chunk, is_up) & is_cand
            per_rule[m.name] += _by_group(group[chunk], n_g, hit)
            blocked |= hit
        if not_worth is not None:
            weak = not_worth.blocked(
                propensity, propensity * cc.value, cost=rec.pricing_.cost[None, :]
            )
            weak &= is_cand
            per_rule[not_worth.name] += _by_group(group[chunk], n_g, weak)
            blocked |= weak
        g = group[chunk]
        sums[Columns.candidates] += _by_group(g, n_g, is_cand)
        sums[Columns.candidate_value] += _by_group(g, n_g, np.where(is_cand, ev, 0.0))
        sums[Columns.allowed_value] += _by_group(g, n_g, np.where(is_cand & ~blocked, ev, 0.0))
        sums[Columns.blocked] += _by_group(g, n_g, blocked)
    out = {k: np.asarray(v @ item_of, dtype=np.float64).reshape(n_g, n_i) for k, v in sums.items()}
    for name, counts in per_rule.items():
        out[Columns.blocked_prefix + name] = np.asarray(counts @ item_of).reshape(n_g, n_i)
    return out


def _by_group(group: npt.NDArray[np.int64], n_g: int, values: Any) -> FloatArray:
    """Sum the rows of a (clients x products) chunk into (groups x products)."""
    m = group.shape[0]
    onehot = sp.csr_matrix((np.ones(m), (group, np.arange(m))), shape=(n_g, m))
    return np.asarray(onehot @ np.asarray(values, dtype=np.float64), dtype=np.float64)


def _frame(
    book: Book,
    *,
    columns: dict[str, FloatArray],
    labels: pd.Index,
    by_name: str,
    level: Level,
    families: pd.Index,
) -> pd.DataFrame:
    n_g = len(labels)
    if level == "product":
        items = book.product_ids.external
        n_i = len(items)
        head: dict[str, Any] = {
            Columns.product: np.tile(np.asarray(items, dtype=object), n_g),
            Columns.name: np.tile(book.product_table[Columns.name].to_numpy(dtype=object), n_g),
        }
    else:
        n_i = len(families)
        head = {Columns.family: np.tile(np.asarray(families.astype(str), dtype=object), n_g)}
    head[by_name] = np.repeat(np.asarray(labels, dtype=object), n_i)
    counts = {Columns.holders, Columns.needs, Columns.offers, Columns.candidates, Columns.blocked}
    body: dict[str, Any] = {}
    for name, values in columns.items():
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        integral = name in counts or name.startswith(Columns.blocked_prefix)
        body[name] = np.rint(flat).astype(np.int64) if integral else flat
    frame = pd.DataFrame({**head, **body})
    if level == "product":
        frame[Columns.product] = frame[Columns.product].astype(book.product_ids.dtype)
    return frame


def plot_whitespace(
    df: pd.DataFrame,
    value: str = Columns.allowed_value,
    *,
    by: str | None = None,
    ax: Axes | None = None,
    annotate: bool = True,
    cmap: str = "Greens",
) -> Figure:
    """Draw a whitespace table as a heatmap: items down, client groups across.

    Needs matplotlib (the ``plot`` extra), imported only here.

    Parameters
    ----------
    df : DataFrame
        The result of :func:`whitespace`.
    value : str, default "allowed_value"
        The column to colour by (e.g. ``offered_value``, ``candidate_value``, ``needs``).
    by : str, optional
        The group column; default the second column of ``df``.
    ax : matplotlib Axes, optional
        Draw there; a new figure is made when omitted.
    annotate : bool, default True
        Write each cell's value in it.
    cmap : str, default "Greens"
        A matplotlib colour map name.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``value`` or ``by`` is not a column of ``df``.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> fig = plot_whitespace(whitespace(rec, level="family"), "offered_value")
    >>> fig.axes[0].get_xlabel()
    'segment'
    """
    item = Columns.product if Columns.product in df.columns else Columns.family
    group = by if by is not None else str(df.columns[2 if item == Columns.product else 1])
    for name, what in ((value, "value"), (group, "by"), (item, "item")):
        if name not in df.columns:
            raise ValueError(
                f"The {what!r} parameter of plot_whitespace must name a column of the whitespace "
                f"table ({list(df.columns)}). Got {name!r} instead."
            )
    labels = df[Columns.name] if item == Columns.product and Columns.name in df else df[item]
    grid = df.assign(_item=labels.astype(str)).pivot_table(
        index="_item", columns=group, values=value, aggfunc="sum", sort=False
    )
    grid = grid.loc[grid.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    fig, (ax,) = figure_axes(ax, figsize=(1.6 + 1.1 * grid.shape[1], 1.2 + 0.32 * grid.shape[0]))
    data = grid.to_numpy(dtype=np.float64)
    image = ax.imshow(data, aspect="auto", cmap=cmap)
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index])
    ax.set_xlabel(group)
    ax.set_title(value.replace("_", " "))
    fig.colorbar(image, ax=ax, shrink=0.8)
    if annotate and data.size:
        top = np.nanmax(data) if np.isfinite(data).any() else 0.0
        for (i, j), v in np.ndenumerate(data):
            dark = top > 0 and v > 0.6 * top
            ax.text(
                j,
                i,
                _short(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    fig.tight_layout()
    return fig


def _short(v: float) -> str:
    if not np.isfinite(v):
        return ""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.1f}{unit}"
    return f"{v:.0f}"
