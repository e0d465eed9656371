"""HTML pages: self-contained files (inline CSS, embedded images, no script).

* :func:`write_plan_pages` writes an account plan as one page per account manager and an index.
* :func:`plan_overview` is the table of the plan's index page (and of ``crosssell plan``).
* :func:`report` writes a backtest, and the tuning behind it, as one page.

Examples
--------
>>> from crosssell.html import report, write_plan_pages
>>> callable(report), callable(write_plan_pages)
(True, True)
"""

from crosssell.html.backtest_page import report
from crosssell.html.plan_pages import plan_overview, write_plan_pages

__all__ = ["plan_overview", "report", "write_plan_pages"]
