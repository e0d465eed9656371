"""Eligibility rules: what a client may hold at all, given what it holds and the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crosssell._codec import register
from crosssell._params import Options, check_params
from crosssell.book import Book
from crosssell.columns import Columns, RuleKind
from crosssell.exceptions import SchemaError
from crosssell.rules._base import NAME, Reads
from crosssell.rules._blocks import Blocks
from crosssell.rules._common import BoolArray, IntArray, as_tuple, concat_text
from crosssell.rules._context import RuleContext

# Dense scratch blocks (clients x restricted products) are cut to about this many cells.
_CHUNK_CELLS: Final = 1 << 24


def _complement(
    n_clients: int, cols: IntArray, allowed_rows: IntArray, allowed_cols: IntArray
) -> tuple[IntArray, IntArray]:
    """Every (client, k) for k in ``range(len(cols))`` except the allowed ones, as pairs.

    ``allowed_cols`` are positions into ``cols``; the returned products are ``cols[k]``.
    """
    width = max(1, _CHUNK_CELLS // max(n_clients, 1))
    out_c: list[IntArray] = []
    out_p: list[IntArray] = []
    for start in range(0, cols.shape[0], width):
        stop = min(start + width, cols.shape[0])
        blocked = np.ones((n_clients, stop - start), dtype=bool)
        sel = (allowed_cols >= start) & (allowed_cols < stop)
        blocked[allowed_rows[sel], allowed_cols[sel] - start] = False
        r, k = np.nonzero(blocked)
        out_c.append(r.astype(np.int64))
        out_p.append(cols[k + start])
    if not out_c:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_c), np.concatenate(out_p)


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class AlreadyHeld:
    """Never offer a product the client actively holds.

    Parameters
    ----------
    name : str, default "already_held"
    allow_seat_expansion : bool, default False
        When True, a held product may still be offered as an upsell (more seats or units of it).

    Examples
    --------
    >>> AlreadyHeld()
    AlreadyHeld(name='already_held', allow_seat_expansion=False, kind='eligibility')
    """

    name: str = "already_held"
    allow_seat_expansion: bool = False
    kind: RuleKind = field(default="eligibility", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "allow_seat_expansion": ["boolean"],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the holdings at ``as_of``: no event, no ended contract.

        Examples
        --------
        >>> AlreadyHeld().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block every (client, product) pair held at ``as_of``.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c), "2024-06-30")
        >>> AlreadyHeld().blocks(ctx).detail[0]
        'the client already holds this product'
        """
        coo = ctx.holdings.tocoo()
        if self.allow_seat_expansion:
            return Blocks.pairs(
                coo.row,
                coo.col,
                "the client already holds this product; only more seats of it may be offered",
                scope="cross_sell",
            )
        return Blocks.pairs(coo.row, coo.col, "the client already holds this product")


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class NotSellable:
    """Never offer a product the catalog marks as not sellable.

    Parameters
    ----------
    name : str, default "not_sellable"

    Examples
    --------
    >>> NotSellable().kind
    'eligibility'
    """

    name: str = "not_sellable"
    kind: RuleKind = field(default="eligibility", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the product table: no event, no ended contract.

        Examples
        --------
        >>> NotSellable().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block, for every client, each product whose ``sellable`` flag is False.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "sellable": [True, False]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> NotSellable().blocks(ctx).detail.tolist()
        ['P2 is marked not sellable in the catalog']
        """
        table = ctx.book.product_table
        if Columns.sellable not in table.columns:
            return Blocks.empty()
        sellable = table[Columns.sellable].astype(object).fillna(value=True).astype(bool)
        idx = np.flatnonzero(~sellable.to_numpy(dtype=bool))
        text = concat_text(ctx.product_text[idx], " is marked not sellable in the catalog")
        return Blocks.products(idx, text if idx.size else "")


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class PrerequisiteMissing:
    """Offer a product only to clients holding what it requires (the catalog's ``requires``).

    Parameters
    ----------
    name : str, default "prerequisite_missing"
    mode : {"all", "any"}, default "any"
        One of the listed products is enough by default (a base product in any tier); ``"all"``
        asks for every one of them.

    Raises
    ------
    ValueError
        If ``mode`` is not ``"all"`` or ``"any"``.

    Examples
    --------
    >>> PrerequisiteMissing(mode="any").mode
    'any'
    """

    name: str = "prerequisite_missing"
    mode: Literal["all", "any"] = "any"
    kind: RuleKind = field(default="eligibility", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "mode": [Options({"all", "any"})],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the holdings at ``as_of`` and the product table: no event, no ended contract.

        Examples
        --------
        >>> PrerequisiteMissing().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs where the client lacks the product's prerequisites.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "requires": [(), ("P1",)]})
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2025-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> b = PrerequisiteMissing().blocks(ctx)
        >>> b.client.tolist(), b.product.tolist(), b.detail[0]
        ([1], [1], 'P2 requires P1 to be held first')
        """
        matrix, lengths, readable = ctx.product_lists(Columns.requires)
        cols = np.flatnonzero(lengths > 0)
        if cols.size == 0 or ctx.n_clients == 0:
            return Blocks.empty()
        need = lengths[cols] if self.mode == "all" else np.ones(cols.size, dtype=np.int64)
        held = ctx.holdings.astype(np.int32)
        counts = (held @ matrix[cols].T).tocoo()
        ok = counts.data >= need[counts.col]
        client, product = _complement(
            ctx.n_clients, cols, counts.row[ok].astype(np.int64), counts.col[ok].astype(np.int64)
        )
        lists = readable.to_numpy(dtype=str)
        many = "one of " if self.mode == "any" else ""
        many_arr = np.where(lengths > 1, many, "")
        per_product = concat_text(
            ctx.product_text, " requires ", many_arr, lists, " to be held first"
        )
        return Blocks.pairs(client, product, per_product[product])


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludedByHolding:
    """Never offer a product that cannot be held together with one the client holds.

    Exclusions work both ways: if A excludes B, a holder of A is not offered B and a holder of B
    is not offered A.

    Parameters
    ----------
    name : str, default "excluded_by_holding"

    Examples
    --------
    >>> ExcludedByHolding().name
    'excluded_by_holding'
    """

    name: str = "excluded_by_holding"
    kind: RuleKind = field(default="eligibility", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the holdings at ``as_of`` and the product table: no event, no ended contract.

        Examples
        --------
        >>> ExcludedByHolding().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs where a held product excludes the product (or back).

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "excludes": [("P2",), ()]})
        >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P2"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p), "2024-06-30")
        >>> b = ExcludedByHolding().blocks(ctx)
        >>> sorted(zip(b.client.tolist(), b.product.tolist()))
        [(0, 1), (1, 0)]
        >>> b.detail[b.client == 0][0]
        'P2 cannot be held together with P1, which the client holds'
        """
        matrix, _, _ = ctx.product_lists(Columns.excludes)
        if matrix.nnz == 0:
            return Blocks.empty()
        both = ((matrix + matrix.T) > 0).astype(np.int32).tocsr()
        conflicts = (ctx.holdings.astype(np.int32) @ both).tocoo()
        client = conflicts.row.astype(np.int64)
        product = conflicts.col.astype(np.int64)
        if client.size == 0:
            return Blocks.empty()
        # Name the held products behind each pair: the held x excluded overlap, per pair, is small.
        pair_key = pd.DataFrame({"c": client, "p": product})
        held = ctx.holdings.tocoo()
        excl = both.tocoo()
        held_df = pd.DataFrame({"c": held.row.astype(np.int64), "h": held.col.astype(np.int64)})
        excl_df = pd.DataFrame({"h": excl.row.astype(np.int64), "p": excl.col.astype(np.int64)})
        why = held_df.merge(excl_df, on="h").merge(pair_key, on=["c", "p"])
        # One run per pair, pairs in order, held products in the order the merge met them;
        # a pair behind which one product is held (the usual case) needs no join.
        order = np.lexsort((why["p"].to_numpy(), why["c"].to_numpy()))
        c_all = why["c"].to_numpy(dtype=np.int64)[order]
        p_all = why["p"].to_numpy(dtype=np.int64)[order]
        held_names = np.asarray(ctx.product_text, dtype=object)[why["h"].to_numpy()[order]]
        first = np.flatnonzero(np.r_[True, (c_all[1:] != c_all[:-1]) | (p_all[1:] != p_all[:-1])])
        stop = np.r_[first[1:], c_all.size]
        behind = held_names[first]
        for i in np.flatnonzero(stop - first > 1).tolist():
            behind[i] = ", ".join(held_names[first[i] : stop[i]].tolist())
        c, p = c_all[first], p_all[first]
        text = concat_text(
            ctx.product_text[p],
            " cannot be held together with ",
            behind,
            ", which the client holds",
        )
        return Blocks.pairs(c, p, text)


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentNotEligible:
    """Offer a product restricted to some segments only to clients in those segments.

    A product whose ``segments`` is empty (None) is offered to every segment.

    Parameters
    ----------
    name : str, default "segment_not_eligible"

    Examples
    --------
    >>> SegmentNotEligible().kind
    'eligibility'
    """

    name: str = "segment_not_eligible"
    kind: RuleKind = field(default="eligibility", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """Nothing but the client and product tables: no event, no ended contract.

        Examples
        --------
        >>> SegmentNotEligible().reads
        Reads(events={}, ended_contracts=False, other_clients=False)
        """
        return Reads()

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (client, product) pairs where the client's segment is not among the product's.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "segments": [None, ("SME",)]})
        >>> k = pd.DataFrame({"client_id": ["C1", "C2"], "segment": ["SME", "Retail"]})
        >>> c = pd.DataFrame({"client_id": ["C1"], "product_id": ["P1"],
        ...                   "start_date": ["2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, products=p, clients=k), "2024-06-30")
        >>> b = SegmentNotEligible().blocks(ctx)
        >>> b.client.tolist(), b.product.tolist(), b.detail[0]
        ([1], [1], "P2 is offered only to segment SME; the client's segment is Retail")
        """
        products = ctx.book.product_table
        if Columns.segments not in products.columns or ctx.n_clients == 0:
            return Blocks.empty()
        restricted = products[Columns.segments].map(
            lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else as_tuple(v)
        )
        cols = np.flatnonzero(restricted.notna().to_numpy(dtype=bool))
        if cols.size == 0:
            return Blocks.empty()
        clients = ctx.book.client_table
        if Columns.segment in clients.columns:
            seg = clients[Columns.segment].astype(object)
        else:
            seg = pd.Series([None] * ctx.n_clients, dtype=object)
        exploded = restricted.iloc[cols].reset_index(drop=True).explode().dropna()
        labels = pd.Index(pd.unique(pd.concat([seg.dropna(), exploded]).astype(str)))
        client_code = labels.get_indexer(seg.astype(str).where(seg.notna(), None))
        client_code = np.where(seg.notna().to_numpy(dtype=bool), client_code, -1)
        seg_code = labels.get_indexer(exploded.astype(str))
        # Row len(labels) stands for "no segment" and is allowed nowhere.
        allowed = np.zeros((len(labels) + 1, cols.size), dtype=bool)
        allowed[seg_code, np.asarray(exploded.index, dtype=np.int64)] = True
        row = np.where(client_code >= 0, client_code, len(labels)).astype(np.int64)
        per_client = allowed[row]
        ok_rows, ok_cols = np.nonzero(per_client)
        client, product = _complement(
            ctx.n_clients, cols, ok_rows.astype(np.int64), ok_cols.astype(np.int64)
        )
        if client.size == 0:
            return Blocks.empty()
        lists = restricted.iloc[cols].map(lambda t: ", ".join(str(x) for x in t)).to_numpy(str)
        plural = np.where(restricted.iloc[cols].map(len).to_numpy() > 1, "s", "")
        head = concat_text(
            ctx.product_text[cols], " is offered only to segment", plural, " ", lists
        )
        tails = np.append(
            concat_text("; the client's segment is ", np.asarray(labels.astype(str), dtype=str)),
            "; the client has no segment",
        ).astype(str)
        table = concat_text(
            np.broadcast_to(head.astype(str)[None, :], allowed.shape),
            np.broadcast_to(tails[:, None], allowed.shape),
        ).reshape(allowed.shape)
        position = np.searchsorted(cols, product)
        return Blocks.pairs(client, product, table[row[client], position])


@register("rule")
@dataclass(frozen=True, slots=True, kw_only=True)
class GroupHeld:
    """Do not offer a subsidiary what its parent account holds for the whole group.

    A client whose ``parent_id`` names another client is a subsidiary. A product the parent
    holds actively at ``as_of`` under a group contract covers the subsidiary already, so it is
    not offered to it. Only the direct parent is looked at.

    Parameters
    ----------
    name : str, default "group_held"
    group_column : str, optional
        A boolean column of the contracts table marking group contracts. When None (the
        default), every active contract of the parent counts as a group contract.

    Raises
    ------
    ValueError
        If ``name`` is empty.

    Examples
    --------
    >>> import crosssell as cs
    >>> policy = cs.rules.route_sales().with_rules(GroupHeld())
    >>> policy["group_held"].kind
    'eligibility'
    """

    name: str = "group_held"
    group_column: str | None = None
    kind: RuleKind = field(default="eligibility", init=False)

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "name": [NAME],
        "group_column": [str, None],
    }

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads(self) -> Reads:
        """The parent's active contracts: another client's rows, no event.

        Examples
        --------
        >>> GroupHeld().reads.other_clients
        True
        """
        return Reads(other_clients=True)

    def blocks(self, ctx: RuleContext) -> Blocks:
        """Block (subsidiary, product) pairs where the parent holds the product for the group.

        Parameters
        ----------
        ctx : RuleContext

        Returns
        -------
        Blocks

        Raises
        ------
        SchemaError
            If ``group_column`` is not a column of the contracts table.

        Examples
        --------
        >>> import pandas as pd
        >>> from crosssell import Book
        >>> from crosssell.rules import RuleContext
        >>> k = pd.DataFrame({"client_id": ["HQ", "SUB"], "parent_id": [None, "HQ"]})
        >>> c = pd.DataFrame({"client_id": ["HQ", "SUB"], "product_id": ["ERP", "CRM"],
        ...                   "start_date": ["2024-01-01", "2024-01-01"]})
        >>> ctx = RuleContext.at(Book.from_frames(contracts=c, clients=k), "2024-06-30")
        >>> b = GroupHeld().blocks(ctx)
        >>> b.client.tolist(), b.product.tolist(), b.detail[0]
        ([1], [0], 'ERP is held by the parent account HQ under a group contract')
        """
        parent = parent_index(ctx.book)
        subs = np.flatnonzero(parent >= 0)
        if subs.size == 0:
            return Blocks.empty()
        ca = ctx.book.contract_arrays
        t = ctx.as_of_ns
        active = (ca.start <= t) & (t < ca.end)
        if self.group_column is not None:
            active &= _group_flags(ctx.book, self.group_column)
        n_c, n_p = ctx.n_clients, ctx.n_products
        parent_holds = sp.csr_matrix(
            (np.ones(int(active.sum()), dtype=np.int32), (ca.client[active], ca.product[active])),
            shape=(n_c, n_p),
        )
        sub_to_parent = sp.csr_matrix(
            (np.ones(subs.size, dtype=np.int32), (subs, parent[subs])), shape=(n_c, n_c)
        )
        pairs = (sub_to_parent @ parent_holds).tocoo()
        if pairs.nnz == 0:
            return Blocks.empty()
        client = pairs.row.astype(np.int64)
        product = pairs.col.astype(np.int64)
        names = pd.Series(ctx.book.product_ids.external.astype(str)).to_numpy(dtype=object)
        parents = pd.Series(ctx.book.client_ids.external.astype(str)).to_numpy(dtype=object)
        detail = (
            pd.Series(names[product], dtype=object)
            + " is held by the parent account "
            + pd.Series(parents[parent[client]], dtype=object)
            + " under a group contract"
        )
        return Blocks.pairs(client, product, detail.to_numpy(dtype=object))


def parent_index(book: Book) -> IntArray:
    """Index of each client's parent (-1: none, unknown, or itself)."""
    table = book.client_table
    n = len(book.client_ids)
    if Columns.parent not in table.columns:
        return np.full(n, -1, dtype=np.int64)
    given = table[Columns.parent]
    known = given.notna().to_numpy(dtype=bool)
    out = np.full(n, -1, dtype=np.int64)
    if known.any():
        out[known] = book.client_ids.to_index(given[known].to_numpy(), missing="ignore")
    out[out == np.arange(n)] = -1
    return out


def _group_flags(book: Book, column: str) -> BoolArray:
    contracts = book.contracts
    if column not in contracts.columns:
        raise SchemaError(
            f"contracts: the group contract column {column!r} is missing (columns: "
            f"{list(contracts.columns)}). Add a boolean column marking group contracts, or pass "
            "GroupHeld(group_column=None) to count every contract of the parent.",
            table="contracts",
            column=column,
            rule="missing_column",
        )
    flags = contracts[column].astype(object).fillna(value=False).astype(bool)
    return flags.to_numpy(dtype=bool)
