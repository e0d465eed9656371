"""Small HTML building blocks shared by crosssell's reports.

Every page is self-contained: one file, inline CSS, images embedded as base64, no script and no
external resource, so it can be mailed, archived or opened offline. All text goes through
:func:`esc`; callers pass plain strings and never build markup from data by hand.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CSS",
    "badge",
    "esc",
    "figure_img",
    "page",
    "png_img",
    "slug",
    "table",
    "write_page",
]

#: The one style sheet: readable on a phone, tidy on paper.
CSS: Final = """
:root { --ink: #1d2430; --muted: #5b6675; --line: #d9dee5; --accent: #1f6f50;
        --warn: #a4361f; --soft: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: 0.2rem 0 0.3rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 0.5rem; border-bottom: 1px solid var(--line);
     padding-bottom: 0.2rem; }
p.meta { color: var(--muted); margin: 0 0 1rem; }
a { color: var(--accent); }
.cards { list-style: none; margin: 0; padding: 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.7rem 0.8rem;
        margin: 0 0 0.7rem; break-inside: avoid; page-break-inside: avoid; }
.card header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.3rem 0.6rem; }
.card .rank { font-weight: 700; color: var(--muted); min-width: 1.8rem; }
.card .who { font-weight: 700; font-size: 1.05rem; }
.card .facts { color: var(--muted); font-size: 0.9rem; margin: 0.2rem 0 0.3rem; }
.card .reason { margin: 0.2rem 0; }
.card ul { margin: 0.3rem 0 0; padding-left: 1.2rem; }
.card li { margin: 0.1rem 0; }
.label { font-size: 0.8rem; color: var(--muted); text-transform: uppercase;
         letter-spacing: 0.04em; margin-top: 0.4rem; }
.badge { display: inline-block; border-radius: 999px; padding: 0.05rem 0.55rem;
         font-size: 0.8rem; font-weight: 600; background: var(--soft);
         border: 1px solid var(--line); white-space: nowrap; }
.badge.resolve_complaint { background: #fde8e4; border-color: #f1b7aa; color: var(--warn); }
.badge.renew { background: #fff3d6; border-color: #ecd08c; color: #7a5600; }
.badge.reorder { background: #fff3d6; border-color: #ecd08c; color: #7a5600; }
.badge.propose { background: #e3f4ec; border-color: #a9d8c1; color: var(--accent); }
.badge.check_in { background: #e7eef9; border-color: #b5c8e8; color: #27508f; }
.badge.at_risk { background: var(--warn); border-color: var(--warn); color: #fff; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
img.chart { max-width: 100%; height: auto; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; color: var(--muted); }
@media (max-width: 36rem) {
  body { font-size: 16px; }
  main { padding: 0.7rem; }
  th, td { padding: 0.3rem 0.35rem; }
}
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
  .card { border-color: #999; }
  .noprint { display: none; }
  details > summary { display: none; }
  details { display: block; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""

_SLUG: Final = re.compile(r"[^A-Za-z0-9._-]+")


def esc(value: Any) -> str:
    """Escape any value for HTML text or an attribute (``None`` and NaN become ``""``).

    Parameters
    ----------
    value : object

    Returns
    -------
    str

    Examples
    --------
    >>> esc('<b>"A&B"</b>')
    '&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;'
    >>> esc(None), esc(float("nan"))
    ('', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def slug(value: Any, *, default: str = "page") -> str:
    """Turn any value into a safe file name stem (letters, digits, ``.``, ``_``, ``-``).

    Parameters
    ----------
    value : object
    default : str, default "page"
        Used when nothing safe is left.

    Returns
    -------
    str

    Examples
    --------
    >>> slug("AM 01/../x")
    'AM-01-..-x'
    >>> slug("../")
    'page'
    """
    text = _SLUG.sub("-", str(value)).strip("-.")
    return text or default


def badge(text: str, kind: str = "") -> str:
    """Render a small coloured label.

    Parameters
    ----------
    text : str
        Shown text (escaped).
    kind : str, optional
        An extra CSS class (escaped), e.g. the action name.

    Returns
    -------
    str
        HTML.

    Examples
    --------
    >>> badge("renew", "renew")
    '<span class="badge renew">renew</span>'
    """
    cls = f"badge {slug(kind, default='')}".strip()
    return f'<span class="{esc(cls)}">{esc(text)}</span>'


def table(
    rows: Iterable[Sequence[Any]],
    header: Sequence[str],
    *,
    numeric: Sequence[bool] | None = None,
    links: Sequence[str | None] | None = None,
) -> str:
    """Render a table of plain values (all escaped) that scrolls sideways on a phone.

    Parameters
    ----------
    rows : iterable of sequences
        Cell values, one sequence per row.
    header : sequence of str
        Column titles.
    numeric : sequence of bool, optional
        Right-align these columns.
    links : sequence of str or None, optional
        One relative link per row, put on its first cell.

    Returns
    -------
    str
        HTML.

    Examples
    --------
    >>> table([["<x>", 3]], ["name", "n"], numeric=[False, True])  # doctest: +ELLIPSIS
    '<div class="scroll"><table><thead><tr><th>name</th><th class="num">n</th>...&lt;x&gt;...'
    """
    right = list(numeric) if numeric is not None else [False] * len(header)
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if r else f"<th>{esc(h)}</th>"
        for h, r in zip(header, right, strict=True)
    )
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, (value, r) in enumerate(zip(row, right, strict=True)):
            text = esc(value)
            if j == 0 and links is not None and links[i]:
                text = f'<a href="{esc(links[i])}">{text}</a>'
            cells.append(f'<td class="num">{text}</td>' if r else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def png_img(data: bytes, alt: str) -> str:
    r"""Embed PNG bytes as an ``<img>`` with a base64 data URI.

    Parameters
    ----------
    data : bytes
        The PNG file's bytes.
    alt : str
        Alternative text (escaped).

    Returns
    -------
    str
        HTML.

    Examples
    --------
    >>> png_img(b"\x89PNG", "chart")
    '<img class="chart" alt="chart" src="data:image/png;base64,iVBORw==">'
    """
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="chart" alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def figure_img(fig: Figure, alt: str, *, dpi: int = 110) -> str:
    """Render a matplotlib Figure to PNG and embed it (see :func:`png_img`).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    alt : str
        Alternative text.
    dpi : int, default 110

    Returns
    -------
    str
        HTML.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(1, 1))
    >>> _ = fig.add_subplot().plot([0, 1])
    >>> figure_img(fig, "line").startswith('<img class="chart" alt="line"')
    True
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return png_img(buffer.getvalue(), alt)


def page(title: str, body: str, *, lang: str = "en") -> str:
    """Wrap a body into a whole document: phone viewport, inline CSS, no script or external link.

    Parameters
    ----------
    title : str
        Page title (escaped).
    body : str
        HTML of the content, already escaped by the helpers of this module.
    lang : str, default "en"

    Returns
    -------
    str

    Examples
    --------
    >>> doc = page("A & B", "<p>hi</p>")
    >>> "<title>A &amp; B</title>" in doc, 'name="viewport"' in doc
    (True, True)
    """
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{esc(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_page(path: str | os.PathLike[str], document: str) -> Path:
    """Write a document atomically (to a temporary file beside it, then renamed).

    Parameters
    ----------
    path : str or path-like
    document : str

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_page(pathlib.Path(d) / "x.html", page("x", "")).name
    'x.html'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".page-", suffix=".html", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(document)
        # A temporary file is private (0600); a report is meant to be shared like any file.
        Path(tmp).chmod(0o644)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
