"""HTML pages of an account plan: one per account manager, and an index.

Each page is self-contained (inline CSS, no script, no external resource), prints cleanly and
reads on a phone. All text from the data is escaped.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from crosssell._version import __version__
from crosssell.account_plan import ACTIONS, AccountPlan
from crosssell.allocation import Allocation
from crosssell.columns import Columns
from crosssell.html._html import badge, esc, page, slug, table, write_page

__all__ = ["plan_overview", "write_plan_pages"]

INDEX: Final = "index.html"
UNOWNED: Final = "unowned.html"
_TITLES: Final = {
    "resolve_complaint": "resolve complaint",
    "renew": "renew",
    "reorder": "reorder",
    "propose": "propose",
    "check_in": "check in",
    "none": "nothing",
}


def write_plan_pages(
    account_plan: AccountPlan, out_dir: str | os.PathLike[str], *, title: str = "Account plan"
) -> list[Path]:
    """Write one HTML page per account manager, one for unowned accounts, and an index.

    Parameters
    ----------
    account_plan : AccountPlan
        The result of :func:`crosssell.account_plan.plan`.
    out_dir : str or path-like
        Folder to write into (created when missing). Pages are named ``owner-<owner>.html``,
        ``unowned.html`` and ``index.html``.
    title : str, default "Account plan"
        Title shown on every page.

    Returns
    -------
    list of pathlib.Path
        The pages written, the index last.

    Examples
    --------
    >>> import tempfile
    >>> import crosssell as cs
    >>> from crosssell.account_plan import plan
    >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> with tempfile.TemporaryDirectory() as d:
    ...     pages = write_plan_pages(plan(rec, capacity=5), d)
    ...     [p.name for p in pages][:2], pages[-1].name
    (['owner-AM01.html', 'owner-AM02.html'], 'index.html')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _file_names(account_plan.owners)
    actions = account_plan.actions
    written: list[Path] = []
    for owner, group in actions[actions[Columns.owner].notna()].groupby(Columns.owner, sort=True):
        doc = _owner_page(account_plan, str(owner), group, title=title)
        written.append(write_page(out / names[str(owner)], doc))
    unowned = actions[actions[Columns.owner].isna()]
    if len(unowned):
        written.append(write_page(out / UNOWNED, _unowned_page(account_plan, unowned, title)))
    index = _index_page(account_plan, names, n_unowned=len(unowned), title=title)
    written.append(write_page(out / INDEX, index))
    return written


