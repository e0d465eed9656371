"""MkDocs hook: show the Sphinx roles of numpydoc docstrings as plain code.

The docstrings cross-reference in Sphinx's notation (``:class:`~crosssell.Book```), which the
Markdown renderer passes through as text. This keeps the code span and drops the role, and the
leading ``~`` that Sphinx uses to shorten a dotted path.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj|ref|term):(<code>)~?")


def on_page_content(html: str, **kwargs: Any) -> str:
    """Drop the role prefix before each inline code span."""
    return ROLE.sub(r"\1", html)
