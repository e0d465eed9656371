"""Small HTML cards that notebooks show for crosssell's objects (``_repr_html_``).

A card is a title, a few facts as a definition list, tables and, optionally, a picture. Every
text is escaped: ids come from the user's data.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_STYLE = (
    "font-family:system-ui,sans-serif;font-size:13px;border:1px solid #d0d7de;"
    "border-radius:6px;padding:8px 12px;display:inline-block;max-width:100%"
)
# rows of a table shown in a card; the rest are counted, not shown
MAX_ROWS = 20


def card(
    title: str,
    facts: Sequence[tuple[str, Any]],
    tables: Sequence[tuple[str, pd.DataFrame]] = (),
    *,
    png: bytes | None = None,
) -> str:
    """Return an HTML card: a title, facts, tables (first :data:`MAX_ROWS` rows) and a picture.

    Parameters
    ----------
    title : str
    facts : sequence of (label, value)
        Shown as ``label: value``; values are turned into text and escaped.
    tables : sequence of (caption, DataFrame)
    png : bytes, optional
        A PNG image, embedded inline.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> out = card("Book", [("clients", 2)], [("sizes", pd.DataFrame({"a": ["<x>"]}))])
    >>> "<b>Book</b>" in out, "&lt;x&gt;" in out, "<x>" in out
    (True, True, False)
    """
    parts = [f'<div style="{_STYLE}"><b>{html.escape(title)}</b>']
    if facts:
        items = "".join(
            f"<li>{html.escape(str(label))}: {html.escape(str(value))}</li>"
            for label, value in facts
        )
        parts.append(f'<ul style="margin:4px 0 6px 16px;padding:0">{items}</ul>')
    for caption, frame in tables:
        shown = frame.head(MAX_ROWS)
        more = len(frame) - len(shown)
        table = shown.to_html(index=False, border=0, escape=True, na_rep="", float_format=_num)
        tail = f"<div><i>... and {more:,} more rows</i></div>" if more > 0 else ""
        parts.append(f"<div><i>{html.escape(caption)}</i>{table}{tail}</div>")
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<img src="data:image/png;base64,{data}" style="max-width:640px"/>')
    parts.append("</div>")
    return "".join(parts)


def _num(value: float) -> str:
    return f"{value:,.4g}"


def figure_png(fig: Any) -> bytes:
    """Return a matplotlib figure as PNG bytes, closing it (small, for a card).

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    bytes

    Examples
    --------
    >>> import matplotlib  # doctest: +SKIP
    >>> matplotlib.use("Agg")  # doctest: +SKIP
    >>> import matplotlib.pyplot as plt  # doctest: +SKIP
    >>> figure_png(plt.figure())[1:4]  # doctest: +SKIP
    b'PNG'
    """
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()
