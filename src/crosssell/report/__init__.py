"""Reports: self-contained HTML pages (inline CSS, embedded images, no script).

Examples
--------
>>> from crosssell.report import write_plan_pages
>>> callable(write_plan_pages)
True
"""

from crosssell.report.plan_pages import write_plan_pages

__all__ = ["write_plan_pages"]
