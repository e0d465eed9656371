"""HTML pages: self-contained files (inline CSS, embedded images, no script).

* :func:`write_plan_pages` writes an account plan as one page per account manager and an index.
* :func:`report` writes a backtest, and the tuning behind it, as one page.

Examples
--------
>>> from crosssell.html import report, write_plan_pages
>>> callable(report), callable(write_plan_pages)
(True, True)
"""

from crosssell.html.backtest_page import report
from crosssell.html.plan_pages import write_plan_pages

__all__ = ["report", "write_plan_pages"]