def _file_names(owners: Sequence[str]) -> dict[str, str]:
    """One distinct, safe file name per owner, even when two owners slug alike."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for owner in owners:
        stem = f"owner-{slug(owner, default='x')}"
        name, k = f"{stem}.html", 2
        while name.lower() in used:
            name, k = f"{stem}-{k}.html", k + 1
        used.add(name.lower())
        out[owner] = name
    return out


def _money(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):,.0f}"


def _day(value: Any) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _header(account_plan: AccountPlan, heading: str, title: str) -> str:
    start = account_plan.as_of.strftime("%Y-%m-%d")
    days = account_plan.period.days
    return (
        f'<p class="meta noprint"><a href="{INDEX}">&larr; all managers</a></p>'
        f"<h1>{esc(heading)}</h1>"
        f'<p class="meta">{esc(title)} for the {esc(days)} days from {esc(start)} '
        f"&middot; crosssell {esc(__version__)}</p>"
    )


def _card(row: dict[Hashable, Any]) -> str:
    action = str(row[Columns.action])
    flags = badge(_TITLES[action], action)
    if bool(row[Columns.at_risk]):
        flags += " " + badge("at risk", "at_risk")
    facts = [f"priority {_money(row[Columns.priority])}", f"due {_day(row[Columns.due])}"]
    if pd.notna(row[Columns.value]):
        facts.append(f"value {_money(row[Columns.value])}")
    if pd.notna(row[Columns.segment]):
        facts.append(f"segment {row[Columns.segment]}")
    health = row.get(Columns.health)
    if health is not None and pd.notna(health):
        # with a retention model: the client's health, and the value its risk puts at stake
        facts.append(f"health {int(health)}/100")
        facts.append(f"value at risk {_money(row[Columns.value_at_risk])}")
    rank = row[Columns.rank_in_owner]
    parts = [
        '<li class="card"><header>',
        f'<span class="rank">{esc("" if pd.isna(rank) else f"#{int(rank)}")}</span>',
        f'<span class="who">{esc(row[Columns.client])}</span>{flags}</header>',
        f'<div class="facts">{esc(" · ".join(facts))}</div>',
        f'<p class="reason">{esc(row[Columns.reason])}</p>',
    ]
    points = [p for p in row[Columns.talking_points] if p != row[Columns.reason]]
    if points:
        items = "".join(f"<li>{esc(p)}</li>" for p in points)
        parts.append(f'<div class="label">Talking points</div><ul>{items}</ul>')
    materials = row[Columns.materials]
    if materials:
        items = "".join(f"<li>{esc(m)}</li>" for m in materials)
        parts.append(f'<div class="label">Bring</div><ul>{items}</ul>')
    parts.append("</li>")
    return "".join(parts)


def _cards(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "<p>Nothing to do in this period.</p>"
    return '<ol class="cards">' + "".join(map(_card, rows.to_dict("records"))) + "</ol>"


def _counts(rows: pd.DataFrame) -> str:
    counts = rows[Columns.action].astype(str).value_counts()
    shown = [
        badge(f"{int(counts[a])} {_TITLES[a]}", a) for a in ACTIONS[:-1] if counts.get(a, 0) > 0
    ]
    return f"<p>{' '.join(shown)}</p>" if shown else ""


def _brief_table(rows: pd.DataFrame) -> str:
    return table(
        (
            [
                "" if pd.isna(r[Columns.rank_in_owner]) else int(r[Columns.rank_in_owner]),
                r[Columns.client],
                _TITLES[str(r[Columns.action])],
                _money(r[Columns.priority]),
                r[Columns.reason],
            ]
            for r in rows.to_dict("records")
        ),
        ["#", "client", "action", "priority", "reason"],
        numeric=[True, False, False, True, False],
    )


def _owner_page(account_plan: AccountPlan, owner: str, rows: pd.DataFrame, *, title: str) -> str:
    actionable = rows[rows[Columns.action].astype(str) != "none"]
    listed = actionable[actionable[Columns.within_capacity]]
    below = actionable[~actionable[Columns.within_capacity]]
    idle = rows[rows[Columns.action].astype(str) == "none"]
    capacity = account_plan.capacities.get(owner)
    cap_text = (
        "no capacity limit"
        if capacity is None or pd.isna(capacity)
        else f"capacity {int(capacity)} per period"
    )
    body = [
        _header(account_plan, f"{owner}: who to call first", title),
        f"<p>{esc(len(listed))} actions in this period ({esc(cap_text)}); "
        f"{esc(len(below))} below the cut; {esc(len(idle))} clients need nothing.</p>",
        _counts(listed),
        "<h2>Call list</h2>",
        _cards(listed),
    ]
    if len(below) and account_plan.allocation is not None and "allocation" in below.columns:
        # planned as one book: each action left out says which limit left it out
        left = _money(below[Columns.priority].sum())
        why = below["allocation"].fillna("").astype(str).str.removeprefix("dropped: ")
        body += [
            "<h2>Left out by the book's plan</h2>",
            f"<p>{esc(len(below))} actions (total priority {esc(left)}) were left out by the "
            "plan of the whole book under its constraints:</p>",
            table(
                zip(below[Columns.client], below[Columns.action].astype(str), why, strict=True),
                ["client", "action", "why"],
            ),
        ]
    elif len(below):
        left = _money(below[Columns.priority].sum())
        body += [
            "<h2>Below the cut</h2>",
            f"<p>{esc(len(below))} more actions (total priority {esc(left)}) wait for the next "
            "period.</p>",
            _counts(below),
            f"<details><summary>Show them</summary>{_brief_table(below)}</details>",
        ]
    if len(idle):
        body += [
            "<h2>Nothing to propose</h2>",
            f"<p>{esc(len(idle))} clients are fine or should not be approached now.</p>",
            "<details><summary>Show them</summary>"
            + table(
                zip(idle[Columns.client], idle[Columns.reason], strict=True),
                ["client", "why nothing"],
            )
            + "</details>",
        ]
    return page(f"{title}: {owner}", "\n".join(body))


def _unowned_page(account_plan: AccountPlan, rows: pd.DataFrame, title: str) -> str:
    actionable = rows[rows[Columns.action].astype(str) != "none"]
    body = [
        _header(account_plan, "Accounts without an owner", title),
        f"<p>{esc(len(actionable))} of {esc(len(rows))} accounts without an account manager "
        "need an action. Assign them an owner.</p>",
        _counts(actionable),
        _cards(actionable),
    ]
    return page(f"{title}: accounts without an owner", "\n".join(body))


def plan_overview(account_plan: AccountPlan) -> pd.DataFrame:
    """One row per account manager: what is on the list this period, by action.

    The command line prints this table and the plan's ``index.html`` shows it, with the same
    columns, so both always count the same things.

    Parameters
    ----------
    account_plan : AccountPlan
        The plan, from :func:`crosssell.plan`.

    Returns
    -------
    pandas.DataFrame
        ``owner``, ``capacity`` (NaN when unlimited), ``listed`` (actions within capacity),
        ``below_cut`` (actions that did not fit), then one column per action
        (``resolve_complaint``, ``renew``, ``reorder``, ``propose``, ``check_in``) counting the
        *listed* ones, and ``nothing_to_do`` (clients with no action). Empty (with these
        columns) when no client has an owner.

    Examples
    --------
    >>> import crosssell as cs
    >>> rec = cs.Recommender().fit(cs.datasets.demo(), cs.datasets.demo_as_of())
    >>> overview = plan_overview(cs.plan(rec, capacity=5))
    >>> overview.columns.tolist()[:4]
    ['owner', 'capacity', 'listed', 'below_cut']
    >>> bool((overview["listed"] == overview[["resolve_complaint", "renew", "reorder",
    ...       "propose", "check_in"]].sum(axis=1)).all())
    True
    """
    summary = account_plan.below_cut()
    per_action = list(ACTIONS[:-1])
    actions = account_plan.actions
    listed = actions[actions[Columns.within_capacity] & actions[Columns.owner].notna()]
    counts = pd.crosstab(listed[Columns.owner], listed[Columns.action].astype(str)).reindex(
        index=summary[Columns.owner], columns=per_action, fill_value=0
    )
    out = summary[[Columns.owner, Columns.capacity, Columns.listed, Columns.below_cut]].copy()
    for action in per_action:
        out[action] = counts[action].to_numpy(dtype="int64") if len(out) else []
    out[Columns.nothing_to_do] = summary[Columns.nothing_to_do].to_numpy()
    return out.reset_index(drop=True)


# Short headings keep the index table within a phone's width; same columns as plan_overview.
_HEADINGS: Final = {
    "owner": "manager",
    "capacity": "cap.",
    "listed": "listed",
    "below_cut": "below cut",
    "resolve_complaint": "complaint",
    "renew": "renew",
    "reorder": "reorder",
    "propose": "propose",
    "check_in": "check in",
    "nothing_to_do": "nothing",
}


def _index_page(
    account_plan: AccountPlan,
    names: dict[str, str],
    *,
    n_unowned: int,
    title: str,
) -> str:
    overview = plan_overview(account_plan)
    header = [_HEADINGS.get(str(c), str(c)) for c in overview.columns]
    rows = [
        [str(r[0]), "" if pd.isna(r[1]) else int(r[1]), *(int(v) for v in r[2:])]
        for r in overview.itertuples(index=False)
    ]
    links: list[str | None] = [names[str(r[0])] for r in rows]
    start = account_plan.as_of.strftime("%Y-%m-%d")
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{esc(account_plan.period.days)} days from {esc(start)} '
        f"&middot; crosssell {esc(__version__)}</p>",
        "<h2>Managers: actions listed this period</h2>",
        table(rows, header, numeric=[False] + [True] * (len(header) - 1), links=links),
    ]
    if n_unowned:
        body.append(
            f'<p><a href="{UNOWNED}">{esc(n_unowned)} accounts without an owner</a> '
            "are listed apart.</p>"
        )
    if account_plan.allocation is not None:
        body += _allocation_section(account_plan.allocation)
    return page(title, "\n".join(body))


_SHOWN_PRICES = 20


def _allocation_section(allocation: Allocation) -> list[str]:
    """Show the book planned at once: optimised against greedy, and what binding limits cost."""
    summary = allocation.summary()
    rows = [
        [
            str(r["plan"]),
            _money(r["objective"]),
            "yes" if r["feasible"] else "no",
            str(r["status"]) or "-",
        ]
        for r in summary.to_dict("records")
    ]
    out = [
        "<h2>The book planned at once</h2>",
        "<p>The actions within capacity were chosen together, under the plan's constraints, "
        "to give the highest total priority. The greedy plan (best first, skipping what breaks "
        "a limit) is shown beside it; a greedy plan that breaks a constraint is not an "
        "option.</p>",
        table(rows, ["plan", "total priority", "meets the constraints", "solver"]),
    ]
    prices = allocation.shadow_prices.head(_SHOWN_PRICES)
    if len(prices):
        more = len(allocation.shadow_prices) - len(prices)
        out += [
            "<h3>What the binding limits cost</h3>",
            "<p>From the linear relaxation: what one more unit of each limit would add"
            + (f" (the {len(prices)} largest of {len(allocation.shadow_prices)})" if more else "")
            + ".</p>",
            table(
                zip(prices["constraint"], prices["sentence"], strict=True),
                ["constraint", "one more unit"],
            ),
        ]
    return out
